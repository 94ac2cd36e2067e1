"""Parse-time settings shared by the DAG files: which datasets, default args.

Only the names of ``datasets/*.yaml`` are read here (the spec itself is loaded in the task),
so parsing stays cheap and does not depend on a spec being valid.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from nightshift.airflow.notify import NightshiftNotifier
from nightshift.spec import default_datasets_dir

OWNER = "nightshift"
# registry writes (alias moves) are serialised through this pool of one slot
REGISTRY_POOL = "nightshift_registry"


def dataset_names() -> list[str]:
    """``$NIGHTSHIFT_DATASETS`` (comma-separated) or every ``datasets/*.yaml`` by file name."""
    env = os.environ.get("NIGHTSHIFT_DATASETS")
    if env:
        return [n.strip() for n in env.split(",") if n.strip()]
    return sorted(p.stem for p in Path(default_datasets_dir()).glob("*.yaml"))


def default_args(**overrides: Any) -> dict[str, Any]:
    """Retries with backoff for infrastructure errors; data errors fail without retrying."""
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=int(os.environ.get("NIGHTSHIFT_RETRY_DELAY_S", "60"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": [NightshiftNotifier("failure")],
    }
    args.update(overrides)
    return args
