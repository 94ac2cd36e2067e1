"""Human review of borderline verdicts: the band, the evidence shown, the answer recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from nightshift.airflow.xcom import from_xcom
from nightshift.evaluate import Evaluation, gate, needs_review, score_stats
from nightshift.review import answer, evidence_markdown
from nightshift.spec import DatasetSpec, Gate, Review, SpecError, parse_spec
from nightshift.verdict import GateResult

RULES = Gate(
    min_metrics={"roc_auc": 0.80},
    max_regression=0.005,
    slice_min_metric=0.65,
    review=Review(band=(-0.01, 0.005)),
)


def _ev(name: str, auc: float, slice_auc: float = 0.85, version: str | None = None) -> Evaluation:
    m = {"rows": 5000.0, "positives": 300.0, "roc_auc": auc, "average_precision": 0.3, "log_loss": 0.2,
         "brier": 0.05}  # fmt: skip
    slices = {
        "channel": {"web": {"rows": 900.0, "positives": 40.0, "roc_auc": slice_auc, "average_precision": 0.3}}
    }
    return Evaluation(name, m, slices, [], version, score_stats(np.linspace(0.01, 0.9, 5000)))


def _verdict(challenger: float, champion: float | None, **kw: Any) -> Any:
    champ = _ev("champion", champion, version="3") if champion is not None else None
    return gate(kw.pop("rules", RULES), _ev("challenger", challenger, **kw), champ, _ev("baseline", 0.7))


@pytest.mark.parametrize(
    ("challenger", "promote"),
    [(0.85, True), (0.855, True), (0.846, True), (0.843, False), (0.840, False)],
)
def test_a_delta_inside_the_band_asks_a_human_whatever_the_gate_says(
    challenger: float, promote: bool
) -> None:
    v = _verdict(challenger, 0.85)
    assert v.promote is promote
    why = needs_review(RULES, v)
    assert why is not None and "review band [-0.0100, +0.0050]" in why
    assert f"the gate would {'promote' if promote else 'reject'}" in why


@pytest.mark.parametrize("challenger", [0.8555, 0.839, 0.95, 0.70])
def test_outside_the_band_the_gate_decides_alone(challenger: float) -> None:
    assert needs_review(RULES, _verdict(challenger, 0.85)) is None


def test_the_first_model_and_a_spec_without_a_band_are_never_reviewed() -> None:
    assert needs_review(RULES, _verdict(0.85, None)) is None
    plain = RULES.model_copy(update={"review": None})
    assert needs_review(plain, _verdict(0.85, 0.85, rules=plain)) is None


def test_a_hard_failure_inside_the_band_is_not_a_judgement_call() -> None:
    # the slice floor (0.65) fails: no human can wave that through
    v = _verdict(0.85, 0.85, slice_auc=0.60)
    assert not v.promote and "slice_min:channel=web" in [c.name for c in v.failed]
    assert needs_review(RULES, v) is None


def test_a_slice_regression_inside_the_band_is_reviewed() -> None:
    champ = _ev("champion", 0.85, slice_auc=0.90, version="3")
    v = gate(RULES, _ev("challenger", 0.85, slice_auc=0.85), champ, _ev("baseline", 0.7))
    assert [c.name for c in v.failed] == ["slice:channel=web"]
    assert needs_review(RULES, v) is not None


def test_the_band_is_validated(spec: DatasetSpec) -> None:
    data = spec.model_dump()
    data["gate"]["review"] = {"band": [0.01, -0.01]}
    with pytest.raises(SpecError, match=r"gate.review.*low <= high"):
        parse_spec(data, "x.yaml")
    data["gate"]["review"] = {"band": [-0.01, 0.01], "on_timeout": "approve"}
    with pytest.raises(SpecError, match="on_timeout"):
        parse_spec(data, "x.yaml")


def test_the_evidence_names_the_numbers_slices_drift_and_links(spec: DatasetSpec) -> None:
    # as the review reads it: the gate's XCom
    verdict = from_xcom(
        GateResult,
        {
            "run_id": "abc",
            "challenger_run_id": "abc",
            "version": "4",
            "champion": "3",
            "promote": False,
            "reason": "rejected: champion: roc_auc 0.8430 vs champion v3 0.8500 "
            "(delta -0.0070, allowed -0.005)",
            "review": "roc_auc delta -0.0070 vs the champion is within the review band",
            "metrics": {"roc_auc": 0.843, "average_precision": 0.31},
            "champion_metrics": {"roc_auc": 0.85, "average_precision": 0.30},
            "deltas": {"roc_auc": -0.007, "average_precision": 0.01},
            "slices": [
                {
                    "slice": "channel=web",
                    "rows": 900,
                    "positives": 40,
                    "challenger": 0.84,
                    "champion": 0.86,
                    "delta": -0.02,
                }
            ],
            "checks": [{"name": "champion", "passed": False, "detail": "roc_auc 0.8430 vs champion"}],
            "links": {"MLflow run": "http://mlflow/#/runs/abc"},
        },
    )
    history = [
        {"dt": "2026-03-01", "version": "3", "drift_share": 0.05, "drifting": False, "roc_auc": 0.86},
        {"dt": "2026-03-02", "version": "3", "drift_share": 0.41, "drifting": True, "roc_auc": None},
        {"dt": "2026-03-02", "version": "2", "drift_share": 0.9, "drifting": True, "roc_auc": 0.5},
    ]
    md = evidence_markdown(spec, verdict, history, "http://airflow/nightshift/health/payments")
    assert "payments v4" in md and "champion v3" in md and "recommends **reject**" in md
    assert "| roc_auc | 0.8430 | 0.8500 | -0.0070 |" in md
    assert "| channel=web | 900 | 40 | 0.8400 | 0.8600 | -0.0200 |" in md
    assert "| 2026-03-02 | v3 | 0.4100 | yes | - |" in md
    assert "| 2026-03-02 | v2 | 0.9000 | yes | 0.5000 |" in md
    assert md.index("| 2026-03-01 |") < md.index("| 2026-03-02 | v2")  # oldest first
    assert "`champion`: roc_auc 0.8430 vs champion" in md
    assert "[MLflow run](http://mlflow/#/runs/abc)" in md
    assert "[Model health](http://airflow/nightshift/health/payments)" in md


def test_an_answer_becomes_the_review_the_audit_trail_keeps() -> None:
    at = datetime(2026, 3, 5, 10, tzinfo=UTC)
    approved = answer(
        {
            "chosen_options": ["Approve"],
            "params_input": {"comment": " fine on web "},
            "responded_at": at,
            "responded_by_user": {"id": "alice", "name": "alice"},
        }
    )
    assert approved == {
        "decision": "approve",
        "by": "alice",
        "at": at.isoformat(),
        "comment": "fine on web",
        "timed_out": False,
    }
    rejected = answer({"chosen_options": ["Reject"], "responded_by_user": {"id": "7", "name": "bob"}})
    assert rejected["decision"] == "reject" and rejected["by"] == "bob" and rejected["comment"] is None
    timeout = answer({"chosen_options": ["Reject"], "responded_by_user": None, "timedout": True})
    assert timeout["by"] == "timeout" and timeout["timed_out"]


def test_mlflow_links_only_when_mlflow_has_a_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    from nightshift.registry import ui_links

    monkeypatch.delenv("NIGHTSHIFT_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/mlflow.db")
    assert ui_links("payments", run_id="abc", version="3") == {}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000/")
    assert ui_links("payments", run_id="abc", version="3") == {
        "MLflow run": "http://mlflow:5000/#/runs/abc",
        "Model version": "http://mlflow:5000/#/models/nightshift-payments/versions/3",
    }
    monkeypatch.setenv("NIGHTSHIFT_MLFLOW_UI_URL", "http://127.0.0.1:5000")
    assert ui_links("payments", version="3") == {
        "Model version": "http://127.0.0.1:5000/#/models/nightshift-payments/versions/3"
    }


def test_store_links_point_at_the_plugin_and_only_inside_the_store(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightshift.airflow.links import store_url
    from nightshift.storage import Store

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org/")
    store = Store(tmp_path.as_uri())
    report = store.uri(store.path("reports", "payments", "drift", "dt=2026-03-01", "v1-drift.html"))
    assert store_url(store, report) == (
        "https://airflow.example.org/nightshift/store/reports/payments/drift/dt=2026-03-01/v1-drift.html"
    )
    assert store_url(store, "file:///etc/passwd") is None and store_url(store, None) is None
