"""The REST client of the scripts, tests and benchmarks: the core's
:class:`~nightshift.restclient.AirflowAPI` (token login, trigger, runs, task states, ``wait_idle``)
with what they poll for: a DAG parsed, a run finished, a run's task instances."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from nightshift import stack
from nightshift.restclient import FINISHED, AirflowAPI, ApiError
from nightshift_dev.env import USER


class AirflowClient(AirflowAPI):
    """Airflow's REST API at ``base`` as ``user`` (the local stacks' ``admin``)."""

    def __init__(self, base: str, password: str = "admin", user: str = USER) -> None:
        super().__init__(base, user, password)

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed ``dag_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}")
                return
            except ApiError as exc:
                if exc.status != 404:
                    raise
            time.sleep(1)
        raise TimeoutError(f"{dag_id} was not parsed within {timeout:.0f} s")

    def wait_run(
        self, dag_id: str, pick: Callable[[dict[str, Any]], bool], timeout: float = 600
    ) -> dict[str, Any]:
        """The first run chosen by ``pick(run)`` once it exists and has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.runs(dag_id):
                if pick(r) and r["state"] in FINISHED:
                    return r
            time.sleep(1)
        raise TimeoutError(f"no finished run of {dag_id} within {timeout:.0f} s: {self.runs(dag_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = (
            f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
            "/taskInstances"
        )
        return list(self.request("GET", path)["task_instances"])

    def trigger_id(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run of ``dag_id`` now; its run id."""
        return str(self.trigger(dag_id, conf or {})["dag_run_id"])


def stack_client() -> AirflowClient:
    """The running ``make up`` stack's API, logged in as its user with the password from its
    password file (``.nightshift/run/stack.json`` says where; else the environment's)."""
    info = stack.StackInfo.read()
    user = info.user if info else stack.DEFAULT_USER
    return AirflowClient(stack.api_base(None, info), stack.password(user, stack.passwords_file(info)), user)
