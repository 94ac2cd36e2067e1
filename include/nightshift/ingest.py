"""Read a day's landing files, cast them to the spec's schema, validate, publish or quarantine.

The reader streams: files are read block by block with pyarrow, cast, and written to a local
staging Parquet file, so memory follows the block size, not the file size. File-level problems
(empty, undecodable, corrupt, values that cannot be cast) become failed checks next to GX's
own, so one report explains the whole verdict.

Only the data's own faults are data errors (quarantined, never retried). A full or failing
local disk while staging is a :class:`StagingError`, a store that cannot be read or written a
:class:`~nightshift.storage.StorageError`: both are infrastructure errors, raised for the
orchestrator to retry, and nothing half-written is left in the store.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import errno
import io
import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nightshift.backends import Backends, as_backends
from nightshift.errors import ServiceError
from nightshift.spec import BatchKind, DatasetSpec
from nightshift.storage import (
    DISK_FULL,
    LEFTOVER_MAX_AGE_S,
    StorageError,
    Store,
    sweep_local,
)
from nightshift.validate import BatchRejected, CheckResult, ValidationOutcome

NULL_VALUES = ["", "NULL", "null", "NaN", "nan", "None"]
BLOCK_SIZE = 16 << 20
PARQUET_BATCH_ROWS = 256_000
PARQUET_MAGIC = b"PAR1"

log = logging.getLogger(__name__)


class NoLandingData(ServiceError, FileNotFoundError):
    """The day's landing folder has no files yet (upstream has not delivered: retried)."""


class LandingIncomplete(NoLandingData):
    """Files landed but not the day's ``landing.complete_marker`` yet: upstream is still
    delivering (an infrastructure-style wait, retried, not a verdict on the data)."""


def landing_files(
    store: Store, dataset: str, kind: BatchKind, dt: date, pattern: str = "*", marker: str | None = None
) -> list[str]:
    """The day's files to ingest (store paths), once the day is complete.

    Raises :class:`NoLandingData` when no file matches ``pattern`` and, with a ``marker``
    (``landing.complete_marker``), :class:`LandingIncomplete` until the marker is there. The
    marker itself is never data: names starting with ``_`` or ``.`` are never listed, and the
    spec refuses a marker that ``pattern`` would match.
    """
    where = store.landing_dir(dataset, kind, dt)
    files = store.list_files(where, pattern)
    if not files:
        raise NoLandingData(f"no {kind} files for {dataset} in {store.uri(where)}")
    if marker and not store.is_file(f"{where}/{marker}"):
        raise LandingIncomplete(
            f"{dataset} {kind} dt={dt}: {len(files)} file(s) landed in {store.uri(where)} but not "
            f"{marker!r} (landing.complete_marker) yet: waiting for upstream to finish the day"
        )
    return files


def labels_in_flight(store: Store, spec: DatasetSpec, day: date) -> bool:
    """Whether the labels arriving on ``day`` have landed (complete, as the labels' wait sees
    them) and are due (events landed ``label.delay_days`` before) but have no validation report
    yet: the day's ingest is on them."""
    if store.exists(store.reports_dir(spec.name, "validation", day) + "/labels.json"):
        return False
    source = day - timedelta(days=spec.label.delay_days)
    if not store.list_files(store.landing_dir(spec.name, "events", source), spec.landing.pattern):
        return False
    try:
        landing_files(store, spec.name, "labels", day, spec.landing.pattern, spec.landing.complete_marker)
    except NoLandingData:
        return False
    return True


class StagingError(ServiceError, RuntimeError):
    """The local staging disk failed (full, or an I/O error): an infrastructure error, retried;
    the message says which file was being staged and where."""


def staging_error(exc: OSError, doing: str, where: Path | str) -> StagingError:
    what = "disk full" if exc.errno in DISK_FULL else "disk error"
    return StagingError(f"{what} while {doing} to {where}: {exc}")


class _FatalRead(Exception):
    """A file that cannot be read at all (the check says why)."""

    def __init__(self, check: CheckResult) -> None:
        super().__init__(check.details)
        self.check = check


def arrow_type(spec: DatasetSpec, column: str) -> pa.DataType:
    """The Arrow type of a spec column."""
    if column == spec.id_column:
        return pa.string() if spec.id_dtype == "string" else pa.int64()
    if column == spec.event_time_column:
        return EVENT_TIME
    if column == spec.label.column:
        return {"bool": pa.bool_(), "int64": pa.int64(), "string": pa.string()}[spec.label.dtype]
    for f in spec.features.numeric:
        if f.name == column:
            return pa.int64() if f.dtype == "int64" else pa.float64()
    for c in spec.features.categorical:
        if c.name == column:
            return pa.string()
    raise KeyError(f"{column!r} is not a column of dataset {spec.name!r}")


