//! Which identity a pod may use: the authorisation decision of the node agent (reference §3.4.2, §3.4.3, §3.6).
//!
//! Inputs are plain data trimmed from Kubernetes objects by the agent. The rules:
//! - **Exceptions** (AzurePodIdentityException in the pod's namespace, any label matching case-insensitively on the
//!   value; or the controller heuristic: namespace `--MICNamespace` and a ReplicaSet whose name starts with `mic`):
//!   the pod gets node IMDS tokens directly.
//! - **Standard mode**: the pod's AzureAssignedIdentities (written by the controller) decide. An identity is usable
//!   once `Assigned` (or legacy empty status). While some are `Created` the agent waits (watch-driven, within the
//!   upstream budget). Fast refusals: a pod without the `aadpodidbinding` label, or whose label matches no binding
//!   in scope and that has no assigned identity, is refused at once (upstream hung ~80 s).
//! - **Managed mode**: bindings in the pod's namespace whose selector equals the label name identities in the pod's
//!   namespace; no waiting.
//! - **Federated mode** (podid): like managed mode's matching but following the controller's scope rules (bindings
//!   in any namespace unless namespaced; the identity lives in the binding's namespace; namespaced identities only
//!   for pods of their namespace); the token comes from a federated credential, so Entra checks the pod's
//!   service account as well.
//!
//! Choice: no identity requested -> the first usable identity in a stable order (namespace, name; upstream's
//! order was the informer's, effectively random); requested by client ID or resource ID -> the first whose value
//! matches, compared case-insensitively (upstream compared case-insensitively while waiting and case-sensitively
//! when choosing; GUIDs and ARM IDs are case-insensitive).

use std::collections::BTreeMap;

use super::request::{Wanted, redact};

/// An identity as the agent needs it (from an AzureIdentity or an AAI's embedded copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityView {
    /// Namespace of the AzureIdentity.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid + resourceVersion (keys caches of service-principal tokens to this exact object).
    pub version_key: String,
    /// 0 user-assigned MSI, 1 service principal, 2 service principal certificate.
    pub id_type: i64,
    /// `spec.clientID`.
    pub client_id: String,
    /// `spec.resourceID`.
    pub resource_id: String,
    /// `spec.tenantID`.
    pub tenant_id: String,
    /// `spec.auxiliaryTenantIDs`.
    pub aux_tenant_ids: Vec<String>,
    /// `spec.clientPassword` (namespace, name).
    pub secret_ref: Option<(String, String)>,
    /// The `aadpodidentity.k8s.io/Behavior: namespaced` annotation.
    pub namespaced: bool,
}

/// State of an AzureAssignedIdentity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedState {
    /// `""` (legacy).
    Legacy,
    /// `Created`.
    Created,
    /// `Assigned`.
    Assigned,
    /// Anything else (`Unassigned`, unknown).
    Other,
}

/// One AAI of the requesting pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedView {
    /// The embedded identity.
    pub identity: IdentityView,
    /// Its state.
    pub state: AssignedState,
}

/// An AzureIdentityBinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.azureIdentity`.
    pub identity: String,
    /// `spec.selector`.
    pub selector: String,
}

/// True when an AzurePodIdentityException (its `podLabels`) in the pod's namespace excepts the pod.
#[must_use]
pub fn is_excepted<'a>(
    pod_labels: &BTreeMap<String, String>,
    exceptions: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
) -> bool {
    exceptions.into_iter().any(|ex| {
        ex.iter().any(|(k, v)| {
            pod_labels
                .get(k)
                .is_some_and(|pv| pv.eq_ignore_ascii_case(v))
        })
    })
}

/// Upstream's `isMIC` heuristic: namespace `--MICNamespace` (case-insensitive) and a ReplicaSet owner whose name
/// starts with `mic`.
#[must_use]
pub fn is_controller_pod(
    pod_namespace: &str,
    replicaset: Option<&str>,
    mic_namespace: &str,
) -> bool {
    pod_namespace.eq_ignore_ascii_case(mic_namespace)
        && replicaset.is_some_and(|rs| rs.starts_with("mic"))
}

/// Whether `id` is what the request names (any identity, or the same client ID / resource ID, compared
/// case-insensitively).
#[must_use]
pub fn matches_wanted(id: &IdentityView, wanted: &Wanted) -> bool {
    match wanted {
        Wanted::Any => true,
        Wanted::ClientId(c) => id.client_id.eq_ignore_ascii_case(c),
        Wanted::ResourceId(r) => id.resource_id.eq_ignore_ascii_case(r),
        Wanted::ObjectId(_) => false,
    }
}

