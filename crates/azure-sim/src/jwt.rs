//! Compact JWS/JWT: decoding, signing (RS256) and signature verification against JWKs or X.509 keys.
//!
//! Decoding is strict about structure (three base64url segments, JSON objects for header and claims) and never
//! panics. Verification supports what Entra accepts in client assertions and what Kubernetes issuers sign with:
//! RS256/384/512, PS256/384/512, ES256/384. `alg: none` and anything else are rejected before any key lookup.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url, tolerating padding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Standard base64 (for `x5c`).
pub fn b64std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decode standard base64.
pub fn b64std_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// Signature algorithms understood in JWS headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    Rs512,
    /// RSASSA-PSS SHA-256.
    Ps256,
    /// RSASSA-PSS SHA-384.
    Ps384,
    /// RSASSA-PSS SHA-512.
    Ps512,
    /// ECDSA P-256 SHA-256.
    Es256,
    /// ECDSA P-384 SHA-384.
    Es384,
}

impl Alg {
    /// Parse a JWS `alg`; `None` for `none` and unknown values.
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            _ => return None,
        })
    }

    /// Whether the algorithm uses an RSA key.
    pub fn is_rsa(self) -> bool {
        !matches!(self, Alg::Es256 | Alg::Es384)
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }
}

/// Why a token could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not three dot-separated segments.
    #[error("the token is not a compact JWS (expected three segments)")]
    Segments,
    /// A segment is not base64url.
    #[error("the token {0} is not base64url")]
    Base64(&'static str),
    /// The header or the claims are not a JSON object.
    #[error("the token {0} is not a JSON object")]
    Json(&'static str),
}

/// A decoded (not yet verified) token.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
    /// `header.payload` as sent (what the signature covers).
    pub signing_input: String,
    /// The raw signature bytes.
    pub signature: Vec<u8>,
}

impl Decoded {
    /// The header's `alg` as written.
    pub fn alg_str(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// A string header field.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim (integer or float seconds).
    pub fn claim_time(&self, name: &str) -> Option<i64> {
        match self.claims.get(name)? {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
            _ => None,
        }
    }

    /// The `aud` claim as a list (a string or an array of strings).
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// Split and decode a compact JWS.
pub fn decode(token: &str) -> Result<Decoded, DecodeError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DecodeError::Segments);
    };
    if h.is_empty() || p.is_empty() {
        return Err(DecodeError::Segments);
    }
    let hb = b64url_decode(h).ok_or(DecodeError::Base64("header"))?;
    let pb = b64url_decode(p).ok_or(DecodeError::Base64("payload"))?;
    let sig = b64url_decode(s).ok_or(DecodeError::Base64("signature"))?;
    let header: Value = serde_json::from_slice(&hb).map_err(|_| DecodeError::Json("header"))?;
    let claims: Value = serde_json::from_slice(&pb).map_err(|_| DecodeError::Json("payload"))?;
    if !header.is_object() {
        return Err(DecodeError::Json("header"));
    }
    if !claims.is_object() {
        return Err(DecodeError::Json("payload"));
    }
    Ok(Decoded {
        header,
        claims,
        signing_input: format!("{h}.{p}"),
        signature: sig,
    })
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// `alg` is `none`, missing or unsupported.
    #[error("unsupported signing algorithm '{0}'")]
    Alg(String),
    /// The key cannot be used with the algorithm, or is malformed.
    #[error("unsupported key for the signing algorithm")]
    Key,
    /// The signature does not match.
    #[error("the provided signature value did not match the expected signature value")]
    Mismatch,
}

/// A JSON Web Key (the members we use).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Jwk {
    /// Key type (`RSA`, `EC`).
    #[serde(default)]
    pub kty: String,
    /// Key ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use (`sig`).
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// EC curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// Resolve the algorithm of a decoded token (rejecting `none` and unknown ones).
pub fn token_alg(t: &Decoded) -> Result<Alg, SigError> {
    Alg::parse(t.alg_str()).ok_or_else(|| SigError::Alg(t.alg_str().to_string()))
}

/// Verify `t` with a JWK.
pub fn verify_jwk(t: &Decoded, jwk: &Jwk) -> Result<(), SigError> {
    let alg = token_alg(t)?;
    if let Some(a) = &jwk.alg
        && a != t.alg_str()
    {
        return Err(SigError::Key);
    }
    match (alg.is_rsa(), jwk.kty.as_str()) {
        (true, "RSA") => {
            let n = jwk
                .n
                .as_deref()
                .and_then(b64url_decode)
                .ok_or(SigError::Key)?;
            let e = jwk
                .e
                .as_deref()
                .and_then(b64url_decode)
                .ok_or(SigError::Key)?;
            let params: &'static signature::RsaParameters = match alg {
                Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                Alg::Es256 | Alg::Es384 => return Err(SigError::Key),
            };
            signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(params, t.signing_input.as_bytes(), &t.signature)
                .map_err(|_| SigError::Mismatch)
        }
        (false, "EC") => {
            let want_crv = if alg == Alg::Es256 { "P-256" } else { "P-384" };
            if jwk.crv.as_deref() != Some(want_crv) {
                return Err(SigError::Key);
            }
            let x = jwk
                .x
                .as_deref()
                .and_then(b64url_decode)
                .ok_or(SigError::Key)?;
            let y = jwk
                .y
                .as_deref()
                .and_then(b64url_decode)
                .ok_or(SigError::Key)?;
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            UnparsedPublicKey::new(alg.verification(), &point)
                .verify(t.signing_input.as_bytes(), &t.signature)
                .map_err(|_| SigError::Mismatch)
        }
        _ => Err(SigError::Key),
    }
}

