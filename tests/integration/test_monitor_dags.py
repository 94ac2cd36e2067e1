"""Monitor and retrain DAGs through dag.test(), on the drift store (14 clean days, then 6 days
of covariate + concept drift, every label landed) with the embedded SQLite MLflow store.

Runs in order: a champion trained on the clean days, the drifted days scored, monitoring
(reports, history, MLflow, the alert), a second monitor run doing nothing new, then the retrain
DAG skipping without an alert and retraining when forced.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from modelkit import (
    DRIFT_DAYS,
    MODEL_DAYS,
    MODEL_START,
    asset_events,
    copy_store,
    links_of,
    model_env,
    run_dag,
    task_states,
)

DRIFT_START = MODEL_START + timedelta(days=MODEL_DAYS)
SCORED = [MODEL_START + timedelta(days=i) for i in range(MODEL_DAYS - 4, MODEL_DAYS + DRIFT_DAYS)]


@pytest.fixture(scope="module")
def env(drift_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("monitor")
    url = copy_store(drift_store, root / "store")
    with model_env(url, f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"):
        from nightshift import registry
        from nightshift.storage import Store

        yield {"client": registry.configure(), "store": Store(url)}


def test_champion_on_the_clean_days_scores_the_drifted_ones(
    model_dags: dict[str, Any], env: dict[str, Any], spec: Any
) -> None:
    from nightshift import registry
    from nightshift.steps.score import score_step

    # labels landed up to the last clean day + delay: the window is the clean days only
    as_of = DRIFT_START + timedelta(days=spec.label.delay_days - 1)
    dr = run_dag(model_dags["train"], {"as_of": as_of.isoformat()})
    assert task_states(dr)["promote"] == "success"
    assert registry.alias_version(env["client"], "payments", "champion") == "1"
    run_id = env["client"].get_model_version("nightshift-payments", "1").run_id
    ref = {a.path for a in env["client"].list_artifacts(run_id, "reference")}
    assert ref == {"reference/reference.parquet"}
    scored = score_step(env["store"], spec, SCORED)
    assert scored.champion == "1" and len(scored.scored) == len(SCORED)


def test_fault_failures_between_a_days_monitor_writes_lose_no_history_row_or_metric(
    env: dict[str, Any], spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault: the first attempt loses MLflow while logging the third day's drift metrics; the
    second fills the disk when writing the history (every day's summary written by then). The
    third attempt (Airflow's next retry) ends with every row and every live metric, once."""
    import errno

    from mlflow import MlflowClient

    from nightshift.monitor import read_history
    from nightshift.steps.monitor import monitor_step
    from nightshift.storage import Store

    store, client = env["store"], env["client"]
    log_batch, open_atomic = MlflowClient.log_batch, Store.open_output_atomic
    drift_logs: list[int] = []
    faults: list[str] = []

    def mlflow_drops_once(self: Any, run_id: str, metrics: Any = (), *a: Any, **kw: Any) -> Any:
        if any(m.key == "live_prediction_drift" for m in metrics):
            drift_logs.append(1)
            if len(drift_logs) == 3 and "mlflow" not in faults:
                faults.append("mlflow")
                raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer (injected)")
        return log_batch(self, run_id, metrics, *a, **kw)

    def full_disk_once(self: Store, path: str) -> Any:
        if path.endswith("history.parquet") and "disk" not in faults:
            faults.append("disk")
            raise OSError(errno.ENOSPC, "No space left on device (injected)", path)
        return open_atomic(self, path)

    monkeypatch.setattr(MlflowClient, "log_batch", mlflow_drops_once)
    monkeypatch.setattr(Store, "open_output_atomic", full_disk_once)
    from nightshift.registry import RegistryUnavailable

    with pytest.raises(RegistryUnavailable, match="unreachable"):
        monitor_step(store, spec)
    with pytest.raises(OSError, match="No space left"):
        monitor_step(store, spec)
    assert faults == ["mlflow", "disk"] and read_history(store, "payments") == []
    result = monitor_step(store, spec)  # the retry that gets through

    history = {r["dt"]: r for r in read_history(store, "payments")}
    assert sorted(history) == [d.isoformat() for d in SCORED]
    assert all(r["drift_report"] and r["performance_report"] for r in history.values())
    run_id = client.get_model_version("nightshift-payments", "1").run_id
    for metric in ("live_drift_share", "live_prediction_drift", "live_roc_auc", "live_ece"):
        steps = [m.step for m in client.get_metric_history(run_id, metric)]
        assert sorted(steps) == sorted(set(steps)) and len(steps) == len(SCORED), metric
    # nothing was computed twice: the rows came back from the summaries
    assert result.drift == () and result.performance == ()
    assert len(result.recovered) == 2 * len(SCORED)


