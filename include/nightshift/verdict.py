"""The gate's verdict as the steps hand it on: gate → serving check → review → promote.

:func:`nightshift.steps.gate.gate_step` makes one; :func:`nightshift.servecheck.apply` adds the
serving check's result; a human review reads it (:func:`nightshift.review.evidence_markdown`);
:func:`nightshift.steps.gate.decide_step` records what it decided. Under Airflow it travels as
an XCom (:mod:`nightshift.airflow.xcom`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateCheck:
    """One rule of the gate (or the serving check) and how the candidate fared."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class SliceRow:
    """A slice value's rows and the gate metric of challenger and champion on it."""

    slice: str
    rows: int
    positives: int
    challenger: float | None
    champion: float | None
    delta: float | None = None


@dataclass(frozen=True)
class GateResult:
    """The verdict on a registered candidate (``version`` of ``run_id``; the XGBoost
    challenger's run is ``challenger_run_id``, another when the logistic baseline won).

    ``champion`` is the version it was compared with (``None``: the first model); a promotion
    is refused when the champion moved since. ``metrics`` are the winner's on the holdout,
    ``challenger_metrics`` the XGBoost challenger's own. ``review``: why a human should look
    (a borderline verdict), else ``None``. ``serving``: the serving check's record (the audit
    trail keeps it as is), ``None`` before the check."""

    run_id: str
    challenger_run_id: str
    version: str
    promote: bool
    reason: str
    champion: str | None
    model_kind: str = "xgboost"
    first_model: bool = False
    competition: dict[str, Any] | None = None
    hints: tuple[str, ...] = ()
    deltas: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    failed_checks: tuple[str, ...] = ()
    checks: tuple[GateCheck, ...] = ()
    slices: tuple[SliceRow, ...] = ()
    review: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    serving: dict[str, Any] | None = None

    @property
    def failed(self) -> list[GateCheck]:
        """The checks that failed, in order."""
        return [c for c in self.checks if not c.passed]
