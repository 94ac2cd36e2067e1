"""Ingesting one day: stage, cast, validate, then publish or quarantine (core paths only;
the per-bad-batch-kind cases live in the integration tests)."""

from __future__ import annotations

import errno
import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nightshift import ingest
from nightshift.demo.datagen import Scenario, write_day
from nightshift.ingest import NoLandingData, StagingError, arrow_schema, arrow_type, ingest_partition
from nightshift.spec import DatasetSpec, parse_spec
from nightshift.storage import StorageError, Store
from nightshift.validate import BatchRejected, ValidationOutcome

DAY = date(2026, 1, 1)
ROWS = 300
SEED = 5


@pytest.fixture(scope="module")
def sensors() -> DatasetSpec:
    """A dataset unlike the demo: int64 ids, other column names, CSV with ';'."""
    return parse_spec(
        {
            "name": "sensors",
            "id_column": "reading_id",
            "id_dtype": "int64",
            "event_time_column": "ts",
            "label": {"column": "fault", "delay_days": 0},
            "features": {
                "numeric": [
                    {"name": "temp", "min": -40, "max": 125},
                    {"name": "level", "dtype": "int64", "min": 0, "max": 10},
                ],
                "categorical": [{"name": "site", "values": ["north", "south"]}],
            },
            "landing": {"format": "csv", "delimiter": ";", "pattern": "*.csv"},
        }
    )


def _with(spec: DatasetSpec, **changes: Any) -> DatasetSpec:
    data = spec.model_dump()
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return parse_spec(data)


def _ingest(store: Store, spec: DatasetSpec, kind: Any, dt: date, tmp: Path) -> ValidationOutcome:
    return ingest_partition(store, spec, kind, dt, gx_dir=tmp / "gx", work_dir=tmp / "work")


def _rejected(store: Store, spec: DatasetSpec, kind: Any, dt: date, tmp: Path) -> ValidationOutcome:
    with pytest.raises(BatchRejected) as info:
        _ingest(store, spec, kind, dt, tmp)
    return info.value.outcome


def _local(uri: str | None) -> Path:
    assert uri is not None and uri.startswith("file://")
    return Path(uri[len("file://") :])


def _sensor_rows(n: int = 20, start: int = 1) -> list[str]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        f"{i};{(t0 + timedelta(minutes=17 * i)).isoformat().replace('+00:00', 'Z')};{i / 4:.2f};{i % 11};"
        f"{'north' if i % 2 else 'south'}"
        for i in range(start, start + n)
    ]


def _sensor_csv(store: Store, spec: DatasetSpec, name: str, rows: list[str], dt: date = DAY) -> str:
    path = f"{store.landing_dir(spec.name, 'events', dt)}/{name}"
    store.write_bytes_atomic(path, ("reading_id;ts;temp;level;site\n" + "\n".join(rows) + "\n").encode())
    return path


# ---- a clean demo day ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_day(spec: DatasetSpec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("clean")
    store = Store((tmp / "store").as_uri())
    landed = write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    outcome = _ingest(store, spec, "events", DAY, tmp)
    return {"tmp": tmp, "store": store, "landed": landed, "outcome": outcome}


def test_a_valid_batch_above_the_data_docs_size_gets_verdicts_only(spec: DatasetSpec, tmp_path: Path) -> None:
    big = spec.model_copy(
        update={"validation": spec.validation.model_copy(update={"data_docs_max_rows": 100})}
    )
    store = Store((tmp_path / "store").as_uri())
    write_day(store, big, DAY, 0, ROWS, SEED, Scenario())
    outcome = _ingest(store, big, "events", DAY, tmp_path)
    assert outcome.success and outcome.data_docs_uri is None
    assert not store.exists(store.reports_dir("payments", "validation", DAY) + "/data_docs_events")


