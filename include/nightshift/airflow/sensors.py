"""Waiting for landing files without holding a worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowSkipException
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


class LandingSensor(BaseSensorOperator):
    """Waits, deferred, for ``landing/<dataset>/<kind>/dt=<day>/`` to have files matching the
    spec's ``landing.pattern`` and, when the spec sets ``landing.complete_marker``, that marker
    (without it the sensor fires on the first matching file).

    With ``skip_unless_due`` (for labels) the task is skipped at once on days when no
    labels are due: no events landed ``label delay`` days earlier. An empty ``dt`` is the
    local date, in the spec's ``partitioning.timezone``, that the run's data interval starts on.
    """

    template_fields: Sequence[str] = ("dt",)

    def __init__(
        self,
        *,
        dataset: str,
        kind: BatchKind,
        dt: str,
        skip_unless_due: bool = False,
        store_url: str | None = None,
        conn_id: str | None = None,
        poke_interval: float = 30.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.deferrable = deferrable
        self.dataset, self.kind, self.dt = dataset, kind, dt
        self.skip_unless_due = skip_unless_due
        self.store_url, self.conn_id = store_url, conn_id

    def _spec(self) -> DatasetSpec:
        from nightshift.spec import find_spec

        return find_spec(self.dataset)  # at run time, never at parse time

    def _state(
        self, spec: DatasetSpec, kind: BatchKind, day: date, marker: bool = True
    ) -> tuple[list[str], str]:
        landing = spec.landing
        return landing_state(
            self.store_url,
            self.conn_id,
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

    def poke(self, context: Context) -> bool:
        spec = self._spec()
        files, why = self._state(spec, self.kind, self._day(context, spec))
        if why:
            self.log.info("%s", why)
        return bool(files)

    def execute(self, context: Context) -> list[str]:
        spec = self._spec()
        day = self._day(context, spec)
        if self.skip_unless_due:
            source_day = day - timedelta(days=spec.label.delay_days)
            # events that landed at all (complete or not) make labels due
            if not self._state(spec, "events", source_day, marker=False)[0]:
                raise AirflowSkipException(
                    f"no labels due for {self.dataset} dt={day}: no events landed on {source_day}"
                )
        files, _ = self._state(spec, self.kind, day)
        if files:
            return files
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=LandingTrigger(
                self.dataset,
                self.kind,
                day.isoformat(),
                self.store_url,
                self.conn_id,
                self.poke_interval,
                spec.landing.pattern,
                spec.landing.complete_marker,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )
        return []  # not reached: defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        files: list[str] = event["files"]
        self.log.info("found %d %s file(s) for %s", len(files), self.kind, self.dataset)
        return files
