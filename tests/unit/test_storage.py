"""The store on file://: layout, atomic writes, listing, publishing, and URL errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from nightshift.storage import StorageError, Store

DAY = date(2026, 1, 1)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "store").as_uri())


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---- construction and layout ---------------------------------------------------------------------


def test_file_store_root(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "store"
    store = Store(root.as_uri() + "/")
    assert store.scheme == "file"
    assert store.root == str(root)
    assert store.url == root.as_uri()  # trailing slash dropped
    assert root.is_dir()  # created on open
    assert repr(store) == f"Store({root.as_uri()!r})"


def test_plain_path_is_a_file_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "plain"))
    assert store.scheme == "file"
    assert store.root == str(tmp_path / "plain")


def test_layout(store: Store) -> None:
    r = store.root
    assert store.path("a", "/b/", "", "c") == f"{r}/a/b/c"
    assert store.dt_part(DAY) == "dt=2026-01-01"
    assert store.landing_dir("payments", "events", DAY) == f"{r}/landing/payments/events/dt=2026-01-01"
    assert store.landing_dir("payments", "labels", DAY) == f"{r}/landing/payments/labels/dt=2026-01-01"
    assert (
        store.published_file("payments", "events", DAY)
        == f"{r}/curated/payments/dt=2026-01-01/part-0.parquet"
    )
    assert (
        store.published_file("payments", "labels", DAY) == f"{r}/labels/payments/dt=2026-01-01/part-0.parquet"
    )
    assert store.quarantine_dir("payments", "labels", DAY) == f"{r}/quarantine/payments/labels/dt=2026-01-01"
    assert store.reports_dir("payments", "drift", DAY) == f"{r}/reports/payments/drift/dt=2026-01-01"
    assert store.uri(store.path("x")) == f"file://{r}/x"


def test_file_url_is_unquoted(tmp_path: Path) -> None:
    root = tmp_path / "my store"
    store = Store(root.as_uri())
    assert store.root == str(root)


@pytest.mark.parametrize("url", ["gs://bucket/prefix", "http://example.com/data", "ftp://host/x"])
def test_unsupported_scheme(url: str) -> None:
    with pytest.raises(StorageError, match="unsupported scheme") as info:
        Store(url)
    assert url in str(info.value)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix/only"])
def test_s3_without_bucket(url: str) -> None:
    with pytest.raises(StorageError, match="has no bucket") as info:
        Store(url)
    assert url.rstrip("/") in str(info.value)


# ---- reads and writes ----------------------------------------------------------------------------


def test_write_read_bytes_and_json(store: Store) -> None:
    path = store.path("reports", "x", "a.json")
    obj = {"b": 1, "a": [1.5, None, "x"], "when": DAY}
    store.write_json_atomic(path, obj)
    assert store.read_json(path) == {"a": [1.5, None, "x"], "b": 1, "when": "2026-01-01"}
    assert store.exists(path)
    assert store.is_file(path)
    assert not store.is_file(store.path("reports", "x"))
    assert store.size(path) == len(store.read_bytes(path))
    store.write_bytes_atomic(path, b"new")
    assert store.read_bytes(path) == b"new"
    assert _names(Path(store.path("reports", "x"))) == ["a.json"]


def test_missing_file(store: Store) -> None:
    path = store.path("nope.json")
    assert not store.exists(path)
    assert store.size(path) == 0
    with pytest.raises(FileNotFoundError):
        store.read_bytes(path)


def test_atomic_write_keeps_old_file_on_error(store: Store) -> None:
    path = store.path("curated", "d", "part-0.parquet")
    store.write_bytes_atomic(path, b"old content")
    with pytest.raises(RuntimeError, match="boom"), store.open_output_atomic(path) as out:
        out.write(b"half of the new")
        raise RuntimeError("boom")
    assert store.read_bytes(path) == b"old content"
    assert _names(Path(path).parent) == ["part-0.parquet"]  # no temp file left


def test_atomic_write_new_file_on_error(store: Store) -> None:
    path = store.path("new", "file.bin")
    with pytest.raises(KeyboardInterrupt), store.open_output_atomic(path) as out:
        out.write(b"x")
        raise KeyboardInterrupt
    assert not store.exists(path)
    assert _names(Path(path).parent) == []


def test_atomic_write_is_invisible_until_done(store: Store) -> None:
    path = store.path("dir", "f.txt")
    store.write_bytes_atomic(path, b"v1")
    with store.open_output_atomic(path) as out:
        out.write(b"v2")
        assert store.read_bytes(path) == b"v1"  # readers still see the old file
        assert store.list_files(store.path("dir")) == [path]  # the temp file is hidden
    assert store.read_bytes(path) == b"v2"


def test_upload(store: Store, tmp_path: Path) -> None:
    local = tmp_path / "local.bin"
    local.write_bytes(b"abc" * 1000)
    dst = store.path("up", "local.bin")
    store.upload_file_atomic(local, dst, chunk=100)
    assert store.read_bytes(dst) == b"abc" * 1000
    assert local.exists()  # upload copies


# ---- listing -------------------------------------------------------------------------------------


def test_list_files(store: Store) -> None:
    d = store.landing_dir("ds", "events", DAY)
    for name in ("b.csv", "a.csv", "notes.txt", ".tmp-123-a.csv", "_SUCCESS", ".hidden.csv"):
        store.write_bytes_atomic(f"{d}/{name}", b"x")
    store.makedirs(f"{d}/sub.csv")  # a folder is not a file
    store.write_bytes_atomic(f"{d}/sub.csv/inner.csv", b"x")
    assert store.list_files(d) == [f"{d}/a.csv", f"{d}/b.csv", f"{d}/notes.txt"]
    assert store.list_files(d, "*.csv") == [f"{d}/a.csv", f"{d}/b.csv"]
    assert store.list_files(d, "b*") == [f"{d}/b.csv"]
    assert store.list_files(d, "*.parquet") == []
    assert store.list_files(store.path("missing")) == []


def test_list_partitions(store: Store) -> None:
    base = store.path("landing", "ds", "events")
    for day in ("2026-01-03", "2026-01-01", "2025-12-31"):
        store.makedirs(f"{base}/dt={day}")
    store.makedirs(f"{base}/dt=garbage")
    store.makedirs(f"{base}/other")
    store.makedirs(f"{base}/dt=2026-01-05.tmp-abcd1234")  # a publish_dir staging folder
    store.write_bytes_atomic(f"{base}/dt=2026-01-02", b"a file, not a partition")
    assert store.list_partitions(base) == [date(2025, 12, 31), date(2026, 1, 1), date(2026, 1, 3)]
    assert store.list_partitions(store.path("missing")) == []


# ---- publishing ----------------------------------------------------------------------------------


def test_put_file_moves_and_replaces(store: Store, tmp_path: Path) -> None:
    target = store.published_file("ds", "events", DAY)
    first = tmp_path / "first.parquet"
    first.write_bytes(b"first")
    store.put_file(first, target)
    assert store.read_bytes(target) == b"first"
    assert not first.exists()  # moved, not copied
    second = tmp_path / "second.parquet"
    second.write_bytes(b"second")
    store.put_file(second, target)
    assert store.read_bytes(target) == b"second"
    assert _names(Path(target).parent) == ["part-0.parquet"]


def test_publish_dir_replaces_directory(store: Store, tmp_path: Path) -> None:
    src = store.landing_dir("ds", "events", DAY) + "/events.csv"
    store.write_bytes_atomic(src, b"a,b\n1,2\n")
    qdir = store.quarantine_dir("ds", "events", DAY)
    store.write_bytes_atomic(f"{qdir}/stale.json", b"old")
    store.write_bytes_atomic(f"{qdir}/files/old.csv", b"old")

    staged = tmp_path / "staged"
    (staged / "data_docs" / "sub").mkdir(parents=True)
    (staged / "validation.json").write_text('{"ok": false}')
    (staged / "data_docs" / "sub" / "index.html").write_text("<html/>")
    store.publish_dir(qdir, staged, copies={src: "files/events.csv"})

    q = Path(qdir)
    assert sorted(str(p.relative_to(q)) for p in q.rglob("*") if p.is_file()) == [
        "data_docs/sub/index.html",
        "files/events.csv",
        "validation.json",
    ]
    assert store.read_bytes(f"{qdir}/files/events.csv") == b"a,b\n1,2\n"
    assert store.read_json(f"{qdir}/validation.json") == {"ok": False}
    assert store.exists(src)  # copies, not moves
    assert _names(q.parent) == ["dt=2026-01-01"]  # no staging or old folders left


def test_publish_dir_copies_only_new_directory(store: Store) -> None:
    src = store.path("a.txt")
    store.write_bytes_atomic(src, b"A")
    target = store.path("q", "ds", "dt=2026-01-01")
    store.publish_dir(target, copies={src: "x/y/a.txt"})
    assert store.read_bytes(f"{target}/x/y/a.txt") == b"A"
    assert _names(Path(target).parent) == ["dt=2026-01-01"]


def test_publish_dir_failure_keeps_old(store: Store, tmp_path: Path) -> None:
    target = store.path("q", "dt=2026-01-01")
    store.write_bytes_atomic(f"{target}/keep.txt", b"keep")
    with pytest.raises(OSError):
        store.publish_dir(target, tmp_path, copies={store.path("does-not-exist"): "f"})
    assert store.read_bytes(f"{target}/keep.txt") == b"keep"
    assert _names(Path(target).parent) == ["dt=2026-01-01"]  # staging removed


def test_delete_dir(store: Store) -> None:
    d = store.path("x", "y")
    store.write_bytes_atomic(f"{d}/f", b"1")
    store.delete_dir(d)
    assert not store.exists(d)
    store.delete_dir(d)  # deleting twice is fine
