"""Monitoring: drift of a scored day against the champion's reference sample (Evidently),
delayed-label performance of the version that scored a day, the history table, and the alert
decision.

Pure functions on Arrow tables and plain records; :func:`nightshift.steps.monitor.monitor_step`
reads the store and MLflow and calls them. Sample-size rule (see ``spec.Monitoring``): the
reference is a seeded sample of at most ``reference_rows`` rows of the model's training window,
stored with the model; each day is sampled down to ``sample_rows``; per-column drift uses
distances with one explicit threshold, so the verdict does not change method at 1,000 rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from nightshift.errors import DataError
from nightshift.spec import DatasetSpec

if TYPE_CHECKING:
    from nightshift.storage import Store

SCORE = "score"
REFERENCE_ARTIFACT = "reference/reference.parquet"
IMPORTANCE_ARTIFACT = "importance.json"

# the history table: one row per (day, model version)
HISTORY_SCHEMA = pa.schema(
    [
        ("dt", pa.string()),
        ("version", pa.string()),
        ("rows", pa.int64()),
        ("sample_rows", pa.int64()),
        ("drift_share", pa.float64()),
        ("drifted_features", pa.int64()),
        ("prediction_drift", pa.float64()),
        ("prediction_drifted", pa.bool_()),
        ("missing_share", pa.float64()),
        ("drifting", pa.bool_()),
        ("labelled_rows", pa.int64()),
        ("positives", pa.int64()),
        ("roc_auc", pa.float64()),
        ("average_precision", pa.float64()),
        ("log_loss", pa.float64()),
        ("ece", pa.float64()),
        ("drift_report", pa.string()),
        ("performance_report", pa.string()),
    ]
)


class MonitoringError(DataError, ValueError):
    """A day or a model that cannot be monitored; the message names which and why."""


# ---- samples -------------------------------------------------------------------------------


def sample(table: pa.Table, n: int, seed: int) -> pa.Table:
    """At most ``n`` rows of ``table``, drawn without replacement, kept in their order."""
    if table.num_rows <= n:
        return table
    idx = np.sort(np.random.default_rng(seed).choice(table.num_rows, size=n, replace=False))
    return table.take(pa.array(idx))


def feature_weights(importance: list[dict[str, Any]] | None, spec: DatasetSpec) -> dict[str, float]:
    """Each feature's weight in the drift share: its share of the model's mean |contribution|
    (``alerts.weighting: importance``) or 1 / features (``uniform``, or no importance known)."""
    names = spec.feature_names
    if spec.alerts.weighting == "uniform" or not importance:
        return {n: 1.0 / len(names) for n in names}
    raw = {r["feature"]: max(float(r.get("mean_abs_contribution", 0.0)), 0.0) for r in importance}
    total = sum(raw.get(n, 0.0) for n in names)
    if total <= 0:
        return {n: 1.0 / len(names) for n in names}
    return {n: raw.get(n, 0.0) / total for n in names}


# ---- drift ---------------------------------------------------------------------------------


@dataclass
class DriftResult:
    """One day's drift and data-quality summary against one model version's reference."""

    dt: str
    version: str
    rows: int
    sample_rows: int
    reference_rows: int
    enough_rows: bool
    drift_share: float  # importance-weighted share of drifted features (NaN: too few rows)
    drifted_features: int
    prediction_drift: float
    prediction_drifted: bool
    missing_share: float  # mean share of missing values over the features
    drifting: bool  # counts as a drifting day for the alert policy
    columns: list[dict[str, Any]] = field(default_factory=list)  # name, value, drifted, weight, missing
    method: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftResult:
        return cls(**d)

    def top(self, n: int = 3) -> list[str]:
        """The drifted features that weigh most."""
        cols = sorted((c for c in self.columns if c["drifted"]), key=lambda c: -c["weight"])
        return [c["name"] for c in cols[:n]]


def _frame(table: pa.Table, spec: DatasetSpec) -> Any:
    import pandas as pd

    numeric = [f.name for f in spec.features.numeric] + [SCORE]
    data = {}
    for name in table.column_names:
        col = table.column(name)
        if name in numeric:
            data[name] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            data[name] = pd.Series(col.cast(pa.string()).to_pylist(), dtype=object)
    return pd.DataFrame(data)


# long: one Evidently report and its per-column results turned into one DriftResult
def drift(
    reference: pa.Table,
    current: pa.Table,
    spec: DatasetSpec,
    weights: dict[str, float],
    dt: date,
    version: str,
) -> tuple[DriftResult, Any]:
    """Evidently data drift (features), prediction drift (``score``) and data summary of the
    day ``current`` (features + score) against ``reference``. Returns the summary and the
    Evidently snapshot (for its HTML and JSON)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DuplicatedRowCount, MissingValueCount, RowCount, ValueDrift
    from evidently.presets import DataDriftPreset

    m, a = spec.monitoring, spec.alerts
    absent = [c for c in [*spec.feature_names, SCORE] if c not in reference.column_names]
    if absent:
        raise MonitoringError(f"the reference of v{version} lacks column(s) {', '.join(absent)}")
    rows = current.num_rows
    cur = sample(current.select([*spec.feature_names, SCORE]), m.sample_rows, spec.seed + dt.toordinal())
    ref = reference.select([*spec.feature_names, SCORE])
    definition = DataDefinition(
        numerical_columns=[f.name for f in spec.features.numeric] + [SCORE],
        categorical_columns=[f.name for f in spec.features.categorical],
    )
    report = Report(
        [
            DataDriftPreset(
                columns=spec.feature_names,
                num_method=m.num_method,
                cat_method=m.cat_method,
                threshold=m.threshold,
            ),
            ValueDrift(column=SCORE, method=m.num_method, threshold=m.prediction_threshold),
            # data quality: Evidently's DataSummaryPreset costs ~3 s a day (plots), these ~0.2 s
            RowCount(),
            DuplicatedRowCount(),
            *[MissingValueCount(column=c) for c in spec.feature_names],
        ]
    )
    snapshot = report.run(
        Dataset.from_pandas(_frame(cur, spec), data_definition=definition),
        Dataset.from_pandas(_frame(ref, spec), data_definition=definition),
    )
    values: dict[str, float] = {}
    missing: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        kind = metric["config"].get("type", "")
        if kind.endswith(":ValueDrift"):
            values[metric["config"]["column"]] = float(metric["value"])
        elif kind.endswith(":MissingValueCount"):
            missing[metric["config"]["column"]] = float(metric["value"]["share"])
    missing_share = float(np.mean(list(missing.values()))) if missing else float("nan")
    enough = rows >= m.min_rows
    columns: list[dict[str, Any]] = [
        {
            "name": n,
            "value": values.get(n, float("nan")),
            "drifted": bool(values.get(n, 0.0) >= m.threshold),
            "weight": weights.get(n, 0.0),
            "missing_share": missing.get(n, float("nan")),
        }
        for n in spec.feature_names
    ]
    share = sum(float(c["weight"]) for c in columns if c["drifted"]) if enough else float("nan")
    pred = values.get(SCORE, float("nan"))
    pred_drifted = bool(enough and pred >= m.prediction_threshold)
    drifting = bool(enough and (share >= a.drift_share or (a.prediction_drift and pred_drifted)))
    result = DriftResult(
        dt=dt.isoformat(),
        version=str(version),
        rows=rows,
        sample_rows=cur.num_rows,
        reference_rows=ref.num_rows,
        enough_rows=enough,
        drift_share=float(share),
        drifted_features=sum(1 for c in columns if c["drifted"]),
        prediction_drift=pred,
        prediction_drifted=pred_drifted,
        missing_share=missing_share,
        drifting=drifting,
        columns=columns,
        method={
            "num": m.num_method,
            "cat": m.cat_method,
            "threshold": m.threshold,
            "prediction_threshold": m.prediction_threshold,
            "weighting": a.weighting,
        },
    )
    return result, snapshot


