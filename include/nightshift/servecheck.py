"""The gate's serving check: the candidate, served by ``nightshift serve`` in a fresh process,
answers over HTTP what it scores in process, without an error, fast enough.

It runs between ``gate`` and ``review``/``promote``, on the version the gate registered:

* The gate logs the sample with the candidate's run (:func:`build_sample`,
  ``gate/serving_sample.json``): the packaged model's input example (the one MLflow stores with
  it) and a seeded sample of holdout rows, with the scores the packaged model gives them in the
  gate's process.
* :func:`serving_check` binds a socket on 127.0.0.1 (a free port), starts ``python -m
  nightshift.cli serve --version <N> --socket-fd <fd> --no-request-log --stop-with-stdin`` in a
  process group of its own with that socket, and waits for ``/health``. The server loads the
  version from the registry exactly as it loads a champion (``models:/…/<N>``, then scores probe
  rows); that start-up (imports, download, load) is not latency, and is bounded by
  ``serving.check_start_timeout_s``.
* Over one kept-alive connection it sends ``POST /invocations`` (``dataframe_split``): the input
  example in one request; the holdout sample in requests of at most
  ``serving.max_rows_per_request`` rows; :data:`WARMUP` untimed one-row requests; then
  ``serving.check_requests`` one-row requests (the sample's rows in turn), each timed on the
  client from sending the request to having parsed the answer. Every answer is compared. When
  that round's p99 is over the bound, the timed one-row requests are sent again, up to
  ``serving.check_latency_rounds`` rounds in all, and the round with the lowest p99 is judged (a
  slow model is slow in every round; a host busy with other work is not busy in all of them).
  All of it within ``serving.check_timeout_s``; then the server is stopped (SIGTERM to its group).
* It passes when every answer equals the in-process score within :data:`TOLERANCE` and names the
  candidate's version, no request fails, and the p99 of the judged round's timed requests
  (numpy's linear percentile) is under ``serving.max_latency_ms``.

A failed check rejects the candidate (:func:`apply`). What is not the candidate's fault raises
:class:`ServingCheckError` instead (the task is retried): the server did not become ready within
its start bound, exited before it was ready, or could not reach the registry. A version the
server cannot load or score is the candidate's fault: a failed check.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from nightshift.spec import DatasetSpec
from nightshift.verdict import GateCheck, GateResult

log = logging.getLogger(__name__)

SAMPLE_ARTIFACT = "serving_sample.json"  # under the run's gate/ directory
RESULT_ARTIFACT = "serving.json"
SAMPLE_ROWS = 1000
TOLERANCE = 1e-6  # |score| difference allowed between the server's answer and the in-process one
WARMUP = 3
NAME = "serving"  # the verdict's check
_SHOWN_ERRORS = 5


class ServingCheckError(RuntimeError):
    """The check could not be run for a reason that is not the candidate's (retry it)."""


# ---- the sample (gate side) ---------------------------------------------------------------


def _names(spec: DatasetSpec) -> tuple[list[str], list[str]]:
    return [f.name for f in spec.features.numeric], [f.name for f in spec.features.categorical]


def _json_rows(table: pa.Table, numeric: Sequence[str], categorical: Sequence[str]) -> list[list[Any]]:
    """The rows as a request carries them: numbers as floats, categories as strings, null for a
    missing value (a stored NaN too: JSON has no NaN, and the model reads both as missing)."""
    import pyarrow.compute as pc

    cols = []
    for n in numeric:
        arr = pc.cast(table.column(n), pa.float64())
        cols.append(pc.if_else(pc.is_nan(arr), pa.scalar(None, pa.float64()), arr).to_pylist())
    cols += [pc.cast(table.column(n), pa.string()).to_pylist() for n in categorical]
    return [list(row) for row in zip(*cols, strict=True)] if cols else []


def _finite(table: pa.Table, numeric: Sequence[str]) -> pa.Table:
    """The rows without an infinite number (JSON cannot carry one; a request is refused)."""
    import pyarrow.compute as pc

    keep = pa.array(np.ones(table.num_rows, dtype=bool))
    for n in numeric:
        inf = pc.fill_null(pc.is_inf(pc.cast(table.column(n), pa.float64())), False)
        keep = pc.and_(keep, pc.invert(inf))
    return table.filter(keep)


