#!/usr/bin/env bash
# `systemd-analyze verify` on packaging/passport.service. PID 1 need not be systemd: the unit is
# verified inside a scratch root holding the unit, the programs it runs (stand-ins at the same
# paths: verify checks they exist and are executable) and the system's own units it depends on.
# Any message (unknown key, bad value, missing program) fails the test.
set -euo pipefail
unit=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/systemd"
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$(type -P true)" "$root/usr/bin/passport"
cp "$(type -P kill)" "$root/usr/bin/kill"
cp "$unit" "$root/usr/lib/systemd/system/passport.service"
out=$(systemd-analyze verify --root="$root" "$root/usr/lib/systemd/system/passport.service" 2>&1)
if [[ -n "$out" ]]; then
  echo "systemd-analyze verify: $out" >&2
  exit 1
fi
echo "passport.service verified"
