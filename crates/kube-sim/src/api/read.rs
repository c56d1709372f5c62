//! Reading: get and list (`limit`/`continue`, selectors), and the response shapes every verb shares (the
//! requested version, server-side Tables).

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::server::{Body, Ctx, full, json_response, typed_response};
use kube_sim_machinery::fields::FieldSelector;
use kube_sim_machinery::labels::LabelSelector;

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

pub(crate) fn object_response(
    ctx: &Ctx,
    rt: &ResourceType,
    code: u16,
    obj: &Arc<Value>,
) -> Response<Body> {
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
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    // Go's RawURLEncoding is not strict: trailing bits are ignored.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    let bytes = LENIENT
        .decode(token)
        .map_err(|_| bad("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
        bad(
            &super::list_options::go_json_start_error(&bytes).unwrap_or_else(|| {
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into()
            }),
        )
    })?;
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

    /// Whether neither selector selects anything (every object matches).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
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

pub(crate) fn list(
    sim: &Sim,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: Option<&str>,
) -> ApiResult<Response<Body>> {
    super::list_options::validate(ctx, false)?;
    let sel = Selectors::from_ctx(ctx, rt)?;
    let rv_param = ctx.query.get("resourceVersion").unwrap_or("");
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
    // resourceVersion=0 is served from the apiserver's watch cache, which ignores limit on a first page.
    let limit = limit.filter(|_| rv_param != "0" || cont.is_some());
    if !rv_param.is_empty() && rv_param != "0" {
        let rv = super::list_options::parse_resource_version(rv_param)?;
        if rv > sim.store.current_rv() {
            return Err(ApiError::gone(format!(
                "Too large resource version: {rv}, current resource version: {}",
                sim.store.current_rv()
            )));
        }
    }
    // `spec.nodeName=` (empty) selects unscheduled pods, which the node index does not hold: scan instead.
    let node = sel
        .fields
        .exact_value("spec.nodeName")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
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
    if rt.crd.is_some() {
        // Custom resource lists are unstructured: their ListMeta always has `continue`.
        list_meta["continue"] = json!("");
    }
    if more && let Some(last) = items.last() {
        list_meta["continue"] = json!(encode_continue(rv, last));
        // Without selectors the apiserver counts what is left (etcd's count of the rest of the range).
        if sel.is_empty() {
            let start = (
                crate::meta::str_at(last, "/metadata/namespace").to_string(),
                crate::meta::str_at(last, "/metadata/name").to_string(),
            );
            let rest = sim
                .store
                .count_after(&rt.key(), ns, node.as_deref(), &start);
            list_meta["remainingItemCount"] = json!(rest);
        }
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
        if rt.crd.is_some() {
            // Custom resources are unstructured: their items keep kind and apiVersion.
            serde_json::to_writer(&mut out, item.as_ref())
                .map_err(|e| ApiError::internal(e.to_string()))?;
        } else {
            write_list_item(&mut out, &item)?;
        }
    }
    out.extend_from_slice(b"]}");
    Response::builder()
        .header("content-type", "application/json")
        .body(full(out))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Write one item of a built-in kind's list as the apiserver does: without `kind` and `apiVersion` (only the
/// list has them).
fn write_list_item(out: &mut Vec<u8>, item: &Value) -> ApiResult<()> {
    use serde::Serializer;
    let mut ser = serde_json::Serializer::new(out);
    let result = match item {
        Value::Object(fields) => ser.collect_map(
            fields
                .iter()
                .filter(|(k, _)| k.as_str() != "kind" && k.as_str() != "apiVersion"),
        ),
        other => serde::Serialize::serialize(other, &mut ser),
    };
    result.map_err(|e| ApiError::internal(e.to_string()))
}

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
