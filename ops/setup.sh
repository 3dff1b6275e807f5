#!/bin/sh
# System packages and uv for the two commands of the quick start, on Debian/Ubuntu.
#   ops/setup.sh demo   the local stack's servers: Java, Maven, PostgreSQL, Redis
#   ops/setup.sh test   the same, and headless Chromium with its driver (the dashboard's test)
# Installs through apt as root (or with sudo where it asks no password); otherwise prints the
# one command to run. Does nothing, and needs no network, when everything is there already.
# uv is found as `python3 -m uv` (installed with pip when missing), never by PATH.
set -eu
want=${1:-demo}
python=${PYTHON:-python3}

missing=""
need() {  # need PACKAGE TEST...: add PACKAGE when the test command fails
  package=$1
  shift
  "$@" >/dev/null 2>&1 || missing="$missing $package"
}
has() { command -v "$1"; }
pg_has() { ls /usr/lib/postgresql/*/bin/"$1"; }

need make has make
need openjdk-17-jre-headless has java
need maven has mvn
need postgresql pg_has initdb
need redis-server has redis-server
if [ "$want" = test ]; then
  need chromium has chromium
  need chromium-driver has chromedriver
fi

if [ -n "$missing" ]; then
  command="apt-get update && apt-get install -y --no-install-recommends$missing"
  if [ "$(id -u)" = 0 ]; then
    echo "== installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "== installing system packages with sudo:$missing"
    sudo -n sh -c "DEBIAN_FRONTEND=noninteractive $command" >/dev/null
  else
    echo "missing system packages:$missing; install them with: sudo sh -c '$command'" >&2
    exit 1
  fi
fi

if ! "$python" -m uv --version >/dev/null 2>&1; then
  echo "== installing uv with pip ($python -m pip install --user uv)"
  if ! "$python" -m pip install --quiet --user uv 2>/dev/null; then
    "$python" -m pip install --quiet uv
  fi
fi
"$python" -m uv --version >/dev/null
