//! Provider IDs, ARM IDs, AAI names, resource-ID validation, ARM deltas and error parsing.

use serde_json::{Value, json};

use super::support::rid;
use crate::assign::{
    MAX_IDENTITIES_PER_REQUEST, Target, TargetKind, assigned_name, failed_identity_ids,
    identity_delta, is_erroneous_identity_error, is_valid_resource_id, parse_provider_id,
};

fn t(kind: TargetKind, s: &str, rg: &str, name: &str) -> Option<Target> {
    Some(Target {
        kind,
        subscription: s.to_owned(),
        resource_group: rg.to_owned(),
        name: name.to_owned(),
    })
}

#[test]
fn provider_ids() {
    use TargetKind::{Vm, Vmss};
    let cases: &[(&str, Option<Target>)] = &[
        (
            "azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/VMSS/virtualMachines/3",
            t(Vmss, "S", "RG", "VMSS"),
        ),
        (
            "azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/NAME",
            t(Vm, "S", "RG", "NAME"),
        ),
        (
            "AZURE:///SUBSCRIPTIONS/s/resourcegroups/mc_rg/providers/microsoft.compute/VIRTUALMACHINESCALESETS/aks-vmss/VirtualMachines/0",
            t(Vmss, "s", "mc_rg", "aks-vmss"),
        ),
        ("", None),
        ("aws:///us-east-1a/i-0123", None),
        ("kind://docker/kind/kind-control-plane", None),
        (
            "azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/virtualMachines/N",
            None,
        ),
        (
            "azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/",
            None,
        ),
        (
            "azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/N/extra",
            None,
        ),
        (
            "azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/V",
            None,
        ),
        (
            "azure:///subscriptions//resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/N",
            None,
        ),
        (
            "azure://subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/N",
            None,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(&parse_provider_id(input), want, "{input}");
    }
}

#[test]
fn arm_ids_and_keys() {
    let vmss = t(TargetKind::Vmss, "S", "MC_Rg", "Pool-Vmss").expect("target");
    assert_eq!(
        vmss.arm_id(),
        "/subscriptions/S/resourceGroups/MC_Rg/providers/Microsoft.Compute/virtualMachineScaleSets/Pool-Vmss"
    );
    assert_eq!(vmss.key(), vmss.arm_id().to_lowercase());
    let vm = t(TargetKind::Vm, "S", "RG", "node-1").expect("target");
    assert_eq!(
        vm.arm_id(),
        "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/node-1"
    );
    // Round trip through a provider ID.
    let parsed = parse_provider_id(&format!("azure://{}", vm.arm_id()));
    assert_eq!(parsed, Some(vm));
}

#[test]
fn aai_names() {
    assert_eq!(assigned_name("pod", "ns", "id"), "pod-ns-id");
    assert_eq!(
        assigned_name("a-b", "c", "x"),
        assigned_name("a", "b-c", "x")
    );
}

#[test]
fn resource_id_validation() {
    let cases: &[(&str, bool)] = &[
        (&rid("id1"), true),
        (
            "/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n",
            true,
        ),
        (
            "/SUBSCRIPTIONS/s/RESOURCEGROUPS/r/PROVIDERS/MICROSOFT.MANAGEDIDENTITY/USERASSIGNEDIDENTITIES/n",
            true,
        ),
        // Unanchored: anything around it.
        (
            "xx/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n/yy",
            true,
        ),
        // The `.` is a wildcard.
        (
            "/subscriptions/s/resourcegroups/r/providers/MicrosoftXManagedIdentity/userAssignedIdentities/n",
            true,
        ),
        // Go's case folding: Kelvin sign and long s.
        (
            "/ſubscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n",
            true,
        ),
        (
            "/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/",
            false,
        ),
        (
            "/subscriptions//resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n",
            false,
        ),
        (
            "/subscriptions/s/resourcegroups//providers/Microsoft.ManagedIdentity/userAssignedIdentities/n",
            false,
        ),
        (
            "/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentityuserAssignedIdentities/n",
            false,
        ),
        (
            "/subscriptions/s/resourcegroups/r\n/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n",
            false,
        ),
        ("", false),
        ("not-an-id", false),
        (
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/n",
            false,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(is_valid_resource_id(input), *want, "{input:?}");
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn delta_table() {
    let a = rid("A");
    let b = rid("b");
    let c = rid("c");
    let al = a.to_lowercase();
    struct Case {
        name: &'static str,
        ty: &'static str,
        current: Vec<String>,
        add: Vec<String>,
        remove: Vec<String>,
        bodies: Vec<Value>,
        present: Vec<String>,
        absent: Vec<String>,
    }
    let cases = vec![
        Case {
            name: "nothing to do",
            ty: "UserAssigned",
            current: vec![a.clone()],
            add: vec![],
            remove: vec![],
            bodies: vec![],
            present: vec![],
            absent: vec![],
        },
        Case {
            name: "add to a resource without identity",
            ty: "",
            current: vec![],
            add: vec![a.clone()],
            remove: vec![],
            bodies: vec![
                json!({"identity":{"type":"UserAssigned","userAssignedIdentities":{al.clone():{}}}}),
            ],
            present: vec![],
            absent: vec![],
        },
        Case {
            name: "add keeps the system identity",
            ty: "SystemAssigned",
            current: vec![],
            add: vec![a.clone()],
            remove: vec![],
            bodies: vec![
                json!({"identity":{"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{al.clone():{}}}}),
            ],
            present: vec![],
            absent: vec![],
        },
        Case {
            name: "already present is no PATCH",
            ty: "UserAssigned",
            current: vec![al.clone()],
            add: vec![a.clone()],
            remove: vec![],
            bodies: vec![],
            present: vec![a.clone()],
            absent: vec![],
        },
        Case {
            name: "remove one of two",
            ty: "None",
            current: vec![a.clone(), b.clone()],
            add: vec![],
            remove: vec![b.clone()],
            bodies: vec![
                json!({"identity":{"type":"UserAssigned","userAssignedIdentities":{b.to_lowercase():null}}}),
            ],
            present: vec![],
            absent: vec![],
        },
        Case {
            name: "remove the last user identity keeps the system one",
            ty: "SystemAssigned, UserAssigned",
            current: vec![a.clone()],
            add: vec![],
            remove: vec![al.clone()],
            bodies: vec![json!({"identity":{"type":"SystemAssigned"}})],
            present: vec![],
            absent: vec![],
        },
        Case {
            name: "remove the last user identity",
            ty: "UserAssigned",
            current: vec![a.clone()],
            add: vec![],
            remove: vec![a.clone()],
            bodies: vec![json!({"identity":{"type":"None"}})],
            present: vec![],
            absent: vec![],
        },
        Case {
            name: "removing an absent id from a system-only VM sends nothing",
            ty: "SystemAssigned",
            current: vec![],
            add: vec![],
            remove: vec![a.clone()],
            bodies: vec![],
            present: vec![],
            absent: vec![a.clone()],
        },
        Case {
            name: "add wins over remove; adds before removes",
            ty: "UserAssigned",
            current: vec![b.clone()],
            add: vec![c.clone(), a.clone()],
            remove: vec![al.clone(), b.clone()],
            bodies: vec![
                json!({"identity":{"type":"UserAssigned","userAssignedIdentities":{
                    al.clone(): {}, c.to_lowercase(): {}, b.to_lowercase(): null
                }}}),
            ],
            present: vec![],
            absent: vec![],
        },
        Case {
            name: "duplicates",
            ty: "UserAssigned",
            current: vec![b.clone()],
            add: vec![b.clone(), b.to_uppercase()],
            remove: vec![c.clone(), c.to_uppercase()],
            bodies: vec![],
            present: vec![b.clone()],
            absent: vec![c.clone()],
        },
    ];
    for case in cases {
        let d = identity_delta(case.ty, &case.current, &case.add, &case.remove);
        assert_eq!(d.bodies, case.bodies, "{}", case.name);
        assert_eq!(d.already_present, case.present, "{}", case.name);
        assert_eq!(d.already_absent, case.absent, "{}", case.name);
    }
}

#[test]
fn delta_chunks_at_the_arm_limit() {
    let add: Vec<String> = (0..320).map(|i| rid(&format!("id{i:03}"))).collect();
    let remove = vec![rid("old")];
    let d = identity_delta("SystemAssigned", &[rid("old"), rid("keep")], &add, &remove);
    assert_eq!(d.bodies.len(), 3);
    let mut seen = Vec::new();
    for body in &d.bodies {
        assert_eq!(body["identity"]["type"], "SystemAssigned, UserAssigned");
        let map = body["identity"]["userAssignedIdentities"]
            .as_object()
            .expect("map");
        assert!(map.len() <= MAX_IDENTITIES_PER_REQUEST);
        seen.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    assert_eq!(seen.len(), 321);
    // Removals go last.
    let last = d.bodies[2]["identity"]["userAssignedIdentities"]
        .as_object()
        .expect("map");
    assert_eq!(last.get(&rid("old").to_lowercase()), Some(&Value::Null));
    assert!(seen.iter().all(|(k, _)| *k == k.to_lowercase()));
}

#[test]
fn erroneous_identity_errors() {
    let one = "/subscriptions/0000-aa_b/resourcegroups/rg-1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bad-1";
    let two = "/subscriptions/0000/resourceGroups/RG2/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bad_2";
    let linked = format!(
        "Code=\"LinkedAuthorizationFailed\" Message=\"The client 'abc' with object id 'abc' has permission to \
         perform action 'Microsoft.Compute/virtualMachineScaleSets/write' on scope '/subscriptions/0000/\
         resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/vmss'; however, it does not \
         have permission to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' \
         on the linked scope(s) '{one},{two},{}' or the linked scope(s) are invalid.\"",
        one.to_uppercase()
    );
    assert_eq!(failed_identity_ids(&linked), ids(&[one, two]));
    assert!(is_erroneous_identity_error(
        "LinkedAuthorizationFailed",
        &linked
    ));
    assert!(is_erroneous_identity_error("", &linked));

    let failed =
        format!("Code=\"FailedIdentityOperation\" Message=\"Identity (s) '{two}' are not found.\"");
    assert_eq!(failed_identity_ids(&failed), ids(&[two]));
    assert!(is_erroneous_identity_error(
        "FailedIdentityOperation",
        &failed
    ));

    // No quoted list, or another error code.
    assert!(failed_identity_ids(&format!("FailedIdentityOperation {two}")).is_empty());
    assert!(!is_erroneous_identity_error(
        "FailedIdentityOperation",
        "no ids here"
    ));
    assert!(!is_erroneous_identity_error(
        "Conflict",
        &failed.replace("FailedIdentityOperation", "X")
    ));
    assert!(failed_identity_ids("").is_empty());
    assert!(failed_identity_ids("'").is_empty());
    // A segment with a character outside [A-Za-z0-9-_] breaks the list.
    assert!(failed_identity_ids(&format!("'{}'", one.replace("bad-1", "bad.1"))).is_empty());
}
