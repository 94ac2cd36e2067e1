"""A small client for Airflow's public REST API (urllib only; imports no airflow).

It logs in with a user and password (``POST /auth/token``, again once when the token
expires), triggers and unpauses DAGs, reads runs and task states, and tells when a dataset's
DAGs are idle. ``nightshift replay`` and the demo's scripts use it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from nightshift.errors import DataError, ServiceError

# the DAG families whose runs a day's landing sets off (promote and rollback are manual)
KINDS = ("ingest", "score", "train", "monitor", "retrain")
FINISHED = ("success", "failed")


class ApiUnavailable(ServiceError, RuntimeError):
    """Nothing answers at the API's address; the message names it."""


class ApiError(DataError, RuntimeError):
    """The API answered with an error (a refused login, no such DAG, a bad request); the
    message names the request and the answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def dag_id(kind: str, dataset: str) -> str:
    return f"nightshift_{kind}.{dataset}"


class AirflowAPI:
    """Airflow's REST API at ``base`` (e.g. ``http://127.0.0.1:8080``) as ``user``."""

    def __init__(self, base: str, user: str, password: str, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.user = user
        self._password = password
        self.timeout = timeout
        self._token: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"AirflowAPI({self.base!r}, user={self.user!r})"

    def _send(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace").strip()
            raise ApiError(f"{method} {self.base}{path}: HTTP {exc.code} {detail}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiUnavailable(
                f"no Airflow API at {self.base} ({reason}); is the stack up? (make up)"
            ) from None

    def check(self) -> None:
        """Raise :class:`ApiUnavailable` unless the api-server answers its health check."""
        self._send("GET", "/api/v2/monitor/health")

    def login(self) -> None:
        try:
            answer = self._send("POST", "/auth/token", {"username": self.user, "password": self._password})
        except ApiError as exc:
            if exc.status in (401, 403):
                raise ApiError(
                    f"{self.base} refused the login of {self.user!r} (HTTP {exc.status}): not the "
                    "password of the running stack?",
                    exc.status,
                ) from None
            raise
        self._token = str(answer["access_token"])

    def request(self, method: str, path: str, body: Any = None) -> Any:
        if self._token is None:
            self.login()
        try:
            return self._send(method, path, body, self._token)
        except ApiError as exc:
            if exc.status != 401:
                raise
            self.login()  # the token expired: once more with a fresh one
            return self._send(method, path, body, self._token)

    # ---- DAGs and runs ---------------------------------------------------------------------

    def dag(self, dag: str) -> dict[str, Any]:
        try:
            return dict(self.request("GET", f"/api/v2/dags/{urllib.parse.quote(dag)}"))
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(
                    f"no DAG {dag} on {self.base}: is its spec in datasets/ and parsed? "
                    "(the dag-processor's log, or Import errors in the UI)",
                    404,
                ) from None
            raise

    def unpause(self, dag: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{urllib.parse.quote(dag)}", {"is_paused": False})

    def trigger(self, dag: str, conf: dict[str, Any]) -> dict[str, Any]:
        body = {"logical_date": None, "conf": conf}
        return dict(self.request("POST", f"/api/v2/dags/{urllib.parse.quote(dag)}/dagRuns", body))

    def run(self, dag: str, run_id: str) -> dict[str, Any]:
        path = f"/api/v2/dags/{urllib.parse.quote(dag)}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        return dict(self.request("GET", path))

    def runs(self, dag: str, since: str | None = None, states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Up to 100 runs of ``dag``, oldest first: those after ``since`` (an ISO time, on their
        ``run_after``) and in ``states`` when given."""
        q: list[tuple[str, str]] = [("limit", "100"), ("order_by", "run_after")]
        if since:
            q.append(("run_after_gte", since))
        q += [("state", s) for s in states]
        path = f"/api/v2/dags/{urllib.parse.quote(dag)}/dagRuns?{urllib.parse.urlencode(q)}"
        return list(self.request("GET", path)["dag_runs"])

    def task_states(self, dag: str, run_id: str) -> dict[str, str]:
        path = (
            f"/api/v2/dags/{urllib.parse.quote(dag)}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
            "/taskInstances"
        )
        return {t["task_id"]: str(t["state"]) for t in self.request("GET", path)["task_instances"]}

    def busy(self, dataset: str) -> list[str]:
        """What is still going on for ``dataset``: runs not finished, Asset events not yet turned
        into runs (empty: idle)."""
        out = []
        for kind in KINDS:
            dag = urllib.parse.quote(dag_id(kind, dataset))
            q = urllib.parse.urlencode([("state", "queued"), ("state", "running"), ("limit", "10")])
            n = self.request("GET", f"/api/v2/dags/{dag}/dagRuns?{q}")["total_entries"]
            queued = self.request("GET", f"/api/v2/dags/{dag}/assets/queuedEvents")["total_entries"]
            if n or queued:
                out.append(f"{kind}({n} run(s){', events queued' if queued else ''})")
        return out

    def wait_idle(
        self,
        dataset: str,
        deadline: float,
        quiet_polls: int = 2,
        poll_s: float = 2.0,
        on_poll: Callable[[list[str]], None] | None = None,
        confirm_s: float = 0.25,
    ) -> None:
        """Return once ``dataset``'s DAGs have been idle ``quiet_polls`` polls in a row;
        :class:`TimeoutError` naming what is still busy. An Asset event is queued for its DAG in
        the transaction that ends the task emitting it and becomes a run in the one that deletes
        it, so :meth:`busy` sees every step of a chain; the second poll covers the chain's step
        back (a promotion scoring again) falling between one poll's DAGs. Polls ``poll_s`` apart
        while busy; a quiet poll is confirmed ``confirm_s`` later (what the second poll covers
        is a step between two requests of one poll, not a wait)."""
        quiet = 0
        while time.monotonic() < deadline:
            busy = self.busy(dataset)
            if on_poll is not None:
                on_poll(busy)
            quiet = 0 if busy else quiet + 1
            if quiet >= quiet_polls:
                return
            time.sleep(confirm_s if quiet else poll_s)
        raise TimeoutError(f"still busy: {', '.join(self.busy(dataset)) or 'nothing (just now)'}")
