//! Connection counters, written as Prometheus text. Counters carry the project's plain `_count` names (no
//! `_total`, as the components' upstream metrics); labels are bounded (`cap`, `reason`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a server counted. Shared by every listener of one [`crate::Server`]; a component may create it first
/// (to put it in its metrics) and hand it to [`crate::Server::with_stats`].
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) accepted: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) refused_total_cap: AtomicU64,
    pub(crate) refused_per_ip_cap: AtomicU64,
    pub(crate) header_timeouts: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) write_stalls: AtomicU64,
    pub(crate) tls_failures: AtomicU64,
    pub(crate) body_timeouts: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) requests: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Connections accepted and served (not refused).
    pub accepted: u64,
    /// Connections open now (including upgraded streams and those in their TLS handshake).
    pub active: u64,
    /// Connections closed at accept because [`crate::Limits::max_connections`] were open.
    pub refused_total_cap: u64,
    /// Connections closed at accept because [`crate::Limits::max_connections_per_ip`] were open from the address.
    pub refused_per_ip_cap: u64,
    /// Connections closed because a request head did not arrive within the header-read timeout.
    pub header_timeouts: u64,
    /// Keep-alive connections closed after the idle timeout with no request in flight.
    pub idle_timeouts: u64,
    /// Connections closed because the client read nothing of a response for the idle timeout.
    pub write_stalls: u64,
    /// TLS handshakes that failed or did not finish in time.
    pub tls_failures: u64,
    /// Request bodies that did not arrive in time ([`crate::Server::read_body`]).
    pub body_timeouts: u64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: u64,
    /// Requests started (request heads parsed and handed to the service).
    pub requests: u64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub(crate) fn inc(a: &AtomicU64) -> u64 {
    a.fetch_add(1, Ordering::Relaxed) + 1
}

impl Stats {
    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            accepted: get(&self.accepted),
            active: get(&self.active),
            refused_total_cap: get(&self.refused_total_cap),
            refused_per_ip_cap: get(&self.refused_per_ip_cap),
            header_timeouts: get(&self.header_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            write_stalls: get(&self.write_stalls),
            tls_failures: get(&self.tls_failures),
            body_timeouts: get(&self.body_timeouts),
            accept_errors: get(&self.accept_errors),
            requests: get(&self.requests),
        }
    }

    /// Count a request body that did not arrive in time (for callers that read bodies themselves).
    pub fn body_timed_out(&self) {
        inc(&self.body_timeouts);
    }

    /// Append the counters in the Prometheus text format, each name starting with `prefix` (e.g.
    /// `podid_agent_server`): `PREFIX_connections_accepted_count`, `PREFIX_connections_active`,
    /// `PREFIX_connections_refused_count{cap="total"|"per_ip"}`,
    /// `PREFIX_connections_closed_count{reason="header_timeout"|"idle_timeout"|"write_stalled"|"tls_handshake"}`,
    /// `PREFIX_body_timeouts_count`, `PREFIX_accept_errors_count`, `PREFIX_requests_count`.
    pub fn encode(&self, out: &mut String, prefix: &str) {
        let s = self.snapshot();
        let mut counter = |name: &str, help: &str, series: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} counter");
            for (labels, v) in series {
                let _ = writeln!(out, "{prefix}_{name}{labels} {v}");
            }
        };
        counter(
            "connections_accepted_count",
            "Connections accepted and served",
            &[("", s.accepted)],
        );
        counter(
            "connections_refused_count",
            "Connections closed at accept because a connection cap was reached",
            &[
                ("{cap=\"total\"}", s.refused_total_cap),
                ("{cap=\"per_ip\"}", s.refused_per_ip_cap),
            ],
        );
        counter(
            "connections_closed_count",
            "Connections closed by a server time limit",
            &[
                ("{reason=\"header_timeout\"}", s.header_timeouts),
                ("{reason=\"idle_timeout\"}", s.idle_timeouts),
                ("{reason=\"write_stalled\"}", s.write_stalls),
                ("{reason=\"tls_handshake\"}", s.tls_failures),
            ],
        );
        counter(
            "body_timeouts_count",
            "Request bodies that did not arrive within the body read timeout",
            &[("", s.body_timeouts)],
        );
        counter(
            "accept_errors_count",
            "Failed accept calls",
            &[("", s.accept_errors)],
        );
        counter(
            "requests_count",
            "Requests handed to the service",
            &[("", s.requests)],
        );
        let _ = writeln!(
            out,
            "# HELP {prefix}_connections_active Connections open now"
        );
        let _ = writeln!(out, "# TYPE {prefix}_connections_active gauge");
        let _ = writeln!(out, "{prefix}_connections_active {}", s.active);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_writes_every_counter_with_the_prefix() {
        let s = Stats::default();
        inc(&s.accepted);
        inc(&s.accepted);
        inc(&s.refused_per_ip_cap);
        inc(&s.header_timeouts);
        s.body_timed_out();
        s.active.store(7, Ordering::Relaxed);
        let mut out = String::new();
        s.encode(&mut out, "x_server");
        for line in [
            "x_server_connections_accepted_count 2",
            "x_server_connections_refused_count{cap=\"total\"} 0",
            "x_server_connections_refused_count{cap=\"per_ip\"} 1",
            "x_server_connections_closed_count{reason=\"header_timeout\"} 1",
            "x_server_connections_closed_count{reason=\"idle_timeout\"} 0",
            "x_server_connections_closed_count{reason=\"write_stalled\"} 0",
            "x_server_connections_closed_count{reason=\"tls_handshake\"} 0",
            "x_server_body_timeouts_count 1",
            "x_server_accept_errors_count 0",
            "x_server_requests_count 0",
            "x_server_connections_active 7",
            "# TYPE x_server_connections_active gauge",
            "# TYPE x_server_connections_refused_count counter",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        // Every sample line belongs to a declared family.
        for l in out.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            assert!(out.contains(&format!("# TYPE {name} ")), "{l}");
        }
    }
}
