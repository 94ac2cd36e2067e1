"""An Airflow stack of a test's or a benchmark's own: its components, each in its own process
group on 127.0.0.1, with a metadata database of their own (:func:`nightshift_dev.env.system_env`);
and what its tasks' logs say about the preload."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from nightshift_dev import free_port
from nightshift_dev.client import AirflowClient
from nightshift_dev.env import system_env


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


class AirflowStack(AirflowClient):
    """dag-processor, scheduler (LocalExecutor) and api-server; ``stop()`` kills them by group."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None, password: str = "admin") -> None:
        self.home = home
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}", password)
        home.mkdir(parents=True, exist_ok=True)
        (home / "passwords.json").write_text(json.dumps({"admin": password}))
        self.env = {
            **os.environ,
            **system_env(home, self.port),
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
        """Migrate the DB and start ``components`` (a test of the UI alone needs only the api-server;
        a deferred task needs the ``triggerer``)."""
        from nightshift.airflow.dagconfig import REGISTRY_POOL

        self.cli("db", "migrate")
        if "scheduler" in components:
            self.cli("pools", "set", REGISTRY_POOL, "1", "nightshift registry writes")
        if "dag-processor" in components:
            self._spawn("dag-processor", "dag-processor")
        if "scheduler" in components:
            self._spawn("scheduler", "scheduler", "--skip-serve-logs")
        if "triggerer" in components:
            self._spawn("triggerer", "triggerer", "--skip-serve-logs")
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

    def wait_executor_event(
        self, dag_id: str, task_id: str, run_id: str, state: str, timeout: float = 120
    ) -> None:
        """Wait until the scheduler has processed the executor's event for the exit of ``task_id``'s
        process while the task instance was in ``state`` (its ``TaskInstance Finished`` line).

        A parked human-in-the-loop task is the case: until then, an answer that moves the task on
        races with that stale event, and the scheduler takes the task for killed and retries it
        (seen 5.5 s after the park on a loaded machine)."""
        line = f"TaskInstance Finished: dag_id={dag_id}, task_id={task_id}, run_id={run_id},"
        log = self.home / "scheduler.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for seen in log.read_text(errors="replace").splitlines():
                if line in seen and f", state={state}," in seen:
                    return
            time.sleep(0.5)
        raise TimeoutError(
            f"the scheduler did not process the exit of {dag_id}.{task_id} {run_id} in {state}"
            f" within {timeout:.0f} s; see {log}"
        )

    def stop(self) -> None:
        """Stop every component by its process group. The group is killed once its leader has
        exited: the scheduler's LocalExecutor workers outlived it (orphaned, idle, ~450 MB each)."""
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # what is left of the group
        groups = {name: p.pid for name, p in self.procs.items()}
        self.procs.clear()
        deadline = time.monotonic() + 10
        while (left := {n: g for n, g in groups.items() if group_members(g)}) and time.monotonic() < deadline:
            time.sleep(0.2)
        if left:
            raise RuntimeError(f"processes outlived the stack's stop: {left} (name: process group)")


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid`` (Linux ``/proc``)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out
