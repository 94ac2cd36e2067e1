"""Evaluation and the gate: metrics, slices, calibration, a simple baseline, and the verdict.

Every candidate (challenger, current champion, logistic-regression baseline) is scored on
the *same* holdout rows; :func:`gate` turns the three evaluations and the spec's thresholds
into a :class:`Verdict` whose checks are the evidence logged with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from nightshift.features import FeatureTransform
from nightshift.logistic import LOGISTIC, XGBOOST, LogisticModel
from nightshift.spec import DatasetSpec, Gate

HIGHER_IS_BETTER = {"roc_auc": True, "average_precision": True, "log_loss": False, "brier": False}
# scores this close to constant carry no ranking: a broken model, not a cautious one
MIN_SCORE_STD = 1e-9


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, average precision, log loss and Brier score (NaN when a class is missing)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    out = {"rows": float(len(y)), "positives": float(y.sum())}
    # NaN scores have no rank (sklearn refuses them): the metrics are undefined, and the
    # gate's stability check names why
    p = np.clip(p, 1e-7, 1 - 1e-7)
    if len(y) == 0 or y.min() == y.max() or np.isnan(p).any():
        return {**out, "roc_auc": float("nan"), "average_precision": float("nan"), "log_loss": float("nan"),
                "brier": float("nan")}  # fmt: skip
    out.update(
        roc_auc=float(roc_auc_score(y, p)),
        average_precision=float(average_precision_score(y, p)),
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        brier=float(brier_score_loss(y, p)),
    )
    return out


def slice_metrics(
    table: pa.Table, y: np.ndarray, p: np.ndarray, slices: list[str]
) -> dict[str, dict[str, Any]]:
    """``{slice column: {value: metrics}}`` for each slice column of the spec."""
    out: dict[str, dict[str, Any]] = {}
    for col in slices:
        values = np.asarray(
            table.column(col).cast(pa.string()).fill_null("<missing>").to_numpy(zero_copy_only=False)
        )
        out[col] = {str(v): metrics(y[values == v], p[values == v]) for v in sorted(set(values.tolist()))}
    return out


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean prediction vs observed rate in quantile bins of the prediction."""
    order = np.argsort(p, kind="stable")
    out = []
    for chunk in np.array_split(order, min(bins, max(len(p), 1))):
        if len(chunk):
            out.append(
                {
                    "rows": float(len(chunk)),
                    "predicted": float(p[chunk].mean()),
                    "observed": float(y[chunk].mean()),
                }
            )
    return out


def score_stats(p: np.ndarray) -> dict[str, float]:
    """What the numerical-stability check needs of a model's scores: how many are NaN/inf,
    whether the finite ones take 0, 1 or at least 2 distinct values, their spread and range."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    finite = p[np.isfinite(p)]
    return {
        "rows": float(len(p)),
        "nan": float(np.isnan(p).sum()),
        "inf": float(np.isinf(p).sum()),
        "distinct": 0.0 if not len(finite) else 1.0 if finite.min() == finite.max() else 2.0,
        "std": float(finite.std()) if len(finite) else float("nan"),
        "min": float(finite.min()) if len(finite) else float("nan"),
        "max": float(finite.max()) if len(finite) else float("nan"),
    }


@dataclass
class Evaluation:
    """One model's results on the holdout."""

    name: str
    metrics: dict[str, float]
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration: list[dict[str, float]] = field(default_factory=list)
    version: str | None = None
    scores: dict[str, float] = field(default_factory=dict)  # score_stats of the predictions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        return cls(**d)


def evaluate(name: str, table: pa.Table, y: np.ndarray, p: np.ndarray, spec: DatasetSpec,
             version: str | None = None) -> Evaluation:  # fmt: skip
    return Evaluation(
        name,
        metrics(y, p),
        slice_metrics(table, y, p, spec.slices),
        calibration(y, p),
        version,
        score_stats(p),
    )


# ---- the baseline (the model itself: nightshift.logistic) --------------------------------


