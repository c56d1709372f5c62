//! `podid-bench agent`: the real `podid agent` process (built next to this binary) answering pods' cached IMDS
//! token requests over loopback, against kube-sim and azure-sim running in this process.
//!
//! # The model
//!
//! The agent's node gets the pod CIDR 127.30.0.0/24, so the kubelet (podid-kubelet) gives the node's pods 127.30.0.x
//! addresses, all of which are local on `lo`. Every load connection is opened *from* a pod's address (the
//! socket is bound to it before connecting), so on every request the agent does what it does on a node: find
//! the calling pod by its source IP in its watch-fed index, decide which identity the pod may use, and answer
//! from its token cache. The agent runs with `--iptables off` (nothing is redirected: the load goes straight
//! to its port) and with its anti-spoofing check at the default (`on`; loopback sources are "not
//! applicable", as they are for host-network callers).
//!
//! The cluster is realistic in size: 110 pods on the agent's node (the kubelet's default limit) over four
//! identities, and 10,000 more pods on 100 other nodes, all labelled for a binding and all with an
//! `AzureAssignedIdentity` in state `Assigned` (what the controller would have written), so the agent's
//! watches (pods by node, AAIs by node label) hold what they would hold in production, and its memory is
//! measured with that data loaded.
//!
//! # What is measured, and the invariants behind each figure
//!
//! - **Throughput**: a closed loop of keep-alive HTTP/1.1 connections (64 by default), each sending the next
//!   request as soon as the previous answer arrived, after a warm-up. The same generator then runs against a
//!   bare hyper "hello" server in a child process (same runtime shape as the agent: a multi-thread tokio
//!   runtime with one worker per core), and the agent's figure is printed as a ratio of it. In a closed loop
//!   latency is fixed by Little's law (mean latency = connections / throughput), so its p99 is printed for
//!   the record only.
//! - **Latency**: an open loop paced at the target rate (20,000 requests/s over the same connections);
//!   latency is measured from the moment a request was *scheduled*, not sent, so a stalled server cannot hide
//!   its queueing (no coordinated omission).
//! - **One upstream call per miss**: after the cache is warm, a resource never asked for before is requested
//!   by many pods of one identity at once; azure-sim's request log must show exactly one IMDS token request.
//! - **Memory**: `VmRSS` and `VmHWM` of the agent process from `/proc/<pid>/status`.
//! - **CPU**: the generator competes with the server for the same cores; both processes' CPU time over the
//!   measured window is printed (from `/proc/<pid>/stat`; the bench process also holds the simulators, idle
//!   while tokens are served from the cache).
//!
//! Every loop is bounded in count and time; all traffic stays on loopback.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use podid_k8s::{AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding, NODENAME_LABEL};
use podid_testkit::http::try_http;
use podid_testkit::{Component, ComponentCmd, Env, IDS, SUB, TENANT, uami_id};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{PHASE_LIMIT, percentile, report};

const MC: &str = "MC_bench";
const NS: &str = "bench";
/// The agent's node (scale set pool1-vmss, instance 0).
const NODE: &str = "pool1-vmss000000";
/// Its pod CIDR: loopback, so pods' addresses are local and a socket can be bound to them.
const NODE_CIDR: &str = "127.30.0.0/24";
/// Identities the node's pods are spread over.
const IDENTITIES: usize = 4;
/// Pods per other node.
const PODS_PER_OTHER_NODE: usize = 100;
/// Largest number of other pods (the other nodes get 10.244.N.0/24, N < 250).
const MAX_OTHER_PODS: usize = 20_000;
/// Largest number of pods on the agent's node (a /24 has 253 usable addresses after .1).
const MAX_NODE_PODS: usize = 250;
/// Concurrent API writes while building the cluster.
const CREATE_CONCURRENCY: usize = 64;
/// Resource of the cached requests.
const RESOURCE_ENC: &str = "https%3A%2F%2Fvault.azure.net";

