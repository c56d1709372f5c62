//! Service-account tokens: minting (TokenRequest), verification (TokenReview) and the OIDC
//! discovery documents, as kube-apiserver does them (`pkg/serviceaccount/{jwt,claims}.go`,
//! `pkg/serviceaccount/openidmetadata.go`, `pkg/registry/core/serviceaccount/storage/token.go`).
//!
//! Tokens are compact JWS, RS256, header exactly `{"alg":"RS256","kid":"<kid>"}`, where the kid
//! is base64url(SHA-256(PKIX DER public key)) without padding (`keyIDFromPublicKey`). Claims are
//! `aud`, `exp`, `iat`, `iss`, `jti`, `kubernetes.io`, `nbf`, `sub`, written in that (sorted)
//! order like go-jose's merged claim map.
//!
//! Review follows `jwtTokenAuthenticator.AuthenticateToken` step by step:
//! 1. The unverified payload must carry our `iss`; otherwise (or if the token is not a compact
//!    JWS at all) the SA authenticator does not handle it ([`ReviewError::NotHandled`]).
//! 2. A `kid` other than ours gives `invalid signature, no keys found`.
//! 3. Only RS256 is accepted (`alg: none`, `HS256`, ... fail with go-jose's "unknown/unsupported
//!    algorithm"; upstream would also accept other RSA algorithms for an RSA key, but only this
//!    signer ever signs with the key, and it only uses RS256); a bad signature gives
//!    `go-jose/go-jose: error in cryptographic primitive`.
//! 4. Token audiences (or the implicit API audiences when the token has none) must intersect the
//!    requested audiences (or the implicit ones when none are requested).
//! 5. Times are checked with go-jose's 60 s leeway: not valid yet if `now + 60 < nbf`, expired if
//!    `now - 60 > exp`, issued in the future if `now + 60 < iat`.
//! 6. The caller then checks that the service account (and the bound pod/secret/node) still
//!    exist with the claimed uid and are not being deleted for longer than the leeway; see
//!    [`ReviewedToken::check_bound_objects`] and [`ObjectLookup`].
//!
//! TokenReview `status.error` strings: when the SA authenticator returns an error, kube-apiserver's
//! union of request authenticators reports `[invalid bearer token, <error>]`; when no
//! authenticator handles the token at all it reports `invalid bearer token`.
//! [`ReviewError::status_error`] renders exactly that.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use kube_sim_machinery::gofmt::{go_quote_list, unmarshal_field_type_error};
use kube_sim_machinery::time::{format_rfc3339, parse_rfc3339};
use serde_json::{Map, Value};

use crate::error::{AuthError, FieldError, decode_string};
use crate::rbac::{SYSTEM_AUTHENTICATED, UserInfo, service_account_username};

/// Expiration used when a TokenRequest does not give one (`SetDefaults_TokenRequestSpec`).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Smallest accepted `spec.expirationSeconds` (10 minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Largest accepted `spec.expirationSeconds` (2^32 s).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// go-jose `jwt.DefaultLeeway`, used for nbf/exp/iat and for deletion timestamps.
pub const CLOCK_LEEWAY_SECONDS: i64 = 60;

/// Group of every service account (`serviceaccount.AllServiceAccountsGroup`).
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// `UserInfo.extra` key of the bound pod's name.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// `UserInfo.extra` key of the bound pod's uid.
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
/// `UserInfo.extra` key of the node name.
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
/// `UserInfo.extra` key of the node uid.
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
/// `UserInfo.extra` key of the credential id (`JTI=<jti>`).
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

const HEADER_ALG: &str = "RS256";

/// Unpadded base64url as Go's `base64.RawURLEncoding` decodes it (trailing bits tolerated).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A name and uid (`ref` in the `kubernetes.io` claim).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Object uid.
    pub uid: String,
}

impl ObjectRef {
    /// A reference from name and uid.
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        ObjectRef {
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn to_claim(&self) -> Value {
        let mut m = Map::new();
        if !self.name.is_empty() {
            m.insert("name".to_owned(), Value::String(self.name.clone()));
        }
        if !self.uid.is_empty() {
            m.insert("uid".to_owned(), Value::String(self.uid.clone()));
        }
        Value::Object(m)
    }
}

/// Kind of object a token is bound to (`spec.boundObjectRef.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundObjectKind {
    /// Pod-bound (projected volume tokens, `kubectl create token --bound-object-kind Pod`).
    Pod,
    /// Secret-bound.
    Secret,
    /// Node-bound (ServiceAccountTokenNodeBinding).
    Node,
}

/// The object a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    /// Kind.
    pub kind: BoundObjectKind,
    /// Name and uid.
    pub object: ObjectRef,
}

