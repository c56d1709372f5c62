//! Synthetic worlds for benchmarks and scale tests (not a stable API).

use super::cluster::Cluster;
use super::model::{
    AaiKey, AssignedInfo, AssignedStatus, BindingInfo, Config, IdentityInfo, NodeInfo, PodInfo,
    Target, TargetKind,
};

/// Namespaces the synthetic pods, identities and bindings are spread over.
const SYNTHETIC_NAMESPACES: usize = 10;
/// Subscription of the synthetic node resource group and identities.
const SYNTHETIC_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";
/// Node resource group.
const SYNTHETIC_NODE_RG: &str = "MC_rg_cluster_westeurope";
/// Identity resource group.
const SYNTHETIC_IDENTITY_RG: &str = "rg-identities";

/// A converged synthetic cluster: `nodes` nodes spread round-robin over `vmss` scale sets (plain VMs when
/// `vmss` is 0), `identities` type-0 identities each with one binding (selector `sel-<i>`) in namespace
/// `ns-<i mod 10>`, `pods` pods spread round-robin over selectors and nodes, and one `Assigned` AAI per
/// desired assignment. `plan_all` of the result is empty and its dirty set is clear.
#[must_use]
pub fn synthetic_cluster(
    pods: usize,
    nodes: usize,
    vmss: usize,
    identities: usize,
) -> (Cluster, Config) {
    let cfg = Config {
        release_finished_pods: true,
        ..Config::default()
    };
    let mut cluster = Cluster::new();
    for n in 0..nodes {
        let target = if vmss == 0 {
            Target {
                kind: TargetKind::Vm,
                subscription: SYNTHETIC_SUBSCRIPTION.to_owned(),
                resource_group: SYNTHETIC_NODE_RG.to_owned(),
                name: node_name(n),
            }
        } else {
            Target {
                kind: TargetKind::Vmss,
                subscription: SYNTHETIC_SUBSCRIPTION.to_owned(),
                resource_group: SYNTHETIC_NODE_RG.to_owned(),
                name: format!("aks-pool{}-vmss", n % vmss),
            }
        };
        cluster.apply_node(NodeInfo {
            name: node_name(n),
            target: Some(target),
        });
    }
    for i in 0..identities {
        let ns = format!("ns-{}", i % SYNTHETIC_NAMESPACES);
        cluster.apply_identity(IdentityInfo {
            namespace: ns.clone(),
            name: format!("id-{i}"),
            resource_version: "1".to_owned(),
            id_type: 0,
            resource_id: format!(
                "/subscriptions/{SYNTHETIC_SUBSCRIPTION}/resourceGroups/{SYNTHETIC_IDENTITY_RG}/providers/\
                 Microsoft.ManagedIdentity/userAssignedIdentities/id-{i}"
            ),
            client_id: format!("00000000-0000-0000-0001-{i:012}"),
            namespaced: false,
        });
        cluster.apply_binding(BindingInfo {
            namespace: ns,
            name: format!("binding-{i}"),
            resource_version: "1".to_owned(),
            identity: format!("id-{i}"),
            selector: format!("sel-{i}"),
        });
    }
    for p in 0..pods {
        cluster.apply_pod(PodInfo {
            namespace: format!("ns-{}", p % SYNTHETIC_NAMESPACES),
            name: format!("pod-{p}"),
            node: if nodes == 0 {
                String::new()
            } else {
                node_name(p % nodes)
            },
            selector: if identities == 0 {
                String::new()
            } else {
                format!("sel-{}", p % identities)
            },
            finished: false,
        });
    }
    let plan = cluster.plan_all(&cfg);
    for new in plan.creates {
        let Some(identity) = cluster.identity(&new.identity.namespace, &new.identity.name) else {
            continue;
        };
        let assigned = AssignedInfo {
            key: AaiKey {
                namespace: new.key.namespace.clone(),
                name: new.key.name.clone(),
            },
            id_type: identity.id_type,
            resource_id: identity.resource_id.clone(),
            client_id: identity.client_id.clone(),
            identity: new.identity,
            binding: new.binding,
            pod: new.pod,
            pod_namespace: new.pod_namespace,
            node: new.node,
            status: AssignedStatus::Assigned,
            preexisting: false,
            deleting: false,
        };
        cluster.apply_assigned(assigned);
    }
    cluster.clear_dirty();
    (cluster, cfg)
}

fn node_name(n: usize) -> String {
    format!("aks-pool-{n:05}")
}
