"""GX suites generated from the spec, suite files, running a suite, and the validation outcome."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from nightshift.demo.datagen import Scenario, generate_day
from nightshift.ingest import arrow_schema, to_validation_frame
from nightshift.spec import DatasetSpec, parse_spec
from nightshift.validate import (
    BatchRejected,
    CheckResult,
    ValidationOutcome,
    build_suite,
    load_suite,
    name_label_classes,
    run_suite,
    suite_for_columns,
    suite_name,
    suite_parameters,
    suite_path,
    write_suite,
)

DAY = date(2026, 1, 1)
START = datetime(2026, 1, 1, tzinfo=UTC)
N = 40

Checks = list[CheckResult]


@pytest.fixture(scope="module")
def sensors() -> DatasetSpec:
    """A small dataset unlike the demo: int64 ids, other names, a null budget, labels 3/7."""
    return parse_spec(
        {
            "name": "sensors",
            "id_column": "reading_id",
            "id_dtype": "int64",
            "event_time_column": "ts",
            "label": {"column": "fault", "delay_days": 0, "positive": 7, "negative": 3},
            "features": {
                "numeric": [
                    {"name": "temp", "min": -40, "max": 125, "max_null_fraction": 0.2},
                    {"name": "level", "dtype": "int64", "min": 0, "max": 10},
                    {"name": "free", "dtype": "float64"},
                ],
                "categorical": [{"name": "site", "values": ["north", "south"]}, {"name": "note"}],
            },
            "validation": {"min_rows": 5, "max_rows": 1000, "range_mostly": 0.99},
        }
    )


def _by(suite: dict[str, Any], type_: str, column: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in suite["expectations"]
        if e["type"] == type_ and (column is None or e["kwargs"].get("column") == column)
    ]


def _one(suite: dict[str, Any], type_: str, column: str | None = None) -> dict[str, Any]:
    found = _by(suite, type_, column)
    assert len(found) == 1, (type_, column, found)
    return found[0]["kwargs"]


def _sensor_columns(**over: list[Any]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {
        "reading_id": list(range(1, N + 1)),
        "ts": [START + timedelta(minutes=30 * i) for i in range(N)],
        "temp": [float(i) if i % 10 else None for i in range(N)],  # 10 % nulls: inside the 20 % budget
        "level": [i % 11 for i in range(N)],
        "free": [1e9 * (i - 20) for i in range(N)],  # no range in the spec
        "site": ["north", "south"] * (N // 2),
        "note": [f"anything {i}" for i in range(N)],  # no value set in the spec
    }
    cols.update(over)
    return cols


def _sensor_frame(spec: DatasetSpec, **over: list[Any]) -> pd.DataFrame:
    return to_validation_frame(pa.table(_sensor_columns(**over), schema=arrow_schema(spec, "events")), spec)


def _failed(checks: Checks) -> set[tuple[str, str | None]]:
    return {(c.name, c.column) for c in checks if not c.success}


# ---- building suites -----------------------------------------------------------------------------


def test_events_suite_for_demo(spec: DatasetSpec) -> None:
    suite = build_suite(spec, "events")
    assert suite["name"] == "payments.events" == suite_name(spec, "events")
    assert suite["meta"]["generated_from"] == "datasets/payments.yaml"
    assert _one(suite, "expect_table_columns_to_match_set") == {
        "column_set": spec.event_columns,
        "exact_match": True,
    }
    assert _one(suite, "expect_table_row_count_to_be_between") == {"min_value": 100, "max_value": None}
    assert _one(suite, "expect_column_values_to_be_unique") == {"column": "payment_id"}
    assert _one(suite, "expect_column_values_to_not_be_null", "payment_id") == {"column": "payment_id"}
    assert _one(suite, "expect_column_values_to_not_be_null", "event_time") == {"column": "event_time"}
    assert _one(suite, "expect_column_values_to_be_between", "event_time") == {
        "column": "event_time",
        "min_value": {"$PARAMETER": "partition_start"},
        "max_value": {"$PARAMETER": "partition_end"},
        "strict_max": True,
    }
    # every numeric feature: a null budget and its range
    for f in spec.features.numeric:
        nn = _one(suite, "expect_column_values_to_not_be_null", f.name)
        if f.max_null_fraction:
            assert nn["mostly"] == pytest.approx(1 - f.max_null_fraction)
        else:
            assert "mostly" not in nn
        assert _one(suite, "expect_column_values_to_be_between", f.name) == {
            "column": f.name,
            "min_value": f.min,
            "max_value": f.max,
            "mostly": 1.0,
        }
    assert _one(suite, "expect_column_values_to_not_be_null", "customer_age")["mostly"] == 0.95
    assert _one(suite, "expect_column_values_to_not_be_null", "credit_limit")["mostly"] == 0.7
    # every categorical feature: a null budget and its value set
    for c in spec.features.categorical:
        _one(suite, "expect_column_values_to_not_be_null", c.name)
        assert _one(suite, "expect_column_values_to_be_in_set", c.name) == {
            "column": c.name,
            "value_set": c.values,
            "mostly": 1.0,
        }
    assert _one(suite, "expect_column_values_to_not_be_null", "email_domain_risk")["mostly"] == 0.9
    n_num, n_cat = len(spec.features.numeric), len(spec.features.categorical)
    assert len(suite["expectations"]) == 6 + 2 * n_num + 2 * n_cat
    assert not _by(suite, "expect_column_values_to_be_in_set", "is_fraud")  # no label in events
    json.dumps(suite)  # a plain JSON document


def test_labels_suite_for_demo(spec: DatasetSpec) -> None:
    suite = build_suite(spec, "labels")
    assert suite["name"] == "payments.labels"
    assert _one(suite, "expect_table_columns_to_match_set")["column_set"] == spec.label_columns
    assert _one(suite, "expect_column_values_to_be_unique") == {"column": "payment_id"}
    # labels may be for events of earlier days, never for events after the arrival day
    assert _one(suite, "expect_column_values_to_be_between", "event_time") == {
        "column": "event_time",
        "max_value": {"$PARAMETER": "partition_end"},
        "strict_max": True,
    }
    assert _one(suite, "expect_column_values_to_not_be_null", "is_fraud") == {"column": "is_fraud"}
    assert _one(suite, "expect_column_values_to_be_in_set", "is_fraud") == {
        "column": "is_fraud",
        "value_set": [0, 1],
    }
    columns = {e["kwargs"].get("column") for e in suite["expectations"]}
    assert columns <= {None, "payment_id", "event_time", "is_fraud"}  # no feature checks


def test_suite_follows_another_spec(sensors: DatasetSpec) -> None:
    suite = build_suite(sensors, "events")
    text = json.dumps(suite)
    for demo_name in ("payment_id", "event_time", "is_fraud", "amount"):
        assert demo_name not in text
    assert _one(suite, "expect_column_values_to_be_unique") == {"column": "reading_id"}
    assert _one(suite, "expect_table_row_count_to_be_between") == {"min_value": 5, "max_value": 1000}
    assert _one(suite, "expect_column_values_to_be_between", "temp")["mostly"] == 0.99
    assert _one(suite, "expect_column_values_to_not_be_null", "temp")["mostly"] == 0.8
    assert _one(suite, "expect_column_values_to_be_in_set", "site")["mostly"] == 0.99
    # no range / no value set in the spec -> no expectation, only the null budget
    assert not _by(suite, "expect_column_values_to_be_between", "free")
    assert not _by(suite, "expect_column_values_to_be_in_set", "note")
    assert _one(suite, "expect_column_values_to_not_be_null", "note") == {"column": "note"}
    labels = build_suite(sensors, "labels")
    assert _one(labels, "expect_column_values_to_be_in_set", "fault")["value_set"] == [3, 7]
    assert _one(labels, "expect_column_values_to_be_unique") == {"column": "reading_id"}


def test_suite_parameters(spec: DatasetSpec) -> None:
    params = suite_parameters(spec, DAY)
    assert params == {
        "partition_start": pd.Timestamp("2026-01-01T00:00:00Z"),
        "partition_end": pd.Timestamp("2026-01-02T00:00:00Z"),
    }
    assert str(params["partition_start"].tz) == "UTC"


def test_suite_parameters_are_the_local_days_bounds(spec: DatasetSpec) -> None:
    chicago = parse_spec({**spec.model_dump(), "partitioning": {"timezone": "America/Chicago"}})
    assert suite_parameters(chicago, DAY) == {
        "partition_start": pd.Timestamp("2026-01-01T06:00:00Z"),
        "partition_end": pd.Timestamp("2026-01-02T06:00:00Z"),
    }
    # the day clocks go forward is 23 hours long
    spring = suite_parameters(chicago, date(2026, 3, 8))
    assert spring["partition_end"] - spring["partition_start"] == pd.Timedelta(hours=23)


def test_a_labels_file_without_the_event_time_is_validated_without_it(spec: DatasetSpec) -> None:
    suite = build_suite(spec, "labels")
    assert suite_for_columns(suite, spec, "labels", spec.label_columns) is suite  # all there
    lean = suite_for_columns(suite, spec, "labels", ["payment_id", "is_fraud"])
    assert _one(lean, "expect_table_columns_to_match_set")["column_set"] == ["payment_id", "is_fraud"]
    assert not [e for e in lean["expectations"] if e["kwargs"].get("column") == "event_time"]
    assert len(lean["expectations"]) == len(suite["expectations"]) - 2
    # the events' columns are never optional
    events = build_suite(spec, "events")
    assert suite_for_columns(events, spec, "events", ["payment_id"]) is events
    # and the run: the id and the label are enough
    table = pa.table({"payment_id": [f"p{i}" for i in range(100)], "is_fraud": [0, 1] * 50})
    checks, _ = run_suite(table, lean, suite_parameters(spec, DAY))
    assert all(c.success for c in checks), [c for c in checks if not c.success]


# ---- suite files ---------------------------------------------------------------------------------


def test_write_and_load_suite(spec: DatasetSpec, tmp_path: Path) -> None:
    path = suite_path(spec, "events", tmp_path)
    assert path == tmp_path / "expectations" / "payments.events.json"
    assert load_suite(spec, "events", tmp_path) == build_suite(spec, "events")  # no file yet
    assert write_suite(spec, "events", tmp_path) == path
    assert json.loads(path.read_text()) == build_suite(spec, "events")
    assert load_suite(spec, "events", tmp_path) == build_suite(spec, "events")
    assert sorted(p.name for p in path.parent.iterdir()) == ["payments.events.json"]

    # an operator edits the file: it is kept and used
    edited = json.loads(path.read_text())
    edited["expectations"] = edited["expectations"][:3]
    edited["meta"]["owner"] = "data-team"
    path.write_text(json.dumps(edited))
    assert write_suite(spec, "events", tmp_path) == path
    assert load_suite(spec, "events", tmp_path) == edited
    assert load_suite(spec, "labels", tmp_path) == build_suite(spec, "labels")  # other kind untouched

    write_suite(spec, "events", tmp_path, overwrite=True)
    assert load_suite(spec, "events", tmp_path) == build_suite(spec, "events")


def test_broken_suite_file_names_the_path(spec: DatasetSpec, tmp_path: Path) -> None:
    path = suite_path(spec, "labels", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="suite is not valid JSON") as info:
        load_suite(spec, "labels", tmp_path)
    assert str(path) in str(info.value)


def test_gx_dir_from_env(spec: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTSHIFT_GX_DIR", str(tmp_path))
    assert suite_path(spec, "events") == tmp_path / "expectations" / "payments.events.json"
    write_suite(spec, "events")
    assert (tmp_path / "expectations" / "payments.events.json").exists()


# ---- running suites ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_sensor_run(sensors: DatasetSpec) -> tuple[Checks, dict[str, Any]]:
    suite = build_suite(sensors, "events")
    return run_suite(_sensor_frame(sensors), suite, suite_parameters(sensors, DAY))


def test_clean_frame_passes(sensors: DatasetSpec, clean_sensor_run: tuple[Checks, dict[str, Any]]) -> None:
    checks, gx_json = clean_sensor_run
    assert _failed(checks) == set()
    suite = build_suite(sensors, "events")
    assert [(c.name, c.column) for c in checks] == [
        (e["type"], e["kwargs"].get("column")) for e in suite["expectations"]
    ]
    assert all(c.source == "gx" and c.severity == "critical" and c.details == "" for c in checks)
    assert gx_json["success"] is True
    # one GX result per part (table-level, then each column), together covering every check
    assert sum(len(part["results"]) for part in gx_json["results"]) == len(checks)
    json.dumps(gx_json)  # GX's JSON result goes into reports as is


def test_clean_demo_day_passes(spec: DatasetSpec) -> None:
    batches = list(generate_day(spec, DAY, 0, 300, 7, Scenario()))
    events = pa.Table.from_batches([e for e, _ in batches])
    labels = pa.Table.from_batches([lb for _, lb in batches])
    params = suite_parameters(spec, DAY)
    checks, _ = run_suite(to_validation_frame(events, spec), build_suite(spec, "events"), params)
    assert _failed(checks) == set()
    checks, _ = run_suite(to_validation_frame(labels, spec), build_suite(spec, "labels"), params)
    assert _failed(checks) == set()


@pytest.fixture(scope="module")
def bad_sensor_checks(sensors: DatasetSpec) -> Checks:
    ids = list(range(1, N + 1))
    ids[5] = 1  # duplicate id
    temp = [None if i % 3 == 0 else float(i) for i in range(N)]  # ~35 % nulls: over the 20 % budget
    temp[4] = 500.0  # out of range (1 of 26 non-null: below mostly=0.99)
    level: list[int | None] = [i % 11 for i in range(N)]
    level[2] = None  # no nulls allowed
    site = ["north", "south"] * (N // 2)
    site[7] = "east"  # not in the value set
    ts = [START + timedelta(minutes=30 * i) for i in range(N)]
    ts[-1] = START + timedelta(days=1)  # first instant of the next day: outside [start, end)
    frame = _sensor_frame(sensors, reading_id=ids, temp=temp, level=level, site=site, ts=ts)
    checks, _ = run_suite(frame, build_suite(sensors, "events"), suite_parameters(sensors, DAY))
    return checks


def test_bad_frame_fails_naming_expectation_and_column(bad_sensor_checks: Checks) -> None:
    assert _failed(bad_sensor_checks) == {
        ("expect_column_values_to_be_unique", "reading_id"),
        ("expect_column_values_to_not_be_null", "temp"),
        ("expect_column_values_to_be_between", "temp"),
        ("expect_column_values_to_not_be_null", "level"),
        ("expect_column_values_to_be_in_set", "site"),
        ("expect_column_values_to_be_between", "ts"),
    }
    details = {c.label: c.details for c in bad_sensor_checks if not c.success}
    assert details["expect_column_values_to_be_in_set(site)"].startswith("1 unexpected (2.50%)")
    assert "'east'" in details["expect_column_values_to_be_in_set(site)"]
    assert "500.0" in details["expect_column_values_to_be_between(temp)"]
    assert "2026-01-02" in details["expect_column_values_to_be_between(ts)"]
    assert details["expect_column_values_to_be_unique(reading_id)"].startswith("2 unexpected")
    assert details["expect_column_values_to_not_be_null(temp)"].startswith("14 unexpected (35.00%)")


def test_missing_column_and_too_few_rows(sensors: DatasetSpec) -> None:
    frame = _sensor_frame(sensors).drop(columns=["site"]).head(3)
    frame["promo"] = "x"
    checks, gx_json = run_suite(frame, build_suite(sensors, "events"), suite_parameters(sensors, DAY))
    failed = _failed(checks)
    assert ("expect_table_columns_to_match_set", None) in failed
    assert ("expect_table_row_count_to_be_between", None) in failed
    assert ("expect_column_values_to_be_in_set", "site") in failed
    details = {c.label: c.details for c in checks}
    assert details["expect_table_row_count_to_be_between"] == "observed 3"
    assert (
        details["expect_table_columns_to_match_set"] == "missing column(s): site; unexpected column(s): promo"
    )
    assert gx_json["success"] is False


def test_expectation_that_cannot_run_says_why(sensors: DatasetSpec) -> None:
    frame = _sensor_frame(sensors).drop(columns=["site"])
    checks, _ = run_suite(frame, build_suite(sensors, "events"), suite_parameters(sensors, DAY))
    check = next(c for c in checks if c.label == "expect_column_values_to_be_in_set(site)")
    assert not check.success
    assert check.details.startswith("could not run:")
    assert "site" in check.details


def test_labels_suite_run(sensors: DatasetSpec) -> None:
    schema = arrow_schema(sensors, "labels")
    table = pa.table(
        {
            "reading_id": [1, 2, 3, 4, 5, 6],
            # labels for events of earlier days are fine; one event after the arrival day is not
            "ts": [START - timedelta(days=d) for d in range(5)] + [START + timedelta(days=1, hours=1)],
            "fault": [3, 7, 3, 3, 7, 5],
        },
        schema=schema,
    )
    params = suite_parameters(sensors, DAY)
    checks, _ = run_suite(to_validation_frame(table, sensors), build_suite(sensors, "labels"), params)
    assert _failed(checks) == {
        ("expect_column_values_to_be_between", "ts"),
        ("expect_column_values_to_be_in_set", "fault"),
    }
    # a value outside the two classes is said as such
    (named,) = [c for c in name_label_classes(checks, sensors) if c.column == "fault" and not c.success]
    assert named.details.startswith("1 value(s) neither 7 nor 3 (16.67%)")


def test_warning_severity_from_an_edited_suite(sensors: DatasetSpec) -> None:
    suite = build_suite(sensors, "events")
    for e in _by(suite, "expect_column_values_to_be_between", "temp"):
        e["severity"] = "warning"
    temp = [float(i) for i in range(N)]
    temp[0] = 999.0
    checks, _ = run_suite(_sensor_frame(sensors, temp=temp), suite, suite_parameters(sensors, DAY))
    temp_range = next(c for c in checks if c.label == "expect_column_values_to_be_between(temp)")
    assert (temp_range.success, temp_range.severity) == (False, "warning")
    outcome = ValidationOutcome("sensors", "events", "2026-01-01", N, checks)
    assert outcome.success  # a warning does not reject the batch
    assert outcome.failed == []


# ---- the outcome ---------------------------------------------------------------------------------


def _outcome(**kw: Any) -> ValidationOutcome:
    checks = [
        CheckResult("values_castable", False, "amount", "2 value(s) not parseable as double", "read"),
        CheckResult("expect_column_values_to_be_unique", False, "payment_id", "3 unexpected (1.00%)"),
        CheckResult("expect_table_columns_to_match_set", True),
        CheckResult(
            "expect_column_values_to_be_between", False, "amount", "1 unexpected", severity="warning"
        ),
    ]
    return ValidationOutcome(
        dataset="payments",
        kind="events",
        dt="2026-01-01",
        rows=300,
        checks=checks,
        files=["file:///s/landing/payments/events/dt=2026-01-01/events.csv"],
        **kw,
    )


def test_outcome_message() -> None:
    report = "file:///s/quarantine/payments/events/dt=2026-01-01/validation.json"
    docs = "file:///s/quarantine/payments/events/dt=2026-01-01/data_docs/index.html"
    outcome = _outcome(report_uri=report, data_docs_uri=docs)
    assert not outcome.success
    assert [c.label for c in outcome.failed] == [
        "values_castable(amount)",
        "expect_column_values_to_be_unique(payment_id)",
    ]
    msg = outcome.message()
    assert msg.startswith("payments events dt=2026-01-01 quarantined: 2 check(s) failed: ")
    assert "values_castable(amount): 2 value(s) not parseable as double" in msg
    assert "expect_column_values_to_be_unique(payment_id): 3 unexpected (1.00%)" in msg
    assert "to_be_between" not in msg  # warnings are not reasons
    assert f"Report: {report}" in msg
    assert f"Data Docs: {docs}" in msg
    assert str(BatchRejected(outcome)) == msg
    assert BatchRejected(outcome).outcome is outcome


def test_outcome_message_without_report() -> None:
    msg = _outcome().message()
    assert "Report: (no report written)" in msg
    assert "Data Docs" not in msg


def test_outcome_reason_limit() -> None:
    checks = [CheckResult(f"check_{i}", False) for i in range(6)]
    outcome = ValidationOutcome("d", "labels", "2026-01-01", 0, checks)
    assert outcome.reason(limit=4) == "check_0; check_1; check_2; check_3; ... and 2 more"
    assert ValidationOutcome("d", "labels", "2026-01-01", 0, []).reason() == "valid"


def test_outcome_round_trip() -> None:
    outcome = _outcome(report_uri="file:///r.json", published_uri=None)
    d = outcome.to_dict()
    assert d["success"] is False
    assert d["checks"][0] == {
        "name": "values_castable",
        "success": False,
        "column": "amount",
        "details": "2 value(s) not parseable as double",
        "source": "read",
        "severity": "critical",
    }
    again = ValidationOutcome.from_dict(json.loads(json.dumps(d)))
    assert again == outcome
    assert again.message() == outcome.message()
    ok = ValidationOutcome(
        "d", "events", "2026-01-01", 5, [CheckResult("x", True)], published_uri="file:///p"
    )
    assert ValidationOutcome.from_dict(ok.to_dict()) == ok
    assert ok.to_dict()["success"] is True


# ---- pii columns: counts, never values -----------------------------------------------------------

SECRETS = ("918273645", "SECRET-SITE-4111", "SECRET-NOTE-7734")


@pytest.fixture(scope="module")
def private(sensors: DatasetSpec) -> DatasetSpec:
    """The sensors dataset with ``temp``, ``site`` and ``note`` marked personal."""
    data = sensors.model_dump()
    data["features"]["numeric"][0]["pii"] = True
    for c in data["features"]["categorical"]:
        c["pii"] = True
    return parse_spec(data)


def test_suite_lists_the_specs_pii_columns(
    sensors: DatasetSpec, private: DatasetSpec, tmp_path: Path
) -> None:
    assert build_suite(private, "events")["meta"]["pii_columns"] == ["note", "site", "temp"]
    assert "pii_columns" not in build_suite(private, "labels")["meta"]  # no feature in labels
    assert "pii_columns" not in build_suite(sensors, "events")["meta"]
    # the spec decides, not the suite file: an older file gets the spec's list, a stale one loses it
    write_suite(sensors, "events", tmp_path)
    assert load_suite(private, "events", tmp_path)["meta"]["pii_columns"] == ["note", "site", "temp"]
    write_suite(private, "events", tmp_path, overwrite=True)
    assert load_suite(sensors, "events", tmp_path)["meta"]["pii_columns"] == []


def test_pii_values_never_leave_gx(private: DatasetSpec, tmp_path: Path) -> None:
    """A batch whose pii columns break their checks: the checks, GX's JSON and the Data Docs
    say how many values failed, never which; a column that is not pii still shows examples."""
    temp = [float(i) for i in range(N)]
    temp[4] = float(SECRETS[0])  # out of range
    site = ["north", "south"] * (N // 2)
    site[7] = SECRETS[1]  # not in the value set
    note = [f"note {i}" for i in range(N)]
    note[9] = SECRETS[2]
    level = [i % 11 for i in range(N)]
    level[3] = 424242  # out of range, not pii: named as an example
    frame = _sensor_frame(private, temp=temp, site=site, note=note, level=level)
    suite = build_suite(private, "events")
    # expectations an operator may add whose results hold values of their own (observed values,
    # distinct values, pairs): scrubbed as well
    suite["expectations"] += [
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "temp", "max_value": 125}},
        {
            "type": "expect_column_distinct_values_to_be_in_set",
            "kwargs": {"column": "site", "value_set": ["north", "south"]},
        },
        {"type": "expect_column_pair_values_to_be_equal", "kwargs": {"column_A": "note", "column_B": "site"}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "note", "regex": "^note"}},
    ]
    docs = tmp_path / "docs"
    checks, gx_json = run_suite(frame, suite, suite_parameters(private, DAY), docs_dir=docs)

    details = {c.label: c.details for c in checks if not c.success}
    assert details["expect_column_values_to_be_between(temp)"] == "1 unexpected (2.50%)"
    assert details["expect_column_values_to_be_in_set(site)"] == "1 unexpected (2.50%)"
    assert details["expect_column_values_to_match_regex(note)"] == "1 unexpected (2.50%)"
    assert details["expect_column_max_to_be_between(temp)"] == "values withheld: pii column"
    assert "424242" in details["expect_column_values_to_be_between(level)"]  # the control
    evidence = {
        "checks": " ".join(details.values()),
        "gx_json": json.dumps(gx_json, default=str),
        "data_docs": "".join(p.read_text(errors="replace") for p in docs.rglob("*") if p.is_file()),
    }
    assert list(docs.rglob("*.html")), "no Data Docs were built"
    for where, text in evidence.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in the {where}"
    assert "424242" in evidence["gx_json"] and "424242" in evidence["data_docs"]
    # the counts are kept
    temp_range = next(
        r
        for part in gx_json["results"]
        for r in part["results"]
        if r["expectation_config"]["type"] == "expect_column_values_to_be_between"
        and r["expectation_config"]["kwargs"]["column"] == "temp"
    )
    assert temp_range["result"]["unexpected_count"] == 1 and temp_range["result"]["element_count"] == N
