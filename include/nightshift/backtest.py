"""Backtest: replay a range of landed days through the loop's own steps, in one process, under
three retraining policies, and compare the model each one would have served.

The steps are the ones the DAGs call (``ingest_partition``, ``score_step``,
``bootstrap_decide_step``, ``train_step``, ``gate_step``, ``decide_step``, ``monitor_step``,
``alert_step``, ``retrain_decide_step``), in the order the assets chain them each night:

1. the day's landing files are copied from the dataset's store and ingested (events, and the
   labels that arrived that day);
2. the day's events are scored by the champion (the score DAG on the *curated* event);
3. while there is no champion, the train DAG's automatic run: the bootstrap guard rail, then
   train (the first model is tuned) → gate → promote; a new champion scores the recent days
   that have no predictions (the score DAG on the *champion* event);
4. then, by policy:

   * ``never``: the first champion serves for ever;
   * ``daily``: every day a model is trained on the spec's window and always replaces the
     champion: it goes through the gate (which registers it, and picks the logistic baseline
     when that one wins the competition) but the verdict is recorded, not obeyed;
   * ``spec``: what the DAGs do: monitor (drift of the scored days, performance of the days
     whose labels landed), the alert policy (an alert passed on once per piece of evidence),
     the retrain guard rails, and on a retrain train → gate → promote (a borderline verdict
     meets no human: ``gate.review.on_timeout`` decides); with ``retrain.on_new_data:
     always``, also the train DAG on every day.

Up to the first champion the three policies are the same loop on the same data (training is
seeded): it runs once, and at the first promotion the store and the registry are forked into
one per policy. Each policy has its own store (``<out>/<policy>/store``, curated data hard
linked from the common one) and its own MLflow registry (``<out>/<policy>/mlflow.db``; run
artifacts in ``<out>/mlflow-artifacts``). The dataset's store is only read (its landing
files) and its registry is never opened: the tracking URI is set for each step and put back.

The *served AUC* of a day is the AUC of the predictions written for it with the day's labels
(evaluation only: the labels of the last ``label.delay_days`` days, landed after the range,
are ingested at the end for this and for nothing else). Labels that arrived in the first
``label.delay_days`` days of the range are about days before it and are not replayed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from nightshift.runner import DayResult, Reporter, ingest_day
from nightshift.spec import DatasetSpec, parse_dt
from nightshift.storage import Store
from nightshift.verdict import GateResult

log = logging.getLogger(__name__)

POLICIES = ("never", "daily", "spec")
TITLES = {"never": "never", "daily": "daily", "spec": "spec's policy"}
# a smaller (daily - never) gap in mean served AUC makes "the share of the gap recovered" noise
MIN_GAP = 0.01
MARKER = ".nightshift-backtest"
RESULT = "backtest.json"
PLOT = "backtest.png"
COMMON = "common"
ARTIFACTS = "mlflow-artifacts"


class BacktestError(ValueError):
    """The backtest cannot run as asked (nothing landed in the range); says why."""


class OutError(BacktestError):
    """``--out`` cannot be the backtest's folder (bad usage); says why."""


# ---- where each policy lives -------------------------------------------------------------


@dataclass
class Policy:
    """One policy's store, registry and what happened to it, day by day."""

    name: str
    root: Path
    artifacts: Path
    champion: str | None = None
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # day -> what happened
    last_alert: dict[str, Any] | None = None
    trainings: int = 0  # models trained after the first champion (rejected ones too)
    promotions: int = 0
    failures: list[str] = field(default_factory=list)
    _store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store((self.root / "store").as_uri())
        return self._store

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def note(self, day: date, event: dict[str, Any]) -> dict[str, Any]:
        self.events.setdefault(day.isoformat(), []).append(event)
        return event


