"""The loop and the operator's UI under the real scheduler and api-server.

A monitor run raises the alert Asset event, and the scheduler starts nightshift_retrain from
it (dag.test cannot run asset-triggered DAGs). Then an operator's forced retrains land in the
spec's review band and wait for a human: one approved, one rejected, through the REST API the
UI uses. Last, a browser (headless Chromium) logs in, opens the Model health page, checks its
numbers, tables and plots, and follows extra links; screenshots go to
``.nightshift/test/screenshots/``.

Small size: the drift store (14 clean days, 6 drifted ones, 4,000 rows a day), a champion
trained on the clean days and the last 10 days scored before the components start. The tests
run in order on one stack.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from browserkit import browser_page, login

from modelkit import DRIFT_DAYS, MODEL_DAYS, MODEL_START, copy_store, http_sink, model_env
from nightshift_dev import ROOT
from nightshift_dev.stack import AirflowStack, preload_problems

DRIFT_START = MODEL_START + timedelta(days=MODEL_DAYS)
REVIEW_GATE = {
    "review": {"band": [-0.01, 0.005], "timeout_hours": 1, "on_timeout": "reject"},
    "min_metrics": {"roc_auc": 0.7, "average_precision": 0.05},
    "slice_min_metric": 0.5,
}
RETRAIN = "nightshift_retrain.payments"
SHOTS = ROOT / ".nightshift" / "test" / "screenshots"
LAST = MODEL_START + timedelta(days=MODEL_DAYS + DRIFT_DAYS - 1)


@pytest.fixture(scope="module")
def loop(drift_store: Path, spec: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("loop")
    url = copy_store(drift_store, root / "store")
    with model_env(url, f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as mp:
        mp.setenv("NIGHTSHIFT_DATASETS", "payments")
        # the demo spec with a review band: a challenger within it waits for a human. Lower
        # floors, so that a challenger identical to the post-drift champion (AUC ~0.76) fails
        # no hard check (the demo's 0.80 floor would reject it before any review)
        data = yaml.safe_load((ROOT / "datasets" / "payments.yaml").read_text())
        data["gate"].update(REVIEW_GATE)
        (root / "datasets").mkdir()
        (root / "datasets" / "payments.yaml").write_text(yaml.safe_dump(data))
        mp.setenv("NIGHTSHIFT_DATASETS_DIR", str(root / "datasets"))
        from nightshift import registry
        from nightshift.steps.gate import decide_step, gate_step
        from nightshift.steps.score import score_step
        from nightshift.steps.train import TrainRequest, train_step
        from nightshift.storage import Store

        store = Store(url)
        as_of = DRIFT_START + timedelta(days=spec.label.delay_days - 1)  # clean days only
        trained = train_step(store, spec, "setup/champion", TrainRequest(as_of=as_of))
        verdict = gate_step(store, spec, trained.run_id, "setup/champion")
        decide_step(store, spec, verdict, actor="test", trigger="setup")
        days = [MODEL_START + timedelta(days=i) for i in range(MODEL_DAYS - 4, MODEL_DAYS + DRIFT_DAYS)]
        score_step(store, spec, days)
        with http_sink() as (hook, notes):
            stack = AirflowStack(root / "airflow", {"NIGHTSHIFT_NOTIFY_WEBHOOK": hook})
            try:
                stack.start()
                yield {"stack": stack, "store": store, "client": registry.configure(), "notes": notes}
            finally:
                stack.stop()


def test_an_alert_starts_the_retrain_under_the_scheduler(loop: dict[str, Any]) -> None:
    from nightshift import registry, retrain

    stack, store, client = loop["stack"], loop["store"], loop["client"]
    for dag_id in ("nightshift_monitor.payments", "nightshift_retrain.payments"):
        stack.wait_dag(dag_id)
        stack.unpause(dag_id)
    run_id = stack.trigger_id("nightshift_monitor.payments")
    loop["monitor_run"] = run_id
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
    # far outside the review band: the gate decided alone, nobody was asked
    assert states["review"] == "success"
    loop["retrain_run"] = run["dag_run_id"]

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


# ---- borderline promotions: a human decides ------------------------------------------------


def _hitl(stack: AirflowStack, run_id: str, body: dict[str, Any] | None = None) -> Any:
    path = f"/api/v2/dags/{RETRAIN}/dagRuns/{quote(run_id, safe='')}/taskInstances/review/-1/hitlDetails"
    return stack.request("PATCH" if body else "GET", path, body)


def _borderline_retrain(stack: AirflowStack, note: str) -> str:
    """A forced retrain on exactly v2's window (the days since the onset): the same model, a
    delta of 0 against the champion, inside the review band. Waits until it asks a human."""
    run_id = stack.trigger_id(RETRAIN, {"force": True, "note": note, "since": DRIFT_START.isoformat()})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        states = stack.task_states(RETRAIN, run_id)
        if states.get("review") == "awaiting_input":
            # the parking task's process exits after the park; an answer before the scheduler has
            # processed that exit races with it, and the scheduler retries the task (a fresh form)
            stack.wait_executor_event(RETRAIN, "review", run_id, "awaiting_input")
            assert stack.task_states(RETRAIN, run_id)["review"] == "awaiting_input"
            return run_id
        assert not {"failed", "upstream_failed"} & set(states.values()), states
        if states.get("review") in ("success", "skipped"):
            path = f"/api/v2/dags/{RETRAIN}/dagRuns/{quote(run_id, safe='')}/taskInstances/gate/xcomEntries"
            verdict = stack.request("GET", f"{path}/return_value")["value"]
            pytest.fail(f"the retrain did not ask for a review: {verdict}")
        time.sleep(3)
    raise TimeoutError(f"{RETRAIN} {run_id} never asked for a review: {stack.task_states(RETRAIN, run_id)}")


def _finished(stack: AirflowStack, run_id: str) -> dict[str, str]:
    run = stack.wait_run(RETRAIN, lambda r: r["dag_run_id"] == run_id)
    states = stack.task_states(RETRAIN, run_id)
    assert run["state"] == "success", states
    return states


def test_a_borderline_retrain_waits_for_an_approval_that_is_audited(loop: dict[str, Any]) -> None:
    from nightshift import registry, retrain

    stack, store, client = loop["stack"], loop["store"], loop["client"]
    if registry.alias_version(client, "payments", "champion") != "2":
        pytest.fail("the loop's retrain did not promote v2; the review tests need it as the champion")
    run_id = _borderline_retrain(stack, "same window as v2: check the review")
    states = stack.task_states(RETRAIN, run_id)
    assert states["promote"] not in ("success", "skipped"), "promoted before anybody answered"
    ask = _hitl(stack, run_id)
    assert ask["subject"] == "payments: promote v3 over champion v2?"
    assert ask["options"] == ["Approve", "Reject"] and ask["defaults"] == ["Reject"]
    body = ask["body"]
    assert "within the review band [-0.0100, +0.0050]" in body and "recommends **promote**" in body
    assert "| roc_auc | " in body and "| +0.0000 |" in body  # the same model: no difference
    assert "| channel=" in body and "Recent monitoring (last 7 day(s)" in body and "| v1 | 0." in body
    assert "/nightshift/health/payments" in body

    # the operator was told, with a link to the form
    (asked,) = [n for n in loop["notes"] if n["event"] == "review" and n["run_id"] == run_id]
    assert asked["title"] == "payments: promote v3 over champion v2?"
    assert asked["links"]["approve or reject"] == (
        f"{stack.base}/dags/{RETRAIN}/runs/{run_id}/tasks/review/required_actions"
    )

    answer = _hitl(
        stack, run_id, {"chosen_options": ["Approve"], "params_input": {"comment": "same as v2, ok"}}
    )
    assert answer["responded_by"]["name"] == "admin"
    states = _finished(stack, run_id)
    assert states["review"] == states["promote"] == states["record"] == "success", states
    assert registry.alias_version(client, "payments", "champion") == "3"
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.previous_version, last.actor) == ("promote", "3", "2", "admin")
    assert last.review is not None and last.review["decision"] == "approve" and last.review["by"] == "admin"
    assert last.review["comment"] == "same as v2, ok" and not last.review["timed_out"]
    assert last.reason.startswith("approved by admin after review: same as v2, ok (gate: promoted:")
    tags = client.get_model_version("nightshift-payments", "3").tags
    assert '"decision": "approve"' in tags["nightshift.promote.review"]
    (promoted,) = [n for n in loop["notes"] if n["event"] == "promotion" and n["run_id"] == run_id]
    assert promoted["title"] == "promoted v3 (was v2)" and promoted["message"].startswith(
        "by admin: approved"
    )
    rec = retrain.find_record(store, "payments", f"{RETRAIN}/{run_id}")
    assert rec is not None and rec.outcome is not None and rec.outcome["status"] == "promoted"
    assert rec.overrides == {"since": DRIFT_START.isoformat(), "note": "same window as v2: check the review"}


def test_a_rejected_review_keeps_the_champion_and_is_audited(loop: dict[str, Any]) -> None:
    from nightshift import registry, retrain

    stack, store, client = loop["stack"], loop["store"], loop["client"]
    run_id = _borderline_retrain(stack, "again, to be turned down")
    _hitl(stack, run_id, {"chosen_options": ["Reject"], "params_input": {"comment": "no change needed"}})
    states = _finished(stack, run_id)
    assert states["review"] == "success" and states["promote"] == "skipped", states
    assert registry.alias_version(client, "payments", "champion") == "3"
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.actor) == ("reject", "4", "admin")
    assert last.review is not None and last.review["decision"] == "reject"
    assert last.reason.startswith("rejected by admin after review: no change needed (gate: promoted:")
    assert client.get_model_version("nightshift-payments", "4").tags["nightshift.status"] == "rejected"
    rec = retrain.find_record(store, "payments", f"{RETRAIN}/{run_id}")
    assert rec is not None and rec.outcome is not None and rec.outcome["status"] == "rejected"
    (note,) = [n for n in loop["notes"] if n["event"] == "rejection" and n["run_id"] == run_id]
    assert note["severity"] == "warning" and note["title"] == "v4 not promoted (champion stays v3)"
    assert note["message"].startswith("by admin: rejected by admin after review: no change needed")


# ---- the UI in a browser -------------------------------------------------------------------


def test_the_model_health_page_and_extra_links_in_a_browser(loop: dict[str, Any]) -> None:
    stack = loop["stack"]
    base = stack.base
    with browser_page(SHOTS) as page:
        login(page, base)
        page.goto(f"{base}/plugin/model-health")
        frame = page.frame_locator('iframe[title="Model health"]')
        frame.locator("h1").filter(has_text="Model health: payments").wait_for()
        page.screenshot(path=str(SHOTS / "01-model-health.png"), full_page=True)

        tiles = {
            frame.locator(f'[data-tile="{name}"] b').inner_text(): name
            for name in (
                "champion",
                "change-failure rate",
                "deployment frequency",
                "lead time",
                "time to recover",
            )
        }
        assert "v3" in tiles and "25%" in tiles, tiles  # 1 rejection in 4 attempts
        timeline = frame.locator("#timeline tbody tr")
        assert timeline.count() == 4
        first = timeline.nth(0).inner_text()
        assert "reject" in first and "v4" in first and "reject by admin: no change needed" in first
        assert "approve by admin: same as v2, ok" in timeline.nth(1).inner_text()
        days = frame.locator("#days tbody tr")
        assert days.count() >= 20
        text = frame.locator("#days").inner_text()
        assert re.search(r"0\.\d\d\*", text), "no drifting day with its drift share"
        assert "valid" in text and re.search(r"\b0\.[5-9]\d\d\b", text), "no live AUC"
        retrains = frame.locator("#retrains tbody tr")
        assert retrains.count() == 3 and "forced" in frame.locator("#retrains").inner_text()
        for plot in ("#plot-live", "#plot-holdout"):
            width = frame.locator(plot).evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width > 500, f"{plot} did not render"
        frame.locator("#plot-live").screenshot(path=str(SHOTS / "02-live-plot.png"))

        # an extra link on the monitor task: the day's Evidently report, served from the store
        monitor = quote(loop["monitor_run"], safe="")
        page.goto(f"{base}/dags/nightshift_monitor.payments/runs/{monitor}/tasks/monitor/details")
        link = page.get_by_role("link", name="Evidently report")
        link.wait_for()
        page.screenshot(path=str(SHOTS / "03-extra-links.png"), full_page=True)
        link.click()
        page.wait_for_url("**/nightshift/store/reports/payments/drift/**v1-drift.html")
        # the report's own scripts render it (in the sandbox the plugin serves it with)
        page.wait_for_function("document.body.innerText.toLowerCase().includes('drift')")
        assert len(page.inner_text("body")) > 200, "the report did not render"
        page.screenshot(path=str(SHOTS / "04-evidently-report.png"))

        # the gate of the loop's retrain links the Model health page
        retrain_run = quote(loop["retrain_run"], safe="")
        page.goto(f"{base}/dags/{RETRAIN}/runs/{retrain_run}/tasks/gate/details")
        page.get_by_role("link", name="Model health").click()
        page.wait_for_url("**/nightshift/health/payments")
        assert page.locator("h1").inner_text() == "Model health: payments"
        page.screenshot(path=str(SHOTS / "05-model-health-page.png"), full_page=True)

        # the JSON behind the page, with the browser's session
        data = page.request.get(f"{base}/nightshift/api/health/payments").json()
        assert data["champion"]["version"] == "3" and data["delivery"]["attempts"] == 4
        assert page.request.get(f"{base}/nightshift/store/curated/payments/x.parquet").status == 404

    # without a session nothing is served
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{base}/nightshift/health/payments", timeout=10)
    assert denied.value.code in (401, 403)


# ---- faults ------------------------------------------------------------------------------------


def test_fault_a_review_pending_while_another_version_is_promoted_is_refused(loop: dict[str, Any]) -> None:
    """Fault: while a borderline challenger waits for its review, an operator promotes another
    version (nightshift_promote, in the registry pool). Approving the stale verdict afterwards
    must not replace a champion the challenger was never compared with."""
    from nightshift import registry, retrain

    stack, store, client = loop["stack"], loop["store"], loop["client"]
    assert registry.alias_version(client, "payments", "champion") == "3"
    run_id = _borderline_retrain(stack, "fault: the champion moves while the review waits")
    assert _hitl(stack, run_id)["subject"] == "payments: promote v5 over champion v3?"

    promote_dag = "nightshift_promote.payments"
    stack.wait_dag(promote_dag)
    stack.unpause(promote_dag)
    conf = {"version": 2, "reason": "promoted while a review waits", "actor": "carol"}
    manual = stack.trigger_id(promote_dag, conf)
    assert stack.wait_run(promote_dag, lambda r: r["dag_run_id"] == manual)["state"] == "success"
    assert registry.alias_version(client, "payments", "champion") == "2"
    moved = registry.read_audit(store, "payments")[-1]
    assert (moved.action, moved.version) == ("promote", "2")

    _hitl(stack, run_id, {"chosen_options": ["Approve"], "params_input": {"comment": "looks fine"}})
    states = _finished(stack, run_id)
    assert states["review"] == "success" and states["promote"] == "skipped", states
    # the registry and the store agree, and nothing was lost: the stale approval is a rejection
    assert registry.alias_version(client, "payments", "champion") == "2"
    assert registry.alias_version(client, "payments", "previous") == "3"
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.previous_version, last.actor) == ("reject", "5", "2", "admin")
    assert "stale verdict: nightshift-payments: champion moved from v3 to v2 since the gate" in last.reason
    assert last.review is not None and last.review["decision"] == "approve"
    assert client.get_model_version("nightshift-payments", "5").tags["nightshift.status"] == "rejected"
    rec = retrain.find_record(store, "payments", f"{RETRAIN}/{run_id}")
    assert rec is not None and rec.outcome is not None and rec.outcome["status"] == "rejected"
    (note,) = [n for n in loop["notes"] if n["event"] == "rejection" and n["run_id"] == run_id]
    assert note["severity"] == "warning" and "champion moved from v3 to v2" in note["message"]
    assert (moved.actor, moved.on_behalf_of) == ("admin", "carol")  # the operator, on carol's behalf


# ---- the preload -------------------------------------------------------------------------------


def test_every_task_forked_from_a_worker_that_imported_its_libraries(loop: dict[str, Any]) -> None:
    """The LocalExecutor's workers fork from the scheduler's forkserver, which imported
    nightshift.airflow.preload: every task above (monitor, retrain, training with OpenMP, the
    gate's MLflow client, reviews) logged that it inherited GX, Evidently, MLflow, XGBoost, sklearn
    and pyarrow, and none imported one of them itself."""
    started, problems = preload_problems(loop["stack"].home)
    assert started >= 15, started
    assert not problems, "\n".join(problems)
