#!/usr/bin/env bash
# Stops what up.sh started, by pid. Idempotent. --purge also removes $TESTBED_DIR
# (the rootfs cache under ~/.cache/updater-testbed is kept).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"

# stop PIDFILE NAME SECONDS: SIGTERM, wait, then SIGKILL as a last resort.
stop() {
  if ! alive "$1" "$2"; then log "$2 not running"; rm -f "$1"; return; fi
  local pid; pid=$(cat "$1")
  log "stopping $2 (pid $pid)"
  kill -TERM "$pid"
  if ! wait_for "$3" "$2 to exit" bash -c "! kill -0 $pid"; then
    log "$2 still alive after $3 s: SIGKILL"; kill -KILL "$pid" || true; sleep 0.5
  fi
  rm -f "$1"
}

stop "$D/pid" dockerd 60      # also stops its containers (systemd gets SIGRTMIN+3)
stop "$R/pid" docker-registry 10
if mountpoint -q "$D/exec/netns/default" 2>/dev/null; then
  log "unmounting $D/exec/netns/default"; umount "$D/exec/netns/default"
fi

if [ "${1:-}" = "--purge" ]; then
  # refuse to purge while anything is still mounted under the bed
  if grep -q " $TESTBED_DIR/" /proc/self/mounts; then die "mounts left under $TESTBED_DIR; not purging"; fi
  log "removing $TESTBED_DIR"; rm -rf "$TESTBED_DIR"
fi
log "down"
