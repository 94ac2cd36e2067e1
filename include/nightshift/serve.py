"""Online scoring: a dataset's champion behind HTTP (``nightshift serve``).

A FastAPI app around the packaged MLflow pyfunc of the champion (any model kind packaged as a
pyfunc serves; see :class:`Scorer` for how it is called):

* ``POST /invocations``: MLflow's ``dataframe_split`` and ``dataframe_records`` bodies;
  ``POST /predict``: a JSON list of records. Every answer names the version that scored it.
* ``GET /health``: 200 once a model is loaded, 503 before; ``GET /version``: the version, its
  run and training window, and what the registry said at the last poll.
* A background thread asks the registry where ``champion`` points every
  ``serving.poll_seconds``; a new version is loaded and warmed up beside the old one, then one
  reference is swapped. Each request reads that reference once, so it finishes on the version
  it started with, and no request waits for or fails on a switch. An unreachable registry or
  an unloadable version leaves the loaded version serving (``/version`` says why).
* A bad request gets a 4xx naming the problem (malformed JSON, an unknown format, a missing
  feature, a wrong type with its row, NaN or infinity, too many rows); values are never echoed.
* With ``serving.log_requests`` every answered row is buffered and written as Parquet under
  ``serving/<dataset>/dt=<local day of the request>/part-<uuid>.parquet`` (periodically and on
  shutdown, bounded), where the monitor reads served inputs for drift.

Why not MLflow's own scoring server (``mlflow models serve``, also FastAPI on uvicorn): it
resolves the alias once at start, never names the version that answered, and cannot log what
it served; its latency is measured against this one in ``bench/serve.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.spec import DatasetSpec
from nightshift.storage import Store

if TYPE_CHECKING:  # the web stack is imported by create_app (the monitor reads this module too)
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger(__name__)

FORMATS = ("dataframe_split", "dataframe_records")
SCORE = "score"  # as in predictions (nightshift.score.SCORE)
MODEL_VERSION = "model_version"
# the request log's own columns; "__" names cannot be a dataset's columns (the spec refuses them)
SERVED_AT = "__served_at"
REQUEST_ID = "__request_id"
VERSION_HEADER = "X-Nightshift-Model-Version"
BODY_BASE_BYTES = 1 << 20
BODY_BYTES_PER_ROW = 4 << 10
_SHOWN = 5  # rows named in an error message


class RequestError(Exception):
    """A request that cannot be scored: the HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


# ---- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """What a request must carry: the spec's features in model order, and the id column."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    id_column: str

    @classmethod
    def of(cls, spec: DatasetSpec) -> Features:
        return cls(
            tuple(f.name for f in spec.features.numeric),
            tuple(f.name for f in spec.features.categorical),
            spec.id_column,
        )

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


@dataclass(frozen=True)
class Batch:
    """A parsed request: the features as Arrow (numbers float64, categories string), the ids
    when the request gave the id column (else ``None``)."""

    table: pa.Table
    ids: list[Any] | None

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)


def body_limit(max_rows: int) -> int:
    """The largest request body accepted, in bytes."""
    return BODY_BASE_BYTES + BODY_BYTES_PER_ROW * max_rows


