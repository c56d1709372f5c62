//! Builders, a model executor (every ARM call succeeds) and a naive oracle of the desired AAIs.

use std::collections::{BTreeMap, BTreeSet};

use crate::assign::{
    AaiKey, AssignedInfo, AssignedStatus, BindingInfo, Cluster, Config, IdentityInfo, NewAssigned,
    NodeInfo, ObjRef, Plan, PodInfo, Target, TargetKind, TargetPlan, assigned_name,
    is_valid_resource_id,
};

pub const SUB: &str = "sub-1";
pub const RG: &str = "rg-nodes";

pub fn rid(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

pub fn vmss(name: &str) -> Target {
    Target {
        kind: TargetKind::Vmss,
        subscription: SUB.to_owned(),
        resource_group: RG.to_owned(),
        name: name.to_owned(),
    }
}

pub fn vm(name: &str) -> Target {
    Target {
        kind: TargetKind::Vm,
        subscription: SUB.to_owned(),
        resource_group: RG.to_owned(),
        name: name.to_owned(),
    }
}

pub fn node(name: &str, target: Option<Target>) -> NodeInfo {
    NodeInfo {
        name: name.to_owned(),
        target,
    }
}

pub fn pod(ns: &str, name: &str, node: &str, selector: &str) -> PodInfo {
    PodInfo {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        node: node.to_owned(),
        selector: selector.to_owned(),
        finished: false,
    }
}

pub fn msi(ns: &str, name: &str, resource_id: &str, client_id: &str) -> IdentityInfo {
    IdentityInfo {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        resource_version: "1".to_owned(),
        id_type: 0,
        resource_id: resource_id.to_owned(),
        client_id: client_id.to_owned(),
        namespaced: false,
    }
}

pub fn sp(ns: &str, name: &str, client_id: &str) -> IdentityInfo {
    IdentityInfo {
        id_type: 1,
        resource_id: String::new(),
        ..msi(ns, name, "", client_id)
    }
}

pub fn binding(ns: &str, name: &str, identity: &str, selector: &str) -> BindingInfo {
    BindingInfo {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        resource_version: "1".to_owned(),
        identity: identity.to_owned(),
        selector: selector.to_owned(),
    }
}

pub fn key(ns: &str, name: &str) -> AaiKey {
    AaiKey {
        namespace: ns.to_owned(),
        name: name.to_owned(),
    }
}

pub fn cfg() -> Config {
    Config {
        release_finished_pods: true,
        ..Config::default()
    }
}

/// The actionable part of a plan (what `plan_dirty` must reproduce exactly).
pub fn actionable(
    p: &Plan,
) -> (
    Vec<NewAssigned>,
    Vec<NewAssigned>,
    Vec<TargetPlan>,
    Vec<AaiKey>,
) {
    (
        p.creates.clone(),
        p.updates.clone(),
        p.targets.clone(),
        p.node_gone.clone(),
    )
}

/// The AAI the controller writes for a create/update (embedded identity copied from the index).
pub fn written(c: &Cluster, n: &NewAssigned, preexisting: bool) -> AssignedInfo {
    let identity = c
        .identity(&n.identity.namespace, &n.identity.name)
        .cloned()
        .expect("planned identity exists");
    AssignedInfo {
        key: n.key.clone(),
        identity: n.identity.clone(),
        binding: n.binding.clone(),
        id_type: identity.id_type,
        resource_id: identity.resource_id,
        client_id: identity.client_id,
        pod: n.pod.clone(),
        pod_namespace: n.pod_namespace.clone(),
        node: n.node.clone(),
        status: AssignedStatus::Created,
        preexisting,
        deleting: false,
    }
}

/// ARM as a map target key → lowercased resource IDs; executes plans as if every call succeeded.
#[derive(Debug, Default, Clone)]
pub struct Model {
    pub arm: BTreeMap<String, BTreeSet<String>>,
}

impl Model {
    pub fn has(&self, target: &Target, resource_id: &str) -> bool {
        self.arm
            .get(&target.key())
            .is_some_and(|s| s.contains(&resource_id.to_lowercase()))
    }

    pub fn execute(&mut self, c: &mut Cluster, plan: &Plan) {
        for n in &plan.creates {
            let a = written(c, n, false);
            c.apply_assigned(a);
        }
        for n in &plan.updates {
            let pre = c.assigned(&n.key).is_some_and(|a| a.preexisting);
            let a = written(c, n, pre);
            c.apply_assigned(a);
        }
        for tp in &plan.targets {
            let before = tp
                .target
                .as_ref()
                .and_then(|t| self.arm.get(&t.key()).cloned())
                .unwrap_or_default();
            if let Some(t) = &tp.target {
                let set = self.arm.entry(t.key()).or_default();
                for id in &tp.add {
                    set.insert(id.to_lowercase());
                }
                for id in &tp.remove {
                    set.remove(&id.to_lowercase());
                }
            } else {
                assert!(
                    tp.add.is_empty() && tp.remove.is_empty(),
                    "ARM work without target"
                );
            }
            for a in &tp.assign {
                if let Some(mut x) = c.assigned(&a.key).cloned() {
                    x.status = AssignedStatus::Assigned;
                    x.preexisting = match a.preexisting {
                        Some(p) => p,
                        None => before.contains(&a.resource_id.to_lowercase()),
                    };
                    c.apply_assigned(x);
                }
            }
            for r in &tp.release {
                c.delete_assigned(&r.key);
            }
        }
        for k in &plan.node_gone {
            c.delete_assigned(k);
        }
    }
}

/// A desired AAI as the oracle computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub identity: ObjRef,
    pub binding: ObjRef,
    pub pod: String,
    pub pod_namespace: String,
    pub node: String,
    pub id_type: i64,
    pub resource_id: String,
}

