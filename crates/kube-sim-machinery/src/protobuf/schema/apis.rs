//! Message tables of the non-core API groups: rbac.authorization.k8s.io/v1,
//! authorization.k8s.io/v1, authentication.k8s.io/v1, coordination.k8s.io/v1, apps/v1,
//! policy/v1.

use super::*;

// ---------------------------------------------------------------------------------------------
// rbac.authorization.k8s.io/v1
// ---------------------------------------------------------------------------------------------

pub(super) static ROLE: Message = msg(
    "Role",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "rules", Msg(&POLICY_RULE), RepReq),
    ],
);

pub(super) static CLUSTER_ROLE: Message = msg(
    "ClusterRole",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "rules", Msg(&POLICY_RULE), RepReq),
        f(3, "aggregationRule", Msg(&AGGREGATION_RULE), Ptr),
    ],
);

pub(super) static POLICY_RULE: Message = msg(
    "PolicyRule",
    &[
        f(1, "verbs", Str, RepReq),
        f(2, "apiGroups", Str, Rep),
        f(3, "resources", Str, Rep),
        f(4, "resourceNames", Str, Rep),
        f(5, "nonResourceURLs", Str, Rep),
    ],
);

pub(super) static AGGREGATION_RULE: Message = msg(
    "AggregationRule",
    &[f(1, "clusterRoleSelectors", Msg(&LABEL_SELECTOR), Rep)],
);

/// `RoleBinding` and `ClusterRoleBinding`.
pub(super) static ROLE_BINDING: Message = msg(
    "RoleBinding",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "subjects", Msg(&SUBJECT), Rep),
        f(3, "roleRef", Msg(&ROLE_REF), Req),
    ],
);

pub(super) static SUBJECT: Message = msg(
    "Subject",
    &[
        f(1, "kind", Str, Req),
        f(2, "apiGroup", Str, Opt),
        f(3, "name", Str, Req),
        f(4, "namespace", Str, Opt),
    ],
);

pub(super) static ROLE_REF: Message = msg(
    "RoleRef",
    &[
        f(1, "apiGroup", Str, Req),
        f(2, "kind", Str, Req),
        f(3, "name", Str, Req),
    ],
);

// ---------------------------------------------------------------------------------------------
// authorization.k8s.io/v1
// ---------------------------------------------------------------------------------------------

/// `SubjectAccessReview` and `LocalSubjectAccessReview`.
pub(super) static SUBJECT_ACCESS_REVIEW: Message = msg(
    "SubjectAccessReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SUBJECT_ACCESS_REVIEW_SPEC), Req),
        f(3, "status", Msg(&SUBJECT_ACCESS_REVIEW_STATUS), Opt),
    ],
);

pub(super) static SELF_SUBJECT_ACCESS_REVIEW: Message = msg(
    "SelfSubjectAccessReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC), Req),
        f(3, "status", Msg(&SUBJECT_ACCESS_REVIEW_STATUS), Opt),
    ],
);

pub(super) static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = msg(
    "SelfSubjectAccessReviewSpec",
    &[
        f(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES), Ptr),
        f(
            2,
            "nonResourceAttributes",
            Msg(&NON_RESOURCE_ATTRIBUTES),
            Ptr,
        ),
    ],
);

pub(super) static SUBJECT_ACCESS_REVIEW_SPEC: Message = msg(
    "SubjectAccessReviewSpec",
    &[
        f(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES), Ptr),
        f(
            2,
            "nonResourceAttributes",
            Msg(&NON_RESOURCE_ATTRIBUTES),
            Ptr,
        ),
        f(3, "user", Str, Opt),
        f(4, "groups", Str, Rep),
        f(5, "extra", StrList, Map),
        f(6, "uid", Str, Opt),
    ],
);

pub(super) static RESOURCE_ATTRIBUTES: Message = msg(
    "ResourceAttributes",
    &[
        f(1, "namespace", Str, Opt),
        f(2, "verb", Str, Opt),
        f(3, "group", Str, Opt),
        f(4, "version", Str, Opt),
        f(5, "resource", Str, Opt),
        f(6, "subresource", Str, Opt),
        f(7, "name", Str, Opt),
        f(8, "fieldSelector", Msg(&FIELD_SELECTOR_ATTRIBUTES), Ptr),
        f(9, "labelSelector", Msg(&LABEL_SELECTOR_ATTRIBUTES), Ptr),
    ],
);

