//! The node-in-a-namespace fixture: prerequisites, the namespace runtime every test body runs on, the agent as a
//! child process inside the node namespace, a pod-side HTTP client, the real iptables listing, and the Python SDK
//! runner. See `main.rs` for the model.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use podid_k8s::AzureIdentity;
use podid_net::testbed::{self, NodeNet, PodNet};
use podid_playground::proc::PROXY_VARS;
pub use podid_testkit::agent::{AgentProc, NODE, ipv4, msi_spec};
use podid_testkit::tools::{find_tool, repo_root, skip_or_fail};
use podid_testkit::world::world_with_assigned;
use podid_testkit::*;
use serde_json::{Value, json};

// === constants ===

/// The node's pod CIDR: the testbed bridge is 10.244.0.1/24, and the kubelet hands out .2 upwards.
pub const POD_CIDR: &str = "10.244.0.0/24";
/// What pods call: the instance metadata address, redirected in the node namespace only.
pub const METADATA: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(169, 254, 169, 254), 80);
/// The agent's token server port (the DNAT target, 127.0.0.1:2579 in the node namespace).
pub const NMI_PORT: u16 = 2579;
/// The five identities of the matrix, all assigned to pool1-vmss in azure-sim.
pub const IDENTITIES: [&str; 5] = ["id-a", "id-b", "id-c", "id-d", "id-e"];
/// A pod's TCP connect to the metadata address, when it is expected to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A pod's connect when no redirect is expected (the SYN is dropped in the node namespace).
pub const NO_REDIRECT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Reading one response from the agent (the longest legitimate wait is the shortened identity budget, ~2 s).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
/// The agent prints its listening line within this.
pub const AGENT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// One Python SDK run (interpreter start, azure-identity import, token).
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(60);
/// Shutting the namespace runtime down after the test body.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The token resource every request asks for.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// Environment variable that turns missing SDK clients into a failure.
pub const REQUIRE_CLIENTS_ENV: &str = "PODID_REQUIRE_CLIENTS";
/// The iptables binaries the agent drives (both backends are checked after cleanup).
pub const IPTABLES_TOOLS: [&str; 9] = [
    "iptables",
    "iptables-save",
    "iptables-restore",
    "iptables-legacy",
    "iptables-legacy-save",
    "iptables-legacy-restore",
    "iptables-nft",
    "iptables-nft-save",
    "iptables-nft-restore",
];

// === prerequisites ===

/// Root, iproute2 and both iptables backends; otherwise a skip (or a failure under PODID_REQUIRE_NETNS=1).
pub fn prerequisites(test: &str) -> bool {
    match testbed::netns_available(test) {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => panic!("{e}"),
    }
    let missing: Vec<&str> = IPTABLES_TOOLS
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        skip_or_fail(
            test,
            testbed::REQUIRE_NETNS_ENV,
            &format!(
                "{} not installed (apt-get install -y iptables)",
                missing.join(", ")
            ),
        );
        return false;
    }
    true
}

/// Host-namespace sysctls the tests must leave alone (read from this thread, which is in the host namespace).
pub fn host_sysctls() -> Vec<(String, String)> {
    [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv4/conf/all/route_localnet",
    ]
    .iter()
    .map(|p| {
        (
            p.to_string(),
            std::fs::read_to_string(p).unwrap_or_default(),
        )
    })
    .collect()
}

/// Runs `body` as a task on a runtime whose threads live in a fresh node namespace (bridge 10.244.0.1/24), so
/// kube-sim, azure-sim and every client socket the body opens are the node's. Afterwards (also after a panic,
/// which is re-raised here) the runtime stops, then the namespaces go; the host's sysctls must be unchanged.
pub fn in_node<F, Fut>(body: F)
where
    F: FnOnce(Arc<NodeNet>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    in_node_inner(body);
}

/// Tests of this binary run in parallel; a measurement of latency takes this lock's write side to run alone.
pub static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// [`in_node`] with every other test of this binary waiting (for latency measurements).
pub fn in_node_alone<F, Fut>(body: F)
where
    F: FnOnce(Arc<NodeNet>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    in_node_inner(body);
}

fn in_node_inner<F, Fut>(body: F)
where
    F: FnOnce(Arc<NodeNet>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let host_before = host_sysctls();
    let node = Arc::new(
        NodeNet::builder()
            .name("agent-node")
            .create()
            .expect("node namespace"),
    );
    // As on a real node, kube-proxy's localnet rule guards the node's loopback (see LOCALNET_RULE).
    node_localnet_rule(&node, "-I");
    let rt = node.netns().runtime().expect("node namespace runtime");
    // The future is created here but first polled on a runtime thread, inside the node namespace.
    let outcome = rt.block_on(rt.spawn(body(node.clone())));
    rt.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    drop(node);
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test body: {e}"),
    }
    assert_eq!(
        host_sysctls(),
        host_before,
        "the host namespace's sysctls are untouched"
    );
}

