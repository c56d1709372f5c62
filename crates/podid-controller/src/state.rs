//! Shared controller state: the planner's index, the full identity and binding objects (AAIs embed copies), and
//! the watch pumps that feed them. One watch per kind; objects are trimmed before they are kept (pods become
//! [`podid_core::assign::PodInfo`], a few strings each), so memory follows the number of labelled pods, not their
//! size. A malformed object never stalls a watch: kube's watcher skips what it cannot decode and relists.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::runtime::watcher;
use parking_lot::{Mutex, RwLock};
use podid_core::assign::{AaiKey, Cluster};
use podid_k8s::views;
use podid_k8s::{AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding, POD_LABEL_KEY};
use podid_runtime::watch::{
    Event as Ev, NsName, Pumps, Readiness, Watched, ns_name as key, trim_meta,
};
use tokio::sync::Notify;

use crate::metrics::Metrics;

podid_runtime::watch_kinds! {
    /// Which watch.
    pub enum Kind {
        /// Pods with the `aadpodidbinding` label.
        Pods,
        /// All nodes.
        Nodes,
        /// AzureIdentities.
        Identities,
        /// AzureIdentityBindings.
        Bindings,
        /// AzureAssignedIdentities.
        Assigned,
    }
}

/// Everything the watch pumps and the executor share.
pub struct Shared {
    /// The planner's index.
    pub cluster: Mutex<Cluster>,
    /// Full identities (embedded into AAIs).
    pub identities: RwLock<HashMap<NsName, AzureIdentity>>,
    /// Full bindings (embedded into AAIs; events refer to them).
    pub bindings: RwLock<HashMap<NsName, AzureIdentityBinding>>,
    /// uid of every watched (labelled) pod: events on a pod carry it, as `kubectl describe pod` matches on it.
    pub pod_uids: RwLock<HashMap<NsName, String>>,
    /// Identities and bindings written with pre-v1.6 keys, waiting for the leader's rewrite ([`crate::legacy`]).
    pub legacy: crate::legacy::Queue,
    /// Preexisting flags recorded on AAIs (absent = not recorded yet).
    pub recorded: Mutex<HashMap<AaiKey, bool>>,
    /// resourceVersion of our own last write per AAI: a watch event older than that is stale and skipped, so a
    /// delayed event never rolls the index back behind a write-through.
    written_rv: Mutex<HashMap<AaiKey, u64>>,
    /// Woken on every change.
    pub wake: Notify,
    readiness: Readiness,
    /// True while this process leads and its loop runs (`/healthz` says `Active`).
    pub active: AtomicBool,
    /// Metrics.
    pub metrics: Metrics,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            cluster: Mutex::new(Cluster::new()),
            identities: RwLock::default(),
            bindings: RwLock::default(),
            pod_uids: RwLock::default(),
            legacy: crate::legacy::Queue::default(),
            recorded: Mutex::default(),
            written_rv: Mutex::default(),
            wake: Notify::new(),
            readiness: Readiness::new(&[true; 5]),
            active: AtomicBool::new(false),
            metrics: Metrics::default(),
        }
    }
}

impl Watched for Shared {
    fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    fn changed(&self) {
        self.wake.notify_one();
    }
}

/// resourceVersion as a number (kube-sim and etcd-backed servers use revision numbers; anything else disables the
/// staleness check for that object).
fn rv_of<K: ResourceExt>(o: &K) -> Option<u64> {
    o.resource_version().and_then(|v| v.parse().ok())
}

impl Shared {
    /// Every watch delivered its first complete list.
    pub fn synced(&self) -> bool {
        self.readiness.is_ready()
    }

    /// Record an AAI we read or wrote (index + preexisting annotation).
    pub fn apply_assigned(&self, a: &AzureAssignedIdentity) {
        let info = views::assigned_info(a);
        if let Some(rv) = rv_of(a) {
            self.written_rv.lock().insert(info.key.clone(), rv);
        }
        self.apply_assigned_info(info, views::recorded_preexisting(a));
    }

    /// A watch event older than our own last write of that AAI.
    fn is_stale(&self, key: &AaiKey, rv: Option<u64>) -> bool {
        match (self.written_rv.lock().get(key), rv) {
            (Some(w), Some(r)) => r < *w,
            _ => false,
        }
    }

