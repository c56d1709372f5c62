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
//! Only a legacy key whose value is *used* (its current key absent or empty) causes a rewrite. A legacy key beside
//! a set current key is left alone: with the same value it is redundant and silent, with another value it is
//! ignored and a Warning `legacy keys ignored` says so once per resourceVersion. So a tool that re-applies an old manifest (`kubectl
//! apply` adds the old keys back; GitOps tools do it on every sync) and the controller never write in turn: the
//! object settles after one rewrite.
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

type ObjKey = (&'static str, String, String);

/// Objects waiting for their rewrite, newest version per object (kind, namespace, name).
#[derive(Default)]
pub struct Queue {
    waiting: Mutex<BTreeMap<ObjKey, Legacy>>,
    /// resourceVersion last warned about per object (conflicts only), so a relist does not repeat the event.
    warned: Mutex<BTreeMap<ObjKey, String>>,
    wake: Notify,
}

/// What an object's legacy keys call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing: no legacy keys, or only redundant copies of set current keys.
    None,
    /// Write the object back with the current keys (a legacy value is in use).
    Rewrite,
    /// Only warn: a legacy key disagrees with its set current key, which wins.
    Warn,
}

/// The decision for one object's legacy keys.
pub fn action(keys: &LegacyKeys) -> Action {
    if keys.iter().any(|k| !k.ignored) {
        Action::Rewrite
    } else if keys.iter().any(|k| k.conflicting) {
        Action::Warn
    } else {
        Action::None
    }
}

impl Queue {
    fn push(&self, kind: &'static str, ns: String, name: String, o: Legacy, keys: &LegacyKeys) {
        let key = (kind, ns, name);
        if action(keys) == Action::None {
            self.warned.lock().remove(&key);
            return;
        }
        self.waiting.lock().insert(key, o);
        self.wake.notify_one();
    }

    /// True the first time a conflict is seen for this resourceVersion of the object.
    fn first_warning(&self, key: ObjKey, rv: String) -> bool {
        self.warned.lock().insert(key, rv.clone()) != Some(rv)
    }

    #[cfg(test)]
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
                &i.spec.legacy_keys,
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
                &b.spec.legacy_keys,
            );
        }
    }
}

/// The event message after a rewrite: each legacy key and what became of it. Names keys only, never values.
pub fn message(keys: &LegacyKeys) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            if k.ignored {
                format!(
                    "spec.{} removed: spec.{} is also set and wins{}",
                    k.written,
                    k.field,
                    if k.conflicting {
                        " (the old key's different value was ignored)"
                    } else {
                        ""
                    }
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

/// The event message for conflicting keys left in place.
pub fn conflict_message(keys: &LegacyKeys) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter(|k| k.conflicting)
        .map(|k| {
            format!(
                "spec.{} is ignored: spec.{} is also set, differs and wins",
                k.written, k.field
            )
        })
        .collect();
    format!(
        "pre-v1.6 keys: {}. Remove the old keys from your manifest",
        parts.join("; ")
    )
}

/// Rewrite queued objects until aborted (the leader runs it beside its loop).
pub async fn run(exec: Arc<Exec>) {
    let queue = &exec.shared.legacy;
    loop {
        queue.wake.notified().await;
        let waiting = std::mem::take(&mut *queue.waiting.lock());
        for (key, o) in waiting {
            match o {
                Legacy::Identity(i) => settle(&exec, key, *i, |i| &i.spec.legacy_keys).await,
                Legacy::Binding(b) => settle(&exec, key, *b, |b| &b.spec.legacy_keys).await,
            }
        }
    }
}

async fn settle<K>(exec: &Exec, key: ObjKey, o: K, legacy_keys: impl Fn(&K) -> &LegacyKeys)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let keys = legacy_keys(&o);
    let ns = o.namespace().unwrap_or_default();
    let name = o.name_any();
    let kind = K::kind(&());
    match action(keys) {
        Action::None => {}
        Action::Warn => {
            if exec
                .shared
                .legacy
                .first_warning(key, o.resource_version().unwrap_or_default())
            {
                let msg = conflict_message(keys);
                tracing::warn!(%ns, %name, %kind, "{msg}");
                exec.recorder.emit(
                    events::reference(&o),
                    "Warning",
                    events::LEGACY_KEYS_IGNORED,
                    msg,
                );
            }
        }
        Action::Rewrite => {
            let _permit = exec.writes.acquire().await.ok();
            let api: Api<K> = Api::namespaced(exec.client.clone(), &ns);
            // The typed object serialises only the current keys; its resourceVersion makes the write conditional.
            match api.replace(&name, &PostParams::default(), &o).await {
                Ok(_) => {
                    let msg = message(keys);
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
        assert_eq!(action(&i.spec.legacy_keys), Action::Rewrite);
        let m = message(&i.spec.legacy_keys);
        assert_eq!(
            m,
            "pre-v1.6 keys: spec.ClientID rewritten to spec.clientID; spec.ResourceID removed: spec.resourceID is \
             also set and wins (the old key's different value was ignored). Use the current keys in your manifest \
             (aad-pod-identity v1.6+ drops the old ones)"
        );
        assert!(!m.contains("c-secretish") && !m.contains("old-r"));
    }

    #[test]
    fn keys_beside_set_current_keys_are_never_rewritten() {
        let keys = |spec: serde_json::Value| {
            serde_json::from_value::<AzureIdentityBinding>(json!({
                "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
                "metadata": {"name": "b", "namespace": "app"}, "spec": spec
            }))
            .expect("binding")
            .spec
            .legacy_keys
        };
        // Re-applied old manifest after a rewrite: redundant copies, nothing to do (no write-back fight).
        assert_eq!(
            action(&keys(
                json!({"azureIdentity": "i", "AzureIdentity": "i", "selector": "s", "Selector": "s"})
            )),
            Action::None
        );
        // The old key now says something else: warn, do not write.
        let k = keys(json!({"selector": "s", "Selector": "t"}));
        assert_eq!(action(&k), Action::Warn);
        assert_eq!(
            conflict_message(&k),
            "pre-v1.6 keys: spec.Selector is ignored: spec.selector is also set, differs and wins. Remove the old \
             keys from your manifest"
        );
        assert_eq!(action(&keys(json!({"selector": "s"}))), Action::None);
        assert_eq!(action(&keys(json!({"Selector": "s"}))), Action::Rewrite);
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
