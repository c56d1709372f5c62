//! The planner: desired AAIs, the per-key decision, and the per-target ARM lists (see the module essay
//! in `assign/mod.rs` for the rules).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use std::ptr;
use std::rc::Rc;

use super::cluster::{Cluster, DEFAULT_AAI_NAMESPACE, fallback_target, nget, target_of_node};
use super::model::{
    AaiKey, Assign, AssignedInfo, AssignedStatus, BindingInfo, Blocked, Config, IdentityInfo,
    NewAssigned, ObjRef, Plan, PodInfo, Release, Target, TargetPlan,
};
use super::names::{assigned_name, is_valid_resource_id};

/// Identity type of user-assigned managed identities (the only type with ARM work).
const USER_ASSIGNED_MSI_TYPE: i64 = 0;

/// `plan_dirty` plans everything instead when at least this many pods and AAIs are dirty and they are
/// at least a quarter of the cluster (startup, relists, `mark_all_dirty`): one full pass is cheaper
/// than resolving every key on its own, and gives the same actions.
const FULL_PASS_MIN_DIRTY: usize = 2048;

/// The documentation page upstream's duplicate-name warning points to.
const NAMESPACED_DOC_URL: &str =
    "https://azure.github.io/aad-pod-identity/docs/configure/match_pods_in_namespace/";

/// One desired AAI: a pod, the binding that matched it, and the identity the binding names.
#[derive(Debug, Clone)]
struct Cand<'a> {
    key: AaiKey,
    pod: &'a PodInfo,
    binding: &'a BindingInfo,
    identity: &'a IdentityInfo,
}

impl Cand<'_> {
    fn is_msi(&self) -> bool {
        self.identity.id_type == USER_ASSIGNED_MSI_TYPE
    }

    /// Equal as upstream's `matchAssignedID` (stricter: namespaces are compared too).
    fn matches(&self, c: &AssignedInfo) -> bool {
        obj_eq(
            &c.identity,
            &self.identity.namespace,
            &self.identity.name,
            &self.identity.resource_version,
        ) && obj_eq(
            &c.binding,
            &self.binding.namespace,
            &self.binding.name,
            &self.binding.resource_version,
        ) && c.pod == self.pod.name
            && c.pod_namespace == self.pod.namespace
            && c.node == self.pod.node
    }

    fn new_assigned(&self) -> NewAssigned {
        NewAssigned {
            key: self.key.clone(),
            identity: ObjRef {
                namespace: self.identity.namespace.clone(),
                name: self.identity.name.clone(),
                resource_version: self.identity.resource_version.clone(),
            },
            binding: ObjRef {
                namespace: self.binding.namespace.clone(),
                name: self.binding.name.clone(),
                resource_version: self.binding.resource_version.clone(),
            },
            pod: self.pod.name.clone(),
            pod_namespace: self.pod.namespace.clone(),
            node: self.pod.node.clone(),
        }
    }
}

fn obj_eq(r: &ObjRef, ns: &str, name: &str, rv: &str) -> bool {
    r.namespace == ns && r.name == name && r.resource_version == rv
}

fn is_assigned(status: &AssignedStatus) -> bool {
    matches!(status, AssignedStatus::Assigned | AssignedStatus::Legacy)
}

/// An AAI on this node may have its resource ID removed when released or replaced: an assigned
/// user-assigned identity with a valid resource ID (rule (a)).
fn removal_eligible(c: &AssignedInfo) -> bool {
    c.id_type == USER_ASSIGNED_MSI_TYPE
        && is_assigned(&c.status)
        && is_valid_resource_id(&c.resource_id)
}

/// A node's target with its key.
#[derive(Debug)]
struct TargetEntry {
    key: String,
    target: Target,
}

#[derive(Debug)]
struct PendingAssign<'a> {
    key: AaiKey,
    resource_id: &'a str,
    msi: bool,
}

/// Everything one target collects before its lists are decided.
#[derive(Debug, Default)]
struct Work<'a> {
    /// The target as first seen (reported only if no node of the key is known, which cannot happen).
    seen: Option<Target>,
    assigns: Vec<PendingAssign<'a>>,
    releases: Vec<&'a AssignedInfo>,
    /// Released or replaced AAIs whose resource ID may be removed.
    removals: Vec<&'a AssignedInfo>,
}