    fn apply_assigned_info(&self, info: podid_core::assign::AssignedInfo, pre: Option<bool>) {
        match pre {
            Some(p) => {
                self.recorded.lock().insert(info.key.clone(), p);
            }
            None => {
                self.recorded.lock().remove(&info.key);
            }
        }
        self.cluster.lock().apply_assigned(info);
    }

    /// The cached binding an AAI was made from (events refer to it).
    pub fn binding_of(
        &self,
        info: &podid_core::assign::AssignedInfo,
    ) -> Option<AzureIdentityBinding> {
        self.bindings
            .read()
            .get(&(info.binding.namespace.clone(), info.binding.name.clone()))
            .cloned()
    }

    /// Reference to a watched pod for an event (None when the pod is gone or lost its label).
    pub fn pod_reference(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<k8s_openapi::api::core::v1::ObjectReference> {
        let uid = self
            .pod_uids
            .read()
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()?;
        Some(crate::events::pod_reference(
            namespace,
            name,
            Some(uid).filter(|u| !u.is_empty()),
        ))
    }

    /// Forget an AAI.
    pub fn delete_assigned(&self, k: &AaiKey) {
        self.written_rv.lock().remove(k);
        self.recorded.lock().remove(k);
        self.cluster.lock().delete_assigned(k);
    }
}

/// Event reason on an AzureIdentity that cluster identity protection refuses.
pub const IDENTITY_REFUSED: &str = "identity refused";

/// Cluster identity protection at the controller's door: a protected AzureIdentity never reaches the planner
/// (no AAI, no ARM assignment; an AAI it had is released like one of a deleted identity, and the planner never
/// removes the cluster's own identity from a VM because it is immutable there). A Warning event on the
/// AzureIdentity says why, once per resourceVersion.
pub struct IdentityGuard {
    protected: podid_core::protect::ProtectedIdentities,
    recorder: Option<crate::events::Recorder>,
    warned: Mutex<HashMap<NsName, String>>,
}

impl IdentityGuard {
    /// A guard; `recorder` writes the events (none in unit tests).
    pub fn new(
        protected: podid_core::protect::ProtectedIdentities,
        recorder: Option<crate::events::Recorder>,
    ) -> IdentityGuard {
        IdentityGuard {
            protected,
            recorder,
            warned: Mutex::default(),
        }
    }

