"""Read a day's landing files, cast them to the spec's schema, validate, publish or quarantine.

The reader streams: files are read block by block with pyarrow, cast, and written to a local
staging Parquet file, so memory follows the block size, not the file size. File-level problems
(empty, undecodable, corrupt, values that cannot be cast) become failed checks next to GX's
own, so one report explains the whole verdict.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nightshift.spec import BatchKind, DatasetSpec
from nightshift.storage import StorageError, Store, default_state_dir
from nightshift.validate import BatchRejected, CheckResult, ValidationOutcome

NULL_VALUES = ["", "NULL", "null", "NaN", "nan", "None"]
BLOCK_SIZE = 16 << 20
PARQUET_BATCH_ROWS = 256_000


class NoLandingData(FileNotFoundError):
    """The day's landing folder has no files yet."""


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
        return pa.timestamp("us", tz="UTC")
    if column == spec.label.column:
        return pa.int64()
    for f in spec.features.numeric:
        if f.name == column:
            return pa.int64() if f.dtype == "int64" else pa.float64()
    for c in spec.features.categorical:
        if c.name == column:
            return pa.string()
    raise KeyError(f"{column!r} is not a column of dataset {spec.name!r}")


def arrow_schema(spec: DatasetSpec, kind: BatchKind) -> pa.Schema:
    """The schema a published batch of this kind has."""
    return pa.schema([pa.field(c, arrow_type(spec, c)) for c in spec.columns_for(kind)])


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
        return [
            CheckResult(
                name="values_castable",
                column=col,
                success=False,
                source="read",
                details=(
                    f"{n} value(s) not parseable as {arrow_type(spec, col)}, e.g. "
                    + ", ".join(repr(e) for e in self.examples.get(col, []))
                ),
            )
            for col, n in self.counts.items()
        ]


