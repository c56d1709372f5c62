//! The probe server (`/healthz`: always 200, body `Active` on the leader running its loop and `Not Active`
//! otherwise, as upstream; `/readyz`: 200 once every watch delivered its first list) and the metrics server
//! (`/metrics`). No pprof (upstream exposed it on the probe port by accident).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::state::Shared;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `/healthz`, `/readyz`.
    Probe,
    /// `/metrics`.
    Metrics,
}

fn respond(role: Role, shared: &Shared, path: &str) -> podid_runtime::admin::Answer {
    let (status, ct, body) = match (role, path) {
        (Role::Probe, "/healthz") => {
            let body = if shared.active.load(Ordering::Acquire) {
                "Active"
            } else {
                "Not Active"
            };
            (200, "text/plain; charset=utf-8", body.to_string())
        }
        (Role::Probe, "/readyz") => {
            if shared.synced() {
                (200, "text/plain; charset=utf-8", "ok".to_string())
            } else {
                (
                    503,
                    "text/plain; charset=utf-8",
                    "watches not synced".to_string(),
                )
            }
        }
        (Role::Metrics, "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.encode(),
        ),
        _ => podid_runtime::admin::not_found(),
    };
    (status, ct, body)
}

/// Bind and serve in the background; returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    role: Role,
    shared: Arc<Shared>,
) -> anyhow::Result<SocketAddr> {
    podid_runtime::admin::spawn(addr, move |path| respond(role, &shared, path)).await
}