def arrow_schema(spec: DatasetSpec, kind: BatchKind) -> pa.Schema:
    """The schema a published batch of this kind has (a labels batch delivered without its
    optional event-time column is published without it)."""
    return pa.schema([pa.field(c, arrow_type(spec, c)) for c in spec.columns_for(kind)])


# ---- event time ---------------------------------------------------------------------------
# Event times are stored as UTC instants; the day partition is their local calendar day in
# ``partitioning.timezone`` (the partition check compares them with local-day bounds).
EVENT_TIME = pa.timestamp("us", tz="UTC")
# an offset after a time of day: Z, UTC/GMT, +hh, +hhmm or +hh:mm (a bare date has no ':')
_HAS_OFFSET = r":\d{2}(?:[.,]\d+)?\s*(?:[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


def localize(naive: pa.Array, zone: str) -> pa.Array:
    """Wall-clock times without an offset, read as local times in ``zone``, as UTC instants.

    Across a DST change a local time can be ambiguous (the repeated hour when clocks go back:
    the *first* occurrence is taken, i.e. still daylight time) or nonexistent (the hour skipped
    when clocks go forward: shifted forward to the first valid instant after the gap), as
    pandas' ``tz_localize(ambiguous=True, nonexistent="shift_forward")`` would.
    """
    naive = pc.cast(naive, pa.timestamp("us"), safe=False)
    if zone == "UTC":
        return pc.cast(naive, EVENT_TIME)
    local = pc.assume_timezone(naive, timezone=zone, ambiguous="earliest", nonexistent="latest")
    return pc.cast(local, EVENT_TIME)


def _pandas_times(arr: pa.Array, utc: bool) -> pa.Array:
    """Leniently parsed timestamps (unparseable → null), naive unless ``utc``."""
    import pandas as pd

    s = pd.Series(arr.to_pandas(), dtype="object")
    try:
        conv = pd.to_datetime(s, errors="coerce", utc=utc, format="mixed")
    except (ValueError, TypeError):  # naive and aware values mixed (an offset we did not spot)
        conv = pd.to_datetime(s.map(lambda v: _one_time(v, utc)), errors="coerce", utc=utc)
    return pc.cast(
        pa.array(conv, from_pandas=True), pa.timestamp("us", tz="UTC" if utc else None), safe=False
    )


def _one_time(value: Any, utc: bool) -> Any:
    import pandas as pd

    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if t.tzinfo is None:
        return t.tz_localize("UTC") if utc else t
    return t.tz_convert("UTC") if utc else None  # an aware value among naive ones: not parseable here


