#!/usr/bin/env bash
# The unit and replay tests built with ASan and UBSan (PASSPORT_SANITIZE) in build-asan/, without
# the BPF programs (no root, no kernel). Any sanitizer report fails the run. --build-only builds,
# --test-only runs the tests of an earlier build; other arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${PASSPORT_JOBS:-$(nproc)}
# -O0 -g1 (instead of -O2 -g): about half the compile time, line numbers in reports, asserts
# kept; the unit tests are short, so the slower code does not matter.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O0 -g1" -DPASSPORT_SANITIZE=ON -DPASSPORT_BPF=OFF >/dev/null
if [[ ${1:-} != --test-only ]]; then
  cmake --build build-asan -j"$jobs" --target passport_unit_tests passport_replay_tests
fi
if [[ ${1:-} == --build-only ]]; then exit 0; fi
[[ ${1:-} == --test-only ]] && shift
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir build-asan -L 'unit|replay' --output-on-failure --timeout 300 -j"$jobs" "$@"
