//! The upstream half of [`PodTokenProvider`](super::PodTokenProvider): one token fetch for one spec, with
//! bounded retries, and the wire formats of IMDS and Entra ID.
//!
//! - **IMDS** (managed identity): `GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01
//!   &resource=R[&client_id=C | &msi_res_id=ID]` with `Metadata: true`. With both a client ID and a resource
//!   ID in the spec only the client ID is sent (IMDS refuses two selectors; upstream NMI always sends the
//!   identity's client ID). `msi_res_id` is IMDS's documented name (`mi_res_id` is App Service's).
//! - **Entra v1** (service principal, AzureIdentity types 1 and 2): `POST {authority}{tenant}/oauth2/token
//!   ?api-version=1.0`, `grant_type=client_credentials&client_id&resource` plus `client_secret`, or a fresh RS256
//!   `client_assertion` per attempt for a certificate. One token per tenant, primary first, then each
//!   auxiliary tenant, as ADAL's multi-tenant token does.
//! - **Entra v2** (federated): `POST {authority}{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials
//!   &client_id&client_assertion_type=jwt-bearer&client_assertion=<service-account token>&scope=<resource>/.default`.
//!
//! # Retries
//! Transient failures — transport errors, timeouts, IMDS 404/408/410/429/5xx (except 501/505, as ADAL), Entra
//! 408/429/5xx — are retried at most [`PodTokenOptions::retry_attempts`] times in all, with doubling backoff
//! (or a longer `Retry-After`), and only while the next attempt still starts within
//! [`PodTokenOptions::retry_budget`] of the first. Every attempt is capped by
//! [`PodTokenOptions::request_timeout`], later ones also by the budget left. So one token costs at most about
//! `max(request_timeout, retry_budget)` (5 s by default), where upstream's ADAL could sleep ~112 s.
//!
//! # Errors
//! A definite answer that is not a token (IMDS 400 `Identity not found`, Entra 401 `invalid_client`, a 200
//! without `access_token`) is [`PodTokenError::Refused`]; exhausted transient failures, unreadable Secrets,
//! unusable certificates and failed service-account token requests are [`PodTokenError::Unavailable`].
//! Neither carries a secret, an assertion or a token: response bodies are kept only for non-200 answers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::Method;
use serde_json::Value;

use super::{FEDERATED_AUDIENCE, Material, PodToken, PodTokenError, PodTokenOptions, SpSecret};
use crate::cloud::Environment;
use crate::http::{HttpClient, HttpError, HttpResponse};
use crate::token::{
    AAD_API_VERSION, CertCredential, IMDS_API_VERSION, JWT_BEARER, PemProblem, backoff,
    client_assertion, num_field, parse_pem_credential, str_field,
};

/// Longest response body kept in a [`PodTokenError`], characters (Entra's error bodies are ~600).
pub(super) const MAX_BODY_SNIPPET_CHARS: usize = 1024;
/// Longest lifetime believed, seconds (IMDS tokens last 24 hours; a larger claim would stop refreshes). The one
/// bound for pod tokens and the controller's own token.
const MAX_TOKEN_LIFETIME_SECS: i64 = 2 * 24 * 60 * 60;
/// Lifetime assumed when a token response gives none, seconds (Entra's default is about an hour).
const FALLBACK_LIFETIME_SECS: i64 = 3600;
/// A retry is not started with less time than this left in the budget.
const MIN_ATTEMPT_MS: u64 = 100;
/// Keys of a certificate Secret: upstream's PKCS#12 key, or PEM.
const KEY_CERTIFICATE: &str = "certificate";
/// Upstream's PKCS#12 password key (present = the `certificate` value is meant to be PKCS#12).
const KEY_PASSWORD: &str = "password";
/// `kubernetes.io/tls` Secret keys.
const KEY_TLS_CRT: &str = "tls.crt";
const KEY_TLS_KEY: &str = "tls.key";