# ---- performance ---------------------------------------------------------------------------


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |predicted - observed| over quantile bins of the prediction."""
    from nightshift.evaluate import calibration

    cal = calibration(np.asarray(y, np.float64), np.asarray(p, np.float64), bins)
    total = sum(b["rows"] for b in cal)
    if not total:
        return float("nan")
    return float(sum(b["rows"] * abs(b["predicted"] - b["observed"]) for b in cal) / total)


# ---- the history table ---------------------------------------------------------------------


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def history_row(drift_summary: dict[str, Any] | None, perf: dict[str, Any] | None) -> dict[str, Any]:
    """One history row from a day's drift summary and/or performance summary (same version)."""
    d, p = drift_summary or {}, perf or {}
    pm = p.get("metrics", {})
    return {
        "dt": d.get("dt") or p.get("dt"),
        "version": str(d.get("version") or p.get("version")),
        "rows": d.get("rows"),
        "sample_rows": d.get("sample_rows"),
        "drift_share": _nan(d.get("drift_share")),
        "drifted_features": d.get("drifted_features"),
        "prediction_drift": _nan(d.get("prediction_drift")),
        "prediction_drifted": d.get("prediction_drifted"),
        "missing_share": _nan(d.get("missing_share")),
        "drifting": d.get("drifting"),
        "labelled_rows": int(pm["rows"]) if "rows" in pm else None,
        "positives": int(pm["positives"]) if "positives" in pm else None,
        "roc_auc": _nan(pm.get("roc_auc")),
        "average_precision": _nan(pm.get("average_precision")),
        "log_loss": _nan(pm.get("log_loss")),
        "ece": _nan(p.get("ece")),
        "drift_report": d.get("report"),
        "performance_report": p.get("report"),
    }


