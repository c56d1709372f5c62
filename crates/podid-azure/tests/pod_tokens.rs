//! The agent's pod-token layer against azure-sim over real HTTP(S): IMDS (user- and system-assigned, refusals,
//! retries), caching, single flight, refresh in the margin, serving through an outage, service principals
//! (secret, PEM certificate, PKCS#12 refusal, auxiliary tenants, per-AzureIdentity isolation) and workload
//! identity federation with a service-account token from a test OIDC issuer.
//!
//! kube-sim is not a dev-dependency of podid-azure, so the federated test signs its own service-account token
//! and serves the issuer's discovery document and JWKS from a small HTTPS server on 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{NODE_RG, SUB, Sim, TENANT, VM, VMSS, VMSS_NODE, test_cert};
use podid_azure::pod_tokens::*;
use podid_azure::*;
use serde_json::{Value, json};

const TENANT2: &str = "a4f1c2d3-0000-4000-8000-00000000f00d";
const ARM: &str = "https://management.azure.com/";
const VAULT: &str = "https://vault.azure.net";
const SP_SECRET: &str = "sp-app-secret-value";
const WRONG_SECRET: &str = "not-the-sp-app-secret";
/// An issuer URL that is never contacted (worlds without the federated test).
const NO_ISSUER: &str = "https://issuer.invalid";
const FED_SUBJECT: &str = "system:serviceaccount:apps:web";

// === fixtures ===

fn world(cert_pem: &str, issuer: &str) -> Value {
    json!({
        "tenants": [
            {"id": TENANT, "domains": ["contoso.onmicrosoft.com"]},
            {"id": TENANT2, "domains": ["fabrikam.onmicrosoft.com"]}
        ],
        "subscriptions": [{"id": SUB, "tenantId": TENANT}],
        "resourceGroups": [
            {"name": NODE_RG, "location": "westeurope"},
            {"name": "rg-ids", "location": "westeurope"}
        ],
        "userAssignedIdentities": [
            {"name": "id-web", "resourceGroup": "rg-ids"},
            {"name": "id-job", "resourceGroup": "rg-ids"},
            {"name": "id-other", "resourceGroup": "rg-ids"},
            {"name": "id-fed", "resourceGroup": "rg-ids", "federatedIdentityCredentials": [
                {"name": "apps-web", "issuer": issuer, "subject": FED_SUBJECT}
            ]}
        ],
        "virtualMachines": [
            {"name": VM, "resourceGroup": NODE_RG, "identity": {"type": "SystemAssigned"}}
        ],
        "virtualMachineScaleSets": [
            {"name": VMSS, "resourceGroup": NODE_RG, "identity": {"userAssignedIdentities": ["id-web", "id-job"]}, "instances": [{}]}
        ],
        "applications": [
            {"displayName": "sp-app", "tenantId": TENANT, "secrets": [{"value": SP_SECRET}]},
            {"displayName": "cert-app", "tenantId": TENANT, "certificates": [{"pem": cert_pem}]}
        ]
    })
}

async fn start_with(issuer: &str, trust: Option<String>) -> Sim {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = test_cert("cert-app");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = world(&cert.cert_pem, issuer).to_string();
    let mut config = azure_sim::Config::from_text(&text, dir.path()).expect("world");
    if let Some(pem) = trust {
        config.oidc_trust_pem.push(pem);
    }
    let handle = azure_sim::start(config).await.expect("start azure-sim");
    let env_file = dir.path().join("azure-env.json");
    std::fs::write(
        &env_file,
        json!({
            "name": "AzureSim",
            "resourceManagerEndpoint": handle.arm_url,
            "activeDirectoryEndpoint": handle.entra_url,
            "tokenAudience": ARM,
        })
        .to_string(),
    )
    .expect("env file");
    let path = env_file.display().to_string();
    let env = Environment::from_name("AzureStackCloud", |k| {
        (k == ENVIRONMENT_FILEPATH_VAR).then(|| path.clone())
    })
    .expect("environment");
    let http = HttpClient::new(HttpOptions {
        extra_ca_pem: vec![handle.ca_pem.as_bytes().to_vec()],
        user_agent: "podid-azure-pod-tokens-tests".into(),
        timeout: Duration::from_secs(10),
        ..HttpOptions::default()
    })
    .expect("http client");
    Sim {
        handle,
        dir,
        env,
        http,
        cert,
    }
}

