"""Training: the labelled window, its time-ordered split, the device, and XGBoost.

The window is the last ``training.window_days`` *labelled* event days: curated partitions
whose labels are due (event day + ``label.delay_days`` ≤ the as-of day) and have landed,
joined by id. Days whose latest validation rejected the batch are never used, even if an
older curated partition is still on disk. The split is by day, never shuffled across time:
training days, then validation days (early stopping), then the most recent holdout days.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nightshift.errors import DataError
from nightshift.features import FeatureTransform, labels
from nightshift.spec import DatasetSpec
from nightshift.storage import Store

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "holdout")


class InsufficientData(DataError, ValueError):
    """The window cannot train a model: too few days, rows, or only one class."""


class DeviceError(DataError, RuntimeError):
    """A worker that must train on a GPU cannot see one (a set-up error: a retry on the same
    worker sees the same devices, so it fails at once)."""


# ---- the window --------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """One event day of the window and where its rows came from (lineage)."""

    dt: date
    uri: str
    sha256: str
    rows: int
    labelled_rows: int
    positives: int
    labels: list[str]
    validation: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dt": self.dt.isoformat(),
            "uri": self.uri,
            "sha256": self.sha256,
            "rows": self.rows,
            "labelled_rows": self.labelled_rows,
            "positives": self.positives,
            "labels": self.labels,
            "validation": self.validation,
        }


@dataclass
class Window:
    """Labelled rows of the window, with the split assignment of every day."""

    table: pa.Table  # events + label column, sorted by day
    partitions: list[Partition]
    days: dict[str, list[date]]  # split name -> days
    labels_digest: str = ""  # content hash of the label files read
    _splits: dict[str, tuple[pa.Table, pa.Table]] = field(default_factory=dict, repr=False)

    def split(self, name: str) -> pa.Table:
        """The rows of one split (filtered once per table, then reused)."""
        cached = self._splits.get(name)
        if cached is not None and cached[0] is self.table:
            return cached[1]
        days = self.days[name]
        mask = pc.is_in(self.table.column("__dt"), value_set=pa.array(days, pa.date32()))
        rows = self.table.filter(mask).drop_columns(["__dt"])
        self._splits[name] = (self.table, rows)
        return rows

    @property
    def fingerprint(self) -> str:
        """A hash of the partitions' contents: same fingerprint, same training data."""
        h = hashlib.sha256()
        for p in self.partitions:
            h.update(f"{p.dt}:{p.sha256}:{p.labelled_rows}:{p.positives};".encode())
        h.update(self.labels_digest.encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            name: {"days": [d.isoformat() for d in days], "rows": self.split(name).num_rows}
            for name, days in self.days.items()
        }


def split_days(days: list[date], validation_days: int, holdout_days: int) -> dict[str, list[date]]:
    """Time-ordered split: oldest days train, then validation, the most recent holdout."""
    ordered = sorted(set(days))
    if len(ordered) < validation_days + holdout_days + 1:
        raise InsufficientData(
            f"{len(ordered)} labelled day(s) cannot make a split of at least 1 training, "
            f"{validation_days} validation and {holdout_days} holdout day(s)"
        )
    n_hold, n_val = holdout_days, validation_days
    return {
        "train": ordered[: -(n_val + n_hold)],
        "validation": ordered[-(n_val + n_hold) : -n_hold],
        "holdout": ordered[-n_hold:],
    }


def _sha256(store: Store, path: str) -> str:
    h = hashlib.sha256()
    with store.open_input(path) as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def validation_status(store: Store, dataset: str, kind: str, dt: date) -> dict[str, Any]:
    path = store.reports_dir(dataset, "validation", dt) + f"/{kind}.json"
    if not store.exists(path):
        return {"success": None, "report": None}
    outcome = store.read_json(path).get("outcome", {})
    return {"success": bool(outcome.get("success")), "report": store.uri(path)}


def quarantined_days(store: Store, spec: DatasetSpec) -> list[date]:
    """Event days whose latest batch failed validation (never trained on)."""
    return [
        dt
        for dt in store.list_partitions(store.path("quarantine", spec.name, "events"))
        if validation_status(store, spec.name, "events", dt)["success"] is False
    ]


