"""Task bodies for the ingest DAG: resolve the day and the store, call the core."""

from __future__ import annotations

from datetime import UTC, date, tzinfo
from typing import Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowFailException

from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.links import store_url
from nightshift.airflow.store import get_store
from nightshift.spec import BatchKind, find_spec


def partition_day(context: Context, tz: tzinfo = UTC) -> date:
    """The day a run covers: ``params.dt`` when given, else the local date, in ``tz`` (the
    spec's ``partitioning.timezone``), that its data interval starts on."""
    params = context.get("params") or {}
    if params.get("dt"):
        from nightshift.spec import parse_dt

        return parse_dt(str(params["dt"]))
    start = context.get("data_interval_start") or context.get("logical_date")
    if start is None:
        raise AirflowFailException(
            "this run has no data interval: trigger it with the 'dt' param (YYYY-MM-DD)"
        )
    return start.astimezone(tz).date()


@map_errors
def run_ingest(dataset: str, kind: BatchKind, context: Context, asset: Asset) -> dict[str, Any]:
    """Ingest one day. A rejected batch (a data error: parse, cast or validation) fails the task
    as quarantined, without retries, since the data will not change by retrying. A full or
    failing disk (:class:`~nightshift.ingest.StagingError`) or a store that cannot be read or
    written (:class:`~nightshift.storage.StorageError`) is an infrastructure error: logged and
    raised as is, so Airflow retries it with the task's retries and back-off (both mapped by
    :func:`~nightshift.airflow.errors.map_errors`). A batch published with warnings (failed
    checks of severity ``warning``) sends one ``validation_warning`` notification."""
    from nightshift.ingest import ingest_partition
    from nightshift.validate import BatchRejected

    spec, store = find_spec(dataset), get_store()
    day = partition_day(context, spec.partitioning.tz)
    try:
        outcome = ingest_partition(store, spec, kind, day)
    except BatchRejected as exc:
        push_links(context, {"GX Data Docs": store_url(store, exc.outcome.data_docs_uri)})
        raise
    docs = store_url(store, outcome.data_docs_uri)
    push_links(context, {"GX Data Docs": docs})
    summary: dict[str, Any] = {
        "dt": outcome.dt,
        "rows": outcome.rows,
        "uri": outcome.published_uri,
        "report": outcome.report_uri,
    }
    if outcome.warnings:
        # a strange but true day: published, and the operator hears of it once per batch
        from nightshift.airflow.notify import deliver, validation_warnings

        summary["warnings"] = [c.label for c in outcome.warnings]
        deliver(validation_warnings(context, outcome, store_url(store, outcome.report_uri), docs))
    context["outlet_events"][asset].extra = summary
    return summary
