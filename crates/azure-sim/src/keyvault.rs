//! Key Vault data plane decisions: routes, the bearer challenge, RBAC actions, secret bundles and the real error
//! bodies. No IO.
//!
//! An unauthenticated request gets `401` with
//! `WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"` — the
//! challenge SecretClient parses to learn the tenant and the scope. Tokens must be azure-sim tokens for
//! `https://vault.azure.net` from the vault's tenant; the caller then needs a Key Vault data role (Key Vault
//! Secrets User to read, Secrets Officer to write) on the vault, the resource group, the subscription, or the
//! secret itself, else `403 Forbidden` / `ForbiddenByRbac`.
//!
//! Paths: `GET /secrets`, `GET /secrets/{name}` (SecretClient sends `/secrets/{name}/` with an empty version),
//! `GET /secrets/{name}/{version}`, `GET /secrets/{name}/versions`, `PUT /secrets/{name}`.

use serde_json::{Value, json};

use crate::form::decode_path;
use crate::world::{VaultSecret, derived_version, valid_secret_name};

/// The resource (audience) of Key Vault.
pub const RESOURCE: &str = "https://vault.azure.net";
/// RBAC data action to read a secret value.
pub const GET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
/// RBAC data action to write a secret.
pub const SET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/setSecret/action";
/// RBAC data action to list secrets.
pub const READ_METADATA: &str = "Microsoft.KeyVault/vaults/secrets/readMetadata/action";

/// A Key Vault error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`.
    pub code: &'static str,
    /// `error.message`.
    pub message: String,
    /// `error.innererror.code`.
    pub inner: Option<&'static str>,
    /// Send the bearer challenge (401s).
    pub challenge: bool,
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for KvError {}

impl KvError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> KvError {
        KvError {
            status,
            code,
            message: message.into(),
            inner: None,
            challenge: false,
        }
    }

    /// The body.
    pub fn body(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(i) = self.inner {
            e["innererror"] = json!({"code": i});
        }
        json!({"error": e})
    }

    /// 401 without a token.
    pub fn missing_token() -> KvError {
        KvError {
            challenge: true,
            ..KvError::new(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            )
        }
    }

    /// 401 for a token that does not validate.
    pub fn unauthorized(message: impl Into<String>) -> KvError {
        KvError {
            challenge: true,
            ..KvError::new(401, "Unauthorized", message)
        }
    }

    /// 401 for the wrong audience.
    pub fn bad_audience(found: &str) -> KvError {
        KvError::unauthorized(format!(
            "AKV10022: Invalid audience. Expected {RESOURCE}, found: {found}."
        ))
    }

    /// 401 for a token from another tenant.
    pub fn bad_issuer(tid: &str, found: &str) -> KvError {
        KvError::unauthorized(format!(
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tid}/, https://login.microsoftonline.com/{tid}/v2.0, found {found}."
        ))
    }

    /// 401 for an expired token.
    pub fn expired() -> KvError {
        KvError::unauthorized("[TokenExpired] Error validating token: 'S2S12086'.")
    }

    /// 401 for an unreadable or badly signed token.
    pub fn invalid_token() -> KvError {
        KvError::unauthorized("[BearerReadAccessTokenFailed] Error validating token: 'S2S12005'.")
    }

    /// 400 without `api-version`.
    pub fn missing_api_version() -> KvError {
        KvError::new(
            400,
            "BadParameter",
            "The request URI contains an invalid or missing 'api-version' query parameter.",
        )
    }

    /// 400 for a bad name in the URI.
    pub fn bad_name(name: &str) -> KvError {
        KvError::new(
            400,
            "BadParameter",
            format!("The request URI contains an invalid name: {name}"),
        )
    }

    /// 400 for a bad body.
    pub fn bad_parameter(message: impl Into<String>) -> KvError {
        KvError::new(400, "BadParameter", message)
    }

    /// 404 for a missing secret.
    pub fn secret_not_found(name: &str, version: Option<&str>) -> KvError {
        let id = match version {
            Some(v) => format!("{name}/{v}"),
            None => name.to_string(),
        };
        KvError::new(
            404,
            "SecretNotFound",
            format!(
                "A secret with (name/id) {id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
        )
    }

    /// 403 for a disabled secret.
    pub fn disabled() -> KvError {
        KvError::new(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
        )
    }

    /// 404 for an unknown vault host or path.
    pub fn not_found(path: &str) -> KvError {
        KvError::new(
            404,
            "NotFound",
            format!("The requested resource '{path}' was not found."),
        )
    }

    /// 405.
    pub fn method_not_allowed(method: &str) -> KvError {
        KvError::new(
            405,
            "MethodNotAllowed",
            format!("The HTTP method '{method}' is not supported for this request."),
        )
    }

    /// 403 from the RBAC check.
    #[allow(clippy::too_many_arguments)]
    pub fn forbidden(
        app_id: &str,
        oid: &str,
        iss: &str,
        action: &str,
        resource: &str,
        vault: &str,
        location: &str,
    ) -> KvError {
        KvError {
            inner: Some("ForbiddenByRbac"),
            ..KvError::new(
                403,
                "Forbidden",
                format!(
                    "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={app_id};oid={oid};iss={iss}\r\nAction: '{action}'\r\nResource: '{}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {vault};location={location}\r\n",
                    resource.to_ascii_lowercase()
                ),
            )
        }
    }

    /// A transient error injected by a fault.
    pub fn transient(status: u16) -> KvError {
        match status {
            429 => KvError::new(
                429,
                "Throttled",
                "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
            ),
            503 => KvError::new(
                503,
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please retry.",
            ),
            s => KvError::new(
                s,
                "InternalServerError",
                "An unexpected error occurred. Please retry.",
            ),
        }
    }
}