// === the world ===

/// The controller tests' world with the five matrix identities assigned to pool1-vmss (so the node's IMDS
/// answers for them, as after the controller assigned them).
pub fn agent_world() -> Value {
    world_with_assigned(&IDENTITIES)
}

/// The Kubernetes `backend` (kube-sim, or a real control plane whose processes start in the node namespace too)
/// and azure-sim, on the calling runtime (call from a node-namespace task), with the kubelet, and the node's pod
/// CIDR.
pub async fn start_env(backend: Backend) -> Env {
    let env = Env::builder(agent_world())
        .backend(backend)
        .kubelet(true)
        .start()
        .await;
    env.set_pod_cidr(NODE, POD_CIDR).await;
    env
}

/// An MSI AzureIdentity named like the Azure identity it points at, in `default`.
pub async fn create_identity(env: &Env, name: &str) -> AzureIdentity {
    env.create_identity("default", name, msi_spec(name)).await
}

/// An `Assigned` AzureAssignedIdentity for `default/<pod>` on the node.
pub async fn create_assigned(env: &Env, pod: &str, identity: &AzureIdentity) {
    env.create_aai("default", pod, identity, NODE, "Assigned")
        .await;
}

/// A pod in `default` on the node; returns the IP the kubelet gave it.
pub async fn create_pod(env: &Env, name: &str, labels: Value) -> Ipv4Addr {
    ipv4(
        env.running_pod("default", name, NODE, labels, json!({}))
            .await,
    )
}

/// The pod's network namespace on the node's bridge, with the address the kubelet assigned.
pub async fn attach_pod(node: &Arc<NodeNet>, ip: Ipv4Addr) -> Arc<PodNet> {
    let node = node.clone();
    let pod = tokio::task::spawn_blocking(move || node.add_pod(ip))
        .await
        .expect("attach task")
        .expect("pod namespace");
    Arc::new(pod)
}

// === the agent ===

