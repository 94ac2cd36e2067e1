"""Task bodies of the monitoring and retraining DAGs: read the run's context, call the core;
errors are mapped by ``nightshift.airflow.errors.map_errors`` (data → fail now, service → retry)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from nightshift.airflow.assets import emit, triggering_events
from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.links import store_url
from nightshift.airflow.model import on_behalf_of, run_key, trigger, triggering_user
from nightshift.airflow.notify import notify_decision
from nightshift.airflow.store import get_store
from nightshift.airflow.urls import health_url
from nightshift.spec import find_spec
from nightshift.storage import finite


@map_errors(data=(FileNotFoundError,))
def run_monitor(dataset: str, context: Context) -> dict[str, Any]:
    """Report every pending scored/labelled day; a day that cannot be monitored fails the task.
    The extra link *Evidently report* opens the newest day's drift report."""
    from nightshift.pipeline import monitor_step, read_history

    store = get_store()
    result = finite(monitor_step(store, find_spec(dataset)))
    reports = [d["report"] for d in result["drift"]] or [
        r["drift_report"] for r in read_history(store, dataset) if r.get("drift_report")
    ]
    push_links(
        context,
        {
            "Evidently report": store_url(store, reports[-1] if reports else None),
            "Model health": health_url(dataset),
        },
    )
    return result


@map_errors
def run_alert(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    """Raise the alert when the policy says so (once per piece of evidence; otherwise skip,
    saying why). The retrain guard rails are asked first: when they would retrain, the *alert*
    Asset event (through :func:`~nightshift.airflow.assets.when_due`) starts
    ``nightshift_retrain``; when they would not (a cooldown, the budget, labels still missing
    after the onset, a retrain running), the skip is recorded and notified once
    (``retrain_skipped``) here, and no retrain run is started only to skip. The task succeeds
    either way: the alert itself is notified (``alert``)."""
    from nightshift.pipeline import alert_guard_step, alert_step
    from nightshift.retrain import find_record

    store, spec = get_store(), find_spec(dataset)
    alert = alert_step(store, spec)
    if alert is None:
        raise AirflowSkipException(f"{dataset}: no alert (policy: {spec.alerts.model_dump()})")
    seen = store.path("reports", dataset, "monitoring", "last_alert.json")
    key = {k: alert[k] for k in ("version", "kind", "dt", "onset")}
    if store.exists(seen) and store.read_json(seen).get("key") == key:
        raise AirflowSkipException(f"{dataset}: alert already raised for this evidence: {alert['reason']}")
    extra = finite(alert)
    run = run_key(context)
    known = find_record(store, dataset, run) is not None  # a retry: decided (and told) before
    skip = alert_guard_step(store, spec, run, extra, triggered_by=triggering_user(context))
    if skip is None:
        emit(context, asset, extra)
    elif not known:
        notify_retrain_skipped(context, skip)
    store.write_json_atomic(seen, {"key": key, "alert": extra})
    if skip is not None:
        return {**extra, "retrain": f"skipped by the guard rails: {skip['reason']}"}
    return extra


def notify_retrain_skipped(context: Context, decision: dict[str, Any]) -> None:
    """The ``retrain_skipped`` notification of a guard-rail decision not to retrain."""
    details = {k: decision.get(k) for k in ("action", "day", "merged_into", "forced", "actor")}
    failed = [c["name"] for c in decision.get("checks") or [] if not c["ok"]]
    details["failed_check"] = failed[0] if failed else None
    title = "retrain skipped by the guard rails"
    notify_decision("retrain_skipped", context, title, decision["reason"], details)


def _alerts(context: Context) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ev in triggering_events(context):
        extra = getattr(ev, "extra", None) or {}
        if extra.get("kind") and extra.get("version"):
            out.append(dict(extra))
    return out


@map_errors(data=(ValueError,))
def run_retrain_decide(dataset: str, context: Context) -> dict[str, Any]:
    """The guard rails on this run's alerts; a skip is recorded, notified (once, by the run
    that decided it) and skips the retrain. A manual run's overrides are validated first (a
    bad request fails, nothing is recorded). The actor is the user Airflow says started the
    run (``nightshift-monitor`` for an alert's run); the ``actor`` Param is *on behalf of*."""
    from nightshift.pipeline import retrain_decide_step
    from nightshift.retrain import OVERRIDES, find_record

    p = context.get("params") or {}
    force = bool(p.get("force"))
    who = getattr(context["dag_run"], "triggering_user_name", None)
    overrides = {k: p.get(k) for k in OVERRIDES}
    store, key = get_store(), run_key(context)
    known = find_record(store, dataset, key) is not None  # a retry: decided (and told) before
    decision = retrain_decide_step(
        store,
        find_spec(dataset),
        key,
        _alerts(context),
        force=force,
        actor=str(who or "nightshift-monitor"),
        overrides=overrides,
        triggered_by=triggering_user(context),
        on_behalf_of=on_behalf_of(context),
    )
    if decision["action"] != "retrain":
        if not known:
            notify_retrain_skipped(context, decision)
        raise AirflowSkipException(f"{dataset}: not retraining: {decision['reason']}")
    return decision


def run_retrain_train(dataset: str, decision: dict[str, Any], context: Context) -> dict[str, Any]:
    """``run_train`` with the decision's overrides (its errors are mapped there)."""
    from nightshift.airflow.model import run_train
    from nightshift.pipeline import TrainRequest
    from nightshift.spec import parse_dt

    ov = decision.get("overrides") or {}
    request = TrainRequest(
        since=parse_dt(decision["since"]) if decision.get("since") else None,
        window_days=ov.get("window_days"),
        params=dict(ov.get("xgb_params") or {}),
        num_boost_round=ov.get("num_boost_round"),
    )
    return run_train(dataset, context, request)


@map_errors
def run_retrain_record(dataset: str, context: Context) -> dict[str, Any] | None:
    """Record how the retrain ended (promoted, rejected, not trained, failed); a failure
    fails this task too, so the run shows it."""
    from nightshift import retrain

    store, key, ti, dr = get_store(), run_key(context), context["ti"], context["dag_run"]
    found = retrain.find_record(store, dataset, key)
    if found is None:
        raise AirflowFailException(f"{dataset}: the guard rails recorded no decision for this run")
    if not found.ran:
        raise AirflowSkipException(f"{dataset}: skipped by the guard rails: {found.reason}")
    states = ti.get_task_states(dag_id=dr.dag_id, run_ids=[dr.run_id]).get(dr.run_id, {})
    # the serving check's verdict is the gate's with the check's result (a failure: a rejection)
    verdict = ti.xcom_pull(task_ids="serving_check") or ti.xcom_pull(task_ids="gate") or {}
    failed = sorted(t for t, st in states.items() if st in ("failed", "upstream_failed"))
    if failed:
        status = "failed"
    elif states.get("train") == "skipped":
        status = "not-trained"
    elif states.get("promote") == "success":
        status = "promoted"
    elif states.get("promote") == "skipped":
        status = "rejected"
    else:
        status = "failed"
    details = {"version": str(verdict["version"]), "reason": verdict["reason"]} if verdict else {}
    rec = retrain.finish(store, dataset, key, status, tasks=states, trigger=trigger(context), **details)
    if status == "failed":
        raise AirflowFailException(f"{dataset}: the retrain failed at {', '.join(failed) or 'promotion'}")
    return rec.to_dict() if rec else None