async fn start() -> Sim {
    start_with(NO_ISSUER, None).await
}

/// Quick retries and a short negative pause, so tests do not wait long.
fn fast() -> PodTokenOptions {
    PodTokenOptions {
        retry_base_delay: Duration::from_millis(50),
        failure_pause: Duration::from_millis(300),
        ..PodTokenOptions::default()
    }
}

fn provider(sim: &Sim, node: &str, opts: PodTokenOptions) -> PodTokenProvider {
    PodTokenProvider::new(sim.http.clone(), &sim.env, &sim.imds(node), opts)
}

fn imds(client_id: Option<&str>, resource_id: Option<&str>) -> TokenSpec {
    TokenSpec::Imds {
        client_id: client_id.map(str::to_string),
        resource_id: resource_id.map(str::to_string),
    }
}

fn sp(identity_key: &str, client_id: &str, secret: SpSecret, aux: &[&str]) -> TokenSpec {
    TokenSpec::ServicePrincipal {
        identity_key: identity_key.into(),
        tenant_id: TENANT.into(),
        client_id: client_id.into(),
        aux_tenant_ids: aux.iter().map(|s| s.to_string()).collect(),
        secret,
    }
}

fn secret_ref(name: &str) -> SpSecret {
    SpSecret::ClientSecret {
        namespace: "default".into(),
        name: name.into(),
    }
}

fn cert_ref(name: &str) -> SpSecret {
    SpSecret::Certificate {
        namespace: "default".into(),
        name: name.into(),
    }
}

fn claims(token: &str) -> Value {
    azure_sim::jwt::decode(token).expect("jwt").claims
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sleep until `ms_before_expiry` milliseconds before `expires_on` (epoch seconds).
async fn sleep_until_before(expires_on: u64, ms_before_expiry: u64) {
    let target = (expires_on * 1000).saturating_sub(ms_before_expiry);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(target.saturating_sub(now))).await;
}

/// Poll `f` every 25 ms for at most `limit`.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    f()
}

/// The agent's side: Secrets by `namespace/name` and one service-account token, with call counters.
#[derive(Default)]
struct TestMaterial {
    secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    sa_token: Option<String>,
    secret_reads: AtomicUsize,
    sa_requests: AtomicUsize,
    audiences: parking_lot::Mutex<Vec<String>>,
}

impl TestMaterial {
    fn with_secret(mut self, name: &str, data: &[(&str, &[u8])]) -> Self {
        self.secrets.insert(
            format!("default/{name}"),
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        );
        self
    }

    fn shared(self) -> Arc<TestMaterial> {
        Arc::new(self)
    }
}

impl Material for TestMaterial {
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Vec<u8>>, String>> {
        Box::pin(async move {
            self.secret_reads.fetch_add(1, Ordering::SeqCst);
            self.secrets
                .get(&format!("{namespace}/{name}"))
                .cloned()
                .ok_or_else(|| format!("secrets \"{name}\" not found"))
        })
    }

    fn service_account_token<'a>(
        &'a self,
        _namespace: &'a str,
        _service_account: &'a str,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.sa_requests.fetch_add(1, Ordering::SeqCst);
            self.audiences.lock().push(audience.to_string());
            self.sa_token
                .clone()
                .ok_or_else(|| "serviceaccounts \"web\" not found".to_string())
        })
    }
}

fn dynm(m: &Arc<TestMaterial>) -> Arc<dyn Material> {
    m.clone()
}

