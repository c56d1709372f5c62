//! Background controllers: owner-reference garbage collection, namespace lifecycle, custom-resource cleanup.
//!
//! They run as one task fed by a channel, so API handlers never wait for cascades (like the real
//! garbage collector, deletion of dependents is asynchronous), and every cascade step goes through the same
//! delete path as a client's request (finalizers are honoured).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Sim;
use crate::error::ApiError;
use crate::registry::{DeleteOpts, delete_object};
use crate::resources::ResKey;

/// Longest time namespace or foreground cleanup waits for finalizers before giving up for now.
const CLEANUP_WAIT: Duration = Duration::from_secs(120);
const CLEANUP_POLL: Duration = Duration::from_millis(25);

/// Work for the background controllers.
#[derive(Debug)]
pub enum GcEvent {
    /// An object with this uid is gone.
    Deleted {
        /// Its uid.
        uid: String,
        /// Orphan its dependents instead of deleting them.
        orphan: bool,
    },
    /// An owner was deleted with `propagationPolicy: Foreground`.
    Foreground {
        /// Its uid.
        uid: String,
    },
    /// A CustomResourceDefinition went away: delete every object of its resource.
    PurgeResource(ResKey),
    /// A namespace was created.
    NamespaceCreated(String),
    /// A namespace is terminating: delete its content, then the namespace.
    NamespaceDeleted {
        /// Its name.
        name: String,
        /// Its uid: cleanup stops if a namespace of the same name but another uid appears.
        uid: String,
    },
}

use crate::meta::meta_str;

/// Run until every sender is gone.
pub async fn run(sim: Arc<Sim>, mut rx: mpsc::UnboundedReceiver<GcEvent>) {
    let mut shutdown = sim.shutdown.clone();
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => match ev { Some(ev) => ev, None => return },
            _ = shutdown.changed() => return,
        };
        match ev {
            GcEvent::Deleted { uid, orphan } => cascade(&sim, &uid, orphan),
            GcEvent::Foreground { uid } => {
                let sim = sim.clone();
                tokio::spawn(async move { foreground(&sim, &uid).await });
            }
            GcEvent::PurgeResource(key) => purge(&sim, &key),
            GcEvent::NamespaceCreated(ns) => crate::registry::namespace_created(&sim, &ns),
            GcEvent::NamespaceDeleted { name, uid } => {
                let sim = sim.clone();
                tokio::spawn(async move { namespace_cleanup(&sim, &name, &uid).await });
            }
        }
    }
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Dependents of a deleted owner: orphaned (reference removed), kept (another live owner: dangling reference
/// removed), or deleted in the background.
fn cascade(sim: &Sim, uid: &str, orphan: bool) {
    for dep in sim.store.dependents_of(uid) {
        let Some(rt) = sim.registry.read().by_key(&dep.key) else {
            continue;
        };
        let Some(obj) = sim.store.get(&dep.key, &dep.namespace, &dep.name) else {
            continue;
        };
        let live_owner = owner_uids(&obj).iter().any(|o| {
            o != uid
                && sim
                    .store
                    .get_by_uid(o)
                    .is_some_and(|(_, v)| v.pointer("/metadata/deletionTimestamp").is_none())
        });
        if orphan || live_owner {
            let res = sim.store.update(
                &dep.key,
                &dep.namespace,
                &dep.name,
                &mut |cur| {
                    let mut v = (**cur).clone();
                    if let Some(refs) = v
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                    }
                    Ok(Some(v))
                },
                || ApiError::not_found(&dep.key.resource, &dep.key.group, &dep.name),
            );
            if let Err(e) = res
                && e.code != 404
            {
                tracing::warn!(ns = %dep.namespace, name = %dep.name, error = %e, "garbage collector could not orphan a dependent");
            }
            continue;
        }
        match delete_object(
            sim,
            &rt,
            &dep.namespace,
            &dep.name,
            &DeleteOpts {
                propagation: Some("Background".into()),
                ..Default::default()
            },
        ) {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(ns = %dep.namespace, name = %dep.name, error = %e, "garbage collector could not delete a dependent")
            }
        }
    }
}

