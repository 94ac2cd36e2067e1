"""The synthetic payments generator: schema, realism, determinism, drift and bad batches."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from nightshift.demo import datagen
from nightshift.demo.datagen import (
    BAD_BATCH_KINDS,
    Scenario,
    bad_batch_column,
    check_spec,
    generate,
    generate_day,
    write_day,
)
from nightshift.spec import DatasetSpec, parse_spec
from nightshift.storage import Store

DAY = date(2026, 1, 1)
ROWS = 2000
SEED = 11


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "store").as_uri())


def _with(spec: DatasetSpec, **changes: Any) -> DatasetSpec:
    data = spec.model_dump()
    for key, value in changes.items():
        if isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_spec(data)


def _local(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri[len("file://") :])


def _types(spec: DatasetSpec) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {
        spec.id_column: pa.string(),
        spec.event_time_column: pa.timestamp("us", tz="UTC"),
        spec.label.column: pa.int64(),
    }
    for f in spec.features.numeric:
        types[f.name] = pa.int64() if f.dtype == "int64" else pa.float64()
    for c in spec.features.categorical:
        types[c.name] = pa.string()
    return types


def _read_csv(path: Path, spec: DatasetSpec | None = None) -> pa.Table:
    convert = pacsv.ConvertOptions(column_types=_types(spec) if spec else None, strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=convert)


def _day_table(
    spec: DatasetSpec, day_index: int, rows: int, scenario: Scenario, seed: int = SEED
) -> tuple[pa.Table, pa.Table]:
    batches = list(generate_day(spec, DAY + timedelta(days=day_index), day_index, rows, seed, scenario))
    events = pa.Table.from_batches([e for e, _ in batches])
    labels = pa.Table.from_batches([lb for _, lb in batches])
    return events, labels


def _null_fraction(col: pa.ChunkedArray) -> float:
    return col.null_count / max(len(col), 1)


# ---- clean days ------------------------------------------------------------------------------


def test_clean_day_matches_spec(spec: DatasetSpec, store: Store) -> None:
    out = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    events_path = _local(out["events"])
    assert events_path == Path(store.landing_dir("payments", "events", DAY)) / "events.csv"
    header = events_path.read_text().splitlines()[0]
    assert [h.strip('"') for h in header.split(",")] == spec.event_columns

    t = _read_csv(events_path, spec)
    assert t.num_rows == ROWS
    assert t.column_names == spec.event_columns
    for name, typ in _types(spec).items():
        if name in t.column_names:
            assert t.schema.field(name).type == typ, name

    ids = t.column(spec.id_column).to_pylist()
    assert len(set(ids)) == ROWS
    assert ids[0] == "pay-2026-01-01-0000001"
    assert all(re.fullmatch(r"pay-2026-01-01-\d{7}", i) for i in ids)

    times = t.column(spec.event_time_column)
    days = set(pc.strftime(times, format="%Y-%m-%d").to_pylist())
    assert days == {"2026-01-01"}
    assert pc.all(pc.greater_equal(times[1:], times[:-1])).as_py()  # ordered by time
    hours = pc.hour(times).to_pylist()
    assert len(set(hours)) == 24
    assert hours == t.column("tx_hour").to_pylist()

    for f in spec.features.numeric:
        col = t.column(f.name)
        lo, hi = pc.min(col).as_py(), pc.max(col).as_py()
        assert f.min is None or lo >= f.min, f.name
        assert f.max is None or hi <= f.max, f.name
        assert pc.count_distinct(col).as_py() >= 2, f.name
    for c in spec.features.categorical:
        seen = set(t.column(c.name).drop_null().to_pylist())
        assert c.values is not None
        assert seen <= set(c.values), c.name
        assert len(seen) >= 2, c.name


def test_generate_day_batches(spec: DatasetSpec) -> None:
    batches = list(generate_day(spec, DAY, 0, 2500, SEED, Scenario(), chunk_rows=1000))
    assert [e.num_rows for e, _ in batches] == [1000, 1000, 500]
    for events, labels in batches:
        assert events.schema.names == spec.event_columns
        assert labels.schema.names == spec.label_columns
        assert events.schema.field(spec.event_time_column).type == pa.timestamp("us", tz="UTC")
        assert labels.column(0).equals(events.column(0))
    ids = [i for e, _ in batches for i in e.column(0).to_pylist()]
    assert ids == [f"pay-2026-01-01-{n:07d}" for n in range(1, 2501)]
    # chunks are time strata: the whole day is ordered
    times = pa.chunked_array([e.column(1) for e, _ in batches])
    assert pc.all(pc.greater_equal(times[1:], times[:-1])).as_py()


def test_null_fractions_within_budget(spec: DatasetSpec) -> None:
    events, _ = _day_table(spec, 0, 20_000, Scenario())
    budgets = {f.name: f.max_null_fraction for f in spec.features.numeric}
    budgets.update({c.name: c.max_null_fraction for c in spec.features.categorical})
    for name, budget in budgets.items():
        frac = _null_fraction(events.column(name))
        if budget == 0:
            assert frac == 0, name
        else:  # about half the budget, clearly inside it
            assert 0.3 * budget <= frac <= 0.7 * budget, (name, frac, budget)
    assert events.column(spec.id_column).null_count == 0
    assert events.column(spec.event_time_column).null_count == 0


def test_positive_rate_and_signal(spec: DatasetSpec) -> None:
    xgb = pytest.importorskip("xgboost")
    metrics = pytest.importorskip("sklearn.metrics")
    scenario = Scenario(concept_drift_from=2)

    def xy(day_index: int) -> tuple[Any, np.ndarray]:
        events, labels = _day_table(spec, day_index, 20_000, scenario)
        df = events.drop_columns([spec.id_column, spec.event_time_column]).to_pandas()
        for c in spec.features.categorical:
            assert c.values is not None
            df[c.name] = df[c.name].astype("category").cat.set_categories(c.values)
        return df, labels.column(spec.label.column).to_numpy()

    (x0, y0), (x1, y1), (x2, y2) = xy(0), xy(1), xy(2)
    for y in (y0, y1, y2):
        assert set(np.unique(y)) == {0, 1}
        assert 0.05 <= y.mean() <= 0.10
    model = xgb.XGBClassifier(n_estimators=150, max_depth=4, learning_rate=0.1, enable_categorical=True)
    model.fit(x0, y0)
    auc_clean = metrics.roc_auc_score(y1, model.predict_proba(x1)[:, 1])
    auc_drift = metrics.roc_auc_score(y2, model.predict_proba(x2)[:, 1])
    assert 0.8 <= auc_clean <= 0.95
    assert auc_drift < auc_clean - 0.15  # concept drift breaks the old model


# ---- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_deterministic_bytes(spec: DatasetSpec, tmp_path: Path, fmt: str) -> None:
    spec = _with(spec, landing={"format": fmt})
    a = write_day(Store((tmp_path / "a").as_uri()), spec, DAY, 3, ROWS, SEED, Scenario())
    b = write_day(Store((tmp_path / "b").as_uri()), spec, DAY, 3, ROWS, SEED, Scenario())
    c = write_day(Store((tmp_path / "c").as_uri()), spec, DAY, 3, ROWS, SEED + 1, Scenario())
    d = write_day(Store((tmp_path / "d").as_uri()), spec, DAY, 4, ROWS, SEED, Scenario())
    for kind in ("events", "labels"):
        ba, bb = _local(a[kind]).read_bytes(), _local(b[kind]).read_bytes()
        assert ba == bb
        assert ba != _local(c[kind]).read_bytes()
        assert ba != _local(d[kind]).read_bytes()


def test_rewrite_replaces(spec: DatasetSpec, store: Store) -> None:
    first = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    again = write_day(store, spec, DAY, 0, 500, SEED, Scenario())
    assert first == again
    assert _read_csv(_local(again["events"])).num_rows == 500
    landing = Path(store.landing_dir("payments", "events", DAY))
    assert sorted(p.name for p in landing.iterdir()) == ["events.csv"]  # no temp files left


# ---- labels ----------------------------------------------------------------------------------


def test_labels_land_delay_days_later(spec: DatasetSpec, store: Store) -> None:
    out = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    label_day = DAY + timedelta(days=spec.label.delay_days)
    expected = Path(store.landing_dir("payments", "labels", label_day)) / "labels-2026-01-01.csv"
    assert _local(out["labels"]) == expected
    events = _read_csv(_local(out["events"]), spec)
    labels = _read_csv(expected, spec)
    assert labels.column_names == spec.label_columns
    assert labels.column(spec.id_column).equals(events.column(spec.id_column))
    assert labels.column(spec.event_time_column).equals(events.column(spec.event_time_column))
    assert set(labels.column(spec.label.column).to_pylist()) == {spec.label.positive, spec.label.negative}


def test_column_names_come_from_spec(spec: DatasetSpec, store: Store) -> None:
    renamed = _with(
        spec,
        id_column="tx_id",
        event_time_column="ts",
        label={"column": "fraud", "delay_days": 1, "positive": 7, "negative": 3},
    )
    out = write_day(store, renamed, DAY, 0, 300, SEED, Scenario())
    events = _read_csv(_local(out["events"]))
    labels = _read_csv(_local(out["labels"]))
    assert events.column_names[:2] == ["tx_id", "ts"]
    assert labels.column_names == ["tx_id", "ts", "fraud"]
    assert set(labels.column("fraud").to_pylist()) == {3, 7}
    assert "dt=2026-01-02" in out["labels"]


@pytest.mark.parametrize(
    "day", [date(2026, 3, 2), date(2026, 3, 8), date(2026, 11, 1)], ids=["24h", "23h", "25h"]
)
def test_a_local_day_spec_gets_its_local_day(spec: DatasetSpec, day: date) -> None:
    """Events of a spec on Chicago's days fill that local day (23 or 25 hours across DST)."""
    from nightshift.spec import partition_bounds

    chicago = _with(spec, partitioning={"timezone": "America/Chicago"})
    start, end = partition_bounds(day, chicago.partitioning.tz)
    times = pa.concat_arrays([e.column(1) for e, _ in generate_day(chicago, day, 0, 2000, SEED, Scenario())])
    bounds = pc.min_max(times)
    assert start <= bounds["min"].as_py() and bounds["max"].as_py() < end
    assert bounds["max"].as_py() - bounds["min"].as_py() > (end - start) * 0.9  # the whole day, evening too


