//! Subresources with their own handlers: `pods/binding`. (`status` routes to the update and patch verbs with
//! `status_only`; `serviceaccounts/token` to the review APIs.)

use serde_json::{Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::ResKey;

// === pods/binding ===

pub(crate) fn bind_pod(sim: &Sim, ns: &str, name: &str, body: &Value) -> ApiResult<Value> {
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
