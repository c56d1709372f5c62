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

static OWNER_REFERENCE: Message = msg(
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

static MANAGED_FIELDS_ENTRY: Message = msg(
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

static LABEL_SELECTOR: Message = msg(
    "LabelSelector",
    &[
        f(1, "matchLabels", Str, Map),
        f(2, "matchExpressions", Msg(&LABEL_SELECTOR_REQUIREMENT), Rep),
    ],
);

static LABEL_SELECTOR_REQUIREMENT: Message = msg(
    "LabelSelectorRequirement",
    &[
        f(1, "key", Str, Req),
        f(2, "operator", Str, Req),
        f(3, "values", Str, Rep),
    ],
);

static FIELD_SELECTOR_REQUIREMENT: Message = msg(
    "FieldSelectorRequirement",
    &[
        f(1, "key", Str, Req),
        f(2, "operator", Str, Req),
        f(3, "values", Str, Rep),
    ],
);

static CONDITION: Message = msg(
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

static PRECONDITIONS: Message = msg(
    "Preconditions",
    &[f(1, "uid", Str, Ptr), f(2, "resourceVersion", Str, Ptr)],
);

// ---------------------------------------------------------------------------------------------
// core/v1: simple kinds
// ---------------------------------------------------------------------------------------------

static CONFIG_MAP: Message = msg(
    "ConfigMap",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(4, "immutable", Bool, Ptr),
        f(2, "data", Str, Map),
        f(3, "binaryData", Bytes, Map),
    ],
);

static SECRET: Message = msg(
    "Secret",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(5, "immutable", Bool, Ptr),
        f(2, "data", Bytes, Map),
        f(4, "stringData", Str, Map),
        f(3, "type", Str, Opt),
    ],
);

static SERVICE_ACCOUNT: Message = msg(
    "ServiceAccount",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "secrets", Msg(&OBJECT_REFERENCE), Rep),
        f(3, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE), Rep),
        f(4, "automountServiceAccountToken", Bool, Ptr),
    ],
);

static NAMESPACE: Message = msg(
    "Namespace",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&NAMESPACE_SPEC), Opt),
        f(3, "status", Msg(&NAMESPACE_STATUS), Opt),
    ],
);

static NAMESPACE_SPEC: Message = msg("NamespaceSpec", &[f(1, "finalizers", Str, Rep)]);

static NAMESPACE_STATUS: Message = msg(
    "NamespaceStatus",
    &[
        f(1, "phase", Str, Opt),
        f(2, "conditions", Msg(&NAMESPACE_CONDITION), Rep),
    ],
);

static NAMESPACE_CONDITION: Message = msg(
    "NamespaceCondition",
    &[
        f(1, "type", Str, Req),
        f(2, "status", Str, Req),
        f(4, "lastTransitionTime", Time, Opt),
        f(5, "reason", Str, Opt),
        f(6, "message", Str, Opt),
    ],
);

static OBJECT_REFERENCE: Message = msg(
    "ObjectReference",
    &[
        f(1, "kind", Str, Opt),
        f(2, "namespace", Str, Opt),
        f(3, "name", Str, Opt),
        f(4, "uid", Str, Opt),
        f(5, "apiVersion", Str, Opt),
        f(6, "resourceVersion", Str, Opt),
        f(7, "fieldPath", Str, Opt),
    ],
);

static LOCAL_OBJECT_REFERENCE: Message = msg("LocalObjectReference", &[f(1, "name", Str, Opt)]);

static EVENT: Message = msg(
    "Event",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "involvedObject", Msg(&OBJECT_REFERENCE), Req),
        f(3, "reason", Str, Opt),
        f(4, "message", Str, Opt),
        f(5, "source", Msg(&EVENT_SOURCE), Opt),
        f(6, "firstTimestamp", Time, Opt),
        f(7, "lastTimestamp", Time, Opt),
        f(8, "count", I32, Opt),
        f(9, "type", Str, Opt),
        f(10, "eventTime", MicroTime, Opt),
        f(11, "series", Msg(&EVENT_SERIES), Ptr),
        f(12, "action", Str, Opt),
        f(13, "related", Msg(&OBJECT_REFERENCE), Ptr),
        f(14, "reportingComponent", Str, Req),
        f(15, "reportingInstance", Str, Req),
    ],
);

static EVENT_SOURCE: Message = msg(
    "EventSource",
    &[f(1, "component", Str, Opt), f(2, "host", Str, Opt)],
);

static EVENT_SERIES: Message = msg(
    "EventSeries",
    &[
        f(1, "count", I32, Opt),
        f(2, "lastObservedTime", MicroTime, Opt),
    ],
);

// ---------------------------------------------------------------------------------------------
// core/v1: Pod
// ---------------------------------------------------------------------------------------------

static POD: Message = msg(
    "Pod",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&POD_SPEC), Opt),
        f(3, "status", Msg(&POD_STATUS), Opt),
    ],
);

static POD_TEMPLATE_SPEC: Message = msg(
    "PodTemplateSpec",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&POD_SPEC), Opt),
    ],
);

static POD_SPEC: Message = msg(
    "PodSpec",
    &[
        f(1, "volumes", Msg(&VOLUME), Rep),
        f(20, "initContainers", Msg(&CONTAINER), Rep),
        f(2, "containers", Msg(&CONTAINER), RepReq),
        f(34, "ephemeralContainers", Msg(&EPHEMERAL_CONTAINER), Rep),
        f(3, "restartPolicy", Str, Opt),
        f(4, "terminationGracePeriodSeconds", I64, Ptr),
        f(5, "activeDeadlineSeconds", I64, Ptr),
        f(6, "dnsPolicy", Str, Opt),
        f(7, "nodeSelector", Str, Map),
        f(8, "serviceAccountName", Str, Opt),
        f(9, "serviceAccount", Str, Opt),
        f(21, "automountServiceAccountToken", Bool, Ptr),
        f(10, "nodeName", Str, Opt),
        f(11, "hostNetwork", Bool, Opt),
        f(12, "hostPID", Bool, Opt),
        f(13, "hostIPC", Bool, Opt),
        f(27, "shareProcessNamespace", Bool, Ptr),
        f(14, "securityContext", Msg(&POD_SECURITY_CONTEXT), Ptr),
        f(15, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE), Rep),
        f(16, "hostname", Str, Opt),
        f(17, "subdomain", Str, Opt),
        f(18, "affinity", Msg(&AFFINITY), Ptr),
        f(19, "schedulerName", Str, Opt),
        f(22, "tolerations", Msg(&TOLERATION), Rep),
        f(23, "hostAliases", Msg(&HOST_ALIAS), Rep),
        f(24, "priorityClassName", Str, Opt),
        f(25, "priority", I32, Ptr),
        f(26, "dnsConfig", Msg(&POD_DNS_CONFIG), Ptr),
        f(28, "readinessGates", Msg(&POD_READINESS_GATE), Rep),
        f(29, "runtimeClassName", Str, Ptr),
        f(30, "enableServiceLinks", Bool, Ptr),
        f(31, "preemptionPolicy", Str, Ptr),
        f(32, "overhead", Quantity, Map),
        f(
            33,
            "topologySpreadConstraints",
            Msg(&TOPOLOGY_SPREAD_CONSTRAINT),
            Rep,
        ),
        f(35, "setHostnameAsFQDN", Bool, Ptr),
        f(36, "os", Msg(&POD_OS), Ptr),
        f(37, "hostUsers", Bool, Ptr),
        f(38, "schedulingGates", Msg(&POD_SCHEDULING_GATE), Rep),
        f(39, "resourceClaims", Msg(&POD_RESOURCE_CLAIM), Rep),
        f(40, "resources", Msg(&RESOURCE_REQUIREMENTS), Ptr),
    ],
);

