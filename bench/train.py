"""Training benchmark: nightshift's training step measured against bare ``xgb.train``, in one run.

It writes a labelled window of the demo dataset (``datasets/payments.yaml``: 17 numeric and 6
categorical features, 23 in all) straight into the curated and labels areas of a local store:
``--days`` event days of ``--rows-per-day`` rows from :func:`nightshift.demo.datagen.generate_day`,
cast to the published schema (``nightshift.ingest.arrow_schema``), each day's labels in the
partition ``label.delay_days`` later, as ``ingest_partition`` would publish them (GX is not run:
the ingest has its own benchmark). The default is 10 days x 100k rows = 1M labelled rows, split
by day 6 / 2 / 2 into train / validation (early stopping) / holdout. Then, each in a fresh
subprocess:

1. *step*: ``nightshift.steps.train.train_step`` with a new ``run_key``: load the window, choose the
   device, build the matrices, ``xgb.train``, score the serving-skew sample and the monitoring
   reference, and the MLflow run with its logged model (SQLite tracking under a scratch
   ``NIGHTSHIFT_HOME``; the database is created before the clock starts). The holdout
   evaluation and the feature importance are the gate's (``gate_step`` scores the holdout once),
   so they are not in this measurement. Its steps are wrapped so the time and peak RSS of each
   can be read.
2. *bare*: what a script training the same model needs and no more: ``pq.read_table`` of the
   train and validation days and their labels, each event's label looked up by id (file order
   kept: the row subsampling depends on it), the float32 matrix (category codes in the spec's
   order), ``xgb.QuantileDMatrix`` and ``xgb.train`` with the same params
   (``nightshift.train.xgb_params``), rounds and early stopping. No holdout, no MLflow.

The imports (MLflow, XGBoost, pandas, matplotlib) happen before the clock starts; their time and
RSS are reported apart. It prints the ratios with their goals and PASS/MISS; it never fails on a
number (benchmarks report). With a visible GPU it also runs both on ``cuda`` and prints GPU vs
CPU; without one it says so.

    python bench/train.py            # 1M labelled rows, the spec's rounds and early stopping
    python bench/train.py --quick    # smoke: 10 days x 10k rows, at most 100 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import harness
from harness import (
    REPO,
    Result,
    Row,
    Run,
    code_fingerprint,
    gib,
    reset_peak,
    rss_now,
    rss_peak,
    verdict,
    worker_main,
)

SPEC_PATH = REPO / "datasets" / "payments.yaml"
START = date(2024, 3, 1)
SEED = 42

# goals of the issue
GOAL_STEP_VS_BARE = 1.05  # time ratio, lower is better
GOAL_GPU_SPEEDUP = 5.0  # CPU s/round / GPU s/round, higher is better


# ---- workers (each runs in its own fresh interpreter) ----------------------------------------
def _spec() -> Any:
    from nightshift.spec import load_spec

    return load_spec(SPEC_PATH)


def _import_stack() -> float:
    """Import what ``train_step`` imports (before any clock starts); the seconds it took."""
    t0 = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import mlflow
    import mlflow.pyfunc  # noqa: F401
    import pandas  # noqa: F401
    import xgboost  # noqa: F401

    import nightshift.evaluate
    import nightshift.model
    import nightshift.registry
    import nightshift.steps.gate
    import nightshift.steps.monitor
    import nightshift.steps.retrain
    import nightshift.steps.score
    import nightshift.steps.train
    import nightshift.train  # noqa: F401

    return time.perf_counter() - t0


def w_generate(a: Result) -> Result:
    """The window as ``ingest_partition`` publishes it: curated events and, ``delay_days``
    later, their labels; one snappy Parquet file per partition."""
    import pyarrow.parquet as pq

    from nightshift.demo.datagen import Scenario, generate_day
    from nightshift.ingest import arrow_schema
    from nightshift.storage import Store

    spec, store = _spec(), Store(a["store"])
    ev_schema, lb_schema = arrow_schema(spec, "events"), arrow_schema(spec, "labels")
    delay = timedelta(days=spec.label.delay_days)
    t0 = time.perf_counter()
    size = 0
    for i, day_s in enumerate(a["days"]):
        day = date.fromisoformat(day_s)
        ev_path = store.published_file(spec.name, "events", day)
        lb_path = store.published_file(spec.name, "labels", day + delay)
        with store.open_output_atomic(ev_path) as ev_out, store.open_output_atomic(lb_path) as lb_out:
            ev_w = pq.ParquetWriter(ev_out, ev_schema, compression="snappy")
            lb_w = pq.ParquetWriter(lb_out, lb_schema, compression="snappy")
            for events, labels in generate_day(spec, day, i, a["rows_per_day"], SEED, Scenario()):
                ev_w.write_batch(events.cast(ev_schema))
                lb_w.write_batch(labels.cast(lb_schema))
            ev_w.close()
            lb_w.close()
        size += store.size(ev_path) + store.size(lb_path)
    return {"seconds": time.perf_counter() - t0, "parquet_bytes": size}


def w_setup(a: Result) -> Result:
    """Create the MLflow database and experiment (a one-off the measured steps do not pay)."""
    t_import = _import_stack()
    from nightshift import registry

    t0 = time.perf_counter()
    client = registry.configure()
    registry.ensure_experiment(client, a["dataset"])
    return {
        "import_s": t_import,
        "setup_s": time.perf_counter() - t0,
        "tracking_uri": registry.tracking_uri(),
    }


def w_imports(a: Result) -> Result:
    """An interpreter with the step's imports and nothing else: its RSS is the floor."""
    import_s = _import_stack()
    return {"import_s": import_s, "rss": rss_now(), "peak_rss": rss_peak()}


