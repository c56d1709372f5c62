//! ARM over HTTPS: Microsoft.Compute virtual machines and scale sets (identity writes as long-running
//! operations), Microsoft.ManagedIdentity identities and their federated credentials, with bearer-token
//! authentication and RBAC on every call.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Req, Resp, Sim, guid, now_ms, now_secs};
use crate::arm::{self, ArmError, Route};
use crate::armid;
use crate::rbac;
use crate::state::{Operation, WorldState};
use crate::token::{self, BearerError, Caller};
use crate::world::{self, ResourceIdentity};

fn www_authenticate(desc: &str) -> String {
    format!(
        "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", error_description=\"{desc}\""
    )
}

/// Handle one ARM request.
pub async fn handle(sim: &Arc<Sim>, r: &Req) -> Resp {
    let request_id = guid();
    let correlation = r
        .header("x-ms-correlation-request-id")
        .filter(|s| !s.is_empty() && s.len() < 200)
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let resp = match inner(sim, r).await {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = Resp::json(e.status, &e.body()).note(e.code.clone());
            if e.status == 401 {
                let desc = if e.message.contains("header is missing") {
                    "The authentication failed because of missing 'Authorization' header."
                } else {
                    "The access token is invalid."
                };
                resp = resp.header("www-authenticate", www_authenticate(desc));
            }
            resp
        }
    };
    let write = matches!(
        r.method,
        http::Method::PATCH | http::Method::PUT | http::Method::DELETE
    );
    resp.header("x-ms-request-id", request_id)
        .header("x-ms-correlation-request-id", correlation)
        .header(
            if write {
                "x-ms-ratelimit-remaining-subscription-writes"
            } else {
                "x-ms-ratelimit-remaining-subscription-reads"
            },
            if write { "1199" } else { "11999" },
        )
        .header("cache-control", "no-cache")
        .header("pragma", "no-cache")
        .header("expires", "-1")
}

fn authenticate(sim: &Sim, r: &Req, now: i64) -> Result<Caller, ArmError> {
    let caller = token::validate(r.header("authorization"), &sim.key, now).map_err(|e| match e {
        BearerError::Missing => ArmError::new(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
        BearerError::BadFormat => ArmError::new(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        ),
        BearerError::Invalid(_) | BearerError::NotYetValid(_) => {
            ArmError::new(401, "InvalidAuthenticationToken", "The access token is invalid.")
        }
        BearerError::Expired(exp, now) => ArmError::new(
            401,
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                token::arm_time(exp),
                token::arm_time(now)
            ),
        ),
    })?;
    if !world::audience_in(&caller.audience, world::ARM_AUDIENCES) {
        return Err(ArmError::new(
            401,
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.",
                caller.audience
            ),
        ));
    }
    Ok(caller)
}

fn authorize(ws: &WorldState, caller: &Caller, action: &str, scope: &str) -> Result<(), ArmError> {
    let g = arm::grants(&ws.world, &ws.index, &caller.object_id);
    if rbac::allowed(&g, action, scope, false) {
        Ok(())
    } else {
        Err(ArmError::authorization_failed(
            &caller.app_id,
            &caller.object_id,
            action,
            scope,
        ))
    }
}

fn rg_exists(ws: &WorldState, sub: &str, rg: &str) -> Option<String> {
    ws.world
        .resource_groups
        .iter()
        .find(|g| {
            g.subscription_id
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(sub))
                && g.name.eq_ignore_ascii_case(rg)
        })
        .map(|g| g.location.clone().unwrap_or_default())
}

fn require_rg(ws: &WorldState, sub: &str, rg: &str) -> Result<String, ArmError> {
    rg_exists(ws, sub, rg).ok_or_else(|| ArmError::rg_not_found(rg))
}

fn in_rg(sub: &Option<String>, rg: &Option<String>, s: &str, g: &str) -> bool {
    sub.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(s))
        && rg.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(g))
}

