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
import os
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import date
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
    env = os.environ.get("NIGHTSHIFT_GX_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "great_expectations"


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
        ex = f", e.g. {', '.join(repr(e) for e in examples)}" if examples else ""
        return f"{r['unexpected_count']} unexpected ({r.get('unexpected_percent') or 0:.2f}%){ex}"
    return f"values {WITHHELD}" if personal else ""


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


def _gx_context(docs_dir: Path | None) -> tuple[Any, Any]:
    """An ephemeral GX context with a pandas batch definition (and a Data Docs site)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
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


def run_suite(
    batch: pa.Table | pd.DataFrame | Path,
    suite: dict[str, Any],
    parameters: dict[str, Any],
    docs_dir: Path | None = None,
    result_format: str = "SUMMARY",
    pii: Collection[str] | None = None,
) -> tuple[list[CheckResult], dict[str, Any]]:
    """Validate ``df`` against ``suite`` with GX; optionally build Data Docs into ``docs_dir``.

    GX's pandas engine copies the whole batch for each metric it computes, so the suite is
    run column by column, each part on a one-column frame (shape-only table expectations on
    a one-byte-per-cell frame of the same shape, other table-level ones on the whole batch).
    The verdicts are the same; the cost grows with rows x columns instead of rows x columns
    squared, and an Arrow or Parquet ``batch`` is converted to pandas one column at a time,
    so memory follows the largest column, not the batch. ``result_format`` is GX's
    (``BOOLEAN_ONLY`` for verdicts alone). Returns the checks and GX's JSON results, one per part,
    with each column's seconds (``column_seconds``: column, or ``table``, to seconds). A column's
    checks of another severity than ``critical`` are a part of their own (``<suite>:<column>:warning``,
    seen as such in Data Docs); GX's ``success`` is its own (any failed check), the batch's verdict
    is :attr:`ValidationOutcome.success` (no failed critical check).

    Results of expectations on ``pii`` columns (default: the suite's ``meta.pii_columns``, which
    :func:`load_suite` sets from the spec) keep counts only, here, in the JSON and in Data Docs.
    """
    import great_expectations as gx

    # GX's execution engine caches every metric it computed, frames included, for the life of
    # its context: without Data Docs each part gets a fresh (cheap) context, so memory is
    # released part by part; Data Docs need one context that has seen every part.
    shared = _gx_context(docs_dir) if docs_dir is not None else None
    meta = suite.get("meta") or {}
    personal = set(pii if pii is not None else meta.get(PII_META) or [])
    checks: list[CheckResult] = []
    results: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}  # each part's cost: the per-feature cost of validation
    groups = _column_groups(list(suite.get("expectations") or []))
    for i, ((column, severity), expectations) in enumerate(groups.items()):
        t0 = time.perf_counter()
        ctx, batch_def = shared or _gx_context(None)
        # GX's Data Docs do not show an expectation's severity: a column's non-critical checks
        # are a validation of their own, "<suite>:<column>:warning", so a warning reads as one
        name = f"{suite['name']}:{column or 'table'}" + ("" if severity == "critical" else f":{severity}")
        gx_suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations, meta=meta))
        vdef = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch_def, suite=gx_suite)
        )
        fmt: dict[str, Any] = {"result_format": result_format}
        if any(_columns_of(e.get("kwargs") or {}) & personal for e in expectations):
            fmt["exclude_unexpected_values"] = True  # GX need not even collect them
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(name=f"part-{i}", validation_definitions=[vdef], result_format=fmt)
        )
        frame = _part_frame(batch, column, expectations)
        run = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
        del frame
        part = column or "table"
        seconds[part] = round(seconds.get(part, 0.0) + time.perf_counter() - t0, 4)
        result = next(iter(run.run_results.values()))
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
    if shared is not None:
        if personal:
            # Data Docs render what the context stored when each part ran (before the scrub)
            store = shared[0].validation_results_store
            for key in store.list_keys():
                stored = store.get(key)
                if scrub_pii(stored, personal):
                    store.set(key, stored)
        # one build for every part: a Data Docs action per part re-renders the site each time
        shared[0].build_data_docs(site_names=[DOCS_SITE])
    checks.sort(key=lambda c: c.column is not None)  # table-level findings first
    success = all(r["success"] for r in results)
    return checks, {"suite": suite["name"], "success": success, "results": results, "column_seconds": seconds}
