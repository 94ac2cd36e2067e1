# Settings shared by `make up`, `make demo`, `make down` and the tests: everything lives under .nightshift/.
# Source it from the repository root.
ROOT="$(pwd)"
export NIGHTSHIFT_HOME="${NIGHTSHIFT_HOME:-$ROOT/.nightshift}"
export NIGHTSHIFT_STORE_URL="${NIGHTSHIFT_STORE_URL:-file://$NIGHTSHIFT_HOME/store}"
export PATH="$NIGHTSHIFT_HOME/venv/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$NIGHTSHIFT_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-3}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=False
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="${NIGHTSHIFT_API_PORT:-8080}"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$AIRFLOW__API__PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW__API__PORT/execution/"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
# tasks are forks of LocalExecutor workers that imported their libraries once: the scheduler's
# forkserver imports nightshift.airflow.preload and forks every worker from it ([scheduler]: the
# dag-processor and triggerer, which run no task, keep their own start method)
export AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
export AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=nightshift.airflow.preload
export GX_ANALYTICS_ENABLED=False
# days land when `nightshift replay` triggers them (the demo's and your history are in the past);
# NIGHTSHIFT_INGEST_SCHEDULE='0 0 * * *' makes `make up` ingest each new day by itself
export NIGHTSHIFT_INGEST_SCHEDULE="${NIGHTSHIFT_INGEST_SCHEDULE:-none}"
export MLFLOW_DISABLE_TELEMETRY=true
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
export NIGHTSHIFT_MLFLOW_PORT="${NIGHTSHIFT_MLFLOW_PORT:-5000}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$NIGHTSHIFT_MLFLOW_PORT}"
export PYTHONWARNINGS=ignore
# Byte-code caching halves interpreter start-up for every task process.
unset PYTHONDONTWRITEBYTECODE
