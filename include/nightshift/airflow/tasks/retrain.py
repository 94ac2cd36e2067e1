"""The retrain stage's task bodies: ``decide``, ``train`` (the train stage's body) and ``record``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from nightshift.airflow.assets import triggering_events
from nightshift.airflow.context import on_behalf_of, run_key, trigger, triggering_user
from nightshift.airflow.errors import map_errors
from nightshift.airflow.store import task_backends
from nightshift.airflow.tasks.monitor import notify_retrain_skipped
from nightshift.airflow.xcom import from_xcom, to_xcom
from nightshift.spec import find_spec

if TYPE_CHECKING:
    from nightshift.monitor import Alert


def _alerts(context: Context) -> list[Alert]:
    """The alerts of the *alert* Asset events that started this run (their extra: the alert)."""
    from nightshift.monitor import Alert

    out: list[Alert] = []
    for ev in triggering_events(context):
        extra = getattr(ev, "extra", None) or {}
        if extra.get("kind") and extra.get("version"):
            out.append(from_xcom(Alert, extra))
    return out


@map_errors(data=(ValueError,))
def run_retrain_decide(dataset: str, context: Context) -> dict[str, Any]:
    """The guard rails on this run's alerts; a skip is recorded, notified (once, by the run
    that decided it) and skips the retrain. A manual run's overrides are validated first (a
    bad request fails, nothing is recorded). The actor is the user Airflow says started the
    run (``nightshift-monitor`` for an alert's run); the ``actor`` Param is *on behalf of*."""
    from nightshift.retrain import OVERRIDES, find_record
    from nightshift.steps.retrain import retrain_decide_step

    p = context.get("params") or {}
    force = bool(p.get("force"))
    who = getattr(context["dag_run"], "triggering_user_name", None)
    overrides = {k: p.get(k) for k in OVERRIDES}
    b, key = task_backends(), run_key(context)
    known = find_record(b.store, dataset, key) is not None  # a retry: decided (and told) before
    decision = retrain_decide_step(
        b,
        find_spec(dataset),
        key,
        _alerts(context),
        force=force,
        actor=str(who or "nightshift-monitor"),
        overrides=overrides,
        triggered_by=triggering_user(context),
        on_behalf_of=on_behalf_of(context),
    )
    if not decision.ran:
        if not known:
            notify_retrain_skipped(context, decision)
        raise AirflowSkipException(f"{dataset}: not retraining: {decision.reason}")
    return to_xcom(decision)


def run_retrain_train(dataset: str, decided: dict[str, Any], context: Context) -> dict[str, Any]:
    """``run_train`` with the decision's overrides (its errors are mapped there)."""
    from nightshift.airflow.tasks.train import run_train
    from nightshift.retrain import RetrainDecision
    from nightshift.spec import parse_dt
    from nightshift.steps.train import TrainRequest

    decision = from_xcom(RetrainDecision, decided)
    ov = decision.overrides
    request = TrainRequest(
        since=parse_dt(decision.since) if decision.since else None,
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

    store, key, ti, dr = task_backends().store, run_key(context), context["ti"], context["dag_run"]
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
    return to_xcom(rec) if rec else None
