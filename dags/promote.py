"""
### nightshift_promote.&lt;dataset&gt;

Make a given model version the champion, by hand (Trigger → the Params form). The `version`
and a `reason` are required. The audit trail's actor is the user who triggered the run; the
optional `actor` Param is recorded as *on behalf of*. The version
is checked first: it must exist, not be the champion already, and load; a version the gate
rejected (or that was rejected or rolled back) needs `override_gate`. The promotion is verified
and recorded in the audit trail like the gate's (the former champion becomes `previous`, so
`nightshift_rollback` undoes it), and emits the *champion* Asset event so scoring uses it.
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
        dag_id=f"nightshift_promote.{name}",
        description=f"Promote a given {name} model version to champion",
        doc_md=__doc__,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params={
            "version": Param(None, type="integer", minimum=1, description="Model version to promote"),
            "reason": Param("", type="string", minLength=3, description="Why (recorded in the audit trail)"),
            "override_gate": Param(
                False, type="boolean", description="Promote even if the gate rejected this version"
            ),
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
            on_success_callback=[NightshiftNotifier("promotion")],
        )
        def promote(**context: Unpack[Context]) -> dict[str, Any]:
            from nightshift.airflow.tasks.promote import run_manual_promote

            return run_manual_promote(name, context, champion)

        promote()
    return dag


for _name in dataset_names():
    globals()[f"nightshift_promote_{_name}"] = build(_name)
