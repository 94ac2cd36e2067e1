"""The gate's serving check (``nightshift.servecheck``): the sample it sends, how it judges the
answers, what a failure does to the verdict, and the fresh server process it starts and stops.

The server here is a stdlib stand-in (``servecheck_standin.py``) started by the check exactly as
it starts ``nightshift serve`` (an inherited socket on 127.0.0.1, its own process group), so
each way a server can fail is cheap to provoke; the real ``nightshift serve`` is checked by
tests/integration (test_cli_loop, test_model_dags, test_serve).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modelkit import toy_spec
from nightshift import servecheck as sc
from nightshift.spec import DatasetSpec
from nightshift.verdict import GateCheck, GateResult

STANDIN = Path(__file__).with_name("servecheck_standin.py")


def _spec(**serving: Any) -> DatasetSpec:
    return toy_spec(("x", "y"), serving={"check_requests": 20, "check_start_timeout_s": 30, **serving})


class Model:
    """A packaged model's stand-in: ``sigmoid(a + b)``, a missing value as 0 (the stand-in
    server's score), with an input example as MLflow keeps one."""

    def __init__(self, example: pd.DataFrame | None = None) -> None:
        self.input_example = example
        self.frames: list[pd.DataFrame] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.frames.append(frame)
        z = frame["a"].fillna(0.0).to_numpy() + frame["b"].fillna(0.0).to_numpy()
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _holdout(n: int) -> pa.Table:
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, n)
    a[1] = np.nan  # a NaN stored as a value, and a null
    a[5] = np.inf  # a row JSON cannot carry
    return pa.table(
        {
            "id": np.arange(n),
            "a": a,
            "b": pa.array(rng.normal(0, 1, n), mask=np.arange(n) == 2),
            "kind": rng.choice(["x", "y"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def test_the_sample_is_the_input_example_and_seeded_holdout_rows_with_their_in_process_scores() -> None:
    spec = _spec()
    example = pd.DataFrame({"a": [0.5, None], "b": [1.0, -1.0], "kind": ["x", None]})
    model = Model(example)
    sample = sc.build_sample(spec, _holdout(40), model, rows=30)
    assert sample["columns"] == ["a", "b", "kind"] and sample["tolerance"] == 1e-6
    assert sample["example"]["rows"] == [[0.5, 1.0, "x"], [None, -1.0, None]]
    assert sample["example"]["expected"] == pytest.approx(list(model.predict(example)), abs=0)
    hold = sample["holdout"]
    assert len(hold["rows"]) == len(hold["expected"]) == len(hold["ids"]) == 30
    assert "5" not in hold["ids"]  # the infinite row is not in the sample
    assert all(isinstance(r[2], str) for r in hold["rows"])
    frame = pd.DataFrame(hold["rows"], columns=sample["columns"])
    assert hold["expected"] == pytest.approx(list(Model().predict(frame)), abs=1e-15)
    assert sc.build_sample(spec, _holdout(40), Model(example), rows=30) == sample  # seeded


def test_a_stored_nan_is_sent_as_null_and_an_infinite_row_is_left_out() -> None:
    sample = sc.build_sample(_spec(), _holdout(10), Model(None), rows=1000)
    hold = sample["holdout"]
    assert sample["example"] is None and hold["ids"] == ["0", "1", "2", "3", "4", "6", "7", "8", "9"]
    assert hold["rows"][1][0] is None and hold["rows"][2][1] is None  # NaN as null: JSON has no NaN
    assert hold["expected"][1] == pytest.approx(1 / (1 + np.exp(-hold["rows"][1][1])))


def _answers(got_off: float = 0.0, version: str = "7") -> list[sc.Answer]:
    return [
        sc.Answer("input example", [0.1, 0.2], [0.1, 0.2 + got_off], None, version),
        sc.Answer("holdout rows 0-2", [0.3, 0.4, 0.5], [0.3, 0.4, 0.5], None, version),
    ]


def test_equal_answers_no_error_and_a_fast_p99_pass() -> None:
    result = sc.judge("7", _answers(5e-7), [1.0] * 99 + [4.0], 5.0)
    assert result.passed and result.failures == []
    assert (result.rows_compared, result.requests, result.failed_requests) == (5, 2, 0)
    assert result.max_diff == pytest.approx(5e-7)
    assert result.p99_ms == pytest.approx(np.percentile([1.0] * 99 + [4.0], 99))
    assert result.detail.startswith("v7 served by a fresh `nightshift serve`: 5 rows over 2 requests")


@pytest.mark.parametrize(
    ("answers", "latencies", "kwargs", "failures", "says"),
    [
        (
            _answers(2e-6),
            [1.0] * 10,
            {},
            ["answers"],
            "1 of 5 rows answered over HTTP differ from the in-process",
        ),
        (
            _answers(version="6"),
            [1.0] * 10,
            {},
            ["errors"],
            "2 of 2 requests failed (e.g. input example: answered by v6",
        ),
        (
            [*_answers(), sc.Answer("holdout row 0 (timed)", [0.3], None, "HTTP 500: scoring failed")],
            [1.0] * 10,
            {},
            ["errors"],
            "1 of 3 requests failed (e.g. holdout row 0 (timed): HTTP 500: scoring failed)",
        ),
        (_answers(), [1.0] * 10, {"unsent": 4}, ["errors"], "4 not sent: the check's time bound"),
        (
            _answers(),
            [1.0] * 98 + [60.0, 60.0],
            {},
            ["latency"],
            "one-row p99 latency 60 ms over 100 requests",
        ),
        (_answers(), [], {}, ["errors"], "no one-row request was timed"),
        ([], [], {"load_error": "RegistryError: gone"}, ["load"], "could not load it: RegistryError: gone"),
        (
            [sc.Answer("holdout rows 0-2", [0.3, 0.4, 0.5], [0.3, 0.4], None, "7")],
            [1.0] * 10,
            {},
            ["errors"],
            "2 scores for 3 rows",
        ),
    ],
    ids=["differs", "other-version", "http-500", "unsent", "slow", "untimed", "unloadable", "short"],
)
def test_each_failure_is_named(
    answers: list[sc.Answer], latencies: list[float], kwargs: dict[str, Any], failures: list[str], says: str
) -> None:
    result = sc.judge("7", answers, latencies, 50.0, **kwargs)
    assert not result.passed and result.failures == failures
    assert says in result.detail, result.detail


def test_a_failed_check_rejects_the_candidate_and_a_passed_one_only_joins_the_verdict() -> None:
    verdict = GateResult(
        run_id="r",
        challenger_run_id="r",
        version="7",
        promote=True,
        reason="beats the champion",
        champion="6",
        review="borderline: roc_auc +0.001",
        checks=(GateCheck("stability", True, "ok"),),
        hints=("an earlier hint",),
    )
    passed = sc.apply(verdict, sc.judge("7", _answers(), [1.0] * 10, 50.0))
    assert passed.promote and passed.review == verdict.review and passed.reason == verdict.reason
    assert passed.serving is not None and passed.serving["passed"]
    assert [c.name for c in passed.checks] == ["stability", "serving"]
    failed = sc.apply(verdict, sc.judge("7", _answers(), [90.0] * 10, 50.0))
    assert not failed.promote and failed.review is None  # nobody reviews what cannot serve
    assert failed.reason.startswith("rejected: serving: v7 over HTTP: one-row p99 latency 90 ms")
    assert failed.reason.endswith("(gate: beats the champion)")
    assert failed.failed_checks == ("serving",) and failed.checks[-1].passed is False
    assert failed.hints[0] == sc.HINTS["latency"] and failed.hints[1] == "an earlier hint"
    assert verdict.promote and verdict.checks[-1].name == "stability" and verdict.serving is None  # a copy
    skipped = sc.not_run(replace(verdict, promote=False, review=None), "the gate rejected the candidate")
    assert skipped.serving == {"checked": False, "detail": "not run: the gate rejected the candidate"}


# ---- the fresh server -----------------------------------------------------------------------


def _standin(mode: str, pid_file: Path, version: str = "7") -> sc.Command:
    return lambda fd: [sys.executable, str(STANDIN), str(fd), version, mode, str(pid_file)]


def _gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return sc.build_sample(
        _spec(), _holdout(60), Model(pd.DataFrame({"a": [0.5], "b": [1.0], "kind": ["x"]}))
    )


@pytest.mark.parametrize(
    ("mode", "failures", "says"),
    [
        ("ok", [], "83 rows over 26 requests"),  # the example, 59 holdout rows in 2, 3 + 20 one-row
        ("off", ["answers"], "rows answered over HTTP differ from the in-process scores (max |diff| 1e-05"),
        ("slow", ["latency"], "is not under serving.max_latency_ms 50 ms (p50 8"),  # every round slow
        ("busy-once", [], "(under 50 ms; the best of 2 rounds, p99 "),  # a busy round is measured again
        ("wrong-version", ["errors"], "answered by v999, not v7"),
        ("some-500", ["errors"], "HTTP 500: scoring failed (injected)"),
        ("load", ["load"], "a fresh `nightshift serve` could not load it: gone"),
    ],
)
def test_the_check_judges_a_fresh_server_and_stops_it(
    sample: dict[str, Any], tmp_path: Path, mode: str, failures: list[str], says: str
) -> None:
    pid_file = tmp_path / "pid"
    spec = _spec(max_rows_per_request=40)
    result = sc.serving_check(spec, "7", sample, command=_standin(mode, pid_file))
    assert result.failures == failures and result.passed is (failures == [])
    assert says in result.detail, result.detail
    if mode == "ok":
        assert (result.requests, result.failed_requests, result.timed_requests) == (3 + 23, 0, 20)
        assert result.latency_rounds_p99_ms == []  # one round under the bound is enough
    if mode in ("slow", "busy-once"):
        rounds = result.latency_rounds_p99_ms
        assert len(rounds) == (3 if mode == "slow" else 2) and rounds[0] >= 80, rounds
        assert result.p99_ms == min(rounds) and result.requests == 3 + 23 + 20 * (len(rounds) - 1)
        assert f"the best of {len(rounds)} rounds" in result.detail
        assert result.max_diff is not None and result.max_diff <= 1e-6 and result.startup_s is not None
    assert _gone(pid_file)  # stopped by its process group


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("exit", "the serving check's server exited (4) before it was ready"),
        ("never-ready", "did not load v7 within 2 s (serving.check_start_timeout_s"),
        ("unreachable", "the serving check's server could not reach the registry: gone"),
    ],
)
def test_a_server_that_cannot_be_started_is_an_error_to_retry_not_a_verdict(
    sample: dict[str, Any], tmp_path: Path, mode: str, says: str
) -> None:
    pid_file = tmp_path / "pid"
    with pytest.raises(sc.ServingCheckError, match=r".*") as info:
        sc.serving_check(_spec(check_start_timeout_s=2), "7", sample, command=_standin(mode, pid_file))
    assert says in str(info.value), str(info.value)
    assert _gone(pid_file)


def test_the_check_s_time_bound_counts_what_was_not_sent_as_failed(
    sample: dict[str, Any], tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    spec = _spec(check_timeout_s=0.5, max_latency_ms=1000)
    result = sc.serving_check(spec, "7", sample, command=_standin("slow", pid_file))
    assert result.failures == ["errors"] and "not sent: the check's time bound" in result.detail, (
        result.detail
    )
    assert _gone(pid_file)
