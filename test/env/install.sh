#!/usr/bin/env bash
# Installs the packages the test bed needs (Debian bookworm, root). A fast no-op when all are present.
# chromium: the dashboard's browser test (test/dashboard.test.ts) drives it with playwright-core.
# nats-server: the NATS transport and fleet tests start their own (test/support/nats-server.ts).
set -euo pipefail

PKGS=(docker.io docker-compose docker-registry busybox-static debootstrap chromium nats-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install: all present (${PKGS[*]})"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || { echo "install: must run as root to apt-get install ${missing[*]}" >&2; exit 1; }
echo "install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install: done"
