//! Access tokens: the claims Entra puts in them, the token response bodies, and the bearer check that ARM and
//! Key Vault run on incoming requests.
//!
//! Tokens follow Entra's two formats. v1 tokens (what Entra issues for ARM, Key Vault, Graph and every app whose
//! `accessTokenAcceptedVersion` is unset or 1, on both endpoints) have `iss = https://sts.windows.net/{tid}/`,
//! `appid`/`appidacr` and `ver = 1.0`; v2 tokens have `iss = https://{host}/{tid}/v2.0`, `azp`/`azpacr` and
//! `ver = 2.0`. Managed identity tokens add `xms_mirid` (the identity's resource ID, or the VM's for a
//! system-assigned identity). All are RS256 JWTs verifiable with the tenant JWKS.

use serde_json::{Value, json};

use crate::jwt::{self, Decoded};
use crate::keys::SigningKey;

/// Who a token is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Tenant ID.
    pub tenant_id: String,
    /// Client (app) ID.
    pub app_id: String,
    /// Object ID of the service principal / managed identity.
    pub object_id: String,
    /// Managed identity resource ID (`xms_mirid`).
    pub mirid: Option<String>,
    /// How the client authenticated: `0` none, `1` secret, `2` certificate or assertion.
    pub acr: &'static str,
}

/// The claims of a new access token.
pub struct Claims<'a> {
    /// The principal.
    pub principal: &'a Principal,
    /// `aud`.
    pub audience: &'a str,
    /// 1 or 2.
    pub version: u8,
    /// Host for the v2 issuer (`login.microsoftonline.com` or the host the client used).
    pub issuer_host: &'a str,
    /// Issue time.
    pub now: i64,
    /// Lifetime in seconds.
    pub lifetime: i64,
    /// Unique token identifier.
    pub uti: &'a str,
}

/// The v1 issuer of a tenant.
pub fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}

/// The v2 issuer of a tenant on a host.
pub fn v2_issuer(host: &str, tid: &str) -> String {
    format!("https://{host}/{tid}/v2.0")
}

impl Claims<'_> {
    /// Build the claim set.
    pub fn to_json(&self) -> Value {
        let p = self.principal;
        let tid = p.tenant_id.as_str();
        let nbf = self.now - 300;
        let mut c = json!({
            "aud": self.audience,
            "iat": nbf,
            "nbf": nbf,
            "exp": self.now + self.lifetime,
            "aio": format!("k2BgYPj{}AA==", &self.uti.chars().take(16).collect::<String>()),
            "idtyp": "app",
            "oid": p.object_id,
            "rh": format!("0.AAAA{}AAAAAAAAAA.", tid.replace('-', "")),
            "sub": p.object_id,
            "tid": tid,
            "uti": self.uti,
        });
        if self.version == 2 {
            c["iss"] = json!(v2_issuer(self.issuer_host, tid));
            c["azp"] = json!(p.app_id);
            c["azpacr"] = json!(p.acr);
            c["ver"] = json!("2.0");
        } else {
            c["iss"] = json!(v1_issuer(tid));
            c["idp"] = json!(v1_issuer(tid));
            c["appid"] = json!(p.app_id);
            c["appidacr"] = json!(p.acr);
            c["ver"] = json!("1.0");
        }
        if let Some(m) = &p.mirid {
            c["xms_mirid"] = json!(m);
        }
        c
    }
}

/// The v2 endpoint's success body.
pub fn v2_response(access_token: &str, expires_in: i64) -> String {
    format!(
        "{{\"token_type\":\"Bearer\",\"expires_in\":{expires_in},\"ext_expires_in\":{expires_in},\"access_token\":\"{access_token}\"}}"
    )
}

/// The v1 endpoint's success body (numbers as strings, as ADAL-era clients expect).
pub fn v1_response(
    access_token: &str,
    expires_in: i64,
    expires_on: i64,
    not_before: i64,
    resource: &str,
) -> String {
    let resource = serde_json::to_string(resource).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\"token_type\":\"Bearer\",\"expires_in\":\"{expires_in}\",\"ext_expires_in\":\"{expires_in}\",\"expires_on\":\"{expires_on}\",\"not_before\":\"{not_before}\",\"resource\":{resource},\"access_token\":\"{access_token}\"}}"
    )
}

