//! The authorisation matrix of the hardening issue, through the agent's real interface: token-path variants in
//! every letter case and separator trick (against an IMDS that matches paths case-insensitively), an
//! AzureIdentity naming the cluster's own identity from an unprivileged namespace, the deny-list, and the instant
//! refusal of an identity no binding of the pod references. Zero tokens to the unentitled; every entitled request
//! still answered.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use podid_testkit::agent::*;
use podid_testkit::*;

podid_testkit::both_backends!(
    authorisation_matrix_of_the_hardening,
    distinct_resources_are_budgeted_per_pod,
);

/// The cluster's own (kubelet) identity in the test world: on the node's scale set.
const KUBELET: &str = "aks-agentpool";

/// Every letter-case variant that differs from the token route in one letter after `/metadata`, plus whole-word
/// and random-looking masks, each with separator tricks.
fn token_path_variants() -> Vec<String> {
    let base = "/metadata/identity/oauth2/token";
    let mut out = Vec::new();
    for (i, c) in base.char_indices().skip("/metadata".len()) {
        if c.is_ascii_lowercase() {
            let mut v = base.to_string();
            v.replace_range(i..i + 1, &c.to_ascii_uppercase().to_string());
            out.push(v);
        }
    }
    out.extend(
        [
            "/METADATA/IDENTITY/OAUTH2/TOKEN",
            "/Metadata/Identity/OAuth2/Token",
            "/mEtAdAtA/iDeNtItY/oAuTh2/tOkEn",
            "/metadata/identity\\OAuth2\\token",
            "/metadata/IDENTITY%5Coauth2%5Ctoken",
            "/metadata/identity%2FOAUTH2/token",
            "/metadata/identity;x/oauth2/token",
            "/metadata/identity%20/oauth2/token",
            "/metadata/x/identity/oauth2/token",
            "/metadata/ident%C4%B1ty/oauth2/token",
            "/metadata/identity/oauth2/to%E2%84%AAen",
        ]
        .map(String::from),
    );
    out
}

