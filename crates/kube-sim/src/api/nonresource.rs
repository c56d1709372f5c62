//! Non-resource paths: health, metrics, version, discovery, OpenAPI, OIDC discovery and the test controls.

use std::sync::Arc;

use http::{Method, Response};
use serde_json::Value;

use super::require;
use crate::Sim;
use crate::authz::Attrs;
use crate::error::{ApiError, ApiResult};
use crate::server::{Body, Ctx, full, json_response, typed_response};

fn verb_of_method(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

pub(crate) async fn non_resource(
    sim: &Arc<Sim>,
    ctx: &Ctx,
    path: &str,
) -> ApiResult<Response<Body>> {
    let verb = verb_of_method(&ctx.method);
    require(sim, &ctx.user, &Attrs::non_resource(verb, path))?;
    let trimmed = path.trim_end_matches('/');
    let reg = sim.registry.read().clone();
    let get_only = |v: Value| -> ApiResult<Response<Body>> {
        if ctx.method != Method::GET && ctx.method != Method::HEAD {
            return Err(ApiError::method_not_allowed());
        }
        Ok(json_response(200, &v))
    };
    let segs: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["healthz"] | ["livez"] | ["readyz"] | ["healthz", _] | ["livez", _] | ["readyz", _] => {
            let body = if ctx.query.get("verbose").is_some() {
                format!(
                    "[+]ping ok\n[+]etcd ok\n[+]poststarthook/kube-sim ok\n{} check passed\n",
                    segs[0]
                )
            } else {
                "ok".to_string()
            };
            Ok(Response::builder()
                .header("content-type", "text/plain; charset=utf-8")
                .body(full(body))
                .map_err(|e| ApiError::internal(e.to_string()))?)
        }
        ["metrics"] if ctx.method == Method::GET => {
            // Only the connection counters of the bounded server (kube-apiserver serves far more here).
            let mut text = String::new();
            sim.server.stats().encode(&mut text, "kube_sim_server");
            Ok(Response::builder()
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(full(text))
                .map_err(|e| ApiError::internal(e.to_string()))?)
        }
        ["version"] => get_only(crate::discovery::version()),
        ["api"] => {
            if let Some(media) = crate::discovery::wants_aggregated(ctx.header("accept")) {
                return Ok(typed_response(
                    200,
                    media,
                    &crate::discovery::aggregated(&reg, true, media),
                ));
            }
            get_only(crate::discovery::core_versions(
                sim.base_url.split("://").nth(1).unwrap_or(""),
            ))
        }
        ["apis"] => {
            if let Some(media) = crate::discovery::wants_aggregated(ctx.header("accept")) {
                return Ok(typed_response(
                    200,
                    media,
                    &crate::discovery::aggregated(&reg, false, media),
                ));
            }
            get_only(crate::discovery::group_list(&reg))
        }
        ["api", v] => {
            get_only(crate::discovery::resource_list(&reg, "", v).ok_or_else(ApiError::no_route)?)
        }
        // A group or version nobody serves falls through to the apiserver's mux: Go's plain-text 404.
        ["apis", g] => match crate::discovery::group(&reg, g) {
            Some(group) => get_only(group),
            None => page_not_found(),
        },
        ["apis", g, v] => match crate::discovery::resource_list(&reg, g, v) {
            Some(list) => get_only(list),
            None => page_not_found(),
        },
        ["openapi", "v2"] => {
            if ctx.header("accept").contains("protobuf") {
                return Response::builder()
                    .header("content-type", crate::discovery::OPENAPI_V2_PROTOBUF)
                    .body(full(crate::discovery::openapi_v2_protobuf()))
                    .map_err(|e| ApiError::internal(e.to_string()));
            }
            get_only(crate::discovery::openapi_v2_json())
        }
        ["openapi", "v3"] => get_only(crate::discovery::openapi_v3_index(&reg)),
        ["openapi", "v3", "api", v] => {
            get_only(crate::discovery::openapi_v3_doc(&reg, "", v).ok_or_else(ApiError::no_route)?)
        }
        ["openapi", "v3", "apis", g, v] => {
            get_only(crate::discovery::openapi_v3_doc(&reg, g, v).ok_or_else(ApiError::no_route)?)
        }
        [".well-known", "openid-configuration"] => {
            get_only(kube_sim_auth::token::openid_configuration(
                sim.signer.issuer(),
                &format!("{}/openid/v1/jwks", sim.base_url),
            ))
        }
        ["openid", "v1", "jwks"] => {
            let mut r = get_only(sim.signer.jwks())?;
            r.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/jwk-set+json"),
            );
            Ok(r)
        }
        ["sim", "v1", "compact"] if ctx.method == Method::POST => {
            sim.store.compact();
            Ok(json_response(200, &crate::error::success_status(None)))
        }
        _ => Err(ApiError::no_route()),
    }
}

/// Go's `http.NotFound`: `404 page not found` as text, what the apiserver's mux answers for paths no API
/// group serves.
fn page_not_found() -> ApiResult<Response<Body>> {
    Response::builder()
        .status(404)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(full("404 page not found\n"))
        .map_err(|e| ApiError::internal(e.to_string()))
}
