//! The doctor's tests: every reason on a table of worlds, the details of a diagnosis, and (in `agreement`)
//! the property that the doctor's verdict is the agent's decision.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::assign::assigned_name;
use crate::nmi::decide::{Decision, World};
use crate::nmi::request::Wanted;
use crate::nmi::select::{AssignedState, AssignedView, BindingView, IdentityView};

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

/// The agent's decision: the machine it drives ([`crate::nmi::decide::decide`]), one round at the start of
/// the request, on what the agent on the pod's node holds (its AAIs for that node; no identities in standard
mod agreement;