def baseline_fit(
    transform: FeatureTransform,
    train: pa.Table,
    y_train: np.ndarray,
    seed: int,
    max_rows: int = 200_000,
) -> LogisticModel:
    """A logistic regression on the same features (imputed, scaled, one-hot categories): what
    "a simpler model" would score, fitted on the training days."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x_train = transform.matrix(train)
    if len(x_train) > max_rows:  # a bounded cost: the baseline is evidence, not a product
        idx = np.random.default_rng(seed).choice(len(x_train), max_rows, replace=False)
        x_train, y_train = x_train[idx], y_train[idx]
    n_num = len(transform.numeric)
    parts: list[tuple[str, Any, list[int]]] = []
    for j in range(n_num):
        num = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
        )
        parts.append((f"f{j}", num, [j]))
    for k, values in enumerate(transform.categorical.values()):
        cats = [np.arange(-1, len(values), dtype=np.float32)]
        cat = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=-1),
            OneHotEncoder(categories=cats, handle_unknown="ignore"),
        )
        parts.append((f"f{n_num + k}", cat, [n_num + k]))
    model = make_pipeline(ColumnTransformer(parts), LogisticRegression(max_iter=500, random_state=seed))
    model.fit(x_train, y_train)
    return LogisticModel(model, transform.feature_names)


def baseline_predict(
    transform: FeatureTransform,
    train: pa.Table,
    y_train: np.ndarray,
    holdout: pa.Table,
    seed: int,
    max_rows: int = 200_000,
) -> np.ndarray:
    """The logistic baseline's (:func:`baseline_fit`) scores of the holdout."""
    return baseline_fit(transform, train, y_train, seed, max_rows).predict(transform.matrix(holdout))


# ---- the gate ----------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Verdict:
    """The gate's decision and the checks behind it.

    ``model_kind``: what the judged candidate is (``xgboost``, or ``logistic`` when the baseline
    competed); ``competition``: when the baseline competed, both candidates' main metric, which
    one won and by how much, and what each failed; ``hints``: for a rejection, what to try."""

    promote: bool
    reason: str
    checks: list[Check]
    deltas: dict[str, float]
    first_model: bool
    model_kind: str = XGBOOST
    competition: dict[str, Any] | None = None
    hints: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        checks = [Check(**c) for c in d.get("checks") or []]
        return cls(**{**{k: d[k] for k in cls.__dataclass_fields__ if k in d}, "checks": checks})

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def _fmt(v: float) -> str:
    return "nan" if np.isnan(v) else f"{v:.4f}"


def stability_check(stats: dict[str, float] | None, min_std: float = MIN_SCORE_STD) -> Check:
    """The challenger's holdout scores must be finite and not (nearly) all equal."""
    if not stats:
        return Check("stability", False, "no score statistics recorded for the holdout scores")
    rows = int(stats["rows"])
    bad = int(stats["nan"] + stats["inf"])
    if bad:
        detail = (
            f"{bad} of {rows} holdout score(s) are NaN/inf ({int(stats['nan'])} NaN, {int(stats['inf'])} inf)"
        )
        return Check("stability", False, detail)
    if stats["distinct"] < 2:
        return Check("stability", False, f"all {rows} holdout scores are equal ({_fmt(stats['min'])})")
    if not stats["std"] >= min_std:
        return Check(
            "stability", False, f"holdout scores nearly constant: std {stats['std']:.3g} < {min_std:g}"
        )
    return Check(
        "stability",
        True,
        f"{rows} finite holdout scores in [{_fmt(stats['min'])}, {_fmt(stats['max'])}], "
        f"std {stats['std']:.4f}",
    )


