//! Unit tests of the pure parts: cache keys, the refresh timeline (eviction is tested with the cache, in
//! `crate::cache`), response parsing, credential
//! Secrets, error mapping and redaction. The upstream behaviour is tested against azure-sim in
//! `tests/pod_tokens.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::upstream::{
    AttemptError, Service, certificate_from, client_secret_from, parse_token, scope_for, snippet,
};
use super::*;
use crate::http::HttpError;

const GUID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const ARM: &str = "https://management.azure.com/";

fn imds(client_id: Option<&str>, resource_id: Option<&str>) -> TokenSpec {
    TokenSpec::Imds {
        client_id: client_id.map(str::to_string),
        resource_id: resource_id.map(str::to_string),
    }
}

fn sp(identity_key: &str, tenant: &str, client_id: &str, aux: &[&str]) -> TokenSpec {
    TokenSpec::ServicePrincipal {
        identity_key: identity_key.into(),
        tenant_id: tenant.into(),
        client_id: client_id.into(),
        aux_tenant_ids: aux.iter().map(|s| s.to_string()).collect(),
        secret: SpSecret::ClientSecret {
            namespace: "default".into(),
            name: "sp-secret".into(),
        },
    }
}

fn fed(client_id: &str, ns: &str, sa: &str) -> TokenSpec {
    TokenSpec::Federated {
        tenant_id: "T".into(),
        client_id: client_id.into(),
        namespace: ns.into(),
        service_account: sa.into(),
    }
}

fn token(expires_on: u64) -> PodToken {
    PodToken {
        access_token: "eyJ.secret-token.sig".into(),
        expires_on,
        not_before: 0,
        resource: ARM.into(),
        token_type: "Bearer".into(),
        client_id: GUID.into(),
    }
}

#[test]
fn cache_keys_share_only_what_is_safe_to_share() {
    let upper = GUID.to_ascii_uppercase();
    let rid = "/subscriptions/S/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id";
    let rid_upper = rid.to_ascii_uppercase();
    // (a, resource a, b, resource b, same key?)
    let cases: Vec<(&str, TokenSpec, &str, TokenSpec, &str, bool)> = vec![
        (
            "client ID case",
            imds(Some(GUID), None),
            ARM,
            imds(Some(&upper), None),
            ARM,
            true,
        ),
        (
            "client ID whitespace",
            imds(Some(GUID), None),
            ARM,
            imds(Some(&format!(" {GUID} ")), None),
            ARM,
            true,
        ),
        (
            "resource ID case",
            imds(None, Some(rid)),
            ARM,
            imds(None, Some(&rid_upper)),
            ARM,
            true,
        ),
        (
            "client ID wins over resource ID",
            imds(Some(GUID), Some(rid)),
            ARM,
            imds(Some(GUID), None),
            ARM,
            true,
        ),
        (
            "empty strings are system-assigned",
            imds(Some(""), Some(" ")),
            ARM,
            imds(None, None),
            ARM,
            true,
        ),
        (
            "client ID vs resource ID",
            imds(Some(GUID), None),
            ARM,
            imds(None, Some(rid)),
            ARM,
            false,
        ),
        (
            "system vs user",
            imds(None, None),
            ARM,
            imds(Some(GUID), None),
            ARM,
            false,
        ),
        (
            "resource is exact",
            imds(Some(GUID), None),
            ARM,
            imds(Some(GUID), None),
            "https://management.azure.com",
            false,
        ),
        (
            "resource case is exact",
            imds(Some(GUID), None),
            ARM,
            imds(Some(GUID), None),
            "HTTPS://management.azure.com/",
            false,
        ),
        (
            "SP: same identity, tenant case",
            sp("ns/a/uid/1", "T", GUID, &[]),
            ARM,
            sp("ns/a/uid/1", "t", &upper, &[]),
            ARM,
            true,
        ),
        (
            "SP: another AzureIdentity with the same app",
            sp("ns/a/uid/1", "T", GUID, &[]),
            ARM,
            sp("ns/b/uid2/1", "T", GUID, &[]),
            ARM,
            false,
        ),
        (
            "SP: an edited AzureIdentity",
            sp("ns/a/uid/1", "T", GUID, &[]),
            ARM,
            sp("ns/a/uid/2", "T", GUID, &[]),
            ARM,
            false,
        ),
        (
            "SP: aux tenants matter",
            sp("ns/a/uid/1", "T", GUID, &[]),
            ARM,
            sp("ns/a/uid/1", "T", GUID, &["T2"]),
            ARM,
            false,
        ),
        (
            "SP: empty aux tenants are dropped",
            sp("ns/a/uid/1", "T", GUID, &[]),
            ARM,
            sp("ns/a/uid/1", "T", GUID, &[" "]),
            ARM,
            true,
        ),
        (
            "federated: same SA",
            fed(GUID, "ns", "sa"),
            ARM,
            fed(&upper, "ns", "sa"),
            ARM,
            true,
        ),
        (
            "federated: another SA",
            fed(GUID, "ns", "sa"),
            ARM,
            fed(GUID, "ns", "sb"),
            ARM,
            false,
        ),
        (
            "federated: another namespace",
            fed(GUID, "ns", "sa"),
            ARM,
            fed(GUID, "nt", "sa"),
            ARM,
            false,
        ),
        (
            "federated vs IMDS with the same client ID",
            fed(GUID, "ns", "sa"),
            ARM,
            imds(Some(GUID), None),
            ARM,
            false,
        ),
    ];
    for (name, a, ra, b, rb, same) in cases {
        assert_eq!(
            a.cache_key(ra) == b.cache_key(rb),
            same,
            "{name}: {a:?} vs {b:?}"
        );
    }
}

