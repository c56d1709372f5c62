use super::*;
use crate::form::Params;
use crate::jwt::{self, Decoded};
use crate::world::{Index, World};

fn world() -> (World, Index) {
    let w = World::from_text(
            r#"
tenants: [{id: 11111111-1111-1111-1111-111111111111, domains: [contoso.onmicrosoft.com], displayName: Contoso}]
subscriptions: [{id: s1}]
userAssignedIdentities: [{name: id1, resourceGroup: rg, federatedIdentityCredentials: [
  {name: fic1, issuer: "https://issuer.example", subject: "system:serviceaccount:ns:sa"},
  {name: fic2, issuer: "https://issuer.example", subject: "system:serviceaccount:ns:other", audiences: [custom]}]}]
applications:
  - displayName: app
    secrets: [{value: good}, {value: old, expiresOn: "2020-01-01T00:00:00Z"}]
    identifierUris: [api://my-api]
    accessTokenVersion: 2
  - displayName: nofic
"#,
        )
        .and_then(World::normalize)
        .expect("world");
    let ix = Index::build(&w);
    (w, ix)
}

fn token(header: Value, claims: Value) -> Decoded {
    let h = jwt::b64url(header.to_string().as_bytes());
    let p = jwt::b64url(claims.to_string().as_bytes());
    jwt::decode(&format!("{h}.{p}.c2ln")).expect("decode")
}

#[test]
fn tenants() {
    let (_, ix) = world();
    assert_eq!(
        resolve_tenant(&ix, "Contoso.onmicrosoft.com"),
        Ok(TenantPath::Tenant(0))
    );
    assert_eq!(
        resolve_tenant(&ix, "common"),
        Ok(TenantPath::Multi("common"))
    );
    assert_eq!(
        resolve_tenant(&ix, "bad tenant!").map_err(|e| e.code),
        Err(900023)
    );
    assert_eq!(
        resolve_tenant(&ix, "22222222-2222-2222-2222-222222222222").map_err(|e| e.code),
        Err(90002)
    );
    assert_eq!(
        resolve_tenant(&ix, "nobody.example").map_err(|e| e.code),
        Err(90002)
    );
}

#[test]
fn request_parsing() {
    type Case<'a> = (bool, &'a str, Result<(&'a str, &'a str), u32>);
    let table: &[Case] = &[
        (true, "", Err(900144)),
        (true, "grant_type=password", Err(70003)),
        (true, "grant_type=client_credentials", Err(900144)),
        (
            true,
            "grant_type=client_credentials&client_id=c",
            Err(900144),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=openid",
            Err(70011),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=https://vault.azure.net/user_impersonation",
            Err(1002012),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=a/.default+b/.default",
            Err(28000),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=https://vault.azure.net/.default",
            Err(7000218),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=x/.default&client_secret=s&client_assertion=a",
            Err(90023),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=x/.default&client_assertion=a",
            Err(900144),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=x/.default&client_assertion=a&client_assertion_type=saml",
            Err(9002313),
        ),
        (
            true,
            "grant_type=client_credentials&client_id=c&scope=https://management.azure.com//.default+openid&client_secret=s",
            Ok(("c", "https://management.azure.com/")),
        ),
        (
            false,
            "grant_type=client_credentials&client_id=c&client_secret=s",
            Err(900144),
        ),
        (
            false,
            "grant_type=client_credentials&client_id=c&client_secret=s&resource=https://management.azure.com/",
            Ok(("c", "https://management.azure.com/")),
        ),
    ];
    for (v2, form, want) in table {
        let got = parse_token_request(*v2, &Params::parse(form.as_bytes()), None);
        match (got, want) {
            (Ok(r), Ok((c, res))) => {
                assert_eq!(r.client_id, *c, "{form}");
                assert_eq!(r.resource, *res, "{form}");
            }
            (Err(e), Err(code)) => assert_eq!(e.code, *code, "{form}: {e}"),
            (got, want) => panic!("{form}: got {got:?}, want {want:?}"),
        }
    }
    let basic = parse_token_request(
        true,
        &Params::parse(b"grant_type=client_credentials&scope=x/.default"),
        Some(("cid".into(), "pw".into())),
    )
    .expect("basic");
    assert_eq!(basic.client_id, "cid");
    assert_eq!(basic.credential, Credential::Secret("pw".into()));
}