/// The `WWW-Authenticate` challenge.
pub fn challenge(authority: &str, tenant: &str) -> String {
    format!(
        "Bearer authorization=\"{}/{tenant}\", resource=\"{RESOURCE}\"",
        authority.trim_end_matches('/')
    )
}

/// A Key Vault route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/secrets`.
    List,
    /// `/secrets/{name}[/{version}]`.
    Secret {
        /// Name.
        name: String,
        /// Version (`None` = current).
        version: Option<String>,
    },
    /// `/secrets/{name}/versions`.
    Versions {
        /// Name.
        name: String,
    },
}

/// Parse a Key Vault path.
pub fn parse_path(path: &str) -> Result<Route, KvError> {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| decode_path(s).into_owned())
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let route = match s.as_slice() {
        ["secrets"] | ["secrets", ""] => Route::List,
        ["secrets", name] | ["secrets", name, ""] => Route::Secret {
            name: name.to_string(),
            version: None,
        },
        ["secrets", name, "versions"] | ["secrets", name, "versions", ""] => Route::Versions {
            name: name.to_string(),
        },
        ["secrets", name, version] | ["secrets", name, version, ""] => Route::Secret {
            name: name.to_string(),
            version: Some(version.to_string()),
        },
        _ => return Err(KvError::not_found(path)),
    };
    match &route {
        Route::Secret { name, .. } | Route::Versions { name } if !valid_secret_name(name) => {
            Err(KvError::bad_name(name))
        }
        _ => Ok(route),
    }
}

/// Find a secret version: the newest of that name, or the given version.
pub fn find<'a>(
    secrets: &'a [VaultSecret],
    name: &str,
    version: Option<&str>,
) -> Result<&'a VaultSecret, KvError> {
    let mut it = secrets.iter().filter(|s| s.name.eq_ignore_ascii_case(name));
    let found = match version {
        None => it.next_back(),
        Some(v) => it.find(|s| {
            s.version
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(v))
        }),
    };
    found.ok_or_else(|| KvError::secret_not_found(name, version))
}

fn attributes(s: &VaultSecret) -> Value {
    let c = s.created.unwrap_or(1_700_000_000);
    json!({
        "enabled": s.enabled.unwrap_or(true),
        "created": c,
        "updated": c,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    })
}

/// A secret bundle (`GET` / `PUT` response).
pub fn bundle(base: &str, s: &VaultSecret) -> Value {
    let mut v = json!({
        "value": s.value,
        "id": format!("{base}/secrets/{}/{}", s.name, s.version.as_deref().unwrap_or("")),
        "attributes": attributes(s),
        "tags": s.tags,
    });
    if let Some(ct) = &s.content_type {
        v["contentType"] = json!(ct);
    }
    v
}

/// A secret item (list responses; no value).
pub fn item(base: &str, s: &VaultSecret, with_version: bool) -> Value {
    let id = if with_version {
        format!(
            "{base}/secrets/{}/{}",
            s.name,
            s.version.as_deref().unwrap_or("")
        )
    } else {
        format!("{base}/secrets/{}", s.name)
    };
    let mut v = json!({"id": id, "attributes": attributes(s), "tags": s.tags});
    if let Some(ct) = &s.content_type {
        v["contentType"] = json!(ct);
    }
    v
}

/// The list of current secrets (one item per name, newest version).
pub fn list(base: &str, secrets: &[VaultSecret]) -> Value {
    let mut names: Vec<&str> = Vec::new();
    for s in secrets {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&s.name)) {
            names.push(&s.name);
        }
    }
    let items: Vec<Value> = names
        .iter()
        .filter_map(|n| find(secrets, n, None).ok())
        .map(|s| item(base, s, false))
        .collect();
    json!({"value": items, "nextLink": null})
}

/// Versions of one secret.
pub fn versions(base: &str, secrets: &[VaultSecret], name: &str) -> Result<Value, KvError> {
    let items: Vec<Value> = secrets
        .iter()
        .filter(|s| s.name.eq_ignore_ascii_case(name))
        .map(|s| item(base, s, true))
        .collect();
    if items.is_empty() {
        return Err(KvError::secret_not_found(name, None));
    }
    Ok(json!({"value": items, "nextLink": null}))
}

