#!/usr/bin/env bash
# make demo: generate ~14 days (one bad), run the real Airflow scheduler on the embedded
# default (SQLite, LocalExecutor, 127.0.0.1:8080), backfill the ingest DAG, print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

DATASET="${DATASET:-payments}"
DAYS="${DAYS:-14}"
ROWS="${ROWS:-1000}"
BAD="${BAD:-9:null_spike}"
DAG="nightshift_ingest.$DATASET"
START=$(date -u -d "today - $DAYS days" +%F)
END=$(date -u -d "yesterday" +%F)
RUN="$NIGHTSHIFT_HOME/run"
LOGS="$NIGHTSHIFT_HOME/logs"
mkdir -p "$RUN" "$LOGS" "$AIRFLOW_HOME"

scripts/down.sh >/dev/null 2>&1 || true
if (exec 3<>"/dev/tcp/127.0.0.1/$AIRFLOW__API__PORT") 2>/dev/null; then
  echo "port $AIRFLOW__API__PORT on 127.0.0.1 is taken by another program; free it or set NIGHTSHIFT_API_PORT" >&2
  exit 1
fi

echo "== generating $DAYS days ($START..$END) x $ROWS rows of $DATASET, bad batch $BAD"
nightshift generate --dataset "$DATASET" --start "$START" --days "$DAYS" --rows "$ROWS" --bad "$BAD"

echo "== preparing Airflow metadata (SQLite) in $AIRFLOW_HOME"
airflow db migrate >"$LOGS/db-migrate.log" 2>&1
[ -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ] || echo '{"admin": "admin"}' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

start() {  # name, command...: own process group, pid file, log file
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}
echo "== parsing DAGs (dag-processor)"
start dag-processor airflow dag-processor
for _ in $(seq 1 90); do
  airflow dags list -o plain 2>/dev/null | grep -q "^$DAG " && break
  sleep 2
done
airflow dags list -o plain 2>/dev/null | grep -q "^$DAG " || { echo "DAG $DAG never appeared; see $LOGS/dag-processor.log" >&2; exit 1; }

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

echo
echo "== $DATASET: one row per day"
nightshift summary --dataset "$DATASET" --start "$START" --days "$DAYS"
echo
echo "Store:        $NIGHTSHIFT_STORE_URL"
echo "Airflow UI:   http://127.0.0.1:$AIRFLOW__API__PORT  (login admin / admin)"
echo "Stop it with: make down"
