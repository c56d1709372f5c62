//! The Kubernetes API a test runs against. Today kube-sim, in this process; a real kube-apiserver can become a
//! second variant. Everything outside this module reaches the API through a [`kube::Client`] and the kubeconfig
//! path, never through the simulator, except the methods that say they are simulator-only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::wait::WAIT;

/// Pause between attempts to restart kube-sim on its old address (the port may linger briefly).
const RESTART_RETRY: Duration = Duration::from_millis(100);

/// A running Kubernetes API.
pub enum KubeBackend {
    /// kube-sim in this process, on a free loopback port.
    Sim(kube_sim::Handle),
}

// === impl KubeBackend ===

impl KubeBackend {
    /// kube-sim with its files in `dir`, the kubelet's in `kubelet_dir` (the kubelet runs when given: scheduled
    /// pods get an IP from their node's podCIDR and phase Running), and an optional watch cache size.
    pub async fn start_sim(
        dir: PathBuf,
        kubelet_dir: Option<PathBuf>,
        watch_cache_size: Option<usize>,
    ) -> anyhow::Result<KubeBackend> {
        let mut cfg = kube_sim::Config {
            dir: Some(dir),
            kubelet_dir,
            ..kube_sim::Config::default()
        };
        if let Some(n) = watch_cache_size {
            cfg.watch_cache_size = n;
        }
        Ok(KubeBackend::Sim(
            kube_sim::start(cfg).await.context("start kube-sim")?,
        ))
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        match self {
            KubeBackend::Sim(h) => &h.url,
        }
    }

    /// PEM of the CA that signed the serving certificate (None for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        match self {
            KubeBackend::Sim(h) => h.ca_pem.as_deref(),
        }
    }

    /// An admin kubeconfig.
    pub fn kubeconfig(&self) -> Option<&Path> {
        match self {
            KubeBackend::Sim(h) => h.kubeconfig.as_deref(),
        }
    }

    /// The simulator, when the backend is kube-sim (for tests that reach its store or restart it).
    pub fn sim(&self) -> Option<&kube_sim::Handle> {
        match self {
            KubeBackend::Sim(h) => Some(h),
        }
    }

    /// Stops the API server.
    pub async fn shutdown(self) {
        match self {
            KubeBackend::Sim(h) => h.shutdown().await,
        }
    }

    /// SIMULATOR ONLY: persist kube-sim's objects and stop it; a throw-away kube-sim holds the place until
    /// [`KubeBackend::restart_sim`]. Returns the configuration to restart with (same address, persisted state).
    pub async fn stop_sim(&mut self) -> kube_sim::Config {
        let KubeBackend::Sim(h) = self;
        let mut cfg = h.sim.config.clone();
        cfg.listen = h.addr;
        cfg.persist = true;
        kube_sim::persist::save(&h.sim).expect("persist kube-sim state");
        let placeholder = kube_sim::start(kube_sim::Config::default())
            .await
            .expect("placeholder kube-sim");
        let old = std::mem::replace(self, KubeBackend::Sim(placeholder));
        old.shutdown().await;
        cfg
    }

    /// SIMULATOR ONLY: start kube-sim again with `cfg` (from [`KubeBackend::stop_sim`]), retrying while its old
    /// port is still taken.
    pub async fn restart_sim(&mut self, cfg: kube_sim::Config) {
        let deadline = Instant::now() + WAIT;
        let h = loop {
            match kube_sim::start(cfg.clone()).await {
                Ok(h) => break h,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("kube-sim restart: {e:#}; retrying");
                    tokio::time::sleep(RESTART_RETRY).await;
                }
                Err(e) => panic!("kube-sim restart failed: {e:#}"),
            }
        };
        let placeholder = std::mem::replace(self, KubeBackend::Sim(h));
        placeholder.shutdown().await;
    }
}

/// A client for `kubeconfig` (its current context).
pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).context("read kubeconfig")?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("kube config")?;
    kube::Client::try_from(cfg).context("kube client")
}