/// What the API server knows when it serves a TokenRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequestInput {
    /// `iss` claim (the `--service-account-issuer`).
    pub issuer: String,
    /// `aud` claim. The server should default an empty `spec.audiences` to its API audiences
    /// first, as upstream does; an empty list here produces a token without `aud`.
    pub audiences: Vec<String>,
    /// `spec.expirationSeconds`; `None` means the default 3600.
    pub expiration_seconds: Option<i64>,
    /// `--service-account-max-token-expiration`: a longer validated request is cut down to it.
    pub max_expiration_seconds: Option<i64>,
    /// Service account namespace.
    pub namespace: String,
    /// Service account name.
    pub service_account_name: String,
    /// Service account uid.
    pub service_account_uid: String,
    /// Bound object, if any.
    pub bound_object: Option<BoundObject>,
    /// The node a bound pod runs on (`kubernetes.io.node` for pod-bound tokens). It must be
    /// `None` for secret-bound tokens and is ignored for node-bound ones.
    pub node: Option<ObjectRef>,
    /// `jti` claim; empty omits it. See [`random_jti`].
    pub jti: String,
}

impl TokenRequestInput {
    /// An unbound request with default expiration, no audiences, and a fresh random jti.
    pub fn new(
        issuer: impl Into<String>,
        namespace: impl Into<String>,
        service_account_name: impl Into<String>,
        service_account_uid: impl Into<String>,
    ) -> Self {
        TokenRequestInput {
            issuer: issuer.into(),
            audiences: Vec::new(),
            expiration_seconds: None,
            max_expiration_seconds: None,
            namespace: namespace.into(),
            service_account_name: service_account_name.into(),
            service_account_uid: service_account_uid.into(),
            bound_object: None,
            node: None,
            jti: random_jti(),
        }
    }
}

/// A fresh `jti` (random UUID v4, as `uuid.NewString`).
pub fn random_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Default and validate `spec.expirationSeconds` (`ValidateTokenRequest`), then apply the
/// optional maximum (`--service-account-max-token-expiration`). Returns the lifetime to use.
///
/// Errors: `spec.expirationSeconds: Invalid value: 300: may not specify a duration less than
/// 10 minutes`, or `... may not specify a duration larger than 2^32 seconds`.
pub fn effective_expiration_seconds(
    requested: Option<i64>,
    max: Option<i64>,
) -> Result<i64, AuthError> {
    let exp = requested.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if exp < MIN_EXPIRATION_SECONDS {
        return Err(AuthError::Invalid(vec![FieldError::invalid(
            "spec.expirationSeconds",
            exp.to_string(),
            "may not specify a duration less than 10 minutes",
        )]));
    }
    if exp > MAX_EXPIRATION_SECONDS {
        return Err(AuthError::Invalid(vec![FieldError::invalid(
            "spec.expirationSeconds",
            exp.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        )]));
    }
    Ok(match max {
        Some(m) if m > 0 && exp > m => m,
        _ => exp,
    })
}

/// Build the claims of a service-account token issued at `now_unix` (`serviceaccount.Claims`
/// plus the issuer the generator adds). `nbf = iat = now`, `exp = now + expiration`.
pub fn service_account_claims(req: &TokenRequestInput, now_unix: i64) -> Result<Value, AuthError> {
    let expiration =
        effective_expiration_seconds(req.expiration_seconds, req.max_expiration_seconds)?;
    let mut k8s = Map::new();
    if !req.namespace.is_empty() {
        k8s.insert("namespace".to_owned(), Value::String(req.namespace.clone()));
    }
    match &req.bound_object {
        None => {}
        Some(BoundObject {
            kind: BoundObjectKind::Pod,
            object,
        }) => {
            if let Some(node) = &req.node {
                k8s.insert("node".to_owned(), node.to_claim());
            }
            k8s.insert("pod".to_owned(), object.to_claim());
        }
        Some(BoundObject {
            kind: BoundObjectKind::Secret,
            object,
        }) => {
            if req.node.is_some() {
                return Err(AuthError::Internal(
                    "internal error, token can only be bound to one object type".to_owned(),
                ));
            }
            k8s.insert("secret".to_owned(), object.to_claim());
        }
        Some(BoundObject {
            kind: BoundObjectKind::Node,
            object,
        }) => {
            k8s.insert("node".to_owned(), object.to_claim());
        }
    }
    k8s.insert(
        "serviceaccount".to_owned(),
        ObjectRef::new(
            req.service_account_name.clone(),
            req.service_account_uid.clone(),
        )
        .to_claim(),
    );

    let mut claims = Map::new();
    if !req.audiences.is_empty() {
        claims.insert(
            "aud".to_owned(),
            Value::Array(req.audiences.iter().cloned().map(Value::String).collect()),
        );
    }
    claims.insert(
        "exp".to_owned(),
        Value::from(now_unix.saturating_add(expiration)),
    );
    claims.insert("iat".to_owned(), Value::from(now_unix));
    if !req.issuer.is_empty() {
        claims.insert("iss".to_owned(), Value::String(req.issuer.clone()));
    }
    if !req.jti.is_empty() {
        claims.insert("jti".to_owned(), Value::String(req.jti.clone()));
    }
    claims.insert("kubernetes.io".to_owned(), Value::Object(k8s));
    claims.insert("nbf".to_owned(), Value::from(now_unix));
    claims.insert(
        "sub".to_owned(),
        Value::String(service_account_username(
            &req.namespace,
            &req.service_account_name,
        )),
    );
    Ok(Value::Object(claims))
}

