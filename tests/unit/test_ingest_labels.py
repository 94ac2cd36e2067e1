"""Label feeds as they come: only the id and the outcome (the event time is optional), classes
that are strings or booleans, corrections re-sent later (the latest arrival wins, and is
counted), and ids the curated events never had (counted; too many quarantine the batch)."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from nightshift.features import labels
from nightshift.ingest import ingest_partition
from nightshift.spec import DatasetSpec, parse_spec, partition_bounds
from nightshift.storage import Store
from nightshift.train import Device, load_window, read_labels, train
from nightshift.validate import BatchRejected, ValidationOutcome

D0 = date(2026, 3, 2)
N = 20


def _spec(**changes: Any) -> DatasetSpec:
    data: dict[str, Any] = {
        "name": "shop",
        "id_column": "order_id",
        "event_time_column": "ordered_at",
        "label": {"column": "returned", "delay_days": 1, "positive": "YES", "negative": "NO"},
        "features": {
            "numeric": [{"name": "amount", "min": 0}],
            "categorical": [{"name": "channel", "values": ["web", "store"]}],
        },
        "partitioning": {"timezone": "America/Chicago"},
        "validation": {"min_rows": 1},
        "training": {
            "window_days": 3,
            "validation_days": 1,
            "holdout_days": 1,
            "min_rows": 30,
            "min_class_rows": 2,
            "num_boost_round": 20,
            "early_stopping_rounds": 5,
        },
    }
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return parse_spec(data)


@pytest.fixture(scope="module")
def shop() -> DatasetSpec:
    return _spec()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "store").as_uri())


def _ids(day: date, n: int = N) -> list[str]:
    return [f"{day}-{i:03d}" for i in range(n)]


def _ingest(store: Store, spec: DatasetSpec, kind: Any, day: date, tmp: Path) -> ValidationOutcome:
    return ingest_partition(store, spec, kind, day, gx_dir=tmp / "gx", work_dir=tmp / "work")


def _rejected(store: Store, spec: DatasetSpec, kind: Any, day: date, tmp: Path) -> ValidationOutcome:
    with pytest.raises(BatchRejected) as info:
        _ingest(store, spec, kind, day, tmp)
    return info.value.outcome


def _land_events(store: Store, spec: DatasetSpec, day: date, n: int = N) -> None:
    start, end = partition_bounds(day, spec.partitioning.tz)
    step = (end - start) / n
    rows = [
        f"{i},{(start + step * k).isoformat()},{1.0 + k % 5 + (k % 2) * 3},{'web' if k % 2 else 'store'}"
        for k, i in enumerate(_ids(day, n))
    ]
    path = f"{store.landing_dir(spec.name, 'events', day)}/orders.csv"
    store.write_bytes_atomic(path, ("order_id,ordered_at,amount,channel\n" + "\n".join(rows) + "\n").encode())


def _events(store: Store, spec: DatasetSpec, day: date, tmp: Path, n: int = N) -> None:
    _land_events(store, spec, day, n)
    assert _ingest(store, spec, "events", day, tmp).success


def _land_labels(
    store: Store, spec: DatasetSpec, arrival: date, rows: list[tuple[str, str]], event_time: str | None = None
) -> None:
    head = "order_id,returned" if event_time is None else "order_id,ordered_at,returned"
    lines = [f"{i},{v}" if event_time is None else f"{i},{event_time},{v}" for i, v in rows]
    path = f"{store.landing_dir(spec.name, 'labels', arrival)}/labels.csv"
    store.write_bytes_atomic(path, ("\n".join([head, *lines]) + "\n").encode())


def _outcomes(day: date) -> list[tuple[str, str]]:
    return [(i, "YES" if k % 4 == 0 else "NO") for k, i in enumerate(_ids(day))]


def _details(outcome: ValidationOutcome) -> dict[str, str]:
    return {c.label: c.details for c in outcome.checks}


# ---- the event time is optional ------------------------------------------------------------------


def test_a_labels_file_with_only_the_id_and_the_outcome_is_published(
    shop: DatasetSpec, store: Store, tmp_path: Path
) -> None:
    _events(store, shop, D0, tmp_path)
    arrival = D0 + timedelta(days=1)
    _land_labels(store, shop, arrival, _outcomes(D0))
    outcome = _ingest(store, shop, "labels", arrival, tmp_path)
    assert outcome.success, outcome.reason()
    table = pq.read_table(store.published_file(shop.name, "labels", arrival))
    assert table.column_names == ["order_id", "returned"]
    assert table.column("returned").to_pylist() == [v for _, v in _outcomes(D0)]
    assert outcome.label_report == {
        "ids": N,
        "matched_against": f"{arrival - timedelta(days=shop.label_match_days)}..{arrival}",
        "unmatched": 0,
        "unmatched_fraction": 0.0,
        "max_unmatched_fraction": 0.05,
        "pending": False,
        "resent": 0,
        "changed": 0,
    }
    report = store.read_json(store.reports_dir(shop.name, "validation", arrival) + "/labels.json")
    assert report["outcome"]["label_report"]["unmatched"] == 0
    assert _details(outcome)["labels_match_events"].startswith(
        f"0 of {N} label id(s) (0.0%) match no curated"
    )


def test_a_labels_file_with_the_event_time_keeps_it_and_checks_it(
    shop: DatasetSpec, store: Store, tmp_path: Path
) -> None:
    _events(store, shop, D0, tmp_path)
    arrival = D0 + timedelta(days=1)
    _land_labels(store, shop, arrival, _outcomes(D0), event_time="2026-03-02 12:00:00")
    assert _ingest(store, shop, "labels", arrival, tmp_path).success
    table = pq.read_table(store.published_file(shop.name, "labels", arrival))
    assert table.column_names == ["order_id", "ordered_at", "returned"]
    # local noon in Chicago, stored as UTC
    assert set(table.column("ordered_at").to_pylist()) == {datetime(2026, 3, 2, 18, tzinfo=UTC)}
    # present, it is validated: a label cannot be for an event after the day it lands
    _land_labels(store, shop, arrival, _outcomes(D0), event_time="2026-03-04T06:00:00Z")
    out = _rejected(store, shop, "labels", arrival, tmp_path)
    assert [c.label for c in out.failed] == ["expect_column_values_to_be_between(ordered_at)"]


# ---- label values --------------------------------------------------------------------------------


def test_a_label_that_is_neither_class_is_named_with_a_count(
    shop: DatasetSpec, store: Store, tmp_path: Path
) -> None:
    _events(store, shop, D0, tmp_path)
    arrival = D0 + timedelta(days=1)
    rows = _outcomes(D0)
    rows[1:4] = [(i, v) for (i, _), v in zip(rows[1:4], ["MAYBE", "yes", "MAYBE"], strict=True)]
    _land_labels(store, shop, arrival, rows)
    with pytest.raises(BatchRejected) as info:
        _ingest(store, shop, "labels", arrival, tmp_path)
    assert "expect_column_values_to_be_in_set(returned): 3 value(s) neither 'YES' nor 'NO'" in str(info.value)
    assert not store.exists(store.published_file(shop.name, "labels", arrival))
    assert store.list_files(store.quarantine_dir(shop.name, "labels", arrival) + "/files")


def test_boolean_labels(store: Store, tmp_path: Path) -> None:
    spec = _spec(label={"positive": True, "negative": False})
    _events(store, spec, D0, tmp_path)
    arrival = D0 + timedelta(days=1)
    rows = [(i, ["true", "false", "True", "0"][k % 4]) for k, i in enumerate(_ids(D0))]
    _land_labels(store, spec, arrival, rows)
    assert _ingest(store, spec, "labels", arrival, tmp_path).success
    table = pq.read_table(store.published_file(spec.name, "labels", arrival))
    assert table.column("returned").to_pylist() == [k % 4 in (0, 2) for k in range(N)]
    assert labels(table, spec).tolist() == [float(k % 4 in (0, 2)) for k in range(N)]
    rows[5] = (rows[5][0], "maybe")
    _land_labels(store, spec, arrival, rows)
    out = _rejected(store, spec, "labels", arrival, tmp_path)
    assert _details(out)["values_castable(returned)"] == "1 value(s) not parseable as bool, e.g. 'maybe'"


# ---- corrections ---------------------------------------------------------------------------------


def test_a_label_flipped_on_re_send_is_counted_and_the_latest_wins(
    shop: DatasetSpec, store: Store, tmp_path: Path
) -> None:
    _events(store, shop, D0, tmp_path)
    first, later = D0 + timedelta(days=1), D0 + timedelta(days=3)
    _land_labels(store, shop, first, _outcomes(D0))
    assert _ingest(store, shop, "labels", first, tmp_path).label_report["changed"] == 0  # type: ignore[index]
    ids = _ids(D0)
    # two days later: a fraud -> legit correction, two flips the other way, one re-sent as it was
    resent = [(ids[0], "NO"), (ids[1], "YES"), (ids[2], "YES"), (ids[3], "NO")]
    _land_labels(store, shop, later, resent)
    outcome = _ingest(store, shop, "labels", later, tmp_path)
    assert outcome.success, outcome.reason()
    assert outcome.label_report is not None
    assert (outcome.label_report["resent"], outcome.label_report["changed"]) == (4, 3)
    assert _details(outcome)["labels_changed"].startswith("3 label(s) changed from an earlier arrival")
    paths = [store.published_file(shop.name, "labels", d) for d in (first, later)]
    latest = dict(zip(*read_labels(store, shop, paths).to_pydict().values(), strict=True))
    assert [latest[i] for i in ids[:4]] == ["NO", "YES", "YES", "NO"]
    # re-running the later day counts against the earlier arrivals only: the same counts
    again = _ingest(store, shop, "labels", later, tmp_path).label_report
    assert again is not None and (again["resent"], again["changed"]) == (4, 3)


# ---- ids the events never had -------------------------------------------------------------------


def test_unknown_ids_above_the_threshold_quarantine_the_batch(
    shop: DatasetSpec, store: Store, tmp_path: Path
) -> None:
    _events(store, shop, D0, tmp_path)
    arrival = D0 + timedelta(days=1)
    rows = [*_outcomes(D0), *[(f"x-{i}", "NO") for i in range(3)]]
    _land_labels(store, shop, arrival, rows)
    with pytest.raises(BatchRejected) as info:
        _ingest(store, shop, "labels", arrival, tmp_path)
    out = info.value.outcome
    assert [c.label for c in out.failed] == ["labels_match_events"]
    assert "labels_match_events: 3 of 23 label id(s) (13.0%) match no curated event" in str(info.value)
    assert "validation.max_unmatched_label_fraction" in str(info.value)
    assert out.label_report is not None and out.label_report["unmatched"] == 3
    assert not store.exists(store.published_file(shop.name, "labels", arrival))
    kept = store.list_files(store.quarantine_dir(shop.name, "labels", arrival) + "/files")
    assert [p.rpartition("/")[2] for p in kept] == ["labels.csv"]  # nothing lost

    # under a looser threshold the same batch is published, the count still in its report
    loose = _spec(validation={"max_unmatched_label_fraction": 0.2})
    outcome = _ingest(store, loose, "labels", arrival, tmp_path)
    assert outcome.success
    report = store.read_json(store.reports_dir(shop.name, "validation", arrival) + "/labels.json")
    assert report["outcome"]["label_report"]["unmatched"] == 3
    assert report["outcome"]["label_report"]["unmatched_fraction"] == pytest.approx(3 / 23, abs=1e-6)


def test_labels_of_events_quarantined_or_not_yet_ingested(
    shop: DatasetSpec, store: Store, tmp_path: Path
) -> None:
    arrival = D0 + timedelta(days=1)
    _land_events(store, shop, D0)
    _land_labels(store, shop, arrival, _outcomes(D0))
    # the events have landed but are not ingested yet: not judged (never a false quarantine)
    outcome = _ingest(store, shop, "labels", arrival, tmp_path)
    assert outcome.success and outcome.label_report is not None
    assert outcome.label_report["pending"] is True and outcome.label_report["unmatched"] == N
    assert "are not ingested yet: not judged" in _details(outcome)["labels_match_events"]
    # the events were quarantined: the labels cannot be matched, and the reason says why
    path = f"{store.landing_dir(shop.name, 'events', D0)}/orders.csv"
    store.write_bytes_atomic(path, b"order_id,ordered_at,amount,channel\nz,2026-03-02T12:00:00Z,-5,web\n")
    with pytest.raises(BatchRejected):
        _ingest(store, shop, "events", D0, tmp_path)
    with pytest.raises(BatchRejected) as info:
        _ingest(store, shop, "labels", arrival, tmp_path)
    assert f"the events of dt={D0} (the day these labels are due for) were quarantined" in str(info.value)


# ---- through training ---------------------------------------------------------------------------


def test_string_labels_without_event_time_train_a_model(store: Store, tmp_path: Path) -> None:
    spec = _spec()
    rng = np.random.default_rng(3)
    days = [D0 + timedelta(days=i) for i in range(3)]
    for day in days:
        _events(store, spec, day, tmp_path, n=40)
        events = pq.read_table(store.published_file(spec.name, "events", day))
        amount = np.asarray(events.column("amount"))
        returned = ["YES" if a + rng.normal(0, 1) > 4.5 else "NO" for a in amount]
        _land_labels(store, spec, day + timedelta(days=1), list(zip(_ids(day, 40), returned, strict=True)))
        assert _ingest(store, spec, "labels", day + timedelta(days=1), tmp_path).success
    window = load_window(store, spec)
    assert [p.dt for p in window.partitions] == days
    y = labels(window.table, spec)
    assert set(y.tolist()) == {0.0, 1.0}
    assert sum(p.positives for p in window.partitions) == int(y.sum())
    result = train(spec, window, Device("cpu", "test", 0, socket.gethostname()))
    assert result.best_iteration >= 0


def test_labels_are_in_flight_while_landed_and_due_but_not_validated(tmp_path: Path) -> None:
    """What a scoring of new days waits for (bounded), so that one monitor run reads the
    day's labels too: landed (complete, with a marker), due, not yet validated."""
    from nightshift.ingest import labels_in_flight

    spec = _spec()
    spec = spec.model_copy(update={"landing": spec.landing.model_copy(update={"complete_marker": "_DONE"})})
    store = Store(tmp_path.as_uri())
    arrival = D0 + timedelta(days=spec.label.delay_days)
    landed = store.landing_dir("shop", "labels", arrival)
    assert not labels_in_flight(store, spec, arrival)  # nothing landed
    store.write_bytes_atomic(landed + "/labels.csv", b"order_id,returned\n")
    assert not labels_in_flight(store, spec, arrival)  # not due: no events landed the day before
    store.write_bytes_atomic(store.landing_dir("shop", "events", D0) + "/events.csv", b"order_id\n")
    assert not labels_in_flight(store, spec, arrival)  # upstream has not finished the day
    store.write_bytes_atomic(landed + "/_DONE", b"")
    assert labels_in_flight(store, spec, arrival)
    store.write_json_atomic(store.reports_dir("shop", "validation", arrival) + "/labels.json", {})
    assert not labels_in_flight(store, spec, arrival)  # validated (published or quarantined)


