//! Field paths and sets in the structured-merge-diff model, with the `FieldsV1` JSON encoding
//! used in `metadata.managedFields`.
//!
//! A [`FieldSet`] holds paths; a path is a sequence of [`PathElement`]s. In `FieldsV1` every
//! element is a key of a nested JSON object: `f:<field>`, `k:<json object of key fields>` (an
//! element of a keyed list), `v:<json value>` (an element of a set list), `i:<index>`; `.`
//! marks that the path leading to the object is itself a member of the set when it also has
//! children. A member without children is written `{}`.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::gofmt::go_quote;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A map/struct field.
    Field(String),
    /// An element of a keyed list, identified by its key fields; stored as canonical JSON
    /// (sorted keys), e.g. `{"name":"nginx"}`.
    Key(String),
    /// An element of a set list; the value as canonical JSON, e.g. `"example.com/finalizer"`.
    Value(String),
    /// An element of a list addressed by position.
    Index(usize),
}

/// A path from the object root.
pub type FieldPath = Vec<PathElement>;

/// Canonical JSON: object keys sorted, no whitespace.
pub(crate) fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String(k.clone()),
                        m.get(k).map(canonical_json).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(canonical_json).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// `value.ToString` of structured-merge-diff: strings Go-quoted, other scalars plain.
fn smd_value_string(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        other => canonical_json(other),
    }
}

impl PathElement {
    /// A keyed-list element from its key fields.
    pub fn key(fields: &Map<String, Value>) -> PathElement {
        PathElement::Key(canonical_json(&Value::Object(fields.clone())))
    }

    /// A set-list element.
    pub fn value(v: &Value) -> PathElement {
        PathElement::Value(canonical_json(v))
    }

    /// The key fields of a [`PathElement::Key`].
    pub fn key_fields(&self) -> Option<Map<String, Value>> {
        match self {
            PathElement::Key(s) => serde_json::from_str(s).ok(),
            _ => None,
        }
    }

    /// The value of a [`PathElement::Value`].
    pub fn set_value(&self) -> Option<Value> {
        match self {
            PathElement::Value(s) => serde_json::from_str(s).ok(),
            _ => None,
        }
    }

    /// The `FieldsV1` object key of this element.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` object key (not `.`).
    pub fn from_fields_v1_key(key: &str) -> Option<PathElement> {
        let (kind, rest) = key.split_at_checked(2)?;
        match kind {
            "f:" => Some(PathElement::Field(rest.to_string())),
            "k:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                v.is_object().then(|| PathElement::Key(canonical_json(&v)))
            }
            "v:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                Some(PathElement::Value(canonical_json(&v)))
            }
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }
}

impl fmt::Display for PathElement {
    /// The structured-merge-diff text form used in conflict messages: `.spec`,
    /// `[name="nginx"]`, `[="value"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(_) => {
                let fields = self.key_fields().unwrap_or_default();
                let mut names: Vec<&String> = fields.keys().collect();
                names.sort();
                let parts: Vec<String> = names
                    .into_iter()
                    .map(|n| {
                        format!(
                            "{n}={}",
                            fields.get(n).map(smd_value_string).unwrap_or_default()
                        )
                    })
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(_) => {
                let v = self.set_value().unwrap_or(Value::Null);
                write!(f, "[={}]", smd_value_string(&v))
            }
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Renders a path as structured-merge-diff does (`.spec.containers[name="app"].image`).
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSet {
    paths: BTreeSet<FieldPath>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: FieldPath) {
        self.paths.insert(path);
    }

    /// Removes a path; returns whether it was present.
    pub fn remove(&mut self, path: &[PathElement]) -> bool {
        self.paths.remove(path)
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.paths.contains(path)
    }

    /// Whether the set has a member strictly below `path`.
    pub fn has_descendant(&self, path: &[PathElement]) -> bool {
        self.paths
            .range(path.to_vec()..)
            .find(|p| p.as_slice() != path)
            .is_some_and(|p| p.starts_with(path))
    }

    /// Whether `path` or anything below it is a member.
    pub fn contains_or_has_descendant(&self, path: &[PathElement]) -> bool {
        self.contains(path) || self.has_descendant(path)
    }

    /// Removes `path` and everything below it.
    pub fn remove_with_descendants(&mut self, path: &[PathElement]) {
        self.paths.retain(|p| !p.starts_with(path));
    }

    /// All members, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &FieldPath> {
        self.paths.iter()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Members that have no members below them (leaves).
    pub fn leaves(&self) -> impl Iterator<Item = &FieldPath> {
        self.paths.iter().filter(|p| !self.has_descendant(p))
    }

    /// The `FieldsV1` JSON encoding.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: std::collections::BTreeMap<String, Node>,
        }
        fn encode(node: &Node) -> Value {
            let mut obj = Map::new();
            if node.member && !node.children.is_empty() {
                obj.insert(".".to_string(), Value::Object(Map::new()));
            }
            for (k, child) in &node.children {
                obj.insert(k.clone(), encode(child));
            }
            Value::Object(obj)
        }
        let mut root = Node::default();
        for path in &self.paths {
            let mut node = &mut root;
            for pe in path {
                node = node.children.entry(pe.to_fields_v1_key()).or_default();
            }
            node.member = true;
        }
        encode(&root)
    }

    /// Decodes `FieldsV1` JSON; unknown or malformed keys are skipped.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        fn walk(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
            let Value::Object(m) = v else {
                return;
            };
            if m.is_empty() && !prefix.is_empty() {
                out.insert(prefix.clone());
                return;
            }
            for (k, child) in m {
                if k == "." {
                    if !prefix.is_empty() {
                        out.insert(prefix.clone());
                    }
                    continue;
                }
                if let Some(pe) = PathElement::from_fields_v1_key(k) {
                    prefix.push(pe);
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
        }
        let mut out = FieldSet::new();
        walk(v, &mut Vec::new(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trip() {
        let encoded = json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}
                }}}
            },
            "f:finalizers": {"v:\"a/b\"": {}}
        });
        let set = FieldSet::from_fields_v1(&encoded);
        assert_eq!(set.len(), 6);
        assert_eq!(set.to_fields_v1(), encoded);
        let container = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key("{\"name\":\"nginx\"}".into()),
        ];
        assert!(set.contains(&container));
        assert!(set.has_descendant(&container));
        let mut image = container.clone();
        image.push(PathElement::Field("image".into()));
        assert_eq!(
            path_string(&image),
            ".spec.template.spec.containers[name=\"nginx\"].image"
        );
        assert_eq!(
            path_string(&[
                PathElement::Field("f".into()),
                PathElement::value(&json!("x")),
                PathElement::Index(2)
            ]),
            ".f[=\"x\"][2]"
        );
    }

    #[test]
    fn key_canonicalisation() {
        let a = PathElement::from_fields_v1_key("k:{\"protocol\":\"TCP\",\"port\":80}");
        let mut m = Map::new();
        m.insert("port".into(), json!(80));
        m.insert("protocol".into(), json!("TCP"));
        assert_eq!(a, Some(PathElement::key(&m)));
        assert_eq!(
            a.map(|p| p.to_string()),
            Some("[port=80,protocol=\"TCP\"]".to_string())
        );
        assert_eq!(PathElement::from_fields_v1_key("x:y"), None);
        assert_eq!(PathElement::from_fields_v1_key("k:[1]"), None);
        assert_eq!(
            PathElement::from_fields_v1_key("i:3"),
            Some(PathElement::Index(3))
        );
    }
}
