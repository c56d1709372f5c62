//! Property tests over small random worlds: determinism, convergence, safety, and `plan_dirty` equal to
//! `plan_all` after events from a converged state.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::support::*;
use crate::assign::{
    AaiKey, AssignedInfo, AssignedStatus, BindingInfo, Cluster, Config, IdentityInfo, NodeInfo,
    ObjRef, PodInfo, Target, assigned_name,
};

/// Name pools chosen so AAI names collide across pods (`a-b`/`c` vs `a`/`b-c`) and within pods.
const NAMESPACES: [&str; 4] = ["default", "c", "b-c", "ns"];
const POD_NAMES: [&str; 8] = ["a", "a-b", "web", "web-1", "p1", "p2", "p3", "p4"];
const ID_NAMES: [&str; 3] = ["x", "y", "c-x"];
const BINDING_NAMES: [&str; 3] = ["b1", "b2", "b3"];
const SELECTORS: [&str; 4] = ["s1", "s2", "s3", ""];
/// Six real nodes, plus an unscheduled pod (`""`) and a node the index never learns about.
const NODE_NAMES: [&str; 8] = ["n0", "n1", "n2", "n3", "n4", "vm5", "", "ghost"];
const CLIENTS: [&str; 4] = ["c0", "c1", "C2", "c3"];
const RVS: [&str; 3] = ["1", "2", "3"];
const TYPES: [i64; 5] = [0, 0, 0, 1, 2];

fn rids() -> [String; 5] {
    [
        rid("id0"),
        rid("ID0"),
        rid("id1"),
        rid("id2"),
        "not-a-resource-id".to_owned(),
    ]
}

/// Three targets (one spelled two ways), a VM whose fallback key equals an explicit one, and none.
fn targets() -> [Option<Target>; 5] {
    let mut upper = vmss("SS1");
    upper.resource_group = RG.to_uppercase();
    [
        Some(vmss("ss1")),
        Some(upper),
        Some(vmss("ss2")),
        Some(vm("vm5")),
        None,
    ]
}

fn status(i: usize) -> AssignedStatus {
    match i % 5 {
        0 => AssignedStatus::Created,
        1 | 2 => AssignedStatus::Assigned,
        3 => AssignedStatus::Legacy,
        _ => AssignedStatus::Unassigned,
    }
}

type PodT = (usize, usize, usize, usize, bool);
type IdT = (usize, usize, usize, usize, usize, bool, usize);
type BindT = (usize, usize, usize, usize, usize);
/// A binding for the `pick`-th generated identity (when `use_identity`), else a raw [`BindT`].
type BindPickT = (bool, usize, BindT);
type JunkT = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    bool,
    bool,
);
type CopyT = (bool, usize, bool, bool, usize);

#[derive(Debug, Clone)]
struct World {
    pods: Vec<PodT>,
    nodes: Vec<(bool, usize)>,
    identities: Vec<IdT>,
    bindings: Vec<BindPickT>,
    /// Two pods whose AAI names collide (`a-b` in `c`, `a` in `b-c`): selector, their two nodes.
    collide: Option<(usize, usize, usize)>,
    junk: Vec<JunkT>,
    copies: Vec<CopyT>,
    arm_extra: Vec<(usize, usize)>,
    cfg: (bool, bool, bool, usize),
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(
            (
                0..4usize,
                0..8usize,
                0..8usize,
                0..4usize,
                prop::bool::weighted(0.15),
            ),
            0..=30,
        ),
        prop::collection::vec((prop::bool::weighted(0.9), 0..5usize), 6),
        prop::collection::vec(
            (
                0..4usize,
                0..3usize,
                0..5usize,
                0..5usize,
                0..4usize,
                prop::bool::weighted(0.2),
                0..3usize,
            ),
            1..=5,
        ),
        (
            prop::collection::vec(
                (
                    prop::bool::weighted(0.85),
                    0..5usize,
                    (0..4usize, 0..3usize, 0..3usize, 0..3usize, 0..3usize),
                ),
                1..=5,
            ),
            prop::option::weighted(0.3, (0..3usize, 0..8usize, 0..8usize)),
        ),
        prop::collection::vec(
            (
                0..4usize,
                0..8usize,
                0..3usize,
                0..8usize,
                0..5usize,
                0..5usize,
                0..4usize,
                0..5usize,
                any::<bool>(),
                prop::bool::weighted(0.2),
            ),
            0..=6,
        ),
        prop::collection::vec(
            (
                prop::bool::weighted(0.8),
                0..5usize,
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.1),
                0..6usize,
            ),
            0..=40,
        ),
        prop::collection::vec((0..5usize, 0..5usize), 0..=4),
        (
            prop::bool::weighted(0.15),
            any::<bool>(),
            any::<bool>(),
            0..16usize,
        ),
    )
        .prop_map(
            |(pods, nodes, identities, (bindings, collide), junk, copies, arm_extra, cfg)| World {
                pods,
                nodes,
                identities,
                bindings,
                collide,
                junk,
                copies,
                arm_extra,
                cfg,
            },
        )
}