static CONTAINER: Message = msg(
    "Container",
    &[
        f(1, "name", Str, Req),
        f(2, "image", Str, Opt),
        f(3, "command", Str, Rep),
        f(4, "args", Str, Rep),
        f(5, "workingDir", Str, Opt),
        f(6, "ports", Msg(&CONTAINER_PORT), Rep),
        f(19, "envFrom", Msg(&ENV_FROM_SOURCE), Rep),
        f(7, "env", Msg(&ENV_VAR), Rep),
        f(8, "resources", Msg(&RESOURCE_REQUIREMENTS), Opt),
        f(23, "resizePolicy", Msg(&CONTAINER_RESIZE_POLICY), Rep),
        f(24, "restartPolicy", Str, Ptr),
        f(9, "volumeMounts", Msg(&VOLUME_MOUNT), Rep),
        f(21, "volumeDevices", Msg(&VOLUME_DEVICE), Rep),
        f(10, "livenessProbe", Msg(&PROBE), Ptr),
        f(11, "readinessProbe", Msg(&PROBE), Ptr),
        f(22, "startupProbe", Msg(&PROBE), Ptr),
        f(12, "lifecycle", Msg(&LIFECYCLE), Ptr),
        f(13, "terminationMessagePath", Str, Opt),
        f(20, "terminationMessagePolicy", Str, Opt),
        f(14, "imagePullPolicy", Str, Opt),
        f(15, "securityContext", Msg(&SECURITY_CONTEXT), Ptr),
        f(16, "stdin", Bool, Opt),
        f(17, "stdinOnce", Bool, Opt),
        f(18, "tty", Bool, Opt),
    ],
);

/// `EphemeralContainerCommon` has exactly `Container`'s fields and numbers.
static EPHEMERAL_CONTAINER: Message = msg(
    "EphemeralContainer",
    &[
        f(1, "ephemeralContainerCommon", Msg(&CONTAINER), Inline),
        f(2, "targetContainerName", Str, Opt),
    ],
);

static CONTAINER_PORT: Message = msg(
    "ContainerPort",
    &[
        f(1, "name", Str, Opt),
        f(2, "hostPort", I32, Opt),
        f(3, "containerPort", I32, Req),
        f(4, "protocol", Str, Opt),
        f(5, "hostIP", Str, Opt),
    ],
);

static CONTAINER_RESIZE_POLICY: Message = msg(
    "ContainerResizePolicy",
    &[
        f(1, "resourceName", Str, Req),
        f(2, "restartPolicy", Str, Req),
    ],
);

static ENV_FROM_SOURCE: Message = msg(
    "EnvFromSource",
    &[
        f(1, "prefix", Str, Opt),
        f(2, "configMapRef", Msg(&OPTIONAL_LOCAL_REFERENCE), Ptr),
        f(3, "secretRef", Msg(&OPTIONAL_LOCAL_REFERENCE), Ptr),
    ],
);

/// `ConfigMapEnvSource` and `SecretEnvSource`.
static OPTIONAL_LOCAL_REFERENCE: Message = msg(
    "ConfigMapEnvSource",
    &[
        f(
            1,
            "localObjectReference",
            Msg(&LOCAL_OBJECT_REFERENCE),
            Inline,
        ),
        f(2, "optional", Bool, Ptr),
    ],
);

static ENV_VAR: Message = msg(
    "EnvVar",
    &[
        f(1, "name", Str, Req),
        f(2, "value", Str, Opt),
        f(3, "valueFrom", Msg(&ENV_VAR_SOURCE), Ptr),
    ],
);

static ENV_VAR_SOURCE: Message = msg(
    "EnvVarSource",
    &[
        f(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR), Ptr),
        f(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR), Ptr),
        f(3, "configMapKeyRef", Msg(&KEY_SELECTOR), Ptr),
        f(4, "secretKeyRef", Msg(&KEY_SELECTOR), Ptr),
    ],
);

static OBJECT_FIELD_SELECTOR: Message = msg(
    "ObjectFieldSelector",
    &[f(1, "apiVersion", Str, Opt), f(2, "fieldPath", Str, Req)],
);

static RESOURCE_FIELD_SELECTOR: Message = msg(
    "ResourceFieldSelector",
    &[
        f(1, "containerName", Str, Opt),
        f(2, "resource", Str, Req),
        f(3, "divisor", Quantity, Opt),
    ],
);

/// `ConfigMapKeySelector` and `SecretKeySelector`.
static KEY_SELECTOR: Message = msg(
    "ConfigMapKeySelector",
    &[
        f(
            1,
            "localObjectReference",
            Msg(&LOCAL_OBJECT_REFERENCE),
            Inline,
        ),
        f(2, "key", Str, Req),
        f(3, "optional", Bool, Ptr),
    ],
);

static RESOURCE_REQUIREMENTS: Message = msg(
    "ResourceRequirements",
    &[
        f(1, "limits", Quantity, Map),
        f(2, "requests", Quantity, Map),
        f(3, "claims", Msg(&RESOURCE_CLAIM), Rep),
    ],
);

static RESOURCE_CLAIM: Message = msg(
    "ResourceClaim",
    &[f(1, "name", Str, Req), f(2, "request", Str, Opt)],
);

static VOLUME_MOUNT: Message = msg(
    "VolumeMount",
    &[
        f(1, "name", Str, Req),
        f(2, "readOnly", Bool, Opt),
        f(7, "recursiveReadOnly", Str, Ptr),
        f(3, "mountPath", Str, Req),
        f(4, "subPath", Str, Opt),
        f(5, "mountPropagation", Str, Ptr),
        f(6, "subPathExpr", Str, Opt),
    ],
);

static VOLUME_DEVICE: Message = msg(
    "VolumeDevice",
    &[f(1, "name", Str, Req), f(2, "devicePath", Str, Req)],
);

static PROBE: Message = msg(
    "Probe",
    &[
        f(1, "handler", Msg(&PROBE_HANDLER), Inline),
        f(2, "initialDelaySeconds", I32, Opt),
        f(3, "timeoutSeconds", I32, Opt),
        f(4, "periodSeconds", I32, Opt),
        f(5, "successThreshold", I32, Opt),
        f(6, "failureThreshold", I32, Opt),
        f(7, "terminationGracePeriodSeconds", I64, Ptr),
    ],
);