/// `(refresh_at, usable_until)` in epoch milliseconds for tokens that arrived at `now_ms`, as the cache computes
/// them with the provider's policy.
fn timeline(tokens: &[PodToken], now_ms: u64, opts: &PodTokenOptions) -> (u64, u64) {
    let expires = Arc::new(tokens.to_vec()).expires_on_ms();
    let t = crate::cache::timeline(expires, now_ms, &opts.cache_policy());
    (t.refresh_at_ms, t.usable_until_ms)
}

#[test]
fn timeline_refreshes_in_the_margin_and_stops_before_expiry() {
    let opts = PodTokenOptions::default();
    let now_ms = 1_700_000_000_000u64;
    let now_s = now_ms / 1000;
    // (lifetime s, refresh before expiry ms, usable before expiry ms)
    for (life, refresh_before, usable_before) in [
        (86_400u64, 300_000u64, 30_000u64),
        (3600, 300_000, 30_000),
        (600, 300_000, 30_000),
        (400, 200_000, 30_000),
        (100, 50_000, 25_000),
        (8, 4_000, 2_000),
        (0, 0, 0),
    ] {
        let exp_ms = (now_s + life) * 1000;
        let (refresh, usable) = timeline(&[token(now_s + life)], now_ms, &opts);
        assert_eq!(exp_ms - refresh, refresh_before, "lifetime {life}");
        assert_eq!(exp_ms - usable, usable_before, "lifetime {life}");
        assert!(refresh <= usable, "lifetime {life}");
    }
    // Already expired: nothing is servable.
    let (refresh, usable) = timeline(&[token(now_s - 10)], now_ms, &opts);
    assert!(refresh <= now_ms && usable <= now_ms);
    // Several tokens (auxiliary tenants): the earliest expiry rules.
    let (_, usable) = timeline(&[token(now_s + 3600), token(now_s + 600)], now_ms, &opts);
    assert_eq!(usable, (now_s + 600) * 1000 - 30_000);
    // No token at all (cannot happen) is never servable.
    let (_, usable) = timeline(&[], now_ms, &opts);
    assert!(usable <= now_ms);
}

