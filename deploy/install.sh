#!/bin/sh
# Installs the release this file sits in (the top folder of dune-updater-V.tar.gz, made by
# `npm run package`) into an install root:  sh dune-updater-V/install.sh ROOT  (e.g. /opt/dune-updater)
# - ROOT/releases/V: a copy of this folder (staged as ROOT/releases/.V.tmp, then renamed; kept when
#   it is already there with the same VERSION);
# - ROOT/current -> releases/V, and ROOT/previous -> the release current pointed at before, if another
#   (each one atomic rename of a new symlink);
# - ROOT/launch, the supervisor's command: written when missing, or replaced when this release's
#   launch is newer (its `# launch-version:` line).
# Running it again changes nothing. It refuses while a self-update is on trial (ROOT/self-update.json).
set -eu

say() { printf 'install.sh: %s\n' "$*"; }
fail() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

[ $# -eq 1 ] && [ -n "$1" ] || fail "usage: sh $0 ROOT (the install root, e.g. /opt/dune-updater)"
HERE=$(cd "$(dirname "$0")" && pwd -P)
[ -f "$HERE/VERSION" ] && [ -f "$HERE/launch" ] && [ -f "$HERE/bin/updater.mjs" ] ||
  fail "$HERE is not a release of dune-updater (VERSION, launch and bin/updater.mjs are expected beside install.sh)"
VERSION=$(head -n 1 "$HERE/VERSION" | tr -d '[:space:]')
[ -n "$VERSION" ] || fail "$HERE/VERSION is empty"
if [ -e "$1/self-update.json" ]; then
  fail "a self-update of the updater is on trial in $1 ($1/self-update.json): nothing was installed; run this again once it has ended (the new release verified itself, or launch gave it up)"
fi
mkdir -p "$1/releases"
ROOT=$(cd "$1" && pwd -P)

# Durable when the system's sync takes a file (coreutils 8.24+); otherwise the renames are enough.
sync_file() { sync "$1" 2>/dev/null || :; }

# point NAME TARGET: ROOT/NAME -> TARGET (relative) with one rename.
point() {
  rm -f "$ROOT/.$1.tmp"
  ln -s "$2" "$ROOT/.$1.tmp"
  mv -T "$ROOT/.$1.tmp" "$ROOT/$1"
  sync_file "$ROOT"
}

# 1. The release.
REL="$ROOT/releases/$VERSION"
if [ -d "$REL" ] && [ "$(head -n 1 "$REL/VERSION" 2>/dev/null | tr -d '[:space:]')" = "$VERSION" ]; then
  say "releases/$VERSION is already installed: kept"
else
  STAGE="$ROOT/releases/.$VERSION.tmp"
  rm -rf "$STAGE"
  cp -RPp "$HERE" "$STAGE"
  sync_file "$STAGE"
  if [ -e "$REL" ]; then
    # Something else under that name (no VERSION, or another one): replaced.
    rm -rf "$ROOT/releases/.$VERSION.old"
    mv "$REL" "$ROOT/releases/.$VERSION.old"
    mv "$STAGE" "$REL"
    rm -rf "$ROOT/releases/.$VERSION.old"
  else
    mv "$STAGE" "$REL"
  fi
  sync_file "$ROOT/releases"
  say "installed releases/$VERSION"
fi

# 2. current (and previous).
OLD=
if [ -L "$ROOT/current" ]; then
  OLD=$(readlink "$ROOT/current")
elif [ -e "$ROOT/current" ]; then
  fail "$ROOT/current is not a symlink: move it away and run this again"
fi
if [ "$OLD" = "releases/$VERSION" ]; then
  say "current already points at releases/$VERSION"
else
  if [ -n "$OLD" ]; then
    point previous "$OLD"
    say "previous -> $OLD"
  fi
  point current "releases/$VERSION"
  say "current -> releases/$VERSION"
fi

# 3. The launcher.
launch_version() { sed -n 's/^# launch-version: *\([0-9][0-9]*\).*$/\1/p' "$1" 2>/dev/null | head -n 1; }
NEW=$(launch_version "$HERE/launch")
[ -n "$NEW" ] || fail "$HERE/launch has no '# launch-version:' line"
HAVE=
[ -f "$ROOT/launch" ] && HAVE=$(launch_version "$ROOT/launch")
if [ -n "$HAVE" ] && [ "$HAVE" -ge "$NEW" ]; then
  say "launch is up to date (launch-version $HAVE)"
else
  rm -f "$ROOT/.launch.tmp"
  cp "$HERE/launch" "$ROOT/.launch.tmp"
  chmod 755 "$ROOT/.launch.tmp"
  sync_file "$ROOT/.launch.tmp"
  mv -f "$ROOT/.launch.tmp" "$ROOT/launch"
  sync_file "$ROOT"
  say "wrote launch (launch-version $NEW${HAVE:+, was $HAVE})"
fi
say "the supervisor's command: $ROOT/launch serve --config /etc/dune-updater/updater.yaml"
