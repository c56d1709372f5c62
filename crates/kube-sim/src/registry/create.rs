//! Creating an object: validation and completion of a new object, then the store write and its hooks.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta::{self, meta_str};
use crate::resources::{ResKey, ResourceType};

pub(crate) fn check_type_meta(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in the request body: expected a JSON object",
        ));
    }
    let want_av = rt.api_version();
    let kind = crate::meta::str_at(obj, "/kind");
    let av = crate::meta::str_at(obj, "/apiVersion");
    if !kind.is_empty() && kind != rt.kind {
        // The decoder's words: the body's kind cannot be converted to the URL's.
        let version = crate::resources::split_api_version(av).1;
        let version = if version.is_empty() {
            rt.version.as_str()
        } else {
            version
        };
        let internal = if rt.group.is_empty() {
            "core"
        } else {
            rt.group.split('.').next().unwrap_or(&rt.group)
        };
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {}: converting ({version}.{kind}) to ({internal}.{}): unknown conversion",
            rt.kind, rt.kind
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

pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
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
                let mut e = ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified()
                ))
                .with_details(&name, &rt.group, &rt.resource);
                e.causes = vec![Cause {
                    reason: "NamespaceTerminating".into(),
                    message: format!("namespace {ns} is being terminated"),
                    field: "metadata.namespace".into(),
                }];
                return Err(e);
            }
            Some(_) => {}
        }
    }
    {
        let m = metadata_mut(&mut obj);
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        if rt.tracks_generation() {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
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
    super::defaults::on_create(sim, rt, &mut obj)?;
    // Pods are validated after mutating admission (`defaults::after_admission`), as the apiserver does.
    if !(rt.group.is_empty() && rt.resource == "pods") {
        let causes = super::validate::create_causes(&rt.group, &rt.resource, &obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
        }
    }
    if rt.group.is_empty() && rt.resource == "services" {
        super::service::allocate_create(sim, &mut obj)?;
    }
    Ok(obj)
}

/// Schema validation, pruning and defaulting for custom resources, in the apiextensions write order.
///
/// Unknown fields are dropped (structural pruning); with `fieldValidation=Strict` they are an error instead,
/// as the apiserver reports them: `strict decoding error: unknown field "spec.foo"`.
pub(crate) fn validate_custom(rt: &ResourceType, obj: &mut Value, strict: bool) -> ApiResult<()> {
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
        let kind = &rt.kind;
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {list}",
            rt.version
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

/// Store a prepared object and run the side effects of creating it.
pub fn store_create(sim: &Sim, rt: &ResourceType, obj: Value) -> ApiResult<Arc<Value>> {
    let created = sim
        .store
        .create(&rt.key(), obj, (&rt.resource, &rt.group))?;
    super::after_write(sim, rt, None, Some(&created));
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
