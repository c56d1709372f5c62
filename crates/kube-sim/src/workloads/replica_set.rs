//! The ReplicaSet controller's decision (kube-controller-manager's `pkg/controller/replicaset`, simplified):
//! from a ReplicaSet and the pods it controls, how many pods to create, which to delete, and its status.
//! Pure: no IO.
//!
//! A pod is ready when its `Ready` condition is True (set by whatever plays the kubelet: `podid-kubelet`
//! through `pods/status`); available = ready (`minReadySeconds` is not waited for).

use std::cmp::Reverse;

use super::PodPlan;
use crate::meta::str_at;
use serde_json::{Map, Value, json};

/// Whether a pod's `Ready` condition is True.
pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The order in which surplus pods go (upstream's `ActivePods` ranking, simplified): unscheduled before
/// scheduled, pending before running, not ready before ready, newer before older.
fn deletion_rank(pod: &Value) -> (bool, u8, bool, Reverse<String>, String) {
    let phase = match str_at(pod, "/status/phase") {
        "Pending" | "" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    (
        !str_at(pod, "/spec/nodeName").is_empty(),
        phase,
        pod_ready(pod),
        Reverse(str_at(pod, "/metadata/creationTimestamp").to_string()),
        str_at(pod, "/metadata/name").to_string(),
    )
}

/// Decide for `rs` given the pods it controls (`pods`, none being deleted).
pub fn plan(rs: &Value, pods: &[&Value]) -> PodPlan {
    let want = usize::try_from(
        rs.pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1),
    )
    .unwrap_or(0);
    let have = pods.len();
    let mut delete = Vec::new();
    if have > want {
        let mut ranked: Vec<&Value> = pods.to_vec();
        ranked.sort_by_key(|p| deletion_rank(p));
        delete = ranked
            .iter()
            .take(have - want)
            .map(|p| str_at(p, "/metadata/name").to_string())
            .collect();
    }
    PodPlan {
        create: vec![pod_from_template(rs); want.saturating_sub(have)],
        delete,
        status: status(rs, pods),
    }
}

/// The ReplicaSet's status from its pods (`replicas` always, other counts only when not zero).
fn status(rs: &Value, pods: &[&Value]) -> Value {
    let template_labels = rs
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.pointer("/metadata/labels").and_then(Value::as_object);
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let mut s = Map::new();
    s.insert("replicas".into(), json!(pods.len()));
    for (k, v) in [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
    ] {
        if v != 0 {
            s.insert(k.into(), json!(v));
        }
    }
    if let Some(g) = rs.pointer("/metadata/generation").filter(|g| !g.is_null()) {
        s.insert("observedGeneration".into(), g.clone());
    }
    Value::Object(s)
}

/// A pod of the ReplicaSet's template: `generateName` `<rs>-`, the template's labels and annotations, owned by
/// the ReplicaSet as its controller.
pub fn pod_from_template(rs: &Value) -> Value {
    let template = rs
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut metadata = json!({
        "generateName": format!("{}-", str_at(rs, "/metadata/name")),
        "namespace": str_at(rs, "/metadata/namespace"),
        "ownerReferences": [super::controller_ref(rs, "apps/v1", "ReplicaSet")],
    });
    for k in ["labels", "annotations"] {
        if let Some(v) = template
            .pointer(&format!("/metadata/{k}"))
            .filter(|v| !v.is_null())
        {
            metadata[k] = v.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(replicas: i64) -> Value {
        json!({"metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-uid", "generation": 4},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    fn pod(name: &str, created: &str, node: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created, "labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {"nodeName": node},
            "status": {"phase": if node.is_empty() { "Pending" } else { "Running" },
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn scale_up_creates_and_counts() {
        let a = pod("a", "t1", "n1", true);
        let p = plan(&rs(3), &[&a]);
        assert_eq!(p.create.len(), 2);
        assert!(p.delete.is_empty());
        assert_eq!(
            p.status,
            json!({"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 4})
        );
        let empty = plan(&rs(0), &[]);
        assert_eq!(
            empty.status,
            json!({"replicas": 0, "observedGeneration": 4})
        );
    }

    #[test]
    fn scale_down_deletes_unscheduled_unready_and_newest_first() {
        let old_ready = pod("old", "t1", "n1", true);
        let new_ready = pod("new", "t3", "n1", true);
        let unready = pod("unready", "t0", "n1", false);
        let pending = pod("pending", "t0", "", false);
        let p = plan(&rs(1), &[&old_ready, &new_ready, &unready, &pending]);
        assert!(p.create.is_empty());
        assert_eq!(p.delete, ["pending", "unready", "new"]);
    }

    #[test]
    fn pods_come_from_the_template() {
        let p = pod_from_template(&rs(1));
        assert_eq!(p["metadata"]["generateName"], "web-abc-");
        assert_eq!(p["metadata"]["namespace"], "ns");
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], "abc");
        assert_eq!(
            p["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid",
                "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(p["spec"]["containers"][0]["image"], "nginx");
    }
}
