#!/usr/bin/env bash
# Builds the .deb with CPack from the build tree, then checks it: its name and Depends (computed
# by dpkg-shlibdeps), exactly the expected files, the conffile, and, installed into a scratch
# root with dpkg-deb -x, the agent's --version and the unit verified there.
set -euo pipefail
build=$1
source_dir=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cpack --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1 || {
  cat "$out/cpack.log" >&2
  exit 1
}
debs=("$out"/passport_*.deb)
[[ -f "${debs[0]}" && ${#debs[@]} -eq 1 ]] || { echo "no single passport_*.deb in $out" >&2; ls "$out" >&2; exit 1; }
deb=${debs[0]}

[[ $(dpkg-deb -f "$deb" Package) == passport ]] || { echo "package name" >&2; exit 1; }
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libbpf1 libelf1 libsystemd0 libyaml-cpp0.7; do
  [[ $depends == *"$lib"* ]] || { echo "Depends lacks $lib: $depends" >&2; exit 1; }
done

# Files and directories in the package, exactly.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|/$||' | sort >"$out/listing"
cat >"$out/expected" <<'LIST'
./etc
./etc/passport
./etc/passport/passport.yaml
./usr
./usr/bin
./usr/bin/passport
./usr/lib
./usr/lib/systemd
./usr/lib/systemd/system
./usr/lib/systemd/system/passport.service
LIST
sort -o "$out/expected" "$out/expected"
diff -u "$out/expected" "$out/listing" || { echo "unexpected package contents" >&2; exit 1; }

dpkg-deb -e "$deb" "$out/control"
grep -qx /etc/passport/passport.yaml "$out/control/conffiles" || { echo "conffile missing" >&2; exit 1; }

dpkg-deb -x "$deb" "$out/root"
"$out/root/usr/bin/passport" --version | grep -q '^passport ' || { echo "--version" >&2; exit 1; }
# The shipped configuration parses (--version exits after reading the options).
"$out/root/usr/bin/passport" --config "$out/root/etc/passport/passport.yaml" --version >/dev/null
cmp "$out/root/etc/passport/passport.yaml" "$source_dir/packaging/passport.yaml"
cmp "$out/root/usr/lib/systemd/system/passport.service" "$source_dir/packaging/passport.service"
"$source_dir/tests/package/verify_unit.sh" "$out/root/usr/lib/systemd/system/passport.service"
echo "$(basename "$deb"): $(wc -l <"$out/listing") entries; Depends: $depends"
