"""The gate stage's task bodies: ``gate``, ``serving_check`` and ``promote``."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowSkipException

from nightshift.airflow.context import run_key, trigger, triggering_user
from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.notify import notify_decision
from nightshift.airflow.store import task_backends
from nightshift.airflow.tasks.train import _finish_bootstrap
from nightshift.airflow.urls import health_url
from nightshift.airflow.xcom import from_xcom, to_xcom
from nightshift.registry import ui_links
from nightshift.spec import find_spec
from nightshift.verdict import GateResult


@map_errors
def run_gate(dataset: str, trained: dict[str, Any], context: Context) -> dict[str, Any]:
    from nightshift.steps.gate import gate_step
    from nightshift.steps.train import TrainResult

    run_id = from_xcom(TrainResult, trained).run_id
    verdict = gate_step(task_backends(), find_spec(dataset), run_id, run_key(context))
    push_links(context, {**verdict.links, "Model health": health_url(dataset)})
    return to_xcom(verdict)


@map_errors
def run_serving_check(dataset: str, verdict: dict[str, Any], context: Context) -> dict[str, Any]:
    """The gate's serving check on its candidate: the verdict with its result (a failure turns
    it into a rejection, which ``promote`` records and notifies). A registry that cannot be
    reached, or a server that does not start, is retried; a run without a sample fails."""
    from nightshift.steps.gate import serving_check_step

    out = serving_check_step(task_backends(), find_spec(dataset), from_xcom(GateResult, verdict))
    logging.getLogger(__name__).info("serving check: %s", (out.serving or {}).get("detail"))
    return to_xcom(out)


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
    from nightshift.steps.gate import decide_step

    b, gated = task_backends(), from_xcom(GateResult, verdict)
    event = decide_step(
        b,
        find_spec(dataset),
        gated,
        actor="nightshift-gate",
        trigger=trigger(context),
        review=review if review and review.get("needed") else None,
        triggered_by=triggering_user(context),
        run_key=run_key(context),
    )
    links = {**ui_links(dataset, version=event.version), "Model health": health_url(dataset)}
    push_links(context, links)
    outcome = {"version": str(event.version), "model_kind": gated.model_kind}
    if event.action != "promote":
        _finish_bootstrap(b, dataset, context, "rejected", reason=event.reason, **outcome)
        champion = f"v{event.previous_version}" if event.previous_version else "none"
        hints = "; ".join(gated.hints)
        notify_decision(
            "rejection",
            context,
            f"v{event.version} not promoted (champion stays {champion})",
            f"by {event.actor}: {event.reason}" + (f" | what to try: {hints}" if hints else ""),
            {**to_xcom(event), "hints": hints or None, "model_kind": gated.model_kind},
            {k: v for k, v in links.items() if k != "Model health"},
        )
        raise AirflowSkipException(f"v{event.version} not promoted: {event.reason}")
    _finish_bootstrap(b, dataset, context, "promoted", **outcome)
    context["outlet_events"][asset].extra = {
        "version": event.version,
        "previous": event.previous_version,
    }
    return to_xcom(event)
