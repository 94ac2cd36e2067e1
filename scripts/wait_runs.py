"""Wait until every run of a DAG over a range of days has finished, via the REST API.

Usage: python scripts/wait_runs.py DAG_ID START END [--timeout S]
Prints progress; exits 0 when all runs finished (whatever their state), 1 on timeout. Logs in
with the running stack's credentials (``make up`` records where they are).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta

from nightshift.restclient import FINISHED, ApiError, ApiUnavailable
from nightshift_dev.client import stack_client


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dag_id")
    p.add_argument("start", type=date.fromisoformat)
    p.add_argument("end", type=date.fromisoformat)
    p.add_argument("--timeout", type=float, default=1200)
    a = p.parse_args()
    want = {(a.start + timedelta(days=i)).isoformat() for i in range((a.end - a.start).days + 1)}
    deadline = time.monotonic() + a.timeout
    client = stack_client()
    last = ""
    while time.monotonic() < deadline:
        try:
            states = {}
            for r in client.runs(a.dag_id):
                day = ((r.get("conf") or {}).get("dt") or r.get("logical_date") or "")[:10]
                if day in want:
                    states[day] = r["state"]
        except (ApiUnavailable, ApiError, KeyError) as exc:
            states = {}
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