/// What the pod's AAIs say right now (standard mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedEval {
    /// Usable identities (legacy-status ones first, as upstream returns those alone when present).
    Ready(Vec<IdentityView>),
    /// Nothing usable yet; `created` tells whether some matching AAI is still `Created`.
    Pending {
        /// Some matching AAI is in `Created`.
        created: bool,
    },
}

/// Evaluates the pod's AAIs for a request (one round of upstream's `listPodIDsWithRetry`).
#[must_use]
pub fn eval_assigned(aais: &[AssignedView], wanted: &Wanted) -> AssignedEval {
    let matching: Vec<&AssignedView> = aais
        .iter()
        .filter(|a| matches_wanted(&a.identity, wanted))
        .collect();
    let pick = |s: AssignedState| -> Vec<IdentityView> {
        let mut v: Vec<IdentityView> = matching
            .iter()
            .filter(|a| a.state == s)
            .map(|a| a.identity.clone())
            .collect();
        v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        v
    };
    let legacy = pick(AssignedState::Legacy);
    if !legacy.is_empty() {
        return AssignedEval::Ready(legacy);
    }
    let assigned = pick(AssignedState::Assigned);
    if !assigned.is_empty() {
        return AssignedEval::Ready(assigned);
    }
    AssignedEval::Pending {
        created: matching.iter().any(|a| a.state == AssignedState::Created),
    }
}

/// Standard mode: can the pod possibly get an identity, or must it be refused at once?
/// `None` = wait for the controller; `Some(msg)` = refuse now.
#[must_use]
pub fn standard_fast_refusal(
    pod_namespace: &str,
    pod_name: &str,
    label: Option<&str>,
    bindings: &[BindingView],
    has_aais: bool,
    force_namespaced: bool,
) -> Option<String> {
    let Some(label) = label.filter(|l| !l.is_empty()) else {
        return Some(format!(
            "pod {pod_namespace}/{pod_name} has no aadpodidbinding label: no identity is bound to it"
        ));
    };
    if has_aais {
        return None;
    }
    let any = bindings
        .iter()
        .any(|b| b.selector == label && (!force_namespaced || b.namespace == pod_namespace));
    if any {
        None
    } else {
        Some(format!(
            "pod {pod_namespace}/{pod_name} has label aadpodidbinding={label}, which matches no AzureIdentityBinding: no identity is bound to it"
        ))
    }
}

/// Standard mode with nothing usable yet: is there anything to wait for? The controller only assigns identities
/// that the pod's bindings reference, so when no AAI of the pod matches the request and no identity referenced by
/// a binding of its selector (in scope) matches it either, the wait could only end in upstream's 404 after ~80 s:
/// refuse at once. `None` = an assignment may still come (wait).
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn standard_nothing_to_wait_for(
    pod_namespace: &str,
    pod_name: &str,
    label: &str,
    wanted: &Wanted,
    bindings: &[BindingView],
    identities: &BTreeMap<(String, String), IdentityView>,
    aais: &[AssignedView],
    force_namespaced: bool,
) -> Option<String> {
    if aais.iter().any(|a| matches_wanted(&a.identity, wanted)) {
        return None;
    }
    let mut referenced: Vec<String> = Vec::new();
    for b in bindings
        .iter()
        .filter(|b| b.selector == label && (!force_namespaced || b.namespace == pod_namespace))
    {
        let Some(id) = identities.get(&(b.namespace.clone(), b.identity.clone())) else {
            continue;
        };
        if (force_namespaced || id.namespaced) && id.namespace != pod_namespace {
            continue;
        }
        if matches_wanted(id, wanted) {
            return None;
        }
        referenced.push(format!("{}/{}", id.namespace, id.name));
    }
    referenced.sort();
    referenced.dedup();
    let asked = match wanted {
        Wanted::ClientId(c) => format!("clientID {}", redact(c)),
        Wanted::ResourceId(r) => format!("resourceID {r}"),
        Wanted::ObjectId(_) | Wanted::Any => "any identity".to_string(),
    };
    let bound = if referenced.is_empty() {
        "they reference no existing AzureIdentity".to_string()
    } else {
        format!("they reference only [{}]", referenced.join(" "))
    };
    Some(format!(
        "no azure identity found for request {asked} (pod {pod_namespace}/{pod_name}): the AzureIdentityBindings for aadpodidbinding={label} bind no such identity ({bound}), so no assignment will come"
    ))
}

