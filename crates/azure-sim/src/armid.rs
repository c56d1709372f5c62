//! ARM resource IDs: building, parsing and comparing them.
//!
//! ARM treats resource IDs case-insensitively (`resourceGroups` and `resourcegroups` name the same thing, and
//! MIC lowercases the IDs it sends). Every comparison here is ASCII case-insensitive and ignores a trailing `/`;
//! IDs are stored as first written.

/// `/subscriptions/{sub}`.
pub fn subscription_id(sub: &str) -> String {
    format!("/subscriptions/{sub}")
}

/// `/subscriptions/{sub}/resourceGroups/{rg}`.
pub fn resource_group_id(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

/// A resource ID under a resource group: `.../providers/{namespace}/{type}/{name}`.
pub fn resource_id(sub: &str, rg: &str, namespace: &str, kind: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{kind}/{name}")
}

/// A virtual machine's ID.
pub fn vm_id(sub: &str, rg: &str, name: &str) -> String {
    resource_id(sub, rg, "Microsoft.Compute", "virtualMachines", name)
}

/// A scale set's ID.
pub fn vmss_id(sub: &str, rg: &str, name: &str) -> String {
    resource_id(
        sub,
        rg,
        "Microsoft.Compute",
        "virtualMachineScaleSets",
        name,
    )
}

/// A user-assigned identity's ID.
pub fn uami_id(sub: &str, rg: &str, name: &str) -> String {
    resource_id(
        sub,
        rg,
        "Microsoft.ManagedIdentity",
        "userAssignedIdentities",
        name,
    )
}

/// A Key Vault's ID.
pub fn vault_id(sub: &str, rg: &str, name: &str) -> String {
    resource_id(sub, rg, "Microsoft.KeyVault", "vaults", name)
}

/// Case-insensitive equality of two IDs, ignoring trailing slashes.
pub fn eq(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// The lowercase key under which an ID is indexed.
pub fn key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// Whether `scope` is `id` or one of its ancestors (segment-wise, case-insensitive). `/` is the root scope.
pub fn scope_contains(scope: &str, id: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    if scope.is_empty() {
        return true;
    }
    let id = id.trim_end_matches('/');
    // Byte-wise: a scope length may fall inside a multi-byte character of a caller-supplied ID.
    let Some(prefix) = id.as_bytes().get(..scope.len()) else {
        return false;
    };
    if !prefix.eq_ignore_ascii_case(scope.as_bytes()) {
        return false;
    }
    id.len() == scope.len() || id.as_bytes()[scope.len()] == b'/'
}

#[cfg(test)]
mod scope_tests {
    use super::scope_contains;
    use proptest::prelude::*;

    #[test]
    fn multibyte_ids_do_not_panic() {
        let scope = "/subscriptions/s/resourceGroups/rg";
        assert!(!scope_contains(
            scope,
            "/subscriptions/s/resourceGroups/r\u{e9}xx"
        ));
        assert!(scope_contains(
            scope,
            "/SUBSCRIPTIONS/s/resourcegroups/RG/providers/x"
        ));
        assert!(!scope_contains(
            scope,
            "/subscriptions/s/resourceGroups/rg2"
        ));
    }

    proptest! {
        #[test]
        fn scope_contains_never_panics(scope in ".{0,60}", id in ".{0,80}") {
            let _ = scope_contains(&scope, &id);
        }
    }
}

/// The parts of a user-assigned identity ID: (subscription, resource group, name).
pub fn parse_uami_id(id: &str) -> Option<(String, String, String)> {
    let segs: Vec<&str> = id.trim_end_matches('/').split('/').collect();
    match segs.as_slice() {
        ["", s, sub, r, rg, p, ns, t, name]
            if s.eq_ignore_ascii_case("subscriptions")
                && r.eq_ignore_ascii_case("resourceGroups")
                && p.eq_ignore_ascii_case("providers")
                && ns.eq_ignore_ascii_case("Microsoft.ManagedIdentity")
                && t.eq_ignore_ascii_case("userAssignedIdentities")
                && valid_name(sub)
                && valid_name(rg)
                && valid_name(name) =>
        {
            Some((sub.to_string(), rg.to_string(), name.to_string()))
        }
        _ => None,
    }
}

/// The subscription segment of any ID below `/subscriptions/{sub}`.
pub fn subscription_of(id: &str) -> Option<&str> {
    let mut it = id.trim_start_matches('/').split('/');
    match (it.next(), it.next()) {
        (Some(s), Some(sub)) if s.eq_ignore_ascii_case("subscriptions") && !sub.is_empty() => {
            Some(sub)
        }
        _ => None,
    }
}

/// A plausible resource name segment (no slash, not empty, no control characters).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 260 && !s.chars().any(|c| c == '/' || c.is_control())
}

/// Whether `s` is a GUID in its canonical 8-4-4-4-12 hex form.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A deterministic GUID derived from `seed` (SHA-256, version nibble 4, RFC 4122 variant), so a world file
/// without explicit IDs yields the same IDs on every start.
pub fn derived_guid(seed: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_scopes() {
        let id = uami_id("s1", "rg", "id1");
        assert_eq!(
            id,
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
        );
        assert_eq!(
            parse_uami_id(&id.to_ascii_lowercase()),
            Some(("s1".into(), "rg".into(), "id1".into()))
        );
        assert_eq!(parse_uami_id(&vm_id("s", "r", "v")), None);
        assert_eq!(
            parse_uami_id(
                "/subscriptions//resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"
            ),
            None
        );
        assert!(eq(&id, &format!("{}/", id.to_uppercase())));
        let table = [
            ("/", "/subscriptions/s", true),
            ("", "/subscriptions/s", true),
            (
                "/subscriptions/s",
                "/subscriptions/s/resourceGroups/r",
                true,
            ),
            (
                "/subscriptions/S/",
                "/subscriptions/s/resourceGroups/r",
                true,
            ),
            (
                "/subscriptions/s",
                "/subscriptions/s2/resourceGroups/r",
                false,
            ),
            (
                "/subscriptions/s/resourceGroups/r",
                "/subscriptions/s",
                false,
            ),
            (
                "/subscriptions/s/resourceGroups/r",
                "/subscriptions/s/resourcegroups/R",
                true,
            ),
        ];
        for (scope, target, want) in table {
            assert_eq!(scope_contains(scope, target), want, "{scope} {target}");
        }
        assert_eq!(subscription_of("/subscriptions/abc/x"), Some("abc"));
        assert_eq!(subscription_of("/nope"), None);
    }

    #[test]
    fn guids() {
        let g = derived_guid("x");
        assert!(is_guid(&g));
        assert_eq!(g, derived_guid("x"));
        assert_ne!(g, derived_guid("y"));
        assert_eq!(&g[14..15], "4");
        assert!(!is_guid("not-a-guid"));
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    }
}
