"""The manual promotion DAG's task body."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowFailException

from nightshift.airflow.context import on_behalf_of, run_key, trigger, triggering_user
from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.store import task_backends
from nightshift.airflow.urls import health_url
from nightshift.airflow.xcom import to_xcom
from nightshift.registry import ui_links
from nightshift.spec import find_spec


@map_errors
def run_manual_promote(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    """Promote the version in the run's Params after checking it (a bad request fails at once,
    naming the problem; nothing is changed)."""
    from nightshift.steps.gate import manual_promote_step

    p = context.get("params") or {}
    if p.get("version") in (None, ""):
        raise AirflowFailException("a manual promotion needs the 'version' param")
    event = manual_promote_step(
        task_backends(),
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
    push_links(context, {**ui_links(dataset, version=event.version), "Model health": health_url(dataset)})
    context["outlet_events"][asset].extra = {
        "version": event.version,
        "previous": event.previous_version,
    }
    return to_xcom(event)
