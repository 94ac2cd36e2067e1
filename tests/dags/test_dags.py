"""Every DAG file imports cleanly, touches nothing outside at parse time, and obeys policy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "great_expectations",
    "xgboost",
    "mlflow",
    "evidently",
    "sklearn",
    "boto3",
)


def _dagbag(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parse the dags folder with network, connections and variables forbidden."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"parse-time access to the outside: {args!r:.200}")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    from airflow.sdk import BaseHook, Connection, Variable

    monkeypatch.setattr(Variable, "get", forbidden)
    monkeypatch.setattr(Connection, "get", forbidden)
    monkeypatch.setattr(BaseHook, "get_connection", forbidden)
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(ROOT / "dags"))


@pytest.fixture(scope="module")
def dagbag() -> Any:
    mp = pytest.MonkeyPatch()
    try:
        yield _dagbag(mp)
    finally:
        mp.undo()


def test_dag_files_exist() -> None:
    assert DAG_FILES, "no DAG files in dags/"


def test_no_import_errors(dagbag: Any) -> None:
    assert not dagbag.import_errors, dagbag.import_errors


def test_every_dataset_has_an_ingest_dag(dagbag: Any) -> None:
    from nightshift.airflow.dagconfig import dataset_names

    names = dataset_names()
    assert "payments" in names
    for name in names:
        assert f"nightshift_ingest.{name}" in dagbag.dags


def test_policy(dagbag: Any) -> None:
    from nightshift.airflow.taskstart import log_inherited

    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not dag_id.startswith("nightshift_"):
            problems.append(f"{dag_id}: id must start with nightshift_")
        if not dag.doc_md or len(dag.doc_md.strip()) < 40:
            problems.append(f"{dag_id}: doc_md missing")
        if "nightshift" not in dag.tags or not any(t.startswith("dataset:") for t in dag.tags):
            problems.append(f"{dag_id}: tags must include 'nightshift' and 'dataset:<name>'")
        if dag.max_active_runs is None or dag.max_active_runs > 8:
            problems.append(f"{dag_id}: max_active_runs must be set (<= 8)")
        for t in dag.tasks:
            if t.owner in (None, "", "airflow"):
                problems.append(f"{dag_id}.{t.task_id}: owner not set")
            if (t.retries or 0) < 2:
                problems.append(f"{dag_id}.{t.task_id}: retries {t.retries} < 2")
            if log_inherited not in (t.on_execute_callback or []):
                problems.append(f"{dag_id}.{t.task_id}: does not log what it inherited from its worker")
    assert not problems, "\n".join(problems)


def test_a_task_s_result_is_one_xcom(dagbag: Any) -> None:
    """Every consumer reads a task's whole result (``return_value``): no ``@task`` returning a
    dict has its keys pushed again as XComs of their own (Airflow infers that from a ``dict``
    return annotation unless ``multiple_outputs`` is given; ruff's AIR202)."""
    split = [
        f"{dag_id}.{t.task_id}"
        for dag_id, dag in dagbag.dags.items()
        for t in dag.tasks
        if getattr(t, "multiple_outputs", False)
    ]
    assert not split, split


def test_each_batch_is_one_task_that_waits_deferred(dagbag: Any) -> None:
    from nightshift.airflow.sensors import LandingIngestOperator

    dag = dagbag.dags["nightshift_ingest.payments"]
    # no sensor before the ingest: the ingest task itself defers until its files land
    assert sorted(t.task_id for t in dag.tasks) == ["ingest_events", "ingest_labels"]
    for kind in ("events", "labels"):
        task = dag.get_task(f"ingest_{kind}")
        assert isinstance(task, LandingIngestOperator) and task.kind == kind
        assert task.wait_timeout.total_seconds() == 12 * 3600
    assert dag.get_task("ingest_labels").skip_unless_due and not dag.get_task("ingest_events").skip_unless_due
    # the curated event always; training and monitoring are told only when due (through aliases)
    assert [o.name for o in dag.get_task("ingest_events").outlets] == [
        "nightshift.payments.curated",
        "nightshift.payments.train_due.when_due",
    ]
    assert [o.name for o in dag.get_task("ingest_labels").outlets] == ["nightshift.payments.labels.when_due"]
    monitor = dagbag.dags["nightshift_monitor.payments"]
    assert [o.name for o in monitor.get_task("alert").outlets] == ["nightshift.payments.alert.when_due"]


def _ingest_dags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, zones: dict[str, tuple[str, int]]) -> Any:
    """The ingest DAG file parsed for datasets copied from the demo's spec with other zones
    and label delays (``name: (timezone, delay_days)``)."""
    text = (ROOT / "datasets" / "payments.yaml").read_text()
    for name, (zone, delay) in zones.items():
        spec = text.replace("name: payments", f"name: {name}").replace(
            "delay_days: 3", f"delay_days: {delay}"
        )
        (tmp_path / f"{name}.yaml").write_text(spec + f"partitioning: {{timezone: {zone}}}\n")
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(tmp_path))
    monkeypatch.delenv("NIGHTSHIFT_DATASETS", raising=False)
    monkeypatch.delenv("NIGHTSHIFT_INGEST_SCHEDULE", raising=False)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags" / "ingest.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


