//! The StatefulSet controller's decision (kube-controller-manager's `pkg/controller/statefulset`, simplified):
//! from a StatefulSet and the pods it controls, which ordinal pods to create, which to delete, and its status.
//! Pure: no IO.
//!
//! Pods are `<set>-<ordinal>` from `spec.ordinals.start`, labelled with `controller-revision-hash`,
//! `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, `hostname` = their name and
//! `subdomain` = `serviceName`. `OrderedReady` creates one pod at a time, lowest ordinal first, once every lower
//! one is ready, and removes the highest first; `Parallel` does all at once. A template change replaces the
//! outdated pods from the highest ordinal down, one at a time (`RollingUpdate`, from `partition` up; `OnDelete`
//! leaves them). The revision is a label only: no ControllerRevision objects are written, no
//! PersistentVolumeClaims are made from `volumeClaimTemplates`.

use super::PodPlan;
use crate::meta::str_at;
use serde_json::{Map, Value, json};

use super::replica_set::pod_ready;

/// The label with the revision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label with the pod's own name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `<set>-<hash of the template>`, the revision the current template's pods carry.
pub fn update_revision(set: &Value) -> String {
    let template = set
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    format!(
        "{}-{}",
        str_at(set, "/metadata/name"),
        super::deployment::template_hash(&template)
    )
}