def w_step(a: Result) -> Result:
    """The real ``train_step``, its steps timed from outside (nested calls count in the outer one)."""
    import_s = _import_stack()
    import mlflow
    import mlflow.pyfunc
    import xgboost as xgb
    from mlflow import MlflowClient

    import nightshift.evaluate as nev
    import nightshift.model as nmodel
    import nightshift.registry as nreg
    import nightshift.steps.train as npipe
    import nightshift.train as ntrain
    from nightshift.steps.train import TrainRequest, train_step
    from nightshift.storage import Store

    spec, store = _spec(), Store(a["store"])
    phases: list[Result] = []
    seen: Result = {}
    depth = [0]
    mark: dict[str, float] = {}

    def record(name: str, seconds: float, before: int) -> None:
        phases.append(
            {
                "phase": name,
                "seconds": seconds,
                "rss_before": before,
                "rss_after": rss_now(),
                "peak": rss_peak(),
            }
        )
        reset_peak()
        mark.update(t=time.perf_counter(), rss=rss_now())

    def wrap(
        name: str, fn: Callable[..., Any], keep: Callable[[Any], None] | None = None
    ) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if depth[0]:
                return fn(*args, **kwargs)
            gap = time.perf_counter() - mark["t"]
            if gap > 0.005:
                record(f"(before {name})", gap, int(mark["rss"]))
            before, t0 = rss_now(), time.perf_counter()
            depth[0] += 1
            try:
                out = fn(*args, **kwargs)
            finally:
                depth[0] -= 1
            record(name, time.perf_counter() - t0, before)
            if keep is not None:
                keep(out)
            return out

        return timed

    def keep_window(w: Any) -> None:
        seen["window"] = w

    def keep_dm(out: Any) -> None:
        seen["train_rows"], seen["features"] = out[0].num_row(), out[0].num_col()

    def keep_fit(out: Any) -> None:
        booster = out[0]
        seen.update(rounds=booster.num_boosted_rounds(), best_iteration=int(booster.best_iteration))
        seen["best_score"] = float(booster.best_score)

    ntrain.load_window = wrap("load_window (read + join labels)", ntrain.load_window, keep_window)
    ntrain.choose_device = wrap("choose_device", ntrain.choose_device)
    ntrain.dmatrices = wrap("matrix + QuantileDMatrix (train, val)", ntrain.dmatrices, keep_dm)
    ntrain._fit = wrap("xgb.train (_fit)", ntrain._fit, keep_fit)
    nmodel.predict = wrap("predict (skew sample, reference rows)", nmodel.predict)
    # the gate's since the holdout is scored once, there: timed should code call them again
    nev.evaluate = wrap("evaluate holdout (+ slices)", nev.evaluate)
    nev.importance = wrap("importance (pred_contribs)", nev.importance)
    nreg.configure = wrap("mlflow: configure, experiment, find_run", nreg.configure)
    nreg.ensure_experiment = wrap("mlflow: configure, experiment, find_run", nreg.ensure_experiment)
    nreg.find_run = wrap("mlflow: configure, experiment, find_run", nreg.find_run)
    nreg.code_version = wrap("code_version (git)", nreg.code_version)
    mlflow.start_run = wrap("mlflow: start_run", mlflow.start_run)
    mlflow.log_params = wrap("mlflow: params, metrics, inputs, artifacts", mlflow.log_params)
    MlflowClient.log_batch = wrap(  # type: ignore[method-assign]
        "mlflow: params, metrics, inputs, artifacts", MlflowClient.log_batch
    )
    npipe._log_inputs = wrap("mlflow: params, metrics, inputs, artifacts", npipe._log_inputs)
    mlflow.log_artifact = wrap("mlflow: params, metrics, inputs, artifacts", mlflow.log_artifact)
    npipe._importance_plot = wrap("importance plot (matplotlib)", npipe._importance_plot)
    xgb.Booster.save_model = wrap("booster.save_model", xgb.Booster.save_model)  # type: ignore[method-assign]
    pyfunc: Any = sys.modules["mlflow.pyfunc"]  # the module itself (``mlflow.pyfunc`` may be a LazyLoader)
    pyfunc.log_model = wrap("mlflow: log_model (pyfunc)", pyfunc.log_model)

    request = TrainRequest(window_days=a["window_days"], num_boost_round=a["rounds"])
    run_key = f"bench/{uuid.uuid4().hex[:12]}"
    rss0 = rss_now()
    reset_peak()
    c0, t0 = time.process_time(), time.perf_counter()
    mark.update(t=t0, rss=rss0)
    summary = train_step(store, spec, run_key, request)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    record("(after the steps: end run, summary)", time.perf_counter() - mark["t"], int(mark["rss"]))
    window = seen.pop("window")
    return {
        **seen,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "import_s": import_s,
        "rss_before": rss0,
        "peak_rss": max(p["peak"] for p in phases),
        "phases": phases,
        "window_nbytes": window.table.nbytes,
        "window_rows": window.table.num_rows,
        "split": window.describe(),
        "device": summary.device,
        "reused": summary.reused,
        "validation_auc": seen.get("best_score"),
    }