async fn foreground(sim: &Sim, uid: &str) {
    cascade(sim, uid, false);
    let deadline = tokio::time::Instant::now() + CLEANUP_WAIT;
    while !sim.store.dependents_of(uid).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(CLEANUP_POLL).await;
    }
    let Some((r, _)) = sim.store.get_by_uid(uid) else {
        return;
    };
    let res = sim.store.update(
        &r.key,
        &r.namespace,
        &r.name,
        &mut |cur| {
            let mut v = (**cur).clone();
            if let Some(f) = v
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x != "foregroundDeletion");
            }
            Ok(Some(v))
        },
        || ApiError::not_found(&r.key.resource, &r.key.group, &r.name),
    );
    if let (Ok((obj, true)), Some(rt)) = (res, sim.registry.read().by_key(&r.key)) {
        crate::registry::finish_write(sim, &rt, None, &obj, true);
    }
}

/// Remove every object of a resource whose definition is gone (finalizers cannot run without the API).
fn purge(sim: &Sim, key: &ResKey) {
    let (items, _, _) = sim.store.list(key, None, None, None, None, &|_| true);
    for item in items {
        let ns = meta_str(&item, "namespace").to_string();
        let name = meta_str(&item, "name").to_string();
        let nf = || ApiError::not_found(&key.resource, &key.group, &name);
        let res = sim.store.update(
            key,
            &ns,
            &name,
            &mut |cur| {
                let mut v = (**cur).clone();
                v["metadata"]["finalizers"] = json!([]);
                v["metadata"]["deletionTimestamp"] = json!(crate::meta::now_rfc3339());
                Ok(Some(v))
            },
            nf,
        );
        // The type is already unregistered: only the garbage-collection side effect applies.
        if let Ok((obj, true)) = res {
            let _ = sim.gc_tx.send(GcEvent::Deleted {
                uid: meta_str(&obj, "uid").to_string(),
                orphan: false,
            });
        }
    }
}

/// The namespace controller: delete everything in a terminating namespace, then drop its `kubernetes`
/// finalizer (which removes it, unless metadata finalizers still hold it). Stops when the namespace it was
/// started for is gone or replaced; leaves the namespace Terminating when content outlives the wait (a later
/// delete request starts it again).
async fn namespace_cleanup(sim: &Sim, ns: &str, uid: &str) {
    let key = ResKey::new("", "namespaces");
    let same_namespace = || {
        sim.store
            .get(&key, "", ns)
            .is_some_and(|n| meta_str(&n, "uid") == uid)
    };
    let deadline = tokio::time::Instant::now() + CLEANUP_WAIT;
    loop {
        if !same_namespace() {
            return;
        }
        let types: Vec<_> = sim
            .registry
            .read()
            .all()
            .filter(|t| t.namespaced && t.verbs.len() > 1)
            .cloned()
            .collect();
        let mut remaining = 0usize;
        let mut seen = std::collections::HashSet::new();
        for rt in types {
            if !seen.insert(rt.key()) {
                continue;
            }
            let (items, _, _) = sim
                .store
                .list(&rt.key(), Some(ns), None, None, None, &|_| true);
            for item in items {
                remaining += 1;
                if item.pointer("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                let name = meta_str(&item, "name").to_string();
                let opts = DeleteOpts {
                    propagation: Some("Background".into()),
                    ..Default::default()
                };
                let _ = delete_object(sim, &rt, ns, &name, &opts);
            }
        }
        if remaining == 0 {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(%ns, remaining, "namespace content still present; the namespace stays Terminating");
            return;
        }
        tokio::time::sleep(CLEANUP_POLL).await;
    }
    let res = sim.store.update(
        &key,
        "",
        ns,
        &mut |cur| {
            if meta_str(cur, "uid") != uid {
                return Ok(None);
            }
            let mut v = (**cur).clone();
            if !v["spec"].is_object() {
                v["spec"] = json!({});
            }
            v["spec"]["finalizers"] = json!([]);
            Ok(Some(v))
        },
        || ApiError::not_found("namespaces", "", ns),
    );
    if let (Ok((obj, true)), Some(rt)) = (res, sim.registry.read().get("", "v1", "namespaces")) {
        crate::registry::finish_write(sim, &rt, None, &obj, true);
    }
}
