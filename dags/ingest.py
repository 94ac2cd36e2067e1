"""
### nightshift_ingest.&lt;dataset&gt;

Daily ingestion of one dataset (one DAG per `datasets/<name>.yaml`).

For the run's day (its data interval, or the `dt` param), two independent branches:

1. **events**: wait (deferred, no worker slot) for `landing/<dataset>/events/dt=<day>/`,
   read and cast to the spec's schema, validate with the Great Expectations suite in
   `great_expectations/expectations/<dataset>.events.json`, then publish
   `curated/<dataset>/dt=<day>/` atomically and emit the *curated* Asset event.
2. **labels**: the same for `landing/<dataset>/labels/dt=<day>/` into `labels/`, skipped on
   days when no labels are due (no events landed *label delay* days before).

A failing batch is copied to `quarantine/<dataset>/<kind>/dt=<day>/` with its validation
result and GX Data Docs; the task fails, naming the failed expectations and the report; the
curated data is untouched and nothing downstream runs. Re-running a day replaces its partition.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, task

from nightshift.airflow.assets import curated_asset, labels_asset
from nightshift.airflow.dagconfig import dataset_names, default_args
from nightshift.airflow.sensors import LandingSensor

DAY = "{{ params.dt or data_interval_start | ds }}"


def ingest_schedule() -> CronDataIntervalTimetable | None:
    """Daily after midnight UTC; ``NIGHTSHIFT_INGEST_SCHEDULE`` sets another cron, or ``none``
    for runs triggered only with ``dt`` (the demo lets its simulated past days land that way)."""
    cron = os.environ.get("NIGHTSHIFT_INGEST_SCHEDULE", "0 0 * * *").strip()
    return None if cron.lower() == "none" else CronDataIntervalTimetable(cron, timezone="UTC")


def build(name: str) -> DAG:
    with DAG(
        dag_id=f"nightshift_ingest.{name}",
        description=f"Ingest and validate the daily {name} batches",
        doc_md=__doc__,
        schedule=ingest_schedule(),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=3,
        default_args=default_args(),
        params={"dt": Param(None, type=["null", "string"], description="Day to ingest (YYYY-MM-DD)")},
        tags=["nightshift", "ingest", f"dataset:{name}"],
    ) as dag:
        for kind, asset in (("events", curated_asset(name)), ("labels", labels_asset(name))):
            wait = LandingSensor(
                task_id=f"wait_{kind}",
                dataset=name,
                kind=kind,
                dt=DAY,
                skip_unless_due=kind == "labels",
                timeout=int(timedelta(hours=12).total_seconds()),
                poke_interval=30,
            )
            wait >> _ingest_task(name, kind, asset)()
    return dag


def _ingest_task(name: str, kind: str, asset: Asset) -> Any:
    @task(task_id=f"ingest_{kind}", outlets=[asset])
    def ingest(**context: Any) -> dict[str, Any]:
        from nightshift.airflow.ingest import run_ingest

        return run_ingest(name, kind, context, asset)  # type: ignore[arg-type]

    return ingest


for _name in dataset_names():
    globals()[f"nightshift_ingest_{_name}"] = build(_name)
