//! ARM compute client: read and change the identity block of a VM or a VM scale set (api-version
//! `2019-12-01`, as MIC uses).
//!
//! # Calls
//! - [`ComputeClient::get_identity`]: `GET {arm}/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/
//!   virtualMachines|virtualMachineScaleSets/NAME?api-version=2019-12-01`, reduced to a [`ComputeIdentity`].
//! - [`ComputeClient::patch_identity`]: `PATCH` of the same URL with the caller's body (MIC sends only the delta
//!   of `identity.userAssignedIdentities`, relying on ARM's merge semantics), then waits for the long-running
//!   operation:
//!   - `Azure-AsyncOperation` header → poll that URL: `InProgress` (or any non-terminal status) waits,
//!     `Succeeded` is done, `Failed` / `Canceled` become [`ArmError::OperationFailed`] from the operation's
//!     `error` object;
//!   - else `202` with `Location` → poll it: `202` waits, `200`/`201`/`204` is done;
//!   - else a `200`/`201` whose body's `properties.provisioningState` is not terminal → poll the resource until
//!     it is;
//!   - else the PATCH is complete.
//!
//!   The first poll goes out at once (or after the PATCH response's `Retry-After`), later ones after each
//!   poll response's `Retry-After` or [`ComputeOptions::poll_interval`] (upstream's 5 s). The whole wait is
//!   capped by [`ComputeOptions::lro_timeout`] (upstream's 15 minutes). Poll URLs must point at the ARM
//!   endpoint's own scheme and host: the bearer token is never sent anywhere else.
//!
//! # Throttling (§2.7 step 6)
//! A `429`, or a `503` with `Retry-After`, is returned at once as [`ArmError::Throttled`] (autorest's retry
//! list had 429 removed upstream, and so does this client). It also closes a gate: each client keeps a reader
//! gate (GETs) and a writer gate (PATCHes) per resource kind (VM, scale set), like upstream's
//! `retryAfterReader` / `retryAfterWriter` per VM and VMSS client. Until a gate opens, calls through it fail fast
//! with `Throttled` (`VMSSGet client throttled, retry after: ...`) without touching the network. The gate lasts
//! `Retry-After` (seconds or HTTP date), or, without the header, [`ComputeOptions::throttle_default`] doubling on
//! each consecutive throttle; both are capped by [`ComputeOptions::throttle_max`]. A success resets the
//! doubling. A throttled poll does not fail the operation: the wait honours its `Retry-After`.
//!
//! # Retries
//! Transient failures — connection errors, request timeouts, `408`, `500`, `502`, `503` without `Retry-After`,
//! `504` — are retried inside the client up to [`ComputeOptions::retry_attempts`] attempts in all (autorest's
//! 3), the delay starting at [`ComputeOptions::retry_base_delay`] and doubling. A `401` saying the token is
//! invalid or expired drops the cached token and is retried once with a fresh one. Everything else (`403
//! AuthorizationFailed`, `LinkedAuthorizationFailed`, `400 FailedIdentityOperation` for more than 150 identities
//! in one request, `404`, ...) is returned as [`ArmError::Api`] with ARM's `error.code` and `error.message`; the
//! caller owns the erroneous-identity retry of upstream `UpdateUserMSI`.
//!
//! # Observability
//! An optional [`ArmObserver`] gets one observation per public call (`vm_get`, `vm_update`, `vmss_get`,
//! `vmss_update`; duration including LRO waits, and whether it failed) for upstream's
//! `cloud_provider_operations_duration_seconds` / `cloud_provider_operations_errors_count`.
//! [`ComputeClient::stats`] counts network calls by kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::Method;
use parking_lot::Mutex;
use serde_json::Value;

use crate::cloud::Environment;
use crate::http::{HttpClient, HttpError, HttpResponse};
use crate::retry_after::parse_retry_after;
use crate::token::{TokenError, TokenSource};

