# Settings shared by `make up`, `make demo` and `make down`: everything lives under .nightshift/.
# Source it from the repository root. The variables come from one place, the dev toolkit
# (nightshift_dev.env.demo_env: `python -m nightshift_dev.env demo` prints them); one already set
# wins for NIGHTSHIFT_HOME, NIGHTSHIFT_STORE_URL, AIRFLOW_HOME, AIRFLOW__CORE__PARALLELISM,
# NIGHTSHIFT_API_PORT, NIGHTSHIFT_MLFLOW_PORT, MLFLOW_TRACKING_URI and NIGHTSHIFT_INGEST_SCHEDULE.
ROOT="$(pwd)"
NIGHTSHIFT_EXPORTS="$("$ROOT/.nightshift/venv/bin/python" -m nightshift_dev.env demo --root "$ROOT")" || {
  echo "scripts/env.sh: cannot build the stack's settings with .nightshift/venv (make venv)" >&2
  return 1
}
eval "$NIGHTSHIFT_EXPORTS"
unset NIGHTSHIFT_EXPORTS
