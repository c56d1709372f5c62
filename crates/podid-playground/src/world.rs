//! The playground's Azure side: the default world (pure text generation) and the Kubernetes nodes a world
//! implies.
//!
//! The default world is the AKS documentation's setup for pod-managed identities: one tenant and subscription, a
//! node resource group holding one VM scale set (one instance per simulated node) whose cluster identity
//! (`aks-agentpool`) has the two roles the controller needs, and an identity resource group with two user-assigned
//! identities and a Key Vault. `application-identity` may read the vault's secret and list the node resource group
//! (what the demo does); `second-identity` may list the node resource group but not read the vault, so a test can
//! tell the two apart by what they are allowed to do.

use azure_sim::World;

/// The tenant of the default world.
pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The subscription of the default world.
pub const SUBSCRIPTION_ID: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
/// The node resource group (AKS names it `MC_<rg>_<cluster>_<location>`).
pub const NODE_RESOURCE_GROUP: &str = "MC_podid_playground_westeurope";
/// The resource group of the application identities and the vault.
pub const IDENTITY_RESOURCE_GROUP: &str = "rg-identities";
/// The node pool's scale set; nodes are `<name>000000`, `<name>000001`, ...
pub const SCALE_SET: &str = "aks-nodepool1-vmss";
/// The cluster (kubelet) identity the controller authenticates as.
pub const CLUSTER_IDENTITY: &str = "aks-agentpool";
/// Its client ID.
pub const CLUSTER_IDENTITY_CLIENT_ID: &str = "9a2c4e60-0000-4000-8000-00000000c1d0";
/// The demo's identity (may read the vault's secret).
pub const APP_IDENTITY: &str = "application-identity";
/// Its client ID.
pub const APP_IDENTITY_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// A second identity (may list the node resource group, may not read the vault).
pub const SECOND_IDENTITY: &str = "second-identity";
/// Its client ID.
pub const SECOND_IDENTITY_CLIENT_ID: &str = "22222222-3333-4444-5555-666666666666";
/// The Key Vault (`https://<name>.vault.azure.net`).
pub const VAULT: &str = "podid-demo-kv";
/// The vault's secret.
pub const SECRET_NAME: &str = "demo-secret";
/// Its value.
pub const SECRET_VALUE: &str = "hello-from-the-podid-playground";
/// Most nodes `podid up` simulates (one /24 of pod addresses each, 10.244.N.0/24).
pub const MAX_NODES: usize = 64;

/// A Kubernetes node the world implies: a VM or a scale set instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldNode {
    /// The node name (`computerName`-style, as AKS names nodes).
    pub name: String,
    /// `spec.providerID` (`azure:///subscriptions/.../virtualMachines/<id>`), how the controller finds the VM.
    pub provider_id: String,
}

/// The default world with `nodes` scale set instances, as YAML.
pub fn default_world(nodes: usize) -> String {
    let instances = vec!["{}"; nodes.max(1)].join(", ");
    let node_rg = format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{NODE_RESOURCE_GROUP}");
    let id_rg =
        format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{IDENTITY_RESOURCE_GROUP}");
    let vault = format!("{id_rg}/providers/Microsoft.KeyVault/vaults/{VAULT}");
    format!(
        "# The podid playground's Azure world (podid up): AKS pod-managed identity setup.
tenants:
  - id: {TENANT_ID}
    domains: [contoso.onmicrosoft.com]
    displayName: Contoso
subscriptions:
  - id: {SUBSCRIPTION_ID}
resourceGroups:
  - {{name: {NODE_RESOURCE_GROUP}, location: westeurope}}
  - {{name: {IDENTITY_RESOURCE_GROUP}, location: westeurope}}
userAssignedIdentities:
  - {{name: {CLUSTER_IDENTITY}, resourceGroup: {NODE_RESOURCE_GROUP}, clientId: {CLUSTER_IDENTITY_CLIENT_ID}}}
  - {{name: {APP_IDENTITY}, resourceGroup: {IDENTITY_RESOURCE_GROUP}, clientId: {APP_IDENTITY_CLIENT_ID}}}
  - {{name: {SECOND_IDENTITY}, resourceGroup: {IDENTITY_RESOURCE_GROUP}, clientId: {SECOND_IDENTITY_CLIENT_ID}}}
virtualMachineScaleSets:
  - name: {SCALE_SET}
    resourceGroup: {NODE_RESOURCE_GROUP}
    identity: {{userAssignedIdentities: [{CLUSTER_IDENTITY}]}}
    instances: [{instances}]
roleAssignments:
  - {{principalName: {CLUSTER_IDENTITY}, roleDefinitionName: Virtual Machine Contributor, scope: {node_rg}}}
  - {{principalName: {CLUSTER_IDENTITY}, roleDefinitionName: Managed Identity Operator, scope: {id_rg}}}
  - {{principalName: {APP_IDENTITY}, roleDefinitionName: Reader, scope: {node_rg}}}
  - {{principalName: {APP_IDENTITY}, roleDefinitionName: Key Vault Secrets User, scope: {vault}}}
  - {{principalName: {SECOND_IDENTITY}, roleDefinitionName: Reader, scope: {node_rg}}}
keyVaults:
  - name: {VAULT}
    resourceGroup: {IDENTITY_RESOURCE_GROUP}
    secrets:
      - {{name: {SECRET_NAME}, value: {SECRET_VALUE}}}
"
    )
}