/// Verify `t` with a DER SubjectPublicKeyInfo (RSA keys from certificates).
pub fn verify_spki(t: &Decoded, spki_der: &[u8]) -> Result<(), SigError> {
    let alg = token_alg(t)?;
    if !alg.is_rsa() {
        return Err(SigError::Key);
    }
    UnparsedPublicKey::new(alg.verification(), spki_der)
        .verify(t.signing_input.as_bytes(), &t.signature)
        .map_err(|_| SigError::Mismatch)
}

/// Sign `header` and `claims` with an RSA key (PKCS#1 v1.5 SHA-256) and return the compact JWS.
pub fn sign_rs256(
    key: &aws_lc_rs::rsa::KeyPair,
    header: &Value,
    claims: &Value,
) -> Result<String, aws_lc_rs::error::Unspecified> {
    let h = b64url(serde_json::to_string(header).unwrap_or_default().as_bytes());
    let p = b64url(serde_json::to_string(claims).unwrap_or_default().as_bytes());
    let input = format!("{h}.{p}");
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )?;
    Ok(format!("{input}.{}", b64url(&sig)))
}

/// The JWK of an RSA key pair's public half.
pub fn rsa_jwk(key: &aws_lc_rs::rsa::KeyPair, kid: &str) -> Jwk {
    use aws_lc_rs::signature::KeyPair as _;
    let public = key.public_key();
    Jwk {
        kty: "RSA".into(),
        kid: Some(kid.to_string()),
        alg: Some("RS256".into()),
        use_: Some("sig".into()),
        n: Some(b64url(public.modulus().big_endian_without_leading_zero())),
        e: Some(b64url(public.exponent().big_endian_without_leading_zero())),
        ..Jwk::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> aws_lc_rs::rsa::KeyPair {
        aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa")
    }

    #[test]
    fn sign_and_verify() {
        let k = key();
        let jwk = rsa_jwk(&k, "k1");
        let tok = sign_rs256(
            &k,
            &json!({"alg":"RS256","kid":"k1"}),
            &json!({"sub":"x","aud":["a","b"],"exp":10.5}),
        )
        .expect("sign");
        let d = decode(&tok).expect("decode");
        assert_eq!(d.claim_str("sub"), Some("x"));
        assert_eq!(d.audiences(), vec!["a", "b"]);
        assert_eq!(d.claim_time("exp"), Some(10));
        verify_jwk(&d, &jwk).expect("verify");
        // Tampered payload.
        let mut parts: Vec<&str> = tok.split('.').collect();
        let other = b64url(br#"{"sub":"y"}"#);
        parts[1] = &other;
        let bad = decode(&parts.join(".")).expect("decode");
        assert_eq!(verify_jwk(&bad, &jwk), Err(SigError::Mismatch));
        // Wrong key.
        let jwk2 = rsa_jwk(&key(), "k2");
        assert_eq!(verify_jwk(&d, &jwk2), Err(SigError::Mismatch));
        // EC key for an RSA token.
        let ec = Jwk {
            kty: "EC".into(),
            ..Jwk::default()
        };
        assert_eq!(verify_jwk(&d, &ec), Err(SigError::Key));
    }

    #[test]
    fn alg_none_and_unknown() {
        let h = b64url(br#"{"alg":"none"}"#);
        let p = b64url(br#"{"sub":"x"}"#);
        let d = decode(&format!("{h}.{p}.")).expect("decode");
        assert_eq!(token_alg(&d), Err(SigError::Alg("none".into())));
        let h = b64url(br#"{"alg":"HS256"}"#);
        let d = decode(&format!("{h}.{p}.AAAA")).expect("decode");
        assert!(matches!(verify_spki(&d, b"xx"), Err(SigError::Alg(_))));
    }

    #[test]
    fn decode_errors() {
        let p = b64url(br#"{"a":1}"#);
        let table: &[(&str, DecodeError)] = &[
            ("", DecodeError::Segments),
            ("a.b", DecodeError::Segments),
            ("a.b.c.d", DecodeError::Segments),
            ("!!.b.c", DecodeError::Base64("header")),
        ];
        for (t, want) in table {
            assert_eq!(decode(t).err().as_ref(), Some(want), "{t}");
        }
        let arr = b64url(b"[1]");
        assert_eq!(
            decode(&format!("{arr}.{p}.")).err(),
            Some(DecodeError::Json("header"))
        );
        assert_eq!(
            decode(&format!("{p}.{arr}.")).err(),
            Some(DecodeError::Json("payload"))
        );
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,300}") {
            if let Ok(d) = decode(&s) {
                let _ = token_alg(&d);
                let _ = d.audiences();
                let _ = d.claim_time("exp");
            }
        }
    }
}
