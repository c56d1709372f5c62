//! Pod tokens: what `podid agent` (the drop-in for aad-pod-identity's NMI) hands to a pod once it has decided
//! which identity the pod may use. This module does not decide; it fetches, caches and refreshes tokens for an
//! already-authorised [`TokenSpec`].
//!
//! # Model
//! ```text
//!   agent ──get(spec, resource, material)──► PodTokenProvider ──► cache[(spec key, resource)]
//!                                                │ miss / refresh: one flight per key
//!                                                ▼
//!          IMDS (managed identity) · Entra v1 (service principal) · Entra v2 (federated exchange)
//!                                                ▲
//!                       Material (agent): Secret GET, TokenRequest — called only by a flight
//! ```
//! - [`TokenSpec::Imds`]: a user-assigned identity by client ID or ARM resource ID (system-assigned when both
//!   are absent) through the node's IMDS (upstream type 0).
//! - [`TokenSpec::ServicePrincipal`]: a client secret (type 1) or a certificate (type 2) read from the
//!   AzureIdentity's `clientPassword` Secret, one token per tenant (primary, then auxiliary tenants).
//! - [`TokenSpec::Federated`]: the pod's service-account token (audience `api://AzureADTokenExchange`)
//!   exchanged for the identity's token on the v2 endpoint.
//!
//! The wire details, retry policy and credential parsing are documented in the private `upstream` submodule.
//!
//! # Cache
//! Kept by the crate's one token cache ([`crate::cache::TokenCache`] in [`crate::cache::RefreshMode::Background`],
//! the controller's own token uses the same). One entry per (spec key, resource). The key is what makes a token *correct to share*:
//! - IMDS: the client ID or resource ID, case-insensitively (GUIDs and ARM IDs are), and the resource;
//! - service principal: the AzureIdentity's `identity_key` (namespace/name/uid/resourceVersion), tenant, client
//!   ID, auxiliary tenants, Secret reference and resource. Two AzureIdentities naming the same app never share
//!   a token: one with a wrong secret must not ride on one with the right secret;
//! - federated: tenant, client ID, namespace, service account and resource (the Entra federated credential
//!   matches on the service account, so pods of one service account share).
//!
//! The resource is compared exactly (`https://vault.azure.net` and `https://vault.azure.net/` are different
//! audiences).
//!
//! # Timeline of an entry
//! With `L` the token's lifetime when it arrived, `margin = min(refresh_margin, L/2)` and
//! `safety = min(expiry_safety, L/4)` (for a multi-tenant service principal, the earliest-expiring token):
//! ```text
//!   arrived ──── fresh: served ────► expires−margin ── served + ONE background refresh ──► expires−safety ── miss
//! ```
//! - **Fresh**: served from memory, no upstream call.
//! - **In the margin**: still served; the first caller starts one background refresh (no more while it runs,
//!   nor for `refresh_retry_pause` after it failed). Through an IMDS or Entra outage cached tokens are
//!   served until `expires − safety`, never past it.
//! - **Unusable or absent**: a miss. Concurrent identical requests share **one flight** (single flight): the
//!   first caller starts it on a spawned task, everyone waits for its result, so a miss costs exactly one
//!   upstream call per token (plus retries of transient failures), and a caller that gives up (a pod that
//!   disconnects) does not strand the others or waste the fetch.
//! - **Failures are not cached as tokens.** A failed fetch leaves a short negative entry: for
//!   `failure_pause` (1 s by default) identical requests get the same error without an upstream call, so a
//!   crash-looping pod cannot hammer IMDS or Entra. Set it to zero to disable.
//!
//! `expires_in` is not stored: the agent computes it when it answers, from [`PodToken::expires_on`].
//!
//! # Bounds
//! At most `max_entries` entries (4096): when full, entries without a usable token go first, then the least
//! recently used eighth. An entry whose flight is running is not evicted, so the map may exceed the cap by the
//! number of distinct flights in progress. Each upstream attempt has a deadline, retries are few and inside a
//! budget (about 5 s per token in all, where upstream's ADAL could sleep ~112 s inside one pod request), and
//! the agent's Secret and TokenRequest calls have their own deadline.
//!
//! # Errors
//! [`PodTokenError::Refused`]: IMDS or Entra answered, and not with a token (the agent answers 403 with
//! upstream's `adal: Refresh request failed. Status Code = '400'. Response body: ...` text, which is this
//! error's `Display`). [`PodTokenError::Unavailable`]: anything else (network, timeouts, exhausted retries of
//! 5xx/429, an unreadable Secret, an unusable certificate, a failed TokenRequest: the agent answers 503).
//! [`PodTokenError::http_status`] gives that mapping.
//!
//! # Secrets
//! No error, log line or `Debug` output holds a client secret, an assertion, a service-account token or an
//! access token: [`PodToken`]'s `Debug` is redacted, error bodies are kept only for non-200 answers, and the
//! secret material lives only inside the flight that needed it. [`Material`] errors are shown as the agent
//! wrote them, so they must not quote secrets either.

