"""``scripts/demo_times.py`` (``nightshift_dev.demotimes``): per-day seconds, runs and task
processes from Airflow's metadata DB (what ``make demo`` prints at the end), on a small SQLite
database of Airflow's column names."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from nightshift_dev.demotimes import days, table

RUNS = [  # dag, run, type, queued, end, conf
    ("ingest", "boot", "manual", "2026-12-01 10:00:00", "2026-12-01 10:00:30", {"dt": "2026-03-01"}),
    ("ingest", "d1", "manual", "2026-12-01 10:01:00", "2026-12-01 10:01:20", {"dt": "2026-03-02"}),
    ("score", "s1", "asset_triggered", "2026-12-01 10:01:12", "2026-12-01 10:01:30", None),
    ("monitor", "m1", "asset_triggered", "2026-12-01 10:01:31", "2026-12-01 10:01:40.5", None),
    ("ingest", "d2", "manual", "2026-12-01 10:01:45", "2026-12-01 10:02:05", {"dt": "2026-03-03"}),
    ("retrain", "r2", "asset_triggered", "2026-12-01 10:02:06", "2026-12-01 10:02:15", None),
]
TASKS = [  # dag, run, task, start, end, duration (None: never ran)
    ("ingest", "d1", "ingest_events", "2026-12-01 10:01:02", "2026-12-01 10:01:10", 8.0),
    ("ingest", "d1", "ingest_labels", "2026-12-01 10:01:10", "2026-12-01 10:01:19", 9.0),
    ("score", "s1", "score", "2026-12-01 10:01:13", "2026-12-01 10:01:29", 16.0),
    ("monitor", "m1", "monitor", "2026-12-01 10:01:32", "2026-12-01 10:01:40", 8.0),
    ("ingest", "d2", "ingest_events", "2026-12-01 10:01:46", "2026-12-01 10:02:00", 14.0),
    ("retrain", "r2", "decide", "2026-12-01 10:02:07", "2026-12-01 10:02:12", 5.0),
    ("retrain", "r2", "train", None, None, None),
]


def _db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE dag_run (dag_id, run_id, run_type, queued_at, start_date, end_date, conf BLOB)")
    con.execute("CREATE TABLE task_instance (dag_id, run_id, task_id, start_date, end_date, duration)")
    for dag, run, kind, queued, end, conf in RUNS:
        blob = json.dumps(conf).encode() if conf is not None else None
        con.execute(
            "INSERT INTO dag_run VALUES (?, ?, ?, ?, ?, ?, ?)",
            (f"nightshift_{dag}.payments", run, kind, queued, queued, end, blob),
        )
    for dag, run, task, start, finished, duration in TASKS:
        con.execute(
            "INSERT INTO task_instance VALUES (?, ?, ?, ?, ?, ?)",
            (f"nightshift_{dag}.payments", run, task, start, finished, duration),
        )
    con.commit()
    con.close()
    return path


def test_each_day_counts_its_runs_task_processes_and_seconds(tmp_path: Path) -> None:
    from nightshift_dev.demotimes import _ts

    rows = days(_db(tmp_path / "airflow.db"), "payments", since=_ts("2026-12-01T10:00:50"))
    assert [r["day"] for r in rows] == ["2026-03-02", "2026-03-03"]
    first, last = rows
    # until the next day was triggered; busy until the last run of the day ended
    assert first["seconds"] == 45.0 and first["busy_seconds"] == 40.5
    assert first["runs"] == {"ingest": 1, "score": 1, "train": 0, "monitor": 1, "retrain": 0}
    assert (first["tasks_run"], first["task_seconds"]) == (4, 41.0)
    # the last day: until its last task or run ended; a task that never ran is no process
    assert last["seconds"] == last["busy_seconds"] == 30.0
    assert last["runs"]["retrain"] == 1 and last["tasks_run"] == 2
    text = table(rows)
    assert "2 day(s): 75 s, median 38 s a day (30-45); 5 runs, 6 task processes" in text
