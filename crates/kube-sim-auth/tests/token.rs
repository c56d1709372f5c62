//! Service-account token minting and review, checked against an independent verifier
//! (`jsonwebtoken`, fed only the published JWKS) and against forgeries.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kube_sim_auth::AuthError;
use kube_sim_auth::token::{
    BoundObject, BoundObjectKind, CLOCK_LEEWAY_SECONDS, ObjectLookup, ObjectRef, ObjectState,
    ReviewError, ReviewedToken, Signer, TokenRequestInput, openid_configuration,
    service_account_claims, token_request_status, token_review_status,
};
use serde_json::{Value, json};

const ISSUER: &str = "https://kube-sim.invalid";
const NOW: i64 = 1_700_000_000;
const POD_UID: &str = "9f3c2d1e-0000-4000-8000-000000000001";
const SA_UID: &str = "5a1f9c2d-7e33-4a88-b2c4-6f9d0e1a3b57";
const NODE_UID: &str = "aaaaaaaa-0000-4000-8000-000000000002";

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| Signer::generate(ISSUER).unwrap_or_else(|e| panic!("keygen: {e}")))
}

/// A second key with the same issuer (for unknown-kid and wrong-key cases).
fn other_signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| Signer::generate(ISSUER).unwrap_or_else(|e| panic!("keygen: {e}")))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn pod_request() -> TokenRequestInput {
    let mut req = TokenRequestInput::new(ISSUER, "payments", "api-gateway", SA_UID);
    req.audiences = strings(&["api://AzureADTokenExchange"]);
    req.bound_object = Some(BoundObject {
        kind: BoundObjectKind::Pod,
        object: ObjectRef::new("web-0", POD_UID),
    });
    req.node = Some(ObjectRef::new("node-1", NODE_UID));
    req.jti = "0d9c6a3e-1111-4222-8333-444455556666".into();
    req
}

fn issue(req: &TokenRequestInput, now: i64) -> String {
    signer()
        .issue(req, now)
        .map(|t| t.token)
        .unwrap_or_else(|e| panic!("issue: {e}"))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("base64 {s}: {e}"))
}

fn parts(token: &str) -> (String, String, String) {
    let p: Vec<&str> = token.split('.').collect();
    assert_eq!(p.len(), 3, "{token}");
    (p[0].to_owned(), p[1].to_owned(), p[2].to_owned())
}

/// Verify with jsonwebtoken using only the JWKS `n` and `e`.
fn independent_verify(token: &str, aud: &str) -> Value {
    let jwks = signer().jwks();
    let key = &jwks["keys"][0];
    let n = key["n"].as_str().unwrap_or_default();
    let e = key["e"].as_str().unwrap_or_default();
    let dk = DecodingKey::from_rsa_components(n, e).unwrap_or_else(|err| panic!("jwks key: {err}"));
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[ISSUER]);
    // Tokens are minted at a fixed past `NOW`; check the signature and claims, not the wall clock.
    v.validate_exp = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &dk, &v)
        .unwrap_or_else(|err| panic!("jsonwebtoken rejected: {err}"));
    assert_eq!(data.header.alg, Algorithm::RS256);
    assert_eq!(data.header.kid.as_deref(), Some(signer().kid()));
    data.claims
}

// --- a tiny DER encoder, to recompute the kid from the JWKS independently ---
fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(body.len()));
    out.extend_from_slice(body);
    out
}
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(bytes);
    der(0x02, &body)
}
fn pkix_from_jwk(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let alg = der(0x30, &rsa_oid);
    let rsa_pub = der(0x30, &[der_uint(n), der_uint(e)].concat());
    let mut bits = vec![0u8];
    bits.extend(rsa_pub);
    der(0x30, &[alg, der(0x03, &bits)].concat())
}

