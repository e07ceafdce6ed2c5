#!/usr/bin/env bash
# Reproduces the measurements of docs/go.md: builds a Go HTTPS test program four ways, attaches
# the prototype bpf/gotls.bpf.c of this folder (NOT part of the agent) with its own loader, and counts
# the plaintext seen on each side. Needs root, the Go toolchain (Debian golang-go; builds offline
# with the standard library only), clang, bpftool, libbpf and binutils' objdump. Everything it
# builds goes to BUILD_DIR/go-tls (default ./build; its vmlinux.h is used, or generated). About a
# minute. Prints counts; asserts nothing. Usage: sudo experimental/go-tls/check.sh [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
out=$build/go-tls
here=$src/experimental/go-tls
mkdir -p "$out"
export GOPROXY=off GOFLAGS=-mod=mod GOCACHE=$out/gocache GOPATH=$out/gopath

vmlinux=$build/bpf/gen/vmlinux
if [[ ! -f $vmlinux/vmlinux.h ]]; then
  mkdir -p "$vmlinux"
  bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$vmlinux/vmlinux.h"
fi
clang=$(command -v clang-14 || command -v clang)
"$clang" -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -Wpadded -isystem "$vmlinux" \
  -c "$here/bpf/gotls.bpf.c" -o "$out/gotls.bpf.o"
bpftool gen skeleton "$out/gotls.bpf.o" name gotls >"$out/gotls.skel.h"
cc -O2 -Wall -I"$out" -o "$out/gotls-loader" "$here/loader.c" -lbpf -lelf -lz
(cd "$here/funcs" && go build -o "$out/gofuncs" .)
(cd "$here/app" && go build -o "$out/app" . && go build -ldflags='-s -w' -o "$out/app-stripped" . &&
  go build -buildmode=pie -o "$out/app-pie" . && CGO_ENABLED=0 go build -o "$out/app-static" .)
echo "go: $(go version)"

# run BINARY ARGS...: starts the app, attaches at Write, Read and every RET of Read, lets it run.
run() {
  local bin=$1; shift
  local w r retoffs="" entry end off
  w=$("$out/gofuncs" "$bin" 'crypto/tls.(*Conn).Write' | awk '{print $4}')
  read -r _ entry end off < <("$out/gofuncs" "$bin" 'crypto/tls.(*Conn).Read')
  r=$off
  for va in $(objdump -d --no-show-raw-insn --start-address="$entry" --stop-address="$end" "$bin" |
              awk '$2 == "ret" || $2 == "retq" {sub(":", "", $1); print $1}'); do
    retoffs+=" $(printf '0x%x' $((0x$va - entry + off)))"
  done
  rm -f "$out/fifo" "$out/events.txt" "$out/loader.txt" "$out/app.txt"
  mkfifo "$out/fifo"
  "$bin" "$@" <"$out/fifo" >"$out/app.txt" 2>&1 &
  local app=$!
  exec 3>"$out/fifo"
  until grep -q ready "$out/app.txt" 2>/dev/null; do sleep 0.05; done
  "$out/gotls-loader" "$bin" "$app" "$w" "$r" $retoffs >"$out/events.txt" 2>"$out/loader.txt" &
  local loader=$!
  until grep -q attached "$out/loader.txt" 2>/dev/null; do
    kill -0 "$loader" 2>/dev/null || { cat "$out/loader.txt"; kill "$app"; exit 1; }
    sleep 0.05
  done
  echo go >&3
  wait "$app" || true
  exec 3>&-
  kill -INT "$loader"
  wait "$loader" || true
  echo "  $(basename "$bin") $*: $(grep -c . <(echo "$retoffs" | tr ' ' '\n' | grep .)) RET probes; app: $(tail -1 "$out/app.txt")"
}

count() { grep "^$1" "$out/events.txt" | grep -o "$2" | sort -u | wc -l; }

for variant in app app-stripped app-pie app-static; do
  run "$out/$variant" http 1000 32 100
  echo "    requests seen: client write $(count W 'POST /req/[0-9]* '), server read $(count R '/req/[0-9]* HTTP/1.1')," \
       "server write $(count W 'reply /req/[0-9]*|'), client read $(count R 'reply /req/[0-9]*|')"
done
run "$out/app" http 100 4 200000
awk '{split($3, a, "="); if ($1 == "W") w += a[2]; else r += a[2]} END {print "    bytes: written " w ", read " r}' "$out/events.txt"
run "$out/app" stack 500
echo "    stack-buffer reads with the right bytes: $(grep -c '^R.*data=msg-' "$out/events.txt") of $(grep -c '^R' "$out/events.txt")"