def event_time(arr: pa.Array, zone: str, column: str = "", issues: _CastIssues | None = None) -> pa.Array:
    """The event-time column as UTC instants: times with an offset (or ``Z``) are converted,
    times without one are local times in ``zone`` (see :func:`localize`); Parquet timestamps
    without a time zone and dates likewise. Strict (``issues`` None): a value that is not an
    ISO 8601 time raises ``ArrowInvalid``; lenient: it becomes null and is counted in ``issues``."""
    t = arr.type
    if pa.types.is_timestamp(t):
        return localize(arr, zone) if t.tz is None else pc.cast(arr, EVENT_TIME, safe=False)
    if pa.types.is_date(t):
        return localize(pc.cast(arr, pa.timestamp("us")), zone)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), EVENT_TIME)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        if issues is None:
            raise pa.ArrowInvalid(f"conversion error: {column} of type {t} is not a time")
        issues.add(column, pc.cast(pc.drop_null(arr), pa.string()))
        return pa.nulls(len(arr), EVENT_TIME)
    try:
        return pc.cast(arr, EVENT_TIME)  # every value with an offset (the common case)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return localize(pc.cast(arr, pa.timestamp("us")), zone)  # none with an offset
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = pc.utf8_trim_whitespace(arr)
    aware = pc.fill_null(pc.match_substring_regex(text, _HAS_OFFSET), False)
    none = pa.scalar(None, text.type)
    with_offset, without = pc.if_else(aware, text, none), pc.if_else(aware, none, text)
    if issues is None:
        converted = pc.cast(with_offset, EVENT_TIME)
        local = localize(pc.cast(without, pa.timestamp("us")), zone)
        return pc.if_else(aware, converted, local)
    try:
        converted = pc.cast(with_offset, EVENT_TIME)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        converted = _pandas_times(with_offset, utc=True)
    try:
        naive = pc.cast(without, pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        naive = _pandas_times(without, utc=False)
    out = pc.if_else(aware, converted, localize(naive, zone))
    issues.add(column, pc.filter(arr, pc.and_(pc.is_valid(arr), pc.is_null(out))))
    return out


# ---- casting ------------------------------------------------------------------------------
@dataclass
class _CastIssues:
    """Values per column that could not be cast, with a few examples."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, column: str, bad: pa.Array) -> None:
        n = len(bad)
        if n:
            self.counts[column] = self.counts.get(column, 0) + n
            ex = self.examples.setdefault(column, [])
            ex.extend(str(v) for v in bad.slice(0, 3 - len(ex)).to_pylist() if len(ex) < 3)

    def checks(self, spec: DatasetSpec) -> list[CheckResult]:
        """One failed check per column; a pii column's says how many, never which values."""

        def details(col: str, n: int) -> str:
            head = f"{n} value(s) not parseable as {arrow_type(spec, col)}"
            if col in spec.pii_columns:
                return f"{head} (values withheld: pii column)"
            return f"{head}, e.g. " + ", ".join(repr(e) for e in self.examples.get(col, []))

        return [
            CheckResult("values_castable", False, column=col, details=details(col, n), source="read")
            for col, n in self.counts.items()
        ]


def _coerce(arr: pa.Array, target: pa.DataType, column: str, issues: _CastIssues) -> pa.Array:
    """Cast leniently: values that cannot be cast become null and are counted."""
    try:
        return pc.cast(arr, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if pa.types.is_boolean(target) and pa.types.is_string(arr.type):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
        ok = pc.fill_null(pc.is_in(text, value_set=pa.array(["true", "false", "1", "0"])), False)
        issues.add(column, pc.filter(arr, pc.and_(pc.is_valid(arr), pc.invert(ok))))
        return pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), target)
    if pa.types.is_integer(target) and pa.types.is_string(arr.type):
        # integers are matched as text so large ids keep every digit (no float round-trip)
        text = pc.utf8_trim_whitespace(arr)
        ok = pc.match_substring_regex(text, r"^[+-]?[0-9]+$")
        bad = pc.and_(pc.is_valid(arr), pc.invert(pc.fill_null(ok, False)))
        issues.add(column, pc.filter(arr, bad))
        return pc.cast(pc.if_else(pc.fill_null(ok, False), text, pa.scalar(None, pa.string())), target)
    import pandas as pd

    s = pd.Series(arr.to_pandas(), dtype="object")
    conv: pd.Series[Any]
    if pa.types.is_timestamp(target):
        conv = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    elif pa.types.is_integer(target) or pa.types.is_floating(target):
        conv = pd.to_numeric(s, errors="coerce")
        if pa.types.is_integer(target):
            conv = conv.where(conv.isna() | (conv % 1 == 0))
    else:
        conv = s.astype("string")
    bad_mask = s.notna() & conv.isna()
    issues.add(column, pa.array(s[bad_mask].astype(str).tolist(), pa.string()))
    out = pa.array(conv, from_pandas=True)
    return pc.cast(out, target, safe=False)


def _cast_batch(
    batch: pa.RecordBatch, spec: DatasetSpec, kind: BatchKind, issues: _CastIssues | None
) -> pa.RecordBatch:
    """Spec columns first (in spec order, cast), then any extra columns as they came."""
    names = batch.schema.names
    arrays, fields = [], []
    for col in spec.columns_for(kind):
        if col not in names:
            continue
        target = arrow_type(spec, col)
        arr = batch.column(names.index(col))
        if col == spec.event_time_column:
            arr = event_time(arr, spec.partitioning.timezone, col, issues)
        elif arr.type != target:
            arr = _coerce(arr, target, col, issues) if issues is not None else pc.cast(arr, target, safe=True)
        arrays.append(arr)
        fields.append(pa.field(col, target))
    for i, col in enumerate(names):
        if col not in spec.columns_for(kind):
            arrays.append(batch.column(i))
            fields.append(batch.schema.field(i))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


