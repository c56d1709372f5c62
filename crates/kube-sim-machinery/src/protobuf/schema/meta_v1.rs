//! Message tables of `k8s.io/apimachinery` meta/v1 types.

use super::*;

// ---------------------------------------------------------------------------------------------
// meta/v1
// ---------------------------------------------------------------------------------------------

pub(crate) static OBJECT_META: Message = msg(
    "ObjectMeta",
    &[
        f(1, "name", Str, Opt),
        f(2, "generateName", Str, Opt),
        f(3, "namespace", Str, Opt),
        f(4, "selfLink", Str, Opt),
        f(5, "uid", Str, Opt),
        f(6, "resourceVersion", Str, Opt),
        f(7, "generation", I64, Opt),
        f(8, "creationTimestamp", Time, Opt),
        f(9, "deletionTimestamp", Time, Ptr),
        f(10, "deletionGracePeriodSeconds", I64, Ptr),
        f(11, "labels", Str, Map),
        f(12, "annotations", Str, Map),
        f(13, "ownerReferences", Msg(&OWNER_REFERENCE), Rep),
        f(14, "finalizers", Str, Rep),
        f(17, "managedFields", Msg(&MANAGED_FIELDS_ENTRY), Rep),
    ],
);

pub(super) static OWNER_REFERENCE: Message = msg(
    "OwnerReference",
    &[
        f(5, "apiVersion", Str, Req),
        f(1, "kind", Str, Req),
        f(3, "name", Str, Req),
        f(4, "uid", Str, Req),
        f(6, "controller", Bool, Ptr),
        f(7, "blockOwnerDeletion", Bool, Ptr),
    ],
);

pub(super) static MANAGED_FIELDS_ENTRY: Message = msg(
    "ManagedFieldsEntry",
    &[
        f(1, "manager", Str, Opt),
        f(2, "operation", Str, Opt),
        f(3, "apiVersion", Str, Opt),
        f(4, "time", Time, Ptr),
        f(6, "fieldsType", Str, Opt),
        f(7, "fieldsV1", FieldsV1, Ptr),
        f(8, "subresource", Str, Opt),
    ],
);

pub(super) static LABEL_SELECTOR: Message = msg(
    "LabelSelector",
    &[
        f(1, "matchLabels", Str, Map),
        f(2, "matchExpressions", Msg(&LABEL_SELECTOR_REQUIREMENT), Rep),
    ],
);

pub(super) static LABEL_SELECTOR_REQUIREMENT: Message = msg(
    "LabelSelectorRequirement",
    &[
        f(1, "key", Str, Req),
        f(2, "operator", Str, Req),
        f(3, "values", Str, Rep),
    ],
);

pub(super) static FIELD_SELECTOR_REQUIREMENT: Message = msg(
    "FieldSelectorRequirement",
    &[
        f(1, "key", Str, Req),
        f(2, "operator", Str, Req),
        f(3, "values", Str, Rep),
    ],
);

pub(super) static CONDITION: Message = msg(
    "Condition",
    &[
        f(1, "type", Str, Req),
        f(2, "status", Str, Req),
        f(3, "observedGeneration", I64, Opt),
        f(4, "lastTransitionTime", Time, Req),
        f(5, "reason", Str, Req),
        f(6, "message", Str, Req),
    ],
);

pub(crate) static DELETE_OPTIONS: Message = msg(
    "DeleteOptions",
    &[
        f(1, "gracePeriodSeconds", I64, Ptr),
        f(2, "preconditions", Msg(&PRECONDITIONS), Ptr),
        f(3, "orphanDependents", Bool, Ptr),
        f(4, "propagationPolicy", Str, Ptr),
        f(5, "dryRun", Str, Rep),
        f(
            6,
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            Bool,
            Ptr,
        ),
    ],
);

pub(super) static PRECONDITIONS: Message = msg(
    "Preconditions",
    &[f(1, "uid", Str, Ptr), f(2, "resourceVersion", Str, Ptr)],
);
