//! Validation of built-in kinds, as the apiserver's registry strategies run it after defaulting and mutating
//! admission (`pkg/apis/core/validation`, `pkg/apis/rbac/validation`).
//!
//! Pure functions on JSON objects: each returns the field causes in the apiserver's order and wording
//! (`field.Required`, `field.Invalid`, `field.Duplicate`, `field.Forbidden`), which [`ApiError::invalid`]
//! joins into `<Kind> "<name>" is invalid: [cause, ...]`. A body the apiserver cannot even decode (invalid
//! base64 in a Secret's `data`) is a 400 instead, see [`secret_data_decoding`].
//!
//! [`ApiError::invalid`]: crate::error::ApiError::invalid

use serde_json::Value;

use kube_sim_machinery::gofmt::go_quote;
use kube_sim_machinery::validation::{is_config_map_key, is_dns1123_label};

use crate::error::Cause;

// === causes ===

/// `field.Required(path, detail)`.
pub(crate) fn required(field: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        format!("{field}: Required value")
    } else {
        format!("{field}: Required value: {detail}")
    };
    Cause {
        reason: "FieldValueRequired".into(),
        message,
        field: field.into(),
    }
}

/// `field.Invalid(path, value, detail)`; `value` is already rendered as Go prints it (`"x"`, `80`, a struct).
pub(crate) fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("{field}: Invalid value: {value}: {detail}"),
        field: field.into(),
    }
}

/// `field.Duplicate(path, value)` of a string.
fn duplicate(field: &str, value: &str) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!("{field}: Duplicate value: {}", go_quote(value)),
        field: field.into(),
    }
}

/// `field.NotSupported(path, value, supported)` of a string.
pub(crate) fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let list = supported
        .iter()
        .map(|s| go_quote(s))
        .collect::<Vec<_>>()
        .join(", ");
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "{field}: Unsupported value: {}: supported values: {list}",
            go_quote(value)
        ),
        field: field.into(),
    }
}

/// `field.Forbidden(path, detail)`.
pub(crate) fn forbidden(field: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("{field}: Forbidden: {detail}"),
        field: field.into(),
    }
}

// === per kind ===

/// Causes for a new object of a built-in kind (`group`, `resource`), after defaults.
pub fn create_causes(group: &str, resource: &str, obj: &Value) -> Vec<Cause> {
    match (group, resource) {
        ("", "configmaps") => config_map_causes(obj),
        ("", "secrets") => {
            let mut causes = data_key_causes(obj, &["data"]);
            causes.extend(secret_type_causes(obj));
            causes
        }
        ("", "pods") => pod_causes(obj),
        ("", "services") => super::service::validate(obj),
        ("rbac.authorization.k8s.io", "roles") => rule_causes(obj, true),
        ("rbac.authorization.k8s.io", "clusterroles") => rule_causes(obj, false),
        ("apps" | "batch", _) => super::workloads::create_causes(resource, obj),
        _ => match super::webhook_config::kind_of(group, resource) {
            Some(mutating) => super::webhook_config::causes(mutating, obj),
            None => Vec::new(),
        },
    }
}

/// Causes for an update from `cur` to `next` (after defaults): the create checks on `next` plus the immutable
/// fields. Pods are left to [`super::defaults::pod_update_causes`].
pub fn update_causes(group: &str, resource: &str, cur: &Value, next: &Value) -> Vec<Cause> {
    if resource == "pods" && group.is_empty() {
        return Vec::new();
    }
    let mut causes = create_causes(group, resource, next);
    match (group, resource) {
        ("", "secrets") => {
            if cur.get("type") != next.get("type") {
                causes.push(invalid(
                    "type",
                    &go_quote(str_of(next.get("type"))),
                    "field is immutable",
                ));
            }
            causes.extend(immutable_data_causes(cur, next, &["data"]));
        }
        ("", "configmaps") => {
            causes.extend(immutable_data_causes(cur, next, &["data", "binaryData"]))
        }
        ("", "services") => causes.extend(super::service::update_causes(cur, next)),
        ("apps" | "batch", _) => causes.extend(super::workloads::update_causes(cur, next)),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings")
            if cur.get("roleRef") != next.get("roleRef") =>
        {
            causes.push(invalid(
                "roleRef",
                &role_ref_go(next.get("roleRef")),
                "cannot change roleRef",
            ));
        }
        _ => {}
    }
    causes
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or_default()
}

