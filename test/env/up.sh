#!/usr/bin/env bash
# Starts the test bed (what is missing; reuses what runs) and writes $TESTBED_DIR/env.sh.
# Progress goes to stderr, the export lines to stdout:  eval "$(test/env/up.sh)"
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
B=$TESTBED_DIR/build
mkdir -p "$D" "$R/data" "$B" "$TESTBED_DIR/apps" "$CACHE"

for cmd in dockerd docker docker-registry busybox debootstrap curl; do
  command -v "$cmd" >/dev/null || die "$cmd not found: run test/env/install.sh"
done

# --- 1. private dockerd -------------------------------------------------------------------
if alive "$D/pid" dockerd; then
  log "dockerd running (pid $(cat "$D/pid"))"
else
  log "starting dockerd (log: $D/dockerd.log)"
  rm -f "$D/pid"
  setsid dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/pid" \
    -H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false \
    --default-cgroupns-mode=private >>"$D/dockerd.log" 2>&1 </dev/null &
fi
wait_for 30 "docker info" docker info || { tail -n 30 "$D/dockerd.log" >&2; die "dockerd did not answer"; }

# --- 2. registry on 127.0.0.1:5001 ---------------------------------------------------------
if alive "$R/pid" docker-registry; then
  log "registry running (pid $(cat "$R/pid"))"
else
  curl -s -o /dev/null "http://$REGISTRY/v2/" && die "something else already listens on $REGISTRY"
  cat >"$R/config.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $R/data }
  delete: { enabled: true }
http: { addr: $REGISTRY }
YML
  log "starting registry on $REGISTRY (log: $R/registry.log)"
  setsid docker-registry serve "$R/config.yml" >>"$R/registry.log" 2>&1 </dev/null &
  echo $! >"$R/pid"
fi
wait_for 15 "registry" curl -sf "http://$REGISTRY/v2/" || { tail -n 30 "$R/registry.log" >&2; die "registry did not answer"; }

# --- 3. sample images ------------------------------------------------------------------------
# 1.0.0 good; 1.1.0 good + HEALTHCHECK; 1.2.0 serves no /health (404); 1.3.0 exits 3 at once.
SERVE='CMD ["sh","-c","exec busybox httpd -f -p 127.0.0.1:${PORT:-18081} -h /www"]'
HEALTHCHECK='HEALTHCHECK --interval=1s --timeout=1s CMD wget -q -O- http://127.0.0.1:${PORT:-18081}/health || exit 1'
tags=$(curl -s "http://$REGISTRY/v2/sample/tags/list" || true)
for tag in 1.0.0 1.1.0 1.2.0 1.3.0; do
  if [[ $tags == *"\"$tag\""* ]]; then log "sample:$tag already in registry"; continue; fi
  if [ ! -x "$B/busybox/bin/sh" ]; then
    rm -rf "$B/busybox" && mkdir -p "$B/busybox/bin" "$B/busybox/tmp"
    cp /bin/busybox "$B/busybox/bin/" && chroot "$B/busybox" /bin/busybox --install -s /bin
  fi
  r=$B/sample-$tag
  rm -rf "$r" && cp -a "$B/busybox" "$r" && mkdir -p "$r/www"
  echo "$tag" >"$r/VERSION"
  printf '{"status":"ok","version":"%s"}\n' "$tag" >"$r/www/health"
  changes=(-c "LABEL org.opencontainers.image.version=$tag" -c "$SERVE")
  case $tag in
    1.1.0) changes+=(-c "$HEALTHCHECK") ;;
    1.2.0) rm "$r/www/health" ;;
    1.3.0) changes=(-c "LABEL org.opencontainers.image.version=$tag" -c 'CMD ["sh","-c","exit 3"]') ;;
  esac
  log "building and pushing $REGISTRY/sample:$tag"
  tar -C "$r" -c . | docker import "${changes[@]}" - "$REGISTRY/sample:$tag" >/dev/null
  docker push "$REGISTRY/sample:$tag" >/dev/null
  rm -rf "$r"
done

# --- 4. systemd container --------------------------------------------------------------------
ROOTFS_TAR=$CACHE/systemd-rootfs.tar
if ! docker image inspect testbed/systemd >/dev/null 2>&1; then
  if [ ! -s "$ROOTFS_TAR" ]; then
    mirror=$(debian_mirror)
    log "debootstrap bookworm from $mirror (about a minute; log: $B/debootstrap.log)"
    rm -rf "$B/systemd-root"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,python3,python3-venv \
      bookworm "$B/systemd-root" "$mirror" >"$B/debootstrap.log" 2>&1 \
      || { tail -n 20 "$B/debootstrap.log" >&2; die "debootstrap failed"; }
    tar -C "$B/systemd-root" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$B/systemd-root"
    log "cached rootfs at $ROOTFS_TAR"
  fi
  log "importing testbed/systemd from $ROOTFS_TAR"
  docker import "$ROOTFS_TAR" testbed/systemd >/dev/null
fi
state=$(docker inspect -f '{{.State.Running}}' "$SYSTEMD_CONTAINER" 2>/dev/null || echo missing)
# The apps directory is mounted at the same path inside, so host and container see the same paths.
if [ "$state" != missing ] && ! docker inspect -f '{{range .Mounts}}{{.Destination}} {{end}}' "$SYSTEMD_CONTAINER" | grep -qw "$TESTBED_DIR/apps"; then
  log "recreating $SYSTEMD_CONTAINER with the apps directory at the same path"
  docker rm -f "$SYSTEMD_CONTAINER" >/dev/null
  state=missing
fi
case $state in
  true)  log "$SYSTEMD_CONTAINER running" ;;
  false) log "starting existing $SYSTEMD_CONTAINER"; docker start "$SYSTEMD_CONTAINER" >/dev/null ;;
  *)     log "running $SYSTEMD_CONTAINER"
         docker run -d --name "$SYSTEMD_CONTAINER" --cgroupns=private --cap-add SYS_ADMIN \
           --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 --network host \
           -v "$TESTBED_DIR/apps:$TESTBED_DIR/apps" testbed/systemd /lib/systemd/systemd >/dev/null ;;
esac
systemd_up() { [[ $(docker exec "$SYSTEMD_CONTAINER" systemctl is-system-running 2>/dev/null) =~ ^(running|degraded)$ ]]; }
wait_for 30 "systemd in $SYSTEMD_CONTAINER" systemd_up || { docker logs --tail 30 "$SYSTEMD_CONTAINER" >&2; die "systemd did not come up"; }

# --- 5. environment for tests ------------------------------------------------------------------
cat >"$TESTBED_DIR/env.sh" <<ENV
export TESTBED_DIR=$TESTBED_DIR
export DOCKER_HOST=$DOCKER_HOST
export TESTBED_REGISTRY=$REGISTRY
export TESTBED_SYSTEMD_CONTAINER=$SYSTEMD_CONTAINER
export TESTBED_APPS_DIR=$TESTBED_DIR/apps
ENV
log "up; environment in $TESTBED_DIR/env.sh"
cat "$TESTBED_DIR/env.sh"
