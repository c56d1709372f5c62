//! Updating an object: the object an update or a patch produces from the stored one, written in one atomic step.

use std::sync::Arc;

use serde_json::{Value, json};

use super::create::{check_type_meta, metadata_mut, validate_custom};
use super::defaults;
use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta::{self, meta_str};
use crate::resources::{ResourceType, crd_types};

// === update ===

fn strip_for_compare(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

/// Compute the object an update produces from `cur` and the client's `body`. Runs under the store's write lock:
/// it may not read the store (what it needs, like the addresses other services hold, is passed in).
fn next_for_update(
    rt: &ResourceType,
    cur: &Value,
    mut body: Value,
    status_only: bool,
    strict: bool,
    services_in_use: Option<&super::service::InUse>,
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
    if !status_only {
        defaults::on_update(rt, cur, &mut next)?;
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
    if !status_only {
        causes.extend(super::validate::update_causes(
            &rt.group,
            &rt.resource,
            cur,
            &next,
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&rt.kind, &rt.group, &name, causes));
    }
    if let Some(in_use) = services_in_use.filter(|_| !status_only) {
        super::service::allocate_update(in_use, &mut next)?;
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
    if rt.tracks_generation() && strip_for_compare(&next) != strip_for_compare(cur) {
        let g = cur
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        metadata_mut(&mut next).insert("generation".into(), json!(g + 1));
    }
    if next == *cur {
        return Ok(None);
    }
    Ok(Some(next))
}

/// How an update is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct UpdateOpts {
    /// Write only the status stanza (the `status` subresource); otherwise status is kept as stored.
    pub status_only: bool,
    /// `fieldValidation=Strict`: unknown fields of a custom resource are an error instead of being pruned.
    pub strict: bool,
    /// Compute and check the result without storing it.
    pub dry_run: bool,
}

/// Replace an object (or only its status) by `body`. Returns the stored (or, dry run, would-be) object.
pub fn update(
    sim: &Sim,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    opts: UpdateOpts,
) -> ApiResult<Arc<Value>> {
    let body = std::cell::RefCell::new(Some(body));
    update_with(sim, rt, ns, name, opts, &|_cur| {
        Ok(body.borrow_mut().take().unwrap_or(Value::Null))
    })
}

/// Write the object `apply` computes from the stored one (a patch, an apply, or a plain replacement), through
/// the same checks as [`update`].
pub fn update_with(
    sim: &Sim,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: UpdateOpts,
    apply: &dyn Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<Arc<Value>> {
    let UpdateOpts {
        status_only,
        strict,
        dry_run,
    } = opts;
    // Read outside the store's write lock (the update closure runs under it).
    let services_in_use = (rt.group.is_empty() && rt.resource == "services" && !status_only)
        .then(|| super::service::in_use_except(sim, ns, name));
    let services_in_use = services_in_use.as_ref();
    if dry_run {
        let cur = sim
            .store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.resource, &rt.group, name))?;
        let patched = apply(&cur)?;
        let next = next_for_update(rt, &cur, patched, status_only, strict, services_in_use)?;
        // As the store would keep it (no empty labels, finalizers, ...).
        return Ok(next
            .map(|mut next| {
                crate::meta::drop_empty_metadata(&mut next);
                Arc::new(next)
            })
            .unwrap_or(cur));
    }
    let mut before = None;
    let (obj, removed) = sim.store.update(
        &rt.key(),
        ns,
        name,
        &mut |cur| {
            before = Some(cur.clone());
            let patched = apply(cur)?;
            next_for_update(rt, cur, patched, status_only, strict, services_in_use)
        },
        || ApiError::not_found(&rt.resource, &rt.group, name),
    )?;
    super::finish_write(sim, rt, before.as_deref(), &obj, removed);
    Ok(obj)
}
