//! The planner's inputs and outputs: plain data, trimmed from the Kubernetes objects by the controller.
//!
//! This file is the contract between the planner and the controller that feeds it and carries out its plans.

use std::collections::BTreeSet;

/// The kind of compute resource that carries user-assigned identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// A virtual machine (`Microsoft.Compute/virtualMachines`).
    Vm,
    /// A virtual machine scale set (`Microsoft.Compute/virtualMachineScaleSets`); every instance node maps to it.
    Vmss,
}

/// A VM or scale set, identified by its full ARM coordinates (not only its name: two scale sets with the same
/// name in different resource groups are different targets, unlike upstream).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// VM or scale set.
    pub kind: TargetKind,
    /// Subscription ID as written in the provider ID.
    pub subscription: String,
    /// Resource group as written in the provider ID.
    pub resource_group: String,
    /// VM or scale-set name.
    pub name: String,
}

/// A pod, trimmed to what assignment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.nodeName`; empty while unscheduled.
    pub node: String,
    /// Value of the `aadpodidbinding` label; empty when absent.
    pub selector: String,
    /// `status.phase` is `Succeeded` or `Failed`.
    pub finished: bool,
}

/// A node, trimmed: its name and the compute target parsed from `spec.providerID` (None when absent or not an
/// Azure provider ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Parsed provider ID.
    pub target: Option<Target>,
}

/// An AzureIdentity, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.resourceVersion` (any change to the object changes it and forces an AAI update, as upstream).
    pub resource_version: String,
    /// `spec.type`: 0 user-assigned MSI, 1 service principal, 2 SP certificate, anything else kept.
    pub id_type: i64,
    /// `spec.resourceID` as written.
    pub resource_id: String,
    /// `spec.clientID` as written.
    pub client_id: String,
    /// Annotation `aadpodidentity.k8s.io/Behavior: namespaced` is present.
    pub namespaced: bool,
}

/// An AzureIdentityBinding, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `spec.azureIdentity`: name of an AzureIdentity in the binding's namespace.
    pub identity: String,
    /// `spec.selector`: compared exactly with the pod's `aadpodidbinding` label value.
    pub selector: String,
}

/// `status.status` of an AzureAssignedIdentity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AssignedStatus {
    /// `Created`: object written, identity not (yet) on the VM / scale set.
    Created,
    /// `Assigned`.
    Assigned,
    /// `Unassigned`: being removed.
    Unassigned,
    /// `""`: written by MIC < 1.5; treated as `Assigned`.
    Legacy,
    /// Anything else, kept verbatim; treated as `Created`.
    Other(String),
}

/// Reference to a namespaced object and the resourceVersion recorded in an AAI's embedded copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Recorded resourceVersion.
    pub resource_version: String,
}

/// Key of an AzureAssignedIdentity object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AaiKey {
    /// Namespace (`default` unless namespaced).
    pub namespace: String,
    /// `<pod>-<podNamespace>-<identity>`.
    pub name: String,
}

/// An existing AzureAssignedIdentity, trimmed (identity fields come from its embedded `azureIdentityRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedInfo {
    /// Object key.
    pub key: AaiKey,
    /// Embedded identity reference.
    pub identity: ObjRef,
    /// Embedded binding reference.
    pub binding: ObjRef,
    /// Identity type recorded in the embedded identity.
    pub id_type: i64,
    /// Resource ID recorded in the embedded identity.
    pub resource_id: String,
    /// Client ID recorded in the embedded identity.
    pub client_id: String,
    /// `spec.pod`.
    pub pod: String,
    /// `spec.podNamespace`.
    pub pod_namespace: String,
    /// `spec.nodename`.
    pub node: String,
    /// `status.status`.
    pub status: AssignedStatus,
    /// The identity was already on the VM / scale set when podid first assigned it (out-of-band assignment):
    /// podid never removes it. Stored in the AAI annotation [`PREEXISTING_ANNOTATION`].
    pub preexisting: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// AAI annotation recording that the identity was found on the VM / scale set before podid assigned it.
