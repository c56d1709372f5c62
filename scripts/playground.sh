#!/usr/bin/env bash
# The main job until `podid up` exists: start kube-sim, azure-sim and `podid controller` on loopback, install the
# pod-identity CRDs and an example identity with kubectl, show the controller assigning it, and keep everything
# running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/ensure-tools.sh
source scripts/ensure-tools.sh
cargo build --release -q -p podid
DIR="${PODID_PLAYGROUND_DIR:-$PWD/.podid/playground}"
PORT="${PODID_PLAYGROUND_PORT:-6443}"
rm -rf "$DIR" && mkdir -p "$DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
./target/release/podid sim kube --dir "$DIR" --listen "127.0.0.1:$PORT" --kubelet-dir "$DIR/kubelet" --log-level warn &
PIDS+=($!)
SUB=0b1f6471-1bf0-4dda-aec3-111122223333
TENANT=72f988bf-86f1-41af-91ab-2d7cd011db47
NODE_RG=MC_rg_aks_westeurope
CLUSTER_ID=9a2c4e60-0000-4000-8000-00000000c1d0
# The Azure side: one scale set (the node), the cluster identity with the roles MIC needs, an application identity.
cat > "$DIR/world.yaml" <<YAML
sim:
  entraListen: 127.0.0.1:7443
  armListen: 127.0.0.1:7444
  controlListen: 127.0.0.1:7070
  imds:
    aks-nodepool1-vmss000000: 127.0.0.1:7579
tenants: [{id: $TENANT}]
subscriptions: [{id: $SUB}]
resourceGroups:
  - {name: $NODE_RG, location: westeurope}
  - {name: rg-identities, location: westeurope}
userAssignedIdentities:
  - {name: aks-agentpool, resourceGroup: $NODE_RG, clientId: $CLUSTER_ID}
  - {name: application-identity, resourceGroup: rg-identities, clientId: 11111111-2222-3333-4444-555555555555}
virtualMachineScaleSets:
  - name: aks-nodepool1-vmss
    resourceGroup: $NODE_RG
    identity: {userAssignedIdentities: [aks-agentpool]}
    instances: [{}]
roleAssignments:
  - {principalName: aks-agentpool, roleDefinitionName: Virtual Machine Contributor, scope: /subscriptions/$SUB/resourceGroups/$NODE_RG}
  - {principalName: aks-agentpool, roleDefinitionName: Managed Identity Operator, scope: /subscriptions/$SUB/resourceGroups/rg-identities}
YAML
./target/release/podid sim azure --world "$DIR/world.yaml" --dir "$DIR/azure" --log-level warn > "$DIR/azure-sim.out" &
PIDS+=($!)
export KUBECONFIG="$DIR/kubeconfig"
for _ in $(seq 1 200); do [ -f "$KUBECONFIG" ] && [ -f "$DIR/azure/ca.crt" ] && break; sleep 0.05; done
# The controller authenticates as the cluster identity through the node's (simulated) IMDS, as on AKS.
cat > "$DIR/azure.json" <<JSON
{"cloud": "AzureStackCloud", "tenantId": "$TENANT", "subscriptionId": "$SUB", "resourceGroup": "$NODE_RG",
 "vmType": "vmss", "useManagedIdentityExtension": true, "userAssignedIdentityID": "$CLUSTER_ID",
 "aadClientId": "msi", "aadClientSecret": "msi"}
JSON
cat > "$DIR/azurestack.json" <<JSON
{"name": "AzureStackCloud", "resourceManagerEndpoint": "https://127.0.0.1:7444/",
 "activeDirectoryEndpoint": "https://127.0.0.1:7443/", "tokenAudience": "https://management.azure.com/"}
JSON
MIC_POD_NAMESPACE=kube-system AZURE_ENVIRONMENT_FILEPATH="$DIR/azurestack.json" \
  ./target/release/podid --log-level warn controller --kubeconfig "$KUBECONFIG" --cloudconfig "$DIR/azure.json" \
  --imds-endpoint http://127.0.0.1:7579 --azure-ca-file "$DIR/azure/ca.crt" --bind-address 127.0.0.1 \
  --http-probe-port 18080 --prometheus-port 18888 > "$DIR/controller.out" &
PIDS+=($!)
if ! ensure_kubectl; then
  echo "kube-sim runs at https://127.0.0.1:$PORT (kubeconfig: $KUBECONFIG), but kubectl is missing, so the demo steps are skipped."
  wait; exit 0
fi
run() { echo "\$ kubectl $*"; "$KUBECTL" "$@"; echo; }
./target/release/podid crds > "$DIR/crds.yaml"
cat > "$DIR/demo.yaml" <<YAML
apiVersion: v1
kind: Node
metadata:
  name: aks-nodepool1-vmss000000
spec:
  podCIDR: 10.244.0.0/24
  providerID: azure:///subscriptions/$SUB/resourceGroups/$NODE_RG/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-vmss/virtualMachines/0
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
  resourceID: /subscriptions/$SUB/resourceGroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/application-identity
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
  nodeName: aks-nodepool1-vmss000000
  containers:
  - name: demo
    image: mcr.microsoft.com/oss/azure/aad-pod-identity/demo:v1.8.17
YAML
run apply -f "$DIR/crds.yaml"
run apply -f "$DIR/demo.yaml"
for _ in $(seq 1 150); do "$KUBECTL" get azureassignedidentity/demo-my-app-application-identity -n default >/dev/null 2>&1 && break; sleep 0.2; done
run wait --for=jsonpath='{.status.status}'=Assigned azureassignedidentity/demo-my-app-application-identity -n default --timeout=60s
run get azureidentities,azureidentitybindings -n my-app
run get azureassignedidentities -A -o custom-columns=NAME:.metadata.name,NODE:.spec.nodename,STATUS:.status.status
run get pods -n my-app -o wide
echo "The scale set's identities in azure-sim (the controller added application-identity through ARM):"
curl -s http://127.0.0.1:7070/world | tr ',' '\n' | grep -o 'userAssignedIdentities/[A-Za-z0-9-]*' | sort -u || true
echo
run auth can-i list pods --as=system:serviceaccount:my-app:default -n my-app || true   # "no": RBAC applies to service accounts
cat <<TXT
kube-sim is running at https://127.0.0.1:$PORT, azure-sim's control API at http://127.0.0.1:7070, and
podid controller (health: http://127.0.0.1:18080/healthz, metrics: http://127.0.0.1:18888/metrics). Try it:
  export KUBECONFIG=$KUBECONFIG
  kubectl delete pod demo -n my-app        # the controller removes the AAI and the identity from the scale set
  kubectl get all -A
Projected service-account tokens of running pods are under $DIR/kubelet/pods/.
Press Ctrl-C to stop.
TXT
wait
