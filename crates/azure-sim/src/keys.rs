//! The simulated Entra signing key: RS256 signing of access tokens, the JWKS document, verification.
//!
//! Real Entra publishes a handful of RSA-2048 keys shared by all tenants; each JWK carries `kid` = `x5t` (the
//! base64url SHA-1 thumbprint of a self-signed certificate) and the certificate in `x5c`. azure-sim has one key
//! with the same shape, so generic JWT libraries validate its tokens with the published JWKS.

use anyhow::Context;
use aws_lc_rs::digest;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::jwt::{self, Decoded, Jwk, SigError};

/// An RSA signing key with its certificate and JWK.
pub struct SigningKey {
    pair: aws_lc_rs::rsa::KeyPair,
    /// PKCS#8 PEM of the private key (for persistence).
    pub pkcs8_pem: String,
    /// `kid` (= `x5t`).
    pub kid: String,
    /// Standard base64 of the self-signed certificate (`x5c`).
    pub x5c: String,
    /// The public JWK.
    pub jwk: Jwk,
    header_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generate a fresh RSA-2048 key.
    pub fn generate() -> anyhow::Result<SigningKey> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .context("generate RSA signing key")?;
        Self::from_rcgen(key)
    }

    /// Load a key saved as PKCS#8 PEM.
    pub fn from_pkcs8_pem(pem: &str) -> anyhow::Result<SigningKey> {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("signing key is not PKCS#8 PEM: {e:?}"))?;
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
            .context("signing key is not an RSA key")?;
        Self::from_rcgen(key)
    }

    fn from_rcgen(key: rcgen::KeyPair) -> anyhow::Result<SigningKey> {
        let der = key.serialize_der();
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("RSA key rejected: {e}"))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).context("certificate params")?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "accounts.accesscontrol.windows.net",
        );
        let cert = params.self_signed(&key).context("self-sign JWKS cert")?;
        let cert_der = cert.der().to_vec();
        let kid =
            jwt::b64url(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der).as_ref());
        let jwk = jwt::rsa_jwk(&pair, &kid);
        let header = json!({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid});
        Ok(SigningKey {
            header_b64: jwt::b64url(header.to_string().as_bytes()),
            pair,
            pkcs8_pem: key.serialize_pem(),
            kid,
            x5c: jwt::b64std(&cert_der),
            jwk,
        })
    }

    /// Sign `claims` as an Entra access token (header `typ`, `alg` RS256, `x5t`, `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        let payload = jwt::b64url(claims.to_string().as_bytes());
        let input = format!("{}.{payload}", self.header_b64);
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        match self.pair.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        ) {
            Ok(()) => format!("{input}.{}", jwt::b64url(&sig)),
            // Signing with a validated in-memory key does not fail; an unsigned token would be rejected by
            // every verifier, which is the safe outcome if it ever did.
            Err(_) => format!("{input}."),
        }
    }

    /// Verify a token signed by this key (the `kid` must match when present).
    pub fn verify(&self, t: &Decoded) -> Result<(), SigError> {
        if let Some(kid) = t.header_str("kid")
            && kid != self.kid
        {
            return Err(SigError::Key);
        }
        jwt::verify_jwk(t, &self.jwk)
    }

    /// The JWKS document; `issuer` adds Entra's per-key `issuer` member (v2 discovery).
    pub fn jwks(&self, issuer: Option<&str>) -> Value {
        let mut k = serde_json::to_value(&self.jwk).unwrap_or_else(|_| json!({}));
        k["x5t"] = json!(self.kid);
        k["x5c"] = json!([self.x5c]);
        if let Some(iss) = issuer {
            k["issuer"] = json!(iss);
        }
        json!({"keys": [k]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_reload() {
        let k = SigningKey::generate().expect("key");
        let tok = k.sign(&json!({"aud": "x"}));
        let d = jwt::decode(&tok).expect("decode");
        assert_eq!(d.header_str("kid"), Some(k.kid.as_str()));
        assert_eq!(d.header_str("x5t"), Some(k.kid.as_str()));
        k.verify(&d).expect("verify");
        let again = SigningKey::from_pkcs8_pem(&k.pkcs8_pem).expect("reload");
        assert_eq!(again.jwk.n, k.jwk.n);
        again.verify(&d).expect("verify with reloaded key");
        let jwks = k.jwks(Some("https://login.microsoftonline.com/{tenantid}/v2.0"));
        assert_eq!(jwks["keys"][0]["kid"], json!(k.kid));
        assert!(
            jwks["keys"][0]["x5c"][0]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert!(SigningKey::from_pkcs8_pem("garbage").is_err());
    }
}