def test_clean_day_is_published(spec: DatasetSpec, clean_day: dict[str, Any]) -> None:
    store, outcome = clean_day["store"], clean_day["outcome"]
    target = store.published_file("payments", "events", DAY)
    assert target.endswith("/curated/payments/dt=2026-01-01/part-0.parquet")
    assert outcome.success
    assert outcome.published_uri == store.uri(target)
    assert outcome.rows == ROWS
    assert outcome.files == [clean_day["landed"]["events"]]
    # a small valid batch has its GX Data Docs, next to the day's validation report
    docs = store.reports_dir("payments", "validation", DAY) + "/data_docs_events/index.html"
    assert outcome.data_docs_uri == store.uri(docs) and "Great Expectations" in Path(docs).read_text()
    assert all(c.success for c in outcome.checks)
    assert {c.source for c in outcome.checks} == {"gx"}
    table = pq.read_table(_local(outcome.published_uri))
    assert table.schema.equals(arrow_schema(spec, "events"), check_metadata=False)
    assert table.column_names == spec.event_columns
    assert table.num_rows == ROWS
    assert pc.count_distinct(table.column(spec.id_column)).as_py() == ROWS
    assert not store.exists(store.quarantine_dir("payments", "events", DAY))
    assert list((clean_day["tmp"] / "work").iterdir()) == []  # staging cleaned up


def test_clean_day_report(clean_day: dict[str, Any]) -> None:
    store, outcome = clean_day["store"], clean_day["outcome"]
    report_path = store.reports_dir("payments", "validation", DAY) + "/events.json"
    assert report_path.endswith("/reports/payments/validation/dt=2026-01-01/events.json")
    assert outcome.report_uri == store.uri(report_path)
    report = store.read_json(report_path)
    assert report["outcome"]["success"] is True
    assert ValidationOutcome.from_dict(report["outcome"]) == outcome
    assert "gx_result" not in report  # kept lean on success
    stats = report["stats"]
    assert stats["bytes_in"] == _local(clean_day["landed"]["events"]).stat().st_size
    assert set(stats) == {"bytes_in", "read_cast_s", "validate_s", "column_seconds", "total_s"}


def test_rerun_replaces(spec: DatasetSpec, clean_day: dict[str, Any]) -> None:
    store = clean_day["store"]
    target = store.published_file("payments", "events", DAY)
    before = pq.read_table(target)
    again = _ingest(store, spec, "events", DAY, clean_day["tmp"])
    assert again.success
    assert again.published_uri == clean_day["outcome"].published_uri
    assert sorted(p.name for p in Path(target).parent.iterdir()) == ["part-0.parquet"]
    after = pq.read_table(target)
    assert after.num_rows == ROWS  # replaced, not appended
    assert after.equals(before)
    reports = Path(store.reports_dir("payments", "validation", DAY))
    assert sorted(p.name for p in reports.iterdir()) == ["data_docs_events", "events.json"]  # replaced


def test_labels_are_published_to_labels_area(spec: DatasetSpec, clean_day: dict[str, Any]) -> None:
    store = clean_day["store"]
    arrival = DAY + timedelta(days=spec.label.delay_days)
    outcome = _ingest(store, spec, "labels", arrival, clean_day["tmp"])
    assert outcome.success
    assert outcome.kind == "labels"
    assert outcome.dt == "2026-01-04"
    target = store.published_file("payments", "labels", arrival)
    assert target.endswith("/labels/payments/dt=2026-01-04/part-0.parquet")
    assert outcome.published_uri == store.uri(target)
    table = pq.read_table(target)
    assert table.schema.equals(arrow_schema(spec, "labels"), check_metadata=False)
    assert table.num_rows == ROWS
    assert set(table.column(spec.label.column).to_pylist()) <= {0, 1}
    assert store.exists(store.reports_dir("payments", "validation", arrival) + "/labels.json")


def test_parquet_landing_clean_day(spec: DatasetSpec, tmp_path: Path) -> None:
    pspec = _with(spec, landing={"format": "parquet"})
    store = Store((tmp_path / "store").as_uri())
    landed = write_day(store, pspec, DAY, 0, ROWS, SEED, Scenario())
    assert landed["events"].endswith("events.parquet")
    outcome = _ingest(store, pspec, "events", DAY, tmp_path)
    assert outcome.success
    table = pq.read_table(_local(outcome.published_uri))
    assert table.schema.equals(arrow_schema(pspec, "events"), check_metadata=False)
    assert table.num_rows == ROWS


