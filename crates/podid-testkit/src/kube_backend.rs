//! The Kubernetes API a test runs against: kube-sim in this process, or a real kube-apiserver with etcd and
//! kube-controller-manager as child processes ([`crate::real_kube`]). Everything outside this module reaches the
//! API through a [`kube::Client`] and the kubeconfig path, never through the simulator, except the methods that
//! say they are simulator-only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::real_kube::RealKube;
use crate::wait::WAIT;

/// Pause between attempts to restart kube-sim on its old address (the port may linger briefly).
const RESTART_RETRY: Duration = Duration::from_millis(100);

/// Which Kubernetes API a test runs against (`Display`: `sim`, `real`: a failure names it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// kube-sim (starts in milliseconds; needs nothing but this workspace).
    #[default]
    Sim,
    /// kube-apiserver + etcd + kube-controller-manager built by scripts/ensure-kube.sh.
    Real,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sim => "sim",
            Backend::Real => "real",
        })
    }
}

/// Which backends the suites run against: a comma-separated list of `sim` and `real` (unset: both). A case of
/// [`crate::both_backends!`] for a backend not listed passes at once, saying it was skipped.
pub const BACKENDS_ENV: &str = "PODID_TEST_BACKENDS";

/// Whether `test` (a [`crate::both_backends!`] case) runs on `backend`: not when [`BACKENDS_ENV`] leaves the
/// backend out, nor for [`Backend::Real`] when its binaries are not built (unless `PODID_REQUIRE_REAL_KUBE=1`,
/// where that fails the test). Prints `SKIPPED: <test>: <reason>` when it does not.
pub fn should_run(backend: Backend, test: &str) -> bool {
    if let Ok(list) = std::env::var(BACKENDS_ENV)
        && !list.trim().is_empty()
        && !list.split(',').any(|b| b.trim() == backend.to_string())
    {
        crate::tools::report(&format!(
            "SKIPPED: {test}: backend {backend} is not in {BACKENDS_ENV}={list}"
        ));
        return false;
    }
    if backend == Backend::Real
        && let Err(e) = crate::real_kube::binaries()
    {
        crate::tools::skip_or_fail(test, crate::real_kube::REQUIRE_ENV, &e.to_string());
        return false;
    }
    true
}

/// One test per backend for each `case` (an `async fn case(backend: Backend)` beside the macro): a module named
/// after the case with the tests `sim` and `real` (multi-threaded tokio tests, two workers), so a failure reads
/// `<case>::sim` or `<case>::real` and `cargo test <case>::real` runs one. Each asks [`should_run`] first:
/// [`BACKENDS_ENV`] can leave a backend out, and the real one skips (saying why) when its binaries are not built
/// and `PODID_REQUIRE_REAL_KUBE` is not `1`. `both_backends!(sync: case, ...)` does the same for a synchronous
/// `fn case(backend: Backend)` with plain `#[test]`s (a case that builds its own runtime, such as one whose
/// threads live in a network namespace).
///
/// ```ignore
/// podid_testkit::both_backends!(single_identity_lifecycle, leader_failover);
///
/// async fn single_identity_lifecycle(backend: Backend) {
///     let env = Env::builder(world()).backend(backend).start().await;
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! both_backends {
    (sync: $($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[test]
                fn sim() {
                    if $crate::kube_backend::should_run($crate::Backend::Sim, concat!(module_path!(), "::sim")) {
                        super::$case($crate::Backend::Sim);
                    }
                }

                #[test]
                fn real() {
                    if $crate::kube_backend::should_run($crate::Backend::Real, concat!(module_path!(), "::real")) {
                        super::$case($crate::Backend::Real);
                    }
                }
            }
        )+
    };
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sim() {
                    if $crate::kube_backend::should_run($crate::Backend::Sim, concat!(module_path!(), "::sim")) {
                        super::$case($crate::Backend::Sim).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn real() {
                    if $crate::kube_backend::should_run($crate::Backend::Real, concat!(module_path!(), "::real")) {
                        super::$case($crate::Backend::Real).await;
                    }
                }
            }
        )+
    };
}

/// A running Kubernetes API.
pub enum KubeBackend {
    /// kube-sim in this process, on a free loopback port.
    Sim(kube_sim::Handle),
    /// A real control plane on loopback ports.
    Real(Box<RealKube>),
}