# ---- readers -------------------------------------------------------------------------------
class _Source:
    """A landing file opened for a parser; it remembers whether reading the bytes failed, so an
    I/O error in here (the store: disk or network) is told apart from one in the parser (the
    data: a corrupt file)."""

    def __init__(self, store: Store, path: str) -> None:
        self.store, self.path = store, path
        self.name = path.rpartition("/")[2]
        self.error: OSError | None = None
        self._f = store.open_input(path)

    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as exc:
            self.error = exc
            raise

    def read(self, nbytes: int | None = None) -> bytes:
        return bytes(self._guard(self._f.read, nbytes))

    def seek(self, position: int, whence: int = 0) -> int:
        return int(self._guard(self._f.seek, position, whence))

    def tell(self) -> int:
        return int(self._guard(self._f.tell))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return bool(self._f.closed)

    def close(self) -> None:
        self._f.close()

    def stream(self) -> pa.PythonFile:
        return pa.PythonFile(self, mode="r")

    def failure(self) -> StorageError | None:
        """The store error to raise instead of a data verdict, when the bytes could not be read."""
        if self.error is None:
            return None
        return self.store.io_error("reading", self.path, self.error)


def _fatal(check: str, details: str) -> _FatalRead:
    return _FatalRead(CheckResult(check, False, source="read", details=details))


def _check_unique(names: list[str], name: str) -> None:
    """A column name given twice would leave one of the two columns unread: a data error."""
    counts = collections.Counter(names)
    repeated = [c for c, n in counts.items() if n > 1]
    if repeated:
        where = "; ".join(
            f"{c!r} at columns " + ", ".join(str(i + 1) for i, n in enumerate(names) if n == c)
            for c in repeated
        )
        raise _fatal("file_columns_unique", f"{name}: column name(s) repeated in the header: {where}")