@contextlib.contextmanager
def registry_of(policy: Policy) -> Iterator[None]:
    """MLflow pointed at ``policy``'s registry for the duration (the settings overridden, the
    environment untouched by this module); mlflow's process-wide URIs, and the copies of them it
    puts in the environment for its subprocesses, are put back after, whatever they were."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_URI
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from nightshift.settings import overridden

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mirrored = (
        (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_URI.get()),
        (MLFLOW_REGISTRY_URI, MLFLOW_REGISTRY_URI.get()),
    )
    try:
        with overridden(mlflow_tracking_uri=policy.tracking_uri, mlflow_artifacts=policy.artifacts.as_uri()):
            yield
    finally:
        mlflow.set_tracking_uri(saved[0])  # type: ignore[arg-type]
        registry_utils._registry_uri = saved[1]
        for var, value in mirrored:
            if value is None:
                var.unset()
            else:
                var.set(value)


def prepare_out(out: Path, source: Store) -> None:
    """Make ``out`` a fresh backtest folder: new, empty, or an earlier backtest's (replaced).
    Refuses a folder holding other files, and one inside the dataset's store or holding it."""
    out = out.resolve()
    if source.scheme == "file":
        root = Path(source.root).resolve()
        if out == root or root in out.parents or out in root.parents:
            raise OutError(
                f"--out {out} overlaps the dataset's store {root}: a backtest writes only in a "
                "folder of its own"
            )
    if out.exists() and not out.is_dir():
        raise OutError(f"--out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise OutError(
            f"--out {out} is not empty and is not an earlier backtest's folder (no {MARKER}): "
            "give a new or empty folder"
        )
    if out.exists():
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("a nightshift backtest's folder: replaced by the next backtest given it\n")


# ---- the landing files and the ingest ----------------------------------------------------


def _copy(source: Store, src: str, dest: Store, path: str) -> None:
    with source.open_input(src) as f, dest.open_output_atomic(path) as out:
        while block := f.read(8 << 20):
            out.write(block)


def land(source: Store, dest: Store, spec: DatasetSpec, kind: str, day: date) -> int:
    """Copy one day's landing folder of ``kind`` (its data files and the completion marker)
    from the dataset's store; the number of files copied."""
    src_dir = source.landing_dir(spec.name, kind, day)  # type: ignore[arg-type]
    names = list(source.list_files(src_dir))
    marker = spec.landing.complete_marker
    if marker and source.exists(f"{src_dir}/{marker}"):
        names.append(f"{src_dir}/{marker}")
    dest_dir = dest.landing_dir(spec.name, kind, day)  # type: ignore[arg-type]
    for src in names:
        _copy(source, src, dest, f"{dest_dir}/{src.rpartition('/')[2]}")
    return len(names)


def _files(root: Path) -> dict[str, int]:
    """Every file under ``root`` (relative path -> inode: a replaced file has a new one)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = os.lstat(p).st_ino
    return out


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def mirror(src_root: Path, before: dict[str, int], after: dict[str, int], dest_roots: Sequence[Path]) -> int:
    """Make what changed under ``src_root`` (``before`` -> ``after``) change the same way under
    each of ``dest_roots`` (new and replaced files hard linked: every write in a store is a new
    file renamed into place, never an edit). Returns the number of files changed."""
    changed = [rel for rel, ino in after.items() if before.get(rel) != ino]
    removed = [rel for rel in before if rel not in after]
    for dest in dest_roots:
        for rel in changed:
            _link(src_root / rel, dest / rel)
        for rel in removed:
            target = dest / rel
            if target.exists() or target.is_symlink():
                target.unlink()
            parent = target.parent
            while parent != dest and parent.exists() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return len(changed) + len(removed)


def fork(common: Policy, names: Sequence[str], out: Path) -> dict[str, Policy]:
    """One policy per name, each starting from ``common``'s store and registry as they are."""
    forked = {}
    for name in names:
        p = Policy(name, out / name, common.artifacts, champion=common.champion)
        shutil.copytree(common.root / "store", p.root / "store", copy_function=os.link, symlinks=True)
        src = sqlite3.connect(common.root / "mlflow.db")
        dst = sqlite3.connect(p.root / "mlflow.db")
        try:
            with dst:
                src.backup(dst)
        finally:
            src.close()
            dst.close()
        forked[name] = p
    return forked


# ---- the steps of one day ----------------------------------------------------------------


def _key(policy: Policy, what: str, day: date) -> str:
    return f"backtest/{policy.name}/{what}/{day.isoformat()}"


def _trigger(policy: Policy, what: str, day: date) -> str:
    return f"backtest: policy {policy.name}, {what} on {day}"


def score_days(policy: Policy, spec: DatasetSpec, days: list[date]) -> str | None:
    """``score_step`` on ``days`` (with the champion); the version, ``None`` without one."""
    from nightshift.steps.score import score_step

    if not days:
        return None
    return score_step(policy.store, spec, days).champion


def _review(spec: DatasetSpec, verdict: GateResult) -> dict[str, Any] | None:
    """A borderline verdict meets no human in a backtest: ``gate.review.on_timeout`` decides,
    as when nobody answers in time."""
    if not verdict.review or spec.gate.review is None:
        return None
    by_gate = spec.gate.review.on_timeout == "gate" and verdict.promote
    return {
        "needed": True,
        "decision": "approve" if by_gate else "reject",
        "by": "timeout",
        "comment": f"backtest: no human; gate.review.on_timeout={spec.gate.review.on_timeout}",
        "timed_out": True,
    }


