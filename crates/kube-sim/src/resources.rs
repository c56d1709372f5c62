//! The resource registry: which group/version/resource the simulator serves, and how.
//!
//! Built-in kinds are a static table; custom resources are added and removed as CustomResourceDefinition objects
//! come and go. The registry is read on every request, so lookups are map hits on `(group, version, plural)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Verbs a resource supports, as discovery advertises them.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of custom resources, in the order the apiextensions server advertises them.
pub const CUSTOM_RESOURCE_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// Storage identity of a resource: the group and the plural (versions share storage).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResKey {
    /// API group, `""` for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl ResKey {
    /// Build a key.
    pub fn new(group: &str, resource: &str) -> Self {
        ResKey {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

/// A subresource of a resource type.
#[derive(Debug, Clone)]
pub struct Subresource {
    /// `status`, `binding`, `token`, ...
    pub name: &'static str,
    /// Kind returned by the subresource.
    pub kind: &'static str,
    /// Group/version of that kind.
    pub group: &'static str,
    /// Version of that kind.
    pub version: &'static str,
    /// Verbs on the subresource.
    pub verbs: &'static [&'static str],
}

/// Custom-resource specifics.
#[derive(Debug, Clone, Default)]
pub struct CrdInfo {
    /// `openAPIV3Schema` of this version.
    pub schema: Value,
    /// `additionalPrinterColumns` of this version.
    pub printer_columns: Value,
    /// Name of the CustomResourceDefinition.
    pub crd_name: String,
}

/// One served group/version/resource.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group (`""` for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural.
    pub resource: String,
    /// Singular.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Verbs.
    pub verbs: Vec<&'static str>,
    /// Subresources served.
    pub subresources: Vec<Subresource>,
    /// Custom resource details; `None` for built-ins.
    pub crd: Option<CrdInfo>,
}

impl ResourceType {
    /// `apiVersion` string of objects of this type.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key.
    pub fn key(&self) -> ResKey {
        ResKey::new(&self.group, &self.resource)
    }

    /// Whether the `status` subresource is served (then the main resource ignores status writes).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s.name == "status")
    }

    /// Find a subresource.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether objects of this type carry `metadata.generation` (their strategy sets it on create and bumps it on
    /// spec changes): custom resources, CRDs, pods, workloads, webhook configurations; not ConfigMaps, Secrets,
    /// ServiceAccounts, Namespaces, Services, RBAC objects...
    pub fn tracks_generation(&self) -> bool {
        self.crd.is_some()
            || matches!(
                self.group.as_str(),
                "apps"
                    | "batch"
                    | "apiextensions.k8s.io"
                    | "admissionregistration.k8s.io"
                    | "policy"
                    | "networking.k8s.io"
            )
            || (self.group.is_empty() && self.resource == "pods")
    }

    /// `pods` or `azureidentities.aadpodidentity.k8s.io`.
    pub fn qualified(&self) -> String {
        crate::error::qualified(&self.resource, &self.group)
    }
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// `apps/v1` resources with a `scale` subresource (`autoscaling/v1` Scale), as the apiserver serves them.
pub const SCALABLE: &[&str] = &["deployments", "replicasets", "statefulsets"];

struct Builtin {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    all: bool,
}

#[allow(clippy::too_many_arguments)] // a table row constructor: one argument per column
const fn b(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    all: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        resource,
        singular,
        kind,
        namespaced,
        short,
        status,
        all,
    }
}

const BUILTINS: &[Builtin] = &[
    b(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
        false,
    ),
    b(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        true,
        false,
    ),
    b("", "v1", "pods", "pod", "Pod", true, &["po"], true, true),
    b(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        false,
        false,
    ),
    b(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        &[],
        false,
        false,
    ),
    b(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        false,
        false,
    ),
    b(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        false,
        false,
    ),
    b(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        false,
        false,
    ),
    b(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        true,
        true,
    ),
    b(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        false,
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        false,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        &[],
        false,
        false,
    ),
    b(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        true,
        true,
    ),
    b("batch", "v1", "jobs", "job", "Job", true, &[], true, true),
    b(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        true,
        true,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        false,
    ),
];

/// Create-only review resources (not stored).
const REVIEWS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "TokenReview",
        false,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
];

