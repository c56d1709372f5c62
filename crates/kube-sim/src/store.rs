//! Generic in-memory storage with Kubernetes resourceVersion semantics.
//!
//! Model:
//! - One table per storage key (group + plural), objects ordered by (namespace, name) so that lists and
//!   continuation are stable. Objects are immutable `Arc<Value>`s: a write replaces the Arc, readers never block
//!   writers for longer than a map lookup.
//! - One cluster-wide counter gives every write a new `resourceVersion` (like etcd's revision).
//! - Every write is appended to a bounded change log. A watch that starts from a resourceVersion replays the log
//!   after it; a version older than the log's start is "compacted" and the watch gets 410 Gone, which is what makes
//!   clients relist. Live changes are fanned out through one broadcast channel per storage key; a subscriber that
//!   falls behind the channel's capacity is closed with 410 as well, never silently skips events.
//! - Pods are indexed by `spec.nodeName`, and every object by uid and by owner uid, so field-selected lists and
//!   garbage collection do not scan.
//!
//! Invariants: the log is ordered by resourceVersion; a subscriber registered under the lock sees exactly the
//! changes after the snapshot it was given; deletes of objects with finalizers only mark them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::resources::ResKey;

/// Changes fanned out to live watchers per storage key before a slow watcher is expired.
const BROADCAST_CAPACITY: usize = 16_384;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// `ADDED`
    Added,
    /// `MODIFIED`
    Modified,
    /// `DELETED`
    Deleted,
}

impl ChangeType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One write, as watchers see it.
#[derive(Debug)]
pub struct Change {
    /// resourceVersion of the write.
    pub rv: u64,
    /// Storage key.
    pub key: ResKey,
    /// Event type.
    pub kind: ChangeType,
    /// The object after the write (before it, for deletes, with the delete's resourceVersion).
    pub object: Arc<Value>,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// The object before the write, when there was one.
    pub previous: Option<Arc<Value>>,
}

/// Reference to a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    /// Storage key.
    pub key: ResKey,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

#[derive(Default)]
struct Table {
    objects: BTreeMap<(String, String), Arc<Value>>,
    by_node: HashMap<String, BTreeSet<(String, String)>>,
}

struct Inner {
    rv: u64,
    tables: HashMap<ResKey, Table>,
    log: VecDeque<Arc<Change>>,
    /// Watches may start from any resourceVersion >= this.
    oldest_watchable: u64,
    by_uid: HashMap<String, ObjRef>,
    dependents: HashMap<String, HashSet<ObjRef>>,
    senders: HashMap<ResKey, broadcast::Sender<Arc<Change>>>,
    dirty: bool,
}

/// One storage key's objects in a snapshot.
pub type Snapshot = (ResKey, Vec<Arc<Value>>);

/// Outcome of a delete.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// The object is gone (the value is its last state).
    Deleted(Arc<Value>),
    /// Finalizers hold it; deletionTimestamp is now set (the value is the updated object).
    Finalizing(Arc<Value>),
}

/// A snapshot-plus-subscription for a watch.
pub struct WatchStart {
    /// Changes to replay (after the requested version), or synthetic ADDED objects when starting from "now".
    pub backlog: Vec<Arc<Change>>,
    /// Live changes after the backlog.
    pub receiver: broadcast::Receiver<Arc<Change>>,
    /// Current resourceVersion at subscription time.
    pub rv: u64,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: RwLock<Inner>,
    log_capacity: usize,
}

use crate::meta::meta_str;

