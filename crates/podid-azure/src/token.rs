//! The controller's own ARM token.
//!
//! # Credentials
//! Chosen from the [`CloudConfig`] the way MIC and cloud-provider-azure choose:
//! 1. `useManagedIdentityExtension: true` → IMDS: `GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01
//!    &resource=<arm>[&client_id=<userAssignedIdentityID>]` with `Metadata: true` (system-assigned identity when
//!    `userAssignedIdentityID` is empty). The IMDS base URL is a parameter: [`DEFAULT_IMDS_URL`] in production,
//!    the simulator's node URL in tests.
//! 2. `aadClientSecret` set → AAD v1 client credentials: `POST {activeDirectoryEndpoint}{tenantId}/oauth2/token
//!    ?api-version=1.0` with `grant_type=client_credentials&client_id&client_secret&resource`.
//! 3. `aadClientCertPath` set → the same endpoint with a client assertion: an RS256 JWT signed with the
//!    certificate's private key, header `x5t` = base64url(SHA-1(certificate DER)), claims `aud` = the token
//!    endpoint, `iss` = `sub` = client ID, a random `jti`, `nbf` and `exp` (10 minutes). The file is PEM holding
//!    the certificate and its RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`); the key must
//!    belong to the certificate. PKCS#12/PFX files and encrypted keys are refused with a message saying how to
//!    convert them (there is no PKCS#12 decoder in this tree).
//!
//! The resource is [`Environment::arm_resource`].
//!
//! # Caching and single flight
//! Through the one token cache ([`crate::cache::TokenCache`], [`RefreshMode::Blocking`], keyed by the
//! credential's generation). One token is cached and handed out until its refresh point: `expires_in` before
//! expiry minus a margin of [`TokenOptions::refresh_margin`] (5 minutes), or half the lifetime for short tokens.
//! Concurrent callers share one fetch: the first caller starts it on a spawned task (so a cancelled caller
//! cannot strand the others) and everyone waits for its result. If a refresh fails while the cached token is
//! still valid for at least [`DEFAULT_EXPIRY_SAFETY_SECS`] (the pod tokens' expiry safety), the cached token is returned and the failure logged. Transient failures
//! (transport errors and timeouts; Entra 408/429/5xx; IMDS 404/410/429/5xx, as ADAL retries them) are retried
//! [`TokenOptions::retry_attempts`] times with exponential backoff. [`TokenSource::reload`] swaps the credential
//! (the controller reloads on config-file change) and drops the cache; [`TokenSource::invalidate`] drops only
//! the cache (after ARM rejects a token).
//!
//! # Secrets
//! Errors carry the AADSTS code and Entra's or IMDS's description, never the secret, the assertion or a token.
//! [`AccessToken`]'s `Debug` is redacted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use parking_lot::Mutex;
use rustls_pki_types::pem::{PemObject, SectionKind};
use serde_json::{Value, json};

use crate::cache::{CacheError, CachePolicy, Expiring, RefreshMode, TokenCache, duration_ms};
use crate::cloud::{CloudConfig, CloudError, Environment};
use crate::http::{HttpClient, HttpError, HttpResponse};
// One token pipeline: the controller's own token goes through the pod tokens' cache (`crate::cache`) and shares
// their response parsing, lifetimes, refresh margin, expiry safety and refresh-retry pause (one constant each, in
// `pod_tokens`).
use crate::pod_tokens::{
    DEFAULT_EXPIRY_SAFETY_SECS, DEFAULT_REFRESH_MARGIN_SECS, DEFAULT_REFRESH_RETRY_PAUSE_SECS,
};

/// The production IMDS base URL (never used by tests).
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254";
/// IMDS token API version (what MIC's ADAL uses).
pub const IMDS_API_VERSION: &str = "2018-02-01";
/// AAD v1 token endpoint API version (ADAL appends it).
pub(crate) const AAD_API_VERSION: &str = "1.0";
/// The client-assertion type for certificate credentials.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion, seconds (MSAL uses 10 minutes).
const ASSERTION_LIFETIME_SECS: i64 = 600;
/// What the cache's log lines call its value.
const CACHE_WHAT: &str = "ARM token";
/// Largest certificate file read, bytes.
const MAX_CERT_FILE_BYTES: u64 = 1024 * 1024;
/// Longest error description kept from Entra or IMDS, characters.
const MAX_DESCRIPTION_CHARS: usize = 600;

