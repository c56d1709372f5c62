//! Scale: a 10,000-pod cluster plans, and one pod event touches only that pod.

use crate::assign::bench::synthetic_cluster;
use crate::assign::{AssignedStatus, PodInfo};

const PODS: usize = 10_000;
const NODES: usize = 500;
const SCALE_SETS: usize = 20;
const IDENTITIES: usize = 200;

#[test]
fn ten_thousand_pods() {
    let (mut c, cfg) = synthetic_cluster(PODS, NODES, SCALE_SETS, IDENTITIES);
    assert_eq!(c.counts(), (PODS, NODES, IDENTITIES, IDENTITIES, PODS));
    assert!(!c.has_dirty());
    assert!(
        c.plan_all(&cfg).is_empty(),
        "synthetic cluster is converged"
    );
    assert_eq!(c.targets_with_assigned(&cfg).len(), SCALE_SETS);

    // From scratch (no AAIs): every pod gets one, one PATCH per scale set.
    let mut fresh = c.clone();
    fresh.reset_assigned(Vec::new());
    let plan = fresh.plan_all(&cfg);
    assert_eq!(plan.creates.len(), PODS);
    assert_eq!(plan.targets.len(), SCALE_SETS);
    assert_eq!(
        plan.targets.iter().map(|t| t.assign.len()).sum::<usize>(),
        PODS
    );
    let dirty = fresh.plan_dirty(&cfg);
    assert_eq!(dirty.creates, plan.creates);
    assert_eq!(dirty.targets, plan.targets);

    // One pod goes away: only its AAI is looked at and released; the identity stays (other pods of the
    // scale set use it).
    let victim: PodInfo = c.pod("ns-7", "pod-4567").cloned().expect("pod");
    c.delete_pod(&victim.namespace, &victim.name);
    assert_eq!(c.dirty_counts().0, 1);
    let plan = c.plan_dirty(&cfg);
    assert!(plan.creates.is_empty() && plan.updates.is_empty() && plan.node_gone.is_empty());
    assert_eq!(plan.targets.len(), 1);
    let tp = &plan.targets[0];
    assert_eq!(tp.release.len(), 1);
    assert_eq!(tp.release[0].key.name, "pod-4567-ns-7-id-167");
    assert!(!tp.release[0].removes);
    assert!(tp.add.is_empty() && tp.remove.is_empty() && tp.assign.is_empty());
    assert!(!c.has_dirty());

    // One AAI status flip: one retry assign, no ARM change.
    let key = tp.release[0].key.clone();
    c.delete_assigned(&key);
    let other = c
        .assigned
        .values()
        .find(|a| a.pod == "pod-42")
        .cloned()
        .expect("aai");
    let mut flipped = other.clone();
    flipped.status = AssignedStatus::Created;
    c.apply_assigned(flipped);
    let plan = c.plan_dirty(&cfg);
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].assign.len(), 1);
    assert_eq!(plan.targets[0].assign[0].preexisting, Some(false));
    assert!(plan.targets[0].add.is_empty());
    c.apply_assigned(other);
    assert!(c.plan_dirty(&cfg).is_empty());
    assert!(c.plan_all(&cfg).is_empty());

    // An identity edit touches the 50 pods using it (incremental path, not the full-pass fallback).
    let mut id = c.identity("ns-3", "id-3").cloned().expect("identity");
    id.resource_version = "2".to_owned();
    c.apply_identity(id);
    assert_eq!(c.dirty_counts().0, PODS / IDENTITIES);
    let full = c.plan_all(&cfg);
    let plan = c.plan_dirty(&cfg);
    assert_eq!(plan.updates.len(), PODS / IDENTITIES);
    assert_eq!(plan.updates, full.updates);
    assert_eq!(plan.targets, full.targets);
    assert!(
        plan.targets
            .iter()
            .all(|t| t.add.is_empty() && t.remove.is_empty())
    );
}