/// Throughput target, requests/s.
const TARGET_RPS: f64 = 20_000.0;
/// Latency target at that rate, ms (p99).
const TARGET_P99_MS: f64 = 1.0;
/// Agent RSS target, MB.
const TARGET_RSS_MB: f64 = 30.0;
/// Kernel clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every Linux architecture podid targets).
const USER_HZ: f64 = 100.0;
/// A child's start line (the agent, the hello server).
const START_LIMIT: Duration = Duration::from_secs(60);
/// Readiness wait for the agent (all watches listed) and for the kubelet.
const READY_LIMIT: Duration = Duration::from_secs(120);
/// Largest response the generator accepts, bytes.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Knobs of `podid-bench agent`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pods on the agent's node.
    pub node_pods: usize,
    /// Pods on other nodes.
    pub other_pods: usize,
    /// Keep-alive connections of the load generator.
    pub connections: usize,
    /// Warm-up before each closed-loop measurement.
    pub warmup: Duration,
    /// Measured window of each load run.
    pub measure: Duration,
    /// Offered rate of the paced (latency) run, requests/s.
    pub paced_rate: u64,
    /// Concurrent identical requests in the miss test.
    pub miss_requests: usize,
}

fn client_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn world() -> Value {
    let names: Vec<String> = (0..IDENTITIES).map(|i| format!("id-{i}")).collect();
    let ids: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"name": n, "resourceGroup": IDS, "clientId": client_id(i)}))
        .collect();
    json!({
        "tenants": [{"id": TENANT}], "subscriptions": [{"id": SUB}],
        "resourceGroups": [{"name": MC, "location": "westeurope"}, {"name": IDS, "location": "westeurope"}],
        "userAssignedIdentities": ids,
        "virtualMachineScaleSets": [{"name": "pool1-vmss", "resourceGroup": MC,
            "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": names},
            "instances": [{}]}]
    })
}

/// The simulators (the kubelet gives scheduled pods an IP from their node's podCIDR and phase Running), the
/// CRDs, a client; the bench creates its own nodes.
async fn start_sims() -> anyhow::Result<Env> {
    Env::builder(world())
        .kubelet(true)
        .world_nodes(false)
        .imds_case_insensitive(false)
        .watch_cache_size(50_000)
        .try_start()
        .await
}

/// A pod on the agent's node: name, address, identity index.
#[derive(Debug, Clone)]
struct NodePod {
    name: String,
    ip: IpAddr,
    identity: usize,
}

fn pod_json(name: &str, node: &str, identity: usize, i: usize) -> anyhow::Result<Pod> {
    let app = format!("app-{}", i % 50);
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS,
            "labels": {"app": app, "aadpodidbinding": format!("sel-{identity}"), "pod-template-hash": "7d9f8c6b5"}},
        "spec": {"nodeName": node, "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "mcr.microsoft.com/oss/azure/aad-pod-identity/demo:v1.8.17",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "MY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "AZURE_CLIENT_ID", "value": client_id(identity)}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
    }))?)
}

