//! The workload controllers of kube-controller-manager that kube-sim runs in-process: Deployment ->
//! ReplicaSet -> Pod, StatefulSet -> Pod, Job -> Pod.
//!
//! Model: one task watches Deployments, ReplicaSets, StatefulSets, Jobs and Pods in the store and marks the namespace of every
//! change dirty; each dirty namespace is then synced as a whole (Deployments first, then ReplicaSets), reading
//! the store directly (always current, so no expectations are needed as upstream's informer caches do). The
//! decisions are pure ([`deployment::plan`], [`replica_set::plan`], [`stateful_set::plan`], [`job::plan`]); this module only reads inputs and writes
//! the outputs through the registry (and, for new pods, mutating admission first, as a controller's pod
//! creation through the API gets), never through the verb layer. Every write is skipped by the store when it
//! changes nothing, so a settled namespace produces no events and the loop goes quiet. A namespace whose sync
//! failed (a webhook refused a pod, a service account is missing) is retried every [`RETRY_PERIOD`].
//!
//! Deleting a Deployment is the garbage collector's work ([`crate::gc`]): its ReplicaSets and their pods name
//! their controller in `ownerReferences`, so Background, Foreground and Orphan propagation apply unchanged.
//! Objects being deleted are left alone here.
//!
//! Not run: DaemonSet and CronJob controllers (those kinds are served and stored only), the adoption of
//! orphaned ReplicaSets or pods that a selector matches, `progressDeadlineSeconds`.

pub mod deployment;
pub mod job;
pub mod replica_set;
pub mod stateful_set;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::Sim;
use crate::authn::User;
use crate::meta::meta_str;
use crate::registry::{self, DeleteOpts, UpdateOpts};
use crate::resources::{ResKey, ResourceType};

/// How often a namespace whose last sync failed is tried again.
pub const RETRY_PERIOD: Duration = Duration::from_secs(1);

/// The user a controller of `kind` creates pods as (what admission webhooks see), e.g.
/// `system:serviceaccount:kube-system:replicaset-controller`.
fn controller_user(kind: &str) -> User {
    let controller = match kind {
        "StatefulSet" => "statefulset-controller",
        "Job" => "job-controller",
        _ => "replicaset-controller",
    };
    User {
        name: format!("system:serviceaccount:kube-system:{controller}"),
        uid: String::new(),
        groups: vec![
            "system:serviceaccounts".into(),
            "system:serviceaccounts:kube-system".into(),
            "system:authenticated".into(),
        ],
        extra: Default::default(),
    }
}

/// What a pod-owning controller (ReplicaSet, StatefulSet, Job) decides for one owner.
#[derive(Debug, Clone, PartialEq)]
pub struct PodPlan {
    /// Pods to create (complete objects, with a name or a `generateName`).
    pub create: Vec<Value>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// The owner's new status.
    pub status: Value,
}

/// The `ownerReference` a controller writes on what it creates.
pub fn controller_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": meta_str(owner, "name"), "uid": meta_str(owner, "uid"),
        "controller": true, "blockOwnerDeletion": true})
}

/// The uid of an object's controller, if it has one.
fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller") == Some(&json!(true)))
        .and_then(|r| r.get("uid").and_then(Value::as_str))
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

const WATCHED: [(&str, &str); 5] = [
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("batch", "jobs"),
    ("", "pods"),
];

