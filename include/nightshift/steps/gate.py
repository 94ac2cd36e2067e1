"""The gate stage: the challenger against the champion and the logistic baseline on the same
holdout (the baseline competing when it wins), the registered candidate, its serving check, and
the decision (promote or reject, audited) — plus a manual promotion. Idempotent per ``run_key``:
a retried gate finds its model version, a retried decision re-records the same audit object."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nightshift.backends import Backends, as_backends
from nightshift.registry import AuditEvent
from nightshift.spec import DatasetSpec, parse_dt
from nightshift.steps.train import (
    IMPORTANCE_SAMPLE,
    LINEAGE,
    _holdout_metrics,
    _log_model_run,
    _write_holdout_evidence,
)
from nightshift.storage import Store
from nightshift.verdict import GateCheck, GateResult, SliceRow


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


# long: challenger, champion, baseline and the baseline's competition judged on one holdout, in order
def gate_step(backends: Backends | Store, spec: DatasetSpec, run_id: str, run_key: str) -> GateResult:
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

    from nightshift import evaluate as ev
    from nightshift import registry
    from nightshift.features import FeatureTransform, labels

    b = as_backends(backends)
    store, client = b.store, b.client
    lineage, window = _trained_window(store, spec, run_id)
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
    version = _register(client, spec, winner_run, run_key, final)
    return GateResult(
        run_id=winner_run,
        challenger_run_id=run_id,
        version=version,
        promote=final.promote,
        reason=final.reason,
        champion=champ_version,
        model_kind=final.model_kind,
        first_model=final.first_model,
        competition=final.competition,
        hints=tuple(final.hints),
        deltas=_finite(final.deltas),
        metrics=_finite(winner_eval.metrics),
        # the XGBoost challenger's own, = its run's holdout_* metrics (``metrics`` are the winner's)
        challenger_metrics=_finite(challenger.metrics),
        champion_metrics=_finite(champion.metrics) if champion else {},
        failed_checks=tuple(c.name for c in final.failed),
        checks=tuple(GateCheck(c.name, c.passed, c.detail) for c in final.checks),
        slices=tuple(_slice_table(spec, winner_eval, champion)),
        review=review,
        links=registry.ui_links(spec.name, run_id=winner_run, version=version),
    )


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if not np.isnan(v)}


def _trained_window(store: Store, spec: DatasetSpec, run_id: str) -> tuple[dict[str, Any], Any]:
    """The run's lineage and its window read again; refused if the window changed since the
    run trained on it (a partition re-ingested, labels landed)."""
    import mlflow

    from nightshift import registry
    from nightshift.train import load_window

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
    return lineage, window


def _register(client: Any, spec: DatasetSpec, run_id: str, run_key: str, final: Any) -> str:
    """Register the winning run (found again on a retry) and tag the version with the verdict,
    the model kind and the competition."""
    from nightshift import registry

    version = registry.register(client, spec.name, run_id, run_key)
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
    return str(version)


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


def serving_check_step(backends: Backends | Store, spec: DatasetSpec, verdict: GateResult) -> GateResult:
    """The gate's serving check (:mod:`nightshift.servecheck`) on the version the gate
    registered: its result joins the verdict (a failure rejects the candidate, with the reason),
    the run (``gate/serving.json``) and the version's tags (``nightshift.serving``). Not run on a
    candidate the gate rejected outright (one a review may still approve is checked).

    Raises :class:`nightshift.registry.RegistryUnavailable` and
    :class:`nightshift.servecheck.ServingCheckError` (retry), or
    :class:`nightshift.registry.RegistryError` for a run without a serving sample."""
    import mlflow

    from nightshift import registry
    from nightshift import servecheck as sc
    from nightshift.settings import child_environment

    if not verdict.promote and not verdict.review:
        return sc.not_run(verdict, "the gate rejected the candidate")
    b = as_backends(backends)
    client, uri = b.client, b.tracking_uri
    version, run_id = verdict.version, verdict.run_id
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
    env = child_environment(MLFLOW_TRACKING_URI=uri)
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


def _slice_table(spec: DatasetSpec, challenger: Any, champion: Any) -> list[SliceRow]:
    """Per slice value: rows, positives, the main metric of challenger and champion."""
    m = spec.gate.metric
    out = []
    for col, values in challenger.slices.items():
        for value, sm in values.items():
            c = champion.slices.get(col, {}).get(value, {}).get(m) if champion is not None else None
            v = sm.get(m)
            mine = None if v is None or np.isnan(v) else float(v)
            theirs = None if c is None or np.isnan(c) else float(c)
            delta = mine - theirs if mine is not None and theirs is not None else None
            out.append(SliceRow(f"{col}={value}", int(sm["rows"]), int(sm["positives"]), mine, theirs, delta))
    return out


def decide_step(
    backends: Backends | Store,
    spec: DatasetSpec,
    gate_result: GateResult,
    actor: str,
    trigger: str,
    review: dict[str, Any] | None = None,
    *,
    triggered_by: str | None = None,
    run_key: str | None = None,
) -> AuditEvent:
    """Promote the challenger if the gate said so, else record the rejection. A human
    ``review`` of a borderline verdict (``decision``: approve/reject, ``by``, ``comment``)
    decides instead of the gate, and is recorded with the approver as the actor.

    A verdict is only good against the champion it was compared with (``gate_result
    .champion``): if another version was promoted since (another DAG, while a review
    waited), the promotion is refused and recorded as a rejection saying so."""
    from nightshift import registry

    b = as_backends(backends)
    store, client = b.store, b.client
    promote, reason = gate_result.promote, gate_result.reason
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
        "deltas": dict(gate_result.deltas),
        "run_id": gate_result.run_id,
        "review": review if review and review.get("decision") else None,
        "triggered_by": triggered_by,
        "run_key": run_key,
        "model_kind": gate_result.model_kind,
        "serving": gate_result.serving,
    }
    version = gate_result.version
    if not promote:
        return registry.reject(client, store, spec.name, version, reason=reason, **common)
    try:
        event = registry.promote(
            client, store, spec.name, version, reason=reason, expected_champion=gate_result.champion, **common
        )
    except registry.ChampionMoved as moved:
        why = f"stale verdict: {moved} (was: {reason})"
        event = registry.reject(client, store, spec.name, version, reason=why, **common)
    return event


def manual_promote_step(
    backends: Backends | Store,
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
) -> AuditEvent:
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
    b = as_backends(backends)
    store, client = b.store, b.client
    name = registry.model_name(spec.name)
    mv = registry.get_version(client, spec.name, version)
    champion = registry.alias_version(client, spec.name, registry.CHAMPION)
    tags = mv.tags or {}
    if champion == version:
        if not run_key or tags.get("nightshift.promote.run_key") != run_key:
            raise registry.RegistryError(f"{name} v{version} is already the champion")
        # a retry of this run's own promotion (its audit write failed, say): only re-record
        note = tags.get("nightshift.promote.reason") or reason
    else:
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
    return registry.promote(
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