fn builtin_type(def: &Builtin) -> ResourceType {
    let mut subresources = Vec::new();
    if def.status {
        subresources.push(Subresource {
            name: "status",
            kind: def.kind,
            group: def.group,
            version: def.version,
            verbs: STATUS_VERBS,
        });
    }
    if def.kind == "Pod" {
        subresources.push(Subresource {
            name: "binding",
            kind: "Binding",
            group: "",
            version: "v1",
            verbs: &["create"],
        });
    }
    if SCALABLE.contains(&def.resource) && def.group == "apps" {
        subresources.push(Subresource {
            name: "scale",
            kind: "Scale",
            group: "autoscaling",
            version: "v1",
            verbs: STATUS_VERBS,
        });
    }
    if def.kind == "ServiceAccount" {
        subresources.push(Subresource {
            name: "token",
            kind: "TokenRequest",
            group: "authentication.k8s.io",
            version: "v1",
            verbs: &["create"],
        });
    }
    ResourceType {
        group: def.group.to_string(),
        version: def.version.to_string(),
        resource: def.resource.to_string(),
        singular: def.singular.to_string(),
        kind: def.kind.to_string(),
        namespaced: def.namespaced,
        short_names: def.short.iter().map(|s| s.to_string()).collect(),
        categories: if def.all {
            vec!["all".to_string()]
        } else if def.group == "admissionregistration.k8s.io" {
            vec!["api-extensions".to_string()]
        } else {
            Vec::new()
        },
        // Namespaces are deleted one by one (through Terminating): no deletecollection.
        verbs: ALL_VERBS
            .iter()
            .copied()
            .filter(|v| !(def.resource == "namespaces" && *v == "deletecollection"))
            .collect(),
        subresources,
        crd: None,
    }
}

/// The set of served resources.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: BTreeMap<(String, String, String), Arc<ResourceType>>,
}

impl Registry {
    /// Registry with every built-in kind.
    pub fn builtin() -> Self {
        let mut r = Registry::default();
        for def in BUILTINS {
            r.insert(builtin_type(def));
        }
        for (group, version, resource, kind, namespaced) in REVIEWS {
            r.insert(ResourceType {
                group: group.to_string(),
                version: version.to_string(),
                resource: resource.to_string(),
                singular: kind.to_lowercase(),
                kind: kind.to_string(),
                namespaced: *namespaced,
                short_names: Vec::new(),
                categories: Vec::new(),
                verbs: vec!["create"],
                subresources: Vec::new(),
                crd: None,
            });
        }
        r
    }

    /// Add or replace a type.
    pub fn insert(&mut self, t: ResourceType) {
        self.types.insert(
            (t.group.clone(), t.version.clone(), t.resource.clone()),
            Arc::new(t),
        );
    }

    /// Remove every version of a custom resource.
    pub fn remove_crd(&mut self, crd_name: &str) {
        self.types
            .retain(|_, t| t.crd.as_ref().map(|c| c.crd_name.as_str()) != Some(crd_name));
    }

    /// Look up `(group, version, plural)`.
    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
            .cloned()
    }

    /// Find a type by its kind and apiVersion (for seeding files and validation).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = split_api_version(api_version);
        self.types
            .values()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    /// The storage version of a resource (the one served for a storage key).
    pub fn by_key(&self, key: &ResKey) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.group == key.group && t.resource == key.resource)
            .cloned()
    }

    /// Every served type, ordered by group, version, resource.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// Groups with their versions, in discovery order (core first, then alphabetical groups).
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values() {
            let versions = out.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        out
    }
}

/// `apps/v1` -> (`apps`, `v1`); `v1` -> (`""`, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Build the served types of a CustomResourceDefinition object (one per served version).
///
/// Returns an error message when the CRD is malformed (missing names, no versions).
pub fn crd_types(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("spec.group: Required value")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.names.plural: Required value")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind: Required value")?;
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let scope = spec
        .get("scope")
        .and_then(Value::as_str)
        .ok_or("spec.scope: Required value")?;
    let namespaced = match scope {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_names = strings(names.get("shortNames"));
    let categories = strings(names.get("categories"));
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions: Required value")?;
    if versions.is_empty() {
        return Err("spec.versions: Invalid value: []: must have exactly one version marked as storage version".into());
    }
    let mut out = Vec::new();
    for v in versions {
        let version = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("spec.versions[].name: Required value")?;
        if !v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            continue;
        }
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or(Value::Null);
        let mut subresources = Vec::new();
        if v.pointer("/subresources/status").is_some() {
            subresources.push(Subresource {
                name: "status",
                kind: "",
                group: "",
                version: "",
                verbs: STATUS_VERBS,
            });
        }
        out.push(ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            resource: plural.to_string(),
            singular: singular.clone(),
            kind: kind.to_string(),
            namespaced,
            short_names: short_names.clone(),
            categories: categories.clone(),
            verbs: CUSTOM_RESOURCE_VERBS.to_vec(),
            subresources,
            crd: Some(CrdInfo {
                schema,
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .cloned()
                    .unwrap_or(Value::Array(Vec::new())),
                crd_name: name.to_string(),
            }),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_lookup() {
        let r = Registry::builtin();
        let pods = r.get("", "v1", "pods").expect("pods");
        assert!(pods.namespaced && pods.has_status());
        assert_eq!(pods.api_version(), "v1");
        let crb = r
            .by_kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")
            .expect("crb");
        assert!(!crb.namespaced);
        assert!(r.get("", "v1", "nope").is_none());
    }

    #[test]
    fn crd_to_types() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v0", "served": false, "storage": false}
                ]}
        });
        let types = crd_types(&crd).expect("valid");
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].singular, "widget");
        assert!(types[0].has_status());
        let bad = json!({"metadata": {"name": "x"}, "spec": {"group": "g", "scope": "Namespaced", "names": {"plural": "p", "kind": "K"}, "versions": []}});
        assert!(crd_types(&bad).is_err());
    }
}