// === IMDS ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_user_assigned_by_client_id_and_by_resource_id() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default().shared();
    let web = sim.uami("id-web");
    let cid = web.client_id.clone().expect("client id");
    let rid = web.id();

    let t = p
        .get(&imds(Some(&cid), None), ARM, dynm(&m))
        .await
        .expect("by client id");
    assert_eq!(t.len(), 1);
    let c = claims(&t[0].access_token);
    assert_eq!(c["appid"], json!(cid));
    assert!(
        c["xms_mirid"]
            .as_str()
            .is_some_and(|m| m.eq_ignore_ascii_case(&rid)),
        "{c}"
    );
    assert_eq!(t[0].client_id, cid);
    assert_eq!(t[0].resource, ARM);
    assert_eq!(t[0].token_type, "Bearer");
    let now = now_secs();
    assert!(t[0].expires_on > now + 86_000 && t[0].expires_on <= now + 86_400);
    assert!(t[0].not_before <= now + 1);
    assert!(!format!("{t:?}").contains(&t[0].access_token));

    // The same identity with an upper-case client ID is the same entry.
    let again = p
        .get(&imds(Some(&cid.to_uppercase()), None), ARM, dynm(&m))
        .await
        .expect("cached");
    assert_eq!(again, t);
    assert_eq!(sim.count("imds").await, 1);

    // By resource ID (msi_res_id): its own entry, the same identity; upper case hits it.
    let r = p
        .get(&imds(None, Some(&rid)), ARM, dynm(&m))
        .await
        .expect("by resource id");
    assert_eq!(claims(&r[0].access_token)["appid"], json!(cid));
    assert_eq!(r[0].client_id, cid);
    p.get(&imds(None, Some(&rid.to_uppercase())), ARM, dynm(&m))
        .await
        .expect("resource id cached");
    assert_eq!(sim.count("imds").await, 2);

    // Another identity on the node, and another resource: each one call.
    let job = sim.uami("id-job").client_id.expect("job client id");
    let j = p
        .get(&imds(Some(&job), None), ARM, dynm(&m))
        .await
        .expect("id-job");
    assert_eq!(claims(&j[0].access_token)["appid"], json!(job));
    let v = p
        .get(&imds(Some(&cid), None), VAULT, dynm(&m))
        .await
        .expect("vault");
    assert_eq!(v[0].resource, VAULT);
    assert_eq!(sim.count("imds").await, 4);

    let s = p.stats();
    assert_eq!(
        (s.misses, s.hits, s.coalesced, s.upstream_calls, s.entries),
        (4, 2, 0, 4, 4)
    );
    // Managed identities never touch the agent's material.
    assert_eq!(m.secret_reads.load(Ordering::SeqCst), 0);
    assert_eq!(m.sa_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_system_assigned_identity() {
    let sim = start().await;
    let p = provider(&sim, VM, fast());
    let m = TestMaterial::default().shared();
    let t = p
        .get(&imds(None, None), ARM, dynm(&m))
        .await
        .expect("system-assigned");
    let c = claims(&t[0].access_token);
    let mirid = c["xms_mirid"].as_str().unwrap_or_default().to_string();
    assert!(
        mirid
            .to_ascii_lowercase()
            .ends_with(&format!("/virtualmachines/{VM}")),
        "{mirid}"
    );
    // IMDS says which client ID the system-assigned identity has.
    assert!(!t[0].client_id.is_empty());
    assert_eq!(c["appid"], json!(t[0].client_id));
    // Empty strings are the system-assigned identity too (one entry).
    p.get(&imds(Some(""), Some("")), ARM, dynm(&m))
        .await
        .expect("empty = system");
    assert_eq!(sim.count("imds").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unassigned_identity_is_refused_at_once_with_the_imds_body() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default().shared();
    let other = sim.uami("id-other").client_id.expect("client id");
    let spec = imds(Some(&other), None);
    let e = p.get(&spec, ARM, dynm(&m)).await.expect_err("not assigned");
    match &e {
        PodTokenError::Refused {
            status,
            body_snippet,
            endpoint,
        } => {
            assert_eq!(*status, 400);
            assert!(
                body_snippet.contains("Identity not found"),
                "{body_snippet}"
            );
            assert!(
                endpoint.contains("/metadata/identity/oauth2/token?"),
                "{endpoint}"
            );
            assert!(
                endpoint.contains(&format!("client_id={other}")),
                "{endpoint}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.http_status(), 403);
    assert!(
        e.to_string()
            .starts_with("adal: Refresh request failed. Status Code = '400'. Response body: {"),
        "{e}"
    );
    // Not transient: one request, no retries.
    assert_eq!(sim.count("imds").await, 1);
    // Asked again at once: the recent failure, without a request.
    assert_eq!(p.get(&spec, ARM, dynm(&m)).await.expect_err("paused"), e);
    assert_eq!(sim.count("imds").await, 1);
    assert_eq!(p.stats().negative_hits, 1);
    // After the short pause IMDS is asked again (the identity may have been assigned meanwhile).
    tokio::time::sleep(Duration::from_millis(350)).await;
    p.get(&spec, ARM, dynm(&m)).await.expect_err("again");
    assert_eq!(sim.count("imds").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_5xx_is_retried_within_the_budget_then_unavailable() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default().shared();
    let cid = sim.uami("id-web").client_id.expect("client id");
    let spec = imds(Some(&cid), None);

    sim.fault("imds", json!({"status": 500})).await;
    let started = Instant::now();
    let e = p.get(&spec, ARM, dynm(&m)).await.expect_err("500s");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, PodTokenError::Unavailable(_)), "{e:?}");
    assert_eq!(e.http_status(), 503);
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    assert!(e.to_string().contains("3 attempt"), "{e}");
    assert_eq!(sim.count("imds").await, 3);

    // Two more failures, then IMDS recovers: the third attempt succeeds.
    sim.control("DELETE", "/faults/imds", None).await;
    sim.fault(
        "imds",
        json!({"status": 503, "retryAfter": 0, "remaining": 2}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let t = p.get(&spec, ARM, dynm(&m)).await.expect("recovered");
    assert_eq!(claims(&t[0].access_token)["appid"], json!(cid));
    assert_eq!(sim.count("imds").await, 6);
    let s = p.stats();
    assert_eq!((s.upstream_calls, s.upstream_failures), (6, 5));

    // Dropped connections are retried the same way.
    sim.fault("imds", json!({"drop": true})).await;
    let e = p
        .get(&imds(None, Some(&sim.uami("id-job").id())), ARM, dynm(&m))
        .await
        .expect_err("dropped");
    assert!(matches!(e, PodTokenError::Unavailable(_)), "{e:?}");
    assert_eq!(p.stats().upstream_calls, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_imds_is_unavailable_quickly() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    let http = HttpClient::new(HttpOptions::default()).expect("http");
    let p = PodTokenProvider::new(
        http,
        &Environment::public(),
        &format!("http://127.0.0.1:{port}/"),
        fast(),
    );
    let started = Instant::now();
    let e = p
        .get(
            &imds(Some("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"), None),
            ARM,
            TestMaterial::default().shared(),
        )
        .await
        .expect_err("refused");
    assert!(matches!(e, PodTokenError::Unavailable(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The URL in the error has no query.
    assert!(!e.to_string().contains("resource="), "{e}");
    assert_eq!(p.stats().upstream_calls, 3);
}

// === cache behaviour ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_requests_make_one_upstream_call() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default().shared();
    let cid = sim.uami("id-web").client_id.expect("client id");
    sim.fault("imds", json!({"latencyMs": 300})).await;

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (p, m, cid) = (p.clone(), dynm(&m), cid.clone());
            tokio::spawn(async move { p.get(&imds(Some(&cid), None), ARM, m).await })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for t in tasks {
        let tokens = t.await.expect("join").expect("token");
        seen.insert(tokens[0].access_token.clone());
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(sim.count("imds").await, 1);
    let s = p.stats();
    assert_eq!((s.misses, s.coalesced, s.upstream_calls), (1, 49, 1));

    // Hits after the miss cost nothing upstream.
    for _ in 0..10 {
        p.get(&imds(Some(&cid), None), ARM, dynm(&m))
            .await
            .expect("hit");
    }
    assert_eq!(p.stats().hits, 10);
    assert_eq!(sim.count("imds").await, 1);

    // A caller that gives up does not waste the fetch: it completes and fills the cache.
    let job = sim.uami("id-job").client_id.expect("job");
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        p.get(&imds(Some(&job), None), ARM, dynm(&m)),
    )
    .await;
    assert!(gave_up.is_err(), "the slow fetch should outlast 50 ms");
    assert!(
        eventually(Duration::from_secs(3), || p.stats().upstream_calls == 2).await,
        "{:?}",
        p.stats()
    );
    // Whether it is still running (join) or done (hit), asking again costs no second upstream call.
    tokio::time::sleep(Duration::from_millis(400)).await;
    p.get(&imds(Some(&job), None), ARM, dynm(&m))
        .await
        .expect("filled by the abandoned fetch");
    assert_eq!(p.stats().upstream_calls, 2);
    assert_eq!(sim.count("imds").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_in_the_margin_are_served_while_one_background_refresh_runs() {
    let sim = start().await;
    sim.settings(json!({"imdsTokenLifetimeSecs": 8, "tokenReuseSecs": 0}))
        .await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default().shared();
    let cid = sim.uami("id-web").client_id.expect("client id");
    let spec = imds(Some(&cid), None);

    let first = p.get(&spec, ARM, dynm(&m)).await.expect("first");
    assert_eq!(p.get(&spec, ARM, dynm(&m)).await.expect("fresh"), first);
    assert_eq!(sim.count("imds").await, 1);

    // Refresh margin = half of the 8 s lifetime: 3.3 s before expiry the token is in it.
    sleep_until_before(first[0].expires_on, 3300).await;
    // The call that starts the refresh is answered from the cache at once.
    assert_eq!(p.get(&spec, ARM, dynm(&m)).await.expect("margin"), first);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (p, m, spec) = (p.clone(), dynm(&m), spec.clone());
            tokio::spawn(async move { p.get(&spec, ARM, m).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("join").expect("token"));
    }
    // However the refresh races them, only one runs and nobody waits for it.
    assert_eq!(p.stats().refreshes, 1);
    assert_eq!(p.stats().misses, 1);
    assert!(
        eventually(Duration::from_secs(3), || p.stats().upstream_calls == 2).await,
        "{:?}",
        p.stats()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = p.get(&spec, ARM, dynm(&m)).await.expect("refreshed");
    assert_ne!(second[0].access_token, first[0].access_token);
    assert!(results.iter().all(|r| *r == first || *r == second));
    assert!(second[0].expires_on > first[0].expires_on);
    assert_eq!(sim.count("imds").await, 2);
    assert_eq!(p.stats().misses, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_tokens_are_served_through_an_outage_until_they_expire() {
    let sim = start().await;
    sim.settings(json!({"imdsTokenLifetimeSecs": 8, "tokenReuseSecs": 0}))
        .await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default().shared();
    let cid = sim.uami("id-web").client_id.expect("client id");
    let spec = imds(Some(&cid), None);
    let first = p.get(&spec, ARM, dynm(&m)).await.expect("first");
    sim.fault("imds", json!({"status": 500})).await;

    // In the margin: served; the background refresh fails (3 attempts).
    sleep_until_before(first[0].expires_on, 3300).await;
    assert_eq!(p.get(&spec, ARM, dynm(&m)).await.expect("cached"), first);
    assert!(
        eventually(Duration::from_secs(4), || p.stats().fetch_failures == 1).await,
        "{:?}",
        p.stats()
    );
    assert_eq!(sim.count("imds").await, 4);
    // Still served, and no new refresh during the refresh-retry pause.
    assert_eq!(p.get(&spec, ARM, dynm(&m)).await.expect("cached"), first);
    assert_eq!(p.stats().refreshes, 1);
    assert_eq!(sim.count("imds").await, 4);

    // Past its usable end (a quarter of the lifetime before expiry) it is never served.
    sleep_until_before(first[0].expires_on, 1500).await;
    let e = p.get(&spec, ARM, dynm(&m)).await.expect_err("expired");
    assert!(matches!(e, PodTokenError::Unavailable(_)), "{e:?}");
    assert_eq!(sim.count("imds").await, 7);
    assert_eq!(p.get(&spec, ARM, dynm(&m)).await.expect_err("paused"), e);
    assert_eq!(sim.count("imds").await, 7);

    // IMDS is back.
    sim.control("DELETE", "/faults/imds", None).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let back = p.get(&spec, ARM, dynm(&m)).await.expect("back");
    assert_ne!(back[0].access_token, first[0].access_token);
    assert_eq!(sim.count("imds").await, 8);
}

// === service principals ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_principal_with_a_client_secret() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default()
        .with_secret("sp-secret", &[("clientSecret", SP_SECRET.as_bytes())])
        .shared();
    let app = sim.app_id("sp-app");
    let spec = sp("default/sp/uid-1/7", &app, secret_ref("sp-secret"), &[]);
    let t = p.get(&spec, ARM, dynm(&m)).await.expect("token");
    assert_eq!(t.len(), 1);
    let c = claims(&t[0].access_token);
    assert_eq!(c["appid"], json!(app));
    assert_eq!(c["tid"], json!(TENANT));
    assert_eq!(t[0].client_id, app);
    assert_eq!(t[0].resource, ARM);
    assert!(t[0].expires_on > now_secs() + 3000);
    for _ in 0..3 {
        assert_eq!(p.get(&spec, ARM, dynm(&m)).await.expect("hit"), t);
    }
    // The Secret is read only on the miss.
    assert_eq!(m.secret_reads.load(Ordering::SeqCst), 1);
    assert_eq!(sim.count("entra").await, 1);

    // A missing Secret is the agent's 503, before any Entra request.
    let e = p
        .get(
            &sp("default/sp2/uid-2/1", &app, secret_ref("missing"), &[]),
            ARM,
            dynm(&m),
        )
        .await
        .expect_err("missing secret");
    assert!(matches!(e, PodTokenError::Unavailable(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("reading Secret default/missing failed"),
        "{e}"
    );
    assert_eq!(sim.count("entra").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_principal_tokens_are_not_shared_between_azure_identities() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default()
        .with_secret("good", &[("clientSecret", SP_SECRET.as_bytes())])
        .with_secret("bad", &[("clientSecret", WRONG_SECRET.as_bytes())])
        .shared();
    let app = sim.app_id("sp-app");
    let good = sp("team-a/id/uid-a/1", &app, secret_ref("good"), &[]);
    let bad = sp("team-b/id/uid-b/1", &app, secret_ref("bad"), &[]);
    p.get(&good, ARM, dynm(&m)).await.expect("legitimate");
    // Same tenant, same client ID, same resource — but another AzureIdentity with a wrong secret.
    let e = p.get(&bad, ARM, dynm(&m)).await.expect_err("wrong secret");
    match &e {
        PodTokenError::Refused {
            status,
            body_snippet,
            endpoint,
        } => {
            assert_eq!(*status, 401);
            assert!(body_snippet.contains("7000215"), "{body_snippet}");
            assert!(
                endpoint.contains(&format!("/{TENANT}/oauth2/token")),
                "{endpoint}"
            );
        }
        other => panic!("{other:?}"),
    }
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(
            !text.contains(SP_SECRET) && !text.contains(WRONG_SECRET),
            "{text}"
        );
    }
    assert_eq!(sim.count("entra").await, 2);
    p.get(&good, ARM, dynm(&m)).await.expect("still cached");
    assert_eq!(sim.count("entra").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_principal_with_a_pem_certificate() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let both = format!("{}{}", sim.cert.cert_pem, sim.cert.pkcs8_pem);
    let m = TestMaterial::default()
        .with_secret("cert-pem", &[("certificate", both.as_bytes())])
        .with_secret(
            "cert-tls",
            &[
                ("tls.crt", sim.cert.cert_pem.as_bytes()),
                ("tls.key", sim.cert.pkcs1_pem.as_bytes()),
            ],
        )
        .shared();
    let app = sim.app_id("cert-app");
    for (key, secret) in [
        ("default/c1/uid/1", cert_ref("cert-pem")),
        ("default/c2/uid/1", cert_ref("cert-tls")),
    ] {
        let t = p
            .get(&sp(key, &app, secret, &[]), ARM, dynm(&m))
            .await
            .expect(key);
        assert_eq!(claims(&t[0].access_token)["appid"], json!(app), "{key}");
    }
    assert_eq!(sim.count("entra").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs12_certificates_are_refused_with_the_conversion_command() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    // A PFX starts with SEQUENCE { INTEGER 3, ... }.
    let pfx: &[u8] = &[0x30, 0x82, 0x00, 0x05, 0x02, 0x01, 0x03, 0x30, 0x00];
    let m = TestMaterial::default()
        .with_secret(
            "sp-pfx",
            &[("certificate", pfx), ("password", b"pfx-password")],
        )
        .shared();
    let e = p
        .get(
            &sp(
                "default/pfx/uid/1",
                &sim.app_id("cert-app"),
                cert_ref("sp-pfx"),
                &[],
            ),
            ARM,
            dynm(&m),
        )
        .await
        .expect_err("pkcs12");
    assert_eq!(e.http_status(), 503);
    let text = e.to_string();
    assert!(text.contains("PKCS#12"), "{text}");
    assert!(
        text.contains("openssl pkcs12 -in cert.pfx -out cert.pem -nodes"),
        "{text}"
    );
    assert!(text.contains("default/sp-pfx"), "{text}");
    assert!(!text.contains("pfx-password"), "{text}");
    assert_eq!(sim.count("entra").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auxiliary_tenants_get_one_token_each_primary_first() {
    let sim = start().await;
    let p = provider(&sim, VMSS_NODE, fast());
    let m = TestMaterial::default()
        .with_secret("sp-secret", &[("clientSecret", SP_SECRET.as_bytes())])
        .shared();
    let app = sim.app_id("sp-app");
    // azure-sim apps live in one tenant, so the auxiliary tenant is the same tenant by its domain name: two
    // requests, two tokens, in order.
    let t = p
        .get(
            &sp(
                "default/multi/uid/1",
                &app,
                secret_ref("sp-secret"),
                &["contoso.onmicrosoft.com"],
            ),
            ARM,
            dynm(&m),
        )
        .await
        .expect("two tenants");
    assert_eq!(t.len(), 2);
    for tok in &t {
        assert_eq!(claims(&tok.access_token)["appid"], json!(app));
        assert_eq!(tok.client_id, app);
    }
    assert_eq!(sim.count("entra").await, 2);
    let requests = sim.control("GET", "/requests?family=entra", None).await;
    let paths: Vec<String> = requests["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        paths,
        vec![
            format!("/{TENANT}/oauth2/token"),
            "/contoso.onmicrosoft.com/oauth2/token".to_string()
        ],
        "{requests}"
    );

    // An auxiliary tenant that does not know the app fails the whole request, naming the tenant.
    let e = p
        .get(
            &sp(
                "default/multi2/uid/1",
                &app,
                secret_ref("sp-secret"),
                &[TENANT2],
            ),
            ARM,
            dynm(&m),
        )
        .await
        .expect_err("unknown in the aux tenant");
    match &e {
        PodTokenError::Refused {
            status,
            body_snippet,
            endpoint,
        } => {
            assert_eq!(*status, 400);
            assert!(body_snippet.contains("700016"), "{body_snippet}");
            assert!(endpoint.contains(TENANT2), "{endpoint}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.count("entra").await, 4);
}

// === federated ===

/// A minimal OIDC issuer over HTTPS on 127.0.0.1 (std thread + rustls), serving discovery and JWKS.
struct Issuer {
    url: String,
    ca_pem: String,
    key: aws_lc_rs::rsa::KeyPair,
    kid: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Longest an issuer thread lives, and most connections it serves (every loop is bounded).
const ISSUER_LIFETIME_SECS: u64 = 120;
const ISSUER_MAX_CONNECTIONS: usize = 64;

impl Issuer {
    fn start() -> Issuer {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pod-tokens test issuer CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let mut leaf_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("leaf params");
        leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf cert");
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server config");
        let tls = Arc::new(tls);

        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
        let kid = "pod-tokens-kid".to_string();
        let jwks = json!({"keys": [serde_json::to_value(azure_sim::jwt::rsa_jwk(&key, &kid)).expect("jwk")]});
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (u, s) = (url.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(ISSUER_LIFETIME_SECS);
            let mut served = 0;
            while served < ISSUER_MAX_CONNECTIONS
                && Instant::now() < deadline
                && !s.load(Ordering::SeqCst)
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        serve_issuer(stream, tls.clone(), &u, &jwks);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Issuer {
            url,
            ca_pem: ca_cert.pem(),
            key,
            kid,
            stop,
        }
    }

    /// A Kubernetes-style service-account token for `sub`, audience `api://AzureADTokenExchange`.
    fn sa_token(&self, sub: &str) -> String {
        let now = now_secs() as i64;
        azure_sim::jwt::sign_rs256(
            &self.key,
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            &json!({"iss": self.url, "sub": sub, "aud": [FEDERATED_AUDIENCE], "iat": now, "nbf": now, "exp": now + 3600}),
        )
        .expect("sign")
    }
}

/// Answer one HTTPS request (discovery or JWKS) and close.
fn serve_issuer(
    stream: std::net::TcpStream,
    tls: Arc<rustls::ServerConfig>,
    url: &str,
    jwks: &Value,
) {
    use std::io::{Read as _, Write as _};
    if stream.set_nonblocking(false).is_err()
        || stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .is_err()
        || stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .is_err()
    {
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut s = rustls::StreamOwned::new(conn, stream);
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/.well-known/openid-configuration" => (
            "200 OK",
            json!({"issuer": url, "jwks_uri": format!("{url}/openid/v1/jwks"), "response_types_supported": ["id_token"], "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}),
        ),
        "/openid/v1/jwks" => ("200 OK", jwks.clone()),
        _ => ("404 Not Found", json!({})),
    };
    let body = body.to_string();
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
    s.conn.send_close_notify();
    let _ = s.flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_exchange_of_a_service_account_token() {
    let issuer = Issuer::start();
    let sim = start_with(&issuer.url, Some(issuer.ca_pem.clone())).await;
    let p = provider(&sim, VMSS_NODE, fast());
    let fed = sim.uami("id-fed");
    let cid = fed.client_id.clone().expect("client id");
    let m = Arc::new(TestMaterial {
        sa_token: Some(issuer.sa_token(FED_SUBJECT)),
        ..TestMaterial::default()
    });
    let spec = TokenSpec::Federated {
        tenant_id: TENANT.into(),
        client_id: cid.clone(),
        namespace: "apps".into(),
        service_account: "web".into(),
    };
    let t = p.get(&spec, VAULT, dynm(&m)).await.expect("exchanged");
    assert_eq!(t.len(), 1);
    let c = claims(&t[0].access_token);
    assert_eq!(c["appid"], json!(cid));
    assert!(
        c["xms_mirid"]
            .as_str()
            .is_some_and(|r| r.eq_ignore_ascii_case(&fed.id())),
        "{c}"
    );
    assert!(
        c["aud"]
            .as_str()
            .is_some_and(|a| a.contains("vault.azure.net")),
        "{c}"
    );
    assert_eq!(t[0].resource, VAULT);
    assert_eq!(t[0].client_id, cid);
    assert!(t[0].expires_on > now_secs() + 3000);
    assert_eq!(
        m.audiences.lock().clone(),
        vec![FEDERATED_AUDIENCE.to_string()]
    );
    // The v2 endpoint with the scope built from the resource.
    let requests = sim.control("GET", "/requests?family=entra", None).await;
    let text = requests.to_string();
    assert!(text.contains("/oauth2/v2.0/token"), "{text}");
    assert!(text.contains("https://vault.azure.net/.default"), "{text}");
    // Cached: no second TokenRequest, no second exchange.
    p.get(&spec, VAULT, dynm(&m)).await.expect("hit");
    assert_eq!(m.sa_requests.load(Ordering::SeqCst), 1);
    assert_eq!(sim.count("entra").await, 1);

    // Another service account's token does not match the federated credential's subject.
    let intruder = Arc::new(TestMaterial {
        sa_token: Some(issuer.sa_token("system:serviceaccount:apps:intruder")),
        ..TestMaterial::default()
    });
    let spec2 = TokenSpec::Federated {
        tenant_id: TENANT.into(),
        client_id: cid.clone(),
        namespace: "apps".into(),
        service_account: "intruder".into(),
    };
    let e = p
        .get(&spec2, VAULT, dynm(&intruder))
        .await
        .expect_err("subject");
    match &e {
        PodTokenError::Refused {
            status,
            body_snippet,
            ..
        } => {
            assert_eq!(*status, 401);
            assert!(body_snippet.contains("700213"), "{body_snippet}");
        }
        other => panic!("{other:?}"),
    }
    // A failed TokenRequest is the agent's 503, without an exchange.
    let none = TestMaterial::default().shared();
    let spec3 = TokenSpec::Federated {
        tenant_id: TENANT.into(),
        client_id: cid,
        namespace: "apps".into(),
        service_account: "nobody".into(),
    };
    let e = p.get(&spec3, VAULT, dynm(&none)).await.expect_err("no SA");
    assert!(matches!(e, PodTokenError::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("apps/nobody"), "{e}");
    assert_eq!(sim.count("entra").await, 2);
}
