"""Loop effectiveness: does nightshift's monitor -> alert -> guarded retrain loop keep the served
model as good as retraining every day, for a fraction of the retrains?

On generated drift scenarios of ``datasets/payments.yaml`` (drift from day ``--onset``), the
served model's AUC on every day is compared for three policies:

(a) *never*: the bootstrap model serves for ever;
(b) *daily*: every day ``d`` a model is trained on the last ``training.window_days`` labelled
    days known on day ``d`` (labels of day ``i`` land on day ``i + label.delay_days``) and
    serves from day ``d + 1``, always replacing the last one (no gate);
(c) *nightshift*: what the DAGs do, with the pure core and no orchestrator, store or MLflow:
    each day is scored by the champion and compared with the champion's reference sample
    (``monitor.drift``, weights from ``evaluate.importance``); when the labels of day
    ``d - delay`` land, the version that scored it gets a performance row; the history is
    merged and ``monitor.decide_alert`` runs; an alert (once per piece of evidence, as
    ``run_alert`` emits it) goes through ``retrain.decide`` with the earlier decisions kept in
    memory; a retrain trains on the decision's window and is gated exactly as ``gate_step``
    does (challenger, champion and logistic baseline on the challenger's holdout,
    ``evaluate.gate``; the baseline's competition is not simulated: an XGBoost challenger that
    does not beat the baseline is rejected, as with ``gate.baseline_candidate: false``); a
    promoted challenger serves from day ``d + 1`` with its own reference.

All three share the generated days and the bootstrap model (trained on days
``0..window_days-1``, serving from day ``window_days``). The served AUC of a day uses that
day's true labels (evaluation only); decisions only ever see labels that have landed. A fake
clock advances one hour per simulated day (a retrain ends 20 minutes after its decision), so
the merge check of ``retrain.decide`` sees sequential runs.

It prints, per scenario, the mean served AUC from the onset on and over all served days, the
retrains of (b) and (c), the share of the (b) - (a) gap that (c) recovers and the retrain
ratio (c) / (b), against the goal (>= 90 % of the gap with <= 25 % of the retrains); then the
day-by-day AUC of each policy and every alert and retrain decision of (c) with its reason.
The policy knobs come from the spec; flags override them (``--min-days-after-onset``,
``--cooldown-days``, ``--set section.key=value`` ...), and each ``--variant`` re-runs (c) with
more overrides on the same data, models and (a)/(b) results. Models are cached by
(scenario, training days, training settings): training is seeded, so the same window gives
the same model.

    python bench/loop.py                                  # 3 scenarios x 30 days x 4000 rows
    python bench/loop.py --scenarios concept --rows 2000  # smaller
    python bench/loop.py --variant retrain.min_days_after_onset=5,retrain.cooldown_days=1
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from harness import INCLUDE, code_fingerprint, verdict

if str(INCLUDE) not in sys.path:
    sys.path.insert(0, str(INCLUDE))

import numpy as np
import pyarrow as pa
import yaml

from nightshift import evaluate as ev
from nightshift import monitor, retrain
from nightshift.datagen import Scenario, generate_day
from nightshift.features import FeatureTransform, labels
from nightshift.model import predict
from nightshift.pipeline import IMPORTANCE_SAMPLE
from nightshift.spec import DatasetSpec, find_spec, parse_dt, parse_spec
from nightshift.train import Device, InsufficientData, Window, check_window, choose_device, split_days
from nightshift.train import train as fit_booster

START = date(2026, 6, 1)  # day index 0
SEED = 11  # the seed of tests/integration/test_drift_scenarios.py
CLOCK0 = datetime(2026, 6, 1, tzinfo=UTC)  # the fake "now" of day 0; +1 hour per simulated day
RETRAIN_TAKES = timedelta(minutes=20)

# goals of the issue
GOAL_SHARE = 0.90  # share of the (b) - (a) gap (c) recovers, higher is better
GOAL_RATIO = 0.25  # retrains (c) / retrains (b), lower is better
MIN_GAP = 0.01  # a smaller (b) - (a) AUC gap makes the share meaningless

SCENARIOS = ("covariate", "concept", "both")
MEASURED = ("monitor.py", "retrain.py", "evaluate.py", "train.py", "datagen.py", "model.py", "spec.py")

log = logging.getLogger("bench.loop")


def scenario(name: str, onset: int) -> Scenario:
    return {
        "covariate": Scenario(covariate_drift_from=onset),
        "concept": Scenario(concept_drift_from=onset),
        "both": Scenario(covariate_drift_from=onset, concept_drift_from=onset),
    }[name]


def dt(i: int) -> date:
    return START + timedelta(days=i)


def index(d: str | date) -> int:
    return (parse_dt(d) - START).days


# ---- the spec and its overrides -----------------------------------------------------------
def override(spec: DatasetSpec, sets: list[str]) -> DatasetSpec:
    """``spec`` with ``section.key=value`` overrides (value read as YAML), validated again."""
    data = spec.model_dump()
    for item in sets:
        path, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"override {item!r} is not key=value")
        node = data
        *parents, leaf = path.strip().split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise SystemExit(f"override {item!r}: no section {key!r} in the spec")
            node = node[key]
        if leaf not in node:
            raise SystemExit(f"override {item!r}: no field {leaf!r} in {'.'.join(parents) or 'the spec'}")
        node[leaf] = yaml.safe_load(raw)
    return parse_spec(data, f"payments spec with {', '.join(sets)}")


def knobs(spec: DatasetSpec) -> dict[str, Any]:
    """The policy settings that decide when (c) retrains, as they are in effect."""
    r, a = spec.retrain, spec.alerts
    return {
        "retrain.since_onset": r.since_onset,
        "retrain.min_days_after_onset": r.min_days_after_onset,
        "effective min days after onset": spec.retrain_min_days,
        "retrain.cooldown_days": r.cooldown_days,
        "retrain.max_per_week": r.max_per_week,
        "alerts.drift_share": a.drift_share,
        "alerts.consecutive_days": a.consecutive_days,
        "alerts.max_auc_drop": a.max_auc_drop,
        "alerts.performance_consecutive_days": a.performance_consecutive_days,
    }


# ---- data and models ----------------------------------------------------------------------
def generate(spec: DatasetSpec, sc: Scenario, days: int, rows: int, seed: int) -> list[pa.Table]:
    """Each day's events joined with their labels, in event-time order, with the ``__dt``
    column a :class:`Window` splits on."""
    out = []
    for i in range(days):
        pairs = list(generate_day(spec, dt(i), i, rows, seed, sc))
        events = pa.Table.from_batches([e for e, _ in pairs])
        lab = pa.Table.from_batches([lb for _, lb in pairs]).select([spec.id_column, spec.label.column])
        t = events.join(lab, keys=spec.id_column).sort_by(spec.event_time_column)
        out.append(t.append_column("__dt", pa.array([dt(i)] * t.num_rows, pa.date32())))
    return out


@dataclass
class Model:
    """A trained model, its holdout AUC, and (when monitored) its reference and weights."""

    days: tuple[int, ...]  # the day indexes it was trained on
    window: Window
    booster: Any
    transform: FeatureTransform
    holdout_auc: float
    train_s: float
    reference: pa.Table | None = None
    weights: dict[str, float] | None = None
    scores: dict[int, np.ndarray] = field(default_factory=dict)
    aucs: dict[int, float] = field(default_factory=dict)


class Lab:
    """One scenario's days and every model trained on them (cached by window and settings)."""

    def __init__(self, name: str, spec: DatasetSpec, tables: list[pa.Table], device: Device) -> None:
        self.name, self.spec, self.tables, self.device = name, spec, tables, device
        self.models: dict[tuple[Any, ...], Model] = {}
        self.drifts: dict[tuple[Any, ...], monitor.DriftResult] = {}
        self.trainings = 0
        self.train_s = 0.0
        self.drift_s = 0.0

    def model(self, spec: DatasetSpec, days: list[int]) -> Model:
        """Train (or reuse) the model of ``spec``'s training settings on ``days``."""
        key = (tuple(days), json.dumps(spec.training.model_dump(), sort_keys=True))
        found = self.models.get(key)
        if found is not None:
            return found
        t = spec.training
        window = Window(
            pa.concat_tables([self.tables[i] for i in days]),
            [],
            split_days([dt(i) for i in days], t.validation_days, t.holdout_days),
        )
        check_window(window, spec)
        t0 = time.perf_counter()
        result = fit_booster(spec, window, self.device)
        hold = window.split("holdout")
        auc = ev.metrics(labels(hold, spec), predict(result.booster, result.transform, hold))["roc_auc"]
        seconds = time.perf_counter() - t0
        self.trainings += 1
        self.train_s += seconds
        model = Model(tuple(days), window, result.booster, result.transform, auc, seconds)
        self.models[key] = model
        return model

    def monitored(self, spec: DatasetSpec, model: Model) -> Model:
        """Add the monitoring reference (a seeded sample of the window and its scores, as
        ``train_step`` logs it) and the importance weights of the drift share."""
        if model.reference is None:
            rows = monitor.sample(model.window.table, spec.monitoring.reference_rows, spec.seed)
            ref = rows.select(spec.feature_names)
            scores = predict(model.booster, model.transform, rows)
            model.reference = ref.append_column(monitor.SCORE, pa.array(scores, pa.float64()))
            imp = ev.importance(
                model.booster, model.transform, model.window.split("holdout").slice(0, IMPORTANCE_SAMPLE)
            )
            model.weights = monitor.feature_weights(imp, spec)
        return model

    def scores(self, model: Model, i: int) -> np.ndarray:
        if i not in model.scores:
            model.scores[i] = predict(model.booster, model.transform, self.tables[i])
        return model.scores[i]

    def auc(self, model: Model, i: int) -> float:
        """The AUC of ``model`` on day ``i`` with the day's true labels."""
        if i not in model.aucs:
            y = labels(self.tables[i], self.spec)
            model.aucs[i] = ev.metrics(y, self.scores(model, i))["roc_auc"]
        return model.aucs[i]

    def drift(self, spec: DatasetSpec, model: Model, version: str, i: int) -> monitor.DriftResult:
        """``monitor.drift`` of day ``i`` (scored by ``model``) against ``model``'s reference."""
        self.monitored(spec, model)
        settings = json.dumps([spec.monitoring.model_dump(), spec.alerts.model_dump()], sort_keys=True)
        key = (model.days, id(model), settings, i)
        if key not in self.drifts:
            assert model.reference is not None and model.weights is not None
            day = self.tables[i].append_column(monitor.SCORE, pa.array(self.scores(model, i), pa.float64()))
            t0 = time.perf_counter()
            self.drifts[key], _ = monitor.drift(model.reference, day, spec, model.weights, dt(i), version)
            self.drift_s += time.perf_counter() - t0
        return replace(self.drifts[key], version=version)


