"""The model plane's steps as plain functions: train → gate → decide, and score.

DAG tasks, the CLI and the benchmarks call these; each step is idempotent for a given
``run_key`` (the orchestrator's run), so an at-least-once retry finds what the first attempt
finished instead of doing it twice.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from nightshift.spec import DatasetSpec, parse_dt, partition_bounds
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
    store: Store,
    spec: DatasetSpec,
    run_key: str,
    request: TrainRequest | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
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
    client = registry.configure()
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
    from mlflow.entities import Metric
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from nightshift import evaluate as ev
    from nightshift import registry
    from nightshift.model import BOOSTER, LOGISTIC_ARTIFACT, TRANSFORM, NightshiftModel, kind_of
    from nightshift.model import predict as model_predict

    kind = kind_of(model)
    holdout = window.split("holdout")
    days = [p.dt for p in window.partitions]
    run_tags = {
        registry.RUN_KEY: run_key,
        "nightshift.dataset": spec.name,
        "nightshift.model_kind": kind,
        "nightshift.window": f"{days[0]}..{days[-1]} ({len(days)} days)",
        "nightshift.window_fingerprint": window.fingerprint,
        "nightshift.code_version": lineage["code_version"],
        "nightshift.device": lineage["device"]["name"],
        "nightshift.device_reason": lineage["device"]["reason"],
        "nightshift.host": lineage["device"]["host"],
        "nightshift.validation": "all passed"
        if all(p.validation.get("success") for p in window.partitions)
        else "see lineage.json",
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
            now = int(mlflow.utils.time.get_current_time_millis())
            logged = [Metric(k, float(v), now, 0) for k, v in all_metrics.items()] + [
                Metric(f"round_validation_{name}", float(v), now, step)
                for name, values in (history or {}).items()
                for step, v in enumerate(values)
            ]
            for i in range(0, len(logged), 1000):
                client.log_batch(run.info.run_id, metrics=logged[i : i + 1000])
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
            transform_path = tmp / "transform.json"
            transform_path.write_text(transform.to_json())
            if kind == ev.XGBOOST:
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
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=NightshiftModel(),
                artifacts=artifacts,
                code_paths=[str(_code_dir(tmp))],
                signature=signature,
                input_example=transform.frame(holdout.slice(0, 5)),
                pip_requirements=_pip_requirements(),
            )
            mlflow.set_tag("nightshift.model_id", info.model_id)
    return client.get_run(run.info.run_id)


def _holdout_metrics(evaluation: Any) -> dict[str, float]:
    return {f"holdout_{k}": float(v) for k, v in evaluation.metrics.items() if not np.isnan(v)}


def _write_holdout_evidence(tmp: Path, evaluation: Any, importance: list[dict[str, Any]]) -> None:
    """``evaluation_challenger.json``, ``importance.json`` and ``importance.png`` into ``tmp``."""
    from nightshift.monitor import IMPORTANCE_ARTIFACT

    (tmp / IMPORTANCE_ARTIFACT).write_text(json.dumps(importance, indent=2))
    (tmp / "evaluation_challenger.json").write_text(json.dumps(evaluation.to_dict(), indent=2))
    _importance_plot(importance, tmp / "importance.png")


def _log_holdout(
    client: Any, store: Store, spec: DatasetSpec, window: Any, run_id: str, evaluation: Any, model: Any
) -> None:
    """The holdout evidence of a trained run, logged by the gate from its one scoring of the
    holdout (``evaluation``, by the packaged model): the ``holdout_*`` metrics,
    ``evaluation_challenger.json``, the feature importance (``importance.json`` / ``.png``: mean
    |contribution| of the packaged booster on the first :data:`IMPORTANCE_SAMPLE` holdout rows)
    and ``feature_cost.json``. Logged again, with the same values, by a retried gate."""
    import mlflow
    from mlflow.entities import Metric

    from nightshift import evaluate as ev
    from nightshift import registry
    from nightshift.train import FEATURE_COST, feature_cost

    packaged = model.unwrap_python_model()
    holdout = window.split("holdout")
    importance = ev.importance(packaged.model, packaged.transform, holdout.slice(0, IMPORTANCE_SAMPLE))
    with (
        registry.speaking_errors(f"logging the holdout evaluation of run {run_id}"),
        tempfile.TemporaryDirectory() as tmp_s,
    ):
        tmp = Path(tmp_s)
        train_seconds = float(client.get_run(run_id).data.metrics.get("train_seconds", 0.0))
        cost = feature_cost(store, spec, window, importance, train_seconds)
        (tmp / FEATURE_COST).write_text(json.dumps(cost, indent=2))
        _write_holdout_evidence(tmp, evaluation, importance)
        now = int(mlflow.utils.time.get_current_time_millis())
        metrics = [Metric(k, v, now, 0) for k, v in _holdout_metrics(evaluation).items()]
        if metrics:
            client.log_batch(run_id, metrics=metrics)
        client.log_artifacts(run_id, str(tmp))


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


def _train_summary(run: Any, reused: bool) -> dict[str, Any]:
    """The train step's XCom. ``holdout_*`` are ``None`` until the gate has scored the holdout
    (a new run); the gate's summary has them as ``challenger_metrics``."""
    m, t = run.data.metrics, run.data.tags
    return {
        "run_id": run.info.run_id,
        "reused": reused,
        "device": t.get("nightshift.device"),
        "window": t.get("nightshift.window"),
        "holdout_roc_auc": m.get("holdout_roc_auc"),
        "holdout_average_precision": m.get("holdout_average_precision"),
        "best_iteration": m.get("best_iteration"),
    }


