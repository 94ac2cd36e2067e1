"""The dataset spec: one YAML file describes a tabular binary-classification dataset.

Everything downstream (casting, validation suites, storage layout, later training and
monitoring) reads the spec instead of assuming column names, so onboarding a dataset means
writing ``datasets/<name>.yaml`` and nothing else.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nightshift.errors import DataError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

NumericType = Literal["int64", "float64"]
# bool first: pydantic keeps an exact type, so true stays a bool and 1 an int
LabelValue = bool | int | str
IdType = Literal["string", "int64"]
# what a failed check does: quarantine the batch (critical, the default) or only report it
Severity = Literal["critical", "warning"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning")


# Columns nightshift itself adds next to a dataset's own: a spec column of the same name would
# be overwritten or clash (the tests check these against the modules that add them).
RESERVED_COLUMNS: dict[str, str] = {
    "score": "the model's score in predictions and monitoring samples",
    "model_version": "the scoring model's version in predictions",
    "dt": "the partition key of the store's dt=YYYY-MM-DD folders",
}
# nightshift's own working columns (e.g. ``__row``, ``__dt`` while joining training days)
RESERVED_PREFIX = "__"


class SpecError(DataError, ValueError):
    """A dataset spec that cannot be used; the message names the file and the fields."""


class _Model(BaseModel):
    # NaN or infinity is never a meaningful bound or threshold (NaN compares false with
    # everything, so `min: .nan` would silently disable a range check)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Checked(_Model):
    """A feature whose checks each have a severity: ``severity: warning`` (all of its checks)
    or ``severity: {max_null_fraction: warning, range: critical}`` (check by check)."""

    # the feature's checks, by the name a spec's ``severity`` mapping uses
    CHECKS: ClassVar[tuple[str, ...]] = ("max_null_fraction",)

    severity: Severity | dict[str, Severity] | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: object) -> object:
        known = ", ".join(cls.CHECKS)
        allowed = " or ".join(repr(s) for s in SEVERITIES)
        if v is None or (isinstance(v, str) and v in SEVERITIES):
            return v
        if isinstance(v, dict):
            unknown = [str(k) for k in v if k not in cls.CHECKS]
            if unknown:
                raise ValueError(
                    f"unknown check(s) {', '.join(map(repr, unknown))}; this feature's checks: {known}"
                )
            bad = [f"{k}: {s!r}" for k, s in v.items() if s not in SEVERITIES]
            if bad:
                raise ValueError(f"severity must be {allowed}, got {', '.join(bad)}")
            return v
        raise ValueError(
            f"severity must be {allowed} (all of the feature's checks) or a mapping of check to "
            f"severity (checks: {known}), got {v!r}"
        )

    def _has_check(self, check: str) -> bool:
        return check == "max_null_fraction"

    def stated_severity(self, check: str) -> Severity | None:
        """The severity the spec gives ``check`` (``None``: the spec does not say)."""
        if check not in self.CHECKS:
            raise KeyError(f"{check!r} is not a check of a {type(self).__name__}; checks: {self.CHECKS}")
        if isinstance(self.severity, dict):
            return self.severity.get(check)
        return self.severity

    def severity_of(self, check: str) -> Severity:
        """What a failure of ``check`` does: ``critical`` (quarantine) unless the spec says otherwise."""
        return self.stated_severity(check) or "critical"

    @model_validator(mode="after")
    def _severity_of_checks(self) -> _Checked:
        if isinstance(self.severity, dict):
            absent = [c for c in self.severity if not self._has_check(c)]
            if absent:
                raise ValueError(
                    f"feature {getattr(self, 'name', '?')!r}: severity given for check(s) it does not "
                    f"have: {', '.join(absent)} ({self._why_absent()})"
                )
        return self

    def _why_absent(self) -> str:
        return ""


class NumericFeature(_Checked):
    """A numeric feature with an optional allowed range and null budget."""

    CHECKS: ClassVar[tuple[str, ...]] = ("max_null_fraction", "range")

    name: str
    dtype: NumericType = "float64"
    min: float | None = None
    max: float | None = None
    max_null_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0
    # personal data: its values never appear in validation evidence, Data Docs, notifications
    # or logs (counts only)
    pii: bool = False

    @model_validator(mode="after")
    def _range(self) -> NumericFeature:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min ({self.min}) is greater than max ({self.max})")
        return self

    def _has_check(self, check: str) -> bool:
        return check == "max_null_fraction" or (check == "range" and (self.min, self.max) != (None, None))

    def _why_absent(self) -> str:
        return "a range check needs min or max"


class CategoricalFeature(_Checked):
    """A categorical feature; ``values`` is the allowed set (``None``: any string)."""

    CHECKS: ClassVar[tuple[str, ...]] = ("max_null_fraction", "values")

    name: str
    values: list[str] | None = None
    max_null_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0
    # personal data: see NumericFeature.pii
    pii: bool = False

    @field_validator("values")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError("values must be a non-empty list without duplicates")
        return v

    def _has_check(self, check: str) -> bool:
        return check == "max_null_fraction" or (check == "values" and self.values is not None)

    def _why_absent(self) -> str:
        return "a values check needs values"


class Features(_Model):
    numeric: list[NumericFeature] = Field(default_factory=list)
    categorical: list[CategoricalFeature] = Field(default_factory=list)


class Label(_Model):
    """The binary label and how many days after the event it lands."""

    column: str
    delay_days: Annotated[int, Field(ge=0, le=365)]
    # the two values the feed uses: ints (1/0), strings ("YES"/"NO": quote them, YAML reads a
    # bare YES/NO as a boolean) or booleans (true/false); both of the same type
    positive: LabelValue = 1
    negative: LabelValue = 0

    @model_validator(mode="after")
    def _same_type(self) -> Label:
        if type(self.positive) is not type(self.negative):
            raise ValueError(
                f"label.positive ({self.positive!r}) and label.negative ({self.negative!r}) must be of one "
                "type: two ints, two strings or two booleans (quote YES/NO: YAML reads them as booleans)"
            )
        return self

    @property
    def dtype(self) -> Literal["bool", "int64", "string"]:
        """The label column's type, from its two values."""
        if isinstance(self.positive, bool):
            return "bool"
        return "int64" if isinstance(self.positive, int) else "string"


