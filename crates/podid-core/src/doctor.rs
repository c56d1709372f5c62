//! `podid doctor`: why a pod would, or would not, get a token right now, in plain words.
//!
//! # Model
//!
//! The input is what the API server (or the node agent's watches) says about one pod and the objects that decide
//! its identities: the pod itself ([`PodFacts`], or only the caller part, [`CallerFacts`], when the agent's index
//! already vouches that the pod is a live caller), every AzureIdentityBinding and AzureIdentity, the pod's
//! AzureAssignedIdentities (AAIs) and the AzurePodIdentityExceptions of its namespace ([`ClusterFacts`]), and the
//! agent's settings ([`Settings`]: mode, namespaced matching, the identity a request asks for). The output is a
//! [`Diagnosis`]: the `aadpodidbinding` label, the bindings whose selector matches it (also those only
//! non-namespaced matching would use), the identities they name and whether each is usable, the pod's AAIs and
//! their status, the exception that applies, and a [`Verdict`]: a token would be served (which identity, which
//! client ID), or the request would be refused, with a [`Reason`] that has one plain sentence
//! ([`Reason::message`]) and one "what to do" line ([`Reason::hint`]).
//!
//! # Invariants
//!
//! - **One source of truth.** The verdict is computed with the agent's own rules from [`crate::nmi::select`]
//!   (`is_excepted`, `is_controller_pod`, `standard_fast_refusal`, `eval_assigned`, `bound_identities`, `choose`)
//!   in the agent's order: pod checks, exceptions, `object_id`, then the mode's selection, then the identity's
//!   fetchability. The doctor only adds the *why*: when the agent would refuse, the reason names the object to fix.
//!   The "why no AAI yet" part follows the controller's rules ([`crate::assign::is_valid_resource_id`], namespaced
//!   scope, the AAI name `<pod>-<podNamespace>-<identity>` in `default` unless namespaced).
//! - **"Now", not "eventually".** An AAI still `Created` makes the agent wait (up to its budget) and then refuse;
//!   the doctor reports it as a refusal with the reason, since nothing is served until the controller acts.
//! - **Pure and total.** No IO, no clock; every input gives a diagnosis, never a panic.
//! - **No secrets.** Inputs carry no token or secret (an identity's `clientPassword` is only a reference), so no
//!   output can show one. Client IDs are identifiers, not secrets, and are shown in full (the doctor is an
//!   operator's tool; the agent's wire replies keep upstream's redaction).
//!
//! # The agent's view
//!
//! The agent serves a read-only JSON view of one caller on its probe port ([`AgentView`], built by `podid-agent`
//! with [`diagnose_caller`] from its watched state); `podid doctor` fetches it and shows it next to its own
//! diagnosis, so a disagreement (watch lag, a pod missing from the node's index, another mode) is visible.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::assign::{assigned_name, is_valid_resource_id};
use crate::nmi::request::Wanted;
use crate::nmi::select::{
    AssignedEval, AssignedState, AssignedView, BindingView, IdentityView, bound_identities, choose,
    eval_assigned, is_controller_pod, is_excepted, standard_fast_refusal, without_protected,
};

/// Pod label whose value is matched against `AzureIdentityBinding.spec.selector` (as `podid_k8s::POD_LABEL_KEY`).
pub const POD_LABEL_KEY: &str = "aadpodidbinding";
/// Namespace of AAIs outside namespaced mode (upstream keeps them in `default`).
pub const DEFAULT_ASSIGNED_NAMESPACE: &str = "default";
/// Most selectors listed in a "add label" hint (a hint, not an inventory).
const MAX_HINT_SELECTORS: usize = 8;

// === settings ===

/// Operation mode of the agent whose decision is diagnosed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Identities come from the pod's AzureAssignedIdentities (written by the controller).
    Standard,
    /// Identities come from bindings and identities in the pod's namespace (assigned to nodes out of band).
    Managed,
    /// podid: identities come from bindings; tokens from a federated credential trusting the pod's service account.
    Federated,
}

impl Mode {
    /// The flag value (`standard`, `managed`, `federated`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standard => "standard",
            Mode::Managed => "managed",
            Mode::Federated => "federated",
        }
    }

    /// Parses a flag value, case-insensitively (as `--operation-mode`).
    pub fn parse(s: &str) -> Result<Mode, UnknownMode> {
        match s.to_ascii_lowercase().as_str() {
            "standard" => Ok(Mode::Standard),
            "managed" => Ok(Mode::Managed),
            "federated" => Ok(Mode::Federated),
            _ => Err(UnknownMode(s.to_string())),
        }
    }
}

/// A mode name that is not `standard`, `managed` or `federated`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation mode {0:?}: use standard, managed or federated")]
pub struct UnknownMode(pub String);

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
        self.force_namespaced || self.mode == Mode::Managed
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

// === outputs ===

/// Why a pod bypasses identity selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExceptionMatch {
    /// An AzurePodIdentityException in the pod's namespace matches one of its labels.
    Exception {
        /// The exception's name.
        name: String,
        /// The matching label, `key=value`.
        label: String,
    },
    /// The controller heuristic: namespace `--MICNamespace` and a ReplicaSet named `mic*`.
    ControllerPod {
        /// The ReplicaSet.
        replicaset: String,
    },
}

/// A binding whose selector equals the pod's label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingMatch {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.azureIdentity` (an identity in the binding's namespace).
    pub identity: String,
    /// False when namespaced matching ignores it (it is in another namespace than the pod).
    pub in_scope: bool,
}

/// Why an AzureIdentity cannot give the pod a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum IdentityProblem {
    /// `spec.type` is not 0, 1 or 2.
    UnsupportedType {
        /// The type.
        id_type: i64,
    },
    /// Type 0 with a `spec.resourceID` the controller rejects (standard mode: it ignores the identity).
    InvalidResourceId {
        /// The resource ID.
        resource_id: String,
    },
    /// Federated mode without `spec.tenantID`.
    NoTenant,
    /// Service principal (types 1, 2) without `spec.clientPassword`.
    NoSecretRef,
}

/// What became of the identity a matching binding names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IdentityStatus {
    /// Exists and is usable for this pod.
    Usable,
    /// No AzureIdentity of that name in the binding's namespace.
    Missing,
    /// The source does not hold identities (the agent in standard mode).
    Unknown,
    /// Namespaced (flag, managed mode or annotation) and not in the pod's namespace.
    OutOfScope,
    /// Exists but cannot give a token.
    Unusable {
        /// Why.
        problem: IdentityProblem,
    },
}

/// An identity named by a matching binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityCheck {
    /// The binding, `namespace/name`.
    pub binding: String,
    /// Namespace of the identity (the binding's).
    pub namespace: String,
    /// Name of the identity.
    pub name: String,
    /// The binding is in scope.
    pub in_scope: bool,
    /// Found, missing, usable...
    pub status: IdentityStatus,
    /// `spec.type` when found.
    pub id_type: Option<i64>,
    /// `spec.clientID` when found.
    pub client_id: Option<String>,
    /// Standard mode: the AAI the controller keeps for it, `namespace/name`.
    pub expected_assigned: Option<String>,
}

/// One of the pod's AAIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedCheck {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `status.status` (empty: legacy, used like `Assigned`).
    pub status: String,
    /// The agent may use it now (`Assigned` or legacy, for the pod's node, with an identity).
    pub usable: bool,
    /// The embedded identity, `namespace/name`.
    pub identity: Option<String>,
    /// Its client ID.
    pub client_id: Option<String>,
    /// `spec.nodename` when known.
    pub node: Option<String>,
    /// False when it names another node than the pod's.
    pub on_pod_node: bool,
}

/// An identity a token would be served for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedIdentity {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.clientID`.
    pub client_id: String,
    /// `spec.type`.
    pub id_type: i64,
    /// Standard mode: the AAI's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// How the token would be obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Via {
    /// The pod is excepted: the node's IMDS answers directly.
    Exception,
    /// Standard mode: an `Assigned` AAI.
    Assigned,
    /// Managed mode: a binding in the pod's namespace (identity assigned to the node out of band).
    Binding,
    /// Federated mode: a federated credential trusting the pod's service account.
    Federated,
}

/// Why a token request would be refused now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// No `spec.nodeName`.
    NotScheduled,
    /// `spec.hostNetwork: true`.
    HostNetwork,
    /// Phase is not Pending or Running.
    NotRunning {
        /// The phase.
        phase: String,
    },
    /// No pod IP yet.
    NoPodIp,
    /// `object_id` requests.
    UnsupportedRequest,
    /// No `aadpodidbinding` label.
    NoLabel {
        /// Selectors of bindings in scope (a few, for the hint).
        selectors: Vec<String>,
    },
    /// No binding has the pod's selector.
    NoBinding {
        /// The selector.
        selector: String,
        /// Namespaced matching: the only namespace searched.
        namespace: Option<String>,
    },
    /// Bindings with the selector exist only outside the pod's namespace, and matching is namespaced.
    BindingOutOfScope {
        /// The selector.
        selector: String,
        /// The pod's namespace.
        namespace: String,
        /// The bindings, `namespace/name`.
        bindings: Vec<String>,
    },
    /// A matching binding names an identity that does not exist.
    IdentityMissing {
        /// The binding, `namespace/name`.
        binding: String,
        /// The identity's name.
        identity: String,
        /// The namespace it must be in (the binding's).
        namespace: String,
    },
    /// The bound identities are namespaced elsewhere.
    IdentityOutOfScope {
        /// The identities, `namespace/name`.
        identities: Vec<String>,
        /// The pod's namespace.
        namespace: String,
    },
    /// The chosen identity cannot give a token.
    IdentityUnusable {
        /// The identity, `namespace/name`.
        identity: String,
        /// Why.
        problem: IdentityProblem,
    },
    /// Standard mode: bound, but no AAI exists for the pod yet.
    NotAssignedYet {
        /// The AAIs the controller should create, `namespace/name`.
        expected: Vec<String>,
    },
    /// Standard mode: the AAIs are still `Created`.
    AssignedCreated {
        /// The AAIs, `namespace/name`.
        assigned: Vec<String>,
    },
    /// Standard mode: the AAIs are `Unassigned` (or another status).
    AssignedUnassigned {
        /// The AAIs, `namespace/name`.
        assigned: Vec<String>,
    },
    /// Standard mode: the pod's AAIs name another node.
    AssignedOnOtherNode {
        /// The AAIs, `namespace/name`.
        assigned: Vec<String>,
        /// The pod's node.
        node: String,
    },
    /// Cluster identity protection refuses the identity (the cluster's own, or deny-listed).
    IdentityProtected {
        /// The refusal as the agent words it.
        message: String,
    },
    /// The requested identity is not among the pod's.
    RequestedNotBound {
        /// What was asked for, as given.
        requested: String,
        /// Client IDs the pod may ask for.
        available: Vec<String>,
    },
}

