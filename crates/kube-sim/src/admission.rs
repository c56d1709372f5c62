//! Mutating admission on pod CREATE: the built-in plugins, then the webhooks.
//!
//! The apiserver's plugin order is kept: the ServiceAccount and DefaultTolerationSeconds plugins mutate the pod
//! first, so a webhook sees the `kube-api-access-*` volume and the default tolerations; it does not see what the
//! registry adds after admission (uid, status). Webhooks come from MutatingWebhookConfiguration objects, called in order of configuration name and then
//! webhook order, as the apiserver does. A webhook is called when its rules match (operation CREATE, group "",
//! version v1, resource pods, scope) and its namespaceSelector and objectSelector match. The call is a real
//! `admission.k8s.io/v1` AdmissionReview over HTTPS, trusting `caBundle`; `service` references resolve through
//! the Service and Endpoints objects (there is no service network in the simulator). A returned JSONPatch is
//! applied; a denial becomes the webhook's Status; a failed call obeys `failurePolicy` (default Fail).
//! Reinvocation (`reinvocationPolicy: IfNeeded`) is not implemented: each webhook runs once.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::Sim;
use crate::authn::User;
use crate::error::{ApiError, ApiResult};
use crate::resources::{ResKey, ResourceType};
use kube_sim_machinery::labels::LabelSelector;

/// The apiserver's default webhook timeout.
const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Largest admission response read.
const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether one webhook's rules cover pod CREATE.
pub fn rules_match_pod_create(webhook: &Value) -> bool {
    let Some(rules) = webhook.get("rules").and_then(Value::as_array) else {
        return false;
    };
    rules.iter().any(|r| {
        let ops = strs(r.get("operations"));
        let groups = strs(r.get("apiGroups"));
        let versions = strs(r.get("apiVersions"));
        let resources = strs(r.get("resources"));
        let scope = r.get("scope").and_then(Value::as_str).unwrap_or("*");
        ops.iter().any(|o| *o == "CREATE" || *o == "*")
            && groups.iter().any(|g| g.is_empty() || *g == "*")
            && versions.iter().any(|v| *v == "v1" || *v == "*")
            && resources
                .iter()
                .any(|r| *r == "pods" || *r == "*" || *r == "*/*")
            && matches!(scope, "*" | "Namespaced")
    })
}

/// Whether a selector (LabelSelector JSON) matches labels; an invalid selector matches nothing.
pub fn selector_matches(
    sel: Option<&Value>,
    labels: Option<&serde_json::Map<String, Value>>,
) -> bool {
    match sel {
        None | Some(Value::Null) => true,
        Some(s) => LabelSelector::from_json(s)
            .map(|s| s.matches(labels))
            .unwrap_or(false),
    }
}

/// A pod after mutating admission, and the webhooks' warnings for the client's `Warning` headers.
pub struct AdmittedPod {
    /// The (possibly patched) pod.
    pub pod: Value,
    /// Each webhook's `response.warnings`, in call order.
    pub warnings: Vec<String>,
}

/// Admit a prepared pod: the built-in mutating plugins, the webhooks, then the decoding defaults and validation
/// of the result (`registry::defaults::after_admission`).
pub async fn admit_pod(
    sim: &Sim,
    rt: &ResourceType,
    user: &User,
    pod: Value,
    dry_run: bool,
) -> ApiResult<AdmittedPod> {
    let mut admitted = admit_pod_create_with_warnings(sim, user, pod, dry_run).await?;
    crate::registry::defaults::after_admission(sim, rt, &mut admitted.pod)?;
    Ok(admitted)
}

/// The built-in mutating plugins and the webhooks for a pod being created; returns the (possibly patched) pod.
pub async fn admit_pod_create(
    sim: &Sim,
    user: &User,
    pod: Value,
    dry_run: bool,
) -> ApiResult<Value> {
    Ok(admit_pod_create_with_warnings(sim, user, pod, dry_run)
        .await?
        .pod)
}

/// The metadata the registry sets on a new object after admission (`BeforeCreate`), which webhooks do not see.
const REGISTRY_METADATA: [&str; 3] = ["uid", "creationTimestamp", "generation"];

/// What the registry sets on a new pod after admission, taken out of the object the webhooks see and put back.
fn take_registry_fields(pod: &mut Value) -> (Vec<(&'static str, Value)>, Option<Value>) {
    let mut taken = Vec::new();
    if let Some(m) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in REGISTRY_METADATA {
            if let Some(v) = m.remove(key) {
                taken.push((key, v));
            }
        }
    }
    // The webhook sees the empty status a decoded request has (Go writes the struct as `{}`).
    let status = pod
        .as_object_mut()
        .and_then(|o| o.insert("status".into(), json!({})));
    (taken, status)
}

