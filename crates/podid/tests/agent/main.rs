//! `podid agent` through its real interface: the binary as a child process, each Kubernetes backend (kube-sim,
//! a real kube-apiserver; `podid-kubelet` runs the pods) and azure-sim, requests over loopback HTTP. Pods get 127.20.0.0/24 addresses (the node's podCIDR), and each request
//! is sent *from* the calling pod's address (a socket bound to it), so the agent's pod-by-IP lookup works
//! exactly as on a node, without network namespaces. The wire contract is upstream NMI's (reference Appendix B).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use podid_k8s::AzurePodIdentityException;
use podid_testkit::*;
use serde_json::{Value, json};

mod hardening;
use podid_testkit::agent::*;

podid_testkit::both_backends!(
    wire_contract_standard_mode,
    lookups_modes_and_service_principals,
    debug_view_of_a_pod,
);

/// Appendix B, request by request, in standard mode.
async fn wire_contract_standard_mode(backend: Backend) {
    let env = start_env(backend).await;
    let id_a = create_identity(&env, "default", "id-a", msi_spec("id-a")).await;
    let id_c = create_identity(&env, "default", "id-c", msi_spec("id-c")).await;
    create_binding(&env, "default", "b-a", "id-a", "sel-a").await;
    create_binding(&env, "default", "b-c", "id-c", "sel-c").await;
    let bound = create_pod(
        &env,
        "default",
        "p-bound",
        json!({"aadpodidbinding": "sel-a"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-bound", &id_a, "Assigned").await;
    let unlabelled = create_pod(
        &env,
        "default",
        "p-unlabelled",
        json!({"app": "x"}),
        json!({}),
    )
    .await;
    let nobinding = create_pod(
        &env,
        "default",
        "p-nobinding",
        json!({"aadpodidbinding": "sel-zzz"}),
        json!({}),
    )
    .await;
    let created = create_pod(
        &env,
        "default",
        "p-created",
        json!({"aadpodidbinding": "sel-c"}),
        json!({}),
    )
    .await;
    let created_aai = create_aai(&env, "default", "p-created", &id_c, "Created").await;
    let excepted = create_pod(
        &env,
        "default",
        "p-excepted",
        json!({"app": "excepted"}),
        json!({}),
    )
    .await;
    let ex: AzurePodIdentityException = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzurePodIdentityException",
        "metadata": {"name": "ex", "namespace": "default"}, "spec": {"podLabels": {"app": "EXCEPTED"}}}))
    .expect("exception");
    Api::<AzurePodIdentityException>::namespaced(env.client.clone(), "default")
        .create(&PostParams::default(), &ex)
        .await
        .expect("create exception");

    let agent = start_agent(
        &env,
        &[
            "--retry-attempts-for-created",
            "2",
            "--retry-attempts-for-assigned",
            "1",
            "--find-identity-retry-interval",
            "1",
        ],
    )
    .await;
    let to = agent.addr;
    assert_eq!(http("GET", &agent.probe, None).await.1, "Active");

    let before = imds_token_requests(&env).await;
    // Metadata header missing or wrong: 400 JSON.
    for hdrs in [
        &[][..],
        &[("Metadata", "True")][..],
        &[("Metadata", "false")][..],
    ] {
        let (s, head, body) = get_from(bound, to, &token_path(""), hdrs).await;
        assert_eq!(s, 400);
        assert!(
            head.contains("content-type: application/json; charset=utf-8"),
            "{head}"
        );
        assert_eq!(
            body,
            "{\"error\":\"invalid_request\",\"error_description\":\"Required metadata header not specified\"}\n"
        );
    }
    // The header name is case-insensitive.
    let (s, _, _) = get_from(bound, to, &token_path(""), &[("METADATA", "true")]).await;
    assert_eq!(s, 200);
    // No resource.
    let (s, head, body) = get_from(
        bound,
        to,
        "/metadata/identity/oauth2/token?api-version=2018-02-01",
        META,
    )
    .await;
    assert_eq!(
        (s, body.as_str()),
        (400, "parameter resource cannot be empty\n")
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    // Unknown caller.
    let stranger: IpAddr = "127.20.0.250".parse().expect("ip");
    let (s, _, body) = get_from(stranger, to, &token_path(""), META).await;
    assert_eq!(s, 500);
    assert!(body.starts_with("pod list is empty"), "{body}");

    // The bound pod: a token in upstream's shape; the second request is served from the cache.
    let (s, head, body) = get_from(bound, to, &token_path(""), META).await;
    assert_eq!(s, 200, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let v = assert_token_shape(&body, "https://vault.azure.net");
    assert_eq!(v["client_id"], client_id("id-a"));
    let (s, _, body2) = get_from(bound, to, &token_path(""), META).await;
    assert_eq!(s, 200);
    let v2: Value = serde_json::from_str(&body2).expect("json");
    assert_eq!(v2["access_token"], v["access_token"]);
    assert_eq!(
        imds_token_requests(&env).await - before,
        1,
        "a miss costs one IMDS call, a hit none"
    );
    // By client ID (any case) and by resource ID (both parameter names).
    for q in [
        format!("&client_id={}", client_id("id-a").to_uppercase()),
        format!("&msi_res_id={}", uami_id(IDS, "id-a")),
        format!("&mi_res_id={}", uami_id(IDS, "id-a")),
    ] {
        let (s, _, body) = get_from(bound, to, &token_path(&q), META).await;
        assert_eq!(s, 200, "{q}: {body}");
    }
    // The first path segment is case-insensitive.
    let (s, _, _) = get_from(
        bound,
        to,
        &token_path("").replacen("/metadata", "/Metadata", 1),
        META,
    )
    .await;
    assert_eq!(s, 200);
    // A client ID the pod is not bound to: 404 after the (shortened) wait, redacted.
    let (s, _, body) = get_from(
        bound,
        to,
        &token_path(&format!("&client_id={}", client_id("id-b"))),
        META,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("##### REDACTED #####"), "{body}");
    assert!(
        !body.contains(&client_id("id-b")),
        "client IDs are redacted: {body}"
    );
    // object_id is refused clearly.
    let (s, _, body) = get_from(bound, to, &token_path("&object_id=abc"), META).await;
    assert_eq!(s, 400, "{body}");

    // No label / no binding: refused at once (upstream waited ~80 s).
    for ip in [unlabelled, nobinding] {
        let t = Instant::now();
        let (s, _, body) = get_from(ip, to, &token_path(""), META).await;
        assert_eq!(s, 404, "{body}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "instant refusal took {:?}",
            t.elapsed()
        );
    }

    // Created: answered the moment the AAI becomes Assigned.
    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        let r = get_from(created, to, &token_path(""), META).await;
        (r, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    set_aai_status(&env, &created_aai, "Assigned").await;
    let ((s, _, body), took) = waiter.await.expect("waiter");
    assert_eq!(s, 200, "{body}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1900),
        "took {took:?}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["client_id"],
        client_id("id-c")
    );

    // Excepted pod: straight from the node's IMDS (system-assigned without client_id).
    let (s, _, body) = get_from(excepted, to, &token_path(""), META).await;
    assert_eq!(s, 200, "{body}");
    assert_token_shape(&body, "https://vault.azure.net");
    let (s, _, body) = get_from(
        excepted,
        to,
        &token_path(&format!("&client_id={}", client_id("id-b"))),
        META,
    )
    .await;
    assert_eq!(
        s, 200,
        "excepted pods may ask for any identity on the node: {body}"
    );

    // Path confusion guard, instance metadata proxied, other paths proxied.
    for p in [
        "/metadata/identity\\oauth2\\token?resource=x",
        "/metadata/identity%5Coauth2%5Ctoken?resource=x",
        "/metadata/identity/x/oauth2/token",
    ] {
        let (s, _, body) = get_from(bound, to, p, META).await;
        assert_eq!((s, body.as_str()), (400, "Invalid request\n"), "{p}");
    }
    let (s, _, body) = get_from(bound, to, "/metadata/instance?api-version=2021-02-01", META).await;
    assert_eq!(s, 200, "instance metadata is proxied: {body}");
    assert!(body.contains("compute"), "{body}");
    let (s, _, body) = get_from(bound, to, "/metadata/instance?api-version=2021-02-01", &[]).await;
    assert_eq!(s, 400, "{body}");
    let (s, _, _) = get_from(bound, to, "/doesnotexist", META).await;
    assert_eq!(s, 404, "unknown paths are proxied (IMDS answers 404)");
    let (s, head, _) = get_from(bound, to, "//metadata/instance", META).await;
    assert_eq!(s, 301);
    assert!(head.contains("location: /metadata/instance"), "{head}");

    // /host/token: from the host only, pod named in headers, no Metadata header needed.
    let local: IpAddr = "127.0.0.1".parse().expect("ip");
    let (s, _, body) = get_from(
        local,
        to,
        &format!("/host/token/?resource={VAULT}"),
        &[("podns", "default"), ("podname", "p-bound")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["clientid"], client_id("id-a"));
    assert_token_shape(&v["token"].to_string(), "https://vault.azure.net");
    let (s, _, body) = get_from(local, to, &format!("/host/token/?resource={VAULT}"), &[]).await;
    assert_eq!(
        (s, body.as_str()),
        (400, "missing 'podname' and 'podns' from request header\n")
    );
    let (s, _, body) = get_from(
        bound,
        to,
        &format!("/host/token/?resource={VAULT}"),
        &[("podns", "default"), ("podname", "p-bound")],
    )
    .await;
    assert_eq!(
        (s, body.as_str()),
        (500, "request remote address is not from a host\n")
    );

    // Metrics with upstream names and bounded labels.
    let (_, m) = http("GET", &agent.metrics, None).await;
    assert!(m.contains("aadpodidentity_nmi_operations_duration_seconds_bucket{operation_type=\"/metadata/identity/oauth2/token\",status_code=\"200\",namespace=\"default\",resource=\"https://vault.azure.net\""), "{m}");
    assert!(m.contains("aadpodidentity_imds_operations_duration_seconds_count{operation_type=\"adal_token_msi_userassignedid\"}"), "{m}");
    assert!(
        !agent
            .logs()
            .contains(v["token"]["access_token"].as_str().unwrap_or("x")),
        "tokens are never logged"
    );
}

/// Same IP on two pods, hostNetwork pods, a pod found by the live lookup, Retry-After, managed mode,
/// blocked instance metadata, a service principal with a secret, SIGTERM.
async fn lookups_modes_and_service_principals(backend: Backend) {
    let env = start_env(backend).await;
    let id_a = create_identity(&env, "default", "id-a", msi_spec("id-a")).await;
    create_binding(&env, "default", "b-a", "id-a", "sel-a").await;
    let id_c = create_identity(&env, "default", "id-c", msi_spec("id-c")).await;
    create_binding(&env, "default", "b-c", "id-c", "sel-c").await;
    let created = create_pod(
        &env,
        "default",
        "p-created",
        json!({"aadpodidbinding": "sel-c"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-created", &id_c, "Created").await;
    // A service principal (type 1) whose secret lives in a Secret.
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
    let sp = create_pod(
        &env,
        "default",
        "p-sp",
        json!({"aadpodidbinding": "sel-sp"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-sp", &id_sp, "Assigned").await;

    let agent = start_agent(
        &env,
        &[
            "--set-retry-after-header",
            "--retry-attempts-for-created",
            "1",
            "--retry-attempts-for-assigned",
            "1",
            "--find-identity-retry-interval",
            "1",
            "--block-instance-metadata",
        ],
    )
    .await;
    let to = agent.addr;
    // Retry-After instead of 404 while the controller has not assigned.
    let (s, head, body) = get_from(created, to, &token_path(""), META).await;
    assert_eq!(s, 503, "{body}");
    assert!(head.contains("retry-after: 20"), "{head}");
    assert!(
        body.contains("in ASSIGNED state failed after 2 attempts"),
        "{body}"
    );
    // Blocked instance metadata.
    let (s, _, body) = get_from(
        created,
        to,
        "/metadata/instance?api-version=2021-02-01",
        META,
    )
    .await;
    assert_eq!(
        (s, body.as_str()),
        (403, "Request blocked by AAD Pod Identity NMI\n")
    );
    // Service principal: from Entra with the referenced secret.
    let (s, _, body) = get_from(sp, to, &token_path(""), META).await;
    assert_eq!(s, 200, "{body}");
    let v = assert_token_shape(&body, "https://vault.azure.net");
    assert_eq!(v["client_id"], APP_ID);

    // A pod created after the agent started, then its AAI: found (watch or live lookup) and answered.
    let late = create_pod(
        &env,
        "default",
        "p-late",
        json!({"aadpodidbinding": "sel-a"}),
        json!({}),
    )
    .await;
    create_aai(&env, "default", "p-late", &id_a, "Assigned").await;
    let (s, _, body) = get_from(late, to, &token_path(""), META).await;
    assert_eq!(s, 200, "{body}");

    // Two pods claiming one IP: refused, never guessed. (Status written by hand; the kubelet keeps it.)
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    for name in ["dup-1", "dup-2"] {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"aadpodidbinding": "sel-a"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "app"}]}}),
        )
        .expect("pod");
        pods.create(&PostParams::default(), &p).await.expect("pod");
        eventually("kubelet ran it", WAIT, || {
            let pods = pods.clone();
            async move { pods.get(name).await.ok()?.status?.pod_ip.map(|_| ()) }
        })
        .await;
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"podIP": "127.20.0.200", "podIPs": [{"ip": "127.20.0.200"}], "phase": "Running"}})))
            .await
            .expect("status");
    }
    let dup: IpAddr = "127.20.0.200".parse().expect("ip");
    let body = eventually("ambiguous", WAIT, || async move {
        let (s, _, body) = get_from(dup, to, &token_path(""), META).await;
        (s == 500 && body.contains("failed to match pod IP")).then_some(body)
    })
    .await;
    assert!(body.contains("dup-1") && body.contains("dup-2"), "{body}");
    // hostNetwork pods are never callers.
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p-host", "labels": {"aadpodidbinding": "sel-a"}},
        "spec": {"nodeName": NODE, "hostNetwork": true, "containers": [{"name": "app", "image": "app"}]}})).expect("pod");
    pods.create(&PostParams::default(), &p).await.expect("pod");
    pods.patch_status("p-host", &PatchParams::default(), &Patch::Merge(json!({"status": {"podIP": "127.20.0.201", "podIPs": [{"ip": "127.20.0.201"}], "phase": "Running"}})))
        .await
        .expect("status");
    let hostnet: IpAddr = "127.20.0.201".parse().expect("ip");
    let (s, _, body) = get_from(hostnet, to, &token_path(""), META).await;
    assert_eq!(s, 500, "hostNetwork pod must not be served: {body}");

    // SIGTERM: exits 0.
    let mut agent = agent;
    assert_eq!(agent.terminate().await, Some(0), "{}", agent.logs());

    // Managed mode: bindings and identities in the pod's namespace decide; no AAI needed.
    ensure_ns(&env, "team").await;
    create_identity(&env, "team", "id-b", msi_spec("id-b")).await;
    create_binding(&env, "team", "b-b", "id-b", "sel-b").await;
    let team = create_pod(
        &env,
        "team",
        "p-team",
        json!({"aadpodidbinding": "sel-b"}),
        json!({}),
    )
    .await;
    let other = create_pod(
        &env,
        "default",
        "p-other-ns",
        json!({"aadpodidbinding": "sel-b"}),
        json!({}),
    )
    .await;
    let managed = start_agent(&env, &["--operation-mode", "Managed"]).await;
    let (s, _, body) = get_from(team, managed.addr, &token_path(""), META).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["client_id"],
        client_id("id-b")
    );
    let t = Instant::now();
    let (s, _, body) = get_from(other, managed.addr, &token_path(""), META).await;
    assert_eq!(
        s, 404,
        "a binding in another namespace does not count in managed mode: {body}"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// Bad flags give upstream's messages.
#[tokio::test]
async fn bad_mode_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podid"))
        .args(["agent", "--operation-mode", "weird", "--node", "n"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("operation mode weird not supported"));
    // Invoked as `nmi` with Go-style flags and the removed --host-ip: parses (then fails on the missing node).
    let dir = tempfile::tempdir().expect("tmp");
    let nmi = dir.path().join("nmi");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_podid"), &nmi).expect("symlink");
    let out = std::process::Command::new(&nmi)
        .args([
            "-v=2",
            "--host-ip=10.0.0.4",
            "-logtostderr",
            "--iptables",
            "off",
        ])
        .env_remove("NODE_NAME")
        .output()
        .expect("run nmi");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--node (or env NODE_NAME) is required"),
        "{err}"
    );
}