def build_sample(spec: DatasetSpec, holdout: pa.Table, model: Any, rows: int = SAMPLE_ROWS) -> dict[str, Any]:
    """What the serving check sends and expects: the packaged ``model``'s input example (a pyfunc's
    ``input_example``, when it has one with the features) and a seeded sample of ``rows`` holdout
    rows, each with the score ``model`` gives it here, in process."""
    from nightshift.features import model_input

    numeric, categorical = _names(spec)
    holdout = _finite(holdout, numeric)
    n = min(rows, holdout.num_rows)
    rng = np.random.default_rng(spec.seed)
    pos = np.sort(rng.choice(holdout.num_rows, size=n, replace=False)) if n else np.zeros(0, np.int64)
    taken = holdout.take(pa.array(pos))

    def scored(table: pa.Table) -> list[float]:
        frame = model_input(table, numeric, categorical)
        return [float(v) for v in np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)]

    out: dict[str, Any] = {
        "columns": [*numeric, *categorical],
        "tolerance": TOLERANCE,
        "example": None,
        "holdout": {
            "ids": taken.column(spec.id_column).cast(pa.string()).to_pylist(),
            "rows": _json_rows(taken, numeric, categorical),
            "expected": scored(taken) if n else [],
        },
    }
    example = getattr(model, "input_example", None)
    if example is not None and hasattr(example, "columns") and set(out["columns"]) <= set(example.columns):
        table = _finite(pa.Table.from_pandas(example[out["columns"]], preserve_index=False), numeric)
        out["example"] = {"rows": _json_rows(table, numeric, categorical), "expected": scored(table)}
    return out


# ---- judging --------------------------------------------------------------------------------


@dataclass
class Answer:
    """One request: what was sent (``what``), the in-process scores, the server's answer (or the
    error instead), and the version that answered."""

    what: str
    expected: list[float]
    got: list[float | None] | None = None
    error: str | None = None
    version: str | None = None


@dataclass
class ServingCheck:
    """The check's result: the verdict's ``serving`` entry."""

    passed: bool
    detail: str
    version: str
    failures: list[str] = field(default_factory=list)  # load | answers | errors | latency
    rows_compared: int = 0
    requests: int = 0
    failed_requests: int = 0
    errors: list[str] = field(default_factory=list)  # the first few
    max_diff: float | None = None
    tolerance: float = TOLERANCE
    timed_requests: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    max_latency_ms: float = 0.0
    latency_rounds_p99_ms: list[float] = field(default_factory=list)  # each round's p99, in order
    startup_s: float | None = None
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(v: float) -> str:
    return f"{v:.3g} ms" if v < 10 else f"{v:.0f} ms"