impl Want {
    pub fn matches(&self, a: &AssignedInfo) -> bool {
        a.identity == self.identity
            && a.binding == self.binding
            && a.pod == self.pod
            && a.pod_namespace == self.pod_namespace
            && a.node == self.node
    }
}

/// Naive desired set: every pod in (ns, name) order, a linear scan of bindings, first key wins.
pub fn oracle(c: &Cluster, cfg: &Config) -> BTreeMap<AaiKey, Want> {
    let pods: Vec<&PodInfo> = c.pods.values().flat_map(|m| m.values()).collect();
    let bindings: Vec<&BindingInfo> = c.bindings.values().flat_map(|m| m.values()).collect();
    let mut out = BTreeMap::new();
    for p in pods {
        if p.node.is_empty() || p.selector.is_empty() || (cfg.release_finished_pods && p.finished) {
            continue;
        }
        if c.node(&p.node).is_none() {
            continue;
        }
        let mut matched: Vec<&&BindingInfo> = bindings
            .iter()
            .filter(|b| b.selector == p.selector)
            .collect();
        matched.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for b in matched {
            let Some(id) = c.identity(&b.namespace, &b.identity) else {
                continue;
            };
            if id.id_type == 0 && !is_valid_resource_id(&id.resource_id) {
                continue;
            }
            let namespaced = cfg.force_namespaced || id.namespaced;
            if namespaced && !(id.namespace == b.namespace && b.namespace == p.namespace) {
                continue;
            }
            let k = AaiKey {
                namespace: if namespaced {
                    id.namespace.clone()
                } else {
                    "default".to_owned()
                },
                name: assigned_name(&p.name, &p.namespace, &id.name),
            };
            out.entry(k).or_insert_with(|| Want {
                identity: ObjRef {
                    namespace: id.namespace.clone(),
                    name: id.name.clone(),
                    resource_version: id.resource_version.clone(),
                },
                binding: ObjRef {
                    namespace: b.namespace.clone(),
                    name: b.name.clone(),
                    resource_version: b.resource_version.clone(),
                },
                pod: p.name.clone(),
                pod_namespace: p.namespace.clone(),
                node: p.node.clone(),
                id_type: id.id_type,
                resource_id: id.resource_id.clone(),
            });
        }
    }
    out
}

/// Safety of every removal in `plan` (property (c)).
pub fn check_safety(c: &Cluster, cfg: &Config, plan: &Plan) -> Result<(), String> {
    let want = oracle(c, cfg);
    for tp in &plan.targets {
        let Some(t) = &tp.target else {
            continue;
        };
        let tkey = t.key();
        let on_t = |node: &str| c.node_target(node, cfg).is_some_and(|x| x.key() == tkey);
        for r in &tp.remove {
            let rl = r.to_lowercase();
            for (k, w) in &want {
                if w.id_type == 0 && w.resource_id.to_lowercase() == rl && on_t(&w.node) {
                    return Err(format!("{tkey}: removes {r} needed by desired {k:?}"));
                }
            }
            for a in c.assigned.values() {
                if a.id_type == 0 && a.resource_id.to_lowercase() == rl && on_t(&a.node) {
                    if a.preexisting {
                        return Err(format!("{tkey}: removes preexisting {r} ({:?})", a.key));
                    }
                    if cfg
                        .immutable_client_ids
                        .contains(&a.client_id.to_lowercase())
                    {
                        return Err(format!("{tkey}: removes immutable {r} ({:?})", a.key));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Converged: the AAIs are exactly the desired ones (`blocked` ones unchecked), all matching and Assigned, and
/// every Assigned type-0 AAI's identity is on its target in the model.
pub fn check_converged(
    c: &Cluster,
    cfg: &Config,
    model: &Model,
    plan: &Plan,
) -> Result<(), String> {
    let want = oracle(c, cfg);
    let blocked: BTreeSet<&AaiKey> = plan.blocked.iter().map(|b| &b.key).collect();
    for (k, w) in &want {
        if blocked.contains(k) {
            // Never created by the planner; one that already existed stays as it is (not Assigned by us).
            continue;
        }
        let Some(a) = c.assigned(k) else {
            return Err(format!("desired {k:?} missing"));
        };
        let assigned = matches!(a.status, AssignedStatus::Assigned | AssignedStatus::Legacy);
        if !w.matches(a) || !assigned || a.deleting {
            return Err(format!("desired {k:?} not converged: {a:?} vs {w:?}"));
        }
    }
    for (k, a) in &c.assigned {
        if !want.contains_key(k) {
            return Err(format!("undesired {k:?} remains"));
        }
        if a.id_type == 0
            && matches!(a.status, AssignedStatus::Assigned | AssignedStatus::Legacy)
            && let Some(t) = c.node_target(&a.node, cfg)
            && !model.has(&t, &a.resource_id)
        {
            return Err(format!(
                "{k:?} Assigned but {} not on {}",
                a.resource_id,
                t.key()
            ));
        }
    }
    Ok(())
}

/// Runs plan/execute rounds with `plan_all` until empty (at most `rounds` executions), checking safety.
pub fn converge(
    c: &mut Cluster,
    cfg: &Config,
    model: &mut Model,
    rounds: usize,
) -> Result<Plan, String> {
    for _ in 0..rounds {
        let plan = c.plan_all(cfg);
        check_safety(c, cfg, &plan)?;
        if plan.is_empty() {
            return Ok(plan);
        }
        model.execute(c, &plan);
    }
    let plan = c.plan_all(cfg);
    if plan.is_empty() {
        Ok(plan)
    } else {
        Err(format!("not converged after {rounds} rounds: {plan:#?}"))
    }
}
