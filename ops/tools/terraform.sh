#!/bin/sh
# A binary that formats (and could plan) the modules of ops/terraform; its path is the last line
# printed.
#   sh ops/tools/terraform.sh           `terraform` when it is on PATH; otherwise OpenTofu at
#                                       TOFU_VERSION below, built once from its Go source
#   sh ops/tools/terraform.sh --check   print tofu@VERSION when neither terraform nor that
#                                       build is there (nothing otherwise), change nothing
# OpenTofu (MPL-2.0, the fork of Terraform 1.5; about 7 to 11 minutes to build on two cores) is
# built like ops/setup.sh builds stripe-mock, its source fetched through the Go module proxy:
# into the user's cache folder, outside the clone, at ${XDG_CACHE_HOME:-~/.cache}/optibid/tofu/
# VERSION/bin/tofu, with the Go modules it was built from beside it (GOPATH; the build cache is
# removed once it is built). The build goes to a .partial folder renamed when whole, so an
# interrupted build is never taken for a finished one. A build that is there is used as it is,
# without Go or network. Go is `go` on PATH or ${OPTIBID_GO_ROOT:-/usr/local/go}/bin/go; one
# older than OpenTofu's go.mod asks for fetches the newer toolchain through the module proxy.
# tests/unit/test_terraform.py reads the pinned version from TOFU_VERSION below.
set -eu
TOFU_VERSION=v1.12.6

check_only=""
case ${1:-} in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: sh ops/tools/terraform.sh [--check]" >&2; exit 2 ;;
esac

has() { command -v "$1" 2>/dev/null; }
go_binary() { # Go on PATH, or where Go's own release tarball is unpacked (often not on PATH)
  has go || { ls "${OPTIBID_GO_ROOT:-/usr/local/go}/bin/go" 2>/dev/null; }
}

tofu_dir=${XDG_CACHE_HOME:-${HOME:-}/.cache}/optibid/tofu/$TOFU_VERSION
tofu=$tofu_dir/bin/tofu

if terraform=$(has terraform); then
  [ -n "$check_only" ] || echo "$terraform"
  exit 0
fi
if [ -x "$tofu" ]; then
  [ -n "$check_only" ] || echo "$tofu"
  exit 0
fi
if [ -n "$check_only" ]; then
  echo "tofu@$TOFU_VERSION"
  exit 0
fi

go=$(go_binary) || true
if [ -z "$go" ]; then
  echo "neither terraform nor Go is found: Go builds OpenTofu (ops/setup.sh test installs it)" >&2
  exit 1
fi
partial=$tofu_dir.partial
rm -rf "$partial"
mkdir -p "$partial"
echo "== building OpenTofu $TOFU_VERSION with $("$go" version) into $tofu_dir" >&2
began=$(date +%s)
log=$partial/build.log
# -modcacherw: the module cache can be deleted like any folder; -trimpath: the binary names no
# folder of this machine; the GOFLAGS and go.work of the environment do not apply to this build.
# OpenTofu's go.mod replaces a module (its fork of HCL), which `go install tool@version` refuses:
# the source is downloaded and built as the main module instead, where the replacement holds.
build() {
  env GOPATH="$partial/gopath" GOMODCACHE="$partial/gopath/pkg/mod" GOCACHE="$partial/gocache" \
    GOFLAGS="-modcacherw -trimpath" GOWORK=off CGO_ENABLED=0 "$go" "$@"
}
source_dir=""
if json=$(cd "$partial" && build mod download -json "github.com/opentofu/opentofu@$TOFU_VERSION" 2>>"$log"); then
  source_dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
else
  printf '%s\n' "$json" >>"$log"
fi
# -X ...version.dev=no: the release's own version (v1.x.y, not v1.x.y-dev); -s -w: no symbol
# tables (a binary smaller by almost a third)
ldflags="-s -w -X github.com/opentofu/opentofu/version.dev=no"
if [ -z "$source_dir" ] ||
  ! (cd "$source_dir" && build build -ldflags "$ldflags" -o "$partial/bin/tofu" ./cmd/tofu) >>"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "building OpenTofu failed (its last lines above; all of them in $log)" >&2
  exit 1
fi
rm -rf "$partial/gocache" # the build's intermediate objects, not needed to run it
rm -rf "$tofu_dir"
mv "$partial" "$tofu_dir"
echo "OpenTofu built in $(($(date +%s) - began)) s" >&2
echo "$tofu"