def train_gate_promote(
    policy: Policy,
    spec: DatasetSpec,
    day: date,
    what: str,
    *,
    since: date | None = None,
    always_promote: bool = False,
) -> dict[str, Any]:
    """train → gate → promote (or reject) as the train and retrain DAGs chain them; with
    ``always_promote`` the gate's verdict is recorded but the model replaces the champion
    anyway (the *daily* policy). Returns the outcome: ``status`` promoted, rejected,
    not-trained (too little data) or failed, and the version and reasons."""
    from nightshift.features import FeatureError
    from nightshift.registry import RegistryError
    from nightshift.steps.gate import decide_step, gate_step
    from nightshift.steps.train import TrainRequest, train_step
    from nightshift.train import DeviceError, InsufficientData

    key = _key(policy, what, day)
    store = policy.store
    tags = {"run_type": "backtest", "triggered_by": f"backtest-{policy.name}"}
    try:
        trained = train_step(store, spec, key, TrainRequest(since=since), tags)
    except InsufficientData as exc:
        return {"status": "not-trained", "reason": str(exc)}
    except (DeviceError, FeatureError, ValueError) as exc:
        return {"status": "failed", "reason": f"train: {type(exc).__name__}: {exc}"}
    try:
        verdict = gate_step(store, spec, trained.run_id, key)
        gate_said = f"{'promote' if verdict.promote else 'reject'}: {verdict.reason}"
        result = verdict
        if always_promote and not verdict.promote:
            why = f"policy {policy.name}: promoted whatever the gate said (gate: {gate_said})"
            result = replace(verdict, promote=True, reason=why)
        event = decide_step(
            store,
            spec,
            result,
            actor=f"backtest-{policy.name}",
            trigger=_trigger(policy, what, day),
            review=None if always_promote else _review(spec, verdict),
            triggered_by=f"backtest-{policy.name}",
            run_key=key,
        )
    except (RegistryError, InsufficientData, FeatureError) as exc:
        return {"status": "failed", "reason": f"gate: {type(exc).__name__}: {exc}", "trained": True}
    promoted = event.action == "promote"
    if promoted:
        policy.champion = str(event.version)
    return {
        "status": "promoted" if promoted else "rejected",
        "version": str(event.version),
        "model_kind": verdict.model_kind,
        "gate": gate_said,
        "reason": event.reason,
        "window": trained.window,
        # the registered model's (the logistic baseline's when it won), on the challenger's holdout
        "holdout_auc": verdict.metrics.get("roc_auc"),
        "xgboost_holdout_auc": verdict.challenger_metrics.get("roc_auc"),
        "trained": True,
    }


def _after_promotion(policy: Policy, spec: DatasetSpec) -> list[str]:
    """The score DAG on the champion event: the recent days without predictions."""
    from nightshift.score import unscored_days

    days = unscored_days(policy.store, spec)
    score_days(policy, spec, days)
    return [d.isoformat() for d in days]


def bootstrap(policy: Policy, spec: DatasetSpec, day: date) -> dict[str, Any]:
    """The train DAG's automatic run while there is no champion: the bootstrap guard rail,
    then train → gate → promote; the outcome is recorded as the DAG records it."""
    from nightshift.retrain import BOOTSTRAP, finish
    from nightshift.steps.retrain import bootstrap_decide_step

    key = _key(policy, BOOTSTRAP, day)
    decision = bootstrap_decide_step(policy.store, spec, key, triggered_by=f"backtest-{policy.name}")
    event: dict[str, Any] = {"kind": BOOTSTRAP, "action": decision.action, "reason": decision.reason}
    if decision.action != "retrain":
        return policy.note(day, event)
    outcome = train_gate_promote(policy, spec, day, BOOTSTRAP)
    status = outcome["status"]
    details = {k: outcome[k] for k in ("version", "reason") if k in outcome}
    finish(policy.store, spec.name, key, status, BOOTSTRAP, **details)
    event["outcome"] = outcome
    if status == "promoted":
        event["scored"] = _after_promotion(policy, spec)
    return policy.note(day, event)


