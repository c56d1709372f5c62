//! Kubernetes RBAC evaluation over stored `rbac.authorization.k8s.io/v1` objects.
//!
//! This is a faithful re-implementation of the upstream RBAC authorizer
//! (`plugin/pkg/auth/authorizer/rbac/rbac.go`, `pkg/registry/rbac/validation/rule.go`,
//! `pkg/apis/rbac/v1/evaluation_helpers.go`), fronted, like kube-apiserver's authorizer chain,
//! by the privileged-group authorizer that allows everything for `system:masters`.
//!
//! Evaluation order and wording:
//! - ClusterRoleBindings are visited first (in the order the [`RbacSource`] yields them), then,
//!   when the request has a namespace, the RoleBindings of that namespace.
//! - A binding applies when its first matching subject matches the user: `User` by exact name,
//!   `Group` by membership, `ServiceAccount` by username `system:serviceaccount:NS:NAME`, where a
//!   RoleBinding subject without a namespace defaults to the binding's namespace and a
//!   ClusterRoleBinding subject without one never matches. Other kinds never match.
//! - The first rule that allows the request wins; the reason is
//!   `RBAC: allowed by ClusterRoleBinding "crb" of ClusterRole "cr" to User "alice"` or
//!   `RBAC: allowed by RoleBinding "rb/ns" of Role "r" to ServiceAccount "sa/ns"`.
//! - A missing role yields `clusterrole.rbac.authorization.k8s.io "x" not found` (or
//!   `role.rbac.authorization.k8s.io "x" not found`); on denial such errors become the reason
//!   (`RBAC: <aggregate>`), otherwise a denial's reason is empty. RBAC never sets `denied`.
//! - Rule matching: verbs (`*` or exact; the verb is never validated, so custom verbs such as
//!   `use-managed-identity` work), apiGroups (`*` or exact, `""` is core), resources (`*`, exact
//!   `resource` or `resource/subresource`, and `*/subresource`; note that upstream does NOT treat
//!   `pods/*` as a wildcard: it only matches the literal subresource `*`), resourceNames (empty
//!   means all; otherwise the request must name one of them), nonResourceURLs (`*`, exact, or a
//!   prefix ending in `*`). Non-resource requests carry no namespace, so only ClusterRoleBindings
//!   (and hence only ClusterRoles) can grant them.
//!
//! Aggregated ClusterRoles are not resolved here: the rules present in the stored object are used.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kube_sim_machinery::gofmt::{aggregate_messages, go_quote, unmarshal_field_type_error};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{AuthError, FieldError, decode_string};

/// The group whose members are always allowed (`user.SystemPrivilegedGroup`).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Added to every authenticated user (`user.AllAuthenticated`).
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";
/// Prefix of service-account usernames (`serviceaccount.ServiceAccountUsernamePrefix`).
pub const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";

/// Who is making a request: authentication.k8s.io/v1 `UserInfo` (also the user part of a
/// SubjectAccessReview). Empty fields are omitted when serialised, as upstream does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// `username`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub username: String,
    /// `uid`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub uid: String,
    /// `groups`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub groups: Vec<String>,
    /// `extra`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub extra: BTreeMap<String, Vec<String>>,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl UserInfo {
    /// A user with a name and groups, no uid or extra.
    pub fn new(
        username: impl Into<String>,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        UserInfo {
            username: username.into(),
            groups: groups.into_iter().map(Into::into).collect(),
            ..UserInfo::default()
        }
    }

    /// Whether the user is in `system:masters`.
    pub fn is_privileged(&self) -> bool {
        self.groups.iter().any(|g| g == SYSTEM_MASTERS)
    }
}

/// `system:serviceaccount:NS:NAME` (`serviceaccount.MakeUsername`).
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}")
}

