use super::*;
use crate::nmi::select::AssignedState;

fn id(ns: &str, name: &str, t: i64) -> IdentityView {
    IdentityView {
        namespace: ns.into(),
        name: name.into(),
        version_key: "uid/1".into(),
        id_type: t,
        client_id: format!("cid-{name}"),
        resource_id: format!(
            "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        ),
        tenant_id: "t".into(),
        aux_tenant_ids: vec![],
        secret_ref: None,
        namespaced: false,
    }
}

fn policy(mode: Mode) -> Policy {
    Policy {
        mode,
        force_namespaced: false,
        mic_namespace: "kube-system".into(),
        protected: ProtectedIdentities::default(),
        wait: WaitBudget {
            retry_created: 16,
            retry_assigned: 4,
            retry_interval_secs: 5,
        },
    }
}

fn labels(sel: &str) -> BTreeMap<String, String> {
    [(POD_LABEL_KEY.to_string(), sel.to_string())].into()
}

fn caller(labels: &BTreeMap<String, String>) -> Caller<'_> {
    Caller {
        namespace: "app",
        name: "p",
        labels,
        replicaset: None,
        service_account: "sa",
    }
}

fn binding(identity: &str, sel: &str) -> BindingView {
    BindingView {
        namespace: "app".into(),
        name: format!("b-{identity}"),
        identity: identity.into(),
        selector: sel.into(),
    }
}

#[test]
fn identity_kinds_keep_their_wire_value() {
    for t in -1..5 {
        assert_eq!(IdentityKind::from_wire(t).wire(), t);
    }
    assert_eq!(IdentityKind::from_wire(0), IdentityKind::UserAssignedMsi);
    assert_eq!(IdentityKind::from_wire(7), IdentityKind::Unsupported(7));
}

#[test]
fn standard_waits_within_the_budget_then_refuses() {
    let l = labels("sel");
    let c = caller(&l);
    let p = policy(Mode::Standard);
    let bindings = [binding("i0", "sel")];
    let identities = [(("app".to_string(), "i0".to_string()), id("app", "i0", 0))].into();
    let created = [AssignedView {
        identity: id("app", "i0", 0),
        state: AssignedState::Created,
    }];
    let w = World {
        bindings: &bindings,
        identities: &identities,
        assigned: &created,
    };
    assert_eq!(
        select(&p, &c, &w, &Wanted::Any, Duration::ZERO),
        Decision::Wait {
            until: Duration::from_secs(100),
            created: true
        }
    );
    let Decision::Refuse(r) = select(&p, &c, &w, &Wanted::Any, Duration::from_secs(100)) else {
        panic!("refused after the budget");
    };
    assert!(matches!(r, Refusal::AssignedTimeout(_)));
    assert_eq!(r.reply(true).status, 503);
    assert_eq!(
        r.reply(true).retry_after,
        Some(crate::nmi::reply::RETRY_AFTER_SECS)
    );
    assert_eq!(r.reply(false).status, 404);
    // Nothing assigned yet, a binding may still bring one: wait for the Created budget only.
    let w = World { assigned: &[], ..w };
    assert_eq!(
        select(&p, &c, &w, &Wanted::Any, Duration::ZERO),
        Decision::Wait {
            until: Duration::from_secs(80),
            created: false
        }
    );
    assert!(matches!(
        select(&p, &c, &w, &Wanted::Any, Duration::from_secs(80)),
        Decision::Refuse(Refusal::CreatedTimeout(_))
    ));
}

#[test]
fn plans_follow_the_identity_kind_and_mode() {
    let l = labels("sel");
    let c = caller(&l);
    assert_eq!(
        plan(Mode::Managed, &id("app", "i0", 0), &c),
        Ok(FetchPlan::Imds {
            client_id: "cid-i0".into()
        })
    );
    let mut sp = id("app", "i1", 2);
    assert_eq!(
        plan(Mode::Standard, &sp, &c).map_err(|r| r.reply(false)),
        Err(Reply::error(
            503,
            "identity app/i1 has no clientPassword secret reference"
        ))
    );
    sp.secret_ref = Some(("app".into(), "s".into()));
    assert!(matches!(
        plan(Mode::Standard, &sp, &c),
        Ok(FetchPlan::ServicePrincipal {
            secret: SecretKind::Certificate,
            ..
        })
    ));
    assert_eq!(
        plan(Mode::Standard, &id("app", "i3", 3), &c).map_err(|r| r.reply(false).status),
        Err(503)
    );
    let mut fed = id("app", "i0", 9);
    assert!(matches!(
        plan(Mode::Federated, &fed, &c),
        Ok(FetchPlan::Federated { .. })
    ));
    fed.tenant_id = " ".into();
    assert_eq!(
        plan(Mode::Federated, &fed, &c).map_err(|r| r.reply(false).status),
        Err(403)
    );
}

