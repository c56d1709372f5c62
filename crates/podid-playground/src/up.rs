//! `podid up`: start everything, report readiness, run the demo, and tear it all down again.
//!
//! Order of start: stale leftovers of crashed runs are removed; azure-sim and kube-sim start in this process on
//! loopback (with `--kube real`: etcd, kube-apiserver and kube-controller-manager as child processes on loopback,
//! [`kube_real`]), then the simulated kubelet (`podid-kubelet`, over kube-sim's public API); the CRDs and one Node
//! object per simulated VM are created; in netns mode each node
//! gets its namespace and the relays that make the simulators reachable inside it; the pod machinery (scheduler +
//! pod namespaces) starts; the controller starts as a child process in the host namespace (it only talks to the
//! simulators on loopback, as MIC talks to ARM); one agent per node starts as a child process inside its node's
//! namespace (netns mode, `--iptables manage`) or on loopback (`--iptables off`). The playground is ready when
//! every agent's probe says `Active` and `state.json` is written.
//!
//! Order of stop (Ctrl-C, `--exit`, or an error after start): relays and the pod machinery stop (pod namespaces
//! deleted), the kubelet stops, agents get SIGTERM (they remove their chains), the controller gets SIGTERM, node namespaces are
//! deleted, simulators stop, and the directory's temporary files go (logs stay).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::net::{self, NodeNs};
use crate::proc::{self, Proc};
use crate::relay::{self, Side};
use crate::state::{self, NetMode, NodeState, State};
use crate::{demo, pods, run, world};

/// An agent must report `Active` within this.
const AGENT_ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// The agent's token server port in a node namespace (upstream NMI's).
const NMI_PORT: u16 = 2579;
/// The agent's probe port in a node namespace (upstream NMI's).
const AGENT_PROBE_PORT: u16 = 8085;
/// The agent's metrics port in a node namespace (upstream NMI's).
const AGENT_METRICS_PORT: u16 = 9090;
/// Loopback pod addresses: node `i` gets 127.21.i.0/24 (loopback mode).
const LOOPBACK_POD_NET: [u8; 2] = [127, 21];
/// The demo pod must be running with its network within this.
const DEMO_POD_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a running playground checks that its child processes are alive.
const CHILD_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The demo client must finish within this.
const DEMO_CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// The kubelet must have listed nodes and pods within this.
const KUBELET_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The playground's Kubernetes API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KubeKind {
    /// kube-sim, in this process.
    Sim,
    /// etcd + kube-apiserver + kube-controller-manager as child processes on loopback ($PODID_KUBE_BIN, else
    /// target/tools/kube/<version>/bin beside this podid).
    Real,
}

/// The running API server.
enum KubeServer {
    Sim(kube_sim::Handle),
    Real(Box<kube_real::RealKube>),
}

/// What the rest of the playground needs of the API server.
struct KubeInfo {
    url: String,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    ca_pem: String,
}

/// Starts the API server `args` asks for; `extra_san` is the address node namespaces reach it on.
async fn start_kube(
    args: &UpArgs,
    exe: &Path,
    dir: &Path,
    extra_san: &str,
) -> anyhow::Result<(KubeServer, KubeInfo)> {
    match args.kube {
        KubeKind::Sim => {
            let kube = kube_sim::start(kube_sim::Config {
                listen: SocketAddr::from(([127, 0, 0, 1], args.kube_port)),
                tls: true,
                dir: Some(dir.join("kube")),
                extra_sans: vec![extra_san.to_string()],
                ..kube_sim::Config::default()
            })
            .await
            .map_err(|e| kube_port_hint(e, args.kube_port, dir))?;
            let info = KubeInfo {
                url: kube.url.clone(),
                addr: kube.addr,
                kubeconfig: kube
                    .kubeconfig
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("kube-sim wrote no kubeconfig"))?,
                ca_pem: kube.ca_pem.clone().unwrap_or_default(),
            };
            Ok((KubeServer::Sim(kube), info))
        }
        KubeKind::Real => {
            let bin = real_kube_bin(exe)?;
            let real = kube_real::RealKube::start_with(kube_real::Options {
                bin: Some(bin),
                extra_sans: vec![extra_san.to_string()],
                port: Some(args.kube_port),
            })
            .await
            .map_err(|e| kube_port_hint(e, args.kube_port, dir))?;
            // The admin kubeconfig where kube-sim writes its own.
            std::fs::create_dir_all(dir.join("kube"))?;
            let kubeconfig = dir.join("kube").join("kubeconfig");
            kubeconfig_for_server(&real.kubeconfig, &kubeconfig, &real.url)?;
            let info = KubeInfo {
                url: real.url.clone(),
                addr: real.addr(),
                kubeconfig,
                ca_pem: real.ca_pem.clone(),
            };
            Ok((KubeServer::Real(Box::new(real)), info))
        }
    }
}