def decode_json(body: bytes) -> Any:
    """The JSON document of a body, or a 400 that says where it breaks.

    msgspec's decoder reads a valid body (half the standard library's time on 1,000 rows);
    what it refuses — malformed JSON, and what only the standard library reads (``NaN``,
    ``1e400``, a lone surrogate) — is read again by the standard library, which says where the
    body breaks, or gives the value to the checks that name it. Both give the same document."""
    with contextlib.suppress(msgspec.MsgspecError, RecursionError):
        return msgspec.json.decode(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"malformed JSON: not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None


def parse_invocations(doc: Any, features: Features, max_rows: int) -> Batch:
    """MLflow's request formats: ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``
    or ``{"dataframe_records": [{...}, ...]}``."""
    if not isinstance(doc, dict):
        raise RequestError(
            400, f"the body must be a JSON object with one of {', '.join(FORMATS)}, not {_json_type(doc)}"
        )
    given = [k for k in FORMATS if k in doc]
    others = sorted(str(k) for k in doc if k not in FORMATS)
    if len(given) != 1 or others:
        what = f"keys {', '.join(map(repr, sorted(doc)))}" if doc else "no keys"
        raise RequestError(
            400, f"unsupported request format ({what}): send exactly one of {', '.join(FORMATS)}"
        )
    if given[0] == "dataframe_split":
        return _from_split(doc["dataframe_split"], features, max_rows)
    return _from_records(doc["dataframe_records"], features, max_rows, "dataframe_records")


def parse_predict(doc: Any, features: Features, max_rows: int) -> Batch:
    """``/predict``: a JSON list of records (objects of column -> value)."""
    return _from_records(doc, features, max_rows, "the body")


def _count(rows: Any, where: str, max_rows: int) -> None:
    if not isinstance(rows, list):
        raise RequestError(400, f"{where} must be a list of rows, not {_json_type(rows)}")
    if len(rows) > max_rows:
        raise RequestError(
            413, f"{len(rows)} rows in one request; at most {max_rows} (serving.max_rows_per_request)"
        )
    if not rows:
        raise RequestError(400, f"{where} has no rows to score")


def _from_split(split: Any, features: Features, max_rows: int) -> Batch:
    if not isinstance(split, dict) or "columns" not in split or "data" not in split:
        raise RequestError(400, 'dataframe_split must be an object with "columns" and "data"')
    columns, data = split["columns"], split["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError(400, "dataframe_split.columns must be a list of column names")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise RequestError(400, f"dataframe_split.columns names {', '.join(dupes)} more than once")
    _count(data, "dataframe_split.data", max_rows)
    missing = [n for n in features.names if n not in columns]
    if missing:
        raise RequestError(400, f"missing feature column(s): {', '.join(missing)}")
    width = len(columns)
    bad = [i for i, row in enumerate(data) if not isinstance(row, list) or len(row) != width]
    if bad:
        i = bad[0]
        got = f"{len(data[i])} values" if isinstance(data[i], list) else _json_type(data[i])
        raise RequestError(
            400, f"dataframe_split.data row {i} has {got}, not {width} values (one per column)"
        )
    by_name = dict(zip(columns, zip(*data, strict=True), strict=True))
    ids = list(by_name[features.id_column]) if features.id_column in by_name else None
    return _batch({n: by_name[n] for n in features.names}, ids, features)


def _from_records(records: Any, features: Features, max_rows: int, where: str) -> Batch:
    _count(records, where, max_rows)
    not_objects = [i for i, r in enumerate(records) if not isinstance(r, dict)]
    if not_objects:
        i = not_objects[0]
        raise RequestError(
            400, f"{where}: row {i} is {_json_type(records[i])}, not an object of column values"
        )
    names = features.names
    need = frozenset(names)
    lacking = [i for i, r in enumerate(records) if not need <= r.keys()]
    if lacking:
        everywhere = [n for n in names if all(n not in records[i] for i in lacking)]
        if len(lacking) == len(records) and everywhere:
            raise RequestError(400, f"missing feature column(s): {', '.join(everywhere)}")
        i = lacking[0]
        absent = [n for n in names if n not in records[i]]
        raise RequestError(
            400,
            f"row {i} lacks feature(s) {', '.join(absent)} ({len(lacking)} row(s) lack some; "
            "send null for a missing value)",
        )
    columns = {n: [r[n] for r in records] for n in names}
    ids = (
        [r.get(features.id_column) for r in records]
        if any(features.id_column in r for r in records)
        else None
    )
    return _batch(columns, ids, features)


def _batch(columns: Mapping[str, Sequence[Any]], ids: list[Any] | None, features: Features) -> Batch:
    arrays = [_numeric(n, columns[n]) for n in features.numeric]
    arrays += [_categorical(n, columns[n]) for n in features.categorical]
    if ids is not None:
        wrong = [
            i
            for i, v in enumerate(ids)
            if v is not None and (type(v) is bool or not isinstance(v, (str, int)))
        ]
        if wrong:
            raise RequestError(
                400,
                f"id column {features.id_column!r} row {wrong[0]}: expected a string or an integer, "
                f"got {_json_type(ids[wrong[0]])}",
            )
    return Batch(pa.table(arrays, names=list(features.names)), ids)


def _numeric(name: str, values: Sequence[Any]) -> pa.Array:
    arr: pa.Array | None = None
    with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = pa.array(values)
    if arr is None or not (
        pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_null(arr.type)
    ):
        for i, v in enumerate(values):
            if v is None:
                continue
            if type(v) is bool or not isinstance(v, (int, float)):
                raise RequestError(
                    400, f"feature {name!r} row {i}: expected a number or null, got {_json_type(v)}"
                )
            if isinstance(v, int) and not -(2**63) <= v < 2**63:
                raise RequestError(400, f"feature {name!r} row {i}: the number is out of range")
        raise RequestError(400, f"feature {name!r}: expected numbers or nulls")  # not reached
    if not pa.types.is_floating(arr.type):  # integers (or all null): finite by construction
        return arr.cast(pa.float64(), safe=False)
    finite = pc.is_finite(arr)
    if pc.all(finite).as_py() is False:  # a value (not a null) that is NaN or infinite
        rows = np.flatnonzero(~pc.fill_null(finite, True).to_numpy(zero_copy_only=False))
        raise RequestError(
            400,
            f"feature {name!r} row(s) {_rows(rows)}: NaN or infinity is not a value "
            "(send null for a missing value)",
        )
    return arr.cast(pa.float64())


def _categorical(name: str, values: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        i = next(i for i, v in enumerate(values) if v is not None and not isinstance(v, str))
        raise RequestError(
            400, f"feature {name!r} row {i}: expected a string or null, got {_json_type(values[i])}"
        ) from None


def _rows(rows: Sequence[int] | np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:_SHOWN])
    return shown + (f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else "")


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


# ---- the model being served -----------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """One loaded model version: what answers a request from start to end."""

    version: str
    model: Any  # the MLflow pyfunc
    run_id: str | None = None
    trained_on: str | None = None
    loaded_at: str = field(default_factory=lambda: _now())
    # the packaged Python model, when it scores Arrow tables as the pyfunc scores pandas (Scorer.warm)
    python_model: Any = None

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "trained_on": self.trained_on,
            "loaded_at": self.loaded_at,
            "called_as": "python model on Arrow" if self.python_model is not None else "pyfunc on pandas",
        }


class Source(Protocol):
    """Where the champion comes from (the MLflow registry; a stand-in in unit tests)."""

    model_name: str

    def resolve(self) -> str | None:
        """The champion's version (``None``: no champion)."""

    def load(self, version: str) -> Loaded:
        """The pyfunc of ``version`` with its run and training window."""


class RegistrySource:
    """The ``champion`` alias of ``nightshift-<dataset>`` in MLflow (``MLFLOW_TRACKING_URI``),
    or one fixed version (``pinned``: the gate's serving check serves its candidate)."""

    def __init__(self, dataset: str, pinned: str | None = None) -> None:
        from nightshift import registry
        from nightshift.settings import library_defaults

        # a poll must notice an outage in seconds, not after MLflow's default minutes of retries
        library_defaults(MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_TIMEOUT="10")
        self.dataset, self.pinned = dataset, pinned
        self.model_name = registry.model_name(dataset)
        self.client = registry.configure()

    def resolve(self) -> str | None:
        from nightshift import registry

        if self.pinned is not None:
            return self.pinned
        return registry.alias_version(self.client, self.dataset, registry.CHAMPION)

    def load(self, version: str) -> Loaded:
        from nightshift import registry

        model = registry.load_model(self.dataset, version)
        with registry.speaking_errors(f"reading the run of {self.model_name} v{version}"):
            run_id = registry.get_version(self.client, self.dataset, version).run_id
            tags = self.client.get_run(run_id).data.tags if run_id else {}
        return Loaded(version, model, run_id, tags.get("nightshift.window"))


class Champion:
    """The loaded champion, kept in line with the registry by a polling thread.

    ``current`` is the one reference requests read; a new version is loaded and warmed up
    first, then swapped in with one assignment (atomic in CPython)."""

    def __init__(
        self,
        source: Source,
        poll_seconds: float,
        warm: Callable[[Loaded], Loaded] | None = None,
    ) -> None:
        self.source, self.poll_seconds, self.warm = source, poll_seconds, warm
        self.current: Loaded | None = None
        self.registry_version: str | None = None
        self.last_poll: str | None = None
        self.registry_error: str | None = None
        self.load_error: str | None = None
        # the load failed on an unreachable registry (worth retrying), not on the version itself
        self.load_error_retryable = False
        self.switches: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Ask the registry once; load and switch to a new champion."""
        try:
            version = self.source.resolve()
        except Exception as exc:  # the registry is down: keep serving what is loaded
            self.registry_error = f"{_now()}: {_first_line(exc)}"
            log.warning("registry poll failed (serving %s): %s", self._serving(), self.registry_error)
            return
        self.registry_error, self.registry_version, self.last_poll = None, version, _now()
        current = self.current
        if version is None:  # no champion (yet, or its alias was removed): keep what is loaded
            return
        if current is not None and current.version == version:
            self.load_error, self.load_error_retryable = None, False
            return
        t0 = time.perf_counter()
        try:
            loaded = self.source.load(version)
            if self.warm is not None:
                loaded = self.warm(loaded)  # a version that cannot score is never switched to
        except Exception as exc:
            from nightshift.registry import RegistryUnavailable

            self.load_error = f"{_now()}: v{version} cannot be served: {_first_line(exc)}"
            self.load_error_retryable = isinstance(exc, RegistryUnavailable)
            log.error("%s; still serving %s", self.load_error, self._serving())
            return
        self.current, self.load_error, self.load_error_retryable = loaded, None, False  # the switch
        seconds = time.perf_counter() - t0
        self.switches.append({"from": current.version if current else None, "to": version, "at": _now()})
        log.info("serving %s v%s (was %s; loaded in %.1f s)", self.source.model_name, version,
                 f"v{current.version}" if current else "nothing", seconds)  # fmt: skip

    def _serving(self) -> str:
        return f"v{self.current.version}" if self.current else "nothing"

    def _run(self) -> None:
        self.poll()
        while not self._stop.wait(self.poll_seconds):
            self.poll()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="champion-poll", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return {
            "champion_in_registry": self.registry_version,
            "last_poll": self.last_poll,
            "poll_seconds": self.poll_seconds,
            "registry_error": self.registry_error,
            "load_error": self.load_error,
            "load_error_retryable": self.load_error_retryable,
            "switches": self.switches[-10:],
        }


# ---- scoring --------------------------------------------------------------------------------


class Scorer:
    """Features → the packaged model's scores, as batch scoring computes them.

    A version is called one of two ways, chosen when it is loaded (:meth:`warm`): its packaged
    Python model given the request's Arrow table (``python_model.predict(None, table)``: no
    pandas round trip, no second schema check; ~4 ms less per one-row request, see
    docs/benchmarks.md), when that model scores the probe rows exactly as the pyfunc does; else
    the pyfunc on :func:`nightshift.features.model_input`'s pandas frame, as batch scoring
    calls it (any MLflow flavor). XGBoost's thread count is set once per request thread (its
    global configuration is per thread)."""

    def __init__(self, spec: DatasetSpec, threads: int | None = None) -> None:
        self.features = Features.of(spec)
        self.threads = spec.serving.predict_threads if threads is None else threads
        self._local = threading.local()
        # probe rows: all missing, and plain values (0/1, each category's first allowed value)
        firsts = [c.values[0] if c.values else "?" for c in spec.features.categorical]
        n = self.features
        self.probe = pa.table(
            [pa.array([None, float(i % 2)], pa.float64()) for i in range(len(n.numeric))]
            + [pa.array([None, v], pa.string()) for v in firsts],
            names=list(n.names),
        )

    def __call__(self, loaded: Loaded, table: pa.Table) -> np.ndarray:
        from mlflow.exceptions import MlflowException

        from nightshift.features import FeatureError

        if getattr(self._local, "threads", None) != self.threads:
            import xgboost as xgb

            xgb.set_config(nthread=self.threads)
            self._local.threads = self.threads
        try:
            if loaded.python_model is not None:
                out = loaded.python_model.predict(None, table)
            else:
                out = self._pyfunc(loaded, table)
        except FeatureError as exc:
            raise RequestError(400, str(exc)) from None
        except MlflowException as exc:  # the model's signature refused the input
            raise RequestError(400, f"the model refused the input: {_first_line(exc)}") from None
        scores = np.asarray(out, dtype=np.float64).reshape(-1)
        if len(scores) != table.num_rows:
            raise RuntimeError(f"v{loaded.version} returned {len(scores)} scores for {table.num_rows} rows")
        return scores

    def _pyfunc(self, loaded: Loaded, table: pa.Table) -> Any:
        from nightshift.features import model_input

        return loaded.model.predict(model_input(table, self.features.numeric, self.features.categorical))

    def warm(self, loaded: Loaded) -> Loaded:
        """``loaded``, scored once on the probe rows (lazy set-up happens now; a version that
        cannot score raises), with its Arrow path when that path scores them identically."""
        scores = self(replace(loaded, python_model=None), self.probe)
        try:
            inner = loaded.model.unwrap_python_model()
            fast = np.asarray(self(replace(loaded, python_model=inner), self.probe), dtype=np.float64)
        except Exception:  # not a Python model, or one that needs pandas
            return loaded
        return replace(loaded, python_model=inner) if np.array_equal(fast, scores) else loaded


# ---- the request log ------------------------------------------------------------------------


def serving_dir(store: Store, dataset: str, dt: date) -> str:
    """Where the rows served on the local day ``dt`` are logged."""
    return store.path("serving", dataset, store.dt_part(dt))


def log_schema(features: Features) -> pa.Schema:
    return pa.schema(
        [(features.id_column, pa.string())]
        + [(n, pa.float64()) for n in features.numeric]
        + [(n, pa.string()) for n in features.categorical]
        + [
            (SCORE, pa.float64()),
            (MODEL_VERSION, pa.string()),
            (SERVED_AT, pa.timestamp("us", tz="UTC")),
            (REQUEST_ID, pa.string()),
        ]
    )


class RequestLog:
    """Answered rows, buffered and written as Parquet files under
    ``serving/<dataset>/dt=<local day>/`` every ``flush_seconds`` and on :meth:`close`.

    At most ``max_rows`` wait in memory: while the store cannot be written, the oldest are
    dropped (and counted in :meth:`status`)."""

    def __init__(
        self, store: Store, spec: DatasetSpec, flush_seconds: float | None = None, max_rows: int | None = None
    ) -> None:
        from zoneinfo import ZoneInfo

        self.store, self.dataset = store, spec.name
        self.features = Features.of(spec)
        self.schema = log_schema(self.features)
        self.tz = ZoneInfo(spec.partitioning.timezone)
        self.flush_seconds = flush_seconds or spec.serving.log_flush_seconds
        self.max_rows = max_rows or spec.serving.log_max_buffer_rows
        self._pending: list[tuple[date, pa.Table]] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written_rows = self.dropped_rows = self.files = 0
        self.last_error: str | None = None
        self.last_flush: str | None = None

    def add(self, batch: Batch, scores: np.ndarray, version: str, at: datetime) -> None:
        n = batch.rows
        ids = pa.array(
            [None if v is None else str(v) for v in batch.ids] if batch.ids else [None] * n, pa.string()
        )
        columns = [ids, *batch.table.columns]
        columns += [
            pa.array(scores, pa.float64()),
            pa.array([version] * n, pa.string()),
            pa.array([at] * n, pa.timestamp("us", tz="UTC")),
            pa.array([uuid.uuid4().hex] * n, pa.string()),
        ]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        with self._lock:
            self._pending.append((at.astimezone(self.tz).date(), table))
            self._rows += n
            self._trim()
            if self._rows >= self.max_rows // 2:
                self._wake.set()

    def _trim(self) -> None:
        while self._rows > self.max_rows and self._pending:
            _, oldest = self._pending.pop(0)
            self._rows -= oldest.num_rows
            self.dropped_rows += oldest.num_rows

    def flush(self) -> int:
        """Write what is buffered, one file per local day; the rows written. On a store error
        the rows go back to the buffer (the error is kept for ``/version``)."""
        import pyarrow.parquet as pq

        with self._flushing:
            with self._lock:
                pending, self._pending, self._rows = self._pending, [], 0
            by_day: dict[date, list[pa.Table]] = {}
            for day, table in pending:
                by_day.setdefault(day, []).append(table)
            written = 0
            for day in sorted(by_day):
                table = pa.concat_tables(by_day[day])
                path = f"{serving_dir(self.store, self.dataset, day)}/part-{uuid.uuid4().hex}.parquet"
                try:
                    with self.store.open_output_atomic(path) as sink:
                        pq.write_table(table, sink)
                except Exception as exc:
                    self.last_error = f"{_now()}: {_first_line(exc)}"
                    log.warning("request log not written (kept in memory): %s", self.last_error)
                    with self._lock:
                        back = [(d, t) for d in sorted(by_day) if d >= day for t in by_day[d]]
                        self._pending[:0] = back
                        self._rows += sum(t.num_rows for _, t in back)
                        self._trim()
                    return written
                written += table.num_rows
                self.written_rows += table.num_rows
                self.files += 1
            self.last_error = None if pending else self.last_error
            self.last_flush = _now()
            return written

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if not self._stop.is_set():
                self.flush()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(60)
        self.flush()

    def status(self) -> dict[str, Any]:
        return {
            "buffered_rows": self._rows,
            "written_rows": self.written_rows,
            "dropped_rows": self.dropped_rows,
            "files": self.files,
            "last_flush": self.last_flush,
            "last_error": self.last_error,
            "where": self.store.uri(self.store.path("serving", self.dataset)),
        }


# ---- the app --------------------------------------------------------------------------------


# long: the service's routes are closures over one app state (the loaded champion and its lock)
def create_app(
    spec: DatasetSpec, source: Source, request_log: RequestLog | None = None, poll: bool = True
) -> Any:
    """The FastAPI app serving ``spec``'s champion from ``source``. Its lifespan starts the
    registry poll (``poll``) and the request log, and stops them (flushing the log)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect

    cfg = spec.serving
    features = Features.of(spec)
    scorer = Scorer(spec)
    champion = Champion(source, cfg.poll_seconds, warm=scorer.warm)
    limit = body_limit(cfg.max_rows_per_request)
    counts = {"answered": 0, "rows": 0, "client_errors": 0, "server_errors": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> Any:
        if poll:
            champion.start()
        if request_log is not None:
            request_log.start()
        try:
            yield
        finally:
            champion.stop()
            if request_log is not None:
                await run_in_threadpool(request_log.close)

    app = FastAPI(
        title=f"nightshift {spec.name}",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.champion, app.state.request_log, app.state.counts = champion, request_log, counts

    def error(status: int, message: str) -> Response:
        counts["client_errors" if status < 500 else "server_errors"] += 1
        code = {413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 503: "UNAVAILABLE"}.get(
            status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
        )
        return JSONResponse({"error_code": code, "message": message}, status_code=status)

    async def read_body(request: Request) -> bytes:
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind not in ("application/json", ""):
            raise RequestError(415, f"content type {kind!r} is not accepted: send application/json")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise RequestError(413, f"a body of {int(declared)} bytes is over the limit of {limit} bytes")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestError(413, f"the body is over the limit of {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise RequestError(400, "the client hung up before the whole body arrived") from None
        return b"".join(chunks)

    async def answer(request: Request, parse: Callable[[Any, Features, int], Batch], shape: str) -> Response:
        at = datetime.now(UTC)
        loaded = champion.current  # read once: this request finishes on this version
        try:
            if loaded is None:
                raise RequestError(503, f"no model loaded yet: {_unready(champion, source)}")
            body = await read_body(request)
            batch = parse(decode_json(body), features, cfg.max_rows_per_request)
            scores = await run_in_threadpool(scorer, loaded, batch.table)
        except RequestError as exc:
            return error(exc.status, exc.message)
        except Exception as exc:
            log.exception("scoring failed on v%s", loaded.version if loaded else "-")
            return error(500, f"scoring failed ({type(exc).__name__}); the server log has the details")
        if request_log is not None:
            request_log.add(batch, scores, loaded.version, at)
        counts["answered"] += 1
        counts["rows"] += batch.rows
        values = scores.tolist()  # a NaN or infinite score is encoded as null (msgspec's rule)
        content: dict[str, Any] = {"model": source.model_name, "model_version": loaded.version}
        if shape == "invocations":
            content["predictions"] = values
        else:
            ids = batch.ids
            content["predictions"] = [
                {features.id_column: ids[i], SCORE: v} if ids is not None else {SCORE: v}
                for i, v in enumerate(values)
            ]
        return Response(
            msgspec.json.encode(content),
            media_type="application/json",
            headers={VERSION_HEADER: loaded.version},
        )

    async def invocations(request: Request) -> Response:
        return await answer(request, parse_invocations, "invocations")

    async def predict(request: Request) -> Response:
        return await answer(request, parse_predict, "predict")

    async def health(request: Request) -> Response:
        loaded = champion.current
        if loaded is None:
            return JSONResponse(
                {"status": "unavailable", "reason": _unready(champion, source)}, status_code=503
            )
        return JSONResponse({"status": "ready", "model_version": loaded.version})

    async def version(request: Request) -> Response:
        loaded = champion.current
        body = {
            "dataset": spec.name,
            "model": source.model_name,
            **(loaded.describe() if loaded else {"version": None}),
            **champion.status(),
            "requests": dict(counts),
            "request_log": request_log.status() if request_log is not None else None,
            "limits": {"max_rows_per_request": cfg.max_rows_per_request, "max_body_bytes": limit},
        }
        return JSONResponse(body)

    # Starlette routes: the endpoint gets the request as is (no parameter parsing by FastAPI)
    app.add_route("/invocations", invocations, methods=["POST"])
    app.add_route("/predict", predict, methods=["POST"])
    app.add_route("/health", health, methods=["GET"])
    app.add_route("/version", version, methods=["GET"])
    return app


def _unready(champion: Champion, source: Source) -> str:
    if champion.registry_error:
        return f"the registry is unreachable ({champion.registry_error})"
    if champion.load_error:
        return champion.load_error
    if champion.last_poll is None:
        return "loading the champion"
    if champion.registry_version is None:
        return f"{source.model_name} has no 'champion' alias yet"
    return f"loading v{champion.registry_version}"


def serve(
    spec: DatasetSpec,
    host: str,
    port: int,
    store: Store | None,
    *,
    version: str | None = None,
    socket_fd: int | None = None,
    stop_with_stdin: bool = False,
) -> int:
    """Run the service until SIGTERM/SIGINT (then the request log is flushed).

    ``version``: serve that version, never following the alias. ``socket_fd``: listen on that
    inherited, already bound socket (``host``/``port`` are then only named in the log).
    ``stop_with_stdin``: stop when stdin reaches its end, i.e. when the process that started
    this one closes the pipe or dies (the gate's serving check: no orphaned server)."""
    import socket

    import uvicorn

    from nightshift import registry

    source = RegistrySource(spec.name, pinned=version)
    request_log = RequestLog(store, spec) if spec.serving.log_requests and store is not None else None
    app = create_app(spec, source, request_log)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=socket_fd) if socket_fd is not None else None
    if sock is not None:
        host, port = sock.getsockname()[:2]
    what = f"v{version}" if version else "champion"
    log.info(
        "serving %s's %s on http://%s:%d (registry %s, polled every %.0f s; request log %s)",
        spec.name, what, host, port, registry.tracking_uri(), spec.serving.poll_seconds,
        request_log.status()["where"] if request_log else "off",
    )  # fmt: skip
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again under the handler
    # it found: a no-op one makes a graceful stop exit 0 (not -15, nor a KeyboardInterrupt)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    if stop_with_stdin:
        threading.Thread(target=_stop_at_stdin_end, name="stdin-watch", daemon=True).start()
    config = uvicorn.Config(
        app, host=host, port=port, access_log=False, log_level="info", timeout_graceful_shutdown=20
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)
    return 0 if server.started else 3


def _stop_at_stdin_end() -> None:
    import os
    import sys

    with contextlib.suppress(OSError, ValueError):
        while sys.stdin.buffer.read(4096):
            pass
    log.info("stdin closed (the process that started this server is gone): stopping")
    os.kill(os.getpid(), signal.SIGTERM)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """The error's type and first line, at most ``limit`` characters of it: a long line keeps its
    head and its end, where the cause is (a store error names the path first, the errno last)."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    line = text[0] if len(text[0]) <= limit else f"{text[0][: limit // 2]} … {text[0][-(limit // 2) :]}"
    return f"{type(exc).__name__}: {line}"
