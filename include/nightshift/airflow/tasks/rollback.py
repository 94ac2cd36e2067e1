"""The rollback DAG's task body."""

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


@map_errors
def run_rollback(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    from nightshift import registry

    p = context.get("params") or {}
    reason = str(p.get("reason") or "").strip()
    if not reason:
        raise AirflowFailException("a rollback needs a reason (the 'reason' param)")
    b = task_backends()
    event = registry.rollback(
        b.client,
        b.store,
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
    return to_xcom(event)