def read_labels(store: Store, spec: DatasetSpec, paths: list[str]) -> pa.Table:
    """Labels from published label files (``paths`` in arrival order), one row per id: a label
    re-sent for an id replaces the earlier one (the latest arrival wins, so a correction takes
    effect)."""
    tables = [pq.read_table(store.open_input(p), columns=[spec.id_column, spec.label.column]) for p in paths]
    all_labels = pa.concat_tables(tables).combine_chunks()
    if pc.count_distinct(all_labels.column(spec.id_column), mode="all").as_py() == all_labels.num_rows:
        return all_labels  # every id once (the usual feed): nothing to replace
    # single-threaded grouping keeps row order, so "last" is the latest arrival
    agg = all_labels.group_by(spec.id_column, use_threads=False).aggregate([(spec.label.column, "last")])
    return pa.table(
        [agg.column(spec.id_column), agg.column(f"{spec.label.column}_last")],
        names=[spec.id_column, spec.label.column],
    )


def labelled_days(store: Store, spec: DatasetSpec, as_of: date | None = None) -> list[date]:
    """Event days that are curated, not quarantined, and whose labels are due by ``as_of``
    (default: the latest labels partition)."""
    arrivals = store.list_partitions(store.path("labels", spec.name))
    if not arrivals:
        return []
    as_of = as_of or arrivals[-1]
    delay = timedelta(days=spec.label.delay_days)
    days = []
    for dt in store.list_partitions(store.path("curated", spec.name)):
        if dt + delay > as_of or not store.exists(store.published_file(spec.name, "events", dt)):
            continue
        if validation_status(store, spec.name, "events", dt)["success"] is False:
            log.warning("skipping %s dt=%s: its latest events batch was quarantined", spec.name, dt)
            continue
        days.append(dt)
    return days


# long: partitions, labels, the latest-arrival dedup and the join in one pass over the window
def load_window(
    store: Store,
    spec: DatasetSpec,
    as_of: date | None = None,
    window_days: int | None = None,
    since: date | None = None,
) -> Window:
    """Read the last ``window_days`` labelled days (none before ``since``), join their labels
    by id, split by day."""
    t = spec.training
    n = window_days or t.window_days
    candidates = [d for d in labelled_days(store, spec, as_of) if since is None or d >= since]
    if not candidates:
        raise InsufficientData(
            f"{spec.name}: no labelled days in {store.uri(store.path('curated', spec.name))}"
            + (f" since {since}" if since else "")
            + f" (labels arrive {spec.label.delay_days} day(s) after the events)"
        )
    days = candidates[-n:]
    arrivals = [
        d
        for d in store.list_partitions(store.path("labels", spec.name))
        if days[0] <= d <= (as_of or date.max)
    ]
    label_files = {d: store.published_file(spec.name, "labels", d) for d in arrivals}
    present = [p for p in label_files.values() if store.exists(p)]
    labels_digest = hashlib.sha256("".join(_sha256(store, p) for p in present).encode()).hexdigest()
    if not present:
        raise InsufficientData(f"{spec.name}: no labels partitions between {days[0]} and {as_of or 'now'}")
    # a label delivered twice (a re-sent chargeback) must not duplicate the event
    all_labels = read_labels(store, spec, present)

    parts: list[pa.Table] = []
    lineage: list[Partition] = []
    paths = {dt: store.published_file(spec.name, "events", dt) for dt in days}
    tables = {dt: pq.read_table(store.open_input(path)) for dt, path in paths.items()}
    # each event's label by id, in file order (training's subsample depends on it; an Acero
    # join would not keep it): one lookup over the whole window, one hash table of the labels
    ids = pa.chunked_array([c for t in tables.values() for c in t.column(spec.id_column).chunks])
    found = pc.index_in(ids, value_set=all_labels.column(spec.id_column))
    label_values = all_labels.column(spec.label.column)
    offset = 0
    for dt, events in tables.items():
        path = paths[dt]
        at = found.slice(offset, events.num_rows)
        offset += events.num_rows
        keep = pc.is_valid(at)
        joined = events.filter(keep).append_column(
            all_labels.field(spec.label.column), label_values.take(at.filter(keep))
        )
        if joined.num_rows == 0:
            log.warning("%s dt=%s: no labels joined yet; day left out", spec.name, dt)
            continue
        y = labels(joined, spec)
        lineage.append(
            Partition(
                dt=dt,
                uri=store.uri(path),
                sha256=_sha256(store, path),
                rows=events.num_rows,
                labelled_rows=joined.num_rows,
                positives=int(y.sum()),
                labels=[store.uri(label_files[a]) for a in arrivals if a >= dt and label_files[a] in present],
                validation=validation_status(store, spec.name, "events", dt),
            )
        )
        day = np.full(joined.num_rows, np.datetime64(dt.isoformat(), "D"))
        joined = joined.append_column("__dt", pa.array(day, pa.date32()))
        parts.append(joined)
    if not parts:
        raise InsufficientData(f"{spec.name}: none of {len(days)} labelled day(s) has labels joined by id")
    table = pa.concat_tables(parts, promote_options="permissive")
    window = Window(
        table=table,
        partitions=lineage,
        days=split_days([p.dt for p in lineage], t.validation_days, t.holdout_days),
        labels_digest=labels_digest,
    )
    # each day's rows are one run of the table: a split is its days' slices, not a filter
    at, start = {}, 0
    for p, part in zip(lineage, parts, strict=True):
        at[p.dt] = (start, part.num_rows)
        start += part.num_rows
    for name, split in window.days.items():
        rows = pa.concat_tables([table.slice(*at[d]) for d in split]) if split else table.slice(0, 0)
        window._splits[name] = (table, rows.drop_columns(["__dt"]))
    check_window(window, spec)
    return window


