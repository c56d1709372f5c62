#!/usr/bin/env bash
# Builds the real Kubernetes API server the test kit can run beside kube-sim (podid_testkit::KubeBackend::Real):
# kube-apiserver and kube-controller-manager v1.34.4 and etcd v3.6.17, from the Go module proxy, through the tiny
# wrapper modules in tests/peers/kube (their go.sum is committed). Binaries go to
# target/tools/kube/<version>/bin, once per machine: a stamp keyed by the versions, the Go version and the hash of
# the wrapper files makes a second run take well under a second. Go's module and build caches live in
# target/tools/go-kube (about 1 GB of modules, kept writable so `rm -rf target` works, and 3 GB of build cache).
# A cold build takes 10-15 minutes on 2 shared cores (docs/real-kube.md); a rebuild with the caches warm, 16 s.
#
# Usage: source scripts/ensure-kube.sh && ensure_kube       (scripts/test.sh does this)
#    or: scripts/ensure-kube.sh                             (alone: builds, prints the export line)
# On success exports PODID_KUBE_BIN=<bin dir> and returns 0. Without Go, or when the build fails, says
# "[kube] ... real-apiserver suites will be SKIPPED" and returns 1 (the build log stays in target/tools/kube).

KUBE_VERSION=v1.34.4
ETCD_VERSION=v3.6.17

_kube_say() { printf '[kube] %s\n' "$*" >&2; }

_kube_go() {
  if command -v go >/dev/null 2>&1; then command -v go; return 0; fi
  if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; return 0; fi
  return 1
}

ensure_kube() {
  local root peers tools bin stamp_file want go gover log lock t0 ld p
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  peers="$root/tests/peers/kube"
  tools="$root/target/tools/kube/$KUBE_VERSION"
  bin="$tools/bin"
  stamp_file="$tools/stamp"
  log="$tools/build.log"
  if ! go="$(_kube_go)"; then
    _kube_say "Go is not installed (no go on PATH, no /usr/local/go): the real-apiserver suites will be SKIPPED"
    return 1
  fi
  gover="$("$go" env GOVERSION 2>/dev/null)"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    # The version is REQUIRED: without it the server calls itself v0.0.0-master and derives its
    # compatibility (emulation) version from that.
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=34 -X $p.gitTreeState=clean"
    ld="$ld -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  # The stamp: versions, Go, link flags and the wrapper modules (a change to any of them rebuilds; with Go's
  # build cache warm that is mostly linking).
  want="$(
    {
      echo "kube=$KUBE_VERSION etcd=$ETCD_VERSION go=$gover ldflags=$ld"
      cat "$peers/apiserver/go.mod" "$peers/apiserver/go.sum" "$peers/apiserver/main.go" \
        "$peers/apiserver/kcm/main.go" "$peers/etcd/go.mod" "$peers/etcd/go.sum" "$peers/etcd/main.go" 2>/dev/null
    } | sha256sum | cut -d' ' -f1
  )"
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ] &&
    [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/etcd" ]; then
    PODID_KUBE_BIN="$bin"
    export PODID_KUBE_BIN
    return 0
  fi

  mkdir -p "$tools"
  lock="$tools/.lock"
  # One build at a time per machine (two test runs starting together wait for each other).
  exec {_kube_lock_fd}>"$lock"
  flock "$_kube_lock_fd"
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ] &&
    [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/etcd" ]; then
    exec {_kube_lock_fd}>&-
    PODID_KUBE_BIN="$bin"
    export PODID_KUBE_BIN
    return 0
  fi

  _kube_say "building kube-apiserver, kube-controller-manager $KUBE_VERSION and etcd $ETCD_VERSION with $gover"
  _kube_say "(once per machine; a cold build takes 10-15 minutes on 2 cores; log: $log)"
  t0=$(date +%s)
  local gohome="$root/target/tools/go-kube" out="$tools/bin.new" rc=0
  rm -rf "$out"
  mkdir -p "$out"
  (
    set -e
    export GOPATH="$gohome/gopath" GOMODCACHE="$gohome/gopath/pkg/mod" GOCACHE="$gohome/gocache"
    # The checksum database is not reachable from these machines; go.sum (committed) still pins every hash.
    export GOSUMDB=off GOTOOLCHAIN=local GOFLAGS="-mod=mod -modcacherw"
    export CGO_ENABLED=0
    cd "$peers/apiserver"
    nice -n 10 "$go" build -trimpath -ldflags "$ld" -o "$out/kube-apiserver" .
    echo "kube-apiserver built after $(($(date +%s) - t0)) s"
    nice -n 10 "$go" build -trimpath -ldflags "$ld" -o "$out/kube-controller-manager" ./kcm
    echo "kube-controller-manager built after $(($(date +%s) - t0)) s"
    cd "$peers/etcd"
    nice -n 10 "$go" build -trimpath -ldflags "-s -w" -o "$out/etcd" .
    echo "etcd built after $(($(date +%s) - t0)) s"
  ) >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ] || ! "$out/kube-apiserver" --version 2>/dev/null | grep -q "$KUBE_VERSION"; then
    tail -n 15 "$log" | sed 's/^/[kube]   /' >&2
    _kube_say "the build failed (see $log): the real-apiserver suites will be SKIPPED"
    exec {_kube_lock_fd}>&-
    return 1
  fi
  rm -rf "$bin"
  mv "$out" "$bin"
  echo "$want" >"$stamp_file"
  exec {_kube_lock_fd}>&-
  _kube_say "built in $(($(date +%s) - t0)) s: $bin"
  PODID_KUBE_BIN="$bin"
  export PODID_KUBE_BIN
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  if ensure_kube; then
    echo "export PODID_KUBE_BIN=$PODID_KUBE_BIN"
  else
    exit 1
  fi
fi
