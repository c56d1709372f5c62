//! Names and identifiers: Azure node provider IDs, compute ARM IDs, AzureAssignedIdentity names and the
//! user-assigned identity resource-ID check MIC applies to every type-0 AzureIdentity.
//!
//! Everything here is a hand-written matcher (the crate has no regex dependency). Case-insensitive
//! comparisons follow Go's `(?i)` simple case folding for ASCII patterns: besides ASCII letters, the
//! Kelvin sign `K` (U+212A) folds to `k` and the long s `ſ` (U+017F) folds to `s`.

use super::model::{Target, TargetKind};

/// Scheme of Azure node provider IDs (`spec.providerID`), matched case-insensitively.
const AZURE_PROVIDER_SCHEME: &str = "azure://";

/// Resource-ID pattern pieces of upstream's
/// `(?i)/subscriptions/(.+?)/resourcegroups/(.+?)/providers/Microsoft.ManagedIdentity/userAssignedIdentities/(.+)`,
/// lowercased; `None` stands for the regex `.` (any character but a newline).
const RID_SUBSCRIPTIONS: &str = "/subscriptions/";
const RID_RESOURCE_GROUPS: &str = "/resourcegroups/";
const RID_PROVIDERS_HEAD: &str = "/providers/microsoft";
const RID_PROVIDERS_TAIL: &str = "managedidentity/userassignedidentities/";

// === impl Target ===

impl Target {
    /// The ARM ID of the VM or scale set:
    /// `/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines|virtualMachineScaleSets/NAME`,
    /// with the values as written in the provider ID.
    #[must_use]
    pub fn arm_id(&self) -> String {
        let kind = match self.kind {
            TargetKind::Vm => "virtualMachines",
            TargetKind::Vmss => "virtualMachineScaleSets",
        };
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/{}/{}",
            self.subscription, self.resource_group, kind, self.name
        )
    }

    /// Identity of the target for grouping and maps: [`Target::arm_id`] lowercased (ARM IDs are
    /// case-insensitive, and provider IDs of one scale set are not always spelled alike).
    #[must_use]
    pub fn key(&self) -> String {
        self.arm_id().to_lowercase()
    }
}

/// Parses an Azure node provider ID (`spec.providerID`).
///
/// - `azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/VMSS/virtualMachines/3`
///   gives `Vmss { S, RG, VMSS }` (every instance of a scale set maps to the scale set);
/// - `azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/NAME` gives
///   `Vm { S, RG, NAME }`.
///
/// Segment names and the scheme are matched case-insensitively (`resourcegroups`, `microsoft.compute`);
/// values are kept as written. Anything else (another cloud, an empty segment, extra segments) is `None`.
#[must_use]
pub fn parse_provider_id(provider_id: &str) -> Option<Target> {
    let rest = strip_prefix_ignore_case(provider_id, AZURE_PROVIDER_SCHEME)?;
    let path = rest.strip_prefix('/')?;
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let (head, tail) = segments.split_at_checked(7)?;
    let [subs, sub, rgs, rg, providers, namespace, kind] = head else {
        return None;
    };
    if !subs.eq_ignore_ascii_case("subscriptions")
        || !rgs.eq_ignore_ascii_case("resourcegroups")
        || !providers.eq_ignore_ascii_case("providers")
        || !namespace.eq_ignore_ascii_case("microsoft.compute")
    {
        return None;
    }
    let target = |kind: TargetKind, name: &str| Target {
        kind,
        subscription: (*sub).to_owned(),
        resource_group: (*rg).to_owned(),
        name: name.to_owned(),
    };
    match tail {
        [name] if kind.eq_ignore_ascii_case("virtualmachines") => {
            Some(target(TargetKind::Vm, name))
        }
        [name, vms, _instance]
            if kind.eq_ignore_ascii_case("virtualmachinescalesets")
                && vms.eq_ignore_ascii_case("virtualmachines") =>
        {
            Some(target(TargetKind::Vmss, name))
        }
        _ => None,
    }
}

/// The AzureAssignedIdentity name MIC gives the assignment of `identity` to a pod:
/// `<pod>-<podNamespace>-<identity>` (no hashing, no truncation; the upstream e2e tests rebuild it).
#[must_use]
pub fn assigned_name(pod: &str, pod_namespace: &str, identity: &str) -> String {
    let mut name = String::with_capacity(pod.len() + pod_namespace.len() + identity.len() + 2);
    name.push_str(pod);
    name.push('-');
    name.push_str(pod_namespace);
    name.push('-');
    name.push_str(identity);
    name
}

/// Upstream's check of a type-0 AzureIdentity's `spec.resourceID`: the unanchored, case-insensitive
/// regex `/subscriptions/(.+?)/resourcegroups/(.+?)/providers/Microsoft.ManagedIdentity/userAssignedIdentities/(.+)`
/// (the `.` in `Microsoft.ManagedIdentity` is the regex wildcard, and no part of a match spans a newline).
///
/// An identity failing it is ignored entirely, as upstream does.
#[must_use]
pub fn is_valid_resource_id(id: &str) -> bool {
    id.split('\n').any(|line| {
        let folded: Vec<char> = line.chars().map(fold_char).collect();
        line_has_resource_id(&folded)
    })
}

/// Leftmost-earliest search for the resource-ID regex on one line (already case-folded). Every gap is
/// `.+?`, so choosing the earliest occurrence of each literal is optimal: a later choice never helps.
fn line_has_resource_id(line: &[char]) -> bool {
    let Some(sub) = find_literal(line, 0, RID_SUBSCRIPTIONS) else {
        return false;
    };
    // At least one character of subscription before `/resourcegroups/`.
    let after_sub = sub + RID_SUBSCRIPTIONS.len() + 1;
    let Some(rg) = find_literal(line, after_sub, RID_RESOURCE_GROUPS) else {
        return false;
    };
    let after_rg = rg + RID_RESOURCE_GROUPS.len() + 1;
    let mut from = after_rg;
    while let Some(head) = find_literal(line, from, RID_PROVIDERS_HEAD) {
        // One wildcard character, then the tail, then at least one character of name.
        let tail_at = head + RID_PROVIDERS_HEAD.len() + 1;
        if literal_at(line, tail_at, RID_PROVIDERS_TAIL)
            && tail_at + RID_PROVIDERS_TAIL.len() < line.len()
        {
            return true;
        }
        from = head + 1;
    }
    false
}

/// Index of the first occurrence of the lowercase ASCII `literal` in `hay` at or after `from`.
pub(crate) fn find_literal(hay: &[char], from: usize, literal: &str) -> Option<usize> {
    let n = literal.chars().count();
    if hay.len() < n {
        return None;
    }
    (from..=hay.len() - n).find(|&i| literal_at(hay, i, literal))
}

/// Whether the lowercase ASCII `literal` occurs in `hay` at `at`.
pub(crate) fn literal_at(hay: &[char], at: usize, literal: &str) -> bool {
    let mut i = at;
    for expected in literal.chars() {
        match hay.get(i) {
            Some(&c) if c == expected => i += 1,
            _ => return false,
        }
    }
    true
}

/// Case folding onto lowercase ASCII as Go's `(?i)` does for ASCII patterns.
pub(crate) fn fold_char(c: char) -> char {
    match c {
        '\u{212A}' => 'k',
        '\u{017F}' => 's',
        _ => c.to_ascii_lowercase(),
    }
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}