#[test]
fn scopes_are_built_like_the_sdks() {
    for (resource, scope) in [
        (
            "https://management.azure.com/",
            "https://management.azure.com/.default",
        ),
        (
            "https://management.azure.com",
            "https://management.azure.com/.default",
        ),
        (
            "https://vault.azure.net",
            "https://vault.azure.net/.default",
        ),
        (
            "https://vault.azure.net/.default",
            "https://vault.azure.net/.default",
        ),
        ("api://my-app", "api://my-app/.default"),
        (
            " https://graph.microsoft.com ",
            "https://graph.microsoft.com/.default",
        ),
    ] {
        assert_eq!(scope_for(resource), scope, "{resource}");
    }
}

#[test]
fn token_responses_of_every_shape() {
    let now = 1_700_000_000i64;
    let n = now as u64;
    // IMDS: strings, client_id, resource.
    let imds_body = format!(
        r#"{{"access_token":"tok","client_id":"cid","expires_in":"86399","expires_on":"{}","ext_expires_in":"86399","not_before":"{}","resource":"https://r/","token_type":"Bearer"}}"#,
        now + 86_399,
        now - 5
    );
    let t = parse_token(imds_body.as_bytes(), "req", "fallback", now).expect("imds");
    assert_eq!(
        (
            t.access_token.as_str(),
            t.expires_on,
            t.not_before,
            t.resource.as_str(),
            t.client_id.as_str()
        ),
        ("tok", n + 86_399, n - 5, "https://r/", "cid")
    );
    // v2: numbers, no resource, no expires_on.
    let t = parse_token(
        br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"tok"}"#,
        "https://vault.azure.net",
        "spec-client",
        now,
    )
    .expect("v2");
    assert_eq!(t.expires_on, n + 3599);
    assert_eq!(t.not_before, n);
    assert_eq!(t.resource, "https://vault.azure.net");
    assert_eq!(t.client_id, "spec-client");
    assert_eq!(t.token_type, "Bearer");
    // The earlier of expires_on and now + expires_in wins (a node clock behind the issuer's).
    let t = parse_token(
        format!(
            r#"{{"access_token":"a","expires_in":"3600","expires_on":"{}"}}"#,
            now + 600
        )
        .as_bytes(),
        "r",
        "c",
        now,
    )
    .expect("min");
    assert_eq!(t.expires_on, n + 600);
    // An expires_on in the past (node clock ahead) falls back to expires_in.
    let t = parse_token(
        format!(
            r#"{{"access_token":"a","expires_in":60,"expires_on":{}}}"#,
            now - 600
        )
        .as_bytes(),
        "r",
        "c",
        now,
    )
    .expect("past");
    assert_eq!(t.expires_on, n + 60);
    // Absurd lifetimes are capped at two days; missing ones are an hour.
    let t = parse_token(
        br#"{"access_token":"a","expires_in":"99999999999"}"#,
        "r",
        "c",
        now,
    )
    .expect("cap");
    assert_eq!(t.expires_on, n + 2 * 86_400);
    let t = parse_token(br#"{"access_token":"a"}"#, "r", "c", now).expect("fallback");
    assert_eq!(t.expires_on, n + 3600);
    let t = parse_token(br#"{"access_token":"a","expires_in":-5}"#, "r", "c", now).expect("neg");
    assert_eq!(t.expires_on, n);
    // Unusable bodies: the description never quotes the body.
    for body in [
        &b"not json"[..],
        b"[]",
        b"{}",
        br#"{"access_token":""}"#,
        br#"{"access_token":42,"refresh_token":"secret-refresh"}"#,
    ] {
        let e = parse_token(body, "r", "c", now).expect_err("bad body");
        assert!(!e.contains("secret-refresh"), "{e}");
    }
}

#[test]
fn client_secrets_from_secrets() {
    let data = |pairs: &[(&str, &[u8])]| -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    };
    assert_eq!(
        client_secret_from("ns", "s", &data(&[("clientSecret", b"abc~123")])).expect("one"),
        "abc~123"
    );
    assert_eq!(
        client_secret_from("ns", "s", &data(&[("k", b"abc\n")])).expect("newline"),
        "abc"
    );
    // The first key in order.
    assert_eq!(
        client_secret_from("ns", "s", &data(&[("b", b"second"), ("a", b"first")])).expect("first"),
        "first"
    );
    for (d, want) in [
        (data(&[]), "has no data"),
        (data(&[("k", b"")]), "is empty"),
        (data(&[("k", &[0xff, 0xfe])]), "not UTF-8"),
    ] {
        let e = client_secret_from("ns", "s", &d).expect_err(want);
        assert!(matches!(e, PodTokenError::Unavailable(_)), "{e}");
        assert!(e.to_string().contains(want), "{e}");
        assert!(e.to_string().contains("ns/s"), "{e}");
    }
}

