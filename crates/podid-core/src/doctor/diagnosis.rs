//! The decision, explained: the agent's machine ([`crate::nmi::decide`]) on the facts decides; this module
//! gathers the details around it (bindings, identities, AAIs, the exception) and names the object to fix.

use std::collections::BTreeSet;
use std::time::Duration;

use super::wording::{notes, requested_text, state_text};
use super::*;
use crate::assign::{assigned_name, is_valid_resource_id};
use crate::nmi::decide::{Decision, FetchPlan, Refusal, World, exempt, plan, select};
use crate::nmi::request::Wanted;
use crate::nmi::select::{
    AssignedEval, AssignedState, AssignedView, BindingView, IdentityView, bound_identities,
    eval_assigned, is_controller_pod, is_excepted, matches_wanted, without_protected,
};

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
        match exempt(&settings.wanted) {
            Decision::Fetch { plan: Ok(_), .. } => Verdict::Token {
                via: Via::Exception,
                chosen: None,
                others: Vec::new(),
            },
            _ => Verdict::Refused(Reason::UnsupportedRequest),
        }
    } else {
        ctx.selection()
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
                Some(id) => identity_status(id, caller, settings),
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
fn identity_status(id: &IdentityView, caller: &CallerFacts, settings: &Settings) -> IdentityStatus {
    if (settings.namespaced() || id.namespaced) && id.namespace != caller.namespace {
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
    match plan(settings.mode, id, &caller.view()) {
        Err(r) => IdentityStatus::Unusable {
            problem: problem_of(&r, id),
        },
        Ok(_) => IdentityStatus::Usable,
    }
}

/// Why the agent's fetch plan for an identity fails, as a problem of the identity.
fn problem_of(r: &Refusal, id: &IdentityView) -> IdentityProblem {
    match r {
        Refusal::NoTenant { .. } => IdentityProblem::NoTenant,
        Refusal::NoSecretRef { .. } => IdentityProblem::NoSecretRef,
        Refusal::UnsupportedType(t) => IdentityProblem::UnsupportedType { id_type: *t },
        _ => IdentityProblem::UnsupportedType {
            id_type: id.id_type,
        },
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

pub(super) fn on_node(a: &AssignedFacts, caller: &CallerFacts) -> bool {
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
pub(super) struct Ctx<'a> {
    pub(super) caller: &'a CallerFacts,
    pub(super) cluster: &'a ClusterFacts,
    pub(super) settings: &'a Settings,
    pub(super) label: Option<&'a str>,
    pub(super) bindings: &'a [BindingMatch],
    pub(super) identities: &'a [IdentityCheck],
}

impl<'a> Ctx<'a> {
    pub(super) fn ns(&self) -> &str {
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
        plan: &Result<FetchPlan, Refusal>,
    ) -> Verdict {
        if let Err(r) = plan {
            return Verdict::Refused(Reason::IdentityUnusable {
                identity: format!("{}/{}", id.namespace, id.name),
                problem: problem_of(r, id),
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

    /// The agent's decision machine on these facts, one round at the start of a request
    /// ([`crate::nmi::decide::select`]), explained: the machine decides, the doctor names the object to fix.
    fn selection(&self) -> Verdict {
        let views: Vec<AssignedView> = self
            .visible()
            .iter()
            .filter_map(|a| {
                a.identity.as_ref().map(|i| AssignedView {
                    identity: i.clone(),
                    state: a.state.clone(),
                })
            })
            .collect();
        let world = World {
            bindings: &self.cluster.bindings,
            identities: &self.cluster.identities,
            assigned: if self.settings.mode == Mode::Standard {
                &views
            } else {
                &[]
            },
        };
        let decision = select(
            &self.settings.policy(),
            &self.caller.view(),
            &world,
            &self.settings.wanted,
            Duration::ZERO,
        );
        if decision == Decision::Refuse(Refusal::ObjectIdUnsupported) {
            return Verdict::Refused(Reason::UnsupportedRequest);
        }
        if self.settings.mode == Mode::Standard {
            self.standard(decision, &views)
        } else {
            self.bound(decision)
        }
    }

    /// The pod's AAIs the agent on its node holds (for its node, with an identity).
    fn visible(&self) -> Vec<&'a AssignedFacts> {
        self.cluster
            .assigned
            .iter()
            .filter(|a| on_node(a, self.caller) && a.identity.is_some())
            .collect()
    }

    /// Standard mode: the pod's AAIs decided.
    fn standard(&self, decision: Decision, views: &[AssignedView]) -> Verdict {
        let wanted = &self.settings.wanted;
        let namespaced = self.settings.namespaced();
        let visible = self.visible();
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
        match decision {
            Decision::Refuse(Refusal::Unbound(_)) => Verdict::Refused(self.label_reason()),
            Decision::Refuse(Refusal::Protected(message)) => {
                Verdict::Refused(Reason::IdentityProtected { message })
            }
            Decision::Refuse(Refusal::NotFound { candidates, .. }) => {
                Verdict::Refused(self.choose_failure(&candidates, namespaced))
            }
            Decision::Fetch {
                identity: Some(id),
                plan,
            } => {
                let usable = match eval_assigned(views, &Wanted::Any) {
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
                self.token(Via::Assigned, &id, state_of(&id), &pool, &plan)
            }
            Decision::Wait { created: true, .. } => {
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
            // Nothing usable, nothing `Created` for the request (a wait or "nothing to wait for").
            Decision::Wait { .. } | Decision::Refuse(_) | Decision::Fetch { .. } => {
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

    /// Managed and federated modes: bindings and identities decided, no AAIs, no waiting.
    fn bound(&self, decision: Decision) -> Verdict {
        let namespaced = self.settings.namespaced();
        if self.label.is_none() {
            return Verdict::Refused(self.label_reason());
        }
        let via = if self.settings.mode == Mode::Federated {
            Via::Federated
        } else {
            Via::Binding
        };
        match decision {
            Decision::Refuse(Refusal::Protected(message)) => {
                Verdict::Refused(Reason::IdentityProtected { message })
            }
            Decision::Refuse(Refusal::NotFound { candidates, .. }) if candidates.is_empty() => {
                Verdict::Refused(
                    self.identity_reason(&Wanted::Any)
                        .unwrap_or_else(|| self.label_reason()),
                )
            }
            Decision::Refuse(Refusal::NotFound { candidates, .. }) => {
                Verdict::Refused(self.choose_failure(&candidates, namespaced))
            }
            Decision::Fetch {
                identity: Some(id),
                plan,
            } => {
                // The others the pod may ask for: the bound identities protection leaves.
                let ids = bound_identities(
                    self.ns(),
                    self.label,
                    &self.cluster.bindings,
                    &self.cluster.identities,
                    namespaced,
                );
                let pool: Vec<(IdentityView, Option<String>)> =
                    without_protected(ids, &self.settings.wanted, &self.settings.protected)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| (i, None))
                        .collect();
                self.token(via, &id, None, &pool, &plan)
            }
            Decision::Refuse(_) | Decision::Wait { .. } | Decision::Fetch { .. } => {
                Verdict::Refused(self.label_reason())
            }
        }
    }
}
