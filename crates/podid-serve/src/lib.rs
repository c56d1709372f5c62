//! Bounded HTTP servers: the accept loop every podid server and simulator runs.
//!
//! # Why
//! A server that waits for a request forever can be held by anyone who opens connections and sends half a
//! request line (2,000 such connections stayed open indefinitely on the agent, kube-sim and azure-sim). Every
//! server here therefore has a bound on each thing a client can make it wait for or hold:
//!
//! | bound | what it stops | enforced by |
//! |---|---|---|
//! | [`Limits::header_read_timeout`] | a request head sent slowly or never (slow loris) | the connection watchdog |
//! | [`Limits::idle_timeout`] | a keep-alive connection parked with no request in flight | the connection watchdog |
//! | [`Limits::idle_timeout`] again | a client that stops reading a response (writes blocked that long) | the connection watchdog |
//! | [`Limits::max_header_bytes`] | an endless request head (answered 431 by hyper) | hyper's read buffer |
//! | [`Limits::max_connections`] | a flood from many addresses | the connection table |
//! | [`Limits::max_connections_per_ip`] | one address taking every slot (on the node agent: one pod) | the connection table |
//! | [`Limits::tls_handshake_timeout`] | a TLS handshake that never completes | a timeout around the handshake |
//! | [`Limits::body_read_timeout`] + a caller's size cap | a body sent slowly, or too much of it | [`Server::read_body`] |
//!
//! Every refusal and every close is counted in [`Stats`], which writes itself as Prometheus text.
//!
//! # Model
//! One [`Server`] holds the limits, the counters and the connection table of one component; every listener of
//! that component runs [`Server::listen`]`(..).run(make_service, shutdown)`, so the caps are the component's, not
//! one socket's (azure-sim's many listeners share one). An accepted connection first takes a slot in the table:
//! over either cap it is closed at once and counted, before any byte is read or a TLS handshake is started. The
//! slot is given back when the connection (or an upgraded stream made from it) is dropped; an address whose count
//! returns to zero leaves the table, so the table never grows beyond the open connections.
//!
//! Time limits are kept by a watchdog beside each connection, from three facts the connection reports: how many
//! requests are in flight (a request is in flight from the moment its head is parsed until its response body has
//! been written or dropped), when the connection last became idle, and when the first byte after that arrived.
//! - No request in flight and none served yet: the first request head must arrive within the header-read
//!   timeout of the connection being accepted (or its TLS handshake finishing).
//! - No request in flight after a response (HTTP/1 keep-alive): the next request may start any time within the
//!   idle timeout; once its first byte arrives, its head must be complete within the header-read timeout.
//! - HTTP/2: idle is measured from the moment no stream is open; pings and window updates do not reset it.
//! - A request in flight is never timed here: a Kubernetes watch or a long poll may stream for hours. Only a
//!   client that stops reading is: a write that cannot proceed for the idle timeout (the client's receive
//!   window stayed full) closes the connection, in flight or not.
//! - A connection upgraded (101 Switching Protocols) leaves the watchdog for good.
//!
//! hyper 1.x has a header-read timeout of its own, but it starts the moment the connection goes idle, so it
//! would close keep-alive connections after the (short) header-read timeout; podid turns it off and keeps both
//! timers in the watchdog. Closing on a timeout drops the connection without an answer, as Go's servers do.
//!
//! # Where it sits
//! This crate is infrastructure, neither product nor simulator: the simulators (kube-sim, azure-sim) and the
//! product crates (the agent, and through `podid-runtime` the admin server of every component) all depend on
//! it, and it depends on nothing of either.

mod body;
mod conn;
mod server;
mod stats;
mod table;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::time::Duration;

pub use body::BodyError;
pub use server::{Conn, Listen, Server};
pub use stats::{Stats, StatsSnapshot};

