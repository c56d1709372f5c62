//! `podid-kubelet`: a simulated kubelet for every Node object, speaking only the public Kubernetes API, so the
//! same piece serves kube-sim and a real kube-apiserver.
//!
//! Model. One watch over Nodes and one over Pods (podid-runtime's pump) fill a cache; one task reconciles what
//! changed, in order, and is the only place that writes:
//! - a pod bound to a Node that exists (`spec.nodeName`; the kubelet does not schedule) gets an address from the
//!   node's `spec.podCIDR` (a node without one is first given the next free `10.244.N.0/24` by a conditional
//!   Node patch, as the node IPAM controller would), `hostIP` from the node's `InternalIP`, phase `Running`, the
//!   usual conditions and one running status per container, all through the **`pods/status` subresource** (a
//!   JSON merge patch that replaces the status, with the pod's uid as precondition). A `hostNetwork` pod gets the
//!   node's address. The node is read fresh for a pod about to start (the pod watch may run ahead of the node
//!   watch). A pod already `Running` with an address is left alone;
//! - its projected volumes are written where the real kubelet puts them,
//!   `<dir>/pods/<pod-uid>/volumes/kubernetes.io~projected/<volume>/<path>` ([`projected_dir`]), each file
//!   replaced atomically: service-account tokens from **TokenRequest**
//!   (`POST /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token`, bound to the pod by kind, name and uid, with
//!   the source's audience and `expirationSeconds`) rewritten at 80% of their lifetime or after 24 h; config
//!   maps (such as `kube-root-ca.crt`), secrets and downward-API fields (namespace, name, uid, node name,
//!   service account) whenever the pod changes;
//! - a pod that disappears loses its directory and its address; a pod the API server holds in graceful
//!   deletion is deleted with grace period 0 (uid precondition), as the kubelet does once its containers stopped
//!   (kube-sim deletes pods at once, so this matters only on a real API server).
//!
//! Invariants. No address is handed out twice on a node: the reconciler waits until both watches delivered their
//! first list, then learns every address pods already carry before it assigns any, so a restarted kubelet picks
//! up where the last one left off (and removes directories of pods that no longer exist). Paths from a pod spec
//! never leave the volume directory ([`volumes::safe_relative_path`]). The pure decisions live in [`ipam`],
//! [`status`] and [`volumes`]; [`sync`] only does the IO around them.

pub mod ipam;
pub mod status;
pub mod sync;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use volumes::projected_dir;

/// How often due tokens are looked for (they are also looked for after every change).
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(1);

/// The kubelet's clock: seconds since the epoch. Tests move it forward to make tokens due.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
#[must_use]
pub fn system_clock() -> Clock {
    Arc::new(|| jiff::Timestamp::now().as_second())
}

/// What the kubelet needs besides its client.
#[derive(Clone)]
pub struct Config {
    /// Where pods' files go (`<dir>/pods/<uid>/...`); the kubelet owns this directory.
    pub dir: PathBuf,
    /// How often due tokens are looked for.
    pub resync: Duration,
    /// Time for token lifetimes and status timestamps.
    pub clock: Clock,
}

// === impl Config ===

impl Config {
    /// The kubelet writing under `dir`, with [`DEFAULT_RESYNC`] and the system clock.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            resync: DEFAULT_RESYNC,
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("dir", &self.dir)
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

/// A running kubelet. Stop it with [`Kubelet::stop`]; dropping the handle stops it too (without waiting).
#[must_use = "the kubelet stops when its handle is dropped"]
pub struct Kubelet {
    shared: Arc<sync::Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Start the kubelet on the current tokio runtime, against the API server `client` talks to (it needs to
/// watch nodes and pods, patch nodes and `pods/status`, delete pods, read config maps and secrets, and create
/// `serviceaccounts/token`).
pub fn start(client: kube::Client, config: Config) -> Kubelet {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(sync::Shared::new());
    let task = tokio::spawn(sync::run(client, config, shared.clone(), stop_rx));
    Kubelet {
        shared,
        stop,
        task: Some(task),
    }
}

// === impl Kubelet ===

impl Kubelet {
    /// Both watches delivered their first list (the kubelet acts on pods from then on).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// Stop watching and writing, and wait until the kubelet has. Files it wrote stay (a later kubelet on the
    /// same directory takes them over).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