def test_labels_of_the_specs_type(spec: DatasetSpec) -> None:
    for positive, negative in (("YES", "NO"), (True, False)):
        typed = _with(spec, label={"positive": positive, "negative": negative})
        (_, labels), *_ = generate_day(typed, DAY, 0, 300, SEED, Scenario())
        assert set(labels.column(2).to_pylist()) == {positive, negative}


def test_refuses_other_domains(spec: DatasetSpec) -> None:
    data = spec.model_dump()
    data["features"]["numeric"] = [f for f in data["features"]["numeric"] if f["name"] != "amount"]
    data["features"]["numeric"].append({"name": "basket_size", "dtype": "int64"})
    other = parse_spec(data)
    with pytest.raises(ValueError, match=r"missing columns: amount.*unknown columns: basket_size"):
        check_spec(other)
    with pytest.raises(ValueError, match="payments"):
        next(generate_day(other, DAY, 0, 10, SEED, Scenario()))
    narrowed = parse_spec(
        {
            **spec.model_dump(),
            "features": {
                "numeric": spec.model_dump()["features"]["numeric"],
                "categorical": [
                    {**c, "values": ["pos", "web"]} if c["name"] == "channel" else c
                    for c in spec.model_dump()["features"]["categorical"]
                ],
            },
        }
    )
    with pytest.raises(ValueError, match="channel: values app, phone"):
        check_spec(narrowed)


