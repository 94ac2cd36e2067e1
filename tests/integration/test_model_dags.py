"""Train → gate → promote → score through dag.test(), with the embedded SQLite MLflow store.

One registry for the module, whose first champion the train DAG makes before any test runs
(the first test asserts on that run); then idempotent retries, a worse challenger, a second
promotion, rollbacks and the faults. Every test reads the versions it works on from the registry
or makes the state it needs (``refusable_versions``, ``promoted_to_roll_back``), and one that
breaks something puts it back, so each runs alone or in any position (a reversed run is how
that is checked).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from modelkit import MODEL_DAYS, MODEL_START, links_of, model_env, run_dag, task_states

ROOT = Path(__file__).resolve().parents[2]
LAST_DAY = MODEL_START + timedelta(days=MODEL_DAYS - 1)


@pytest.fixture(scope="module")
def registry_env(
    model_store: str, model_dags: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The module's registry, and in ``first`` its first train DAG run on the empty registry
    with what it left (the champion alias, v1's status, the audit), read before any test ran."""
    root = tmp_path_factory.mktemp("mlflow-sqlite")
    with model_env(model_store, f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"):
        from nightshift import registry
        from nightshift.storage import Store

        client, store = registry.configure(), Store(model_store)
        assert not _versions(client)
        dr = run_dag(model_dags["train"])
        first = {
            "run": dr,
            "states": task_states(dr),
            "champion": registry.alias_version(client, "payments", "champion"),
            "status": client.get_model_version("nightshift-payments", "1").tags.get("nightshift.status"),
            "audit": registry.read_audit(store, "payments"),
        }
        yield {"client": client, "store": store, "root": root, "first": first}


@pytest.fixture
def audit_write_fails_once(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fault: the store refuses the next audit record once (ENOSPC); the paths it refused."""
    import errno

    from nightshift.storage import Store

    real = Store.write_json_atomic
    failed: list[str] = []

    def full_disk_once(self: Store, path: str, obj: Any) -> None:
        if "/audit/" in path and not failed:
            failed.append(path)
            raise OSError(errno.ENOSPC, "No space left on device (injected)", path)
        real(self, path, obj)

    monkeypatch.setattr(Store, "write_json_atomic", full_disk_once)
    return failed


def _versions(client: Any) -> list[Any]:
    return client.search_model_versions("name = 'nightshift-payments'")


def test_first_run_trains_on_the_window_and_promotes_a_champion(registry_env: dict[str, Any]) -> None:
    from nightshift import registry

    client, first = registry_env["client"], registry_env["first"]
    dr = first["run"]
    assert first["states"] == {
        "train": "success",
        "gate": "success",
        "serving_check": "success",
        "review": "success",
        "promote": "success",
    }
    assert first["champion"] == "1"

    mv = client.get_model_version("nightshift-payments", "1")
    run = client.get_run(mv.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    # the window: the last 10 labelled days (labels land 3 days late), split by time
    assert tags["nightshift.window"] == "2026-03-05..2026-03-14 (10 days)"
    assert tags["nightshift.device"] == "cpu" and "fallback" in tags["nightshift.device_reason"]
    assert tags[registry.RUN_KEY] == f"nightshift_train.payments/{dr.run_id}"
    assert tags["nightshift.dag_id"] == "nightshift_train.payments"
    assert tags["nightshift.code_version"] != "unknown"
    assert tags["nightshift.verdict"] == "promote"
    assert metrics["holdout_roc_auc"] > 0.8 and metrics["train_rows"] == 6 * 4000
    assert run.data.params["xgb.seed"] == "42" and run.data.params["train_days"] == "6"
    assert {i.dataset.name.split("-")[1] for i in run.inputs.dataset_inputs} == {
        "train",
        "validation",
        "holdout",
    }

    artifacts = {a.path for a in client.list_artifacts(mv.run_id)} | {
        a.path for a in client.list_artifacts(mv.run_id, "gate")
    }
    assert {"lineage.json", "importance.json", "importance.png", "gate/evaluation.html"} <= artifacts
    assert {"gate/calibration.png", "gate/verdict.json", "gate/evaluation.json"} <= artifacts
    lineage = json.loads(Path(client.download_artifacts(mv.run_id, "lineage.json")).read_text())
    assert lineage["partitions"][0]["dt"] == "2026-03-05"
    assert all(len(p["sha256"]) == 64 and p["validation"]["success"] for p in lineage["partitions"])
    assert lineage["split"]["holdout"]["days"] == ["2026-03-13", "2026-03-14"]
    importance = json.loads(Path(client.download_artifacts(mv.run_id, "importance.json")).read_text())
    assert importance[0]["mean_abs_contribution"] > 0
    # the gate's numerical-stability and serving-skew checks ran on the real packaged model
    assert {"feature_cost.json", "serving_check.json"} <= artifacts
    verdict = json.loads(Path(client.download_artifacts(mv.run_id, "gate/verdict.json")).read_text())
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["stability"]["passed"] and checks["serving_skew"]["passed"], checks
    assert checks["serving_skew"]["detail"].startswith(
        "packaged model = in-process booster on 1000 holdout rows"
    )
    # each feature's value and cost, the ingest side measured per column by the real GX ingest
    cost = json.loads(Path(client.download_artifacts(mv.run_id, "feature_cost.json")).read_text())
    features = {r["feature"]: r for r in cost["features"]}
    assert set(features) == {f["feature"] for f in importance}
    assert cost["totals"]["days_measured"] == cost["totals"]["days"] == 10
    assert all(r["ingest_validate_s"] > 0 and r["window_bytes"] > 0 for r in features.values())
    assert sum(r["importance_share"] for r in features.values()) == pytest.approx(1.0)

    # the serving check: v1 served by a fresh `nightshift serve`, its answers = the gate's scores
    assert {"gate/serving_sample.json", "gate/serving.json"} <= artifacts
    checked = dr.get_task_instance("serving_check").xcom_pull(task_ids="serving_check")
    serving = checked["serving"]
    assert serving["passed"] and serving["version"] == "1" and serving["failed_requests"] == 0, serving
    assert serving["rows_compared"] >= 1000 and serving["max_diff"] <= 1e-6
    assert serving["timed_requests"] == 200 and serving["p99_ms"] < serving["max_latency_ms"] == 50
    assert checked["checks"][-1] == {"name": "serving", "passed": True, "detail": serving["detail"]}
    assert mv.tags["nightshift.serving"] == "passed"

    events = first["audit"]
    assert [(e.action, e.version, e.previous_version) for e in events] == [("promote", "1", None)]
    assert events[0].trigger.startswith(f"dag nightshift_train.payments run {dr.run_id}")
    assert events[0].serving == serving  # the audit trail keeps the check's result
    assert first["status"] == "champion"


def test_score_dag_writes_predictions_with_the_pinned_version(
    model_dags: dict[str, Any], registry_env: dict[str, Any]
) -> None:
    import pyarrow.parquet as pq

    from nightshift import registry

    store = registry_env["store"]
    champion = registry.alias_version(registry_env["client"], "payments", "champion")
    dr = run_dag(model_dags["score"], {"dt": LAST_DAY.isoformat()})
    assert task_states(dr) == {"score": "success"}
    path = store.predictions_file("payments", LAST_DAY)
    table = pq.read_table(store.open_input(path))
    curated = pq.read_table(store.open_input(store.published_file("payments", "events", LAST_DAY)))
    assert table.num_rows == curated.num_rows
    assert set(table.column("model_version").to_pylist()) == {champion}
    scores = table.column("score").to_numpy()
    assert ((scores > 0) & (scores < 1)).all()
    assert table.column("payment_id").to_pylist() == curated.column("payment_id").to_pylist()


@pytest.fixture
def booster_predictions(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every prediction an XGBoost booster makes, as ``(booster, rows, kind)`` (kind: ``score``
    or ``contribs``), counted by a wrapper around the real ``Booster.predict`` /
    ``inplace_predict``; and the booster inside each pyfunc ``registry.load_pyfunc`` loads."""
    import xgboost as xgb

    from nightshift import registry

    seen: dict[str, Any] = {"calls": [], "loaded": {}}
    depth = [0]

    def counting(name: str) -> Any:
        real = getattr(xgb.Booster, name)

        def wrapper(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
            if not depth[0]:  # the outer call only (one may go through the other)
                rows = data.num_row() if isinstance(data, xgb.DMatrix) else len(data)
                kind = "contribs" if kwargs.get("pred_contribs") else "score"
                seen["calls"].append((self, rows, kind))
            depth[0] += 1
            try:
                return real(self, data, *args, **kwargs)
            finally:
                depth[0] -= 1

        return wrapper

    for name in ("predict", "inplace_predict"):
        monkeypatch.setattr(xgb.Booster, name, counting(name))
    real_load = registry.load_pyfunc

    def loading(uri: str) -> Any:
        model = real_load(uri)
        seen["loaded"][uri] = getattr(model.unwrap_python_model(), "booster", None)
        return model

    monkeypatch.setattr(registry, "load_pyfunc", loading)
    return seen


def test_a_retried_run_finds_its_run_and_version(
    registry_env: dict[str, Any], booster_predictions: dict[str, Any]
) -> None:
    from nightshift import registry
    from nightshift.spec import find_spec
    from nightshift.steps.gate import decide_step, gate_step
    from nightshift.steps.train import train_step
    from nightshift.train import load_window

    client, store, spec = registry_env["client"], registry_env["store"], find_spec("payments")
    before = len(_versions(client))
    champion = registry.alias_version(client, "payments", "champion")
    key = "nightshift_train.payments/retried-run"
    holdout_rows = load_window(store, spec).split("holdout").num_rows
    calls = booster_predictions["calls"]
    first = train_step(store, spec, key)
    # training scores the serving-skew sample and the monitoring reference, never the holdout
    assert calls and all(rows < holdout_rows for _, rows, _ in calls), [c[1:] for c in calls]
    run = client.get_run(first.run_id)
    assert {k for k in run.data.metrics if k.startswith("holdout_")} == {"holdout_rows"}  # the split's
    assert first.holdout_roc_auc is None
    assert "importance.json" not in {a.path for a in client.list_artifacts(first.run_id)}
    assert run.data.metrics["holdout_rows"] == holdout_rows
    again = train_step(store, spec, key)
    assert not first.reused and again.reused and again.run_id == first.run_id
    calls.clear()
    v1 = gate_step(store, spec, first.run_id, key)
    # the gate scores the challenger's holdout once (its packaged booster) and logs that evaluation
    challenger = booster_predictions["loaded"][f"runs:/{first.run_id}/model"]
    whole = [kind for b, rows, kind in calls if b is challenger and rows == holdout_rows]
    assert whole == ["score"], [(rows, kind) for b, rows, kind in calls if b is challenger]
    metrics = client.get_run(first.run_id).data.metrics
    assert {k: metrics[f"holdout_{k}"] for k in v1.challenger_metrics} == v1.challenger_metrics
    assert v1.challenger_metrics["roc_auc"] > 0.8
    gated = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"importance.json", "importance.png", "feature_cost.json", "evaluation_challenger.json"} <= gated
    v2 = gate_step(store, spec, first.run_id, key)
    assert v1.version == v2.version
    assert v2.challenger_metrics == v1.challenger_metrics
    history = client.get_metric_history(first.run_id, "holdout_roc_auc")
    assert {m.value for m in history} == {v1.challenger_metrics["roc_auc"]}
    assert len(_versions(client)) == before + 1
    # same data, same seed: an identical model ties with the champion (every champion of the
    # module serves the first model), and a tie promotes
    assert v1.promote and v1.deltas["roc_auc"] == pytest.approx(0.0)
    decide_step(store, spec, v1, actor="test", trigger="retry test")
    decide_step(store, spec, v1, actor="test", trigger="retry test")  # a retried promote
    assert registry.alias_version(client, "payments", "champion") == v1.version
    assert registry.alias_version(client, "payments", "previous") == champion
    promotions = [e for e in registry.read_audit(store, "payments") if e.version == v1.version]
    assert len(promotions) == 1


def test_a_worse_challenger_is_never_promoted_and_the_rejection_is_notified(
    model_dags: dict[str, Any],
    registry_env: dict[str, Any],
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nightshift import registry

    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    client, store = registry_env["client"], registry_env["store"]
    champion = registry.alias_version(client, "payments", "champion")
    dr = run_dag(model_dags["train"], {"num_boost_round": 2, "xgb_params": {"max_depth": 1}})
    states = task_states(dr)
    assert states == {
        "train": "success",
        "gate": "success",
        "serving_check": "success",
        "review": "success",
        "promote": "skipped",
    }, states
    assert registry.alias_version(client, "payments", "champion") == champion
    worse = max(_versions(client), key=lambda v: int(v.version))
    assert worse.tags["nightshift.status"] == "rejected" and worse.tags["nightshift.decision"] == "reject"
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.previous_version) == ("reject", str(worse.version), champion)
    assert "champion" in last.reason and last.deltas["roc_auc"] < 0
    # the gate rejected it outright: no server was started for it
    assert last.serving == {"checked": False, "detail": "not run: the gate rejected the candidate"}
    assert (last.actor, last.triggered_by, last.on_behalf_of) == ("nightshift-gate", "dag_test", None)
    assert last.run_key == f"nightshift_train.payments/{dr.run_id}"
    # one notification for the decision, below a failure's severity, with its links
    (note,) = webhook_sink[1]
    assert (note["event"], note["severity"], note["task_id"]) == ("rejection", "warning", "promote")
    assert note["title"] == f"v{worse.version} not promoted (champion stays v{champion})"
    # the failing rules (the reason), then what to try about each
    assert note["message"].startswith(f"by nightshift-gate: {last.reason} | what to try: ")
    assert "the champion keeps serving" in note["message"]
    assert note["links"]["task"].endswith(f"/runs/{dr.run_id}/tasks/promote")
    assert note["links"]["model health"].endswith("/nightshift/health/payments")
    assert note["details"]["action"] == "reject" and note["details"]["version"] == str(worse.version)


def test_rollback_restores_the_previous_champion_and_is_audited(
    model_dags: dict[str, Any],
    registry_env: dict[str, Any],
    promoted_to_roll_back: tuple[str, str],
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nightshift import registry
    from nightshift.cli import main

    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    client, store = registry_env["client"], registry_env["store"]
    previous, champion = promoted_to_roll_back
    assert registry.alias_version(client, "payments", "champion") == champion
    assert registry.alias_version(client, "payments", "previous") == previous
    dr = run_dag(model_dags["rollback"], {"reason": "bad scores reported by ops", "actor": "alice"})
    assert task_states(dr) == {"rollback": "success"}
    assert registry.alias_version(client, "payments", "champion") == previous
    assert registry.alias_version(client, "payments", "previous") is None
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.previous_version) == ("rollback", previous, champion)
    # who acted is the user Airflow says triggered the run (dag.test's); the param is on behalf of
    assert (last.actor, last.on_behalf_of, last.triggered_by) == ("dag_test", "alice", "dag_test")
    assert last.who == "dag_test on behalf of alice"
    assert last.reason == "bad scores reported by ops"
    (note,) = [n for n in webhook_sink[1] if n["event"] == "rollback"]
    assert note["title"] == f"rolled back to v{previous} (was v{champion})"
    assert note["message"] == "by dag_test on behalf of alice: bad scores reported by ops"
    assert (
        client.get_model_version("nightshift-payments", champion).tags["nightshift.status"] == "rolled_back"
    )
    # nothing left to roll back to: a clear refusal, aliases untouched
    assert main(["--store", store.url, "rollback", "--dataset", "payments", "--reason", "again"]) == 1
    assert registry.alias_version(client, "payments", "champion") == previous


@pytest.fixture
def refusable_versions(registry_env: dict[str, Any]) -> dict[str, str]:
    """A test's own registry state, made with the registry's own operations: a champion, a
    version the gate rejected and one rolled back, as fresh versions of the module's first model.
    The champion found keeps serving and the ``previous`` alias is put back, so the module's
    other tests find the registry as they left it."""
    import uuid

    from nightshift import registry

    client, store = registry_env["client"], registry_env["store"]
    name, key = registry.model_name("payments"), f"own-state/{uuid.uuid4().hex[:8]}"
    first = client.get_model_version(name, "1")  # registry_env's first champion
    model_id = client.get_run(first.run_id).data.tags["nightshift.model_id"]
    experiment = registry.ensure_experiment(client, "payments")

    def new_version(role: str) -> str:
        """A finished run carrying the logged model, registered as the gate registers one."""
        tags = {"nightshift.model_id": model_id, registry.RUN_KEY: f"{key}/{role}"}
        run = client.create_run(experiment, tags=tags)
        client.set_terminated(run.info.run_id)
        return registry.register(client, "payments", run.info.run_id, f"{key}/{role}")

    who: dict[str, Any] = {"actor": "test", "trigger": f"fixture {key}"}
    champion = registry.alias_version(client, "payments", registry.CHAMPION)
    assert champion is not None
    rejected = new_version("rejected")
    client.set_model_version_tag(name, rejected, "nightshift.verdict", "reject")  # the gate's verdict tag
    registry.reject(client, store, "payments", rejected, reason="worse than the champion", **who)
    previous = registry.alias_version(client, "payments", registry.PREVIOUS)
    rolled_back = new_version("rolled-back")
    registry.promote(client, store, "payments", rolled_back, reason="promoted to be rolled back", **who)
    registry.rollback(client, store, "payments", reason="bad scores", **who)
    assert registry.alias_version(client, "payments", registry.CHAMPION) == champion
    if previous is not None:
        client.set_registered_model_alias(name, registry.PREVIOUS, previous)
    return {"champion": champion, "rejected": rejected, "rolled_back": rolled_back}


def test_a_manual_promotion_is_checked_before_anything_changes(
    model_dags: dict[str, Any],
    registry_env: dict[str, Any],
    refusable_versions: dict[str, str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    from nightshift import registry

    client, store = registry_env["client"], registry_env["store"]
    champion, rejected, rolled_back = (refusable_versions[k] for k in ("champion", "rejected", "rolled_back"))
    numbers = sorted(int(v.version) for v in _versions(client))
    absent, known = numbers[-1] + 1, ", ".join(f"v{n}" for n in numbers)
    audit = len(registry.read_audit(store, "payments"))
    refused = [
        ({"version": absent}, f"nightshift-payments has no version {absent} (versions: {known})"),
        ({"version": int(champion)}, f"nightshift-payments v{champion} is already the champion"),
        (
            {"version": int(rejected)},
            f"v{rejected}: the gate rejected it; it was rejected; set override_gate=true",
        ),
        ({"version": int(rolled_back)}, f"v{rolled_back}: it was rolled back; set override_gate=true"),
    ]
    for conf, message in refused:
        capfd.readouterr()
        dr = run_dag(model_dags["promote"], {"reason": "operator test", **conf})
        assert task_states(dr) == {"promote": "failed"}, conf
        out = capfd.readouterr()
        assert message in out.out + out.err, message
    assert registry.alias_version(client, "payments", "champion") == champion
    assert len(registry.read_audit(store, "payments")) == audit


def test_fault_a_manual_promotion_whose_audit_write_fails_once_is_audited_once_and_notified(
    model_dags: dict[str, Any],
    registry_env: dict[str, Any],
    refusable_versions: dict[str, str],
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    audit_write_fails_once: list[str],
) -> None:
    """Fault: the audit write fails once after the aliases moved; the retry finds the
    promotion its first attempt made (not "already the champion") and only records it."""
    from nightshift import registry

    client, store = registry_env["client"], registry_env["store"]
    champion, version = refusable_versions["champion"], refusable_versions["rolled_back"]
    url, received = webhook_sink
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", url)
    conf = {"version": int(version), "reason": "the champion misses the new merchants", "override_gate": True}
    conf["actor"] = "bob"
    before = len(registry.read_audit(store, "payments"))
    dr = run_dag(model_dags["promote"], conf)
    assert audit_write_fails_once, "the fault was not injected"
    assert task_states(dr) == {"promote": "success"}
    assert dr.get_task_instance("promote").try_number == 2
    assert len(registry.read_audit(store, "payments")) == before + 1
    assert registry.alias_version(client, "payments", "champion") == version
    assert registry.alias_version(client, "payments", "previous") == champion
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.previous_version) == ("promote", version, champion)
    assert (last.actor, last.on_behalf_of, last.triggered_by) == ("dag_test", "bob", "dag_test")
    why = "manual promotion: the champion misses the new merchants (overriding: it was rolled back)"
    assert last.reason == why
    assert last.trigger.startswith(f"dag nightshift_promote.payments run {dr.run_id}")
    assert links_of(dr, "promote") == {"Model health": "http://127.0.0.1:8080/nightshift/health/payments"}
    (note,) = [n for n in received if n["event"] == "promotion"]
    assert note["title"] == f"promoted v{version} (was v{champion})"
    assert note["message"].startswith("by dag_test on behalf of bob: manual promotion")
    assert note["severity"] == "info"
    assert note["links"]["model health"].endswith("/nightshift/health/payments")
    assert note["details"]["version"] == version and note["task_id"] == "promote"
    assert [n["event"] for n in received] == ["promotion"]


@pytest.fixture
def promoted_to_roll_back(
    registry_env: dict[str, Any], refusable_versions: dict[str, str]
) -> tuple[str, str]:
    """A test's own state for a rollback: a fresh version promoted over the champion (before
    any fault fixture is armed). Returns (the champion, the version to roll back)."""
    from nightshift import registry

    client, store = registry_env["client"], registry_env["store"]
    champion, version = refusable_versions["champion"], refusable_versions["rejected"]
    who: dict[str, Any] = {"actor": "test", "trigger": "the state of the rollback fault test"}
    registry.promote(client, store, "payments", version, reason="promoted to be rolled back", **who)
    return champion, version


def test_fault_a_rollback_whose_audit_write_fails_once_is_finished_by_its_retry(
    model_dags: dict[str, Any],
    registry_env: dict[str, Any],
    promoted_to_roll_back: tuple[str, str],
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    audit_write_fails_once: list[str],
) -> None:
    """Fault: the store refuses the audit record once (ENOSPC) after the aliases moved. Airflow
    retries; the retry finds the rollback its first attempt made and only records it."""
    from nightshift import registry

    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    client, store = registry_env["client"], registry_env["store"]
    champion, version = promoted_to_roll_back
    before = len(registry.read_audit(store, "payments"))
    dr = run_dag(model_dags["rollback"], {"reason": "fault: the audit write fails once"})
    assert audit_write_fails_once, "the fault was not injected"
    assert task_states(dr) == {"rollback": "success"}
    assert dr.get_task_instance("rollback").try_number == 2
    assert registry.alias_version(client, "payments", "champion") == champion
    assert registry.alias_version(client, "payments", "previous") is None
    events = registry.read_audit(store, "payments")
    assert len(events) == before + 1
    last = events[-1]
    assert (last.action, last.version, last.previous_version) == ("rollback", champion, version)
    assert last.run_key == f"nightshift_rollback.payments/{dr.run_id}"
    assert last.reason == "fault: the audit write fails once"
    tags = {v: client.get_model_version("nightshift-payments", v).tags for v in (version, champion)}
    assert (tags[version]["nightshift.status"], tags[champion]["nightshift.status"]) == (
        "rolled_back",
        "champion",
    )
    assert [n["event"] for n in webhook_sink[1]] == ["rollback"]


def test_fault_a_verdict_against_a_champion_replaced_meanwhile_is_refused_audited_and_notified(
    model_dags: dict[str, Any],
    registry_env: dict[str, Any],
    refusable_versions: dict[str, str],
    webhook_sink: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault: while the challenger's review is pending, another DAG promotes a new champion.
    The promotion of the stale verdict is refused inside the registry pool."""
    from nightshift import registry
    from nightshift.airflow.review import ReviewOperator
    from nightshift.spec import find_spec
    from nightshift.steps.gate import manual_promote_step

    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", webhook_sink[0])
    client, store = registry_env["client"], registry_env["store"]
    # the champion serves the first model (the fixture's versions are that model again): the
    # challenger, trained on the same days, ties with it
    champion, meanwhile = refusable_versions["champion"], refusable_versions["rolled_back"]
    review = ReviewOperator.execute

    def promoted_meanwhile(self: ReviewOperator, context: Any) -> Any:
        manual_promote_step(
            store,
            find_spec("payments"),
            meanwhile,
            actor="carol",
            trigger="another dag",
            reason="promoted while the review waited",
            override_gate=True,
        )
        return review(self, context)

    monkeypatch.setattr(ReviewOperator, "execute", promoted_meanwhile)
    dr = run_dag(model_dags["train"])
    states = task_states(dr)
    assert states == {
        "train": "success",
        "gate": "success",
        "serving_check": "success",
        "review": "success",
        "promote": "skipped",
    }, states
    verdict = dr.get_task_instance("gate").xcom_pull(task_ids="gate")
    assert verdict["promote"] and verdict["champion"] == champion  # a tie: the gate said promote
    assert registry.alias_version(client, "payments", "champion") == meanwhile
    assert registry.alias_version(client, "payments", "previous") == champion
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.previous_version) == ("reject", verdict["version"], meanwhile)
    moved = f"champion moved from v{champion} to v{meanwhile} since the gate"
    assert moved in last.reason
    mv = client.get_model_version("nightshift-payments", verdict["version"])
    assert mv.tags["nightshift.status"] == "rejected"
    (note,) = webhook_sink[1]
    assert (note["event"], note["severity"]) == ("rejection", "warning")
    assert note["title"] == f"v{verdict['version']} not promoted (champion stays v{meanwhile})"
    assert moved in note["message"]


def test_a_manual_run_without_enough_labelled_days_fails_clearly(
    model_dags: dict[str, Any], registry_env: dict[str, Any]
) -> None:
    client = registry_env["client"]
    before = len(_versions(client))
    as_of = (MODEL_START + timedelta(days=5)).isoformat()  # labels due for 3 days only
    dr = run_dag(model_dags["train"], {"as_of": as_of})
    states = task_states(dr)
    assert states["train"] == "failed" and states["gate"] == "upstream_failed", states
    assert len(_versions(client)) == before


def test_a_champion_whose_artifact_is_missing_fails_clearly_and_leaves_the_registry(
    registry_env: dict[str, Any], tmp_path: Path
) -> None:
    import shutil
    from urllib.parse import urlparse

    from nightshift import registry
    from nightshift.spec import find_spec
    from nightshift.steps.gate import gate_step
    from nightshift.steps.score import score_step
    from nightshift.steps.train import train_step

    client, store, spec = registry_env["client"], registry_env["store"], find_spec("payments")
    champion = registry.alias_version(client, "payments", "champion")
    assert champion is not None
    mv = client.get_model_version("nightshift-payments", champion)
    model_id = client.get_run(mv.run_id).data.tags["nightshift.model_id"]
    location = Path(urlparse(client.get_logged_model(model_id).artifact_location).path)
    aside = tmp_path / "artifact-aside"
    shutil.move(location, aside)  # put back below: the module's other champions serve this model
    try:
        versions = len(_versions(client))
        trained = train_step(store, spec, "nightshift_train.payments/missing-artifact")
        with pytest.raises(registry.RegistryError, match=f"v{champion}: its model artifact cannot be loaded"):
            gate_step(store, spec, trained.run_id, "nightshift_train.payments/missing-artifact")
        with pytest.raises(registry.RegistryError, match="cannot be loaded"):
            score_step(store, spec, [LAST_DAY])
        assert registry.alias_version(client, "payments", "champion") == champion
        assert len(_versions(client)) == versions
    finally:
        shutil.move(aside, location)


@pytest.mark.parametrize(
    ("run_type", "outcome"), [("asset_triggered", "AirflowSkipException"), ("manual", "AirflowFailException")]
)
def test_too_few_labels_skips_an_automatic_run_and_fails_a_manual_one(
    registry_env: dict[str, Any],
    run_type: str,
    outcome: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    from nightshift.airflow.tasks.train import run_train

    # a spec that trains on every batch, so the champion does not stop the automatic run first
    data = yaml.safe_load((ROOT / "datasets" / "payments.yaml").read_text())
    data["retrain"] = {"on_new_data": "always"}
    (tmp_path / "payments.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(tmp_path))
    with pytest.raises(Exception) as info:
        run_train("payments", _context(run_type, as_of=MODEL_START + timedelta(days=5)))
    assert type(info.value).__name__ == outcome
    assert "labelled day(s) cannot make a split" in str(info.value)


def _context(run_type: str, **params: Any) -> Any:
    from types import SimpleNamespace

    return {
        "dag_run": SimpleNamespace(
            dag_id="nightshift_train.payments", run_id=f"{run_type}__x", run_type=run_type
        ),
        "params": {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in params.items()},
    }


def test_new_data_does_not_retrain_once_a_champion_serves(registry_env: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from nightshift import registry
    from nightshift.airflow.tasks.train import run_train

    champion = registry.alias_version(registry_env["client"], "payments", "champion")
    assert champion is not None
    versions = len(_versions(registry_env["client"]))
    with pytest.raises(AirflowSkipException, match=rf"champion v{champion} serves.*nightshift_retrain"):
        run_train("payments", _context("asset_triggered"))
    assert len(_versions(registry_env["client"])) == versions


def test_a_manual_training_run_refuses_unknown_xgboost_parameters(registry_env: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from nightshift.airflow.tasks.train import run_train

    versions = len(_versions(registry_env["client"]))
    with pytest.raises(AirflowFailException, match=r"xgb_params\.max_dept: not an overridable XGBoost"):
        run_train("payments", _context("manual", xgb_params={"max_dept": 2}))
    assert len(_versions(registry_env["client"])) == versions
