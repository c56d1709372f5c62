//! Object metadata rules: names, generateName, uids, timestamps.

use serde_json::Value;

use crate::error::Cause;

/// Current time as RFC 3339 with second precision (`2026-11-21T00:15:14Z`), as metav1.Time serialises.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A new random uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The alphabet and length apiserver uses for generateName suffixes.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const SUFFIX_LEN: usize = 5;
const MAX_NAME_LEN: usize = 253;

/// `prefix` + 5 random characters, the prefix cut so the whole name fits.
pub fn generate_name(prefix: &str) -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes
        .iter()
        .take(SUFFIX_LEN)
        .map(|b| SUFFIX_ALPHABET[*b as usize % SUFFIX_ALPHABET.len()] as char)
        .collect();
    let max_prefix = MAX_NAME_LEN - SUFFIX_LEN;
    let prefix = if prefix.len() > max_prefix {
        &prefix[..max_prefix]
    } else {
        prefix
    };
    format!("{prefix}{suffix}")
}

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// One dot-separated part of an RFC 1123 subdomain (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, any length).
fn is_subdomain_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Validate `metadata.name` for a kind. Namespaces (and nodes' names are subdomains) follow DNS-1123 rules.
pub fn validate_name(kind: &str, name: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired".into(),
            message: "metadata.name: Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        });
        return causes;
    }
    let ok = match kind {
        "Namespace" | "Service" => is_dns1123_label(name),
        // RBAC objects accept path-segment names (colons are common: system:controller:...).
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            name != "." && name != ".." && !name.contains('/') && !name.contains('%')
        }
        // A subdomain's segments are not limited to 63 characters (only the whole name, to 253).
        _ => name.len() <= MAX_NAME_LEN && name.split('.').all(is_subdomain_segment),
    };
    if !ok {
        let rule = if matches!(kind, "Namespace" | "Service") {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        } else if kind.ends_with("Role") || kind.ends_with("RoleBinding") {
            "may not contain '/' or '%' and may not be '.' or '..'"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        };
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("metadata.name: Invalid value: \"{name}\": {rule}"),
            field: "metadata.name".into(),
        });
    }
    causes
}

/// Validate label keys/values and annotation keys in `metadata`.
pub fn validate_metadata(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(map) => {
                for (k, v) in map {
                    let Some(v) = v.as_str() else {
                        causes.push(Cause {
                            reason: "FieldValueInvalid".into(),
                            message: format!(
                                "metadata.labels: Invalid value: {v}: label values must be strings"
                            ),
                            field: "metadata.labels".into(),
                        });
                        continue;
                    };
                    if !valid_qualified_name(k) {
                        causes.push(invalid_label(k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                    }
                    if !valid_label_value(v) {
                        causes.push(Cause {
                            reason: "FieldValueInvalid".into(),
                            message: format!("metadata.labels: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
                            field: "metadata.labels".into(),
                        });
                    }
                }
            }
            None if labels.is_null() => {}
            None => causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: "metadata.labels: Invalid value: must be a map of strings".into(),
                field: "metadata.labels".into(),
            }),
        }
    }
    if let Some(ann) = obj.pointer("/metadata/annotations")
        && !ann.is_null()
        && !ann
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string))
    {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: "metadata.annotations: Invalid value: annotations must be a map of strings"
                .into(),
            field: "metadata.annotations".into(),
        });
    }
    causes
}

fn invalid_label(k: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("metadata.labels: Invalid value: \"{k}\": {why}"),
        field: "metadata.labels".into(),
    }
}

fn valid_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `prefix/name` label key rules.
pub fn valid_qualified_name(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => {
            prefix.len() <= 253
                && !prefix.is_empty()
                && prefix.split('.').all(is_dns1123_label)
                && valid_name_part(name)
        }
        None => valid_name_part(k),
    }
}

/// Label value rules (empty allowed).
pub fn valid_label_value(v: &str) -> bool {
    v.is_empty() || valid_name_part(v)
}

/// The string at a JSON pointer, or `""` when absent or not a string.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `metadata.<field>` as a string, or `""`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Drop the metadata maps and lists that are empty (`labels: {}`, `finalizers: []`, ...): the apiserver's
/// ObjectMeta omits them when empty, so they never come back from a write.
pub fn drop_empty_metadata(obj: &mut Value) {
    let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for key in [
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "managedFields",
    ] {
        let empty = match m.get(key) {
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_metadata_collections_are_dropped() {
        let mut obj = serde_json::json!({"metadata": {"name": "a", "labels": {}, "finalizers": [], "ownerReferences": [],
            "annotations": {"k": "v"}}});
        drop_empty_metadata(&mut obj);
        assert_eq!(
            obj,
            serde_json::json!({"metadata": {"name": "a", "annotations": {"k": "v"}}})
        );
    }

    #[test]
    fn names() {
        assert!(validate_name("Pod", "web-1").is_empty());
        assert!(validate_name("Pod", "a.b.c").is_empty());
        assert!(validate_name("ConfigMap", &"a".repeat(253)).is_empty());
        assert!(!validate_name("ConfigMap", &"a".repeat(254)).is_empty());
        assert!(!validate_name("Pod", "Web").is_empty());
        assert!(!validate_name("Namespace", "a.b").is_empty());
        assert!(validate_name("ClusterRole", "system:controller:x").is_empty());
        assert!(!validate_name("Pod", "").is_empty());
        let g = generate_name("demo-");
        assert!(g.starts_with("demo-") && g.len() == 10);
    }

    #[test]
    fn labels() {
        assert!(valid_qualified_name("aadpodidbinding"));
        assert!(valid_qualified_name("azure.workload.identity/use"));
        assert!(!valid_qualified_name("-bad"));
        assert!(valid_label_value(""));
        assert!(!valid_label_value("a b"));
    }
}