def merge_history(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upsert ``new`` rows into ``old`` by (dt, version), a new row's known values winning."""
    rows = {(r["dt"], r["version"]): dict(r) for r in old}
    for r in new:
        key = (r["dt"], r["version"])
        if key not in rows:
            rows[key] = dict(r)
            continue
        for k, v in r.items():
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                rows[key][k] = v
    return [rows[k] for k in sorted(rows)]


def history_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{k: r.get(k) for k in HISTORY_SCHEMA.names} for r in rows], schema=HISTORY_SCHEMA
    )


# ---- the alert policy ----------------------------------------------------------------------


@dataclass
class Alert:
    """A monitoring decision that asks for a retrain; the Asset event's extra."""

    dataset: str
    kind: str  # "drift", "performance", "staleness", or those that hit joined by "+"
    dt: str  # the newest day monitored for this version when the alert was raised
    version: str  # the champion the evidence is about
    onset: str  # first day of the run of bad days: retraining uses data from here on
    reason: str
    days: list[dict[str, Any]] = field(default_factory=list)
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _trailing_run(rows: list[dict[str, Any]], bad: Any) -> list[dict[str, Any]]:
    """The rows at the end of ``rows`` for which ``bad(row)`` holds, oldest first."""
    run: list[dict[str, Any]] = []
    for r in reversed(rows):
        if not bad(r):
            break
        run.append(r)
    return run[::-1]