mod upstream;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cache::{CacheError, CachePolicy, Expiring, Launch, RefreshMode, TokenCache};
use crate::cloud::Environment;
use crate::http::HttpClient;
use upstream::Upstream;
pub(crate) use upstream::parse_token as parse_token_response;

/// The audience of the service-account token exchanged for a federated identity's token.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Default refresh margin before expiry, seconds (half the lifetime for tokens shorter than twice this).
pub const DEFAULT_REFRESH_MARGIN_SECS: u64 = 300;
/// Default safety margin: a cached token is not served closer to its expiry than this, seconds (a quarter
/// of the lifetime for short tokens).
pub const DEFAULT_EXPIRY_SAFETY_SECS: u64 = 30;
/// Default cache size, entries (a node runs at most a few hundred pods, each with a few identities and
/// resources).
pub const DEFAULT_MAX_ENTRIES: usize = 4096;
/// Default deadline of one upstream HTTP attempt, seconds (IMDS answers in milliseconds, Entra in well under
/// a second).
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 5;
/// Default attempts per token for transient failures.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// Default delay before the second attempt, milliseconds (doubles after each further failure).
pub const DEFAULT_RETRY_BASE_DELAY_MS: u64 = 200;
/// Default budget inside which retries may start, seconds.
pub const DEFAULT_RETRY_BUDGET_SECS: u64 = 5;
/// Default deadline of one [`Material`] call, seconds.
pub const DEFAULT_MATERIAL_TIMEOUT_SECS: u64 = 5;
/// Default pause after a failed fetch during which identical requests get the same error, milliseconds.
pub const DEFAULT_FAILURE_PAUSE_MS: u64 = 1000;
/// Default pause after a failed background refresh before the next one, seconds.
pub const DEFAULT_REFRESH_RETRY_PAUSE_SECS: u64 = 10;
/// Milliseconds per second.
const MS_PER_SEC: u64 = 1000;
/// What the cache's log lines call its values.
const CACHE_WHAT: &str = "pod token";

/// A boxed, sendable future (the same type as `futures::future::BoxFuture`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What to get a token for. The agent has already checked that the pod may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSpec {
    /// A managed identity through the node's IMDS: user-assigned by client ID or ARM resource ID (the client
    /// ID wins when both are given), system-assigned when both are `None` (empty strings count as `None`).
    Imds {
        /// The identity's client ID.
        client_id: Option<String>,
        /// The identity's ARM resource ID.
        resource_id: Option<String>,
    },
    /// A service principal with a client secret (AzureIdentity type 1) or a certificate (type 2).
    ServicePrincipal {
        /// The AzureIdentity as `namespace/name/uid/resourceVersion`: part of the cache key, so tokens are never
        /// shared between AzureIdentity objects (nor survive an edit of one).
        identity_key: String,
        /// The tenant (`tenantID`).
        tenant_id: String,
        /// The application (client) ID (`clientID`).
        client_id: String,
        /// `auxiliaryTenantIDs`: one more token per tenant, after the primary one.
        aux_tenant_ids: Vec<String>,
        /// Where the credential is (`clientPassword`).
        secret: SpSecret,
    },
    /// Workload identity federation: the pod's service-account token exchanged for the identity's token.
    Federated {
        /// The identity's tenant.
        tenant_id: String,
        /// The identity's client ID (user-assigned identity or app registration).
        client_id: String,
        /// The pod's namespace.
        namespace: String,
        /// The pod's service account.
        service_account: String,
    },
}