# ---- another dataset -----------------------------------------------------------------------------


def test_arrow_schema_follows_spec(sensors: DatasetSpec) -> None:
    assert arrow_schema(sensors, "events") == pa.schema(
        [
            ("reading_id", pa.int64()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("temp", pa.float64()),
            ("level", pa.int64()),
            ("site", pa.string()),
        ]
    )
    assert arrow_schema(sensors, "labels").names == ["reading_id", "ts", "fault"]
    assert arrow_type(sensors, "fault") == pa.int64()
    with pytest.raises(KeyError, match="'payment_id' is not a column of dataset 'sensors'"):
        arrow_type(sensors, "payment_id")


def test_other_dataset_parquet_landing(sensors: DatasetSpec, tmp_path: Path) -> None:
    pspec = _with(sensors, landing={"format": "parquet", "pattern": "*.parquet"})
    store = Store((tmp_path / "store").as_uri())
    n = 50
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # upstream's own column order and int32 / double types: the reader casts to the spec
    table = pa.table(
        {
            "site": ["north", "south"] * (n // 2),
            "level": pa.array([i % 11 for i in range(n)], pa.int32()),
            "reading_id": pa.array([20260101_000000000 + i for i in range(n)], pa.int64()),
            "ts": [t0 + timedelta(minutes=20 * i) for i in range(n)],
            "temp": [float(i) for i in range(n)],
        }
    )
    landing = store.landing_dir("sensors", "events", DAY)
    store.makedirs(landing)
    pq.write_table(table, f"{landing}/part-a.parquet")
    store.write_bytes_atomic(f"{landing}/README.txt", b"not data")  # skipped by the pattern
    outcome = _ingest(store, pspec, "events", DAY, tmp_path)
    assert outcome.success, outcome.reason()
    assert len(outcome.files) == 1
    published = pq.read_table(_local(outcome.published_uri))
    assert published.schema.equals(arrow_schema(pspec, "events"), check_metadata=False)
    assert published.column("reading_id").to_pylist() == table.column("reading_id").to_pylist()


def test_several_files_in_one_partition(sensors: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    _sensor_csv(store, sensors, "a.csv", _sensor_rows(20, start=1))
    _sensor_csv(store, sensors, "b.csv", _sensor_rows(15, start=21))
    _sensor_csv(store, sensors, "notes.txt", ["ignored"])  # not matched by landing.pattern
    outcome = _ingest(store, sensors, "events", DAY, tmp_path)
    assert outcome.success, outcome.reason()
    assert outcome.rows == 35
    assert [f.rpartition("/")[2] for f in outcome.files] == ["a.csv", "b.csv"]
    table = pq.read_table(_local(outcome.published_uri))
    assert table.column("reading_id").to_pylist() == list(range(1, 36))
    assert table.column("ts").type == pa.timestamp("us", tz="UTC")


def test_one_file_read_in_several_batches(
    sensors: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "PARQUET_BATCH_ROWS", 10)
    pspec = _with(sensors, landing={"format": "parquet", "pattern": "*"})
    store = Store((tmp_path / "store").as_uri())
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    table = pa.table(
        {
            "reading_id": list(range(1, 26)),
            "ts": [t0 + timedelta(hours=i % 24) for i in range(25)],
            "temp": [1.5] * 25,
            "level": [i % 11 for i in range(25)],
            "site": ["north"] * 25,
        }
    )
    landing = store.landing_dir("sensors", "events", DAY)
    store.makedirs(landing)
    pq.write_table(table, f"{landing}/day.parquet")
    outcome = _ingest(store, pspec, "events", DAY, tmp_path)
    assert outcome.success
    assert outcome.rows == 25


# ---- cast outcomes -------------------------------------------------------------------------------


def test_text_in_numeric_column_then_redelivery(sensors: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    rows = _sensor_rows(20)
    rows[3] = rows[3].replace(";4;", ";oops;")  # level (int64) of reading 4
    rows[7] = rows[7].replace(";2.00;", ";warm;")  # temp (float64) of reading 8
    rows[9] = rows[9].replace(";10;", ";2.5;")  # level: not an integer
    _sensor_csv(store, sensors, "day.csv", rows)
    outcome = _rejected(store, sensors, "events", DAY, tmp_path)

    cast = {c.column: c for c in outcome.checks if c.name == "values_castable"}
    assert set(cast) == {"level", "temp"}
    assert all(not c.success and c.source == "read" for c in cast.values())
    assert cast["level"].details == "2 value(s) not parseable as int64, e.g. 'oops', '2.5'"
    assert cast["temp"].details == "1 value(s) not parseable as double, e.g. 'warm'"
    assert outcome.rows == 20
    msg = outcome.message()
    assert "values_castable(level)" in msg and "'oops'" in msg
    assert "values_castable(temp)" in msg and "'warm'" in msg

    qdir = store.quarantine_dir("sensors", "events", DAY)
    assert outcome.report_uri == store.uri(qdir + "/validation.json")
    assert outcome.data_docs_uri == store.uri(qdir + "/data_docs/index.html")
    assert store.exists(qdir + "/data_docs/index.html")
    assert store.read_bytes(qdir + "/files/day.csv") == store.read_bytes(outcome.files[0][len("file://") :])
    report = store.read_json(qdir + "/validation.json")
    assert report["outcome"]["success"] is False
    assert report["gx_result"]["success"] is False
    summary = store.read_json(store.reports_dir("sensors", "validation", DAY) + "/events.json")
    assert summary["outcome"]["report_uri"] == outcome.report_uri
    assert not store.exists(store.published_file("sensors", "events", DAY))
    assert list((tmp_path / "work").iterdir()) == []

    # upstream re-delivers a fixed file: published, and no longer quarantined
    _sensor_csv(store, sensors, "day.csv", _sensor_rows(20))
    fixed = _ingest(store, sensors, "events", DAY, tmp_path)
    assert fixed.success
    assert not store.exists(qdir)
    assert store.read_json(store.reports_dir("sensors", "validation", DAY) + "/events.json")["outcome"][
        "success"
    ]


def test_parquet_text_in_numeric_column_is_a_cast_failure(sensors: DatasetSpec, tmp_path: Path) -> None:
    pspec = _with(sensors, landing={"format": "parquet", "pattern": "*"})
    store = Store((tmp_path / "store").as_uri())
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    table = pa.table(
        {
            "reading_id": list(range(1, 11)),
            "ts": [t0 + timedelta(hours=i) for i in range(10)],
            "temp": ["1.5"] * 9 + ["warm"],
            "level": list(range(10)),
            "site": ["north"] * 10,
        }
    )
    landing = store.landing_dir("sensors", "events", DAY)
    store.makedirs(landing)
    pq.write_table(table, f"{landing}/day.parquet")
    outcome = _rejected(store, pspec, "events", DAY, tmp_path)
    # the read check comes first and names the value; GX then sees it as a null
    assert [c.label for c in outcome.failed] == [
        "values_castable(temp)",
        "expect_column_values_to_not_be_null(temp)",
    ]
    assert "'warm'" in outcome.failed[0].details


def test_bad_int64_id_does_not_make_others_duplicates(sensors: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    rows = [r.replace(f"{i};", f"{20260101_000000000 + i};", 1) for i, r in enumerate(_sensor_rows(20), 1)]
    rows.append("xyz;2026-01-01T12:00:00Z;1.0;1;north")
    _sensor_csv(store, sensors, "day.csv", rows)
    outcome = _rejected(store, sensors, "events", DAY, tmp_path)
    assert "values_castable(reading_id)" in [c.label for c in outcome.failed]
    assert "expect_column_values_to_be_unique(reading_id)" not in [c.label for c in outcome.failed]


# ---- nothing to ingest ---------------------------------------------------------------------------


def test_no_landing_data(spec: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    landing = store.landing_dir("payments", "events", DAY)
    with pytest.raises(NoLandingData, match="no events files for payments in") as info:
        _ingest(store, spec, "events", DAY, tmp_path)
    assert store.uri(landing) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)

    # an existing but empty folder, or one with only temp / hidden files, is the same
    store.makedirs(landing)
    store.write_bytes_atomic(f"{landing}/.tmp-abc-events.csv", b"x")
    store.write_bytes_atomic(f"{landing}/_SUCCESS", b"")
    with pytest.raises(NoLandingData):
        _ingest(store, spec, "events", DAY, tmp_path)
    with pytest.raises(NoLandingData, match="no labels files"):
        _ingest(store, spec, "labels", DAY, tmp_path)
    assert not store.exists(store.path("reports"))
    assert not store.exists(store.path("quarantine"))


def test_report_json_is_plain_json(clean_day: dict[str, Any]) -> None:
    store = clean_day["store"]
    raw = store.read_bytes(store.reports_dir("payments", "validation", DAY) + "/events.json")
    assert json.loads(raw)["outcome"]["dataset"] == "payments"


# ---- faults: the disk, the store and the data told apart ----------------------------------------


def _enospc(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("step", ["write_batch", "close"])
def test_a_full_disk_while_staging_is_an_infra_error_not_a_bad_batch(
    step: str, sensors: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC from the staging Parquet writer: raised for a retry, named as a full disk; nothing
    is quarantined, the published day and its report stay as they were, no staging is left."""
    store = Store((tmp_path / "store").as_uri())
    _sensor_csv(store, sensors, "day.csv", _sensor_rows(20))
    assert _ingest(store, sensors, "events", DAY, tmp_path).success
    before = {f: (Path(store.root) / f).read_bytes() for f in _files_under(Path(store.root))}
    _sensor_csv(store, sensors, "day.csv", _sensor_rows(25))  # a re-delivery
    before[f"landing/sensors/events/dt={DAY}/day.csv"] = (
        Path(store.landing_dir("sensors", "events", DAY)) / "day.csv"
    ).read_bytes()

    monkeypatch.setattr(pq.ParquetWriter, step, _enospc)
    with pytest.raises(StagingError, match=r"disk full while staging day\.csv to .*staged\.parquet") as info:
        _ingest(store, sensors, "events", DAY, tmp_path)
    assert not isinstance(info.value, BatchRejected)
    monkeypatch.undo()

    after = {f: (Path(store.root) / f).read_bytes() for f in _files_under(Path(store.root))}
    assert after == before  # no quarantine/, curated/ and the report untouched, nothing half-written
    assert list((tmp_path / "work").iterdir()) == []
    retried = _ingest(store, sensors, "events", DAY, tmp_path)  # the retry, with space again
    assert retried.success and retried.rows == 25


def test_a_landing_file_that_cannot_be_read_is_a_store_error_not_a_corrupt_file(
    sensors: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes stop arriving (a disk or network failure under the reader): retried, and said so."""
    store = Store((tmp_path / "store").as_uri())
    path = _sensor_csv(store, sensors, "day.csv", _sensor_rows(20))
    reads = []

    class Failing:
        def __init__(self, data: bytes) -> None:
            self.f = pa.BufferReader(data)

        def read(self, n: int | None = None) -> bytes:
            reads.append(n)
            if len(reads) > 1:  # the header comes through, the body does not
                raise OSError(errno.EIO, "Input/output error")
            return bytes(self.f.read(n))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

    data = Path(path).read_bytes()
    monkeypatch.setattr(store, "open_input", lambda p: pa.PythonFile(Failing(data), mode="r"))
    with pytest.raises(StorageError, match=r"disk error while reading file://.*/day\.csv: .*Input/output"):
        _ingest(store, sensors, "events", DAY, tmp_path)
    assert not store.exists(store.path("quarantine"))
    assert not store.exists(store.path("reports"))


def test_a_corrupt_parquet_file_is_still_a_data_error(sensors: DatasetSpec, tmp_path: Path) -> None:
    pspec = _with(sensors, landing={"format": "parquet", "pattern": "*"})
    store = Store((tmp_path / "store").as_uri())
    landing = Path(store.landing_dir("sensors", "events", DAY))
    landing.mkdir(parents=True)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    table = pa.table({"reading_id": list(range(50)), "ts": [t0] * 50})
    pq.write_table(table, landing / "day.parquet")
    data = (landing / "day.parquet").read_bytes()
    (landing / "day.parquet").write_bytes(data[:40] + b"\xff" * 200 + data[240:])  # garbled, whole length
    outcome = _rejected(store, pspec, "events", DAY, tmp_path)
    assert [c.name for c in outcome.failed] == ["file_readable"]
    assert "day.parquet: corrupt or truncated" in outcome.failed[0].details


def test_a_csv_header_with_a_repeated_name_is_rejected_naming_it(
    sensors: DatasetSpec, tmp_path: Path
) -> None:
    """Reading would keep one of the two columns and silently drop the other."""
    store = Store((tmp_path / "store").as_uri())
    path = f"{store.landing_dir('sensors', 'events', DAY)}/day.csv"
    rows = [f"{r};{i * 10}" for i, r in enumerate(_sensor_rows(20))]
    store.write_bytes_atomic(path, ("reading_id;ts;temp;level;site;temp\n" + "\n".join(rows) + "\n").encode())
    outcome = _rejected(store, sensors, "events", DAY, tmp_path)
    assert [c.name for c in outcome.failed] == ["file_columns_unique"]
    assert (
        outcome.failed[0].details == "day.csv: column name(s) repeated in the header: 'temp' at columns 3, 6"
    )
    qdir = store.quarantine_dir("sensors", "events", DAY)
    assert store.read_bytes(qdir + "/files/day.csv") == store.read_bytes(path)  # nothing lost
    assert not store.exists(store.published_file("sensors", "events", DAY))


def test_a_parquet_file_with_a_repeated_column_is_rejected_naming_it(
    sensors: DatasetSpec, tmp_path: Path
) -> None:
    pspec = _with(sensors, landing={"format": "parquet", "pattern": "*"})
    store = Store((tmp_path / "store").as_uri())
    landing = Path(store.landing_dir("sensors", "events", DAY))
    landing.mkdir(parents=True)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    cols = [
        pa.array([1, 2]),
        pa.array([t0, t0]),
        pa.array([1.0, 2.0]),
        pa.array(["a", "b"]),
        pa.array([3, 4]),
    ]
    table = pa.Table.from_arrays(cols, names=["reading_id", "ts", "level", "site", "level"])
    pq.write_table(table, landing / "day.parquet")
    outcome = _rejected(store, pspec, "events", DAY, tmp_path)
    assert [c.name for c in outcome.failed] == ["file_columns_unique"]
    assert (
        "day.parquet: column name(s) repeated in the header: 'level' at columns 3, 5"
        in outcome.failed[0].details
    )


def test_a_parquet_file_in_a_csv_landing_folder_says_so(sensors: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    landing = Path(store.landing_dir("sensors", "events", DAY))
    landing.mkdir(parents=True)
    pq.write_table(pa.table({"reading_id": [1, 2]}), landing / "day.csv")
    outcome = _rejected(store, sensors, "events", DAY, tmp_path)
    assert [c.name for c in outcome.failed] == ["file_format"]
    assert outcome.failed[0].details == "day.csv: a Parquet file, but the spec's landing.format is csv"
    assert store.exists(store.quarantine_dir("sensors", "events", DAY) + "/files/day.csv")


def test_a_csv_file_in_a_parquet_landing_folder_says_so(sensors: DatasetSpec, tmp_path: Path) -> None:
    pspec = _with(sensors, landing={"format": "parquet", "pattern": "*"})
    store = Store((tmp_path / "store").as_uri())
    _sensor_csv(store, sensors, "day.parquet", _sensor_rows(5))
    outcome = _rejected(store, pspec, "events", DAY, tmp_path)
    assert [c.name for c in outcome.failed] == ["file_format"]
    assert "day.parquet: not a Parquet file (no PAR1 header)" in outcome.failed[0].details


def test_quarantine_cut_short_by_a_full_disk_leaves_nothing_half_written(
    sensors: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fills up while the evidence is copied in: a retryable store error, no
    quarantine folder (not half of one), no verdict written; the retry quarantines whole."""
    import shutil

    store = Store((tmp_path / "store").as_uri())
    rows = _sensor_rows(20)
    rows[3] = rows[3].replace(";4;", ";oops;")
    _sensor_csv(store, sensors, "day.csv", rows)
    real, copies = shutil.copyfile, []

    def fills_up(src: Any, dst: Any, **kw: Any) -> Any:
        copies.append(dst)
        if len(copies) == 3:
            _enospc()
        return real(src, dst, **kw)

    monkeypatch.setattr(shutil, "copyfile", fills_up)
    with pytest.raises(
        StorageError, match=r"disk full while publishing file://.*/quarantine/sensors/events/dt="
    ):
        _ingest(store, sensors, "events", DAY, tmp_path)
    monkeypatch.undo()
    assert _files_under(Path(store.root) / "quarantine") == []  # nothing, not half of it
    assert not store.exists(store.reports_dir("sensors", "validation", DAY) + "/events.json")
    outcome = _rejected(store, sensors, "events", DAY, tmp_path)
    qdir = Path(store.quarantine_dir("sensors", "events", DAY))
    assert {"validation.json", "files/day.csv", "data_docs/index.html"} <= set(_files_under(qdir))
    assert outcome.failed[0].label == "values_castable(level)"


def test_each_ingest_first_sweeps_old_leftovers_and_keeps_fresh_ones(
    sensors: DatasetSpec, tmp_path: Path
) -> None:
    store = Store((tmp_path / "store").as_uri())
    root = Path(store.root)
    work = tmp_path / "work"
    old = [
        root / "curated/sensors/dt=2025-12-30/.tmp-0123456789ab-part-0.parquet",
        root / "quarantine/sensors/events/dt=2025-12-30.tmp-01234567/validation.json",
        root / "reports/sensors/validation/dt=2025-12-30/data_docs_events.old-89abcdef/index.html",
        work / "ingest-sensors-events-2025-12-30-abc123/staged.parquet",
    ]
    fresh = [
        root / "curated/sensors/dt=2025-12-31/.tmp-aaaaaaaaaaaa-part-0.parquet",
        work / "ingest-sensors-events-2025-12-31-def456/staged.parquet",
    ]
    kept = [root / "curated/sensors/dt=2025-12-30/part-0.parquet"]
    for f in old + fresh + kept:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    long_ago = time.time() - 7 * 3600
    for f in old + kept:
        for p in (f, f.parent):
            os.utime(p, (long_ago, long_ago))
    _sensor_csv(store, sensors, "day.csv", _sensor_rows(20))
    assert _ingest(store, sensors, "events", DAY, tmp_path).success
    assert not any(f.exists() for f in old)
    assert not (root / "quarantine/sensors/events/dt=2025-12-30.tmp-01234567").exists()
    assert all(f.exists() for f in fresh + kept)
    assert sorted(p.name for p in work.iterdir()) == ["ingest-sensors-events-2025-12-31-def456"]


def test_a_malformed_row_is_not_quoted_when_the_spec_has_pii_columns(
    sensors: DatasetSpec, tmp_path: Path
) -> None:
    secret = "SECRET-4111111111111111"
    rows = [*_sensor_rows(5), f"6;2026-01-01T02:00:00Z;1.5;3;{secret};extra"]
    for pii, quoted in ((False, True), (True, False)):
        spec = sensors
        if pii:
            data = sensors.model_dump()
            data["features"]["categorical"][0]["pii"] = True
            spec = parse_spec(data)
        store = Store((tmp_path / f"store-{pii}").as_uri())
        _sensor_csv(store, spec, "day.csv", rows)
        outcome = _rejected(store, spec, "events", DAY, tmp_path / f"t-{pii}")
        readable = next(c for c in outcome.checks if c.name == "file_readable")
        assert "Expected 5 columns, got 6" in readable.details
        assert (secret in readable.details) is quoted
        assert (secret in json.dumps(outcome.to_dict())) is quoted
