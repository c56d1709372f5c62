#!/usr/bin/env bash
# Runs every test of podid: formatting, lints, unit, property and integration tests, and the conformance tests
# that drive real clients (kubectl, kube-rs, the official Azure SDKs for Python, Go and Node) against the simulators. Installs missing clients when it can and
# says plainly what it had to skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/ensure-tools.sh
source scripts/ensure-tools.sh
# shellcheck source=scripts/ensure-clients.sh
source scripts/ensure-clients.sh
skipped=()
ensure_kubectl || skipped+=("kubectl conformance (kubectl not installed)")
ensure_clients || skipped+=("some official-SDK client tests (see the [clients] lines above)")
ensure_netfilter || skipped+=("node-agent network-namespace tests (need root, iproute2 and iptables)")
# The real kube-apiserver, etcd and kube-controller-manager (built once per machine, before cargo test needs them).
# shellcheck source=scripts/ensure-kube.sh
source scripts/ensure-kube.sh
kube_t0=$(date +%s)
if ensure_kube; then
  echo "== real kube-apiserver: $PODID_KUBE_BIN (ready after $(($(date +%s) - kube_t0)) s)"
else
  skipped+=("real-apiserver suites (kube-apiserver/etcd not built: see the [kube] lines above)")
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
# In CI every client must be present: a missing one fails instead of skipping.
if [ "${CI:-}" = "true" ]; then
  export PODID_REQUIRE_CLIENTS=1
  # CI runs as root with iptables installed: a namespace test that cannot run is a failure, not a skip.
  if [ -n "${PODID_NETNS_OK:-}" ]; then export PODID_REQUIRE_NETNS=1; fi
  # A real-apiserver suite that cannot start its server fails instead of skipping.
  export PODID_REQUIRE_REAL_KUBE=1
fi
cargo test --workspace --all-targets --no-fail-fast

echo "== cargo fuzz (${PODID_FUZZ_SECS:-20} s per target)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
scripts/fuzz.sh "${PODID_FUZZ_SECS:-20}"

if [ "${#skipped[@]}" -gt 0 ]; then
  echo "== SKIPPED (missing on this machine):"
  for s in "${skipped[@]}"; do echo "   - $s"; done
fi
echo "== all tests passed"
