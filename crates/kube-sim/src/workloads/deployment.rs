//! The Deployment controller's decision (kube-controller-manager's `pkg/controller/deployment`, simplified):
//! from a Deployment and the ReplicaSets it controls, the writes that bring them to the Deployment's spec and
//! the Deployment's status. Pure: no IO, time is a parameter.
//!
//! The rollout is all at once: the ReplicaSet of the current template is scaled to `spec.replicas` and every
//! older one to 0 in the same step (no `maxSurge`/`maxUnavailable` pacing; the annotations still record them).

use std::collections::BTreeMap;

use crate::meta::str_at;
use serde_json::{Map, Value, json};

use kube_sim_machinery::gofmt::json_marshal;

/// The revision of a Deployment and of its ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The Deployment's `spec.replicas` when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas` + `maxSurge` when the ReplicaSet was last scaled.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// The label that tells one template's ReplicaSet and pods from another's.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The alphabet of `rand.SafeEncodeString` (no vowels, no confusable characters).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A write the controller makes to a ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create this ReplicaSet.
    Create(Value),
    /// Set a ReplicaSet's `spec.replicas` and these annotations.
    Scale {
        /// ReplicaSet name.
        name: String,
        /// New `spec.replicas`.
        replicas: i64,
        /// Annotations to set.
        annotations: BTreeMap<String, String>,
    },
    /// Delete an old ReplicaSet beyond `revisionHistoryLimit`.
    Delete(String),
}

/// What the controller does for one Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// ReplicaSet writes, in order.
    pub writes: Vec<Write>,
    /// The Deployment's `deployment.kubernetes.io/revision` annotation.
    pub revision: String,
    /// The Deployment's new status.
    pub status: Value,
}

/// `pod-template-hash` of a template: FNV-32a of its JSON, written with `rand.SafeEncodeString` of the decimal
/// number, as upstream's `ComputeHash` writes it (upstream hashes the Go structure, so the values differ).
pub fn template_hash(template: &Value) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in json_marshal(template).bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn revision_of(rs: &Value) -> i64 {
    str_at(
        rs,
        &format!(
            "/metadata/annotations/{}",
            REVISION_ANNOTATION.replace('/', "~1")
        ),
    )
    .parse()
    .unwrap_or(0)
}

/// A ReplicaSet's template without its `pod-template-hash` label, to compare with the Deployment's.
fn template_without_hash(rs: &Value) -> Value {
    let mut t = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
        if labels.is_empty()
            && let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("labels");
        }
    }
    t
}

fn without_empty_labels(template: &Value) -> Value {
    let mut t = template.clone();
    let empty = t
        .pointer("/metadata/labels")
        .is_some_and(|l| l.as_object().is_none_or(Map::is_empty));
    if empty && let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("labels");
    }
    t
}

/// An int-or-percent of `total` (`intstr.GetScaledValueFromIntOrPercent`).
fn scaled(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let x = pct * total;
            if round_up { (x + 99) / 100 } else { x / 100 }
        }
        _ => 0,
    }
}

/// `(maxSurge, maxUnavailable)` resolved against `replicas` (`ResolveFenceposts`; Recreate: `(0, 0)`).
pub fn fenceposts(deploy: &Value, replicas: i64) -> (i64, i64) {
    if str_at(deploy, "/spec/strategy/type") != "RollingUpdate" {
        return (0, 0);
    }
    let rolling = deploy.pointer("/spec/strategy/rollingUpdate");
    let surge = scaled(rolling.and_then(|r| r.get("maxSurge")), replicas, true);
    let unavailable = scaled(
        rolling.and_then(|r| r.get("maxUnavailable")),
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

/// The ReplicaSet of a new template: `<deployment>-<hash>`, labels and selector with the hash, owned by the
/// Deployment as its controller.
pub fn new_replica_set(deploy: &Value, hash: &str, revision: i64, replicas: i64) -> Value {
    let name = str_at(deploy, "/metadata/name");
    let mut template = deploy
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = json!(hash);
    let mut selector = deploy
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    selector["matchLabels"][POD_TEMPLATE_HASH_LABEL] = json!(hash);
    let (surge, _) = fenceposts(deploy, replicas);
    let mut spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if let Some(m) = deploy
        .pointer("/spec/minReadySeconds")
        .filter(|m| !m.is_null())
    {
        spec["minReadySeconds"] = m.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"),
            "namespace": str_at(deploy, "/metadata/namespace"),
            "labels": template["metadata"]["labels"].clone(),
            "annotations": {
                DESIRED_REPLICAS_ANNOTATION: replicas.to_string(),
                MAX_REPLICAS_ANNOTATION: (replicas + surge).to_string(),
                REVISION_ANNOTATION: revision.to_string(),
            },
            "ownerReferences": [super::controller_ref(deploy, "apps/v1", "Deployment")],
        },
        "spec": spec,
    })
}

