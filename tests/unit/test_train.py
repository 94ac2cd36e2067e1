"""Training: the time-ordered split, the labelled window on a store, the device, and XGBoost."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nightshift.features import labels
from nightshift.ingest import arrow_schema
from nightshift.model import predict
from nightshift.spec import DatasetSpec, parse_spec
from nightshift.storage import Store
from nightshift.train import (
    Device,
    DeviceError,
    InsufficientData,
    Window,
    check_window,
    choose_device,
    labelled_days,
    load_window,
    split_days,
    train,
    visible_gpus,
    xgb_params,
)

D0 = date(2026, 3, 1)
DAYS = [D0 + timedelta(days=i) for i in range(7)]
ROWS = 40
DELAY = 2
CPU = Device("cpu", "test", 0, socket.gethostname())


def _day(i: int) -> date:
    return D0 + timedelta(days=i)


@pytest.fixture(scope="module")
def clicks() -> DatasetSpec:
    """A small dataset: labels land 2 days after the event; 5-day window of 3/1/1 days."""
    return parse_spec(
        {
            "name": "clicks",
            "id_column": "click_id",
            "event_time_column": "ts",
            "label": {"column": "bought", "delay_days": DELAY},
            "features": {
                "numeric": [
                    {"name": "x"},
                    {"name": "visits", "dtype": "int64", "max_null_fraction": 0.5},
                ],
                "categorical": [{"name": "device", "values": ["mobile", "desktop"]}],
            },
            "training": {
                "window_days": 5,
                "validation_days": 1,
                "holdout_days": 1,
                "min_rows": 30,
                "min_class_rows": 3,
                "num_boost_round": 40,
                "early_stopping_rounds": 10,
                "params": {"max_depth": 3, "eta": 0.3, "subsample": 0.8, "colsample_bytree": 0.8},
            },
            "seed": 7,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "store").as_uri())


@pytest.fixture(autouse=True)
def _no_device_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NIGHTSHIFT_DEVICE", raising=False)
    monkeypatch.delenv("NIGHTSHIFT_REQUIRE_GPU", raising=False)


def _with(spec: DatasetSpec, **changes: Any) -> DatasetSpec:
    data = spec.model_dump()
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return parse_spec(data)


def _day_tables(
    spec: DatasetSpec, dt: date, n: int, seed: int, positives: bool = True
) -> tuple[pa.Table, pa.Table]:
    """Events (curated schema) and their labels for one day; ``bought`` follows ``x``."""
    rng = np.random.default_rng([seed, dt.toordinal()])
    start = datetime(dt.year, dt.month, dt.day, tzinfo=UTC)
    ids = [f"{dt.isoformat()}-{i:06d}" for i in range(n)]
    ts = [start + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 86_400, n))]
    x = rng.normal(0.0, 1.0, n)
    visits = pa.array(rng.integers(0, 20, n), pa.int64(), mask=rng.random(n) < 0.2)
    device = np.where(rng.random(n) < 0.5, "mobile", "desktop")
    y = (x + rng.normal(0.0, 0.7, n) > 0.9).astype(np.int64) if positives else np.zeros(n, np.int64)
    events = pa.table([ids, ts, x, visits, device], schema=arrow_schema(spec, "events"))
    lbl = pa.table([ids, ts, y], schema=arrow_schema(spec, "labels"))
    return events, lbl


def _write(store: Store, path: str, table: pa.Table) -> None:
    with store.open_output_atomic(path) as out:
        pq.write_table(table, out)


def _fill(
    store: Store,
    spec: DatasetSpec,
    days: list[date] = DAYS,
    n: int = ROWS,
    seed: int = 1,
    positives: bool = True,
) -> dict[date, tuple[pa.Table, pa.Table]]:
    """Curated events for ``days``; each day's labels published in partition day + delay."""
    tables = {dt: _day_tables(spec, dt, n, seed, positives) for dt in days}
    arrivals: dict[date, list[pa.Table]] = {}
    for dt, (events, lbl) in tables.items():
        _write(store, store.published_file(spec.name, "events", dt), events)
        arrivals.setdefault(dt + timedelta(days=spec.label.delay_days), []).append(lbl)
    for at, parts in arrivals.items():
        _write(store, store.published_file(spec.name, "labels", at), pa.concat_tables(parts))
    return tables


