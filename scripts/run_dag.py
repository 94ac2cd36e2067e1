"""Unpause DAGs, trigger one run through the REST API and wait for it (and what it sets off).

Usage: python scripts/run_dag.py DAG_ID [--conf JSON] [--unpause DAG ...] [--then DAG ...]
Exits 0 when the triggered run (and one run of each ``--then`` DAG started after it)
finished successfully, 1 otherwise. Task states are printed as they settle.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from typing import Any

from wait_runs import _request, runs, token

FINISHED = {"success", "failed"}


def unpause(tok: str, dag_id: str) -> None:
    _request("PATCH", f"/api/v2/dags/{urllib.parse.quote(dag_id)}", tok, {"is_paused": False})


def trigger(tok: str, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    body = {"logical_date": None, "conf": conf}
    return dict(_request("POST", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns", tok, body))


def task_states(tok: str, dag_id: str, run_id: str) -> dict[str, str]:
    path = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
    return {t["task_id"]: str(t["state"]) for t in _request("GET", path, tok)["task_instances"]}


def wait(
    tok: str, dag_id: str, deadline: float, run_id: str | None = None, after: str = ""
) -> dict[str, Any]:
    """The run ``run_id`` (or the first run queued after ``after``) once it has finished."""
    last = ""
    while time.monotonic() < deadline:
        found = [
            r
            for r in runs(tok, dag_id)
            if (r["dag_run_id"] == run_id if run_id else (r.get("queued_at") or "") > after)
        ]
        if found:
            run = sorted(found, key=lambda r: r.get("queued_at") or "")[0]
            line = f"  {dag_id}: {run['state']} {task_states(tok, dag_id, run['dag_run_id'])}"
            if line != last:
                print(line, flush=True)
                last = line
            if run["state"] in FINISHED:
                return run
        time.sleep(3)
    raise TimeoutError(f"timed out waiting for {dag_id}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dag_id")
    p.add_argument("--conf", default="{}", type=json.loads)
    p.add_argument("--unpause", nargs="*", default=[])
    p.add_argument("--then", nargs="*", default=[], help="DAGs the run sets off (through Assets)")
    p.add_argument("--timeout", type=float, default=900)
    a = p.parse_args()
    deadline = time.monotonic() + a.timeout
    tok = token()
    for dag in [a.dag_id, *a.unpause, *a.then]:
        unpause(tok, dag)
    run = trigger(tok, a.dag_id, a.conf)
    print(f"  triggered {a.dag_id} run {run['dag_run_id']}", flush=True)
    ok = True
    try:
        done = wait(tok, a.dag_id, deadline, run_id=run["dag_run_id"])
        ok = done["state"] == "success"
        states = task_states(tok, a.dag_id, run["dag_run_id"])
        if a.then and set(states.values()) != {"success"}:
            print(f"  not every task of {a.dag_id} succeeded: not waiting for {', '.join(a.then)}")
            return 0 if ok else 1
        for dag in a.then:
            ok = wait(tok, dag, deadline, after=run.get("queued_at") or "")["state"] == "success" and ok
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