struct Pem {
    cert: String,
    key: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn rsa_cert() -> Pem {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let cert = rcgen::CertificateParams::new(vec!["sp".to_string()])
        .expect("params")
        .self_signed(&kp)
        .expect("cert");
    Pem {
        cert: cert.pem(),
        key: pem("PRIVATE KEY", &kp.serialize_der()),
    }
}

#[test]
fn certificates_from_secrets() {
    let c = rsa_cert();
    let data = |pairs: &[(&str, &[u8])]| -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    };
    let both = format!("{}{}", c.cert, c.key);
    certificate_from("ns", "s", &data(&[("certificate", both.as_bytes())])).expect("certificate");
    certificate_from(
        "ns",
        "s",
        &data(&[
            ("tls.crt", c.cert.as_bytes()),
            ("tls.key", c.key.as_bytes()),
        ]),
    )
    .expect("tls pair");
    certificate_from(
        "ns",
        "s",
        &data(&[
            ("certificate", c.cert.as_bytes()),
            ("tls.key", c.key.as_bytes()),
        ]),
    )
    .expect("certificate + tls.key");
    let pfx: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x03];
    let other = rsa_cert();
    let mismatched = format!("{}{}", c.cert, other.key);
    for (d, want) in [
        (data(&[("certificate", pfx)]), "openssl pkcs12"),
        (
            data(&[("certificate", b"binary"), ("password", b"pw")]),
            "openssl pkcs12",
        ),
        (data(&[("certificate", b"garbage")]), "not a PEM file"),
        (data(&[("other", both.as_bytes())]), "neither"),
        (
            data(&[("certificate", c.cert.as_bytes())]),
            "no private key section",
        ),
        (
            data(&[("certificate", mismatched.as_bytes())]),
            "does not belong",
        ),
        (
            data(&[(
                "certificate",
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            )]),
            "encrypted",
        ),
    ] {
        let e = certificate_from("ns", "s", &d).expect_err(want);
        assert!(matches!(e, PodTokenError::Unavailable(_)), "{e}");
        let text = e.to_string();
        assert!(text.contains(want), "{text}");
        assert!(text.contains("Secret ns/s"), "{text}");
        assert!(!text.contains("PRIVATE KEY-----\nMII"), "{text}");
    }
}

#[test]
fn attempt_errors_classify_and_map() {
    let status = |s: u16| AttemptError::Status {
        status: s,
        body: "{\"error\":\"x\"}".into(),
        retry_after: None,
    };
    // (error, service, transient)
    for (e, service, transient) in [
        (status(400), Service::Imds, false),
        (status(404), Service::Imds, true),
        (status(410), Service::Imds, true),
        (status(429), Service::Imds, true),
        (status(500), Service::Imds, true),
        (status(501), Service::Imds, false),
        (status(503), Service::Imds, true),
        (status(404), Service::Entra, false),
        (status(401), Service::Entra, false),
        (status(408), Service::Entra, true),
        (status(429), Service::Entra, true),
        (status(502), Service::Entra, true),
        (
            AttemptError::Timeout(Duration::from_secs(1)),
            Service::Entra,
            true,
        ),
        (
            AttemptError::Http(HttpError::Transport {
                method: "GET".into(),
                url: "u".into(),
                message: "refused".into(),
            }),
            Service::Imds,
            true,
        ),
        (
            AttemptError::Http(HttpError::InvalidRequest {
                url: "u".into(),
                message: "m".into(),
            }),
            Service::Imds,
            false,
        ),
        (AttemptError::BadToken("b".into()), Service::Entra, false),
        (AttemptError::Local("l".into()), Service::Entra, false),
    ] {
        assert_eq!(e.transient(service), transient, "{e:?} {service:?}");
        let mapped = e.into_error(service, "http://imds/x?resource=r", 3);
        let refused = matches!(mapped, PodTokenError::Refused { .. });
        assert_eq!(
            mapped.http_status(),
            if refused { 403 } else { 503 },
            "{mapped}"
        );
        // Definite non-token answers are refusals; transient ones that ran out are unavailability.
        assert!(!(transient && refused), "{mapped}");
    }
    let e = status(400).into_error(
        Service::Imds,
        "http://imds/metadata/identity/oauth2/token?resource=r",
        1,
    );
    assert_eq!(
        e.to_string(),
        "adal: Refresh request failed. Status Code = '400'. Response body: {\"error\":\"x\"} Endpoint http://imds/metadata/identity/oauth2/token?resource=r"
    );
}

