"""Notifications delivered to real sinks on 127.0.0.1: an HTTP server and SMTP servers (STARTTLS,
TLS from the start, plain), with a CA and certificate made for the test."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
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


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a certificate it signed for 127.0.0.1 (PEM files): ``ca``, ``cert``, ``key``."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("nightshift test CA", ca_key, "nightshift test CA", ca_key, ca=True)
    leaf = cert("127.0.0.1", key, "nightshift test CA", ca_key, ca=False)
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@contextmanager
def smtp_server(tls: dict[str, Path] | None = None, mode: str = "plain") -> Iterator[tuple[int, list[Any]]]:
    """An aiosmtpd server on 127.0.0.1: ``plain`` (no STARTTLS offered), ``starttls`` (offered
    and required before MAIL/AUTH) or ``smtps`` (TLS from the first byte). It accepts user
    ``ops`` with password ``s3cret-pw`` (AUTH is offered over TLS only); every message and AUTH
    is recorded with whether its session was encrypted."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    received: list[Any] = []

    def encrypted(server: Any, session: Any) -> bool:  # after STARTTLS, or TLS from the start
        return session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            from email import message_from_bytes

            msg = message_from_bytes(envelope.original_content)
            received.append({"msg": msg, "tls": encrypted(server, session), "auth": session.authenticated})
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ops", b"s3cret-pw")
        received.append({"auth_over_tls": encrypted(server, session), "ok": ok})
        return AuthResult(success=ok)

    kwargs: dict[str, Any] = {"authenticator": authenticator}
    if tls is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls["cert"], tls["key"])
        if mode == "starttls":
            kwargs |= {"tls_context": ctx, "require_starttls": True}
        elif mode == "smtps":
            kwargs |= {"ssl_context": ctx, "auth_require_tls": False}  # TLS, but not via STARTTLS
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink(tls_files: dict[str, Path]) -> Iterator[tuple[str, list[Any]]]:
    """A STARTTLS server and the URL that trusts its CA: (url, received messages)."""
    with smtp_server(tls_files, "starttls") as (port, received):
        yield f"smtp://127.0.0.1:{port}?cafile={tls_files['ca']}", received


@contextmanager
def failing_http(status: int = 500) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 that answers every POST with ``status`` and echoes the path."""

    class Fail(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = f"no such hook {self.path}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Fail)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


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
    assert len(received) == 1 and received[0]["tls"]
    msg = received[0]["msg"]
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
    with pytest.raises(NotifyError, match=r"webhook http://127\.0\.0\.1:\d+/…\(redacted\): "):
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


TOKEN_PATH = ("T0TEAMID42", "B0HOOKID77", "xoxbPathToken9f8e7d")
TOKEN_QUERY = "qsTokenA1b2C3d4"


@pytest.mark.parametrize("dead", [False, True], ids=["http-500", "unreachable"])
def test_a_webhook_token_never_reaches_errors_or_logs(dead: bool, caplog: pytest.LogCaptureFixture) -> None:
    with failing_http(500) as port:
        if dead:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        url = f"http://hookuser:{TOKEN_QUERY}pw@127.0.0.1:{port}/services/{'/'.join(TOKEN_PATH)}"
        url += f"?token={TOKEN_QUERY}&channel=ops"
        with caplog.at_level("DEBUG"), pytest.raises(NotifyError) as info:
            send(NOTE, Channels(webhook=url), timeout=3)
    text = str(info.value)
    assert text.startswith(f"webhook http://127.0.0.1:{port}/…(redacted): "), text
    assert ("HTTP Error 500" in text) != dead, text
    for secret in (*TOKEN_PATH, TOKEN_QUERY, "hookuser", "/services/", "channel=ops"):
        assert secret not in text and secret not in caplog.text, (secret, text)


def test_smtp_logs_in_only_after_starttls(tls_files: dict[str, Path]) -> None:
    with smtp_server(tls_files, "starttls") as (port, received):
        url = f"smtp://ops:s3cret-pw@127.0.0.1:{port}?cafile={tls_files['ca']}"
        assert send(NOTE, Channels(smtp=url, email_to=("ops@example.org",))) == ["smtp"]
    auth, mail = received
    assert auth == {"auth_over_tls": True, "ok": True}
    assert mail["tls"] and mail["auth"] and mail["msg"]["Subject"] == NOTE.subject


def test_smtps_is_tls_from_the_start(tls_files: dict[str, Path]) -> None:
    with smtp_server(tls_files, "smtps") as (port, received):
        url = f"smtps://ops:s3cret-pw@127.0.0.1:{port}?cafile={tls_files['ca']}"
        assert send(NOTE, Channels(smtp=url, email_to=("ops@example.org",))) == ["smtp"]
    assert received[0] == {"auth_over_tls": True, "ok": True} and received[1]["tls"]


def test_a_server_without_starttls_is_refused_clearly(tls_files: dict[str, Path]) -> None:
    with smtp_server() as (port, received):
        url = f"smtp://ops:s3cret-pw@127.0.0.1:{port}?cafile={tls_files['ca']}"
        with pytest.raises(NotifyError) as info:
            send(NOTE, Channels(smtp=url, email_to=("ops@example.org",)))
    text = str(info.value)
    assert f"the SMTP server 127.0.0.1:{port} does not offer STARTTLS" in text, text
    assert "?starttls=false" in text and "s3cret-pw" not in text and "ops:***@" in text
    assert received == []  # neither the password nor the mail went out


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_an_untrusted_certificate_is_refused(mode: str, tls_files: dict[str, Path]) -> None:
    with smtp_server(tls_files, mode) as (port, received):
        scheme = "smtps" if mode == "smtps" else "smtp"
        url = f"{scheme}://ops:s3cret-pw@127.0.0.1:{port}"  # no cafile: the system's CAs do not know it
        with pytest.raises(NotifyError, match="CERTIFICATE_VERIFY_FAILED") as info:
            send(NOTE, Channels(smtp=url, email_to=("ops@example.org",)))
    assert "s3cret-pw" not in str(info.value) and received == []


def test_starttls_false_sends_plain_text_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with smtp_server() as (port, received), caplog.at_level("WARNING", logger="nightshift.notify"):
        url = f"smtp://127.0.0.1:{port}?starttls=false"
        assert send(NOTE, Channels(smtp=url, email_to=("ops@example.org",))) == ["smtp"]
    assert len(received) == 1 and not received[0]["tls"]
    assert received[0]["msg"]["Subject"] == NOTE.subject
    assert f"SMTP to 127.0.0.1:{port} without TLS (?starttls=false)" in caplog.text


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("smtp://127.0.0.1:25?starttls=maybe", "starttls must be true or false, got 'maybe'"),
        ("smtp://127.0.0.1:25?tls=no", r"unknown option\(s\) \['tls'\]"),
        ("smtps://127.0.0.1:465?starttls=false", "smtps:// is always TLS"),
        (
            "smtp://u:pw-secret@127.0.0.1:25?cafile=/nonexistent/ca.pem",
            "cafile /nonexistent/ca.pem is not a file",
        ),
    ],
)
def test_bad_smtp_options_are_named(url: str, error: str) -> None:
    with pytest.raises(NotifyError, match=error) as info:
        send(NOTE, Channels(smtp=url, email_to=("ops@example.org",)))
    assert "pw-secret" not in str(info.value)
