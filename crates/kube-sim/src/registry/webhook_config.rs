//! MutatingWebhookConfiguration and ValidatingWebhookConfiguration: the apiserver's defaults
//! (`SetDefaults_MutatingWebhook`, `SetDefaults_Rule`, `SetDefaults_ServiceReference`) and validation
//! (`ValidateMutatingWebhookConfiguration`), with its causes and wording.
//!
//! Pure functions on JSON objects.

use serde_json::{Value, json};

use super::validate::{invalid, not_supported, required};
use crate::error::Cause;
use kube_sim_machinery::gofmt::go_quote;

/// The apiserver's default webhook timeout, in seconds.
const DEFAULT_TIMEOUT_SECONDS: i64 = 10;
/// The longest timeout a webhook may ask for, in seconds.
const MAX_TIMEOUT_SECONDS: i64 = 30;
/// The port of a `clientConfig.service` reference when none is given.
const DEFAULT_SERVICE_PORT: i64 = 443;
/// AdmissionReview versions the apiserver speaks.
const REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];
/// `sideEffects` values accepted by admissionregistration.k8s.io/v1.
const SIDE_EFFECTS: [&str; 2] = ["None", "NoneOnDryRun"];

/// Whether a resource of admissionregistration.k8s.io is a webhook configuration, and if so whether mutating.
pub fn kind_of(group: &str, resource: &str) -> Option<bool> {
    match (group, resource) {
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations") => Some(true),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => Some(false),
        _ => None,
    }
}

