"""Local days: a day partition is the local calendar day of the event time in the spec's
``partitioning.timezone``. Offsets are converted, times without one are local times, DST days
have 23 or 25 hours, and event times are stored as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nightshift.ingest import EVENT_TIME, _CastIssues, arrow_schema, event_time, ingest_partition, localize
from nightshift.spec import DatasetSpec, parse_spec, partition_bounds
from nightshift.storage import Store
from nightshift.validate import BatchRejected, ValidationOutcome

CHICAGO = ZoneInfo("America/Chicago")
DAY = date(2026, 3, 2)  # an ordinary day: CST, UTC-6
SPRING = date(2026, 3, 8)  # clocks go forward at 02:00: 23 hours
FALL = date(2026, 11, 1)  # clocks go back at 02:00: 25 hours
HEADER = "order_id,ordered_at,amount,channel"


@pytest.fixture(scope="module")
def shop() -> DatasetSpec:
    """A store's orders in Chicago: local business days."""
    return parse_spec(
        {
            "name": "shop",
            "id_column": "order_id",
            "event_time_column": "ordered_at",
            "label": {"column": "returned", "delay_days": 1},
            "features": {
                "numeric": [{"name": "amount", "min": 0}],
                "categorical": [{"name": "channel", "values": ["web", "store"]}],
            },
            "partitioning": {"timezone": "America/Chicago"},
            "validation": {"min_rows": 1},
        }
    )


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _z(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _land(store: Store, spec: DatasetSpec, day: date, times: list[str], name: str = "orders.csv") -> None:
    rows = [f"{day}-{i:04d},{t},{10 + i % 7}.5,{'web' if i % 2 else 'store'}" for i, t in enumerate(times)]
    path = f"{store.landing_dir(spec.name, 'events', day)}/{name}"
    store.write_bytes_atomic(path, ("\n".join([HEADER, *rows]) + "\n").encode())


def _ingest(store: Store, spec: DatasetSpec, day: date, tmp: Path) -> ValidationOutcome:
    return ingest_partition(store, spec, "events", day, gx_dir=tmp / "gx", work_dir=tmp / "work")


def _stored(store: Store, spec: DatasetSpec, day: date) -> list[datetime]:
    table = pq.read_table(store.published_file(spec.name, "events", day))
    assert table.schema.equals(arrow_schema(spec, "events"), check_metadata=False)  # UTC, as before
    return list(table.column("ordered_at").to_pylist())


def _every(start: datetime, end: datetime, minutes: int = 10) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(minutes=minutes)
    return out


# ---- converting ---------------------------------------------------------------------------------


def test_times_with_an_offset_are_converted_and_without_one_are_local() -> None:
    text = pa.array(
        [
            "2026-03-02T10:00:00Z",
            "2026-03-02T04:00:00-06:00",
            "2026-03-02 11:00:00+0100",
            "2026-03-02 04:00:00",  # no offset: 04:00 in Chicago
            "2026-03-02T04:00",
            "2026-03-02",  # a bare date: local midnight
            None,
        ]
    )
    got = event_time(text, "America/Chicago").to_pylist()
    assert got == [_utc(2026, 3, 2, 10)] * 5 + [_utc(2026, 3, 2, 6), None]
    # the same wall-clock text in UTC is another instant
    assert event_time(pa.array(["2026-03-02 04:00:00"]), "UTC").to_pylist() == [_utc(2026, 3, 2, 4)]


def test_a_value_that_is_no_time_is_counted_not_guessed() -> None:
    text = pa.array(["2026-03-02 04:00:00", "soon", "2026-03-02T10:00:00Z", "31/02/2026 25:00"])
    with pytest.raises(pa.ArrowInvalid):
        event_time(text, "America/Chicago")  # strict: the reader re-reads leniently
    issues = _CastIssues()
    got = event_time(text, "America/Chicago", "ordered_at", issues).to_pylist()
    assert got == [_utc(2026, 3, 2, 10), None, _utc(2026, 3, 2, 10), None]
    assert issues.counts == {"ordered_at": 2}
    assert issues.examples["ordered_at"] == ["soon", "31/02/2026 25:00"]


def test_dst_ambiguous_times_take_the_first_occurrence_and_skipped_ones_move_forward() -> None:
    naive = pa.array(
        [
            datetime(2026, 3, 8, 1, 59),  # just before the gap: CST
            datetime(2026, 3, 8, 2, 30),  # does not exist: shifted to 03:00 CDT
            datetime(2026, 3, 8, 3, 0),
            datetime(2026, 11, 1, 1, 30),  # happens twice: the first time, still CDT
            datetime(2026, 11, 1, 2, 30),  # after the repeated hour: CST
        ],
        pa.timestamp("us"),
    )
    assert localize(naive, "America/Chicago").to_pylist() == [
        _utc(2026, 3, 8, 7, 59),
        _utc(2026, 3, 8, 8, 0),
        _utc(2026, 3, 8, 8, 0),
        _utc(2026, 11, 1, 6, 30),
        _utc(2026, 11, 1, 8, 30),
    ]


def test_parquet_timestamps_without_a_zone_are_local_and_with_one_are_converted() -> None:
    naive = pa.array([datetime(2026, 3, 2, 4)], pa.timestamp("ns"))
    chicago = pa.array([_utc(2026, 3, 2, 10)], pa.timestamp("ms", tz="America/Chicago"))
    assert event_time(naive, "America/Chicago").to_pylist() == [_utc(2026, 3, 2, 10)]
    assert event_time(chicago, "America/Chicago").to_pylist() == [_utc(2026, 3, 2, 10)]
    assert event_time(chicago, "America/Chicago").type == EVENT_TIME
    dates = pa.array([date(2026, 3, 2)], pa.date32())
    assert event_time(dates, "America/Chicago").to_pylist() == [_utc(2026, 3, 2, 6)]


# ---- ingesting a local day ----------------------------------------------------------------------


def test_the_local_evening_belongs_to_the_day(shop: DatasetSpec, tmp_path: Path) -> None:
    """18:00-24:00 in Chicago is after midnight UTC: those rows are the day's, not the next's."""
    store = Store((tmp_path / "store").as_uri())
    start, end = partition_bounds(DAY, CHICAGO)
    times = _every(start, end, minutes=30)
    evening = [t for t in times if t.astimezone(UTC).date() > DAY]
    assert len(evening) == 12  # 18:00 .. 23:30 local
    _land(store, shop, DAY, [_z(t) for t in times])
    outcome = _ingest(store, shop, DAY, tmp_path)
    assert outcome.success, outcome.reason()
    assert outcome.rows == 48
    assert _stored(store, shop, DAY) == times


def test_a_row_of_the_previous_local_day_is_out_of_the_partition(shop: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    start, _ = partition_bounds(DAY, CHICAGO)
    # 05:59 UTC on the day itself is still 23:59 the evening before in Chicago
    _land(store, shop, DAY, [_z(start), _z(start - timedelta(minutes=1))])
    with pytest.raises(BatchRejected) as info:
        _ingest(store, shop, DAY, tmp_path)
    assert "expect_column_values_to_be_between(ordered_at): 1 unexpected" in str(info.value)
    assert not store.exists(store.published_file(shop.name, "events", DAY))


def test_times_without_an_offset_are_read_in_the_spec_zone(shop: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    local = ["2026-03-02 00:00:00", "2026-03-02 09:15:00", "2026-03-02 23:59:59.5"]
    _land(store, shop, DAY, local)
    outcome = _ingest(store, shop, DAY, tmp_path)
    assert outcome.success, outcome.reason()
    assert _stored(store, shop, DAY) == [
        _utc(2026, 3, 2, 6),
        _utc(2026, 3, 2, 15, 15),
        datetime(2026, 3, 3, 5, 59, 59, 500000, tzinfo=UTC),
    ]


def test_offsets_and_local_times_mixed_in_one_file(shop: DatasetSpec, tmp_path: Path) -> None:
    store = Store((tmp_path / "store").as_uri())
    _land(store, shop, DAY, ["2026-03-02T20:00:00Z", "2026-03-02 20:00:00", "2026-03-02T20:00:00-06:00"])
    outcome = _ingest(store, shop, DAY, tmp_path)
    assert outcome.success, outcome.reason()
    assert _stored(store, shop, DAY) == [_utc(2026, 3, 2, 20), _utc(2026, 3, 3, 2), _utc(2026, 3, 3, 2)]


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (FALL, 25)], ids=["23h", "25h"])
def test_a_dst_day_ingests_every_row(shop: DatasetSpec, tmp_path: Path, day: date, hours: int) -> None:
    start, end = partition_bounds(day, CHICAGO)
    assert end - start == timedelta(hours=hours)
    instants = _every(start, end)
    assert len(instants) == hours * 6
    # with offsets, every instant of the local day; without, every local wall-clock time
    # (on the 25-hour day the repeated hour's times are the same text twice)
    walls = [t.astimezone(CHICAGO).strftime("%Y-%m-%d %H:%M:%S") for t in instants]
    for form, times in (("utc", [_z(t) for t in instants]), ("local", walls)):
        store = Store((tmp_path / form).as_uri())
        _land(store, shop, day, times)
        outcome = _ingest(store, shop, day, tmp_path / form)
        assert outcome.success, (form, outcome.reason())
        assert outcome.rows == hours * 6
        stored = _stored(store, shop, day)
        assert all(start <= t < end for t in stored)
        if form == "utc":
            assert stored == instants


def test_naive_parquet_event_times_are_local(shop: DatasetSpec, tmp_path: Path) -> None:
    spec = parse_spec({**shop.model_dump(), "landing": {"format": "parquet"}})
    store = Store((tmp_path / "store").as_uri())
    table = pa.table(
        {
            "order_id": ["a", "b"],
            "ordered_at": pa.array(
                [datetime(2026, 3, 2, 0, 0), datetime(2026, 3, 2, 23, 0)], pa.timestamp("ns")
            ),
            "amount": [1.0, 2.0],
            "channel": ["web", "store"],
        }
    )
    with store.open_output_atomic(f"{store.landing_dir('shop', 'events', DAY)}/orders.parquet") as out:
        pq.write_table(table, out)
    outcome = _ingest(store, spec, DAY, tmp_path)
    assert outcome.success, outcome.reason()
    assert _stored(store, spec, DAY) == [_utc(2026, 3, 2, 6), _utc(2026, 3, 3, 5)]
