"""What the task bodies read of a run's Airflow context: its key, type, trigger and user."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context

# runs the scheduler starts on its own: too little data yet is a skip, not an incident
AUTOMATIC_RUN_TYPES = {"scheduled", "asset_triggered", "backfill"}


def dag_run(context: Context) -> Any:
    return context["dag_run"]


def run_key(context: Context) -> str:
    """The orchestrator's identity of this run: what makes a retry find its own work."""
    dr = dag_run(context)
    return f"{dr.dag_id}/{dr.run_id}"


def run_type(context: Context) -> str:
    return str(getattr(dag_run(context).run_type, "value", dag_run(context).run_type))


def trigger(context: Context) -> str:
    """Who/what started this run, for the audit trail."""
    dr = dag_run(context)
    who = getattr(dr, "triggering_user_name", None)
    return f"dag {dr.dag_id} run {dr.run_id} ({run_type(context)}{', by ' + who if who else ''})"


def triggering_user(context: Context) -> str:
    """The user Airflow authenticated as starting this run; ``scheduler`` for the runs it
    starts itself (scheduled, asset-triggered), which have none."""
    return str(getattr(dag_run(context), "triggering_user_name", None) or "scheduler")


def on_behalf_of(context: Context) -> str | None:
    """The run's free-text ``actor`` Param: recorded as *on behalf of*, never as the actor."""
    value = str((context.get("params") or {}).get("actor") or "").strip()
    return value[:200] or None
