//! A simplified server-side apply (`application/apply-patch+yaml`) with field ownership
//! tracked in `metadata.managedFields` using the real `FieldsV1` encoding.
//!
//! Model:
//!
//! 1. The *applied set* is every leaf of the applied configuration (scalars, atomic lists,
//!    empty maps) plus every element of keyed lists (`k:{...}`, with its fields) and set lists
//!    (`v:...`), as structured-merge-diff computes it with the list kinds from [`MergeKeys`].
//!    `apiVersion`, `kind` and the server-owned `metadata` fields (`name`, `namespace`, `uid`,
//!    `resourceVersion`, `generation`, `creationTimestamp`, `selfLink`, `managedFields`) are not
//!    owned, as upstream strips them.
//! 2. Conflicts: a leaf of the applied set (ending in a field or index) that another manager
//!    (Apply or Update entry) owns and whose live value differs from the applied value (an
//!    empty map applied over an existing map changes nothing, so it conflicts with no one). Without
//!    `force` the apply fails with [`ApplyError::Conflict`]; with `force` the fields are taken
//!    over (removed from the other managers' sets). Equal values are shared, not conflicts.
//! 3. Fields this manager applied before (its previous `Apply` entry) that are not in the new
//!    applied set are removed from the object, unless another manager owns them or something
//!    below them. Key fields of a kept keyed-list element are never removed; containers that
//!    become empty through removal are pruned (below the top level) unless someone owns them.
//! 4. The applied configuration is merged into the live object: maps recursively, keyed lists
//!    by key (existing elements merged in place, new ones appended in applied order), set lists
//!    unioned, other lists and scalars replaced. `null`s in the applied configuration are
//!    ignored (neither set nor owned).
//! 5. This manager's entry becomes `{manager, operation: "Apply", apiVersion, time,
//!    fieldsType: "FieldsV1", fieldsV1}` (kept at its position, else appended); entries whose
//!    sets became empty are dropped.
//!
//! Simplifications compared to the real API server: list kinds come from [`MergeKeys`] (one
//! key per keyed list, not the OpenAPI `x-kubernetes-list-map-keys`); maps are always
//! granular (structs marked atomic upstream, such as `spec.selector`, are owned field by
//! field); there is no defaulting,
//! no type validation and no conversion between API versions (ownership is compared as is);
//! `Update` operations are not recorded here (the caller may add entries, which are honoured as
//! owners); resetting `status` (main resource) or `spec` (status subresource) is the caller's
//! job; element order of merged keyed lists is live order with new elements appended.

use serde_json::{Map, Value};

use super::fieldpath::{FieldPath, FieldSet, PathElement, path_string};
use super::keys::{ListStrategy, MergeKeys};
use crate::gofmt::go_quote;

/// One conflicting field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation (`Apply` or `Update`).
    pub operation: String,
    /// Its API version (shown for `Update` managers).
    pub api_version: String,
    /// Its timestamp (shown for `Update` managers).
    pub time: Option<String>,
    /// Its subresource, if any.
    pub subresource: Option<String>,
    /// The field in structured-merge-diff notation, e.g. `.spec.replicas` or
    /// `.spec.containers[name="app"].image`.
    pub field: String,
}

