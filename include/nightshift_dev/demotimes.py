"""Per-day cost of days that passed through the scheduler, from Airflow's metadata DB (SQLite).

Usage: python scripts/demo_times.py DB [--dataset payments] [--since ISO] [--json FILE]

One row per ingest run triggered with ``dt`` (``nightshift replay``) at or after ``--since``: the
seconds until the next day was triggered (the last day: until its last task ended), the
seconds until its last run or task ended (``busy``; the rest is the replay's idle detection),
the DAG runs queued in that time per DAG family, the task instances that ran (a process each)
and their summed seconds. ``make demo`` prints it at the end; docs/benchmarks.md quotes it.
Reads the database read-only, imports no Airflow.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

KINDS = ("ingest", "score", "train", "monitor", "retrain")


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace(" ", "T")
    return datetime.fromisoformat(text if "+" in text[10:] else text + "+00:00")


def _conf(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        data = json.loads(value.decode() if isinstance(value, bytes) else value)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def days(db: Path, dataset: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """The rows described in the module docstring, oldest first."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        runs = [
            {
                "dag_id": r[0],
                "run_id": r[1],
                "run_type": r[2],
                "queued": _ts(r[3]) or _ts(r[4]),
                "end": _ts(r[5]),
                "conf": _conf(r[6]),
            }
            for r in con.execute(
                "SELECT dag_id, run_id, run_type, queued_at, start_date, end_date, conf FROM dag_run "
                "WHERE dag_id LIKE ?",
                (f"nightshift_%.{dataset}",),
            )
        ]
        tis: dict[tuple[str, str], list[tuple[datetime | None, float]]] = {}
        for dag_id, run_id, _start, end, duration in con.execute(
            "SELECT dag_id, run_id, start_date, end_date, duration FROM task_instance "
            "WHERE dag_id LIKE ? AND start_date IS NOT NULL",
            (f"nightshift_%.{dataset}",),
        ):
            tis.setdefault((dag_id, run_id), []).append((_ts(end), float(duration or 0.0)))
    finally:
        con.close()
    runs = [r for r in runs if r["queued"] is not None]
    runs.sort(key=lambda r: r["queued"])
    ingest = f"nightshift_ingest.{dataset}"
    starts = [
        r
        for r in runs
        if r["dag_id"] == ingest and r["conf"].get("dt") and (since is None or r["queued"] >= since)
    ]
    out = []
    for i, day_run in enumerate(starts):
        t0 = day_run["queued"]
        t1 = starts[i + 1]["queued"] if i + 1 < len(starts) else None
        inside = [r for r in runs if r["queued"] >= t0 and (t1 is None or r["queued"] < t1)]
        counts = {k: sum(r["dag_id"] == f"nightshift_{k}.{dataset}" for r in inside) for k in KINDS}
        ran = [ti for r in inside for ti in tis.get((r["dag_id"], r["run_id"]), [])]
        ends = [e for e in [r["end"] for r in inside] + [ti[0] for ti in ran] if e is not None]
        busy = (max(ends) - t0).total_seconds() if ends else None
        out.append(
            {
                "day": str(day_run["conf"]["dt"]),
                "seconds": (t1 - t0).total_seconds() if t1 is not None else busy,
                "busy_seconds": busy,
                "runs": counts,
                "tasks_run": len(ran),
                "task_seconds": round(sum(d for _, d in ran), 1),
            }
        )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    per_kind = "(" + " ".join(KINDS) + ")"
    lines = [f"{'day':<11} {'s':>6} {'busy s':>7} {'runs':>5}  {per_kind:<37} {'tasks':>5} {'task s':>7}"]
    for r in rows:
        per = " ".join(str(r["runs"][k]) for k in KINDS)
        runs = sum(r["runs"].values())
        lines.append(
            f"{r['day']:<11} {r['seconds'] or 0:6.0f} {r['busy_seconds'] or 0:7.0f} {runs:5d}"
            f"  {per:<37} {r['tasks_run']:5d} {r['task_seconds']:7.0f}"
        )
    if rows:
        secs = [r["seconds"] or 0.0 for r in rows]
        lines.append(
            f"{len(rows)} day(s): {sum(secs):.0f} s, median {statistics.median(secs):.0f} s a day "
            f"({min(secs):.0f}-{max(secs):.0f}); {sum(sum(r['runs'].values()) for r in rows)} runs, "
            f"{sum(r['tasks_run'] for r in rows)} task processes"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("db", type=Path)
    p.add_argument("--dataset", default="payments")
    p.add_argument("--since", type=lambda s: _ts(s), help="first trigger to count (ISO time, UTC)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    a = p.parse_args()
    if not a.db.exists():
        print(f"no Airflow database at {a.db}", file=sys.stderr)
        return 1
    rows = days(a.db, a.dataset, a.since)
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
