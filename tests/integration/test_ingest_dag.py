"""The ingest DAG end to end with dag.test(): clean days, labels, every bad-batch class."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelkit import asset_events, links_of
from nightshift.demo.datagen import BAD_BATCH_KINDS, Scenario, bad_batch_column, write_day
from nightshift.storage import Store

DAY = date(2026, 3, 2)
SEED = 7
ROWS = 600


def _fresh_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    url = (tmp_path / "store").as_uri()
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", url)
    return Store(url)


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory: pytest.TempPathFactory, spec: Any, ingest_dag: Any) -> Path:
    """A store where DAY was delivered clean and ingested by the DAG (built once)."""
    root = tmp_path_factory.mktemp("clean") / "store"
    store = Store(root.as_uri())
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    mp = pytest.MonkeyPatch()
    mp.setenv("NIGHTSHIFT_STORE_URL", store.url)
    try:
        dr = ingest_dag.test(logical_date=None, run_conf={"dt": DAY.isoformat()})
        states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    finally:
        mp.undo()
    assert states["ingest_events"] == "success", states
    return root


def test_clean_day_publishes_and_rerun_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: Any, run_day: Any
) -> None:
    import pyarrow.parquet as pq

    from nightshift.ingest import arrow_schema

    store = _fresh_store(tmp_path, monkeypatch)
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    states = run_day(DAY)
    assert states == {"ingest_events": "success", "ingest_labels": "skipped"}
    curated = store.published_file("payments", "events", DAY)
    table = pq.read_table(curated)
    assert table.num_rows == ROWS
    assert table.schema.equals(arrow_schema(spec, "events"), check_metadata=False)
    report = store.read_json(store.reports_dir("payments", "validation", DAY) + "/events.json")
    assert report["outcome"]["success"] is True and report["validated_at"]
    # a small valid batch has GX Data Docs too, linked from the task (served by the UI plugin)
    docs = store.reports_dir("payments", "validation", DAY) + "/data_docs_events/index.html"
    assert report["outcome"]["data_docs_uri"] == store.uri(docs) and store.exists(docs)
    assert links_of(run_day.last, "ingest_events") == {
        "GX Data Docs": "http://127.0.0.1:8080/nightshift/store/reports/payments/validation/"
        f"dt={DAY}/data_docs_events/index.html"
    }

    # a re-run replaces the partition: still one file, same rows, no duplicates
    assert run_day(DAY)["ingest_events"] == "success"
    files = store.list_files(curated.rpartition("/")[0], "*")
    assert [f.rpartition("/")[2] for f in files] == ["part-0.parquet"]
    again = pq.read_table(curated)
    assert again.num_rows == ROWS
    assert again.column("payment_id").to_pylist() == table.column("payment_id").to_pylist()


def test_labels_land_later_and_are_ingested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: Any, run_day: Any
) -> None:
    import pyarrow.parquet as pq

    store = _fresh_store(tmp_path, monkeypatch)
    delay = spec.label.delay_days
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    arrival = DAY + timedelta(days=delay)
    write_day(store, spec, arrival, delay, ROWS, SEED, Scenario())
    states = run_day(arrival)
    assert states["ingest_labels"] == "success", states
    labels = pq.read_table(store.published_file("payments", "labels", arrival))
    events = pq.read_table(store.published_file("payments", "events", arrival))
    assert labels.num_rows == ROWS
    assert set(labels.column_names) == {"payment_id", "event_time", "is_fraud"}
    assert set(labels.column("is_fraud").to_pylist()) <= {0, 1}
    # the labels that arrive on `arrival` are for the events of DAY, not of `arrival`
    assert not set(labels.column("payment_id").to_pylist()) & set(events.column("payment_id").to_pylist())


def test_a_day_starts_training_and_monitoring_only_when_they_are_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: Any, run_day: Any
) -> None:
    """No run is started only to find nothing to do: the *train_due* event only while there is
    no champion, the *labels* event only when no scoring of the day follows (its monitor run
    reads the labels then); the *curated* event always."""
    from nightshift import registry

    store = _fresh_store(tmp_path, monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    delay = spec.label.delay_days
    arrival = DAY + timedelta(days=delay)
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())
    write_day(store, spec, arrival, delay, ROWS, SEED, Scenario())

    def events(asset: str) -> list[dict[str, Any]]:
        return asset_events(f"nightshift.payments.{asset}", run_day.last)

    # no champion; the day's events published, its scoring to come
    assert set(run_day(arrival).values()) == {"success"}
    assert [e["dt"] for e in events("curated")] == [arrival.isoformat()]
    (due,) = events("train_due")
    assert (due["dt"], due["due"]) == (arrival.isoformat(), "no champion yet (no registry yet)")
    # the labels task waits for an events branch that is queued or running (as the scheduler
    # has it); dag.test() runs ready tasks one at a time in no fixed order, and an events task
    # it has not started yet has not decided: then the labels cannot know a scoring follows
    tis = {ti.task_id: ti for ti in run_day.last.get_task_instances()}
    events_first = tis["ingest_events"].end_date <= tis["ingest_labels"].start_date
    assert [e["dt"] for e in events("labels")] == ([] if events_first else [arrival.isoformat()])

    # the day scored already (a re-delivery): its labels start a monitor run of their own
    store.write_bytes_atomic(store.predictions_file("payments", arrival), b"scored")
    assert set(run_day(arrival).values()) == {"success"}
    assert [e["dt"] for e in events("labels")] == [arrival.isoformat()]

    # a champion serves: new data starts no training run (monitoring drives retraining)
    client = registry.configure()
    experiment = client.create_experiment("stand-in", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.log_text(run_id, "stand-in", "model/MLmodel")
    client.create_registered_model("nightshift-payments")
    client.create_model_version("nightshift-payments", f"runs:/{run_id}/model", run_id)
    client.set_registered_model_alias("nightshift-payments", "champion", "1")
    assert set(run_day(arrival).values()) == {"success"}
    assert len(events("curated")) == 1 and events("train_due") == []


def _expected_names(kind: str, column: str | None) -> list[str]:
    """What the rejection must name for each bad-batch class."""
    return {
        "missing_column": ["expect_table_columns_to_match_set", str(column)],
        "extra_column": ["expect_table_columns_to_match_set", str(column)],
        "type_change": [f"values_castable({column})", "n/a"],
        "null_spike": [f"expect_column_values_to_not_be_null({column})"],
        "out_of_range": [f"expect_column_values_to_be_between({column})"],
        "duplicate_ids": ["expect_column_values_to_be_unique(payment_id)"],
        "empty_file": ["file_not_empty", "0 bytes"],
        "truncated_file": ["file_readable", "corrupt or truncated"],
        "wrong_encoding": ["file_encoding", "UTF-8"],
        "wrong_partition": ["expect_column_values_to_be_between(event_time)"],
    }[kind]


@pytest.mark.parametrize("kind", BAD_BATCH_KINDS)
def test_bad_batch_is_quarantined(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: Any,
    clean_store: Path,
    run_day: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A bad re-delivery of an ingested day: quarantined with evidence, the task fails
    naming the problem, no retries, curated data byte-identical, no asset event."""
    root = tmp_path / "store"
    shutil.copytree(clean_store, root)
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", root.as_uri())
    store = Store(root.as_uri())
    curated = store.published_file("payments", "events", DAY)
    before = Path(curated).read_bytes()
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario(), bad=kind)
    capfd.readouterr()

    states = run_day(DAY)

    assert states["ingest_events"] == "failed", states
    out = capfd.readouterr()
    log = out.out + out.err
    column = bad_batch_column(spec, kind, SEED, 0)
    names = _expected_names(kind, column)
    for name in names:
        assert name in log, f"task log does not name {name!r}"
    assert "quarantined" in log and "validation.json" in log

    assert Path(curated).read_bytes() == before, "curated partition changed"
    qdir = store.quarantine_dir("payments", "events", DAY)
    result = store.read_json(qdir + "/validation.json")
    outcome = result["outcome"]
    assert outcome["success"] is False
    failed = " ".join(
        f"{c['name']}({c['column']}) {c['details']}" if c["column"] else f"{c['name']} {c['details']}"
        for c in outcome["checks"]
        if not c["success"]
    )
    for name in names:
        assert name in failed
    assert store.list_files(qdir + "/files"), "the rejected files were not kept"
    if outcome["data_docs_uri"]:
        assert store.exists(qdir + "/data_docs/index.html")
    # the validation report of the day now says quarantined, and points at the evidence
    report = store.read_json(store.reports_dir("payments", "validation", DAY) + "/events.json")
    assert report["outcome"]["success"] is False


