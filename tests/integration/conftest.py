"""Integration fixtures: the ingest DAG run with dag.test(), and a real S3 server on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from modelkit import MlflowServer, http_sink
from nightshift_dev import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ingest_dag(airflow_db: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["nightshift_ingest.payments"]


RunDay = Callable[[date], dict[str, str]]


@pytest.fixture
def run_day(ingest_dag: Any) -> RunDay:
    """Run the ingest DAG for one day with dag.test(); returns {task_id: state}."""

    def run(day: date) -> dict[str, str]:
        dr = ingest_dag.test(
            logical_date=datetime(day.year, day.month, day.day, tzinfo=UTC),
            run_conf={"dt": day.isoformat()},
        )
        run.last = dr  # type: ignore[attr-defined]
        return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}

    return run


@pytest.fixture
def webhook_sink() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it: (url, received)."""
    with http_sink() as sink:
        yield sink


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1, started and stopped (by process group) here."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"moto server did not start on {url}")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.fixture
def s3_store_url(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket, the aws_default connection pointing at it, and the store URL."""
    import boto3

    bucket = f"nightshift-{uuid.uuid4().hex[:8]}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    boto3.client("s3", endpoint_url=s3_server, **creds).create_bucket(Bucket=bucket)
    conn = (
        '{"conn_type": "aws", "login": "testing", "password": "testing", '
        f'"extra": {{"endpoint_url": "{s3_server}", "region_name": "us-east-1"}}}}'
    )
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", conn)
    url = f"s3://{bucket}/nightshift"
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", url)
    return url


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def model_dags(airflow_db: Path) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    kinds = ("train", "score", "rollback", "monitor", "retrain", "promote")
    return {k: bag.dags[f"nightshift_{k}.payments"] for k in kinds}