/// The internal `rbac.RoleRef` as Go's `%#v` prints it in the apiserver's message.
/// The decoder's 400 for a ConfigMap whose `data` is not a map of strings (`ConfigMap in version "v1" cannot be
/// handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string`).
pub fn config_map_decoding(obj: &Value) -> Option<String> {
    let go_kind = |v: &Value| match v {
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Null => "null",
    };
    let prefix =
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal";
    match obj.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(data)) => {
            data.values()
                .find(|v| !v.is_string() && !v.is_null())
                .map(|v| {
                    format!(
                        "{prefix} {} into Go struct field ConfigMap.data of type string",
                        go_kind(v)
                    )
                })
        }
        Some(other) => Some(format!(
            "{prefix} {} into Go struct field ConfigMap.data of type map[string]string",
            go_kind(other)
        )),
    }
}

/// A roleRef as the apiserver prints the internal struct in a field error: JSON with Go's field names.
fn role_ref_go(role_ref: Option<&Value>) -> String {
    let get = |k: &str| str_of(role_ref.and_then(|r| r.get(k))).to_string();
    serde_json::json!({"APIGroup": get("apiGroup"), "Kind": get("kind"), "Name": get("name")})
        .to_string()
}

/// The keys a Secret of a well-known type must hold (`ValidateSecret`), each missing one `data[key]: Required value`.
fn secret_type_causes(obj: &Value) -> Vec<Cause> {
    let required: &[&str] = match obj.get("type").and_then(Value::as_str).unwrap_or("") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        _ => &[],
    };
    required
        .iter()
        .filter(|k| obj.pointer("/data").and_then(|d| d.get(**k)).is_none())
        .map(|k| self::required(&format!("data[{k}]"), ""))
        .collect()
}

/// `immutable: true` ConfigMaps and Secrets: their data may not change, and `immutable` may not be unset.
fn immutable_data_causes(cur: &Value, next: &Value, fields: &[&str]) -> Vec<Cause> {
    if cur.get("immutable") != Some(&Value::Bool(true)) {
        return Vec::new();
    }
    let mut causes = Vec::new();
    if next.get("immutable") != Some(&Value::Bool(true)) {
        causes.push(forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        if cur.get(*f) != next.get(*f) {
            causes.push(forbidden(f, "field is immutable when `immutable` is set"));
        }
    }
    causes
}

// === ConfigMap, Secret ===

fn data_key_causes(obj: &Value, fields: &[&str]) -> Vec<Cause> {
    let mut causes = Vec::new();
    for field in fields {
        let Some(map) = obj.get(*field).and_then(Value::as_object) else {
            continue;
        };
        for key in map.keys() {
            let path = format!("{field}[{key}]");
            for msg in is_config_map_key(key) {
                causes.push(invalid(&path, &go_quote(key), &msg));
            }
        }
    }
    causes
}

fn config_map_causes(obj: &Value) -> Vec<Cause> {
    let mut causes = data_key_causes(obj, &["data", "binaryData"]);
    if let (Some(data), Some(binary)) = (
        obj.get("data").and_then(Value::as_object),
        obj.get("binaryData").and_then(Value::as_object),
    ) {
        for key in data.keys().filter(|k| binary.contains_key(*k)) {
            causes.push(invalid(
                &format!("data[{key}]"),
                &go_quote(key),
                "duplicate of key present in binaryData",
            ));
        }
    }
    causes
}

/// The apiserver decodes a Secret's `data` values from base64 while decoding the body, so an invalid value is a
/// 400 (`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte N`), not a 422.
/// Returns that message, or `None` when every value decodes.
pub fn secret_data_decoding(obj: &Value) -> Option<String> {
    let data = obj.get("data")?.as_object()?;
    for value in data.values() {
        if let Some(s) = value.as_str()
            && let Some(at) = base64_error_offset(s)
        {
            return Some(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte {at}"
            ));
        }
    }
    None
}

