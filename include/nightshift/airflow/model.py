"""Task bodies of the model-plane DAGs: read the run's context, call the core, map errors.

Data problems (too few labels, a bad window, a missing GPU on a GPU-only worker, a champion
that cannot be loaded) fail without retries; an unreachable MLflow server is retried by
Airflow (``nightshift.airflow.errors.map_errors``). Every registry write is keyed on the DAG
run, so a retried task finds its work.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from nightshift.airflow.assets import triggering_events
from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.notify import notify_decision
from nightshift.airflow.store import get_store, use_mlflow_connection
from nightshift.airflow.urls import health_url
from nightshift.registry import ui_links
from nightshift.spec import DatasetSpec, find_spec, parse_dt

if TYPE_CHECKING:
    from nightshift.storage import Store

log = logging.getLogger(__name__)

# runs the scheduler starts on its own: too little data yet is a skip, not an incident
AUTOMATIC_RUN_TYPES = {"scheduled", "asset_triggered", "backfill"}


def _run(context: Context) -> Any:
    return context["dag_run"]


def run_key(context: Context) -> str:
    """The orchestrator's identity of this run: what makes a retry find its own work."""
    dr = _run(context)
    return f"{dr.dag_id}/{dr.run_id}"


def run_type(context: Context) -> str:
    return str(getattr(_run(context).run_type, "value", _run(context).run_type))


def trigger(context: Context) -> str:
    """Who/what started this run, for the audit trail."""
    dr = _run(context)
    who = getattr(dr, "triggering_user_name", None)
    return f"dag {dr.dag_id} run {dr.run_id} ({run_type(context)}{', by ' + who if who else ''})"


def triggering_user(context: Context) -> str:
    """The user Airflow authenticated as starting this run; ``scheduler`` for the runs it
    starts itself (scheduled, asset-triggered), which have none."""
    return str(getattr(_run(context), "triggering_user_name", None) or "scheduler")


def on_behalf_of(context: Context) -> str | None:
    """The run's free-text ``actor`` Param: recorded as *on behalf of*, never as the actor."""
    value = str((context.get("params") or {}).get("actor") or "").strip()
    return value[:200] or None


def _automatic_guard(dataset: str, context: Context) -> None:
    """An automatic training run on new data: skipped (raises) when a champion serves and
    ``retrain.on_new_data`` is ``bootstrap`` (monitoring drives retraining then), or, while there
    is no champion, when the bootstrap guard rail says wait (the first skip of a wait is
    notified). A manual run never comes here."""
    from nightshift import registry
    from nightshift.pipeline import bootstrap_decide_step
    from nightshift.retrain import BOOTSTRAP, find_record

    spec = find_spec(dataset)
    use_mlflow_connection()
    version = registry.alias_version(registry.configure(), dataset, registry.CHAMPION)
    if version is not None:
        if spec.retrain.on_new_data != "bootstrap":
            return
        raise AirflowSkipException(
            f"{dataset}: champion v{version} serves; with retrain.on_new_data=bootstrap new data "
            f"does not retrain, monitoring does (nightshift_retrain.{dataset})"
        )
    store, key = get_store(), run_key(context)
    known = find_record(store, dataset, key, BOOTSTRAP) is not None  # a retry: decided (and told) before
    decision = bootstrap_decide_step(store, spec, key, triggered_by=triggering_user(context))
    if decision["action"] == "retrain":
        return
    checks = {c["name"]: c for c in decision.get("checks") or []}
    if not known and checks.get("notify", {}).get("ok", True):
        details = {"kind": "bootstrap", "action": decision["action"], "day": decision.get("day")}
        details["failed_check"] = "bootstrap"
        title = "bootstrap training skipped by the guard rails (no champion yet)"
        notify_decision("retrain_skipped", context, title, decision["reason"], details)
    raise AirflowSkipException(f"{dataset}: not training: {decision['reason']}")


def _finish_bootstrap(dataset: str, context: Context, status: str, **details: Any) -> None:
    """Record how a bootstrap attempt of this run ended (no record: not a bootstrap run)."""
    from nightshift.retrain import BOOTSTRAP, finish

    finish(get_store(), dataset, run_key(context), status, BOOTSTRAP, **details)