/// Default time a client has to send a complete request head: a head is a few KiB (a bearer token is 1-2 KiB),
/// which a live client on any link sends in well under a second; a slow-loris client is cut after this.
pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default time a keep-alive connection may sit with no request in flight: 90 s matches Go's
/// `http.DefaultTransport` idle timeout and kube-apiserver's, so well-behaved clients usually close first.
pub const IDLE_TIMEOUT_SECS: u64 = 90;
/// Default largest request head (request line and headers, HTTP/1 read buffer; HTTP/2 header list): 64 KiB is
/// 30 times a bearer-token request and twice nginx's default, far below hyper's 400 KB default.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Smallest accepted [`Limits::max_header_bytes`]: hyper's HTTP/1 read buffer cannot be smaller (it panics).
pub const MIN_HEADER_BYTES: usize = 8 * 1024;
/// Default cap on open connections of one component: well below a node's file-descriptor limits, and at a few
/// tens of KiB per idle connection a bounded amount of memory (~100-200 MiB at worst).
pub const MAX_CONNECTIONS: usize = 4096;
/// Default cap on open connections from one source address: 1/16 of the total, so one client cannot take more
/// than a small share, while a busy client (a controller, a load generator, 100 watches) is never near it.
pub const MAX_CONNECTIONS_PER_IP: usize = 256;
/// Default time a TLS handshake may take (the simulators' value before this crate existed).
pub const TLS_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
/// Default time a request body may take to arrive in full through [`Server::read_body`]: a 3 MiB body (kube-sim's
/// cap) at 50 KiB/s; kube-apiserver's default request timeout is 60 s too.
pub const BODY_READ_TIMEOUT_SECS: u64 = 60;
/// Default time in-flight requests get to finish after the shutdown signal before they are dropped.
pub const DRAIN_TIMEOUT_SECS: u64 = 1;

/// The bounds of one server. `Limits::default()` holds the defaults above; components override fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to receive a complete request head, from accept (first request) or from the request's first byte.
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in flight (between keep-alive requests); also the time a
    /// write to a client that reads nothing may stay blocked.
    pub idle_timeout: Duration,
    /// Largest request head in bytes (HTTP/1: hyper's read buffer, over it hyper answers 431; HTTP/2: the
    /// header list size). Values below [`MIN_HEADER_BYTES`] are raised to it.
    pub max_header_bytes: usize,
    /// Most connections open at once (0 is treated as 1).
    pub max_connections: usize,
    /// Most connections open at once from one source address (0 is treated as 1).
    pub max_connections_per_ip: usize,
    /// Time a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// Time a request body may take to arrive in full through [`Server::read_body`].
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(HEADER_READ_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(IDLE_TIMEOUT_SECS),
            max_header_bytes: MAX_HEADER_BYTES,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            tls_handshake_timeout: Duration::from_secs(TLS_HANDSHAKE_TIMEOUT_SECS),
            body_read_timeout: Duration::from_secs(BODY_READ_TIMEOUT_SECS),
        }
    }
}

impl Limits {
    /// The limits as enforced: header bytes at least [`MIN_HEADER_BYTES`], caps at least 1, timeouts at least
    /// 1 ms (a zero timeout would close every connection at once).
    #[must_use]
    pub fn effective(mut self) -> Limits {
        let floor = Duration::from_millis(1);
        self.max_header_bytes = self.max_header_bytes.max(MIN_HEADER_BYTES);
        self.max_connections = self.max_connections.max(1);
        self.max_connections_per_ip = self.max_connections_per_ip.max(1);
        self.header_read_timeout = self.header_read_timeout.max(floor);
        self.idle_timeout = self.idle_timeout.max(floor);
        self.tls_handshake_timeout = self.tls_handshake_timeout.max(floor);
        self.body_read_timeout = self.body_read_timeout.max(floor);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_constants() {
        let l = Limits::default();
        assert_eq!(l.header_read_timeout, Duration::from_secs(10));
        assert_eq!(l.idle_timeout, Duration::from_secs(90));
        assert_eq!(l.max_header_bytes, 65_536);
        assert_eq!(l.max_connections, 4096);
        assert_eq!(l.max_connections_per_ip, 256);
        assert!(l.header_read_timeout < l.idle_timeout);
        assert_eq!(l.effective(), l, "the defaults need no adjustment");
    }

    #[test]
    fn effective_raises_values_hyper_or_the_table_cannot_take() {
        let l = Limits {
            header_read_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            max_header_bytes: 10,
            max_connections: 0,
            max_connections_per_ip: 0,
            tls_handshake_timeout: Duration::ZERO,
            body_read_timeout: Duration::ZERO,
        }
        .effective();
        assert_eq!(l.max_header_bytes, MIN_HEADER_BYTES);
        assert_eq!((l.max_connections, l.max_connections_per_ip), (1, 1));
        assert!(!l.header_read_timeout.is_zero() && !l.idle_timeout.is_zero());
        assert!(!l.tls_handshake_timeout.is_zero() && !l.body_read_timeout.is_zero());
    }
}
