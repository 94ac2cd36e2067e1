#!/usr/bin/env bash
# make demo: a simulated month through the real Airflow scheduler on the embedded default
# (SQLite, LocalExecutor, 127.0.0.1:8080) and an MLflow server (127.0.0.1:5000).
# 30 days are generated (a bad batch on day 9; covariate + concept drift from day 15). The
# first 14 are backfilled, a first model is trained, gated and promoted; then the days land
# one by one: ingest -> score -> monitor -> (alert -> retrain, within the guard rails).
# Ends with the day-by-day table, a PNG plot and the UI addresses.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

DATASET="${DATASET:-payments}"
DAYS="${DAYS:-30}"
BOOT_DAYS="${BOOT_DAYS:-14}"   # backfilled before the first model
ROWS="${ROWS:-4000}"
BAD="${BAD:-9:null_spike}"
DRIFT_FROM="${DRIFT_FROM:-15}"
DAG="nightshift_ingest.$DATASET"
START=$(date -u -d "today - $DAYS days" +%F)
END=$(date -u -d "yesterday" +%F)
BOOT_END=$(date -u -d "$START + $((BOOT_DAYS - 1)) days" +%F)
STEP_START=$(date -u -d "$START + $BOOT_DAYS days" +%F)
DRIFT_DAY=$(date -u -d "$START + $DRIFT_FROM days" +%F)
OUT="$NIGHTSHIFT_HOME/demo"
RUN="$NIGHTSHIFT_HOME/run"
LOGS="$NIGHTSHIFT_HOME/logs"
mkdir -p "$RUN" "$LOGS" "$AIRFLOW_HOME"

scripts/down.sh >/dev/null 2>&1 || true
for pair in "$AIRFLOW__API__PORT:NIGHTSHIFT_API_PORT" "$NIGHTSHIFT_MLFLOW_PORT:NIGHTSHIFT_MLFLOW_PORT"; do
  port=${pair%%:*}
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is taken by another program; free it or set ${pair#*:}" >&2
    exit 1
  fi
done

# every demo starts from a clean slate: its own store, MLflow and Airflow metadata (not the venv)
rm -rf "$NIGHTSHIFT_HOME/store" "$NIGHTSHIFT_HOME/mlflow" "$AIRFLOW_HOME/airflow.db" "$LOGS"/*.log
echo "== generating $DAYS days ($START..$END) x $ROWS rows of $DATASET, bad batch $BAD, drift from day $DRIFT_FROM ($DRIFT_DAY)"
nightshift generate --dataset "$DATASET" --start "$START" --days "$DAYS" --rows "$ROWS" --bad "$BAD" \
  --covariate-drift-from "$DRIFT_FROM" --concept-drift-from "$DRIFT_FROM"

echo "== preparing Airflow metadata (SQLite) in $AIRFLOW_HOME"
airflow db migrate >"$LOGS/db-migrate.log" 2>&1
airflow pools set nightshift_registry 1 "nightshift registry writes (alias moves), one at a time" >"$LOGS/pools.log" 2>&1
[ -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ] || echo '{"admin": "admin"}' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

start() {  # name, command...: own process group, pid file, log file
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}
echo "== starting the MLflow server (SQLite + local artifacts, 127.0.0.1:$NIGHTSHIFT_MLFLOW_PORT)"
mkdir -p "$NIGHTSHIFT_HOME/mlflow"
start mlflow mlflow server --host 127.0.0.1 --port "$NIGHTSHIFT_MLFLOW_PORT" --workers 1 \
  --backend-store-uri "sqlite:///$NIGHTSHIFT_HOME/mlflow/mlflow.db" \
  --artifacts-destination "$NIGHTSHIFT_HOME/mlflow/artifacts"
mlflow_up() { python -c "import urllib.request as u; u.urlopen('$MLFLOW_TRACKING_URI/health', timeout=2)" 2>/dev/null; }
for _ in $(seq 1 90); do mlflow_up && break; sleep 1; done
mlflow_up || { echo "MLflow server did not start; see $LOGS/mlflow.log" >&2; exit 1; }

echo "== starting dag-processor, scheduler, triggerer, api-server (127.0.0.1 only)"
start dag-processor airflow dag-processor
start scheduler airflow scheduler --skip-serve-logs
start triggerer airflow triggerer --skip-serve-logs
start api-server airflow api-server --host 127.0.0.1 --port "$AIRFLOW__API__PORT"
for _ in $(seq 1 120); do
  airflow dags list -o plain 2>/dev/null | grep "^nightshift_retrain.$DATASET " >/dev/null && break
  sleep 2
done
airflow dags list -o plain 2>/dev/null | grep "^nightshift_retrain.$DATASET " >/dev/null || { echo "DAGs never appeared; see $LOGS/dag-processor.log" >&2; exit 1; }

echo "== the first $BOOT_DAYS days land together ($START..$BOOT_END, ingest + validation only)"
python scripts/step_days.py "$DATASET" "$START" "$BOOT_END" --together --timeout "${TIMEOUT:-1200}"

echo "== first model: nightshift_train.$DATASET (train on the gpu queue -> gate -> promote), then scoring"
python scripts/run_dag.py "nightshift_train.$DATASET" --then "nightshift_score.$DATASET" --timeout "${TIMEOUT:-1200}" \
  || echo "(training did not finish cleanly; see the Airflow UI)"

echo "== the days $STEP_START..$END land one by one (ingest -> score -> monitor -> alert -> retrain)"
python scripts/step_days.py "$DATASET" "$STEP_START" "$END" --timeout "${TIMEOUT:-1200}" \
  --unpause "nightshift_monitor.$DATASET" "nightshift_retrain.$DATASET"

mkdir -p "$OUT"
echo
echo "== $DATASET: one row per day"
nightshift summary --dataset "$DATASET" --start "$START" --days "$DAYS" --drift-from "$DRIFT_DAY" \
  --plot "$OUT/summary.png" | tee "$OUT/summary.txt"
echo
echo "== $DATASET: the model"
nightshift champion --dataset "$DATASET"
echo
echo "Store:        $NIGHTSHIFT_STORE_URL  (reports/$DATASET/{validation,drift,performance,retrain})"
echo "Summary:      $OUT/summary.txt and $OUT/summary.png"
echo "Airflow UI:   http://127.0.0.1:$AIRFLOW__API__PORT  (login admin / admin)"
echo "Model health: http://127.0.0.1:$AIRFLOW__API__PORT/plugin/model-health  (Browse -> Model health)"
echo "MLflow UI:    $MLFLOW_TRACKING_URI"
echo "Audit trail:  nightshift audit --dataset $DATASET"
echo "Stop it with: make down"
