"""Waiting for landing files without holding a worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from nightshift.airflow.store import get_store
from nightshift.spec import BatchKind


def landing_files(
    store_url: str | None, conn_id: str | None, dataset: str, kind: BatchKind, dt: date
) -> list[str]:
    """The landing files present for one day (store URIs)."""
    store = get_store(store_url, conn_id)
    return [store.uri(p) for p in store.list_files(store.landing_dir(dataset, kind, dt))]


class LandingTrigger(BaseTrigger):
    """Polls the store in the triggerer until the day's landing folder has files."""

    def __init__(
        self,
        dataset: str,
        kind: BatchKind,
        dt: str,
        store_url: str | None = None,
        conn_id: str | None = None,
        poke_interval: float = 30.0,
    ) -> None:
        super().__init__()
        self.dataset, self.kind, self.dt = dataset, kind, dt
        self.store_url, self.conn_id, self.poke_interval = store_url, conn_id, poke_interval

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
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        day = date.fromisoformat(self.dt)
        while True:
            try:
                files = await asyncio.to_thread(
                    landing_files, self.store_url, self.conn_id, self.dataset, self.kind, day
                )
            except Exception as exc:  # a store blip must not kill the wait; log and poll again
                self.log.warning("checking %s %s dt=%s failed: %s", self.dataset, self.kind, self.dt, exc)
                files = []
            if files:
                yield TriggerEvent({"status": "found", "files": files})
                return
            self.log.info("no %s files for %s dt=%s yet", self.kind, self.dataset, self.dt)
            await asyncio.sleep(self.poke_interval)


class LandingSensor(BaseSensorOperator):
    """Waits, deferred, for ``landing/<dataset>/<kind>/dt=<day>/`` to have files.

    With ``skip_unless_expected`` (for labels) the task is skipped at once on days when no
    labels are due: no events landed ``label delay`` days earlier.
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

    def poke(self, context: Context) -> bool:
        return bool(
            landing_files(self.store_url, self.conn_id, self.dataset, self.kind, date.fromisoformat(self.dt))
        )

    def execute(self, context: Context) -> list[str]:
        day = date.fromisoformat(self.dt)
        if self.skip_unless_due:
            from nightshift.spec import find_spec

            source_day = day - timedelta(days=find_spec(self.dataset).label.delay_days)
            if not landing_files(self.store_url, self.conn_id, self.dataset, "events", source_day):
                raise AirflowSkipException(
                    f"no labels due for {self.dataset} dt={self.dt}: no events landed on {source_day}"
                )
        files = landing_files(self.store_url, self.conn_id, self.dataset, self.kind, day)
        if files:
            return files
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=LandingTrigger(
                self.dataset, self.kind, self.dt, self.store_url, self.conn_id, self.poke_interval
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )
        return []  # not reached: defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        files: list[str] = event["files"]
        self.log.info("found %d %s file(s) for %s dt=%s", len(files), self.kind, self.dataset, self.dt)
        return files