#[test]
fn jwks_shape_and_kid_derivation() {
    let jwks = signer().jwks();
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["use"], "sig");
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["kid"], signer().kid());
    assert_eq!(k["e"], "AQAB");
    let n = unb64(k["n"].as_str().unwrap_or_default());
    assert_eq!(n.len(), 256, "RSA 2048 modulus, no leading zero");
    assert_ne!(n[0], 0);
    let mut fields: Vec<&String> = k
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    fields.sort();
    assert_eq!(fields, vec!["alg", "e", "kid", "kty", "n", "use"]);

    let pkix = pkix_from_jwk(&n, &unb64("AQAB"));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pkix);
    assert_eq!(signer().kid(), b64(digest.as_ref()));
    assert_eq!(signer().kid().len(), 43);
    assert_eq!(signer().issuer(), ISSUER);
    assert_ne!(signer().kid(), other_signer().kid());
    assert!(!format!("{:?}", signer()).contains("key:"));
}

#[test]
fn openid_configuration_matches_kube_apiserver() {
    assert_eq!(
        openid_configuration(ISSUER, "https://kube-sim.invalid/openid/v1/jwks"),
        json!({
            "issuer": ISSUER,
            "jwks_uri": "https://kube-sim.invalid/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]
        })
    );
}

#[test]
fn header_is_exactly_alg_and_kid() {
    let token = issue(&pod_request(), NOW);
    let (h, _, _) = parts(&token);
    assert_eq!(
        String::from_utf8(unb64(&h)).unwrap_or_default(),
        format!(r#"{{"alg":"RS256","kid":"{}"}}"#, signer().kid())
    );
    assert!(!token.contains('='));
}

#[test]
fn pod_bound_claims_and_independent_verification() {
    let token = issue(&pod_request(), NOW);
    let claims = independent_verify(&token, "api://AzureADTokenExchange");
    assert_eq!(
        claims,
        json!({
            "aud": ["api://AzureADTokenExchange"],
            "exp": NOW + 3600,
            "iat": NOW,
            "iss": ISSUER,
            "jti": "0d9c6a3e-1111-4222-8333-444455556666",
            "kubernetes.io": {
                "namespace": "payments",
                "node": {"name": "node-1", "uid": NODE_UID},
                "pod": {"name": "web-0", "uid": POD_UID},
                "serviceaccount": {"name": "api-gateway", "uid": SA_UID}
            },
            "nbf": NOW,
            "sub": "system:serviceaccount:payments:api-gateway"
        })
    );
    // Claims are serialised in sorted key order, like go-jose's merged map.
    let (_, p, _) = parts(&token);
    let raw = String::from_utf8(unb64(&p)).unwrap_or_default();
    assert!(raw.starts_with(r#"{"aud":["#), "{raw}");
    assert!(
        raw.find("\"iat\"") < raw.find("\"iss\"")
            && raw.find("\"kubernetes.io\"") < raw.find("\"nbf\"")
    );
}

#[test]
fn claims_variants() {
    // Unbound, default expiration, no audiences, no jti.
    let mut req = TokenRequestInput::new(ISSUER, "ns", "sa", "uid-1");
    req.jti.clear();
    let c = service_account_claims(&req, NOW).unwrap_or_default();
    assert_eq!(
        c,
        json!({"exp": NOW + 3600, "iat": NOW, "iss": ISSUER, "nbf": NOW, "sub": "system:serviceaccount:ns:sa",
               "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "uid-1"}}})
    );
    // Fresh requests carry a random v4 uuid jti.
    let fresh = TokenRequestInput::new(ISSUER, "ns", "sa", "uid-1");
    assert_eq!(fresh.jti.len(), 36);
    assert_eq!(fresh.jti.as_bytes()[14], b'4');
    assert_ne!(
        fresh.jti,
        TokenRequestInput::new(ISSUER, "ns", "sa", "uid-1").jti
    );

    // Secret-bound.
    let mut s = req.clone();
    s.bound_object = Some(BoundObject {
        kind: BoundObjectKind::Secret,
        object: ObjectRef::new("tok", "sec-uid"),
    });
    let c = service_account_claims(&s, NOW).unwrap_or_default();
    assert_eq!(
        c["kubernetes.io"]["secret"],
        json!({"name": "tok", "uid": "sec-uid"})
    );
    assert!(c["kubernetes.io"].get("pod").is_none());
    // Secret-bound with node info is impossible upstream.
    s.node = Some(ObjectRef::new("n", "u"));
    assert!(
        matches!(service_account_claims(&s, NOW), Err(AuthError::Internal(m)) if m == "internal error, token can only be bound to one object type")
    );

    // Node-bound.
    let mut n = req.clone();
    n.bound_object = Some(BoundObject {
        kind: BoundObjectKind::Node,
        object: ObjectRef::new("node-9", "nuid"),
    });
    let c = service_account_claims(&n, NOW).unwrap_or_default();
    assert_eq!(
        c["kubernetes.io"]["node"],
        json!({"name": "node-9", "uid": "nuid"})
    );

    // Expiration: explicit, capped, too short, too long.
    let mut e = req.clone();
    e.expiration_seconds = Some(86_400);
    assert_eq!(
        service_account_claims(&e, NOW).unwrap_or_default()["exp"],
        NOW + 86_400
    );
    e.max_expiration_seconds = Some(7200);
    assert_eq!(
        service_account_claims(&e, NOW).unwrap_or_default()["exp"],
        NOW + 7200
    );
    e.expiration_seconds = Some(300);
    assert_eq!(
        service_account_claims(&e, NOW).map_err(|e| e.to_string()),
        Err("spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes".to_owned())
    );
    e.expiration_seconds = Some((1 << 32) + 1);
    assert!(
        matches!(service_account_claims(&e, NOW), Err(AuthError::Invalid(errs)) if errs[0].cause_reason() == "FieldValueInvalid")
    );
}

#[test]
fn issue_uses_signer_issuer_and_status() {
    let mut req = pod_request();
    req.issuer = "https://somewhere-else".into();
    let issued = signer().issue(&req, NOW).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(issued.claims["iss"], ISSUER);
    assert_eq!(issued.expiration_unix, NOW + 3600);
    assert_eq!(
        issued.token_request_status(),
        json!({"token": issued.token, "expirationTimestamp": "2023-11-14T23:13:20Z"})
    );
    assert_eq!(
        token_request_status("t", 0),
        json!({"token": "t", "expirationTimestamp": "1970-01-01T00:00:00Z"})
    );
}

#[test]
fn pkcs8_roundtrip_keeps_identity() {
    let der = signer().to_pkcs8_der().unwrap_or_default();
    let loaded = Signer::from_pkcs8_der(&der, ISSUER).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.kid(), signer().kid());
    assert_eq!(loaded.jwks(), signer().jwks());
    let token = issue(&pod_request(), NOW);
    assert!(
        loaded
            .review(&token, NOW, &[], &strings(&["api://AzureADTokenExchange"]))
            .is_ok()
    );
    let by_loaded = loaded
        .issue(&pod_request(), NOW)
        .map(|t| t.token)
        .unwrap_or_default();
    assert!(
        signer()
            .review(
                &by_loaded,
                NOW,
                &[],
                &strings(&["api://AzureADTokenExchange"])
            )
            .is_ok()
    );
    assert!(matches!(
        Signer::from_pkcs8_der(b"not a key", ISSUER),
        Err(AuthError::InvalidKey(_))
    ));
}

#[test]
fn review_success_user_info() {
    let token = issue(&pod_request(), NOW);
    let implicit = strings(&[ISSUER]);
    let r = signer()
        .review(
            &token,
            NOW + 10,
            &strings(&["api://AzureADTokenExchange"]),
            &implicit,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.user.username,
        "system:serviceaccount:payments:api-gateway"
    );
    assert_eq!(r.user.uid, SA_UID);
    assert_eq!(
        r.user.groups,
        strings(&[
            "system:serviceaccounts",
            "system:serviceaccounts:payments",
            "system:authenticated"
        ])
    );
    let extra: Vec<(&str, &str)> = r
        .user
        .extra
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                v.first().map(String::as_str).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        extra,
        vec![
            (
                "authentication.kubernetes.io/credential-id",
                "JTI=0d9c6a3e-1111-4222-8333-444455556666"
            ),
            ("authentication.kubernetes.io/node-name", "node-1"),
            ("authentication.kubernetes.io/node-uid", NODE_UID),
            ("authentication.kubernetes.io/pod-name", "web-0"),
            ("authentication.kubernetes.io/pod-uid", POD_UID),
        ]
    );
    assert_eq!(r.audiences, strings(&["api://AzureADTokenExchange"]));
    assert_eq!(r.namespace, "payments");
    assert_eq!(r.service_account_name, "api-gateway");
    assert_eq!(r.service_account_uid, SA_UID);
    assert_eq!(r.pod, Some(ObjectRef::new("web-0", POD_UID)));
    assert_eq!(r.node, Some(ObjectRef::new("node-1", NODE_UID)));
    assert_eq!(r.secret, None);
    assert_eq!(r.expiration_unix, Some(NOW + 3600));
    assert_eq!(
        r.claims["sub"],
        "system:serviceaccount:payments:api-gateway"
    );

    assert_eq!(
        token_review_status(Ok(r)),
        json!({
            "authenticated": true,
            "user": {
                "username": "system:serviceaccount:payments:api-gateway",
                "uid": SA_UID,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:payments", "system:authenticated"],
                "extra": {
                    "authentication.kubernetes.io/credential-id": ["JTI=0d9c6a3e-1111-4222-8333-444455556666"],
                    "authentication.kubernetes.io/node-name": ["node-1"],
                    "authentication.kubernetes.io/node-uid": [NODE_UID],
                    "authentication.kubernetes.io/pod-name": ["web-0"],
                    "authentication.kubernetes.io/pod-uid": [POD_UID]
                }
            },
            "audiences": ["api://AzureADTokenExchange"]
        })
    );
}

#[test]
fn review_audience_rules() {
    let mut req = pod_request();
    req.audiences = strings(&["b", "a", ISSUER]);
    let token = issue(&req, NOW);
    let implicit = strings(&[ISSUER]);
    // No requested audiences: the implicit API audiences are used.
    let r = signer()
        .review(&token, NOW, &[], &implicit)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.audiences, strings(&[ISSUER]));
    // Intersection keeps the token's order.
    let r = signer()
        .review(&token, NOW, &strings(&["a", "b", "z"]), &implicit)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.audiences, strings(&["b", "a"]));
    // Wrong audience.
    let err = signer()
        .review(&token, NOW, &strings(&["sigillum"]), &implicit)
        .err();
    assert_eq!(
        err.as_ref().map(ReviewError::status_error),
        Some(format!(
            r#"[invalid bearer token, token audiences ["b" "a" "{ISSUER}"] is invalid for the target audiences ["sigillum"]]"#
        ))
    );
    // A token without aud counts as having the implicit audiences (legacy).
    let mut legacy = pod_request();
    legacy.audiences.clear();
    let t = issue(&legacy, NOW);
    assert_eq!(
        signer()
            .review(&t, NOW, &[], &implicit)
            .map(|r| r.audiences)
            .ok(),
        Some(implicit.clone())
    );
    assert!(matches!(
        signer().review(&t, NOW, &strings(&["x"]), &implicit),
        Err(ReviewError::InvalidAudience { .. })
    ));
    // With no implicit audiences an empty intersection is tolerated (upstream quirk).
    assert_eq!(
        signer()
            .review(&token, NOW, &strings(&["nope"]), &[])
            .map(|r| r.audiences)
            .ok(),
        Some(vec![])
    );
}

#[test]
fn review_time_windows() {
    let token = issue(&pod_request(), NOW);
    let auds = strings(&["api://AzureADTokenExchange"]);
    let check = |now: i64| signer().review(&token, now, &auds, &[]).map(|_| ()).err();
    let exp = NOW + 3600;
    assert_eq!(check(exp), None);
    assert_eq!(check(exp + CLOCK_LEEWAY_SECONDS), None, "leeway accepted");
    assert_eq!(
        check(exp + CLOCK_LEEWAY_SECONDS + 1),
        Some(ReviewError::Expired)
    );
    assert_eq!(
        check(exp + 90).map(|e| e.status_error()),
        Some("[invalid bearer token, service account token has expired]".to_owned())
    );
    assert_eq!(
        check(NOW - CLOCK_LEEWAY_SECONDS),
        None,
        "clock skew tolerated"
    );
    assert_eq!(
        check(NOW - CLOCK_LEEWAY_SECONDS - 1),
        Some(ReviewError::NotValidYet)
    );
    assert_eq!(
        ReviewError::NotValidYet.to_string(),
        "service account token is not valid yet"
    );

    // iat in the future while nbf is fine.
    let mut claims = service_account_claims(&pod_request(), NOW).unwrap_or_default();
    claims["iat"] = json!(NOW + 1000);
    let t = signer().sign(&claims).unwrap_or_default();
    assert_eq!(
        signer().review(&t, NOW, &auds, &[]).err(),
        Some(ReviewError::IssuedInFuture)
    );
    // Float and missing times.
    claims["iat"] = json!(NOW as f64 + 0.5);
    claims["exp"] = Value::Null;
    let t = signer().sign(&claims).unwrap_or_default();
    assert!(
        signer()
            .review(&t, NOW + 10 * 365 * 86_400, &auds, &[])
            .is_ok()
    );
    claims["exp"] = json!("tomorrow");
    let t = signer().sign(&claims).unwrap_or_default();
    assert_eq!(
        signer()
            .review(&t, NOW, &auds, &[])
            .err()
            .map(|e| e.to_string()),
        Some("go-jose/go-jose/jwt: expected number value to unmarshal into NumericDate".to_owned())
    );
}

fn forge(header: &Value, payload_b64: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        payload_b64,
        b64(sig)
    )
}

