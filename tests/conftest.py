"""Test settings: an Airflow home and a store of the tests' own under .nightshift/test (each
pytest-xdist worker under .nightshift/test-<worker>).

Environment is set before anything imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelkit import DRIFT_DAYS, MODEL_DAYS, MODEL_ROWS, MODEL_START
from nightshift_dev.env import tests_env

ROOT = Path(__file__).resolve().parents[1]
# under pytest-xdist (`make test` runs two workers) each worker has a home of its own
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
TEST_HOME = ROOT / ".nightshift" / ("test" if not _WORKER else f"test-{_WORKER}")
AIRFLOW_HOME = TEST_HOME / "airflow"

os.environ.update(tests_env(TEST_HOME, ROOT))
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
TEST_HOME.mkdir(parents=True, exist_ok=True)


# the modules that take longest (each starts a stack of its own) go first, so that two workers
# end together instead of one finishing them alone
_HEAVY_FIRST = (
    "tests/system/test_services.py",
    "tests/system/test_retrain_loop.py",
    "tests/system/test_bench_overhead_smoke.py",
    "tests/system/test_replay.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heavy modules first (the order within a module kept)."""

    def rank(item: pytest.Item) -> int:
        path = Path(str(item.fspath)).relative_to(ROOT).as_posix()
        return _HEAVY_FIRST.index(path) if path in _HEAVY_FIRST else len(_HEAVY_FIRST)

    items.sort(key=rank)


@pytest.fixture(autouse=True)
def _process_mlflow_choice() -> Iterator[None]:
    """A test that points this process at an MLflow URI (``registry.use``: the running stack's, an
    Airflow connection's) leaves it to that test: the next one on the same worker starts clean."""
    yield
    registry = sys.modules.get("nightshift.registry")
    if registry is not None:
        registry.use(None)


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


@pytest.fixture(scope="session")
def model_store(spec: Any) -> str:
    """A store with 14 ingested days (4000 rows each; labels 3 days late): enough labelled
    days for the payments training window. Built once per session through the real ingest."""
    import shutil
    from datetime import timedelta

    from nightshift.demo.datagen import Scenario, generate
    from nightshift.ingest import ingest_partition
    from nightshift.storage import Store

    root = TEST_HOME / "model-store"
    shutil.rmtree(root, ignore_errors=True)
    store = Store(root.as_uri())
    generate(store, spec, MODEL_START, MODEL_DAYS, MODEL_ROWS, 7, Scenario())
    for i in range(MODEL_DAYS + spec.label.delay_days):
        day = MODEL_START + timedelta(days=i)
        for kind in ("events", "labels"):
            if store.list_files(store.landing_dir(spec.name, kind, day)):
                ingest_partition(store, spec, kind, day)
    return store.url


@pytest.fixture(scope="session")
def drift_store(model_store: str, spec: Any) -> Path:
    """The model store plus DRIFT_DAYS days with covariate and concept drift, every label
    landed (built once; tests copy it with ``modelkit.copy_store``)."""
    import shutil
    from datetime import timedelta

    from nightshift.demo.datagen import Scenario, write_day
    from nightshift.ingest import ingest_partition
    from nightshift.storage import Store

    root = TEST_HOME / "drift-store"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(Path(Store(model_store).root), root)
    store = Store(root.as_uri())
    for area in ("audit", "predictions"):
        store.delete_dir(store.path(area))
    scenario = Scenario(covariate_drift_from=MODEL_DAYS, concept_drift_from=MODEL_DAYS)
    for i in range(MODEL_DAYS, MODEL_DAYS + DRIFT_DAYS):
        write_day(store, spec, MODEL_START + timedelta(days=i), i, MODEL_ROWS, 7, scenario)
    first = MODEL_START + timedelta(days=MODEL_DAYS)
    for i in range(DRIFT_DAYS + spec.label.delay_days):
        day = first + timedelta(days=i)
        for kind in ("events", "labels"):
            if store.list_files(store.landing_dir(spec.name, kind, day)):
                ingest_partition(store, spec, kind, day)
    return root
