"""The speed/memory regression check (``bench/regression.py``): the real ingest and training
steps at small sizes, as ratios against bare baselines measured in the same run, within the
bounds recorded in ``bench/baseline.json`` (no absolute time is judged)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def regression() -> Any:
    """``bench/regression.py`` (bench/ is on the tests' path: pyproject's pytest ``pythonpath``)."""
    return importlib.import_module("regression")


def test_the_recorded_baseline_covers_every_ratio_measured(regression: Any) -> None:
    baseline = json.loads((BENCH / "baseline.json").read_text())
    assert set(baseline["metrics"]) == {
        "ingest.stage_vs_bare",
        "ingest.ingest_vs_bare",
        "ingest.rss_vs_imports",
        "train.step_vs_bare",
        "train.rss_vs_imports",
    }
    assert all(m["recorded"] > 0 for m in baseline["metrics"].values())
    bounds = regression.bounds(baseline)
    assert bounds["train.step_vs_bare"] == pytest.approx(
        baseline["metrics"]["train.step_vs_bare"]["recorded"] * (1 + baseline["tolerance"]["time"])
    )
    assert bounds["ingest.rss_vs_imports"] == pytest.approx(
        baseline["metrics"]["ingest.rss_vs_imports"]["recorded"] * (1 + baseline["tolerance"]["memory"])
    )


def test_a_ratio_above_its_bound_or_missing_is_a_regression(regression: Any) -> None:
    baseline = {
        "tolerance": {"time": 0.5, "memory": 0.25},
        "metrics": {
            "a.x_vs_bare": {"recorded": 2.0},
            "a.rss_vs_imports": {"recorded": 1.2},
            "b.y": {"recorded": 1},
        },
    }
    ok = {"a.x_vs_bare": 3.0, "a.rss_vs_imports": 1.5, "b.y": 1.5}
    assert regression.compare(ok, baseline) == []
    bad = regression.compare({"a.x_vs_bare": 3.01, "a.rss_vs_imports": 1.51}, baseline)
    assert bad == [
        "a.x_vs_bare: 3.01 > bound 3.00 (recorded 2.00)",
        "a.rss_vs_imports: 1.51 > bound 1.50 (recorded 1.20)",
        "b.y: not measured",
    ]
    assert regression.compare({**ok, "a.x_vs_bare": float("nan")}, baseline)  # NaN never passes
    # a smoke run judges memory and that every ratio is one, not the time bounds
    slow = {**ok, "a.x_vs_bare": 30.0}
    assert regression.compare(slow, baseline, smoke=True) == []
    assert regression.compare({**slow, "a.rss_vs_imports": 1.51}, baseline, smoke=True) == [
        "a.rss_vs_imports: 1.51 > bound 1.50 (recorded 1.20)"
    ]
    assert regression.compare({**slow, "a.x_vs_bare": float("nan")}, baseline, smoke=True) == [
        "a.x_vs_bare: nan is not a ratio"
    ]
    assert regression.compare({**slow, "a.x_vs_bare": 0.0}, baseline, smoke=True) == [
        "a.x_vs_bare: 0.0 is not a ratio"
    ]


def test_the_small_benchmarks_run_and_their_memory_has_not_regressed(tmp_path: Path) -> None:
    """``--smoke``: every ratio measured, the memory ones within their bounds; the time ratios
    are printed, not judged (a timed bound fails on a loaded machine, not on a slower step)."""
    out = tmp_path / "regression.json"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPATH"] = str(ROOT / "include")
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "regression.py"),
            "--root",
            str(tmp_path / "scratch"),
            "--json",
            str(out),
            "--smoke",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(out.read_text())
    assert result["regressions"] == []
    assert set(result["ratios"]) == set(result["bounds"])
    assert result["judged"] == ["ingest.rss_vs_imports", "train.rss_vs_imports"]
    for name, ratio in result["ratios"].items():
        assert 0 < ratio < float("inf"), name
        if name in result["judged"]:
            assert ratio <= result["bounds"][name], name
    assert "PASS" in proc.stdout and "MISS" not in proc.stdout
    assert proc.stdout.count("not judged (--smoke)") == 3
    assert not (tmp_path / "scratch").exists()  # scratch data removed


def test_the_ingest_benchmark_finishes_at_its_smallest_size(tmp_path: Path) -> None:
    """``bench/ingest.py`` end to end at a tiny size, one round of every GX arm: it must finish
    and report each ratio with the commit and the outside load (it need not meet a number)."""
    out = tmp_path / "ingest.json"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPATH"] = str(ROOT / "include")
    cmd = [sys.executable, str(BENCH / "ingest.py"), "--rows", "2000", "--pairs", "1"]
    cmd += ["--arms", "sql,pandas-2proc", "--root", str(tmp_path / "scratch"), "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    (result,) = json.loads(out.read_text())
    assert result["rows"] == 2000 and result["pairs"] == 1 and result["commit"]
    assert set(result["runs"]) == {
        "bare",
        "stage",
        "ingest",
        "gx:sql",
        "gx:pandas-2proc",
        "pandas",
    }
    for label, runs in result["runs"].items():
        assert len(runs) == 1 and runs[0]["seconds"] > 0 and len(runs[0]["load"]) == 2, label
    for arm in ("sql", "pandas-2proc"):  # (2proc runs the pandas arm's code, twice)
        assert f"gx:{arm} vs pandas verdicts and unexpected counts: agree" in proc.stdout
    assert "ingest_partition throughput / bare" in proc.stdout and "outside load per arm" in proc.stdout
    assert not (tmp_path / "scratch" / "rows-2000").exists()  # scratch data removed