def gate_step(store: Store, spec: DatasetSpec, run_id: str, run_key: str) -> dict[str, Any]:
    """Evaluate challenger, champion and baseline on the run's holdout; log the verdict;
    register the candidate (found again on a retry). Returns the verdict summary.

    The challenger's holdout is scored once, here, by its packaged model: that evaluation is
    judged and logged to the challenger's run as its holdout evidence (:func:`_log_holdout`:
    ``holdout_*`` metrics, importance, feature cost), which training leaves to the gate.

    When the XGBoost challenger does not beat the logistic baseline (overall or on a slice,
    :func:`nightshift.evaluate.baseline_competes`), the baseline competes: the very model the
    gate just fitted is logged as a run of its own (run key ``<run_key>#baseline``, packaged
    like any model), loaded back and judged by the same gate (serving skew included); if it
    passes, it is the version registered (``model_kind: logistic``), else the XGBoost one."""
    import mlflow
    import mlflow.pyfunc

    from nightshift import evaluate as ev
    from nightshift import registry
    from nightshift.features import FeatureTransform, labels
    from nightshift.train import load_window

    client = registry.configure()
    with registry.speaking_errors(f"reading run {run_id}"):
        lineage = mlflow.artifacts.load_dict(f"runs:/{run_id}/{LINEAGE}")
    as_of = parse_dt(lineage["as_of"]) if lineage.get("as_of") else None
    since = parse_dt(lineage["since"]) if lineage.get("since") else None
    window = load_window(store, spec, as_of, lineage["window_days"], since)
    if window.fingerprint != lineage["fingerprint"]:
        raise registry.RegistryError(
            f"the training window of run {run_id} changed since it was trained (a partition was "
            f"re-ingested or labels landed): fingerprint {window.fingerprint[:12]} != "
            f"{lineage['fingerprint'][:12]}; re-run training"
        )
    holdout, train_t = window.split("holdout"), window.split("train")
    y = labels(holdout, spec)

    with registry.speaking_errors(f"loading the challenger of run {run_id}"):
        model = registry.load_pyfunc(f"runs:/{run_id}/model")
        recorded = ev.load_skew_sample(run_id)
    transform = FeatureTransform.from_spec(spec, train_t)
    frame = transform.frame(holdout)
    # the one scoring of the challenger's holdout (training leaves it to the gate)
    challenger = ev.evaluate("challenger", holdout, y, np.asarray(model.predict(frame)), spec)
    _log_holdout(client, store, spec, window, run_id, challenger, model)

    champ_version = registry.alias_version(client, spec.name, registry.CHAMPION)
    champion = None
    if champ_version is not None:
        champ_model = registry.load_model(spec.name, champ_version)
        champion = ev.evaluate(
            "champion", holdout, y, np.asarray(champ_model.predict(frame)), spec, version=champ_version
        )
    logistic = ev.baseline_fit(transform, train_t, labels(train_t, spec), spec.seed)
    p_base = logistic.predict(transform.matrix(holdout))
    baseline = ev.evaluate("baseline", holdout, y, p_base, spec)
    skew = ev.serving_skew(model, holdout, spec, recorded)
    verdict = ev.gate(spec.gate, challenger, champion, baseline, skew=skew)

    final, winner_run, winner_eval = verdict, run_id, challenger
    if ev.baseline_competes(spec.gate, verdict):
        base_run = _baseline_run(client, store, spec, window, run_id, run_key, lineage, logistic, transform,
                                 baseline, p_base)  # fmt: skip
        with registry.speaking_errors(f"loading the logistic baseline of run {base_run}"):
            base_model = registry.load_pyfunc(f"runs:/{base_run}/model")
            base_recorded = ev.load_skew_sample(base_run)
        candidate = ev.evaluate("challenger", holdout, y, np.asarray(base_model.predict(frame)), spec)
        base_skew = ev.serving_skew(base_model, holdout, spec, base_recorded)
        judged = ev.gate(spec.gate, candidate, champion, baseline, skew=base_skew, kind=ev.LOGISTIC)
        final = ev.compete(spec.gate, verdict, judged, challenger, candidate)
        own = ev.Verdict.from_dict({**verdict.to_dict(), "competition": final.competition})
        judged.competition = final.competition
        competitor = ev.Evaluation.from_dict({**challenger.to_dict(), "name": "xgboost"})
        _log_verdict(client, spec, base_run, [candidate, champion, competitor], judged)
        _log_verdict(client, spec, run_id, [challenger, champion, baseline], own)
        if final.model_kind == ev.LOGISTIC:
            winner_run, winner_eval = base_run, candidate
    else:
        _log_verdict(client, spec, run_id, [challenger, champion, baseline], verdict)
    review = ev.needs_review(spec.gate, final)
    if review:
        with registry.speaking_errors(f"logging the review of run {winner_run}"):
            client.set_tag(winner_run, "nightshift.review", review[:4900])
    _log_serving_sample(client, spec, winner_run, holdout, model if winner_run == run_id else base_model)
    version = registry.register(client, spec.name, winner_run, run_key)
    name = registry.model_name(spec.name)
    with registry.speaking_errors(f"tagging v{version}"):
        client.set_model_version_tag(
            name, version, "nightshift.verdict", "promote" if final.promote else "reject"
        )
        client.set_model_version_tag(name, version, "nightshift.model_kind", final.model_kind)
        if final.competition is not None:
            client.set_model_version_tag(
                name, version, "nightshift.competition", json.dumps(final.competition)
            )
    return {
        "run_id": winner_run,
        "challenger_run_id": run_id,
        "version": version,
        "model_kind": final.model_kind,
        "promote": final.promote,
        "reason": final.reason,
        "competition": final.competition,
        "hints": final.hints,
        "first_model": final.first_model,
        "deltas": {k: v for k, v in final.deltas.items() if not np.isnan(v)},
        "champion": champ_version,
        "metrics": {k: v for k, v in winner_eval.metrics.items() if not np.isnan(v)},
        # the XGBoost challenger's own, = its run's holdout_* metrics (``metrics`` are the winner's)
        "challenger_metrics": {k: v for k, v in challenger.metrics.items() if not np.isnan(v)},
        "champion_metrics": {k: v for k, v in champion.metrics.items() if not np.isnan(v)}
        if champion
        else {},
        "failed_checks": [c.name for c in final.failed],
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in final.checks],
        "slices": _slice_table(spec, winner_eval, champion),
        "review": review,
        "links": registry.ui_links(spec.name, run_id=winner_run, version=version),
    }