/// Every node of a normalized world: scale set instances, then VMs, in world order.
pub fn nodes_of(world: &World) -> Vec<WorldNode> {
    let mut out = Vec::new();
    for s in &world.virtual_machine_scale_sets {
        for inst in &s.instances {
            let (Some(name), Some(id)) = (&inst.node_name, &inst.instance_id) else {
                continue;
            };
            out.push(WorldNode {
                name: name.clone(),
                provider_id: format!("azure://{}/virtualMachines/{id}", s.id()),
            });
        }
    }
    for v in &world.virtual_machines {
        if let Some(name) = &v.node_name {
            out.push(WorldNode {
                name: name.clone(),
                provider_id: format!("azure://{}", v.id()),
            });
        }
    }
    out
}

/// What the controller's cloud config (`azure.json`) needs from a world: where the first node runs and the
/// identity it authenticates as (the first user-assigned identity on that VM or scale set, as AKS's kubelet
/// identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerCloud {
    /// `tenantId`.
    pub tenant_id: String,
    /// `subscriptionId`.
    pub subscription_id: String,
    /// `resourceGroup` (the node resource group).
    pub resource_group: String,
    /// `vmType`: `vmss` or `standard`.
    pub vm_type: &'static str,
    /// `userAssignedIdentityID`: the client ID of the cluster identity.
    pub identity_client_id: String,
}

/// The controller's cloud settings for a normalized world, or why there are none.
pub fn controller_cloud(world: &World) -> Result<ControllerCloud, String> {
    let (sub, rg, uamis, vm_type) = if let Some(s) = world.virtual_machine_scale_sets.first() {
        (
            s.subscription_id.clone(),
            s.resource_group.clone(),
            &s.identity.user_assigned_identities,
            "vmss",
        )
    } else if let Some(v) = world.virtual_machines.first() {
        (
            v.subscription_id.clone(),
            v.resource_group.clone(),
            &v.identity.user_assigned_identities,
            "standard",
        )
    } else {
        return Err("the world has no VM or scale set, so there is no node to run on".into());
    };
    let sub = sub.ok_or("the first node has no subscription")?;
    let rg = rg.ok_or("the first node has no resource group")?;
    let wanted = uamis
        .first()
        .ok_or("the first VM or scale set has no user-assigned identity for the controller to use (add the cluster identity to its identity block)")?;
    let uami = world
        .user_assigned_identities
        .iter()
        .find(|u| u.name.eq_ignore_ascii_case(wanted) || u.id().eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            format!("identity {wanted} of the first node is not in userAssignedIdentities")
        })?;
    let client = uami
        .client_id
        .clone()
        .ok_or("the cluster identity has no client ID")?;
    let tenant = world
        .tenant_of_subscription(&sub)
        .map(str::to_string)
        .or_else(|| world.tenants.first().map(|t| t.id.clone()))
        .ok_or("the world has no tenant")?;
    Ok(ControllerCloud {
        tenant_id: tenant,
        subscription_id: sub,
        resource_group: rg,
        vm_type,
        identity_client_id: client,
    })
}