/// The answer to "would a token request from this pod succeed now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Yes.
    Token {
        /// How.
        via: Via,
        /// The identity served (the first usable one, or the requested one); `None` for excepted pods (the node's
        /// IMDS decides).
        chosen: Option<ServedIdentity>,
        /// Other identities the pod may ask for by client ID.
        others: Vec<ServedIdentity>,
    },
    /// No.
    Refused(Reason),
}

/// Everything the doctor found out about one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// The pod's node.
    pub node: String,
    /// Mode diagnosed.
    pub mode: Mode,
    /// Namespaced matching in effect.
    pub namespaced: bool,
    /// The identity requested (`client_id ...`), if any.
    pub requested: Option<String>,
    /// The `aadpodidbinding` label value.
    pub label: Option<String>,
    /// Exception or controller heuristic that applies.
    pub exception: Option<ExceptionMatch>,
    /// Bindings whose selector equals the label (all namespaces).
    pub bindings: Vec<BindingMatch>,
    /// The identities those bindings name.
    pub identities: Vec<IdentityCheck>,
    /// The pod's AAIs.
    pub assigned: Vec<AssignedCheck>,
    /// Remarks that do not change the verdict.
    pub notes: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
}

// === the decision ===

/// Problems of the pod itself that keep every request from being served (checked before identities).
#[must_use]
pub fn pod_problem(pod: &PodFacts) -> Option<Reason> {
    if pod.node_name.is_empty() {
        return Some(Reason::NotScheduled);
    }
    if pod.host_network {
        return Some(Reason::HostNetwork);
    }
    if pod.phase != "Pending" && pod.phase != "Running" {
        return Some(Reason::NotRunning {
            phase: pod.phase.clone(),
        });
    }
    if pod.pod_ips.iter().all(|ip| ip.trim().is_empty()) {
        return Some(Reason::NoPodIp);
    }
    None
}

/// Diagnoses a pod from the API's objects: pod checks first, then [`diagnose_caller`].
#[must_use]
pub fn diagnose(pod: &PodFacts, cluster: &ClusterFacts, settings: &Settings) -> Diagnosis {
    let mut d = diagnose_inner(&pod.caller(), cluster, settings, pod_problem(pod));
    if pod.deleting {
        d.notes.push(
            "the pod is being deleted: the controller releases its identities once it is gone"
                .into(),
        );
    }
    d
}

/// Diagnoses a request from a pod already known to be a live caller (scheduled, Pending or Running, with an IP,
/// not on the host network): the agent's decision for it, explained.
#[must_use]
pub fn diagnose_caller(
    caller: &CallerFacts,
    cluster: &ClusterFacts,
    settings: &Settings,
) -> Diagnosis {
    diagnose_inner(caller, cluster, settings, None)
}

/// The diagnosis; `refused` (a problem of the pod itself) overrides the identity decision, whose details are
/// still reported.
fn diagnose_inner(
    caller: &CallerFacts,
    cluster: &ClusterFacts,
    settings: &Settings,
    refused: Option<Reason>,
) -> Diagnosis {
    let label = caller
        .labels
        .get(POD_LABEL_KEY)
        .filter(|l| !l.is_empty())
        .cloned();
    let namespaced = settings.namespaced();
    let bindings = matching_bindings(caller, label.as_deref(), &cluster.bindings, namespaced);
    let identities = identity_checks(caller, &bindings, cluster, settings);
    let assigned = assigned_checks(caller, &cluster.assigned);
    let exception = exception_match(caller, cluster, settings);
    let ctx = Ctx {
        caller,
        cluster,
        settings,
        label: label.as_deref(),
        bindings: &bindings,
        identities: &identities,
    };
    let verdict = if let Some(r) = refused {
        Verdict::Refused(r)
    } else if exception.is_some() {
        match settings.wanted {
            Wanted::ObjectId(_) => Verdict::Refused(Reason::UnsupportedRequest),
            _ => Verdict::Token {
                via: Via::Exception,
                chosen: None,
                others: Vec::new(),
            },
        }
    } else if let Wanted::ObjectId(_) = settings.wanted {
        Verdict::Refused(Reason::UnsupportedRequest)
    } else if settings.mode == Mode::Standard {
        ctx.standard()
    } else {
        ctx.bound()
    };
    let notes = notes(&ctx, &assigned, exception.as_ref(), &verdict);
    Diagnosis {
        namespace: caller.namespace.clone(),
        pod: caller.name.clone(),
        node: caller.node.clone(),
        mode: settings.mode,
        namespaced,
        requested: requested_text(&settings.wanted),
        label,
        exception,
        bindings,
        identities,
        assigned,
        notes,
        verdict,
    }
}

fn requested_text(w: &Wanted) -> Option<String> {
    match w {
        Wanted::Any => None,
        Wanted::ClientId(c) => Some(format!("client_id {c}")),
        Wanted::ResourceId(r) => Some(format!("mi_res_id {r}")),
        Wanted::ObjectId(o) => Some(format!("object_id {o}")),
    }
}

