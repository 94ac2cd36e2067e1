"""Let simulated days pass one at a time through the running scheduler, via the REST API.

Usage: python scripts/step_days.py DATASET START END [--together] [--unpause DAG ...] [--timeout S]
For each day: trigger nightshift_ingest.<dataset> with ``dt`` = the day, then wait until every
nightshift DAG of the dataset is idle (no queued or running run, no queued Asset event), so
the scoring, monitoring and any retraining the day sets off finish before the next day lands.
``--together`` triggers every day at once and waits once (a backfill). Prints one line per
day; exits 1 on timeout.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
from datetime import date, timedelta

from run_dag import trigger, unpause
from wait_runs import _request, token

KINDS = ("ingest", "score", "train", "monitor", "retrain")


def active(tok: str, dataset: str) -> list[str]:
    """What is still going on: runs not finished, Asset events not yet turned into runs."""
    busy = []
    for kind in KINDS:
        dag_id = urllib.parse.quote(f"nightshift_{kind}.{dataset}")
        q = urllib.parse.urlencode([("state", "queued"), ("state", "running"), ("limit", 10)])
        n = _request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{q}", tok)["total_entries"]
        queued = _request("GET", f"/api/v2/dags/{dag_id}/assets/queuedEvents", tok)["total_entries"]
        if n or queued:
            busy.append(f"{kind}({n} run(s){', events queued' if queued else ''})")
    return busy


def wait_idle(tok: str, dataset: str, deadline: float, quiet_polls: int = 3) -> None:
    quiet = 0
    while time.monotonic() < deadline:
        quiet = 0 if active(tok, dataset) else quiet + 1
        if quiet >= quiet_polls:
            return
        time.sleep(3)
    raise TimeoutError(f"still busy: {', '.join(active(tok, dataset))}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("start", type=date.fromisoformat)
    p.add_argument("end", type=date.fromisoformat)
    p.add_argument("--timeout", type=float, default=600, help="per day")
    p.add_argument("--together", action="store_true", help="trigger all days, then wait once")
    p.add_argument("--unpause", nargs="*", default=[], help="DAGs to unpause first")
    a = p.parse_args()
    tok = token()
    for dag_id in [f"nightshift_ingest.{a.dataset}", *a.unpause]:
        unpause(tok, dag_id)
    if a.together:
        t0, day = time.monotonic(), a.start
        while day <= a.end:
            trigger(tok, f"nightshift_ingest.{a.dataset}", {"dt": day.isoformat()})
            day += timedelta(days=1)
        try:
            time.sleep(3)
            wait_idle(tok, a.dataset, t0 + a.timeout)
        except TimeoutError as exc:
            print(f"  {a.start}..{a.end}: {exc}", file=sys.stderr)
            return 1
        print(f"  {a.start}..{a.end}: done in {time.monotonic() - t0:.0f} s", flush=True)
        return 0
    day = a.start
    while day <= a.end:
        t0 = time.monotonic()
        tok = token()
        trigger(tok, f"nightshift_ingest.{a.dataset}", {"dt": day.isoformat()})
        try:
            time.sleep(3)
            wait_idle(tok, a.dataset, t0 + a.timeout)
        except TimeoutError as exc:
            print(f"  {day}: {exc}", file=sys.stderr)
            return 1
        print(f"  {day}: done in {time.monotonic() - t0:.0f} s", flush=True)
        day += timedelta(days=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
