#!/usr/bin/env bash
# Installs everything Passport needs to build, run and test, from Debian's packages and npm only.
# Idempotent: packages already present are skipped by apt.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
  # build
  cmake make g++ clang llvm pkg-config
  # libFuzzer and the sanitizer runtimes for clang (tests/fuzz, scripts/fuzz.sh)
  libclang-rt-14-dev
  # style checks (scripts/lint.sh)
  clang-format clang-tidy
  # BPF toolchain: bpftool generates vmlinux.h and skeletons; libbpf loads them
  bpftool libbpf-dev libelf-dev zlib1g-dev
  # userspace libraries
  libboost-dev libboost-system-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  # the config file (yaml-cpp), sd_notify for the systemd unit; the .deb (CPack uses dpkg-shlibdeps) and systemd-analyze verify
  libyaml-cpp-dev libsystemd-dev dpkg-dev systemd
  # the Kubernetes API client (pod metadata for --k8s-* selection; agent/k8s_api.cpp)
  libcurl4-openssl-dev
  # programs the tests trace (real, unmodified servers and clients)
  python3 curl nginx-light nodejs openssl iproute2 procps
  # a blocking HTTP client the injection tests run (Debian's requests for /usr/bin/python3)
  python3-requests
  # a non-HTTP protocol next to injection (must pass untouched)
  redis-server redis-tools
  # the health and metrics endpoint (prometheus-cpp's text format, civetweb's HTTP server) and
  # promtool, which checks /metrics in the tests
  prometheus-cpp-dev libcivetweb-dev prometheus
  # the container image (scripts/image.sh) and its test: Debian root file system, OCI layout, runner
  mmdebstrap umoci podman runc
  # benchmarks
  wrk valgrind gnuplot-nox
  # the fidelity benchmark's asyncio service (bench/fidelity; the nginx, nodejs and golang-go it
  # also runs are in other groups)
  python3-aiohttp
  # Helm chart test (tests/helm): Go, sprig, YAML and JSON-schema libraries for its renderer,
  # yamllint, and the Kubernetes API types for strict decoding
  golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev golang-github-xeipuuv-gojsonschema-dev
  yamllint python3-kubernetes python3-yaml
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi

# npm packages the tests run against (the real X-Ray SDK for Node; OpenTelemetry's X-Ray
# propagator @opentelemetry/propagator-aws-xray with @opentelemetry/api), pinned by a lock file.
"$(dirname "${BASH_SOURCE[0]}")/install-npm.sh"
# npm packages the e2e tests drive (pinned by lock file; skipped when already installed)
"$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/fixtures/aws_sdk/install.sh"
# npm packages the Helm chart test validates with (Kubernetes and Prometheus Operator schemas)
"$(dirname "${BASH_SOURCE[0]}")/install-npm.sh" "$(dirname "${BASH_SOURCE[0]}")/../tests/helm/npm"
