//! `podid agent` under faults, and in federated mode, through its real interface (the binary as a child
//! process, kube-sim and azure-sim in this process, requests over loopback sent from the calling pod's address;
//! see tests/agent for the set-up).
//!
//! Faults (what must hold while a dependency misbehaves: clear errors, no crash, never a token for another
//! pod's identity):
//! - kube-sim restarted mid-run (persisted state, same address): cached tokens keep being served, a pod whose
//!   token is not cached gets its own token or a clear error, an unknown caller a clear error; after the restart
//!   the watches resume (an AzureAssignedIdentity created afterwards is honoured; a deleted pod's address,
//!   handed to a pod bound to another identity, gets that identity, never the cached one).
//! - IMDS answering 500: a cache miss gets 503 after bounded retries; cached tokens are served; service resumes
//!   when IMDS does. IMDS slow (1 s): concurrent identical requests make one upstream call.
//! - Entra ID down (connections dropped, then 500s): a service principal's cached token is served, a miss gets
//!   503 with a clear message.
//!
//! Federated mode: no AzureAssignedIdentity, no controller, no ARM write. The agent asks kube-sim for the pod's
//! service-account token (audience `api://AzureADTokenExchange`) and exchanges it at azure-sim's Entra through a
//! federated identity credential whose issuer is kube-sim (azure-sim fetches kube-sim's discovery and JWKS over
//! HTTPS, trusting kube-sim's CA). Only the service account named in the credential's subject gets a token.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, PostParams};
use podid_testkit::agent::*;
use podid_testkit::*;
use serde_json::{Value, json};

/// Bound on a cache miss answered during an upstream outage (retries included), per the issue.
const OUTAGE_ANSWER_MAX: Duration = Duration::from_secs(6);
/// Bound on an instant refusal.
const INSTANT_MAX: Duration = Duration::from_secs(1);
/// Latency injected into IMDS for the coalescing check, milliseconds.
const IMDS_LATENCY_MS: u64 = 1000;
/// Concurrent identical requests in the coalescing check.
const CONCURRENT_CALLERS: usize = 8;
/// Resources (URL-encoded) besides Key Vault: each is a separate cache entry.
const STORAGE: &str = "https%3A%2F%2Fstorage.azure.com%2F";
const ARM: &str = "https%3A%2F%2Fmanagement.azure.com%2F";
const GRAPH: &str = "https%3A%2F%2Fgraph.microsoft.com%2F";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

podid_testkit::both_backends!(
    imds_errors_and_latency,
    entra_down_keeps_cached_service_principal,
    federated_mode_exchanges_service_account_tokens,
);

fn token_for(resource: &str, q: &str) -> String {
    format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}{q}")
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON {e}: {body}"))
}

/// The claims of a JWT (no signature check: azure-sim signed it; the test reads who it names).
fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("JWT payload is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT payload is not JSON: {e}"))
}

/// A 200 token answer for `client`: the body's client ID and the token's own claims agree.
fn assert_token_for(status: u16, body: &str, client: &str) -> Value {
    assert_eq!(status, 200, "{body}");
    let v = json_of(body);
    assert_eq!(v["client_id"], client, "{body}");
    let c = claims(v["access_token"].as_str().unwrap_or_default());
    let appid = c["appid"]
        .as_str()
        .or(c["azp"].as_str())
        .unwrap_or_default();
    assert_eq!(appid, client, "the token itself names the identity: {c}");
    v
}

/// A refusal or error that carries no token.
fn assert_no_token(body: &str) {
    assert!(!body.contains("access_token"), "no token may leak: {body}");
    eprintln!("refusal: {}", body.trim_end());
}

async fn set_fault(env: &Env, family: &str, fault: Value) {
    let (s, v) = env
        .control("PUT", &format!("/faults/{family}"), Some(&fault))
        .await;
    assert_eq!(s, 200, "fault {family}: {v}");
}

