//! Request dispatch and the verbs: get, list, watch, create, update, patch, delete, deletecollection, and the
//! status / binding / token subresources.
//!
//! Every handler follows the same shape: resolve the resource type, authorise the request, compute the new object
//! from the old one with pure functions, then write it through the store in one atomic step.

use std::sync::Arc;

use http::{Method, Response};
use serde_json::{Map, Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::resources::{ResKey, ResourceType, crd_types};
use crate::server::{
    Body, Ctx, ResourcePath, Route, User, error_response, full, json_response, parse_body,
    parse_route, typed_response,
};
use crate::store::DeleteOutcome;
use kube_sim_machinery::fields::FieldSelector;
use kube_sim_machinery::labels::LabelSelector;

/// Authorisation attributes of one request.
#[derive(Debug, Clone)]
pub struct Attrs {
    /// Verb.
    pub verb: String,
    /// Resource request (true) or non-resource path (false).
    pub resource_request: bool,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Non-resource path.
    pub path: String,
}

impl Attrs {
    /// Attributes of a resource request.
    pub fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        sub: Option<&str>,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        Attrs {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.map(str::to_string),
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            path: String::new(),
        }
    }

    /// Attributes of a non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Attrs {
            verb: verb.into(),
            resource_request: false,
            group: String::new(),
            resource: String::new(),
            subresource: None,
            namespace: None,
            name: None,
            path: path.into(),
        }
    }

    /// The message of a 403 for these attributes.
    pub fn forbidden_message(&self, user: &str) -> String {
        if !self.resource_request {
            return format!(
                "forbidden: User \"{user}\" cannot {} path \"{}\"",
                self.verb, self.path
            );
        }
        let res = match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        };
        let subject = match &self.name {
            Some(n) => format!(
                "{} \"{n}\"",
                crate::error::qualified(&self.resource, &self.group)
            ),
            None => crate::error::qualified(&self.resource, &self.group),
        };
        let scope = match &self.namespace {
            Some(ns) if !ns.is_empty() => format!("in the namespace \"{ns}\""),
            _ => "at the cluster scope".to_string(),
        };
        format!(
            "{subject} is forbidden: User \"{user}\" cannot {} resource \"{res}\" in API group \"{}\" {scope}",
            self.verb, self.group
        )
    }
}

/// Evaluate RBAC for `user`: (allowed, reason).
pub fn authorize(sim: &Sim, user: &User, attrs: &Attrs) -> (bool, String) {
    if user.is_master() {
        return (true, "system:masters".into());
    }
    crate::reviews::rbac_decision(sim, user, attrs)
}

fn require(sim: &Sim, user: &User, attrs: &Attrs) -> ApiResult<()> {
    let (ok, _) = authorize(sim, user, attrs);
    if ok {
        return Ok(());
    }
    // Anonymous requests are authorised like any other user: a denial is 403 for system:anonymous, as with the
    // apiserver's anonymous auth (401 is only for credentials that do not authenticate).
    Err(ApiError::forbidden(attrs.forbidden_message(&user.name)))
}

/// Route a request.
pub async fn dispatch(sim: &Arc<Sim>, ctx: &Ctx) -> ApiResult<Response<Body>> {
    match parse_route(&ctx.path) {
        Route::NonResource(path) => non_resource(sim, ctx, &path).await,
        Route::Resource(p) => resource(sim, ctx, p).await,
    }
}

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

