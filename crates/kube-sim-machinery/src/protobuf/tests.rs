//! Tests: hand-built protobuf fixtures emulating gogo-protobuf output (every value field written,
//! zero or not), error cases, and property tests with a descriptor-driven test-only encoder.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::schema::KINDS;
use super::*;

// ---------------------------------------------------------------------------------------------
// A tiny protobuf writer for fixtures
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct Pb(Vec<u8>);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Pb {
    fn new() -> Self {
        Pb(Vec::new())
    }
    fn tag(mut self, num: u32, wire: u8) -> Self {
        put_varint(&mut self.0, (u64::from(num) << 3) | u64::from(wire));
        self
    }
    fn varint(self, num: u32, v: u64) -> Self {
        let mut pb = self.tag(num, WIRE_VARINT);
        put_varint(&mut pb.0, v);
        pb
    }
    fn int(self, num: u32, v: i64) -> Self {
        self.varint(num, v as u64)
    }
    fn bool(self, num: u32, v: bool) -> Self {
        self.varint(num, u64::from(v))
    }
    fn bytes(self, num: u32, b: &[u8]) -> Self {
        let mut pb = self.tag(num, WIRE_LEN);
        put_varint(&mut pb.0, b.len() as u64);
        pb.0.extend_from_slice(b);
        pb
    }
    fn str(self, num: u32, s: &str) -> Self {
        self.bytes(num, s.as_bytes())
    }
    fn msg(self, num: u32, m: Pb) -> Self {
        self.bytes(num, &m.0)
    }
    /// A `map<string, string>` entry.
    fn entry(self, num: u32, key: &str, value: &str) -> Self {
        self.msg(num, Pb::new().str(1, key).str(2, value))
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// Magic prefix plus a `runtime.Unknown` envelope the way client-go writes it.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = Pb::new().str(1, api_version).str(2, kind);
    let unknown = Pb::new()
        .msg(1, type_meta)
        .bytes(2, raw)
        .str(3, "")
        .str(4, "");
    [&MAGIC[..], &unknown.0].concat()
}

/// `ObjectMeta` as gogo writes it: all value fields, including the empty ones and the zero
/// `creationTimestamp` (an empty message).
fn meta(name: &str, namespace: &str) -> Pb {
    Pb::new()
        .str(1, name)
        .str(2, "")
        .str(3, namespace)
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, Pb::new())
}

fn decode(api_version: &str, kind: &str, raw: Pb) -> DecodeOutput {
    match decode_k8s_protobuf(&envelope(api_version, kind, &raw.0)) {
        Ok(out) => out,
        Err(e) => panic!("decode failed: {e}"),
    }
}

fn decode_err(api_version: &str, kind: &str, raw: &[u8]) -> ProtobufError {
    match decode_k8s_protobuf(&envelope(api_version, kind, raw)) {
        Ok(out) => panic!("expected an error, got {}", out.object),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures of the kinds kubectl sends
// ---------------------------------------------------------------------------------------------

#[test]
fn config_map_with_data_labels_and_binary_data() {
    let raw = Pb::new()
        .msg(
            1,
            meta("game-config", "default")
                .entry(11, "app", "demo")
                .entry(11, "tier", "x"),
        )
        .entry(2, "a", "1")
        .entry(2, "b", "two")
        .msg(3, Pb::new().str(1, "bin").bytes(2, &[0, 1, 2, 255]));
    let out = decode("v1", "ConfigMap", raw);
    assert_eq!(
        out.object,
        json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {
                "name": "game-config",
                "namespace": "default",
                "creationTimestamp": null,
                "labels": {"app": "demo", "tier": "x"}
            },
            "data": {"a": "1", "b": "two"},
            "binaryData": {"bin": "AAEC/w=="}
        })
    );
    assert!(out.unknown_fields.is_empty());
}

#[test]
fn config_map_immutable_false_is_kept_because_it_is_a_pointer() {
    let raw = Pb::new().msg(1, meta("c", "")).bool(4, false);
    let out = decode("v1", "ConfigMap", raw);
    assert_eq!(
        out.object,
        json!({"kind": "ConfigMap", "apiVersion": "v1",
               "metadata": {"name": "c", "creationTimestamp": null}, "immutable": false})
    );
}

#[test]
fn secret_data_is_base64_and_type_is_kept() {
    let raw = Pb::new()
        .msg(1, meta("s", "ns"))
        .msg(2, Pb::new().str(1, "password").bytes(2, b"hunter2"))
        .msg(2, Pb::new().str(1, "empty").bytes(2, b""))
        .str(3, "Opaque");
    let out = decode("v1", "Secret", raw);
    assert_eq!(
        out.object,
        json!({"kind": "Secret", "apiVersion": "v1",
               "metadata": {"name": "s", "namespace": "ns", "creationTimestamp": null},
               "data": {"password": "aHVudGVyMg==", "empty": ""}, "type": "Opaque"})
    );
}

#[test]
fn cluster_role_binding_with_user_and_service_account_subjects() {
    let subject = |kind: &str, group: &str, name: &str, namespace: &str| {
        Pb::new()
            .str(1, kind)
            .str(2, group)
            .str(3, name)
            .str(4, namespace)
    };
    let raw = Pb::new()
        .msg(1, meta("crb", ""))
        .msg(2, subject("User", "rbac.authorization.k8s.io", "alice", ""))
        .msg(2, subject("ServiceAccount", "", "sa", "ns"))
        .msg(
            3,
            Pb::new()
                .str(1, "rbac.authorization.k8s.io")
                .str(2, "ClusterRole")
                .str(3, "view"),
        );
    let out = decode("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", raw);
    assert_eq!(
        out.object,
        json!({
            "kind": "ClusterRoleBinding",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "crb", "creationTimestamp": null},
            "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
        })
    );
}

#[test]
fn role_without_rules_has_null_rules_like_encoding_json() {
    let out = decode(
        "rbac.authorization.k8s.io/v1",
        "Role",
        Pb::new().msg(1, meta("r", "ns")),
    );
    assert_eq!(out.object["rules"], Value::Null);
    let rule = Pb::new()
        .str(1, "get")
        .str(1, "list")
        .str(2, "")
        .str(3, "pods");
    let out = decode(
        "rbac.authorization.k8s.io/v1",
        "Role",
        Pb::new().msg(1, meta("r", "ns")).msg(2, rule),
    );
    assert_eq!(
        out.object["rules"],
        json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}])
    );
}

