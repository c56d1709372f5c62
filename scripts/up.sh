#!/usr/bin/env bash
# The main job: build podid and run `podid up` (kube-sim + azure-sim + podid controller + one podid agent per
# simulated node). As root it installs iproute2 and iptables when missing, and nodes and pods are network
# namespaces; otherwise it runs on loopback addresses and says so. Arguments go to `podid up`
# (e.g. --demo, --exit, --nodes 3, --world FILE). Ctrl-C stops it and removes everything it created.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/ensure-tools.sh
source scripts/ensure-tools.sh
if [ "$(id -u)" = "0" ]; then ensure_netfilter >/dev/null 2>&1 || true; fi
echo "building podid (cargo build -p podid) ..." >&2
cargo build -q -p podid
exec ./target/debug/podid up "$@"
