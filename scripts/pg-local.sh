#!/usr/bin/env bash
# A throwaway PostgreSQL from the machine's server binaries, for run-local, bench and
# loadtest-local. Usage:
#   scripts/pg-local.sh start DIR PORT   # initdb if needed, start, print the DATABASE_URL
#   scripts/pg-local.sh stop DIR
# As root it runs the server as the postgres (or nobody) user: PostgreSQL refuses root.
# Durability is PostgreSQL's default (fsync=on, synchronous_commit=on), as `docker compose up`
# runs it: latencies and rates measured here are what users get. PG_LOCAL_OPTS adds server
# options (e.g. "-c log_checkpoints=on"); a comparison with asynchronous commits is a
# labelled row of its own (make bench BENCH_SYNC_OFF=1), never a headline.
set -euo pipefail

cmd=${1:?usage: pg-local.sh start|stop DIR [PORT]}
dir=$(mkdir -p "${2:?DIR}" && cd "$2" && pwd)
port=${3:-55432}

# As root the server runs as postgres (or nobody), which must reach DIR. A checkout under
# /root (mode 700) is out of its reach: keep the cluster under /tmp instead, at a path
# derived from DIR so start and stop agree, and leave a link to it in DIR.
pguser=""
if [ "$(id -u)" = 0 ]; then
  pguser=postgres; id postgres >/dev/null 2>&1 || pguser=nobody
  if ! runuser -u "$pguser" -- test -x "$dir" 2>/dev/null; then
    real=/tmp/ecomstream-pg-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
    mkdir -p "$real"
    ln -sfn "$real" "$dir/cluster"
    dir=$real
  fi
fi

bindir=""
if command -v pg_ctl >/dev/null 2>&1; then
  bindir=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
else
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -x "$bindir/initdb" ] || { echo "pg-local: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ -n "$pguser" ]; then
    chown -R "$pguser" "$dir"
    runuser -u "$pguser" -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
start)
  chmod 755 "$dir"
  if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
    mkdir -p "$dir/pgdata"
    as_pg "$bindir/initdb" -D "$dir/pgdata" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  as_pg "$bindir/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pgdata -c max_connections=200 ${PG_LOCAL_OPTS:-}" \
    start >/dev/null || { tail -20 "$dir/postgres.log" >&2; exit 1; }
  echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  ;;
stop)
  [ -f "$dir/pgdata/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$dir/pgdata" -m fast -w stop >/dev/null || true
  ;;
*) echo "pg-local: unknown command $cmd" >&2; exit 2 ;;
esac