#[test]
fn self_subject_access_review_with_resource_attributes() {
    let attributes = Pb::new()
        .str(1, "default")
        .str(2, "get")
        .str(3, "")
        .str(4, "")
        .str(5, "pods")
        .str(6, "")
        .str(7, "");
    let status = Pb::new()
        .bool(1, false)
        .str(2, "")
        .str(3, "")
        .bool(4, false);
    let raw = Pb::new()
        .msg(1, meta("", ""))
        .msg(2, Pb::new().msg(1, attributes))
        .msg(3, status);
    let out = decode("authorization.k8s.io/v1", "SelfSubjectAccessReview", raw);
    assert_eq!(
        out.object,
        json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
            "status": {"allowed": false}
        })
    );
}

#[test]
fn self_subject_access_review_with_selectors_and_non_resource_attributes() {
    let field_selector = Pb::new().str(1, "").msg(
        2,
        Pb::new()
            .str(1, "spec.nodeName")
            .str(2, "In")
            .str(3, "node-1"),
    );
    let label_selector = Pb::new().str(1, "app=web");
    let attributes = Pb::new()
        .str(2, "list")
        .str(5, "pods")
        .msg(8, field_selector)
        .msg(9, label_selector);
    let raw = Pb::new().msg(1, meta("", "")).msg(
        2,
        Pb::new()
            .msg(1, attributes)
            .msg(2, Pb::new().str(1, "/healthz").str(2, "get")),
    );
    let out = decode("authorization.k8s.io/v1", "SelfSubjectAccessReview", raw);
    assert_eq!(
        out.object["spec"],
        json!({
            "resourceAttributes": {
                "verb": "list", "resource": "pods",
                "fieldSelector": {"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["node-1"]}]},
                "labelSelector": {"rawSelector": "app=web"}
            },
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"}
        })
    );
    assert_eq!(out.object["status"], json!({"allowed": false}));
}

#[test]
fn subject_access_review_extra_values_are_plain_arrays() {
    let spec = Pb::new()
        .str(3, "alice")
        .str(4, "devs")
        .msg(
            5,
            Pb::new()
                .str(1, "scopes")
                .msg(2, Pb::new().str(1, "a").str(1, "b")),
        )
        .msg(5, Pb::new().str(1, "empty").msg(2, Pb::new()))
        .str(6, "uid-1");
    let out = decode(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        Pb::new().msg(2, spec),
    );
    assert_eq!(
        out.object["spec"],
        json!({"user": "alice", "groups": ["devs"], "extra": {"scopes": ["a", "b"], "empty": null}, "uid": "uid-1"})
    );
}

#[test]
fn self_subject_rules_review_status_defaults() {
    let out = decode(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        Pb::new().msg(2, Pb::new().str(1, "default")),
    );
    assert_eq!(
        out.object,
        json!({
            "kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"namespace": "default"},
            "status": {"resourceRules": null, "nonResourceRules": null, "incomplete": false}
        })
    );
}

#[test]
fn token_request_with_bound_object() {
    let spec = Pb::new()
        .str(1, "https://kubernetes.default.svc")
        .msg(
            3,
            Pb::new()
                .str(1, "Pod")
                .str(2, "v1")
                .str(3, "web-0")
                .str(4, "8c3f"),
        )
        .int(4, 600);
    let status = Pb::new().str(1, "").msg(2, Pb::new());
    let raw = Pb::new()
        .msg(1, meta("builder", "ci"))
        .msg(2, spec)
        .msg(3, status);
    let out = decode("authentication.k8s.io/v1", "TokenRequest", raw);
    assert_eq!(
        out.object,
        json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": "builder", "namespace": "ci", "creationTimestamp": null},
            "spec": {
                "audiences": ["https://kubernetes.default.svc"],
                "expirationSeconds": 600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "8c3f"}
            },
            "status": {"token": "", "expirationTimestamp": null}
        })
    );
}

#[test]
fn token_review_and_self_subject_review() {
    let out = decode(
        "authentication.k8s.io/v1",
        "TokenReview",
        Pb::new().msg(2, Pb::new().str(1, "tok")),
    );
    assert_eq!(out.object["spec"], json!({"token": "tok"}));
    assert_eq!(out.object["status"], json!({"user": {}}));
    let out = decode(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        Pb::new().msg(1, meta("", "")),
    );
    assert_eq!(out.object["status"], json!({"userInfo": {}}));
}

fn container_fixture() -> Pb {
    let env_plain = Pb::new().str(1, "MODE").str(2, "fast");
    let env_field = Pb::new().str(1, "POD_NAME").str(2, "").msg(
        3,
        Pb::new().msg(1, Pb::new().str(1, "v1").str(2, "metadata.name")),
    );
    let env_secret = Pb::new().str(1, "PASSWORD").msg(
        3,
        Pb::new().msg(
            4,
            Pb::new().msg(1, Pb::new().str(1, "db")).str(2, "password"),
        ),
    );
    let env_resource = Pb::new().str(1, "CPU").msg(
        3,
        Pb::new().msg(
            2,
            Pb::new()
                .str(1, "")
                .str(2, "limits.cpu")
                .msg(3, Pb::new().str(1, "1m")),
        ),
    );
    let port = Pb::new()
        .str(1, "")
        .int(2, 0)
        .int(3, 8080)
        .str(4, "TCP")
        .str(5, "");
    let mount = Pb::new()
        .str(1, "token")
        .bool(2, true)
        .str(3, "/var/run/secrets/tokens")
        .str(4, "")
        .str(6, "");
    let resources = Pb::new()
        .msg(
            1,
            Pb::new().str(1, "memory").msg(2, Pb::new().str(1, "128Mi")),
        )
        .msg(2, Pb::new().str(1, "cpu").msg(2, Pb::new().str(1, "100m")));
    let probe = Pb::new()
        .msg(
            1,
            Pb::new().msg(
                2,
                Pb::new()
                    .str(1, "/healthz")
                    .msg(2, Pb::new().int(1, 1).int(2, 0).str(3, "http")),
            ),
        )
        .int(2, 0)
        .int(4, 10);
    Pb::new()
        .str(1, "app")
        .str(2, "nginx:1.27")
        .str(3, "sleep")
        .str(4, "3600")
        .str(5, "")
        .msg(6, port)
        .msg(7, env_plain)
        .msg(7, env_field)
        .msg(7, env_secret)
        .msg(7, env_resource)
        .msg(8, resources)
        .msg(9, mount)
        .msg(11, probe)
        .str(13, "/dev/termination-log")
        .str(14, "IfNotPresent")
        .bool(16, false)
        .bool(17, false)
        .bool(18, false)
        .str(20, "File")
}

