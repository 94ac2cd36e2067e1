"""Ingest benchmark (issues 2 and 16): nightshift's ingest measured against bare pyarrow, in one run.

For each size it generates one clean CSV day of the demo dataset (``datasets/payments.yaml``)
with :func:`nightshift.demo.datagen.write_day` into a local store, then measures, in interleaved
rounds (every arm once per round, the order rotated each round; ``--pairs``, 3 by default):

1. throughput (MB of CSV per second) of ``stage_files`` (read + cast + staged Parquet) and of the
   whole ``ingest_partition`` (+ GX validation + publish), each against the bare baseline
   ``pyarrow.csv.read_csv(file)`` + ``pyarrow.parquet.write_table(table, out)`` on the same file;
2. GX ``run_suite`` on the staged file as the ingest calls it, on each GX arm (``--arms``: ``sql``,
   GX's SQL engine on DuckDB; ``pandas``, GX's pandas engine; ``pandas-2proc``, its parts over two
   processes), against the same checks written as vectorised pandas from the same staged file;
3. the peak RSS of the ingest against the Arrow size of the staged batch (``table.nbytes``).

Every measurement runs in a fresh subprocess (peaks never mix), imports before the clock. Each
ratio is taken within a round and reported as the median [min..max] over the rounds, with the
outside load of every arm (other processes' busy cores, the load average before and after) and
the commit measured. The script prints ratios, goals and PASS/MISS; it never fails on a number.

    python bench/ingest.py                              # 1M and 10M rows
    python bench/ingest.py --rows 2000 --pairs 1        # the smoke check make test runs
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
ENGINE_ENV = "NIGHTSHIFT_GX_ENGINE"  # nightshift.validate.ENGINE_ENV (the driver imports no nightshift)

# goals of issue 2
GOAL_STAGE_VS_BARE = 0.8  # throughput ratio, higher is better
GOAL_GX_VS_PANDAS = 2.0  # time ratio, lower is better
GOAL_GX_FIXED_S = 5.0
GOAL_RSS_VS_ARROW = 2.0


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
    from nightshift.demo.datagen import Scenario, write_day
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
    imports = _import_stack(gx=True)  # before the clock: reported apart, not in the throughput
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
        "imports": {**imports, "rss": rss0},
    }


def _gx_format(rows: int) -> tuple[str, bool]:
    """What ``ingest_partition`` asks GX for on a valid batch of ``rows``: its result format and
    whether it builds Data Docs (up to ``validation.data_docs_max_rows``)."""
    docs = rows <= _spec().validation.data_docs_max_rows
    return ("SUMMARY" if docs else "BOOLEAN_ONLY"), docs


def _compact(gx_json: dict[str, Any]) -> list[Result]:
    return [
        {
            "type": r["expectation_config"]["type"],
            "column": r["expectation_config"]["kwargs"].get("column"),
            "success": r["success"],
            "unexpected": (r.get("result") or {}).get("unexpected_count"),
        }
        for r in _gx_results(gx_json)
    ]


def _gx_part(args: tuple[str, dict[str, Any], dict[str, Any], str]) -> dict[str, Any]:
    """One process's share of a column-parallel run (the ``pandas-2proc`` arm)."""
    from nightshift.validate import run_suite

    path, suite, params, fmt = args
    _, out = run_suite(Path(path), suite, params, result_format=fmt, engine="pandas")
    return {"results": out["results"], "success": out["success"]}


ARMS = ("sql", "pandas", "pandas-2proc")


def w_gx(a: Result) -> Result:
    """GX ``run_suite`` on the staged Parquet file as the ingest calls it, on one arm: ``sql``
    (GX's SQL engine on DuckDB), ``pandas`` (GX's pandas engine, column by column) or
    ``pandas-2proc`` (the same, the column parts split over two forked processes)."""
    _import_stack(gx=True)
    import tempfile

    from nightshift.validate import _column_groups, load_suite, run_suite, suite_parameters

    spec, staged, arm = _spec(), Path(a["staging"]), a["arm"]
    suite, params = load_suite(spec, "events"), suite_parameters(spec, DAY)
    fmt, docs = _gx_format(a["rows"])
    docs_dir = Path(tempfile.mkdtemp(dir=a["work"])) / "docs" if docs else None
    rss0 = rss_now()
    c0, t0 = time.process_time(), time.perf_counter()
    if arm == "pandas-2proc":
        import multiprocessing

        groups = list(_column_groups(list(suite["expectations"])).values())
        halves = [[e for g in groups[i::2] for e in g] for i in range(2)]
        jobs = [(str(staged), {**suite, "expectations": h}, params, fmt) for h in halves]
        with multiprocessing.get_context("fork").Pool(2) as pool:
            parts = pool.map(_gx_part, jobs)
        gx_json = {
            "results": [r for p in parts for r in p["results"]],
            "success": all(p["success"] for p in parts),
        }
    else:
        _, gx_json = run_suite(staged, suite, params, docs_dir=docs_dir, result_format=fmt, engine=arm)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    if docs_dir is not None:
        shutil.rmtree(docs_dir.parent, ignore_errors=True)
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,  # this process's threads; the 2proc arm's children are not in it
        "rss_before": rss0,
        **_peaks(),
        "format": fmt + (" + Data Docs" if docs else ""),
        "results": _compact(gx_json),
        "column_seconds": gx_json.get("column_seconds", {}),
    }