class Landing(_Model):
    """How upstream delivers files: format, CSV details, the encoding we accept."""

    format: Literal["csv", "parquet"] = "csv"
    delimiter: str = ","
    encoding: Literal["utf-8"] = "utf-8"
    # glob of file names inside a dt=YYYY-MM-DD folder
    pattern: str = "*"
    # A file upstream writes into the day's folder once every file of the day is there (e.g.
    # ``_SUCCESS``): the landing wait fires, and the ingest runs, only once it exists. ``None``
    # (the default): the wait fires on the first matching file, for upstreams that deliver a day
    # in one file or write each file atomically into place.
    complete_marker: str | None = None

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("delimiter must be a single character")
        return v

    @model_validator(mode="after")
    def _marker(self) -> Landing:
        m = self.complete_marker
        if m is None:
            return self
        if not m or "/" in m or "\\" in m or m in (".", ".."):
            raise ValueError(f"complete_marker must be a file name inside the day's folder, got {m!r}")
        if not m.startswith((".", "_")) and fnmatch.fnmatch(m, self.pattern):
            # names starting with '.' or '_' are never read as data (Store.list_files)
            raise ValueError(
                f"complete_marker {m!r} matches pattern {self.pattern!r} and would be read as data: "
                f"name it '_{m}' or narrow the pattern"
            )
        return self


class Partitioning(_Model):
    """Partition by the local calendar day of the event-time column in ``timezone`` (an IANA
    name such as ``America/Chicago``; default ``UTC``). A day is local midnight to local
    midnight (23 or 25 hours across a DST change); timestamps with an offset are converted,
    timestamps without one are read as local times in this zone (a time the clocks skip moves
    forward past the gap, a repeated one is its first occurrence). Event times are stored as
    UTC instants."""

    by: Literal["day"] = "day"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        zone_of(v)
        return v

    @property
    def tz(self) -> tzinfo:
        return zone_of(self.timezone)