/// Copies the kubeconfig `from` to `to` (private), its clusters pointing at `server` (another address of the same
/// API server, in its certificate).
fn kubeconfig_for_server(from: &Path, to: &Path, server: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut kc = kube::config::Kubeconfig::read_from(from)?;
    for c in &mut kc.clusters {
        if let Some(cluster) = c.cluster.as_mut() {
            cluster.server = Some(server.to_string());
        }
    }
    let text = serde_json::to_string_pretty(&kc)?;
    let _ = std::fs::remove_file(to);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The real control plane's binaries: `$PODID_KUBE_BIN`, else the newest `target/tools/kube/*/bin` above this
/// podid (`target/debug/podid` → `target/tools/kube/<version>/bin`), else a message saying how to build them.
fn real_kube_bin(exe: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(dir) = kube_real::binaries() {
        return Ok(dir);
    }
    let tools = exe
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("tools").join("kube"));
    let mut found: Vec<PathBuf> = tools
        .and_then(|t| std::fs::read_dir(t).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| kube_real::binaries_in(b.clone()).is_ok())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        anyhow::anyhow!(
            "--kube real needs etcd, kube-apiserver and kube-controller-manager: build them with \
             scripts/ensure-kube.sh (needs Go; 10-15 minutes the first time, docs/real-kube.md) and export \
             {}=<their directory>, or run ./scripts/up.sh --kube real, which does both",
            kube_real::BIN_ENV
        )
    })
}

/// How pods are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// Network namespaces when root with iproute2 and iptables, else loopback.
    Auto,
    /// Network namespaces (root, iproute2, iptables); fail if unavailable.
    Netns,
    /// Loopback addresses, no root needed.
    Loopback,
}

/// `podid up` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Simulated nodes (instances of the default world's scale set).
    #[arg(long, default_value_t = 2)]
    pub nodes: usize,
    /// An azure-sim world file to use instead of the default world (its VMs and scale set instances become the
    /// nodes; the first one's first user-assigned identity is the controller's).
    #[arg(long)]
    pub world: Option<PathBuf>,
    /// The playground directory (kubeconfig, CAs, logs, state; default: $PODID_UP_DIR, else .podid/up).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The Kubernetes API server's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    pub kube_port: u16,
    /// Which Kubernetes API server: kube-sim in this process (starts in well under a second, needs nothing), or
    /// a real etcd + kube-apiserver + kube-controller-manager built by scripts/ensure-kube.sh (docs/real-kube.md).
    #[arg(long, value_enum, default_value = "sim")]
    pub kube: KubeKind,
    /// How simulated pods are networked.
    #[arg(long, value_enum, default_value = "auto")]
    pub network: Network,
    /// Apply the AKS documentation's demo objects and run the demo client as the demo pod.
    #[arg(long)]
    pub demo: bool,
    /// Stop after start-up (and the demo, with --demo) instead of running until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
}

struct Running {
    dir: PathBuf,
    stop_tx: watch::Sender<bool>,
    pods_task: Option<tokio::task::JoinHandle<()>>,
    kubelet: Option<podid_kubelet::Kubelet>,
    relays: Vec<tokio::task::JoinHandle<()>>,
    agents: Vec<Proc>,
    controller: Option<Proc>,
    node_ns: Vec<Arc<NodeNs>>,
    kube: Option<KubeServer>,
    azure: Option<azure_sim::Handle>,
}

impl Running {
    async fn shutdown(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let _ = self.stop_tx.send(true);
        if let Some(t) = self.pods_task.take() {
            let _ = t.await;
        }
        if let Some(k) = self.kubelet.take() {
            k.stop().await;
        }
        for r in self.relays.drain(..) {
            let _ = r.await;
        }
        for a in self.agents.drain(..) {
            let what = a.what.clone();
            match a.stop().await {
                Some(0) => {}
                Some(code) => problems.push(format!("{what} exited with {code} (see its log)")),
                None => problems.push(format!("{what} did not stop in time and was killed")),
            }
        }
        if let Some(c) = self.controller.take() {
            let _ = c.stop().await;
        }
        for n in self.node_ns.drain(..) {
            match Arc::try_unwrap(n) {
                Ok(n) => tokio::task::block_in_place(|| drop(n)),
                Err(_) => problems.push("a node namespace was still in use".into()),
            }
        }
        match self.kube.take() {
            Some(KubeServer::Sim(k)) => k.shutdown().await,
            Some(KubeServer::Real(k)) => k.shutdown().await,
            None => {}
        }
        if let Some(a) = self.azure.take() {
            a.shutdown().await;
        }
        remove_temporary(&self.dir);
        problems
    }
}