# long: one block per rule of the serving check (answers, errors, latency), in the order of the verdict
def judge(
    version: str,
    answers: Sequence[Answer],
    latencies_ms: Sequence[float],
    max_latency_ms: float,
    *,
    tolerance: float = TOLERANCE,
    load_error: str | None = None,
    unsent: int = 0,
    startup_s: float | None = None,
    wall_s: float = 0.0,
    rounds_p99_ms: Sequence[float] = (),
) -> ServingCheck:
    """The check's verdict on what the server answered: equal answers, no error, p99 latency
    (``latencies_ms``: the judged round's; ``rounds_p99_ms``: every round's p99, when several)."""
    base: dict[str, Any] = {
        "version": version,
        "tolerance": tolerance,
        "max_latency_ms": max_latency_ms,
        "startup_s": startup_s,
        "wall_s": wall_s,
    }
    if load_error is not None:
        detail = f"v{version} cannot be served: a fresh `nightshift serve` could not load it: {load_error}"
        return ServingCheck(False, detail, failures=["load"], **base)
    errors, compared, worst = [], 0, 0.0
    mismatched, first_mismatch = 0, ""
    for a in answers:
        if a.error is None and a.version != version:
            a.error = f"answered by v{a.version}, not v{version}"
        if a.error is None and (a.got is None or len(a.got) != len(a.expected)):
            a.error = f"{len(a.got or [])} scores for {len(a.expected)} rows"
        if a.error is not None:
            errors.append(f"{a.what}: {a.error}")
            continue
        got = np.array([np.nan if v is None else v for v in a.got or []], dtype=np.float64)
        want = np.asarray(a.expected, dtype=np.float64)
        close = np.isclose(got, want, rtol=0.0, atol=tolerance, equal_nan=True)
        diff = np.abs(got - want)
        compared += len(want)
        if len(diff) and not np.isnan(diff).all():
            worst = max(worst, float(np.nanmax(diff)))
        if not close.all():
            i = int(np.flatnonzero(~close)[0])
            mismatched += int((~close).sum())
            if not first_mismatch:
                first_mismatch = f"{a.what} row {i}: {want[i]:.6f} in process, {got[i]:.6f} served"
    failed_requests = len(errors) + unsent
    lat = np.asarray(latencies_ms, dtype=np.float64)
    p50 = float(np.percentile(lat, 50)) if len(lat) else None
    p99 = float(np.percentile(lat, 99)) if len(lat) else None
    result = ServingCheck(
        True,
        "",
        rows_compared=compared,
        requests=len(answers),
        failed_requests=failed_requests,
        errors=errors[:_SHOWN_ERRORS],
        max_diff=worst if compared else None,
        timed_requests=len(lat),
        p50_ms=p50,
        p99_ms=p99,
        max_ms=float(lat.max()) if len(lat) else None,
        latency_rounds_p99_ms=list(rounds_p99_ms),
        **base,
    )
    problems: list[str] = []
    if mismatched:
        result.failures.append("answers")
        problems.append(
            f"{mismatched} of {compared} rows answered over HTTP differ from the in-process scores "
            f"(max |diff| {worst:.3g} > {tolerance:g}; e.g. {first_mismatch})"
        )
    if failed_requests:
        result.failures.append("errors")
        sent = len(answers) + unsent
        what = f"{failed_requests} of {sent} requests failed"
        if errors:
            what += f" (e.g. {errors[0]})"
        if unsent:
            what += f"; {unsent} not sent: the check's time bound (serving.check_timeout_s) ran out"
        problems.append(what)
    if p99 is None:
        if "errors" not in result.failures:
            result.failures.append("errors")
            problems.append("no one-row request was timed")
    elif not p99 < max_latency_ms:
        result.failures.append("latency")
        problems.append(
            f"one-row p99 latency {_ms(p99)} over {len(lat)} requests is not under serving.max_latency_ms "
            f"{max_latency_ms:g} ms (p50 {_ms(p50 or 0.0)}{_rounds(rounds_p99_ms)})"
        )
    if problems:
        result.passed = False
        result.detail = f"v{version} over HTTP: " + "; ".join(problems)
    else:
        start = f"; start-up {startup_s:.1f} s, not timed" if startup_s is not None else ""
        result.detail = (
            f"v{version} served by a fresh `nightshift serve`: {compared} rows over {len(answers)} "
            f"requests = in-process scores (max |diff| {worst:.3g}, tolerance {tolerance:g}), no error; "
            f"one-row p50 {_ms(p50 or 0.0)}, p99 {_ms(p99 or 0.0)} (under {max_latency_ms:g} ms"
            f"{_rounds(rounds_p99_ms)}){start}"
        )
    return result


def _rounds(p99s: Sequence[float]) -> str:
    if len(p99s) < 2:
        return ""
    return f"; the best of {len(p99s)} rounds, p99 " + ", ".join(_ms(v) for v in p99s)


def _p99(latencies_ms: Sequence[float]) -> float:
    return (
        float(np.percentile(np.asarray(latencies_ms, dtype=np.float64), 99)) if latencies_ms else float("inf")
    )


HINTS = {
    "load": "the server cannot load or score the packaged model: check its artifact and requirements "
    "(MLflow run), then retrain",
    "answers": "the server answers differently from the model in process: check the request path "
    "(nightshift.serve) against the packaged transform",
    "errors": "the server refused or failed the model's own rows: read the serving check's errors "
    "(MLflow run gate/serving.json) and the server's log in the task log",
    "latency": "one-row requests are too slow for serving.max_latency_ms: a smaller model "
    "(training.params max_depth, num_boost_round) or a bound that fits the serving host",
}


def apply(verdict: GateResult, result: ServingCheck) -> GateResult:
    """The gate's verdict with the check's result (``serving``, and a ``serving`` check); a
    failure rejects the candidate, with the reason, and leaves nothing for a human to review."""
    checks = (*verdict.checks, GateCheck(NAME, result.passed, result.detail))
    if result.passed:
        return replace(verdict, serving=result.to_dict(), checks=checks)
    hints = [HINTS[f] for f in result.failures if f in HINTS]
    return replace(
        verdict,
        serving=result.to_dict(),
        checks=checks,
        promote=False,
        review=None,
        reason=f"rejected: {NAME}: {result.detail} (gate: {verdict.reason})",
        failed_checks=(*verdict.failed_checks, NAME),
        hints=tuple(dict.fromkeys([*hints, *verdict.hints])),
    )