/// Current AAIs on one target recording one resource ID.
#[derive(Debug, Default, Clone, Copy)]
struct Holders {
    /// Some Assigned/Legacy one holds it (the ID is on the target).
    assigned: bool,
    /// One of those is preexisting.
    assigned_preexisting: bool,
    /// Some holder, whatever its status, is preexisting.
    any_preexisting: bool,
    /// Some holder has an immutable client ID.
    any_immutable: bool,
}

/// One planning pass over a [`Cluster`].
struct Planner<'a> {
    c: &'a Cluster,
    cfg: &'a Config,
    /// Full mode: every desired AAI, sorted by key, one per key. `None` in dirty mode.
    all: Option<Vec<Cand<'a>>>,
    node_targets: HashMap<&'a str, Option<Rc<TargetEntry>>>,
    valid_rid: HashMap<(&'a str, &'a str), bool>,
    cands: HashMap<(&'a str, &'a str), Rc<Vec<Cand<'a>>>>,
    nodes_of: HashMap<String, Rc<Vec<String>>>,
    holders: HashMap<(String, String), Holders>,
    needs_all: Option<HashSet<(String, String)>>,
    needs_memo: HashMap<(String, String), bool>,
    /// Per-target work: index by target key into `works` (`None` key: no target).
    work_index: HashMap<String, usize>,
    works: Vec<(Option<String>, Work<'a>)>,
    work_none: Option<usize>,
    creates: Vec<NewAssigned>,
    updates: Vec<NewAssigned>,
    node_gone: Vec<AaiKey>,
    blocked: Vec<Blocked>,
    notes: BTreeSet<String>,
}

impl<'a> Planner<'a> {
    fn new(c: &'a Cluster, cfg: &'a Config) -> Self {
        Self {
            c,
            cfg,
            all: None,
            node_targets: HashMap::new(),
            valid_rid: HashMap::new(),
            cands: HashMap::new(),
            nodes_of: HashMap::new(),
            holders: HashMap::new(),
            needs_all: None,
            needs_memo: HashMap::new(),
            work_index: HashMap::new(),
            works: Vec::new(),
            work_none: None,
            creates: Vec::new(),
            updates: Vec::new(),
            node_gone: Vec::new(),
            blocked: Vec::new(),
            notes: BTreeSet::new(),
        }
    }

    // === desired AAIs ===

    fn valid(&mut self, identity: &'a IdentityInfo) -> bool {
        *self
            .valid_rid
            .entry((identity.namespace.as_str(), identity.name.as_str()))
            .or_insert_with(|| is_valid_resource_id(&identity.resource_id))
    }

