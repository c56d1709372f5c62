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

use serde_json::{Value, json};

use crate::form::Params;
use crate::jwt::{self, Decoded, Jwk, SigError};
use crate::token::{Principal, error_timestamp, iso7};
use crate::world::{CertInfo, FederatedCredential, Index, World};

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

/// The tenant a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantPath {
    /// A tenant of the world (index).
    Tenant(usize),
    /// `common`, `organizations` or `consumers`.
    Multi(&'static str),
}

fn dns_like(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Resolve the tenant segment of an Entra URL.
pub fn resolve_tenant(ix: &Index, seg: &str) -> Result<TenantPath, EntraError> {
    let lower = seg.to_ascii_lowercase();
    for m in ["common", "organizations", "consumers"] {
        if lower == m {
            return Ok(TenantPath::Multi(m));
        }
    }
    if !(crate::armid::is_guid(seg) || dns_like(seg)) {
        return Err(EntraError::new(
            400,
            "invalid_request",
            900023,
            format!(
                "Specified tenant identifier '{seg}' is neither a valid DNS name, nor a valid external domain."
            ),
        ));
    }
    ix.tenant(seg)
        .map(TenantPath::Tenant)
        .ok_or_else(|| EntraError::tenant_not_found(seg))
}

/// A credential presented by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `client_secret` (or HTTP Basic).
    Secret(String),
    /// `client_assertion`.
    Assertion(String),
}

/// A parsed client_credentials request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `client_id`.
    pub client_id: String,
    /// The resource (scope without `/.default`, or v1 `resource`).
    pub resource: String,
    /// The credential.
    pub credential: Credential,
}

const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];

/// The resource named by a v2 `scope`.
pub fn scope_resource(scope: &str) -> Result<String, EntraError> {
    let parts: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(&s.to_ascii_lowercase().as_str()))
        .collect();
    match parts.as_slice() {
        [] => Err(EntraError::new(
            400,
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter.",
        )),
        [one] => match one.strip_suffix("/.default") {
            Some(r) if !r.is_empty() => Ok(r.to_string()),
            _ => Err(EntraError::new(
                400,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {one} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            )),
        },
        _ => Err(EntraError::new(
            400,
            "invalid_scope",
            28000,
            format!(
                "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
            ),
        )),
    }
}

