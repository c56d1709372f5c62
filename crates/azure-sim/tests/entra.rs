//! Entra ID over real HTTPS: client secrets, certificate assertions, federated assertions (with a fake OIDC
//! issuer for the JWT checks), discovery, and every AADSTS failure.

mod common;

use common::*;
use serde_json::{Value, json};

const V2: &str = "/oauth2/v2.0/token";

fn enc(s: &str) -> String {
    azure_sim::form::encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_v2_and_v1() {
    let sim = start().await;
    let app = sim.app_id("controller");
    let r = sim
        .entra_post(&format!("/{TENANT}{V2}"), &format!("grant_type=client_credentials&client_id={app}&client_secret={CONTROLLER_SECRET}&scope={}", enc("https://management.azure.com//.default")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store, no-cache")
    );
    let v = r.json();
    assert_eq!(v["token_type"], json!("Bearer"));
    assert!(
        v["expires_in"]
            .as_i64()
            .is_some_and(|e| e > 3500 && e <= 3599),
        "{v}"
    );
    assert!(v["ext_expires_in"].is_i64());
    let tok = v["access_token"].as_str().unwrap_or_default();
    let c = claims(tok);
    assert_eq!(c["aud"], json!("https://management.azure.com/"));
    assert_eq!(c["appid"], json!(app));
    assert_eq!(c["appidacr"], json!("1"));
    assert_eq!(c["tid"], json!(TENANT));
    assert_eq!(c["ver"], json!("1.0"));
    assert_eq!(c["idtyp"], json!("app"));
    assert!(c["uti"].is_string() && c["iat"].is_i64() && c["nbf"].is_i64() && c["exp"].is_i64());
    assert!(verify_with_jwks(&sim, tok).await);
    // By domain name, and the v1 endpoint with string numbers.
    let r = sim
        .entra_post("/contoso.onmicrosoft.com/oauth2/token?api-version=1.0", &format!("grant_type=client_credentials&client_id={app}&client_secret={CONTROLLER_SECRET}&resource={}", enc("https://management.azure.com/")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(
        v["expires_in"].is_string() && v["expires_on"].is_string() && v["not_before"].is_string()
    );
    assert_eq!(v["resource"], json!("https://management.azure.com/"));
    // HTTP Basic client authentication.
    let basic = azure_sim::jwt::b64std(format!("{app}:{CONTROLLER_SECRET}").as_bytes());
    let r = send(
        &format!("{}/{TENANT}{V2}", sim.handle.entra_url),
        "POST",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &format!("Basic {basic}")),
        ],
        format!(
            "grant_type=client_credentials&scope={}",
            enc("https://vault.azure.net/.default")
        )
        .into_bytes(),
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A v2 resource app gets a v2 token with its app ID as audience.
    let r = sim
        .entra_post(&format!("/{TENANT}{V2}"), &format!("grant_type=client_credentials&client_id={app}&client_secret={CONTROLLER_SECRET}&scope={}", enc("api://contoso-api/.default")))
        .await;
    let c = claims(r.json()["access_token"].as_str().unwrap_or_default());
    assert_eq!(c["ver"], json!("2.0"));
    assert_eq!(c["aud"], json!(sim.app_id("api")));
    assert_eq!(c["azp"], json!(app));
    assert_eq!(
        c["iss"],
        json!(format!(
            "https://{}/{TENANT}/v2.0",
            sim.handle.entra_url.trim_start_matches("https://")
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aadsts_errors() {
    let sim = start().await;
    let app = sim.app_id("reader");
    let scope = enc("https://vault.azure.net/.default");
    let ok = format!(
        "grant_type=client_credentials&client_id={app}&client_secret={READER_SECRET}&scope={scope}"
    );
    let cases: Vec<(String, String, u16, &str, u64)> = vec![
        (
            "/bad_tenant!".into(),
            ok.clone(),
            400,
            "invalid_request",
            900023,
        ),
        (
            "/99999999-9999-9999-9999-999999999999".into(),
            ok.clone(),
            400,
            "invalid_request",
            90002,
        ),
        (
            "/nobody.example".into(),
            ok.clone(),
            400,
            "invalid_request",
            90002,
        ),
        ("/common".into(), ok.clone(), 400, "invalid_request", 50059),
        (
            format!("/{TENANT}"),
            String::new(),
            400,
            "invalid_request",
            900144,
        ),
        (
            format!("/{TENANT}"),
            format!("grant_type=password&client_id={app}&scope={scope}"),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            format!("/{TENANT}"),
            format!("grant_type=client_credentials&client_secret=x&scope={scope}"),
            400,
            "invalid_request",
            900144,
        ),
        (
            format!("/{TENANT}"),
            format!("grant_type=client_credentials&client_id={app}&client_secret=x"),
            400,
            "invalid_request",
            900144,
        ),
        (
            format!("/{TENANT}"),
            format!(
                "grant_type=client_credentials&client_id={app}&client_secret=x&scope=https://vault.azure.net/secrets.read"
            ),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            format!("/{TENANT}"),
            format!("grant_type=client_credentials&client_id={app}&scope={scope}"),
            401,
            "invalid_client",
            7000218,
        ),
        (
            format!("/{TENANT}"),
            format!(
                "grant_type=client_credentials&client_id=00000000-0000-0000-0000-000000000001&client_secret=x&scope={scope}"
            ),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            format!("/{OTHER_TENANT}"),
            ok.clone(),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            format!("/{TENANT}"),
            format!(
                "grant_type=client_credentials&client_id={app}&client_secret=wrong&scope={scope}"
            ),
            401,
            "invalid_client",
            7000215,
        ),
        (
            format!("/{TENANT}"),
            format!(
                "grant_type=client_credentials&client_id={app}&client_secret=expired-secret&scope={scope}"
            ),
            401,
            "invalid_client",
            7000222,
        ),
        (
            format!("/{TENANT}"),
            format!(
                "grant_type=client_credentials&client_id={app}&client_secret={READER_SECRET}&scope={}",
                enc("https://nothing.example/.default")
            ),
            400,
            "invalid_resource",
            500011,
        ),
        (
            format!("/{TENANT}"),
            "%%%&&&==&grant_type".into(),
            400,
            "invalid_request",
            900144,
        ),
    ];
    for (tenant, form, status, error, code) in cases {
        let r = sim.entra_post(&format!("{tenant}{V2}"), &form).await;
        assert_eq!(
            (r.status, r.aadsts()),
            (status, Some(code)),
            "{tenant} {form}: {}",
            r.text()
        );
        let v = r.json();
        assert_eq!(v["error"], json!(error), "{form}");
        let d = v["error_description"].as_str().unwrap_or("");
        assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
        assert!(
            d.contains("Trace ID: ") && d.contains("Correlation ID: ") && d.contains("Timestamp: "),
            "{d}"
        );
        for k in ["timestamp", "trace_id", "correlation_id"] {
            assert!(v[k].is_string(), "{k}");
        }
    }
    // GET on the token endpoint.
    let r = send(
        &format!("{}/{TENANT}{V2}", sim.handle.entra_url),
        "GET",
        &[],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!((r.status, r.aadsts()), (400, Some(900561)));
    // A JSON body is not a form: Entra sees no grant_type.
    let r = send(
        &format!("{}/{TENANT}{V2}", sim.handle.entra_url),
        "POST",
        &[
            ("content-type", "application/json"),
            ("client-request-id", "abc-123"),
        ],
        br#"{"grant_type":"client_credentials"}"#.to_vec(),
        sim.ca(),
    )
    .await;
    assert_eq!(r.aadsts(), Some(900144));
    assert_eq!(r.json()["correlation_id"], json!("abc-123"));
    assert_eq!(r.header("client-request-id").as_deref(), Some("abc-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents_and_keys() {
    let sim = start().await;
    let host = sim
        .handle
        .entra_url
        .trim_start_matches("https://")
        .to_string();
    let get = |p: String| {
        let url = format!("{}{p}", sim.handle.entra_url);
        let ca = sim.ca().to_string();
        async move { send(&url, "GET", &[], vec![], &ca).await }
    };
    let r = get(format!("/{TENANT}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(r.status, 200);
    let d = r.json();
    assert_eq!(d["issuer"], json!(format!("https://{host}/{TENANT}/v2.0")));
    assert_eq!(
        d["token_endpoint"],
        json!(format!("https://{host}/{TENANT}/oauth2/v2.0/token"))
    );
    assert_eq!(
        d["authorization_endpoint"],
        json!(format!("https://{host}/{TENANT}/oauth2/v2.0/authorize"))
    );
    let jwks = get(d["jwks_uri"]
        .as_str()
        .unwrap_or("")
        .replace(&format!("https://{host}"), ""))
    .await;
    assert_eq!(jwks.status, 200);
    assert!(jwks.json()["keys"][0]["n"].is_string());
    let r = get(format!("/{TENANT}/.well-known/openid-configuration")).await;
    assert_eq!(
        r.json()["issuer"],
        json!(format!("https://sts.windows.net/{TENANT}/"))
    );
    let r = get("/common/v2.0/.well-known/openid-configuration".into()).await;
    assert_eq!(
        r.json()["issuer"],
        json!(format!("https://{host}/{{tenantid}}/v2.0"))
    );
    let r =
        get("/99999999-9999-9999-9999-999999999999/v2.0/.well-known/openid-configuration".into())
            .await;
    assert_eq!(
        (r.status, r.json()["error"].clone(), r.aadsts()),
        (400, json!("invalid_tenant"), Some(90002))
    );
    let q = format!(
        "authorization_endpoint={}&api-version=1.1",
        enc(&format!("https://{host}/{TENANT}/oauth2/v2.0/authorize"))
    );
    let r = get(format!("/common/discovery/instance?{q}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["tenant_discovery_endpoint"],
        json!(format!(
            "https://{host}/{TENANT}/v2.0/.well-known/openid-configuration"
        ))
    );
    let q = format!(
        "authorization_endpoint={}",
        enc("https://evil.example/t/oauth2/v2.0/authorize")
    );
    let r = get(format!("/common/discovery/instance?{q}")).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_instance"))
    );
}

fn sign_rsa(key: &aws_lc_rs::rsa::KeyPair, header: &Value, claims: &Value, pss: bool) -> String {
    let h = azure_sim::jwt::b64url(header.to_string().as_bytes());
    let p = azure_sim::jwt::b64url(claims.to_string().as_bytes());
    let input = format!("{h}.{p}");
    let mut sig = vec![0u8; key.public_modulus_len()];
    let alg: &'static dyn aws_lc_rs::signature::RsaEncoding = if pss {
        &aws_lc_rs::signature::RSA_PSS_SHA256
    } else {
        &aws_lc_rs::signature::RSA_PKCS1_SHA256
    };
    key.sign(
        alg,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{input}.{}", azure_sim::jwt::b64url(&sig))
}

struct CertApp {
    key: aws_lc_rs::rsa::KeyPair,
    x5t: String,
    x5t_s256: String,
    pem: String,
}

fn cert_app() -> CertApp {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let params = rcgen::CertificateParams::new(vec!["cert-app".to_string()]).expect("params");
    let cert = params.self_signed(&kp).expect("self-signed");
    let der = cert.der().to_vec();
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    CertApp {
        key: aws_lc_rs::rsa::KeyPair::from_pkcs8(&kp.serialize_der()).expect("pkcs8"),
        x5t: azure_sim::jwt::b64url(sha1.as_ref()),
        x5t_s256: azure_sim::jwt::b64url(sha256.as_ref()),
        pem: cert.pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_assertions() {
    install_crypto();
    let app_cert = cert_app();
    let other_cert = cert_app();
    let mut world = base_world();
    world["applications"].as_array_mut().expect("apps").push(json!({"displayName": "cert-app", "tenantId": TENANT, "certificates": [{"pem": app_cert.pem}]}));
    let sim = start_with(world, |_| {}).await;
    let app = sim.app_id("cert-app");
    let aud = format!("{}/{TENANT}/oauth2/v2.0/token", sim.handle.entra_url);
    let n = now();
    let good_claims =
        json!({"aud": aud, "iss": app, "sub": app, "jti": "j1", "nbf": n - 10, "exp": n + 600});
    let post = |assertion: String| {
        let form = format!(
            "grant_type=client_credentials&client_id={app}&client_assertion_type={}&client_assertion={assertion}&scope={}",
            enc(azure_sim::entra::JWT_BEARER),
            enc("https://vault.azure.net/.default")
        );
        let url = format!("{}/{TENANT}{V2}", sim.handle.entra_url);
        let ca = sim.ca().to_string();
        async move {
            send(
                &url,
                "POST",
                &[("content-type", "application/x-www-form-urlencoded")],
                form.into_bytes(),
                &ca,
            )
            .await
        }
    };
    // RS256 with x5t (msal's classic form) and PS256 with x5t#S256 (newer MSALs).
    let r = post(sign_rsa(
        &app_cert.key,
        &json!({"alg": "RS256", "typ": "JWT", "x5t": app_cert.x5t}),
        &good_claims,
        false,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap_or_default())["appidacr"],
        json!("2")
    );
    let r = post(sign_rsa(
        &app_cert.key,
        &json!({"alg": "PS256", "typ": "JWT", "x5t#S256": app_cert.x5t_s256}),
        &good_claims,
        true,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // MSAL for Python pads the thumbprint (`x5t` of a 20-byte SHA-1 is 27 base64url characters plus `=`); Entra
    // accepts both forms.
    let r = post(sign_rsa(
        &app_cert.key,
        &json!({"alg": "RS256", "typ": "JWT", "x5t": format!("{}=", app_cert.x5t)}),
        &good_claims,
        false,
    ))
    .await;
    assert_eq!(r.status, 200, "padded x5t: {}", r.text());
    let domain_aud = json!({"aud": format!("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token"), "iss": app, "sub": app, "exp": n + 600});
    let r = post(sign_rsa(
        &app_cert.key,
        &json!({"alg": "RS256", "x5t": app_cert.x5t}),
        &domain_aud,
        false,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cases: Vec<(String, u16, u64, &str)> = vec![
        (
            sign_rsa(
                &other_cert.key,
                &json!({"alg": "RS256", "x5t": other_cert.x5t}),
                &good_claims,
                false,
            ),
            401,
            700027,
            "The key was not found.",
        ),
        (
            sign_rsa(
                &other_cert.key,
                &json!({"alg": "RS256", "x5t": app_cert.x5t}),
                &good_claims,
                false,
            ),
            401,
            700027,
            "use of the key to verify the signature failed",
        ),
        (
            sign_rsa(&app_cert.key, &json!({"alg": "RS256"}), &good_claims, false),
            400,
            50027,
            "No certificate thumbprint",
        ),
        (
            sign_rsa(
                &app_cert.key,
                &json!({"alg": "RS256", "x5t": app_cert.x5t}),
                &json!({"aud": "https://elsewhere/x", "iss": app, "sub": app, "exp": n + 600}),
                false,
            ),
            401,
            700023,
            "audience",
        ),
        (
            sign_rsa(
                &app_cert.key,
                &json!({"alg": "RS256", "x5t": app_cert.x5t}),
                &json!({"aud": aud, "iss": app, "sub": "someone", "exp": n + 600}),
                false,
            ),
            401,
            50048,
            "Subject must match",
        ),
        (
            sign_rsa(
                &app_cert.key,
                &json!({"alg": "RS256", "x5t": app_cert.x5t}),
                &json!({"aud": aud, "iss": app, "sub": app, "nbf": n - 7200, "exp": n - 3600}),
                false,
            ),
            401,
            700024,
            "not within its valid time range",
        ),
        (
            "not.a.jwt".into(),
            400,
            50027,
            "JWT token is invalid or malformed",
        ),
    ];
    for (assertion, status, code, text) in cases {
        let r = post(assertion).await;
        assert_eq!((r.status, r.aadsts()), (status, Some(code)), "{}", r.text());
        assert!(
            r.json()["error_description"]
                .as_str()
                .unwrap_or("")
                .contains(text),
            "{}",
            r.text()
        );
    }
}

async fn federated_sim() -> (TestSim, FakeIssuer) {
    let issuer = FakeIssuer::start().await;
    let mut world = base_world();
    world["applications"].as_array_mut().expect("apps").extend([
        json!({"displayName": "fed-app", "tenantId": TENANT, "federatedIdentityCredentials": [
            {"name": "web", "issuer": issuer.url, "subject": "system:serviceaccount:default:web", "audiences": ["api://AzureADTokenExchange"]}]}),
        json!({"displayName": "nofic-app", "tenantId": TENANT}),
    ]);
    world["userAssignedIdentities"].as_array_mut().expect("ids").push(json!({"name": "id-fed", "resourceGroup": "rg-ids",
        "federatedIdentityCredentials": [{"name": "job", "issuer": issuer.url, "subject": "system:serviceaccount:batch:job"}]}));
    let pem = issuer.ca_pem.clone();
    let sim = start_with(world, move |c| c.oidc_trust_pem.push(pem)).await;
    (sim, issuer)
}

async fn fed_post(sim: &TestSim, client_id: &str, assertion: &str) -> Reply {
    sim.entra_post(
        &format!("/{TENANT}{V2}"),
        &format!(
            "grant_type=client_credentials&client_id={client_id}&client_assertion_type={}&client_assertion={assertion}&scope={}",
            enc(azure_sim::entra::JWT_BEARER),
            enc("https://vault.azure.net/.default")
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_assertions_and_jwt_checks() {
    let (sim, issuer) = federated_sim().await;
    let app = sim.app_id("fed-app");
    let n = now();
    // Happy paths: an app and a user-assigned identity.
    let r = fed_post(
        &sim,
        &app,
        &issuer.assertion("system:serviceaccount:default:web", n),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = claims(r.json()["access_token"].as_str().unwrap_or_default());
    assert_eq!(
        (c["appid"].clone(), c["appidacr"].clone()),
        (json!(app), json!("2"))
    );
    let uami = sim.uami("id-fed");
    let r = fed_post(
        &sim,
        uami.client_id.as_deref().unwrap_or(""),
        &issuer.assertion("system:serviceaccount:batch:job", n),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = claims(r.json()["access_token"].as_str().unwrap_or_default());
    assert_eq!(c["xms_mirid"], json!(uami.id()));
    assert_eq!(c["oid"], json!(uami.principal_id));
    let fetches = sim.handle.sim.oidc.fetch_count();
    assert_eq!(fetches, 1, "keys are cached per issuer");

    let sub = "system:serviceaccount:default:web";
    let claims_with = |iss: &str, sub: &str, aud: Value, nbf: i64, exp: i64| json!({"iss": iss, "sub": sub, "aud": aud, "iat": nbf, "nbf": nbf, "exp": exp});
    let aud = json!(["api://AzureADTokenExchange"]);
    let good = issuer.assertion(sub, n);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[1] = azure_sim::jwt::b64url(
        claims_with(&issuer.url, sub, aud.clone(), n, n + 7200)
            .to_string()
            .as_bytes(),
    );
    let tampered = parts.join(".");
    let none = format!(
        "{}.{}.",
        azure_sim::jwt::b64url(br#"{"alg":"none","typ":"JWT"}"#),
        azure_sim::jwt::b64url(
            claims_with(&issuer.url, sub, aud.clone(), n, n + 600)
                .to_string()
                .as_bytes()
        )
    );
    let cases: Vec<(&str, String, u16, u64)> = vec![
        ("tampered signature", tampered, 401, 700027),
        (
            "wrong issuer",
            issuer.sign(
                &claims_with("https://elsewhere.example", sub, aud.clone(), n, n + 600),
                Some(&issuer.kid),
            ),
            401,
            700211,
        ),
        (
            "issuer differs by a trailing slash",
            issuer.sign(
                &claims_with(&format!("{}/", issuer.url), sub, aud.clone(), n, n + 600),
                Some(&issuer.kid),
            ),
            401,
            700211,
        ),
        (
            "wrong subject (case)",
            issuer.sign(
                &claims_with(
                    &issuer.url,
                    "system:serviceaccount:default:WEB",
                    aud.clone(),
                    n,
                    n + 600,
                ),
                Some(&issuer.kid),
            ),
            401,
            700213,
        ),
        (
            "wrong audience",
            issuer.sign(
                &claims_with(&issuer.url, sub, json!("api://other"), n, n + 600),
                Some(&issuer.kid),
            ),
            401,
            700212,
        ),
        (
            "expired",
            issuer.sign(
                &claims_with(&issuer.url, sub, aud.clone(), n - 7200, n - 3600),
                Some(&issuer.kid),
            ),
            401,
            700024,
        ),
        (
            "not yet valid",
            issuer.sign(
                &claims_with(&issuer.url, sub, aud.clone(), n + 3600, n + 7200),
                Some(&issuer.kid),
            ),
            401,
            700024,
        ),
        (
            "unknown kid",
            issuer.sign(
                &claims_with(&issuer.url, sub, aud.clone(), n, n + 600),
                Some("rotated-away"),
            ),
            401,
            700027,
        ),
        ("alg none", none, 400, 50027),
    ];
    for (name, assertion, status, code) in cases {
        let r = fed_post(&sim, &app, &assertion).await;
        assert_eq!(
            (r.status, r.aadsts()),
            (status, Some(code)),
            "{name}: {}",
            r.text()
        );
    }
    assert_eq!(
        sim.handle.sim.oidc.fetch_count(),
        fetches,
        "refetches are rate-limited"
    );
    // No federated credentials at all: the generic AADSTS70021.
    let r = fed_post(&sim, &sim.app_id("nofic-app"), &issuer.assertion(sub, n)).await;
    assert_eq!((r.status, r.aadsts()), (400, Some(70021)), "{}", r.text());
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("Assertion Issuer")
    );
    // The issuer is unreachable: AADSTS90061.
    issuer.down.store(true, std::sync::atomic::Ordering::SeqCst);
    sim.control("DELETE", "/oidc/cache", None).await;
    let r = fed_post(&sim, &app, &issuer.assertion(sub, n)).await;
    assert_eq!((r.status, r.aadsts()), (400, Some(90061)), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_issuer_certificate_fails_discovery() {
    let issuer = FakeIssuer::start().await;
    let mut world = base_world();
    world["applications"].as_array_mut().expect("apps").push(
        json!({"displayName": "fed-app", "tenantId": TENANT, "federatedIdentityCredentials": [
        {"name": "web", "issuer": issuer.url, "subject": "s"}]}),
    );
    // The issuer's CA is not configured as trusted.
    let sim = start_with(world, |_| {}).await;
    let r = fed_post(&sim, &sim.app_id("fed-app"), &issuer.assertion("s", now())).await;
    assert_eq!((r.status, r.aadsts()), (400, Some(90061)), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_keys_once() {
    let (sim, issuer) = federated_sim().await;
    let app = sim.app_id("fed-app");
    let n = now();
    let r = fed_post(
        &sim,
        &app,
        &issuer.assertion("system:serviceaccount:default:web", n),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.handle.sim.oidc.fetch_count(), 1);
    // Past the refetch rate limit, a token with an unknown kid makes Entra look at the JWKS again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let c = json!({"iss": issuer.url, "sub": "system:serviceaccount:default:web", "aud": "api://AzureADTokenExchange", "nbf": n, "exp": n + 600});
    let r = fed_post(&sim, &app, &issuer.sign(&c, Some("new-kid"))).await;
    assert_eq!((r.status, r.aadsts()), (401, Some(700027)));
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("The key was not found.")
    );
    assert_eq!(sim.handle.sim.oidc.fetch_count(), 2);
    // Without a kid, the issuer's only key is used.
    let r = fed_post(&sim, &app, &issuer.sign(&c, None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