/// A bearer token that was checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `tid`.
    pub tenant_id: String,
    /// `oid`.
    pub object_id: String,
    /// `appid` (v1) or `azp` (v2).
    pub app_id: String,
    /// `aud`.
    pub audience: String,
    /// `iss`.
    pub issuer: String,
    /// `exp`.
    pub expires: i64,
}

/// Why a bearer token was refused (ARM and Key Vault word each case their own way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>`.
    BadFormat,
    /// Not a JWT, wrong signature, unknown key, missing claims.
    Invalid(String),
    /// Expired (`exp`, now).
    Expired(i64, i64),
    /// `nbf` in the future.
    NotYetValid(i64),
}

/// Extract the token from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, BearerError> {
    let h = header.ok_or(BearerError::Missing)?.trim();
    if h.is_empty() {
        return Err(BearerError::Missing);
    }
    let (scheme, rest) = h.split_once(' ').ok_or(BearerError::BadFormat)?;
    if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
        return Err(BearerError::BadFormat);
    }
    Ok(rest.trim())
}

/// Verify a token issued by azure-sim (signature, issuer shape, lifetime) and return its caller.
pub fn validate(header: Option<&str>, key: &SigningKey, now: i64) -> Result<Caller, BearerError> {
    let tok = bearer(header)?;
    let t: Decoded = jwt::decode(tok).map_err(|e| BearerError::Invalid(e.to_string()))?;
    key.verify(&t)
        .map_err(|e| BearerError::Invalid(e.to_string()))?;
    let s = |n: &str| t.claim_str(n).map(str::to_string);
    let tid = s("tid").ok_or_else(|| BearerError::Invalid("missing tid".into()))?;
    let iss = s("iss").ok_or_else(|| BearerError::Invalid("missing iss".into()))?;
    let good_iss = iss == v1_issuer(&tid)
        || (iss.starts_with("https://") && iss.ends_with(&format!("/{tid}/v2.0")));
    if !good_iss {
        return Err(BearerError::Invalid(format!("unexpected issuer {iss}")));
    }
    let exp = t
        .claim_time("exp")
        .ok_or_else(|| BearerError::Invalid("missing exp".into()))?;
    if now >= exp {
        return Err(BearerError::Expired(exp, now));
    }
    if let Some(nbf) = t.claim_time("nbf")
        && nbf > now + 300
    {
        return Err(BearerError::NotYetValid(nbf));
    }
    let aud = t
        .audiences()
        .first()
        .map(|s| s.to_string())
        .unwrap_or_default();
    Ok(Caller {
        tenant_id: tid,
        object_id: s("oid").unwrap_or_default(),
        app_id: s("appid").or_else(|| s("azp")).unwrap_or_default(),
        audience: aud,
        issuer: iss,
        expires: exp,
    })
}

/// `2024-10-02T22:05:03.0000000Z` (Entra's seven-digit fraction).
pub fn iso7(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S.0000000Z").to_string(),
        Err(_) => "0001-01-01T00:00:00.0000000Z".into(),
    }
}

/// `2022-10-27 23:39:22Z` (Entra's error timestamp).
pub fn error_timestamp(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        Err(_) => "0001-01-01 00:00:00Z".into(),
    }
}

/// RFC 3339 with seconds (ARM timestamps).
pub fn rfc3339(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.7fZ").to_string(),
        Err(_) => "0001-01-01T00:00:00Z".into(),
    }
}

