//! Cluster identity protection (beyond upstream): the identities a pod must never get by naming them.
//!
//! The cluster's own identities (the kubelet / node identity and the cluster service principal, read from the
//! cloud config) can modify the node pools' scale sets and pull from registries. Upstream hands them to any pod
//! whose label matches a binding to an AzureIdentity naming them, from any namespace. podid refuses them by
//! default, in the controller (no assignment, a Warning event on the AzureIdentity) and in the node agent (no
//! token), together with an operator deny-list of client IDs or resource IDs. An operator who really wants one
//! of them in pods opts in per namespace (`--allow-cluster-identity-namespaces`): AzureIdentities *in* those
//! namespaces may name them. Every other identity, preexisting assignments and managed mode work as upstream.
//!
//! Pure: built from flag values and the cloud config's client IDs; compared case-insensitively (GUIDs and ARM
//! IDs are).

use std::collections::BTreeSet;

use crate::nmi::request::redact;

/// Why an identity is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    /// It is one of the cluster's own identities (cloud config).
    ClusterIdentity,
    /// The operator's deny-list names it.
    DenyListed,
}

/// The protected identities and the namespaces allowed to name the cluster's own ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedIdentities {
    cluster_client_ids: BTreeSet<String>,
    denied_client_ids: BTreeSet<String>,
    denied_resource_ids: BTreeSet<String>,
    allowed_namespaces: BTreeSet<String>,
}

/// Flag name of the opt-in list (named in refusals).
pub const ALLOW_FLAG: &str = "--allow-cluster-identity-namespaces";
/// Flag name of the deny-list.
pub const DENY_FLAG: &str = "--denied-identities";

impl ProtectedIdentities {
    /// `cluster_client_ids`: the cloud config's identities; `deny`: client IDs or ARM resource IDs (those start
    /// with `/`); `allowed_namespaces`: namespaces whose AzureIdentities may name the cluster's identities (the
    /// deny-list has no opt-in). Empty strings are ignored.
    #[must_use]
    pub fn new<S: AsRef<str>>(
        cluster_client_ids: impl IntoIterator<Item = S>,
        deny: impl IntoIterator<Item = S>,
        allowed_namespaces: impl IntoIterator<Item = S>,
    ) -> ProtectedIdentities {
        let norm = |s: S| s.as_ref().trim().to_ascii_lowercase();
        let mut p = ProtectedIdentities {
            cluster_client_ids: cluster_client_ids
                .into_iter()
                .map(norm)
                .filter(|s| !s.is_empty())
                .collect(),
            allowed_namespaces: allowed_namespaces
                .into_iter()
                .map(|s| s.as_ref().trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            ..Default::default()
        };
        for d in deny.into_iter().map(norm).filter(|s| !s.is_empty()) {
            if d.starts_with('/') {
                p.denied_resource_ids.insert(d);
            } else {
                p.denied_client_ids.insert(d);
            }
        }
        p
    }

    /// From the cloud config's client IDs and the two comma-separated flag values.
    #[must_use]
    pub fn from_flags(
        cluster_client_ids: Vec<String>,
        denied_csv: &str,
        allowed_namespaces_csv: &str,
    ) -> ProtectedIdentities {
        ProtectedIdentities::new(
            cluster_client_ids.iter().map(String::as_str),
            denied_csv.split(','),
            allowed_namespaces_csv.split(','),
        )
    }

    /// Nothing is protected.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cluster_client_ids.is_empty()
            && self.denied_client_ids.is_empty()
            && self.denied_resource_ids.is_empty()
    }

    /// Whether an AzureIdentity in `namespace` with these IDs is refused, and why.
    #[must_use]
    pub fn check(&self, namespace: &str, client_id: &str, resource_id: &str) -> Option<Protected> {
        let c = client_id.trim().to_ascii_lowercase();
        let r = resource_id.trim().to_ascii_lowercase();
        if (!c.is_empty() && self.denied_client_ids.contains(&c))
            || (!r.is_empty() && self.denied_resource_ids.contains(&r))
        {
            return Some(Protected::DenyListed);
        }
        if !c.is_empty()
            && self.cluster_client_ids.contains(&c)
            && !self.allowed_namespaces.contains(namespace)
        {
            return Some(Protected::ClusterIdentity);
        }
        None
    }

    /// The refusal in words, for the agent's 403, the doctor and the event on the AzureIdentity.
    #[must_use]
    pub fn message(why: Protected, namespace: &str, name: &str, client_id: &str) -> String {
        match why {
            Protected::ClusterIdentity => format!(
                "AzureIdentity {namespace}/{name} names the cluster's own identity (client ID {}), which can change the cluster's nodes: podid refuses it to pods. To allow it on purpose, start the controller and the node agents with {ALLOW_FLAG}={namespace}",
                redact(client_id)
            ),
            Protected::DenyListed => format!(
                "AzureIdentity {namespace}/{name} names an identity on the operator's deny-list ({DENY_FLAG}, client ID {}): podid refuses it to pods",
                redact(client_id)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBELET: &str = "11111111-2222-3333-4444-555555555555";
    const RID: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x";

    #[test]
    fn cluster_identity_refused_outside_allowed_namespaces() {
        let p = ProtectedIdentities::new([KUBELET], [], ["kube-system"]);
        assert!(!p.is_empty());
        assert_eq!(
            p.check("default", &KUBELET.to_uppercase(), ""),
            Some(Protected::ClusterIdentity)
        );
        assert_eq!(p.check("kube-system", KUBELET, ""), None);
        assert_eq!(p.check("default", "other", RID), None);
        let m =
            ProtectedIdentities::message(Protected::ClusterIdentity, "default", "kubelet", KUBELET);
        assert!(
            m.contains("--allow-cluster-identity-namespaces=default"),
            "{m}"
        );
        assert!(!m.contains(KUBELET), "client IDs are redacted: {m}");
    }

    #[test]
    fn deny_list_by_client_or_resource_id_has_no_opt_in() {
        let p = ProtectedIdentities::new(["", " "], ["ABC", &RID.to_uppercase()], ["default"]);
        assert_eq!(p.check("default", "abc", ""), Some(Protected::DenyListed));
        assert_eq!(p.check("default", "x", RID), Some(Protected::DenyListed));
        assert_eq!(p.check("default", "x", "/other"), None);
        assert!(ProtectedIdentities::new::<&str>([], [], []).is_empty());
        assert!(ProtectedIdentities::new([""], [""], ["a"]).is_empty());
    }
}
