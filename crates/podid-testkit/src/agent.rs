//! The agent's loopback fixture (tests/agent, agent_faults, agent_limits and the netns suite's objects): the
//! node `pool1-vmss000000`, pods with addresses from a podCIDR the kubelet hands out, `podid agent` as a child
//! process with iptables off, and the objects the agent reads. Requests are sent *from* the calling pod's
//! address ([`crate::http::raw_from`]), so the agent's pod-by-IP lookup works as on a node.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use podid_k8s::AzureIdentity;
use serde_json::Value;

pub use crate::objects::msi_spec;
use crate::process::{Component, ComponentCmd, podid_exe};
use crate::wait::WAIT;
use crate::world::world_with_assigned;
use crate::{Backend, Env};

/// The Kubernetes node the agent serves (a pool1-vmss instance in the world).
pub const NODE: &str = "pool1-vmss000000";
/// The node's podCIDR on loopback (pods' addresses are bindable without namespaces).
pub const CIDR: &str = "127.20.0.0/24";
/// The metadata header every IMDS client sends.
pub const META: &[(&str, &str)] = &[("Metadata", "true")];
/// `https://vault.azure.net`, URL-encoded.
pub const VAULT: &str = "https%3A%2F%2Fvault.azure.net";

/// A running agent.
pub type AgentProc = Component;

/// The token path for Key Vault with query `q` appended.
pub fn token_path(q: &str) -> String {
    format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}{q}")
}

/// The test world: id-a, id-b and id-c assigned to pool1-vmss (so the node's IMDS answers for them).
pub fn agent_world() -> Value {
    world_with_assigned(&["id-a", "id-b", "id-c"])
}

/// [`start_env_with`] the [`agent_world`].
pub async fn start_env(backend: Backend) -> Env {
    start_env_with(agent_world(), backend).await
}

/// The Kubernetes `backend` and azure-sim for `world`, with the kubelet, and the agent's node given the loopback
/// podCIDR.
pub async fn start_env_with(world: Value, backend: Backend) -> Env {
    let env = Env::builder(world)
        .backend(backend)
        .kubelet(true)
        .start()
        .await;
    env.set_pod_cidr(NODE, CIDR).await;
    env
}

/// `podid agent` on loopback (`--nmi-port 0`, `--iptables off`) with `extra` flags; returns once ready.
pub async fn start_agent(env: &Env, extra: &[&str]) -> AgentProc {
    static N: AtomicU32 = AtomicU32::new(0);
    let log = env.dir.path().join(format!(
        "agent-{}.log",
        std::process::id() ^ N.fetch_add(1, Ordering::Relaxed)
    ));
    let agent = env
        .agent_cmd(ComponentCmd::podid(&podid_exe(), "agent", log), NODE)
        .args(["--nmi-port", "0", "--iptables", "off"])
        .args(extra)
        .env("PODID_LOG", "info,podid_agent=debug")
        .start()
        .await;
    agent.wait_ready(WAIT).await;
    agent
}

pub async fn create_identity(env: &Env, ns: &str, name: &str, spec: Value) -> AzureIdentity {
    env.create_identity(ns, name, spec).await
}

pub async fn create_binding(env: &Env, ns: &str, name: &str, identity: &str, selector: &str) {
    env.binding(ns, name, identity, selector).await
}

/// An AAI on [`NODE`] as the controller writes it (the agent does not care who wrote it).
pub async fn create_aai(
    env: &Env,
    pod_ns: &str,
    pod: &str,
    identity: &AzureIdentity,
    status: &str,
) -> String {
    env.create_aai(pod_ns, pod, identity, NODE, status).await
}

pub async fn set_aai_status(env: &Env, name: &str, status: &str) {
    env.set_aai_status(name, status).await
}

/// A pod on [`NODE`]; returns its IP once the kubelet gave it one.
pub async fn create_pod(
    env: &Env,
    ns: &str,
    name: &str,
    labels: Value,
    extra_spec: Value,
) -> IpAddr {
    env.running_pod(ns, name, NODE, labels, extra_spec).await
}

pub async fn ensure_ns(env: &Env, ns: &str) {
    env.ns(ns).await
}

pub async fn imds_token_requests(env: &Env) -> usize {
    env.imds_token_requests().await
}

pub async fn imds_tokens_served(env: &Env) -> usize {
    env.imds_tokens_served().await
}

/// The IPv4 address of a pod (the kubelet hands out IPv4 only).
pub fn ipv4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => panic!("pod address {v6} is not IPv4"),
    }
}

/// A token response in IMDS's shape for `resource` (every field a string, Bearer); returns it parsed.
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