/// Run until shutdown.
pub async fn run(sim: Arc<Sim>) {
    let mut shutdown = sim.shutdown.clone();
    let mut retry = tokio::time::interval(RETRY_PERIOD);
    let mut failed: BTreeSet<String> = BTreeSet::new();
    'subscribe: loop {
        let mut dirty = BTreeSet::new();
        let mut receivers = Vec::new();
        for (group, resource) in WATCHED {
            match sim.store.watch(&ResKey::new(group, resource), None, None) {
                Ok(start) => {
                    if resource != "pods" {
                        dirty.extend(start.backlog.iter().map(|c| c.namespace.clone()));
                    }
                    receivers.push(start.receiver);
                }
                Err(e) => {
                    tracing::error!(error = %e, "workload controllers cannot watch the store");
                    return;
                }
            }
        }
        loop {
            for ns in std::mem::take(&mut dirty) {
                failed.remove(&ns);
                if !sync_namespace(&sim, &ns).await {
                    failed.insert(ns);
                }
            }
            let next =
                futures::future::select_all(receivers.iter_mut().map(|r| Box::pin(r.recv())));
            let event = tokio::select! {
                (e, _, _) = next => e,
                _ = retry.tick() => {
                    dirty.extend(failed.iter().cloned());
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            match event {
                Ok(change) => {
                    dirty.insert(change.namespace.clone());
                }
                Err(RecvError::Lagged(_) | RecvError::Closed) => continue 'subscribe,
            }
            // Take every change already queued before syncing.
            for rx in &mut receivers {
                loop {
                    match rx.try_recv() {
                        Ok(change) => {
                            dirty.insert(change.namespace.clone());
                        }
                        Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
                        Err(_) => continue 'subscribe,
                    }
                }
            }
        }
    }
}

fn resource_type(sim: &Sim, group: &str, resource: &str) -> Option<Arc<ResourceType>> {
    sim.registry.read().get(group, "v1", resource)
}

fn list(sim: &Sim, group: &str, resource: &str, ns: &str) -> Vec<Arc<Value>> {
    sim.store
        .list(
            &ResKey::new(group, resource),
            Some(ns),
            None,
            None,
            None,
            &|o| !deleting(o),
        )
        .0
}

/// Sync one namespace; false when a write failed (to be retried).
async fn sync_namespace(sim: &Arc<Sim>, ns: &str) -> bool {
    let (Some(deploy_rt), Some(rs_rt), Some(pod_rt)) = (
        resource_type(sim, "apps", "deployments"),
        resource_type(sim, "apps", "replicasets"),
        resource_type(sim, "", "pods"),
    ) else {
        return true;
    };
    // A terminating namespace refuses new content; the namespace controller is deleting what is left.
    let namespace = sim.store.get(&ResKey::new("", "namespaces"), "", ns);
    if namespace.is_none_or(|n| deleting(&n)) {
        return true;
    }
    let mut ok = true;
    let replica_sets = list(sim, "apps", "replicasets", ns);
    for d in list(sim, "apps", "deployments", ns) {
        let owned: Vec<&Value> = replica_sets
            .iter()
            .filter(|rs| controller_uid(rs) == Some(meta_str(&d, "uid")))
            .map(|rs| &**rs)
            .collect();
        let plan = deployment::plan(&d, &owned, &crate::meta::now_rfc3339());
        ok &= apply_deployment(sim, &deploy_rt, &rs_rt, &d, plan);
    }
    let replica_sets = list(sim, "apps", "replicasets", ns);
    let stateful_sets = list(sim, "apps", "statefulsets", ns);
    let jobs = list(sim, "batch", "jobs", ns);
    if replica_sets.is_empty() && stateful_sets.is_empty() && jobs.is_empty() {
        return ok;
    }
    let pods = list(sim, "", "pods", ns);
    let owned = |owner: &Value| -> Vec<&Value> {
        pods.iter()
            .filter(|p| controller_uid(p) == Some(meta_str(owner, "uid")))
            .map(|p| &**p)
            .collect()
    };
    for rs in &replica_sets {
        let plan = replica_set::plan(rs, &owned(rs));
        ok &= apply_pods(sim, &rs_rt, &pod_rt, rs, plan).await;
    }
    if let Some(set_rt) = resource_type(sim, "apps", "statefulsets") {
        for set in &stateful_sets {
            let plan = stateful_set::plan(set, &owned(set));
            ok &= apply_pods(sim, &set_rt, &pod_rt, set, plan).await;
        }
    }
    if let Some(job_rt) = resource_type(sim, "batch", "jobs") {
        for job in &jobs {
            let plan = job::plan(job, &owned(job), &crate::meta::now_rfc3339());
            ok &= apply_pods(sim, &job_rt, &pod_rt, job, plan).await;
        }
    }
    ok
}

fn log_err<T>(what: &str, ns: &str, name: &str, res: crate::ApiResult<T>) -> bool {
    match res {
        Ok(_) => true,
        // Gone meanwhile, or changed under us: the change's own event brings the namespace back.
        Err(e) if e.code == 404 || e.code == 409 => true,
        Err(e) => {
            tracing::warn!(%ns, %name, error = %e, "workload controller could not {what}");
            false
        }
    }
}

/// Write a workload through the registry (spec and metadata, or only its status).
fn write(
    sim: &Sim,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    status_only: bool,
    change: &dyn Fn(&mut Value),
) -> crate::ApiResult<Arc<Value>> {
    let opts = UpdateOpts {
        status_only,
        ..Default::default()
    };
    registry::update_with(sim, rt, ns, name, opts, &|cur| {
        let mut next = cur.clone();
        change(&mut next);
        Ok(next)
    })
}

fn apply_deployment(
    sim: &Sim,
    deploy_rt: &ResourceType,
    rs_rt: &ResourceType,
    d: &Value,
    plan: deployment::Plan,
) -> bool {
    let ns = meta_str(d, "namespace");
    let name = meta_str(d, "name");
    let mut ok = true;
    for w in plan.writes {
        ok &= match w {
            deployment::Write::Create(rs) => {
                let rs_name = meta_str(&rs, "name").to_string();
                log_err(
                    "create a ReplicaSet",
                    ns,
                    &rs_name,
                    registry::create_internal(sim, rs),
                )
            }
            deployment::Write::Scale {
                name: rs_name,
                replicas,
                annotations,
            } => {
                let res = write(sim, rs_rt, ns, &rs_name, false, &|rs| {
                    rs["spec"]["replicas"] = json!(replicas);
                    for (k, v) in &annotations {
                        rs["metadata"]["annotations"][k] = json!(v);
                    }
                });
                log_err("scale a ReplicaSet", ns, &rs_name, res)
            }
            deployment::Write::Delete(rs_name) => {
                let opts = DeleteOpts {
                    propagation: Some("Background".into()),
                    ..Default::default()
                };
                let res = registry::delete_object(sim, rs_rt, ns, &rs_name, &opts);
                log_err("delete an old ReplicaSet", ns, &rs_name, res)
            }
        };
    }
    let annotation = format!(
        "/metadata/annotations/{}",
        deployment::REVISION_ANNOTATION.replace('/', "~1")
    );
    if d.pointer(&annotation).and_then(Value::as_str) != Some(plan.revision.as_str()) {
        let res = write(sim, deploy_rt, ns, name, false, &|d| {
            d["metadata"]["annotations"][deployment::REVISION_ANNOTATION] = json!(plan.revision);
        });
        ok &= log_err("annotate a Deployment", ns, name, res);
    }
    if d.get("status") != Some(&plan.status) {
        let res = write(sim, deploy_rt, ns, name, true, &|d| {
            d["status"] = plan.status.clone();
        });
        ok &= log_err("write a Deployment's status", ns, name, res);
    }
    ok
}

async fn apply_pods(
    sim: &Arc<Sim>,
    owner_rt: &ResourceType,
    pod_rt: &ResourceType,
    owner: &Value,
    work: PodPlan,
) -> bool {
    let ns = meta_str(owner, "namespace");
    let name = meta_str(owner, "name");
    let mut ok = true;
    let user = controller_user(&owner_rt.kind);
    for pod in work.create {
        let res = create_pod(sim, pod_rt, &user, pod).await;
        if !log_err("create a pod", ns, name, res) {
            // The next ones would fail alike; the retry comes back.
            ok = false;
            break;
        }
    }
    for pod in &work.delete {
        let res = registry::delete_object(sim, pod_rt, ns, pod, &DeleteOpts::default());
        ok &= log_err("delete a pod", ns, pod, res);
    }
    if owner.get("status") != Some(&work.status) {
        let res = write(sim, owner_rt, ns, name, true, &|o| {
            o["status"] = work.status.clone();
        });
        ok &= log_err("write a status", ns, name, res);
    }
    ok
}

/// Create a pod as a client's request would: completion and defaults, mutating admission (webhooks, then the
/// ServiceAccount plugin), validation, then the store.
async fn create_pod(
    sim: &Arc<Sim>,
    pod_rt: &ResourceType,
    user: &User,
    pod: Value,
) -> crate::ApiResult<Arc<Value>> {
    let ns = meta_str(&pod, "namespace").to_string();
    let mut obj = registry::prepare_create(sim, pod_rt, Some(&ns), pod, false)?;
    obj = crate::admission::admit_pod_create(sim, user, obj, false).await?;
    registry::defaults::after_admission(sim, pod_rt, &mut obj)?;
    registry::store_create(sim, pod_rt, obj)
}