#[test]
fn clients_and_secrets() {
    let (w, ix) = world();
    let app = w.applications[0].app_id.clone().unwrap_or_default();
    let c = find_client(&w, &ix, 0, &app.to_ascii_uppercase()).expect("app");
    assert_eq!(c, ClientRef::App(0));
    let uami = w.user_assigned_identities[0]
        .client_id
        .clone()
        .unwrap_or_default();
    assert_eq!(find_client(&w, &ix, 0, &uami), Ok(ClientRef::Uami(0)));
    let e = find_client(&w, &ix, 0, "nobody").expect_err("unknown");
    assert_eq!(
        (e.code, e.status, e.error),
        (700016, 400, "unauthorized_client")
    );
    assert!(e.message.contains("'Contoso'"));
    assert_eq!(check_secret(&w, c, &app, "good", 1_700_000_000), Ok(()));
    assert_eq!(
        check_secret(&w, c, &app, "bad", 0).map_err(|e| (e.code, e.status)),
        Err((7000215, 401))
    );
    assert_eq!(
        check_secret(&w, c, &app, "old", 1_700_000_000).map_err(|e| e.code),
        Err(7000222)
    );
    assert_eq!(
        check_secret(&w, ClientRef::Uami(0), &uami, "good", 0).map_err(|e| e.code),
        Err(7000215)
    );
    assert_eq!(
        check_resource(&w, &ix, 0, "https://nope.example").map_err(|e| e.code),
        Err(500011)
    );
    assert_eq!(check_resource(&w, &ix, 0, "api://my-api"), Ok(()));
    assert_eq!(token_format(&w, &ix, "api://my-api"), (2, app.clone()));
    assert_eq!(
        token_format(&w, &ix, "https://vault.azure.net"),
        (1, "https://vault.azure.net".into())
    );
}

#[test]
fn fic_matching() {
    let (w, _) = world();
    let fics = &w.user_assigned_identities[0].federated_identity_credentials;
    let t = |iss: &str, sub: &str, aud: Value| {
        token(
            json!({"alg":"RS256"}),
            json!({"iss": iss, "sub": sub, "aud": aud, "exp": 1}),
        )
    };
    let cases = [
        (
            t(
                "https://issuer.example",
                "system:serviceaccount:ns:sa",
                json!(["api://AzureADTokenExchange"]),
            ),
            Ok("fic1"),
        ),
        (
            t(
                "https://issuer.example",
                "system:serviceaccount:ns:other",
                json!("custom"),
            ),
            Ok("fic2"),
        ),
        (
            t(
                "https://issuer.example/",
                "system:serviceaccount:ns:sa",
                json!("api://AzureADTokenExchange"),
            ),
            Err(700211),
        ),
        (
            t(
                "https://ISSUER.example",
                "system:serviceaccount:ns:sa",
                json!("api://AzureADTokenExchange"),
            ),
            Err(700211),
        ),
        (
            t(
                "https://issuer.example",
                "system:serviceaccount:NS:sa",
                json!("api://AzureADTokenExchange"),
            ),
            Err(700213),
        ),
        (
            t(
                "https://issuer.example",
                "system:serviceaccount:ns:sa",
                json!(["other"]),
            ),
            Err(700212),
        ),
    ];
    for (tok, want) in cases {
        assert_eq!(
            match_fic(fics, &tok)
                .map(|f| f.name.as_str())
                .map_err(|e| e.code),
            want
        );
    }
    let none = match_fic(&[], &t("i", "s", json!("a"))).expect_err("none");
    assert_eq!((none.code, none.status), (70021, 400));
    assert!(none.message.contains("Assertion Issuer: 'i'"));
}