/// Where Go's `base64.StdEncoding.DecodeString` reports a `CorruptInputError`, or `None` when `s` decodes.
/// (Go skips `\r` and `\n`; the offset counts them.)
fn base64_error_offset(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let is_alpha = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    // Walk quanta of four significant characters, as Go's decoder does.
    let mut i = 0;
    loop {
        let mut quantum = 0;
        let mut start = None;
        let mut padded = 0;
        let mut pad_at = 0;
        while quantum < 4 {
            if i == bytes.len() {
                return match (quantum, padded) {
                    (0, _) => None,
                    (_, 0) => Some(start.unwrap_or(i)),
                    _ => Some(bytes.len()),
                };
            }
            let c = bytes[i];
            i += 1;
            if c == b'\n' || c == b'\r' {
                continue;
            }
            start.get_or_insert(i - 1);
            if c == b'=' {
                // Padding is allowed only as the last one or two characters of a final quantum.
                if quantum < 2 {
                    return Some(i - 1);
                }
                if padded == 0 {
                    pad_at = i - 1;
                }
                padded += 1;
                quantum += 1;
                continue;
            }
            if padded > 0 {
                return Some(pad_at);
            }
            if !is_alpha(c) {
                return Some(i - 1);
            }
            quantum += 1;
        }
        if padded > 0 {
            // Nothing but newlines may follow padding.
            return bytes[i..]
                .iter()
                .position(|c| *c != b'\n' && *c != b'\r')
                .map(|p| i + p);
        }
    }
}

// === Pod ===

