//! What the agent knows, fed by watches: this node's pods by IP, the node's AzureAssignedIdentities by pod,
//! bindings, identities and exceptions. Memory follows the node (pods and AAIs are
//! watched with node selectors) plus the identity objects, never the cluster's pod count.
//!
//! Every change bumps a generation number on a `tokio::sync::watch` channel: a token request waiting for its
//! identity to become `Assigned` wakes on the event instead of polling every 5 s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use parking_lot::RwLock;
use podid_core::nmi::pods::{PodEntry, PodIndex};
use podid_core::nmi::select::{AssignedView, BindingView, IdentityView};
use podid_k8s::{
    AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding, AzurePodIdentityException,
    NODENAME_LABEL,
};

use podid_runtime::watch::{Event as Ev, NsName, Pumps, Readiness, Watched, ns_name as key};

use crate::args::Mode;
use crate::metrics::Metrics;

podid_runtime::watch_kinds! {
    /// Which watch.
    pub enum Kind {
        /// This node's pods.
        Pods,
        /// AzureAssignedIdentities (standard mode).
        Assigned,
        /// AzureIdentityBindings.
        Bindings,
        /// AzureIdentities (managed and federated modes).
        Identities,
        /// AzurePodIdentityExceptions.
        Exceptions,
    }
}

/// The agent's shared state.
pub struct Shared {
    /// This node's pods.
    pub pods: RwLock<PodIndex>,
    /// AAIs by (pod namespace, pod name): (AAI namespace/name, view).
    assigned: RwLock<HashMap<NsName, Vec<(NsName, AssignedView)>>>,
    aai_pod: RwLock<HashMap<NsName, NsName>>,
    /// Bindings by namespace/name.
    pub bindings: RwLock<HashMap<NsName, BindingView>>,
    /// The bindings as one list, rebuilt on each binding event (rare) so a token request takes it in O(1).
    binding_snapshot: RwLock<Arc<Vec<BindingView>>>,
    /// Identities by namespace/name.
    pub identities: RwLock<BTreeMap<NsName, IdentityView>>,
    /// Exceptions: namespace/name -> pod labels.
    exceptions: RwLock<HashMap<NsName, BTreeMap<String, String>>>,
    changes: tokio::sync::watch::Sender<u64>,
    readiness: Readiness,
    /// The redirect is in place (or not managed): `/healthz` says `Active`.
    pub initialized: AtomicBool,
    /// Metrics.
    pub metrics: Metrics,
}

impl Shared {
    /// State for a mode (which watches readiness waits for).
    #[must_use]
    pub fn new(mode: Mode) -> Shared {
        let standard = mode == Mode::Standard;
        Shared {
            pods: RwLock::default(),
            assigned: RwLock::default(),
            aai_pod: RwLock::default(),
            bindings: RwLock::default(),
            binding_snapshot: RwLock::default(),
            identities: RwLock::default(),
            exceptions: RwLock::default(),
            changes: tokio::sync::watch::channel(0).0,
            // Identities in every mode: standard mode reads them to refuse at once a request that no binding
            // of the pod could ever satisfy.
            readiness: Readiness::new(&[true, standard, true, true, true]),
            initialized: AtomicBool::new(false),
            metrics: Metrics::default(),
        }
    }

    /// Every needed watch delivered its first list.
    pub fn synced(&self) -> bool {
        self.readiness.is_ready()
    }

