# Sourced by ops/setup.sh and ops/tools/*.sh: `go_install NAME DIR PACKAGE@VERSION [GO]` builds
# PACKAGE@VERSION with `go install` into DIR/bin (DIR a versioned folder of the user's cache),
# through DIR.partial renamed when whole, so an interrupted build is never taken for a finished
# one. The Go modules it was built from stay beside it (DIR/gopath); the build cache is removed
# once built. GO defaults to `go` on PATH, else ${OPTIBID_GO_ROOT:-/usr/local/go}/bin/go.
go_install() {
  gi_name=$1
  gi_dir=$2
  gi_package=$3
  gi_go=${4:-$(command -v go || echo "${OPTIBID_GO_ROOT:-/usr/local/go}/bin/go")}
  gi_partial=$gi_dir.partial
  rm -rf "$gi_partial"
  mkdir -p "$gi_partial"
  echo "== building $gi_name with $("$gi_go" version) into $gi_dir"
  gi_began=$(date +%s)
  gi_log=$gi_partial/build.log
  # -modcacherw: the module cache can be deleted like any folder; -trimpath: the binary names no
  # folder of this machine; the GOFLAGS of the environment do not apply to this build
  if ! env GOPATH="$gi_partial/gopath" GOMODCACHE="$gi_partial/gopath/pkg/mod" \
    GOBIN="$gi_partial/bin" GOCACHE="$gi_partial/gocache" GOFLAGS="-modcacherw -trimpath" \
    CGO_ENABLED=0 "$gi_go" install "$gi_package" >"$gi_log" 2>&1; then
    tail -n 20 "$gi_log" >&2
    echo "building $gi_name failed (its last lines above; all of them in $gi_log)" >&2
    rm -rf "$gi_partial/gocache"
    return 1
  fi
  rm -rf "$gi_partial/gocache" # the build's intermediate objects, not needed to run it
  rm -rf "$gi_dir"
  mv "$gi_partial" "$gi_dir"
  echo "$gi_name built in $(($(date +%s) - gi_began)) s"
}