fn mk_pod(p: &PodT) -> PodInfo {
    PodInfo {
        namespace: NAMESPACES[p.0].to_owned(),
        name: POD_NAMES[p.1].to_owned(),
        node: NODE_NAMES[p.2].to_owned(),
        selector: SELECTORS[p.3].to_owned(),
        finished: p.4,
    }
}

fn mk_identity(i: &IdT) -> IdentityInfo {
    let ty = TYPES[i.2];
    IdentityInfo {
        namespace: NAMESPACES[i.0].to_owned(),
        name: ID_NAMES[i.1].to_owned(),
        resource_version: RVS[i.6].to_owned(),
        id_type: ty,
        resource_id: if ty == 0 {
            rids()[i.3].clone()
        } else {
            String::new()
        },
        client_id: CLIENTS[i.4].to_owned(),
        namespaced: i.5,
    }
}

fn mk_binding(b: &BindT) -> BindingInfo {
    BindingInfo {
        namespace: NAMESPACES[b.0].to_owned(),
        name: BINDING_NAMES[b.1].to_owned(),
        resource_version: RVS[b.4].to_owned(),
        identity: ID_NAMES[b.2].to_owned(),
        selector: SELECTORS[b.3].to_owned(),
    }
}

fn mk_node(i: usize, n: &(bool, usize)) -> Option<NodeInfo> {
    n.0.then(|| NodeInfo {
        name: NODE_NAMES[i].to_owned(),
        target: targets()[n.1].clone(),
    })
}

fn mk_cfg(w: &World) -> Config {
    let (force, finished, fallback, immutable) = w.cfg;
    Config {
        force_namespaced: force,
        release_finished_pods: finished,
        fallback_subscription: if fallback {
            SUB.to_owned()
        } else {
            String::new()
        },
        fallback_resource_group: if fallback {
            RG.to_owned()
        } else {
            String::new()
        },
        immutable_client_ids: CLIENTS
            .iter()
            .enumerate()
            .filter(|(i, _)| immutable & (1 << i) != 0)
            .map(|(_, c)| c.to_lowercase())
            .collect(),
    }
}

/// Builds the world: objects, AAIs copied from the desired set (perturbed) plus junk, and an ARM model
/// consistent with the Assigned AAIs plus out-of-band extras.
fn build(w: &World) -> (Cluster, Config, Model) {
    let cfg = mk_cfg(w);
    let mut c = Cluster::new();
    for (i, n) in w.nodes.iter().enumerate() {
        if let Some(node) = mk_node(i, n) {
            c.apply_node(node);
        }
    }
    for i in &w.identities {
        c.apply_identity(mk_identity(i));
    }
    for (use_identity, pick, raw) in &w.bindings {
        let mut b = mk_binding(raw);
        if *use_identity && !w.identities.is_empty() {
            let id = mk_identity(&w.identities[pick % w.identities.len()]);
            b.namespace = id.namespace;
            b.identity = id.name;
        }
        c.apply_binding(b);
    }
    for p in &w.pods {
        c.apply_pod(mk_pod(p));
    }
    if let Some((sel, n1, n2)) = w.collide {
        // Both want `a-b-c-<identity>` for every identity bound to the selector.
        c.apply_pod(mk_pod(&(1, 1, n1, sel, false)));
        c.apply_pod(mk_pod(&(2, 0, n2, sel, false)));
    }
    let want = oracle(&c, &cfg);
    for ((k, want), copy) in want.iter().zip(&w.copies) {
        let (present, st, pre, deleting, perturb) = *copy;
        if !present {
            continue;
        }
        let Some(id) = c
            .identity(&want.identity.namespace, &want.identity.name)
            .cloned()
        else {
            continue;
        };
        let mut a = AssignedInfo {
            key: k.clone(),
            identity: want.identity.clone(),
            binding: want.binding.clone(),
            id_type: id.id_type,
            resource_id: id.resource_id.clone(),
            client_id: id.client_id.clone(),
            pod: want.pod.clone(),
            pod_namespace: want.pod_namespace.clone(),
            node: want.node.clone(),
            status: status(st),
            preexisting: pre,
            deleting,
        };
        match perturb {
            0 => a.identity.resource_version = "old".to_owned(),
            1 => a.node = "n0".to_owned(),
            _ => {}
        }
        c.apply_assigned(a);
    }
    for j in &w.junk {
        let (kns, pod, idn, node, ty, r, client, st, pre, deleting) = *j;
        let pod_ns = NAMESPACES[(kns + 1) % 4];
        let name = assigned_name(POD_NAMES[pod], pod_ns, ID_NAMES[idn]);
        let id_type = TYPES[ty];
        c.apply_assigned(AssignedInfo {
            key: AaiKey {
                namespace: if kns == 0 {
                    "default".to_owned()
                } else {
                    NAMESPACES[kns].to_owned()
                },
                name,
            },
            identity: ObjRef {
                namespace: NAMESPACES[kns].to_owned(),
                name: ID_NAMES[idn].to_owned(),
                resource_version: "1".to_owned(),
            },
            binding: ObjRef {
                namespace: NAMESPACES[kns].to_owned(),
                name: "b1".to_owned(),
                resource_version: "1".to_owned(),
            },
            id_type,
            resource_id: if id_type == 0 {
                rids()[r].clone()
            } else {
                String::new()
            },
            client_id: CLIENTS[client].to_owned(),
            pod: POD_NAMES[pod].to_owned(),
            pod_namespace: pod_ns.to_owned(),
            node: if node == 6 {
                "gone".to_owned()
            } else {
                NODE_NAMES[node].to_owned()
            },
            status: status(st),
            preexisting: pre,
            deleting,
        });
    }
    let mut m = Model::default();
    for a in c.assigned.values() {
        if a.id_type == 0
            && matches!(a.status, AssignedStatus::Assigned | AssignedStatus::Legacy)
            && let Some(t) = c.node_target(&a.node, &cfg)
        {
            m.arm
                .entry(t.key())
                .or_default()
                .insert(a.resource_id.to_lowercase());
        }
    }
    for (t, r) in &w.arm_extra {
        if let Some(t) = &targets()[*t] {
            m.arm
                .entry(t.key())
                .or_default()
                .insert(rids()[*r].to_lowercase());
        }
    }
    (c, cfg, m)
}

