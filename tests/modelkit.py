"""Helpers shared by the model-plane tests (data, MLflow server, dag.test)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nightshift_dev import free_port

if TYPE_CHECKING:
    import pyarrow as pa

    from nightshift.spec import DatasetSpec


def source_imports(path: Path) -> set[str]:
    """The absolute imports of a source file, anywhere in it (functions included), except under
    ``if TYPE_CHECKING:`` (types, not imports at run time); ``from nightshift import x`` counts
    as ``nightshift.x``."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for child in node.body
        for n in ast.walk(child)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "nightshift":
                out |= {f"nightshift.{a.name}" for a in node.names}
            else:
                out.add(node.module)
    return out


def toy_spec(kinds: tuple[str, ...] = ("x", "y", "z"), **extra: Any) -> DatasetSpec:
    """A small dataset that shares nothing with the demo: numeric ``a`` and ``b``, a categorical
    ``kind`` of ``kinds``, label ``y`` on the day; ``extra`` adds top-level sections (``serving``)."""
    from nightshift.spec import parse_spec

    return parse_spec(
        {
            "name": "toy",
            "id_column": "id",
            "id_dtype": "int64",
            "event_time_column": "ts",
            "label": {"column": "y", "delay_days": 0},
            "features": {
                "numeric": [{"name": "a"}, {"name": "b"}],
                "categorical": [{"name": "kind", "values": list(kinds)}],
            },
            **extra,
        }
    )


def toy_table(
    n: int, seed: int, *, missing: float = 0.05, first_id: int = 0, x_effect: float = 0.0
) -> pa.Table:
    """``n`` seeded rows of :func:`toy_spec`'s columns: ``y`` drawn from a logistic model of ``a``
    and ``kind`` (``z`` +2; ``x`` by ``x_effect``), ``a`` missing in about ``missing`` of them;
    ids from ``first_id``."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
    kind = rng.choice(["x", "y", "z"], n)
    z = 1.5 * a - 1.0 + 2.0 * (kind == "z")
    if x_effect:
        z = z + x_effect * (kind == "x")
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + n), pa.int64()),
            "a": pa.array(a, mask=rng.random(n) < missing),
            "b": b,
            "kind": kind,
            "y": y,
        }
    )


MODEL_DAYS, MODEL_ROWS = 14, 4000
MODEL_START = date(2026, 3, 1)
# days after the model store's, with covariate and concept drift (the drift store)
DRIFT_DAYS = 6


def copy_store(src: Path, dest: Path) -> str:
    """A private copy of a built local store; returns its URL."""
    import shutil

    shutil.copytree(src, dest)
    return dest.as_uri()


@contextlib.contextmanager
def model_env(
    store_url: str, tracking_uri: str, artifacts: Path | None = None
) -> Iterator[pytest.MonkeyPatch]:
    """Point the store and MLflow at the given places for the duration (module-scoped use)."""
    from nightshift.storage import Store

    store = Store(store_url)  # the data is shared; each registry gets its own audit trail
    for area in ("audit", "predictions"):
        store.delete_dir(store.path(area))
    mp = pytest.MonkeyPatch()
    mp.setenv("NIGHTSHIFT_STORE_URL", store_url)
    mp.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    if artifacts is not None:
        mp.setenv("NIGHTSHIFT_MLFLOW_ARTIFACTS", artifacts.as_uri())
    else:
        mp.delenv("NIGHTSHIFT_MLFLOW_ARTIFACTS", raising=False)
    mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    mp.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        yield mp
    finally:
        mp.undo()


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 (SQLite backend, proxied artifacts), in its own process
    group; ``stop()``/``start()`` keep the same port and backend (for outage tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}", "--workers", "1"]
        cmd += ["--artifacts-destination", str(self.root / "artifacts")]
        self.proc = subprocess.Popen(
            cmd,
            stdout=open(self.root / "server.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        import urllib.request

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.root / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer on {self.url}; see {self.root / 'server.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None


def task_states(dr: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


_DEFAULTS: dict[str, dict[str, Any]] = {}


def run_dag(dag: Any, conf: dict[str, Any] | None = None) -> Any:
    """One dag.test() run (a manual run) with ``conf`` over the DAG's default params.

    dag.test() leaves a run's conf behind in the DAG object's params, so every run passes the
    complete set, taken from the DAG before its first run.
    """
    import copy

    defaults = _DEFAULTS.setdefault(dag.dag_id, copy.deepcopy(dag.params.dump()))
    return dag.test(run_conf={**defaults, **(conf or {})})


def asset_events(asset: str, dr: Any) -> list[dict[str, Any]]:
    """The extras of the events of Asset ``asset`` that the dag.test() run ``dr`` emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == asset, AssetEvent.source_run_id == dr.run_id)
        )
        return [dict(e.extra or {}) for e in rows]


def links_of(dr: Any, task_id: str) -> dict[str, str]:
    """The extra links a task instance of a dag.test() run recorded (name -> address)."""
    from nightshift.airflow.links import LINKS, xcom_key

    ti = dr.get_task_instance(task_id)
    out = {}
    for name in LINKS:
        url = ti.xcom_pull(task_ids=task_id, key=xcom_key(name))
        if url:
            out[name] = url
    return out


@contextlib.contextmanager
def http_sink() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it: (url, received)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, Any]] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers["Content-Type"], **json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


class ServeProcess:
    """``nightshift serve`` on 127.0.0.1 in its own process group (stopped by SIGTERM to it,
    which flushes its request log), with ``env`` over the test's environment."""

    def __init__(self, root: Path, dataset: str, env: dict[str, str]) -> None:
        self.root, self.dataset, self.env = root, dataset, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "nightshift.cli", "serve", "--dataset", self.dataset]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd,
            stdout=open(self.log, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nightshift serve exited ({self.proc.returncode}); see {self.log}")
            status, _ = self.get("/health")
            if status == 200:
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"nightshift serve never became ready on {self.url}; see {self.log}")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        """``(status, JSON body)`` of a GET; ``(0, {})`` while nothing answers."""
        import json
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except OSError:
            return 0, {}

    def stop(self) -> int | None:
        """SIGTERM to the process group; the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            return None


def post_json(conn: Any, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    """One POST on a kept-alive ``http.client`` connection: ``(status, parsed body)``."""
    import json

    conn.request("POST", path, body, {"Content-Type": content_type})
    r = conn.getresponse()
    data = r.read()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode(errors="replace")