def labelled_on(spec: DatasetSpec, d: int) -> list[int]:
    """Day indexes whose labels have landed by day ``d``."""
    return list(range(0, d - spec.label.delay_days + 1))


# ---- the policies -------------------------------------------------------------------------
@dataclass
class Policy:
    """One policy's served model per day and its retrains."""

    name: str
    served: dict[int, float] = field(default_factory=dict)  # day index -> AUC of the served model
    version: dict[int, str] = field(default_factory=dict)  # day index -> version serving it
    retrains: int = 0
    promotions: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    knobs: dict[str, Any] = field(default_factory=dict)


def never(lab: Lab, boot: Model, serve: range) -> Policy:
    p = Policy("(a) never")
    for i in serve:
        p.served[i], p.version[i] = lab.auc(boot, i), "1"
    return p


def daily(lab: Lab, spec: DatasetSpec, boot: Model, serve: range) -> Policy:
    p = Policy("(b) daily")
    current, version = boot, 1
    for d in serve:
        p.served[d], p.version[d] = lab.auc(current, d), str(version)
        if d == serve.start:
            continue  # the bootstrap model was trained on the data known today
        window = labelled_on(spec, d)[-spec.training.window_days :]
        current, version = lab.model(spec, window), version + 1
        p.retrains += 1
        p.promotions += 1
        log.info("  (b) day %d: trained on days %d..%d", d, window[0], window[-1])
    return p


