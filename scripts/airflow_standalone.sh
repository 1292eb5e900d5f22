#!/usr/bin/env bash
# `make airflow`: run trialproof's DAGs in `airflow standalone` on this machine.
#
# Embedded default: SQLite metadata database and Airflow's LocalExecutor, all in
# <repo>/.airflow; the DAGs in <repo>/dags, unpaused at creation; the example
# sponsor registry; a trialproof home in <repo>/.trialproof (created if missing).
# The UI is on http://localhost:8080 (AIRFLOW_PORT to change). Log in as `admin`:
# the password is printed at the first start and kept in
# .airflow/simple_auth_manager_passwords.json.generated; or set
# AIRFLOW_ADMIN_PASSWORD to choose it. Stop with Ctrl-C.
#
# Overridable: AIRFLOW_HOME, AIRFLOW_PORT, AIRFLOW_HOST, AIRFLOW_ADMIN_PASSWORD,
# TRIALPROOF_HOME, TRIALPROOF_REGISTRY, TRIALPROOF_ORIGIN, TRIALPROOF_LOG_URL, VENV.
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

echo "Airflow home $AIRFLOW_HOME; DAGs $AIRFLOW__CORE__DAGS_FOLDER; registry $TRIALPROOF_REGISTRY;" \
     "trialproof home $TRIALPROOF_HOME; UI http://localhost:$PORT (user admin)" >&2
cd "$REPO"
exec airflow standalone
