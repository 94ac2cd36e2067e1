"""The compose topology without Docker (``scripts/services.py``, :mod:`nightshift_dev.services`):
Postgres, Redis, an S3 server, MLflow on Postgres with S3 artifacts, and Airflow with
CeleryExecutor, a worker on ``default`` and one on ``gpu`` — all really started on 127.0.0.1 and
torn down by process group.

Small size: the session's model store (14 days x 4,000 rows) is copied into the bucket without
its last day (2026-03-14) and the labels that land from then on; everything else comes from
runs triggered through Airflow's REST API. The tests run in file order on one topology.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from nightshift_dev import free_port
from nightshift_dev.client import AirflowClient
from nightshift_dev.services import BUCKET, Topology
from nightshift_dev.stack import preload_problems

DATASET = "payments"
DAY = "2026-03-14"  # the day the nightly flow ingests
REINGEST = "2026-03-13"  # re-ingested during the S3 outage
WITHHELD = ("2026-03-14", "2026-03-15", "2026-03-16", "2026-03-17")
DAGS = [f"nightshift_{k}.{DATASET}" for k in ("ingest", "train", "score", "monitor", "retrain")]
INGEST, TRAIN, SCORE, MONITOR = DAGS[:4]
MODEL = f"nightshift-{DATASET}"


# ---- helpers -------------------------------------------------------------------------------
def seed(topo: Topology, store_root: Path) -> int:
    """Copy a built local store into the bucket, minus what the flow must produce itself."""
    s3 = s3_client(topo)
    n = 0
    for f in sorted(store_root.rglob("*")):
        rel = f.relative_to(store_root).as_posix()
        top = rel.split("/")[0]
        if not f.is_file() or top in ("predictions", "audit", "quarantine"):
            continue
        if top == "reports" and "/validation/" not in rel:
            continue
        if top != "landing" and any(f"dt={d}" in rel for d in WITHHELD):
            continue
        s3.put_object(Bucket=BUCKET, Key=f"store/{rel}", Body=f.read_bytes())
        n += 1
    return n


def s3_client(topo: Topology) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=topo.s3_url, **topo.s3_credentials())


def keys(topo: Topology, prefix: str) -> list[str]:
    pages = s3_client(topo).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def partition(topo: Topology, area: str, day: str) -> dict[str, int]:
    """Object name → row count of one curated/labels partition in the bucket."""
    import pyarrow.parquet as pq

    s3, out = s3_client(topo), {}
    for key in keys(topo, f"store/{area}/{DATASET}/dt={day}/"):
        if key.endswith("/"):  # a directory marker (pyarrow's S3 filesystem writes them)
            continue
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        out[key.rsplit("/", 1)[1]] = pq.read_metadata(io.BytesIO(body)).num_rows
    return out


def mlflow(topo: Topology) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=topo.mlflow_url, registry_uri=topo.mlflow_url)


def versions(topo: Topology) -> list[Any]:
    return sorted(mlflow(topo).search_model_versions(f"name='{MODEL}'"), key=lambda v: int(v.version))


def until_idle(client: AirflowClient, timeout: float = 600) -> None:
    """Until no run is queued or running and no Asset event waits, three polls in a row."""
    client.wait_idle(DATASET, time.monotonic() + timeout, quiet_polls=3)


def wait_task(
    client: AirflowClient, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 300
) -> dict[str, Any]:
    """Poll one task instance until its state is in ``states``; the task instance."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for ti in client.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id:
                last = ti
                if ti["state"] in states:
                    return ti
        time.sleep(0.3)
    raise TimeoutError(f"{dag_id}/{task_id} never reached {states}; last: {last.get('state')}")