def test_the_ingest_schedule_cuts_the_datasets_local_days(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import date

    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    from nightshift.airflow.tasks.ingest import partition_day
    from nightshift.spec import zone_of

    assert str(dagbag.dags["nightshift_ingest.payments"].timetable.timezone) == "UTC"  # the demo: UTC
    dags = _ingest_dags(
        monkeypatch,
        tmp_path,
        {"paris": ("Europe/Paris", 3), "chicago": ("America/Chicago", 0), "mars": ("Mars/Olympus", 1)},
    )
    # zone, the first local day's interval from March 1st (UTC), and the day its run ingests
    cases = {
        "paris": ("Europe/Paris", "2026-03-01T23:00:00+00:00", "2026-03-02T23:00:00+00:00", date(2026, 3, 2)),
        "chicago": (
            "America/Chicago",
            "2026-03-01T06:00:00+00:00",
            "2026-03-02T06:00:00+00:00",
            date(2026, 3, 1),
        ),
    }
    for name, (zone, start, end, day) in cases.items():
        dag = dags[f"nightshift_ingest.{name}"]
        assert str(dag.timetable.timezone) == zone
        info = coerce_to_core_timetable(dag.timetable).next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(
                earliest=pendulum.datetime(2026, 3, 1, tz="UTC"), latest=None, catchup=True
            ),
        )
        assert (info.data_interval.start.isoformat(), info.data_interval.end.isoformat()) == (start, end)
        # in Paris the local day starts at 23:00 UTC the day before: its run is for the local date
        context = {"params": {}, "data_interval_start": info.data_interval.start}
        assert partition_day(context, zone_of(zone)) == day  # type: ignore[arg-type]
    # labels due the events' own day wait for the events' ingest, whatever its verdict
    chicago = dags["nightshift_ingest.chicago"].get_task("ingest_labels")
    assert chicago.upstream_task_ids == {"ingest_events"} and chicago.trigger_rule == "all_done"
    paris = dags["nightshift_ingest.paris"].get_task("ingest_labels")
    assert paris.upstream_task_ids == set() and paris.trigger_rule == "all_success"
    # a spec with an unknown zone still parses (scheduled in UTC); its task fails on the spec
    assert str(dags["nightshift_ingest.mars"].timetable.timezone) == "UTC"
    assert "unknown IANA time zone 'Mars/Olympus'" in caplog.text