    fn changed(&self) {
        self.changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Subscribe to change notifications.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The AAIs of a pod.
    pub fn assigned_for(&self, ns: &str, pod: &str) -> Vec<AssignedView> {
        self.assigned
            .read()
            .get(&(ns.to_string(), pod.to_string()))
            .map(|v| v.iter().map(|(_, a)| a.clone()).collect())
            .unwrap_or_default()
    }

    /// The AAIs of a pod with their (namespace, name).
    pub fn assigned_named(&self, ns: &str, pod: &str) -> Vec<(NsName, AssignedView)> {
        self.assigned
            .read()
            .get(&(ns.to_string(), pod.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Exceptions of a namespace with their names.
    pub fn exceptions_named(&self, ns: &str) -> Vec<(String, BTreeMap<String, String>)> {
        self.exceptions
            .read()
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, name), l)| (name.clone(), l.clone()))
            .collect()
    }

    /// Bindings as a list (a shared snapshot: no copy per request).
    pub fn binding_list(&self) -> Arc<Vec<BindingView>> {
        self.binding_snapshot.read().clone()
    }

    /// Exceptions of a namespace (their pod labels).
    pub fn exceptions_in(&self, ns: &str) -> Vec<BTreeMap<String, String>> {
        self.exceptions
            .read()
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Adds pods found by a live lookup.
    pub fn apply_pods(&self, pods: Vec<PodEntry>) {
        let mut ix = self.pods.write();
        for p in pods {
            ix.apply(p);
        }
        drop(ix);
        self.changed();
    }

    fn apply_aai(&self, key: NsName, pod: NsName, view: AssignedView) {
        self.remove_aai(&key);
        self.aai_pod.write().insert(key.clone(), pod.clone());
        self.assigned
            .write()
            .entry(pod)
            .or_default()
            .push((key, view));
    }

    fn remove_aai(&self, key: &NsName) {
        let Some(pod) = self.aai_pod.write().remove(key) else {
            return;
        };
        let mut a = self.assigned.write();
        if let Some(list) = a.get_mut(&pod) {
            list.retain(|(k, _)| k != key);
            if list.is_empty() {
                a.remove(&pod);
            }
        }
    }
}

impl Watched for Shared {
    fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    fn changed(&self) {
        Shared::changed(self);
    }
}

pub use podid_k8s::views::{identity_view, pod_entry};

fn aai_view(a: &AzureAssignedIdentity) -> Option<(NsName, NsName, AssignedView)> {
    let id = a.spec.azure_identity_ref.as_ref()?;
    let state = podid_k8s::views::assigned_state(a);
    Some((
        key(a),
        (a.spec.pod_namespace.clone(), a.spec.pod.clone()),
        AssignedView {
            identity: identity_view(id),
            state,
        },
    ))
}

/// Start the watches the mode needs. They run until the returned handles are aborted.
pub fn spawn_watches(
    client: kube::Client,
    shared: Arc<Shared>,
    node: &str,
    mode: Mode,
    scale_features: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut pumps = Pumps::new(client, shared);
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    pumps.watch(
        wc,
        Kind::Pods,
        |p: Pod| pod_entry(&p),
        |s: &Shared, ev| {
            let mut ix = s.pods.write();
            match ev {
                Ev::Apply(p) => ix.apply(p),
                Ev::Delete(p) => ix.delete(&p.namespace, &p.name),
                Ev::Reset(ps) => ix.reset(ps),
            }
        },
    );
    if mode == Mode::Standard {
        let mut wc = watcher::Config::default();
        if scale_features {
            wc = wc.labels(&format!("{NODENAME_LABEL}={node}"));
        }
        pumps.watch(
            wc,
            Kind::Assigned,
            |a: AzureAssignedIdentity| (key(&a), aai_view(&a)),
            |s: &Shared, ev| match ev {
                Ev::Apply((k, Some((_, pod, v)))) => s.apply_aai(k, pod, v),
                Ev::Apply((k, None)) | Ev::Delete((k, _)) => s.remove_aai(&k),
                Ev::Reset(all) => {
                    s.assigned.write().clear();
                    s.aai_pod.write().clear();
                    for (k, v) in all {
                        if let Some((_, pod, v)) = v {
                            s.apply_aai(k, pod, v);
                        }
                    }
                }
            },
        );
    }
    pumps.watch(
        watcher::Config::default(),
        Kind::Bindings,
        |b: AzureIdentityBinding| (key(&b), podid_k8s::views::binding_view(&b)),
        |s: &Shared, ev| {
            let mut m = s.bindings.write();
            match ev {
                Ev::Apply((k, b)) => {
                    m.insert(k, b);
                }
                Ev::Delete((k, _)) => {
                    m.remove(&k);
                }
                Ev::Reset(all) => *m = all.into_iter().collect(),
            }
            *s.binding_snapshot.write() = Arc::new(m.values().cloned().collect());
        },
    );
    pumps.watch(
        watcher::Config::default(),
        Kind::Identities,
        |i: AzureIdentity| (key(&i), identity_view(&i)),
        |s: &Shared, ev| {
            let mut m = s.identities.write();
            match ev {
                Ev::Apply((k, i)) => {
                    m.insert(k, i);
                }
                Ev::Delete((k, _)) => {
                    m.remove(&k);
                }
                Ev::Reset(all) => *m = all.into_iter().collect(),
            }
        },
    );
    pumps.watch(
        watcher::Config::default(),
        Kind::Exceptions,
        |e: AzurePodIdentityException| (key(&e), e.spec.pod_labels.clone()),
        |s: &Shared, ev| {
            let mut m = s.exceptions.write();
            match ev {
                Ev::Apply((k, l)) => {
                    m.insert(k, l);
                }
                Ev::Delete((k, _)) => {
                    m.remove(&k);
                }
                Ev::Reset(all) => *m = all.into_iter().collect(),
            }
        },
    );
    pumps.into_tasks()
}