async fn inner(sim: &Arc<Sim>, r: &Req) -> Result<Resp, ArmError> {
    let route = arm::parse_path(&r.path)?;
    let q = r.params();
    let api_version = q.get_ci("api-version").unwrap_or("").to_string();
    arm::check_api_version(Some(&api_version))?;
    let now = now_secs();
    let caller = authenticate(sim, r, now)?;
    let sub = match &route {
        Route::Subscription { sub }
        | Route::ResourceGroup { sub, .. }
        | Route::VmList { sub, .. }
        | Route::Vm { sub, .. }
        | Route::VmssList { sub, .. }
        | Route::Vmss { sub, .. }
        | Route::VmssVmList { sub, .. }
        | Route::VmssVm { sub, .. }
        | Route::UamiList { sub, .. }
        | Route::Uami { sub, .. }
        | Route::FicList { sub, .. }
        | Route::Fic { sub, .. }
        | Route::Operation { sub, .. } => sub.clone(),
    };
    {
        let ws = sim.state.world.read();
        let Some(si) = ws.index.subscription(&sub) else {
            return Err(ArmError::sub_not_found(&sub));
        };
        let tid = ws.world.subscriptions[si]
            .tenant_id
            .clone()
            .unwrap_or_default();
        if !caller.tenant_id.eq_ignore_ascii_case(&tid) {
            return Err(ArmError::new(
                401,
                "InvalidAuthenticationTokenTenant",
                format!(
                    "The access token is from the wrong issuer '{}'. It must match the tenant 'https://sts.windows.net/{tid}/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/{tid}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.",
                    caller.issuer
                ),
            ));
        }
    }
    let m = &r.method;
    let get = *m == http::Method::GET;
    match route {
        Route::Subscription { sub } if get => subscription(sim, &caller, &sub),
        Route::ResourceGroup { sub, rg } if get => {
            let ws = sim.state.world.read();
            let id = armid::resource_group_id(&sub, &rg);
            authorize(
                &ws,
                &caller,
                "Microsoft.Resources/subscriptions/resourceGroups/read",
                &id,
            )?;
            let loc = require_rg(&ws, &sub, &rg)?;
            Ok(Resp::json(
                200,
                &json!({"id": id, "name": rg, "type": "Microsoft.Resources/resourceGroups", "location": loc, "properties": {"provisioningState": "Succeeded"}}),
            ))
        }
        Route::VmList { sub, rg } if get => {
            let ws = sim.state.world.read();
            authorize(
                &ws,
                &caller,
                "Microsoft.Compute/virtualMachines/read",
                &armid::resource_group_id(&sub, &rg),
            )?;
            require_rg(&ws, &sub, &rg)?;
            let nm = now_ms();
            let items: Vec<Value> = ws
                .world
                .virtual_machines
                .iter()
                .filter(|v| in_rg(&v.subscription_id, &v.resource_group, &sub, &rg))
                .map(|v| arm::vm_json(v, &ws.world, &ws.index, provisioning(sim, &v.id(), nm)))
                .collect();
            Ok(Resp::json(200, &json!({"value": items})))
        }
        Route::Vm { sub, rg, name } if get => {
            let ws = sim.state.world.read();
            let id = armid::vm_id(&sub, &rg, &name);
            authorize(&ws, &caller, "Microsoft.Compute/virtualMachines/read", &id)?;
            require_rg(&ws, &sub, &rg)?;
            let i = ws.index.vm(&id).ok_or_else(|| {
                ArmError::not_found("Microsoft.Compute/virtualMachines", &name, &rg)
            })?;
            let vm = &ws.world.virtual_machines[i];
            Ok(Resp::json(
                200,
                &arm::vm_json(
                    vm,
                    &ws.world,
                    &ws.index,
                    provisioning(sim, &vm.id(), now_ms()),
                ),
            ))
        }
        Route::Vm { sub, rg, name } if *m == http::Method::PATCH || *m == http::Method::PUT => {
            write_compute(sim, r, &caller, Compute::Vm, &sub, &rg, &name, &api_version)
        }
        Route::VmssList { sub, rg } if get => {
            let ws = sim.state.world.read();
            authorize(
                &ws,
                &caller,
                "Microsoft.Compute/virtualMachineScaleSets/read",
                &armid::resource_group_id(&sub, &rg),
            )?;
            require_rg(&ws, &sub, &rg)?;
            let nm = now_ms();
            let items: Vec<Value> = ws
                .world
                .virtual_machine_scale_sets
                .iter()
                .filter(|v| in_rg(&v.subscription_id, &v.resource_group, &sub, &rg))
                .map(|v| arm::vmss_json(v, &ws.world, &ws.index, provisioning(sim, &v.id(), nm)))
                .collect();
            Ok(Resp::json(200, &json!({"value": items})))
        }
        Route::Vmss { sub, rg, name } if get => {
            let ws = sim.state.world.read();
            let id = armid::vmss_id(&sub, &rg, &name);
            authorize(
                &ws,
                &caller,
                "Microsoft.Compute/virtualMachineScaleSets/read",
                &id,
            )?;
            require_rg(&ws, &sub, &rg)?;
            let i = ws.index.vmss(&id).ok_or_else(|| {
                ArmError::not_found("Microsoft.Compute/virtualMachineScaleSets", &name, &rg)
            })?;
            let s = &ws.world.virtual_machine_scale_sets[i];
            Ok(Resp::json(
                200,
                &arm::vmss_json(
                    s,
                    &ws.world,
                    &ws.index,
                    provisioning(sim, &s.id(), now_ms()),
                ),
            ))
        }
        Route::Vmss { sub, rg, name } if *m == http::Method::PATCH || *m == http::Method::PUT => {
            write_compute(
                sim,
                r,
                &caller,
                Compute::Vmss,
                &sub,
                &rg,
                &name,
                &api_version,
            )
        }
        Route::VmssVmList { sub, rg, vmss } if get => {
            let ws = sim.state.world.read();
            let id = armid::vmss_id(&sub, &rg, &vmss);
            authorize(
                &ws,
                &caller,
                "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
                &id,
            )?;
            require_rg(&ws, &sub, &rg)?;
            let i = ws.index.vmss(&id).ok_or_else(|| {
                ArmError::not_found("Microsoft.Compute/virtualMachineScaleSets", &vmss, &rg)
            })?;
            let s = &ws.world.virtual_machine_scale_sets[i];
            let items: Vec<Value> = s
                .instances
                .iter()
                .map(|inst| arm::vmss_vm_json(s, inst))
                .collect();
            Ok(Resp::json(200, &json!({"value": items})))
        }
        Route::VmssVm {
            sub,
            rg,
            vmss,
            instance,
        } if get => {
            let ws = sim.state.world.read();
            let id = format!(
                "{}/virtualMachines/{instance}",
                armid::vmss_id(&sub, &rg, &vmss)
            );
            authorize(
                &ws,
                &caller,
                "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
                &id,
            )?;
            require_rg(&ws, &sub, &rg)?;
            let nf = || {
                ArmError::not_found(
                    &format!("Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines"),
                    &instance,
                    &rg,
                )
            };
            let i = ws
                .index
                .vmss(&armid::vmss_id(&sub, &rg, &vmss))
                .ok_or_else(nf)?;
            let s = &ws.world.virtual_machine_scale_sets[i];
            let inst = s
                .instances
                .iter()
                .find(|x| x.instance_id.as_deref() == Some(instance.as_str()))
                .ok_or_else(nf)?;
            Ok(Resp::json(200, &arm::vmss_vm_json(s, inst)))
        }
        Route::UamiList { sub, rg } if get => {
            let ws = sim.state.world.read();
            authorize(
                &ws,
                &caller,
                "Microsoft.ManagedIdentity/userAssignedIdentities/read",
                &armid::resource_group_id(&sub, &rg),
            )?;
            require_rg(&ws, &sub, &rg)?;
            let tid = ws
                .world
                .tenant_of_subscription(&sub)
                .unwrap_or("")
                .to_string();
            let items: Vec<Value> = ws
                .world
                .user_assigned_identities
                .iter()
                .filter(|u| in_rg(&u.subscription_id, &u.resource_group, &sub, &rg))
                .map(|u| arm::uami_json(u, &tid))
                .collect();
            Ok(Resp::json(200, &json!({"value": items})))
        }
        Route::Uami { sub, rg, name } if get => {
            let ws = sim.state.world.read();
            let id = armid::uami_id(&sub, &rg, &name);
            authorize(
                &ws,
                &caller,
                "Microsoft.ManagedIdentity/userAssignedIdentities/read",
                &id,
            )?;
            require_rg(&ws, &sub, &rg)?;
            let i = ws.index.uami(&id).ok_or_else(|| {
                ArmError::not_found(
                    "Microsoft.ManagedIdentity/userAssignedIdentities",
                    &name,
                    &rg,
                )
            })?;
            let tid = ws
                .world
                .tenant_of_subscription(&sub)
                .unwrap_or("")
                .to_string();
            Ok(Resp::json(
                200,
                &arm::uami_json(&ws.world.user_assigned_identities[i], &tid),
            ))
        }
        Route::FicList { sub, rg, uami } if get => {
            let ws = sim.state.world.read();
            let id = armid::uami_id(&sub, &rg, &uami);
            authorize(
                &ws,
                &caller,
                "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
                &id,
            )?;
            require_rg(&ws, &sub, &rg)?;
            let i = ws.index.uami(&id).ok_or_else(|| {
                ArmError::not_found(
                    "Microsoft.ManagedIdentity/userAssignedIdentities",
                    &uami,
                    &rg,
                )
            })?;
            let u = &ws.world.user_assigned_identities[i];
            let items: Vec<Value> = u
                .federated_identity_credentials
                .iter()
                .map(|f| arm::fic_json(&u.id(), f))
                .collect();
            Ok(Resp::json(200, &json!({"value": items})))
        }
        Route::Fic {
            sub,
            rg,
            uami,
            name,
        } if get => {
            let ws = sim.state.world.read();
            let uid = armid::uami_id(&sub, &rg, &uami);
            authorize(
                &ws,
                &caller,
                "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
                &format!("{uid}/federatedIdentityCredentials/{name}"),
            )?;
            require_rg(&ws, &sub, &rg)?;
            let i = ws.index.uami(&uid).ok_or_else(|| {
                ArmError::not_found(
                    "Microsoft.ManagedIdentity/userAssignedIdentities",
                    &uami,
                    &rg,
                )
            })?;
            let u = &ws.world.user_assigned_identities[i];
            let f = u
                .federated_identity_credentials
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(&name))
                .ok_or_else(|| ArmError::not_found(&format!("Microsoft.ManagedIdentity/userAssignedIdentities/{uami}/federatedIdentityCredentials"), &name, &rg))?;
            Ok(Resp::json(200, &arm::fic_json(&u.id(), f)))
        }
        Route::Fic {
            sub,
            rg,
            uami,
            name,
        } if *m == http::Method::PUT || *m == http::Method::DELETE => {
            write_fic(sim, r, &caller, &sub, &rg, &uami, &name).await
        }
        Route::Operation { sub, id, .. } if get => {
            let op = sim
                .state
                .operation(&id)
                .filter(|o| o.subscription.eq_ignore_ascii_case(&sub))
                .ok_or_else(|| {
                    ArmError::new(
                        404,
                        "ResourceNotFound",
                        format!("The operation '{id}' was not found."),
                    )
                })?;
            let nm = now_ms();
            let done = nm >= op.completes_ms;
            let body = arm::operation_json(
                &id,
                (op.started_ms / 1000) as i64,
                done.then_some((op.completes_ms / 1000) as i64),
            );
            let resp = Resp::json(200, &body);
            Ok(if done {
                resp
            } else {
                resp.header(
                    "retry-after",
                    sim.state.settings.read().lro_retry_after_secs.to_string(),
                )
            })
        }
        _ => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

fn provisioning(sim: &Sim, id: &str, now_ms: u64) -> &'static str {
    if sim.state.updating(&armid::key(id), now_ms) {
        "Updating"
    } else {
        "Succeeded"
    }
}

