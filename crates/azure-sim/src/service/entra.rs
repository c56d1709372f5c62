//! Entra ID over HTTPS: token endpoints (v1 and v2), OIDC discovery, JWKS and instance discovery.

use std::sync::Arc;

use base64::Engine;

use super::{Req, Resp, Sim, guid, now_secs};
use crate::entra::{
    self, AssertionKind, ClientRef, Credential, EntraError, FederatedSig, TenantPath,
};
use crate::form::Params;
use crate::jwt::Decoded;
use crate::token::{self, Principal};

struct Ctx {
    trace: String,
    correlation: String,
    echo_correlation: bool,
}

impl Ctx {
    fn new(r: &Req) -> Ctx {
        let given = r
            .header("client-request-id")
            .filter(|s| !s.is_empty() && s.len() < 200);
        Ctx {
            trace: guid(),
            correlation: given.map(str::to_string).unwrap_or_else(guid),
            echo_correlation: given.is_some(),
        }
    }

    fn finish(&self, r: Resp) -> Resp {
        let r = r
            .header("cache-control", "no-store, no-cache")
            .header("pragma", "no-cache")
            .header("x-ms-request-id", self.trace.clone())
            .header("x-ms-ests-server", "2.1.19512.8 - WEULR1 ProdSlices");
        if self.echo_correlation {
            r.header("client-request-id", self.correlation.clone())
        } else {
            r
        }
    }

    fn error(&self, e: &EntraError) -> Resp {
        let r = Resp::json(
            e.status,
            &e.body(&self.trace, &self.correlation, now_secs()),
        )
        .note(format!("AADSTS{}", e.code));
        self.finish(r)
    }
}

/// Handle one Entra request.
pub async fn handle(sim: &Arc<Sim>, r: &Req) -> Resp {
    let ctx = Ctx::new(r);
    let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    let result = match segs.as_slice() {
        [t, "oauth2", "v2.0", "token"] => token(sim, r, t, true).await,
        [t, "oauth2", "token"] => token(sim, r, t, false).await,
        [t, "v2.0", ".well-known", "openid-configuration"] => discovery(sim, r, t, true),
        [t, ".well-known", "openid-configuration"] => discovery(sim, r, t, false),
        [t, "discovery", "v2.0", "keys"] => jwks(sim, r, t, true),
        [t, "discovery", "keys"] => jwks(sim, r, t, false),
        [_, "discovery", "instance"] => {
            let mut own: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            own.push(r.hostname().to_string());
            own.extend(sim.config.extra_sans.iter().cloned());
            entra::instance_discovery(&r.params(), &own).map(|v| Resp::json(200, &v))
        }
        _ => Err(EntraError::new(
            404,
            "invalid_request",
            90054,
            format!("The requested endpoint '{}' does not exist.", r.path),
        )),
    };
    match result {
        Ok(resp) => ctx.finish(resp),
        Err(e) => {
            let mut resp = ctx.error(&e);
            if r.method == http::Method::POST {
                resp.params = form_of(r).redacted();
            }
            resp
        }
    }
}

fn tenant_for_discovery(sim: &Sim, seg: &str) -> Result<(String, String), EntraError> {
    let ws = sim.state.world.read();
    match entra::resolve_tenant(&ws.index, seg) {
        Ok(TenantPath::Tenant(i)) => Ok((seg.to_string(), ws.world.tenants[i].id.clone())),
        Ok(TenantPath::Multi(m)) => Ok((m.to_string(), "{tenantid}".to_string())),
        Err(mut e) => {
            e.error = "invalid_tenant";
            Err(e)
        }
    }
}

fn discovery(sim: &Sim, r: &Req, seg: &str, v2: bool) -> Result<Resp, EntraError> {
    if r.method != http::Method::GET {
        return Err(EntraError::new(
            405,
            "invalid_request",
            90054,
            "Only GET is supported.",
        ));
    }
    let (path_seg, tid) = tenant_for_discovery(sim, seg)?;
    let doc = if v2 {
        entra::openid_configuration_v2(&r.host, &path_seg, &tid)
    } else {
        entra::openid_configuration_v1(&r.host, &path_seg, &tid)
    };
    Ok(Resp::json(200, &doc))
}

fn jwks(sim: &Sim, r: &Req, seg: &str, v2: bool) -> Result<Resp, EntraError> {
    let issuer = if v2 {
        let tid = if seg.eq_ignore_ascii_case("common") {
            "{tenantid}".to_string()
        } else {
            tenant_for_discovery(sim, seg)?.1
        };
        Some(crate::token::v2_issuer(&r.host, &tid))
    } else {
        None
    };
    Ok(Resp::json(200, &sim.key.jwks(issuer.as_deref())))
}

