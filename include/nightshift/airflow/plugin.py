"""The nightshift UI plugin for the Airflow 3 api-server: the *Model health* page (a FastAPI
app shown inside the UI as an external view: in the navigation and as a tab of every DAG),
read-only access to the reports in the store (GX Data Docs, Evidently and evaluation
reports), and the operator extra links (MLflow run, model version, GX Data Docs, Evidently
report, Model health) that tasks record as XComs.

Every route needs a logged-in Airflow user (the UI's ``_token`` cookie or a bearer token).
Reports are served with a sandboxing Content-Security-Policy: their scripts run, but in an
opaque origin that cannot read the Airflow session.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from nightshift.airflow.links import LINKS, xcom_key
from nightshift.airflow.urls import airflow_url, health_url

log = logging.getLogger(__name__)

# what the store route may serve: reports and quarantine evidence, never data
SERVED_AREAS = ("reports", "quarantine", "audit")
MEDIA = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "png": "image/png",
    "svg": "image/svg+xml",
    "css": "text/css",
    "js": "text/javascript",
    "txt": "text/plain; charset=utf-8",
    "ico": "image/x-icon",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
}
SANDBOX = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox"
DAG_FAMILIES = ("train", "retrain", "promote", "rollback")


def servable(path: str) -> str | None:
    """The media type of a store path the plugin may serve, or ``None``: reports, quarantine
    evidence (not the rejected files themselves) and audit records, of known file types only."""
    parts = path.split("/")
    suffix = parts[-1].rpartition(".")[2].lower()
    if (
        len(parts) < 3
        or parts[0] not in SERVED_AREAS
        or any(p in ("", ".", "..") for p in parts)
        or (parts[0] == "quarantine" and "files" in parts)
    ):
        return None
    return MEDIA.get(suffix)


def _auth() -> Any:
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return Depends(requires_authenticated())


def _spec(dataset: str) -> Any:
    from nightshift.airflow.dagconfig import dataset_names
    from nightshift.spec import SpecError, find_spec

    if dataset not in dataset_names():
        raise HTTPException(404, f"no dataset {dataset!r} (known: {', '.join(dataset_names()) or 'none'})")
    try:
        return find_spec(dataset)
    except SpecError as exc:
        raise HTTPException(500, str(exc)) from None


def failed_runs(dataset: str, limit: int = 200) -> list[Any]:
    """Failed runs of the dataset's training and registry DAGs, from the metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from nightshift.health import Incident

    dag_ids = [f"nightshift_{f}.{dataset}" for f in DAG_FAMILIES]
    with create_session() as session:
        runs = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.end_date, DagRun.start_date)
            .where(DagRun.dag_id.in_(dag_ids), DagRun.state == "failed")
            .order_by(DagRun.end_date.desc())
            .limit(limit)
        ).all()
    out = []
    for dag_id, run_id, end, start in runs:
        when = end or start or datetime.now(UTC)
        out.append(Incident(when.isoformat(), "failed", f"{dag_id} run {run_id} failed"))
    return out


def collect(dataset: str) -> tuple[Any, Any, Any]:
    """The health of ``dataset`` (registry errors are shown on the page, not raised)."""
    from nightshift import health, registry
    from nightshift.airflow.store import get_store

    spec = _spec(dataset)
    store = get_store()
    try:
        client = registry.configure()
    except Exception as exc:  # an unusable tracking URI must not take the page down
        log.warning("MLflow not usable: %s", exc)
        client = None
    result = health.collect(store, spec, client, failed_runs(dataset))
    return result, spec, store