    /// The AAIs one pod wants, in binding `(namespace, name)` order, one per key (upstream §2.5 step 3).
    fn compute_candidates(&mut self, pod: &'a PodInfo) -> Vec<Cand<'a>> {
        let c = self.c;
        let mut out: Vec<Cand<'a>> = Vec::new();
        if pod.node.is_empty() || pod.selector.is_empty() {
            return out;
        }
        if self.cfg.release_finished_pods && pod.finished {
            return out;
        }
        let Some(bindings) = c.bindings_by_selector.get(&pod.selector) else {
            return out;
        };
        if !c.nodes.contains_key(&pod.node) {
            self.notes.insert(format!(
                "pod {}/{} is on node {} which is not known yet: its identities wait for the node",
                pod.namespace, pod.name, pod.node
            ));
            return out;
        }
        for (bns, bname) in bindings {
            let Some(binding) = nget(&c.bindings, bns, bname) else {
                continue;
            };
            let Some(identity) = nget(&c.identities, &binding.namespace, &binding.identity) else {
                self.notes.insert(format!(
                    "{} identity not found when using {}/{} binding",
                    binding.identity, binding.namespace, binding.name
                ));
                continue;
            };
            if identity.id_type == USER_ASSIGNED_MSI_TYPE && !self.valid(identity) {
                self.notes.insert(format!(
                    "ignoring azure identity {}/{}, error: invalid resource id: {:?}, must match \
                     /subscriptions/<subid>/resourcegroups/<resourcegroup>/providers/\
                     Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
                    identity.namespace, identity.name, identity.resource_id
                ));
                continue;
            }
            let namespaced = self.cfg.force_namespaced || identity.namespaced;
            if namespaced
                && !(identity.namespace == binding.namespace && binding.namespace == pod.namespace)
            {
                continue;
            }
            let key = AaiKey {
                namespace: if namespaced {
                    identity.namespace.clone()
                } else {
                    DEFAULT_AAI_NAMESPACE.to_owned()
                },
                name: assigned_name(&pod.name, &pod.namespace, &identity.name),
            };
            if let Some(first) = out.iter().find(|x| x.key == key) {
                self.notes.insert(format!(
                    "AzureIdentity {} exists in both {} and {} namespace. Considering renaming it or \
                     enabling Namespace mode ({NAMESPACED_DOC_URL})",
                    identity.name, first.identity.namespace, identity.namespace
                ));
                continue;
            }
            out.push(Cand {
                key,
                pod,
                binding,
                identity,
            });
        }
        out
    }

    /// Memoised [`Planner::compute_candidates`] (dirty mode evaluates a pod from several keys).
    fn candidates(&mut self, pod: &'a PodInfo) -> Rc<Vec<Cand<'a>>> {
        let id = (pod.namespace.as_str(), pod.name.as_str());
        if let Some(found) = self.cands.get(&id) {
            return Rc::clone(found);
        }
        let computed = Rc::new(self.compute_candidates(pod));
        self.cands.insert(id, Rc::clone(&computed));
        computed
    }

    fn collision_note(&mut self, key: &AaiKey, kept: &PodInfo, other: &PodInfo) {
        self.notes.insert(format!(
            "AzureAssignedIdentity {}/{} is wanted by pods {}/{} and {}/{}: keeping the first",
            key.namespace, key.name, kept.namespace, kept.name, other.namespace, other.name
        ));
    }

    /// Full mode: every desired AAI, sorted by key; on a duplicate key the first pod in
    /// `(namespace, name)` order wins.
    fn desired_all(&mut self) -> Vec<Cand<'a>> {
        let c = self.c;
        let mut all: Vec<Cand<'a>> = Vec::new();
        for inner in c.pods.values() {
            for pod in inner.values() {
                all.extend(self.compute_candidates(pod));
            }
        }
        // Stable: among equal keys the earlier pod stays first.
        all.sort_by(|a, b| a.key.cmp(&b.key));
        let mut out: Vec<Cand<'a>> = Vec::with_capacity(all.len());
        for cand in all {
            match out.last() {
                Some(prev) if prev.key == cand.key => {
                    let (key, kept) = (prev.key.clone(), prev.pod);
                    self.collision_note(&key, kept, cand.pod);
                }
                _ => out.push(cand),
            }
        }
        out
    }

    /// Dirty mode: the desired AAI with this key, if any. Only pods whose `<pod>-<ns>-` prefix the key
    /// name could start with are candidates; the first in `(namespace, name)` order wins, as in full mode.
    fn resolve(&mut self, key: &AaiKey) -> Option<Cand<'a>> {
        let c = self.c;
        let mut owners: Vec<&'a PodInfo> = owner_splits(&key.name)
            .filter_map(|(pod, ns)| nget(&c.pods, ns, pod))
            .collect();
        owners.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        owners.dedup_by(|a, b| ptr::eq(*a, *b));
        let mut winner: Option<Cand<'a>> = None;
        for pod in owners {
            let cands = self.candidates(pod);
            let Some(found) = cands.iter().find(|x| x.key == *key) else {
                continue;
            };
            match &winner {
                None => winner = Some(found.clone()),
                Some(w) => {
                    let kept = w.pod;
                    self.collision_note(key, kept, pod);
                }
            }
        }
        winner
    }

    // === targets ===

