//! Update, patch (JSON, merge, strategic merge) and server-side apply; the registry computes and writes.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{dry_run, strict_of};
use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::registry::{self, create::metadata_mut};
use crate::resources::ResourceType;
use crate::server::{Ctx, parse_body};

pub(crate) fn update(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    mut body: Value,
    status_only: bool,
) -> ApiResult<(Arc<Value>, u16)> {
    super::check_unknown_fields(ctx, rt, &mut body)?;
    let opts = registry::UpdateOpts {
        status_only,
        strict: strict_of(ctx),
        dry_run: dry_run(ctx),
    };
    let obj = registry::update(sim, rt, ns, name, body, opts)?;
    Ok((obj, 200))
}

// === patch ===

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

pub(crate) async fn patch(
    sim: &Arc<Sim>,
    ctx: &Ctx,
    rt: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    status_only: bool,
) -> ApiResult<(Arc<Value>, u16)> {
    let ct = ctx.media_type();
    let custom = rt.crd.is_some();
    let accepted: Vec<&str> = PATCH_TYPES
        .iter()
        .copied()
        .filter(|t| !(custom && *t == "application/strategic-merge-patch+json"))
        .collect();
    if !PATCH_TYPES.contains(&ct.as_str()) {
        // Not a patch type at all: the apiserver's patch handler answers with the bare status text.
        return Err(ApiError::unsupported_patch_type());
    }
    if !accepted.contains(&ct.as_str()) {
        return Err(ApiError::unsupported_media_type(&accepted));
    }
    let patch_body: Value = if ct == "application/apply-patch+yaml" {
        parse_body(ctx)?
    } else {
        serde_json::from_slice(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let strict = strict_of(ctx);
    if ct == "application/apply-patch+yaml" {
        let manager = ctx
            .query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired".into(),
                        message: "fieldManager: Required value: is required for apply patch".into(),
                        field: "fieldManager".into(),
                    }],
                )
            })?;
        let kind = meta::str_at(&patch_body, "/kind");
        if !kind.is_empty() && kind != rt.kind {
            let (group, version) =
                crate::resources::split_api_version(meta::str_at(&patch_body, "/apiVersion"));
            return Err(ApiError::bad_request(format!(
                "invalid object type: {group}/{version}, Kind={kind}"
            )));
        }
        let force = ctx.query.flag("force");
        if sim.store.get(&rt.key(), ns, name).is_none() {
            if status_only {
                return Err(ApiError::not_found(&rt.resource, &rt.group, name));
            }
            let mut applied = patch_body.clone();
            if applied.is_object() {
                metadata_mut(&mut applied).insert("name".into(), json!(name));
            }
            let merged = kube_sim_machinery::patch::server_side_apply(
                None,
                &applied,
                manager,
                force,
                &meta::now_rfc3339(),
                &merge_keys(rt),
            )
            .map_err(apply_error)?;
            let obj = super::create::create(
                sim,
                ctx,
                rt,
                if rt.namespaced { Some(ns) } else { None },
                merged,
            )
            .await?;
            return Ok((obj, 201));
        }
        let apply = |cur: &Value| -> ApiResult<Value> {
            let mut applied = patch_body.clone();
            if status_only {
                // Apply to the status subresource: only the status stanza is taken from the configuration.
                let status = applied.get("status").cloned();
                let mut base = json!({"apiVersion": applied.get("apiVersion").cloned().unwrap_or(Value::Null), "kind": applied.get("kind").cloned().unwrap_or(Value::Null), "metadata": {"name": name}});
                if let Some(s) = status {
                    base["status"] = s;
                }
                applied = base;
            }
            kube_sim_machinery::patch::server_side_apply(
                Some(cur),
                &applied,
                manager,
                force,
                &meta::now_rfc3339(),
                &merge_keys(rt),
            )
            .map_err(apply_error)
        };
        return patch_with(sim, ctx, rt, ns, name, status_only, strict, &apply);
    }
    let apply = |cur: &Value| -> ApiResult<Value> {
        match ct.as_str() {
            "application/json-patch+json" => {
                if let Some(kind) = go_json_kind_unless_array(&patch_body) {
                    return Err(ApiError::bad_request(format!(
                        "error decoding patch: json: cannot unmarshal {kind} into Go value of type []handlers.jsonPatchOp"
                    )));
                }
                // The apiserver keeps why the patch failed to itself: a bare 422 without details.
                kube_sim_machinery::patch::json_patch(cur, &patch_body).map_err(|_| {
                    let mut err = ApiError::invalid(&rt.kind, &rt.group, "", Vec::new());
                    err.message =
                        "the server rejected our request due to an error in our request".into();
                    err.with_details("", "", "")
                })
            }
            "application/merge-patch+json" => {
                if !patch_body.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a merge patch must be a JSON object",
                    ));
                }
                Ok(kube_sim_machinery::patch::merge_patch(cur, &patch_body))
            }
            _ => {
                if !patch_body.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a strategic merge patch must be a JSON object",
                    ));
                }
                kube_sim_machinery::patch::strategic_merge_patch(cur, &patch_body, &merge_keys(rt))
                    .map_err(|e| ApiError::bad_request(e.to_string()))
            }
        }
    };
    patch_with(sim, ctx, rt, ns, name, status_only, strict, &apply)
}

fn apply_error(e: kube_sim_machinery::patch::ApplyError) -> ApiError {
    match e {
        kube_sim_machinery::patch::ApplyError::Conflict(ref conflicts) => {
            let causes = conflicts
                .iter()
                .map(|c| crate::error::Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with {}", c.manager_description()),
                    field: c.field.clone(),
                })
                .collect();
            ApiError::apply_conflict(e.to_string(), causes)
        }
        other => ApiError::bad_request(other.to_string()),
    }
}

fn merge_keys(rt: &ResourceType) -> kube_sim_machinery::patch::CoreMergeKeys {
    if rt.crd.is_some() {
        kube_sim_machinery::patch::CoreMergeKeys::for_kind("")
    } else {
        kube_sim_machinery::patch::CoreMergeKeys::for_kind(&rt.kind)
    }
}

#[allow(clippy::too_many_arguments)]
fn patch_with(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    status_only: bool,
    strict: bool,
    apply: &dyn Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<(Arc<Value>, u16)> {
    let opts = registry::UpdateOpts {
        status_only,
        strict,
        dry_run: dry_run(ctx),
    };
    // The patched object is checked like a request body (a patch may bring unknown fields).
    let checked = |cur: &Value| -> ApiResult<Value> {
        let mut next = apply(cur)?;
        super::check_unknown_fields(ctx, rt, &mut next)?;
        Ok(next)
    };
    let obj = registry::update_with(sim, rt, ns, name, opts, &checked)?;
    Ok((obj, 200))
}

/// Go's name for a JSON value's type in an unmarshal error (`object`, `string`, ...), or None for an array.
fn go_json_kind_unless_array(v: &Value) -> Option<&'static str> {
    match v {
        Value::Array(_) => None,
        Value::Object(_) => Some("object"),
        Value::String(_) => Some("string"),
        Value::Number(_) => Some("number"),
        Value::Bool(_) => Some("bool"),
        Value::Null => None,
    }
}
