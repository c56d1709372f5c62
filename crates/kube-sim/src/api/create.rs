//! Create: validation and completion in the registry, mutating admission for pods (built-in plugins, webhooks,
//! their warnings as `Warning` headers), then the store write.

use std::sync::Arc;

use serde_json::Value;

use super::{dry_run, strict_of};
use crate::Sim;
use crate::error::ApiResult;
use crate::registry;
use crate::resources::ResourceType;
use crate::server::Ctx;

pub(crate) async fn create(
    sim: &Arc<Sim>,
    ctx: &Ctx,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    mut body: Value,
) -> ApiResult<Arc<Value>> {
    super::check_unknown_fields(ctx, rt, &mut body)?;
    let mut obj = registry::prepare_create(sim, rt, ns, body, strict_of(ctx))?;
    if rt.group.is_empty() && rt.resource == "pods" {
        let admitted = crate::admission::admit_pod(sim, rt, &ctx.user, obj, dry_run(ctx)).await?;
        ctx.warnings.lock().extend(admitted.warnings);
        obj = admitted.pod;
    }
    if dry_run(ctx) {
        crate::meta::drop_empty_metadata(&mut obj);
        return Ok(Arc::new(obj));
    }
    registry::store_create(sim, rt, obj)
}
