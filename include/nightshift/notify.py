"""Notifications: failures, quarantines, alerts, promotions and validation warnings, each with a
severity (error, warning, info), to a webhook, by SMTP, or to the
log when neither is configured. No Airflow here; ``nightshift.airflow.notify`` builds them.

Settings (environment):

- ``NIGHTSHIFT_NOTIFY_WEBHOOK``: a URL that receives the notification as JSON (POST). Such URLs
  carry their token in the path or query, so logs and errors show only its scheme and host.
- ``NIGHTSHIFT_NOTIFY_SMTP``: ``smtp://[user:password@]host:port`` (STARTTLS, required of the
  server), ``smtps://`` (TLS from the start) or ``smtp://...?starttls=false`` (plain text, a
  warning each time), with ``NIGHTSHIFT_NOTIFY_EMAIL_TO`` (comma-separated) and
  ``NIGHTSHIFT_NOTIFY_EMAIL_FROM``. ``?cafile=/path/ca.pem`` trusts that CA instead of the
  system's; the server's certificate and host name are always verified.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nightshift.errors import ServiceError

if TYPE_CHECKING:
    import ssl

    from nightshift.settings import Settings

log = logging.getLogger(__name__)

Event = Literal[
    "failure",
    "quarantine",
    "alert",
    "promotion",
    "rollback",
    "review",
    "rejection",
    "retrain_skipped",
    "validation_warning",
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
    "validation_warning",
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
    "validation_warning": "warning",  # a batch published with failed warning-severity checks
}


class NotifyError(ServiceError, RuntimeError):
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
        lines = [self.subject, "", self.message, "", f"severity: {self.severity}"]
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
    def from_settings(cls, s: Settings | None = None) -> Channels:
        """The channels the ``NIGHTSHIFT_NOTIFY_*`` settings configure (default: this process's)."""
        from nightshift.settings import settings

        s = s or settings()
        smtp = s.notify_smtp.get_secret_value() if s.notify_smtp else None
        if smtp and not s.email_to:
            raise NotifyError("NIGHTSHIFT_NOTIFY_SMTP is set but NIGHTSHIFT_NOTIFY_EMAIL_TO is empty")
        return cls(
            webhook=s.notify_webhook.get_secret_value() if s.notify_webhook else None,
            smtp=smtp,
            email_to=s.email_to,
            email_from=s.notify_email_from,
        )

    from_env = from_settings


def send(note: Notification, channels: Channels | None = None, timeout: float = 10) -> list[str]:
    """Deliver ``note`` on every configured channel; the channels used (``["log"]`` if none).

    Every configured channel is tried; if any fails, :class:`NotifyError` names all failures
    after the others were attempted.
    """
    import smtplib  # here, not at module level: DAG files import this module at parse time

    ch = channels or Channels.from_settings()
    used: list[str] = []
    errors: list[str] = []
    if ch.webhook:
        try:
            post_webhook(ch.webhook, note.payload(), timeout)
            used.append("webhook")
        except (OSError, ValueError) as exc:
            errors.append(f"webhook {redact_webhook(ch.webhook)}: {_scrub(str(exc), ch.webhook)}")
    if ch.smtp:
        try:
            send_email(ch.smtp, ch.email_from, ch.email_to, note.subject, note.text(), timeout)
            used.append("smtp")
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            errors.append(f"smtp {redact_smtp(ch.smtp)}: {_scrub(str(exc), ch.smtp, keep_path=True)}")
    if not ch.webhook and not ch.smtp:
        log.warning("nightshift notification (no channel configured): %s", note.text().replace("\n", " | "))
        used.append("log")
    if errors:
        raise NotifyError("; ".join(errors))
    return used


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10) -> None:
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"webhook URL must be http(s), got {redact_webhook(url)}")
    headers = {"Content-Type": "application/json"}
    if parts.username is not None:  # user:password@ becomes Basic auth (urllib would take it for the host)
        import base64

        user = urllib.parse.unquote(parts.username)
        pair = f"{user}:{urllib.parse.unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    data = json.dumps(payload, default=str).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if resp.status >= 300:
            raise OSError(f"HTTP {resp.status}")