/// Options of a [`TokenSource`].
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// Attempts per fetch for transient failures (at least 1).
    pub retry_attempts: u32,
    /// Delay before the second attempt; doubles after each further failure.
    pub retry_base_delay: Duration,
    /// Refresh this long before expiry (or at half-life for tokens shorter than twice this).
    pub refresh_margin: Duration,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            retry_attempts: 3,
            retry_base_delay: Duration::from_secs(1),
            refresh_margin: Duration::from_secs(DEFAULT_REFRESH_MARGIN_SECS),
        }
    }
}

/// Errors getting a token. They never contain a secret, an assertion or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The cloud config lacks what the chosen credential needs.
    #[error("cloud config: `{key}` is required: {reason}")]
    Config {
        /// The key to set.
        key: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The certificate file (`aadClientCertPath`) cannot be used.
    #[error("aadClientCertPath {path}: {message}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The certificate file is PKCS#12 / PFX, which this build cannot read.
    #[error(
        "aadClientCertPath {path} is a PKCS#12/PFX file, which podid cannot read; convert it to PEM (certificate and unencrypted private key) with `openssl pkcs12 -in {path} -out cert.pem -nodes` (enter aadClientCertPassword when asked) and point aadClientCertPath at cert.pem"
    )]
    Pkcs12NotSupported {
        /// The file.
        path: PathBuf,
    },
    /// Entra ID refused the request.
    #[error("Entra ID refused the token request (HTTP {status}, {error}{}): {description}", .aadsts.map(|c| format!(", AADSTS{c}")).unwrap_or_default())]
    Entra {
        /// HTTP status.
        status: u16,
        /// OAuth `error` (e.g. `invalid_client`).
        error: String,
        /// The first of `error_codes` (e.g. 7000215 for a wrong secret).
        aadsts: Option<u64>,
        /// `error_description` on one line.
        description: String,
    },
    /// IMDS refused the request.
    #[error("IMDS refused the token request (HTTP {status}, {error}): {description}")]
    Imds {
        /// HTTP status.
        status: u16,
        /// `error` (e.g. `invalid_request`).
        error: String,
        /// `error_description` (e.g. `Identity not found`).
        description: String,
    },
    /// The request could not be made.
    #[error("token request failed: {0}")]
    Http(#[from] HttpError),
    /// The response could not be understood.
    #[error("{from} returned an unusable token response: {message}")]
    InvalidResponse {
        /// `Entra ID` or `IMDS`.
        from: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Signing the client assertion failed.
    #[error("signing the client assertion failed: {0}")]
    Signing(String),
    /// The shared fetch stopped without a result (the runtime is shutting down).
    #[error("the token fetch was cancelled")]
    Cancelled,
}

impl TokenError {
    /// The AADSTS code of an Entra error.
    pub fn aadsts(&self) -> Option<u64> {
        match self {
            TokenError::Entra { aadsts, .. } => *aadsts,
            _ => None,
        }
    }

    fn transient(&self) -> bool {
        match self {
            TokenError::Http(HttpError::Transport { .. } | HttpError::Timeout { .. }) => true,
            TokenError::Entra { status, .. } => matches!(status, 408 | 429 | 500..=599),
            TokenError::Imds { status, .. } => {
                matches!(status, 404 | 410 | 429 | 500..=599) && !matches!(status, 501 | 505)
            }
            _ => false,
        }
    }
}

impl From<CloudError> for TokenError {
    fn from(e: CloudError) -> Self {
        match e {
            CloudError::Missing { key, reason } => TokenError::Config { key, reason },
            other => TokenError::Config {
                key: "cloud",
                reason: if matches!(other, CloudError::MissingEnvironmentFile) {
                    "AzureStackCloud needs AZURE_ENVIRONMENT_FILEPATH"
                } else {
                    "the cloud config is invalid"
                },
            },
        }
    }
}

/// An access token. `Debug` shows only its expiry.
#[derive(Clone)]
pub struct AccessToken {
    token: Arc<str>,
    expires_at: SystemTime,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token && self.expires_at == other.expires_at
    }
}