def w_bare(a: Result) -> Result:
    """Read, join, matrix, QuantileDMatrix, ``xgb.train``: the same model with nothing around it."""
    t_imp = time.perf_counter()
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import xgboost as xgb

    from nightshift.train import Device, xgb_params

    import_s = time.perf_counter() - t_imp
    spec = _spec()
    ident, label = spec.id_column, spec.label.column
    numeric = [f.name for f in spec.features.numeric]
    categorical = {c.name: c.values for c in spec.features.categorical}

    rss0 = rss_now()
    c0, t0 = time.process_time(), time.perf_counter()
    labels = pa.concat_tables([pq.read_table(p, columns=[ident, label]) for p in a["label_files"]])
    labels = labels.combine_chunks()

    def labelled(path: str) -> pa.Table:
        """The events of one file that have a label, in file order (the order training sees)."""
        events = pq.read_table(path)
        at = pc.index_in(events.column(ident), value_set=labels.column(ident))
        events = events.append_column(label, pc.take(labels.column(label), at))
        return events.filter(pc.is_valid(at))

    tables = {
        split: pa.concat_tables([labelled(p) for p in files]) for split, files in a["event_files"].items()
    }
    t1 = time.perf_counter()

    def matrix(t: pa.Table) -> tuple[Any, Any]:
        x = np.empty((t.num_rows, len(numeric) + len(categorical)), dtype=np.float32)
        for j, name in enumerate(numeric):
            x[:, j] = t.column(name).to_numpy(zero_copy_only=False)
        for k, (name, values) in enumerate(categorical.items()):
            codes = pc.index_in(t.column(name), value_set=pa.array(values, pa.string()))
            x[:, len(numeric) + k] = codes.to_numpy(zero_copy_only=False)
        y = (t.column(label).to_numpy() == spec.label.positive).astype(np.float32)
        return x, y

    (x_tr, y_tr), (x_va, y_va) = matrix(tables["train"]), matrix(tables["validation"])
    t2 = time.perf_counter()
    params = xgb_params(spec, Device(a["device"], "bench", 0, ""))
    kw: Result = dict(
        feature_names=[*numeric, *categorical],
        feature_types=["q"] * len(numeric) + ["c"] * len(categorical),
        enable_categorical=True,
    )
    dtrain = xgb.QuantileDMatrix(x_tr, y_tr, max_bin=int(params.get("max_bin", 256)), **kw)
    dval = xgb.QuantileDMatrix(x_va, y_va, ref=dtrain, **kw)
    t3 = time.perf_counter()
    booster = xgb.train(
        {k: v for k, v in params.items() if k != "max_bin"},
        dtrain,
        num_boost_round=a["rounds"] or spec.training.num_boost_round,
        evals=[(dval, "validation")],
        early_stopping_rounds=spec.training.early_stopping_rounds,
        verbose_eval=False,
    )
    t4 = time.perf_counter()
    return {
        "seconds": t4 - t0,
        "cpu_s": time.process_time() - c0,
        "read_s": t1 - t0,
        "matrix_s": t2 - t1,
        "dmatrix_s": t3 - t2,
        "fit_s": t4 - t3,
        "import_s": import_s,
        "rss_before": rss0,
        "peak_rss": rss_peak(),
        "nbytes": sum(t.nbytes for t in tables.values()),
        "rows": {k: t.num_rows for k, t in tables.items()},
        "train_rows": dtrain.num_row(),
        "features": dtrain.num_col(),
        "rounds": booster.num_boosted_rounds(),
        "best_iteration": int(booster.best_iteration),
        "best_score": float(booster.best_score),
        "device": a["device"],
    }