def _log_serving_sample(client: Any, spec: DatasetSpec, run_id: str, holdout: Any, model: Any) -> None:
    """The serving check's sample on the candidate's run (``gate/serving_sample.json``): its
    input example and holdout rows with the scores its packaged ``model`` gives them here."""
    from nightshift import registry
    from nightshift import servecheck as sc

    sample = sc.build_sample(spec, holdout, model)
    with (
        registry.speaking_errors(f"logging the serving sample of run {run_id}"),
        tempfile.TemporaryDirectory() as tmp,
    ):
        path = Path(tmp) / sc.SAMPLE_ARTIFACT
        path.write_text(json.dumps(sample))
        client.log_artifact(run_id, str(path), artifact_path="gate")


def serving_check_step(spec: DatasetSpec, verdict: dict[str, Any]) -> dict[str, Any]:
    """The gate's serving check (:mod:`nightshift.servecheck`) on the version the gate
    registered: its result joins the verdict (a failure rejects the candidate, with the reason),
    the run (``gate/serving.json``) and the version's tags (``nightshift.serving``). Not run on a
    candidate the gate rejected outright (one a review may still approve is checked).

    Raises :class:`nightshift.registry.RegistryUnavailable` and
    :class:`nightshift.servecheck.ServingCheckError` (retry), or
    :class:`nightshift.registry.RegistryError` for a run without a serving sample."""
    import os

    import mlflow

    from nightshift import registry
    from nightshift import servecheck as sc

    if not verdict["promote"] and not verdict.get("review"):
        return sc.not_run(verdict, "the gate rejected the candidate")
    client = registry.configure()
    version, run_id = str(verdict["version"]), str(verdict["run_id"])
    name = registry.model_name(spec.name)
    registry.get_version(client, spec.name, version)  # it exists; the registry answers
    with registry.speaking_errors(f"reading the serving sample of run {run_id}"):
        logged = {a.path for a in client.list_artifacts(run_id, "gate")}
        if f"gate/{sc.SAMPLE_ARTIFACT}" not in logged:
            raise registry.RegistryError(
                f"run {run_id} has no gate/{sc.SAMPLE_ARTIFACT} (gated before the serving check "
                "existed): run the DAG again"
            )
        sample = mlflow.artifacts.load_dict(f"runs:/{run_id}/gate/{sc.SAMPLE_ARTIFACT}")
    # the fresh server reads the same registry as this process, whatever set it here
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri()}
    result = sc.serving_check(spec, version, sample, env=env)
    with (
        registry.speaking_errors(f"recording the serving check of {name} v{version}"),
        tempfile.TemporaryDirectory() as tmp,
    ):
        path = Path(tmp) / sc.RESULT_ARTIFACT
        path.write_text(json.dumps(result.to_dict(), indent=2))
        client.log_artifact(run_id, str(path), artifact_path="gate")
        client.set_model_version_tag(
            name, version, "nightshift.serving", "passed" if result.passed else "failed"
        )
        if not result.passed:
            client.set_model_version_tag(name, version, "nightshift.verdict", "reject")
    return sc.apply(verdict, result)


def _log_verdict(client: Any, spec: DatasetSpec, run_id: str, evaluations: list[Any], verdict: Any) -> None:
    """The gate's evidence on a run: calibration plot, evaluations, HTML report, the verdict
    (``gate/``), the other models' metrics and the deltas, and the verdict tags."""
    import mlflow
    from mlflow.entities import Metric

    from nightshift import evaluate as ev
    from nightshift import registry

    evals = [e for e in evaluations if e is not None]
    with (
        registry.speaking_errors(f"logging the verdict of run {run_id}"),
        tempfile.TemporaryDirectory() as tmp_s,
    ):
        tmp = Path(tmp_s)
        ev.calibration_plot(evals, tmp / "calibration.png")
        (tmp / "evaluation.json").write_text(json.dumps([e.to_dict() for e in evals], indent=2))
        (tmp / "evaluation.html").write_text(ev.report_html(spec, evals, verdict))
        (tmp / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2))
        client.log_artifacts(run_id, str(tmp), artifact_path="gate")
        now = int(mlflow.utils.time.get_current_time_millis())
        gate_metrics = [
            Metric(f"{e.name}_{k}", v, now, 0)
            for e in evals
            if e.name != "challenger"
            for k, v in e.metrics.items()
            if k in ev.HIGHER_IS_BETTER and not np.isnan(v)
        ] + [Metric(f"delta_{k}", v, now, 0) for k, v in verdict.deltas.items() if not np.isnan(v)]
        if gate_metrics:
            client.log_batch(run_id, metrics=gate_metrics)
        client.set_tag(run_id, "nightshift.verdict", "promote" if verdict.promote else "reject")
        client.set_tag(run_id, "nightshift.verdict_reason", verdict.reason[:4900])