#[test]
fn classify_and_lifetime() {
    let none = token(json!({"alg":"none"}), json!({"iss":"c","sub":"c","exp":1}));
    let s = format!(
        "{}.{}.",
        jwt::b64url(none.header.to_string().as_bytes()),
        jwt::b64url(none.claims.to_string().as_bytes())
    );
    assert_eq!(
        classify(&s, "c").map(|x| x.1).map_err(|e| e.code),
        Err(50027)
    );
    assert_eq!(
        classify("garbage", "c").map(|x| x.1).map_err(|e| e.code),
        Err(50027)
    );
    let mk = |claims: Value| {
        let h = jwt::b64url(br#"{"alg":"RS256"}"#);
        format!("{h}.{}.c2ln", jwt::b64url(claims.to_string().as_bytes()))
    };
    assert_eq!(
        classify(&mk(json!({"iss":"C","sub":"c","exp":1})), "c").map(|x| x.1),
        Ok(AssertionKind::Certificate)
    );
    assert_eq!(
        classify(&mk(json!({"iss":"https://i","sub":"s","exp":1})), "c").map(|x| x.1),
        Ok(AssertionKind::Federated)
    );
    assert_eq!(
        classify(&mk(json!({"sub":"s","exp":1})), "c")
            .map(|x| x.1)
            .map_err(|e| e.code),
        Err(90014)
    );
    assert_eq!(
        classify(&mk(json!({"iss":"i","exp":1})), "c")
            .map(|x| x.1)
            .map_err(|e| e.code),
        Err(90014)
    );
    assert_eq!(
        classify(&mk(json!({"iss":"i","sub":"s"})), "c")
            .map(|x| x.1)
            .map_err(|e| e.code),
        Err(90014)
    );
    let lt = |nbf: Option<i64>, exp: i64, now: i64| {
        let mut c = json!({"exp": exp});
        if let Some(n) = nbf {
            c["nbf"] = json!(n);
        }
        check_lifetime(&token(json!({"alg":"RS256"}), c), now).map_err(|e| e.code)
    };
    assert_eq!(lt(Some(100), 200, 150), Ok(()));
    assert_eq!(lt(Some(100), 200, 200), Err(700024));
    assert_eq!(lt(Some(1000), 2000, 600), Err(700024));
    assert_eq!(lt(Some(1000), 2000, 701), Ok(()));
    assert_eq!(lt(None, 2000, 1), Ok(()));
    let e = check_lifetime(
        &token(json!({"alg":"RS256"}), json!({"exp": 10, "nbf": 5})),
        20,
    )
    .expect_err("expired");
    assert!(e.message.contains("Current time: 1970-01-01T00:00:20.0000000Z, assertion valid from 1970-01-01T00:00:05.0000000Z, expiry time of assertion 1970-01-01T00:00:10.0000000Z"));
    assert_eq!((e.status, e.error), (401, "invalid_client"));
}

#[test]
fn error_body_shape() {
    let e = EntraError::missing_param("grant_type");
    let b = e.body("t-1", "c-1", 0);
    assert_eq!(b["error"], json!("invalid_request"));
    assert_eq!(b["error_codes"], json!([900144]));
    let d = b["error_description"].as_str().unwrap_or("");
    assert!(d.starts_with(
        "AADSTS900144: The request body must contain the following parameter: 'grant_type'."
    ));
    assert!(d.ends_with("Trace ID: t-1 Correlation ID: c-1 Timestamp: 1970-01-01 00:00:00Z"));
    assert_eq!(b["timestamp"], json!("1970-01-01 00:00:00Z"));
    assert_eq!(b["trace_id"], json!("t-1"));
    assert_eq!(b["correlation_id"], json!("c-1"));
}

#[test]
fn discovery_docs() {
    let d = openid_configuration_v2("h:1", "contoso.onmicrosoft.com", "t");
    assert_eq!(d["issuer"], json!("https://h:1/t/v2.0"));
    assert_eq!(
        d["token_endpoint"],
        json!("https://h:1/contoso.onmicrosoft.com/oauth2/v2.0/token")
    );
    let own = vec!["127.0.0.1".to_string()];
    let q = Params::parse(b"authorization_endpoint=https%3A%2F%2F127.0.0.1%3A8443%2Ft1%2Foauth2%2Fv2.0%2Fauthorize&api-version=1.1");
    let v = instance_discovery(&q, &own).expect("known");
    assert_eq!(
        v["tenant_discovery_endpoint"],
        json!("https://127.0.0.1:8443/t1/v2.0/.well-known/openid-configuration")
    );
    let q = Params::parse(
        b"authorization_endpoint=https%3A%2F%2Fevil.example%2Ft1%2Foauth2%2Fv2.0%2Fauthorize",
    );
    assert_eq!(
        instance_discovery(&q, &own).map_err(|e| (e.code, e.error)),
        Err((50049, "invalid_instance"))
    );
    assert_eq!(
        instance_discovery(&Params::default(), &own).map_err(|e| e.code),
        Err(900144)
    );
}

proptest::proptest! {
    #[test]
    fn token_requests_never_panic(form in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), tenant in ".{0,60}", scope in ".{0,60}") {
        let (w, ix) = world();
        let p = Params::parse(&form);
        let _ = parse_token_request(true, &p, None);
        let _ = parse_token_request(false, &p, Some(("a".into(), "b".into())));
        let _ = resolve_tenant(&ix, &tenant);
        let _ = scope_resource(&scope);
        let _ = instance_discovery(&p, &[]);
        if let Ok((t, _)) = classify(&String::from_utf8_lossy(&form), "c") {
            let _ = check_lifetime(&t, 0);
            let _ = match_fic(&w.user_assigned_identities[0].federated_identity_credentials, &t);
            let _ = check_cert_assertion(&t, &[], "c", &["t"], 0);
            let _ = check_federated_signature(&t, &[]);
        }
    }
}