def w_pandas(a: Result) -> Result:
    """The same checks in vectorised pandas from the same staged file: ``pq.read_table``, the
    frame GX's pandas engine would get (``to_validation_frame``) and :func:`pandas_checks`."""
    _import_stack(gx=True)
    import pyarrow.parquet as pq

    from nightshift.ingest import to_validation_frame
    from nightshift.validate import load_suite, suite_parameters

    spec = _spec()
    suite, params = load_suite(spec, "events"), suite_parameters(spec, DAY)
    c0, t0 = time.process_time(), time.perf_counter()
    df = to_validation_frame(pq.read_table(a["staging"]), spec)
    t1 = time.perf_counter()
    mine = pandas_checks(df, suite, params)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "checks_s": time.perf_counter() - t1,
        **_peaks(),
        "results": mine,
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
    "gx": w_gx,
    "pandas": w_pandas,
    "phases": w_phases,
}


# ---- the driver (stays small: it imports neither pyarrow nor pandas) -------------------------
MEASURED = ("ingest.py", "validate.py", "gxsql.py", "storage.py", "spec.py", "demo/datagen.py")


def run_worker(name: str, args: Result, root: Path) -> Run:
    env = {**os.environ}
    env.setdefault("NIGHTSHIFT_HOME", str(root / "home"))
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    return harness.run_worker(__file__, name, args, root, env, show_stderr=bool(args.get("profile")))


def commit_label() -> str:
    """The commit the measured code is at (``+dirty`` with uncommitted changes under include/)."""
    import subprocess

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    head = git("rev-parse", "--short=7", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "include") else "")


def _mb(n: float) -> str:
    return f"{n / MB:.0f} MB"


def _measured(name: str, args: Result, root: Path) -> Result:
    """A worker run with the outside load around it: the 1-minute load average before and after,
    and the cores other processes kept busy meanwhile (from /proc/stat)."""
    load0 = os.getloadavg()[0]
    run = run_worker(name, args, root)
    return {
        **run.result,
        "wall_s": run.wall_s,
        "other_cores": run.other_cores,
        "load": [load0, os.getloadavg()[0]],
    }


def bench_size(rows: int, pairs: int, arms: list[str], root: Path, keep: bool, phases: bool) -> Result:
    commit = commit_label()  # at the start: a commit made while it runs is not what it measured
    base = root / f"rows-{rows}"
    store_url = (base / "store").as_uri()
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"  [{rows:,} rows] {msg}", flush=True)

    log("generating the CSV day ...")
    gen = run_worker("generate", {"store": store_url, "rows": rows}, root).result
    log(f"{_mb(gen['bytes'])} CSV in {gen['seconds']:.1f} s")

    common = {"store": store_url, "csv": gen["csv"], "work": str(work), "rows": rows}
    staging = str(work / "staged.parquet")
    # every arm once per round, the order rotated each round: A/B pairs interleaved, so a burst
    # of outside load falls on every arm alike
    plan: list[tuple[str, str, Result]] = [
        ("bare", "bare", {**common, "out": str(work / "bare.parquet")}),
        ("stage", "stage", {**common, "staging": staging}),
        ("ingest", "ingest", common),
        *[(f"gx:{arm}", "gx", {**common, "staging": staging, "arm": arm}) for arm in arms],
        ("pandas", "pandas", {**common, "staging": staging}),
    ]
    runs: dict[str, list[Result]] = {label: [] for label, _, _ in plan}
    # the first round's order has stage before the GX arms: they read the file it stages
    for i in range(pairs):
        order = plan[i % len(plan) :] + plan[: i % len(plan)]
        log(f"round {i + 1}/{pairs}: {', '.join(label for label, _, _ in order)} ...")
        for label, worker, args in order:
            runs[label].append(_measured(worker, args, root))
    ph = run_worker("phases", common, root) if phases else None

    result = {
        "rows": rows,
        "code": code_fingerprint(MEASURED),
        "commit": commit,
        "pairs": pairs,
        "csv_bytes": gen["bytes"],
        "generate_s": gen["seconds"],
        "runs": runs,
        "phases": {**ph.result, "other_cores": ph.other_cores} if ph else None,
    }
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return result


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _stat(xs: list[float], fmt: str = "{:.2f}") -> str:
    """Median [min..max] of a list (the median alone for one value)."""
    med = fmt.format(_median(xs))
    return med if len(xs) == 1 else f"{med} [{fmt.format(min(xs))}..{fmt.format(max(xs))}]"


