//! Response bodies: VMs, scale sets, identities, federated credentials and async operations.

use serde_json::{Map, Value, json};

use crate::armid;
use crate::world::{
    FederatedCredential, IdentityType, Index, ResourceIdentity, ScaleSet, ScaleSetInstance,
    UserAssignedIdentity, VirtualMachine, World,
};

/// The `identity` JSON of a VM or scale set (absent for `None`).
pub fn identity_json(
    ident: &ResourceIdentity,
    tenant_id: &str,
    w: &World,
    ix: &Index,
) -> Option<Value> {
    let kind = ident.kind();
    if kind == IdentityType::None {
        return None;
    }
    let mut v = json!({"type": kind.as_str()});
    if kind.system() {
        v["principalId"] = json!(ident.principal_id);
        v["tenantId"] = json!(tenant_id);
    }
    if kind.user() {
        let mut m = Map::new();
        for id in &ident.user_assigned_identities {
            let (p, c) = ix
                .uami(id)
                .map(|i| &w.user_assigned_identities[i])
                .map(|u| (u.principal_id.clone(), u.client_id.clone()))
                .unwrap_or_default();
            m.insert(id.clone(), json!({"principalId": p, "clientId": c}));
        }
        v["userAssignedIdentities"] = Value::Object(m);
    }
    Some(v)
}

fn tags_json(t: &std::collections::BTreeMap<String, String>) -> Value {
    json!(t)
}

/// A VM as ARM returns it.
pub fn vm_json(vm: &VirtualMachine, w: &World, ix: &Index, provisioning: &str) -> Value {
    let tenant = w
        .tenant_of_subscription(vm.subscription_id.as_deref().unwrap_or(""))
        .unwrap_or("");
    let mut v = json!({
        "name": vm.name,
        "id": vm.id(),
        "type": "Microsoft.Compute/virtualMachines",
        "location": vm.location,
        "tags": tags_json(&vm.tags),
        "properties": {
            "vmId": vm.vm_id,
            "hardwareProfile": {"vmSize": vm.vm_size},
            "osProfile": {"computerName": vm.node_name, "adminUsername": "azureuser", "linuxConfiguration": {"disablePasswordAuthentication": true}},
            "provisioningState": provisioning,
        }
    });
    if let Some(i) = identity_json(&vm.identity, tenant, w, ix) {
        v["identity"] = i;
    }
    v
}

/// A scale set as ARM returns it.
pub fn vmss_json(s: &ScaleSet, w: &World, ix: &Index, provisioning: &str) -> Value {
    let tenant = w
        .tenant_of_subscription(s.subscription_id.as_deref().unwrap_or(""))
        .unwrap_or("");
    let mut v = json!({
        "name": s.name,
        "id": s.id(),
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": s.location,
        "tags": tags_json(&s.tags),
        "sku": {"name": s.vm_size, "tier": "Standard", "capacity": s.instances.len()},
        "properties": {
            "uniqueId": armid::derived_guid(&format!("vmss-unique:{}", armid::key(&s.id()))),
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {"osProfile": {"computerNamePrefix": s.name, "adminUsername": "azureuser"}},
            "orchestrationMode": "Uniform",
            "provisioningState": provisioning,
        }
    });
    if let Some(i) = identity_json(&s.identity, tenant, w, ix) {
        v["identity"] = i;
    }
    v
}

/// A scale set instance as ARM returns it.
pub fn vmss_vm_json(s: &ScaleSet, inst: &ScaleSetInstance) -> Value {
    let iid = inst.instance_id.clone().unwrap_or_default();
    json!({
        "name": format!("{}_{iid}", s.name),
        "id": format!("{}/virtualMachines/{iid}", s.id()),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": s.location,
        "instanceId": iid,
        "sku": {"name": s.vm_size, "tier": "Standard"},
        "properties": {
            "vmId": inst.vm_id,
            "latestModelApplied": true,
            "hardwareProfile": {"vmSize": s.vm_size},
            "osProfile": {"computerName": inst.node_name, "adminUsername": "azureuser"},
            "provisioningState": "Succeeded",
        }
    })
}

/// A user-assigned identity as ARM returns it.
pub fn uami_json(u: &UserAssignedIdentity, tenant_id: &str) -> Value {
    json!({
        "id": u.id(),
        "name": u.name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": u.location,
        "tags": tags_json(&u.tags),
        "properties": {
            "isolationScope": "None",
            "tenantId": tenant_id,
            "principalId": u.principal_id,
            "clientId": u.client_id,
        }
    })
}

/// A federated identity credential as ARM returns it.
pub fn fic_json(uami_id: &str, f: &FederatedCredential) -> Value {
    let mut props = json!({"issuer": f.issuer, "subject": f.subject, "audiences": f.audiences});
    if let Some(d) = &f.description {
        props["description"] = json!(d);
    }
    json!({
        "id": format!("{uami_id}/federatedIdentityCredentials/{}", f.name),
        "name": f.name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
        "properties": props,
    })
}

/// An async operation status body.
pub fn operation_json(id: &str, started: i64, finished: Option<i64>) -> Value {
    let mut v = json!({
        "startTime": crate::token::rfc3339(started),
        "status": if finished.is_some() { "Succeeded" } else { "InProgress" },
        "name": id,
    });
    if let Some(f) = finished {
        v["endTime"] = json!(crate::token::rfc3339(f));
    }
    v
}