/// One watch event.
#[derive(Debug, Clone)]
enum Event {
    Pod(PodT),
    DeletePod(usize, usize),
    Identity(IdT),
    DeleteIdentity(usize, usize),
    Binding(BindT),
    DeleteBinding(usize, usize),
    Node(usize, (bool, usize)),
    DeleteAssigned(usize),
    TouchAssigned(usize, usize, bool, bool),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (0..4usize, 0..8usize, 0..8usize, 0..4usize, prop::bool::weighted(0.2)).prop_map(Event::Pod),
        2 => (0..4usize, 0..8usize).prop_map(|(a, b)| Event::DeletePod(a, b)),
        2 => (0..4usize, 0..3usize, 0..5usize, 0..5usize, 0..4usize, prop::bool::weighted(0.2), 0..3usize)
            .prop_map(Event::Identity),
        1 => (0..4usize, 0..3usize).prop_map(|(a, b)| Event::DeleteIdentity(a, b)),
        2 => (0..4usize, 0..3usize, 0..3usize, 0..3usize, 0..3usize).prop_map(Event::Binding),
        1 => (0..4usize, 0..3usize).prop_map(|(a, b)| Event::DeleteBinding(a, b)),
        2 => (0..6usize, (prop::bool::weighted(0.7), 0..5usize)).prop_map(|(i, n)| Event::Node(i, n)),
        1 => (0..64usize).prop_map(Event::DeleteAssigned),
        2 => (0..64usize, 0..5usize, any::<bool>(), prop::bool::weighted(0.3))
            .prop_map(|(i, s, p, d)| Event::TouchAssigned(i, s, p, d)),
    ]
}

fn apply_event(c: &mut Cluster, e: &Event) {
    match e {
        Event::Pod(p) => c.apply_pod(mk_pod(p)),
        Event::DeletePod(ns, n) => c.delete_pod(NAMESPACES[*ns], POD_NAMES[*n]),
        Event::Identity(i) => c.apply_identity(mk_identity(i)),
        Event::DeleteIdentity(ns, n) => c.delete_identity(NAMESPACES[*ns], ID_NAMES[*n]),
        Event::Binding(b) => c.apply_binding(mk_binding(b)),
        Event::DeleteBinding(ns, n) => c.delete_binding(NAMESPACES[*ns], BINDING_NAMES[*n]),
        Event::Node(i, n) => match mk_node(*i, n) {
            Some(node) => c.apply_node(node),
            None => c.delete_node(NODE_NAMES[*i]),
        },
        Event::DeleteAssigned(i) => {
            let keys: Vec<AaiKey> = c.assigned.keys().cloned().collect();
            if !keys.is_empty() {
                c.delete_assigned(&keys[i % keys.len()]);
            }
        }
        Event::TouchAssigned(i, s, pre, deleting) => {
            let all: Vec<AssignedInfo> = c.assigned.values().cloned().collect();
            if !all.is_empty() {
                let mut a = all[i % all.len()].clone();
                a.status = status(*s);
                a.preexisting = *pre;
                a.deleting = *deleting;
                c.apply_assigned(a);
            }
        }
    }
}