def create_app() -> FastAPI:
    app = FastAPI(title="nightshift", description="Model health and reports of nightshift datasets")

    @app.get("/health", dependencies=[_auth()], response_model=None)
    def index(dag_id: str | None = None) -> Response:
        from nightshift.airflow.dagconfig import dataset_names

        names = dataset_names()
        if dag_id is not None:
            name = dag_id.split(".", 1)[1] if dag_id.startswith("nightshift_") and "." in dag_id else None
            if name not in names:
                return HTMLResponse(f"<p>{dag_id} is not a nightshift DAG: no model health to show.</p>")
            return RedirectResponse(f"health/{name}", status_code=307)
        if len(names) == 1:
            return RedirectResponse(f"health/{names[0]}", status_code=307)
        items = "".join(f'<li><a href="health/{n}">{n}</a></li>' for n in names)
        return HTMLResponse(f"<h1>Model health</h1><ul>{items or '<li>no datasets</li>'}</ul>")

    @app.get("/health/{dataset}", dependencies=[_auth()])
    def page(dataset: str) -> HTMLResponse:
        from nightshift import registry
        from nightshift.airflow.dagconfig import dataset_names
        from nightshift.airflow.links import store_url
        from nightshift.healthpage import render

        result, spec, store = collect(dataset)
        actions = {
            "Approve / reject (Required actions)": airflow_url("required_actions"),
            "Retrain with overrides": airflow_url(f"dags/nightshift_retrain.{dataset}"),
            "Promote a version": airflow_url(f"dags/nightshift_promote.{dataset}"),
            "Roll back": airflow_url(f"dags/nightshift_rollback.{dataset}"),
            "JSON": f"../api/health/{dataset}",
        }
        body = render(
            result,
            spec,
            link=lambda uri: store_url(store, uri),
            mlflow=lambda run_id, version: registry.ui_links(dataset, run_id=run_id, version=version),
            actions=actions,
            datasets={n: health_url(n) for n in dataset_names()},
        )
        return HTMLResponse(body)

    @app.get("/api/health/{dataset}", dependencies=[_auth()])
    def data(dataset: str) -> JSONResponse:
        result, _, _ = collect(dataset)
        return JSONResponse(result.to_dict())

    @app.get("/store/{path:path}", dependencies=[_auth()])
    def store_file(path: str) -> Response:
        from nightshift.airflow.store import get_store

        media = servable(path)
        if media is None:
            raise HTTPException(404, f"not a report: {path}")
        store = get_store()
        full = store.path(path)
        if not store.is_file(full):
            raise HTTPException(404, f"no such report: {store.uri(full)}")
        headers = {"Content-Security-Policy": SANDBOX, "X-Content-Type-Options": "nosniff"}
        return Response(store.read_bytes(full), media_type=media, headers=headers)

    return app


class NightshiftLink(BaseOperatorLink):
    """An extra link read back from the XCom the task recorded (empty: no button)."""

    name = "nightshift"

    @property
    def xcom_key(self) -> str:
        return xcom_key(self.name)

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        import json

        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.execute(
                XComModel.get_many(
                    key=self.xcom_key,
                    run_id=ti_key.run_id,
                    dag_ids=ti_key.dag_id,
                    task_ids=ti_key.task_id,
                    map_indexes=ti_key.map_index,
                ).with_only_columns(XComModel.value)
            ).first()
        if not row:
            return ""
        value = row.value
        if isinstance(value, (str, bytes)):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        return value if isinstance(value, str) else ""


def _link_class(name: str) -> type[NightshiftLink]:
    return type(f"Nightshift{LINKS[name].title().replace('_', '')}Link", (NightshiftLink,), {"name": name})


LINK_CLASSES = [_link_class(n) for n in LINKS]


class NightshiftPlugin(AirflowPlugin):
    name = "nightshift"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/nightshift", "name": "nightshift"}]
    external_views = [
        {
            "name": "Model health",
            "href": "nightshift/health",
            "url_route": "model-health",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Model health",
            "href": "nightshift/health?dag_id={DAG_ID}",
            "url_route": "model-health-dag",
            "destination": "dag",
        },
    ]
    global_operator_extra_links = [cls() for cls in LINK_CLASSES]