class ValidationThresholds(_Model):
    """Dataset-level validation thresholds (per-column ones live on the columns)."""

    min_rows: Annotated[int, Field(ge=0)] = 1
    max_rows: int | None = None
    # share of rows that must fall inside numeric ranges / categorical sets
    range_mostly: Annotated[float, Field(gt=0, le=1)] = 1.0
    # a labels batch whose ids were never seen in curated events (of the last
    # ``label_match_days`` days): above this share of its ids it is quarantined (the count is
    # always in the labels report)
    max_unmatched_label_fraction: Annotated[float, Field(ge=0, le=1)] = 0.05
    # a valid batch up to this many rows gets GX Data Docs too (a rejected one always does);
    # larger valid batches are validated for verdicts only, which is several times cheaper
    data_docs_max_rows: Annotated[int, Field(ge=0)] = 200_000


DEFAULT_XGB_PARAMS: dict[str, float | int | str] = {
    "max_depth": 4,
    "eta": 0.05,
    "min_child_weight": 10.0,
    "subsample": 0.8,
    "colsample_bytree": 0.7,
    "max_bin": 256,
    # categorical features are XGBoost-native (codes): one-vs-rest splits up to 32 categories,
    # above that partition splits over at most 16 categories, so a high-cardinality column
    # (87 neighbourhoods, a few thousand rows) does not overfit (docs/benchmarks.md)
    "max_cat_to_onehot": 32,
    "max_cat_threshold": 16,
}


class Tuning(_Model):
    """A bounded, seeded hyper-parameter search on the time-ordered validation days: ``trials``
    (0 = off) within ``timeout_s``. By default (``first_model_only``) only while there is no
    champion: the first model of a dataset is tuned, a retrain keeps the spec's params."""

    trials: Annotated[int, Field(ge=0, le=200)] = 20
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    first_model_only: bool = True


class Training(_Model):
    """The training window, its time-ordered split, and XGBoost's settings."""

    # the last N labelled event days; the most recent ones are the holdout, the ones before
    # them the validation (early stopping) days, the rest the training days
    window_days: Annotated[int, Field(ge=3, le=366)] = 14
    validation_days: Annotated[int, Field(ge=1)] = 2
    holdout_days: Annotated[int, Field(ge=1)] = 2
    min_rows: Annotated[int, Field(ge=1)] = 1000
    # each split needs at least this many rows of each class
    min_class_rows: Annotated[int, Field(ge=1)] = 10
    num_boost_round: Annotated[int, Field(ge=1, le=100_000)] = 500
    early_stopping_rounds: Annotated[int, Field(ge=1)] = 25
    params: dict[str, float | int | str] = Field(default_factory=lambda: dict(DEFAULT_XGB_PARAMS))
    tuning: Tuning = Field(default_factory=Tuning)

    @model_validator(mode="after")
    def _split(self) -> Training:
        if self.validation_days + self.holdout_days >= self.window_days:
            raise ValueError(
                f"validation_days ({self.validation_days}) + holdout_days ({self.holdout_days}) "
                f"leave no training days in a window of {self.window_days}"
            )
        reserved = {"objective", "seed", "device", "tree_method", "eval_metric", "nthread"}
        bad = sorted(reserved & set(self.params))
        if bad:
            raise ValueError(f"params may not set {', '.join(bad)} (nightshift sets them)")
        return self


MetricName = Literal["roc_auc", "average_precision", "log_loss", "brier"]


# absolute floors a spec that sets none gets: better than chance, whatever the dataset (a demo's
# 0.9-AUC world and a real 0.62-AUC one alike); the relative checks do the rest
DEFAULT_FLOORS: dict[MetricName, float] = {"roc_auc": 0.55}


class Review(_Model):
    """Borderline verdicts a human decides: a challenger whose main-metric delta against the
    champion falls in ``band`` (inclusive), with no failed check other than the comparisons
    with the champion, waits for an approval in the Airflow UI. Outside the band the gate
    decides alone; the first model (no champion) is never reviewed."""

    band: tuple[float, float] = (-0.01, 0.005)
    # no answer within this time: ``reject`` keeps the champion, ``gate`` takes the gate's verdict
    timeout_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24
    on_timeout: Literal["reject", "gate"] = "reject"

    @model_validator(mode="after")
    def _ordered(self) -> Review:
        lo, hi = self.band
        if lo > hi:
            raise ValueError(f"band must be [low, high] with low <= high, got [{lo}, {hi}]")
        return self