/// The read-only debug view on the probe port (`GET /debug/pod?ip=`): what the agent's index and decision say
/// for a bound pod, an unlabelled pod and an unknown IP, never a token.
async fn debug_view_of_a_pod(backend: Backend) {
    let env = start_env(backend).await;
    let id_a = create_identity(&env, "default", "id-a", msi_spec("id-a")).await;
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
    let unlabelled = create_pod(&env, "default", "p-plain", json!({"app": "x"}), json!({})).await;
    let agent = start_agent(&env, &[]).await;
    let base = agent.probe.trim_end_matches("/healthz").to_string();
    let view = |q: String| {
        let url = format!("{base}/debug/pod?{q}");
        async move {
            let (s, body) = http("GET", &url, None).await;
            assert!(
                !body.contains("access_token") && !body.contains("eyJ"),
                "never a token: {body}"
            );
            (
                s,
                serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
                body,
            )
        }
    };
    // Ask for a token first so the cache holds one: the view must still not show it.
    let (s, _, _) = get_from(bound, agent.addr, &token_path(""), META).await;
    assert_eq!(s, 200);

    let (s, v, body) = view(format!("ip={bound}")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(v["ip"], bound.to_string());
    assert_eq!(v["node"], NODE);
    assert_eq!(v["mode"], "standard");
    assert_eq!(v["force_namespaced"], false);
    assert_eq!(
        v["redirect"], "Active",
        "--iptables off: nothing to wait for"
    );
    assert_eq!(v["synced"], true);
    assert_eq!(v["pod"]["lookup"], "found");
    assert_eq!(v["pod"]["namespace"], "default");
    assert_eq!(v["pod"]["name"], "p-bound");
    assert!(
        v["pod"]["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "{body}"
    );
    assert_eq!(v["verdict"]["token"], true, "{body}");
    let ids = v["verdict"]["identities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "{body}");
    assert_eq!(ids[0]["name"], "id-a");
    assert_eq!(ids[0]["namespace"], "default");
    assert_eq!(ids[0]["client_id"], client_id("id-a"));
    assert_eq!(ids[0]["id_type"], 0);
    assert_eq!(ids[0]["state"], "Assigned");

    // A request for a client ID the pod is not bound to: refused, with the doctor's code and words.
    let (_, v, body) = view(format!("ip={bound}&client_id={}", client_id("id-b"))).await;
    assert_eq!(v["verdict"]["token"], false, "{body}");
    assert_eq!(v["verdict"]["code"], "requested_not_bound", "{body}");

    let (s, v, body) = view(format!("ip={unlabelled}")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(v["pod"]["name"], "p-plain");
    assert_eq!(v["verdict"]["token"], false);
    assert_eq!(v["verdict"]["code"], "no_label", "{body}");
    assert!(
        v["verdict"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no aadpodidbinding label")),
        "{body}"
    );
    assert!(
        v["verdict"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("add label aadpodidbinding=<selector>")),
        "{body}"
    );

    let (s, v, body) = view("ip=127.20.0.250".into()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(v["pod"]["lookup"], "unknown", "{body}");
    assert!(v["verdict"].is_null(), "{body}");

    let (s, v, _) = view("ip=nope".into()).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().is_some_and(|e| e.contains("ip")));
}
