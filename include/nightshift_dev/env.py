"""The Airflow environment of each local stack, in one place.

- :func:`demo_env`: ``make up`` / ``make demo`` (LocalExecutor, SQLite, 127.0.0.1:8080, the MLflow
  server on 5000); ``scripts/env.sh`` exports it (``python -m nightshift_dev.env demo``).
- :func:`system_env`: a system test's or a benchmark's own stack (:class:`nightshift_dev.stack.AirflowStack`).
- :func:`celery_env`: the Celery topology (:mod:`nightshift_dev.services`, ``make services-up``).
- :func:`overhead_env`: what both arms of ``bench/overhead.py`` (and every task of its stack) see.
- :func:`tests_env`: the tests' ``dag.test()`` settings (``tests/conftest.py``).

Every server binds 127.0.0.1. LocalExecutor stacks fork their task workers from the scheduler's
forkserver, which imports :mod:`nightshift.airflow.preload` once (:data:`PRELOAD`).
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from nightshift_dev import ROOT

# the scheduler's forkserver imports the task libraries once and forks every worker from it
# ([scheduler]: the dag-processor and triggerer, which run no task, keep their own start method)
PRELOAD = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "nightshift.airflow.preload",
}
USER = "admin"


# A task's supervisor waits in select() for up to [workers] min_heartbeat_interval (5 s) at a
# time; when the task's sockets close before its process can be reaped, it sleeps that long on
# an empty selector before it notices the exit, and the worker's slot stays taken: 5.03 s after
# up to a third of the tasks (score, monitor, decide, record, ...). At 1 s it is at most 1 s, for
# one heartbeat a second per running task (docs/benchmarks.md, "A worker slot held 5 s after a task").
HEARTBEAT = {"AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1"}


def _core(root: Path) -> dict[str, str]:
    return {
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        **HEARTBEAT,
    }


def _api(port: int | str, passwords_file: Path | str) -> dict[str, str]:
    """The api-server on 127.0.0.1:``port`` and the Simple auth manager's one user, ``admin``."""
    base = f"http://127.0.0.1:{port}"
    return {
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
    }


