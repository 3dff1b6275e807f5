#!/bin/sh
# System packages and uv for the two commands of the quick start, on Debian/Ubuntu.
#   ops/setup.sh demo   the local stack's servers: Java 17, Maven, PostgreSQL, Redis (and uv)
#   ops/setup.sh test   the same, headless Chromium with its driver (the dashboard's test),
#                       stripe-mock (the billing gateway's test peer, see below), Debian's
#                       prometheus (promtool), helm and OpenTofu built with Go (the chart's and
#                       the Terraform modules' checks; ops/tools/*.sh) and checkov (uv's cache)
#   ops/setup.sh uv     uv only (lint, the Python environment)
#   ops/setup.sh --check demo|test|uv   print what is missing (one line: the packages, and
#                       stripe-mock@, helm@, tofu@VERSION for builds not cached yet), change
#                       nothing
# With demo and test, when ../shared/vendor holds TimescaleDB's source and the server lacks it,
# also what `optibid stack up` needs to build it: cmake, a C compiler, the OpenSSL and GSSAPI
# headers, and the server's own headers at exactly the installed server's version (an unpinned
# install would upgrade the server too). OPTIBID_TIMESCALEDB=false skips them.
# (OPTIBID_VENDOR_DIR, OPTIBID_PG_ROOT and OPTIBID_GO_ROOT stand for ../shared/vendor,
# /usr/lib/postgresql and /usr/local/go in this script's tests.)
# Installs through apt as root, or with sudo (where it asks no password, or can ask at a
# terminal); otherwise stops with the one command to run. Does nothing, and needs no network,
# when everything is there already. uv is run as `python3 -m uv` (installed with pip when
# missing), so nothing depends on PATH reaching pip's scripts folder.
# stripe-mock (Stripe's own mock of its API, a Go program) is built once with `go install` into
# the user's cache folder, outside the clone: ${XDG_CACHE_HOME:-~/.cache}/optibid/stripe-mock/
# VERSION/bin/stripe-mock, with the Go modules it was built from beside it (GOPATH; the build
# cache is removed once it is built). A build that is there is used as it is, without Go or
# network; Debian's golang-go is installed only when the build is missing and no Go is found.
# tests/integration/stripe_peer.py reads the pinned version from STRIPE_MOCK_VERSION below.
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
# Go on PATH, or where Go's own release tarball is unpacked (often not on PATH)
go_binary() { has go || ls "${OPTIBID_GO_ROOT:-/usr/local/go}/bin/go"; }

STRIPE_MOCK_VERSION=v0.203.0
stripe_mock_dir=${XDG_CACHE_HOME:-${HOME:-}/.cache}/optibid/stripe-mock/$STRIPE_MOCK_VERSION
stripe_mock_missing="" # the build to make, when `test` wants it and the cache lacks it
if [ "$want" = test ] && [ ! -x "$stripe_mock_dir/bin/stripe-mock" ]; then
  stripe_mock_missing=" stripe-mock@$STRIPE_MOCK_VERSION"
fi
# helm and OpenTofu (or terraform, when on PATH) for the chart's and the modules' checks, built
# with Go by ops/tools/helm.sh and ops/tools/terraform.sh into the same cache (when missing)
tools=$(dirname "$0")/tools
tools_missing=""
if [ "$want" = test ]; then
  for tool in helm terraform; do
    build=$(/bin/sh "$tools/$tool.sh" --check)
    [ -z "$build" ] || tools_missing="$tools_missing $build"
  done
fi

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
  need xmlsec1 has xmlsec1 # the SAML peers sign and verify with it
  need nodejs has node # the OpenID Connect peers (oidc-provider) run on it
  need npm has npm
  need prometheus has promtool # promtool checks and unit-tests the rules in ops/prometheus
fi
if [ -n "$stripe_mock_missing$tools_missing" ]; then
  need golang-go go_binary # only to build stripe-mock, helm and OpenTofu
