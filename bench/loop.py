"""Loop effectiveness: does nightshift's monitor -> alert -> guarded retrain loop keep the served
model as good as retraining every day, for a fraction of the retrains?

A thin caller of ``nightshift backtest`` (:mod:`nightshift.backtest`) on generated drift
scenarios of ``datasets/payments.yaml``: each run generates ``--days`` days (drift from day
``--onset``) into a store of its own with ``nightshift.demo.datagen.generate`` and replays them
with the product's steps (ingest, score, bootstrap guard rail, train, gate, promote, monitor, alert,
retrain guard rails) under the three policies of the backtest:

(a) *never*: the first champion serves for ever;
(b) *daily*: every day a model is trained on the spec's window and replaces the champion;
(c) *nightshift*: the spec's policy (monitor -> alert -> guard rails -> train -> gate).

Every (scenario, seed, onset) is one backtest; the served AUC of a day is the AUC of the
predictions written for it with its labels. Per run it prints the mean served AUC from the
onset on and over every served day, the retrains of (b) and (c), the share of the (b) - (a)
gap that (c) recovers and the retrain ratio (c) / (b); then, per scenario, the verdict on the
*worst* run against the goal (>= 90 % of the gap with <= 25 % of the retrains); a run whose
(b) - (a) gap is below 0.01 AUC has no gap to recover and is not judged. With ``--show``,
the day-by-day AUC and (c)'s alerts and decisions of each run.

    python bench/loop.py                                  # 3 scenarios x 5 seeds x 2 onsets
    python bench/loop.py --seeds 11 --onsets 15           # one run per scenario
    python bench/loop.py --scenarios concept --rows 2000  # smaller
    python bench/loop.py --set retrain.min_days_after_onset=5
    python bench/loop.py --json loop.json --resume         # go on with a sweep that was stopped
    python bench/loop.py --report a.json b.json            # the tables of earlier sweeps, merged
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from harness import code_fingerprint, verdict
from nightshift import backtest
from nightshift.demo.datagen import Scenario, generate
from nightshift.runner import LineReporter
from nightshift.spec import DatasetSpec, find_spec, parse_spec
from nightshift.storage import Store

START = date(2026, 6, 1)  # day index 0
SEEDS = (11, 12, 13, 14, 15)  # 11: the seed of tests/integration/test_drift_scenarios.py
ONSETS = (12, 15)

# goals of the issue
GOAL_SHARE = 0.90  # share of the (b) - (a) gap (c) recovers, higher is better
GOAL_RATIO = 0.25  # retrains (c) / retrains (b), lower is better
MIN_GAP = backtest.MIN_GAP  # a smaller (b) - (a) AUC gap makes the share meaningless

SCENARIOS = ("covariate", "concept", "both")
MEASURED = ("backtest.py", "steps/train.py", "steps/gate.py", "steps/score.py", "steps/monitor.py",
            "steps/retrain.py", "monitor.py", "retrain.py", "evaluate.py", "logistic.py", "train.py",
            "demo/datagen.py", "model.py", "spec.py", "ingest.py", "validate.py")  # fmt: skip
NAMES = {"never": "(a) never", "daily": "(b) daily", "spec": "(c) nightshift"}

log = logging.getLogger("bench.loop")


def scenario(name: str, onset: int) -> Scenario:
    return {
        "covariate": Scenario(covariate_drift_from=onset),
        "concept": Scenario(concept_drift_from=onset),
        "both": Scenario(covariate_drift_from=onset, concept_drift_from=onset),
    }[name]


def dt(i: int) -> date:
    return START + timedelta(days=i)


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


# ---- one run ------------------------------------------------------------------------------


class _Quiet(LineReporter):
    """Progress as one log line per day."""

    def done(self, result: Any) -> None:
        log.info("  %s %s", result.day, result.message[:160])


def _mean(result: dict[str, Any], policy: str, first: int) -> float:
    vals = [
        r["policies"][policy]["served_auc"]
        for r in result["days"]
        if (date.fromisoformat(r["day"]) - START).days >= first
        and r["policies"][policy]["served_auc"] is not None
    ]
    return sum(vals) / len(vals) if vals else float("nan")


def one_run(name: str, spec: DatasetSpec, seed: int, onset: int, args: argparse.Namespace) -> dict[str, Any]:
    """Generate the scenario's days and backtest them; the comparison of this run."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"loop-{name}-{seed}-{onset}-", dir=args.tmp) as tmp:
        store = Store((Path(tmp) / "landing-store").as_uri())
        generate(store, spec, START, args.days, args.rows, seed, scenario(name, onset))
        gen_s = time.perf_counter() - t0
        days = [dt(i) for i in range(args.days)]
        result = backtest.run(store, spec, days, Path(tmp) / "out", _Quiet(sys.stderr))
    s = result["summary"]
    served = [r for r in result["days"] if r["policies"]["never"]["served_auc"] is not None]
    serve0 = (date.fromisoformat(served[0]["day"]) - START).days if served else None
    after = {p: _mean(result, p, onset) for p in backtest.POLICIES}
    every = {p: _mean(result, p, serve0 if serve0 is not None else args.days) for p in backtest.POLICIES}
    gap = after["daily"] - after["never"]
    meaningful = not math.isnan(gap) and abs(gap) >= MIN_GAP
    share = (after["spec"] - after["never"]) / gap if meaningful else float("nan")
    b, c = s["retrains"]["daily"], s["retrains"]["spec"]
    ratio = c / b if b else float("nan")
    ok = meaningful and share >= GOAL_SHARE and ratio <= GOAL_RATIO
    fc = result["first_champion"] or {}
    return {
        "scenario": name,
        "seed": seed,
        "onset": onset,
        "first_champion_day": serve0,
        "first_champion": {k: fc.get(k) for k in ("version", "model_kind", "reason", "window")},
        "mean_after": after,
        "mean_served": every,
        "backtest_mean": s["mean_served_auc"],
        "gap": gap,
        "gap_meaningful": meaningful,
        "share": share,
        "retrains": {"b": b, "c": c},
        "promotions": {"b": s["promotions"]["daily"], "c": s["promotions"]["spec"]},
        "ratio": ratio,
        "verdict": verdict(ok) if meaningful else "n/a",
        "timings": {
            **result["timings"],
            "generate_s": round(gen_s, 1),
            "run_s": round(time.perf_counter() - t0, 1),
        },
        "days": [
            {
                "day": (date.fromisoformat(r["day"]) - START).days,
                "drift_share": r["drift_share"],
                **{
                    p: (r["policies"][p]["version"], r["policies"][p]["served_auc"])
                    for p in backtest.POLICIES
                },
            }
            for r in result["days"]
        ],
        "events": [
            {"day": (date.fromisoformat(r["day"]) - START).days, "text": backtest.event_text(e)}
            for r in result["days"]
            for e in r["policies"]["spec"]["events"]
        ],
        "bootstrap": [
            {"day": (date.fromisoformat(r["day"]) - START).days, "text": backtest.event_text(e)}
            for r in result["days"]
            for e in r["bootstrap"]
            if (e.get("outcome") or {}).get("status") not in (None, "not-trained")
        ],
    }