def _finite(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def trained_through(tags: dict[str, str]) -> date | None:
    """The newest day of a training run's window, from its ``nightshift.window`` tag
    (``"<first>..<last> (<n> days)"``); ``None`` when the run has no such tag."""
    m = re.match(r"\d{4}-\d{2}-\d{2}\.\.(\d{4}-\d{2}-\d{2})\b", tags.get("nightshift.window", ""))
    return date.fromisoformat(m.group(1)) if m else None


def decide_alert(
    history: list[dict[str, Any]],
    spec: DatasetSpec,
    version: str,
    holdout_auc: float | None,
    trained_through: date | str | None = None,
) -> Alert | None:
    """Apply the spec's alert policy to the champion's history rows (oldest first).

    Drift: the last ``alerts.consecutive_days`` monitored days all drifting. Performance: the
    last ``alerts.performance_consecutive_days`` labelled days with an AUC below the floor
    (the version's holdout AUC minus ``max_auc_drop``, and at least ``min_auc``). Staleness:
    the newest monitored day is more than ``alerts.max_model_age_days`` data days after
    ``trained_through``, the newest day of the champion's training window (data days, not
    wall time, so a backfill or a simulated month ages the model as a real month would).
    """
    a = spec.alerts
    mine = sorted((r for r in history if str(r["version"]) == str(version)), key=lambda r: r["dt"])
    monitored = [r for r in mine if r.get("drifting") is not None and _finite(r.get("drift_share"))]
    drift_run = _trailing_run(monitored, lambda r: bool(r["drifting"]))
    floors = [f for f in (a.min_auc, None if holdout_auc is None else holdout_auc - a.max_auc_drop) if f]
    floor = max(floors) if floors else None
    labelled = [r for r in mine if _finite(r.get("roc_auc"))]
    perf_run = _trailing_run(labelled, lambda r: float(r["roc_auc"]) < floor) if floor is not None else []
    drift_hit = len(drift_run) >= a.consecutive_days
    perf_hit = len(perf_run) >= a.performance_consecutive_days
    trained = date.fromisoformat(trained_through) if isinstance(trained_through, str) else trained_through
    newest = date.fromisoformat(max(r["dt"] for r in mine)) if mine else None
    age = (newest - trained).days if newest is not None and trained is not None else None
    stale_hit = a.max_model_age_days is not None and age is not None and age > a.max_model_age_days
    if not (drift_hit or perf_hit or stale_hit):
        return None
    reasons, days, onsets = [], [], []
    if drift_hit:
        shares = ", ".join(f"{r['dt']} {r['drift_share']:.2f}" for r in drift_run)
        reasons.append(
            f"drift on {len(drift_run)} monitored day(s) in a row (>= {a.consecutive_days}): "
            f"weighted drift share {shares} (threshold {a.drift_share})"
        )
        days += [
            {"dt": r["dt"], "drift_share": r["drift_share"], "prediction_drift": r["prediction_drift"]}
            for r in drift_run
        ]
        onsets.append(drift_run[0]["dt"])
    if perf_hit:
        aucs = ", ".join(f"{r['dt']} {r['roc_auc']:.3f}" for r in perf_run)
        reasons.append(
            f"AUC below {floor:.3f} (holdout {holdout_auc if holdout_auc is not None else float('nan'):.3f} "
            f"- {a.max_auc_drop}) on {len(perf_run)} labelled day(s): {aucs}"
        )
        days += [{"dt": r["dt"], "roc_auc": r["roc_auc"], "log_loss": r["log_loss"]} for r in perf_run]
        onsets.append(perf_run[0]["dt"])
    if stale_hit:
        assert newest is not None and trained is not None
        reasons.append(
            f"model {age} data day(s) old on {newest} (trained through {trained}; "
            f"alerts.max_model_age_days {a.max_model_age_days})"
        )
        days.append({"dt": newest.isoformat(), "age_days": age, "trained_through": trained.isoformat()})
        if not onsets:  # alone, it asks for the data the champion never saw; with others, theirs
            onsets.append((trained + timedelta(days=1)).isoformat())
    kind = "+".join(
        k for k, hit in (("drift", drift_hit), ("performance", perf_hit), ("staleness", stale_hit)) if hit
    )
    return Alert(
        dataset=spec.name,
        kind=kind,
        # the newest day known, whatever the kind: a performance run ends label-delay days
        # earlier, and cooldown/budget count from this day
        dt=max(r["dt"] for r in mine),
        version=str(version),
        onset=min(onsets),
        reason=f"v{version}: " + "; ".join(reasons),
        days=days,
    )


# ---- the history: one row per monitored day and version


def history_path(store: Store, dataset: str) -> str:
    return store.path("reports", dataset, "monitoring", "history.parquet")


def read_history(store: Store, dataset: str) -> list[dict[str, Any]]:
    """The monitoring history: one row per (day, model version), oldest first."""
    import pyarrow.parquet as pq

    path = history_path(store, dataset)
    if not store.exists(path):
        return []
    return list(pq.read_table(store.open_input(path)).to_pylist())