@map_errors(data=(ValueError,))
def run_train(dataset: str, context: Context, request: Any = None) -> dict[str, Any]:
    """Train on the window; ``request`` (a TrainRequest) overrides the run's Params."""
    from nightshift.pipeline import TrainRequest, train_step
    from nightshift.retrain import NOT_TRAINED
    from nightshift.train import InsufficientData

    p = context.get("params") or {}
    if request is None:
        if run_type(context) in AUTOMATIC_RUN_TYPES:
            _automatic_guard(dataset, context)
            # the day's labels branch may still be validating: a window read before they land
            # would change under the gate (its fingerprint check refuses such a candidate)
            days = _days_to_score(context)
            if days:
                await_labels(get_store(), find_spec(dataset), days, purpose="training")
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
    dr = _run(context)
    tags = {"dag_id": dr.dag_id, "run_id": dr.run_id, "run_type": run_type(context)}
    try:
        result = train_step(get_store(), find_spec(dataset), run_key(context), request, tags)
        push_links(context, ui_links(dataset, run_id=result["run_id"]))
        return result
    except InsufficientData as exc:
        if run_type(context) in AUTOMATIC_RUN_TYPES:
            _finish_bootstrap(dataset, context, NOT_TRAINED, reason=str(exc))
            raise AirflowSkipException(f"not training yet: {exc}") from None
        raise


@map_errors
def run_gate(dataset: str, trained: dict[str, Any], context: Context) -> dict[str, Any]:
    from nightshift.pipeline import gate_step

    verdict = gate_step(get_store(), find_spec(dataset), trained["run_id"], run_key(context))
    push_links(context, {**verdict["links"], "Model health": health_url(dataset)})
    return verdict


@map_errors
def run_serving_check(dataset: str, verdict: dict[str, Any], context: Context) -> dict[str, Any]:
    """The gate's serving check on its candidate: the verdict with its result (a failure turns
    it into a rejection, which ``promote`` records and notifies). A registry that cannot be
    reached, or a server that does not start, is retried; a run without a sample fails."""
    from nightshift.pipeline import serving_check_step

    use_mlflow_connection()
    out = serving_check_step(find_spec(dataset), verdict)
    logging.getLogger(__name__).info("serving check: %s", (out.get("serving") or {}).get("detail"))
    return out


