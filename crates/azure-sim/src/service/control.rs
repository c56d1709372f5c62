//! The control API (plain HTTP, JSON; keep it on loopback).
//!
//! | Method and path | Effect |
//! |---|---|
//! | `GET /healthz` | `ok` |
//! | `GET /world`, `PUT /world` | read / replace the world (JSON or YAML body; resets operations and cached tokens) |
//! | `GET /endpoints` | every listener's URL and the CA file |
//! | `GET /counters`, `DELETE /counters` | per-family request counters by status |
//! | `GET /metrics` | connection counters of every listener (Prometheus text, `azure_sim_server_*`) |
//! | `GET /requests?family=&limit=`, `DELETE /requests` | the request log (credentials redacted) |
//! | `GET /faults`, `PUT /faults/{family}`, `DELETE /faults[/{family}]` | fault injection |
//! | `GET /settings`, `PUT /settings`, `PATCH /settings` | runtime settings (LRO durations, token lifetimes) |
//! | `GET /oidc`, `DELETE /oidc/cache` | federated issuer fetch count; drop cached issuer keys |

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Req, Resp, Sim};
use crate::config::Settings;
use crate::state::{Family, Fault};
use crate::world::World;

fn error(status: u16, code: &str, message: impl Into<String>) -> Resp {
    Resp::json(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
    .note(code.to_string())
}

fn berror(status: u16, code: &str, message: impl Into<String>) -> Box<Resp> {
    Box::new(error(status, code, message))
}

fn parse_body(r: &Req) -> Result<Value, Box<Resp>> {
    if r.body.is_empty() {
        return Err(Box::new(error(
            400,
            "InvalidRequestContent",
            "the request body is empty",
        )));
    }
    let ct = r.header("content-type").unwrap_or("").to_ascii_lowercase();
    if ct.contains("yaml") {
        let text = std::str::from_utf8(&r.body)
            .map_err(|_| Box::new(error(400, "InvalidRequestContent", "the body is not UTF-8")))?;
        serde_saphyr::from_str(text).map_err(|e| {
            Box::new(error(
                400,
                "InvalidRequestContent",
                format!("invalid YAML: {e}"),
            ))
        })
    } else {
        serde_json::from_slice(&r.body).map_err(|e| {
            Box::new(error(
                400,
                "InvalidRequestContent",
                format!("invalid JSON: {e}"),
            ))
        })
    }
}

/// Handle one control request.
pub async fn handle(sim: &Arc<Sim>, r: &Req) -> Resp {
    match inner(sim, r) {
        Ok(x) => x,
        Err(x) => *x,
    }
}

fn inner(sim: &Arc<Sim>, r: &Req) -> Result<Resp, Box<Resp>> {
    use http::Method;
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let m = &r.method;
    Ok(match (m.clone(), segs.as_slice()) {
        (Method::GET, ["healthz"]) => Resp::text(200, "ok"),
        (Method::GET, ["world"]) => Resp::json(
            200,
            &serde_json::to_value(&sim.state.world.read().world).unwrap_or_default(),
        ),
        (Method::PUT, ["world"]) => {
            let mut v = parse_body(r)?;
            if v.is_null() {
                v = json!({});
            }
            if v.get("sim").is_some() {
                return Err(berror(
                    400,
                    "InvalidWorld",
                    "the sim section cannot change while the simulator runs",
                ));
            }
            let w = World::from_value(v)
                .and_then(World::normalize)
                .map_err(|e| berror(400, "InvalidWorld", e.0))?;
            sim.state.replace_world(w);
            sim.sync_listeners()
                .map_err(|e| berror(500, "ListenerFailed", e.to_string()))?;
            Resp::json(
                200,
                &json!({"world": serde_json::to_value(&sim.state.world.read().world).unwrap_or_default(),
                        "endpoints": serde_json::to_value(&*sim.endpoints.read()).unwrap_or_default()}),
            )
        }
        (Method::GET, ["endpoints"]) => Resp::json(
            200,
            &serde_json::to_value(&*sim.endpoints.read()).unwrap_or_default(),
        ),
        (Method::GET, ["counters"]) => Resp::json(200, &sim.state.counters_json()),
        (Method::GET, ["metrics"]) => {
            let mut text = String::new();
            sim.server.stats().encode(&mut text, "azure_sim_server");
            Resp::text(200, text)
        }
        (Method::DELETE, ["counters"]) => {
            sim.state.reset_counters();
            Resp::json(200, &sim.state.counters_json())
        }
        (Method::GET, ["requests"]) => {
            let q = r.params();
            let family = match q.non_empty("family") {
                Some(f) => Some(Family::parse(f).ok_or_else(|| {
                    berror(400, "InvalidFamily", format!("unknown family '{f}'"))
                })?),
                None => None,
            };
            let limit = match q.non_empty("limit") {
                Some(l) => l.parse::<usize>().map_err(|_| {
                    berror(400, "InvalidLimit", format!("limit '{l}' is not a number"))
                })?,
                None => 1000,
            };
            Resp::json(200, &json!({"items": sim.state.log_entries(family, limit)}))
        }
        (Method::DELETE, ["requests"]) => {
            sim.state.clear_log();
            Resp::json(200, &json!({"items": []}))
        }
        (Method::GET, ["faults"]) => Resp::json(
            200,
            &serde_json::to_value(sim.state.faults()).unwrap_or_default(),
        ),
        (Method::DELETE, ["faults"]) => {
            sim.state.clear_faults();
            Resp::json(200, &json!({}))
        }
        (Method::PUT | Method::DELETE, ["faults", f]) => {
            let fam = Family::parse(f)
                .filter(|f| *f != Family::Control)
                .ok_or_else(|| {
                    berror(
                        404,
                        "InvalidFamily",
                        format!("unknown family '{f}' (imds, entra, arm, keyvault)"),
                    )
                })?;
            if *m == Method::DELETE {
                sim.state.set_fault(fam, None);
                Resp::json(
                    200,
                    &serde_json::to_value(sim.state.faults()).unwrap_or_default(),
                )
            } else {
                let fault: Fault = serde_json::from_value(parse_body(r)?)
                    .map_err(|e| berror(400, "InvalidFault", e.to_string()))?;
                if let Some(s) = fault.status
                    && !(400..=599).contains(&s)
                {
                    return Err(berror(
                        400,
                        "InvalidFault",
                        format!("status {s} is not an error status"),
                    ));
                }
                sim.state.set_fault(fam, Some(fault));
                Resp::json(
                    200,
                    &serde_json::to_value(sim.state.faults()).unwrap_or_default(),
                )
            }
        }
        (Method::GET, ["settings"]) => Resp::json(
            200,
            &serde_json::to_value(&*sim.state.settings.read()).unwrap_or_default(),
        ),
        (Method::PUT | Method::PATCH, ["settings"]) => {
            let body = parse_body(r)?;
            let merged = if *m == Method::PATCH {
                let mut cur = serde_json::to_value(&*sim.state.settings.read()).unwrap_or_default();
                match (cur.as_object_mut(), body) {
                    (Some(c), Value::Object(b)) => {
                        for (k, v) in b {
                            c.insert(k, v);
                        }
                    }
                    _ => {
                        return Err(berror(
                            400,
                            "InvalidSettings",
                            "settings must be a JSON object",
                        ));
                    }
                }
                cur
            } else {
                body
            };
            let s: Settings = serde_json::from_value(merged)
                .map_err(|e| berror(400, "InvalidSettings", e.to_string()))?;
            *sim.state.settings.write() = s.clone();
            Resp::json(200, &serde_json::to_value(&s).unwrap_or_default())
        }
        (Method::GET, ["oidc"]) => Resp::json(200, &json!({"fetches": sim.oidc.fetch_count()})),
        (Method::DELETE, ["oidc", "cache"]) => {
            sim.oidc.clear();
            Resp::json(200, &json!({"fetches": sim.oidc.fetch_count()}))
        }
        (
            _,
            [
                "healthz" | "world" | "endpoints" | "counters" | "requests" | "faults" | "settings"
                | "oidc",
            ],
        )
        | (_, ["faults", _])
        | (_, ["oidc", "cache"]) => error(
            405,
            "MethodNotAllowed",
            format!("{m} is not supported on {}", r.path),
        ),
        _ => error(404, "NotFound", format!("no control endpoint {}", r.path)),
    })
}