    /// True when the identity may be assigned; otherwise warns (once per version) and returns false.
    pub fn admit(&self, i: &AzureIdentity) -> bool {
        let (ns, name) = key(i);
        let Some(why) = self
            .protected
            .check(&ns, &i.spec.client_id, &i.spec.resource_id)
        else {
            self.warned.lock().remove(&(ns, name));
            return true;
        };
        let rv = i.resource_version().unwrap_or_default();
        let first = self
            .warned
            .lock()
            .insert((ns.clone(), name.clone()), rv.clone())
            != Some(rv);
        if first {
            let msg = podid_core::protect::ProtectedIdentities::message(
                why,
                &ns,
                &name,
                &i.spec.client_id,
            );
            tracing::warn!(%ns, identity = %name, "{msg}");
            if let Some(r) = &self.recorder {
                r.emit(
                    crate::events::reference(i),
                    "Warning",
                    IDENTITY_REFUSED,
                    msg,
                );
            }
        }
        false
    }
}

/// Start the five watches. They run until the returned handles are aborted.
pub fn spawn_watches(
    client: kube::Client,
    shared: Arc<Shared>,
    guard: Arc<IdentityGuard>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut pumps = Pumps::new(client, shared);
    let wc = watcher::Config::default().labels(POD_LABEL_KEY);
    pumps.watch(
        wc,
        Kind::Pods,
        |p: Pod| (views::pod_info(&p), p.metadata.uid.unwrap_or_default()),
        |s: &Shared, ev| match ev {
            // The uid map and the index are locked one after the other, never together.
            Ev::Apply((p, uid)) => {
                s.pod_uids
                    .write()
                    .insert((p.namespace.clone(), p.name.clone()), uid);
                s.cluster.lock().apply_pod(p);
            }
            Ev::Delete((p, _)) => {
                s.pod_uids
                    .write()
                    .remove(&(p.namespace.clone(), p.name.clone()));
                s.cluster.lock().delete_pod(&p.namespace, &p.name);
            }
            Ev::Reset(ps) => {
                *s.pod_uids.write() = ps
                    .iter()
                    .map(|(p, uid)| ((p.namespace.clone(), p.name.clone()), uid.clone()))
                    .collect();
                s.cluster
                    .lock()
                    .reset_pods(ps.into_iter().map(|(p, _)| p).collect());
            }
        },
    );
    pumps.watch(
        watcher::Config::default(),
        Kind::Nodes,
        |n: Node| views::node_info(&n),
        |s: &Shared, ev| {
            let mut c = s.cluster.lock();
            match ev {
                Ev::Apply(n) => c.apply_node(n),
                Ev::Delete(n) => c.delete_node(&n.name),
                Ev::Reset(ns) => c.reset_nodes(ns),
            }
        },
    );
    pumps.watch(
        watcher::Config::default(),
        Kind::Identities,
        trim_meta,
        move |s: &Shared, ev| match ev {
            Ev::Apply(i) => {
                s.note_legacy_identity(&i);
                let info = views::identity_info(&i);
                let admitted = guard.admit(&i);
                let (ns, name) = key(&i);
                s.identities.write().insert(key(&i), i);
                if admitted {
                    s.cluster.lock().apply_identity(info);
                } else {
                    s.cluster.lock().delete_identity(&ns, &name);
                }
            }
            Ev::Delete(i) => {
                let (ns, name) = key(&i);
                s.identities.write().remove(&(ns.clone(), name.clone()));
                s.cluster.lock().delete_identity(&ns, &name);
            }
            Ev::Reset(is) => {
                let infos = is
                    .iter()
                    .filter(|i| guard.admit(i))
                    .map(views::identity_info)
                    .collect();
                is.iter().for_each(|i| s.note_legacy_identity(i));
                *s.identities.write() = is.into_iter().map(|i| (key(&i), i)).collect();
                s.cluster.lock().reset_identities(infos);
            }
        },
    );
    pumps.watch(
        watcher::Config::default(),
        Kind::Bindings,
        trim_meta,
        |s: &Shared, ev| match ev {
            Ev::Apply(b) => {
                s.note_legacy_binding(&b);
                let info = views::binding_info(&b);
                s.bindings.write().insert(key(&b), b);
                s.cluster.lock().apply_binding(info);
            }
            Ev::Delete(b) => {
                let (ns, name) = key(&b);
                s.bindings.write().remove(&(ns.clone(), name.clone()));
                s.cluster.lock().delete_binding(&ns, &name);
            }
            Ev::Reset(bs) => {
                let infos = bs.iter().map(views::binding_info).collect();
                bs.iter().for_each(|b| s.note_legacy_binding(b));
                *s.bindings.write() = bs.into_iter().map(|b| (key(&b), b)).collect();
                s.cluster.lock().reset_bindings(infos);
            }
        },
    );
    let trim = |a: AzureAssignedIdentity| {
        (
            views::assigned_info(&a),
            views::recorded_preexisting(&a),
            rv_of(&a),
        )
    };
    pumps.watch(
        watcher::Config::default(),
        Kind::Assigned,
        trim,
        |s: &Shared, ev| match ev {
            Ev::Apply((info, pre, rv)) => {
                if !s.is_stale(&info.key, rv) {
                    s.apply_assigned_info(info, pre);
                }
            }
            Ev::Delete((info, _, _)) => s.delete_assigned(&info.key),
            Ev::Reset(all) => {
                // A relist older than our own writes keeps what we wrote.
                let mut c = s.cluster.lock();
                let mut recorded = s.recorded.lock();
                let mut keep: Vec<podid_core::assign::AssignedInfo> = Vec::with_capacity(all.len());
                let mut new_recorded = HashMap::new();
                for (info, pre, rv) in all {
                    if s.is_stale(&info.key, rv)
                        && let Some(mine) = c.assigned(&info.key).cloned()
                    {
                        if let Some(p) = recorded.get(&info.key) {
                            new_recorded.insert(info.key.clone(), *p);
                        }
                        keep.push(mine);
                        continue;
                    }
                    if let Some(p) = pre {
                        new_recorded.insert(info.key.clone(), p);
                    }
                    keep.push(info);
                }
                *recorded = new_recorded;
                c.reset_assigned(keep);
            }
        },
    );
    pumps.into_tasks()
}