#[test]
fn snippets_are_bounded() {
    assert_eq!(snippet(b"  {\"a\":1}\n"), "{\"a\":1}");
    let long = "é".repeat(5000);
    let s = snippet(long.as_bytes());
    assert_eq!(
        s.chars().count(),
        upstream::MAX_BODY_SNIPPET_CHARS + 3,
        "bounded"
    );
}

#[test]
fn debug_and_display_hide_tokens() {
    let t = token(1);
    let d = format!("{t:?}");
    assert!(!d.contains("secret-token"), "{d}");
    assert!(d.contains("redacted"), "{d}");
    assert_eq!(t.expires_in(0), 1);
    assert_eq!(t.expires_in(5), 0);
    assert_eq!(PodTokenError::Unavailable("x".into()).http_status(), 503);
}

/// A provider that never calls upstream.
fn offline(max_entries: usize) -> PodTokenProvider {
    let http = crate::http::HttpClient::new(crate::http::HttpOptions::default()).expect("http");
    PodTokenProvider::new(
        http,
        &Environment::public(),
        "http://127.0.0.1:9",
        PodTokenOptions {
            max_entries,
            ..PodTokenOptions::default()
        },
    )
}

#[test]
fn spec_secret_refs() {
    let s = SpSecret::Certificate {
        namespace: "ns".into(),
        name: "n".into(),
    };
    assert_eq!(s.secret_ref(), ("ns", "n"));
    assert!(format!("{:?}", offline(1)).contains("127.0.0.1:9"));
}

proptest::proptest! {
    #[test]
    fn scope_is_idempotent_and_default(r in "[ -~]{0,60}") {
        let s = scope_for(&r);
        proptest::prop_assert!(s.ends_with("/.default"));
        proptest::prop_assert_eq!(scope_for(&s), s.clone());
    }

    #[test]
    fn parse_token_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200), now in 0i64..4_000_000_000) {
        let _ = parse_token(&body, "r", "c", now);
    }

    #[test]
    fn parsed_expiry_is_bounded(expires_in in proptest::num::i64::ANY, expires_on in proptest::num::i64::ANY, now in 0i64..4_000_000_000) {
        let body = format!(r#"{{"access_token":"a","expires_in":{expires_in},"expires_on":"{expires_on}"}}"#);
        let t = parse_token(body.as_bytes(), "r", "c", now).expect("token");
        let now = now as u64;
        proptest::prop_assert!(t.expires_on >= now && t.expires_on <= now + 2 * 86_400);
    }

    #[test]
    fn guid_case_never_splits_the_cache(mask in proptest::collection::vec(proptest::bool::ANY, 36)) {
        let mixed: String = GUID
            .chars()
            .zip(mask.iter().chain(std::iter::repeat(&false)))
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect();
        proptest::prop_assert_eq!(
            imds(Some(GUID), None).cache_key(ARM),
            imds(Some(&mixed), None).cache_key(ARM)
        );
        proptest::prop_assert_eq!(
            fed(GUID, "ns", "sa").cache_key(ARM),
            fed(&mixed, "ns", "sa").cache_key(ARM)
        );
    }
}
