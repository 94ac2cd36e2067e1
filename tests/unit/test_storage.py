"""The store on file://: layout, atomic writes, listing, publishing, and URL errors."""

from __future__ import annotations

import errno
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from nightshift.storage import LEFTOVER_MAX_AGE_S, StorageError, Store, io_problem

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


# ---- faults: full disks, failed swaps, leftovers ---------------------------------------------------


def _enospc(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _tree(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_put_file_on_a_full_disk_leaves_no_temp_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = store.published_file("ds", "events", DAY)
    store.write_bytes_atomic(target, b"old partition")
    new = tmp_path / "new.parquet"
    new.write_bytes(b"new partition")
    monkeypatch.setattr("nightshift.storage.os.replace", _enospc)
    with pytest.raises(StorageError, match=r"disk full while publishing file://.*part-0\.parquet"):
        store.put_file(new, target)
    assert store.read_bytes(target) == b"old partition"
    assert _names(Path(target).parent) == ["part-0.parquet"]  # no .tmp-* left


def test_put_file_across_disks_cut_short_leaves_no_temp_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staged file is on another disk: it is copied, and the copy runs out of space."""
    import shutil

    target = store.published_file("ds", "events", DAY)
    store.write_bytes_atomic(target, b"old partition")
    new = tmp_path / "new.parquet"
    new.write_bytes(b"x" * 10_000)

    def copy_half(src: str, dst: str, **_: Any) -> None:
        Path(dst).write_bytes(Path(src).read_bytes()[:5000])
        raise OSError(errno.ENOSPC, "No space left on device")

    def cross_device(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(shutil, "copyfile", copy_half)  # what shutil.move copies with
    monkeypatch.setattr("nightshift.storage.os.rename", cross_device)
    with pytest.raises(StorageError, match="disk full"):
        store.put_file(new, target)
    assert store.read_bytes(target) == b"old partition"
    assert _names(Path(target).parent) == ["part-0.parquet"]
    assert new.read_bytes() == b"x" * 10_000  # nothing lost: the staged file is still there


def test_atomic_write_on_a_full_disk_is_a_storage_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = store.path("reports", "ds", "r.json")
    store.write_json_atomic(path, {"v": 1})
    real = store.fs

    class FullAtMove:  # pyarrow's file systems cannot be patched: wrap one
        def __getattr__(self, name: str) -> Any:
            return _enospc if name == "move" else getattr(real, name)

    monkeypatch.setattr(store, "fs", FullAtMove())
    with pytest.raises(StorageError, match=r"store file://.*: disk full while writing file://.*r\.json"):
        store.write_json_atomic(path, {"v": 2})
    assert store.read_json(path) == {"v": 1}
    assert _names(Path(path).parent) == ["r.json"]


def test_io_problem_names_disk_and_network() -> None:
    assert io_problem(OSError(errno.ENOSPC, "full"), remote=False) == "disk full"
    assert io_problem(OSError(errno.EDQUOT, "quota"), remote=True) == "disk full"
    assert io_problem(OSError(errno.EIO, "io"), remote=False) == "disk error"
    assert io_problem(OSError("connection reset"), remote=True) == "network error"


def test_publish_dir_cut_short_by_a_full_disk_keeps_the_old_directory(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    qdir = store.quarantine_dir("ds", "events", DAY)
    store.write_bytes_atomic(f"{qdir}/validation.json", b"old")
    staged = tmp_path / "staged"
    (staged / "data_docs").mkdir(parents=True)
    for i in range(3):
        (staged / "data_docs" / f"{i}.html").write_text("<html/>")
    real, calls = shutil.copyfile, []

    def fills_up(src: Any, dst: Any, **kw: Any) -> Any:
        calls.append(dst)
        if len(calls) == 2:
            Path(dst).write_bytes(b"half")
            _enospc()
        return real(src, dst, **kw)

    monkeypatch.setattr(shutil, "copyfile", fills_up)
    with pytest.raises(
        StorageError, match=r"disk full while publishing file://.*quarantine/ds/events/dt=2026"
    ):
        store.publish_dir(qdir, staged)
    assert len(calls) == 2
    assert _names(Path(qdir).parent) == ["dt=2026-01-01"]  # no staged folder left
    assert _tree(Path(qdir)) == ["validation.json"]
    assert store.read_bytes(f"{qdir}/validation.json") == b"old"


def test_replace_dir_never_leaves_the_directory_missing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step of a publish keeps the directory in place (checked after each rename)."""
    target = store.path("q", "dt=2026-01-01")
    store.write_bytes_atomic(f"{target}/a.txt", b"v0")
    real = os.rename
    missing: list[str] = []

    def watched(src: Any, dst: Any) -> None:
        real(src, dst)
        if not os.path.isdir(target):
            missing.append(f"after rename {src} -> {dst}")

    monkeypatch.setattr("nightshift.storage.os.rename", watched)
    for i in range(1, 4):
        (tmp_path / f"v{i}").mkdir()
        (tmp_path / f"v{i}" / "a.txt").write_text(f"v{i}")
        store.publish_dir(target, tmp_path / f"v{i}")
        assert store.read_bytes(f"{target}/a.txt") == f"v{i}".encode()
    assert not missing, missing
    assert _names(Path(target).parent) == ["dt=2026-01-01"]


def test_replace_dir_without_an_atomic_swap_puts_the_old_directory_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where renameat2 cannot swap (another OS, a file system without it): the old directory is
    set aside, and put back when the new one cannot be moved in; no ``.old-*`` is left."""
    from nightshift import storage

    target = store.path("q", "dt=2026-01-01")
    store.write_bytes_atomic(f"{target}/a.txt", b"old")
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    real = os.rename

    def staged_cannot_move(src: Any, dst: Any) -> None:
        if ".tmp-" in str(src):
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr("nightshift.storage.os.rename", staged_cannot_move)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "a.txt").write_text("new")
    with pytest.raises(StorageError, match="disk error while publishing"):
        store.publish_dir(target, tmp_path / "new")
    assert store.read_bytes(f"{target}/a.txt") == b"old"
    assert _names(Path(target).parent) == ["dt=2026-01-01"]

    monkeypatch.setattr("nightshift.storage.os.rename", real)
    store.publish_dir(target, tmp_path / "new")  # the fallback path, when it works
    assert store.read_bytes(f"{target}/a.txt") == b"new"
    assert _names(Path(target).parent) == ["dt=2026-01-01"]


def test_sweep_removes_old_leftovers_and_keeps_fresh_ones(store: Store) -> None:
    area = Path(store.path("quarantine", "ds", "events"))
    keep = [area / "dt=2026-01-01" / "validation.json", area / "dt=2026-01-01" / "files" / "a.csv"]
    old = [
        area / "dt=2026-01-01" / ".tmp-0123456789ab-validation.json",  # a killed atomic write
        area / "dt=2026-01-02.tmp-89abcdef" / "validation.json",  # a killed publish's staging
        area / "dt=2026-01-03.old-01234567" / "files" / "a.csv",  # a killed swap's old folder
    ]
    fresh = [
        area / "dt=2026-01-04" / ".tmp-aaaaaaaaaaaa-validation.json",
        area / "dt=2026-01-05.tmp-bbbbbbbb" / "validation.json",
    ]
    for f in keep + old + fresh:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    long_ago = time.time() - LEFTOVER_MAX_AGE_S - 60
    for f in keep + old:
        for p in (f, *f.parents):
            if p == area:
                break
            os.utime(p, (long_ago, long_ago))

    removed = store.sweep([str(area), store.path("missing")])

    assert sorted(removed) == sorted(
        [str(old[0]), str(area / "dt=2026-01-02.tmp-89abcdef"), str(area / "dt=2026-01-03.old-01234567")]
    )
    assert all(f.exists() for f in keep + fresh)
    assert not any(f.exists() for f in old)
    # a leftover folder with one fresh file inside is still in use
    busy = area / "dt=2026-01-06.tmp-cccccccc"
    (busy / "sub").mkdir(parents=True)
    (busy / "sub" / "x").write_bytes(b"x")
    os.utime(busy, (long_ago, long_ago))
    os.utime(busy / "sub", (long_ago, long_ago))
    assert store.sweep([str(area)]) == []
    later = store.sweep([str(area)], now=time.time() + LEFTOVER_MAX_AGE_S + 60)  # hours later
    assert sorted(later) == sorted([str(busy), str(fresh[0]), str(fresh[1].parent)])
    assert all(f.exists() for f in keep)