/// Which service answered (retry rules and messages differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Service {
    Imds,
    Entra,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Imds => "IMDS",
            Service::Entra => "Entra ID",
        }
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub(super) enum AttemptError {
    /// A non-200 answer.
    Status {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// A 200 that holds no usable token (the description never quotes the body: it may hold a token).
    BadToken(String),
    /// The request could not be made or answered.
    Http(HttpError),
    /// Our per-attempt deadline passed.
    Timeout(Duration),
    /// Building the request failed locally (signing).
    Local(String),
}

impl AttemptError {
    /// Whether another attempt may help.
    pub(super) fn transient(&self, service: Service) -> bool {
        match self {
            AttemptError::Status { status, .. } => match service {
                Service::Imds => {
                    matches!(status, 404 | 408 | 410 | 429 | 500..=599)
                        && !matches!(status, 501 | 505)
                }
                Service::Entra => matches!(status, 408 | 429 | 500..=599),
            },
            AttemptError::Http(HttpError::Transport { .. } | HttpError::Timeout { .. })
            | AttemptError::Timeout(_) => true,
            AttemptError::Http(_) | AttemptError::BadToken(_) | AttemptError::Local(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error the caller sees after `attempts` attempts.
    pub(super) fn into_error(
        self,
        service: Service,
        endpoint: &str,
        attempts: u32,
    ) -> PodTokenError {
        let transient = self.transient(service);
        let who = service.name();
        match self {
            AttemptError::Status { status, body, .. } if !transient => PodTokenError::Refused {
                status,
                body_snippet: body,
                endpoint: endpoint.to_string(),
            },
            AttemptError::Status { status, body, .. } => PodTokenError::Unavailable(format!(
                "{who} answered HTTP {status} ({attempts} attempt(s)): {body}"
            )),
            AttemptError::BadToken(description) => PodTokenError::Refused {
                status: 200,
                body_snippet: description,
                endpoint: endpoint.to_string(),
            },
            AttemptError::Http(e) => PodTokenError::Unavailable(format!(
                "{who} token request failed ({attempts} attempt(s)): {e}"
            )),
            AttemptError::Timeout(after) => PodTokenError::Unavailable(format!(
                "{who} token request to {} timed out after {after:?} ({attempts} attempt(s))",
                crate::http::redact_url(endpoint)
            )),
            AttemptError::Local(message) => PodTokenError::Unavailable(message),
        }
    }
}

/// A service principal's credential, loaded from its Secret for one fetch and dropped after it.
pub(super) enum SpCredential {
    Secret(String),
    Certificate(CertCredential),
}

/// The upstream client shared by every fetch of one provider.
pub(super) struct Upstream {
    pub(super) http: HttpClient,
    pub(super) env: Environment,
    pub(super) imds_base: String,
    pub(super) opts: PodTokenOptions,
    /// HTTP requests sent to IMDS or Entra (every attempt).
    pub(super) calls: AtomicU64,
    /// Of those, the ones that failed (transport, timeout or a non-200 answer).
    pub(super) failed_calls: AtomicU64,
}

// === impl Upstream ===

impl Upstream {
    /// The IMDS token URL of a managed-identity spec.
    pub(super) fn imds_url(
        &self,
        client_id: Option<&str>,
        resource_id: Option<&str>,
        resource: &str,
    ) -> String {
        let mut q = vec![("api-version", IMDS_API_VERSION), ("resource", resource)];
        match (client_id, resource_id) {
            (Some(c), _) => q.push(("client_id", c)),
            (None, Some(r)) => q.push(("msi_res_id", r)),
            (None, None) => {}
        }
        format!(
            "{}/metadata/identity/oauth2/token?{}",
            self.imds_base,
            crate::form::pairs(&q)
        )
    }

    /// The Entra v1 token URL of a tenant (with ADAL's `api-version`).
    pub(super) fn v1_url(&self, tenant: &str) -> String {
        format!(
            "{}?api-version={AAD_API_VERSION}",
            self.env.token_endpoint(tenant)
        )
    }

    /// The Entra v2 token URL of a tenant.
    pub(super) fn v2_url(&self, tenant: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.env.active_directory_endpoint.trim_end_matches('/'),
            crate::form::encode_path_segment(tenant)
        )
    }

    /// One managed-identity token through IMDS.
    pub(super) async fn imds(
        &self,
        client_id: Option<&str>,
        resource_id: Option<&str>,
        resource: &str,
    ) -> Result<PodToken, PodTokenError> {
        let url = self.imds_url(client_id, resource_id, resource);
        let url = url.as_str();
        let fallback_client = client_id.unwrap_or_default();
        self.with_retries(Service::Imds, url, move || {
            self.imds_attempt(url, resource, fallback_client)
        })
        .await
    }

    async fn imds_attempt(
        &self,
        url: &str,
        resource: &str,
        client_id: &str,
    ) -> Result<PodToken, AttemptError> {
        let r = self
            .http
            .send(Method::GET, url, &[("metadata", "true")], Bytes::new())
            .await
            .map_err(AttemptError::Http)?;
        token_from(&r, resource, client_id)
    }

    /// Service-principal tokens: the primary tenant first, then each auxiliary tenant.
    pub(super) async fn service_principal(
        &self,
        tenant_id: &str,
        client_id: &str,
        aux_tenant_ids: &[String],
        cred: &SpCredential,
        resource: &str,
    ) -> Result<Vec<PodToken>, PodTokenError> {
        let mut out = Vec::with_capacity(1 + aux_tenant_ids.len());
        for tenant in std::iter::once(tenant_id).chain(aux_tenant_ids.iter().map(String::as_str)) {
            let url = self.v1_url(tenant);
            let audience = self.env.token_endpoint(tenant);
            let (url, audience) = (url.as_str(), audience.as_str());
            let t = self
                .with_retries(Service::Entra, url, move || {
                    self.sp_attempt(url, audience, client_id, cred, resource)
                })
                .await?;
            out.push(t);
        }
        Ok(out)
    }

    async fn sp_attempt(
        &self,
        url: &str,
        audience: &str,
        client_id: &str,
        cred: &SpCredential,
        resource: &str,
    ) -> Result<PodToken, AttemptError> {
        let form = match cred {
            SpCredential::Secret(secret) => crate::form::pairs(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("resource", resource),
            ]),
            SpCredential::Certificate(c) => {
                let assertion = client_assertion(
                    &c.key,
                    &c.x5t,
                    client_id,
                    audience,
                    crate::token::now_secs(),
                )
                .map_err(|e| AttemptError::Local(e.to_string()))?;
                crate::form::pairs(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                    ("resource", resource),
                ])
            }
        };
        self.post_form(url, form, resource, client_id).await
    }

    /// A federated token: the service-account token exchanged on the v2 endpoint.
    pub(super) async fn federated(
        &self,
        tenant_id: &str,
        client_id: &str,
        assertion: &str,
        resource: &str,
    ) -> Result<PodToken, PodTokenError> {
        let url = self.v2_url(tenant_id);
        let scope = scope_for(resource);
        let (url, scope) = (url.as_str(), scope.as_str());
        self.with_retries(Service::Entra, url, move || {
            let form = crate::form::pairs(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
                ("scope", scope),
            ]);
            self.post_form(url, form, resource, client_id)
        })
        .await
    }

    async fn post_form(
        &self,
        url: &str,
        form: String,
        resource: &str,
        client_id: &str,
    ) -> Result<PodToken, AttemptError> {
        let r = self
            .http
            .send(
                Method::POST,
                url,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("accept", "application/json"),
                ],
                Bytes::from(form),
            )
            .await
            .map_err(AttemptError::Http)?;
        token_from(&r, resource, client_id)
    }

    /// Run `attempt` under the retry policy (module docs).
    async fn with_retries<F, Fut>(
        &self,
        service: Service,
        endpoint: &str,
        mut attempt: F,
    ) -> Result<PodToken, PodTokenError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<PodToken, AttemptError>>,
    {
        let started = Instant::now();
        let attempts = self.opts.retry_attempts.max(1);
        let budget = self.opts.retry_budget;
        let mut n = 1u32;
        loop {
            let timeout = if n == 1 {
                self.opts.request_timeout
            } else {
                self.opts
                    .request_timeout
                    .min(budget.saturating_sub(started.elapsed()))
            };
            self.calls.fetch_add(1, Ordering::Relaxed);
            let res = match tokio::time::timeout(timeout, attempt()).await {
                Ok(r) => r,
                Err(_) => Err(AttemptError::Timeout(timeout)),
            };
            let e = match res {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            self.failed_calls.fetch_add(1, Ordering::Relaxed);
            if e.transient(service) && n < attempts {
                let delay =
                    backoff(self.opts.retry_base_delay, n).max(e.retry_after().unwrap_or_default());
                let next_start = started.elapsed() + delay + Duration::from_millis(MIN_ATTEMPT_MS);
                if next_start < budget {
                    tracing::debug!(service = service.name(), attempt = n, ?delay, error = ?DebugAttempt(&e), "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                    n += 1;
                    continue;
                }
            }
            return Err(e.into_error(service, endpoint, n));
        }
    }
}

/// Debug view of an attempt error for logs: statuses and error kinds, never a body.
struct DebugAttempt<'a>(&'a AttemptError);