static PROBE_HANDLER: Message = msg(
    "ProbeHandler",
    &[
        f(1, "exec", Msg(&EXEC_ACTION), Ptr),
        f(2, "httpGet", Msg(&HTTP_GET_ACTION), Ptr),
        f(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION), Ptr),
        f(4, "grpc", Msg(&GRPC_ACTION), Ptr),
    ],
);

static EXEC_ACTION: Message = msg("ExecAction", &[f(1, "command", Str, Rep)]);

static HTTP_GET_ACTION: Message = msg(
    "HTTPGetAction",
    &[
        f(1, "path", Str, Opt),
        f(2, "port", IntOrString, Req),
        f(3, "host", Str, Opt),
        f(4, "scheme", Str, Opt),
        f(5, "httpHeaders", Msg(&HTTP_HEADER), Rep),
    ],
);

static HTTP_HEADER: Message = msg(
    "HTTPHeader",
    &[f(1, "name", Str, Req), f(2, "value", Str, Req)],
);

static TCP_SOCKET_ACTION: Message = msg(
    "TCPSocketAction",
    &[f(1, "port", IntOrString, Req), f(2, "host", Str, Opt)],
);

static GRPC_ACTION: Message = msg(
    "GRPCAction",
    &[f(1, "port", I32, Req), f(2, "service", Str, Ptr)],
);

static LIFECYCLE: Message = msg(
    "Lifecycle",
    &[
        f(1, "postStart", Msg(&LIFECYCLE_HANDLER), Ptr),
        f(2, "preStop", Msg(&LIFECYCLE_HANDLER), Ptr),
    ],
);

static LIFECYCLE_HANDLER: Message = msg(
    "LifecycleHandler",
    &[
        f(1, "exec", Msg(&EXEC_ACTION), Ptr),
        f(2, "httpGet", Msg(&HTTP_GET_ACTION), Ptr),
        f(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION), Ptr),
        f(4, "sleep", Msg(&SLEEP_ACTION), Ptr),
    ],
);

static SLEEP_ACTION: Message = msg("SleepAction", &[f(1, "seconds", I64, Req)]);

static SECURITY_CONTEXT: Message = msg(
    "SecurityContext",
    &[
        f(1, "capabilities", Msg(&CAPABILITIES), Ptr),
        f(2, "privileged", Bool, Ptr),
        f(3, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS), Ptr),
        f(
            10,
            "windowsOptions",
            Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS),
            Ptr,
        ),
        f(4, "runAsUser", I64, Ptr),
        f(8, "runAsGroup", I64, Ptr),
        f(5, "runAsNonRoot", Bool, Ptr),
        f(6, "readOnlyRootFilesystem", Bool, Ptr),
        f(7, "allowPrivilegeEscalation", Bool, Ptr),
        f(9, "procMount", Str, Ptr),
        f(11, "seccompProfile", Msg(&PROFILE), Ptr),
        f(12, "appArmorProfile", Msg(&PROFILE), Ptr),
    ],
);

static CAPABILITIES: Message = msg(
    "Capabilities",
    &[f(1, "add", Str, Rep), f(2, "drop", Str, Rep)],
);

static SE_LINUX_OPTIONS: Message = msg(
    "SELinuxOptions",
    &[
        f(1, "user", Str, Opt),
        f(2, "role", Str, Opt),
        f(3, "type", Str, Opt),
        f(4, "level", Str, Opt),
    ],
);

static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = msg(
    "WindowsSecurityContextOptions",
    &[
        f(1, "gmsaCredentialSpecName", Str, Ptr),
        f(2, "gmsaCredentialSpec", Str, Ptr),
        f(3, "runAsUserName", Str, Ptr),
        f(4, "hostProcess", Bool, Ptr),
    ],
);

/// `SeccompProfile` and `AppArmorProfile` share their layout.
static PROFILE: Message = msg(
    "SeccompProfile",
    &[f(1, "type", Str, Req), f(2, "localhostProfile", Str, Ptr)],
);

static POD_SECURITY_CONTEXT: Message = msg(
    "PodSecurityContext",
    &[
        f(1, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS), Ptr),
        f(
            8,
            "windowsOptions",
            Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS),
            Ptr,
        ),
        f(2, "runAsUser", I64, Ptr),
        f(6, "runAsGroup", I64, Ptr),
        f(3, "runAsNonRoot", Bool, Ptr),
        f(4, "supplementalGroups", I64, Rep),
        f(12, "supplementalGroupsPolicy", Str, Ptr),
        f(5, "fsGroup", I64, Ptr),
        f(7, "sysctls", Msg(&SYSCTL), Rep),
        f(9, "fsGroupChangePolicy", Str, Ptr),
        f(10, "seccompProfile", Msg(&PROFILE), Ptr),
        f(11, "appArmorProfile", Msg(&PROFILE), Ptr),
        f(13, "seLinuxChangePolicy", Str, Ptr),
    ],
);

static SYSCTL: Message = msg("Sysctl", &[f(1, "name", Str, Req), f(2, "value", Str, Req)]);

static TOLERATION: Message = msg(
    "Toleration",
    &[
        f(1, "key", Str, Opt),
        f(2, "operator", Str, Opt),
        f(3, "value", Str, Opt),
        f(4, "effect", Str, Opt),
        f(5, "tolerationSeconds", I64, Ptr),
    ],
);

static HOST_ALIAS: Message = msg(
    "HostAlias",
    &[f(1, "ip", Str, Req), f(2, "hostnames", Str, Rep)],
);

static POD_DNS_CONFIG: Message = msg(
    "PodDNSConfig",
    &[
        f(1, "nameservers", Str, Rep),
        f(2, "searches", Str, Rep),
        f(3, "options", Msg(&POD_DNS_CONFIG_OPTION), Rep),
    ],
);

static POD_DNS_CONFIG_OPTION: Message = msg(
    "PodDNSConfigOption",
    &[f(1, "name", Str, Opt), f(2, "value", Str, Ptr)],
);

static POD_READINESS_GATE: Message = msg("PodReadinessGate", &[f(1, "conditionType", Str, Req)]);

static POD_OS: Message = msg("PodOS", &[f(1, "name", Str, Req)]);

static POD_SCHEDULING_GATE: Message = msg("PodSchedulingGate", &[f(1, "name", Str, Req)]);

static POD_RESOURCE_CLAIM: Message = msg(
    "PodResourceClaim",
    &[
        f(1, "name", Str, Req),
        f(3, "resourceClaimName", Str, Ptr),
        f(4, "resourceClaimTemplateName", Str, Ptr),
    ],
);

