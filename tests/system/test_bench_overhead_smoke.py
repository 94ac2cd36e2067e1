"""The orchestration-overhead benchmark (``bench/overhead.py``) at its smallest size, end to end:
both arms run (the one-process calls and the real scheduler's cycle on a stack of its own), every
task of arm B succeeds on its first try with the preload inherited, and the report is printed. A
smoke check: it must finish and measure; no number is judged (docs/benchmarks.md has those)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import overhead

ROOT = Path(__file__).resolve().parents[2]


def test_the_overhead_benchmark_runs_both_arms_at_its_smallest_size(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    cmd = [sys.executable, str(ROOT / "bench" / "overhead.py"), "--rows", "2000", "--pairs", "1"]
    cmd += ["--root", str(tmp_path / "scratch"), "--json", str(out), "--timeout", "600"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "cycle: Airflow / one process, median of 1:" in done.stdout
    assert "per-task overhead (task wall - its execute part)" in done.stdout

    raw = json.loads(out.read_text())
    (pair,) = raw["pairs"]
    summary = overhead.overall(raw)["pairs"][0]
    assert summary["bad_tasks"] == [], summary["bad_tasks"]
    assert summary["a_wall"] > 0 and summary["b_wall"] > 0
    # the cycle's tasks ran through the scheduler (ingest, score, train, gate, monitor, ...)
    assert summary["b_tasks"] >= 5
    assert pair["b"]["preload"]["tasks_started"] and not pair["b"]["preload"]["problems"]
    scratch = tmp_path / "scratch"
    assert not scratch.exists() or not any(scratch.rglob("*")), "the scratch stores were left behind"
