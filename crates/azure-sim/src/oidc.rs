//! Fetching a federated issuer's keys: `<issuer>/.well-known/openid-configuration`, then its `jwks_uri`, over
//! HTTPS only, trusting the configured CAs. Keys are cached per issuer for a short TTL; a token whose `kid` is
//! not in the cached set forces one refetch (rate-limited), as Entra does after key rotation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use parking_lot::Mutex;
use serde_json::Value;

use crate::jwt::Jwk;

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOC: usize = 1024 * 1024;
const MIN_REFRESH: Duration = Duration::from_secs(2);
/// What the fetcher accepts: discovery documents and JWK sets under their registered media type.
const ACCEPT: &str = "application/json, application/jwk-set+json";

/// Why the issuer's keys could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not https or not parseable.
    #[error("not an https URL: {0}")]
    Url(String),
    /// Connection, TLS or HTTP failure.
    #[error("request to {0} failed: {1}")]
    Transport(String, String),
    /// Non-200 status.
    #[error("{0} answered HTTP {1}")]
    Status(String, u16),
    /// Body is not the expected JSON.
    #[error("{0} returned an invalid document: {1}")]
    Document(String, String),
}

struct Cached {
    keys: Arc<Vec<Jwk>>,
    at: Instant,
}

/// An HTTPS client for issuer discovery with a key cache.
pub struct OidcClient {
    tls: Arc<rustls::ClientConfig>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// A client trusting the PEM CAs in `trust` (at least one).
    pub fn new(trust: &[String], ttl: Duration) -> anyhow::Result<OidcClient> {
        let bundle = trust.join("\n");
        let tls = sim_tls::client_config(bundle.as_bytes())?;
        Ok(OidcClient {
            tls,
            ttl,
            cache: Mutex::new(HashMap::new()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many discovery round-trips were made (for tests and the control API).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forget cached keys.
    pub fn clear(&self) {
        self.cache.lock().clear();
    }

    /// The issuer's keys, from the cache unless stale or `refresh` (and the entry is older than 2 s).
    pub async fn keys(&self, issuer: &str, refresh: bool) -> Result<Arc<Vec<Jwk>>, FetchError> {
        {
            let c = self.cache.lock();
            if let Some(e) = c.get(issuer) {
                let age = e.at.elapsed();
                if age < self.ttl && (!refresh || age < MIN_REFRESH) {
                    return Ok(e.keys.clone());
                }
            }
        }
        let keys = Arc::new(self.fetch(issuer).await?);
        self.cache.lock().insert(
            issuer.to_string(),
            Cached {
                keys: keys.clone(),
                at: Instant::now(),
            },
        );
        Ok(keys)
    }

    async fn fetch(&self, issuer: &str) -> Result<Vec<Jwk>, FetchError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let disco_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let disco = self.get_json(&disco_url).await?;
        let jwks_uri = disco
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Document(disco_url.clone(), "no jwks_uri".into()))?
            .to_string();
        let jwks = self.get_json(&jwks_uri).await?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| FetchError::Document(jwks_uri.clone(), "no keys".into()))?;
        Ok(keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .collect())
    }

    /// GET a JSON document over HTTPS.
    pub async fn get_json(&self, url: &str) -> Result<Value, FetchError> {
        match tokio::time::timeout(TIMEOUT, self.get_json_inner(url)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Transport(url.to_string(), "timed out".into())),
        }
    }

    async fn get_json_inner(&self, url: &str) -> Result<Value, FetchError> {
        let uri: http::Uri = url.parse().map_err(|_| FetchError::Url(url.to_string()))?;
        if uri.scheme_str() != Some("https") {
            return Err(FetchError::Url(url.to_string()));
        }
        let auth = uri
            .authority()
            .ok_or_else(|| FetchError::Url(url.to_string()))?
            .clone();
        let host = auth
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = auth.port_u16().unwrap_or(443);
        let transport = |e: String| FetchError::Transport(url.to_string(), e);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| transport(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|_| FetchError::Url(url.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| transport(format!("TLS: {e}")))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| transport(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let req = http::Request::get(path)
            .header(http::header::HOST, auth.as_str())
            // A real kube-apiserver serves its JWKS only as `application/jwk-set+json` (406 to a plain
            // `application/json`); discovery documents are `application/json`.
            .header(http::header::ACCEPT, ACCEPT)
            .header(http::header::USER_AGENT, "azure-sim (Entra OIDC fetcher)")
            .body(Empty::<Bytes>::new())
            .map_err(|e| transport(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_DOC)
            .collect()
            .await
            .map_err(|e| transport(e.to_string()))?
            .to_bytes();
        if status != 200 {
            return Err(FetchError::Status(url.to_string(), status));
        }
        serde_json::from_slice(&body)
            .map_err(|e| FetchError::Document(url.to_string(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_plain_http_and_bad_urls() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = sim_tls::Ca::generate("t").expect("ca");
        let c = OidcClient::new(std::slice::from_ref(&ca.cert_pem), Duration::from_secs(60))
            .expect("client");
        assert!(matches!(
            c.get_json("http://127.0.0.1:1/x").await,
            Err(FetchError::Url(_))
        ));
        assert!(matches!(
            c.get_json("not a url").await,
            Err(FetchError::Url(_))
        ));
        // A closed port on loopback fails as a transport error.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        assert!(matches!(
            c.keys(&format!("https://127.0.0.1:{port}"), false).await,
            Err(FetchError::Transport(..))
        ));
        assert_eq!(c.fetch_count(), 1);
    }
}