/// Parse and check the form of a token request (steps 2–4 of the module docs).
pub fn parse_token_request(
    v2: bool,
    form: &Params,
    basic: Option<(String, String)>,
) -> Result<TokenRequest, EntraError> {
    let grant = form
        .non_empty("grant_type")
        .ok_or_else(|| EntraError::missing_param("grant_type"))?;
    if grant != "client_credentials" {
        return Err(EntraError::new(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ));
    }
    let client_id = form
        .non_empty("client_id")
        .map(str::to_string)
        .or_else(|| {
            basic
                .as_ref()
                .map(|(u, _)| u.clone())
                .filter(|u| !u.is_empty())
        })
        .ok_or_else(|| EntraError::missing_param("client_id"))?;
    let resource = if v2 {
        scope_resource(
            form.non_empty("scope")
                .ok_or_else(|| EntraError::missing_param("scope"))?,
        )?
    } else {
        form.non_empty("resource")
            .ok_or_else(|| EntraError::missing_param("resource"))?
            .to_string()
    };
    let secret = form
        .non_empty("client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, p)| p).filter(|p| !p.is_empty()));
    let assertion = form.non_empty("client_assertion");
    let credential = match (secret, assertion) {
        (None, None) => {
            return Err(EntraError::new(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(EntraError::new(
                400,
                "invalid_request",
                90023,
                "Only one of 'client_secret' or 'client_assertion' may be presented.",
            ));
        }
        (Some(s), None) => Credential::Secret(s),
        (None, Some(a)) => {
            match form.non_empty("client_assertion_type") {
                None => return Err(EntraError::missing_param("client_assertion_type")),
                Some(t) if t != JWT_BEARER => {
                    return Err(EntraError::new(
                        400,
                        "invalid_request",
                        9002313,
                        "Invalid request. Request is malformed or invalid.",
                    ));
                }
                Some(_) => {}
            }
            Credential::Assertion(a.to_string())
        }
    };
    Ok(TokenRequest {
        client_id,
        resource,
        credential,
    })
}

/// A client that can get tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRef {
    /// An app registration (index).
    App(usize),
    /// A user-assigned identity (index), through its federated credentials.
    Uami(usize),
}

/// How a tenant is named in messages.
pub fn tenant_name(w: &World, tenant: usize) -> String {
    let t = &w.tenants[tenant];
    t.display_name
        .clone()
        .or_else(|| t.domains.first().cloned())
        .unwrap_or_else(|| t.id.clone())
}

/// Find the client in the tenant (AADSTS700016).
pub fn find_client(
    w: &World,
    ix: &Index,
    tenant: usize,
    client_id: &str,
) -> Result<ClientRef, EntraError> {
    if let Some(a) = ix.app(tenant, client_id) {
        return Ok(ClientRef::App(a));
    }
    if let Some(u) = ix.uami_by_client_id(client_id) {
        let sub = w.user_assigned_identities[u]
            .subscription_id
            .as_deref()
            .unwrap_or("");
        if w.tenant_of_subscription(sub) == Some(w.tenants[tenant].id.as_str()) {
            return Ok(ClientRef::Uami(u));
        }
    }
    Err(EntraError::new(
        400,
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            tenant_name(w, tenant)
        ),
    ))
}

/// Check that Entra knows the resource (AADSTS500011).
pub fn check_resource(
    w: &World,
    ix: &Index,
    tenant: usize,
    resource: &str,
) -> Result<(), EntraError> {
    if ix.known_resource(resource) {
        return Ok(());
    }
    Err(EntraError::new(
        400,
        "invalid_resource",
        500011,
        format!(
            "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
            tenant_name(w, tenant)
        ),
    ))
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Check a client secret (AADSTS7000215 / 7000222).
pub fn check_secret(
    w: &World,
    client: ClientRef,
    client_id: &str,
    secret: &str,
    now: i64,
) -> Result<(), EntraError> {
    let invalid = || {
        EntraError::new(
            401,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    };
    let ClientRef::App(a) = client else {
        return Err(invalid());
    };
    let app = &w.applications[a];
    let mut any = false;
    for s in &app.secrets {
        if ct_eq(s.value.as_bytes(), secret.as_bytes()) {
            any = true;
            let expired = s
                .expires_on
                .as_deref()
                .and_then(|e| e.parse::<jiff::Timestamp>().ok())
                .is_some_and(|e| e.as_second() <= now);
            if !expired {
                return Ok(());
            }
        }
    }
    if any {
        return Err(EntraError::new(
            401,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        ));
    }
    Err(invalid())
}

/// AADSTS50027.
pub fn invalid_jwt() -> EntraError {
    EntraError::new(
        400,
        "invalid_request",
        50027,
        "JWT token is invalid or malformed.",
    )
}

fn missing_field(f: &str) -> EntraError {
    EntraError::new(
        400,
        "invalid_request",
        90014,
        format!(
            "The required field '{f}' is missing from the credential. Ensure that you have all the necessary parameters for the login request."
        ),
    )
}

/// The two kinds of client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionKind {
    /// Signed by the app's own certificate (`iss` = client ID).
    Certificate,
    /// Issued by an external OIDC issuer (workload identity federation).
    Federated,
}

/// Decode an assertion and decide its kind.
pub fn classify(assertion: &str, client_id: &str) -> Result<(Decoded, AssertionKind), EntraError> {
    let t = jwt::decode(assertion).map_err(|_| invalid_jwt())?;
    jwt::token_alg(&t).map_err(|_| invalid_jwt())?;
    let iss = t.claim_str("iss").ok_or_else(|| missing_field("iss"))?;
    if t.claim_str("sub").is_none() {
        return Err(missing_field("sub"));
    }
    if t.claim_time("exp").is_none() {
        return Err(missing_field("exp"));
    }
    let kind = if iss.eq_ignore_ascii_case(client_id) {
        AssertionKind::Certificate
    } else {
        AssertionKind::Federated
    };
    Ok((t, kind))
}

/// AADSTS700024: the assertion's `nbf`/`exp` window does not contain `now`.
pub fn check_lifetime(t: &Decoded, now: i64) -> Result<(), EntraError> {
    let exp = t.claim_time("exp").unwrap_or(0);
    let nbf = t.claim_time("nbf");
    let too_early = nbf.is_some_and(|n| n > now + SKEW);
    if now >= exp || too_early {
        return Err(EntraError::new(
            401,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                iso7(now),
                iso7(nbf.unwrap_or(0)),
                iso7(exp)
            ),
        ));
    }
    Ok(())
}

fn key_not_found(thumb: &str, client_id: &str) -> EntraError {
    EntraError::new(
        401,
        "invalid_client",
        700027,
        format!(
            "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{client_id}']"
        ),
    )
}

fn bad_signature(reason: &str, thumb: &str) -> EntraError {
    EntraError::new(
        401,
        "invalid_client",
        700027,
        format!(
            "Client assertion failed signature validation. [Reason - {reason}, Thumbprint of key used by client: '{thumb}']"
        ),
    )
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Check a certificate-signed client assertion (everything but the lifetime).
pub fn check_cert_assertion(
    t: &Decoded,
    certs: &[CertInfo],
    client_id: &str,
    tenant_names: &[&str],
    now: i64,
) -> Result<(), EntraError> {
    // MSAL for Python pads its thumbprints (`base64.urlsafe_b64encode`); Entra accepts both spellings.
    let s256 = t.header_str("x5t#S256").map(|s| s.trim_end_matches('='));
    let s1 = t.header_str("x5t").map(|s| s.trim_end_matches('='));
    let thumb = s1
        .and_then(jwt::b64url_decode)
        .or_else(|| s256.and_then(jwt::b64url_decode))
        .map(|b| hex_upper(&b))
        .unwrap_or_default();
    if s256.is_none() && s1.is_none() {
        return Err(EntraError::new(
            400,
            "invalid_request",
            50027,
            "Invalid JWT token. No certificate thumbprint specified in token header.",
        ));
    }
    let cert = certs
        .iter()
        .find(|c| s256 == Some(c.x5t_s256.as_str()) || s1 == Some(c.x5t.as_str()))
        .ok_or_else(|| key_not_found(&thumb, client_id))?;
    match jwt::verify_spki(t, &cert.spki) {
        Ok(()) => {}
        Err(SigError::Alg(_)) => return Err(invalid_jwt()),
        Err(_) => {
            return Err(bad_signature(
                "Key was found, but use of the key to verify the signature failed.",
                &cert.thumbprint_hex,
            ));
        }
    }
    if now < cert.not_before || now > cert.not_after {
        return Err(bad_signature(
            "The key used is expired.",
            &cert.thumbprint_hex,
        ));
    }
    if t.claim_str("sub") != t.claim_str("iss") {
        return Err(EntraError::new(
            401,
            "invalid_client",
            50048,
            "Subject must match the issuer claim in the client assertion.",
        ));
    }
    let aud_ok = t.audiences().iter().any(|a| {
        let path = a
            .strip_prefix("https://")
            .and_then(|r| r.split_once('/'))
            .map(|(_, p)| p.trim_end_matches('/'))
            .unwrap_or("");
        let mut segs = path.splitn(2, '/');
        let (tenant, rest) = (segs.next().unwrap_or(""), segs.next().unwrap_or(""));
        tenant_names.iter().any(|n| n.eq_ignore_ascii_case(tenant))
            && matches!(rest, "oauth2/v2.0/token" | "oauth2/token" | "v2.0" | "")
    });
    if !aud_ok {
        return Err(EntraError::new(
            401,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    Ok(())
}

/// Match a federated assertion against an identity's credentials (exact, case-sensitive).
pub fn match_fic<'a>(
    fics: &'a [FederatedCredential],
    t: &Decoded,
) -> Result<&'a FederatedCredential, EntraError> {
    let iss = t.claim_str("iss").unwrap_or("");
    let sub = t.claim_str("sub").unwrap_or("");
    let auds = t.audiences();
    let aud_shown = auds.join(",");
    if fics.is_empty() {
        return Err(EntraError::new(
            400,
            "invalid_request",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud_shown}'. {FIC_DOC}"
            ),
        ));
    }
    let by_issuer: Vec<&FederatedCredential> = fics.iter().filter(|f| f.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(EntraError::new(
            401,
            "invalid_client",
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FIC_DOC}"
            ),
        ));
    }
    let by_subject: Vec<&FederatedCredential> =
        by_issuer.into_iter().filter(|f| f.subject == sub).collect();
    if by_subject.is_empty() {
        return Err(EntraError::new(
            401,
            "invalid_client",
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FIC_DOC}"
            ),
        ));
    }
    by_subject
        .into_iter()
        .find(|f| f.audiences.iter().any(|a| auds.contains(&a.as_str())))
        .ok_or_else(|| {
            EntraError::new(
                401,
                "invalid_client",
                700212,
                format!("No matching federated identity record found for presented assertion audience '{aud_shown}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FIC_DOC}"),
            )
        })
}

