"""
### nightshift_train.&lt;dataset&gt;

Train, gate and (maybe) promote a model of one dataset. Runs when new curated data is due for
training (the *train_due* Asset: the ingest emits it while there is no champion, or on every
batch with `retrain.on_new_data: always`; once a champion serves, monitoring drives retraining
and new data starts no run here) and by hand with Params (as-of day, window, XGBoost
parameters, a tuning budget).

1. **train** (queue `gpu`): the last N labelled days (labels joined by id), split by time into
   train / validation / holdout; XGBoost with early stopping, on CUDA when the worker sees a
   GPU (else CPU, with a warning; a worker with `NIGHTSHIFT_REQUIRE_GPU=1` fails instead). One
   MLflow run: params, metrics, lineage (partitions + hashes, validation, code version, device),
   feature contributions, the model packaged with its feature transform; a first model (no
   champion) is tuned within `training.tuning`. Too little labelled data yet skips an automatic
   run and fails a manual one; while there is no champion, automatic runs train at most once per
   `retrain.bootstrap_every_days` labelled days (the first skip of a wait is notified). An
   automatic run first waits (at most 60 s) while its day's labels are being validated by the
   ingest run that started it, so that the gate finds the window it was trained on.
2. **gate**: challenger vs the current champion and a logistic baseline on the same holdout,
   with the spec's thresholds and slice checks; when XGBoost does not beat the baseline, the
   baseline competes (packaged as a run of its own, judged by the same gate) and is the version
   registered if it passes; the verdict and its evidence go to the run(s); the candidate is
   registered (a retry finds its version).
3. **serving_check**: the registered candidate is served by a fresh `nightshift serve` process
   (pinned to that version, on a free 127.0.0.1 port); its input example and a seeded sample of
   holdout rows go through `POST /invocations`, and every answer must equal the in-process score
   (within 1e-6), no request may fail, and the p99 of one-row requests must be under
   `serving.max_latency_ms`. A failure rejects the candidate with the reason (recorded by
   **promote**, notified); a server that cannot start or reach the registry is retried.
4. **review**: a borderline verdict (`gate.review`) waits for a human; otherwise passes through.
5. **promote** (pool `nightshift_registry`, one slot): move the `champion` alias (former one →
   `previous`), verify, audit, emit the *champion* Asset event; a rejected challenger is
   recorded in the audit trail, notified (`rejection`) and the task is skipped. A verdict whose
   champion was replaced since the gate (another DAG promoted meanwhile) is refused the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from airflow.sdk import DAG, Context, Param, task

from nightshift.airflow.assets import champion_asset, train_due_asset
from nightshift.airflow.dagconfig import dataset_names, default_args
from nightshift.airflow.wiring import gate_and_promote

NULL_INT = ["null", "integer"]


def build(name: str) -> DAG:
    champion = champion_asset(name)
    with DAG(
        dag_id=f"nightshift_train.{name}",
        description=f"Train, gate and promote the {name} model",
        doc_md=__doc__,
        schedule=train_due_asset(name),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params={
            "as_of": Param(
                None, type=["null", "string"], description="Use labels landed up to this day (YYYY-MM-DD)"
            ),
            "window_days": Param(None, type=NULL_INT, minimum=3, description="Labelled days in the window"),
            "xgb_params": Param({}, type="object", description="XGBoost parameter overrides"),
            "num_boost_round": Param(None, type=NULL_INT, minimum=1, description="Maximum boosting rounds"),
            "tuning_trials": Param(
                None, type=NULL_INT, minimum=0, maximum=200, description="Random-search trials"
            ),
            "tuning_timeout_s": Param(
                None, type=["null", "number"], minimum=1, description="Tuning time budget"
            ),
        },
        tags=["nightshift", "train", f"dataset:{name}"],
    ) as dag:

        @task(multiple_outputs=False, queue="gpu")
        def train(**context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.train import run_train

            return run_train(name, context)

        gate_and_promote(name, champion, train())
    return dag


for _name in dataset_names():
    globals()[f"nightshift_train_{_name}"] = build(_name)
