//! The registry: storage writes and what follows them, below the HTTP verbs (the apiserver's `registry/rest`
//! strategies and store hooks).
//!
//! Everything here takes plain values (`&Sim`, a [`ResourceType`], JSON objects, [`DeleteOpts`]) and no HTTP
//! type, so the verb layer ([`crate::api`]) and the background controllers ([`crate::gc`], [`crate::persist`],
//! bootstrap in [`crate::start`]) write through the same path:
//!
//! - [`create`](mod@create): validate and complete a new object (type meta, namespace, name, generateName, uid, schema of
//!   custom resources, defaults), then store it;
//! - [`update`](mod@update): the object an update or patch produces from the stored one (immutable metadata kept, status
//!   and main resource apart, generation bumped on spec changes, no new finalizers while deleting);
//! - [`delete`](mod@delete): preconditions, finalizers, Foreground/Background/Orphan propagation, namespace Terminating;
//! - [`workloads`]: `apps/v1` and `batch/v1` defaults and validation (selectors, pod templates);
//! - [`webhook_config`]: defaults and validation of mutating and validating webhook configurations;
//! - [`validate`]: the built-in kinds' validation (pure, the apiserver's causes and wording); [`service`]: Service
//!   defaults, cluster IP and node port allocation; [`unknown_fields`]: fields a built-in kind does not have;
//! - the after-write hooks ([`after_write`], [`finish_write`]): garbage-collector events, the RBAC generation,
//!   CRD (un)registration, a new namespace's defaults. Watch fan-out and the change log are the store's own.
//!
//! (Not to be confused with [`Sim::registry`](crate::Sim::registry), the table of served resource types.)
//!
//! May call: `store`, `resources`, `meta`, `error`, the pure sibling crates, and send [`crate::gc::GcEvent`]s
//! (a channel, never a call into the controllers). May not call: `api`, `server`, `admission`, `reviews`.

pub mod create;
pub mod defaults;
pub mod delete;
pub mod service;
pub mod unknown_fields;
pub mod update;
pub mod validate;
pub mod webhook_config;
pub mod workloads;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::Sim;
use crate::meta::meta_str;
use crate::resources::{ResKey, ResourceType, crd_types};

pub use create::{create_internal, prepare_create, store_create};
pub use delete::{DeleteOpts, delete_object};
pub use update::{UpdateOpts, update, update_with};

/// Side effects of writes: CRD registration, namespace content, garbage collection.
pub fn after_write(
    sim: &Sim,
    rt: &ResourceType,
    before: Option<&Value>,
    after: Option<&Arc<Value>>,
) {
    // A new or changed object whose owner no longer exists is collected, as the garbage collector does for
    // dependents that name a missing owner (the cascade skips it when another owner is alive).
    if let Some(obj) = after {
        let old_owners: Vec<&str> = before
            .and_then(|b| b.pointer("/metadata/ownerReferences"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.get("uid").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let owners = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array);
        for uid in owners
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("uid").and_then(Value::as_str))
        {
            if !old_owners.contains(&uid) && sim.store.get_by_uid(uid).is_none() {
                let _ = sim.gc_tx.send(crate::gc::GcEvent::Deleted {
                    uid: uid.to_string(),
                    orphan: false,
                });
            }
        }
    }
    if rt.group == "rbac.authorization.k8s.io" {
        sim.rbac_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    if rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions" {
        match after {
            Some(crd) => {
                let name = meta_str(crd, "name").to_string();
                if let Ok(types) = crd_types(crd) {
                    let mut reg = sim.registry.write();
                    reg.remove_crd(&name);
                    for t in types {
                        reg.insert(t);
                    }
                }
            }
            None => {
                if let Some(b) = before {
                    let name = meta_str(b, "name").to_string();
                    let group = crate::meta::str_at(b, "/spec/group").to_string();
                    let plural = crate::meta::str_at(b, "/spec/names/plural").to_string();
                    sim.registry.write().remove_crd(&name);
                    let _ = sim
                        .gc_tx
                        .send(crate::gc::GcEvent::PurgeResource(ResKey::new(
                            &group, &plural,
                        )));
                }
            }
        }
    }
    if rt.group.is_empty()
        && rt.resource == "namespaces"
        && before.is_none()
        && let Some(ns) = after
    {
        namespace_created(sim, meta_str(ns, "name"));
    }
}

/// Side effects after a write through the store: `removed` means the write deleted the object (its last
/// finalizer went), which also starts garbage collection of its dependents.
pub fn finish_write(
    sim: &Sim,
    rt: &ResourceType,
    before: Option<&Value>,
    obj: &Arc<Value>,
    removed: bool,
) {
    if removed {
        after_write(sim, rt, Some(obj), None);
        let _ = sim.gc_tx.send(crate::gc::GcEvent::Deleted {
            uid: meta_str(obj, "uid").to_string(),
            orphan: false,
        });
    } else if before
        .is_some_and(|b| meta_str(b, "resourceVersion") != meta_str(obj, "resourceVersion"))
    {
        after_write(sim, rt, before, Some(obj));
    }
}

/// What kube-controller-manager does for a new namespace: the `default` service account and the
/// `kube-root-ca.crt` config map.
pub fn namespace_created(sim: &Sim, ns: &str) {
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
    let ca = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
        "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": sim.ca_pem.clone().unwrap_or_default()}});
    for obj in [sa, ca] {
        match create_internal(sim, obj) {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => tracing::warn!(%ns, error = %e, "could not create namespace defaults"),
        }
    }
}
