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
//! - **One source of truth.** The verdict is the agent's own decision machine ([`crate::nmi::decide`]: exceptions,
//!   `object_id`, the mode's selection, protection, the fetch plan), run on the facts at the start of a request;
//!   the doctor only adds the *why*: when the machine refuses (or would wait), the reason names the object to fix.
//!   A property test (`tests/agreement.rs`) checks on random clusters that the verdict is the agent's decision.
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
//!
//! # Layout
//!
//! - `facts`: the inputs (pod, cluster objects, the agent's settings);
//! - `verdict`: the outputs (the verdict, its reasons, the details of a diagnosis, the agent's view);
//! - `diagnosis`: the decision, which is the agent's machine ([`crate::nmi::decide`]) replayed on the facts,
//!   and the details around it;
//! - `wording`: every sentence the doctor says (messages, hints, notes); `podid doctor` only lays them out.

mod diagnosis;
mod facts;
mod verdict;
mod wording;

pub use diagnosis::{diagnose, diagnose_caller, pod_problem};
pub use facts::{AssignedFacts, CallerFacts, ClusterFacts, ExceptionFacts, PodFacts, Settings};
pub use verdict::{
    AgentLookup, AgentVerdict, AgentView, AssignedCheck, BindingMatch, Diagnosis, ExceptionMatch,
    IdentityCheck, IdentityProblem, IdentityStatus, Reason, ServedIdentity, Verdict, Via,
};

pub use crate::nmi::decide::{IdentityKind, Mode, POD_LABEL_KEY, UnknownMode};
pub use wording::kind_name;

/// Namespace of AAIs outside namespaced mode (upstream keeps them in `default`).
pub const DEFAULT_ASSIGNED_NAMESPACE: &str = "default";
/// Most selectors listed in a "add label" hint (a hint, not an inventory).
const MAX_HINT_SELECTORS: usize = 8;

#[cfg(test)]
mod tests;