/// Resource attributes of a request (`authorization.k8s.io/v1` `ResourceAttributes`).
/// An empty namespace means a cluster-wide request (only ClusterRoleBindings apply).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAttributes {
    /// Verb, e.g. `get`, `list`, `watch`, `create`, or a custom verb.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    /// Namespace of the request; empty for cluster-scoped or all-namespace requests.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// API group; empty is the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// API version (not used by RBAC).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Resource (plural), e.g. `pods`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// Subresource, e.g. `status`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    /// Object name; empty for list/watch/create/deletecollection of unnamed objects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Non-resource attributes (`authorization.k8s.io/v1` `NonResourceAttributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonResourceAttributes {
    /// URL path, e.g. `/healthz`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// HTTP verb in lower case (`get`, `post`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
}

/// Either kind of request attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A request on an API resource.
    Resource(ResourceAttributes),
    /// A request on a non-resource URL.
    NonResource(NonResourceAttributes),
}

/// Everything an authorizer looks at: who, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// The requesting user.
    pub user: UserInfo,
    /// The request.
    pub request: Request,
}

impl Attributes {
    /// Attributes of a resource request.
    pub fn resource(user: UserInfo, attrs: ResourceAttributes) -> Self {
        Attributes {
            user,
            request: Request::Resource(attrs),
        }
    }

    /// Attributes of a non-resource request.
    pub fn non_resource(user: UserInfo, path: impl Into<String>, verb: impl Into<String>) -> Self {
        Attributes {
            user,
            request: Request::NonResource(NonResourceAttributes {
                path: path.into(),
                verb: verb.into(),
            }),
        }
    }

    /// The namespace RBAC evaluates in (empty for non-resource and cluster-wide requests).
    pub fn namespace(&self) -> &str {
        match &self.request {
            Request::Resource(r) => &r.namespace,
            Request::NonResource(_) => "",
        }
    }

    /// Parse and validate an authorization.k8s.io/v1 `SubjectAccessReview` `spec`
    /// (`user`, `groups`, `uid`, `extra`, `resourceAttributes`, `nonResourceAttributes`).
    ///
    /// Wrong JSON types give [`AuthError::BadRequest`] with Go's decoder wording; semantic
    /// problems give [`AuthError::Invalid`] with the upstream `ValidateSubjectAccessReviewSpec`
    /// messages (exactly one of the attribute kinds; at least one of user or group).
    /// `fieldSelector`/`labelSelector` are accepted and ignored (RBAC does not use them).
    pub fn from_sar_spec(spec: &Value) -> Result<Attributes, AuthError> {
        let parsed = ParsedSpec::parse(spec, "SubjectAccessReviewSpec", true)?;
        let mut errs = parsed.exclusivity_errors();
        if parsed.user.username.is_empty() && parsed.user.groups.is_empty() {
            errs.push(FieldError::invalid(
                "spec.user",
                go_quote(""),
                "at least one of user or group must be specified",
            ));
        }
        parsed.finish(errs)
    }

    /// Parse and validate a `SelfSubjectAccessReview` `spec`; the user is the requester.
    pub fn from_self_sar_spec(spec: &Value, user: &UserInfo) -> Result<Attributes, AuthError> {
        let mut parsed = ParsedSpec::parse(spec, "SelfSubjectAccessReviewSpec", false)?;
        parsed.user = user.clone();
        let errs = parsed.exclusivity_errors();
        parsed.finish(errs)
    }
}

struct ParsedSpec {
    user: UserInfo,
    resource: Option<ResourceAttributes>,
    non_resource: Option<NonResourceAttributes>,
}

