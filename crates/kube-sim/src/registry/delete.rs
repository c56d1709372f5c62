//! Deleting an object: preconditions, finalizers, propagation (Background, Foreground, Orphan) and namespaces
//! going through Terminating.

use std::sync::Arc;

use serde_json::{Value, json};

use super::create::metadata_mut;
use crate::Sim;
use crate::error::{ApiError, ApiResult};
use crate::meta::{self, meta_str};
use crate::resources::ResourceType;
use crate::store::DeleteOutcome;

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
            // The storage's precondition error names the kind, not the resource.
            return Err(ApiError::conflict_with(
                &rt.kind,
                &rt.group,
                name,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    meta_str(cur, "uid")
                ),
            ));
        }
        if let Some(rv) = &opts.rv
            && rv != meta_str(cur, "resourceVersion")
        {
            return Err(ApiError::conflict_with(
                &rt.kind,
                &rt.group,
                name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    meta_str(cur, "resourceVersion")
                ),
            ));
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
        // The namespace strategy sets no grace period; every other kind's graceful-deletion step writes 0.
        if !is_namespace {
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
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
            super::after_write(sim, rt, Some(&obj), None);
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
