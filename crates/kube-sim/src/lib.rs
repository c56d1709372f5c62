//! kube-sim: an in-memory Kubernetes API server that real kubectl and kube-rs accept.
//!
//! The simulator speaks the Kubernetes REST protocol over HTTPS (or plain HTTP for tests): discovery (legacy and
//! aggregated), generic storage for any group/version/resource with resourceVersion semantics, list/watch with
//! resume, bookmarks and 410 Gone, label and field selectors, four patch types, status subresources, custom
//! resources served dynamically from CustomResourceDefinitions with schema validation, the identity APIs
//! (TokenRequest, TokenReview, SubjectAccessReview, OIDC discovery), RBAC authorisation of every request, mutating
//! admission webhooks on pod creation and owner-reference garbage collection. It runs no kubelet: pods are run
//! over the public API by `podid-kubelet`, which serves a real API server alike.
//!
//! Layout: pure decisions live in sibling crates (`kube-sim-machinery` for selectors and patches,
//! `kube-sim-auth` for RBAC and tokens, `kube-sim-schema` for CRD schemas and tables) and certificates in
//! `sim-tls`; this crate owns the IO, in layers that call only downward: [`server`] (HTTP) -> [`api`] (the verbs,
//! one module per family) -> [`registry`] (writes and after-write hooks, no HTTP type) -> [`store`] (objects,
//! versions, change log, watch fan-out). Beside them: [`authn`] (who is calling), [`authz`] (RBAC),
//! [`admission`], [`reviews`], and the background controllers [`gc`], [`workloads`] and [`persist`], which write
//! through the registry and never call the verbs.
//!
//! Start one with [`start`]; the returned [`Handle`] tells the URL, the CA and the admin token, and stops the
//! server when dropped or when [`Handle::shutdown`] is called.

pub mod admission;
pub mod api;
pub mod authn;
pub mod authz;
pub mod discovery;
pub mod error;
pub mod gc;
pub mod meta;
pub mod persist;
pub mod registry;
pub mod resources;
pub mod reviews;
pub mod server;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;
pub mod workloads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::RwLock;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch as tokio_watch};

pub use crate::authn::User;
pub use crate::error::{ApiError, ApiResult};
use crate::resources::{Registry, ResKey};
pub use crate::server::Config;
use crate::store::Store;

/// Name of the admin user the admin token authenticates as.
pub const ADMIN_USER: &str = "kube-sim-admin";

/// Shared server state.
pub struct Sim {
    /// Configuration.
    pub config: Config,
    /// Objects.
    pub store: Store,
    /// Served resource types.
    pub registry: RwLock<Registry>,
    /// Service-account token signer.
    pub signer: kube_sim_auth::token::Signer,
    /// The admin bearer token.
    pub admin_token: String,
    /// Base URL (`https://127.0.0.1:PORT`).
    pub base_url: String,
    /// PEM of the serving CA (None for plain HTTP).
    pub ca_pem: Option<String>,
    /// Bumped on every RBAC write, so the cached RBAC snapshot is rebuilt.
    pub rbac_generation: std::sync::atomic::AtomicU64,
    /// The RBAC snapshot and the generation it was built at.
    pub rbac_cache: RwLock<Option<(u64, Arc<kube_sim_auth::StaticRbac>)>>,
    /// Deleted-object uids for the garbage collector.
    pub gc_tx: mpsc::UnboundedSender<gc::GcEvent>,
    /// Flips to true on shutdown.
    pub shutdown: tokio_watch::Receiver<bool>,
    /// The bounded HTTP server: limits from `config.limits`, connection counters (served at `/metrics`).
    pub server: Arc<podid_serve::Server>,
}