impl ParsedSpec {
    fn parse(spec: &Value, spec_type: &str, with_user: bool) -> Result<Self, AuthError> {
        let empty = Map::new();
        let obj = match spec {
            Value::Null => &empty,
            Value::Object(o) => o,
            other => {
                return Err(type_error(
                    other,
                    "SubjectAccessReview",
                    "spec",
                    &format!("v1.{spec_type}"),
                ));
            }
        };
        let mut user = UserInfo::default();
        if with_user {
            user.username = get_string(obj, "user", spec_type, "spec.user")?;
            user.uid = get_string(obj, "uid", spec_type, "spec.uid")?;
            user.groups = get_string_list(obj, "groups", spec_type, "spec.groups", "[]string")?;
            match obj.get("extra") {
                None | Some(Value::Null) => {}
                Some(Value::Object(extra)) => {
                    for (k, v) in extra {
                        let vals = match v {
                            Value::Null => Vec::new(),
                            Value::Array(items) => items
                                .iter()
                                .map(|i| match i {
                                    Value::String(s) => Ok(s.clone()),
                                    Value::Null => Ok(String::new()),
                                    other => {
                                        Err(type_error(other, spec_type, "spec.extra", "string"))
                                    }
                                })
                                .collect::<Result<Vec<_>, _>>()?,
                            other => {
                                return Err(type_error(
                                    other,
                                    spec_type,
                                    "spec.extra",
                                    "v1.ExtraValue",
                                ));
                            }
                        };
                        user.extra.insert(k.clone(), vals);
                    }
                }
                Some(other) => {
                    return Err(type_error(
                        other,
                        spec_type,
                        "spec.extra",
                        "map[string]v1.ExtraValue",
                    ));
                }
            }
        }
        let resource = match obj.get("resourceAttributes") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ra)) => {
                let p = "spec.resourceAttributes";
                let s = "ResourceAttributes";
                Some(ResourceAttributes {
                    namespace: get_string(ra, "namespace", s, &format!("{p}.namespace"))?,
                    verb: get_string(ra, "verb", s, &format!("{p}.verb"))?,
                    group: get_string(ra, "group", s, &format!("{p}.group"))?,
                    version: get_string(ra, "version", s, &format!("{p}.version"))?,
                    resource: get_string(ra, "resource", s, &format!("{p}.resource"))?,
                    subresource: get_string(ra, "subresource", s, &format!("{p}.subresource"))?,
                    name: get_string(ra, "name", s, &format!("{p}.name"))?,
                })
            }
            Some(other) => {
                return Err(type_error(
                    other,
                    spec_type,
                    "spec.resourceAttributes",
                    "v1.ResourceAttributes",
                ));
            }
        };
        let non_resource = match obj.get("nonResourceAttributes") {
            None | Some(Value::Null) => None,
            Some(Value::Object(na)) => {
                let p = "spec.nonResourceAttributes";
                let s = "NonResourceAttributes";
                Some(NonResourceAttributes {
                    path: get_string(na, "path", s, &format!("{p}.path"))?,
                    verb: get_string(na, "verb", s, &format!("{p}.verb"))?,
                })
            }
            Some(other) => {
                return Err(type_error(
                    other,
                    spec_type,
                    "spec.nonResourceAttributes",
                    "v1.NonResourceAttributes",
                ));
            }
        };
        Ok(ParsedSpec {
            user,
            resource,
            non_resource,
        })
    }

    fn exclusivity_errors(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match (&self.resource, &self.non_resource) {
            (Some(_), Some(nr)) => errs.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                // The apiserver prints the internal struct as JSON (its fields have no JSON tags).
                serde_json::json!({"Path": nr.path, "Verb": nr.verb}).to_string(),
                "cannot be specified in combination with resourceAttributes",
            )),
            (None, None) => errs.push(FieldError::invalid(
                "spec.resourceAttributes",
                "null".to_owned(),
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )),
            _ => {}
        }
        errs
    }

    fn finish(self, errs: Vec<FieldError>) -> Result<Attributes, AuthError> {
        if !errs.is_empty() {
            return Err(AuthError::Invalid(errs));
        }
        let request = match (self.resource, self.non_resource) {
            (Some(r), None) => Request::Resource(r),
            (None, Some(n)) => Request::NonResource(n),
            _ => {
                return Err(AuthError::Internal(
                    "inconsistent access review attributes".to_owned(),
                ));
            }
        };
        Ok(Attributes {
            user: self.user,
            request,
        })
    }
}

