#!/usr/bin/env bash
# Builds in release mode and prints benchmark figures against their targets (loopback only, bounded loops).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p podid-bench -p podid
echo "== kube-sim over HTTP"
./target/release/podid-bench kube-sim
echo "== kube-sim over HTTPS"
./target/release/podid-bench kube-sim --tls
echo "== azure-sim"
./target/release/podid-bench azure-sim
echo "== podid controller (planner, then the real process against the simulators; about 2 minutes)"
./target/release/podid-bench controller
echo "== podid agent (the real process answering pods over loopback, vs a bare hyper server; about 1 minute)"
./target/release/podid-bench agent
echo "== podid up (start to ready, pod creation to first token; network namespaces when root)"
./target/release/podid-bench up
