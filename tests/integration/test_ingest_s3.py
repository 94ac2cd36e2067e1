"""The same ingest DAG against a real S3 server on 127.0.0.1, through the aws_default connection."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from nightshift.demo.datagen import Scenario, write_day
from nightshift.storage import StorageError

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
    docs = s3_store.reports_dir("payments", "validation", DAY) + "/data_docs_events/index.html"
    assert s3_store.is_file(s3_store.published_path(docs))  # Data Docs: a published directory
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
    # a published directory on S3: one version prefix, named by the marker switched last
    version = s3_store.current_version(qdir)
    assert version and version.startswith(".v-")
    assert s3_store.published_path(qdir + "/validation.json") == f"{qdir}/{version}/validation.json"
    outcome = s3_store.read_json(s3_store.published_path(qdir + "/validation.json"))["outcome"]
    assert not outcome["success"]
    assert any(
        c["name"] == "expect_column_values_to_be_unique" and not c["success"] for c in outcome["checks"]
    )
    assert outcome["report_uri"] == s3_store.uri(qdir + "/validation.json")
    assert s3_store.is_file(s3_store.published_path(qdir + "/data_docs/index.html"))
    files = s3_store.published_path(qdir + "/files")
    assert s3_store.list_files(files) == [files + "/events.csv"]

    # the UI plugin serves the evidence through the marker, never the rejected files
    from nightshift.airflow.plugin import report_path

    rel = qdir[len(s3_store.root) + 1 :]
    served = report_path(s3_store, rel + "/validation.json")
    assert (
        served is not None and s3_store.read_json(served[0])["outcome"]["report_uri"] == outcome["report_uri"]
    )
    assert report_path(s3_store, rel + "/data_docs/index.html") is not None
    assert report_path(s3_store, rel + "/files/events.csv") is None
    assert report_path(s3_store, f"{rel}/{version}/validation.json") is None


def _children(store: Any, directory: str) -> list[Any]:
    import pyarrow.fs as pafs

    return sorted(store.fs.get_file_info(pafs.FileSelector(directory)), key=lambda i: i.base_name)


def _objects(store: Any, directory: str) -> list[str]:
    import pyarrow.fs as pafs

    infos = store.fs.get_file_info(pafs.FileSelector(directory, recursive=True))
    return sorted(i.path[len(directory) + 1 :] for i in infos if i.type == pafs.FileType.File)


class _Hooked:
    """The store's S3 file system, calling ``hook(path)`` before every object it writes or
    copies (pyarrow's file systems cannot be patched, so they are wrapped)."""

    def __init__(self, fs: Any, hook: Any) -> None:
        self.fs, self.hook = fs, hook

    def open_output_stream(self, path: str, *args: Any, **kw: Any) -> Any:
        self.hook(path)
        return self.fs.open_output_stream(path, *args, **kw)

    def copy_file(self, src: str, dst: str) -> None:
        self.hook(dst)
        self.fs.copy_file(src, dst)

    def move(self, src: str, dst: str) -> None:
        self.hook(dst)
        self.fs.move(src, dst)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fs, name)


