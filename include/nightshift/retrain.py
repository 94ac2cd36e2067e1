"""The retraining loop's guard rails: whether the alerts of a run start a retrain, on which
days, and the record of why (kept in ``reports/<dataset>/retrain/``).

Days are data days (an alert's partition date), so a backfill or the demo's simulated month
behaves as a real month would. The checks, in order:

1. an alert about the current champion (alerts about a replaced version are stale);
2. merge: alerts raised while an earlier retrain was running are folded into that retrain;
3. cooldown: ``retrain.cooldown_days`` after the last retrain;
4. budget: at most ``retrain.max_per_week`` retrains in any 7 data days;
5. data: never quarantined days; with ``retrain.since_onset`` only days from the alert's onset
   on, and only once ``min_days_after_onset`` of them are labelled.

A forced (manual) run skips 1-4 and says so in its record.

The same records keep the *bootstrap* guard rail (:func:`decide_bootstrap`, in
``reports/<dataset>/bootstrap/``): while there is no champion, the automatic runs of
``nightshift_train`` on new data train at most once per ``retrain.bootstrap_every_days``
labelled data days, so a dataset whose first model keeps being rejected does not train and
register a new rejected version every day.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from nightshift.monitor import Alert
from nightshift.spec import DatasetSpec, parse_dt
from nightshift.storage import Store

RETRAIN = "retrain"
SKIP = "skip"
BOOTSTRAP = "bootstrap"  # the records area of the bootstrap guard rail
NOT_TRAINED = "not-trained"  # an attempt that found too little data: it does not count
# a retrain with no recorded end merges later alerts for this long (wall time), not forever
RUNNING_GRACE = timedelta(hours=6)


@dataclass
class RetrainDecision:
    """Why a retrain run trained or did not; its ``outcome`` is filled in when it ends."""

    dataset: str
    run_key: str
    action: str  # "retrain" or "skip"
    reason: str
    decided_at: str
    day: str | None  # the data day the decision was made on
    alerts: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    since: str | None = None  # first day of the training window
    window: list[str] = field(default_factory=list)  # labelled days it may train on
    excluded_quarantined: list[str] = field(default_factory=list)
    merged_into: str | None = None
    forced: bool = False
    actor: str = "nightshift-monitor"
    outcome: dict[str, Any] | None = None  # status, version, finished_at
    overrides: dict[str, Any] = field(default_factory=dict)  # a manual retrain's (validated)
    triggered_by: str | None = None  # the user Airflow says started the run (or "scheduler")
    on_behalf_of: str | None = None  # the run's free-text ``actor`` Param

    @property
    def ran(self) -> bool:
        return self.action == RETRAIN

    @property
    def who(self) -> str:
        """``actor``, and on behalf of whom when the run said so."""
        if self.on_behalf_of and self.on_behalf_of != self.actor:
            return f"{self.actor} on behalf of {self.on_behalf_of}"
        return self.actor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RetrainDecision:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _check(checks: list[dict[str, Any]], name: str, ok: bool, detail: str) -> bool:
    checks.append({"name": name, "ok": ok, "detail": detail})
    return ok


# long: the guard rails in the order they are checked, each an early return; split up, the order would be lost
def decide(
    spec: DatasetSpec,
    run_key: str,
    alerts: list[Alert],
    records: list[RetrainDecision],
    champion: str | None,
    labelled: list[date],
    quarantined: list[date],
    *,
    force: bool = False,
    actor: str = "nightshift-monitor",
    now: datetime | None = None,
    overrides: dict[str, Any] | None = None,
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
) -> RetrainDecision:
    """Apply the guard rails to this run's alerts, given earlier decisions (any order).

    ``overrides`` (a forced run only, see :func:`validate_overrides`): ``since`` and
    ``window_days`` shape the window; the rest is recorded and passed on to training."""
    r = spec.retrain
    ov = validate_overrides(spec, overrides or {}, force)
    now = now or datetime.now(UTC)
    checks: list[dict[str, Any]] = []
    days = [parse_dt(a.dt) for a in alerts]
    day = max(days) if days else (labelled[-1] if labelled else None)
    decision = RetrainDecision(
        dataset=spec.name,
        run_key=run_key,
        action=SKIP,
        reason="",
        decided_at=now.isoformat(),
        day=day.isoformat() if day else None,
        alerts=[a.to_dict() for a in alerts],
        checks=checks,
        forced=force,
        actor=actor,
        overrides=ov,
        triggered_by=triggered_by,
        on_behalf_of=on_behalf_of,
    )

    def skip(reason: str) -> RetrainDecision:
        decision.reason = reason
        return decision

    ran = sorted((d for d in records if d.ran and d.run_key != run_key), key=lambda d: d.decided_at)
    current = [a for a in alerts if champion is None or a.version == champion]
    if force:
        unchecked = "alert, cooldown and budget not checked"
        _check(checks, "forced", True, f"manual retrain by {decision.who}: {unchecked}")
    else:
        if not _check(checks, "alert", bool(alerts), f"{len(alerts)} alert(s) in this run"):
            return skip("no alert triggered this run (trigger with force=true to retrain by hand)")
        stale = sorted({a.version for a in alerts} - {a.version for a in current})
        if not _check(
            checks,
            "current",
            bool(current),
            f"{len(current)} alert(s) about the champion v{champion}"
            + (f"; stale (about replaced version(s) {', '.join('v' + v for v in stale)})" if stale else ""),
        ):
            return skip(f"every alert is about a replaced model (now v{champion}): nothing to do")
        last = ran[-1] if ran else None
        if last is not None:
            # no outcome yet: still running (or killed: then it stops merging after a while)
            end = (last.outcome or {}).get("finished_at") or (
                datetime.fromisoformat(last.decided_at) + RUNNING_GRACE
            ).isoformat()
            merged = [a for a in current if last.decided_at <= a.raised_at <= end]
            if merged and len(merged) == len(current):
                decision.merged_into = last.run_key
                _check(checks, "merge", False, f"{len(merged)} alert(s) raised while {last.run_key} ran")
                return skip(f"merged into retrain {last.run_key}, which was running when the alerts came")
            _check(checks, "merge", True, "no retrain was running when these alerts were raised")
            assert day is not None
            since_last = (day - parse_dt(str(last.day))).days if last.day else None
            if since_last is not None and not _check(
                checks,
                "cooldown",
                since_last >= r.cooldown_days,
                f"last retrain on data of {last.day}, {since_last} day(s) ago; cooldown {r.cooldown_days}",
            ):
                until = parse_dt(str(last.day)) + timedelta(days=r.cooldown_days)
                return skip(f"cooldown after the retrain on data of {last.day}: next one from {until}")
        week = [d for d in ran if d.day and day and 0 <= (day - parse_dt(d.day)).days < 7]
        if not _check(
            checks,
            "budget",
            len(week) < r.max_per_week,
            f"{len(week)} retrain(s) in the 7 days up to {day}; budget {r.max_per_week}",
        ):
            return skip(f"weekly budget used: {len(week)} retrain(s) in the 7 days up to {day}")

    onsets = [parse_dt(a.onset) for a in current]
    since = min(onsets) if (r.since_onset and onsets) else None
    if "since" in ov:
        since = parse_dt(ov["since"])
    bad = sorted(set(quarantined))
    usable = [d for d in labelled if (since is None or d >= since) and d not in bad]
    window = usable[-int(ov.get("window_days") or spec.training.window_days) :]
    decision.since = since.isoformat() if since else None
    decision.window = [d.isoformat() for d in window]
    lo = since or (window[0] if window else None)
    decision.excluded_quarantined = [d.isoformat() for d in bad if lo is None or d >= lo]
    need = spec.retrain_min_days if since else spec.training.validation_days + spec.training.holdout_days + 1
    if not _check(
        checks,
        "data",
        len(window) >= need,
        f"{len(window)} labelled day(s) {'since the onset ' + str(since) if since else 'in the window'}"
        f", need {need}; quarantined day(s) never used: {', '.join(decision.excluded_quarantined) or 'none'}",
    ):
        return skip(
            f"waiting for labels after the onset {since}: {len(window)} of {need} labelled day(s)"
            if since
            else f"too few labelled days: {len(window)} of {need}"
        )
    decision.action = RETRAIN
    what = ", ".join(sorted({a.kind for a in current})) or "manual"
    span = f"{len(window)} day(s) {window[0]}..{window[-1]}"
    if not force:
        decision.reason = f"{what} alert(s) on v{champion}: training on {span}"
    else:
        why = f" ({ov['note']})" if ov.get("note") else ""
        decision.reason = f"forced by {decision.who}{why}: training on {span}"
        shown = {k: v for k, v in ov.items() if k != "note"}
        if shown:
            decision.reason += f" with {', '.join(f'{k}={v}' for k, v in sorted(shown.items()))}"
    return decision


def decide_bootstrap(
    spec: DatasetSpec,
    run_key: str,
    records: list[RetrainDecision],
    labelled: list[date],
    *,
    now: datetime | None = None,
    triggered_by: str | None = None,
) -> RetrainDecision:
    """The bootstrap guard rail for an automatic training run while there is no champion: at
    most one attempt per ``retrain.bootstrap_every_days`` labelled data days (the day is the
    newest labelled day, the end of the window it would train on). Attempts that found too
    little data (outcome ``not-trained``) do not count; a failed one does (no retry storm).
    The decision's ``notify`` check says whether this is the first skip since the last attempt
    (skips are told once per wait, not every day)."""
    every = spec.retrain.bootstrap_every_days
    now = now or datetime.now(UTC)
    day = labelled[-1] if labelled else None
    checks: list[dict[str, Any]] = []
    decision = RetrainDecision(
        dataset=spec.name,
        run_key=run_key,
        action=SKIP,
        reason="",
        decided_at=now.isoformat(),
        day=day.isoformat() if day else None,
        checks=checks,
        actor="nightshift-bootstrap",
        triggered_by=triggered_by,
        window=[d.isoformat() for d in labelled[-spec.training.window_days :]],
    )
    others = sorted((r for r in records if r.run_key != run_key), key=lambda r: r.decided_at)
    attempts = [r for r in others if r.ran and r.day and (r.outcome or {}).get("status") != NOT_TRAINED]
    last = attempts[-1] if attempts else None
    if last is not None and day is not None and every > 0:
        since = (day - parse_dt(str(last.day))).days
        outcome = (last.outcome or {}).get("status") or "no outcome recorded"
        waited = _check(
            checks,
            "bootstrap",
            since >= every,
            f"no champion yet; last attempt on data of {last.day} ({outcome}), {since} labelled day(s) ago; "
            f"retrain.bootstrap_every_days {every}",
        )
        if not waited:
            skipped_since = [r for r in others if not r.ran and r.decided_at > last.decided_at]
            _check(checks, "notify", not skipped_since, f"{len(skipped_since)} skip(s) since that attempt")
            until = parse_dt(str(last.day)) + timedelta(days=every)
            decision.reason = (
                f"no champion yet, and the last bootstrap attempt (data of {last.day}) was {outcome}: "
                f"next attempt on data from {until} (retrain.bootstrap_every_days {every}; "
                "trigger nightshift_train by hand to train now)"
            )
            return decision
    else:
        _check(checks, "bootstrap", True, "no champion yet and no earlier bootstrap attempt counts")
    decision.action = RETRAIN
    decision.reason = (
        f"no champion yet: bootstrap attempt on data up to {day or 'the latest labelled day'}"
        + (f" (at most one per {every} labelled day(s))" if every else "")
    )
    return decision


# XGBoost parameters a manual retrain may override (a typo must not be silently ignored)
XGB_OVERRIDABLE = {
    "max_depth": int,
    "max_leaves": int,
    "eta": float,
    "learning_rate": float,
    "min_child_weight": float,
    "subsample": float,
    "colsample_bytree": float,
    "colsample_bylevel": float,
    "colsample_bynode": float,
    "gamma": float,
    "lambda": float,
    "reg_lambda": float,
    "alpha": float,
    "reg_alpha": float,
    "max_bin": int,
    "scale_pos_weight": float,
    "max_delta_step": float,
    "max_cat_to_onehot": int,
    "max_cat_threshold": int,
}
OVERRIDES = ("since", "window_days", "xgb_params", "num_boost_round", "note")


def check_xgb_params(params: Any) -> tuple[dict[str, Any], list[str]]:
    """XGBoost parameter overrides, normalised, and the problems found (a typo must fail, not
    be ignored by XGBoost with a warning)."""
    if not isinstance(params, dict):
        return {}, [f"xgb_params: expected an object, got {type(params).__name__}"]
    problems = []
    for k, v in params.items():
        kind = XGB_OVERRIDABLE.get(k)
        if kind is None:
            problems.append(f"xgb_params.{k}: not an overridable XGBoost parameter")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and v != int(v)):
            problems.append(f"xgb_params.{k}: {v!r} is not {'an integer' if kind is int else 'a number'}")
        elif v < 0:
            problems.append(f"xgb_params.{k}: {v!r} is negative")
    return ({} if problems else {k: XGB_OVERRIDABLE[k](v) for k, v in params.items()}), problems


def validate_overrides(spec: DatasetSpec, overrides: dict[str, Any], force: bool) -> dict[str, Any]:
    """The overrides of a manual retrain, checked and normalised (empty values dropped).

    Raises ``ValueError`` naming every problem: an unknown key, overrides without ``force``, a
    bad date, a window too short to split, an unknown or mistyped XGBoost parameter."""
    ov = {k: v for k, v in overrides.items() if v not in (None, "", {}, [])}
    problems = [f"unknown override {k!r} (known: {', '.join(OVERRIDES)})" for k in ov if k not in OVERRIDES]
    if ov and not force and set(ov) - {"note"}:
        problems.append("overrides apply to a manual retrain only: set force=true")
    out: dict[str, Any] = {}
    if "since" in ov:
        try:
            out["since"] = parse_dt(str(ov["since"])).isoformat()
        except ValueError as exc:
            problems.append(f"since: {exc}")
    if "window_days" in ov:
        t = spec.training
        need = t.validation_days + t.holdout_days + 1
        w = ov["window_days"]
        if isinstance(w, bool) or not isinstance(w, int) or w < need:
            problems.append(
                f"window_days: {w!r} is not an integer >= {need} (validation + holdout + 1 train day)"
            )
        else:
            out["window_days"] = w
    if "num_boost_round" in ov:
        n = ov["num_boost_round"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100_000:
            problems.append(f"num_boost_round: {n!r} is not an integer in 1..100000")
        else:
            out["num_boost_round"] = n
    if "xgb_params" in ov:
        params, bad = check_xgb_params(ov["xgb_params"])
        problems += bad
        if params:
            out["xgb_params"] = params
    if "note" in ov:
        out["note"] = str(ov["note"])[:500]
    if problems:
        raise ValueError(f"{spec.name}: invalid retrain request: " + "; ".join(problems))
    return out


# ---- records -------------------------------------------------------------------------------


def records_dir(store: Store, dataset: str, area: str = RETRAIN) -> str:
    """Where decisions are kept: ``retrain`` (the retrain DAG's) or ``bootstrap``."""
    return store.path("reports", dataset, area)


def record_path(store: Store, dataset: str, run_key: str, area: str = RETRAIN) -> str:
    return f"{records_dir(store, dataset, area)}/{hashlib.sha1(run_key.encode()).hexdigest()[:16]}.json"


def read_records(store: Store, dataset: str, area: str = RETRAIN) -> list[RetrainDecision]:
    """Every decision recorded for ``dataset`` (in ``area``), oldest first."""
    paths = store.list_files(records_dir(store, dataset, area), "*.json")
    out = [RetrainDecision.from_dict(store.read_json(p)) for p in paths]
    return sorted(out, key=lambda d: d.decided_at)


def find_record(store: Store, dataset: str, run_key: str, area: str = RETRAIN) -> RetrainDecision | None:
    path = record_path(store, dataset, run_key, area)
    return RetrainDecision.from_dict(store.read_json(path)) if store.exists(path) else None


def write_record(store: Store, decision: RetrainDecision, area: str = RETRAIN) -> str:
    path = record_path(store, decision.dataset, decision.run_key, area)
    store.write_json_atomic(path, decision.to_dict())
    return store.uri(path)


def finish(
    store: Store, dataset: str, run_key: str, status: str, area: str = RETRAIN, **details: Any
) -> RetrainDecision | None:
    """Record how a retrain that ran ended (promoted, rejected, failed, skipped)."""
    decision = find_record(store, dataset, run_key, area)
    if decision is None:
        return None
    decision.outcome = {"status": status, "finished_at": datetime.now(UTC).isoformat(), **details}
    write_record(store, decision, area)
    return decision
