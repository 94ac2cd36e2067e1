"""Wait until the running stack's api-server answers and lists every nightshift DAG of some datasets.

Usage: python scripts/wait_dags.py DATASET ... [--timeout S]
Exits 0 once the ``nightshift_<kind>.<dataset>`` DAGs that ``nightshift replay`` watches are parsed, 1
naming the missing ones after ``--timeout`` seconds. Logs in with the running stack's credentials
(``make up`` records where they are). A REST call per dataset a second, where ``airflow dags list`` cost
a fresh Airflow interpreter a poll.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.parse

from nightshift.restclient import KINDS, ApiError, ApiUnavailable, dag_id
from nightshift_dev.client import stack_client


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("datasets", nargs="*")
    p.add_argument("--timeout", type=float, default=240)
    a = p.parse_args()
    want = {dag_id(kind, name) for name in a.datasets for kind in KINDS}
    deadline = time.monotonic() + a.timeout
    client = stack_client()
    missing = sorted(want)
    why = "the api-server did not answer"
    while time.monotonic() < deadline:
        try:
            listed: set[str] = set()
            for name in a.datasets:  # a substring search; a page holds 100, a dataset has 7 DAGs
                q = urllib.parse.urlencode({"dag_id_pattern": f".{name}", "limit": "100"})
                listed |= {d["dag_id"] for d in client.request("GET", f"/api/v2/dags?{q}")["dags"]}
            missing, why = sorted(want - listed), "not parsed"
            if not missing:
                return 0
        except (ApiUnavailable, ApiError) as exc:  # starting up: not listening, or 5xx
            why = f"the api-server did not answer ({exc})"
        time.sleep(1)
    print(f"DAGs never appeared ({why}): {', '.join(missing)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
