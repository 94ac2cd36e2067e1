"""Task bodies for the ingest DAG: resolve the day and the store, call the core."""

from __future__ import annotations

import logging
from datetime import UTC, date, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from nightshift.airflow.assets import curated_asset, emit, labels_asset, train_due_asset
from nightshift.airflow.errors import map_errors
from nightshift.airflow.links import push as push_links
from nightshift.airflow.links import store_url
from nightshift.airflow.store import task_backends
from nightshift.spec import BatchKind, DatasetSpec, find_spec

if TYPE_CHECKING:
    from nightshift.backends import Backends
    from nightshift.storage import Store


log = logging.getLogger(__name__)


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
def run_ingest(dataset: str, kind: BatchKind, context: Context, day: date | None = None) -> dict[str, Any]:
    """Ingest one day (``day``, else the run's: :func:`partition_day`). A rejected batch (a
    data error: parse, cast or validation) fails the task without retries, since the data will
    not change by retrying. A full or failing disk
    (:class:`~nightshift.ingest.StagingError`) or a store that cannot be read or written
    (:class:`~nightshift.storage.StorageError`) is an infrastructure error: raised as is, so
    Airflow retries it with the task's retries and back-off (both mapped by
    :func:`~nightshift.airflow.errors.map_errors`). A batch published with warnings (failed
    checks of severity ``warning``) sends one ``validation_warning`` notification.

    Published events emit the *curated* Asset event, and the *train_due* one while training is
    due (:func:`training_due`); published labels emit the *labels* event unless the day's
    scoring is still to come (:func:`labels_monitored_later`)."""
    from nightshift.ingest import ingest_partition
    from nightshift.validate import BatchRejected

    spec, b = find_spec(dataset), task_backends()
    store = b.store
    day = day or partition_day(context, spec.partitioning.tz)
    try:
        outcome = ingest_partition(b, spec, kind, day)
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
    if kind == "events":
        context["outlet_events"][curated_asset(dataset)].extra = summary
        why = training_due(spec, b)
        if why:
            emit(context, train_due_asset(dataset), {**summary, "due": why})
        else:
            log.info("%s: a champion serves: no training run on new data (monitoring drives it)", dataset)
    else:
        later = labels_monitored_later(store, spec, day, context)
        if later:
            log.info("%s: no labels event: %s", dataset, later)
        else:
            emit(context, labels_asset(dataset), summary)
    return summary


def training_due(spec: DatasetSpec, backends: Backends) -> str | None:
    """Why new data is due for an automatic training run, or ``None`` when a champion serves and
    ``retrain.on_new_data`` is ``bootstrap`` (the training run would only find it and skip). A
    registry that cannot be read leaves the decision to the training run."""
    from nightshift import registry

    if spec.retrain.on_new_data == "always":
        return "retrain.on_new_data: always"
    uri = backends.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return "no champion yet (no registry yet)"  # the embedded default, never used: not made here
    try:
        version = registry.alias_version(backends.client, spec.name, registry.CHAMPION)
    except registry.RegistryError as exc:
        log.warning("%s: %s; the training run decides whether to train", spec.name, exc)
        return "the registry could not be read"
    return None if version else "no champion yet"


# how long a labels task waits for its run's events ingest to decide (scheduled, queued or running)
EVENTS_WAIT_S = 60.0


def labels_monitored_later(
    store: Store, spec: DatasetSpec, day: date, context: Context, timeout_s: float = EVENTS_WAIT_S
) -> str | None:
    """Why the labels of ``day`` need no *labels* event (the monitor run that the day's
    *predictions* event starts will read them), or ``None``: this run published the day's events
    (the score run they set off follows, and waits for these labels while they are being
    validated: :func:`nightshift.airflow.tasks.score.await_labels`) and their predictions are not written
    yet. Without a scoring to come (no events published, or the day scored already) the labels
    start a monitor run of their own. While the run's events ingest is scheduled, queued or running, this
    waits for its verdict (at most ``timeout_s``; an events ingest that is deferred is not waited
    for: its files have not landed)."""
    import time

    ti, run = context["ti"], context["dag_run"]
    deadline = time.monotonic() + timeout_s
    while True:
        found = ti.get_task_states(dag_id=run.dag_id, run_ids=[run.run_id], task_ids=["ingest_events"])
        states = {t: str(s) for t, s in (found.get(run.run_id) or {}).items()}
        if states.get("ingest_events") not in ("scheduled", "queued", "running"):
            break
        if time.monotonic() > deadline:
            return None
        time.sleep(1.0)
    if states.get("ingest_events") != "success":
        return None
    published = ti.xcom_pull(task_ids="ingest_events")
    if not published or published.get("dt") != day.isoformat():
        return None
    if store.exists(store.predictions_file(spec.name, day)):
        return None
    return f"the scoring of dt={day} follows; its monitor run reads these labels"
