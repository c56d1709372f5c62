//! Azure RBAC: the built-in roles azure-sim knows and the permission check.
//!
//! A principal may perform an action on a resource when one of its role assignments has a scope that is the
//! resource or one of its ancestors and the role's actions (or data actions) match the action, minus its
//! not-actions. Patterns are case-insensitive; `*` matches everything, `Microsoft.Compute/*` a prefix and
//! `*/read` any read. Role definitions follow the built-in roles' published permissions, reduced to the
//! resource types azure-sim serves.

/// A built-in role definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// Role name.
    pub name: &'static str,
    /// Role definition GUID (as in Azure).
    pub id: &'static str,
    /// Control-plane actions.
    pub actions: &'static [&'static str],
    /// Excluded control-plane actions.
    pub not_actions: &'static [&'static str],
    /// Data-plane actions.
    pub data_actions: &'static [&'static str],
}

/// The built-in roles.
pub const ROLES: &[Role] = &[
    Role {
        name: "Owner",
        id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
    },
    Role {
        name: "Contributor",
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ],
        data_actions: &[],
    },
    Role {
        name: "Reader",
        id: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
    },
    Role {
        name: "Virtual Machine Contributor",
        id: "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Compute/availabilitySets/*",
            "Microsoft.Compute/locations/*",
            "Microsoft.Compute/virtualMachines/*",
            "Microsoft.Compute/virtualMachineScaleSets/*",
            "Microsoft.Compute/disks/write",
            "Microsoft.Compute/disks/read",
            "Microsoft.Compute/disks/delete",
            "Microsoft.Network/networkInterfaces/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    Role {
        name: "Managed Identity Operator",
        id: "f1a07417-d97a-45cb-824c-7a7467783830",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    Role {
        name: "Managed Identity Contributor",
        id: "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    Role {
        name: "Key Vault Administrator",
        id: "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        actions: &[
            "Microsoft.KeyVault/*/read",
            "Microsoft.Authorization/*/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/*"],
    },
    Role {
        name: "Key Vault Secrets Officer",
        id: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        actions: &[
            "Microsoft.KeyVault/*/read",
            "Microsoft.Authorization/*/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/secrets/*"],
    },
    Role {
        name: "Key Vault Secrets User",
        id: "4633458b-17de-408a-b874-0445c86b69e6",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
    Role {
        name: "Key Vault Reader",
        id: "21090545-7ca7-4776-b22c-e363652d74d2",
        actions: &[
            "Microsoft.KeyVault/*/read",
            "Microsoft.Authorization/*/read",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
];

/// A built-in role by name (case-insensitive).
pub fn role_by_name(name: &str) -> Option<&'static Role> {
    ROLES
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(name.trim()))
}

/// A built-in role by definition GUID, or by a full role definition ID ending in it.
pub fn role_by_id(id: &str) -> Option<&'static Role> {
    let guid = id.trim_end_matches('/').rsplit('/').next().unwrap_or(id);
    ROLES.iter().find(|r| r.id.eq_ignore_ascii_case(guid))
}

/// Whether `pattern` (with `*` wildcards) matches `action`, ignoring case.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let a = action.to_ascii_lowercase();
    // ARM lets a `/*/` segment match nothing: `userAssignedIdentities/*/assign/action` (Managed Identity
    // Operator) grants `userAssignedIdentities/assign/action`.
    glob(p.as_bytes(), a.as_bytes())
        || (p.contains("/*/") && glob(p.replace("/*/", "/").as_bytes(), a.as_bytes()))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with backtracking to the last star.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether `role` grants `action` (control plane when `data` is false).
pub fn role_allows(role: &Role, action: &str, data: bool) -> bool {
    if data {
        role.data_actions.iter().any(|p| action_matches(p, action))
    } else {
        role.actions.iter().any(|p| action_matches(p, action))
            && !role.not_actions.iter().any(|p| action_matches(p, action))
    }
}

/// One assignment as the check sees it.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    /// The role.
    pub role: &'static Role,
    /// Its scope.
    pub scope: &'a str,
}

/// Whether any grant allows `action` on `resource_id`.
pub fn allowed(grants: &[Grant<'_>], action: &str, resource_id: &str, data: bool) -> bool {
    grants.iter().any(|g| {
        crate::armid::scope_contains(g.scope, resource_id) && role_allows(g.role, action, data)
    })
}

/// The action checked on a user-assigned identity when it is assigned to a VM or scale set (linked access
/// check).
pub const ASSIGN_ACTION: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        let cases = [
            ("*", "Microsoft.Compute/virtualMachines/write", true),
            ("*/read", "Microsoft.Compute/virtualMachines/read", true),
            ("*/read", "Microsoft.Compute/virtualMachines/write", false),
            (
                "Microsoft.Compute/virtualMachines/*",
                "microsoft.compute/virtualmachines/write",
                true,
            ),
            (
                "Microsoft.Compute/virtualMachines/*",
                "Microsoft.Compute/virtualMachineScaleSets/write",
                false,
            ),
            (
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
                true,
            ),
            (
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                "Microsoft.ManagedIdentity/userAssignedIdentities/x/assign/action",
                true,
            ),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (p, a, want) in cases {
            assert_eq!(action_matches(p, a), want, "{p} vs {a}");
        }
    }

    #[test]
    fn roles_and_scopes() {
        let mio = role_by_name("managed identity operator").expect("role");
        assert!(role_allows(mio, ASSIGN_ACTION, false));
        assert!(role_allows(
            mio,
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            false
        ));
        assert!(!role_allows(
            mio,
            "Microsoft.Compute/virtualMachines/write",
            false
        ));
        let vmc = role_by_id("/providers/Microsoft.Authorization/roleDefinitions/9980e02c-c2be-4d73-94e8-173b1dc7cf3c").expect("vmc");
        assert!(role_allows(
            vmc,
            "Microsoft.Compute/virtualMachineScaleSets/write",
            false
        ));
        let contrib = role_by_name("Contributor").expect("c");
        assert!(!role_allows(
            contrib,
            "Microsoft.Authorization/roleAssignments/write",
            false
        ));
        assert!(role_allows(
            contrib,
            "Microsoft.Compute/virtualMachines/write",
            false
        ));
        let ksu = role_by_name("Key Vault Secrets User").expect("ksu");
        assert!(role_allows(
            ksu,
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            true
        ));
        assert!(!role_allows(
            ksu,
            "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            true
        ));
        let grants = [Grant {
            role: vmc,
            scope: "/subscriptions/s/resourceGroups/rg",
        }];
        assert!(allowed(
            &grants,
            "Microsoft.Compute/virtualMachines/write",
            "/subscriptions/s/resourcegroups/RG/providers/Microsoft.Compute/virtualMachines/v",
            false
        ));
        assert!(!allowed(
            &grants,
            "Microsoft.Compute/virtualMachines/write",
            "/subscriptions/s/resourceGroups/other/providers/Microsoft.Compute/virtualMachines/v",
            false
        ));
        assert!(role_by_name("nope").is_none());
    }
}
