//! Kubernetes objects trimmed to the plain views `podid-core` decides on: the planner's inputs (the controller)
//! and the agent's selection inputs (the agent and `podid doctor`, which replays the agent's decision). One
//! conversion per view, used by every component, so the controller, the agent and the doctor read an object
//! the same way. Pure functions (no IO).
//!
//! What may not live here: building objects to write (the controller's AzureAssignedIdentities stay in
//! `podid-controller`) and views only one diagnostic needs (`podid-doctor`'s facts).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use podid_core::assign::{
    AaiKey, AssignedInfo, AssignedStatus, BindingInfo, IdentityInfo, NodeInfo, ObjRef,
    PREEXISTING_ANNOTATION, PodInfo, parse_provider_id,
};
use podid_core::nmi::pods::PodEntry;
use podid_core::nmi::select::{AssignedState, BindingView, IdentityView};

use crate::{
    AssignedIdentityState, AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding,
    POD_LABEL_KEY,
};

// === the agent's views (also the doctor's) ===

/// A pod as the agent keeps it.
#[must_use]
pub fn pod_entry(p: &Pod) -> PodEntry {
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Some(s) = status {
        for ip in s.pod_ips.iter().flatten() {
            if let Ok(a) = ip.ip.parse() {
                ips.push(a);
            }
        }
        if let Some(a) = s.pod_ip.as_deref().and_then(|i| i.parse().ok()) {
            ips.push(a);
        }
    }
    PodEntry {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        labels: p.labels().clone(),
        service_account: service_account(p),
        replicaset: replicaset(p),
        active: phase == "Pending" || phase == "Running",
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        ips,
    }
}

/// The pod's service account (`default` when unset or empty).
#[must_use]
pub fn service_account(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The ReplicaSet owning the pod, if any.
#[must_use]
pub fn replicaset(p: &Pod) -> Option<String> {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "ReplicaSet")
        .map(|o| o.name.clone())
}

/// An identity as the agent keeps it.
#[must_use]
pub fn identity_view(i: &AzureIdentity) -> IdentityView {
    IdentityView {
        namespace: i.namespace().unwrap_or_default(),
        name: i.name_any(),
        version_key: format!(
            "{}/{}",
            i.metadata.uid.as_deref().unwrap_or(""),
            i.metadata.resource_version.as_deref().unwrap_or("")
        ),
        id_type: i.spec.type_.as_i64(),
        client_id: i.spec.client_id.clone(),
        resource_id: i.spec.resource_id.clone(),
        tenant_id: i.spec.tenant_id.clone(),
        aux_tenant_ids: i.spec.auxiliary_tenant_ids.clone(),
        secret_ref: i.spec.client_password.as_ref().map(|r| {
            (
                r.namespace.clone().unwrap_or_default(),
                r.name.clone().unwrap_or_default(),
            )
        }),
        namespaced: crate::is_namespaced_identity(i),
    }
}

/// A binding as the agent keeps it.
#[must_use]
pub fn binding_view(b: &AzureIdentityBinding) -> BindingView {
    BindingView {
        namespace: b.namespace().unwrap_or_default(),
        name: b.name_any(),
        identity: b.spec.azure_identity.clone(),
        selector: b.spec.selector.clone(),
    }
}

/// An AzureAssignedIdentity's state as the agent's selection reads it (an absent status is a pre-status AAI).
#[must_use]
pub fn assigned_state(a: &AzureAssignedIdentity) -> AssignedState {
    match a.status.as_ref().map(|s| s.status.as_str()).unwrap_or("") {
        "" => AssignedState::Legacy,
        "Created" => AssignedState::Created,
        "Assigned" => AssignedState::Assigned,
        _ => AssignedState::Other,
    }
}

// === the controller's planner views ===

/// A pod's planner view.
#[must_use]
pub fn pod_info(p: &Pod) -> PodInfo {
    let phase = p
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    PodInfo {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
        node: p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        selector: p.labels().get(POD_LABEL_KEY).cloned().unwrap_or_default(),
        finished: phase == "Succeeded" || phase == "Failed",
    }
}

/// A node's planner view.
#[must_use]
pub fn node_info(n: &Node) -> NodeInfo {
    NodeInfo {
        name: n.name_any(),
        target: n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(parse_provider_id),
    }
}

/// An identity's planner view.
#[must_use]
pub fn identity_info(i: &AzureIdentity) -> IdentityInfo {
    IdentityInfo {
        namespace: i.namespace().unwrap_or_default(),
        name: i.name_any(),
        resource_version: i.resource_version().unwrap_or_default(),
        id_type: i.spec.type_.as_i64(),
        resource_id: i.spec.resource_id.clone(),
        client_id: i.spec.client_id.clone(),
        namespaced: crate::is_namespaced_identity(i),
    }
}

/// A binding's planner view.
#[must_use]
pub fn binding_info(b: &AzureIdentityBinding) -> BindingInfo {
    BindingInfo {
        namespace: b.namespace().unwrap_or_default(),
        name: b.name_any(),
        resource_version: b.resource_version().unwrap_or_default(),
        identity: b.spec.azure_identity.clone(),
        selector: b.spec.selector.clone(),
    }
}