# long: one block per gate rule, in the order the verdict lists its checks
def gate(
    rules: Gate,
    challenger: Evaluation,
    champion: Evaluation | None,
    baseline: Evaluation | None,
    skew: Check | None = None,
    *,
    kind: str = XGBOOST,
) -> Verdict:
    """Decide whether ``challenger`` (a model of ``kind``) replaces ``champion``.

    Always: the challenger's holdout scores are numerically sound (``stability``: finite, not
    all equal), the packaged model scores as training did (``skew``, from
    :func:`serving_skew`, when given), absolute floors (``min_metrics``, and
    ``slice_min_metric`` where the spec sets one), and the challenger must beat the logistic
    baseline by ``baseline_margin``; a challenger that *is* the baseline (``kind="logistic"``)
    is not compared with itself (the check passes, saying so). With ``floors_vs_champion``, a
    floor the champion misses too on the same holdout is passed by a challenger better than the
    champion (after a drift, the old model must not keep serving because the new one is merely
    good).
    Slices, relative: no slice more than ``max_slice_regression`` below the champion's on the
    same slice, or on a first run below the baseline's. With a champion, the main metric may
    fall at most ``max_regression`` (a tie passes). Slices with too few rows or positives are
    reported, not judged.
    """
    m = rules.metric
    is_baseline = kind == LOGISTIC
    checks: list[Check] = [stability_check(challenger.scores)]
    if skew is not None:
        checks.append(skew)
    for floor_name, floor in rules.min_metrics.items():
        v = challenger.metrics.get(floor_name, float("nan"))
        higher = HIGHER_IS_BETTER[floor_name]
        ok = not np.isnan(v) and (v >= floor if higher else v <= floor)
        detail = f"{floor_name} {_fmt(v)} ({'minimum' if higher else 'maximum'} {floor})"
        c = champion.metrics.get(floor_name, float("nan")) if champion is not None else float("nan")
        worse_champion = (c < floor and v > c) if higher else (c > floor and v < c)
        if not ok and rules.floors_vs_champion and not np.isnan(v) and not np.isnan(c) and worse_champion:
            ok = True
            detail += f"; below it, but the champion is worse on this holdout ({_fmt(c)})"
        checks.append(Check(f"min:{floor_name}", ok, detail))
    if m not in rules.min_metrics:  # a NaN main metric (one-class holdout) never passes
        v = challenger.metrics.get(m, float("nan"))
        checks.append(Check(f"defined:{m}", not np.isnan(v), f"{m} {_fmt(v)} must be defined on the holdout"))
    if is_baseline:
        checks.append(Check("baseline", True, "not compared: the candidate is the logistic baseline itself"))
    elif baseline is not None:
        v, b = challenger.metrics[m], baseline.metrics[m]
        # strictly better: when the simple model is as good, the simple model should win
        ok = not np.isnan(v) and (np.isnan(b) or v > b + rules.baseline_margin)
        checks.append(
            Check(
                "baseline",
                ok,
                f"{m} {_fmt(v)} vs logistic baseline {_fmt(b)} (margin {rules.baseline_margin})",
            )
        )
    deltas: dict[str, float] = {}
    if champion is not None:
        for name in HIGHER_IS_BETTER:
            deltas[name] = challenger.metrics.get(name, float("nan")) - champion.metrics.get(
                name, float("nan")
            )
        d = deltas[m]
        ok = not np.isnan(d) and d >= -rules.max_regression - 1e-12
        checks.append(
            Check(
                "champion",
                ok,
                f"{m} {_fmt(challenger.metrics[m])} vs champion v{champion.version} "
                f"{_fmt(champion.metrics[m])} (delta {d:+.4f}, allowed -{rules.max_regression})",
            )
        )
    # on a first run the slices are compared with the baseline's (unless the candidate is it)
    versus = baseline if champion is None and not is_baseline else None
    for col, values in challenger.slices.items():
        for value, sm in values.items():
            label = f"{col}={value}"
            if sm["rows"] < rules.slice_min_rows or sm["positives"] < rules.slice_min_positives:
                continue
            v = sm.get(m, float("nan"))
            c = champion.slices.get(col, {}).get(value, {}).get(m, float("nan")) if champion else float("nan")
            if rules.slice_min_metric is not None:
                ok = not np.isnan(v) and v >= rules.slice_min_metric
                detail = f"{m} {_fmt(v)} (minimum {rules.slice_min_metric})"
                if not ok and rules.floors_vs_champion and not np.isnan(c) and c < rules.slice_min_metric < 1:
                    ok = bool(v > c)
                    detail += f"; champion {_fmt(c)} is below it too" + (" and worse" if ok else "")
                checks.append(Check(f"slice_min:{label}", ok, detail))
            if champion is not None and not np.isnan(c):
                ok = not np.isnan(v) and v >= c - rules.max_slice_regression - 1e-12
                checks.append(
                    Check(
                        f"slice:{label}",
                        ok,
                        f"{m} {_fmt(v)} vs champion {_fmt(c)} (delta {v - c:+.4f}, "
                        f"allowed -{rules.max_slice_regression})",
                    )
                )
            b = versus.slices.get(col, {}).get(value, {}).get(m, float("nan")) if versus else float("nan")
            if versus is not None and not np.isnan(b):
                ok = not np.isnan(v) and v >= b - rules.max_slice_regression - 1e-12
                checks.append(
                    Check(
                        f"slice_baseline:{label}",
                        ok,
                        f"{m} {_fmt(v)} vs logistic baseline {_fmt(b)} (delta {v - b:+.4f}, "
                        f"allowed -{rules.max_slice_regression})",
                    )
                )
    failed = [c for c in checks if not c.passed]
    if failed:
        reason = "rejected: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
    elif champion is None:
        what = " (logistic baseline)" if is_baseline else ""
        reason = f"first model{what}: passes the gate ({m} {_fmt(challenger.metrics[m])})"
    else:
        reason = (
            f"promoted{' (logistic baseline)' if is_baseline else ''}: {m} {_fmt(challenger.metrics[m])} "
            f"vs champion v{champion.version} {_fmt(champion.metrics[m])} ({deltas[m]:+.4f})"
        )
    verdict = Verdict(not failed, reason, checks, deltas, champion is None, kind)
    verdict.hints = hints(rules, verdict)
    return verdict


