//! Authorisation: the attributes of a request and the RBAC decision over them (the apiserver's
//! `authorizer.Attributes` and `Authorize`). No HTTP types: the verb layer builds [`Attrs`] from a request, the
//! review APIs and impersonation from their own inputs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kube_sim_auth::StaticRbac;

use crate::Sim;
use crate::authn::User;
use crate::resources::ResKey;

const RBAC_KINDS: &[&str] = &[
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
];

/// Authorisation attributes of one request.
#[derive(Debug, Clone)]
pub struct Attrs {
    /// Verb.
    pub verb: String,
    /// Resource request (true) or non-resource path (false).
    pub resource_request: bool,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Non-resource path.
    pub path: String,
}

impl Attrs {
    /// Attributes of a resource request.
    pub fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        sub: Option<&str>,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        Attrs {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.map(str::to_string),
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            path: String::new(),
        }
    }

    /// Attributes of a non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Attrs {
            verb: verb.into(),
            resource_request: false,
            group: String::new(),
            resource: String::new(),
            subresource: None,
            namespace: None,
            name: None,
            path: path.into(),
        }
    }

    /// The 403 for these attributes: the message, and details naming the resource (`{kind: <resource>, group,
    /// name}`, empty for a non-resource path), as the apiserver's `NewForbidden` writes them.
    pub fn forbidden(&self, user: &str) -> crate::error::ApiError {
        let e = crate::error::ApiError::forbidden(self.forbidden_message(user));
        if !self.resource_request {
            return e.with_details("", "", "");
        }
        e.with_details(
            self.name.as_deref().unwrap_or(""),
            &self.group,
            &self.resource,
        )
    }

    /// The message of a 403 for these attributes.
    pub fn forbidden_message(&self, user: &str) -> String {
        if !self.resource_request {
            return format!(
                "forbidden: User \"{user}\" cannot {} path \"{}\"",
                self.verb, self.path
            );
        }
        let res = match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        };
        let subject = match &self.name {
            Some(n) => format!(
                "{} \"{n}\"",
                crate::error::qualified(&self.resource, &self.group)
            ),
            None => crate::error::qualified(&self.resource, &self.group),
        };
        let scope = match &self.namespace {
            Some(ns) if !ns.is_empty() => format!("in the namespace \"{ns}\""),
            _ => "at the cluster scope".to_string(),
        };
        format!(
            "{subject} is forbidden: User \"{user}\" cannot {} resource \"{res}\" in API group \"{}\" {scope}",
            self.verb, self.group
        )
    }
}

/// Evaluate RBAC for `user`: (allowed, reason).
pub fn authorize(sim: &Sim, user: &User, attrs: &Attrs) -> (bool, String) {
    if user.is_master() {
        return (true, "system:masters".into());
    }
    rbac_decision(sim, user, attrs)
}

/// The RBAC objects, rebuilt only when one of them changed.
pub(crate) fn rbac_snapshot(sim: &Sim) -> Arc<StaticRbac> {
    let generation = sim.rbac_generation.load(Ordering::SeqCst);
    if let Some((g, snap)) = sim.rbac_cache.read().as_ref()
        && *g == generation
    {
        return snap.clone();
    }
    let mut objs = Vec::new();
    for r in RBAC_KINDS {
        let (items, _, _) = sim.store.list(
            &ResKey::new("rbac.authorization.k8s.io", r),
            None,
            None,
            None,
            None,
            &|_| true,
        );
        objs.extend(items.iter().map(|o| (**o).clone()));
    }
    let snap = Arc::new(StaticRbac::from_objects(objs));
    *sim.rbac_cache.write() = Some((generation, snap.clone()));
    snap
}

fn auth_attrs(user: kube_sim_auth::UserInfo, a: &Attrs) -> kube_sim_auth::Attributes {
    if a.resource_request {
        kube_sim_auth::Attributes::resource(
            user,
            kube_sim_auth::ResourceAttributes {
                verb: a.verb.clone(),
                namespace: a.namespace.clone().unwrap_or_default(),
                group: a.group.clone(),
                version: String::new(),
                resource: a.resource.clone(),
                subresource: a.subresource.clone().unwrap_or_default(),
                name: a.name.clone().unwrap_or_default(),
            },
        )
    } else {
        kube_sim_auth::Attributes::non_resource(user, a.path.clone(), a.verb.clone())
    }
}

/// RBAC decision for a request: (allowed, reason).
fn rbac_decision(sim: &Sim, user: &User, attrs: &Attrs) -> (bool, String) {
    let snap = rbac_snapshot(sim);
    let d = kube_sim_auth::authorize(&auth_attrs(user.user_info(), attrs), snap.as_ref());
    (d.allowed, d.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_resource_in_its_details() {
        let get = Attrs::resource("get", "", "configmaps", None, Some("ns"), Some("c"));
        let status = get.forbidden("bob").to_status();
        assert_eq!(
            status["details"],
            serde_json::json!({"name": "c", "kind": "configmaps"})
        );
        let path = Attrs::non_resource("get", "/metrics")
            .forbidden("bob")
            .to_status();
        assert_eq!(path["details"], serde_json::json!({}));
    }
}
