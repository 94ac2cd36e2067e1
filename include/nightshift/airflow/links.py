"""Operator extra links: the task pushes the addresses it knows (MLflow run, model version,
GX Data Docs, Evidently report, Model health) as XComs; the UI plugin's links read them back
for the task instance shown. A task that has no such evidence shows no button."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nightshift.airflow.urls import STORE_ROUTE, airflow_url

if TYPE_CHECKING:  # pyarrow is heavy: not at parse time
    from nightshift.storage import Store

# button name -> XCom key suffix
LINKS = {
    "MLflow run": "mlflow_run",
    "Model version": "model_version",
    "GX Data Docs": "gx_data_docs",
    "Evidently report": "evidently_report",
    "Model health": "model_health",
}


def xcom_key(name: str) -> str:
    return f"_link_nightshift_{LINKS[name]}"


def push(context: Any, links: Mapping[str, str | None]) -> dict[str, str]:
    """Record this task instance's links (unknown names and empty addresses are dropped)."""
    kept = {name: url for name, url in links.items() if url and name in LINKS}
    for name, url in kept.items():
        context["ti"].xcom_push(key=xcom_key(name), value=url)
    return kept


def store_url(store: Store, uri_or_path: str | None) -> str | None:
    """The UI address of a report in the store (served by the plugin), or ``None``."""
    if not uri_or_path:
        return None
    path = uri_or_path.split("://", 1)[1] if "://" in uri_or_path else uri_or_path
    root = store.root.rstrip("/") + "/"
    if not path.startswith(root):
        return None
    return airflow_url(f"{STORE_ROUTE}/{path[len(root) :]}")
