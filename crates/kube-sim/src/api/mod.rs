//! The HTTP verbs: request routing, authorisation, and one module per verb family:
//! [`read`] (get, list, tables), [`watch`], [`create`], [`update`] (update, patch, apply), [`delete`]
//! (delete, deletecollection), [`subresources`] (binding, scale; status and token route to the verbs and the review
//! APIs) and [`nonresource`] (health, discovery, OpenAPI, OIDC, metrics, test controls).
//!
//! Every handler follows the same shape: resolve the resource type, authorise the request, turn the request
//! into plain values (query options, a parsed body), then call the [`crate::registry`], which computes the new
//! object with pure functions and writes it through the store in one atomic step. Nothing below this layer
//! sees an HTTP type; nothing below it calls up into it.

pub mod create;
pub mod delete;
pub mod list_options;
pub mod nonresource;
pub mod read;
pub mod subresources;
pub mod update;
pub mod watch;

use std::sync::Arc;

use http::{Method, Response};
use serde_json::Value;

use crate::Sim;
use crate::authn::User;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::server::{
    Body, Ctx, ResourcePath, Route, error_response, json_response, parse_body, parse_route,
};

pub use crate::authz::{Attrs, authorize};
pub use read::{Selectors, columns, field_kind, for_version, table_of, wants_table};
// Writes outside a request live in the registry; these names stay here for existing callers.
pub use crate::registry::{
    DeleteOpts, after_write, create_internal, delete_object, finish_write, prepare_create,
    store_create,
};

fn require(sim: &Sim, user: &User, attrs: &Attrs) -> ApiResult<()> {
    let (ok, _) = authorize(sim, user, attrs);
    if ok {
        return Ok(());
    }
    // Anonymous requests are authorised like any other user: a denial is 403 for system:anonymous, as with the
    // apiserver's anonymous auth (401 is only for credentials that do not authenticate).
    Err(attrs.forbidden(&user.name))
}

/// Route a request.
pub async fn dispatch(sim: &Arc<Sim>, ctx: &Ctx) -> ApiResult<Response<Body>> {
    match parse_route(&ctx.path) {
        Route::NonResource(path) => nonresource::non_resource(sim, ctx, &path).await,
        Route::Resource(p) => resource(sim, ctx, p).await,
    }
}

