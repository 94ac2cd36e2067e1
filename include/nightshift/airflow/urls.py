"""Addresses in the Airflow UI (``AIRFLOW__API__BASE_URL``), including the plugin's pages."""

from __future__ import annotations

import os

HEALTH_ROUTE = "nightshift/health"
STORE_ROUTE = "nightshift/store"


def airflow_url(path: str) -> str:
    base = os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/{path.lstrip('/')}"


def task_url(dag_id: str, run_id: str, task_id: str) -> str:
    return airflow_url(f"dags/{dag_id}/runs/{run_id}/tasks/{task_id}")


def health_url(dataset: str) -> str:
    """The Model health page of ``dataset`` (the nightshift UI plugin)."""
    return airflow_url(f"{HEALTH_ROUTE}/{dataset}")