def nightshift(
    lab: Lab, spec: DatasetSpec, boot: Model, serve: range, name: str = "(c) nightshift"
) -> Policy:
    """The monitoring -> alert -> retrain -> gate loop, day by day (see the module docstring)."""
    p = Policy(name, knobs=knobs(spec))
    delay = spec.label.delay_days
    champion, version, next_version = boot, "1", 2
    history: list[dict[str, Any]] = []
    records: list[retrain.RetrainDecision] = []
    last_key: dict[str, Any] | None = None
    scored_by: dict[int, tuple[Model, str]] = {}
    for d in serve:
        now = CLOCK0 + timedelta(hours=d)
        p.served[d], p.version[d] = lab.auc(champion, d), version
        scored_by[d] = (champion, version)
        # monitor: drift of today's scores, performance of the day whose labels land today
        drift = lab.drift(spec, champion, version, d)
        new = [monitor.history_row(drift.to_dict(), None)]
        landed = d - delay
        if landed in scored_by:
            m, v = scored_by[landed]
            y = labels(lab.tables[landed], spec)
            perf = ev.metrics(y, lab.scores(m, landed))
            new.append(
                monitor.history_row(None, {"dt": dt(landed).isoformat(), "version": v, "metrics": perf})
            )
        history = monitor.merge_history(history, new)
        # alert: once per piece of evidence, as run_alert emits the Asset event
        trained = dt(max(champion.days))  # the newest day of its window, as alert_step reads it
        alert = monitor.decide_alert(history, spec, version, champion.holdout_auc, trained)
        if alert is None:
            continue
        key = {k: getattr(alert, k) for k in ("version", "kind", "dt", "onset")}
        if key == last_key:
            p.events.append({"day": d, "alert": alert.kind, "onset": index(alert.onset), "action": "repeat"})
            continue
        last_key = key
        alert.raised_at = now.isoformat()
        # retrain: the guard rails, then train -> gate -> promote
        decision = retrain.decide(
            spec, f"sim/{lab.name}/{d}", [alert], records, version, [dt(i) for i in labelled_on(spec, d)], [],
            now=now,
        )  # fmt: skip
        records.append(decision)
        event: dict[str, Any] = {
            "day": d,
            "alert": alert.kind,
            "onset": index(alert.onset),
            "alert_reason": alert.reason,
            "action": decision.action,
            "reason": decision.reason,
        }
        p.events.append(event)
        if not decision.ran:
            continue
        days = [index(x) for x in decision.window]
        p.retrains += 1
        try:
            challenger = lab.model(spec, days)
        except InsufficientData as exc:
            decision.outcome = {"status": "failed", "finished_at": (now + RETRAIN_TAKES).isoformat()}
            event.update(outcome="failed", gate=str(exc))
            continue
        new_version, next_version = str(next_version), next_version + 1
        verdict_ = gate(spec, challenger, champion, version)
        status = "promoted" if verdict_.promote else "rejected"
        decision.outcome = {
            "status": status,
            "finished_at": (now + RETRAIN_TAKES).isoformat(),
            "version": new_version,
            "reason": verdict_.reason,
        }
        event.update(outcome=status, version=new_version, days=[days[0], days[-1]], gate=verdict_.reason)
        if verdict_.promote:
            champion, version = lab.monitored(spec, challenger), new_version
            p.promotions += 1
    return p


