//! IMDS over real HTTP: token happy paths, every error, the token JSON shape, and instance metadata.

mod common;

use common::*;
use serde_json::json;

const V: &str = "api-version=2018-02-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_assigned_token_shape_and_claims() {
    let sim = start().await;
    let r = sim
        .imds_token(
            "vm-sys",
            &format!("{V}&resource=https://management.azure.com/"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert!(r.header("server").is_some_and(|s| s.starts_with("IMDS/")));
    let v = r.json();
    for k in [
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
        "client_id",
        "access_token",
    ] {
        assert!(v[k].is_string(), "{k} must be a string: {v}");
    }
    let expires_in: i64 = v["expires_in"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(expires_in > 86_000 && expires_in <= 86_399, "{expires_in}");
    let expires_on: i64 = v["expires_on"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!((expires_on - now() - expires_in).abs() <= 2);
    assert_eq!(v["resource"], json!("https://management.azure.com/"));
    assert_eq!(v["token_type"], json!("Bearer"));
    let vm = sim
        .world()
        .virtual_machines
        .into_iter()
        .find(|v| v.name == "vm-sys")
        .expect("vm");
    assert_eq!(v["client_id"], json!(vm.identity.client_id));
    let token = v["access_token"].as_str().unwrap_or_default();
    let c = claims(token);
    assert_eq!(c["aud"], json!("https://management.azure.com/"));
    assert_eq!(c["tid"], json!(TENANT));
    assert_eq!(c["oid"], json!(vm.identity.principal_id));
    assert_eq!(c["appid"], json!(vm.identity.client_id));
    assert_eq!(c["xms_mirid"], json!(vm.id()));
    assert_eq!(
        c["iss"],
        json!(format!("https://sts.windows.net/{TENANT}/"))
    );
    assert!(
        verify_with_jwks(&sim, token).await,
        "token must verify with the tenant JWKS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_assigned_selectors() {
    let sim = start().await;
    let web = sim.uami("id-web");
    let job = sim.uami("id-job");
    let cid = web.client_id.clone().unwrap_or_default();
    let oid = job.principal_id.clone().unwrap_or_default();
    let cases = [
        (format!("client_id={cid}"), web.clone()),
        (format!("client_id={}", cid.to_uppercase()), web.clone()),
        (format!("object_id={oid}"), job.clone()),
        (
            format!("msi_res_id={}", azure_sim::form::encode(&web.id())),
            web.clone(),
        ),
        (
            format!(
                "mi_res_id={}",
                azure_sim::form::encode(&job.id().to_lowercase())
            ),
            job.clone(),
        ),
    ];
    for (sel, want) in cases {
        let r = sim
            .imds_token(
                "vm-multi",
                &format!("{V}&resource=https://vault.azure.net&{sel}"),
            )
            .await;
        assert_eq!(r.status, 200, "{sel}: {}", r.text());
        let v = r.json();
        assert_eq!(v["client_id"], json!(want.client_id), "{sel}");
        let c = claims(v["access_token"].as_str().unwrap_or_default());
        assert_eq!(c["xms_mirid"], json!(want.id()), "{sel}");
        assert_eq!(c["aud"], json!("https://vault.azure.net"));
    }
    // The trailing-slash path works too.
    let r = send(
        &format!("{}/metadata/identity/oauth2/token/?{V}&resource=https://vault.azure.net&client_id={cid}", sim.imds("vm-multi")),
        "GET",
        &[("Metadata", "true")],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_errors() {
    let sim = start().await;
    let base = sim.imds("vm-multi");
    let cid_web = sim.uami("id-web").client_id.unwrap_or_default();
    let cid_extra = sim.uami("id-extra").client_id.unwrap_or_default();
    type Case<'a> = (Vec<(&'a str, &'a str)>, String, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![],
            format!("{V}&resource=r"),
            400,
            "invalid_request",
            "Required metadata header not specified",
        ),
        (
            vec![("metadata", "True")],
            format!("{V}&resource=r"),
            400,
            "invalid_request",
            "Required metadata header not specified",
        ),
        (
            vec![("metadata", "true")],
            "resource=https://vault.azure.net".into(),
            400,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        ),
        (
            vec![("metadata", "true")],
            "api-version=2015-01-01&resource=https://vault.azure.net".into(),
            400,
            "invalid_request",
            "Invalid 'api-version' requested",
        ),
        (
            vec![("metadata", "true")],
            V.into(),
            400,
            "invalid_request",
            "Required audience parameter not specified",
        ),
        (
            vec![("metadata", "true")],
            format!("{V}&resource=https://vault.azure.net"),
            400,
            "invalid_request",
            "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
        ),
        (
            vec![("metadata", "true")],
            format!("{V}&resource=https://vault.azure.net&client_id={cid_extra}"),
            400,
            "invalid_request",
            "Identity not found",
        ),
        (
            vec![("metadata", "true")],
            format!("{V}&resource=https://vault.azure.net&client_id={cid_web}&object_id=x"),
            400,
            "invalid_request",
            "Only one of client_id, object_id, msi_res_id, mi_res_id may be specified",
        ),
    ];
    for (headers, q, status, error, desc) in cases {
        let r = send(
            &format!("{base}/metadata/identity/oauth2/token?{q}"),
            "GET",
            &headers,
            vec![],
            sim.ca(),
        )
        .await;
        assert_eq!(r.status, status, "{q}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"error": error, "error_description": desc}),
            "{q}"
        );
    }
    // A VM without identities.
    let r = sim
        .imds_token("vm-none", &format!("{V}&resource=https://vault.azure.net"))
        .await;
    assert_eq!(
        (r.status, r.json()["error_description"].clone()),
        (400, json!("Identity not found"))
    );
    // Unknown resource: Entra's AADSTS500011 passed through.
    let r = sim
        .imds_token("vm-sys", &format!("{V}&resource=https://nothing.example"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], json!("invalid_resource"));
    assert_eq!(r.aadsts(), Some(500011));
    // Wrong method and path.
    let r = send(
        &format!("{base}/metadata/identity/oauth2/token?{V}&resource=r"),
        "POST",
        &[("metadata", "true")],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 405);
    let r = send(
        &format!("{base}/nope"),
        "GET",
        &[("metadata", "true")],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_metadata() {
    let sim = start().await;
    let get = |node: &str, path: &str, headers: Vec<(&'static str, &'static str)>| {
        let url = format!("{}{path}", sim.imds(node));
        let ca = sim.ca().to_string();
        async move { send(&url, "GET", &headers, vec![], &ca).await }
    };
    let r = get(
        "vm-sys",
        "/metadata/instance?api-version=2021-02-01",
        vec![("metadata", "true")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = &r.json()["compute"];
    assert_eq!(c["name"], json!("vm-sys"));
    assert_eq!(c["vmScaleSetName"], json!(""));
    assert_eq!(c["resourceGroupName"], json!("rg-nodes"));
    assert_eq!(c["subscriptionId"], json!(SUB));
    assert_eq!(c["location"], json!("westeurope"));
    assert_eq!(
        r.json()["network"]["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"],
        json!("10.0.0.4")
    );
    let node = "aks-pool-vmss000001";
    let r = get(
        node,
        "/metadata/instance/compute?api-version=2021-02-01",
        vec![("metadata", "true")],
    )
    .await;
    assert_eq!(r.json()["vmScaleSetName"], json!("aks-pool-vmss"));
    assert_eq!(r.json()["name"], json!("aks-pool-vmss_1"));
    assert_eq!(r.json()["osProfile"]["computerName"], json!(node));
    let r = get(
        "vm-none",
        "/metadata/instance/compute/tags?api-version=2021-02-01&format=text",
        vec![("metadata", "true")],
    )
    .await;
    assert_eq!((r.status, r.text()), (200, "env:test".to_string()));
    let r = get(
        "vm-sys",
        "/metadata/instance?api-version=2021-02-01",
        vec![],
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"error": "Bad request. Required metadata header not specified"})
        )
    );
    let r = get("vm-sys", "/metadata/instance", vec![("metadata", "true")]).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["newest-versions"].is_array());
    let r = get(
        "vm-sys",
        "/metadata/instance/compute/nothing?api-version=2021-02-01",
        vec![("metadata", "true")],
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_has_its_own_endpoint() {
    let sim = start().await;
    let e = sim.handle.endpoints();
    for n in [
        "vm-sys",
        "vm-multi",
        "vm-none",
        "aks-pool-vmss000000",
        "aks-pool-vmss000001",
    ] {
        assert!(e.imds.contains_key(n), "{n}");
    }
    let urls: std::collections::HashSet<&String> = e.imds.values().collect();
    assert_eq!(urls.len(), e.imds.len());
    // Tokens are reused while fresh (IMDS caches them), and differ per identity.
    let a = sim
        .imds_token("vm-sys", &format!("{V}&resource=https://vault.azure.net"))
        .await
        .json();
    let b = sim
        .imds_token("vm-sys", &format!("{V}&resource=https://vault.azure.net"))
        .await
        .json();
    assert_eq!(a["access_token"], b["access_token"]);
    let c = sim
        .imds_token(
            "vm-sys",
            &format!("{V}&resource=https://storage.azure.com/"),
        )
        .await
        .json();
    assert_ne!(a["access_token"], c["access_token"]);
}
