"""Per-feature cost: the validation seconds of each column (measured by ``run_suite`` and kept
in the validation report), and what each feature brings and costs in a training run
(``nightshift.train.feature_cost``, logged as ``feature_cost.json``)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nightshift.spec import DatasetSpec, parse_spec
from nightshift.storage import Store
from nightshift.train import LOW_IMPORTANCE_SHARE, Partition, Window, feature_cost, split_days

D0 = date(2026, 3, 1)


@pytest.fixture(scope="module")
def clicks() -> DatasetSpec:
    return parse_spec(
        {
            "name": "clicks",
            "id_column": "click_id",
            "event_time_column": "ts",
            "label": {"column": "bought", "delay_days": 1},
            "features": {
                "numeric": [{"name": "x"}, {"name": "visits", "dtype": "int64"}, {"name": "noise"}],
                "categorical": [{"name": "device", "values": ["mobile", "desktop"]}],
            },
            "training": {"window_days": 4, "validation_days": 1, "holdout_days": 1, "min_rows": 10},
        }
    )


def _events(spec: DatasetSpec, dt: date, n: int) -> pa.Table:
    rng = np.random.default_rng(dt.toordinal())
    start = datetime(dt.year, dt.month, dt.day, tzinfo=UTC)
    return pa.table(
        {
            "click_id": [f"{dt}-{i}" for i in range(n)],
            "ts": [start + timedelta(seconds=i) for i in range(n)],
            "x": rng.normal(0, 1, n),
            "visits": rng.integers(0, 9, n),
            "noise": rng.normal(0, 1, n),
            "device": rng.choice(["mobile", "desktop"], n),
            "bought": (rng.random(n) < 0.3).astype(np.int64),
        }
    )


def test_run_suite_times_each_column_group(clicks: DatasetSpec) -> None:
    from nightshift.validate import build_suite, run_suite, suite_parameters

    table = _events(clicks, D0, 200).drop_columns(["bought"])
    checks, gx = run_suite(table, build_suite(clicks, "events"), suite_parameters(clicks, D0))
    assert all(c.success for c in checks), [c.label for c in checks if not c.success]
    seconds = gx["column_seconds"]
    assert set(clicks.feature_names) <= set(seconds) and "table" in seconds
    assert all(isinstance(v, float) and v > 0 for v in seconds.values())


def test_the_validation_report_keeps_each_columns_seconds(spec: DatasetSpec, tmp_path: Path) -> None:
    from nightshift.demo.datagen import Scenario, write_day
    from nightshift.ingest import ingest_partition

    store = Store((tmp_path / "store").as_uri())
    write_day(store, spec, D0, 0, 300, 7, Scenario())
    ingest_partition(store, spec, "events", D0, work_dir=tmp_path / "work")
    report = store.read_json(store.reports_dir(spec.name, "validation", D0) + "/events.json")
    seconds = report["stats"]["column_seconds"]
    assert set(spec.feature_names) <= set(seconds)
    assert all(v > 0 for v in seconds.values())


def _window(store: Store, spec: DatasetSpec, seconds: dict[str, float] | None) -> Window:
    days = [D0 + timedelta(days=i) for i in range(4)]
    parts, tables = [], []
    for dt in days:
        t = _events(spec, dt, 100)
        tables.append(t.append_column("__dt", pa.array([dt] * t.num_rows, pa.date32())))
        parts.append(Partition(dt, "file:///x", "0" * 64, 100, 100, 30, [], {"success": True}))
        if seconds is not None:
            stats = {"read_cast_s": 0.4, "validate_s": 1.0, "column_seconds": {**seconds, "table": 0.1}}
            path = store.reports_dir(spec.name, "validation", dt) + "/events.json"
            store.write_json_atomic(path, {"outcome": {"success": True}, "stats": stats})
    return Window(pa.concat_tables(tables), parts, split_days(days, 1, 1))


IMPORTANCE = [
    {"feature": "x", "gain": 40.0, "mean_abs_contribution": 0.9},
    {"feature": "device", "gain": 2.0, "mean_abs_contribution": 0.099},
    {"feature": "noise", "gain": 0.1, "mean_abs_contribution": 0.001},  # 0.1 % of the importance
    {"feature": "visits", "gain": 0.0, "mean_abs_contribution": 0.0},  # never split on
]


def test_each_feature_gets_its_value_and_its_costs(clicks: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    window = _window(store, clicks, {"x": 0.05, "visits": 0.02, "noise": 0.5, "device": 0.03})
    cost = feature_cost(store, clicks, window, IMPORTANCE, train_seconds=2.0)
    json.dumps(cost)  # logged as feature_cost.json
    rows = {r["feature"]: r for r in cost["features"]}
    assert set(rows) == set(clicks.feature_names)
    for r in rows.values():
        for key in ("importance_share", "gain", "ingest_validate_s", "ingest_read_cast_s_est", "ingest_share",
                    "window_bytes", "matrix_bytes", "memory_share", "train_s_est"):  # fmt: skip
            assert isinstance(r[key], (int, float)) and math.isfinite(r[key]) and r[key] >= 0, (r, key)
    assert cost["features"][0]["feature"] == "x"  # most important first
    assert rows["x"]["importance_share"] == pytest.approx(0.9)
    assert rows["noise"]["ingest_validate_s"] == pytest.approx(4 * 0.5)  # summed over the 4 days
    assert rows["noise"]["ingest_share"] == pytest.approx(0.5 / 0.6)
    assert rows["x"]["window_bytes"] == window.table.column("x").nbytes
    assert rows["x"]["matrix_bytes"] == 4 * (
        window.split("train").num_rows + window.split("validation").num_rows
    )
    assert rows["x"]["train_s_est"] == pytest.approx(0.5)
    assert sum(r["memory_share"] for r in rows.values()) == pytest.approx(1.0)
    assert cost["totals"]["days"] == cost["totals"]["days_measured"] == 4
    assert cost["totals"]["ingest_validate_s"] == pytest.approx(4 * 0.6)
    assert cost["totals"]["ingest_read_cast_s"] == pytest.approx(4 * 0.4)


def test_unused_and_costly_useless_features_are_flagged(clicks: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    window = _window(store, clicks, {"x": 0.05, "visits": 0.02, "noise": 0.5, "device": 0.03})
    flagged = {
        f["feature"]: f["reason"] for f in feature_cost(store, clicks, window, IMPORTANCE, 2.0)["flagged"]
    }
    assert set(flagged) == {"visits", "noise"}
    assert flagged["visits"] == "never used by the model (zero gain and contribution)"
    assert flagged["noise"].startswith("0.10% of the importance for 83.3% of the validation time")
    # the same feature of little value, cheap to validate and small in memory: not flagged
    other = Store((tmp_path / "cheap").as_uri())
    cheap = _window(other, clicks, {"x": 0.5, "visits": 0.5, "noise": 0.0, "device": 0.5})
    narrow = cheap.table.set_column(
        cheap.table.column_names.index("noise"), "noise", pa.array(np.zeros(cheap.table.num_rows, np.float16))
    )
    got = feature_cost(other, clicks, Window(narrow, cheap.partitions, cheap.days), IMPORTANCE, 2.0)
    assert [f["feature"] for f in got["flagged"]] == ["visits"]
    assert LOW_IMPORTANCE_SHARE == 0.01


def test_days_without_measurements_count_as_unmeasured(clicks: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    cost = feature_cost(store, clicks, _window(store, clicks, None), IMPORTANCE, 1.0)
    assert cost["totals"]["days_measured"] == 0
    assert all(r["ingest_validate_s"] == 0 for r in cost["features"])
