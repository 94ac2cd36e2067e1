"""The landing wait: the ingest task defers instead of holding a slot, the trigger fires on arrival."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pytest

from nightshift.storage import Store

DAY = date(2026, 5, 1)


def _deliver_later(store: Store, delay: float) -> threading.Timer:
    def write() -> None:
        store.write_bytes_atomic(store.landing_dir("payments", "events", DAY) + "/events.csv", b"a,b\n1,2\n")

    timer = threading.Timer(delay, write)
    timer.start()
    return timer


def test_trigger_fires_when_files_land(tmp_path: Path) -> None:
    from nightshift.airflow.sensors import LandingTrigger

    store = Store((tmp_path / "store").as_uri())
    trigger = LandingTrigger("payments", "events", DAY.isoformat(), store_url=store.url, poke_interval=0.2)
    classpath, kwargs = trigger.serialize()
    assert classpath == "nightshift.airflow.sensors.LandingTrigger"
    assert LandingTrigger(**kwargs).serialize() == (classpath, kwargs)

    timer = _deliver_later(store, 1.0)

    async def first_event() -> Any:
        return await asyncio.wait_for(anext(trigger.run()), timeout=30)

    event = asyncio.run(first_event())
    timer.join()
    assert event.payload["status"] == "found"
    assert event.payload["files"] == [store.uri(store.landing_dir("payments", "events", DAY) + "/events.csv")]


def _operator(kind: Literal["events", "labels"] = "events", **kwargs: Any) -> Any:
    """The ingest task of ``kind`` for ``DAY``, its ingest replaced by a record of the call (what
    is tested here is when it waits and when it ingests; the ingest runs in the DAG tests)."""
    from nightshift.airflow.sensors import LandingIngestOperator

    class Recording(LandingIngestOperator):
        ingested: list[date] = []

        def _ingest(self, context: Any, day: date) -> dict[str, Any]:
            self.ingested.append(day)
            return {"dt": day.isoformat()}

    return Recording(task_id=f"ingest_{kind}", dataset="payments", kind=kind, dt=DAY.isoformat(), **kwargs)


def test_ingest_defers_when_nothing_landed_and_ingests_once_it_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from nightshift.airflow.sensors import LandingTrigger

    store = Store((tmp_path / "store").as_uri())
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", store.url)
    task = _operator()
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, LandingTrigger) and (trigger.dataset, trigger.kind) == ("payments", "events")
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() == 12 * 3600
    assert task.ingested == []

    store.write_bytes_atomic(store.landing_dir("payments", "events", DAY) + "/events.csv", b"x\n")
    assert task.execute({}) == {"dt": DAY.isoformat()}  # landed: ingested at once, no deferral
    found = {"status": "found", "files": [store.uri(store.landing_dir("payments", "events", DAY))]}
    assert task.execute_complete({}, found) == {"dt": DAY.isoformat()}  # resumed by the trigger
    assert task.ingested == [DAY, DAY]


def test_a_wait_that_times_out_fails_naming_the_folder_without_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.bases.operator import TriggerFailureReason
    from airflow.sdk.exceptions import AirflowFailException

    store = Store((tmp_path / "store").as_uri())
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", store.url)
    task = _operator()
    where = store.uri(store.landing_dir("payments", "events", DAY))
    with pytest.raises(
        AirflowFailException, match=f"no events files for payments dt={DAY} landed in {where}"
    ):
        task.resume_execution("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, {})
    assert task.ingested == []


def test_labels_skip_when_none_are_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    store = Store((tmp_path / "store").as_uri())
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", store.url)
    task = _operator("labels", skip_unless_due=True)
    with pytest.raises(AirflowSkipException, match="no labels due"):
        task.execute({})
    assert task.ingested == []


def test_dag_run_waits_for_late_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: Any,
    ingest_dag: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Through dag.test(): the run starts before the file exists and completes once it lands."""
    from nightshift.demo.datagen import Scenario, write_day

    store = Store((tmp_path / "store").as_uri())
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", store.url)
    task = ingest_dag.get_task("ingest_events")
    monkeypatch.setattr(task, "poke_interval", 0.5)
    landed = threading.Event()

    def deliver_once_deferred() -> None:
        # deliver once the trigger has polled and found nothing (or after 60 s, so that a
        # task that never defers fails the assertion below instead of hanging the test)
        deadline = time.monotonic() + 60
        while "no events files for payments" not in log_so_far and time.monotonic() < deadline:
            if landed.wait(0.2):
                return
        write_day(store, spec, DAY, 0, 300, 1, Scenario())

    log_so_far = ""
    capfd.readouterr()
    worker = threading.Thread(target=deliver_once_deferred)
    worker.start()
    try:

        def poll_log() -> None:
            nonlocal log_so_far
            while not landed.is_set():
                out = capfd.readouterr()
                log_so_far += out.out + out.err
                time.sleep(0.2)

        poller = threading.Thread(target=poll_log)
        poller.start()
        dr = ingest_dag.test(logical_date=None, run_conf={"dt": DAY.isoformat()})
    finally:
        landed.set()
        worker.join()
        poller.join()
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert "no events files for payments" in log_so_far, "the ingest never deferred"
    assert states["ingest_events"] == "success", states
    assert set(states) == {"ingest_events", "ingest_labels"}, "one task per batch, no sensor before it"


