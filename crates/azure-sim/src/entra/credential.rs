//! Client credential checks: secrets, certificate and federated assertions, lifetimes, and the principal.

use super::*;
use crate::jwt::{self, Decoded, Jwk, SigError};
use crate::token::{Principal, iso7};
use crate::world::{CertInfo, FederatedCredential, World};

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
