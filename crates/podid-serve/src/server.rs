//! The accept loop: caps at accept, the optional TLS handshake, hyper configured from the limits, the
//! connection watchdog, graceful shutdown.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::{Close, ConnState, Guarded, Tracked, watchdog};
use crate::stats::inc;
use crate::table::{ConnTable, Refused};
use crate::{DRAIN_TIMEOUT_SECS, Limits, Stats};

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// One component's bounded server: its limits, counters and connection table, shared by all its listeners.
pub struct Server {
    limits: Limits,
    stats: Arc<Stats>,
    table: ConnTable,
}

/// What the service factory knows about an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conn {
    /// The client's address.
    pub remote: SocketAddr,
    /// The address the client connected to.
    pub local: Option<SocketAddr>,
    /// The TLS server name the client asked for (TLS listeners only).
    pub sni: Option<String>,
}

/// A connection's slot in the table; freed on drop.
pub(crate) struct Permit {
    pub(crate) server: Arc<Server>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.server.table.release(self.ip);
        self.server.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Log a refusal on the 1st, 2nd, 4th, 8th... occurrence: visible, but a flood cannot flood the log.
fn log_refusal(n: u64, remote: SocketAddr, what: &str, cap: usize) {
    if n.is_power_of_two() {
        tracing::warn!(%remote, refused = n, cap, "connection refused: {what} cap reached");
    }
}

// === impl Server ===

impl Server {
    /// A server with `limits` (made [`Limits::effective`]) and fresh counters.
    #[must_use]
    pub fn new(limits: Limits) -> Arc<Server> {
        Server::with_stats(limits, Arc::default())
    }

    /// A server with `limits` counting into `stats` (e.g. counters a component's metrics already hold).
    #[must_use]
    pub fn with_stats(limits: Limits, stats: Arc<Stats>) -> Arc<Server> {
        Arc::new(Server {
            limits: limits.effective(),
            stats,
            table: ConnTable::default(),
        })
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Serve `listener` (configure with the [`Listen`] methods, then [`Listen::run`]).
    pub fn listen(self: &Arc<Self>, listener: TcpListener) -> Listen {
        Listen {
            server: self.clone(),
            listener,
            tls: None,
            http1_only: false,
            upgrades: false,
            drain: Duration::from_secs(DRAIN_TIMEOUT_SECS),
        }
    }

    /// Take a slot for a connection from `remote`, or count the refusal.
    fn admit(self: &Arc<Self>, remote: SocketAddr) -> Option<Permit> {
        let l = &self.limits;
        let ip = remote.ip();
        match self
            .table
            .try_acquire(ip, l.max_connections, l.max_connections_per_ip)
        {
            Ok(()) => {
                self.stats.active.fetch_add(1, Ordering::Relaxed);
                inc(&self.stats.accepted);
                Some(Permit {
                    server: self.clone(),
                    ip,
                })
            }
            Err(Refused::Total) => {
                let n = inc(&self.stats.refused_total_cap);
                log_refusal(n, remote, "total connection", l.max_connections);
                None
            }
            Err(Refused::PerIp) => {
                let n = inc(&self.stats.refused_per_ip_cap);
                log_refusal(
                    n,
                    remote,
                    "per-address connection",
                    l.max_connections_per_ip,
                );
                None
            }
        }
    }

    /// hyper configured from the limits: no hyper header-read timeout (the watchdog keeps it, see the crate
    /// docs), the HTTP/1 read buffer and the HTTP/2 header list capped at `max_header_bytes`.
    fn builder(&self, http1_only: bool) -> auto::Builder<TokioExecutor> {
        let mut b = auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(self.limits.max_header_bytes);
        b.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.limits.max_header_bytes).unwrap_or(u32::MAX));
        if http1_only { b.http1_only() } else { b }
    }
}

/// One listener being configured; [`Listen::run`] serves it.
#[must_use = "a listener serves nothing until run"]
pub struct Listen {
    server: Arc<Server>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    http1_only: bool,
    upgrades: bool,
    drain: Duration,
}

// === impl Listen ===

impl Listen {
    /// Serve HTTPS with `config` (the handshake is bounded by [`Limits::tls_handshake_timeout`]).
    pub fn tls(mut self, config: Option<Arc<rustls::ServerConfig>>) -> Listen {
        self.tls = config.map(tokio_rustls::TlsAcceptor::from);
        self
    }