@map_errors
def run_promote(
    dataset: str,
    verdict: dict[str, Any],
    context: Context,
    asset: Asset,
    review: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Promote (emitting the champion Asset event), or record the rejection, notify it and
    skip. A human review of a borderline verdict decides instead of the gate (the approver is
    the actor); a verdict against a champion that has been replaced since is refused."""
    from nightshift.pipeline import decide_step

    event = decide_step(
        get_store(),
        find_spec(dataset),
        verdict,
        actor="nightshift-gate",
        trigger=trigger(context),
        review=review if review and review.get("needed") else None,
        triggered_by=triggering_user(context),
        run_key=run_key(context),
    )
    links = {**ui_links(dataset, version=event["version"]), "Model health": health_url(dataset)}
    push_links(context, links)
    outcome = {"version": str(event["version"]), "model_kind": verdict.get("model_kind")}
    if event["action"] != "promote":
        _finish_bootstrap(dataset, context, "rejected", reason=event["reason"], **outcome)
        champion = f"v{event['previous_version']}" if event.get("previous_version") else "none"
        hints = "; ".join(verdict.get("hints") or [])
        notify_decision(
            "rejection",
            context,
            f"v{event['version']} not promoted (champion stays {champion})",
            f"by {event['actor']}: {event['reason']}" + (f" | what to try: {hints}" if hints else ""),
            {**event, "hints": hints or None, "model_kind": verdict.get("model_kind")},
            {k: v for k, v in links.items() if k != "Model health"},
        )
        raise AirflowSkipException(f"v{event['version']} not promoted: {event['reason']}")
    _finish_bootstrap(dataset, context, "promoted", **outcome)
    context["outlet_events"][asset].extra = {
        "version": event["version"],
        "previous": event["previous_version"],
    }
    return event


def _days_to_score(context: Context) -> list[date] | None:
    p = context.get("params") or {}
    if p.get("dt"):
        return [parse_dt(str(p["dt"]))]
    days: list[date] = []
    for ev in triggering_events(context):
        dt = (getattr(ev, "extra", None) or {}).get("dt")
        if dt and parse_dt(str(dt)) not in days:
            days.append(parse_dt(str(dt)))
    return days or None


# how long a scoring of new curated days waits for the same days' labels being ingested
LABELS_WAIT_S = 60.0


def await_labels(
    store: Store,
    spec: DatasetSpec,
    days: list[date],
    timeout_s: float = LABELS_WAIT_S,
    purpose: str = "scoring",
) -> None:
    """Wait (at most ``timeout_s``, polling each second) while the labels arriving on ``days``
    are being ingested (:func:`nightshift.ingest.labels_in_flight`). For a scoring: the monitor
    run that its *predictions* event starts then reads them, and they need no monitor run of
    their own (:func:`nightshift.airflow.ingest.labels_monitored_later`); past the bound the
    scoring goes on and the labels start their own monitor run, as they would have. For an
    automatic training run: its window includes them, so the gate finds the window it trained
    on (else it refuses the candidate: the window changed)."""
    import time

    from nightshift.ingest import labels_in_flight

    deadline = time.monotonic() + timeout_s
    waiting = [d for d in days if labels_in_flight(store, spec, d)]
    if waiting:
        log.info("%s: waiting for the labels of %s being ingested", spec.name, ", ".join(map(str, waiting)))
    while waiting and time.monotonic() < deadline:
        time.sleep(1.0)
        waiting = [d for d in waiting if labels_in_flight(store, spec, d)]
    if waiting:
        late = ", ".join(map(str, waiting))
        log.warning("%s: labels of %s not validated after %.0f s: %s", spec.name, late, timeout_s, purpose)


@map_errors(data=(FileNotFoundError,))
def run_score(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    """Score the days named by the triggering curated events (or ``params.dt``); on a new
    champion or a bare trigger, the recent curated days that have no predictions yet. Days of
    curated events first wait (bounded) for their labels being ingested (:func:`await_labels`),
    so that a night is monitored once. A day that was never curated fails the task at once."""
    from nightshift.pipeline import score_step
    from nightshift.score import unscored_days

    spec, store = find_spec(dataset), get_store()
    days = _days_to_score(context)
    if days is None:
        days = unscored_days(store, spec)
    elif not (context.get("params") or {}).get("dt"):
        await_labels(store, spec, days)
    if not days:
        raise AirflowSkipException(f"{dataset}: every recent curated day already has predictions")
    result = score_step(store, spec, days)
    if result["champion"] is None:
        raise AirflowSkipException(
            f"{dataset}: no champion model yet, nothing scored ({', '.join(d.isoformat() for d in days)}); "
            f"train and promote one (nightshift_train.{dataset})"
        )
    context["outlet_events"][asset].extra = {
        "version": result["champion"],
        "days": [s["dt"] for s in result["scored"]],
    }
    return result


@map_errors
def run_rollback(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    from nightshift import registry

    p = context.get("params") or {}
    reason = str(p.get("reason") or "").strip()
    if not reason:
        raise AirflowFailException("a rollback needs a reason (the 'reason' param)")
    use_mlflow_connection()
    client = registry.configure()
    event = registry.rollback(
        client,
        get_store(),
        dataset,
        actor=triggering_user(context),
        trigger=trigger(context),
        reason=reason,
        triggered_by=triggering_user(context),
        on_behalf_of=on_behalf_of(context),
        run_key=run_key(context),
    )
    push_links(context, {**ui_links(dataset, version=event.version), "Model health": health_url(dataset)})
    context["outlet_events"][asset].extra = {"version": event.version, "rolled_back": event.previous_version}
    return event.to_dict()


@map_errors
def run_manual_promote(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    """Promote the version in the run's Params after checking it (a bad request fails at once,
    naming the problem; nothing is changed)."""
    from nightshift.pipeline import manual_promote_step

    p = context.get("params") or {}
    if p.get("version") in (None, ""):
        raise AirflowFailException("a manual promotion needs the 'version' param")
    event = manual_promote_step(
        get_store(),
        find_spec(dataset),
        str(p["version"]),
        actor=triggering_user(context),
        trigger=trigger(context),
        reason=str(p.get("reason") or ""),
        override_gate=bool(p.get("override_gate")),
        triggered_by=triggering_user(context),
        on_behalf_of=on_behalf_of(context),
        run_key=run_key(context),
    )
    push_links(context, {**ui_links(dataset, version=event["version"]), "Model health": health_url(dataset)})
    context["outlet_events"][asset].extra = {
        "version": event["version"],
        "previous": event["previous_version"],
    }
    return event
