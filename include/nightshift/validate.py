"""Great Expectations validation of a batch, driven by the dataset spec.

Suites are generated from the spec and kept as editable JSON files in
``great_expectations/expectations/<dataset>.<kind>.json``; when a dataset has no suite file
yet, the suite is generated in memory, so a new spec works without any file but its YAML.
Partition bounds are expectation parameters (``$PARAMETER``), filled in per run.

Columns the spec marks ``pii: true`` are validated like any other, but their values never
leave GX: their results keep counts only (``PII_RESULT_KEYS``), in the checks' details, the JSON
evidence and the Data Docs alike.

``great_expectations`` is imported inside functions: it costs seconds to import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nightshift.errors import DataError
from nightshift.spec import BatchKind, CategoricalFeature, DatasetSpec, NumericFeature, partition_bounds

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Source = Literal["read", "gx"]


@dataclass
class CheckResult:
    """One check on a batch: a GX expectation or a file-level read/cast check."""

    name: str
    success: bool
    column: str | None = None
    details: str = ""
    source: Source = "gx"
    severity: str = "critical"

    @property
    def label(self) -> str:
        return f"{self.name}({self.column})" if self.column else self.name


@dataclass
class ValidationOutcome:
    """The verdict on one batch (``dataset``/``kind``/``dt``) and its evidence."""

    dataset: str
    kind: BatchKind
    dt: str
    rows: int
    checks: list[CheckResult] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    report_uri: str | None = None
    data_docs_uri: str | None = None
    published_uri: str | None = None
    # labels batches: the labels report's counts (ids, unmatched, resent, changed; see
    # ``nightshift.ingest.label_checks``)
    label_report: dict[str, Any] | None = None

    @property
    def success(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[CheckResult]:
        """The failed critical checks: any of them quarantines the batch."""
        return [c for c in self.checks if not c.success and c.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        """The failed checks of a lower severity (``warning``, GX's ``info``): reported, notified,
        and the batch still publishes."""
        return [c for c in self.checks if not c.success and c.severity != "critical"]

    def warning_text(self, limit: int = 4) -> str:
        """The warnings with their details (``""`` when there are none)."""
        warned = self.warnings
        parts = [f"{c.label}: {c.details}" if c.details else c.label for c in warned[:limit]]
        if len(warned) > limit:
            parts.append(f"... and {len(warned) - limit} more")
        return "; ".join(parts)

    def reason(self, limit: int = 4) -> str:
        """A short human reason: the failed checks with their details."""
        failed = self.failed
        if not failed:
            return "valid"
        parts = [f"{c.label}: {c.details}" if c.details else c.label for c in failed[:limit]]
        if len(failed) > limit:
            parts.append(f"... and {len(failed) - limit} more")
        return "; ".join(parts)

    def message(self) -> str:
        """The error an operator reads when the batch is rejected."""
        where = self.report_uri or "(no report written)"
        docs = f"; Data Docs: {self.data_docs_uri}" if self.data_docs_uri else ""
        return (
            f"{self.dataset} {self.kind} dt={self.dt} quarantined: {len(self.failed)} check(s) failed: "
            f"{self.reason(limit=8)}. Report: {where}{docs}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["success"] = self.success
        d["warnings"] = [c.label for c in self.warnings]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ValidationOutcome:
        d = {k: v for k, v in d.items() if k not in ("success", "warnings")}
        d["checks"] = [CheckResult(**c) for c in d.get("checks", [])]
        return cls(**d)


class BatchRejected(DataError, RuntimeError):
    """A batch failed validation and was quarantined."""

    quarantined = True

    def __init__(self, outcome: ValidationOutcome) -> None:
        super().__init__(outcome.message())
        self.outcome = outcome


# ---- suites -------------------------------------------------------------------------------
def default_gx_dir() -> Path:
    """``$NIGHTSHIFT_GX_DIR`` or the repository's ``great_expectations/`` folder."""
    from nightshift.settings import settings

    env = settings().gx_dir
    return env if env else Path(__file__).resolve().parents[2] / "great_expectations"


# the suite's meta key listing the spec's pii columns (set from the spec on every load)
PII_META = "pii_columns"


def _pii_of(spec: DatasetSpec, kind: BatchKind) -> list[str]:
    return sorted(spec.pii_columns & set(spec.columns_for(kind)))


def suite_name(spec: DatasetSpec, kind: BatchKind) -> str:
    return f"{spec.name}.{kind}"


def suite_path(spec: DatasetSpec, kind: BatchKind, gx_dir: Path | None = None) -> Path:
    return (gx_dir or default_gx_dir()) / "expectations" / f"{suite_name(spec, kind)}.json"


def _exp(type_: str, notes: str | None = None, **kwargs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "kwargs": kwargs}
    if notes:
        out["meta"] = {"notes": notes}
    return out


# the spec's name for a feature check (``severity: {range: warning}``), by expectation type
FEATURE_CHECKS = {
    "expect_column_values_to_not_be_null": "max_null_fraction",
    "expect_column_values_to_be_between": "range",
    "expect_column_values_to_be_in_set": "values",
}
# GX's expectation severities (``FailureSeverity``); only ``critical`` quarantines
GX_SEVERITIES = ("critical", "warning", "info")


def _stated_severity(spec: DatasetSpec, exp: dict[str, Any]) -> str | None:
    """The severity the spec gives the feature check ``exp`` is (``None``: not a feature check,
    or the spec does not say)."""
    column = (exp.get("kwargs") or {}).get("column")
    check = FEATURE_CHECKS.get(str(exp.get("type")))
    features: list[NumericFeature | CategoricalFeature] = [*spec.features.numeric, *spec.features.categorical]
    feature = next((f for f in features if f.name == column), None)
    if feature is None or check not in feature.CHECKS:
        return None
    return feature.stated_severity(check)


def _set_severity(exp: dict[str, Any], severity: str | None) -> dict[str, Any]:
    """Give ``exp`` GX's ``severity``; ``critical`` is GX's default and left unwritten, so a suite
    file only names the checks that do not quarantine."""
    if severity == "critical":
        exp.pop("severity", None)
    elif severity is not None:
        exp["severity"] = severity
    return exp


def apply_severities(spec: DatasetSpec, kind: BatchKind, suite: dict[str, Any]) -> dict[str, Any]:
    """Set the spec's severities on a suite's feature checks (in place). A check the spec says
    nothing about keeps the severity its suite file gives it (GX's default: ``critical``)."""
    if kind == "events":
        for exp in suite.get("expectations") or []:
            if isinstance(exp, dict):
                _set_severity(exp, _stated_severity(spec, exp))
    return suite


# long: one expectation per spec rule, in the spec's order
def build_suite(spec: DatasetSpec, kind: BatchKind) -> dict[str, Any]:
    """The GX suite (as a JSON dict) the spec implies for one batch kind.

    Expectations are on values, not dtype names: the reader already casts to the spec's
    schema, and reports any value it could not cast.
    """
    v = spec.validation
    cols = spec.columns_for(kind)
    exps: list[dict[str, Any]] = [
        _exp(
            "expect_table_columns_to_match_set",
            "exactly the spec's columns",
            column_set=cols,
            exact_match=True,
        ),
        _exp(
            "expect_table_row_count_to_be_between",
            "validation.min_rows / max_rows",
            min_value=v.min_rows,
            max_value=v.max_rows,
        ),
        _exp("expect_column_values_to_not_be_null", column=spec.id_column),
        _exp("expect_column_values_to_be_unique", "one row per id", column=spec.id_column),
        _exp("expect_column_values_to_not_be_null", column=spec.event_time_column),
    ]
    if kind == "events":
        exps.append(
            _exp(
                "expect_column_values_to_be_between",
                "events belong to the partition's day",
                column=spec.event_time_column,
                min_value={"$PARAMETER": "partition_start"},
                max_value={"$PARAMETER": "partition_end"},
                strict_max=True,
            )
        )
        for f in spec.features.numeric:
            exps.append(_not_null(f.name, f.max_null_fraction))
            if f.min is not None or f.max is not None:
                exps.append(
                    _exp(
                        "expect_column_values_to_be_between",
                        column=f.name,
                        min_value=f.min,
                        max_value=f.max,
                        mostly=v.range_mostly,
                    )
                )
        for c in spec.features.categorical:
            exps.append(_not_null(c.name, c.max_null_fraction))
            if c.values is not None:
                exps.append(
                    _exp(
                        "expect_column_values_to_be_in_set",
                        column=c.name,
                        value_set=c.values,
                        mostly=v.range_mostly,
                    )
                )
    else:
        exps.append(
            _exp(
                "expect_column_values_to_be_between",
                "labels cannot be for events after the day they land",
                column=spec.event_time_column,
                max_value={"$PARAMETER": "partition_end"},
                strict_max=True,
            )
        )
        exps.append(_exp("expect_column_values_to_not_be_null", column=spec.label.column))
        exps.append(
            _exp(
                "expect_column_values_to_be_in_set",
                column=spec.label.column,
                value_set=[spec.label.negative, spec.label.positive],
            )
        )
    meta: dict[str, Any] = {
        "generated_from": f"datasets/{spec.name}.yaml",
        "notes": "generated by `nightshift suite`; edit freely",
    }
    if _pii_of(spec, kind):
        meta[PII_META] = _pii_of(spec, kind)
    return apply_severities(spec, kind, {"name": suite_name(spec, kind), "expectations": exps, "meta": meta})


def _not_null(column: str, max_null_fraction: float) -> dict[str, Any]:
    if max_null_fraction <= 0:
        return _exp("expect_column_values_to_not_be_null", column=column)
    return _exp(
        "expect_column_values_to_not_be_null",
        f"at most {max_null_fraction:.0%} nulls",
        column=column,
        mostly=round(1 - max_null_fraction, 6),
    )


def load_suite(spec: DatasetSpec, kind: BatchKind, gx_dir: Path | None = None) -> dict[str, Any]:
    """The suite file for this dataset and kind, or the generated suite when there is none."""
    path = suite_path(spec, kind, gx_dir)
    if path.exists():
        try:
            suite: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: suite is not valid JSON: {exc}") from None
        meta = suite.get("meta")
        if _pii_of(spec, kind) or (isinstance(meta, dict) and PII_META in meta):
            # the spec decides what is personal, not a (possibly older) suite file
            suite["meta"] = {**(meta if isinstance(meta, dict) else {}), PII_META: _pii_of(spec, kind)}
        _check_severities(suite, path)
        # and where the spec gives a feature check a severity, that one (the file's otherwise)
        return apply_severities(spec, kind, suite)
    return build_suite(spec, kind)


def _check_severities(suite: dict[str, Any], path: Path) -> None:
    """A suite file's severities are GX's (critical, warning, info): name any other."""
    for i, exp in enumerate(suite.get("expectations") or []):
        sev = exp.get("severity") if isinstance(exp, dict) else None
        if sev is not None and sev not in GX_SEVERITIES:
            where = f"expectations[{i}] ({exp.get('type')}, column {(exp.get('kwargs') or {}).get('column')})"
            raise ValueError(
                f"{path}: {where}: severity must be one of {', '.join(GX_SEVERITIES)}, got {sev!r}"
            )


def write_suite(
    spec: DatasetSpec, kind: BatchKind, gx_dir: Path | None = None, overwrite: bool = False
) -> Path:
    """Write the generated suite file (kept if it exists, unless ``overwrite``)."""
    path = suite_path(spec, kind, gx_dir)
    if path.exists() and not overwrite:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(build_suite(spec, kind), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def suite_for_columns(
    suite: dict[str, Any], spec: DatasetSpec, kind: BatchKind, columns: Collection[str]
) -> dict[str, Any]:
    """The suite for a batch that left out optional columns of its kind (a labels file
    without the event time): expectations on an absent optional column are left out, and it
    is no longer expected among the table's columns. Other suites come back as they are."""
    absent = {c for c in spec.optional_columns_for(kind) if c not in columns}
    if not absent:
        return suite
    exps = []
    for exp in suite.get("expectations") or []:
        kwargs = exp.get("kwargs") or {}
        if _columns_of(kwargs) & absent:
            continue
        listed = kwargs.get("column_set")
        if exp.get("type") == "expect_table_columns_to_match_set" and isinstance(listed, list):
            exp = {**exp, "kwargs": {**kwargs, "column_set": [c for c in listed if c not in absent]}}
        exps.append(exp)
    return {**suite, "expectations": exps}


def suite_parameters(spec: DatasetSpec, dt: date) -> dict[str, Any]:
    """Values for the suite's ``$PARAMETER`` placeholders for partition ``dt``: the local
    day's bounds in ``partitioning.timezone``, as UTC instants."""
    import pandas as pd

    start, end = partition_bounds(dt, spec.partitioning.tz)
    return {"partition_start": pd.Timestamp(start), "partition_end": pd.Timestamp(end)}


def name_label_classes(checks: list[CheckResult], spec: DatasetSpec) -> list[CheckResult]:
    """Checks of a labels batch, with a label value outside the two classes said as such
    ("3 value(s) neither 'YES' nor 'NO' (…)") instead of GX's "3 unexpected"."""
    lab = spec.label
    for c in checks:
        if c.name == "expect_column_values_to_be_in_set" and c.column == lab.column and not c.success:
            head, sep, rest = c.details.partition(" unexpected")
            if sep and head.isdigit():
                c.details = f"{head} value(s) neither {lab.positive!r} nor {lab.negative!r}{rest}"
    return checks


# ---- running ------------------------------------------------------------------------------
# what a result of an expectation on a pii column keeps: counts and shares, never values
PII_RESULT_KEYS = frozenset(
    {
        "element_count",
        "unexpected_count",
        "unexpected_percent",
        "unexpected_percent_total",
        "unexpected_percent_nonmissing",
        "missing_count",
        "missing_percent",
    }
)
WITHHELD = "withheld: pii column"


def _columns_of(kwargs: dict[str, Any]) -> set[str]:
    """The columns an expectation's kwargs name (single, pair and multi-column expectations)."""
    cols = {kwargs.get(k) for k in ("column", "column_A", "column_B")}
    listed = kwargs.get("column_list")
    if isinstance(listed, list):
        cols.update(listed)
    return {c for c in cols if isinstance(c, str)}


def _is_personal(result: Any, pii: Collection[str]) -> bool:
    """Whether an expectation result could hold values of a pii column."""
    if not pii:
        return False
    cfg = result.expectation_config
    named = _columns_of(dict(cfg.kwargs) if cfg is not None else {})
    index_cols = (result.result or {}).get("unexpected_index_column_names")
    if isinstance(index_cols, list):
        named.update(c for c in index_cols if isinstance(c, str))
    return bool(named & set(pii))


def _scrub(result: Any) -> None:
    """Keep counts only in one expectation result (in place)."""
    result.result = {k: v for k, v in (result.result or {}).items() if k in PII_RESULT_KEYS}
    exc = result.exception_info or {}
    infos = [exc] if "raised_exception" in exc else [v for v in exc.values() if isinstance(v, dict)]
    for info in infos:
        if info.get("raised_exception"):
            info["exception_message"] = WITHHELD
            info["exception_traceback"] = None
    result.rendered_content = None


def scrub_pii(suite_result: Any, pii: Collection[str]) -> list[Any]:
    """Scrub every result in a GX suite validation result that touches a pii column (in place);
    returns those results."""
    touched = [r for r in suite_result.results if _is_personal(r, pii)]
    for r in touched:
        _scrub(r)
    return touched


def _details(result: Any, personal: bool = False) -> str:
    r = result.result or {}
    cfg = result.expectation_config
    if cfg.type == "expect_table_columns_to_match_set" and isinstance(r.get("observed_value"), list):
        want, seen = set(cfg.kwargs.get("column_set") or []), set(r["observed_value"])
        parts = []
        if want - seen:
            parts.append(f"missing column(s): {', '.join(sorted(want - seen))}")
        if seen - want:
            parts.append(f"unexpected column(s): {', '.join(sorted(seen - want))}")
        return "; ".join(parts)
    exc = result.exception_info or {}
    # GX 1.x nests exception info per metric: {metric_id: {"raised_exception": ..., ...}}
    infos = [exc] if "raised_exception" in exc else [v for v in exc.values() if isinstance(v, dict)]
    for info in infos:
        if info.get("raised_exception"):
            msg = str(info.get("exception_message") or "").splitlines()
            return f"could not run: {msg[0] if msg else 'error'}"
    if "observed_value" in r and r.get("unexpected_count") is None:
        return f"observed {r['observed_value']!r}"
    if r.get("unexpected_count") is not None:
        nulls = cfg.type == "expect_column_values_to_not_be_null"
        examples = [] if nulls or personal else list((r.get("partial_unexpected_list") or [])[:3])
        ex = f", e.g. {', '.join(_example(e) for e in examples)}" if examples else ""
        return f"{r['unexpected_count']} unexpected ({r.get('unexpected_percent') or 0:.2f}%){ex}"
    return f"values {WITHHELD}" if personal else ""


def _example(value: Any) -> str:
    """An unexpected value as the details show it: an instant as ISO-8601 text with its offset
    (each engine has its own datetime type: pandas' Timestamp, DuckDB's datetime), others repr."""
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def _column_groups(
    expectations: list[dict[str, Any]],
) -> dict[tuple[str | None, str], list[dict[str, Any]]]:
    """Expectations grouped by the column they check (``None``: table-level) and their severity,
    in suite order."""
    groups: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for exp in expectations:
        col = (exp.get("kwargs") or {}).get("column")
        key = (col if isinstance(col, str) else None, str(exp.get("severity") or "critical"))
        groups.setdefault(key, []).append(exp)
    return groups


# expectations that only look at the table's shape (its column names and row count)
SHAPE_ONLY = {
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
    "expect_table_row_count_to_equal",
    "expect_table_row_count_to_be_between",
    "expect_column_to_exist",
}


SET_CHECKS = {"expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"}


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """A pandas view of (part of) a batch for GX: Arrow-backed strings; integer columns
    with nulls become float64 unless that would lose digits (then nullable Int64)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    def mapper(t: pa.DataType) -> Any:
        return pd.StringDtype("pyarrow") if pa.types.is_string(t) or pa.types.is_large_string(t) else None

    df = table.to_pandas(types_mapper=mapper)
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_integer(col.type) and col.null_count:
            bounds = pc.min_max(col)
            big = max(abs(bounds["min"].as_py() or 0), abs(bounds["max"].as_py() or 0))
            if big > 2**53:
                df[name] = col.to_pandas(types_mapper=lambda t: pd.Int64Dtype())
    return df


def _part_frame(batch: Any, column: str | None, expectations: list[dict[str, Any]]) -> Any:
    """The narrowest frame a group of expectations needs, from a frame, an Arrow table or a
    Parquet file (read one column at a time, so the whole batch is never in memory)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(batch, Path):
        meta = pq.ParquetFile(batch).metadata
        names, rows = list(meta.schema.to_arrow_schema().names), meta.num_rows
    elif isinstance(batch, pa.Table):
        names, rows = batch.column_names, batch.num_rows
    else:
        names, rows = list(batch.columns), len(batch)
    if column is None and all(e["type"] in SHAPE_ONLY for e in expectations):
        # same column names and row count, one byte a cell: table-level checks see the shape only
        return pd.DataFrame({n: np.zeros(rows, dtype=bool) for n in names})
    cols = [column] if column is not None and column in names else names
    if isinstance(batch, pd.DataFrame):
        return batch[cols]
    table = pq.read_table(batch, columns=cols) if isinstance(batch, Path) else batch.select(cols)
    if column is not None and column in names and any(e["type"] in SET_CHECKS for e in expectations):
        col = table.column(0)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            # set membership on a pandas category is several times faster than on strings
            return pd.DataFrame({column: col.dictionary_encode().to_pandas()})
    return arrow_to_frame(table)


DOCS_SITE = "nightshift"


def _gx_context(docs_dir: Path | None, parquet: Path | None = None) -> tuple[Any, Any]:
    """An ephemeral GX context with one batch definition (and a Data Docs site): a pandas
    dataframe asset, or with ``parquet`` a SQL asset on DuckDB over that file."""
    from nightshift.settings import library_defaults

    library_defaults(GX_ANALYTICS_ENABLED="false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    if parquet is not None:
        from nightshift import gxsql

        batch_def = gxsql.add_source(ctx, parquet)
    else:
        batch_def = (
            ctx.data_sources.add_pandas("nightshift")
            .add_dataframe_asset("batch")
            .add_batch_definition_whole_dataframe("all")
        )
    if docs_dir is not None:
        site: Any = {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        }
        ctx.add_data_docs_site(site_name=DOCS_SITE, site_config=site)
    return ctx, batch_def


# which GX execution engine validates a staged Parquet batch: ``auto`` (the default: ``sql`` from
# SQL_MIN_ROWS rows, ``pandas`` below), ``sql`` (DuckDB) or ``pandas`` (GX's pandas engine, column
# by column); frames and Arrow tables always use pandas
ENGINE_ENV = "NIGHTSHIFT_GX_ENGINE"
ENGINES = ("sql", "pandas")
# Below this many rows the pandas engine is as fast and its process need not load DuckDB (about
# 0.6 s of CPU the first time; Data Docs of SQL results cost ~0.3 s more): bench/ingest.py
SQL_MIN_ROWS = 200_000


def gx_engine(batch: Any) -> str:
    """The engine that validates ``batch``: for a Parquet file ``$NIGHTSHIFT_GX_ENGINE`` (``sql``,
    ``pandas``, or ``auto``: ``sql`` from :data:`SQL_MIN_ROWS` rows); ``pandas`` for a frame or an
    Arrow table."""
    from nightshift.settings import settings

    choice = settings().gx_engine
    if choice not in (*ENGINES, "auto"):
        raise ValueError(f"${ENGINE_ENV} must be one of auto, {', '.join(ENGINES)}, got {choice!r}")
    if not isinstance(batch, Path):
        return "pandas"
    if choice == "auto":
        import pyarrow.parquet as pq

        return "sql" if pq.ParquetFile(batch).metadata.num_rows >= SQL_MIN_ROWS else "pandas"
    return choice


def _raised(result: Any) -> bool:
    """Whether GX could not compute an expectation (its result carries an exception)."""
    exc = result.exception_info or {}
    infos = [exc] if "raised_exception" in exc else [v for v in exc.values() if isinstance(v, dict)]
    return any(info.get("raised_exception") for info in infos)


# long: the GX context, batch, run and result mapping together: no GX object outlives the call
def run_suite(
    batch: pa.Table | pd.DataFrame | Path,
    suite: dict[str, Any],
    parameters: dict[str, Any],
    docs_dir: Path | None = None,
    result_format: str = "SUMMARY",
    pii: Collection[str] | None = None,
    engine: str | None = None,
) -> tuple[list[CheckResult], dict[str, Any]]:
    """Validate ``batch`` against ``suite`` with GX; optionally build Data Docs into ``docs_dir``.

    A staged Parquet file (the ingest's batch) of :data:`SQL_MIN_ROWS` rows or more is validated by
    GX's SQL execution engine on DuckDB (:mod:`nightshift.gxsql`; ``engine`` or
    ``$NIGHTSHIFT_GX_ENGINE`` choose otherwise, see :func:`gx_engine`): each metric is a query over
    the file, which reads only the columns it needs, on every core, and one GX validator (one
    batch) serves every part. A smaller file, a frame or an Arrow table goes through
    GX's pandas engine, which copies the batch for each metric it computes, so there each part
    runs on a one-column frame (shape-only table expectations on a one-byte-per-cell frame of
    the same shape, other table-level ones on the whole batch) and Parquet is converted one
    column at a time. An expectation the SQL engine cannot compute (GX has no SQL form of it)
    is run again on the pandas engine, for that column only; the others keep their SQL results
    (``pandas_parts`` in the JSON names them).

    The suite runs in parts, one per column and severity: each part's seconds are reported
    (``column_seconds``: column, or ``table``, to seconds), and a column's checks of another
    severity than ``critical`` are a part of their own (``<suite>:<column>:warning``, seen as
    such in Data Docs); GX's ``success`` is its own (any failed check), the batch's verdict is
    :attr:`ValidationOutcome.success` (no failed critical check). ``result_format`` is GX's
    (``BOOLEAN_ONLY`` for verdicts alone). Returns the checks and GX's JSON results, one per part,
    and the ``engine`` that ran them.

    Results of expectations on ``pii`` columns (default: the suite's ``meta.pii_columns``, which
    :func:`load_suite` sets from the spec) keep counts only, here, in the JSON and in Data Docs.
    """
    import great_expectations as gx

    engine = engine or gx_engine(batch)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    sql = engine == "sql"
    if sql and not isinstance(batch, Path):
        raise ValueError("the sql engine validates a Parquet file; give a frame or table engine='pandas'")
    # GX's pandas engine caches every metric it computed, frames included, for the life of its
    # context: there, without Data Docs, each part gets a fresh (cheap) context, so memory is
    # released part by part. The SQL engine caches numbers only: one context, one validator.
    # Data Docs need one context that has seen every part.
    parquet = batch if sql and isinstance(batch, Path) else None
    shared = _gx_context(docs_dir, parquet) if (docs_dir is not None or sql) else None
    validator = _SqlValidator(shared, parameters) if sql and shared is not None else None
    meta = suite.get("meta") or {}
    personal = set(pii if pii is not None else meta.get(PII_META) or [])
    names = _batch_columns(batch)
    checks: list[CheckResult] = []
    results: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}  # each part's cost: the per-feature cost of validation
    engines: dict[str, str] = {}  # the parts the pandas engine ran in a SQL run (name: why)
    groups = _column_groups(list(suite.get("expectations") or []))
    try:
        for i, ((column, severity), expectations) in enumerate(groups.items()):
            t0 = time.perf_counter()
            # GX's Data Docs do not show an expectation's severity: a column's non-critical
            # checks are a validation of their own, "<suite>:<column>:warning", so a warning
            # reads as one
            name = f"{suite['name']}:{column or 'table'}" + ("" if severity == "critical" else f":{severity}")
            fmt: dict[str, Any] = {"result_format": result_format}
            if any(_columns_of(e.get("kwargs") or {}) & personal for e in expectations):
                fmt["exclude_unexpected_values"] = True  # GX need not even collect them
            if validator is not None:
                result = validator.run(name, expectations, meta, fmt, store=docs_dir is not None)
                redo = [r for r in result.results if _raised(r)]
                if redo and (column is None or column in names):
                    # GX has no SQL form of these: the pandas engine runs them, on this column
                    # only (an absent column stays "could not run", as the pandas engine says too)
                    again = [e for e in expectations if _matches_any(e, redo)]
                    ctx = shared if docs_dir is not None else _gx_context(None)
                    assert ctx is not None
                    frame = _part_frame(batch, column, again)
                    fixed = _run_part(gx, ctx, i, name + ":pandas", again, meta, fmt, frame, parameters)
                    del frame
                    result = _merge_part(result, fixed)
                    engines[name] = "pandas for " + ", ".join(sorted({str(e["type"]) for e in again}))
                _in_suite_order(result, expectations)  # the SQL engine returns failed ones first
            else:
                ctx = shared or _gx_context(None)
                frame = _part_frame(batch, column, expectations)
                result = _run_part(gx, ctx, i, name, expectations, meta, fmt, frame, parameters)
                del frame
            part = column or "table"
            seconds[part] = round(seconds.get(part, 0.0) + time.perf_counter() - t0, 4)
            scrubbed = {id(r) for r in scrub_pii(result, personal)}
            results.append(result.to_json_dict())
            for r in result.results:
                cfg = r.expectation_config
                assert cfg is not None  # GX always attaches the configuration to a run result
                checks.append(
                    CheckResult(
                        name=cfg.type,
                        column=cfg.kwargs.get("column"),
                        success=bool(r.success),
                        details="" if r.success else _details(r, id(r) in scrubbed),
                        severity=str(getattr(cfg.severity, "value", cfg.severity) or "critical"),
                    )
                )
        if shared is not None and docs_dir is not None:
            if personal:
                # Data Docs render what the context stored when each part ran (before the scrub)
                store = shared[0].validation_results_store
                for key in store.list_keys():
                    stored = store.get(key)
                    if scrub_pii(stored, personal):
                        store.set(key, stored)
            # one build for every part: a Data Docs action per part re-renders the site each time
            shared[0].build_data_docs(site_names=[DOCS_SITE])
    finally:
        if validator is not None:
            validator.close()
    checks.sort(key=lambda c: c.column is not None)  # table-level findings first
    success = all(r["success"] for r in results)
    out: dict[str, Any] = {"suite": suite["name"], "success": success, "results": results}
    out.update(column_seconds=seconds, engine=engine)
    if engines:
        out["pandas_parts"] = engines
    return checks, out


class _SqlValidator:
    """One GX validator on the context's SQL batch for every part of a suite: the batch, its
    execution engine and connection are made once (a checkpoint per part would make each anew).
    A part's result is what a checkpoint's validation definition returns, stored the same way
    when Data Docs are built."""

    def __init__(self, shared: tuple[Any, Any], parameters: dict[str, Any]) -> None:
        from great_expectations.validator.v1_validator import Validator

        from nightshift import gxsql

        self.ctx, batch_def = shared
        self.parameters = gxsql.sql_parameters(parameters)
        self.validator: Any = Validator(batch_definition=batch_def)

    def run(
        self,
        name: str,
        expectations: list[dict[str, Any]],
        meta: dict[str, Any],
        fmt: dict[str, Any],
        store: bool,
    ) -> Any:
        import great_expectations as gx
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        gx_suite = gx.ExpectationSuite(name=name, expectations=expectations, meta=meta)
        if store:
            gx_suite = self.ctx.suites.add(gx_suite)
        self.validator.result_format = fmt
        result = self.validator.validate_expectation_suite(gx_suite, self.parameters)
        run_id = RunIdentifier(run_time=datetime.now(UTC))
        # what a validation definition adds to the meta of the results it returns
        extra: dict[str, Any] = {
            "run_id": run_id,
            "validation_time": run_id.run_time,
            "batch_parameters": None,
        }
        result.meta.update(extra)
        if store:
            suite_id = ExpectationSuiteIdentifier(name=name)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=result.batch_id
            )
            self.ctx.validation_results_store.store_validation_results(
                suite_validation_result=result,
                suite_validation_result_identifier=key,
                expectation_suite_identifier=suite_id,
            )
        return result

    def close(self) -> None:
        """Close the batch's DuckDB connections now: DuckDB's bindings report every object of
        theirs still alive at interpreter exit on stderr (dozens of lines in a task's log)."""
        import gc

        engine = getattr(getattr(self.validator, "_wrapped_validator_cache", None), "execution_engine", None)
        engines = [getattr(engine, "engine", None)]
        engines += [getattr(ds, "_engine", None) for ds in self.ctx.data_sources.all().values()]
        for sa_engine in engines:
            if sa_engine is not None:
                sa_engine.dispose()
        del engine, engines
        self.validator = None
        gc.collect()  # what is left of the run in reference cycles goes now, not at exit


def _batch_columns(batch: Any) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(batch, Path):
        return list(pq.read_schema(batch).names)
    if isinstance(batch, pa.Table):
        return list(batch.column_names)
    return [str(c) for c in batch.columns]


def _run_part(
    gx: Any,
    shared: tuple[Any, Any],
    i: int,
    name: str,
    expectations: list[dict[str, Any]],
    meta: dict[str, Any],
    fmt: dict[str, Any],
    frame: Any,
    parameters: dict[str, Any],
) -> Any:
    """One checkpoint: ``expectations`` as the suite ``name`` on the context's pandas batch
    ``frame``; GX's suite validation result."""
    ctx, batch_def = shared
    gx_suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations, meta=meta))
    vdef = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=gx_suite))
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(name=f"part-{i}-{name}", validation_definitions=[vdef], result_format=fmt)
    )
    run = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
    return next(iter(run.run_results.values()))