fn matching_bindings(
    caller: &CallerFacts,
    label: Option<&str>,
    bindings: &[BindingView],
    namespaced: bool,
) -> Vec<BindingMatch> {
    let Some(label) = label else {
        return Vec::new();
    };
    let mut out: Vec<BindingMatch> = bindings
        .iter()
        .filter(|b| b.selector == label)
        .map(|b| BindingMatch {
            namespace: b.namespace.clone(),
            name: b.name.clone(),
            identity: b.identity.clone(),
            in_scope: !namespaced || b.namespace == caller.namespace,
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
    out
}

fn identity_checks(
    caller: &CallerFacts,
    bindings: &[BindingMatch],
    cluster: &ClusterFacts,
    settings: &Settings,
) -> Vec<IdentityCheck> {
    bindings
        .iter()
        .map(|b| {
            let found = cluster
                .identities
                .get(&(b.namespace.clone(), b.identity.clone()));
            let status = match found {
                None if !cluster.identities_known => IdentityStatus::Unknown,
                None => IdentityStatus::Missing,
                Some(id) => identity_status(id, &caller.namespace, settings),
            };
            let scoped_ns = settings.namespaced() || found.is_some_and(|i| i.namespaced);
            let expected_assigned = (settings.mode == Mode::Standard
                && matches!(status, IdentityStatus::Usable | IdentityStatus::Unknown))
            .then(|| {
                let ns = if scoped_ns {
                    b.namespace.as_str()
                } else {
                    DEFAULT_ASSIGNED_NAMESPACE
                };
                format!(
                    "{ns}/{}",
                    assigned_name(&caller.name, &caller.namespace, &b.identity)
                )
            });
            IdentityCheck {
                binding: format!("{}/{}", b.namespace, b.name),
                namespace: b.namespace.clone(),
                name: b.identity.clone(),
                in_scope: b.in_scope,
                status,
                id_type: found.map(|i| i.id_type),
                client_id: found.map(|i| i.client_id.clone()),
                expected_assigned,
            }
        })
        .collect()
}

/// Whether an existing identity can serve a pod of `pod_namespace` (scope first, then what the mode needs).
fn identity_status(id: &IdentityView, pod_namespace: &str, settings: &Settings) -> IdentityStatus {
    if (settings.namespaced() || id.namespaced) && id.namespace != pod_namespace {
        return IdentityStatus::OutOfScope;
    }
    if settings.mode == Mode::Standard && id.id_type == 0 && !is_valid_resource_id(&id.resource_id)
    {
        return IdentityStatus::Unusable {
            problem: IdentityProblem::InvalidResourceId {
                resource_id: id.resource_id.clone(),
            },
        };
    }
    match fetch_problem(id, settings.mode) {
        Some(problem) => IdentityStatus::Unusable { problem },
        None => IdentityStatus::Usable,
    }
}

/// What keeps the agent from fetching a token for a chosen identity (the checks of its `fetch`).
fn fetch_problem(id: &IdentityView, mode: Mode) -> Option<IdentityProblem> {
    if mode == Mode::Federated {
        return id
            .tenant_id
            .trim()
            .is_empty()
            .then_some(IdentityProblem::NoTenant);
    }
    match id.id_type {
        0 => None,
        1 | 2 if id.secret_ref.is_none() => Some(IdentityProblem::NoSecretRef),
        1 | 2 => None,
        t => Some(IdentityProblem::UnsupportedType { id_type: t }),
    }
}

fn state_text(status: &str) -> String {
    if status.is_empty() {
        "Assigned (legacy empty status)".into()
    } else {
        status.to_string()
    }
}

fn assigned_checks(caller: &CallerFacts, assigned: &[AssignedFacts]) -> Vec<AssignedCheck> {
    let mut out: Vec<AssignedCheck> = assigned
        .iter()
        .map(|a| {
            let on_pod_node = on_node(a, caller);
            AssignedCheck {
                namespace: a.namespace.clone(),
                name: a.name.clone(),
                status: a.status.clone(),
                usable: on_pod_node
                    && a.identity.is_some()
                    && matches!(a.state, AssignedState::Assigned | AssignedState::Legacy),
                identity: a
                    .identity
                    .as_ref()
                    .map(|i| format!("{}/{}", i.namespace, i.name)),
                client_id: a.identity.as_ref().map(|i| i.client_id.clone()),
                node: a.node.clone(),
                on_pod_node,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

fn on_node(a: &AssignedFacts, caller: &CallerFacts) -> bool {
    match &a.node {
        None => true,
        Some(n) => caller.node.is_empty() || n.is_empty() || *n == caller.node,
    }
}

fn exception_match(
    caller: &CallerFacts,
    cluster: &ClusterFacts,
    settings: &Settings,
) -> Option<ExceptionMatch> {
    let mut local: Vec<&ExceptionFacts> = cluster
        .exceptions
        .iter()
        .filter(|e| e.namespace == caller.namespace)
        .collect();
    local.sort_by(|a, b| a.name.cmp(&b.name));
    if is_excepted(&caller.labels, local.iter().map(|e| &e.pod_labels)) {
        for e in &local {
            for (k, v) in &e.pod_labels {
                if let Some(pv) = caller.labels.get(k)
                    && pv.eq_ignore_ascii_case(v)
                {
                    return Some(ExceptionMatch::Exception {
                        name: e.name.clone(),
                        label: format!("{k}={pv}"),
                    });
                }
            }
        }
    }
    if is_controller_pod(
        &caller.namespace,
        caller.replicaset.as_deref(),
        &settings.mic_namespace,
    ) {
        return Some(ExceptionMatch::ControllerPod {
            replicaset: caller.replicaset.clone().unwrap_or_default(),
        });
    }
    None
}

fn served(id: &IdentityView, state: Option<String>) -> ServedIdentity {
    ServedIdentity {
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        client_id: id.client_id.clone(),
        id_type: id.id_type,
        state,
    }
}

fn matches_wanted(id: &IdentityView, wanted: &Wanted) -> bool {
    match wanted {
        Wanted::Any => true,
        Wanted::ClientId(c) => id.client_id.eq_ignore_ascii_case(c),
        Wanted::ResourceId(r) => id.resource_id.eq_ignore_ascii_case(r),
        Wanted::ObjectId(_) => false,
    }
}

fn requested_raw(w: &Wanted) -> String {
    match w {
        Wanted::Any => String::new(),
        Wanted::ClientId(s) | Wanted::ResourceId(s) | Wanted::ObjectId(s) => s.clone(),
    }
}

fn names(v: &[&AssignedFacts]) -> Vec<String> {
    v.iter()
        .map(|a| format!("{}/{}", a.namespace, a.name))
        .collect()
}

fn sorted_unique(v: impl IntoIterator<Item = String>) -> Vec<String> {
    v.into_iter()
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect()
}

/// Shared inputs of the verdict functions.
struct Ctx<'a> {
    caller: &'a CallerFacts,
    cluster: &'a ClusterFacts,
    settings: &'a Settings,
    label: Option<&'a str>,
    bindings: &'a [BindingMatch],
    identities: &'a [IdentityCheck],
}

impl Ctx<'_> {
    fn ns(&self) -> &str {
        &self.caller.namespace
    }

    /// The label part of a refusal: no label, no binding, or bindings only outside the namespace.
    fn label_reason(&self) -> Reason {
        let namespaced = self.settings.namespaced();
        let Some(selector) = self.label else {
            let selectors = sorted_unique(
                self.cluster
                    .bindings
                    .iter()
                    .filter(|b| !namespaced || b.namespace == self.ns())
                    .map(|b| b.selector.clone())
                    .filter(|s| !s.is_empty()),
            )
            .into_iter()
            .take(MAX_HINT_SELECTORS)
            .collect();
            return Reason::NoLabel { selectors };
        };
        if !self.bindings.is_empty() && self.bindings.iter().all(|b| !b.in_scope) {
            return Reason::BindingOutOfScope {
                selector: selector.to_string(),
                namespace: self.ns().to_string(),
                bindings: self
                    .bindings
                    .iter()
                    .map(|b| format!("{}/{}", b.namespace, b.name))
                    .collect(),
            };
        }
        Reason::NoBinding {
            selector: selector.to_string(),
            namespace: namespaced.then(|| self.ns().to_string()),
        }
    }

    /// The refusal when every in-scope binding names an identity that is missing, out of scope or rejected by
    /// the controller; `None` when some in-scope identity is fine (or unknown to the source).
    fn identity_reason(&self, wanted: &Wanted) -> Option<Reason> {
        let in_scope: Vec<&IdentityCheck> = self.identities.iter().filter(|c| c.in_scope).collect();
        if in_scope.is_empty() {
            return Some(self.label_reason());
        }
        let blocks_assignment = |c: &IdentityCheck| {
            matches!(
                c.status,
                IdentityStatus::Missing
                    | IdentityStatus::OutOfScope
                    | IdentityStatus::Unusable {
                        problem: IdentityProblem::InvalidResourceId { .. }
                    }
            )
        };
        if in_scope.iter().any(|c| !blocks_assignment(c)) {
            if wanted.is_specific() && self.cluster.identities_known {
                let any = in_scope.iter().any(|c| {
                    !blocks_assignment(c)
                        && self
                            .cluster
                            .identities
                            .get(&(c.namespace.clone(), c.name.clone()))
                            .is_some_and(|id| matches_wanted(id, wanted))
                });
                if !any {
                    return Some(self.not_bound(wanted));
                }
            }
            return None;
        }
        let out_of_scope: Vec<String> = in_scope
            .iter()
            .filter(|c| c.status == IdentityStatus::OutOfScope)
            .map(|c| format!("{}/{}", c.namespace, c.name))
            .collect();
        let first = in_scope[0];
        Some(match &first.status {
            IdentityStatus::Unusable { problem } => Reason::IdentityUnusable {
                identity: format!("{}/{}", first.namespace, first.name),
                problem: problem.clone(),
            },
            IdentityStatus::OutOfScope => Reason::IdentityOutOfScope {
                identities: out_of_scope,
                namespace: self.ns().to_string(),
            },
            _ => Reason::IdentityMissing {
                binding: first.binding.clone(),
                identity: first.name.clone(),
                namespace: first.namespace.clone(),
            },
        })
    }

    /// The requested identity is not the pod's: list what it may ask for.
    fn not_bound(&self, wanted: &Wanted) -> Reason {
        let from_aais = self
            .cluster
            .assigned
            .iter()
            .filter_map(|a| a.identity.as_ref().map(|i| i.client_id.clone()));
        let from_bindings = self
            .identities
            .iter()
            .filter(|c| c.in_scope && c.status == IdentityStatus::Usable)
            .filter_map(|c| c.client_id.clone());
        let available = if self.settings.mode == Mode::Standard {
            sorted_unique(from_aais.chain(from_bindings))
        } else {
            sorted_unique(from_bindings)
        };
        Reason::RequestedNotBound {
            requested: requested_raw(wanted),
            available,
        }
    }

    /// `choose` failed on a non-empty candidate list: the namespaced filter removed them all, or the requested
    /// identity is not among them.
    fn choose_failure(&self, candidates: &[IdentityView], namespaced: bool) -> Reason {
        let wanted = &self.settings.wanted;
        let scoped: Vec<&IdentityView> = candidates
            .iter()
            .filter(|id| !(namespaced || id.namespaced) || id.namespace == self.ns())
            .collect();
        if scoped.is_empty() && !candidates.is_empty() {
            return Reason::IdentityOutOfScope {
                identities: candidates
                    .iter()
                    .map(|i| format!("{}/{}", i.namespace, i.name))
                    .collect(),
                namespace: self.ns().to_string(),
            };
        }
        if wanted.is_specific() {
            return self.not_bound(wanted);
        }
        // `choose` on a non-empty scoped list without a request always succeeds; an empty list means nothing is
        // bound at all.
        self.identity_reason(wanted)
            .unwrap_or_else(|| self.label_reason())
    }

    /// A token for `id` unless the agent's fetch would refuse it.
    fn token(
        &self,
        via: Via,
        id: &IdentityView,
        state: Option<String>,
        pool: &[(IdentityView, Option<String>)],
    ) -> Verdict {
        if let Some(problem) = fetch_problem(id, self.settings.mode) {
            return Verdict::Refused(Reason::IdentityUnusable {
                identity: format!("{}/{}", id.namespace, id.name),
                problem,
            });
        }
        let namespaced = self.settings.namespaced();
        let others = pool
            .iter()
            .filter(|(o, _)| !(o.namespace == id.namespace && o.name == id.name))
            .filter(|(o, _)| !(namespaced || o.namespaced) || o.namespace == self.ns())
            .map(|(o, s)| served(o, s.clone()))
            .collect();
        Verdict::Token {
            via,
            chosen: Some(served(id, state)),
            others,
        }
    }

    /// Standard mode: the pod's AAIs decide (the agent's loop, one round, without waiting).
    fn standard(&self) -> Verdict {
        let wanted = &self.settings.wanted;
        let namespaced = self.settings.namespaced();
        let visible: Vec<&AssignedFacts> = self
            .cluster
            .assigned
            .iter()
            .filter(|a| on_node(a, self.caller) && a.identity.is_some())
            .collect();
        let views: Vec<AssignedView> = visible
            .iter()
            .filter_map(|a| {
                a.identity.as_ref().map(|i| AssignedView {
                    identity: i.clone(),
                    state: a.state.clone(),
                })
            })
            .collect();
        if standard_fast_refusal(
            self.ns(),
            &self.caller.name,
            self.label,
            &self.cluster.bindings,
            !views.is_empty(),
            namespaced,
        )
        .is_some()
        {
            return Verdict::Refused(self.label_reason());
        }
        let state_of = |id: &IdentityView| {
            visible
                .iter()
                .find(|a| {
                    a.identity
                        .as_ref()
                        .is_some_and(|i| i.namespace == id.namespace && i.name == id.name)
                })
                .map(|a| state_text(&a.status))
        };
        match eval_assigned(&views, wanted) {
            AssignedEval::Ready(list) => {
                let list = match without_protected(list, wanted, &self.settings.protected) {
                    Ok(l) => l,
                    Err(message) => return Verdict::Refused(Reason::IdentityProtected { message }),
                };
                match choose(&list, wanted, self.ns(), &self.caller.name, namespaced) {
                    Ok(id) => {
                        let usable = match eval_assigned(&views, &Wanted::Any) {
                            AssignedEval::Ready(all) => all,
                            AssignedEval::Pending { .. } => Vec::new(),
                        };
                        let pool: Vec<(IdentityView, Option<String>)> = usable
                            .into_iter()
                            .map(|i| {
                                let s = state_of(&i);
                                (i, s)
                            })
                            .collect();
                        self.token(Via::Assigned, &id, state_of(&id), &pool)
                    }
                    Err(_) => Verdict::Refused(self.choose_failure(&list, namespaced)),
                }
            }
            AssignedEval::Pending { created: true } => {
                let created: Vec<&AssignedFacts> = visible
                    .iter()
                    .copied()
                    .filter(|a| a.state == AssignedState::Created)
                    .filter(|a| {
                        a.identity
                            .as_ref()
                            .is_some_and(|i| matches_wanted(i, wanted))
                    })
                    .collect();
                Verdict::Refused(Reason::AssignedCreated {
                    assigned: names(&created),
                })
            }
            AssignedEval::Pending { created: false } => {
                Verdict::Refused(self.standard_pending(&visible))
            }
        }
    }

    /// Standard mode, nothing usable and nothing `Created` for the request: say what is in the way.
    fn standard_pending(&self, visible: &[&AssignedFacts]) -> Reason {
        let wanted = &self.settings.wanted;
        let matching = |a: &&AssignedFacts| {
            a.identity
                .as_ref()
                .is_some_and(|i| matches_wanted(i, wanted))
        };
        let unassigned: Vec<&AssignedFacts> = visible
            .iter()
            .copied()
            .filter(matching)
            .filter(|a| a.state == AssignedState::Other)
            .collect();
        if !unassigned.is_empty() {
            return Reason::AssignedUnassigned {
                assigned: names(&unassigned),
            };
        }
        if let Some(r) = self.identity_reason(wanted) {
            return r;
        }
        if wanted.is_specific() && !self.cluster.identities_known && !visible.is_empty() {
            return self.not_bound(wanted);
        }
        let elsewhere: Vec<&AssignedFacts> = self
            .cluster
            .assigned
            .iter()
            .filter(|a| !on_node(a, self.caller))
            .filter(matching)
            .collect();
        if !elsewhere.is_empty() {
            return Reason::AssignedOnOtherNode {
                assigned: names(&elsewhere),
                node: self.caller.node.clone(),
            };
        }
        let expected = sorted_unique(
            self.identities
                .iter()
                .filter(|c| c.in_scope)
                .filter(|c| {
                    !wanted.is_specific()
                        || self
                            .cluster
                            .identities
                            .get(&(c.namespace.clone(), c.name.clone()))
                            .is_none_or(|id| matches_wanted(id, wanted))
                })
                .filter_map(|c| c.expected_assigned.clone()),
        );
        Reason::NotAssignedYet { expected }
    }

    /// Managed and federated modes: bindings and identities decide, no AAIs, no waiting.
    fn bound(&self) -> Verdict {
        let namespaced = self.settings.namespaced();
        if self.label.is_none() {
            return Verdict::Refused(self.label_reason());
        }
        let ids = bound_identities(
            self.ns(),
            self.label,
            &self.cluster.bindings,
            &self.cluster.identities,
            namespaced,
        );
        if ids.is_empty() {
            return Verdict::Refused(
                self.identity_reason(&Wanted::Any)
                    .unwrap_or_else(|| self.label_reason()),
            );
        }
        let ids = match without_protected(ids, &self.settings.wanted, &self.settings.protected) {
            Ok(l) => l,
            Err(message) => return Verdict::Refused(Reason::IdentityProtected { message }),
        };
        let via = if self.settings.mode == Mode::Federated {
            Via::Federated
        } else {
            Via::Binding
        };
        match choose(
            &ids,
            &self.settings.wanted,
            self.ns(),
            &self.caller.name,
            namespaced,
        ) {
            Ok(id) => {
                let pool: Vec<(IdentityView, Option<String>)> =
                    ids.iter().map(|i| (i.clone(), None)).collect();
                self.token(via, &id, None, &pool)
            }
            Err(_) => Verdict::Refused(self.choose_failure(&ids, namespaced)),
        }
    }
}

fn notes(
    ctx: &Ctx<'_>,
    assigned: &[AssignedCheck],
    exception: Option<&ExceptionMatch>,
    verdict: &Verdict,
) -> Vec<String> {
    let mut out = Vec::new();
    let mode = ctx.settings.mode;
    if exception.is_some() {
        out.push(
            "excepted pods bypass identity selection: the node's IMDS answers for any identity assigned to the node"
                .into(),
        );
    }
    let outside: Vec<String> = ctx
        .bindings
        .iter()
        .filter(|b| !b.in_scope)
        .map(|b| format!("{}/{}", b.namespace, b.name))
        .collect();
    if !outside.is_empty() {
        out.push(format!(
            "binding(s) {} would match only without namespaced matching",
            outside.join(", ")
        ));
    }
    if mode != Mode::Standard && !assigned.is_empty() {
        out.push(format!(
            "AzureAssignedIdentities are not used in {} mode",
            mode.as_str()
        ));
    }
    if mode == Mode::Standard && !ctx.settings.namespaced() {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for c in ctx.identities.iter().filter(|c| c.in_scope) {
            match seen.get(c.name.as_str()) {
                Some(first) if *first != c.namespace => out.push(format!(
                    "AzureIdentity {} exists in both {first} and {} namespaces: their AAIs share one name, the controller keeps the first",
                    c.name, c.namespace
                )),
                _ => {
                    seen.insert(c.name.as_str(), c.namespace.as_str());
                }
            }
        }
    }
    if let Verdict::Token {
        chosen: Some(id), ..
    } = verdict
    {
        match mode {
            Mode::Federated => out.push(format!(
                "Entra also checks that {}/{}'s federated identity credential trusts system:serviceaccount:{}:{}",
                id.namespace,
                id.name,
                ctx.ns(),
                if ctx.caller.service_account.is_empty() {
                    "default"
                } else {
                    &ctx.caller.service_account
                }
            )),
            Mode::Managed if id.id_type == 0 => out.push(format!(
                "managed mode: {}/{} must be assigned to the node's VM or scale set out of band, or IMDS refuses",
                id.namespace, id.name
            )),
            _ => {}
        }
    }
    out
}

// === words ===

fn list(v: &[String]) -> String {
    v.join(", ")
}

impl IdentityProblem {
    fn message(&self, identity: &str) -> String {
        match self {
            IdentityProblem::UnsupportedType { id_type } => {
                format!("AzureIdentity {identity} has spec.type {id_type}, which is not supported")
            }
            IdentityProblem::InvalidResourceId { resource_id } => format!(
                "AzureIdentity {identity} has an invalid spec.resourceID {resource_id:?}: the controller ignores it"
            ),
            IdentityProblem::NoTenant => format!(
                "AzureIdentity {identity} has no spec.tenantID: federated mode exchanges the pod's service-account token in the identity's tenant"
            ),
            IdentityProblem::NoSecretRef => format!(
                "AzureIdentity {identity} is a service principal without a spec.clientPassword secret reference"
            ),
        }
    }

    fn hint(&self, identity: &str) -> String {
        match self {
            IdentityProblem::UnsupportedType { .. } => format!(
                "set spec.type of {identity} to 0 (user-assigned managed identity), 1 (service principal secret) or 2 (service principal certificate)"
            ),
            IdentityProblem::InvalidResourceId { .. } => format!(
                "set spec.resourceID of {identity} to /subscriptions/<sub>/resourcegroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
            ),
            IdentityProblem::NoTenant => format!("set spec.tenantID of {identity}"),
            IdentityProblem::NoSecretRef => format!(
                "set spec.clientPassword {{name, namespace}} of {identity} to the Secret holding the client secret or certificate"
            ),
        }
    }
}

impl Reason {
    /// A stable code (`no_label`, `assigned_created`, ...), the JSON `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotScheduled => "not_scheduled",
            Reason::HostNetwork => "host_network",
            Reason::NotRunning { .. } => "not_running",
            Reason::NoPodIp => "no_pod_ip",
            Reason::UnsupportedRequest => "unsupported_request",
            Reason::NoLabel { .. } => "no_label",
            Reason::NoBinding { .. } => "no_binding",
            Reason::BindingOutOfScope { .. } => "binding_out_of_scope",
            Reason::IdentityMissing { .. } => "identity_missing",
            Reason::IdentityOutOfScope { .. } => "identity_out_of_scope",
            Reason::IdentityUnusable { .. } => "identity_unusable",
            Reason::NotAssignedYet { .. } => "not_assigned_yet",
            Reason::AssignedCreated { .. } => "assigned_created",
            Reason::AssignedUnassigned { .. } => "assigned_unassigned",
            Reason::AssignedOnOtherNode { .. } => "assigned_on_other_node",
            Reason::RequestedNotBound { .. } => "requested_not_bound",
            Reason::IdentityProtected { .. } => "identity_protected",
        }
    }

    /// What is wrong, in one plain sentence.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Reason::NotScheduled => "the pod is not scheduled to a node yet: no agent serves it".into(),
            Reason::HostNetwork => "the pod uses the host network: the agent does not serve hostNetwork pods (their requests to 169.254.169.254 go straight to the node's IMDS)".into(),
            Reason::NotRunning { phase } => format!(
                "the pod is {}: only Pending or Running pods are served",
                if phase.is_empty() { "in no phase yet" } else { phase }
            ),
            Reason::NoPodIp => "the pod has no IP yet: the agent finds callers by their IP".into(),
            Reason::UnsupportedRequest => "object_id requests are not supported by the node agent".into(),
            Reason::NoLabel { .. } => {
                "the pod has no aadpodidbinding label: no identity is bound to it".into()
            }
            Reason::NoBinding {
                selector,
                namespace: Some(ns),
            } => format!("no AzureIdentityBinding in namespace {ns} has selector {selector}"),
            Reason::NoBinding {
                selector,
                namespace: None,
            } => format!("no AzureIdentityBinding in any namespace has selector {selector}"),
            Reason::BindingOutOfScope {
                selector,
                namespace,
                bindings,
            } => format!(
                "the AzureIdentityBinding(s) with selector {selector} ({}) are outside the pod's namespace {namespace}, and namespaced matching only uses bindings in the pod's namespace",
                list(bindings)
            ),
            Reason::IdentityMissing {
                binding,
                identity,
                namespace,
            } => format!(
                "binding {binding} references AzureIdentity {identity}, which does not exist in namespace {namespace}"
            ),
            Reason::IdentityOutOfScope {
                identities,
                namespace,
            } => format!(
                "the bound AzureIdentity ({}) is namespaced (--forceNamespaced, managed mode or the annotation aadpodidentity.k8s.io/Behavior: namespaced) and not in the pod's namespace {namespace}",
                list(identities)
            ),
            Reason::IdentityUnusable { identity, problem } => problem.message(identity),
            Reason::NotAssignedYet { expected } if expected.is_empty() => {
                "no AzureAssignedIdentity exists for this pod yet: the controller has not assigned its identity".into()
            }
            Reason::NotAssignedYet { expected } => format!(
                "no AzureAssignedIdentity exists for this pod yet (expected {}): the controller has not assigned its identity",
                list(expected)
            ),
            Reason::AssignedCreated { assigned } => format!(
                "AzureAssignedIdentity {} is still Created: the controller has not assigned the identity to the node's VM/VMSS yet (the agent holds requests until it is Assigned, within its wait budget, then refuses)",
                list(assigned)
            ),
            Reason::AssignedUnassigned { assigned } => format!(
                "AzureAssignedIdentity {} is not Assigned (Unassigned): the controller is removing the identity from this pod",
                list(assigned)
            ),
            Reason::AssignedOnOtherNode { assigned, node } => format!(
                "the pod's AzureAssignedIdentity {} names another node than the pod's node {node}: the agent there does not use it",
                list(assigned)
            ),
            Reason::RequestedNotBound {
                requested,
                available,
            } if available.is_empty() => {
                format!("the requested identity {requested} is not bound to this pod")
            }
            Reason::RequestedNotBound {
                requested,
                available,
            } => format!(
                "the requested identity {requested} is not bound to this pod (it may ask for: {})",
                list(available)
            ),
            Reason::IdentityProtected { message } => message.clone(),
        }
    }

    /// What to do about it.
    #[must_use]
    pub fn hint(&self) -> String {
        match self {
            Reason::NotScheduled => "wait for scheduling; `kubectl describe pod` shows why it is Pending".into(),
            Reason::HostNetwork => "run the workload without hostNetwork to use pod identity".into(),
            Reason::NotRunning { .. } => "a finished pod makes no requests; a new pod gets its identity when it runs".into(),
            Reason::NoPodIp => "wait until the pod has an IP (status.podIP)".into(),
            Reason::UnsupportedRequest => "ask by client_id or mi_res_id".into(),
            Reason::NoLabel { selectors } if selectors.is_empty() => "add label aadpodidbinding=<selector> matching an AzureIdentityBinding (none exists in scope yet: create one)".into(),
            Reason::NoLabel { selectors } => format!(
                "add label aadpodidbinding=<selector> matching an AzureIdentityBinding (selectors in scope: {})",
                list(selectors)
            ),
            Reason::NoBinding {
                selector,
                namespace,
            } => format!(
                "create an AzureIdentityBinding with spec.selector: {selector}{}, or relabel the pod with a selector that has one",
                namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default()
            ),
            Reason::BindingOutOfScope { namespace, .. } => format!(
                "create the AzureIdentityBinding and its AzureIdentity in namespace {namespace}"
            ),
            Reason::IdentityMissing {
                binding,
                identity,
                namespace,
            } => format!(
                "create AzureIdentity {namespace}/{identity}, or fix spec.azureIdentity of binding {binding} (the identity must be in the binding's namespace)"
            ),
            Reason::IdentityOutOfScope { namespace, .. } => format!(
                "create the AzureIdentity and its binding in namespace {namespace}, or drop namespaced matching for it"
            ),
            Reason::IdentityUnusable { identity, problem } => problem.hint(identity),
            Reason::NotAssignedYet { .. } => "check that podid controller is running and leading (its /healthz), and its logs and events for this pod".into(),
            Reason::AssignedCreated { .. } => "check podid controller logs and events (ARM errors, missing role assignments, the VM/VMSS identity limit)".into(),
            Reason::AssignedUnassigned { .. } => "check the pod's label and its binding still match; podid controller logs say why it released the identity".into(),
            Reason::AssignedOnOtherNode { .. } => "the controller replaces it on its next sync; check its logs if it stays".into(),
            Reason::RequestedNotBound { requested, .. } => format!(
                "request one of the pod's identities, or bind {requested} to the pod (an AzureIdentityBinding whose selector is the pod's label)"
            ),
            Reason::IdentityProtected { .. } => format!(
                "give the pod an identity of its own; the cluster's identity can change its nodes. To allow it on purpose, start podid controller and agent with {}=<the AzureIdentity's namespace>",
                crate::protect::ALLOW_FLAG
            ),
        }
    }
}

