"""Evaluation and the gate: metrics against sklearn, slices, calibration, baseline, the verdict."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from nightshift.evaluate import (
    Evaluation,
    LogisticModel,
    Verdict,
    baseline_competes,
    baseline_fit,
    baseline_predict,
    calibration,
    compete,
    evaluate,
    explain,
    gate,
    importance,
    metrics,
    score_stats,
    slice_metrics,
)
from nightshift.features import FeatureTransform
from nightshift.spec import DatasetSpec, Gate, parse_spec

RULES = Gate(
    metric="roc_auc",
    min_metrics={"roc_auc": 0.80, "average_precision": 0.10},
    max_regression=0.005,
    slice_min_rows=200,
    slice_min_positives=5,
    max_slice_regression=0.03,
    slice_min_metric=0.65,
    baseline_margin=0.0,
)


def _slice(auc: float, rows: int = 1000, positives: int = 50) -> dict[str, float]:
    return {"rows": float(rows), "positives": float(positives), "roc_auc": auc, "average_precision": 0.3}


def _ev(
    name: str,
    auc: float,
    ap: float = 0.3,
    slices: dict[str, dict[str, Any]] | None = None,
    version: str | None = None,
) -> Evaluation:
    m = {"rows": 5000.0, "positives": 300.0, "roc_auc": auc, "average_precision": ap, "log_loss": 0.2,
         "brier": 0.05}  # fmt: skip
    return Evaluation(name, m, slices or {}, [], version, score_stats(np.linspace(0.01, 0.9, 5000)))


def _names(v: Verdict) -> list[str]:
    return [c.name for c in v.checks]


def _failed(v: Verdict) -> list[str]:
    return [c.name for c in v.failed]


# ---- the gate: first model -----------------------------------------------------------------------


def test_first_model_passes_absolute_floors() -> None:
    v = gate(RULES, _ev("challenger", 0.85, 0.2), None, None)
    assert v.promote
    assert v.first_model
    assert v.reason.startswith("first model")
    assert _names(v) == ["stability", "min:roc_auc", "min:average_precision"]  # no champion check
    assert v.deltas == {}
    json.dumps(v.to_dict())  # logged as evidence


@pytest.mark.parametrize(
    ("auc", "ap", "failing"), [(0.79, 0.2, "min:roc_auc"), (0.9, 0.09, "min:average_precision")]
)
def test_first_model_fails_a_floor(auc: float, ap: float, failing: str) -> None:
    v = gate(RULES, _ev("challenger", auc, ap), None, None)
    assert not v.promote
    assert v.first_model
    assert _failed(v) == [failing]
    assert v.reason.startswith("rejected: " + failing)


def test_floor_exactly_met_passes() -> None:
    assert gate(RULES, _ev("challenger", 0.80, 0.10), None, None).promote


def test_nan_metric_fails_its_floor() -> None:
    v = gate(RULES, _ev("challenger", float("nan")), None, None)
    assert not v.promote
    assert "min:roc_auc" in _failed(v)
    assert "roc_auc nan" in v.reason


def test_lower_is_better_floor() -> None:
    rules = RULES.model_copy(update={"min_metrics": {"log_loss": 0.25}})
    ok = _ev("challenger", 0.9)
    assert gate(rules, ok, None, None).promote  # log_loss 0.2 <= 0.25
    bad = _ev("challenger", 0.9)
    bad.metrics["log_loss"] = 0.3
    v = gate(rules, bad, None, None)
    assert not v.promote
    assert "log_loss 0.3000" in v.reason
    assert "0.25" in v.reason


# ---- the gate: against the champion --------------------------------------------------------------


def test_tie_with_champion_promotes() -> None:
    v = gate(RULES, _ev("challenger", 0.85), _ev("champion", 0.85, version="3"), None)
    assert v.promote
    assert not v.first_model
    assert "champion" in _names(v)
    assert v.deltas["roc_auc"] == 0.0
    assert v.reason.startswith("promoted:")
    assert "v3" in v.reason


def test_regression_beyond_allowance_rejects() -> None:
    v = gate(RULES, _ev("challenger", 0.844), _ev("champion", 0.85, version="3"), None)
    assert not v.promote
    assert _failed(v) == ["champion"]
    assert "rejected: champion" in v.reason
    assert "champion v3 0.8500" in v.reason
    assert v.deltas["roc_auc"] == pytest.approx(-0.006)


@pytest.mark.parametrize("auc", [0.846, 0.845, 0.86])
def test_regression_within_allowance_promotes(auc: float) -> None:
    v = gate(RULES, _ev("challenger", auc), _ev("champion", 0.85, version="3"), None)
    assert v.promote, v.reason
    assert v.deltas["roc_auc"] == pytest.approx(auc - 0.85)


def test_floors_still_apply_when_the_champion_meets_them() -> None:
    v = gate(RULES, _ev("challenger", 0.78), _ev("champion", 0.79, version="1"), None)
    assert not v.promote
    assert _failed(v) == ["min:roc_auc", "champion"]


def test_a_floor_the_champion_misses_too_is_passed_by_a_better_challenger() -> None:
    # after a drift the old model scores 0.70 on today's data: a 0.78 challenger must replace it
    v = gate(RULES, _ev("challenger", 0.78), _ev("champion", 0.70, version="1"), None)
    assert v.promote, v.reason
    (floor,) = [c for c in v.checks if c.name == "min:roc_auc"]
    assert "champion is worse on this holdout (0.7000)" in floor.detail
    # ... unless the spec says floors are absolute
    strict = RULES.model_copy(update={"floors_vs_champion": False})
    v = gate(strict, _ev("challenger", 0.78), _ev("champion", 0.70, version="1"), None)
    assert not v.promote and _failed(v) == ["min:roc_auc"]
    # a challenger worse than the champion gets no exemption
    v = gate(RULES, _ev("challenger", 0.69), _ev("champion", 0.70, version="1"), None)
    assert _failed(v) == ["min:roc_auc", "champion"]


def test_a_slice_floor_the_champion_misses_too_is_passed_by_a_better_challenger() -> None:
    ch = _ev("challenger", 0.85, slices={"channel": {"web": _slice(0.62)}})
    champ = _ev("champion", 0.84, slices={"channel": {"web": _slice(0.55)}}, version="1")
    v = gate(RULES, ch, champ, None)
    assert v.promote, v.reason
    worse = _ev("challenger", 0.85, slices={"channel": {"web": _slice(0.54)}})
    assert "slice_min:channel=web" in _failed(gate(RULES, worse, champ, None))


def test_gate_on_average_precision() -> None:
    rules = RULES.model_copy(update={"metric": "average_precision"})
    v = gate(rules, _ev("challenger", 0.95, ap=0.30), _ev("champion", 0.80, ap=0.40, version="2"), None)
    assert not v.promote  # better AUC does not matter when the gate metric is AP
    assert _failed(v) == ["champion"]


# ---- the gate: slices ----------------------------------------------------------------------------


def test_slice_below_floor_rejects_naming_the_slice() -> None:
    slices = {"channel": {"pos": _slice(0.9), "web": _slice(0.60)}}
    v = gate(RULES, _ev("challenger", 0.85, slices=slices), None, None)
    assert not v.promote
    assert _failed(v) == ["slice_min:channel=web"]
    assert "channel=web" in v.reason
    assert "slice_min:channel=pos" in _names(v)


def test_slice_regression_vs_champion_rejects_naming_the_slice() -> None:
    champ = _ev(
        "champion", 0.85, slices={"card_type": {"debit": _slice(0.85), "credit": _slice(0.80)}}, version="4"
    )
    chall = _ev("challenger", 0.86, slices={"card_type": {"debit": _slice(0.86), "credit": _slice(0.76)}})
    v = gate(RULES, chall, champ, None)
    assert not v.promote
    assert _failed(v) == ["slice:card_type=credit"]
    assert "card_type=credit" in v.reason
    # within the slice allowance: promoted
    chall.slices["card_type"]["credit"] = _slice(0.775)
    assert gate(RULES, chall, champ, None).promote


def test_small_slices_are_not_judged() -> None:
    slices = {
        "channel": {
            "pos": _slice(0.9),
            "phone": _slice(0.30, rows=150, positives=20),  # too few rows
            "app": _slice(0.30, rows=5000, positives=3),  # too few positives
        }
    }
    champ = _ev("champion", 0.85, slices={"channel": {"phone": _slice(0.9), "app": _slice(0.9)}}, version="1")
    v = gate(RULES, _ev("challenger", 0.85, slices=slices), champ, None)
    assert v.promote, v.reason
    assert not any("phone" in n or "app" in n for n in _names(v))
    # one row more than the minimum and the same slice is judged
    slices["channel"]["phone"] = _slice(0.30, rows=200, positives=20)
    v = gate(RULES, _ev("challenger", 0.85, slices=slices), champ, None)
    assert set(_failed(v)) == {"slice_min:channel=phone", "slice:channel=phone"}


def test_slice_floor_can_be_switched_off() -> None:
    rules = RULES.model_copy(update={"slice_min_metric": None})
    v = gate(rules, _ev("challenger", 0.85, slices={"channel": {"web": _slice(0.5)}}), None, None)
    assert v.promote
    assert not any(n.startswith("slice") for n in _names(v))


def test_slice_new_to_the_champion_is_only_floored() -> None:
    champ = _ev("champion", 0.85, slices={"channel": {"pos": _slice(0.9)}}, version="1")
    chall = _ev("challenger", 0.85, slices={"channel": {"pos": _slice(0.9), "web": _slice(0.7)}})
    v = gate(RULES, chall, champ, None)
    assert v.promote
    assert "slice_min:channel=web" in _names(v)
    assert "slice:channel=web" not in _names(v)


# ---- the gate: baseline --------------------------------------------------------------------------


@pytest.mark.parametrize("baseline_auc", [0.85, 0.87])
def test_baseline_as_good_rejects(baseline_auc: float) -> None:
    v = gate(RULES, _ev("challenger", 0.85), None, _ev("baseline", baseline_auc))
    assert not v.promote
    assert _failed(v) == ["baseline"]
    assert "logistic baseline" in v.reason


def test_baseline_beaten_promotes_and_margin_applies() -> None:
    assert gate(RULES, _ev("challenger", 0.85), None, _ev("baseline", 0.84)).promote
    rules = RULES.model_copy(update={"baseline_margin": 0.02})
    v = gate(rules, _ev("challenger", 0.85), None, _ev("baseline", 0.84))
    assert _failed(v) == ["baseline"]
    assert "margin 0.02" in v.reason


def test_every_failure_is_named() -> None:
    champ = _ev("champion", 0.9, version="7")
    chall = _ev("challenger", 0.7, slices={"channel": {"web": _slice(0.5)}})
    v = gate(RULES, chall, champ, _ev("baseline", 0.75))
    assert set(_failed(v)) == {"min:roc_auc", "baseline", "champion", "slice_min:channel=web"}
    for name in _failed(v):
        assert name in v.reason


def test_evaluation_round_trip() -> None:
    ev = _ev("challenger", 0.85, slices={"channel": {"web": _slice(0.7)}}, version="2")
    assert Evaluation.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev


# ---- the gate: numerical stability of the scores ----------------------------------------------


def _scored(spec: DatasetSpec, p: np.ndarray) -> Evaluation:
    """The challenger's evaluation of ``p`` on a 400-row holdout with both classes."""
    n = len(p)
    table = pa.table({"channel": pa.array(["pos", "web"] * (n // 2)), "card_type": pa.array(["debit"] * n)})
    y = (np.arange(n) % 5 == 0).astype(np.float64)
    return evaluate("challenger", table, y, p, spec)


def _healthy(n: int = 400) -> np.ndarray:
    y = (np.arange(n) % 5 == 0).astype(np.float64)
    return np.clip(0.1 + 0.7 * y + np.random.default_rng(3).normal(0, 0.1, n), 0.001, 0.999)


def test_finite_varied_scores_pass_the_stability_check(spec: DatasetSpec) -> None:
    v = gate(RULES, _scored(spec, _healthy()), None, None)
    assert v.promote
    assert v.checks[0].name == "stability" and v.checks[0].passed
    assert "400 finite holdout scores" in v.checks[0].detail


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        (float("nan"), "3 of 400 holdout score(s) are NaN/inf (3 NaN, 0 inf)"),
        (float("inf"), "3 of 400 holdout score(s) are NaN/inf (0 NaN, 3 inf)"),
        (-float("inf"), "3 of 400 holdout score(s) are NaN/inf (0 NaN, 3 inf)"),
    ],
)
def test_nan_or_inf_scores_fail_the_gate(spec: DatasetSpec, bad: float, detail: str) -> None:
    p = _healthy()
    p[[5, 50, 300]] = bad
    ev = _scored(spec, p)  # evaluating NaN scores must not crash: the gate says what is wrong
    assert ev.scores["nan"] + ev.scores["inf"] == 3
    v = gate(RULES, ev, _ev("champion", 0.8, version="1"), _ev("baseline", 0.6))
    assert not v.promote
    assert "stability" in _failed(v)
    assert f"stability: {detail}" in v.reason
    json.dumps(v.to_dict())  # still logged as evidence


def test_all_equal_scores_fail_the_gate(spec: DatasetSpec) -> None:
    v = gate(RULES, _scored(spec, np.full(400, 0.07)), None, None)
    assert not v.promote
    assert _failed(v)[0] == "stability"
    assert "all 400 holdout scores are equal (0.0700)" in v.reason


def test_nearly_constant_scores_fail_the_gate(spec: DatasetSpec) -> None:
    p = 0.2 + 1e-12 * np.random.default_rng(0).random(400)  # two+ distinct values, no ranking
    ev = _scored(spec, p)
    assert ev.scores["distinct"] == 2
    v = gate(RULES, ev, None, None)
    assert "stability" in _failed(v)
    assert "nearly constant: std" in v.reason and "< 1e-09" in v.reason


def test_an_evaluation_without_score_statistics_fails_closed() -> None:
    ev = _ev("challenger", 0.9)
    ev.scores = {}
    v = gate(RULES, ev, None, None)
    assert _failed(v) == ["stability"]


def test_an_unstable_challenger_is_never_a_judgement_call(spec: DatasetSpec) -> None:
    from nightshift.evaluate import needs_review
    from nightshift.spec import Review

    rules = RULES.model_copy(update={"review": Review(band=(-0.5, 0.5))})
    p = _healthy()
    p[0] = float("inf")  # the metrics are still defined (clipped): only the stability check fails
    v = gate(rules, _scored(spec, p), _ev("champion", 0.7, version="1"), None)
    assert _failed(v) == ["stability"] and not math.isnan(v.deltas["roc_auc"])
    assert needs_review(rules, v) is None


def test_score_stats() -> None:
    s = score_stats(np.array([0.1, float("nan"), 0.3, float("inf"), 0.3]))
    assert s == {"rows": 5.0, "nan": 1.0, "inf": 1.0, "distinct": 2.0, "std": pytest.approx(0.0942809),
                 "min": 0.1, "max": 0.3}  # fmt: skip
    assert score_stats(np.array([0.5, 0.5]))["distinct"] == 1.0
    empty = score_stats(np.array([float("nan")]))
    assert empty["distinct"] == 0.0 and math.isnan(empty["std"])


# ---- metrics -------------------------------------------------------------------------------------


def test_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(np.float64)
    p = np.clip(0.2 + 0.4 * (y - 0.2) + rng.normal(0, 0.15, 500), 0.001, 0.999)
    m = metrics(y, p)
    assert m["rows"] == 500
    assert m["positives"] == y.sum()
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert 0.5 < m["roc_auc"] <= 1.0


def test_metrics_clip_certain_predictions() -> None:
    m = metrics(np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 1.0, 0.0]))
    assert math.isfinite(m["log_loss"])
    assert m["roc_auc"] == 0.5
    assert m["brier"] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("y", [np.zeros(10), np.ones(10), np.array([])])