# ---- drift -----------------------------------------------------------------------------------


def test_covariate_drift(spec: DatasetSpec) -> None:
    scenario = Scenario(covariate_drift_from=2)
    before, _ = _day_table(spec, 1, 10_000, scenario)
    plain, _ = _day_table(spec, 1, 10_000, Scenario())
    after, _ = _day_table(spec, 2, 10_000, scenario)
    assert before.equals(plain)  # nothing changes before day k

    def stats(t: pa.Table) -> tuple[float, float, float]:
        amount = float(np.median(t.column("amount").to_numpy()))
        channel = t.column("channel").to_numpy(zero_copy_only=False)
        online = float(np.isin(channel, ["web", "app"]).mean())
        trust = pc.mean(t.column("device_trust_score")).as_py()
        return amount, online, trust

    amount0, online0, trust0 = stats(before)
    amount1, online1, trust1 = stats(after)
    assert amount1 > 1.3 * amount0
    assert online1 > online0 + 0.15
    assert trust1 < trust0 - 0.05


def test_concept_drift(spec: DatasetSpec) -> None:
    scenario = Scenario(concept_drift_from=1)
    ev0, lb0 = _day_table(spec, 1, 20_000, Scenario())
    ev1, lb1 = _day_table(spec, 1, 20_000, scenario)
    assert ev0.equals(ev1)  # the features do not move, only the labels
    assert not lb0.equals(lb1)

    def rate_by_channel(events: pa.Table, labels: pa.Table) -> dict[str, float]:
        channel = events.column("channel").to_numpy(zero_copy_only=False)
        y = labels.column(spec.label.column).to_numpy()
        return {c: float(y[channel == c].mean()) for c in ("pos", "web")}

    old, new = rate_by_channel(ev0, lb0), rate_by_channel(ev1, lb1)
    assert old["web"] > 2 * old["pos"]  # card-not-present fraud dominates ...
    assert new["pos"] > 1.5 * new["web"]  # ... until skimming takes over

    trust = ev0.column("device_trust_score").to_numpy(zero_copy_only=False).astype(float)
    ok = ~np.isnan(trust)
    corr_old = np.corrcoef(trust[ok], lb0.column(spec.label.column).to_numpy()[ok])[0, 1]
    corr_new = np.corrcoef(trust[ok], lb1.column(spec.label.column).to_numpy()[ok])[0, 1]
    assert corr_old < -0.1 < corr_new


