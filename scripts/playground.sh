#!/usr/bin/env bash
# The main job until `podid up` exists: start kube-sim, install the pod-identity CRDs and an example identity with
# kubectl, show the result, and keep the server running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/ensure-tools.sh
source scripts/ensure-tools.sh
cargo build --release -q -p podid
DIR="${PODID_PLAYGROUND_DIR:-$PWD/.podid/playground}"
PORT="${PODID_PLAYGROUND_PORT:-6443}"
rm -rf "$DIR" && mkdir -p "$DIR"
./target/release/podid sim kube --dir "$DIR" --listen "127.0.0.1:$PORT" --kubelet-dir "$DIR/kubelet" --log-level warn &
SIM=$!
trap 'kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true' EXIT INT TERM
export KUBECONFIG="$DIR/kubeconfig"
for _ in $(seq 1 100); do [ -f "$KUBECONFIG" ] && break; sleep 0.05; done
if ! ensure_kubectl; then
  echo "kube-sim runs at https://127.0.0.1:$PORT (kubeconfig: $KUBECONFIG), but kubectl is missing, so the demo steps are skipped."
  wait "$SIM"; exit 0
fi
run() { echo "\$ kubectl $*"; "$KUBECTL" "$@"; echo; }
./target/release/podid crds > "$DIR/crds.yaml"
cat > "$DIR/demo.yaml" <<'YAML'
apiVersion: v1
kind: Node
metadata:
  name: aks-nodepool1-0
spec:
  podCIDR: 10.244.0.0/24
---
apiVersion: v1
kind: Namespace
metadata:
  name: my-app
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata:
  name: application-identity
  namespace: my-app
spec:
  type: 0
  resourceID: /subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/myresourcegroup/providers/Microsoft.ManagedIdentity/userAssignedIdentities/application-identity
  clientID: 11111111-2222-3333-4444-555555555555
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentityBinding
metadata:
  name: application-identity-binding
  namespace: my-app
spec:
  azureIdentity: application-identity
  selector: application-identity
---
apiVersion: v1
kind: Pod
metadata:
  name: demo
  namespace: my-app
  labels:
    aadpodidbinding: application-identity
spec:
  nodeName: aks-nodepool1-0
  containers:
  - name: demo
    image: mcr.microsoft.com/oss/azure/aad-pod-identity/demo:v1.8.17
YAML
run apply -f "$DIR/crds.yaml"
run apply -f "$DIR/demo.yaml"
sleep 0.5
run get azureidentities,azureidentitybindings -n my-app
run get pods -n my-app -o wide
run auth can-i list pods --as=system:serviceaccount:my-app:default -n my-app || true   # "no": RBAC applies to service accounts
cat <<TXT
kube-sim is running at https://127.0.0.1:$PORT. Try it yourself:
  export KUBECONFIG=$KUBECONFIG
  kubectl get all -A
Projected service-account tokens of running pods are under $DIR/kubelet/pods/.
Press Ctrl-C to stop.
TXT
wait "$SIM"
