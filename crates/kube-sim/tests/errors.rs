//! Every bad input gets its Status, and the server keeps answering normally afterwards.

mod common;

use serde_json::json;

/// (method, path, content type, body, expected code, expected reason)
type Case = (
    &'static str,
    String,
    &'static str,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_inputs_get_a_status_and_the_server_keeps_serving() {
    let sim = common::start_http().await;
    let addr = sim.handle.addr;
    let t = sim.handle.admin_token.clone();
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |name: &str| {
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}})).expect("json")
    };

    // (method, path, content type, body, expected code, expected reason)
    let cases: Vec<Case> = vec![
        ("POST", cms.into(), "application/json", b"{not json".to_vec(), 400, "BadRequest"),
        ("POST", cms.into(), "application/yaml", b"a: [unclosed".to_vec(), 400, "BadRequest"),
        ("POST", cms.into(), "application/json", b"[1,2,3]".to_vec(), 400, "BadRequest"),
        ("POST", cms.into(), "application/json", Vec::new(), 400, "BadRequest"),
        ("POST", cms.into(), "text/csv", cm("x"), 415, "UnsupportedMediaType"),
        ("GET", "/api/v1/namespaces/default/widgets".into(), "", Vec::new(), 404, "NotFound"),
        ("GET", "/apis/nope.example.com/v1/things".into(), "", Vec::new(), 404, "NotFound"),
        ("POST", cms.into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})).expect("json"), 400, "BadRequest"),
        ("POST", cms.into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "s"}})).expect("json"), 400, "BadRequest"),
        ("POST", cms.into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s", "namespace": "other"}})).expect("json"), 400, "BadRequest"),
        ("POST", cms.into(), "application/json", vec![b' '; 4 * 1024 * 1024], 413, "RequestEntityTooLarge"),
        ("GET", format!("{cms}?labelSelector=a%20in%20(b"), "", Vec::new(), 400, "BadRequest"),
        ("GET", format!("{cms}?labelSelector=!!"), "", Vec::new(), 400, "BadRequest"),
        ("GET", format!("{cms}?fieldSelector=spec.nodeName%3Dx"), "", Vec::new(), 400, "BadRequest"),
        ("GET", format!("{cms}?continue=not-base64!"), "", Vec::new(), 400, "BadRequest"),
        ("GET", format!("{cms}?limit=abc"), "", Vec::new(), 400, "BadRequest"),
        ("POST", cms.into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})).expect("json"), 422, "Invalid"),
        ("POST", cms.into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "labels": {"-bad": "x"}}})).expect("json"), 422, "Invalid"),
        ("POST", "/api/v1/namespaces/missing/configmaps".into(), "application/json", cm("x"), 404, "NotFound"),
        ("PUT", format!("{cms}/absent"), "application/json", cm("absent"), 404, "NotFound"),
        ("PATCH", format!("{cms}/absent"), "application/merge-patch+json", b"{}".to_vec(), 404, "NotFound"),
        ("PATCH", format!("{cms}/absent"), "application/json", b"{}".to_vec(), 415, "UnsupportedMediaType"),
        ("PATCH", format!("{cms}/absent"), "application/apply-patch+yaml", b"kind: ConfigMap".to_vec(), 422, "Invalid"),
        ("DELETE", format!("{cms}/absent"), "", Vec::new(), 404, "NotFound"),
        ("PUT", cms.into(), "application/json", cm("x"), 405, "MethodNotAllowed"),
        ("POST", "/api/v1/namespaces/default/pods".into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})).expect("json"), 422, "Invalid"),
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews".into(), "application/json", serde_json::to_vec(&json!({"spec": {}})).expect("json"), 400, "BadRequest"),
        ("GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=notanumber".into(), "", Vec::new(), 400, "BadRequest"),
        ("POST", "/api/v1/namespaces/default/secrets".into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": "x", "stringData": {"a": "b"}})).expect("json"), 422, "Invalid"),
        ("POST", "/api/v1/namespaces".into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": "x"})).expect("json"), 422, "Invalid"),
        ("POST", "/api/v1/namespaces/default/pods".into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": ["x"]}})).expect("json"), 422, "Invalid"),
        ("POST", "/api/v1/namespaces/default/pods".into(), "application/json", serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}],
            "volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "cm", "items": [{"key": "k", "path": "../../../../tmp/escape"}]}}]}}]}})).expect("json"), 422, "Invalid"),
        ("POST", "/api/v1/namespaces/default/serviceaccounts/default/token".into(), "application/json", serde_json::to_vec(&json!({"spec": "x"})).expect("json"), 201, ""),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let (got, status) = common::raw(addr, &t, method, &path, ct, body).await;
        assert_eq!(got, code, "{method} {path} ({ct}): {status}");
        if code < 300 {
            continue;
        }
        assert_eq!(
            status["kind"], "Status",
            "{method} {path}: not a Status: {status}"
        );
        assert_eq!(status["reason"], reason, "{method} {path}: {status}");
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {path}: empty message"
        );
        // The server answers the next request normally.
        let (ok, _) = common::raw(
            addr,
            &t,
            "GET",
            "/api/v1/namespaces/default",
            "",
            Vec::new(),
        )
        .await;
        assert_eq!(ok, 200, "server stopped answering after {method} {path}");
    }

    // Stale update: 409 Conflict.
    let (c, _) = common::raw(addr, &t, "POST", cms, "application/json", cm("c1")).await;
    assert_eq!(c, 201);
    let stale = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "resourceVersion": "1"}})).expect("json");
    let (code, st) = common::raw(
        addr,
        &t,
        "PUT",
        &format!("{cms}/c1"),
        "application/json",
        stale,
    )
    .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (409, Some("Conflict")),
        "{st}"
    );
    let (code, st) = common::raw(addr, &t, "POST", cms, "application/json", cm("c1")).await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (409, Some("AlreadyExists")),
        "{st}"
    );

    // A watch from a compacted resourceVersion is established and its first event is a 410 Status.
    sim.handle.sim.store.compact();
    let (code, event) = common::raw(
        addr,
        &t,
        "GET",
        &format!("{cms}?watch=1&resourceVersion=1&timeoutSeconds=1"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(event["type"], "ERROR", "{event}");
    assert_eq!(event["object"]["code"], 410, "{event}");
    assert_eq!(event["object"]["reason"], "Expired", "{event}");

    // Forbidden: a service-account token without RBAC grants.
    let sa_token = {
        let body = serde_json::to_vec(&json!({"spec": {}})).expect("json");
        let (c, tr) = common::raw(
            addr,
            &t,
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/default/token",
            "application/json",
            body,
        )
        .await;
        assert_eq!(c, 201, "{tr}");
        tr["status"]["token"].as_str().expect("token").to_string()
    };
    let (code, st) = common::raw(addr, &sa_token, "GET", cms, "", Vec::new()).await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (403, Some("Forbidden")),
        "{st}"
    );
    assert_eq!(
        st["message"],
        "configmaps is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );

    // No token / bad token.
    let (code, st) = common::raw(addr, "wrong-token", "GET", cms, "", Vec::new()).await;
    assert_eq!((code, st["reason"].as_str()), (401, Some("Unauthorized")));

    // Not HTTP at all: the connection is dropped, the server lives on.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"\x16\x03\x01garbage\r\n\r\n")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    }
    let (ok, _) = common::raw(addr, &t, "GET", "/version", "", Vec::new()).await;
    assert_eq!(ok, 200);
    sim.handle.shutdown().await;
}