impl Eq for AccessToken {}

impl AccessToken {
    /// The bearer token (put it in an `Authorization` header, never in a log).
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When it expires (local clock, from `expires_in`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// Which credential a [`TokenSource`] uses (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    /// Service principal with a client secret.
    ClientSecret {
        /// Client ID.
        client_id: String,
    },
    /// Service principal with a certificate.
    Certificate {
        /// Client ID.
        client_id: String,
    },
    /// Managed identity through IMDS.
    ManagedIdentity {
        /// The user-assigned identity's client ID; `None` = system-assigned.
        client_id: Option<String>,
    },
}

enum Credential {
    Secret {
        client_id: String,
        secret: String,
        token_url: String,
        resource: String,
    },
    Certificate {
        client_id: String,
        key: aws_lc_rs::rsa::KeyPair,
        x5t: String,
        token_url: String,
        resource: String,
    },
    Imds {
        url: String,
        client_id: Option<String>,
    },
}

impl Credential {
    fn kind(&self) -> CredentialKind {
        match self {
            Credential::Secret { client_id, .. } => CredentialKind::ClientSecret {
                client_id: client_id.clone(),
            },
            Credential::Certificate { client_id, .. } => CredentialKind::Certificate {
                client_id: client_id.clone(),
            },
            Credential::Imds { client_id, .. } => CredentialKind::ManagedIdentity {
                client_id: client_id.clone(),
            },
        }
    }
}

impl Expiring for AccessToken {
    fn expires_on_ms(&self) -> u64 {
        self.expires_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(duration_ms)
            .unwrap_or(0)
    }
}

impl TokenOptions {
    /// The cache's part of the options: one token per credential generation, refreshed by the callers that
    /// find it due (they wait), a still-valid token outliving a failed refresh; failures are not cached.
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy {
            refresh: RefreshMode::Blocking,
            refresh_margin: self.refresh_margin,
            expiry_safety: Duration::from_secs(DEFAULT_EXPIRY_SAFETY_SECS),
            failure_pause: Duration::ZERO,
            refresh_retry_pause: Duration::from_secs(DEFAULT_REFRESH_RETRY_PAUSE_SECS),
            max_entries: 1,
        }
    }
}

struct Inner {
    http: HttpClient,
    imds_base: String,
    opts: TokenOptions,
    /// The credential in use (read when a fetch starts).
    cred: Mutex<Arc<Credential>>,
    /// The cache key: the credential's generation, so a token fetched with a replaced credential is never served.
    generation: AtomicU64,
    cache: TokenCache<u64, AccessToken, TokenError>,
    fetches: AtomicU64,
}

/// The controller's ARM token source: cached, refreshed before expiry, single-flight. Cheap to clone.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("credential", &self.kind())
            .finish_non_exhaustive()
    }
}

// === impl TokenSource ===

impl TokenSource {
    /// A token source for the config's credential with default [`TokenOptions`]. `imds_base` is used only
    /// for managed identity ([`DEFAULT_IMDS_URL`] in production).
    pub fn new(
        cfg: &CloudConfig,
        env: &Environment,
        http: HttpClient,
        imds_base: &str,
    ) -> Result<TokenSource, TokenError> {
        TokenSource::with_options(cfg, env, http, imds_base, TokenOptions::default())
    }

