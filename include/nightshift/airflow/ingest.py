"""Task bodies for the ingest DAG: resolve the day and the store, call the core."""

from __future__ import annotations

from datetime import date
from typing import Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowFailException

from nightshift.airflow.links import push as push_links
from nightshift.airflow.links import store_url
from nightshift.airflow.store import get_store
from nightshift.spec import BatchKind, find_spec


def partition_day(context: Context) -> date:
    """The day a run covers: ``params.dt`` when given, else the start of its data interval."""
    params = context.get("params") or {}
    if params.get("dt"):
        from nightshift.spec import parse_dt

        return parse_dt(str(params["dt"]))
    start = context.get("data_interval_start") or context.get("logical_date")
    if start is None:
        raise AirflowFailException(
            "this run has no data interval: trigger it with the 'dt' param (YYYY-MM-DD)"
        )
    return start.date()


def run_ingest(dataset: str, kind: BatchKind, context: Context, asset: Asset) -> dict[str, Any]:
    """Ingest one day; a rejected batch fails the task without retries (the data will not
    change by retrying), infrastructure errors are retried by Airflow."""
    from nightshift.ingest import ingest_partition
    from nightshift.validate import BatchRejected

    day = partition_day(context)
    spec, store = find_spec(dataset), get_store()
    try:
        outcome = ingest_partition(store, spec, kind, day)
    except BatchRejected as exc:
        from nightshift.airflow.notify import Quarantined

        push_links(context, {"GX Data Docs": store_url(store, exc.outcome.data_docs_uri)})
        raise Quarantined(str(exc)) from None
    push_links(context, {"GX Data Docs": store_url(store, outcome.data_docs_uri)})
    summary: dict[str, Any] = {
        "dt": outcome.dt,
        "rows": outcome.rows,
        "uri": outcome.published_uri,
        "report": outcome.report_uri,
    }
    context["outlet_events"][asset].extra = summary
    return summary