#[test]
fn pod_with_container_env_projected_volume_and_node_name() {
    let token_source = Pb::new().msg(
        4,
        Pb::new().str(1, "vault").int(2, 3600).str(3, "vault-token"),
    );
    let config_map_source = Pb::new().msg(
        3,
        Pb::new()
            .msg(1, Pb::new().str(1, "kube-root-ca.crt"))
            .msg(2, Pb::new().str(1, "ca.crt").str(2, "ca.crt")),
    );
    let downward_source = Pb::new().msg(
        2,
        Pb::new().msg(
            1,
            Pb::new()
                .str(1, "namespace")
                .msg(2, Pb::new().str(1, "v1").str(2, "metadata.namespace")),
        ),
    );
    let projected = Pb::new()
        .msg(1, token_source)
        .msg(1, config_map_source)
        .msg(1, downward_source)
        .int(2, 420);
    let volume_token = Pb::new()
        .str(1, "token")
        .msg(2, Pb::new().msg(26, projected));
    let volume_scratch = Pb::new()
        .str(1, "scratch")
        .msg(2, Pb::new().msg(2, Pb::new().str(1, "Memory")));
    let volume_host = Pb::new().str(1, "host").msg(
        2,
        Pb::new().msg(1, Pb::new().str(1, "/var/log").str(2, "Directory")),
    );
    let toleration = Pb::new()
        .str(1, "node.kubernetes.io/not-ready")
        .str(2, "Exists")
        .str(3, "")
        .str(4, "NoExecute")
        .int(5, 300);
    let spec = Pb::new()
        .msg(1, volume_token)
        .msg(1, volume_scratch)
        .msg(1, volume_host)
        .msg(2, container_fixture())
        .str(3, "Never")
        .int(4, 30)
        .str(6, "ClusterFirst")
        .entry(7, "disktype", "ssd")
        .str(8, "workload")
        .str(9, "")
        .str(10, "node-1")
        .bool(11, false)
        .bool(12, false)
        .bool(13, false)
        .str(16, "")
        .str(17, "")
        .str(19, "default-scheduler")
        .bool(21, false)
        .msg(22, toleration)
        .str(24, "")
        .int(25, 0)
        .bool(30, true);
    let status = Pb::new()
        .str(1, "")
        .str(3, "")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .str(9, "")
        .str(11, "")
        .str(14, "");
    let raw = Pb::new()
        .msg(1, meta("web", "default").entry(11, "run", "web"))
        .msg(2, spec)
        .msg(3, status);
    let out = decode("v1", "Pod", raw);
    assert_eq!(
        out.object,
        json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": "web", "namespace": "default", "creationTimestamp": null,
                "labels": {"run": "web"}
            },
            "spec": {
                "volumes": [
                    {"name": "token", "projected": {
                        "sources": [
                            {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 3600, "path": "vault-token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                        ],
                        "defaultMode": 420
                    }},
                    {"name": "scratch", "emptyDir": {"medium": "Memory"}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}}
                ],
                "containers": [{
                    "name": "app",
                    "image": "nginx:1.27",
                    "command": ["sleep"],
                    "args": ["3600"],
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "MODE", "value": "fast"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}
                    ],
                    "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}},
                    "volumeMounts": [{"name": "token", "readOnly": true, "mountPath": "/var/run/secrets/tokens"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent"
                }],
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "nodeSelector": {"disktype": "ssd"},
                "serviceAccountName": "workload",
                "automountServiceAccountToken": false,
                "nodeName": "node-1",
                "schedulerName": "default-scheduler",
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                "priority": 0,
                "enableServiceLinks": true
            },
            "status": {}
        })
    );
    assert!(out.unknown_fields.is_empty(), "{:?}", out.unknown_fields);
}

#[test]
fn pod_with_an_unsupported_volume_source_reports_it() {
    // gcePersistentDisk (3) is not in the table.
    let volume = Pb::new()
        .str(1, "disk")
        .msg(2, Pb::new().msg(3, Pb::new().str(1, "pd-1")));
    let raw = Pb::new().msg(2, Pb::new().msg(1, volume));
    let out = decode("v1", "Pod", raw);
    assert_eq!(out.object["spec"]["volumes"], json!([{"name": "disk"}]));
    assert_eq!(
        out.unknown_fields,
        vec![UnknownField {
            path: "spec.volumes[0].#3".to_string(),
            number: 3,
            wire_type: 2
        }]
    );
}

#[test]
fn deployment_keeps_zero_replicas_and_writes_value_structs() {
    let template = Pb::new()
        .msg(1, meta("", "").entry(11, "app", "web"))
        .msg(2, Pb::new().msg(2, Pb::new().str(1, "web").str(2, "nginx")));
    let strategy = Pb::new().str(1, "RollingUpdate").msg(
        2,
        Pb::new()
            .msg(1, Pb::new().int(1, 1).int(2, 0).str(3, "25%"))
            .msg(2, Pb::new().int(1, 0).int(2, 1).str(3, "")),
    );
    let spec = Pb::new()
        .int(1, 0)
        .msg(2, Pb::new().entry(1, "app", "web"))
        .msg(3, template)
        .msg(4, strategy)
        .int(5, 0)
        .bool(7, false);
    let raw = Pb::new()
        .msg(1, meta("web", "default"))
        .msg(2, spec)
        .msg(3, Pb::new());
    let out = decode("apps/v1", "Deployment", raw);
    assert_eq!(
        out.object,
        json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {}}]}
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}}
            },
            "status": {}
        })
    );
}