/// Cluster identity protection over a candidate list: the protected identities are taken out. Refused (with the
/// reason's words) when the request names a protected identity, or when only protected ones were bound.
pub fn without_protected(
    candidates: Vec<IdentityView>,
    wanted: &Wanted,
    protected: &crate::protect::ProtectedIdentities,
) -> Result<Vec<IdentityView>, String> {
    if protected.is_empty() {
        return Ok(candidates);
    }
    let mut kept = Vec::with_capacity(candidates.len());
    let mut refused = None;
    for id in candidates {
        match protected.check(&id.namespace, &id.client_id, &id.resource_id) {
            None => kept.push(id),
            Some(why) => {
                let named = wanted.is_specific() && matches_wanted(&id, wanted);
                if refused.is_none() || named {
                    refused = Some((named, why, id));
                }
            }
        }
    }
    match refused {
        Some((named, why, id)) if named || kept.is_empty() => {
            Err(crate::protect::ProtectedIdentities::message(
                why,
                &id.namespace,
                &id.name,
                &id.client_id,
            ))
        }
        _ => Ok(kept),
    }
}

/// Identities bound to a pod by bindings (managed and federated modes).
/// `namespaced`: bindings and identities must be in the pod's namespace (managed mode always is).
#[must_use]
pub fn bound_identities(
    pod_namespace: &str,
    label: Option<&str>,
    bindings: &[BindingView],
    identities: &BTreeMap<(String, String), IdentityView>,
    namespaced: bool,
) -> Vec<IdentityView> {
    let Some(label) = label.filter(|l| !l.is_empty()) else {
        return Vec::new();
    };
    let mut out: Vec<IdentityView> = bindings
        .iter()
        .filter(|b| b.selector == label && (!namespaced || b.namespace == pod_namespace))
        .filter_map(|b| identities.get(&(b.namespace.clone(), b.identity.clone())))
        .filter(|id| !(namespaced || id.namespaced) || id.namespace == pod_namespace)
        .cloned()
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
    out
}

/// The final choice among usable identities (after the namespaced filter of standard mode).
pub fn choose(
    candidates: &[IdentityView],
    wanted: &Wanted,
    pod_namespace: &str,
    pod_name: &str,
    force_namespaced: bool,
) -> Result<IdentityView, String> {
    let scoped: Vec<&IdentityView> = candidates
        .iter()
        .filter(|id| !(force_namespaced || id.namespaced) || id.namespace == pod_namespace)
        .collect();
    if let Wanted::ObjectId(o) = wanted {
        return Err(format!(
            "object_id is not supported by the node agent (requested {}): ask by client_id or mi_res_id",
            redact(o)
        ));
    }
    let found = scoped.iter().find(|id| matches_wanted(id, wanted));
    match (found, wanted) {
        (Some(id), _) => Ok((*id).clone()),
        (None, Wanted::ClientId(c)) => Err(format!(
            "no azure identity found for request clientID {} (pod {pod_namespace}/{pod_name})",
            redact(c)
        )),
        (None, Wanted::ResourceId(r)) => Err(format!(
            "no azure identity found for request resourceID {r} (pod {pod_namespace}/{pod_name})"
        )),
        (None, _) => Err(format!(
            "no azure identity found for pod {pod_namespace}/{pod_name}"
        )),
    }
}

/// Upstream's message when nothing became usable within the `Created` budget.
#[must_use]
pub fn created_timeout_message(
    ns: &str,
    pod: &str,
    attempts: u32,
    interval_secs: u64,
    wanted: &Wanted,
) -> String {
    format!(
        "{}getting assigned identities for pod {ns}/{pod} in CREATED state failed after {attempts} attempts, retry duration [{interval_secs}]s, error: <nil>. Check MIC pod logs for identity assignment errors",
        request_part(wanted)
    )
}

fn request_part(wanted: &Wanted) -> String {
    match wanted {
        Wanted::ClientId(c) => format!("clientID in request: {}, ", redact(c)),
        Wanted::ResourceId(r) => format!("resourceID in request: {r}, "),
        _ => String::new(),
    }
}

