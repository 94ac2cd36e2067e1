"""``nightshift init``: a spec inferred from a sample file (types, value sets, ranges with their
margin, null budgets, the label's two values), written with its suites, never over existing
files without ``--force``; bad samples refused with the file, the column and the reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from nightshift import infer
from nightshift.cli import main
from nightshift.spec import SpecError, load_spec

ROWS = 600


def synthetic(seed: int = 7) -> pd.DataFrame:
    """600 events over 6 UTC days with one column of each kind init tells apart."""
    rng = np.random.default_rng(seed)
    n = ROWS
    ts = pd.Timestamp("2026-03-01T00:00:00Z") + pd.to_timedelta(np.sort(rng.uniform(0, 6 * 86400, n)), "s")
    amount = rng.uniform(10.0, 110.0, n).round(2)
    amount[rng.random(n) < 0.1] = np.nan
    channel = rng.choice(["web", "app", "pos"], n, p=[0.5, 0.3, 0.2]).astype(object)
    channel[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "tx_id": np.arange(1000, 1000 + n),
            "event_time": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": amount,
            "count_24h": rng.integers(0, 51, n),
            "channel": channel,
            # yes/no/on: YAML 1.1 reads them bare as booleans; the value set must stay strings
            "answer": rng.choice(["yes", "no", "on"], n),
            "city": [f"city_{i}" for i in rng.integers(0, 150, n)],  # > 100 values, repeated
            "note": [f"free text {i} {rng.integers(10**9)}" for i in range(n)],  # all distinct
            "constant": "same",
            "score": rng.random(n),  # a name nightshift reserves
            "empty": None,
            "is_fraud": (rng.random(n) < 0.1).astype(int),
        }
    )


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def init_args(tmp: Path, events: Path, *extra: str, label: str = "is_fraud") -> list[str]:
    return [
        "init", "--dataset", "txns", "--events", str(events), "--id", "tx_id", "--time", "event_time",
        "--label", label, "--datasets-dir", str(tmp / "datasets"), "--gx-dir", str(tmp / "gx"), *extra,
    ]  # fmt: skip


def infer_csv(path: Path, label: str = "is_fraud", timezone: str = "UTC") -> infer.Inferred:
    return infer.infer_spec("txns", infer.read_sample(path), "tx_id", "event_time", label, timezone=timezone)


def flat(text: str) -> str:
    """The YAML text with each wrapped comment joined back into one line."""
    return re.sub(r"\n *#   ", " ", text)


def features(spec_dict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    f = spec_dict["features"]
    return {x["name"]: {**x, "kind": k} for k in ("numeric", "categorical") for x in f[k]}


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    return write_csv(synthetic(), tmp_path / "events.csv")


def test_csv_sample_gives_types_value_sets_ranges_and_null_budgets(events_csv: Path) -> None:
    df = synthetic()
    out = infer.infer_spec("txns", infer.read_sample(events_csv), "tx_id", "event_time", "is_fraud")
    d = yaml.safe_load(out.text)
    f = features(d)
    assert d["id_column"] == "tx_id" and d["id_dtype"] == "int64"
    assert d["partitioning"] == {"timezone": "UTC"}
    assert f["amount"]["kind"] == "numeric" and f["amount"]["dtype"] == "float64"
    assert f["count_24h"]["dtype"] == "int64"
    # observed [min, max] widened by 10% of the span, rounded outward; never below 0 if never negative
    lo, hi = df.amount.min(), df.amount.max()
    assert f["amount"]["min"] <= lo - 0.1 * (hi - lo) + 1 and f["amount"]["min"] >= lo - 0.1 * (hi - lo) - 1
    assert f["amount"]["max"] >= hi + 0.1 * (hi - lo) - 1e-9
    assert (f["count_24h"]["min"], f["count_24h"]["max"]) == (0, 55)
    # null budgets: observed + a quarter (at least 2 points), up to a multiple of 5%; none observed: 0
    assert f["amount"]["max_null_fraction"] == infer.null_budget(df.amount.isna().mean())
    assert 0.1 <= f["amount"]["max_null_fraction"] <= 0.2
    assert f["channel"]["max_null_fraction"] == 0.1
    assert f["count_24h"]["max_null_fraction"] == 0
    # low-cardinality strings get their value set (strings, even yes/no/on); high-cardinality none
    assert f["channel"]["values"] == ["app", "pos", "web"]
    assert f["answer"]["values"] == ["no", "on", "yes"]
    assert f["city"]["kind"] == "categorical" and "values" not in f["city"]
    # left out, each with a comment saying why
    for name in ("note", "constant", "score", "empty", "is_fraud"):
        assert name not in f
    text = flat(out.text)
    assert '"note" has 600 distinct values' in text and "free text or an identifier" in text
    assert '"constant" is constant' in text
    assert '"score" is a name nightshift reserves' in text
    assert '"empty" is null in all 600 rows' in text
    assert '"is_fraud" is the label' in text
    assert "margin ±10% of the span" in text
    assert "check: positive = 1" in text
    assert d["label"] == {"column": "is_fraud", "delay_days": 1, "positive": 1, "negative": 0}
    assert d["slices"] == ["channel", "answer"]
    assert d["validation"]["min_rows"] >= 1  # 6 days: half the smallest inner day
    assert d["landing"] == {"format": "csv"}


def test_parquet_sample_keeps_the_file_types(tmp_path: Path) -> None:
    df = synthetic()
    df["event_time"] = pd.to_datetime(df["event_time"], utc=True)
    df["is_fraud"] = df["is_fraud"].astype(bool)
    df["flag"] = np.arange(len(df)) % 3 == 0
    df["ratio"] = (np.arange(len(df)) % 7).astype(float)  # integral values, but a float column
    path = tmp_path / "events.parquet"
    df.to_parquet(path, index=False)
    sample = infer.read_sample(path)
    assert sample.format == "parquet"
    out = infer.infer_spec("txns", sample, "tx_id", "event_time", "is_fraud", timezone="Europe/Paris")
    d = yaml.safe_load(out.text)
    f = features(d)
    assert f["ratio"]["dtype"] == "float64" and f["count_24h"]["dtype"] == "int64"
    assert f["flag"]["values"] == ["false", "true"]
    assert d["label"]["positive"] is True and d["label"]["negative"] is False
    assert d["landing"] == {"format": "parquet"}
    assert d["partitioning"]["timezone"] == "Europe/Paris"
    assert "timestamp[ns, tz=UTC]" in flat(out.text) or "timestamp[us, tz=UTC]" in flat(out.text)


def test_string_labels_are_quoted_and_the_rarer_or_yes_like_value_is_positive(tmp_path: Path) -> None:
    df = synthetic()
    df["outcome"] = np.where(df["is_fraud"] == 1, "YES", "NO")
    df = df.drop(columns=["is_fraud"])
    code = main(init_args(tmp_path, write_csv(df, tmp_path / "e.csv"), label="outcome"))
    assert code == 0
    spec = load_spec(tmp_path / "datasets" / "txns.yaml")
    assert spec.label.positive == "YES" and spec.label.negative == "NO" and spec.label.dtype == "string"
    text = flat((tmp_path / "datasets" / "txns.yaml").read_text())
    assert 'positive: "YES"' in text and 'check: positive = "YES" (named like yes/true/1' in text
    # no yes-like name: the rarer value is the positive one
    df["outcome"] = np.where(df["outcome"] == "YES", "cat", "dog")
    out = infer_csv(write_csv(df, tmp_path / "f.csv"), label="outcome")
    assert yaml.safe_load(out.text)["label"]["positive"] == "cat"
    assert "the rarer value" in flat(out.text)


def test_naive_timestamps_are_local_times_in_the_zone_and_offsets_are_converted(tmp_path: Path) -> None:
    df = synthetic().head(40)
    # 05:30 UTC on 2 March is 23:30 on 1 March in Chicago
    df["event_time"] = ["2026-03-02T05:30:00Z"] * 20 + ["2026-03-02T18:00:00Z"] * 20
    out = infer_csv(write_csv(df, tmp_path / "a.csv"), timezone="America/Chicago")
    assert "converted to America/Chicago" in flat(out.text) and "2 local day(s)" in flat(out.text)
    assert "2026-03-01 .. 2026-03-02" in flat(out.text)
    df["event_time"] = ["2026-03-02 05:30:00"] * 20 + ["2026-03-02 18:00:00"] * 20
    out = infer_csv(write_csv(df, tmp_path / "b.csv"), timezone="America/Chicago")
    assert "no offset: read as local times in America/Chicago" in flat(out.text) and "1 local day(s)" in flat(
        out.text
    )


def test_widened_range_and_null_budget_rules() -> None:
    assert infer.widened_range(44.89, 45.05, integer=False) == (44.87, 45.07, 2)
    assert infer.widened_range(1, 5, integer=True)[:2] == (0, 6)
    assert infer.widened_range(-10.0, -2.0, integer=False)[:2] == (-10.8, -1.2)
    assert infer.widened_range(-10.0, -0.5, integer=False)[:2] == (-11.0, 0.0)  # never positive: stays <= 0
    assert infer.widened_range(0.0, 1000.0, integer=False)[:2] == (0.0, 1100.0)
    assert infer.null_budget(0.0) == 0.0
    assert infer.null_budget(0.158) == 0.2
    assert infer.null_budget(0.01) == 0.05
    assert infer.null_budget(0.9) == 1.0


def test_init_writes_a_spec_that_loads_and_its_suites(tmp_path: Path, events_csv: Path) -> None:
    assert main(init_args(tmp_path, events_csv)) == 0
    spec = load_spec(tmp_path / "datasets" / "txns.yaml")
    assert spec.name == "txns" and "amount" in spec.feature_names
    for kind in ("events", "labels"):
        suite = json.loads((tmp_path / "gx" / "expectations" / f"txns.{kind}.json").read_text())
        assert suite["name"] == f"txns.{kind}"
    assert not [p for p in (tmp_path / "datasets").iterdir() if p.name != "txns.yaml"]  # no leftovers


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, events_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(init_args(tmp_path, events_csv)) == 0
    target = tmp_path / "datasets" / "txns.yaml"
    target.write_text(target.read_text() + "# edited by hand\n")
    before = target.read_bytes()
    suite = tmp_path / "gx" / "expectations" / "txns.events.json"
    suite.write_text("{}")
    capsys.readouterr()
    assert main(init_args(tmp_path, events_csv)) == 1
    err = capsys.readouterr().err
    assert str(target) in err and "--force" in err and "nothing written" in err
    assert target.read_bytes() == before and suite.read_text() == "{}"
    assert main(init_args(tmp_path, events_csv, "--force")) == 0
    assert "# edited by hand" not in target.read_text()
    assert json.loads(suite.read_text())["name"] == "txns.events"


def test_init_refuses_when_only_a_suite_exists(tmp_path: Path, events_csv: Path) -> None:
    suite = tmp_path / "gx" / "expectations" / "txns.labels.json"
    suite.parent.mkdir(parents=True)
    suite.write_text('{"edited": true}')
    assert main(init_args(tmp_path, events_csv)) == 1
    assert not (tmp_path / "datasets" / "txns.yaml").exists()
    assert suite.read_text() == '{"edited": true}'


def _fails(tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str], code: int = 1) -> str:
    assert main(args) == code
    assert not (tmp_path / "datasets" / "txns.yaml").exists()
    assert not (tmp_path / "gx").exists()
    return capsys.readouterr().err


def test_empty_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    err = _fails(tmp_path, init_args(tmp_path, empty), capsys)
    assert f"events file {empty} is empty (0 bytes)" in err
    header = tmp_path / "header.csv"
    header.write_text("tx_id,event_time,amount,is_fraud\n")
    err = _fails(tmp_path, init_args(tmp_path, header), capsys)
    assert f"events file {header} has 4 column(s) but no rows" in err
    pq_empty = tmp_path / "empty.parquet"
    synthetic().head(0).to_parquet(pq_empty)
    assert "but no rows" in _fails(tmp_path, init_args(tmp_path, pq_empty), capsys)
    err = _fails(tmp_path, init_args(tmp_path, tmp_path / "missing.csv"), capsys)
    assert f"events file {tmp_path / 'missing.csv'} not found" in err


def test_missing_id_or_time_column_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(synthetic().drop(columns=["tx_id"]), tmp_path / "noid.csv")
    err = _fails(tmp_path, init_args(tmp_path, path), capsys)
    assert f'{path}: no column "tx_id" (--id)' in err and '"event_time"' in err
    path = write_csv(synthetic().drop(columns=["event_time"]), tmp_path / "notime.csv")
    assert f'{path}: no column "event_time" (--time)' in _fails(tmp_path, init_args(tmp_path, path), capsys)


def test_a_label_with_three_values_is_named_with_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = synthetic()
    df["is_fraud"] = ["YES"] * 300 + ["NO"] * 290 + ["MAYBE"] * 10
    err = _fails(tmp_path, init_args(tmp_path, write_csv(df, tmp_path / "e.csv")), capsys)
    assert 'label column "is_fraud" must have exactly two distinct values' in err
    assert 'found 3: "YES" (300), "NO" (290), "MAYBE" (10)' in err
    df["is_fraud"] = "NO"
    err = _fails(tmp_path, init_args(tmp_path, write_csv(df, tmp_path / "e.csv")), capsys)
    assert 'found 1: "NO" (600)' in err


def test_a_separate_labels_file_gives_the_label(tmp_path: Path, events_csv: Path) -> None:
    df = synthetic()
    labels = write_csv(df[["tx_id", "is_fraud"]].head(400), tmp_path / "labels.csv")
    events = write_csv(df.drop(columns=["is_fraud"]), tmp_path / "ev.csv")
    assert main([*init_args(tmp_path, events), "--labels", str(labels)]) == 0
    text = flat((tmp_path / "datasets" / "txns.yaml").read_text())
    assert "100.0% of the labels' ids are in the events sample" in text
    bad = write_csv(df[["is_fraud"]], tmp_path / "noid_labels.csv")
    assert main([*init_args(tmp_path, events), "--labels", str(bad), "--force"]) == 1


def test_bad_ids_and_times_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = synthetic()
    df.loc[5, "tx_id"] = df.loc[4, "tx_id"]
    err = _fails(tmp_path, init_args(tmp_path, write_csv(df, tmp_path / "dup.csv")), capsys)
    assert 'id column "tx_id" is not unique: 1 value(s) repeat, e.g. "1004" in 2 rows' in err
    df = synthetic()
    df.loc[7, "event_time"] = "yesterday"
    err = _fails(tmp_path, init_args(tmp_path, write_csv(df, tmp_path / "t.csv")), capsys)
    assert 'time column "event_time" does not parse as timestamps: 1 of 600 values, e.g. "yesterday"' in err


def test_usage_errors_exit_2(tmp_path: Path, events_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(tmp_path, [*init_args(tmp_path, events_csv), "--timezone", "Mars/Olympus"], capsys, code=2)
    assert "unknown IANA time zone 'Mars/Olympus'" in err
    args = init_args(tmp_path, events_csv)
    args[args.index("txns")] = "Bad-Name"
    assert "--dataset 'Bad-Name'" in _fails(tmp_path, args, capsys, code=2)
    args = init_args(tmp_path, events_csv)
    del args[args.index("--label") : args.index("--label") + 2]
    assert "--label COL is required" in _fails(tmp_path, args, capsys, code=2)
    assert (
        main(["init", "--dataset", "txns", "--id", "tx_id", "--time", "event_time", "--label", "is_fraud"])
        == 2
    )
    assert "--events" in capsys.readouterr().err


def test_timestamps_with_and_without_an_offset_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = synthetic()
    df.loc[3, "event_time"] = "2026-03-01 10:00:00"
    err = _fails(tmp_path, init_args(tmp_path, write_csv(df, tmp_path / "mixed.csv")), capsys)
    assert 'time column "event_time" mixes timestamps with a UTC offset' in err
    assert '(e.g. "2026-03-01 10:00:00")' in err


def test_an_inferred_text_that_does_not_load_writes_nothing(tmp_path: Path) -> None:
    broken = infer.Inferred("txns", "name: txns\nid_column: x\n", [], 0)
    with pytest.raises(SpecError, match=r"(?s)does not load .*nothing written.*event_time_column"):
        infer.write_spec(broken, tmp_path / "datasets", tmp_path / "gx")
    assert list((tmp_path / "datasets").iterdir()) == [] and not (tmp_path / "gx").exists()