class Gate(_Model):
    """When a challenger may replace the champion (all checks on the same holdout)."""

    metric: Literal["roc_auc", "average_precision"] = "roc_auc"
    # absolute floors, checked on every run (with the baseline, the only checks on a first run)
    min_metrics: dict[MetricName, float] = Field(default_factory=lambda: dict(DEFAULT_FLOORS))
    # how much worse than the champion the challenger may be on ``metric`` (a tie passes:
    # the newer model has seen newer data)
    max_regression: Annotated[float, Field(ge=0)] = 0.005
    # per-slice, relative: the challenger's ``metric`` in each slice value with enough rows must
    # not fall more than ``max_slice_regression`` below the champion's on the same slice (on a
    # first run, below the logistic baseline's); absolute ``slice_min_metric`` only where set
    slice_min_rows: Annotated[int, Field(ge=1)] = 200
    slice_min_positives: Annotated[int, Field(ge=1)] = 5
    max_slice_regression: Annotated[float, Field(ge=0)] = 0.03
    slice_min_metric: float | None = None
    # the challenger must beat a logistic regression on the same features by this margin
    baseline_margin: float = 0.0
    # when it does not (or loses to it on a slice), the logistic baseline competes: packaged as
    # a model of its own and judged by the same gate; it wins when it passes (``false``: the
    # XGBoost challenger is simply rejected)
    baseline_candidate: bool = True
    # a floor (min_metrics, slice_min_metric) that the champion also misses on the same
    # holdout is passed by a challenger better than the champion
    floors_vs_champion: bool = True
    # human approval of borderline verdicts (``None``: the gate always decides alone)
    review: Review | None = None


class Scoring(_Model):
    """Batch scoring: how far back a new champion scores partitions that have no predictions."""

    catchup_days: Annotated[int, Field(ge=0, le=366)] = 7
    batch_rows: Annotated[int, Field(ge=1000)] = 500_000


class Serving(_Model):
    """The online scoring service (``nightshift serve``): the champion behind HTTP."""

    # how often the service asks the registry where ``champion`` points: a promotion or a
    # rollback answers within this plus the new version's load time
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # a larger request gets 413 (the body may hold at most 1 MiB + 4 KiB per allowed row)
    max_rows_per_request: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    # XGBoost threads per request (0: every core). One keeps a single-row request at ~0.1 ms
    # of predict on a busy host, where a 2-thread OpenMP region waits milliseconds for a core;
    # concurrent requests use the other cores
    predict_threads: Annotated[int, Field(ge=0, le=256)] = 1
    # keep every answered row (inputs, score, version, time) under serving/<dataset>/dt=<day>/
    # (the request's local day), monitored for drift like the batch predictions
    log_requests: bool = False
    log_flush_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # rows buffered at most (the oldest are dropped, and counted, while the store is unreachable)
    log_max_buffer_rows: Annotated[int, Field(ge=1000, le=10_000_000)] = 200_000
    # the gate's serving check (nightshift.servecheck): the candidate served by a fresh
    # ``nightshift serve`` process must answer its input example and a holdout sample as it
    # scores in process, without an error, and one-row requests within this p99 latency
    # (client-side wall time of each of ``check_requests`` timed requests, start-up excluded)
    max_latency_ms: Annotated[float, Field(gt=0, le=60_000)] = 50.0
    check_requests: Annotated[int, Field(ge=20, le=100_000)] = 200
    # a round whose p99 is over the bound is measured again, up to this many rounds in all, and
    # the best round is judged: a slow model is slow in every round, a busy host is not busy in all
    check_latency_rounds: Annotated[int, Field(ge=1, le=10)] = 3
    # the fresh server must have loaded the candidate within this (slower: a service problem,
    # the task is retried); then every request must be answered within ``check_timeout_s``
    # (what is left unanswered counts as failed requests: the candidate is rejected)
    check_start_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 180.0
    check_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


# distances only (a larger value = more drift); p-value tests flag everything at large samples
DriftMethod = Literal["wasserstein", "jensenshannon", "psi", "kl_div", "hellinger"]


