#!/usr/bin/env bash
# make down: stop every component `make up` (or `make demo`) started, by its process group.
set -uo pipefail
cd "$(dirname "$0")/.."
RUN="${NIGHTSHIFT_HOME:-$(pwd)/.nightshift}/run"
[ -d "$RUN" ] || exit 0
for f in "$RUN"/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "stopped $(basename "$f" .pid)"
  fi
  rm -f "$f"
done
rm -f "$RUN/stack.json"