def _baseline_run(
    client: Any,
    store: Store,
    spec: DatasetSpec,
    window: Any,
    run_id: str,
    run_key: str,
    lineage: dict[str, Any],
    logistic: Any,
    transform: Any,
    baseline: Any,
    p_base: np.ndarray,
) -> str:
    """The MLflow run of the logistic baseline competing with ``run_id`` (created once: a
    retried gate finds it by its run key ``<run_key>#baseline``)."""
    import socket

    from nightshift import evaluate as ev
    from nightshift import registry

    key = f"{run_key}#baseline"
    with registry.speaking_errors("looking up the baseline run"):
        exp_id = registry.ensure_experiment(client, spec.name)
        found = registry.find_run(client, exp_id, key)
    if found is not None:
        return str(found.info.run_id)
    holdout = window.split("holdout")
    importance = ev.importance(logistic, transform, holdout.slice(0, IMPORTANCE_SAMPLE))
    host = socket.gethostname()
    base_lineage = {
        **lineage,
        "run_key": key,
        "model_kind": ev.LOGISTIC,
        "competed_with": run_id,
        "device": {
            "name": "cpu",
            "reason": "the logistic baseline is fitted by the gate, on CPU",
            "gpus": 0,
            "host": host,
        },
    }
    params = {"model_kind": ev.LOGISTIC, "logistic.fit_days": "train", "logistic.max_iter": "500"}
    tags: dict[str, str] = {k: str(lineage[k]) for k in ("dag_id", "run_id", "run_type") if k in lineage}
    evaluation = ev.Evaluation.from_dict({**baseline.to_dict(), "name": "challenger"})
    run = _log_model_run(
        client, exp_id, store, spec, window, key, logistic, transform, base_lineage, params, {}, tags=tags,
        run_tags_extra={"nightshift.competed_with": run_id}, holdout_scored=(evaluation, p_base, importance),
    )  # fmt: skip
    return str(run.info.run_id)


def _slice_table(spec: DatasetSpec, challenger: Any, champion: Any) -> list[dict[str, Any]]:
    """Per slice value: rows, positives, the main metric of challenger and champion."""
    m = spec.gate.metric
    out = []
    for col, values in challenger.slices.items():
        for value, sm in values.items():
            c = champion.slices.get(col, {}).get(value, {}).get(m) if champion is not None else None
            v = sm.get(m)
            mine = None if v is None or np.isnan(v) else float(v)
            theirs = None if c is None or np.isnan(c) else float(c)
            row: dict[str, Any] = {"slice": f"{col}={value}", "rows": int(sm["rows"])}
            row.update(positives=int(sm["positives"]), challenger=mine, champion=theirs)
            if mine is not None and theirs is not None:
                row["delta"] = mine - theirs
            out.append(row)
    return out


def decide_step(
    store: Store,
    spec: DatasetSpec,
    gate_result: dict[str, Any],
    actor: str,
    trigger: str,
    review: dict[str, Any] | None = None,
    *,
    triggered_by: str | None = None,
    run_key: str | None = None,
) -> dict[str, Any]:
    """Promote the challenger if the gate said so, else record the rejection. A human
    ``review`` of a borderline verdict (``decision``: approve/reject, ``by``, ``comment``)
    decides instead of the gate, and is recorded with the approver as the actor.

    A verdict is only good against the champion it was compared with (``gate_result
    ["champion"]``): if another version was promoted since (another DAG, while a review
    waited), the promotion is refused and recorded as a rejection saying so."""
    from nightshift import registry

    client = registry.configure()
    promote, reason = bool(gate_result["promote"]), str(gate_result["reason"])
    if review and review.get("decision") in ("approve", "reject"):
        promote = review["decision"] == "approve"
        actor = str(review.get("by") or "unknown")
        verb = {"approve": "approved", "reject": "rejected"}[review["decision"]]
        how = "on timeout (no answer)" if review.get("timed_out") else f"by {actor}"
        comment = f": {review['comment']}" if review.get("comment") else ""
        reason = f"{verb} {how} after review{comment} (gate: {reason})"
    common: dict[str, Any] = {
        "actor": actor,
        "trigger": trigger,
        "deltas": gate_result.get("deltas") or {},
        "run_id": gate_result.get("run_id"),
        "review": review if review and review.get("decision") else None,
        "triggered_by": triggered_by,
        "run_key": run_key,
        "model_kind": gate_result.get("model_kind"),
        "serving": gate_result.get("serving"),
    }
    version = gate_result["version"]
    if not promote:
        return registry.reject(client, store, spec.name, version, reason=reason, **common).to_dict()
    # a verdict from before the champion existed in the XCom carries no "champion": unchecked
    expected = gate_result.get("champion", registry.UNCHECKED)
    try:
        event = registry.promote(
            client, store, spec.name, version, reason=reason, expected_champion=expected, **common
        )
    except registry.ChampionMoved as moved:
        why = f"stale verdict: {moved} (was: {reason})"
        event = registry.reject(client, store, spec.name, version, reason=why, **common)
    return event.to_dict()