impl std::fmt::Debug for DebugAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            AttemptError::Status { status, .. } => write!(f, "HTTP {status}"),
            AttemptError::BadToken(d) => write!(f, "bad token response: {d}"),
            AttemptError::Http(e) => write!(f, "{e}"),
            AttemptError::Timeout(t) => write!(f, "timed out after {t:?}"),
            AttemptError::Local(m) => write!(f, "{m}"),
        }
    }
}

/// The v2 scope of a v1-style resource, as the Azure SDKs build it: `R/.default` (`R.default` when `R` ends
/// with `/`); a scope that already ends with `/.default` is kept.
pub(super) fn scope_for(resource: &str) -> String {
    let r = resource.trim();
    if r.ends_with("/.default") {
        r.to_string()
    } else if r.ends_with('/') {
        format!("{r}.default")
    } else {
        format!("{r}/.default")
    }
}

/// A body as a bounded snippet (upstream shows the raw body; JSON error bodies are one line already).
pub(super) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_BODY_SNIPPET_CHARS) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The token of a response, or why not.
fn token_from(r: &HttpResponse, resource: &str, client_id: &str) -> Result<PodToken, AttemptError> {
    if r.status != 200 {
        let retry_after = r
            .header("retry-after")
            .and_then(|v| crate::retry_after::parse_retry_after(v, SystemTime::now()));
        return Err(AttemptError::Status {
            status: r.status,
            body: snippet(&r.body),
            retry_after,
        });
    }
    parse_token(&r.body, resource, client_id, now_secs()).map_err(AttemptError::BadToken)
}