/// The compute API version MIC uses.
pub const COMPUTE_API_VERSION: &str = "2019-12-01";
/// Default delay between LRO polls without `Retry-After` (upstream's `PollingDelay`), seconds.
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 5;
/// Default cap on one LRO wait (autorest's `PollingDuration`), seconds.
pub const DEFAULT_LRO_TIMEOUT_SECS: u64 = 15 * 60;
/// Default attempts for transient failures (autorest's `DefaultRetryAttempts`).
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// Default delay before the first retry of a transient failure, ms (doubles after each).
pub const DEFAULT_RETRY_BASE_DELAY_MS: u64 = 1000;
/// Default throttle gate when a 429 carries no `Retry-After`, seconds (doubles on repeats).
pub const DEFAULT_THROTTLE_SECS: u64 = 10;
/// Default longest throttle gate, seconds.
pub const DEFAULT_THROTTLE_MAX_SECS: u64 = 15 * 60;
/// Longest delay between transient retries.
const MAX_RETRY_DELAY_SECS: u64 = 60;
/// Longest ARM error message kept, characters.
const MAX_MESSAGE_CHARS: usize = 2000;

/// VM or scale set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComputeKind {
    /// `Microsoft.Compute/virtualMachines`.
    Vm,
    /// `Microsoft.Compute/virtualMachineScaleSets`.
    Vmss,
}

impl ComputeKind {
    fn provider_path(self) -> &'static str {
        match self {
            ComputeKind::Vm => "Microsoft.Compute/virtualMachines",
            ComputeKind::Vmss => "Microsoft.Compute/virtualMachineScaleSets",
        }
    }

    fn get_op(self) -> Op {
        match self {
            ComputeKind::Vm => Op {
                metric: "vm_get",
                name: "VMGet",
            },
            ComputeKind::Vmss => Op {
                metric: "vmss_get",
                name: "VMSSGet",
            },
        }
    }

    fn update_op(self) -> Op {
        match self {
            ComputeKind::Vm => Op {
                metric: "vm_update",
                name: "VMUpdate",
            },
            ComputeKind::Vmss => Op {
                metric: "vmss_update",
                name: "VMSSUpdate",
            },
        }
    }

    fn gate(self, write: bool) -> usize {
        match (self, write) {
            (ComputeKind::Vm, false) => 0,
            (ComputeKind::Vm, true) => 1,
            (ComputeKind::Vmss, false) => 2,
            (ComputeKind::Vmss, true) => 3,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Op {
    /// Metric label (`vm_get`, ...).
    metric: &'static str,
    /// Upstream's client name in messages (`VMGet`, ...).
    name: &'static str,
}

/// Which VM or scale set to address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ComputeRef {
    /// VM or scale set.
    pub kind: ComputeKind,
    /// Subscription ID.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// VM or scale-set name.
    pub name: String,
}

impl ComputeRef {
    /// A VM.
    pub fn vm(subscription: &str, resource_group: &str, name: &str) -> ComputeRef {
        ComputeRef {
            kind: ComputeKind::Vm,
            subscription: subscription.to_string(),
            resource_group: resource_group.to_string(),
            name: name.to_string(),
        }
    }

    /// A scale set.
    pub fn vmss(subscription: &str, resource_group: &str, name: &str) -> ComputeRef {
        ComputeRef {
            kind: ComputeKind::Vmss,
            ..ComputeRef::vm(subscription, resource_group, name)
        }
    }

    /// The ARM resource ID.
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}",
            self.subscription,
            self.resource_group,
            self.kind.provider_path(),
            self.name
        )
    }

    fn check(&self) -> Result<(), ArmError> {
        for (field, v) in [
            ("subscription", &self.subscription),
            ("resource_group", &self.resource_group),
            ("name", &self.name),
        ] {
            if v.trim().is_empty() {
                return Err(ArmError::InvalidTarget {
                    field,
                    message: "must not be empty".into(),
                });
            }
        }
        Ok(())
    }

    fn path(&self) -> String {
        use crate::form::encode_path_segment as seg;
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}?api-version={COMPUTE_API_VERSION}",
            seg(&self.subscription),
            seg(&self.resource_group),
            self.kind.provider_path(),
            seg(&self.name)
        )
    }
}

