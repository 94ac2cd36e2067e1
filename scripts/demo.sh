#!/usr/bin/env bash
# make demo: a simulated month through the real Airflow scheduler on the embedded default
# (SQLite, LocalExecutor, 127.0.0.1:8080) and an MLflow server (127.0.0.1:5000).
# 30 days are generated (a bad batch on day 9; covariate + concept drift from day 15). The
# first 14 are backfilled, a first model is trained, gated and promoted; then the days land
# one by one: ingest -> score -> monitor -> (alert -> retrain, within the guard rails).
# Ends with the day-by-day table, a PNG plot, the UI addresses and what each part took: the
# wall time and, per day landed one by one, its seconds, runs and task processes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
T0=$(date +%s)

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

# every demo starts from a clean slate: its own store, MLflow and Airflow metadata (not the venv)
rm -rf "$NIGHTSHIFT_HOME/store" "$NIGHTSHIFT_HOME/mlflow" "$AIRFLOW_HOME/airflow.db" "$LOGS"/*.log
echo "== generating $DAYS days ($START..$END) x $ROWS rows of $DATASET, bad batch $BAD, drift from day $DRIFT_FROM ($DRIFT_DAY)"
nightshift generate --dataset "$DATASET" --start "$START" --days "$DAYS" --rows "$ROWS" --bad "$BAD" \
  --covariate-drift-from "$DRIFT_FROM" --concept-drift-from "$DRIFT_FROM"

# the demo's login is admin / admin (kept if a password file exists: `make up` writes a random one)
[ -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ] || echo '{"admin": "admin"}' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
T_GEN=$(date +%s)
NIGHTSHIFT_UP_WAIT="$DATASET" scripts/up.sh | grep --line-buffered '^=='
T_UP=$(date +%s)

echo "== the first $BOOT_DAYS days land together ($START..$BOOT_END, ingest + validation only)"
nightshift replay --dataset "$DATASET" --from "$START" --to "$BOOT_END" --together --timeout "${TIMEOUT:-1200}" \
  || echo "(not every day was ingested: the bad batch is quarantined on purpose)"

T_BOOT=$(date +%s)
echo "== first model: nightshift_train.$DATASET (train on the gpu queue -> gate -> promote), then scoring and monitoring"
python scripts/run_dag.py "nightshift_train.$DATASET" --then "nightshift_score.$DATASET" "nightshift_monitor.$DATASET" \
  --timeout "${TIMEOUT:-1200}" || echo "(training did not finish cleanly; see the Airflow UI)"

T_MODEL=$(date +%s)
STEPS_SINCE=$(date -u +%FT%T)
echo "== the days $STEP_START..$END land one by one (ingest -> score -> monitor -> alert -> retrain)"
nightshift replay --dataset "$DATASET" --from "$STEP_START" --to "$END" --timeout "${TIMEOUT:-1200}" \
  --unpause score monitor retrain || echo "(not every day went through cleanly; see above and the Airflow UI)"

T_STEPS=$(date +%s)

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
echo "Airflow UI:   http://127.0.0.1:$AIRFLOW__API__PORT  (user admin, password in $AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE)"
echo "Model health: http://127.0.0.1:$AIRFLOW__API__PORT/plugin/model-health  (Browse -> Model health)"
echo "MLflow UI:    $MLFLOW_TRACKING_URI"
echo "Audit trail:  nightshift audit --dataset $DATASET"
echo "Stop it with: make down"
echo
echo "== what it took (also in $OUT/times.txt)"
{
  python scripts/demo_times.py "$AIRFLOW_HOME/airflow.db" --dataset "$DATASET" \
    --since "$STEPS_SINCE" --json "$OUT/times.json" || true
  echo "generate $((T_GEN - T0)) s, stack up $((T_UP - T_GEN)) s, $BOOT_DAYS days together $((T_BOOT - T_UP)) s," \
    "first model $((T_MODEL - T_BOOT)) s, $((DAYS - BOOT_DAYS)) days one by one $((T_STEPS - T_MODEL)) s"
  total=$(( $(date +%s) - T0 ))
  echo "make demo: $((total / 60)) min $((total % 60)) s ($total s wall, $DAYS days x $ROWS rows)"
} | tee "$OUT/times.txt"
