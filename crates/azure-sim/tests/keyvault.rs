//! Key Vault over real HTTPS: the challenge, reading and writing secrets with RBAC, vault selection by listener,
//! Host and SNI, and the error bodies.

mod common;

use common::*;
use serde_json::json;

const API: &str = "api-version=2025-07-01";

async fn imds_vault_token(sim: &TestSim, node: &str, client_id: Option<&str>) -> String {
    let sel = client_id
        .map(|c| format!("&client_id={c}"))
        .unwrap_or_default();
    let r = sim
        .imds_token(
            node,
            &format!("api-version=2018-02-01&resource=https://vault.azure.net{sel}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn kv(
    sim: &TestSim,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    send(
        &format!("{base}{path}"),
        method,
        &headers,
        body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        sim.ca(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_then_read() {
    let sim = start().await;
    let base = sim.handle.vault_url("kv1").expect("kv1");
    // SecretClient's first request: no token, trailing slash for the empty version.
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password/?{API}"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some(
            format!(
                "Bearer authorization=\"{}/{TENANT}\", resource=\"https://vault.azure.net\"",
                sim.handle.entra_url
            )
            .as_str()
        )
    );
    assert_eq!(
        r.json(),
        json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})
    );
    let web = sim.uami("id-web").client_id.unwrap_or_default();
    let tok = imds_vault_token(&sim, "vm-multi", Some(&web)).await;
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password/?{API}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["value"], json!("s3cr3t"));
    let id = v["id"].as_str().unwrap_or_default().to_string();
    assert!(
        id.starts_with(&format!("{base}/secrets/db-password/")),
        "{id}"
    );
    assert_eq!(v["attributes"]["enabled"], json!(true));
    // Versions.
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password/versions?{API}"),
        Some(&tok),
        None,
    )
    .await;
    let items = r.json()["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    let old_id = items[0]["id"].as_str().unwrap_or_default().to_string();
    let old_version = old_id.rsplit('/').next().unwrap_or_default().to_string();
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password/{old_version}?{API}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.json()["value"], json!("old-value"));
    // Errors.
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "GET",
            "/secrets/missing/?api-version=7.4".into(),
            404,
            "SecretNotFound",
        ),
        (
            "GET",
            format!("/secrets/db-password/{}?{API}", "0".repeat(32)),
            404,
            "SecretNotFound",
        ),
        ("GET", "/secrets/db-password/".into(), 400, "BadParameter"),
        (
            "GET",
            format!("/secrets/bad_name?{API}"),
            400,
            "BadParameter",
        ),
        ("GET", format!("/keys/k?{API}"), 404, "NotFound"),
        (
            "DELETE",
            format!("/secrets/db-password?{API}"),
            405,
            "MethodNotAllowed",
        ),
    ];
    for (m, p, status, code) in cases {
        let r = kv(&sim, &base, m, &p, Some(&tok), None).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_string()),
            "{m} {p}: {}",
            r.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_audience_and_writes() {
    let sim = start().await;
    let base = sim.handle.vault_url("kv1").expect("kv1");
    let job = sim.uami("id-job").client_id.unwrap_or_default();
    let job_tok = imds_vault_token(&sim, "vm-multi", Some(&job)).await;
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password?{API}"),
        Some(&job_tok),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "Forbidden".to_string()),
        "{}",
        r.text()
    );
    assert_eq!(
        r.json()["error"]["innererror"]["code"],
        json!("ForbiddenByRbac")
    );
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Microsoft.KeyVault/vaults/secrets/getSecret/action")
    );
    // A token for ARM is not a Key Vault token.
    let arm_tok = sim
        .secret_token(
            "controller",
            CONTROLLER_SECRET,
            "https://management.azure.com/.default",
        )
        .await;
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password?{API}"),
        Some(&arm_tok),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("AKV10022: Invalid audience.")
    );
    assert!(r.header("www-authenticate").is_some());
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password?{API}"),
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    // Writing needs Secrets Officer (the controller has it on the resource group).
    let web = sim.uami("id-web").client_id.unwrap_or_default();
    let web_tok = imds_vault_token(&sim, "vm-multi", Some(&web)).await;
    let r = kv(
        &sim,
        &base,
        "PUT",
        &format!("/secrets/db-password?{API}"),
        Some(&web_tok),
        Some(json!({"value": "x"})),
    )
    .await;
    assert_eq!(r.status, 403);
    let ctl = sim
        .secret_token(
            "controller",
            CONTROLLER_SECRET,
            "https://vault.azure.net/.default",
        )
        .await;
    let r = kv(
        &sim,
        &base,
        "PUT",
        &format!("/secrets/db-password?{API}"),
        Some(&ctl),
        Some(json!({"value": "rotated", "contentType": "text/plain", "tags": {"by": "test"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["contentType"], json!("text/plain"));
    let r = kv(
        &sim,
        &base,
        "GET",
        &format!("/secrets/db-password?{API}"),
        Some(&web_tok),
        None,
    )
    .await;
    assert_eq!(r.json()["value"], json!("rotated"));
    for bad in [json!({}), json!({"value": 3}), json!([1])] {
        let r = kv(
            &sim,
            &base,
            "PUT",
            &format!("/secrets/db-password?{API}"),
            Some(&ctl),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "BadParameter".to_string()),
            "{bad}"
        );
    }
    let r = send(
        &format!("{base}/secrets/db-password?{API}"),
        "PUT",
        &[
            ("authorization", &format!("Bearer {ctl}")),
            ("content-type", "application/json"),
        ],
        b"{broken".to_vec(),
        sim.ca(),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "BadParameter".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_selection_by_host_and_sni() {
    let sim = start().await;
    let tok = imds_vault_token(&sim, "vm-sys", None).await;
    let auth = format!("Bearer {tok}");
    // The shared listener, reached as kv2.vault.azure.net: the certificate verifies for that name and Host
    // selects the vault.
    let r = send_with(
        &format!("{}/secrets/other?{API}", sim.handle.keyvault_url),
        "GET",
        &[("authorization", &auth)],
        vec![],
        sim.ca(),
        Some("kv2.vault.azure.net"),
    )
    .await
    .expect("TLS with SNI kv2.vault.azure.net");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["value"], json!("v2"));
    assert!(
        r.json()["id"]
            .as_str()
            .unwrap_or("")
            .starts_with("https://kv2.vault.azure.net:")
    );
    // Without a vault name the shared listener cannot pick among two vaults.
    let r = send(
        &format!("{}/secrets/other?{API}", sim.handle.keyvault_url),
        "GET",
        &[("authorization", &auth)],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 404);
    // Entra and ARM present certificates for their real names too.
    for (url, name) in [
        (&sim.handle.entra_url, "login.microsoftonline.com"),
        (&sim.handle.arm_url, "management.azure.com"),
    ] {
        let r = send_with(&format!("{url}/"), "GET", &[], vec![], sim.ca(), Some(name)).await;
        assert!(r.is_ok(), "{name}: {r:?}");
    }
    // A name no certificate covers fails verification (the listener's default certificate is presented).
    let r = send_with(
        &format!("{}/", sim.handle.arm_url),
        "GET",
        &[],
        vec![],
        sim.ca(),
        Some("example.com"),
    )
    .await;
    assert!(r.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_listener_routes_by_sni_and_host() {
    let sim = start_with(base_world(), |c| {
        c.front_listen = Some("127.0.0.1:0".parse().expect("addr"))
    })
    .await;
    let front = sim.handle.front_url.clone().expect("front url");
    let r = send_with(
        &format!("{front}/{TENANT}/v2.0/.well-known/openid-configuration"),
        "GET",
        &[],
        vec![],
        sim.ca(),
        Some("login.microsoftonline.com"),
    )
    .await
    .expect("entra via front");
    assert_eq!(r.status, 200);
    assert!(
        r.json()["issuer"]
            .as_str()
            .unwrap_or("")
            .starts_with("https://login.microsoftonline.com:")
    );
    let r = send_with(
        &format!("{front}/subscriptions/{SUB}?api-version=2020-01-01"),
        "GET",
        &[],
        vec![],
        sim.ca(),
        Some("management.azure.com"),
    )
    .await
    .expect("arm via front");
    assert_eq!(
        (r.status, r.code()),
        (401, "AuthenticationFailed".to_string())
    );
    let r = send_with(
        &format!("{front}/secrets/other?{API}"),
        "GET",
        &[],
        vec![],
        sim.ca(),
        Some("kv2.vault.azure.net"),
    )
    .await
    .expect("kv via front");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    // An IP-only request has no name to route by.
    let r = send(&format!("{front}/"), "GET", &[], vec![], sim.ca()).await;
    assert_eq!((r.status, r.code()), (404, "UnknownHost".to_string()));
}
