# Shared settings and helpers for the test bed scripts (sourced, not run).
TESTBED_DIR=${TESTBED_DIR:-/tmp/updater-testbed}
D=$TESTBED_DIR/docker                       # the private dockerd's state
R=$TESTBED_DIR/registry                     # the registry's config, storage, pid, log
REGISTRY=127.0.0.1:5001
SYSTEMD_CONTAINER=updater-systemd
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/updater-testbed
export DOCKER_HOST=unix://$D/docker.sock

log() { echo "testbed: $*" >&2; }
die() { echo "testbed: ERROR: $*" >&2; exit 1; }

# alive PIDFILE NAME: the pid in PIDFILE is a live process whose name is NAME.
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# wait_for SECONDS WHAT CMD...: run CMD every 0.2 s until it succeeds; 1 if time runs out.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "gave up waiting ${secs}s for $what"; return 1; }
    sleep 0.2
  done
}