def test_rejected_batch_fails_without_retry_and_emits_no_asset_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: Any, run_day: Any
) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    def events() -> int:
        with create_session() as s:
            q = (
                select(func.count())
                .select_from(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.name == "nightshift.payments.curated")
            )
            return int(s.scalar(q) or 0)

    store = _fresh_store(tmp_path, monkeypatch)
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario(), bad="null_spike")
    n0 = events()
    states = run_day(DAY)
    assert states["ingest_events"] == "failed"
    assert events() == n0
    assert not store.exists(store.published_file("payments", "events", DAY))

    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario())  # upstream re-delivers a good file
    assert run_day(DAY)["ingest_events"] == "success"
    assert events() == n0 + 1
    assert not store.exists(store.quarantine_dir("payments", "events", DAY))


def test_a_quarantine_notifies_the_webhook_with_a_link(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: Any,
    run_day: Any,
    webhook_sink: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook_sink
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", url)
    store = _fresh_store(tmp_path, monkeypatch)
    write_day(store, spec, DAY, 0, ROWS, SEED, Scenario(), bad="null_spike")
    assert run_day(DAY)["ingest_events"] == "failed"
    notes = [n for n in received if n["task_id"] == "ingest_events"]
    assert len(notes) == 1, received
    note = notes[0]
    assert note["event"] == "quarantine" and note["dataset"] == "payments"
    assert "expect_column_values_to_not_be_null" in note["message"] and "Data Docs" in note["message"]
    assert note["links"]["task"].endswith("/tasks/ingest_events") and note["run_id"] in note["links"]["task"]
    # the failed task still links the quarantined batch's Data Docs
    docs = links_of(run_day.last, "ingest_events")["GX Data Docs"]
    assert docs.endswith(f"/nightshift/store/quarantine/payments/events/dt={DAY}/data_docs/index.html")


def _try_numbers(dr: Any) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in dr.get_task_instances()}


