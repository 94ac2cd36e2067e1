"""``nightshift backtest`` on generated payments days, with the real GX, XGBoost, MLflow and
Evidently: a day with no landing files is named and the others still run, the dataset's store
and registry are never touched; a range with no labelled days, and one where the gate rejects
every first model, say so per policy instead of crashing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from nightshift.cli import main
from nightshift.storage import Store

ROOT = Path(__file__).resolve().parents[2]
START = date(2026, 6, 1)
TITLES = ("never", "daily", "spec's policy")


def day(i: int) -> date:
    return START + timedelta(days=i)


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` and the SHA-256 of its bytes."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def cheap_spec(tmp_path: Path, **gate: Any) -> str:
    """``datasets/payments.yaml`` without Data Docs for valid batches (verdicts only: what the
    tests check is the replay) and with ``gate`` changes; the path of the copy."""
    data = yaml.safe_load((ROOT / "datasets" / "payments.yaml").read_text())
    data["validation"]["data_docs_max_rows"] = 0
    data["gate"].update(gate)
    path = tmp_path / "specs" / "payments.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def generated(tmp_path: Path, spec: Any, days: int, rows: int, drift_from: int | None = None) -> Store:
    from nightshift.demo.datagen import Scenario, generate

    store = Store((tmp_path / "store").as_uri())
    generate(store, spec, START, days, rows, 5, Scenario(concept_drift_from=drift_from))
    return store


def backtest(store: Store, dataset: str, last: int, out: Path) -> int:
    argv = [
        "--store",
        store.url,
        "backtest",
        "--dataset",
        dataset,
        "--from",
        str(START),
        "--to",
        str(day(last)),
    ]
    return main([*argv, "--out", str(out)])


@pytest.fixture
def real_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The dataset's own MLflow registry (SQLite, a registered model in it) and artifact root,
    where ``MLFLOW_TRACKING_URI`` and ``NIGHTSHIFT_MLFLOW_ARTIFACTS`` point."""
    from mlflow import MlflowClient

    real = tmp_path / "real"
    real.mkdir()
    uri = f"sqlite:///{real / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.setenv("NIGHTSHIFT_MLFLOW_ARTIFACTS", (real / "artifacts").as_uri())
    MlflowClient(uri, uri).create_registered_model("nightshift-payments")
    return real


