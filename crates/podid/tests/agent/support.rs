//! Shared helpers of the `podid agent` tests (tests/agent and tests/agent_faults): the test world, the agent
//! as a child process, pods with loopback addresses, requests sent from a pod's address, and the objects the
//! agent reads. Included with `mod support;` (or `#[path]`) next to `mod harness;` (the controller harness).

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use podid_k8s::{AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub const NODE: &str = "pool1-vmss000000";
pub const CIDR: &str = "127.20.0.0/24";

/// A running agent.
pub struct AgentProc {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    pub probe: String,
    pub metrics: String,
    pub log: PathBuf,
}

impl AgentProc {
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    pub async fn terminate(&mut self) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .ok()
            .and_then(|r| r.ok())
            .and_then(|s| s.code())
    }
}

/// The test world: the controller's world with id-a, id-b and id-c assigned to pool1-vmss (so the node's IMDS
/// answers for them) and an app with a secret for a service-principal identity.
pub fn agent_world() -> Value {
    let mut w = world();
    let ids = w["virtualMachineScaleSets"][0]["identity"]["userAssignedIdentities"]
        .as_array_mut()
        .expect("ids");
    for n in ["id-a", "id-b", "id-c"] {
        ids.push(json!(n));
    }
    w
}

pub async fn start_env() -> Env {
    start_env_with(agent_world()).await
}

/// The simulators for `world` (with the kubelet), and the agent's node given the loopback podCIDR.
pub async fn start_env_with(world: Value) -> Env {
    let env = Env::start_with(world, true).await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    nodes
        .patch(
            NODE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"podCIDR": CIDR, "podCIDRs": [CIDR]}})),
        )
        .await
        .expect("podCIDR");
    env
}

pub async fn start_agent(env: &Env, extra: &[&str]) -> AgentProc {
    let e = env.azure.endpoints();
    let imds = e.imds.get(NODE).expect("node IMDS").clone();
    let ca = e.ca_file.clone().expect("ca file");
    let log = env
        .dir
        .path()
        .join(format!("agent-{}.log", std::process::id() ^ rand_suffix()));
    let logf = std::fs::File::create(&log).expect("log file");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_podid"));
    cmd.arg("agent")
        .arg(format!("--kubeconfig={}", env.kubeconfig.display()))
        .args([
            "--node",
            NODE,
            "--nmi-port",
            "0",
            "--http-probe-port",
            "0",
            "--prometheus-port",
            "0",
        ])
        .args([
            "--admin-bind-address",
            "127.0.0.1",
            "--iptables",
            "off",
            "--cleanup-delay-sec",
            "0",
        ])
        .arg(format!("--imds-endpoint={imds}"))
        .arg(format!("--azure-ca-file={ca}"))
        .args(extra)
        .env(
            "AZURE_ENVIRONMENT_FILEPATH",
            env.dir.path().join("azurestack.json"),
        )
        .env("PODID_LOG", "info,podid_agent=debug")
        .env_remove("FORCENAMESPACED")
        .env_remove("NODE_NAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(logf))
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn podid agent");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let read = |log: &PathBuf| std::fs::read_to_string(log).unwrap_or_default();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("agent did not start: {}", read(&log)))
        .expect("read")
        .unwrap_or_else(|| panic!("agent exited: {}", read(&log)));
    // "podid agent: serving http://ADDR probe http://ADDR/healthz metrics http://ADDR/metrics"
    let words: Vec<&str> = line.split_whitespace().collect();
    let addr: SocketAddr = words[3]
        .trim_start_matches("http://")
        .parse()
        .expect("agent addr");
    let probe = words[5].to_string();
    let metrics = words[7].to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let a = AgentProc {
        child,
        addr,
        probe,
        metrics,
        log,
    };
    // Ready once its watches have synced.
    let ready = a.probe.replace("/healthz", "/readyz");
    eventually("agent ready", WAIT, || {
        let ready = ready.clone();
        async move { (http("GET", &ready, None).await.0 == 200).then_some(()) }
    })
    .await;
    a
}

pub fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A raw HTTP/1.1 exchange from `src` (the calling pod's address) to the agent.
pub async fn raw_from(src: IpAddr, to: SocketAddr, request: &str) -> (u16, String, String) {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::new(src, 0))
        .expect("bind source address");
    let mut s = sock.connect(to).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

pub async fn get_from(
    src: IpAddr,
    to: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw_from(src, to, &req).await
}

pub const META: &[(&str, &str)] = &[("Metadata", "true")];
pub const VAULT: &str = "https%3A%2F%2Fvault.azure.net";

pub fn token_path(q: &str) -> String {
    format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}{q}")
}

pub async fn create_identity(env: &Env, ns: &str, name: &str, spec: Value) -> AzureIdentity {
    let api: Api<AzureIdentity> = Api::namespaced(env.client.clone(), ns);
    let o: AzureIdentity = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
        "metadata": {"name": name, "namespace": ns}, "spec": spec}))
    .expect("identity");
    api.create(&PostParams::default(), &o)
        .await
        .expect("create identity")
}