/// Go's `json.UnmarshalTypeError` text.
fn type_error(v: &Value, go_struct: &str, path: &str, go_type: &str) -> AuthError {
    AuthError::BadRequest(unmarshal_field_type_error(v, go_struct, path, go_type))
}

fn get_string(
    obj: &Map<String, Value>,
    key: &str,
    go_struct: &str,
    path: &str,
) -> Result<String, AuthError> {
    decode_string(obj, key, go_struct, path).map_err(AuthError::BadRequest)
}

fn get_string_list(
    obj: &Map<String, Value>,
    key: &str,
    go_struct: &str,
    path: &str,
    go_type: &str,
) -> Result<Vec<String>, AuthError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                other => Err(type_error(other, go_struct, path, "string")),
            })
            .collect(),
        Some(other) => Err(type_error(other, go_struct, path, go_type)),
    }
}

/// Read access to the stored RBAC objects (as the API stores them, `serde_json::Value`).
///
/// Implementations should yield bindings in a stable order (e.g. by name) so that the
/// "allowed by" reason is deterministic; upstream uses informer-cache order.
pub trait RbacSource {
    /// All ClusterRoleBindings.
    fn cluster_role_bindings(&self) -> Box<dyn Iterator<Item = &Value> + '_>;
    /// The RoleBindings of one namespace.
    fn role_bindings<'a>(&'a self, namespace: &'a str) -> Box<dyn Iterator<Item = &'a Value> + 'a>;
    /// A ClusterRole by name.
    fn cluster_role(&self, name: &str) -> Option<&Value>;
    /// A Role by namespace and name.
    fn role(&self, namespace: &str, name: &str) -> Option<&Value>;
}

/// A simple in-memory [`RbacSource`]: objects keyed by (namespace,) name, iterated in name order.
#[derive(Debug, Clone, Default)]
pub struct StaticRbac {
    cluster_roles: BTreeMap<String, Value>,
    roles: BTreeMap<(String, String), Value>,
    cluster_role_bindings: BTreeMap<String, Value>,
    role_bindings: BTreeMap<(String, String), Value>,
}

impl StaticRbac {
    /// An empty source.
    pub fn new() -> Self {
        StaticRbac::default()
    }

    /// Build from objects; each is filed by its `kind` (`ClusterRole`, `Role`,
    /// `ClusterRoleBinding`, `RoleBinding`). Objects of other kinds are ignored.
    pub fn from_objects(objects: impl IntoIterator<Item = Value>) -> Self {
        let mut s = StaticRbac::new();
        for o in objects {
            s.insert(o);
        }
        s
    }

    /// Add or replace one object (see [`StaticRbac::from_objects`]); returns whether it was filed.
    pub fn insert(&mut self, object: Value) -> bool {
        let name = str_at(&object, &["metadata", "name"]).to_owned();
        let namespace = str_at(&object, &["metadata", "namespace"]).to_owned();
        match str_at(&object, &["kind"]) {
            "ClusterRole" => {
                self.cluster_roles.insert(name, object);
            }
            "Role" => {
                self.roles.insert((namespace, name), object);
            }
            "ClusterRoleBinding" => {
                self.cluster_role_bindings.insert(name, object);
            }
            "RoleBinding" => {
                self.role_bindings.insert((namespace, name), object);
            }
            _ => return false,
        }
        true
    }
}