fn ordinal_of(set_name: &str, pod: &Value) -> Option<i64> {
    str_at(pod, "/metadata/name")
        .strip_prefix(set_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// The pod of ordinal `i`.
pub fn pod_for(set: &Value, i: i64, revision: &str) -> Value {
    let set_name = str_at(set, "/metadata/name");
    let name = format!("{set_name}-{i}");
    let template = set
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), json!(revision));
    labels.insert(POD_NAME_LABEL.into(), json!(name));
    labels.insert(POD_INDEX_LABEL.into(), json!(i.to_string()));
    let mut metadata = json!({
        "name": name,
        "namespace": str_at(set, "/metadata/namespace"),
        "labels": labels,
        "ownerReferences": [super::controller_ref(set, "apps/v1", "StatefulSet")],
    });
    if let Some(a) = template
        .pointer("/metadata/annotations")
        .filter(|a| !a.is_null())
    {
        metadata["annotations"] = a.clone();
    }
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    spec["hostname"] = json!(name);
    let service = str_at(set, "/spec/serviceName");
    if !service.is_empty() {
        spec["subdomain"] = json!(service);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// Decide for `set` given the pods it controls (`pods`, none being deleted).
pub fn plan(set: &Value, pods: &[&Value]) -> PodPlan {
    let set_name = str_at(set, "/metadata/name");
    let replicas = set
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let start = set
        .pointer("/spec/ordinals/start")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let parallel = str_at(set, "/spec/podManagementPolicy") == "Parallel";
    let revision = update_revision(set);
    let mut by_ordinal: Vec<(i64, &Value)> = pods
        .iter()
        .filter_map(|p| ordinal_of(set_name, p).map(|i| (i, *p)))
        .collect();
    by_ordinal.sort_by_key(|(i, _)| *i);
    let wanted = start..start + replicas.max(0);
    let mut create = Vec::new();
    let mut delete: Vec<String> = Vec::new();
    // Surplus pods (and pods of no valid ordinal), highest first.
    let mut surplus: Vec<&Value> = by_ordinal
        .iter()
        .filter(|(i, _)| !wanted.contains(i))
        .map(|(_, p)| *p)
        .collect();
    surplus.reverse();
    let take = if parallel { surplus.len() } else { 1 };
    delete.extend(
        surplus
            .iter()
            .take(take)
            .map(|p| str_at(p, "/metadata/name").to_string()),
    );
    let mut all_lower_ready = true;
    for i in wanted.clone() {
        match by_ordinal.iter().find(|(o, _)| *o == i) {
            Some((_, p)) => all_lower_ready &= pod_ready(p),
            None => {
                if parallel || all_lower_ready {
                    create.push(pod_for(set, i, &revision));
                }
                all_lower_ready = false;
                if !parallel {
                    break;
                }
            }
        }
    }
    let rolling = str_at(set, "/spec/updateStrategy/type") != "OnDelete";
    let partition = set
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let outdated = by_ordinal.iter().rev().find(|(i, p)| {
        wanted.contains(i)
            && *i >= start + partition
            && str_at(p, &format!("/metadata/labels/{REVISION_LABEL}")) != revision
    });
    if rolling
        && create.is_empty()
        && delete.is_empty()
        && let Some((_, outdated)) = outdated
    {
        delete.push(str_at(outdated, "/metadata/name").to_string());
    }
    PodPlan {
        create,
        delete,
        status: status(set, pods, &revision),
    }
}

fn status(set: &Value, pods: &[&Value], revision: &str) -> Value {
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let updated = pods
        .iter()
        .filter(|p| str_at(p, &format!("/metadata/labels/{REVISION_LABEL}")) == revision)
        .count();
    let mut s = Map::new();
    s.insert("replicas".into(), json!(pods.len()));
    s.insert("availableReplicas".into(), json!(ready));
    for (k, v) in [
        ("readyReplicas", ready),
        ("currentReplicas", updated),
        ("updatedReplicas", updated),
    ] {
        if v != 0 {
            s.insert(k.into(), json!(v));
        }
    }
    s.insert("currentRevision".into(), json!(revision));
    s.insert("updateRevision".into(), json!(revision));
    s.insert("collisionCount".into(), json!(0));
    if let Some(g) = set.pointer("/metadata/generation").filter(|g| !g.is_null()) {
        s.insert("observedGeneration".into(), g.clone());
    }
    Value::Object(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: i64, policy: &str, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns", "uid": "s-uid", "generation": 1},
            "spec": {"replicas": replicas, "serviceName": "db", "podManagementPolicy": policy,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn ready(mut pod: Value) -> Value {
        pod["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        pod
    }

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(|p| str_at(p, "/metadata/name")).collect()
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        let s = set(3, "OrderedReady", "pg");
        let p = plan(&s, &[]);
        assert_eq!(names(&p.create), ["db-0"]);
        let pod = &p.create[0];
        assert_eq!(pod["spec"]["hostname"], "db-0");
        assert_eq!(pod["spec"]["subdomain"], "db");
        assert_eq!(pod["metadata"]["labels"][POD_INDEX_LABEL], "0");
        assert_eq!(pod["metadata"]["labels"][POD_NAME_LABEL], "db-0");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        // db-0 not ready yet: nothing more.
        let p0 = p.create[0].clone();
        assert!(plan(&s, &[&p0]).create.is_empty());
        let p0 = ready(p0);
        assert_eq!(names(&plan(&s, &[&p0]).create), ["db-1"]);
    }

    #[test]
    fn parallel_creates_all_and_scales_down_from_the_top() {
        let s = set(3, "Parallel", "pg");
        let p = plan(&s, &[]);
        assert_eq!(names(&p.create), ["db-0", "db-1", "db-2"]);
        let pods: Vec<Value> = p.create.into_iter().map(ready).collect();
        let refs: Vec<&Value> = pods.iter().collect();
        let settled = plan(&s, &refs);
        assert!(settled.create.is_empty() && settled.delete.is_empty());
        assert_eq!(settled.status["readyReplicas"], 3);
        assert_eq!(settled.status["updateRevision"], update_revision(&s));
        let smaller = plan(&set(1, "Parallel", "pg"), &refs);
        assert_eq!(smaller.delete, ["db-2", "db-1"]);
        let ordered = plan(&set(1, "OrderedReady", "pg"), &refs);
        assert_eq!(ordered.delete, ["db-2"]);
    }

    #[test]
    fn a_new_template_replaces_pods_from_the_top() {
        let old = set(2, "Parallel", "pg:1");
        let pods: Vec<Value> = plan(&old, &[]).create.into_iter().map(ready).collect();
        let refs: Vec<&Value> = pods.iter().collect();
        let new = set(2, "Parallel", "pg:2");
        let p = plan(&new, &refs);
        assert_eq!(p.delete, ["db-1"]);
        assert!(p.create.is_empty());
        assert_eq!(p.status.get("updatedReplicas"), None);
    }
}
