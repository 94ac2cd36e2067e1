"""The loop from the command line, without Airflow: ingest a range of days (a day with nothing
landed is named and the others still run), train -> gate -> promote (audited as the OS user),
score a range, monitor as of a day. The same steps the DAGs call, on the real GX, XGBoost and
MLflow (SQLite store)."""

from __future__ import annotations

import getpass
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelkit import MODEL_DAYS, MODEL_START, copy_store, model_env
from nightshift.cli import main
from nightshift.storage import Store

LAST = MODEL_START + timedelta(days=MODEL_DAYS - 1)


def test_ingest_of_a_range_names_the_day_with_no_landing_files_and_runs_the_others(
    tmp_path: Path, spec: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from nightshift.demo.datagen import Scenario, generate

    store = Store((tmp_path / "store").as_uri())
    start = date(2026, 5, 1)
    generate(store, spec, start, 3, 300, 3, Scenario())
    missing = start + timedelta(days=1)
    shutil.rmtree(Path(store.root) / "landing" / "payments" / "events" / f"dt={missing}")
    argv = ["--store", store.url, "ingest", "--dataset", "payments", "--from", str(start)]
    code = main([*argv, "--to", str(start + timedelta(days=2)), "--kind", "events"])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"nightshift: {missing} failed: no events files for payments in " in err
    assert f"landing/payments/events/dt={missing}" in err
    assert err.count("nightshift: ") == 1  # only that day is named
    for day in (start, start + timedelta(days=2)):
        assert store.exists(store.published_file("payments", "events", day)), day
        assert f"{day}  ok           events 300 rows" in out
    assert not store.exists(store.published_file("payments", "events", missing))
    assert "3 day(s) ingested: 2 ok, 1 failed" in out


@pytest.fixture(scope="module")
def cli_env(model_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("cli")
    url = copy_store(Path(Store(model_store).root), root / "store")
    with model_env(url, f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"):
        yield {"store": Store(url), "url": url}


def test_score_without_a_champion_says_how_to_get_one(
    cli_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["score", "--dataset", "payments", "--from", str(LAST), "--to", str(LAST)]) == 1
    err = capsys.readouterr().err
    assert "payments: no champion yet; train one: nightshift train --dataset payments" in err


def test_train_gates_and_promotes_audited_as_the_os_user(
    cli_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from nightshift import registry

    assert main(["train", "--dataset", "payments"]) == 0
    out = capsys.readouterr().out
    assert "trained:  MLflow run " in out and "gate:     v1: promote" in out
    assert "holdout:  AUC 0." in out and "(the trained model, scored by the gate)" in out
    # the gate's serving check ran on v1 served by a fresh `nightshift serve`
    assert "serving:  v1 served by a fresh `nightshift serve`: " in out and ", no error; one-row p50 " in out
    assert (
        f"promoted: nightshift-payments v1 is the champion (previous: none); audited as {getpass.getuser()}"
        in out
    )
    assert registry.alias_version(registry.configure(), "payments", registry.CHAMPION) == "1"
    (event,) = registry.read_audit(cli_env["store"], "payments")
    user = getpass.getuser()
    assert (event.action, event.version, event.actor, event.triggered_by) == ("promote", "1", user, user)
    assert event.serving is not None and event.serving["passed"] and event.serving["version"] == "1"
    assert event.serving["failed_requests"] == 0 and event.serving["max_diff"] <= 1e-6
    assert event.run_key and event.run_key.startswith(f"cli/{user}@") and "/train.payments/" in event.run_key
    assert event.trigger.startswith("cli: nightshift train --dataset payments (run ")
    # the training run says it came from the CLI, and who ran it
    tags = registry.configure().get_run(event.run_id).data.tags
    assert tags["nightshift.run_type"] == "cli" and tags["nightshift.triggered_by"] == user


def test_score_of_a_range_names_the_day_not_curated_and_scores_the_others(
    cli_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store = cli_env["store"]
    first, after = LAST - timedelta(days=2), LAST + timedelta(days=1)
    assert main(["score", "--dataset", "payments", "--from", str(first), "--to", str(after)]) == 1
    out, err = capsys.readouterr()
    assert f"nightshift: {after} failed: no curated partition to score: " in err
    assert err.count("nightshift: ") == 1
    for i in range(3):
        day = first + timedelta(days=i)
        assert store.exists(store.predictions_file("payments", day))
        assert f"{day}  ok           4,000 rows scored by v1" in out
    assert "4 day(s) scored: 3 ok, 1 failed" in out


def test_monitor_as_of_a_day_reports_only_what_was_known_then(
    cli_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from nightshift.monitor import read_history

    as_of = LAST - timedelta(days=1)
    assert main(["monitor", "--dataset", "payments", "--as-of", str(as_of)]) == 0
    out = capsys.readouterr().out
    reported = {r["dt"] for r in read_history(cli_env["store"], "payments")}
    assert reported == {str(LAST - timedelta(days=2)), str(as_of)}  # not LAST: scored after as_of
    assert f"{as_of}  drift        v1: share " in out and str(LAST) + "  drift" not in out
    assert "alert:    " in out
    # then up to date: the last day's turn
    assert main(["monitor", "--dataset", "payments"]) == 0
    assert f"{LAST}  drift        v1" in capsys.readouterr().out


def test_a_borderline_verdict_waits_for_a_human_and_review_approve_is_that_answer(
    cli_env: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import yaml

    from nightshift import registry

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "datasets" / "payments.yaml").read_text())
    # a review band wide enough for a quick challenger (60 rounds) against v1; floors and a
    # baseline margin it passes (a hard failure is never a judgement call)
    data["gate"].update(
        review={"band": [-0.2, 0.2]},
        min_metrics={"roc_auc": 0.6, "average_precision": 0.05},
        baseline_margin=-0.1,
        floors_vs_champion=False,
    )
    data["training"]["num_boost_round"] = 60
    (tmp_path / "payments.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(tmp_path))
    client = registry.configure()
    champion = registry.alias_version(client, "payments", registry.CHAMPION)

    assert main(["train", "--dataset", "payments"]) == 1
    err = capsys.readouterr().err
    assert (
        "is borderline (roc_auc delta " in err and "run again with --review approve or --review reject" in err
    )
    assert registry.alias_version(client, "payments", registry.CHAMPION) == champion  # nothing decided
    audited = len(registry.read_audit(cli_env["store"], "payments"))

    assert main(["train", "--dataset", "payments", "--review", "approve"]) == 0
    out = capsys.readouterr().out
    new = registry.alias_version(client, "payments", registry.CHAMPION)
    assert new not in (None, champion) and f"promoted: nightshift-payments v{new} is the champion" in out
    events = registry.read_audit(cli_env["store"], "payments")
    assert len(events) == audited + 1
    user = getpass.getuser()
    last = events[-1]
    assert (last.action, last.version, last.actor, last.previous_version) == ("promote", new, user, champion)
    assert last.review and last.review["decision"] == "approve" and last.review["by"] == user
    assert last.reason.startswith(f"approved by {user} after review")