static TOPOLOGY_SPREAD_CONSTRAINT: Message = msg(
    "TopologySpreadConstraint",
    &[
        f(1, "maxSkew", I32, Req),
        f(2, "topologyKey", Str, Req),
        f(3, "whenUnsatisfiable", Str, Req),
        f(4, "labelSelector", Msg(&LABEL_SELECTOR), Ptr),
        f(5, "minDomains", I32, Ptr),
        f(6, "nodeAffinityPolicy", Str, Ptr),
        f(7, "nodeTaintsPolicy", Str, Ptr),
        f(8, "matchLabelKeys", Str, Rep),
    ],
);

static AFFINITY: Message = msg(
    "Affinity",
    &[
        f(1, "nodeAffinity", Msg(&NODE_AFFINITY), Ptr),
        f(2, "podAffinity", Msg(&POD_AFFINITY), Ptr),
        f(3, "podAntiAffinity", Msg(&POD_AFFINITY), Ptr),
    ],
);

static NODE_AFFINITY: Message = msg(
    "NodeAffinity",
    &[
        f(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&NODE_SELECTOR),
            Ptr,
        ),
        f(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Msg(&PREFERRED_SCHEDULING_TERM),
            Rep,
        ),
    ],
);

static NODE_SELECTOR: Message = msg(
    "NodeSelector",
    &[f(1, "nodeSelectorTerms", Msg(&NODE_SELECTOR_TERM), RepReq)],
);

static NODE_SELECTOR_TERM: Message = msg(
    "NodeSelectorTerm",
    &[
        f(1, "matchExpressions", Msg(&NODE_SELECTOR_REQUIREMENT), Rep),
        f(2, "matchFields", Msg(&NODE_SELECTOR_REQUIREMENT), Rep),
    ],
);

static NODE_SELECTOR_REQUIREMENT: Message = msg(
    "NodeSelectorRequirement",
    &[
        f(1, "key", Str, Req),
        f(2, "operator", Str, Req),
        f(3, "values", Str, Rep),
    ],
);

static PREFERRED_SCHEDULING_TERM: Message = msg(
    "PreferredSchedulingTerm",
    &[
        f(1, "weight", I32, Req),
        f(2, "preference", Msg(&NODE_SELECTOR_TERM), Req),
    ],
);

/// `PodAffinity` and `PodAntiAffinity` share their layout.
static POD_AFFINITY: Message = msg(
    "PodAffinity",
    &[
        f(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&POD_AFFINITY_TERM),
            Rep,
        ),
        f(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Msg(&WEIGHTED_POD_AFFINITY_TERM),
            Rep,
        ),
    ],
);

static POD_AFFINITY_TERM: Message = msg(
    "PodAffinityTerm",
    &[
        f(1, "labelSelector", Msg(&LABEL_SELECTOR), Ptr),
        f(2, "namespaces", Str, Rep),
        f(3, "topologyKey", Str, Req),
        f(4, "namespaceSelector", Msg(&LABEL_SELECTOR), Ptr),
        f(5, "matchLabelKeys", Str, Rep),
        f(6, "mismatchLabelKeys", Str, Rep),
    ],
);

static WEIGHTED_POD_AFFINITY_TERM: Message = msg(
    "WeightedPodAffinityTerm",
    &[
        f(1, "weight", I32, Req),
        f(2, "podAffinityTerm", Msg(&POD_AFFINITY_TERM), Req),
    ],
);

// Volumes ---------------------------------------------------------------------------------------

static VOLUME: Message = msg(
    "Volume",
    &[
        f(1, "name", Str, Req),
        f(2, "volumeSource", Msg(&VOLUME_SOURCE), Inline),
    ],
);

/// The volume sources kube-sim workloads use; the deprecated in-tree cloud and network
/// sources (numbers 3-5, 8, 9, 11-15, 17, 18, 20-25, 27) are reported as unknown fields.
static VOLUME_SOURCE: Message = msg(
    "VolumeSource",
    &[
        f(1, "hostPath", Msg(&HOST_PATH_VOLUME_SOURCE), Ptr),
        f(2, "emptyDir", Msg(&EMPTY_DIR_VOLUME_SOURCE), Ptr),
        f(6, "secret", Msg(&SECRET_VOLUME_SOURCE), Ptr),
        f(7, "nfs", Msg(&NFS_VOLUME_SOURCE), Ptr),
        f(10, "persistentVolumeClaim", Msg(&PVC_VOLUME_SOURCE), Ptr),
        f(16, "downwardAPI", Msg(&DOWNWARD_API_VOLUME_SOURCE), Ptr),
        f(19, "configMap", Msg(&CONFIG_MAP_VOLUME_SOURCE), Ptr),
        f(26, "projected", Msg(&PROJECTED_VOLUME_SOURCE), Ptr),
        f(28, "csi", Msg(&CSI_VOLUME_SOURCE), Ptr),
        f(29, "ephemeral", Msg(&EPHEMERAL_VOLUME_SOURCE), Ptr),
        f(30, "image", Msg(&IMAGE_VOLUME_SOURCE), Ptr),
    ],
);

static HOST_PATH_VOLUME_SOURCE: Message = msg(
    "HostPathVolumeSource",
    &[f(1, "path", Str, Req), f(2, "type", Str, Ptr)],
);

static EMPTY_DIR_VOLUME_SOURCE: Message = msg(
    "EmptyDirVolumeSource",
    &[f(1, "medium", Str, Opt), f(2, "sizeLimit", Quantity, Ptr)],
);

static SECRET_VOLUME_SOURCE: Message = msg(
    "SecretVolumeSource",
    &[
        f(1, "secretName", Str, Opt),
        f(2, "items", Msg(&KEY_TO_PATH), Rep),
        f(3, "defaultMode", I32, Ptr),
        f(4, "optional", Bool, Ptr),
    ],
);

static KEY_TO_PATH: Message = msg(
    "KeyToPath",
    &[
        f(1, "key", Str, Req),
        f(2, "path", Str, Req),
        f(3, "mode", I32, Ptr),
    ],
);

static NFS_VOLUME_SOURCE: Message = msg(
    "NFSVolumeSource",
    &[
        f(1, "server", Str, Req),
        f(2, "path", Str, Req),
        f(3, "readOnly", Bool, Opt),
    ],
);

static PVC_VOLUME_SOURCE: Message = msg(
    "PersistentVolumeClaimVolumeSource",
    &[f(1, "claimName", Str, Req), f(2, "readOnly", Bool, Opt)],
);

static DOWNWARD_API_VOLUME_SOURCE: Message = msg(
    "DownwardAPIVolumeSource",
    &[
        f(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE), Rep),
        f(2, "defaultMode", I32, Ptr),
    ],
);

static DOWNWARD_API_VOLUME_FILE: Message = msg(
    "DownwardAPIVolumeFile",
    &[
        f(1, "path", Str, Req),
        f(2, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR), Ptr),
        f(3, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR), Ptr),
        f(4, "mode", I32, Ptr),
    ],
);

