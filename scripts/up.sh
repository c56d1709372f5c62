#!/usr/bin/env bash
# The main job: build podid and run `podid up` (kube-sim + azure-sim + podid controller + one podid agent per
# simulated node). As root it installs iproute2 and iptables when missing, and nodes and pods are network
# namespaces; otherwise it runs on loopback addresses and says so. Arguments go to `podid up`
# (e.g. --demo, --exit, --nodes 3, --world FILE, --kube real). Ctrl-C stops it and removes everything it created.
# With `--kube real` it first builds (once per machine, 10-15 minutes with Go) or reuses the real kube-apiserver,
# kube-controller-manager and etcd (scripts/ensure-kube.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/ensure-tools.sh
source scripts/ensure-tools.sh
if [ "$(id -u)" = "0" ]; then ensure_netfilter >/dev/null 2>&1 || true; fi
prev=""
for a in "$@"; do
  if [ "$a" = "--kube=real" ] || { [ "$prev" = "--kube" ] && [ "$a" = "real" ]; }; then
    # shellcheck source=scripts/ensure-kube.sh
    source scripts/ensure-kube.sh
    ensure_kube || { echo "--kube real: the real API server could not be built (see the [kube] lines above)" >&2; exit 1; }
  fi
  prev="$a"
done
echo "building podid (cargo build -p podid) ..." >&2
cargo build -q -p podid
exec ./target/debug/podid up "$@"
