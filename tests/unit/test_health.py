"""Model health: delivery metrics from the audit trail and incidents, the collected page data
from a store, and the rendered page (pure: no Airflow, no MLflow)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nightshift.health import Health, Incident, collect, delivery_metrics
from nightshift.healthpage import render, render_index, safe_href
from nightshift.registry import AuditEvent, write_audit
from nightshift.retrain import RetrainDecision, write_record
from nightshift.spec import DatasetSpec
from nightshift.storage import Store

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _t(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def _event(action: str, version: str, hours: float, previous: str | None = None, **kw: Any) -> dict[str, Any]:
    e = AuditEvent(action, "payments", version, previous, kw.pop("actor", "nightshift-gate"), "t", "r", **kw)
    e.time = _t(hours)
    return e.to_dict()


AUDIT = [
    _event("promote", "1", 0),
    _event("reject", "2", 24),  # incident 1 opens at 24 h ...
    _event("reject", "3", 30),  # ... still open
    _event("promote", "4", 36, "1"),  # recovered after 12 h
    _event("rollback", "1", 48, "4"),  # incident 2 opens at 48 h
    _event("promote", "5", 54, "1"),  # recovered after 6 h
]


def test_delivery_metrics_follow_their_definitions() -> None:
    landings = {
        ("events", "2026-04-30"): _t(-2),
        ("labels", "2026-05-01"): _t(-1),
        ("events", "2026-05-05"): _t(80),
    }
    windows = {"1": (date(2026, 4, 25), date(2026, 4, 30)), "5": (date(2026, 4, 25), date(2026, 4, 30))}
    failed = [Incident(_t(50), "failed", "nightshift_retrain.payments run x failed")]
    d = delivery_metrics(AUDIT, failed, windows, landings, label_delay=1, now=T0 + timedelta(days=7))
    assert (d["promotions"], d["rejections"], d["rollbacks"], d["deployments"]) == (3, 2, 1, 4)
    assert d["span_days"] == 7 and d["deployment_frequency_per_week"] == 4.0
    # labels of the window's last day landed a day later (delay 1): the newest landing, 1 h before
    each = {x["version"]: x["hours"] for x in d["lead_time_hours"]["each"]}
    assert each == {"1": 1.0, "5": 55.0}
    assert d["lead_time_hours"]["median"] == 28.0
    assert [r["hours"] for r in d["recoveries"]] == [12.0, 6.0]  # the failed run joined the open streak
    assert d["mttr_hours"] == 9.0 and d["open_incident"] is None
    assert d["change_failure_rate"] == round(3 / 5, 4) and (d["change_failures"], d["attempts"]) == (3, 5)


def test_an_incident_without_a_promotion_since_stays_open() -> None:
    d = delivery_metrics(AUDIT[:3], [], {}, {}, 3, T0 + timedelta(days=2))
    assert d["open_incident"] == {"since": _t(24), "what": "v2 rejected: r"}
    assert d["mttr_hours"] is None and d["recoveries"] == []


def test_nothing_to_measure_is_none_not_zero() -> None:
    d = delivery_metrics([], [], {}, {}, 3, T0)
    assert d["deployment_frequency_per_week"] is None and d["change_failure_rate"] is None
    assert d["lead_time_hours"]["median"] is None and d["mttr_hours"] is None


def _validation(store: Store, day: str, kind: str, valid: bool, at: str) -> None:
    checks = [] if valid else [{"name": "expect_column_values_to_not_be_null", "column": "customer_age",
                                "success": False, "details": "62% null", "severity": "critical"}]  # fmt: skip
    path = store.path("reports", "payments", "validation", f"dt={day}", f"{kind}.json")
    docs = store.uri(store.path("reports", "x", "index.html"))
    outcome = {"dataset": "payments", "kind": kind, "dt": day, "rows": 4000, "checks": checks, "files": [],
               "report_uri": store.uri(path), "data_docs_uri": docs}  # fmt: skip
    store.write_json_atomic(path, {"outcome": outcome, "stats": {}, "validated_at": at})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path.as_uri())
    for i in range(5):
        day = (date(2026, 4, 26) + timedelta(days=i)).isoformat()
        _validation(store, day, "events", valid=i != 2, at=_t(-100 + i))
    for e in AUDIT:
        write_audit(store, AuditEvent(**e))
    write_record(
        store,
        RetrainDecision(
            "payments",
            "nightshift_retrain.payments/r1",
            "retrain",
            "drift alert(s) on v1: training",
            _t(35),
            "2026-04-30",
            outcome={"status": "promoted", "version": "4"},
        ),
    )
    return store


def test_collect_reads_the_store_without_a_registry(store: Store, spec: DatasetSpec) -> None:
    h = collect(store, spec, client=None, failed_runs=[], now=T0 + timedelta(days=7))
    assert h.champion is not None and h.champion["version"] == "5" and h.champion["since"] == _t(54)
    assert [e["action"] for e in h.timeline] == [
        "promote",
        "rollback",
        "promote",
        "reject",
        "reject",
        "promote",
    ]
    assert [d["dt"] for d in h.days] == [f"2026-04-{d}" for d in range(26, 31)]
    assert [d["events"]["valid"] for d in h.days] == [True, True, False, True, True]
    assert "customer_age" in h.days[2]["events"]["reason"]
    assert h.retrains[0]["status"] == "promoted" and h.retrains[0]["version"] == "4"
    assert h.delivery["change_failure_rate"] == 0.6 and h.errors == []
    assert {i["kind"] for i in h.incidents} == {"rejected", "rolled_back"}
    assert Health(**h.__dict__).to_dict()["dataset"] == "payments"


def test_the_page_shows_the_numbers_tables_and_plots(store: Store, spec: DatasetSpec) -> None:
    h = collect(store, spec, now=T0 + timedelta(days=7))
    h.days[0].update(drift_share=0.42, drifting=True, roc_auc=0.812, scored_by="1",
                     drift_report="file:///r/drift.html")  # fmt: skip
    page = render(
        h,
        spec,
        link=lambda uri: f"/nightshift/store/{uri.rsplit('/', 1)[-1]}" if uri else None,
        actions={"Roll back": "/dags/nightshift_rollback.payments"},
    )
    assert page.startswith("<!doctype html>") and "Model health: payments" in page
    for table in ("timeline", "days", "retrains", "recoveries", "incidents"):
        assert f'id="{table}"' in page
    assert re.search(r'data-tile="change-failure rate".*?<b>60%</b>', page)
    assert re.search(r'data-tile="time to recover".*?<b>9.00 h</b>', page)
    assert re.search(r'data-tile="deployment frequency".*?<b>4.00/week</b>', page)
    assert "QUARANTINED" in page and "0.42*" in page and "0.812" in page
    assert 'href="/nightshift/store/drift.html"' in page
    assert 'href="/dags/nightshift_rollback.payments" target="_top"' in page
    assert re.search(r'<img id="plot-live" [^>]*src="data:image/png;base64,iVBOR', page)


def test_the_page_escapes_what_it_shows(store: Store, spec: DatasetSpec) -> None:
    h = collect(store, spec, now=T0 + timedelta(days=7))
    h.timeline[0]["reason"] = "<script>alert(1)</script>"
    page = render(h, spec)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


XSS = "<img src=x onerror=alert(1)>"
ATTR = 'x" onmouseover="alert(1)'


def test_every_value_on_the_page_comes_back_inert(store: Store, spec: DatasetSpec) -> None:
    h = collect(store, spec, now=T0 + timedelta(days=7))
    h.dataset = XSS  # a dataset name, the operator's name and reason, a review, an error ...
    h.timeline[0].update(
        actor=XSS,
        who=f"{XSS} on behalf of {ATTR}",
        reason="<script>alert(2)</script>",
        review={"decision": "ok", "by": ATTR},
    )
    h.retrains[0].update(actor=XSS, who=XSS, reason=ATTR)
    h.errors.append(f"MLflow at {XSS} unreachable")
    h.days[2]["events"]["reason"] = XSS
    h.versions = {
        "1": {"version": "1", "created": _t(0), "run_id": XSS, "window": XSS, "device": ATTR,
              "holdout": {"roc_auc": 0.8, "average_precision": 0.5}},
    }  # fmt: skip
    evil = "javascript:alert(3)"
    page = render(
        h,
        spec.model_copy(update={"description": XSS}),
        link=lambda uri: evil if uri and "validation" in uri else "data:text/html,<script>alert(4)</script>",
        mlflow=lambda run_id, version: {"MLflow run": evil, "Model version": f"//evil.example/{version}"},
        actions={
            "Roll back": " javascript:alert(5)",
            ATTR: 'x"onmouseover="alert(1)',
            "JSON": "JaVaScRiPt:alert(6)",
        },
        datasets={XSS: "java\tscript:alert(7)", "b": "https://airflow.example/nightshift/health/b"},
    )
    assert "<script" not in page and "<img src=x" not in page and 'onmouseover="' not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert re.search(r"x(&#34;|&quot;) onmouseover=", page)  # attribute context: the quote is escaped
    # no address that runs script, carries a page or leaves for a host-less "//" becomes a link
    assert re.findall(r'href="([^"]*)"', page) == [
        "https://airflow.example/nightshift/health/b",
        "x&#34;onmouseover=&#34;alert(1)",  # relative, its quotes escaped: one attribute still
    ]
    assert "rows report Data Docs" in page  # the labels stay, as text
    assert "&lt;img src=x onerror=alert(1)&gt; on behalf of x" in page  # who acted, for whom


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://mlflow.example/#/runs/abc", True),
        ("http://127.0.0.1:8080/dags/x", True),
        ("../api/health/payments", True),
        ("health/payments", True),
        ("/nightshift/store/reports/payments/x.html", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox(1)", False),
        ("//evil.example/x", False),
        ("\\\\evil.example/x", False),
        ("https:alert(1)", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_and_relative_addresses_become_links(url: str | None, ok: bool) -> None:
    assert (safe_href(url) == url) if ok else safe_href(url) is None


def test_the_index_escapes_dataset_names_and_quotes_nothing_unsafe() -> None:
    page = render_index({XSS: "health/%3Cimg%3E", "payments": "javascript:alert(1)"})
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="health/%3Cimg%3E"' in page and "javascript:" not in page
    assert re.search(r"<li>payments</li>", page)  # an unsafe address: the name as text
    assert "no datasets you may read" in render_index({})
    assert "<script" not in render_index({}, "<script>alert(1)</script>")


def test_an_unreachable_registry_is_named_and_the_audit_trail_still_shows(
    store: Store, spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from nightshift import registry

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    h = collect(store, spec, registry.configure(), now=T0 + timedelta(days=7))
    assert len(h.errors) == 1 and dead in h.errors[0] and "unreachable" in h.errors[0]
    assert h.champion is not None and (h.champion["version"], h.champion["previous"]) == ("5", "1")
    assert h.versions == {} and h.delivery["attempts"] == 5
