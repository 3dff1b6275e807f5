#!/bin/sh
# System packages and uv for the two commands of the quick start, on Debian/Ubuntu.
#   ops/setup.sh demo   the local stack's servers: Java 17, Maven, PostgreSQL, Redis (and uv)
#   ops/setup.sh test   the same, and headless Chromium with its driver (the dashboard's test)
#   ops/setup.sh uv     uv only (lint, the Python environment)
#   ops/setup.sh --check demo|test|uv   print the missing packages (one line), change nothing
# Installs through apt as root, or with sudo (where it asks no password, or can ask at a
# terminal); otherwise stops with the one command to run. Does nothing, and needs no network,
# when everything is there already. uv is run as `python3 -m uv` (installed with pip when
# missing), so nothing depends on PATH reaching pip's scripts folder.
set -eu
check_only=""
if [ "${1:-}" = --check ]; then
  check_only=1
  shift
fi
want=${1:-demo}
python=${PYTHON:-python3}
case $want in
  demo | test | uv) ;;
  *) echo "usage: ops/setup.sh [--check] demo|test|uv" >&2; exit 2 ;;
esac

missing=""
need() { # need PACKAGE TEST...: add PACKAGE when the test command fails
  package=$1
  shift
  "$@" >/dev/null 2>&1 || missing="$missing $package"
}
has() { command -v "$1"; }
postgres_has() { has "$1" || ls /usr/lib/postgresql/*/bin/"$1"; }
java_17() { # Kafka 4 and Apicurio Registry 3 need Java 17 or later
  major=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1)
  [ "${major:-0}" -ge 17 ]
}
uv_runs() { "$python" -m uv --version; }
pip_runs() { "$python" -m pip --version; }

if [ "$want" != uv ]; then
  need make has make
  need openjdk-17-jre-headless java_17
  need maven has mvn
  need postgresql postgres_has initdb
  need redis-server has redis-server
fi
if [ "$want" = test ]; then
  need chromium has chromium
  need chromium-driver has chromedriver
fi
if ! uv_runs >/dev/null 2>&1; then
  need python3-pip pip_runs # Debian's python3 comes without pip
fi

if [ -n "$check_only" ]; then
  echo "${missing# }"
  exit 0
fi

if [ -n "$missing" ]; then
  packages=${missing# }
  install="apt-get update && apt-get install -y --no-install-recommends $packages"
  if [ "$(id -u)" = 0 ]; then
    run=""
  elif has sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    run="sudo"
  else
    echo "missing system packages: $packages" >&2
    echo "install them, then run this again: sudo sh -c '$install'" >&2
    exit 1
  fi
  echo "== installing system packages: $packages"
  log=$(mktemp)
  # shellcheck disable=SC2086  # one word per package; $run is empty or sudo
  if ! $run env DEBIAN_FRONTEND=noninteractive sh -c "$install" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "apt-get failed (its last lines above); the command was: $install" >&2
    exit 1
  fi
  grep -E '^(Need to get|After this operation)' "$log" || true
  rm -f "$log"
fi

if ! uv_runs >/dev/null 2>&1; then
  echo "== installing uv: $python -m pip install --user uv"
  if [ "$("$python" -c 'import sys; print(sys.prefix != sys.base_prefix)')" = True ]; then
    "$python" -m pip install --quiet uv # a virtual environment has no user site
  elif ! "$python" -m pip install --quiet --user uv 2>/dev/null; then
    # an externally managed interpreter (Debian's) refuses even --user installs without this;
    # uv has no dependencies, so nothing of the system's is touched
    "$python" -m pip install --quiet --user --break-system-packages uv
  fi
fi
if ! uv_runs >/dev/null 2>&1; then
  echo "uv still does not run as \`$python -m uv\`; install it: $python -m pip install --user uv" >&2
  exit 1
fi