/// The key of an AAI object.
#[must_use]
pub fn aai_key(a: &AzureAssignedIdentity) -> AaiKey {
    AaiKey {
        namespace: a.namespace().unwrap_or_default(),
        name: a.name_any(),
    }
}

/// The recorded preexisting flag (None when the annotation is absent).
#[must_use]
pub fn recorded_preexisting(a: &AzureAssignedIdentity) -> Option<bool> {
    a.annotations()
        .get(PREEXISTING_ANNOTATION)
        .map(|v| v == "true")
}

/// An AAI's planner view.
#[must_use]
pub fn assigned_info(a: &AzureAssignedIdentity) -> AssignedInfo {
    let id = a.spec.azure_identity_ref.as_ref();
    let b = a.spec.azure_binding_ref.as_ref();
    let objref = |ns: Option<String>, name: Option<String>, rv: Option<String>| ObjRef {
        namespace: ns.unwrap_or_default(),
        name: name.unwrap_or_default(),
        resource_version: rv.unwrap_or_default(),
    };
    let status = a
        .status
        .as_ref()
        .map(|s| s.status.clone())
        .unwrap_or_default();
    AssignedInfo {
        key: aai_key(a),
        identity: objref(
            id.and_then(|i| i.metadata.namespace.clone()),
            id.and_then(|i| i.metadata.name.clone()),
            id.and_then(|i| i.metadata.resource_version.clone()),
        ),
        binding: objref(
            b.and_then(|i| i.metadata.namespace.clone()),
            b.and_then(|i| i.metadata.name.clone()),
            b.and_then(|i| i.metadata.resource_version.clone()),
        ),
        id_type: id.map(|i| i.spec.type_.as_i64()).unwrap_or(0),
        resource_id: id.map(|i| i.spec.resource_id.clone()).unwrap_or_default(),
        client_id: id.map(|i| i.spec.client_id.clone()).unwrap_or_default(),
        pod: a.spec.pod.clone(),
        pod_namespace: a.spec.pod_namespace.clone(),
        node: a.spec.node_name.clone(),
        status: match status {
            AssignedIdentityState::Legacy => AssignedStatus::Legacy,
            AssignedIdentityState::Created => AssignedStatus::Created,
            AssignedIdentityState::Assigned => AssignedStatus::Assigned,
            AssignedIdentityState::Unassigned => AssignedStatus::Unassigned,
            AssignedIdentityState::Other(s) => AssignedStatus::Other(s),
        },
        preexisting: recorded_preexisting(a).unwrap_or(false),
        deleting: a.metadata.deletion_timestamp.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podid_core::assign::TargetKind;
    use serde_json::json;

    #[test]
    fn pods_and_nodes_are_trimmed_to_what_the_planner_needs() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"aadpodidbinding": "sel", "other": "x"}},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Succeeded"}
        }))
        .expect("pod");
        let i = pod_info(&p);
        assert_eq!(
            (
                i.namespace.as_str(),
                i.name.as_str(),
                i.node.as_str(),
                i.selector.as_str(),
                i.finished
            ),
            ("ns", "p", "n1", "sel", true)
        );
        let n: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}, "spec": {"providerID":
            "azure:///subscriptions/s/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/pool/virtualMachines/3"}}))
        .expect("node");
        let t = node_info(&n).target.expect("target");
        assert_eq!(
            (t.kind, t.resource_group.as_str(), t.name.as_str()),
            (TargetKind::Vmss, "MC_rg", "pool")
        );
        let bare: Node =
            serde_json::from_value(json!({"metadata": {"name": "kind-node"}})).expect("node");
        assert!(node_info(&bare).target.is_none());
    }

    #[test]
    fn pre_v16_keys_reach_the_planner() {
        let i: AzureIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": "id", "namespace": "app", "resourceVersion": "3"},
            "spec": {"Type": 0, "ResourceID": "/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id",
                     "ClientID": "c", "clientID": ""}
        }))
        .expect("identity");
        let info = identity_info(&i);
        assert!(info.resource_id.ends_with("/userAssignedIdentities/id"));
        assert_eq!(
            info.client_id, "c",
            "an empty current key takes the legacy value"
        );
        let b: AzureIdentityBinding = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": "b", "namespace": "app"},
            "spec": {"AzureIdentity": "id", "Selector": "sel"}
        }))
        .expect("binding");
        let info = binding_info(&b);
        assert_eq!(
            (info.identity.as_str(), info.selector.as_str()),
            ("id", "sel")
        );
    }

    #[test]
    fn the_agents_views_read_the_same_fields() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "r"}]},
            "spec": {"containers": [], "serviceAccountName": ""},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}
        }))
        .expect("pod");
        let e = pod_entry(&p);
        assert_eq!(
            (
                e.service_account.as_str(),
                e.replicaset.as_deref(),
                e.active
            ),
            ("default", Some("rs"), true)
        );
        let a: AzureAssignedIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureAssignedIdentity",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {"pod": "p", "podNamespace": "ns", "nodename": "n1"},
            "status": {"status": "Assigned", "availableReplicas": 1}
        }))
        .expect("aai");
        assert_eq!(assigned_state(&a), AssignedState::Assigned);
    }
}
