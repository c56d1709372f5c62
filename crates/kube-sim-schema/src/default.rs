//! Structural defaulting (apiextensions `defaulting.Default`).

use serde_json::Value;

use crate::schema::{Additional, Node};

/// Apply the schema's `default` values to `obj`, in place, as the API server does when it
/// decodes a request or reads from storage.
///
/// For every object node, each property with a `default` that is absent — or present as
/// `null` while the property is not `nullable` — receives a copy of the default; then every
/// present value is defaulted recursively (defaults are themselves defaulted further down).
/// `additionalProperties` values and array items that are `null` but not nullable are replaced
/// by their schema's default. Nothing else changes.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    default_node(Node::of(schema), obj);
}

fn is_non_nullable_null(x: &Value, s: Node<'_>) -> bool {
    x.is_null() && s.0.is_some() && !s.nullable()
}

fn default_node(s: Node<'_>, x: &mut Value) {
    if s.0.is_none() {
        return;
    }
    match x {
        Value::Object(m) => {
            if let Some(props) = s.properties() {
                for (k, prop) in props {
                    let prop = Node::of(prop);
                    let Some(default) = prop.default_value().filter(|d| !d.is_null()) else {
                        continue;
                    };
                    let missing = match m.get(k) {
                        None => true,
                        Some(v) => is_non_nullable_null(v, prop),
                    };
                    if missing {
                        m.insert(k.clone(), default.clone());
                    }
                }
            }
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if let Some(prop) = s.property(&k) {
                    if let Some(v) = m.get_mut(&k) {
                        default_node(prop, v);
                    }
                } else if let Additional::Schema(ap) = s.additional()
                    && let Some(v) = m.get_mut(&k)
                {
                    if is_non_nullable_null(v, ap) {
                        *v = ap.default_value().cloned().unwrap_or(Value::Null);
                    }
                    default_node(ap, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items() {
                for v in items {
                    if is_non_nullable_null(v, item_schema) {
                        *v = item_schema.default_value().cloned().unwrap_or(Value::Null);
                    }
                    default_node(item_schema, v);
                }
            }
        }
        _ => {}
    }
}