def test_a_day_with_no_landing_files_is_named_the_others_run_and_nothing_real_is_touched(
    tmp_path: Path, spec: Any, real_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    store = generated(tmp_path, spec, 10, 1000, drift_from=8)
    missing = day(8)  # the day after the first champion's
    root = Path(store.root)
    shutil.rmtree(root / "landing" / "payments" / "events" / f"dt={missing}")
    shutil.rmtree(root / "landing" / "payments" / "labels" / f"dt={missing + timedelta(days=3)}")
    before_store, before_registry = tree(root), tree(real_registry)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    out = tmp_path / "bt"

    assert backtest(store, cheap_spec(tmp_path), 9, out) == 1
    printed, err = capsys.readouterr()

    # the day is named, once, with the dataset's own landing folder (not the backtest's copy)
    landing = store.uri(store.landing_dir("payments", "events", missing))
    assert f"nightshift backtest: {missing} failed: no events files for payments in {landing}" in err
    assert err.count("nightshift backtest: ") == 1
    # and every other day ran: one line per day (stderr is no TTY), a row per day in the table
    days = [str(day(i)) for i in range(10)]
    assert [x[:10] for x in err.splitlines() if x[:10] in days] == days
    rows = [x for x in printed.splitlines() if x[:10] in days]
    assert [x[:10] for x in rows] == days
    assert f"ingest failed: no events files for payments in {landing}" in rows[8]
    assert f"first champion: v1 on {day(7)} (all policies start from it)" in printed
    assert (
        "mean served AUC: never 0." in printed and "| daily 0." in printed and "| spec's policy 0." in printed
    )
    # daily: a model every day after the first one's (the missing day too: the same window)
    assert "retrains: never 0 (0 promoted) | daily 2 (2 promoted) | spec's policy " in printed

    result = json.loads((out / "backtest.json").read_text())
    assert result["failed_days"] == [str(missing)] and result["quarantined_days"] == []
    by_day = {r["day"]: r for r in result["days"]}
    assert all(by_day[str(missing)]["policies"][p]["served_auc"] is None for p in result["policies"])
    for i in (7, 9):
        served = by_day[str(day(i))]["policies"]
        assert all(served[p]["served_auc"] is not None for p in result["policies"]), i
    assert by_day[str(day(9))]["policies"]["daily"]["version"] == "2"  # trained on day 8
    assert by_day[str(day(9))]["policies"]["never"]["version"] == "1"
    assert result["summary"]["n_compared_days"] == 2
    assert (out / "backtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each policy has its own registry under --out
    registries = {p: f"sqlite:///{out / p / 'mlflow.db'}" for p in ("never", "daily")}
    versions = {
        p: sorted(
            int(v.version) for v in MlflowClient(u, u).search_model_versions("name='nightshift-payments'")
        )
        for p, u in registries.items()
    }
    assert versions == {"never": [1], "daily": [1, 2, 3]}

    # the dataset's store and registry: byte for byte as they were, the settings put back
    assert tree(root) == before_store
    assert tree(real_registry) == before_registry and not (real_registry / "artifacts").exists()
    assert os.environ["MLFLOW_TRACKING_URI"] == uri


@pytest.mark.parametrize("case", ["shorter than the label delay", "no labels published"])
def test_a_range_with_no_labelled_days_says_so_per_policy(
    case: str, tmp_path: Path, spec: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    short = case == "shorter than the label delay"
    n = 3 if short else 6
    store = generated(tmp_path, spec, n, 200)
    if not short:
        shutil.rmtree(Path(store.root) / "landing" / "payments" / "labels")
    out = tmp_path / "bt"

    assert backtest(store, "payments", n - 1, out) == 1
    printed, err = capsys.readouterr()
    why = (
        "labels arrive 3 day(s) after their events, so 3 day(s) have none"
        if short
        else f"no labels were published for the events of {day(0)}..{day(2)} "
        f"(from {store.uri(store.path('landing', 'payments', 'labels'))})"
    )
    said = f"no model: no labelled days in {day(0)}..{day(n - 1)}: {why}"
    for title in TITLES:
        assert f"{title}: {said}" in printed, title
    assert f"nightshift backtest: no policy ever served a model, nothing to compare ({said})" in err
    result = json.loads((out / "backtest.json").read_text())
    assert result["summary"]["no_model"] == {p: said for p in ("never", "daily", "spec")}
    assert result["first_champion"] is None and result["summary"]["mean_served_auc"]["never"] is None
    assert (out / "backtest.png").exists()


def test_a_range_where_the_gate_rejects_every_first_model_says_so_per_policy(
    tmp_path: Path, spec: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = cheap_spec(tmp_path, min_metrics={"roc_auc": 0.999, "average_precision": 0.10})
    store = generated(tmp_path, spec, 9, 1000)
    out = tmp_path / "bt"

    assert backtest(store, edited, 8, out) == 1
    printed, err = capsys.readouterr()
    lines = {t: [x for x in printed.splitlines() if x.startswith(f"{t}: ")] for t in TITLES}
    for title in TITLES:
        (line,) = lines[title]
        # one attempt (day 7, five labelled days; the bootstrap guard rail waits 3 days after it)
        assert line.startswith(
            f"{title}: no model: the gate rejected every first model (1 attempt(s)); the last, v1: "
        )
        assert "roc_auc" in line and "(minimum 0.999)" in line
    assert "nightshift backtest: no policy ever served a model, nothing to compare (no model: the gate" in err
    result = json.loads((out / "backtest.json").read_text())
    trained = [e for r in result["days"] for e in r["bootstrap"] if (e.get("outcome") or {}).get("trained")]
    assert [e["outcome"]["status"] for e in trained] == ["rejected"]
    # the XGBoost challenger's holdout AUC: scored by the gate (training no longer scores the holdout)
    assert 0.5 < trained[0]["outcome"]["xgboost_holdout_auc"] < 0.999
    assert result["days"][7]["bootstrap"] == trained  # day 7: five labelled days