    fn target_of(&mut self, node: &'a str) -> Option<Rc<TargetEntry>> {
        if let Some(found) = self.node_targets.get(node) {
            return found.clone();
        }
        let entry = self
            .c
            .nodes
            .get(node)
            .and_then(|info| target_of_node(info, self.cfg))
            .map(|target| {
                Rc::new(TargetEntry {
                    key: target.key(),
                    target,
                })
            });
        self.node_targets.insert(node, entry.clone());
        entry
    }

    /// Known nodes whose target has this key, sorted by name.
    fn nodes_of(&mut self, key: &str) -> Rc<Vec<String>> {
        if let Some(found) = self.nodes_of.get(key) {
            return Rc::clone(found);
        }
        let c = self.c;
        let mut nodes: BTreeSet<String> = c.nodes_by_target.get(key).cloned().unwrap_or_default();
        if let Some(last) = key.rsplit('/').next() {
            for name in c.nodes_without_target.get(last).into_iter().flatten() {
                if fallback_target(name, self.cfg).is_some_and(|t| t.key() == key) {
                    nodes.insert(name.clone());
                }
            }
        }
        let nodes = Rc::new(nodes.into_iter().collect::<Vec<_>>());
        self.nodes_of.insert(key.to_owned(), Rc::clone(&nodes));
        nodes
    }

    /// The target to report for a key: the target of its first node by name (so the spelling does not
    /// depend on which AAIs a pass looked at).
    fn canonical_target(&mut self, key: &str, seen: Option<&Target>) -> Option<Target> {
        let nodes = self.nodes_of(key);
        let c = self.c;
        nodes
            .first()
            .and_then(|n| c.nodes.get(n))
            .and_then(|info| target_of_node(info, self.cfg))
            .or_else(|| seen.cloned())
    }

    /// Current AAIs on the nodes of target `key` recording resource ID `rid` (lowercased).
    fn holders(&mut self, key: &str, rid: &str) -> Holders {
        let memo_key = (key.to_owned(), rid.to_owned());
        if let Some(found) = self.holders.get(&memo_key) {
            return *found;
        }
        let c = self.c;
        let mut h = Holders::default();
        for node in self.nodes_of(key).iter() {
            let Some(keys) = c.aai_by_node_rid.get(node).and_then(|m| m.get(rid)) else {
                continue;
            };
            for a in keys.iter().filter_map(|k| c.assigned.get(k)) {
                if is_assigned(&a.status) {
                    h.assigned = true;
                    h.assigned_preexisting |= a.preexisting;
                }
                h.any_preexisting |= a.preexisting;
                h.any_immutable |= self.is_immutable(&a.client_id);
            }
        }
        self.holders.insert(memo_key, h);
        h
    }

    fn is_immutable(&self, client_id: &str) -> bool {
        !client_id.is_empty()
            && self
                .cfg
                .immutable_client_ids
                .contains(&client_id.to_lowercase())
    }

    /// Whether a desired AAI on a node of target `key` needs resource ID `rid` (lowercased).
    fn needs(&mut self, key: &str, rid: &str) -> bool {
        if self.all.is_some() {
            if self.needs_all.is_none() {
                let all = self.all.take().unwrap_or_default();
                let mut set = HashSet::new();
                for cand in all.iter().filter(|x| x.is_msi()) {
                    if let Some(t) = self.target_of(&cand.pod.node) {
                        set.insert((t.key.clone(), cand.identity.resource_id.to_lowercase()));
                    }
                }
                self.all = Some(all);
                self.needs_all = Some(set);
            }
            return self
                .needs_all
                .as_ref()
                .is_some_and(|s| s.contains(&(key.to_owned(), rid.to_owned())));
        }
        let memo_key = (key.to_owned(), rid.to_owned());
        if let Some(found) = self.needs_memo.get(&memo_key) {
            return *found;
        }
        let found = self.needs_query(key, rid);
        self.needs_memo.insert(memo_key, found);
        found
    }