static CONFIG_MAP_VOLUME_SOURCE: Message = msg(
    "ConfigMapVolumeSource",
    &[
        f(
            1,
            "localObjectReference",
            Msg(&LOCAL_OBJECT_REFERENCE),
            Inline,
        ),
        f(2, "items", Msg(&KEY_TO_PATH), Rep),
        f(3, "defaultMode", I32, Ptr),
        f(4, "optional", Bool, Ptr),
    ],
);

static PROJECTED_VOLUME_SOURCE: Message = msg(
    "ProjectedVolumeSource",
    &[
        f(1, "sources", Msg(&VOLUME_PROJECTION), RepReq),
        f(2, "defaultMode", I32, Ptr),
    ],
);

static VOLUME_PROJECTION: Message = msg(
    "VolumeProjection",
    &[
        f(1, "secret", Msg(&KEY_PROJECTION), Ptr),
        f(2, "downwardAPI", Msg(&DOWNWARD_API_PROJECTION), Ptr),
        f(3, "configMap", Msg(&KEY_PROJECTION), Ptr),
        f(
            4,
            "serviceAccountToken",
            Msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION),
            Ptr,
        ),
        f(
            5,
            "clusterTrustBundle",
            Msg(&CLUSTER_TRUST_BUNDLE_PROJECTION),
            Ptr,
        ),
    ],
);

/// `SecretProjection` and `ConfigMapProjection`.
static KEY_PROJECTION: Message = msg(
    "SecretProjection",
    &[
        f(
            1,
            "localObjectReference",
            Msg(&LOCAL_OBJECT_REFERENCE),
            Inline,
        ),
        f(2, "items", Msg(&KEY_TO_PATH), Rep),
        f(4, "optional", Bool, Ptr),
    ],
);

static DOWNWARD_API_PROJECTION: Message = msg(
    "DownwardAPIProjection",
    &[f(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE), Rep)],
);

static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = msg(
    "ServiceAccountTokenProjection",
    &[
        f(1, "audience", Str, Opt),
        f(2, "expirationSeconds", I64, Ptr),
        f(3, "path", Str, Req),
    ],
);

static CLUSTER_TRUST_BUNDLE_PROJECTION: Message = msg(
    "ClusterTrustBundleProjection",
    &[
        f(1, "name", Str, Ptr),
        f(2, "signerName", Str, Ptr),
        f(3, "labelSelector", Msg(&LABEL_SELECTOR), Ptr),
        f(5, "optional", Bool, Ptr),
        f(4, "path", Str, Req),
    ],
);

static CSI_VOLUME_SOURCE: Message = msg(
    "CSIVolumeSource",
    &[
        f(1, "driver", Str, Req),
        f(2, "readOnly", Bool, Ptr),
        f(3, "fsType", Str, Ptr),
        f(4, "volumeAttributes", Str, Map),
        f(5, "nodePublishSecretRef", Msg(&LOCAL_OBJECT_REFERENCE), Ptr),
    ],
);

static EPHEMERAL_VOLUME_SOURCE: Message = msg(
    "EphemeralVolumeSource",
    &[f(1, "volumeClaimTemplate", Msg(&PVC_TEMPLATE), Ptr)],
);

static PVC_TEMPLATE: Message = msg(
    "PersistentVolumeClaimTemplate",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&PVC_SPEC), Req),
    ],
);

static PVC_SPEC: Message = msg(
    "PersistentVolumeClaimSpec",
    &[
        f(1, "accessModes", Str, Rep),
        f(4, "selector", Msg(&LABEL_SELECTOR), Ptr),
        f(2, "resources", Msg(&VOLUME_RESOURCE_REQUIREMENTS), Opt),
        f(3, "volumeName", Str, Opt),
        f(5, "storageClassName", Str, Ptr),
        f(6, "volumeMode", Str, Ptr),
        f(7, "dataSource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE), Ptr),
        f(8, "dataSourceRef", Msg(&TYPED_OBJECT_REFERENCE), Ptr),
        f(9, "volumeAttributesClassName", Str, Ptr),
    ],
);

static VOLUME_RESOURCE_REQUIREMENTS: Message = msg(
    "VolumeResourceRequirements",
    &[
        f(1, "limits", Quantity, Map),
        f(2, "requests", Quantity, Map),
    ],
);

static TYPED_LOCAL_OBJECT_REFERENCE: Message = msg(
    "TypedLocalObjectReference",
    &[
        f(1, "apiGroup", Str, Ptr),
        f(2, "kind", Str, Req),
        f(3, "name", Str, Req),
    ],
);

static TYPED_OBJECT_REFERENCE: Message = msg(
    "TypedObjectReference",
    &[
        f(1, "apiGroup", Str, Ptr),
        f(2, "kind", Str, Req),
        f(3, "name", Str, Req),
        f(4, "namespace", Str, Ptr),
    ],
);

static IMAGE_VOLUME_SOURCE: Message = msg(
    "ImageVolumeSource",
    &[f(1, "reference", Str, Opt), f(2, "pullPolicy", Str, Opt)],
);

// Pod status ------------------------------------------------------------------------------------

static POD_STATUS: Message = msg(
    "PodStatus",
    &[
        f(1, "phase", Str, Opt),
        f(2, "conditions", Msg(&POD_CONDITION), Rep),
        f(3, "message", Str, Opt),
        f(4, "reason", Str, Opt),
        f(11, "nominatedNodeName", Str, Opt),
        f(5, "hostIP", Str, Opt),
        f(16, "hostIPs", Msg(&IP_ENTRY), Rep),
        f(6, "podIP", Str, Opt),
        f(12, "podIPs", Msg(&IP_ENTRY), Rep),
        f(7, "startTime", Time, Ptr),
        f(10, "initContainerStatuses", Msg(&CONTAINER_STATUS), Rep),
        f(8, "containerStatuses", Msg(&CONTAINER_STATUS), Rep),
        f(9, "qosClass", Str, Opt),
        f(
            13,
            "ephemeralContainerStatuses",
            Msg(&CONTAINER_STATUS),
            Rep,
        ),
        f(14, "resize", Str, Opt),
        f(
            15,
            "resourceClaimStatuses",
            Msg(&POD_RESOURCE_CLAIM_STATUS),
            Rep,
        ),
    ],
);

static POD_CONDITION: Message = msg(
    "PodCondition",
    &[
        f(1, "type", Str, Req),
        f(2, "status", Str, Req),
        f(3, "lastProbeTime", Time, Opt),
        f(4, "lastTransitionTime", Time, Opt),
        f(5, "reason", Str, Opt),
        f(6, "message", Str, Opt),
    ],
);

/// `HostIP` and `PodIP`.
static IP_ENTRY: Message = msg("PodIP", &[f(1, "ip", Str, Req)]);

static CONTAINER_STATUS: Message = msg(
    "ContainerStatus",
    &[
        f(1, "name", Str, Req),
        f(2, "state", Msg(&CONTAINER_STATE), Opt),
        f(3, "lastState", Msg(&CONTAINER_STATE), Opt),
        f(4, "ready", Bool, Req),
        f(5, "restartCount", I32, Req),
        f(6, "image", Str, Req),
        f(7, "imageID", Str, Req),
        f(8, "containerID", Str, Opt),
        f(9, "started", Bool, Ptr),
        f(10, "allocatedResources", Quantity, Map),
        f(11, "resources", Msg(&RESOURCE_REQUIREMENTS), Ptr),
        f(12, "volumeMounts", Msg(&VOLUME_MOUNT_STATUS), Rep),
        f(13, "user", Msg(&CONTAINER_USER), Ptr),
        f(14, "allocatedResourcesStatus", Msg(&RESOURCE_STATUS), Rep),
    ],
);

static CONTAINER_STATE: Message = msg(
    "ContainerState",
    &[
        f(1, "waiting", Msg(&CONTAINER_STATE_WAITING), Ptr),
        f(2, "running", Msg(&CONTAINER_STATE_RUNNING), Ptr),
        f(3, "terminated", Msg(&CONTAINER_STATE_TERMINATED), Ptr),
    ],
);

static CONTAINER_STATE_WAITING: Message = msg(
    "ContainerStateWaiting",
    &[f(1, "reason", Str, Opt), f(2, "message", Str, Opt)],
);

static CONTAINER_STATE_RUNNING: Message =
    msg("ContainerStateRunning", &[f(1, "startedAt", Time, Opt)]);

static CONTAINER_STATE_TERMINATED: Message = msg(
    "ContainerStateTerminated",
    &[
        f(1, "exitCode", I32, Req),
        f(2, "signal", I32, Opt),
        f(3, "reason", Str, Opt),
        f(4, "message", Str, Opt),
        f(5, "startedAt", Time, Opt),
        f(6, "finishedAt", Time, Opt),
        f(7, "containerID", Str, Opt),
    ],
);

static VOLUME_MOUNT_STATUS: Message = msg(
    "VolumeMountStatus",
    &[
        f(1, "name", Str, Req),
        f(2, "mountPath", Str, Req),
        f(3, "readOnly", Bool, Opt),
        f(4, "recursiveReadOnly", Str, Ptr),
    ],
);

static CONTAINER_USER: Message = msg(
    "ContainerUser",
    &[f(1, "linux", Msg(&LINUX_CONTAINER_USER), Ptr)],
);

static LINUX_CONTAINER_USER: Message = msg(
    "LinuxContainerUser",
    &[
        f(1, "uid", I64, Req),
        f(2, "gid", I64, Req),
        f(3, "supplementalGroups", I64, Rep),
    ],
);

static RESOURCE_STATUS: Message = msg(
    "ResourceStatus",
    &[
        f(1, "name", Str, Req),
        f(2, "resources", Msg(&RESOURCE_HEALTH), Rep),
    ],
);

static RESOURCE_HEALTH: Message = msg(
    "ResourceHealth",
    &[f(1, "resourceID", Str, Req), f(2, "health", Str, Opt)],
);

static POD_RESOURCE_CLAIM_STATUS: Message = msg(
    "PodResourceClaimStatus",
    &[f(1, "name", Str, Req), f(2, "resourceClaimName", Str, Ptr)],
);

// ---------------------------------------------------------------------------------------------
// core/v1: Service, Node
// ---------------------------------------------------------------------------------------------

static SERVICE: Message = msg(
    "Service",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SERVICE_SPEC), Opt),
        f(3, "status", Msg(&SERVICE_STATUS), Opt),
    ],
);