impl RbacSource for StaticRbac {
    fn cluster_role_bindings(&self) -> Box<dyn Iterator<Item = &Value> + '_> {
        Box::new(self.cluster_role_bindings.values())
    }

    fn role_bindings<'a>(&'a self, namespace: &'a str) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        Box::new(
            self.role_bindings
                .range((namespace.to_owned(), String::new())..)
                .take_while(move |((ns, _), _)| ns == namespace)
                .map(|(_, v)| v),
        )
    }

    fn cluster_role(&self, name: &str) -> Option<&Value> {
        self.cluster_roles.get(name)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.roles.get(&(namespace.to_owned(), name.to_owned()))
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn str_list<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    match v.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// One `PolicyRule`, borrowed from a stored role.
#[derive(Debug)]
struct PolicyRule<'a> {
    verbs: Vec<&'a str>,
    api_groups: Vec<&'a str>,
    resources: Vec<&'a str>,
    resource_names: Vec<&'a str>,
    non_resource_urls: Vec<&'a str>,
}

impl<'a> PolicyRule<'a> {
    fn parse(v: &'a Value) -> Self {
        PolicyRule {
            verbs: str_list(v, "verbs"),
            api_groups: str_list(v, "apiGroups"),
            resources: str_list(v, "resources"),
            resource_names: str_list(v, "resourceNames"),
            non_resource_urls: str_list(v, "nonResourceURLs"),
        }
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| *v == "*" || *v == verb)
    }

    fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| *g == "*" || *g == group)
    }

    /// `ResourceMatches`: `*`, exact `resource[/subresource]`, or `*/subresource`.
    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            *r == "*"
                || *r == combined
                || (!subresource.is_empty()
                    && r.strip_prefix("*/").is_some_and(|s| s == subresource))
        })
    }

    fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.contains(&name)
    }

    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            *u == "*"
                || *u == path
                || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
        })
    }

    /// `RuleAllows`.
    fn allows(&self, request: &Request) -> bool {
        match request {
            Request::Resource(r) => {
                let combined;
                let combined_ref = if r.subresource.is_empty() {
                    r.resource.as_str()
                } else {
                    combined = format!("{}/{}", r.resource, r.subresource);
                    combined.as_str()
                };
                self.verb_matches(&r.verb)
                    && self.api_group_matches(&r.group)
                    && self.resource_matches(combined_ref, &r.subresource)
                    && self.resource_name_matches(&r.name)
            }
            Request::NonResource(n) => {
                self.verb_matches(&n.verb) && self.non_resource_url_matches(&n.path)
            }
        }
    }
}

/// The binding (and the subject in it) that granted a rule.
struct RuleSource<'a> {
    cluster: bool,
    binding: &'a Value,
    subject: &'a Value,
}

impl RuleSource<'_> {
    fn describe(&self) -> String {
        let name = str_at(self.binding, &["metadata", "name"]);
        let ns = str_at(self.binding, &["metadata", "namespace"]);
        let ref_kind = str_at(self.binding, &["roleRef", "kind"]);
        let ref_name = str_at(self.binding, &["roleRef", "name"]);
        let mut out = String::new();
        if self.cluster {
            let _ = write!(out, "ClusterRoleBinding {}", go_quote(name));
        } else {
            let _ = write!(out, "RoleBinding {}", go_quote(&format!("{name}/{ns}")));
        }
        let _ = write!(
            out,
            " of {ref_kind} {} to {}",
            go_quote(ref_name),
            describe_subject(self.subject, if self.cluster { "" } else { ns })
        );
        out
    }
}

fn describe_subject(s: &Value, binding_namespace: &str) -> String {
    let kind = str_at(s, &["kind"]);
    let name = str_at(s, &["name"]);
    if kind == "ServiceAccount" {
        let ns = match str_at(s, &["namespace"]) {
            "" => binding_namespace,
            n => n,
        };
        format!("{kind} {}", go_quote(&format!("{name}/{ns}")))
    } else {
        format!("{kind} {}", go_quote(name))
    }
}

/// `appliesToUser`.
fn subject_applies(user: &UserInfo, subject: &Value, namespace: &str) -> bool {
    let name = str_at(subject, &["name"]);
    match str_at(subject, &["kind"]) {
        "User" => user.username == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let sa_ns = match str_at(subject, &["namespace"]) {
                "" => namespace,
                n => n,
            };
            !sa_ns.is_empty() && matches_sa_username(sa_ns, name, &user.username)
        }
        _ => false,
    }
}

