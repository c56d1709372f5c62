//! The doctor's inputs: the pod, the objects that decide its identities, the agent's settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::nmi::decide::{Caller, Policy, WaitBudget};
use crate::nmi::request::Wanted;
use crate::nmi::select::{AssignedState, BindingView, IdentityView};

// === settings ===

/// The agent's settings that change its decision, and the identity a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Operation mode.
    pub mode: Mode,
    /// `--forceNamespaced` (or `FORCENAMESPACED=true`).
    pub force_namespaced: bool,
    /// `--MICNamespace`: controller pods there (ReplicaSet `mic*`) get node tokens directly.
    pub mic_namespace: String,
    /// The identity asked for (`client_id=`, `mi_res_id=`), or any.
    pub wanted: Wanted,
    /// Cluster identity protection in force on the agent.
    pub protected: crate::protect::ProtectedIdentities,
}

impl Settings {
    /// Namespaced matching in effect (managed mode always matches in the pod's namespace).
    #[must_use]
    pub fn namespaced(&self) -> bool {
        self.policy().namespaced()
    }

    /// The agent's policy for these settings. "Now", not "eventually": the doctor asks the machine at the start
    /// of a request, with a wait budget that has not run out, and reads a wait as "not served now".
    #[must_use]
    pub fn policy(&self) -> Policy {
        Policy {
            mode: self.mode,
            force_namespaced: self.force_namespaced,
            mic_namespace: self.mic_namespace.clone(),
            protected: self.protected.clone(),
            wait: WaitBudget {
                retry_created: 1,
                retry_assigned: 1,
                retry_interval_secs: 1,
            },
        }
    }
}

// === inputs ===

/// What decides a request from a live caller: the part of a pod both the API and the agent's index know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerFacts {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels (the `aadpodidbinding` label and exception labels).
    pub labels: BTreeMap<String, String>,
    /// First owner reference of kind ReplicaSet (the controller-pod heuristic).
    pub replicaset: Option<String>,
    /// `spec.serviceAccountName` (federated mode).
    pub service_account: String,
    /// `spec.nodeName` (AAIs for another node are not this pod's on this node).
    pub node: String,
}

/// A pod as the API server shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodFacts {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `status.phase` (empty when not reported yet).
    pub phase: String,
    /// `status.podIPs` (or `status.podIP`).
    pub pod_ips: Vec<String>,
    /// `spec.nodeName` (empty: not scheduled).
    pub node_name: String,
    /// `spec.hostNetwork`.
    pub host_network: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// First owner reference of kind ReplicaSet.
    pub replicaset: Option<String>,
    /// `spec.serviceAccountName` (`default` when empty).
    pub service_account: String,
}

impl CallerFacts {
    /// The caller as the agent's decision takes it.
    #[must_use]
    pub fn view(&self) -> Caller<'_> {
        Caller {
            namespace: &self.namespace,
            name: &self.name,
            labels: &self.labels,
            replicaset: self.replicaset.as_deref(),
            service_account: &self.service_account,
        }
    }
}

impl PodFacts {
    /// The caller part of the pod.
    #[must_use]
    pub fn caller(&self) -> CallerFacts {
        CallerFacts {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            replicaset: self.replicaset.clone(),
            service_account: self.service_account.clone(),
            node: self.node_name.clone(),
        }
    }
}

/// One AzureAssignedIdentity of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedFacts {
    /// Namespace of the AAI.
    pub namespace: String,
    /// Name of the AAI.
    pub name: String,
    /// Its state as the agent reads it.
    pub state: AssignedState,
    /// `status.status` as written (`""` legacy, `Created`, `Assigned`, `Unassigned`, ...).
    pub status: String,
    /// `spec.nodename`; `None` when the source does not say (the agent only holds AAIs it uses).
    pub node: Option<String>,
    /// The embedded identity (`spec.azureIdentityRef`); `None` when the AAI has none (the agent ignores it).
    pub identity: Option<IdentityView>,
}

/// One AzurePodIdentityException.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionFacts {
    /// Namespace (only the pod's namespace counts).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.podLabels`.
    pub pod_labels: BTreeMap<String, String>,
}

/// The objects that decide a pod's identities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterFacts {
    /// Every AzureIdentityBinding (all namespaces).
    pub bindings: Vec<BindingView>,
    /// Every AzureIdentity by (namespace, name).
    pub identities: BTreeMap<(String, String), IdentityView>,
    /// False when the source does not hold AzureIdentities (the agent in standard mode does not watch them):
    /// identities are then "unknown", never "missing".
    pub identities_known: bool,
    /// The pod's AzureAssignedIdentities (others are ignored).
    pub assigned: Vec<AssignedFacts>,
    /// AzurePodIdentityExceptions (those outside the pod's namespace are ignored).
    pub exceptions: Vec<ExceptionFacts>,
}
