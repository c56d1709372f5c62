//! The message tables: field numbers from the upstream `generated.proto` files of `k8s.io/api`
//! (core/v1, rbac/v1, authorization/v1, authentication/v1, coordination/v1, apps/v1, policy/v1)
//! and `k8s.io/apimachinery` (meta/v1, runtime, util/intstr, api/resource) as of Kubernetes
//! 1.32, and the JSON names and presence rules of the matching Go struct fields (`types.go`).
//!
//! One line per field: `f(number, json name, type, shape)`. Shapes: `Opt` value with
//! `omitempty`, `Req` value without it, `Ptr` pointer, `Rep`/`RepReq` slices with/without
//! `omitempty`, `Map` maps, `Inline` embedded structs (see the parent module's docs).

use super::Shape::{Inline, Map, Opt, Ptr, Rep, RepReq, Req};
use super::Ty::{
    Bool, Bytes, FieldsV1, I32, I64, IntOrString, MicroTime, Msg, Quantity, Str, StrList, Time,
};
use super::{Field, Message, Shape, Ty};

mod apis;
mod core_v1;
mod meta_v1;
mod pod;

use apis::*;
use core_v1::*;
use meta_v1::*;
use pod::*;

const fn f(num: u32, json: &'static str, ty: Ty, shape: Shape) -> Field {
    Field {
        num,
        json,
        ty,
        shape,
    }
}

const fn msg(name: &'static str, fields: &'static [Field]) -> Message {
    Message { name, fields }
}

/// A kind with a message table.
pub(crate) struct Kind {
    pub(crate) api_version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) message: &'static Message,
}

const fn kind(api_version: &'static str, kind: &'static str, message: &'static Message) -> Kind {
    Kind {
        api_version,
        kind,
        message,
    }
}

/// Every supported (apiVersion, kind). `DeleteOptions` is accepted under any group version, as
/// upstream registers it in every one; it is listed once, as `meta.k8s.io/v1`.
pub(crate) static KINDS: &[Kind] = &[
    kind("v1", "ConfigMap", &CONFIG_MAP),
    kind("v1", "Secret", &SECRET),
    kind("v1", "ServiceAccount", &SERVICE_ACCOUNT),
    kind("v1", "Namespace", &NAMESPACE),
    kind("v1", "Pod", &POD),
    kind("v1", "Service", &SERVICE),
    kind("v1", "Node", &NODE),
    kind("v1", "Event", &EVENT),
    kind("rbac.authorization.k8s.io/v1", "Role", &ROLE),
    kind("rbac.authorization.k8s.io/v1", "ClusterRole", &CLUSTER_ROLE),
    kind("rbac.authorization.k8s.io/v1", "RoleBinding", &ROLE_BINDING),
    kind(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &ROLE_BINDING,
    ),
    kind(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &SELF_SUBJECT_ACCESS_REVIEW,
    ),
    kind(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &SUBJECT_ACCESS_REVIEW,
    ),
    kind(
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        &SUBJECT_ACCESS_REVIEW,
    ),
    kind(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &SELF_SUBJECT_RULES_REVIEW,
    ),
    kind("authentication.k8s.io/v1", "TokenRequest", &TOKEN_REQUEST),
    kind("authentication.k8s.io/v1", "TokenReview", &TOKEN_REVIEW),
    kind(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &SELF_SUBJECT_REVIEW,
    ),
    kind("coordination.k8s.io/v1", "Lease", &LEASE),
    kind("apps/v1", "Deployment", &DEPLOYMENT),
    kind("policy/v1", "Eviction", &EVICTION),
    kind("meta.k8s.io/v1", "DeleteOptions", &DELETE_OPTIONS),
];

/// The message table for (`api_version`, `kind`).
pub(crate) fn lookup(api_version: &str, kind: &str) -> Option<&'static Message> {
    if kind == "DeleteOptions" && !api_version.is_empty() {
        return Some(&DELETE_OPTIONS);
    }
    KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
        .map(|k| k.message)
}

/// The (`apiVersion`, `kind`) pairs [`decode_object`](super::decode_object) understands
/// (`DeleteOptions` is also accepted under every other group version).
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|k| (k.api_version, k.kind))
}
