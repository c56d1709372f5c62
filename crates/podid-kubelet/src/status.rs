//! What the kubelet writes to the API, pure (time is a parameter): a running pod's status as a JSON merge patch
//! for the `pods/status` subresource, and the patch that gives a node its pod CIDR. Both carry preconditions so
//! they never land on a different object of the same name: the pod's `metadata.uid` (the API server refuses to
//! change it) and the node's `metadata.resourceVersion` (a node that changed meanwhile gets 409 and is retried
//! from the next event).

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Map, Value, json};

use crate::ipam::parse_cidr;

/// The conditions a running pod reports, all `True` (in the kubelet's order).
pub const RUNNING_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// The container runtime name in `containerID`s (`<runtime>://<id>`).
pub const RUNTIME: &str = "podid-kubelet";

/// Seconds since the epoch as RFC 3339 (`2026-12-08T03:04:12Z`), the API's time format.
#[must_use]
pub fn rfc3339(unix_secs: i64) -> String {
    jiff::Timestamp::from_second(unix_secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

/// The node's `InternalIP` address (empty when it has none).
#[must_use]
pub fn host_ip(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|x| x.type_ == "InternalIP"))
        .map(|x| x.address.clone())
        .unwrap_or_default()
}

/// The node's `spec.podCIDR` when it is a usable IPv4 CIDR.
#[must_use]
pub fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .filter(|c| parse_cidr(c).is_some())
}

/// Whether the node has any `spec.podCIDR` (usable or not): such a node is not given another one.
#[must_use]
pub fn has_pod_cidr(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_ref())
        .is_some()
}

/// The merge patch that gives `node` the pod CIDR `cidr`, conditional on the node not having changed.
#[must_use]
pub fn node_cidr_patch(node: &Node, cidr: &str) -> Value {
    json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}
    })
}

/// What the kubelet does with a pod bound to a node it serves (after writing its volumes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodStep {
    /// Being deleted: it keeps its address until it is gone; with `finish`, the API server waits for the
    /// kubelet (a graceful deletion) and the kubelet deletes it with grace period 0.
    Terminating {
        /// Delete it for good.
        finish: bool,
    },
    /// Already running with an address: nothing to write.
    Running,
    /// Give it an address and write its running status.
    Start,
}

/// The [`PodStep`] for `pod`. Deletion comes first: a running pod that is being deleted must still be finished.
#[must_use]
pub fn pod_step(pod: &Pod) -> PodStep {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodStep::Terminating {
            finish: pod.metadata.deletion_grace_period_seconds.unwrap_or(0) > 0,
        };
    }
    if is_running_with_ip(pod) {
        PodStep::Running
    } else {
        PodStep::Start
    }
}

/// Whether the kubelet already set the pod up: phase `Running` with a `podIP`.
#[must_use]
pub fn is_running_with_ip(pod: &Pod) -> bool {
    let s = pod.status.as_ref();
    s.and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty())
        && s.and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// A running pod's complete status: phase `Running`, every [`RUNNING_CONDITIONS`] `True`, one ready, started,
/// running status per container, `hostIP(s)`, `podIP(s)` (omitted when `ip` is empty), `startTime`, and the
/// pod's `qosClass` (`BestEffort` when it has none).
#[must_use]
pub fn running_status(pod: &Pod, ip: &str, host_ip: &str, now: &str) -> Value {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let statuses: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({"name": c.name, "ready": true, "started": true, "restartCount": 0, "image": c.image,
                   "imageID": "", "containerID": format!("{RUNTIME}://{uid}-{}", c.name),
                   "state": {"running": {"startedAt": now}}, "lastState": {}})
        })
        .collect();
    let conditions: Vec<Value> = RUNNING_CONDITIONS
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now}))
        .collect();
    let qos = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.clone())
        .unwrap_or_else(|| "BestEffort".into());
    let mut status = json!({"phase": "Running", "conditions": conditions, "hostIP": host_ip,
        "startTime": now, "containerStatuses": statuses, "qosClass": qos});
    if !ip.is_empty() {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if !host_ip.is_empty() {
        status["hostIPs"] = json!([{"ip": host_ip}]);
    }
    status
}