def wait_log(topo: Topology, dag_id: str, run_id: str, task_id: str, text: str, timeout: float = 300) -> None:
    """Poll the task's first-attempt log (the workers write it under AIRFLOW_HOME) for ``text``."""
    log = (
        topo.home
        / "airflow"
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / f"task_id={task_id}"
        / "attempt=1.log"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {log} within {timeout:.0f} s")


def tis(client: AirflowClient, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    return {t["task_id"]: t for t in client.task_instances(dag_id, run_id)}


# ---- the topology --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def topo(model_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    from nightshift.storage import Store

    ports = {name: free_port() for name in ("postgres", "redis", "s3", "mlflow", "api")}
    # the components' retries must outlast a restart of the S3 server or MLflow (not 1 s)
    mp = pytest.MonkeyPatch()
    mp.setenv("NIGHTSHIFT_RETRY_DELAY_S", "10")
    topology = Topology(tmp_path_factory.mktemp("services"), ports)
    topology.up()
    try:
        assert seed(topology, Path(Store(model_store).root)) > 50
        yield topology
    finally:
        topology.down()
        mp.undo()
        shutil.rmtree(topology.pg_dir, ignore_errors=True)  # outside pytest's tmp when root


@pytest.fixture(scope="module")
def client(topo: Topology) -> AirflowClient:
    api = AirflowClient(topo.api_url, topo.secrets["admin"])
    for dag_id in DAGS:
        api.wait_dag(dag_id)
        api.unpause(dag_id)
    return api


@pytest.fixture(scope="module")
def flow(topo: Topology, client: AirflowClient) -> dict[str, Any]:
    """The nightly flow for DAY, triggered twice at once (a double-clicked or retried trigger)."""
    runs = [client.trigger_id(INGEST, {"dt": DAY}) for _ in range(2)]
    until_idle(client)
    return {"ingest_runs": runs}


# ---- the nightly flow ----------------------------------------------------------------------
def test_services_bind_loopback_only(topo: Topology) -> None:
    import psutil

    pids = set()
    for pid in topo.pids.values():
        pids |= {p.pid for p in psutil.process_iter() if _in_group(p, pid)}
    listening = [c for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.pid in pids]
    assert {c.laddr.port for c in listening} >= {topo.ports[n] for n in ("postgres", "redis", "s3", "api")}
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}, listening
    assert not {8793, 8794} & {c.laddr.port for c in listening}  # no log servers
    # no secret on a command line (any user can read them in ps) or in a component's log; the
    # S3 access key is an id, not a secret
    secrets = {k: v for k, v in topo.secrets.items() if k != "s3_access_key"}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(psutil.Process(pid).cmdline())
            leaked = [k for k, v in secrets.items() if v in cmdline]
            assert not leaked, f"{leaked} on the command line of pid {pid}: {cmdline[:80]}..."
    for log in topo.logs.rglob("*"):
        if log.is_file():
            text = log.read_text(errors="replace")
            leaked = [k for k, v in secrets.items() if v in text]
            assert not leaked, f"{leaked} in {log}"


def _in_group(proc: Any, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid
    except (ProcessLookupError, PermissionError):
        return False


def test_nightly_flow_runs_on_celery_workers(
    topo: Topology, client: AirflowClient, flow: dict[str, Any]
) -> None:
    for run_id in flow["ingest_runs"]:
        run = next(r for r in client.runs(INGEST) if r["dag_run_id"] == run_id)
        assert run["state"] == "success", run
        for ti in tis(client, INGEST, run_id).values():
            assert (ti["queue"], ti["hostname"]) == ("default", "worker-default"), ti

    # the asset-triggered DAGs ran under the real scheduler, every task where it belongs
    trains = [r for r in client.runs(TRAIN) if r["run_type"] == "asset_triggered"]
    assert trains and all(r["state"] == "success" for r in trains), trains
    trained = [r for r in trains if tis(client, TRAIN, r["dag_run_id"])["train"]["state"] == "success"]
    assert len(trained) == 1, trains
    train_tis = tis(client, TRAIN, trained[0]["dag_run_id"])
    assert (train_tis["train"]["queue"], train_tis["train"]["hostname"]) == ("gpu", "worker-gpu")
    for task_id in ("gate", "serving_check", "promote"):
        assert (train_tis[task_id]["queue"], train_tis[task_id]["hostname"]) == ("default", "worker-default")
    for dag_id in (SCORE, MONITOR):
        runs = [r for r in client.runs(dag_id) if r["run_type"] == "asset_triggered"]
        assert runs and all(r["state"] == "success" for r in runs), (dag_id, runs)
        for r in runs:
            for ti in tis(client, dag_id, r["dag_run_id"]).values():
                assert ti["queue"] == "default" and ti["hostname"] in ("worker-default", None), ti
    monitors = [tis(client, MONITOR, r["dag_run_id"])["monitor"]["state"] for r in client.runs(MONITOR)]
    assert "success" in monitors

    # the model and its artifacts are in MLflow, the artifacts in the bucket; the champion is set
    ml = mlflow(topo)
    champion = ml.get_model_version_by_alias(MODEL, "champion")
    run = ml.get_run(champion.run_id)
    assert run.data.tags["nightshift.run_key"].startswith(f"{TRAIN}/")
    artifacts = {a.path for a in ml.list_artifacts(champion.run_id)}
    assert {"lineage.json", "gate", "reference"} <= artifacts, artifacts
    exp = run.info.experiment_id
    run_keys = keys(topo, f"mlflow/{exp}/{champion.run_id}/artifacts/")
    assert f"mlflow/{exp}/{champion.run_id}/artifacts/lineage.json" in run_keys
    assert any(k.endswith("/MLmodel") for k in keys(topo, f"mlflow/{exp}/")), "model files not in the bucket"
    # the serving check ran on the worker (the candidate served by a fresh `nightshift serve`
    # there, through MLflow's proxy to the bucket); its result is in the audit trail
    assert champion.tags["nightshift.serving"] == "passed", champion.tags
    s3 = s3_client(topo)
    audit = [
        json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())
        for k in keys(topo, f"store/audit/{DATASET}/")
        if k.endswith(".json")
    ]
    (promoted,) = [e for e in audit if e["action"] == "promote" and e["version"] == champion.version]
    serving = promoted["serving"]
    assert serving["passed"] and serving["version"] == champion.version and serving["failed_requests"] == 0
    assert serving["rows_compared"] >= 1000 and serving["p99_ms"] < serving["max_latency_ms"], serving
    # curated data and drift reports are in the bucket
    assert list(partition(topo, "curated", DAY).values()) == [4000]
    drift = keys(topo, f"store/reports/{DATASET}/drift/")
    assert any(k.endswith(".html") for k in drift) and any(k.endswith(".json") for k in drift), drift[:5]
    assert keys(topo, f"store/predictions/{DATASET}/dt={DAY}/")


def test_two_triggers_of_the_same_day_make_one_partition_and_one_version(
    topo: Topology, flow: dict[str, Any]
) -> None:
    assert partition(topo, "curated", DAY) == {"part-0.parquet": 4000}
    assert list(partition(topo, "labels", DAY)) == ["part-0.parquet"]
    assert [v.version for v in versions(topo)] == ["1"]
    staging = [k for k in keys(topo, "store/") if ".tmp-" in k]
    assert not staging, staging


def test_the_champion_answers_online_through_nightshift_serve(
    topo: Topology, flow: dict[str, Any], model_store: str, tmp_path: Path
) -> None:
    """``nightshift serve`` against the topology's MLflow (the model through its proxy to the
    bucket) answers with the champion the Celery flow promoted."""
    import http.client

    import pyarrow.parquet as pq

    from modelkit import ServeProcess, post_json
    from nightshift.storage import Store

    champion = mlflow(topo).get_model_version_by_alias(MODEL, "champion")
    store = Store(model_store)
    events = pq.read_table(store.open_input(store.published_file(DATASET, "events", date(2026, 3, 13))))
    rows = events.slice(0, 3).drop_columns(["event_time"]).to_pylist()
    server = ServeProcess(tmp_path, DATASET, {"MLFLOW_TRACKING_URI": topo.mlflow_url})
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, body = post_json(conn, "/invocations", json.dumps({"dataframe_records": rows}).encode())
        assert status == 200, body
        assert body["model_version"] == champion.version and len(body["predictions"]) == 3
        assert all(0 < p < 1 for p in body["predictions"])
        info = server.get("/version")[1]
        assert (info["version"], info["run_id"]) == (champion.version, champion.run_id)
    finally:
        assert server.stop() == 0


# ---- faults --------------------------------------------------------------------------------
def test_s3_outage_mid_ingest_is_retried_without_a_partial_partition(
    topo: Topology, client: AirflowClient, flow: dict[str, Any]
) -> None:
    before = partition(topo, "curated", REINGEST)
    assert before == {"part-0.parquet": 4000}
    run_id = client.trigger_id(INGEST, {"dt": REINGEST})
    wait_task(client, INGEST, run_id, "ingest_events", {"running"})
    topo.stop("s3")  # the port closes at once; objects are kept for the restart
    try:
        wait_task(client, INGEST, run_id, "ingest_events", {"up_for_retry", "failed", "success"})
    finally:
        topo.start_s3()
    run = client.wait_run(INGEST, lambda r: r["dag_run_id"] == run_id)
    assert run["state"] == "success", tis(client, INGEST, run_id)
    assert tis(client, INGEST, run_id)["ingest_events"]["try_number"] >= 2
    assert partition(topo, "curated", REINGEST) == before
    until_idle(client)


def test_mlflow_outage_during_registration_is_retried_and_the_registry_stays_consistent(
    topo: Topology, client: AirflowClient, flow: dict[str, Any]
) -> None:
    known = [v.version for v in versions(topo)]
    run_id = client.trigger_id(TRAIN)
    wait_task(client, TRAIN, run_id, "train", {"success"})
    topo.stop("mlflow")
    try:
        wait_task(client, TRAIN, run_id, "gate", {"up_for_retry", "failed"})
    finally:
        topo.start_mlflow()
    run = client.wait_run(TRAIN, lambda r: r["dag_run_id"] == run_id)
    assert run["state"] == "success", tis(client, TRAIN, run_id)
    assert tis(client, TRAIN, run_id)["gate"]["try_number"] >= 2
    after = versions(topo)
    new = [v for v in after if v.version not in known]
    assert len(new) == 1, [(v.version, v.run_id) for v in after]
    run_key = mlflow(topo).get_run(new[0].run_id).data.tags["nightshift.run_key"]
    assert run_key == f"{TRAIN}/{run_id}"
    champion = mlflow(topo).get_model_version_by_alias(MODEL, "champion")
    assert champion.version in {v.version for v in after} and champion.status == "READY"
    until_idle(client)


def test_a_worker_killed_mid_training_is_retried_and_registers_one_version(
    topo: Topology, client: AirflowClient, flow: dict[str, Any]
) -> None:
    known = [v.version for v in versions(topo)]
    # A search bounded by time, not by trials, so the training outlasts the wait on any machine.
    run_id = client.trigger_id(TRAIN, {"tuning_trials": 200, "tuning_timeout_s": 30, "num_boost_round": 3000})
    ti = wait_task(client, TRAIN, run_id, "train", {"running"})
    assert ti["hostname"] == "worker-gpu"
    wait_log(topo, TRAIN, run_id, "train", "training on ")  # past the imports, inside training
    assert tis(client, TRAIN, run_id)["train"]["state"] == "running"  # the kill lands mid-training
    topo.kill("worker-gpu")  # SIGKILL to the worker's whole process group
    topo.start_worker("worker-gpu")
    run = client.wait_run(TRAIN, lambda r: r["dag_run_id"] == run_id, timeout=900)
    train = tis(client, TRAIN, run_id)["train"]
    assert run["state"] == "success", tis(client, TRAIN, run_id)
    assert train["try_number"] >= 2 and (train["queue"], train["hostname"]) == ("gpu", "worker-gpu")
    new = [v for v in versions(topo) if v.version not in known]
    assert len(new) == 1, [(v.version, v.run_id) for v in versions(topo)]
    assert mlflow(topo).get_run(new[0].run_id).data.tags["nightshift.run_key"] == f"{TRAIN}/{run_id}"


# ---- the preload ---------------------------------------------------------------------------
def test_every_task_forked_from_a_celery_worker_that_imported_its_libraries(
    topo: Topology, client: AirflowClient
) -> None:
    """Each Celery worker's main process imported nightshift.airflow.preload before its prefork
    pool forked (the restarted gpu worker too): every task above (ingest on S3, training with
    OpenMP, the gate's MLflow client, scoring, Evidently) logged that it inherited GX, Evidently,
    MLflow, XGBoost, sklearn and pyarrow, and none imported one of them itself."""
    # the runs the tests above set off may still be starting: a log read in the instant between
    # a task's parse and its preload line would count as a task that did not inherit it
    until_idle(client)
    started, problems = preload_problems(topo.home / "airflow")
    assert started >= 15, started
    assert not problems, "\n".join(problems)