def _check_utf8_head(head: bytes, name: str) -> None:
    if head.startswith(PARQUET_MAGIC):
        raise _fatal("file_format", f"{name}: a Parquet file, but the spec's landing.format is csv")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head[:4096]:
        raise _fatal("file_encoding", f"{name}: not UTF-8 (looks like UTF-16)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise _fatal("file_encoding", f"{name}: not valid UTF-8 at byte {exc.start}") from None


def _csv_header(head: bytes, delimiter: str) -> list[str]:
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    if first.startswith("\ufeff"):
        first = first[1:]
    return next(csv.reader(io.StringIO(first), delimiter=delimiter), [])


# Arrow's parse errors quote the offending row or value: with pii columns, those go
_ROW_EXCERPT = re.compile(r"(got \d+(?: columns?)?):.*$")
_QUOTED = re.compile(r"'[^']*'")


def _read_errors(exc: Exception, name: str, redact: bool = False) -> CheckResult:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if redact:
        msg = _QUOTED.sub("'…'", _ROW_EXCERPT.sub(r"\1 (row withheld: pii columns)", msg))
    if "UTF8" in msg or "utf-8" in msg.lower():
        return CheckResult("file_encoding", False, source="read", details=f"{name}: not valid UTF-8 ({msg})")
    return CheckResult("file_readable", False, source="read", details=f"{name}: corrupt or truncated ({msg})")


def _iter_csv(src: _Source, spec: DatasetSpec, kind: BatchKind, lenient: bool) -> Iterator[pa.RecordBatch]:
    head = src.read(1 << 16)
    src.seek(0)
    _check_utf8_head(head, src.name)
    header = _csv_header(head, spec.landing.delimiter)
    if not header or header == [""]:
        raise _fatal("file_has_header", f"{src.name}: no header row")
    _check_unique(header, src.name)
    wanted = spec.columns_for(kind)
    # event times are read as text: with or without an offset, they are converted by
    # ``event_time`` (Arrow's CSV reader takes only one of the two forms per column)
    types: dict[str, pa.DataType] = {
        c: (pa.string() if lenient or c == spec.event_time_column else arrow_type(spec, c))
        for c in header
        if c in wanted
    }
    read_opts = pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=True)
    parse_opts = pacsv.ParseOptions(delimiter=spec.landing.delimiter)
    conv_opts = pacsv.ConvertOptions(
        column_types=types,
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    reader = pacsv.open_csv(
        src.stream(), read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts
    )
    yield from reader


def _iter_parquet(src: _Source) -> Iterator[pa.RecordBatch]:
    head = src.read(len(PARQUET_MAGIC))
    src.seek(0)
    if head != PARQUET_MAGIC:
        raise _fatal(
            "file_format",
            f"{src.name}: not a Parquet file (no PAR1 header), but the spec's landing.format is parquet",
        )
    try:
        pf = pq.ParquetFile(src.stream())
    except (pa.ArrowInvalid, OSError) as exc:
        if src.error is not None:
            raise
        raise _FatalRead(_read_errors(exc, src.name)) from None
    _check_unique(pf.schema_arrow.names, src.name)
    yield from pf.iter_batches(batch_size=PARQUET_BATCH_ROWS)


@dataclass
class StagedBatch:
    """A batch read, cast and written to a local Parquet file."""

    path: Path
    rows: int
    bytes_in: int
    checks: list[CheckResult]
    fatal: bool


def stage_files(
    store: Store, files: list[str], spec: DatasetSpec, kind: BatchKind, staging: Path
) -> StagedBatch:
    """Read every landing file of a partition into one local Parquet file.

    The fast path reads with the spec's types; if a value does not fit, the partition is
    re-read with text columns and cast leniently, so every bad value is counted and named.
    """
    try:
        return _stage(store, files, spec, kind, staging, lenient=False)
    except _NeedsLenient:
        staging.unlink(missing_ok=True)
        return _stage(store, files, spec, kind, staging, lenient=True)


class _NeedsLenient(Exception):
    pass


# long: the streaming read/cast/stage loop; disk, parse and cast failures told apart in place
def _stage(
    store: Store, files: list[str], spec: DatasetSpec, kind: BatchKind, staging: Path, lenient: bool
) -> StagedBatch:
    issues = _CastIssues() if lenient else None
    rows = bytes_in = 0
    checks: list[CheckResult] = []
    writer: pq.ParquetWriter | None = None
    src: _Source | None = None
    name = ""

    def write(batch: pa.RecordBatch) -> None:
        try:
            assert writer is not None
            writer.write_batch(batch)
        except OSError as exc:
            raise staging_error(exc, f"staging {name}", staging) from exc

    # Parquet encoding runs on a second thread while the next block is parsed; one write in
    # flight at a time keeps memory at two blocks.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-writer")
    pending: Future[None] | None = None
    try:
        for path in files:
            name = path.rpartition("/")[2]
            size = store.size(path)
            bytes_in += size
            if size == 0:
                raise _fatal("file_not_empty", f"{name}: 0 bytes")
            src = _Source(store, path)
            it = _iter_csv(src, spec, kind, lenient) if spec.landing.format == "csv" else _iter_parquet(src)
            for raw in it:
                batch = _cast_batch(raw, spec, kind, issues)
                if writer is None:
                    try:
                        writer = pq.ParquetWriter(staging, batch.schema, compression="snappy")
                    except OSError as exc:
                        raise staging_error(exc, f"staging {name}", staging) from exc
                elif not batch.schema.equals(writer.schema, check_metadata=False):
                    raise _fatal(
                        "files_share_schema",
                        f"{name}: columns or types differ from the partition's first file",
                    )
                if pending is not None:
                    pending.result()
                pending = pool.submit(write, batch)
                rows += batch.num_rows
            src.close()
        if pending is not None:
            pending.result()
            pending = None
        if writer is None:
            raise _fatal("file_has_rows", f"{name}: no data")
        try:  # closing writes the footer: a full disk can show here too
            writer.close()
        except OSError as exc:
            raise staging_error(exc, f"staging {name}", staging) from exc
        finally:
            writer = None
    except _FatalRead as exc:
        checks.append(exc.check)
        return StagedBatch(staging, rows, bytes_in, checks, fatal=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if src is not None and (failure := src.failure()):
            raise failure from exc
        msg = str(exc)
        cast_failure = any(
            k in msg for k in ("conversion error", "Unsupported cast", "Failed to parse string")
        )
        if not lenient and cast_failure and "UTF8" not in msg:
            raise _NeedsLenient from exc
        checks.append(_read_errors(exc, name, redact=bool(spec.pii_columns)))
        return StagedBatch(staging, rows, bytes_in, checks, fatal=True)
    except (StorageError, FileNotFoundError):
        raise
    except OSError as exc:
        # the writer's errors are StagingError by now: an OSError is the source's bytes failing
        # to arrive (the store) or a parser finding them corrupt (the data)
        if src is not None and (failure := src.failure()):
            raise failure from exc
        checks.append(_read_errors(exc, name, redact=bool(spec.pii_columns)))
        return StagedBatch(staging, rows, bytes_in, checks, fatal=True)
    finally:
        if pending is not None:
            wait([pending])
        pool.shutdown()
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        if src is not None:
            src.close()
    if issues is not None:
        checks.extend(issues.checks(spec))
    return StagedBatch(staging, rows, bytes_in, checks, fatal=False)


def to_validation_frame(table: pa.Table, spec: DatasetSpec) -> Any:
    """The whole batch as one pandas frame, as GX would see it (for tools and tests; the
    ingest itself hands GX one column at a time, see :func:`nightshift.validate.run_suite`)."""
    from nightshift.validate import arrow_to_frame

    return arrow_to_frame(table)


# ---- the labels report ---------------------------------------------------------------------
def _ids(table: pa.Table, column: str, like: pa.DataType) -> pa.Array | None:
    col = table.column(column).combine_chunks()
    if col.type != like:
        try:
            col = pc.cast(col, like)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # an older partition of another id type: nothing in it can match
    return col


# long: the labels batch's checks (values, ids matched, changes), in the order of the report
def label_checks(
    store: Store, spec: DatasetSpec, dt: date, staged: Path
) -> tuple[list[CheckResult], dict[str, Any]]:
    """What a labels batch arriving on ``dt`` says about earlier data: the checks and the
    counts of the labels report.

    - ``labels_match_events``: ids never seen in the curated events of the event days
      ``dt - spec.label_match_days`` .. ``dt`` (the label delay plus the training window) are
      counted; above ``validation.max_unmatched_label_fraction`` of the batch's ids the check
      fails and the batch is quarantined. While the events of the day the labels are due for
      (``dt - label.delay_days``) have landed but are not ingested yet, it is not judged.
    - ``labels_changed`` (informational, never fails): ids already labelled by an earlier
      arrival in that window, and how many of them now have another value (the latest
      arrival wins: a correction takes effect).

    Both read only the id (and label) columns, one partition at a time.
    """
    id_col, label_col = spec.id_column, spec.label.column
    names = pq.ParquetFile(staged).schema_arrow.names
    if id_col not in names or label_col not in names:
        return [], {}  # the suite names the missing column
    batch = pq.read_table(staged, columns=[id_col, label_col])
    ids = pc.unique(batch.column(id_col).combine_chunks().drop_null())
    first = date.fromordinal(dt.toordinal() - spec.label_match_days)
    due = date.fromordinal(dt.toordinal() - spec.label.delay_days)
    window = f"{first}..{dt}"
    threshold = spec.validation.max_unmatched_label_fraction
    report: dict[str, Any] = {"ids": len(ids), "matched_against": window}

    # ids never seen in curated events: the due day first (most labels are for it), then
    # the newest days; stop once every id is found
    days = [
        d
        for d in store.list_partitions(store.path("curated", spec.name))
        if first <= d <= dt and store.exists(store.published_file(spec.name, "events", d))
    ]
    days.sort(key=lambda d: (d != due, -d.toordinal()))
    remaining = ids
    for d in days:
        if not len(remaining):
            break
        table = pq.read_table(
            store.open_input(store.published_file(spec.name, "events", d)), columns=[id_col]
        )
        day_ids = _ids(table, id_col, ids.type)
        if day_ids is None:
            continue
        found = pc.unique(pc.filter(day_ids, pc.is_in(day_ids, value_set=remaining)))
        remaining = pc.filter(remaining, pc.invert(pc.is_in(remaining, value_set=found)))
    unmatched = len(remaining)
    share = unmatched / len(ids) if len(ids) else 0.0
    pending = (
        due not in days
        and not store.exists(store.reports_dir(spec.name, "validation", due) + "/events.json")
        and bool(store.list_files(store.landing_dir(spec.name, "events", due), spec.landing.pattern))
    )
    report.update(unmatched=unmatched, unmatched_fraction=round(share, 6), max_unmatched_fraction=threshold)
    detail = (
        f"{unmatched} of {len(ids)} label id(s) ({share:.1%}) match no curated event of {window} "
        f"(at most {threshold:.1%}: validation.max_unmatched_label_fraction)"
    )
    if due not in days and unmatched:
        status = _events_valid(store, spec, due)
        why = {True: "", False: "were quarantined", None: "were not delivered"}[status]
        if pending:
            why = "have landed but are not ingested yet: not judged"
        if why:
            detail += f"; the events of dt={due} (the day these labels are due for) {why}"
    report["pending"] = pending
    match = CheckResult("labels_match_events", pending or share <= threshold, details=detail, source="read")

    # labels that change an earlier arrival's value (read per partition, only this batch's ids)
    earlier: list[pa.Table] = []
    for a in store.list_partitions(store.path("labels", spec.name)):
        path = store.published_file(spec.name, "labels", a)
        if not first <= a < dt or not store.exists(path):
            continue
        part = pq.read_table(store.open_input(path), columns=[id_col, label_col])
        part_ids = _ids(part, id_col, ids.type)
        if part_ids is not None:
            keep = pc.is_in(part_ids, value_set=ids)
            values = pc.cast(pc.filter(part.column(label_col), keep), pa.string())
            earlier.append(pa.table([pc.filter(part_ids, keep), values], names=[id_col, "before"]))
    resent = changed = 0
    if earlier:
        # single-threaded grouping keeps row order: "last" is the latest earlier arrival
        grouped = pa.concat_tables(earlier).group_by(id_col, use_threads=False)
        before = grouped.aggregate([("before", "last")])
        now = pa.table(
            [batch.column(id_col), pc.cast(batch.column(label_col), pa.string())], names=[id_col, "now"]
        )
        both = now.join(before, keys=id_col, join_type="inner")
        resent = both.num_rows
        differ = pc.fill_null(pc.not_equal(both["now"], both["before_last"]), False)
        changed = int(pc.sum(differ).as_py() or 0)
    report.update(resent=resent, changed=changed)
    change = CheckResult(
        "labels_changed",
        True,
        details=f"{changed} label(s) changed from an earlier arrival since {first} ({resent} id(s) re-sent); "
        "the latest arrival wins",
        source="read",
    )
    return [match, change], report


def _events_valid(store: Store, spec: DatasetSpec, dt: date) -> bool | None:
    """Whether the latest events batch of ``dt`` was valid (``None``: never validated)."""
    path = store.reports_dir(spec.name, "validation", dt) + "/events.json"
    if not store.exists(path):
        return None
    return bool(store.read_json(path).get("outcome", {}).get("success"))


# ---- the whole step ------------------------------------------------------------------------
# long: sweep, stage, validate, then publish or quarantine: one day's ingest and its clean-up on every path
def ingest_partition(
    backends: Backends | Store,
    spec: DatasetSpec,
    kind: BatchKind,
    dt: date,
    gx_dir: Path | None = None,
    work_dir: Path | None = None,
    leftover_max_age_s: float = LEFTOVER_MAX_AGE_S,
) -> ValidationOutcome:
    """Ingest one day of one batch kind: stage, validate, then publish or quarantine.

    Returns the outcome; raises :class:`BatchRejected` (after quarantining) when it failed,
    :class:`NoLandingData` when there is nothing to ingest (:class:`LandingIncomplete` when the
    spec's ``landing.complete_marker`` has not landed yet), :class:`StagingError` or
    :class:`~nightshift.storage.StorageError` when the local disk or the store failed (retry).
    First it removes what killed attempts left behind, once older than ``leftover_max_age_s``.
    """
    from nightshift.validate import (
        load_suite,
        name_label_classes,
        run_suite,
        suite_for_columns,
        suite_parameters,
    )

    t0 = time.perf_counter()
    b = as_backends(backends)
    store = b.store
    work = Path(work_dir or b.settings.state_dir / "tmp")
    sweep_leftovers(store, spec, kind, work, leftover_max_age_s)
    files = landing_files(store, spec.name, kind, dt, spec.landing.pattern, spec.landing.complete_marker)
    with _local_disk("creating a staging folder", work):
        work.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"ingest-{spec.name}-{kind}-{dt}-", dir=work))
    try:
        staged = stage_files(store, files, spec, kind, tmp / "staged.parquet")
        t_read = time.perf_counter()
        checks = list(staged.checks)
        gx_json: dict[str, Any] = {}
        label_report: dict[str, Any] | None = None
        docs_dir = tmp / "data_docs"
        if not staged.fatal:
            present = pq.ParquetFile(staged.path).schema_arrow.names
            if kind == "labels":
                found, label_report = label_checks(store, spec, dt, staged.path)
                checks.extend(found)
            # a labels file without its (optional) event-time column is validated without it
            suite = suite_for_columns(load_suite(spec, kind, gx_dir), spec, kind, present)
            params = suite_parameters(spec, dt)
            with _local_disk("validating (GX writes its Data Docs)", docs_dir):
                if staged.rows <= spec.validation.data_docs_max_rows:
                    gx_checks, gx_json = run_suite(staged.path, suite, params, docs_dir=docs_dir)
                else:
                    # A large batch asks GX for verdicts only; if any check failed (rejected, or
                    # published with warnings) it is validated again for the evidence: counts,
                    # examples and Data Docs.
                    gx_checks, gx_json = run_suite(staged.path, suite, params, result_format="BOOLEAN_ONLY")
                    if not all(c.success for c in [*checks, *gx_checks]):
                        gx_checks, gx_json = run_suite(staged.path, suite, params, docs_dir=docs_dir)
            checks.extend(name_label_classes(gx_checks, spec) if kind == "labels" else gx_checks)
        t_val = time.perf_counter()
        outcome = ValidationOutcome(
            dataset=spec.name,
            kind=kind,
            dt=dt.isoformat(),
            rows=staged.rows,
            checks=checks,
            files=[store.uri(f) for f in files],
            label_report=label_report or None,
        )
        stats = {
            "bytes_in": staged.bytes_in,
            "read_cast_s": round(t_read - t0, 3),
            "validate_s": round(t_val - t_read, 3),
            "column_seconds": gx_json.get("column_seconds", {}),  # GX per column: its ingest cost
        }
        if outcome.success:
            if docs_dir.exists():
                docs = store.reports_dir(spec.name, "validation", dt) + f"/data_docs_{kind}"
                store.publish_dir(docs, docs_dir)
                outcome.data_docs_uri = store.uri(docs + "/index.html")
            _publish(store, spec, kind, dt, staged.path, outcome)
            if outcome.warnings:
                log.warning(
                    "%s %s dt=%s published with %d warning(s): %s",
                    spec.name,
                    kind,
                    dt,
                    len(outcome.warnings),
                    outcome.warning_text(limit=8),
                )
        else:
            _quarantine(store, spec, kind, dt, files, outcome, {"stats": stats, "gx_result": gx_json}, tmp)
        stats["total_s"] = round(time.perf_counter() - t0, 3)
        report_path = store.reports_dir(spec.name, "validation", dt) + f"/{kind}.json"
        outcome.report_uri = outcome.report_uri or store.uri(report_path)
        validated_at = b.now().isoformat(timespec="seconds")
        report = {"outcome": outcome.to_dict(), "stats": stats, "validated_at": validated_at}
        store.write_json_atomic(report_path, report)
        if not outcome.success:
            raise BatchRejected(outcome)
        return outcome
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _local_disk(doing: str, where: Path) -> Iterator[None]:
    """Raise a failure of the local disk (full, I/O error, read-only) as :class:`StagingError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (*DISK_FULL, errno.EIO, errno.EROFS):
            raise staging_error(exc, doing, where) from exc
        raise


def sweep_leftovers(
    store: Store, spec: DatasetSpec, kind: BatchKind, work: Path, max_age_s: float = LEFTOVER_MAX_AGE_S
) -> list[str]:
    """Remove what killed attempts left in the areas this ingest writes (temporary files, staged
    and set-aside folders, unnamed S3 versions) and their local staging folders, once older
    than ``max_age_s``; never fails the ingest. The paths removed."""
    area = "curated" if kind == "events" else "labels"
    dirs = [
        store.path(area, spec.name),
        store.path("quarantine", spec.name, kind),
        store.path("reports", spec.name),
    ]
    removed: list[str] = []
    try:
        removed += store.sweep(dirs, max_age_s)
        removed += sweep_local(work, max_age_s, match=lambda n: n.startswith("ingest-"))
    except (StorageError, OSError) as exc:
        log.warning("sweeping leftovers of %s %s failed (the ingest goes on): %s", spec.name, kind, exc)
    return removed


def _publish(
    store: Store, spec: DatasetSpec, kind: BatchKind, dt: date, staged: Path, outcome: ValidationOutcome
) -> None:
    """Move the staged file into place; a day re-delivered and now valid leaves quarantine."""
    target = store.published_file(spec.name, kind, dt)
    store.put_file(staged, target)
    outcome.published_uri = store.uri(target)
    store.delete_dir(store.quarantine_dir(spec.name, kind, dt))


def _quarantine(
    store: Store,
    spec: DatasetSpec,
    kind: BatchKind,
    dt: date,
    files: list[str],
    outcome: ValidationOutcome,
    evidence: dict[str, Any],
    tmp: Path,
) -> None:
    """Replace ``quarantine/…/dt=`` with the rejected files, the full result and Data Docs."""
    qdir = store.quarantine_dir(spec.name, kind, dt)
    staged = tmp / "quarantine"
    docs = tmp / "data_docs"
    outcome.report_uri = store.uri(qdir + "/validation.json")
    with _local_disk("staging the quarantine evidence", staged):
        staged.mkdir()
        if docs.exists():
            outcome.data_docs_uri = store.uri(qdir + "/data_docs/index.html")
            shutil.move(str(docs), staged / "data_docs")
    report = {"outcome": outcome.to_dict(), **evidence}
    with _local_disk("staging the quarantine evidence", staged):
        (staged / "validation.json").write_text(json.dumps(report, indent=2, default=str))
    store.publish_dir(qdir, staged, copies={f: "files/" + f.rpartition("/")[2] for f in files})
