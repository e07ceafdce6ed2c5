#!/usr/bin/env bash
# Installs the npm packages the tests run against (tests/fixtures/npm: the real AWS X-Ray SDK for
# Node and Express) into tests/fixtures/npm/node_modules, exactly as pinned by its
# package-lock.json (`npm ci`). Idempotent and fast on re-runs: a marker in node_modules records
# the lock file's hash, and the install is skipped while it matches. Called by install-deps.sh.
# Tests that need these packages skip with a reason when node_modules is missing.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dirs=("$@")
((${#dirs[@]})) || dirs=("$src/tests/fixtures/npm")

if ! command -v npm >/dev/null; then
  echo "install-npm: npm not found (Debian package 'npm'); tests that need npm packages will skip" >&2
  exit 0
fi

for dir in "${dirs[@]}"; do
  lock="$dir/package-lock.json"
  marker="$dir/node_modules/.passport-lock-sha256"
  [[ -f $lock ]] || { echo "install-npm: $lock missing" >&2; exit 1; }
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [[ -f $marker && $(cat "$marker") == "$want" ]]; then
    echo "install-npm: $dir up to date"
    continue
  fi
  echo "install-npm: npm ci in $dir"
  # --prefer-offline: reuse npm's own cache (~/.npm) so a re-install after a clean is quick.
  (cd "$dir" && npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error)
  echo "$want" >"$marker"
done
