//! Unknown fields of built-in kinds, as the apiserver's decoding finds them.
//!
//! The apiserver decodes a built-in object into its Go struct: a field the struct does not have is dropped, and
//! reported according to `fieldValidation` (`Ignore`; `Warn`, the default, one `Warning` header per field;
//! `Strict`, a 400 `strict decoding error`). kube-sim has no Go structs, so it asks the same question of the
//! typed structs of `k8s-openapi`: the object is decoded into the kind's type and encoded again, and every key
//! of the body with a value that the typed round trip lost is unknown (its path in the apiserver's notation,
//! `spec.containers[0].foo`). The body itself is only pruned of those keys, never replaced by the round trip,
//! so values keep their exact form.
//!
//! A body that does not decode (a string where a number belongs) reports nothing here; the kind's own checks
//! see it. The types are those of `k8s-openapi`'s newest enabled version (1.33), so a field added in 1.34 is
//! unknown here (listed in docs/kube-sim.md).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::{admissionregistration, coordination, core, events, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;

/// Remove from `obj` the fields its kind does not have and return their paths, or `None` for a kind without a
/// typed model here (custom resources, review objects).
pub fn prune(api_version: &str, kind: &str, obj: &mut Value) -> Option<Vec<String>> {
    let known = match (api_version, kind) {
        ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(obj),
        ("v1", "Secret") => round_trip::<core::v1::Secret>(obj),
        ("v1", "Pod") => round_trip::<core::v1::Pod>(obj),
        ("v1", "Service") => round_trip::<core::v1::Service>(obj),
        ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(obj),
        ("v1", "Namespace") => round_trip::<core::v1::Namespace>(obj),
        ("v1", "Node") => round_trip::<core::v1::Node>(obj),
        ("v1", "Endpoints") => round_trip::<core::v1::Endpoints>(obj),
        ("v1", "Event") => round_trip::<core::v1::Event>(obj),
        ("events.k8s.io/v1", "Event") => round_trip::<events::v1::Event>(obj),
        ("coordination.k8s.io/v1", "Lease") => round_trip::<coordination::v1::Lease>(obj),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::v1::Role>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<rbac::v1::ClusterRole>(obj),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<rbac::v1::RoleBinding>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(obj)
        }
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            round_trip::<admissionregistration::v1::MutatingWebhookConfiguration>(obj)
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<apiextensions::v1::CustomResourceDefinition>(obj)
        }
        _ => return None,
    };
    let mut unknown = Vec::new();
    if let Some(known) = known {
        prune_against(obj, &known, "", &mut unknown);
    }
    Some(unknown)
}

/// The object as its typed model writes it back, or `None` when it does not decode.
fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(obj.clone()).ok()?;
    serde_json::to_value(&typed).ok()
}

fn prune_against(body: &mut Value, known: &Value, path: &str, unknown: &mut Vec<String>) {
    match (body, known) {
        (Value::Object(fields), Value::Object(known_fields)) => {
            let lost: Vec<String> = fields
                .iter()
                .filter(|(k, v)| !v.is_null() && !known_fields.contains_key(*k))
                .map(|(k, _)| k.clone())
                .collect();
            for key in lost {
                fields.remove(&key);
                unknown.push(join(path, &key));
            }
            for (k, v) in fields.iter_mut() {
                if let Some(kv) = known_fields.get(k) {
                    prune_against(v, kv, &join(path, k), unknown);
                }
            }
        }
        (Value::Array(items), Value::Array(known_items)) => {
            for (i, (item, known_item)) in items.iter_mut().zip(known_items).enumerate() {
                prune_against(item, known_item, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_and_pruned_at_any_depth() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "Always",
                "resources": {"limits": {"cpu": "100m"}}}], "topologySpreadConstraints": [], "nodeName": null, "extra": {}}});
        let unknown = prune("v1", "Pod", &mut pod).expect("a built-in kind");
        assert_eq!(
            unknown,
            vec![
                "metadata.bogus",
                "spec.extra",
                "spec.containers[0].imagePullPolicyy"
            ]
        );
        assert!(
            pod["spec"]["containers"][0]
                .get("imagePullPolicyy")
                .is_none()
        );
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "100m"
        );
        assert_eq!(pod["spec"]["topologySpreadConstraints"], json!([]));
    }

    #[test]
    fn maps_and_free_form_fields_are_not_unknown() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"x": "y"}},
            "data": {"any.key": "v"}, "binaryData": {"b": "AA=="}});
        assert_eq!(prune("v1", "ConfigMap", &mut cm), Some(Vec::new()));
        let mut crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "ws.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "ws", "kind": "W"}, "versions": [{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"spec": {"type": "object", "default": {"a": 1}}}}}}]}});
        assert_eq!(
            prune(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                &mut crd
            ),
            Some(Vec::new())
        );
        assert_eq!(prune("example.com/v1", "W", &mut json!({})), None);
        // A body that does not decode is left to the kind's own checks.
        let mut bad =
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "x"}, "zzz": 1});
        assert_eq!(prune("v1", "Pod", &mut bad), Some(Vec::new()));
    }
}
