//! Identity assignment planning for `podid controller` (the drop-in for aad-pod-identity's MIC).
//!
//! # What MIC decides
//!
//! A pod labelled `aadpodidbinding: S` gets every AzureIdentity named by an AzureIdentityBinding whose
//! `spec.selector` is exactly `S`. For each such (pod, identity) pair MIC keeps one
//! AzureAssignedIdentity (AAI) named `<pod>-<podNamespace>-<identity>` and, for user-assigned managed
//! identities (type 0), makes sure the identity is assigned to the VM or scale set that runs the pod's
//! node. NMI then serves tokens only for `Assigned` AAIs. This module is the pure half of that loop:
//! a [`Cluster`] index fed from watches, and planners that turn it into a [`Plan`] the controller
//! carries out (AAI writes, one ARM identity PATCH per target, status patches). ARM bodies for a target
//! come from [`identity_delta`].
//!
//! # The index
//!
//! [`Cluster`] holds trimmed pods, nodes, identities, bindings and AAIs in plain maps, plus reverse
//! maps (selector → bindings, identity → bindings, resource ID → identities, selector → pods,
//! node → pods, target → nodes, pod → AAIs, node → AAIs, node × resource ID → AAIs) so one event
//! costs O(what it affects). Every `apply_*`/`delete_*` marks dirty what it affects; applying an object
//! equal to the stored one marks nothing, so watch resyncs cause no work:
//!
//! | event | marks dirty |
//! |---|---|
//! | pod | the pod |
//! | binding | pods labelled with its old and new selector |
//! | identity | pods reached through bindings naming it |
//! | node | pods on it (even before the node is known) and AAIs on it |
//! | AAI | the AAI and the pod it names |
//!
//! Marking a pod dirty also records every AAI key it could want under the bindings of that moment, so a
//! key a pod stops wanting is re-planned even if no AAI exists for it (AAI names can collide across
//! pods: pod `a-b` in namespace `c` and pod `a` in namespace `b-c` both give `a-b-c-<identity>`).
//!
//! # Desired AAIs (upstream §2.5 step 3)
//!
//! For each pod, in `(namespace, name)` order, with a node, a non-empty label, and (podid default, BETTER
//! than upstream) not in phase Succeeded/Failed when [`Config::release_finished_pods`]: the bindings
//! with that selector in `(namespace, name)` order; identity `binding.namespace/binding.azureIdentity`
//! (missing: a note, skipped); a type-0 identity whose `resourceID` fails [`is_valid_resource_id`] is
//! ignored entirely (a note, as upstream's log). Namespaced (flag or identity annotation) requires
//! `identity.ns == binding.ns == pod.ns` and puts the AAI in the identity's namespace; otherwise it goes
//! to `default`. On a duplicate key the first wins (a note, upstream's "exists in both ... namespace"
//! warning; across pods, the first pod in order). A pod whose node the index does not know yet wants
//! nothing yet (BETTER: upstream creates AAIs it cannot place); it is re-planned when the node arrives.
//!
//! # Per key (upstream §2.5 step 4)
//!
//! A current AAI matches a desired one when identity and binding (namespace, name, resourceVersion), pod,
//! pod namespace and node are equal (any edit of the identity or binding changes its resourceVersion and
//! forces an update, as upstream).
//!
//! | desired | current | action |
//! |---|---|---|
//! | yes | none | `creates` + an [`Assign`] on the node's target |
//! | yes | matching, `Assigned`/legacy `""` | nothing |
//! | yes | matching, `Created`/`Unassigned`/other | [`Assign`] again (retry) |
//! | yes | different | `updates` (same key, new spec) + [`Assign`]; the old resource ID is a removal candidate |
//! | yes | terminating (`deletionTimestamp`) | [`Release`] (finalizer) only; re-created once gone |
//! | no | on a known node | [`Release`] |
//! | no | on a node the index does not know | `node_gone` (delete, no ARM call, as upstream's `cleanUpAllAssignedIdentitiesOnNode`) |
//!
//! Type-0 work on a node with no target (no Azure provider ID and no fallback subscription/resource
//! group) cannot be done: the AAI goes to `blocked` and nothing is created (a replaced one is released).
//! Service principals (types 1 and 2, and unknown types) need no ARM: their [`Assign`] has an empty
//! resource ID and `preexisting: Some(false)`, in their target's plan or the `target: None` plan.
//!
//! # Per target (upstream §2.5 steps 5-8, BETTER)
//!
//! A node's target is the VM or scale set of its provider ID ([`parse_provider_id`]), keyed by full ARM
//! ID ([`Target::key`]; upstream keyed scale sets by bare name), else the fallback VM named like the node.
//!
//! - **add**: a type-0 resource ID goes to `add` unless an `Assigned`/legacy AAI on any node of the target
//!   already records it (case-insensitive); then the [`Assign`] copies that holder's preexisting flag
//!   (`Some(flag)`), otherwise it is `None` (the controller decides from ARM before its PATCH). A
//!   terminating `Assigned` AAI counts as a holder too: its identity is still
//!   on the target, and counting it avoids a needless PATCH and a wrong "preexisting" flag.
//! - **remove**: a resource ID of a released or replaced AAI is removed only if (a) that AAI was
//!   `Assigned`/legacy, type 0, with a valid resource ID; (b) no desired AAI on any node of the target
//!   uses it (case-insensitive; upstream compared client IDs); (c) neither it nor any other AAI recording
//!   it on the target has an immutable client ID ([`Config::immutable_client_ids`], lowercased; upstream
//!   compared raw); (d) no AAI recording it on the target is preexisting. [`Release::removes`] says
//!   whether the AAI's resource ID is in `remove`.
//!
//! # Plans
//!
//! [`Cluster::plan_all`] plans everything; [`Cluster::plan_dirty`] plans the keys events touched and
//! gives the same actions (`creates`, `updates`, `targets`, `node_gone`) whenever the state before the
//! events was converged (property-tested); its `blocked` and `notes` cover only what it looked at.
//! [`Cluster::plan_reconcile`] is upstream's periodic re-add (§2.6). Output is deterministic: everything
//! sorted, `add`/`remove` deduplicated case-insensitively keeping the first spelling, no empty
//! [`TargetPlan`]s. After changing the [`Config`], call [`Cluster::mark_all_dirty`].
//!
//! # Known limits
//!
//! - An AAI on a node that disappeared is deleted without touching ARM (as upstream): if its scale set
//!   lives on, the identity stays assigned to it.
//! - An identity found on the target with no AAI recording it (for instance after a crash between the
//!   ARM PATCH and the status patch, or after an AAI was deleted by hand while its pod still needs it) is
//!   reported by ARM as present before the PATCH, so the controller will flag it preexisting and podid
//!   will not remove it later.
//! - Fallback targets are found by node name; Kubernetes node names are lowercase DNS names.

mod cluster;
mod delta;
mod model;
mod names;
mod plan;

#[doc(hidden)]
pub mod bench;

#[cfg(test)]
mod tests;

pub use cluster::Cluster;
pub use delta::{
    Delta, MAX_IDENTITIES_PER_REQUEST, failed_identity_ids, identity_delta,
    is_erroneous_identity_error,
};
pub use model::*;
pub use names::{assigned_name, is_valid_resource_id, parse_provider_id};