/// The authentication.k8s.io/v1 `TokenRequest` `status` for a token expiring at `exp_unix`.
pub fn token_request_status(token: &str, exp_unix: i64) -> Value {
    let mut m = Map::new();
    m.insert(
        "expirationTimestamp".to_owned(),
        Value::String(format_rfc3339(exp_unix)),
    );
    m.insert("token".to_owned(), Value::String(token.to_owned()));
    Value::Object(m)
}

/// `/.well-known/openid-configuration` exactly as kube-apiserver serves it
/// (serve with `Content-Type: application/json` and `Cache-Control: public, max-age=3600`).
pub fn openid_configuration(issuer: &str, jwks_uri: &str) -> Value {
    let mut m = Map::new();
    m.insert("issuer".to_owned(), Value::String(issuer.to_owned()));
    m.insert("jwks_uri".to_owned(), Value::String(jwks_uri.to_owned()));
    m.insert(
        "response_types_supported".to_owned(),
        Value::from(vec!["id_token"]),
    );
    m.insert(
        "subject_types_supported".to_owned(),
        Value::from(vec!["public"]),
    );
    m.insert(
        "id_token_signing_alg_values_supported".to_owned(),
        Value::from(vec![HEADER_ALG]),
    );
    Value::Object(m)
}

/// A minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Its `exp` claim.
    pub expiration_unix: i64,
    /// The signed claims.
    pub claims: Value,
}

impl IssuedToken {
    /// The TokenRequest `status` (`token`, `expirationTimestamp`).
    pub fn token_request_status(&self) -> Value {
        token_request_status(&self.token, self.expiration_unix)
    }
}

