use serde_json::Map;

use super::*;
use crate::armid;
use crate::world::{IdentityType, ResourceIdentity};

const U1: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u1";
const U2: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u2";

fn canon(id: &str) -> Option<String> {
    [U1, U2]
        .iter()
        .find(|u| armid::eq(u, id))
        .map(|u| u.to_string())
}

fn fresh() -> (String, String) {
    ("p-new".into(), "c-new".into())
}

fn ident(kind: IdentityType, users: &[&str]) -> ResourceIdentity {
    ResourceIdentity {
        kind: Some(kind),
        principal_id: kind.system().then(|| "p-old".to_string()),
        client_id: kind.system().then(|| "c-old".to_string()),
        user_assigned_identities: users.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn routes() {
    let table = [
        (
            "/subscriptions/s",
            Ok(Route::Subscription { sub: "s".into() }),
        ),
        (
            "/subscriptions/s/resourcegroups/rg",
            Ok(Route::ResourceGroup {
                sub: "s".into(),
                rg: "rg".into(),
            }),
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines",
            Ok(Route::VmList {
                sub: "s".into(),
                rg: "rg".into(),
            }),
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/microsoft.compute/virtualmachines/vm%2D1",
            Ok(Route::Vm {
                sub: "s".into(),
                rg: "rg".into(),
                name: "vm-1".into(),
            }),
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines",
            Ok(Route::VmssVmList {
                sub: "s".into(),
                rg: "rg".into(),
                vmss: "ss".into(),
            }),
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/3",
            Ok(Route::VmssVm {
                sub: "s".into(),
                rg: "rg".into(),
                vmss: "ss".into(),
                instance: "3".into(),
            }),
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u/federatedIdentityCredentials/f",
            Ok(Route::Fic {
                sub: "s".into(),
                rg: "rg".into(),
                uami: "u".into(),
                name: "f".into(),
            }),
        ),
        (
            "/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/op1",
            Ok(Route::Operation {
                sub: "s".into(),
                location: "westeurope".into(),
                id: "op1".into(),
            }),
        ),
    ];
    for (p, want) in table {
        assert_eq!(parse_path(p), want, "{p}");
    }
    for bad in [
        "/",
        "/foo",
        "/subscriptions//x",
        "/subscriptions/s/resourceGroups",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a/b",
    ] {
        assert!(parse_path(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_path("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x")
            .map_err(|e| e.code),
        Err("NoRegisteredProviderFound".into())
    );
}

#[test]
fn api_versions_and_bodies() {
    assert_eq!(
        check_api_version(None).map_err(|e| e.code),
        Err("MissingApiVersionParameter".into())
    );
    assert_eq!(
        check_api_version(Some("")).map_err(|e| e.code),
        Err("MissingApiVersionParameter".into())
    );
    assert_eq!(
        check_api_version(Some("yesterday")).map_err(|e| e.code),
        Err("InvalidApiVersionParameter".into())
    );
    assert!(check_api_version(Some("2019-12-01")).is_ok());
    assert!(check_api_version(Some("2023-01-31-preview")).is_ok());
    assert_eq!(
        parse_body(b"{not json").map_err(|e| e.code),
        Err("InvalidRequestContent".into())
    );
    assert_eq!(parse_body(b"[1]").map_err(|e| e.status), Err(400));
    assert_eq!(parse_body(b"").map_err(|e| e.status), Err(400));
    assert!(parse_body(b"{}").is_ok());
}

fn patch(cur: &ResourceIdentity, body: Value) -> Result<IdentityChange, ArmError> {
    apply_identity(cur, &body, false, "/vm", &canon, &fresh)
}

#[test]
fn patch_semantics() {
    let none = ident(IdentityType::None, &[]);
    let users = ident(IdentityType::UserAssigned, &[U1]);
    let both = ident(IdentityType::SystemAndUserAssigned, &[U1]);
    // Add to nothing.
    let c = patch(
        &none,
        json!({"type": "UserAssigned", "userAssignedIdentities": {U2.to_lowercase(): {}}}),
    )
    .expect("add");
    assert_eq!(c.identity.kind(), IdentityType::UserAssigned);
    assert_eq!(c.identity.user_assigned_identities, vec![U2.to_string()]);
    assert_eq!(c.linked, vec![U2.to_string()]);
    // Merge keeps the others.
    let c = patch(
        &users,
        json!({"type": "UserAssigned", "userAssignedIdentities": {U2: {}}}),
    )
    .expect("merge");
    assert_eq!(
        c.identity.user_assigned_identities,
        vec![U1.to_string(), U2.to_string()]
    );
    // Null removes (case-insensitively); the last one cannot go with type UserAssigned.
    let c = patch(&both, json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {U1.to_uppercase(): null, U2: {}}})).expect("swap");
    assert_eq!(c.identity.user_assigned_identities, vec![U2.to_string()]);
    assert_eq!(c.identity.principal_id.as_deref(), Some("p-old"));
    let e = patch(
        &users,
        json!({"type": "UserAssigned", "userAssignedIdentities": {U1: null}}),
    )
    .expect_err("empty");
    assert_eq!(e.code, "InvalidParameter");
    // Type switch drops user identities; system keeps/gets principal.
    let c = patch(&both, json!({"type": "SystemAssigned"})).expect("sys only");
    assert_eq!(c.identity.kind(), IdentityType::SystemAssigned);
    assert!(c.identity.user_assigned_identities.is_empty());
    let c = patch(&users, json!({"type": "SystemAssigned, UserAssigned"})).expect("enable system");
    assert_eq!(c.identity.principal_id.as_deref(), Some("p-new"));
    assert_eq!(c.identity.user_assigned_identities, vec![U1.to_string()]);
    let c = patch(&both, json!({"type": "None"})).expect("none");
    assert_eq!(c.identity.kind(), IdentityType::None);
    assert_eq!(c.identity.principal_id, None);
    // No type: infer.
    let c = patch(&users, json!({"userAssignedIdentities": {U1: null}})).expect("infer");
    assert_eq!(c.identity.kind(), IdentityType::None);
    // Errors.
    let cases = [
        (json!({"type": "Both"}), "InvalidParameter"),
        (json!({"type": 5}), "InvalidRequestContent"),
        (
            json!({"type": "None", "userAssignedIdentities": {U1: {}}}),
            "InvalidParameter",
        ),
        (
            json!({"userAssignedIdentities": {"not-an-id": {}}}),
            "LinkedInvalidPropertyId",
        ),
        (
            json!({"userAssignedIdentities": {U1: {"x": 1}}}),
            "InvalidParameter",
        ),
        (
            json!({"userAssignedIdentities": []}),
            "InvalidRequestContent",
        ),
        (json!("x"), "InvalidRequestContent"),
    ];
    for (b, code) in cases {
        assert_eq!(
            patch(&users, b.clone()).map_err(|e| e.code),
            Err(code.to_string()),
            "{b}"
        );
    }
    let missing = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ghost";
    let e = patch(
        &users,
        json!({"type": "UserAssigned", "userAssignedIdentities": {missing: {}}}),
    )
    .expect_err("missing");
    assert_eq!(e.code, "FailedIdentityOperation");
    assert!(e.message.contains(missing));
    // Null body is a no-op.
    assert_eq!(
        patch(&users, Value::Null).map(|c| c.identity),
        Ok(users.clone())
    );
    // PUT replaces.
    let c = apply_identity(
        &both,
        &json!({"type": "UserAssigned", "userAssignedIdentities": {U2: {}}}),
        true,
        "/vm",
        &canon,
        &fresh,
    )
    .expect("put");
    assert_eq!(c.identity.user_assigned_identities, vec![U2.to_string()]);
    assert_eq!(c.identity.principal_id, None);
}

#[test]
fn identity_limit() {
    let mut m = Map::new();
    for i in 0..151 {
        m.insert(format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{i}"), json!({}));
    }
    let e = patch(
        &ident(IdentityType::None, &[]),
        json!({"type": "UserAssigned", "userAssignedIdentities": m}),
    )
    .expect_err("limit");
    assert_eq!(
        (e.status, e.code.as_str()),
        (400, "FailedIdentityOperation")
    );
    assert!(
        e.message.contains(
            "User Assigned Identities Number '151' Assign exceed limit '150' in one request."
        ),
        "{}",
        e.message
    );
}

#[test]
fn fic_rules() {
    let body = |iss: &str, sub: &str| -> Map<String, Value> {
        match json!({"properties": {"issuer": iss, "subject": sub, "audiences": ["api://AzureADTokenExchange"]}})
        {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    };
    assert!(parse_fic("ok-name", &body("https://i", "s")).is_ok());
    assert_eq!(
        parse_fic("x", &body("https://i", "s")).map_err(|e| e.status),
        Err(400)
    );
    assert_eq!(
        parse_fic("okay", &body("http://i", "s")).map_err(|e| e.status),
        Err(400)
    );
    assert_eq!(
        parse_fic("okay", &Map::new()).map_err(|e| e.code),
        Err("BadRequest".into())
    );
    let mut list = Vec::new();
    for i in 0..20 {
        let f = parse_fic(&format!("fic{i}"), &body("https://i", &format!("s{i}"))).expect("fic");
        assert_eq!(upsert_fic(&mut list, f), Ok(true));
    }
    let f = parse_fic("fic20", &body("https://i", "s20")).expect("fic");
    assert!(
        upsert_fic(&mut list, f)
            .expect_err("limit")
            .message
            .contains("20")
    );
    let dup = parse_fic("other", &body("https://i", "s3")).expect("fic");
    assert!(
        upsert_fic(&mut list, dup)
            .expect_err("dup")
            .message
            .contains("Issuer and subject combination already exists")
    );
    let upd = parse_fic("FIC3", &body("https://i", "s3")).expect("fic");
    assert_eq!(upsert_fic(&mut list, upd), Ok(false));
    assert_eq!(concurrent_fic_write("/x").status, 409);
}

#[test]
fn error_bodies() {
    let e = ArmError::authorization_failed(
        "app",
        "oid",
        "Microsoft.Compute/virtualMachines/write",
        "/subscriptions/s",
    );
    assert_eq!(e.status, 403);
    let b = e.body();
    assert_eq!(b["error"]["code"], json!("AuthorizationFailed"));
    assert!(b["error"]["message"].as_str().unwrap_or("").starts_with("The client 'app' with object id 'oid' does not have authorization to perform action 'Microsoft.Compute/virtualMachines/write' over scope '/subscriptions/s'"));
    let l = ArmError::linked_authorization_failed("a", "o", "x/write", "/s", &[U1.to_string()]);
    assert!(
        l.message
            .contains("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action")
    );
    assert_eq!(
        operation_json("op", 0, Some(1))["status"],
        json!("Succeeded")
    );
    assert_eq!(operation_json("op", 0, None)["status"], json!("InProgress"));
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(path in ".{0,200}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), v in ".{0,20}") {
        let _ = parse_path(&path);
        let _ = check_api_version(Some(&v));
        if let Ok(m) = parse_body(&body) {
            let cur = ident(IdentityType::SystemAndUserAssigned, &[U1]);
            if let Some(i) = m.get("identity") {
                let _ = patch(&cur, i.clone());
            }
            let _ = parse_fic("name-1", &m);
        }
    }

    #[test]
    fn identity_blocks_never_panic(keys in proptest::collection::vec(".{0,80}", 0..5), ty in proptest::option::of("[A-Za-z, ]{0,30}"), nulls in proptest::collection::vec(proptest::prelude::any::<bool>(), 5)) {
        let mut m = Map::new();
        for (i, k) in keys.iter().enumerate() {
            m.insert(k.clone(), if nulls[i] { Value::Null } else { json!({}) });
        }
        let mut b = json!({"userAssignedIdentities": m});
        if let Some(t) = ty {
            b["type"] = json!(t);
        }
        for cur in [ident(IdentityType::None, &[]), ident(IdentityType::UserAssigned, &[U1, U2])] {
            let _ = patch(&cur, b.clone());
            let _ = apply_identity(&cur, &b, true, "/vm", &canon, &fresh);
        }
    }
}