/// Decide for `deploy` given the ReplicaSets it controls (`owned`, none being deleted).
pub fn plan(deploy: &Value, owned: &[&Value], now: &str) -> Plan {
    let replicas = deploy
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let template = without_empty_labels(
        &deploy
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(Value::Null),
    );
    let paused = deploy.pointer("/spec/paused") == Some(&json!(true));
    let new_rs = owned
        .iter()
        .copied()
        .find(|rs| template_without_hash(rs) == template);
    let new_name = new_rs.map(|rs| str_at(rs, "/metadata/name").to_string());
    let max_old = owned
        .iter()
        .filter(|rs| Some(str_at(rs, "/metadata/name")) != new_name.as_deref())
        .map(|rs| revision_of(rs))
        .max()
        .unwrap_or(0);
    let (surge, _) = fenceposts(deploy, replicas);
    let mut writes = Vec::new();
    let mut created = None;
    let revision = match new_rs {
        Some(rs) => {
            // A template seen before (a rollback) becomes the newest revision again.
            let revision = if revision_of(rs) > max_old {
                revision_of(rs)
            } else {
                max_old + 1
            };
            let annotations: BTreeMap<String, String> = [
                (DESIRED_REPLICAS_ANNOTATION, replicas.to_string()),
                (MAX_REPLICAS_ANNOTATION, (replicas + surge).to_string()),
                (REVISION_ANNOTATION, revision.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let current: BTreeMap<String, String> = annotations
                .keys()
                .map(|k| {
                    let p = format!("/metadata/annotations/{}", k.replace('/', "~1"));
                    (k.clone(), str_at(rs, &p).to_string())
                })
                .collect();
            let want = if paused {
                int_at(rs, "/spec/replicas")
            } else {
                replicas
            };
            if int_at(rs, "/spec/replicas") != want || current != annotations {
                writes.push(Write::Scale {
                    name: str_at(rs, "/metadata/name").to_string(),
                    replicas: want,
                    annotations,
                });
            }
            revision
        }
        None if paused => max_old,
        None => {
            let rs = new_replica_set(deploy, &template_hash(&template), max_old + 1, replicas);
            created = Some(str_at(&rs, "/metadata/name").to_string());
            writes.push(Write::Create(rs));
            max_old + 1
        }
    };
    let new_name = new_name.or_else(|| created.clone());
    let mut old: Vec<&Value> = owned
        .iter()
        .copied()
        .filter(|rs| Some(str_at(rs, "/metadata/name")) != new_name.as_deref())
        .collect();
    if !paused {
        for rs in &old {
            if int_at(rs, "/spec/replicas") != 0 {
                writes.push(Write::Scale {
                    name: str_at(rs, "/metadata/name").to_string(),
                    replicas: 0,
                    annotations: BTreeMap::new(),
                });
            }
        }
    }
    // Old ReplicaSets with no pods left, oldest first, beyond the history limit.
    old.retain(|rs| int_at(rs, "/spec/replicas") == 0 && int_at(rs, "/status/replicas") == 0);
    old.sort_by_key(|rs| revision_of(rs));
    let limit = deploy
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0);
    let excess = old
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    for rs in old.iter().take(excess) {
        writes.push(Write::Delete(str_at(rs, "/metadata/name").to_string()));
    }
    let status = status(deploy, owned, new_name.as_deref(), created.is_some(), now);
    Plan {
        writes,
        revision: revision.to_string(),
        status,
    }
}

/// The Deployment's status from its ReplicaSets' (zero counts omitted, as the API's `omitempty` drops them).
fn status(
    deploy: &Value,
    owned: &[&Value],
    new_name: Option<&str>,
    created: bool,
    now: &str,
) -> Value {
    let replicas = deploy
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let sum = |p: &str| owned.iter().map(|rs| int_at(rs, p)).sum::<i64>();
    let current = sum("/status/replicas");
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let updated = owned
        .iter()
        .find(|rs| Some(str_at(rs, "/metadata/name")) == new_name)
        .map_or(0, |rs| int_at(rs, "/status/replicas"));
    let mut s = Map::new();
    s.insert(
        "observedGeneration".into(),
        json!(int_at(deploy, "/metadata/generation")),
    );
    for (k, v) in [
        ("replicas", current),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", (replicas - available).max(0)),
    ] {
        if v != 0 {
            s.insert(k.into(), json!(v));
        }
    }
    let (_, max_unavailable) = fenceposts(deploy, replicas);
    let previous = deploy
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let name = new_name.unwrap_or_default();
    let available_cond = if available >= replicas - max_unavailable {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".to_string(),
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".to_string(),
        )
    };
    let progressing = if created {
        (
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set \"{name}\""),
        )
    } else if updated == replicas && available >= replicas && current == replicas {
        (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}\" has successfully progressed."),
        )
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{name}\" is progressing."),
        )
    };
    let conditions = vec![
        condition(&previous, "Available", available_cond, now),
        condition(&previous, "Progressing", progressing, now),
    ];
    s.insert("conditions".into(), Value::Array(conditions));
    Value::Object(s)
}

