//! Every sentence the doctor says: a reason's message and hint, a verdict's words, the notes beside it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::diagnosis::Ctx;
use super::*;
use crate::nmi::decide::IdentityKind;
use crate::nmi::request::Wanted;

pub(super) fn requested_text(w: &Wanted) -> Option<String> {
    match w {
        Wanted::Any => None,
        Wanted::ClientId(c) => Some(format!("client_id {c}")),
        Wanted::ResourceId(r) => Some(format!("mi_res_id {r}")),
        Wanted::ObjectId(o) => Some(format!("object_id {o}")),
    }
}

pub(super) fn state_text(status: &str) -> String {
    if status.is_empty() {
        "Assigned (legacy empty status)".into()
    } else {
        status.to_string()
    }
}

pub(super) fn notes(
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

impl IdentityStatus {
    /// A short phrase for a report line (`usable`, `MISSING (...)`, `unusable: ...`).
    #[must_use]
    pub fn summary(&self) -> String {
        match self {
            IdentityStatus::Usable => "usable".into(),
            IdentityStatus::Missing => "MISSING (no such AzureIdentity)".into(),
            IdentityStatus::Unknown => "not known to this source".into(),
            IdentityStatus::OutOfScope => {
                "out of scope (namespaced, not in the pod's namespace)".into()
            }
            IdentityStatus::Unusable { problem } => match problem {
                IdentityProblem::UnsupportedType { id_type } => {
                    format!("unusable: spec.type {id_type} is not supported")
                }
                IdentityProblem::InvalidResourceId { resource_id } => {
                    format!("unusable: invalid spec.resourceID {resource_id:?}")
                }
                IdentityProblem::NoTenant => "unusable: no spec.tenantID (federated mode)".into(),
                IdentityProblem::NoSecretRef => "unusable: no spec.clientPassword".into(),
            },
        }
    }
}

/// An identity's `spec.type` in words (`user-assigned managed identity`, ...).
#[must_use]
pub fn kind_name(kind: IdentityKind) -> String {
    match kind {
        IdentityKind::UserAssignedMsi => "user-assigned managed identity".into(),
        IdentityKind::ServicePrincipalSecret => "service principal, secret".into(),
        IdentityKind::ServicePrincipalCertificate => "service principal, certificate".into(),
        IdentityKind::Unsupported(n) => format!("unsupported type {n}"),
    }
}