fn node_name(obj: &Value) -> Option<&str> {
    obj.get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn has_finalizers(obj: &Value) -> bool {
    let non_empty = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    // Namespaces also wait for their spec.finalizers (the namespace controller's `kubernetes`).
    let namespace = obj.get("kind").and_then(Value::as_str) == Some("Namespace")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1");
    non_empty("/metadata/finalizers") || (namespace && non_empty("/spec/finalizers"))
}

fn is_pods(key: &ResKey) -> bool {
    key.group.is_empty() && key.resource == "pods"
}

impl Inner {
    fn table(&mut self, key: &ResKey) -> &mut Table {
        self.tables.entry(key.clone()).or_default()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn index_insert(&mut self, r: &ObjRef, obj: &Value) {
        let uid = meta_str(obj, "uid");
        if !uid.is_empty() {
            self.by_uid.insert(uid.to_string(), r.clone());
        }
        for owner in owner_uids(obj) {
            self.dependents.entry(owner).or_default().insert(r.clone());
        }
        if is_pods(&r.key)
            && let Some(node) = node_name(obj)
        {
            let node = node.to_string();
            let id = (r.namespace.clone(), r.name.clone());
            self.table(&r.key)
                .by_node
                .entry(node)
                .or_default()
                .insert(id);
        }
    }

    fn index_remove(&mut self, r: &ObjRef, obj: &Value) {
        let uid = meta_str(obj, "uid");
        if !uid.is_empty() {
            self.by_uid.remove(uid);
        }
        for owner in owner_uids(obj) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(r);
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
        if is_pods(&r.key)
            && let Some(node) = node_name(obj)
        {
            let id = (r.namespace.clone(), r.name.clone());
            let table = self.table(&r.key);
            if let Some(set) = table.by_node.get_mut(node) {
                set.remove(&id);
                if set.is_empty() {
                    table.by_node.remove(node);
                }
            }
        }
    }

    fn emit(&mut self, change: Change, log_capacity: usize) {
        let change = Arc::new(change);
        self.dirty = true;
        if let Some(tx) = self.senders.get(&change.key) {
            // No receivers is fine; a full channel makes lagging receivers see `Lagged` (-> 410).
            let _ = tx.send(change.clone());
        }
        self.log.push_back(change);
        while self.log.len() > log_capacity {
            if let Some(old) = self.log.pop_front() {
                self.oldest_watchable = old.rv;
            }
        }
    }
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Store {
    /// An empty store whose change log keeps `log_capacity` writes.
    pub fn new(log_capacity: usize) -> Self {
        Store {
            inner: RwLock::new(Inner {
                rv: 1,
                tables: HashMap::new(),
                log: VecDeque::new(),
                oldest_watchable: 1,
                by_uid: HashMap::new(),
                dependents: HashMap::new(),
                senders: HashMap::new(),
                dirty: false,
            }),
            log_capacity: log_capacity.max(1),
        }
    }

    /// The current resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.inner.read().rv
    }

    /// Get one object.
    pub fn get(&self, key: &ResKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        let inner = self.inner.read();
        inner
            .tables
            .get(key)?
            .objects
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Find an object by uid.
    pub fn get_by_uid(&self, uid: &str) -> Option<(ObjRef, Arc<Value>)> {
        let inner = self.inner.read();
        let r = inner.by_uid.get(uid)?.clone();
        let obj = inner
            .tables
            .get(&r.key)?
            .objects
            .get(&(r.namespace.clone(), r.name.clone()))?
            .clone();
        Some((r, obj))
    }

    /// Objects that name `owner_uid` in their ownerReferences.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<ObjRef> {
        let inner = self.inner.read();
        inner
            .dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// List objects of a key, in (namespace, name) order, starting strictly after `after` when given.
    ///
    /// `ns` restricts to one namespace; `node` uses the pod node index. `filter` is applied before `limit`.
    /// Returns the objects, whether more remain, and the resourceVersion of the read.
    pub fn list(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        node: Option<&str>,
        after: Option<&(String, String)>,
        limit: Option<usize>,
        filter: &dyn Fn(&Value) -> bool,
    ) -> (Vec<Arc<Value>>, bool, u64) {
        let inner = self.inner.read();
        let rv = inner.rv;
        let Some(table) = inner.tables.get(key) else {
            return (Vec::new(), false, rv);
        };
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut more = false;
        let mut push = |obj: &Arc<Value>, out: &mut Vec<Arc<Value>>| -> bool {
            if !filter(obj) {
                return true;
            }
            if out.len() >= limit {
                more = true;
                return false;
            }
            out.push(obj.clone());
            true
        };
        if let Some(node) = node.filter(|_| is_pods(key)) {
            if let Some(ids) = table.by_node.get(node) {
                for id in ids {
                    if ns.is_some_and(|n| n != id.0) || after.is_some_and(|a| id <= a) {
                        continue;
                    }
                    if let Some(obj) = table.objects.get(id)
                        && !push(obj, &mut out)
                    {
                        break;
                    }
                }
            }
        } else {
            use std::ops::Bound;
            let start = match (after, ns) {
                (Some(a), _) => Bound::Excluded(a.clone()),
                (None, Some(n)) => Bound::Included((n.to_string(), String::new())),
                (None, None) => Bound::Unbounded,
            };
            for (id, obj) in table.objects.range((start, Bound::Unbounded)) {
                if let Some(n) = ns {
                    if id.0.as_str() > n {
                        break;
                    }
                    if id.0 != n {
                        continue;
                    }
                }
                if !push(obj, &mut out) {
                    break;
                }
            }
        }
        (out, more, rv)
    }

    /// Count the objects a list would return after `after` (the rest of a paginated list without selectors).
    pub fn count_after(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        node: Option<&str>,
        after: &(String, String),
    ) -> usize {
        self.list(key, ns, node, Some(after), None, &|_| true)
            .0
            .len()
    }

    /// Count objects of a key.
    pub fn count(&self, key: &ResKey) -> usize {
        self.inner
            .read()
            .tables
            .get(key)
            .map_or(0, |t| t.objects.len())
    }

    /// Create an object. The caller has filled name, namespace, uid and timestamps.
    pub fn create(
        &self,
        key: &ResKey,
        mut obj: Value,
        resource_label: (&str, &str),
    ) -> ApiResult<Arc<Value>> {
        let ns = meta_str(&obj, "namespace").to_string();
        let name = meta_str(&obj, "name").to_string();
        let mut inner = self.inner.write();
        let id = (ns.clone(), name.clone());
        if inner.table(key).objects.contains_key(&id) {
            return Err(ApiError::already_exists(
                resource_label.0,
                resource_label.1,
                &name,
            ));
        }
        let rv = inner.next_rv();
        crate::meta::drop_empty_metadata(&mut obj);
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        inner.table(key).objects.insert(id, obj.clone());
        let r = ObjRef {
            key: key.clone(),
            namespace: ns.clone(),
            name,
        };
        inner.index_insert(&r, &obj);
        let change = Change {
            rv,
            key: key.clone(),
            kind: ChangeType::Added,
            object: obj.clone(),
            namespace: ns,
            previous: None,
        };
        inner.emit(change, self.log_capacity);
        Ok(obj)
    }

    /// Atomically replace an object with what `f` computes from its current state.
    ///
    /// `f` returns `Ok(None)` for "no change" (no new resourceVersion, no event). When the result has a
    /// deletionTimestamp and no finalizers left, the object is removed (DELETED event). Returns the new state
    /// and whether the object was removed.
    pub fn update(
        &self,
        key: &ResKey,
        ns: &str,
        name: &str,
        f: &mut dyn FnMut(&Arc<Value>) -> ApiResult<Option<Value>>,
        not_found: impl FnOnce() -> ApiError,
    ) -> ApiResult<(Arc<Value>, bool)> {
        let mut inner = self.inner.write();
        let id = (ns.to_string(), name.to_string());
        let Some(current) = inner
            .tables
            .get(key)
            .and_then(|t| t.objects.get(&id))
            .cloned()
        else {
            return Err(not_found());
        };
        let Some(mut next) = f(&current)? else {
            return Ok((current, false));
        };
        let rv = inner.next_rv();
        crate::meta::drop_empty_metadata(&mut next);
        set_rv(&mut next, rv);
        let r = ObjRef {
            key: key.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        inner.index_remove(&r, &current);
        let finished = next
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
            && !has_finalizers(&next);
        let next = Arc::new(next);
        let kind = if finished {
            inner.table(key).objects.remove(&id);
            ChangeType::Deleted
        } else {
            inner.table(key).objects.insert(id, next.clone());
            inner.index_insert(&r, &next);
            ChangeType::Modified
        };
        let change = Change {
            rv,
            key: key.clone(),
            kind,
            object: next.clone(),
            namespace: ns.to_string(),
            previous: Some(current),
        };
        inner.emit(change, self.log_capacity);
        Ok((next, finished))
    }

    /// Delete an object, or mark it for deletion when finalizers hold it.
    ///
    /// `precondition` sees the current object and may refuse (uid / resourceVersion preconditions).
    /// `mark` turns the object into its "being deleted" form (deletionTimestamp set).
    pub fn delete(
        &self,
        key: &ResKey,
        ns: &str,
        name: &str,
        precondition: &dyn Fn(&Value) -> ApiResult<()>,
        mark: &dyn Fn(&Value) -> Value,
        not_found: impl FnOnce() -> ApiError,
    ) -> ApiResult<DeleteOutcome> {
        let mut inner = self.inner.write();
        let id = (ns.to_string(), name.to_string());
        let Some(current) = inner
            .tables
            .get(key)
            .and_then(|t| t.objects.get(&id))
            .cloned()
        else {
            return Err(not_found());
        };
        precondition(&current)?;
        let r = ObjRef {
            key: key.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let rv = inner.next_rv();
        if has_finalizers(&current) {
            if current
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null())
            {
                // Already terminating: nothing changes, no new version is spent on it.
                inner.rv -= 1;
                return Ok(DeleteOutcome::Finalizing(current));
            }
            let mut next = mark(&current);
            set_rv(&mut next, rv);
            let next = Arc::new(next);
            inner.table(key).objects.insert(id, next.clone());
            let change = Change {
                rv,
                key: key.clone(),
                kind: ChangeType::Modified,
                object: next.clone(),
                namespace: ns.to_string(),
                previous: Some(current),
            };
            inner.emit(change, self.log_capacity);
            return Ok(DeleteOutcome::Finalizing(next));
        }
        inner.table(key).objects.remove(&id);
        inner.index_remove(&r, &current);
        let mut last = (*current).clone();
        set_rv(&mut last, rv);
        let last = Arc::new(last);
        let change = Change {
            rv,
            key: key.clone(),
            kind: ChangeType::Deleted,
            object: last.clone(),
            namespace: ns.to_string(),
            previous: Some(current),
        };
        inner.emit(change, self.log_capacity);
        Ok(DeleteOutcome::Deleted(last))
    }

    /// Start a watch on `key`.
    ///
    /// `from = None` starts "now" with synthetic ADDED events for the current objects (optionally one namespace);
    /// `from = Some(rv)` replays logged changes after `rv`, or fails with 410 Gone when `rv` is compacted.
    pub fn watch(
        &self,
        key: &ResKey,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> ApiResult<WatchStart> {
        let mut inner = self.inner.write();
        let rv = inner.rv;
        let receiver = inner
            .senders
            .entry(key.clone())
            .or_insert_with(|| broadcast::channel(BROADCAST_CAPACITY).0)
            .subscribe();
        let backlog = match from {
            None => {
                let mut out = Vec::new();
                if let Some(table) = inner.tables.get(key) {
                    for ((obj_ns, _), obj) in &table.objects {
                        if ns.is_some_and(|n| n != obj_ns) {
                            continue;
                        }
                        let obj_rv = meta_str(obj, "resourceVersion").parse().unwrap_or(rv);
                        out.push(Arc::new(Change {
                            rv: obj_rv,
                            key: key.clone(),
                            kind: ChangeType::Added,
                            object: obj.clone(),
                            namespace: obj_ns.clone(),
                            previous: None,
                        }));
                    }
                }
                out
            }
            Some(from) => {
                if from < inner.oldest_watchable || from > rv {
                    if from > rv {
                        return Err(ApiError::gone(format!(
                            "Timeout: Too large resource version: {from}, current resource version: {rv}"
                        )));
                    }
                    return Err(ApiError::gone(format!(
                        "too old resource version: {from} ({})",
                        inner.oldest_watchable
                    )));
                }
                let start = inner.log.partition_point(|c| c.rv <= from);
                inner
                    .log
                    .range(start..)
                    .filter(|c| c.key == *key && ns.is_none_or(|n| n == c.namespace))
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchStart {
            backlog,
            receiver,
            rv,
        })
    }

    /// Forget the change log: every resourceVersion before now becomes "too old", and live watches are
    /// expired (their next read gets 410). Used by tests to force clients through a relist.
    pub fn compact(&self) {
        let mut inner = self.inner.write();
        inner.log.clear();
        inner.oldest_watchable = inner.rv;
        // Dropping the senders ends every live subscription; the watch handler turns that into 410 Gone.
        inner.senders.clear();
    }

    /// Lowest resourceVersion a watch can still start from.
    pub fn oldest_watchable(&self) -> u64 {
        self.inner.read().oldest_watchable
    }

    /// Whether the store changed since the last `take_dirty`.
    pub fn take_dirty(&self) -> bool {
        let mut inner = self.inner.write();
        std::mem::replace(&mut inner.dirty, false)
    }

    /// Snapshot of every object, for persistence: (current resourceVersion, objects by key).
    pub fn snapshot(&self) -> (u64, Vec<Snapshot>) {
        let inner = self.inner.read();
        let mut out: Vec<_> = inner
            .tables
            .iter()
            .map(|(k, t)| (k.clone(), t.objects.values().cloned().collect()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        (inner.rv, out)
    }

    /// Load a snapshot into an empty store (objects keep their resourceVersions).
    pub fn restore(&self, rv: u64, tables: Vec<(ResKey, Vec<Value>)>) {
        let mut inner = self.inner.write();
        for (key, objects) in tables {
            for obj in objects {
                let ns = meta_str(&obj, "namespace").to_string();
                let name = meta_str(&obj, "name").to_string();
                let obj = Arc::new(obj);
                let r = ObjRef {
                    key: key.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                };
                inner.table(&key).objects.insert((ns, name), obj.clone());
                inner.index_insert(&r, &obj);
            }
        }
        inner.rv = inner.rv.max(rv);
        inner.oldest_watchable = inner.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, node: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")},
               "spec": {"nodeName": node}})
    }
    fn pods() -> ResKey {
        ResKey::new("", "pods")
    }
    fn nf() -> ApiError {
        ApiError::not_found("pods", "", "x")
    }

    #[test]
    fn rv_is_monotonic_and_conflicts_detected() {
        let s = Store::new(100);
        let a = s
            .create(&pods(), pod("a", "p1", "n1"), ("pods", ""))
            .expect("create");
        let b = s
            .create(&pods(), pod("a", "p2", "n1"), ("pods", ""))
            .expect("create");
        let rv = |v: &Value| meta_str(v, "resourceVersion").parse::<u64>().expect("rv");
        assert!(rv(&b) > rv(&a));
        let err = s
            .create(&pods(), pod("a", "p1", "n1"), ("pods", ""))
            .expect_err("dup");
        assert_eq!(err.code, 409);
    }

    #[test]
    fn node_index_and_namespace_lists() {
        let s = Store::new(100);
        for i in 0..10 {
            s.create(
                &pods(),
                pod(
                    if i % 2 == 0 { "a" } else { "b" },
                    &format!("p{i}"),
                    &format!("n{}", i % 3),
                ),
                ("pods", ""),
            )
            .expect("create");
        }
        let (on_n0, _, _) = s.list(&pods(), None, Some("n0"), None, None, &|_| true);
        assert_eq!(on_n0.len(), 4);
        let (in_a, _, _) = s.list(&pods(), Some("a"), None, None, None, &|_| true);
        assert_eq!(in_a.len(), 5);
        let (page, more, _) = s.list(&pods(), None, None, None, Some(3), &|_| true);
        assert!(more && page.len() == 3);
        let last = (
            meta_str(&page[2], "namespace").to_string(),
            meta_str(&page[2], "name").to_string(),
        );
        let (rest, more, _) = s.list(&pods(), None, None, Some(&last), None, &|_| true);
        assert!(!more && rest.len() == 7);
        // moving a pod to another node updates the index
        s.update(
            &pods(),
            "a",
            "p0",
            &mut |cur| {
                let mut v = (**cur).clone();
                v["spec"]["nodeName"] = json!("n9");
                Ok(Some(v))
            },
            nf,
        )
        .expect("update");
        assert_eq!(
            s.list(&pods(), None, Some("n9"), None, None, &|_| true)
                .0
                .len(),
            1
        );
        assert_eq!(
            s.list(&pods(), None, Some("n0"), None, None, &|_| true)
                .0
                .len(),
            3
        );
    }

    #[test]
    fn finalizers_hold_deletes() {
        let s = Store::new(100);
        let mut p = pod("a", "p", "n");
        p["metadata"]["finalizers"] = json!(["x/y"]);
        s.create(&pods(), p, ("pods", "")).expect("create");
        let mark = |v: &Value| {
            let mut v = v.clone();
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            v
        };
        let out = s
            .delete(&pods(), "a", "p", &|_| Ok(()), &mark, nf)
            .expect("delete");
        assert!(matches!(out, DeleteOutcome::Finalizing(_)));
        assert!(s.get(&pods(), "a", "p").is_some());
        let (_, removed) = s
            .update(
                &pods(),
                "a",
                "p",
                &mut |cur| {
                    let mut v = (**cur).clone();
                    v["metadata"]["finalizers"] = json!([]);
                    Ok(Some(v))
                },
                nf,
            )
            .expect("update");
        assert!(removed);
        assert!(s.get(&pods(), "a", "p").is_none());
    }

    #[test]
    fn watch_replays_and_expires() {
        let s = Store::new(3);
        let start = s.current_rv();
        for i in 0..2 {
            s.create(&pods(), pod("a", &format!("p{i}"), "n"), ("pods", ""))
                .expect("create");
        }
        let w = s.watch(&pods(), None, Some(start)).expect("watch");
        assert_eq!(w.backlog.len(), 2);
        for i in 2..6 {
            s.create(&pods(), pod("a", &format!("p{i}"), "n"), ("pods", ""))
                .expect("create");
        }
        let err = s.watch(&pods(), None, Some(start)).err().expect("gone");
        assert_eq!(err.code, 410);
        let now = s.watch(&pods(), Some("a"), None).expect("watch");
        assert_eq!(now.backlog.len(), 6);
        s.compact();
        assert_eq!(
            s.watch(&pods(), None, Some(start + 3))
                .err()
                .map(|e| e.code),
            Some(410)
        );
    }
}