/// Namespace, nodes, identities, bindings, pods and their AAIs.
async fn build_cluster(s: &Env, o: &Options) -> anyhow::Result<Vec<NodePod>> {
    let c = &s.client;
    Api::<Namespace>::all(c.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await?;
    let nodes: Api<Node> = Api::all(c.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NODE},
            "spec": {"podCIDR": NODE_CIDR, "podCIDRs": [NODE_CIDR], "providerID":
            format!("azure:///subscriptions/{SUB}/resourceGroups/{MC}/providers/Microsoft.Compute/virtualMachineScaleSets/pool1-vmss/virtualMachines/0")}}))?,
        )
        .await?;
    let other_nodes = o.other_pods.div_ceil(PODS_PER_OTHER_NODE);
    for k in 0..other_nodes {
        let cidr = format!("10.244.{k}.0/24");
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("other-{k:03}")},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}))?,
            )
            .await?;
    }
    let ids: Api<AzureIdentity> = Api::namespaced(c.clone(), NS);
    let binds: Api<AzureIdentityBinding> = Api::namespaced(c.clone(), NS);
    let mut identities = Vec::new();
    for i in 0..IDENTITIES {
        let id: AzureIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": format!("id-{i}"), "namespace": NS},
            "spec": {"type": 0, "resourceID": uami_id(IDS, &format!("id-{i}")), "clientID": client_id(i)}}))?;
        identities.push(ids.create(&PostParams::default(), &id).await?);
        let b: AzureIdentityBinding = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": format!("b-{i}"), "namespace": NS},
            "spec": {"azureIdentity": format!("id-{i}"), "selector": format!("sel-{i}")}}))?;
        binds.create(&PostParams::default(), &b).await?;
    }

    // Pods: the node's first, then the rest of the cluster.
    let t = Instant::now();
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let specs: Vec<(String, String, usize)> = (0..o.node_pods)
        .map(|i| (format!("np-{i:03}"), NODE.to_string(), i % IDENTITIES))
        .chain((0..o.other_pods).map(|i| {
            (
                format!("op-{i:05}"),
                format!("other-{:03}", i / PODS_PER_OTHER_NODE),
                i % IDENTITIES,
            )
        }))
        .collect();
    let created: Vec<anyhow::Result<()>> = futures::stream::iter(specs.iter().enumerate())
        .map(|(i, (name, node, identity))| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod_json(name, node, *identity, i)?)
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    created.into_iter().collect::<anyhow::Result<()>>()?;
    println!(
        "  created {} pods ({} on {NODE}, {} on {other_nodes} other nodes) in {:.1} s",
        specs.len(),
        o.node_pods,
        o.other_pods,
        t.elapsed().as_secs_f64()
    );

    // AAIs for every pod, as the controller writes them (status with the object: no status subresource).
    let t = Instant::now();
    let aais: Api<AzureAssignedIdentity> = Api::namespaced(c.clone(), NS);
    let idv: Vec<Value> = identities
        .iter()
        .map(|id| {
            let mut v = serde_json::to_value(id)?;
            v["metadata"]["managedFields"] = Value::Null;
            Ok(v)
        })
        .collect::<anyhow::Result<_>>()?;
    let idv = Arc::new(idv);
    let created: Vec<anyhow::Result<bool>> = futures::stream::iter(specs.iter())
        .map(|(name, node, identity)| {
            let aais = aais.clone();
            let idv = idv.clone();
            async move {
                let aai_name = format!("{name}-{NS}-id-{identity}");
                let a: AzureAssignedIdentity = serde_json::from_value(json!({
                    "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureAssignedIdentity",
                    "metadata": {"name": aai_name, "namespace": NS, "labels": {NODENAME_LABEL: node}},
                    "spec": {"azureIdentityRef": idv[*identity], "pod": name, "podNamespace": NS, "nodename": node},
                    "status": {"status": "Assigned", "availableReplicas": 1}}))?;
                let made = aais.create(&PostParams::default(), &a).await?;
                let assigned = made.status.as_ref().is_some_and(|s| s.status.as_str() == "Assigned");
                if !assigned {
                    aais.patch(
                        &aai_name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"status": "Assigned", "availableReplicas": 1}})),
                    )
                    .await?;
                }
                Ok(assigned)
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let created: Vec<bool> = created.into_iter().collect::<anyhow::Result<_>>()?;
    println!(
        "  created {} AzureAssignedIdentities (Assigned{}) in {:.1} s",
        created.len(),
        if created.iter().all(|a| *a) {
            ""
        } else {
            ", status patched after create"
        },
        t.elapsed().as_secs_f64()
    );

    // Wait for the kubelet: every pod Running with an IP (so no kubelet churn runs during the measurements).
    let t = Instant::now();
    let all: Api<Pod> = Api::all(c.clone());
    loop {
        let l = all.list(&ListParams::default()).await?;
        let running = l
            .items
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.phase.as_deref() == Some("Running") && s.pod_ip.is_some())
            })
            .count();
        if running >= specs.len() {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < READY_LIMIT,
            "only {running} of {} pods Running with an IP after {READY_LIMIT:?}",
            specs.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "  all pods Running with IPs after {:.1} s more",
        t.elapsed().as_secs_f64()
    );
    let l = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={NODE}")))
        .await?;
    let mut out = Vec::new();
    for p in l.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        let ip: IpAddr = p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .context("node pod without IP")?
            .parse()?;
        anyhow::ensure!(
            ip.is_loopback(),
            "pod {name} got {ip}, not an address from {NODE_CIDR}"
        );
        let identity = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("aadpodidbinding"))
            .and_then(|s| s.strip_prefix("sel-"))
            .and_then(|s| s.parse().ok())
            .context("node pod without binding label")?;
        out.push(NodePod { name, ip, identity });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    anyhow::ensure!(
        out.len() == o.node_pods,
        "{} pods on {NODE}, expected {}",
        out.len(),
        o.node_pods
    );
    Ok(out)
}