def daily(policy: Policy, spec: DatasetSpec, day: date) -> dict[str, Any]:
    """The *daily* policy's day: train on the window, and the model serves from tomorrow."""
    outcome = train_gate_promote(policy, spec, day, "daily", always_promote=True)
    if outcome.get("trained"):
        policy.trainings += 1
    if outcome["status"] == "promoted":
        policy.promotions += 1
        _after_promotion(policy, spec)
    return policy.note(day, {"kind": "daily", "action": "retrain", "reason": "every day", "outcome": outcome})


def monitor_and_retrain(policy: Policy, spec: DatasetSpec, day: date) -> None:
    """The monitor DAG (reports, then the alert policy) and, on a new alert, the retrain DAG
    (guard rails, train → gate → promote, the outcome recorded)."""
    from nightshift import retrain
    from nightshift.monitor import MonitoringError
    from nightshift.registry import RegistryError
    from nightshift.steps.monitor import alert_step, monitor_step
    from nightshift.steps.retrain import retrain_decide_step

    store = policy.store
    try:
        monitor_step(store, spec, as_of=day)
        alert = alert_step(store, spec)
    except (MonitoringError, FileNotFoundError, RegistryError) as exc:
        policy.failures.append(f"{day}: monitor: {exc}")
        policy.note(day, {"kind": "monitor", "action": "failed", "reason": f"{type(exc).__name__}: {exc}"})
        return
    if alert is None:
        return
    seen = {"version": alert.version, "kind": alert.kind, "dt": alert.dt, "onset": alert.onset}
    if seen == policy.last_alert:  # run_alert emits an alert once per piece of evidence
        return
    policy.last_alert = seen
    key = _key(policy, "retrain", day)
    decision = retrain_decide_step(store, spec, key, [alert], triggered_by=f"backtest-{policy.name}")
    event: dict[str, Any] = {
        "kind": "alert",
        "alert": alert.kind,
        "onset": alert.onset,
        "alert_reason": alert.reason,
        "action": decision.action,
        "reason": decision.reason,
    }
    policy.note(day, event)
    if decision.action != "retrain":
        return
    since = parse_dt(decision.since) if decision.since else None
    outcome = train_gate_promote(policy, spec, day, "retrain", since=since)
    details = {k: outcome[k] for k in ("version", "reason") if k in outcome}
    retrain.finish(store, spec.name, key, outcome["status"], **details)
    event["outcome"] = outcome
    if outcome.get("trained"):
        policy.trainings += 1
    if outcome["status"] == "promoted":
        policy.promotions += 1
        _after_promotion(policy, spec)


def policy_day(policy: Policy, spec: DatasetSpec, day: date, curated: bool) -> None:
    """One day of a policy once the first champion serves."""
    scored = curated and score_days(policy, spec, [day]) is not None
    if policy.name == "daily":
        daily(policy, spec, day)
    elif policy.name == "spec":
        if curated and spec.retrain.on_new_data == "always":  # the train DAG on every new batch
            outcome = train_gate_promote(policy, spec, day, "new-data")
            why = "retrain.on_new_data: always"
            policy.note(day, {"kind": "new-data", "action": "retrain", "reason": why, "outcome": outcome})
            if outcome.get("trained"):
                policy.trainings += 1
            if outcome["status"] == "promoted":
                policy.promotions += 1
                scored = bool(_after_promotion(policy, spec)) or scored
        if scored:  # the monitor DAG runs on new predictions
            monitor_and_retrain(policy, spec, day)


# ---- the replay --------------------------------------------------------------------------


def _curated(store: Store, spec: DatasetSpec, day: date) -> bool:
    return store.exists(store.published_file(spec.name, "events", day))


