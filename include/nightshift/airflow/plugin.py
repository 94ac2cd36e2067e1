"""The nightshift UI plugin for the Airflow 3 api-server: the *Model health* page (a FastAPI
app shown inside the UI as an external view: in the navigation and as a tab of every DAG),
read-only access to the reports in the store (GX Data Docs, Evidently and evaluation
reports), and the operator extra links (MLflow run, model version, GX Data Docs, Evidently
report, Model health) that tasks record as XComs.

Access: every route needs a logged-in Airflow user (the UI's ``_token`` cookie or a bearer
token) *and* the auth manager's read access to the dataset's DAGs: a dataset is shown only to a
user who may read (GET) every one of its DAGs, ``nightshift_<stage>.<dataset>`` and their runs
(:func:`readable_datasets`). The index lists only those datasets; any other dataset, report,
audit record or quarantine evidence answers the same 404 as one that does not exist, naming
nothing.

Responses: HTML is rendered by autoescaping templates (:mod:`nightshift.healthpage`) and
never echoes the request. Every plugin-rendered response carries a strict
Content-Security-Policy (no script at all, inline styles, images from ``data:`` only, framed
by the Airflow UI alone) and ``nosniff``. Reports from the store keep a sandboxing policy
instead: their scripts run, but in an opaque origin that cannot read the Airflow session.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink
from fastapi import Depends, FastAPI, HTTPException, Request
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
# reports from the store (GX Data Docs, Evidently) need their scripts: an opaque origin
SANDBOX = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox"
# every page the plugin renders itself: no script, inline styles, data: images, framed by the UI
STRICT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'"
)
# a dataset's DAGs (dags/<stage>.py): reading the dataset needs read access to all of them
DAG_STAGES = ("ingest", "train", "score", "monitor", "retrain", "promote", "rollback")
DAG_FAMILIES = ("train", "retrain", "promote", "rollback")
NO_DATASET = "no such dataset"
NO_REPORT = "no such report"


def servable(path: str) -> str | None:
    """The media type of a store path the plugin may serve, or ``None``: reports, quarantine
    evidence (not the rejected files themselves) and audit records, of known file types only."""
    parts = path.split("/")
    suffix = parts[-1].rpartition(".")[2].lower()
    if (
        len(parts) < 3
        or parts[0] not in SERVED_AREAS
        or any(p in ("", "..") or p.startswith(".") for p in parts)
        or (parts[0] == "quarantine" and "files" in parts)
    ):
        return None
    return MEDIA.get(suffix)


def dataset_dag_ids(dataset: str) -> list[str]:
    return [f"nightshift_{stage}.{dataset}" for stage in DAG_STAGES]


def readable_datasets(user: Any, names: Iterable[str]) -> list[str]:
    """The datasets among ``names`` whose every DAG (and its runs) ``user`` may read, as the
    configured auth manager decides (one batch question per dataset)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.models.dag import DagModel

    names = list(names)
    if not names:
        return []
    teams = DagModel.get_dag_id_to_team_name_mapping([i for n in names for i in dataset_dag_ids(n)])
    manager = get_auth_manager()
    out = []
    for name in names:
        requests: list[Any] = [
            {"method": "GET", "access_entity": entity, "details": DagDetails(id=i, team_name=teams.get(i))}
            for i in dataset_dag_ids(name)
            for entity in (None, DagAccessEntity.RUN)
        ]
        if manager.batch_is_authorized_dag(requests, user=user):
            out.append(name)
    return out


def _readable(user: Any, dataset: str, missing: str = NO_DATASET) -> str:
    """``dataset`` if it exists and ``user`` may read it; else a 404 that names nothing."""
    from nightshift.airflow.dagconfig import dataset_names

    if dataset not in dataset_names() or not readable_datasets(user, [dataset]):
        raise HTTPException(404, missing)
    return dataset


def _spec(dataset: str) -> Any:
    from nightshift.spec import SpecError, find_spec

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
    from nightshift.airflow.store import mlflow_connection_uri, store_of

    spec = _spec(dataset)
    store = store_of()
    try:
        client = registry.connect(mlflow_connection_uri())
    except Exception as exc:  # an unusable tracking URI must not take the page down
        log.warning("MLflow not usable: %s", exc)
        client = None
    result = health.collect(store, spec, client, failed_runs(dataset))
    return result, spec, store


