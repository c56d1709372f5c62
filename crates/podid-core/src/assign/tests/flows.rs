//! Table tests of upstream's MIC flows, run through the model executor.

use std::collections::{BTreeMap, BTreeSet};

use super::support::*;
use crate::assign::{Assign, AssignedStatus, Cluster, Config, Plan, Release, Target, TargetPlan};

fn tp(target: Option<Target>) -> TargetPlan {
    TargetPlan {
        target,
        add: vec![],
        remove: vec![],
        assign: vec![],
        release: vec![],
    }
}

fn assign(k: &crate::assign::AaiKey, resource_id: &str, preexisting: Option<bool>) -> Assign {
    Assign {
        key: k.clone(),
        resource_id: resource_id.to_owned(),
        preexisting,
    }
}

fn release(k: &crate::assign::AaiKey, resource_id: &str, removes: bool) -> Release {
    Release {
        key: k.clone(),
        resource_id: resource_id.to_owned(),
        removes,
    }
}

/// Plans with `plan_dirty`, checks it against `plan_all` (actionable fields), executes it.
fn step(c: &mut Cluster, cfg: &Config, m: &mut Model) -> Plan {
    let full = c.plan_all(cfg);
    let plan = c.plan_dirty(cfg);
    assert_eq!(
        actionable(&plan),
        actionable(&full),
        "plan_dirty != plan_all"
    );
    check_safety(c, cfg, &plan).expect("safe");
    m.execute(c, &plan);
    plan
}

fn assert_converged(c: &mut Cluster, cfg: &Config, m: &Model) {
    let plan = c.plan_all(cfg);
    assert!(plan.is_empty(), "not converged: {plan:#?}");
    check_converged(c, cfg, m, &plan).expect("converged");
    assert!(c.plan_dirty(cfg).is_empty());
    assert!(!c.has_dirty());
}

/// One identity, one binding, one pod on a scale set.
fn basic() -> (Cluster, Config, Model) {
    let mut c = Cluster::new();
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_identity(msi("default", "id1", &rid("id1"), "c1"));
    c.apply_binding(binding("default", "b1", "id1", "sel"));
    c.apply_pod(pod("default", "p1", "n1", "sel"));
    (c, cfg(), Model::default())
}