_PROBE = r"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
path = sys.argv[1]
if path != "-":
    spec = importlib.util.spec_from_file_location("dagfile", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
t2 = time.perf_counter()
heavy = [m for m in sys.argv[2].split(",") if m in sys.modules]
print(json.dumps({"sdk": t1 - t0, "file": t2 - t1, "total": t2 - t0, "heavy": heavy}))
"""


def _probe(path: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, path, ",".join(HEAVY)],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_time(path: Path, record_property: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Parse time is measured against a bare ``import airflow.sdk`` and reported; no heavy
    library may be imported while parsing."""
    bare = min((_probe("-") for _ in range(2)), key=lambda r: r["total"])
    best = min((_probe(str(path)) for _ in range(2)), key=lambda r: r["total"])
    ratio = best["total"] / bare["total"]
    line = (
        f"{path.name}: import airflow.sdk {bare['total']:.2f}s; with the DAG file {best['total']:.2f}s "
        f"(+{best['file']:.2f}s, x{ratio:.2f})"
    )
    record_property("parse_time", line)
    with capsys.disabled():
        print(f"\n[parse time] {line}")
    report = ROOT / ".nightshift" / "test" / "parse_times.txt"
    with report.open("a") as f:
        f.write(line + "\n")
    assert not best["heavy"], f"{path.name} imports heavy libraries at parse time: {best['heavy']}"


def test_every_dataset_has_model_dags(dagbag: Any) -> None:
    from nightshift.airflow.dagconfig import dataset_names

    for name in dataset_names():
        for kind in ("train", "score", "rollback", "promote", "retrain", "monitor"):
            assert f"nightshift_{kind}.{name}" in dagbag.dags, f"nightshift_{kind}.{name}"


def test_training_runs_on_the_gpu_queue_and_promotion_in_the_registry_pool(dagbag: Any) -> None:
    from nightshift.airflow.dagconfig import REGISTRY_POOL

    dag = dagbag.dags["nightshift_train.payments"]
    assert dag.get_task("train").queue == "gpu"
    assert dag.get_task("gate").queue != "gpu"
    assert dag.get_task("promote").pool == REGISTRY_POOL
    assert [o.name for o in dag.get_task("promote").outlets] == ["nightshift.payments.champion"]
    assert dagbag.dags["nightshift_rollback.payments"].get_task("rollback").pool == REGISTRY_POOL
    assert dag.max_active_runs == 1
    assert {
        "as_of",
        "window_days",
        "xgb_params",
        "num_boost_round",
        "tuning_trials",
        "tuning_timeout_s",
    } <= set(dag.params.keys())


def test_model_dags_are_triggered_by_assets(dagbag: Any) -> None:
    train = dagbag.dags["nightshift_train.payments"]
    score = dagbag.dags["nightshift_score.payments"]

    def names(cond: Any) -> set[str]:
        return set().union(*(names(o) for o in cond.objects)) if hasattr(cond, "objects") else {cond.name}

    assert names(train.timetable.asset_condition) == {"nightshift.payments.train_due"}
    assert names(score.timetable.asset_condition) == {
        "nightshift.payments.curated",
        "nightshift.payments.champion",
    }
    assert [o.name for o in score.get_task("score").outlets] == ["nightshift.payments.predictions"]


def test_the_serving_check_and_a_human_review_sit_between_the_gate_and_the_promotion(dagbag: Any) -> None:
    from airflow.providers.standard.operators.hitl import HITLOperator

    from nightshift.airflow.review import ReviewOperator

    for dag_id in ("nightshift_train.payments", "nightshift_retrain.payments"):
        dag = dagbag.dags[dag_id]
        check = dag.get_task("serving_check")
        assert check.upstream_task_ids == {"gate"} and check.queue != "gpu", dag_id
        review = dag.get_task("review")
        assert isinstance(review, HITLOperator) and review.options == ["Approve", "Reject"]
        # the review reads the verdict with the check's result: nobody reviews what cannot serve
        assert isinstance(review, ReviewOperator) and review.gate_task_id == "serving_check"
        assert review.upstream_task_ids == {"serving_check"}
        assert dag.get_task("promote").upstream_task_ids == {"serving_check", "review"}
        assert "comment" in review.params


def test_operators_are_notified_of_alerts_promotions_and_rollbacks(dagbag: Any) -> None:
    def events(task: Any) -> list[str | None]:
        return [getattr(cb, "event", None) for cb in task.on_success_callback or []]

    assert events(dagbag.dags["nightshift_monitor.payments"].get_task("alert")) == ["alert"]
    for dag_id in ("nightshift_train.payments", "nightshift_retrain.payments", "nightshift_promote.payments"):
        assert events(dagbag.dags[dag_id].get_task("promote")) == ["promotion"], dag_id
    assert events(dagbag.dags["nightshift_rollback.payments"].get_task("rollback")) == ["rollback"]
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert [getattr(cb, "event", None) for cb in t.on_failure_callback or []] == ["failure"], t


def test_manual_operations_take_validated_params(dagbag: Any) -> None:
    from nightshift.airflow.dagconfig import REGISTRY_POOL

    promote = dagbag.dags["nightshift_promote.payments"]
    assert promote.get_task("promote").pool == REGISTRY_POOL
    assert {"version", "reason", "override_gate", "actor"} == set(promote.params.keys())
    retrain = dagbag.dags["nightshift_retrain.payments"]
    assert {"force", "actor", "note", "since", "window_days", "xgb_params", "num_boost_round"} == set(
        retrain.params.keys()
    )
    from airflow.sdk.exceptions import ParamValidationError

    # the trigger form refuses what the schema does not allow, naming the param
    for dag, name, value in ((promote, "version", 0), (promote, "reason", "x"), (retrain, "window_days", 2)):
        with pytest.raises(ParamValidationError, match=f"param {name}"):
            dag.params[name] = value


_PLUGIN_PROBE = r"""
import importlib.metadata, json, sys
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
mine = [p for p in plugins if p.name == "nightshift"]
p = mine[0] if mine else None
print(json.dumps({
    "errors": {str(k): str(v) for k, v in errors.items()},
    "found": len(mine),
    "source": type(p.source).__name__ if p else None,
    "entry_points": [(e.name, e.value) for e in importlib.metadata.entry_points(group="airflow.plugins")
                     if e.value.startswith("nightshift")],
    "views": [(v["name"], v["href"], v["destination"]) for v in (p.external_views if p else [])],
    "apps": [a["url_prefix"] for a in (p.fastapi_apps if p else [])],
    "links": sorted(l.name for l in (p.global_operator_extra_links if p else [])),
    "heavy": [m for m in sys.argv[1].split(",") if m in sys.modules],
}))
"""


def test_the_ui_plugin_loads_light_with_its_page_and_links() -> None:
    """Registered once, by the package's ``airflow.plugins`` entry point (the plugins folder,
    ``plugins/``, holds no second registration), with its pages and links, importing nothing
    heavy into the api-server."""
    out = subprocess.run(
        [sys.executable, "-c", _PLUGIN_PROBE, ",".join(HEAVY)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")},
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    stale = ROOT / "include" / "nightshift.egg-info"  # a second distribution: see `make venv`
    assert got["found"] == 1 and not got["errors"], (got, "stale egg-info" if stale.exists() else "")
    assert got["entry_points"] == [["nightshift", "nightshift.airflow.plugin:NightshiftPlugin"]]
    assert got["source"] == "EntryPointSource", got
    assert got["apps"] == ["/nightshift"]
    assert ["Model health", "nightshift/health", "nav"] in got["views"]
    assert ["Model health", "nightshift/health?dag_id={DAG_ID}", "dag"] in got["views"]
    assert got["links"] == ["Evidently report", "GX Data Docs", "MLflow run", "Model health", "Model version"]
    assert not got["heavy"], (
        f"the plugin imports heavy libraries when the api-server loads it: {got['heavy']}"
    )


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("reports/payments/drift/dt=2026-03-01/v1-drift.html", "text/html; charset=utf-8"),
        ("reports/payments/validation/dt=2026-03-01/data_docs_events/static/styles/x.css", "text/css"),
        ("quarantine/payments/events/dt=2026-03-01/validation.json", "application/json"),
        ("audit/payments/promote-v1-abc.json", "application/json"),
        ("quarantine/payments/events/dt=2026-03-01/files/part-0.csv", None),
        ("curated/payments/dt=2026-03-01/part-0.parquet", None),
        ("reports/payments/../../curated/x.html", None),
        ("reports/payments/drift/run.sh", None),
        ("reports/x.html", None),
    ],
)
def test_the_plugin_serves_reports_never_data(path: str, media: str | None) -> None:
    from nightshift.airflow.plugin import servable

    assert servable(path) == media


def test_the_plugin_templates_ship_with_the_package() -> None:
    """The wheel (and so the Docker image, which installs it) carries every template: setuptools
    packages only ``.py`` files unless package-data names the others."""
    import fnmatch
    import tomllib

    package = ROOT / "include" / "nightshift"
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    templates = sorted(p.relative_to(package).as_posix() for p in (package / "templates").rglob("*.html"))
    assert templates and all(any(fnmatch.fnmatch(t, g) for g in globs["nightshift"]) for t in templates)