pub const PREEXISTING_ANNOTATION: &str = "podid.io/preexisting";

/// Planner settings (from the controller's flags and cloud config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `--forceNamespaced` / `FORCENAMESPACED=true`.
    pub force_namespaced: bool,
    /// Client IDs never removed from a VM / scale set, lowercased: `--immutable-user-msis` plus the cluster
    /// identity (`userAssignedIdentityID` of the cloud config).
    pub immutable_client_ids: BTreeSet<String>,
    /// Pods in phase Succeeded or Failed release their identities (podid default true; upstream kept them).
    pub release_finished_pods: bool,
    /// Subscription used for nodes without an Azure provider ID (upstream: the cloud config's).
    pub fallback_subscription: String,
    /// Resource group used for nodes without an Azure provider ID (upstream: the cloud config's); with either
    /// fallback empty such nodes have no target.
    pub fallback_resource_group: String,
}

/// An AAI to create (status `Created`) or to replace (spec replaced, status back to `Created`). The controller
/// builds the object: it embeds full copies of the identity and binding, which it keeps beside the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssigned {
    /// Object key.
    pub key: AaiKey,
    /// Identity (namespace, name, resourceVersion).
    pub identity: ObjRef,
    /// Binding (namespace, name, resourceVersion).
    pub binding: ObjRef,
    /// Pod name.
    pub pod: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Node name (also the `nodename` label).
    pub node: String,
}

/// An AAI that becomes `Assigned` once its target's identity change succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assign {
    /// Object key.
    pub key: AaiKey,
    /// Resource ID to check on the target (empty for service principals: no ARM involved).
    pub resource_id: String,
    /// `Some(p)`: another AAI already holds this identity on the target, copy its preexisting flag. `None`: the
    /// identity is in the target's `add` list; it is preexisting iff ARM shows it present before the PATCH.
    pub preexisting: Option<bool>,
}

/// An AAI to delete (patch `Unassigned`, DELETE, remove the finalizer) once its target's change succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Object key.
    pub key: AaiKey,
    /// Resource ID (empty for service principals).
    pub resource_id: String,
    /// The resource ID is in the target's `remove` list (false: nothing to remove on ARM for this AAI).
    pub removes: bool,
}

/// Everything to do on one target in one batch: one ARM change (chunked by the ARM client), then AAI writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPlan {
    /// The VM or scale set; `None` for work that needs no ARM call (service principals on a node without target).
    pub target: Option<Target>,
    /// Resource IDs to add (deduplicated case-insensitively, as written in the identity).
    pub add: Vec<String>,
    /// Resource IDs to remove (deduplicated case-insensitively).
    pub remove: Vec<String>,
    /// AAIs to mark `Assigned` after the change.
    pub assign: Vec<Assign>,
    /// AAIs to delete after the change.
    pub release: Vec<Release>,
}

/// An AAI the planner cannot place, with the reason (the controller emits a Warning event and leaves it Created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Object key.
    pub key: AaiKey,
    /// Why.
    pub reason: String,
}

/// One batch of work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// AAIs to create first (status `Created`).
    pub creates: Vec<NewAssigned>,
    /// AAIs to replace first (same key, new spec, status `Created`).
    pub updates: Vec<NewAssigned>,
    /// Per-target work, sorted by target.
    pub targets: Vec<TargetPlan>,
    /// AAIs to delete with no ARM call (their node is gone).
    pub node_gone: Vec<AaiKey>,
    /// AAIs that cannot be placed.
    pub blocked: Vec<Blocked>,
    /// Human-readable notes (duplicate AAI names, missing identities), for logs.
    pub notes: Vec<String>,
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.updates.is_empty()
            && self.targets.is_empty()
            && self.node_gone.is_empty()
    }
}