/// Removes everything in the playground directory but `logs/`.
fn remove_temporary(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name() == "logs" {
            continue;
        }
        let p = e.path();
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// kube-sim's start error, with what to do when its port is taken (a second `podid up` on the default port).
fn kube_port_hint(e: anyhow::Error, port: u16, dir: &Path) -> anyhow::Error {
    let in_use = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    });
    if !in_use {
        return e;
    }
    anyhow::anyhow!(
        "{e:#}: port {port} on 127.0.0.1 is taken, perhaps by another podid up (each --dir holds one; this one is {}) \
         or a kube-sim: stop it, or start this playground with --kube-port 0 (any free port; the kubeconfig, \
         `podid run` and `podid doctor` follow it)",
        dir.display()
    )
}

fn decide_mode(wanted: Network) -> anyhow::Result<(NetMode, Option<String>)> {
    let root = rustix::process::geteuid().is_root();
    let missing: Vec<&str> = ["ip", "iptables", "iptables-save", "iptables-restore"]
        .into_iter()
        .filter(|t| run::find_tool(t).is_none())
        .collect();
    let why_not = if !root {
        Some("not running as root".to_string())
    } else if !missing.is_empty() {
        Some(format!(
            "{} not installed (apt-get install -y iproute2 iptables)",
            missing.join(", ")
        ))
    } else {
        None
    };
    match (wanted, why_not) {
        (Network::Loopback, _) => Ok((NetMode::Loopback, None)),
        (Network::Netns, Some(why)) => {
            anyhow::bail!("--network netns needs root, iproute2 and iptables: {why}")
        }
        (_, None) => Ok((NetMode::Netns, None)),
        (Network::Auto, Some(why)) => Ok((
            NetMode::Loopback,
            Some(format!(
                "podid up: {why}, so simulated nodes and pods are loopback addresses, not network namespaces: \
                 there is no iptables redirect, pods cannot call 169.254.169.254, and `podid run` gives programs the \
                 agent's address through AZURE_POD_IDENTITY_AUTHORITY_HOST instead (run as root for the real thing)"
            )),
        )),
    }
}

async fn http_get(http: &podid_azure::http::HttpClient, url: &str) -> Option<(u16, String)> {
    http.send(Method::GET, url, &[], Bytes::new())
        .await
        .ok()
        .map(|r| (r.status, r.text()))
}