/// The identity block of a VM or scale set, as ARM returned it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComputeIdentity {
    /// `identity.type` (`None`, `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned`); empty when
    /// ARM returned no identity block.
    pub type_: String,
    /// `identity.principalId` (system-assigned identity).
    pub principal_id: Option<String>,
    /// `identity.tenantId`.
    pub tenant_id: Option<String>,
    /// The keys of `identity.userAssignedIdentities`: resource IDs as ARM returned them (case preserved).
    pub user_assigned: Vec<String>,
    /// `properties.provisioningState` (MIC refuses to PATCH a resource that is `Deleting`).
    pub provisioning_state: Option<String>,
}

/// Receives one observation per public call, for upstream's cloud-provider metrics.
pub trait ArmObserver: Send + Sync {
    /// `op` is `vm_get`, `vm_update`, `vmss_get` or `vmss_update`; `seconds` includes retries and LRO waits.
    fn observe(&self, op: &'static str, seconds: f64, error: bool);
}

/// Options of a [`ComputeClient`].
#[derive(Clone)]
pub struct ComputeOptions {
    /// Delay between LRO polls when the poll response has no `Retry-After` (upstream: 5 s).
    pub poll_interval: Duration,
    /// Cap on one LRO wait (upstream: 15 min).
    pub lro_timeout: Duration,
    /// Attempts for transient failures, the first included (at least 1).
    pub retry_attempts: u32,
    /// Delay before the first transient retry; doubles after each.
    pub retry_base_delay: Duration,
    /// Throttle gate when a 429 has no `Retry-After`; doubles on consecutive throttles.
    pub throttle_default: Duration,
    /// Longest throttle gate (also caps `Retry-After`).
    pub throttle_max: Duration,
    /// Metrics hook.
    pub observer: Option<Arc<dyn ArmObserver>>,
}

impl Default for ComputeOptions {
    fn default() -> Self {
        ComputeOptions {
            poll_interval: Duration::from_secs(DEFAULT_POLL_INTERVAL_SECS),
            lro_timeout: Duration::from_secs(DEFAULT_LRO_TIMEOUT_SECS),
            retry_attempts: DEFAULT_RETRY_ATTEMPTS,
            retry_base_delay: Duration::from_millis(DEFAULT_RETRY_BASE_DELAY_MS),
            throttle_default: Duration::from_secs(DEFAULT_THROTTLE_SECS),
            throttle_max: Duration::from_secs(DEFAULT_THROTTLE_MAX_SECS),
            observer: None,
        }
    }
}

impl std::fmt::Debug for ComputeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeOptions")
            .field("poll_interval", &self.poll_interval)
            .field("lro_timeout", &self.lro_timeout)
            .field("retry_attempts", &self.retry_attempts)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("throttle_default", &self.throttle_default)
            .field("throttle_max", &self.throttle_max)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// Network calls made so far (each attempt counts once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArmStats {
    /// Resource GETs sent.
    pub gets: u64,
    /// PATCHes sent.
    pub patches: u64,
    /// LRO polls sent.
    pub polls: u64,
    /// Throttled responses received (429, or 503 with `Retry-After`).
    pub throttled: u64,
    /// Calls refused by a closed throttle gate without touching the network.
    pub gated: u64,
    /// Transient failures retried.
    pub retries: u64,
}

