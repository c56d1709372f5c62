//! [`Cluster`]: the incremental index the planner reads (objects, reverse maps, dirty set).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;

use super::model::{
    AaiKey, AssignedInfo, BindingInfo, Config, IdentityInfo, NodeInfo, PodInfo, Target,
};
use super::names::assigned_name;

/// AAI namespace used when the identity is not namespaced (kept by upstream for back-compat).
pub(crate) const DEFAULT_AAI_NAMESPACE: &str = "default";

/// `(namespace, name)` of a namespaced object.
pub(crate) type NsName = (String, String);

/// Objects of one kind by namespace, then name (lookups by `&str` without allocating; iteration in
/// `(namespace, name)` order).
pub(crate) type Nested<T> = BTreeMap<String, BTreeMap<String, T>>;

pub(crate) fn nget<'a, T>(map: &'a Nested<T>, ns: &str, name: &str) -> Option<&'a T> {
    map.get(ns).and_then(|inner| inner.get(name))
}

fn ninsert<T>(map: &mut Nested<T>, ns: &str, name: &str, value: T) -> Option<T> {
    map.entry(ns.to_owned())
        .or_default()
        .insert(name.to_owned(), value)
}

fn nremove<T>(map: &mut Nested<T>, ns: &str, name: &str) -> Option<T> {
    let inner = map.get_mut(ns)?;
    let old = inner.remove(name);
    if inner.is_empty() {
        map.remove(ns);
    }
    old
}

fn ncount<T>(map: &Nested<T>) -> usize {
    map.values().map(BTreeMap::len).sum()
}

fn index_add<K: Hash + Eq, V: Ord>(map: &mut HashMap<K, BTreeSet<V>>, key: K, value: V) {
    map.entry(key).or_default().insert(value);
}

fn index_remove<K, Q, V>(map: &mut HashMap<K, BTreeSet<V>>, key: &Q, value: &V)
where
    K: Hash + Eq + std::borrow::Borrow<Q>,
    Q: Hash + Eq + ?Sized,
    V: Ord,
{
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

fn ns_name(ns: &str, name: &str) -> NsName {
    (ns.to_owned(), name.to_owned())
}

/// The planner's view of the cluster: pods, nodes, AzureIdentities, AzureIdentityBindings and
/// AzureAssignedIdentities, with reverse maps so that one watch event costs O(what it affects), and a
/// dirty set recording what events affected since the last [`Cluster::plan_dirty`].
///
/// Feed it from watches: `apply_*` on add/update, `delete_*` on delete, `reset_*` on a relist.
/// Applying an object equal to the stored one changes nothing and marks nothing.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub(crate) pods: Nested<PodInfo>,
    pub(crate) nodes: BTreeMap<String, NodeInfo>,
    pub(crate) identities: Nested<IdentityInfo>,
    pub(crate) bindings: Nested<BindingInfo>,
    pub(crate) assigned: BTreeMap<AaiKey, AssignedInfo>,

    /// Binding selector → bindings `(ns, name)`, sorted as upstream sorts matched bindings.
    pub(crate) bindings_by_selector: HashMap<String, BTreeSet<NsName>>,
    /// `(binding ns, spec.azureIdentity)` (= the identity's key) → bindings naming it.
    pub(crate) bindings_by_identity: HashMap<NsName, BTreeSet<NsName>>,
    /// Lowercased `spec.resourceID` → identities with it.
    pub(crate) identities_by_rid: HashMap<String, BTreeSet<NsName>>,
    /// Pod label value → pods.
    pub(crate) pods_by_selector: HashMap<String, BTreeSet<NsName>>,
    /// Node name → pods on it (kept for nodes the index does not know yet).
    pub(crate) pods_by_node: HashMap<String, BTreeSet<NsName>>,
    /// [`Target::key`] → nodes whose provider ID maps to it (fallback targets are derived at plan time).
    pub(crate) nodes_by_target: HashMap<String, BTreeSet<String>>,
    /// Lowercased node name → nodes without a provider-ID target (candidates for the fallback target).
    pub(crate) nodes_without_target: HashMap<String, BTreeSet<String>>,
    /// `(podNamespace, pod)` → AAIs naming that pod.
    pub(crate) aai_by_pod: HashMap<NsName, BTreeSet<AaiKey>>,
    /// Node name → AAIs on it.
    pub(crate) aai_by_node: HashMap<String, BTreeSet<AaiKey>>,
    /// Node name → lowercased resource ID → type-0 AAIs on that node recording it.
    pub(crate) aai_by_node_rid: HashMap<String, HashMap<String, BTreeSet<AaiKey>>>,

    /// Pods to re-plan.
    pub(crate) dirty_pods: BTreeSet<NsName>,
    /// AAI keys to re-plan (existing AAIs, and keys some affected pod could have wanted before the change).
    pub(crate) dirty_keys: BTreeSet<AaiKey>,
}