/// The agent under test: `$PODID_BENCH_AGENT_EXE` (another build, e.g. the previous release, for a before/after
/// comparison in one run), else the `podid` next to this binary.
fn podid_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("PODID_BENCH_AGENT_EXE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        anyhow::ensure!(
            p.exists(),
            "PODID_BENCH_AGENT_EXE={} not found",
            p.display()
        );
        return Ok(p);
    }
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("exe dir")?.join("podid");
    anyhow::ensure!(
        p.exists(),
        "{} not found: build it first (`cargo build --release -p podid`; scripts/bench.sh does)",
        p.display()
    );
    Ok(p)
}

async fn start_agent(s: &Env) -> anyhow::Result<(Component, Duration)> {
    let log = s.dir.path().join("agent.log");
    let cmd = ComponentCmd::podid(&podid_binary()?, "agent", log).start_timeout(START_LIMIT);
    let t = Instant::now();
    let agent = s
        .agent_cmd(cmd, NODE)
        .args(["--nmi-port", "0", "--iptables", "off"])
        .env("PODID_LOG", "warn")
        .try_start()
        .await
        .context("start the agent")?;
    agent.try_wait_ready(READY_LIMIT).await?;
    Ok((agent, t.elapsed()))
}

/// `method url` over loopback: (status, body).
async fn http_req(method: &str, url: &str) -> anyhow::Result<(u16, String)> {
    try_http(method, url, None)
        .await
        .with_context(|| format!("{method} {url}"))
}

/// IMDS token requests azure-sim has logged.
async fn imds_token_requests(s: &Env) -> anyhow::Result<usize> {
    let url = format!(
        "{}/requests?family=imds&limit=1000000",
        s.azure.endpoints().control.trim_end_matches('/')
    );
    let (code, body) = http_req("GET", &url).await?;
    anyhow::ensure!(code == 200, "control API /requests answered {code}");
    let v: Value = serde_json::from_str(&body)?;
    Ok(v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| {
                    r["path"]
                        .as_str()
                        .is_some_and(|p| p.contains("oauth2/token"))
                })
                .count()
        })
        .unwrap_or(0))
}

async fn clear_request_log(s: &Env) -> anyhow::Result<()> {
    let url = format!(
        "{}/requests",
        s.azure.endpoints().control.trim_end_matches('/')
    );
    let (code, _) = http_req("DELETE", &url).await?;
    anyhow::ensure!(
        (200..300).contains(&code),
        "control API DELETE /requests answered {code}"
    );
    Ok(())
}

fn token_request(resource_enc: &str) -> Vec<u8> {
    format!(
        "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource_enc} HTTP/1.1\r\n\
         Host: 169.254.169.254\r\nMetadata: true\r\nUser-Agent: podid-bench\r\n\r\n"
    )
    .into_bytes()
}

/// A keep-alive HTTP/1.1 connection opened from a pod's address, speaking just enough HTTP for the load.
struct RawConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    async fn open(src: IpAddr, to: SocketAddr) -> anyhow::Result<RawConn> {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(src, 0))
            .with_context(|| format!("bind source address {src}"))?;
        let stream = sock.connect(to).await?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }

    /// Send one request and read its whole response; returns the status and the body.
    async fn exchange(&mut self, req: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        self.stream.write_all(req).await?;
        self.buf.clear();
        loop {
            if let Some(head_end) = find(&self.buf, b"\r\n\r\n") {
                let head = &self.buf[..head_end];
                let status = head
                    .get(9..12)
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.parse::<u16>().ok())
                    .context("malformed status line")?;
                let (len, chunked) = body_framing(head)?;
                let body_start = head_end + 4;
                match (len, chunked) {
                    (Some(n), _) => {
                        while self.buf.len() < body_start + n {
                            self.fill().await?;
                        }
                        anyhow::ensure!(
                            self.buf.len() == body_start + n,
                            "unexpected bytes after the response"
                        );
                    }
                    (None, true) => {
                        while !self.buf[body_start..].ends_with(b"0\r\n\r\n") {
                            self.fill().await?;
                        }
                    }
                    (None, false) => {
                        anyhow::bail!("response without Content-Length on a keep-alive connection")
                    }
                }
                return Ok((status, &self.buf[body_start..]));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.buf.len() < MAX_RESPONSE_BYTES,
            "response larger than {MAX_RESPONSE_BYTES} bytes"
        );
        let n = self.stream.read_buf(&mut self.buf).await?;
        anyhow::ensure!(n > 0, "server closed the connection");
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// (Content-Length, chunked) of a response head.
fn body_framing(head: &[u8]) -> anyhow::Result<(Option<usize>, bool)> {
    let mut len = None;
    let mut chunked = false;
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            len = Some(
                std::str::from_utf8(value)?
                    .parse()
                    .context("bad Content-Length")?,
            );
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        }
    }
    Ok((len, chunked))
}