pub(super) static FIELD_SELECTOR_ATTRIBUTES: Message = msg(
    "FieldSelectorAttributes",
    &[
        f(1, "rawSelector", Str, Opt),
        f(2, "requirements", Msg(&FIELD_SELECTOR_REQUIREMENT), Rep),
    ],
);

pub(super) static LABEL_SELECTOR_ATTRIBUTES: Message = msg(
    "LabelSelectorAttributes",
    &[
        f(1, "rawSelector", Str, Opt),
        f(2, "requirements", Msg(&LABEL_SELECTOR_REQUIREMENT), Rep),
    ],
);

pub(super) static NON_RESOURCE_ATTRIBUTES: Message = msg(
    "NonResourceAttributes",
    &[f(1, "path", Str, Opt), f(2, "verb", Str, Opt)],
);

pub(super) static SUBJECT_ACCESS_REVIEW_STATUS: Message = msg(
    "SubjectAccessReviewStatus",
    &[
        f(1, "allowed", Bool, Req),
        f(4, "denied", Bool, Opt),
        f(2, "reason", Str, Opt),
        f(3, "evaluationError", Str, Opt),
    ],
);

pub(super) static SELF_SUBJECT_RULES_REVIEW: Message = msg(
    "SelfSubjectRulesReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC), Req),
        f(3, "status", Msg(&SUBJECT_RULES_REVIEW_STATUS), Opt),
    ],
);

pub(super) static SELF_SUBJECT_RULES_REVIEW_SPEC: Message =
    msg("SelfSubjectRulesReviewSpec", &[f(1, "namespace", Str, Opt)]);

pub(super) static SUBJECT_RULES_REVIEW_STATUS: Message = msg(
    "SubjectRulesReviewStatus",
    &[
        f(1, "resourceRules", Msg(&RESOURCE_RULE), RepReq),
        f(2, "nonResourceRules", Msg(&NON_RESOURCE_RULE), RepReq),
        f(3, "incomplete", Bool, Req),
        f(4, "evaluationError", Str, Opt),
    ],
);

pub(super) static RESOURCE_RULE: Message = msg(
    "ResourceRule",
    &[
        f(1, "verbs", Str, RepReq),
        f(2, "apiGroups", Str, Rep),
        f(3, "resources", Str, Rep),
        f(4, "resourceNames", Str, Rep),
    ],
);

pub(super) static NON_RESOURCE_RULE: Message = msg(
    "NonResourceRule",
    &[
        f(1, "verbs", Str, RepReq),
        f(2, "nonResourceURLs", Str, Rep),
    ],
);

// ---------------------------------------------------------------------------------------------
// authentication.k8s.io/v1
// ---------------------------------------------------------------------------------------------

pub(super) static TOKEN_REQUEST: Message = msg(
    "TokenRequest",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&TOKEN_REQUEST_SPEC), Req),
        f(3, "status", Msg(&TOKEN_REQUEST_STATUS), Opt),
    ],
);

pub(super) static TOKEN_REQUEST_SPEC: Message = msg(
    "TokenRequestSpec",
    &[
        f(1, "audiences", Str, RepReq),
        f(4, "expirationSeconds", I64, Ptr),
        f(3, "boundObjectRef", Msg(&BOUND_OBJECT_REFERENCE), Ptr),
    ],
);

pub(super) static BOUND_OBJECT_REFERENCE: Message = msg(
    "BoundObjectReference",
    &[
        f(1, "kind", Str, Opt),
        f(2, "apiVersion", Str, Opt),
        f(3, "name", Str, Opt),
        // The proto field is named `uID`; the JSON name is `uid`.
        f(4, "uid", Str, Opt),
    ],
);

pub(super) static TOKEN_REQUEST_STATUS: Message = msg(
    "TokenRequestStatus",
    &[
        f(1, "token", Str, Req),
        f(2, "expirationTimestamp", Time, Req),
    ],
);

pub(super) static TOKEN_REVIEW: Message = msg(
    "TokenReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&TOKEN_REVIEW_SPEC), Req),
        f(3, "status", Msg(&TOKEN_REVIEW_STATUS), Opt),
    ],
);

pub(super) static TOKEN_REVIEW_SPEC: Message = msg(
    "TokenReviewSpec",
    &[f(1, "token", Str, Opt), f(2, "audiences", Str, Rep)],
);