async fn non_resource(sim: &Arc<Sim>, ctx: &Ctx, path: &str) -> ApiResult<Response<Body>> {
    let verb = verb_of_method(&ctx.method);
    require(sim, &ctx.user, &Attrs::non_resource(verb, path))?;
    let trimmed = path.trim_end_matches('/');
    let reg = sim.registry.read().clone();
    let get_only = |v: Value| -> ApiResult<Response<Body>> {
        if ctx.method != Method::GET && ctx.method != Method::HEAD {
            return Err(ApiError::method_not_allowed(ctx.method.as_str(), path));
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
        ["apis", g] => get_only(crate::discovery::group(&reg, g).ok_or_else(ApiError::no_route)?),
        ["apis", g, v] => {
            get_only(crate::discovery::resource_list(&reg, g, v).ok_or_else(ApiError::no_route)?)
        }
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
        return Err(ApiError::method_not_allowed(
            ctx.method.as_str(),
            &rt.qualified(),
        ));
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

    // Create-only review resources.
    if rt.verbs == ["create"] {
        if verb != "create" {
            return Err(ApiError::method_not_allowed(
                ctx.method.as_str(),
                &rt.qualified(),
            ));
        }
        let body = parse_body(ctx)?;
        let out = crate::reviews::handle_review(sim, &ctx.user, &rt, ns.as_deref(), body)?;
        return Ok(json_response(201, &out));
    }

    match (p.subresource.as_deref(), p.name.as_deref()) {
        (None, None) => match verb {
            "list" => list(sim, ctx, &rt, ns.as_deref()),
            "watch" => crate::watch::watch(sim, ctx, &rt, ns.as_deref(), None),
            "create" => {
                let body = parse_body(ctx)?;
                let obj = create(sim, ctx, &rt, ns.as_deref(), body).await?;
                Ok(object_response(ctx, &rt, 201, &obj))
            }
            "deletecollection" => delete_collection(sim, ctx, &rt, ns.as_deref()),
            _ => Err(ApiError::method_not_allowed(
                ctx.method.as_str(),
                &rt.qualified(),
            )),
        },
        (None, Some(name)) => {
            let ns = ns.as_deref().unwrap_or("");
            match verb {
                "get" => {
                    let obj = sim
                        .store
                        .get(&rt.key(), ns, name)
                        .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
                    Ok(object_response(ctx, &rt, 200, &obj))
                }
                "update" => {
                    let body = parse_body(ctx)?;
                    let (obj, code) = update(sim, ctx, &rt, ns, name, body, false)?;
                    Ok(object_response(ctx, &rt, code, &obj))
                }
                "patch" => {
                    let (obj, code) = patch(sim, ctx, &rt, ns, name, false).await?;
                    Ok(object_response(ctx, &rt, code, &obj))
                }
                "delete" => {
                    let (obj, code) = delete(sim, ctx, &rt, ns, name)?;
                    Ok(object_response(ctx, &rt, code, &obj))
                }
                _ => Err(ApiError::method_not_allowed(
                    ctx.method.as_str(),
                    &rt.qualified(),
                )),
            }
        }
        (Some(sub), Some(name)) => {
            let ns = ns.as_deref().unwrap_or("");
            if rt.subresource(sub).is_none() {
                return Err(ApiError::no_route());
            }
            match (sub, verb) {
                ("status", "get") => {
                    let obj = sim
                        .store
                        .get(&rt.key(), ns, name)
                        .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
                    Ok(object_response(ctx, &rt, 200, &obj))
                }
                ("status", "update") => {
                    let body = parse_body(ctx)?;
                    let (obj, code) = update(sim, ctx, &rt, ns, name, body, true)?;
                    Ok(object_response(ctx, &rt, code, &obj))
                }
                ("status", "patch") => {
                    let (obj, code) = patch(sim, ctx, &rt, ns, name, true).await?;
                    Ok(object_response(ctx, &rt, code, &obj))
                }
                ("binding", "create") => {
                    let body = parse_body(ctx)?;
                    let out = bind_pod(sim, ns, name, &body)?;
                    Ok(json_response(201, &out))
                }
                ("token", "create") => {
                    let body = parse_body(ctx)?;
                    let out = crate::reviews::token_request(sim, ns, name, body)?;
                    Ok(json_response(201, &out))
                }
                _ => Err(ApiError::method_not_allowed(
                    ctx.method.as_str(),
                    &format!("{}/{sub}", rt.qualified()),
                )),
            }
        }
        (Some(_), None) => Err(ApiError::no_route()),
    }
}

// === responses ===

/// Whether the client asked for a server-side Table.
pub fn wants_table(ctx: &Ctx) -> bool {
    let accept = ctx.header("accept");
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn include_object(ctx: &Ctx) -> kube_sim_schema::table::IncludeObject {
    use kube_sim_schema::table::IncludeObject;
    match ctx.query.get("includeObject") {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

/// Columns for a type.
pub fn columns(rt: &ResourceType) -> Vec<kube_sim_schema::table::Column> {
    match &rt.crd {
        Some(crd) => kube_sim_schema::table::crd_columns(&crd.printer_columns),
        None => kube_sim_schema::table::builtin_columns(&rt.kind),
    }
}

/// Build a Table for objects.
pub fn table_of(ctx: &Ctx, rt: &ResourceType, objs: &[&Value], list_meta: Value) -> Value {
    let cols = columns(rt);
    kube_sim_schema::table::table(
        &cols,
        objs,
        list_meta,
        include_object(ctx),
        jiff::Timestamp::now(),
    )
}

/// The object as the requested version presents it (custom resources share storage across versions).
pub fn for_version(rt: &ResourceType, obj: &Arc<Value>) -> Arc<Value> {
    let want = rt.api_version();
    if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        return obj.clone();
    }
    let mut o = (**obj).clone();
    o["apiVersion"] = json!(want);
    Arc::new(o)
}

fn object_response(ctx: &Ctx, rt: &ResourceType, code: u16, obj: &Arc<Value>) -> Response<Body> {
    let obj = for_version(rt, obj);
    if wants_table(ctx) {
        let t = table_of(
            ctx,
            rt,
            &[&obj],
            json!({"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)}),
        );
        return typed_response(code, "application/json", &t);
    }
    json_response(code, &obj)
}

// === list ===

struct ContinueToken {
    rv: u64,
    start: (String, String),
}

fn encode_continue(rv: u64, last: &Value) -> String {
    use base64::Engine;
    let ns = crate::meta::str_at(last, "/metadata/namespace");
    let name = crate::meta::str_at(last, "/metadata/name");
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}\u{0}{name}")});
    base64::engine::general_purpose::URL_SAFE.encode(raw.to_string())
}

fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    use base64::Engine;
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| bad("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let rv = v
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("missing resourceVersion"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing start"))?;
    let (ns, name) = start
        .split_once('\u{0}')
        .ok_or_else(|| bad("invalid start key"))?;
    Ok(ContinueToken {
        rv,
        start: (ns.to_string(), name.to_string()),
    })
}

/// Parsed list/watch selectors.
pub struct Selectors {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Parse and validate from the query.
    pub fn from_ctx(ctx: &Ctx, rt: &ResourceType) -> ApiResult<Selectors> {
        let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let kind = field_kind(rt);
        let target = match &kind {
            Some(k) => kube_sim_machinery::SelectableKind::Builtin(k),
            None => kube_sim_machinery::SelectableKind::Custom {
                cluster_scoped: !rt.namespaced,
                selectable_fields: &[],
            },
        };
        let fields = fields
            .convert_for(target)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Selectors { labels, fields })
    }

    /// Whether an object matches both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .matches(obj.pointer("/metadata/labels").and_then(Value::as_object))
            && self.fields.matches(obj)
    }
}

/// The kind name the field-selector table knows a built-in type by (`Pod`, `events.k8s.io/Event`); None for
/// custom resources.
pub fn field_kind(rt: &ResourceType) -> Option<String> {
    if rt.crd.is_some() {
        return None;
    }
    Some(if rt.group.is_empty() {
        rt.kind.clone()
    } else {
        format!("{}/{}", rt.group, rt.kind)
    })
}

fn list(sim: &Sim, ctx: &Ctx, rt: &ResourceType, ns: Option<&str>) -> ApiResult<Response<Body>> {
    let sel = Selectors::from_ctx(ctx, rt)?;
    let limit = match ctx.query.get("limit") {
        Some(l) if !l.is_empty() => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
        )
        .filter(|n| *n > 0)
        .map(|n| n as usize),
        _ => None,
    };
    let cont = match ctx.query.get("continue") {
        Some(c) if !c.is_empty() => Some(decode_continue(c)?),
        _ => None,
    };
    if let Some(rv) = ctx
        .query
        .get("resourceVersion")
        .filter(|s| !s.is_empty() && *s != "0")
    {
        let rv: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
        if rv > sim.store.current_rv() {
            return Err(ApiError::gone(format!(
                "Too large resource version: {rv}, current resource version: {}",
                sim.store.current_rv()
            )));
        }
    }
    let node = sel.fields.exact_value("spec.nodeName").map(str::to_string);
    let filter = |o: &Value| sel.matches(o);
    let (items, more, rv) = sim.store.list(
        &rt.key(),
        ns,
        node.as_deref(),
        cont.as_ref().map(|c| &c.start),
        limit,
        &filter,
    );
    let rv = cont.as_ref().map_or(rv, |c| c.rv.max(rv));
    let mut list_meta = json!({"resourceVersion": rv.to_string()});
    if more && let Some(last) = items.last() {
        list_meta["continue"] = json!(encode_continue(rv, last));
    }
    if wants_table(ctx) {
        let versioned: Vec<Arc<Value>> = items.iter().map(|o| for_version(rt, o)).collect();
        let refs: Vec<&Value> = versioned.iter().map(|a| a.as_ref()).collect();
        return Ok(json_response(200, &table_of(ctx, rt, &refs, list_meta)));
    }
    // Serialise items without cloning them into one big Value.
    let mut out = Vec::with_capacity(items.len() * 1024 + 256);
    out.extend_from_slice(
        format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":",
            rt.kind,
            rt.api_version()
        )
        .as_bytes(),
    );
    out.extend_from_slice(list_meta.to_string().as_bytes());
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let item = for_version(rt, item);
        serde_json::to_writer(&mut out, item.as_ref())
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    out.extend_from_slice(b"]}");
    Response::builder()
        .header("content-type", "application/json")
        .body(full(out))
        .map_err(|e| ApiError::internal(e.to_string()))
}

// === create ===

fn check_type_meta(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in the request body: expected a JSON object",
        ));
    }
    let want_av = rt.api_version();
    let kind = crate::meta::str_at(obj, "/kind");
    let av = crate::meta::str_at(obj, "/apiVersion");
    if !kind.is_empty() && kind != rt.kind {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): kind {kind} does not match the URL",
            rt.kind
        )));
    }
    if !av.is_empty() && av != want_av {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want_av})"
        )));
    }
    obj["kind"] = json!(rt.kind);
    obj["apiVersion"] = json!(want_av);
    match obj.get("metadata") {
        None | Some(Value::Null) => obj["metadata"] = json!({}),
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    }
    Ok(())
}

