"""Task wiring shared by DAG families (light at parse time: airflow.sdk only)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, task

from nightshift.airflow.dagconfig import REGISTRY_POOL


def gate_and_promote(name: str, champion: Asset, trained: Any) -> Any:
    """``gate`` (challenger vs champion and baseline, register) → ``promote`` (pool
    ``nightshift_registry``, emits the *champion* Asset event) on a ``train`` task's output."""

    @task
    def gate(trained: dict[str, Any], **context: Any) -> dict[str, Any]:
        from nightshift.airflow.model import run_gate

        return run_gate(name, trained, context)  # type: ignore[arg-type]

    @task(pool=REGISTRY_POOL, outlets=[champion])
    def promote(verdict: dict[str, Any], **context: Any) -> dict[str, Any]:
        from nightshift.airflow.model import run_promote

        return run_promote(name, verdict, context, champion)  # type: ignore[arg-type]

    return promote(gate(trained))  # type: ignore[arg-type]