impl ApplyConflict {
    /// `printManager` of the apiserver: `"name"`, `"name" using v1`, with subresource.
    pub fn manager_description(&self) -> String {
        let mut s = go_quote(&self.manager);
        if let Some(sub) = self.subresource.as_deref().filter(|s| !s.is_empty()) {
            s = format!("{s} with subresource {}", go_quote(sub));
        }
        if self.operation == "Update" {
            match &self.time {
                None => format!("{s} using {}", self.api_version),
                Some(t) => format!("{s} using {} at {t}", self.api_version),
            }
        } else {
            s
        }
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the applied configuration changes (409 Conflict, reason
    /// `Conflict`; each conflict is a `FieldManagerConflict` cause with message
    /// `conflict with "<manager>"` and the field).
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<ApplyConflict>),
    /// The request is malformed (400), e.g. `metadata.managedFields must be nil`.
    #[error("{0}")]
    BadRequest(String),
}

/// `getConflictMessage` of the apiserver.
fn conflict_message(conflicts: &[ApplyConflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_description(),
            c.field
        );
    }
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    let mut sorted: Vec<&ApplyConflict> = conflicts.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.manager, &a.operation, &a.field).cmp(&(&b.manager, &b.operation, &b.field))
    });
    for c in sorted {
        let desc = c.manager_description();
        match groups.last_mut() {
            Some((d, fields)) if *d == desc => fields.push(&c.field),
            _ => groups.push((desc, vec![&c.field])),
        }
    }
    let mut lines = Vec::new();
    for (desc, fields) in groups {
        lines.push(format!("conflicts with {desc}:"));
        for f in fields {
            lines.push(format!("- {f}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Paths never owned (`stripmeta` of the apiserver's field manager).
const IGNORED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

fn is_ignored(path: &[PathElement]) -> bool {
    IGNORED.iter().any(|ignored| {
        path.len() >= ignored.len()
            && ignored
                .iter()
                .zip(path)
                .all(|(name, pe)| matches!(pe, PathElement::Field(f) if f == name))
    })
}

struct ManagedEntry {
    raw: Map<String, Value>,
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
    modified: bool,
}

fn parse_entries(live: &Value) -> Vec<ManagedEntry> {
    let Some(Value::Array(entries)) = live.pointer("/metadata/managedFields") else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let Value::Object(raw) = e else {
                return None;
            };
            let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
            Some(ManagedEntry {
                manager: s("manager").unwrap_or_default(),
                operation: s("operation").unwrap_or_default(),
                api_version: s("apiVersion").unwrap_or_default(),
                time: s("time"),
                subresource: s("subresource"),
                set: raw
                    .get("fieldsV1")
                    .map(FieldSet::from_fields_v1)
                    .unwrap_or_default(),
                raw: raw.clone(),
                modified: false,
            })
        })
        .collect()
}

fn list_path(json_path: &str) -> String {
    format!("{json_path}[]")
}

fn child_json_path(json_path: &str, key: &str) -> String {
    if json_path.is_empty() {
        key.to_string()
    } else {
        format!("{json_path}.{key}")
    }
}

/// The key fields identifying a keyed-list element, if it has them.
fn element_key(elem: &Value, key: &str) -> Option<PathElement> {
    let v = elem.as_object()?.get(key)?;
    if v.is_null() {
        return None;
    }
    let mut m = Map::new();
    m.insert(key.to_string(), v.clone());
    Some(PathElement::key(&m))
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// The set of fields an applied configuration specifies.
fn applied_field_set(applied: &Value, keys: &dyn MergeKeys) -> FieldSet {
    fn walk(
        v: &Value,
        path: &mut FieldPath,
        json_path: &str,
        keys: &dyn MergeKeys,
        out: &mut FieldSet,
    ) {
        match v {
            Value::Object(m) => {
                let non_null: Vec<(&String, &Value)> =
                    m.iter().filter(|(_, v)| !v.is_null()).collect();
                if non_null.is_empty() {
                    if !path.is_empty() {
                        out.insert(path.clone());
                    }
                    return;
                }
                for (k, child) in non_null {
                    path.push(PathElement::Field(k.clone()));
                    walk(child, path, &child_json_path(json_path, k), keys, out);
                    path.pop();
                }
            }
            Value::Array(items) => match keys.list_strategy(json_path) {
                ListStrategy::Merge(key)
                    if items.iter().all(|e| element_key(e, &key).is_some()) =>
                {
                    for item in items {
                        if let Some(pe) = element_key(item, &key) {
                            path.push(pe);
                            out.insert(path.clone());
                            if let Value::Object(_) = item {
                                walk_element_fields(item, path, &list_path(json_path), keys, out);
                            }
                            path.pop();
                        }
                    }
                }
                ListStrategy::MergePrimitive if items.iter().all(is_scalar) => {
                    for item in items {
                        path.push(PathElement::value(item));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                _ => out.insert(path.clone()),
            },
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    fn walk_element_fields(
        item: &Value,
        path: &mut FieldPath,
        json_path: &str,
        keys: &dyn MergeKeys,
        out: &mut FieldSet,
    ) {
        if let Value::Object(m) = item {
            for (k, child) in m.iter().filter(|(_, v)| !v.is_null()) {
                path.push(PathElement::Field(k.clone()));
                walk(child, path, &child_json_path(json_path, k), keys, out);
                path.pop();
            }
        }
    }
    let mut out = FieldSet::new();
    walk(applied, &mut Vec::new(), "", keys, &mut out);
    let ignored: Vec<FieldPath> = out.iter().filter(|p| is_ignored(p)).cloned().collect();
    for p in ignored {
        out.remove(&p);
    }
    out
}

fn find_in_list(items: &[Value], pe: &PathElement) -> Option<usize> {
    match pe {
        PathElement::Key(_) => {
            let fields = pe.key_fields()?;
            items
                .iter()
                .position(|item| fields.iter().all(|(k, v)| item.get(k.as_str()) == Some(v)))
        }
        PathElement::Value(_) => {
            let v = pe.set_value()?;
            items.iter().position(|item| *item == v)
        }
        PathElement::Index(i) => (*i < items.len()).then_some(*i),
        PathElement::Field(_) => None,
    }
}

fn get_at<'a>(v: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, pe| match (cur, pe) {
        (Value::Object(m), PathElement::Field(f)) => m.get(f),
        (Value::Array(items), pe) => find_in_list(items, pe).and_then(|i| items.get(i)),
        _ => None,
    })
}

fn get_at_mut<'a>(v: &'a mut Value, path: &[PathElement]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, pe| match (cur, pe) {
        (Value::Object(m), PathElement::Field(f)) => m.get_mut(f),
        (Value::Array(items), pe) => {
            let i = find_in_list(items, pe)?;
            items.get_mut(i)
        }
        _ => None,
    })
}

fn remove_at(v: &mut Value, path: &[PathElement]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    match (get_at_mut(v, parent), last) {
        (Some(Value::Object(m)), PathElement::Field(f)) => m.remove(f).is_some(),
        (Some(Value::Array(items)), pe) => match find_in_list(items, pe) {
            Some(i) => {
                items.remove(i);
                true
            }
            None => false,
        },
        _ => false,
    }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Merges the applied configuration into the live object (step 4 of the module docs).
fn merge_applied(live: &mut Value, applied: &Value, json_path: &str, keys: &dyn MergeKeys) {
    match (&mut *live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                if av.is_null() {
                    continue;
                }
                let child = child_json_path(json_path, k);
                match l.get_mut(k) {
                    Some(lv) => merge_applied(lv, av, &child, keys),
                    None => {
                        l.insert(k.clone(), strip_nulls(av));
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => match keys.list_strategy(json_path) {
            ListStrategy::Merge(key)
                if a.iter().all(|e| element_key(e, &key).is_some())
                    && l.iter().all(|e| element_key(e, &key).is_some()) =>
            {
                let elem_path = list_path(json_path);
                for ae in a {
                    let Some(pe) = element_key(ae, &key) else {
                        continue;
                    };
                    match find_in_list(l, &pe).and_then(|i| l.get_mut(i)) {
                        Some(le) => merge_applied(le, ae, &elem_path, keys),
                        None => l.push(strip_nulls(ae)),
                    }
                }
            }
            ListStrategy::MergePrimitive if a.iter().all(is_scalar) && l.iter().all(is_scalar) => {
                for ae in a {
                    if !l.contains(ae) {
                        l.push(ae.clone());
                    }
                }
            }
            _ => *live = strip_nulls(applied),
        },
        _ => *live = strip_nulls(applied),
    }
}

/// Applies `applied` as field manager `manager` (server-side apply, simplified as described
/// in the module documentation) and returns the new object with updated
/// `metadata.managedFields`.
///
/// `live` is the current object (`None` creates it from `applied`); `now` is the RFC 3339
/// timestamp recorded as the entry's `time`; `keys` gives the list kinds
/// ([`CoreMergeKeys`](super::CoreMergeKeys) for built-in kinds,
/// [`ReplaceAllLists`](super::ReplaceAllLists) for schemaless custom resources).
///
/// Errors: [`ApplyError::Conflict`] (409) with text such as
/// `Apply failed with 1 conflict: conflict with "other": .spec.replicas`;
/// [`ApplyError::BadRequest`] when the configuration is not an object, carries
/// `metadata.managedFields`, or `manager` is empty.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
    keys: &dyn MergeKeys,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::BadRequest(
            "the applied configuration must be a JSON object".to_string(),
        ));
    }
    if manager.is_empty() {
        return Err(ApplyError::BadRequest(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".to_string(),
        ));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".to_string(),
        ));
    }
    let mut result = match live {
        None => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ApplyError::BadRequest(
                "the live object must be a JSON object".to_string(),
            ));
        }
    };
    let api_version = applied
        .get("apiVersion")
        .or_else(|| result.get("apiVersion"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let mut entries = parse_entries(&result);
    let mine = entries.iter().position(|e| {
        e.manager == manager
            && e.operation == "Apply"
            && e.subresource.as_deref().unwrap_or("").is_empty()
    });
    let new_set = applied_field_set(applied, keys);
    let previous = mine
        .and_then(|i| entries.get(i))
        .map(|e| e.set.clone())
        .unwrap_or_default();

    // Conflicts.
    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, FieldPath)> = Vec::new();
    for leaf in new_set.leaves() {
        if !matches!(
            leaf.last(),
            Some(PathElement::Field(_) | PathElement::Index(_))
        ) {
            continue;
        }
        let live_value = get_at(&result, leaf);
        let applied_value = get_at(applied, leaf);
        if live_value == applied_value.map(strip_nulls).as_ref() {
            continue;
        }
        // A map leaf (an empty or all-null map in the configuration) only changes the object when the map is
        // absent: merging it never removes the children other managers own, so it is no conflict with them
        // (structured-merge-diff reports conflicts on changed fields only).
        if applied_value.is_some_and(Value::is_object) && live_value.is_some_and(Value::is_object) {
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            if Some(i) == mine || !e.set.contains_or_has_descendant(leaf) {
                continue;
            }
            conflicts.push(ApplyConflict {
                manager: e.manager.clone(),
                operation: e.operation.clone(),
                api_version: e.api_version.clone(),
                time: e.time.clone(),
                subresource: e.subresource.clone(),
                field: path_string(leaf),
            });
            taken.push((i, leaf.clone()));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflict(conflicts));
    }
    for (i, path) in taken {
        if let Some(e) = entries.get_mut(i) {
            e.set.remove_with_descendants(&path);
            e.modified = true;
        }
    }

    // Removal of fields this manager no longer applies.
    let others: Vec<&FieldSet> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != mine)
        .map(|(_, e)| &e.set)
        .collect();
    let owned_by_others =
        |p: &[PathElement]| others.iter().any(|s| s.contains_or_has_descendant(p));
    let mut to_remove: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !new_set.contains_or_has_descendant(p) && !owned_by_others(p))
        .collect();
    to_remove.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in to_remove {
        if let [.., parent @ PathElement::Key(_), PathElement::Field(name)] = path.as_slice()
            && parent.key_fields().is_some_and(|k| k.contains_key(name))
        {
            continue;
        }
        if !remove_at(&mut result, path) {
            continue;
        }
        // Prune containers emptied by the removal (never top-level fields).
        let mut depth = path.len() - 1;
        while depth >= 2 {
            let ancestor = &path[..depth];
            let owned = new_set.contains(ancestor) || others.iter().any(|s| s.contains(ancestor));
            if owned || !is_empty_container(get_at(&result, ancestor)) {
                break;
            }
            remove_at(&mut result, ancestor);
            depth -= 1;
        }
    }

    merge_applied(&mut result, applied, "", keys);

    // Managed fields.
    let mut entry = Map::new();
    entry.insert("manager".into(), Value::String(manager.to_string()));
    entry.insert("operation".into(), Value::String("Apply".into()));
    entry.insert("apiVersion".into(), Value::String(api_version.clone()));
    entry.insert("time".into(), Value::String(now.to_string()));
    entry.insert("fieldsType".into(), Value::String("FieldsV1".into()));
    entry.insert("fieldsV1".into(), new_set.to_fields_v1());
    let my_entry = ManagedEntry {
        raw: entry,
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version,
        time: Some(now.to_string()),
        subresource: None,
        set: new_set,
        modified: true,
    };
    match mine.and_then(|i| entries.get_mut(i)) {
        Some(slot) => *slot = my_entry,
        None => entries.push(my_entry),
    }
    let encoded: Vec<Value> = entries
        .into_iter()
        .filter(|e| !(e.modified && e.set.is_empty()))
        .map(|mut e| {
            if e.modified {
                e.raw.insert("fieldsV1".into(), e.set.to_fields_v1());
                e.raw
                    .entry("fieldsType")
                    .or_insert_with(|| Value::String("FieldsV1".into()));
            }
            Value::Object(e.raw)
        })
        .collect();
    if let Value::Object(obj) = &mut result {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            if encoded.is_empty() {
                meta.remove("managedFields");
            } else {
                meta.insert("managedFields".into(), Value::Array(encoded));
            }
        }
    }
    Ok(result)
}

/// The set of fields `manager` owns through an `Apply` entry of `obj`, if any.
pub fn applied_fields(obj: &Value, manager: &str) -> Option<FieldSet> {
    parse_entries(obj)
        .into_iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.set)
}