def test_monitor_reports_drift_and_performance_and_raises_the_alert(
    model_dags: dict[str, Any],
    env: dict[str, Any],
    spec: Any,
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pyarrow.parquet as pq

    from nightshift import retrain
    from nightshift.monitor import read_history

    store, client = env["store"], env["client"]
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    dr = run_dag(model_dags["monitor"])
    assert task_states(dr) == {"monitor": "success", "alert": "success"}

    history = {r["dt"]: r for r in read_history(store, "payments")}
    assert sorted(history) == [d.isoformat() for d in SCORED]
    clean = [history[d.isoformat()] for d in SCORED if d < DRIFT_START]
    drifted = [history[d.isoformat()] for d in SCORED if d >= DRIFT_START]
    assert all(not r["drifting"] and r["drift_share"] < spec.alerts.drift_share for r in clean)
    assert all(r["drifting"] and r["drift_share"] >= spec.alerts.drift_share for r in drifted)
    # every day's labels have landed: the old model's AUC falls under the concept drift
    assert min(r["roc_auc"] for r in clean) > 0.8
    assert max(r["roc_auc"] for r in drifted) < min(r["roc_auc"] for r in clean) - 0.05
    assert all(r["version"] == "1" and r["labelled_rows"] > 3000 for r in history.values())

    day = DRIFT_START.isoformat()
    for topic, names in (
        ("drift", {"v1-drift.html", "v1-drift.json", "v1-summary.json"}),
        ("performance", {"v1-performance.html", "v1-calibration.png", "v1-summary.json"}),
    ):
        folder = store.reports_dir("payments", topic, DRIFT_START)
        assert {Path(p).name for p in store.list_files(folder)} == names
    summary = store.read_json(store.reports_dir("payments", "drift", DRIFT_START) + "/v1-summary.json")
    assert summary["method"]["num"] == "wasserstein" and summary["sample_rows"] == 4000
    assert summary["report"].endswith(f"dt={day}/v1-drift.html")

    run_id = client.get_model_version("nightshift-payments", "1").run_id
    drift_metric = client.get_metric_history(run_id, "live_drift_share")
    assert len(drift_metric) == len(SCORED)
    assert len(client.get_metric_history(run_id, "live_roc_auc")) == len(SCORED)
    logged = {a.path for a in client.list_artifacts(run_id, f"monitoring/dt={day}")}
    assert f"monitoring/dt={day}/v1-drift.html" in logged

    alert = dr.get_task_instance("alert").xcom_pull(task_ids="alert")
    assert alert["kind"] == "drift+performance" and alert["version"] == "1"
    # six labelled days since the onset: the guard rails would retrain, so the alert Asset event
    # (what starts nightshift_retrain) is emitted, and nothing is recorded before that run decides
    assert asset_events("nightshift.payments.alert", dr) == [alert]
    assert retrain.read_records(store, "payments") == []
    assert alert["onset"] == day and alert["dt"] == SCORED[-1].isoformat()
    assert "drift share" in alert["reason"] and "AUC below" in alert["reason"]
    (note,) = [n for n in webhook_sink[1] if n["event"] == "alert"]
    assert note["title"] == "drift+performance alert on v1" and note["message"] == alert["reason"]
    assert note["details"]["onset"] == day and note["links"]["model health"].endswith("/health/payments")
    last = f"dt={SCORED[-1]}/v1-drift.html"
    assert links_of(dr, "monitor") == {
        "Evidently report": f"http://127.0.0.1:8080/nightshift/store/reports/payments/drift/{last}",
        "Model health": "http://127.0.0.1:8080/nightshift/health/payments",
    }
    assert pq.read_table(store.open_input(store.path("reports", "payments", "monitoring", "history.parquet")))


def test_a_second_monitor_run_adds_nothing_and_does_not_alert_twice(
    model_dags: dict[str, Any], env: dict[str, Any]
) -> None:
    dr = run_dag(model_dags["monitor"])
    assert task_states(dr) == {"monitor": "success", "alert": "skipped"}
    summary = dr.get_task_instance("monitor").xcom_pull(task_ids="monitor")
    assert summary["drift"] == [] and summary["performance"] == []


def test_an_alert_the_guard_rails_would_not_retrain_starts_no_retrain_run(
    model_dags: dict[str, Any],
    env: dict[str, Any],
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retrain finished on the last day's data (its cooldown runs) and the alert is new
    evidence: the monitor run's alert task records and notifies the guard rails' skip itself and
    emits no alert Asset event, so no nightshift_retrain run starts only to decide to skip."""
    from datetime import UTC, datetime

    from nightshift import retrain

    store = env["store"]
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    seen = store.path("reports", "payments", "monitoring", "last_alert.json")
    raised = store.read_json(seen)
    store.fs.delete_file(seen)
    now = datetime.now(UTC)
    done = retrain.RetrainDecision(
        dataset="payments",
        run_key="nightshift_retrain.payments/earlier",
        action="retrain",
        reason="an earlier retrain",
        decided_at=(now - timedelta(hours=2)).isoformat(),
        day=SCORED[-1].isoformat(),
        outcome={"status": "promoted", "finished_at": (now - timedelta(hours=1)).isoformat()},
    )
    retrain.write_record(store, done)
    try:
        dr = run_dag(model_dags["monitor"])
        assert task_states(dr) == {"monitor": "success", "alert": "success"}
        assert asset_events("nightshift.payments.alert", dr) == []
        rec = retrain.find_record(store, "payments", f"nightshift_monitor.payments/{dr.run_id}")
        assert rec is not None and rec.action == "skip"
        assert rec.reason.startswith("cooldown after the retrain on data of")
        (alert,) = rec.alerts
        assert {k: alert[k] for k in raised["key"]} == raised["key"] and rec.actor == "nightshift-monitor"
        result = dr.get_task_instance("alert").xcom_pull(task_ids="alert")
        assert result["retrain"] == f"skipped by the guard rails: {rec.reason}"
        skipped = [n for n in webhook_sink[1] if n["event"] == "retrain_skipped"]
        assert [(n["task_id"], n["message"]) for n in skipped] == [("alert", rec.reason)]
        assert skipped[0]["details"]["failed_check"] == "cooldown"
        assert [n["event"] for n in webhook_sink[1]].count("alert") == 1  # the alert itself, too
    finally:  # the later tests start from no retrain record, with the alert raised
        store.delete_dir(retrain.records_dir(store, "payments"))
        store.write_json_atomic(seen, raised)


def test_retrain_without_an_alert_is_skipped_recorded_and_notified_once(
    model_dags: dict[str, Any],
    env: dict[str, Any],
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nightshift import retrain

    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    dr = run_dag(model_dags["retrain"])
    assert set(task_states(dr).values()) == {"skipped"}
    (rec,) = retrain.read_records(env["store"], "payments")
    assert rec.action == "skip" and "no alert" in rec.reason
    assert (rec.actor, rec.triggered_by, rec.on_behalf_of) == ("dag_test", "dag_test", None)
    # one notification for the decision (not one per skipped task), at the lowest severity
    (note,) = webhook_sink[1]
    assert (note["event"], note["severity"], note["task_id"]) == ("retrain_skipped", "info", "decide")
    assert note["title"] == "retrain skipped by the guard rails" and note["message"] == rec.reason
    assert note["details"]["failed_check"] == "alert" and note["details"]["action"] == "skip"
    assert note["links"]["task"].endswith(f"/runs/{dr.run_id}/tasks/decide")
    assert note["links"]["model health"].endswith("/nightshift/health/payments")


def test_a_manual_retrain_with_bad_overrides_fails_naming_them_and_records_nothing(
    model_dags: dict[str, Any], env: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    from nightshift import retrain

    before = len(retrain.read_records(env["store"], "payments"))
    capfd.readouterr()
    dr = run_dag(model_dags["retrain"], {"force": True, "xgb_params": {"max_dept": 3}, "window_days": 4})
    states = task_states(dr)
    assert states["decide"] == "failed" and states["train"] == "upstream_failed", states
    out = capfd.readouterr()
    log = out.out + out.err
    assert "invalid retrain request" in log and "xgb_params.max_dept: not an overridable" in log
    assert "window_days: 4 is not an integer >= 5" in log
    assert len(retrain.read_records(env["store"], "payments")) == before


def test_a_forced_retrain_goes_through_the_gate_and_is_recorded(
    model_dags: dict[str, Any], env: dict[str, Any]
) -> None:
    from nightshift import registry, retrain

    overrides = {"window_days": 8, "xgb_params": {"max_depth": 3}, "note": "check the drifted days"}
    dr = run_dag(model_dags["retrain"], {"force": True, "actor": "test-operator", **overrides})
    states = task_states(dr)
    assert (
        states["decide"]
        == states["train"]
        == states["gate"]
        == states["serving_check"]
        == states["review"]
        == "success"
    )
    assert states["record"] == "success"
    rec = retrain.read_records(env["store"], "payments")[-1]
    assert rec.action == "retrain" and rec.forced
    # the actor is who Airflow says triggered the run; the "actor" Param is on behalf of
    assert (rec.actor, rec.on_behalf_of, rec.triggered_by) == ("dag_test", "test-operator", "dag_test")
    assert rec.overrides == overrides
    assert "forced by dag_test on behalf of test-operator (check the drifted days)" in rec.reason
    assert rec.outcome is not None and rec.outcome["status"] in ("promoted", "rejected")
    assert rec.outcome["version"] == "2"
    # trained on the most recent labelled days, drifted ones included, with the overrides
    run = env["client"].get_run(env["client"].get_model_version("nightshift-payments", "2").run_id)
    assert run.data.tags["nightshift.window"].endswith(f"{SCORED[-1]} (8 days)")
    assert run.data.params["xgb.max_depth"] == "3"
    if rec.outcome["status"] == "promoted":
        assert registry.alias_version(env["client"], "payments", "champion") == "2"
    assert registry.read_audit(env["store"], "payments")[-1].version == "2"