#[test]
fn forgeries_and_tampering_are_rejected() {
    let auds = strings(&["api://AzureADTokenExchange"]);
    let token = issue(&pod_request(), NOW);
    let (h, p, s) = parts(&token);
    let review = |t: &str| signer().review(t, NOW, &auds, &[]).err();

    // Tampered signature (flip bits in the middle).
    let mut sig = unb64(&s);
    sig[100] ^= 0x01;
    assert_eq!(
        review(&format!("{h}.{p}.{}", b64(&sig))),
        Some(ReviewError::BadSignature)
    );
    // Truncated signature.
    assert_eq!(
        review(&format!("{h}.{p}.{}", b64(&sig[..200]))),
        Some(ReviewError::BadSignature)
    );
    // Tampered payload, original signature.
    let mut claims: Value = serde_json::from_slice(&unb64(&p)).unwrap_or_default();
    claims["kubernetes.io"]["serviceaccount"]["name"] = json!("cluster-admin");
    let tampered = b64(claims.to_string().as_bytes());
    assert_eq!(
        review(&format!("{h}.{tampered}.{s}")),
        Some(ReviewError::BadSignature)
    );
    assert_eq!(
        ReviewError::BadSignature.status_error(),
        "[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]"
    );

    // alg: none, with and without our kid.
    let none = forge(&json!({"alg": "none"}), &tampered, b"");
    assert_eq!(review(&none), Some(ReviewError::UnsupportedAlgorithm));
    let none_kid = forge(
        &json!({"alg": "none", "kid": signer().kid()}),
        &tampered,
        b"",
    );
    assert_eq!(review(&none_kid), Some(ReviewError::UnsupportedAlgorithm));
    let none_trailing = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string().as_bytes()),
        tampered
    );
    assert_eq!(
        review(&none_trailing),
        Some(ReviewError::UnsupportedAlgorithm)
    );

    // HS256 keyed with the public key (classic algorithm confusion).
    let hs_header = json!({"alg": "HS256", "kid": signer().kid()});
    let signing_input = format!("{}.{}", b64(hs_header.to_string().as_bytes()), tampered);
    let jwk_n = signer().jwks()["keys"][0]["n"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for secret in [jwk_n.as_bytes().to_vec(), unb64(&jwk_n)] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
        let hs = format!("{signing_input}.{}", b64(tag.as_ref()));
        assert_eq!(review(&hs), Some(ReviewError::UnsupportedAlgorithm));
    }
    // RS512 header with a valid-looking signature is not accepted either.
    let rs512 = forge(
        &json!({"alg": "RS512", "kid": signer().kid()}),
        &p,
        &unb64(&s),
    );
    assert_eq!(review(&rs512), Some(ReviewError::UnsupportedAlgorithm));

    // Unknown kid: a token from another key with our issuer.
    let other = other_signer()
        .issue(&pod_request(), NOW)
        .map(|t| t.token)
        .unwrap_or_default();
    assert_eq!(review(&other), Some(ReviewError::NoKeysFound));
    assert_eq!(
        ReviewError::NoKeysFound.status_error(),
        "[invalid bearer token, invalid signature, no keys found]"
    );
    // Another key's signature under our kid, and without any kid.
    let (_, op, os) = parts(&other);
    let with_our_kid = forge(
        &json!({"alg": "RS256", "kid": signer().kid()}),
        &op,
        &unb64(&os),
    );
    assert_eq!(review(&with_our_kid), Some(ReviewError::BadSignature));
    let no_kid = forge(&json!({"alg": "RS256"}), &op, &unb64(&os));
    assert_eq!(review(&no_kid), Some(ReviewError::BadSignature));
    // Stripping the kid from our own token breaks the signature (it covers the header).
    let stripped = forge(&json!({"alg": "RS256"}), &p, &unb64(&s));
    assert_eq!(review(&stripped), Some(ReviewError::BadSignature));

    // crit headers are not supported.
    let crit = forge(
        &json!({"alg": "RS256", "kid": signer().kid(), "crit": ["exp"]}),
        &p,
        &unb64(&s),
    );
    assert_eq!(review(&crit), Some(ReviewError::BadSignature));

    // Wrong issuer (validly signed by us): not a token this authenticator handles.
    let mut wrong_iss = service_account_claims(&pod_request(), NOW).unwrap_or_default();
    wrong_iss["iss"] = json!("https://elsewhere");
    let t = signer().sign(&wrong_iss).unwrap_or_default();
    assert_eq!(review(&t), Some(ReviewError::NotHandled));
    assert_eq!(
        ReviewError::NotHandled.status_error(),
        "invalid bearer token"
    );
}