pub(super) static TOKEN_REVIEW_STATUS: Message = msg(
    "TokenReviewStatus",
    &[
        f(1, "authenticated", Bool, Opt),
        f(2, "user", Msg(&USER_INFO), Opt),
        f(4, "audiences", Str, Rep),
        f(3, "error", Str, Opt),
    ],
);

pub(super) static USER_INFO: Message = msg(
    "UserInfo",
    &[
        f(1, "username", Str, Opt),
        f(2, "uid", Str, Opt),
        f(3, "groups", Str, Rep),
        f(4, "extra", StrList, Map),
    ],
);

pub(super) static SELF_SUBJECT_REVIEW: Message = msg(
    "SelfSubjectReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "status", Msg(&SELF_SUBJECT_REVIEW_STATUS), Opt),
    ],
);

pub(super) static SELF_SUBJECT_REVIEW_STATUS: Message = msg(
    "SelfSubjectReviewStatus",
    &[f(1, "userInfo", Msg(&USER_INFO), Opt)],
);

// ---------------------------------------------------------------------------------------------
// coordination.k8s.io/v1, apps/v1, policy/v1
// ---------------------------------------------------------------------------------------------

pub(super) static LEASE: Message = msg(
    "Lease",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&LEASE_SPEC), Opt),
    ],
);

pub(super) static LEASE_SPEC: Message = msg(
    "LeaseSpec",
    &[
        f(1, "holderIdentity", Str, Ptr),
        f(2, "leaseDurationSeconds", I32, Ptr),
        f(3, "acquireTime", MicroTime, Ptr),
        f(4, "renewTime", MicroTime, Ptr),
        f(5, "leaseTransitions", I32, Ptr),
        f(6, "strategy", Str, Ptr),
        f(7, "preferredHolder", Str, Ptr),
    ],
);

pub(super) static DEPLOYMENT: Message = msg(
    "Deployment",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&DEPLOYMENT_SPEC), Opt),
        f(3, "status", Msg(&DEPLOYMENT_STATUS), Opt),
    ],
);

pub(super) static DEPLOYMENT_SPEC: Message = msg(
    "DeploymentSpec",
    &[
        f(1, "replicas", I32, Ptr),
        f(2, "selector", Msg(&LABEL_SELECTOR), Ptr),
        f(3, "template", Msg(&POD_TEMPLATE_SPEC), Req),
        f(4, "strategy", Msg(&DEPLOYMENT_STRATEGY), Opt),
        f(5, "minReadySeconds", I32, Opt),
        f(6, "revisionHistoryLimit", I32, Ptr),
        f(7, "paused", Bool, Opt),
        f(9, "progressDeadlineSeconds", I32, Ptr),
    ],
);

pub(super) static DEPLOYMENT_STRATEGY: Message = msg(
    "DeploymentStrategy",
    &[
        f(1, "type", Str, Opt),
        f(2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT), Ptr),
    ],
);

pub(super) static ROLLING_UPDATE_DEPLOYMENT: Message = msg(
    "RollingUpdateDeployment",
    &[
        f(1, "maxUnavailable", IntOrString, Ptr),
        f(2, "maxSurge", IntOrString, Ptr),
    ],
);

pub(super) static DEPLOYMENT_STATUS: Message = msg(
    "DeploymentStatus",
    &[
        f(1, "observedGeneration", I64, Opt),
        f(2, "replicas", I32, Opt),
        f(3, "updatedReplicas", I32, Opt),
        f(7, "readyReplicas", I32, Opt),
        f(4, "availableReplicas", I32, Opt),
        f(5, "unavailableReplicas", I32, Opt),
        f(6, "conditions", Msg(&DEPLOYMENT_CONDITION), Rep),
        f(8, "collisionCount", I32, Ptr),
    ],
);

pub(super) static DEPLOYMENT_CONDITION: Message = msg(
    "DeploymentCondition",
    &[
        f(1, "type", Str, Req),
        f(2, "status", Str, Req),
        f(6, "lastUpdateTime", Time, Opt),
        f(7, "lastTransitionTime", Time, Opt),
        f(4, "reason", Str, Opt),
        f(5, "message", Str, Opt),
    ],
);

pub(super) static EVICTION: Message = msg(
    "Eviction",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "deleteOptions", Msg(&DELETE_OPTIONS), Ptr),
    ],
);