async fn admit_pod_create_with_warnings(
    sim: &Sim,
    user: &User,
    mut pod: Value,
    dry_run: bool,
) -> ApiResult<AdmittedPod> {
    crate::registry::defaults::builtin_pod_admission(sim, &mut pod)?;
    let (taken, status) = take_registry_fields(&mut pod);
    let (mut pod, warnings) = call_webhooks(sim, user, pod, dry_run).await?;
    if let Some(m) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        for (key, v) in taken {
            m.insert(key.into(), v);
        }
    }
    if let (Some(status), Some(o)) = (status, pod.as_object_mut()) {
        o.insert("status".into(), status);
    }
    Ok(AdmittedPod { pod, warnings })
}

async fn call_webhooks(
    sim: &Sim,
    user: &User,
    mut pod: Value,
    dry_run: bool,
) -> ApiResult<(Value, Vec<String>)> {
    let mut warnings = Vec::new();
    let key = ResKey::new(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    );
    let (configs, _, _) = sim.store.list(&key, None, None, None, None, &|_| true);
    if configs.is_empty() {
        return Ok((pod, warnings));
    }
    let ns = crate::meta::str_at(&pod, "/metadata/namespace").to_string();
    let ns_obj = sim.store.get(&ResKey::new("", "namespaces"), "", &ns);
    let ns_labels = ns_obj
        .as_ref()
        .and_then(|n| n.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .cloned();
    for cfg in configs {
        for wh in cfg
            .get("webhooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if !rules_match_pod_create(&wh) {
                continue;
            }
            if !selector_matches(wh.get("namespaceSelector"), ns_labels.as_ref()) {
                continue;
            }
            let pod_labels = pod
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned();
            if !selector_matches(wh.get("objectSelector"), pod_labels.as_ref()) {
                continue;
            }
            let name = wh
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let ignore = wh.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
            if dry_run
                && !matches!(
                    wh.get("sideEffects").and_then(Value::as_str),
                    Some("None" | "NoneOnDryRun")
                )
            {
                return Err(ApiError::bad_request(format!(
                    "admission webhook \"{name}\" does not support dry run"
                )));
            }
            match call(sim, &wh, user, &pod, &ns, dry_run).await {
                Ok(Outcome::Allowed(patch, more)) => {
                    warnings.extend(more);
                    let Some(patch) = patch else { continue };
                    pod = kube_sim_machinery::patch::json_patch(&pod, &patch).map_err(|e| {
                        ApiError::internal(format!(
                            "admission webhook \"{name}\" returned an invalid patch: {e}"
                        ))
                    })?;
                }
                Ok(Outcome::Denied(code, msg)) => {
                    let mut e = ApiError::forbidden(format!(
                        "admission webhook \"{name}\" denied the request: {msg}"
                    ));
                    e.code = code;
                    if code == 400 {
                        e.reason = "BadRequest";
                    } else if code != 403 {
                        e.reason = "";
                    }
                    return Err(e);
                }
                Err(why) => {
                    if ignore {
                        tracing::warn!(webhook = %name, error = %why, "failed calling webhook, failing open");
                        continue;
                    }
                    return Err(ApiError::webhook_failed(format!(
                        "Internal error occurred: failed calling webhook \"{name}\": {why}"
                    )));
                }
            }
        }
    }
    Ok((pod, warnings))
}

enum Outcome {
    /// Allowed, with an optional JSON patch and the webhook's warnings.
    Allowed(Option<Value>, Vec<String>),
    Denied(u16, String),
}

fn resolve_url(sim: &Sim, cc: &Value) -> Result<(String, String), String> {
    if let Some(url) = cc.get("url").and_then(Value::as_str) {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid webhook url {url:?}: {e}"))?;
        let host = uri.host().ok_or("webhook url has no host")?.to_string();
        return Ok((url.to_string(), host));
    }
    let svc = cc
        .get("service")
        .ok_or("clientConfig needs url or service")?;
    let ns = svc
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = svc
        .get("name")
        .and_then(Value::as_str)
        .ok_or("service.name is required")?;
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    let path = svc.get("path").and_then(Value::as_str).unwrap_or("/");
    let mut target = port;
    if let Some(s) = sim.store.get(&ResKey::new("", "services"), ns, name)
        && let Some(p) = s
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .and_then(|ps| ps.iter().find(|p| p["port"].as_i64() == Some(port)))
    {
        target = p.get("targetPort").and_then(Value::as_i64).unwrap_or(port);
    }
    let ep = sim
        .store
        .get(&ResKey::new("", "endpoints"), ns, name)
        .ok_or_else(|| format!("service \"{ns}/{name}\" has no endpoints"))?;
    let subsets = ep
        .get("subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for ss in subsets {
        let ip = ss.pointer("/addresses/0/ip").and_then(Value::as_str);
        let ports = ss
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let port = ports
            .iter()
            .filter_map(|p| p["port"].as_i64())
            .find(|p| *p == target)
            .or_else(|| ports.first().and_then(|p| p["port"].as_i64()));
        if let (Some(ip), Some(port)) = (ip, port) {
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            return Ok((
                format!("https://{host}:{port}{path}"),
                format!("{name}.{ns}.svc"),
            ));
        }
    }
    Err(format!("service \"{ns}/{name}\" has no ready endpoints"))
}

