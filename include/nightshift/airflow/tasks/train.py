"""The train stage's task body: ``train`` (the bootstrap guard rail on automatic runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from nightshift.airflow.context import AUTOMATIC_RUN_TYPES, dag_run, run_key, run_type, triggering_user
from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.notify import notify_decision
from nightshift.airflow.store import task_backends
from nightshift.airflow.tasks.score import _days_to_score, await_labels
from nightshift.airflow.xcom import to_xcom
from nightshift.registry import ui_links
from nightshift.spec import find_spec, parse_dt

if TYPE_CHECKING:
    from nightshift.backends import Backends


def _automatic_guard(b: Backends, dataset: str, context: Context) -> None:
    """An automatic training run on new data: skipped (raises) when a champion serves and
    ``retrain.on_new_data`` is ``bootstrap`` (monitoring drives retraining then), or, while there
    is no champion, when the bootstrap guard rail says wait (the first skip of a wait is
    notified). A manual run never comes here."""
    from nightshift import registry
    from nightshift.retrain import BOOTSTRAP, find_record
    from nightshift.steps.retrain import bootstrap_decide_step

    spec = find_spec(dataset)
    version = registry.alias_version(b.client, dataset, registry.CHAMPION)
    if version is not None:
        if spec.retrain.on_new_data != "bootstrap":
            return
        raise AirflowSkipException(
            f"{dataset}: champion v{version} serves; with retrain.on_new_data=bootstrap new data "
            f"does not retrain, monitoring does (nightshift_retrain.{dataset})"
        )
    key = run_key(context)
    known = find_record(b.store, dataset, key, BOOTSTRAP) is not None  # a retry: decided (and told) before
    decision = bootstrap_decide_step(b, spec, key, triggered_by=triggering_user(context))
    if decision.ran:
        return
    checks = {c["name"]: c for c in decision.checks}
    if not known and checks.get("notify", {}).get("ok", True):
        details = {"kind": "bootstrap", "action": decision.action, "day": decision.day}
        details["failed_check"] = "bootstrap"
        title = "bootstrap training skipped by the guard rails (no champion yet)"
        notify_decision("retrain_skipped", context, title, decision.reason, details)
    raise AirflowSkipException(f"{dataset}: not training: {decision.reason}")


def _finish_bootstrap(b: Backends, dataset: str, context: Context, status: str, **details: Any) -> None:
    """Record how a bootstrap attempt of this run ended (no record: not a bootstrap run)."""
    from nightshift.retrain import BOOTSTRAP, finish

    finish(b.store, dataset, run_key(context), status, BOOTSTRAP, **details)


@map_errors(data=(ValueError,))
def run_train(dataset: str, context: Context, request: Any = None) -> dict[str, Any]:
    """Train on the window; ``request`` (a TrainRequest) overrides the run's Params."""
    from nightshift.retrain import NOT_TRAINED
    from nightshift.steps.train import TrainRequest, train_step
    from nightshift.train import InsufficientData

    p = context.get("params") or {}
    b = task_backends()
    if request is None:
        if run_type(context) in AUTOMATIC_RUN_TYPES:
            _automatic_guard(b, dataset, context)
            # the day's labels branch may still be validating: a window read before they land
            # would change under the gate (its fingerprint check refuses such a candidate)
            days = _days_to_score(context)
            if days:
                await_labels(b.store, find_spec(dataset), days, purpose="training")
        from nightshift.retrain import check_xgb_params

        params, problems = check_xgb_params(p.get("xgb_params") or {})
        if problems:
            raise AirflowFailException(f"{dataset}: invalid training request: " + "; ".join(problems))
        request = TrainRequest(
            as_of=parse_dt(p["as_of"]) if p.get("as_of") else None,
            window_days=p.get("window_days") or None,
            params=params,
            num_boost_round=p.get("num_boost_round") or None,
            trials=p.get("tuning_trials"),
            timeout_s=p.get("tuning_timeout_s") or None,
        )
    dr = dag_run(context)
    tags = {"dag_id": dr.dag_id, "run_id": dr.run_id, "run_type": run_type(context)}
    try:
        result = train_step(b, find_spec(dataset), run_key(context), request, tags)
        push_links(context, ui_links(dataset, run_id=result.run_id))
        return to_xcom(result)
    except InsufficientData as exc:
        if run_type(context) in AUTOMATIC_RUN_TYPES:
            _finish_bootstrap(b, dataset, context, NOT_TRAINED, reason=str(exc))
            raise AirflowSkipException(f"not training yet: {exc}") from None
        raise