use crate::meta::meta_str;

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable_metadata(),
    }
}

#[allow(clippy::panic)]
fn unreachable_metadata() -> ! {
    // metadata_mut just inserted an object; this cannot be reached.
    panic!("metadata is an object")
}

/// Validate and complete a new object (without admission and without storing it).
pub fn prepare_create(
    sim: &Sim,
    rt: &ResourceType,
    path_ns: Option<&str>,
    mut obj: Value,
    strict: bool,
) -> ApiResult<Value> {
    check_type_meta(rt, &mut obj)?;
    let body_ns = meta_str(&obj, "namespace").to_string();
    if rt.namespaced {
        let ns = match (path_ns, body_ns.as_str()) {
            (Some(p), "") => p.to_string(),
            (Some(p), b) if p == b => p.to_string(),
            (Some(_), _) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (None, "") => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object must be set",
                ));
            }
            (None, b) => b.to_string(),
        };
        metadata_mut(&mut obj).insert("namespace".into(), json!(ns));
    } else {
        metadata_mut(&mut obj).remove("namespace");
    }
    let name = meta_str(&obj, "name").to_string();
    if name.is_empty() {
        let prefix = meta_str(&obj, "generateName").to_string();
        if !prefix.is_empty() {
            metadata_mut(&mut obj).insert("name".into(), json!(meta::generate_name(&prefix)));
        }
    }
    let name = meta_str(&obj, "name").to_string();
    let mut causes = meta::validate_name(&rt.kind, &name);
    causes.extend(meta::validate_metadata(&obj));
    if !causes.is_empty() {
        return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
    }
    let ns = meta_str(&obj, "namespace").to_string();
    if rt.namespaced {
        match sim.store.get(&ResKey::new("", "namespaces"), "", &ns) {
            None => return Err(ApiError::not_found("namespaces", "", &ns)),
            Some(n)
                if n.pointer("/metadata/deletionTimestamp")
                    .is_some_and(|v| !v.is_null()) =>
            {
                return Err(ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified()
                )));
            }
            Some(_) => {}
        }
    }
    {
        let m = metadata_mut(&mut obj);
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        m.insert("generation".into(), json!(1));
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
    }
    if rt.has_status()
        && rt.crd.is_some()
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    validate_custom(rt, &mut obj, strict)?;
    crate::api::defaults::on_create(sim, rt, &mut obj)?;
    Ok(obj)
}

