#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz) built with clang in build-fuzz/ (PASSPORT_FUZZ, userspace
# only), then the short run of each (ctest label fuzz: PASSPORT_FUZZ_RUNS executions, fixed
# seed). --build-only builds, --test-only runs the short runs of an earlier build; other arguments
# go to ctest. The long run: docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${PASSPORT_JOBS:-$(nproc)}
# -O1 -g1 (instead of -O2 -g): less compile time; the short runs are a fixed number of executions.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPASSPORT_FUZZ=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DPASSPORT_BPF=OFF -DPASSPORT_BUILD_TESTS=OFF >/dev/null
if [[ ${1:-} != --test-only ]]; then
  cmake --build build-fuzz -j"$jobs" --target passport_fuzz_targets
fi
if [[ ${1:-} == --build-only ]]; then exit 0; fi
[[ ${1:-} == --test-only ]] && shift
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j"$jobs" "$@"
