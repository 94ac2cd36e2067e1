"""The monitor stage's task bodies: ``monitor`` and ``alert`` (which asks the guard rails)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowSkipException

from nightshift.airflow.assets import emit
from nightshift.airflow.context import run_key, triggering_user
from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.links import store_url
from nightshift.airflow.notify import notify_decision
from nightshift.airflow.store import task_backends
from nightshift.airflow.urls import health_url
from nightshift.airflow.xcom import to_xcom
from nightshift.spec import find_spec

if TYPE_CHECKING:
    from nightshift.retrain import RetrainDecision


@map_errors(data=(FileNotFoundError,))
def run_monitor(dataset: str, context: Context) -> dict[str, Any]:
    """Report every pending scored/labelled day; a day that cannot be monitored fails the task.
    The extra link *Evidently report* opens the newest day's drift report."""
    from nightshift.monitor import read_history
    from nightshift.steps.monitor import monitor_step

    b = task_backends()
    store = b.store
    result = monitor_step(b, find_spec(dataset))
    reports = [d.report for d in result.drift] or [
        r["drift_report"] for r in read_history(store, dataset) if r.get("drift_report")
    ]
    push_links(
        context,
        {
            "Evidently report": store_url(store, reports[-1] if reports else None),
            "Model health": health_url(dataset),
        },
    )
    return to_xcom(result)


@map_errors
def run_alert(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    """Raise the alert when the policy says so (once per piece of evidence; otherwise skip,
    saying why). The retrain guard rails are asked first: when they would retrain, the *alert*
    Asset event (through :func:`~nightshift.airflow.assets.when_due`) starts
    ``nightshift_retrain``; when they would not (a cooldown, the budget, labels still missing
    after the onset, a retrain running), the skip is recorded and notified once
    (``retrain_skipped``) here, and no retrain run is started only to skip. The task succeeds
    either way: the alert itself is notified (``alert``)."""
    from nightshift.retrain import find_record
    from nightshift.steps.monitor import alert_step
    from nightshift.steps.retrain import alert_guard_step

    b, spec = task_backends(), find_spec(dataset)
    store = b.store
    alert = alert_step(b, spec)
    if alert is None:
        raise AirflowSkipException(f"{dataset}: no alert (policy: {spec.alerts.model_dump()})")
    seen = store.path("reports", dataset, "monitoring", "last_alert.json")
    key = {"version": alert.version, "kind": alert.kind, "dt": alert.dt, "onset": alert.onset}
    if store.exists(seen) and store.read_json(seen).get("key") == key:
        raise AirflowSkipException(f"{dataset}: alert already raised for this evidence: {alert.reason}")
    extra = to_xcom(alert)
    run = run_key(context)
    known = find_record(store, dataset, run) is not None  # a retry: decided (and told) before
    skip = alert_guard_step(b, spec, run, alert, triggered_by=triggering_user(context))
    if skip is None:
        emit(context, asset, extra)
    elif not known:
        notify_retrain_skipped(context, skip)
    store.write_json_atomic(seen, {"key": key, "alert": extra})
    if skip is not None:
        return {**extra, "retrain": f"skipped by the guard rails: {skip.reason}"}
    return extra


def notify_retrain_skipped(context: Context, decision: RetrainDecision) -> None:
    """The ``retrain_skipped`` notification of a guard-rail decision not to retrain."""
    details: dict[str, Any] = {
        k: getattr(decision, k) for k in ("action", "day", "merged_into", "forced", "actor")
    }
    failed = [c["name"] for c in decision.checks if not c["ok"]]
    details["failed_check"] = failed[0] if failed else None
    title = "retrain skipped by the guard rails"
    notify_decision("retrain_skipped", context, title, decision.reason, details)