async fn clear_fault(env: &Env, family: &str) {
    let (s, v) = env
        .control("DELETE", &format!("/faults/{family}"), None)
        .await;
    assert_eq!(s, 200, "clear fault {family}: {v}");
}

/// Token requests seen by Entra ID (v1 and v2 token endpoints).
async fn entra_token_requests(env: &Env) -> Vec<Value> {
    env.requests("entra")
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains("/oauth2/")))
        .collect()
}

fn param<'a>(entry: &'a Value, key: &str) -> Option<&'a str> {
    entry["params"]
        .as_array()?
        .iter()
        .find(|p| p[0] == key)
        .and_then(|p| p[1].as_str())
}

/// A counter from the agent's metrics.
async fn metric(agent: &AgentProc, name: &str) -> u64 {
    let (_, m) = http("GET", &agent.metrics, None).await;
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing: {m}"))
}

fn assert_alive(agent: &mut AgentProc) {
    match agent.child.try_wait() {
        Ok(None) => {}
        other => panic!("the agent exited ({other:?}): {}", agent.logs()),
    }
}

/// kube-sim goes away and comes back (same address, persisted objects) while the agent serves pods.
// Sim-only: stopping and restarting the API server with its objects is a simulator power.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_sim_restart_mid_run() {
    let mut env = start_env(Backend::Sim).await;
    // From here on kube-sim persists its objects, so it can be restarted mid-run.
    let cfg = env.stop_kube().await;
    env.restart_kube(cfg).await;

    let id_a = create_identity(&env, "default", "id-a", msi_spec("id-a")).await;
    let id_b = create_identity(&env, "default", "id-b", msi_spec("id-b")).await;
    create_binding(&env, "default", "b-a", "id-a", "sel-a").await;
    create_binding(&env, "default", "b-b", "id-b", "sel-b").await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "sp", "namespace": "default"},
        "stringData": {"clientSecret": APP_SECRET}}))
        .expect("secret");
    Api::<Secret>::namespaced(env.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let id_sp = create_identity(
        &env,
        "default",
        "id-sp",
        json!({"type": 1, "tenantID": TENANT, "clientID": APP_ID,
        "clientPassword": {"name": "sp", "namespace": "default"}}),
    )
    .await;
    create_binding(&env, "default", "b-sp", "id-sp", "sel-sp").await;
    let pa = create_pod(
        &env,
        "default",
        "p-a",
        json!({"aadpodidbinding": "sel-a"}),
        json!({}),
    )
    .await;
    let pb = create_pod(
        &env,
        "default",
        "p-b",
        json!({"aadpodidbinding": "sel-b"}),
        json!({}),
    )
    .await;
    let psp = create_pod(
        &env,
        "default",
        "p-sp",
        json!({"aadpodidbinding": "sel-sp"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-a", &id_a, "Assigned").await;
    create_aai(&env, "default", "p-b", &id_b, "Assigned").await;
    create_aai(&env, "default", "p-sp", &id_sp, "Assigned").await;

    let mut agent = start_agent(
        &env,
        &[
            "--retry-attempts-for-created",
            "1",
            "--retry-attempts-for-assigned",
            "1",
            "--find-identity-retry-interval",
            "1",
        ],
    )
    .await;
    let to = agent.addr;
    let (s, _, body) = get_from(pa, to, &token_path(""), META).await;
    let cached = assert_token_for(s, &body, &client_id("id-a"));

    let cfg = env.stop_kube().await;
    let down = Instant::now();
    // Cached: answered as before.
    let (s, _, body) = get_from(pa, to, &token_path(""), META).await;
    let v = assert_token_for(s, &body, &client_id("id-a"));
    assert_eq!(v["access_token"], cached["access_token"]);
    // Not cached, pod and AAI in the index, identity through IMDS: its own token (never id-a's).
    let (s, _, body) = get_from(pb, to, &token_path(""), META).await;
    assert_token_for(s, &body, &client_id("id-b"));
    // Not cached and needing the API (the service principal's Secret): a clear 503, no token.
    let t = Instant::now();
    let (s, _, body) = get_from(psp, to, &token_path(""), META).await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("reading Secret default/sp failed"), "{body}");
    assert_no_token(&body);
    assert!(t.elapsed() < OUTAGE_ANSWER_MAX, "took {:?}", t.elapsed());
    // An unknown caller: the live lookup fails, clearly.
    let stranger: IpAddr = "127.20.0.250".parse().expect("ip");
    let t = Instant::now();
    let (s, _, body) = get_from(stranger, to, &token_path(""), META).await;
    assert_eq!(s, 500, "{body}");
    assert!(
        body.starts_with("pod list is empty") && body.contains("API lookup failed"),
        "{body}"
    );
    assert_no_token(&body);
    assert!(t.elapsed() < OUTAGE_ANSWER_MAX, "took {:?}", t.elapsed());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_alive(&mut agent);
    let outage = down.elapsed();

    env.restart_kube(cfg).await;
    let up = Instant::now();
    // The Secret is readable again: the service principal is served (the failure was not cached as a token).
    let (s, body) = eventually("service principal after the restart", WAIT, || async move {
        let (s, _, body) = get_from(psp, to, &token_path(""), META).await;
        (s == 200).then_some((s, body))
    })
    .await;
    assert_token_for(s, &body, APP_ID);
    // A pod and AAI created after the restart: only the resumed AAI watch can tell the agent.
    let late = create_pod(
        &env,
        "default",
        "p-late",
        json!({"aadpodidbinding": "sel-b"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-late", &id_b, "Assigned").await;
    let (s, body) = eventually("a pod created after the restart", WAIT, || async move {
        let (s, _, body) = get_from(late, to, &token_path(""), META).await;
        (s == 200).then_some((s, body))
    })
    .await;
    assert_token_for(s, &body, &client_id("id-b"));
    let resumed = up.elapsed();
    // And p-a's cached token is still the same one: the restart did not disturb the cache.
    let (s, _, body) = get_from(pa, to, &token_path(""), META).await;
    let v = assert_token_for(s, &body, &client_id("id-a"));
    assert_eq!(v["access_token"], cached["access_token"]);
    // The resumed pod watch sees deletions: p-a goes, its address is handed to a pod bound to id-b, and that
    // pod gets id-b's token, never p-a's cached id-a token.
    Api::<Pod>::namespaced(env.client.clone(), "default")
        .delete("p-a", &DeleteParams::default())
        .await
        .expect("delete p-a");
    eventually("the agent forgets p-a", WAIT, || async move {
        let (s, _, _) = get_from(pa, to, &token_path(""), META).await;
        (s != 200).then_some(())
    })
    .await;
    let reuse = create_pod(
        &env,
        "default",
        "p-reuse",
        json!({"aadpodidbinding": "sel-b"}),
        json!({}),
    )
    .await;
    assert_eq!(
        reuse, pa,
        "the kubelet hands the freed address to the next pod"
    );
    let (s, _, body) = get_from(reuse, to, &token_path(""), META).await;
    assert_ne!(s, 200, "no AzureAssignedIdentity yet, so no token: {body}");
    assert_no_token(&body);
    create_aai(&env, "default", "p-reuse", &id_b, "Assigned").await;
    let (s, body) = eventually("the new owner of the address", WAIT, || async move {
        let (s, _, body) = get_from(reuse, to, &token_path(""), META).await;
        (s == 200).then_some((s, body))
    })
    .await;
    assert_token_for(s, &body, &client_id("id-b"));
    assert!(
        metric(
            &agent,
            "aadpodidentity_kubernetes_api_operations_errors_count{operation_type=\"get_secret\"}"
        )
        .await
            >= 1
    );
    assert_alive(&mut agent);
    eprintln!(
        "figures: kube-sim down {outage:?}; watches resumed and new pod served {resumed:?} after the restart"
    );
    assert_eq!(agent.terminate().await, Some(0), "{}", agent.logs());
}

/// IMDS answering 500, then slow.
async fn imds_errors_and_latency(backend: Backend) {
    let env = start_env(backend).await;
    let id_a = create_identity(&env, "default", "id-a", msi_spec("id-a")).await;
    create_binding(&env, "default", "b-a", "id-a", "sel-a").await;
    let pa = create_pod(
        &env,
        "default",
        "p-a",
        json!({"aadpodidbinding": "sel-a"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-a", &id_a, "Assigned").await;
    let mut agent = start_agent(&env, &[]).await;
    let to = agent.addr;
    let me = client_id("id-a");
    let (s, _, body) = get_from(pa, to, &token_path(""), META).await;
    let cached = assert_token_for(s, &body, &me);

    set_fault(&env, "imds", json!({"status": 500})).await;
    let (s, _, body) = get_from(pa, to, &token_path(""), META).await;
    let v = assert_token_for(s, &body, &me);
    assert_eq!(
        v["access_token"], cached["access_token"],
        "served from the cache"
    );
    let before = imds_token_requests(&env).await;
    let t = Instant::now();
    let (s, _, body) = get_from(pa, to, &token_for(STORAGE, ""), META).await;
    let miss_took = t.elapsed();
    assert_eq!(s, 503, "{body}");
    assert!(
        body.contains("IMDS") && body.contains("500"),
        "a clear message: {body}"
    );
    assert_no_token(&body);
    assert!(
        miss_took < OUTAGE_ANSWER_MAX,
        "bounded retries, took {miss_took:?}"
    );
    let attempts = imds_token_requests(&env).await - before;
    assert!(
        (2..=3).contains(&attempts),
        "bounded retries: {attempts} IMDS calls"
    );
    // Asked again at once: the same error from the short failure pause, no further IMDS call.
    let t = Instant::now();
    let (s, _, body) = get_from(pa, to, &token_for(STORAGE, ""), META).await;
    assert_eq!(s, 503, "{body}");
    if t.elapsed() < Duration::from_millis(500) {
        assert_eq!(
            imds_token_requests(&env).await - before,
            attempts,
            "no hammering"
        );
    }
    // Still cached while IMDS fails.
    let (s, _, body) = get_from(pa, to, &token_path(""), META).await;
    assert_token_for(s, &body, &me);

    clear_fault(&env, "imds").await;
    let t = Instant::now();
    let (s, body) = eventually("IMDS back", WAIT, || async move {
        let (s, _, body) = get_from(pa, to, &token_for(STORAGE, ""), META).await;
        (s == 200).then_some((s, body))
    })
    .await;
    let recovered = t.elapsed();
    let v = assert_token_for(s, &body, &me);
    assert_eq!(v["resource"], "https://storage.azure.com/");

    // Slow IMDS: concurrent identical misses share one upstream call.
    set_fault(&env, "imds", json!({"latencyMs": IMDS_LATENCY_MS})).await;
    let before = imds_token_requests(&env).await;
    let coalesced_before = metric(&agent, "podid_agent_token_coalesced_count").await;
    let hits_before = metric(&agent, "podid_agent_token_cache_hits_count").await;
    let t = Instant::now();
    let calls: Vec<_> = (0..CONCURRENT_CALLERS)
        .map(|_| tokio::spawn(async move { get_from(pa, to, &token_for(ARM, ""), META).await }))
        .collect();
    let mut tokens = Vec::new();
    for c in calls {
        let (s, _, body) = c.await.expect("caller");
        tokens.push(assert_token_for(s, &body, &me)["access_token"].clone());
    }
    let slow_took = t.elapsed();
    assert!(
        slow_took >= Duration::from_millis(IMDS_LATENCY_MS),
        "the latency was in the path: {slow_took:?}"
    );
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(
        imds_token_requests(&env).await - before,
        1,
        "{CONCURRENT_CALLERS} concurrent identical requests, one IMDS call"
    );
    // Every caller but the one that started the flight joined it (or, on a loaded machine, arrived after it
    // and hit the cache it filled).
    let coalesced = metric(&agent, "podid_agent_token_coalesced_count").await - coalesced_before;
    let hits = metric(&agent, "podid_agent_token_cache_hits_count").await - hits_before;
    assert_eq!(
        coalesced + hits,
        CONCURRENT_CALLERS as u64 - 1,
        "coalesced {coalesced}, hits {hits}"
    );
    clear_fault(&env, "imds").await;
    assert_alive(&mut agent);
    eprintln!(
        "figures: IMDS 500 miss answered in {miss_took:?} after {attempts} calls; recovered {recovered:?} after the fault cleared; {CONCURRENT_CALLERS} callers through 1 s latency in {slow_took:?}, 1 IMDS call, {coalesced} joined the flight"
    );
}

/// Entra ID unreachable, then failing, while a service principal's token is cached.
async fn entra_down_keeps_cached_service_principal(backend: Backend) {
    let env = start_env(backend).await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "sp", "namespace": "default"},
        "stringData": {"clientSecret": APP_SECRET}}))
        .expect("secret");
    Api::<Secret>::namespaced(env.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let id_sp = create_identity(
        &env,
        "default",
        "id-sp",
        json!({"type": 1, "tenantID": TENANT, "clientID": APP_ID,
        "clientPassword": {"name": "sp", "namespace": "default"}}),
    )
    .await;
    create_binding(&env, "default", "b-sp", "id-sp", "sel-sp").await;
    let psp = create_pod(
        &env,
        "default",
        "p-sp",
        json!({"aadpodidbinding": "sel-sp"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-sp", &id_sp, "Assigned").await;
    let mut agent = start_agent(&env, &[]).await;
    let to = agent.addr;
    let (s, _, body) = get_from(psp, to, &token_path(""), META).await;
    let cached = assert_token_for(s, &body, APP_ID);

    // Down: connections dropped.
    set_fault(&env, "entra", json!({"drop": true})).await;
    let (s, _, body) = get_from(psp, to, &token_path(""), META).await;
    let v = assert_token_for(s, &body, APP_ID);
    assert_eq!(v["access_token"], cached["access_token"]);
    let t = Instant::now();
    let (s, _, body) = get_from(psp, to, &token_for(STORAGE, ""), META).await;
    let dropped_took = t.elapsed();
    assert_eq!(s, 503, "{body}");
    assert!(
        body.contains(TENANT) || body.to_lowercase().contains("entra"),
        "names what failed: {body}"
    );
    assert_no_token(&body);
    assert!(dropped_took < OUTAGE_ANSWER_MAX, "took {dropped_took:?}");
    // Failing: 500s, the status named in the message.
    set_fault(&env, "entra", json!({"status": 500})).await;
    let t = Instant::now();
    let (s, _, body) = get_from(psp, to, &token_for(GRAPH, ""), META).await;
    let failing_took = t.elapsed();
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("500"), "{body}");
    assert_no_token(&body);
    assert!(failing_took < OUTAGE_ANSWER_MAX, "took {failing_took:?}");
    let (s, _, body) = get_from(psp, to, &token_path(""), META).await;
    assert_token_for(s, &body, APP_ID);

    clear_fault(&env, "entra").await;
    let (s, body) = eventually("Entra back", WAIT, || async move {
        let (s, _, body) = get_from(psp, to, &token_for(STORAGE, ""), META).await;
        (s == 200).then_some((s, body))
    })
    .await;
    assert_token_for(s, &body, APP_ID);
    assert_alive(&mut agent);
    assert!(
        !agent.logs().contains(APP_SECRET),
        "the secret is never logged"
    );
    eprintln!(
        "figures: Entra dropped: miss answered in {dropped_took:?}; Entra 500: in {failing_took:?}"
    );
}

/// Federated mode: the pod's service-account token exchanged at Entra through a federated credential.
async fn federated_mode_exchanges_service_account_tokens(backend: Backend) {
    // azure-sim trusts the API server's CA (`<dir>/kube/ca.crt`, written before azure-sim starts) to fetch its
    // issuer discovery.
    let mut w = agent_world();
    w["sim"] = json!({"trustCaFiles": ["kube/ca.crt"]});
    let mut env = start_env_with(w, backend).await;
    // The issuer's discovery and keys are public, as an AKS OIDC issuer's are (kube-sim binds them to
    // system:unauthenticated itself; a real API server only to service accounts).
    Api::<ClusterRoleBinding>::all(env.client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "test:oidc-discovery-public"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "system:service-account-issuer-discovery"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                              "name": "system:unauthenticated"}]}))
            .expect("binding"),
        )
        .await
        .expect("public issuer discovery");
    // The credential trusting the API server's service-account issuer for default/sa-good, on id-a.
    let issuer = env.kube.url().to_string();
    let mut w = agent_world();
    for id in w["userAssignedIdentities"].as_array_mut().expect("ids") {
        if id["name"] == "id-a" {
            id["federatedIdentityCredentials"] = json!([{"name": "kube-sim", "issuer": issuer,
                "subject": "system:serviceaccount:default:sa-good"}]);
        }
    }
    let (s, v) = env.control("PUT", "/world", Some(&w)).await;
    assert_eq!(s, 200, "{v}");

    env.service_account("default", "sa-good").await;
    env.service_account("default", "sa-other").await;
    // No tenant in the spec is upstream's usual type-0 identity; federated mode needs one.
    create_identity(
        &env,
        "default",
        "id-a",
        json!({"type": 0, "resourceID": uami_id(IDS, "id-a"), "clientID": client_id("id-a"), "tenantID": TENANT}),
    )
    .await;
    create_binding(&env, "default", "b-a", "id-a", "sel-a").await;
    let sa = |n: &str| json!({"serviceAccountName": n});
    let good = create_pod(
        &env,
        "default",
        "p-good",
        json!({"aadpodidbinding": "sel-a"}),
        sa("sa-good"),
    )
    .await;
    let good2 = create_pod(
        &env,
        "default",
        "p-good-2",
        json!({"aadpodidbinding": "sel-a"}),
        sa("sa-good"),
    )
    .await;
    let other = create_pod(
        &env,
        "default",
        "p-other",
        json!({"aadpodidbinding": "sel-a"}),
        sa("sa-other"),
    )
    .await;
    let unbound = create_pod(
        &env,
        "default",
        "p-unbound",
        json!({"aadpodidbinding": "sel-zzz"}),
        sa("sa-good"),
    )
    .await;

    create_identity(
        &env,
        "default",
        "id-nt",
        json!({"type": 0, "resourceID": uami_id(IDS, "id-b"), "clientID": client_id("id-b")}),
    )
    .await;
    create_binding(&env, "default", "b-nt", "id-nt", "sel-nt").await;
    let notenant = create_pod(
        &env,
        "default",
        "p-notenant",
        json!({"aadpodidbinding": "sel-nt"}),
        sa("sa-good"),
    )
    .await;

    let mut agent = start_agent(&env, &["--operation-mode", "federated"]).await;
    let to = agent.addr;
    let imds_before = imds_token_requests(&env).await;

    // The bound pod with the credential's service account: a token naming id-a.
    let (s, _, body) = get_from(good, to, &token_path(""), META).await;
    let v = assert_token_for(s, &body, &client_id("id-a"));
    assert_token_shape(&body, "https://vault.azure.net");
    let c = claims(v["access_token"].as_str().unwrap_or_default());
    assert_eq!(c["xms_mirid"], uami_id(IDS, "id-a"), "{c}");
    assert_eq!(c["tid"], TENANT, "{c}");
    // Entra saw a jwt-bearer client assertion for id-a on the v2 endpoint.
    let entra = entra_token_requests(&env).await;
    assert_eq!(entra.len(), 1, "{entra:?}");
    let e = &entra[0];
    assert_eq!(e["status"], 200, "{e}");
    assert_eq!(e["path"], format!("/{TENANT}/oauth2/v2.0/token"), "{e}");
    assert_eq!(param(e, "grant_type"), Some("client_credentials"), "{e}");
    assert_eq!(param(e, "client_assertion_type"), Some(JWT_BEARER), "{e}");
    assert_eq!(param(e, "client_assertion"), Some("[REDACTED]"), "{e}");
    assert_eq!(
        param(e, "client_id"),
        Some(client_id("id-a").as_str()),
        "{e}"
    );

    // A second pod of the same service account: the cached token, no new exchange.
    let (s, _, body) = get_from(good2, to, &token_path(""), META).await;
    let v2 = assert_token_for(s, &body, &client_id("id-a"));
    assert_eq!(
        v2["access_token"], v["access_token"],
        "cache keyed by (identity, namespace, service account)"
    );
    assert_eq!(
        entra_token_requests(&env).await.len(),
        1,
        "served from the cache"
    );

    // Same label, another service account: Entra refuses the subject; passed through, never a token.
    let (s, _, body) = get_from(other, to, &token_path(""), META).await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains("AADSTS700213") || body.contains("AADSTS70021"),
        "{body}"
    );
    assert_no_token(&body);
    let entra = entra_token_requests(&env).await;
    assert_eq!(
        entra.len(),
        2,
        "one exchange attempt for the other service account, not retried: {entra:?}"
    );
    assert_eq!(entra[1]["status"], 401, "{}", entra[1]);
    // And that refusal did not poison the good service account's entry.
    let (s, _, body) = get_from(good, to, &token_path(""), META).await;
    assert_token_for(s, &body, &client_id("id-a"));

    // No binding: refused at once.
    let t = Instant::now();
    let (s, _, body) = get_from(unbound, to, &token_path(""), META).await;
    assert_eq!(s, 404, "{body}");
    assert_no_token(&body);
    assert!(t.elapsed() < INSTANT_MAX, "took {:?}", t.elapsed());

    // An identity without spec.tenantID (upstream's usual type 0): never a token.
    let (s, _, body) = get_from(notenant, to, &token_path(""), META).await;
    assert_ne!(s, 200, "{body}");
    assert_no_token(&body);

    // Entra down: the cached token is served, a miss is a clear 503.
    set_fault(&env, "entra", json!({"drop": true})).await;
    let (s, _, body) = get_from(good2, to, &token_path(""), META).await;
    let cached = assert_token_for(s, &body, &client_id("id-a"));
    assert_eq!(cached["access_token"], v["access_token"]);
    let t = Instant::now();
    let (s, _, body) = get_from(good, to, &token_for(STORAGE, ""), META).await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("Entra ID token request failed"), "{body}");
    assert_no_token(&body);
    assert!(t.elapsed() < OUTAGE_ANSWER_MAX, "took {:?}", t.elapsed());
    clear_fault(&env, "entra").await;

    // Federated mode writes nothing to ARM and never asks IMDS for tokens.
    assert_eq!(env.arm_requests("PATCH").await, 0);
    assert_eq!(env.arm_requests("PUT").await, 0);
    assert_eq!(imds_token_requests(&env).await, imds_before);
    assert_alive(&mut agent);
    assert!(
        !agent
            .logs()
            .contains(v["access_token"].as_str().unwrap_or("x")),
        "tokens are never logged"
    );

    // kube-sim down: the cached token is served; a miss needs a TokenRequest and gets a clear 503.
    // Sim-only from here: stopping the API server is a simulator power.
    if backend != Backend::Sim {
        return;
    }
    let _ = env.stop_kube().await;
    let (s, _, body) = get_from(good2, to, &token_path(""), META).await;
    assert_token_for(s, &body, &client_id("id-a"));
    let t = Instant::now();
    let (s, _, body) = get_from(good, to, &token_for(GRAPH, ""), META).await;
    assert_eq!(s, 503, "{body}");
    assert!(
        body.contains("service account token for default/sa-good failed"),
        "{body}"
    );
    assert_no_token(&body);
    assert!(t.elapsed() < OUTAGE_ANSWER_MAX, "took {:?}", t.elapsed());
    assert_alive(&mut agent);
}