/// The service-account token signer: one RSA 2048 key and the issuer it signs for.
pub struct Signer {
    key: RsaKeyPair,
    issuer: String,
    kid: String,
    public_pkcs1: Vec<u8>,
    n: String,
    e: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Generate a fresh RSA 2048 key for `issuer`.
    pub fn generate(issuer: &str) -> Result<Signer, AuthError> {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| AuthError::KeyGeneration)?;
        Signer::from_key(key, issuer)
    }

    /// Load a key saved with [`Signer::to_pkcs8_der`] (any unencrypted PKCS#8 RSA key of
    /// 2048..=8192 bits).
    pub fn from_pkcs8_der(bytes: &[u8], issuer: &str) -> Result<Signer, AuthError> {
        let key =
            RsaKeyPair::from_pkcs8(bytes).map_err(|e| AuthError::InvalidKey(e.to_string()))?;
        Signer::from_key(key, issuer)
    }

    fn from_key(key: RsaKeyPair, issuer: &str) -> Result<Signer, AuthError> {
        let public = key.public_key();
        let pkix: PublicKeyX509Der<'static> = public
            .as_der()
            .map_err(|_| AuthError::InvalidKey("cannot encode the public key".to_owned()))?;
        let kid = b64(digest::digest(&digest::SHA256, pkix.as_ref()).as_ref());
        let n = b64(public.modulus().big_endian_without_leading_zero());
        let e = b64(public.exponent().big_endian_without_leading_zero());
        let public_pkcs1 = public.as_ref().to_vec();
        Ok(Signer {
            key,
            issuer: issuer.to_owned(),
            kid,
            public_pkcs1,
            n,
            e,
        })
    }

    /// The private key as unencrypted PKCS#8 v1 DER, for persistence.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, AuthError> {
        let der: Pkcs8V1Der<'static> = self
            .key
            .as_der()
            .map_err(|_| AuthError::Internal("cannot encode the private key".to_owned()))?;
        Ok(der.as_ref().to_vec())
    }

    /// The key id: base64url(SHA-256(PKIX DER public key)), unpadded.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The issuer this signer signs for and accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Sign `claims` (a JSON object) as a compact RS256 JWS with header
    /// `{"alg":"RS256","kid":"<kid>"}`.
    pub fn sign(&self, claims: &Value) -> Result<String, AuthError> {
        if !claims.is_object() {
            return Err(AuthError::Internal(
                "token claims must be a JSON object".to_owned(),
            ));
        }
        let header = format!(r#"{{"alg":"{HEADER_ALG}","kid":"{}"}}"#, self.kid);
        let payload = serde_json::to_vec(claims).map_err(|e| AuthError::Internal(e.to_string()))?;
        let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(&payload));
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| AuthError::Internal("RSA signing failed".to_owned()))?;
        Ok(format!("{signing_input}.{}", b64(&sig)))
    }

    /// Build claims for `req` (with this signer's issuer) and sign them.
    pub fn issue(&self, req: &TokenRequestInput, now_unix: i64) -> Result<IssuedToken, AuthError> {
        let mut req = req.clone();
        req.issuer = self.issuer.clone();
        let claims = service_account_claims(&req, now_unix)?;
        let expiration_unix = claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or(now_unix);
        let token = self.sign(&claims)?;
        Ok(IssuedToken {
            token,
            expiration_unix,
            claims,
        })
    }

    /// `/openid/v1/jwks`: `{"keys":[{"use":"sig","kty":"RSA","kid":..,"alg":"RS256","n":..,"e":..}]}`
    /// (serve with `Content-Type: application/jwk-set+json`).
    pub fn jwks(&self) -> Value {
        let mut key = Map::new();
        key.insert("use".to_owned(), Value::from("sig"));
        key.insert("kty".to_owned(), Value::from("RSA"));
        key.insert("kid".to_owned(), Value::from(self.kid.clone()));
        key.insert("alg".to_owned(), Value::from(HEADER_ALG));
        key.insert("n".to_owned(), Value::from(self.n.clone()));
        key.insert("e".to_owned(), Value::from(self.e.clone()));
        let mut m = Map::new();
        m.insert("keys".to_owned(), Value::Array(vec![Value::Object(key)]));
        Value::Object(m)
    }

    /// Verify a bearer token as the service-account authenticator does (see the module docs).
    ///
    /// `audiences` are the TokenReview `spec.audiences`; `implicit_audiences` are the API
    /// server's own audiences (`--api-audiences`, by default the issuer). The caller must still
    /// run [`ReviewedToken::check_bound_objects`] (or use [`Signer::authenticate`]).
    pub fn review(
        &self,
        token: &str,
        now_unix: i64,
        audiences: &[String],
        implicit_audiences: &[String],
    ) -> Result<ReviewedToken, ReviewError> {
        // hasCorrectIssuer.
        if token.trim().starts_with('{') {
            return Err(ReviewError::NotHandled);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, sig_b64] = parts.as_slice() else {
            return Err(ReviewError::NotHandled);
        };
        let payload_bytes = B64
            .decode(payload_b64)
            .map_err(|_| ReviewError::NotHandled)?;
        let payload: Value =
            serde_json::from_slice(&payload_bytes).map_err(|_| ReviewError::NotHandled)?;
        let claims = match payload {
            Value::Object(m) => m,
            _ => return Err(ReviewError::NotHandled),
        };
        match claims.get("iss") {
            Some(Value::String(iss)) if *iss == self.issuer => {}
            _ => return Err(ReviewError::NotHandled),
        }

        // jwt.ParseSigned.
        let header_bytes = B64
            .decode(header_b64.trim_end_matches('='))
            .map_err(|_| ReviewError::NotHandled)?;
        let header = match serde_json::from_slice::<Value>(&header_bytes) {
            Ok(Value::Object(h)) => h,
            _ => return Err(ReviewError::NotHandled),
        };
        let sig = B64
            .decode(sig_b64.trim_end_matches('='))
            .map_err(|_| ReviewError::NotHandled)?;
        let alg = match header.get("alg") {
            None | Some(Value::Null) => "",
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(ReviewError::NotHandled),
        };
        let kid = match header.get("kid") {
            None | Some(Value::Null) => "",
            Some(Value::String(k)) => k.as_str(),
            Some(_) => return Err(ReviewError::NotHandled),
        };

        // Key lookup by kid, then signature verification.
        if !kid.is_empty() && kid != self.kid {
            return Err(ReviewError::NoKeysFound);
        }
        if alg != HEADER_ALG {
            return Err(ReviewError::UnsupportedAlgorithm);
        }
        if header.get("crit").is_some_and(|c| {
            !matches!(c, Value::Null) && c.as_array().is_none_or(|a| !a.is_empty())
        }) {
            return Err(ReviewError::BadSignature);
        }
        let signing_input = format!("{}.{}", b64(&header_bytes), b64(&payload_bytes));
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public_pkcs1)
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| ReviewError::BadSignature)?;

        // Claims decoding (go-jose jwt.Claims + privateClaims).
        let parsed = ParsedClaims::parse(&claims)?;

        // Audiences.
        let token_auds = if parsed.aud.is_empty() {
            implicit_audiences.to_vec()
        } else {
            parsed.aud.clone()
        };
        let requested = if audiences.is_empty() {
            implicit_audiences
        } else {
            audiences
        };
        let matched: Vec<String> = token_auds
            .iter()
            .flat_map(|t| requested.iter().filter(move |r| *r == t).map(|_| t.clone()))
            .collect();
        if matched.is_empty() && !implicit_audiences.is_empty() {
            return Err(ReviewError::InvalidAudience {
                token: token_auds,
                target: requested.to_vec(),
            });
        }

        // Time validation with leeway.
        if parsed
            .nbf
            .is_some_and(|nbf| now_unix.saturating_add(CLOCK_LEEWAY_SECONDS) < nbf)
        {
            return Err(ReviewError::NotValidYet);
        }
        if parsed
            .exp
            .is_some_and(|exp| now_unix.saturating_sub(CLOCK_LEEWAY_SECONDS) > exp)
        {
            return Err(ReviewError::Expired);
        }
        if parsed
            .iat
            .is_some_and(|iat| now_unix.saturating_add(CLOCK_LEEWAY_SECONDS) < iat)
        {
            return Err(ReviewError::IssuedInFuture);
        }

        let user = parsed.user_info();
        Ok(ReviewedToken {
            claims: Value::Object(claims),
            user,
            audiences: matched,
            namespace: parsed.namespace,
            service_account_name: parsed.service_account.name,
            service_account_uid: parsed.service_account.uid,
            pod: parsed.pod,
            secret: parsed.secret,
            node: parsed.node,
            jti: parsed.jti,
            expiration_unix: parsed.exp,
        })
    }

    /// [`Signer::review`] followed by [`ReviewedToken::check_bound_objects`].
    pub fn authenticate(
        &self,
        token: &str,
        now_unix: i64,
        audiences: &[String],
        implicit_audiences: &[String],
        lookup: &dyn ObjectLookup,
    ) -> Result<ReviewedToken, ReviewError> {
        let reviewed = self.review(token, now_unix, audiences, implicit_audiences)?;
        reviewed.check_bound_objects(lookup, now_unix)?;
        Ok(reviewed)
    }
}

