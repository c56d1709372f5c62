//! Rewriting AzureIdentities and AzureIdentityBindings written with pre-v1.6 keys (`ClientID`, `ResourceID`,
//! `TenantID`, `ClientPassword`, `Type`, `AzureIdentity`, `Selector`) to the current keys, with a Warning event on
//! the object naming each old and new key.
//!
//! Upstream's v1 CRDs prune those keys (the identity then has no `resourceID`: MIC logs `Invalid resource id: ""`)
//! and kubectl's strict field validation refuses them (`strict decoding error: unknown field "spec.ClientID"`).
//! podid's CRDs keep them, `podid_k8s` decodes them (a current key that is absent or empty takes the legacy
//! value; a non-empty current key wins) and records them in `spec.legacy_keys`; the watch pumps queue such
//! objects here, and the leader writes them back with only the current keys (`update`, the verb the one-time type
//! upgrade already needs), guarded by the resourceVersion it read: an object changed meanwhile comes through the
//! watch again and is queued again if it still needs it. Until then every reader (planner, node agent, doctor)
//! already uses the decoded values, so nothing waits for the rewrite.
//!
//! AzurePodIdentityExceptions with `PodLabels` are accepted and read by the node agent but not rewritten: the
//! controller does not watch them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use podid_k8s::{AzureIdentity, AzureIdentityBinding, LegacyKeys};
use tokio::sync::Notify;

use crate::events;
use crate::executor::Exec;
use crate::state::Shared;

/// An object waiting for its rewrite.
#[derive(Debug, Clone)]
pub enum Legacy {
    /// An AzureIdentity.
    Identity(Box<AzureIdentity>),
    /// An AzureIdentityBinding.
    Binding(Box<AzureIdentityBinding>),
}

/// Objects waiting for their rewrite, newest version per object (kind, namespace, name).
#[derive(Default)]
pub struct Queue {
    waiting: Mutex<BTreeMap<(&'static str, String, String), Legacy>>,
    wake: Notify,
}

impl Queue {
    fn push(&self, kind: &'static str, ns: String, name: String, o: Legacy) {
        self.waiting.lock().insert((kind, ns, name), o);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<Legacy> {
        std::mem::take(&mut *self.waiting.lock())
            .into_values()
            .collect()
    }
}

// === impl Shared ===

impl Shared {
    /// Queue an identity for its rewrite when it carries legacy keys (called by the watch pump).
    pub fn note_legacy_identity(&self, i: &AzureIdentity) {
        if !i.spec.legacy_keys.is_empty() {
            self.legacy.push(
                "AzureIdentity",
                i.namespace().unwrap_or_default(),
                i.name_any(),
                Legacy::Identity(Box::new(i.clone())),
            );
        }
    }

    /// Queue a binding for its rewrite when it carries legacy keys (called by the watch pump).
    pub fn note_legacy_binding(&self, b: &AzureIdentityBinding) {
        if !b.spec.legacy_keys.is_empty() {
            self.legacy.push(
                "AzureIdentityBinding",
                b.namespace().unwrap_or_default(),
                b.name_any(),
                Legacy::Binding(Box::new(b.clone())),
            );
        }
    }
}

/// The event message: each legacy key and what became of it. Names keys only, never values.
pub fn message(keys: &LegacyKeys) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            if k.ignored {
                format!(
                    "spec.{} removed: spec.{} is also set and wins (the old value was ignored)",
                    k.written, k.field
                )
            } else {
                format!("spec.{} rewritten to spec.{}", k.written, k.field)
            }
        })
        .collect();
    format!(
        "pre-v1.6 keys: {}. Use the current keys in your manifest (aad-pod-identity v1.6+ drops the old ones)",
        parts.join("; ")
    )
}

/// Rewrite queued objects until aborted (the leader runs it beside its loop).
pub async fn run(exec: Arc<Exec>) {
    let queue = &exec.shared.legacy;
    loop {
        queue.wake.notified().await;
        for o in queue.take() {
            match o {
                Legacy::Identity(i) => rewrite(&exec, *i, |i| &i.spec.legacy_keys).await,
                Legacy::Binding(b) => rewrite(&exec, *b, |b| &b.spec.legacy_keys).await,
            }
        }
    }
}

async fn rewrite<K>(exec: &Exec, o: K, legacy_keys: impl Fn(&K) -> &LegacyKeys)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let _permit = exec.writes.acquire().await.ok();
    let ns = o.namespace().unwrap_or_default();
    let name = o.name_any();
    let kind = K::kind(&());
    let api: Api<K> = Api::namespaced(exec.client.clone(), &ns);
    // The typed object serialises only the current keys; its resourceVersion makes the write conditional.
    match api.replace(&name, &PostParams::default(), &o).await {
        Ok(_) => {
            let msg = message(legacy_keys(&o));
            tracing::info!(%ns, %name, %kind, "{msg}");
            exec.recorder.emit(
                events::reference(&o),
                "Warning",
                events::LEGACY_KEYS_REWRITTEN,
                msg,
            );
        }
        // Changed or deleted meanwhile: the watch brings the newer version.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
        Err(e) => {
            tracing::warn!(%ns, %name, %kind, error = %e, "could not rewrite pre-v1.6 keys (the object is still read correctly)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_names_each_key_and_never_a_value() {
        let i: AzureIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": "id", "namespace": "app"},
            "spec": {"type": 0, "ClientID": "c-secretish", "ResourceID": "old-r", "resourceID": "new-r"}
        }))
        .expect("identity");
        let m = message(&i.spec.legacy_keys);
        assert_eq!(
            m,
            "pre-v1.6 keys: spec.ClientID rewritten to spec.clientID; spec.ResourceID removed: spec.resourceID is \
             also set and wins (the old value was ignored). Use the current keys in your manifest (aad-pod-identity \
             v1.6+ drops the old ones)"
        );
        assert!(!m.contains("c-secretish") && !m.contains("old-r"));
    }

    #[test]
    fn only_objects_with_legacy_keys_are_queued_newest_version_once() {
        let shared = Shared::default();
        let mk = |spec: serde_json::Value, rv: &str| -> AzureIdentityBinding {
            serde_json::from_value(json!({
                "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
                "metadata": {"name": "b", "namespace": "app", "resourceVersion": rv},
                "spec": spec
            }))
            .expect("binding")
        };
        shared.note_legacy_binding(&mk(json!({"azureIdentity": "i", "selector": "s"}), "1"));
        assert!(shared.legacy.take().is_empty());
        shared.note_legacy_binding(&mk(json!({"AzureIdentity": "i", "Selector": "s"}), "2"));
        shared.note_legacy_binding(&mk(json!({"AzureIdentity": "i", "Selector": "s2"}), "3"));
        let q = shared.legacy.take();
        assert_eq!(q.len(), 1);
        let Legacy::Binding(b) = &q[0] else {
            panic!("{q:?}")
        };
        assert_eq!(b.metadata.resource_version.as_deref(), Some("3"));
        // What the rewrite writes: the current keys only.
        let v = serde_json::to_value(b.as_ref()).expect("json");
        assert_eq!(v["spec"], json!({"azureIdentity": "i", "selector": "s2"}));
    }
}