def _compared_with_baseline(c: Check) -> bool:
    return c.name == "baseline" or c.name.startswith("slice_baseline:")


def baseline_competes(rules: Gate, verdict: Verdict) -> bool:
    """Whether the logistic baseline should compete with a rejected XGBoost challenger: the
    spec allows it (``gate.baseline_candidate``) and the challenger did not beat the baseline,
    overall or on a slice."""
    return (
        rules.baseline_candidate
        and verdict.model_kind == XGBOOST
        and not verdict.promote
        and any(_compared_with_baseline(c) for c in verdict.failed)
    )


def compete(
    rules: Gate, xgb: Verdict, logistic: Verdict, xgb_eval: Evaluation, base_eval: Evaluation
) -> Verdict:
    """The verdict of a competition between a rejected XGBoost challenger (``xgb``) and the
    logistic baseline judged by the same gate (``logistic``): the baseline's when it passes
    (it is the candidate that is registered), else the XGBoost challenger's; both record the
    two candidates' main metric, the winner and the margin."""
    m = rules.metric
    v, b = xgb_eval.metrics.get(m, float("nan")), base_eval.metrics.get(m, float("nan"))
    won = logistic.promote
    names = [c.name for c in xgb.failed]
    competition: dict[str, Any] = {
        "metric": m,
        "winner": LOGISTIC if won else None,
        XGBOOST: v,
        LOGISTIC: b,
        "margin": b - v,  # the baseline's lead (negative: XGBoost was better but failed elsewhere)
        "xgboost_failed": names,
        "logistic_failed": [c.name for c in logistic.failed],
    }
    if won:
        lead = (
            f"{m} {_fmt(b)} vs XGBoost {_fmt(v)} ({b - v:+.4f})"
            if not (np.isnan(b) or np.isnan(v))
            else f"{m} {_fmt(b)} vs XGBoost {_fmt(v)}"
        )
        lost = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
        reason = f"baseline won: logistic {lead}; XGBoost failed {lost}; {logistic.reason}"
        out = Verdict(
            True, reason, logistic.checks, logistic.deltas, logistic.first_model, LOGISTIC, competition
        )
        return out
    reason = xgb.reason + f"; the logistic baseline competed too and was rejected: {logistic.reason}"
    out = Verdict(False, reason, xgb.checks, xgb.deltas, xgb.first_model, XGBOOST, competition)
    out.hints = list(dict.fromkeys([*xgb.hints, *logistic.hints]))
    return out


