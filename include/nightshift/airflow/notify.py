"""The Airflow side of notifications: a notifier for task callbacks (failures, quarantines)."""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from nightshift.notify import Notification, NotifyError, send

log = logging.getLogger(__name__)


class Quarantined(AirflowFailException):
    """A rejected batch was quarantined: fail without retrying (the data will not change)."""


def task_url(dag_id: str, run_id: str, task_id: str) -> str:
    base = os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"


def from_context(event: str, context: Any, title: str = "", message: str = "") -> Notification:
    """A notification about the task instance in ``context`` (dataset from the DAG id)."""
    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    exc = context.get("exception")
    if event == "failure" and isinstance(exc, Quarantined):
        event = "quarantine"
    dataset = dag_id.split(".", 1)[1] if "." in dag_id else dag_id
    return Notification(
        event=event,
        dataset=dataset,
        title=title or f"{task_id} {'quarantined its batch' if event == 'quarantine' else 'failed'}",
        message=message or (f"{type(exc).__name__}: {exc}" if exc else ""),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        try_number=getattr(ti, "try_number", None),
        links={"task": task_url(dag_id, run_id, task_id)},
    )


class NightshiftNotifier(BaseNotifier):
    """Task callback: a failure (or quarantine) → webhook / SMTP / log (``nightshift.notify``).

    A notification that cannot be delivered is logged, never raised: it must not change the
    task's outcome."""

    def __init__(self, event: str = "failure") -> None:
        super().__init__()
        self.event = event

    def notify(self, context: Any) -> None:
        try:
            used = send(from_context(self.event, context))
            log.info("nightshift notification sent via %s", ", ".join(used))
        except NotifyError as exc:
            log.error("nightshift notification not delivered: %s", exc)