class Monitoring(_Model):
    """How each scored day is compared with the champion's reference sample.

    Both samples are capped (``reference_rows`` stored with the model, ``sample_rows`` drawn
    from the day) so a day costs the same at 4k and 4M rows. The per-column methods are set
    explicitly: Evidently's defaults switch from statistical tests to distances at 1,000 rows,
    and p-value tests flag every column at large samples. Distances (Wasserstein for numbers,
    Jensen-Shannon for categories) with one threshold behave the same at every sample size.
    """

    reference_rows: Annotated[int, Field(ge=1000, le=1_000_000)] = 5000
    sample_rows: Annotated[int, Field(ge=1000, le=1_000_000)] = 5000
    # a day with fewer rows gets a quality report but no drift verdict
    min_rows: Annotated[int, Field(ge=100)] = 500
    num_method: DriftMethod = "wasserstein"
    cat_method: DriftMethod = "jensenshannon"
    threshold: Annotated[float, Field(gt=0)] = 0.1
    prediction_threshold: Annotated[float, Field(gt=0)] = 0.1
    # how many days back the monitor looks for scored or labelled days not yet reported
    lookback_days: Annotated[int, Field(ge=1, le=366)] = 14


class Alerts(_Model):
    """When monitoring raises an alert (the Asset event that may start a retrain)."""

    # drift share = share of features drifted, each weighted by its importance in the
    # champion (mean |contribution|), or uniformly
    weighting: Literal["importance", "uniform"] = "importance"
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.3
    # a drifted prediction distribution counts as a drifting day on its own
    prediction_drift: bool = True
    consecutive_days: Annotated[int, Field(ge=1, le=30)] = 2
    # performance, once labels land: AUC below the version's holdout AUC minus this, or
    # below ``min_auc``, on ``performance_consecutive_days`` labelled days in a row
    max_auc_drop: Annotated[float, Field(ge=0, le=1)] = 0.05
    min_auc: Annotated[float, Field(ge=0, le=1)] | None = None
    performance_consecutive_days: Annotated[int, Field(ge=1, le=30)] = 1
    # staleness: the champion's newest training day is more than this many data days older
    # than the newest monitored day (``None``: never)
    max_model_age_days: Annotated[int, Field(ge=1, le=3660)] | None = 30


class Retrain(_Model):
    """Guard rails of the retraining loop (days are data days: the alert's partition date)."""

    # automatic runs of nightshift_train on new data: only until a champion exists
    # ("bootstrap"; monitoring drives retraining after that) or on every batch ("always")
    on_new_data: Literal["bootstrap", "always"] = "bootstrap"
    cooldown_days: Annotated[int, Field(ge=0, le=90)] = 3
    max_per_week: Annotated[int, Field(ge=0, le=50)] = 2
    # train only on days from the alert's onset (data after the change) once this many
    # labelled days exist; ``None`` = validation + holdout + 2 days
    since_onset: bool = True
    min_days_after_onset: Annotated[int, Field(ge=3, le=366)] | None = None
    # while there is no champion, the automatic runs of nightshift_train (new data) train at
    # most once per this many labelled data days (0: every run); manual runs always train
    bootstrap_every_days: Annotated[int, Field(ge=0, le=90)] = 3