def w_gpus(a: Result) -> Result:
    """How many CUDA devices the driver sees, and whether this xgboost can use them."""
    import xgboost as xgb

    from nightshift.train import visible_gpus

    n, why = visible_gpus()
    if n and not xgb.build_info().get("USE_CUDA"):
        n, why = 0, f"{why}, but this xgboost build has no CUDA support"
    return {"gpus": n, "why": why}


WORKERS: dict[str, Callable[[Result], Result]] = {
    "generate": w_generate,
    "setup": w_setup,
    "imports": w_imports,
    "step": w_step,
    "bare": w_bare,
    "gpus": w_gpus,
}


# ---- the driver (stays small: it imports neither pyarrow nor xgboost) -------------------------
MEASURED = (
    "train.py",
    "features.py",
    "model.py",
    "steps/train.py",
    "steps/gate.py",
    "registry.py",
    "evaluate.py",
    "logistic.py",
    "spec.py",
    "storage.py",
)


def run_worker(name: str, args: Result, home: Path, device: str = "cpu") -> Run:
    env = {**os.environ}
    for var in ("MLFLOW_TRACKING_URI", "NIGHTSHIFT_MLFLOW_ARTIFACTS", "NIGHTSHIFT_REQUIRE_GPU"):
        env.pop(var, None)  # tracking goes to SQLite under the scratch home
    env.update(NIGHTSHIFT_HOME=str(home), NIGHTSHIFT_DEVICE=device, MLFLOW_DISABLE_TELEMETRY="true")
    return harness.run_worker(__file__, name, args, home, env)


def _spec_yaml() -> Result:
    """The spec as plain YAML, read without pyarrow or pydantic (the driver stays small)."""
    import yaml

    return dict(yaml.safe_load(SPEC_PATH.read_text()))