# ---- bad batches -----------------------------------------------------------------------------


@pytest.fixture
def clean(spec: DatasetSpec, tmp_path: Path) -> dict[str, bytes]:
    out = write_day(Store((tmp_path / "clean").as_uri()), spec, DAY, 0, ROWS, SEED, Scenario())
    return {k: _local(v).read_bytes() for k, v in out.items()}


@pytest.mark.parametrize("kind", BAD_BATCH_KINDS)
def test_bad_batch_csv(spec: DatasetSpec, store: Store, clean: dict[str, bytes], kind: str) -> None:
    out = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario(bad_batches={0: kind}))
    path = _local(out["events"])
    data = path.read_bytes()
    assert _local(out["labels"]).read_bytes() == clean["labels"]  # labels stay clean
    assert data != clean["events"]
    column = bad_batch_column(spec, kind, SEED, 0)

    if kind == "empty_file":
        assert data == b""
        return
    if kind == "truncated_file":
        assert 0 < len(data) < len(clean["events"])
        assert clean["events"].startswith(data)
        assert not data.endswith(b"\n")
        last = data.decode().splitlines()[-1]
        assert 1 <= len(last.split(",")) < len(spec.event_columns)
        with pytest.raises(pa.ArrowInvalid):
            _read_csv(path)
        return
    if kind == "wrong_encoding":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        assert data.decode("utf-16").encode("utf-8") == clean["events"]
        return

    t = _read_csv(path)
    assert t.num_rows == ROWS
    if kind == "missing_column":
        assert column in spec.feature_names
        assert t.column_names == [c for c in spec.event_columns if c != column]
    elif kind == "extra_column":
        assert column not in spec.event_columns
        assert t.column_names == [*spec.event_columns, column]
    elif kind == "type_change":
        assert column in {f.name for f in spec.features.numeric}
        assert t.schema.field(column).type == pa.string()
        junk = [v for v in t.column(column).to_pylist() if v is not None and v.startswith("n/a-")]
        assert junk and all(re.fullmatch(r"n/a-\d+", v) for v in junk)
        with pytest.raises(pa.ArrowInvalid):
            _read_csv(path, spec)
    elif kind == "null_spike":
        assert 0.5 <= _null_fraction(t.column(column)) <= 0.7
    elif kind == "out_of_range":
        feat = next(f for f in spec.features.numeric if f.name == column)
        assert feat.max is not None
        too_big = pc.sum(pc.greater(t.column(column), feat.max)).as_py()
        assert 1 <= too_big <= 0.1 * ROWS
        assert pc.min(t.column(column)).as_py() >= (feat.min or 0)
    elif kind == "duplicate_ids":
        ids = t.column(spec.id_column).to_pylist()
        dup_share = 1 - len(set(ids)) / len(ids)
        assert 0.02 <= dup_share <= 0.08
    elif kind == "wrong_partition":
        days = set(pc.strftime(t.column(spec.event_time_column), format="%Y-%m-%d").to_pylist())
        assert days == {"2025-12-30"}
        # the file still sits in the dt=2026-01-01 folder
        assert "dt=2026-01-01" in out["events"]
    else:  # pragma: no cover - every kind is checked above
        pytest.fail(f"unchecked kind {kind}")


