#!/usr/bin/env bash
# make test's check that no build output is committed: `go build` in a package folder
# leaves a binary named after the folder, which `git add -A` picks up (twice so far, 25 MB
# each, kept in the history of every clone). Fails on a tracked executable (ELF) or a
# tracked file over 2 MiB. Outside a git checkout (a source tarball) there is nothing to check.
set -euo pipefail
cd "$(dirname "$0")/.."
git rev-parse --git-dir >/dev/null 2>&1 || exit 0
bad=()
# Builtins only inside the loop (a fork per file costs half a minute on a busy machine).
export LC_ALL=C
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  magic=""
  IFS= read -r -N 4 magic <"$f" 2>/dev/null || true
  [ "$magic" = $'\x7fELF' ] && bad+=("$f (an executable)")
done < <(git ls-files -z)
while IFS= read -r -d '' line; do # "mode type object size<TAB>path"
  meta=${line%%$'\t'*} path=${line#*$'\t'}
  size=${meta##* }
  [ "$size" != - ] && [ "$size" -gt $((2 << 20)) ] && bad+=("$path (over 2 MiB)")
done < <(git ls-tree -r -l -z HEAD 2>/dev/null)
if [ ${#bad[@]} -gt 0 ]; then
  printf 'tracked by git, and build output or too large to belong in the repository:\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  printf 'remove it with git rm --cached and, if it is build output, add it to .gitignore\n' >&2
  exit 1
fi