def demo_env(environ: Mapping[str, str] | None = None, root: Path = ROOT) -> dict[str, str]:
    """``make up`` / ``make demo``: everything under ``.nightshift/``; a variable already set in
    ``environ`` (an empty one counts as unset, as ``${X:-default}`` in a shell) wins where noted."""
    env = os.environ if environ is None else environ

    def given(key: str, default: str) -> str:
        return env.get(key) or default

    home = given("NIGHTSHIFT_HOME", f"{root}/.nightshift")
    airflow_home = given("AIRFLOW_HOME", f"{home}/airflow")
    mlflow_port = given("NIGHTSHIFT_MLFLOW_PORT", "5000")
    return {
        "NIGHTSHIFT_HOME": home,
        "NIGHTSHIFT_STORE_URL": given("NIGHTSHIFT_STORE_URL", f"file://{home}/store"),
        "PATH": f"{home}/venv/bin:{env.get('PATH', '')}",
        "AIRFLOW_HOME": airflow_home,
        **_core(root),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": given("AIRFLOW__CORE__PARALLELISM", "3"),
        **_api(given("NIGHTSHIFT_API_PORT", "8080"), f"{airflow_home}/passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # tasks are forks of LocalExecutor workers that imported their libraries once
        **PRELOAD,
        "GX_ANALYTICS_ENABLED": "False",
        # days land when `nightshift replay` triggers them (the demo's and your history are in the
        # past); NIGHTSHIFT_INGEST_SCHEDULE='0 0 * * *' makes `make up` ingest each new day by itself
        "NIGHTSHIFT_INGEST_SCHEDULE": given("NIGHTSHIFT_INGEST_SCHEDULE", "none"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "NIGHTSHIFT_MLFLOW_PORT": mlflow_port,
        "MLFLOW_TRACKING_URI": given("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{mlflow_port}"),
        "PYTHONWARNINGS": "ignore",
    }


def system_env(home: Path, port: int, root: Path = ROOT) -> dict[str, str]:
    """A test's or a benchmark's own stack: LocalExecutor (parallelism 2), SQLite in ``home``,
    the api-server on ``port``, DAG files re-read every 5 s."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        **_core(root),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        **_api(port, home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        **PRELOAD,
        "PYTHONWARNINGS": "ignore",
    }


def celery_env(
    *,
    airflow_home: Path,
    state_home: Path,
    api_port: int,
    sql_conn: str,
    broker_url: str,
    result_backend: str,
    fernet_key: str,
    jwt_secret: str,
    aws_conn: str,
    mlflow_url: str,
    store_url: str,
    celery_config: str,
    environ: Mapping[str, str] | None = None,
    root: Path = ROOT,
) -> dict[str, str]:
    """The Celery topology: Postgres metadata, Redis broker, connections from the environment;
    each Celery worker imports the task libraries before its pool forks (``celery_config``)."""
    env = os.environ if environ is None else environ
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_conn,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CORE__FERNET_KEY": fernet_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        **_core(root),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "nightshift.airflow.worker.hostname",
        # a killed worker's task is noticed in ~a minute instead of five
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "10",
        **_api(api_port, airflow_home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": celery_config,
        "AIRFLOW_CONN_AWS_DEFAULT": aws_conn,
        "AIRFLOW_CONN_MLFLOW_DEFAULT": mlflow_url,
        "NIGHTSHIFT_HOME": str(state_home),
        "NIGHTSHIFT_STORE_URL": store_url,
        "NIGHTSHIFT_INGEST_SCHEDULE": env.get("NIGHTSHIFT_INGEST_SCHEDULE", "none"),
        "NIGHTSHIFT_RETRY_DELAY_S": env.get("NIGHTSHIFT_RETRY_DELAY_S", "10"),
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONWARNINGS": "ignore",
    }


def overhead_env(live: Path, datasets: Path, dataset: str) -> dict[str, str]:
    """``bench/overhead.py``'s arms (and every task of its stack): scratch store, MLflow SQLite,
    the benchmark's spec folder; laid over :func:`system_env` for the Airflow arm."""
    return {
        "NIGHTSHIFT_HOME": str(live / "home"),
        "NIGHTSHIFT_STORE_URL": (live / "store").as_uri(),
        "MLFLOW_TRACKING_URI": f"sqlite:///{live / 'mlflow' / 'mlflow.db'}",
        "NIGHTSHIFT_MLFLOW_ARTIFACTS": (live / "mlflow" / "artifacts").as_uri(),
        "NIGHTSHIFT_DATASETS_DIR": str(datasets),
        "NIGHTSHIFT_DATASETS": dataset,
        "NIGHTSHIFT_INGEST_SCHEDULE": "none",
        "NIGHTSHIFT_DEVICE": "cpu",
        "NIGHTSHIFT_RETRY_DELAY_S": "10",
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MPLBACKEND": "Agg",
        "PYTHONWARNINGS": "ignore",
        # as the demo: every task process reads DAG files at most every 30 s
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    }


def tests_env(test_home: Path, root: Path = ROOT) -> dict[str, str]:
    """The tests' settings (``dag.test()`` on a SQLite DB of their own under ``test_home``)."""
    return {
        "NIGHTSHIFT_HOME": str(test_home),
        "AIRFLOW_HOME": str(test_home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "NIGHTSHIFT_RETRY_DELAY_S": "1",
    }


# byte-code caching halves interpreter start-up for every task process
UNSET = ("PYTHONDONTWRITEBYTECODE",)


def exports(env: Mapping[str, str]) -> str:
    """``env`` as shell ``export`` lines (quoted), then the ``unset`` of :data:`UNSET`."""
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    return "\n".join([*lines, *(f"unset {k}" for k in UNSET)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Print a stack's environment as shell exports.")
    p.add_argument("stack", choices=["demo"])
    p.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this checkout)")
    a = p.parse_args(argv)
    print(exports(demo_env(root=a.root)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
