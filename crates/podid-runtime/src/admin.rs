//! A tiny HTTP server for probes and metrics. Each component passes a function from request path (or, with
//! [`spawn_with`], path, query and peer address) to `(status, content type, body)`; there is no pprof (upstream
//! exposed pprof on its probe ports by accident), and a component's read-only debug view decides itself who may
//! read it from the peer address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Content type of plain-text answers.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// Content type of the Prometheus text format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of JSON answers.
pub const JSON: &str = "application/json";

/// What a path answers: status, content type, body.
pub type Answer = (u16, &'static str, String);

/// Go's default 404 answer.
#[must_use]
pub fn not_found() -> Answer {
    (404, TEXT, "404 page not found\n".to_string())
}

/// What a handler of [`spawn_with`] sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct AdminRequest<'a> {
    /// The path.
    pub path: &'a str,
    /// The raw query string (empty when none).
    pub query: &'a str,
    /// The caller's address.
    pub peer: SocketAddr,
}

/// Bind `addr` and serve `answer` (by path) in the background; returns the bound address.
pub async fn spawn<F>(addr: SocketAddr, answer: F) -> anyhow::Result<SocketAddr>
where
    F: Fn(&str) -> Answer + Send + Sync + 'static,
{
    spawn_with(addr, move |r: &AdminRequest<'_>| answer(r.path)).await
}

/// Bind `addr` and serve `answer` (by path, query and peer) in the background; returns the bound address.
pub async fn spawn_with<F>(addr: SocketAddr, answer: F) -> anyhow::Result<SocketAddr>
where
    F: Fn(&AdminRequest<'_>) -> Answer + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (status, ct, body) = answer(&AdminRequest {
                        path: req.uri().path(),
                        query: req.uri().query().unwrap_or(""),
                        peer,
                    });
                    let r = Response::builder()
                        .status(status)
                        .header("content-type", ct)
                        .body(Full::new(Bytes::from(body)))
                        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
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
