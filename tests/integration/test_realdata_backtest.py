"""``nightshift backtest`` on the real dataset: the first 16 local days of ``carData/MplsStops``
landed as upstream would (tests/realdata.py), with its committed spec made cheap to train (no
tuning, a 10-day window, no Data Docs): a first champion, then the three policies side by side,
every number from the days' own labels ("YES"/"NO", landed 3 days late), and the dataset's
store left as it was. The full 90-day run is in docs/benchmarks.md."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

import realdata
from nightshift.cli import main
from nightshift.storage import Store

SPEC = Path(__file__).resolve().parents[2] / "tests" / "specs" / f"{realdata.DATASET}.yaml"
DAYS = 16


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` and the SHA-256 of its bytes."""
    return {
        str((Path(d) / n).relative_to(root)): hashlib.sha256((Path(d) / n).read_bytes()).hexdigest()
        for d, _, names in os.walk(root)
        for n in names
    }


def cheap_spec(dest: Path) -> Path:
    """The committed spec with cheap training: what it tests is the replay, not the model."""
    data = yaml.safe_load(SPEC.read_text())
    data["training"].update(
        window_days=10, validation_days=2, holdout_days=2, min_rows=400, tuning={"trials": 0}
    )
    data["validation"] = {**data.get("validation", {}), "data_docs_max_rows": 0}
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / SPEC.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_backtest_of_the_first_mplsstops_days_compares_the_three_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store((tmp_path / "store").as_uri())
    days = realdata.land(store, realdata.FIRST_DAY, DAYS)
    spec = cheap_spec(tmp_path / "specs")
    before = tree(Path(store.root))
    out = tmp_path / "bt"
    first, last = days[0], days[-1]

    argv = ["--store", store.url, "backtest", "--dataset", str(spec), "--from", str(first), "--to", str(last)]
    assert main([*argv, "--out", str(out)]) == 0
    printed, err = capsys.readouterr()

    result = json.loads((out / "backtest.json").read_text())
    fc = result["first_champion"]
    assert fc is not None and fc["status"] == "promoted", result["summary"]["no_model"]
    start = date.fromisoformat(fc["day"])
    assert first + timedelta(days=7) <= start <= first + timedelta(days=11)  # labels 3 days late, min rows
    after = (last - start).days
    s = result["summary"]
    # daily: a model every day after the first; never: none; the spec's policy: its own alerts
    assert s["retrains"]["never"] == 0
    assert s["retrains"]["daily"] == s["promotions"]["daily"] == after
    assert s["n_compared_days"] == after + 1 and s["compared_days"] == [fc["day"], str(last)]
    for p in ("never", "daily", "spec"):
        assert 0.5 < s["mean_served_auc"][p] < 1.0, p
    rows = {r["day"]: r for r in result["days"]}
    served = [rows[str(start + timedelta(days=i))] for i in range(after + 1)]
    assert all(r["policies"][p]["labelled_rows"] > 50 for r in served for p in result["policies"])
    assert any(r["drift_share"] is not None for r in served)  # the spec's champion was monitored
    assert {r["policies"]["daily"]["version"] for r in served[2:]} == {
        str(i) for i in range(2, after + 1)
    }  # each day's model serves the next day

    # what was printed: a row per day, every retrain of the spec's policy with its reason
    table = [line for line in printed.splitlines() if line[:10] in {str(d) for d in days}]
    assert [line[:10] for line in table] == [str(d) for d in days]
    assert result["failures"]["spec"] == []
    for r in result["days"]:
        for e in r["policies"]["spec"]["events"]:
            line = next(x for x in table if x.startswith(r["day"]))
            assert f"spec: {e['alert']} alert (onset {e['onset']}) -> {e['action']}: " in line
    assert f"first champion: v1 on {start} (all policies start from it)" in printed
    assert f"mean served AUC: never {s['mean_served_auc']['never']:.4f} | " in printed
    assert f"retrains: never 0 (0 promoted) | daily {after} ({after} promoted) | spec's policy " in printed
    assert err.count(f"{last}  ok") == 1 and "nightshift backtest:" not in err
    assert (out / "backtest.png").read_bytes()[:4] == b"\x89PNG"
    assert tree(Path(store.root)) == before  # the dataset's landing files: only read
