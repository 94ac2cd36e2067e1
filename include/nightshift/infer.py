"""Infer a dataset spec from a sample file, the way TFX's SchemaGen infers a schema.

``nightshift init`` reads one sample of events (CSV or Parquet), optionally a sample of the
labels feed, and writes ``datasets/<name>.yaml`` as commented text: every inferred value says
what it was inferred from, and the lines marked ``check:`` need a human. The rules:

* **Types.** A CSV column whose values are all integers (no leading zeros) is ``int64``, all
  numbers ``float64``, else a string; a Parquet column keeps its file type.
* **Strings.** Up to ``MAX_DOMAIN`` (100, TFDV's ``max_string_domain_size``) distinct values,
  each seen at least twice: categorical with its value set. A value seen only once means unseen
  values are likely (Good-Turing: the chance that the next row brings a new value is about the
  share of rows whose value was seen once), and a new value would fail a batch: such a column,
  or one with more values, is categorical *without* a value set (SchemaGen keeps it without a
  domain), unless more than ``MAX_UNIQUE_SHARE`` (half) of its rows are distinct values: then
  it looks like free text or an identifier and is left out.
* **Left out**, with a comment: constant or all-null columns, timestamps other than the
  event time, names nightshift reserves (``score``, ``model_version``, ``dt``, ``__*``).
* **Ranges.** The observed ``[min, max]`` widened by ``MARGIN`` (10%) of the span on each side
  and rounded outward; a column never negative in the sample keeps a lower bound of 0.
* **Null budgets.** None observed: 0. Else the observed share plus a quarter of it (at least
  2 points), rounded up to a multiple of 5%.
* **The id** must be present and unique in the sample (the suites require one row per id);
  integer ids are ``int64``, any other (or with leading zeros) ``string``.
* **The label** must have exactly two distinct values. Positive: the value named like yes
  (yes/y/true/t/1/positive/pos against no/n/false/f/0/negative/neg), else the rarer one.
* **The event time** must parse as ISO 8601 timestamps, all with an offset or all without
  (then they are local times in ``--timezone``), giving the sample's local days: with three or
  more, ``validation.min_rows`` is half the smallest day (the first and last left out: possibly
  partial).
* **Slices**: categoricals with 2 to 10 values, at least two of them on 5% of the rows or more.

Everything else keeps the spec's defaults. The pure core: no Airflow, no store.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nightshift.errors import DataError
from nightshift.ingest import NULL_VALUES, PARQUET_MAGIC
from nightshift.spec import (
    BATCH_KINDS,
    NAME_RE,
    RESERVED_COLUMNS,
    RESERVED_PREFIX,
    DatasetSpec,
    SpecError,
    load_spec,
    zone_of,
)

MARGIN = 0.10
MAX_DOMAIN = 100
MAX_UNIQUE_SHARE = 0.5
# an integer column with this many distinct values or fewer may be a code, not a quantity
FEW_INTS = 10
NULL_MARGIN, NULL_MIN_MARGIN, NULL_STEP = 0.25, 0.02, 0.05
MIN_ROWS_SHARE = 0.5
SLICE_MAX_VALUES, SLICE_MIN_SHARE = 10, 0.05
POSITIVE_WORDS = frozenset({"yes", "y", "true", "t", "1", "positive", "pos"})
NEGATIVE_WORDS = frozenset({"no", "n", "false", "f", "0", "negative", "neg"})

_INT_RE = r"[+-]?[0-9]+"
_LEADING_ZERO_RE = r"[+-]?0[0-9]+"
_DATE_RE = r"\d{4}-\d{2}-\d{2}"
_OFFSET_RE = r".*[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)"
_INT64_MAX = 2**63 - 1
_WRAP = 108

Kind = Literal["int", "float", "string", "bool", "timestamp", "other"]
LabelValue = bool | int | str


class InferError(DataError, ValueError):
    """A sample that cannot become a spec; the message names the file, the column and why."""


@dataclass(frozen=True)
class Sample:
    """A sample file read for inference: CSV columns as strings, Parquet with its types."""

    path: Path
    format: Literal["csv", "parquet"]
    table: pa.Table
    delimiter: str = ","

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def require(self, column: str, what: str) -> None:
        if column not in self.columns:
            shown = ", ".join(_q(c) for c in self.columns[:20]) + (" …" if len(self.columns) > 20 else "")
            raise InferError(f"{self.path}: no column {_q(column)} ({what}); its columns: {shown}")


def _q(value: object) -> str:
    """A value as a YAML/JSON double-quoted string (also safe inside a comment: no newline)."""
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_sample(path: str | Path, what: str = "events") -> Sample:
    """Read a CSV (every column as text, with the ingest's null markers) or Parquet file
    (told apart by Parquet's magic bytes); an empty or unreadable file is an InferError."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(1 << 16)
    except FileNotFoundError:
        raise InferError(f"{what} file {p} not found") from None
    except OSError as exc:
        raise InferError(f"{what} file {p} cannot be read: {exc}") from None
    if size == 0:
        raise InferError(f"{what} file {p} is empty (0 bytes): nothing to infer a spec from")
    if head.startswith(PARQUET_MAGIC):
        try:
            table = pq.read_table(p)
        except (pa.ArrowException, OSError) as exc:
            raise InferError(f"{what} file {p}: not a readable Parquet file: {exc}") from None
        sample = Sample(p, "parquet", table)
    else:
        sample = _read_csv(p, head, what)
    if sample.rows == 0:
        raise InferError(
            f"{what} file {p} has {len(sample.columns)} column(s) but no rows: nothing to infer from"
        )
    return sample


def _read_csv(p: Path, head: bytes, what: str) -> Sample:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the head
            raise InferError(
                f"{what} file {p}: not UTF-8 (byte 0x{head[exc.start]:02x} at offset {exc.start})"
            ) from None
        text = head[: exc.start].decode("utf-8")
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise InferError(f"{what} file {p} has no header row (its first line is empty)")
    delimiter = _sniff_delimiter(first)
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InferError(
            f"{what} file {p}: column name(s) repeated in the header: {', '.join(map(_q, repeated))}"
        )
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header},
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            p, parse_options=pacsv.ParseOptions(delimiter=delimiter), convert_options=convert
        )
    except (pa.ArrowException, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InferError(f"{what} file {p}: not a readable CSV file: {msg}") from None
    return Sample(p, "csv", table, delimiter)


# ---- one column ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A column's values (pandas, nulls as None/NaN) and the kind its type or text says."""

    name: str
    kind: Kind
    values: pd.Series
    arrow_type: str

    @property
    def rows(self) -> int:
        return len(self.values)

    @property
    def non_null(self) -> pd.Series:
        return self.values.dropna()

    @property
    def null_share(self) -> float:
        return 1 - len(self.non_null) / self.rows if self.rows else 0.0


def column(sample: Sample, name: str) -> Column:
    """The column ``name`` of ``sample`` with its inferred kind."""
    arr = sample.table.column(name)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    if sample.format == "csv":
        values = pd.Series(arr.to_pylist(), dtype="object")
        return Column(name, _text_kind(values.dropna()), values, "string")
    kind: Kind
    if pa.types.is_integer(t):
        kind = "int"
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        kind = "float"
    elif pa.types.is_boolean(t):
        kind = "bool"
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        kind = "string"
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        kind = "timestamp"
    else:
        kind = "other"
    if kind == "float":
        values = pd.Series(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
    elif kind == "bool":
        values = pd.Series([None if v is None else str(v).lower() for v in arr.to_pylist()], dtype="object")
    elif kind == "timestamp":
        values = arr.to_pandas()
    else:
        values = pd.Series(arr.to_pylist(), dtype="object")
    return Column(name, kind, values, str(t))


def _text_kind(nn: pd.Series) -> Kind:
    if nn.empty:
        return "string"
    s = nn.astype(str).str.strip()
    if s.str.fullmatch(_INT_RE).all():
        if s.str.fullmatch(_LEADING_ZERO_RE).any():
            return "string"  # codes like zip codes: leading zeros matter
        if pd.to_numeric(s, errors="coerce").abs().max() <= _INT64_MAX:
            return "int"
        return "float"
    if pd.to_numeric(s, errors="coerce").notna().all():
        return "float"
    if s.str.match(_DATE_RE).all() and pd.to_datetime(s, errors="coerce", format="ISO8601").notna().all():
        return "timestamp"
    return "string"


def _numbers(col: Column) -> pd.Series:
    nn = col.non_null
    if col.kind == "int":
        return pd.Series([int(str(v).strip()) for v in nn], dtype="object")
    return pd.to_numeric(nn.astype(str).str.strip() if nn.dtype == object else nn, errors="coerce")


# ---- decisions ----------------------------------------------------------------------------
@dataclass
class Feature:
    """What init decided for one candidate feature column."""

    name: str
    role: Literal["numeric", "categorical", "excluded"]
    comments: list[str] = field(default_factory=list)
    dtype: str = "float64"
    min: int | float | None = None
    max: int | float | None = None
    decimals: int = 0
    values: list[str] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    max_null_fraction: float = 0.0


@dataclass(frozen=True)
class Inferred:
    """An inferred spec: its YAML text (with comments) and what it was made from."""

    name: str
    text: str
    features: list[Feature]
    checks: int

    @property
    def excluded(self) -> list[Feature]:
        return [f for f in self.features if f.role == "excluded"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def null_budget(observed: float) -> float:
    """The null budget for an observed null share (see the module docstring)."""
    if observed <= 0:
        return 0.0
    padded = observed + max(NULL_MIN_MARGIN, NULL_MARGIN * observed)
    return min(1.0, round(math.ceil(padded / NULL_STEP - 1e-9) * NULL_STEP, 2))


def _null_comment(observed: float, budget: float) -> str:
    if budget == 0:
        return "null budget: no nulls observed -> max_null_fraction 0 (a null fails the batch; check)"
    return (
        f"null budget: observed {_pct(observed)} -> max_null_fraction {budget:g} "
        "(observed + a quarter of it, at least 2 points, rounded up to a multiple of 5%)"
    )


def widened_range(lo: float, hi: float, integer: bool) -> tuple[float, float, int]:
    """``[lo, hi]`` widened by ``MARGIN`` of the span on each side, rounded outward to the
    margin's order of magnitude (integers for int columns), never below 0 (or above 0) if the
    sample never was; returns (min, max, decimals)."""
    margin = (hi - lo) * MARGIN
    exp = math.floor(math.log10(margin)) if margin > 0 else 0
    if integer:
        exp = max(exp, 0)
    step = 10.0**exp
    decimals = max(0, -exp)
    low = round(math.floor((lo - margin) / step + 1e-9) * step, decimals)
    high = round(math.ceil((hi + margin) / step - 1e-9) * step, decimals)
    if lo >= 0 > low:
        low = 0.0
    if hi <= 0 < high:
        high = 0.0
    return low, high, decimals


def _fmt_num(v: float | int, decimals: int, integer: bool) -> str:
    if integer:
        return str(int(v))
    return f"{v:.{max(decimals, 1)}f}"


def _observed(v: float | int) -> str:
    return str(v) if isinstance(v, int) else f"{v:.6g}"


def decide_feature(col: Column, reason: str | None = None) -> Feature:
    """The role of a candidate feature column (``reason``: already left out, and why)."""
    f = Feature(col.name, "excluded")
    nn = col.non_null
    if reason:
        f.comments.append(f"left out: {reason}")
        return f
    if col.name in RESERVED_COLUMNS or col.name.startswith(RESERVED_PREFIX):
        why = RESERVED_COLUMNS.get(col.name, "names starting with '__' are nightshift's own")
        f.comments.append(
            f"left out: {_q(col.name)} is a name nightshift reserves ({why}); rename it upstream to use it"
        )
        return f
    if nn.empty:
        f.comments.append(f"left out: {_q(col.name)} is null in all {col.rows:,} rows")
        return f
    if col.kind == "timestamp":
        f.comments.append(
            f"left out: {_q(col.name)} holds timestamps (e.g. {_q(nn.iloc[0])}); features are numbers or "
            "categories: derive one upstream (e.g. hours since it)"
        )
        return f
    if col.kind == "other":
        f.comments.append(
            f"left out: {_q(col.name)} has Parquet type {col.arrow_type}: not a number or a string"
        )
        return f
    distinct = int(_numbers(col).nunique()) if col.kind in ("int", "float") else int(nn.astype(str).nunique())
    if distinct == 1:
        f.comments.append(
            f"left out: {_q(col.name)} is constant ({_q(nn.iloc[0])} in every non-null row): no signal; check"
        )
        return f
    f.max_null_fraction = null_budget(col.null_share)
    null_line = _null_comment(col.null_share, f.max_null_fraction)
    if col.kind in ("int", "float"):
        return _numeric(f, col, distinct, null_line)
    return _categorical(f, col, distinct, null_line)


def _numeric(f: Feature, col: Column, distinct: int, null_line: str) -> Feature:
    nums = _numbers(col)
    integer = col.kind == "int"
    finite = nums[nums.map(lambda v: math.isfinite(float(v)))]
    f.role, f.dtype = "numeric", "int64" if integer else "float64"
    type_why = "every value an integer" if integer else "numbers, not all integers"
    if col.arrow_type != "string":
        type_why = f"Parquet type {col.arrow_type}"
    f.comments.append(
        f"inferred: {distinct:,} distinct values in {col.rows:,} rows, {type_why} -> numeric {f.dtype}"
    )
    if len(finite) < len(nums):
        f.comments.append(f"check: {len(nums) - len(finite):,} infinite value(s): no range inferred")
    elif len(finite):
        lo, hi = min(finite), max(finite)
        f.min, f.max, f.decimals = widened_range(float(lo), float(hi), integer)
        if integer:
            f.min, f.max = int(f.min), int(f.max)
        span = float(hi) - float(lo)
        clamp = (
            "; never negative in the sample: the bound stays at 0" if float(lo) >= 0 and f.min == 0 else ""
        )
        f.comments.append(
            f"range observed [{_observed(lo)}, {_observed(hi)}], "
            f"margin ±{MARGIN:.0%} of the span ({span * MARGIN:.4g}) "
            f"-> [{_fmt_num(f.min, f.decimals, integer)}, {_fmt_num(f.max, f.decimals, integer)}] "
            f"(rounded outward{clamp}); check the true bounds"
        )
    if integer and distinct <= FEW_INTS:
        shown = ", ".join(str(v) for v in sorted(set(nums)))
        f.comments.append(
            f"check: only {distinct} distinct integers ({shown}): a code (make it categorical) or a count?"
        )
    if integer and distinct == col.rows and col.rows >= 20:
        f.comments.append("check: every value distinct: an identifier or a row number (then leave it out)?")
    f.comments.append(null_line)
    return f


def _categorical(f: Feature, col: Column, distinct: int, null_line: str) -> Feature:
    nn = col.non_null.astype(str)
    counts = nn.value_counts()
    once = int((counts == 1).sum())
    rows = col.rows
    f.counts = {str(k): int(v) for k, v in counts.items()}
    what = "true/false" if col.kind == "bool" else "text"
    if distinct <= MAX_DOMAIN and once == 0:
        f.role, f.values = "categorical", sorted(f.counts)
        f.comments.append(
            f"inferred: {distinct} distinct {what} values in {rows:,} rows, each seen at least twice -> "
            "categorical with its value set; check that no new value is expected (a new value fails a batch)"
        )
    elif distinct / max(len(nn), 1) > MAX_UNIQUE_SHARE:
        f.comments.append(
            f"left out: {_q(col.name)} has {distinct:,} distinct values in {len(nn):,} non-null rows "
            f"({_pct(distinct / len(nn))} unique): free text or an identifier, not a category; check"
        )
        return f
    else:
        f.role = "categorical"
        why = f"more than {MAX_DOMAIN}" if distinct > MAX_DOMAIN else f"{once} seen only once"
        f.comments.append(
            f"inferred: {distinct:,} distinct {what} values in {rows:,} rows "
            f"({why}: new values are likely) -> "
            "categorical without a value set (any value passes); check"
        )
    f.comments.append(null_line)
    return f


# ---- id, time, label ----------------------------------------------------------------------
def _id(sample: Sample, name: str) -> tuple[str, list[str]]:
    col = column(sample, name)
    nn = col.non_null
    missing = col.rows - len(nn)
    if missing:
        raise InferError(
            f"{sample.path}: id column {_q(name)} is empty in {missing:,} of {col.rows:,} rows: "
            "every event needs an id (the suites require one)"
        )
    text = nn.astype(str)
    counts = text.value_counts()
    repeated = counts[counts > 1]
    if len(repeated):
        ex, n = str(repeated.index[0]), int(repeated.iloc[0])
        raise InferError(
            f"{sample.path}: id column {_q(name)} is not unique: {len(repeated):,} value(s) repeat, "
            f"e.g. {_q(ex)} "
            f"in {n} rows; the events suite requires one row per id (is --id the right column?)"
        )
    if col.kind == "int":
        dtype, why = "int64", "every id an integer"
    else:
        dtype, why = "string", "ids are text (or integers with leading zeros)"
    comments = [
        f"inferred: {len(nn):,} distinct values in {col.rows:,} rows -> unique in the sample (measured; the "
        "suites require one row per id per batch); check that ids are unique across days too",
        f"id_dtype {dtype}: {why}",
    ]
    return dtype, comments


@dataclass(frozen=True)
class TimeFacts:
    days: pd.Series  # rows per local day, sorted by day
    comments: list[str]


def _time(sample: Sample, name: str, tz_name: str) -> TimeFacts:
    col = column(sample, name)
    nn = col.non_null
    where = f"{sample.path}: time column {_q(name)}"
    if len(nn) < col.rows:
        raise InferError(
            f"{where} is empty in {col.rows - len(nn):,} of {col.rows:,} rows: every event needs a time"
        )
    tz = zone_of(tz_name)
    comments: list[str] = []
    if col.kind == "timestamp" and col.arrow_type != "string":
        ts = pd.to_datetime(col.values)
        aware = getattr(ts.dt, "tz", None) is not None
        comments.append(f"inferred: Parquet type {col.arrow_type}")
    elif col.kind in ("int", "float", "bool", "other"):
        raise InferError(f"{where} does not hold timestamps (e.g. {_q(nn.iloc[0])}, type {col.arrow_type})")
    else:
        text = nn.astype(str).str.strip()
        # parsed once as UTC only to find values that are no timestamp at all, then for real
        fmt = "ISO8601"
        probe = pd.to_datetime(text, errors="coerce", utc=True, format=fmt)
        if probe.isna().any():
            fmt = "mixed"
            with contextlib.suppress(ValueError, TypeError):
                probe = pd.to_datetime(text, errors="coerce", utc=True, format=fmt)
        bad = probe.isna()
        if bad.any():
            raise InferError(
                f"{where} does not parse as timestamps: {int(bad.sum()):,} of {len(text):,} values, e.g. "
                f"{_q(text[bad].iloc[0])} (expected ISO 8601 such as 2017-01-01T06:00:42Z)"
            )
        has_offset = text.str.fullmatch(_OFFSET_RE)
        if has_offset.any() and not has_offset.all():
            raise InferError(
                f"{where} mixes timestamps with a UTC offset (e.g. {_q(text[has_offset].iloc[0])}) "
                "and without "
                f"(e.g. {_q(text[~has_offset].iloc[0])}): which zone the bare ones are in is ambiguous"
            )
        aware = bool(has_offset.all())
        ts = probe if aware else pd.to_datetime(text, format=fmt)
        iso = fmt == "ISO8601"
        form = "ISO 8601" if iso else "not ISO 8601 (check: day/month order, and that the ingest reads it)"
        comments.append(f"inferred: {len(text):,} timestamps, {form}, e.g. {_q(text.iloc[0])}")
    if aware:
        local = ts.dt.tz_convert(tz)
        comments.append(f"timestamps carry a UTC offset: converted to {tz_name} for local days")
    else:
        local = ts
        comments.append(f"timestamps carry no offset: read as local times in {tz_name}")
    days = local.dt.date.value_counts().sort_index()
    comments.append(
        f"the sample covers {len(days)} local day(s) in {tz_name}, {days.index[0]} .. {days.index[-1]}"
    )
    return TimeFacts(days, comments)


@dataclass(frozen=True)
class LabelFacts:
    positive: LabelValue
    negative: LabelValue
    comments: list[str]


def _typed_labels(col: Column, values: list[Any]) -> list[LabelValue]:
    if col.kind == "bool" and col.arrow_type != "string":
        return [v == "true" for v in values]
    if col.arrow_type == "string" and col.kind == "int":
        return [int(str(v).strip()) for v in values]
    if col.arrow_type == "string":
        low = {str(v).strip().lower() for v in values}
        if low == {"true", "false"}:
            return [str(v).strip().lower() == "true" for v in values]
        return [str(v) for v in values]
    if col.kind in ("int", "float") and all(float(v).is_integer() for v in values):
        return [int(float(v)) for v in values]
    if col.kind == "string":
        return [str(v) for v in values]
    raise InferError(
        f"label column {_q(col.name)} has Parquet type {col.arrow_type}: expected ints, strings or booleans"
    )


def _label(sample: Sample, name: str) -> LabelFacts:
    col = column(sample, name)
    nn = col.non_null
    raw = nn.astype(str) if col.kind != "float" else nn
    counts = raw.value_counts()
    if len(counts) != 2:
        shown = ", ".join(f"{_q(k)} ({int(v):,})" for k, v in list(counts.items())[:10])
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        found = f"{len(counts)}: {shown}{more}" if len(counts) else "none (every value is null)"
        raise InferError(
            f"{sample.path}: label column {_q(name)} must have exactly two distinct values "
            "(a binary outcome); "
            f"found {found}"
        )
    keys = list(counts.index)
    typed = _typed_labels(col, [nn[raw == k].iloc[0] for k in keys])
    n = {t: int(counts[k]) for t, k in zip(typed, keys, strict=True)}
    a, b = typed
    words = [str(t).strip().lower() for t in typed]
    if isinstance(a, bool):
        i, why = typed.index(True), "the true value"
    elif words[0] in POSITIVE_WORDS and words[1] in NEGATIVE_WORDS:
        i, why = 0, "named like yes/true/1"
    elif words[1] in POSITIVE_WORDS and words[0] in NEGATIVE_WORDS:
        i, why = 1, "named like yes/true/1"
    elif n[a] != n[b]:
        i, why = (0 if n[a] < n[b] else 1), "the rarer value"
    else:
        i, why = (0 if str(a) > str(b) else 1), "a tie: the value that sorts last"
    pos, neg = typed[i], typed[1 - i]
    total = sum(n.values())
    rare = "the rarer value" if n[pos] < n[neg] else "the more common value"
    tail = "" if "rarer" in why else f", {rare}"
    comments = [
        f"inferred: two values, {_yaml_value(neg)} ({n[neg]:,}) and {_yaml_value(pos)} ({n[pos]:,}) in "
        f"{total:,} labelled rows"
        + (f" ({_pct(col.null_share)} of rows without a label)" if col.null_share else ""),
        f"check: positive = {_yaml_value(pos)} ({why}{tail}, {_pct(n[pos] / total)})",
    ]
    return LabelFacts(pos, neg, comments)


def _yaml_value(v: LabelValue) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, int) else _q(v)


# ---- the spec -----------------------------------------------------------------------------
def _slices(features: list[Feature]) -> tuple[list[str], list[str]]:
    out, comments = [], []
    for f in features:
        if f.role != "categorical" or f.values is None or not 2 <= len(f.values) <= SLICE_MAX_VALUES:
            continue
        total = sum(f.counts.values())
        big = [v for v, c in f.counts.items() if c >= SLICE_MIN_SHARE * total]
        if len(big) >= 2:
            out.append(f.name)
            comments.append(f"{_q(f.name)}: {len(f.values)} values, {len(big)} of them on >= 5% of the rows")
    return out, comments


def _comment(lines: Sequence[str], indent: int) -> list[str]:
    import textwrap

    pad = " " * indent + "# "
    out: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(line.replace("\n", " "), width=_WRAP - len(pad), break_on_hyphens=False)
        out.extend(pad + (w if i == 0 else "  " + w) for i, w in enumerate(wrapped))
    return out


def _flow_list(items: Sequence[str], indent: int, key: str) -> list[str]:
    """``key: [a, b, …]`` wrapped over lines (a YAML flow sequence may span lines)."""
    quoted = [_q(v) for v in items]
    lines, cur = [], " " * indent + f"{key}: ["
    for i, v in enumerate(quoted):
        piece = v + (", " if i < len(quoted) - 1 else "]")
        if len(cur) + len(piece) > _WRAP and not cur.endswith("["):
            lines.append(cur.rstrip())
            cur = " " * (indent + 2)
        cur += piece
    lines.append(cur if quoted else cur + "]")
    return lines


def infer_spec(
    name: str,
    events: Sample,
    id_column: str,
    time_column: str,
    label_column: str,
    labels: Sample | None = None,
    timezone: str = "UTC",
) -> Inferred:
    """Infer the spec of dataset ``name`` from a sample of its events (and of its labels
    feed, else the label column is read from the events) as commented YAML text."""
    if not NAME_RE.match(name):
        raise ValueError(f"dataset name {name!r}: lower-case letters, digits and '_', starting with a letter")
    zone_of(timezone)
    roles = {"--id": id_column, "--time": time_column, "--label": label_column}
    if len(set(roles.values())) < 3:
        raise ValueError(f"--id, --time and --label must name three different columns, got {roles}")
    events.require(id_column, "--id")
    events.require(time_column, "--time")
    label_src = labels or events
    label_src.require(label_column, "--label")
    if labels is not None:
        labels.require(id_column, "--id: the labels feed joins the events on it")
    id_dtype, id_comments = _id(events, id_column)
    time = _time(events, time_column, timezone)
    label = _label(label_src, label_column)
    label_notes = list(label.comments)
    if labels is not None:
        ev_ids = set(column(events, id_column).non_null.astype(str))
        lab_ids = column(labels, id_column).non_null.astype(str)
        share = float(lab_ids.isin(ev_ids).mean()) if len(lab_ids) else 0.0
        note = f"{_pct(share)} of the labels' ids are in the events sample"
        label_notes.append(
            note if share > 0 else f"check: {note}: does --id name the same key in both files?"
        )
        extra = [c for c in labels.columns if c not in (id_column, label_column)]
        if extra:
            label_notes.append(
                f"the labels file also has {', '.join(map(_q, extra))}: the feed needs only id + label"
            )

    features = []
    for c in events.columns:
        if c in (id_column, time_column):
            continue
        reason = None
        if c == label_column:
            reason = f"{_q(c)} is the label: as a feature it would leak the outcome"
        features.append(decide_feature(column(events, c), reason))
    kept = [f for f in features if f.role != "excluded"]
    if not kept:
        why = "; ".join(" ".join(f.comments) for f in features) or "the file has no other columns"
        raise InferError(
            f"{events.path}: no column is usable as a feature besides the id, time and label ({why})"
        )
    slices, slice_notes = _slices(kept)
    lines = _render(
        name, events, labels, id_column, id_dtype, id_comments, time_column, time, timezone,
        label_column, label, label_notes, features, slices, slice_notes,
    )  # fmt: skip
    text = "\n".join(lines) + "\n"
    return Inferred(name, text, features, sum("check:" in line for line in lines))


# long: writes the commented spec top to bottom, in the order of the YAML it produces
def _render(
    name: str,
    events: Sample,
    labels: Sample | None,
    id_column: str,
    id_dtype: str,
    id_comments: list[str],
    time_column: str,
    time: TimeFacts,
    timezone: str,
    label_column: str,
    label: LabelFacts,
    label_notes: list[str],
    features: list[Feature],
    slices: list[str],
    slice_notes: list[str],
) -> list[str]:
    out: list[str] = []

    def put(comments: Sequence[str], *lines: str, indent: int = 0) -> None:
        out.extend(_comment(comments, indent))
        out.extend(lines)

    src = f"{events.path.name} ({events.rows:,} rows)"
    if labels is not None:
        src += f" and {labels.path.name} ({labels.rows:,} rows)"
    put(
        [
            f"{name}.yaml: a dataset spec inferred by `nightshift init` from {src}.",
            "Each inferred value says what it was inferred from; a line with 'check:' needs a human. "
            "The rules are in nightshift/infer.py; the sections not written keep the spec's defaults. "
            "`nightshift init --force` would overwrite this file and its GX suites.",
        ],
        f"name: {name}",
        f"description: {_q(f'Inferred by nightshift init from {src}')}",
    )
    put(id_comments[:1], f"id_column: {_q(id_column)}")
    put(id_comments[1:], f"id_dtype: {id_dtype}")
    put(time.comments, f"event_time_column: {_q(time_column)}", "partitioning:")
    zone = f"--timezone {timezone}: a day is local midnight to local midnight; check"
    put([zone], f"  timezone: {_q(timezone)}", indent=2)
    put([], "label:", f"  column: {_q(label_column)}")
    delay = "check: not in a sample: how many days after its event a label lands (1 is a placeholder)"
    put([delay], "  delay_days: 1", indent=2)
    positive = f"  positive: {_yaml_value(label.positive)}"
    put(label_notes, positive, f"  negative: {_yaml_value(label.negative)}", indent=2)
    leak = "check: no feature may be decided at or after the label's outcome (a leak a sample cannot show)"
    put([], "features:")
    put([leak], indent=2)
    for role in ("numeric", "categorical"):
        group = [f for f in features if f.role == role]
        put([], f"  {role}:" + ("" if group else " []"))
        for f in group:
            put(f.comments, f"    - name: {_q(f.name)}", indent=4)
            if role == "numeric":
                integer = f.dtype == "int64"
                put([], f"      dtype: {f.dtype}")
                if f.min is not None and f.max is not None:
                    low, high = _fmt_num(f.min, f.decimals, integer), _fmt_num(f.max, f.decimals, integer)
                    put([], f"      min: {low}", f"      max: {high}")
            elif f.values is not None:
                put([], *_flow_list(f.values, 6, "values"))
            put([], f"      max_null_fraction: {f.max_null_fraction:g}")
    for f in features:
        if f.role == "excluded":
            put(f.comments, indent=2)
    if slices:
        rule = (
            "slices: the gate checks the metric per value of these: categoricals with "
            f"2 to {SLICE_MAX_VALUES} "
            f"values, at least two of them on {SLICE_MIN_SHARE:.0%} of the rows or more; check"
        )
        put([rule, *slice_notes], *_flow_list(slices, 0, "slices"))
    put([], "landing:")
    put([f"inferred from {events.path.name}"], f"  format: {events.format}", indent=2)
    if events.format == "csv" and events.delimiter != ",":
        put([], f"  delimiter: {_q(events.delimiter)}")
    days = time.days
    if len(days) < 3:
        few = (
            f"validation.min_rows: the sample covers {len(days)} local day(s), too few to infer a day's size"
        )
        put([few + " (default 1); check"])
    else:
        smallest = int(days.iloc[1:-1].min())
        size = f"smallest {smallest:,}, median {int(days.median()):,}, largest {int(days.max()):,}"
        why = (
            f"rows per local day: {size} (first and last day left out: possibly partial) -> min_rows = half "
            "the smallest day; a batch with fewer rows is rejected. The labels suite uses it too: check the "
            "labels feed's daily count"
        )
        put([], "validation:")
        put([why], f"  min_rows: {max(1, math.floor(MIN_ROWS_SHARE * smallest))}", indent=2)
    put(_defaults_note(float(days.median())))
    return out


def _defaults_note(per_day: float) -> list[str]:
    """What the spec's defaults (not written) mean for days of ``per_day`` rows."""
    from nightshift.spec import Gate, Monitoring, Training

    t, m, g = Training(), Monitoring(), Gate()
    floors = ", ".join(f"{k} {v:g}" for k, v in g.min_metrics.items())
    out = [
        "training, gate, scoring, monitoring, alerts, retrain: the spec's defaults. With a median of "
        f"{per_day:,.0f} rows a day, training.min_rows ({t.min_rows:,}) is reached after about "
        f"{math.ceil(t.min_rows / max(per_day, 1))} labelled day(s)",
        f"check: gate.min_metrics ({floors}) are defaults: set the floors this problem can reach",
    ]
    if per_day < m.min_rows:
        out.append(
            f"check: monitoring.min_rows ({m.min_rows}) is more than a median day's rows: such days get a "
            "quality report but no drift verdict"
        )
    return out


# ---- writing ------------------------------------------------------------------------------
def targets(spec: DatasetSpec, datasets_dir: Path, gx_dir: Path) -> list[Path]:
    """The files ``init`` writes: the spec and its two suites."""
    from nightshift.validate import suite_path

    return [datasets_dir / f"{spec.name}.yaml", *(suite_path(spec, k, gx_dir) for k in BATCH_KINDS)]


def write_spec(inferred: Inferred, datasets_dir: Path, gx_dir: Path, force: bool = False) -> list[Path]:
    """Validate the inferred spec with the real loader, then write it and its GX suites.

    Nothing is written if any target exists and ``force`` is false (:class:`FileExistsError`),
    or if the text does not load (:class:`SpecError`: a bug in init, said so); the spec is
    written under a temporary name and renamed into place.
    """
    from nightshift.validate import write_suite

    datasets_dir.mkdir(parents=True, exist_ok=True)
    staging = datasets_dir / f".init-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        tmp = staging / f"{inferred.name}.yaml"
        tmp.write_text(inferred.text, encoding="utf-8")
        try:
            spec = load_spec(tmp)
        except SpecError as exc:
            raise SpecError(
                f"nightshift init wrote a spec that does not load (a bug; nothing written): {exc}"
            ) from None
        paths = targets(spec, datasets_dir, gx_dir)
        existing = [p for p in paths if p.exists()]
        if existing and not force:
            raise FileExistsError(
                f"{', '.join(map(str, existing))} already exist(s): nothing written (--force replaces them)"
            )
        os.replace(tmp, paths[0])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for kind in BATCH_KINDS:
        write_suite(spec, kind, gx_dir, overwrite=True)
    return paths
