#!/usr/bin/env bash
# make demo: generate ~14 days (one bad), run the real Airflow scheduler on the embedded
# default (SQLite, LocalExecutor, 127.0.0.1:8080) and an MLflow server (127.0.0.1:5000),
# backfill the ingest DAG, train -> gate -> promote, score, print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

DATASET="${DATASET:-payments}"
DAYS="${DAYS:-14}"
ROWS="${ROWS:-4000}"
BAD="${BAD:-9:null_spike}"
DAG="nightshift_ingest.$DATASET"
START=$(date -u -d "today - $DAYS days" +%F)
END=$(date -u -d "yesterday" +%F)
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
echo "== generating $DAYS days ($START..$END) x $ROWS rows of $DATASET, bad batch $BAD"
nightshift generate --dataset "$DATASET" --start "$START" --days "$DAYS" --rows "$ROWS" --bad "$BAD"

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

echo "== parsing DAGs (dag-processor)"
start dag-processor airflow dag-processor
for _ in $(seq 1 90); do
  airflow dags list -o plain 2>/dev/null | grep "^$DAG " >/dev/null && break
  sleep 2
done
airflow dags list -o plain 2>/dev/null | grep "^$DAG " >/dev/null || { echo "DAG $DAG never appeared; see $LOGS/dag-processor.log" >&2; exit 1; }

# The backfill is written before the scheduler starts: SQLite takes one writer at a time.
echo "== creating the backfill of $DAG over $START..$END"
airflow dags unpause "$DAG" >/dev/null
for attempt in 1 2 3 4 5; do
  airflow backfill create --dag-id "$DAG" --from-date "$START" --to-date "$END" \
    --max-active-runs 3 --reprocess-behavior failed >"$LOGS/backfill.log" 2>&1 && break
  [ "$attempt" = 5 ] && { echo "backfill failed; see $LOGS/backfill.log" >&2; exit 1; }
  sleep 3
done

echo "== starting scheduler, triggerer, api-server (127.0.0.1 only)"
start scheduler airflow scheduler --skip-serve-logs
start triggerer airflow triggerer --skip-serve-logs
start api-server airflow api-server --host 127.0.0.1 --port "$AIRFLOW__API__PORT"

python scripts/wait_runs.py "$DAG" "$START" "$END" --timeout "${TIMEOUT:-1200}"

echo "== training: nightshift_train.$DATASET (train on the gpu queue -> gate -> promote), then scoring"
python scripts/run_dag.py "nightshift_train.$DATASET" --then "nightshift_score.$DATASET" --timeout "${TIMEOUT:-1200}" \
  || echo "(training did not finish cleanly; see the Airflow UI)"

echo
echo "== $DATASET: one row per day"
nightshift summary --dataset "$DATASET" --start "$START" --days "$DAYS"
echo
echo "== $DATASET: the model"
nightshift champion --dataset "$DATASET"
echo
echo "Store:        $NIGHTSHIFT_STORE_URL"
echo "Airflow UI:   http://127.0.0.1:$AIRFLOW__API__PORT  (login admin / admin)"
echo "MLflow UI:    $MLFLOW_TRACKING_URI"
echo "Audit trail:  nightshift audit --dataset $DATASET"
echo "Stop it with: make down"