def _coerce(arr: pa.Array, target: pa.DataType, column: str, issues: _CastIssues) -> pa.Array:
    """Cast leniently: values that cannot be cast become null and are counted."""
    try:
        return pc.cast(arr, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
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
        if arr.type != target:
            arr = _coerce(arr, target, col, issues) if issues is not None else pc.cast(arr, target, safe=True)
        arrays.append(arr)
        fields.append(pa.field(col, target))
    for i, col in enumerate(names):
        if col not in spec.columns_for(kind):
            arrays.append(batch.column(i))
            fields.append(batch.schema.field(i))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


# ---- readers -------------------------------------------------------------------------------
def _check_utf8_head(head: bytes, name: str) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head[:4096]:
        raise _FatalRead(
            CheckResult(
                "file_encoding", False, source="read", details=f"{name}: not UTF-8 (looks like UTF-16)"
            )
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise _FatalRead(
            CheckResult(
                "file_encoding", False, source="read", details=f"{name}: not valid UTF-8 at byte {exc.start}"
            )
        ) from None


def _csv_header(head: bytes, delimiter: str) -> list[str]:
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    if first.startswith("\ufeff"):
        first = first[1:]
    return next(csv.reader(io.StringIO(first), delimiter=delimiter), [])


def _read_errors(exc: Exception, name: str) -> CheckResult:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "UTF8" in msg or "utf-8" in msg.lower():
        return CheckResult("file_encoding", False, source="read", details=f"{name}: not valid UTF-8 ({msg})")
    return CheckResult("file_readable", False, source="read", details=f"{name}: corrupt or truncated ({msg})")


def _iter_csv(
    store: Store, path: str, spec: DatasetSpec, kind: BatchKind, lenient: bool
) -> Iterator[pa.RecordBatch]:
    name = path.rpartition("/")[2]
    with store.open_input(path) as f:
        head = bytes(f.read(1 << 16))
    _check_utf8_head(head, name)
    header = _csv_header(head, spec.landing.delimiter)
    if not header or header == [""]:
        raise _FatalRead(
            CheckResult("file_has_header", False, source="read", details=f"{name}: no header row")
        )
    wanted = spec.columns_for(kind)
    types: dict[str, pa.DataType] = {
        c: (pa.string() if lenient else arrow_type(spec, c)) for c in header if c in wanted
    }
    read_opts = pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=True)
    parse_opts = pacsv.ParseOptions(delimiter=spec.landing.delimiter)
    conv_opts = pacsv.ConvertOptions(
        column_types=types,
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    with store.open_input(path) as f:
        reader = pacsv.open_csv(
            f, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts
        )
        yield from reader


def _iter_parquet(store: Store, path: str) -> Iterator[pa.RecordBatch]:
    with store.open_input(path) as f:
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _FatalRead(_read_errors(exc, path.rpartition("/")[2])) from None
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


def _stage(
    store: Store, files: list[str], spec: DatasetSpec, kind: BatchKind, staging: Path, lenient: bool
) -> StagedBatch:
    issues = _CastIssues() if lenient else None
    rows = bytes_in = 0
    checks: list[CheckResult] = []
    writer: pq.ParquetWriter | None = None
    name = ""
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
                raise _FatalRead(
                    CheckResult("file_not_empty", False, source="read", details=f"{name}: 0 bytes")
                )
            it = (
                _iter_csv(store, path, spec, kind, lenient)
                if spec.landing.format == "csv"
                else _iter_parquet(store, path)
            )
            for raw in it:
                batch = _cast_batch(raw, spec, kind, issues)
                if writer is None:
                    writer = pq.ParquetWriter(staging, batch.schema, compression="snappy")
                elif not batch.schema.equals(writer.schema, check_metadata=False):
                    raise _FatalRead(
                        CheckResult(
                            "files_share_schema",
                            False,
                            source="read",
                            details=f"{name}: columns or types differ from the partition's first file",
                        )
                    )
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_batch, batch)
                rows += batch.num_rows
        if pending is not None:
            pending.result()
        if writer is None:
            raise _FatalRead(CheckResult("file_has_rows", False, source="read", details=f"{name}: no data"))
    except _FatalRead as exc:
        checks.append(exc.check)
        return StagedBatch(staging, rows, bytes_in, checks, fatal=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        msg = str(exc)
        cast_failure = any(
            k in msg for k in ("conversion error", "Unsupported cast", "Failed to parse string")
        )
        if not lenient and cast_failure and "UTF8" not in msg:
            raise _NeedsLenient from exc
        checks.append(_read_errors(exc, name))
        return StagedBatch(staging, rows, bytes_in, checks, fatal=True)
    except (StorageError, FileNotFoundError):
        raise
    except OSError as exc:
        checks.append(_read_errors(exc, name))
        return StagedBatch(staging, rows, bytes_in, checks, fatal=True)
    finally:
        if pending is not None:
            wait([pending])
        pool.shutdown()
        if writer is not None:
            writer.close()
    if issues is not None:
        checks.extend(issues.checks(spec))
    return StagedBatch(staging, rows, bytes_in, checks, fatal=False)


def to_validation_frame(table: pa.Table, spec: DatasetSpec) -> Any:
    """The whole batch as one pandas frame, as GX would see it (for tools and tests; the
    ingest itself hands GX one column at a time, see :func:`nightshift.validate.run_suite`)."""
    from nightshift.validate import arrow_to_frame

    return arrow_to_frame(table)


# ---- the whole step ------------------------------------------------------------------------
def ingest_partition(
    store: Store,
    spec: DatasetSpec,
    kind: BatchKind,
    dt: date,
    gx_dir: Path | None = None,
    work_dir: Path | None = None,
) -> ValidationOutcome:
    """Ingest one day of one batch kind: stage, validate, then publish or quarantine.

    Returns the outcome; raises :class:`BatchRejected` (after quarantining) when it failed,
    :class:`NoLandingData` when there is nothing to ingest.
    """
    from nightshift.validate import load_suite, run_suite, suite_parameters

    t0 = time.perf_counter()
    files = store.list_files(store.landing_dir(spec.name, kind, dt), spec.landing.pattern)
    if not files:
        raise NoLandingData(
            f"no {kind} files for {spec.name} in {store.uri(store.landing_dir(spec.name, kind, dt))}"
        )
    work = Path(work_dir or default_state_dir() / "tmp")
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"ingest-{spec.name}-{kind}-{dt}-", dir=work))
    try:
        staged = stage_files(store, files, spec, kind, tmp / "staged.parquet")
        t_read = time.perf_counter()
        checks = list(staged.checks)
        gx_json: dict[str, Any] = {}
        docs_dir = tmp / "data_docs"
        if not staged.fatal:
            suite = load_suite(spec, kind, gx_dir)
            params = suite_parameters(spec, dt)
            if staged.rows <= spec.validation.data_docs_max_rows:
                gx_checks, gx_json = run_suite(staged.path, suite, params, docs_dir=docs_dir)
            else:
                # A large batch asks GX for verdicts only; if rejected it is validated again for
                # the evidence: counts, examples and Data Docs.
                gx_checks, gx_json = run_suite(staged.path, suite, params, result_format="BOOLEAN_ONLY")
                if not all(c.success for c in [*checks, *gx_checks] if c.severity == "critical"):
                    gx_checks, gx_json = run_suite(staged.path, suite, params, docs_dir=docs_dir)
            checks.extend(gx_checks)
        t_val = time.perf_counter()
        outcome = ValidationOutcome(
            dataset=spec.name,
            kind=kind,
            dt=dt.isoformat(),
            rows=staged.rows,
            checks=checks,
            files=[store.uri(f) for f in files],
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
        else:
            _quarantine(store, spec, kind, dt, files, outcome, {"stats": stats, "gx_result": gx_json}, tmp)
        stats["total_s"] = round(time.perf_counter() - t0, 3)
        report_path = store.reports_dir(spec.name, "validation", dt) + f"/{kind}.json"
        outcome.report_uri = outcome.report_uri or store.uri(report_path)
        report = {"outcome": outcome.to_dict(), "stats": stats, "validated_at": _now()}
        store.write_json_atomic(report_path, report)
        if not outcome.success:
            raise BatchRejected(outcome)
        return outcome
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
    staged.mkdir()
    docs = tmp / "data_docs"
    outcome.report_uri = store.uri(qdir + "/validation.json")
    if docs.exists():
        outcome.data_docs_uri = store.uri(qdir + "/data_docs/index.html")
        shutil.move(str(docs), staged / "data_docs")
    report = {"outcome": outcome.to_dict(), **evidence}
    (staged / "validation.json").write_text(json.dumps(report, indent=2, default=str))
    store.publish_dir(qdir, staged, copies={f: "files/" + f.rpartition("/")[2] for f in files})
