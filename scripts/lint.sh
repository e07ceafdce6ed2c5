#!/usr/bin/env bash
# Style checks; exits non-zero on any violation and lists them as file:line.
#   --format: clang-format --dry-run -Werror over every tracked C/C++ file (.clang-format files:
#             the root one, and the kernel layout under bpf/ and tests/bpf_host/). Seconds.
#   --tidy:   clang-tidy 14 (checks in .clang-tidy) over the C++ sources the build compiles, in
#             parallel, using build/compile_commands.json (so after scripts/build.sh). BPF C is
#             not C++ and is left to clang-format; generated files (*.skel.h, vmlinux.h, build/)
#             are skipped. About 850 CPU-seconds on this code base.
# scripts/test.sh runs --format right after the build and --tidy in the background while the
# tests run; either failing fails the run.
# Usage: scripts/lint.sh [--format|--tidy] [build-dir]   (default: both checks, build/)
set -euo pipefail
cd "$(dirname "$0")/.."
what=both
if [[ ${1:-} == --format || ${1:-} == --tidy ]]; then
    what=${1#--}
    shift
fi
build_dir=${1:-build}

need() {
    command -v "$1" >/dev/null || { echo "lint: $1 not installed (.ci/install-deps.sh)" >&2; exit 1; }
}

check_format() {
    need clang-format
    local sources
    mapfile -t sources < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' |
        grep -v -e node_modules/ -e '\.skel\.h$' -e '/vmlinux\.h$')
    local log="$build_dir/lint-format.log"
    if clang-format --dry-run -Werror "${sources[@]}" 2>"$log"; then
        echo "lint: clang-format clean (${#sources[@]} files)"
        return 0
    fi
    grep -E '^[^ ].*:[0-9]+:[0-9]+: (error|warning):' "$log" |
        sed -E 's/: (error|warning): .*\[-Wclang-format-violations\]/: clang-format/' | sort -u
    echo "lint: clang-format violations above (fix with clang-format -i FILE)" >&2
    return 1
}

# C++ translation units of the build that are tracked sources (not generated): the product,
# bench and the test support library; the gtest files themselves get clang-format only (they are
# half the units and most of clang-tidy's time, which CI cannot spare).
tidy_units() {
    python3 -c '
import json, os, sys
root = os.getcwd() + "/"
for e in json.load(open(sys.argv[1])):
    f = os.path.normpath(os.path.join(e["directory"], e["file"]))
    if f.startswith(root) and f.endswith(".cpp"):
        print(f[len(root):])' "$1" | sort -u | grep -v -e '^build' -e node_modules/ \
        -e '^tests/\(unit\|e2e\|kernel\|replay\|image\)/'
}

check_tidy() {
    need clang-tidy-14
    local db="$build_dir/compile_commands.json"
    if [[ ! -f $db ]]; then
        echo "lint: $db missing: configure and build first (scripts/build.sh)" >&2
        return 1
    fi
    local units log="$build_dir/lint-tidy.log" rc=0 start=$SECONDS
    mapfile -t units < <(tidy_units "$db")
    # GCC-only warning flags in the build (e.g. -Wno-maybe-uninitialized) are unknown to clang.
    printf '%s\n' "${units[@]}" |
        xargs -P"$(nproc)" -n1 clang-tidy-14 -p "$build_dir" --quiet \
            --extra-arg=-Wno-unknown-warning-option >"$log" 2>&1 || rc=$?
    if ((rc != 0 && rc != 123)); then  # 123: some file had findings, listed below
        cat "$log"
        echo "lint: clang-tidy could not run (xargs exit $rc)" >&2
        return 1
    fi
    # One line per violation (a header's is reported once, not once per file including it).
    local violations
    violations=$(grep -E '^/.*:[0-9]+:[0-9]+: (error|warning): .*\[[a-z-]+.*\]$' "$log" |
        sed -E "s|^$PWD/||; s|[^ :]*/\.\./||; s/: (error|warning): (.*) \[([a-z0-9.-]+).*\]$/: \3: \2/" |
        sort -u || true)
    if [[ -n $violations ]]; then
        echo "$violations"
        echo "lint: $(wc -l <<<"$violations") clang-tidy violations above (full output: $log)" >&2
        return 1
    fi
    if grep -q -E 'error:' "$log"; then
        cat "$log"
        echo "lint: clang-tidy failed (see above)" >&2
        return 1
    fi
    echo "lint: clang-tidy clean (${#units[@]} files, $((SECONDS - start)) s)"
}

status=0
if [[ $what != tidy ]]; then check_format || status=1; fi
if [[ $what != format ]]; then check_tidy || status=1; fi
exit $status
