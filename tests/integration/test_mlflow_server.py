"""The model DAGs against a real MLflow server on 127.0.0.1, and what an outage does.

The server (SQLite backend, proxied artifacts) is started and stopped by this module; the
outage test stops it mid-flow and starts it again on the same port and backend.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from modelkit import MODEL_DAYS, MODEL_START, MlflowServer, model_env, run_dag, task_states

LAST_DAY = MODEL_START + timedelta(days=MODEL_DAYS - 1)


@pytest.fixture(scope="module")
def server_env(model_store: str, mlflow_server: MlflowServer) -> Iterator[dict[str, Any]]:
    with model_env(model_store, mlflow_server.url):
        from nightshift import registry
        from nightshift.storage import Store

        yield {"client": registry.configure(), "store": Store(model_store), "server": mlflow_server}


def test_train_and_score_dags_against_the_server(
    model_dags: dict[str, Any], server_env: dict[str, Any]
) -> None:
    import pyarrow.parquet as pq

    from nightshift import registry

    client, store, server = server_env["client"], server_env["store"], server_env["server"]
    dr = run_dag(model_dags["train"])
    assert task_states(dr) == {
        "train": "success",
        "gate": "success",
        "serving_check": "success",
        "review": "success",
        "promote": "success",
    }
    assert registry.alias_version(client, "payments", "champion") == "1"
    mv = client.get_model_version("nightshift-payments", "1")
    # artifacts went through the server's proxy into its artifact destination
    assert mv.source.startswith("mlflow-artifacts:")
    stored = {p.name for p in (server.root / "artifacts").rglob("*") if p.is_file()}
    assert {"lineage.json", "MLmodel", "booster.ubj", "transform.json", "calibration.png"} <= stored

    dr = run_dag(model_dags["score"], {"dt": LAST_DAY.isoformat()})
    assert task_states(dr) == {"score": "success"}
    table = pq.read_table(store.open_input(store.predictions_file("payments", LAST_DAY)))
    assert set(table.column("model_version").to_pylist()) == {"1"}


def test_server_down_during_registration_and_promotion_leaves_the_registry_consistent(
    server_env: dict[str, Any],
) -> None:
    from nightshift import registry
    from nightshift.spec import find_spec
    from nightshift.steps.gate import gate_step
    from nightshift.steps.train import train_step

    client, store, server = server_env["client"], server_env["store"], server_env["server"]
    spec = find_spec("payments")
    key = "nightshift_train.payments/outage"
    trained = train_step(store, spec, key)
    versions = {v.version for v in client.search_model_versions("name = 'nightshift-payments'")}

    server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(registry.RegistryUnavailable, match=server.url):
            gate_step(store, spec, trained.run_id, key)
        with pytest.raises(registry.RegistryUnavailable, match=server.url):
            registry.promote(client, store, "payments", "1", actor="t", trigger="outage", reason="r")
        # bounded client retries: Airflow's task retries take over quickly
        assert time.monotonic() - started < 120
    finally:
        server.start()

    # nothing half-done: no new version, the alias untouched
    assert {v.version for v in client.search_model_versions("name = 'nightshift-payments'")} == versions
    assert registry.alias_version(client, "payments", "champion") == "1"
    # the retry (same run key) finishes the job: one run, one new version
    again = train_step(store, spec, key)
    assert again.reused and again.run_id == trained.run_id
    verdict = gate_step(store, spec, trained.run_id, key)
    gate_step(store, spec, trained.run_id, key)
    after = {v.version for v in client.search_model_versions("name = 'nightshift-payments'")}
    assert after == versions | {verdict.version} and len(after) == len(versions) + 1
