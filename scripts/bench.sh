#!/usr/bin/env bash
# make bench: the same 1,000,000 rows (100 files of 10,000) loaded four ways, one after the
# other, into one throwaway PostgreSQL at its default durability (synchronous_commit and
# fsync on), each into a fresh database with the primary key and the four indexes:
#   1. psql \copy, one connection per file (a process and a session per file);
#   2. psql \copy, all files in one stream (one session);
#   3. psql \copy, two parallel streams: the no-bookkeeping parallel baseline;
#   4. the ingester end to end: files renamed into its watched directory, timed from the
#      first arrival to the last commit (watch, validate, COPY, ledger, archive).
# For each: rows/s and the ratio to the 2-stream rate, PostgreSQL's CPU per row (the
# postmaster, its live and its exited processes, from /proc) and WAL bytes per row; for the
# ingester its CPU-seconds per million rows and peak RSS. CPU per row is the figure to trust
# on a busy machine; rates are compared only within one run.
# Then the commit latency of single 100-row files. BENCH_BREAKDOWN=1 adds where
# PostgreSQL's time goes per row: \copy of BENCH_BREAKDOWN_FILES (20) files into a table
# with no index, the primary key alone, the key plus each index, all of them, and all of
# them with each file's rows sorted by event_id.
# Sizes: BENCH_FILES (100) x BENCH_ROWS (10000); BENCH_REPEAT (1) runs each loader that
# many times and reports the median rate; BENCH_SYNC_OFF=1 adds a labelled row of the
# ingester with synchronous_commit off (a comparison, not the headline); BENCH_REJECTED=1
# adds the ingester's peak RSS while it stores 10,000 rejected lines of invalid bytes;
# BENCH_COMPARE_BIN=path adds a row of another ingester binary (an earlier build: an A/B in
# one run), measured just before bin/ingester in each round. BENCH_PROFILE=DIR writes
# bin/ingester's CPU profile of each run (INGESTER_CPU_PROFILE: start-up to exit, the
# last run's with the 100-row files) to DIR/ingest-ROUND.pprof, for go tool pprof.
# BENCH_SORTS="none event_id user_id ..." adds PostgreSQL's CPU per row with each file's
# rows sorted by one column (2 streams of \copy into events; see below).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${BENCH_FILES:-100}
[ -n "${BENCH_PROFILE:-}" ] && mkdir -p "$BENCH_PROFILE" && BENCH_PROFILE=$(cd "$BENCH_PROFILE" && pwd)
ROWS=${BENCH_ROWS:-10000}
PORT=${BENCH_PORT:-55433}
REPEAT=${BENCH_REPEAT:-1}
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
# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds (every poll_every
# seconds, 0.05), failing the bench (instead of hanging) when the ingester died or time ran out.
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@"; do
    if [ -n "$ing_pid" ] && ! kill -0 "$ing_pid" 2>/dev/null; then say "bench: the ingester exited while waiting for $what; its log:"; tail -20 "$work/ingester.log" >&2; exit 1; fi
    [ "$(date +%s)" -lt "$end" ] || { say "bench: gave up waiting for $what after ${limit}s"; exit 1; }
    sleep "${poll_every:-0.05}"
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