/// A service principal's credential Secret (`clientPassword` of the AzureIdentity).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpSecret {
    /// Type 1: the first data value (first key in order) is the client secret.
    ClientSecret {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// Type 2: PEM certificate and unencrypted RSA key in `certificate`, or in `tls.crt` + `tls.key`.
    /// Upstream's PKCS#12 `certificate` (+ `password`) is refused with the `openssl` command converting it.
    Certificate {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
}

impl SpSecret {
    /// `(namespace, name)` of the Secret.
    pub fn secret_ref(&self) -> (&str, &str) {
        match self {
            SpSecret::ClientSecret { namespace, name }
            | SpSecret::Certificate { namespace, name } => (namespace, name),
        }
    }
}

/// Secret material the agent provides on demand: called only when a token has to be fetched (a miss or a
/// refresh), never on a cache hit. Errors are shown to operators as written, so they must not quote secrets.
pub trait Material: Send + Sync {
    /// The `data` of Secret `namespace/name` (a direct GET, no informer cache, as upstream).
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Vec<u8>>, String>>;

    /// A service-account token for `namespace/service_account` with `audience` (a TokenRequest, bound to the
    /// requesting pod).
    fn service_account_token<'a>(
        &'a self,
        namespace: &'a str,
        service_account: &'a str,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// One access token as the agent serves it. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct PodToken {
    /// The bearer token (never log it).
    pub access_token: String,
    /// Expiry, seconds since the epoch (never later than the issuer said, nor than `expires_in` on the local
    /// clock).
    pub expires_on: u64,
    /// Start of validity, seconds since the epoch (the fetch time when the response has none).
    pub not_before: u64,
    /// The token's resource as the issuer echoed it (v1, IMDS), else as requested.
    pub resource: String,
    /// `Bearer`.
    pub token_type: String,
    /// The identity's client ID (IMDS's `client_id`, else the spec's; empty for a system-assigned identity
    /// when IMDS does not say).
    pub client_id: String,
}

impl PodToken {
    /// Seconds left at `now` (seconds since the epoch), zero once expired: the `expires_in` to serve.
    pub fn expires_in(&self, now: u64) -> u64 {
        self.expires_on.saturating_sub(now)
    }
}

impl std::fmt::Debug for PodToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodToken")
            .field("access_token", &"<redacted>")
            .field("expires_on", &self.expires_on)
            .field("not_before", &self.not_before)
            .field("resource", &self.resource)
            .field("token_type", &self.token_type)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// Why no token. Never contains a secret, an assertion or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodTokenError {
    /// IMDS or Entra ID answered, but not with a token (e.g. IMDS 400 `Identity not found`, Entra 401
    /// `invalid_client`, a 200 without `access_token`). The agent answers 403 with this text.
    #[error(
        "adal: Refresh request failed. Status Code = '{status}'. Response body: {body_snippet} Endpoint {endpoint}"
    )]
    Refused {
        /// The HTTP status of the answer.
        status: u16,
        /// The response body, bounded (for a 200, a description instead: the body may hold a token).
        body_snippet: String,
        /// The URL asked (IMDS with its query; Entra's token endpoint).
        endpoint: String,
    },
    /// No answer to act on: network errors, timeouts, exhausted retries of 5xx/429, an unreadable Secret, an
    /// unusable certificate (PKCS#12 included), a failed service-account TokenRequest. The agent answers 503.
    #[error("{0}")]
    Unavailable(String),
}

impl PodTokenError {
    /// The status the agent answers the pod with: 403 for [`PodTokenError::Refused`] (upstream's
    /// `TokenRefreshError`), 503 for [`PodTokenError::Unavailable`].
    pub fn http_status(&self) -> u16 {
        match self {
            PodTokenError::Refused { .. } => 403,
            PodTokenError::Unavailable(_) => 503,
        }
    }
}

