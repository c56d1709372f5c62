//! Message tables of core/v1 kinds other than Pod: ConfigMap, Secret, ServiceAccount,
//! Namespace, Event, Service, Node.

use super::*;

// ---------------------------------------------------------------------------------------------
// core/v1: simple kinds
// ---------------------------------------------------------------------------------------------

pub(super) static CONFIG_MAP: Message = msg(
    "ConfigMap",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(4, "immutable", Bool, Ptr),
        f(2, "data", Str, Map),
        f(3, "binaryData", Bytes, Map),
    ],
);

pub(super) static SECRET: Message = msg(
    "Secret",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(5, "immutable", Bool, Ptr),
        f(2, "data", Bytes, Map),
        f(4, "stringData", Str, Map),
        f(3, "type", Str, Opt),
    ],
);

pub(super) static SERVICE_ACCOUNT: Message = msg(
    "ServiceAccount",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "secrets", Msg(&OBJECT_REFERENCE), Rep),
        f(3, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE), Rep),
        f(4, "automountServiceAccountToken", Bool, Ptr),
    ],
);

pub(super) static NAMESPACE: Message = msg(
    "Namespace",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&NAMESPACE_SPEC), Opt),
        f(3, "status", Msg(&NAMESPACE_STATUS), Opt),
    ],
);

pub(super) static NAMESPACE_SPEC: Message = msg("NamespaceSpec", &[f(1, "finalizers", Str, Rep)]);

pub(super) static NAMESPACE_STATUS: Message = msg(
    "NamespaceStatus",
    &[
        f(1, "phase", Str, Opt),
        f(2, "conditions", Msg(&NAMESPACE_CONDITION), Rep),
    ],
);

pub(super) static NAMESPACE_CONDITION: Message = msg(
    "NamespaceCondition",
    &[
        f(1, "type", Str, Req),
        f(2, "status", Str, Req),
        f(4, "lastTransitionTime", Time, Opt),
        f(5, "reason", Str, Opt),
        f(6, "message", Str, Opt),
    ],
);

pub(super) static OBJECT_REFERENCE: Message = msg(
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

pub(super) static LOCAL_OBJECT_REFERENCE: Message =
    msg("LocalObjectReference", &[f(1, "name", Str, Opt)]);

pub(super) static EVENT: Message = msg(
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

pub(super) static EVENT_SOURCE: Message = msg(
    "EventSource",
    &[f(1, "component", Str, Opt), f(2, "host", Str, Opt)],
);

pub(super) static EVENT_SERIES: Message = msg(
    "EventSeries",
    &[
        f(1, "count", I32, Opt),
        f(2, "lastObservedTime", MicroTime, Opt),
    ],
);

// ---------------------------------------------------------------------------------------------
// core/v1: Service, Node
// ---------------------------------------------------------------------------------------------

pub(super) static SERVICE: Message = msg(
    "Service",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&SERVICE_SPEC), Opt),
        f(3, "status", Msg(&SERVICE_STATUS), Opt),
    ],
);