def not_run(verdict: GateResult, why: str) -> GateResult:
    """The verdict of a candidate the check was not run on (the gate rejected it outright)."""
    return replace(verdict, serving={"checked": False, "detail": f"not run: {why}"})


# ---- the fresh server ---------------------------------------------------------------------

Command = Callable[[int], list[str]]


def serve_command(spec: DatasetSpec, version: str) -> Command:
    """``nightshift serve`` pinned to ``version`` on the inherited socket ``fd``."""

    def command(fd: int) -> list[str]:
        return [
            sys.executable, "-m", "nightshift.cli", "serve", "--dataset", spec.name, "--version", version,
            "--socket-fd", str(fd), "--no-request-log", "--stop-with-stdin",
        ]  # fmt: skip

    return command


class CheckServer:
    """A server process on a socket bound here to 127.0.0.1 (a free port) and inherited, in a
    process group of its own, with a stdin pipe (closing it, or this process dying, stops a
    ``--stop-with-stdin`` server). :meth:`stop` ends it by its group."""

    def __init__(self, command: Command, env: dict[str, str] | None = None) -> None:
        self.command, self.env = command, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._dir = tempfile.TemporaryDirectory(prefix="nightshift-servecheck-")
        self.log_path = Path(self._dir.name) / "serve.log"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            self.port = int(sock.getsockname()[1])
            fd = sock.fileno()
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    self.command(fd),
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(fd,),
                    start_new_session=True,
                    env=self.env,
                )
        finally:
            sock.close()  # the server holds its own copy: if it dies, connections are refused

    def get(self, path: str, timeout: float) -> tuple[int, dict[str, Any]]:
        """``(status, JSON body)`` of a GET; ``(0, {})`` while nothing answers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            try:
                doc = json.loads(body) if body else {}
            except ValueError:
                doc = {}
            return r.status, doc if isinstance(doc, dict) else {}
        except OSError:
            return 0, {}
        finally:
            conn.close()

    def wait_ready(self, version: str, timeout: float) -> str | None:
        """Wait for ``/health``; ``None`` once ``version`` is loaded, or the server's reason it
        cannot load it. Raises :class:`ServingCheckError` when it exits, does not get ready in
        ``timeout`` seconds, or cannot reach the registry."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._log_tail()
                raise ServingCheckError(
                    f"the serving check's server exited ({self.proc.returncode}) before it was ready "
                    "(its log is in the task log)"
                )
            left = deadline - time.monotonic()
            status, body = self.get("/health", timeout=max(0.2, min(2.0, left)))
            if status == 200:
                loaded = str(body.get("model_version"))
                if loaded != version:  # a pinned server serves nothing else
                    raise ServingCheckError(f"the serving check's server loaded v{loaded}, not v{version}")
                return None
            if status == 503:
                _, state = self.get("/version", timeout=max(0.2, min(2.0, left)))
                error = state.get("load_error")
                if error:
                    # without the server's timestamp and its "v<N> cannot be served: "
                    reason = str(error).split(": ", 1)[-1].removeprefix(f"v{version} cannot be served: ")
                    if state.get("load_error_retryable"):
                        raise ServingCheckError(
                            f"the serving check's server could not reach the registry: {reason}"
                        )
                    return reason
            if time.monotonic() >= deadline:
                self._log_tail()
                raise ServingCheckError(
                    f"the serving check's server did not load v{version} within {timeout:g} s "
                    "(serving.check_start_timeout_s; its log is in the task log)"
                )
            time.sleep(0.2)

    def _log_tail(self, lines: int = 30) -> None:
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            log.warning("the serving check's server log (last %d lines):\n%s", len(tail), "\n".join(tail))

    def stop(self) -> int | None:
        """SIGTERM to the group (SIGKILL after 30 s); the exit code (``None``: killed)."""
        proc, code = self.proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    code = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            else:
                code = proc.returncode
        self._dir.cleanup()
        return code


# ---- the requests -------------------------------------------------------------------------