def ratios(r: Result) -> dict[str, list[float]]:
    """Per round, the ratios the goals are stated on (same round = same outside load)."""
    runs = r["runs"]
    n = r["pairs"]
    out: dict[str, list[float]] = {
        "stage_vs_bare": [runs["bare"][i]["seconds"] / runs["stage"][i]["seconds"] for i in range(n)],
        "ingest_vs_bare": [runs["bare"][i]["seconds"] / runs["ingest"][i]["seconds"] for i in range(n)],
        "ingest_vs_bare_cpu": [runs["bare"][i]["cpu_s"] / runs["ingest"][i]["cpu_s"] for i in range(n)],
        "rss_vs_arrow": [x["peak_rss"] / runs["stage"][0]["nbytes"] for x in runs["ingest"]],
    }
    for label in runs:
        if label.startswith("gx:"):
            gx, pd_ = runs[label], runs["pandas"]
            out[f"{label}_vs_pandas"] = [gx[i]["seconds"] / pd_[i]["seconds"] for i in range(n)]
            out[f"{label}_vs_pandas_cpu"] = [gx[i]["cpu_s"] / pd_[i]["cpu_s"] for i in range(n)]
    return out


def table_rows(r: Result) -> list[Row]:
    runs, q = r["runs"], ratios(r)
    csv_mb = r["csv_bytes"] / MB
    nbytes = runs["stage"][0]["nbytes"]
    secs = {k: [x["seconds"] for x in v] for k, v in runs.items()}
    cpus = {k: [x["cpu_s"] for x in v] for k, v in runs.items()}
    rows = [
        Row("bare read_csv + write_table s", _stat(secs["bare"]), f"cpu {_stat(cpus['bare'])}", None, "", ""),
        Row(
            "stage_files throughput / bare",
            _stat(secs["stage"]) + " s",
            f"{csv_mb / _median(secs['bare']):.0f} MB/s bare",
            _median(q["stage_vs_bare"]),
            f">= {GOAL_STAGE_VS_BARE}",
            verdict(_median(q["stage_vs_bare"]) >= GOAL_STAGE_VS_BARE),
        ),
        Row(
            "ingest_partition throughput / bare",
            _stat(secs["ingest"]) + " s",
            _stat(q["ingest_vs_bare"]),
            _median(q["ingest_vs_bare"]),
            f">= {GOAL_STAGE_VS_BARE}",
            verdict(_median(q["ingest_vs_bare"]) >= GOAL_STAGE_VS_BARE),
        ),
        Row(
            "  same on CPU seconds",
            _stat(cpus["ingest"]) + " cpu",
            _stat(q["ingest_vs_bare_cpu"]),
            _median(q["ingest_vs_bare_cpu"]),
            "(info)",
            "",
        ),
        Row(
            "pandas: read + frame + checks s",
            _stat(secs["pandas"]),
            f"checks alone {_stat([x['checks_s'] for x in runs['pandas']])}",
            None,
            "baseline",
            "",
        ),
    ]
    for label in [k for k in runs if k.startswith("gx:")]:
        fmt = runs[label][0]["format"]
        rows.append(
            Row(
                f"GX {label[3:]} ({fmt}) / pandas",
                _stat(secs[label]) + " s",
                _stat(q[f"{label}_vs_pandas"]),
                _median(q[f"{label}_vs_pandas"]),
                f"<= {GOAL_GX_VS_PANDAS}",
                verdict(_median(q[f"{label}_vs_pandas"]) <= GOAL_GX_VS_PANDAS),
            )
        )
        cpu_q = q[f"{label}_vs_pandas_cpu"]
        rows.append(
            Row(
                "  same on CPU seconds",
                _stat(cpus[label]) + " cpu",
                _stat(cpu_q),
                _median(cpu_q),
                "(info)",
                "",
            )
        )
    peak = max(x["peak_rss"] for x in runs["ingest"])
    imports = max((x["imports"] for x in runs["ingest"]), key=lambda i: i["rss"])
    rows += [
        Row(
            "ingest peak RSS / staged Arrow",
            gib(peak),
            gib(nbytes),
            peak / nbytes,
            f"<= {GOAL_RSS_VS_ARROW}",
            verdict(peak / nbytes <= GOAL_RSS_VS_ARROW),
        ),
        Row(
            "  the ingest's interpreter after its imports",
            gib(imports["rss"]),
            f"GX import {imports['import_gx_s']:.2f} s",
            imports["rss"] / nbytes,
            "(info)",
            "",
        ),
    ]
    return rows


