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
thread or network connection (``tests/unit/test_preload.py`` checks that, and that tasks forked
after it train with OpenMP threads, read Parquet with Arrow's thread pool, validate with GX and
log to MLflow). Each task logs what it inherited (:mod:`nightshift.airflow.taskstart`).
"""

# ruff: noqa: F401, I001
from __future__ import annotations

import contextlib
import os

# MLflow makes its telemetry client (a queue; threads and network once used) at import unless
# told not to, and GX's analytics stay off as nightshift.validate sets them: no client here
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# the libraries (what the task bodies import lazily, and what those import on first use)
import great_expectations
import great_expectations.core
import great_expectations.data_context.types.base
import great_expectations.execution_engine.pandas_execution_engine
import great_expectations.render.renderer
import great_expectations.render.renderer.site_builder
import matplotlib
import matplotlib.backends.backend_agg
import matplotlib.pyplot
import mlflow
import mlflow.entities
import mlflow.exceptions
import mlflow.models
import mlflow.models.display_utils
import mlflow.pyfunc
import mlflow.pyfunc.scoring_server
import mlflow.pyfunc.utils.environment
import mlflow.store.model_registry.rest_store
import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.rest_store
import mlflow.store.tracking.sqlalchemy_store
import mlflow.tracing.export.utils
import mlflow.tracing.processor.otel
import mlflow.tracking
import mlflow.types
import mlflow.utils.search_logged_model_utils
import numpy
import pandas
import pyarrow
import pyarrow.compute
import pyarrow.csv
import pyarrow.dataset
import pyarrow.fs
import pyarrow.pandas_compat
import pyarrow.parquet
import scipy.sparse
import sklearn.compose
import sklearn.impute
import sklearn.linear_model
import sklearn.metrics
import sklearn.pipeline
import sklearn.preprocessing
import xgboost

# what those import on first use: MLflow's SQL store (the embedded default, SQLite) with its
# migrations, its REST store (a server), the git tags of a run; PNG plots
import alembic.command
import alembic.config
import PIL.PngImagePlugin
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import DuplicatedRowCount, MissingValueCount, RowCount, ValueDrift
from evidently.presets import DataDriftPreset
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

# the Airflow side the DAG files and task bodies import (the child re-parses its DAG file)
import airflow.sdk
import nightshift.airflow.dagconfig
import nightshift.airflow.ingest
import nightshift.airflow.links
import nightshift.airflow.loop
import nightshift.airflow.model
import nightshift.airflow.notify
import nightshift.airflow.review
import nightshift.airflow.sensors
import nightshift.airflow.store
import nightshift.airflow.taskstart
import nightshift.airflow.tasks

# the core the steps run
import nightshift.evaluate
import nightshift.features
import nightshift.health
import nightshift.ingest
import nightshift.model
import nightshift.monitor
import nightshift.pipeline
import nightshift.registry
import nightshift.retrain
import nightshift.review
import nightshift.score
import nightshift.spec
import nightshift.storage
import nightshift.train
import nightshift.validate
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook  # the S3 store's connection

with contextlib.suppress(ImportError):  # GitPython: optional for MLflow (a run's git tags)
    import git