def gate(spec: DatasetSpec, challenger: Model, champion: Model, champion_version: str) -> ev.Verdict:
    """``gate_step``: challenger, champion and logistic baseline on the challenger's holdout."""
    hold, train_t = challenger.window.split("holdout"), challenger.window.split("train")
    y = labels(hold, spec)
    ch = ev.evaluate("challenger", hold, y, predict(challenger.booster, challenger.transform, hold), spec)
    p_champ = predict(champion.booster, champion.transform, hold)
    cp = ev.evaluate("champion", hold, y, p_champ, spec, version=champion_version)
    transform = FeatureTransform.from_spec(spec, train_t)
    p_base = ev.baseline_predict(transform, train_t, labels(train_t, spec), hold, spec.seed)
    base = ev.evaluate("baseline", hold, y, p_base, spec)
    return ev.gate(spec.gate, ch, cp, base)


# ---- the summary --------------------------------------------------------------------------
def mean(p: Policy, days: range) -> float:
    vals = [p.served[i] for i in days if i in p.served and not math.isnan(p.served[i])]
    return float(np.mean(vals)) if vals else float("nan")


def compare(a: Policy, b: Policy, c: Policy, after: range, served: range) -> dict[str, Any]:
    ma, mb, mc = mean(a, after), mean(b, after), mean(c, after)
    gap = mb - ma
    meaningful = abs(gap) >= MIN_GAP
    share = (mc - ma) / gap if gap else float("nan")
    ratio = c.retrains / b.retrains if b.retrains else float("nan")
    ok = meaningful and share >= GOAL_SHARE and ratio <= GOAL_RATIO
    return {
        "policy": c.name,
        "after": [after.start, after.stop - 1],
        "served": [served.start, served.stop - 1],
        "mean_after": {"a": ma, "b": mb, "c": mc},
        "mean_served": {"a": mean(a, served), "b": mean(b, served), "c": mean(c, served)},
        "gap": gap,
        "gap_meaningful": meaningful,
        "share": share,
        "retrains": {"b": b.retrains, "c": c.retrains},
        "promotions": {"b": b.promotions, "c": c.promotions},
        "ratio": ratio,
        "verdict": verdict(ok) if meaningful else "n/a",
    }