fn form_of(r: &Req) -> Params {
    let ct = r.header("content-type").unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        Params::parse(&r.body)
    } else {
        Params::default()
    }
}

fn basic_auth(r: &Req) -> Option<(String, String)> {
    let h = r.header("authorization")?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((
        crate::form::decode(u.as_bytes()).into_owned(),
        crate::form::decode(p.as_bytes()).into_owned(),
    ))
}

/// What the world lookup decided, before any network IO.
enum Next {
    Issue(Principal),
    Federated {
        principal: Principal,
        assertion: Decoded,
    },
}

async fn token(sim: &Arc<Sim>, r: &Req, tenant_seg: &str, v2: bool) -> Result<Resp, EntraError> {
    if r.method != http::Method::POST {
        return Err(EntraError::post_only(r.method.as_str()));
    }
    let now = now_secs();
    let form = form_of(r);
    let params = form.redacted();
    let (next, version, audience, resource) = {
        let ws = sim.state.world.read();
        let (w, ix) = (&ws.world, &ws.index);
        let tenant = match entra::resolve_tenant(ix, tenant_seg)? {
            TenantPath::Tenant(t) => t,
            TenantPath::Multi(_) => {
                return Err(EntraError::new(
                    400,
                    "invalid_request",
                    50059,
                    "No tenant-identifying information found in either the request or implied by any provided credentials.",
                ));
            }
        };
        let req = entra::parse_token_request(v2, &form, basic_auth(r))?;
        let client = entra::find_client(w, ix, tenant, &req.client_id)?;
        entra::check_resource(w, ix, tenant, &req.resource)?;
        let next = match &req.credential {
            Credential::Secret(s) => {
                entra::check_secret(w, client, &req.client_id, s, now)?;
                Next::Issue(entra::principal(w, client, "1"))
            }
            Credential::Assertion(a) => {
                let (t, kind) = entra::classify(a, &req.client_id)?;
                match kind {
                    AssertionKind::Certificate => {
                        let certs = match client {
                            ClientRef::App(i) => ix.app_certs(i),
                            ClientRef::Uami(_) => &[],
                        };
                        let tn = &w.tenants[tenant];
                        let mut names: Vec<&str> = vec![tn.id.as_str(), tenant_seg];
                        names.extend(tn.domains.iter().map(String::as_str));
                        entra::check_cert_assertion(&t, certs, &req.client_id, &names, now)?;
                        entra::check_lifetime(&t, now)?;
                        Next::Issue(entra::principal(w, client, "2"))
                    }
                    AssertionKind::Federated => {
                        entra::match_fic(entra::client_fics(w, client), &t)?;
                        Next::Federated {
                            principal: entra::principal(w, client, "2"),
                            assertion: t,
                        }
                    }
                }
            }
        };
        let (version, audience) = entra::token_format(w, ix, &req.resource);
        (next, version, audience, req.resource)
    };
    let principal = match next {
        Next::Issue(p) => p,
        Next::Federated {
            principal,
            assertion,
        } => {
            verify_federated(sim, &assertion).await?;
            entra::check_lifetime(&assertion, now)?;
            principal
        }
    };
    let lifetime = sim.state.settings.read().entra_token_lifetime_secs;
    let t = sim.issue_token(&principal, &audience, version, &r.host, lifetime, now);
    let expires_in = (t.expires_on - now).max(0);
    let body = if v2 {
        token::v2_response(&t.token, expires_in)
    } else {
        token::v1_response(&t.token, expires_in, t.expires_on, t.not_before, &resource)
    };
    let mut resp = Resp::raw_json(200, body).note(principal.app_id.clone());
    resp.params = params;
    Ok(resp)
}

async fn verify_federated(sim: &Arc<Sim>, t: &Decoded) -> Result<(), EntraError> {
    let iss = t.claim_str("iss").unwrap_or("").to_string();
    let keys = sim.oidc.keys(&iss, false).await.map_err(|e| {
        tracing::debug!(error = %e, issuer = %iss, "federated issuer discovery failed");
        entra::oidc_fetch_failed()
    })?;
    match entra::check_federated_signature(t, &keys) {
        FederatedSig::Ok => Ok(()),
        FederatedSig::Err(e) => Err(e),
        FederatedSig::KeyNotFound => {
            let keys = sim
                .oidc
                .keys(&iss, true)
                .await
                .map_err(|_| entra::oidc_fetch_failed())?;
            match entra::check_federated_signature(t, &keys) {
                FederatedSig::Ok => Ok(()),
                FederatedSig::Err(e) => Err(e),
                FederatedSig::KeyNotFound => Err(entra::federated_key_not_found(t)),
            }
        }
    }
}
