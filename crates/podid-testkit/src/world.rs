//! The Azure world the suites share: one subscription and tenant, a scale set with two instances (system-assigned,
//! the cluster identity and a preexisting identity), a second scale set, one VM, identities `id-a`..`id-f`, and
//! the controller's app with upstream's roles. IDs are fixed, so tests can name them.

use serde_json::{Value, json};

/// The subscription.
pub const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
/// The tenant.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The node resource group (scale sets, VM, the cluster identity).
pub const MC: &str = "MC_rg_aks";
/// The resource group of the pods' identities.
pub const IDS: &str = "rg-ids";
/// The controller's app (client ID).
pub const APP_ID: &str = "5a1f0000-0000-4000-8000-00000000a11c";
/// The controller's app secret.
pub const APP_SECRET: &str = "mic-secret-value";

/// Client ID of the identity named `name` (fixed in the world: a hash of the name).
pub fn client_id(name: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        (h >> 32) as u32,
        h & 0xffff_ffff_ffff
    )
}

/// ARM ID of identity `name` in `rg`.
pub fn uami_id(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

/// The resource group of identity `name` in the world.
pub fn identity_rg(name: &str) -> &'static str {
    if name == "aks-agentpool" || name == "id-noperm" {
        MC
    } else {
        IDS
    }
}

/// The world: one scale set with two instances (system-assigned + cluster identity + a preexisting identity), a
/// second scale set, one VM, identities id-a..id-f, the controller's app with the upstream roles.
pub fn world() -> Value {
    let ids: Vec<Value> = ["id-a", "id-b", "id-c", "id-d", "id-e", "id-f", "id-pre", "id-noperm"]
        .iter()
        .map(|n| {
            let rg = if *n == "id-noperm" { MC } else { IDS };
            json!({"name": n, "resourceGroup": rg, "clientId": client_id(n)})
        })
        .chain([json!({"name": "aks-agentpool", "resourceGroup": MC, "clientId": client_id("aks-agentpool")})])
        .collect();
    json!({
        "tenants": [{"id": TENANT}],
        "subscriptions": [{"id": SUB}],
        "resourceGroups": [{"name": MC, "location": "westeurope"}, {"name": IDS, "location": "westeurope"}],
        "userAssignedIdentities": ids,
        "virtualMachineScaleSets": [
            {"name": "pool1-vmss", "resourceGroup": MC,
             "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": ["aks-agentpool", "id-pre"]},
             "instances": [{}, {}]},
            {"name": "pool2-vmss", "resourceGroup": MC, "instances": [{}]}
        ],
        "virtualMachines": [{"name": "vm-node1", "resourceGroup": MC}],
        "applications": [{"displayName": "mic", "appId": APP_ID, "secrets": [{"value": APP_SECRET}]}],
        "roleAssignments": [
            {"principalName": "mic", "roleDefinitionName": "Virtual Machine Contributor",
             "scope": format!("/subscriptions/{SUB}/resourceGroups/{MC}")},
            {"principalName": "mic", "roleDefinitionName": "Managed Identity Operator",
             "scope": format!("/subscriptions/{SUB}/resourceGroups/{IDS}")},
            {"principalName": "mic", "roleDefinitionName": "Managed Identity Operator",
             "scope": uami_id(MC, "aks-agentpool")}
        ]
    })
}

/// [`world`] with `assigned` identities also on pool1-vmss (so its nodes' IMDS answers for them, as after the
/// controller assigned them): the agent suites' world.
pub fn world_with_assigned(assigned: &[&str]) -> Value {
    let mut w = world();
    if let Some(ids) =
        w["virtualMachineScaleSets"][0]["identity"]["userAssignedIdentities"].as_array_mut()
    {
        ids.extend(assigned.iter().map(|n| json!(n)));
    }
    w
}

/// The Kubernetes nodes of [`world`]: (name, Azure provider ID) for each scale-set instance and the VM.
pub fn world_nodes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (vmss, n) in [("pool1-vmss", 2), ("pool2-vmss", 1)] {
        for i in 0..n {
            out.push((
                format!("{vmss}{i:06}"),
                format!("azure:///subscriptions/{SUB}/resourceGroups/{MC}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{i}"),
            ));
        }
    }
    out.push((
        "vm-node1".into(),
        format!("azure:///subscriptions/{SUB}/resourceGroups/{MC}/providers/Microsoft.Compute/virtualMachines/vm-node1"),
    ));
    out
}
