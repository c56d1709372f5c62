//! Trimming Kubernetes objects into the planner's inputs, and building the AzureAssignedIdentity objects the
//! planner asks for. Pure functions (no IO).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use podid_core::assign::{
    AaiKey, AssignedInfo, AssignedStatus, BindingInfo, IdentityInfo, NewAssigned, NodeInfo, ObjRef,
    PREEXISTING_ANNOTATION, PodInfo, parse_provider_id,
};
use podid_k8s::{
    ASSIGNED_IDENTITY_FINALIZER, AssignedIdentityState, AzureAssignedIdentity,
    AzureAssignedIdentitySpec, AzureAssignedIdentityStatus, AzureIdentity, AzureIdentityBinding,
    NODENAME_LABEL, POD_LABEL_KEY,
};

/// A pod's planner view.
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
pub fn identity_info(i: &AzureIdentity) -> IdentityInfo {
    IdentityInfo {
        namespace: i.namespace().unwrap_or_default(),
        name: i.name_any(),
        resource_version: i.resource_version().unwrap_or_default(),
        id_type: i.spec.type_.as_i64(),
        resource_id: i.spec.resource_id.clone(),
        client_id: i.spec.client_id.clone(),
        namespaced: podid_k8s::is_namespaced_identity(i),
    }
}

/// A binding's planner view.
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
pub fn aai_key(a: &AzureAssignedIdentity) -> AaiKey {
    AaiKey {
        namespace: a.namespace().unwrap_or_default(),
        name: a.name_any(),
    }
}

/// The recorded preexisting flag (None when the annotation is absent).
pub fn recorded_preexisting(a: &AzureAssignedIdentity) -> Option<bool> {
    a.annotations()
        .get(PREEXISTING_ANNOTATION)
        .map(|v| v == "true")
}

/// An AAI's planner view.
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

/// Strip what an embedded copy should not carry (managed fields are noise; upstream embeds the object as read).
fn embedded<K: kube::Resource + Clone>(o: &K) -> K {
    let mut c = o.clone();
    c.meta_mut().managed_fields = None;
    c
}

/// The AzureAssignedIdentity the planner asked for, with status `Created`, the finalizer, the `nodename` label and
/// the preexisting annotation when known.
pub fn build_assigned(
    n: &NewAssigned,
    identity: &AzureIdentity,
    binding: &AzureIdentityBinding,
    preexisting: Option<bool>,
) -> AzureAssignedIdentity {
    let mut a = AzureAssignedIdentity::new(
        &n.key.name,
        AzureAssignedIdentitySpec {
            azure_identity_ref: Some(embedded(identity)),
            azure_binding_ref: Some(embedded(binding)),
            pod: n.pod.clone(),
            pod_namespace: n.pod_namespace.clone(),
            node_name: n.node.clone(),
            ..Default::default()
        },
    );
    a.metadata.namespace = Some(n.key.namespace.clone());
    a.metadata.labels = Some(BTreeMap::from([(
        NODENAME_LABEL.to_string(),
        n.node.clone(),
    )]));
    a.metadata.finalizers = Some(vec![ASSIGNED_IDENTITY_FINALIZER.to_string()]);
    if let Some(p) = preexisting {
        a.metadata.annotations = Some(BTreeMap::from([(
            PREEXISTING_ANNOTATION.to_string(),
            p.to_string(),
        )]));
    }
    a.status = Some(AzureAssignedIdentityStatus {
        available_replicas: 1,
        status: AssignedIdentityState::Created,
    });
    a
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
    fn built_aai_has_the_upstream_shape_and_reads_back() {
        let identity: AzureIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": "id", "namespace": "app", "resourceVersion": "7", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"type": 0, "resourceID": "/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id", "clientID": "c"}
        }))
        .expect("identity");
        let binding: AzureIdentityBinding = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": "b", "namespace": "app", "resourceVersion": "8"},
            "spec": {"azureIdentity": "id", "selector": "sel"}
        }))
        .expect("binding");
        let n = NewAssigned {
            key: AaiKey {
                namespace: "default".into(),
                name: "p-app-id".into(),
            },
            identity: ObjRef {
                namespace: "app".into(),
                name: "id".into(),
                resource_version: "7".into(),
            },
            binding: ObjRef {
                namespace: "app".into(),
                name: "b".into(),
                resource_version: "8".into(),
            },
            pod: "p".into(),
            pod_namespace: "app".into(),
            node: "n1".into(),
        };
        let a = build_assigned(&n, &identity, &binding, Some(true));
        let v = serde_json::to_value(&a).expect("json");
        assert_eq!(v["metadata"]["labels"]["nodename"], json!("n1"));
        assert_eq!(
            v["metadata"]["finalizers"],
            json!(["azureassignedidentity.finalizers.aadpodidentity.k8s.io"])
        );
        assert_eq!(
            v["metadata"]["annotations"][PREEXISTING_ANNOTATION],
            json!("true")
        );
        assert_eq!(v["status"]["status"], json!("Created"));
        assert_eq!(v["spec"]["nodename"], json!("n1"));
        assert!(
            v["spec"]["azureIdentityRef"]["metadata"]
                .get("managedFields")
                .is_none()
        );
        let back = assigned_info(&a);
        assert_eq!(back.identity, n.identity);
        assert_eq!(back.binding, n.binding);
        assert_eq!(back.status, AssignedStatus::Created);
        assert!(back.preexisting);
        assert_eq!(
            recorded_preexisting(&build_assigned(&n, &identity, &binding, None)),
            None
        );
    }
}
