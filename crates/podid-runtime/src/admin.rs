//! A tiny HTTP server for probes and metrics. Each component passes a function from request path (or, with
//! [`spawn_with`], path, query and peer address) to `(status, content type, body)`; there is no pprof (upstream
//! exposed pprof on its probe ports by accident), and a component's read-only debug view decides itself who may
//! read it from the peer address.
//!
//! The server is bounded like every other (`podid-serve`): header-read and idle timeouts, header limits and
//! connection caps ([`admin_limits`]); a client that sends half a request is dropped, never held.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use podid_serve::{Limits, Server};
use tokio::net::TcpListener;

/// Content type of plain-text answers.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// Content type of the Prometheus text format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of JSON answers.
pub const JSON: &str = "application/json";

/// Most connections open at once on one admin port: its callers are a kubelet and a metrics scraper, a handful
/// of connections; the cap keeps a caller that floods the port (it listens on all interfaces by default) from
/// exhausting the process's file descriptors.
pub const ADMIN_MAX_CONNECTIONS: usize = 256;
/// Most connections from one address on one admin port (the kubelet probes from one address).
pub const ADMIN_MAX_CONNECTIONS_PER_IP: usize = 64;

/// The admin servers' limits: `podid-serve`'s defaults with the admin connection caps.
#[must_use]
pub fn admin_limits() -> Limits {
    Limits {
        max_connections: ADMIN_MAX_CONNECTIONS,
        max_connections_per_ip: ADMIN_MAX_CONNECTIONS_PER_IP,
        ..Limits::default()
    }
}

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
    let (local, _) = spawn_with_limits(addr, admin_limits(), answer).await?;
    Ok(local)
}

/// [`spawn_with`] with explicit limits; also returns the server, whose counters
/// ([`Server::stats`]) a component may expose.
pub async fn spawn_with_limits<F>(
    addr: SocketAddr,
    limits: Limits,
    answer: F,
) -> anyhow::Result<(SocketAddr, Arc<Server>)>
where
    F: Fn(&AdminRequest<'_>) -> Answer + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let answer = Arc::new(answer);
    let server = Server::new(limits);
    let run = server.listen(listener).run(
        move |conn: &podid_serve::Conn| {
            let answer = answer.clone();
            let peer = conn.remote;
            hyper::service::service_fn(move |req: Request<Incoming>| {
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
            })
        },
        std::future::pending(),
    );
    tokio::spawn(run);
    Ok((local, server))
}
