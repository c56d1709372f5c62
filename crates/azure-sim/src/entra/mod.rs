//! Entra ID token endpoint decisions (v1 `/{tenant}/oauth2/token` and v2 `/{tenant}/oauth2/v2.0/token`), its
//! error catalogue, and the discovery documents. No IO: the federated flow is split so the caller fetches the
//! issuer's JWKS between [`match_fic`] and [`check_federated_signature`].
//!
//! Check order for `grant_type=client_credentials`:
//! 1. tenant segment: syntax (AADSTS900023), existence (AADSTS90002), `common`/`organizations` (AADSTS50059);
//! 2. `grant_type` present (AADSTS900144) and supported (AADSTS70003);
//! 3. `client_id` (AADSTS900144), `scope` / `resource` (AADSTS900144, 70011, 28000, 1002012);
//! 4. a credential: none (AADSTS7000218), both kinds (AADSTS90023), assertion type (AADSTS900144 / 9002313);
//! 5. the client in the tenant: an app registration or a user-assigned identity (AADSTS700016);
//! 6. the resource is known (AADSTS500011);
//! 7. the credential:
//!    - secret: matches (AADSTS7000215), not expired (AADSTS7000222);
//!    - assertion: a JWS with a supported `alg` (AADSTS50027) and `iss`/`sub`/`exp` (AADSTS90014). An
//!      assertion whose `iss` is the client ID is a certificate assertion: `x5t#S256` or `x5t` names a
//!      registered certificate (AADSTS700027 key not found / signature / expired key), `sub` = `iss`
//!      (AADSTS50048), `aud` is the tenant's token endpoint (AADSTS700023). Any other assertion is federated:
//!      the identity's federated credentials are matched exactly and case-sensitively on issuer, subject and
//!      audience — AADSTS70021 when it has none at all, else 700211 (issuer), 700213 (subject), 700212
//!      (audience) — then the issuer's OIDC discovery and JWKS are fetched (AADSTS90061 on failure) and the
//!      signature verified (AADSTS700027);
//!    - lifetime: `nbf` (5 minutes of skew) and `exp` (AADSTS700024).
//!
//! Error bodies have Entra's shape: `error`, `error_description` starting with `AADSTSnnnnn:` and ending with
//! trace ID, correlation ID and timestamp, `error_codes`, `timestamp`, `trace_id`, `correlation_id`,
//! `error_uri`.

mod credential;
mod discovery;
mod request;
#[cfg(test)]
mod tests;

pub use credential::*;
pub use discovery::*;
pub use request::*;

use serde_json::{Value, json};

use crate::token::error_timestamp;

/// The JWT bearer client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Hosts Entra answers instance discovery for without complaint.
pub const KNOWN_AUTHORITY_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
];
/// Allowed clock skew for `nbf`.
pub const SKEW: i64 = 300;
const FIC_DOC: &str = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

/// An Entra error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    /// HTTP status.
    pub status: u16,
    /// OAuth `error`.
    pub error: &'static str,
    /// AADSTS code.
    pub code: u32,
    /// Message without the `AADSTSn:` prefix.
    pub message: String,
}

impl std::fmt::Display for EntraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AADSTS{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EntraError {}

impl EntraError {
    /// An error.
    pub fn new(
        status: u16,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> EntraError {
        EntraError {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    /// The JSON body.
    pub fn body(&self, trace_id: &str, correlation_id: &str, now: i64) -> Value {
        let ts = error_timestamp(now);
        json!({
            "error": self.error,
            "error_description": format!("AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {ts}", self.code, self.message),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }

    /// AADSTS900144: a required parameter is missing.
    pub fn missing_param(name: &str) -> EntraError {
        EntraError::new(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// AADSTS900561: the token endpoint only takes POST.
    pub fn post_only(method: &str) -> EntraError {
        EntraError::new(
            400,
            "invalid_request",
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
            ),
        )
    }

    /// AADSTS90002: unknown tenant.
    pub fn tenant_not_found(t: &str) -> EntraError {
        EntraError::new(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{t}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    /// A 500 the way Entra words a transient failure (fault injection).
    pub fn temporarily_unavailable(status: u16) -> EntraError {
        EntraError::new(
            status,
            "temporarily_unavailable",
            50196,
            "The server is temporarily unable to service the request. Please retry.",
        )
    }
}
