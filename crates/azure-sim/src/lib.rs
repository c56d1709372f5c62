//! azure-sim: an Azure identity simulator — IMDS, Entra ID, Azure Resource Manager and Key Vault — speaking the
//! real wire protocols, so the official Azure SDKs and `podid` work against it unmodified and without a
//! subscription.
//!
//! # Model
//! A [`world::World`] describes tenants, subscriptions, resource groups, VMs and scale sets (each VM or scale set
//! instance is a Kubernetes node), user-assigned identities with their federated identity credentials, app
//! registrations (secrets, certificates, federated credentials), role assignments and Key Vaults. It is loaded
//! from YAML or JSON ([`Config::from_world_file`]), normalized (deterministic IDs, defaults, reference checks)
//! and kept behind one lock together with a derived [`world::Index`]. Everything the endpoints answer is a
//! function of that world plus time:
//!
//! - **IMDS** (plain HTTP, one listener per node) hands out tokens only for identities that the ARM state assigns
//!   to the node's VM or scale set, so an identity added by an ARM PATCH becomes available as soon as the write
//!   (a long-running operation of configurable duration) completes.
//! - **Entra ID** issues RS256 access tokens for client secrets, certificate assertions and federated assertions
//!   (fetching the assertion issuer's OIDC discovery and JWKS over HTTPS), with Entra's AADSTS errors.
//! - **ARM** authenticates those tokens, authorizes with the world's role assignments and changes identity
//!   blocks with ARM's merge semantics and limits.
//! - **Key Vault** runs the bearer challenge and an RBAC check before serving secrets.
//!
//! # Invariants
//! - Decisions live in IO-free modules ([`imds`], [`entra`], [`arm`], [`keyvault`], [`rbac`], [`token`],
//!   [`world`], [`form`], [`jwt`]) that take `now` as a parameter and are table-tested; [`service`] is the IO
//!   edge (listeners, TLS, the OIDC fetcher in [`oidc`]).
//! - Bad input never panics: every parser returns the service's own error body.
//! - Tokens and secrets never reach the request log (parameters are redacted, headers are not logged).
//! - Signing is the only expensive step on the token paths; an issued token is handed out again for the same
//!   request for [`config::Settings::token_reuse_secs`] (IMDS caches tokens the same way).
//!
//! Start one with [`start`]; the [`Handle`] tells every URL and stops the simulator when dropped or on
//! [`Handle::shutdown`].

pub mod arm;
pub mod armid;
pub mod config;
pub mod entra;
pub mod form;
pub mod imds;
pub mod jwt;
pub mod keys;
pub mod keyvault;
pub mod oidc;
pub mod rbac;
pub mod service;
pub mod state;
pub mod tls;
pub mod token;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

pub use crate::config::{Config, Settings};
pub use crate::service::{Endpoints, Sim};
pub use crate::state::{Family, Fault};
pub use crate::world::World;

use crate::service::Target;
use crate::tls::{CertKind, CertSet};

/// A running simulator.
pub struct Handle {
    /// Shared state.
    pub sim: Arc<Sim>,
    /// PEM of the CA that signs every serving certificate.
    pub ca_pem: String,
    /// `<dir>/ca.crt` when a directory is configured.
    pub ca_file: Option<PathBuf>,
    /// Entra ID base URL (use as `AZURE_AUTHORITY_HOST`).
    pub entra_url: String,
    /// ARM base URL.
    pub arm_url: String,
    /// Shared Key Vault URL (vault chosen by `Host`, or the only vault).
    pub keyvault_url: String,
    /// Control API base URL.
    pub control_url: String,
    /// SNI-routing front listener URL.
    pub front_url: Option<String>,
    shutdown: watch::Sender<bool>,
}

impl Handle {
    /// Every endpoint.
    pub fn endpoints(&self) -> Endpoints {
        self.sim.endpoints.read().clone()
    }

    /// The IMDS base URL of a node (use as `AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    pub fn imds_url(&self, node: &str) -> Option<String> {
        self.sim.endpoints.read().imds.get(node).cloned()
    }

    /// The URL of a vault's own listener.
    pub fn vault_url(&self, name: &str) -> Option<String> {
        self.sim.endpoints.read().vaults.get(name).cloned()
    }

    /// Stop every listener and wait for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.sim.stop_listeners();
        loop {
            let tasks = self.sim.take_tasks();
            if tasks.is_empty() {
                break;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.sim.stop_listeners();
    }
}