def check_window(window: Window, spec: DatasetSpec) -> None:
    """Enough rows overall, and both classes in every split, or a clear error."""
    t = spec.training
    total = window.table.num_rows
    if total < t.min_rows:
        days = sorted(d for ds in window.days.values() for d in ds)
        span = f"{days[0]}..{days[-1]}" if days else "no days"
        raise InsufficientData(
            f"{spec.name}: {total} labelled row(s) in {len(days)} day(s) "
            f"({span}); training needs at least "
            f"{t.min_rows} (training.min_rows)"
        )
    for name in SPLITS:
        y = labels(window.split(name), spec)
        pos, neg = int(y.sum()), int(len(y) - y.sum())
        if min(pos, neg) < t.min_class_rows:
            listed = ", ".join(d.isoformat() for d in window.days[name])
            raise InsufficientData(
                f"{spec.name}: the {name} split ({listed}) has {pos} positive and {neg} negative "
                f"row(s); each class needs at least {t.min_class_rows} (training.min_class_rows)"
                + (" - a single-class window cannot train a classifier" if min(pos, neg) == 0 else "")
            )


# ---- the device --------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """Where XGBoost trains, and why."""

    name: str  # "cuda" or "cpu"
    reason: str
    gpus: int
    host: str


def visible_gpus() -> tuple[int, str]:
    """Count CUDA devices through the driver (honours CUDA_VISIBLE_DEVICES); ``(0, why)``
    when there are none."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no CUDA driver (libcuda.so.1 not found)"
    if cuda.cuInit(0) != 0:
        return 0, "the CUDA driver found no usable device (cuInit failed)"
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "the CUDA driver reports 0 devices"
    return count.value, f"{count.value} CUDA device(s) visible"


def choose_device(request: str | None = None, require_gpu: bool | None = None) -> Device:
    """``auto`` (default): CUDA when a GPU is visible, else CPU with a warning. A worker with
    ``NIGHTSHIFT_REQUIRE_GPU=1`` (or ``request='cuda'``) fails fast instead of falling back."""
    import xgboost as xgb

    from nightshift.settings import settings

    request = (request or settings().device).lower()
    if require_gpu is None:
        require_gpu = settings().require_gpu
    if request not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"NIGHTSHIFT_DEVICE must be auto, cpu or cuda, not {request!r}")
    host = socket.gethostname()
    if request == "cpu" and not require_gpu:
        return Device("cpu", "CPU requested (NIGHTSHIFT_DEVICE=cpu)", 0, host)
    gpus, why = visible_gpus()
    if gpus and not xgb.build_info().get("USE_CUDA"):
        gpus, why = 0, "this xgboost build has no CUDA support"
    if gpus:
        return Device("cuda", why, gpus, host)
    if require_gpu or request == "cuda":
        setting = "NIGHTSHIFT_REQUIRE_GPU=1" if require_gpu else "NIGHTSHIFT_DEVICE=cuda"
        raise DeviceError(f"worker {host} requires a GPU ({setting}) but {why}; refusing to train on CPU")
    log.warning("no GPU on worker %s (%s): training on CPU", host, why)
    return Device("cpu", f"fallback: {why}", 0, host)


# ---- training ----------------------------------------------------------------------------


@dataclass
class TrainResult:
    """A trained booster and everything needed to log and reproduce it."""

    booster: Any
    transform: FeatureTransform
    params: dict[str, Any]
    num_boost_round: int
    best_iteration: int
    best_score: float
    device: Device
    seconds: float
    history: dict[str, list[float]]
    trials: list[dict[str, Any]] = field(default_factory=list)


def xgb_params(spec: DatasetSpec, device: Device, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec's hyper-parameters, run-time overrides, and the fixed ones nightshift owns."""
    params: dict[str, Any] = {**spec.training.params, **(overrides or {})}
    params.update(
        objective="binary:logistic",
        eval_metric=["logloss", "auc"],  # the last one drives early stopping
        tree_method="hist",
        device=device.name,
        seed=spec.seed,
        nthread=0,
    )
    return params


