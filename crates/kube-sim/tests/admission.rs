//! Mutating admission webhooks served by the test over HTTPS: the patch lands; denials surface; failurePolicy
//! Fail vs Ignore when the webhook is down; selectors; service references through Service and Endpoints.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

struct Webhook {
    addr: std::net::SocketAddr,
    ca_pem: String,
    calls: Arc<AtomicUsize>,
    /// Every AdmissionReview request received.
    reviews: Arc<parking_lot::Mutex<Vec<Value>>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// An HTTPS webhook: adds a label, an env var and a volume, with a warning; denies pods labelled `deny=yes`.
async fn serve_webhook() -> Webhook {
    common::install_crypto();
    let ca = kube_sim::tls::Ca::generate("webhook-test-ca").expect("ca");
    let cert = ca
        .issue(
            "webhook",
            &[
                "127.0.0.1".into(),
                "localhost".into(),
                "hook.default.svc".into(),
            ],
        )
        .expect("cert");
    let cfg = kube_sim::tls::server_config(&cert).expect("tls");
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let calls = Arc::new(AtomicUsize::new(0));
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let counter = calls.clone();
    let reviews = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let received = reviews.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                _ = &mut stopped => return,
            };
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            let received = received.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        let received = received.clone();
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let review: Value =
                                serde_json::from_slice(&body).unwrap_or(Value::Null);
                            received.lock().push(review["request"].clone());
                            let uid = review["request"]["uid"].clone();
                            let pod = &review["request"]["object"];
                            let response = if pod["metadata"]["labels"]["deny"] == "yes" {
                                json!({"uid": uid, "allowed": false, "status": {"code": 403, "message": "pods labelled deny=yes are refused"}})
                            } else {
                                let mut ops = vec![];
                                if pod["metadata"]["labels"].is_null() {
                                    ops.push(json!({"op": "add", "path": "/metadata/labels", "value": {}}));
                                }
                                ops.push(json!({"op": "add", "path": "/metadata/labels/mutated-by", "value": "test-webhook"}));
                                ops.push(json!({"op": "add", "path": "/spec/containers/0/env", "value": [{"name": "INJECTED", "value": review["request"]["namespace"]}]}));
                                // A projected token volume as the workload-identity webhook writes it: no defaults.
                                let volume = json!({"name": "azure-identity-token", "projected": {"sources": [
                                    {"serviceAccountToken": {"path": "azure-identity-token", "audience": "api://AzureADTokenExchange"}},
                                    {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}});
                                if pod["spec"]["volumes"].is_array() {
                                    ops.push(json!({"op": "add", "path": "/spec/volumes/-", "value": volume}));
                                } else {
                                    ops.push(json!({"op": "add", "path": "/spec/volumes", "value": [volume]}));
                                }
                                let patch = base64::engine::general_purpose::STANDARD
                                    .encode(serde_json::to_vec(&ops).unwrap_or_default());
                                json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch, "warnings": ["mutated by the test webhook"]})
                            };
                            let out = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                                serde_json::to_vec(&out).unwrap_or_default(),
                            ))))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Webhook {
        addr,
        ca_pem: ca.cert_pem.clone(),
        calls,
        reviews,
        stop,
    }
}

fn webhook_config(name: &str, client_config: Value, failure_policy: &str, extra: Value) -> Value {
    let mut wh = json!({
        "name": format!("{name}.podid.test"),
        "clientConfig": client_config,
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "failurePolicy": failure_policy,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5
    });
    if let (Some(w), Some(e)) = (wh.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            w.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": name}, "webhooks": [wh]})
}

fn pod(name: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}})).expect("pod")
}

async fn create_config(sim: &common::Sim, cfg: Value) {
    let ar = kube::api::ApiResource {
        group: "admissionregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: "MutatingWebhookConfiguration".into(),
        plural: "mutatingwebhookconfigurations".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(sim.client.clone(), &ar);
    let obj: DynamicObject = serde_json::from_value(cfg).expect("dyn");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create webhook config");
}

async fn delete_config(sim: &common::Sim, name: &str) {
    let ar = kube::api::ApiResource {
        group: "admissionregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: "MutatingWebhookConfiguration".into(),
        plural: "mutatingwebhookconfigurations".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(sim.client.clone(), &ar);
    api.delete(name, &Default::default())
        .await
        .expect("delete webhook config");
}

fn code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected API error, got {other:?}"),
    }
}

