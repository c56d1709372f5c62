use super::*;
use crate::armid;

const T: &str = "11111111-1111-1111-1111-111111111111";

fn sample() -> &'static str {
    r#"
tenants: [{id: 11111111-1111-1111-1111-111111111111, domains: [contoso.onmicrosoft.com]}]
subscriptions: [{id: 22222222-2222-2222-2222-222222222222}]
resourceGroups: [{name: rg-nodes, location: northeurope}]
userAssignedIdentities:
  - name: id-web
    federatedIdentityCredentials: [{name: fic-1, issuer: "https://issuer.example/", subject: "system:serviceaccount:default:web"}]
  - name: id-job
virtualMachines:
  - name: vm-0
    identity: {type: "SystemAssigned, UserAssigned", userAssignedIdentities: [id-web]}
virtualMachineScaleSets:
  - name: aks-pool-vmss
    instances: [{}, {instanceId: "7", nodeName: custom}]
applications:
  - displayName: ci-app
    secrets: [{value: s3cret}]
roleAssignments:
  - principalName: ci-app
    roleDefinitionName: Virtual Machine Contributor
    scope: /subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-nodes/
keyVaults:
  - name: kv1
    secrets: [{name: db-password, value: one}, {name: db-password, value: two}]
"#
}

#[test]
fn normalize_fills_defaults() {
    let w = World::from_text(sample())
        .expect("parse")
        .normalize()
        .expect("normalize");
    assert_eq!(w.resource_groups.len(), 1);
    let vm = &w.virtual_machines[0];
    assert_eq!(vm.resource_group.as_deref(), Some("rg-nodes"));
    assert_eq!(vm.location.as_deref(), Some("northeurope"));
    assert_eq!(vm.node_name.as_deref(), Some("vm-0"));
    assert!(armid::is_guid(
        vm.identity.principal_id.as_deref().unwrap_or("")
    ));
    assert!(vm.identity.user_assigned_identities[0].ends_with("/userAssignedIdentities/id-web"));
    let ss = &w.virtual_machine_scale_sets[0];
    assert_eq!(
        ss.instances[0].node_name.as_deref(),
        Some("aks-pool-vmss000000")
    );
    assert_eq!(ss.instances[1].node_name.as_deref(), Some("custom"));
    assert_eq!(ss.identity.kind(), IdentityType::None);
    assert_eq!(
        w.role_assignments[0].principal_id,
        w.applications[0].object_id
    );
    assert_eq!(
        w.role_assignments[0].role_definition_id.as_deref(),
        Some("9980e02c-c2be-4d73-94e8-173b1dc7cf3c")
    );
    assert_eq!(w.key_vaults[0].tenant_id.as_deref(), Some(T));
    assert_ne!(
        w.key_vaults[0].secrets[0].version,
        w.key_vaults[0].secrets[1].version
    );
    assert_eq!(
        w.user_assigned_identities[0].federated_identity_credentials[0].audiences,
        vec![TOKEN_EXCHANGE_AUDIENCE]
    );
    // Idempotent, and the JSON round-trips.
    let again = w.clone().normalize().expect("renormalize");
    assert_eq!(again, w);
    let v = serde_json::to_value(&w).expect("json");
    assert_eq!(World::from_value(v).expect("reparse"), w);
    // Same IDs on every parse.
    let w2 = World::from_text(sample())
        .expect("parse")
        .normalize()
        .expect("normalize");
    assert_eq!(w2, w);
}

#[test]
fn index_lookups() {
    let w = World::from_text(sample())
        .expect("parse")
        .normalize()
        .expect("normalize");
    let ix = Index::build(&w);
    assert_eq!(ix.tenant("CONTOSO.onmicrosoft.com"), Some(0));
    assert_eq!(ix.tenant(T), Some(0));
    assert_eq!(ix.node("vm-0"), Some(NodeRef::Vm(0)));
    assert_eq!(ix.node("custom"), Some(NodeRef::Vmss(0, 1)));
    let uid = w.user_assigned_identities[0].id().to_ascii_uppercase();
    assert_eq!(ix.uami(&uid), Some(0));
    let cid = w.user_assigned_identities[1]
        .client_id
        .clone()
        .unwrap_or_default();
    assert_eq!(ix.uami_by_client_id(&cid.to_ascii_uppercase()), Some(1));
    assert!(ix.known_resource("https://management.azure.com/"));
    assert!(ix.known_resource("HTTPS://VAULT.AZURE.NET"));
    assert!(ix.known_resource("https://acct.blob.core.windows.net"));
    assert!(!ix.known_resource("https://unknown.example"));
    let app = w.applications[0].app_id.clone().unwrap_or_default();
    assert_eq!(ix.app(0, &app), Some(0));
    assert_eq!(
        ix.assignments_of(w.applications[0].object_id.as_deref().unwrap_or("")),
        &[0]
    );
    assert!(audience_in("https://management.azure.com/", ARM_AUDIENCES));
    assert!(!audience_in("https://vault.azure.net", ARM_AUDIENCES));
}