def _report(store: Store, spec: DatasetSpec, dt: date, success: bool) -> None:
    path = store.reports_dir(spec.name, "validation", dt) + "/events.json"
    store.write_json_atomic(path, {"outcome": {"success": success}})


def _window(spec: DatasetSpec, days: list[date], n: int, seed: int = 3) -> Window:
    parts = []
    for dt in days:
        events, lbl = _day_tables(spec, dt, n, seed)
        t = events.append_column(spec.label.column, lbl.column(spec.label.column))
        parts.append(t.append_column("__dt", pa.array([dt] * n, pa.date32())))
    t = spec.training
    return Window(pa.concat_tables(parts), [], split_days(days, t.validation_days, t.holdout_days))


# ---- the split -----------------------------------------------------------------------------------


def test_split_days_order_and_sizes() -> None:
    days = [D0 + timedelta(days=i) for i in range(10)]
    split = split_days(days, 2, 2)
    assert split == {"train": days[:6], "validation": days[6:8], "holdout": days[8:]}
    # time-ordered, never shuffled: every training day is before every validation day ...
    assert max(split["train"]) < min(split["validation"])
    assert max(split["validation"]) < min(split["holdout"])


def test_split_days_unsorted_and_duplicated_input() -> None:
    days = [D0 + timedelta(days=i) for i in range(6)]
    messy = [days[3], days[0], days[5], days[3], days[1], days[4], days[2], days[0]]
    assert split_days(messy, 1, 2) == {"train": days[:3], "validation": [days[3]], "holdout": days[4:]}


def test_split_days_minimum_and_too_few() -> None:
    days = [D0 + timedelta(days=i) for i in range(3)]
    assert split_days(days, 1, 1) == {"train": [days[0]], "validation": [days[1]], "holdout": [days[2]]}
    with pytest.raises(InsufficientData, match=r"2 labelled day\(s\) cannot make a split"):
        split_days([days[0], days[1], days[1]], 1, 1)  # a duplicate is not a third day
    with pytest.raises(InsufficientData, match="1 training, 2 validation and 2 holdout"):
        split_days(days * 2, 2, 2)


# ---- the window ----------------------------------------------------------------------------------


def test_window_joins_labels_that_arrive_late(store: Store, clicks: DatasetSpec) -> None:
    tables = _fill(store, clicks)
    # as of the last day, labels are due for events up to DAYS[-1] - delay
    w = load_window(store, clicks, as_of=DAYS[-1])
    used = DAYS[:-DELAY]
    assert [p.dt for p in w.partitions] == used
    assert w.days == {"train": used[:3], "validation": [used[3]], "holdout": [used[4]]}
    assert w.table.num_rows == ROWS * len(used)
    expected: dict[Any, Any] = {}
    for dt in used:
        _, lbl = tables[dt]
        expected.update(
            zip(lbl.column("click_id").to_pylist(), lbl.column("bought").to_pylist(), strict=True)
        )
    got = dict(zip(w.table.column("click_id").to_pylist(), w.table.column("bought").to_pylist(), strict=True))
    assert got == expected  # every event joined to its own label by id
    for i, p in enumerate(w.partitions):
        assert p.rows == p.labelled_rows == ROWS
        assert p.positives == int(np.sum(tables[p.dt][1].column("bought").to_numpy()))
        assert p.uri == store.uri(store.published_file(clicks.name, "events", p.dt))
        assert store.uri(store.published_file(clicks.name, "labels", used[i] + timedelta(DELAY))) in p.labels
        assert p.validation == {"success": None, "report": None}
    # the day column matches each row's day, and the splits hold exactly their days' rows
    day_of_id = [date.fromisoformat(i[:10]) for i in w.table.column("click_id").to_pylist()]
    assert w.table.column("__dt").to_pylist() == day_of_id
    hold = w.split("holdout")
    assert "__dt" not in hold.column_names
    assert {i[:10] for i in hold.column("click_id").to_pylist()} == {used[4].isoformat()}
    assert w.describe()["train"] == {"days": [d.isoformat() for d in used[:3]], "rows": 3 * ROWS}


