"""A strange but true day through the real ingest DAG (dag.test()): a null spike on a column whose
checks are ``severity: warning`` publishes, with the curated Asset event, the warnings in the
report and the Data Docs, and one warning notification; the same day on a critical column is
still quarantined. The column is pii: its warnings say how many values, never which."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from nightshift.demo.datagen import Scenario, write_day
from nightshift.storage import Store

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 5, 4)
ROWS = 400
SECRET = "918273645"  # a customer_age out of [18, 100]: pii, must appear in no evidence


def _storm_day(store: Store, spec: Any) -> int:
    """Empty customer_age on two rows in three (its null budget is 5 %) and one value out of
    range; returns how many are empty."""
    path = store.landing_dir(spec.name, "events", DAY) + "/events.csv"
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    for i, row in enumerate(rows):
        if i % 3:
            row["customer_age"] = ""
    rows[0]["customer_age"] = SECRET
    emptied = sum(row["customer_age"] == "" for row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    store.write_bytes_atomic(path, out.getvalue().encode("utf-8"))
    return emptied


def _curated_events() -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        q = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "nightshift.payments.curated")
            .order_by(AssetEvent.id)
        )
        return [dict(e or {}) for e in s.scalars(q)]


def test_a_warning_day_publishes_and_notifies_once_and_a_critical_one_is_quarantined(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_day: Any,
    webhook_sink: tuple[str, list[dict[str, Any]]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import pyarrow.parquet as pq

    from nightshift.spec import load_spec

    # the demo spec, its customer_age checks (pii) made warnings; the suite file is the repo's
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    text = (ROOT / "datasets" / "payments.yaml").read_text(encoding="utf-8")
    old = "max_null_fraction: 0.05, pii: true}"
    assert text.count(old) == 1
    (datasets / "payments.yaml").write_text(
        text.replace(old, old[:-1] + ", severity: warning}"), encoding="utf-8"
    )
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(datasets))
    spec = load_spec(datasets / "payments.yaml")
    assert spec.features.numeric[1].severity == "warning"

    url, received = webhook_sink
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", url)
    store = Store((tmp_path / "store").as_uri())
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", store.url)
    write_day(store, spec, DAY, 0, ROWS, 7, Scenario())
    emptied = _storm_day(store, spec)
    before = len(_curated_events())
    capfd.readouterr()

    states = run_day(DAY)

    assert states["ingest_events"] == "success", states
    log = "".join(capfd.readouterr()) + caplog.text
    curated = store.published_file(spec.name, "events", DAY)
    assert pq.read_metadata(curated).num_rows == ROWS
    assert not store.exists(store.quarantine_dir(spec.name, "events", DAY))
    nulls = f"expect_column_values_to_not_be_null(customer_age): {emptied} unexpected ("
    between = "expect_column_values_to_be_between(customer_age): 1 unexpected ("
    # the curated Asset event, naming the warnings
    events = _curated_events()
    assert len(events) == before + 1
    assert events[-1]["warnings"] == [
        "expect_column_values_to_not_be_null(customer_age)",
        "expect_column_values_to_be_between(customer_age)",
    ]
    # the report lists them with their counts
    reports = store.reports_dir(spec.name, "validation", DAY)
    report = store.read_json(reports + "/events.json")
    assert report["outcome"]["success"] is True
    assert report["outcome"]["warnings"] == events[-1]["warnings"]
    warned = {c["name"]: c for c in report["outcome"]["checks"] if not c["success"]}
    assert {c["severity"] for c in warned.values()} == {"warning"} and len(warned) == 2
    # the Data Docs of the published batch show them as warnings
    docs = Path(reports) / "data_docs_events"
    html = "".join(p.read_text(encoding="utf-8") for p in docs.rglob("*.html"))
    assert "payments.events:customer_age:warning" in html
    # one notification, at severity warning, with its links
    notes = [n for n in received if n["task_id"] == "ingest_events"]
    assert len(notes) == 1, received
    note = notes[0]
    assert (note["event"], note["severity"], note["dataset"]) == ("validation_warning", "warning", "payments")
    assert note["title"] == f"events of {DAY} published with 2 warning(s)"
    assert nulls in note["message"] and between in note["message"]
    assert set(note["links"]) == {"task", "report", "Data Docs", "model health"}
    assert note["links"]["task"].endswith("/tasks/ingest_events")
    assert note["links"]["report"].endswith(
        f"/nightshift/store/reports/payments/validation/dt={DAY}/events.json"
    )
    assert note["links"]["Data Docs"].endswith(f"/validation/dt={DAY}/data_docs_events/index.html")
    assert note["links"]["model health"].endswith("/nightshift/health/payments")
    assert "published with 2 warning(s)" in log and nulls in log
    # pii: counts, never the values, anywhere
    for where, content in {
        "report": json.dumps(report),
        "docs": html,
        "note": repr(note),
        "log": log,
    }.items():
        assert SECRET not in content, f"pii value in {where}"

    # the same day, with customer_age critical again (the demo spec): quarantined
    monkeypatch.delenv("NIGHTSHIFT_DATASETS_DIR")
    published = Path(curated).read_bytes()
    received.clear()
    states = run_day(DAY)
    assert states["ingest_events"] == "failed", states
    assert Path(curated).read_bytes() == published
    assert len(_curated_events()) == before + 1
    outcome = store.read_json(store.quarantine_dir(spec.name, "events", DAY) + "/validation.json")["outcome"]
    assert outcome["success"] is False and outcome["warnings"] == []
    assert {c["name"] for c in outcome["checks"] if not c["success"]} == set(warned)
    assert [n["event"] for n in received if n["task_id"] == "ingest_events"] == ["quarantine"]