    /// Speak HTTP/1 only (default: HTTP/1 and HTTP/2, chosen by the client's preface).
    pub fn http1_only(mut self) -> Listen {
        self.http1_only = true;
        self
    }

    /// Let a response upgrade the connection (101 Switching Protocols); an upgraded stream keeps its slot but
    /// leaves the time limits.
    pub fn with_upgrades(mut self) -> Listen {
        self.upgrades = true;
        self
    }

    /// After the shutdown signal, how long in-flight requests get before they are dropped (default 1 s).
    pub fn drain_timeout(mut self, d: Duration) -> Listen {
        self.drain = d;
        self
    }

    /// Accept connections until `shutdown` resolves, building each connection's service with
    /// `make_service(&conn)` (once per connection, so it may keep per-connection state); then stop accepting,
    /// let in-flight requests finish for the drain timeout, and return.
    pub async fn run<F, S, B>(self, make_service: F, shutdown: impl Future<Output = ()>)
    where
        F: Fn(&Conn) -> S + Send + Sync + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Listen {
            server,
            listener,
            tls,
            http1_only,
            upgrades,
            drain,
        } = self;
        let builder = server.builder(http1_only);
        let make_service = Arc::new(make_service);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        inc(&server.stats.accept_errors);
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let Some(permit) = server.admit(remote) else {
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let conn = Conn {
                remote,
                local: stream.local_addr().ok(),
                sni: None,
            };
            let job = Job {
                builder: builder.clone(),
                watcher: graceful.watcher(),
                upgrades,
                permit,
            };
            let make_service = make_service.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => {
                        let svc = make_service(&conn);
                        job.serve(stream, svc).await;
                    }
                    Some(acceptor) => {
                        if let Some((io, conn)) = handshake(&job, &acceptor, stream, conn).await {
                            let svc = make_service(&conn);
                            job.serve(io, svc).await;
                        }
                    }
                }
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
    }
}

/// The TLS handshake within its time limit; failures are counted.
async fn handshake(
    job: &Job,
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    mut conn: Conn,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Conn)> {
    let server = &job.permit.server;
    match tokio::time::timeout(server.limits.tls_handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => {
            conn.sni = s.get_ref().1.server_name().map(str::to_string);
            Some((s, conn))
        }
        Ok(Err(e)) => {
            inc(&server.stats.tls_failures);
            tracing::debug!(error = %e, remote = %conn.remote, "TLS handshake failed");
            None
        }
        Err(_) => {
            inc(&server.stats.tls_failures);
            tracing::debug!(remote = %conn.remote, "TLS handshake timed out");
            None
        }
    }
}

/// One accepted connection, ready to be served.
struct Job {
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    upgrades: bool,
    permit: Permit,
}

impl Job {
    /// Serve one connection until it ends, the client goes quiet for too long, or shutdown drains it.
    async fn serve<I, S, B>(self, io: I, svc: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Job {
            builder,
            watcher,
            upgrades,
            permit,
        } = self;
        let server = permit.server.clone();
        let state = Arc::new(ConnState::new(permit));
        let io = TokioIo::new(Guarded::new(io, state.clone()));
        let svc = Tracked::new(svc, state.clone());
        let limits = server.limits;
        let dog = watchdog(&state, limits.header_read_timeout, limits.idle_timeout);
        let closed = if upgrades {
            let conn = builder.serve_connection_with_upgrades(io, svc);
            tokio::select! {
                r = watcher.watch(conn) => { log_end(r); None }
                c = dog => Some(c),
            }
        } else {
            let conn = builder.serve_connection(io, svc);
            tokio::select! {
                r = watcher.watch(conn) => { log_end(r); None }
                c = dog => Some(c),
            }
        };
        match closed {
            Some(Close::HeaderTimeout) => {
                inc(&server.stats.header_timeouts);
                tracing::debug!(
                    "connection closed: no request head within the header-read timeout"
                );
            }
            Some(Close::IdleTimeout) => {
                inc(&server.stats.idle_timeouts);
                tracing::debug!("connection closed: idle");
            }
            Some(Close::WriteStalled) => {
                inc(&server.stats.write_stalls);
                tracing::debug!("connection closed: the client stopped reading");
            }
            None => {}
        }
    }
}

fn log_end(r: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