/// `M/D/YYYY h:mm:ss AM` (ARM's expiry message format).
pub fn arm_time(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => {
            let z = t.to_zoned(jiff::tz::TimeZone::UTC);
            let (h, ampm) = match z.hour() {
                0 => (12, "AM"),
                h @ 1..=11 => (h, "AM"),
                12 => (12, "PM"),
                h => (h - 12, "PM"),
            };
            format!(
                "{}/{}/{} {}:{:02}:{:02} {}",
                z.month(),
                z.day(),
                z.year(),
                h,
                z.minute(),
                z.second(),
                ampm
            )
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            tenant_id: "t1".into(),
            app_id: "a1".into(),
            object_id: "o1".into(),
            mirid: Some("/subscriptions/s/x".into()),
            acr: "2",
        }
    }

    #[test]
    fn claims_v1_and_v2() {
        let p = principal();
        let c = Claims {
            principal: &p,
            audience: "https://vault.azure.net",
            version: 1,
            issuer_host: "login.microsoftonline.com",
            now: 1000,
            lifetime: 3600,
            uti: "abc",
        }
        .to_json();
        assert_eq!(c["iss"], json!("https://sts.windows.net/t1/"));
        assert_eq!(c["appid"], json!("a1"));
        assert_eq!(c["ver"], json!("1.0"));
        assert_eq!(c["exp"], json!(4600));
        assert_eq!(c["xms_mirid"], json!("/subscriptions/s/x"));
        assert!(c.get("azp").is_none());
        let c2 = Claims {
            principal: &p,
            audience: "x",
            version: 2,
            issuer_host: "h:1",
            now: 1000,
            lifetime: 10,
            uti: "abc",
        }
        .to_json();
        assert_eq!(c2["iss"], json!("https://h:1/t1/v2.0"));
        assert_eq!(c2["azp"], json!("a1"));
        assert_eq!(c2["ver"], json!("2.0"));
    }

    #[test]
    fn validate_tokens() {
        let key = SigningKey::generate().expect("key");
        let p = principal();
        let now = 10_000;
        let tok = key.sign(
            &Claims {
                principal: &p,
                audience: "https://management.azure.com/",
                version: 1,
                issuer_host: "x",
                now,
                lifetime: 60,
                uti: "u",
            }
            .to_json(),
        );
        let h = format!("Bearer {tok}");
        let c = validate(Some(&h), &key, now).expect("valid");
        assert_eq!(c.object_id, "o1");
        assert_eq!(c.app_id, "a1");
        assert_eq!(c.audience, "https://management.azure.com/");
        assert!(
            matches!(validate(Some(&h), &key, now + 60), Err(BearerError::Expired(e, n)) if e == now + 60 && n == now + 60)
        );
        assert!(matches!(
            validate(None, &key, now),
            Err(BearerError::Missing)
        ));
        assert!(matches!(
            validate(Some("Basic abc"), &key, now),
            Err(BearerError::BadFormat)
        ));
        assert!(matches!(
            validate(Some("Bearer junk"), &key, now),
            Err(BearerError::Invalid(_))
        ));
        let other = SigningKey::generate().expect("key2");
        assert!(matches!(
            validate(Some(&h), &other, now),
            Err(BearerError::Invalid(_))
        ));
        let future = key.sign(
            &Claims {
                principal: &p,
                audience: "a",
                version: 2,
                issuer_host: "x",
                now: now + 1000,
                lifetime: 60,
                uti: "u",
            }
            .to_json(),
        );
        assert!(matches!(
            validate(Some(&format!("bearer {future}")), &key, now),
            Err(BearerError::NotYetValid(_))
        ));
    }

    #[test]
    fn times_and_bodies() {
        assert_eq!(iso7(0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(error_timestamp(86_400 + 61), "1970-01-02 00:01:01Z");
        assert_eq!(arm_time(13 * 3600), "1/1/1970 1:00:00 PM");
        assert_eq!(arm_time(0), "1/1/1970 12:00:00 AM");
        let v: Value = serde_json::from_str(&v1_response("t", 10, 20, 5, "r")).expect("json");
        assert_eq!(v["expires_in"], json!("10"));
        assert_eq!(v["resource"], json!("r"));
        let v: Value = serde_json::from_str(&v2_response("t", 10)).expect("json");
        assert_eq!(v["expires_in"], json!(10));
    }
}
