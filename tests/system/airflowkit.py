"""The Airflow components of a system test, each in its own process group on 127.0.0.1, with
a metadata database of their own; and a small REST client for the public API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# as in scripts/env.sh: the scheduler's forkserver imports the task libraries once
PRELOAD_ENV = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "nightshift.airflow.preload",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def preload_problems(airflow_home: Path) -> tuple[int, list[str]]:
    """Read every task attempt's log under ``airflow_home/logs``: how many tasks started, and
    each one that did not inherit the heavy libraries from its worker (the preload) or had to
    import GX, Evidently, MLflow or XGBoost itself."""
    from nightshift.airflow.taskstart import IMPORTS_ITSELF, INHERITED, NOT_INHERITED

    started, problems = 0, []
    for log in sorted((airflow_home / "logs").glob("dag_id=*/run_id=*/task_id=*/attempt=*.log")):
        text = log.read_text(errors="replace")
        if "Worker startup parse complete" not in text:
            continue  # never started (a killed worker's attempt)
        started += 1
        where = log.relative_to(airflow_home / "logs").as_posix()
        if INHERITED not in text or NOT_INHERITED in text:
            problems.append(f"{where}: did not inherit the preload")
        for lib in ("great_expectations", "evidently", "mlflow", "xgboost"):
            if f"{IMPORTS_ITSELF} {lib}" in text:
                line = text[text.index(f"{IMPORTS_ITSELF} {lib}") :].split('"', 1)[0]
                problems.append(f"{where}: {line}")
    return started, problems


class AirflowClient:
    """A small client for Airflow's public REST API (token login as ``admin``)."""

    def __init__(self, base: str, password: str = "admin") -> None:
        self.base = base
        self.password = password
        self._token: str | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._token is None and path != "/auth/token":
            login = {"username": "admin", "password": self.password}
            self._token = self.request("POST", "/auth/token", login)["access_token"]
        req = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode() if body is not None else None, method=method
        )
        req.add_header("Content-Type", "application/json")
        if self._token and path != "/auth/token":
            req.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.request("GET", f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(2)
        raise TimeoutError(f"{dag_id} was not parsed within {timeout:.0f} s")

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}}
        )
        return str(run["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"limit": 100})
        return list(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{q}")["dag_runs"])

    def wait_run(self, dag_id: str, pick: Any, timeout: float = 600) -> dict[str, Any]:
        """Wait until a run chosen by ``pick(run)`` exists and has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.runs(dag_id):
                if pick(r) and r["state"] in ("success", "failed"):
                    return r
            time.sleep(3)
        raise TimeoutError(f"no finished run of {dag_id} within {timeout:.0f} s: {self.runs(dag_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
        return list(self.request("GET", path)["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}


class AirflowStack(AirflowClient):
    """dag-processor, scheduler (LocalExecutor) and api-server; ``stop()`` kills them by group."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        home.mkdir(parents=True, exist_ok=True)
        (home / "passwords.json").write_text(json.dumps({"admin": "admin"}))
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # tasks fork from LocalExecutor workers that imported their libraries once
            **PRELOAD_ENV,
            "PYTHONWARNINGS": "ignore",
            **(extra_env or {}),
        }
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
            )
        return out.stdout

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start(self, components: tuple[str, ...] = ("dag-processor", "scheduler", "api-server")) -> None:
        """Migrate the DB and start ``components`` (a test of the UI alone needs only the api-server)."""
        from nightshift.airflow.dagconfig import REGISTRY_POOL

        self.cli("db", "migrate")
        if "scheduler" in components:
            self.cli("pools", "set", REGISTRY_POOL, "1", "nightshift registry writes")
        if "dag-processor" in components:
            self._spawn("dag-processor", "dag-processor")
        if "scheduler" in components:
            self._spawn("scheduler", "scheduler", "--skip-serve-logs")
        self._spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead} exited; see {self.home}/*.log")
            try:
                with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=3):
                    return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"the api-server did not answer on {self.base}; see {self.home}/api-server.log")

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.procs.clear()
