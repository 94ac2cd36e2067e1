"""The retrain stage: the guard rails' decision on an alert (``nightshift.retrain.decide``), on
an alert before a retrain run starts, and on bootstrap (no champion yet) training runs."""

from __future__ import annotations

from typing import Any

from nightshift.backends import Backends, as_backends
from nightshift.monitor import Alert
from nightshift.retrain import RetrainDecision
from nightshift.spec import DatasetSpec
from nightshift.storage import Store


def retrain_decide_step(
    backends: Backends | Store,
    spec: DatasetSpec,
    run_key: str,
    alerts: list[Alert],
    *,
    force: bool = False,
    actor: str = "nightshift-monitor",
    overrides: dict[str, Any] | None = None,
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
) -> RetrainDecision:
    """Apply the guard rails to a run's alerts and record the decision (a retried task gets
    the recorded decision back). Invalid ``overrides`` raise ``ValueError`` before anything
    is recorded."""
    from nightshift import retrain

    b = as_backends(backends)
    found = retrain.find_record(b.store, spec.name, run_key)
    if found is not None:
        return found
    decision = _guard_rails(
        b,
        spec,
        run_key,
        alerts,
        force=force,
        actor=actor,
        overrides=overrides,
        triggered_by=triggered_by,
        on_behalf_of=on_behalf_of,
    )
    retrain.write_record(b.store, decision)
    return decision


def _guard_rails(
    b: Backends, spec: DatasetSpec, run_key: str, alerts: list[Alert], **kw: Any
) -> RetrainDecision:
    """:func:`nightshift.retrain.decide` on the store's records and days and the champion."""
    from nightshift import registry, retrain
    from nightshift.train import labelled_days, quarantined_days

    store = b.store
    champion = registry.alias_version(b.client, spec.name, registry.CHAMPION)
    return retrain.decide(
        spec,
        run_key,
        alerts,
        retrain.read_records(store, spec.name),
        champion,
        labelled_days(store, spec),
        quarantined_days(store, spec),
        now=b.now(),
        **kw,
    )


def alert_guard_step(
    backends: Backends | Store,
    spec: DatasetSpec,
    run_key: str,
    alert: Alert,
    *,
    triggered_by: str | None = None,
) -> RetrainDecision | None:
    """The guard rails on a new alert before it starts a retrain run: ``None`` when they would
    retrain (the alert's event starts ``nightshift_retrain``, which decides again and records);
    else the skip, recorded under ``run_key`` (the alerting run's) with its reason and checks as
    the retrain run would have recorded it, so that no run is started only to skip. A retried
    task gets its recorded skip back."""
    from nightshift import retrain

    b = as_backends(backends)
    found = retrain.find_record(b.store, spec.name, run_key)
    if found is not None:
        return found
    decision = _guard_rails(b, spec, run_key, [alert], triggered_by=triggered_by)
    if decision.ran:
        return None
    retrain.write_record(b.store, decision)
    return decision


def bootstrap_decide_step(
    backends: Backends | Store, spec: DatasetSpec, run_key: str, *, triggered_by: str | None = None
) -> RetrainDecision:
    """The bootstrap guard rail for an automatic training run while there is no champion
    (:func:`nightshift.retrain.decide_bootstrap`), recorded once per run (a retried task gets
    the recorded decision back)."""
    from nightshift import retrain
    from nightshift.train import labelled_days

    b = as_backends(backends)
    store = b.store
    found = retrain.find_record(store, spec.name, run_key, retrain.BOOTSTRAP)
    if found is not None:
        return found
    decision = retrain.decide_bootstrap(
        spec,
        run_key,
        retrain.read_records(store, spec.name, retrain.BOOTSTRAP),
        labelled_days(store, spec),
        triggered_by=triggered_by,
        now=b.now(),
    )
    retrain.write_record(store, decision, retrain.BOOTSTRAP)
    return decision