/// `serviceaccount.MatchesUsername`.
fn matches_sa_username(namespace: &str, name: &str, username: &str) -> bool {
    username
        .strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == name)
}

fn first_applying_subject<'a>(
    user: &UserInfo,
    binding: &'a Value,
    namespace: &str,
) -> Option<&'a Value> {
    match binding.get("subjects") {
        Some(Value::Array(subjects)) => subjects
            .iter()
            .find(|s| subject_applies(user, s, namespace)),
        _ => None,
    }
}

/// `GetRoleReferenceRules`: the rules of the role a binding points at.
fn role_ref_rules<'a>(
    rbac: &'a dyn RbacSource,
    binding: &Value,
    binding_namespace: &str,
) -> Result<Vec<PolicyRule<'a>>, String> {
    let kind = str_at(binding, &["roleRef", "kind"]);
    let name = str_at(binding, &["roleRef", "name"]);
    let role = match kind {
        "Role" => {
            let found = if binding_namespace.is_empty() {
                None
            } else {
                rbac.role(binding_namespace, name)
            };
            found.ok_or_else(|| {
                format!(
                    "role.rbac.authorization.k8s.io {} not found",
                    go_quote(name)
                )
            })?
        }
        "ClusterRole" => rbac.cluster_role(name).ok_or_else(|| {
            format!(
                "clusterrole.rbac.authorization.k8s.io {} not found",
                go_quote(name)
            )
        })?,
        other => {
            return Err(format!(
                "unsupported role reference kind: {}",
                go_quote(other)
            ));
        }
    };
    Ok(match role.get("rules") {
        Some(Value::Array(rules)) => rules.iter().map(PolicyRule::parse).collect(),
        _ => Vec::new(),
    })
}

enum Visit<'s, 'a> {
    Rule(&'s RuleSource<'a>, &'s PolicyRule<'a>),
    Error(String),
}

/// `VisitRulesFor`: call `visit` for every rule that applies to `user` in `namespace` (and every
/// evaluation error); stop when `visit` returns `false`.
fn visit_rules_for<'a>(
    user: &UserInfo,
    namespace: &'a str,
    rbac: &'a dyn RbacSource,
    mut visit: impl FnMut(Visit<'_, 'a>) -> bool,
) {
    for binding in rbac.cluster_role_bindings() {
        let Some(subject) = first_applying_subject(user, binding, "") else {
            continue;
        };
        match role_ref_rules(rbac, binding, "") {
            Err(e) => {
                if !visit(Visit::Error(e)) {
                    return;
                }
            }
            Ok(rules) => {
                let source = RuleSource {
                    cluster: true,
                    binding,
                    subject,
                };
                for rule in &rules {
                    if !visit(Visit::Rule(&source, rule)) {
                        return;
                    }
                }
            }
        }
    }
    if namespace.is_empty() {
        return;
    }
    for binding in rbac.role_bindings(namespace) {
        let Some(subject) = first_applying_subject(user, binding, namespace) else {
            continue;
        };
        match role_ref_rules(rbac, binding, namespace) {
            Err(e) => {
                if !visit(Visit::Error(e)) {
                    return;
                }
            }
            Ok(rules) => {
                let source = RuleSource {
                    cluster: false,
                    binding,
                    subject,
                };
                for rule in &rules {
                    if !visit(Visit::Rule(&source, rule)) {
                        return;
                    }
                }
            }
        }
    }
}

/// An authorization decision (authorization.k8s.io/v1 `SubjectAccessReviewStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The request is allowed.
    pub allowed: bool,
    /// The request is explicitly denied (never set by RBAC, which only allows or has no opinion).
    pub denied: bool,
    /// Why: `RBAC: allowed by ...` on allow; empty (or `RBAC: <evaluation errors>`) on deny;
    /// empty for `system:masters`, as upstream's privileged-group authorizer gives none.
    pub reason: String,
    /// `evaluationError` (RBAC reports its errors in `reason`, so this stays empty).
    pub evaluation_error: String,
}