impl Verdict {
    /// True when a token would be served.
    #[must_use]
    pub fn is_token(&self) -> bool {
        matches!(self, Verdict::Token { .. })
    }

    /// The reason, when refused.
    #[must_use]
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Verdict::Refused(r) => Some(r),
            Verdict::Token { .. } => None,
        }
    }

    /// The verdict in one plain sentence.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Verdict::Refused(r) => r.message(),
            Verdict::Token {
                via: Via::Exception,
                ..
            } => "a token request would be passed to the node's IMDS (the pod is excepted): it answers for the requested client_id if that identity is assigned to the node, else for the node's own identity".into(),
            Verdict::Token {
                via, chosen, others,
            } => {
                let how = match via {
                    Via::Assigned => "its AzureAssignedIdentity is Assigned",
                    Via::Binding => "bound in managed mode",
                    Via::Federated => "through its federated credential",
                    Via::Exception => "excepted",
                };
                let mut s = match chosen {
                    Some(id) => format!(
                        "a token request would succeed now: identity {}/{} (clientID {}), {how}",
                        id.namespace, id.name, id.client_id
                    ),
                    None => format!("a token request would succeed now, {how}"),
                };
                if !others.is_empty() {
                    let ids: Vec<String> = others.iter().map(|o| o.client_id.clone()).collect();
                    s.push_str(&format!("; also available by client_id: {}", list(&ids)));
                }
                s
            }
        }
    }

    /// What to do, when refused.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        self.reason().map(Reason::hint)
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            token: bool,
            #[serde(flatten)]
            via: Option<&'a Via>,
            #[serde(skip_serializing_if = "Option::is_none")]
            chosen: Option<&'a ServedIdentity>,
            #[serde(skip_serializing_if = "<[ServedIdentity]>::is_empty")]
            others: &'a [ServedIdentity],
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a Reason>,
            message: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            hint: Option<String>,
        }
        let (via, chosen, others): (Option<&Via>, Option<&ServedIdentity>, &[ServedIdentity]) =
            match self {
                Verdict::Token {
                    via,
                    chosen,
                    others,
                } => (Some(via), chosen.as_ref(), others),
                Verdict::Refused(_) => (None, None, &[]),
            };
        Out {
            token: self.is_token(),
            via,
            chosen,
            others,
            reason: self.reason(),
            message: self.message(),
            hint: self.hint(),
        }
        .serialize(s)
    }
}