fi
if ! uv_runs >/dev/null 2>&1; then
  need python3-pip pip_runs # Debian's python3 comes without pip
fi

install_packages() { # install_packages WHAT PACKAGE...: apt-get install as root or with sudo
  what=$1
  shift
  install="apt-get update && apt-get install -y --no-install-recommends --allow-downgrades $*"
  if [ "$(id -u)" = 0 ]; then
    run=""
  elif has sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    run="sudo"
  else
    echo "missing $what: $*" >&2
    echo "install them, then run this again: sudo sh -c '$install'" >&2
    return 1
  fi
  echo "== installing $what: $*"
  log=$(mktemp)
  # shellcheck disable=SC2086  # $run is empty or sudo
  if ! $run env DEBIAN_FRONTEND=noninteractive sh -c "$install" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "apt-get failed (its last lines above); the command was: $install" >&2
    return 1
  fi
  grep -E '^(Need to get|After this operation)' "$log" || true
  rm -f "$log"
}

installed_version() { dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null | sed -n 's/^install ok installed //p'; }

timescale_missing="" # what building TimescaleDB needs and the machine lacks
timescale_needs() {
  timescale_missing=""
  [ "$want" != uv ] || return 0
  case ${OPTIBID_TIMESCALEDB:-true} in false | False | FALSE | 0 | no | off) return 0 ;; esac
  vendor=${OPTIBID_VENDOR_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared/vendor}
  pg_root=${OPTIBID_PG_ROOT:-/usr/lib/postgresql}
  ls "$vendor"/timescaledb-*.tar.gz >/dev/null 2>&1 || return 0
  # the newest major, as the stack picks it
  major=$(ls "$pg_root" 2>/dev/null | sort -n | tail -n 1)
  [ -n "$major" ] && [ -x "$pg_root/$major/bin/postgres" ] || return 0 # no server yet
  ls "$pg_root/$major"/lib/timescaledb*.so >/dev/null 2>&1 && return 0
  server=$(installed_version "postgresql-$major")
  [ -n "$server" ] || return 0 # a server not from a Debian package: `stack up` says what to do
  for package in cmake build-essential libssl-dev libkrb5-dev; do
    [ -n "$(installed_version "$package")" ] || timescale_missing="$timescale_missing $package"
  done
  for package in "postgresql-server-dev-$major" libpq-dev libpq5; do
    [ "$(installed_version "$package")" = "$server" ] || timescale_missing="$timescale_missing $package=$server"
  done
}

if [ -n "$check_only" ]; then
  timescale_needs
  echo "${missing# }${timescale_missing}${stripe_mock_missing}${tools_missing}" | sed 's/^ //'
  exit 0
fi

if [ -n "$missing" ]; then
  # shellcheck disable=SC2086  # one word per package
  install_packages "system packages" ${missing# } || exit 1
fi

timescale_needs
if [ -n "$timescale_missing" ]; then
  # shellcheck disable=SC2086  # one word per package
  if ! install_packages "packages to build TimescaleDB" ${timescale_missing# }; then
    if [ "$want" = test ]; then
      exit 1
    fi
    echo "the demo goes on without TimescaleDB: the read models use plain partitions" >&2
  fi
fi

. "$tools/go-install.sh"
build_stripe_mock() {
  go_install "stripe-mock $STRIPE_MOCK_VERSION" "$stripe_mock_dir" \
    "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" "$(go_binary | head -n 1)"
}

if [ -n "$stripe_mock_missing" ]; then
  build_stripe_mock || exit 1
fi
case $tools_missing in *helm@*) /bin/sh "$tools/helm.sh" || exit 1 ;; esac
case $tools_missing in *tofu@*) /bin/sh "$tools/terraform.sh" || exit 1 ;; esac

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
if [ "$want" = test ]; then
  # checkov (tests/unit/test_terraform.py) as a tool of its own, its many pins apart from the
  # project's environment; fetched once into uv's cache
  "$python" -m uv tool run --from checkov==3.3.30 checkov --version >/dev/null
fi
