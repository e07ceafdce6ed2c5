#!/usr/bin/env bash
# run.sh BINARY WORKDIR SEEDS [libFuzzer flags...]: one fuzz run from a fresh scratch corpus
# (WORKDIR/corpus, emptied first) plus the read-only seed corpus SEEDS. New inputs go to the
# scratch corpus only; a crashing input is written to WORKDIR/ (crash-<sha1>, leak-..., ...).
set -euo pipefail
bin=$1 work=$2 seeds=$3
shift 3
rm -rf "$work/corpus"
mkdir -p "$work/corpus"
exec "$bin" -artifact_prefix="$work/" -print_final_stats=1 "$@" "$work/corpus" "$seeds"