#[test]
fn duplicate_principal_ids_are_refused() {
    let w = World::from_text(
        "tenants: [{id: 72f988bf-86f1-41af-91ab-2d7cd011db47}]\nsubscriptions: [{id: 0b1f6471-1bf0-4dda-aec3-111122223333}]\nresourceGroups: [{name: rg}]\nuserAssignedIdentities:\n  - {name: a, resourceGroup: rg, clientId: 11111111-1111-1111-1111-111111111111}\napplications:\n  - {displayName: app, appId: 11111111-1111-1111-1111-111111111111}\n",
    );
    let e = w
        .and_then(World::normalize)
        .expect_err("duplicate client id");
    assert!(
        e.0.contains("is already used by userAssignedIdentities[0] (a)"),
        "{e}"
    );
}

#[test]
fn normalize_errors() {
    let base = "tenants: [{id: 11111111-1111-1111-1111-111111111111}]\nsubscriptions: [{id: s1}]\n";
    let cases = [
        ("tenants: [{id: nope}]", "not a GUID"),
        ("subscriptions: [{id: s1}]", "tenantId is required"),
        (
            &*format!(
                "{base}virtualMachines: [{{name: a, resourceGroup: rg, identity: {{userAssignedIdentities: [missing]}}}}]"
            ),
            "unknown user-assigned identity",
        ),
        (
            &*format!(
                "{base}virtualMachines: [{{name: a, resourceGroup: rg}}, {{name: b, resourceGroup: rg, nodeName: a}}]"
            ),
            "duplicate node name",
        ),
        (
            &*format!(
                "{base}virtualMachines: [{{name: a, resourceGroup: rg, identity: {{type: UserAssigned}}}}]"
            ),
            "needs at least one",
        ),
        (
            &*format!(
                "{base}userAssignedIdentities: [{{name: u, resourceGroup: rg, federatedIdentityCredentials: [{{name: x, issuer: 'https://i', subject: s}}]}}]"
            ),
            "name 'x' is invalid",
        ),
        (
            &*format!(
                "{base}userAssignedIdentities: [{{name: u, resourceGroup: rg, federatedIdentityCredentials: [{{name: xyz, issuer: 'http://i', subject: s}}]}}]"
            ),
            "https scheme",
        ),
        (
            &*format!(
                "{base}roleAssignments: [{{principalId: 11111111-1111-1111-1111-111111111111, roleDefinitionName: Wizard, scope: /}}]"
            ),
            "unknown role",
        ),
        (
            &*format!("{base}applications: [{{displayName: a, certificates: [{{pem: junk}}]}}]"),
            "not a PEM certificate",
        ),
        (
            &*format!("{base}keyVaults: [{{name: k, resourceGroup: rg}}]"),
            "3-24 characters",
        ),
        (
            &*format!(
                "{base}keyVaults: [{{name: kv1, resourceGroup: rg, secrets: [{{name: 'bad name', value: v}}]}}]"
            ),
            "invalid secret name",
        ),
        ("virtualMachines: [{name: a, bogus: 1}]", "unknown field"),
        (
            &*format!(
                "{base}resourceGroups: [{{name: a}}, {{name: b}}]\nvirtualMachines: [{{name: v}}]"
            ),
            "resourceGroup is required",
        ),
    ];
    for (text, want) in cases {
        let got = World::from_text(text).and_then(World::normalize);
        match got {
            Err(e) => assert!(e.0.contains(want), "{text}: {e}"),
            Ok(_) => panic!("{text}: expected error containing '{want}'"),
        }
    }
    let f = FederatedCredential {
        name: "ok-name_1".into(),
        issuer: "https://x".into(),
        subject: "s".into(),
        audiences: vec!["a".into(), "b".into()],
        description: None,
    };
    assert!(validate_fic(&f).is_err());
    assert!(World::from_text("").expect("empty").normalize().is_ok());
}

#[test]
fn identity_type_spellings() {
    for (s, want) in [
        ("None", IdentityType::None),
        ("systemassigned", IdentityType::SystemAssigned),
        (
            "SystemAssigned,UserAssigned",
            IdentityType::SystemAndUserAssigned,
        ),
        (
            "UserAssigned, SystemAssigned",
            IdentityType::SystemAndUserAssigned,
        ),
    ] {
        assert_eq!(IdentityType::parse(s), Some(want), "{s}");
    }
    assert_eq!(IdentityType::parse("Both"), None);
    assert_eq!(
        IdentityType::from_flags(true, true).as_str(),
        "SystemAssigned, UserAssigned"
    );
}

proptest::proptest! {
    #[test]
    fn world_text_never_panics(text in ".{0,300}") {
        if let Ok(n) = World::from_text(&text).and_then(World::normalize) {
            let _ = Index::build(&n);
        }
    }
}