def hints(rules: Gate, verdict: Verdict) -> list[str]:
    """What to try about each kind of failed check (for the rejection notification); slices
    failing the same way are named together."""
    out: list[str] = []
    slices: dict[str, list[str]] = {}
    for c in verdict.failed:
        kind, _, what = c.name.partition(":")
        if kind in ("slice_baseline", "slice", "slice_min"):
            slices.setdefault(kind, []).append(what)
        elif kind == "stability":
            out.append("the model's scores are broken (NaN or constant): check the features and the params")
        elif kind == "serving_skew":
            out.append(
                "the packaged model scores differently from training: check the transform and the code"
            )
        elif kind == "baseline":
            out.append(
                "a logistic regression is as good: consider more data (training.window_days) or better "
                "features; gate.baseline_candidate lets the baseline serve"
            )
        elif kind in ("min", "defined"):
            out.append(
                f"{what} is below its floor (gate.min_metrics): more data or features, or a floor that fits "
                "this dataset"
            )
        elif kind == "champion":
            out.append("worse than the champion on the same holdout: the champion keeps serving")
    allowed = f"gate.max_slice_regression ({rules.max_slice_regression})"
    says = {
        "slice_baseline": f"worse than the baseline's: check the slice or raise {allowed}",
        "slice": f"fell below the champion's: check the slice or raise {allowed}",
        "slice_min": "below gate.slice_min_metric: check the slice or lower it",
    }
    for kind, names in slices.items():
        out.append(f"slice{'s' if len(names) > 1 else ''} {', '.join(names)} {says[kind]}")
    return list(dict.fromkeys(out))


# ---- serving skew ------------------------------------------------------------------------

SKEW_ARTIFACT = "serving_check.json"
SKEW_ROWS = 1_000
SKEW_TOLERANCE = 1e-6  # |probability| difference allowed between training and serving


def skew_sample(
    spec: DatasetSpec,
    holdout: pa.Table,
    scores: np.ndarray | Callable[[pa.Table], np.ndarray],
    rows: int = SKEW_ROWS,
    kind: str = XGBOOST,
) -> dict[str, Any]:
    """Training's side of the serving-skew check: the in-process model's scores of a seeded
    sample of holdout rows (positions and ids), logged with the run as :data:`SKEW_ARTIFACT`.

    ``scores``: the scores of every holdout row, or a function scoring the sampled rows (so
    training predicts those rows only)."""
    n = min(rows, holdout.num_rows)
    rng = np.random.default_rng(spec.seed)
    pos = np.sort(rng.choice(holdout.num_rows, size=n, replace=False)) if n else np.zeros(0, np.int64)
    ids = holdout.column(spec.id_column).take(pa.array(pos)).cast(pa.string()).to_pylist()
    if not n:
        p = np.zeros(0, np.float64)
    elif callable(scores):
        p = np.asarray(scores(holdout.take(pa.array(pos, pa.int64()))), dtype=np.float64).reshape(-1)
    else:
        p = np.asarray(scores, dtype=np.float64).reshape(-1)[pos]
    return {"positions": pos.tolist(), "ids": ids, "scores": p.tolist(), "tolerance": SKEW_TOLERANCE,
            "kind": kind}  # fmt: skip


def load_skew_sample(run_id: str) -> dict[str, Any] | None:
    """The run's :data:`SKEW_ARTIFACT`, or ``None`` for a run trained before it was recorded."""
    import mlflow
    from mlflow import MlflowClient

    if SKEW_ARTIFACT not in {a.path for a in MlflowClient().list_artifacts(run_id)}:
        return None
    found: dict[str, Any] = mlflow.artifacts.load_dict(f"runs:/{run_id}/{SKEW_ARTIFACT}")
    return found


