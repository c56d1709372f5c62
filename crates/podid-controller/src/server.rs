//! The probe server (`/healthz`: always 200, body `Active` on the leader running its loop and `Not Active`
//! otherwise, as upstream; `/readyz`: 200 once every watch delivered its first list) and the metrics server
//! (`/metrics`). No pprof (upstream exposed it on the probe port by accident).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::state::Shared;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `/healthz`, `/readyz`.
    Probe,
    /// `/metrics`.
    Metrics,
}

fn respond(role: Role, shared: &Shared, path: &str) -> Response<Full<Bytes>> {
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
        _ => (
            404,
            "text/plain; charset=utf-8",
            "404 page not found\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Bind and serve in the background; returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    role: Role,
    shared: Arc<Shared>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let r = respond(role, &shared, req.uri().path());
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(local)
}
