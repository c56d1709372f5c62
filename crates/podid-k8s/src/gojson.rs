//! Go `encoding/json`-style tolerant decoding of struct objects.
//!
//! Go matches JSON object keys to struct fields in two passes: an exact match on the
//! field's JSON name wins; otherwise a case-insensitive match (Unicode simple folding,
//! which for ASCII names adds only `ſ` ~ `s` and the Kelvin sign `K` ~ `k`) is used.
//! Unknown keys are ignored, and a JSON `null` leaves a field at its zero value. Users of
//! aad-pod-identity relied on this for years (`ClientID`, `ResourceID`, `ClientId`,
//! `Selector`, …), so the Rust types decode the same way.
//!
//! [`GoObject`] holds one decoded object whose keys have been canonicalised against the
//! struct's field list. Fields are then taken one by one with [`GoObject::field`].

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::{Map, Value};

/// One JSON/YAML object with its keys canonicalised to a struct's JSON field names.
pub(crate) struct GoObject {
    fields: Map<String, Value>,
}

/// True when `key` matches the (ASCII) field name `field` under Go's simple case folding.
pub(crate) fn go_fold_eq(field: &str, key: &str) -> bool {
    let mut k = key.chars();
    for f in field.chars() {
        let Some(c) = k.next() else {
            return false;
        };
        let same = c == f
            || (c.is_ascii() && c.eq_ignore_ascii_case(&f))
            || (c == '\u{017F}' && f.eq_ignore_ascii_case(&'s'))
            || (c == '\u{212A}' && f.eq_ignore_ascii_case(&'k'));
        if !same {
            return false;
        }
    }
    k.next().is_none()
}

/// Canonicalise the keys of `map` against `names`: exact matches win over case-insensitive
/// ones, keys matching no field are dropped.
pub(crate) fn canonicalize(map: Map<String, Value>, names: &[&'static str]) -> Map<String, Value> {
    let mut exact = Map::new();
    let mut folded = Map::new();
    for (key, value) in map {
        if let Some(name) = names.iter().find(|n| **n == key) {
            exact.insert((*name).to_owned(), value);
        } else if let Some(name) = names.iter().find(|n| go_fold_eq(n, &key)) {
            folded.entry((*name).to_owned()).or_insert(value);
        }
    }
    for (key, value) in folded {
        exact.entry(key).or_insert(value);
    }
    exact
}

impl GoObject {
    /// Decode an object (or `null`, which yields an empty object, like Go's no-op decode of
    /// `null` into a struct) and canonicalise its keys against `names`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
        names: &[&'static str],
    ) -> Result<Self, D::Error> {
        let map = Option::<Map<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
        Ok(Self {
            fields: canonicalize(map, names),
        })
    }

    /// Take field `name`, decoding it as `T`; absent or `null` gives `T::default()`.
    ///
    /// Errors are prefixed with the field name (`clientID: invalid type: …`).
    pub(crate) fn field<T, E>(&mut self, name: &str) -> Result<T, E>
    where
        T: DeserializeOwned + Default,
        E: serde::de::Error,
    {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(v) => T::deserialize(v).map_err(|e| E::custom(format_args!("{name}: {e}"))),
        }
    }

    /// Take field `name` as an embedded full object (`x-kubernetes-embedded-resource`).
    ///
    /// The `kube`-derived root types require `metadata`; Go does not, so a missing
    /// `metadata` is supplied as `{}` before decoding. `null` or absent gives `None`.
    pub(crate) fn embedded<T, E>(&mut self, name: &str) -> Result<Option<T>, E>
    where
        T: DeserializeOwned,
        E: serde::de::Error,
    {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(mut m)) => {
                if m.get("metadata").is_none_or(Value::is_null) {
                    m.insert("metadata".to_owned(), Value::Object(Map::new()));
                }
                T::deserialize(Value::Object(m))
                    .map(Some)
                    .map_err(|e| E::custom(format_args!("{name}: {e}")))
            }
            Some(other) => Err(E::custom(format_args!(
                "{name}: invalid type: {}, expected an object",
                json_kind(&other)
            ))),
        }
    }

    /// Take field `name` as a nested object, itself canonicalised against `names`, decoded as `T`.
    pub(crate) fn nested<T, E>(&mut self, name: &str, names: &[&'static str]) -> Result<T, E>
    where
        T: DeserializeOwned + Default,
        E: serde::de::Error,
    {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(Value::Object(m)) => T::deserialize(Value::Object(canonicalize(m, names)))
                .map_err(|e| E::custom(format_args!("{name}: {e}"))),
            Some(other) => Err(E::custom(format_args!(
                "{name}: invalid type: {}, expected an object",
                json_kind(&other)
            ))),
        }
    }
}

/// Short description of a JSON value's type, for error messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folding_rules() {
        for (field, key, want) in [
            ("clientID", "clientID", true),
            ("clientID", "ClientID", true),
            ("clientID", "clientid", true),
            ("clientID", "CLIENTID", true),
            ("clientID", "ClientId", true),
            ("clientID", "clientI", false),
            ("clientID", "clientIDs", false),
            ("selector", "\u{017F}elector", true),
            ("kind", "\u{212A}ind", true),
            ("selector", "sélector", false),
            ("", "", true),
        ] {
            assert_eq!(go_fold_eq(field, key), want, "{field} vs {key}");
        }
    }

    #[test]
    fn exact_match_wins_over_folded() {
        let Value::Object(m) = json!({"ClientID": "legacy", "clientID": "new", "other": 1}) else {
            unreachable!()
        };
        let c = canonicalize(m, &["clientID"]);
        assert_eq!(c.get("clientID"), Some(&json!("new")));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn null_and_missing_give_default() {
        let mut o = GoObject::deserialize(json!({"a": null}), &["a", "b"])
            .unwrap_or_else(|e: serde_json::Error| panic!("{e}"));
        let a: String = o.field::<_, serde_json::Error>("a").unwrap_or_default();
        let b: i32 = o.field::<_, serde_json::Error>("b").unwrap_or(7);
        assert_eq!(a, "");
        assert_eq!(b, 0);
        assert!(GoObject::deserialize(Value::Null, &["a"]).is_ok());
        assert!(GoObject::deserialize(json!("x"), &["a"]).is_err());
    }

    #[test]
    fn field_error_is_prefixed() {
        let mut o = GoObject::deserialize(json!({"weight": "x"}), &["weight"])
            .unwrap_or_else(|e: serde_json::Error| panic!("{e}"));
        let e = o.field::<i64, serde_json::Error>("weight").err();
        assert!(e.is_some_and(|e| e.to_string().starts_with("weight: invalid type")));
    }
}
