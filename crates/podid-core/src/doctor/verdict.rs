//! The doctor's outputs: the verdict, why a request is refused, the details of a diagnosis, and the agent's
//! view of one caller.

use serde::{Deserialize, Serialize};

use super::*;

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
