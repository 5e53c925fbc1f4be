#!/usr/bin/env bash
# make loadtest / make loadtest-local: build the load test and run one scenario.
#   scripts/loadtest.sh auto|local|compose [extra loadtest flags...]
# Make's variables reach it as the environment: SCENARIO (baseline, high-load, stress,
# custom, max), DURATION (10m, 60s), GENERATORS, INGESTERS, TRIGGER (10s, 30s); any other
# setting as LOADTEST_* (bin/loadtest --help lists them) or as extra flags.
# auto = compose when a Docker daemon answers `docker info`, else local processes.
# Exit status: 0 every target holds, 1 an SLA target or invariant failed, 2 no run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-auto}; shift || true
go build -trimpath -o bin/loadtest ./services/loadtest
args=(--mode "$mode")
[ -n "${SCENARIO:-}" ] && args+=(--scenario "$SCENARIO")
[ -n "${DURATION:-}" ] && args+=(--duration "$DURATION")
[ -n "${GENERATORS:-}" ] && args+=(--generators "$GENERATORS")
[ -n "${INGESTERS:-}" ] && args+=(--ingesters "$INGESTERS")
[ -n "${TRIGGER:-}" ] && args+=(--trigger-interval "$TRIGGER")
exec bin/loadtest "${args[@]}" "$@"