def print_report(r: Result) -> None:
    runs = r["runs"]
    print()
    print(
        f"== {r['rows']:,} rows: CSV {_mb(r['csv_bytes'])}, staged Arrow {gib(runs['stage'][0]['nbytes'])}, "
        f"commit {r['commit']} (code {r['code']}); median [min..max] of {r['pairs']} interleaved round(s) =="
    )
    head = ("metric", "nightshift", "baseline / per round", "ratio", "goal", "")
    widths = [40, 24, 26, 6, 8, 4]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for row in table_rows(r):
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        cells = (row.metric, row.value, row.baseline, ratio, row.goal, row.verdict)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    print(
        "outside load per arm (other processes' busy cores during its runs; 1-min load average before/after):"
    )
    for label, xs in runs.items():
        loads = [v for x in xs for v in x["load"]]
        cores = _stat([x["other_cores"] for x in xs])
        print(f"  {label:<18} cores {cores}   load {min(loads):.1f}..{max(loads):.1f}")
    mine = runs["pandas"][0]["results"]
    for label in [k for k in runs if k.startswith("gx:")]:
        diffs = compare_with_gx({"results": [_as_gx(x) for x in runs[label][0]["results"]]}, mine)
        print(
            f"{label} vs pandas verdicts and unexpected counts: {'agree' if not diffs else '; '.join(diffs)}"
        )
        slow = sorted(runs[label][0]["column_seconds"].items(), key=lambda kv: -kv[1])[:3]
        if slow:
            print(f"  {label} slowest parts (first round): " + ", ".join(f"{k} {v:.2f} s" for k, v in slow))
    ingest = runs["ingest"][0]
    print(f"ingest (first round): {ingest['reason']}; GX calls {ingest['gx_calls']}")
    ph = r.get("phases")
    if ph:
        print(f"ingest_partition step by step (one run, {ph['total_s']:.2f} s; peak = the step's own VmHWM):")
        for p in ph["phases"]:
            peak = gib(p["peak"]) if p["peak"] is not None else "n/a"
            print(f"  {p['phase']:<28} {p['seconds']:7.2f} s   RSS {gib(p['rss_before'])} -> "
                  f"{gib(p['rss_after'])}   peak {peak}")  # fmt: skip


def _as_gx(x: Result) -> Result:
    """A compact result back in GX's JSON shape, for :func:`compare_with_gx`."""
    return {
        "expectation_config": {"type": x["type"], "kwargs": {"column": x["column"]}},
        "success": x["success"],
        "result": {"unexpected_count": x["unexpected"]},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--pairs", type=int, default=3, help="interleaved rounds of every arm (default 3)")
    p.add_argument("--arms", default="sql,pandas", help=f"GX arms, comma-separated, of {', '.join(ARMS)}")
    p.add_argument("--phases", action="store_true", help="also time ingest_partition step by step (one run)")
    p.add_argument("--root", type=Path, default=Path("/tmp/bench"), help="scratch folder")
    p.add_argument("--keep", action="store_true", help="keep generated data")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--args", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.worker:
        worker_main(WORKERS, ns.worker, ns.args, ns.out)
        return 0
    arms = [a.strip() for a in ns.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms or ns.pairs < 1:
        p.error(f"--arms takes {', '.join(ARMS)} (got {ns.arms!r}); --pairs at least 1")

    root: Path = ns.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    code = code_fingerprint(MEASURED)
    print(
        f"ingest benchmark: commit {commit_label()}, nightshift code {code}, {os.cpu_count()} cores, "
        f"{gib(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))} RAM, "
        f"Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}, scratch {root}, "
        f"${ENGINE_ENV}={os.environ.get(ENGINE_ENV, '(unset: auto)')} (the engine of the ingest arm)",
        flush=True,
    )
    results = []
    for rows in ns.rows:
        r = bench_size(rows, ns.pairs, arms, root, ns.keep, ns.phases)
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