/// Parse a `PUT /secrets/{name}` body into a new version.
pub fn parse_set(name: &str, body: &[u8], now: i64, seq: u64) -> Result<VaultSecret, KvError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| KvError::bad_parameter(format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(KvError::bad_parameter(
            "The request body must be a JSON object.",
        ));
    };
    let value = match m.get("value") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(KvError::bad_parameter("Property value is required."));
        }
        Some(_) => return Err(KvError::bad_parameter("Property value has invalid value.")),
    };
    let content_type = match m.get("contentType") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(KvError::bad_parameter(
                "Property contentType has invalid value.",
            ));
        }
    };
    let tags = match m.get("tags") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(t)) => t
            .iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect::<Option<_>>()
            .ok_or_else(|| KvError::bad_parameter("Property tags has invalid value."))?,
        Some(_) => return Err(KvError::bad_parameter("Property tags has invalid value.")),
    };
    let enabled = match m.get("attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) => match a.get("enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(KvError::bad_parameter(
                    "Property attributes.enabled has invalid value.",
                ));
            }
        },
        Some(_) => {
            return Err(KvError::bad_parameter(
                "Property attributes has invalid value.",
            ));
        }
    };
    Ok(VaultSecret {
        name: name.to_string(),
        version: Some(derived_version(&format!("{name}/{now}/{seq}/{value}"))),
        value,
        content_type,
        enabled,
        tags,
        created: Some(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, value: &str, version: &str) -> VaultSecret {
        VaultSecret {
            name: name.into(),
            value: value.into(),
            version: Some(version.into()),
            created: Some(5),
            ..Default::default()
        }
    }

    #[test]
    fn routes() {
        let table = [
            ("/secrets", Ok(Route::List)),
            (
                "/secrets/db-password",
                Ok(Route::Secret {
                    name: "db-password".into(),
                    version: None,
                }),
            ),
            (
                "/secrets/db-password/",
                Ok(Route::Secret {
                    name: "db-password".into(),
                    version: None,
                }),
            ),
            (
                "/secrets/db-password/abc",
                Ok(Route::Secret {
                    name: "db-password".into(),
                    version: Some("abc".into()),
                }),
            ),
            (
                "/secrets/db-password/versions",
                Ok(Route::Versions {
                    name: "db-password".into(),
                }),
            ),
        ];
        for (p, want) in table {
            assert_eq!(parse_path(p), want, "{p}");
        }
        assert_eq!(parse_path("/keys/x").map_err(|e| e.status), Err(404));
        assert_eq!(
            parse_path("/secrets/bad_name").map_err(|e| e.status),
            Err(400)
        );
        assert_eq!(
            parse_path("/secrets/a/b/c/d").map_err(|e| e.status),
            Err(404)
        );
    }

    #[test]
    fn lookups_and_bodies() {
        let s = vec![
            secret("a", "1", "v1"),
            secret("A", "2", "v2"),
            secret("b", "3", "v3"),
        ];
        assert_eq!(find(&s, "a", None).map(|x| x.value.as_str()), Ok("2"));
        assert_eq!(find(&s, "a", Some("V1")).map(|x| x.value.as_str()), Ok("1"));
        assert_eq!(
            find(&s, "a", Some("zz")).map_err(|e| e.code),
            Err("SecretNotFound")
        );
        let b = bundle(
            "https://kv.vault.azure.net",
            find(&s, "b", None).expect("b"),
        );
        assert_eq!(b["id"], json!("https://kv.vault.azure.net/secrets/b/v3"));
        assert_eq!(b["attributes"]["enabled"], json!(true));
        assert_eq!(list("h", &s)["value"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            versions("h", &s, "a").map(|v| v["value"].as_array().map(Vec::len)),
            Ok(Some(2))
        );
        assert!(versions("h", &s, "zz").is_err());
        assert_eq!(
            challenge("https://login.microsoftonline.com/", "t1"),
            "Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://vault.azure.net\""
        );
        let f = KvError::forbidden(
            "app",
            "oid",
            "iss",
            GET_SECRET,
            "/subscriptions/S/x",
            "kv",
            "westeurope",
        );
        assert_eq!(
            f.body()["error"]["innererror"]["code"],
            json!("ForbiddenByRbac")
        );
        assert!(KvError::missing_token().challenge);
    }

    #[test]
    fn set_bodies() {
        let ok = parse_set("n", br#"{"value":"v","contentType":"text/plain","tags":{"a":"b"},"attributes":{"enabled":false}}"#, 10, 1).expect("ok");
        assert_eq!(ok.value, "v");
        assert_eq!(ok.enabled, Some(false));
        assert_eq!(ok.version.as_ref().map(String::len), Some(32));
        for bad in [
            &b"{"[..],
            b"[]",
            b"{}",
            br#"{"value":1}"#,
            br#"{"value":"v","tags":{"a":1}}"#,
            br#"{"value":"v","attributes":{"enabled":"x"}}"#,
        ] {
            assert_eq!(
                parse_set("n", bad, 0, 0).map_err(|e| e.status),
                Err(400),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(p in ".{0,200}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_path(&p);
            let _ = parse_set("n", &body, 0, 0);
        }
    }
}