def bench(rows_per_day: int, days: int, rounds: int | None, repeat: int, root: Path, keep: bool) -> Result:
    spec = _spec_yaml()
    t, name, delay = spec["training"], spec["name"], int(spec["label"]["delay_days"])
    base = root / f"train-{days}x{rows_per_day}"
    shutil.rmtree(base, ignore_errors=True)
    home = base / "home"
    home.mkdir(parents=True)
    store = base / "store"
    store_url = store.as_uri()
    all_days = [START + timedelta(days=i) for i in range(days)]
    n_val, n_hold = t["validation_days"], t["holdout_days"]
    split_days = {"train": all_days[: -(n_val + n_hold)], "validation": all_days[-(n_val + n_hold) : -n_hold]}

    def log(msg: str) -> None:
        print(f"  [{days} days x {rows_per_day:,} rows] {msg}", flush=True)

    log("writing the window (curated events + labels) ...")
    gen_args = {"store": store_url, "days": [d.isoformat() for d in all_days], "rows_per_day": rows_per_day}
    gen = run_worker("generate", gen_args, home).result
    log(f"{gen['parquet_bytes'] / 1e6:.0f} MB of Parquet in {gen['seconds']:.1f} s")

    def part(area: str, d: date) -> str:
        return str(store / area / name / f"dt={d.isoformat()}" / "part-0.parquet")

    event_files = {k: [part("curated", d) for d in v] for k, v in split_days.items()}
    label_files = [part("labels", d + timedelta(days=delay)) for v in split_days.values() for d in v]
    missing = [f for f in [*label_files, *event_files["train"]] if not Path(f).exists()]
    if missing:
        raise RuntimeError(f"the window's files are not where the bare baseline looks: {missing[:3]}")

    log("creating the MLflow database (not measured) ...")
    setup = run_worker("setup", {"dataset": name}, home).result
    imports = run_worker("imports", {}, home).result
    gpus = run_worker("gpus", {}, home).result

    bare_args = {"event_files": event_files, "label_files": label_files, "rounds": rounds}
    step_args = {"store": store_url, "window_days": days, "rounds": rounds}
    bare: list[Run] = []
    step: list[Run] = []
    for i in range(repeat):  # interleaved, so a burst of outside load hits both alike
        log(f"round {i + 1}/{repeat}: bare xgb.train ...")
        bare.append(run_worker("bare", {**bare_args, "device": "cpu"}, home))
        log(f"round {i + 1}/{repeat}: nightshift train_step ...")
        step.append(run_worker("step", step_args, home))
    gpu: Result = {}
    if gpus["gpus"]:
        log("GPU: bare xgb.train and train_step on cuda ...")
        gpu["bare"] = _flat_run(run_worker("bare", {**bare_args, "device": "cuda"}, home, device="cuda"))
        gpu["step"] = _flat_run(run_worker("step", step_args, home, device="cuda"))
    result = {
        "rows_per_day": rows_per_day,
        "days": days,
        "rounds_requested": rounds or t["num_boost_round"],
        "early_stopping_rounds": t["early_stopping_rounds"],
        "code": code_fingerprint(MEASURED),
        "repeat": repeat,
        "generate": gen,
        "setup": setup,
        "imports": imports,
        "gpus": gpus,
        "bare": [_flat_run(r) for r in bare],
        "step": [_flat_run(r) for r in step],
        "gpu": gpu,
    }
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return result


def _flat_run(r: Run) -> Result:
    return {**r.result, "wall_s": r.wall_s, "other_cores": r.other_cores}


def _phase(step: Result, name: str) -> float:
    return sum(p["seconds"] for p in step["phases"] if p["phase"] == name)