impl Cluster {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    // === pods ===

    /// Adds or replaces a pod; marks the pod dirty.
    pub fn apply_pod(&mut self, pod: PodInfo) {
        if nget(&self.pods, &pod.namespace, &pod.name) == Some(&pod) {
            return;
        }
        self.touch_pod(&pod.namespace, &pod.name);
        let key = ns_name(&pod.namespace, &pod.name);
        if let Some(old) = ninsert(&mut self.pods, &pod.namespace, &pod.name, pod.clone()) {
            self.unindex_pod(&key, &old);
        }
        self.index_pod(key, &pod);
    }

    /// Removes a pod; marks it dirty (its AAIs are released).
    pub fn delete_pod(&mut self, namespace: &str, name: &str) {
        if nget(&self.pods, namespace, name).is_none() {
            return;
        }
        self.touch_pod(namespace, name);
        if let Some(old) = nremove(&mut self.pods, namespace, name) {
            self.unindex_pod(&ns_name(namespace, name), &old);
        }
    }

    /// Replaces every pod (watch relist): deletes the ones not listed, applies the others.
    pub fn reset_pods(&mut self, pods: Vec<PodInfo>) {
        let keep: HashSet<NsName> = pods
            .iter()
            .map(|p| ns_name(&p.namespace, &p.name))
            .collect();
        for (ns, name) in keys_not_in(self.pods.clone_keys(), &keep) {
            self.delete_pod(&ns, &name);
        }
        for pod in pods {
            self.apply_pod(pod);
        }
    }

    fn index_pod(&mut self, key: NsName, pod: &PodInfo) {
        if !pod.selector.is_empty() {
            index_add(
                &mut self.pods_by_selector,
                pod.selector.clone(),
                key.clone(),
            );
        }
        if !pod.node.is_empty() {
            index_add(&mut self.pods_by_node, pod.node.clone(), key);
        }
    }

    fn unindex_pod(&mut self, key: &NsName, pod: &PodInfo) {
        index_remove(&mut self.pods_by_selector, pod.selector.as_str(), key);
        index_remove(&mut self.pods_by_node, pod.node.as_str(), key);
    }

    // === nodes ===

    /// Adds or replaces a node; marks the pods and AAIs on it dirty.
    pub fn apply_node(&mut self, node: NodeInfo) {
        if self.nodes.get(&node.name) == Some(&node) {
            return;
        }
        self.touch_node(&node.name);
        if let Some(old) = self.nodes.insert(node.name.clone(), node.clone()) {
            self.unindex_node(&old);
        }
        match &node.target {
            Some(target) => index_add(&mut self.nodes_by_target, target.key(), node.name.clone()),
            None => index_add(
                &mut self.nodes_without_target,
                node.name.to_lowercase(),
                node.name.clone(),
            ),
        }
    }

    /// Removes a node; marks the pods and AAIs on it dirty (its AAIs become `node_gone`).
    pub fn delete_node(&mut self, name: &str) {
        if !self.nodes.contains_key(name) {
            return;
        }
        self.touch_node(name);
        if let Some(old) = self.nodes.remove(name) {
            self.unindex_node(&old);
        }
    }

    /// Replaces every node (watch relist).
    pub fn reset_nodes(&mut self, nodes: Vec<NodeInfo>) {
        let keep: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let gone: Vec<String> = self
            .nodes
            .keys()
            .filter(|n| !keep.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.delete_node(&name);
        }
        for node in nodes {
            self.apply_node(node);
        }
    }

    fn unindex_node(&mut self, node: &NodeInfo) {
        match &node.target {
            Some(target) => {
                index_remove(&mut self.nodes_by_target, target.key().as_str(), &node.name);
            }
            None => index_remove(
                &mut self.nodes_without_target,
                node.name.to_lowercase().as_str(),
                &node.name,
            ),
        }
    }

    fn touch_node(&mut self, name: &str) {
        let pods: Vec<NsName> = self
            .pods_by_node
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for (ns, pod) in pods {
            self.touch_pod(&ns, &pod);
        }
        if let Some(keys) = self.aai_by_node.get(name) {
            self.dirty_keys.extend(keys.iter().cloned());
        }
    }