/// Runs the playground until `stop` resolves (or, with `--exit`, until start-up and the demo are done).
/// Returns the process exit code.
pub async fn up(
    args: UpArgs,
    exe: PathBuf,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<i32> {
    let t0 = Instant::now();
    let dir = state::resolve_dir(args.dir.clone());
    let (mode, notice) = decide_mode(args.network)?;
    if let Some(n) = notice {
        println!("{n}");
    }
    if let Ok(text) = std::fs::read_to_string(state::state_path(&dir))
        && let Ok(old) = serde_json::from_str::<State>(&text)
        && old.pid != std::process::id()
        && Path::new("/proc").join(old.pid.to_string()).exists()
    {
        anyhow::bail!(
            "another podid up (pid {}) is running in {}: stop it first, or use another --dir",
            old.pid,
            dir.display()
        );
    }
    // A dead run's children (they normally die with it) in any mode, then its namespaces.
    let orphans = tokio::task::block_in_place(proc::kill_orphans);
    let mut cleaned = match mode {
        NetMode::Netns => tokio::task::block_in_place(|| net::cleanup_stale(&orphans))?,
        NetMode::Loopback => net::Cleaned::default(),
    };
    cleaned.processes += orphans.len();
    if !cleaned.namespaces.is_empty() || cleaned.processes > 0 || cleaned.etc_dirs > 0 {
        println!(
            "podid up: removed what a previous run left: {} namespaces, {} processes, {} /etc/netns entries",
            cleaned.namespaces.len(),
            cleaned.processes,
            cleaned.etc_dirs
        );
    }
    std::fs::create_dir_all(&dir)?;
    remove_temporary(&dir);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let dir = std::fs::canonicalize(&dir)?;
    let logs = dir.join("logs");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut running = Running {
        dir: dir.clone(),
        stop_tx,
        pods_task: None,
        kubelet: None,
        relays: Vec::new(),
        agents: Vec::new(),
        controller: None,
        node_ns: Vec::new(),
        kube: None,
        azure: None,
    };
    let started = start(&args, &exe, &dir, &logs, mode, stop_rx, &mut running, t0).await;
    let state = match started {
        Ok(s) => s,
        Err(e) => {
            let problems = running.shutdown().await;
            for p in problems {
                eprintln!("podid up: during clean-up: {p}");
            }
            return Err(e);
        }
    };
    let mut code = 0;
    tokio::pin!(stop);
    if args.demo {
        tokio::select! {
            r = run_demo(&state, &dir, &exe) => match r {
                Ok(c) => code = c,
                Err(e) => {
                    println!("podid up: the demo failed: {e:#}");
                    code = 1;
                }
            },
            _ = &mut stop => println!("podid up: interrupted"),
        }
    }
    if !args.exit {
        println!("Press Ctrl-C to stop (everything podid up created is removed).");
        let mut reported = std::collections::HashSet::new();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(CHILD_CHECK_INTERVAL) => {}
            }
            let children = running.agents.iter_mut().chain(running.controller.as_mut());
            for p in children {
                if !p.running() && reported.insert(p.what.clone()) {
                    println!(
                        "podid up: {} exited unexpectedly; its log: {}",
                        p.what,
                        p.log.display()
                    );
                }
            }
        }
    }
    println!("podid up: stopping");
    let problems = running.shutdown().await;
    for p in &problems {
        println!("podid up: {p}");
    }
    println!("podid up: stopped; logs are in {}", logs.display());
    Ok(code)
}

