//! The control API: world replacement (with IMDS listeners following), counters, the redacted request log,
//! fault injection, settings, and bad input everywhere.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_replace_adds_and_removes_nodes() {
    let sim = start().await;
    let r = sim.control("GET", "/world", None).await;
    assert_eq!(r.status, 200);
    let mut w = r.json();
    assert!(
        w["virtualMachines"]
            .as_array()
            .is_some_and(|a| a.len() == 3)
    );
    w["virtualMachines"] = json!([{"name": "vm-new", "subscriptionId": SUB, "resourceGroup": "rg-nodes", "identity": {"type": "SystemAssigned"}}]);
    w["roleAssignments"] = json!([]);
    let r = sim.control("PUT", "/world", Some(w)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json()["endpoints"].clone();
    assert!(
        e["imds"]["vm-new"].is_string() && e["imds"]["vm-sys"].is_null(),
        "{e}"
    );
    let r = sim
        .imds_token(
            "vm-new",
            "api-version=2018-02-01&resource=https://vault.azure.net",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let files =
        std::fs::read_to_string(sim.dir.path().join("endpoints.json")).expect("endpoints.json");
    assert!(files.contains("vm-new"));
    assert!(sim.dir.path().join("ca.crt").exists());
    // YAML works; the sim section and invalid worlds do not.
    let yaml = format!(
        "tenants: [{{id: {TENANT}}}]\nsubscriptions: [{{id: {SUB}}}]\nvirtualMachines: [{{name: y1, resourceGroup: rg}}]\n"
    );
    let r = send(
        &format!("{}/world", sim.handle.control_url),
        "PUT",
        &[("content-type", "application/yaml")],
        yaml.into_bytes(),
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(sim.handle.imds_url("y1").is_some());
    for (ct, body) in [
        ("application/json", b"{nope".to_vec()),
        ("application/json", br#"{"sim": {}}"#.to_vec()),
        ("application/json", br#"{"virtualMachines": [{"name": "x", "identity": {"userAssignedIdentities": ["ghost"]}}]}"#.to_vec()),
        ("application/json", br#"{"unknownKey": 1}"#.to_vec()),
        ("application/yaml", b"tenants: [".to_vec()),
        ("application/json", Vec::new()),
    ] {
        let r = send(&format!("{}/world", sim.handle.control_url), "PUT", &[("content-type", ct)], body.clone(), sim.ca()).await;
        assert_eq!(r.status, 400, "{}: {}", String::from_utf8_lossy(&body), r.text());
        assert!(r.json()["error"]["code"].is_string());
    }
    let r = sim.control("POST", "/world", None).await;
    assert_eq!(r.status, 405);
    let r = sim.control("GET", "/nothing", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_redacted_log() {
    let sim = start().await;
    for _ in 0..3 {
        sim.imds_token(
            "vm-sys",
            "api-version=2018-02-01&resource=https://vault.azure.net",
        )
        .await;
    }
    sim.imds_token(
        "vm-none",
        "api-version=2018-02-01&resource=https://vault.azure.net",
    )
    .await;
    let token = sim
        .secret_token(
            "controller",
            CONTROLLER_SECRET,
            "https://vault.azure.net/.default",
        )
        .await;
    let bad = sim
        .entra_post(&format!("/{TENANT}/oauth2/v2.0/token"), "grant_type=client_credentials&client_id=x&client_secret=very-secret-value&client_assertion=eyJhbGciOi.assertion.sig&scope=a%2F.default")
        .await;
    assert_eq!(bad.aadsts(), Some(90023));
    let c = sim.control("GET", "/counters", None).await.json();
    assert_eq!(c["imds"]["total"], json!(4));
    assert_eq!(c["imds"]["byStatus"]["200"], json!(3));
    assert_eq!(c["imds"]["byStatus"]["400"], json!(1));
    assert_eq!(c["entra"]["total"], json!(2));
    let log = sim.control("GET", "/requests?family=entra", None).await;
    assert_eq!(log.status, 200);
    let text = log.text();
    for secret in [
        CONTROLLER_SECRET,
        "very-secret-value",
        "eyJhbGciOi.assertion.sig",
        token.as_str(),
    ] {
        assert!(!text.contains(secret), "the log leaks {secret}");
    }
    let items = log.json()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    assert!(text.contains("[REDACTED]"));
    assert_eq!(items[1]["note"], json!("AADSTS90023"));
    assert_eq!(items[0]["status"], json!(200));
    let all = sim.control("GET", "/requests?limit=2", None).await.json();
    assert_eq!(all["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        sim.control("GET", "/requests?family=nope", None)
            .await
            .status,
        400
    );
    assert_eq!(
        sim.control("GET", "/requests?limit=x", None).await.status,
        400
    );
    sim.control("DELETE", "/counters", None).await;
    sim.control("DELETE", "/requests", None).await;
    assert_eq!(
        sim.control("GET", "/counters", None).await.json()["imds"]["total"],
        json!(0)
    );
    assert_eq!(
        sim.control("GET", "/requests", None).await.json()["items"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults() {
    let sim = start().await;
    let q = "api-version=2018-02-01&resource=https://vault.azure.net";
    // 429 with Retry-After, once.
    let r = sim
        .control(
            "PUT",
            "/faults/imds",
            Some(json!({"status": 429, "retryAfter": 7, "remaining": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = sim.imds_token("vm-sys", q).await;
    assert_eq!(
        (r.status, r.header("retry-after")),
        (429, Some("7".to_string()))
    );
    assert_eq!(sim.imds_token("vm-sys", q).await.status, 200);
    // 503 on Entra, in Entra's error shape, until removed.
    sim.control("PUT", "/faults/entra", Some(json!({"status": 503})))
        .await;
    let r = sim
        .entra_post(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], json!("temporarily_unavailable"));
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(sim.control("GET", "/faults", None).await.json()["entra"].is_object());
    sim.control("DELETE", "/faults/entra", None).await;
    assert_eq!(
        sim.entra_post(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            "grant_type=client_credentials"
        )
        .await
        .status,
        400
    );
    // 500 on ARM.
    sim.control(
        "PUT",
        "/faults/arm",
        Some(json!({"status": 500, "remaining": 1})),
    )
    .await;
    let r = sim
        .arm(
            "GET",
            &format!("/subscriptions/{SUB}?api-version=2020-01-01"),
            "x",
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (500, "InternalServerError".to_string())
    );
    // A dropped connection.
    sim.control(
        "PUT",
        "/faults/keyvault",
        Some(json!({"drop": true, "remaining": 1})),
    )
    .await;
    let kv = sim.handle.vault_url("kv1").expect("kv1");
    let r = send_with(
        &format!("{kv}/secrets/x?api-version=7.4"),
        "GET",
        &[],
        vec![],
        sim.ca(),
        None,
    )
    .await;
    assert!(r.is_err(), "{r:?}");
    let r = send(
        &format!("{kv}/secrets/x?api-version=7.4"),
        "GET",
        &[],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 401);
    // Latency.
    sim.control(
        "PUT",
        "/faults/imds",
        Some(json!({"latencyMs": 300, "remaining": 1})),
    )
    .await;
    let t = Instant::now();
    assert_eq!(sim.imds_token("vm-sys", q).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    sim.imds_token("vm-sys", q).await;
    assert!(t.elapsed() < Duration::from_millis(300));
    // Bad fault requests.
    assert_eq!(
        sim.control("PUT", "/faults/nope", Some(json!({})))
            .await
            .status,
        404
    );
    assert_eq!(
        sim.control("PUT", "/faults/imds", Some(json!({"status": 200})))
            .await
            .status,
        400
    );
    assert_eq!(
        sim.control("PUT", "/faults/imds", Some(json!({"bogus": true})))
            .await
            .status,
        400
    );
    let c = sim.control("GET", "/counters", None).await.json();
    assert_eq!(
        c["keyvault"]["byStatus"]["0"],
        json!(1),
        "dropped connections are counted with status 0"
    );
    sim.control("DELETE", "/faults", None).await;
    assert_eq!(sim.control("GET", "/faults", None).await.json(), json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_oversize_bodies() {
    let sim = start_with(base_world(), |c| c.max_body_bytes = 4096).await;
    let r = sim.control("GET", "/settings", None).await;
    assert_eq!(r.json()["imdsTokenLifetimeSecs"], json!(86399));
    let r = sim
        .control(
            "PATCH",
            "/settings",
            Some(json!({"entraTokenLifetimeSecs": 600, "tokenReuseSecs": 0})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["imdsTokenLifetimeSecs"], json!(86399));
    let a = sim
        .secret_token(
            "controller",
            CONTROLLER_SECRET,
            "https://vault.azure.net/.default",
        )
        .await;
    let exp = claims(&a)["exp"].as_i64().unwrap_or(0);
    assert!((exp - now() - 600).abs() <= 2);
    let b = sim
        .secret_token(
            "controller",
            CONTROLLER_SECRET,
            "https://vault.azure.net/.default",
        )
        .await;
    assert_ne!(a, b, "reuse disabled");
    assert_eq!(
        sim.control("PATCH", "/settings", Some(json!({"nope": 1})))
            .await
            .status,
        400
    );
    assert_eq!(
        sim.control("PATCH", "/settings", Some(json!([1])))
            .await
            .status,
        400
    );
    let big = vec![b'a'; 5000];
    let r = send(
        &format!("{}/{TENANT}/oauth2/v2.0/token", sim.handle.entra_url),
        "POST",
        &[("content-type", "application/x-www-form-urlencoded")],
        big.clone(),
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(r.aadsts().is_some());
    let r = send(
        &format!("{}/world", sim.handle.control_url),
        "PUT",
        &[("content-type", "application/json")],
        big.clone(),
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 413);
    let r = send(
        &format!("{}/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachines/vm-sys?api-version=2019-12-01", sim.handle.arm_url),
        "PATCH",
        &[("content-type", "application/json")],
        big,
        sim.ca(),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (413, "RequestEntityTooLarge".to_string())
    );
    assert_eq!(sim.control("GET", "/healthz", None).await.text(), "ok");
}