fn default_if_unset(obj: &mut Value, key: &str, value: Value) {
    if obj.is_object() && obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

/// Fill the defaults of every webhook of a configuration.
pub fn defaults(mutating: bool, obj: &mut Value) {
    let Some(hooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return;
    };
    for hook in hooks.iter_mut().filter(|h| h.is_object()) {
        default_if_unset(hook, "failurePolicy", json!("Fail"));
        default_if_unset(hook, "matchPolicy", json!("Equivalent"));
        default_if_unset(hook, "namespaceSelector", json!({}));
        default_if_unset(hook, "objectSelector", json!({}));
        default_if_unset(hook, "timeoutSeconds", json!(DEFAULT_TIMEOUT_SECONDS));
        if mutating {
            default_if_unset(hook, "reinvocationPolicy", json!("Never"));
        }
        if let Some(rules) = hook.get_mut("rules").and_then(Value::as_array_mut) {
            for rule in rules.iter_mut() {
                default_if_unset(rule, "scope", json!("*"));
            }
        }
        if let Some(svc) = hook.pointer_mut("/clientConfig/service") {
            default_if_unset(svc, "port", json!(DEFAULT_SERVICE_PORT));
        }
    }
}

/// `IsFullyQualifiedName`: a DNS subdomain of at least three segments.
fn name_causes(field: &str, name: &str) -> Vec<Cause> {
    if name.is_empty() {
        return vec![required(field, "")];
    }
    let errors = kube_sim_machinery::validation::is_dns1123_subdomain(name);
    if !errors.is_empty() {
        return errors
            .iter()
            .map(|e| invalid(field, &go_quote(name), e))
            .collect();
    }
    if name.split('.').count() < 3 {
        return vec![invalid(
            field,
            &go_quote(name),
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

/// `ValidateWebhookURL(path, url, forceHttps=true)`.
fn url_causes(field: &str, url: &str) -> Vec<Cause> {
    const FORM: &str = "; desired format: https://host[/path]";
    let Ok(uri) = url.parse::<http::Uri>() else {
        return vec![invalid(
            field,
            &go_quote(url),
            &format!("url must be a valid URL{FORM}"),
        )];
    };
    let mut causes = Vec::new();
    let scheme = uri.scheme_str().unwrap_or("");
    if scheme != "https" {
        causes.push(invalid(
            field,
            &go_quote(scheme),
            &format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        causes.push(invalid(
            field,
            &go_quote(host),
            &format!("host must be specified{FORM}"),
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        causes.push(invalid(
            field,
            &go_quote(url),
            &format!("user information is not permitted in the URL{FORM}"),
        ));
    }
    if uri.query().is_some() {
        causes.push(invalid(
            field,
            &go_quote(url),
            &format!("query parameters are not permitted in the URL{FORM}"),
        ));
    }
    causes
}

fn client_config_causes(field: &str, cc: Option<&Value>) -> Vec<Cause> {
    let url = cc.and_then(|c| c.get("url")).and_then(Value::as_str);
    let service = cc.and_then(|c| c.get("service")).filter(|s| !s.is_null());
    match (url, service) {
        (Some(url), None) => url_causes(&format!("{field}.url"), url),
        (None, Some(svc)) => {
            let mut causes = Vec::new();
            for key in ["name", "namespace"] {
                if svc
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    causes.push(required(&format!("{field}.service.{key}"), ""));
                }
            }
            causes
        }
        _ => vec![required(field, "exactly one of url or service is required")],
    }
}

/// The causes of one webhook, in the apiserver's order.
fn webhook_causes(mutating: bool, field: &str, hook: &Value) -> Vec<Cause> {
    let mut causes =
        client_config_causes(&format!("{field}.clientConfig"), hook.get("clientConfig"));
    let name = hook.get("name").and_then(Value::as_str).unwrap_or("");
    causes.extend(name_causes(&format!("{field}.name"), name));
    let enum_field = |causes: &mut Vec<Cause>, key: &str, supported: &[&str]| {
        if let Some(v) = hook.get(key).and_then(Value::as_str)
            && !supported.contains(&v)
        {
            causes.push(not_supported(&format!("{field}.{key}"), v, supported));
        }
    };
    enum_field(&mut causes, "failurePolicy", &["Fail", "Ignore"]);
    enum_field(&mut causes, "matchPolicy", &["Equivalent", "Exact"]);
    match hook.get("sideEffects").and_then(Value::as_str) {
        None => causes.push(required(
            &format!("{field}.sideEffects"),
            &format!("must specify one of {}", SIDE_EFFECTS.join(", ")),
        )),
        Some(v) if !SIDE_EFFECTS.contains(&v) => {
            causes.push(not_supported(
                &format!("{field}.sideEffects"),
                v,
                &SIDE_EFFECTS,
            ));
        }
        Some(_) => {}
    }
    if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64)
        && !(1..=MAX_TIMEOUT_SECONDS).contains(&t)
    {
        causes.push(invalid(
            &format!("{field}.timeoutSeconds"),
            &t.to_string(),
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    if mutating {
        enum_field(&mut causes, "reinvocationPolicy", &["IfNeeded", "Never"]);
    }
    let versions: Vec<&str> = hook
        .get("admissionReviewVersions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let versions_field = format!("{field}.admissionReviewVersions");
    if versions.is_empty() {
        causes.push(required(
            &versions_field,
            &format!("must specify one of {}", REVIEW_VERSIONS.join(", ")),
        ));
    } else if !versions.iter().any(|v| REVIEW_VERSIONS.contains(v)) {
        let shown = versions
            .iter()
            .map(|v| go_quote(v))
            .collect::<Vec<_>>()
            .join(", ");
        causes.push(invalid(
            &versions_field,
            &format!("[]string{{{shown}}}"),
            &format!(
                "must include at least one of {}",
                REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    causes
}

/// The causes of a whole configuration: each webhook's, and duplicate webhook names.
pub fn causes(mutating: bool, obj: &Value) -> Vec<Cause> {
    let hooks = obj
        .get("webhooks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut causes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, hook) in hooks.iter().enumerate() {
        let field = format!("webhooks[{i}]");
        causes.extend(webhook_causes(mutating, &field, hook));
        let name = hook.get("name").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() && !seen.insert(name.to_string()) {
            causes.push(Cause {
                reason: "FieldValueDuplicate".into(),
                message: format!("{field}.name: Duplicate value: {}", go_quote(name)),
                field: format!("{field}.name"),
            });
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_apiservers() {
        let mut cfg = json!({"webhooks": [{"name": "a.b.c", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "s", "namespace": "n"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]});
        defaults(true, &mut cfg);
        let hook = &cfg["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["matchPolicy"], "Equivalent");
        assert_eq!(hook["reinvocationPolicy"], "Never");
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["namespaceSelector"], json!({}));
        assert_eq!(hook["objectSelector"], json!({}));
        assert_eq!(hook["rules"][0]["scope"], "*");
        assert_eq!(hook["clientConfig"]["service"]["port"], 443);
        assert!(causes(true, &cfg).is_empty());
        let mut validating = json!({"webhooks": [{"name": "a.b.c"}]});
        defaults(false, &mut validating);
        assert!(
            validating["webhooks"][0]
                .get("reinvocationPolicy")
                .is_none()
        );
    }

    #[test]
    fn invalid_configuration_is_reported_as_the_apiserver_does() {
        let cfg = json!({"webhooks": [{"name": "noname", "admissionReviewVersions": ["v1"], "sideEffects": "Unknown",
            "clientConfig": {"url": "http://127.0.0.1:1/"}}]});
        let messages: Vec<String> = causes(true, &cfg).into_iter().map(|c| c.message).collect();
        assert_eq!(
            messages,
            [
                "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "webhooks[0].name: Invalid value: \"noname\": should be a domain with at least three segments separated by dots",
                "webhooks[0].sideEffects: Unsupported value: \"Unknown\": supported values: \"None\", \"NoneOnDryRun\"",
            ]
        );
        let bare = json!({"webhooks": [{"name": "a.b.c", "clientConfig": {}}]});
        let messages: Vec<String> = causes(true, &bare).into_iter().map(|c| c.message).collect();
        assert_eq!(
            messages,
            [
                "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            ]
        );
    }
}
