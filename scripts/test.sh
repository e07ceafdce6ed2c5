#!/usr/bin/env bash
# README command 2: set up, build, and run every test through ctest (labels: unit, replay,
# kernel, e2e). Kernel and e2e tests need root and load real BPF programs. Then the unit and
# replay tests again under ASan/UBSan (scripts/sanitize.sh, build-asan/) and the short fuzz runs
# (scripts/fuzz.sh, build-fuzz/, label fuzz). Tests labelled soak (long, full-size load) run
# only when asked for: scripts/test.sh -L soak.
# Extra arguments go to ctest (e.g. -L unit) and run only the main build's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
if [[ " $* " == *soak* ]]; then
  ctest --test-dir build --output-on-failure "$@"
else
  ctest --test-dir build --output-on-failure --timeout 300 -LE soak "$@"
fi
if (($# == 0)); then
  scripts/sanitize.sh
  scripts/fuzz.sh
fi