def report_path(store: Any, path: str) -> tuple[str, str] | None:
    """The real store path and media type of the report at ``path`` (relative to the store
    root), or ``None``: not servable, not a file, or a symlink that leads outside the store
    root or to anything the same path could not be served as (data, another dataset)."""
    media = servable(path)
    root = store.resolve_inside(store.root)
    full = store.resolve_inside(store.path(path))
    if media is None or root is None or full is None or not full.startswith(root.rstrip("/") + "/"):
        return None
    real = full[len(root.rstrip("/")) + 1 :]
    if servable(real) != media or real.split("/")[:2] != path.split("/")[:2]:
        return None
    # on S3 a published directory is read through its marker (Store.publish_dir)
    served = store.published_path(full)
    return (served, media) if store.is_file(served) else None


# long: the plugin's routes are closures over one app and one auth dependency
def create_app() -> FastAPI:
    from airflow.api_fastapi.core_api.security import get_user

    app = FastAPI(title="nightshift", description="Model health and reports of nightshift datasets")
    # the logged-in user (cookie or bearer token); 401 without one
    current_user = Depends(get_user)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        # the store route sets its own (sandboxing) policy; everything else gets the strict one
        response.headers.setdefault("Content-Security-Policy", STRICT_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/health", response_model=None)
    def index(dag_id: str | None = None, user: Any = current_user) -> Response:
        from nightshift.airflow.dagconfig import dataset_names
        from nightshift.healthpage import render_index

        names = readable_datasets(user, dataset_names())
        if dag_id is not None:
            name = dag_id.split(".", 1)[1] if dag_id.startswith("nightshift_") and "." in dag_id else None
            if name not in names:
                # the same answer for any other DAG and for a dataset the user may not read
                message = "This DAG is not a nightshift DAG you may read: no model health to show."
                return HTMLResponse(render_index({}, message))
            return RedirectResponse(f"health/{quote(name, safe='')}", status_code=307)
        if len(names) == 1:
            return RedirectResponse(f"health/{quote(names[0], safe='')}", status_code=307)
        return HTMLResponse(render_index({n: f"health/{quote(n, safe='')}" for n in names}))

    @app.get("/health/{dataset}")
    def page(dataset: str, user: Any = current_user) -> HTMLResponse:
        from nightshift import registry
        from nightshift.airflow.dagconfig import dataset_names
        from nightshift.airflow.links import store_url
        from nightshift.healthpage import render

        _readable(user, dataset)
        result, spec, store = collect(dataset)
        q = quote(dataset, safe="")
        actions = {
            "Approve / reject (Required actions)": airflow_url("required_actions"),
            "Retrain with overrides": airflow_url(f"dags/nightshift_retrain.{q}"),
            "Promote a version": airflow_url(f"dags/nightshift_promote.{q}"),
            "Roll back": airflow_url(f"dags/nightshift_rollback.{q}"),
            "JSON": f"../api/health/{q}",
        }
        body = render(
            result,
            spec,
            link=lambda uri: store_url(store, uri),
            mlflow=lambda run_id, version: registry.ui_links(dataset, run_id=run_id, version=version),
            actions=actions,
            datasets={n: health_url(quote(n, safe="")) for n in readable_datasets(user, dataset_names())},
        )
        return HTMLResponse(body)

    @app.get("/api/health/{dataset}")
    def data(dataset: str, user: Any = current_user) -> JSONResponse:
        _readable(user, dataset)
        result, _, _ = collect(dataset)
        return JSONResponse(result.to_dict())

    @app.get("/store/{path:path}")
    def store_file(path: str, user: Any = current_user) -> Response:
        from nightshift.airflow.store import store_of

        # the dataset is the path's second part (reports|quarantine|audit/<dataset>/...)
        if servable(path) is None:
            raise HTTPException(404, NO_REPORT)
        _readable(user, path.split("/")[1], missing=NO_REPORT)
        store = store_of()
        found = report_path(store, path)
        if found is None:
            raise HTTPException(404, NO_REPORT)
        full, media = found
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
        return link_value(row.value) if row else ""


def link_value(value: Any) -> str:
    """The address an extra link may open from its recorded XCom value: http(s) or relative
    only (a ``javascript:`` or ``data:`` value gives no button), else ``""``."""
    import json

    from nightshift.healthpage import safe_href

    if isinstance(value, (str, bytes)):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    return (safe_href(value) or "") if isinstance(value, str) else ""


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