#[test]
fn namespace_service_account_and_service() {
    let out = decode("v1", "Namespace", Pb::new().msg(1, meta("team-a", "")));
    assert_eq!(
        out.object,
        json!({"kind": "Namespace", "apiVersion": "v1",
               "metadata": {"name": "team-a", "creationTimestamp": null}, "spec": {}, "status": {}})
    );
    let out = decode(
        "v1",
        "ServiceAccount",
        Pb::new()
            .msg(1, meta("builder", "ci"))
            .msg(3, Pb::new().str(1, "regcred"))
            .bool(4, false),
    );
    assert_eq!(
        out.object,
        json!({"kind": "ServiceAccount", "apiVersion": "v1",
               "metadata": {"name": "builder", "namespace": "ci", "creationTimestamp": null},
               "imagePullSecrets": [{"name": "regcred"}], "automountServiceAccountToken": false})
    );
    let port = Pb::new()
        .str(1, "80-8080")
        .str(2, "TCP")
        .int(3, 80)
        .msg(4, Pb::new().int(1, 0).int(2, 8080).str(3, ""))
        .int(5, 0);
    let out = decode(
        "v1",
        "Service",
        Pb::new()
            .msg(1, meta("web", "default"))
            .msg(
                2,
                Pb::new()
                    .msg(1, port)
                    .entry(2, "app", "web")
                    .str(3, "")
                    .str(4, "ClusterIP"),
            )
            .msg(3, Pb::new().msg(1, Pb::new())),
    );
    assert_eq!(
        out.object,
        json!({"kind": "Service", "apiVersion": "v1",
               "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
               "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                        "selector": {"app": "web"}, "type": "ClusterIP"},
               "status": {"loadBalancer": {}}})
    );
}

#[test]
fn node_and_event_value_structs() {
    let out = decode("v1", "Node", Pb::new().msg(1, meta("n1", "")));
    assert_eq!(
        out.object["status"],
        json!({
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                         "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
                         "kubeProxyVersion": "", "operatingSystem": "", "architecture": ""}
        })
    );
    let event = Pb::new()
        .msg(1, meta("e1", "default"))
        .msg(2, Pb::new().str(1, "Pod").str(3, "web"))
        .str(3, "Started")
        .msg(6, Pb::new().int(1, 1_795_220_114))
        .msg(10, Pb::new().int(1, 1_795_220_114).int(2, 123_456_789))
        .int(8, 1)
        .str(14, "kubelet");
    let out = decode("v1", "Event", event);
    assert_eq!(
        out.object,
        json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {"name": "e1", "namespace": "default", "creationTimestamp": null},
            "involvedObject": {"kind": "Pod", "name": "web"},
            "reason": "Started",
            "source": {},
            "firstTimestamp": "2026-11-21T00:15:14Z",
            "lastTimestamp": null,
            "count": 1,
            "eventTime": "2026-11-21T00:15:14.123456Z",
            "reportingComponent": "kubelet",
            "reportingInstance": ""
        })
    );
}

#[test]
fn lease_micro_times_and_pointer_ints() {
    let spec = Pb::new()
        .str(1, "holder-1")
        .int(2, 15)
        .msg(3, Pb::new().int(1, 1_709_251_199).int(2, 5_000))
        .int(5, 0);
    let out = decode(
        "coordination.k8s.io/v1",
        "Lease",
        Pb::new().msg(1, meta("l", "kube-system")).msg(2, spec),
    );
    assert_eq!(
        out.object["spec"],
        json!({"holderIdentity": "holder-1", "leaseDurationSeconds": 15,
               "acquireTime": "2024-02-29T23:59:59.000005Z", "leaseTransitions": 0})
    );
}

