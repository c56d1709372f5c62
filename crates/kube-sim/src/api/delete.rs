//! Delete and deletecollection: options from the query and the DeleteOptions body; the registry deletes.

use http::Response;
use serde_json::{Value, json};

use super::dry_run;
use super::read::Selectors;
use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta::meta_str;
use crate::registry::{DeleteOpts, delete_object};
use crate::resources::ResourceType;
use crate::server::{Body, Ctx, json_response};

fn delete_opts(ctx: &Ctx) -> ApiResult<DeleteOpts> {
    let mut o = DeleteOpts {
        propagation: ctx.query.get("propagationPolicy").map(str::to_string),
        dry_run: dry_run(ctx),
        ..Default::default()
    };
    if !ctx.body.is_empty() {
        let v: Value = serde_json::from_slice(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            o.propagation = Some(p.to_string());
        }
        if let Some(true) = v.get("orphanDependents").and_then(Value::as_bool) {
            o.propagation = Some("Orphan".into());
        }
        o.uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.rv = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if v.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"))
        {
            o.dry_run = true;
        }
    }
    if let Some(p) = &o.propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::invalid(
            "DeleteOptions",
            "meta.k8s.io",
            "",
            vec![Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
                field: "propagationPolicy".into(),
            }],
        ));
    }
    Ok(o)
}

/// Whether the body's DeleteOptions say `orphanDependents: false`, the one case the apiserver answers 202.
fn orphan_dependents_false(ctx: &Ctx) -> bool {
    serde_json::from_slice::<Value>(&ctx.body)
        .ok()
        .and_then(|v| v.get("orphanDependents").and_then(Value::as_bool))
        == Some(false)
}

/// The kinds whose storage answers a delete with the deleted object (`ReturnDeletedObject`); every other kind
/// answers a delete that removed the object with a `Status` Success.
fn returns_deleted_object(group: &str, resource: &str) -> bool {
    group.is_empty() && matches!(resource, "pods" | "services" | "namespaces")
}

/// The answer to a delete, as the apiserver's handler writes it: 200 (202 only for `orphanDependents: false`
/// while the object waits for finalizers); the object while it is still there (finalizers, foreground), else a
/// `Status` Success naming it, or for the kinds that return the deleted object, that object (a pod with the
/// deletionTimestamp and bumped generation its graceful-deletion step gave it).
pub(crate) fn delete_answer(
    (group, resource): (&str, &str),
    obj: &Value,
    removed: bool,
    orphan_dependents_false: bool,
    now: &str,
) -> (u16, Value) {
    if !removed {
        let code = if orphan_dependents_false { 202 } else { 200 };
        return (code, obj.clone());
    }
    if returns_deleted_object(group, resource) {
        let mut obj = obj.clone();
        if resource == "pods"
            && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
            && m.get("deletionTimestamp").is_none_or(Value::is_null)
        {
            let generation = m.get("generation").and_then(Value::as_i64).unwrap_or(1);
            m.insert("deletionTimestamp".into(), json!(now));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("generation".into(), json!(generation + 1));
        }
        return (200, obj);
    }
    let mut details =
        json!({"name": meta_str(obj, "name"), "kind": resource, "uid": meta_str(obj, "uid")});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
    (200, status)
}

/// Delete one object; the answer's code and body ([`delete_answer`]).
pub(crate) fn delete(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> ApiResult<(u16, Value)> {
    let opts = delete_opts(ctx)?;
    let (obj, code) = delete_object(sim, rt, ns, name, &opts)?;
    // The registry says 202 while the object waits for its finalizers, 200 once it is gone.
    let removed = code != 202;
    Ok(delete_answer(
        (&rt.group, &rt.resource),
        &obj,
        removed,
        orphan_dependents_false(ctx),
        &crate::meta::now_rfc3339(),
    ))
}

pub(crate) fn delete_collection(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: Option<&str>,
) -> ApiResult<Response<Body>> {
    let sel = Selectors::from_ctx(ctx, rt)?;
    let opts = delete_opts(ctx)?;
    let filter = |o: &Value| sel.matches(o);
    let (items, _, rv) = sim.store.list(&rt.key(), ns, None, None, None, &filter);
    let mut deleted = Vec::new();
    for item in items {
        let ins = meta_str(&item, "namespace").to_string();
        let name = meta_str(&item, "name").to_string();
        match delete_object(sim, rt, &ins, &name, &opts) {
            Ok((obj, _)) => {
                let mut obj = (*obj).clone();
                // Items of a built-in kind's list carry no kind or apiVersion.
                if rt.crd.is_none()
                    && let Some(o) = obj.as_object_mut()
                {
                    o.remove("kind");
                    o.remove("apiVersion");
                }
                deleted.push(obj);
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_object_is_answered_with_a_status_unless_its_kind_returns_it() {
        let cm =
            json!({"kind": "ConfigMap", "metadata": {"name": "a", "uid": "u1", "generation": 1}});
        let (code, body) = delete_answer(("", "configmaps"), &cm, true, false, "t");
        assert_eq!(code, 200);
        assert_eq!(body["status"], "Success");
        assert_eq!(
            body["details"],
            json!({"name": "a", "kind": "configmaps", "uid": "u1"})
        );
        // Held by a finalizer: the object, 200 (202 only when orphanDependents is false).
        assert_eq!(
            delete_answer(("", "configmaps"), &cm, false, false, "t"),
            (200, cm.clone())
        );
        assert_eq!(
            delete_answer(("", "configmaps"), &cm, false, true, "t").0,
            202
        );
        // A pod comes back with the deletion its graceful step wrote.
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "uid": "u2", "generation": 1}});
        let (_, body) = delete_answer(("", "pods"), &pod, true, false, "t");
        assert_eq!(body["metadata"]["deletionTimestamp"], "t");
        assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(body["metadata"]["generation"], 2);
    }
}