def serving_skew(model: Any, holdout: pa.Table, spec: DatasetSpec, recorded: dict[str, Any] | None) -> Check:
    """Training and serving compute the same values: the packaged model (a pyfunc, fed as
    :func:`nightshift.score.score_partition` feeds it) scores the recorded holdout rows as the
    in-process booster did at training, within the recorded tolerance."""
    from nightshift.features import model_input

    name = "serving_skew"
    if recorded is None:
        return Check(
            name, True, "not compared: the run recorded no training-time scores (trained before the check)"
        )
    pos = np.asarray(recorded["positions"], dtype=np.int64)
    if len(pos) and int(pos.max()) >= holdout.num_rows:
        return Check(
            name, False, f"training scored holdout row {int(pos.max())}, the holdout has {holdout.num_rows}"
        )
    rows = holdout.take(pa.array(pos))
    if rows.column(spec.id_column).cast(pa.string()).to_pylist() != list(recorded["ids"]):
        return Check(name, False, "the holdout rows are not the ones training scored (ids differ)")
    frame = model_input(
        rows, [f.name for f in spec.features.numeric], [f.name for f in spec.features.categorical]
    )
    served = np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)
    expected = np.asarray(recorded["scores"], dtype=np.float64)
    tol = float(recorded.get("tolerance", SKEW_TOLERANCE))
    if served.shape != expected.shape:
        return Check(
            name, False, f"the packaged model returned {len(served)} scores for {len(expected)} rows"
        )
    close = np.isclose(served, expected, rtol=0.0, atol=tol, equal_nan=True)
    diff = np.abs(served - expected)
    worst = float(np.nanmax(diff)) if len(diff) and not np.isnan(diff).all() else 0.0
    if not close.all():
        i = int(np.flatnonzero(~close)[0])
        return Check(
            name,
            False,
            f"{int((~close).sum())} of {len(close)} holdout rows score differently in the packaged model "
            f"than in training (max |diff| {worst:.3g} > {tol:g}; e.g. id {recorded['ids'][i]}: "
            f"{expected[i]:.6f} trained, {served[i]:.6f} served)",
        )
    noun = "booster" if recorded.get("kind", XGBOOST) == XGBOOST else f"{recorded['kind']} model"
    return Check(
        name,
        True,
        f"packaged model = in-process {noun} on {len(close)} holdout rows "
        f"(max |diff| {worst:.3g}, tolerance {tol:g})",
    )


def needs_review(rules: Gate, verdict: Verdict) -> str | None:
    """Why a human should decide this verdict (``gate.review``), or ``None``: the gate decides.

    Borderline = a champion exists, the main metric's delta against it lies in the band, and
    nothing failed but the comparisons with the champion (a broken floor or a lost baseline is
    never a judgement call)."""
    if rules.review is None or verdict.first_model:
        return None
    d = verdict.deltas.get(rules.metric, float("nan"))
    lo, hi = rules.review.band
    if np.isnan(d) or not lo - 1e-12 <= d <= hi + 1e-12:  # inclusive, float-safe
        return None
    hard = [c.name for c in verdict.failed if c.name != "champion" and not c.name.startswith("slice:")]
    if hard:
        return None
    return (
        f"{rules.metric} delta {d:+.4f} vs the champion is within the review band [{lo:+.4f}, {hi:+.4f}]; "
        f"the gate would {'promote' if verdict.promote else 'reject'}"
    )


# ---- artifacts ---------------------------------------------------------------------------