/// Upstream's message when the whole budget ran out.
#[must_use]
pub fn assigned_timeout_message(
    ns: &str,
    pod: &str,
    attempts: u32,
    interval_secs: u64,
    wanted: &Wanted,
) -> String {
    let req = request_part(wanted);
    format!(
        "{req}getting assigned identities for pod {ns}/{pod} in ASSIGNED state failed after {attempts} attempts, retry duration [{interval_secs}]s, error: <nil>. Check MIC pod logs for identity assignment errors"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ns: &str, name: &str, client: &str) -> IdentityView {
        IdentityView {
            namespace: ns.into(),
            name: name.into(),
            version_key: format!("{name}-uid/1"),
            id_type: 0,
            client_id: client.into(),
            resource_id: format!(
                "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            ),
            tenant_id: "t".into(),
            aux_tenant_ids: vec![],
            secret_ref: None,
            namespaced: false,
        }
    }

    fn aai(i: IdentityView, state: AssignedState) -> AssignedView {
        AssignedView { identity: i, state }
    }

    fn binding(ns: &str, identity: &str, selector: &str) -> BindingView {
        BindingView {
            namespace: ns.into(),
            name: format!("{identity}-b"),
            identity: identity.into(),
            selector: selector.into(),
        }
    }

    #[test]
    fn exceptions() {
        let pod: BTreeMap<String, String> = [("app".to_string(), "MIC".to_string())].into();
        let ex: BTreeMap<String, String> = [("app".to_string(), "mic".to_string())].into();
        let other: BTreeMap<String, String> = [("app".to_string(), "x".to_string())].into();
        assert!(is_excepted(&pod, [&ex]));
        assert!(is_excepted(&pod, [&other, &ex]));
        assert!(!is_excepted(&pod, [&other]));
        assert!(!is_excepted(&pod, std::iter::empty()));
        assert!(is_controller_pod("Default", Some("mic-7d9f"), "default"));
        assert!(is_controller_pod(
            "default",
            Some("microservice"),
            "default"
        ));
        assert!(!is_controller_pod(
            "kube-system",
            Some("mic-7d9f"),
            "default"
        ));
        assert!(!is_controller_pod("default", None, "default"));
    }

    #[test]
    fn eval_table() {
        let a = id("default", "a", "AAAA-1");
        let b = id("default", "b", "bbbb-2");
        let cases: Vec<(Vec<AssignedView>, Wanted, AssignedEval)> = vec![
            (
                vec![],
                Wanted::Any,
                AssignedEval::Pending { created: false },
            ),
            (
                vec![aai(a.clone(), AssignedState::Created)],
                Wanted::Any,
                AssignedEval::Pending { created: true },
            ),
            (
                vec![
                    aai(a.clone(), AssignedState::Created),
                    aai(b.clone(), AssignedState::Assigned),
                ],
                Wanted::Any,
                AssignedEval::Ready(vec![b.clone()]),
            ),
            (
                vec![
                    aai(a.clone(), AssignedState::Created),
                    aai(b.clone(), AssignedState::Assigned),
                ],
                Wanted::ClientId("aaaa-1".into()),
                AssignedEval::Pending { created: true },
            ),
            (
                vec![
                    aai(a.clone(), AssignedState::Assigned),
                    aai(b.clone(), AssignedState::Legacy),
                ],
                Wanted::Any,
                AssignedEval::Ready(vec![b.clone()]),
            ),
            (
                vec![
                    aai(b.clone(), AssignedState::Assigned),
                    aai(a.clone(), AssignedState::Assigned),
                ],
                Wanted::Any,
                AssignedEval::Ready(vec![a.clone(), b.clone()]),
            ),
            (
                vec![aai(a.clone(), AssignedState::Other)],
                Wanted::Any,
                AssignedEval::Pending { created: false },
            ),
            (
                vec![aai(a.clone(), AssignedState::Assigned)],
                Wanted::ResourceId(a.resource_id.to_uppercase()),
                AssignedEval::Ready(vec![a.clone()]),
            ),
        ];
        for (i, (aais, wanted, want)) in cases.into_iter().enumerate() {
            assert_eq!(eval_assigned(&aais, &wanted), want, "case {i}");
        }
    }

    #[test]
    fn nothing_to_wait_for() {
        let a = id("default", "a", "ca");
        let ids: BTreeMap<(String, String), IdentityView> =
            [(("default".to_string(), "a".to_string()), a.clone())].into();
        let bs = vec![
            binding("default", "a", "sel"),
            binding("default", "gone", "sel"),
        ];
        let wait = |wanted: Wanted, aais: &[AssignedView]| {
            standard_nothing_to_wait_for("default", "p", "sel", &wanted, &bs, &ids, aais, false)
        };
        // The bound identity is asked for (or any): its assignment may still come.
        assert_eq!(wait(Wanted::ClientId("CA".into()), &[]), None);
        assert_eq!(wait(Wanted::Any, &[]), None);
        // Another identity: refused at once, naming what the bindings do reference.
        let m = wait(Wanted::ClientId("00000000-other-client".into()), &[]).expect("refused");
        assert!(
            m.contains("[default/a]") && m.contains("aadpodidbinding=sel"),
            "{m}"
        );
        assert!(wait(Wanted::ResourceId("/x".into()), &[]).is_some());
        // A matching AAI (e.g. Created) means wait.
        let mut other = id("default", "b", "cb");
        other.namespace = "default".into();
        let aais = [aai(other, AssignedState::Created)];
        assert_eq!(wait(Wanted::ClientId("cb".into()), &aais), None);
        // Bindings whose identities do not exist: nothing to wait for, even for any identity.
        let none = standard_nothing_to_wait_for(
            "default",
            "p",
            "sel",
            &Wanted::Any,
            &[binding("default", "gone", "sel")],
            &ids,
            &[],
            false,
        )
        .expect("refused");
        assert!(none.contains("no existing AzureIdentity"), "{none}");
        // A namespaced identity of another namespace is out of scope.
        let mut n = id("other", "n", "cn");
        n.namespaced = true;
        let ids2: BTreeMap<(String, String), IdentityView> =
            [(("other".to_string(), "n".to_string()), n)].into();
        assert!(
            standard_nothing_to_wait_for(
                "default",
                "p",
                "sel",
                &Wanted::ClientId("cn".into()),
                &[binding("other", "n", "sel")],
                &ids2,
                &[],
                false,
            )
            .is_some()
        );
    }

    #[test]
    fn fast_refusals() {
        let bs = vec![
            binding("default", "a", "sel"),
            binding("other", "b", "osel"),
        ];
        assert!(standard_fast_refusal("default", "p", None, &bs, false, false).is_some());
        assert!(standard_fast_refusal("default", "p", Some(""), &bs, true, false).is_some());
        assert!(standard_fast_refusal("default", "p", Some("sel"), &bs, false, false).is_none());
        assert!(
            standard_fast_refusal("default", "p", Some("nomatch"), &bs, false, false).is_some()
        );
        assert!(standard_fast_refusal("default", "p", Some("nomatch"), &bs, true, false).is_none());
        assert!(standard_fast_refusal("default", "p", Some("osel"), &bs, false, false).is_none());
        assert!(standard_fast_refusal("default", "p", Some("osel"), &bs, false, true).is_some());
    }

    #[test]
    fn bound_and_choose() {
        let mut ids = BTreeMap::new();
        let a = id("default", "a", "aaaa-1");
        let mut b = id("other", "b", "bbbb-2");
        ids.insert(("default".into(), "a".into()), a.clone());
        ids.insert(("other".into(), "b".into()), b.clone());
        let bs = vec![
            binding("default", "a", "sel"),
            binding("other", "b", "sel"),
            binding("default", "missing", "sel"),
        ];
        assert_eq!(
            bound_identities("default", Some("sel"), &bs, &ids, true),
            vec![a.clone()]
        );
        assert_eq!(
            bound_identities("default", Some("sel"), &bs, &ids, false),
            vec![a.clone(), b.clone()]
        );
        assert!(bound_identities("default", None, &bs, &ids, false).is_empty());
        b.namespaced = true;
        ids.insert(("other".into(), "b".into()), b.clone());
        assert_eq!(
            bound_identities("default", Some("sel"), &bs, &ids, false),
            vec![a.clone()]
        );

        let both = vec![a.clone(), id("other", "c", "cccc-3")];
        assert_eq!(
            choose(&both, &Wanted::Any, "default", "p", false).map(|i| i.name),
            Ok("a".into())
        );
        assert_eq!(
            choose(
                &both,
                &Wanted::ClientId("CCCC-3".into()),
                "default",
                "p",
                false
            )
            .map(|i| i.name),
            Ok("c".into())
        );
        assert!(
            choose(
                &both,
                &Wanted::ClientId("CCCC-3".into()),
                "default",
                "p",
                true
            )
            .is_err()
        );
        let e = choose(
            &both,
            &Wanted::ClientId("zzzz-0000-9999".into()),
            "default",
            "p",
            false,
        )
        .unwrap_err();
        assert!(e.contains("zzzz##### REDACTED #####9999"), "{e}");
        assert!(choose(&[], &Wanted::Any, "default", "p", false).is_err());
        assert!(choose(&both, &Wanted::ObjectId("o".into()), "default", "p", false).is_err());
    }
}