def table(results: list[dict[str, Any]], onset: int, last: int, serve0: int) -> str:
    head = (
        f"| scenario | policy (c) | mean AUC days {onset}-{last}: (a) / (b) / (c) "
        f"| mean AUC days {serve0}-{last}: (a) / (b) / (c) | retrains (b) / (c) "
        f"| gap recovered | retrain ratio | goal |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for cmp in r["compare"]:
            ma, ms = cmp["mean_after"], cmp["mean_served"]
            share = f"{cmp['share']:.0%}" if cmp["gap_meaningful"] else f"n/a (gap {cmp['gap']:+.4f})"
            lines.append(
                f"| {r['scenario']} | {cmp['policy']} "
                f"| {ma['a']:.4f} / {ma['b']:.4f} / {ma['c']:.4f} "
                f"| {ms['a']:.4f} / {ms['b']:.4f} / {ms['c']:.4f} "
                f"| {cmp['retrains']['b']} / {cmp['retrains']['c']} "
                f"| {share} | {cmp['ratio']:.2f} | {cmp['verdict']} |"
            )
    return "\n".join(lines)


def series(r: dict[str, Any]) -> str:
    pols = r["policies"]
    names = [p["name"] for p in pols]
    lines = [
        "| day | date | " + " | ".join(names) + " | (c) serving |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    c = pols[2]
    for i in sorted(pols[0]["served"], key=int):
        aucs = " | ".join(f"{p['served'][i]:.4f}" for p in pols)
        lines.append(f"| {i} | {dt(int(i))} | {aucs} | v{c['version'][i]} |")
    return "\n".join(lines)


def events(p: dict[str, Any]) -> str:
    lines = []
    for e in p["events"]:
        if e["action"] == "repeat":
            continue
        head = f"day {e['day']}: {e['alert']} alert (onset day {e['onset']}) -> {e['action']}: {e['reason']}"
        lines.append(head)
        if e.get("outcome"):
            v = f" v{e['version']}" if e.get("version") else ""
            lines.append(f"    {e['outcome']}{v}: {e['gate']}")
    return "\n".join(lines) or "(no alert)"


def as_dict(p: Policy) -> dict[str, Any]:
    return {
        "name": p.name,
        "served": {str(k): v for k, v in p.served.items()},
        "version": {str(k): v for k, v in p.version.items()},
        "retrains": p.retrains,
        "promotions": p.promotions,
        "events": p.events,
        "knobs": p.knobs,
    }


# ---- the driver ---------------------------------------------------------------------------
def run_scenario(
    name: str,
    spec: DatasetSpec,
    variants: list[tuple[str, DatasetSpec]],
    args: argparse.Namespace,
    device: Device,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    tables = generate(spec, scenario(name, args.onset), args.days, args.rows, args.seed)
    gen_s = time.perf_counter() - t0
    lab = Lab(name, spec, tables, device)
    n = spec.training.window_days
    serve, after = range(n, args.days), range(args.onset, args.days)
    boot = lab.model(spec, list(range(n)))
    log.info("[%s] generated %d days in %.1f s; bootstrap model: holdout AUC %.4f", name, args.days, gen_s,
             boot.holdout_auc)  # fmt: skip
    timings: dict[str, float] = {"generate_s": gen_s}

    def timed(label: str, fn: Callable[[], Policy]) -> Policy:
        t = time.perf_counter()
        p = fn()
        timings[label] = time.perf_counter() - t
        log.info("[%s] %s: %d retrain(s), %.1f s", name, p.name, p.retrains, timings[label])
        return p

    a = timed("never_s", lambda: never(lab, boot, serve))
    c = timed("nightshift_s", lambda: nightshift(lab, spec, boot, serve))
    b = timed("daily_s", lambda: daily(lab, spec, boot, serve))
    extra = [
        timed(f"variant {label}_s", partial(nightshift, lab, vs, boot, serve, f"(c) {label}"))
        for label, vs in variants
    ]
    policies = [a, b, c, *extra]
    timings.update(
        total_s=time.perf_counter() - t0, train_s=lab.train_s, drift_s=lab.drift_s, trainings=lab.trainings
    )
    return {
        "scenario": name,
        "bootstrap_holdout_auc": boot.holdout_auc,
        "policies": [as_dict(p) for p in policies],
        "compare": [compare(a, b, x, after, serve) for x in (c, *extra)],
        "timings": timings,
    }


def policy_sets(args: argparse.Namespace) -> list[str]:
    sets = list(args.set)
    for flag, key in (
        ("min_days_after_onset", "retrain.min_days_after_onset"),
        ("cooldown_days", "retrain.cooldown_days"),
        ("max_per_week", "retrain.max_per_week"),
        ("since_onset", "retrain.since_onset"),
        ("consecutive_days", "alerts.consecutive_days"),
        ("drift_share", "alerts.drift_share"),
        ("max_auc_drop", "alerts.max_auc_drop"),
        ("performance_consecutive_days", "alerts.performance_consecutive_days"),
    ):
        value = getattr(args, flag)
        if value is not None:
            sets.append(f"{key}={json.dumps(value)}")
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    ap.add_argument("--rows", type=int, default=4000, help="rows per day (default 4000)")
    ap.add_argument("--days", type=int, default=30, help="simulated days, indexes 0..N-1 (default 30)")
    ap.add_argument("--onset", type=int, default=15, help="day index the drift starts on (default 15)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"data seed (default {SEED})")
    ap.add_argument("--json", type=Path, help="write the raw results here")
    ap.add_argument("--min-days-after-onset", type=int, help="retrain.min_days_after_onset")
    ap.add_argument("--cooldown-days", type=int, help="retrain.cooldown_days")
    ap.add_argument("--max-per-week", type=int, help="retrain.max_per_week")
    ap.add_argument("--since-onset", action=argparse.BooleanOptionalAction, help="retrain.since_onset")
    ap.add_argument("--consecutive-days", type=int, help="alerts.consecutive_days")
    ap.add_argument("--drift-share", type=float, help="alerts.drift_share")
    ap.add_argument("--max-auc-drop", type=float, help="alerts.max_auc_drop")
    ap.add_argument("--performance-consecutive-days", type=int, help="alerts.performance_consecutive_days")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any spec override, e.g. retrain.cooldown_days=1 (YAML value); repeatable",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="also run (c) with these overrides on top (same data and (a)/(b)); repeatable",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("nightshift", "evidently", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    base = find_spec("payments")
    sets = policy_sets(args)
    spec = override(base, sets) if sets else base
    variants = [(v, override(spec, v.split(","))) for v in args.variant]
    n = spec.training.window_days
    if not n < args.onset < args.days:
        raise SystemExit(f"need window_days ({n}) < --onset ({args.onset}) < --days ({args.days})")
    device = choose_device()
    print(
        f"loop effectiveness: scenarios {', '.join(names)}; {args.days} days x {args.rows:,} rows, "
        f"seed {args.seed}, drift from day {args.onset}; bootstrap on days 0..{n - 1}, served from day {n}; "
        f"label delay {spec.label.delay_days} days; device {device.name}; code {code_fingerprint(MEASURED)}",
        flush=True,
    )
    print(f"policy (c): {json.dumps(knobs(spec))}" + (f"  (overrides: {', '.join(sets)})" if sets else ""))
    for label, vs in variants:
        print(f"variant (c) {label}: {json.dumps(knobs(vs))}")
    t0 = time.perf_counter()
    results = [run_scenario(s, spec, variants, args, device) for s in names]
    wall = time.perf_counter() - t0

    last = args.days - 1
    print(f"\n## Served AUC and retrains (goal: >= {GOAL_SHARE:.0%} of the (b)-(a) gap over days "
          f"{args.onset}-{last} with <= {GOAL_RATIO:.0%} of (b)'s retrains)\n")  # fmt: skip
    print(table(results, args.onset, last, n))
    for r in results:
        small = [c for c in r["compare"] if not c["gap_meaningful"]]
        if small:
            print(
                f"\n{r['scenario']}: retraining every day moves the mean AUC by {small[0]['gap']:+.4f} "
                f"(|(b)-(a)| < {MIN_GAP}): there is no gap to recover, so the share is not meaningful; "
                "what (c) costs here is its retrains."
            )
    for r in results:
        boot = r["bootstrap_holdout_auc"]
        print(f"\n### {r['scenario']}: served AUC per day (bootstrap holdout AUC {boot:.4f})\n")
        print(series(r))
        for p in r["policies"][2:]:
            print(f"\n{p['name']}: alerts and retrain decisions ({p['retrains']} retrain(s), "
                  f"{p['promotions']} promoted)")  # fmt: skip
            print(events(p))
        t = r["timings"]
        print(f"\ntimings: {t['total_s']:.0f} s ({t['trainings']} trainings {t['train_s']:.0f} s, "
              f"drift {t['drift_s']:.0f} s, generate {t['generate_s']:.0f} s)")  # fmt: skip
    print(f"\nwall time {wall:.0f} s")
    if args.json:
        out = {
            "rows": args.rows,
            "days": args.days,
            "onset": args.onset,
            "seed": args.seed,
            "overrides": sets,
            "variants": [v for v, _ in variants],
            "code": code_fingerprint(MEASURED),
            "device": device.name,
            "wall_s": wall,
            "results": results,
        }
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"raw results: {args.json}")


if __name__ == "__main__":
    main()