    /// [`TokenSource::new`] with options.
    pub fn with_options(
        cfg: &CloudConfig,
        env: &Environment,
        http: HttpClient,
        imds_base: &str,
        opts: TokenOptions,
    ) -> Result<TokenSource, TokenError> {
        let imds_base = imds_base.trim_end_matches('/').to_string();
        let cred = credential(cfg, env, &imds_base)?;
        tracing::info!(credential = ?cred.kind(), resource = env.arm_resource(), "ARM credential configured");
        Ok(TokenSource {
            inner: Arc::new(Inner {
                http,
                imds_base,
                cache: TokenCache::new(opts.cache_policy(), CACHE_WHAT),
                opts,
                cred: Mutex::new(Arc::new(cred)),
                generation: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// Switch to the credential of a new config (and environment); the cached token is dropped. On error the
    /// old credential stays in use.
    pub fn reload(&self, cfg: &CloudConfig, env: &Environment) -> Result<(), TokenError> {
        let cred = credential(cfg, env, &self.inner.imds_base)?;
        tracing::info!(credential = ?cred.kind(), resource = env.arm_resource(), "ARM credential reloaded");
        let mut current = self.inner.cred.lock();
        *current = Arc::new(cred);
        // A new key: tokens of the old credential (and its flight's result) are never served again.
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        self.inner.cache.clear();
        Ok(())
    }

    /// Drop the cached token (the next call fetches), e.g. after ARM rejected it.
    pub fn invalidate(&self) {
        let generation = self.inner.generation.load(Ordering::Acquire);
        self.inner.cache.invalidate(&generation);
    }

    /// Which credential is in use.
    pub fn kind(&self) -> CredentialKind {
        self.inner.cred.lock().kind()
    }

    /// Token requests sent so far (each attempt counts).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// A token for ARM: the cached one until its refresh point, else a fresh one (shared by concurrent
    /// callers).
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let generation = self.inner.generation.load(Ordering::Acquire);
        let fetch = |_| {
            let inner = self.inner.clone();
            let cred = inner.cred.lock().clone();
            async move { inner.fetch(&cred).await }
        };
        match self.inner.cache.get(&generation, fetch).await {
            Ok(t) => Ok(t),
            Err(CacheError::Fetch(e)) => Err(e),
            Err(CacheError::Cancelled) => Err(TokenError::Cancelled),
        }
    }
}

// === impl Inner ===

impl Inner {
    async fn fetch(&self, cred: &Credential) -> Result<AccessToken, TokenError> {
        let attempts = self.opts.retry_attempts.max(1);
        let mut attempt = 1;
        loop {
            self.fetches.fetch_add(1, Ordering::Relaxed);
            match self.fetch_once(cred).await {
                Ok(t) => return Ok(t),
                Err(e) if e.transient() && attempt < attempts => {
                    let delay = backoff(self.opts.retry_base_delay, attempt);
                    tracing::debug!(error = %e, attempt, ?delay, "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn fetch_once(&self, cred: &Credential) -> Result<AccessToken, TokenError> {
        match cred {
            Credential::Secret {
                client_id,
                secret,
                token_url,
                resource,
            } => {
                let form = crate::form::pairs(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("resource", resource),
                ]);
                self.post_entra(token_url, form).await
            }
            Credential::Certificate {
                client_id,
                key,
                x5t,
                token_url,
                resource,
            } => {
                let assertion = client_assertion(key, x5t, client_id, token_url, now_secs())?;
                let form = crate::form::pairs(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                    ("resource", resource),
                ]);
                self.post_entra(token_url, form).await
            }
            Credential::Imds { url, .. } => {
                let r = self
                    .http
                    .send(Method::GET, url, &[("metadata", "true")], Bytes::new())
                    .await?;
                if r.status != 200 {
                    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    return Err(TokenError::Imds {
                        status: r.status,
                        error: str_field(&v, "error").unwrap_or_else(|| "unknown".into()),
                        description: str_field(&v, "error_description")
                            .map(|d| one_line(&d))
                            .unwrap_or_else(|| one_line(&r.text())),
                    });
                }
                parse_token(&r, "IMDS")
            }
        }
    }

    async fn post_entra(&self, token_url: &str, form: String) -> Result<AccessToken, TokenError> {
        let url = format!("{token_url}?api-version={AAD_API_VERSION}");
        let r = self
            .http
            .send(
                Method::POST,
                &url,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("accept", "application/json"),
                ],
                Bytes::from(form),
            )
            .await?;
        if r.status != 200 {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            return Err(TokenError::Entra {
                status: r.status,
                error: str_field(&v, "error").unwrap_or_else(|| "unknown".into()),
                aadsts: v
                    .get("error_codes")
                    .and_then(|c| c.get(0))
                    .and_then(Value::as_u64),
                description: str_field(&v, "error_description")
                    .map(|d| one_line(&d))
                    .unwrap_or_else(|| one_line(&r.text())),
            });
        }
        parse_token(&r, "Entra ID")
    }
}

/// `base * 2^(attempt-1)`, capped at a minute.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(Duration::from_secs(60))
}

pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A description on one line (Entra puts trace and correlation IDs, useful for support, on later lines),
/// bounded.
pub(crate) fn one_line(s: &str) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
    }
}

/// A number that may be sent as a JSON number or a string (ADAL-era endpoints send strings).
pub(crate) fn num_field(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The token of a response, parsed like every pod token ([`crate::pod_tokens::parse_token_response`]: `expires_in`
/// on the local clock, never past the issuer's `expires_on`, lifetimes capped at two days).
fn parse_token(r: &HttpResponse, from: &'static str) -> Result<AccessToken, TokenError> {
    let t = crate::pod_tokens::parse_token_response(&r.body, "", "", now_secs())
        .map_err(|message| TokenError::InvalidResponse { from, message })?;
    Ok(AccessToken {
        token: Arc::from(t.access_token),
        expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(t.expires_on),
    })
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Build the credential the config selects.
fn credential(
    cfg: &CloudConfig,
    env: &Environment,
    imds_base: &str,
) -> Result<Credential, TokenError> {
    cfg.validate_credential()?;
    let resource = env.arm_resource().to_string();
    if cfg.use_managed_identity_extension {
        let client_id =
            Some(cfg.user_assigned_identity_id.trim().to_string()).filter(|c| !c.is_empty());
        let mut q = vec![
            ("api-version", IMDS_API_VERSION),
            ("resource", resource.as_str()),
        ];
        if let Some(c) = &client_id {
            q.push(("client_id", c));
        }
        return Ok(Credential::Imds {
            url: format!(
                "{imds_base}/metadata/identity/oauth2/token?{}",
                crate::form::pairs(&q)
            ),
            client_id,
        });
    }
    let client_id = cfg.aad_client_id.trim().to_string();
    let token_url = env.token_endpoint(cfg.tenant_id.trim());
    if !cfg.aad_client_secret.is_empty() {
        return Ok(Credential::Secret {
            client_id,
            secret: cfg.aad_client_secret.clone(),
            token_url,
            resource,
        });
    }
    let cert = load_certificate(Path::new(cfg.aad_client_cert_path.trim()))?;
    Ok(Credential::Certificate {
        client_id,
        key: cert.key,
        x5t: cert.x5t,
        token_url,
        resource,
    })
}

/// A certificate credential read from a PEM file.
pub(crate) struct CertCredential {
    pub(crate) key: aws_lc_rs::rsa::KeyPair,
    pub(crate) x5t: String,
}

impl std::fmt::Debug for CertCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertCredential")
            .field("key", &"<redacted>")
            .field("x5t", &self.x5t)
            .finish()
    }
}

/// Read `aadClientCertPath`: PEM with a certificate and its RSA private key.
pub(crate) fn load_certificate(path: &Path) -> Result<CertCredential, TokenError> {
    let fail = |message: String| TokenError::Certificate {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    if meta.len() > MAX_CERT_FILE_BYTES {
        return Err(fail(format!("larger than {MAX_CERT_FILE_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    parse_certificate(path, &bytes)
}

pub(crate) fn parse_certificate(path: &Path, bytes: &[u8]) -> Result<CertCredential, TokenError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let pkcs12_name = matches!(ext.as_deref(), Some("pfx" | "p12"));
    parse_pem_credential(bytes, pkcs12_name).map_err(|p| match p {
        PemProblem::Pkcs12 => TokenError::Pkcs12NotSupported {
            path: path.to_path_buf(),
        },
        PemProblem::Invalid(message) => TokenError::Certificate {
            path: path.to_path_buf(),
            message,
        },
    })
}

/// Why PEM bytes are not a usable certificate credential (the caller names where they came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PemProblem {
    /// The bytes are (or are named as) PKCS#12 / PFX.
    Pkcs12,
    /// Anything else: what is wrong and how to fix it.
    Invalid(String),
}

/// Parse PEM holding a certificate and its unencrypted RSA private key (PKCS#8 or PKCS#1) into a signing
/// credential. `pkcs12_hint` says the source is named like a PKCS#12 file (non-PEM bytes are then refused as
/// PKCS#12 even when they do not look like one).
pub(crate) fn parse_pem_credential(
    bytes: &[u8],
    pkcs12_hint: bool,
) -> Result<CertCredential, PemProblem> {
    let fail = PemProblem::Invalid;
    let is_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    if !is_pem && (crate::der::looks_like_pkcs12(bytes) || pkcs12_hint) {
        return Err(PemProblem::Pkcs12);
    }
    if !is_pem {
        return Err(fail(
            "not a PEM file: expected -----BEGIN CERTIFICATE----- and -----BEGIN PRIVATE KEY----- sections".into(),
        ));
    }
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(fail(
            "the private key is encrypted, which podid cannot use; decrypt it with `openssl pkey -in <file> -out key.pem` and put the certificate and key.pem in one file".into(),
        ));
    }
    let mut cert: Option<Vec<u8>> = None;
    let mut key: Option<(SectionKind, Vec<u8>)> = None;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = item.map_err(|e| fail(format!("invalid PEM: {e}")))?;
        match kind {
            SectionKind::Certificate if cert.is_none() => cert = Some(der),
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
                if key.is_none() =>
            {
                key = Some((kind, der));
            }
            _ => {}
        }
    }
    let cert = cert.ok_or_else(|| fail("no CERTIFICATE section".into()))?;
    let (kind, key_der) = key.ok_or_else(|| {
        fail("no private key section (the file must hold the certificate and its private key, PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`)".into())
    })?;
    let key = match kind {
        SectionKind::PrivateKey => aws_lc_rs::rsa::KeyPair::from_pkcs8(&key_der).map_err(|e| {
            fail(format!(
                "the PKCS#8 private key is not a usable RSA key ({e}); Entra certificate credentials are signed with RS256"
            ))
        })?,
        SectionKind::RsaPrivateKey => aws_lc_rs::rsa::KeyPair::from_der(&key_der)
            .map_err(|e| fail(format!("the PKCS#1 RSA private key is invalid ({e})")))?,
        _ => {
            return Err(fail(
                "the private key is an EC key; podid signs client assertions with RS256 and needs an RSA key".into(),
            ));
        }
    };
    let spki = crate::der::certificate_public_key(&cert)
        .ok_or_else(|| fail("the CERTIFICATE section is not a valid X.509 certificate".into()))?;
    if spki != key.public_key().as_ref() {
        return Err(fail(
            "the private key does not belong to the certificate (the first CERTIFICATE section must be the one registered on the app)".into(),
        ));
    }
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    Ok(CertCredential {
        key,
        x5t: b64url(sha1.as_ref()),
    })
}

/// The RS256 client assertion for a certificate credential.
pub(crate) fn client_assertion(
    key: &aws_lc_rs::rsa::KeyPair,
    x5t: &str,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<String, TokenError> {
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t});
    let claims = json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|e| TokenError::Signing(e.to_string()))?;
    Ok(format!("{input}.{}", b64url(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the cache refreshes a token fetched at `now` that expires at `expires_at` (millisecond precision).
    fn refresh_point(now: SystemTime, expires_at: SystemTime, margin: Duration) -> SystemTime {
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(duration_ms)
                .unwrap_or(0)
        };
        let opts = TokenOptions {
            refresh_margin: margin,
            ..TokenOptions::default()
        };
        let at = crate::cache::timeline(ms(expires_at), ms(now), &opts.cache_policy());
        SystemTime::UNIX_EPOCH + Duration::from_millis(at.refresh_at_ms)
    }

    #[test]
    fn refresh_points() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let m = Duration::from_secs(300);
        // A one-hour token refreshes 5 minutes early.
        assert_eq!(
            refresh_point(now, now + Duration::from_secs(3600), m),
            now + Duration::from_secs(3300)
        );
        // A 4-second token refreshes at half-life.
        assert_eq!(
            refresh_point(now, now + Duration::from_secs(4), m),
            now + Duration::from_secs(2)
        );
        // An expired token refreshes at once.
        assert_eq!(refresh_point(now, now, m), now);
        assert_eq!(
            refresh_point(now, now - Duration::from_secs(5), m),
            now - Duration::from_secs(5)
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 1), Duration::from_millis(100));
        assert_eq!(backoff(b, 2), Duration::from_millis(200));
        assert_eq!(backoff(b, 3), Duration::from_millis(400));
        assert_eq!(backoff(b, 40), Duration::from_secs(60));
    }

    #[test]
    fn transient_classification() {
        let entra = |status| TokenError::Entra {
            status,
            error: "e".into(),
            aadsts: None,
            description: String::new(),
        };
        let imds = |status| TokenError::Imds {
            status,
            error: "e".into(),
            description: String::new(),
        };
        for (e, want) in [
            (entra(401), false),
            (entra(400), false),
            (entra(429), true),
            (entra(503), true),
            (imds(400), false),
            (imds(404), true),
            (imds(501), false),
            (imds(500), true),
            (
                TokenError::Http(HttpError::Timeout {
                    method: "GET".into(),
                    url: "u".into(),
                    after: Duration::from_secs(1),
                }),
                true,
            ),
            (
                TokenError::Config {
                    key: "tenantId",
                    reason: "r",
                },
                false,
            ),
        ] {
            assert_eq!(e.transient(), want, "{e}");
        }
    }

    #[test]
    fn one_line_bounds() {
        assert_eq!(
            one_line("AADSTS7000215: Invalid client secret.\r\nTrace ID: x\r\n"),
            "AADSTS7000215: Invalid client secret. Trace ID: x"
        );
        assert_eq!(one_line(&"x".repeat(2000)).len(), MAX_DESCRIPTION_CHARS + 3);
    }

    #[test]
    fn certificate_file_errors() {
        let p = Path::new("/etc/kubernetes/cert.pfx");
        assert!(matches!(
            parse_certificate(p, &[0x30, 0x03, 0x02, 0x01, 0x03]),
            Err(TokenError::Pkcs12NotSupported { .. })
        ));
        assert!(matches!(
            parse_certificate(Path::new("/x/cert.pem"), &[0x30, 0x03, 0x02, 0x01, 0x03]),
            Err(TokenError::Pkcs12NotSupported { .. })
        ));
        let e = parse_certificate(Path::new("/x/c.pfx"), b"garbage").expect_err("pfx by name");
        assert!(e.to_string().contains("openssl pkcs12"), "{e}");
        let e = parse_certificate(Path::new("/x/c.pem"), b"garbage").expect_err("not pem");
        assert!(e.to_string().contains("not a PEM file"), "{e}");
        let e = parse_certificate(
            Path::new("/x/c.pem"),
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .expect_err("encrypted");
        assert!(e.to_string().contains("encrypted"), "{e}");
        let e = parse_certificate(
            Path::new("/x/c.pem"),
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect_err("no cert");
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
        let e = load_certificate(Path::new("/nonexistent/cert.pem")).expect_err("missing");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn parse_token_shapes() {
        let resp = |body: &str| HttpResponse {
            status: 200,
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        };
        let t =
            parse_token(&resp(r#"{"access_token":"a","expires_in":"3599"}"#), "IMDS").expect("v1");
        let left = t
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        assert!(left > Duration::from_secs(3590) && left <= Duration::from_secs(3599));
        let t =
            parse_token(&resp(r#"{"access_token":"a","expires_in":60}"#), "Entra ID").expect("v2");
        assert!(t.expires_at() > SystemTime::now());
        let on = now_secs() + 100;
        let t = parse_token(
            &resp(&format!(r#"{{"access_token":"a","expires_on":"{on}"}}"#)),
            "IMDS",
        )
        .expect("on");
        assert!(t.expires_at() > SystemTime::now() + Duration::from_secs(90));
        assert!(parse_token(&resp(r#"{"expires_in":1}"#), "IMDS").is_err());
        assert!(parse_token(&resp("nope"), "IMDS").is_err());
        assert!(!format!("{t:?}").contains("\"a\""));
    }
}
