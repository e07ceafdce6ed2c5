#!/usr/bin/env bash
# README command 2: set up, build, and run every test through ctest (labels: unit, replay,
# kernel, e2e). Kernel and e2e tests need root and load real BPF programs. Then the unit and
# replay tests again under ASan/UBSan (scripts/sanitize.sh, build-asan/) and the short fuzz runs
# (scripts/fuzz.sh, build-fuzz/, label fuzz). Tests labelled soak (long, full-size load) run
# only when asked for: scripts/test.sh -L soak; so do those labelled image (the container image
# built from the Debian mirror and run with podman): scripts/test.sh -L image. Style
# (scripts/lint.sh) fails the run too: clang-format right after the build, clang-tidy in the
# background while the tests run.
# Extra arguments go to ctest (e.g. -L unit) and run only the main build's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
scripts/lint.sh --format
extra=""
tidy=""
if (($# == 0)); then
  # clang-tidy and the sanitizer and fuzz builds take the CPU the kernel and e2e tests leave idle
  # (those mostly wait on real programs), at the lowest priority so the tests are served first.
  nice -n 19 scripts/lint.sh --tidy >build/lint-tidy.out 2>&1 &
  tidy=$!
  (nice -n 19 scripts/sanitize.sh --build-only && nice -n 19 scripts/fuzz.sh --build-only) \
    >build/extra-builds.log 2>&1 &
  extra=$!
fi
status=0
if [[ " $* " == *soak* || " $* " == *image* ]]; then
  ctest --test-dir build --output-on-failure "$@" || status=$?
else
  # Two at a time: the kernel and e2e tests are RUN_SERIAL (ctest runs each alone), so only the
  # unit-level tests run side by side.
  ctest --test-dir build --output-on-failure --timeout 300 -j"$(nproc)" -LE 'soak|image' "$@" ||
    status=$?
fi
if [[ -n $extra ]]; then
  if ! wait "$extra"; then
    cat build/extra-builds.log
    echo "test.sh: the sanitizer or fuzz build failed" >&2
    exit 1
  fi
fi
if [[ -n $tidy ]]; then
  if wait "$tidy"; then
    tail -n 1 build/lint-tidy.out
  else
    cat build/lint-tidy.out
    echo "test.sh: clang-tidy found violations" >&2
    exit 1
  fi
fi
((status == 0)) || exit "$status"
if [[ -n $extra ]]; then
  scripts/sanitize.sh --test-only
  scripts/fuzz.sh --test-only
fi