class DatasetSpec(_Model):
    """A tabular binary-classification dataset, as upstream delivers it."""

    name: str
    description: str = ""
    id_column: str
    id_dtype: IdType = "string"
    event_time_column: str
    label: Label
    features: Features
    slices: list[str] = Field(default_factory=list)
    partitioning: Partitioning = Field(default_factory=Partitioning)
    landing: Landing = Field(default_factory=Landing)
    validation: ValidationThresholds = Field(default_factory=ValidationThresholds)
    training: Training = Field(default_factory=Training)
    gate: Gate = Field(default_factory=Gate)
    scoring: Scoring = Field(default_factory=Scoring)
    serving: Serving = Field(default_factory=Serving)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    alerts: Alerts = Field(default_factory=Alerts)
    retrain: Retrain = Field(default_factory=Retrain)
    seed: int = 42

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("name must be lower-case letters, digits and '_', starting with a letter")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        names = [self.id_column, self.event_time_column, self.label.column, *self.feature_names]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names used twice: {', '.join(dupes)}")
        if not self.feature_names:
            raise ValueError("at least one numeric or categorical feature is required")
        reserved = self._reserved_names()
        if reserved:
            raise ValueError("; ".join(reserved))
        cats = {c.name for c in self.features.categorical}
        bad = [s for s in self.slices if s not in cats]
        if bad:
            raise ValueError(f"slices must be categorical features; not: {', '.join(bad)}")
        personal = [s for s in self.slices if s in self.pii_columns]
        if personal:
            raise ValueError(
                f"slices may not be pii features (slice values are named in gate reports): "
                f"{', '.join(personal)}"
            )
        if self.label.positive == self.label.negative:
            raise ValueError("label.positive and label.negative must differ")
        need = self.training.validation_days + self.training.holdout_days + 1
        if self.retrain.min_days_after_onset is not None and self.retrain.min_days_after_onset < need:
            raise ValueError(
                f"retrain.min_days_after_onset ({self.retrain.min_days_after_onset}) must leave a "
                f"training day besides the {need - 1} validation + holdout day(s)"
            )
        return self

    def _reserved_names(self) -> list[str]:
        fields = [
            ("id_column", self.id_column),
            ("event_time_column", self.event_time_column),
            ("label.column", self.label.column),
            *((f"features.numeric.{i}.name", f.name) for i, f in enumerate(self.features.numeric)),
            *((f"features.categorical.{i}.name", c.name) for i, c in enumerate(self.features.categorical)),
        ]
        out = []
        for where, name in fields:
            if name in RESERVED_COLUMNS:
                out.append(
                    f"{where}: {name!r} is a column nightshift adds ({RESERVED_COLUMNS[name]}): rename it"
                )
            elif name.startswith(RESERVED_PREFIX):
                out.append(
                    f"{where}: {name!r}: names starting with {RESERVED_PREFIX!r} are nightshift's own: "
                    "rename it"
                )
        return out

    @property
    def retrain_min_days(self) -> int:
        """Labelled days after a drift onset needed before a retrain on them."""
        r, t = self.retrain, self.training
        return r.min_days_after_onset or t.validation_days + t.holdout_days + 2

    # ---- derived views -------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features.numeric] + [f.name for f in self.features.categorical]

    @property
    def pii_columns(self) -> frozenset[str]:
        """Features marked ``pii: true``: their values are never shown, only counted."""
        numeric = {f.name for f in self.features.numeric if f.pii}
        return frozenset(numeric | {c.name for c in self.features.categorical if c.pii})

    @property
    def event_columns(self) -> list[str]:
        """Columns of an event (feature) batch, in canonical order."""
        return [self.id_column, self.event_time_column, *self.feature_names]

    @property
    def label_columns(self) -> list[str]:
        """Columns a labels batch may have, in canonical order (the event time is optional:
        most label feeds carry only the id and the outcome)."""
        return [self.id_column, self.event_time_column, self.label.column]

    def columns_for(self, kind: BatchKind) -> list[str]:
        """Every column a batch of this kind may have, in canonical order."""
        return self.event_columns if kind == "events" else self.label_columns

    def required_columns_for(self, kind: BatchKind) -> list[str]:
        """The columns a batch of this kind must have: every event column; a labels batch
        needs only the id and the label."""
        return self.event_columns if kind == "events" else [self.id_column, self.label.column]

    def optional_columns_for(self, kind: BatchKind) -> list[str]:
        """Columns a batch of this kind may leave out (the labels' event time)."""
        required = set(self.required_columns_for(kind))
        return [c for c in self.columns_for(kind) if c not in required]

    @property
    def label_match_days(self) -> int:
        """How many event days before a labels batch's arrival day (and that day) its ids are
        looked up in, and earlier arrivals compared with: the label delay plus the training
        window (a correction older than that can no longer change a model's training data)."""
        return self.label.delay_days + self.training.window_days


BatchKind = Literal["events", "labels"]
BATCH_KINDS: tuple[BatchKind, ...] = ("events", "labels")


