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

# iptables (both backends) and iproute2 for the node agent's network-namespace tests. Needs root (the tests create
# network namespaces); exports PODID_NETNS_OK=1 when everything is there.
ensure_netfilter() {
  PODID_NETNS_OK=""
  if [ "$(id -u)" != "0" ]; then
    say "not root: the node agent's network-namespace tests will be SKIPPED"
    export PODID_NETNS_OK; return 1
  fi
  if ! command -v iptables-legacy >/dev/null 2>&1 || ! command -v iptables-nft >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      say "installing iptables and iproute2 (Debian packages) for the network-namespace tests"
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iproute2 >/dev/null 2>&1 || true
    fi
  fi
  if command -v iptables-legacy >/dev/null 2>&1 && command -v iptables-nft >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
    PODID_NETNS_OK=1; export PODID_NETNS_OK; return 0
  fi
  say "iptables or iproute2 missing and not installable: the network-namespace tests will be SKIPPED"
  export PODID_NETNS_OK; return 1
}
