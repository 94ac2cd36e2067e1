"""
### nightshift_monitor.&lt;dataset&gt;

Watches the served model. Runs when predictions are written (*predictions* Asset) and when
labels land (*labels* Asset).

1. **monitor**: every recent scored day not reported yet is compared with the reference of
   the model version that scored it (a sample of its training window, stored with the model):
   Evidently data drift per feature, prediction drift, data quality. Every day whose labels
   have landed since gets the performance of that version (AUC, log loss, calibration). HTML
   and JSON reports go to `reports/<dataset>/{drift,performance}/dt=<day>/` and to the
   version's MLflow run; one history row per day and version goes to
   `reports/<dataset>/monitoring/history.parquet`.
2. **alert**: the spec's alert policy (importance-weighted drift share, thresholds, a
   consecutive-days rule, AUC below the version's holdout) on the champion's history; no alert
   skips the task, saying why. An alert is notified and put to the retrain guard rails at once:
   when they would retrain, it emits the *alert* Asset event (reason and numbers in its extra),
   which starts `nightshift_retrain`; when they would not (cooldown, weekly budget, labels still
   missing after the onset, a retrain running), the decision is recorded in
   `reports/<dataset>/retrain/` and notified (`retrain_skipped`) here, and no retrain run starts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from airflow.sdk import DAG, Context, task

from nightshift.airflow.assets import alert_asset, labels_asset, predictions_asset, when_due
from nightshift.airflow.dagconfig import dataset_names, default_args
from nightshift.airflow.notify import NightshiftNotifier


def build(name: str) -> DAG:
    alert_event = alert_asset(name)
    with DAG(
        dag_id=f"nightshift_monitor.{name}",
        description=f"Drift, data quality and live performance of the {name} model",
        doc_md=__doc__,
        schedule=predictions_asset(name) | labels_asset(name),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=["nightshift", "monitor", f"dataset:{name}"],
    ) as dag:

        @task(multiple_outputs=False)
        def monitor(**context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.monitor import run_monitor

            return run_monitor(name, context)

        @task(
            multiple_outputs=False,
            outlets=[when_due(alert_event)],
            on_success_callback=[NightshiftNotifier("alert")],
        )
        def alert(**context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.monitor import run_alert

            return run_alert(name, context, alert_event)

        monitor() >> alert()
    return dag


for _name in dataset_names():
    globals()[f"nightshift_monitor_{_name}"] = build(_name)