static SERVICE_SPEC: Message = msg(
    "ServiceSpec",
    &[
        f(1, "ports", Msg(&SERVICE_PORT), Rep),
        f(2, "selector", Str, Map),
        f(3, "clusterIP", Str, Opt),
        f(18, "clusterIPs", Str, Rep),
        f(4, "type", Str, Opt),
        f(5, "externalIPs", Str, Rep),
        f(7, "sessionAffinity", Str, Opt),
        f(8, "loadBalancerIP", Str, Opt),
        f(9, "loadBalancerSourceRanges", Str, Rep),
        f(10, "externalName", Str, Opt),
        f(11, "externalTrafficPolicy", Str, Opt),
        f(12, "healthCheckNodePort", I32, Opt),
        f(13, "publishNotReadyAddresses", Bool, Opt),
        f(
            14,
            "sessionAffinityConfig",
            Msg(&SESSION_AFFINITY_CONFIG),
            Ptr,
        ),
        f(19, "ipFamilies", Str, Rep),
        f(17, "ipFamilyPolicy", Str, Ptr),
        f(20, "allocateLoadBalancerNodePorts", Bool, Ptr),
        f(21, "loadBalancerClass", Str, Ptr),
        f(22, "internalTrafficPolicy", Str, Ptr),
        f(23, "trafficDistribution", Str, Ptr),
    ],
);

static SERVICE_PORT: Message = msg(
    "ServicePort",
    &[
        f(1, "name", Str, Opt),
        f(2, "protocol", Str, Opt),
        f(6, "appProtocol", Str, Ptr),
        f(3, "port", I32, Req),
        f(4, "targetPort", IntOrString, Opt),
        f(5, "nodePort", I32, Opt),
    ],
);

static SESSION_AFFINITY_CONFIG: Message = msg(
    "SessionAffinityConfig",
    &[f(1, "clientIP", Msg(&CLIENT_IP_CONFIG), Ptr)],
);

static CLIENT_IP_CONFIG: Message = msg("ClientIPConfig", &[f(1, "timeoutSeconds", I32, Ptr)]);

static SERVICE_STATUS: Message = msg(
    "ServiceStatus",
    &[
        f(1, "loadBalancer", Msg(&LOAD_BALANCER_STATUS), Opt),
        f(2, "conditions", Msg(&CONDITION), Rep),
    ],
);

static LOAD_BALANCER_STATUS: Message = msg(
    "LoadBalancerStatus",
    &[f(1, "ingress", Msg(&LOAD_BALANCER_INGRESS), Rep)],
);

static LOAD_BALANCER_INGRESS: Message = msg(
    "LoadBalancerIngress",
    &[
        f(1, "ip", Str, Opt),
        f(2, "hostname", Str, Opt),
        f(3, "ipMode", Str, Ptr),
        f(4, "ports", Msg(&PORT_STATUS), Rep),
    ],
);

static PORT_STATUS: Message = msg(
    "PortStatus",
    &[
        f(1, "port", I32, Req),
        f(2, "protocol", Str, Req),
        f(3, "error", Str, Ptr),
    ],
);

static NODE: Message = msg(
    "Node",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&NODE_SPEC), Opt),
        f(3, "status", Msg(&NODE_STATUS), Opt),
    ],
);