/// Parse a token response (IMDS, Entra v1 or v2; numbers as JSON numbers or strings). `expires_on` is the
/// earlier of the server's `expires_on` (when in the future) and `now + expires_in` on the local clock, so a
/// node clock behind the issuer's never keeps a token past its real end; lifetimes are capped at two days.
/// The error describes the problem without quoting the body.
pub(crate) fn parse_token(
    body: &[u8],
    requested_resource: &str,
    client_id: &str,
    now: i64,
) -> Result<PodToken, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the token response is not JSON ({e})"))?;
    if !v.is_object() {
        return Err("the token response is not a JSON object".into());
    }
    let access_token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the token response has no access_token".to_string())?;
    let cap = now.saturating_add(MAX_TOKEN_LIFETIME_SECS);
    let local = num_field(&v, "expires_in")
        .map(|s| now.saturating_add(s.clamp(0, MAX_TOKEN_LIFETIME_SECS)));
    let server = num_field(&v, "expires_on").filter(|&on| on > now);
    let expires_on = match (local, server) {
        (Some(l), Some(s)) => l.min(s),
        (Some(l), None) => l,
        (None, Some(s)) => s.min(cap),
        (None, None) => now.saturating_add(FALLBACK_LIFETIME_SECS),
    };
    let not_before = num_field(&v, "not_before")
        .filter(|&nb| nb > 0)
        .unwrap_or(now);
    Ok(PodToken {
        access_token: access_token.to_string(),
        expires_on: u64::try_from(expires_on).unwrap_or(0),
        not_before: u64::try_from(not_before).unwrap_or(0),
        resource: str_field(&v, "resource")
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| requested_resource.to_string()),
        token_type: str_field(&v, "token_type")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Bearer".to_string()),
        client_id: str_field(&v, "client_id")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| client_id.to_string()),
    })
}

/// Seconds since the epoch on the local clock.
pub(super) fn now_secs() -> i64 {
    crate::token::now_secs()
}

