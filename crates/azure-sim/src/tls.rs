//! Serving certificates chosen by SNI.
//!
//! One CA (generated, or reused from `<dir>/ca.crt` + `ca.key`) signs three leaf certificates:
//! - Entra: `login.microsoftonline.com`, `login.windows.net`, `login.microsoft.com`, `sts.windows.net`;
//! - ARM: `management.azure.com`, `management.core.windows.net`;
//! - Key Vault: `*.vault.azure.net`, `vault.azure.net`;
//!
//! each also valid for `localhost`, `127.0.0.1`, `::1` and the configured extra names. A listener presents the
//! certificate matching the client's SNI name when it knows it (so a client reaching any listener by a realistic
//! name verifies), and its own family's certificate otherwise (IP addresses carry no SNI).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sim_tls::Ca;

const CA_NAME: &str = "azure-sim CA";

/// Host names of the Entra certificate.
pub const ENTRA_NAMES: &[&str] = &[
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
];
/// Host names of the ARM certificate.
pub const ARM_NAMES: &[&str] = &["management.azure.com", "management.core.windows.net"];
/// Host names of the Key Vault certificate.
pub const VAULT_NAMES: &[&str] = &["*.vault.azure.net", "vault.azure.net"];

/// The family a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Entra ID.
    Entra,
    /// ARM.
    Arm,
    /// Key Vault.
    Vault,
}

/// All serving certificates.
#[derive(Debug)]
pub struct CertSet {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    by_kind: HashMap<CertKind, Arc<CertifiedKey>>,
}

/// Load `<dir>/ca.crt` + `ca.key` when both exist, else generate a CA (and save it when `dir` is set).
pub fn load_or_create_ca(dir: Option<&Path>) -> anyhow::Result<Ca> {
    sim_tls::load_or_create_ca(dir, CA_NAME)
}

fn certified(
    ca: &Ca,
    cn: &str,
    names: &[&str],
    extra: &[String],
) -> anyhow::Result<Arc<CertifiedKey>> {
    let mut sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    sans.extend([
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ]);
    sans.extend(extra.iter().cloned());
    let cert = ca.issue(cn, &sans)?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let ck = CertifiedKey::from_der(cert.chain.clone(), cert.key.clone_key(), &provider)
        .map_err(|e| anyhow::anyhow!("serving certificate for {cn}: {e}"))?;
    Ok(Arc::new(ck))
}

impl CertSet {
    /// Issue the three certificates.
    pub fn issue(ca: &Ca, extra_sans: &[String]) -> anyhow::Result<CertSet> {
        let mut by_name = HashMap::new();
        let mut by_kind = HashMap::new();
        for (kind, cn, names) in [
            (CertKind::Entra, "login.microsoftonline.com", ENTRA_NAMES),
            (CertKind::Arm, "management.azure.com", ARM_NAMES),
            (CertKind::Vault, "vault.azure.net", VAULT_NAMES),
        ] {
            let ck = certified(ca, cn, names, extra_sans)?;
            for n in names {
                by_name.insert(n.to_string(), ck.clone());
            }
            by_kind.insert(kind, ck);
        }
        Ok(CertSet { by_name, by_kind })
    }

    fn lookup(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        if let Some(c) = self.by_name.get(&sni) {
            return Some(c.clone());
        }
        let (_, parent) = sni.split_once('.')?;
        self.by_name.get(&format!("*.{parent}")).cloned()
    }

    /// A rustls server config for a listener of `kind` (HTTP/2 and HTTP/1.1).
    pub fn server_config(
        self: &Arc<Self>,
        kind: CertKind,
    ) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let default = self
            .by_kind
            .get(&kind)
            .cloned()
            .context("missing certificate")?;
        let resolver = Resolver {
            set: self.clone(),
            default,
        };
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[derive(Debug)]
struct Resolver {
    set: Arc<CertSet>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|n| self.set.lookup(n))
            .or_else(|| Some(self.default.clone()))
    }
}

/// The family an SNI name or Host belongs to (for the SNI-routing front listener).
pub fn kind_of_host(host: &str) -> Option<CertKind> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if ENTRA_NAMES.contains(&h.as_str()) {
        Some(CertKind::Entra)
    } else if ARM_NAMES.contains(&h.as_str()) {
        Some(CertKind::Arm)
    } else if h.ends_with(".vault.azure.net") || h == "vault.azure.net" {
        Some(CertKind::Vault)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_lookup() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = Ca::generate("t").expect("ca");
        let set = Arc::new(CertSet::issue(&ca, &["sim.example".into()]).expect("certs"));
        let entra = set.by_kind.get(&CertKind::Entra).cloned().expect("entra");
        let vault = set.by_kind.get(&CertKind::Vault).cloned().expect("vault");
        assert!(Arc::ptr_eq(
            &set.lookup("LOGIN.microsoftonline.com.").expect("login"),
            &entra
        ));
        assert!(Arc::ptr_eq(
            &set.lookup("myvault.vault.azure.net").expect("kv"),
            &vault
        ));
        assert!(set.lookup("a.b.vault.azure.net").is_none());
        assert!(set.lookup("example.com").is_none());
        assert!(set.server_config(CertKind::Arm).is_ok());
        assert_eq!(kind_of_host("management.azure.com"), Some(CertKind::Arm));
        assert_eq!(kind_of_host("kv1.vault.azure.net"), Some(CertKind::Vault));
        assert_eq!(kind_of_host("localhost"), None);
    }

    #[test]
    fn ca_is_reused() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = load_or_create_ca(Some(dir.path())).expect("ca");
        let b = load_or_create_ca(Some(dir.path())).expect("ca again");
        assert_eq!(a.cert_pem, b.cert_pem);
        assert!(dir.path().join("ca.crt").exists());
    }
}