@pytest.mark.parametrize("kind", ["truncated_file", "wrong_encoding", "type_change", "empty_file"])
def test_bad_batch_parquet(spec: DatasetSpec, store: Store, kind: str) -> None:
    spec = _with(spec, landing={"format": "parquet"})
    out = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario(), bad=kind)
    path = _local(out["events"])
    assert path.name == "events.parquet"
    assert pq.read_table(_local(out["labels"])).num_rows == ROWS
    column = bad_batch_column(spec, kind, SEED, 0)
    if kind == "empty_file":
        assert path.stat().st_size == 0
    elif kind == "truncated_file":
        assert path.read_bytes().startswith(b"PAR1")
        with pytest.raises(pa.ArrowInvalid):
            pq.read_table(path)
    elif kind == "wrong_encoding":
        t = pq.read_table(path)
        assert column in {c.name for c in spec.features.categorical}
        assert t.schema.field(column).type == pa.binary()
        values = [v for v in t.column(column).to_pylist() if v is not None]
        with pytest.raises(UnicodeDecodeError):
            b"".join(values).decode("utf-8")
    else:
        t = pq.read_table(path)
        assert t.schema.field(column).type == pa.string()


def test_parquet_clean_types(spec: DatasetSpec, store: Store) -> None:
    spec = _with(spec, landing={"format": "parquet"})
    out = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    t = pq.read_table(_local(out["events"]))
    assert t.column_names == spec.event_columns
    for name, typ in _types(spec).items():
        if name in t.column_names:
            assert t.schema.field(name).type == typ, name


def test_unknown_bad_kind(spec: DatasetSpec, store: Store) -> None:
    with pytest.raises(ValueError, match="unknown bad-batch kind"):
        Scenario(bad_batches={0: "gremlins"})
    with pytest.raises(ValueError, match="unknown bad-batch kind"):
        write_day(store, spec, DAY, 0, 10, SEED, Scenario(), bad="gremlins")


@pytest.mark.parametrize("kind", [None, "wrong_encoding", "duplicate_ids", "type_change"])
def test_multi_chunk_files(
    spec: DatasetSpec, store: Store, monkeypatch: pytest.MonkeyPatch, kind: str | None
) -> None:
    monkeypatch.setattr(datagen, "DEFAULT_CHUNK_ROWS", 700)  # 2000 rows -> 3 chunks
    out = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario(), bad=kind)
    data = _local(out["events"]).read_bytes()
    if kind == "wrong_encoding":
        assert data.count(b"\xff\xfe") == 1  # one BOM, one header
        data = data.decode("utf-16").encode()
    assert data.count(b'"payment_id"') == 1
    t = pacsv.read_csv(pa.BufferReader(data))
    assert t.num_rows == ROWS
    ids = t.column(spec.id_column).to_pylist()
    assert (len(set(ids)) < ROWS) == (kind == "duplicate_ids")
    times = t.column(spec.event_time_column)
    assert pc.all(pc.greater_equal(times[1:], times[:-1])).as_py()
    labels = _read_csv(_local(out["labels"]), spec)
    assert labels.num_rows == ROWS


# ---- several days ----------------------------------------------------------------------------


def test_generate_days(spec: DatasetSpec, store: Store) -> None:
    scenario = Scenario(bad_batches={1: "empty_file"})
    outs = generate(store, spec, DAY, 3, 200, SEED, scenario)
    assert len(outs) == 3
    for i, out in enumerate(outs):
        day = DAY + timedelta(days=i)
        assert f"dt={day.isoformat()}" in out["events"]
        label_day = day + timedelta(days=spec.label.delay_days)
        assert out["labels"].endswith(f"dt={label_day.isoformat()}/labels-{day.isoformat()}.csv")
        size = _local(out["events"]).stat().st_size
        assert (size == 0) == (i == 1)
    assert store.list_partitions(store.path("landing", "payments", "events")) == [
        DAY + timedelta(days=i) for i in range(3)
    ]