#[test]
fn malformed_tokens_are_not_handled() {
    let auds = strings(&["x"]);
    let token = issue(&pod_request(), NOW);
    let (h, p, s) = parts(&token);
    let cases = [
        String::new(),
        "garbage".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}="),
        format!("{h}.{p}=.{s}"),
        format!("{h}.!!!.{s}"),
        format!("{{\"alg\":\"RS256\"}}.{p}.{s}"),
        format!("{h}.{}.{s}", b64(b"[1,2,3]")),
        format!("{h}.{}.{s}", b64(b"not json")),
        format!("{h}.{}.{s}", b64(br#"{"iss": 5}"#)),
        format!("{}.{p}.{s}", b64(b"not json")),
        format!("{}.{p}.{s}", b64(br#"{"alg": 256}"#)),
        format!("{}.{p}.{s}", b64(br#"{"alg": "RS256", "kid": 1}"#)),
        format!("{h}.{p}.!!"),
        "  {\"iss\": \"x\"}".to_owned(),
    ];
    for t in cases {
        assert_eq!(
            signer().review(&t, NOW, &auds, &[]).err(),
            Some(ReviewError::NotHandled),
            "{t}"
        );
    }
}

#[test]
fn malformed_claims_are_reported() {
    let auds: Vec<String> = vec![];
    let base = service_account_claims(&pod_request(), NOW).unwrap_or_default();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "aud",
            json!(5),
            "go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience",
        ),
        (
            "aud",
            json!(["ok", 1]),
            "go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience",
        ),
        (
            "sub",
            json!(1),
            "json: cannot unmarshal number into Go struct field Claims.sub of type string",
        ),
        (
            "kubernetes.io",
            json!("x"),
            "json: cannot unmarshal string into Go struct field privateClaims.kubernetes.io of type serviceaccount.kubernetes",
        ),
    ];
    for (field, value, want) in cases {
        let mut c = base.clone();
        c[field] = value;
        let t = signer().sign(&c).unwrap_or_default();
        assert_eq!(
            signer()
                .review(&t, NOW, &auds, &[])
                .err()
                .map(|e| e.to_string()),
            Some(want.to_owned()),
            "{field}"
        );
    }
    // A single-string aud is accepted.
    let mut c = base.clone();
    c["aud"] = json!("api://AzureADTokenExchange");
    let t = signer().sign(&c).unwrap_or_default();
    assert!(
        signer()
            .review(&t, NOW, &strings(&["api://AzureADTokenExchange"]), &[])
            .is_ok()
    );
    // Claims must be an object to sign.
    assert!(signer().sign(&json!([1])).is_err());
}

#[derive(Default)]
struct Store {
    sas: HashMap<(String, String), ObjectState>,
    pods: HashMap<(String, String), ObjectState>,
    secrets: HashMap<(String, String), ObjectState>,
    nodes: HashMap<String, ObjectState>,
}

fn live(uid: &str) -> ObjectState {
    ObjectState {
        uid: uid.into(),
        deletion_timestamp_unix: None,
    }
}

impl ObjectLookup for Store {
    fn service_account(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.sas.get(&(namespace.into(), name.into())).cloned()
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.pods.get(&(namespace.into(), name.into())).cloned()
    }
    fn secret(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.secrets.get(&(namespace.into(), name.into())).cloned()
    }
    fn node(&self, name: &str) -> Option<ObjectState> {
        self.nodes.get(name).cloned()
    }
}

fn full_store() -> Store {
    let mut s = Store::default();
    s.sas
        .insert(("payments".into(), "api-gateway".into()), live(SA_UID));
    s.pods
        .insert(("payments".into(), "web-0".into()), live(POD_UID));
    s.secrets
        .insert(("payments".into(), "tok".into()), live("sec-uid"));
    s.nodes.insert("node-1".into(), live(NODE_UID));
    s
}

#[test]
fn bound_object_checks() {
    let auds = strings(&["api://AzureADTokenExchange"]);
    let pod_token = issue(&pod_request(), NOW);
    let run = |store: &Store, token: &str, now: i64| {
        signer()
            .authenticate(token, now, &auds, &[], store)
            .map(|_| ())
    };
    assert_eq!(run(&full_store(), &pod_token, NOW), Ok(()));

    let mut s = full_store();
    s.sas.clear();
    assert_eq!(
        run(&s, &pod_token, NOW).map_err(|e| e.status_error()),
        Err(r#"[invalid bearer token, serviceaccounts "api-gateway" not found]"#.to_owned())
    );
    let mut s = full_store();
    s.sas
        .insert(("payments".into(), "api-gateway".into()), live("recreated"));
    assert_eq!(
        run(&s, &pod_token, NOW).map_err(|e| e.to_string()),
        Err(format!(
            "service account UID (recreated) does not match claim ({SA_UID})"
        ))
    );
    let mut s = full_store();
    s.sas.insert(
        ("payments".into(), "api-gateway".into()),
        ObjectState {
            uid: SA_UID.into(),
            deletion_timestamp_unix: Some(NOW - 61),
        },
    );
    assert_eq!(
        run(&s, &pod_token, NOW).map_err(|e| e.to_string()),
        Err("service account payments/api-gateway has been deleted".to_owned())
    );
    // Deleted within the leeway: still fine.
    s.sas.insert(
        ("payments".into(), "api-gateway".into()),
        ObjectState {
            uid: SA_UID.into(),
            deletion_timestamp_unix: Some(NOW - 60),
        },
    );
    assert_eq!(run(&s, &pod_token, NOW), Ok(()));

    let mut s = full_store();
    s.pods.clear();
    assert_eq!(
        run(&s, &pod_token, NOW).map_err(|e| e.status_error()),
        Err("[invalid bearer token, service account token has been invalidated]".to_owned())
    );
    let mut s = full_store();
    s.pods
        .insert(("payments".into(), "web-0".into()), live("new-pod"));
    assert_eq!(
        run(&s, &pod_token, NOW).map_err(|e| e.to_string()),
        Err(format!(
            "pod UID (new-pod) does not match service account pod ref claim ({POD_UID})"
        ))
    );
    let mut s = full_store();
    s.pods.insert(
        ("payments".into(), "web-0".into()),
        ObjectState {
            uid: POD_UID.into(),
            deletion_timestamp_unix: Some(NOW - 3600),
        },
    );
    assert_eq!(run(&s, &pod_token, NOW), Err(ReviewError::Invalidated));
    // Pod-bound tokens do not require the node to exist.
    let mut s = full_store();
    s.nodes.clear();
    assert_eq!(run(&s, &pod_token, NOW), Ok(()));

    // Secret-bound.
    let mut req = pod_request();
    req.node = None;
    req.bound_object = Some(BoundObject {
        kind: BoundObjectKind::Secret,
        object: ObjectRef::new("tok", "sec-uid"),
    });
    let secret_token = issue(&req, NOW);
    assert_eq!(run(&full_store(), &secret_token, NOW), Ok(()));
    let mut s = full_store();
    s.secrets
        .insert(("payments".into(), "tok".into()), live("other"));
    assert_eq!(
        run(&s, &secret_token, NOW).map_err(|e| e.to_string()),
        Err(
            "secret UID (other) does not match service account secret ref claim (sec-uid)"
                .to_owned()
        )
    );
    s.secrets.clear();
    assert_eq!(run(&s, &secret_token, NOW), Err(ReviewError::Invalidated));

    // Node-bound.
    req.bound_object = Some(BoundObject {
        kind: BoundObjectKind::Node,
        object: ObjectRef::new("node-1", NODE_UID),
    });
    let node_token = issue(&req, NOW);
    let r: Result<ReviewedToken, ReviewError> =
        signer().authenticate(&node_token, NOW, &auds, &[], &full_store());
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.user.extra.get("authentication.kubernetes.io/node-name"),
        Some(&strings(&["node-1"]))
    );
    assert!(
        !r.user
            .extra
            .contains_key("authentication.kubernetes.io/pod-name")
    );
    let mut s = full_store();
    s.nodes.insert("node-1".into(), live("replaced"));
    assert_eq!(
        run(&s, &node_token, NOW).map_err(|e| e.to_string()),
        Err(format!(
            "node UID (replaced) does not match service account node ref claim ({NODE_UID})"
        ))
    );
    s.nodes.clear();
    assert_eq!(run(&s, &node_token, NOW), Err(ReviewError::Invalidated));
}

#[test]
fn token_review_status_on_error() {
    assert_eq!(
        token_review_status(Err(ReviewError::Expired)),
        json!({"user": {}, "error": "[invalid bearer token, service account token has expired]"})
    );
    assert_eq!(
        token_review_status(Err(ReviewError::NotHandled)),
        json!({"user": {}, "error": "invalid bearer token"})
    );
}