#[tokio::test]
async fn mutating_webhook_patches_denies_and_obeys_failure_policy() {
    let sim = common::start().await;
    let hook = serve_webhook().await;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&hook.ca_pem);
    create_config(&sim, webhook_config("inject", json!({"url": format!("https://127.0.0.1:{}/mutate", hook.addr.port()), "caBundle": ca_b64}), "Fail", json!({}))).await;

    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), "default");
    let p = pods
        .create(&PostParams::default(), &pod("mutated", json!({"app": "x"})))
        .await
        .expect("create");
    assert_eq!(
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("mutated-by"))
            .map(String::as_str),
        Some("test-webhook")
    );
    let env = p
        .spec
        .as_ref()
        .and_then(|s| s.containers[0].env.clone())
        .unwrap_or_default();
    assert_eq!(
        env.first().map(|e| (e.name.as_str(), e.value.as_deref())),
        Some(("INJECTED", Some("default")))
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
    // The webhook's volume is defaulted as the apiserver defaults a patched object (kubectl describe reads these).
    let volumes = serde_json::to_value(&p.spec.as_ref().expect("spec").volumes).expect("json");
    let injected = &volumes.as_array().expect("volumes")[1..];
    assert_eq!(injected[0]["name"], "azure-identity-token");
    assert_eq!(injected[0]["projected"]["defaultMode"], 420);
    assert_eq!(
        injected[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
    assert_eq!(
        injected[0]["projected"]["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
        "v1"
    );

    let (c, msg) = code(
        pods.create(
            &PostParams::default(),
            &pod("refused", json!({"deny": "yes"})),
        )
        .await
        .expect_err("denied"),
    );
    assert_eq!(c, 403);
    assert!(msg.contains("admission webhook \"inject.podid.test\" denied the request: pods labelled deny=yes are refused"), "{msg}");

    // Webhook down: Fail rejects the pod, Ignore lets it through unmodified.
    let _ = hook.stop.send(());
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (c, msg) = code(
        pods.create(&PostParams::default(), &pod("while-down", json!({})))
            .await
            .expect_err("fail closed"),
    );
    assert_eq!(c, 500);
    assert!(
        msg.contains("failed calling webhook \"inject.podid.test\""),
        "{msg}"
    );
    delete_config(&sim, "inject").await;
    create_config(&sim, webhook_config("inject", json!({"url": format!("https://127.0.0.1:{}/mutate", hook.addr.port()), "caBundle": ca_b64}), "Ignore", json!({}))).await;
    let p = pods
        .create(&PostParams::default(), &pod("while-down", json!({})))
        .await
        .expect("fail open");
    assert!(
        !p.metadata
            .labels
            .unwrap_or_default()
            .contains_key("mutated-by")
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn webhook_selectors_and_service_references() {
    let sim = common::start().await;
    let hook = serve_webhook().await;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&hook.ca_pem);
    // A Service whose Endpoints point at the test server; the certificate is for hook.default.svc.
    let svcs: Api<DynamicObject> = Api::namespaced_with(
        sim.client.clone(),
        "default",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
    );
    let svc: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hook"}, "spec": {"ports": [{"port": 443, "targetPort": hook.addr.port()}]}})).expect("svc");
    svcs.create(&PostParams::default(), &svc)
        .await
        .expect("service");
    let eps: Api<DynamicObject> = Api::namespaced_with(
        sim.client.clone(),
        "default",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Endpoints>(&()),
    );
    let ep: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "hook"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": hook.addr.port()}]}]})).expect("ep");
    eps.create(&PostParams::default(), &ep)
        .await
        .expect("endpoints");
    create_config(
        &sim,
        webhook_config(
            "selective",
            json!({"service": {"namespace": "default", "name": "hook", "path": "/mutate"}, "caBundle": ca_b64}),
            "Fail",
            json!({"objectSelector": {"matchLabels": {"inject": "true"}}, "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["default"]}]}}),
        ),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), "default");
    let skipped = pods
        .create(
            &PostParams::default(),
            &pod("not-selected", json!({"inject": "false"})),
        )
        .await
        .expect("create");
    assert!(
        !skipped
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("mutated-by")
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 0);
    let selected = pods
        .create(
            &PostParams::default(),
            &pod("selected", json!({"inject": "true"})),
        )
        .await
        .expect("create");
    assert_eq!(
        selected
            .metadata
            .labels
            .unwrap_or_default()
            .get("mutated-by")
            .map(String::as_str),
        Some("test-webhook")
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn webhooks_run_after_the_builtin_plugins_and_their_warnings_reach_the_client() {
    let sim = common::start_http().await;
    let hook = serve_webhook().await;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&hook.ca_pem);
    let url = format!("https://127.0.0.1:{}/mutate", hook.addr.port());
    let mut cfg = webhook_config(
        "order",
        json!({"url": url, "caBundle": ca_b64}),
        "Fail",
        json!({}),
    );
    // The apiserver's defaults are filled in on create.
    cfg["webhooks"][0]
        .as_object_mut()
        .expect("webhook")
        .remove("timeoutSeconds");
    let (addr, token) = (sim.handle.addr, sim.handle.admin_token.clone());
    let path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
    let body = serde_json::to_vec(&cfg).expect("json");
    let (status, created) = common::raw(addr, &token, "POST", path, "application/json", body).await;
    assert_eq!(status, 201, "{created}");
    let wh = &created["webhooks"][0];
    assert_eq!(
        (
            wh["matchPolicy"].as_str(),
            wh["reinvocationPolicy"].as_str(),
            wh["timeoutSeconds"].as_i64()
        ),
        (Some("Equivalent"), Some("Never"), Some(10))
    );
    assert_eq!(
        (
            wh["objectSelector"].clone(),
            wh["rules"][0]["scope"].clone()
        ),
        (json!({}), json!("*"))
    );

    let pod_body = serde_json::to_vec(&pod("ordered", json!({"app": "x"}))).expect("json");
    let pods = "/api/v1/namespaces/default/pods";
    let (status, headers, created) =
        common::raw_with_headers(addr, &token, "POST", pods, "application/json", pod_body).await;
    assert_eq!(status, 201, "{created}");
    let warnings: Vec<&str> = headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(warnings, ["299 - \"mutated by the test webhook\""]);
    let review = hook.reviews.lock().last().cloned().expect("a review");
    let seen = &review["object"];
    let volumes = seen["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        volumes.iter().any(|v| v["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kube-api-access-"))),
        "the ServiceAccount plugin ran first: {seen}"
    );
    let tolerations: Vec<&str> = seen["spec"]["tolerations"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        tolerations,
        [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable"
        ]
    );
    assert!(
        ["uid", "creationTimestamp", "generation"]
            .iter()
            .all(|k| seen["metadata"].get(k).is_none())
            && seen["status"] == json!({}),
        "{seen}"
    );
    assert_eq!(review["userInfo"]["extra"], json!({}));
    // The stored pod has what the registry adds after admission.
    assert!(created["metadata"]["uid"].is_string());
    assert!(created["metadata"]["creationTimestamp"].is_string());
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(created["spec"]["tolerations"][0]["tolerationSeconds"], 300);

    // An unreachable webhook is named with the timeout the apiserver sends, in Go's words.
    let _ = hook.stop.send(());
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let pod_body = serde_json::to_vec(&pod("refused", json!({}))).expect("json");
    let (status, refused) =
        common::raw(addr, &token, "POST", pods, "application/json", pod_body).await;
    assert_eq!(status, 500, "{refused}");
    let message = refused["message"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("Post \"{url}?timeout=10s\"")),
        "{message}"
    );

    // An invalid configuration is refused with the apiserver's causes.
    let invalid = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "bad"},
        "webhooks": [{"name": "noname", "admissionReviewVersions": ["v1"], "sideEffects": "Unknown", "clientConfig": {"url": "http://127.0.0.1:1/"}}]});
    let (status, refused) = common::raw(
        addr,
        &token,
        "POST",
        path,
        "application/json",
        serde_json::to_vec(&invalid).expect("json"),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["details"]["causes"].as_array().map(Vec::len),
        Some(3),
        "{refused}"
    );
    sim.handle.shutdown().await;
}
