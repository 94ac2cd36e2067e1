"""Orchestration overhead: one nightly cycle through Airflow vs the same core calls in one process.

The cycle of one day ("day 7") of the demo dataset: ingest the day's events and the labels that
land that day (GX validation), score the day with the champion, train on the window (retraining
on new data), gate, promote or reject, monitor (Evidently drift of the day, performance of the
day whose labels landed) and the alert policy. The same cycle runs twice on identical inputs:

* **A, in one process**: a fresh interpreter imports everything the steps need (timed apart,
  per library) and then calls ``ingest_partition`` (events, labels), ``score_step``,
  ``train_step``, ``gate_step``, ``serving_check_step``, ``decide_step``, ``monitor_step`` and
  ``alert_step`` in that order. **A's clock** runs inside the process from after the imports to
  the last call's end: interpreter start-up, the imports and exit are reported, not charged.
* **B, through Airflow**: dag-processor, scheduler (LocalExecutor, parallelism 2, the demo's
  ``[scheduler] mp_start_method=forkserver`` + ``mp_forkserver_preload=nightshift.airflow.preload``)
  and api-server on 127.0.0.1 with their own SQLite metadata DB (``nightshift_dev.stack``);
  ``nightshift_ingest/score/train/monitor`` unpaused (``nightshift_retrain`` stays paused), then
  ``nightshift_ingest.payments`` triggered with ``{"dt": day 7}``. **B's clock** runs from the
  trigger until every one of those DAGs is idle (no queued or running run, no queued Asset event;
  the first of two idle polls, every 2 s). Before it, untimed, as a long-running deployment: the
  stack starts, and a warm-up run re-ingests day 0 (same bytes, no labels due) while the
  consumers are paused, so the forkserver has imported the preload and the workers are up.
  Each task's start and end come from the REST API, and its log splits it into Airflow's
  pre/post-execute and the execute part (the task body: the core call). **Per-task overhead** =
  the task's wall less its execute part (goal: median <= 1.5 s over all tasks of all pairs).

``--pairs N`` (default 3) runs A1 B1 A2 B2 ..., each arm from its own fresh copy of the prepared
state and each B on a freshly started stack; the ratio B / A per pair, its median and spread.
**Outside load** is measured during each arm's clock: the mean cores busy (``/proc/stat``) less
the arm's own CPU (A: its process and children; B: this driver and the stack's process sessions,
the tasks they fork included). The header names the commit (``+dirty`` when tracked files differ)
and a fingerprint of the measured modules.

The benchmark spec is ``datasets/payments.yaml`` with a 3-day window (1 train, 1 validation,
1 holdout day), at most 100 rounds and ``retrain.on_new_data: always``, written to a scratch
datasets folder (``NIGHTSHIFT_DATASETS_DIR``). Days 0..7 are generated into the landing area of a
scratch store at ``--rows`` a day; days 0..6 are ingested (labels arrive 3 days later), a first
model is trained on them, gated and promoted, days 0..6 are scored and monitored, all with core
calls and untimed. That state (store + MLflow SQLite DB + artifacts) is copied aside, and each arm
starts from its own fresh copy of it, at the same paths, so both see byte-identical inputs.

It prints each pair, the median ratio (goal <= 1.15 at 4,000 and at 1M rows a day), the
per-task overhead, the drift step's time / the training step's (goal <= 0.1), each with
PASS/MISS, and the details of the median pair; it never fails on a number (benchmarks report).

    python bench/overhead.py --rows 4000            # 3 pairs (~15 min on 2 shared cores)
    python bench/overhead.py                        # 1M rows a day (~15-20 min a pair)
    python bench/overhead.py --rows 2000 --pairs 1  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import harness
from harness import REPO, Result, code_fingerprint, gib, git_commit, verdict, worker_main

P = ParamSpec("P")
R = TypeVar("R")

# the workers of arm A time their imports: nothing of nightshift's at this module's top
if TYPE_CHECKING:
    from nightshift_dev.client import AirflowClient

SPEC_PATH = REPO / "datasets" / "payments.yaml"
DATASET = "payments"
START = date(2024, 3, 1)
PREP_DAYS = 7  # days 0..6 make the initial state; day 7 is the measured cycle
SEED = 42
RUN_KEY_A = "bench/overhead/in-process"
DAG_KINDS = ("ingest", "score", "train", "monitor")  # unpaused; nightshift_retrain stays paused
OTHER_WORK = "scripts/step_days.py|bench/loop.py|pytest|airflow scheduler"

# goals of the issue
GOAL_AIRFLOW_VS_PROCESS = 1.15  # wall ratio at 1M rows a day, lower is better
GOAL_DRIFT_VS_TRAIN = 0.1  # time ratio, lower is better
GOAL_TASK_OVERHEAD_S = 1.5  # median per task: its wall less its execute part

# (step, DAG kind, task id): what each core call of arm A is in arm B
STEPS: tuple[tuple[str, str, str], ...] = (
    ("ingest events (GX)", "ingest", "ingest_events"),
    ("ingest labels (GX)", "ingest", "ingest_labels"),
    ("score", "score", "score"),
    ("train", "train", "train"),
    ("gate", "train", "gate"),
    ("serving check", "train", "serving_check"),
    ("promote / reject", "train", "promote"),
    ("monitor", "monitor", "monitor"),
    ("alert", "monitor", "alert"),
)

# what the tasks import, each group alone in a fresh interpreter (what every task that needs it pays)
IMPORT_GROUPS: dict[str, list[str]] = {
    "great_expectations": ["great_expectations"],
    "evidently": ["evidently", "evidently.presets", "evidently.metrics"],
    "mlflow (+ pyfunc)": ["mlflow", "mlflow.pyfunc"],
    "xgboost": ["xgboost"],
    "sklearn (gate baseline)": ["sklearn.linear_model", "sklearn.metrics"],
    "matplotlib.pyplot": ["matplotlib.pyplot"],
    "pandas + pyarrow": ["pandas", "pyarrow.parquet"],
    "airflow.sdk": ["airflow.sdk"],
}
# the order arm A imports everything once (before its first call; timed, reported apart)
IMPORT_ORDER: tuple[tuple[str, list[str]], ...] = (
    (
        "pandas + pyarrow + nightshift core",
        [
            "pandas",
            "pyarrow.parquet",
            "nightshift.steps.train",
            "nightshift.steps.gate",
            "nightshift.steps.monitor",
        ],
    ),
    ("great_expectations", ["great_expectations", "nightshift.validate", "nightshift.ingest"]),
    ("mlflow (+ pyfunc)", ["mlflow", "mlflow.pyfunc", "nightshift.registry", "nightshift.model"]),
    ("xgboost", ["xgboost", "nightshift.train"]),
    ("sklearn", ["sklearn.linear_model", "sklearn.metrics", "nightshift.evaluate"]),
    ("matplotlib.pyplot", ["matplotlib.pyplot"]),
    ("evidently", ["evidently", "evidently.presets", "evidently.metrics", "nightshift.monitor"]),
)


# ---- workers (each runs in its own fresh interpreter) ----------------------------------------
def _spec_and_store() -> tuple[Any, Any]:
    from nightshift.spec import find_spec
    from nightshift.storage import Store

    return find_spec(DATASET), Store()


def w_prep(a: Result) -> Result:
    """The initial state, with core calls: days 0..7 landed, days 0..6 ingested, a first model
    trained, gated and promoted, days 0..6 scored and monitored."""
    from nightshift.demo.datagen import Scenario, generate
    from nightshift.ingest import ingest_partition
    from nightshift.steps.gate import decide_step, gate_step
    from nightshift.steps.monitor import alert_step, monitor_step
    from nightshift.steps.score import score_step
    from nightshift.steps.train import train_step

    spec, store = _spec_and_store()
    start, n = date.fromisoformat(a["start"]), int(a["prep_days"])
    days = [start + timedelta(days=i) for i in range(n)]
    out: Result = {}

    def timed(name: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        out[name] = time.perf_counter() - t0
        print(f"    prep: {name} {out[name]:.1f} s", file=sys.stderr, flush=True)
        return result

    timed("generate", generate, store, spec, start, n + 1, int(a["rows"]), SEED, Scenario())
    for d in days:
        timed(f"ingest events {d}", ingest_partition, store, spec, "events", d)
    for d in days[spec.label.delay_days :]:
        timed(f"ingest labels {d}", ingest_partition, store, spec, "labels", d)
    key = "bench/overhead/champion"
    trained = timed("train", train_step, store, spec, key)
    verdict_ = timed("gate", gate_step, store, spec, trained.run_id, key)
    timed("promote", decide_step, store, spec, verdict_, actor="bench", trigger="bench/overhead prep")
    if not verdict_.promote:
        raise RuntimeError(f"the first model was not promoted: {verdict_.reason}")
    timed("score", score_step, store, spec, days)
    timed("monitor", monitor_step, store, spec)
    timed("alert", alert_step, store, spec)
    return {
        "seconds": out,
        "champion": verdict_.version,
        "champion_window": trained.window,
        # the version's own holdout AUC: the logistic baseline's when it competed and won
        "champion_auc": verdict_.metrics.get("roc_auc", verdict_.challenger_metrics.get("roc_auc")),
        "champion_kind": verdict_.model_kind,
        "champion_reason": verdict_.reason,
    }


def w_import(a: Result) -> Result:
    """Import one group of modules in a fresh interpreter; the seconds it took."""
    import importlib

    t0 = time.perf_counter()
    for m in a["modules"]:
        importlib.import_module(m)
    return {"seconds": time.perf_counter() - t0}


def w_noop(a: Result) -> Result:
    return {}


def w_cycle(a: Result) -> Result:
    """Arm A: the day's cycle as core calls in this one (fresh) interpreter."""
    import importlib

    entered = time.time()
    phases: list[Result] = []
    t_start = time.perf_counter()
    for name, modules in IMPORT_ORDER:
        t0 = time.perf_counter()
        for m in modules:
            importlib.import_module(m)
        phases.append({"phase": f"import {name}", "seconds": time.perf_counter() - t0, "kind": "import"})

    import nightshift.monitor as nmon
    from nightshift.ingest import ingest_partition
    from nightshift.steps.gate import decide_step, gate_step, serving_check_step
    from nightshift.steps.monitor import alert_step, monitor_step
    from nightshift.steps.score import score_step
    from nightshift.steps.train import train_step

    # the Evidently part of monitor_step: the report run and its HTML/JSON rendering
    evidently: Result = {"drift_s": 0.0, "render_s": 0.0, "days": 0}
    drift = nmon.drift

    def timed_render(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                evidently["render_s"] += time.perf_counter() - t0

        return run

    def timed_drift(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        result, snapshot = drift(*args, **kwargs)
        evidently["drift_s"] += time.perf_counter() - t0
        evidently["days"] += 1
        cls = type(snapshot)
        if not getattr(cls, "_bench_timed", False):
            cls.save_html = timed_render(cls.save_html)
            cls.json = timed_render(cls.json)
            cls._bench_timed = True
        return result, snapshot

    nmon.drift = timed_drift

    # the clock: from here (interpreter start, imports done) to the last call's end
    imports_s = time.perf_counter() - t_start
    load = harness.OutsideLoad()
    load.start()
    t_clock = time.perf_counter()
    spec, store = _spec_and_store()
    day = date.fromisoformat(a["day"])
    results: Result = {}

    def step(name: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        phases.append({"phase": name, "seconds": time.perf_counter() - t0, "kind": "step"})
        return out

    ev = step("ingest events (GX)", ingest_partition, store, spec, "events", day)
    lb = step("ingest labels (GX)", ingest_partition, store, spec, "labels", day)
    results["ingested_rows"] = {"events": ev.rows, "labels": lb.rows}
    scored = step("score", score_step, store, spec, [day])
    results["scored"] = [asdict(s) for s in scored.scored]
    trained = step("train", train_step, store, spec, RUN_KEY_A)
    results["trained"] = asdict(trained)
    gated = step("gate", gate_step, store, spec, trained.run_id, RUN_KEY_A)
    kept = ("version", "promote", "reason", "champion", "challenger_metrics")
    results["gate"] = {k: getattr(gated, k) for k in kept}
    checked = step("serving check", serving_check_step, store, spec, gated)
    results["serving"] = (checked.serving or {}).get("detail")
    decided = step(
        "promote / reject", decide_step, store, spec, checked, actor="bench", trigger="bench/overhead"
    )
    results["decision"] = decided.action
    monitored = step("monitor", monitor_step, store, spec)
    results["monitor"] = {
        "drift": [
            {k: getattr(d, k) for k in ("dt", "version", "drift_share", "drifting")} for d in monitored.drift
        ],
        "performance": [asdict(p) for p in monitored.performance],
    }
    alert = step("alert", alert_step, store, spec)
    clock_s = time.perf_counter() - t_clock
    results["alert"] = asdict(alert) if alert else None
    return {
        "entered": entered,
        "left": time.time(),
        "inside_s": time.perf_counter() - t_start,
        "imports_s": imports_s,
        "clock_s": clock_s,
        "load": load.stop(),
        "phases": phases,
        "evidently": evidently,
        **results,
    }


WORKERS: dict[str, Callable[[Result], Result]] = {
    "prep": w_prep,
    "import": w_import,
    "noop": w_noop,
    "cycle": w_cycle,
}


# ---- the driver (stays small: no pyarrow, no mlflow) -----------------------------------------
@dataclass
class Paths:
    root: Path

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def live(self) -> Path:
        """Where an arm runs: its store, MLflow DB and artifacts, state dir (same paths for both)."""
        return self.root / "live"

    @property
    def snapshot(self) -> Path:
        return self.root / "initial-state"

    @property
    def airflow(self) -> Path:
        return self.root / "airflow"


def write_spec(paths: Paths) -> Result:
    """The benchmark spec: the demo's, with a small window and retraining on every new day."""
    import yaml

    spec = dict(yaml.safe_load(SPEC_PATH.read_text()))
    spec["training"] = {
        **spec["training"],
        "window_days": 3,
        "validation_days": 1,
        "holdout_days": 1,
        "num_boost_round": 100,
    }
    spec["retrain"] = {**spec.get("retrain", {}), "on_new_data": "always"}
    paths.datasets.mkdir(parents=True, exist_ok=True)
    (paths.datasets / f"{DATASET}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec


def arm_env(paths: Paths) -> dict[str, str]:
    """What both arms (and every Airflow task) see: scratch store, MLflow SQLite, the spec."""
    from nightshift_dev.env import overhead_env

    return overhead_env(paths.live, paths.datasets, DATASET)


def clean_environ() -> None:
    """Drop settings of a demo or another stack from this process (the arms set their own)."""
    for k in list(os.environ):
        if k.startswith(("AIRFLOW", "NIGHTSHIFT_", "MLFLOW_")) or k == "PYTHONDONTWRITEBYTECODE":
            del os.environ[k]


def run_worker(name: str, args: Result, paths: Paths, show_stderr: bool = False) -> harness.Run:
    env = {**os.environ, **arm_env(paths), "AIRFLOW_HOME": str(paths.root / "airflow-imports")}
    (paths.live / "home").mkdir(parents=True, exist_ok=True)
    return harness.run_worker(__file__, name, args, paths.root, env, show_stderr=show_stderr)


def cores_busy(seconds: float = 5.0) -> float:
    """Mean cores busy (all processes) over the next ``seconds``."""
    b0, t0 = harness._cpu_busy_s(), time.perf_counter()
    time.sleep(seconds)
    return (harness._cpu_busy_s() - b0) / (time.perf_counter() - t0)


def other_work() -> list[str]:
    """Other benchmarks, demos, test suites or schedulers running on the machine now."""
    out = subprocess.run(["pgrep", "-af", OTHER_WORK], capture_output=True, text=True, check=False)
    me = str(os.getpid())
    return [line[:160] for line in out.stdout.splitlines() if line and line.split()[0] != me]


def load_snapshot(label: str) -> Result:
    return {
        "at": label,
        "loadavg": list(os.getloadavg()),
        "cores_busy_5s": cores_busy(),
        "other_work": other_work(),
    }


# ---- arm B: Airflow --------------------------------------------------------------------------
def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def time_to_idle(stack: AirflowClient, t0: float, timeout: float, poll_s: float) -> tuple[float, int]:
    """Seconds from ``t0`` to the first poll of the final idle stretch (two idle polls in a
    row: the client's ``wait_idle``), and how many polls it took."""
    polls, first_idle = 0, None
    started = time.perf_counter()  # when the poll now reported began

    def seen(busy: list[str]) -> None:
        nonlocal polls, first_idle, started
        polls += 1
        if busy:
            first_idle = None
        elif first_idle is None:
            first_idle = started
        # the client sleeps poll_s after a busy poll, confirm_s after a quiet one, then polls
        started = time.perf_counter() + (poll_s if busy else confirm_s)

    deadline = time.monotonic() + timeout - (time.perf_counter() - t0)
    confirm_s = min(poll_s, 0.25)
    stack.wait_idle(DATASET, deadline, quiet_polls=2, poll_s=poll_s, on_poll=seen, confirm_s=confirm_s)
    assert first_idle is not None
    return first_idle - t0, polls


def collect(stack: AirflowClient, t_trigger: float, exclude: frozenset[str] = frozenset()) -> Result:
    """Every run and task instance of the nightshift DAGs, times relative to the trigger."""
    runs: list[Result] = []
    tis: list[Result] = []
    for kind in (*DAG_KINDS, "retrain"):
        dag_id = f"nightshift_{kind}.{DATASET}"
        for r in stack.runs(dag_id):
            if r["dag_run_id"] in exclude:
                continue
            runs.append(
                {
                    "dag": kind,
                    "run_id": r["dag_run_id"],
                    "run_type": r["run_type"],
                    "state": r["state"],
                    "queued": _rel(r.get("queued_at"), t_trigger),
                    "start": _rel(r.get("start_date"), t_trigger),
                    "end": _rel(r.get("end_date"), t_trigger),
                }
            )
            for t in stack.task_instances(dag_id, r["dag_run_id"]):
                tis.append(
                    {
                        "dag": kind,
                        "run_id": r["dag_run_id"],
                        "task": t["task_id"],
                        "state": t["state"],
                        "try_number": t.get("try_number"),
                        "scheduled": _rel(t.get("scheduled_when"), t_trigger),
                        "queued": _rel(t.get("queued_when"), t_trigger),
                        "start": _rel(t.get("start_date"), t_trigger),
                        "end": _rel(t.get("end_date"), t_trigger),
                        "duration": t.get("duration"),
                    }
                )
    tis.sort(key=lambda t: (t["start"] if t["start"] is not None else 1e18, t["dag"], t["task"]))
    return {"runs": runs, "tasks": tis}


def log_phases(home: Path, t: Result, dag_id: str, t_trigger: float) -> Result:
    """From the task's own log (JSON lines): when Airflow's pre-execute (worker start-up, DAG
    file parse) ended and post-execute began, relative to the trigger; ``{}`` without a log."""
    path = (
        home
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={t['run_id']}"
        / f"task_id={t['task']}"
        / f"attempt={t['try_number'] or 1}.log"
    )
    if not path.exists():
        return {}
    pre_end = post_start = None
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        event = str(rec.get("event", ""))
        if pre_end is None and event == "::endgroup::":
            pre_end = _rel(rec.get("timestamp"), t_trigger)
        elif event == "::group::Post Execute":
            post_start = _rel(rec.get("timestamp"), t_trigger)
    return {"pre_end": pre_end, "post_start": post_start}


def _rel(value: str | None, t0: float) -> float | None:
    ts = _ts(value)
    return None if ts is None else ts - t0


def airflow_arm(paths: Paths, day: date, timeout: float, poll_s: float) -> Result:
    from nightshift_dev.stack import AirflowStack, preload_problems

    stack = AirflowStack(paths.airflow, extra_env=arm_env(paths))
    ingest = f"nightshift_ingest.{DATASET}"
    t_start = time.perf_counter()
    try:
        stack.start()
        for kind in DAG_KINDS:
            stack.wait_dag(f"nightshift_{kind}.{DATASET}")
        startup_s = time.perf_counter() - t_start
        # Warm-up (untimed): the first task each LocalExecutor worker runs pays a one-off start-up
        # that a long-running deployment pays once, not every night. Re-ingesting day 0 (same
        # bytes; no labels due that day) runs both ingest tasks at once, so both workers warm up, while
        # the consumers are paused (Airflow queues no Asset events for paused DAGs).
        stack.unpause(ingest)
        t_warm = time.time()
        warm_id = stack.trigger_id(ingest, {"dt": START.isoformat()})
        warm_run = stack.wait_run(ingest, lambda x: x["dag_run_id"] == warm_id, timeout=timeout)
        warm = collect(stack, t_warm)
        for t in warm["tasks"]:
            t.update(log_phases(paths.airflow, t, ingest, t_warm))
        for kind in DAG_KINDS[1:]:
            stack.unpause(f"nightshift_{kind}.{DATASET}")
        time.sleep(10)  # let the scheduler settle and see the unpaused DAGs
        before = load_snapshot("before arm B (stack up, idle)")
        # ours: this driver, the stack's components and every task they fork (their sessions)
        load = harness.OutsideLoad({p.pid for p in stack.procs.values()})
        b0 = harness._cpu_busy_s()
        load.start()
        t_trigger, t0 = time.time(), time.perf_counter()
        stack.trigger_id(f"nightshift_ingest.{DATASET}", {"dt": day.isoformat()})
        wall, polls = time_to_idle(stack, t0, timeout, poll_s)
        outside = load.stop()
        cores = (harness._cpu_busy_s() - b0) / (time.perf_counter() - t0)
        data = collect(stack, t_trigger, exclude=frozenset({warm_id}))
    finally:
        stack.stop()
    for t in data["tasks"]:
        t.update(log_phases(paths.airflow, t, f"nightshift_{t['dag']}.{DATASET}", t_trigger))
    # the configuration measured is the demo's only if every task inherited the preload
    started, problems = preload_problems(paths.airflow)
    return {
        "preload": {"tasks_started": started, "problems": problems},
        "wall_s": wall,
        "polls": polls,
        "poll_s": poll_s,
        "startup_s": startup_s,
        "cores_busy": cores,
        "load": outside,
        "load_before": before,
        "warmup": {"state": warm_run["state"], **warm},
        **data,
    }


# ---- the whole benchmark ---------------------------------------------------------------------
def bench(rows: int, root: Path, timeout: float, poll_s: float, keep: bool, pairs: int) -> Result:
    paths = Paths(root / f"overhead-{rows}")
    shutil.rmtree(paths.root, ignore_errors=True)
    paths.live.mkdir(parents=True)
    spec = write_spec(paths)
    day = START + timedelta(days=PREP_DAYS)

    def log(msg: str) -> None:
        print(f"  [{rows:,} rows a day] {msg}", flush=True)

    def fresh_live(done: str) -> None:
        """Put the arm that ran aside (``--keep``) or away, and a fresh copy of the state in place."""
        if keep:
            shutil.move(paths.live, paths.root / done)  # its MLflow DB still names live/ paths
        else:
            shutil.rmtree(paths.live)
        shutil.copytree(paths.snapshot, paths.live)

    measured: list[Result] = []
    try:
        log(f"initial state: days {START}..{day} land, {START}..{day - timedelta(days=1)} ingested, ...")
        t0 = time.perf_counter()
        prep_args = {"start": START.isoformat(), "prep_days": PREP_DAYS, "rows": rows}
        prep = run_worker("prep", prep_args, paths, show_stderr=True)
        champ = prep.result
        kind, why = champ.get("champion_kind", "xgboost"), champ.get("champion_reason")
        log(
            f"initial state in {time.perf_counter() - t0:.0f} s (champion v{champ['champion']}, "
            f"{kind}, AUC {champ['champion_auc']:.4f}: {why})"
        )
        shutil.copytree(paths.live, paths.snapshot)

        log("import costs, each group alone in a fresh interpreter ...")
        bare = min(run_worker("noop", {}, paths).wall_s for _ in range(3))
        imports = {
            name: run_worker("import", {"modules": mods}, paths).result["seconds"]
            for name, mods in IMPORT_GROUPS.items()
        }

        for n in range(1, pairs + 1):
            if n > 1:
                fresh_live(f"pair{n - 1}-b")
            log(f"pair {n}/{pairs}, arm A: the cycle of {day} in one fresh interpreter ...")
            load_a = load_snapshot("before arm A")
            own0, before_a = harness._children_cpu_s(), time.time()
            arm_a = run_worker("cycle", {"day": day.isoformat()}, paths)
            cpu_a, after_a = harness._children_cpu_s() - own0, time.time()
            a = {
                **arm_a.result,
                "startup_s": arm_a.result["entered"] - before_a,
                "exit_s": after_a - arm_a.result["left"],
                "process_wall_s": arm_a.wall_s,
                "wall_s": arm_a.result["clock_s"],
                "other_cores": arm_a.result["load"]["other_cores"],
                "cpu_s": cpu_a,
                "load_before": load_a,
            }
            log(
                f"pair {n}, arm A: {a['wall_s']:.1f} s of calls ({arm_a.wall_s:.1f} s with start-up, "
                f"imports, exit; outside load {a['other_cores']:.2f} cores)"
            )
            fresh_live(f"pair{n}-a")
            log(f"pair {n}/{pairs}, arm B: the same day through Airflow (start-up and warm-up untimed) ...")
            b = airflow_arm(paths, day, timeout, poll_s)
            log(
                f"pair {n}, arm B: {b['wall_s']:.1f} s from the trigger to idle "
                f"(outside load {b['load']['other_cores']:.2f} cores); "
                f"ratio {b['wall_s'] / a['wall_s']:.2f}"
            )
            measured.append({"a": a, "b": b})
            if keep:  # each pair's stack starts from a fresh Airflow home and metadata DB
                shutil.move(paths.airflow, paths.root / f"airflow-pair{n}")
            else:
                shutil.rmtree(paths.airflow, ignore_errors=True)
        load_after = load_snapshot("after the last pair (stack stopped)")
    finally:
        if not keep:
            shutil.rmtree(paths.root, ignore_errors=True)
    return {
        "rows_per_day": rows,
        "day": day.isoformat(),
        "window": {k: spec["training"][k] for k in ("window_days", "validation_days", "holdout_days")},
        "num_boost_round": spec["training"]["num_boost_round"],
        "prep": {**prep.result, "wall_s": prep.wall_s},
        "interpreter_s": bare,
        "imports_alone": imports,
        "pairs": measured,
        "load_after": load_after,
        "kept": str(paths.root) if keep else None,
    }


# ---- the report ------------------------------------------------------------------------------
def _b_tasks(b: Result, kind: str, task: str) -> list[Result]:
    return [t for t in b["tasks"] if t["dag"] == kind and t["task"] == task]


def _dur(t: Result) -> float:
    if t["start"] is None or t["end"] is None:
        return 0.0
    return float(t["end"] - t["start"])


def _split(t: Result) -> tuple[float, float]:
    """(Airflow's own part: pre-execute + post-execute, the execute part: imports + the call)
    of a task's duration, from its log; all of it counts as execute when the log lacks marks."""
    d = _dur(t)
    pre, post = t.get("pre_end"), t.get("post_start")
    if pre is None or post is None or t["start"] is None or t["end"] is None:
        return 0.0, d
    execute = max(0.0, post - pre)
    return d - execute, execute


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


def task_overheads(b: Result) -> list[tuple[str, float]]:
    """Per task of arm B that ran: its wall (REST API start → end) less the step's own time
    (the execute part of its log: the task body, i.e. the core call); tasks without log marks
    are left out."""
    out = []
    for t in b["tasks"]:
        if t["start"] is None or t["end"] is None or t.get("pre_end") is None or t.get("post_start") is None:
            continue
        out.append((f"{t['dag']}.{t['task']}", _split(t)[0]))
    return out


def summary(pair: Result) -> Result:
    """The numbers of one A/B pair that the report and the docs use."""
    a, b = pair["a"], pair["b"]
    phase = {p["phase"]: p["seconds"] for p in a["phases"]}
    done = [t for t in b["tasks"] if t["start"] is not None and t["end"] is not None]
    busy = _union([(t["start"], t["end"]) for t in done])
    last_end = max((t["end"] for t in done), default=0.0)
    evid = a["evidently"]["drift_s"] + a["evidently"]["render_s"]
    train_a = phase["train"]
    bad = [t for t in b["tasks"] if t["state"] not in ("success", "skipped") or (t["try_number"] or 1) > 1]
    over = [o for _, o in task_overheads(b)]
    return {
        "a_wall": a["wall_s"],
        "a_process_wall": a["process_wall_s"],
        "a_steps": sum(p["seconds"] for p in a["phases"] if p["kind"] == "step"),
        "a_imports": sum(p["seconds"] for p in a["phases"] if p["kind"] == "import"),
        "a_phase": phase,
        "a_other_cores": a["other_cores"],
        "b_wall": b["wall_s"],
        "b_other_cores": b["load"]["other_cores"],
        "b_last_end": last_end,
        "b_task_sum": sum(_dur(t) for t in done),
        "b_airflow_sum": sum(_split(t)[0] for t in done),
        "b_execute_sum": sum(_split(t)[1] for t in done),
        "b_queue_sum": sum(t["start"] - t["queued"] for t in done if t["queued"] is not None),
        "b_busy": busy,
        "b_idle": last_end - busy,
        "b_tasks": len(done),
        "ratio": b["wall_s"] / a["wall_s"],
        "ratio_last_end": last_end / a["wall_s"],
        "ratio_old": b["wall_s"] / a["process_wall_s"],
        "overhead_median": statistics.median(over) if over else float("nan"),
        "overhead_max": max(over, default=float("nan")),
        "overheads": over,
        "drift": evid,
        "drift_ratio": evid / train_a,
        "monitor_ratio": phase["monitor"] / train_a,
        "bad_tasks": bad,
    }


def overall(r: Result) -> Result:
    """Across the pairs: the ratio's median and spread, the per-task overhead pooled over every
    task of every pair, drift / training's median; each against its goal."""
    ss = [summary(p) for p in r["pairs"]]
    ratios = [s["ratio"] for s in ss]
    over = [o for s in ss for o in s["overheads"]]
    drift = [s["drift_ratio"] for s in ss]
    clean = not any(s["bad_tasks"] for s in ss)
    med = statistics.median(ratios)
    over_med = statistics.median(over) if over else float("nan")
    return {
        "pairs": ss,
        "ratio_median": med,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_verdict": verdict(med <= GOAL_AIRFLOW_VS_PROCESS) if clean else "n/a (a task failed/retried)",
        "overhead_median": over_med,
        "overhead_max": max(over, default=float("nan")),
        "overhead_tasks": len(over),
        "overhead_verdict": verdict(over_med <= GOAL_TASK_OVERHEAD_S),
        "drift_median": statistics.median(drift),
        "drift_verdict": verdict(statistics.median(drift) <= GOAL_DRIFT_VS_TRAIN),
        # the median pair (lower median for an even count): its details are printed
        "median_pair": sorted(range(len(ratios)), key=lambda k: ratios[k])[(len(ratios) - 1) // 2],
    }


def _f(v: float | None, width: int = 7) -> str:
    return f"{v:{width}.1f}" if v is not None else " " * (width - 1) + "-"


CLOCK_A = (
    "A's clock: inside one process, from after the interpreter started and imported everything "
    "(timed apart) to the last core call's end; start-up, imports and exit are not on it"
)
CLOCK_B = (
    "B's clock: from the REST trigger of nightshift_ingest to the first of two idle polls (every "
    "{poll:g} s); the stack was started (forkserver preload) and warmed by one run before it"
)


def print_report(r: Result) -> None:
    o = overall(r)
    w = r["window"]
    print()
    print(
        f"== the cycle of {r['day']}: {r['rows_per_day']:,} rows a day, window {w['window_days']} days "
        f"({w['window_days'] - w['validation_days'] - w['holdout_days']} train, {w['validation_days']} "
        f"validation, {w['holdout_days']} holdout), at most {r['num_boost_round']} rounds; "
        f"{len(r['pairs'])} A/B pair(s), interleaved; commit {r.get('commit', '?')}, "
        f"code {r.get('code', '?')} =="
    )
    print(CLOCK_A)
    print(CLOCK_B.format(poll=r["pairs"][0]["b"]["poll_s"]))
    print(
        f"\n  {'pair':<5} {'A calls':>8} {'B wall':>8} {'B / A':>6} {'B last end / A':>14} "
        f"{'outside A':>9} {'outside B':>9} {'task overhead med / max':>24} {'tasks':>5}  clean"
    )
    for n, (s, p) in enumerate(zip(o["pairs"], r["pairs"], strict=True), 1):
        print(
            f"  {n:<5} {s['a_wall']:8.1f} {s['b_wall']:8.1f} {s['ratio']:6.2f} {s['ratio_last_end']:14.2f} "
            f"{s['a_other_cores']:9.2f} {s['b_other_cores']:9.2f} "
            f"{s['overhead_median']:12.2f} / {s['overhead_max']:5.2f} s {s['b_tasks']:>5}  "
            f"{'yes' if not s['bad_tasks'] else 'NO'}"
            + ("" if not p["b"].get("preload", {}).get("problems") else ", PRELOAD MISSING in some task")
        )
    print("  (outside: mean cores busy with processes other than the arm's own, during its clock)")
    print(
        f"\n  cycle: Airflow / one process, median of {len(o['pairs'])}: {o['ratio_median']:.2f} "
        f"(spread {o['ratio_min']:.2f}-{o['ratio_max']:.2f}), goal <= {GOAL_AIRFLOW_VS_PROCESS}: "
        f"{o['ratio_verdict']}"
    )
    print(
        f"  per-task overhead (task wall - its execute part), over {o['overhead_tasks']} tasks: median "
        f"{o['overhead_median']:.2f} s, max {o['overhead_max']:.2f} s; goal median <= "
        f"{GOAL_TASK_OVERHEAD_S} s: {o['overhead_verdict']}"
    )
    print(
        f"  drift (Evidently) / training, one process, median: {o['drift_median']:.3f}; goal <= "
        f"{GOAL_DRIFT_VS_TRAIN}: {o['drift_verdict']}"
    )
    print(
        "  (info) the former definition, B / A's whole process (start-up, imports, exit on A's clock): "
        + ", ".join(f"{s['ratio_old']:.2f}" for s in o["pairs"])
    )
    k = o["median_pair"]
    print(f"\ndetails of the median pair ({k + 1}):")
    print_pair(r, r["pairs"][k], o["pairs"][k])

    print("\nimport time of each group alone, in a fresh interpreter (what a task without the preload pays):")
    print(f"  bare interpreter start + exit: {r['interpreter_s']:.2f} s")
    for name, sec in r["imports_alone"].items():
        print(f"  {name:<28} {sec:6.2f} s")
    print(f"prep (untimed): {r['prep']['wall_s']:.0f} s")
    snaps = [x for p in r["pairs"] for x in (p["a"]["load_before"], p["b"]["load_before"])]
    snaps.append(r["load_after"])
    for snap in snaps:
        la = ", ".join(f"{x:.2f}" for x in snap["loadavg"])
        seen = "; ".join(snap["other_work"]) or "none"
        busy = f"{snap['cores_busy_5s']:.2f} cores busy"
        print(f"load {snap['at']}: loadavg {la}; {busy}; other work: {seen}")


def print_pair(r: Result, pair: Result, s: Result) -> None:
    a, b = pair["a"], pair["b"]
    print(
        "step by step, seconds (A: the core call in one process; B: the Airflow task(s), start to end,"
        "\nsplit by its log into Airflow's pre/post-execute and the execute part: the task body, the call):"
    )
    print(f"  {'step':<30} {'A':>7} {'B task':>7} {'B airflow':>9} {'B execute':>9} {'runs':>4} {'B - A':>7}")
    print(f"  {'(off the clock) start-up':<30} {a['startup_s']:7.2f}")
    print(f"  {'(off the clock) imports, once':<30} {s['a_imports']:7.2f}")
    for p in a["phases"]:
        if p["kind"] == "import":
            print(f"    {p['phase'][7:]:<28} {p['seconds']:7.2f}")
    for name, kind, task in STEPS:
        tis = _b_tasks(b, kind, task)
        tb = sum(_dur(t) for t in tis)
        af = sum(_split(t)[0] for t in tis)
        ta = s["a_phase"].get(name, 0.0)
        print(f"  {name:<30} {ta:7.2f} {tb:7.2f} {af:9.2f} {tb - af:9.2f} {len(tis):>4} {tb - ta:+7.2f}")
    mapped = {(k, t) for _, k, t in STEPS}
    others = [t for t in b["tasks"] if (t["dag"], t["task"]) not in mapped]
    if others:
        tb = sum(_dur(t) for t in others)
        af = sum(_split(t)[0] for t in others)
        names = ", ".join(sorted({t["task"] for t in others}))
        print(f"  {names:<30} {'-':>7} {tb:7.2f} {af:9.2f} {tb - af:9.2f} {len(others):>4}")
    print(f"  {'(off the clock) exit':<30} {a['exit_s']:7.2f}")
    print(
        f"  {'total':<30} {s['a_steps']:7.2f} {s['b_task_sum']:7.2f} {s['b_airflow_sum']:9.2f} "
        f"{s['b_execute_sum']:9.2f}   (B: sum over tasks; they overlap)"
    )
    print(
        f"  {'clock':<30} {s['a_wall']:7.2f} {s['b_wall']:7.2f}   (A: the calls; B: trigger to idle; "
        f"A's whole process {s['a_process_wall']:.2f} s)"
    )
    print("\nB timeline (seconds after the trigger; queued -> start is the wait for a free slot):")
    print(
        f"  {'dag.task':<24} {'run type':<16} {'queued':>7} {'start':>7} {'exec at':>7} "
        f"{'post at':>7} {'end':>7} {'overhead':>8}  state"
    )
    for t in b["tasks"]:
        run = next(x for x in b["runs"] if x["run_id"] == t["run_id"] and x["dag"] == t["dag"])
        retry = f" (try {t['try_number']})" if (t["try_number"] or 1) > 1 else ""
        ov = _split(t)[0] if t.get("pre_end") is not None and t.get("post_start") is not None else None
        print(
            f"  {t['dag'] + '.' + t['task']:<24} {run['run_type']:<16} {_f(t['queued'])} {_f(t['start'])} "
            f"{_f(t.get('pre_end'))} {_f(t.get('post_start'))} {_f(t['end'])} {_f(ov, 8)}  "
            f"{t['state']}{retry}"
        )
    print(
        f"  B: waiting for a slot {s['b_queue_sum']:.1f} s in all; no task running for {s['b_idle']:.1f} s "
        f"of {s['b_last_end']:.1f} s; {b['cores_busy']:.2f} cores busy on average (all processes), "
        f"{b['load']['own_cores']:.2f} of them the stack's"
    )
    warm = [t for t in b["warmup"]["tasks"] if t["start"] is not None]
    print(
        f"  warm-up before the clock (re-ingest of {START}, {b['warmup']['state']}): "
        + ", ".join(f"{t['task']} {_dur(t):.1f} s (Airflow part {_split(t)[0]:.1f} s)" for t in warm)
        + f"; stack start-up {b['startup_s']:.0f} s"
    )
    pre = b.get("preload")
    if pre is None:
        print("  preload: not checked (a result from before the check)")
    else:
        print(
            f"  preload: {pre['tasks_started']} task attempts started (warm-up included), "
            f"{len(pre['problems'])} without the inherited libraries"
            + "".join(f"\n    {x}" for x in pre["problems"][:10])
        )
    if s["bad_tasks"]:
        print("WARNING: tasks failed or retried in arm B; the Airflow wall is not a clean measurement:")
        for t in s["bad_tasks"]:
            print(f"  {t['dag']}.{t['task']} {t['state']} (try {t['try_number']})")
    gate, trained = a["gate"], a["trained"]
    b_promote = [t["state"] for t in _b_tasks(b, "train", "promote")]
    auc = gate["challenger_metrics"].get("roc_auc", float("nan"))
    print(
        f"\nA: window {trained['window']}, holdout AUC {auc:.4f}, "
        f"gate v{gate['version']} {'promoted' if gate['promote'] else 'rejected'} ({gate['reason'][:90]}); "
        f"serving check: {a.get('serving')}; B: promote task {', '.join(b_promote) or 'absent'}; "
        f"alert: {a['alert']['reason'] if a['alert'] else 'none'}"
    )
    print(
        f"A: drift of {a['evidently']['days']} day(s): Evidently report {a['evidently']['drift_s']:.2f} s, "
        f"HTML+JSON {a['evidently']['render_s']:.2f} s; performance of "
        f"{', '.join(p['dt'] for p in a['monitor']['performance']) or 'no day'}; "
        f"CPU {a['cpu_s']:.1f} s in {s['a_process_wall']:.1f} s of process wall"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows a day (default 1,000,000)")
    p.add_argument("--root", type=Path, default=Path("/tmp/bench"), help="scratch folder")
    p.add_argument("--timeout", type=float, default=1800, help="most seconds arm B may take")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between idle checks in arm B")
    p.add_argument("--pairs", type=int, default=3, help="interleaved A/B pairs (default 3)")
    p.add_argument("--keep", action="store_true", help="keep the stores, MLflow DBs and Airflow home")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--args", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.worker:
        worker_main(WORKERS, ns.worker, ns.args, ns.out)
        return 0

    clean_environ()
    root: Path = ns.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    code = code_fingerprint(
        (
            "steps/train.py",
            "steps/gate.py",
            "steps/score.py",
            "steps/monitor.py",
            "steps/retrain.py",
            "ingest.py",
            "validate.py",
            "monitor.py",
            "train.py",
            "servecheck.py",
            "airflow/preload.py",
            "airflow/taskstart.py",
            "airflow/tasks/ingest.py",
            "airflow/tasks/score.py",
            "airflow/tasks/train.py",
            "airflow/tasks/gate.py",
            "airflow/tasks/monitor.py",
        )
    )
    if ns.pairs < 1:
        p.error("--pairs must be at least 1")
    commit = git_commit()
    print(
        f"orchestration overhead benchmark: commit {commit}, nightshift code {code}, {os.cpu_count()} cores, "
        f"{gib(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))} RAM, Python "
        f"{sys.version.split()[0]}, apache-airflow {version('apache-airflow')}, mlflow {version('mlflow')}, "
        f"great_expectations {version('great_expectations')}, evidently {version('evidently')}, "
        f"xgboost {version('xgboost')}; loadavg {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"scratch {root}",
        flush=True,
    )
    r = bench(ns.rows, root, ns.timeout, ns.poll, ns.keep, ns.pairs)
    r["code"], r["commit"] = code, commit
    print_report(r)
    out = ns.json or root / f"overhead-{ns.rows}-results.json"
    out.write_text(json.dumps(r, indent=2, default=str))
    print(f"\nraw results: {out}" + (f"; scratch kept in {r['kept']}" if r["kept"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
