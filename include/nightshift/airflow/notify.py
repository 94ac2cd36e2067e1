"""The Airflow side of notifications: a notifier for task callbacks — failures and quarantines
(every task, in the default args), alerts, promotions, rollbacks, and approvals waiting for a
human — :func:`notify_decision` for what a task decides and then skips on (a rejected
challenger, a retrain the guard rails skipped), and the warnings of a published batch; each
with links into the Airflow UI."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from nightshift.airflow.urls import health_url, task_url
from nightshift.notify import Notification, NotifyError, send

if TYPE_CHECKING:
    from nightshift.validate import ValidationOutcome


log = logging.getLogger(__name__)


class Quarantined(AirflowFailException):
    """A rejected batch was quarantined: fail without retrying (the data will not change)."""


def _describe(event: str, result: dict[str, Any], dataset: str) -> tuple[str, str]:
    """Title and message of a success-side event from the task's return value."""
    if event == "alert":
        title = f"{result.get('kind', 'monitoring')} alert on v{result.get('version')}"
        return title, str(result.get("reason") or "")
    if event in ("promotion", "rollback"):
        prev = result.get("previous_version")
        was = f" (was v{prev})" if prev else ""
        verb = "rolled back to" if event == "rollback" else "promoted"
        title = f"{verb} v{result.get('version')}{was}"
        who = str(result.get("actor"))
        if result.get("on_behalf_of") and result["on_behalf_of"] != who:
            who += f" on behalf of {result['on_behalf_of']}"
        return title, f"by {who}: {result.get('reason')}"
    return f"{dataset}: {event}", ""


def from_context(
    event: str,
    context: Any,
    title: str = "",
    message: str = "",
    details: dict[str, Any] | None = None,
    links_extra: dict[str, str] | None = None,
) -> Notification:
    """A notification about the task instance in ``context`` (dataset from the DAG id)."""
    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    exc = context.get("exception")
    if event == "failure" and isinstance(exc, Quarantined):
        event = "quarantine"
    dataset = dag_id.split(".", 1)[1] if "." in dag_id else dag_id
    links = {"task": task_url(dag_id, run_id, task_id)}
    found: dict[str, Any] = {}
    if event in ("alert", "promotion", "rollback") and not title:
        result = ti.xcom_pull(task_ids=task_id) or {}
        title, message = _describe(event, result, dataset)
        found = {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool)) or v is None}
    elif event == "review" and not title:
        task = context.get("task")
        title = getattr(task, "subject", "") or "a promotion waits for approval"
        message = "A borderline verdict waits for a human: approve or reject in Airflow (Required actions)."
        links["approve or reject"] = task_url(dag_id, run_id, task_id) + "/required_actions"
    if event != "failure" and event != "quarantine":
        links["model health"] = health_url(dataset)
    links.update(links_extra or {})
    default_title = f"{task_id} {'quarantined its batch' if event == 'quarantine' else 'failed'}"
    return Notification(
        event=event,
        dataset=dataset,
        title=title or default_title,
        message=message or (f"{type(exc).__name__}: {exc}" if exc else ""),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        try_number=getattr(ti, "try_number", None),
        links=links,
        details=found if details is None else details,
    )


def notify_decision(
    event: str,
    context: Any,
    title: str,
    message: str,
    details: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
) -> None:
    """Tell the operator now about a decision this task made (it then skips, and a skip has no
    callback with its reason). Logged, never raised: it must not change the task's outcome."""
    try:
        plain = {
            k: v for k, v in (details or {}).items() if isinstance(v, (str, int, float, bool)) or v is None
        }
        note = from_context(event, context, title, message, plain, links)
        used = send(note)
        log.info("nightshift %s notification sent via %s", event, ", ".join(used))
    except (NotifyError, ValueError) as exc:
        log.error("nightshift %s notification not delivered: %s", event, exc)


def validation_warnings(
    context: Any, outcome: ValidationOutcome, report: str | None = None, data_docs: str | None = None
) -> Notification:
    """The ``validation_warning`` notification of a batch published with failed warning-severity
    checks (named with their counts; a pii column's never with values), linking the task, the
    validation report, the Data Docs and Model health."""
    ti = context["ti"]
    links = {"task": task_url(ti.dag_id, ti.run_id, ti.task_id)}
    if report:
        links["report"] = report
    if data_docs:
        links["Data Docs"] = data_docs
    links["model health"] = health_url(outcome.dataset)
    warned = outcome.warnings
    return Notification(
        event="validation_warning",
        severity="warning",
        dataset=outcome.dataset,
        title=f"{outcome.kind} of {outcome.dt} published with {len(warned)} warning(s)",
        message=f"{outcome.rows:,} rows published; warnings: {outcome.warning_text(limit=8)}",
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", None),
        links=links,
        details={"kind": outcome.kind, "dt": outcome.dt, "rows": outcome.rows, "warnings": len(warned)},
    )


def deliver(note: Notification) -> None:
    """Send ``note``; one that cannot be delivered is logged, never raised (it must not change
    the task's outcome)."""
    try:
        used = send(note)
        log.info("nightshift %s notification sent via %s", note.event, ", ".join(used))
    except (NotifyError, ValueError) as exc:
        log.error("nightshift %s notification not delivered: %s", note.event, exc)


class NightshiftNotifier(BaseNotifier):
    """Task callback → webhook / SMTP / log (``nightshift.notify``): ``failure`` (or the
    quarantine it turns out to be), ``alert``, ``promotion``, ``rollback``, ``review``.

    A notification that cannot be delivered is logged, never raised: it must not change the
    task's outcome."""

    def __init__(self, event: str = "failure") -> None:
        super().__init__()
        self.event = event

    def notify(self, context: Any) -> None:
        try:
            note = from_context(self.event, context)
        except ValueError as exc:
            log.error("nightshift %s notification not delivered: %s", self.event, exc)
            return
        deliver(note)