fn verb_for(ctx: &Ctx, p: &ResourcePath) -> &'static str {
    match ctx.method {
        Method::GET | Method::HEAD => {
            if p.name.is_some() {
                "get"
            } else if ctx.query.flag("watch") {
                "watch"
            } else {
                "list"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => {
            if p.name.is_some() {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => "unknown",
    }
}

async fn resource(sim: &Arc<Sim>, ctx: &Ctx, p: ResourcePath) -> ApiResult<Response<Body>> {
    let rt = sim
        .registry
        .read()
        .get(&p.group, &p.version, &p.resource)
        .ok_or_else(ApiError::no_route)?;
    if p.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_route());
    }
    let verb = verb_for(ctx, &p);
    if verb == "unknown" {
        return Err(ApiError::method_not_allowed());
    }
    let ns = p.namespace.clone();
    let attrs = Attrs::resource(
        verb,
        &rt.group,
        &rt.resource,
        p.subresource.as_deref(),
        ns.as_deref(),
        p.name.as_deref(),
    );
    require(sim, &ctx.user, &attrs)?;
    check_field_validation(ctx, verb)?;
    if !accept_is_served(ctx.header("accept")) {
        return Err(ApiError::not_acceptable(
            "406: Not Acceptable\n\nAvailable representations: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ));
    }

    // Create-only review resources.
    if rt.verbs == ["create"] {
        if verb != "create" {
            return Err(ApiError::method_not_allowed());
        }
        let body = parse_body(ctx)?;
        let out = crate::reviews::handle_review(sim, &ctx.user, &rt, ns.as_deref(), body)?;
        return Ok(json_response(201, &out));
    }

    match (p.subresource.as_deref(), p.name.as_deref()) {
        (None, None) => match verb {
            "list" => read::list(sim, ctx, &rt, ns.as_deref()),
            "watch" => watch::watch(sim, ctx, &rt, ns.as_deref(), None),
            "create" => {
                let body = parse_body(ctx)?;
                let obj = create::create(sim, ctx, &rt, ns.as_deref(), body).await?;
                Ok(read::object_response(ctx, &rt, 201, &obj))
            }
            "deletecollection" => delete::delete_collection(sim, ctx, &rt, ns.as_deref()),
            _ => Err(ApiError::method_not_allowed()),
        },
        (None, Some(name)) => {
            let ns = ns.as_deref().unwrap_or("");
            match verb {
                "get" => {
                    let obj = sim
                        .store
                        .get(&rt.key(), ns, name)
                        .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
                    Ok(read::object_response(ctx, &rt, 200, &obj))
                }
                "update" => {
                    let body = parse_body(ctx)?;
                    let (obj, code) = update::update(sim, ctx, &rt, ns, name, body, false)?;
                    Ok(read::object_response(ctx, &rt, code, &obj))
                }
                "patch" => {
                    let (obj, code) = update::patch(sim, ctx, &rt, ns, name, false).await?;
                    Ok(read::object_response(ctx, &rt, code, &obj))
                }
                "delete" => {
                    let (code, body) = delete::delete(sim, ctx, &rt, ns, name)?;
                    if body.get("kind").and_then(Value::as_str) == Some("Status") {
                        return Ok(json_response(code, &body));
                    }
                    Ok(read::object_response(ctx, &rt, code, &Arc::new(body)))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        (Some(sub), Some(name)) => {
            let ns = ns.as_deref().unwrap_or("");
            if rt.subresource(sub).is_none() {
                // The apiextensions handler answers a subresource a CRD does not serve with NotFound of the object.
                if rt.crd.is_some() {
                    return Err(ApiError::not_found(&rt.resource, &rt.group, name));
                }
                return Err(ApiError::no_route());
            }
            match (sub, verb) {
                ("status", "get") => {
                    let obj = sim
                        .store
                        .get(&rt.key(), ns, name)
                        .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
                    Ok(read::object_response(ctx, &rt, 200, &obj))
                }
                ("status", "update") => {
                    let body = parse_body(ctx)?;
                    let (obj, code) = update::update(sim, ctx, &rt, ns, name, body, true)?;
                    Ok(read::object_response(ctx, &rt, code, &obj))
                }
                ("status", "patch") => {
                    let (obj, code) = update::patch(sim, ctx, &rt, ns, name, true).await?;
                    Ok(read::object_response(ctx, &rt, code, &obj))
                }
                ("scale", "get") => {
                    let out = subresources::get_scale(sim, &rt, ns, name)?;
                    Ok(json_response(200, &out))
                }
                ("scale", "update" | "patch") => {
                    let out = subresources::write_scale(sim, ctx, &rt, ns, name, verb == "patch")?;
                    Ok(json_response(200, &out))
                }
                ("binding", "create") => {
                    let body = parse_body(ctx)?;
                    let out = subresources::bind_pod(sim, ns, name, &body)?;
                    Ok(json_response(201, &out))
                }
                ("token", "create") => {
                    let body = parse_body(ctx)?;
                    let out = crate::reviews::token_request(sim, ns, name, body)?;
                    Ok(json_response(201, &out))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        (Some(_), None) => Err(ApiError::no_route()),
    }
}

/// Whether an `Accept` header names a media type the apiserver can answer with (JSON, YAML, protobuf, or a
/// wildcard); an empty header accepts anything.
pub(crate) fn accept_is_served(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            matches!(
                media.to_ascii_lowercase().as_str(),
                "*/*"
                    | "application/*"
                    | "application/json"
                    | "application/yaml"
                    | "application/vnd.kubernetes.protobuf"
            )
        })
}

/// The write options' `fieldValidation` must be one the apiserver knows: 422 on
/// `CreateOptions`/`UpdateOptions`/`PatchOptions` otherwise.
fn check_field_validation(ctx: &Ctx, verb: &str) -> ApiResult<()> {
    let options = match verb {
        "create" => "CreateOptions",
        "update" => "UpdateOptions",
        "patch" => "PatchOptions",
        _ => return Ok(()),
    };
    let value = ctx.query.get("fieldValidation").unwrap_or("");
    if matches!(value, "" | "Ignore" | "Strict" | "Warn") {
        return Ok(());
    }
    Err(ApiError::invalid(
        options,
        "meta.k8s.io",
        "",
        vec![crate::registry::validate::not_supported(
            "fieldValidation",
            value,
            &["", "Ignore", "Strict", "Warn"],
        )],
    ))
}

pub(crate) fn strict_of(ctx: &Ctx) -> bool {
    ctx.query.get("fieldValidation") == Some("Strict")
}

/// Unknown fields of a written object, by `fieldValidation` (`Ignore`, `Warn` the default, `Strict`), as the
/// apiserver's decoding treats them: built-in kinds are pruned of them (with a `Warning` header each under
/// Warn) or refused with 400 under Strict; custom resources get the warnings here and their pruning or strict
/// error from the registry's schema step.
pub(crate) fn check_unknown_fields(
    ctx: &Ctx,
    rt: &ResourceType,
    obj: &mut serde_json::Value,
) -> ApiResult<()> {
    let mode = ctx.query.get("fieldValidation").unwrap_or("Warn");
    if mode == "Ignore" || !obj.is_object() {
        return Ok(());
    }
    let unknown = if rt.crd.is_some() {
        match &rt.crd {
            Some(crd) if mode == "Warn" && crd.schema.is_object() => {
                kube_sim_schema::admit(&crd.schema, &mut obj.clone()).unknown_fields
            }
            _ => Vec::new(),
        }
    } else {
        let av = rt.api_version();
        crate::registry::unknown_fields::prune(&av, &rt.kind, obj).unwrap_or_default()
    };
    if unknown.is_empty() {
        return Ok(());
    }
    if mode == "Strict" {
        let list = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {list}",
            kind = rt.kind,
            version = rt.version,
        )));
    }
    ctx.warnings
        .lock()
        .extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
    Ok(())
}

pub(crate) fn dry_run(ctx: &Ctx) -> bool {
    ctx.query.get("dryRun") == Some("All")
}

/// Turn a handler error into a response (used by streaming paths).
pub fn error_to_response(e: &ApiError) -> Response<Body> {
    error_response(e)
}