fn subscription(sim: &Sim, caller: &Caller, sub: &str) -> Result<Resp, ArmError> {
    let ws = sim.state.world.read();
    let sid = armid::subscription_id(sub);
    let grants = arm::grants(&ws.world, &ws.index, &caller.object_id);
    if !grants
        .iter()
        .any(|g| armid::scope_contains(g.scope, &sid) || armid::scope_contains(&sid, g.scope))
    {
        return Err(ArmError::authorization_failed(
            &caller.app_id,
            &caller.object_id,
            "Microsoft.Resources/subscriptions/read",
            &sid,
        ));
    }
    let i = ws
        .index
        .subscription(sub)
        .ok_or_else(|| ArmError::sub_not_found(sub))?;
    let s = &ws.world.subscriptions[i];
    Ok(Resp::json(
        200,
        &json!({
            "id": armid::subscription_id(&s.id),
            "authorizationSource": "RoleBased",
            "subscriptionId": s.id,
            "tenantId": s.tenant_id,
            "displayName": s.display_name.clone().unwrap_or_else(|| s.id.clone()),
            "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}
        }),
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compute {
    Vm,
    Vmss,
}

#[allow(clippy::too_many_arguments)]
fn write_compute(
    sim: &Sim,
    r: &Req,
    caller: &Caller,
    kind: Compute,
    sub: &str,
    rg: &str,
    name: &str,
    api_version: &str,
) -> Result<Resp, ArmError> {
    let put = r.method == http::Method::PUT;
    let (type_name, id) = match kind {
        Compute::Vm => (
            "Microsoft.Compute/virtualMachines",
            armid::vm_id(sub, rg, name),
        ),
        Compute::Vmss => (
            "Microsoft.Compute/virtualMachineScaleSets",
            armid::vmss_id(sub, rg, name),
        ),
    };
    let action = format!("{type_name}/write");
    let mut ws = sim.state.world.write();
    authorize(&ws, caller, &action, &id)?;
    require_rg(&ws, sub, rg)?;
    let idx = match kind {
        Compute::Vm => ws.index.vm(&id),
        Compute::Vmss => ws.index.vmss(&id),
    };
    let Some(idx) = idx else {
        if put {
            return Err(ArmError::new(
                400,
                "OperationNotAllowed",
                format!(
                    "azure-sim does not create resources of type '{type_name}'; declare '{name}' in the world file."
                ),
            ));
        }
        return Err(ArmError::not_found(type_name, name, rg));
    };
    let body = arm::parse_body(&r.body)?;
    let tags = parse_tags(&body)?;
    let (current, stored_id, location) = match kind {
        Compute::Vm => {
            let v = &ws.world.virtual_machines[idx];
            (
                v.identity.clone(),
                v.id(),
                v.location.clone().unwrap_or_default(),
            )
        }
        Compute::Vmss => {
            let v = &ws.world.virtual_machine_scale_sets[idx];
            (
                v.identity.clone(),
                v.id(),
                v.location.clone().unwrap_or_default(),
            )
        }
    };
    let change = match body.get("identity") {
        Some(b) => {
            let canonical = |i: &str| {
                ws.index
                    .uami(i)
                    .map(|u| ws.world.user_assigned_identities[u].id())
            };
            let fresh = || (guid(), guid());
            Some(arm::apply_identity(
                &current, b, put, &stored_id, &canonical, &fresh,
            )?)
        }
        None => None,
    };
    if let Some(c) = &change {
        let grants = arm::grants(&ws.world, &ws.index, &caller.object_id);
        let denied: Vec<String> = c
            .linked
            .iter()
            .filter(|l| !rbac::allowed(&grants, rbac::ASSIGN_ACTION, l, false))
            .cloned()
            .collect();
        if !denied.is_empty() {
            return Err(ArmError::linked_authorization_failed(
                &caller.app_id,
                &caller.object_id,
                &action,
                &id,
                &denied,
            ));
        }
    }
    let new_identity: ResourceIdentity = change
        .map(|c| c.identity)
        .unwrap_or_else(|| current.clone());
    match kind {
        Compute::Vm => {
            let v = &mut ws.world.virtual_machines[idx];
            v.identity = new_identity.clone();
            if let Some(t) = tags {
                v.tags = t;
            }
        }
        Compute::Vmss => {
            let v = &mut ws.world.virtual_machine_scale_sets[idx];
            v.identity = new_identity.clone();
            if let Some(t) = tags {
                v.tags = t;
            }
        }
    }
    ws.reindex();
    let settings = sim.state.settings.read().clone();
    let dur = match kind {
        Compute::Vm => settings.lro_virtual_machines_ms,
        Compute::Vmss => settings.lro_virtual_machine_scale_sets_ms,
    };
    let started = now_ms();
    let op_id = guid();
    sim.state.start_operation(
        &op_id,
        Operation {
            subscription: sub.to_string(),
            started_ms: started,
            completes_ms: started + dur,
        },
        &armid::key(&stored_id),
        &current,
        &new_identity,
    );
    let state = if dur > 0 { "Updating" } else { "Succeeded" };
    let body = match kind {
        Compute::Vm => arm::vm_json(&ws.world.virtual_machines[idx], &ws.world, &ws.index, state),
        Compute::Vmss => arm::vmss_json(
            &ws.world.virtual_machine_scale_sets[idx],
            &ws.world,
            &ws.index,
            state,
        ),
    };
    drop(ws);
    let async_url = format!(
        "https://{}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/operations/{op_id}?p={}&api-version={api_version}",
        r.host,
        guid()
    );
    Ok(Resp::json(200, &body)
        .header("azure-asyncoperation", async_url)
        .note(format!("operation {op_id}")))
}

fn parse_tags(
    body: &Map<String, Value>,
) -> Result<Option<std::collections::BTreeMap<String, String>>, ArmError> {
    match body.get("tags") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Default::default())),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ArmError::invalid_content(&format!(
                    "Error converting value to type 'String'. Path 'tags.{k}'."
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(ArmError::invalid_content(
            "Error converting value to type 'Dictionary`2'. Path 'tags'.",
        )),
    }
}

struct BusyGuard<'a> {
    sim: &'a Sim,
    key: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.sim.state.fic_busy.lock().remove(&self.key);
    }
}