pub(crate) fn pod_causes(pod: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            let path = format!("spec.{list}[{i}]");
            let name = str_of(c.get("name"));
            if name.is_empty() {
                causes.push(required(&format!("{path}.name"), ""));
            } else {
                for msg in is_dns1123_label(name) {
                    causes.push(invalid(&format!("{path}.name"), &go_quote(name), &msg));
                }
                if seen.iter().any(|s| s == name) {
                    causes.push(duplicate(&format!("{path}.name"), name));
                } else {
                    seen.push(name.to_string());
                }
            }
            let image = str_of(c.get("image"));
            if image.is_empty() {
                causes.push(required(&format!("{path}.image"), ""));
            } else if image.trim() != image {
                causes.push(invalid(
                    &format!("{path}.image"),
                    &go_quote(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    causes
}

// === Role, ClusterRole ===

fn rule_causes(role: &Value, namespaced: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(rules) = role.get("rules").and_then(Value::as_array) else {
        return causes;
    };
    let len = |r: &Value, k: &str| r.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        if len(rule, "verbs") == 0 {
            causes.push(required(
                &format!("{path}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        if len(rule, "nonResourceURLs") > 0 {
            let urls = go_string_slice(rule.get("nonResourceURLs"));
            if namespaced {
                causes.push(invalid(
                    &format!("{path}.nonResourceURLs"),
                    &urls,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if len(rule, "apiGroups") > 0
                || len(rule, "resources") > 0
                || len(rule, "resourceNames") > 0
            {
                causes.push(invalid(
                    &format!("{path}.nonResourceURLs"),
                    &urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if len(rule, "apiGroups") == 0 {
            causes.push(required(
                &format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if len(rule, "resources") == 0 {
            causes.push(required(
                &format!("{path}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    causes
}

/// A `[]string` as Go's `%#v` prints it: `[]string{"/healthz"}`.
fn go_string_slice(v: Option<&Value>) -> String {
    let items: Vec<String> = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| go_quote(s.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    format!("[]string{{{}}}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_map_data_must_be_strings_and_typed_secrets_need_their_keys() {
        assert_eq!(
            config_map_decoding(&json!({"data": {"a": "x", "b": null}})),
            None
        );
        assert_eq!(
            config_map_decoding(&json!({"data": {"n": 5}})).as_deref(),
            Some(
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
            )
        );
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.key": "a2V5"}});
        let messages: Vec<String> = secret_type_causes(&tls)
            .into_iter()
            .map(|c| c.message)
            .collect();
        assert_eq!(messages, ["data[tls.crt]: Required value"]);
    }
    use serde_json::json;

    fn messages(causes: &[Cause]) -> Vec<&str> {
        causes.iter().map(|c| c.message.as_str()).collect()
    }

    #[test]
    fn config_map_and_secret_keys() {
        let cm = json!({"data": {"ok": "1", "a b": "2"}, "binaryData": {"ok": "AA=="}});
        let causes = create_causes("", "configmaps", &cm);
        assert_eq!(causes.len(), 2);
        assert_eq!(causes[0].field, "data[a b]");
        assert!(
            causes[0]
                .message
                .starts_with("data[a b]: Invalid value: \"a b\": a valid config key")
        );
        assert_eq!(
            causes[1].message,
            "data[ok]: Invalid value: \"ok\": duplicate of key present in binaryData"
        );
        let secret = json!({"data": {"..x": "AA=="}});
        assert_eq!(
            messages(&create_causes("", "secrets", &secret)),
            vec!["data[..x]: Invalid value: \"..x\": must not start with '..'"]
        );
    }

    #[test]
    fn base64_offsets_match_go() {
        for ok in ["", "AA==", "AAA=", "AAAA", "aGVsbG8=", "aGVs\nbG8="] {
            assert_eq!(base64_error_offset(ok), None, "{ok:?}");
        }
        assert_eq!(base64_error_offset("abc"), Some(0));
        assert_eq!(base64_error_offset("abcdab"), Some(4));
        assert_eq!(base64_error_offset("ab$d"), Some(2));
        assert_eq!(base64_error_offset("not base64!"), Some(3));
        assert_eq!(base64_error_offset("A==="), Some(1));
        assert_eq!(base64_error_offset("AA==AA=="), Some(4));
        assert_eq!(base64_error_offset("AA="), Some(3));
        assert_eq!(base64_error_offset("AA=A"), Some(2));
        assert_eq!(
            secret_data_decoding(&json!({"data": {"k": "abc"}})).as_deref(),
            Some(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0"
            )
        );
    }

    #[test]
    fn containers_need_a_label_name_and_an_image() {
        let pod = json!({"spec": {"containers": [{"name": "Bad_Name", "image": "x"}, {"image": ""}, {"name": "a", "image": "x"}, {"name": "a", "image": "x"}]}});
        let causes = create_causes("", "pods", &pod);
        assert_eq!(causes[0].field, "spec.containers[0].name");
        assert_eq!(causes[0].reason, "FieldValueInvalid");
        assert_eq!(
            messages(&causes[1..]),
            vec![
                "spec.containers[1].name: Required value",
                "spec.containers[1].image: Required value",
                "spec.containers[3].name: Duplicate value: \"a\"",
            ]
        );
    }

    #[test]
    fn rules_need_verbs() {
        let role = json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]});
        assert_eq!(
            messages(&create_causes("rbac.authorization.k8s.io", "roles", &role)),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].nonResourceURLs: Invalid value: []string{\"/x\"}: namespaced rules cannot apply to non-resource URLs",
            ]
        );
        assert!(
            create_causes(
                "rbac.authorization.k8s.io",
                "clusterroles",
                &json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}]})
            )
            .is_empty()
        );
    }

    #[test]
    fn immutable_fields() {
        let cur = json!({"type": "Opaque", "data": {}});
        let next = json!({"type": "kubernetes.io/tls", "data": {}});
        assert_eq!(
            messages(&update_causes("", "secrets", &cur, &next)),
            vec![
                "data[tls.crt]: Required value",
                "data[tls.key]: Required value",
                "type: Invalid value: \"kubernetes.io/tls\": field is immutable"
            ]
        );
        let rb = |name: &str| json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}});
        assert_eq!(
            messages(&update_causes(
                "rbac.authorization.k8s.io",
                "rolebindings",
                &rb("a"),
                &rb("b")
            )),
            vec![
                "roleRef: Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"ClusterRole\",\"Name\":\"b\"}: cannot change roleRef"
            ]
        );
        let locked = json!({"immutable": true, "data": {"a": "1"}});
        let changed = json!({"immutable": true, "data": {"a": "2"}});
        assert_eq!(update_causes("", "configmaps", &locked, &changed).len(), 1);
    }
}
