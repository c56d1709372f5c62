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
//!
//! Two refinements over Go, both for the pre-v1.6 spellings podid accepts and rewrites:
//! - a folded key is used when the exact key is absent **or empty** (`null`, `""`, `{}`, `[]`),
//!   so `{"clientID": "", "ClientID": "c"}` reads `c` (Go would take whichever came last);
//! - every key matched by folding is recorded ([`GoObject::take_legacy`]) with whether its value
//!   was used, so the controller can rewrite the object and say which key it replaced.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::{Map, Value};

/// One JSON/YAML object with its keys canonicalised to a struct's JSON field names.
pub(crate) struct GoObject {
    fields: Map<String, Value>,
    legacy: Vec<LegacyKey>,
}

/// A key written in another spelling than its field's JSON name (`ClientID` for `clientID`),
/// found while decoding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegacyKey {
    /// The key as written (`ClientID`).
    pub written: String,
    /// The field's current JSON name (`clientID`).
    pub field: &'static str,
    /// The value was not used: the current key was also present with a non-empty value, which
    /// wins (as in Go, where the later key wins and the API server sorts `ClientID` before
    /// `clientID`).
    pub ignored: bool,
    /// Ignored, and its value differs from the one used (the manifest says two things).
    pub conflicting: bool,
}

/// The [`LegacyKey`]s of one object, recorded while decoding and never serialised.
///
/// They describe how the object was *spelled*, not what it *means*: two specs with the same
/// values compare equal whatever their spellings, so `==` on this type is always true.
#[derive(Clone, Debug, Default)]
pub struct LegacyKeys(pub Vec<LegacyKey>);

impl LegacyKeys {
    /// No key was written in a legacy spelling.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded keys, sorted by the key as written.
    pub fn iter(&self) -> impl Iterator<Item = &LegacyKey> {
        self.0.iter()
    }
}

impl PartialEq for LegacyKeys {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LegacyKeys {}

/// Go's `omitempty` notion of an empty value (numbers and booleans are never empty here: `type: 0`
/// is a real identity type).
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
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
/// ones unless they are empty, keys matching no field are dropped.
pub(crate) fn canonicalize(map: Map<String, Value>, names: &[&'static str]) -> Map<String, Value> {
    canonicalize_recording(map, names).0
}

/// [`canonicalize`], also returning the keys matched by folding (sorted by the key as written).
fn canonicalize_recording(
    map: Map<String, Value>,
    names: &[&'static str],
) -> (Map<String, Value>, Vec<LegacyKey>) {
    let mut exact = Map::new();
    let mut folded: Vec<(String, &'static str, Value)> = Vec::new();
    for (key, value) in map {
        if let Some(name) = names.iter().find(|n| **n == key) {
            exact.insert((*name).to_owned(), value);
        } else if let Some(name) = names.iter().find(|n| go_fold_eq(n, &key)) {
            folded.push((key, name, value));
        }
    }
    folded.sort_by(|a, b| a.0.cmp(&b.0));
    let mut legacy = Vec::with_capacity(folded.len());
    for (written, field, value) in folded {
        let taken = match exact.get(field) {
            None => true,
            Some(current) => is_empty_value(current) && !is_empty_value(&value),
        };
        let conflicting = !taken && exact.get(field) != Some(&value);
        if taken {
            exact.insert(field.to_owned(), value);
        }
        legacy.push(LegacyKey {
            written,
            field,
            ignored: !taken,
            conflicting,
        });
    }
    (exact, legacy)
}

impl GoObject {
    /// Decode an object (or `null`, which yields an empty object, like Go's no-op decode of
    /// `null` into a struct) and canonicalise its keys against `names`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
        names: &[&'static str],
    ) -> Result<Self, D::Error> {
        let map = Option::<Map<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
        let (fields, legacy) = canonicalize_recording(map, names);
        Ok(Self { fields, legacy })
    }

    /// The keys that were matched by folding rather than exactly.
    pub(crate) fn take_legacy(&mut self) -> LegacyKeys {
        LegacyKeys(std::mem::take(&mut self.legacy))
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
    fn folded_key_fills_an_empty_exact_key_and_is_recorded() {
        let Value::Object(m) = json!({"ClientID": "legacy", "clientID": "", "ResourceID": "r", "resourceID": "new", "Type": 1})
        else {
            unreachable!()
        };
        let (c, legacy) = canonicalize_recording(m, &["clientID", "resourceID", "type"]);
        assert_eq!(c.get("clientID"), Some(&json!("legacy")));
        assert_eq!(c.get("resourceID"), Some(&json!("new")));
        assert_eq!(c.get("type"), Some(&json!(1)));
        let got: Vec<(&str, &str, bool, bool)> = legacy
            .iter()
            .map(|l| (l.written.as_str(), l.field, l.ignored, l.conflicting))
            .collect();
        assert_eq!(
            got,
            [
                ("ClientID", "clientID", false, false),
                ("ResourceID", "resourceID", true, true),
                ("Type", "type", false, false)
            ]
        );
        // The same value under both keys is redundant, not conflicting.
        let Value::Object(m) = json!({"Selector": "s", "selector": "s"}) else {
            unreachable!()
        };
        let (_, legacy) = canonicalize_recording(m, &["selector"]);
        assert!(legacy[0].ignored && !legacy[0].conflicting);
        // `type: 0` is a value, not an empty key: it wins over a legacy `Type`.
        let Value::Object(m) = json!({"Type": 1, "type": 0}) else {
            unreachable!()
        };
        let (c, legacy) = canonicalize_recording(m, &["type"]);
        assert_eq!(c.get("type"), Some(&json!(0)));
        assert!(legacy[0].ignored);
        assert_eq!(
            LegacyKeys(legacy),
            LegacyKeys::default(),
            "spelling is not value"
        );
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