pub(super) static SERVICE_SPEC: Message = msg(
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

pub(super) static SERVICE_PORT: Message = msg(
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

pub(super) static SESSION_AFFINITY_CONFIG: Message = msg(
    "SessionAffinityConfig",
    &[f(1, "clientIP", Msg(&CLIENT_IP_CONFIG), Ptr)],
);

pub(super) static CLIENT_IP_CONFIG: Message =
    msg("ClientIPConfig", &[f(1, "timeoutSeconds", I32, Ptr)]);

pub(super) static SERVICE_STATUS: Message = msg(
    "ServiceStatus",
    &[
        f(1, "loadBalancer", Msg(&LOAD_BALANCER_STATUS), Opt),
        f(2, "conditions", Msg(&CONDITION), Rep),
    ],
);

pub(super) static LOAD_BALANCER_STATUS: Message = msg(
    "LoadBalancerStatus",
    &[f(1, "ingress", Msg(&LOAD_BALANCER_INGRESS), Rep)],
);

pub(super) static LOAD_BALANCER_INGRESS: Message = msg(
    "LoadBalancerIngress",
    &[
        f(1, "ip", Str, Opt),
        f(2, "hostname", Str, Opt),
        f(3, "ipMode", Str, Ptr),
        f(4, "ports", Msg(&PORT_STATUS), Rep),
    ],
);

pub(super) static PORT_STATUS: Message = msg(
    "PortStatus",
    &[
        f(1, "port", I32, Req),
        f(2, "protocol", Str, Req),
        f(3, "error", Str, Ptr),
    ],
);

pub(super) static NODE: Message = msg(
    "Node",
    &[
        f(1, "metadata", Msg(&OBJECT_META), Opt),
        f(2, "spec", Msg(&NODE_SPEC), Opt),
        f(3, "status", Msg(&NODE_STATUS), Opt),
    ],
);

pub(super) static NODE_SPEC: Message = msg(
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

pub(super) static TAINT: Message = msg(
    "Taint",
    &[
        f(1, "key", Str, Req),
        f(2, "value", Str, Opt),
        f(3, "effect", Str, Req),
        f(4, "timeAdded", Time, Ptr),
    ],
);

pub(super) static NODE_CONFIG_SOURCE: Message = msg(
    "NodeConfigSource",
    &[f(2, "configMap", Msg(&CONFIG_MAP_NODE_CONFIG_SOURCE), Ptr)],
);

pub(super) static CONFIG_MAP_NODE_CONFIG_SOURCE: Message = msg(
    "ConfigMapNodeConfigSource",
    &[
        f(1, "namespace", Str, Req),
        f(2, "name", Str, Req),
        f(3, "uid", Str, Opt),
        f(4, "resourceVersion", Str, Opt),
        f(5, "kubeletConfigKey", Str, Req),
    ],
);

pub(super) static NODE_STATUS: Message = msg(
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

pub(super) static NODE_CONDITION: Message = msg(
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

pub(super) static NODE_ADDRESS: Message = msg(
    "NodeAddress",
    &[f(1, "type", Str, Req), f(2, "address", Str, Req)],
);

pub(super) static NODE_DAEMON_ENDPOINTS: Message = msg(
    "NodeDaemonEndpoints",
    &[f(1, "kubeletEndpoint", Msg(&DAEMON_ENDPOINT), Opt)],
);

pub(super) static DAEMON_ENDPOINT: Message = msg("DaemonEndpoint", &[f(1, "Port", I32, Req)]);

pub(super) static NODE_SYSTEM_INFO: Message = msg(
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

pub(super) static CONTAINER_IMAGE: Message = msg(
    "ContainerImage",
    &[f(1, "names", Str, Rep), f(2, "sizeBytes", I64, Opt)],
);

pub(super) static ATTACHED_VOLUME: Message = msg(
    "AttachedVolume",
    &[f(1, "name", Str, Req), f(2, "devicePath", Str, Req)],
);

pub(super) static NODE_CONFIG_STATUS: Message = msg(
    "NodeConfigStatus",
    &[
        f(1, "assigned", Msg(&NODE_CONFIG_SOURCE), Ptr),
        f(2, "active", Msg(&NODE_CONFIG_SOURCE), Ptr),
        f(3, "lastKnownGood", Msg(&NODE_CONFIG_SOURCE), Ptr),
        f(4, "error", Str, Opt),
    ],
);

pub(super) static NODE_RUNTIME_HANDLER: Message = msg(
    "NodeRuntimeHandler",
    &[
        f(1, "name", Str, Req),
        f(2, "features", Msg(&NODE_RUNTIME_HANDLER_FEATURES), Ptr),
    ],
);

pub(super) static NODE_RUNTIME_HANDLER_FEATURES: Message = msg(
    "NodeRuntimeHandlerFeatures",
    &[
        f(1, "recursiveReadOnlyMounts", Bool, Ptr),
        f(2, "userNamespaces", Bool, Ptr),
    ],
);

pub(super) static NODE_FEATURES: Message = msg(
    "NodeFeatures",
    &[f(1, "supplementalGroupsPolicy", Bool, Ptr)],
);
