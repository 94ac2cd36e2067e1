"""The orchestration-overhead benchmark's arithmetic (``bench/overhead.py``) and its probes
(``bench/harness.py``): the ratio's median and spread over pairs, the per-task overhead, the
outside load that leaves out the arm's own process sessions, the commit label."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest


@pytest.fixture(scope="module")
def bench() -> tuple[Any, Any]:
    """``bench/overhead.py`` and ``bench/harness.py`` (bench/ is on the tests' path: pyproject's
    pytest ``pythonpath``)."""
    return importlib.import_module("overhead"), importlib.import_module("harness")


def _task(dag: str, task: str, start: float, end: float, execute: float | None) -> Any:
    marks = {} if execute is None else {"pre_end": start + 0.1, "post_start": start + 0.1 + execute}
    run = {"dag": dag, "task": task, "state": "success", "try_number": 1, "queued": start, "start": start}
    return {**run, "end": end, **marks}


def _pair(a_clock: float, b_wall: float, overheads: list[float]) -> Any:
    tasks = [_task("train", f"t{i}", 10.0 * i, 10.0 * i + 5.0 + o, 5.0) for i, o in enumerate(overheads)]
    tasks.append(_task("ingest", "no_log", 0.0, 3.0, None))  # without log marks: left out
    phases = [
        {"phase": "import evidently", "seconds": 3.0, "kind": "import"},
        {"phase": "train", "seconds": 10.0, "kind": "step"},
        {"phase": "monitor", "seconds": 2.0, "kind": "step"},
    ]
    return {
        "a": {
            "wall_s": a_clock,
            "process_wall_s": a_clock + 12.0,
            "phases": phases,
            "evidently": {"drift_s": 0.5, "render_s": 0.3},
            "other_cores": 0.5,
        },
        "b": {"wall_s": b_wall, "tasks": tasks, "load": {"other_cores": 0.7}},
    }


def test_the_ratio_is_the_median_of_the_pairs_with_its_spread(bench: Any) -> None:
    overhead, _ = bench
    r = {"pairs": [_pair(20.0, 60.0, [1.0, 2.0]), _pair(10.0, 11.0, [0.5, 0.5]), _pair(20.0, 30.0, [3.0])]}
    o = overhead.overall(r)
    assert [s["ratio"] for s in o["pairs"]] == [3.0, 1.1, 1.5]
    assert (o["ratio_median"], o["ratio_min"], o["ratio_max"]) == (1.5, 1.1, 3.0)
    assert o["ratio_verdict"] == "MISS"
    assert o["median_pair"] == 2
    # A's whole process (start-up, imports, exit) is only the former definition, for information
    assert o["pairs"][0]["ratio_old"] == pytest.approx(60.0 / 32.0)
    # per task: its wall less its execute part, pooled over every pair; a task without marks is out
    assert o["overhead_tasks"] == 5
    assert o["overhead_median"] == pytest.approx(1.0)
    assert o["overhead_max"] == pytest.approx(3.0)
    assert o["overhead_verdict"] == "PASS"
    assert o["drift_median"] == pytest.approx(0.08)


def test_a_failed_or_retried_task_gives_the_ratio_no_verdict(bench: Any) -> None:
    overhead, _ = bench
    bad = _pair(20.0, 21.0, [0.5])
    bad["b"]["tasks"][0]["state"] = "failed"
    o = overhead.overall({"pairs": [bad]})
    assert o["ratio_verdict"].startswith("n/a")


def test_the_outside_load_leaves_out_the_named_sessions_cpu(bench: Any) -> None:
    _, harness = bench
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", burn], start_new_session=True)
    try:
        load = harness.OutsideLoad({child.pid})
        load.start()
        deadline = time.monotonic() + 60
        while harness.sessions_cpu_s({child.pid}) < 0.6 and time.monotonic() < deadline:
            time.sleep(0.1)
        out = load.stop()
        assert harness.sessions_cpu_s({child.pid}) >= 0.6  # the child's CPU is read by its session
        assert out["own_cores"] * out["wall_s"] >= 0.5  # and counted as the arm's own, not outside
        assert out["other_cores"] >= 0.0
    finally:
        os.killpg(child.pid, 15)
        child.wait()


def test_the_commit_label(bench: Any) -> None:
    _, harness = bench
    assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?|unknown", harness.git_commit())