/// AADSTS90061: the issuer's discovery document or JWKS could not be fetched.
pub fn oidc_fetch_failed() -> EntraError {
    EntraError::new(
        400,
        "invalid_request",
        90061,
        "Request to External OIDC endpoint failed.",
    )
}

/// Outcome of a federated signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FederatedSig {
    /// Verified.
    Ok,
    /// No key with the token's `kid` (the caller may refetch the JWKS once).
    KeyNotFound,
    /// Rejected.
    Err(EntraError),
}

/// Verify a federated assertion's signature with the issuer's keys.
pub fn check_federated_signature(t: &Decoded, keys: &[Jwk]) -> FederatedSig {
    let kid = t.header_str("kid");
    let key = match kid {
        Some(k) => keys.iter().find(|j| j.kid.as_deref() == Some(k)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    };
    let Some(key) = key else {
        return FederatedSig::KeyNotFound;
    };
    match jwt::verify_jwk(t, key) {
        Ok(()) => FederatedSig::Ok,
        Err(SigError::Alg(_)) => FederatedSig::Err(invalid_jwt()),
        Err(SigError::Key) => FederatedSig::Err(bad_signature(
            "Key was found, but use of the key to verify the signature failed.",
            kid.unwrap_or(""),
        )),
        Err(SigError::Mismatch) => FederatedSig::Err(bad_signature(
            "The provided signature value did not match the expected signature value.",
            kid.unwrap_or(""),
        )),
    }
}

/// The error for a `kid` the issuer does not publish.
pub fn federated_key_not_found(t: &Decoded) -> EntraError {
    bad_signature("The key was not found.", t.header_str("kid").unwrap_or(""))
}

/// The principal a client's tokens are issued to.
pub fn principal(w: &World, client: ClientRef, acr: &'static str) -> Principal {
    match client {
        ClientRef::App(a) => {
            let app = &w.applications[a];
            Principal {
                tenant_id: app.tenant_id.clone().unwrap_or_default(),
                app_id: app.app_id.clone().unwrap_or_default(),
                object_id: app.object_id.clone().unwrap_or_default(),
                mirid: None,
                acr,
            }
        }
        ClientRef::Uami(u) => {
            let id = &w.user_assigned_identities[u];
            Principal {
                tenant_id: w
                    .tenant_of_subscription(id.subscription_id.as_deref().unwrap_or(""))
                    .unwrap_or("")
                    .to_string(),
                app_id: id.client_id.clone().unwrap_or_default(),
                object_id: id.principal_id.clone().unwrap_or_default(),
                mirid: Some(id.id()),
                acr,
            }
        }
    }
}

/// The federated credentials of a client.
pub fn client_fics(w: &World, client: ClientRef) -> &[FederatedCredential] {
    match client {
        ClientRef::App(a) => &w.applications[a].federated_identity_credentials,
        ClientRef::Uami(u) => &w.user_assigned_identities[u].federated_identity_credentials,
    }
}

/// The token format and `aud` for a resource: v2 with the app ID as audience when the resource is an app
/// registration with `accessTokenVersion: 2`, else v1 with the resource as requested.
pub fn token_format(w: &World, ix: &Index, resource: &str) -> (u8, String) {
    if let Some(a) = ix.resource_app(resource) {
        let app = &w.applications[a];
        if app.access_token_version == Some(2) {
            return (2, app.app_id.clone().unwrap_or_default());
        }
    }
    (1, resource.to_string())
}

/// `/{tenant}/v2.0/.well-known/openid-configuration`.
pub fn openid_configuration_v2(host: &str, tenant_seg: &str, tid: &str) -> Value {
    let base = format!("https://{host}/{tenant_seg}");
    json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("https://{host}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    })
}

/// `/{tenant}/.well-known/openid-configuration` (v1).
pub fn openid_configuration_v1(host: &str, tenant_seg: &str, tid: &str) -> Value {
    let base = format!("https://{host}/{tenant_seg}");
    json!({
        "token_endpoint": format!("{base}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("https://{host}/common/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": format!("https://sts.windows.net/{tid}/"),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
        "check_session_iframe": format!("{base}/oauth2/checksession"),
        "userinfo_endpoint": format!("{base}/openid/userinfo"),
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    })
}

/// `/common/discovery/instance?authorization_endpoint=...&api-version=1.1`. `own_hosts` are the host names
/// azure-sim itself answers on (they count as valid instances besides Entra's public aliases).
pub fn instance_discovery(q: &Params, own_hosts: &[String]) -> Result<Value, EntraError> {
    let ep = q
        .non_empty("authorization_endpoint")
        .ok_or_else(|| EntraError::missing_param("authorization_endpoint"))?;
    let invalid = || {
        EntraError::new(
            400,
            "invalid_instance",
            50049,
            "Unknown or invalid instance.",
        )
    };
    let rest = ep.strip_prefix("https://").ok_or_else(invalid)?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
        .to_ascii_lowercase();
    let known = KNOWN_AUTHORITY_HOSTS.contains(&host.as_str())
        || own_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host));
    if !known || authority.is_empty() {
        return Err(invalid());
    }
    let tenant = path
        .split('/')
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    let mut metadata = vec![json!({
        "preferred_network": "login.microsoftonline.com",
        "preferred_cache": "login.windows.net",
        "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]
    })];
    if !KNOWN_AUTHORITY_HOSTS.contains(&host.as_str()) {
        metadata.push(json!({"preferred_network": authority, "preferred_cache": authority, "aliases": [authority]}));
    }
    Ok(json!({
        "tenant_discovery_endpoint": format!("https://{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": metadata
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::World;

    fn world() -> (World, Index) {
        let w = World::from_text(
            r#"
tenants: [{id: 11111111-1111-1111-1111-111111111111, domains: [contoso.onmicrosoft.com], displayName: Contoso}]
subscriptions: [{id: s1}]
userAssignedIdentities: [{name: id1, resourceGroup: rg, federatedIdentityCredentials: [
  {name: fic1, issuer: "https://issuer.example", subject: "system:serviceaccount:ns:sa"},
  {name: fic2, issuer: "https://issuer.example", subject: "system:serviceaccount:ns:other", audiences: [custom]}]}]
applications:
  - displayName: app
    secrets: [{value: good}, {value: old, expiresOn: "2020-01-01T00:00:00Z"}]
    identifierUris: [api://my-api]
    accessTokenVersion: 2
  - displayName: nofic
"#,
        )
        .and_then(World::normalize)
        .expect("world");
        let ix = Index::build(&w);
        (w, ix)
    }

    fn token(header: Value, claims: Value) -> Decoded {
        let h = jwt::b64url(header.to_string().as_bytes());
        let p = jwt::b64url(claims.to_string().as_bytes());
        jwt::decode(&format!("{h}.{p}.c2ln")).expect("decode")
    }

    #[test]
    fn tenants() {
        let (_, ix) = world();
        assert_eq!(
            resolve_tenant(&ix, "Contoso.onmicrosoft.com"),
            Ok(TenantPath::Tenant(0))
        );
        assert_eq!(
            resolve_tenant(&ix, "common"),
            Ok(TenantPath::Multi("common"))
        );
        assert_eq!(
            resolve_tenant(&ix, "bad tenant!").map_err(|e| e.code),
            Err(900023)
        );
        assert_eq!(
            resolve_tenant(&ix, "22222222-2222-2222-2222-222222222222").map_err(|e| e.code),
            Err(90002)
        );
        assert_eq!(
            resolve_tenant(&ix, "nobody.example").map_err(|e| e.code),
            Err(90002)
        );
    }

    #[test]
    fn request_parsing() {
        type Case<'a> = (bool, &'a str, Result<(&'a str, &'a str), u32>);
        let table: &[Case] = &[
            (true, "", Err(900144)),
            (true, "grant_type=password", Err(70003)),
            (true, "grant_type=client_credentials", Err(900144)),
            (
                true,
                "grant_type=client_credentials&client_id=c",
                Err(900144),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=openid",
                Err(70011),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=https://vault.azure.net/user_impersonation",
                Err(1002012),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=a/.default+b/.default",
                Err(28000),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=https://vault.azure.net/.default",
                Err(7000218),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=x/.default&client_secret=s&client_assertion=a",
                Err(90023),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=x/.default&client_assertion=a",
                Err(900144),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=x/.default&client_assertion=a&client_assertion_type=saml",
                Err(9002313),
            ),
            (
                true,
                "grant_type=client_credentials&client_id=c&scope=https://management.azure.com//.default+openid&client_secret=s",
                Ok(("c", "https://management.azure.com/")),
            ),
            (
                false,
                "grant_type=client_credentials&client_id=c&client_secret=s",
                Err(900144),
            ),
            (
                false,
                "grant_type=client_credentials&client_id=c&client_secret=s&resource=https://management.azure.com/",
                Ok(("c", "https://management.azure.com/")),
            ),
        ];
        for (v2, form, want) in table {
            let got = parse_token_request(*v2, &Params::parse(form.as_bytes()), None);
            match (got, want) {
                (Ok(r), Ok((c, res))) => {
                    assert_eq!(r.client_id, *c, "{form}");
                    assert_eq!(r.resource, *res, "{form}");
                }
                (Err(e), Err(code)) => assert_eq!(e.code, *code, "{form}: {e}"),
                (got, want) => panic!("{form}: got {got:?}, want {want:?}"),
            }
        }
        let basic = parse_token_request(
            true,
            &Params::parse(b"grant_type=client_credentials&scope=x/.default"),
            Some(("cid".into(), "pw".into())),
        )
        .expect("basic");
        assert_eq!(basic.client_id, "cid");
        assert_eq!(basic.credential, Credential::Secret("pw".into()));
    }

    #[test]
    fn clients_and_secrets() {
        let (w, ix) = world();
        let app = w.applications[0].app_id.clone().unwrap_or_default();
        let c = find_client(&w, &ix, 0, &app.to_ascii_uppercase()).expect("app");
        assert_eq!(c, ClientRef::App(0));
        let uami = w.user_assigned_identities[0]
            .client_id
            .clone()
            .unwrap_or_default();
        assert_eq!(find_client(&w, &ix, 0, &uami), Ok(ClientRef::Uami(0)));
        let e = find_client(&w, &ix, 0, "nobody").expect_err("unknown");
        assert_eq!(
            (e.code, e.status, e.error),
            (700016, 400, "unauthorized_client")
        );
        assert!(e.message.contains("'Contoso'"));
        assert_eq!(check_secret(&w, c, &app, "good", 1_700_000_000), Ok(()));
        assert_eq!(
            check_secret(&w, c, &app, "bad", 0).map_err(|e| (e.code, e.status)),
            Err((7000215, 401))
        );
        assert_eq!(
            check_secret(&w, c, &app, "old", 1_700_000_000).map_err(|e| e.code),
            Err(7000222)
        );
        assert_eq!(
            check_secret(&w, ClientRef::Uami(0), &uami, "good", 0).map_err(|e| e.code),
            Err(7000215)
        );
        assert_eq!(
            check_resource(&w, &ix, 0, "https://nope.example").map_err(|e| e.code),
            Err(500011)
        );
        assert_eq!(check_resource(&w, &ix, 0, "api://my-api"), Ok(()));
        assert_eq!(token_format(&w, &ix, "api://my-api"), (2, app.clone()));
        assert_eq!(
            token_format(&w, &ix, "https://vault.azure.net"),
            (1, "https://vault.azure.net".into())
        );
    }

    #[test]
    fn fic_matching() {
        let (w, _) = world();
        let fics = &w.user_assigned_identities[0].federated_identity_credentials;
        let t = |iss: &str, sub: &str, aud: Value| {
            token(
                json!({"alg":"RS256"}),
                json!({"iss": iss, "sub": sub, "aud": aud, "exp": 1}),
            )
        };
        let cases = [
            (
                t(
                    "https://issuer.example",
                    "system:serviceaccount:ns:sa",
                    json!(["api://AzureADTokenExchange"]),
                ),
                Ok("fic1"),
            ),
            (
                t(
                    "https://issuer.example",
                    "system:serviceaccount:ns:other",
                    json!("custom"),
                ),
                Ok("fic2"),
            ),
            (
                t(
                    "https://issuer.example/",
                    "system:serviceaccount:ns:sa",
                    json!("api://AzureADTokenExchange"),
                ),
                Err(700211),
            ),
            (
                t(
                    "https://ISSUER.example",
                    "system:serviceaccount:ns:sa",
                    json!("api://AzureADTokenExchange"),
                ),
                Err(700211),
            ),
            (
                t(
                    "https://issuer.example",
                    "system:serviceaccount:NS:sa",
                    json!("api://AzureADTokenExchange"),
                ),
                Err(700213),
            ),
            (
                t(
                    "https://issuer.example",
                    "system:serviceaccount:ns:sa",
                    json!(["other"]),
                ),
                Err(700212),
            ),
        ];
        for (tok, want) in cases {
            assert_eq!(
                match_fic(fics, &tok)
                    .map(|f| f.name.as_str())
                    .map_err(|e| e.code),
                want
            );
        }
        let none = match_fic(&[], &t("i", "s", json!("a"))).expect_err("none");
        assert_eq!((none.code, none.status), (70021, 400));
        assert!(none.message.contains("Assertion Issuer: 'i'"));
    }

    #[test]
    fn classify_and_lifetime() {
        let none = token(json!({"alg":"none"}), json!({"iss":"c","sub":"c","exp":1}));
        let s = format!(
            "{}.{}.",
            jwt::b64url(none.header.to_string().as_bytes()),
            jwt::b64url(none.claims.to_string().as_bytes())
        );
        assert_eq!(
            classify(&s, "c").map(|x| x.1).map_err(|e| e.code),
            Err(50027)
        );
        assert_eq!(
            classify("garbage", "c").map(|x| x.1).map_err(|e| e.code),
            Err(50027)
        );
        let mk = |claims: Value| {
            let h = jwt::b64url(br#"{"alg":"RS256"}"#);
            format!("{h}.{}.c2ln", jwt::b64url(claims.to_string().as_bytes()))
        };
        assert_eq!(
            classify(&mk(json!({"iss":"C","sub":"c","exp":1})), "c").map(|x| x.1),
            Ok(AssertionKind::Certificate)
        );
        assert_eq!(
            classify(&mk(json!({"iss":"https://i","sub":"s","exp":1})), "c").map(|x| x.1),
            Ok(AssertionKind::Federated)
        );
        assert_eq!(
            classify(&mk(json!({"sub":"s","exp":1})), "c")
                .map(|x| x.1)
                .map_err(|e| e.code),
            Err(90014)
        );
        assert_eq!(
            classify(&mk(json!({"iss":"i","exp":1})), "c")
                .map(|x| x.1)
                .map_err(|e| e.code),
            Err(90014)
        );
        assert_eq!(
            classify(&mk(json!({"iss":"i","sub":"s"})), "c")
                .map(|x| x.1)
                .map_err(|e| e.code),
            Err(90014)
        );
        let lt = |nbf: Option<i64>, exp: i64, now: i64| {
            let mut c = json!({"exp": exp});
            if let Some(n) = nbf {
                c["nbf"] = json!(n);
            }
            check_lifetime(&token(json!({"alg":"RS256"}), c), now).map_err(|e| e.code)
        };
        assert_eq!(lt(Some(100), 200, 150), Ok(()));
        assert_eq!(lt(Some(100), 200, 200), Err(700024));
        assert_eq!(lt(Some(1000), 2000, 600), Err(700024));
        assert_eq!(lt(Some(1000), 2000, 701), Ok(()));
        assert_eq!(lt(None, 2000, 1), Ok(()));
        let e = check_lifetime(
            &token(json!({"alg":"RS256"}), json!({"exp": 10, "nbf": 5})),
            20,
        )
        .expect_err("expired");
        assert!(e.message.contains("Current time: 1970-01-01T00:00:20.0000000Z, assertion valid from 1970-01-01T00:00:05.0000000Z, expiry time of assertion 1970-01-01T00:00:10.0000000Z"));
        assert_eq!((e.status, e.error), (401, "invalid_client"));
    }

    #[test]
    fn error_body_shape() {
        let e = EntraError::missing_param("grant_type");
        let b = e.body("t-1", "c-1", 0);
        assert_eq!(b["error"], json!("invalid_request"));
        assert_eq!(b["error_codes"], json!([900144]));
        let d = b["error_description"].as_str().unwrap_or("");
        assert!(d.starts_with(
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'."
        ));
        assert!(d.ends_with("Trace ID: t-1 Correlation ID: c-1 Timestamp: 1970-01-01 00:00:00Z"));
        assert_eq!(b["timestamp"], json!("1970-01-01 00:00:00Z"));
        assert_eq!(b["trace_id"], json!("t-1"));
        assert_eq!(b["correlation_id"], json!("c-1"));
    }

    #[test]
    fn discovery_docs() {
        let d = openid_configuration_v2("h:1", "contoso.onmicrosoft.com", "t");
        assert_eq!(d["issuer"], json!("https://h:1/t/v2.0"));
        assert_eq!(
            d["token_endpoint"],
            json!("https://h:1/contoso.onmicrosoft.com/oauth2/v2.0/token")
        );
        let own = vec!["127.0.0.1".to_string()];
        let q = Params::parse(b"authorization_endpoint=https%3A%2F%2F127.0.0.1%3A8443%2Ft1%2Foauth2%2Fv2.0%2Fauthorize&api-version=1.1");
        let v = instance_discovery(&q, &own).expect("known");
        assert_eq!(
            v["tenant_discovery_endpoint"],
            json!("https://127.0.0.1:8443/t1/v2.0/.well-known/openid-configuration")
        );
        let q = Params::parse(
            b"authorization_endpoint=https%3A%2F%2Fevil.example%2Ft1%2Foauth2%2Fv2.0%2Fauthorize",
        );
        assert_eq!(
            instance_discovery(&q, &own).map_err(|e| (e.code, e.error)),
            Err((50049, "invalid_instance"))
        );
        assert_eq!(
            instance_discovery(&Params::default(), &own).map_err(|e| e.code),
            Err(900144)
        );
    }

    proptest::proptest! {
        #[test]
        fn token_requests_never_panic(form in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), tenant in ".{0,60}", scope in ".{0,60}") {
            let (w, ix) = world();
            let p = Params::parse(&form);
            let _ = parse_token_request(true, &p, None);
            let _ = parse_token_request(false, &p, Some(("a".into(), "b".into())));
            let _ = resolve_tenant(&ix, &tenant);
            let _ = scope_resource(&scope);
            let _ = instance_discovery(&p, &[]);
            if let Ok((t, _)) = classify(&String::from_utf8_lossy(&form), "c") {
                let _ = check_lifetime(&t, 0);
                let _ = match_fic(&w.user_assigned_identities[0].federated_identity_credentials, &t);
                let _ = check_cert_assertion(&t, &[], "c", &["t"], 0);
                let _ = check_federated_signature(&t, &[]);
            }
        }
    }
}
