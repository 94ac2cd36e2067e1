"""The XCom boundary: typed step results to JSON and back (nightshift.airflow.xcom)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import pytest

from nightshift.airflow.xcom import from_xcom, to_xcom
from nightshift.score import ScoreOutcome
from nightshift.steps.score import ScoreResult
from nightshift.steps.train import TrainResult


@dataclass(frozen=True)
class _Dated:
    day: date
    when: tuple[date, ...] = ()
    score: float | None = None


def test_a_score_result_goes_through_json_and_comes_back_equal() -> None:
    result = ScoreResult(
        "3", (ScoreOutcome("2026-06-01", 10, "3", "file:///p/1"), ScoreOutcome("2026-06-02", 5, "3", "u"))
    )
    data = json.loads(json.dumps(to_xcom(result)))
    assert data == {
        "champion": "3",
        "scored": [
            {"dt": "2026-06-01", "rows": 10, "model_version": "3", "uri": "file:///p/1"},
            {"dt": "2026-06-02", "rows": 5, "model_version": "3", "uri": "u"},
        ],
    }
    back = from_xcom(ScoreResult, data)
    assert (
        back == result
        and isinstance(back.scored[0], ScoreOutcome)
        and back.days == ["2026-06-01", "2026-06-02"]
    )


def test_dates_tuples_and_non_finite_floats_are_json_and_typed_again() -> None:
    result = _Dated(date(2026, 6, 1), (date(2026, 6, 2),), float("nan"))
    data = to_xcom(result)
    assert data == {"day": "2026-06-01", "when": ["2026-06-02"], "score": None}
    assert from_xcom(_Dated, data) == _Dated(date(2026, 6, 1), (date(2026, 6, 2),), None)
    assert (
        from_xcom(_Dated, {"day": "2026-06-01", "score": 1}).score == 1.0
    )  # an int read as the float it was


def test_unknown_keys_are_ignored_and_missing_ones_take_the_default() -> None:
    back = from_xcom(TrainResult, {"run_id": "abc", "from_a_newer_release": 1})
    assert back == TrainResult(run_id="abc") and back.reused is False and back.holdout_roc_auc is None


def test_a_result_that_is_already_typed_is_returned_as_is() -> None:
    result = TrainResult(run_id="abc", reused=True)
    assert from_xcom(TrainResult, result) is result


def test_no_xcom_or_the_wrong_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no XCom to read a TrainResult"):
        from_xcom(TrainResult, None)
    with pytest.raises(TypeError, match="read from a mapping, not list"):
        from_xcom(TrainResult, ["abc"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not dict"):
        to_xcom({"run_id": "abc"})
    with pytest.raises(TypeError):
        from_xcom(TrainResult, {"reused": True})  # run_id has no default: the XCom is not a TrainResult