#[allow(clippy::too_many_arguments)]
async fn start(
    args: &UpArgs,
    exe: &Path,
    dir: &Path,
    logs: &Path,
    mode: NetMode,
    stop_rx: watch::Receiver<bool>,
    running: &mut Running,
    t0: Instant,
) -> anyhow::Result<State> {
    anyhow::ensure!(
        (1..=world::MAX_NODES).contains(&args.nodes),
        "--nodes must be 1..={}",
        world::MAX_NODES
    );
    // --- Azure.
    let cwd = std::env::current_dir()?;
    let (text, base) = match &args.world {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("read {}: {e}", p.display()))?,
            p.parent().map(Path::to_path_buf).unwrap_or(cwd.clone()),
        ),
        None => (world::default_world(args.nodes), cwd.clone()),
    };
    let mut az_cfg = azure_sim::Config::from_text(&text, &base)?;
    let nodes = world::nodes_of(&az_cfg.world);
    anyhow::ensure!(
        !nodes.is_empty(),
        "the world has no VM or scale set instance to be a node"
    );
    anyhow::ensure!(
        nodes.len() <= world::MAX_NODES,
        "at most {} nodes",
        world::MAX_NODES
    );
    let cloud =
        world::controller_cloud(&az_cfg.world).map_err(|e| anyhow::anyhow!("world: {e}"))?;
    let vaults = world::vaults_of(&az_cfg.world);
    az_cfg.apply(
        azure_sim::config::SimSection {
            dir: Some(dir.join("azure")),
            front_listen: Some("127.0.0.1:0".parse()?),
            keyvault_authority: (mode == NetMode::Netns)
                .then(|| "https://login.microsoftonline.com".to_string()),
            ..Default::default()
        },
        &base,
    )?;
    // The conservative model of IMDS: paths match in any letter case, so no path trick gets past the agent.
    az_cfg.settings.imds_case_insensitive_paths = true;
    let azure = azure_sim::start(az_cfg).await?;
    let az = azure.endpoints();
    running.azure = Some(azure);

    // --- Kubernetes.
    let (server, info) = start_kube(args, exe, dir, &net::KUBE_API_IP.to_string()).await?;
    running.kube = Some(server);
    let KubeInfo {
        url: kube_url,
        addr: kube_addr,
        kubeconfig,
        ca_pem: kube_ca,
    } = info;
    let azure_ca = running
        .azure
        .as_ref()
        .map(|a| a.ca_pem.clone())
        .unwrap_or_default();
    let ca_bundle = dir.join("ca-bundle.pem");
    std::fs::write(&ca_bundle, format!("{azure_ca}\n{kube_ca}"))?;

    let client = {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        kube::Client::try_from(cfg)?
    };
    running.kubelet = Some(podid_kubelet::start(
        client.clone(),
        podid_kubelet::Config::new(dir.join("kubelet")),
    ));
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in podid_k8s::crds() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    let node_api: Api<Node> = Api::all(client.clone());
    for (i, n) in nodes.iter().enumerate() {
        let (cidr, ip) = match mode {
            NetMode::Netns => (net::pod_cidr(i), net::bridge_ip(i).to_string()),
            NetMode::Loopback => (
                format!("{}.{}.{i}.0/24", LOOPBACK_POD_NET[0], LOOPBACK_POD_NET[1]),
                format!("{}.{}.{i}.1", LOOPBACK_POD_NET[0], LOOPBACK_POD_NET[1]),
            ),
        };
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "labels": {
                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": n.name,
                "kubernetes.azure.com/role": "agent", "agentpool": "nodepool1"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": n.provider_id}
        }))?;
        node_api.create(&PostParams::default(), &node).await?;
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": n.name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "podid up: simulated node"}]}});
        let _ = node_api
            .patch_status(&n.name, &PatchParams::default(), &Patch::Merge(&status))
            .await;
    }

    // --- Node namespaces and what pods reach through them.
    let front: SocketAddr = az
        .front
        .as_deref()
        .and_then(|u| u.trim_start_matches("https://").parse().ok())
        .ok_or_else(|| anyhow::anyhow!("azure-sim has no front listener"))?;
    let mut node_map = BTreeMap::new();
    let node_kubeconfig = dir.join("node-kubeconfig");
    if mode == NetMode::Netns {
        kubeconfig_for_server(
            &kubeconfig,
            &node_kubeconfig,
            &format!("https://{}:443", net::KUBE_API_IP),
        )?;
    }
    for (i, n) in nodes.iter().enumerate() {
        let imds: SocketAddr = az
            .imds
            .get(&n.name)
            .and_then(|u| u.trim_start_matches("http://").parse().ok())
            .ok_or_else(|| anyhow::anyhow!("azure-sim has no IMDS for node {}", n.name))?;
        match mode {
            NetMode::Netns => {
                let ns = Arc::new(tokio::task::block_in_place(|| {
                    NodeNs::create(i, &n.name, &vaults)
                })?);
                let side = Side::Netns(ns.name().to_string());
                for (ip, port, target) in [
                    (net::KUBE_API_IP, 443, kube_addr),
                    (net::AZURE_IP, 443, front),
                    (net::NODE_IMDS_IP, 80, imds),
                ] {
                    let l = relay::bind_in(&side, SocketAddr::from((ip, port))).await?;
                    running
                        .relays
                        .push(relay::spawn(l, Side::Host, target, stop_rx.clone()));
                }
                running.node_ns.push(ns.clone());
                node_map.insert(n.name.clone(), Some(ns));
            }
            NetMode::Loopback => {
                node_map.insert(n.name.clone(), None);
            }
        }
    }
    running.pods_task = Some(tokio::spawn(pods::run(
        client.clone(),
        pods::PodNet {
            nodes: node_map,
            vaults: vaults.clone(),
            dir: dir.to_path_buf(),
        },
        stop_rx.clone(),
    )));

    // --- The controller (host namespace, loopback, as the cluster identity through node 0's IMDS).
    let azure_json = dir.join("azure.json");
    std::fs::write(
        &azure_json,
        serde_json::to_vec_pretty(&json!({
            "cloud": "AzureStackCloud", "tenantId": cloud.tenant_id, "subscriptionId": cloud.subscription_id,
            "resourceGroup": cloud.resource_group, "vmType": cloud.vm_type,
            "useManagedIdentityExtension": true, "userAssignedIdentityID": cloud.identity_client_id,
            "aadClientId": "msi", "aadClientSecret": "msi"
        }))?,
    )?;
    let azurestack = dir.join("azurestack.json");
    std::fs::write(
        &azurestack,
        serde_json::to_vec_pretty(&json!({
            "name": "AzureStackCloud",
            "resourceManagerEndpoint": format!("{}/", az.arm),
            "activeDirectoryEndpoint": format!("{}/", az.entra),
            "tokenAudience": "https://management.azure.com/"
        }))?,
    )?;
    let first_imds = az
        .imds
        .get(&nodes[0].name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no IMDS for the first node"))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("controller")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--cloudconfig={}", azure_json.display()))
        .arg(format!("--imds-endpoint={first_imds}"))
        .arg(format!("--azure-ca-file={}", ca_bundle.display()))
        .args([
            "--bind-address",
            "127.0.0.1",
            "--http-probe-port",
            "0",
            "--prometheus-port",
            "0",
        ])
        .env("MIC_POD_NAMESPACE", "kube-system")
        .env("AZURE_ENVIRONMENT_FILEPATH", &azurestack)
        .env("PODID_LOG", "info")
        .env_remove("KUBECONFIG");
    let controller_log = logs.join("controller.log");
    let controller = proc::start("podid controller", cmd, &controller_log).await?;
    let controller_probe = proc::word_after(&controller.first_line, "probe")
        .unwrap_or_default()
        .to_string();
    running.controller = Some(controller);

    // --- One agent per node.
    let http = podid_azure::http::HttpClient::new(podid_azure::http::HttpOptions {
        timeout: Duration::from_secs(5),
        ..Default::default()
    })?;
    let mut node_states = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let log = logs.join(format!("agent-{}.log", n.name));
        let ns_name = running.node_ns.get(i).map(|x| x.name().to_string());
        let mut cmd;
        match (&mode, &ns_name) {
            (NetMode::Netns, Some(ns)) => {
                let ip = run::find_tool("ip").ok_or_else(|| anyhow::anyhow!("`ip` not found"))?;
                cmd = tokio::process::Command::new(ip);
                cmd.args(["netns", "exec", ns])
                    .arg(exe)
                    .arg("agent")
                    .arg(format!("--kubeconfig={}", node_kubeconfig.display()))
                    .args(["--node", &n.name])
                    .args(["--nmi-port", &NMI_PORT.to_string()])
                    .args(["--http-probe-port", &AGENT_PROBE_PORT.to_string()])
                    .args(["--prometheus-port", &AGENT_METRICS_PORT.to_string()])
                    .args(["--admin-bind-address", "127.0.0.1", "--iptables", "manage"])
                    .args(["--metadata-ip", "169.254.169.254", "--metadata-port", "80"])
                    .arg(format!("--imds-endpoint=http://{}", net::NODE_IMDS_IP))
                    .arg(format!("--azure-ca-file={}", ca_bundle.display()))
                    .args(["--cleanup-delay-sec", "0"]);
            }
            _ => {
                let imds = az.imds.get(&n.name).cloned().unwrap_or_default();
                cmd = tokio::process::Command::new(exe);
                cmd.arg("agent")
                    .arg(format!("--kubeconfig={}", kubeconfig.display()))
                    .args(["--node", &n.name])
                    .args([
                        "--nmi-port",
                        "0",
                        "--http-probe-port",
                        "0",
                        "--prometheus-port",
                        "0",
                    ])
                    .args(["--admin-bind-address", "127.0.0.1", "--iptables", "off"])
                    .arg(format!("--imds-endpoint={imds}"))
                    .arg(format!("--azure-ca-file={}", ca_bundle.display()))
                    .args(["--cleanup-delay-sec", "0"])
                    .env("AZURE_ENVIRONMENT_FILEPATH", &azurestack);
            }
        }
        // The node's cloud config names the cluster identity: the agent refuses it to pods (hardening).
        cmd.arg(format!("--cloud-config={}", azure_json.display()));
        cmd.env("PODID_LOG", "info")
            .env_remove("KUBECONFIG")
            .env_remove("NODE_NAME")
            .env_remove("FORCENAMESPACED");
        let agent = proc::start(&format!("podid agent on {}", n.name), cmd, &log).await?;
        let line = agent.first_line.clone();
        running.agents.push(agent);
        let (agent_url, probe, metrics) = match &ns_name {
            Some(ns) => {
                let side = Side::Netns(ns.clone());
                let mut urls = Vec::new();
                for port in [AGENT_PROBE_PORT, AGENT_METRICS_PORT] {
                    let l = relay::bind_in(&Side::Host, "127.0.0.1:0".parse()?).await?;
                    urls.push(format!("http://{}", l.local_addr()?));
                    running.relays.push(relay::spawn(
                        l,
                        side.clone(),
                        SocketAddr::from(([127, 0, 0, 1], port)),
                        stop_rx.clone(),
                    ));
                }
                (
                    format!("http://{}", net::METADATA_IP),
                    format!("{}/healthz", urls[0]),
                    format!("{}/metrics", urls[1]),
                )
            }
            None => (
                proc::word_after(&line, "serving")
                    .unwrap_or_default()
                    .to_string(),
                proc::word_after(&line, "probe")
                    .unwrap_or_default()
                    .to_string(),
                proc::word_after(&line, "metrics")
                    .unwrap_or_default()
                    .to_string(),
            ),
        };
        node_states.push(NodeState {
            name: n.name.clone(),
            pod_cidr: match mode {
                NetMode::Netns => net::pod_cidr(i),
                NetMode::Loopback => {
                    format!("{}.{}.{i}.0/24", LOOPBACK_POD_NET[0], LOOPBACK_POD_NET[1])
                }
            },
            netns: ns_name,
            agent_url,
            agent_probe: probe.trim_end_matches("/healthz").to_string(),
            agent_metrics: metrics,
            agent_log: log,
        });
    }
    // Ready: the kubelet's and every agent's watches synced and (netns) the agents' redirects in place.
    let deadline = Instant::now() + KUBELET_READY_TIMEOUT;
    while !running.kubelet.as_ref().is_some_and(|k| k.is_ready()) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the kubelet has not listed nodes and pods after {KUBELET_READY_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in &node_states {
        let deadline = Instant::now() + AGENT_ACTIVE_TIMEOUT;
        loop {
            let ready = http_get(&http, &format!("{}/readyz", n.agent_probe)).await;
            let health = http_get(&http, &format!("{}/healthz", n.agent_probe)).await;
            let active = mode == NetMode::Loopback
                || health.as_ref().is_some_and(|(_, b)| b.trim() == "Active");
            if ready.as_ref().is_some_and(|(s, _)| *s == 200) && active {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the agent on {} is not ready and Active after {AGENT_ACTIVE_TIMEOUT:?} (readyz {:?}, healthz {:?}); log: {}",
                n.name,
                ready,
                health,
                n.agent_log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut azure_urls = BTreeMap::new();
    azure_urls.insert("entra".to_string(), az.entra.clone());
    azure_urls.insert("arm".to_string(), az.arm.clone());
    azure_urls.insert("keyvault".to_string(), az.keyvault.clone());
    azure_urls.insert("control".to_string(), az.control.clone());
    azure_urls.insert("front".to_string(), format!("https://{front}"));
    let state = State {
        pid: std::process::id(),
        mode,
        kubeconfig: kubeconfig.clone(),
        kube_url: kube_url.clone(),
        kubelet_dir: dir.join("kubelet"),
        ca_bundle,
        azure: azure_urls,
        vaults: vaults.clone(),
        nodes: node_states,
        controller_probe: controller_probe.clone(),
        controller_log: controller_log.clone(),
    };
    state::write_json(&state::state_path(dir), &state)?;
    let ready_ms = t0.elapsed().as_millis();
    let kube_label = match args.kube {
        KubeKind::Sim => "kube-sim    ",
        KubeKind::Real => "kube (real) ",
    };
    print_ready(&state, ready_ms, &vaults, kube_label);
    Ok(state)
}

fn print_ready(state: &State, ready_ms: u128, vaults: &[String], kube_label: &str) {
    let mode = match state.mode {
        NetMode::Netns => "network namespaces",
        NetMode::Loopback => "loopback addresses",
    };
    println!(
        "podid up: ready in {ready_ms} ms ({} nodes as {mode})",
        state.nodes.len()
    );
    println!(
        "  {kube_label} {}   (kubeconfig {})",
        state.kube_url,
        state.kubeconfig.display()
    );
    println!(
        "  azure-sim    control {}   (in pods: login.microsoftonline.com, management.azure.com, {})",
        state.azure.get("control").map(String::as_str).unwrap_or(""),
        vaults
            .iter()
            .map(|v| format!("{v}.vault.azure.net"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  controller   {}   (log {})",
        state.controller_probe,
        state.controller_log.display()
    );
    for n in &state.nodes {
        println!(
            "  node {}   pods {}   agent {}/healthz{}",
            n.name,
            n.pod_cidr,
            n.agent_probe,
            n.netns
                .as_deref()
                .map(|ns| format!("   netns {ns}"))
                .unwrap_or_default()
        );
    }
    println!("Use it:");
    println!("  export KUBECONFIG={}", state.kubeconfig.display());
    println!("  kubectl get nodes");
    println!(
        "  kubectl apply -f your-identity-and-binding.yaml   # aadpodidentity.k8s.io/v1 objects, the upstream way"
    );
    println!(
        "  podid run NAMESPACE/POD -- python3 your_app.py     # a local program as the pod's application"
    );
    println!(
        "  podid doctor NAMESPACE/POD                         # why a pod does or does not get a token"
    );
}

async fn create_raw(client: &kube::Client, obj: &Value) -> anyhow::Result<String> {
    let kind = obj["kind"].as_str().unwrap_or("");
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (path, shown) = match kind {
        "Namespace" => (
            "/api/v1/namespaces".to_string(),
            format!("namespace/{name}"),
        ),
        "Pod" => (
            format!("/api/v1/namespaces/{ns}/pods"),
            format!("pod/{name}"),
        ),
        "AzureIdentity" => (
            format!("/apis/aadpodidentity.k8s.io/v1/namespaces/{ns}/azureidentities"),
            format!("azureidentity.aadpodidentity.k8s.io/{name}"),
        ),
        "AzureIdentityBinding" => (
            format!("/apis/aadpodidentity.k8s.io/v1/namespaces/{ns}/azureidentitybindings"),
            format!("azureidentitybinding.aadpodidentity.k8s.io/{name}"),
        ),
        other => anyhow::bail!("the demo does not create {other} objects"),
    };
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(obj)?)?;
    match client.request::<Value>(req).await {
        Ok(_) => Ok(format!("{shown} created")),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(format!("{shown} unchanged")),
        Err(e) => Err(e.into()),
    }
}

async fn run_demo(state: &State, dir: &Path, exe: &Path) -> anyhow::Result<i32> {
    println!();
    println!("podid up --demo: the AKS pod-managed identity walkthrough");
    let client = run::client(state).await?;
    let mut created_at = Instant::now();
    for obj in demo::demo_objects() {
        if obj["kind"] == "Pod" {
            created_at = Instant::now();
        }
        println!("  {}", create_raw(&client, &obj).await?);
    }
    let (pod, rec) = run::wait_for_pod(
        &client,
        dir,
        demo::DEMO_NAMESPACE,
        demo::DEMO_POD,
        DEMO_POD_TIMEOUT,
    )
    .await?;
    println!(
        "  pod {}/{} is running on {} with IP {}{}",
        rec.namespace,
        rec.name,
        rec.node,
        rec.ip,
        rec.netns
            .as_deref()
            .map(|n| format!(" in network namespace {n}"))
            .unwrap_or_default()
    );
    let container_args: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    let mut argv = vec![exe.display().to_string(), "demo-client".to_string()];
    argv.extend(container_args);
    let mut prepared = run::prepare(state, &client, &pod, &rec, None, &[], &argv).await?;
    if let Some(n) = &prepared.notice {
        println!("  {n}");
    }
    println!(
        "  running the demo client as {}/{} (what the demo image does):",
        rec.namespace, rec.name
    );
    prepared
        .command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = prepared.command.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let prefix = format!("[{}/{}]", rec.namespace, rec.name);
    let err_prefix = prefix.clone();
    let err_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            println!("    {err_prefix} {l}");
        }
    });
    let mut first_token: Option<Duration> = None;
    let mut lines = BufReader::new(stdout).lines();
    let output = async {
        while let Ok(Some(l)) = lines.next_line().await {
            if first_token.is_none() && l.starts_with("successfully acquired a token") {
                first_token = Some(created_at.elapsed());
            }
            println!("    {prefix} {l}");
        }
        child.wait().await
    };
    let status = tokio::time::timeout(DEMO_CLIENT_TIMEOUT, output)
        .await
        .map_err(|_| {
            anyhow::anyhow!("the demo client did not finish within {DEMO_CLIENT_TIMEOUT:?}")
        })??;
    let _ = err_task.await;
    if let Some(tx) = prepared.relay_stop.take() {
        let _ = tx.send(true);
    }
    if let Some(t) = first_token {
        println!("  pod creation to its first token: {} ms", t.as_millis());
    }
    let code = status.code().unwrap_or(1);
    if code == 0 {
        println!("podid up --demo: OK");
        println!(
            "  try: podid doctor {}/{}   |   podid run {}/{} -- <your program>",
            rec.namespace, rec.name, rec.namespace, rec.name
        );
    } else {
        println!(
            "podid up --demo: FAILED (the demo client exited with {code}); logs in {}",
            dir.join("logs").display()
        );
    }
    Ok(code)
}
