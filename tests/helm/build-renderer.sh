#!/usr/bin/env bash
# Builds chart-render (tests/helm/render) offline from Debian's Go packages into OUT_DIR
# (default build/chart-render). Debian installs Go libraries as GOPATH sources under
# /usr/share/gocode/src without their major-version suffix, so this makes a small GOPATH whose
# ".../v3" entries link to them (sprig/v3 and its semver/v3), and builds in GOPATH mode
# (GO111MODULE=off): no module proxy, no network. The Go build cache lives in OUT_DIR too, so a
# rebuild of unchanged sources takes well under a second.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$src/../../build/chart-render}
mkdir -p "$out"
out=$(cd "$out" && pwd)
gocode=/usr/share/gocode/src
for need in "$gocode/github.com/Masterminds/sprig" "$gocode/github.com/xeipuuv/gojsonschema" "$gocode/sigs.k8s.io/yaml"; do
  [[ -d $need ]] || { echo "build-renderer: $need missing (.ci/install-deps.sh installs it)" >&2; exit 1; }
done
command -v go >/dev/null || { echo "build-renderer: go missing (Debian package golang-go)" >&2; exit 1; }

gopath=$out/gopath
mkdir -p "$gopath/src/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/semver" "$gopath/src/passport"
ln -sfn "$gocode/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/sprig/v3"
ln -sfn "$gocode/github.com/Masterminds/semver" "$gopath/src/github.com/Masterminds/semver/v3"
ln -sfn "$src/render" "$gopath/src/passport/chart-render"
cd "$gopath/src/passport/chart-render"
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$out/go-cache" GOFLAGS='' \
  go build -o "$out/chart-render" .