/// Options of a [`PodTokenProvider`]. See the module docs for how they interact.
#[derive(Debug, Clone)]
pub struct PodTokenOptions {
    /// Refresh this long before expiry (half the lifetime for shorter tokens).
    pub refresh_margin: Duration,
    /// Never serve a cached token closer to its expiry than this (a quarter of the lifetime for short tokens).
    pub expiry_safety: Duration,
    /// Cache size cap, entries (at least 1).
    pub max_entries: usize,
    /// Deadline of one upstream HTTP attempt.
    pub request_timeout: Duration,
    /// Attempts per token for transient failures (at least 1).
    pub retry_attempts: u32,
    /// Delay before the second attempt; doubles after each further failure (a longer `Retry-After` wins).
    pub retry_base_delay: Duration,
    /// No retry starts later than this after a token's first attempt.
    pub retry_budget: Duration,
    /// Deadline of one [`Material`] call (Secret GET, TokenRequest).
    pub material_timeout: Duration,
    /// After a failed fetch, identical requests get the same error for this long without an upstream call
    /// (zero disables).
    pub failure_pause: Duration,
    /// After a failed background refresh, the next one waits this long (cached tokens are served meanwhile).
    pub refresh_retry_pause: Duration,
}

impl Default for PodTokenOptions {
    fn default() -> Self {
        PodTokenOptions {
            refresh_margin: Duration::from_secs(DEFAULT_REFRESH_MARGIN_SECS),
            expiry_safety: Duration::from_secs(DEFAULT_EXPIRY_SAFETY_SECS),
            max_entries: DEFAULT_MAX_ENTRIES,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            retry_attempts: DEFAULT_RETRY_ATTEMPTS,
            retry_base_delay: Duration::from_millis(DEFAULT_RETRY_BASE_DELAY_MS),
            retry_budget: Duration::from_secs(DEFAULT_RETRY_BUDGET_SECS),
            material_timeout: Duration::from_secs(DEFAULT_MATERIAL_TIMEOUT_SECS),
            failure_pause: Duration::from_millis(DEFAULT_FAILURE_PAUSE_MS),
            refresh_retry_pause: Duration::from_secs(DEFAULT_REFRESH_RETRY_PAUSE_SECS),
        }
    }
}

/// Counters of a [`PodTokenProvider`] since it was built (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodTokenStats {
    /// HTTP requests sent to IMDS or Entra ID (every attempt, every tenant).
    pub upstream_calls: u64,
    /// Of those, the ones that failed (transport error, timeout or a non-200 answer).
    pub upstream_failures: u64,
    /// Requests served from the cache (including in the refresh margin).
    pub hits: u64,
    /// Requests that started a fetch and waited for it.
    pub misses: u64,
    /// Requests that joined a fetch already in flight.
    pub coalesced: u64,
    /// Background refreshes started.
    pub refreshes: u64,
    /// Requests answered with a recent failure during its `failure_pause`.
    pub negative_hits: u64,
    /// Fetches (misses and refreshes) that failed.
    pub fetch_failures: u64,
    /// Entries evicted to respect `max_entries`.
    pub evictions: u64,
    /// Entries now in the cache.
    pub entries: usize,
}

// === cache internals ===

/// A case-insensitive identity selector of IMDS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ImdsSelector {
    SystemAssigned,
    ClientId(String),
    ResourceId(String),
}

/// What makes two requests share a token (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Imds {
        selector: ImdsSelector,
        resource: String,
    },
    ServicePrincipal {
        identity_key: String,
        tenant: String,
        client_id: String,
        aux_tenants: Vec<String>,
        secret: SpSecret,
        resource: String,
    },
    Federated {
        tenant: String,
        client_id: String,
        namespace: String,
        service_account: String,
        resource: String,
    },
}

