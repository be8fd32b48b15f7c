#!/usr/bin/env bash
# Prints what of the test bed is running. Exit 0 when everything is up, 1 otherwise.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
ok=0
echo "TESTBED_DIR=$TESTBED_DIR"
if alive "$D/pid" dockerd && docker info >/dev/null 2>&1; then
  echo "dockerd:  running, pid $(cat "$D/pid"), DOCKER_HOST=$DOCKER_HOST"
else echo "dockerd:  not running"; ok=1; fi
if alive "$R/pid" docker-registry && curl -sf "http://$REGISTRY/v2/" >/dev/null; then
  echo "registry: running, pid $(cat "$R/pid"), $REGISTRY, sample tags: $(curl -s "http://$REGISTRY/v2/sample/tags/list")"
else echo "registry: not running"; ok=1; fi
if [ $ok = 0 ] && [ "$(docker inspect -f '{{.State.Running}}' "$SYSTEMD_CONTAINER" 2>/dev/null)" = true ]; then
  echo "systemd:  $SYSTEMD_CONTAINER is $(docker exec "$SYSTEMD_CONTAINER" systemctl is-system-running 2>/dev/null || true)"
else echo "systemd:  $SYSTEMD_CONTAINER not running"; ok=1; fi
if [ $ok = 0 ]; then echo "containers:"; docker ps --format '  {{.Names}}\t{{.Image}}\t{{.Status}}'; fi
[ -f "$TESTBED_DIR/env.sh" ] && echo "env:      $TESTBED_DIR/env.sh"
exit $ok