struct ParsedClaims {
    aud: Vec<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: String,
    namespace: String,
    service_account: ObjectRef,
    pod: Option<ObjectRef>,
    secret: Option<ObjectRef>,
    node: Option<ObjectRef>,
}

const ERR_NUMERIC_DATE: &str =
    "go-jose/go-jose/jwt: expected number value to unmarshal into NumericDate";
const ERR_AUDIENCE: &str =
    "go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience";

fn claim_type_error(v: &Value, go_struct: &str, path: &str, go_type: &str) -> ReviewError {
    ReviewError::MalformedClaims(unmarshal_field_type_error(v, go_struct, path, go_type))
}

fn claim_string(
    m: &Map<String, Value>,
    key: &str,
    go_struct: &str,
    path: &str,
) -> Result<String, ReviewError> {
    decode_string(m, key, go_struct, path).map_err(ReviewError::MalformedClaims)
}

fn numeric_date(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, ReviewError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            // Go: NumericDate(float64) truncates; out-of-range values saturate here.
            None => n
                .as_f64()
                .map(|f| Some(f as i64))
                .ok_or_else(|| ReviewError::MalformedClaims(ERR_NUMERIC_DATE.to_owned())),
        },
        Some(_) => Err(ReviewError::MalformedClaims(ERR_NUMERIC_DATE.to_owned())),
    }
}

fn claim_ref(k8s: &Map<String, Value>, key: &str) -> Result<Option<ObjectRef>, ReviewError> {
    match k8s.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(r)) => Ok(Some(ObjectRef {
            name: claim_string(r, "name", "ref", &format!("kubernetes.io.{key}.name"))?,
            uid: claim_string(r, "uid", "ref", &format!("kubernetes.io.{key}.uid"))?,
        })),
        Some(other) => Err(claim_type_error(
            other,
            "kubernetes",
            &format!("kubernetes.io.{key}"),
            "serviceaccount.ref",
        )),
    }
}

