"""Wait until every run of a DAG over a range of days has finished, via the REST API.

Usage: python scripts/wait_runs.py DAG_ID START END [--timeout S]
Prints progress; exits 0 when all runs finished (whatever their state), 1 on timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta
from typing import Any

BASE = os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080")
FINISHED = {"success", "failed"}


def _request(method: str, path: str, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def token() -> str:
    return str(
        _request("POST", "/auth/token", body={"username": "admin", "password": "admin"})["access_token"]
    )


def runs(tok: str, dag_id: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"limit": 1000})
    return list(_request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns?{q}", tok)["dag_runs"])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dag_id")
    p.add_argument("start", type=date.fromisoformat)
    p.add_argument("end", type=date.fromisoformat)
    p.add_argument("--timeout", type=float, default=1200)
    a = p.parse_args()
    want = {(a.start + timedelta(days=i)).isoformat() for i in range((a.end - a.start).days + 1)}
    deadline = time.monotonic() + a.timeout
    tok = None
    last = ""
    while time.monotonic() < deadline:
        try:
            tok = tok or token()
            states = {}
            for r in runs(tok, a.dag_id):
                day = (r.get("logical_date") or "")[:10]
                if day in want:
                    states[day] = r["state"]
        except (urllib.error.URLError, ConnectionError, KeyError) as exc:
            states = {}
            tok = None
            print(f"  (API not ready: {exc})", flush=True)
        done = sum(1 for d in want if states.get(d) in FINISHED)
        failed = sum(1 for d in want if states.get(d) == "failed")
        line = f"  {done}/{len(want)} runs finished ({failed} failed)"
        if line != last:
            print(line, flush=True)
            last = line
        if done == len(want):
            return 0
        time.sleep(5)
    print(f"timed out after {a.timeout:.0f}s waiting for {a.dag_id}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