    // === identities ===

    /// Adds or replaces an AzureIdentity; marks dirty the pods reached through bindings naming it.
    pub fn apply_identity(&mut self, identity: IdentityInfo) {
        if nget(&self.identities, &identity.namespace, &identity.name) == Some(&identity) {
            return;
        }
        self.touch_identity(&identity.namespace, &identity.name);
        let key = ns_name(&identity.namespace, &identity.name);
        if let Some(old) = ninsert(
            &mut self.identities,
            &identity.namespace,
            &identity.name,
            identity.clone(),
        ) {
            index_remove(
                &mut self.identities_by_rid,
                old.resource_id.to_lowercase().as_str(),
                &key,
            );
        }
        index_add(
            &mut self.identities_by_rid,
            identity.resource_id.to_lowercase(),
            key,
        );
    }

    /// Removes an AzureIdentity; marks dirty the pods reached through bindings naming it.
    pub fn delete_identity(&mut self, namespace: &str, name: &str) {
        if nget(&self.identities, namespace, name).is_none() {
            return;
        }
        self.touch_identity(namespace, name);
        if let Some(old) = nremove(&mut self.identities, namespace, name) {
            index_remove(
                &mut self.identities_by_rid,
                old.resource_id.to_lowercase().as_str(),
                &ns_name(namespace, name),
            );
        }
    }

    /// Replaces every AzureIdentity (watch relist).
    pub fn reset_identities(&mut self, identities: Vec<IdentityInfo>) {
        let keep: HashSet<NsName> = identities
            .iter()
            .map(|i| ns_name(&i.namespace, &i.name))
            .collect();
        for (ns, name) in keys_not_in(self.identities.clone_keys(), &keep) {
            self.delete_identity(&ns, &name);
        }
        for identity in identities {
            self.apply_identity(identity);
        }
    }

    fn touch_identity(&mut self, namespace: &str, name: &str) {
        let selectors: BTreeSet<String> = self
            .bindings_by_identity
            .get(&ns_name(namespace, name))
            .into_iter()
            .flatten()
            .filter_map(|(bns, bname)| nget(&self.bindings, bns, bname))
            .map(|b| b.selector.clone())
            .collect();
        for selector in selectors {
            self.touch_selector(&selector);
        }
    }

    // === bindings ===

    /// Adds or replaces an AzureIdentityBinding; marks dirty the pods labelled with its old or new selector.
    pub fn apply_binding(&mut self, binding: BindingInfo) {
        let old = nget(&self.bindings, &binding.namespace, &binding.name).cloned();
        if old.as_ref() == Some(&binding) {
            return;
        }
        if let Some(old) = &old {
            self.touch_selector(&old.selector);
        }
        self.touch_selector(&binding.selector);
        let key = ns_name(&binding.namespace, &binding.name);
        if let Some(old) = ninsert(
            &mut self.bindings,
            &binding.namespace,
            &binding.name,
            binding.clone(),
        ) {
            self.unindex_binding(&key, &old);
        }
        index_add(
            &mut self.bindings_by_selector,
            binding.selector.clone(),
            key.clone(),
        );
        index_add(
            &mut self.bindings_by_identity,
            ns_name(&binding.namespace, &binding.identity),
            key,
        );
    }

    /// Removes an AzureIdentityBinding; marks dirty the pods labelled with its selector.
    pub fn delete_binding(&mut self, namespace: &str, name: &str) {
        let Some(old) = nget(&self.bindings, namespace, name).cloned() else {
            return;
        };
        self.touch_selector(&old.selector);
        nremove(&mut self.bindings, namespace, name);
        self.unindex_binding(&ns_name(namespace, name), &old);
    }

    /// Replaces every AzureIdentityBinding (watch relist).
    pub fn reset_bindings(&mut self, bindings: Vec<BindingInfo>) {
        let keep: HashSet<NsName> = bindings
            .iter()
            .map(|b| ns_name(&b.namespace, &b.name))
            .collect();
        for (ns, name) in keys_not_in(self.bindings.clone_keys(), &keep) {
            self.delete_binding(&ns, &name);
        }
        for binding in bindings {
            self.apply_binding(binding);
        }
    }

    fn unindex_binding(&mut self, key: &NsName, old: &BindingInfo) {
        index_remove(&mut self.bindings_by_selector, old.selector.as_str(), key);
        index_remove(
            &mut self.bindings_by_identity,
            &ns_name(&old.namespace, &old.identity),
            key,
        );
    }

