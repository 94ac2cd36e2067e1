#!/usr/bin/env bash
# make up: the stack `make demo` runs, on the repository's datasets/ and the store, generating
# nothing: an MLflow server (SQLite + local artifacts, 127.0.0.1:5000) and the Airflow
# dag-processor, scheduler, triggerer and api-server (LocalExecutor, SQLite, 127.0.0.1:8080).
# Each runs in its own process group with a pid file in .nightshift/run/ (`make down` stops
# them). Already up: says so. It writes .nightshift/run/stack.json (addresses, and the path of
# the Airflow password file, never a password) for `nightshift replay` and the CLI's MLflow.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

RUN="$NIGHTSHIFT_HOME/run"
LOGS="$NIGHTSHIFT_HOME/logs"
PASSWORDS="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
COMPONENTS=(mlflow dag-processor scheduler triggerer api-server)
mkdir -p "$RUN" "$LOGS" "$AIRFLOW_HOME"

addresses() {
  echo "Airflow UI:   $AIRFLOW__API__BASE_URL  (user admin, password in $PASSWORDS)"
  echo "Model health: $AIRFLOW__API__BASE_URL/plugin/model-health"
  echo "MLflow UI:    $MLFLOW_TRACKING_URI"
  echo "Store:        $NIGHTSHIFT_STORE_URL"
  echo "Logs:         $LOGS/"
  echo "Stop it with: make down"
}
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

up=() down=()
for c in "${COMPONENTS[@]}"; do if alive "$c"; then up+=("$c"); else down+=("$c"); fi; done
if [ ${#down[@]} -eq 0 ]; then
  echo "the stack is already up"
  addresses
  exit 0
fi
if [ ${#up[@]} -gt 0 ]; then
  echo "the stack is partly up (not running: ${down[*]}): restarting it"
  scripts/down.sh
fi
for pair in "$AIRFLOW__API__PORT:NIGHTSHIFT_API_PORT" "$NIGHTSHIFT_MLFLOW_PORT:NIGHTSHIFT_MLFLOW_PORT"; do
  port=${pair%%:*}
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is taken by another program; free it or set ${pair#*:}" >&2
    exit 1
  fi
done

start() {  # name, command...: own process group, pid file, log file
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}
echo "== starting the MLflow server (SQLite + local artifacts, 127.0.0.1:$NIGHTSHIFT_MLFLOW_PORT)"
mkdir -p "$NIGHTSHIFT_HOME/mlflow/artifacts"
# new experiments keep their artifacts as plain files under .nightshift/mlflow/artifacts, where the
# CLI's embedded default (SQLite, no server) also reads and writes them: the same registry either way
start mlflow mlflow server --host 127.0.0.1 --port "$NIGHTSHIFT_MLFLOW_PORT" --workers 1 \
  --backend-store-uri "sqlite:///$NIGHTSHIFT_HOME/mlflow/mlflow.db" \
  --default-artifact-root "file://$NIGHTSHIFT_HOME/mlflow/artifacts" \
  --artifacts-destination "$NIGHTSHIFT_HOME/mlflow/artifacts"

# while the MLflow server starts
echo "== preparing Airflow metadata (SQLite) in $AIRFLOW_HOME"
airflow db migrate >"$LOGS/db-migrate.log" 2>&1 || { echo "airflow db migrate failed; see $LOGS/db-migrate.log" >&2; scripts/down.sh >/dev/null 2>&1; exit 1; }
airflow pools set nightshift_registry 1 "nightshift registry writes (alias moves), one at a time" >"$LOGS/pools.log" 2>&1 \
  || { echo "airflow pools set failed; see $LOGS/pools.log" >&2; scripts/down.sh >/dev/null 2>&1; exit 1; }
if [ ! -f "$PASSWORDS" ]; then
  # a random password for the UI's user, in a file only its owner reads (never printed or logged;
  # left to itself the Simple auth manager would print the one it generates into the api-server log)
  (umask 077; python -c 'import json, secrets; print(json.dumps({"admin": secrets.token_urlsafe(18)}))' >"$PASSWORDS")
fi

mlflow_up() { python -c "import urllib.request as u; u.urlopen('$MLFLOW_TRACKING_URI/health', timeout=2)" 2>/dev/null; }
for _ in $(seq 1 180); do mlflow_up && break; sleep 0.5; done
mlflow_up || { echo "MLflow server did not start; see $LOGS/mlflow.log" >&2; scripts/down.sh >/dev/null 2>&1; exit 1; }

echo "== starting dag-processor, scheduler, triggerer, api-server (127.0.0.1 only)"
start dag-processor airflow dag-processor
start scheduler airflow scheduler --skip-serve-logs
start triggerer airflow triggerer --skip-serve-logs
start api-server airflow api-server --host 127.0.0.1 --port "$AIRFLOW__API__PORT"

python - <<EOF
import json, os
path = "$RUN/stack.json"
info = {
    "api": "$AIRFLOW__API__BASE_URL",
    "mlflow": "$MLFLOW_TRACKING_URI",
    "user": "admin",
    "passwords_file": "$PASSWORDS",
    "store": "$NIGHTSHIFT_STORE_URL",
}
with open(path + ".tmp", "w") as f:
    json.dump(info, f, indent=2)
os.replace(path + ".tmp", path)
EOF

wait_for="${NIGHTSHIFT_UP_WAIT:-${NIGHTSHIFT_DATASETS:-}}"  # the datasets whose DAGs to wait for
if [ -n "$wait_for" ]; then
  read -r -a names <<<"${wait_for//,/ }"
else
  names=()
  for f in "${NIGHTSHIFT_DATASETS_DIR:-datasets}"/*.yaml; do [ -f "$f" ] && names+=("$(basename "$f" .yaml)"); done
fi
echo "== waiting for the DAGs of ${names[*]:-no dataset} to be parsed"
if ! python scripts/wait_dags.py "${names[@]}" --timeout 240; then
  echo "see Import errors in the UI and $LOGS/dag-processor.log" >&2
  addresses
  exit 1
fi
echo "== the stack is up"
addresses
