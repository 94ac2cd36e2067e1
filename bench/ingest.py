"""Ingest benchmark (issue 2): nightshift's ingest measured against bare pyarrow, in one run.

For each size it generates one clean CSV day of the demo dataset (``datasets/payments.yaml``)
with :func:`nightshift.datagen.write_day` into a local store, then measures:

1. throughput (MB of CSV per second) of ``stage_files`` (read + cast + staged Parquet) and of the
   whole ``ingest_partition`` (+ GX validation + publish), each against the bare baseline
   ``pyarrow.csv.read_csv(file)`` + ``pyarrow.parquet.write_table(table, out)`` on the same file;
2. the GX validation time (``run_suite``) against the same checks written as vectorised pandas on
   the same frame, the GX fixed cost (a 1000-row frame) and the GX import time;
3. the peak RSS of the ingest against the Arrow size of the staged batch (``table.nbytes``).

Every measurement runs in a fresh subprocess (peaks never mix); times are the best of N. The
script prints ratios, goals and PASS/MISS; it never fails on a number (benchmarks report).

    python bench/ingest.py                   # 1M and 10M rows
    python bench/ingest.py --rows 200000     # quick smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import harness
from harness import (
    INCLUDE,
    REPO,
    Result,
    Row,
    Run,
    code_fingerprint,
    gib,
    reset_peak,
    rss_now,
    rss_peak,
    ru_maxrss,
    verdict,
    worker_main,
)

SPEC_PATH = REPO / "datasets" / "payments.yaml"
DAY = date(2024, 3, 1)
SEED = 42
MB = 1e6
SMALL_ROWS = 1000

# goals of issue 2
GOAL_STAGE_VS_BARE = 0.8  # throughput ratio, higher is better
GOAL_GX_VS_PANDAS = 2.0  # time ratio, lower is better
GOAL_GX_FIXED_S = 5.0
GOAL_RSS_VS_ARROW = 2.0

if str(INCLUDE) not in sys.path:
    sys.path.insert(0, str(INCLUDE))


# ---- the pandas equivalent of the GX suite ---------------------------------------------------
def pandas_checks(df: Any, suite: dict[str, Any], parameters: dict[str, Any]) -> list[Result]:
    """The suite's expectations evaluated with vectorised pandas, with GX's semantics:
    map expectations ignore nulls and pass when ``unexpected / non-null <= 1 - mostly``;
    not-null counts nulls over all rows; unique flags every row of a repeated value."""

    def value(v: Any) -> Any:
        return parameters[v["$PARAMETER"]] if isinstance(v, dict) and "$PARAMETER" in v else v

    n = len(df)
    out: list[Result] = []
    for exp in suite["expectations"]:
        kind: str = exp["type"]
        kw = {k: value(v) for k, v in exp["kwargs"].items()}
        column = kw.get("column")
        if kind == "expect_table_columns_to_match_set":
            cols, want = set(df.columns), set(kw["column_set"])
            ok = cols == want if kw.get("exact_match", True) else want <= cols
            out.append({"type": kind, "column": None, "success": ok, "unexpected": None})
            continue
        if kind == "expect_table_row_count_to_be_between":
            lo, hi = kw.get("min_value"), kw.get("max_value")
            ok = (lo is None or n >= lo) and (hi is None or n <= hi)
            out.append({"type": kind, "column": None, "success": ok, "unexpected": None})
            continue
        s = df[column]
        if kind == "expect_column_values_to_not_be_null":
            domain, bad = n, int(s.isna().sum())
        else:
            valid = s.notna()
            domain = int(valid.sum())
            if kind == "expect_column_values_to_be_unique":
                bad = int((s.duplicated(keep=False) & valid).sum())
            elif kind == "expect_column_values_to_be_between":
                lo, hi = kw.get("min_value"), kw.get("max_value")
                inside = valid
                if lo is not None:
                    inside = inside & ((s > lo) if kw.get("strict_min") else (s >= lo))
                if hi is not None:
                    inside = inside & ((s < hi) if kw.get("strict_max") else (s <= hi))
                bad = domain - int(inside.sum())
            elif kind == "expect_column_values_to_be_in_set":
                bad = int((valid & ~s.isin(kw["value_set"])).sum())
            else:
                raise NotImplementedError(f"no pandas equivalent for {kind}")
        mostly = float(kw.get("mostly") or 1.0)
        ok = domain == 0 or (domain - bad) / domain >= mostly
        out.append({"type": kind, "column": column, "success": ok, "unexpected": bad})
    return out


def _gx_results(obj: Any) -> list[dict[str, Any]]:
    """Every expectation result in a GX JSON result (one suite run, or a list of parts)."""
    if isinstance(obj, dict):
        if "expectation_config" in obj:
            return [obj]
        return [r for v in obj.values() for r in _gx_results(v)]
    if isinstance(obj, list):
        return [r for v in obj for r in _gx_results(v)]
    return []


def compare_with_gx(gx_json: dict[str, Any], mine: list[Result]) -> list[str]:
    """Differences between GX's verdicts/unexpected counts and the pandas ones (empty: agree)."""
    ours = {(m["type"], m["column"]): m for m in mine}
    theirs = {}
    for r in _gx_results(gx_json):
        cfg = r["expectation_config"]
        theirs[(cfg["type"], cfg["kwargs"].get("column"))] = r
    only = ours.keys() ^ theirs.keys()
    diffs = [f"{t}({c}): only in {'pandas' if (t, c) in ours else 'GX'}" for t, c in only]
    for key in ours.keys() & theirs.keys():
        r, m = theirs[key], ours[key]
        label = f"{key[0]}({key[1]})"
        if bool(r["success"]) != m["success"]:
            diffs.append(f"{label}: GX success={r['success']} pandas={m['success']}")
            continue
        gx_bad = (r.get("result") or {}).get("unexpected_count")
        if gx_bad is not None and m["unexpected"] is not None and gx_bad != m["unexpected"]:
            diffs.append(f"{label}: GX unexpected={gx_bad} pandas={m['unexpected']}")
    return sorted(diffs)