/// Token requests `agent` answered with `status` (upstream's `aadpodidentity_nmi_operations_duration_seconds`
/// histogram counts, summed over namespaces and resources).
pub async fn token_requests_with_status(agent: &AgentProc, status: u16) -> f64 {
    let (_, text) = http("GET", &agent.metrics, None).await;
    let prefix = "aadpodidentity_nmi_operations_duration_seconds_count{operation_type=\"/metadata/identity/oauth2/token\"";
    let code = format!("status_code=\"{status}\"");
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&code))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Starts the agent in the node namespace with the redirect managed (`--iptables manage`, 169.254.169.254:80 to
/// 127.0.0.1:2579, spoof check on), `extra` flags, and optionally another `PATH` (fake iptables). Returns once it
/// listens and its watches synced.
pub async fn start_agent(
    env: &Env,
    node: &NodeNet,
    tag: &str,
    extra: &[&str],
    path: Option<&str>,
) -> AgentProc {
    let log = env.dir.path().join(format!("agent-{tag}.log"));
    let ip = find_tool("ip").expect("ip");
    let cmd = ComponentCmd::new(ip, log)
        .args([
            OsStr::new("netns"),
            OsStr::new("exec"),
            OsStr::new(node.name()),
        ])
        .arg(podid_exe())
        .arg("agent");
    let mut cmd = env
        .agent_cmd(cmd, NODE)
        .args(["--nmi-port", &NMI_PORT.to_string(), "--iptables", "manage"])
        .args(["--metadata-ip", "169.254.169.254", "--metadata-port", "80"])
        .args(extra)
        .env("PODID_LOG", "info,podid_agent=debug,podid_netfilter=debug")
        .env_remove("KUBECONFIG")
        .start_timeout(AGENT_START_TIMEOUT);
    for v in PROXY_VARS {
        cmd = cmd.env_remove(v);
    }
    if let Some(p) = path {
        cmd = cmd.env("PATH", p);
    }
    let agent = cmd.start().await;
    // "podid agent: serving http://ADDR probe http://ADDR/healthz metrics http://ADDR/metrics"
    assert_eq!(
        agent.line.split_whitespace().count(),
        8,
        "agent line: {}",
        agent.line
    );
    agent.wait_ready(WAIT).await;
    agent
}

/// Waits until `/healthz` says `Active` (the redirect is in place).
pub async fn wait_active(agent: &AgentProc) {
    eventually("agent Active", WAIT, || async {
        (agent.health().await == "Active").then_some(())
    })
    .await;
}

// === iptables in the node namespace ===

/// `<tool> -t nat -S` run inside the node namespace with the real binary.
pub fn nat_rules(node: &NodeNet, tool: &str) -> String {
    let bin = find_tool(tool).unwrap_or_else(|| panic!("{tool} not installed"));
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["-w", "5", "-t", "nat", "-S"]);
    let out = node.netns().exec(&mut cmd).expect("run iptables");
    assert!(
        out.status.success(),
        "{tool} -t nat -S in the node namespace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both backends' nat tables in the node namespace, joined (for "no aad-metadata anywhere").
pub fn nat_rules_both(node: &NodeNet) -> String {
    format!(
        "# legacy\n{}# nft\n{}",
        nat_rules(node, "iptables-legacy"),
        nat_rules(node, "iptables-nft")
    )
}

/// `net.ipv4.conf.all.route_localnet` of the node namespace.
pub fn node_route_localnet(node: &NodeNet) -> String {
    node.netns()
        .run(|| std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/route_localnet"))
        .expect("enter node namespace")
        .expect("read route_localnet")
        .trim()
        .to_string()
}

// === pods calling 169.254.169.254 ===

/// One answer to a pod's request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub took: Duration,
}

impl Reply {
    /// The `appid` claim of the token in a 200 body (the identity the token is for), if there is one.
    pub fn token_appid(&self) -> Option<String> {
        if self.status != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&self.body).ok()?;
        let token = v["access_token"].as_str()?;
        let claims = jwt_claims(token)?;
        claims["appid"].as_str().map(str::to_string)
    }

    /// A token of any kind in the body.
    pub fn has_token(&self) -> bool {
        self.body.contains("access_token")
    }
}

/// The payload claims of a JWT (signature not checked: only the identity it names matters here).
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The token path with `client_id` when given.
pub fn token_path(client: Option<&str>) -> String {
    let mut p = format!(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
        VAULT_RESOURCE.replace(':', "%3A").replace('/', "%2F")
    );
    if let Some(c) = client {
        p.push_str("&client_id=");
        p.push_str(c);
    }
    p
}

/// GET `path` from inside `pod` to 169.254.169.254:80, from the pod's own address or `src` (a spoofed one). The
/// socket is created in the pod's namespace. Errors are connection failures (no answer at all).
pub fn pod_get_blocking(
    pod: &PodNet,
    src: Option<Ipv4Addr>,
    path: &str,
    connect_timeout: Duration,
) -> Result<Reply, String> {
    pod_get_at(pod, METADATA, src, path, connect_timeout)
}

/// GET `path` from inside `pod` to `dst` (see [`pod_get_blocking`]).
pub fn pod_get_at(
    pod: &PodNet,
    dst: SocketAddrV4,
    src: Option<Ipv4Addr>,
    path: &str,
    connect_timeout: Duration,
) -> Result<Reply, String> {
    let started = Instant::now();
    let mut s = match src {
        None => pod.tcp_connect(SocketAddr::V4(dst), connect_timeout),
        Some(ip) => pod.tcp_connect_from(ip, dst, connect_timeout),
    }
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(RESPONSE_TIMEOUT))
        .map_err(|e| format!("set timeout: {e}"))?;
    s.set_write_timeout(Some(RESPONSE_TIMEOUT))
        .map_err(|e| format!("set timeout: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nMetadata: true\r\nConnection: close\r\n\r\n",
        dst.ip()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(Reply {
        status,
        body,
        took: started.elapsed(),
    })
}

/// [`pod_get_blocking`] on the blocking pool.
pub async fn pod_get(
    pod: &Arc<PodNet>,
    src: Option<Ipv4Addr>,
    path: String,
    connect_timeout: Duration,
) -> Result<Reply, String> {
    let pod = pod.clone();
    tokio::task::spawn_blocking(move || pod_get_blocking(&pod, src, &path, connect_timeout))
        .await
        .map_err(|e| format!("request task: {e}"))?
}

/// [`pod_get_at`] on the blocking pool: a pod calling `dst` directly (not the metadata address).
pub async fn pod_get_direct(
    pod: &Arc<PodNet>,
    dst: SocketAddrV4,
    path: String,
    connect_timeout: Duration,
) -> Result<Reply, String> {
    let pod = pod.clone();
    tokio::task::spawn_blocking(move || pod_get_at(&pod, dst, None, &path, connect_timeout))
        .await
        .map_err(|e| format!("request task: {e}"))?
}

// === the node's IMDS, straight from a pod ===

/// The node's IMDS as azure-sim serves it here: a port on the node namespace's 127.0.0.1.
pub fn node_imds(env: &Env) -> SocketAddrV4 {
    let url = env
        .azure
        .endpoints()
        .imds
        .get(NODE)
        .expect("node IMDS")
        .clone();
    url.trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("IMDS address {url}: {e}"))
}

/// kube-proxy's localnet rule (its `KUBE-FIREWALL` chain on every real node): connections to the node's
/// 127.0.0.0/8 from anywhere but the node are dropped unless a DNAT (the agent's redirect) put them there. The
/// agent sets `route_localnet` for its DNAT to 127.0.0.1:2579, which would otherwise open every loopback listener
/// of the node (here azure-sim's IMDS, the agent's probe) to a pod that routes 127.0.0.1 out of its `eth0`.
const LOCALNET_RULE: [&str; 16] = [
    "!",
    "-s",
    "127.0.0.0/8",
    "-d",
    "127.0.0.0/8",
    "-m",
    "conntrack",
    "!",
    "--ctstate",
    "RELATED,ESTABLISHED,DNAT",
    "-m",
    "comment",
    "--comment",
    "block incoming localnet connections",
    "-j",
    "DROP",
];

/// Adds (`-I`) or removes (`-D`) [`LOCALNET_RULE`] in the node namespace's filter table.
pub fn node_localnet_rule(node: &NodeNet, op: &str) {
    let iptables = find_tool("iptables").expect("iptables");
    let out = node
        .netns()
        .exec(
            std::process::Command::new(iptables)
                .args(["-w", op, "INPUT"])
                .args(LOCALNET_RULE),
        )
        .expect("run iptables in the node namespace");
    assert!(
        out.status.success(),
        "iptables {op} the localnet rule: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// TEST ONLY: what a pod with `NET_ADMIN` in its own namespace can do to reach its node's loopback: allow
/// loopback addresses on `eth0` (`route_localnet`) and route 127.0.0.1 out of `eth0` via the bridge, ahead of the
/// `local` table. Only the node's localnet rule stops what follows.
pub fn route_loopback_to_node(pod: &PodNet, bridge: Ipv4Addr) {
    pod.netns()
        .run(|| -> std::io::Result<()> {
            for p in ["all", "eth0"] {
                std::fs::write(format!("/proc/sys/net/ipv4/conf/{p}/route_localnet"), "1")?;
            }
            Ok(())
        })
        .expect("enter the pod namespace")
        .expect("route_localnet in the pod namespace");
    pod.netns()
        .ip_batch(&[
            "rule add pref 10 to 127.0.0.1 lookup 100".into(),
            format!(
                "route add 127.0.0.1/32 via {bridge} dev eth0 src {} table 100",
                pod.ip()
            ),
            "rule del pref 0".into(),
            "rule add pref 20 lookup local".into(),
        ])
        .expect("route 127.0.0.1 out of the pod");
}

// === the Python SDK ===

/// The venv interpreter and the client program, or why they cannot run (a skip unless PODID_REQUIRE_CLIENTS=1).
pub fn python_client(test: &str) -> Option<(PathBuf, PathBuf)> {
    let python = repo_root().join(".venv/bin/python");
    let script = repo_root().join("tests/clients/python/imds_client.py");
    let why = if !python.is_file() {
        Some(format!(
            "no virtualenv at {} (run scripts/ensure-clients.sh)",
            python.display()
        ))
    } else {
        match std::process::Command::new(&python)
            .args(["-c", "import azure.identity"])
            .env_clear()
            .output()
        {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "azure-identity is not importable: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run {}: {e}", python.display())),
        }
    };
    match why {
        None => Some((python, script)),
        Some(why) => {
            skip_or_fail(test, REQUIRE_CLIENTS_ENV, &format!("python client: {why}"));
            None
        }
    }
}

/// Runs `imds_client.py <args>` inside `pod`'s namespace with a clean environment (no IDENTITY_*/MSI_*/AZURE_*
/// or proxy variables: the SDK calls http://169.254.169.254 itself). Returns its one JSON line.
pub async fn run_python(
    python: &Path,
    script: &Path,
    pod: &PodNet,
    home: &Path,
    args: Vec<String>,
) -> Value {
    let mut cmd = tokio::process::Command::new(find_tool("ip").expect("ip"));
    cmd.args(["netns", "exec", pod.name()])
        .arg(python)
        .arg(script)
        .args(&args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(PYTHON_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("python {args:?} did not finish within {PYTHON_TIMEOUT:?}"))
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "python {args:?}: no JSON line ({e}); status {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
