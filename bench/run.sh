#!/usr/bin/env bash
# Passport's benchmark suite: builds what it needs, runs every benchmark, prints the
# table and writes BUILD/bench/results/{results.json,table.txt,performance.png}. About 16
# minutes on an idle 2-vCPU machine (longer when other load makes it repeat runs); `--quick`
# about 5. Needs root: as root run it directly, from another account put sudo in front.
#   bench/run.sh [--quick] [--only pipeline,overhead,client,stress,idle,syscalls] [--help]
# Environment: PASSPORT_BUILD_DIR (default ./build), BENCH_NO_BUILD=1 to use the binaries as they are.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PASSPORT_BUILD_DIR:-$src/build}

for a in "$@"; do
  if [[ $a == -h || $a == --help ]]; then exec /usr/bin/env python3 "$src/bench/bench.py" --help; fi
done
if [[ $(id -u) != 0 ]]; then
  echo "bench/run.sh: must run as root (it loads BPF programs)" >&2
  exit 1
fi
missing=()
for tool in cmake wrk nginx node valgrind gnuplot; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "bench/run.sh: missing ${missing[*]}; install them with .ci/install-deps.sh (as root)" >&2
  exit 1
fi
# npm installs the X-Ray SDK for the Node comparison (into the build tree, on first use); without
# it that one condition is skipped and the results say so.
command -v npm >/dev/null || echo "bench/run.sh: npm not found: the X-Ray SDK condition will be skipped" >&2

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  [[ -f $build/CMakeCache.txt ]] || cmake -S "$src" -B "$build" >/dev/null
  cmake --build "$build" -j"$(nproc)" --target passport passport_floor passport_pipeline_bench \
    udp_sink idle_conns syscall_spin
fi

# The system interpreter starts fast and has everything the driver uses (standard library only).
py=/usr/bin/python3
[[ -x $py ]] || py=python3
exec "$py" "$src/bench/bench.py" --source "$src" --build "$build" "$@"