/// The Key Vault names of a world (each gets `<name>.vault.azure.net` in the pods' hosts files).
pub fn vaults_of(world: &World) -> Vec<String> {
    world
        .key_vaults
        .iter()
        .map(|v| v.name.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> World {
        let cfg = azure_sim::Config::from_text(text, std::path::Path::new("/")).expect("world");
        cfg.world
    }

    #[test]
    fn default_world_has_one_scale_set_instance_per_node() {
        for n in [1, 2, 5] {
            let w = load(&default_world(n));
            let nodes = nodes_of(&w);
            assert_eq!(nodes.len(), n);
            assert_eq!(nodes[0].name, "aks-nodepool1-vmss000000");
            assert_eq!(
                nodes[n - 1].provider_id,
                format!(
                    "azure:///subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{NODE_RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets/{SCALE_SET}/virtualMachines/{}",
                    n - 1
                )
            );
            assert_eq!(vaults_of(&w), vec![VAULT.to_string()]);
        }
    }

    #[test]
    fn controller_cloud_of_the_default_world() {
        let c = controller_cloud(&load(&default_world(2))).expect("cloud");
        assert_eq!(c.tenant_id, TENANT_ID);
        assert_eq!(c.subscription_id, SUBSCRIPTION_ID);
        assert_eq!(c.resource_group, NODE_RESOURCE_GROUP);
        assert_eq!(c.vm_type, "vmss");
        assert_eq!(c.identity_client_id, CLUSTER_IDENTITY_CLIENT_ID);
        let empty = load(
            "tenants: [{id: 72f988bf-86f1-41af-91ab-2d7cd011db47}]\nsubscriptions: [{id: 0b1f6471-1bf0-4dda-aec3-111122223333}]\n",
        );
        assert!(controller_cloud(&empty).unwrap_err().contains("no VM"));
    }

    /// Users copy the default world's IDs from the docs into their own objects: the docs must show them in
    /// full, as this file defines them, and never shortened.
    #[test]
    fn the_docs_show_the_default_worlds_ids_in_full() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let uami = |rg: &str, name: &str| {
            format!(
                "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            )
        };
        let playground = read(&root.join("docs/playground.md"));
        for id in [
            TENANT_ID.to_string(),
            SUBSCRIPTION_ID.to_string(),
            APP_IDENTITY_CLIENT_ID.to_string(),
            SECOND_IDENTITY_CLIENT_ID.to_string(),
            CLUSTER_IDENTITY_CLIENT_ID.to_string(),
            uami(IDENTITY_RESOURCE_GROUP, APP_IDENTITY),
            uami(IDENTITY_RESOURCE_GROUP, SECOND_IDENTITY),
            uami(NODE_RESOURCE_GROUP, CLUSTER_IDENTITY),
            format!(
                "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{NODE_RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets/{SCALE_SET}"
            ),
            format!(
                "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{IDENTITY_RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/{VAULT}"
            ),
        ] {
            assert!(playground.contains(&id), "docs/playground.md lacks {id}");
        }
        let mut docs = vec![root.join("README.md")];
        docs.extend(
            std::fs::read_dir(root.join("docs"))
                .expect("docs")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md")),
        );
        for doc in docs {
            let text = read(&doc);
            let mut shortened: Vec<String> = ["/subscriptions/...", "/subscriptions/…"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            for id in [
                TENANT_ID,
                SUBSCRIPTION_ID,
                APP_IDENTITY_CLIENT_ID,
                SECOND_IDENTITY_CLIENT_ID,
                CLUSTER_IDENTITY_CLIENT_ID,
            ] {
                let head = &id[..id.find('-').unwrap_or(id.len())];
                shortened.push(format!("{head}-…"));
                shortened.push(format!("{head}-..."));
                shortened.push(format!("{head}…"));
            }
            for s in shortened {
                assert!(
                    !text.contains(&s),
                    "{} shortens an ID users copy: {s}",
                    doc.display()
                );
            }
        }
    }

    #[test]
    fn zero_nodes_still_gives_one() {
        assert_eq!(nodes_of(&load(&default_world(0))).len(), 1);
    }

    #[test]
    fn vms_are_nodes_too() {
        let w = load(
            "tenants: [{id: 72f988bf-86f1-41af-91ab-2d7cd011db47}]\nsubscriptions: [{id: 0b1f6471-1bf0-4dda-aec3-111122223333}]\nresourceGroups: [{name: rg, location: westeurope}]\nvirtualMachines: [{name: vm-a}]\n",
        );
        let nodes = nodes_of(&w);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "vm-a");
        assert!(nodes[0].provider_id.ends_with("/virtualMachines/vm-a"));
        assert!(nodes[0].provider_id.starts_with("azure:///subscriptions/"));
    }
}