impl ParsedClaims {
    fn parse(claims: &Map<String, Value>) -> Result<Self, ReviewError> {
        // Public claims.
        claim_string(claims, "sub", "Claims", "sub")?;
        let jti = claim_string(claims, "jti", "Claims", "jti")?;
        let aud = match claims.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| ReviewError::MalformedClaims(ERR_AUDIENCE.to_owned()))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ReviewError::MalformedClaims(ERR_AUDIENCE.to_owned())),
        };
        let exp = numeric_date(claims, "exp")?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;

        // Private claims.
        let empty = Map::new();
        let k8s = match claims.get("kubernetes.io") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(k)) => k,
            Some(other) => {
                return Err(claim_type_error(
                    other,
                    "privateClaims",
                    "kubernetes.io",
                    "serviceaccount.kubernetes",
                ));
            }
        };
        let namespace = claim_string(k8s, "namespace", "kubernetes", "kubernetes.io.namespace")?;
        let service_account = claim_ref(k8s, "serviceaccount")?.unwrap_or_default();
        let pod = claim_ref(k8s, "pod")?;
        let secret = claim_ref(k8s, "secret")?;
        let node = claim_ref(k8s, "node")?;
        if k8s
            .get("warnafter")
            .is_some_and(|w| !w.is_null() && !w.is_number())
        {
            return Err(ReviewError::MalformedClaims(ERR_NUMERIC_DATE.to_owned()));
        }
        Ok(ParsedClaims {
            aud,
            exp,
            nbf,
            iat,
            jti,
            namespace,
            service_account,
            pod,
            secret,
            node,
        })
    }

    /// `ServiceAccountInfo.UserInfo()` plus the `system:authenticated` group.
    fn user_info(&self) -> UserInfo {
        let mut extra = BTreeMap::new();
        if let Some(pod) = &self.pod
            && !pod.name.is_empty()
            && !pod.uid.is_empty()
        {
            extra.insert(EXTRA_POD_NAME.to_owned(), vec![pod.name.clone()]);
            extra.insert(EXTRA_POD_UID.to_owned(), vec![pod.uid.clone()]);
        }
        if !self.jti.is_empty() {
            extra.insert(
                EXTRA_CREDENTIAL_ID.to_owned(),
                vec![format!("JTI={}", self.jti)],
            );
        }
        if let Some(node) = &self.node
            && !node.name.is_empty()
        {
            extra.insert(EXTRA_NODE_NAME.to_owned(), vec![node.name.clone()]);
            if !node.uid.is_empty() {
                extra.insert(EXTRA_NODE_UID.to_owned(), vec![node.uid.clone()]);
            }
        }
        UserInfo {
            username: service_account_username(&self.namespace, &self.service_account.name),
            uid: self.service_account.uid.clone(),
            groups: vec![
                ALL_SERVICE_ACCOUNTS_GROUP.to_owned(),
                format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{}", self.namespace),
                SYSTEM_AUTHENTICATED.to_owned(),
            ],
            extra,
        }
    }
}

/// A token that passed signature, issuer, audience and time checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedToken {
    /// All claims of the token.
    pub claims: Value,
    /// The user the API server derives (username, SA uid, groups, extra).
    pub user: UserInfo,
    /// The audiences that matched (TokenReview `status.audiences`).
    pub audiences: Vec<String>,
    /// `kubernetes.io.namespace`.
    pub namespace: String,
    /// `kubernetes.io.serviceaccount.name`.
    pub service_account_name: String,
    /// `kubernetes.io.serviceaccount.uid`.
    pub service_account_uid: String,
    /// `kubernetes.io.pod`.
    pub pod: Option<ObjectRef>,
    /// `kubernetes.io.secret`.
    pub secret: Option<ObjectRef>,
    /// `kubernetes.io.node`.
    pub node: Option<ObjectRef>,
    /// `jti` (empty if absent).
    pub jti: String,
    /// `exp`, if present.
    pub expiration_unix: Option<i64>,
}

/// What the token validator needs to know about a live object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectState {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.deletionTimestamp` as Unix seconds.
    pub deletion_timestamp_unix: Option<i64>,
}