def _matches_any(exp: dict[str, Any], results: list[Any]) -> bool:
    """Whether the suite's expectation ``exp`` is the one behind any of these results (same type
    and plain kwargs; a ``$PARAMETER`` kwarg is compared by its resolved value, so skipped)."""
    kwargs = {k: v for k, v in (exp.get("kwargs") or {}).items() if not isinstance(v, dict)}
    for r in results:
        cfg = r.expectation_config
        if cfg.type == exp.get("type") and all(cfg.kwargs.get(k) == v for k, v in kwargs.items()):
            return True
    return False


def _keyed(results: list[Any]) -> list[tuple[tuple[str, Any, int], Any]]:
    """Each result keyed by its expectation's type, column and order among those alike."""
    seen: dict[tuple[str, Any], int] = {}
    out = []
    for r in results:
        k = (r.expectation_config.type, r.expectation_config.kwargs.get("column"))
        seen[k] = seen.get(k, -1) + 1
        out.append(((*k, seen[k]), r))
    return out


def _in_suite_order(result: Any, expectations: list[dict[str, Any]]) -> None:
    """Put a part's results in the order of its expectations (in place), as the pandas engine
    returns them."""
    seen: dict[tuple[str, Any], int] = {}
    rank: dict[tuple[str, Any, int], int] = {}
    for i, e in enumerate(expectations):
        k = (str(e.get("type")), (e.get("kwargs") or {}).get("column"))
        seen[k] = seen.get(k, -1) + 1
        rank[(*k, seen[k])] = i
    keyed = _keyed(list(result.results))
    result.results = [r for _, r in sorted(keyed, key=lambda kr: rank.get(kr[0], len(rank)))]


def _merge_part(sql_result: Any, pandas_result: Any) -> Any:
    """The SQL part's result with the pandas engine's results in place of the ones it could
    not compute (matched by type, column and order among them); its success recomputed."""

    redone = dict(_keyed(list(pandas_result.results)))
    swap = {id(r): redone.get(k, r) for k, r in _keyed([r for r in sql_result.results if _raised(r)])}
    sql_result.results = [swap.get(id(r), r) for r in sql_result.results]
    sql_result.success = all(r.success for r in sql_result.results)
    return sql_result
