"""Unpause DAGs, trigger one run through the REST API and wait for it (and what it sets off).

Usage: python scripts/run_dag.py DAG_ID [--conf JSON] [--unpause DAG ...] [--then DAG ...]
Exits 0 when the triggered run (and one run of each ``--then`` DAG started after it)
finished successfully, 1 otherwise. Task states are printed as they settle. Logs in with the
running stack's credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from nightshift.restclient import FINISHED
from nightshift_dev.client import AirflowClient, stack_client


def wait(
    client: AirflowClient, dag_id: str, deadline: float, run_id: str | None = None, after: str = ""
) -> dict[str, Any]:
    """The run ``run_id`` (or the first run queued after ``after``) once it has finished."""
    last = ""
    while time.monotonic() < deadline:
        found = [
            r
            for r in client.runs(dag_id)
            if (r["dag_run_id"] == run_id if run_id else (r.get("queued_at") or "") > after)
        ]
        if found:
            run = sorted(found, key=lambda r: r.get("queued_at") or "")[0]
            line = f"  {dag_id}: {run['state']} {client.task_states(dag_id, run['dag_run_id'])}"
            if line != last:
                print(line, flush=True)
                last = line
            if run["state"] in FINISHED:
                return run
        time.sleep(1)
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
    client = stack_client()
    for dag in [a.dag_id, *a.unpause, *a.then]:
        client.unpause(dag)
    run = client.trigger(a.dag_id, a.conf)
    print(f"  triggered {a.dag_id} run {run['dag_run_id']}", flush=True)
    ok = True
    try:
        done = wait(client, a.dag_id, deadline, run_id=run["dag_run_id"])
        ok = done["state"] == "success"
        states = client.task_states(a.dag_id, run["dag_run_id"])
        if a.then and set(states.values()) != {"success"}:
            print(f"  not every task of {a.dag_id} succeeded: not waiting for {', '.join(a.then)}")
            return 0 if ok else 1
        for dag in a.then:
            ok = wait(client, dag, deadline, after=run.get("queued_at") or "")["state"] == "success" and ok
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
