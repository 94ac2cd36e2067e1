"""Addresses in the Airflow UI (``AIRFLOW__API__BASE_URL``), including the plugin's pages."""

from __future__ import annotations

HEALTH_ROUTE = "nightshift/health"
STORE_ROUTE = "nightshift/store"


def airflow_url(path: str) -> str:
    from nightshift.settings import settings

    base = settings().api_base
    return f"{base}/{path.lstrip('/')}"


def task_url(dag_id: str, run_id: str, task_id: str) -> str:
    return airflow_url(f"dags/{dag_id}/runs/{run_id}/tasks/{task_id}")


def health_url(dataset: str) -> str:
    """The Model health page of ``dataset`` (the nightshift UI plugin)."""
    return airflow_url(f"{HEALTH_ROUTE}/{dataset}")
