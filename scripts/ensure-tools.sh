#!/usr/bin/env bash
# Makes sure the external clients the tests drive are present, installing them when missing.
# Sourced by scripts/test.sh; exports KUBECTL (path) or leaves it empty and says why.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/target/tools"
mkdir -p "$TOOLS"

say() { printf '[tools] %s\n' "$*" >&2; }

ensure_kubectl() {
  if [ -n "${KUBECTL:-}" ] && [ -x "$KUBECTL" ]; then return 0; fi
  if command -v kubectl >/dev/null 2>&1 && kubectl version --client >/dev/null 2>&1; then
    KUBECTL="$(command -v kubectl)"; export KUBECTL; return 0
  fi
  if [ -x "$TOOLS/kubectl/usr/bin/kubectl" ]; then
    KUBECTL="$TOOLS/kubectl/usr/bin/kubectl"; export KUBECTL; return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "kubectl not found: installing Debian's kubernetes-client"
    apt-get update -qq >/dev/null 2>&1 || true
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null 2>&1; then
      KUBECTL="$(command -v kubectl)"; export KUBECTL; return 0
    fi
    # The package can clash with another package's /usr/bin/kubectl: unpack it beside the project instead.
    (cd "$TOOLS" && apt-get download kubernetes-client >/dev/null 2>&1 && dpkg-deb -x kubernetes-client_*.deb kubectl) || true
    if [ -x "$TOOLS/kubectl/usr/bin/kubectl" ]; then
      KUBECTL="$TOOLS/kubectl/usr/bin/kubectl"; export KUBECTL; return 0
    fi
  fi
  say "kubectl is missing and could not be installed (needs root and apt): the kubectl conformance tests will be SKIPPED"
  KUBECTL=""; export KUBECTL
  return 1
}
