"""The store's fault matrix: a disk that fills up while the ingest stages a batch, while it
publishes the partition, and while it copies a rejected batch into quarantine.

Each runs the ingest DAG (dag.test(), Airflow's retries included) against a real full disk: a
small tmpfs mounted for the test and filled with ballast, which is freed when the task reports
the infrastructure error (as an operator would), so that Airflow's retry finds space. Where
tmpfs cannot be mounted (not root), the same write raises ENOSPC once by injection instead. Each
ends with the store consistent: nothing half-written, nothing left under a temporary name, the
old partition intact until the retry replaces it, and one Asset event per published partition.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from nightshift.demo.datagen import Scenario, write_day
from nightshift.storage import Store

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 3, 2)
ROWS = 300
SEED = 11
DAG_ID = "nightshift_ingest.payments"
LEFTOVER = re.compile(r"\.(tmp|old)-[0-9a-f]{8}")  # what a write leaves under a temporary name


# ---- a disk that fills up ------------------------------------------------------------------
@contextlib.contextmanager
def tiny_disk(path: Path, size: str = "64m") -> Iterator[bool]:
    """A tmpfs of ``size`` mounted at ``path`` (``True``), or a plain folder where mounting is
    not allowed (``False``); unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=30)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` with a ballast file, then free ``leave`` bytes of it."""
    ballast = disk / ".ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    if leave:
        os.truncate(ballast, max(0, ballast.stat().st_size - leave))
    return ballast


class OnRetryableError(logging.Handler):
    """Calls ``then`` when the ingest task reports an infrastructure error (once)."""

    def __init__(self, then: Callable[[], None]) -> None:
        super().__init__(logging.ERROR)
        self.then, self.seen, self.message = then, 0, ""

    def emit(self, record: logging.LogRecord) -> None:
        if "infrastructure error" in record.getMessage() and not self.seen:
            self.seen, self.message = 1, record.getMessage()
            self.then()


@contextlib.contextmanager
def on_retryable_error(then: Callable[[], None]) -> Iterator[OnRetryableError]:
    logger = logging.getLogger("nightshift.airflow.tasks.ingest")
    handler = OnRetryableError(then)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def once(exc_when: Callable[..., bool]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a function so that its first call matching ``exc_when`` raises ENOSPC."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        hits: list[int] = []

        def inner(*args: Any, **kw: Any) -> Any:
            if not hits and exc_when(*args, **kw):
                hits.append(1)
                raise OSError(errno.ENOSPC, "No space left on device (injected)")
            return fn(*args, **kw)

        return inner

    return wrap


# ---- the ingest DAG and the store ------------------------------------------------------------
@pytest.fixture(scope="module")
def ingest_dag(airflow_db: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


@pytest.fixture(scope="module")
def base_store(spec: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store where DAY was delivered clean and ingested (built once, copied by each test)."""
    from nightshift.ingest import ingest_partition

    tmp = tmp_path_factory.mktemp("base")
    store = Store((tmp / "store").as_uri())
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    assert ingest_partition(store, spec, "events", DAY, work_dir=tmp / "work").success
    return tmp / "store"


def run(dag: Any) -> tuple[str, int]:
    dr = dag.test(logical_date=datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC), run_conf={"dt": str(DAY)})
    ti = next(t for t in dr.get_task_instances() if t.task_id == "ingest_events")
    return str(ti.state), int(ti.try_number)


def asset_events() -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as s:
        q = (
            select(func.count())
            .select_from(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "nightshift.payments.curated")
        )
        return int(s.scalar(q) or 0)


def leftovers(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if LEFTOVER.search(p.name)]


def rows(store: Store) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(store.published_file("payments", "events", DAY)).num_rows)


def copy_store(base: Path, to: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    shutil.copytree(base, to, dirs_exist_ok=True)
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", to.as_uri())
    return Store(to.as_uri())


# ---- the faults ------------------------------------------------------------------------------
def test_disk_full_while_staging_is_retried_and_publishes(
    ingest_dag: Any, base_store: Path, spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = copy_store(base_store, tmp_path / "store", monkeypatch)
    write_day(store, spec, DAY, 0, ROWS + 40, SEED, Scenario())  # a re-delivery, 40 rows more
    home = tmp_path / "home"
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(home))  # the staging folder is $NIGHTSHIFT_HOME/tmp
    seen: dict[str, Any] = {}
    with tiny_disk(home / "tmp", "64m") as mounted:
        free: Callable[[], None]  # frees the space (the ballast), or nothing to free
        if mounted:
            ballast = fill(home / "tmp")
            free = ballast.unlink
        else:
            import pyarrow.parquet as pq

            monkeypatch.setattr(
                pq.ParquetWriter, "write_batch", once(lambda *a, **k: True)(pq.ParquetWriter.write_batch)
            )
            free = lambda: None  # noqa: E731

        def operator_frees_space() -> None:
            seen.update(
                rows=rows(store),
                leftovers=leftovers(Path(store.root)),
                staging=sorted(os.listdir(home / "tmp")),
            )
            seen["quarantine"] = store.exists(store.path("quarantine"))
            free()

        n0 = asset_events()
        with on_retryable_error(operator_frees_space) as handler:
            state, tries = run(ingest_dag)

    assert handler.seen == 1, "the full disk was never reported"
    assert seen == {
        "rows": ROWS,
        "leftovers": [],
        "staging": [".ballast"] if mounted else [],
        "quarantine": False,
    }
    assert (state, tries) == ("success", 2)
    assert rows(store) == ROWS + 40 and asset_events() == n0 + 1
    assert leftovers(Path(store.root)) == [] and not store.exists(store.path("quarantine"))


def test_disk_full_while_publishing_is_retried_and_the_old_partition_stays(
    ingest_dag: Any, base_store: Path, spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's disk is full when the staged partition is moved in (no Data Docs for this
    batch size, so the partition is the first thing written)."""
    data = yaml.safe_load((ROOT / "datasets" / "payments.yaml").read_text())
    data.setdefault("validation", {})["data_docs_max_rows"] = 100
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "payments.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(tmp_path / "datasets"))
    disk = tmp_path / "disk"
    seen: dict[str, Any] = {}
    with tiny_disk(disk, "64m") as mounted:
        store = copy_store(base_store, disk / "store", monkeypatch)
        write_day(store, spec, DAY, 0, ROWS + 40, SEED, Scenario())
        old = Path(store.published_file("payments", "events", DAY)).read_bytes()
        free: Callable[[], None]  # frees the space (the ballast), or nothing to free
        if mounted:
            ballast = fill(disk)
            free = ballast.unlink
        else:
            monkeypatch.setattr(
                "nightshift.storage.os.replace", once(lambda src, dst: "curated" in str(dst))(os.replace)
            )
            free = lambda: None  # noqa: E731

        def operator_frees_space() -> None:
            seen.update(old=Path(store.published_file("payments", "events", DAY)).read_bytes() == old)
            seen.update(leftovers=leftovers(Path(store.root)))
            free()

        n0 = asset_events()
        with on_retryable_error(operator_frees_space) as handler:
            state, tries = run(ingest_dag)
        assert handler.seen == 1, "the full disk was never reported"
        assert f"disk full while publishing {store.uri(store.published_file('payments', 'events', DAY))}" in (
            handler.message
        ), handler.message
        assert seen == {"old": True, "leftovers": []}
        assert (state, tries) == ("success", 2)
        assert rows(store) == ROWS + 40 and asset_events() == n0 + 1
        assert leftovers(Path(store.root)) == []
        report = store.read_json(store.reports_dir("payments", "validation", DAY) + "/events.json")
        assert report["outcome"]["success"] and report["outcome"]["rows"] == ROWS + 40


def test_disk_full_while_quarantining_leaves_nothing_half_written(
    ingest_dag: Any, base_store: Path, spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad re-delivery, and the disk fills up after the rejected file is copied in and before
    the Data Docs are: no quarantine folder (not half of one), then the retry quarantines whole
    and fails for good (a data error is not retried again); the curated partition is untouched."""
    disk = tmp_path / "disk"
    seen: dict[str, Any] = {}
    with tiny_disk(disk, "64m") as mounted:
        store = copy_store(base_store, disk / "store", monkeypatch)
        write_day(store, spec, DAY, 0, ROWS, SEED, Scenario(), bad="null_spike")
        curated = Path(store.published_file("payments", "events", DAY))
        old = curated.read_bytes()
        landed = Path(store.landing_dir("payments", "events", DAY)) / "events.csv"
        free: Callable[[], None]  # frees the space (the ballast), or nothing to free
        if mounted:
            ballast = fill(disk, leave=landed.stat().st_size + (64 << 10))
            free = ballast.unlink
        else:
            monkeypatch.setattr(
                shutil, "copyfile", once(lambda src, dst, **_: "/quarantine/" in str(dst))(shutil.copyfile)
            )
            free = lambda: None  # noqa: E731
        qroot = Path(store.root) / "quarantine"

        def operator_frees_space() -> None:
            seen.update(
                quarantine=[str(p) for p in qroot.rglob("*") if p.is_file()] if qroot.exists() else []
            )
            seen.update(leftovers=leftovers(Path(store.root)), curated=curated.read_bytes() == old)
            free()

        n0 = asset_events()
        with on_retryable_error(operator_frees_space) as handler:
            state, tries = run(ingest_dag)
        assert handler.seen == 1, "the full disk was never reported"
        qdir = Path(store.quarantine_dir("payments", "events", DAY))
        assert f"disk full while publishing {store.uri(str(qdir))}" in handler.message, handler.message
        assert seen == {"quarantine": [], "leftovers": [], "curated": True}
        assert (state, tries) == ("failed", 2)
        assert curated.read_bytes() == old and asset_events() == n0
        files = sorted(str(p.relative_to(qdir)) for p in qdir.rglob("*") if p.is_file())
        assert "files/events.csv" in files and "validation.json" in files and "data_docs/index.html" in files
        assert (qdir / "files" / "events.csv").read_bytes() == landed.read_bytes()
        assert leftovers(Path(store.root)) == []