# ---- landing.complete_marker: a day delivered in several files -----------------------------------

ROOT = Path(__file__).resolve().parents[2]
MARKER = "_SUCCESS"


def _marker_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The demo spec with ``landing.complete_marker: _SUCCESS``, as the tasks find it."""
    from nightshift.spec import load_spec

    text = (ROOT / "datasets" / "payments.yaml").read_text(encoding="utf-8")
    old = "landing:\n  format: csv\n"
    assert old in text
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "payments.yaml").write_text(text.replace(old, old + f"  complete_marker: {MARKER}\n"))
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(datasets))
    return load_spec(datasets / "payments.yaml")


def _part(store: Store, name: str, body: bytes = b"a,b\n1,2\n") -> str:
    path = store.landing_dir("payments", "events", DAY) + "/" + name
    store.write_bytes_atomic(path, body)
    return store.uri(path)


def test_trigger_waits_for_the_marker_not_the_first_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from nightshift.airflow.sensors import LandingTrigger

    store = Store((tmp_path / "store").as_uri())
    trigger = LandingTrigger(
        "payments", "events", DAY.isoformat(), store_url=store.url, poke_interval=0.1, marker=MARKER
    )
    classpath, kwargs = trigger.serialize()
    assert kwargs["marker"] == MARKER and LandingTrigger(**kwargs).serialize() == (classpath, kwargs)
    parts: list[str] = []

    async def first_event() -> Any:  # a day in two files, a while apart, then the marker
        task = asyncio.ensure_future(anext(trigger.run()))
        await asyncio.sleep(0.3)
        parts.append(_part(store, "part-1.csv"))
        await asyncio.sleep(0.8)
        assert not task.done(), "the trigger fired on the first file"
        parts.append(_part(store, "part-2.csv"))
        await asyncio.sleep(0.8)
        assert not task.done(), "the trigger fired before the marker"
        _part(store, MARKER, b"")
        return await asyncio.wait_for(task, timeout=30)

    capfd.readouterr()
    event = asyncio.run(first_event())
    out = capfd.readouterr()
    log = out.out + out.err
    # fired only once the marker landed, with every part and without the marker itself
    assert event.payload == {"status": "found", "files": parts}
    assert "but not '_SUCCESS' (landing.complete_marker) yet" in log, log
    assert "1 file(s) landed" in log and "2 file(s) landed" in log


def test_ingest_defers_until_the_marker_lands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from nightshift.airflow.sensors import LandingTrigger

    _marker_spec(tmp_path, monkeypatch)
    store = Store((tmp_path / "store").as_uri())
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", store.url)
    task = _operator()
    _part(store, "part-1.csv")
    _part(store, "part-2.csv")
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, LandingTrigger) and trigger.marker == MARKER
    assert task.ingested == []
    _part(store, MARKER, b"")
    assert task.execute({}) == {"dt": DAY.isoformat()}
    assert task.ingested == [DAY]


def test_ingest_refuses_a_day_without_its_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manual or backfill ingest of a day still being delivered fails, retryably, and writes
    nothing; once the marker is there, both parts are ingested as one batch."""
    from nightshift.demo.datagen import Scenario, write_day
    from nightshift.ingest import LandingIncomplete, NoLandingData, ingest_partition

    spec = _marker_spec(tmp_path, monkeypatch)
    store = Store((tmp_path / "store").as_uri())
    rows = 300
    write_day(store, spec, DAY, 0, rows, 7, Scenario())
    whole = Path(store.landing_dir(spec.name, "events", DAY)) / "events.csv"
    header, *lines = whole.read_text(encoding="utf-8").splitlines(keepends=True)
    whole.unlink()
    _part(store, "part-1.csv", (header + "".join(lines[:100])).encode())

    with pytest.raises(LandingIncomplete, match=r"1 file\(s\) landed .* but not '_SUCCESS'") as info:
        ingest_partition(store, spec, "events", DAY)
    assert isinstance(info.value, NoLandingData)  # not a verdict on the data: the task retries
    for area in ("curated", "quarantine", "reports"):
        assert not store.exists(store.path(area)), f"an incomplete day wrote {area}/"

    _part(store, "part-2.csv", (header + "".join(lines[100:])).encode())
    _part(store, MARKER, b"")
    outcome = ingest_partition(store, spec, "events", DAY)
    assert outcome.success and outcome.rows == rows
    assert [f.rpartition("/")[2] for f in outcome.files] == ["part-1.csv", "part-2.csv"]
