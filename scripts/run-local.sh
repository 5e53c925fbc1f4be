#!/usr/bin/env bash
# make run-local: the whole pipeline as local processes, no Docker — a throwaway
# PostgreSQL from the machine's binaries, the generator, the ingester, the collector and
# (when Debian's prometheus is installed) a Prometheus scraping them. Ctrl-C stops all.
#
# Settings come from the environment as in docker compose (GENERATOR_SLEEP=0.5 ...);
# the defaults are the report's baseline (50-100 rows per file every 2 s).
# State lives in .local/ (RUN_LOCAL_DIR); `make clean` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mkdir -p "${RUN_LOCAL_DIR:-.local}" && cd "${RUN_LOCAL_DIR:-.local}" && pwd)
pg_port=${PG_PORT:-55432}
prom_port=${PROMETHEUS_PORT:-9090}
data=$root/data
mkdir -p "$data"/{incoming,archive,failed} "$root/logs"

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "run-local: stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  scripts/pg-local.sh stop "$root/pg"
  echo "run-local: stopped (state kept in $root)"
}
trap stop_all INT TERM EXIT

echo "run-local: PostgreSQL on 127.0.0.1:$pg_port"
admin=$(scripts/pg-local.sh start "$root/pg" "$pg_port")
psql -qtAX "$admin" -c "SELECT 1 FROM pg_database WHERE datname = 'ecomstream'" | grep -q 1 \
  || psql -qX "$admin" -c "CREATE DATABASE ecomstream" >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/ecomstream?sslmode=disable"

export GENERATOR_OUTPUT_DIR=$data/incoming GENERATOR_HTTP_ADDR=${GENERATOR_HTTP_ADDR:-127.0.0.1:8081}
export INGESTER_INPUT_DIR=$data/incoming INGESTER_ARCHIVE_DIR=$data/archive INGESTER_FAILED_DIR=$data/failed
export INGESTER_HTTP_ADDR=${INGESTER_HTTP_ADDR:-127.0.0.1:8082}
export COLLECTOR_EXPORTER_STAND_IN=true COLLECTOR_WATCH_DIR=$data/incoming COLLECTOR_HTTP_ADDR=${COLLECTOR_HTTP_ADDR:-127.0.0.1:8083}

# The ingester applies the migrations; the others start once it is ready.
bin/ingester >>"$root/logs/ingester.log" 2>&1 & pids+=($!)
# It serves HTTP once the schema is in place; `ingester healthcheck` asks (no curl needed).
for _ in $(seq 150); do bin/ingester healthcheck 2>/dev/null && break; sleep 0.2; done
bin/ingester healthcheck || { echo "run-local: ingester did not start; see $root/logs/ingester.log"; tail -5 "$root/logs/ingester.log"; exit 1; }
bin/collector >>"$root/logs/collector.log" 2>&1 & pids+=($!)
bin/generator >>"$root/logs/generator.log" 2>&1 & pids+=($!)

if command -v prometheus >/dev/null 2>&1 && [ -f deploy/prometheus/prometheus.local.yml ]; then
  mkdir -p "$root/prometheus"
  prometheus --config.file=deploy/prometheus/prometheus.local.yml --storage.tsdb.path="$root/prometheus" \
    --web.listen-address="127.0.0.1:$prom_port" >>"$root/logs/prometheus.log" 2>&1 & pids+=($!)
  prom="http://127.0.0.1:$prom_port"
else
  prom="(not started: install Debian's prometheus package)"
fi

cat <<EOT
run-local: running — Ctrl-C stops everything
  generator   http://$GENERATOR_HTTP_ADDR/metrics
  ingester    http://$INGESTER_HTTP_ADDR/metrics
  collector   http://$COLLECTOR_HTTP_ADDR/metrics
  prometheus  $prom
  postgres    $DATABASE_URL
  files       $data/{incoming,archive,failed}
  logs        $root/logs/*.log
EOT

# A progress line every 5 s: what landed and how fast (latency = commit - file mtime).
while :; do
  sleep 5
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "run-local: a service exited; see $root/logs"; exit 1; }; done
  psql -qtAX -F ' ' "$DATABASE_URL" -c "SELECT count(*), coalesce(sum(records_inserted),0), coalesce(sum(records_rejected),0),
      coalesce(round((1000*percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)))::numeric,1),0),
      coalesce(round((1000*percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)))::numeric,1),0)
    FROM ingested_files WHERE committed_at > now() - interval '1 minute'" 2>/dev/null |
  while read -r files ins rej p50 p99; do
    total=$(psql -qtAX "$DATABASE_URL" -c "SELECT count(*) FROM events" 2>/dev/null || echo '?')
    printf '%s  last minute: %s files, %s rows inserted, %s rejected, latency P50 %s ms P99 %s ms; events table: %s rows\n' \
      "$(date +%H:%M:%S)" "$files" "$ins" "$rej" "$p50" "$p99" "$total"
  done
done