# long: the day loop of the three policies side by side, each day's steps in order
def run(
    source: Store,
    spec: DatasetSpec,
    days: Sequence[date],
    out: Path,
    reporter: Reporter,
    policies: Sequence[str] = POLICIES,
) -> dict[str, Any]:
    """Replay ``days`` (consecutive, oldest first) of ``spec``'s landed files in ``source``
    under ``policies``; writes ``backtest.json`` and ``backtest.png`` into ``out`` and returns
    the result (what ``backtest.json`` holds)."""
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown or not policies:
        raise BacktestError(f"unknown policy {', '.join(unknown) or '(none)'}: known {', '.join(POLICIES)}")
    if not days:
        raise BacktestError("no days to replay")
    first, last = days[0], days[-1]
    if not any(source.list_files(source.landing_dir(spec.name, "events", d)) for d in days):
        where = source.uri(source.path("landing", spec.name, "events"))
        raise BacktestError(
            f"no events landed for {spec.name} in {where} from {first} to {last}: nothing to replay"
        )
    t0 = time.perf_counter()
    out = out.resolve()
    prepare_out(out, source)
    delay = timedelta(days=spec.label.delay_days)
    common = Policy(COMMON, out / COMMON, out / ARTIFACTS)
    (common.root / "store").mkdir(parents=True)
    common.artifacts.mkdir()
    work = out / "tmp"
    forked: dict[str, Policy] = {}
    fork_day: date | None = None
    no_model: str | None = None
    ingests: dict[str, dict[str, Any]] = {}
    timings = {"ingest_s": 0.0, **{f"{p}_s": 0.0 for p in (COMMON, *policies)}}

    def ingest(day: date, kinds: tuple[str, ...]) -> DayResult:
        t = time.perf_counter()
        shared = common.store
        before = _files(common.root / "store") if forked else {}
        for k in kinds:
            land(source, shared, spec, k, day)
        result = ingest_day(shared, spec, day, kinds, work_dir=work)  # type: ignore[arg-type]
        # a missing or incomplete landing folder is the dataset's, not the copy's: name that one
        copy, real = shared.uri(shared.path("landing")), source.uri(source.path("landing"))
        result = DayResult(result.day, result.status, result.message.replace(copy, real))
        if forked:
            after = _files(common.root / "store")
            mirror(common.root / "store", before, after, [p.root / "store" for p in forked.values()])
        timings["ingest_s"] += time.perf_counter() - t
        return result

    reporter.start(len(days), f"backtest {spec.name}")
    try:
        for day in days:
            reporter.step(f"{day}: ingest")
            # labels arriving in the first delay days are about days before the range
            kinds: tuple[str, ...] = ("events", "labels") if day - delay >= first else ("events",)
            landed = ingest(day, kinds)
            ingests[day.isoformat()] = {"status": landed.status, "message": landed.message}
            curated = _curated(common.store, spec, day)
            if not forked:
                t = time.perf_counter()
                reporter.step(f"{day}: bootstrap")
                if curated:  # the train DAG runs on the curated event
                    with registry_of(common):
                        bootstrap(common, spec, day)
                if common.champion is not None:
                    fork_day = day
                    forked = fork(common, policies, out)
                timings[f"{COMMON}_s"] += time.perf_counter() - t
                if "spec" in forked:  # the new champion's predictions reach the monitor
                    t = time.perf_counter()
                    with registry_of(forked["spec"]):
                        monitor_and_retrain(forked["spec"], spec, day)
                    timings["spec_s"] += time.perf_counter() - t
            else:
                for p in forked.values():
                    t = time.perf_counter()
                    reporter.step(f"{day}: {p.name}")
                    with registry_of(p):
                        policy_day(p, spec, day, curated)
                    timings[f"{p.name}_s"] += time.perf_counter() - t
            reporter.done(DayResult(day, landed.status, _progress(day, landed, common, forked)))
        if not forked:
            no_model = _no_model(spec, common, source, days)
        # evaluation only: the labels of the last days, landed after the range
        late = []
        for i in range(1, spec.label.delay_days + 1):
            arrival = last + timedelta(days=i)
            if source.list_files(source.landing_dir(spec.name, "labels", arrival)):
                late.append({"day": arrival.isoformat(), **ingest(arrival, ("labels",)).__dict__})
    finally:
        reporter.close()
    result = summarize(spec, source, days, out, common, forked, fork_day, ingests, late, no_model, policies)
    result["timings"] = {k: round(v, 1) for k, v in timings.items()} | {
        "total_s": round(time.perf_counter() - t0, 1)
    }
    result = _finite(result)
    (out / RESULT).write_text(json.dumps(result, indent=2, default=str, allow_nan=False))
    plot(result, out / PLOT, spec.alerts.drift_share)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (an AUC of a one-class day, say) made ``None``:
    ``backtest.json`` is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _progress(day: date, ingest: DayResult, common: Policy, forked: dict[str, Policy]) -> str:
    """The progress line of a day: the ingest, then what each policy did."""
    parts = [ingest.message]
    parts += [event_text(e) for e in common.events.get(day.isoformat(), [])]
    for p in forked.values():
        for e in p.events.get(day.isoformat(), []):
            text = event_text(e)
            parts.append(text if text.startswith(f"{p.name}: ") else f"{p.name}: {text}")
    return "; ".join(parts)


