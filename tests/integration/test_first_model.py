"""A first model on a dataset where XGBoost is no better than its logistic baseline, through the
real DAGs and a registry of its own: the baseline competes, wins, serves and is scored; and the
bootstrap guard rail keeps automatic runs without a champion from training every day.

Each test gets its own copy of the model store and its own SQLite MLflow store, and a spec of
its own (``NIGHTSHIFT_DATASETS_DIR``): the demo's, with a small window, and XGBoost cut down to
three stumps (which a logistic regression beats on the demo data).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from modelkit import MODEL_DAYS, MODEL_START, copy_store, model_env, run_dag, task_states

ROOT = Path(__file__).resolve().parents[2]
LAST_DAY = MODEL_START + timedelta(days=MODEL_DAYS - 1)


def _spec_dir(tmp_path: Path, **changes: Any) -> Path:
    data = yaml.safe_load((ROOT / "datasets" / "payments.yaml").read_text())
    data["training"].update(window_days=5, num_boost_round=3, params={"max_depth": 1, "eta": 0.05})
    for section, values in changes.items():
        data[section] = {**(data.get(section) or {}), **values}
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "payments.yaml").write_text(yaml.safe_dump(data))
    return folder


@pytest.fixture
def own_registry(
    model_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    from nightshift import registry
    from nightshift.storage import Store

    url = copy_store(Path(Store(model_store).root), tmp_path / "store")
    with model_env(url, f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts"):
        yield {"client": registry.configure(), "store": Store(url)}


def test_xgboost_no_better_than_its_baseline_gets_a_logistic_champion_that_is_scored(
    model_dags: dict[str, Any], own_registry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from nightshift import evaluate as ev
    from nightshift import registry
    from nightshift.features import FeatureTransform
    from nightshift.spec import find_spec
    from nightshift.steps.monitor import _reference

    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(_spec_dir(tmp_path)))
    client, store = own_registry["client"], own_registry["store"]
    dr = run_dag(model_dags["train"])
    assert task_states(dr) == {
        "train": "success",
        "gate": "success",
        "serving_check": "success",
        "review": "success",
        "promote": "success",
    }
    assert registry.alias_version(client, "payments", "champion") == "1"
    verdict = dr.get_task_instance("gate").xcom_pull(task_ids="gate")
    xgb_run = verdict["challenger_run_id"]

    # the version is the baseline's own run, packaged like any model, tagged as such
    mv = client.get_model_version("nightshift-payments", "1")
    assert mv.run_id == verdict["run_id"] != xgb_run
    assert (mv.tags["nightshift.model_kind"], verdict["model_kind"]) == ("logistic", "logistic")
    run = client.get_run(mv.run_id)
    assert run.data.tags["nightshift.model_kind"] == "logistic"
    assert run.data.tags["nightshift.competed_with"] == xgb_run
    assert run.data.tags[registry.RUN_KEY] == f"nightshift_train.payments/{dr.run_id}#baseline"
    assert {"reference", "importance.json", "serving_check.json", "lineage.json", "gate"} <= {
        a.path for a in client.list_artifacts(mv.run_id)
    }
    # the evidence: which model won and by how much, the same gate on both
    comp = verdict["competition"]
    assert comp["winner"] == "logistic" and comp["margin"] == pytest.approx(
        comp["logistic"] - comp["xgboost"]
    )
    assert comp["margin"] > 0 and "baseline" in comp["xgboost_failed"] and comp["logistic_failed"] == []
    assert verdict["reason"].startswith(
        f"baseline won: logistic roc_auc {comp['logistic']:.4f} vs XGBoost {comp['xgboost']:.4f} "
        f"({comp['margin']:+.4f})"
    )
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["baseline"]["passed"]
    assert checks["baseline"]["detail"] == "not compared: the candidate is the logistic baseline itself"
    assert checks["serving_skew"]["passed"], checks["serving_skew"]
    assert checks["serving_skew"]["detail"].startswith("packaged model = in-process logistic model on 1000")
    assert client.get_run(xgb_run).data.tags["nightshift.verdict"] == "reject"
    lost = json.loads(Path(client.download_artifacts(xgb_run, "gate/verdict.json")).read_text())
    assert lost["competition"] == comp and not lost["promote"]
    # audited as such
    (event,) = registry.read_audit(store, "payments")
    assert (event.action, event.version, event.model_kind) == ("promote", "1", "logistic")
    assert event.reason.startswith("baseline won: logistic") and event.run_id == mv.run_id
    assert mv.tags["nightshift.decision"] == "promote"

    # scored with the pinned version, exactly as the packaged model scores
    assert task_states(run_dag(model_dags["score"], {"dt": LAST_DAY.isoformat()})) == {"score": "success"}
    preds = pq.read_table(store.open_input(store.predictions_file("payments", LAST_DAY)))
    assert set(preds.column("model_version").to_pylist()) == {"1"}
    events = pq.read_table(store.open_input(store.published_file("payments", "events", LAST_DAY)))
    spec = find_spec("payments")
    model = registry.load_model("payments", "1")
    served = np.asarray(model.predict(FeatureTransform.from_spec(spec, events).frame(events)))
    np.testing.assert_allclose(preds.column("score").to_numpy(), served, atol=1e-12)
    # monitoring's reference and importance weights exist for it; explain() works on it
    ref = _reference(client, spec, "1")
    assert ref.table.num_rows > 0 and sum(ref.weights.values()) == pytest.approx(1.0)
    assert max(ref.weights.values()) > 1.0 / len(spec.feature_names)
    inner = model.unwrap_python_model()
    steps = ev.explain(inner.model, inner.transform, events.slice(0, 3))
    assert all(s["matches"] for s in steps)


def _context(run_type: str, run_id: str, task_id: str = "train") -> dict[str, Any]:
    """What the task bodies read of an Airflow context, for a run of ``run_type`` (dag.test()
    runs are manual: the automatic ones are what this test is about)."""
    dr = SimpleNamespace(dag_id="nightshift_train.payments", run_id=run_id, run_type=run_type)
    ti = SimpleNamespace(
        dag_id=dr.dag_id, run_id=run_id, task_id=task_id, try_number=1, xcom_push=lambda key, value: None
    )
    return {"dag_run": dr, "ti": ti, "params": {}}


def test_bootstrap_runs_without_a_champion_train_once_per_period_and_say_why(
    own_registry: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    webhook_sink: tuple[str, list[dict[str, Any]]],
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from nightshift import registry, retrain
    from nightshift.airflow.tasks.gate import run_gate, run_promote
    from nightshift.airflow.tasks.train import run_train

    # nothing can pass (an AUC floor of 0.99): every first model is rejected
    folder = _spec_dir(
        tmp_path,
        gate={"min_metrics": {"roc_auc": 0.99}},
        retrain={"bootstrap_every_days": 3},
    )
    data = yaml.safe_load((folder / "payments.yaml").read_text())
    data["training"]["tuning"] = {"trials": 1, "timeout_s": 60}
    (folder / "payments.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(folder))
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    client, store, received = own_registry["client"], own_registry["store"], webhook_sink[1]

    first = "asset_triggered__1"
    trained = run_train("payments", _context("asset_triggered", first))  # type: ignore[arg-type]
    # no champion, no earlier attempt: it trains, and the first model is tuned by default
    # (trial 0 = the spec's params, + 1 search trial)
    assert client.get_run(trained["run_id"]).data.params["tuning_trials"] == "2"
    verdict = run_gate("payments", trained, _context("asset_triggered", first, "gate"))  # type: ignore[arg-type]
    assert not verdict["promote"] and "min:roc_auc" in verdict["failed_checks"]
    with pytest.raises(AirflowSkipException, match="not promoted"):
        run_promote("payments", verdict, _context("asset_triggered", first, "promote"), None)  # type: ignore[arg-type]
    (rejection,) = received
    assert rejection["event"] == "rejection" and "min:roc_auc" in rejection["message"]
    assert "what to try: roc_auc is below its floor (gate.min_metrics)" in rejection["message"]
    (attempt,) = retrain.read_records(store, "payments", retrain.BOOTSTRAP)
    assert attempt.ran and attempt.outcome is not None and attempt.outcome["status"] == "rejected"
    versions = len(client.search_model_versions("name = 'nightshift-payments'"))

    # the next automatic runs on the same labelled days wait, and only the first says so
    for i in (2, 3):
        with pytest.raises(AirflowSkipException, match=r"no champion yet.*next attempt on data from"):
            run_train("payments", _context("asset_triggered", f"asset_triggered__{i}"))  # type: ignore[arg-type]
    skips = [n for n in received if n["event"] == "retrain_skipped"]
    assert len(skips) == 1 and skips[0]["details"]["kind"] == "bootstrap"
    assert "retrain.bootstrap_every_days 3" in skips[0]["message"]
    assert len(client.search_model_versions("name = 'nightshift-payments'")) == versions
    records = retrain.read_records(store, "payments", retrain.BOOTSTRAP)
    assert [r.action for r in records] == ["retrain", "skip", "skip"]
    # a manual run is not held back
    manual = run_train("payments", _context("manual", "manual__1"))  # type: ignore[arg-type]
    assert not manual["reused"]
    assert registry.alias_version(client, "payments", "champion") is None


def test_an_automatic_run_waits_for_its_days_labels_so_the_gate_finds_the_window_it_trained_on(
    own_registry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest run that emits *train_due* validates the day's labels in a branch of its own:
    the training run it starts reads its window only once those labels are in (a window read
    before would change under the gate, which refuses the candidate). Found by the Celery system
    test on a machine whose labels branch ran slower than the training's start."""
    import threading
    import time

    from airflow.sdk import Asset

    from nightshift.airflow.tasks.gate import run_gate
    from nightshift.airflow.tasks.train import run_train
    from nightshift.ingest import ingest_partition, labels_in_flight
    from nightshift.spec import find_spec

    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(_spec_dir(tmp_path)))
    store, spec = own_registry["store"], find_spec("payments")
    arrival = LAST_DAY + timedelta(days=spec.label.delay_days)  # the last labels (LAST_DAY's)
    store.delete_dir(store.published_file("payments", "labels", arrival).rsplit("/", 1)[0])
    store.delete_dir(store.reports_dir("payments", "validation", arrival))
    assert labels_in_flight(store, spec, arrival)  # landed, due, not validated: being ingested
    ingest = threading.Timer(2.0, ingest_partition, (store, spec, "labels", arrival))
    context = _context("asset_triggered", "asset_triggered__1")
    due = SimpleNamespace(extra={"dt": arrival.isoformat(), "due": "no champion yet"})
    context["triggering_asset_events"] = {Asset(name="nightshift.payments.train_due"): [due]}
    t0 = time.monotonic()
    ingest.start()
    trained = run_train("payments", context)  # type: ignore[arg-type]
    ingest.join()
    assert time.monotonic() - t0 >= 2.0
    assert store.exists(store.published_file("payments", "labels", arrival))
    # the gate re-reads the window: the same as trained (else RegistryError: window changed)
    verdict = run_gate("payments", trained, _context("asset_triggered", "asset_triggered__1", "gate"))  # type: ignore[arg-type]
    assert verdict["challenger_run_id"] == trained["run_id"] and verdict["version"] == "1"