fn blocked_keys(p: &crate::assign::Plan) -> BTreeSet<AaiKey> {
    p.blocked.iter().map(|b| b.key.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (a) Same input, same plan; a clone plans the same; `plan_dirty` of a fresh index (everything
    /// dirty) gives the same actions as `plan_all`.
    #[test]
    fn plan_all_is_deterministic(w in world()) {
        let (mut c, cfg, _) = build(&w);
        let first = c.plan_all(&cfg);
        prop_assert_eq!(&first, &c.plan_all(&cfg));
        prop_assert_eq!(&first, &c.clone().plan_all(&cfg));
        let dirty = c.plan_dirty(&cfg);
        prop_assert_eq!(actionable(&dirty), actionable(&first));
        prop_assert_eq!(blocked_keys(&dirty), blocked_keys(&first));
        prop_assert!(!c.has_dirty());
        // Sorted, deduplicated, no empty target plans.
        for tp in &first.targets {
            prop_assert!(!(tp.add.is_empty() && tp.remove.is_empty() && tp.assign.is_empty() && tp.release.is_empty()));
            let lower: Vec<String> = tp.add.iter().map(|s| s.to_lowercase()).collect();
            let set: BTreeSet<&String> = lower.iter().collect();
            prop_assert_eq!(set.len(), lower.len());
            prop_assert!(tp.assign.windows(2).all(|p| p[0].key < p[1].key));
            prop_assert!(tp.release.windows(2).all(|p| p[0].key < p[1].key));
        }
        prop_assert!(first.targets.windows(2).all(|p| p[0].target < p[1].target));
        prop_assert!(first.creates.windows(2).all(|p| p[0].key < p[1].key));
    }

    /// (b) + (c) Executing plans converges within 3 rounds to exactly the desired AAIs, every removal is
    /// safe, and every Assigned identity is on its target.
    #[test]
    fn plans_converge_safely(w in world()) {
        let (mut c, cfg, mut m) = build(&w);
        let plan = converge(&mut c, &cfg, &mut m, 3).map_err(TestCaseError::fail)?;
        check_converged(&c, &cfg, &m, &plan).map_err(TestCaseError::fail)?;
    }

    /// The controller's loop: converging with `plan_dirty` alone reaches the same fixed point.
    #[test]
    fn plan_dirty_alone_converges(w in world()) {
        let (mut c, cfg, mut m) = build(&w);
        for _ in 0..4 {
            let plan = c.plan_dirty(&cfg);
            check_safety(&c, &cfg, &plan).map_err(TestCaseError::fail)?;
            if plan.is_empty() {
                break;
            }
            m.execute(&mut c, &plan);
        }
        let full = c.plan_all(&cfg);
        prop_assert!(full.is_empty(), "plan_dirty loop left work: {:#?}", full);
        check_converged(&c, &cfg, &m, &full).map_err(TestCaseError::fail)?;
    }

    /// (d) From a converged state, after random events, `plan_dirty` equals `plan_all` (actions), and
    /// stays safe; executing it keeps the loop converging.
    #[test]
    fn plan_dirty_matches_plan_all_after_events(
        w in world(),
        batches in prop::collection::vec(prop::collection::vec(event(), 1..=4), 1..=3),
    ) {
        let (mut c, cfg, mut m) = build(&w);
        converge(&mut c, &cfg, &mut m, 3).map_err(TestCaseError::fail)?;
        let settle = c.plan_dirty(&cfg);
        prop_assert!(settle.is_empty(), "converged but plan_dirty: {:#?}", settle);
        for events in &batches {
            for e in events {
                apply_event(&mut c, e);
            }
            let full = c.plan_all(&cfg);
            let dirty = c.plan_dirty(&cfg);
            prop_assert_eq!(actionable(&dirty), actionable(&full), "events {:?}", events);
            prop_assert!(blocked_keys(&dirty).is_subset(&blocked_keys(&full)));
            check_safety(&c, &cfg, &dirty).map_err(TestCaseError::fail)?;
            // Converge again (events may leave a state needing a retry round).
            m.execute(&mut c, &dirty);
            converge(&mut c, &cfg, &mut m, 3).map_err(TestCaseError::fail)?;
            let settle = c.plan_dirty(&cfg);
            prop_assert!(settle.is_empty(), "re-converged but plan_dirty: {:#?}", settle);
        }
    }
}