def event_text(e: dict[str, Any]) -> str:
    """One thing a policy did on a day, in a line: ``bootstrap: v1 promoted: <why>``,
    ``drift alert (onset D) -> skip: <why>``, ``daily: not-trained: <why>``..."""
    o = e.get("outcome") or {}
    if o.get("status"):
        v = f"v{o['version']} " if o.get("version") else ""
        reason = str(o.get("reason", ""))
        # the registry's reasons start with the action ("promoted: roc_auc ...")
        reason = reason.removeprefix(f"{o['status']}: ")
        done = f"{v}{o['status']}: {reason}"
    else:
        done = ""
    if e["kind"] == "alert":
        head = f"{e['alert']} alert (onset {e['onset']}) -> {e['action']}: {e['reason']}"
        return f"{head} => {done}" if done else head
    if e["kind"] == "monitor":
        return f"monitor failed: {e['reason']}"
    if e["action"] != "retrain":
        return f"{e['kind']}: skip: {e['reason']}"
    return f"{e['kind']}: {done}"


# ---- the result --------------------------------------------------------------------------


def _served(store: Store, spec: DatasetSpec, days: Sequence[date]) -> dict[str, dict[str, Any]]:
    """Per day: the version that scored it and its AUC with the day's labels (every label
    that landed; the latest arrival of an id wins)."""
    import numpy as np
    import pyarrow.parquet as pq

    from nightshift.evaluate import metrics
    from nightshift.features import labels as label_array
    from nightshift.score import MODEL_VERSION, SCORE
    from nightshift.train import read_labels

    arrivals = store.list_partitions(store.path("labels", spec.name))
    paths = [store.published_file(spec.name, "labels", a) for a in arrivals]
    present = [p for p in paths if store.exists(p)]
    all_labels = read_labels(store, spec, present) if present else None
    out: dict[str, dict[str, Any]] = {}
    for day in days:
        path = store.predictions_file(spec.name, day)
        if not store.exists(path):
            continue
        preds = pq.read_table(store.open_input(path), columns=[spec.id_column, SCORE, MODEL_VERSION])
        versions = sorted({str(v) for v in preds.column(MODEL_VERSION).unique().to_pylist()})
        row: dict[str, Any] = {
            "version": ",".join(versions),
            "rows": preds.num_rows,
            "labelled": 0,
            "auc": None,
        }
        if all_labels is not None:
            joined = preds.join(all_labels, keys=spec.id_column, join_type="inner")
            if joined.num_rows:
                y = label_array(joined, spec)
                auc = metrics(y, np.asarray(joined.column(SCORE).to_numpy(), dtype=np.float64))["roc_auc"]
                row.update(labelled=joined.num_rows, auc=None if math.isnan(auc) else auc)
        out[day.isoformat()] = row
    return out


def _no_model(spec: DatasetSpec, common: Policy, source: Store, days: Sequence[date]) -> str:
    """Why no first champion came out of the range (said the same for every policy)."""
    from nightshift.train import labelled_days

    first, last = days[0], days[-1]
    outcomes = [e["outcome"] for es in common.events.values() for e in es if e.get("outcome")]
    by = {s: [o for o in outcomes if o["status"] == s] for s in ("rejected", "failed", "not-trained")}
    if not labelled_days(common.store, spec):
        n = spec.label.delay_days
        why = (
            f"labels arrive {n} day(s) after their events, so {len(days)} day(s) have none"
            if len(days) <= n
            else f"no labels were published for the events of {first}..{last - timedelta(days=n)} "
            f"(from {source.uri(source.path('landing', spec.name, 'labels'))})"
        )
        return f"no model: no labelled days in {first}..{last}: {why}"
    if by["rejected"]:
        o = by["rejected"][-1]
        return (
            f"no model: the gate rejected every first model ({len(by['rejected'])} attempt(s)); "
            f"the last, v{o['version']}: {o.get('gate') or o['reason']}"
        )
    if by["failed"]:
        n, last_reason = len(by["failed"]), by["failed"][-1]["reason"]
        return f"no model: training failed ({n} attempt(s)); the last: {last_reason}"
    if by["not-trained"]:
        last_reason = by["not-trained"][-1]["reason"]
        return f"no model: too little labelled data for a first model; the last attempt: {last_reason}"
    return "no model: no training ran (no day's events were published)"


