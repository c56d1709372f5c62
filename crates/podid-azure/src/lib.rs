//! podid's Azure wire clients: what `podid controller` (the drop-in for aad-pod-identity's MIC) needs to talk to
//! Azure — the cloud config, the controller's own ARM token, and the VM / scale-set identity calls.
//!
//! # Model
//! ```text
//! CloudConfig ──► Environment (endpoints) ──┐
//!      │                                    ├──► ComputeClient ──► ARM (GET / PATCH + LRO polls)
//!      └──────────► TokenSource ────────────┘         ▲
//!                   (secret | certificate | IMDS)     │ one HttpClient (rustls, pooled) shared by all
//! ```
//! - [`cloud`]: [`CloudConfig`] is read from `azure.json` (YAML or JSON, unknown keys ignored, keys matched
//!   case-insensitively like Go) or from the admin-secret environment variables. [`Environment`] maps the
//!   `cloud` name to ARM and Entra endpoints; `AzureStackCloud` reads a go-autorest environment file named by
//!   `AZURE_ENVIRONMENT_FILEPATH` — the way tests aim the controller at azure-sim.
//! - [`http`]: one [`HttpClient`] (hyper-util pooled client over hyper-rustls, aws-lc-rs provider) trusting the
//!   native roots plus explicit extra CA PEMs; plain `http://` for IMDS; per-request deadline and bounded
//!   bodies.
//! - [`token`]: **who authenticates how.** The controller authenticates as itself: with the node's managed
//!   identity through IMDS when `useManagedIdentityExtension` is true (system-assigned, or the user-assigned
//!   identity `userAssignedIdentityID`), else as a service principal on the AAD v1 endpoint with
//!   `aadClientSecret`, else with a certificate (`aadClientCertPath`, PEM; an RS256 client assertion). The
//!   token's resource is the environment's `tokenAudience` or ARM endpoint. [`TokenSource`] caches the token,
//!   refreshes it 5 minutes (or half a lifetime) before expiry, shares one fetch among concurrent callers, and
//!   [`TokenSource::reload`]s on config change.
//! - [`cache`]: the one token cache ([`cache::TokenCache`]: keyed, single flight, refreshed ahead of expiry,
//!   bounded) that both [`TokenSource`] and the node agent's [`pod_tokens`] acquire tokens through.
//! - [`compute`]: [`ComputeClient`] reads and patches the identity block of a VM or scale set (api-version
//!   `2019-12-01`).
//!
//! # What is retried where
//! - Token fetches: transient failures (transport, timeouts, Entra 408/429/5xx, IMDS 404/410/429/5xx) inside
//!   [`TokenSource`], a few attempts with exponential backoff; a still-valid cached token outlives a failed
//!   refresh.
//! - ARM calls: connection errors, timeouts, 408, 500, 502, 503 without `Retry-After` and 504 inside
//!   [`ComputeClient`] (3 attempts, exponential backoff); a 401 for a stale token once, with a fresh token.
//! - **Not retried:** throttling. A 429 (or 503 with `Retry-After`) returns [`ArmError::Throttled`] at once and
//!   closes the client's reader (GET) or writer (PATCH) **throttle gate** for that resource kind; until it
//!   opens, calls fail fast without touching the network, like upstream's `retryAfterReader` /
//!   `retryAfterWriter`. The controller decides when to come back.
//! - Authorization and request errors (`AuthorizationFailed`, `LinkedAuthorizationFailed`,
//!   `FailedIdentityOperation`, ...) surface as [`ArmError::Api`] with ARM's code and message; upstream's
//!   erroneous-identity retry and 150-identity chunking belong to the caller.
//!
//! # LRO waiting
//! A PATCH is a long-running operation. [`ComputeClient::patch_identity`] returns when it has finished: it polls
//! `Azure-AsyncOperation` (or a 202's `Location`, or the resource while its `provisioningState` is not
//! terminal), honouring `Retry-After`, else every 5 s, for at most 15 minutes (both configurable). Poll URLs
//! must be on the ARM host, so the token never leaves it.
//!
//! # Invariants
//! - No panics on input-derived data; every parser returns a typed error that names the key, field or file to
//!   fix.
//! - Tokens, secrets and client assertions never reach a log line or an error message; `Debug` of
//!   [`CloudConfig`] and [`AccessToken`] redacts them, and HTTP errors show URLs without their query.
//! - Nothing here talks to `169.254.169.254` unless the caller passes [`DEFAULT_IMDS_URL`].
//!
//! # Construction
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use podid_azure::*;
//! let cfg = CloudConfig::from_file("/etc/kubernetes/azure.json")?;
//! cfg.validate()?;
//! let env = Environment::from_config(&cfg, |k| std::env::var(k).ok())?;
//! let http = HttpClient::new(HttpOptions::default())?;
//! let tokens = TokenSource::new(&cfg, &env, http.clone(), DEFAULT_IMDS_URL)?;
//! let compute = ComputeClient::new(env.clone(), tokens, http, ComputeOptions::default());
//! let vmss = ComputeRef::vmss(&cfg.subscription_id, &cfg.resource_group, "aks-nodepool1-vmss");
//! let identity = compute.get_identity(&vmss).await?;
//! # let _ = identity; Ok(()) }
//! ```

pub mod cache;
pub mod cloud;
pub mod compute;
mod der;
mod form;
pub mod http;
pub mod pod_tokens;
pub mod retry_after;
pub mod token;

pub use crate::cloud::{CloudConfig, CloudError, ENVIRONMENT_FILEPATH_VAR, Environment};
pub use crate::compute::{
    ArmError, ArmObserver, ArmStats, COMPUTE_API_VERSION, ComputeClient, ComputeIdentity,
    ComputeKind, ComputeOptions, ComputeRef,
};
pub use crate::http::{HttpClient, HttpError, HttpOptions, HttpResponse};
pub use crate::retry_after::parse_retry_after;
pub use crate::token::{
    AccessToken, CredentialKind, DEFAULT_IMDS_URL, TokenError, TokenOptions, TokenSource,
};