static NODE_SPEC: Message = msg(
    "NodeSpec",
    &[
        f(1, "podCIDR", Str, Opt),
        f(7, "podCIDRs", Str, Rep),
        f(3, "providerID", Str, Opt),
        f(4, "unschedulable", Bool, Opt),
        f(5, "taints", Msg(&TAINT), Rep),
        f(6, "configSource", Msg(&NODE_CONFIG_SOURCE), Ptr),
        f(2, "externalID", Str, Opt),
    ],
);

static TAINT: Message = msg(
    "Taint",
    &[
        f(1, "key", Str, Req),
        f(2, "value", Str, Opt),
        f(3, "effect", Str, Req),
        f(4, "timeAdded", Time, Ptr),
    ],
);

static NODE_CONFIG_SOURCE: Message = msg(
    "NodeConfigSource",
    &[f(2, "configMap", Msg(&CONFIG_MAP_NODE_CONFIG_SOURCE), Ptr)],
);

static CONFIG_MAP_NODE_CONFIG_SOURCE: Message = msg(
    "ConfigMapNodeConfigSource",
    &[
        f(1, "namespace", Str, Req),
        f(2, "name", Str, Req),
        f(3, "uid", Str, Opt),
        f(4, "resourceVersion", Str, Opt),
        f(5, "kubeletConfigKey", Str, Req),
    ],
);

static NODE_STATUS: Message = msg(
    "NodeStatus",
    &[
        f(1, "capacity", Quantity, Map),
        f(2, "allocatable", Quantity, Map),
        f(3, "phase", Str, Opt),
        f(4, "conditions", Msg(&NODE_CONDITION), Rep),
        f(5, "addresses", Msg(&NODE_ADDRESS), Rep),
        f(6, "daemonEndpoints", Msg(&NODE_DAEMON_ENDPOINTS), Opt),
        f(7, "nodeInfo", Msg(&NODE_SYSTEM_INFO), Opt),
        f(8, "images", Msg(&CONTAINER_IMAGE), Rep),
        f(9, "volumesInUse", Str, Rep),
        f(10, "volumesAttached", Msg(&ATTACHED_VOLUME), Rep),
        f(11, "config", Msg(&NODE_CONFIG_STATUS), Ptr),
        f(12, "runtimeHandlers", Msg(&NODE_RUNTIME_HANDLER), Rep),
        f(13, "features", Msg(&NODE_FEATURES), Ptr),
    ],
);

static NODE_CONDITION: Message = msg(
    "NodeCondition",
    &[
        f(1, "type", Str, Req),
        f(2, "status", Str, Req),
        f(3, "lastHeartbeatTime", Time, Opt),
        f(4, "lastTransitionTime", Time, Opt),
        f(5, "reason", Str, Opt),
        f(6, "message", Str, Opt),
    ],
);

static NODE_ADDRESS: Message = msg(
    "NodeAddress",
    &[f(1, "type", Str, Req), f(2, "address", Str, Req)],
);

static NODE_DAEMON_ENDPOINTS: Message = msg(
    "NodeDaemonEndpoints",
    &[f(1, "kubeletEndpoint", Msg(&DAEMON_ENDPOINT), Opt)],
);

static DAEMON_ENDPOINT: Message = msg("DaemonEndpoint", &[f(1, "Port", I32, Req)]);

static NODE_SYSTEM_INFO: Message = msg(
    "NodeSystemInfo",
    &[
        f(1, "machineID", Str, Req),
        f(2, "systemUUID", Str, Req),
        f(3, "bootID", Str, Req),
        f(4, "kernelVersion", Str, Req),
        f(5, "osImage", Str, Req),
        f(6, "containerRuntimeVersion", Str, Req),
        f(7, "kubeletVersion", Str, Req),
        f(8, "kubeProxyVersion", Str, Req),
        f(9, "operatingSystem", Str, Req),
        f(10, "architecture", Str, Req),
    ],
);

static CONTAINER_IMAGE: Message = msg(
    "ContainerImage",
    &[f(1, "names", Str, Rep), f(2, "sizeBytes", I64, Opt)],
);

static ATTACHED_VOLUME: Message = msg(
    "AttachedVolume",
    &[f(1, "name", Str, Req), f(2, "devicePath", Str, Req)],
);

static NODE_CONFIG_STATUS: Message = msg(
    "NodeConfigStatus",
    &[
        f(1, "assigned", Msg(&NODE_CONFIG_SOURCE), Ptr),
        f(2, "active", Msg(&NODE_CONFIG_SOURCE), Ptr),
        f(3, "lastKnownGood", Msg(&NODE_CONFIG_SOURCE), Ptr),
        f(4, "error", Str, Opt),
    ],
);

static NODE_RUNTIME_HANDLER: Message = msg(
    "NodeRuntimeHandler",
    &[
        f(1, "name", Str, Req),
        f(2, "features", Msg(&NODE_RUNTIME_HANDLER_FEATURES), Ptr),
    ],
);

static NODE_RUNTIME_HANDLER_FEATURES: Message = msg(
    "NodeRuntimeHandlerFeatures",
    &[
        f(1, "recursiveReadOnlyMounts", Bool, Ptr),
        f(2, "userNamespaces", Bool, Ptr),
    ],
);

static NODE_FEATURES: Message = msg(
    "NodeFeatures",
    &[f(1, "supplementalGroupsPolicy", Bool, Ptr)],
);

// ---------------------------------------------------------------------------------------------
// rbac.authorization.k8s.io/v1
// ---------------------------------------------------------------------------------------------

static ROLE: Message = msg(
    "Role",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "rules", Msg(&POLICY_RULE), RepReq),
    ],
);

static CLUSTER_ROLE: Message = msg(
    "ClusterRole",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "rules", Msg(&POLICY_RULE), RepReq),
        f(3, "aggregationRule", Msg(&AGGREGATION_RULE), Ptr),
    ],
);

static POLICY_RULE: Message = msg(
    "PolicyRule",
    &[
        f(1, "verbs", Str, RepReq),
        f(2, "apiGroups", Str, Rep),
        f(3, "resources", Str, Rep),
        f(4, "resourceNames", Str, Rep),
        f(5, "nonResourceURLs", Str, Rep),
    ],
);

static AGGREGATION_RULE: Message = msg(
    "AggregationRule",
    &[f(1, "clusterRoleSelectors", Msg(&LABEL_SELECTOR), Rep)],
);

/// `RoleBinding` and `ClusterRoleBinding`.
static ROLE_BINDING: Message = msg(
    "RoleBinding",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "subjects", Msg(&SUBJECT), Rep),
        f(3, "roleRef", Msg(&ROLE_REF), Req),
    ],
);

static SUBJECT: Message = msg(
    "Subject",
    &[
        f(1, "kind", Str, Req),
        f(2, "apiGroup", Str, Opt),
        f(3, "name", Str, Req),
        f(4, "namespace", Str, Opt),
    ],
);

static ROLE_REF: Message = msg(
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
static SUBJECT_ACCESS_REVIEW: Message = msg(
    "SubjectAccessReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SUBJECT_ACCESS_REVIEW_SPEC), Req),
        f(3, "status", Msg(&SUBJECT_ACCESS_REVIEW_STATUS), Opt),
    ],
);

