"""The same ingest DAG against a real S3 server on 127.0.0.1, through the aws_default connection."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from nightshift.datagen import Scenario, write_day

DAY = date(2026, 4, 10)
ROWS = 500


@pytest.fixture
def s3_store(s3_store_url: str) -> Any:
    """The store the DAG will see, built the way tasks build it: from the connection."""
    from nightshift.airflow.store import get_store

    store = get_store()
    assert store.scheme == "s3"
    return store


def test_clean_day_and_labels_on_s3(s3_store: Any, spec: Any, run_day: Any) -> None:
    import pyarrow.parquet as pq

    write_day(s3_store, spec, DAY, 0, ROWS, 3, Scenario())
    arrival = DAY + timedelta(days=spec.label.delay_days)
    write_day(s3_store, spec, arrival, spec.label.delay_days, ROWS, 3, Scenario())

    assert run_day(DAY)["ingest_events"] == "success"
    states = run_day(arrival)
    assert states["ingest_events"] == "success" and states["ingest_labels"] == "success", states

    curated = s3_store.published_file("payments", "events", DAY)
    with s3_store.open_input(curated) as f:
        assert pq.read_table(f).num_rows == ROWS
    labels = s3_store.published_file("payments", "labels", arrival)
    assert s3_store.is_file(labels)
    # nothing left behind by the atomic writes
    leftovers = [
        i.path
        for i in s3_store.fs.get_file_info(
            __import__("pyarrow.fs").fs.FileSelector(s3_store.root, recursive=True)
        )
        if ".tmp-" in i.path
    ]
    assert not leftovers, leftovers

    # re-run replaces, never duplicates
    assert run_day(DAY)["ingest_events"] == "success"
    assert [p.rpartition("/")[2] for p in s3_store.list_files(curated.rpartition("/")[0])] == [
        "part-0.parquet"
    ]


def test_bad_batch_on_s3_is_quarantined_and_curated_untouched(s3_store: Any, spec: Any, run_day: Any) -> None:
    write_day(s3_store, spec, DAY, 0, ROWS, 3, Scenario())
    assert run_day(DAY)["ingest_events"] == "success"
    curated = s3_store.published_file("payments", "events", DAY)
    before = s3_store.read_bytes(curated)

    write_day(s3_store, spec, DAY, 0, ROWS, 3, Scenario(), bad="duplicate_ids")
    assert run_day(DAY)["ingest_events"] == "failed"

    assert s3_store.read_bytes(curated) == before
    qdir = s3_store.quarantine_dir("payments", "events", DAY)
    outcome = s3_store.read_json(qdir + "/validation.json")["outcome"]
    assert not outcome["success"]
    assert any(
        c["name"] == "expect_column_values_to_be_unique" and not c["success"] for c in outcome["checks"]
    )
    assert outcome["report_uri"].startswith("s3://")
    assert s3_store.exists(qdir + "/data_docs/index.html")
    assert s3_store.list_files(qdir + "/files") == [qdir + "/files/events.csv"]


def test_unreachable_store_names_the_url(monkeypatch: pytest.MonkeyPatch, spec: Any) -> None:
    from nightshift.ingest import ingest_partition
    from nightshift.storage import StorageError, StorageOptions, Store

    store = Store("s3://nowhere/x", StorageOptions("k", "s", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(StorageError, match="s3://nowhere/x"):
        ingest_partition(store, spec, "events", DAY)
