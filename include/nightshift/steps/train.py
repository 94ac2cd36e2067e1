"""The train stage: a window of labelled days → an XGBoost model, its MLflow run (params,
metrics, lineage, importance, the packaged model, the monitoring reference and the serving-skew
sample). Idempotent per ``run_key``: a retried run finds its finished MLflow run."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from nightshift.backends import Backends, as_backends
from nightshift.spec import DatasetSpec
from nightshift.storage import Store

log = logging.getLogger(__name__)


LINEAGE = "lineage.json"

# exact TreeSHAP costs ~0.6 ms per row at ~500 trees: 5k rows give a stable mean |contribution|
IMPORTANCE_SAMPLE = 5_000


@dataclass
class TrainRequest:
    """What a training run may override (from Params or the CLI); ``None`` = the spec's."""

    as_of: date | None = None
    window_days: int | None = None
    since: date | None = None  # no training day before this one (a retrain after a drift onset)
    params: dict[str, Any] = field(default_factory=dict)
    num_boost_round: int | None = None
    trials: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class TrainResult:
    """A training run: its MLflow run, whether a finished run of the same key was reused (a
    retry), the device it trained on, its window (``nightshift.window``). ``holdout_*`` are
    ``None`` until the gate has scored the holdout (a new run); the gate's verdict has them as
    ``challenger_metrics``."""

    run_id: str
    reused: bool = False
    device: str | None = None
    window: str | None = None
    holdout_roc_auc: float | None = None
    holdout_average_precision: float | None = None
    best_iteration: float | None = None


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"{p}=={version(p)}"
        for p in ("mlflow", "xgboost", "scikit-learn", "numpy", "pandas", "pyarrow", "pydantic", "pyyaml")
    ]


def _code_dir(tmp: Path) -> Path:
    """The modules the packaged model imports (:data:`nightshift.model.CODE`), copied into its
    ``code_paths``: a process without nightshift installed loads and scores it from them."""
    import shutil

    import nightshift
    from nightshift.model import CODE

    src = Path(nightshift.__file__).parent
    dst = tmp / "code" / "nightshift"
    dst.mkdir(parents=True)
    for name in CODE:
        shutil.copy2(src / name, dst / name)
    return dst


def _flat(prefix: str, d: dict[str, Any]) -> dict[str, str]:
    return {f"{prefix}{k}": json.dumps(v) if isinstance(v, (list, dict)) else str(v) for k, v in d.items()}


