"""
### nightshift_rollback.&lt;dataset&gt;

Put the `champion` alias back on the `previous` model version, by hand. The `reason` param
is required. The audit trail's actor is the user who triggered the run; the optional `actor`
Param is recorded as *on behalf of*. A retried rollback finds its own. The rollback is verified
and recorded in the audit trail (model-version tags and `audit/<dataset>/` in the store),
and emits the *champion* Asset event so scoring picks the restored model up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from airflow.sdk import DAG, Context, Param, task

from nightshift.airflow.assets import champion_asset
from nightshift.airflow.dagconfig import REGISTRY_POOL, dataset_names, default_args
from nightshift.airflow.notify import NightshiftNotifier


def build(name: str) -> DAG:
    champion = champion_asset(name)
    with DAG(
        dag_id=f"nightshift_rollback.{name}",
        description=f"Roll the {name} champion back to the previous version",
        doc_md=__doc__,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params={
            "reason": Param("", type="string", minLength=3, description="Why (recorded in the audit trail)"),
            "actor": Param(
                None, type=["null", "string"], description="On whose behalf (you, the trigger, are the actor)"
            ),
        },
        tags=["nightshift", "registry", f"dataset:{name}"],
    ) as dag:

        @task(
            multiple_outputs=False,
            pool=REGISTRY_POOL,
            outlets=[champion],
            on_success_callback=[NightshiftNotifier("rollback")],
        )
        def rollback(**context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.rollback import run_rollback

            return run_rollback(name, context, champion)

        rollback()
    return dag


for _name in dataset_names():
    globals()[f"nightshift_rollback_{_name}"] = build(_name)
