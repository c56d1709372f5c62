//! Structural pruning (apiextensions `pruning.PruneWithOptions`) and the removal of
//! non-nullable nulls (`defaulting.PruneNonNullableNullsWithoutDefaults`).

use serde_json::{Map, Value};

use crate::schema::{Additional, Node, sorted_keys};

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The fields of `metav1.ObjectMeta`; embedded resources' metadata is round-tripped through
/// that type by the server, which drops everything else.
const OBJECT_META_FIELDS: [&str; 16] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "clusterName",
];

struct Pruner {
    paths: Vec<String>,
}

impl Pruner {
    fn record(&mut self, parent: &str, key: &str) {
        self.paths.push(join_key(parent, key));
    }
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Drop every field the schema does not know, in place, exactly as the API server does before
/// storing a custom resource. Returns the dropped paths (`spec.foo`, `spec.items[0].bar`),
/// sorted, for `unknown field "…"` warnings or strict field validation errors.
///
/// Rules: unknown object keys are removed unless the node has
/// `x-kubernetes-preserve-unknown-fields: true` (whose known properties are still pruned
/// recursively); values under `additionalProperties` are pruned by that schema; an object
/// without a schema loses all its keys. The root is treated as an embedded resource, so its
/// `apiVersion`, `kind` and `metadata` are never touched; the same three fields are kept in
/// `x-kubernetes-embedded-resource` objects, whose `metadata` is reduced to the ObjectMeta
/// fields (unknown metadata keys and a `null` `creationTimestamp` are dropped and reported).
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut p = Pruner { paths: Vec::new() };
    let root = Node::of(schema);
    prune_node(Some(root), obj, "", true, &mut p);
    p.paths.sort();
    p.paths
}

fn prune_node(s: Option<Node<'_>>, x: &mut Value, path: &str, embedded: bool, p: &mut Pruner) {
    if let Some(s) = s
        && s.preserve_unknown()
    {
        skip_prune(s, x, path, embedded, p);
        return;
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s.filter(|s| s.0.is_some()) else {
                for k in sorted_keys(m) {
                    p.record(path, k);
                }
                m.clear();
                return;
            };
            let embedded = embedded || s.embedded();
            let keys: Vec<String> = sorted_keys(m).into_iter().cloned().collect();
            for k in keys {
                if keep_embedded_meta_field(m, &k, path, embedded, p) {
                    continue;
                }
                let child = join_key(path, &k);
                if let Some(prop) = s.property(&k) {
                    if let Some(v) = m.get_mut(&k) {
                        prune_node(Some(prop), v, &child, false, p);
                    }
                } else {
                    match s.additional() {
                        Additional::Schema(ap) => {
                            if let Some(v) = m.get_mut(&k) {
                                prune_node(Some(ap), v, &child, false, p);
                            }
                        }
                        Additional::Bool(_) => {
                            if let Some(v) = m.get_mut(&k) {
                                prune_node(None, v, &child, false, p);
                            }
                        }
                        Additional::Absent => {
                            m.remove(&k);
                            p.record(path, &k);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(Node::items);
            for (i, v) in items.iter_mut().enumerate() {
                prune_node(item_schema, v, &format!("{path}[{i}]"), false, p);
            }
        }
        _ => {}
    }
}

/// `x-kubernetes-preserve-unknown-fields: true`: keep unknown keys, but prune known ones.
fn skip_prune(s: Node<'_>, x: &mut Value, path: &str, embedded: bool, p: &mut Pruner) {
    match x {
        Value::Object(m) => {
            let embedded = embedded || s.embedded();
            let keys: Vec<String> = sorted_keys(m).into_iter().cloned().collect();
            for k in keys {
                if keep_embedded_meta_field(m, &k, path, embedded, p) {
                    continue;
                }
                let child = join_key(path, &k);
                let sub = s.property(&k).or(match s.additional() {
                    Additional::Schema(ap) => Some(ap),
                    _ => None,
                });
                if let (Some(sub), Some(v)) = (sub, m.get_mut(&k)) {
                    prune_node(Some(sub), v, &child, false, p);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items() {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(item_schema, v, &format!("{path}[{i}]"), false, p);
                }
            }
        }
        _ => {}
    }
}

/// `apiVersion`, `kind` and `metadata` of an embedded resource (or the root) are kept as they
/// are, except that a nested embedded `metadata` is coerced to ObjectMeta. Returns whether `k`
/// is such a field, i.e. whether the caller must leave it alone.
fn keep_embedded_meta_field(
    m: &mut Map<String, Value>,
    k: &str,
    path: &str,
    embedded: bool,
    p: &mut Pruner,
) -> bool {
    if !embedded || !META_FIELDS.contains(&k) {
        return false;
    }
    if k == "metadata" && !path.is_empty() {
        coerce_embedded_metadata(m, &join_key(path, "metadata"), p);
    }
    true
}

/// Embedded `metadata` round-trips through `metav1.ObjectMeta`: unknown keys disappear, and a
/// zero `creationTimestamp` is removed.
fn coerce_embedded_metadata(parent: &mut Map<String, Value>, path: &str, p: &mut Pruner) {
    let Some(Value::Object(meta)) = parent.get_mut("metadata") else {
        return;
    };
    let keys: Vec<String> = sorted_keys(meta).into_iter().cloned().collect();
    for k in keys {
        if !OBJECT_META_FIELDS.contains(&k.as_str()) {
            meta.remove(&k);
            p.record(path, &k);
        }
    }
    if meta.get("creationTimestamp").is_some_and(Value::is_null) {
        meta.remove("creationTimestamp");
    }
}

/// Remove object fields whose value is `null` although their schema is not `nullable` and has
/// no `default` (the API server does this after pruning). Nulls with a default are replaced by
/// [`crate::apply_defaults`] instead.
pub fn prune_nulls(schema: &Value, obj: &mut Value) {
    prune_nulls_node(Node::of(schema), obj);
}

fn prune_nulls_node(s: Node<'_>, x: &mut Value) {
    if s.0.is_none() {
        return;
    }
    match x {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let Some(sub) = s.child(&k) else { continue };
                let remove = m.get(&k).is_some_and(Value::is_null)
                    && sub.default_value().is_none_or(Value::is_null)
                    && !sub.nullable();
                if remove {
                    m.remove(&k);
                } else if let Some(v) = m.get_mut(&k) {
                    prune_nulls_node(sub, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items() {
                for v in items {
                    prune_nulls_node(item_schema, v);
                }
            }
        }
        _ => {}
    }
}