def dmatrices(
    transform: FeatureTransform, train: pa.Table, validation: pa.Table, spec: DatasetSpec, max_bin: int = 256
) -> tuple[Any, Any]:
    """QuantileDMatrix for training, and one for validation sharing its bins."""
    import xgboost as xgb

    kw: dict[str, Any] = dict(
        feature_names=transform.feature_names, feature_types=transform.feature_types, enable_categorical=True
    )
    dtrain = xgb.QuantileDMatrix(
        transform.matrix(train),
        labels(train, spec),
        max_bin=max_bin,
        **kw,
    )
    dval = xgb.QuantileDMatrix(transform.matrix(validation), labels(validation, spec), ref=dtrain, **kw)
    return dtrain, dval


def _fit(
    params: dict[str, Any], dtrain: Any, dval: Any, rounds: int, early: int, deadline: float | None = None
) -> tuple[Any, dict[str, Any]]:
    """Train with early stopping on the validation days; past ``deadline`` (a
    ``time.perf_counter()`` value) the boosting stops after the current round (a search trial
    must not outlive the tuning budget; its best round so far is still a fair candidate)."""
    import xgboost as xgb

    class _Deadline(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            return deadline is not None and time.perf_counter() > deadline

    history: dict[str, Any] = {}
    # Early stopping before the deadline: xgboost asks the callbacks in order and stops asking
    # at the first that says stop, so this order records every round's score (best_score
    # included) even when the deadline cuts the very first round.
    callbacks: list[Any] = [xgb.callback.EarlyStopping(rounds=early)]
    if deadline is not None:
        callbacks.append(_Deadline())
    booster = xgb.train(
        {k: v for k, v in params.items() if k != "max_bin"},
        dtrain,
        num_boost_round=rounds,
        evals=[(dval, "validation")],
        evals_result=history,
        verbose_eval=False,
        callbacks=callbacks,
    )
    return booster, history.get("validation", {})


def _trial_params(rng: np.random.Generator) -> dict[str, Any]:
    """One draw of the search space (the order of the draws is part of the seeded sequence)."""
    return {
        "max_depth": int(rng.integers(3, 11)),
        "eta": float(np.exp(rng.uniform(np.log(0.02), np.log(0.3)))),
        "min_child_weight": float(np.exp(rng.uniform(np.log(0.5), np.log(20.0)))),
        "subsample": float(rng.uniform(0.6, 1.0)),
        "colsample_bytree": float(rng.uniform(0.5, 1.0)),
        "lambda": float(np.exp(rng.uniform(np.log(0.1), np.log(10.0)))),
    }


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """The standard error of an AUC estimated on ``positives`` + ``negatives`` rows (Hanley &
    McNeil, 1982); ``inf`` when a class is empty or the AUC is undefined."""
    if positives < 1 or negatives < 1 or not np.isfinite(auc):
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    return float(np.sqrt(max(var, 0.0) / (positives * negatives)))


def tuning_trials(spec: DatasetSpec, first_model: bool, trials: int | None = None) -> int:
    """How many search trials a run makes: ``trials`` when given (a manual run's request),
    else ``training.tuning.trials`` for a first model (no champion) or for every run when
    ``tuning.first_model_only`` is off, else 0."""
    if trials is not None:
        return trials
    tuning = spec.training.tuning
    return tuning.trials if first_model or not tuning.first_model_only else 0


# long: the tuning trials and the final fit share the callbacks and the deadline
def train(
    spec: DatasetSpec,
    window: Window,
    device: Device,
    overrides: dict[str, Any] | None = None,
    num_boost_round: int | None = None,
    trials: int | None = None,
    timeout_s: float | None = None,
    first_model: bool = False,
) -> TrainResult:
    """Fit the transform on the training days, train with early stopping on the validation
    days; with search trials (:func:`tuning_trials`: by default for a ``first_model`` only) a
    seeded random search within ``timeout_s`` picks the params with the best validation score
    (the spec's params are always trial 0), provided it beats the spec's params by more than
    the validation AUC's standard error (:func:`auc_standard_error`; the chosen trial says so).
    The search is reproducible from the seed for the trials it completes: the time budget cuts
    the sequence short, and stops a trial still running when it is spent (each trial is
    logged; the spec's params always train in full)."""
    t = spec.training
    rounds = num_boost_round or t.num_boost_round
    n_trials = tuning_trials(spec, first_model, trials)
    budget = t.tuning.timeout_s if timeout_s is None else timeout_s
    train_t, val_t = window.split("train"), window.split("validation")
    log.info(
        "training on %s: %d training and %d validation rows, %d tuning trial(s) within %.0f s",
        device.name,
        train_t.num_rows,
        val_t.num_rows,
        n_trials,
        budget,
    )
    transform = FeatureTransform.from_spec(spec, train_t)
    start = time.perf_counter()
    base = xgb_params(spec, device, overrides)
    dtrain, dval = dmatrices(transform, train_t, val_t, spec, int(base.get("max_bin", 256)))
    booster, history = _fit(base, dtrain, dval, rounds, t.early_stopping_rounds)
    spec_model, best, best_params, best_hist = booster, booster, base, history
    done: list[dict[str, Any]] = [{"trial": 0, "params": _public(base), "score": float(booster.best_score)}]
    y_val = labels(val_t, spec)
    n_pos = int(y_val.sum())
    se = auc_standard_error(float(booster.best_score), n_pos, len(y_val) - n_pos)
    rng = np.random.default_rng(spec.seed)
    for i in range(1, n_trials + 1):
        if time.perf_counter() - start > budget:
            log.info("tuning stopped after %d trial(s): %.0f s budget spent", i - 1, budget)
            break
        # an override (a manual run's xgb_params) is kept in every trial: the search is around it
        params = xgb_params(spec, device, {**_trial_params(rng), **(overrides or {})})
        cand, hist = _fit(params, dtrain, dval, rounds, t.early_stopping_rounds, deadline=start + budget)
        trial = {"trial": i, "params": _public(params), "score": float(cand.best_score)}
        if time.perf_counter() - start > budget:
            trial["stopped"] = (
                f"time budget ({budget:.0f} s) spent after {cand.num_boosted_rounds()} round(s)"
            )
        done.append(trial)
        if cand.best_score > best.best_score:
            best, best_params, best_hist = cand, params, hist
    if n_trials:
        # a trial replaces the spec's params only when it beats them by more than the standard
        # error of the validation AUC: on a few hundred validation rows the best of 20 trials is
        # mostly the luckiest (docs/benchmarks.md, "First model")
        gain = float(best.best_score) - float(spec_model.best_score)
        chosen = max(done, key=lambda d: d["score"]) if gain > se else done[0]
        if chosen is done[0] and best is not spec_model:
            best, best_params, best_hist = spec_model, base, history
        chosen["selected"] = (
            f"validation AUC {chosen['score']:.4f}: "
            + (f"+{gain:.4f} over the spec's params" if chosen is not done[0] else "the spec's params")
            + f" (best trial +{gain:.4f}; the validation AUC's standard error is {se:.4f})"
        )
    return TrainResult(
        booster=best,
        transform=transform,
        params=best_params,
        num_boost_round=rounds,
        best_iteration=int(best.best_iteration),
        best_score=float(best.best_score),
        device=device,
        seconds=time.perf_counter() - start,
        history={k: [float(x) for x in v] for k, v in best_hist.items()},
        trials=done if n_trials else [],
    )


def _public(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in ("nthread",)}


# ---- what each feature brings and costs ----------------------------------------------------

FEATURE_COST = "feature_cost.json"
# below this share of the model's mean |contribution| a feature is "of little value"
LOW_IMPORTANCE_SHARE = 0.01


# long: joins four sources of cost per feature into one table
def feature_cost(
    store: Store, spec: DatasetSpec, window: Window, importance: list[dict[str, Any]], train_seconds: float
) -> dict[str, Any]:
    """Per feature, what it brings and what it costs, from what the run already has (no
    retraining per feature):

    - brings: its share of the model's mean |contribution| (``importance``) and its gain;
    - ingest: the GX validation seconds of its column, measured per column by ``run_suite``
      and summed over the window's days (their validation reports), and its share of the read
      + cast time, estimated by its share of the window's Arrow bytes;
    - training: the Arrow bytes of its column in the window, the bytes of its float32 column
      in the training matrix, and an even share of the training time (histogram building is
      linear in the features: an estimate, not a measurement).

    A feature is flagged when the model never uses it (zero gain and contribution) or when it
    brings less than ``LOW_IMPORTANCE_SHARE`` of the importance for at least its fair share
    (1 / features) of the ingest time or the memory."""
    names = spec.feature_names
    imp = {r["feature"]: r for r in importance}
    total_imp = sum(max(float(r.get("mean_abs_contribution", 0.0)), 0.0) for r in importance) or 1.0
    seconds: dict[str, float] = dict.fromkeys(names, 0.0)
    read_cast_s, measured = 0.0, 0
    for p in window.partitions:
        path = store.reports_dir(spec.name, "validation", p.dt) + "/events.json"
        stats = store.read_json(path).get("stats", {}) if store.exists(path) else {}
        per_column = stats.get("column_seconds") or {}
        if per_column:
            measured += 1
            read_cast_s += float(stats.get("read_cast_s") or 0.0)
            for n in names:
                seconds[n] += float(per_column.get(n, 0.0))
    arrow = {n: int(window.table.column(n).nbytes) for n in names}
    total_arrow = sum(arrow.values()) or 1
    fit_rows = window.split("train").num_rows + window.split("validation").num_rows
    total_s = sum(seconds.values()) or 0.0
    fair = 1.0 / len(names)
    rows: list[dict[str, Any]] = []
    flagged: list[dict[str, str]] = []
    for n in names:
        r = imp.get(n, {})
        share = max(float(r.get("mean_abs_contribution", 0.0)), 0.0) / total_imp
        gain = float(r.get("gain", 0.0))
        ingest_share = seconds[n] / total_s if total_s else 0.0
        memory_share = arrow[n] / total_arrow
        row = {
            "feature": n,
            "importance_share": share,
            "gain": gain,
            "ingest_validate_s": round(seconds[n], 4),
            "ingest_read_cast_s_est": round(read_cast_s * memory_share, 4),
            "ingest_share": ingest_share,
            "window_bytes": arrow[n],
            "matrix_bytes": 4 * fit_rows,
            "memory_share": memory_share,
            "train_s_est": round(train_seconds * fair, 4),
        }
        rows.append(row)
        if gain == 0.0 and share == 0.0:
            flagged.append({"feature": n, "reason": "never used by the model (zero gain and contribution)"})
        elif share < LOW_IMPORTANCE_SHARE and max(ingest_share, memory_share) >= fair:
            flagged.append(
                {
                    "feature": n,
                    "reason": f"{share:.2%} of the importance for {ingest_share:.1%} of the validation "
                    f"time and {memory_share:.1%} of the window's memory",
                }
            )
    for f in flagged:
        log.warning("%s feature %s: %s", spec.name, f["feature"], f["reason"])
    return {
        "features": sorted(rows, key=lambda r: -r["importance_share"]),
        "flagged": flagged,
        "totals": {
            "ingest_validate_s": round(total_s, 4),
            "ingest_read_cast_s": round(read_cast_s, 4),
            "days": len(window.partitions),
            "days_measured": measured,
            "window_bytes": sum(arrow.values()),
            "fit_rows": fit_rows,
            "train_seconds": train_seconds,
        },
        "rule": f"flagged: unused, or importance share < {LOW_IMPORTANCE_SHARE} with an ingest or memory "
        f"share >= 1/{len(names)}",
    }
