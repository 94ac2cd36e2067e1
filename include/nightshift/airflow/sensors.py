"""Ingesting a landing batch, waiting for its files without holding a worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferralTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent

from nightshift.airflow.store import store_of
from nightshift.spec import BatchKind, DatasetSpec


def landing_state(
    store_url: str | None,
    conn_id: str | None,
    dataset: str,
    kind: BatchKind,
    dt: date,
    pattern: str = "*",
    marker: str | None = None,
) -> tuple[list[str], str]:
    """The day's landing files (store URIs) once they can be ingested, else ``[]`` and why not:
    no file matches ``pattern`` yet or, with a ``marker`` (``landing.complete_marker``), the
    marker has not landed yet. The same rule as the ingest's (``nightshift.ingest.landing_files``)."""
    from nightshift.ingest import NoLandingData, landing_files

    store = store_of(store_url, conn_id)
    try:
        files = landing_files(store, dataset, kind, dt, pattern, marker)
    except NoLandingData as exc:
        if type(exc) is NoLandingData:
            return [], f"no {kind} files for {dataset} dt={dt.isoformat()} yet"
        return [], str(exc)
    return [store.uri(p) for p in files], ""


class LandingTrigger(BaseTrigger):
    """Polls the store in the triggerer until the day's landing folder has files (and, with a
    ``marker``, the completion marker)."""

    def __init__(
        self,
        dataset: str,
        kind: BatchKind,
        dt: str,
        store_url: str | None = None,
        conn_id: str | None = None,
        poke_interval: float = 30.0,
        pattern: str = "*",
        marker: str | None = None,
    ) -> None:
        super().__init__()
        self.dataset, self.kind, self.dt = dataset, kind, dt
        self.store_url, self.conn_id, self.poke_interval = store_url, conn_id, poke_interval
        self.pattern, self.marker = pattern, marker

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "nightshift.airflow.sensors.LandingTrigger",
            {
                "dataset": self.dataset,
                "kind": self.kind,
                "dt": self.dt,
                "store_url": self.store_url,
                "conn_id": self.conn_id,
                "poke_interval": self.poke_interval,
                "pattern": self.pattern,
                "marker": self.marker,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        day = date.fromisoformat(self.dt)
        while True:
            try:
                files, why = await asyncio.to_thread(
                    landing_state,
                    self.store_url,
                    self.conn_id,
                    self.dataset,
                    self.kind,
                    day,
                    self.pattern,
                    self.marker,
                )
            except Exception as exc:  # a store blip must not kill the wait; log and poll again
                self.log.warning("checking %s %s dt=%s failed: %s", self.dataset, self.kind, self.dt, exc)
                files, why = [], ""
            if files:
                yield TriggerEvent({"status": "found", "files": files})
                return
            if why:
                self.log.info("%s", why)
            await asyncio.sleep(self.poke_interval)


class LandingIngestOperator(BaseOperator):
    """Ingests ``landing/<dataset>/<kind>/dt=<day>/`` (:func:`nightshift.airflow.tasks.ingest.run_ingest`)
    once it can be: at once when files matching the spec's ``landing.pattern`` are there (and,
    when the spec sets ``landing.complete_marker``, that marker), else after waiting for them
    deferred in the triggerer (:class:`LandingTrigger`: no worker slot, no task process while
    it waits). One task per batch, where a sensor before the ingest was one more task process
    and scheduler hop a day for the same check.

    With ``skip_unless_due`` (for labels) the task is skipped at once on days when no labels
    are due: no events landed ``label delay`` days earlier. An empty ``dt`` is the local date,
    in the spec's ``partitioning.timezone``, that the run's data interval starts on. A wait
    that outlasts ``wait_timeout`` fails the task, naming what never landed, without retries
    (as a sensor's timeout does): retrying would only wait as long again.
    """

    template_fields: Sequence[str] = ("dt",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        dataset: str,
        kind: BatchKind,
        dt: str,
        skip_unless_due: bool = False,
        poke_interval: float = 30.0,
        wait_timeout: timedelta = timedelta(hours=12),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset, self.kind, self.dt = dataset, kind, dt
        self.skip_unless_due = skip_unless_due
        self.poke_interval, self.wait_timeout = poke_interval, wait_timeout

    def _spec(self) -> DatasetSpec:
        from nightshift.spec import find_spec

        return find_spec(self.dataset)  # at run time, never at parse time

    def _state(
        self, spec: DatasetSpec, kind: BatchKind, day: date, marker: bool = True
    ) -> tuple[list[str], str]:
        landing = spec.landing
        return landing_state(
            None,
            None,
            self.dataset,
            kind,
            day,
            landing.pattern,
            landing.complete_marker if marker else None,
        )

    def _day(self, context: Context, spec: DatasetSpec) -> date:
        from nightshift.airflow.tasks.ingest import partition_day
        from nightshift.spec import parse_dt

        return parse_dt(self.dt) if self.dt else partition_day(context, spec.partitioning.tz)

    def _ingest(self, context: Context, day: date) -> dict[str, Any]:
        from nightshift.airflow.tasks.ingest import run_ingest

        return run_ingest(self.dataset, self.kind, context, day)

    def execute(self, context: Context) -> dict[str, Any]:
        spec = self._spec()
        day = self._day(context, spec)
        if self.skip_unless_due:
            source_day = day - timedelta(days=spec.label.delay_days)
            # events that landed at all (complete or not) make labels due
            if not self._state(spec, "events", source_day, marker=False)[0]:
                raise AirflowSkipException(
                    f"no labels due for {self.dataset} dt={day}: no events landed on {source_day}"
                )
        files, why = self._state(spec, self.kind, day)
        if files:
            return self._ingest(context, day)
        self.log.info("%s: waiting for them, deferred (at most %s)", why, self.wait_timeout)
        self.defer(
            trigger=LandingTrigger(
                self.dataset,
                self.kind,
                day.isoformat(),
                None,
                None,
                self.poke_interval,
                spec.landing.pattern,
                spec.landing.complete_marker,
            ),
            method_name="execute_complete",
            timeout=self.wait_timeout,
        )
        raise AssertionError("not reached: defer() raises")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        files: list[str] = event["files"]
        self.log.info("found %d %s file(s) for %s", len(files), self.kind, self.dataset)
        spec = self._spec()
        return self._ingest(context, self._day(context, spec))

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout as exc:
            day = self._day(context, self._spec())
            store = store_of()
            where = store.uri(store.landing_dir(self.dataset, self.kind, day))
            raise AirflowFailException(
                f"no {self.kind} files for {self.dataset} dt={day} landed in {where} within "
                f"{self.wait_timeout}; clear the task once they are there"
            ) from exc
