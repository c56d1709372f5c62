//! Builders for the objects tests create: pure JSON to typed objects (no IO). [`crate::Env`] has methods that
//! create them.

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use podid_k8s::{AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding};
use serde_json::{Value, json};

use crate::world::{client_id, identity_rg, uami_id};

/// A pod on `node` with `labels`, one container of `image`, and `extra_spec` merged into its spec.
pub fn pod(ns: &str, name: &str, node: &str, labels: Value, image: &str, extra_spec: Value) -> Pod {
    let mut spec = json!({"nodeName": node, "containers": [{"name": "app", "image": image}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}))
    .expect("pod")
}

/// An AzureIdentity with `spec`.
pub fn identity(ns: &str, name: &str, spec: Value) -> AzureIdentity {
    serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
        "metadata": {"name": name, "namespace": ns}, "spec": spec}))
    .expect("identity")
}

/// The spec of an identity of `type_` pointing at `id_name` (a world identity name, or a full ARM ID).
pub fn identity_spec(type_: i64, id_name: &str) -> Value {
    let rid = if id_name.starts_with('/') {
        id_name.to_string()
    } else {
        uami_id(identity_rg(id_name), id_name)
    };
    let short = rid.rsplit('/').next().unwrap_or_default().to_string();
    json!({"type": type_, "resourceID": rid, "clientID": client_id(&short)})
}

/// The spec of an MSI identity (type 0) named like the world identity it points at (in `rg-ids`).
pub fn msi_spec(name: &str) -> Value {
    json!({"type": 0, "resourceID": uami_id(crate::world::IDS, name), "clientID": client_id(name)})
}

/// A binding of `identity` to pods labelled `aadpodidbinding=<selector>`.
pub fn binding(ns: &str, name: &str, identity: &str, selector: &str) -> AzureIdentityBinding {
    serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"azureIdentity": identity, "selector": selector}}))
    .expect("binding")
}

/// The AzureAssignedIdentity the controller writes for `pod_ns/pod` and `identity` on `node` (in `default`,
/// named `<pod>-<ns>-<identity>`), without status: (name, object).
pub fn assigned(
    pod_ns: &str,
    pod: &str,
    identity: &AzureIdentity,
    node: &str,
) -> (String, AzureAssignedIdentity) {
    let idname = identity.metadata.name.clone().unwrap_or_default();
    let name = format!("{pod}-{pod_ns}-{idname}");
    let mut idv = serde_json::to_value(identity).expect("identity json");
    idv["metadata"]["managedFields"] = Value::Null;
    let o = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureAssignedIdentity",
        "metadata": {"name": name, "namespace": "default", "labels": {"nodename": node}},
        "spec": {"azureIdentityRef": idv, "pod": pod, "podNamespace": pod_ns, "nodename": node}}))
    .expect("aai");
    (name, o)
}

/// A ServiceAccount.
pub fn service_account(ns: &str, name: &str) -> ServiceAccount {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}})).expect("sa")
}