def train_step(
    backends: Backends | Store,
    spec: DatasetSpec,
    run_key: str,
    request: TrainRequest | None = None,
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Train on the window and log one MLflow run (params, metrics, lineage, model).

    The holdout is not scored here: :func:`gate_step` scores it once with the packaged model
    and logs the run's holdout metrics, ``importance.json`` / ``.png`` and ``feature_cost.json``
    (:func:`_log_holdout`), so a run that is never gated has none of them. Training scores only
    the serving-skew sample and the monitoring reference.

    The first model of a dataset (no champion) is tuned within ``training.tuning``'s budget
    (:func:`nightshift.train.tuning_trials`). A finished run already logged for ``run_key`` is
    returned as is (``reused: True``).
    """
    from nightshift import evaluate as ev
    from nightshift import registry
    from nightshift.train import choose_device, load_window, train

    req = request or TrainRequest()
    b = as_backends(backends)
    store, client = b.store, b.client
    with registry.speaking_errors("starting the training run"):
        exp_id = registry.ensure_experiment(client, spec.name)
        found = registry.find_run(client, exp_id, run_key)
        champion = None if found else registry.alias_version(client, spec.name, registry.CHAMPION)
    if found is not None:
        log.info("run %s already trained by MLflow run %s; reusing it", run_key, found.info.run_id)
        return _train_summary(found, reused=True)

    window = load_window(store, spec, req.as_of, req.window_days, req.since)
    device = choose_device()
    first = champion is None
    result = train(
        spec, window, device, req.params, req.num_boost_round, req.trials, req.timeout_s, first_model=first
    )

    lineage: dict[str, Any] = {
        "dataset": spec.name,
        "as_of": req.as_of.isoformat() if req.as_of else None,
        "since": req.since.isoformat() if req.since else None,
        "window_days": req.window_days or spec.training.window_days,
        "fingerprint": window.fingerprint,
        "split": window.describe(),
        "partitions": [p.to_dict() for p in window.partitions],
        "code_version": registry.code_version(),
        "device": {"name": device.name, "reason": device.reason, "gpus": device.gpus, "host": device.host},
        "run_key": run_key,
        **(tags or {}),
    }
    params = {
        **_flat("xgb.", {k: v for k, v in result.params.items() if k not in ("eval_metric", "nthread")}),
        "model_kind": ev.XGBOOST,
        "num_boost_round": str(result.num_boost_round),
        "early_stopping_rounds": str(spec.training.early_stopping_rounds),
        "tuning_trials": str(len(result.trials)),
        "first_model": str(first),
    }
    metrics = {
        "best_iteration": float(result.best_iteration),
        "validation_auc": result.best_score,
        "train_seconds": result.seconds,
    }
    extra = {"tuning.json": result.trials} if result.trials else {}
    run = _log_model_run(
        client, exp_id, store, spec, window, run_key, result.booster, result.transform, lineage, params,
        metrics, tags=tags, extra=extra, history=result.history,
    )  # fmt: skip
    return _train_summary(run, reused=False)


def _log_model_run(
    client: Any,
    exp_id: str,
    store: Store,
    spec: DatasetSpec,
    window: Any,
    run_key: str,
    model: Any,
    transform: Any,
    lineage: dict[str, Any],
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    run_tags_extra: dict[str, str] | None = None,
    history: dict[str, list[float]] | None = None,
    holdout_scored: tuple[Any, np.ndarray, list[dict[str, Any]]] | None = None,
) -> Any:
    """One MLflow run of a model of either kind (an XGBoost booster or the logistic baseline),
    laid out the same way: params, metrics, split inputs, lineage, the serving-skew sample, the
    monitoring reference and the packaged pyfunc (``model``: the transform + ``booster.ubj`` or
    ``logistic.pkl``). Returns the finished run.

    ``holdout_scored`` = ``(evaluation, scores of every holdout row, importance)`` when the
    caller has already scored the holdout (the gate, for the baseline it fitted): they are
    logged too and the skew sample is taken from those scores. Without it (training) only the
    skew sample's rows are scored, and the gate logs the holdout evidence
    (:func:`_log_holdout`)."""
    import mlflow

    from nightshift import evaluate as ev
    from nightshift import registry
    from nightshift.model import kind_of
    from nightshift.model import predict as model_predict

    kind = kind_of(model)
    holdout = window.split("holdout")
    days = [p.dt for p in window.partitions]
    run_tags = {
        **_run_tags(spec, window, run_key, kind, lineage),
        **{f"nightshift.{k}": str(v) for k, v in (tags or {}).items()},
        **(run_tags_extra or {}),
    }
    all_params = {
        **params,
        "window_days": str(lineage["window_days"]),
        "train_days": str(len(window.days["train"])),
        "validation_days": str(len(window.days["validation"])),
        "holdout_days": str(len(window.days["holdout"])),
        "seed": str(spec.seed),
    }
    split_rows = {k: v["rows"] for k, v in lineage["split"].items()}
    evaluation, scores, importance = holdout_scored or (None, None, None)
    all_metrics = {
        **(_holdout_metrics(evaluation) if evaluation is not None else {}),
        **metrics,
        **{f"{k}_rows": float(v) for k, v in split_rows.items()},
    }
    with registry.speaking_errors("logging the training run"), tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        what = "train" if kind == ev.XGBOOST else "baseline"
        run_name = f"{what} {days[-1]} {run_key.rsplit('/', 1)[-1]}"[:200]
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=run_tags) as run:
            mlflow.log_params(all_params)
            _log_metrics(client, run.info.run_id, all_metrics, history or {})
            _log_inputs(store, spec, window, lineage)
            (tmp / LINEAGE).write_text(json.dumps(lineage, indent=2, default=str))
            if evaluation is not None and importance is not None:
                _write_holdout_evidence(tmp, evaluation, importance)

            def score_sample(rows: Any) -> np.ndarray:
                return model_predict(model, transform, rows)

            sample = ev.skew_sample(spec, holdout, score_sample if scores is None else scores, kind=kind)
            (tmp / ev.SKEW_ARTIFACT).write_text(json.dumps(sample))
            for name, obj in (extra or {}).items():
                (tmp / name).write_text(json.dumps(obj, indent=2))
            _write_reference(spec, window.table, model, transform, tmp / "reference")
            for f in sorted(tmp.iterdir()):
                if f.is_dir():
                    mlflow.log_artifacts(str(f), artifact_path=f.name)
                else:
                    mlflow.log_artifact(str(f))
            info = _log_pyfunc(tmp, model, transform, holdout.slice(0, 5))
            mlflow.set_tag("nightshift.model_id", info.model_id)
    return client.get_run(run.info.run_id)


def _log_metrics(
    client: Any, run_id: str, metrics: dict[str, float], history: dict[str, list[float]]
) -> None:
    """The run's metrics and its per-round validation curves (``round_validation_<metric>``,
    stepped by round), in batches of MLflow's 1,000-metric limit."""
    import mlflow
    from mlflow.entities import Metric

    now = int(mlflow.utils.time.get_current_time_millis())
    logged = [Metric(k, float(v), now, 0) for k, v in metrics.items()] + [
        Metric(f"round_validation_{name}", float(v), now, step)
        for name, values in history.items()
        for step, v in enumerate(values)
    ]
    for i in range(0, len(logged), 1000):
        client.log_batch(run_id, metrics=logged[i : i + 1000])