async fn call(
    sim: &Sim,
    wh: &Value,
    user: &User,
    pod: &Value,
    ns: &str,
    dry_run: bool,
) -> Result<Outcome, String> {
    let cc = wh
        .get("clientConfig")
        .ok_or("webhook has no clientConfig")?;
    let (url, server_name) = resolve_url(sim, cc)?;
    let uid = uuid::Uuid::new_v4().to_string();
    let mut user_info = user.to_json();
    if user_info.get("extra").is_none() {
        user_info["extra"] = json!({});
    }
    let mut options = json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"});
    if dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod.pointer("/metadata/name").cloned().unwrap_or(json!("")),
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": user_info,
            "object": pod,
            "oldObject": null,
            "dryRun": dry_run,
            "options": options
        }
    });
    let timeout = wh
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
        .clamp(1, 30);
    let ca = cc.get("caBundle").and_then(Value::as_str).map(|b| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default()
    });
    // The apiserver's client sends (and its errors name) the timeout as a query parameter.
    let url = format!(
        "{url}{}timeout={timeout}s",
        if url.contains('?') { '&' } else { '?' }
    );
    let body = serde_json::to_vec(&review).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(
        Duration::from_secs(timeout),
        post(&url, &server_name, ca.as_deref(), body),
    )
    .await
    .map_err(|_| format!("failed to call webhook: Post \"{url}\": context deadline exceeded"))??;
    let v: Value = serde_json::from_slice(&resp)
        .map_err(|e| format!("received invalid webhook response: {e}"))?;
    let r = v.get("response").ok_or("webhook response was absent")?;
    if r.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
        return Err(format!(
            "expected response.uid=\"{uid}\", got {:?}",
            r.get("uid")
        ));
    }
    if !r.get("allowed").and_then(Value::as_bool).unwrap_or(false) {
        let code = r
            .pointer("/status/code")
            .and_then(Value::as_u64)
            .filter(|c| (400..600).contains(c))
            .unwrap_or(400) as u16;
        let msg = crate::meta::str_at(r, "/status/message").to_string();
        return Ok(Outcome::Denied(code, msg));
    }
    let warnings = strs(r.get("warnings"))
        .into_iter()
        .map(str::to_string)
        .collect();
    match (
        r.get("patchType").and_then(Value::as_str),
        r.get("patch").and_then(Value::as_str),
    ) {
        (Some("JSONPatch"), Some(p)) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| format!("patch is not base64: {e}"))?;
            let patch: Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("patch is not JSON: {e}"))?;
            Ok(Outcome::Allowed(Some(patch), warnings))
        }
        (Some(other), Some(_)) => Err(format!("unsupported patch type {other:?}")),
        (_, None) => Ok(Outcome::Allowed(None, warnings)),
        (None, Some(_)) => Err("patch given without patchType".into()),
    }
}

async fn post(
    url: &str,
    server_name: &str,
    ca: Option<&[u8]>,
    body: Vec<u8>,
) -> Result<Bytes, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid url {url:?}: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    if !https {
        return Err(format!(
            "failed to call webhook: Post \"{url}\": webhooks must use https"
        ));
    }
    let host = uri
        .host()
        .ok_or("url has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let addr = format!(
        "{}:{port}",
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        }
    );
    let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| {
        format!(
            "failed to call webhook: Post \"{url}\": dial tcp {addr}: connect: {}",
            go_connect_error(&e)
        )
    })?;
    let cfg = match ca {
        Some(pem) if !pem.is_empty() => {
            crate::tls::client_config(pem).map_err(|e| e.to_string())?
        }
        _ => {
            return Err(format!(
                "failed to call webhook: Post \"{url}\": tls: no caBundle to verify the webhook"
            ));
        }
    };
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| format!("bad server name: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("failed to call webhook: Post \"{url}\": tls: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("failed to call webhook: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let req = http::Request::post(path)
        .header("host", format!("{server_name}:{port}"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("failed to call webhook: Post \"{url}\": {e}"))?;
    let status = resp.status();
    let bytes = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| format!("failed to read webhook response: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "failed to call webhook: the server responded with the status code {}",
            status.as_u16()
        ));
    }
    Ok(bytes)
}

/// A connection error as Go's net package words it (`connection refused`), not Rust's
/// `Connection refused (os error 111)`.
fn go_connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let wh = json!({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]});
        assert!(rules_match_pod_create(&wh));
        let upd = json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]});
        assert!(!rules_match_pod_create(&upd));
        let star = json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"], "scope": "*"}]});
        assert!(rules_match_pod_create(&star));
        let cluster = json!({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Cluster"}]});
        assert!(!rules_match_pod_create(&cluster));
    }
}
