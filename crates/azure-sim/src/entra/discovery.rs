//! Token format choice and the discovery documents (OpenID configuration, instance discovery).

use serde_json::{Value, json};

use super::*;
use crate::form::Params;
use crate::world::{Index, World};

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
