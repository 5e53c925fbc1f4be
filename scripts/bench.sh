#!/usr/bin/env bash
# make bench: ingest the same 1,000,000 rows (100 files of 10,000) two ways in one run on
# one throwaway PostgreSQL, and print rows/s and the ratio:
#   1. the physical baseline: psql \copy of the files into an identical table with the
#      same primary key and four indexes, one stream (and two parallel streams, for scale);
#   2. the ingester end to end: files renamed into its watched directory, timed from the
#      first arrival to the last commit (watch, validate, COPY, ledger, archive).
# Then the ingester's peak RSS and the commit latency of single 100-row files.
# Sizes: BENCH_FILES (100) x BENCH_ROWS (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${BENCH_FILES:-100}
ROWS=${BENCH_ROWS:-10000}
PORT=${BENCH_PORT:-55433}
work=$(mktemp -d /tmp/ecomstream-bench.XXXXXX)
chmod 755 "$work"
ing_pid=""
cleanup() {
  [ -n "$ing_pid" ] && kill "$ing_pid" 2>/dev/null && wait "$ing_pid" 2>/dev/null || true
  scripts/pg-local.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds, failing the bench
# (instead of hanging) when the ingester died or time ran out.
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@"; do
    if [ -n "$ing_pid" ] && ! kill -0 "$ing_pid" 2>/dev/null; then say "bench: the ingester exited while waiting for $what; its log:"; tail -20 "$work/ingester.log" >&2; exit 1; fi
    [ "$(date +%s)" -lt "$end" ] || { say "bench: gave up waiting for $what after ${limit}s"; exit 1; }
    sleep 0.05
  done
}
free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  say "bench: no free port"; exit 1
}
calc() { awk "BEGIN { print $* }"; }
say() { printf '%s\n' "$*" >&2; }

say "bench: starting PostgreSQL"
base=$(scripts/pg-local.sh start "$work/pg" "$PORT")
url() { echo "${base/\/postgres\?//$1?}"; }
for d in copy1 copy2 ingest; do psql -qX "$base" -c "CREATE DATABASE $d" >/dev/null; done

say "bench: generating $FILES files of $ROWS rows"
mkdir -p "$work/files"
bin/generator --output-dir "$work/files" --min-records "$ROWS" --max-records "$ROWS" --sleep 0 \
  --max-files "$FILES" --http-addr 127.0.0.1:0 --instance bench --seed 1 --log-level warn
total=$((FILES * ROWS))
cols="event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity"

# Identical schema for the baseline; source_file gets a default since \copy has no such column.
for d in copy1 copy2 ingest; do
  DATABASE_URL=$(url $d) bin/ingester migrate --input-dir "$work/in" --log-level warn
done
for d in copy1 copy2; do
  psql -qX "$(url $d)" -c "ALTER TABLE events ALTER COLUMN source_file SET DEFAULT 'bench'"
done
psql -qX "$base" -c "CHECKPOINT" >/dev/null

say "bench: baseline, psql \\copy, one stream"
ls "$work"/files/*.csv | sed "s|.*|\\\\copy events($cols) FROM '&' WITH (FORMAT csv, HEADER true)|" > "$work/copy.sql"
t0=$(now); psql -qX -v ON_ERROR_STOP=1 "$(url copy1)" -f "$work/copy.sql" >/dev/null; t1=$(now)
copy1=$(calc "$t1 - $t0")

say "bench: baseline, psql \\copy, two parallel streams"
psql -qX "$base" -c "CHECKPOINT" >/dev/null
split -n l/2 "$work/copy.sql" "$work/copy.part."
t0=$(now)
for p in "$work"/copy.part.*; do psql -qX -v ON_ERROR_STOP=1 "$(url copy2)" -f "$p" >/dev/null & done
wait
t1=$(now); copy2=$(calc "$t1 - $t0")

say "bench: ingester end to end"
psql -qX "$base" -c "CHECKPOINT" >/dev/null
mkdir -p "$work/in" "$work/archive" "$work/failed"
addr=127.0.0.1:$(free_port)
DATABASE_URL=$(url ingest) bin/ingester --input-dir "$work/in" --archive-dir "$work/archive" \
  --failed-dir "$work/failed" --http-addr "$addr" --log-level warn ${BENCH_INGESTER_ARGS:-} 2>"$work/ingester.log" &
ing_pid=$!
wait_for 60 "the ingester to start" bin/ingester healthcheck --http-addr "$addr"
sleep 0.2 # its inotify watch is set up right after the HTTP server
ledger_has() { [ "$(psql -qtAX "$(url ingest)" -c "SELECT count(*) FROM ingested_files WHERE file_name LIKE '$1'")" -ge "$2" ]; }
t0=$(now)
for f in "$work"/files/*.csv; do mv "$f" "$work/in/"; done
wait_for 900 "all $FILES files to be committed" ledger_has 'bench-%' "$FILES"
last=$(psql -qtAX "$(url ingest)" -c "SELECT extract(epoch FROM max(committed_at)) FROM ingested_files")
ingest=$(calc "$last - $t0")
inserted=$(psql -qtAX "$(url ingest)" -c "SELECT count(*) FROM events")
[ "$inserted" -eq "$total" ] || { say "bench: ingester inserted $inserted of $total rows"; exit 1; }

say "bench: commit latency of 100-row files, one at a time"
bin/generator --output-dir "$work/small" --min-records 100 --max-records 100 --sleep 0 \
  --max-files 50 --http-addr 127.0.0.1:0 --instance small --seed 2 --log-level warn
for f in "$work"/small/*.csv; do
  touch "$f"; mv "$f" "$work/in/"; sleep 0.1
done
wait_for 120 "the 100-row files to be committed" ledger_has 'small-%' 50
read -r p50 p99 <<<"$(psql -qtAX -F ' ' "$(url ingest)" -c "SELECT
  round((1000*percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)))::numeric, 1),
  round((1000*percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)))::numeric, 1)
  FROM ingested_files WHERE file_name LIKE 'small-%'")"
rss=$(awk '/VmHWM/ {print $2}' /proc/$ing_pid/status)

rate() { printf '%.0f' "$(calc "$total / $1")"; }
r1=$(rate "$copy1"); r2=$(rate "$copy2"); ri=$(rate "$ingest")
cat <<EOT

ecomstream bench: $total rows in $FILES files of $ROWS, primary key + 4 indexes, one PostgreSQL
| path                                   | seconds | rows/s  | ratio to \\copy x1 |
|----------------------------------------|--------:|--------:|------------------:|
| psql \\copy, one stream (baseline)      | $(printf '%7.2f' "$copy1") | $(printf '%7d' "$r1") | 1.00 |
| psql \\copy, two parallel streams       | $(printf '%7.2f' "$copy2") | $(printf '%7d' "$r2") | $(printf '%.2f' "$(calc "$r2 / $r1")") |
| ingester end to end (watch..archive)   | $(printf '%7.2f' "$ingest") | $(printf '%7d' "$ri") | $(printf '%.2f' "$(calc "$ri / $r1")") |
ingester peak RSS: $((rss / 1024)) MiB
100-row file, file mtime -> commit: P50 ${p50} ms, P99 ${p99} ms (50 files)
EOT