async fn write_fic(
    sim: &Arc<Sim>,
    r: &Req,
    caller: &Caller,
    sub: &str,
    rg: &str,
    uami: &str,
    name: &str,
) -> Result<Resp, ArmError> {
    let delete = r.method == http::Method::DELETE;
    let uid = armid::uami_id(sub, rg, uami);
    let fic_id = format!("{uid}/federatedIdentityCredentials/{name}");
    let action = if delete {
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete"
    } else {
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
    };
    let (key, fic) = {
        let ws = sim.state.world.read();
        authorize(&ws, caller, action, &fic_id)?;
        require_rg(&ws, sub, rg)?;
        let i = ws.index.uami(&uid).ok_or_else(|| {
            ArmError::not_found("Microsoft.ManagedIdentity/userAssignedIdentities", uami, rg)
        })?;
        let stored = ws.world.user_assigned_identities[i].id();
        let fic = if delete {
            None
        } else {
            Some(arm::parse_fic(name, &arm::parse_body(&r.body)?)?)
        };
        (armid::key(&stored), fic)
    };
    if !sim.state.fic_busy.lock().insert(key.clone()) {
        return Err(arm::concurrent_fic_write(&uid));
    }
    let _guard = BusyGuard {
        sim,
        key: key.clone(),
    };
    let hold = sim.state.settings.read().fic_write_ms;
    if hold > 0 {
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    let mut ws = sim.state.world.write();
    let i = ws.index.uami(&key).ok_or_else(|| {
        ArmError::not_found("Microsoft.ManagedIdentity/userAssignedIdentities", uami, rg)
    })?;
    let stored = ws.world.user_assigned_identities[i].id();
    let list = &mut ws.world.user_assigned_identities[i].federated_identity_credentials;
    match fic {
        None => {
            let before = list.len();
            list.retain(|f| !f.name.eq_ignore_ascii_case(name));
            let removed = list.len() != before;
            ws.reindex();
            Ok(Resp::raw_json(
                if removed { 200 } else { 204 },
                String::new(),
            ))
        }
        Some(f) => {
            let body = arm::fic_json(&stored, &f);
            let created = arm::upsert_fic(list, f)?;
            ws.reindex();
            Ok(Resp::json(if created { 201 } else { 200 }, &body))
        }
    }
}