def _run_tags(
    spec: DatasetSpec, window: Any, run_key: str, kind: str, lineage: dict[str, Any]
) -> dict[str, str]:
    """The run's tags: its key, dataset, model kind, window, code, device and validation."""
    from nightshift import registry

    days = [p.dt for p in window.partitions]
    valid = all(p.validation.get("success") for p in window.partitions)
    return {
        registry.RUN_KEY: run_key,
        "nightshift.dataset": spec.name,
        "nightshift.model_kind": kind,
        "nightshift.window": f"{days[0]}..{days[-1]} ({len(days)} days)",
        "nightshift.window_fingerprint": window.fingerprint,
        "nightshift.code_version": lineage["code_version"],
        "nightshift.device": lineage["device"]["name"],
        "nightshift.device_reason": lineage["device"]["reason"],
        "nightshift.host": lineage["device"]["host"],
        "nightshift.validation": "all passed" if valid else "see lineage.json",
    }


def _log_pyfunc(tmp: Path, model: Any, transform: Any, example_rows: Any) -> Any:
    """Log the packaged model (the transform + ``booster.ubj`` or ``logistic.pkl``, the code it
    loads with, its signature, an input example and pinned requirements) to the active run."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from nightshift import evaluate as ev
    from nightshift.model import BOOSTER, LOGISTIC_ARTIFACT, TRANSFORM, NightshiftModel, kind_of

    transform_path = tmp / "transform.json"
    transform_path.write_text(transform.to_json())
    if kind_of(model) == ev.XGBOOST:
        model_path = tmp / "booster.ubj"
        model.save_model(str(model_path))
        artifacts = {BOOSTER: str(model_path), TRANSFORM: str(transform_path)}
    else:
        model_path = tmp / "logistic.pkl"
        model.save(model_path)
        artifacts = {LOGISTIC_ARTIFACT: str(model_path), TRANSFORM: str(transform_path)}
    signature = ModelSignature(
        inputs=Schema([ColSpec(t, n) for n, t in transform.signature_schema()]),
        outputs=Schema([ColSpec("double", "score")]),
    )
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=NightshiftModel(),
        artifacts=artifacts,
        code_paths=[str(_code_dir(tmp))],
        signature=signature,
        input_example=transform.frame(example_rows),
        pip_requirements=_pip_requirements(),
    )


def _holdout_metrics(evaluation: Any) -> dict[str, float]:
    return {f"holdout_{k}": float(v) for k, v in evaluation.metrics.items() if not np.isnan(v)}


def _write_holdout_evidence(tmp: Path, evaluation: Any, importance: list[dict[str, Any]]) -> None:
    """``evaluation_challenger.json``, ``importance.json`` and ``importance.png`` into ``tmp``."""
    from nightshift.monitor import IMPORTANCE_ARTIFACT

    (tmp / IMPORTANCE_ARTIFACT).write_text(json.dumps(importance, indent=2))
    (tmp / "evaluation_challenger.json").write_text(json.dumps(evaluation.to_dict(), indent=2))
    _importance_plot(importance, tmp / "importance.png")


def _write_reference(spec: DatasetSpec, table: Any, model: Any, transform: Any, directory: Path) -> None:
    """The monitoring reference: a seeded sample of the window, its features and the model's
    score (logged as ``reference/reference.parquet``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshift.model import predict as model_predict
    from nightshift.monitor import SCORE, sample

    rows = sample(table, spec.monitoring.reference_rows, spec.seed)
    scores = model_predict(model, transform, rows)
    ref = rows.select(spec.feature_names).append_column(SCORE, pa.array(scores, pa.float64()))
    directory.mkdir()
    pq.write_table(ref, directory / "reference.parquet")


def _log_inputs(store: Store, spec: DatasetSpec, window: Any, lineage: dict[str, Any]) -> None:
    """Register each split as a run input: its source, the content fingerprint of its days."""
    import hashlib

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    by_day = {p["dt"]: p for p in lineage["partitions"]}
    source = resolve_dataset_source(store.uri(store.path("curated", spec.name)))
    for name, days in window.days.items():
        h = hashlib.sha256("".join(by_day[d.isoformat()]["sha256"] for d in days).encode()).hexdigest()
        ds = MetaDataset(source, name=f"{spec.name}-{name}-{days[0]}..{days[-1]}", digest=h[:16])  # type: ignore[abstract]
        mlflow.log_input(ds, context=name)


def _importance_plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = rows[:20][::-1]
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.barh([r["feature"] for r in top], [r["mean_abs_contribution"] for r in top])
    ax.set_xlabel("mean |contribution| (log-odds, pred_contribs)")
    ax.set_title("Feature contributions on the holdout")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _train_summary(run: Any, reused: bool) -> TrainResult:
    """The train step's result, read from its MLflow run."""
    m, t = run.data.metrics, run.data.tags
    return TrainResult(
        run_id=str(run.info.run_id),
        reused=reused,
        device=t.get("nightshift.device"),
        window=t.get("nightshift.window"),
        holdout_roc_auc=m.get("holdout_roc_auc"),
        holdout_average_precision=m.get("holdout_average_precision"),
        best_iteration=m.get("best_iteration"),
    )