/// Schema validation, pruning and defaulting for custom resources, in the apiextensions write order.
///
/// Unknown fields are dropped (structural pruning); with `fieldValidation=Strict` they are an error instead,
/// as the apiserver reports them: `strict decoding error: unknown field "spec.foo"`.
fn validate_custom(rt: &ResourceType, obj: &mut Value, strict: bool) -> ApiResult<()> {
    let Some(crd) = &rt.crd else { return Ok(()) };
    if !crd.schema.is_object() {
        return Ok(());
    }
    let admission = kube_sim_schema::admit(&crd.schema, obj);
    if strict && !admission.unknown_fields.is_empty() {
        let list = admission
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {list}"
        )));
    }
    if !admission.errors.is_empty() {
        let name = meta_str(obj, "name").to_string();
        let causes = admission
            .errors
            .iter()
            .map(|e| Cause {
                reason: e.reason().to_string(),
                message: e.to_string(),
                field: e.field.clone(),
            })
            .collect();
        return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
    }
    Ok(())
}

fn strict_of(ctx: &Ctx) -> bool {
    ctx.query.get("fieldValidation") == Some("Strict")
}

fn dry_run(ctx: &Ctx) -> bool {
    ctx.query.get("dryRun") == Some("All")
}

async fn create(
    sim: &Arc<Sim>,
    ctx: &Ctx,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    body: Value,
) -> ApiResult<Arc<Value>> {
    let mut obj = prepare_create(sim, rt, ns, body, strict_of(ctx))?;
    if rt.group.is_empty() && rt.resource == "pods" {
        obj = crate::admission::admit_pod_create(sim, &ctx.user, obj, dry_run(ctx)).await?;
        crate::api::defaults::after_admission(sim, rt, &mut obj)?;
    }
    if dry_run(ctx) {
        return Ok(Arc::new(obj));
    }
    store_create(sim, rt, obj)
}

