//! Delete and deletecollection: options from the query and the DeleteOptions body; the registry deletes.

use std::sync::Arc;

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
            "",
            "",
            vec![Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
                field: "propagationPolicy".into(),
            }],
        ));
    }
    Ok(o)
}

pub(crate) fn delete(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> ApiResult<(Arc<Value>, u16)> {
    let opts = delete_opts(ctx)?;
    delete_object(sim, rt, ns, name, &opts)
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
            Ok((obj, _)) => deleted.push((*obj).clone()),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}