pub fn msi_spec(name: &str) -> Value {
    json!({"type": 0, "resourceID": uami_id(IDS, name), "clientID": client_id(name)})
}

pub async fn create_binding(env: &Env, ns: &str, name: &str, identity: &str, selector: &str) {
    let api: Api<AzureIdentityBinding> = Api::namespaced(env.client.clone(), ns);
    let o: AzureIdentityBinding = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
        "metadata": {"name": name, "namespace": ns}, "spec": {"azureIdentity": identity, "selector": selector}}))
    .expect("binding");
    api.create(&PostParams::default(), &o)
        .await
        .expect("create binding");
}

/// An AAI as the controller writes it (the agent does not care who wrote it).
pub async fn create_aai(
    env: &Env,
    pod_ns: &str,
    pod: &str,
    identity: &AzureIdentity,
    status: &str,
) -> String {
    let idname = identity.metadata.name.clone().unwrap_or_default();
    let name = format!("{pod}-{pod_ns}-{idname}");
    let api: Api<AzureAssignedIdentity> = Api::namespaced(env.client.clone(), "default");
    let mut idv = serde_json::to_value(identity).expect("identity json");
    idv["metadata"]["managedFields"] = Value::Null;
    let o: AzureAssignedIdentity = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureAssignedIdentity",
        "metadata": {"name": name, "namespace": "default", "labels": {"nodename": NODE}},
        "spec": {"azureIdentityRef": idv, "pod": pod, "podNamespace": pod_ns, "nodename": NODE}}))
    .expect("aai");
    api.create(&PostParams::default(), &o)
        .await
        .expect("create aai");
    set_aai_status(env, &name, status).await;
    name
}

pub async fn set_aai_status(env: &Env, name: &str, status: &str) {
    let api: Api<AzureAssignedIdentity> = Api::namespaced(env.client.clone(), "default");
    // Upstream's CRD has no status subresource: the controller writes status with the object.
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"status": status}})),
    )
    .await
    .expect("aai status");
}

/// A pod on the agent's node; returns its IP once the kubelet gave it one.
pub async fn create_pod(
    env: &Env,
    ns: &str,
    name: &str,
    labels: Value,
    extra_spec: Value,
) -> IpAddr {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), ns);
    let mut spec = json!({"nodeName": NODE, "containers": [{"name": "app", "image": "app"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}))
    .expect("pod");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create pod");
    eventually("pod IP", WAIT, || {
        let api = api.clone();
        async move {
            let p = api.get(name).await.ok()?;
            let s = p.status?;
            (s.phase.as_deref() == Some("Running")).then_some(())?;
            s.pod_ip?.parse().ok()
        }
    })
    .await
}

pub async fn ensure_ns(env: &Env, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let _ = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await;
}

/// Token requests IMDS saw (any answer).
pub async fn imds_token_requests(env: &Env) -> usize {
    imds_token_log(env, "oauth2/token").await.len()
}

/// Requests IMDS answered with 200 on any path that mentions a token, in any letter case or spelling.
pub async fn imds_tokens_served(env: &Env) -> usize {
    imds_token_log(env, "token")
        .await
        .iter()
        .filter(|r| r["status"].as_u64() == Some(200))
        .count()
}

/// azure-sim's log of IMDS requests whose path holds `needle` (compared case-insensitively).
async fn imds_token_log(env: &Env, needle: &str) -> Vec<Value> {
    let url = format!(
        "{}/requests?family=imds&limit=100000",
        env.azure.endpoints().control.trim_end_matches('/')
    );
    let (_, body) = http("GET", &url, None).await;
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| {
                    r["path"]
                        .as_str()
                        .is_some_and(|p| p.to_ascii_lowercase().contains(needle))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

pub fn assert_token_shape(body: &str, resource: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("token JSON {e}: {body}"));
    for k in [
        "access_token",
        "refresh_token",
        "expires_in",
        "expires_on",
        "not_before",
        "resource",
        "token_type",
    ] {
        assert!(v[k].is_string(), "{k} must be a string: {body}");
    }
    assert!(!v["access_token"].as_str().unwrap_or("").is_empty());
    assert!(
        v["expires_in"]
            .as_str()
            .unwrap_or("")
            .parse::<u64>()
            .is_ok(),
        "{body}"
    );
    assert!(
        v["expires_on"]
            .as_str()
            .unwrap_or("")
            .parse::<u64>()
            .is_ok(),
        "{body}"
    );
    assert_eq!(v["resource"], resource);
    assert_eq!(v["token_type"], "Bearer");
    v
}