/// A running simulator.
pub struct Handle {
    /// Listening address.
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT` (or http).
    pub url: String,
    /// PEM of the CA that signed the serving certificate (None for plain HTTP).
    pub ca_pem: Option<String>,
    /// Admin bearer token.
    pub admin_token: String,
    /// Path of the admin kubeconfig, when a directory was configured.
    pub kubeconfig: Option<PathBuf>,
    /// Shared state (tests use it to reach the store directly).
    pub sim: Arc<Sim>,
    shutdown: tokio_watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Handle {
    /// Stop serving, persist state (when configured) and wait for background tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if self.sim.config.persist
            && let Err(e) = persist::save(&self.sim)
        {
            tracing::error!(error = %e, "could not persist state on shutdown");
        }
    }

    /// Wait until the server stops (Ctrl-C handling is the caller's).
    pub async fn wait(&mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Start a simulator.
pub async fn start(config: Config) -> anyhow::Result<Handle> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("bind {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls { "https" } else { "http" };
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}", addr.port());
    if let Some(dir) = &config.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }

    let ca = if config.tls {
        Some(persist::load_or_create_ca(config.dir.as_deref())?)
    } else {
        None
    };
    let tls = match &ca {
        Some(ca) => {
            let mut sans = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "kubernetes".into(),
                "kubernetes.default".into(),
                "kubernetes.default.svc".into(),
                "kubernetes.default.svc.cluster.local".into(),
            ];
            if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
                sans.push(addr.ip().to_string());
            }
            sans.extend(config.extra_sans.iter().cloned());
            let cert = ca.issue("kube-apiserver", &sans)?;
            Some(tls::server_config(&cert)?)
        }
        None => None,
    };
    let issuer = config.issuer.clone().unwrap_or_else(|| url.clone());
    let signer = persist::load_or_create_signer(config.dir.as_deref(), &issuer)?;
    let admin_token = match &config.admin_token {
        Some(t) => t.clone(),
        None => persist::load_or_create_admin_token(config.dir.as_deref())?,
    };
    let (shutdown_tx, shutdown_rx) = tokio_watch::channel(false);
    let (gc_tx, gc_rx) = mpsc::unbounded_channel();
    let sim = Arc::new(Sim {
        store: Store::new(config.watch_cache_size),
        registry: RwLock::new(Registry::builtin()),
        signer,
        admin_token: admin_token.clone(),
        base_url: url.clone(),
        ca_pem: ca.as_ref().map(|c| c.cert_pem.clone()),
        rbac_generation: std::sync::atomic::AtomicU64::new(0),
        rbac_cache: RwLock::new(None),
        gc_tx,
        shutdown: shutdown_rx.clone(),
        server: podid_serve::Server::new(config.limits),
        config: config.clone(),
    });

    let restored = if config.persist {
        persist::load(&sim)?
    } else {
        false
    };
    if !restored {
        bootstrap(&sim)?;
    }
    for file in &config.seed {
        persist::seed_file(&sim, file)
            .await
            .with_context(|| format!("seed {}", file.display()))?;
    }

    let mut kubeconfig = None;
    if let Some(dir) = &config.dir {
        if let Some(ca) = &ca {
            tls::write_private(&dir.join("ca.crt"), ca.cert_pem.as_bytes())?;
        }
        let path = dir.join("kubeconfig");
        tls::write_kubeconfig(
            &path,
            &url,
            ca.as_ref().map(|c| c.cert_pem.as_str()),
            &admin_token,
        )?;
        kubeconfig = Some(path);
    }

    let mut tasks = vec![tokio::spawn(server::serve(
        sim.clone(),
        listener,
        tls,
        shutdown_rx.clone(),
    ))];
    tasks.push(tokio::spawn(gc::run(sim.clone(), gc_rx)));
    tasks.push(tokio::spawn(workloads::run(sim.clone())));
    if config.persist {
        tasks.push(tokio::spawn(persist::run(sim.clone())));
    }
    tracing::info!(%url, "kube-sim serving");
    Ok(Handle {
        addr,
        url,
        ca_pem: ca.map(|c| c.cert_pem),
        admin_token,
        kubeconfig,
        sim,
        shutdown: shutdown_tx,
        tasks,
    })
}

/// Objects every cluster starts with: the default namespaces, their default service accounts, and the bootstrap
/// RBAC roles that let authenticated users discover the API and review themselves.
fn bootstrap(sim: &Sim) -> anyhow::Result<()> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        registry::create_internal(sim, obj)
            .map_err(|e| anyhow::anyhow!("bootstrap namespace {ns}: {e}"))?;
    }
    let discovery_paths = json!([
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/openapi",
        "/openapi/*",
        "/version",
        "/version/",
        "/healthz",
        "/livez",
        "/readyz"
    ]);
    let objs = vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:discovery"},
               "rules": [{"nonResourceURLs": discovery_paths, "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:public-info-viewer"},
               "rules": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:basic-user"},
               "rules": [{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                         {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:service-account-issuer-discovery"},
               "rules": [{"nonResourceURLs": ["/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks", "/openid/v1/jwks/"], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cluster-admin"},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:discovery"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:discovery"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:public-info-viewer"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:public-info-viewer"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"},
                            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:basic-user"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]}),
        // Issuer discovery is public, as it is for AKS OIDC issuers: Entra (and azure-sim) fetch it anonymously.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:service-account-issuer-discovery"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:service-account-issuer-discovery"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts"},
                            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admin"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]}),
    ];
    for o in objs {
        registry::create_internal(sim, o).map_err(|e| anyhow::anyhow!("bootstrap RBAC: {e}"))?;
    }
    Ok(())
}

impl Sim {
    /// Storage key for a kind's resource (`Pod` -> pods).
    pub fn key_of(&self, group: &str, resource: &str) -> ResKey {
        ResKey::new(group, resource)
    }

    /// Look up an object as JSON.
    pub fn get_object(
        &self,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        self.store.get(&ResKey::new(group, resource), ns, name)
    }
}
