#!/usr/bin/env bash
# Runs once, on the first start of an empty Postgres data volume (docker-entrypoint-initdb.d):
# one server, two databases - `airflow` (Airflow metadata + Celery results) and `mlflow` (the
# tracking store and model registry) - each owned by a role of its own. Role names and passwords
# come from the environment (docker-compose.yaml passes them from .env); psql variables quote
# them, so a password is never spliced into SQL text. The password reaches psql through its
# environment (\getenv), not its command line, which every process on the host can read.
set -euo pipefail

: "${POSTGRES_USER:?}"
: "${AIRFLOW_DB_USER:?must be set in .env}" "${AIRFLOW_DB_PASSWORD:?must be set in .env}"
: "${MLFLOW_DB_USER:?must be set in .env}" "${MLFLOW_DB_PASSWORD:?must be set in .env}"

create_database() {
    local role="$1" password="$2" database="$3"
    echo "init-databases: database ${database} owned by role ${role}"
    NIGHTSHIFT_ROLE_PASSWORD="$password" psql -v ON_ERROR_STOP=1 --no-psqlrc \
        --username "$POSTGRES_USER" --dbname postgres -v role="$role" -v db="$database" <<'SQL'
\getenv password NIGHTSHIFT_ROLE_PASSWORD
CREATE ROLE :"role" WITH LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
}

create_database "$AIRFLOW_DB_USER" "$AIRFLOW_DB_PASSWORD" airflow
create_database "$MLFLOW_DB_USER" "$MLFLOW_DB_PASSWORD" mlflow