    fn touch_selector(&mut self, selector: &str) {
        if selector.is_empty() {
            return;
        }
        let pods: Vec<NsName> = self
            .pods_by_selector
            .get(selector)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for (ns, pod) in pods {
            self.touch_pod(&ns, &pod);
        }
    }

    // === assigned identities ===

    /// Adds or replaces an AzureAssignedIdentity; marks it and its pod dirty.
    pub fn apply_assigned(&mut self, assigned: AssignedInfo) {
        let old = self.assigned.get(&assigned.key).cloned();
        if old.as_ref() == Some(&assigned) {
            return;
        }
        self.dirty_keys.insert(assigned.key.clone());
        self.touch_pod(&assigned.pod_namespace, &assigned.pod);
        if let Some(old) = &old {
            if (old.pod_namespace.as_str(), old.pod.as_str())
                != (assigned.pod_namespace.as_str(), assigned.pod.as_str())
            {
                self.touch_pod(&old.pod_namespace, &old.pod);
            }
            self.unindex_assigned(old);
        }
        self.index_assigned(&assigned);
        self.assigned.insert(assigned.key.clone(), assigned);
    }

    /// Removes an AzureAssignedIdentity; marks its key and its pod dirty.
    pub fn delete_assigned(&mut self, key: &AaiKey) {
        let Some(old) = self.assigned.remove(key) else {
            return;
        };
        self.dirty_keys.insert(key.clone());
        self.touch_pod(&old.pod_namespace, &old.pod);
        self.unindex_assigned(&old);
    }

    /// Replaces every AzureAssignedIdentity (watch relist).
    pub fn reset_assigned(&mut self, assigned: Vec<AssignedInfo>) {
        let keep: HashSet<&AaiKey> = assigned.iter().map(|a| &a.key).collect();
        let gone: Vec<AaiKey> = self
            .assigned
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for key in gone {
            self.delete_assigned(&key);
        }
        for a in assigned {
            self.apply_assigned(a);
        }
    }

    fn index_assigned(&mut self, a: &AssignedInfo) {
        index_add(
            &mut self.aai_by_pod,
            ns_name(&a.pod_namespace, &a.pod),
            a.key.clone(),
        );
        index_add(&mut self.aai_by_node, a.node.clone(), a.key.clone());
        if a.id_type == 0 {
            self.aai_by_node_rid
                .entry(a.node.clone())
                .or_default()
                .entry(a.resource_id.to_lowercase())
                .or_default()
                .insert(a.key.clone());
        }
    }

    fn unindex_assigned(&mut self, a: &AssignedInfo) {
        index_remove(
            &mut self.aai_by_pod,
            &ns_name(&a.pod_namespace, &a.pod),
            &a.key,
        );
        index_remove(&mut self.aai_by_node, a.node.as_str(), &a.key);
        if a.id_type == 0
            && let Some(by_rid) = self.aai_by_node_rid.get_mut(&a.node)
        {
            index_remove(by_rid, a.resource_id.to_lowercase().as_str(), &a.key);
            if by_rid.is_empty() {
                self.aai_by_node_rid.remove(&a.node);
            }
        }
    }

    // === dirty set ===

    /// Marks everything dirty (after a [`Config`] change, or to force a full pass through `plan_dirty`).
    pub fn mark_all_dirty(&mut self) {
        for (ns, inner) in &self.pods {
            for name in inner.keys() {
                self.dirty_pods.insert(ns_name(ns, name));
            }
        }
        self.dirty_keys.extend(self.assigned.keys().cloned());
    }

    /// Marks one AAI key dirty (retry after a failed write).
    pub fn mark_assigned_dirty(&mut self, key: &AaiKey) {
        self.dirty_keys.insert(key.clone());
    }

    /// Marks one pod dirty (retry after a failed write).
    pub fn mark_pod_dirty(&mut self, namespace: &str, name: &str) {
        self.dirty_pods.insert(ns_name(namespace, name));
    }

    /// Forgets the dirty set (after building a converged world by hand).
    pub(crate) fn clear_dirty(&mut self) {
        self.dirty_pods.clear();
        self.dirty_keys.clear();
    }

    /// True when some event or mark is waiting for [`Cluster::plan_dirty`].
    #[must_use]
    pub fn has_dirty(&self) -> bool {
        !self.dirty_pods.is_empty() || !self.dirty_keys.is_empty()
    }

    /// `(dirty pods, dirty AAI keys)` waiting for [`Cluster::plan_dirty`] (for logs and tests).
    #[must_use]
    pub fn dirty_counts(&self) -> (usize, usize) {
        (self.dirty_pods.len(), self.dirty_keys.len())
    }

