"""Parse-time settings shared by the DAG files: which datasets, default args.

The names of ``datasets/*.yaml`` are read here, and of the ingest DAG's spec only what shapes
the DAG (its schedule's time zone, whether labels are due on the events' own day), as plain
YAML: the spec itself is validated in the task, so parsing stays cheap and does not depend on
a spec being valid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from nightshift.airflow.notify import NightshiftNotifier
from nightshift.airflow.taskstart import log_inherited
from nightshift.settings import settings
from nightshift.spec import default_datasets_dir, zone_of

log = logging.getLogger(__name__)

OWNER = "nightshift"
# registry writes (alias moves) are serialised through this pool of one slot
REGISTRY_POOL = "nightshift_registry"


def dataset_names() -> list[str]:
    """``$NIGHTSHIFT_DATASETS`` (comma-separated) or every ``datasets/*.yaml`` by file name."""
    names = settings().dataset_names
    if names:
        return names
    return sorted(p.stem for p in Path(default_datasets_dir()).glob("*.yaml"))


def ingest_cron() -> str | None:
    """``$NIGHTSHIFT_INGEST_SCHEDULE`` (default ``0 0 * * *``), ``None`` for ``none``."""
    cron = settings().ingest_schedule
    return None if cron.lower() == "none" else cron


@dataclass(frozen=True)
class DagShape:
    """What a dataset's ingest DAG needs from its spec at parse time."""

    timezone: str = "UTC"  # partitioning.timezone: the days the schedule cuts
    label_delay_days: int | None = None  # label.delay_days (None: not readable)


def dag_shape(name: str) -> DagShape:
    """``partitioning.timezone`` and ``label.delay_days`` of ``datasets/<name>.yaml``, read as
    plain YAML. A file that cannot be read, or an unknown zone, gives the defaults (UTC) and a
    warning: the DAG still parses, and its tasks fail on the spec, naming the problem."""
    path = Path(default_datasets_dir()) / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        part = data.get("partitioning") or {}
        zone = str(part.get("timezone") or "UTC")
        zone_of(zone)
        delay = data.get("label", {}).get("delay_days")
        return DagShape(zone, delay if isinstance(delay, int) else None)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, ValueError) as exc:
        log.warning("%s: %s; its ingest DAG is scheduled in UTC until the spec is fixed", path, exc)
        return DagShape()


def default_args(**overrides: Any) -> dict[str, Any]:
    """Retries with backoff for infrastructure errors; data errors fail without retrying. Every
    task logs at its start which heavy libraries it inherited from its worker (the preload)."""
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=settings().retry_delay_s),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": [NightshiftNotifier("failure")],
        "on_execute_callback": [log_inherited],
    }
    args.update(overrides)
    return args