/// Store a prepared object and run the side effects of creating it.
pub fn store_create(sim: &Sim, rt: &ResourceType, obj: Value) -> ApiResult<Arc<Value>> {
    let created = sim
        .store
        .create(&rt.key(), obj, (&rt.resource, &rt.group))?;
    after_write(sim, rt, None, Some(&created));
    Ok(created)
}

/// Create an object outside a request (bootstrap, seeding, internal controllers), as the admin.
pub fn create_internal(sim: &Sim, mut obj: Value) -> ApiResult<Arc<Value>> {
    let av = crate::meta::str_at(&obj, "/apiVersion").to_string();
    let kind = crate::meta::str_at(&obj, "/kind").to_string();
    let rt = sim.registry.read().by_kind(&av, &kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "no matches for kind \"{kind}\" in version \"{av}\""
        ))
    })?;
    if rt.namespaced && meta_str(&obj, "namespace").is_empty() {
        metadata_mut(&mut obj).insert("namespace".into(), json!("default"));
    }
    let obj = prepare_create(sim, &rt, None, obj, false)?;
    store_create(sim, &rt, obj)
}

/// Side effects of writes: CRD registration, namespace content, garbage collection.
pub fn after_write(
    sim: &Sim,
    rt: &ResourceType,
    before: Option<&Value>,
    after: Option<&Arc<Value>>,
) {
    // A new or changed object whose owner no longer exists is collected, as the garbage collector does for
    // dependents that name a missing owner (the cascade skips it when another owner is alive).
    if let Some(obj) = after {
        let old_owners: Vec<&str> = before
            .and_then(|b| b.pointer("/metadata/ownerReferences"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.get("uid").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let owners = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array);
        for uid in owners
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("uid").and_then(Value::as_str))
        {
            if !old_owners.contains(&uid) && sim.store.get_by_uid(uid).is_none() {
                let _ = sim.gc_tx.send(crate::gc::GcEvent::Deleted {
                    uid: uid.to_string(),
                    orphan: false,
                });
            }
        }
    }
    if rt.group == "rbac.authorization.k8s.io" {
        sim.rbac_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    if rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions" {
        match after {
            Some(crd) => {
                let name = meta_str(crd, "name").to_string();
                if let Ok(types) = crd_types(crd) {
                    let mut reg = sim.registry.write();
                    reg.remove_crd(&name);
                    for t in types {
                        reg.insert(t);
                    }
                }
            }
            None => {
                if let Some(b) = before {
                    let name = meta_str(b, "name").to_string();
                    let group = crate::meta::str_at(b, "/spec/group").to_string();
                    let plural = crate::meta::str_at(b, "/spec/names/plural").to_string();
                    sim.registry.write().remove_crd(&name);
                    let _ = sim
                        .gc_tx
                        .send(crate::gc::GcEvent::PurgeResource(ResKey::new(
                            &group, &plural,
                        )));
                }
            }
        }
    }
    if rt.group.is_empty()
        && rt.resource == "namespaces"
        && before.is_none()
        && let Some(ns) = after
    {
        crate::gc::namespace_created(sim, meta_str(ns, "name"));
    }
}