# ---- workers (each runs in its own fresh interpreter) ----------------------------------------
def _spec() -> Any:
    from nightshift.spec import load_spec

    return load_spec(SPEC_PATH)


def _import_stack(gx: bool) -> dict[str, float]:
    """Import what the measured code imports; with ``gx`` also pandas and Great Expectations."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    t0 = time.perf_counter()
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    import nightshift.ingest
    import nightshift.validate  # noqa: F401

    t1 = time.perf_counter()
    times = {"import_arrow_nightshift_s": t1 - t0}
    if gx:
        import pandas  # noqa: F401

        t2 = time.perf_counter()
        import great_expectations  # noqa: F401

        t3 = time.perf_counter()
        times.update(import_pandas_s=t2 - t1, import_gx_s=t3 - t2)
    return times


def _ingest_input() -> str:
    """What ``ingest_partition`` hands ``run_suite`` in this version of the code: the staged
    Parquet ``path``, the Arrow ``table`` or a pandas ``frame`` (read from the annotation)."""
    import inspect

    from nightshift.validate import run_suite

    first = str(next(iter(inspect.signature(run_suite).parameters.values())).annotation)
    return "path" if "Path" in first else "table" if "Table" in first else "frame"


def _peaks() -> Result:
    return {"peak_rss": rss_peak(), "ru_maxrss": ru_maxrss()}


def w_generate(a: Result) -> Result:
    from nightshift.datagen import Scenario, write_day
    from nightshift.storage import Store

    t0 = time.perf_counter()
    uris = write_day(Store(a["store"]), _spec(), DAY, 0, a["rows"], SEED, Scenario())
    path = uris["events"].removeprefix("file://")
    return {"csv": path, "bytes": os.path.getsize(path), "seconds": time.perf_counter() - t0}


def w_imports(a: Result) -> Result:
    times = _import_stack(gx=a["gx"])
    import pyarrow as pa

    return {**times, "rss": rss_now(), **_peaks(), "arrow_pool": pa.default_memory_pool().backend_name}


def w_bare(a: Result) -> Result:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rss0 = rss_now()
    c0, t0 = time.process_time(), time.perf_counter()
    table = pacsv.read_csv(a["csv"])
    pq.write_table(table, a["out"])
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    peaks = _peaks()
    return {"seconds": seconds, "cpu_s": cpu_s, "rss_before": rss0, **peaks, "nbytes": table.nbytes,
            "rows": table.num_rows}  # fmt: skip


def w_stage(a: Result) -> Result:
    _import_stack(gx=False)
    import pyarrow.parquet as pq

    from nightshift.ingest import stage_files
    from nightshift.storage import Store

    spec, store, staging = _spec(), Store(a["store"]), Path(a["staging"])
    staging.unlink(missing_ok=True)
    files = store.list_files(store.landing_dir(spec.name, "events", DAY), spec.landing.pattern)
    rss0 = rss_now()
    c0, t0 = time.process_time(), time.perf_counter()
    staged = stage_files(store, files, spec, "events", staging)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    peaks = _peaks()  # before the staged table is loaded below
    nbytes = pq.read_table(staging).nbytes if not staged.fatal else 0
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rss_before": rss0,
        **peaks,
        "rows": staged.rows,
        "fatal": staged.fatal,
        "checks": [c.label + ": " + c.details for c in staged.checks],
        "nbytes": nbytes,
        "staged_file_bytes": staging.stat().st_size if staging.exists() else 0,
    }


def w_ingest(a: Result) -> Result:
    _import_stack(gx=True)  # GX's import is measured apart (w_imports), not in the throughput
    import nightshift.validate as nv
    from nightshift.ingest import ingest_partition
    from nightshift.storage import Store
    from nightshift.validate import BatchRejected

    gx_calls: list[Result] = []
    real_run_suite = nv.run_suite

    def timed_run_suite(*args: Any, **kwargs: Any) -> Any:  # what GX costs inside the ingest
        t0 = time.perf_counter()
        out = real_run_suite(*args, **kwargs)
        gx_calls.append(
            {
                "seconds": time.perf_counter() - t0,
                "input": type(args[0]).__name__,
                "result_format": kwargs.get("result_format", "default"),
            }
        )
        return out

    nv.run_suite = timed_run_suite
    spec, store = _spec(), Store(a["store"])
    rss0 = rss_now()
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        outcome = ingest_partition(store, spec, "events", DAY, work_dir=Path(a["work"]))
    except BatchRejected as exc:
        outcome = exc.outcome
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    peaks = _peaks()
    report = store.read_json(store.reports_dir(spec.name, "validation", DAY) + "/events.json")
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rss_before": rss0,
        **peaks,
        "success": outcome.success,
        "reason": outcome.reason(),
        "stats": report.get("stats", {}),
        "gx_calls": gx_calls,
    }


def w_validate(a: Result) -> Result:
    """GX ``run_suite`` against :func:`pandas_checks` on the same frame (``to_validation_frame``)."""
    _import_stack(gx=True)
    import pyarrow.parquet as pq

    from nightshift.ingest import to_validation_frame
    from nightshift.validate import load_suite, run_suite, suite_parameters

    spec = _spec()
    staging = Path(a["staging"])
    t0 = time.perf_counter()
    table = pq.read_table(staging)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = to_validation_frame(table, spec)
    frame_s = time.perf_counter() - t0
    suite, params = load_suite(spec, "events"), suite_parameters(spec, DAY)
    del table
    small = df.head(SMALL_ROWS).copy()

    t0 = time.perf_counter()
    run_suite(small, suite, params)  # the first call in a process pays GX's lazy set-up
    first_small_s = time.perf_counter() - t0

    gx_s: list[float] = []
    pd_s: list[float] = []
    small_s: list[float] = []
    gx_json: dict[str, Any] = {}
    mine: list[Result] = []
    for _ in range(a["repeat"]):
        t0 = time.perf_counter()
        _, gx_json = run_suite(df, suite, params)
        gx_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        mine = pandas_checks(df, suite, params)
        pd_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_suite(small, suite, params)
        small_s.append(time.perf_counter() - t0)
    if a.get("profile"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(run_suite, df, suite, params)
        prof.dump_stats(a["profile"])
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    return {
        "read_s": read_s,
        "frame_s": frame_s,
        "frame_bytes": int(df.memory_usage(deep=True).sum()),
        "rows": len(df),
        "expectations": len(suite["expectations"]),
        "gx_s": gx_s,
        "pandas_s": pd_s,
        "gx_small_s": small_s,
        "gx_first_small_s": first_small_s,
        "diffs": compare_with_gx(gx_json, mine),
        "all_pass": all(m["success"] for m in mine),
    }


def w_phases(a: Result) -> Result:
    """The real ``ingest_partition``, its steps timed from outside: ``stage_files``,
    ``to_validation_frame``, ``run_suite`` and ``Store.put_file`` are wrapped, the time
    between them (e.g. ``pq.read_table``) is reported as a step of its own; each step's
    peak RSS is its own (VmHWM reset at each boundary)."""
    _import_stack(gx=True)
    import nightshift.ingest as ni
    import nightshift.validate as nv
    from nightshift.storage import Store

    spec, store = _spec(), Store(a["store"])
    phases: list[Result] = []
    can_reset = reset_peak()
    mark = {"t": time.perf_counter(), "rss": rss_now()}

    def record(name: str, seconds: float, before: int) -> None:
        peak = rss_peak() if can_reset else None
        phases.append(
            {"phase": name, "seconds": seconds, "rss_before": before, "rss_after": rss_now(), "peak": peak}
        )
        reset_peak()
        mark.update(t=time.perf_counter(), rss=rss_now())

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            gap = time.perf_counter() - mark["t"]
            if gap > 0.01:
                record("(between the steps)", gap, int(mark["rss"]))
            before, t0 = rss_now(), time.perf_counter()
            out = fn(*args, **kwargs)
            record(name, time.perf_counter() - t0, before)
            return out

        return timed

    ni.stage_files = wrap("stage_files", ni.stage_files)
    ni.to_validation_frame = wrap("to_validation_frame", ni.to_validation_frame)
    nv.run_suite = wrap(f"run_suite({_ingest_input()}) (GX)", nv.run_suite)
    Store.put_file = wrap("publish (Store.put_file)", Store.put_file)  # type: ignore[method-assign]
    t0 = time.perf_counter()
    ni.ingest_partition(store, spec, "events", DAY, work_dir=Path(a["work"]))
    total = time.perf_counter() - t0
    record("(after the steps)", time.perf_counter() - mark["t"], int(mark["rss"]))
    return {"phases": phases, "total_s": total, **_peaks()}


WORKERS: dict[str, Callable[[Result], Result]] = {
    "generate": w_generate,
    "imports": w_imports,
    "bare": w_bare,
    "stage": w_stage,
    "ingest": w_ingest,
    "validate": w_validate,
    "phases": w_phases,
}


# ---- the driver (stays small: it imports neither pyarrow nor pandas) -------------------------
MEASURED = ("ingest.py", "validate.py", "storage.py", "spec.py", "datagen.py")


def run_worker(name: str, args: Result, root: Path) -> Run:
    env = {**os.environ}
    env.setdefault("NIGHTSHIFT_HOME", str(root / "home"))
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    return harness.run_worker(__file__, name, args, root, env, show_stderr=bool(args.get("profile")))


def _mb(n: float) -> str:
    return f"{n / MB:.0f} MB"


def bench_size(rows: int, repeat: int, root: Path, keep: bool, profile: bool) -> Result:
    base = root / f"rows-{rows}"
    store_url = (base / "store").as_uri()
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"  [{rows:,} rows] {msg}", flush=True)

    log("generating the CSV day ...")
    gen = run_worker("generate", {"store": store_url, "rows": rows}, root).result
    csv_path, csv_bytes = gen["csv"], gen["bytes"]
    log(f"{_mb(csv_bytes)} CSV in {gen['seconds']:.1f} s")

    imports = [run_worker("imports", {"gx": True}, root) for _ in range(repeat)]
    imports_nogx = run_worker("imports", {"gx": False}, root)

    bare: list[Run] = []
    stage: list[Run] = []
    ingest: list[Run] = []
    common = {"store": store_url, "csv": csv_path, "work": str(work)}
    for i in range(repeat):  # interleaved, so a burst of outside load hits all three alike
        log(f"round {i + 1}/{repeat}: bare, stage, ingest ...")
        bare.append(run_worker("bare", {**common, "out": str(work / "bare.parquet")}, root))
        stage.append(run_worker("stage", {**common, "staging": str(work / "staged.parquet")}, root))
        ingest.append(run_worker("ingest", common, root))
    log("validation: GX vs pandas ...")
    val_args: Result = {"staging": str(work / "staged.parquet"), "repeat": repeat}
    if profile:
        val_args["profile"] = str(base / "run_suite.prof")
    validate = run_worker("validate", val_args, root)
    log("ingest phases ...")
    phases = run_worker("phases", common, root)

    result = {
        "rows": rows,
        "code": code_fingerprint(MEASURED),
        "repeat": repeat,
        "csv_bytes": csv_bytes,
        "generate_s": gen["seconds"],
        "imports": [r.result for r in imports],
        "imports_nogx": imports_nogx.result,
        "bare": [{**r.result, "wall_s": r.wall_s, "other_cores": r.other_cores} for r in bare],
        "stage": [{**r.result, "wall_s": r.wall_s, "other_cores": r.other_cores} for r in stage],
        "ingest": [{**r.result, "wall_s": r.wall_s, "other_cores": r.other_cores} for r in ingest],
        "validate": {**validate.result, "other_cores": validate.other_cores},
        "phases": {**phases.result, "other_cores": phases.other_cores},
    }
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return result


def table_rows(r: Result) -> list[Row]:
    csv_mb = r["csv_bytes"] / MB
    bare = min(r["bare"], key=lambda x: x["seconds"])
    stage = min(r["stage"], key=lambda x: x["seconds"])
    ingest = min(r["ingest"], key=lambda x: x["seconds"])
    nbytes = stage["nbytes"]
    v = r["validate"]
    gx_s, pd_s = min(v["gx_s"]), min(v["pandas_s"])
    gx_small = min(v["gx_small_s"])
    gx_in_s = min(sum(c["seconds"] for c in x["gx_calls"]) for x in r["ingest"])
    gx_in: Result = next((c for x in r["ingest"] for c in x["gx_calls"]), {})
    gx_import = min(i["import_gx_s"] for i in r["imports"])
    base_rss = max(i["peak_rss"] for i in r["imports"])
    base_rss_nogx = r["imports_nogx"]["peak_rss"]
    ingest_peak = max(x["peak_rss"] for x in r["ingest"])
    stage_peak = max(x["peak_rss"] for x in r["stage"])
    bare_peak = max(x["peak_rss"] for x in r["bare"])
    bare_mbs, stage_mbs, ingest_mbs = (csv_mb / x["seconds"] for x in (bare, stage, ingest))
    mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return [
        Row(
            "stage_files MB/s (read+cast+stage)",
            f"{stage_mbs:.0f} ({stage['seconds']:.2f} s)",
            f"{bare_mbs:.0f} ({bare['seconds']:.2f} s)",
            stage_mbs / bare_mbs,
            f">= {GOAL_STAGE_VS_BARE}",
            verdict(stage_mbs / bare_mbs >= GOAL_STAGE_VS_BARE),
        ),
        Row(
            "ingest_partition MB/s (+GX+publish)",
            f"{ingest_mbs:.0f} ({ingest['seconds']:.2f} s)",
            f"{bare_mbs:.0f} ({bare['seconds']:.2f} s)",
            ingest_mbs / bare_mbs,
            f">= {GOAL_STAGE_VS_BARE}",
            verdict(ingest_mbs / bare_mbs >= GOAL_STAGE_VS_BARE),
        ),
        Row(
            f"GX run_suite s ({v['expectations']} exp.)",
            f"{gx_s:.2f} s",
            f"pandas {pd_s:.2f} s",
            gx_s / pd_s,
            f"<= {GOAL_GX_VS_PANDAS}",
            verdict(gx_s / pd_s <= GOAL_GX_VS_PANDAS),
        ),
        Row(
            f"  GX inside ingest ({gx_in.get('result_format', '?')})",
            f"{gx_in_s:.2f} s",
            f"read+frame+pd {v['read_s'] + v['frame_s'] + pd_s:.2f} s",
            gx_in_s / (v["read_s"] + v["frame_s"] + pd_s),
            "(info)",
            "",
        ),
        Row(
            f"GX fixed cost ({SMALL_ROWS} rows)",
            f"{gx_small:.2f} s",
            f"1st call {v['gx_first_small_s']:.2f} s",
            None,
            f"<= {GOAL_GX_FIXED_S:.0f} s",
            verdict(max(gx_small, v["gx_first_small_s"]) <= GOAL_GX_FIXED_S),
        ),
        Row("GX import", f"{gx_import:.2f} s", "", None, "(info)", ""),
        Row(
            "ingest peak RSS / staged Arrow",
            gib(ingest_peak),
            gib(nbytes),
            ingest_peak / nbytes,
            f"<= {GOAL_RSS_VS_ARROW}",
            verdict(ingest_peak / nbytes <= GOAL_RSS_VS_ARROW),
        ),
        Row(
            "  same, interpreter baseline removed",
            gib(ingest_peak - base_rss),
            f"imports {gib(base_rss)}",
            (ingest_peak - base_rss) / nbytes,
            "(info)",
            "",
        ),
        Row(
            "stage_files peak RSS / staged Arrow",
            gib(stage_peak),
            f"imports {gib(base_rss_nogx)}",
            stage_peak / nbytes,
            "(info)",
            "",
        ),
        Row(
            "bare peak RSS / its Arrow table",
            gib(bare_peak),
            gib(bare["nbytes"]),
            bare_peak / bare["nbytes"],
            "(info)",
            "",
        ),
        Row(
            "ingest fits in RAM",
            gib(ingest_peak),
            f"RAM {gib(mem_total)}",
            ingest_peak / mem_total,
            "< 1",
            verdict(ingest_peak < mem_total),
        ),
    ]


def print_report(r: Result) -> None:
    v, ph = r["validate"], r["phases"]
    others = [x["other_cores"] for k in ("bare", "stage", "ingest") for x in r[k]]
    print()
    print(
        f"== {r['rows']:,} rows: CSV {_mb(r['csv_bytes'])}, staged Arrow {gib(r['stage'][0]['nbytes'])}, "
        f"pandas frame {gib(v['frame_bytes'])}, best of {r['repeat']} =="
    )
    rows = table_rows(r)
    head = ("metric", "nightshift", "baseline", "ratio", "goal", "")
    widths = [36, 22, 22, 6, 8, 4]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        cells = (row.metric, row.value, row.baseline, ratio, row.goal, row.verdict)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    ingest = min(r["ingest"], key=lambda x: x["seconds"])
    print(f"ingest report stats (best run): {ingest['stats']}; verdict: {ingest['reason']}")
    print(f"GX calls inside the best ingest: {ingest['gx_calls']}")
    print(
        f"GX vs pandas verdicts: {'agree' if not v['diffs'] else '; '.join(v['diffs'])}; "
        f"pq.read_table {v['read_s']:.2f} s, to_validation_frame {v['frame_s']:.2f} s"
    )
    print(f"ingest_partition step by step (one run, {ph['total_s']:.2f} s; peak = the step's own VmHWM):")
    for p in ph["phases"]:
        peak = gib(p["peak"]) if p["peak"] is not None else "n/a"
        print(
            f"  {p['phase']:<28} {p['seconds']:7.2f} s   RSS {gib(p['rss_before'])} -> "
            f"{gib(p['rss_after'])}   peak {peak}"
        )
    print(f"Arrow memory pool: {r['imports'][0].get('arrow_pool')}")
    print(
        f"outside load: {max(others):.2f} cores at most during bare/stage/ingest runs "
        f"(mean {sum(others) / len(others):.2f}); validate {v['other_cores']:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--repeat", type=int, help="best of N (default 3 up to 1M rows, 1 above)")
    p.add_argument("--root", type=Path, default=Path("/tmp/bench"), help="scratch folder")
    p.add_argument("--keep", action="store_true", help="keep generated data")
    p.add_argument("--profile", action="store_true", help="cProfile one GX run_suite (to stderr)")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--args", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.worker:
        worker_main(WORKERS, ns.worker, ns.args, ns.out)
        return 0

    root: Path = ns.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    code = code_fingerprint(MEASURED)
    print(
        f"ingest benchmark: nightshift code {code}, {os.cpu_count()} cores, "
        f"{gib(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))} RAM, "
        f"Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}, scratch {root}",
        flush=True,
    )
    results = []
    for rows in ns.rows:
        repeat = ns.repeat or (3 if rows <= 1_000_000 else 1)
        r = bench_size(rows, repeat, root, ns.keep, ns.profile)
        results.append(r)
        print_report(r)
        if r["code"] != code:
            print(f"WARNING: include/nightshift changed during the run ({code} -> {r['code']}); re-run")
    out = ns.json or root / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nraw results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
