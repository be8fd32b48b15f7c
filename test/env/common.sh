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

# The Debian mirror apt uses for bookworm (deb822 or one-line sources); TESTBED_DEBIAN_MIRROR overrides.
debian_mirror() {
  [ -n "${TESTBED_DEBIAN_MIRROR:-}" ] && { echo "$TESTBED_DEBIAN_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v RS= '
        /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ && match($0, /URIs:[ \t]*[^ \t\n]+/) {
          split(substr($0, RSTART, RLENGTH), a, /[ \t]+/); print a[2]; exit }')
  [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { sub(/^deb +(\[[^]]*\] +)?/, ""); if ($2 == "bookworm") { print $1; exit } }')
  echo "${m:-http://deb.debian.org/debian}"
}
