//! The HTTP(S) front: accept loop, request parsing, authentication, authorisation and dispatch.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Sim;
use crate::authn::User;
use crate::error::{ApiError, ApiResult};

/// Response body type used everywhere.
pub type Body = BoxBody<Bytes, Infallible>;

/// A full (non-streaming) body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// JSON response with a status code.
pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(bytes))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// JSON response with an explicit content type.
pub fn typed_response(code: u16, content_type: &str, v: &Value) -> Response<Body> {
    let mut r = json_response(code, v);
    if let Ok(h) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, h);
    }
    r
}

/// Error response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(secs) = e.retry_after
        && let Ok(h) = header::HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, h);
    }
    r
}

/// A parsed resource request path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePath {
    /// Group (`""` for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub subresource: Option<String>,
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A resource or collection.
    Resource(ResourcePath),
    /// Any other path (discovery, health, OIDC, ...).
    NonResource(String),
}

/// Parse `/api/v1/...` and `/apis/g/v/...` into a resource path.
pub fn parse_route(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Route::NonResource(path.to_string()),
    };
    if rest.iter().any(|s| s.is_empty()) {
        return Route::NonResource(path.to_string());
    }
    let mut p = ResourcePath {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    let decode = |s: &str| percent_decode(s);
    match rest {
        ["namespaces", ns, resource, tail @ ..]
            if !(tail.is_empty() && matches!(*resource, "status" | "finalize")) =>
        {
            p.namespace = Some(decode(ns));
            p.resource = decode(resource);
            match tail {
                [] => {}
                [name] => p.name = Some(decode(name)),
                [name, sub] => {
                    p.name = Some(decode(name));
                    p.subresource = Some(decode(sub));
                }
                _ => return Route::NonResource(path.to_string()),
            }
        }
        [resource] => p.resource = decode(resource),
        [resource, name] => {
            p.resource = decode(resource);
            p.name = Some(decode(name));
        }
        [resource, name, sub] => {
            p.resource = decode(resource);
            p.name = Some(decode(name));
            p.subresource = Some(decode(sub));
        }
        _ => return Route::NonResource(path.to_string()),
    }
    Route::Resource(p)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        if bytes[i] == b'+' {
            out.push(b' ');
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Query parameters, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parse a raw query string.
    pub fn parse(q: Option<&str>) -> Query {
        let mut out = Vec::new();
        for part in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((percent_decode(k), percent_decode(v)));
        }
        Query(out)
    }

    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Boolean flag (`true`, `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }
}

/// Everything a handler needs to know about the request.
pub struct Ctx {
    /// Method.
    pub method: Method,
    /// Path.
    pub path: String,
    /// Query.
    pub query: Query,
    /// Headers.
    pub headers: HeaderMap,
    /// The authenticated (possibly impersonated) user.
    pub user: User,
    /// Request body.
    pub body: Bytes,
    /// `Warning` headers for the response (`299 - "<text>"` each), e.g. unknown fields under
    /// `fieldValidation=Warn`.
    pub warnings: parking_lot::Mutex<Vec<String>>,
}

impl Ctx {
    /// Header as str.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The request's media type: `Content-Type` without parameters, lower case.
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

/// Configuration of a kube-sim server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Serve HTTPS (default) or plain HTTP.
    pub tls: bool,
    /// Where to write `kubeconfig`, `ca.crt` and the service-account signing key (and the state, with `persist`).
    pub dir: Option<PathBuf>,
    /// Persist objects in `dir` across restarts.
    pub persist: bool,
    /// The admin bearer token (random when unset).
    pub admin_token: Option<String>,
    /// Service-account issuer URL (default: the server URL).
    pub issuer: Option<String>,
    /// YAML/JSON files to load at start-up.
    pub seed: Vec<PathBuf>,
    /// Change-log length for watch resume (older resourceVersions get 410 Gone).
    pub watch_cache_size: usize,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Connection limits: header-read and idle timeouts, header bytes, connection caps, body read timeout.
    pub limits: podid_serve::Limits,
    /// Interval of watch bookmarks (when the client allows them).
    pub bookmark_interval: Duration,
    /// Extra DNS names / IPs for the serving certificate.
    pub extra_sans: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            dir: None,
            persist: false,
            admin_token: None,
            issuer: None,
            seed: Vec::new(),
            watch_cache_size: 100_000,
            max_body_bytes: 3 * 1024 * 1024,
            limits: podid_serve::Limits::default(),
            bookmark_interval: Duration::from_secs(60),
            extra_sans: Vec::new(),
        }
    }
}

/// Time in-flight requests get after shutdown before they are dropped (watches never end on their own).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Serve connections until `shutdown` flips to true, within `sim.server`'s limits.
pub async fn serve(
    sim: Arc<Sim>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let run = sim
        .server
        .listen(listener)
        .tls(tls)
        .with_upgrades()
        .drain_timeout(DRAIN_TIMEOUT)
        .run(
            move |conn: &podid_serve::Conn| {
                let sim = sim.clone();
                let peer = conn.remote;
                hyper::service::service_fn(move |req| {
                    let sim = sim.clone();
                    async move { Ok::<_, Infallible>(handle(sim, req, peer).await) }
                })
            },
            async move {
                let _ = shutdown.changed().await;
            },
        );
    run.await;
}

async fn handle(sim: Arc<Sim>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let limit = sim.config.max_body_bytes;
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<usize>().ok())
        && len > limit
    {
        return error_response(&ApiError::too_large(limit));
    }
    let body = match sim.server.read_body(body, limit).await {
        Ok(b) => b,
        Err(podid_serve::BodyError::TooLarge { .. }) => {
            return error_response(&ApiError::too_large(limit));
        }
        Err(podid_serve::BodyError::TimedOut) => {
            return error_response(&ApiError::request_timeout(
                "the request body did not arrive in time",
            ));
        }
        Err(e) => return error_response(&ApiError::bad_request(e.to_string())),
    };
    let user = match sim.authenticate(&parts.headers) {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    let user = match sim.impersonate(user, &parts.headers) {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    let ctx = Ctx {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        user,
        body,
        warnings: parking_lot::Mutex::new(Vec::new()),
    };
    let started = std::time::Instant::now();
    // A panic is a bug; it must still never cost the client more than a 500, nor the server its other requests.
    let dispatched = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
        crate::api::dispatch(&sim, &ctx),
    ))
    .await;
    let mut resp = match dispatched {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(_) => {
            tracing::error!(method = %ctx.method, path = %ctx.path, "request handler panicked");
            error_response(&ApiError::internal(
                "the server could not handle the request",
            ))
        }
    };
    for warning in ctx.warnings.lock().drain(..) {
        if let Ok(value) = http::HeaderValue::from_str(&warning_header(&warning)) {
            resp.headers_mut().append(header::WARNING, value);
        }
    }
    tracing::debug!(method = %ctx.method, path = %ctx.path, code = resp.status().as_u16(), user = %ctx.user.name, %peer, elapsed_us = started.elapsed().as_micros() as u64, "request");
    resp
}

/// A `Warning` header value as the apiserver writes it: code 299, no agent, the text quoted with `"` and `\`
/// escaped.
fn warning_header(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("299 - \"{escaped}\"")
}

/// Parse a request body as JSON or YAML by content type.
pub fn parse_body(ctx: &Ctx) -> ApiResult<Value> {
    let ct = ctx.media_type();
    if ctx.body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let v: Value = match ct.as_str() {
        "application/yaml"
        | "application/apply-patch+yaml"
        | "text/yaml"
        | "application/x-yaml" => {
            let text = std::str::from_utf8(&ctx.body)
                .map_err(|_| ApiError::bad_request("request body is not UTF-8"))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
        }
        "" | "application/json" | "*/*" => serde_json::from_slice(&ctx.body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/vnd.kubernetes.protobuf" => {
            use kube_sim_machinery::protobuf::{
                ProtobufError, decode_k8s_protobuf, strict_decoding_message,
            };
            let out = decode_k8s_protobuf(&ctx.body).map_err(|e| match e {
                ProtobufError::UnsupportedKind { .. } => {
                    let mut err = ApiError::unsupported_media_type(BODY_MEDIA_TYPES);
                    err.message =
                        format!("{e}; kube-sim decodes protobuf for common built-in kinds only");
                    err
                }
                other => ApiError::bad_request(other.to_string()),
            })?;
            if !out.unknown_fields.is_empty() && ctx.query.get("fieldValidation") == Some("Strict")
            {
                return Err(ApiError::bad_request(strict_decoding_message(
                    &out.unknown_fields,
                )));
            }
            out.object
        }
        _ => return Err(ApiError::unsupported_media_type(BODY_MEDIA_TYPES)),
    };
    Ok(v)
}

/// The body media types the apiserver names in a 415 (kube-sim decodes protobuf for common kinds only).
const BODY_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = parse_route("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            r,
            Route::Resource(ResourcePath {
                group: "".into(),
                version: "v1".into(),
                namespace: Some("default".into()),
                resource: "pods".into(),
                name: Some("web".into()),
                subresource: Some("status".into()),
            })
        );
        let ns = parse_route("/api/v1/namespaces/kube-system");
        assert!(
            matches!(ns, Route::Resource(ResourcePath { ref resource, ref name, .. }) if resource == "namespaces" && name.as_deref() == Some("kube-system"))
        );
        let nss = parse_route("/api/v1/namespaces/x/status");
        assert!(
            matches!(nss, Route::Resource(ResourcePath { ref subresource, .. }) if subresource.as_deref() == Some("status"))
        );
        let crd = parse_route("/apis/aadpodidentity.k8s.io/v1/namespaces/a/azureidentities");
        assert!(
            matches!(crd, Route::Resource(ResourcePath { ref group, ref name, .. }) if group == "aadpodidentity.k8s.io" && name.is_none())
        );
        assert_eq!(parse_route("/api/v1"), Route::NonResource("/api/v1".into()));
        assert_eq!(
            parse_route("/healthz"),
            Route::NonResource("/healthz".into())
        );
        assert!(matches!(
            parse_route("/api/v1/a/b/c/d"),
            Route::NonResource(_)
        ));
        assert_eq!(percent_decode("a%3Db%2Cc"), "a=b,c");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
        let q = Query::parse(Some("labelSelector=app%3Dweb&watch=1&x"));
        assert_eq!(q.get("labelSelector"), Some("app=web"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), Some(""));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn ctx(content_type: &str, body: Vec<u8>) -> Ctx {
        let mut headers = HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        Ctx {
            method: Method::POST,
            path: "/".into(),
            query: Query::default(),
            headers,
            user: User::anonymous(),
            body: Bytes::from(body),
            warnings: parking_lot::Mutex::new(Vec::new()),
        }
    }

    proptest! {
        #[test]
        fn route_and_query_parsing_never_panic(path in ".{0,200}", q in ".{0,200}") {
            let _ = parse_route(&path);
            let _ = Query::parse(Some(&q));
        }

        #[test]
        fn resource_routes_round_trip(ns in "[a-z0-9-]{1,20}", res in "[a-z]{1,20}", name in "[a-z0-9.-]{1,30}") {
            let r = parse_route(&format!("/api/v1/namespaces/{ns}/{res}/{name}"));
            if res != "status" && res != "finalize" {
                let is_expected = matches!(r, Route::Resource(ResourcePath { namespace: Some(ref n), resource: ref rr, name: Some(ref nm), .. }) if *n == ns && *rr == res && *nm == name);
                prop_assert!(is_expected);
            }
        }

        #[test]
        fn body_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512), ct in prop_oneof![
            Just("application/json"), Just("application/yaml"), Just("application/vnd.kubernetes.protobuf"), Just("text/plain"), Just("")
        ]) {
            let _ = parse_body(&ctx(ct, body));
        }
    }
}
