//! Key Vault over HTTPS: the vault is pinned by a per-vault listener or chosen by `Host: <vault>.vault.azure.net`
//! (or is the only vault); requests are authenticated with the challenge flow and authorized by RBAC.

use std::sync::Arc;

use super::{Req, Resp, Sim, guid, now_secs};
use crate::keyvault::{self, KvError, Route};
use crate::rbac;
use crate::token::{self, BearerError};
use crate::world;

fn vault_name(sim: &Sim, pin: Option<&str>, r: &Req) -> Option<String> {
    if let Some(p) = pin {
        return Some(p.to_string());
    }
    let host = r.hostname().to_ascii_lowercase();
    if let Some(name) = host.strip_suffix(".vault.azure.net") {
        return Some(name.to_string());
    }
    let ws = sim.state.world.read();
    match ws.world.key_vaults.as_slice() {
        [one] => Some(one.name.clone()),
        _ => None,
    }
}

/// Handle one Key Vault request.
pub async fn handle(sim: &Arc<Sim>, pin: Option<&str>, r: &Req) -> Resp {
    let request_id = guid();
    let (resp, tenant) = match inner(sim, pin, r) {
        Ok(x) => (x, None),
        Err((e, tenant)) => (
            Resp::json(e.status, &e.body()).note(e.code),
            if e.challenge { tenant } else { None },
        ),
    };
    let resp = resp
        .header("x-ms-request-id", request_id)
        .header("x-ms-keyvault-service-version", "1.9.2164.1")
        .header(
            "x-ms-keyvault-network-info",
            "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;",
        )
        .header("cache-control", "no-cache");
    match tenant {
        Some(t) => resp.header(
            "www-authenticate",
            keyvault::challenge(&sim.keyvault_authority(), &t),
        ),
        None => resp,
    }
}

type Failure = (KvError, Option<String>);

fn inner(sim: &Sim, pin: Option<&str>, r: &Req) -> Result<Resp, Failure> {
    let name = vault_name(sim, pin, r).ok_or_else(|| (KvError::not_found(&r.path), None))?;
    let (vault_id, vault_tenant, location, vault_name) = {
        let ws = sim.state.world.read();
        let i = ws
            .index
            .vault(&name)
            .ok_or_else(|| (KvError::not_found(&r.path), None))?;
        let v = &ws.world.key_vaults[i];
        (
            v.id(),
            v.tenant_id.clone().unwrap_or_default(),
            v.location.clone().unwrap_or_default(),
            v.name.clone(),
        )
    };
    let fail = |e: KvError| (e, Some(vault_tenant.clone()));
    let q = r.params();
    if q.get_ci("api-version").is_none_or(str::is_empty) {
        return Err(fail(KvError::missing_api_version()));
    }
    let route = keyvault::parse_path(&r.path).map_err(fail)?;
    let now = now_secs();
    let caller = token::validate(r.header("authorization"), &sim.key, now).map_err(|e| {
        fail(match e {
            BearerError::Missing | BearerError::BadFormat => KvError::missing_token(),
            BearerError::Expired(..) => KvError::expired(),
            BearerError::Invalid(_) | BearerError::NotYetValid(_) => KvError::invalid_token(),
        })
    })?;
    if !world::audience_in(&caller.audience, world::VAULT_AUDIENCES) {
        return Err(fail(KvError::bad_audience(&caller.audience)));
    }
    if !caller.tenant_id.eq_ignore_ascii_case(&vault_tenant) {
        return Err(fail(KvError::bad_issuer(&vault_tenant, &caller.issuer)));
    }
    let base = format!("https://{}", r.host);
    let check =
        |ws: &crate::state::WorldState, action: &str, resource: &str| -> Result<(), Failure> {
            let g = crate::arm::grants(&ws.world, &ws.index, &caller.object_id);
            if rbac::allowed(&g, action, resource, true) {
                Ok(())
            } else {
                Err((
                    KvError::forbidden(
                        &caller.app_id,
                        &caller.object_id,
                        &caller.issuer,
                        action,
                        resource,
                        &vault_name,
                        &location,
                    ),
                    None,
                ))
            }
        };
    let get = r.method == http::Method::GET;
    match route {
        Route::List if get => {
            let ws = sim.state.world.read();
            check(&ws, keyvault::READ_METADATA, &vault_id)?;
            let i = ws
                .index
                .vault(&name)
                .ok_or_else(|| (KvError::not_found(&r.path), None))?;
            Ok(Resp::json(
                200,
                &keyvault::list(&base, &ws.world.key_vaults[i].secrets),
            ))
        }
        Route::Versions { name: s } if get => {
            let ws = sim.state.world.read();
            check(
                &ws,
                keyvault::READ_METADATA,
                &format!("{vault_id}/secrets/{s}"),
            )?;
            let i = ws
                .index
                .vault(&name)
                .ok_or_else(|| (KvError::not_found(&r.path), None))?;
            keyvault::versions(&base, &ws.world.key_vaults[i].secrets, &s)
                .map(|v| Resp::json(200, &v))
                .map_err(|e| (e, None))
        }
        Route::Secret { name: s, version } if get => {
            let ws = sim.state.world.read();
            check(
                &ws,
                keyvault::GET_SECRET,
                &format!("{vault_id}/secrets/{s}"),
            )?;
            let i = ws
                .index
                .vault(&name)
                .ok_or_else(|| (KvError::not_found(&r.path), None))?;
            let secret = keyvault::find(&ws.world.key_vaults[i].secrets, &s, version.as_deref())
                .map_err(|e| (e, None))?;
            if secret.enabled == Some(false) {
                return Err((KvError::disabled(), None));
            }
            Ok(Resp::json(200, &keyvault::bundle(&base, secret)).note(s))
        }
        Route::Secret {
            name: s,
            version: None,
        } if r.method == http::Method::PUT => {
            let mut ws = sim.state.world.write();
            check(
                &ws,
                keyvault::SET_SECRET,
                &format!("{vault_id}/secrets/{s}"),
            )?;
            let seq = ws.generation;
            let secret = keyvault::parse_set(&s, &r.body, now, seq).map_err(|e| (e, None))?;
            let i = ws
                .index
                .vault(&name)
                .ok_or_else(|| (KvError::not_found(&r.path), None))?;
            let body = keyvault::bundle(&base, &secret);
            ws.world.key_vaults[i].secrets.push(secret);
            ws.reindex();
            Ok(Resp::json(200, &body).note(s))
        }
        _ => Err((KvError::method_not_allowed(r.method.as_str()), None)),
    }
}
