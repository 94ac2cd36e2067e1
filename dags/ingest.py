"""
### nightshift_ingest.&lt;dataset&gt;

Daily ingestion of one dataset (one DAG per `datasets/<name>.yaml`).

The schedule cuts the dataset's local days: daily after local midnight in the spec's
`partitioning.timezone` (23- and 25-hour days across DST changes included). For the run's day
(the local date its data interval starts on, or the `dt` param), two branches:

1. **events** (`ingest_events`): once `landing/<dataset>/events/dt=<day>/` has its files
   (until then the task waits deferred, in the triggerer: no worker slot), read and cast to
   the spec's schema, validate with the Great Expectations suite in
   `great_expectations/expectations/<dataset>.events.json`, then publish
   `curated/<dataset>/dt=<day>/` atomically and emit the *curated* Asset event.
   While there is no champion (or with `retrain.on_new_data: always`) the day also emits the
   *train_due* Asset event, which starts `nightshift_train`; once a champion serves, new data
   starts no training run (monitoring drives retraining).
2. **labels** (`ingest_labels`): the same for `landing/<dataset>/labels/dt=<day>/` into
   `labels/`, skipped on days when no labels are due (no events landed *label delay* days
   before). Label ids are matched with the curated events, so with a label delay of 0 days the
   labels wait for the day's events to be ingested (whatever the verdict). The *labels* Asset
   event (it starts `nightshift_monitor`) is emitted unless the day's scoring is still to come:
   then the monitor run that the *predictions* event starts reads the labels too (the scoring
   waits for labels being validated), and a night is monitored once.

A failing batch is copied to `quarantine/<dataset>/<kind>/dt=<day>/` with its validation
result and GX Data Docs; the task fails, naming the failed expectations and the report; the
curated data is untouched and nothing downstream runs. Re-running a day replaces its partition.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from nightshift.airflow.assets import curated_asset, labels_asset, train_due_asset, when_due
from nightshift.airflow.dagconfig import dag_shape, dataset_names, default_args, ingest_cron
from nightshift.airflow.sensors import LandingIngestOperator

if TYPE_CHECKING:  # pydantic is not for parse time
    from nightshift.spec import BatchKind

# the `dt` param; without it the task takes the local date the run's data interval starts on,
# in the spec's zone
DAY = "{{ params.dt or '' }}"


def ingest_schedule(timezone: str = "UTC") -> CronDataIntervalTimetable | None:
    """Daily after local midnight in ``timezone``; ``NIGHTSHIFT_INGEST_SCHEDULE`` sets another
    cron (in that zone), or ``none`` for runs triggered only with ``dt`` (the demo lets its
    simulated past days land that way)."""
    cron = ingest_cron()
    return None if cron is None else CronDataIntervalTimetable(cron, timezone=timezone)


def build(name: str) -> DAG:
    shape = dag_shape(name)
    with DAG(
        dag_id=f"nightshift_ingest.{name}",
        description=f"Ingest and validate the daily {name} batches",
        doc_md=__doc__,
        schedule=ingest_schedule(shape.timezone),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=3,
        default_args=default_args(),
        params={"dt": Param(None, type=["null", "string"], description="Day to ingest (YYYY-MM-DD)")},
        tags=["nightshift", "ingest", f"dataset:{name}"],
    ) as dag:
        ingest: dict[str, Any] = {}
        outlets: dict[BatchKind, list[Any]] = {
            "events": [curated_asset(name), when_due(train_due_asset(name))],
            "labels": [when_due(labels_asset(name))],
        }
        kinds: tuple[BatchKind, ...] = ("events", "labels")
        for kind in kinds:
            same_day = kind == "labels" and shape.label_delay_days == 0
            ingest[kind] = LandingIngestOperator(
                task_id=f"ingest_{kind}",
                dataset=name,
                kind=kind,
                dt=DAY,
                skip_unless_due=kind == "labels",
                poke_interval=30,
                wait_timeout=timedelta(hours=12),
                outlets=outlets[kind],
                # labels of the day's own events: after their ingest, whatever its verdict
                trigger_rule="all_done" if same_day else "all_success",
            )
            if same_day:
                ingest["events"] >> ingest[kind]
    return dag


for _name in dataset_names():
    globals()[f"nightshift_ingest_{_name}"] = build(_name)
