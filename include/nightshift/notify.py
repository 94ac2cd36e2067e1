"""Notifications: failures, quarantines, alerts and promotions, to a webhook, by SMTP, or to the
log when neither is configured. No Airflow here; ``nightshift.airflow.notify`` builds them.

Settings (environment):

- ``NIGHTSHIFT_NOTIFY_WEBHOOK``: a URL that receives the notification as JSON (POST).
- ``NIGHTSHIFT_NOTIFY_SMTP``: ``smtp://[user:password@]host:port`` (``smtps://`` for TLS) with
  ``NIGHTSHIFT_NOTIFY_EMAIL_TO`` (comma-separated) and ``NIGHTSHIFT_NOTIFY_EMAIL_FROM``.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

Event = Literal[
    "failure", "quarantine", "alert", "promotion", "rollback", "review", "rejection", "retrain_skipped"
]
EVENTS: tuple[str, ...] = (
    "failure",
    "quarantine",
    "alert",
    "promotion",
    "rollback",
    "review",
    "rejection",
    "retrain_skipped",
)
Severity = Literal["info", "warning", "error"]
# what breaks is an error; a decision that keeps the champion (or asks a human) a warning
SEVERITY: dict[str, Severity] = {
    "failure": "error",
    "quarantine": "error",
    "alert": "warning",
    "rejection": "warning",
    "review": "warning",
    "rollback": "warning",
    "promotion": "info",
    "retrain_skipped": "info",
}


class NotifyError(RuntimeError):
    """A configured channel could not deliver (the message names the channel and why)."""


@dataclass(frozen=True)
class Notification:
    """One thing an operator should hear about, with links to the evidence."""

    event: str
    dataset: str
    title: str
    message: str
    dag_id: str = ""
    run_id: str = ""
    task_id: str = ""
    try_number: int | None = None
    links: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # None: the event's (SEVERITY)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown notification event {self.event!r}; expected one of {EVENTS}")
        if self.severity is None:
            object.__setattr__(self, "severity", SEVERITY[self.event])
        elif self.severity not in ("info", "warning", "error"):
            raise ValueError(f"unknown notification severity {self.severity!r}: info, warning or error")

    @property
    def subject(self) -> str:
        return f"[nightshift] {self.event}: {self.dataset}: {self.title}"

    def text(self) -> str:
        lines = [self.subject, "", self.message, ""]
        where = "/".join(p for p in (self.dag_id, self.run_id, self.task_id) if p)
        if where:
            lines.append(f"where: {where}" + (f" (try {self.try_number})" if self.try_number else ""))
        lines += [f"{name}: {url}" for name, url in self.links.items()]
        return "\n".join(lines).rstrip() + "\n"

    def payload(self) -> dict[str, Any]:
        return {"subject": self.subject, **asdict(self)}


@dataclass(frozen=True)
class Channels:
    """Where notifications go; empty: the log only."""

    webhook: str | None = None
    smtp: str | None = None
    email_to: tuple[str, ...] = ()
    email_from: str = "nightshift@localhost"

    @classmethod
    def from_env(cls) -> Channels:
        to = tuple(
            a.strip() for a in os.environ.get("NIGHTSHIFT_NOTIFY_EMAIL_TO", "").split(",") if a.strip()
        )
        smtp = os.environ.get("NIGHTSHIFT_NOTIFY_SMTP") or None
        if smtp and not to:
            raise NotifyError("NIGHTSHIFT_NOTIFY_SMTP is set but NIGHTSHIFT_NOTIFY_EMAIL_TO is empty")
        return cls(
            webhook=os.environ.get("NIGHTSHIFT_NOTIFY_WEBHOOK") or None,
            smtp=smtp,
            email_to=to,
            email_from=os.environ.get("NIGHTSHIFT_NOTIFY_EMAIL_FROM", "nightshift@localhost"),
        )


def send(note: Notification, channels: Channels | None = None, timeout: float = 10) -> list[str]:
    """Deliver ``note`` on every configured channel; the channels used (``["log"]`` if none).

    Every configured channel is tried; if any fails, :class:`NotifyError` names all failures
    after the others were attempted.
    """
    import smtplib  # here, not at module level: DAG files import this module at parse time

    ch = channels or Channels.from_env()
    used: list[str] = []
    errors: list[str] = []
    if ch.webhook:
        try:
            post_webhook(ch.webhook, note.payload(), timeout)
            used.append("webhook")
        except (OSError, ValueError) as exc:
            errors.append(f"webhook {_redact(ch.webhook)}: {exc}")
    if ch.smtp:
        try:
            send_email(ch.smtp, ch.email_from, ch.email_to, note.subject, note.text(), timeout)
            used.append("smtp")
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            errors.append(f"smtp {_redact(ch.smtp)}: {exc}")
    if not ch.webhook and not ch.smtp:
        log.warning("nightshift notification (no channel configured): %s", note.text().replace("\n", " | "))
        used.append("log")
    if errors:
        raise NotifyError("; ".join(errors))
    return used


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10) -> None:
    import urllib.request

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"webhook URL must be http(s), got {_redact(url)}")
    req = urllib.request.Request(url, data=json.dumps(payload, default=str).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if resp.status >= 300:
            raise OSError(f"HTTP {resp.status}")


def send_email(
    url: str, sender: str, to: tuple[str, ...], subject: str, body: str, timeout: float = 10
) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"SMTP URL must be smtp://host:port or smtps://host:port, got {_redact(url)}")
    import smtplib
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, sender, ", ".join(to)
    msg.set_content(body)
    cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with cls(parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25), timeout=timeout) as smtp:
        if parts.username:
            smtp.login(urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        smtp.send_message(msg)


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url