def zone_of(name: str) -> tzinfo:
    """The IANA time zone ``name``, or a ValueError naming it."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        example = "e.g. UTC, Europe/Paris, America/Chicago"
        raise ValueError(f"unknown IANA time zone {name!r} ({example})") from None


def partition_bounds(dt: date, tz: tzinfo | str = UTC) -> tuple[datetime, datetime]:
    """The half-open UTC interval [start, end) covered by the day partition ``dt``: local
    midnight to the next local midnight in ``tz`` (23 or 25 hours on a DST change)."""
    zone = zone_of(tz) if isinstance(tz, str) else tz
    start = datetime.combine(dt, time(0), tzinfo=zone)
    end = datetime.combine(dt + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_dt(value: str | date) -> date:
    """Parse a ``YYYY-MM-DD`` partition date, with an error that names the value."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        if not DT_RE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"partition date must be YYYY-MM-DD, got {value!r}") from None


def _feature_name(data: object, loc: tuple[int | str, ...]) -> str | None:
    """The ``name`` of the feature an error location points into, if it has one."""
    if len(loc) < 3 or loc[0] != "features" or not isinstance(loc[2], int) or not isinstance(data, dict):
        return None
    try:
        name = data["features"][loc[1]][loc[2]]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _format_errors(exc: ValidationError, data: object = None) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        feature = _feature_name(data, tuple(err["loc"]))
        if feature is not None:
            loc += f" (feature {feature!r})"
        lines.append(f"  - {loc}: {err['msg']}")
    return "\n".join(lines)


def parse_spec(data: object, source: str = "<spec>") -> DatasetSpec:
    """Validate a parsed YAML/dict into a :class:`DatasetSpec`."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a dataset spec must be a mapping, got {type(data).__name__}")
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{source}: invalid dataset spec:\n{_format_errors(exc, data)}") from None


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, at: yaml.Mark, first: yaml.Mark) -> None:
        super().__init__(
            f"line {at.line + 1}, column {at.column + 1}: duplicate key {key!r} "
            f"(first at line {first.line + 1}, column {first.column + 1}); a key may appear only once"
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (PyYAML
    keeps the last one silently, so a second ``max:`` would quietly replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        first: dict[tuple[str, object], yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` then an explicit key is an override, not a duplicate
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.setdefault((type(key).__name__, key), key_node.start_mark)
            except TypeError:
                continue  # unhashable: the base constructor reports it
            if seen is not key_node.start_mark:
                raise _DuplicateKey(key, key_node.start_mark, seen)
        return super().construct_mapping(node, deep)


def load_spec(path: str | Path) -> DatasetSpec:
    """Load and validate ``datasets/<name>.yaml``; errors name the file and the field.

    The file must be UTF-8 YAML without duplicate keys, and its ``name`` must be its file name
    (without ``.yaml``): DAGs are made per file name and the store is keyed on ``name``.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{p}: dataset spec not found") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{p}: not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} (line {line}); "
            "save the spec as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except _DuplicateKey as exc:
        raise SpecError(f"{p}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML: {exc}") from None
    spec = parse_spec(data, str(p))
    if p.stem != spec.name:
        raise SpecError(
            f"{p}: name {spec.name!r} differs from the file name {p.name!r}: rename the file to "
            f"{spec.name}{p.suffix or '.yaml'} or set name: {p.stem}"
        )
    return spec


def find_spec(name_or_path: str | Path, datasets_dir: str | Path | None = None) -> DatasetSpec:
    """Resolve a dataset name (``datasets/<name>.yaml``) or a path to its spec."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_spec(p)
    base = Path(datasets_dir) if datasets_dir else default_datasets_dir()
    return load_spec(base / f"{name_or_path}.yaml")


def default_datasets_dir() -> Path:
    """``$NIGHTSHIFT_DATASETS_DIR`` or the repository's ``datasets/`` folder.

    Read here, not through :mod:`nightshift.settings`: this module is carried in the packaged
    model (``nightshift.model.CODE``), which loads without the settings and pydantic-settings.
    Same variable and rule as ``Settings.datasets_dir``."""
    import os

    env = os.environ.get("NIGHTSHIFT_DATASETS_DIR", "").strip()
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "datasets"