say "bench: starting PostgreSQL (default durability)"
base=$(scripts/pg-local.sh start "$work/pg" "$PORT")
url() { echo "${base/\/postgres\?//$1?}"; }
durability=$(psql -qtAX "$base" -c "SELECT 'synchronous_commit=' || current_setting('synchronous_commit') || ', fsync=' || current_setting('fsync') || ', shared_buffers=' || current_setting('shared_buffers')")
pm=$(head -n 1 "$(psql -qtAX "$base" -c "SHOW data_directory")/postmaster.pid")
hz=$(getconf CLK_TCK)
# CPU-seconds PostgreSQL has used: the postmaster with its reaped children (backends
# that ended: per-file \copy sessions) and its live children (backends, WAL writer,
# checkpointer).
pg_cpu() { { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" -v hz="$hz" '$1 == pm { t += $14 + $15 + $16 + $17 } $4 == pm { t += $14 + $15 } END { printf "%.3f", t / hz }'; }
# The whole machine's busy and total CPU time (jiffies), from /proc/stat: the share busy
# during a run shows how much the other tenants of a shared machine took.
host_cpu() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
host_busy() { # BUSY0 TOTAL0: percent busy since
  local b1 t1; read -r b1 t1 <<<"$(host_cpu)"
  calc "100 * ($b1 - $1) / ($t1 - $2)"
}
proc_cpu() { awk -v hz="$hz" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# WAL position in bytes: exact, where pg_stat_wal lags until a session reports.
wal_bytes() { psql -qtAX "$base" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"; }
# Checkpoints begun so far (timed or requested: max_wal_size reached). One inside a run
# costs it full-page images of every page it touches after it, in WAL and CPU.
checkpoints() { psql -qtAX "$base" -c "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"; }

say "bench: generating $FILES files of $ROWS rows"
mkdir -p "$work/files"
bin/generator --output-dir "$work/files" --min-records "$ROWS" --max-records "$ROWS" --sleep 0 \
  --max-files "$FILES" --http-addr 127.0.0.1:0 --instance bench --seed 1 --log-level warn
total=$((FILES * ROWS))
cols="event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity"
# The \copy loaders store the same rows as the ingester, source_file included: each file's
# copy for them carries its name in a last column (the ingester stores the name it took
# the file by). With a constant default instead, they wrote ~34 bytes less WAL a row
# (511 against 545) and crossed the checkpoint that max_wal_size starts at ~539 MB of
# WAL later than the ingester did, if at all.
mkdir -p "$work/copyfiles"
for f in "$work"/files/*.csv; do
  awk -v n="$(basename "$f")" 'NR == 1 { print $0 ",source_file"; next } { print $0 "," n }' "$f" > "$work/copyfiles/$(basename "$f")"
done
ls "$work"/copyfiles/*.csv | sed "s|.*|\\\\copy events($cols,source_file) FROM '&' WITH (FORMAT csv, HEADER true)|" > "$work/copy.sql"
split -n l/2 "$work/copy.sql" "$work/copy.part."

# fresh_db NAME: an empty database with the events schema (the ingester's migrations);
# source_file gets a default for \copy, which has no such column.
fresh_db() {
  PGOPTIONS=--client-min-messages=warning psql -qX "$base" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  DATABASE_URL=$(url "$1") bin/ingester migrate --input-dir "$work/in" --log-level warn
  psql -qX "$(url "$1")" -c "ALTER TABLE events ALTER COLUMN source_file SET DEFAULT 'bench'"
}
check_rows() {
  local n; n=$(psql -qtAX "$(url "$1")" -c "SELECT count(*) FROM events")
  [ "$n" -eq "$total" ] || { say "bench: $2 stored $n of $total rows"; exit 1; }
}

# BENCH_WAITS=1: what the loader's backends were doing, sampled every 20 ms by one psql
# session (pg_stat_activity) while it ran: per loader, the mean number of its backends in
# each state (running, waiting for the client's data, for a lock, for the WAL fsync of a
# commit, idle in or between transactions). Where a loader's rate falls short of what its
# CPU per row allows, this says whether its backends idled, waited on the disk or on
# each other.
waits_start() { # DB
  [ "${BENCH_WAITS:-0}" = 1 ] || return 0
  local db=$1
  while :; do
    echo "SELECT coalesce(string_agg(CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running') ELSE replace(state, ' ', '_') END, ' '), '-') FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend' AND pid <> pg_backend_pid();"
    sleep 0.02
  done | psql -qtAX "$base" > "$work/$db.waits" 2>/dev/null &
  waits_pid=$!
}
waits_stop() { # DB
  [ "${BENCH_WAITS:-0}" = 1 ] || return 0
  kill "$waits_pid" 2>/dev/null; wait "$waits_pid" 2>/dev/null || true
  # Up to the last sample with a backend at work: the ingester's run is polled to its end
  # once a second, and the idle samples after its last commit are not part of it.
  awk -v db="$1" '{ l[NR] = $0; if ($0 ~ /(running|:)/) last = NR }
    END { for (j = 1; j <= last; j++) { n++; k = split(l[j], f, " "); for (i = 1; i <= k; i++) if (f[i] != "-") c[f[i]]++ }
      for (s in c) if (s != "idle") busy += c[s]
      printf "%s (%d samples): not idle %.2f:", db, n, busy / n; for (s in c) if (c[s] / n >= 0.005) printf " %s %.2f", s, c[s] / n; print "" }' "$work/$1.waits" >> "$work/waits.txt"
}

# measure KEY DESCRIPTION COMMAND...: run one loader on a fresh database (named KEY),
# recording seconds, PostgreSQL CPU and WAL bytes in $work/KEY.runs, one line per run.
# COMMAND prints its own elapsed seconds (it knows when it is done).
measure() {
  local key=$1 what=$2; shift 2
  fresh_db "$key"
  psql -qX "$base" -c "CHECKPOINT" >/dev/null
  say "bench: $what"
  local c0 w0 secs c1 w1 h0
  c0=$(pg_cpu); w0=$(wal_bytes); h0=$(host_cpu); k0=$(checkpoints)
  waits_start "$key"
  secs=$("$@")
  waits_stop "$key"
  c1=$(pg_cpu); w1=$(wal_bytes)
  check_rows "$key" "$what"
  echo "$secs $(calc "$c1 - $c0") $(calc "$w1 - $w0") $(cat "$work/client.cpu") $(host_busy $h0) $(( $(checkpoints) - k0 ))" >> "$work/$key.runs"
  psql -qX "$base" -c "DROP DATABASE $key" >/dev/null
}

# client_cpu: the CPU-seconds (user+sys) of this shell's reaped children, from `times`:
# in a loader's $(...), the psql processes it ran.
# (times writes to a file: in a pipe or a $(...) it would run in a child of its own.)
client_cpu() {
  times > "$work/times"
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times"
}
copy_per_file() {
  local t0; t0=$(now)
  while read -r line; do psql -qX -v ON_ERROR_STOP=1 "$(url copy_file)" -c "$line" >/dev/null; done < "$work/copy.sql"
  client_cpu > "$work/client.cpu"
  calc "$(now) - $t0"
}
copy_one_stream() {
  local t0; t0=$(now)
  psql -qX -v ON_ERROR_STOP=1 "$(url copy_one)" -f "$work/copy.sql" >/dev/null
  client_cpu > "$work/client.cpu"
  calc "$(now) - $t0"
}
copy_two_streams() {
  local t0 p pids=(); t0=$(now)
  for p in "$work"/copy.part.*; do psql -qX -v ON_ERROR_STOP=1 "$(url copy_two)" -f "$p" >/dev/null & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  client_cpu > "$work/client.cpu"
  calc "$(now) - $t0"
}

ledger_has() { [ "$(psql -qtAX "$(url "$db")" -c "SELECT count(*) FROM ingested_files WHERE file_name LIKE '$1'")" -ge "$2" ]; }
# start_ingester DB: the ingester on DB, watching a fresh directory, ready.
start_ingester() {
  db=$1
  rm -rf "$work/in" "$work/archive" "$work/failed"
  mkdir -p "$work/in" "$work/archive" "$work/failed"
  addr=127.0.0.1:$(free_port)
  local prof=()
  [ -n "${BENCH_PROFILE:-}" ] && [ -z "${ing_bin:-}" ] && prof=(--cpu-profile "$BENCH_PROFILE/$db-${r:-0}.pprof")
  DATABASE_URL=$(url "$db") "${ing_bin:-bin/ingester}" --input-dir "$work/in" --archive-dir "$work/archive" \
    --failed-dir "$work/failed" --http-addr "$addr" --log-level warn ${BENCH_INGESTER_ARGS:-} "${prof[@]}" 2>"$work/ingester.log" &
  ing_pid=$!
  wait_for 60 "the ingester to start" healthy
  sleep 0.2 # its inotify watch is set up right after the HTTP server
}
healthy() { bin/ingester healthcheck --http-addr "$addr" 2>/dev/null; }
stop_ingester() { kill "$ing_pid"; wait "$ing_pid" 2>/dev/null || true; ing_pid=""; }
# ingest: all files renamed into the watched directory, timed to the last commit. It runs
# under $(...): the ingester's CPU over the same span and its peak RSS go to files.
ingest() {
  local t0 c0 last
  rm -rf "$work/stage"; cp -a "$work/files" "$work/stage"
  c0=$(proc_cpu "$ing_pid")
  t0=$(now)
  # One mv for all files (renames in name order): a mv process per file cost 1.1 CPU-s
  # and 1.9 s of wall time for 100 files on the busy host (load 6), inside the ingester's
  # timed span and on its cores, while the \copy loaders find every file there at once.
  mv -t "$work/in/" "$work"/stage/*.csv
  calc "$(now) - $t0" >> "$work/placed.secs"
  # A psql per poll costs a process and a backend: poll once a second, which does not
  # change the figure (the end is the last commit's time, read from the ledger).
  poll_every=1 wait_for 900 "all $FILES files to be committed" ledger_has 'bench-%' "$FILES"
  calc "$(proc_cpu "$ing_pid") - $c0" > "$work/ing.cpu"
  awk '/VmHWM/ {print $2}' "/proc/$ing_pid/status" > "$work/ing.rss"
  last=$(psql -qtAX "$(url "$db")" -c "SELECT extract(epoch FROM max(committed_at)) FROM ingested_files")
  calc "$last - $t0"
}
measure_ingester() { # KEY DESCRIPTION
  fresh_db "$1"
  start_ingester "$1"
  psql -qX "$base" -c "CHECKPOINT" >/dev/null
  say "bench: $2"
  local c0 w0 secs h0
  c0=$(pg_cpu); w0=$(wal_bytes); h0=$(host_cpu); k0=$(checkpoints)
  waits_start "$1"
  secs=$(ingest)
  waits_stop "$1"
  echo "$secs $(calc "$(pg_cpu) - $c0") $(calc "$(wal_bytes) - $w0") $(cat "$work/ing.cpu") $(host_busy $h0) $(( $(checkpoints) - k0 ))" >> "$work/$1.runs"
  check_rows "$1" "$2"
  rss_kb=$(cat "$work/ing.rss")
}

# BENCH_LOADERS (default all): which of the \copy loaders run; the 2-stream baseline and
# the ingester always do (a quick comparison of ingester settings: BENCH_LOADERS=two).
loaders=" ${BENCH_LOADERS:-file one two} "
for r in $(seq "$REPEAT"); do
  [ "$REPEAT" -gt 1 ] && say "bench: round $r of $REPEAT"
  [[ $loaders == *" file "* ]] && measure copy_file "psql \\copy, one connection per file" copy_per_file
  [[ $loaders == *" one "* ]] && measure copy_one "psql \\copy, all files in one stream" copy_one_stream
  measure copy_two "psql \\copy, two parallel streams" copy_two_streams
  if [ -n "${BENCH_COMPARE_BIN:-}" ]; then
    ing_bin=$BENCH_COMPARE_BIN measure_ingester ingest_cmp "ingester end to end, $BENCH_COMPARE_BIN"
    stop_ingester; psql -qX "$base" -c "DROP DATABASE ingest_cmp" >/dev/null
  fi
  measure_ingester ingest "ingester end to end"
  if [ "$r" -lt "$REPEAT" ] || [ "${BENCH_SYNC_OFF:-0}" = 1 ]; then
    stop_ingester; psql -qX "$base" -c "DROP DATABASE ingest" >/dev/null
  fi
done
if [ "${BENCH_SYNC_OFF:-0}" = 1 ]; then
  for r in $(seq "$REPEAT"); do
    fresh_db ingest_async
    psql -qX "$base" -c "ALTER DATABASE ingest_async SET synchronous_commit = off" >/dev/null
    start_ingester ingest_async
    psql -qX "$base" -c "CHECKPOINT" >/dev/null
    say "bench: ingester end to end, synchronous_commit off (comparison only)"
    c0=$(pg_cpu); w0=$(wal_bytes); h0=$(host_cpu); k0=$(checkpoints)
    secs=$(ingest)
    echo "$secs $(calc "$(pg_cpu) - $c0") $(calc "$(wal_bytes) - $w0") $(cat "$work/ing.cpu") $(host_busy $h0) $(( $(checkpoints) - k0 ))" >> "$work/ingest_async.runs"
    check_rows ingest_async "the synchronous_commit off ingester"
    stop_ingester; psql -qX "$base" -c "DROP DATABASE ingest_async" >/dev/null
  done
  # The latency figures below are of the default-durability ingester again.
  fresh_db ingest; start_ingester ingest
fi

say "bench: commit latency of 100-row files, one at a time"
bin/generator --output-dir "$work/small" --min-records 100 --max-records 100 --sleep 0 \
  --max-files 50 --http-addr 127.0.0.1:0 --instance small --seed 2 --log-level warn
for f in "$work"/small/*.csv; do
  touch "$f"; mv "$f" "$work/in/"; sleep 0.1
done
wait_for 120 "the 100-row files to be committed" ledger_has 'small-%' 50
read -r p50 p99 <<<"$(psql -qtAX -F ' ' "$(url "$db")" -c "SELECT
  round((1000*percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)))::numeric, 1),
  round((1000*percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)))::numeric, 1)
  FROM ingested_files WHERE file_name LIKE 'small-%'")"

# median KEY: the run with the median seconds (its other figures come with it).
median() { sort -g "$work/$1.runs" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
# range KEY: the lowest and highest rate of its runs, when there are several.
range() { [ "$REPEAT" -gt 1 ] && sort -g "$work/$1.runs" | awk -v n="$total" 'NR == 1 { hi = n / $1 } { lo = n / $1 } END { printf " (%.0f-%.0f)", lo, hi }'; }
rate() { printf '%.0f' "$(calc "$total / $1")"; }
read -r s_two _ <<<"$(median copy_two)"
r_two=$(rate "$s_two")
# line KEY LABEL: the median run of KEY, when it ran. Client CPU: psql's for \copy, the
# ingester's for it; with PostgreSQL's, what one row costs the two cores in all.
line() {
  [ -f "$work/$1.runs" ] || return 0
  local s pg wal cl h k r; read -r s pg wal cl h k <<<"$(median "$1")"
  r=$(rate "$s")
  printf '| %-48s | %7.2f | %7d%s | %5.2f | %6.1f | %6.2f | %6.1f | %5.0f | %s | %3.0f |\n' "$2" "$s" "$r" "$(range "$1")" "$(calc "$r / $r_two")" \
    "$(calc "1000000 * $pg / $total")" "$(calc "1000000 * $cl / $total")" "$(calc "1000000 * ($pg + $cl) / $total")" "$(calc "$wal / $total")" "$k" "$h"
}
read -r _ _ _ cpu_ing _ <<<"$(median ingest)"
cat <<EOT

ecomstream bench: $total rows in $FILES files of $ROWS, primary key + 4 indexes, one PostgreSQL
PostgreSQL: $durability$( [ "$REPEAT" -gt 1 ] && echo "; median of $REPEAT runs")${BENCH_INGESTER_ARGS:+; ingester flags: $BENCH_INGESTER_ARGS}
| loader                                           | seconds |  rows/s$( [ "$REPEAT" -gt 1 ] && echo " (range)") | × 2-stream \\copy | PostgreSQL µs CPU/row | client µs CPU/row | total µs CPU/row | WAL bytes/row | checkpoints | host CPU busy % |
|--------------------------------------------------|--------:|--------:|------:|-------:|-------:|-------:|------:|--:|----:|
EOT
line copy_file "psql \\copy, one connection per file"
line copy_one "psql \\copy, all files in one stream"
line copy_two "psql \\copy, 2 parallel streams (baseline)"
line ingest "ingester end to end (watch..archive)"
line ingest_cmp "ingester, BENCH_COMPARE_BIN (see below)"
line ingest_async "ingester, synchronous_commit off (NOT default)"
[ -f "$work/ingest_cmp.runs" ] && echo "BENCH_COMPARE_BIN=$BENCH_COMPARE_BIN"
cat <<EOT
ingester: $(printf '%.2f' "$(calc "1000000 * $cpu_ing / $total")") CPU-seconds per million rows (user+sys), peak RSS $((rss_kb / 1024)) MiB; files placed in $(sort -g "$work/placed.secs" | awk '{ l[NR] = $1 } END { printf "%.3f", l[int((NR + 1) / 2)] }') s (median)
100-row file, file mtime -> commit: P50 ${p50} ms, P99 ${p99} ms (50 files, one at a time)
EOT

if [ -f "$work/waits.txt" ]; then
  echo
  echo "backends of each loader, mean number per state (BENCH_WAITS; one line per run; running = on CPU or runnable):"
  cat "$work/waits.txt"
fi

# After the headline table, so that a failure here cannot cost it.
if [ "${BENCH_BREAKDOWN:-0}" = 1 ]; then
  nb=${BENCH_BREAKDOWN_FILES:-20}
  brows=$((nb * ROWS))
  mkdir -p "$work/sorted"
  all_files=("$work"/files/*.csv)
  for f in "${all_files[@]:0:nb}"; do
    { head -n 1 "$f"; tail -n +2 "$f" | LC_ALL=C sort -t, -k1,1; } > "$work/sorted/$(basename "$f")"
  done
  psql -qX "$base" -c "CREATE DATABASE brk" >/dev/null
  DATABASE_URL=$(url brk) bin/ingester migrate --input-dir "$work/in" --log-level warn
  # breakdown LABEL DIR DDL...: one stream of \copy into t, made from events' columns plus DDL.
  breakdown() {
    local label=$1 dir=$2; shift 2
    PGOPTIONS=--client-min-messages=warning psql -qX "$(url brk)" -c "DROP TABLE IF EXISTS t" -c "CREATE TABLE t (LIKE events INCLUDING DEFAULTS)" \
      -c "ALTER TABLE t ALTER COLUMN source_file SET DEFAULT 'bench'" "${@/#/-c}" >/dev/null
    local fs=("$dir"/*.csv)
    printf '%s\n' "${fs[@]:0:nb}" | sed "s|.*|\\\\copy t($cols) FROM '&' WITH (FORMAT csv, HEADER true)|" > "$work/brk.sql"
    psql -qX "$base" -c "CHECKPOINT" >/dev/null
    local c0 w0 t0 secs; c0=$(pg_cpu); w0=$(wal_bytes); t0=$(now)
    psql -qX -v ON_ERROR_STOP=1 "$(url brk)" -f "$work/brk.sql" >/dev/null
    secs=$(calc "$(now) - $t0")
    printf '| %-40s | %6.1f | %5.0f | %7d |\n' "$label" "$(calc "1000000 * ($(pg_cpu) - $c0) / $brows")" \
      "$(calc "($(wal_bytes) - $w0) / $brows")" "$(printf '%.0f' "$(calc "$brows / $secs")")" >> "$work/breakdown.md"
  }
  say "bench: where PostgreSQL's time goes ($brows rows per case, one \\copy stream)"
  pk="ALTER TABLE t ADD PRIMARY KEY (event_id)"
  breakdown "heap only (no key, no index)" "$work/files"
  breakdown "+ primary key (event_id)" "$work/files" "$pk"
  for c in event_type user_id product_id event_time; do
    breakdown "+ primary key + index on $c" "$work/files" "$pk" "CREATE INDEX ON t ($c)"
  done
  all=("$pk" "CREATE INDEX ON t (event_type)" "CREATE INDEX ON t (user_id)" "CREATE INDEX ON t (product_id)" "CREATE INDEX ON t (event_time)")
  breakdown "primary key + 4 indexes (the schema)" "$work/files" "${all[@]}"
  breakdown "the schema, rows sorted by event_id" "$work/sorted" "${all[@]}"
  # The schema as migrated (events partitioned by event_time, key (event_id, event_time)),
  # one and two streams: what the second stream costs per row, and what the ingester's
  # key order (each batch sorted by the primary key, services/ingester/internal/load)
  # saves in each case.
  breakdown_events() { # LABEL DIR STREAMS [direct]
    local label=$1 dir=$2 streams=$3 fs p pids=() c0 w0 t0 secs target=events
    fresh_db brk_e
    # direct: into the partition that holds the files' rows (generated just now: today's,
    # named as package partition names it), skipping tuple routing.
    [ "${4:-}" = direct ] && target=events_p$(date -u +%Y%m%d)
    fs=("$dir"/*.csv)
    printf '%s\n' "${fs[@]:0:nb}" | sed "s|.*|\\\\copy $target($cols) FROM '&' WITH (FORMAT csv, HEADER true)|" > "$work/brk.sql"
    rm -f "$work"/brk.part.*; split -n "l/$streams" "$work/brk.sql" "$work/brk.part."
    psql -qX "$base" -c "CHECKPOINT" >/dev/null
    c0=$(pg_cpu); w0=$(wal_bytes); t0=$(now)
    for p in "$work"/brk.part.*; do psql -qX -v ON_ERROR_STOP=1 "$(url brk_e)" -f "$p" >/dev/null & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p"; done
    secs=$(calc "$(now) - $t0")
    printf '| %-40s | %6.1f | %5.0f | %7d |\n' "$label" "$(calc "1000000 * ($(pg_cpu) - $c0) / $brows")" \
      "$(calc "($(wal_bytes) - $w0) / $brows")" "$(printf '%.0f' "$(calc "$brows / $secs")")" >> "$work/breakdown.md"
    psql -qX "$base" -c "DROP DATABASE brk_e" >/dev/null
  }
  breakdown_events "events as migrated, 1 stream" "$work/files" 1
  breakdown_events "events as migrated, 1 stream, sorted" "$work/sorted" 1
  breakdown_events "events as migrated, 2 streams" "$work/files" 2
  breakdown_events "events as migrated, 2 streams, sorted" "$work/sorted" 2
  breakdown_events "2 streams, sorted, into the partition" "$work/sorted" 2 direct
fi

# After the headline too: issue 8's memory bound. One file of BENCH_REJECTED_LINES (10,000)
# lines of 4,000 invalid bytes, every line stored (--max-rejected-per-file 0), so the
# rejected-row buffer fills to its bound (MAX_REJECTED_BUFFER rows, each capped at 4 KiB
# after escaping): the ingester's peak RSS, in a fresh process, against that bound.
if [ "${BENCH_REJECTED:-0}" = 1 ]; then
  nrej=${BENCH_REJECTED_LINES:-10000}
  stop_ingester
  fresh_db rej
  BENCH_INGESTER_ARGS="--max-rejected-per-file 0 ${BENCH_INGESTER_ARGS:-}" start_ingester rej
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$ing_pid/status")
  say "bench: peak RSS while rejecting $nrej lines of 4,000 invalid bytes"
  perl -e 'print "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n"; print "\xff" x 4000, "\n" for 1..$ARGV[0]' "$nrej" > "$work/.rejected-lines.csv"
  mv "$work/.rejected-lines.csv" "$work/in/rejected-lines.csv"
  wait_for 300 "the rejected file to be committed" ledger_has 'rejected-lines.csv' 1
  rss_rej=$(awk '/VmHWM/ {print $2}' "/proc/$ing_pid/status")
  stored=$(psql -qtAX "$(url rej)" -c "SELECT count(*) || ' rows, longest raw_line ' || max(octet_length(raw_line)) || ' bytes' FROM rejected_records WHERE source_file = 'rejected-lines.csv'")
  cat <<EOT

rejected rows: $nrej lines of 4,000 invalid bytes in one file ($(( $(stat -c %s "$work/archive/rejected-lines.csv" 2>/dev/null || echo 0) / 1048576 )) MiB), every line stored ($stored)
ingester peak RSS $((rss_rej / 1024)) MiB (idle at start $((rss0 / 1024)) MiB; the 1,000,000-row run above $((rss_kb / 1024)) MiB);
the rejected buffer's bound: MAX_REJECTED_BUFFER (10,000) rows, each at most 4 KiB after escaping, and 8 MiB in all per worker (flushed then)
EOT
fi

# BENCH_SORTS="event_id user_id ...": which order of a file's rows costs PostgreSQL least,
# with two streams into events as migrated: \copy of BENCH_BREAKDOWN_FILES (20) files,
# each file's rows sorted by one column (none: as generated), the orders taken in turn
# BENCH_SORTS_ROUNDS (2) times, so that a change in the host's load falls on all of them.
if [ -n "${BENCH_SORTS:-}" ]; then
  nb=${BENCH_BREAKDOWN_FILES:-20}
  brows=$((nb * ROWS))
  all_files=("$work"/files/*.csv)
  for c in $BENCH_SORTS; do
    mkdir -p "$work/by-$c"
    k=$(echo "$cols" | tr , '\n' | grep -nx "$c" | cut -d: -f1) || true
    num=""; case $c in user_id|product_id) num=n ;; esac
    for f in "${all_files[@]:0:nb}"; do
      if [ "$c" = none ]; then cp "$f" "$work/by-$c/"; continue; fi
      # Columns 1 to 6 come before category, the only one that may be quoted with a comma.
      { head -n 1 "$f"; tail -n +2 "$f" | LC_ALL=C sort -t, -k"$k,$k$num"; } > "$work/by-$c/$(basename "$f")"
    done
  done
  say "bench: row orders, 2 streams into events ($brows rows per case)"
  for r in $(seq "${BENCH_SORTS_ROUNDS:-2}"); do
    for c in $BENCH_SORTS; do
      fresh_db srt
      printf '%s\n' "$work/by-$c"/*.csv | sed "s|.*|\\\\copy events($cols) FROM '&' WITH (FORMAT csv, HEADER true)|" > "$work/srt.sql"
      rm -f "$work"/srt.part.*; split -n l/2 "$work/srt.sql" "$work/srt.part."
      psql -qX "$base" -c "CHECKPOINT" >/dev/null
      c0=$(pg_cpu); w0=$(wal_bytes); t0=$(now); pids=()
      for p in "$work"/srt.part.*; do psql -qX -v ON_ERROR_STOP=1 "$(url srt)" -f "$p" >/dev/null & pids+=($!); done
      for p in "${pids[@]}"; do wait "$p"; done
      secs=$(calc "$(now) - $t0")
      printf '| %-12s | %d | %6.1f | %5.0f | %7d |\n' "$c" "$r" "$(calc "1000000 * ($(pg_cpu) - $c0) / $brows")" \
        "$(calc "($(wal_bytes) - $w0) / $brows")" "$(printf '%.0f' "$(calc "$brows / $secs")")" >> "$work/sorts.md"
      psql -qX "$base" -c "DROP DATABASE srt" >/dev/null
    done
  done
  cat <<EOT

rows of each file sorted by: \copy of $brows rows, 2 streams, into events as migrated
| sorted by    | round | µs CPU/row | WAL B/row | rows/s |
|--------------|------:|-----------:|----------:|-------:|
$(sort -s -k2,2 "$work/sorts.md")
EOT
fi

if [ -f "$work/breakdown.md" ]; then
  cat <<EOT

where PostgreSQL's time goes: \\copy of $brows rows, one stream, into tables with
| table                                    | µs CPU/row | WAL B/row | rows/s |
|------------------------------------------|-----------:|----------:|-------:|
$(cat "$work/breakdown.md")
EOT
fi
