#!/usr/bin/env bash
# `make airflow`: run trialproof's DAGs in a standalone Airflow on this machine.
#
# Embedded default: SQLite metadata database and Airflow's LocalExecutor, all in
# <repo>/.airflow; the DAGs in <repo>/dags, unpaused at creation; the example
# sponsor registry; a trialproof home in <repo>/.trialproof (created if missing).
# The UI is on http://localhost:8080 (AIRFLOW_PORT to change). Log in as `admin`:
# the password is kept in .airflow/simple_auth_manager_passwords.json.generated;
# or set AIRFLOW_ADMIN_PASSWORD to choose it. Stop with Ctrl-C.
#
# Like `airflow standalone`, but in order: the API server starts first, and the
# scheduler, DAG processor and triggerer only once it answers (tasks report to its
# execution API, so a worker started earlier fails with "Connection refused").
# LocalExecutor runs at most AIRFLOW__CORE__PARALLELISM tasks at once, each in a
# worker process of its own; the default here is two per CPU (4 to 32), not
# Airflow's 32. When one component exits, the others are stopped.
#
# Overridable: AIRFLOW_HOME, AIRFLOW_PORT, AIRFLOW_HOST, AIRFLOW_ADMIN_PASSWORD,
# AIRFLOW__CORE__PARALLELISM, AIRFLOW_API_WAIT (seconds to wait for the API server,
# default 300), TRIALPROOF_HOME, TRIALPROOF_REGISTRY, TRIALPROOF_ORIGIN,
# TRIALPROOF_LOG_URL, TRIALPROOF_REPORT_URL, VENV.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
if [ ! -x "$VENV/bin/airflow" ]; then
  echo "airflow is not installed in $VENV; run: make install" >&2
  exit 2
fi
export PATH="$VENV/bin:$PATH"

PORT="${AIRFLOW_PORT:-8080}"
HOST="${AIRFLOW_HOST:-127.0.0.1}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__API__HOST="$HOST"
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://localhost:$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$PORT/execution/"
# Airflow's LocalExecutor, importing Great Expectations once before it forks its workers
# (pipeline/airflow_executor.py), so that validate tasks do not each pay that import.
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-pipeline.airflow_executor.LocalExecutor}"
export AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
cpus="$(nproc 2>/dev/null || echo 2)"
parallelism=$((2 * cpus))
[ "$parallelism" -lt 4 ] && parallelism=4
[ "$parallelism" -gt 32 ] && parallelism=32
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-$parallelism}"
API_WAIT="${AIRFLOW_API_WAIT:-300}"

export TRIALPROOF_HOME="${TRIALPROOF_HOME:-$REPO/.trialproof}"
export TRIALPROOF_REGISTRY="${TRIALPROOF_REGISTRY:-$REPO/registry/sponsors.yaml}"

mkdir -p "$AIRFLOW_HOME"
if [ ! -f "$TRIALPROOF_HOME/config.json" ]; then
  trialproof init --home "$TRIALPROOF_HOME" --origin "${TRIALPROOF_ORIGIN:-trials.example.org/log}"
fi
# Problems in the registry do not stop Airflow: they show as an import error in the UI.
trialproof registry check --registry "$TRIALPROOF_REGISTRY" || true

if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]; then
  passwords="$AIRFLOW_HOME/simple_auth_manager_passwords.json"
  python -c 'import json, os, sys; json.dump({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}, open(sys.argv[1], "w"))' "$passwords"
  chmod 600 "$passwords"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$passwords"
fi

say() { echo "standalone    | $*"; }
say "Airflow home $AIRFLOW_HOME; DAGs $AIRFLOW__CORE__DAGS_FOLDER; registry $TRIALPROOF_REGISTRY;" \
    "trialproof home $TRIALPROOF_HOME; UI http://localhost:$PORT (user admin)"
say "LocalExecutor parallelism $AIRFLOW__CORE__PARALLELISM ($cpus CPUs)"
cd "$REPO"

say "preparing the metadata database"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || {
  tail -n 40 "$AIRFLOW_HOME/db-migrate.log" >&2
  echo "airflow db migrate failed (log: $AIRFLOW_HOME/db-migrate.log)" >&2
  exit 1
}

# Each component runs in a process group of its own (setsid), so that stopping it
# also stops the workers and servers it forked.
pids=()
start() {
  local name="$1"
  shift
  # The prefixing sed ignores Ctrl-C, so that it prints the components' last words.
  setsid airflow "$@" > >(trap '' INT TERM; exec sed -u "s/^/$(printf '%-13s' "$name")| /") 2>&1 &
  pids+=("$!")
}
stop_all() {
  trap - INT TERM EXIT
  local pid
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  say "stopped"
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

answers() {
  curl --silent --fail --max-time 5 --output /dev/null "$1"
}

start api-server api-server
api_pid="${pids[0]}"
say "waiting for the API server on http://localhost:$PORT (at most ${API_WAIT}s)"
waited=0
until answers "http://localhost:$PORT/api/v2/monitor/health" \
      && answers "http://localhost:$PORT/execution/health"; do
  if ! kill -0 "$api_pid" 2>/dev/null; then
    echo "the API server exited before it answered; see its output above" >&2
    exit 1
  fi
  if [ "$waited" -ge "$API_WAIT" ]; then
    echo "the API server did not answer within ${API_WAIT}s (AIRFLOW_API_WAIT)" >&2
    exit 1
  fi
  sleep 1
  waited=$((waited + 1))
done
say "the API server answers; starting the scheduler, DAG processor and triggerer"
start scheduler scheduler
start dag-processor dag-processor
start triggerer triggerer
say "Airflow is ready: http://localhost:$PORT (user admin; password in" \
    "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated})"

# Run until Ctrl-C, or until a component exits (then stop the others).
set +e
wait -n "${pids[@]}"
status=$?
say "a component exited (status $status); stopping the others"
exit "$status"