#[test]
fn delete_options_and_eviction() {
    let options = Pb::new()
        .int(1, 0)
        .msg(2, Pb::new().str(1, "uid-1"))
        .str(4, "Foreground")
        .str(5, "All");
    for api_version in ["meta.k8s.io/v1", "v1", "apps/v1"] {
        let out = decode(api_version, "DeleteOptions", options.clone());
        assert_eq!(
            out.object,
            json!({"kind": "DeleteOptions", "apiVersion": api_version, "gracePeriodSeconds": 0,
                   "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]})
        );
    }
    let out = decode(
        "policy/v1",
        "Eviction",
        Pb::new().msg(1, meta("web", "default")).msg(2, options),
    );
    assert_eq!(out.object["deleteOptions"]["gracePeriodSeconds"], json!(0));
    assert_eq!(out.object["metadata"]["name"], json!("web"));
}

#[test]
fn managed_fields_embed_fields_v1_json() {
    let entry = Pb::new()
        .str(1, "kubectl-client-side-apply")
        .str(2, "Update")
        .str(3, "v1")
        .msg(4, Pb::new().int(1, 1_795_220_114))
        .str(6, "FieldsV1")
        .msg(7, Pb::new().bytes(1, br#"{"f:data":{"f:a":{}}}"#))
        .str(8, "");
    let owner = Pb::new()
        .str(1, "Deployment")
        .str(3, "web")
        .str(4, "u-1")
        .str(5, "apps/v1")
        .bool(6, true);
    let raw = Pb::new().msg(
        1,
        meta("c", "ns")
            .msg(13, owner)
            .str(14, "example.com/cleanup")
            .msg(17, entry)
            .msg(9, Pb::new().int(1, 1_795_220_114))
            .int(10, 0),
    );
    let out = decode("v1", "ConfigMap", raw);
    assert_eq!(
        out.object["metadata"],
        json!({
            "name": "c", "namespace": "ns", "creationTimestamp": null,
            "deletionTimestamp": "2026-11-21T00:15:14Z",
            "deletionGracePeriodSeconds": 0,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-1", "controller": true}],
            "finalizers": ["example.com/cleanup"],
            "managedFields": [{
                "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                "time": "2026-11-21T00:15:14Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}}}
            }]
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Wire semantics
// ---------------------------------------------------------------------------------------------

#[test]
fn repeated_int64_accepts_packed_and_unpacked() {
    let mut packed = Vec::new();
    for v in [1000u64, 2000] {
        put_varint(&mut packed, v);
    }
    let security = Pb::new().int(4, 5).bytes(4, &packed).int(4, -1);
    let raw = Pb::new().msg(2, Pb::new().msg(14, security));
    let out = decode("v1", "Pod", raw);
    assert_eq!(
        out.object["spec"]["securityContext"],
        json!({"supplementalGroups": [5, 1000, 2000, -1]})
    );
}

#[test]
fn negative_int32_uses_the_low_32_bits() {
    let raw = Pb::new().msg(2, Pb::new().int(25, -7));
    let out = decode("v1", "Pod", raw);
    assert_eq!(out.object["spec"]["priority"], json!(-7));
}

#[test]
fn repeated_singular_messages_merge_and_scalars_take_the_last_value() {
    let raw = Pb::new()
        .msg(1, Pb::new().str(1, "first").entry(11, "a", "1"))
        .msg(
            1,
            Pb::new()
                .str(3, "ns")
                .entry(11, "b", "2")
                .entry(11, "a", "3"),
        )
        .msg(1, Pb::new().str(1, "last"));
    let out = decode("v1", "ConfigMap", raw);
    assert_eq!(
        out.object["metadata"],
        json!({"name": "last", "namespace": "ns", "creationTimestamp": null, "labels": {"a": "3", "b": "2"}})
    );
}

#[test]
fn unknown_fields_are_skipped_by_wire_type_and_reported() {
    let group = Pb::new()
        .tag(60, WIRE_START_GROUP)
        .varint(1, 5)
        .tag(61, WIRE_START_GROUP)
        .str(2, "x")
        .tag(61, WIRE_END_GROUP)
        .tag(60, WIRE_END_GROUP);
    let raw = Pb::new()
        .msg(1, meta("c", "").varint(42, 7))
        .entry(2, "k", "v")
        .tag(70, WIRE_FIXED64)
        .raw(&[1, 2, 3, 4, 5, 6, 7, 8])
        .tag(71, WIRE_FIXED32)
        .raw(&[1, 2, 3, 4])
        .str(99, "future")
        .raw(&group.0)
        .msg(2, Pb::new().str(1, "k2").str(2, "v2").varint(3, 1));
    let out = decode("v1", "ConfigMap", raw);
    assert_eq!(out.object["data"], json!({"k": "v", "k2": "v2"}));
    let paths: Vec<String> = out.unknown_fields.iter().map(ToString::to_string).collect();
    assert_eq!(
        paths,
        ["#60", "#70", "#71", "#99", "data.#3", "metadata.#42"]
    );
    assert_eq!(out.unknown_fields[0].wire_type, WIRE_START_GROUP);
    assert_eq!(
        strict_decoding_message(&out.unknown_fields[4..]),
        "strict decoding error: unknown field \"data.#3\", unknown field \"metadata.#42\""
    );
}

#[test]
fn time_and_quantity_and_int_or_string_values() {
    let cases: &[(i64, i64, bool, Option<&str>)] = &[
        (1_795_220_114, 0, false, Some("2026-11-21T00:15:14Z")),
        (
            1_795_220_114,
            999_999_999,
            false,
            Some("2026-11-21T00:15:14Z"),
        ),
        (
            1_795_220_114,
            999_999_999,
            true,
            Some("2026-11-21T00:15:14.999999Z"),
        ),
        (0, 0, false, Some("1970-01-01T00:00:00Z")),
        (-1, 0, false, Some("1969-12-31T23:59:59Z")),
        (0, -1, true, Some("1969-12-31T23:59:59.999999Z")),
        (1_709_251_199, 0, false, Some("2024-02-29T23:59:59Z")),
        (GO_ZERO_SECONDS, 0, false, None),
        (MIN_SECONDS, 0, false, Some("0000-01-01T00:00:00Z")),
        (MAX_SECONDS, 0, false, Some("9999-12-31T23:59:59Z")),
    ];
    for &(seconds, nanos, micro, want) in cases {
        assert_eq!(
            format_time(seconds, nanos, micro),
            Ok(want.map(str::to_string)),
            "{seconds} {nanos}"
        );
    }
    assert!(format_time(MAX_SECONDS + 1, 0, false).is_err());
    assert!(format_time(i64::MAX, i64::MAX, false).is_err());

    for ok in [
        "0", "1", "100m", "1.5Gi", "-2", "+3k", "1e3", "2E-2", ".5", "5.", "1Ei",
    ] {
        assert_eq!(check_quantity(ok), Ok(()), "{ok}");
    }
    for (bad, message) in [
        ("", QUANTITY_FORMAT_ERR),
        ("abc", QUANTITY_FORMAT_ERR),
        ("1Gb", QUANTITY_FORMAT_ERR),
        ("1K", "unable to parse quantity's suffix"),
        ("1ee", QUANTITY_FORMAT_ERR),
        (".", QUANTITY_FORMAT_ERR),
    ] {
        assert_eq!(check_quantity(bad), Err(message.to_string()), "{bad}");
    }

    // A malformed quantity inside a Pod.
    let resources = Pb::new().msg(1, Pb::new().str(1, "cpu").msg(2, Pb::new().str(1, "lots")));
    let container = Pb::new().str(1, "c").msg(8, resources);
    let err = decode_err(
        "v1",
        "Pod",
        &Pb::new().msg(2, Pb::new().msg(2, container)).0,
    );
    assert_eq!(
        err,
        ProtobufError::InvalidValue {
            path: "spec.containers[0].resources.limits[cpu]".to_string(),
            message: QUANTITY_FORMAT_ERR.to_string()
        }
    );

    // IntOrString with an impossible type.
    let port = Pb::new().str(1, "p").int(3, 80).msg(4, Pb::new().int(1, 2));
    let err = decode_err("v1", "Service", &Pb::new().msg(2, Pb::new().msg(1, port)).0);
    assert_eq!(
        err.to_string(),
        "invalid value at spec.ports[0].targetPort: impossible IntOrString.Type"
    );

    // FieldsV1 that is not JSON.
    let entry = Pb::new().msg(7, Pb::new().bytes(1, b"{nope"));
    let err = decode_err(
        "v1",
        "ConfigMap",
        &Pb::new().msg(1, Pb::new().msg(17, entry)).0,
    );
    assert!(
        matches!(err, ProtobufError::InvalidValue { ref path, .. } if path == "metadata.managedFields[0].fieldsV1")
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn envelope_errors_use_upstream_texts() {
    assert_eq!(
        decode_k8s_protobuf(b"").unwrap_err().to_string(),
        "empty data"
    );
    assert_eq!(
        decode_k8s_protobuf(b"{\"kind\":\"Pod\"}")
            .unwrap_err()
            .to_string(),
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    );
    assert_eq!(
        decode_k8s_protobuf(b"k8s").unwrap_err(),
        ProtobufError::MissingMagic
    );
    assert_eq!(
        decode_k8s_protobuf(&MAGIC).unwrap_err().to_string(),
        "empty body"
    );
    assert_eq!(
        decode_k8s_protobuf(&envelope("v1", "", &[]))
            .unwrap_err()
            .to_string(),
        "Object 'Kind' is missing in 'runtime.TypeMeta{APIVersion:\"v1\", Kind:\"\"}'"
    );
    assert_eq!(
        decode_k8s_protobuf(&envelope("apps/", "Deployment", &[]))
            .unwrap_err()
            .to_string(),
        "Object 'apiVersion' is missing in 'runtime.TypeMeta{APIVersion:\"apps/\", Kind:\"Deployment\"}'"
    );
    let err = decode_k8s_protobuf(&envelope("batch/v1", "Job", &[])).unwrap_err();
    assert_eq!(
        err,
        ProtobufError::UnsupportedKind {
            api_version: "batch/v1".to_string(),
            kind: "Job".to_string()
        }
    );
    assert!(
        err.to_string()
            .starts_with("no kind \"Job\" is registered for version \"batch/v1\"")
    );
    // A truncated envelope.
    let unknown = Pb::new()
        .msg(1, Pb::new().str(1, "v1").str(2, "ConfigMap"))
        .msg(2, Pb::new().msg(1, meta("c", "")));
    let mut body = [&MAGIC[..], &unknown.0].concat();
    body.truncate(body.len() - 3);
    assert!(matches!(
        decode_k8s_protobuf(&body),
        Err(ProtobufError::Malformed { ref path, .. }) if path == "<envelope>.raw"
    ));
}

#[test]
fn malformed_objects_are_clear_errors() {
    let cases: &[(&[u8], &str)] = &[
        // Truncated varint tag.
        (&[0x80], "proto: unexpected EOF (at <root>)"),
        // metadata claims 5 bytes, 1 present.
        (&[0x0a, 0x05, 0x01], "proto: unexpected EOF (at metadata)"),
        // metadata sent as a varint.
        (
            &[0x08, 0x01],
            "proto: wrong wireType = 0 for field metadata (number 1), expected 2 (at metadata)",
        ),
        // Field number 0.
        (&[0x00, 0x01], "proto: illegal tag 0 (at <root>)"),
        // Wire type 7.
        (&[0x0f], "proto: illegal wireType 7 (at <root>)"),
        // A stray end group.
        (
            &[0x0c],
            "proto: unexpected end group for field 1 in ConfigMap (at <root>)",
        ),
        // An unterminated unknown group.
        (
            &[0xa3, 0x06, 0x08, 0x01],
            "proto: unterminated group for field 100 (at #100)",
        ),
        // An 11-byte varint.
        (
            &[
                0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            "proto: integer overflow (at #10)",
        ),
    ];
    for (raw, want) in cases {
        let err = decode_err("v1", "ConfigMap", raw);
        assert_eq!(err.to_string(), *want, "{raw:?}");
    }
    // Invalid UTF-8 in a string field.
    let raw = Pb::new().msg(1, Pb::new().bytes(1, &[0x66, 0xff]));
    assert_eq!(
        decode_err("v1", "ConfigMap", &raw.0).to_string(),
        "proto: invalid UTF-8 in string field (at metadata.name)"
    );
    let raw = Pb::new().msg(2, Pb::new().bytes(1, &[0xc3]).str(2, "v"));
    assert_eq!(
        decode_err("v1", "ConfigMap", &raw.0).to_string(),
        "proto: invalid UTF-8 in string field (at data)"
    );
}

#[test]
fn nesting_is_capped() {
    let mut raw = Vec::new();
    for _ in 0..(MAX_DEPTH + 10) {
        raw.extend_from_slice(&[0xa3, 0x06]); // start group 100
    }
    for _ in 0..(MAX_DEPTH + 10) {
        raw.extend_from_slice(&[0xa4, 0x06]); // end group 100
    }
    assert!(matches!(
        decode_err("v1", "ConfigMap", &raw),
        ProtobufError::TooDeep { .. }
    ));
    // Moderate nesting is fine.
    let mut raw = Vec::new();
    for _ in 0..10 {
        raw.extend_from_slice(&[0xa3, 0x06]);
    }
    for _ in 0..10 {
        raw.extend_from_slice(&[0xa4, 0x06]);
    }
    let out = decode_object("v1", "ConfigMap", &raw).map_err(|e| e.to_string());
    assert_eq!(out.map(|o| o.unknown_fields.len()), Ok(1));
}

#[test]
fn supported_kinds_are_listed() {
    let kinds: Vec<(&str, &str)> = supported_kinds().collect();
    for pair in [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("v1", "Namespace"),
        ("v1", "Pod"),
        ("v1", "Service"),
        ("v1", "Node"),
        ("v1", "Event"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("coordination.k8s.io/v1", "Lease"),
        ("apps/v1", "Deployment"),
    ] {
        assert!(kinds.contains(&pair), "{pair:?}");
        assert!(is_supported_kind(pair.0, pair.1));
    }
    assert!(is_supported_kind("storage.k8s.io/v1", "DeleteOptions"));
    assert!(!is_supported_kind("v1", "ReplicationController"));
    assert!(has_magic(&envelope("v1", "Pod", &[])));
    assert!(!has_magic(b"{}"));
}

#[test]
fn every_message_has_unique_field_numbers_and_names() {
    fn check(message: &'static Message, seen: &mut Vec<&'static str>) {
        if seen.contains(&message.name) {
            return;
        }
        seen.push(message.name);
        for (i, a) in message.fields.iter().enumerate() {
            for b in &message.fields[i + 1..] {
                assert_ne!(a.num, b.num, "{}: duplicate number {}", message.name, a.num);
                if a.shape != Shape::Inline && b.shape != Shape::Inline {
                    assert_ne!(a.json, b.json, "{}: duplicate name", message.name);
                }
            }
            if let Ty::Msg(inner) = a.ty {
                check(inner, seen);
            }
            if a.shape == Shape::Inline {
                assert!(matches!(a.ty, Ty::Msg(_)), "{}.{}", message.name, a.json);
            }
        }
    }
    let mut seen = Vec::new();
    for kind in KINDS {
        check(kind.message, &mut seen);
    }
    assert!(seen.len() > 100, "{}", seen.len());
}

// ---------------------------------------------------------------------------------------------
// Test-only encoder and canonical object generator
// ---------------------------------------------------------------------------------------------

/// Encodes a canonical JSON object the way gogo would encode the Go value: value fields always
/// (zero values included), pointers when present, slices element by element, maps as entries.
fn encode_message(message: &Message, obj: &Map<String, Value>) -> Vec<u8> {
    let mut out = Pb::new();
    for field in message.fields {
        let value = obj.get(field.json);
        match field.shape {
            Shape::Inline => {
                if let Ty::Msg(inner) = field.ty {
                    out = out.bytes(field.num, &encode_message(inner, obj));
                }
            }
            Shape::Rep | Shape::RepReq => {
                if let Some(Value::Array(items)) = value {
                    for item in items {
                        out = encode_single(out, field.num, field.ty, Some(item));
                    }
                }
            }
            Shape::Map => {
                if let Some(Value::Object(map)) = value {
                    for (k, v) in map {
                        let entry = encode_single(Pb::new().str(1, k), 2, field.ty, Some(v));
                        out = out.msg(field.num, entry);
                    }
                }
            }
            Shape::Ptr => {
                if value.is_some() {
                    out = encode_single(out, field.num, field.ty, value);
                }
            }
            Shape::Opt | Shape::Req => out = encode_single(out, field.num, field.ty, value),
        }
    }
    out.0
}

fn encode_single(out: Pb, num: u32, ty: Ty, value: Option<&Value>) -> Pb {
    let text = value.and_then(Value::as_str);
    match ty {
        Ty::Str => out.str(num, text.unwrap_or("")),
        Ty::Bytes => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.unwrap_or(""))
                .unwrap_or_default();
            out.bytes(num, &bytes)
        }
        Ty::Bool => out.bool(num, value.and_then(Value::as_bool).unwrap_or(false)),
        Ty::I32 | Ty::I64 => out.int(num, value.and_then(Value::as_i64).unwrap_or(0)),
        Ty::Msg(inner) => {
            let empty = Map::new();
            let obj = value.and_then(Value::as_object).unwrap_or(&empty);
            out.bytes(num, &encode_message(inner, obj))
        }
        Ty::Time | Ty::MicroTime => match text {
            Some(s) => {
                let (seconds, nanos) = parse_rfc3339(s);
                out.msg(num, Pb::new().int(1, seconds).int(2, nanos))
            }
            None => out.msg(num, Pb::new()),
        },
        Ty::IntOrString => match value {
            Some(Value::String(s)) => out.msg(num, Pb::new().int(1, 1).int(2, 0).str(3, s)),
            other => {
                let n = other.and_then(Value::as_i64).unwrap_or(0);
                out.msg(num, Pb::new().int(1, 0).int(2, n).str(3, ""))
            }
        },
        Ty::Quantity => out.msg(num, Pb::new().str(1, text.unwrap_or("0"))),
        Ty::FieldsV1 => match value {
            Some(v) if !v.is_null() => {
                let raw = serde_json::to_vec(v).unwrap_or_default();
                out.msg(num, Pb::new().bytes(1, &raw))
            }
            _ => out.msg(num, Pb::new()),
        },
        Ty::StrList => {
            let mut items = Pb::new();
            if let Some(Value::Array(list)) = value {
                for item in list {
                    items = items.str(1, item.as_str().unwrap_or(""));
                }
            }
            out.msg(num, items)
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (independent of the decoder's inverse).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` into (seconds, nanos).
fn parse_rfc3339(s: &str) -> (i64, i64) {
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap_or(0);
    let days = days_from_civil(num(0..4), num(5..7), num(8..10));
    let seconds = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    let nanos = if s.as_bytes().get(19) == Some(&b'.') {
        num(20..26) * 1000
    } else {
        0
    };
    (seconds, nanos)
}

/// A deterministic generator of canonical objects (what `encoding/json` would produce) for a
/// message table, driven by a seed from proptest.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 0
    }
    fn string(&mut self, non_empty: bool) -> String {
        const PIECES: &[&str] = &[
            "a", "b", "z", "0", "9", "-", ".", "/", "é", "日本", " ", "\"", "\\",
        ];
        let len = self.below(5) + u64::from(non_empty);
        (0..len)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }
    fn int(&mut self, ty: Ty, non_zero: bool) -> Value {
        loop {
            let v = match ty {
                Ty::I32 => Value::from(self.next() as u32 as i32),
                _ => Value::from(match self.below(3) {
                    0 => self.below(1000) as i64,
                    1 => self.next() as i64,
                    _ => -(self.below(1000) as i64),
                }),
            };
            if !non_zero || !is_zero(&v) {
                return v;
            }
        }
    }
    fn time(&mut self, micro: bool) -> Value {
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            1970 + self.below(8030),
            1 + self.below(12),
            1 + self.below(28),
            self.below(24),
            self.below(60),
            self.below(60)
        );
        if micro {
            s.push_str(&format!(".{:06}", self.below(1_000_000)));
        }
        s.push('Z');
        Value::String(s)
    }
    fn quantity(&mut self) -> Value {
        const Q: &[&str] = &["0", "1", "100m", "1Gi", "250Mi", "1500m", "1e3", "2k", "-1"];
        Value::String(Q[self.below(Q.len() as u64) as usize].to_string())
    }
    fn int_or_string(&mut self) -> Value {
        if self.coin() {
            Value::from(self.next() as u32 as i32)
        } else {
            Value::String(self.string(false))
        }
    }

    /// Any value of `ty` that a pointer or slice element may hold.
    fn any(&mut self, ty: Ty, depth: usize) -> Value {
        match ty {
            Ty::Str => Value::String(self.string(false)),
            Ty::Bytes => {
                let bytes: Vec<u8> = (0..self.below(6)).map(|_| self.next() as u8).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Ty::Bool => Value::Bool(self.coin()),
            Ty::I32 | Ty::I64 => self.int(ty, false),
            Ty::Msg(inner) => Value::Object(self.message(inner, depth + 1)),
            Ty::Time => self.time(false),
            Ty::MicroTime => self.time(true),
            Ty::IntOrString => self.int_or_string(),
            Ty::Quantity => self.quantity(),
            Ty::FieldsV1 => {
                json!({"f:metadata": {"f:labels": {format!("f:{}", self.string(true)): {}}}})
            }
            Ty::StrList => {
                if self.coin() {
                    Value::Null
                } else {
                    Value::Array(
                        (0..=self.below(2))
                            .map(|_| Value::String(self.string(false)))
                            .collect(),
                    )
                }
            }
        }
    }

    /// A canonical object for `message`; optional parts are cut off below a small depth.
    fn message(&mut self, message: &Message, depth: usize) -> Map<String, Value> {
        let mut obj = Map::new();
        let shallow = depth < 4;
        for field in message.fields {
            let is_msg = matches!(field.ty, Ty::Msg(_));
            let name = field.json.to_string();
            match field.shape {
                Shape::Inline => {
                    if let Ty::Msg(inner) = field.ty {
                        obj.extend(self.message(inner, depth));
                    }
                }
                Shape::Opt => match field.ty {
                    Ty::Str => {
                        if self.coin() {
                            obj.insert(name, Value::String(self.string(true)));
                        }
                    }
                    Ty::Bool => {
                        if self.coin() {
                            obj.insert(name, Value::Bool(true));
                        }
                    }
                    Ty::I32 | Ty::I64 => {
                        if self.coin() {
                            obj.insert(name, self.int(field.ty, true));
                        }
                    }
                    Ty::Time | Ty::MicroTime => {
                        let v = if self.coin() {
                            Value::Null
                        } else {
                            self.any(field.ty, depth)
                        };
                        obj.insert(name, v);
                    }
                    ty => {
                        obj.insert(name, self.any(ty, depth));
                    }
                },
                Shape::Req => {
                    let v = match field.ty {
                        Ty::Time | Ty::MicroTime if self.coin() => Value::Null,
                        ty => self.any(ty, depth),
                    };
                    obj.insert(name, v);
                }
                Shape::Ptr => {
                    if (shallow || !is_msg) && self.coin() {
                        obj.insert(name, self.any(field.ty, depth));
                    }
                }
                Shape::Rep | Shape::RepReq => {
                    if (shallow || !is_msg) && self.coin() {
                        let items = (0..=self.below(2))
                            .map(|_| self.any(field.ty, depth))
                            .collect();
                        obj.insert(name, Value::Array(items));
                    } else if field.shape == Shape::RepReq {
                        obj.insert(name, Value::Null);
                    }
                }
                Shape::Map => {
                    if (shallow || !is_msg) && self.coin() {
                        let mut map = Map::new();
                        for _ in 0..=self.below(2) {
                            let key = self.string(false);
                            let value = self.any(field.ty, depth);
                            map.insert(key, value);
                        }
                        obj.insert(name, Value::Object(map));
                    }
                }
            }
        }
        obj
    }
}

fn canonical_object(kind_index: usize, seed: u64) -> (&'static str, &'static str, Value, Vec<u8>) {
    let kind = &KINDS[kind_index % KINDS.len()];
    let mut generator = Gen(seed);
    let mut obj = generator.message(kind.message, 1);
    let raw = encode_message(kind.message, &obj);
    obj.insert("kind".to_string(), Value::String(kind.kind.to_string()));
    obj.insert(
        "apiVersion".to_string(),
        Value::String(kind.api_version.to_string()),
    );
    (kind.api_version, kind.kind, Value::Object(obj), raw)
}

#[test]
fn encoder_round_trips_the_fixtures() {
    let raw = Pb::new().msg(2, Pb::new().msg(2, container_fixture()));
    let first = decode("v1", "Pod", raw).object;
    let Some(obj) = first.as_object() else {
        panic!("not an object");
    };
    let pod = schema::lookup("v1", "Pod").expect("Pod table");
    let again = decode_object("v1", "Pod", &encode_message(pod, obj));
    assert_eq!(again.map(|o| o.object), Ok(first));
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity_for_canonical_objects(
        kind_index in 0usize..64,
        seed in any::<u64>(),
    ) {
        let (api_version, kind, expected, raw) = canonical_object(kind_index, seed);
        let decoded = decode_object(api_version, kind, &raw);
        prop_assert_eq!(decoded.as_ref().map(|o| &o.object), Ok(&expected));
        prop_assert!(decoded.map(|o| o.unknown_fields.is_empty()).unwrap_or(false));
        // Through the full envelope as well.
        let body = envelope(api_version, kind, &raw);
        prop_assert_eq!(decode_k8s_protobuf(&body).map(|o| o.object), Ok(expected));
    }

    #[test]
    fn unknown_root_fields_are_reported_and_change_nothing(
        kind_index in 0usize..64,
        seed in any::<u64>(),
        number in 100u32..1000,
        payload in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let (api_version, kind, expected, raw) = canonical_object(kind_index, seed);
        let mut with_unknown = Pb::new().bytes(number, &payload).0;
        with_unknown.extend_from_slice(&raw);
        with_unknown.extend_from_slice(&Pb::new().varint(number + 1, 3).0);
        let out = decode_object(api_version, kind, &with_unknown);
        prop_assert_eq!(out.as_ref().map(|o| &o.object), Ok(&expected));
        let mut paths: Vec<String> = out
            .map(|o| o.unknown_fields.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        paths.sort();
        let mut want = vec![format!("#{number}"), format!("#{}", number + 1)];
        want.sort();
        prop_assert_eq!(paths, want);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        with_magic in any::<bool>(),
        kind_index in 0usize..64,
    ) {
        let body = if with_magic { [&MAGIC[..], &bytes].concat() } else { bytes.clone() };
        let _ = decode_k8s_protobuf(&body);
        let kind = &KINDS[kind_index % KINDS.len()];
        let _ = decode_object(kind.api_version, kind.kind, &bytes);
    }

    #[test]
    fn decode_never_panics_on_corrupted_valid_bodies(
        kind_index in 0usize..64,
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let (api_version, kind, _, raw) = canonical_object(kind_index, seed);
        let mut body = envelope(api_version, kind, &raw);
        for (index, byte) in flips {
            let i = index.index(body.len());
            body[i] ^= byte;
        }
        let _ = decode_k8s_protobuf(&body);
        let end = cut.index(body.len() + 1);
        let _ = decode_k8s_protobuf(&body[..end]);
    }
}
