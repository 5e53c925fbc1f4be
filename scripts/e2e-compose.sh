#!/usr/bin/env bash
# make e2e: the real `docker compose up` on this machine, checked from outside.
#
# Builds the images, starts the whole stack under its own project name (so a stack you
# already run is left alone) with 2 generators and 2 ingesters, then tests/compose's
# TestLiveStack polls Prometheus until every service is up (Alertmanager included, and
# found by Prometheus) and rows are committed, and asks Grafana for its health, its
# dashboards and its home page. The stack and its volumes are
# always removed afterwards. Without a Docker daemon it says so and exits 0.
#
# Settings (environment): E2E_PROMETHEUS_PORT (19090), E2E_GRAFANA_PORT (13000),
# E2E_GENERATORS (2), E2E_INGESTERS (2), E2E_TIMEOUT (5m), E2E_KEEP=1 to leave it running.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "e2e-compose: skipped: no Docker daemon (docker info failed); the stack is checked by construction in tests/compose"
  exit 0
fi
if ! docker compose version >/dev/null 2>&1; then
  echo "e2e-compose: skipped: no Docker Compose v2 plugin (docker compose version failed)"
  exit 0
fi

project="ecomstream-e2e"
export PROMETHEUS_PORT="${E2E_PROMETHEUS_PORT:-19090}"
export GRAFANA_PORT="${E2E_GRAFANA_PORT:-13000}"
export BIND_ADDRESS=127.0.0.1
generators="${E2E_GENERATORS:-2}"
ingesters="${E2E_INGESTERS:-2}"
compose=(docker compose -p "$project" -f docker-compose.yml)

teardown() {
  rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "e2e-compose: FAILED (exit $rc); state and recent logs:"
    "${compose[@]}" ps -a || true
    "${compose[@]}" logs --no-color --tail 40 || true
  fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "e2e-compose: E2E_KEEP=1, left running; remove with: ${compose[*]} down -v"
  else
    echo "e2e-compose: tearing down"
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap teardown EXIT INT TERM

echo "e2e-compose: building and starting ($generators generators, $ingesters ingesters)"
start=$(date +%s)
"${compose[@]}" up -d --build --scale generator="$generators" --scale ingester="$ingesters"
echo "e2e-compose: up in $(( $(date +%s) - start ))s; polling Prometheus on :$PROMETHEUS_PORT and Grafana on :$GRAFANA_PORT"

# The one-shot migration must have finished with 0 (the ingesters wait for it).
migrate_exit=$("${compose[@]}" ps -a migrate --format '{{.ExitCode}}' | head -n1)
if [ -n "$migrate_exit" ] && [ "$migrate_exit" != 0 ]; then
  echo "e2e-compose: migrate exited $migrate_exit"
  exit 1
fi

(
  cd tests/compose
  ECOMSTREAM_E2E_PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT" \
  ECOMSTREAM_E2E_GRAFANA_URL="http://127.0.0.1:$GRAFANA_PORT" \
  ECOMSTREAM_E2E_GENERATORS="$generators" \
  ECOMSTREAM_E2E_INGESTERS="$ingesters" \
  ECOMSTREAM_E2E_TIMEOUT="${E2E_TIMEOUT:-5m}" \
    go test -count=1 -timeout 15m -run '^TestLiveStack$' -v .
)

# The database's own word: rows and files committed, by how many ingester instances.
"${compose[@]}" exec -T postgres sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 -c \
  "select count(*) as files, sum(records_inserted) as rows_inserted,
          count(distinct ingester_instance) as ingesters from ingested_files"'
echo "e2e-compose: passed in $(( $(date +%s) - start ))s"