/// CPU seconds (user + system, all threads) of a process.
fn cpu_secs(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After the command: state is field 3, utime 14, stime 15.
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((ut + st) / USER_HZ)
        })
        .unwrap_or(f64::NAN)
}

/// CPU seconds all processes spent busy (user, nice, system, irq, softirq, steal), from `/proc/stat`.
fn system_busy_secs() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("cpu "))?;
            let f: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let busy = [0usize, 1, 2, 5, 6, 7]
                .iter()
                .filter_map(|i| f.get(*i))
                .sum::<f64>();
            Some(busy / USER_HZ)
        })
        .unwrap_or(f64::NAN)
}

/// A `/proc/<pid>/status` figure in MB (`VmRSS`, `VmHWM`).
fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn threads_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

/// What a load run measured.
struct LoadResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    requests: usize,
    failures: usize,
    /// CPU of the bench process (generator + idle simulators) over the window, in cores.
    gen_cores: f64,
    /// CPU of the server process over the window, in cores.
    server_cores: f64,
    /// CPU of everything else on the machine over the window (other processes, unattributed kernel work).
    other_cores: f64,
}

/// Closed loop: every connection sends its next request when the previous answer arrived.
async fn closed_loop(
    to: SocketAddr,
    sources: &[IpAddr],
    connections: usize,
    req: Arc<Vec<u8>>,
    warmup: Duration,
    measure: Duration,
    server_pid: u32,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let measure_start = start + warmup;
    let end = measure_start + measure;
    let mut conns = Vec::new();
    for i in 0..connections {
        conns.push(RawConn::open(sources[i % sources.len()], to).await?);
    }
    let mut tasks = Vec::new();
    for mut conn in conns {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<f64> = Vec::with_capacity(1 << 16);
            let mut failures = 0usize;
            let mut sent = 0u64;
            loop {
                let t = Instant::now();
                if t >= end || sent >= u64::MAX / 2 {
                    break;
                }
                let (code, _) = conn.exchange(&req).await?;
                sent += 1;
                if t >= measure_start {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    if code != 200 {
                        failures += 1;
                    }
                }
            }
            Ok::<_, anyhow::Error>((lat, failures))
        }));
    }
    tokio::time::sleep_until(measure_start.into()).await;
    let (g0, s0, b0) = (
        cpu_secs("self"),
        cpu_secs(&server_pid.to_string()),
        system_busy_secs(),
    );
    tokio::time::sleep_until(end.into()).await;
    let (g1, s1, b1) = (
        cpu_secs("self"),
        cpu_secs(&server_pid.to_string()),
        system_busy_secs(),
    );
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (lat, f) = tokio::time::timeout(PHASE_LIMIT, t)
            .await
            .context("load connection did not finish")???;
        all.extend(lat);
        failures += f;
    }
    let secs = measure.as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok(LoadResult {
        rps: all.len() as f64 / secs,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        p999_ms: percentile(&all, 0.999),
        max_ms: all.last().copied().unwrap_or(f64::NAN),
        requests: all.len(),
        failures,
        gen_cores: (g1 - g0) / secs,
        server_cores: (s1 - s0) / secs,
        other_cores: ((b1 - b0) - (g1 - g0) - (s1 - s0)).max(0.0) / secs,
    })
}