// === the agent's view ===

/// What the agent's pod index says about an IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "lookup", rename_all = "snake_case")]
pub enum AgentLookup {
    /// One pod owns the IP.
    Found {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// `metadata.uid`.
        uid: String,
    },
    /// No pod in the index (hostNetwork and finished pods are never indexed; on a token request the agent makes
    /// one live API lookup before refusing).
    Unknown {
        /// Plain words.
        message: String,
    },
    /// Several pods claim the IP: refused, never guessed.
    Ambiguous {
        /// `namespace/name` of each.
        pods: Vec<String>,
        /// Plain words.
        message: String,
    },
}

/// The agent's verdict for a caller, as served on its debug view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentVerdict {
    /// A token would be served now.
    pub token: bool,
    /// The identities it would serve (the one chosen without a request first).
    #[serde(default)]
    pub identities: Vec<ServedIdentity>,
    /// The refusal's [`Reason::code`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Plain words.
    pub message: String,
    /// What to do, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl AgentVerdict {
    /// From a [`Verdict`].
    #[must_use]
    pub fn from_verdict(v: &Verdict) -> AgentVerdict {
        let identities = match v {
            Verdict::Token { chosen, others, .. } => {
                chosen.iter().chain(others.iter()).cloned().collect()
            }
            Verdict::Refused(_) => Vec::new(),
        };
        AgentVerdict {
            token: v.is_token(),
            identities,
            code: v.reason().map(|r| r.code().to_string()),
            message: v.message(),
            hint: v.hint(),
        }
    }
}