/// The merge patch for `pods/status` that replaces the pod's status by `status`: keys of the current status
/// that `status` lacks are set to null (removed), and the pod's uid is the precondition.
#[must_use]
pub fn status_patch(pod: &Pod, status: Value) -> Value {
    let mut status = match status {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let current = pod
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok());
    if let Some(Value::Object(cur)) = current {
        for k in cur.keys() {
            status.entry(k.clone()).or_insert(Value::Null);
        }
    }
    json!({"metadata": {"uid": pod.metadata.uid}, "status": status})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn node(v: Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    #[test]
    fn time_is_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_698_452), "2026-12-08T02:54:12Z");
    }

    #[test]
    fn node_facts() {
        let n = node(json!({"metadata": {"name": "n", "resourceVersion": "7"},
            "spec": {"podCIDR": "10.244.3.0/24"},
            "status": {"addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "10.240.0.4"}]}}));
        assert_eq!(host_ip(&n), "10.240.0.4");
        assert_eq!(pod_cidr(&n), Some("10.244.3.0/24"));
        assert!(has_pod_cidr(&n));
        assert_eq!(
            node_cidr_patch(&n, "10.244.9.0/24"),
            json!({"metadata": {"resourceVersion": "7"},
                   "spec": {"podCIDR": "10.244.9.0/24", "podCIDRs": ["10.244.9.0/24"]}})
        );
        let bare = node(json!({"metadata": {"name": "n"}}));
        assert_eq!(host_ip(&bare), "");
        assert_eq!(pod_cidr(&bare), None);
        assert!(!has_pod_cidr(&bare));
        let v6 = node(json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "fd00::/64"}}));
        assert_eq!(pod_cidr(&v6), None, "not usable");
        assert!(has_pod_cidr(&v6), "but not replaced either");
    }

    #[test]
    fn running_status_has_everything_the_kubelet_reports() {
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "img:1"}, {"name": "side", "image": "img:2"}]}}),
        );
        let s = running_status(&p, "10.244.0.2", "10.240.0.4", "2026-12-08T03:04:12Z");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.0.2");
        assert_eq!(s["podIPs"], json!([{"ip": "10.244.0.2"}]));
        assert_eq!(s["hostIP"], "10.240.0.4");
        assert_eq!(s["hostIPs"], json!([{"ip": "10.240.0.4"}]));
        assert_eq!(s["startTime"], "2026-12-08T03:04:12Z");
        assert_eq!(s["qosClass"], "BestEffort");
        let types: Vec<&str> = s["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .map(|c| {
                assert_eq!(c["status"], "True");
                c["type"].as_str().expect("type")
            })
            .collect();
        assert_eq!(types, RUNNING_CONDITIONS);
        let cs = s["containerStatuses"].as_array().expect("statuses");
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[1]["name"], "side");
        assert_eq!(cs[1]["image"], "img:2");
        assert_eq!(cs[1]["ready"], true);
        assert_eq!(cs[1]["containerID"], "podid-kubelet://u1-side");
        assert_eq!(
            cs[1]["state"]["running"]["startedAt"],
            "2026-12-08T03:04:12Z"
        );
        // The result is a valid PodStatus.
        let _: k8s_openapi::api::core::v1::PodStatus =
            serde_json::from_value(s).expect("a PodStatus");
    }

    #[test]
    fn host_network_and_qos() {
        let p = pod(
            json!({"metadata": {"name": "p", "uid": "u"}, "spec": {"containers": []},
            "status": {"qosClass": "Guaranteed"}}),
        );
        let s = running_status(&p, "", "", "t");
        assert_eq!(s["qosClass"], "Guaranteed");
        for k in ["podIP", "podIPs", "hostIPs"] {
            assert!(s.get(k).is_none(), "{k}");
        }
        assert_eq!(s["containerStatuses"], json!([]));
    }

    #[test]
    fn status_patch_replaces_and_carries_the_uid() {
        let p = pod(
            json!({"metadata": {"name": "p", "uid": "u"}, "spec": {"containers": []},
            "status": {"phase": "Pending", "qosClass": "BestEffort", "message": "waiting", "podIP": "1.2.3.4"}}),
        );
        let patch = status_patch(&p, json!({"phase": "Running", "podIP": "10.0.0.2"}));
        assert_eq!(
            patch,
            json!({"metadata": {"uid": "u"}, "status": {"phase": "Running", "podIP": "10.0.0.2",
                   "qosClass": null, "message": null}})
        );
        let fresh = pod(json!({"metadata": {"name": "p", "uid": "u"}}));
        assert_eq!(
            status_patch(&fresh, json!({"phase": "Running"})),
            json!({"metadata": {"uid": "u"}, "status": {"phase": "Running"}})
        );
    }

    #[test]
    fn deletion_comes_first() {
        let mk = |meta: Value, status: Value| {
            let mut m = json!({"name": "p", "uid": "u"});
            m.as_object_mut()
                .expect("meta")
                .extend(meta.as_object().cloned().unwrap_or_default());
            pod(json!({"metadata": m, "status": status}))
        };
        let running = json!({"phase": "Running", "podIP": "10.0.0.2"});
        assert_eq!(pod_step(&mk(json!({}), json!({}))), PodStep::Start);
        assert_eq!(
            pod_step(&mk(
                json!({}),
                json!({"phase": "Succeeded", "podIP": "10.0.0.2"})
            )),
            PodStep::Start
        );
        assert_eq!(pod_step(&mk(json!({}), running.clone())), PodStep::Running);
        // A real API server's graceful deletion of a running pod waits for the kubelet.
        let graceful =
            json!({"deletionTimestamp": "2026-12-08T03:00:00Z", "deletionGracePeriodSeconds": 30});
        assert_eq!(
            pod_step(&mk(graceful, running.clone())),
            PodStep::Terminating { finish: true }
        );
        // kube-sim (and a finalizer-held pod after the kubelet's delete): grace 0, nothing more to do.
        let held =
            json!({"deletionTimestamp": "2026-12-08T03:00:00Z", "deletionGracePeriodSeconds": 0});
        assert_eq!(
            pod_step(&mk(held, json!({}))),
            PodStep::Terminating { finish: false }
        );
    }

    #[test]
    fn running_with_ip() {
        let mk = |status: Value| pod(json!({"metadata": {"name": "p"}, "status": status}));
        assert!(is_running_with_ip(&mk(
            json!({"phase": "Running", "podIP": "10.0.0.2"})
        )));
        assert!(!is_running_with_ip(&mk(
            json!({"phase": "Running", "podIP": ""})
        )));
        assert!(!is_running_with_ip(&mk(
            json!({"phase": "Pending", "podIP": "10.0.0.2"})
        )));
        assert!(!is_running_with_ip(&mk(json!({}))));
    }
}
