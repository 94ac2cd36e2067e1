"""Test settings: an Airflow home and a store of the tests' own under .nightshift/test.

Environment is set before anything imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_HOME = ROOT / ".nightshift" / "test"
AIRFLOW_HOME = TEST_HOME / "airflow"

os.environ.update(
    {
        "NIGHTSHIFT_HOME": str(TEST_HOME),
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "NIGHTSHIFT_RETRY_DELAY_S": "1",
    }
)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
TEST_HOME.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def spec() -> Any:
    """The demo dataset's spec (``datasets/payments.yaml``)."""
    from nightshift.spec import load_spec

    return load_spec(ROOT / "datasets" / "payments.yaml")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB for dag.test() (migrated once, then reused)."""
    stamp = AIRFLOW_HOME / ".migrated"
    if not stamp.exists():
        AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            capture_output=True,
            env=os.environ,
        )
        stamp.touch()
    pool_stamp = AIRFLOW_HOME / ".pools"
    if not pool_stamp.exists():
        from nightshift.airflow.dagconfig import REGISTRY_POOL

        subprocess.run(
            [
                sys.executable,
                "-m",
                "airflow",
                "pools",
                "set",
                REGISTRY_POOL,
                "1",
                "nightshift registry writes",
            ],
            check=True,
            capture_output=True,
            env=os.environ,
        )
        pool_stamp.touch()
    return AIRFLOW_HOME
