//! sim-tls: the TLS helpers kube-sim and azure-sim share (INFRASTRUCTURE, like `podid-serve`).
//!
//! A generated certificate authority ([`Ca`]) that issues serving certificates, reloadable from a data directory
//! ([`load_or_create_ca`]); rustls server and client configs; the admin kubeconfig writer; and
//! [`write_private`], the one way a simulator writes a file holding a key or a credential (mode 0600).
//!
//! The crate uses whatever rustls crypto provider the process installed (aws-lc-rs: the workspace builds rustls
//! and rcgen with aws-lc-rs only); it depends on neither simulator, so either can be used without the other.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority that can issue serving certificates.
pub struct Ca {
    /// PEM of the CA certificate (what clients trust).
    pub cert_pem: String,
    /// PEM of the CA private key (kept so a data directory can reuse the CA).
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate chain and key: a serving certificate, or a client one ([`Ca::issue_client`]).
pub struct ServingCert {
    /// Leaf then CA, DER.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 DER key.
    pub key: PrivateKeyDer<'static>,
    /// PEM of the leaf.
    pub cert_pem: String,
    /// PEM of the key.
    pub key_pem: String,
}

impl Ca {
    fn params(common_name: &str) -> anyhow::Result<CertificateParams> {
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(params)
    }

    /// Generate a new CA named `common_name`.
    pub fn generate(common_name: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::generate().context("generate CA key")?;
        let params = Self::params(common_name)?;
        let cert = params.self_signed(&key).context("self-sign CA")?;
        let key_pem = key.serialize_pem();
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Load a CA saved by [`Ca::generate`] (same subject): the issuer is rebuilt from the key and the subject,
    /// which is all a signature and its chain check depend on.
    pub fn from_pem(common_name: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::from_pem(key_pem).context("parse CA key")?;
        let issuer = Issuer::new(Self::params(common_name)?, key);
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    /// Issue a serving certificate for the given DNS names and IP addresses.
    pub fn issue(&self, common_name: &str, sans: &[String]) -> anyhow::Result<ServingCert> {
        let mut params = CertificateParams::new(sans.to_vec()).context("serving cert SANs")?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params, "serving")
    }

    /// A fresh key and `params` (plus the key usages of a TLS leaf) signed by this CA.
    fn sign(&self, mut params: CertificateParams, what: &str) -> anyhow::Result<ServingCert> {
        let key = KeyPair::generate().with_context(|| format!("generate {what} key"))?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("sign {what} cert"))?;
        let ca_der = pem_to_der(&self.cert_pem)?;
        Ok(ServingCert {
            chain: vec![cert.der().clone(), ca_der],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

// === impl Ca: client certificates ===

impl Ca {
    /// Issue a client certificate for user `common_name` in `organizations` (Kubernetes reads the subject's CN as
    /// the user name and each O as a group: `["system:masters"]` makes an admin of a real kube-apiserver).
    pub fn issue_client(
        &self,
        common_name: &str,
        organizations: &[&str],
    ) -> anyhow::Result<ServingCert> {
        let mut params = CertificateParams::new(Vec::<String>::new()).context("client params")?;
        for o in organizations {
            params.distinguished_name.push(DnType::OrganizationName, *o);
        }
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, "client")
    }
}

/// A fresh RSA-2048 key pair as PEM: (PKCS#8 private key, SubjectPublicKeyInfo public key). RSA because
/// service-account tokens are RS256 on AKS and in kube-sim (a real kube-apiserver's
/// `--service-account-signing-key-file` takes it as it is).
pub fn rsa_key_pair_pem() -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).context("generate RSA key")?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

fn pem_to_der(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("parse CA PEM: {e:?}"))
}

/// A rustls server config for `cert` (HTTP/2 and HTTP/1.1 via ALPN).
pub fn server_config(cert: &ServingCert) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), cert.key.clone_key())
        .context("serving certificate")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A rustls client config trusting the CAs in `ca_pem` (one or more PEM certificates).
pub fn client_config(ca_pem: &[u8]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| anyhow::anyhow!("caBundle is not PEM: {e:?}"))?;
        roots.add(cert).context("add CA")?;
    }
    if roots.is_empty() {
        anyhow::bail!("caBundle holds no certificate");
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Write an admin kubeconfig for `server` using bearer-token auth.
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: Option<&str>,
    token: &str,
) -> anyhow::Result<()> {
    use base64::Engine;
    let cluster = match ca_pem {
        Some(ca) => format!(
            "    certificate-authority-data: {}\n    server: {server}\n",
            base64::engine::general_purpose::STANDARD.encode(ca)
        ),
        None => format!("    server: {server}\n"),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n{cluster}contexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim-admin\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim-admin\n  user:\n    token: {token}\npreferences: {{}}\n"
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    write_private(path, text.as_bytes())
}

/// Write a file readable only by its owner (kubeconfigs and keys hold credentials).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))
}

/// A client TLS stream (used by tools that talk to the simulator without a full HTTP client).
pub type ClientTlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Connect a TLS client stream.
pub async fn connect(
    cfg: Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
    tcp: tokio::net::TcpStream,
) -> anyhow::Result<ClientTlsStream> {
    Ok(tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await?)
}

/// Load `<dir>/ca.crt` + `ca.key` when both exist (a CA named `common_name`), else generate one and save it there
/// when `dir` is set (the key with [`write_private`]).
pub fn load_or_create_ca(dir: Option<&Path>, common_name: &str) -> anyhow::Result<Ca> {
    if let Some(d) = dir {
        let (c, k) = (d.join("ca.crt"), d.join("ca.key"));
        if c.exists() && k.exists() {
            let cert =
                std::fs::read_to_string(&c).with_context(|| format!("read {}", c.display()))?;
            let key =
                std::fs::read_to_string(&k).with_context(|| format!("read {}", k.display()))?;
            return Ca::from_pem(common_name, &cert, &key);
        }
    }
    let ca = Ca::generate(common_name)?;
    if let Some(d) = dir {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        write_private(&d.join("ca.key"), ca.key_pem.as_bytes())?;
        write_private(&d.join("ca.crt"), ca.cert_pem.as_bytes())?;
    }
    Ok(ca)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_issues_and_reloads() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tmp");
        let a = load_or_create_ca(Some(dir.path()), "t").expect("ca");
        let b = load_or_create_ca(Some(dir.path()), "t").expect("ca again");
        assert_eq!(a.cert_pem, b.cert_pem);
        let cert = b
            .issue("localhost", &["localhost".into(), "127.0.0.1".into()])
            .expect("issue");
        assert_eq!(cert.chain.len(), 2);
        let client = b
            .issue_client("admin", &["system:masters"])
            .expect("client");
        assert_eq!(client.chain.len(), 2);
        assert!(client.key_pem.contains("PRIVATE KEY"));
        let (private, public) = rsa_key_pair_pem().expect("rsa");
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(server_config(&cert).is_ok());
        assert!(client_config(a.cert_pem.as_bytes()).is_ok());
        assert!(client_config(b"not pem").is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