class _Client:
    """``POST /invocations`` on one kept-alive connection, each bounded by the deadline."""

    def __init__(self, port: int, deadline: float) -> None:
        self.port, self.deadline = port, deadline
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[list[Any] | None, str | None, str | None]:
        """``(predictions, version, error)``."""
        left = self.deadline - time.monotonic()
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=left)
        elif self.conn.sock is not None:
            self.conn.sock.settimeout(left)
        try:
            self.conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # the next request opens a new connection
            return None, None, f"{type(exc).__name__}: {str(exc)[:200]}"
        try:
            doc = json.loads(data)
        except ValueError:
            return None, None, f"HTTP {r.status}: the answer is not JSON"
        if r.status != 200:
            message = doc.get("message") if isinstance(doc, dict) else None
            return None, None, f"HTTP {r.status}: {str(message)[:300]}"
        if not isinstance(doc, dict) or not isinstance(doc.get("predictions"), list):
            return None, None, "the answer has no list of predictions"
        return doc["predictions"], str(doc.get("model_version")), None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _body(columns: list[str], rows: list[list[Any]]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": columns, "data": rows}}, separators=(",", ":")).encode()


def probe(
    port: int,
    sample: dict[str, Any],
    *,
    max_rows: int,
    timed: int,
    deadline: float,
    batches: bool = True,
) -> tuple[list[Answer], list[float], int]:
    """Send the sample to the server on ``port`` (see the module's docstring): the answers, the
    timed one-row requests' latencies in ms, and the requests left unsent at the deadline
    (``batches=False``: only the timed one-row requests, a latency round measured again)."""
    columns = list(sample["columns"])
    plan: list[tuple[str, list[list[Any]], list[float], bool]] = []
    example = sample.get("example")
    hold = sample["holdout"]
    rows, expected = hold["rows"], hold["expected"]
    if batches and example and example["rows"]:
        plan.append(("input example", example["rows"], example["expected"], False))
    for i in range(0, len(rows) if batches else 0, max_rows):
        plan.append((f"holdout rows {i}-{min(i + max_rows, len(rows)) - 1}", rows[i : i + max_rows],
                     expected[i : i + max_rows], False))  # fmt: skip
    warmup = WARMUP if batches else 0
    if rows:
        for k in range(warmup + timed):
            j = k % len(rows)
            label = f"holdout row {j} ({'warm-up' if k < warmup else 'timed'})"
            plan.append((label, [rows[j]], [expected[j]], k >= warmup))
    client = _Client(port, deadline)
    answers: list[Answer] = []
    latencies: list[float] = []
    try:
        for n, (what, part, want, is_timed) in enumerate(plan):
            if time.monotonic() >= deadline:
                return answers, latencies, len(plan) - n
            body = _body(columns, part)
            t0 = time.perf_counter()
            got, version, error = client.post(body)
            ms = (time.perf_counter() - t0) * 1000.0
            if is_timed and error is None:
                latencies.append(ms)
            answers.append(Answer(what, list(want), got, error, version))
    finally:
        client.close()
    return answers, latencies, 0


def serving_check(
    spec: DatasetSpec,
    version: str,
    sample: dict[str, Any],
    *,
    command: Command | None = None,
    env: dict[str, str] | None = None,
) -> ServingCheck:
    """Serve ``version`` from a fresh process and judge its answers to ``sample`` (see the
    module's docstring). Raises :class:`ServingCheckError` when the check cannot be run."""
    cfg = spec.serving
    t0 = time.monotonic()
    server = CheckServer(command or serve_command(spec, version), env)
    try:
        server.start()
        load_error = server.wait_ready(version, cfg.check_start_timeout_s)
        startup = time.monotonic() - t0
        answers: list[Answer] = []
        latencies: list[float] = []
        unsent = 0
        rounds: list[list[float]] = []
        if load_error is None:
            deadline = time.monotonic() + cfg.check_timeout_s
            answers, latencies, unsent = probe(
                server.port, sample, max_rows=cfg.max_rows_per_request, timed=cfg.check_requests,
                deadline=deadline,
            )  # fmt: skip
            rounds.append(latencies)
            # a round over the bound is measured again: only the timed one-row requests
            while (
                not unsent
                and len(rounds) < cfg.check_latency_rounds
                and _p99(rounds[-1]) >= cfg.max_latency_ms
            ):
                more, latencies, unsent = probe(
                    server.port, sample, max_rows=cfg.max_rows_per_request, timed=cfg.check_requests,
                    deadline=deadline, batches=False,
                )  # fmt: skip
                answers += more
                rounds.append(latencies)
            latencies = min(rounds, key=_p99)
        result = judge(
            version,
            answers,
            latencies,
            cfg.max_latency_ms,
            tolerance=float(sample.get("tolerance", TOLERANCE)),
            load_error=load_error,
            unsent=unsent,
            startup_s=startup,
            wall_s=time.monotonic() - t0,
            rounds_p99_ms=[_p99(r) for r in rounds] if len(rounds) > 1 else (),
        )
        if not result.passed:
            log.warning("serving check failed: %s", result.detail)
            server._log_tail()
        return result
    finally:
        server.stop()
