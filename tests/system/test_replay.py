"""``nightshift replay`` through the real scheduler: landed days pass one by one through a running
dag-processor, scheduler, triggerer and api-server (127.0.0.1, own metadata DB), logged in with the stack's
own credentials (a random password in its password file, found through the ``stack.json`` that
``make up`` writes). A day whose events never landed is named and not triggered; the others run.

The demo dataset (payments, generated) and the real one (``carData/MplsStops``, landed as
upstream would by tests/realdata.py: local days in America/Chicago, a labels feed of the id and
"YES"/"NO" three days late) on the same stack.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

import realdata
from nightshift.cli import main
from nightshift.storage import Store
from nightshift_dev.stack import AirflowStack

ROOT = Path(__file__).resolve().parents[2]

START = date(2026, 6, 1)
MISSING = START + timedelta(days=1)
DAYS = [START + timedelta(days=i) for i in range(3)]
INGEST = "nightshift_ingest.payments"
# four MplsStops days: the labels of the first land on the fourth
MPLS_DAYS = [realdata.FIRST_DAY + timedelta(days=i) for i in range(4)]
MPLS_INGEST = f"nightshift_ingest.{realdata.DATASET}"


@pytest.fixture(scope="module")
def stack(spec: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from nightshift.demo.datagen import Scenario, generate

    root = tmp_path_factory.mktemp("replay")
    store = Store((root / "store").as_uri())
    generate(store, spec, START, len(DAYS), 300, 11, Scenario())
    shutil.rmtree(Path(store.root) / "landing" / "payments" / "events" / f"dt={MISSING}")
    realdata.land(store, MPLS_DAYS[0], len(MPLS_DAYS))
    datasets = root / "datasets"
    datasets.mkdir()
    shutil.copy(ROOT / "datasets" / "payments.yaml", datasets)
    shutil.copy(ROOT / "tests" / "specs" / f"{realdata.DATASET}.yaml", datasets)
    env = {
        "NIGHTSHIFT_STORE_URL": store.url,
        "NIGHTSHIFT_DATASETS": f"payments,{realdata.DATASET}",
        "NIGHTSHIFT_DATASETS_DIR": str(datasets),
        "NIGHTSHIFT_INGEST_SCHEDULE": "none",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    # the stack's own password, not admin/admin: replay must read it from the stack's file
    airflow = AirflowStack(root / "airflow", env, password=secrets.token_urlsafe(12))
    passwords = root / "airflow" / "passwords.json"
    home = root / "home"
    (home / "run").mkdir(parents=True)
    info = {"api": airflow.base, "user": "admin", "passwords_file": str(passwords), "store": store.url}
    (home / "run" / "stack.json").write_text(json.dumps(info))
    try:
        airflow.start(("dag-processor", "scheduler", "triggerer", "api-server"))
        airflow.wait_dag(INGEST)
        airflow.wait_dag(MPLS_INGEST)
        yield {"airflow": airflow, "store": store, "home": home, "datasets": datasets}
    finally:
        airflow.stop()


def test_replay_lets_landed_days_pass_one_by_one_and_names_a_day_that_never_landed(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    airflow, store = stack["airflow"], stack["store"]
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(stack["home"]))
    for var in (
        "AIRFLOW__API__BASE_URL",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        "NIGHTSHIFT_STORE_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    code = main(
        ["replay", "--dataset", "payments", "--from", str(DAYS[0]), "--to", str(DAYS[-1]), "--timeout", "300"]
    )
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert f"nightshift: {MISSING} failed: no events files for payments in " in err
    assert f"landing/payments/events/dt={MISSING}: not triggered" in err
    assert err.count("nightshift: ") == 1, err
    assert "3 day(s) replayed: 2 ok, 1 failed" in out
    runs = airflow.runs(INGEST)
    assert sorted(r["conf"]["dt"] for r in runs) == [str(DAYS[0]), str(DAYS[2])]
    for r in runs:
        assert r["state"] == "success" and r["triggering_user_name"] == "admin"
        states = airflow.task_states(INGEST, r["dag_run_id"])
        assert states["ingest_events"] == "success" and states["ingest_labels"] == "skipped", states
        assert (
            f"{r['conf']['dt']}  ok           {INGEST} {r['dag_run_id']}: events success, labels skipped"
            in out
        )
    for day in (DAYS[0], DAYS[2]):
        assert store.exists(store.published_file("payments", "events", day)), day
    assert not store.exists(store.published_file("payments", "events", MISSING))


def test_replay_together_triggers_every_day_at_once_and_waits_once(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    airflow = stack["airflow"]
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(stack["home"]))
    before = {r["dag_run_id"] for r in airflow.runs(INGEST)}
    day = str(DAYS[0])  # landed and ingested before: a re-run replaces its partition
    assert main(["replay", "--dataset", "payments", "--from", day, "--to", day, "--together"]) == 0
    out = capsys.readouterr().out
    (new,) = [r for r in airflow.runs(INGEST) if r["dag_run_id"] not in before]
    assert new["conf"] == {"dt": day} and new["state"] == "success"
    assert f"{day}  ok           {INGEST} {new['dag_run_id']}: events success, labels skipped" in out
    assert "1 day(s) replayed: 1 ok" in out


def test_replay_of_real_mplsstops_days_ingests_local_days_and_the_late_string_labels(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    airflow, store = stack["airflow"], stack["store"]
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(stack["home"]))
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(stack["datasets"]))
    monkeypatch.delenv("NIGHTSHIFT_STORE_URL", raising=False)
    first, last = MPLS_DAYS[0], MPLS_DAYS[-1]
    replay = ["replay", "--dataset", realdata.DATASET, "--timeout", "300"]
    # the first three (events only: no label is due) at once; then the fourth, whose labels
    # feed is about the first day's stops, which must be published by then
    code = main([*replay, "--from", str(first), "--to", str(MPLS_DAYS[2]), "--together"])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert "3 day(s) replayed: 3 ok" in out
    code = main([*replay, "--from", str(last), "--to", str(last)])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert "1 day(s) replayed: 1 ok" in out and "events success, labels success" in out
    runs = {r["conf"]["dt"]: r for r in airflow.runs(MPLS_INGEST)}
    assert sorted(runs) == [str(d) for d in MPLS_DAYS]
    for d in MPLS_DAYS:
        r = runs[str(d)]
        assert r["state"] == "success", r
        labels = "success" if d == last else "skipped"  # due 3 days after the first day's events
        assert airflow.task_states(MPLS_INGEST, r["dag_run_id"])["ingest_labels"] == labels, d
        assert store.exists(store.published_file(realdata.DATASET, "events", d)), d
    published = pq.read_table(store.published_file(realdata.DATASET, "labels", last))
    assert set(published.column(realdata.LABEL).to_pylist()) <= {"YES", "NO"} and published.num_rows > 50


def test_a_day_triggered_before_its_files_waits_deferred_in_the_triggerer_and_ingests_once_they_land(
    stack: dict[str, Any], spec: Any
) -> None:
    """The ingest task itself waits (no sensor): deferred, off the workers, until the trigger in
    the real triggerer sees the files, then resumed in a worker to ingest them."""
    import time

    from nightshift.demo.datagen import Scenario, write_day

    airflow, store = stack["airflow"], stack["store"]
    run_id = airflow.trigger_id(INGEST, {"dt": str(MISSING)})
    deadline = time.monotonic() + 120
    while airflow.task_states(INGEST, run_id).get("ingest_events") != "deferred":
        assert time.monotonic() < deadline, airflow.task_states(INGEST, run_id)
        time.sleep(0.5)
    assert not store.exists(store.published_file("payments", "events", MISSING))
    write_day(store, spec, MISSING, 1, 300, 11, Scenario())
    run = airflow.wait_run(INGEST, lambda r: r["dag_run_id"] == run_id, timeout=180)
    states = airflow.task_states(INGEST, run_id)
    assert run["state"] == "success", states
    assert states == {"ingest_events": "success", "ingest_labels": "skipped"}, states
    assert store.exists(store.published_file("payments", "events", MISSING))
    # one attempt: deferred, then resumed by the trigger's event (not retried, not re-run)
    logs = airflow.home / "logs" / f"dag_id={INGEST}" / f"run_id={run_id}" / "task_id=ingest_events"
    names = sorted(f.name for f in logs.iterdir())
    assert [n for n in names if ".trigger." not in n] == ["attempt=1.log"], names
    assert any(n.startswith("attempt=1.log.trigger.") for n in names), f"no trigger ran it: {names}"
    log = (logs / "attempt=1.log").read_text(errors="replace")
    assert f"no events files for payments dt={MISSING} yet: waiting for them, deferred" in log
    assert "found 1 events file(s) for payments" in log
