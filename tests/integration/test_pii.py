"""Features marked ``pii: true``: a quarantined batch's evidence says how many values failed,
never which, through the real ingest DAG (quarantine, reports, Data Docs, notification, logs)."""

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
DAY = date(2026, 4, 2)
ROWS = 300

# raw values of pii columns, each bad in another way; none may appear in any evidence
UNCASTABLE = "SECRET-4111111111111111"  # customer_age: not an integer
OUT_OF_RANGE = "918273645"  # customer_age: outside [18, 100]
NOT_IN_SET = "SECRETLAND-7734"  # country: not an allowed value
SECRETS = (UNCASTABLE, OUT_OF_RANGE, NOT_IN_SET)
# a bad value of a column that is not pii: named as an example, which shows the search works
CONTROL = "VISIBLE-CONTROL-5150"


def _corrupt(store: Store, spec: Any) -> None:
    path = store.landing_dir(spec.name, "events", DAY) + "/events.csv"
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    rows[3]["customer_age"] = UNCASTABLE
    rows[5]["customer_age"] = OUT_OF_RANGE
    rows[8]["country"] = NOT_IN_SET
    rows[13]["merchant_category"] = CONTROL
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    store.write_bytes_atomic(path, out.getvalue().encode("utf-8"))


def test_pii_values_never_leave_the_ingest(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_day: Any,
    webhook_sink: tuple[str, list[dict[str, Any]]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    from nightshift.spec import load_spec
    from nightshift.validate import ValidationOutcome

    # the demo spec (customer_age is pii there) with one categorical pii column more
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    text = (ROOT / "datasets" / "payments.yaml").read_text(encoding="utf-8")
    old = "- {name: country, values: ["
    assert old in text
    text = text.replace(old, "- {name: country, pii: true, values: [")
    (datasets / "payments.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(datasets))
    spec = load_spec(datasets / "payments.yaml")
    assert spec.pii_columns == {"customer_age", "country"}

    url, received = webhook_sink
    monkeypatch.setenv("NIGHTSHIFT_NOTIFY_WEBHOOK", url)
    store = Store((tmp_path / "store").as_uri())
    monkeypatch.setenv("NIGHTSHIFT_STORE_URL", store.url)
    write_day(store, spec, DAY, 0, ROWS, 7, Scenario())
    _corrupt(store, spec)
    capfd.readouterr()

    states = run_day(DAY)

    assert states["ingest_events"] == "failed", states
    out = capfd.readouterr()
    qdir = Path(store.quarantine_dir(spec.name, "events", DAY))
    evidence = {
        str(p.relative_to(qdir)): p.read_text(encoding="utf-8", errors="replace")
        for p in qdir.rglob("*")
        if p.is_file() and "files" not in p.relative_to(qdir).parts
    }
    assert "validation.json" in evidence and "data_docs/index.html" in evidence, sorted(evidence)
    assert sum(name.endswith(".html") for name in evidence) > 1  # the validation page too
    report = Path(store.reports_dir(spec.name, "validation", DAY)) / "events.json"
    evidence["reports/events.json"] = report.read_text(encoding="utf-8")
    notes = [n for n in received if n["task_id"] == "ingest_events"]
    assert len(notes) == 1, received
    evidence["notification"] = repr(notes[0])
    evidence["task log"] = out.out + out.err

    for where, content in evidence.items():
        for secret in SECRETS:
            assert secret not in content, f"pii value {secret!r} in {where}"
    # counts, not values: every failed pii check is named, with how many values failed
    said = {where: evidence[where] for where in ("notification", "task log")}
    for where in ("validation.json", "reports/events.json"):
        said[where] = ValidationOutcome.from_dict(json.loads(evidence[where])["outcome"]).reason(limit=20)
    for where, content in said.items():
        assert "values_castable(customer_age): 1 value(s) not parseable as int64" in content, where
        assert "values withheld: pii column" in content, where
        assert "expect_column_values_to_be_between(customer_age): 1 unexpected (" in content, where
        assert "expect_column_values_to_be_in_set(country): 1 unexpected (" in content, where
        assert CONTROL in content, f"the control value is missing from {where}: the search sees nothing"
    assert CONTROL in "".join(v for k, v in evidence.items() if k.startswith("data_docs/"))
    # the copy of the rejected files is the data itself (never served by the UI plugin)
    kept = "".join(p.read_text(encoding="utf-8") for p in (qdir / "files").iterdir())
    assert UNCASTABLE in kept