def test_default_as_of_is_latest_labels_partition(store: Store, clicks: DatasetSpec) -> None:
    _fill(store, clicks)
    # labels partitions run to DAYS[-1] + delay, so every event day is due
    assert labelled_days(store, clicks) == DAYS
    w = load_window(store, clicks)
    assert [p.dt for p in w.partitions] == DAYS[-5:]  # window_days = 5


def test_days_whose_labels_are_not_due_are_excluded(store: Store, clicks: DatasetSpec) -> None:
    _fill(store, clicks)
    as_of = _day(5)
    assert labelled_days(store, clicks, as_of) == DAYS[:4]
    w = load_window(store, clicks, as_of=as_of)
    assert max(p.dt for p in w.partitions) == _day(3)
    # labels that arrived after as_of (the partition for _day(4)'s events) are not read
    assert all(
        store.published_file(clicks.name, "labels", _day(6)) not in lb
        for p in w.partitions
        for lb in p.labels
    )


def test_late_labels_join_once_they_arrive(store: Store, clicks: DatasetSpec) -> None:
    tables = _fill(store, clicks)
    # half of day 1's labels come late: they are in partition day 6, not in day 3 (day 1 + delay)
    _, lbl = tables[_day(1)]
    on_time, late = lbl.slice(0, ROWS // 2), lbl.slice(ROWS // 2)
    _write(store, store.published_file(clicks.name, "labels", _day(3)), pa.concat_tables([on_time]))
    _write(
        store,
        store.published_file(clicks.name, "labels", _day(6)),
        pa.concat_tables([tables[_day(4)][1], late]),
    )
    early = load_window(store, clicks, as_of=_day(5))
    day1 = next(p for p in early.partitions if p.dt == _day(1))
    assert (day1.rows, day1.labelled_rows) == (ROWS, ROWS // 2)
    later = load_window(store, clicks, as_of=_day(6))
    day1 = next(p for p in later.partitions if p.dt == _day(1))
    assert (day1.rows, day1.labelled_rows) == (ROWS, ROWS)
    assert early.fingerprint != later.fingerprint  # more labels, different training data


def test_quarantined_day_is_never_used(store: Store, clicks: DatasetSpec) -> None:
    _fill(store, clicks)
    _report(store, clicks, _day(2), success=False)  # the latest events batch was rejected
    _report(store, clicks, _day(3), success=True)
    assert _day(2) not in labelled_days(store, clicks, _day(6))
    w = load_window(store, clicks, as_of=_day(6))
    assert [p.dt for p in w.partitions] == [_day(0), _day(1), _day(3), _day(4)]
    assert _day(2).isoformat() not in {i[:10] for i in w.table.column("click_id").to_pylist()}
    day3 = next(p for p in w.partitions if p.dt == _day(3))
    assert day3.validation["success"] is True
    assert day3.validation["report"].endswith("/validation/dt=2026-03-04/events.json")


def test_too_few_rows(store: Store, clicks: DatasetSpec) -> None:
    spec = _with(clicks, training={"min_rows": 1000})
    _fill(store, spec)
    with pytest.raises(InsufficientData, match=r"200 labelled row\(s\) in 5 day\(s\).*training.min_rows"):
        load_window(store, spec, as_of=DAYS[-1])


def test_single_class_window(store: Store, clicks: DatasetSpec) -> None:
    _fill(store, clicks, positives=False)
    with pytest.raises(InsufficientData, match="single-class") as err:
        load_window(store, clicks, as_of=DAYS[-1])
    assert "training.min_class_rows" in str(err.value)
    assert "0 positive" in str(err.value)


def test_too_few_of_a_class_in_one_split(clicks: DatasetSpec) -> None:
    w = _window(clicks, DAYS[:5], 60)
    check_window(w, clicks)
    # drop every positive of the holdout day
    y = labels(w.table, clicks)
    hold = np.asarray(w.table.column("__dt").to_pylist()) == DAYS[4]
    w.table = w.table.filter(pa.array(~(hold & (y == 1))))
    with pytest.raises(InsufficientData, match=r"holdout split \(2026-03-05\) has 0 positive"):
        check_window(w, clicks)


def test_no_labels_yet(store: Store, clicks: DatasetSpec) -> None:
    with pytest.raises(InsufficientData, match="no labelled days"):
        load_window(store, clicks)
    _fill(store, clicks)
    # as of the first day, no event day's labels are due
    with pytest.raises(InsufficientData, match="no labelled days"):
        load_window(store, clicks, as_of=DAYS[0])


def test_duplicate_labels_do_not_duplicate_events(store: Store, clicks: DatasetSpec) -> None:
    tables = _fill(store, clicks)
    lbl = tables[_day(1)][1]
    # sent twice in its own partition, and re-sent again a day later
    _write(store, store.published_file(clicks.name, "labels", _day(3)), pa.concat_tables([lbl, lbl]))
    again = pa.concat_tables([tables[_day(2)][1], lbl])
    _write(store, store.published_file(clicks.name, "labels", _day(4)), again)
    w = load_window(store, clicks, as_of=DAYS[-1])
    assert w.table.num_rows == ROWS * 5
    ids = w.table.column("click_id").to_pylist()
    assert len(set(ids)) == len(ids)
    day1 = next(p for p in w.partitions if p.dt == _day(1))
    assert day1.labelled_rows == ROWS


def test_fingerprint_follows_content(store: Store, clicks: DatasetSpec) -> None:
    tables = _fill(store, clicks)
    first = load_window(store, clicks, as_of=DAYS[-1]).fingerprint
    assert load_window(store, clicks, as_of=DAYS[-1]).fingerprint == first
    events = tables[_day(0)][0]
    x = events.column("x").to_numpy().copy()
    x[0] += 1.0  # one value of one partition changes
    changed = events.set_column(events.schema.get_field_index("x"), "x", pa.array(x))
    _write(store, store.published_file(clicks.name, "events", _day(0)), changed)
    w = load_window(store, clicks, as_of=DAYS[-1])
    assert w.fingerprint != first
    assert w.partitions[0].sha256 != w.partitions[1].sha256


def test_fingerprint_follows_label_values(store: Store, clicks: DatasetSpec) -> None:
    tables = _fill(store, clicks)
    before = load_window(store, clicks, as_of=DAYS[-1])
    lbl = tables[_day(1)][1]
    flipped = lbl.set_column(2, "bought", pa.array(1 - lbl.column("bought").to_numpy()))
    _write(store, store.published_file(clicks.name, "labels", _day(3)), flipped)
    after = load_window(store, clicks, as_of=DAYS[-1])
    assert [p.positives for p in after.partitions] != [p.positives for p in before.partitions]
    assert after.fingerprint != before.fingerprint


def test_large_window_row_order_is_stable(store: Store, clicks: DatasetSpec) -> None:
    spec = _with(clicks, training={"min_class_rows": 1})
    days = DAYS[:3]
    tables = _fill(store, spec, days=days, n=80_000)
    w1 = load_window(store, spec, as_of=days[-1] + timedelta(DELAY))
    w2 = load_window(store, spec, as_of=days[-1] + timedelta(DELAY))
    expected = [i for d in days for i in tables[d][0].column("click_id").to_pylist()]
    assert w1.table.column("click_id").to_pylist() == expected
    assert w2.table.column("click_id").to_pylist() == expected


# ---- the device ----------------------------------------------------------------------------------


def _no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nightshift.train.visible_gpus", lambda: (0, "no CUDA driver (test)"))


@pytest.mark.skipif(visible_gpus()[0] > 0, reason="this host has a GPU")
def test_auto_falls_back_to_cpu_on_this_host() -> None:
    count, why = visible_gpus()
    assert count == 0 and why
    d = choose_device()
    assert d.name == "cpu"
    assert d.gpus == 0
    assert d.reason.startswith("fallback:")
    assert why in d.reason
    assert d.host == socket.gethostname()


def test_auto_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_gpu(monkeypatch)
    d = choose_device("auto")
    assert (d.name, d.reason) == ("cpu", "fallback: no CUDA driver (test)")


def test_require_gpu_env_fails_naming_host(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_gpu(monkeypatch)
    monkeypatch.setenv("NIGHTSHIFT_REQUIRE_GPU", "1")
    with pytest.raises(DeviceError, match="NIGHTSHIFT_REQUIRE_GPU=1") as err:
        choose_device()
    assert socket.gethostname() in str(err.value)
    assert "no CUDA driver (test)" in str(err.value)
    # a CPU request does not override a worker that must have a GPU
    monkeypatch.setenv("NIGHTSHIFT_DEVICE", "cpu")
    with pytest.raises(DeviceError, match="requires a GPU"):
        choose_device()


def test_cuda_request_without_gpu_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_gpu(monkeypatch)
    monkeypatch.setenv("NIGHTSHIFT_DEVICE", "cuda")
    with pytest.raises(DeviceError, match="NIGHTSHIFT_DEVICE=cuda") as err:
        choose_device()
    assert socket.gethostname() in str(err.value)
    with pytest.raises(DeviceError, match="refusing to train on CPU"):
        choose_device("CUDA")


def test_cpu_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTSHIFT_DEVICE", "CPU")
    d = choose_device()
    assert (d.name, d.gpus) == ("cpu", 0)
    assert "requested" in d.reason


@pytest.mark.parametrize("value", ["gpu", "tpu", "cuda:0"])
def test_bad_device_value(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NIGHTSHIFT_DEVICE", value)
    with pytest.raises(DeviceError, match=f"auto, cpu or cuda, not '{value}'"):
        choose_device()


def test_gpu_seen_but_xgboost_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import xgboost as xgb

    monkeypatch.setattr("nightshift.train.visible_gpus", lambda: (2, "2 CUDA device(s) visible"))
    d = choose_device("auto")
    if xgb.build_info().get("USE_CUDA"):
        assert (d.name, d.gpus) == ("cuda", 2)
    else:
        assert d.name == "cpu"
        assert "no CUDA support" in d.reason


# ---- XGBoost -------------------------------------------------------------------------------------


def test_xgb_params_nightshift_owns_the_fixed_ones(clicks: DatasetSpec) -> None:
    p = xgb_params(clicks, CPU, {"max_depth": 6, "device": "cuda", "seed": 1})
    assert p["max_depth"] == 6  # an override wins over the spec
    assert p["eta"] == 0.3
    assert p["device"] == "cpu"  # ... but not over what nightshift sets
    assert p["seed"] == clicks.seed
    assert p["objective"] == "binary:logistic"
    assert p["eval_metric"][-1] == "auc"
    assert p["tree_method"] == "hist"


@pytest.fixture(scope="module")
def small_window(clicks: DatasetSpec) -> Window:
    return _window(clicks, DAYS[:5], 400)


def test_train_is_reproducible(clicks: DatasetSpec, small_window: Window) -> None:
    a = train(clicks, small_window, CPU)
    b = train(clicks, small_window, CPU)
    hold = small_window.split("holdout")
    pa_, pb = predict(a.booster, a.transform, hold), predict(b.booster, b.transform, hold)
    np.testing.assert_array_equal(pa_, pb)
    assert a.best_iteration == b.best_iteration
    # another seed samples other rows and columns: another model
    c = train(_with(clicks, seed=8), small_window, CPU)
    assert not np.array_equal(predict(c.booster, c.transform, hold), pa_)


def test_train_records_what_it_did(clicks: DatasetSpec, small_window: Window) -> None:
    r = train(clicks, small_window, CPU, num_boost_round=25)
    assert r.device is CPU
    assert r.params["device"] == "cpu"
    assert r.num_boost_round == 25
    assert 0 <= r.best_iteration < 25
    assert r.best_iteration == r.booster.best_iteration
    assert set(r.history) == {"logloss", "auc"}
    assert len(r.history["auc"]) <= 25
    assert r.best_score == pytest.approx(max(r.history["auc"]))
    assert r.trials == []
    assert r.seconds > 0
    assert r.transform.feature_names == ["x", "visits", "device"]
    # the model learnt the signal: AUC on the holdout well above chance
    from sklearn.metrics import roc_auc_score

    hold = small_window.split("holdout")
    assert roc_auc_score(labels(hold, clicks), predict(r.booster, r.transform, hold)) > 0.8


def test_tuning_records_trials(clicks: DatasetSpec, small_window: Window) -> None:
    r = train(clicks, small_window, CPU, num_boost_round=15, trials=2, timeout_s=600)
    assert [t["trial"] for t in r.trials] == [0, 1, 2]
    assert r.trials[0]["params"]["max_depth"] == 3  # the spec's params are trial 0
    assert "nthread" not in r.trials[0]["params"]
    assert r.trials[1]["params"] != r.trials[2]["params"]
    (chosen,) = [t for t in r.trials if "selected" in t]  # the best, if it beats the noise
    assert r.best_score == pytest.approx(chosen["score"])
    assert {k: v for k, v in r.params.items() if k != "nthread"} == chosen["params"]
    again = train(clicks, small_window, CPU, num_boost_round=15, trials=2, timeout_s=600)
    assert [t["params"] for t in again.trials] == [t["params"] for t in r.trials]  # seeded search


def test_tuning_respects_timeout(clicks: DatasetSpec, small_window: Window) -> None:
    r = train(clicks, small_window, CPU, num_boost_round=15, trials=5, timeout_s=1e-9)
    assert [t["trial"] for t in r.trials] == [0]
    # the spec's tuning section applies when no arguments are given: to a first model (no
    # champion) only, unless tuning.first_model_only is off
    spec = _with(clicks, training={"tuning": {"trials": 1, "timeout_s": 600}})
    assert len(train(spec, small_window, CPU, num_boost_round=15, first_model=True).trials) == 2
    assert train(spec, small_window, CPU, num_boost_round=15).trials == []
    always = _with(clicks, training={"tuning": {"trials": 1, "timeout_s": 600, "first_model_only": False}})
    assert len(train(always, small_window, CPU, num_boost_round=15).trials) == 2


def test_a_corrected_label_takes_effect_the_latest_arrival_wins(store: Store, clicks: DatasetSpec) -> None:
    tables = _fill(store, clicks)
    lbl = tables[_day(1)][1]
    y = lbl.column("bought").to_numpy()
    # a day later every label of day 1 is re-sent with the other value (positive -> negative too)
    flipped = lbl.set_column(2, "bought", pa.array(1 - y))
    _write(
        store,
        store.published_file(clicks.name, "labels", _day(4)),
        pa.concat_tables([tables[_day(2)][1], flipped]),
    )
    w = load_window(store, clicks, as_of=DAYS[-1])
    day1 = w.table.filter(pa.compute.equal(w.table.column("__dt"), pa.scalar(_day(1))))
    got = dict(zip(day1.column("click_id").to_pylist(), day1.column("bought").to_pylist(), strict=True))
    want = dict(zip(lbl.column("click_id").to_pylist(), (1 - y).tolist(), strict=True))
    assert got == want
    assert next(p for p in w.partitions if p.dt == _day(1)).positives == int((1 - y).sum())


def test_high_cardinality_categoricals_are_regularised_by_default() -> None:
    """A categorical of 150 values on a few thousand rows: the default params cap XGBoost's
    partition splits (``max_cat_threshold``) and one-hot the small ones (``max_cat_to_onehot``);
    the booster trains with them, and an unseen category at scoring is missing, not an error."""
    import json

    from nightshift.spec import DEFAULT_XGB_PARAMS

    assert (DEFAULT_XGB_PARAMS["max_cat_to_onehot"], DEFAULT_XGB_PARAMS["max_cat_threshold"]) == (32, 16)
    spec = parse_spec(
        {
            "name": "stops",
            "id_column": "id",
            "event_time_column": "ts",
            "label": {"column": "searched", "delay_days": 0, "positive": "YES", "negative": "NO"},
            "features": {"numeric": [{"name": "lat"}], "categorical": [{"name": "neighborhood"}]},
            "training": {"window_days": 5, "validation_days": 1, "holdout_days": 1, "min_rows": 30},
        }
    )
    rng = np.random.default_rng(0)
    n, hoods = 3000, np.array([f"n{i:03d}" for i in range(150)])
    hood = rng.choice(hoods, n)
    y = np.where(rng.random(n) < 0.2, "YES", "NO")
    days = np.repeat([D0 + timedelta(days=i) for i in range(5)], n // 5)
    table = pa.table(
        {
            "id": [str(i) for i in range(n)],
            "lat": rng.normal(45, 0.1, n),
            "neighborhood": hood,
            "searched": y,
            "__dt": pa.array(days, pa.date32()),
        }
    )
    window = Window(table, [], split_days(sorted(set(days.tolist())), 1, 1))
    r = train(spec, window, CPU)
    config = json.loads(r.booster.save_config())["learner"]["gradient_booster"]["tree_train_param"]
    assert (config["max_cat_to_onehot"], config["max_cat_threshold"]) == ("32", "16")
    hold = window.split("holdout")
    assert len(r.transform.categorical["neighborhood"]) == 150
    unseen = hold.slice(0, 3).set_column(2, "neighborhood", pa.array(["never-seen"] * 3))
    assert np.isfinite(predict(r.booster, r.transform, unseen)).all()


def test_a_search_trial_stops_when_the_tuning_budget_is_spent(
    clicks: DatasetSpec, small_window: Window
) -> None:
    """The budget bounds the search, not only when the next trial may start: a trial still
    boosting at the deadline stops after its current round (its best round so far counts)."""
    import time

    from nightshift.features import FeatureTransform
    from nightshift.train import _fit, dmatrices

    train_t, val_t = small_window.split("train"), small_window.split("validation")
    transform = FeatureTransform.from_spec(clicks, train_t)
    dtrain, dval = dmatrices(transform, train_t, val_t, clicks)
    params = xgb_params(clicks, CPU, {"eta": 1e-4})  # would boost for 100k rounds
    t0 = time.perf_counter()
    booster, history = _fit(params, dtrain, dval, 100_000, 100_000, deadline=t0 + 0.5)
    assert time.perf_counter() - t0 < 10
    assert 1 <= booster.num_boosted_rounds() < 100_000 and len(history["auc"]) == booster.num_boosted_rounds()
    assert booster.best_score == pytest.approx(max(history["auc"]))


def test_a_deadline_spent_before_the_first_round_still_leaves_a_scored_booster(
    clicks: DatasetSpec, small_window: Window
) -> None:
    """On a loaded machine the budget can be spent before a trial's first round ends: the trial
    stops after that round and still has its best score and round (the early-stopping callback
    must see every round the deadline lets through)."""
    import time

    from nightshift.features import FeatureTransform
    from nightshift.train import _fit, dmatrices

    train_t, val_t = small_window.split("train"), small_window.split("validation")
    transform = FeatureTransform.from_spec(clicks, train_t)
    dtrain, dval = dmatrices(transform, train_t, val_t, clicks)
    booster, history = _fit(xgb_params(clicks, CPU), dtrain, dval, 100, 10, deadline=time.perf_counter() - 1)
    assert booster.num_boosted_rounds() == 1 and len(history["auc"]) == 1
    assert booster.best_iteration == 0 and booster.best_score == pytest.approx(history["auc"][0])


def test_a_trial_must_beat_the_specs_params_by_more_than_the_validation_noise(
    clicks: DatasetSpec, small_window: Window
) -> None:
    """On a few hundred validation rows the best of N trials is mostly the luckiest: a trial is
    chosen over the spec's params only when its validation AUC is higher by more than the AUC's
    standard error (Hanley & McNeil), and the chosen trial says why."""
    from nightshift.train import auc_standard_error

    assert auc_standard_error(0.8, 50, 50) == pytest.approx(0.0445, abs=1e-4)
    assert auc_standard_error(0.8, 5000, 5000) < 0.005 < auc_standard_error(0.8, 30, 300)
    assert auc_standard_error(0.8, 0, 10) == float("inf")
    r = train(clicks, small_window, CPU, num_boost_round=15, trials=4, timeout_s=600)
    (chosen,) = [t for t in r.trials if "selected" in t]
    y = labels(small_window.split("validation"), clicks)
    se = auc_standard_error(r.trials[0]["score"], int(y.sum()), int(len(y) - y.sum()))
    gain = max(t["score"] for t in r.trials) - r.trials[0]["score"]
    assert chosen["trial"] == (0 if gain <= se else max(r.trials, key=lambda t: t["score"])["trial"])
    assert f"standard error is {se:.4f}" in chosen["selected"]
    assert r.best_score == pytest.approx(chosen["score"])
    assert {k: v for k, v in r.params.items() if k != "nthread"} == chosen["params"]
