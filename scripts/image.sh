#!/usr/bin/env bash
# Builds the Passport container image from Debian packages alone, with no container registry:
#   1. a Debian 12 (bookworm) root file system made with mmdebstrap (variant minbase) holding
#      only the runtime packages the agent binary links (found with ldd and dpkg -S);
#   2. the agent as /usr/bin/passport (its BPF programs are built into it);
#   3. both as layers of an OCI image made with umoci, entrypoint /usr/bin/passport;
#   4. written as build/image/passport-<version>.oci.tar (an OCI archive: `podman load -i`
#      loads it as localhost/passport:<version>; skopeo and buildah read it as oci-archive:).
#
# usage: scripts/image.sh [BUILD_DIR]          (default: build; the agent must be built there)
# environment:
#   PASSPORT_IMAGE_MIRROR    Debian mirror (default: deb.debian.org). Pin a build to a date with
#                            a snapshot, e.g. http://snapshot.debian.org/archive/debian/20250520T000000Z
#   PASSPORT_IMAGE_SECURITY  security mirror (default: deb.debian.org/debian-security; "none" to
#                            leave it out, as a snapshot pin usually does)
#   SOURCE_DATE_EPOCH        timestamps of the files and the image (default: the last commit's)
# See docs/deploy.md, "Container image".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
agent=$build/agent/passport
[[ -x $agent ]] || { echo "image: $agent missing: build the agent first (scripts/build.sh)" >&2; exit 2; }
for tool in mmdebstrap umoci dpkg-query; do
  command -v "$tool" >/dev/null || { echo "image: $tool missing: run .ci/install-deps.sh" >&2; exit 2; }
done

version=$(sed -n 's/^project(passport VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
mirror=${PASSPORT_IMAGE_MIRROR:-http://deb.debian.org/debian}
security=${PASSPORT_IMAGE_SECURITY:-http://deb.debian.org/debian-security}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
out=$build/image
archive=$out/passport-$version.oci.tar
mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The Debian packages holding the shared libraries the agent links (libc6 is in minbase anyway).
runtime_packages() {
  ldd "$agent" | awk '/=> \//{print $3}' | while read -r lib; do
    dpkg-query -S "$(readlink -f "$lib")" 2>/dev/null || dpkg-query -S "$lib"
  done | cut -d: -f1 | sort -u | grep -vx libc6 | paste -sd, -
}
packages=$(runtime_packages)
echo "image: passport $version on Debian bookworm (minbase) + $packages"

# Documentation, manuals and locales are not needed to run the agent.
sources=("deb $mirror bookworm main" "deb $mirror bookworm-updates main")
[[ $security == none ]] || sources+=("deb $security bookworm-security main")
# The merged-usr hook makes /bin, /lib, /sbin links itself, so the usrmerge package (which would
# pull in perl) is not installed.
mmdebstrap --variant=minbase --include="$packages" --quiet \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/tmp/*' \
  bookworm "$work/rootfs.tar" "${sources[@]}" </dev/null

# The agent layer: /usr/bin/passport, owned by root, with fixed timestamps.
mkdir -p "$work/agent/usr/bin"
install -m 0755 "$agent" "$work/agent/usr/bin/passport"
strip --strip-debug "$work/agent/usr/bin/passport"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$work/agent" -cf "$work/agent.tar" usr

created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
image="$work/oci:build"
name=localhost/passport:$version
umoci init --layout "$work/oci"
umoci new --image "$image"
umoci raw add-layer --image "$image" --history.created "$created" \
  --history.created_by "mmdebstrap --variant=minbase bookworm (+ $packages)" "$work/rootfs.tar"
umoci raw add-layer --image "$image" --history.created "$created" \
  --history.created_by "passport $version: /usr/bin/passport" "$work/agent.tar"
umoci config --image "$image" --no-history --created "$created" \
  --config.entrypoint /usr/bin/passport --config.workingdir / \
  --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  --config.label org.opencontainers.image.title=passport \
  --config.label org.opencontainers.image.version="$version" \
  --config.label org.opencontainers.image.base.name=debian:bookworm \
  --config.label org.opencontainers.image.description="Passport: HTTP tracing and X-Amzn-Trace-Id injection with eBPF, documents to AWS X-Ray" \
  --manifest.annotation org.opencontainers.image.version="$version"
# One name, in full: podman load names the image after it (a bare tag would become the name).
umoci tag --image "$image" "$name"
umoci rm --image "$image"
umoci gc --layout "$work/oci"

# An OCI archive is a tar of the OCI layout (readable by all: it holds no secret).
chmod -R a+rX "$work/oci"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$work/oci" -cf "$archive.tmp" .
mv "$archive.tmp" "$archive"

unpacked=$(( $(tar -tvf "$work/rootfs.tar" | awk '{s+=$3} END {print s}') + $(stat -c %s "$work/agent/usr/bin/passport") ))
echo "image: $archive ($(( $(stat -c %s "$archive") / 1024 / 1024 )) MiB compressed layers," \
  "$(( unpacked / 1024 / 1024 )) MiB unpacked), name $name"