async fn authorisation_matrix_of_the_hardening(backend: Backend) {
    let env = start_env(backend).await;
    let id_a = create_identity(&env, "default", "id-a", msi_spec("id-a")).await;
    create_identity(&env, "default", "id-b", msi_spec("id-b")).await;
    create_binding(&env, "default", "b-a", "id-a", "sel-a").await;
    let bound = create_pod(
        &env,
        "default",
        "p-bound",
        json!({"aadpodidbinding": "sel-a"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-bound", &id_a, "Assigned").await;
    // An unprivileged namespace names the cluster's identity.
    ensure_ns(&env, "tenant-x").await;
    let kubelet = create_identity(&env, "tenant-x", "kubelet", msi_spec(KUBELET)).await;
    create_binding(&env, "tenant-x", "b-k", "kubelet", "sel-k").await;
    let thief = create_pod(
        &env,
        "tenant-x",
        "p-thief",
        json!({"aadpodidbinding": "sel-k"}),
        json!({}),
    )
    .await;
    create_aai(&env, "tenant-x", "p-thief", &kubelet, "Assigned").await;
    // A deny-listed identity, bound in the ordinary way.
    let id_c = create_identity(&env, "default", "id-c", msi_spec("id-c")).await;
    create_binding(&env, "default", "b-c", "id-c", "sel-c").await;
    let denied = create_pod(
        &env,
        "default",
        "p-denied",
        json!({"aadpodidbinding": "sel-c"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-denied", &id_c, "Assigned").await;

    let cloud = env.dir.path().join("node-azure.json");
    std::fs::write(
        &cloud,
        json!({"tenantId": TENANT, "subscriptionId": SUB, "resourceGroup": MC, "aadClientId": "msi",
               "useManagedIdentityExtension": true, "userAssignedIdentityID": client_id(KUBELET)})
        .to_string(),
    )
    .expect("write node cloud config");
    let cloud_flag = format!("--cloud-config={}", cloud.display());
    let deny_flag = format!(
        "--denied-identities={}",
        uami_id(IDS, "id-c").to_uppercase()
    );
    let agent = start_agent(&env, &[&cloud_flag, &deny_flag]).await;
    let to = agent.addr;

    // The simulated IMDS really does match paths in any case: a variant that reached it would get a token.
    let imds = env.azure.endpoints().imds.get(NODE).expect("imds").clone();
    let direct = format!(
        "{}/metadata/Identity/oauth2/token?api-version=2018-02-01&resource={VAULT}&client_id={}",
        imds.trim_end_matches('/'),
        client_id(KUBELET)
    );
    let (s, body) = http_with("GET", &direct, META).await;
    assert_eq!(
        s, 200,
        "azure-sim's case-insensitive IMDS model serves the variant: {body}"
    );

    let served_before = imds_tokens_served(&env).await;
    // 1. Token-path variants from an entitled pod asking for the cluster's identity: never passed through.
    let variants = token_path_variants();
    assert!(variants.len() >= 29, "{}", variants.len());
    for v in &variants {
        let path = format!(
            "{v}?api-version=2018-02-01&resource={VAULT}&client_id={}",
            client_id(KUBELET)
        );
        let (s, _, body) = get_from(bound, to, &path, META).await;
        assert!(
            s == 400 || s == 301,
            "{v}: {s} {body} (must be refused or redirected to a clean path)"
        );
        assert!(!body.contains("access_token"), "{v}: {body}");
        if s == 301 {
            continue;
        }
        assert_eq!(body, "Invalid request\n", "{v}");
    }
    // 2. The cluster's identity named by an AzureIdentity in an unprivileged namespace: 403, whether asked for
    //    by client ID, by resource ID or not at all.
    for q in [
        String::new(),
        format!("&client_id={}", client_id(KUBELET)),
        format!("&mi_res_id={}", uami_id(IDS, KUBELET)),
    ] {
        let (s, _, body) = get_from(thief, to, &token_path(&q), META).await;
        assert_eq!(s, 403, "{q}: {body}");
        assert!(
            body.contains("cluster's own identity")
                && body.contains("--allow-cluster-identity-namespaces=tenant-x"),
            "{body}"
        );
        assert!(
            !body.contains(&client_id(KUBELET)),
            "IDs are redacted: {body}"
        );
    }
    // 3. The deny-list (by resource ID, any case).
    let (s, _, body) = get_from(denied, to, &token_path(""), META).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("deny-list"), "{body}");
    // 4. An identity that no binding of the pod references: refused at once (upstream waited ~80 s), in words
    //    that say why and not "after 16 attempts".
    let t = Instant::now();
    let (s, _, body) = get_from(
        bound,
        to,
        &token_path(&format!("&client_id={}", client_id("id-b"))),
        META,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "instant refusal took {:?}",
        t.elapsed()
    );
    assert!(
        body.contains("bind no such identity") && !body.contains("attempts"),
        "{body}"
    );
    assert_eq!(
        imds_tokens_served(&env).await,
        served_before,
        "no IMDS token was issued for any unentitled request"
    );

    // Every entitled request is still answered.
    let (s, _, body) = get_from(bound, to, &token_path(""), META).await;
    assert_eq!(s, 200, "{body}");
    let (s, _, body) = get_from(
        bound,
        to,
        &token_path(&format!("&client_id={}", client_id("id-a"))),
        META,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, _, _) = get_from(bound, to, "/metadata/identity/info", META).await;
    assert_ne!(s, 400, "plain identity paths are still proxied");

    // The documented opt-in: the namespace allowed, the cluster's identity is served there.
    let mut agent = agent;
    agent.terminate().await;
    let allow = "--allow-cluster-identity-namespaces=tenant-x";
    let agent = start_agent(&env, &[&cloud_flag, allow]).await;
    let (s, _, body) = get_from(thief, agent.addr, &token_path(""), META).await;
    assert_eq!(s, 200, "opted in: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["client_id"], client_id(KUBELET));
}

/// A GET with extra headers over loopback (the harness's `http` sends none).
async fn http_with(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let addr: std::net::SocketAddr = host.parse().expect("addr");
    let mut req = format!("{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let (s, _, body) = raw_from(addr.ip(), addr, &req).await;
    (s, body)
}

/// One pod asking for thousands of distinct resources costs the node its budget (20 at once, then 60 a minute),
/// not thousands of IMDS calls: the rest get 429 with Retry-After at once; a resource it already has stays
/// free, and its neighbour is not affected. An oversized resource is refused before anything else.
async fn distinct_resources_are_budgeted_per_pod(backend: Backend) {
    let env = start_env(backend).await;
    let id_a = create_identity(&env, "default", "id-a", msi_spec("id-a")).await;
    create_binding(&env, "default", "b-a", "id-a", "sel-a").await;
    let mut ips = Vec::new();
    for name in ["p-noisy", "p-quiet"] {
        ips.push(
            create_pod(
                &env,
                "default",
                name,
                json!({"aadpodidbinding": "sel-a"}),
                json!({}),
            )
            .await,
        );
        create_aai(&env, "default", name, &id_a, "Assigned").await;
    }
    let (noisy, quiet) = (ips[0], ips[1]);
    let agent = start_agent(&env, &[]).await;
    let to = agent.addr;
    let before = imds_token_requests(&env).await;
    let ask = |resource: String| {
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}")
    };
    let (mut ok, mut limited) = (0, 0);
    let t = Instant::now();
    for i in 0..300 {
        let (s, head, body) = get_from(noisy, to, &ask(format!("api%3A%2F%2Fr{i}")), META).await;
        match s {
            // Admitted: IMDS was asked (it refuses these made-up audiences, which is what such a pod sends).
            200 | 403 => ok += 1,
            429 => {
                limited += 1;
                assert!(head.contains("retry-after: "), "{head}");
                assert!(body.contains("too many different resources"), "{body}");
            }
            other => panic!("resource {i}: {other} {body}"),
        }
    }
    let imds_calls = imds_token_requests(&env).await - before;
    assert!(
        (20..=25).contains(&ok) && ok + limited == 300,
        "{ok} served, {limited} limited in {:?}",
        t.elapsed()
    );
    assert_eq!(
        imds_calls, ok,
        "one IMDS call per admitted resource, none for the refused"
    );
    // A resource the pod already asked for is free; a new one waits; the neighbour has its own budget.
    let (s, _, _) = get_from(noisy, to, &ask("api%3A%2F%2Fr0".into()), META).await;
    assert_eq!(s, 403, "not 429: r0 is known");
    let (s, _, _) = get_from(noisy, to, &token_path(""), META).await;
    assert_eq!(s, 429, "a new resource waits its turn");
    let (s, _, body) = get_from(quiet, to, &token_path(""), META).await;
    assert_eq!(s, 200, "{body}");
    // Oversized resource: 400, said plainly, no upstream call, and the metric label is cut.
    let huge = "x".repeat(5000);
    let (s, _, body) = get_from(quiet, to, &ask(huge.clone()), META).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("too long (5000 bytes"), "{body}");
    let (_, m) = http("GET", &agent.metrics, None).await;
    assert!(
        !m.contains(&huge),
        "pod-controlled values are cut in metric labels"
    );
    assert!(
        m.contains("podid_agent_new_resource_budget_refused_count"),
        "{m}"
    );
}