def contributions(model: Any, transform: FeatureTransform, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """``(matrix, contributions)`` of ``rows``: the transform's matrix and each feature's
    log-odds contribution, bias last — XGBoost's ``pred_contribs`` (TreeSHAP) for a booster,
    coefficient * value per feature for the logistic baseline (:class:`LogisticModel`)."""
    x = transform.matrix(rows)
    if isinstance(model, LogisticModel):
        return x, model.contributions(x)
    import xgboost as xgb

    dm = xgb.DMatrix(x, feature_names=transform.feature_names, feature_types=transform.feature_types,
                     enable_categorical=True)  # fmt: skip
    best = model.attributes().get("best_iteration")
    rng = (0, int(best) + 1) if best is not None else (0, 0)
    return x, np.asarray(model.predict(dm, pred_contribs=True, iteration_range=rng), dtype=np.float64)


def importance(model: Any, transform: FeatureTransform, sample: pa.Table) -> list[dict[str, Any]]:
    """Per feature: mean |contribution| (log-odds, :func:`contributions`) on ``sample``, its
    mean, and ``gain``: the booster's gain importance, or for the logistic baseline the sum of
    |coefficient| over the feature's standardised / one-hot columns."""
    gain = model.weights() if isinstance(model, LogisticModel) else model.get_score(importance_type="gain")
    _, contribs = contributions(model, transform, sample)
    mean_abs = np.abs(contribs[:, :-1]).mean(axis=0)
    mean = contribs[:, :-1].mean(axis=0)
    rows = [
        {
            "feature": f,
            "gain": float(gain.get(f, 0.0)),
            "mean_abs_contribution": float(mean_abs[i]),
            "mean_contribution": float(mean[i]),
        }
        for i, f in enumerate(transform.feature_names)
    ]
    return sorted(rows, key=lambda r: -r["mean_abs_contribution"])


def explain(model: Any, transform: FeatureTransform, rows: pa.Table) -> list[dict[str, Any]]:
    """Inference on single examples, step by step: for each row, every feature's raw value, the
    value the model sees (float, category code, ``None`` = missing), its contribution to the
    log-odds (:func:`contributions`), the bias, the margin and the probability, checked against
    :func:`nightshift.model.predict` (``matches``). Works for either model kind."""
    from nightshift.model import predict

    x, contribs = contributions(model, transform, rows)
    served = predict(model, transform, rows)
    out = []
    for i in range(rows.num_rows):
        steps = []
        for j, name in enumerate(transform.feature_names):
            v = float(x[i, j])
            cats = transform.categorical.get(name)
            steps.append(
                {
                    "feature": name,
                    "raw": rows.column(name)[i].as_py(),
                    "model_input": None if np.isnan(v) else v,
                    "category": None if cats is None or np.isnan(v) else cats[int(v)],
                    "contribution": float(contribs[i, j]),
                }
            )
        margin = float(contribs[i].sum(dtype=np.float64))
        probability = float(1.0 / (1.0 + np.exp(-margin)))
        out.append(
            {
                "features": sorted(steps, key=lambda s: -abs(s["contribution"])),
                "bias": float(contribs[i, -1]),
                "margin": margin,
                "probability": probability,
                "served": float(served[i]),
                "matches": bool(abs(probability - served[i]) <= 1e-5),
            }
        )
    return out


def calibration_plot(evals: list[Evaluation], path: Path) -> Path:
    """Reliability diagram of each evaluation (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    top = 0.0
    for ev in evals:
        xs = [b["predicted"] for b in ev.calibration]
        ys = [b["observed"] for b in ev.calibration]
        top = max(top, *xs, *ys) if xs else top
        ax.plot(xs, ys, marker="o", label=f"{ev.name} (AUC {_fmt(ev.metrics['roc_auc'])})")
    top = top or 1.0
    ax.plot([0, top], [0, top], "--", color="grey", label="perfect")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title("Calibration on the holdout")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def report_html(spec: DatasetSpec, evals: list[Evaluation], verdict: Verdict | None) -> str:
    """A small self-contained HTML report: metrics, slices, verdict checks (the autoescaping
    template ``templates/evaluation.html``)."""
    from nightshift.healthpage import render_template

    keys = ["roc_auc", "average_precision", "log_loss", "brier", "rows", "positives"]
    metrics = {
        "head": ["model", *keys],
        "rows": [[e.name, *(_fmt(e.metrics.get(k, float("nan"))) for k in keys)] for e in evals],
    }
    slices = []
    for col in spec.slices:
        rows = []
        for e in evals:
            for value, sm in e.slices.get(col, {}).items():
                ap, n, pos = _fmt(sm["average_precision"]), f"{sm['rows']:.0f}", f"{sm['positives']:.0f}"
                rows.append([e.name, value, _fmt(sm["roc_auc"]), ap, n, pos])
        slices.append({"column": col, "head": ["model", col, "roc_auc", "ap", "rows", "pos"], "rows": rows})
    judged = None
    if verdict is not None:
        checks = [[c.name, "pass" if c.passed else "FAIL", c.detail] for c in verdict.checks]
        judged = {"promote": verdict.promote, "reason": verdict.reason, "checks": checks}
    return render_template(
        "evaluation.html", dataset=spec.name, metrics=metrics, slices=slices, verdict=judged
    )
