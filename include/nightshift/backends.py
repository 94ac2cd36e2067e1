"""The backends a step works with, given to it: the store, the MLflow registry, the clock and
where notifications go (docs/architecture.md, "Backends").

Built once per task by the Airflow layer (``nightshift.airflow.store.task_backends``: the store
and the MLflow server from the Airflow connections), once per command by the CLI, or by a
benchmark or a test (:meth:`Backends.local`, or a :class:`Backends` of its own making, e.g.
with a pinned clock). A step reads nothing from the environment: what it needs is here or in
its arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nightshift.settings import Settings, settings

if TYPE_CHECKING:  # pyarrow and mlflow are heavy: imported when a step needs them
    from nightshift.notify import Channels
    from nightshift.storage import Store


def utc_now() -> datetime:
    """The wall clock, as an aware datetime (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backends:
    """What a step reads and writes through. ``client`` connects to ``tracking_uri`` when first
    used; ``notify`` is resolved from the settings when not given (an SMTP setting without
    recipients fails the notification, not the step)."""

    store: Store
    tracking_uri: str
    clock: Callable[[], datetime] = utc_now
    notify: Channels | None = None
    settings: Settings = field(default_factory=settings)

    @functools.cached_property
    def client(self) -> Any:
        """The MLflow client of :attr:`tracking_uri` (mlflow pointed there too)."""
        from nightshift import registry

        return registry.connect(self.tracking_uri)

    @property
    def channels(self) -> Channels:
        from nightshift.notify import Channels

        return self.notify if self.notify is not None else Channels.from_settings(self.settings)

    def now(self) -> datetime:
        return self.clock()

    @classmethod
    def local(
        cls,
        store: Store | str | None = None,
        tracking_uri: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        notify: Channels | None = None,
    ) -> Backends:
        """Backends outside Airflow (the CLI, benchmarks, tests): ``store`` (a URL, default the
        settings' store) and ``tracking_uri`` (default the settings', else the embedded SQLite)."""
        from nightshift import registry
        from nightshift.storage import Store

        if not isinstance(store, Store):
            store = Store(store)
        return cls(store, tracking_uri or registry.tracking_uri(), clock, notify)


def as_backends(given: Backends | Store) -> Backends:
    """``given``, or the local backends around a bare store (what tests and benchmarks pass)."""
    return given if isinstance(given, Backends) else Backends.local(given)
