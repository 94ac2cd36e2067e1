"""The loop under the real scheduler: a monitor run raises the alert Asset event, and the
scheduler starts nightshift_retrain from it (dag.test cannot run asset-triggered DAGs).

Small size: the drift store (14 clean days, 6 drifted ones, 4,000 rows a day), a champion
trained on the clean days and the last 10 days scored before the components start.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflowkit import AirflowStack

from modelkit import DRIFT_DAYS, MODEL_DAYS, MODEL_START, copy_store, model_env

DRIFT_START = MODEL_START + timedelta(days=MODEL_DAYS)
LAST = MODEL_START + timedelta(days=MODEL_DAYS + DRIFT_DAYS - 1)


@pytest.fixture(scope="module")
def loop(drift_store: Path, spec: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("loop")
    url = copy_store(drift_store, root / "store")
    with model_env(url, f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as mp:
        mp.setenv("NIGHTSHIFT_DATASETS", "payments")
        from nightshift import registry
        from nightshift.pipeline import TrainRequest, decide_step, gate_step, score_step, train_step
        from nightshift.storage import Store

        store = Store(url)
        as_of = DRIFT_START + timedelta(days=spec.label.delay_days - 1)  # clean days only
        trained = train_step(store, spec, "setup/champion", TrainRequest(as_of=as_of))
        verdict = gate_step(store, spec, trained["run_id"], "setup/champion")
        decide_step(store, spec, verdict, actor="test", trigger="setup")
        days = [MODEL_START + timedelta(days=i) for i in range(MODEL_DAYS - 4, MODEL_DAYS + DRIFT_DAYS)]
        score_step(store, spec, days)
        stack = AirflowStack(root / "airflow")
        try:
            stack.start()
            yield {"stack": stack, "store": store, "client": registry.configure()}
        finally:
            stack.stop()


def test_an_alert_starts_the_retrain_under_the_scheduler(loop: dict[str, Any]) -> None:
    from nightshift import registry, retrain

    stack, store, client = loop["stack"], loop["store"], loop["client"]
    for dag_id in ("nightshift_monitor.payments", "nightshift_retrain.payments"):
        stack.wait_dag(dag_id)
        stack.unpause(dag_id)
    run_id = stack.trigger("nightshift_monitor.payments")
    monitor = stack.wait_run("nightshift_monitor.payments", lambda r: r["dag_run_id"] == run_id)
    assert monitor["state"] == "success"
    assert stack.task_states("nightshift_monitor.payments", run_id) == {
        "monitor": "success",
        "alert": "success",
    }

    run = stack.wait_run("nightshift_retrain.payments", lambda r: r["run_type"] == "asset_triggered")
    states = stack.task_states("nightshift_retrain.payments", run["dag_run_id"])
    assert run["state"] == "success", states
    assert states["decide"] == states["train"] == states["gate"] == states["record"] == "success"

    (rec,) = retrain.read_records(store, "payments")
    assert rec.action == "retrain" and not rec.forced
    assert rec.run_key == f"nightshift_retrain.payments/{run['dag_run_id']}"
    (alert,) = rec.alerts
    assert alert["kind"] == "drift+performance" and alert["onset"] == DRIFT_START.isoformat()
    # trained only on the days after the onset
    assert rec.since == DRIFT_START.isoformat() and rec.window[-1] == LAST.isoformat()
    assert rec.outcome is not None and rec.outcome["status"] in ("promoted", "rejected")
    mv = client.get_model_version("nightshift-payments", "2")
    window = client.get_run(mv.run_id).data.tags["nightshift.window"]
    assert window == f"{DRIFT_START}..{LAST} ({DRIFT_DAYS} days)"
    last = registry.read_audit(store, "payments")[-1]
    assert last.version == "2" and "asset_triggered" in last.trigger
    if rec.outcome["status"] == "promoted":
        assert registry.alias_version(client, "payments", "champion") == "2"