// === update ===

fn strip_for_compare(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

/// Compute the object an update produces from `cur` and the client's `body`.
fn next_for_update(
    sim: &Sim,
    rt: &ResourceType,
    cur: &Value,
    mut body: Value,
    status_only: bool,
    strict: bool,
) -> ApiResult<Option<Value>> {
    check_type_meta(rt, &mut body)?;
    let name = meta_str(cur, "name").to_string();
    let body_name = meta_str(&body, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_ns = meta_str(&body, "namespace");
    let cur_ns = meta_str(cur, "namespace");
    if !body_ns.is_empty() && body_ns != cur_ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let body_rv = meta_str(&body, "resourceVersion");
    if !body_rv.is_empty() && body_rv != meta_str(cur, "resourceVersion") {
        return Err(ApiError::conflict(&rt.resource, &rt.group, &name));
    }
    let mut next = if status_only {
        let mut n = cur.clone();
        match body.get("status") {
            Some(s) => n["status"] = s.clone(),
            None => {
                if let Some(o) = n.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        n
    } else {
        let mut n = body;
        if rt.has_status() {
            match cur.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        n
    };
    {
        let cur_meta = cur
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let m = metadata_mut(&mut next);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ] {
            match cur_meta.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        if !m.contains_key("managedFields")
            && let Some(mf) = cur_meta.get("managedFields")
        {
            m.insert("managedFields".into(), mf.clone());
        }
        m.insert(
            "resourceVersion".into(),
            cur_meta
                .get("resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    let mut causes = meta::validate_metadata(&next);
    if cur
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        let old: Vec<&Value> = cur
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let added = next
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|f| !old.contains(&f)));
        if added {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted".into(),
                field: "metadata.finalizers".into(),
            });
        }
    }
    if rt.group.is_empty() && rt.resource == "pods" && !status_only {
        causes.extend(defaults::pod_update_causes(cur, &next));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
    }
    validate_custom(rt, &mut next, strict)?;
    if rt.group == "apiextensions.k8s.io"
        && let Err(msg) = crd_types(&next)
    {
        return Err(ApiError::invalid(
            &rt.kind,
            &rt.group,
            &name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: msg,
                field: "spec".into(),
            }],
        ));
    }
    if strip_for_compare(&next) != strip_for_compare(cur) {
        let g = cur
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        metadata_mut(&mut next).insert("generation".into(), json!(g + 1));
    }
    let _ = sim;
    if next == *cur {
        return Ok(None);
    }
    Ok(Some(next))
}

fn update(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    status_only: bool,
) -> ApiResult<(Arc<Value>, u16)> {
    let strict = strict_of(ctx);
    if dry_run(ctx) {
        let cur = sim
            .store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
        let next = next_for_update(sim, rt, &cur, body, status_only, strict)?;
        return Ok((next.map(Arc::new).unwrap_or(cur), 200));
    }
    let mut body = Some(body);
    let mut before = None;
    let (obj, removed) = sim.store.update(
        &rt.key(),
        ns,
        name,
        &mut |cur| {
            before = Some(cur.clone());
            next_for_update(
                sim,
                rt,
                cur,
                body.take().unwrap_or(Value::Null),
                status_only,
                strict,
            )
        },
        || ApiError::not_found(&rt.resource, &rt.group, name),
    )?;
    finish_write(sim, rt, before.as_deref(), &obj, removed);
    Ok((obj, 200))
}

/// Side effects after a write through the store: `removed` means the write deleted the object (its last
/// finalizer went), which also starts garbage collection of its dependents.
pub fn finish_write(
    sim: &Sim,
    rt: &ResourceType,
    before: Option<&Value>,
    obj: &Arc<Value>,
    removed: bool,
) {
    if removed {
        after_write(sim, rt, Some(obj), None);
        let _ = sim.gc_tx.send(crate::gc::GcEvent::Deleted {
            uid: meta_str(obj, "uid").to_string(),
            orphan: false,
        });
    } else if before
        .is_some_and(|b| meta_str(b, "resourceVersion") != meta_str(obj, "resourceVersion"))
    {
        after_write(sim, rt, before, Some(obj));
    }
}

// === patch ===

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

async fn patch(
    sim: &Arc<Sim>,
    ctx: &Ctx,
    rt: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    status_only: bool,
) -> ApiResult<(Arc<Value>, u16)> {
    let ct = ctx
        .header("content-type")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let custom = rt.crd.is_some();
    let accepted: Vec<&str> = PATCH_TYPES
        .iter()
        .copied()
        .filter(|t| !(custom && *t == "application/strategic-merge-patch+json"))
        .collect();
    if !accepted.contains(&ct.as_str()) {
        return Err(ApiError::unsupported_media_type(&ct, &accepted));
    }
    let patch_body: Value = if ct == "application/apply-patch+yaml" {
        parse_body(ctx)?
    } else {
        serde_json::from_slice(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let strict = strict_of(ctx);
    if ct == "application/apply-patch+yaml" {
        let manager = ctx.query.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad_request("PATCH /apply requires fieldManager to be set (fieldManager is required for apply requests)")
        })?;
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
            let obj = create(
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
                kube_sim_machinery::patch::json_patch(cur, &patch_body).map_err(|e| {
                    let mut err =
                        ApiError::invalid(&rt.kind, &rt.group, meta_str(cur, "name"), Vec::new());
                    err.message = format!(
                        "the server rejected our request due to an error in our request: {e}"
                    );
                    err
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
        kube_sim_machinery::patch::ApplyError::Conflict(_) => {
            ApiError::conflict_message(e.to_string())
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
    if dry_run(ctx) {
        let cur = sim
            .store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
        let patched = apply(&cur)?;
        let next = next_for_update(sim, rt, &cur, patched, status_only, strict)?;
        return Ok((next.map(Arc::new).unwrap_or(cur), 200));
    }
    let mut before = None;
    let (obj, removed) = sim.store.update(
        &rt.key(),
        ns,
        name,
        &mut |cur| {
            before = Some(cur.clone());
            let patched = apply(cur)?;
            next_for_update(sim, rt, cur, patched, status_only, strict)
        },
        || ApiError::not_found(&rt.resource, &rt.group, name),
    )?;
    finish_write(sim, rt, before.as_deref(), &obj, removed);
    Ok((obj, 200))
}

// === delete ===

/// Options of a delete, from the body (DeleteOptions) and the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOpts {
    /// `Orphan`, `Background`, `Foreground`.
    pub propagation: Option<String>,
    /// Precondition uid.
    pub uid: Option<String>,
    /// Precondition resourceVersion.
    pub rv: Option<String>,
    /// Dry run.
    pub dry_run: bool,
}

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

fn delete(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> ApiResult<(Arc<Value>, u16)> {
    let opts = delete_opts(ctx)?;
    delete_object(sim, rt, ns, name, &opts)
}

/// Delete one object (used by handlers, the garbage collector and namespace cleanup).
pub fn delete_object(
    sim: &Sim,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> ApiResult<(Arc<Value>, u16)> {
    if opts.dry_run {
        let cur = sim
            .store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
        return Ok((cur, 200));
    }
    let precondition = |cur: &Value| -> ApiResult<()> {
        if let Some(uid) = &opts.uid
            && uid != meta_str(cur, "uid")
        {
            return Err(ApiError::conflict_message(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta_str(cur, "uid")
            )));
        }
        if let Some(rv) = &opts.rv
            && rv != meta_str(cur, "resourceVersion")
        {
            return Err(ApiError::conflict_message(format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(cur, "resourceVersion")
            )));
        }
        Ok(())
    };
    let is_namespace = rt.group.is_empty() && rt.resource == "namespaces";
    let now = meta::now_rfc3339();
    // `foregroundDeletion` is added only on the foreground path below (an owner with dependents), so nothing else
    // can be left holding a finalizer that no controller will remove.
    let mark_with = |cur: &Value, foreground: bool| -> Value {
        let mut v = cur.clone();
        let m = metadata_mut(&mut v);
        m.insert("deletionTimestamp".into(), json!(now));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        if foreground {
            let fins = m.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(a) = fins.as_array_mut()
                && !a.iter().any(|f| f == "foregroundDeletion")
            {
                a.push(json!("foregroundDeletion"));
            }
        }
        if is_namespace {
            v["status"] = json!({"phase": "Terminating"});
        }
        v
    };
    let mark = |cur: &Value| mark_with(cur, false);
    if is_namespace {
        // Namespaces always go through Terminating: their content is removed first (by the namespace cleaner).
        let nf = || ApiError::not_found(&rt.resource, &rt.group, name);
        let (obj, _) = sim.store.update(
            &rt.key(),
            ns,
            name,
            &mut |cur| {
                precondition(cur)?;
                if cur
                    .pointer("/metadata/deletionTimestamp")
                    .is_some_and(|v| !v.is_null())
                {
                    return Ok(None);
                }
                Ok(Some(mark(cur)))
            },
            nf,
        )?;
        let _ = sim.gc_tx.send(crate::gc::GcEvent::NamespaceDeleted {
            name: name.to_string(),
            uid: meta_str(&obj, "uid").to_string(),
        });
        return Ok((obj, 200));
    }
    let foreground = opts.propagation.as_deref() == Some("Foreground");
    let has_dependents = {
        let uid = sim
            .store
            .get(&rt.key(), ns, name)
            .map(|o| meta_str(&o, "uid").to_string())
            .unwrap_or_default();
        !uid.is_empty() && !sim.store.dependents_of(&uid).is_empty()
    };
    let outcome = if foreground && has_dependents {
        let (obj, _) = sim.store.update(
            &rt.key(),
            ns,
            name,
            &mut |cur| {
                precondition(cur)?;
                if cur
                    .pointer("/metadata/deletionTimestamp")
                    .is_some_and(|v| !v.is_null())
                {
                    // Already being deleted: nothing changes, and no second foreground worker starts.
                    return Ok(None);
                }
                Ok(Some(mark_with(cur, true)))
            },
            || ApiError::not_found(&rt.resource, &rt.group, name),
        )?;
        let newly_marked = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"))
            && obj
                .pointer("/metadata/deletionTimestamp")
                .and_then(Value::as_str)
                == Some(now.as_str());
        if newly_marked {
            let _ = sim.gc_tx.send(crate::gc::GcEvent::Foreground {
                uid: meta_str(&obj, "uid").to_string(),
            });
        }
        DeleteOutcome::Finalizing(obj)
    } else {
        sim.store
            .delete(&rt.key(), ns, name, &precondition, &mark, || {
                ApiError::not_found(&rt.resource, &rt.group, name)
            })?
    };
    match outcome {
        DeleteOutcome::Deleted(obj) => {
            after_write(sim, rt, Some(&obj), None);
            let orphan = opts.propagation.as_deref() == Some("Orphan");
            let _ = sim.gc_tx.send(crate::gc::GcEvent::Deleted {
                uid: meta_str(&obj, "uid").to_string(),
                orphan,
            });
            Ok((obj, 200))
        }
        DeleteOutcome::Finalizing(obj) => Ok((obj, 202)),
    }
}

fn delete_collection(
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

// === pods/binding ===

fn bind_pod(sim: &Sim, ns: &str, name: &str, body: &Value) -> ApiResult<Value> {
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
            if let Some(existing) = cur.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                return Err(ApiError::conflict_message(format!(
                    "Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{existing}\""
                )));
            }
            let mut n = (**cur).clone();
            n["spec"]["nodeName"] = json!(node);
            Ok(Some(n))
        },
        || ApiError::not_found("pods", "", name),
    )?;
    let _ = obj;
    Ok(crate::error::success_status(None))
}

/// Turn a handler error into a response (used by streaming paths).
pub fn error_to_response(e: &ApiError) -> Response<Body> {
    error_response(e)
}

pub mod defaults;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn continue_tokens_round_trip() {
        let last = json!({"metadata": {"namespace": "a", "name": "b"}});
        let t = decode_continue(&encode_continue(42, &last)).expect("decode");
        assert_eq!((t.rv, t.start), (42, ("a".to_string(), "b".to_string())));
        assert!(decode_continue("%%%").is_err());
        assert!(decode_continue("e30=").is_err());
    }

    proptest! {
        #[test]
        fn continue_decoding_never_panics(s in ".{0,200}") {
            let _ = decode_continue(&s);
        }
    }
}
