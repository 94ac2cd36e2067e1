"""GX's SQL execution engine on DuckDB over a staged Parquet file (the ingest's validation): the
same checks, details, severities, pii redaction and per-column seconds as GX's pandas engine,
local days, typed labels, the pandas fallback for what GX has no SQL for, and the ingest on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nightshift import validate
from nightshift.ingest import arrow_schema, ingest_partition
from nightshift.spec import DatasetSpec, parse_spec
from nightshift.storage import Store
from nightshift.validate import (
    ENGINE_ENV,
    BatchRejected,
    CheckResult,
    build_suite,
    gx_engine,
    run_suite,
    suite_parameters,
)

DAY = date(2026, 1, 1)
START = datetime(2026, 1, 1, tzinfo=UTC)
N = 40
SECRETS = ("918273645", "SECRET-SITE-4111")


@pytest.fixture(scope="module")
def sensors() -> DatasetSpec:
    return parse_spec(
        {
            "name": "sensors",
            "id_column": "reading_id",
            "id_dtype": "int64",
            "event_time_column": "ts",
            "label": {"column": "fault", "delay_days": 0, "positive": "FAULT", "negative": "OK"},
            "features": {
                "numeric": [
                    {"name": "temp", "min": -40, "max": 125, "max_null_fraction": 0.2, "pii": True},
                    {"name": "level", "dtype": "int64", "min": 0, "max": 10},
                ],
                "categorical": [
                    {"name": "site", "values": ["north", "south"], "pii": True},
                    {"name": "note", "severity": {"max_null_fraction": "warning"}},
                ],
            },
            "partitioning": {"timezone": "America/Chicago"},
            "validation": {"min_rows": 5, "max_rows": 1000, "range_mostly": 0.99},
        }
    )


def _bounds(spec: DatasetSpec) -> tuple[datetime, datetime]:
    params = suite_parameters(spec, DAY)
    return params["partition_start"].to_pydatetime(), params["partition_end"].to_pydatetime()


def _bad_table(spec: DatasetSpec) -> pa.Table:
    """A batch that breaks one check of each kind, pii columns included, in a local day."""
    start, end = _bounds(spec)
    ids = list(range(1, N + 1))
    ids[5] = 1  # a duplicate id
    temp: list[float | None] = [None if i % 3 == 0 else float(i) for i in range(N)]  # 35 % nulls
    temp[4] = float(SECRETS[0])  # out of range, on a pii column
    temp[5] = float("nan")  # NaN: a missing value for both engines
    level: list[int | None] = [i % 11 for i in range(N)]
    level[2] = None
    level[3] = 424242  # out of range, not pii: shown as an example
    site = ["north", "south"] * (N // 2)
    site[7] = SECRETS[1]  # not in the value set, pii
    note: list[str | None] = [None if i % 2 else f"note {i}" for i in range(N)]  # 50 % nulls: a warning
    ts = [start + timedelta(minutes=30 * i) for i in range(N)]
    ts[-1] = end  # the next local day's first instant
    ts[-2] = start - timedelta(microseconds=1)  # the last instant of the day before
    cols = {"reading_id": ids, "ts": ts, "temp": temp, "level": level, "site": site, "note": note}
    return pa.table(cols, schema=arrow_schema(spec, "events"))


def _same(checks: list[CheckResult]) -> list[tuple[Any, ...]]:
    return [(c.name, c.column, c.success, c.details, c.severity) for c in checks]


@pytest.fixture(scope="module")
def both(sensors: DatasetSpec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("sql")
    table = _bad_table(sensors)
    path = tmp / "staged.parquet"
    pq.write_table(table, path)
    suite, params = build_suite(sensors, "events"), suite_parameters(sensors, DAY)
    out: dict[str, Any] = {"path": path, "tmp": tmp}
    out["pandas"] = run_suite(table, suite, params, docs_dir=tmp / "docs-pandas")
    out["sql"] = run_suite(path, suite, params, docs_dir=tmp / "docs-sql", engine="sql")
    return out


def test_a_parquet_batch_is_validated_on_duckdb(
    both: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert both["sql"][1]["engine"] == "sql" and both["pandas"][1]["engine"] == "pandas"
    assert "pandas_parts" not in both["sql"][1]  # GX has a SQL form of every generated check
    # auto: a small batch stays on pandas (its process need not load DuckDB), a large one is SQL's
    assert gx_engine(both["path"]) == "pandas"
    monkeypatch.setattr(validate, "SQL_MIN_ROWS", N)
    assert gx_engine(both["path"]) == "sql"
    assert gx_engine(pq.read_table(both["path"])) == "pandas"  # a table or frame: always pandas
    monkeypatch.setenv(ENGINE_ENV, "pandas")
    assert gx_engine(both["path"]) == "pandas"
    monkeypatch.setattr(validate, "SQL_MIN_ROWS", 10**9)
    monkeypatch.setenv(ENGINE_ENV, "sql")
    assert gx_engine(both["path"]) == "sql"
    monkeypatch.setenv(ENGINE_ENV, "spark")
    with pytest.raises(
        ValueError, match=r"NIGHTSHIFT_GX_ENGINE must be one of auto, sql, pandas, got 'spark'"
    ):
        gx_engine(both["path"])


def test_duckdb_never_downloads_and_spills_beside_the_batch(both: dict[str, Any]) -> None:
    from nightshift import gxsql

    args = gxsql.connect_args(both["path"])
    assert args["config"]["autoinstall_known_extensions"] is False
    assert args["config"]["temp_directory"] == str(both["path"].parent / "duckdb-spill")
    assert f"read_parquet('{both['path']}')" in args[gxsql.BATCH_ARG]


def test_the_sql_engine_gives_the_pandas_engines_checks(both: dict[str, Any], sensors: DatasetSpec) -> None:
    sql_checks, pandas_checks = both["sql"][0], both["pandas"][0]
    # one difference, the SQL engine's for the better: an int64 column with nulls is float64 in
    # pandas, so its examples read 424242.0 there
    level = "expect_column_values_to_be_between(level)"
    assert [c.details for c in sql_checks if c.label == level] == ["1 unexpected (2.56%), e.g. 424242"]
    assert [c.details for c in pandas_checks if c.label == level] == ["1 unexpected (2.56%), e.g. 424242.0"]
    for c in pandas_checks:
        c.details = c.details.replace("424242.0", "424242")
    assert _same(sql_checks) == _same(pandas_checks)
    failed = {(c.name, c.column): c.details for c in sql_checks if not c.success}
    assert set(failed) == {
        ("expect_column_values_to_be_unique", "reading_id"),
        ("expect_column_values_to_be_between", "ts"),
        ("expect_column_values_to_not_be_null", "temp"),
        ("expect_column_values_to_be_between", "temp"),
        ("expect_column_values_to_not_be_null", "level"),
        ("expect_column_values_to_be_between", "level"),
        ("expect_column_values_to_be_in_set", "site"),
        ("expect_column_values_to_not_be_null", "note"),
    }
    # the local day's bounds, both sides; NaN counts as missing; pii values withheld
    _, end = _bounds(sensors)
    assert failed[("expect_column_values_to_be_between", "ts")].startswith("2 unexpected (5.00%)")
    assert end.isoformat() in failed[("expect_column_values_to_be_between", "ts")]
    assert failed[("expect_column_values_to_not_be_null", "temp")].startswith(
        "15 unexpected (37.50%)"
    )  # 14 nulls and a NaN
    assert failed[("expect_column_values_to_be_between", "temp")] == "1 unexpected (4.00%)"
    assert failed[("expect_column_values_to_be_in_set", "site")] == "1 unexpected (2.50%)"
    assert "424242" in failed[("expect_column_values_to_be_between", "level")]
    assert failed[("expect_column_values_to_be_unique", "reading_id")].startswith("2 unexpected")
    note = next(c for c in sql_checks if c.label == "expect_column_values_to_not_be_null(note)")
    assert note.severity == "warning"


def test_the_sql_engines_evidence_has_the_same_shape(both: dict[str, Any]) -> None:
    (_, sql), (_, pandas) = both["sql"], both["pandas"]
    assert [p["suite_name"] for p in sql["results"]] == [p["suite_name"] for p in pandas["results"]]
    assert "sensors.events:note:warning" in [p["suite_name"] for p in sql["results"]]
    assert (
        set(sql["column_seconds"])
        == set(pandas["column_seconds"])
        == {
            "table",
            "reading_id",
            "ts",
            "temp",
            "level",
            "site",
            "note",
        }
    )
    assert all(v > 0 for v in sql["column_seconds"].values())
    for a, b in zip(sql["results"], pandas["results"], strict=True):
        assert a.keys() == b.keys()
        for ra, rb in zip(a["results"], b["results"], strict=True):
            assert ra["expectation_config"]["type"] == rb["expectation_config"]["type"]
            assert ra["success"] == rb["success"]
            counts = ("unexpected_count", "element_count", "missing_count", "observed_value")
            assert {k: ra["result"].get(k) for k in counts} == {k: rb["result"].get(k) for k in counts}
    json.dumps(sql)


def test_the_sql_engines_data_docs_withhold_pii(both: dict[str, Any]) -> None:
    docs = both["tmp"] / "docs-sql"
    pages = list(docs.rglob("*.html"))
    assert len([p for p in pages if "validations" in p.parts]) == len(both["sql"][1]["results"])
    text = "".join(p.read_text(errors="replace") for p in docs.rglob("*") if p.is_file())
    evidence = json.dumps(both["sql"][1], default=str)
    for secret in SECRETS:
        assert secret not in text and secret not in evidence
    assert "424242" in text and "424242" in evidence


def test_what_gx_has_no_sql_for_runs_on_pandas(sensors: DatasetSpec, both: dict[str, Any]) -> None:
    suite = build_suite(sensors, "events")
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_match_strftime_format",
            "kwargs": {"column": "note", "strftime_format": "%Y"},
        }
    )
    suite["expectations"].append(
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "gone", "value_set": [1]}}
    )
    checks, gx_json = run_suite(both["path"], suite, suite_parameters(sensors, DAY), engine="sql")
    assert gx_json["pandas_parts"] == {
        "sensors.events:note": "pandas for expect_column_values_to_match_strftime_format"
    }
    by = {c.label: c for c in checks}
    fmt = by["expect_column_values_to_match_strftime_format(note)"]
    assert not fmt.success and fmt.details.startswith("20 unexpected (100.00%)")
    assert by["expect_column_values_to_be_in_set(gone)"].details.startswith("could not run:")
    # a part's results keep the suite's order (the SQL engine puts failed ones first)
    note_part = next(p for p in gx_json["results"] if p["suite_name"] == "sensors.events:note")
    assert [r["expectation_config"]["type"] for r in note_part["results"]] == [
        "expect_column_values_to_match_strftime_format"
    ]


def test_typed_labels_on_duckdb(sensors: DatasetSpec, tmp_path: Path) -> None:
    start, end = _bounds(sensors)
    table = pa.table(
        {
            "reading_id": [1, 2, 3, 4],
            "ts": [start, start - timedelta(days=3), end - timedelta(seconds=1), end + timedelta(hours=1)],
            "fault": ["OK", "FAULT", "ok", "OK"],
        },
        schema=arrow_schema(sensors, "labels"),
    )
    path = tmp_path / "labels.parquet"
    pq.write_table(table, path)
    suite, params = build_suite(sensors, "labels"), suite_parameters(sensors, DAY)
    sql, _ = run_suite(path, suite, params, engine="sql")
    pandas, _ = run_suite(table, suite, params)
    assert _same(sql) == _same(pandas)
    assert {(c.name, c.column) for c in sql if not c.success} == {
        ("expect_column_values_to_be_between", "ts"),
        ("expect_column_values_to_be_in_set", "fault"),
        ("expect_table_row_count_to_be_between", None),
    }


def test_the_ingest_validates_on_duckdb_and_quarantines(
    sensors: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _bad_table(sensors)
    store = Store((tmp_path / "store").as_uri())
    path = store.landing_dir("sensors", "events", DAY) + "/day.parquet"
    local = Path(store.uri(path).removeprefix("file://"))
    local.parent.mkdir(parents=True)
    pq.write_table(table, local)
    sensors = parse_spec({**sensors.model_dump(), "landing": {"format": "parquet", "pattern": "*.parquet"}})

    def quarantined(engine: str) -> dict[str, Any]:
        monkeypatch.setenv(ENGINE_ENV, engine)
        with pytest.raises(BatchRejected) as err:
            ingest_partition(store, sensors, "events", DAY, work_dir=tmp_path / "work")
        report = store.read_json(store.quarantine_dir("sensors", "events", DAY) + "/validation.json")
        assert report["gx_result"]["engine"] == engine
        assert set(report["stats"]["column_seconds"]) >= {"reading_id", "temp", "site"}
        return {"checks": [c for c in report["outcome"]["checks"] if c["source"] == "gx"], "err": err.value}

    sql, pandas = quarantined("sql"), quarantined("pandas")
    for c in pandas["checks"]:  # an int64 column with nulls is float64 in pandas (see above)
        c["details"] = c["details"].replace("424242.0", "424242")
    assert sql["checks"] == pandas["checks"]
    assert "expect_column_values_to_be_unique(reading_id)" in str(sql["err"])
    assert list((tmp_path / "work").iterdir()) == []  # nothing of DuckDB's left behind


def test_a_process_that_validated_on_duckdb_exits_quietly(both: dict[str, Any], sensors: DatasetSpec) -> None:
    """DuckDB's bindings report the objects of theirs still alive at exit on stderr (dozens of
    lines): the ingest's validation leaves none. On a machine in another zone (TZ) the instants
    in the details are still UTC, as the pandas engine shows them."""
    code = (
        "import sys; from pathlib import Path; from nightshift.spec import parse_spec; "
        "from nightshift.validate import build_suite, run_suite, suite_parameters; import json, datetime; "
        "spec = parse_spec(json.loads(sys.argv[2])); "
        "checks, out = run_suite(Path(sys.argv[1]), build_suite(spec, 'events'), "
        "suite_parameters(spec, datetime.date(2026, 1, 1))); print(out['engine'], len(checks)); "
        "print([c.details for c in checks if c.label == 'expect_column_values_to_be_between(ts)'][0])"
    )
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", ENGINE_ENV: "sql", "TZ": "America/Chicago"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(both["path"]), sensors.model_dump_json()],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    head, details = proc.stdout.splitlines()
    assert head.split() == ["sql", str(len(both["sql"][0]))]
    assert _bounds(sensors)[1].isoformat() in details and "-06:00" not in details, details
    assert "nanobind" not in proc.stderr and "leaked" not in proc.stderr, proc.stderr[-2000:]