/// Open loop paced at `rate` requests/s, dealt round-robin to the connections; latency from the scheduled time.
async fn paced(
    to: SocketAddr,
    sources: &[IpAddr],
    connections: usize,
    req: Arc<Vec<u8>>,
    rate: u64,
    dur: Duration,
    server_pid: u32,
) -> anyhow::Result<LoadResult> {
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..connections {
        let mut conn = RawConn::open(sources[i % sources.len()], to).await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        senders.push(tx);
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<f64> = Vec::new();
            let mut failures = 0usize;
            while let Some(at) = rx.recv().await {
                let (code, _) = conn.exchange(&req).await?;
                lat.push(at.elapsed().as_secs_f64() * 1000.0);
                if code != 200 {
                    failures += 1;
                }
            }
            Ok::<_, anyhow::Error>((lat, failures))
        }));
    }
    let total = (rate as f64 * dur.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let (g0, s0, b0) = (
        cpu_secs("self"),
        cpu_secs(&server_pid.to_string()),
        system_busy_secs(),
    );
    let started = Instant::now();
    // A plain thread deals the schedule: tokio's timer has 1 ms granularity, which would send in bursts.
    let dealer = std::thread::spawn(move || {
        let begin = Instant::now();
        let mut k: u64 = 0;
        while k < total {
            let now = Instant::now();
            loop {
                let at = begin + interval.mul_f64(k as f64);
                if at > now || k >= total {
                    break;
                }
                // A closed receiver means its connection failed; the error is reported when it is joined.
                let _ = senders[(k as usize) % senders.len()].send(at);
                k += 1;
            }
            let next = begin + interval.mul_f64(k as f64);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            if begin.elapsed() > dur + PHASE_LIMIT {
                break;
            }
        }
    });
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (lat, f) = tokio::time::timeout(dur + PHASE_LIMIT, t)
            .await
            .context("paced load did not finish")???;
        all.extend(lat);
        failures += f;
    }
    let secs = started.elapsed().as_secs_f64();
    let (g1, s1, b1) = (
        cpu_secs("self"),
        cpu_secs(&server_pid.to_string()),
        system_busy_secs(),
    );
    dealer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;
    all.sort_by(f64::total_cmp);
    Ok(LoadResult {
        rps: all.len() as f64 / secs,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        p999_ms: percentile(&all, 0.999),
        max_ms: all.last().copied().unwrap_or(f64::NAN),
        requests: all.len(),
        failures,
        gen_cores: (g1 - g0) / secs,
        server_cores: (s1 - s0) / secs,
        other_cores: ((b1 - b0) - (g1 - g0) - (s1 - s0)).max(0.0) / secs,
    })
}

fn print_cpu(what: &str, r: &LoadResult) {
    println!(
        "  {what}: {} requests, {} failed, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.2} ms",
        r.requests, r.failures, r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms,
    );
    println!(
        "    CPU over the window, in cores of {}: server {:.2}, bench process (load generator + idle \
         simulators) {:.2}, everything else on the machine {:.2}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        r.server_cores,
        r.gen_cores,
        r.other_cores
    );
}

