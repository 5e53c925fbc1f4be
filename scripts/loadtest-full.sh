#!/usr/bin/env bash
# The report's three scenarios at full length, then the max ramp, one after another (never
# in parallel: they would share the cores they measure). About 35 minutes.
#   scripts/loadtest-full.sh [local|compose|auto] [extra loadtest flags...]
# Each run writes reports/<scenario>-<UTC time>.{md,json,html}; the exit status is the
# number of runs that failed a target (0 = all passed).
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-local}; shift || true
go build -trimpath -o bin/loadtest ./services/loadtest || exit 2
failed=0
for s in baseline high-load stress max; do
  echo "=== $s $(date -u +%FT%TZ)"
  bin/loadtest --mode "$mode" --scenario "$s" "$@" || failed=$((failed + 1))
done
exit "$failed"
