#!/usr/bin/env bash
# make smoke-images: run our own binaries as containers the way the compose stack does,
# on a Docker daemon that cannot pull images (no registry): the images are built FROM
# scratch with the runtime stage's layout (static binary, /data owned by 65532, USER
# 65532, no shell), so this checks what the distroless images rely on:
#   - the binaries are static and run with no libc, shell or /etc;
#   - a fresh named volume mounted at /data takes the image's ownership, so the nonroot
#     services can write incoming/, archive/ and failed/;
#   - `ingester migrate` as a one-shot job, and `<service> healthcheck` as an exec-form
#     healthcheck, work without a shell;
#   - generator -> volume -> ingester -> PostgreSQL lands every row;
#   - all of it with compose's least privilege: a read-only root file system, no
#     capabilities, no-new-privileges (the programs write only to the volume).
# Host networking only (PostgreSQL from scripts/pg-local.sh). Without a daemon it skips.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
  echo "smoke-images: skipped: no Docker daemon"; exit 0
fi
tag=ecomstream-smoke-$$
work=$(mktemp -d /tmp/ecomstream-smoke.XXXXXX)
chmod 755 "$work"
port=${SMOKE_PG_PORT:-55461}
cleanup() {
  docker rm -f "$tag-ingester" "$tag-collector" "$tag-generator" >/dev/null 2>&1 || true
  docker volume rm -f "$tag-data" >/dev/null 2>&1 || true
  for s in generator ingester collector; do docker rmi -f "$tag/$s" >/dev/null 2>&1 || true; done
  scripts/pg-local.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT

make -s build
mkdir -p "$work/ctx/data/incoming" "$work/ctx/data/archive" "$work/ctx/data/failed"
cp bin/generator bin/ingester bin/collector "$work/ctx/"
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS runtime
COPY --chown=65532:65532 data /data
USER 65532:65532
WORKDIR /data
FROM runtime AS generator
COPY generator /usr/local/bin/generator
ENTRYPOINT ["/usr/local/bin/generator"]
FROM runtime AS ingester
COPY ingester /usr/local/bin/ingester
ENTRYPOINT ["/usr/local/bin/ingester"]
FROM runtime AS collector
COPY collector /usr/local/bin/collector
ENTRYPOINT ["/usr/local/bin/collector"]
DOCKERFILE
for s in generator ingester collector; do
  # The legacy builder: a daemon without buildx still builds this file (and says it is deprecated).
  DOCKER_BUILDKIT=0 docker build -q --target "$s" -t "$tag/$s" "$work/ctx" >/dev/null 2>"$work/build.log" \
    || { cat "$work/build.log"; exit 1; }
done
echo "smoke-images: images built"

admin=$(scripts/pg-local.sh start "$work/pg" "$port")
psql -qX "$admin" -c "CREATE DATABASE smoke" >/dev/null
db="postgres://postgres@127.0.0.1:$port/smoke?sslmode=disable"
docker volume create "$tag-data" >/dev/null
# As docker-compose.yml runs them: read-only root, no capabilities, no privilege gain.
run() {
  docker run --network host --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    -v "$tag-data:/data" -e DATABASE_URL="$db" "$@"
}

run --rm "$tag/ingester" migrate --log-level warn
echo "smoke-images: ingester migrate (one-shot) exited 0"
run -d --name "$tag-ingester" -e INGESTER_HTTP_ADDR=127.0.0.1:18382 "$tag/ingester" >/dev/null
run -d --name "$tag-collector" -e COLLECTOR_HTTP_ADDR=127.0.0.1:18383 -e COLLECTOR_WATCH_DIR=/data/incoming "$tag/collector" >/dev/null
run -d --name "$tag-generator" -e GENERATOR_HTTP_ADDR=127.0.0.1:18381 -e GENERATOR_OUTPUT_DIR=/data/incoming \
  "$tag/generator" --max-files 20 --sleep 0.1 --min-records 100 --max-records 100 --bad-rate 0.02 >/dev/null

code=$(docker wait "$tag-generator")
[ "$code" = 0 ] || { docker logs "$tag-generator" | tail -5; echo "smoke-images: generator exited $code"; exit 1; }
for i in $(seq 150); do
  n=$(psql -qtAX "$db" -c "SELECT count(*) FROM ingested_files")
  [ "$n" -ge 20 ] && break
  sleep 0.2
done
read -r files total ins rej <<<"$(psql -qtAX -F ' ' "$db" -c "SELECT count(*), sum(records_total), sum(records_inserted), sum(records_rejected) FROM ingested_files")"
[ "$files" = 20 ] && [ "$total" = 2000 ] && [ "$((ins + rej))" = 2000 ] && [ "$rej" = 40 ] || {
  docker logs "$tag-ingester" 2>&1 | tail -10
  echo "smoke-images: ledger has $files files, $total rows ($ins inserted, $rej rejected); want 20 files, 2000 rows, 40 rejected"; exit 1; }
echo "smoke-images: 20 files, 2000 rows from the generator container committed by the ingester container ($ins inserted, $rej rejected)"

docker exec "$tag-ingester" /usr/local/bin/ingester healthcheck --http-addr 127.0.0.1:18382
docker exec "$tag-collector" /usr/local/bin/collector healthcheck --http-addr 127.0.0.1:18383
echo "smoke-images: exec-form healthchecks answer without a shell"
# The ingester (uid 65532) moved every file into the volume's archive: ownership worked.
docker logs "$tag-ingester" 2>&1 | grep -q '"level":"error"' && { docker logs "$tag-ingester" 2>&1 | grep '"level":"error"' | head -5; echo "smoke-images: ingester logged errors"; exit 1; }
echo "smoke-images: PASS"
