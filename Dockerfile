# syntax=docker/dockerfile:1
# nightshift: one image for every Airflow component (api-server, scheduler, dag-processor,
# triggerer, Celery workers) and for the MLflow server (it holds mlflow, psycopg2 and boto3).
#
# The base tag must match `apache-airflow==X` in pyproject.toml (tests/dags/test_deploy_files.py
# checks it). requirements/docker.txt is the lock exported without dev dependencies:
#   .nightshift/uv/bin/uv export --frozen --no-dev --no-emit-project --no-hashes \
#       --format requirements.txt -o requirements/docker.txt
# Build-time network: the Python package index only.
FROM apache/airflow:3.3.2-python3.12

# the git commit the image was built from, recorded on every MLflow run (no .git in the image)
ARG NIGHTSHIFT_CODE_VERSION=unknown

USER root
# scratch space (NIGHTSHIFT_HOME: staging of ingested batches), the logs and the simple auth
# manager's passwords file (both volumes in docker-compose.yaml: a new named volume takes the
# owner of the folder it is mounted on); group 0 as in the official image, so any AIRFLOW_UID
# run with GID 0 can write
RUN mkdir -p /opt/nightshift/state /opt/airflow/auth /opt/airflow/logs /opt/airflow/dags \
        /opt/airflow/plugins \
    && chown -R airflow:0 /opt/nightshift /opt/airflow/auth /opt/airflow/logs /opt/airflow/dags \
        /opt/airflow/plugins \
    && chmod -R g+rwX /opt/nightshift /opt/airflow/logs \
    && chmod 0770 /opt/airflow/auth
USER airflow

# the pinned dependencies first (a layer that changes only with uv.lock); they pin the base
# image's own apache-airflow version, so pip keeps it
COPY --chown=airflow:0 requirements/docker.txt /opt/nightshift/requirements.txt
RUN pip install --no-cache-dir -r /opt/nightshift/requirements.txt

# then the project: the package without dependencies (built with the pinned setuptools just
# installed, no build isolation; it registers the UI plugin by its airflow.plugins entry point),
# the DAGs, the plugins folder (a deployment's own plugins), dataset specs and GX suites.
# .dockerignore admits only these paths (never .env, .git or .nightshift/).
COPY --chown=airflow:0 . /opt/nightshift/src/
RUN pip install --no-cache-dir --no-deps --no-build-isolation /opt/nightshift/src \
    && cp -R /opt/nightshift/src/dags/. /opt/airflow/dags/ \
    && if [ -d /opt/nightshift/src/plugins ]; then cp -R /opt/nightshift/src/plugins/. /opt/airflow/plugins/; fi \
    && cp -R /opt/nightshift/src/datasets /opt/nightshift/datasets \
    && cp -R /opt/nightshift/src/great_expectations /opt/nightshift/great_expectations \
    && rm -rf /opt/nightshift/src \
    && python -c "import importlib.metadata as m, nightshift.spec, nightshift.airflow; \
assert m.entry_points(group='airflow.plugins', name='nightshift'), 'no airflow.plugins entry point'; \
print('nightshift at', nightshift.__file__)"

# installed, the package cannot find the specs and suites next to itself: point at them
ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    NIGHTSHIFT_DATASETS_DIR=/opt/nightshift/datasets \
    NIGHTSHIFT_GX_DIR=/opt/nightshift/great_expectations \
    NIGHTSHIFT_HOME=/opt/nightshift/state \
    NIGHTSHIFT_CODE_VERSION=${NIGHTSHIFT_CODE_VERSION} \
    GX_ANALYTICS_ENABLED=False \
    MLFLOW_DISABLE_TELEMETRY=true
