//! Tenant resolution, token request parsing, and finding the client and resource.

use super::*;
use crate::form::Params;
use crate::world::{Index, World};

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
