"""Import once: every library and nightshift module the tasks import, for the worker processes
that fork them (the Task SDK forks each task from its worker; modules imported there are
inherited copy-on-write instead of imported again by every task, ~10 s of imports each).

Named by each stack that runs tasks:

- LocalExecutor (``make demo``, ``make up``, the system tests' stack): the scheduler's
  ``[scheduler] mp_start_method = forkserver`` and ``mp_forkserver_preload =
  nightshift.airflow.preload``: the forkserver imports this module once, and every
  LocalExecutor worker is forked from it (``airflow.utils.process_utils.
  set_component_mp_start_method``).
- CeleryExecutor (``scripts/services.py``, ``docker-compose.yaml``): ``[celery]
  extra_celery_config = {"imports": ["nightshift.airflow.preload"]}``: each worker's main process
  imports it before its prefork pool forks (``celery.loaders.base.Loader.init_worker``).

Importing this module only imports: it makes no client, GX context, MLflow tracking setting,
thread or network connection (GitPython, imported for MLflow's git tags, runs ``git version``
once, as a task's first MLflow run would). ``tests/unit/test_preload.py`` checks that, and that
tasks forked after it train with OpenMP threads, read Parquet with Arrow's thread pool,
validate with GX and log to MLflow. Each task logs what it inherited (:mod:`nightshift.airflow.taskstart`).
"""

# ruff: noqa: F401, I001, E402
from __future__ import annotations

import contextlib
import importlib

from nightshift.settings import library_defaults

# MLflow makes its telemetry client (a queue; threads and network once used) at import unless
# told not to, and GX's analytics stay off as nightshift.validate sets them: no client here
library_defaults(GX_ANALYTICS_ENABLED="False", MLFLOW_DISABLE_TELEMETRY="true")

# the libraries the task bodies import (lazily, inside the tasks)
import great_expectations
import great_expectations.core
import matplotlib
import matplotlib.pyplot
import mlflow
import mlflow.entities
import mlflow.exceptions
import mlflow.models
import mlflow.pyfunc
import mlflow.tracking
import mlflow.types
import numpy
import pandas
import pyarrow
import pyarrow.compute
import pyarrow.csv
import pyarrow.dataset
import pyarrow.fs
import pyarrow.parquet
import scipy.sparse
import sklearn.compose
import sklearn.impute
import sklearn.linear_model
import sklearn.metrics
import sklearn.pipeline
import sklearn.preprocessing
import xgboost
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import DuplicatedRowCount, MissingValueCount, RowCount, ValueDrift
from evidently.presets import DataDriftPreset
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

# the Airflow side the DAG files and task bodies import (the child re-parses its DAG file)
import airflow.sdk
import nightshift.airflow.dagconfig
import nightshift.airflow.links
import nightshift.airflow.notify
import nightshift.airflow.review
import nightshift.airflow.sensors
import nightshift.airflow.store
import nightshift.airflow.taskstart
import nightshift.airflow.context
import nightshift.airflow.tasks.gate
import nightshift.airflow.tasks.ingest
import nightshift.airflow.tasks.monitor
import nightshift.airflow.tasks.promote
import nightshift.airflow.tasks.retrain
import nightshift.airflow.tasks.rollback
import nightshift.airflow.tasks.score
import nightshift.airflow.tasks.train
import nightshift.airflow.wiring
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook  # the S3 store's connection

# the core the steps run
import nightshift.evaluate
import nightshift.features
import nightshift.health
import nightshift.ingest
import nightshift.model
import nightshift.monitor
import nightshift.steps.train
import nightshift.steps.gate
import nightshift.steps.score
import nightshift.steps.monitor
import nightshift.steps.retrain
import nightshift.registry
import nightshift.retrain
import nightshift.review
import nightshift.score
import nightshift.spec
import nightshift.storage
import nightshift.train
import nightshift.validate

# what those libraries import on their first use in a task (found by the tasks' own logs,
# nightshift.airflow.taskstart): internal modules, so one that a new version moved is left to
# the task (which then says so in its log) instead of breaking the worker's start
FIRST_USE = (
    # GX: the pandas engine, Data Docs
    "great_expectations.data_context.types.base",
    "great_expectations.execution_engine.pandas_execution_engine",
    "great_expectations.render.renderer.site_builder",
    "jinja2.ext",
    # MLflow: the SQL store (the embedded default, SQLite) with its migrations, the REST store
    # (a server) and its request headers, logging a model, the git tags of a run, tracing set
    # up with a tracking URI
    "mlflow.models.display_utils",
    "mlflow.pyfunc.scoring_server",
    "mlflow.pyfunc.utils.environment",
    "mlflow.store.db.trace_analytics_backfill_75868b020152",
    "mlflow.store.db.trace_analytics_schema_75868b020152",
    "mlflow.store.model_registry.rest_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_workspace_store",
    "mlflow.store.tracking.rest_store",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_workspace_store",
    "mlflow.store.workspace.utils",
    "mlflow.store.db.trace_analytics_prepopulation",  # the SQL store's trace-analytics migration
    "mlflow.tracking.request_header.registry",  # the REST store's request headers (a server)
    "mlflow.tracing.export.utils",
    "mlflow.tracing.processor.base_mlflow",
    "mlflow.tracing.processor.otel",
    "mlflow.tracing.utils.environment",
    "mlflow.tracking.request_header.registry",
    "mlflow.utils.search_logged_model_utils",
    "alembic.command",
    "alembic.config",
    "git",
    # plots (PNG), Arrow's pandas conversion and its query engine
    "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin",
    "pyarrow.pandas_compat",
    "pyarrow.acero",  # Arrow's joins and filters (the scoring's catch-up, the window's splits)
)
for _name in FIRST_USE:
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)
