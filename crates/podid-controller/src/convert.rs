//! Building the AzureAssignedIdentity objects the planner asks for (the controller's own writes). Pure
//! functions (no IO). Reading objects into the planner's inputs is `podid_k8s::views`.

use std::collections::BTreeMap;

use podid_core::assign::{NewAssigned, PREEXISTING_ANNOTATION};
use podid_k8s::{
    ASSIGNED_IDENTITY_FINALIZER, AssignedIdentityState, AzureAssignedIdentity,
    AzureAssignedIdentitySpec, AzureAssignedIdentityStatus, AzureIdentity, AzureIdentityBinding,
    NODENAME_LABEL,
};

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
    use podid_core::assign::{AaiKey, AssignedStatus, ObjRef};
    use podid_k8s::views::{assigned_info, recorded_preexisting};
    use serde_json::json;

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