/// A condition, keeping the previous one's times when nothing about it changed (and its transition time
/// while its status stays), so a resync writes nothing new.
fn condition(
    previous: &[Value],
    type_: &str,
    (status, reason, message): (&str, &str, String),
    now: &str,
) -> Value {
    let prev = previous.iter().find(|c| c["type"] == type_);
    let transition = prev
        .filter(|c| c["status"] == status)
        .map_or(json!(now), |c| c["lastTransitionTime"].clone());
    let update = prev
        .filter(|c| {
            c["status"] == status && c["reason"] == reason && c["message"] == message.as_str()
        })
        .map_or(json!(now), |c| c["lastUpdateTime"].clone());
    json!({"type": type_, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition,
        "reason": reason, "message": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "revisionHistoryLimit": 1,
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn created(plan: &Plan) -> Value {
        match &plan.writes[..] {
            [Write::Create(rs)] => rs.clone(),
            other => panic!("expected one create, got {other:?}"),
        }
    }

    #[test]
    fn hash_is_stable_and_safe() {
        let d = deployment("nginx", 1);
        let h = template_hash(&d["spec"]["template"]);
        assert_eq!(h, template_hash(&d["spec"]["template"]));
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)) && !h.is_empty() && h.len() <= 10);
        assert_ne!(
            h,
            template_hash(&deployment("busybox", 1)["spec"]["template"])
        );
    }

    #[test]
    fn a_new_deployment_gets_its_replica_set() {
        let d = deployment("nginx", 3);
        let plan = plan(&d, &[], "t0");
        let rs = created(&plan);
        let hash = template_hash(&d["spec"]["template"]);
        assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
        assert_eq!(
            rs["metadata"]["labels"],
            json!({"app": "web", "pod-template-hash": hash})
        );
        assert_eq!(
            rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
            json!(hash)
        );
        assert_eq!(
            rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
            json!(hash)
        );
        assert_eq!(rs["spec"]["replicas"], 3);
        assert_eq!(rs["metadata"]["annotations"][REVISION_ANNOTATION], "1");
        assert_eq!(rs["metadata"]["annotations"][MAX_REPLICAS_ANNOTATION], "4");
        assert_eq!(
            rs["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid",
                "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(plan.revision, "1");
        assert_eq!(plan.status["observedGeneration"], 2);
        assert_eq!(plan.status["unavailableReplicas"], 3);
        assert!(plan.status.get("replicas").is_none());
        assert_eq!(plan.status["conditions"][0]["status"], "False");
        assert_eq!(
            plan.status["conditions"][1]["reason"],
            "NewReplicaSetCreated"
        );
    }

    fn with_status(mut rs: Value, replicas: i64, ready: i64) -> Value {
        rs["status"] =
            json!({"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready});
        rs
    }

    #[test]
    fn a_settled_deployment_writes_nothing_and_reports_available() {
        let d = deployment("nginx", 2);
        let rs = with_status(created(&plan(&d, &[], "t0")), 2, 2);
        let first = plan(&d, &[&rs], "t1");
        assert!(first.writes.is_empty(), "{:?}", first.writes);
        assert_eq!(first.status["replicas"], 2);
        assert_eq!(first.status["updatedReplicas"], 2);
        assert_eq!(first.status["availableReplicas"], 2);
        assert_eq!(
            first.status["conditions"][0]["reason"],
            "MinimumReplicasAvailable"
        );
        assert_eq!(
            first.status["conditions"][1]["reason"],
            "NewReplicaSetAvailable"
        );
        // The next resync keeps the conditions' times.
        let mut d2 = d.clone();
        d2["status"] = first.status.clone();
        assert_eq!(plan(&d2, &[&rs], "t2").status, first.status);
    }

    #[test]
    fn a_template_change_rolls_out_all_at_once() {
        let d1 = deployment("nginx", 2);
        let old = with_status(created(&plan(&d1, &[], "t0")), 2, 2);
        let d2 = deployment("busybox", 2);
        let p = plan(&d2, &[&old], "t1");
        let new = match &p.writes[0] {
            Write::Create(rs) => rs.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(new["metadata"]["annotations"][REVISION_ANNOTATION], "2");
        assert_eq!(
            p.writes[1],
            Write::Scale {
                name: str_at(&old, "/metadata/name").into(),
                replicas: 0,
                annotations: BTreeMap::new()
            }
        );
        assert_eq!(p.revision, "2");
        // Rolling back to the first template reuses its ReplicaSet with revision 3.
        let mut old_scaled = old.clone();
        old_scaled["spec"]["replicas"] = json!(0);
        let new = with_status(new, 2, 2);
        let back = plan(&d1, &[&old_scaled, &new], "t2");
        match &back.writes[0] {
            Write::Scale {
                name,
                replicas,
                annotations,
            } => {
                assert_eq!(name, str_at(&old, "/metadata/name"));
                assert_eq!(*replicas, 2);
                assert_eq!(annotations[REVISION_ANNOTATION], "3");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(back.revision, "3");
    }

    #[test]
    fn old_replica_sets_beyond_the_history_limit_are_deleted() {
        let mk = |image: &str, rev: i64| {
            let mut rs = created(&plan(&deployment(image, 1), &[], "t"));
            rs["metadata"]["annotations"][REVISION_ANNOTATION] = json!(rev.to_string());
            rs["spec"]["replicas"] = json!(0);
            rs
        };
        let (a, b) = (mk("a", 1), mk("b", 2));
        let cur = with_status(created(&plan(&deployment("c", 1), &[], "t")), 1, 1);
        let p = plan(&deployment("c", 1), &[&a, &b, &cur], "t");
        assert_eq!(p.writes.len(), 2, "{:?}", p.writes);
        assert_eq!(
            p.writes[1],
            Write::Delete(str_at(&a, "/metadata/name").into())
        );
    }

    #[test]
    fn fenceposts_round_like_upstream() {
        let d = deployment("x", 3);
        assert_eq!(fenceposts(&d, 3), (1, 0));
        assert_eq!(fenceposts(&d, 10), (3, 2));
        let mut r = d.clone();
        r["spec"]["strategy"] = json!({"type": "Recreate"});
        assert_eq!(fenceposts(&r, 3), (0, 0));
    }
}
