"""
### nightshift_score.&lt;dataset&gt;

Batch scoring with the champion. Runs when curated data lands (scores those days) and when
the champion changes (scores the recent curated days that have no predictions yet); by hand
with the `dt` param for one day.

New curated days first wait (at most 60 s) while the labels that landed the same day are
being validated, so that the monitor run this scoring starts reads them too (one monitor run a
night). The champion alias is resolved once per run and the version pinned: every row of
`predictions/<dataset>/dt=<day>/` carries it, and the file is replaced atomically. With no
champion yet the task is skipped with a clear message instead of failing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from airflow.sdk import DAG, Context, Param, task

from nightshift.airflow.assets import champion_asset, curated_asset, predictions_asset
from nightshift.airflow.dagconfig import dataset_names, default_args


def build(name: str) -> DAG:
    predictions = predictions_asset(name)
    with DAG(
        dag_id=f"nightshift_score.{name}",
        description=f"Score curated {name} partitions with the champion",
        doc_md=__doc__,
        schedule=curated_asset(name) | champion_asset(name),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params={"dt": Param(None, type=["null", "string"], description="Day to score (YYYY-MM-DD)")},
        tags=["nightshift", "score", f"dataset:{name}"],
    ) as dag:

        @task(multiple_outputs=False, outlets=[predictions])
        def score(**context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.score import run_score

            return run_score(name, context, predictions)

        score()
    return dag


for _name in dataset_names():
    globals()[f"nightshift_score_{_name}"] = build(_name)
