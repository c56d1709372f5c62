//! Subresources with their own handlers: `pods/binding` and the `scale` of Deployments, ReplicaSets and
//! StatefulSets. (`status` routes to the update and patch verbs with `status_only`;
//! `serviceaccounts/token` to the review APIs.)

use std::sync::Arc;

use serde_json::{Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::registry;
use crate::resources::{ResKey, ResourceType};
use crate::server::{Ctx, parse_body};

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
    // The binding REST answers `metav1.Status{Status: Success, Code: 201}`.
    let mut status = crate::error::success_status(None);
    status["code"] = serde_json::json!(201);
    Ok(status)
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

// === scale ===

/// The `autoscaling/v1` Scale of a workload: `spec.replicas`, and the observed replicas with the selector
/// as a label-selector string (`status.selector`), as the apiserver's scale storage presents them.
pub fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut metadata = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            metadata.insert(k.into(), v.clone());
        }
    }
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| kube_sim_machinery::labels::LabelSelector::from_json(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    // `ScaleSpec.replicas` is `omitempty`: a Scale of 0 replicas has an empty spec.
    let spec = match obj.pointer("/spec/replicas").and_then(Value::as_i64) {
        Some(n) if n != 0 => json!({"replicas": n}),
        _ => json!({}),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

pub(crate) fn get_scale(sim: &Sim, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
    let obj = sim
        .store
        .get(&rt.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
    Ok(scale_of(&obj))
}

/// Update or patch a workload's scale: `to_scale` turns the current Scale into the requested one, whose
/// `spec.replicas` is written to the workload (a stale `resourceVersion` is a 409 Conflict).
pub(crate) fn write_scale(
    sim: &Arc<Sim>,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    patch: bool,
) -> ApiResult<Value> {
    let to_scale = scale_request(ctx, patch)?;
    let opts = registry::UpdateOpts {
        dry_run: super::dry_run(ctx),
        ..Default::default()
    };
    let obj = registry::update_with(sim, rt, ns, name, opts, &|cur| {
        let current = scale_of(cur);
        let wanted = to_scale(&current)?;
        let rv = crate::meta::meta_str(&wanted, "resourceVersion");
        if !rv.is_empty() && rv != crate::meta::meta_str(cur, "resourceVersion") {
            return Err(ApiError::conflict(&rt.resource, &rt.group, name));
        }
        let replicas = wanted
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                name,
                vec![registry::validate::invalid(
                    "spec.replicas",
                    &replicas.to_string(),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut next = cur.clone();
        next["spec"]["replicas"] = json!(replicas);
        Ok(next)
    })?;
    Ok(scale_of(&obj))
}

type ScaleFn = Box<dyn Fn(&Value) -> ApiResult<Value> + Send + Sync>;

/// The requested Scale from a PUT body or a patch of any type (an apply configuration is merged: the Scale has
/// no lists, and its one field has one owner in practice).
fn scale_request(ctx: &Ctx, patch: bool) -> ApiResult<ScaleFn> {
    if !patch {
        let body = parse_body(ctx)?;
        return Ok(Box::new(move |_| Ok(body.clone())));
    }
    let ct = ctx.media_type();
    let body: Value = if ct == "application/apply-patch+yaml" {
        parse_body(ctx)?
    } else {
        serde_json::from_slice(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    use kube_sim_machinery::patch;
    match ct.as_str() {
        "application/json-patch+json" => Ok(Box::new(move |cur| {
            patch::json_patch(cur, &body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })
        })),
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/apply-patch+yaml" => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            Ok(Box::new(move |cur| Ok(patch::merge_patch(cur, &body))))
        }
        _ => Err(ApiError::unsupported_media_type(&[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_of_a_deployment() {
        let d = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7", "labels": {"a": "b"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let mut zero = d.clone();
        zero["spec"]["replicas"] = json!(0);
        assert_eq!(scale_of(&zero)["spec"], json!({}));
        assert_eq!(
            scale_of(&d),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
                "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}})
        );
    }

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