def test_publish_dir_on_s3_is_readers_safe(
    s3_store: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers (through published_path) see the old directory whole until the marker switches,
    then the new one whole; a publish that dies midway leaves the old one and no new objects."""
    store = s3_store
    qdir = store.quarantine_dir("payments", "events", DAY)
    real_fs = store.fs

    def publish(tag: str, n: int = 3) -> None:
        local = tmp_path / tag
        (local / "data_docs").mkdir(parents=True)
        (local / "validation.json").write_text(f'{{"v": "{tag}"}}')
        for i in range(n):
            (local / "data_docs" / f"{i}.html").write_text(tag)
        store.publish_dir(qdir, local)

    def seen() -> dict[str, str]:
        out = {}
        for rel in ("validation.json", "data_docs/0.html", "data_docs/2.html"):
            try:
                out[rel] = store.read_bytes(store.published_path(f"{qdir}/{rel}")).decode()
            except FileNotFoundError:
                out[rel] = "missing"
        return out

    v1_whole = {"validation.json": '{"v": "v1"}', "data_docs/0.html": "v1", "data_docs/2.html": "v1"}
    publish("v1")
    v1 = store.current_version(qdir)
    assert seen() == v1_whole

    during: list[dict[str, str]] = []
    monkeypatch.setattr(store, "fs", _Hooked(real_fs, lambda path: during.append(seen())))
    publish("v2")
    monkeypatch.setattr(store, "fs", real_fs)
    assert len(during) >= 4 and all(d == v1_whole for d in during), during  # never half of v2, or none
    assert seen() == {"validation.json": '{"v": "v2"}', "data_docs/0.html": "v2", "data_docs/2.html": "v2"}
    v2 = store.current_version(qdir)
    assert v2 != v1 and not any(o.startswith(str(v1)) for o in _objects(store, qdir))

    writes: list[str] = []

    def dies(path: str) -> None:
        writes.append(path)
        if len(writes) == 3:
            raise OSError("connection reset by peer")

    monkeypatch.setattr(store, "fs", _Hooked(real_fs, dies))
    with pytest.raises(
        StorageError, match=r"network error while publishing s3://.*/quarantine/payments/events/dt="
    ):
        publish("v3")
    monkeypatch.setattr(store, "fs", real_fs)
    assert store.current_version(qdir) == v2
    assert seen()["data_docs/2.html"] == "v2"
    assert {o.split("/")[0] for o in _objects(store, qdir)} == {v2, "_CURRENT.json"}  # no v3 objects

    store.delete_dir(qdir)  # a day re-delivered valid leaves quarantine: marker first, then the rest
    assert not store.exists(qdir) and store.current_version(qdir) is None


def test_the_s3_sweep_takes_old_unnamed_versions_and_temp_objects_only(s3_store: Any, tmp_path: Any) -> None:
    """S3 cannot back-date objects: the sweep's clock is moved forward instead."""
    import time

    from nightshift.storage import LEFTOVER_MAX_AGE_S

    store = s3_store
    qdir = store.quarantine_dir("payments", "events", DAY)
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "validation.json").write_text("{}")
    store.publish_dir(qdir, tmp_path / "evidence")
    current = store.current_version(qdir)
    orphan = f"{qdir}/.v-20260101T000000-deadbeef"  # a publish killed before its switch
    store.write_bytes_atomic(f"{orphan}/validation.json", b"{}")
    tmp_obj = store.path("curated", "payments", f"dt={DAY}", ".tmp-0123456789ab-part-0.parquet")
    store.fs.open_output_stream(tmp_obj).close()  # a killed atomic write
    kept = store.path("curated", "payments", f"dt={DAY}", "part-0.parquet")
    store.write_bytes_atomic(kept, b"data")
    areas = [store.path("curated", "payments"), store.path("quarantine", "payments", "events")]

    assert store.sweep(areas) == []  # all fresh: may belong to a running attempt
    later = time.time() + LEFTOVER_MAX_AGE_S + 60
    assert sorted(store.sweep(areas, now=later)) == sorted([tmp_obj, orphan])
    assert store.current_version(qdir) == current
    assert _objects(store, qdir) == [f"{current}/validation.json", "_CURRENT.json"]
    assert store.read_bytes(kept) == b"data"


def test_unreachable_store_names_the_url(monkeypatch: pytest.MonkeyPatch, spec: Any) -> None:
    from nightshift.ingest import ingest_partition
    from nightshift.storage import StorageError, StorageOptions, Store

    store = Store("s3://nowhere/x", StorageOptions("k", "s", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(StorageError, match="s3://nowhere/x"):
        ingest_partition(store, spec, "events", DAY)
