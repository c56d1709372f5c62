//! Message tables of the core/v1 Pod and everything it embeds (spec, containers, volumes,
//! status).

use super::*;

// ---------------------------------------------------------------------------------------------
// core/v1: Pod
// ---------------------------------------------------------------------------------------------

pub(super) static POD: Message = msg(
    "Pod",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&POD_SPEC), Opt),
        f(3, "status", Msg(&POD_STATUS), Opt),
    ],
);

pub(super) static POD_TEMPLATE_SPEC: Message = msg(
    "PodTemplateSpec",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&POD_SPEC), Opt),
    ],
);

pub(super) static POD_SPEC: Message = msg(
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

pub(super) static CONTAINER: Message = msg(
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
pub(super) static EPHEMERAL_CONTAINER: Message = msg(
    "EphemeralContainer",
    &[
        f(1, "ephemeralContainerCommon", Msg(&CONTAINER), Inline),
        f(2, "targetContainerName", Str, Opt),
    ],
);

pub(super) static CONTAINER_PORT: Message = msg(
    "ContainerPort",
    &[
        f(1, "name", Str, Opt),
        f(2, "hostPort", I32, Opt),
        f(3, "containerPort", I32, Req),
        f(4, "protocol", Str, Opt),
        f(5, "hostIP", Str, Opt),
    ],
);

pub(super) static CONTAINER_RESIZE_POLICY: Message = msg(
    "ContainerResizePolicy",
    &[
        f(1, "resourceName", Str, Req),
        f(2, "restartPolicy", Str, Req),
    ],
);

pub(super) static ENV_FROM_SOURCE: Message = msg(
    "EnvFromSource",
    &[
        f(1, "prefix", Str, Opt),
        f(2, "configMapRef", Msg(&OPTIONAL_LOCAL_REFERENCE), Ptr),
        f(3, "secretRef", Msg(&OPTIONAL_LOCAL_REFERENCE), Ptr),
    ],
);

/// `ConfigMapEnvSource` and `SecretEnvSource`.
pub(super) static OPTIONAL_LOCAL_REFERENCE: Message = msg(
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

pub(super) static ENV_VAR: Message = msg(
    "EnvVar",
    &[
        f(1, "name", Str, Req),
        f(2, "value", Str, Opt),
        f(3, "valueFrom", Msg(&ENV_VAR_SOURCE), Ptr),
    ],
);

pub(super) static ENV_VAR_SOURCE: Message = msg(
    "EnvVarSource",
    &[
        f(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR), Ptr),
        f(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR), Ptr),
        f(3, "configMapKeyRef", Msg(&KEY_SELECTOR), Ptr),
        f(4, "secretKeyRef", Msg(&KEY_SELECTOR), Ptr),
    ],
);

pub(super) static OBJECT_FIELD_SELECTOR: Message = msg(
    "ObjectFieldSelector",
    &[f(1, "apiVersion", Str, Opt), f(2, "fieldPath", Str, Req)],
);

pub(super) static RESOURCE_FIELD_SELECTOR: Message = msg(
    "ResourceFieldSelector",
    &[
        f(1, "containerName", Str, Opt),
        f(2, "resource", Str, Req),
        f(3, "divisor", Quantity, Opt),
    ],
);

/// `ConfigMapKeySelector` and `SecretKeySelector`.
pub(super) static KEY_SELECTOR: Message = msg(
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

pub(super) static RESOURCE_REQUIREMENTS: Message = msg(
    "ResourceRequirements",
    &[
        f(1, "limits", Quantity, Map),
        f(2, "requests", Quantity, Map),
        f(3, "claims", Msg(&RESOURCE_CLAIM), Rep),
    ],
);

pub(super) static RESOURCE_CLAIM: Message = msg(
    "ResourceClaim",
    &[f(1, "name", Str, Req), f(2, "request", Str, Opt)],
);

pub(super) static VOLUME_MOUNT: Message = msg(
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

pub(super) static VOLUME_DEVICE: Message = msg(
    "VolumeDevice",
    &[f(1, "name", Str, Req), f(2, "devicePath", Str, Req)],
);

pub(super) static PROBE: Message = msg(
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

pub(super) static PROBE_HANDLER: Message = msg(
    "ProbeHandler",
    &[
        f(1, "exec", Msg(&EXEC_ACTION), Ptr),
        f(2, "httpGet", Msg(&HTTP_GET_ACTION), Ptr),
        f(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION), Ptr),
        f(4, "grpc", Msg(&GRPC_ACTION), Ptr),
    ],
);

pub(super) static EXEC_ACTION: Message = msg("ExecAction", &[f(1, "command", Str, Rep)]);

pub(super) static HTTP_GET_ACTION: Message = msg(
    "HTTPGetAction",
    &[
        f(1, "path", Str, Opt),
        f(2, "port", IntOrString, Req),
        f(3, "host", Str, Opt),
        f(4, "scheme", Str, Opt),
        f(5, "httpHeaders", Msg(&HTTP_HEADER), Rep),
    ],
);

pub(super) static HTTP_HEADER: Message = msg(
    "HTTPHeader",
    &[f(1, "name", Str, Req), f(2, "value", Str, Req)],
);

pub(super) static TCP_SOCKET_ACTION: Message = msg(
    "TCPSocketAction",
    &[f(1, "port", IntOrString, Req), f(2, "host", Str, Opt)],
);

pub(super) static GRPC_ACTION: Message = msg(
    "GRPCAction",
    &[f(1, "port", I32, Req), f(2, "service", Str, Ptr)],
);

pub(super) static LIFECYCLE: Message = msg(
    "Lifecycle",
    &[
        f(1, "postStart", Msg(&LIFECYCLE_HANDLER), Ptr),
        f(2, "preStop", Msg(&LIFECYCLE_HANDLER), Ptr),
    ],
);

pub(super) static LIFECYCLE_HANDLER: Message = msg(
    "LifecycleHandler",
    &[
        f(1, "exec", Msg(&EXEC_ACTION), Ptr),
        f(2, "httpGet", Msg(&HTTP_GET_ACTION), Ptr),
        f(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION), Ptr),
        f(4, "sleep", Msg(&SLEEP_ACTION), Ptr),
    ],
);

pub(super) static SLEEP_ACTION: Message = msg("SleepAction", &[f(1, "seconds", I64, Req)]);

pub(super) static SECURITY_CONTEXT: Message = msg(
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

pub(super) static CAPABILITIES: Message = msg(
    "Capabilities",
    &[f(1, "add", Str, Rep), f(2, "drop", Str, Rep)],
);

pub(super) static SE_LINUX_OPTIONS: Message = msg(
    "SELinuxOptions",
    &[
        f(1, "user", Str, Opt),
        f(2, "role", Str, Opt),
        f(3, "type", Str, Opt),
        f(4, "level", Str, Opt),
    ],
);

pub(super) static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = msg(
    "WindowsSecurityContextOptions",
    &[
        f(1, "gmsaCredentialSpecName", Str, Ptr),
        f(2, "gmsaCredentialSpec", Str, Ptr),
        f(3, "runAsUserName", Str, Ptr),
        f(4, "hostProcess", Bool, Ptr),
    ],
);

/// `SeccompProfile` and `AppArmorProfile` share their layout.
pub(super) static PROFILE: Message = msg(
    "SeccompProfile",
    &[f(1, "type", Str, Req), f(2, "localhostProfile", Str, Ptr)],
);

pub(super) static POD_SECURITY_CONTEXT: Message = msg(
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

pub(super) static SYSCTL: Message =
    msg("Sysctl", &[f(1, "name", Str, Req), f(2, "value", Str, Req)]);

pub(super) static TOLERATION: Message = msg(
    "Toleration",
    &[
        f(1, "key", Str, Opt),
        f(2, "operator", Str, Opt),
        f(3, "value", Str, Opt),
        f(4, "effect", Str, Opt),
        f(5, "tolerationSeconds", I64, Ptr),
    ],
);

pub(super) static HOST_ALIAS: Message = msg(
    "HostAlias",
    &[f(1, "ip", Str, Req), f(2, "hostnames", Str, Rep)],
);

pub(super) static POD_DNS_CONFIG: Message = msg(
    "PodDNSConfig",
    &[
        f(1, "nameservers", Str, Rep),
        f(2, "searches", Str, Rep),
        f(3, "options", Msg(&POD_DNS_CONFIG_OPTION), Rep),
    ],
);

pub(super) static POD_DNS_CONFIG_OPTION: Message = msg(
    "PodDNSConfigOption",
    &[f(1, "name", Str, Opt), f(2, "value", Str, Ptr)],
);

pub(super) static POD_READINESS_GATE: Message =
    msg("PodReadinessGate", &[f(1, "conditionType", Str, Req)]);

pub(super) static POD_OS: Message = msg("PodOS", &[f(1, "name", Str, Req)]);

pub(super) static POD_SCHEDULING_GATE: Message =
    msg("PodSchedulingGate", &[f(1, "name", Str, Req)]);

pub(super) static POD_RESOURCE_CLAIM: Message = msg(
    "PodResourceClaim",
    &[
        f(1, "name", Str, Req),
        f(3, "resourceClaimName", Str, Ptr),
        f(4, "resourceClaimTemplateName", Str, Ptr),
    ],
);

pub(super) static TOPOLOGY_SPREAD_CONSTRAINT: Message = msg(
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

pub(super) static AFFINITY: Message = msg(
    "Affinity",
    &[
        f(1, "nodeAffinity", Msg(&NODE_AFFINITY), Ptr),
        f(2, "podAffinity", Msg(&POD_AFFINITY), Ptr),
        f(3, "podAntiAffinity", Msg(&POD_AFFINITY), Ptr),
    ],
);

pub(super) static NODE_AFFINITY: Message = msg(
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

pub(super) static NODE_SELECTOR: Message = msg(
    "NodeSelector",
    &[f(1, "nodeSelectorTerms", Msg(&NODE_SELECTOR_TERM), RepReq)],
);

pub(super) static NODE_SELECTOR_TERM: Message = msg(
    "NodeSelectorTerm",
    &[
        f(1, "matchExpressions", Msg(&NODE_SELECTOR_REQUIREMENT), Rep),
        f(2, "matchFields", Msg(&NODE_SELECTOR_REQUIREMENT), Rep),
    ],
);

pub(super) static NODE_SELECTOR_REQUIREMENT: Message = msg(
    "NodeSelectorRequirement",
    &[
        f(1, "key", Str, Req),
        f(2, "operator", Str, Req),
        f(3, "values", Str, Rep),
    ],
);

pub(super) static PREFERRED_SCHEDULING_TERM: Message = msg(
    "PreferredSchedulingTerm",
    &[
        f(1, "weight", I32, Req),
        f(2, "preference", Msg(&NODE_SELECTOR_TERM), Req),
    ],
);

/// `PodAffinity` and `PodAntiAffinity` share their layout.
pub(super) static POD_AFFINITY: Message = msg(
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

pub(super) static POD_AFFINITY_TERM: Message = msg(
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

pub(super) static WEIGHTED_POD_AFFINITY_TERM: Message = msg(
    "WeightedPodAffinityTerm",
    &[
        f(1, "weight", I32, Req),
        f(2, "podAffinityTerm", Msg(&POD_AFFINITY_TERM), Req),
    ],
);

// Volumes ---------------------------------------------------------------------------------------

pub(super) static VOLUME: Message = msg(
    "Volume",
    &[
        f(1, "name", Str, Req),
        f(2, "volumeSource", Msg(&VOLUME_SOURCE), Inline),
    ],
);

/// The volume sources kube-sim workloads use; the deprecated in-tree cloud and network
/// sources (numbers 3-5, 8, 9, 11-15, 17, 18, 20-25, 27) are reported as unknown fields.
pub(super) static VOLUME_SOURCE: Message = msg(
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

pub(super) static HOST_PATH_VOLUME_SOURCE: Message = msg(
    "HostPathVolumeSource",
    &[f(1, "path", Str, Req), f(2, "type", Str, Ptr)],
);

pub(super) static EMPTY_DIR_VOLUME_SOURCE: Message = msg(
    "EmptyDirVolumeSource",
    &[f(1, "medium", Str, Opt), f(2, "sizeLimit", Quantity, Ptr)],
);

pub(super) static SECRET_VOLUME_SOURCE: Message = msg(
    "SecretVolumeSource",
    &[
        f(1, "secretName", Str, Opt),
        f(2, "items", Msg(&KEY_TO_PATH), Rep),
        f(3, "defaultMode", I32, Ptr),
        f(4, "optional", Bool, Ptr),
    ],
);

pub(super) static KEY_TO_PATH: Message = msg(
    "KeyToPath",
    &[
        f(1, "key", Str, Req),
        f(2, "path", Str, Req),
        f(3, "mode", I32, Ptr),
    ],
);

pub(super) static NFS_VOLUME_SOURCE: Message = msg(
    "NFSVolumeSource",
    &[
        f(1, "server", Str, Req),
        f(2, "path", Str, Req),
        f(3, "readOnly", Bool, Opt),
    ],
);

pub(super) static PVC_VOLUME_SOURCE: Message = msg(
    "PersistentVolumeClaimVolumeSource",
    &[f(1, "claimName", Str, Req), f(2, "readOnly", Bool, Opt)],
);

pub(super) static DOWNWARD_API_VOLUME_SOURCE: Message = msg(
    "DownwardAPIVolumeSource",
    &[
        f(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE), Rep),
        f(2, "defaultMode", I32, Ptr),
    ],
);

pub(super) static DOWNWARD_API_VOLUME_FILE: Message = msg(
    "DownwardAPIVolumeFile",
    &[
        f(1, "path", Str, Req),
        f(2, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR), Ptr),
        f(3, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR), Ptr),
        f(4, "mode", I32, Ptr),
    ],
);

pub(super) static CONFIG_MAP_VOLUME_SOURCE: Message = msg(
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

pub(super) static PROJECTED_VOLUME_SOURCE: Message = msg(
    "ProjectedVolumeSource",
    &[
        f(1, "sources", Msg(&VOLUME_PROJECTION), RepReq),
        f(2, "defaultMode", I32, Ptr),
    ],
);

pub(super) static VOLUME_PROJECTION: Message = msg(
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
pub(super) static KEY_PROJECTION: Message = msg(
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

pub(super) static DOWNWARD_API_PROJECTION: Message = msg(
    "DownwardAPIProjection",
    &[f(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE), Rep)],
);

pub(super) static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = msg(
    "ServiceAccountTokenProjection",
    &[
        f(1, "audience", Str, Opt),
        f(2, "expirationSeconds", I64, Ptr),
        f(3, "path", Str, Req),
    ],
);

pub(super) static CLUSTER_TRUST_BUNDLE_PROJECTION: Message = msg(
    "ClusterTrustBundleProjection",
    &[
        f(1, "name", Str, Ptr),
        f(2, "signerName", Str, Ptr),
        f(3, "labelSelector", Msg(&LABEL_SELECTOR), Ptr),
        f(5, "optional", Bool, Ptr),
        f(4, "path", Str, Req),
    ],
);

pub(super) static CSI_VOLUME_SOURCE: Message = msg(
    "CSIVolumeSource",
    &[
        f(1, "driver", Str, Req),
        f(2, "readOnly", Bool, Ptr),
        f(3, "fsType", Str, Ptr),
        f(4, "volumeAttributes", Str, Map),
        f(5, "nodePublishSecretRef", Msg(&LOCAL_OBJECT_REFERENCE), Ptr),
    ],
);

pub(super) static EPHEMERAL_VOLUME_SOURCE: Message = msg(
    "EphemeralVolumeSource",
    &[f(1, "volumeClaimTemplate", Msg(&PVC_TEMPLATE), Ptr)],
);

pub(super) static PVC_TEMPLATE: Message = msg(
    "PersistentVolumeClaimTemplate",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&PVC_SPEC), Req),
    ],
);

pub(super) static PVC_SPEC: Message = msg(
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

pub(super) static VOLUME_RESOURCE_REQUIREMENTS: Message = msg(
    "VolumeResourceRequirements",
    &[
        f(1, "limits", Quantity, Map),
        f(2, "requests", Quantity, Map),
    ],
);

pub(super) static TYPED_LOCAL_OBJECT_REFERENCE: Message = msg(
    "TypedLocalObjectReference",
    &[
        f(1, "apiGroup", Str, Ptr),
        f(2, "kind", Str, Req),
        f(3, "name", Str, Req),
    ],
);

pub(super) static TYPED_OBJECT_REFERENCE: Message = msg(
    "TypedObjectReference",
    &[
        f(1, "apiGroup", Str, Ptr),
        f(2, "kind", Str, Req),
        f(3, "name", Str, Req),
        f(4, "namespace", Str, Ptr),
    ],
);

pub(super) static IMAGE_VOLUME_SOURCE: Message = msg(
    "ImageVolumeSource",
    &[f(1, "reference", Str, Opt), f(2, "pullPolicy", Str, Opt)],
);

// Pod status ------------------------------------------------------------------------------------

pub(super) static POD_STATUS: Message = msg(
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

pub(super) static POD_CONDITION: Message = msg(
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
pub(super) static IP_ENTRY: Message = msg("PodIP", &[f(1, "ip", Str, Req)]);

pub(super) static CONTAINER_STATUS: Message = msg(
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

pub(super) static CONTAINER_STATE: Message = msg(
    "ContainerState",
    &[
        f(1, "waiting", Msg(&CONTAINER_STATE_WAITING), Ptr),
        f(2, "running", Msg(&CONTAINER_STATE_RUNNING), Ptr),
        f(3, "terminated", Msg(&CONTAINER_STATE_TERMINATED), Ptr),
    ],
);

pub(super) static CONTAINER_STATE_WAITING: Message = msg(
    "ContainerStateWaiting",
    &[f(1, "reason", Str, Opt), f(2, "message", Str, Opt)],
);

pub(super) static CONTAINER_STATE_RUNNING: Message =
    msg("ContainerStateRunning", &[f(1, "startedAt", Time, Opt)]);

pub(super) static CONTAINER_STATE_TERMINATED: Message = msg(
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

pub(super) static VOLUME_MOUNT_STATUS: Message = msg(
    "VolumeMountStatus",
    &[
        f(1, "name", Str, Req),
        f(2, "mountPath", Str, Req),
        f(3, "readOnly", Bool, Opt),
        f(4, "recursiveReadOnly", Str, Ptr),
    ],
);

pub(super) static CONTAINER_USER: Message = msg(
    "ContainerUser",
    &[f(1, "linux", Msg(&LINUX_CONTAINER_USER), Ptr)],
);

pub(super) static LINUX_CONTAINER_USER: Message = msg(
    "LinuxContainerUser",
    &[
        f(1, "uid", I64, Req),
        f(2, "gid", I64, Req),
        f(3, "supplementalGroups", I64, Rep),
    ],
);

pub(super) static RESOURCE_STATUS: Message = msg(
    "ResourceStatus",
    &[
        f(1, "name", Str, Req),
        f(2, "resources", Msg(&RESOURCE_HEALTH), Rep),
    ],
);

pub(super) static RESOURCE_HEALTH: Message = msg(
    "ResourceHealth",
    &[f(1, "resourceID", Str, Req), f(2, "health", Str, Opt)],
);

pub(super) static POD_RESOURCE_CLAIM_STATUS: Message = msg(
    "PodResourceClaimStatus",
    &[f(1, "name", Str, Req), f(2, "resourceClaimName", Str, Ptr)],
);
