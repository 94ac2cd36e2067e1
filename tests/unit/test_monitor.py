"""Monitoring's pure parts: the alert policy on history rows, history merging, weights."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest

from nightshift.monitor import (
    decide_alert,
    feature_weights,
    history_row,
    history_table,
    merge_history,
    sample,
)
from nightshift.spec import DatasetSpec, parse_spec

D0 = date(2026, 5, 1)


def _row(i: int, share: float | None = 0.05, auc: float | None = None, version: str = "1") -> dict[str, Any]:
    drifting = None if share is None else share >= 0.3
    return {
        "dt": (D0 + timedelta(days=i)).isoformat(),
        "version": version,
        "drift_share": float("nan") if share is None else share,
        "drifting": drifting,
        "prediction_drift": 0.01,
        "roc_auc": float("nan") if auc is None else auc,
        "log_loss": 0.2,
    }


def test_no_alert_on_clean_history(spec: DatasetSpec) -> None:
    rows = [_row(i, 0.05, 0.89) for i in range(20)]
    assert decide_alert(rows, spec, "1", holdout_auc=0.89) is None


def test_one_drifting_day_is_not_enough_two_in_a_row_are(spec: DatasetSpec) -> None:
    rows = [_row(i) for i in range(10)] + [_row(10, 0.6)]
    assert decide_alert(rows, spec, "1", 0.89) is None
    rows.append(_row(11, 0.5))
    alert = decide_alert(rows, spec, "1", 0.89)
    assert alert is not None and alert.kind == "drift"
    assert alert.onset == "2026-05-11" and alert.dt == "2026-05-12" and alert.version == "1"
    assert "0.60" in alert.reason and "0.50" in alert.reason
    # a clean day in between breaks the run
    assert decide_alert([*rows[:10], _row(10, 0.6), _row(11, 0.1), _row(12, 0.6)], spec, "1", 0.89) is None


def test_only_the_champions_rows_count(spec: DatasetSpec) -> None:
    rows = [_row(10, 0.6, version="1"), _row(11, 0.6, version="1")]
    assert decide_alert(rows, spec, "2", 0.89) is None


def test_days_without_a_drift_verdict_are_skipped_not_counted(spec: DatasetSpec) -> None:
    rows = [_row(10, 0.6), _row(11, None), _row(12, 0.7)]
    alert = decide_alert(rows, spec, "1", 0.89)
    assert alert is not None and alert.onset == "2026-05-11"


def test_performance_alert_below_the_holdout_auc(spec: DatasetSpec) -> None:
    rows = [_row(i, 0.05, 0.88) for i in range(10)] + [_row(10, 0.05, 0.80)]
    alert = decide_alert(rows, spec, "1", holdout_auc=0.89)
    assert alert is not None and alert.kind == "performance" and alert.onset == "2026-05-11"
    # the alert's day is the newest monitored day, not the (label-delayed) last bad day
    later = decide_alert([*rows, _row(11, 0.05), _row(12, 0.05), _row(13, 0.05)], spec, "1", 0.89)
    assert later is not None and later.onset == "2026-05-11" and later.dt == "2026-05-14"
    assert "AUC below 0.840" in alert.reason
    assert decide_alert(rows, spec, "1", holdout_auc=None) is None  # no floor known


def test_min_auc_floor_and_both_kinds(spec: DatasetSpec) -> None:
    data = spec.model_dump()
    data["alerts"] = {**data["alerts"], "min_auc": 0.87, "max_auc_drop": 0.5}
    strict = parse_spec(data)
    rows = [_row(8, 0.5, 0.86), _row(9, 0.6, 0.86)]
    alert = decide_alert(rows, strict, "1", holdout_auc=0.9)
    assert alert is not None and alert.kind == "drift+performance" and alert.onset == "2026-05-09"


def test_merge_history_upserts_by_day_and_version() -> None:
    drift = history_row(
        {"dt": "2026-05-01", "version": "1", "rows": 10, "drift_share": 0.1, "drifting": False}, None
    )
    perf = history_row(
        None,
        {
            "dt": "2026-05-01",
            "version": "1",
            "metrics": {"roc_auc": 0.9, "rows": 9, "positives": 1},
            "ece": 0.01,
        },
    )
    other = history_row(
        {"dt": "2026-05-01", "version": "2", "rows": 10, "drift_share": 0.2, "drifting": False}, None
    )
    rows = merge_history(merge_history([], [drift]), [perf, other])
    assert [(r["dt"], r["version"]) for r in rows] == [("2026-05-01", "1"), ("2026-05-01", "2")]
    assert rows[0]["drift_share"] == 0.1 and rows[0]["roc_auc"] == 0.9 and rows[0]["rows"] == 10
    assert math.isnan(rows[1]["roc_auc"])
    assert history_table(rows).num_rows == 2


def test_feature_weights(spec: DatasetSpec) -> None:
    names = spec.feature_names
    uniform = feature_weights(None, spec)
    assert uniform == pytest.approx({n: 1 / len(names) for n in names})
    imp = [
        {"feature": "amount", "mean_abs_contribution": 3.0},
        {"feature": "channel", "mean_abs_contribution": 1.0},
    ]
    w = feature_weights(imp, spec)
    assert w["amount"] == pytest.approx(0.75) and w["channel"] == pytest.approx(0.25) and w["tx_hour"] == 0
    assert sum(w.values()) == pytest.approx(1.0)


def test_sample_is_seeded_ordered_and_bounded() -> None:
    t = pa.table({"x": list(range(1000))})
    a, b = sample(t, 100, 7), sample(t, 100, 7)
    assert a.equals(b) and a.num_rows == 100
    assert a.column("x").to_pylist() == sorted(a.column("x").to_pylist())
    assert sample(t, 5000, 7) is t


# ---- staleness -----------------------------------------------------------------------------


def _with_age(spec: DatasetSpec, days: int | None) -> DatasetSpec:
    data = spec.model_dump()
    data["alerts"] = {**data["alerts"], "max_model_age_days": days}
    return parse_spec(data)


def test_the_demo_spec_sets_a_maximum_model_age(spec: DatasetSpec) -> None:
    assert spec.alerts.max_model_age_days == 30
    bare = parse_spec({k: v for k, v in spec.model_dump().items() if k != "alerts"})
    assert bare.alerts.max_model_age_days == 30  # the default
    with pytest.raises(ValueError, match="max_model_age_days"):
        _with_age(spec, 0)


def test_a_champion_older_than_the_maximum_age_raises_a_staleness_alert(spec: DatasetSpec) -> None:
    trained = D0 - timedelta(days=1)  # the newest day of its window
    rows = [_row(i, 0.05, 0.89) for i in range(30)]  # newest monitored day: D0 + 29 = 30 days on
    assert decide_alert(rows, spec, "1", 0.89, trained_through=trained) is None  # 30: not older
    rows.append(_row(30, 0.05))
    alert = decide_alert(rows, spec, "1", 0.89, trained_through=trained)
    assert alert is not None and alert.kind == "staleness" and alert.version == "1"
    assert alert.dt == "2026-05-31"
    # alone, it asks for the data the champion never saw
    assert alert.onset == D0.isoformat()
    assert alert.days == [{"dt": "2026-05-31", "age_days": 31, "trained_through": "2026-04-30"}]
    assert "model 31 data day(s) old on 2026-05-31 (trained through 2026-04-30" in alert.reason
    assert "alerts.max_model_age_days 30" in alert.reason
    # the same from an ISO string (all but the wall-clock raised_at)
    again = decide_alert(rows, spec, "1", 0.89, trained_through="2026-04-30")
    assert again is not None and {**again.to_dict(), "raised_at": ""} == {**alert.to_dict(), "raised_at": ""}


def test_staleness_counts_data_days_of_the_champion_only(spec: DatasetSpec) -> None:
    trained = date(2020, 1, 1)  # years before the wall clock: data days decide, not today
    rows = [_row(0, 0.05), _row(5, 0.05)]
    assert decide_alert(rows, _with_age(spec, 10), "1", None, trained_through=trained) is not None
    early = date.fromisoformat(_row(5)["dt"]) - timedelta(days=10)
    assert decide_alert(rows, _with_age(spec, 10), "1", None, trained_through=early) is None
    # another version's newer rows do not age this one
    newer = [*rows, _row(40, 0.05, version="2")]
    assert decide_alert(newer, _with_age(spec, 10), "1", None, trained_through=early) is None
    # no rows for the champion yet: nothing to judge
    assert decide_alert([], _with_age(spec, 1), "1", None, trained_through=trained) is None


def test_staleness_can_be_switched_off_and_needs_a_known_window(spec: DatasetSpec) -> None:
    rows = [_row(i, 0.05) for i in range(60)]
    old = D0 - timedelta(days=100)
    assert decide_alert(rows, _with_age(spec, None), "1", None, trained_through=old) is None
    assert decide_alert(rows, spec, "1", None, trained_through=None) is None


def test_staleness_with_drift_keeps_the_drift_onset(spec: DatasetSpec) -> None:
    rows = [_row(i, 0.05) for i in range(40)] + [_row(40, 0.6), _row(41, 0.7)]
    alert = decide_alert(rows, spec, "1", 0.89, trained_through=D0)
    assert alert is not None and alert.kind == "drift+staleness"
    assert alert.onset == "2026-06-10"  # the drift's, so a retrain trains on the new world only
    assert [d.get("age_days") for d in alert.days] == [None, None, 41]


def test_trained_through_reads_the_window_tag() -> None:
    from nightshift.monitor import trained_through

    assert trained_through({"nightshift.window": "2026-03-05..2026-03-14 (10 days)"}) == date(2026, 3, 14)
    assert trained_through({}) is None
    assert trained_through({"nightshift.window": "garbage"}) is None


def test_the_guard_rails_retrain_a_stale_champion_on_the_days_it_never_saw(spec: DatasetSpec) -> None:
    from nightshift.retrain import RETRAIN, decide

    rows = [_row(i, 0.05) for i in range(40)]
    alert = decide_alert(rows, spec, "1", None, trained_through=D0 - timedelta(days=1))
    assert alert is not None and alert.kind == "staleness"
    labelled = [D0 + timedelta(days=i) for i in range(37)]  # labels land 3 days late
    d = decide(spec, "nightshift_retrain.payments/r1", [alert], [], "1", labelled, [])
    assert d.action == RETRAIN, d.reason
    assert d.since == D0.isoformat()
    assert d.window == [x.isoformat() for x in labelled[-spec.training.window_days :]]
    assert d.reason.startswith("staleness alert(s) on v1: training on 10 day(s)")
