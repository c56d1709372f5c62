//! The doctor and the agent decide with one machine: on random clusters the doctor's verdict is the agent's
//! decision.

use super::*;
use crate::doctor::diagnosis::on_node;

/// The agent's decision: the machine it drives ([`crate::nmi::decide::decide`]), one round at the start of
/// the request, on what the agent on the pod's node holds (its AAIs for that node; no identities in standard
/// mode, where it does not watch them). Served = a fetch with a plan.
/// `Some(None)`: the node's IMDS answers (an excepted pod).
fn agent_replay(
    caller: &CallerFacts,
    c: &ClusterFacts,
    s: &Settings,
) -> Option<Option<IdentityView>> {
    let aais: Vec<AssignedView> = c
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
    let none = BTreeMap::new();
    let standard = s.mode == Mode::Standard;
    let world = World {
        bindings: &c.bindings,
        identities: if standard { &none } else { &c.identities },
        assigned: if standard { &aais } else { &[] },
    };
    let exceptions = c
        .exceptions
        .iter()
        .filter(|e| e.namespace == caller.namespace)
        .map(|e| &e.pod_labels);
    match crate::nmi::decide::decide(
        &s.policy(),
        &caller.view(),
        &world,
        exceptions,
        &s.wanted,
        std::time::Duration::ZERO,
    ) {
        Decision::Fetch {
            identity,
            plan: Ok(_),
        } => Some(identity),
        _ => None,
    }
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
        (
            0usize..3,
            any::<bool>(),
            0usize..4,
            0usize..4,
            proptest::option::of((0usize..2, 0usize..2)),
        ),
    )
        .prop_map(
            move |(p, bs, ids, aais, (mode, force, wanted, guard, exception))| {
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
                    // An exception in either namespace for a selector, its value in another letter case.
                    exceptions: exception
                        .map(|(ns, sel)| ExceptionFacts {
                            namespace: nss[ns].into(),
                            name: "ex".into(),
                            pod_labels: [(POD_LABEL_KEY.to_string(), sels[sel].to_uppercase())]
                                .into(),
                        })
                        .into_iter()
                        .collect(),
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
            },
        )
}

proptest! {
    /// The doctor's verdict is the agent's decision: a token exactly when the agent would serve one, for the
    /// same identity (or the node's IMDS for an excepted pod); every refusal has words and a hint.
    #[test]
    fn agrees_with_the_agent((caller, c, s) in world()) {
        let d = diagnose_caller(&caller, &c, &s);
        let agent = agent_replay(&caller, &c, &s);
        match (&d.verdict, agent) {
            (Verdict::Token { chosen: Some(got), .. }, Some(Some(want))) => {
                prop_assert_eq!(&got.client_id, &want.client_id);
                prop_assert_eq!(&got.namespace, &want.namespace);
            }
            (Verdict::Token { via: Via::Exception, chosen: None, .. }, Some(None)) => {}
            (Verdict::Refused(r), None) => {
                prop_assert!(!r.message().is_empty() && !r.hint().is_empty());
            }
            (got, want) => prop_assert!(false, "doctor {:?} vs agent {:?}", got, want),
        }
    }
}