/// The miss test: `n` concurrent identical requests for a resource never asked for, from pods of one identity.
async fn miss_once(
    s: &Env,
    to: SocketAddr,
    pods: &[NodePod],
    n: usize,
) -> anyhow::Result<(usize, Vec<f64>)> {
    let same: Vec<IpAddr> = pods
        .iter()
        .filter(|p| p.identity == 0)
        .map(|p| p.ip)
        .collect();
    anyhow::ensure!(!same.is_empty(), "no pod bound to id-0");
    let nonce = std::process::id();
    let req = Arc::new(token_request(&format!(
        "https%3A%2F%2Fpodidbench{nonce}.blob.core.windows.net"
    )));
    let mut conns = Vec::new();
    for i in 0..n {
        conns.push(RawConn::open(same[i % same.len()], to).await?);
    }
    clear_request_log(s).await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for mut c in conns {
        let (req, barrier) = (req.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let t = Instant::now();
            let (code, body) = c.exchange(&req).await?;
            anyhow::ensure!(
                code == 200,
                "miss request answered {code}: {}",
                String::from_utf8_lossy(body)
            );
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(
            tokio::time::timeout(PHASE_LIMIT, t)
                .await
                .context("miss requests did not finish")???,
        );
    }
    lat.sort_by(f64::total_cmp);
    Ok((imds_token_requests(s).await?, lat))
}

/// `podid-bench agent`.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let o = Options {
        node_pods: o.node_pods.clamp(1, MAX_NODE_PODS),
        other_pods: o.other_pods.min(MAX_OTHER_PODS),
        connections: o.connections.clamp(1, 1024),
        miss_requests: o.miss_requests.clamp(2, 1024),
        paced_rate: o.paced_rate.clamp(1, 200_000),
        ..o
    };
    println!(
        "podid agent benchmark: {} pods on {NODE} ({NODE_CIDR}), {} on other nodes, {} identities; \
         {} keep-alive connections from pod addresses; loopback, --iptables off, spoof check on",
        o.node_pods, o.other_pods, IDENTITIES, o.connections
    );
    println!(
        "  load average before the run: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let s = start_sims().await?;
    let pods = build_cluster(&s, &o).await?;
    let (mut agent, took) = start_agent(&s).await?;
    report(
        "agent: ready (watches synced) after start",
        took.as_secs_f64(),
        "s",
        "report",
        true,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = status_mb(agent.pid, "VmRSS:");
    report(
        &format!(
            "agent: RSS, synced, {} + {} pods",
            o.node_pods, o.other_pods
        ),
        rss_idle,
        "MB",
        "< 30 MB",
        rss_idle < TARGET_RSS_MB,
    );

    // Every pod once: the cache fills with one token per identity.
    clear_request_log(&s).await?;
    let req = Arc::new(token_request(RESOURCE_ENC));
    for chunk in pods.chunks(16) {
        let mut tasks = Vec::new();
        for p in chunk {
            let (ip, to, req) = (p.ip, agent.addr, req.clone());
            let name = p.name.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = RawConn::open(ip, to).await?;
                let (code, body) = c.exchange(&req).await?;
                anyhow::ensure!(
                    code == 200,
                    "pod {name} ({ip}) answered {code}: {}",
                    String::from_utf8_lossy(body)
                );
                Ok::<(), anyhow::Error>(())
            }));
        }
        for t in tasks {
            tokio::time::timeout(PHASE_LIMIT, t)
                .await
                .context("first requests did not finish")???;
        }
    }
    let warm_calls = imds_token_requests(&s).await?;
    report(
        &format!("agent: IMDS calls for {} pods' first request", o.node_pods),
        warm_calls as f64,
        "calls",
        &format!("{IDENTITIES}"),
        warm_calls == IDENTITIES,
    );

    // A miss costs one upstream call, however many pods ask at once.
    let (calls, lat) = miss_once(&s, agent.addr, &pods, o.miss_requests).await?;
    report(
        &format!(
            "agent: IMDS calls for {} concurrent identical misses",
            o.miss_requests
        ),
        calls as f64,
        "calls",
        "1",
        calls == 1,
    );
    println!(
        "  those {} requests: p50 {:.2} ms, max {:.2} ms",
        lat.len(),
        percentile(&lat, 0.5),
        lat.last().copied().unwrap_or(f64::NAN)
    );

    // Throughput through the agent.
    let sources: Vec<IpAddr> = pods.iter().map(|p| p.ip).collect();
    clear_request_log(&s).await?;
    let a = closed_loop(
        agent.addr,
        &sources,
        o.connections,
        req.clone(),
        o.warmup,
        o.measure,
        agent.pid,
    )
    .await?;
    let during = imds_token_requests(&s).await?;
    report(
        &format!("agent: cached token requests/s, {} conns", o.connections),
        a.rps,
        "1/s",
        ">= 20000",
        a.rps >= TARGET_RPS && a.failures == 0,
    );
    report(
        "agent: closed-loop latency p50 (Little's law)",
        a.p50_ms,
        "ms",
        "-",
        true,
    );
    report(
        "agent: closed-loop latency p99 (Little's law)",
        a.p99_ms,
        "ms",
        "-",
        true,
    );
    print_cpu("closed loop through the agent", &a);
    report(
        "agent: IMDS calls during the load",
        during as f64,
        "calls",
        "0",
        during == 0,
    );
    let p = paced(
        agent.addr,
        &sources,
        o.connections,
        req.clone(),
        o.paced_rate,
        o.measure,
        agent.pid,
    )
    .await?;
    report(
        &format!("agent: latency p50 at {} req/s offered", o.paced_rate),
        p.p50_ms,
        "ms",
        "-",
        true,
    );
    report(
        &format!("agent: latency p99 at {} req/s offered", o.paced_rate),
        p.p99_ms,
        "ms",
        "< 1 ms",
        p.p99_ms < TARGET_P99_MS && p.failures == 0,
    );
    print_cpu(
        &format!(
            "paced at {} req/s: achieved {:.0} req/s",
            o.paced_rate, p.rps
        ),
        &p,
    );
    let rss = status_mb(agent.pid, "VmRSS:");
    let hwm = status_mb(agent.pid, "VmHWM:");
    report(
        "agent: RSS after the load",
        rss,
        "MB",
        "< 30 MB",
        rss < TARGET_RSS_MB,
    );
    report(
        "agent: peak RSS (VmHWM) over the whole run",
        hwm,
        "MB",
        "< 30 MB",
        hwm < TARGET_RSS_MB,
    );
    println!("  agent threads: {}", threads_of(agent.pid));
    let _ = agent.child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), agent.child.wait()).await;

    // The same generator against a bare hyper server.
    let mut hello = ComponentCmd::new(std::env::current_exe()?, s.dir.path().join("hello.log"))
        .arg("agent-hello")
        .start_timeout(START_LIMIT)
        .try_start()
        .await
        .context("start the hello server")?;
    let hreq = req.clone();
    let h = closed_loop(
        hello.addr,
        &sources,
        o.connections,
        hreq.clone(),
        o.warmup,
        o.measure,
        hello.pid,
    )
    .await?;
    report(
        &format!("hyper hello: requests/s, {} conns", o.connections),
        h.rps,
        "1/s",
        "reference",
        h.failures == 0,
    );
    print_cpu("closed loop through hyper hello", &h);
    let hp = paced(
        hello.addr,
        &sources,
        o.connections,
        hreq,
        o.paced_rate,
        o.measure,
        hello.pid,
    )
    .await?;
    report(
        &format!("hyper hello: latency p99 at {} req/s", o.paced_rate),
        hp.p99_ms,
        "ms",
        "reference",
        true,
    );
    print_cpu(
        &format!(
            "hyper hello paced at {} req/s: achieved {:.0} req/s",
            o.paced_rate, hp.rps
        ),
        &hp,
    );
    let ratio = a.rps / h.rps;
    report("agent / hyper hello throughput", ratio, "x", "report", true);
    println!(
        "  note: the load generator runs in this process and competes with the server for the same cores; \
         requests/s above are therefore lower than a server alone on 2 cores could do"
    );
    let _ = hello.child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), hello.child.wait()).await;
    s.kube.shutdown().await;
    s.azure.shutdown().await;
    Ok(())
}

/// `podid-bench agent-hello`: a bare hyper HTTP/1.1 server answering every request with `hello`, on a
/// multi-thread runtime shaped as the agent's. Prints `hello: listening http://ADDR` when it accepts.
pub fn hello_server() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("hello: listening http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(b"hello"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_of_response_heads() {
        let cases: &[(&[u8], Option<usize>, bool)] = &[
            (b"HTTP/1.1 200 OK\r\ncontent-length: 12", Some(12), false),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length:5\r\nX: y",
                Some(5),
                false,
            ),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", None, true),
            (b"HTTP/1.1 204 No Content", None, false),
        ];
        for (head, len, chunked) in cases {
            let got = body_framing(head).expect("framing");
            assert_eq!(got, (*len, *chunked), "{}", String::from_utf8_lossy(head));
        }
        assert!(body_framing(b"HTTP/1.1 200 OK\r\ncontent-length: x").is_err());
    }

    #[test]
    fn cpu_and_memory_of_self_are_read() {
        assert!(cpu_secs("self") >= 0.0);
        assert!(status_mb(std::process::id(), "VmRSS:") > 0.0);
    }
}