#[test]
fn single_identity_lifecycle() {
    let (mut c, cfg, mut m) = basic();
    let k = key("default", "p1-default-id1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].key, k);
    assert_eq!(plan.creates[0].node, "n1");
    assert_eq!(plan.creates[0].identity.name, "id1");
    assert_eq!(plan.creates[0].binding.name, "b1");
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            add: vec![rid("id1")],
            assign: vec![assign(&k, &rid("id1"), None)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);
    assert_eq!(c.assigned(&k).map(|a| a.preexisting), Some(false));
    assert!(m.has(&vmss("ss1"), &rid("id1")));

    c.delete_pod("default", "p1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            remove: vec![rid("id1")],
            release: vec![release(&k, &rid("id1"), true)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);
    assert!(!m.has(&vmss("ss1"), &rid("id1")));
}

#[test]
fn resync_of_equal_objects_marks_nothing() {
    let (mut c, cfg, mut m) = basic();
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_identity(msi("default", "id1", &rid("id1"), "c1"));
    c.apply_binding(binding("default", "b1", "id1", "sel"));
    c.apply_pod(pod("default", "p1", "n1", "sel"));
    let a = c
        .assigned(&key("default", "p1-default-id1"))
        .cloned()
        .expect("aai");
    c.apply_assigned(a);
    assert!(!c.has_dirty());
    assert_eq!(c.counts(), (1, 1, 1, 1, 1));
}

#[test]
fn two_identities_one_selector() {
    let (mut c, cfg, mut m) = basic();
    c.apply_identity(msi("default", "id2", &rid("id2"), "c2"));
    c.apply_binding(binding("default", "b2", "id2", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    let k1 = key("default", "p1-default-id1");
    let k2 = key("default", "p1-default-id2");
    assert_eq!(
        plan.creates
            .iter()
            .map(|n| n.key.clone())
            .collect::<Vec<_>>(),
        vec![k1.clone(), k2.clone()]
    );
    assert_eq!(plan.targets[0].add, vec![rid("id1"), rid("id2")]);
    assert_eq!(
        plan.targets[0].assign,
        vec![
            assign(&k1, &rid("id1"), None),
            assign(&k2, &rid("id2"), None)
        ]
    );
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn service_principal_needs_no_arm() {
    let mut c = Cluster::new();
    let cfg = cfg();
    let mut m = Model::default();
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_node(node("bare", None));
    c.apply_identity(sp("default", "spid", "c9"));
    c.apply_binding(binding("default", "b1", "spid", "sel"));
    c.apply_pod(pod("default", "p1", "n1", "sel"));
    c.apply_pod(pod("default", "p2", "bare", "sel"));
    let k1 = key("default", "p1-default-spid");
    let k2 = key("default", "p2-default-spid");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 2);
    assert!(plan.blocked.is_empty());
    assert_eq!(
        plan.targets,
        vec![
            TargetPlan {
                assign: vec![assign(&k2, "", Some(false))],
                ..tp(None)
            },
            TargetPlan {
                assign: vec![assign(&k1, "", Some(false))],
                ..tp(Some(vmss("ss1")))
            },
        ]
    );
    assert_converged(&mut c, &cfg, &m);
    assert!(m.arm.values().all(BTreeSet::is_empty));

    c.delete_pod("default", "p1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            release: vec![release(&k1, "", false)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn relabel_moves_identity() {
    let (mut c, cfg, mut m) = basic();
    c.apply_identity(msi("default", "id2", &rid("id2"), "c2"));
    c.apply_binding(binding("default", "b2", "id2", "other"));
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);

    c.apply_pod(pod("default", "p1", "n1", "other"));
    let plan = step(&mut c, &cfg, &mut m);
    let k1 = key("default", "p1-default-id1");
    let k2 = key("default", "p1-default-id2");
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].key, k2);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            add: vec![rid("id2")],
            remove: vec![rid("id1")],
            assign: vec![assign(&k2, &rid("id2"), None)],
            release: vec![release(&k1, &rid("id1"), true)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);

    // Label removed: the identity goes.
    c.apply_pod(pod("default", "p1", "n1", ""));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].remove, vec![rid("id2")]);
    assert_converged(&mut c, &cfg, &m);
    assert_eq!(c.counts().4, 0);
}

