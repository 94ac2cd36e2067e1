"""Online scoring benchmark: ``nightshift serve`` against the bare booster in the same process and
against MLflow's stock scoring server, on the same champion, in one run.

It writes a labelled window of the demo dataset (``--days`` x ``--rows-per-day`` rows of
``datasets/payments.yaml``) straight into the curated and labels areas of a scratch store, trains
two versions with the real ``train_step`` (the spec's rounds and early stopping; MLflow on
SQLite under a scratch ``NIGHTSHIFT_HOME``), registers both and promotes the first. Then:

* *bare*: ``booster.inplace_predict`` of the champion's booster on the ready float32 matrix, in
  this process, with the thread count the service uses (``serving.predict_threads``): the
  floor, with no HTTP, no JSON, no transform.
* *in-process pyfunc*: ``model_input`` + the pyfunc's ``predict`` in this process (what the
  service calls per request), for the split of the overhead.
* *nightshift*: ``nightshift serve`` on 127.0.0.1 (a subprocess), one client on a kept-alive
  connection sending ``dataframe_split`` bodies encoded before the clock starts.
* *mlflow*: ``mlflow models serve -m models:/nightshift-payments@champion --env-manager local``,
  the same bodies; and *mlflow, 1 thread*: the same with ``OMP_NUM_THREADS=1`` (the stock
  server lets XGBoost use every core, which on a busy host stalls a one-row request).

Requests are one row and 1,000 rows. The contenders take turns in ``--rounds`` blocks, so slow
phases of the machine's load fall on all of them. Latency p50/p99 per request; rows/s = rows ÷
mean latency of sequential requests. Last, a client thread sends one-row requests to
``nightshift serve`` while the second version is promoted and then rolled back: errors, and how
long each switch took to answer. The stock server is checked for the same promotion (it keeps
scoring the version it started with). Goals (issue 18): single-row p50 at most 5 ms over the bare
predict; 1,000-row throughput at least 0.5x bare; zero errors through a promotion. It reports
PASS/MISS and never fails on a number.

    python bench/serve.py            # 10 days x 4,000 rows, 5 rounds (~4 min on 2 cores)
    python bench/serve.py --quick    # 10 days x 1,500 rows, 2 short rounds (~2 min)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

from harness import INCLUDE, REPO, _cpu_busy_s, code_fingerprint, verdict
from nightshift_dev import free_port

SPEC_PATH = REPO / "datasets" / "payments.yaml"
START = date(2024, 3, 1)
SEED = 42
GOAL_SINGLE_OVERHEAD_MS = 5.0  # nightshift p50 - bare p50, one row
GOAL_THROUGHPUT_RATIO = 0.5  # nightshift rows/s / bare rows/s, 1,000 rows
MODULES = ("serve.py", "features.py", "model.py", "registry.py")


# ---- set-up ---------------------------------------------------------------------------------
def write_window(store: Any, spec: Any, days: int, rows: int) -> None:
    """Curated events and, ``label.delay_days`` later, their labels, as the ingest publishes them."""
    import pyarrow.parquet as pq

    from nightshift.demo.datagen import Scenario, generate_day
    from nightshift.ingest import arrow_schema

    ev_schema, lb_schema = arrow_schema(spec, "events"), arrow_schema(spec, "labels")
    delay = timedelta(days=spec.label.delay_days)
    for i in range(days + spec.label.delay_days):
        day = START + timedelta(days=i)
        ev_path = store.published_file(spec.name, "events", day)
        lb_path = store.published_file(spec.name, "labels", day + delay)
        with store.open_output_atomic(ev_path) as ev_out, store.open_output_atomic(lb_path) as lb_out:
            ev_w, lb_w = pq.ParquetWriter(ev_out, ev_schema), pq.ParquetWriter(lb_out, lb_schema)
            for events, labels in generate_day(spec, day, i, rows, SEED, Scenario()):
                ev_w.write_batch(events.cast(ev_schema))
                lb_w.write_batch(labels.cast(lb_schema))
            ev_w.close()
            lb_w.close()


class Server:
    """A scoring server subprocess on 127.0.0.1 in its own process group."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, ready: str, log: Path
    ) -> None:
        self.name, self.port, self.ready, self.log = name, port, ready, log
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=open(log, "wb"),  # noqa: SIM115 - the server's log, open for its lifetime
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.conn: http.client.HTTPConnection | None = None
        self.started = time.perf_counter()

    def wait(self, timeout: float = 300) -> float:
        """Seconds from the spawn to the first 200 of the readiness route."""
        t0 = self.started
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", self.ready)
                if c.getresponse().status == 200:
                    c.close()
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.log}")

    def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """POST on a kept-alive connection, opened again once if the server closed it idle."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        return r.status, json.loads(data) if data.startswith(b"{") else {
            "raw": data[:200].decode(errors="replace")
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


# ---- the run --------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--rows-per-day", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--single", type=int, default=200, help="one-row requests per contender and round")
    p.add_argument("--batch", type=int, default=20, help="1,000-row requests per contender and round")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dir", default="/tmp/bench/serve")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", help="write the raw results here")
    args = p.parse_args()
    if args.quick:
        args.rows_per_day, args.rounds, args.single, args.batch = 1500, 2, 100, 10

    work = Path(args.dir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "home").mkdir(parents=True)
    os.environ["NIGHTSHIFT_HOME"] = str(work / "home")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    import msgspec
    import numpy as np
    import psutil
    import xgboost as xgb

    from nightshift import registry
    from nightshift.features import model_input
    from nightshift.serve import Features, decode_json, parse_invocations
    from nightshift.spec import load_spec
    from nightshift.steps.train import TrainRequest, train_step
    from nightshift.storage import Store

    load0 = os.getloadavg()
    spec = load_spec(SPEC_PATH)
    store = Store((work / "store").as_uri())
    t0 = time.perf_counter()
    write_window(store, spec, args.days, args.rows_per_day)
    client = registry.configure()
    versions = []
    for key in ("a", "b"):
        # the second version: other seeds of the row/column subsampling, so its scores differ
        params = {} if key == "a" else {"subsample": 0.7}
        trained = train_step(store, spec, f"bench/serve/{key}", TrainRequest(params=params))
        versions.append(registry.register(client, spec.name, trained.run_id, f"bench/serve/{key}"))
    v1, v2 = versions
    registry.promote(client, store, spec.name, v1, actor="bench", trigger="bench/serve", reason="first")
    setup_s = time.perf_counter() - t0
    print(f"set-up: {args.days} days x {args.rows_per_day} rows, v{v1} and v{v2} trained and v{v1} "
          f"promoted in {setup_s:.0f} s", file=sys.stderr)  # fmt: skip

    uri = registry.tracking_uri()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(INCLUDE), "PYTHONWARNINGS": "ignore"}
    # the stock server runs `uvicorn` from PATH: this interpreter's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    ports = {k: free_port() for k in ("nightshift", "mlflow", "mlflow1")}
    stock = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{registry.model_name(spec.name)}@champion",
    ]
    stock += ["--env-manager", "local", "-h", "127.0.0.1"]
    servers = {
        "nightshift": Server(
            "nightshift serve",
            [
                sys.executable,
                "-m",
                "nightshift.cli",
                "serve",
                "--dataset",
                str(SPEC_PATH),
                "--port",
                str(ports["nightshift"]),
            ],
            env,
            ports["nightshift"],
            "/health",
            work / "nightshift.log",
        ),
        "mlflow": Server(
            "mlflow models serve",
            [*stock, "-p", str(ports["mlflow"])],
            env,
            ports["mlflow"],
            "/ping",
            work / "mlflow.log",
        ),
        "mlflow1": Server(
            "mlflow models serve (OMP_NUM_THREADS=1)",
            [*stock, "-p", str(ports["mlflow1"])],
            {**env, "OMP_NUM_THREADS": "1"},
            ports["mlflow1"],
            "/ping",
            work / "mlflow1.log",
        ),
    }
    results: dict[str, Any] = {"versions": versions, "setup_s": setup_s}
    try:
        results["startup_s"] = {k: s.wait() for k, s in servers.items()}

        # the same rows for every contender: the newest curated day's first 1,000 events
        import pyarrow.parquet as pq

        last = START + timedelta(days=args.days - 1)
        events = pq.read_table(store.open_input(store.published_file(spec.name, "events", last)))
        rows = events.slice(0, 1000).select(spec.feature_names)
        cols = rows.column_names
        records = rows.to_pylist()

        def body(n: int) -> bytes:
            data = [[r[c] for c in cols] for r in records[:n]]
            return json.dumps({"dataframe_split": {"columns": cols, "data": data}}).encode()

        bodies = {1: body(1), 1000: body(1000)}
        numeric = [f.name for f in spec.features.numeric]
        categorical = [f.name for f in spec.features.categorical]
        model = registry.load_model(spec.name, v1)
        inner = model.unwrap_python_model()
        booster, transform = inner.booster, inner.transform
        best = booster.attributes().get("best_iteration")
        rng = (0, int(best) + 1) if best is not None else (0, 0)
        results["trees"] = rng[1] or booster.num_boosted_rounds()
        xgb.set_config(nthread=spec.serving.predict_threads)
        tables = {n: rows.slice(0, n) for n in (1, 1000)}
        matrices = {n: transform.matrix(t) for n, t in tables.items()}

        # every contender scores the 1,000 rows the same
        expected = np.asarray(booster.inplace_predict(matrices[1000], iteration_range=rng), dtype=np.float64)
        agree = {}
        for k, s in servers.items():
            status, answer = s.post(bodies[1000])
            assert status == 200, (k, status, answer)
            agree[k] = float(np.max(np.abs(np.asarray(answer["predictions"], dtype=np.float64) - expected)))
        results["max_abs_diff_vs_bare"] = agree

        def bare(n: int) -> None:
            booster.inplace_predict(matrices[n], iteration_range=rng)

        def pyfunc(n: int) -> None:
            model.predict(model_input(tables[n], numeric, categorical))

        features = Features.of(spec)
        docs = {n: decode_json(b) for n, b in bodies.items()}
        batches = {n: parse_invocations(d, features, 10_000) for n, d in docs.items()}

        def decode(n: int) -> None:
            decode_json(bodies[n])

        def parse(n: int) -> None:
            parse_invocations(docs[n], features, 10_000)

        def matrix(n: int) -> None:
            transform.matrix(batches[n].table)

        def arrow(n: int) -> None:
            inner.predict(None, batches[n].table)

        answers = {n: np.asarray(inner.predict(None, b.table), dtype=np.float64) for n, b in batches.items()}

        def encode(n: int) -> None:  # the service's answer: its list of scores, as JSON
            msgspec.json.encode({"model": "m", "model_version": v1, "predictions": answers[n].tolist()})

        def served(name: str) -> Any:
            def call(n: int) -> None:
                status, answer = servers[name].post(bodies[n])
                if status != 200:
                    raise RuntimeError(f"{name}: {status} {answer}")

            return call

        contenders = {
            "bare": bare,
            "decode": decode,
            "parse": parse,
            "matrix": matrix,
            "arrow": arrow,
            "encode": encode,
            "pyfunc": pyfunc,
            **{k: served(k) for k in servers},
        }
        samples: dict[str, dict[int, list[float]]] = {k: {1: [], 1000: []} for k in contenders}
        procs = [psutil.Process(s.proc.pid) for s in servers.values()]
        cpu0, own0 = _cpu(procs), time.process_time()
        busy0, wall0 = _cpu_busy_s(), time.perf_counter()
        for r in range(args.rounds):
            for name, fn in contenders.items():
                for n, count in ((1, args.single), (1000, args.batch)):
                    for _ in range(3):  # warm-up of this block
                        fn(n)
                    for _ in range(count):
                        t = time.perf_counter()
                        fn(n)
                        samples[name][n].append(time.perf_counter() - t)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        wall = time.perf_counter() - wall0
        ours = (_cpu(procs) - cpu0) + (time.process_time() - own0)
        results["outside_cores"] = max(0.0, (_cpu_busy_s() - busy0) - ours) / wall
        results["samples"] = {k: {str(n): v for n, v in d.items()} for k, d in samples.items()}
        stats = {}
        for name, d in samples.items():
            stats[name] = {
                n: {
                    "p50_ms": percentile(v, 50) * 1000,
                    "p99_ms": percentile(v, 99) * 1000,
                    "rows_per_s": n / (sum(v) / len(v)),
                }
                for n, v in d.items()
            }
        results["stats"] = stats

        # promotion and rollback under load, against nightshift serve; the stock server is probed
        results["promotion"] = promotion(servers, bodies[1], client, store, spec.name, v1, v2, expected[0])
    finally:
        for s in servers.values():
            s.stop()
    results["load_average"] = {"before": load0, "after": os.getloadavg()}
    results["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "xgboost": pkg_version("xgboost"),
        "mlflow": pkg_version("mlflow"),
        "fastapi": pkg_version("fastapi"),
        "uvicorn": pkg_version("uvicorn"),
        "code": code_fingerprint(MODULES),
        "commit": registry.code_version(),
    }
    print(report(results, args))
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in results.items() if k != "samples"}, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def _cpu(procs: list[Any]) -> float:
    """CPU seconds of the servers' process groups (their children too)."""
    import psutil

    total = 0.0
    for p in procs:
        for q in [p, *p.children(recursive=True)]:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def promotion(
    servers: dict[str, Server],
    body: bytes,
    client: Any,
    store: Any,
    dataset: str,
    v1: str,
    v2: str,
    v1_score: float,
) -> dict[str, Any]:
    """One-row requests back to back while ``v2`` is promoted and then rolled back."""
    from nightshift import registry

    answers: list[tuple[float, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", servers["nightshift"].port, timeout=60)
        while not stop.is_set():
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = json.loads(r.read())
                if r.status != 200:
                    errors.append(f"{r.status}: {data}")
                else:
                    answers.append((time.monotonic(), data["model_version"]))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                conn = http.client.HTTPConnection("127.0.0.1", servers["nightshift"].port, timeout=60)

    def first(version: str, since: float, timeout: float = 120) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = next((t for t, v in list(answers) if t >= since and v == version), None)
            if hit is not None:
                return hit - since
            time.sleep(0.05)
        return None

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    time.sleep(2)
    t0 = time.monotonic()
    registry.promote(client, store, dataset, v2, actor="bench", trigger="bench/serve", reason="switch")
    to_v2 = first(v2, t0)
    _, stock = servers["mlflow"].post(body)
    t1 = time.monotonic()
    registry.rollback(client, store, dataset, actor="bench", trigger="bench/serve", reason="back")
    to_v1 = first(v1, t1)
    time.sleep(2)
    stop.set()
    thread.join(60)
    versions = [v for _, v in answers]
    changes = [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]
    return {
        "requests": len(answers) + len(errors),
        "errors": errors[:5],
        "error_count": len(errors),
        "switch_to_v2_s": to_v2,
        "switch_back_s": to_v1,
        "versions_seen": changes,
        "stock_after_promotion_scores_v1": bool(abs(float(stock["predictions"][0]) - v1_score) < 1e-9),
    }


def report(r: dict[str, Any], args: argparse.Namespace) -> str:
    s = r["stats"]
    bare1, bare1000 = s["bare"][1], s["bare"][1000]
    ns1, ns1000 = s["nightshift"][1], s["nightshift"][1000]
    over = ns1["p50_ms"] - bare1["p50_ms"]
    ratio = ns1000["rows_per_s"] / bare1000["rows_per_s"]
    pr = r["promotion"]
    m, la = r["machine"], r["load_average"]
    names = {
        "bare": "bare `inplace_predict` (this process)",
        "decode": "(part) `decode_json` of the body",
        "parse": "(part) `parse_invocations`: checks + Arrow columns",
        "matrix": "(part of the next) the transform's float32 matrix",
        "arrow": "(part) the Python model's `predict` on Arrow: matrix + `inplace_predict`",
        "encode": "(part) the answer's JSON",
        "pyfunc": "in-process `model_input` + pyfunc `predict` (batch scoring's call)",
        "nightshift": "`nightshift serve` (HTTP)",
        "mlflow": "`mlflow models serve` (HTTP)",
        "mlflow1": "`mlflow models serve`, `OMP_NUM_THREADS=1`",
    }
    lines = [
        f"machine: {m['cores']} cores, Python {m['python']}, xgboost {m['xgboost']}, mlflow {m['mlflow']}, "
        f"fastapi {m['fastapi']}, uvicorn {m['uvicorn']}; code {m['code']} (commit {m['commit']})",
        f"load average {la['before'][0]:.1f} before, {la['after'][0]:.1f} after; other processes kept "
        f"{r['outside_cores']:.2f} cores busy during the measurements",
        f"window {args.days} days x {args.rows_per_day} rows; {args.rounds} rounds of {args.single} "
        f"one-row and {args.batch} 1,000-row requests per contender; champion v{r['versions'][0]} "
        f"({r['trees']} trees)",
        "",
        "| contender | 1 row p50 | 1 row p99 | 1,000 rows p50 | 1,000 rows p99 | rows/s (1,000) "
        "| max abs diff vs bare |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, label in names.items():
        one, many = s[k][1], s[k][1000]
        diff = r["max_abs_diff_vs_bare"].get(k)
        lines.append(
            f"| {label} | {one['p50_ms']:.2f} ms | {one['p99_ms']:.2f} ms | {many['p50_ms']:.2f} ms | "
            f"{many['p99_ms']:.2f} ms | {many['rows_per_s']:,.0f} | "
            f"{'-' if diff is None else f'{diff:.1e}'} |"
        )
    steps = ("decode", "parse", "arrow", "encode")  # the service's own work, in process
    rest1 = ns1["p50_ms"] - sum(s[k][1]["p50_ms"] for k in steps)
    rest1000 = ns1000["p50_ms"] - sum(s[k][1000]["p50_ms"] for k in steps)
    lines.append(
        "| (the rest of `nightshift serve`'s p50: HTTP, reading the body, the thread hop, the client's "
        f"JSON) | {rest1:.2f} ms | | {rest1000:.2f} ms | | | |"
    )
    lines += [
        "",
        "| goal | value | verdict |",
        "|---|---|---|",
        f"| single-row p50 ≤ {GOAL_SINGLE_OVERHEAD_MS:.0f} ms over bare | {over:+.2f} ms "
        f"({ns1['p50_ms']:.2f} vs {bare1['p50_ms']:.2f}) | {verdict(over <= GOAL_SINGLE_OVERHEAD_MS)} |",
        f"| 1,000-row throughput ≥ {GOAL_THROUGHPUT_RATIO}x bare | {ratio:.2f}x "
        f"({ns1000['rows_per_s']:,.0f} vs {bare1000['rows_per_s']:,.0f} rows/s) | "
        f"{verdict(ratio >= GOAL_THROUGHPUT_RATIO)} |",
        f"| zero errors through a promotion and a rollback | {pr['error_count']} of {pr['requests']} "
        f"requests; "
        f"switch answered after {_s(pr['switch_to_v2_s'])}, back after {_s(pr['switch_back_s'])} | "
        f"{verdict(pr['error_count'] == 0 and pr['switch_to_v2_s'] is not None)} |",
        "",
        f"stock server ÷ nightshift: one-row p50 {s['mlflow'][1]['p50_ms'] / ns1['p50_ms']:.2f}x "
        f"({s['mlflow1'][1]['p50_ms'] / ns1['p50_ms']:.2f}x with one thread), 1,000-row throughput "
        f"{s['mlflow'][1000]['rows_per_s'] / ns1000['rows_per_s']:.2f}x "
        f"({s['mlflow1'][1000]['rows_per_s'] / ns1000['rows_per_s']:.2f}x with one thread)",
        f"after the promotion the stock server still scored with v{r['versions'][0]} (it resolved the alias "
        f"once, at start): {pr['stock_after_promotion_scores_v1']}",
        "start-up to ready: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["startup_s"].items()),
        f"versions seen by the client during the switch: {' -> '.join('v' + v for v in pr['versions_seen'])}",
    ]
    return "\n".join(lines)


def _s(v: float | None) -> str:
    return "never" if v is None else f"{v:.1f} s"


if __name__ == "__main__":
    main()