static SELF_SUBJECT_ACCESS_REVIEW: Message = msg(
    "SelfSubjectAccessReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC), Req),
        f(3, "status", Msg(&SUBJECT_ACCESS_REVIEW_STATUS), Opt),
    ],
);

static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = msg(
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

static SUBJECT_ACCESS_REVIEW_SPEC: Message = msg(
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

static RESOURCE_ATTRIBUTES: Message = msg(
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

static FIELD_SELECTOR_ATTRIBUTES: Message = msg(
    "FieldSelectorAttributes",
    &[
        f(1, "rawSelector", Str, Opt),
        f(2, "requirements", Msg(&FIELD_SELECTOR_REQUIREMENT), Rep),
    ],
);

static LABEL_SELECTOR_ATTRIBUTES: Message = msg(
    "LabelSelectorAttributes",
    &[
        f(1, "rawSelector", Str, Opt),
        f(2, "requirements", Msg(&LABEL_SELECTOR_REQUIREMENT), Rep),
    ],
);

static NON_RESOURCE_ATTRIBUTES: Message = msg(
    "NonResourceAttributes",
    &[f(1, "path", Str, Opt), f(2, "verb", Str, Opt)],
);

static SUBJECT_ACCESS_REVIEW_STATUS: Message = msg(
    "SubjectAccessReviewStatus",
    &[
        f(1, "allowed", Bool, Req),
        f(4, "denied", Bool, Opt),
        f(2, "reason", Str, Opt),
        f(3, "evaluationError", Str, Opt),
    ],
);

static SELF_SUBJECT_RULES_REVIEW: Message = msg(
    "SelfSubjectRulesReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC), Req),
        f(3, "status", Msg(&SUBJECT_RULES_REVIEW_STATUS), Opt),
    ],
);

static SELF_SUBJECT_RULES_REVIEW_SPEC: Message =
    msg("SelfSubjectRulesReviewSpec", &[f(1, "namespace", Str, Opt)]);

static SUBJECT_RULES_REVIEW_STATUS: Message = msg(
    "SubjectRulesReviewStatus",
    &[
        f(1, "resourceRules", Msg(&RESOURCE_RULE), RepReq),
        f(2, "nonResourceRules", Msg(&NON_RESOURCE_RULE), RepReq),
        f(3, "incomplete", Bool, Req),
        f(4, "evaluationError", Str, Opt),
    ],
);

static RESOURCE_RULE: Message = msg(
    "ResourceRule",
    &[
        f(1, "verbs", Str, RepReq),
        f(2, "apiGroups", Str, Rep),
        f(3, "resources", Str, Rep),
        f(4, "resourceNames", Str, Rep),
    ],
);

static NON_RESOURCE_RULE: Message = msg(
    "NonResourceRule",
    &[
        f(1, "verbs", Str, RepReq),
        f(2, "nonResourceURLs", Str, Rep),
    ],
);

// ---------------------------------------------------------------------------------------------
// authentication.k8s.io/v1
// ---------------------------------------------------------------------------------------------

static TOKEN_REQUEST: Message = msg(
    "TokenRequest",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&TOKEN_REQUEST_SPEC), Req),
        f(3, "status", Msg(&TOKEN_REQUEST_STATUS), Opt),
    ],
);

static TOKEN_REQUEST_SPEC: Message = msg(
    "TokenRequestSpec",
    &[
        f(1, "audiences", Str, RepReq),
        f(4, "expirationSeconds", I64, Ptr),
        f(3, "boundObjectRef", Msg(&BOUND_OBJECT_REFERENCE), Ptr),
    ],
);

static BOUND_OBJECT_REFERENCE: Message = msg(
    "BoundObjectReference",
    &[
        f(1, "kind", Str, Opt),
        f(2, "apiVersion", Str, Opt),
        f(3, "name", Str, Opt),
        // The proto field is named `uID`; the JSON name is `uid`.
        f(4, "uid", Str, Opt),
    ],
);

static TOKEN_REQUEST_STATUS: Message = msg(
    "TokenRequestStatus",
    &[
        f(1, "token", Str, Req),
        f(2, "expirationTimestamp", Time, Req),
    ],
);

static TOKEN_REVIEW: Message = msg(
    "TokenReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&TOKEN_REVIEW_SPEC), Req),
        f(3, "status", Msg(&TOKEN_REVIEW_STATUS), Opt),
    ],
);

static TOKEN_REVIEW_SPEC: Message = msg(
    "TokenReviewSpec",
    &[f(1, "token", Str, Opt), f(2, "audiences", Str, Rep)],
);

static TOKEN_REVIEW_STATUS: Message = msg(
    "TokenReviewStatus",
    &[
        f(1, "authenticated", Bool, Opt),
        f(2, "user", Msg(&USER_INFO), Opt),
        f(4, "audiences", Str, Rep),
        f(3, "error", Str, Opt),
    ],
);

static USER_INFO: Message = msg(
    "UserInfo",
    &[
        f(1, "username", Str, Opt),
        f(2, "uid", Str, Opt),
        f(3, "groups", Str, Rep),
        f(4, "extra", StrList, Map),
    ],
);

static SELF_SUBJECT_REVIEW: Message = msg(
    "SelfSubjectReview",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "status", Msg(&SELF_SUBJECT_REVIEW_STATUS), Opt),
    ],
);

static SELF_SUBJECT_REVIEW_STATUS: Message = msg(
    "SelfSubjectReviewStatus",
    &[f(1, "userInfo", Msg(&USER_INFO), Opt)],
);

// ---------------------------------------------------------------------------------------------
// coordination.k8s.io/v1, apps/v1, policy/v1
// ---------------------------------------------------------------------------------------------

static LEASE: Message = msg(
    "Lease",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&LEASE_SPEC), Opt),
    ],
);

static LEASE_SPEC: Message = msg(
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

static DEPLOYMENT: Message = msg(
    "Deployment",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&DEPLOYMENT_SPEC), Opt),
        f(3, "status", Msg(&DEPLOYMENT_STATUS), Opt),
    ],
);

static DEPLOYMENT_SPEC: Message = msg(
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

static DEPLOYMENT_STRATEGY: Message = msg(
    "DeploymentStrategy",
    &[
        f(1, "type", Str, Opt),
        f(2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT), Ptr),
    ],
);

static ROLLING_UPDATE_DEPLOYMENT: Message = msg(
    "RollingUpdateDeployment",
    &[
        f(1, "maxUnavailable", IntOrString, Ptr),
        f(2, "maxSurge", IntOrString, Ptr),
    ],
);

static DEPLOYMENT_STATUS: Message = msg(
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

static DEPLOYMENT_CONDITION: Message = msg(
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

static EVICTION: Message = msg(
    "Eviction",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "deleteOptions", Msg(&DELETE_OPTIONS), Ptr),
    ],
);