#[test]
fn two_pods_of_one_scale_set_share_the_identity() {
    let (mut c, cfg, mut m) = basic();
    c.apply_node(node("n2", Some(vmss("ss1"))));
    c.apply_pod(pod("default", "p2", "n2", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    let k1 = key("default", "p1-default-id1");
    let k2 = key("default", "p2-default-id1");
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].add, vec![rid("id1")]);
    assert_eq!(
        plan.targets[0].assign,
        vec![
            assign(&k1, &rid("id1"), None),
            assign(&k2, &rid("id1"), None)
        ]
    );
    assert_converged(&mut c, &cfg, &m);

    c.delete_pod("default", "p1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            release: vec![release(&k1, &rid("id1"), false)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);
    assert!(m.has(&vmss("ss1"), &rid("id1")));

    // A new pod on the same scale set copies the holder's flag instead of adding.
    c.apply_pod(pod("default", "p3", "n1", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            assign: vec![assign(
                &key("default", "p3-default-id1"),
                &rid("id1"),
                Some(false)
            )],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);

    c.delete_pod("default", "p2");
    c.delete_pod("default", "p3");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].remove, vec![rid("id1")]);
    assert!(plan.targets[0].release.iter().all(|r| r.removes));
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn vms_are_separate_targets() {
    let mut c = Cluster::new();
    let cfg = cfg();
    let mut m = Model::default();
    c.apply_node(node("vm1", Some(vm("vm1"))));
    c.apply_node(node("vm2", Some(vm("vm2"))));
    c.apply_identity(msi("default", "id1", &rid("id1"), "c1"));
    c.apply_binding(binding("default", "b1", "id1", "sel"));
    c.apply_pod(pod("default", "p1", "vm1", "sel"));
    c.apply_pod(pod("default", "p2", "vm2", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets.len(), 2);
    assert!(plan.targets.iter().all(|t| t.add == vec![rid("id1")]));
    assert_converged(&mut c, &cfg, &m);
    c.delete_pod("default", "p1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].target, Some(vm("vm1")));
    assert_eq!(plan.targets[0].remove, vec![rid("id1")]);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn immutable_and_cluster_identities_are_kept() {
    let (mut c, mut cfg, mut m) = basic();
    cfg.immutable_client_ids = BTreeSet::from(["c1".to_owned()]);
    c.apply_identity(msi("default", "id1", &rid("id1"), "C1"));
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    c.delete_pod("default", "p1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            release: vec![release(
                &key("default", "p1-default-id1"),
                &rid("id1"),
                false
            )],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);
    assert!(m.has(&vmss("ss1"), &rid("id1")));
}

#[test]
fn preexisting_identity_is_kept() {
    let (mut c, cfg, mut m) = basic();
    m.arm
        .entry(vmss("ss1").key())
        .or_default()
        .insert(rid("id1").to_lowercase());
    let k = key("default", "p1-default-id1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].add, vec![rid("id1")]);
    assert_converged(&mut c, &cfg, &m);
    assert_eq!(c.assigned(&k).map(|a| a.preexisting), Some(true));

    c.apply_pod(pod("default", "p2", "n1", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(
        plan.targets[0].assign,
        vec![assign(
            &key("default", "p2-default-id1"),
            &rid("id1"),
            Some(true)
        )]
    );
    assert!(plan.targets[0].add.is_empty());
    assert_converged(&mut c, &cfg, &m);

    c.delete_pod("default", "p1");
    c.delete_pod("default", "p2");
    let plan = step(&mut c, &cfg, &mut m);
    assert!(plan.targets[0].remove.is_empty());
    assert!(plan.targets[0].release.iter().all(|r| !r.removes));
    assert_converged(&mut c, &cfg, &m);
    assert!(m.has(&vmss("ss1"), &rid("id1")));
}

#[test]
fn identity_updated_in_place() {
    let (mut c, cfg, mut m) = basic();
    let k = key("default", "p1-default-id1");
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);

    // Metadata-only edit: new resourceVersion, same resource ID: replaced, no ARM change.
    let mut id = msi("default", "id1", &rid("id1"), "c1");
    id.resource_version = "2".to_owned();
    c.apply_identity(id.clone());
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(plan.updates[0].identity.resource_version, "2");
    assert!(plan.creates.is_empty());
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            assign: vec![assign(&k, &rid("id1"), Some(false))],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);

    // New resource ID: add the new one, remove the old one.
    id.resource_version = "3".to_owned();
    id.resource_id = rid("id1b");
    c.apply_identity(id);
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            add: vec![rid("id1b")],
            remove: vec![rid("id1")],
            assign: vec![assign(&k, &rid("id1b"), None)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert_converged(&mut c, &cfg, &m);

    // Binding edit: replaced too.
    let mut b = binding("default", "b1", "id1", "sel");
    b.resource_version = "7".to_owned();
    c.apply_binding(b);
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.updates.len(), 1);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn identity_deleted_releases() {
    let (mut c, cfg, mut m) = basic();
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    c.delete_identity("default", "id1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].remove, vec![rid("id1")]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("id1 identity not found"))
    );
    assert_converged(&mut c, &cfg, &m);

    c.apply_identity(msi("default", "id1", &rid("id1"), "c1"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 1);
    c.delete_binding("default", "b1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].release.len(), 1);
    assert_converged(&mut c, &cfg, &m);
    assert_eq!(c.counts().4, 0);
}

#[test]
fn same_identity_name_in_two_namespaces() {
    let mut c = Cluster::new();
    let cfg = cfg();
    let mut m = Model::default();
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_identity(msi("ns1", "x", &rid("x1"), "c1"));
    c.apply_identity(msi("ns2", "x", &rid("x2"), "c2"));
    c.apply_binding(binding("ns1", "b", "x", "sel"));
    c.apply_binding(binding("ns2", "b", "x", "sel"));
    c.apply_pod(pod("ns1", "p", "n1", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].key, key("default", "p-ns1-x"));
    assert_eq!(plan.creates[0].identity.namespace, "ns1");
    assert_eq!(plan.targets[0].add, vec![rid("x1")]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("AzureIdentity x exists in both ns1 and ns2 namespace")),
        "{:?}",
        plan.notes
    );
    assert_converged(&mut c, &cfg, &m);

    // The first binding goes: the other identity takes the name over (update in place).
    c.delete_binding("ns1", "b");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(plan.updates[0].identity.namespace, "ns2");
    assert_eq!(plan.targets[0].add, vec![rid("x2")]);
    assert_eq!(plan.targets[0].remove, vec![rid("x1")]);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn namespaced_mode() {
    for forced in [true, false] {
        let mut c = Cluster::new();
        let mut cfg = cfg();
        cfg.force_namespaced = forced;
        let mut m = Model::default();
        c.apply_node(node("n1", Some(vmss("ss1"))));
        let mut id = msi("ns1", "x", &rid("x"), "c1");
        id.namespaced = !forced;
        c.apply_identity(id);
        c.apply_binding(binding("ns1", "b", "x", "sel"));
        c.apply_pod(pod("ns1", "p", "n1", "sel"));
        c.apply_pod(pod("ns2", "q", "n1", "sel"));
        let plan = step(&mut c, &cfg, &mut m);
        assert_eq!(
            plan.creates
                .iter()
                .map(|n| n.key.clone())
                .collect::<Vec<_>>(),
            vec![key("ns1", "p-ns1-x")],
            "forced={forced}"
        );
        assert_converged(&mut c, &cfg, &m);
    }
    // Not namespaced: any pod with the label gets it, in `default`.
    let mut c = Cluster::new();
    let cfg = cfg();
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_identity(msi("ns1", "x", &rid("x"), "c1"));
    c.apply_binding(binding("ns1", "b", "x", "sel"));
    c.apply_pod(pod("ns2", "q", "n1", "sel"));
    let plan = c.plan_all(&cfg);
    assert_eq!(plan.creates[0].key, key("default", "q-ns2-x"));
}

#[test]
fn finished_pods_release_when_configured() {
    let (mut c, mut cfg, mut m) = basic();
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    let mut done = pod("default", "p1", "n1", "sel");
    done.finished = true;
    c.apply_pod(done);
    cfg.release_finished_pods = false;
    assert!(
        c.plan_all(&cfg).is_empty(),
        "upstream keeps finished pods' identities"
    );
    cfg.release_finished_pods = true;
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].remove, vec![rid("id1")]);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn node_gone_deletes_without_arm() {
    let (mut c, cfg, mut m) = basic();
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    c.delete_node("n1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.node_gone, vec![key("default", "p1-default-id1")]);
    assert!(plan.targets.is_empty());
    assert_converged(&mut c, &cfg, &m);
    assert!(
        m.has(&vmss("ss1"), &rid("id1")),
        "no ARM call for a gone node"
    );
}

#[test]
fn pod_waits_for_its_node() {
    let mut c = Cluster::new();
    let cfg = cfg();
    let mut m = Model::default();
    c.apply_identity(msi("default", "id1", &rid("id1"), "c1"));
    c.apply_binding(binding("default", "b1", "id1", "sel"));
    c.apply_pod(pod("default", "p1", "n1", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert!(plan.is_empty());
    assert!(plan.notes.iter().any(|n| n.contains("not known yet")));
    c.apply_node(node("n1", Some(vmss("ss1"))));
    assert_eq!(c.dirty_counts().0, 1);
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 1);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn deleting_aai_is_released_then_recreated() {
    let (mut c, cfg, mut m) = basic();
    let k = key("default", "p1-default-id1");
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    let mut a = c.assigned(&k).cloned().expect("aai");
    a.deleting = true;
    c.apply_assigned(a);
    let plan = step(&mut c, &cfg, &mut m);
    assert!(plan.creates.is_empty());
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            release: vec![release(&k, &rid("id1"), false)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert!(c.assigned(&k).is_none());
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 1);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn terminating_holder_is_copied_not_re_added() {
    let (mut c, cfg, mut m) = basic();
    let k1 = key("default", "p1-default-id1");
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    let mut a = c.assigned(&k1).cloned().expect("aai");
    a.deleting = true;
    c.apply_assigned(a);
    c.apply_pod(pod("default", "p2", "n1", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    let k2 = key("default", "p2-default-id1");
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            assign: vec![assign(&k2, &rid("id1"), Some(false))],
            release: vec![release(&k1, &rid("id1"), false)],
            ..tp(Some(vmss("ss1")))
        }]
    );
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn created_and_unassigned_are_retried() {
    for status in [
        AssignedStatus::Created,
        AssignedStatus::Unassigned,
        AssignedStatus::Other("Pending".to_owned()),
    ] {
        let (mut c, cfg, mut m) = basic();
        let k = key("default", "p1-default-id1");
        step(&mut c, &cfg, &mut m);
        let mut a = c.assigned(&k).cloned().expect("aai");
        a.status = status.clone();
        c.apply_assigned(a);
        let plan = step(&mut c, &cfg, &mut m);
        assert!(plan.creates.is_empty() && plan.updates.is_empty());
        assert_eq!(
            plan.targets,
            vec![TargetPlan {
                add: vec![rid("id1")],
                assign: vec![assign(&k, &rid("id1"), None)],
                ..tp(Some(vmss("ss1")))
            }],
            "{status:?}"
        );
        assert_converged(&mut c, &cfg, &m);
    }
}

#[test]
fn legacy_status_counts_as_assigned() {
    let (mut c, cfg, mut m) = basic();
    let k = key("default", "p1-default-id1");
    step(&mut c, &cfg, &mut m);
    let mut a = c.assigned(&k).cloned().expect("aai");
    a.status = AssignedStatus::Legacy;
    c.apply_assigned(a);
    assert!(c.plan_dirty(&cfg).is_empty());
    c.delete_pod("default", "p1");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].remove, vec![rid("id1")]);
}

#[test]
fn node_without_target_blocks_msi_and_uses_fallback() {
    let mut c = Cluster::new();
    let mut cfg = cfg();
    let mut m = Model::default();
    c.apply_node(node("bare", None));
    c.apply_identity(msi("default", "id1", &rid("id1"), "c1"));
    c.apply_binding(binding("default", "b1", "id1", "sel"));
    c.apply_pod(pod("default", "p1", "bare", "sel"));
    let k = key("default", "p1-default-id1");
    let plan = step(&mut c, &cfg, &mut m);
    assert!(plan.is_empty());
    assert_eq!(plan.blocked.len(), 1);
    assert_eq!(plan.blocked[0].key, k);
    assert!(plan.blocked[0].reason.contains("providerID"));
    assert!(c.assigned(&k).is_none());

    cfg.fallback_subscription = "fsub".to_owned();
    cfg.fallback_resource_group = "frg".to_owned();
    c.mark_all_dirty();
    let plan = step(&mut c, &cfg, &mut m);
    let fallback = Target {
        kind: crate::assign::TargetKind::Vm,
        subscription: "fsub".to_owned(),
        resource_group: "frg".to_owned(),
        name: "bare".to_owned(),
    };
    assert_eq!(plan.targets[0].target, Some(fallback.clone()));
    assert_eq!(plan.targets[0].add, vec![rid("id1")]);
    assert_eq!(c.node_target("bare", &cfg), Some(fallback.clone()));
    assert_converged(&mut c, &cfg, &m);
    assert!(m.has(&fallback, &rid("id1")));
    assert_eq!(c.targets_with_assigned(&cfg), vec![fallback]);
}

#[test]
fn pod_recreated_on_another_scale_set() {
    let (mut c, cfg, mut m) = basic();
    c.apply_node(node("n3", Some(vmss("ss2"))));
    let k = key("default", "p1-default-id1");
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    c.apply_pod(pod("default", "p1", "n3", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(
        plan.targets,
        vec![
            TargetPlan {
                remove: vec![rid("id1")],
                ..tp(Some(vmss("ss1")))
            },
            TargetPlan {
                add: vec![rid("id1")],
                assign: vec![assign(&k, &rid("id1"), None)],
                ..tp(Some(vmss("ss2")))
            },
        ]
    );
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn case_variants_are_one_identity_and_one_target() {
    let mut c = Cluster::new();
    let cfg = cfg();
    let mut m = Model::default();
    let mut upper = vmss("SS1");
    upper.resource_group = RG.to_uppercase();
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_node(node("n2", Some(upper)));
    c.apply_identity(msi("default", "a", &rid("shared"), "c1"));
    c.apply_identity(msi("default", "b", &rid("SHARED"), "c1"));
    c.apply_binding(binding("default", "ba", "a", "sel"));
    c.apply_binding(binding("default", "bb", "b", "sel"));
    c.apply_pod(pod("default", "p1", "n1", "sel"));
    c.apply_pod(pod("default", "p2", "n2", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets.len(), 1, "{:#?}", plan.targets);
    assert_eq!(
        plan.targets[0].target,
        Some(vmss("ss1")),
        "spelling of the first node"
    );
    assert_eq!(
        plan.targets[0].add,
        vec![rid("shared")],
        "first spelling by AAI key"
    );
    assert_eq!(plan.targets[0].assign.len(), 4);
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn names_colliding_across_pods() {
    // Pod `a-b` in `c` and pod `a` in `b-c` both want `a-b-c-x`: the first by (namespace, name) wins.
    let mut c = Cluster::new();
    let cfg = cfg();
    let mut m = Model::default();
    c.apply_node(node("bare", None));
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_identity(msi("b-c", "x", &rid("x"), "c1"));
    c.apply_binding(binding("b-c", "bx", "x", "sel"));
    c.apply_pod(pod("b-c", "a", "bare", "sel"));
    c.apply_pod(pod("c", "a-b", "n1", "sel"));
    let k = key("default", "a-b-c-x");
    let plan = step(&mut c, &cfg, &mut m);
    assert!(plan.is_empty(), "the winner is blocked: {plan:#?}");
    assert_eq!(plan.blocked.len(), 1);
    assert!(plan.notes.iter().any(|n| n.contains("wanted by pods")));
    // The blocked winner goes: the other pod now gets the name (no AAI existed for the key).
    c.delete_pod("b-c", "a");
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].key, k);
    assert_eq!(plan.creates[0].pod_namespace, "c");
    assert_converged(&mut c, &cfg, &m);
    // The winner comes back on a node with a target: the AAI is taken over (update).
    c.apply_pod(pod("b-c", "a", "n1", "sel"));
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(plan.updates[0].pod_namespace, "b-c");
    assert_converged(&mut c, &cfg, &m);
}

#[test]
fn invalid_resource_id_is_ignored() {
    let mut c = Cluster::new();
    let cfg = cfg();
    c.apply_node(node("n1", Some(vmss("ss1"))));
    c.apply_identity(msi("default", "bad", "not-an-arm-id", "c1"));
    c.apply_binding(binding("default", "b1", "bad", "sel"));
    c.apply_pod(pod("default", "p1", "n1", "sel"));
    let plan = c.plan_all(&cfg);
    assert!(plan.is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n
                .starts_with("ignoring azure identity default/bad, error: invalid resource id"))
    );
}

#[test]
fn reconcile_re_adds_only() {
    let (mut c, cfg, mut m) = basic();
    c.apply_node(node("n2", Some(vmss("ss2"))));
    c.apply_pod(pod("default", "p2", "n2", "sel"));
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    assert_eq!(
        c.targets_with_assigned(&cfg),
        vec![vmss("ss1"), vmss("ss2")]
    );

    // Someone removed the identity from ss1 and added an unrelated one to ss2.
    let mut arm: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    arm.insert(vmss("ss1").key(), BTreeSet::new());
    arm.insert(
        vmss("ss2").key(),
        BTreeSet::from([rid("id1").to_lowercase(), rid("other").to_lowercase()]),
    );
    arm.insert(vmss("unknown").key(), BTreeSet::new());
    let plan = c.plan_reconcile(&cfg, &arm);
    assert_eq!(
        plan.targets,
        vec![TargetPlan {
            add: vec![rid("id1")],
            ..tp(Some(vmss("ss1")))
        }]
    );
    assert!(plan.creates.is_empty() && plan.node_gone.is_empty());
}

#[test]
fn relists_replace_everything() {
    let (mut c, cfg, mut m) = basic();
    step(&mut c, &cfg, &mut m);
    assert_converged(&mut c, &cfg, &m);
    c.reset_pods(vec![pod("default", "p9", "n1", "sel")]);
    c.reset_nodes(vec![node("n1", Some(vmss("ss1")))]);
    c.reset_identities(vec![msi("default", "id1", &rid("id1"), "c1")]);
    c.reset_bindings(vec![binding("default", "b1", "id1", "sel")]);
    let current: Vec<_> = c.assigned.values().cloned().collect();
    c.reset_assigned(current);
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.targets[0].release.len(), 1);
    assert!(plan.targets[0].remove.is_empty(), "p9 still needs it");
    assert_converged(&mut c, &cfg, &m);
    c.reset_pods(vec![]);
    c.reset_bindings(vec![]);
    let plan = step(&mut c, &cfg, &mut m);
    assert_eq!(plan.targets[0].remove, vec![rid("id1")]);
    assert_converged(&mut c, &cfg, &m);
    assert_eq!(c.counts(), (0, 1, 1, 0, 0));
}

#[test]
fn a_removal_left_over_is_allowed_only_while_nothing_needs_or_holds_the_identity() {
    let cfg = cfg();
    let mut c = Cluster::new();
    c.apply_node(node("n1", Some(vmss("pool1"))));
    c.apply_node(node("n2", Some(vmss("pool1"))));
    c.apply_identity(msi("app", "id", &rid("x"), "c1"));
    c.apply_binding(binding("app", "b", "id", "sel"));
    // Nothing needs or holds x on pool1: a removal left over from an update may go ahead.
    assert!(c.removal_still_allowed(&cfg, &vmss("pool1"), &rid("x")));
    // A pod on another node of the same scale set needs it: not allowed (case-insensitive ID).
    c.apply_pod(pod("app", "p", "n2", "sel"));
    assert!(!c.removal_still_allowed(&cfg, &vmss("pool1"), &rid("x").to_uppercase()));
    // The pod is gone but its AAI still holds x: the AAI's own release decides, not the left-over removal.
    let plan = c.plan_all(&cfg);
    let n = plan.creates.first().cloned().expect("a create");
    c.apply_assigned(written(&c, &n, false));
    c.delete_pod("app", "p");
    assert!(!c.removal_still_allowed(&cfg, &vmss("pool1"), &rid("x")));
    // Another scale set is unaffected.
    assert!(c.removal_still_allowed(&cfg, &vmss("pool2"), &rid("x")));
}
