//! Subresources with their own handlers: `pods/binding`. (`status` routes to the update and patch verbs with
//! `status_only`; `serviceaccounts/token` to the review APIs.)

use serde_json::{Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::ResKey;

// === pods/binding ===

pub(crate) fn bind_pod(sim: &Sim, ns: &str, name: &str, body: &Value) -> ApiResult<Value> {
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                "",
                name,
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "target.name: Required value".into(),
                    field: "target.name".into(),
                }],
            )
        })?;
    let key = ResKey::new("", "pods");
    let (obj, _) = sim.store.update(
        &key,
        ns,
        name,
        &mut |cur| {
            if let Some(existing) = cur
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return Err(ApiError::conflict_with(
                    "pods/binding",
                    "",
                    name,
                    &format!("pod {name} is already assigned to node \"{existing}\""),
                ));
            }
            Ok(Some(bound_pod(
                cur,
                node,
                body.pointer("/metadata/annotations"),
                &crate::meta::now_rfc3339(),
            )))
        },
        || ApiError::not_found("pods", "", name),
    )?;
    let _ = obj;
    Ok(crate::error::success_status(None))
}

/// The pod a binding produces, as the apiserver's binding storage writes it: `spec.nodeName`, the binding's
/// annotations copied onto the pod, and the `PodScheduled` condition set to True (its transition time kept when
/// it already was True).
fn bound_pod(cur: &Value, node: &str, annotations: Option<&Value>, now: &str) -> Value {
    let mut pod = cur.clone();
    pod["spec"]["nodeName"] = json!(node);
    if let Some(Value::Object(annotations)) = annotations {
        for (k, v) in annotations {
            pod["metadata"]["annotations"][k] = v.clone();
        }
    }
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let scheduled = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    match pod["status"]
        .get_mut("conditions")
        .and_then(Value::as_array_mut)
    {
        Some(conditions) => match conditions.iter_mut().find(|c| c["type"] == "PodScheduled") {
            Some(c) => {
                let mut next = scheduled;
                if c["status"] == "True" {
                    next["lastTransitionTime"] = c["lastTransitionTime"].clone();
                }
                *c = next;
            }
            None => conditions.push(scheduled),
        },
        None => pod["status"]["conditions"] = json!([scheduled]),
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_sets_node_annotations_and_pod_scheduled() {
        let pending = json!({"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": "t0"}]}});
        let pod = bound_pod(&pending, "n1", Some(&json!({"a": "b"})), "t1");
        assert_eq!(pod["spec"]["nodeName"], "n1");
        assert_eq!(pod["metadata"]["annotations"]["a"], "b");
        assert_eq!(
            pod["status"]["conditions"],
            json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "t1"}])
        );
        let fresh = bound_pod(&json!({"spec": {}}), "n1", None, "t2");
        assert_eq!(fresh["status"]["conditions"][0]["status"], "True");
        assert_eq!(fresh["status"]["conditions"][0]["lastTransitionTime"], "t2");
    }
}