/// Load a service principal's credential through the agent, bounded by `timeout`.
pub(super) async fn load_sp_credential(
    secret: &SpSecret,
    material: &dyn Material,
    timeout: Duration,
) -> Result<SpCredential, PodTokenError> {
    let (namespace, name) = secret.secret_ref();
    let data = match tokio::time::timeout(timeout, material.secret(namespace, name)).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            return Err(PodTokenError::Unavailable(format!(
                "reading Secret {namespace}/{name} failed: {e}"
            )));
        }
        Err(_) => {
            return Err(PodTokenError::Unavailable(format!(
                "reading Secret {namespace}/{name} timed out after {timeout:?}"
            )));
        }
    };
    match secret {
        SpSecret::ClientSecret { .. } => {
            client_secret_from(namespace, name, &data).map(SpCredential::Secret)
        }
        SpSecret::Certificate { .. } => {
            certificate_from(namespace, name, &data).map(SpCredential::Certificate)
        }
    }
}

/// AzureIdentity type 1: the first data value of the Secret (upstream takes "the first" of a Go map, i.e. any;
/// here the first key in order), without trailing line breaks (`--from-file` adds one; Entra secrets never
/// end in whitespace).
pub(super) fn client_secret_from(
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<String, PodTokenError> {
    let (key, value) = data.iter().next().ok_or_else(|| {
        PodTokenError::Unavailable(format!(
            "Secret {namespace}/{name} (clientPassword) has no data; put the client secret in it"
        ))
    })?;
    let s = std::str::from_utf8(value).map_err(|_| {
        PodTokenError::Unavailable(format!(
            "Secret {namespace}/{name} key `{key}` is not UTF-8 text, so it cannot be a client secret"
        ))
    })?;
    let s = s.trim_end_matches(['\r', '\n']);
    if s.is_empty() {
        return Err(PodTokenError::Unavailable(format!(
            "Secret {namespace}/{name} key `{key}` is empty; put the client secret in it"
        )));
    }
    Ok(s.to_string())
}

/// AzureIdentity type 2: PEM (certificate and unencrypted RSA key) in `certificate`, or in `tls.crt` +
/// `tls.key`. Upstream's PKCS#12 `certificate` + `password` is refused with the conversion command.
pub(super) fn certificate_from(
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<CertCredential, PodTokenError> {
    let (key_name, mut pem) = if let Some(c) = data.get(KEY_CERTIFICATE) {
        (KEY_CERTIFICATE, c.clone())
    } else if let Some(c) = data.get(KEY_TLS_CRT) {
        (KEY_TLS_CRT, c.clone())
    } else {
        return Err(PodTokenError::Unavailable(format!(
            "Secret {namespace}/{name} has neither a `{KEY_CERTIFICATE}` nor a `{KEY_TLS_CRT}` key; store the certificate and its RSA private key there as PEM"
        )));
    };
    if let Some(k) = data.get(KEY_TLS_KEY) {
        pem.push(b'\n');
        pem.extend_from_slice(k);
    }
    let pkcs12_hint = key_name == KEY_CERTIFICATE && data.contains_key(KEY_PASSWORD);
    parse_pem_credential(&pem, pkcs12_hint).map_err(|p| match p {
        PemProblem::Pkcs12 => PodTokenError::Unavailable(format!(
            "Secret {namespace}/{name} key `{key_name}` is a PKCS#12/PFX file, which podid cannot read; convert it to PEM (certificate and unencrypted private key) with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes` (enter the Secret's `{KEY_PASSWORD}` value when asked) and store cert.pem under the key `{KEY_CERTIFICATE}`"
        )),
        PemProblem::Invalid(message) => PodTokenError::Unavailable(format!(
            "Secret {namespace}/{name} key `{key_name}`: {message}"
        )),
    })
}

/// Request the pod's service-account token for Entra's token exchange through the agent.
pub(super) async fn load_sa_token(
    namespace: &str,
    service_account: &str,
    material: &dyn Material,
    timeout: Duration,
) -> Result<String, PodTokenError> {
    match tokio::time::timeout(
        timeout,
        material.service_account_token(namespace, service_account, FEDERATED_AUDIENCE),
    )
    .await
    {
        Ok(Ok(t)) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(Ok(_)) => Err(PodTokenError::Unavailable(format!(
            "the service account token of {namespace}/{service_account} is empty"
        ))),
        Ok(Err(e)) => Err(PodTokenError::Unavailable(format!(
            "requesting a service account token for {namespace}/{service_account} failed: {e}"
        ))),
        Err(_) => Err(PodTokenError::Unavailable(format!(
            "requesting a service account token for {namespace}/{service_account} timed out after {timeout:?}"
        ))),
    }
}