impl Decision {
    /// The `status` of a SubjectAccessReview / SelfSubjectAccessReview /
    /// LocalSubjectAccessReview (`allowed` always present, others omitted when empty/false).
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("allowed".to_owned(), Value::Bool(self.allowed));
        if self.denied {
            m.insert("denied".to_owned(), Value::Bool(true));
        }
        if !self.evaluation_error.is_empty() {
            m.insert(
                "evaluationError".to_owned(),
                Value::String(self.evaluation_error.clone()),
            );
        }
        if !self.reason.is_empty() {
            m.insert("reason".to_owned(), Value::String(self.reason.clone()));
        }
        Value::Object(m)
    }
}

/// Authorize a request: `system:masters` first, then RBAC (see the module docs).
pub fn authorize(attrs: &Attributes, rbac: &dyn RbacSource) -> Decision {
    if attrs.user.is_privileged() {
        return Decision {
            allowed: true,
            ..Decision::default()
        };
    }
    let mut allowed_by: Option<String> = None;
    let mut errors: Vec<String> = Vec::new();
    visit_rules_for(&attrs.user, attrs.namespace(), rbac, |v| match v {
        Visit::Rule(source, rule) => {
            if rule.allows(&attrs.request) {
                allowed_by = Some(format!("RBAC: allowed by {}", source.describe()));
                false
            } else {
                true
            }
        }
        Visit::Error(e) => {
            errors.push(e);
            true
        }
    });
    match allowed_by {
        Some(reason) => Decision {
            allowed: true,
            reason,
            ..Decision::default()
        },
        None => Decision {
            reason: if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate_messages(errors))
            },
            ..Decision::default()
        },
    }
}

/// A resource rule as reported by SelfSubjectRulesReview (`ResourceRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRule {
    /// `verbs` (always present).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// `apiGroups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// `resources`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// `resourceNames`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
}

/// A non-resource rule as reported by SelfSubjectRulesReview (`NonResourceRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonResourceRule {
    /// `verbs` (always present).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// `nonResourceURLs`.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

/// The result of resolving all rules of a user in a namespace
/// (authorization.k8s.io/v1 `SubjectRulesReviewStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesReview {
    /// Resource rules, `system:masters` wildcard first, then bindings in visit order.
    pub resource_rules: Vec<ResourceRule>,
    /// Non-resource rules.
    pub non_resource_rules: Vec<NonResourceRule>,
    /// Whether the list is incomplete (never for RBAC).
    pub incomplete: bool,
    /// Aggregated evaluation errors (missing roles), empty if none.
    pub evaluation_error: String,
}