def test_metrics_nan_when_a_class_is_missing(y: np.ndarray) -> None:
    m = metrics(y, np.linspace(0, 1, len(y)))
    assert m["rows"] == len(y)
    for k in ("roc_auc", "average_precision", "log_loss", "brier"):
        assert math.isnan(m[k]), k


def test_calibration_bins() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(np.float64)
    bins = calibration(y, p, bins=10)
    assert len(bins) == 10
    assert sum(b["rows"] for b in bins) == 1000
    assert all(b["rows"] == 100 for b in bins)  # quantile bins of the prediction
    predicted = [b["predicted"] for b in bins]
    assert predicted == sorted(predicted)
    order = np.argsort(p, kind="stable")
    assert bins[0]["predicted"] == pytest.approx(p[order[:100]].mean())
    assert bins[0]["observed"] == pytest.approx(y[order[:100]].mean())
    # a calibrated model: observed rate tracks the prediction
    for b in bins:
        assert abs(b["observed"] - b["predicted"]) < 0.15
    assert len(calibration(y[:3], p[:3], bins=10)) == 3  # never empty bins
    assert calibration(np.array([]), np.array([])) == []


def test_slice_metrics_and_evaluate(spec: DatasetSpec) -> None:
    n = 400
    rng = np.random.default_rng(2)
    channel = pa.array(["pos", "web", None, "app"] * (n // 4), pa.string())
    table = pa.table({"channel": channel, "card_type": pa.array(["debit"] * n)})
    y = (rng.random(n) < 0.3).astype(np.float64)
    p = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
    s = slice_metrics(table, y, p, ["channel"])
    assert sorted(s["channel"]) == ["<missing>", "app", "pos", "web"]
    web = np.asarray(channel.to_pylist()) == "web"
    assert s["channel"]["web"]["rows"] == 100
    assert s["channel"]["web"]["roc_auc"] == pytest.approx(roc_auc_score(y[web], p[web]))
    ev = evaluate("challenger", table, y, p, spec, version="5")
    assert set(ev.slices) == set(spec.slices) == {"channel", "card_type"}
    assert ev.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert len(ev.calibration) == 10
    assert ev.version == "5"


# ---- the baseline --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy() -> DatasetSpec:
    return parse_spec(
        {
            "name": "toy",
            "id_column": "id",
            "event_time_column": "ts",
            "label": {"column": "y", "delay_days": 0},
            "features": {
                "numeric": [{"name": "a"}, {"name": "b"}],
                "categorical": [{"name": "kind", "values": ["x", "y", "z"]}],
            },
        }
    )


def _toy_table(n: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    b = rng.normal(0, 1, n)
    kind = rng.choice(["x", "y", "z"], n)
    z = 1.5 * a - 1.0 + 1.5 * (kind == "z")
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    a_col = pa.array(a, mask=rng.random(n) < 0.1)  # nulls must be imputed, not crash
    kind_col = pa.array(np.where(rng.random(n) < 0.05, "unseen", kind))  # unknown category: NaN code
    return pa.table({"a": a_col, "b": b, "kind": kind_col}), y


def test_baseline_predict(toy: DatasetSpec) -> None:
    transform = FeatureTransform.from_spec(toy)
    train, y_train = _toy_table(2000, 3)
    hold, y_hold = _toy_table(1000, 4)
    p = baseline_predict(transform, train, y_train, hold, seed=1)
    assert p.shape == (1000,)
    assert p.dtype == np.float64
    assert ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(y_hold, p) > 0.75  # a fair simple model, not a coin
    np.testing.assert_array_equal(baseline_predict(transform, train, y_train, hold, seed=1), p)
    # the row cap subsamples the training rows (and still predicts every holdout row)
    small = baseline_predict(transform, train, y_train, hold, seed=1, max_rows=300)
    assert small.shape == (1000,)
    assert not np.array_equal(small, p)


# ---- defaults that fit real data: relative slice floors, the baseline as a candidate -----------

DEFAULTS = Gate()


def test_default_floors_are_chance_level_and_slice_floors_relative() -> None:
    assert DEFAULTS.min_metrics == {"roc_auc": 0.55}
    assert DEFAULTS.slice_min_metric is None and DEFAULTS.baseline_candidate
    # a dataset whose whole AUC is 0.62: the demo's absolute 0.6 slice floor no longer applies
    slices = {"race": {"Black": _slice(0.58), "White": _slice(0.66)}}
    base = _ev("baseline", 0.60, slices={"race": {"Black": _slice(0.57), "White": _slice(0.64)}})
    v = gate(DEFAULTS, _ev("challenger", 0.62, slices=slices), None, base)
    assert v.promote, v.reason
    assert _names(v) == [
        "stability",
        "min:roc_auc",
        "baseline",
        "slice_baseline:race=Black",
        "slice_baseline:race=White",
    ]


def test_a_slice_worse_than_the_baselines_on_a_first_run_is_named() -> None:
    slices = {"race": {"Black": _slice(0.52), "White": _slice(0.66)}}
    base = _ev("baseline", 0.60, slices={"race": {"Black": _slice(0.57), "White": _slice(0.64)}})
    v = gate(DEFAULTS, _ev("challenger", 0.62, slices=slices), None, base)
    assert _failed(v) == ["slice_baseline:race=Black"]
    assert "roc_auc 0.5200 vs logistic baseline 0.5700 (delta -0.0500, allowed -0.03)" in v.reason
    tip = "slice race=Black worse than the baseline's: check the slice or raise gate.max_slice_regression"
    assert f"{tip} (0.03)" in v.hints
    # with a champion the slices are compared with the champion's, not the baseline's
    champ = _ev("champion", 0.61, slices={"race": {"Black": _slice(0.53)}}, version="1")
    v = gate(DEFAULTS, _ev("challenger", 0.62, slices=slices), champ, base)
    assert "slice:race=Black" in _names(v) and not any(n.startswith("slice_baseline") for n in _names(v))
    assert v.promote, v.reason


def test_an_absolute_slice_floor_applies_only_where_the_spec_sets_one() -> None:
    slices = {"channel": {"web": _slice(0.62)}}
    assert not any(
        n.startswith("slice_min") for n in _names(gate(DEFAULTS, _ev("c", 0.85, slices=slices), None, None))
    )
    floored = DEFAULTS.model_copy(update={"slice_min_metric": 0.65})
    assert _failed(gate(floored, _ev("c", 0.85, slices=slices), None, None)) == ["slice_min:channel=web"]


def test_the_baseline_competes_when_xgboost_does_not_beat_it() -> None:
    # the demo's own data at 4,000 rows: XGBoost 0.8754, the baseline 0.8763
    xgb_ev, base_ev = _ev("challenger", 0.8754), _ev("baseline", 0.8763)
    lost = gate(DEFAULTS, xgb_ev, None, base_ev)
    assert _failed(lost) == ["baseline"] and baseline_competes(DEFAULTS, lost)
    judged = gate(DEFAULTS, _ev("challenger", 0.8763), None, base_ev, kind="logistic")
    assert judged.promote and judged.model_kind == "logistic"
    (vacuous,) = [c for c in judged.checks if c.name == "baseline"]
    assert vacuous.passed and vacuous.detail == "not compared: the candidate is the logistic baseline itself"
    assert judged.reason == "first model (logistic baseline): passes the gate (roc_auc 0.8763)"
    final = compete(DEFAULTS, lost, judged, xgb_ev, base_ev)
    assert final.promote and final.model_kind == "logistic" and final.first_model
    assert final.competition is not None
    assert final.competition["winner"] == "logistic"
    assert final.competition["margin"] == pytest.approx(0.0009)
    assert (final.competition["xgboost"], final.competition["logistic"]) == (0.8754, 0.8763)
    assert final.competition["xgboost_failed"] == ["baseline"]
    assert final.reason.startswith("baseline won: logistic roc_auc 0.8763 vs XGBoost 0.8754 (+0.0009); ")
    assert Verdict.from_dict(json.loads(json.dumps(final.to_dict()))) == final


def test_the_baseline_does_not_compete_when_it_should_not() -> None:
    base_ev = _ev("baseline", 0.80)
    assert not baseline_competes(DEFAULTS, gate(DEFAULTS, _ev("c", 0.85), None, base_ev))  # XGBoost won
    floor = gate(DEFAULTS, _ev("c", 0.50), None, _ev("baseline", 0.40))  # beat the baseline, failed a floor
    assert _failed(floor) == ["min:roc_auc"] and not baseline_competes(DEFAULTS, floor)
    off = DEFAULTS.model_copy(update={"baseline_candidate": False})
    assert not baseline_competes(off, gate(off, _ev("c", 0.70), None, base_ev))
    judged = gate(DEFAULTS, _ev("c", 0.80), None, base_ev, kind="logistic")
    assert not baseline_competes(DEFAULTS, judged)  # never the baseline against itself


def test_when_both_candidates_fail_the_xgboost_verdict_stands_with_both_stories() -> None:
    champ = _ev("champion", 0.90, version="4")
    xgb_ev, base_ev = _ev("challenger", 0.80), _ev("baseline", 0.82)
    lost = gate(DEFAULTS, xgb_ev, champ, base_ev)
    assert set(_failed(lost)) == {"baseline", "champion"} and baseline_competes(DEFAULTS, lost)
    judged = gate(DEFAULTS, _ev("challenger", 0.82), champ, base_ev, kind="logistic")
    assert _failed(judged) == ["champion"]
    final = compete(DEFAULTS, lost, judged, xgb_ev, base_ev)
    assert not final.promote and final.model_kind == "xgboost"
    assert final.competition is not None and final.competition["winner"] is None
    assert final.competition["logistic_failed"] == ["champion"]
    assert "the logistic baseline competed too and was rejected: rejected: champion" in final.reason
    assert "worse than the champion on the same holdout: the champion keeps serving" in final.hints


def test_a_logistic_challenger_replaces_a_champion_it_ties() -> None:
    champ = _ev("champion", 0.85, version="2")
    judged = gate(DEFAULTS, _ev("challenger", 0.85), champ, _ev("baseline", 0.85), kind="logistic")
    assert judged.promote and judged.reason.startswith("promoted (logistic baseline): roc_auc 0.8500")


@pytest.mark.parametrize(
    ("check", "hint"),
    [
        ("baseline", "a logistic regression is as good: consider more data"),
        ("min:roc_auc", "roc_auc is below its floor (gate.min_metrics)"),
        ("slice:channel=web", "slice channel=web fell below the champion's"),
        ("stability", "the model's scores are broken"),
    ],
)
def test_a_rejection_says_what_to_try(check: str, hint: str) -> None:
    from nightshift.evaluate import Check, hints

    v = Verdict(False, "rejected", [Check(check, False, "x")], {}, True)
    (tip,) = hints(DEFAULTS, v)
    assert tip.startswith(hint)


# ---- the logistic baseline as a model --------------------------------------------------------------


def test_the_logistic_model_scores_as_its_pipeline_without_calling_it(
    toy: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A served logistic champion answers in a fraction of a millisecond: its probabilities come
    from the fitted pipeline's numbers (the float32 steps scikit-learn takes), equal to
    ``predict_proba`` (~20 ms a call through its per-feature transformers) up to rounding, on
    missing values, unknown categories and unseen magnitudes; a pipeline of another shape is
    called as itself."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    transform = FeatureTransform.from_spec(toy)
    train, y_train = _toy_table(2000, 3)
    hold, _ = _toy_table(500, 4)
    x = transform.matrix(hold)
    x[::7, 1] = np.nan  # b had no missing value in training: no indicator
    x[::5, 0] = 1e6
    model = baseline_fit(transform, train, y_train, seed=1)
    expected = model.pipeline.predict_proba(x)[:, 1]
    model.predict(x[:1])  # built once, checked against the pipeline on probe rows

    def called(*_: Any, **__: Any) -> Any:
        raise AssertionError("predict_proba was called to score")

    monkeypatch.setattr(model.pipeline, "predict_proba", called)
    np.testing.assert_allclose(model.predict(x), expected, rtol=0, atol=1e-12)
    monkeypatch.undo()

    other = LogisticModel(
        make_pipeline(LogisticRegression()).fit(np.nan_to_num(x), (x[:, 0] > 0).astype(int)),
        ["a", "b", "kind"],
    )
    np.testing.assert_array_equal(
        other.predict(np.nan_to_num(x)), other.pipeline.predict_proba(np.nan_to_num(x))[:, 1]
    )
    assert other._linear is False


def test_the_logistic_model_predicts_as_the_baseline_and_its_contributions_add_up(
    toy: DatasetSpec, tmp_path: Any
) -> None:
    transform = FeatureTransform.from_spec(toy)
    train, y_train = _toy_table(2000, 3)
    hold, _ = _toy_table(500, 4)
    model = baseline_fit(transform, train, y_train, seed=1)
    p = model.predict(transform.matrix(hold))
    np.testing.assert_array_equal(p, baseline_predict(transform, train, y_train, hold, seed=1))
    contribs = model.contributions(transform.matrix(hold))
    assert contribs.shape == (500, 4)  # a, b, kind + the bias
    margin = contribs.sum(axis=1)
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), p, atol=1e-10)
    # saved and loaded: the same scores
    model.save(tmp_path / "logistic.pkl")
    again = LogisticModel.load(tmp_path / "logistic.pkl")
    np.testing.assert_array_equal(again.predict(transform.matrix(hold)), p)
    # importance: a (the signal) first, b (noise) last; gain is the |coefficient| weight
    rows = importance(model, transform, hold)
    assert rows[0]["feature"] == "a" and rows[-1]["feature"] == "b"
    assert all(r["gain"] >= 0 for r in rows) and rows[0]["mean_abs_contribution"] > 0
    # explain: each row's steps add up to the served probability
    steps = explain(model, transform, hold.slice(0, 4))
    assert all(s["matches"] for s in steps)
    assert {f["feature"] for f in steps[0]["features"]} == {"a", "b", "kind"}


# ---- the report ----------------------------------------------------------------------------------
def test_the_evaluation_report_renders_from_its_autoescaping_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``report_html`` (the gate's evaluation.html, the monitor's performance report, both served
    by the plugin from the store) is the ``evaluation.html`` template: markup in a model name, a
    slice value or a verdict's reason arrives as text."""
    from nightshift import healthpage
    from nightshift.evaluate import Check, report_html

    rendered: list[str] = []
    real = healthpage.render_template

    def spy(name: str, **context: Any) -> str:
        rendered.append(name)
        return real(name, **context)

    monkeypatch.setattr(healthpage, "render_template", spy)
    spec = parse_spec(
        {
            "name": "toy",
            "id_column": "id",
            "event_time_column": "ts",
            "label": {"column": "y", "delay_days": 0},
            "features": {"numeric": [{"name": "a"}], "categorical": [{"name": "kind", "values": ["x"]}]},
            "slices": ["kind"],
        }
    )
    challenger = _ev("<script>alert(1)</script>", 0.85, slices={"kind": {"<img src=x>": _slice(0.7)}})
    verdict = Verdict(False, "worse on <b>web</b> & more", [Check("floor<", False, "0.85 < 0.9")], {}, False)
    html = report_html(spec, [challenger, _ev("champion", 0.84, version="1")], verdict)
    assert rendered == ["evaluation.html"]
    assert "<script>" not in html and "<img src=x>" not in html and "<b>web" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x&gt;" in html
    assert "<h1>toy: holdout evaluation</h1>" in html and "<h2>by kind</h2>" in html
    assert "<h2>verdict: REJECT</h2>" in html and "worse on &lt;b&gt;web&lt;/b&gt; &amp; more" in html
    assert "<td>floor&lt;</td><td>FAIL</td><td>0.85 &lt; 0.9</td>" in html
    assert html.count("<table>") == 3 and '<img src="calibration.png" alt="calibration plot">' in html
    assert "<h2>verdict" not in report_html(spec, [challenger], None)
