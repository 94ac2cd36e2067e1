"""The score stage's task body: the days to score, after their labels being validated."""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowSkipException

from nightshift.airflow.assets import triggering_events
from nightshift.airflow.errors import map_errors
from nightshift.airflow.store import task_backends
from nightshift.airflow.xcom import to_xcom
from nightshift.spec import DatasetSpec, find_spec, parse_dt

if TYPE_CHECKING:
    from nightshift.storage import Store


log = logging.getLogger(__name__)


def _days_to_score(context: Context) -> list[date] | None:
    p = context.get("params") or {}
    if p.get("dt"):
        return [parse_dt(str(p["dt"]))]
    days: list[date] = []
    for ev in triggering_events(context):
        dt = (getattr(ev, "extra", None) or {}).get("dt")
        if dt and parse_dt(str(dt)) not in days:
            days.append(parse_dt(str(dt)))
    return days or None


# how long a scoring of new curated days waits for the same days' labels being ingested
LABELS_WAIT_S = 60.0


def await_labels(
    store: Store,
    spec: DatasetSpec,
    days: list[date],
    timeout_s: float = LABELS_WAIT_S,
    purpose: str = "scoring",
) -> None:
    """Wait (at most ``timeout_s``, polling each second) while the labels arriving on ``days``
    are being ingested (:func:`nightshift.ingest.labels_in_flight`). For a scoring: the monitor
    run that its *predictions* event starts then reads them, and they need no monitor run of
    their own (:func:`nightshift.airflow.tasks.ingest.labels_monitored_later`); past the bound the
    scoring goes on and the labels start their own monitor run, as they would have. For an
    automatic training run: its window includes them, so the gate finds the window it trained
    on (else it refuses the candidate: the window changed)."""
    import time

    from nightshift.ingest import labels_in_flight

    deadline = time.monotonic() + timeout_s
    waiting = [d for d in days if labels_in_flight(store, spec, d)]
    if waiting:
        log.info("%s: waiting for the labels of %s being ingested", spec.name, ", ".join(map(str, waiting)))
    while waiting and time.monotonic() < deadline:
        time.sleep(1.0)
        waiting = [d for d in waiting if labels_in_flight(store, spec, d)]
    if waiting:
        late = ", ".join(map(str, waiting))
        log.warning("%s: labels of %s not validated after %.0f s: %s", spec.name, late, timeout_s, purpose)


@map_errors(data=(FileNotFoundError,))
def run_score(dataset: str, context: Context, asset: Asset) -> dict[str, Any]:
    """Score the days named by the triggering curated events (or ``params.dt``); on a new
    champion or a bare trigger, the recent curated days that have no predictions yet. Days of
    curated events first wait (bounded) for their labels being ingested (:func:`await_labels`),
    so that a night is monitored once. A day that was never curated fails the task at once."""
    from nightshift.score import unscored_days
    from nightshift.steps.score import score_step

    spec, b = find_spec(dataset), task_backends()
    store = b.store
    days = _days_to_score(context)
    if days is None:
        days = unscored_days(store, spec)
    elif not (context.get("params") or {}).get("dt"):
        await_labels(store, spec, days)
    if not days:
        raise AirflowSkipException(f"{dataset}: every recent curated day already has predictions")
    result = score_step(b, spec, days)
    if result.champion is None:
        raise AirflowSkipException(
            f"{dataset}: no champion model yet, nothing scored ({', '.join(d.isoformat() for d in days)}); "
            f"train and promote one (nightshift_train.{dataset})"
        )
    extra: dict[str, Any] = {"version": result.champion, "days": result.days}
    context["outlet_events"][asset].extra = extra
    return to_xcom(result)
