"""Notifications delivered to real sinks on 127.0.0.1: an HTTP server and an SMTP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from nightshift.notify import Channels, Notification, NotifyError, send

NOTE = Notification(
    event="quarantine",
    dataset="payments",
    title="events of 2026-03-09 quarantined",
    message="expect_column_values_to_not_be_null(customer_age): 2480 unexpected (62.00%)",
    dag_id="nightshift_ingest.payments",
    run_id="manual__1",
    task_id="ingest_events",
    try_number=1,
    links={
        "task": "http://127.0.0.1:8080/dags/nightshift_ingest.payments/runs/manual__1/tasks/ingest_events"
    },
)


@pytest.fixture
def http_sink(webhook_sink: tuple[str, list[dict[str, Any]]]) -> tuple[str, list[dict[str, Any]]]:
    return webhook_sink


@pytest.fixture
def smtp_sink() -> Iterator[tuple[str, list[Any]]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Keep(Message):  # type: ignore[misc]
        def handle_message(self, message: Any) -> None:
            received.append(message)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", received
    finally:
        controller.stop()


def test_webhook_receives_the_notification_as_json(http_sink: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = http_sink
    assert send(NOTE, Channels(webhook=url)) == ["webhook"]
    assert len(received) == 1 and received[0]["content_type"] == "application/json"
    payload = received[0]
    assert payload["event"] == "quarantine" and payload["dataset"] == "payments"
    assert payload["subject"] == "[nightshift] quarantine: payments: events of 2026-03-09 quarantined"
    assert "customer_age" in payload["message"]
    assert payload["links"]["task"].endswith("/tasks/ingest_events")
    assert (payload["dag_id"], payload["run_id"], payload["task_id"], payload["try_number"]) == (
        "nightshift_ingest.payments",
        "manual__1",
        "ingest_events",
        1,
    )


def test_smtp_receives_a_readable_email(smtp_sink: tuple[str, list[Any]]) -> None:
    url, received = smtp_sink
    channels = Channels(smtp=url, email_to=("ops@example.org", "ml@example.org"), email_from="ns@example.org")
    assert send(NOTE, channels) == ["smtp"]
    assert len(received) == 1
    msg = received[0]
    assert msg["Subject"] == NOTE.subject
    assert msg["From"] == "ns@example.org" and msg["To"] == "ops@example.org, ml@example.org"
    body = msg.get_payload(decode=True).decode()
    assert "customer_age" in body and "/tasks/ingest_events" in body
    assert "where: nightshift_ingest.payments/manual__1/ingest_events (try 1)" in body


def test_both_channels_at_once(
    http_sink: tuple[str, list[dict[str, Any]]], smtp_sink: tuple[str, list[Any]]
) -> None:
    channels = Channels(webhook=http_sink[0], smtp=smtp_sink[0], email_to=("ops@example.org",))
    assert send(NOTE, channels) == ["webhook", "smtp"]
    assert len(http_sink[1]) == 1 and len(smtp_sink[1]) == 1


def test_no_channel_writes_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="nightshift.notify"):
        assert send(NOTE, Channels()) == ["log"]
    assert "customer_age" in caplog.text and "[nightshift] quarantine" in caplog.text


def test_a_dead_channel_is_named_after_the_others_were_tried(
    smtp_sink: tuple[str, list[Any]],
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    channels = Channels(webhook=dead, smtp=smtp_sink[0], email_to=("ops@example.org",))
    with pytest.raises(NotifyError, match=r"webhook http://127\.0\.0\.1:\d+/hook"):
        send(NOTE, channels, timeout=3)
    assert len(smtp_sink[1]) == 1  # the email still went out


def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_SMTP", "smtp://127.0.0.1:25")
    monkeypatch.delenv("NIGHTSHIFT_NOTIFY_EMAIL_TO", raising=False)
    with pytest.raises(NotifyError, match="NIGHTSHIFT_NOTIFY_EMAIL_TO"):
        Channels.from_env()
    with pytest.raises(NotifyError, match=r"must be http\(s\)"):
        send(NOTE, Channels(webhook="ftp://u:secret@host/x"))
    with pytest.raises(NotifyError) as info:
        send(NOTE, Channels(webhook="ftp://u:secret@host/x"))
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="unknown notification event"):
        Notification(event="party", dataset="payments", title="t", message="m")