/// A trimmed, non-empty optional value.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Case-insensitive form of a GUID, tenant or ARM ID.
fn fold(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// Auxiliary tenants as sent: trimmed, empty ones dropped.
fn aux_tenants(v: &[String]) -> Vec<String> {
    v.iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl TokenSpec {
    fn cache_key(&self, resource: &str) -> CacheKey {
        let resource = resource.to_string();
        match self {
            TokenSpec::Imds {
                client_id,
                resource_id,
            } => CacheKey::Imds {
                selector: match (given(client_id), given(resource_id)) {
                    (Some(c), _) => ImdsSelector::ClientId(fold(c)),
                    (None, Some(r)) => ImdsSelector::ResourceId(fold(r)),
                    (None, None) => ImdsSelector::SystemAssigned,
                },
                resource,
            },
            TokenSpec::ServicePrincipal {
                identity_key,
                tenant_id,
                client_id,
                aux_tenant_ids,
                secret,
            } => CacheKey::ServicePrincipal {
                identity_key: identity_key.clone(),
                tenant: fold(tenant_id),
                client_id: fold(client_id),
                aux_tenants: aux_tenants(aux_tenant_ids)
                    .iter()
                    .map(|t| fold(t))
                    .collect(),
                secret: secret.clone(),
                resource,
            },
            TokenSpec::Federated {
                tenant_id,
                client_id,
                namespace,
                service_account,
            } => CacheKey::Federated {
                tenant: fold(tenant_id),
                client_id: fold(client_id),
                namespace: namespace.clone(),
                service_account: service_account.clone(),
                resource,
            },
        }
    }

    /// For logs.
    fn kind(&self) -> &'static str {
        match self {
            TokenSpec::Imds { .. } => "imds",
            TokenSpec::ServicePrincipal { .. } => "service-principal",
            TokenSpec::Federated { .. } => "federated",
        }
    }

    /// For logs.
    fn client_id_for_log(&self) -> &str {
        match self {
            TokenSpec::Imds {
                client_id,
                resource_id,
            } => given(client_id)
                .or(given(resource_id))
                .unwrap_or("system-assigned"),
            TokenSpec::ServicePrincipal { client_id, .. }
            | TokenSpec::Federated { client_id, .. } => client_id,
        }
    }
}

type Outcome = Result<Arc<Vec<PodToken>>, PodTokenError>;

/// The tokens of one fetch expire with the earliest of them (none: unusable).
impl Expiring for Arc<Vec<PodToken>> {
    fn expires_on_ms(&self) -> u64 {
        self.iter()
            .map(|t| t.expires_on)
            .min()
            .unwrap_or(0)
            .saturating_mul(MS_PER_SEC)
    }
}

impl PodTokenOptions {
    /// The cache's part of the options: tokens are served in the margin while one background refresh runs.
    pub(crate) fn cache_policy(&self) -> CachePolicy {
        CachePolicy {
            refresh: RefreshMode::Background,
            refresh_margin: self.refresh_margin,
            expiry_safety: self.expiry_safety,
            failure_pause: self.failure_pause,
            refresh_retry_pause: self.refresh_retry_pause,
            max_entries: self.max_entries,
        }
    }
}

struct Inner {
    up: Upstream,
    cache: TokenCache<CacheKey, Arc<Vec<PodToken>>, PodTokenError>,
}

/// Fetches, caches and refreshes pod tokens (module docs). Cheap to clone; clones share the cache. `get` must
/// run inside a Tokio runtime (fetches run on spawned tasks).
#[derive(Clone)]
pub struct PodTokenProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PodTokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodTokenProvider")
            .field("imds_base", &self.inner.up.imds_base)
            .field("authority", &self.inner.up.env.active_directory_endpoint)
            .field("entries", &self.inner.cache.len())
            .finish_non_exhaustive()
    }
}

// === impl PodTokenProvider ===

impl PodTokenProvider {
    /// A provider using `http` for every upstream call, `env`'s `activeDirectoryEndpoint` as the Entra
    /// authority, and `imds_base` (e.g. `http://169.254.169.254`, no path) for managed identities.
    pub fn new(
        http: HttpClient,
        env: &Environment,
        imds_base: &str,
        opts: PodTokenOptions,
    ) -> PodTokenProvider {
        let cache = TokenCache::new(opts.cache_policy(), CACHE_WHAT);
        PodTokenProvider {
            inner: Arc::new(Inner {
                up: Upstream {
                    http,
                    env: env.clone(),
                    imds_base: imds_base.trim().trim_end_matches('/').to_string(),
                    opts,
                    calls: AtomicU64::new(0),
                    failed_calls: AtomicU64::new(0),
                },
                cache,
            }),
        }
    }