    /// Dirty mode: identities with this resource ID → bindings naming them → pods with their selector on
    /// a node of the target → does such a pod's winning desired AAI use it.
    fn needs_query(&mut self, key: &str, rid: &str) -> bool {
        let c = self.c;
        for (ins, iname) in c.identities_by_rid.get(rid).into_iter().flatten() {
            let Some(identity) = nget(&c.identities, ins, iname) else {
                continue;
            };
            if identity.id_type != USER_ASSIGNED_MSI_TYPE {
                continue;
            }
            let id_key = (ins.clone(), iname.clone());
            for (bns, bname) in c.bindings_by_identity.get(&id_key).into_iter().flatten() {
                let Some(binding) = nget(&c.bindings, bns, bname) else {
                    continue;
                };
                for (pns, pname) in c
                    .pods_by_selector
                    .get(&binding.selector)
                    .into_iter()
                    .flatten()
                {
                    let Some(pod) = nget(&c.pods, pns, pname) else {
                        continue;
                    };
                    if self.target_of(&pod.node).is_none_or(|t| t.key != key) {
                        continue;
                    }
                    let cands = self.candidates(pod);
                    for cand in cands
                        .iter()
                        .filter(|x| ptr::eq(x.binding, binding) && ptr::eq(x.identity, identity))
                    {
                        if self.resolve(&cand.key).is_some_and(|w| ptr::eq(w.pod, pod)) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    // === per-key decision ===

    fn work_for(&mut self, target: Option<&Rc<TargetEntry>>) -> &mut Work<'a> {
        let existing = match target {
            None => self.work_none,
            Some(t) => self.work_index.get(t.key.as_str()).copied(),
        };
        let index = existing.unwrap_or_else(|| {
            let index = self.works.len();
            let work = Work {
                seen: target.map(|t| t.target.clone()),
                ..Work::default()
            };
            self.works.push((target.map(|t| t.key.clone()), work));
            match target {
                None => self.work_none = Some(index),
                Some(t) => {
                    self.work_index.insert(t.key.clone(), index);
                }
            }
            index
        });
        &mut self.works[index].1
    }

    fn blocked_reason(&self, d: &Cand<'a>) -> Blocked {
        Blocked {
            key: d.key.clone(),
            reason: format!(
                "node {} has no Azure provider ID (spec.providerID) and no fallback subscription and \
                 resource group are configured: cannot assign user-assigned identity {}/{}",
                d.pod.node, d.identity.namespace, d.identity.name
            ),
        }
    }

    /// Queues the assignment of a desired AAI; false (and blocked) when it needs ARM and has no target.
    fn assign(&mut self, d: &Cand<'a>) -> bool {
        let target = self.target_of(&d.pod.node);
        if d.is_msi() && target.is_none() {
            let blocked = self.blocked_reason(d);
            self.blocked.push(blocked);
            return false;
        }
        let pending = PendingAssign {
            key: d.key.clone(),
            resource_id: if d.is_msi() {
                d.identity.resource_id.as_str()
            } else {
                ""
            },
            msi: d.is_msi(),
        };
        self.work_for(target.as_ref()).assigns.push(pending);
        true
    }

    /// Queues the deletion of a current AAI (released on its target, or `node_gone`).
    fn release(&mut self, c: &'a AssignedInfo) {
        if !self.c.nodes.contains_key(&c.node) {
            self.node_gone.push(c.key.clone());
            return;
        }
        let target = self.target_of(&c.node);
        let eligible = target.is_some() && removal_eligible(c);
        let work = self.work_for(target.as_ref());
        work.releases.push(c);
        if eligible {
            work.removals.push(c);
        }
    }

    /// The old spec of a replaced AAI: its resource ID becomes a removal candidate on its target.
    fn replaced(&mut self, c: &'a AssignedInfo) {
        if !self.c.nodes.contains_key(&c.node) || !removal_eligible(c) {
            return;
        }
        if let Some(target) = self.target_of(&c.node) {
            self.work_for(Some(&target)).removals.push(c);
        }
    }

    fn decide(&mut self, d: Option<Cand<'a>>, c: Option<&'a AssignedInfo>) {
        match (d, c) {
            (None, None) => {}
            (Some(d), None) => {
                if self.assign(&d) {
                    self.creates.push(d.new_assigned());
                }
            }
            (None, Some(c)) => self.release(c),
            (Some(d), Some(c)) => {
                if c.deleting {
                    // Let the terminating object go (finalizer); re-created once it is gone.
                    self.release(c);
                } else if d.matches(c) {
                    if !is_assigned(&c.status) {
                        // Retry; when blocked the AAI stays as it is.
                        self.assign(&d);
                    }
                } else if self.assign(&d) {
                    self.updates.push(d.new_assigned());
                    self.replaced(c);
                } else {
                    // Cannot place the new spec: the old one is not wanted either.
                    self.release(c);
                }
            }
        }
    }

    // === output ===

    fn finish(mut self) -> Plan {
        let work = std::mem::take(&mut self.works);
        let mut targets = Vec::new();
        for (key, mut w) in work {
            w.assigns.sort_by(|a, b| a.key.cmp(&b.key));
            w.releases.sort_by(|a, b| a.key.cmp(&b.key));
            w.removals.sort_by(|a, b| a.key.cmp(&b.key));
            let plan = match key {
                None => TargetPlan {
                    target: None,
                    add: Vec::new(),
                    remove: Vec::new(),
                    assign: w
                        .assigns
                        .iter()
                        .map(|a| Assign {
                            key: a.key.clone(),
                            resource_id: a.resource_id.to_owned(),
                            preexisting: Some(false),
                        })
                        .collect(),
                    release: w
                        .releases
                        .iter()
                        .map(|c| Release {
                            key: c.key.clone(),
                            resource_id: release_rid(c),
                            removes: false,
                        })
                        .collect(),
                },
                Some(key) => self.finish_target(&key, &w),
            };
            if !(plan.add.is_empty()
                && plan.remove.is_empty()
                && plan.assign.is_empty()
                && plan.release.is_empty())
            {
                targets.push(plan);
            }
        }
        targets.sort_by(|a, b| a.target.cmp(&b.target));
        self.creates.sort_by(|a, b| a.key.cmp(&b.key));
        self.updates.sort_by(|a, b| a.key.cmp(&b.key));
        self.node_gone.sort();
        self.blocked.sort_by(|a, b| a.key.cmp(&b.key));
        Plan {
            creates: self.creates,
            updates: self.updates,
            targets,
            node_gone: self.node_gone,
            blocked: self.blocked,
            notes: self.notes.into_iter().collect(),
        }
    }

    fn finish_target(&mut self, key: &str, w: &Work<'a>) -> TargetPlan {
        let mut add: Vec<String> = Vec::new();
        let mut add_lower: HashSet<String> = HashSet::new();
        let mut assign = Vec::with_capacity(w.assigns.len());
        // Resource ID as written → (lowercased, holder's flag if some Assigned AAI holds it).
        let mut per_rid: HashMap<&str, (String, Option<bool>)> = HashMap::new();
        for a in &w.assigns {
            let preexisting = if a.msi {
                let (rid, held) = per_rid.entry(a.resource_id).or_insert_with(|| {
                    let rid = a.resource_id.to_lowercase();
                    let h = self.holders(key, &rid);
                    (rid, h.assigned.then_some(h.assigned_preexisting))
                });
                if held.is_none() && add_lower.insert(rid.clone()) {
                    add.push(a.resource_id.to_owned());
                }
                *held
            } else {
                Some(false)
            };
            assign.push(Assign {
                key: a.key.clone(),
                resource_id: a.resource_id.to_owned(),
                preexisting,
            });
        }

        let mut remove: Vec<String> = Vec::new();
        let mut decided: HashMap<String, bool> = HashMap::new();
        for c in &w.removals {
            let rid = c.resource_id.to_lowercase();
            if decided.contains_key(&rid) {
                continue;
            }
            let h = self.holders(key, &rid);
            let ok = !h.any_preexisting
                && !h.any_immutable
                && !c.preexisting
                && !self.is_immutable(&c.client_id)
                && !self.needs(key, &rid);
            if ok {
                remove.push(c.resource_id.clone());
            }
            decided.insert(rid, ok);
        }
        let release = w
            .releases
            .iter()
            .map(|c| Release {
                key: c.key.clone(),
                resource_id: release_rid(c),
                removes: c.id_type == USER_ASSIGNED_MSI_TYPE
                    && decided
                        .get(&c.resource_id.to_lowercase())
                        .copied()
                        .unwrap_or(false),
            })
            .collect();
        add.sort_by_key(|s| s.to_lowercase());
        remove.sort_by_key(|s| s.to_lowercase());
        TargetPlan {
            target: self.canonical_target(key, w.seen.as_ref()),
            add,
            remove,
            assign,
            release,
        }
    }
}

fn release_rid(c: &AssignedInfo) -> String {
    if c.id_type == USER_ASSIGNED_MSI_TYPE {
        c.resource_id.clone()
    } else {
        String::new()
    }
}

/// Every `(pod, namespace)` an AAI name `<pod>-<namespace>-<identity>` can be split into (all three
/// parts non-empty; names may contain dashes themselves).
fn owner_splits(name: &str) -> impl Iterator<Item = (&str, &str)> {
    let dashes: Vec<usize> = name.match_indices('-').map(|(i, _)| i).collect();
    let mut out = Vec::new();
    for (n, &i) in dashes.iter().enumerate() {
        for &j in &dashes[n + 1..] {
            let (pod, ns, identity) = (&name[..i], &name[i + 1..j], &name[j + 1..]);
            if !pod.is_empty() && !ns.is_empty() && !identity.is_empty() {
                out.push((pod, ns));
            }
        }
    }
    out.into_iter()
}

// === impl Cluster (planning) ===

impl Cluster {
    /// Plans everything from scratch (upstream's full sync cycle, §2.5, with the differences listed in
    /// the module essay). Does not touch the dirty set.
    #[must_use]
    pub fn plan_all(&self, cfg: &Config) -> Plan {
        let mut p = Planner::new(self, cfg);
        let desired = p.desired_all();
        let mut current = self.assigned.iter().peekable();
        let mut wanted = desired.iter().peekable();
        loop {
            let order = match (wanted.peek(), current.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(d), Some((k, _))) => d.key.cmp(k),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let d = wanted.next().cloned();
                    p.decide(d, None);
                }
                std::cmp::Ordering::Greater => {
                    let c = current.next().map(|(_, c)| c);
                    p.decide(None, c);
                }
                std::cmp::Ordering::Equal => {
                    let d = wanted.next().cloned();
                    let c = current.next().map(|(_, c)| c);
                    p.decide(d, c);
                }
            }
        }
        p.all = Some(desired);
        p.finish()
    }

    /// Plans only what events affected since the last call (dirty pods, their possible AAI keys, and
    /// dirty AAIs), then clears the dirty set. From a converged state (an empty [`Cluster::plan_all`])
    /// followed by any events, its `creates`, `updates`, `targets` and `node_gone` equal those of
    /// `plan_all`; its `blocked` and `notes` cover only what it looked at (so repeated diagnostics do
    /// not turn into repeated Kubernetes events). When most of the cluster is dirty it makes one full
    /// pass (then it looked at everything).
    pub fn plan_dirty(&mut self, cfg: &Config) -> Plan {
        let dirty_pods = std::mem::take(&mut self.dirty_pods);
        let mut keys = std::mem::take(&mut self.dirty_keys);
        let dirty = dirty_pods.len() + keys.len();
        let (pods, _, _, _, assigned) = self.counts();
        if dirty >= FULL_PASS_MIN_DIRTY && dirty.saturating_mul(4) >= pods + assigned {
            return self.plan_all(cfg);
        }
        let this: &Cluster = self;
        let mut p = Planner::new(this, cfg);
        for (ns, name) in &dirty_pods {
            if let Some(pod) = nget(&this.pods, ns, name) {
                this.key_superset(pod, &mut keys);
                p.candidates(pod);
            }
            if let Some(existing) = this.aai_by_pod.get(&(ns.clone(), name.clone())) {
                keys.extend(existing.iter().cloned());
            }
        }
        for key in &keys {
            let d = p.resolve(key);
            let c = this.assigned.get(key);
            p.decide(d, c);
        }
        p.finish()
    }

    /// Periodic reconcile (upstream §2.6, re-add only). `arm` maps [`Target::key`] to the lowercased
    /// resource IDs ARM shows on that VM or scale set. For each such target, the resource IDs of
    /// type-0, Assigned/Legacy, non-deleting AAIs on its nodes that ARM lacks (case-insensitive) become a
    /// [`TargetPlan`] with only `add`. Never removes, never assigns or releases.
    #[must_use]
    pub fn plan_reconcile(&self, cfg: &Config, arm: &BTreeMap<String, BTreeSet<String>>) -> Plan {
        let mut p = Planner::new(self, cfg);
        let mut targets = Vec::new();
        for (key, present) in arm {
            let key = key.to_lowercase();
            let nodes = p.nodes_of(&key);
            let present: HashSet<String> = present.iter().map(|s| s.to_lowercase()).collect();
            let mut holders: Vec<&AssignedInfo> = nodes
                .iter()
                .filter_map(|n| self.aai_by_node.get(n))
                .flatten()
                .filter_map(|k| self.assigned.get(k))
                .filter(|a| {
                    a.id_type == USER_ASSIGNED_MSI_TYPE
                        && is_assigned(&a.status)
                        && !a.deleting
                        && is_valid_resource_id(&a.resource_id)
                })
                .collect();
            holders.sort_by(|a, b| a.key.cmp(&b.key));
            let mut seen = HashSet::new();
            let mut add: Vec<String> = Vec::new();
            for a in holders {
                let rid = a.resource_id.to_lowercase();
                if !present.contains(&rid) && seen.insert(rid) {
                    add.push(a.resource_id.clone());
                }
            }
            if add.is_empty() {
                continue;
            }
            add.sort_by_key(|s| s.to_lowercase());
            targets.push(TargetPlan {
                target: p.canonical_target(&key, None),
                add,
                remove: Vec::new(),
                assign: Vec::new(),
                release: Vec::new(),
            });
        }
        targets.sort_by(|a, b| a.target.cmp(&b.target));
        Plan {
            targets,
            ..Plan::default()
        }
    }

    /// Whether a removal planned earlier but not carried out (its target was busy, or the ARM change failed) may
    /// still be done: no desired AAI on a node of `target` needs `resource_id`, and no AAI there holds it (an AAI
    /// that holds it decides for itself when it is released). The immutable and preexisting checks were made when
    /// the removal was planned and cannot change for an ID no AAI holds.
    #[must_use]
    pub fn removal_still_allowed(&self, cfg: &Config, target: &Target, resource_id: &str) -> bool {
        let mut p = Planner::new(self, cfg);
        let key = target.key();
        let rid = resource_id.to_lowercase();
        if p.needs_query(&key, &rid) {
            return false;
        }
        let h = p.holders(&key, &rid);
        let held = h.assigned
            || h.any_preexisting
            || h.any_immutable
            || p.nodes_of(&key).iter().any(|n| {
                self.aai_by_node_rid
                    .get(n)
                    .and_then(|m| m.get(&rid))
                    .is_some_and(|keys| !keys.is_empty())
            });
        !held
    }

    /// Targets with at least one type-0, Assigned/Legacy, non-deleting AAI on a known node: what the
    /// periodic reconcile reads from ARM. Sorted, one per [`Target::key`].
    #[must_use]
    pub fn targets_with_assigned(&self, cfg: &Config) -> Vec<Target> {
        let mut p = Planner::new(self, cfg);
        let mut keys: BTreeMap<String, Target> = BTreeMap::new();
        for a in self.assigned.values() {
            if a.id_type != USER_ASSIGNED_MSI_TYPE || !is_assigned(&a.status) || a.deleting {
                continue;
            }
            if let Some(t) = p.target_of(&a.node)
                && !keys.contains_key(&t.key)
                && let Some(canonical) = p.canonical_target(&t.key, Some(&t.target))
            {
                keys.insert(t.key.clone(), canonical);
            }
        }
        let mut out: Vec<Target> = keys.into_values().collect();
        out.sort();
        out
    }
}