#[test]
fn exceptions_get_the_node_imds_and_object_id_is_refused() {
    let l = labels("sel");
    let c = caller(&l);
    let p = policy(Mode::Managed);
    let ex: BTreeMap<String, String> = [(POD_LABEL_KEY.to_string(), "SEL".to_string())].into();
    let w = World {
        bindings: &[],
        identities: &BTreeMap::new(),
        assigned: &[],
    };
    let d = decide(
        &p,
        &c,
        &w,
        [&ex],
        &Wanted::ClientId("x".into()),
        Duration::ZERO,
    );
    assert!(matches!(
        d,
        Decision::Fetch {
            identity: None,
            plan: Ok(FetchPlan::NodeImds { .. })
        }
    ));
    let d = decide(
        &p,
        &c,
        &w,
        [],
        &Wanted::ObjectId("o".into()),
        Duration::ZERO,
    );
    assert_eq!(d, Decision::Refuse(Refusal::ObjectIdUnsupported));
    assert_eq!(
        Refusal::ObjectIdUnsupported.reply(true).body,
        "object_id is not supported by the node agent: ask by client_id or mi_res_id\n"
    );
}

#[test]
fn requests_are_parsed_once() {
    assert_eq!(
        TokenRequest::parse("resource=r", None, true),
        Err(Refusal::MetadataHeaderMissing)
    );
    assert_eq!(
        TokenRequest::parse("", Some(b"true"), true),
        Err(Refusal::ResourceEmpty)
    );
    let long = format!("resource={}", "a".repeat(MAX_RESOURCE_BYTES + 1));
    assert_eq!(
        TokenRequest::parse(&long, None, false).map_err(|r| r.reply(false).body),
        Err(format!(
            "parameter resource is too long ({} bytes; at most {MAX_RESOURCE_BYTES})\n",
            MAX_RESOURCE_BYTES + 1
        ))
    );
    let r = TokenRequest::parse("resource=r&client_id=c", None, false).expect("ok");
    assert_eq!(r.wanted, Wanted::ClientId("c".into()));
    let local = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(
        TokenRequest::parse_host("resource=r", "", "p", local).map_err(|r| r.reply(false).status),
        Err(400)
    );
    assert_eq!(
        TokenRequest::parse_host("resource=r", "ns", "p", "10.0.0.1".parse().expect("ip"))
            .map_err(|r| r.reply(false).status),
        Err(500)
    );
}

#[test]
fn budget_refusals_carry_retry_after() {
    let r = Refusal::Budget {
        namespace: "app".into(),
        name: "p".into(),
        burst: 20,
        per_minute: 60,
        retry_after_secs: 3,
    }
    .reply(false);
    assert_eq!(r.status, 429);
    assert_eq!(r.retry_after, Some(3));
    assert_eq!(
        r.body,
        "pod app/p asked for too many different resources (20 at once, then 60 a minute): ask again in 3 s\n"
    );
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Standard mode's wait always moves forward: a `Wait` is for a point after now and within the whole
        /// budget, and past the budget the machine refuses (the agent's loop cannot spin or wait forever).
        #[test]
        fn waits_move_forward(
            states in proptest::collection::vec(0usize..4, 0..3),
            created in 0u32..20,
            assigned in 0u32..20,
            interval in 1u64..10,
            elapsed_secs in 0u64..500,
        ) {
            let l = labels("sel");
            let c = caller(&l);
            let mut p = policy(Mode::Standard);
            p.wait = WaitBudget {
                retry_created: created,
                retry_assigned: assigned,
                retry_interval_secs: interval,
            };
            let bindings = [binding("i0", "sel")];
            let identities = [(("app".to_string(), "i0".to_string()), id("app", "i0", 0))].into();
            let st = [
                AssignedState::Created,
                AssignedState::Other,
                AssignedState::Created,
                AssignedState::Other,
            ];
            let aais: Vec<AssignedView> = states
                .iter()
                .map(|s| AssignedView { identity: id("app", "i0", 0), state: st[*s].clone() })
                .collect();
            let w = World { bindings: &bindings, identities: &identities, assigned: &aais };
            let elapsed = Duration::from_secs(elapsed_secs);
            let total = Duration::from_secs(interval) * (created + assigned);
            match select(&p, &c, &w, &Wanted::Any, elapsed) {
                Decision::Wait { until, .. } => {
                    prop_assert!(until > elapsed && until <= total);
                }
                Decision::Refuse(r) => {
                    let reply = r.reply(false);
                    prop_assert_eq!(reply.status, 404);
                    prop_assert!(!reply.body.trim().is_empty());
                }
                Decision::Fetch { .. } => prop_assert!(false, "nothing is assigned"),
            }
        }
    }
}
