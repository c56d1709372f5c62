//! Read-only accessors over an `openAPIV3Schema` node held as JSON.
//!
//! Every accessor is lenient: a keyword with the wrong JSON type is treated as absent, and a
//! schema node that is not an object constrains nothing. The API server rejects such CRDs long
//! before objects are validated against them, so leniency only matters for robustness.

use serde_json::{Map, Value};

/// A schema node (`None` for non-object nodes, which constrain nothing).
#[derive(Clone, Copy)]
pub(crate) struct Node<'a>(pub(crate) Option<&'a Map<String, Value>>);

/// `additionalProperties`.
pub(crate) enum Additional<'a> {
    /// Absent.
    Absent,
    /// `true`/`false`.
    Bool(bool),
    /// A schema.
    Schema(Node<'a>),
}

impl<'a> Node<'a> {
    pub(crate) fn of(v: &'a Value) -> Self {
        Node(v.as_object())
    }

    pub(crate) fn get(self, key: &str) -> Option<&'a Value> {
        self.0.and_then(|m| m.get(key))
    }

    fn flag(self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    pub(crate) fn type_(self) -> Option<&'a str> {
        self.get("type").and_then(Value::as_str)
    }

    pub(crate) fn nullable(self) -> bool {
        self.flag("nullable")
    }

    pub(crate) fn int_or_string(self) -> bool {
        self.flag("x-kubernetes-int-or-string")
    }

    pub(crate) fn preserve_unknown(self) -> bool {
        self.flag("x-kubernetes-preserve-unknown-fields")
    }

    pub(crate) fn embedded(self) -> bool {
        self.flag("x-kubernetes-embedded-resource")
    }

    pub(crate) fn format(self) -> Option<&'a str> {
        self.get("format").and_then(Value::as_str)
    }

    pub(crate) fn properties(self) -> Option<&'a Map<String, Value>> {
        self.get("properties").and_then(Value::as_object)
    }

    pub(crate) fn property(self, name: &str) -> Option<Node<'a>> {
        self.properties().and_then(|p| p.get(name)).map(Node::of)
    }

    pub(crate) fn additional(self) -> Additional<'a> {
        match self.get("additionalProperties") {
            Some(Value::Bool(b)) => Additional::Bool(*b),
            Some(v @ Value::Object(_)) => Additional::Schema(Node::of(v)),
            _ => Additional::Absent,
        }
    }

    /// The schema for a map value under key `k`: the property, else a schema-valued
    /// `additionalProperties`.
    pub(crate) fn child(self, k: &str) -> Option<Node<'a>> {
        self.property(k).or(match self.additional() {
            Additional::Schema(s) => Some(s),
            _ => None,
        })
    }

    pub(crate) fn items(self) -> Option<Node<'a>> {
        match self.get("items") {
            Some(v @ Value::Object(_)) => Some(Node::of(v)),
            _ => None,
        }
    }

    pub(crate) fn required(self) -> Vec<&'a str> {
        self.get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    pub(crate) fn enum_values(self) -> Option<&'a Vec<Value>> {
        self.get("enum").and_then(Value::as_array)
    }

    pub(crate) fn f64(self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    pub(crate) fn i64(self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.is_finite())
                    .map(|f| f as i64)
            }),
            _ => None,
        }
    }

    pub(crate) fn exclusive(self, key: &str) -> bool {
        self.flag(key)
    }

    pub(crate) fn junctor(self, key: &str) -> Vec<Node<'a>> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Node::of).collect())
            .unwrap_or_default()
    }

    pub(crate) fn not(self) -> Option<Node<'a>> {
        match self.get("not") {
            Some(v @ Value::Object(_)) => Some(Node::of(v)),
            _ => None,
        }
    }

    pub(crate) fn default_value(self) -> Option<&'a Value> {
        self.get("default")
    }
}

/// Keys of a JSON object in sorted order (independent of serde_json's map ordering feature).
pub(crate) fn sorted_keys(m: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    keys
}