/// The agent's read-only view of one caller (`GET /debug/pod?ip=...` on its probe port). Never a token or secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// The IP asked about.
    pub ip: String,
    /// The agent's node.
    pub node: String,
    /// The agent's mode.
    pub mode: Mode,
    /// The agent's `--forceNamespaced`.
    pub force_namespaced: bool,
    /// The agent's `--MICNamespace`.
    pub mic_namespace: String,
    /// `Active` once the redirect is in place (or not managed), else `Not Active` (as `/healthz`).
    pub redirect: String,
    /// Every watch delivered its first list.
    pub synced: bool,
    /// The index lookup.
    pub pod: AgentLookup,
    /// The decision for the pod, when one was found.
    #[serde(default)]
    pub verdict: Option<AgentVerdict>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NODE: &str = "node-1";
    const RID_PREFIX: &str = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/";

    fn id(ns: &str, name: &str) -> IdentityView {
        IdentityView {
            namespace: ns.into(),
            name: name.into(),
            version_key: format!("{name}-uid/1"),
            id_type: 0,
            client_id: format!("cid-{ns}-{name}"),
            resource_id: format!("{RID_PREFIX}{name}"),
            tenant_id: "t".into(),
            aux_tenant_ids: vec![],
            secret_ref: None,
            namespaced: false,
        }
    }

    fn binding(ns: &str, identity: &str, selector: &str) -> BindingView {
        BindingView {
            namespace: ns.into(),
            name: format!("b-{identity}"),
            identity: identity.into(),
            selector: selector.into(),
        }
    }

    fn pod(ns: &str, name: &str, label: Option<&str>) -> PodFacts {
        PodFacts {
            namespace: ns.into(),
            name: name.into(),
            uid: format!("{name}-uid"),
            labels: label
                .map(|l| [(POD_LABEL_KEY.to_string(), l.to_string())].into())
                .unwrap_or_default(),
            phase: "Running".into(),
            pod_ips: vec!["10.0.0.5".into()],
            node_name: NODE.into(),
            host_network: false,
            deleting: false,
            replicaset: None,
            service_account: "default".into(),
        }
    }

    fn aai(p: &PodFacts, i: &IdentityView, status: &str, node: &str) -> AssignedFacts {
        AssignedFacts {
            namespace: DEFAULT_ASSIGNED_NAMESPACE.into(),
            name: assigned_name(&p.name, &p.namespace, &i.name),
            state: match status {
                "" => AssignedState::Legacy,
                "Created" => AssignedState::Created,
                "Assigned" => AssignedState::Assigned,
                _ => AssignedState::Other,
            },
            status: status.into(),
            node: Some(node.into()),
            identity: Some(i.clone()),
        }
    }

    fn cluster(
        ids: Vec<IdentityView>,
        bindings: Vec<BindingView>,
        aais: Vec<AssignedFacts>,
    ) -> ClusterFacts {
        ClusterFacts {
            bindings,
            identities: ids
                .iter()
                .map(|i| ((i.namespace.clone(), i.name.clone()), i.clone()))
                .collect(),
            identities_known: true,
            assigned: aais,
            exceptions: vec![],
        }
    }

    fn settings(mode: Mode, force_namespaced: bool, wanted: Wanted) -> Settings {
        Settings {
            mode,
            force_namespaced,
            mic_namespace: "kube-system".into(),
            wanted,
            protected: Default::default(),
        }
    }

    fn std_any() -> Settings {
        settings(Mode::Standard, false, Wanted::Any)
    }

    /// What a case expects: a token for this client ID (via), or a refusal with this code.
    #[derive(Debug)]
    enum Want {
        Token(Option<&'static str>, Via),
        Refused(&'static str),
    }

    struct Case {
        what: &'static str,
        pod: PodFacts,
        cluster: ClusterFacts,
        settings: Settings,
        want: Want,
        /// Words the message or hint must contain.
        words: &'static [&'static str],
    }

    fn cases() -> Vec<Case> {
        let a = id("app", "id-a");
        let b = id("app", "id-b");
        let p = pod("app", "p", Some("sel-a"));
        let bound = || {
            cluster(
                vec![a.clone()],
                vec![binding("app", "id-a", "sel-a")],
                vec![aai(&p, &a, "Assigned", NODE)],
            )
        };
        let mut out = vec![
            Case {
                what: "bound and Assigned",
                pod: p.clone(),
                cluster: bound(),
                settings: std_any(),
                want: Want::Token(Some("cid-app-id-a"), Via::Assigned),
                words: &["would succeed", "cid-app-id-a"],
            },
            Case {
                what: "legacy empty status is usable",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![aai(&p, &a, "", NODE)],
                ),
                settings: std_any(),
                want: Want::Token(Some("cid-app-id-a"), Via::Assigned),
                words: &["would succeed"],
            },
            Case {
                what: "two identities: the first by (namespace, name), the other by client_id",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone(), b.clone()],
                    vec![
                        binding("app", "id-a", "sel-a"),
                        binding("app", "id-b", "sel-a"),
                    ],
                    vec![aai(&p, &b, "Assigned", NODE), aai(&p, &a, "Assigned", NODE)],
                ),
                settings: std_any(),
                want: Want::Token(Some("cid-app-id-a"), Via::Assigned),
                words: &["also available by client_id: cid-app-id-b"],
            },
            Case {
                what: "requested client_id, any case",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone(), b.clone()],
                    vec![
                        binding("app", "id-a", "sel-a"),
                        binding("app", "id-b", "sel-a"),
                    ],
                    vec![aai(&p, &a, "Assigned", NODE), aai(&p, &b, "Assigned", NODE)],
                ),
                settings: settings(
                    Mode::Standard,
                    false,
                    Wanted::ClientId("CID-APP-ID-B".into()),
                ),
                want: Want::Token(Some("cid-app-id-b"), Via::Assigned),
                words: &["cid-app-id-b"],
            },
            Case {
                what: "not scheduled",
                pod: PodFacts {
                    node_name: String::new(),
                    ..p.clone()
                },
                cluster: bound(),
                settings: std_any(),
                want: Want::Refused("not_scheduled"),
                words: &["not scheduled"],
            },
            Case {
                what: "host network",
                pod: PodFacts {
                    host_network: true,
                    ..p.clone()
                },
                cluster: bound(),
                settings: std_any(),
                want: Want::Refused("host_network"),
                words: &["hostNetwork pods"],
            },
            Case {
                what: "finished",
                pod: PodFacts {
                    phase: "Succeeded".into(),
                    ..p.clone()
                },
                cluster: bound(),
                settings: std_any(),
                want: Want::Refused("not_running"),
                words: &["Succeeded", "only Pending or Running"],
            },
            Case {
                what: "no IP",
                pod: PodFacts {
                    pod_ips: vec![],
                    phase: "Pending".into(),
                    ..p.clone()
                },
                cluster: bound(),
                settings: std_any(),
                want: Want::Refused("no_pod_ip"),
                words: &["no IP"],
            },
            Case {
                what: "object_id",
                pod: p.clone(),
                cluster: bound(),
                settings: settings(Mode::Standard, false, Wanted::ObjectId("o".into())),
                want: Want::Refused("unsupported_request"),
                words: &["object_id", "client_id or mi_res_id"],
            },
            Case {
                what: "no label",
                pod: pod("app", "p", None),
                cluster: bound(),
                settings: std_any(),
                want: Want::Refused("no_label"),
                words: &[
                    "no aadpodidbinding label",
                    "add label aadpodidbinding=<selector>",
                    "sel-a",
                ],
            },
            Case {
                what: "no binding anywhere",
                pod: pod("app", "p", Some("sel-zzz")),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: std_any(),
                want: Want::Refused("no_binding"),
                words: &["no AzureIdentityBinding in any namespace has selector sel-zzz"],
            },
            Case {
                what: "no binding in the namespace (namespaced)",
                pod: pod("app", "p", Some("sel-zzz")),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Standard, true, Wanted::Any),
                want: Want::Refused("no_binding"),
                words: &[
                    "no AzureIdentityBinding in namespace app has selector sel-zzz",
                    "in namespace app",
                ],
            },
            Case {
                what: "binding only in another namespace (namespaced)",
                pod: pod("web", "p", Some("sel-a")),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Standard, true, Wanted::Any),
                want: Want::Refused("binding_out_of_scope"),
                words: &[
                    "app/b-id-a",
                    "outside the pod's namespace web",
                    "in namespace web",
                ],
            },
            Case {
                what: "identity missing",
                pod: p.clone(),
                cluster: cluster(vec![], vec![binding("app", "id-a", "sel-a")], vec![]),
                settings: std_any(),
                want: Want::Refused("identity_missing"),
                words: &[
                    "binding app/b-id-a references AzureIdentity id-a, which does not exist in namespace app",
                    "create AzureIdentity app/id-a",
                ],
            },
            Case {
                what: "namespaced identity in another namespace",
                pod: pod("web", "p", Some("sel-a")),
                cluster: cluster(
                    vec![IdentityView {
                        namespaced: true,
                        ..a.clone()
                    }],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: std_any(),
                want: Want::Refused("identity_out_of_scope"),
                words: &["app/id-a", "namespaced", "web"],
            },
            Case {
                what: "namespaced identity through an Assigned AAI (agent filter)",
                pod: pod("web", "p", Some("sel-a")),
                cluster: {
                    let na = IdentityView {
                        namespaced: true,
                        ..a.clone()
                    };
                    let wp = pod("web", "p", Some("sel-a"));
                    cluster(
                        vec![na.clone()],
                        vec![binding("app", "id-a", "sel-a")],
                        vec![aai(&wp, &na, "Assigned", NODE)],
                    )
                },
                settings: std_any(),
                want: Want::Refused("identity_out_of_scope"),
                words: &["namespaced"],
            },
            Case {
                what: "invalid resource ID (standard: the controller ignores the identity)",
                pod: p.clone(),
                cluster: cluster(
                    vec![IdentityView {
                        resource_id: "not-an-arm-id".into(),
                        ..a.clone()
                    }],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: std_any(),
                want: Want::Refused("identity_unusable"),
                words: &[
                    "invalid spec.resourceID \"not-an-arm-id\"",
                    "userAssignedIdentities/<name>",
                ],
            },
            Case {
                what: "unsupported type on an Assigned AAI",
                pod: p.clone(),
                cluster: {
                    let t7 = IdentityView {
                        id_type: 7,
                        ..a.clone()
                    };
                    cluster(
                        vec![t7.clone()],
                        vec![binding("app", "id-a", "sel-a")],
                        vec![aai(&p, &t7, "Assigned", NODE)],
                    )
                },
                settings: std_any(),
                want: Want::Refused("identity_unusable"),
                words: &["spec.type 7", "set spec.type"],
            },
            Case {
                what: "service principal without a secret reference (managed)",
                pod: p.clone(),
                cluster: cluster(
                    vec![IdentityView {
                        id_type: 1,
                        ..a.clone()
                    }],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Managed, true, Wanted::Any),
                want: Want::Refused("identity_unusable"),
                words: &["clientPassword"],
            },
            Case {
                what: "federated without a tenant",
                pod: p.clone(),
                cluster: cluster(
                    vec![IdentityView {
                        tenant_id: " ".into(),
                        ..a.clone()
                    }],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Federated, false, Wanted::Any),
                want: Want::Refused("identity_unusable"),
                words: &["no spec.tenantID", "set spec.tenantID of app/id-a"],
            },
            Case {
                what: "bound but no AAI yet",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: std_any(),
                want: Want::Refused("not_assigned_yet"),
                words: &["expected default/p-app-id-a", "podid controller"],
            },
            Case {
                what: "namespaced: the AAI is expected in the identity's namespace",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Standard, true, Wanted::Any),
                want: Want::Refused("not_assigned_yet"),
                words: &["expected app/p-app-id-a"],
            },
            Case {
                what: "AAI still Created",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![aai(&p, &a, "Created", NODE)],
                ),
                settings: std_any(),
                want: Want::Refused("assigned_created"),
                words: &[
                    "default/p-app-id-a is still Created",
                    "VM/VMSS",
                    "podid controller logs",
                ],
            },
            Case {
                what: "AAI Unassigned",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![aai(&p, &a, "Unassigned", NODE)],
                ),
                settings: std_any(),
                want: Want::Refused("assigned_unassigned"),
                words: &["Unassigned", "removing"],
            },
            Case {
                what: "AAI for another node",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![aai(&p, &a, "Assigned", "node-9")],
                ),
                settings: std_any(),
                want: Want::Refused("assigned_on_other_node"),
                words: &["another node than the pod's node node-1"],
            },
            Case {
                what: "requested client_id not bound (standard)",
                pod: p.clone(),
                cluster: bound(),
                settings: settings(Mode::Standard, false, Wanted::ClientId("cid-other".into())),
                want: Want::Refused("requested_not_bound"),
                words: &["cid-other is not bound", "it may ask for: cid-app-id-a"],
            },
            Case {
                what: "requested client_id not bound (managed)",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Managed, true, Wanted::ClientId("cid-other".into())),
                want: Want::Refused("requested_not_bound"),
                words: &["cid-other", "cid-app-id-a"],
            },
            Case {
                what: "managed mode: binding in the pod's namespace",
                pod: p.clone(),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Managed, false, Wanted::Any),
                want: Want::Token(Some("cid-app-id-a"), Via::Binding),
                words: &["managed mode"],
            },
            Case {
                what: "managed mode ignores other namespaces",
                pod: pod("web", "p", Some("sel-a")),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Managed, false, Wanted::Any),
                want: Want::Refused("binding_out_of_scope"),
                words: &["namespace web"],
            },
            Case {
                what: "federated mode across namespaces",
                pod: pod("web", "p", Some("sel-a")),
                cluster: cluster(
                    vec![a.clone()],
                    vec![binding("app", "id-a", "sel-a")],
                    vec![],
                ),
                settings: settings(Mode::Federated, false, Wanted::Any),
                want: Want::Token(Some("cid-app-id-a"), Via::Federated),
                words: &["federated credential"],
            },
            Case {
                what: "controller pod heuristic",
                pod: PodFacts {
                    replicaset: Some("mic-7d9f".into()),
                    ..pod("kube-system", "mic-7d9f-x", None)
                },
                cluster: bound(),
                settings: std_any(),
                want: Want::Token(None, Via::Exception),
                words: &["excepted"],
            },
        ];
        let mut ex = cluster(vec![], vec![], vec![]);
        ex.exceptions = vec![
            ExceptionFacts {
                namespace: "other".into(),
                name: "elsewhere".into(),
                pod_labels: [("app".to_string(), "x".to_string())].into(),
            },
            ExceptionFacts {
                namespace: "app".into(),
                name: "ex".into(),
                pod_labels: [("app".to_string(), "X".to_string())].into(),
            },
        ];
        let mut excepted = pod("app", "p", None);
        excepted.labels.insert("app".into(), "x".into());
        out.push(Case {
            what: "AzurePodIdentityException",
            pod: excepted,
            cluster: ex,
            settings: std_any(),
            want: Want::Token(None, Via::Exception),
            words: &["node's IMDS"],
        });
        out
    }

    #[test]
    fn every_reason() {
        let mut codes = BTreeSet::new();
        for c in cases() {
            let d = diagnose(&c.pod, &c.cluster, &c.settings);
            match (&c.want, &d.verdict) {
                (
                    Want::Token(cid, via),
                    Verdict::Token {
                        via: got_via,
                        chosen,
                        ..
                    },
                ) => {
                    assert_eq!(
                        chosen.as_ref().map(|i| i.client_id.as_str()),
                        *cid,
                        "{}",
                        c.what
                    );
                    assert_eq!(got_via, via, "{}", c.what);
                }
                (Want::Refused(code), Verdict::Refused(r)) => {
                    assert_eq!(r.code(), *code, "{}: {r:?}", c.what);
                    codes.insert(r.code());
                }
                (w, got) => panic!("{}: want {w:?}, got {got:?}", c.what),
            }
            let text = format!(
                "{} | {} | {}",
                d.verdict.message(),
                d.verdict.hint().unwrap_or_default(),
                d.notes.join(" | ")
            );
            for w in c.words {
                assert!(text.contains(w), "{}: {w:?} not in {text:?}", c.what);
            }
            // JSON: the verdict carries its code, message and hint; it round-trips through the agent's shape.
            let v = serde_json::to_value(&d).expect("json");
            assert_eq!(v["verdict"]["token"], d.verdict.is_token(), "{}", c.what);
            assert_eq!(v["verdict"]["message"], d.verdict.message());
            if let Some(r) = d.verdict.reason() {
                assert_eq!(v["verdict"]["reason"]["code"], r.code());
                let back: Reason =
                    serde_json::from_value(v["verdict"]["reason"].clone()).expect("reason");
                assert_eq!(&back, r);
            }
            let av = AgentVerdict::from_verdict(&d.verdict);
            let back: AgentVerdict =
                serde_json::from_str(&serde_json::to_string(&av).expect("ser")).expect("de");
            assert_eq!(back, av);
        }
        for code in [
            "not_scheduled",
            "host_network",
            "not_running",
            "no_pod_ip",
            "unsupported_request",
            "no_label",
            "no_binding",
            "binding_out_of_scope",
            "identity_missing",
            "identity_out_of_scope",
            "identity_unusable",
            "not_assigned_yet",
            "assigned_created",
            "assigned_unassigned",
            "assigned_on_other_node",
            "requested_not_bound",
        ] {
            assert!(codes.contains(code), "no case for {code}");
        }
    }

    #[test]
    fn details_of_a_diagnosis() {
        let a = id("app", "id-a");
        let p = pod("web", "p", Some("sel-a"));
        let c = cluster(
            vec![a.clone()],
            vec![
                binding("app", "id-a", "sel-a"),
                binding("web", "id-x", "sel-a"),
                binding("web", "id-y", "other"),
            ],
            vec![aai(&p, &a, "Assigned", NODE)],
        );
        let d = diagnose(&p, &c, &settings(Mode::Standard, true, Wanted::Any));
        assert_eq!(d.label.as_deref(), Some("sel-a"));
        assert!(d.namespaced);
        let b: Vec<(String, bool)> = d
            .bindings
            .iter()
            .map(|b| (format!("{}/{}", b.namespace, b.name), b.in_scope))
            .collect();
        assert_eq!(
            b,
            vec![
                ("app/b-id-a".to_string(), false),
                ("web/b-id-x".to_string(), true)
            ]
        );
        assert_eq!(d.identities[0].status, IdentityStatus::OutOfScope);
        assert_eq!(d.identities[1].status, IdentityStatus::Missing);
        assert_eq!(d.assigned.len(), 1);
        assert!(d.assigned[0].usable);
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("app/b-id-a would match only without namespaced")),
            "{:?}",
            d.notes
        );
        // The Assigned AAI is for an identity of another namespace: refused by the agent's namespaced filter.
        assert_eq!(
            d.verdict.reason().map(Reason::code),
            Some("identity_out_of_scope")
        );

        // Deleting: a note only.
        let mut gone = pod("app", "p", Some("sel-a"));
        gone.deleting = true;
        let d = diagnose(
            &gone,
            &cluster(
                vec![a.clone()],
                vec![binding("app", "id-a", "sel-a")],
                vec![aai(&gone, &a, "Assigned", NODE)],
            ),
            &std_any(),
        );
        assert!(d.verdict.is_token());
        assert!(d.notes.iter().any(|n| n.contains("being deleted")));

        // Same identity name in two namespaces, non-namespaced: the collision is noted.
        let b2 = id("web", "id-a");
        let d = diagnose(
            &gone,
            &cluster(
                vec![a.clone(), b2],
                vec![
                    binding("app", "id-a", "sel-a"),
                    binding("web", "id-a", "sel-a"),
                ],
                vec![],
            ),
            &std_any(),
        );
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("exists in both app and web")),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn the_agent_in_standard_mode_does_not_know_identities() {
        let a = id("app", "id-a");
        let p = pod("app", "p", Some("sel-a"));
        let mut c = cluster(vec![], vec![binding("app", "id-a", "sel-a")], vec![]);
        c.identities_known = false;
        let d = diagnose_caller(&p.caller(), &c, &std_any());
        assert_eq!(d.identities[0].status, IdentityStatus::Unknown);
        assert_eq!(
            d.verdict.reason(),
            Some(&Reason::NotAssignedYet {
                expected: vec!["default/p-app-id-a".into()]
            })
        );
        c.assigned = vec![AssignedFacts {
            node: None,
            ..aai(&p, &a, "Assigned", NODE)
        }];
        let d = diagnose_caller(
            &p.caller(),
            &c,
            &settings(Mode::Standard, false, Wanted::ClientId("nope".into())),
        );
        assert_eq!(
            d.verdict.reason().map(Reason::code),
            Some("requested_not_bound")
        );
        let d = diagnose_caller(&p.caller(), &c, &std_any());
        assert!(d.verdict.is_token());
    }

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("Managed"), Ok(Mode::Managed));
        assert_eq!(Mode::parse("federated").map(Mode::as_str), Ok("federated"));
        assert!(
            Mode::parse("x")
                .unwrap_err()
                .to_string()
                .contains("standard, managed or federated")
        );
        assert_eq!(
            serde_json::to_value(Mode::Standard).expect("json"),
            "standard"
        );
    }

    /// The agent's selection (server.rs `select` + `fetch` checks), one round without waiting, replayed with the
    /// same functions: the doctor must agree with it on every world.
    fn agent_replay(caller: &CallerFacts, c: &ClusterFacts, s: &Settings) -> Option<IdentityView> {
        let label = caller.labels.get(POD_LABEL_KEY).map(String::as_str);
        let ns = caller.namespace.as_str();
        let namespaced = s.namespaced();
        let id = match s.mode {
            Mode::Managed | Mode::Federated => {
                let ids = bound_identities(ns, label, &c.bindings, &c.identities, namespaced);
                let ids = without_protected(ids, &s.wanted, &s.protected).ok()?;
                choose(&ids, &s.wanted, ns, &caller.name, namespaced).ok()?
            }
            Mode::Standard => {
                let views: Vec<AssignedView> = c
                    .assigned
                    .iter()
                    .filter(|a| on_node(a, caller))
                    .filter_map(|a| {
                        a.identity.clone().map(|i| AssignedView {
                            identity: i,
                            state: a.state.clone(),
                        })
                    })
                    .collect();
                if standard_fast_refusal(
                    ns,
                    &caller.name,
                    label,
                    &c.bindings,
                    !views.is_empty(),
                    namespaced,
                )
                .is_some()
                {
                    return None;
                }
                match eval_assigned(&views, &s.wanted) {
                    AssignedEval::Ready(list) => {
                        let list = without_protected(list, &s.wanted, &s.protected).ok()?;
                        choose(&list, &s.wanted, ns, &caller.name, namespaced).ok()?
                    }
                    AssignedEval::Pending { .. } => return None,
                }
            }
        };
        fetch_problem(&id, s.mode).is_none().then_some(id)
    }

    fn world() -> impl Strategy<Value = (CallerFacts, ClusterFacts, Settings)> {
        let nss = ["app", "web"];
        let names = ["i0", "i1", "i2"];
        let sels = ["s0", "s1"];
        (
            (0usize..2, proptest::option::of(0usize..2), 0usize..3),
            proptest::collection::vec((0usize..2, 0usize..3, 0usize..2), 0..4),
            proptest::collection::vec(
                (0usize..2, 0usize..3, any::<bool>(), 0i64..4, any::<bool>()),
                0..5,
            ),
            proptest::collection::vec((0usize..2, 0usize..3, 0usize..4, any::<bool>()), 0..4),
            (0usize..3, any::<bool>(), 0usize..4, 0usize..4),
        )
            .prop_map(move |(p, bs, ids, aais, (mode, force, wanted, guard))| {
                let caller = CallerFacts {
                    namespace: nss[p.0].into(),
                    name: "p".into(),
                    labels: p
                        .1
                        .map(|s| [(POD_LABEL_KEY.to_string(), sels[s].to_string())].into())
                        .unwrap_or_default(),
                    replicaset: None,
                    service_account: "sa".into(),
                    node: NODE.into(),
                };
                let mut identities = BTreeMap::new();
                for (ns, n, namespaced, t, tenant) in ids {
                    let mut i = id(nss[ns], names[n]);
                    i.namespaced = namespaced;
                    i.id_type = t;
                    if t == 1 {
                        i.secret_ref = Some(("app".into(), "s".into()));
                    }
                    if !tenant {
                        i.tenant_id.clear();
                    }
                    identities.insert((i.namespace.clone(), i.name.clone()), i);
                }
                let bindings = bs
                    .into_iter()
                    .map(|(ns, n, s)| binding(nss[ns], names[n], sels[s]))
                    .collect();
                let states = ["Created", "Assigned", "", "Unassigned"];
                let assigned = aais
                    .into_iter()
                    .map(|(ns, n, st, here)| {
                        let i = id(nss[ns], names[n]);
                        let pf = PodFacts {
                            namespace: caller.namespace.clone(),
                            ..pod("x", "p", None)
                        };
                        aai(&pf, &i, states[st], if here { NODE } else { "node-9" })
                    })
                    .collect();
                let mode = [Mode::Standard, Mode::Managed, Mode::Federated][mode];
                let wanted = match wanted {
                    0 => Wanted::Any,
                    1 => Wanted::ClientId("CID-APP-I0".into()),
                    2 => Wanted::ClientId("cid-web-i1".into()),
                    _ => Wanted::ClientId("unknown".into()),
                };
                let cluster = ClusterFacts {
                    bindings,
                    identities,
                    identities_known: true,
                    assigned,
                    exceptions: vec![],
                };
                let mut s = settings(mode, force, wanted);
                // Cluster identity protection: none, the cluster's identity (opt-in in `web`), a deny-listed one.
                s.protected = match guard {
                    0 => Default::default(),
                    1 => crate::protect::ProtectedIdentities::new(["cid-app-i0"], [], []),
                    2 => crate::protect::ProtectedIdentities::new(["cid-web-i1"], [], ["web"]),
                    _ => crate::protect::ProtectedIdentities::new([], ["CID-APP-I1"], []),
                };
                (caller, cluster, s)
            })
    }

    proptest! {
        /// The doctor's verdict is the agent's decision: a token exactly when the agent would serve one, for the
        /// same identity; every refusal has words and a hint.
        #[test]
        fn agrees_with_the_agent((caller, c, s) in world()) {
            let d = diagnose_caller(&caller, &c, &s);
            let agent = agent_replay(&caller, &c, &s);
            match (&d.verdict, agent) {
                (Verdict::Token { chosen: Some(got), .. }, Some(want)) => {
                    prop_assert_eq!(&got.client_id, &want.client_id);
                    prop_assert_eq!(&got.namespace, &want.namespace);
                }
                (Verdict::Refused(r), None) => {
                    prop_assert!(!r.message().is_empty() && !r.hint().is_empty());
                }
                (got, want) => prop_assert!(false, "doctor {:?} vs agent {:?}", got, want),
            }
        }
    }
}
