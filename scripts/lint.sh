#!/usr/bin/env bash
# Style checks, run by scripts/test.sh after the build (CI's entry point); exits non-zero on any
# violation and lists them as file:line.
#   1. clang-format --dry-run -Werror over every tracked C/C++ file (.clang-format files: the
#      root one, and the kernel layout under bpf/ and tests/bpf_host/).
#   2. clang-tidy 14 (checks in .clang-tidy) over the C++ sources the build compiles, in
#      parallel, using build/compile_commands.json (so after scripts/build.sh). BPF C is not
#      C++ and is left to clang-format; generated files (*.skel.h, vmlinux.h, build/) are skipped.
# Usage: scripts/lint.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
status=0
db="$build_dir/compile_commands.json"
if [[ ! -f $db ]]; then
    echo "lint: $db missing: configure and build first (scripts/build.sh)" >&2
    exit 1
fi
for tool in clang-format clang-tidy-14; do
    command -v "$tool" >/dev/null || { echo "lint: $tool not installed" >&2; exit 1; }
done

mapfile -t sources < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' | grep -v -e node_modules/ \
    -e '\.skel\.h$' -e '/vmlinux\.h$')
if ! clang-format --dry-run -Werror "${sources[@]}" 2>"$build_dir/lint-format.log"; then
    grep -E '^[^ ].*:[0-9]+:[0-9]+: (error|warning):' "$build_dir/lint-format.log" |
        sed -E 's/: (error|warning): .*\[-Wclang-format-violations\]/: clang-format/' | sort -u
    echo "lint: clang-format violations above (fix with clang-format -i FILE)" >&2
    status=1
fi

# GCC-only warning flags in the build (e.g. -Wno-maybe-uninitialized) are unknown to clang.
# C++ translation units of the build that are tracked sources (not generated).
mapfile -t units < <(python3 -c '
import json, os, sys
root = os.getcwd() + "/"
for e in json.load(open(sys.argv[1])):
    f = os.path.normpath(os.path.join(e["directory"], e["file"]))
    if f.startswith(root) and f.endswith(".cpp"):
        print(f[len(root):])' "$db" | sort -u | grep -v -e '^build' -e node_modules/)
tidy_log="$build_dir/lint-tidy.log"
rc=0
printf '%s\n' "${units[@]}" |
    xargs -P"$(nproc)" -n1 clang-tidy-14 -p "$build_dir" --quiet \
        --extra-arg=-Wno-unknown-warning-option >"$tidy_log" 2>&1 || rc=$?
if ((rc != 0 && rc != 123)); then  # 123: some file had findings, listed below
    cat "$tidy_log"
    echo "lint: clang-tidy could not run (xargs exit $rc)" >&2
    exit 1
fi
# One line per violation (a header's is reported once, not once per file including it).
violations=$(grep -E '^/.*:[0-9]+:[0-9]+: (error|warning): .*\[[a-z-]+.*\]$' "$tidy_log" |
    sed -E "s|^$PWD/||; s|[^ :]*/\.\./||; s/: (error|warning): (.*) \[([a-z0-9.-]+).*\]$/: \3: \2/" |
    sort -u || true)
if [[ -n $violations ]]; then
    echo "$violations"
    echo "lint: $(wc -l <<<"$violations") clang-tidy violations above (full output: $tidy_log)" >&2
    status=1
elif grep -q -E 'error:' "$tidy_log"; then
    cat "$tidy_log"
    echo "lint: clang-tidy failed (see above)" >&2
    status=1
fi
((status == 0)) && echo "lint: clean (${#sources[@]} files formatted, ${#units[@]} checked by clang-tidy, ${SECONDS}s)"
exit $status