    /// Marks a pod dirty before a change that may alter what it wants. Besides the pod itself, records
    /// every AAI key the pod could want under the current bindings (over-approximated: both possible AAI
    /// namespaces, whether or not the identity exists), so that a key the pod stops wanting is re-planned
    /// even when no AAI exists for it (another pod may want the same name).
    fn touch_pod(&mut self, namespace: &str, name: &str) {
        if let Some(pod) = nget(&self.pods, namespace, name) {
            let mut keys = BTreeSet::new();
            self.key_superset(pod, &mut keys);
            self.dirty_keys.extend(keys);
        }
        self.dirty_pods.insert(ns_name(namespace, name));
    }

    /// Every AAI key `pod` could want under the current bindings (see [`Cluster::touch_pod`]).
    pub(crate) fn key_superset(&self, pod: &PodInfo, out: &mut BTreeSet<AaiKey>) {
        if pod.selector.is_empty() {
            return;
        }
        for (bns, bname) in self
            .bindings_by_selector
            .get(&pod.selector)
            .into_iter()
            .flatten()
        {
            let Some(binding) = nget(&self.bindings, bns, bname) else {
                continue;
            };
            let name = assigned_name(&pod.name, &pod.namespace, &binding.identity);
            out.insert(AaiKey {
                namespace: DEFAULT_AAI_NAMESPACE.to_owned(),
                name: name.clone(),
            });
            out.insert(AaiKey {
                namespace: bns.clone(),
                name,
            });
        }
    }

    // === read accessors ===

    /// `(pods, nodes, identities, bindings, assigned)` held, for logs.
    #[must_use]
    pub fn counts(&self) -> (usize, usize, usize, usize, usize) {
        (
            ncount(&self.pods),
            self.nodes.len(),
            ncount(&self.identities),
            ncount(&self.bindings),
            self.assigned.len(),
        )
    }

    /// The stored AAI with this key.
    #[must_use]
    pub fn assigned(&self, key: &AaiKey) -> Option<&AssignedInfo> {
        self.assigned.get(key)
    }

    /// The stored pod.
    #[must_use]
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodInfo> {
        nget(&self.pods, namespace, name)
    }

    /// The stored node.
    #[must_use]
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// The stored AzureIdentity.
    #[must_use]
    pub fn identity(&self, namespace: &str, name: &str) -> Option<&IdentityInfo> {
        nget(&self.identities, namespace, name)
    }

    /// The stored AzureIdentityBinding.
    #[must_use]
    pub fn binding(&self, namespace: &str, name: &str) -> Option<&BindingInfo> {
        nget(&self.bindings, namespace, name)
    }

    /// The VM or scale set carrying a known node's identities: the target parsed from its provider ID,
    /// else `Vm { cfg.fallback_subscription, cfg.fallback_resource_group, node name }` when both fallbacks
    /// are set, else `None` (also `None` for a node the index does not know).
    #[must_use]
    pub fn node_target(&self, node: &str, cfg: &Config) -> Option<Target> {
        let info = self.nodes.get(node)?;
        target_of_node(info, cfg)
    }
}

/// The target of a node (see [`Cluster::node_target`]).
pub(crate) fn target_of_node(node: &NodeInfo, cfg: &Config) -> Option<Target> {
    match &node.target {
        Some(t) => Some(t.clone()),
        None => fallback_target(&node.name, cfg),
    }
}

/// The fallback target of a node without an Azure provider ID.
pub(crate) fn fallback_target(node: &str, cfg: &Config) -> Option<Target> {
    (!cfg.fallback_subscription.is_empty() && !cfg.fallback_resource_group.is_empty()).then(|| {
        Target {
            kind: super::model::TargetKind::Vm,
            subscription: cfg.fallback_subscription.clone(),
            resource_group: cfg.fallback_resource_group.clone(),
            name: node.to_owned(),
        }
    })
}

fn keys_not_in(existing: Vec<NsName>, keep: &HashSet<NsName>) -> Vec<NsName> {
    existing.into_iter().filter(|k| !keep.contains(k)).collect()
}

/// Keys of a [`Nested`] map, for relists.
trait CloneKeys {
    fn clone_keys(&self) -> Vec<NsName>;
}

impl<T> CloneKeys for Nested<T> {
    fn clone_keys(&self) -> Vec<NsName> {
        self.iter()
            .flat_map(|(ns, inner)| inner.keys().map(move |name| ns_name(ns, name)))
            .collect()
    }
}