def table_rows(r: Result) -> list[Row]:
    bare = min(r["bare"], key=lambda x: x["seconds"])
    step = min(r["step"], key=lambda x: x["seconds"])
    fit = _phase(step, "xgb.train (_fit)")
    dm = _phase(step, "matrix + QuantileDMatrix (train, val)")
    bare_prep = bare["matrix_s"] + bare["dmatrix_s"]

    def per_round(seconds: float, x: Result) -> float:
        return seconds / x["rounds"] / (x["train_rows"] / 1e6)

    spr, bare_spr = per_round(fit, step), per_round(bare["fit_s"], bare)
    base_rss = r["imports"]["peak_rss"]
    model = ("rounds", "best_iteration", "best_score")
    same = all(step[k] == bare[k] for k in model)
    # what the step adds around the same xgb.train (noise in xgb.train itself cancels out)
    added = (step["seconds"] - fit) - (bare["seconds"] - bare["fit_s"])
    equalised = (bare["seconds"] + added) / bare["seconds"]
    rows = [
        Row(
            "train_step (whole) vs bare read+train",
            f"{step['seconds']:.2f} s",
            f"{bare['seconds']:.2f} s",
            step["seconds"] / bare["seconds"],
            f"<= {GOAL_STEP_VS_BARE}",
            verdict(step["seconds"] / bare["seconds"] <= GOAL_STEP_VS_BARE),
        ),
        Row(
            "  same, xgb.train time equalised",
            f"bare + {added:.2f} s",
            f"{bare['seconds']:.2f} s",
            equalised,
            f"<= {GOAL_STEP_VS_BARE}",
            verdict(equalised <= GOAL_STEP_VS_BARE) if same else "n/a",
        ),
        Row(
            "  same, per round trained",
            f"{step['seconds'] / step['rounds'] * 1e3:.1f} ms",
            f"{bare['seconds'] / bare['rounds'] * 1e3:.1f} ms",
            (step["seconds"] / step["rounds"]) / (bare["seconds"] / bare["rounds"]),
            "(info)",
            "",
        ),
        Row(
            "  overhead outside xgb.train",
            f"{step['seconds'] - fit:.2f} s",
            f"{bare['seconds'] - bare['fit_s']:.2f} s",
            None,
            "(info)",
            "",
        ),
        Row(
            "xgb.train inside the step vs bare",
            f"{fit:.2f} s",
            f"{bare['fit_s']:.2f} s",
            fit / bare["fit_s"],
            "(info)",
            "",
        ),
        Row(
            "s/round per 1M train rows",
            f"{spr:.4f} s",
            f"{bare_spr:.4f} s",
            spr / bare_spr,
            "(info)",
            "",
        ),
        Row(
            "rounds trained (best iteration)",
            f"{step['rounds']} ({step['best_iteration']})",
            f"{bare['rounds']} ({bare['best_iteration']})",
            None,
            "same model",
            "yes" if same else "NO",
        ),
        Row(
            "matrix + QuantileDMatrix",
            f"{dm:.2f} s",
            f"{bare_prep:.2f} s",
            dm / bare_prep if bare_prep else None,
            "(info)",
            "",
        ),
        Row(
            "load_window vs bare read + join",
            f"{_phase(step, 'load_window (read + join labels)'):.2f} s",
            f"{bare['read_s']:.2f} s (no holdout)",
            None,
            "(info)",
            "",
        ),
        Row(
            "step peak RSS / window Arrow",
            gib(step["peak_rss"]),
            gib(step["window_nbytes"]),
            step["peak_rss"] / step["window_nbytes"],
            "(info)",
            "",
        ),
        Row(
            "  same, interpreter baseline removed",
            gib(step["peak_rss"] - base_rss),
            f"imports {gib(base_rss)}",
            (step["peak_rss"] - base_rss) / step["window_nbytes"],
            "(info)",
            "",
        ),
        Row(
            "bare peak RSS / its Arrow (train+val)",
            gib(bare["peak_rss"]),
            gib(bare["nbytes"]),
            bare["peak_rss"] / bare["nbytes"],
            "(info)",
            "",
        ),
    ]
    if r["gpu"]:
        gb, gs = r["gpu"]["bare"], r["gpu"]["step"]
        speedup = bare_spr / per_round(gb["fit_s"], gb)
        rows += [
            Row(
                "GPU vs CPU: xgb.train s/round (bare)",
                f"cuda {per_round(gb['fit_s'], gb):.4f} s",
                f"cpu {bare_spr:.4f} s",
                speedup,
                f">= {GOAL_GPU_SPEEDUP:.0f}",
                verdict(speedup >= GOAL_GPU_SPEEDUP),
            ),
            Row(
                "GPU vs CPU: train_step (whole)",
                f"cuda {gs['seconds']:.2f} s ({gs['rounds']} r)",
                f"cpu {step['seconds']:.2f} s ({step['rounds']} r)",
                step["seconds"] / gs["seconds"],
                "(info)",
                "",
            ),
        ]
    else:
        rows.append(
            Row(
                "GPU vs CPU",
                "not measured",
                f"no GPU visible: {r['gpus']['why']}",
                None,
                f">= {GOAL_GPU_SPEEDUP:.0f}",
                "n/a",
            )
        )
    return rows