fn load_or_create_key(dir: Option<&std::path::Path>) -> anyhow::Result<keys::SigningKey> {
    if let Some(d) = dir {
        let p = d.join("signing-key.pem");
        if p.exists() {
            let pem =
                std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
            return keys::SigningKey::from_pkcs8_pem(&pem);
        }
        let k = keys::SigningKey::generate()?;
        sim_tls::write_private(&p, k.pkcs8_pem.as_bytes())?;
        return Ok(k);
    }
    keys::SigningKey::generate()
}

fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr).with_context(|| format!("bind {what} on {addr}"))?;
    l.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(l)?)
}

/// Start a simulator (must run inside a Tokio runtime).
pub async fn start(config: Config) -> anyhow::Result<Handle> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Some(d) = &config.dir {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let ca = tls::load_or_create_ca(config.dir.as_deref())?;
    let certs = Arc::new(CertSet::issue(&ca, &config.extra_sans)?);
    let key = load_or_create_key(config.dir.as_deref())?;
    let mut trust = vec![ca.cert_pem.clone()];
    trust.extend(config.oidc_trust_pem.iter().cloned());
    let oidc = oidc::OidcClient::new(&trust, config.oidc_cache_ttl)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let entra_l = bind(config.entra_listen, "Entra")?;
    let arm_l = bind(config.arm_listen, "ARM")?;
    let kv_l = bind(config.keyvault_listen, "Key Vault")?;
    let control_l = bind(config.control_listen, "control API")?;
    let front_l = match config.front_listen {
        Some(a) => Some(bind(a, "front")?),
        None => None,
    };
    let url = |scheme: &str, l: &tokio::net::TcpListener| -> anyhow::Result<String> {
        Ok(format!("{scheme}://{}", l.local_addr()?))
    };
    let entra_url = url("https", &entra_l)?;
    let arm_url = url("https", &arm_l)?;
    let keyvault_url = url("https", &kv_l)?;
    let control_url = url("http", &control_l)?;
    let front_url = front_l.as_ref().map(|l| url("https", l)).transpose()?;
    let ca_file = config.dir.as_ref().map(|d| d.join("ca.crt"));

    let sim = Arc::new(Sim::new(
        config,
        key,
        ca.cert_pem.clone(),
        certs.clone(),
        oidc,
        shutdown_rx,
    ));
    {
        let mut e = sim.endpoints.write();
        e.ca_file = ca_file.as_ref().map(|p| p.display().to_string());
        e.entra = entra_url.clone();
        e.arm = arm_url.clone();
        e.keyvault = keyvault_url.clone();
        e.control = control_url.clone();
        e.front = front_url.clone();
    }
    // Static listeners stop with the simulator only (their own stop channel never fires).
    let (_, never) = watch::channel(false);
    let static_listeners = [
        (
            entra_l,
            Some(certs.server_config(CertKind::Entra)?),
            Target::Entra,
        ),
        (
            arm_l,
            Some(certs.server_config(CertKind::Arm)?),
            Target::Arm,
        ),
        (
            kv_l,
            Some(certs.server_config(CertKind::Vault)?),
            Target::KeyVault(None),
        ),
        (control_l, None, Target::Control),
    ];
    for (l, tls, target) in static_listeners {
        sim.push_task(tokio::spawn(service::serve(
            sim.clone(),
            l,
            tls,
            target,
            never.clone(),
        )));
    }
    if let Some(l) = front_l {
        let tls = Some(certs.server_config(CertKind::Entra)?);
        sim.push_task(tokio::spawn(service::serve(
            sim.clone(),
            l,
            tls,
            Target::Front,
            never.clone(),
        )));
    }
    sim.sync_listeners()?;
    tracing::info!(entra = %entra_url, arm = %arm_url, keyvault = %keyvault_url, control = %control_url, "azure-sim serving");
    Ok(Handle {
        sim,
        ca_pem: ca.cert_pem,
        ca_file,
        entra_url,
        arm_url,
        keyvault_url,
        control_url,
        front_url,
        shutdown: shutdown_tx,
    })
}