/// ARM errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmError {
    /// ARM answered with an error (`{"error": {"code", "message"}}`).
    #[error("ARM returned HTTP {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `error.code` (e.g. `AuthorizationFailed`, `LinkedAuthorizationFailed`).
        code: String,
        /// `error.message`.
        message: String,
    },
    /// ARM throttled this client (or its gate is still closed).
    #[error("{operation} client throttled, retry after: {retry_after:?}")]
    Throttled {
        /// Upstream's client name: `VMGet`, `VMUpdate`, `VMSSGet` or `VMSSUpdate`.
        operation: &'static str,
        /// How long until the gate opens.
        retry_after: Duration,
    },
    /// The request could not be made (after retries).
    #[error("ARM request failed: {0}")]
    Transport(HttpError),
    /// A request (after retries) or a long-running operation did not finish in time.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// Upstream's client name.
        operation: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// No ARM token.
    #[error("cannot get an ARM token: {0}")]
    Auth(TokenError),
    /// The long-running operation ended `Failed` or `Canceled`.
    #[error("the ARM operation failed: {code}: {message}")]
    OperationFailed {
        /// The operation's `error.code` (or its status when it has none).
        code: String,
        /// The operation's `error.message`.
        message: String,
    },
    /// ARM's answer could not be understood, or pointed somewhere the token must not go.
    #[error("unusable ARM response: {message}")]
    InvalidResponse {
        /// What is wrong.
        message: String,
    },
    /// The [`ComputeRef`] is incomplete.
    #[error("invalid compute target: `{field}` {message}")]
    InvalidTarget {
        /// The field to fix.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ArmError {
    /// ARM's error code (`Api`, `OperationFailed`).
    pub fn code(&self) -> Option<&str> {
        match self {
            ArmError::Api { code, .. } | ArmError::OperationFailed { code, .. } => Some(code),
            _ => None,
        }
    }

    /// ARM's error message (`Api`, `OperationFailed`), else the error's text.
    pub fn message(&self) -> String {
        match self {
            ArmError::Api { message, .. } | ArmError::OperationFailed { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status of an `Api` error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long to wait for a `Throttled` error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ArmError::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A throttle gate: closed until `until`; `strikes` consecutive throttles drive the default's doubling.
#[derive(Debug, Clone, Copy, Default)]
struct Gate {
    until: Option<Instant>,
    strikes: u32,
}

impl Gate {
    /// Time left while closed.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Close after a throttled response; returns the gate's duration.
    fn throttle(
        &mut self,
        now: Instant,
        header: Option<Duration>,
        default: Duration,
        max: Duration,
    ) -> Duration {
        self.strikes = self.strikes.saturating_add(1);
        let d = header
            .unwrap_or_else(|| {
                let factor = 1u32
                    .checked_shl(self.strikes.saturating_sub(1))
                    .unwrap_or(u32::MAX);
                default.saturating_mul(factor)
            })
            .min(max);
        self.until = now.checked_add(d);
        d
    }

    /// A call went through.
    fn open(&mut self) {
        self.strikes = 0;
        self.until = None;
    }
}

#[derive(Default)]
struct Counters {
    gets: AtomicU64,
    patches: AtomicU64,
    polls: AtomicU64,
    throttled: AtomicU64,
    gated: AtomicU64,
    retries: AtomicU64,
}

#[derive(Clone, Copy)]
enum Kind {
    Get,
    Patch,
    Poll,
}

struct Inner {
    env: Environment,
    tokens: TokenSource,
    http: HttpClient,
    opts: ComputeOptions,
    gates: Mutex<[Gate; 4]>,
    counters: Counters,
}

/// The ARM compute client. Cheap to clone (shared gates and counters).
#[derive(Clone)]
pub struct ComputeClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ComputeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeClient")
            .field("arm", &self.inner.env.arm_base())
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

/// `base * 2^(attempt-1)`, capped.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor)
        .min(Duration::from_secs(MAX_RETRY_DELAY_SECS))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// `error.code` and `error.message` of an ARM error body (or a description of the body).
fn arm_error(r: &HttpResponse) -> (String, String) {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let e = v.get("error").unwrap_or(&Value::Null);
    let code = e
        .get("code")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP{}", r.status));
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .map(|m| truncate(m, MAX_MESSAGE_CHARS))
        .unwrap_or_else(|| truncate(r.text().trim(), 300));
    (code, message)
}

fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 500 | 502 | 503 | 504)
}

fn is_terminal(state: &str) -> bool {
    ["Succeeded", "Failed", "Canceled", "Cancelled"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(state))
}

fn parse_identity(body: &[u8]) -> Result<ComputeIdentity, ArmError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ArmError::InvalidResponse {
        message: format!("the resource body is not JSON: {e}"),
    })?;
    if !v.is_object() {
        return Err(ArmError::InvalidResponse {
            message: "the resource body is not a JSON object".into(),
        });
    }
    let s = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).map(str::to_string);
    let id = v.get("identity").unwrap_or(&Value::Null);
    Ok(ComputeIdentity {
        type_: s(id, "type").unwrap_or_default(),
        principal_id: s(id, "principalId"),
        tenant_id: s(id, "tenantId"),
        user_assigned: id
            .get("userAssignedIdentities")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        provisioning_state: v
            .get("properties")
            .and_then(|p| p.get("provisioningState"))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

// === impl ComputeClient ===

impl ComputeClient {
    /// A client for the environment's ARM endpoint.
    pub fn new(
        env: Environment,
        tokens: TokenSource,
        http: HttpClient,
        opts: ComputeOptions,
    ) -> ComputeClient {
        ComputeClient {
            inner: Arc::new(Inner {
                env,
                tokens,
                http,
                opts,
                gates: Mutex::new([Gate::default(); 4]),
                counters: Counters::default(),
            }),
        }
    }

    /// Network calls so far.
    pub fn stats(&self) -> ArmStats {
        let c = &self.inner.counters;
        ArmStats {
            gets: c.gets.load(Ordering::Relaxed),
            patches: c.patches.load(Ordering::Relaxed),
            polls: c.polls.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            gated: c.gated.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// The token source (to reload it on config change).
    pub fn tokens(&self) -> &TokenSource {
        &self.inner.tokens
    }

    /// GET a VM or scale set and return its identity block.
    pub async fn get_identity(&self, target: &ComputeRef) -> Result<ComputeIdentity, ArmError> {
        let op = target.kind.get_op();
        let started = Instant::now();
        let res = async {
            target.check()?;
            let url = format!("{}{}", self.inner.env.arm_base(), target.path());
            let r = self
                .call(
                    op,
                    Kind::Get,
                    Method::GET,
                    &url,
                    None,
                    Some(target.kind.gate(false)),
                )
                .await?;
            parse_identity(&r.body)
        }
        .await;
        self.observe(op, started, res.is_err());
        res
    }

    /// PATCH a VM or scale set with `body` (e.g. `{"identity": {...}}`) and wait for the operation to finish.
    pub async fn patch_identity(&self, target: &ComputeRef, body: &Value) -> Result<(), ArmError> {
        let op = target.kind.update_op();
        let started = Instant::now();
        let res = async {
            target.check()?;
            let url = format!("{}{}", self.inner.env.arm_base(), target.path());
            let bytes = Bytes::from(body.to_string());
            let r = self
                .call(
                    op,
                    Kind::Patch,
                    Method::PATCH,
                    &url,
                    Some(bytes),
                    Some(target.kind.gate(true)),
                )
                .await?;
            self.await_operation(op, &url, &r, started).await
        }
        .await;
        self.observe(op, started, res.is_err());
        res
    }

    fn observe(&self, op: Op, started: Instant, error: bool) {
        if let Some(o) = &self.inner.opts.observer {
            o.observe(op.metric, started.elapsed().as_secs_f64(), error);
        }
    }

    /// Wait for the long-running operation a PATCH response describes.
    async fn await_operation(
        &self,
        op: Op,
        resource_url: &str,
        first: &HttpResponse,
        started: Instant,
    ) -> Result<(), ArmError> {
        enum Mode {
            Async,
            Location,
            Resource,
        }
        let (mode, url) = if let Some(u) = first.header("azure-asyncoperation") {
            (Mode::Async, u.to_string())
        } else if first.status == 202
            && let Some(u) = first.header("location")
        {
            (Mode::Location, u.to_string())
        } else {
            let state = parse_identity(&first.body)
                .ok()
                .and_then(|i| i.provisioning_state);
            match state {
                Some(s) if !is_terminal(&s) => (Mode::Resource, resource_url.to_string()),
                Some(s) if !s.eq_ignore_ascii_case("Succeeded") => {
                    return Err(ArmError::OperationFailed {
                        code: s.clone(),
                        message: format!("provisioningState is {s}"),
                    });
                }
                _ => return Ok(()),
            }
        };
        self.check_poll_url(&url)?;
        let deadline = started.checked_add(self.inner.opts.lro_timeout);
        let mut wait = first
            .header("retry-after")
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
            .unwrap_or(Duration::ZERO);
        loop {
            let too_late = match (Instant::now().checked_add(wait), deadline) {
                (Some(at), Some(d)) => at > d,
                (None, _) => true,
                (Some(_), None) => false,
            };
            if too_late {
                return Err(ArmError::Timeout {
                    operation: op.name,
                    after: self.inner.opts.lro_timeout,
                });
            }
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let r = match self
                .call(op, Kind::Poll, Method::GET, &url, None, None)
                .await
            {
                Ok(r) => r,
                Err(ArmError::Throttled { retry_after, .. }) => {
                    wait =
                        retry_after.max(self.inner.opts.poll_interval.min(Duration::from_secs(1)));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let next = r
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
                .unwrap_or(self.inner.opts.poll_interval);
            match mode {
                Mode::Async => {
                    let v: Value =
                        serde_json::from_slice(&r.body).map_err(|e| ArmError::InvalidResponse {
                            message: format!("the operation status is not JSON: {e}"),
                        })?;
                    let status = v.get("status").and_then(Value::as_str).ok_or_else(|| {
                        ArmError::InvalidResponse {
                            message: "the operation status has no `status`".into(),
                        }
                    })?;
                    if status.eq_ignore_ascii_case("Succeeded") {
                        return Ok(());
                    }
                    if is_terminal(status) {
                        let e = v.get("error").unwrap_or(&Value::Null);
                        return Err(ArmError::OperationFailed {
                            code: e
                                .get("code")
                                .and_then(Value::as_str)
                                .unwrap_or(status)
                                .to_string(),
                            message: e
                                .get("message")
                                .and_then(Value::as_str)
                                .map(|m| truncate(m, MAX_MESSAGE_CHARS))
                                .unwrap_or_else(|| format!("the operation ended {status}")),
                        });
                    }
                }
                Mode::Location => {
                    if r.status != 202 {
                        return Ok(());
                    }
                }
                Mode::Resource => {
                    let state = parse_identity(&r.body)?
                        .provisioning_state
                        .unwrap_or_default();
                    if state.eq_ignore_ascii_case("Succeeded") || state.is_empty() {
                        return Ok(());
                    }
                    if is_terminal(&state) {
                        return Err(ArmError::OperationFailed {
                            code: state.clone(),
                            message: format!("provisioningState is {state}"),
                        });
                    }
                }
            }
            wait = next;
        }
    }

    /// A poll URL must be on the ARM endpoint's scheme and host (the token goes with it).
    fn check_poll_url(&self, url: &str) -> Result<(), ArmError> {
        let base: http::Uri =
            self.inner
                .env
                .arm_base()
                .parse()
                .map_err(|_| ArmError::InvalidResponse {
                    message: "the ARM endpoint is not a URL".into(),
                })?;
        let poll: http::Uri = url.parse().map_err(|_| ArmError::InvalidResponse {
            message: format!(
                "the operation URL '{}' is not a URL",
                crate::http::redact_url(url)
            ),
        })?;
        let same = base.scheme() == poll.scheme()
            && match (base.authority(), poll.authority()) {
                (Some(a), Some(b)) => a.as_str().eq_ignore_ascii_case(b.as_str()),
                _ => false,
            };
        if !same {
            return Err(ArmError::InvalidResponse {
                message: format!(
                    "refusing to send the ARM token to the operation URL '{}', which is not on the ARM endpoint {}",
                    crate::http::redact_url(url),
                    self.inner.env.arm_base()
                ),
            });
        }
        Ok(())
    }

    /// One logical call: gate check, token, send, classify; retries transient failures and one stale token.
    async fn call(
        &self,
        op: Op,
        kind: Kind,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        gate: Option<usize>,
    ) -> Result<HttpResponse, ArmError> {
        let opts = &self.inner.opts;
        let counters = &self.inner.counters;
        let attempts = opts.retry_attempts.max(1);
        let mut attempt = 1u32;
        let mut reauthenticated = false;
        loop {
            if let Some(g) = gate
                && let Some(left) = self.inner.gates.lock()[g].remaining(Instant::now())
            {
                counters.gated.fetch_add(1, Ordering::Relaxed);
                return Err(ArmError::Throttled {
                    operation: op.name,
                    retry_after: left,
                });
            }
            let token = self.inner.tokens.token().await.map_err(ArmError::Auth)?;
            let auth = format!("Bearer {}", token.secret());
            let request_id = uuid::Uuid::new_v4().to_string();
            let mut headers: Vec<(&str, &str)> = vec![
                ("authorization", &auth),
                ("accept", "application/json"),
                ("x-ms-client-request-id", &request_id),
            ];
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            match kind {
                Kind::Get => &counters.gets,
                Kind::Patch => &counters.patches,
                Kind::Poll => &counters.polls,
            }
            .fetch_add(1, Ordering::Relaxed);
            let sent = self
                .inner
                .http
                .send(
                    method.clone(),
                    url,
                    &headers,
                    body.clone().unwrap_or_default(),
                )
                .await;
            let r = match sent {
                Ok(r) => r,
                Err(e) => {
                    let transient =
                        matches!(e, HttpError::Transport { .. } | HttpError::Timeout { .. });
                    if transient && attempt < attempts {
                        counters.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(op = op.metric, error = %e, attempt, "ARM request failed; retrying");
                        tokio::time::sleep(backoff(opts.retry_base_delay, attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(match e {
                        HttpError::Timeout { after, .. } => ArmError::Timeout {
                            operation: op.name,
                            after,
                        },
                        other => ArmError::Transport(other),
                    });
                }
            };
            if (200..300).contains(&r.status) {
                if let Some(g) = gate {
                    self.inner.gates.lock()[g].open();
                }
                return Ok(r);
            }
            let retry_after = r
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            if r.status == 429 || (r.status == 503 && retry_after.is_some()) {
                counters.throttled.fetch_add(1, Ordering::Relaxed);
                let d = match gate {
                    Some(g) => self.inner.gates.lock()[g].throttle(
                        Instant::now(),
                        retry_after,
                        opts.throttle_default,
                        opts.throttle_max,
                    ),
                    None => retry_after
                        .unwrap_or(opts.throttle_default)
                        .min(opts.throttle_max),
                };
                tracing::warn!(op = op.metric, status = r.status, retry_after = ?d, "ARM throttled the request");
                return Err(ArmError::Throttled {
                    operation: op.name,
                    retry_after: d,
                });
            }
            let (code, message) = arm_error(&r);
            if r.status == 401
                && !reauthenticated
                && matches!(
                    code.as_str(),
                    "InvalidAuthenticationToken" | "ExpiredAuthenticationToken"
                )
            {
                tracing::info!(op = op.metric, code = %code, "ARM rejected the token; fetching a new one");
                self.inner.tokens.invalidate();
                reauthenticated = true;
                continue;
            }
            if transient_status(r.status) && attempt < attempts {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(op = op.metric, status = r.status, code = %code, attempt, "ARM transient error; retrying");
                tokio::time::sleep(backoff(opts.retry_base_delay, attempt)).await;
                attempt += 1;
                continue;
            }
            return Err(ArmError::Api {
                status: r.status,
                code,
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_uses_header_then_doubles_default() {
        let now = Instant::now();
        let mut g = Gate::default();
        assert_eq!(g.remaining(now), None);
        let d = Duration::from_secs(10);
        let max = Duration::from_secs(60);
        assert_eq!(
            g.throttle(now, Some(Duration::from_secs(3)), d, max),
            Duration::from_secs(3)
        );
        assert_eq!(g.remaining(now), Some(Duration::from_secs(3)));
        assert_eq!(g.remaining(now + Duration::from_secs(3)), None);
        // Without the header: default, doubling with consecutive strikes (this is the 2nd), capped.
        assert_eq!(g.throttle(now, None, d, max), Duration::from_secs(20));
        assert_eq!(g.throttle(now, None, d, max), Duration::from_secs(40));
        assert_eq!(g.throttle(now, None, d, max), Duration::from_secs(60));
        assert_eq!(
            g.throttle(now, Some(Duration::from_secs(3600)), d, max),
            max
        );
        for _ in 0..100 {
            g.throttle(now, None, d, max);
        }
        assert_eq!(g.remaining(now), Some(max));
        g.open();
        assert_eq!(g.remaining(now), None);
        assert_eq!(g.throttle(now, None, d, max), d);
    }

    #[test]
    fn identity_parsing() {
        let body = br#"{"name":"vmss","identity":{"type":"SystemAssigned, UserAssigned","principalId":"p","tenantId":"t",
            "userAssignedIdentities":{"/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/B":{"principalId":"x","clientId":"y"},
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a":{}}},
            "properties":{"provisioningState":"Updating"}}"#;
        let i = parse_identity(body).expect("parse");
        assert_eq!(i.type_, "SystemAssigned, UserAssigned");
        assert_eq!(i.principal_id.as_deref(), Some("p"));
        assert_eq!(i.user_assigned.len(), 2);
        assert!(i.user_assigned.iter().any(|u| u.ends_with("/B")));
        assert_eq!(i.provisioning_state.as_deref(), Some("Updating"));
        let none = parse_identity(br#"{"properties":{}}"#).expect("none");
        assert_eq!(none, ComputeIdentity::default());
        assert!(parse_identity(b"[]").is_err());
        assert!(parse_identity(b"not json").is_err());
    }

    #[test]
    fn error_bodies() {
        let r = |status: u16, body: &str| HttpResponse {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        };
        assert_eq!(
            arm_error(&r(
                403,
                r#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#
            )),
            ("AuthorizationFailed".to_string(), "no".to_string())
        );
        assert_eq!(
            arm_error(&r(502, "<html>bad gateway</html>")),
            (
                "HTTP502".to_string(),
                "<html>bad gateway</html>".to_string()
            )
        );
        let e = ArmError::Api {
            status: 403,
            code: "LinkedAuthorizationFailed".into(),
            message: "m".into(),
        };
        assert_eq!(e.code(), Some("LinkedAuthorizationFailed"));
        assert_eq!(e.status(), Some(403));
        assert_eq!(e.message(), "m");
        assert!(e.to_string().contains("LinkedAuthorizationFailed"));
        let t = ArmError::Throttled {
            operation: "VMSSGet",
            retry_after: Duration::from_secs(3),
        };
        assert_eq!(t.to_string(), "VMSSGet client throttled, retry after: 3s");
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(t.code(), None);
    }

    #[test]
    fn targets() {
        let t = ComputeRef::vmss("s", "rg", "pool");
        assert_eq!(
            t.resource_id(),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/pool"
        );
        assert_eq!(
            t.path(),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/pool?api-version=2019-12-01"
        );
        assert_eq!(
            ComputeRef::vm("s", "rg", "a/../b").path(),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a%2F..%2Fb?api-version=2019-12-01"
        );
        assert!(matches!(
            ComputeRef::vm("s", "", "n").check(),
            Err(ArmError::InvalidTarget {
                field: "resource_group",
                ..
            })
        ));
    }

    #[test]
    fn classification() {
        for s in [408, 500, 502, 503, 504] {
            assert!(transient_status(s));
        }
        for s in [400, 401, 403, 404, 409, 429, 501] {
            assert!(!transient_status(s));
        }
        assert!(is_terminal("succeeded") && is_terminal("Canceled") && !is_terminal("Updating"));
        assert_eq!(
            backoff(Duration::from_millis(5), 3),
            Duration::from_millis(20)
        );
    }
}
