"""
### nightshift_retrain.&lt;dataset&gt;

Retraining started by monitoring (the *alert* Asset, emitted only for alerts these guard rails
would retrain: the monitor's alert task asks them first and records a skip itself), with guard
rails from the spec's `retrain` section; by hand with `force` (skips the alert, cooldown and
budget checks) and, optionally, overrides: `since` (first day of the window), `window_days`, `xgb_params`,
`num_boost_round`, and a `note` saying why. Overrides are validated (an unknown XGBoost
parameter, a window too short to split, overrides without `force` fail the run at once,
naming the problem) and recorded with the decision.

1. **decide**: the alerts of this run (several alerts that arrived together are one run) go
   through the guard rails: stale alerts (about a replaced champion) and alerts raised while a
   retrain was running are merged, not retrained again; a cooldown after each retrain; a
   weekly budget; never quarantined days; training only on days from the drift onset once
   enough of them are labelled. Every decision, retrain or skip, is recorded with its reason
   in `reports/<dataset>/retrain/`; a skip is notified once (`retrain_skipped`).
2. **train** (queue `gpu`) → **gate** → **serving_check** → **review** → **promote** (pool
   `nightshift_registry`): the same steps, gate, serving check and audit trail as
   `nightshift_train`.
3. **record**: how the retrain ended (promoted, rejected, not trained, failed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack, cast

from airflow.sdk import DAG, Context, Param, task

from nightshift.airflow.assets import alert_asset, champion_asset
from nightshift.airflow.dagconfig import dataset_names, default_args
from nightshift.airflow.wiring import gate_and_promote


def build(name: str) -> DAG:
    champion = champion_asset(name)
    with DAG(
        dag_id=f"nightshift_retrain.{name}",
        description=f"Retrain the {name} model when monitoring raises an alert",
        doc_md=__doc__,
        schedule=alert_asset(name),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params={
            "force": Param(False, type="boolean", description="Retrain without an alert (manual)"),
            "actor": Param(None, type=["null", "string"], description="On whose behalf (for the record)"),
            "note": Param(None, type=["null", "string"], description="Why (for the record)"),
            "since": Param(
                None,
                type=["null", "string"],
                format="date",
                description="First day of the window (YYYY-MM-DD)",
            ),
            "window_days": Param(None, type=["null", "integer"], minimum=3, description="Labelled days"),
            "xgb_params": Param({}, type="object", description="XGBoost parameter overrides"),
            "num_boost_round": Param(None, type=["null", "integer"], minimum=1, description="Max rounds"),
        },
        tags=["nightshift", "retrain", f"dataset:{name}"],
    ) as dag:

        @task(multiple_outputs=False)
        def decide(**context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.retrain import run_retrain_decide

            return run_retrain_decide(name, context)

        @task(multiple_outputs=False, queue="gpu")
        def train(decision: dict[str, Any], **context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.retrain import run_retrain_train

            return run_retrain_train(name, decision, context)

        @task(multiple_outputs=False, trigger_rule="all_done")
        def record(**context: Unpack[Context]) -> dict[str, Any] | None:
            from nightshift.airflow.tasks.retrain import run_retrain_record

            return run_retrain_record(name, context)

        # an XComArg stands for decide's dict at run time (Airflow's @task typing cannot say so)
        decision = cast("dict[str, Any]", decide())
        gate_and_promote(name, champion, train(decision)) >> record()
    return dag


for _name in dataset_names():
    globals()[f"nightshift_retrain_{_name}"] = build(_name)