def test_a_scoring_of_new_days_waits_for_their_labels_being_validated_bounded(tmp_path: Path) -> None:
    import threading
    import time

    from nightshift.airflow.tasks.score import await_labels

    spec = _spec()
    store = Store(tmp_path.as_uri())
    arrival = D0 + timedelta(days=spec.label.delay_days)
    store.write_bytes_atomic(store.landing_dir("shop", "events", D0) + "/events.csv", b"order_id\n")
    store.write_bytes_atomic(store.landing_dir("shop", "labels", arrival) + "/labels.csv", b"order_id\n")
    report = store.reports_dir("shop", "validation", arrival) + "/labels.json"
    t0 = time.monotonic()
    await_labels(store, spec, [D0], timeout_s=5)  # nothing in flight for that day: no wait
    assert time.monotonic() - t0 < 1
    timer = threading.Timer(1.5, store.write_json_atomic, (report, {}))
    timer.start()
    await_labels(store, spec, [arrival], timeout_s=20)  # until the ingest validated them
    waited = time.monotonic() - t0
    timer.join()
    assert 1.5 <= waited < 10, waited
    store.fs.delete_file(report)
    t0 = time.monotonic()
    await_labels(store, spec, [arrival], timeout_s=1.2)  # an ingest that never comes: bounded
    assert 1.2 <= time.monotonic() - t0 < 5