impl RulesReview {
    /// The `status` of a SelfSubjectRulesReview.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "resourceRules": self.resource_rules,
            "nonResourceRules": self.non_resource_rules,
            "incomplete": self.incomplete,
        });
        if !self.evaluation_error.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.insert(
                "evaluationError".to_owned(),
                Value::String(self.evaluation_error.clone()),
            );
        }
        status
    }
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Resolve every rule that applies to `user` in `namespace` (SelfSubjectRulesReview, i.e.
/// `kubectl auth can-i --list`). A rule with resources becomes a [`ResourceRule`], one with
/// nonResourceURLs a [`NonResourceRule`] (a rule with both yields one of each), as upstream.
pub fn rules_review(user: &UserInfo, namespace: &str, rbac: &dyn RbacSource) -> RulesReview {
    let mut out = RulesReview::default();
    if user.is_privileged() {
        out.resource_rules.push(ResourceRule {
            verbs: vec!["*".to_owned()],
            api_groups: vec!["*".to_owned()],
            resources: vec!["*".to_owned()],
            resource_names: Vec::new(),
        });
        out.non_resource_rules.push(NonResourceRule {
            verbs: vec!["*".to_owned()],
            non_resource_urls: vec!["*".to_owned()],
        });
    }
    let mut errors = Vec::new();
    visit_rules_for(user, namespace, rbac, |v| {
        match v {
            Visit::Rule(_, rule) => {
                if !rule.resources.is_empty() {
                    out.resource_rules.push(ResourceRule {
                        verbs: owned(&rule.verbs),
                        api_groups: owned(&rule.api_groups),
                        resources: owned(&rule.resources),
                        resource_names: owned(&rule.resource_names),
                    });
                }
                if !rule.non_resource_urls.is_empty() {
                    out.non_resource_rules.push(NonResourceRule {
                        verbs: owned(&rule.verbs),
                        non_resource_urls: owned(&rule.non_resource_urls),
                    });
                }
            }
            Visit::Error(e) => errors.push(e),
        }
        true
    });
    out.evaluation_error = aggregate_messages(errors);
    out
}

/// [`rules_review`] without the status flags.
pub fn rules_for(
    user: &UserInfo,
    namespace: &str,
    rbac: &dyn RbacSource,
) -> (Vec<ResourceRule>, Vec<NonResourceRule>) {
    let r = rules_review(user, namespace, rbac);
    (r.resource_rules, r.non_resource_rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sa_username_matching() {
        assert!(matches_sa_username(
            "ns",
            "sa",
            "system:serviceaccount:ns:sa"
        ));
        assert!(!matches_sa_username(
            "ns",
            "sa",
            "system:serviceaccount:ns:sa2"
        ));
        assert!(!matches_sa_username(
            "ns",
            "sa",
            "system:serviceaccount:nsx:sa"
        ));
        assert!(!matches_sa_username("ns", "sa", "system:serviceaccount:ns"));
        assert!(!matches_sa_username("ns", "sa", "ns:sa"));
        assert_eq!(
            service_account_username("a", "b"),
            "system:serviceaccount:a:b"
        );
    }

    #[test]
    fn resource_matching_table() {
        let rule_v = json!({"resources": ["pods", "*/scale", "deployments/status", "pods/*"]});
        let rule = PolicyRule::parse(&rule_v);
        let cases = [
            ("pods", "", true),
            ("pods/log", "log", false),
            ("deployments/scale", "scale", true),
            ("deployments/status", "status", true),
            ("deployments", "", false),
            ("replicasets/status", "status", false),
            // upstream: `pods/*` is not a wildcard, only the literal subresource `*`.
            ("pods/*", "*", true),
            ("services/scale", "scale", true),
        ];
        for (combined, sub, want) in cases {
            assert_eq!(rule.resource_matches(combined, sub), want, "{combined}");
        }
    }

    #[test]
    fn non_resource_url_table() {
        let rule_v = json!({"nonResourceURLs": ["/healthz", "/apis/*", "/exact"]});
        let rule = PolicyRule::parse(&rule_v);
        for (path, want) in [
            ("/healthz", true),
            ("/healthz/ping", false),
            ("/apis", false),
            ("/apis/", true),
            ("/apis/apps/v1", true),
            ("/exact", true),
            ("/exactly", false),
        ] {
            assert_eq!(rule.non_resource_url_matches(path), want, "{path}");
        }
    }

    #[test]
    fn describe_subjects() {
        assert_eq!(
            describe_subject(&json!({"kind": "User", "name": "a"}), "x"),
            r#"User "a""#
        );
        assert_eq!(
            describe_subject(&json!({"kind": "ServiceAccount", "name": "sa"}), "ns"),
            r#"ServiceAccount "sa/ns""#
        );
        assert_eq!(
            describe_subject(
                &json!({"kind": "ServiceAccount", "name": "sa", "namespace": "o"}),
                "ns"
            ),
            r#"ServiceAccount "sa/o""#
        );
    }
}
