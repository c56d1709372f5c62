//! The files a running playground leaves for `podid run` and `podid doctor`: `<dir>/state.json` (written once the
//! playground is ready, removed on a clean stop) and one `<dir>/pods/<uid>.json` per pod whose network is wired.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default playground directory (relative to the working directory).
pub const DEFAULT_DIR: &str = ".podid/up";
/// Environment variable naming the playground directory for `podid run` and `podid doctor`.
pub const DIR_ENV: &str = "PODID_UP_DIR";

/// How simulated pods are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Nodes and pods are network namespaces; pods call 169.254.169.254 as on a real node (root).
    Netns,
    /// No namespaces: pods are loopback addresses and programs get the agent's address through the SDKs'
    /// environment variables (no root needed).
    Loopback,
}

/// One simulated node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// Kubernetes node name.
    pub name: String,
    /// Its pod CIDR.
    pub pod_cidr: String,
    /// Its namespace (netns mode).
    pub netns: Option<String>,
    /// The agent's token server as the node's pods reach it (netns: `http://169.254.169.254`; loopback: the
    /// agent's own loopback address).
    pub agent_url: String,
    /// The agent's probe server, reachable from the host (`/healthz`, `/readyz`, `/debug/pod`).
    pub agent_probe: String,
    /// The agent's metrics, reachable from the host.
    pub agent_metrics: String,
    /// The agent's log file.
    pub agent_log: PathBuf,
}

/// A running playground.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The `podid up` process.
    pub pid: u32,
    /// Networking mode.
    pub mode: NetMode,
    /// Admin kubeconfig (host side).
    pub kubeconfig: PathBuf,
    /// kube-sim URL (host side).
    pub kube_url: String,
    /// Where the kubelet writes projected volumes.
    pub kubelet_dir: PathBuf,
    /// CA bundle trusting both simulators (for programs run as pods).
    pub ca_bundle: PathBuf,
    /// azure-sim endpoints on host loopback: `entra`, `arm`, `keyvault`, `control`, `front`.
    pub azure: BTreeMap<String, String>,
    /// Key Vault names (`<name>.vault.azure.net`).
    pub vaults: Vec<String>,
    /// Nodes.
    pub nodes: Vec<NodeState>,
    /// The controller's probe URL.
    pub controller_probe: String,
    /// The controller's log file.
    pub controller_log: PathBuf,
}

/// A pod whose network is wired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    /// Pod uid.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Node.
    pub node: String,
    /// Pod IP.
    pub ip: IpAddr,
    /// The pod's network namespace (netns mode).
    pub netns: Option<String>,
}

/// The playground directory: `--dir`, else `$PODID_UP_DIR`, else [`DEFAULT_DIR`].
pub fn resolve_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| std::env::var_os(DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// `<dir>/state.json`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// `<dir>/pods/<uid>.json`.
pub fn pod_path(dir: &Path, uid: &str) -> PathBuf {
    dir.join("pods").join(format!("{uid}.json"))
}

/// Writes `value` as JSON atomically (readers never see half a file).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Reads a running playground's state, or says how to start one.
pub fn load(dir: &Path) -> anyhow::Result<State> {
    let path = state_path(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "no running playground at {} ({e}): start one with `podid up`, or point at it with --dir or {DIR_ENV}",
            path.display()
        )
    })?;
    let state: State = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a playground state file: {e}", path.display()))?;
    anyhow::ensure!(
        Path::new("/proc").join(state.pid.to_string()).exists(),
        "the playground in {} (pid {}) is not running any more: start it again with `podid up`",
        dir.display(),
        state.pid
    );
    Ok(state)
}

/// Reads a pod's record, if its network is wired.
pub fn load_pod(dir: &Path, uid: &str) -> Option<PodRecord> {
    let text = std::fs::read_to_string(pod_path(dir, uid)).ok()?;
    serde_json::from_str(&text).ok()
}