    /// The tokens for `spec` and `resource`: one, or one per tenant (primary first) for a service principal
    /// with auxiliary tenants. Served from the cache when possible (module docs); `material` is used only if a
    /// fetch starts, and is kept by that fetch until it ends (hence the `Arc`: a fetch outlives a caller that
    /// gives up, and a background refresh outlives the request that triggered it).
    pub async fn get(
        &self,
        spec: &TokenSpec,
        resource: &str,
        material: Arc<dyn Material>,
    ) -> Result<Vec<PodToken>, PodTokenError> {
        let key = spec.cache_key(resource);
        let fetch = |launch: Launch| {
            if launch == Launch::Refresh {
                tracing::debug!(
                    kind = spec.kind(),
                    client_id = spec.client_id_for_log(),
                    resource,
                    "refreshing a pod token in the background"
                );
            }
            let inner = self.inner.clone();
            let spec = spec.clone();
            let resource = resource.to_string();
            async move {
                let res = inner.fetch(&spec, &resource, &*material).await;
                drop(material);
                match &res {
                    Ok(t) => tracing::debug!(
                        kind = spec.kind(),
                        client_id = spec.client_id_for_log(),
                        resource,
                        tokens = t.len(),
                        "pod token fetched"
                    ),
                    Err(e) => tracing::warn!(
                        kind = spec.kind(),
                        client_id = spec.client_id_for_log(),
                        resource,
                        error = %e,
                        "pod token fetch failed"
                    ),
                }
                res
            }
        };
        match self.inner.cache.get(&key, fetch).await {
            Ok(tokens) => Ok(tokens.to_vec()),
            Err(CacheError::Fetch(e)) => Err(e),
            Err(CacheError::Cancelled) => Err(PodTokenError::Unavailable(
                "the token fetch was cancelled (the agent is shutting down)".into(),
            )),
        }
    }

    /// Counters and the current number of entries.
    pub fn stats(&self) -> PodTokenStats {
        let c = self.inner.cache.stats();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PodTokenStats {
            upstream_calls: get(&self.inner.up.calls),
            upstream_failures: get(&self.inner.up.failed_calls),
            hits: c.hits,
            misses: c.misses,
            coalesced: c.coalesced,
            refreshes: c.refreshes,
            negative_hits: c.negative_hits,
            fetch_failures: c.fetch_failures,
            evictions: c.evictions,
            entries: c.entries,
        }
    }

    /// Drop every cached token and failure (fetches in flight still answer their waiters).
    pub fn clear(&self) {
        self.inner.cache.clear();
    }
}

// === impl Inner ===

impl Inner {
    /// One fetch (no cache): material, then the upstream calls.
    async fn fetch(&self, spec: &TokenSpec, resource: &str, material: &dyn Material) -> Outcome {
        let opts = &self.up.opts;
        let tokens = match spec {
            TokenSpec::Imds {
                client_id,
                resource_id,
            } => vec![
                self.up
                    .imds(given(client_id), given(resource_id), resource)
                    .await?,
            ],
            TokenSpec::ServicePrincipal {
                tenant_id,
                client_id,
                aux_tenant_ids,
                secret,
                ..
            } => {
                let cred =
                    upstream::load_sp_credential(secret, material, opts.material_timeout).await?;
                self.up
                    .service_principal(
                        tenant_id.trim(),
                        client_id.trim(),
                        &aux_tenants(aux_tenant_ids),
                        &cred,
                        resource,
                    )
                    .await?
            }
            TokenSpec::Federated {
                tenant_id,
                client_id,
                namespace,
                service_account,
            } => {
                let assertion = upstream::load_sa_token(
                    namespace,
                    service_account,
                    material,
                    opts.material_timeout,
                )
                .await?;
                vec![
                    self.up
                        .federated(tenant_id.trim(), client_id.trim(), &assertion, resource)
                        .await?,
                ]
            }
        };
        Ok(Arc::new(tokens))
    }
}

#[cfg(test)]
mod tests;