# ---- the report ---------------------------------------------------------------------------


def _pct(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.0%}"


def runs_table(runs: list[dict[str, Any]], last: int) -> str:
    lines = [
        f"| scenario | seed | onset | first champion (day) | mean AUC onset..{last}: (a) / (b) / (c) "
        "| mean AUC served days: (a) / (b) / (c) | retrains (b) / (c) | gap recovered "
        "| retrain ratio | goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        a, s = r["mean_after"], r["mean_served"]
        share = _pct(r["share"]) if r["gap_meaningful"] else f"n/a (gap {r['gap']:+.4f})"
        kind = r["first_champion"].get("model_kind") or "?"
        lines.append(
            f"| {r['scenario']} | {r['seed']} | {r['onset']} | {r['first_champion_day']} ({kind}) "
            f"| {a['never']:.4f} / {a['daily']:.4f} / {a['spec']:.4f} "
            f"| {s['never']:.4f} / {s['daily']:.4f} / {s['spec']:.4f} "
            f"| {r['retrains']['b']} / {r['retrains']['c']} | {share} | {r['ratio']:.2f} | {r['verdict']} |"
        )
    return "\n".join(lines)


def worst_table(runs: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Per scenario: the worst share and the worst ratio over its judged runs, the verdict."""
    lines = [
        "| scenario | runs | judged (gap >= 0.01) | worst gap recovered | worst retrain ratio "
        "| verdict (worst case) |",
        "|---|---|---|---|---|---|",
    ]
    out = []
    for name in dict.fromkeys(r["scenario"] for r in runs):
        mine = [r for r in runs if r["scenario"] == name]
        judged = [r for r in mine if r["gap_meaningful"]]
        worst_share = min((r["share"] for r in judged), default=float("nan"))
        ratios = [r["ratio"] for r in mine if not math.isnan(r["ratio"])]
        worst_ratio = max(ratios, default=float("nan"))
        ok = bool(judged) and worst_share >= GOAL_SHARE and all(r["ratio"] <= GOAL_RATIO for r in judged)
        v = verdict(ok) if judged else "n/a (no gap in any run)"
        where = min(judged, key=lambda r: r["share"]) if judged else None
        at = f" (seed {where['seed']}, onset {where['onset']})" if where else ""
        lines.append(
            f"| {name} | {len(mine)} | {len(judged)} | {_pct(worst_share)}{at} | {worst_ratio:.2f} | {v} |"
        )
        out.append({"scenario": name, "runs": len(mine), "judged": len(judged), "worst_share": worst_share,
                    "worst_ratio": worst_ratio, "verdict": v})  # fmt: skip
    return "\n".join(lines), out


def series(r: dict[str, Any]) -> str:
    lines = [
        "| day | date | drift (c) | (a) never | (b) daily | (c) nightshift |",
        "|---|---|---|---|---|---|",
    ]
    for d in r["days"]:
        cells = []
        for p in backtest.POLICIES:
            v, auc = d[p]
            cells.append("-" if auc is None else f"v{v} {auc:.4f}")
        share = "-" if d["drift_share"] is None else f"{d['drift_share']:.2f}"
        lines.append(f"| {d['day']} | {dt(d['day'])} | {share} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(runs: list[dict[str, Any]], last: int, show: bool) -> list[dict[str, Any]]:
    """Print every run, the verdict on the worst case per scenario (returned) and, with
    ``show``, each run's days and (c)'s decisions."""
    print(f"\n## Every run (goal: >= {GOAL_SHARE:.0%} of the (b)-(a) gap from the onset on, with <= "
          f"{GOAL_RATIO:.0%} of (b)'s retrains)\n")  # fmt: skip
    print(runs_table(runs, last))
    text, worst = worst_table(runs)
    print("\n## The verdict on the worst case, per scenario\n")
    print(text)
    for r in runs if show else []:
        print(f"\n### {r['scenario']}, seed {r['seed']}, onset {r['onset']}\n")
        print(series(r))
        print("\nbootstrap: " + ("; ".join(f"day {e['day']}: {e['text']}" for e in r["bootstrap"]) or "-"))
        print("(c) nightshift:")
        print("\n".join(f"  day {e['day']}: {e['text']}" for e in r["events"]) or "  (no alert)")
    return worst


def report(paths: list[Path], show: bool) -> None:
    """The tables of earlier sweeps (their ``--json`` files), merged (a run in two files: the
    first file's); each file's setup and code."""
    runs: list[dict[str, Any]] = []
    days = set()
    for path in paths:
        data = json.loads(path.read_text())
        state = "complete" if data.get("complete") else "stopped before the end"
        print(f"{path}: {len(data['runs'])} run(s), {data['days']} days x {data['rows']:,} rows, overrides "
              f"{data['overrides'] or 'none'}, code {data['code']} ({state})")  # fmt: skip
        seen = {(r["scenario"], r["seed"], r["onset"]) for r in runs}
        runs += [r for r in data["runs"] if (r["scenario"], r["seed"], r["onset"]) not in seen]
        days.add(data["days"])
    if len(days) > 1:
        raise SystemExit(f"--report: the files replay different numbers of days ({sorted(days)})")
    tables(runs, days.pop() - 1, show)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    ap.add_argument("--rows", type=int, default=4000, help="rows per day (default 4000)")
    ap.add_argument("--days", type=int, default=30, help="simulated days, indexes 0..N-1 (default 30)")
    ap.add_argument(
        "--onsets", default=",".join(map(str, ONSETS)), help="drift start day indexes (default 12,15)"
    )
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="data seeds (default 11,12,13,14,15)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a spec override, e.g. retrain.cooldown_days=1 (YAML value); repeatable",
    )
    ap.add_argument("--json", type=Path, help="write the raw results here (after every run)")
    ap.add_argument(
        "--resume", action="store_true", help="keep the runs already in --json (same setup and code)"
    )
    ap.add_argument("--show", action="store_true", help="print each run's days and (c)'s decisions")
    ap.add_argument(
        "--report",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="print the tables of earlier --json files, run nothing",
    )
    ap.add_argument("--tmp", default=None, help="where the runs' stores go (default: the system's temp dir)")
    args = ap.parse_args()
    if args.report:
        report(args.report, args.show)
        return
    # the libraries' chatter (GX's docs sites, MLflow's advice) stays out: warnings and up only
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    for noisy in ("nightshift", "evidently", "urllib3", "mlflow", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")

    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    onsets = [int(x) for x in args.onsets.split(",") if x.strip()]
    base = find_spec("payments")
    spec = override(base, args.set) if args.set else base
    if not all(0 < o < args.days for o in onsets):
        raise SystemExit(f"every onset must be within the {args.days} days")
    print(
        f"loop effectiveness (nightshift backtest): scenarios {', '.join(names)}; {args.days} days x "
        f"{args.rows:,} rows, seeds {seeds}, drift from day(s) {onsets}; label delay {spec.label.delay_days} "
        f"days; code {code_fingerprint(MEASURED)}",
        flush=True,
    )
    print(
        f"policy (c): {json.dumps(knobs(spec))}"
        + (f"  (overrides: {', '.join(args.set)})" if args.set else "")
    )
    t0 = time.perf_counter()
    setup = {"rows": args.rows, "days": args.days, "overrides": args.set, "code": code_fingerprint(MEASURED)}
    done: dict[tuple[str, int, int], dict[str, Any]] = {}
    if args.resume and args.json and args.json.exists():
        earlier = json.loads(args.json.read_text())
        if {k: earlier.get(k) for k in setup} != setup:
            raise SystemExit(f"--resume: {args.json} is of another setup or code: {earlier.get('code')}")
        done = {(r["scenario"], r["seed"], r["onset"]): r for r in earlier["runs"]}
    runs = []
    for name in names:
        for onset in onsets:
            for seed in seeds:
                if (name, seed, onset) in done:
                    log.info("[%s seed %d onset %d] kept from %s", name, seed, onset, args.json)
                    runs.append(done[(name, seed, onset)])
                    continue
                log.info("[%s seed %d onset %d] start", name, seed, onset)
                r = one_run(name, spec, seed, onset, args)
                b, c, took = r["retrains"]["b"], r["retrains"]["c"], r["timings"]["run_s"]
                log.info("[%s seed %d onset %d] share %s, retrains %d / %d, %.0f s",
                         name, seed, onset, _pct(r["share"]), b, c, took)  # fmt: skip
                runs.append(r)
                done[(name, seed, onset)] = r
                if args.json:  # after every run: a long sweep that stops keeps what it did
                    partial = {**setup, "complete": False, "runs": list(done.values())}
                    args.json.write_text(json.dumps(partial, indent=2, default=str))
    wall = time.perf_counter() - t0
    worst = tables(runs, args.days - 1, args.show)
    tsum = sum(r["timings"]["run_s"] for r in runs)
    print(f"\nwall time {wall:.0f} s ({len(runs)} run(s), {tsum / max(len(runs), 1):.0f} s each on average)")
    if args.json:
        # every run of this sweep, and those of earlier sweeps kept with --resume (other scenarios)
        out = {**setup, "onsets": onsets, "seeds": seeds, "complete": True, "wall_s": wall,
               "runs": list(done.values()), "worst": worst}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"raw results: {args.json}")


if __name__ == "__main__":
    main()
