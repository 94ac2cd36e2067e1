"""Warnings that do not quarantine: a check's severity in the spec and in suite files, the
outcome's verdict, the ingest's evidence and Model health's day row."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nightshift.ingest import ingest_partition
from nightshift.spec import DatasetSpec, SpecError, parse_spec
from nightshift.storage import Store
from nightshift.validate import (
    CheckResult,
    ValidationOutcome,
    build_suite,
    load_suite,
    run_suite,
    suite_parameters,
    suite_path,
    write_suite,
)

DAY = date(2026, 1, 1)


def _data(num: dict[str, Any] | None = None, cat: dict[str, Any] | None = None) -> dict[str, Any]:
    """A small dataset unlike the demo, its first features changed by ``num`` / ``cat``."""
    return {
        "name": "sensors",
        "id_column": "reading_id",
        "id_dtype": "int64",
        "event_time_column": "ts",
        "label": {"column": "fault", "delay_days": 0},
        "features": {
            "numeric": [
                {"name": "temp", "min": -40, "max": 125, "max_null_fraction": 0.1, **(num or {})},
                {"name": "level", "dtype": "int64", "min": 0, "max": 10},
            ],
            "categorical": [{"name": "site", "values": ["north", "south"], **(cat or {})}],
        },
        "validation": {"min_rows": 5},
        "landing": {"format": "csv", "delimiter": ";"},
    }


def _spec(num: dict[str, Any] | None = None, cat: dict[str, Any] | None = None) -> DatasetSpec:
    return parse_spec(_data(num, cat))


# ---- the spec ------------------------------------------------------------------------------------


def test_checks_are_critical_unless_the_spec_says_otherwise() -> None:
    spec = _spec()
    temp, site = spec.features.numeric[0], spec.features.categorical[0]
    assert temp.severity is None and temp.stated_severity("range") is None
    assert [temp.severity_of(c) for c in ("max_null_fraction", "range")] == ["critical", "critical"]
    assert site.severity_of("values") == "critical"


def test_severity_per_check_and_for_all_checks_of_a_feature() -> None:
    spec = _spec(
        num={"severity": {"max_null_fraction": "warning", "range": "critical"}},
        cat={"severity": "warning"},
    )
    temp, level = spec.features.numeric
    site = spec.features.categorical[0]
    assert (temp.severity_of("max_null_fraction"), temp.severity_of("range")) == ("warning", "critical")
    assert temp.stated_severity("range") == "critical"
    assert (site.severity_of("max_null_fraction"), site.severity_of("values")) == ("warning", "warning")
    assert level.severity_of("range") == "critical"
    only_nulls = _spec(num={"severity": {"max_null_fraction": "warning"}}).features.numeric[0]
    assert only_nulls.severity_of("range") == "critical" and only_nulls.stated_severity("range") is None


@pytest.mark.parametrize(
    ("num", "cat", "says"),
    [
        (
            {"severity": {"rnage": "warning", "nulls": "warning"}},
            None,
            "features.numeric.0.severity (feature 'temp'): Value error, unknown check(s) 'rnage', 'nulls'; "
            "this feature's checks: max_null_fraction, range",
        ),
        (
            None,
            {"severity": {"range": "warning"}},
            "features.categorical.0.severity (feature 'site'): Value error, unknown check(s) 'range'; "
            "this feature's checks: max_null_fraction, values",
        ),
        (
            {"severity": "warn"},
            None,
            "severity must be 'critical' or 'warning' (all of the feature's checks)",
        ),
        (
            {"severity": {"range": "info"}},
            None,
            "severity must be 'critical' or 'warning', got range: 'info'",
        ),
        (
            {"severity": ["warning"]},
            None,
            "or a mapping of check to severity (checks: max_null_fraction, range)",
        ),
        (
            {"min": None, "max": None, "severity": {"range": "warning"}},
            None,
            "feature 'temp': severity given for check(s) it does not have: range "
            "(a range check needs min or max)",
        ),
        (
            None,
            {"values": None, "severity": {"values": "warning"}},
            "feature 'site': severity given for check(s) it does not have: values "
            "(a values check needs values)",
        ),
    ],
)
def test_a_bad_severity_is_refused_naming_it(
    num: dict[str, Any] | None, cat: dict[str, Any] | None, says: str
) -> None:
    with pytest.raises(SpecError) as info:
        _spec(num, cat)
    assert says in str(info.value)


def test_the_demo_spec_has_no_warnings_and_its_commented_example_is_valid(spec: DatasetSpec) -> None:
    import yaml

    # its null-spike day must still be quarantined: the example is a comment there
    assert all(f.severity is None for f in [*spec.features.numeric, *spec.features.categorical])
    text = (Path(__file__).resolve().parents[2] / "datasets" / "payments.yaml").read_text(encoding="utf-8")
    examples = [
        line.split("#", 1)[1].strip() for line in text.splitlines() if "severity:" in line and "- {" in line
    ]
    assert len(examples) == 2, examples
    data = yaml.safe_load(text)
    for line in examples:
        feature = yaml.safe_load(line)[0]
        group = "numeric" if "dtype" in feature else "categorical"
        features = data["features"][group]
        features[[f["name"] for f in features].index(feature["name"])] = feature
    uncommented = parse_spec(data)
    distance = next(f for f in uncommented.features.numeric if f.name == "distance_from_home_km")
    risk = next(f for f in uncommented.features.categorical if f.name == "email_domain_risk")
    assert (distance.severity_of("max_null_fraction"), distance.severity_of("range")) == (
        "warning",
        "critical",
    )
    assert (risk.severity_of("max_null_fraction"), risk.severity_of("values")) == ("warning", "warning")


# ---- suites --------------------------------------------------------------------------------------


def _severities(suite: dict[str, Any]) -> dict[tuple[str, str | None], str | None]:
    return {(e["type"], e["kwargs"].get("column")): e.get("severity") for e in suite["expectations"]}


def test_build_suite_writes_only_the_severities_that_do_not_quarantine() -> None:
    suite = build_suite(_spec(num={"severity": {"range": "warning"}}, cat={"severity": "warning"}), "events")
    sev = _severities(suite)
    assert sev[("expect_column_values_to_be_between", "temp")] == "warning"
    assert sev[("expect_column_values_to_not_be_null", "temp")] is None  # critical: GX's default
    assert sev[("expect_column_values_to_be_in_set", "site")] == "warning"
    assert sev[("expect_column_values_to_not_be_null", "site")] == "warning"
    warned = {k for k, v in sev.items() if v is not None}
    assert warned == {
        ("expect_column_values_to_be_between", "temp"),
        ("expect_column_values_to_be_in_set", "site"),
        ("expect_column_values_to_not_be_null", "site"),
    }
    # the partition's own checks, ids and the labels suite are never a feature's
    assert not any(
        "severity" in e for e in build_suite(_spec(num={"severity": "warning"}), "labels")["expectations"]
    )


def test_the_demo_suite_files_carry_no_severity(spec: DatasetSpec) -> None:
    for kind in ("events", "labels"):
        text = suite_path(spec, kind).read_text(encoding="utf-8")
        assert json.loads(text) == build_suite(spec, kind) and "severity" not in text


def test_a_suite_file_takes_the_spec_severity_and_keeps_its_own_elsewhere(tmp_path: Path) -> None:
    plain = _spec()
    path = write_suite(plain, "events", tmp_path)  # a file from before the spec said anything
    data = json.loads(path.read_text())
    for e in data["expectations"]:
        if e["kwargs"].get("column") == "level" and e["type"] == "expect_column_values_to_be_between":
            e["severity"] = "warning"  # the user's own edit, where the spec says nothing
        if e["kwargs"].get("column") == "site" and e["type"] == "expect_column_values_to_be_in_set":
            e["severity"] = "warning"  # ... and where the spec says critical: the spec decides
    path.write_text(json.dumps(data))

    spec = _spec(num={"severity": {"max_null_fraction": "warning"}}, cat={"severity": {"values": "critical"}})
    sev = _severities(load_suite(spec, "events", tmp_path))
    assert sev[("expect_column_values_to_not_be_null", "temp")] == "warning"  # from the spec
    assert sev[("expect_column_values_to_be_between", "temp")] is None
    assert sev[("expect_column_values_to_be_between", "level")] == "warning"  # from the file
    assert sev[("expect_column_values_to_be_in_set", "site")] is None  # the spec's critical
    # and a spec that says nothing leaves the file as it is
    assert _severities(load_suite(plain, "events", tmp_path))[
        ("expect_column_values_to_be_in_set", "site")
    ] == ("warning")


def test_a_suite_file_with_an_unknown_severity_is_refused_naming_it(tmp_path: Path) -> None:
    spec = _spec()
    path = write_suite(spec, "events", tmp_path)
    data = json.loads(path.read_text())
    data["expectations"][3]["severity"] = "loud"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        load_suite(spec, "events", tmp_path)
    assert str(info.value) == (
        f"{path}: expectations[3] (expect_column_values_to_be_unique, column reading_id): "
        "severity must be one of critical, warning, info, got 'loud'"
    )


def _frame(n: int = 40, temp_bad: int = 2, temp_null: int = 0) -> Any:
    import pandas as pd

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    temp: list[float | None] = [float(i % 30) for i in range(n)]
    for i in range(temp_bad):
        temp[i] = 900.0 + i
    for i in range(temp_null):
        temp[n - 1 - i] = None
    return pd.DataFrame(
        {
            "reading_id": list(range(1, n + 1)),
            "ts": [t0 + timedelta(minutes=30 * i) for i in range(n)],
            "temp": temp,
            "level": [i % 11 for i in range(n)],
            "site": ["north" if i % 2 else "south" for i in range(n)],
        }
    )


def test_a_warning_is_gx_severity_in_its_own_part_and_seen_in_data_docs(tmp_path: Path) -> None:
    spec = _spec(num={"severity": {"range": "warning"}})
    docs = tmp_path / "docs"
    checks, gx = run_suite(_frame(), build_suite(spec, "events"), suite_parameters(spec, DAY), docs_dir=docs)
    temp_range = next(c for c in checks if c.label == "expect_column_values_to_be_between(temp)")
    assert (temp_range.success, temp_range.severity) == (False, "warning")
    assert temp_range.details.startswith("2 unexpected (5.00%), e.g. 900.0, 901.0")
    assert all(c.severity == "critical" for c in checks if c is not temp_range)
    parts = {r["suite_name"]: r for r in gx["results"]}
    warned = parts["sensors.events:temp:warning"]
    assert [r["expectation_config"]["severity"] for r in warned["results"]] == ["warning"]
    assert warned["success"] is False and parts["sensors.events:temp"]["success"] is True
    assert set(gx["column_seconds"]) == {"table", "reading_id", "ts", "temp", "level", "site"}
    html = "".join(p.read_text(encoding="utf-8") for p in docs.rglob("*.html"))
    assert "sensors.events:temp:warning" in html  # the failed warning, named as one


# ---- the outcome ---------------------------------------------------------------------------------


def _checks(*extra: CheckResult) -> list[CheckResult]:
    nulls = "expect_column_values_to_not_be_null"
    return [
        CheckResult("expect_table_columns_to_match_set", True),
        CheckResult(nulls, False, "temp", "12 unexpected (25.00%)", severity="warning"),
        CheckResult(
            "expect_column_values_to_be_in_set", False, "site", "1 unexpected (2.50%)", severity="info"
        ),
        *extra,
    ]


def test_warnings_only_publish_and_are_listed() -> None:
    outcome = ValidationOutcome("sensors", "events", "2026-01-01", 40, _checks())
    assert outcome.success and outcome.failed == [] and outcome.reason() == "valid"
    assert [c.label for c in outcome.warnings] == [
        "expect_column_values_to_not_be_null(temp)",
        "expect_column_values_to_be_in_set(site)",
    ]
    assert outcome.warning_text() == (
        "expect_column_values_to_not_be_null(temp): 12 unexpected (25.00%); "
        "expect_column_values_to_be_in_set(site): 1 unexpected (2.50%)"
    )
    assert outcome.warning_text(limit=1).endswith("; ... and 1 more")
    d = json.loads(json.dumps(outcome.to_dict()))
    assert d["success"] is True
    assert d["warnings"] == [
        "expect_column_values_to_not_be_null(temp)",
        "expect_column_values_to_be_in_set(site)",
    ]
    assert ValidationOutcome.from_dict(d) == outcome
    assert ValidationOutcome("d", "events", "2026-01-01", 1, [CheckResult("x", True)]).warning_text() == ""


def test_warnings_and_a_critical_failure_quarantine_for_the_critical_one_only() -> None:
    critical = CheckResult("expect_column_values_to_be_unique", False, "reading_id", "3 unexpected (7.50%)")
    outcome = ValidationOutcome("sensors", "events", "2026-01-01", 40, _checks(critical))
    assert not outcome.success and outcome.failed == [critical]
    assert len(outcome.warnings) == 2
    msg = outcome.message()
    assert "1 check(s) failed: expect_column_values_to_be_unique(reading_id)" in msg
    assert "temp" not in msg and "site" not in msg
    assert outcome.to_dict()["success"] is False


# ---- the ingest ----------------------------------------------------------------------------------


def _land(store: Store, spec: DatasetSpec, n: int, temp_bad: int, temp_null: int) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    lines = ["reading_id;ts;temp;level;site"]
    for i in range(n):
        temp = "" if i >= n - temp_null else f"{900 + i}" if i < temp_bad else f"{i % 30}"
        ts = (t0 + timedelta(minutes=3 * i)).isoformat().replace("+00:00", "Z")
        lines.append(f"{i + 1};{ts};{temp};{i % 11};{'north' if i % 2 else 'south'}")
    path = f"{store.landing_dir(spec.name, 'events', DAY)}/events.csv"
    store.write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())


@pytest.mark.parametrize("docs_max_rows", [200_000, 50])
def test_a_batch_with_warnings_only_publishes_with_counts_and_data_docs(
    tmp_path: Path, docs_max_rows: int
) -> None:
    """Above ``data_docs_max_rows`` the verdicts-only run finds the warnings; the batch is
    validated again for their counts and Data Docs, like a rejected one."""
    data = _data(num={"severity": "warning", "pii": True})
    data["validation"]["data_docs_max_rows"] = docs_max_rows
    spec = parse_spec(data)
    store = Store((tmp_path / "store").as_uri())
    _land(store, spec, 200, temp_bad=3, temp_null=60)  # 30 % nulls (budget 10 %), 3 out of range

    outcome = ingest_partition(store, spec, "events", DAY, gx_dir=tmp_path / "gx", work_dir=tmp_path / "w")

    assert (
        outcome.success
        and outcome.published_uri
        and store.exists(store.published_file(spec.name, "events", DAY))
    )
    assert {c.label: c.details for c in outcome.warnings} == {
        "expect_column_values_to_not_be_null(temp)": "60 unexpected (30.00%)",
        "expect_column_values_to_be_between(temp)": "3 unexpected (2.14%)",  # pii: counts, no values
    }
    report = store.read_json(store.reports_dir(spec.name, "validation", DAY) + "/events.json")
    assert report["outcome"]["success"] is True
    assert report["outcome"]["warnings"] == [c.label for c in outcome.warnings]
    assert "900" not in json.dumps(report)
    docs = store.reports_dir(spec.name, "validation", DAY) + "/data_docs_events/index.html"
    assert outcome.data_docs_uri == store.uri(docs) and store.exists(docs)
    assert not store.exists(store.quarantine_dir(spec.name, "events", DAY))


def test_the_same_day_on_a_critical_column_is_quarantined(tmp_path: Path) -> None:
    from nightshift.validate import BatchRejected

    spec = _spec(cat={"severity": "warning"})  # warnings elsewhere change nothing for temp
    store = Store((tmp_path / "store").as_uri())
    _land(store, spec, 200, temp_bad=3, temp_null=60)
    with pytest.raises(BatchRejected) as info:
        ingest_partition(store, spec, "events", DAY, gx_dir=tmp_path / "gx", work_dir=tmp_path / "w")
    assert [c.label for c in info.value.outcome.failed] == [
        "expect_column_values_to_not_be_null(temp)",
        "expect_column_values_to_be_between(temp)",
    ]
    assert not store.exists(store.published_file(spec.name, "events", DAY))


# ---- Model health --------------------------------------------------------------------------------


def test_model_health_shows_a_day_valid_with_its_warnings(tmp_path: Path, spec: DatasetSpec) -> None:
    from nightshift.health import collect
    from nightshift.healthpage import render
    from nightshift.report import day_rows, format_table

    store = Store(tmp_path.as_uri())
    for day, checks in (("2026-04-26", _checks()), ("2026-04-27", [CheckResult("x", True)])):
        o = ValidationOutcome("payments", "events", day, 4000, checks, report_uri="file:///r.json")
        path = store.path("reports", "payments", "validation", f"dt={day}", "events.json")
        store.write_json_atomic(
            path, {"outcome": o.to_dict(), "stats": {}, "validated_at": f"{day}T01:00:00+00:00"}
        )
    rows = day_rows(store, "payments", date(2026, 4, 26), 2)
    assert rows[0]["events"]["valid"] is True
    assert rows[0]["events"]["warnings"] == [
        "expect_column_values_to_not_be_null(temp)",
        "expect_column_values_to_be_in_set(site)",
    ]
    assert rows[1]["events"]["warnings"] == []
    assert "events: 2 warnings: expect_column_values_to_not_be_null(temp)" in format_table(rows)

    page = render(collect(store, spec, now=datetime(2026, 4, 28, tzinfo=UTC)), spec)
    assert 'id="days"' in page
    assert '<span class="warn">valid, 2 warnings</span>' in page
    assert "expect_column_values_to_not_be_null(temp), expect_column_values_to_be_in_set(site)" in page
    assert '<span class="ok">valid</span>' in page  # the clean day


# ---- notifications -------------------------------------------------------------------------------


def test_a_notification_has_its_event_severity_unless_told_and_refuses_another_word() -> None:
    from nightshift.notify import Notification

    def note(event: str, **kw: Any) -> Notification:
        return Notification(event=event, dataset="d", title="t", message="m", **kw)

    assert [note(e).severity for e in ("quarantine", "validation_warning", "promotion")] == [
        "error",
        "warning",
        "info",
    ]
    warned = note("validation_warning")
    assert warned.payload()["severity"] == "warning" and "severity: warning" in warned.text()
    assert note("alert", severity="error").severity == "error"
    with pytest.raises(ValueError, match="unknown notification severity 'loud'"):
        note("alert", severity="loud")