impl ObjectState {
    /// Read `metadata.uid` and `metadata.deletionTimestamp` (RFC 3339) from a stored object.
    pub fn from_object(object: &Value) -> Self {
        let meta = object.get("metadata");
        ObjectState {
            uid: meta
                .and_then(|m| m.get("uid"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            deletion_timestamp_unix: meta
                .and_then(|m| m.get("deletionTimestamp"))
                .and_then(Value::as_str)
                .and_then(parse_rfc3339),
        }
    }

    fn deleted_before(&self, cutoff: i64) -> bool {
        self.deletion_timestamp_unix.is_some_and(|t| t < cutoff)
    }
}

/// Lookups the token validator performs against the live store.
pub trait ObjectLookup {
    /// A ServiceAccount.
    fn service_account(&self, namespace: &str, name: &str) -> Option<ObjectState>;
    /// A Pod.
    fn pod(&self, namespace: &str, name: &str) -> Option<ObjectState>;
    /// A Secret.
    fn secret(&self, namespace: &str, name: &str) -> Option<ObjectState>;
    /// A Node.
    fn node(&self, name: &str) -> Option<ObjectState>;
}

impl ReviewedToken {
    /// The validator's liveness checks (`validator.Validate` in `pkg/serviceaccount/claims.go`):
    /// the service account must exist with the claimed uid and not have been deleted more than
    /// 60 s ago; likewise a bound secret, a bound pod, and, for node-bound tokens (node claim
    /// without pod), the node. Pod-bound tokens only carry the node as information.
    pub fn check_bound_objects(
        &self,
        lookup: &dyn ObjectLookup,
        now_unix: i64,
    ) -> Result<(), ReviewError> {
        let cutoff = now_unix.saturating_sub(CLOCK_LEEWAY_SECONDS);
        let ns = &self.namespace;
        let sa = lookup
            .service_account(ns, &self.service_account_name)
            .ok_or_else(|| ReviewError::ServiceAccountNotFound {
                name: self.service_account_name.clone(),
            })?;
        if sa.uid != self.service_account_uid {
            return Err(ReviewError::ServiceAccountUidMismatch {
                actual: sa.uid,
                claim: self.service_account_uid.clone(),
            });
        }
        if sa.deleted_before(cutoff) {
            return Err(ReviewError::ServiceAccountDeleted {
                namespace: ns.clone(),
                name: self.service_account_name.clone(),
            });
        }
        if let Some(secret_ref) = &self.secret {
            let secret = lookup
                .secret(ns, &secret_ref.name)
                .ok_or(ReviewError::Invalidated)?;
            if secret.uid != secret_ref.uid {
                return Err(ReviewError::SecretUidMismatch {
                    actual: secret.uid,
                    claim: secret_ref.uid.clone(),
                });
            }
            if secret.deleted_before(cutoff) {
                return Err(ReviewError::Invalidated);
            }
        }
        if let Some(pod_ref) = &self.pod {
            let pod = lookup
                .pod(ns, &pod_ref.name)
                .ok_or(ReviewError::Invalidated)?;
            if pod.uid != pod_ref.uid {
                return Err(ReviewError::PodUidMismatch {
                    actual: pod.uid,
                    claim: pod_ref.uid.clone(),
                });
            }
            if pod.deleted_before(cutoff) {
                return Err(ReviewError::Invalidated);
            }
        } else if let Some(node_ref) = &self.node {
            let node = lookup
                .node(&node_ref.name)
                .ok_or(ReviewError::Invalidated)?;
            if node.uid != node_ref.uid {
                return Err(ReviewError::NodeUidMismatch {
                    actual: node.uid,
                    claim: node_ref.uid.clone(),
                });
            }
            if node.deleted_before(cutoff) {
                return Err(ReviewError::Invalidated);
            }
        }
        Ok(())
    }
}

/// Why a token was not accepted. `Display` is the service-account authenticator's own message
/// (upstream wording); [`ReviewError::status_error`] is the TokenReview `status.error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Not a compact JWS, undecodable, or not issued by us: the SA authenticator does not
    /// handle it and no other authenticator exists here.
    #[error("invalid bearer token")]
    NotHandled,
    /// The header names a kid we do not have.
    #[error("invalid signature, no keys found")]
    NoKeysFound,
    /// `alg` is not RS256 (`none`, `HS256`, ...).
    #[error("go-jose/go-jose: unknown/unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The signature does not verify (or an unsupported `crit` header is present).
    #[error("go-jose/go-jose: error in cryptographic primitive")]
    BadSignature,
    /// A claim has the wrong JSON type.
    #[error("{0}")]
    MalformedClaims(String),
    /// No requested audience is in the token.
    #[error("token audiences {} is invalid for the target audiences {}", go_quote_list(.token), go_quote_list(.target))]
    InvalidAudience {
        /// The token's audiences (or the implicit ones for a token without `aud`).
        token: Vec<String>,
        /// The requested audiences.
        target: Vec<String>,
    },
    /// `now - 60 > exp`.
    #[error("service account token has expired")]
    Expired,
    /// `now + 60 < nbf`.
    #[error("service account token is not valid yet")]
    NotValidYet,
    /// `now + 60 < iat`.
    #[error("service account token is issued in the future")]
    IssuedInFuture,
    /// The service account does not exist (the client's NotFound message).
    #[error("serviceaccounts \"{name}\" not found")]
    ServiceAccountNotFound {
        /// Service account name.
        name: String,
    },
    /// The service account was recreated.
    #[error("service account UID ({actual}) does not match claim ({claim})")]
    ServiceAccountUidMismatch {
        /// Live uid.
        actual: String,
        /// Claimed uid.
        claim: String,
    },
    /// The service account has been deleted (more than the leeway ago).
    #[error("service account {namespace}/{name} has been deleted")]
    ServiceAccountDeleted {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A bound pod/secret/node is gone or being deleted.
    #[error("service account token has been invalidated")]
    Invalidated,
    /// The bound secret was recreated.
    #[error("secret UID ({actual}) does not match service account secret ref claim ({claim})")]
    SecretUidMismatch {
        /// Live uid.
        actual: String,
        /// Claimed uid.
        claim: String,
    },
    /// The bound pod was recreated.
    #[error("pod UID ({actual}) does not match service account pod ref claim ({claim})")]
    PodUidMismatch {
        /// Live uid.
        actual: String,
        /// Claimed uid.
        claim: String,
    },
    /// The bound node was recreated.
    #[error("node UID ({actual}) does not match service account node ref claim ({claim})")]
    NodeUidMismatch {
        /// Live uid.
        actual: String,
        /// Claimed uid.
        claim: String,
    },
}

impl ReviewError {
    /// The TokenReview `status.error` kube-apiserver reports for this failure:
    /// `invalid bearer token` when unhandled, else `[invalid bearer token, <message>]`.
    pub fn status_error(&self) -> String {
        match self {
            ReviewError::NotHandled => self.to_string(),
            other => format!("[invalid bearer token, {other}]"),
        }
    }
}

/// The authentication.k8s.io/v1 `TokenReview` `status` (Go field rules: `authenticated` and
/// `audiences`/`error` omitted when false/empty, `user` always present).
pub fn token_review_status(result: Result<ReviewedToken, ReviewError>) -> Value {
    let mut m = Map::new();
    match result {
        Ok(t) => {
            m.insert("authenticated".to_owned(), Value::Bool(true));
            m.insert(
                "user".to_owned(),
                serde_json::to_value(&t.user).unwrap_or_else(|_| Value::Object(Map::new())),
            );
            if !t.audiences.is_empty() {
                m.insert(
                    "audiences".to_owned(),
                    Value::Array(t.audiences.into_iter().map(Value::String).collect()),
                );
            }
        }
        Err(e) => {
            m.insert("user".to_owned(), Value::Object(Map::new()));
            m.insert("error".to_owned(), Value::String(e.status_error()));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_rules() {
        assert_eq!(effective_expiration_seconds(None, None).ok(), Some(3600));
        assert_eq!(
            effective_expiration_seconds(Some(600), None).ok(),
            Some(600)
        );
        assert_eq!(
            effective_expiration_seconds(Some(1 << 32), None).ok(),
            Some(1 << 32)
        );
        assert_eq!(
            effective_expiration_seconds(Some(7200), Some(3600)).ok(),
            Some(3600)
        );
        assert_eq!(
            effective_expiration_seconds(Some(1800), Some(3600)).ok(),
            Some(1800)
        );
        assert_eq!(
            effective_expiration_seconds(Some(7200), Some(0)).ok(),
            Some(7200)
        );
        let low = effective_expiration_seconds(Some(599), None).map_err(|e| e.to_string());
        assert_eq!(
            low,
            Err("spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes".to_owned())
        );
        let high =
            effective_expiration_seconds(Some((1 << 32) + 1), None).map_err(|e| e.to_string());
        assert_eq!(
            high,
            Err("spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"
                .to_owned())
        );
        // Validation happens before the cap.
        assert!(effective_expiration_seconds(Some(100), Some(50)).is_err());
    }

    #[test]
    fn status_error_wrapping() {
        assert_eq!(
            ReviewError::NotHandled.status_error(),
            "invalid bearer token"
        );
        assert_eq!(
            ReviewError::Expired.status_error(),
            "[invalid bearer token, service account token has expired]"
        );
        let aud = ReviewError::InvalidAudience {
            token: vec!["a".into()],
            target: vec!["b".into(), "c".into()],
        };
        assert_eq!(
            aud.status_error(),
            r#"[invalid bearer token, token audiences ["a"] is invalid for the target audiences ["b" "c"]]"#
        );
    }

    #[test]
    fn object_state_from_object() {
        let s = ObjectState::from_object(&serde_json::json!({
            "metadata": {"uid": "u1", "deletionTimestamp": "2023-11-14T22:13:20Z"}
        }));
        assert_eq!(s.uid, "u1");
        assert_eq!(s.deletion_timestamp_unix, Some(1_700_000_000));
        assert_eq!(
            ObjectState::from_object(&Value::Null),
            ObjectState::default()
        );
    }
}