def manual_promote_step(
    store: Store,
    spec: DatasetSpec,
    version: str,
    *,
    actor: str,
    trigger: str,
    reason: str,
    override_gate: bool = False,
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
    run_key: str | None = None,
) -> dict[str, Any]:
    """Make ``version`` the champion by hand, after checking it: it exists, is not already the
    champion, its model loads, and the gate did not reject it (unless ``override_gate``).
    Raises :class:`nightshift.registry.RegistryError` naming what is wrong. A retry of the run
    (``run_key``) that already made it the champion only re-records its promotion."""
    from nightshift import registry

    version = str(version).strip().lstrip("v")
    if not version.isdigit() or int(version) < 1:
        raise registry.RegistryError(f"version must be a positive integer, got {version!r}")
    if len(reason.strip()) < 3:
        raise registry.RegistryError("a manual promotion needs a reason (at least 3 characters)")
    client = registry.configure()
    name = registry.model_name(spec.name)
    mv = registry.get_version(client, spec.name, version)
    champion = registry.alias_version(client, spec.name, registry.CHAMPION)
    tags = mv.tags or {}
    if champion == version:
        if not run_key or tags.get("nightshift.promote.run_key") != run_key:
            raise registry.RegistryError(f"{name} v{version} is already the champion")
        # a retry of this run's own promotion (its audit write failed, say): only re-record
        reason = tags.get("nightshift.promote.reason") or reason
        retried = registry.promote(
            client,
            store,
            spec.name,
            version,
            actor=actor,
            trigger=trigger,
            reason=reason,
            run_id=mv.run_id,
            triggered_by=triggered_by,
            on_behalf_of=on_behalf_of,
            run_key=run_key,
        )
        return retried.to_dict()
    blocked = {
        "the gate rejected it": tags.get("nightshift.verdict") == "reject",
        "it was rejected": tags.get("nightshift.status") == "rejected",
        "it was rolled back": tags.get("nightshift.status") == "rolled_back",
    }
    why = "; ".join(k for k, v in blocked.items() if v)
    if why and not override_gate:
        raise registry.RegistryError(
            f"{name} v{version}: {why}; set override_gate=true to promote it anyway (recorded)"
        )
    registry.load_model(spec.name, version)  # refuse a version whose artifact cannot serve
    note = f"manual promotion: {reason.strip()}" + (f" (overriding: {why})" if why else "")
    event = registry.promote(
        client,
        store,
        spec.name,
        version,
        actor=actor,
        trigger=trigger,
        reason=note,
        run_id=mv.run_id,
        triggered_by=triggered_by,
        on_behalf_of=on_behalf_of,
        run_key=run_key,
    )
    return event.to_dict()


def score_step(store: Store, spec: DatasetSpec, days: list[date]) -> dict[str, Any]:
    """Resolve the champion once, pin it, score each day. ``{"champion": None}`` when there is
    no champion yet (nothing is written)."""
    from nightshift import registry
    from nightshift.score import score_partition

    client = registry.configure()
    version = registry.alias_version(client, spec.name, registry.CHAMPION)
    if version is None:
        return {"champion": None, "scored": []}
    model = registry.load_model(spec.name, version)
    scored = [score_partition(store, spec, d, model, version).__dict__ for d in sorted(set(days))]
    return {"champion": version, "scored": scored}


# ---- monitoring and the retraining loop ----------------------------------------------------


@dataclass
class _Reference:
    """What monitoring needs of one model version (loaded once per monitor run)."""

    version: str
    run_id: str
    table: Any
    weights: dict[str, float]
    holdout_auc: float | None


def _reference(client: Any, spec: DatasetSpec, version: str) -> _Reference:
    import mlflow
    import pyarrow.parquet as pq

    from nightshift import registry
    from nightshift.monitor import IMPORTANCE_ARTIFACT, REFERENCE_ARTIFACT, MonitoringError, feature_weights

    with registry.speaking_errors(f"reading the monitoring reference of v{version}"):
        run_id = client.get_model_version(registry.model_name(spec.name), version).run_id
        run = client.get_run(run_id)
        names = {a.path for a in client.list_artifacts(run_id, "reference")}
        if REFERENCE_ARTIFACT not in names:
            raise MonitoringError(
                f"{spec.name} v{version} (run {run_id}) has no monitoring reference "
                f"({REFERENCE_ARTIFACT}): it was trained before monitoring existed; retrain it"
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp
            )
            table = pq.read_table(path)
        importance = None
        if IMPORTANCE_ARTIFACT in {a.path for a in client.list_artifacts(run_id)}:
            importance = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{IMPORTANCE_ARTIFACT}"))
        else:  # the gate logs it: a version registered without one weighs features evenly
            log.warning("%s v%s (run %s) has no %s: drift weighs its features evenly",
                        spec.name, version, run_id, IMPORTANCE_ARTIFACT)  # fmt: skip
    return _Reference(
        version, run_id, table, feature_weights(importance, spec), run.data.metrics.get("holdout_roc_auc")
    )


