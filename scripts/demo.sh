#!/usr/bin/env bash
# README command 1: set up a fresh machine, build, and run Passport's demo (two unmodified
# services traced on loopback; documents go to an embedded sink, or to the X-Ray daemon named
# by AWS_XRAY_DAEMON_ADDRESS / --daemon-address). Extra arguments go to `passport demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
exec build/agent/passport demo "$@"
