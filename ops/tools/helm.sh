#!/bin/sh
# A pinned helm, built once with `go install` from the Go module proxy into the user's cache
# folder, outside the clone: ${XDG_CACHE_HOME:-~/.cache}/optibid/helm/VERSION/bin/helm, with
# the Go modules it was built from beside it (GOPATH; the build cache is removed once it is
# built). A build that is there is used as it is, without Go or network.
#   sh ops/tools/helm.sh           build it when missing; the last line printed is its path
#   sh ops/tools/helm.sh --check   print helm@VERSION when the build is missing, change nothing
# Helm 4 is the pin; when it does not build (an older Go), Helm 3 is built instead, into its
# own versioned folder. tests/unit/test_helm.py finds the binary the same way (HELM_VERSIONS).
# (OPTIBID_GO_ROOT stands for /usr/local/go, where Go's release tarball is unpacked.)
set -eu
HELM_VERSION=v4.3.2
HELM_FALLBACK_VERSION=v3.21.4

cache=${XDG_CACHE_HOME:-${HOME:-}/.cache}/optibid/helm
binary_of() { echo "$cache/$1/bin/helm"; }

check_only=""
case ${1:-} in
  "") ;;
  --check) check_only=1 ;;
  *) echo "usage: sh ops/tools/helm.sh [--check]" >&2; exit 2 ;;
esac

for version in "$HELM_VERSION" "$HELM_FALLBACK_VERSION"; do
  if [ -x "$(binary_of "$version")" ]; then
    [ -n "$check_only" ] || binary_of "$version"
    exit 0
  fi
done
if [ -n "$check_only" ]; then
  echo "helm@$HELM_VERSION"
  exit 0
fi

# Go on PATH, or where Go's own release tarball is unpacked (often not on PATH)
go=$(command -v go || true)
if [ -z "$go" ] && [ -x "${OPTIBID_GO_ROOT:-/usr/local/go}/bin/go" ]; then
  go=${OPTIBID_GO_ROOT:-/usr/local/go}/bin/go
fi
if [ -z "$go" ]; then
  echo "building helm needs Go: install it (ops/setup.sh test does), then run this again" >&2
  exit 1
fi

. "$(dirname "$0")/go-install.sh"
build() { # build MAJOR VERSION
  go_install "helm $2" "$cache/$2" "helm.sh/helm/$1/cmd/helm@$2" "$go"
}

if ! build v4 "$HELM_VERSION"; then
  echo "== falling back to helm $HELM_FALLBACK_VERSION" >&2
  build v3 "$HELM_FALLBACK_VERSION" || exit 1
  version=$HELM_FALLBACK_VERSION
else
  version=$HELM_VERSION
fi
"$(binary_of "$version")" version >/dev/null # it runs
binary_of "$version"