def _scored(store: Store, spec: DatasetSpec, dt: date) -> tuple[Any, str]:
    """A day's events with the ``score`` column, and the model version that scored them."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from nightshift.monitor import MonitoringError
    from nightshift.score import MODEL_VERSION, SCORE

    preds = pq.read_table(store.open_input(store.predictions_file(spec.name, dt)))
    events = pq.read_table(store.open_input(store.published_file(spec.name, "events", dt)))
    versions = preds.column(MODEL_VERSION).unique().to_pylist()
    same = preds.num_rows == events.num_rows and bool(
        pc.all(pc.equal(preds.column(spec.id_column), events.column(spec.id_column))).as_py()
    )
    if len(versions) != 1 or not same:
        raise MonitoringError(
            f"{spec.name} dt={dt}: predictions do not match the curated partition "
            f"(versions {versions}, {preds.num_rows} vs {events.num_rows} rows); re-score the day"
        )
    return events.append_column(SCORE, preds.column(SCORE)), str(versions[0])


def _day_labels(store: Store, spec: DatasetSpec, dt: date, latest_arrival: date) -> Any | None:
    """The labels of event day ``dt`` when they are due (``None`` before)."""
    from nightshift.train import read_labels

    due = dt + timedelta(days=spec.label.delay_days)
    if due > latest_arrival:
        return None
    paths = [
        store.published_file(spec.name, "labels", dt + timedelta(days=i))
        for i in range(spec.label.delay_days + 1)
    ]
    present = [p for p in paths if store.exists(p)]
    return read_labels(store, spec, present) if present else None


def history_path(store: Store, dataset: str) -> str:
    return store.path("reports", dataset, "monitoring", "history.parquet")


def read_history(store: Store, dataset: str) -> list[dict[str, Any]]:
    """The monitoring history: one row per (day, model version), oldest first."""
    import pyarrow.parquet as pq

    path = history_path(store, dataset)
    if not store.exists(path):
        return []
    return list(pq.read_table(store.open_input(path)).to_pylist())


def _publish(
    store: Store, client: Any, run_id: str, local: Path, directory: str, artifact_path: str, last: str
) -> None:
    """Copy a report folder to the store (each file atomically) and to the version's run,
    except the file ``last`` (the day's summary: written after its metrics, it marks the day
    done), which the caller publishes with :func:`_publish_last`."""
    from nightshift import registry

    for f in sorted(local.iterdir()):
        if f.name != last:
            store.upload_file_atomic(f, f"{directory}/{f.name}")
    with registry.speaking_errors(f"logging monitoring reports to run {run_id}"):
        client.log_artifacts(run_id, str(local), artifact_path=artifact_path)


def _publish_last(store: Store, local: Path, directory: str, last: str) -> None:
    store.upload_file_atomic(local / last, f"{directory}/{last}")


def _day_metric(key: str, value: float, dt: date, tz: tzinfo) -> Any:
    """A metric stepped by the day it describes (days since 1970), timestamped at that day's
    local midnight in ``tz`` (the spec's ``partitioning.timezone``)."""
    from mlflow.entities import Metric

    ts = int(partition_bounds(dt, tz)[0].timestamp() * 1000)
    return Metric(key, float(value), ts, (dt - date(1970, 1, 1)).days)


def _live_metrics(
    drift: dict[str, Any] | None, perf: dict[str, Any] | None, dt: date, tz: tzinfo
) -> list[Any]:
    """The ``live_*`` metrics of a day's drift or performance summary (NaN left out)."""
    out = []
    if drift is not None:
        if drift.get("enough_rows"):
            out.append(_day_metric("live_drift_share", drift["drift_share"], dt, tz))
        out.append(_day_metric("live_prediction_drift", drift["prediction_drift"], dt, tz))
    if perf is not None:
        m = perf["metrics"]
        out += [_day_metric(f"live_{k}", m[k], dt, tz) for k in ("roc_auc", "log_loss", "average_precision")]
        out.append(_day_metric("live_ece", perf["ece"], dt, tz))
    return [x for x in out if x.value is not None and not np.isnan(x.value)]


def _log_live(client: Any, run_id: str, metrics: list[Any], what: str) -> None:
    """Log a day's live metrics (MLflow drops an identical point logged again: idempotent)."""
    from nightshift import registry

    with registry.speaking_errors(f"logging {what} to run {run_id}"):
        client.log_batch(run_id, metrics=metrics)


def monitor_step(store: Store, spec: DatasetSpec, as_of: date | None = None) -> dict[str, Any]:
    """Report every recent scored day not reported yet (drift, data quality) and every day
    whose labels have landed since (performance of the version that scored it); update the
    history table. Idempotent: a (day, version) already reported is not redone. With
    ``as_of``, only what was known on that day: predictions of days up to it, labels that
    arrived by then (a replay of the past).

    A day's summary JSON is written last, after its reports and its MLflow ``live_*`` metrics,
    and the history is derived from the summaries: a summary the history lacks (a run that
    failed before writing the history) has its row rebuilt and its metrics logged again on the
    next run, so a failure anywhere loses nothing."""
    import pyarrow.parquet as pq

    from nightshift import evaluate as ev
    from nightshift import monitor, registry
    from nightshift.features import labels as label_array
    from nightshift.score import SCORE

    client = registry.configure()
    tz = spec.partitioning.tz
    predicted = store.list_partitions(store.path("predictions", spec.name))
    predicted = [d for d in predicted if as_of is None or d <= as_of]
    if not predicted:
        return {
            "drift": [],
            "performance": [],
            "history_rows": len(read_history(store, spec.name)),
            "serving_drift": monitor_served(store, spec, client),
        }
    first = predicted[-1] - timedelta(days=spec.monitoring.lookback_days - 1)
    days = [d for d in predicted if d >= first]
    arrivals = store.list_partitions(store.path("labels", spec.name))
    arrivals = [d for d in arrivals if as_of is None or d <= as_of]
    refs: dict[str, _Reference] = {}
    known = {(r["dt"], str(r["version"])): r for r in read_history(store, spec.name)}
    new_rows: list[dict[str, Any]] = []
    drifted: list[dict[str, Any]] = []
    perfs: list[dict[str, Any]] = []
    recovered: list[dict[str, Any]] = []

    def ref_for(version: str) -> _Reference:  # loaded once per version and monitor run
        if version not in refs:
            refs[version] = _reference(client, spec, version)
        return refs[version]

    def recover(kind: str, path: str, dt: date, version: str) -> None:
        """A day reported before whose history row is missing: rebuild it, re-log its metrics."""
        row = known.get((dt.isoformat(), version)) or {}
        if row.get(f"{kind}_report"):
            return
        summary = store.read_json(path)
        drift_s, perf_s = (summary, None) if kind == "drift" else (None, summary)
        _log_live(client, ref_for(version).run_id, _live_metrics(drift_s, perf_s, dt, tz), f"{kind} of {dt}")
        new_rows.append(monitor.history_row(drift_s, perf_s))
        recovered.append({"dt": dt.isoformat(), "version": version, "kind": kind})

    for dt in days:
        if not store.exists(store.published_file(spec.name, "events", dt)):
            continue
        table: Any = None
        version = _predictions_version(store, spec, dt)
        drift_dir = store.reports_dir(spec.name, "drift", dt)
        drift_summary = f"{drift_dir}/v{version}-summary.json"
        if store.exists(drift_summary):
            recover("drift", drift_summary, dt, version)
        else:
            table, version = _scored(store, spec, dt)
            ref = ref_for(version)
            result, snapshot = monitor.drift(ref.table, table, spec, ref.weights, dt, version)
            last = f"v{version}-summary.json"
            with tempfile.TemporaryDirectory() as tmp_s:
                tmp = Path(tmp_s)
                snapshot.save_html(str(tmp / f"v{version}-drift.html"))
                (tmp / f"v{version}-drift.json").write_text(snapshot.json())
                summary = {**result.to_dict(), "report": store.uri(f"{drift_dir}/v{version}-drift.html")}
                (tmp / last).write_text(json.dumps(summary, indent=2))
                _publish(store, client, ref.run_id, tmp, drift_dir, f"monitoring/dt={dt}", last)
                _log_live(client, ref.run_id, _live_metrics(summary, None, dt, tz), f"drift of {dt}")
                _publish_last(store, tmp, drift_dir, last)
            new_rows.append(monitor.history_row(summary, None))
            drifted.append(
                {
                    "dt": dt.isoformat(),
                    "version": version,
                    "drift_share": result.drift_share,
                    "drifting": result.drifting,
                    "top": result.top(),
                    "report": summary["report"],
                }
            )
        perf_dir = store.reports_dir(spec.name, "performance", dt)
        perf_summary = f"{perf_dir}/v{version}-summary.json"
        if not arrivals:
            continue
        if store.exists(perf_summary):
            recover("performance", perf_summary, dt, version)
            continue
        day_labels = _day_labels(store, spec, dt, arrivals[-1])
        if day_labels is None:
            continue
        if table is None:
            table, version = _scored(store, spec, dt)
        joined = table.join(day_labels, keys=spec.id_column, join_type="inner")
        if joined.num_rows == 0:
            continue
        y = label_array(joined, spec)
        p = np.asarray(joined.column(SCORE).to_numpy(), dtype=np.float64)
        evaluation = ev.evaluate(f"v{version} on {dt}", joined, y, p, spec, version=version)
        ref = ref_for(version)
        summary = {
            "dt": dt.isoformat(),
            "version": version,
            "metrics": evaluation.metrics,
            "ece": monitor.expected_calibration_error(y, p),
            "holdout_roc_auc": ref.holdout_auc,
            "evaluation": evaluation.to_dict(),
            "report": store.uri(f"{perf_dir}/v{version}-performance.html"),
        }
        last = f"v{version}-summary.json"
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            ev.calibration_plot([evaluation], tmp / f"v{version}-calibration.png")
            (tmp / f"v{version}-performance.html").write_text(ev.report_html(spec, [evaluation], None))
            (tmp / last).write_text(json.dumps(summary, indent=2))
            _publish(store, client, ref.run_id, tmp, perf_dir, f"monitoring/dt={dt}", last)
            _log_live(client, ref.run_id, _live_metrics(None, summary, dt, tz), f"performance of {dt}")
            _publish_last(store, tmp, perf_dir, last)
        new_rows.append(monitor.history_row(None, summary))
        m = evaluation.metrics
        perfs.append(
            {"dt": dt.isoformat(), "version": version, "roc_auc": m["roc_auc"], "report": summary["report"]}
        )
    rows = monitor.merge_history(list(known.values()), new_rows)
    if new_rows:
        with store.open_output_atomic(history_path(store, spec.name)) as sink:
            pq.write_table(monitor.history_table(rows), sink)
    return {
        "drift": drifted,
        "performance": perfs,
        "recovered": recovered,
        "history": store.uri(history_path(store, spec.name)),
        "history_rows": len(rows),
        "serving_drift": monitor_served(store, spec, client),
    }


def _predictions_version(store: Store, spec: DatasetSpec, dt: date) -> str:
    import pyarrow.parquet as pq

    from nightshift.score import MODEL_VERSION

    col = pq.read_table(store.open_input(store.predictions_file(spec.name, dt)), columns=[MODEL_VERSION])
    return str(col.column(0)[0].as_py()) if col.num_rows else "unknown"


SERVING_DRIFT = "serving-drift"  # the report topic of served inputs
SERVED_DAY = "day.json"  # written last in a served day's report folder: the parts it covered


def monitor_served(store: Store, spec: DatasetSpec, client: Any) -> list[dict[str, Any]]:
    """Drift of the rows served online (``serving/<dataset>/dt=…/``, the request log of
    ``nightshift serve``) against the reference of each version that answered them, reported
    like a batch day's drift under ``reports/<dataset>/serving-drift/dt=…/`` (and on the
    version's run, ``serving/dt=…``). A day is reported again once parts were added to it
    (``day.json``, written last, names the parts covered). Served days stay out of the history
    table and the alert policy, which follow the batch days. A version without a monitoring
    reference is reported as an error of that day; a store or registry outage raises."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from nightshift import monitor
    from nightshift.score import SCORE
    from nightshift.serve import MODEL_VERSION, serving_dir
    from nightshift.storage import finite

    days = store.list_partitions(store.path("serving", spec.name))
    if not days:
        return []
    first = days[-1] - timedelta(days=spec.monitoring.lookback_days - 1)
    refs: dict[str, _Reference] = {}
    out: list[dict[str, Any]] = []
    for dt in (d for d in days if d >= first):
        parts = store.list_files(serving_dir(store, spec.name, dt), "*.parquet")
        names = [p.rsplit("/", 1)[-1] for p in parts]
        report_dir = store.reports_dir(spec.name, SERVING_DRIFT, dt)
        done = f"{report_dir}/{SERVED_DAY}"
        if not parts or (store.exists(done) and store.read_json(done).get("parts") == names):
            continue
        columns = [*spec.feature_names, SCORE, MODEL_VERSION]
        table = pa.concat_tables(pq.read_table(store.open_input(p), columns=columns) for p in parts)
        versions = sorted({str(v) for v in table.column(MODEL_VERSION).unique().to_pylist()})
        for version in versions:
            rows = table.filter(pc.equal(table.column(MODEL_VERSION), version)).drop_columns([MODEL_VERSION])
            try:
                if version not in refs:
                    refs[version] = _reference(client, spec, version)
            except monitor.MonitoringError as exc:
                out.append(
                    {"dt": dt.isoformat(), "version": version, "rows": rows.num_rows, "error": str(exc)}
                )
                continue
            ref = refs[version]
            result, snapshot = monitor.drift(ref.table, rows, spec, ref.weights, dt, version)
            last = f"v{version}-summary.json"
            with tempfile.TemporaryDirectory() as tmp_s:
                tmp = Path(tmp_s)
                snapshot.save_html(str(tmp / f"v{version}-drift.html"))
                (tmp / f"v{version}-drift.json").write_text(snapshot.json())
                summary = {
                    **result.to_dict(),
                    "source": "serving",
                    "parts": len(parts),
                    "report": store.uri(f"{report_dir}/v{version}-drift.html"),
                }
                (tmp / last).write_text(json.dumps(finite(summary), indent=2))
                _publish(store, client, ref.run_id, tmp, report_dir, f"serving/dt={dt}", last)
                _publish_last(store, tmp, report_dir, last)
            out.append(
                {
                    "dt": dt.isoformat(),
                    "version": version,
                    "rows": result.rows,
                    "drift_share": result.drift_share,
                    "drifting": result.drifting,
                    "top": result.top(),
                    "report": summary["report"],
                }
            )
        store.write_json_atomic(done, {"parts": names, "versions": versions})
    return out


def alert_step(store: Store, spec: DatasetSpec) -> dict[str, Any] | None:
    """The alert policy on the champion's history: an alert (dict) or ``None``."""
    from nightshift import monitor, registry

    client = registry.configure()
    version = registry.alias_version(client, spec.name, registry.CHAMPION)
    if version is None:
        return None
    with registry.speaking_errors(f"reading the holdout AUC of v{version}"):
        run_id = client.get_model_version(registry.model_name(spec.name), version).run_id
        run = client.get_run(run_id)
    holdout, trained = run.data.metrics.get("holdout_roc_auc"), monitor.trained_through(run.data.tags)
    alert = monitor.decide_alert(read_history(store, spec.name), spec, version, holdout, trained)
    return alert.to_dict() if alert else None


def retrain_decide_step(
    store: Store,
    spec: DatasetSpec,
    run_key: str,
    alerts: list[dict[str, Any]],
    *,
    force: bool = False,
    actor: str = "nightshift-monitor",
    overrides: dict[str, Any] | None = None,
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
) -> dict[str, Any]:
    """Apply the guard rails to a run's alerts and record the decision (a retried task gets
    the recorded decision back). Invalid ``overrides`` raise ``ValueError`` before anything
    is recorded."""
    from nightshift import retrain

    found = retrain.find_record(store, spec.name, run_key)
    if found is not None:
        return found.to_dict()
    decision = _guard_rails(
        store,
        spec,
        run_key,
        alerts,
        force=force,
        actor=actor,
        overrides=overrides,
        triggered_by=triggered_by,
        on_behalf_of=on_behalf_of,
    )
    retrain.write_record(store, decision)
    return decision.to_dict()


def _guard_rails(
    store: Store, spec: DatasetSpec, run_key: str, alerts: list[dict[str, Any]], **kw: Any
) -> Any:
    """:func:`nightshift.retrain.decide` on the store's records and days and the champion."""
    from nightshift import registry, retrain
    from nightshift.monitor import Alert
    from nightshift.train import labelled_days, quarantined_days

    champion = registry.alias_version(registry.configure(), spec.name, registry.CHAMPION)
    return retrain.decide(
        spec,
        run_key,
        [Alert.from_dict(a) for a in alerts],
        retrain.read_records(store, spec.name),
        champion,
        labelled_days(store, spec),
        quarantined_days(store, spec),
        **kw,
    )


def alert_guard_step(
    store: Store, spec: DatasetSpec, run_key: str, alert: dict[str, Any], *, triggered_by: str | None = None
) -> dict[str, Any] | None:
    """The guard rails on a new alert before it starts a retrain run: ``None`` when they would
    retrain (the alert's event starts ``nightshift_retrain``, which decides again and records);
    else the skip, recorded under ``run_key`` (the alerting run's) with its reason and checks as
    the retrain run would have recorded it, so that no run is started only to skip. A retried
    task gets its recorded skip back."""
    from nightshift import retrain

    found = retrain.find_record(store, spec.name, run_key)
    if found is not None:
        return found.to_dict()
    decision = _guard_rails(store, spec, run_key, [alert], triggered_by=triggered_by)
    if decision.ran:
        return None
    retrain.write_record(store, decision)
    return dict(decision.to_dict())


def bootstrap_decide_step(
    store: Store, spec: DatasetSpec, run_key: str, *, triggered_by: str | None = None
) -> dict[str, Any]:
    """The bootstrap guard rail for an automatic training run while there is no champion
    (:func:`nightshift.retrain.decide_bootstrap`), recorded once per run (a retried task gets
    the recorded decision back)."""
    from nightshift import retrain
    from nightshift.train import labelled_days

    found = retrain.find_record(store, spec.name, run_key, retrain.BOOTSTRAP)
    if found is not None:
        return found.to_dict()
    decision = retrain.decide_bootstrap(
        spec,
        run_key,
        retrain.read_records(store, spec.name, retrain.BOOTSTRAP),
        labelled_days(store, spec),
        triggered_by=triggered_by,
    )
    retrain.write_record(store, decision, retrain.BOOTSTRAP)
    return decision.to_dict()