def send_email(
    url: str, sender: str, to: tuple[str, ...], subject: str, body: str, timeout: float = 10
) -> None:
    """Mail through ``url``: STARTTLS unless ``smtps://`` (TLS at once) or ``?starttls=false``."""
    import smtplib
    from email.message import EmailMessage

    parts, starttls, context = _smtp_settings(url)
    host = parts.hostname or ""
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, sender, ", ".join(to)
    msg.set_content(body)
    smtp = (
        smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        if parts.scheme == "smtps"
        else smtplib.SMTP(host, port, timeout=timeout)
    )
    with smtp:
        if starttls:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(
                    f"the SMTP server {host}:{port} does not offer STARTTLS; use smtps:// for TLS "
                    "from the start, or add ?starttls=false to send in plain text"
                )
            smtp.starttls(context=context)
        elif parts.scheme == "smtp":
            log.warning(
                "SMTP to %s:%s without TLS (?starttls=false): the mail%s travels in plain text",
                host,
                port,
                " and the password" if parts.password else "",
            )
        if parts.username:
            smtp.login(urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        smtp.send_message(msg)


def _smtp_settings(url: str) -> tuple[urllib.parse.SplitResult, bool, ssl.SSLContext]:
    """The URL's parts, whether to STARTTLS, and the TLS context (``?cafile=`` or the system's)."""
    import ssl

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"SMTP URL must be smtp://host:port or smtps://host:port, got {redact_smtp(url)}")
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - {"starttls", "cafile"})
    if unknown:
        raise ValueError(f"SMTP URL {redact_smtp(url)}: unknown option(s) {unknown}; known: starttls, cafile")
    flag = query.get("starttls", "true").lower()
    if flag not in ("true", "false"):
        raise ValueError(f"SMTP URL {redact_smtp(url)}: starttls must be true or false, got {flag!r}")
    if parts.scheme == "smtps" and flag == "false":
        raise ValueError(f"SMTP URL {redact_smtp(url)}: smtps:// is always TLS, drop ?starttls=false")
    cafile = query.get("cafile") or None
    if cafile and not os.path.isfile(cafile):
        raise ValueError(f"SMTP URL {redact_smtp(url)}: cafile {cafile} is not a file")
    return parts, parts.scheme == "smtp" and flag == "true", ssl.create_default_context(cafile=cafile)


def redact_webhook(url: str) -> str:
    """A webhook URL as logs may show it: scheme and host only (tokens live in path and query)."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    shown = f"{parts.scheme or '?'}://{parts.hostname or '?'}{port}"
    hidden = parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password
    return shown + ("/…(redacted)" if hidden else "")


def redact_smtp(url: str) -> str:
    """An SMTP URL with its password masked (host, port, user and options are no secret)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        netloc = f"{parts.username}:***@{parts.hostname}{port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def _scrub(text: str, url: str, keep_path: bool = False) -> str:
    """``text`` (an exception's message) without any piece of ``url`` that may be a secret: the
    password, and unless ``keep_path`` (SMTP: options only) every piece of path and query."""
    parts = urllib.parse.urlsplit(url)
    pieces = {url, parts.password or ""}
    if not keep_path:
        pieces |= {parts.netloc.rpartition("@")[0], parts.username or ""}
        pieces |= {parts.path, parts.query, parts.fragment, *parts.path.split("/")}
        for pair in parts.query.split("&"):
            pieces |= {pair, *pair.split("=", 1)}
    pieces |= {urllib.parse.unquote(p) for p in pieces}
    public = {parts.scheme, parts.hostname or ""}
    for piece in sorted(pieces - public, key=len, reverse=True):
        if len(piece) >= 4:
            text = text.replace(piece, "…")
    return text