def test_a_full_disk_while_staging_is_retried_and_the_retry_publishes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: Any,
    clean_store: Path,
    run_day: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ENOSPC once from the staging writer: not a bad batch (no quarantine, no "corrupt"), the
    task is retried by Airflow and the retry publishes; the old partition stays until then."""
    import errno

    import pyarrow.parquet as pq

    root = tmp_path / "store"
    shutil.copytree(clean_store, root)
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", root.as_uri())
    store = Store(root.as_uri())
    write_day(store, spec, DAY, 0, ROWS + 50, SEED, Scenario())  # a re-delivery, 50 rows more
    real, calls = pq.ParquetWriter.write_batch, []

    def full_once(self: Any, *args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            assert pq.read_metadata(store.published_file("payments", "events", DAY)).num_rows == ROWS
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kw)

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", full_once)
    capfd.readouterr()
    states = run_day(DAY)

    assert states["ingest_events"] == "success", states
    assert _try_numbers(run_day.last)["ingest_events"] == 2
    log = "".join(capfd.readouterr()) + caplog.text
    assert "disk full while staging events.csv" in log and "infrastructure error, to be retried" in log
    assert "corrupt" not in log
    assert pq.read_metadata(store.published_file("payments", "events", DAY)).num_rows == ROWS + 50
    assert not store.exists(store.path("quarantine"))


def test_a_repeated_column_name_is_a_data_error_not_retried(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: Any,
    run_day: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    store = _fresh_store(tmp_path, monkeypatch)
    landed = write_day(store, spec, DAY, 0, 50, SEED, Scenario())["events"].removeprefix("file://")
    header, _, body = store.read_bytes(landed).partition(b"\n")
    store.write_bytes_atomic(landed, header + b",amount\n" + body.replace(b"\n", b",1\n"))
    capfd.readouterr()
    states = run_day(DAY)
    assert states["ingest_events"] == "failed"
    assert _try_numbers(run_day.last)["ingest_events"] == 1
    log = "".join(capfd.readouterr())
    assert "events.csv: column name(s) repeated in the header: 'amount' at columns" in log
    qdir = store.quarantine_dir("payments", "events", DAY)
    assert store.read_bytes(qdir + "/files/events.csv") == store.read_bytes(landed)


def test_a_local_day_through_the_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: Path, spec: Any
) -> None:
    """A dataset on Chicago's days, delivered on the 25-hour day clocks go back: the schedule's
    interval is the local day, the run (no ``dt``) ingests that local date with its evening
    (after midnight UTC), and labels due the same day wait for the events and match them."""
    from datetime import UTC, datetime

    import pyarrow.parquet as pq
    from airflow.dag_processing.dagbag import DagBag

    from nightshift.spec import load_spec, partition_bounds

    root = Path(__file__).resolve().parents[2]
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    text = (root / "datasets" / "payments.yaml").read_text()
    text = text.replace("name: payments", "name: chicago").replace("delay_days: 3", "delay_days: 0")
    (datasets / "chicago.yaml").write_text(text + "partitioning: {timezone: America/Chicago}\n")
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(datasets))
    monkeypatch.delenv("NIGHTSHIFT_DATASETS", raising=False)
    monkeypatch.delenv("NIGHTSHIFT_INGEST_SCHEDULE", raising=False)
    chicago = load_spec(datasets / "chicago.yaml")
    store = _fresh_store(tmp_path, monkeypatch)
    fall = date(2026, 11, 1)
    start, end = partition_bounds(fall, chicago.partitioning.tz)
    assert end - start == timedelta(hours=25)
    write_day(store, chicago, fall, 0, ROWS, SEED, Scenario())

    bag = DagBag(str(root / "dags" / "ingest.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["nightshift_ingest.chicago"]
    # a run at local midnight after the day (06:00 UTC): its interval is the local day before
    dr = dag.test(logical_date=datetime(2026, 11, 2, 6, tzinfo=UTC))
    assert (dr.data_interval_start, dr.data_interval_end) == (start, end)
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states == dict.fromkeys(("ingest_events", "ingest_labels"), "success")

    times = pq.read_table(store.published_file("chicago", "events", fall)).column("event_time").to_pylist()
    assert len(times) == ROWS and all(start <= t < end for t in times)
    assert any(t >= datetime(2026, 11, 2, tzinfo=UTC) for t in times)  # the local evening is the day's
    report = store.read_json(store.reports_dir("chicago", "validation", fall) + "/labels.json")
    assert report["outcome"]["label_report"]["unmatched"] == 0
    assert report["outcome"]["label_report"]["pending"] is False  # the events were ingested first
