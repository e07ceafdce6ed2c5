#!/usr/bin/env bash
# The full blocking-client matrix: real blocking HTTP clients (a raw Python socket, http.client,
# urllib and requests without timeouts, a socket that turns blocking after sending, curl, and a
# blocking C program) upload bodies of 0 to 64 MB to a server that reads them and answers late
# (0.2 s, and 2 s on a second server), first without Passport, then with Passport tracing
# clients and servers (injection on). Prints the errors per client and round; every one must
# be 0 with Passport as without it.
#
# usage: bench/blocking_matrix.sh [RUNS [ROUNDS]]   (default 100 runs per client and server, rounds
#        "without passport"; needs root and a built tree: scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-100}
ROUNDS=${2:-without passport}
F=tests/e2e/fixtures/blocking_matrix.py
AGENT=build/agent/passport
C_CLIENT=build/tests/passport_blocking_upload
SIZES=0,1000000,4000000,8000000,16000000,32000000,64000000
PY_REQUESTS=python3
python3 -c "import requests" 2>/dev/null || PY_REQUESTS=/usr/bin/python3
KINDS=(socket httpclient urllib requests late_blocking curl "c:$C_CLIENT")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

round() {  # round NAME: every client kind against both servers
  local name=$1 fast slow
  fast=$(free_port)
  slow=$(free_port)
  python3 $F server "$fast" 0.2 >"$work/fast.log" 2>&1 & pids+=($!)
  python3 $F server "$slow" 2 >"$work/slow.log" 2>&1 & pids+=($!)
  sleep 0.5
  for kind in "${KINDS[@]}"; do
    local py=python3
    [[ $kind == requests ]] && py=$PY_REQUESTS
    local a b
    a=$($py $F client "$fast" "$kind" "$SIZES" "$RUNS" | tail -1)
    b=$($py $F client "$slow" "$kind" 4000000,16000000 "$((RUNS / 10 + 1))" | tail -1)
    printf '%-10s %-14s late answers 0.2 s: %-18s 2 s: %s\n' "$name" "${kind%%:*}" "$a" "$b"
  done
  kill "${pids[@]}" 2>/dev/null || true
  pids=()
}

if [[ " $ROUNDS " == *" without "* ]]; then round without; fi
[[ " $ROUNDS " == *" passport "* ]] || exit 0
$AGENT --exe 'python3*' --exe "$(basename "$C_CLIENT")" --exe curl --output /dev/null 2>"$work/agent.err" &
agent=$!
pids+=("$agent")
for _ in $(seq 100); do grep -q "passport: ready" "$work/agent.err" && break; sleep 0.2; done
grep -q "passport: ready" "$work/agent.err" || { cat "$work/agent.err"; exit 1; }
round passport
kill -INT "$agent"
wait "$agent" || true
grep -E "counter inject\.(injected|left_|marked|adopt_blocking)" "$work/agent.err"