def compare(rows: list[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Mean served AUC per policy over the days every policy served with landed labels, and
    the share of the (daily - never) gap the spec's policy recovers: ``(spec - never) /
    (daily - never)``, undefined (``None``, and ``gap_note`` says why) when the gap is below
    :data:`MIN_GAP` or a policy is missing."""
    compared = [r["day"] for r in rows if all(r["policies"][n]["served_auc"] is not None for n in names)]
    means: dict[str, float | None] = {
        n: sum(r["policies"][n]["served_auc"] for r in rows if r["day"] in compared) / len(compared)
        if compared
        else None
        for n in names
    }
    out: dict[str, Any] = {
        "compared_days": [compared[0], compared[-1]] if compared else None,
        "n_compared_days": len(compared),
        "mean_served_auc": means,
        "no_model": {},
        "gap": None,
        "gap_recovered": None,
        "gap_note": None,
    }
    never, daily, spec = means.get("never"), means.get("daily"), means.get("spec")
    if not compared:
        out["gap_note"] = "undefined: no day was served by every policy with its labels landed"
    elif never is None or daily is None or spec is None:
        out["gap_note"] = "undefined: it needs the three policies (never, daily, spec)"
    else:
        gap = daily - never
        out["gap"] = gap
        if abs(gap) < MIN_GAP:
            out["gap_note"] = (
                f"undefined: retraining every day moves the mean served AUC by {gap:+.4f} "
                f"(|gap| < {MIN_GAP}): there is no gap to recover"
            )
        else:
            out["gap_recovered"] = (spec - never) / gap
    return out


# long: builds the printed summary field by field, in the order it is printed
def summarize(
    spec: DatasetSpec,
    source: Store,
    days: Sequence[date],
    out: Path,
    common: Policy,
    forked: dict[str, Policy],
    fork_day: date | None,
    ingests: dict[str, dict[str, Any]],
    late: list[dict[str, Any]],
    no_model: str | None,
    names: Sequence[str],
) -> dict[str, Any]:
    """The result: per day and policy what served and how well, and the comparison."""
    from nightshift.monitor import read_history

    served = {n: _served(forked[n].store, spec, days) if forked else {} for n in names}
    drift: dict[str, dict[str, Any]] = {}
    if "spec" in forked:
        for r in read_history(forked["spec"].store, spec.name):
            drift.setdefault(r["dt"], {})[str(r["version"])] = r
    common_days = {d: es for d, es in common.events.items()}
    rows = []
    for day in days:
        d = day.isoformat()
        # the days before the first champion were scored later, by the catch-up: not served
        serving = fork_day is not None and day >= fork_day
        spec_version = served.get("spec", {}).get(d, {}).get("version")
        h = drift.get(d, {}).get(spec_version or "", {}) if serving else {}
        share = h.get("drift_share")
        row: dict[str, Any] = {
            "day": d,
            "ingest": ingests.get(d),
            "drift_share": share if share is not None and not math.isnan(share) else None,
            "drifting": h.get("drifting"),
            "bootstrap": common_days.get(d, []),
            "policies": {},
        }
        for n in names:
            s = served[n].get(d, {}) if serving else {}
            events = forked[n].events.get(d, []) if forked else []
            row["policies"][n] = {
                "version": s.get("version"),
                "served_auc": s.get("auc"),
                "labelled_rows": s.get("labelled", 0),
                "events": events,
            }
        rows.append(row)
    summary = compare(rows, names)
    summary["retrains"] = {n: forked[n].trainings if forked else 0 for n in names}
    summary["promotions"] = {n: forked[n].promotions if forked else 0 for n in names}
    if not forked:
        summary["no_model"] = {n: no_model or "no model" for n in names}
    first_champion = None
    if fork_day is not None:
        boot = [
            e for e in common.events.get(fork_day.isoformat(), []) if (e.get("outcome") or {}).get("status")
        ]
        o = boot[-1]["outcome"] if boot else {}
        first_champion = {"day": fork_day.isoformat(), "version": common.champion, **o}
    quarantined = [d for d, i in ingests.items() if i and i["status"] == "quarantined"]
    failed = [d for d, i in ingests.items() if i and i["status"] == "failed"]
    return {
        "dataset": spec.name,
        "from": days[0].isoformat(),
        "to": days[-1].isoformat(),
        "source": source.url,
        "out": str(out),
        "policies": list(names),
        "label_delay_days": spec.label.delay_days,
        "first_champion": first_champion,
        "days": rows,
        "late_labels": late,
        "quarantined_days": quarantined,
        "failed_days": failed,
        "failures": {n: forked[n].failures for n in forked},
        "summary": summary,
        "stores": {n: str(forked[n].root) for n in forked} or {COMMON: str(common.root)},
    }


# ---- the output --------------------------------------------------------------------------


def _num(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def format_table(result: dict[str, Any]) -> str:
    """The day-by-day table: drift share (the spec policy's champion), the served version and
    AUC of each policy, and what was trained that day and why."""
    names = result["policies"]
    head = f"{'day':<11} {'drift':>6}  " + "  ".join(f"{TITLES[n]:>15}" for n in names) + "  retrains"
    lines = [head, "-" * len(head)]
    for r in result["days"]:
        share = r["drift_share"]
        drift = "-" if share is None else f"{share:.2f}" + ("*" if r["drifting"] else " ")
        cells = []
        for n in names:
            p = r["policies"][n]
            cell = "-" if not p["version"] else f"v{p['version']} {_num(p['served_auc'], '.3f')}"
            cells.append(f"{cell:>15}")
        what = [event_text(e) for e in r["bootstrap"]]
        for n in names:
            for e in r["policies"][n]["events"]:
                if n == "daily" and (e.get("outcome") or {}).get("status") == "promoted":
                    continue  # every day: shown in its column
                text = event_text(e)
                what.append(text if text.startswith(f"{n}: ") else f"{n}: {text}")
        if r["ingest"] and r["ingest"]["status"] in ("quarantined", "failed"):
            what.insert(0, f"ingest {r['ingest']['status']}: {r['ingest']['message']}")
        lines.append(f"{r['day']:<11} {drift:>6}  " + "  ".join(cells) + "  " + " | ".join(what))
    lines.append(
        "drift: the importance-weighted share of drifted features against the reference of the model "
        "the spec's policy served (* drifting: share >= alerts.drift_share or the prediction drifted; "
        "- no verdict: fewer rows than monitoring.min_rows, or no model yet); vN AUC: the version that "
        "scored the day and its AUC with the day's labels"
    )
    return "\n".join(lines)


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The summary under the table: mean served AUC and retrains per policy, the gap."""
    s, names = result["summary"], result["policies"]
    out = []
    if s["no_model"]:
        for n in names:
            out.append(f"{TITLES[n]}: {s['no_model'][n]}")
        return out
    fc = result["first_champion"]
    out.append(f"first champion: v{fc['version']} on {fc['day']} (all policies start from it)")
    if s["compared_days"]:
        a, b = s["compared_days"]
        out.append(
            f"compared: {s['n_compared_days']} day(s) {a}..{b} served by every policy, with their labels"
        )
    means = " | ".join(f"{TITLES[n]} {_num(s['mean_served_auc'][n])}" for n in names)
    out.append(f"mean served AUC: {means}")
    if s["gap_recovered"] is not None:
        share, gap = s["gap_recovered"], s["gap"]
        out.append(f"gap recovered by the spec's policy: {share:.0%} of (daily - never) = {gap:+.4f}")
    elif s["gap_note"]:
        out.append(f"gap recovered by the spec's policy: {s['gap_note']}")
    retrains = " | ".join(f"{TITLES[n]} {s['retrains'][n]} ({s['promotions'][n]} promoted)" for n in names)
    out.append(f"retrains: {retrains}")
    return out


def plot(result: dict[str, Any], path: Path, threshold: float) -> Path:
    """Served AUC per policy over the days, and the spec policy's drift share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [date.fromisoformat(r["day"]) for r in result["days"]]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), dpi=100, sharex=True)
    for n, style in zip(result["policies"], ("-", "--", "-"), strict=False):
        pts = [(d, r["policies"][n]["served_auc"]) for d, r in zip(days, result["days"], strict=True)]
        pts = [(d, v) for d, v in pts if v is not None]
        if pts:
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=".", label=TITLES[n])
    for d, r in zip(days, result["days"], strict=True):
        for e in r["policies"].get("spec", {}).get("events", []):
            if (e.get("outcome") or {}).get("status") == "promoted":
                ax1.axvline(d, color="tab:green", linewidth=2, alpha=0.5)
    if result["first_champion"]:
        ax1.axvline(date.fromisoformat(result["first_champion"]["day"]), color="gray", linestyle=":")
    ax1.set_ylabel("served AUC (day's labels)")
    ax1.set_title(
        f"backtest {result['dataset']} {result['from']}..{result['to']}: the model each policy served"
    )
    if ax1.lines:
        ax1.legend(loc="lower left")
    shares = [r["drift_share"] or 0.0 for r in result["days"]]
    colors = ["tab:red" if r["drifting"] else "tab:blue" for r in result["days"]]
    ax2.bar(days, shares, color=colors, width=0.8)
    ax2.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"alert threshold {threshold}")
    ax2.set_ylabel("drift share (spec's champion)")
    ax2.set_ylim(0, 1)
    ax2.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