// === impl KubeBackend ===

impl KubeBackend {
    /// kube-sim with its files in `dir` and an optional watch cache size. It runs no kubelet of its own: the
    /// kit runs `podid-kubelet` over the public API on both backends ([`crate::EnvBuilder::kubelet`]).
    pub async fn start_sim(
        dir: PathBuf,
        watch_cache_size: Option<usize>,
    ) -> anyhow::Result<KubeBackend> {
        let mut cfg = kube_sim::Config {
            dir: Some(dir),
            ..kube_sim::Config::default()
        };
        if let Some(n) = watch_cache_size {
            cfg.watch_cache_size = n;
        }
        Ok(KubeBackend::Sim(
            kube_sim::start(cfg).await.context("start kube-sim")?,
        ))
    }

    /// etcd, kube-apiserver and kube-controller-manager in a fresh temporary directory (see
    /// [`RealKube::start`]; a [`crate::real_kube::RealKubeUnavailable`] error when they are not built).
    pub async fn start_real() -> anyhow::Result<KubeBackend> {
        Ok(KubeBackend::Real(Box::new(RealKube::start().await?)))
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            KubeBackend::Sim(_) => Backend::Sim,
            KubeBackend::Real(_) => Backend::Real,
        }
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        match self {
            KubeBackend::Sim(h) => &h.url,
            KubeBackend::Real(k) => &k.url,
        }
    }

    /// PEM of the CA that signed the serving certificate (None for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        match self {
            KubeBackend::Sim(h) => h.ca_pem.as_deref(),
            KubeBackend::Real(k) => Some(&k.ca_pem),
        }
    }

    /// An admin kubeconfig.
    pub fn kubeconfig(&self) -> Option<&Path> {
        match self {
            KubeBackend::Sim(h) => h.kubeconfig.as_deref(),
            KubeBackend::Real(k) => Some(&k.kubeconfig),
        }
    }

    /// The simulator, when the backend is kube-sim (for tests that reach its store or restart it).
    pub fn sim(&self) -> Option<&kube_sim::Handle> {
        match self {
            KubeBackend::Sim(h) => Some(h),
            KubeBackend::Real(_) => None,
        }
    }

    /// The real control plane, when the backend is one.
    pub fn real(&self) -> Option<&RealKube> {
        match self {
            KubeBackend::Sim(_) => None,
            KubeBackend::Real(k) => Some(k),
        }
    }

    /// Stops the API server (and, for the real one, etcd and the controller manager; its directory goes too).
    pub async fn shutdown(self) {
        match self {
            KubeBackend::Sim(h) => h.shutdown().await,
            KubeBackend::Real(k) => k.shutdown().await,
        }
    }

    /// SIMULATOR ONLY: [`KubeBackend::try_stop_sim`], panicking on a real API server.
    pub async fn stop_sim(&mut self) -> kube_sim::Config {
        match self.try_stop_sim().await {
            Ok(cfg) => cfg,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// SIMULATOR ONLY: persist kube-sim's objects and stop it; a throw-away kube-sim holds the place until
    /// [`KubeBackend::restart_sim`]. Returns the configuration to restart with (same address, persisted state).
    /// An error on a real API server.
    pub async fn try_stop_sim(&mut self) -> anyhow::Result<kube_sim::Config> {
        let KubeBackend::Sim(h) = self else {
            anyhow::bail!(
                "stopping and restarting the API server is simulator-only (backend: real)"
            );
        };
        let mut cfg = h.sim.config.clone();
        cfg.listen = h.addr;
        cfg.persist = true;
        kube_sim::persist::save(&h.sim).context("persist kube-sim state")?;
        let placeholder = kube_sim::start(kube_sim::Config::default())
            .await
            .context("placeholder kube-sim")?;
        let old = std::mem::replace(self, KubeBackend::Sim(placeholder));
        old.shutdown().await;
        Ok(cfg)
    }

    /// SIMULATOR ONLY: start kube-sim again with `cfg` (from [`KubeBackend::stop_sim`]), retrying while its old
    /// port is still taken. Panics on a real API server.
    pub async fn restart_sim(&mut self, cfg: kube_sim::Config) {
        assert!(
            self.sim().is_some(),
            "restarting the API server is simulator-only (backend: real)"
        );
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
pub use kube_real::client_for;