def print_report(r: Result) -> None:
    step = min(r["step"], key=lambda x: x["seconds"])
    bare = min(r["bare"], key=lambda x: x["seconds"])
    split = ", ".join(f"{k} {v['rows']:,} rows ({len(v['days'])} d)" for k, v in step["split"].items())
    print()
    print(
        f"== {step['window_rows']:,} labelled rows x {step['features']} features ({split}); "
        f"window Arrow {gib(step['window_nbytes'])}; at most {r['rounds_requested']} rounds, "
        f"early stopping {r['early_stopping_rounds']}; best of {r['repeat']} =="
    )
    head = ("metric", "nightshift", "baseline", "ratio", "goal", "")
    widths = [38, 24, 34, 6, 10, 4]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for row in table_rows(r):
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        cells = (row.metric, row.value, row.baseline, ratio, row.goal, row.verdict)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    print(f"train_step step by step (best run, {step['seconds']:.2f} s; peak = the step's own VmHWM):")
    totals: dict[str, Result] = {}
    for p in step["phases"]:
        t = totals.setdefault(p["phase"], {"seconds": 0.0, "calls": 0, "peak": 0})
        t.update(seconds=t["seconds"] + p["seconds"], calls=t["calls"] + 1, peak=max(t["peak"], p["peak"]))
    for name, t in totals.items():
        calls = f" x{t['calls']}" if t["calls"] > 1 else ""
        share = 100 * t["seconds"] / step["seconds"]
        print(f"  {name + calls:<52} {t['seconds']:7.2f} s  {share:5.1f} %   peak {gib(t['peak'])}")
    print(
        f"bare: read+join {bare['read_s']:.2f} s, matrix {bare['matrix_s']:.2f} s, QuantileDMatrix "
        f"{bare['dmatrix_s']:.2f} s, xgb.train {bare['fit_s']:.2f} s; train rows {bare['rows']['train']:,}, "
        f"validation rows {bare['rows']['validation']:,}"
    )
    print(
        f"step: device {step['device']}, validation AUC {step['validation_auc']:.4f}; imports (not timed) "
        f"{r['imports']['import_s']:.2f} s, RSS {gib(r['imports']['rss'])}; MLflow DB creation (not timed) "
        f"{r['setup']['setup_s']:.2f} s"
    )
    runs = {
        k: ", ".join(f"{x['seconds']:.2f} s (outside load {x['other_cores']:.2f})" for x in r[k])
        for k in ("step", "bare")
    }
    print(f"all runs: step {runs['step']}; bare {runs['bare']}")
    others = [x["other_cores"] for k in ("bare", "step") for x in r[k]]
    print(
        f"outside load: {max(others):.2f} cores at most during the measured runs "
        f"(mean {sum(others) / len(others):.2f})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows-per-day", type=int, help="rows per event day (default 100000; --quick 10000)")
    p.add_argument("--days", type=int, help="event days in the window (default: the spec's window_days)")
    p.add_argument("--rounds", type=int, help="most boosting rounds (default: the spec's; --quick 100)")
    p.add_argument("--repeat", type=int, default=1, help="best of N (default 1)")
    p.add_argument("--quick", action="store_true", help="smoke size: 10k rows a day, at most 100 rounds")
    p.add_argument("--root", type=Path, default=Path("/tmp/bench"), help="scratch folder")
    p.add_argument("--keep", action="store_true", help="keep the generated store and MLflow runs")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--args", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.worker:
        worker_main(WORKERS, ns.worker, ns.args, ns.out)
        return 0

    t = _spec_yaml()["training"]
    rows_per_day = ns.rows_per_day or (10_000 if ns.quick else 100_000)
    days = ns.days or int(t["window_days"])
    rounds = ns.rounds or (100 if ns.quick else None)
    if days < t["validation_days"] + t["holdout_days"] + 1:
        p.error(f"--days must leave at least one training day (> {t['validation_days'] + t['holdout_days']})")
    root: Path = ns.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    code = code_fingerprint(MEASURED)
    print(
        f"training benchmark: nightshift code {code}, {os.cpu_count()} cores, "
        f"{gib(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))} RAM, Python "
        f"{sys.version.split()[0]}, xgboost {version('xgboost')}, mlflow {version('mlflow')}, "
        f"load {os.getloadavg()[0]:.2f}, scratch {root}",
        flush=True,
    )
    r = bench(rows_per_day, days, rounds, ns.repeat, root, ns.keep)
    print_report(r)
    if r["code"] != code:
        print(f"WARNING: include/nightshift changed during the run ({code} -> {r['code']}); re-run")
    out = ns.json or root / "train-results.json"
    out.write_text(json.dumps(r, indent=2, default=str))
    print(f"\nraw results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
