//! Property tests: review, SubjectAccessReview parsing and RBAC evaluation never panic, and
//! minted tokens always review successfully within their validity window.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kube_sim_auth::rbac::{Attributes, StaticRbac, UserInfo, authorize, rules_review};
use kube_sim_auth::token::{
    CLOCK_LEEWAY_SECONDS, ReviewError, Signer, TokenRequestInput, token_review_status,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const ISSUER: &str = "https://kube-sim.invalid";

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| Signer::generate(ISSUER).unwrap_or_else(|e| panic!("keygen: {e}")))
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("RS256"),
            Just("none"),
            Just("HS256"),
            Just(ISSUER),
            Just("pods"),
            Just("*")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z]{1,6}",
                    Just("iss".to_owned()),
                    Just("aud".to_owned()),
                    Just("exp".to_owned()),
                    Just("kubernetes.io".to_owned()),
                    Just("kind".to_owned()),
                    Just("subjects".to_owned()),
                    Just("roleRef".to_owned()),
                    Just("rules".to_owned()),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn review_never_panics_on_strings(s in "\\PC{0,200}", now in any::<i64>()) {
        let r = signer().review(&s, now, &[], &[ISSUER.to_owned()]);
        prop_assert!(r.is_err());
        let _ = token_review_status(r);
    }

    #[test]
    fn review_never_panics_on_three_part_junk(
        h in prop::collection::vec(any::<u8>(), 0..64),
        p in prop::collection::vec(any::<u8>(), 0..128),
        s in prop::collection::vec(any::<u8>(), 0..300),
        now in any::<i64>(),
    ) {
        let token = format!("{}.{}.{}", b64(&h), b64(&p), b64(&s));
        prop_assert!(signer().review(&token, now, &[], &[]).is_err());
    }

    #[test]
    fn review_never_panics_on_json_junk(header in arb_json(), payload in arb_json(), sig in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut payload = payload;
        // Half the time make it get past the issuer check.
        if let Some(obj) = payload.as_object_mut() && sig.len() % 2 == 0 {
            obj.insert("iss".to_owned(), json!(ISSUER));
        }
        let token = format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()), b64(&sig));
        prop_assert!(signer().review(&token, 0, &[], &[]).is_err());
    }

    #[test]
    fn review_of_signed_junk_claims_never_panics(claims in arb_json(), now in any::<i64>(), auds in prop::collection::vec("[a-c]", 0..3)) {
        let mut claims = match claims {
            Value::Object(m) => Value::Object(m),
            other => json!({"x": other}),
        };
        claims["iss"] = json!(ISSUER);
        let token = signer().sign(&claims).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match signer().review(&token, now, &auds, &[]) {
            Ok(r) => {
                prop_assert!(r.user.username.starts_with("system:serviceaccount:"));
                prop_assert_eq!(r.user.groups.len(), 3);
            }
            Err(e) => prop_assert!(!matches!(e, ReviewError::NotHandled | ReviewError::BadSignature | ReviewError::NoKeysFound)),
        }
    }

    #[test]
    fn minted_tokens_review_within_their_window(
        exp in 600i64..1_000_000,
        now in 0i64..4_000_000_000,
        offset in 0i64..1_000_000,
        ns in "[a-z][a-z0-9-]{0,10}",
        name in "[a-z][a-z0-9-]{0,10}",
    ) {
        let mut req = TokenRequestInput::new(ISSUER, ns.clone(), name.clone(), "uid");
        req.expiration_seconds = Some(exp);
        req.audiences = vec!["aud".to_owned()];
        let issued = signer().issue(&req, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let at = now + offset;
        let result = signer().review(&issued.token, at, &["aud".to_owned()], &[]);
        if offset <= exp + CLOCK_LEEWAY_SECONDS {
            let r = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(r.user.username, format!("system:serviceaccount:{ns}:{name}"));
        } else {
            prop_assert_eq!(result.err(), Some(ReviewError::Expired));
        }
    }

    #[test]
    fn sar_parsing_never_panics(spec in arb_json()) {
        let _ = Attributes::from_sar_spec(&spec);
        let _ = Attributes::from_self_sar_spec(&spec, &UserInfo::default());
    }

    #[test]
    fn authorize_never_panics_on_junk_rbac(
        objects in prop::collection::vec(arb_json(), 0..6),
        kinds in prop::collection::vec(prop_oneof![Just("ClusterRole"), Just("Role"), Just("ClusterRoleBinding"), Just("RoleBinding")], 6),
        verb in prop_oneof![Just("get"), Just("*"), Just("use-managed-identity")],
        ns in prop_oneof![Just(""), Just("team")],
    ) {
        let objs = objects.into_iter().zip(kinds).map(|(mut o, kind)| {
            if let Some(m) = o.as_object_mut() {
                m.insert("kind".to_owned(), json!(kind));
                m.insert("metadata".to_owned(), json!({"name": "n", "namespace": "team"}));
            }
            o
        });
        let rbac = StaticRbac::from_objects(objs);
        let user = UserInfo::new("u", ["g"]);
        let spec = json!({"user": "u", "groups": ["g"], "resourceAttributes": {"verb": verb, "namespace": ns, "resource": "pods"}});
        let attrs = Attributes::from_sar_spec(&spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let d = authorize(&attrs, &rbac);
        prop_assert!(!d.denied);
        let _ = rules_review(&user, ns, &rbac).to_status();
    }

    #[test]
    fn masters_always_allowed(verb in "[a-z-]{1,12}", resource in "[a-z0-9-]{1,20}", ns in "[a-z]{0,5}") {
        let attrs = Attributes::from_sar_spec(&json!({
            "user": "root", "groups": ["system:masters"],
            "resourceAttributes": {"verb": verb, "namespace": ns, "resource": resource}
        })).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(authorize(&attrs, &StaticRbac::new()).allowed);
    }
}
