//! The admin (probe/metrics) server is bounded: half-sent requests are dropped within the header-read timeout
//! while probes keep being answered, idle keep-alive connections close, floods over the per-address cap are
//! closed and counted, oversized heads get 431. Loopback only, short limits set by the test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podid_runtime::admin::{Answer, TEXT, not_found, spawn_with_limits};
use podid_serve::testkit::{self, HEADER_TIMEOUT as HEADER, IDLE_TIMEOUT as IDLE, Probe, SLACK};
use podid_serve::{Limits, Server};

fn limits() -> Limits {
    testkit::short_timeouts(Limits {
        max_connections_per_ip: 500,
        max_connections: 1000,
        ..podid_runtime::admin::admin_limits()
    })
}

async fn start(limits: Limits) -> (SocketAddr, Arc<Server>) {
    let answer = |r: &podid_runtime::admin::AdminRequest<'_>| -> Answer {
        match r.path {
            "/healthz" => (200, TEXT, "ok".into()),
            _ => not_found(),
        }
    };
    spawn_with_limits(SocketAddr::from(([127, 0, 0, 1], 0)), limits, answer)
        .await
        .expect("admin server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_requests_are_dropped_while_probes_are_answered() {
    let (addr, server) = start(limits()).await;
    let probe = Probe::new(addr, testkit::get("/healthz", "Connection: close\r\n"));
    let run = testkit::slow_loris(&[None], 200, HEADER + SLACK, probe).await;
    assert_eq!(run.closed, 200);
    assert!(run.elapsed >= HEADER);
    let (ok, sent) = (run.answered, run.sent);
    assert!(sent >= 3 && ok == sent, "probes answered {ok} of {sent}");
    assert_eq!(server.stats().snapshot().header_timeouts, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_is_closed_and_big_heads_get_431() {
    let (addr, server) = start(limits()).await;
    let mut s = testkit::connect(addr, None).await.expect("connect");
    testkit::get_ok(&mut s, "/healthz", "").await;
    let t = Instant::now();
    assert!(testkit::closed_within(&mut s, IDLE + SLACK).await);
    assert!(
        t.elapsed() >= IDLE - Duration::from_millis(50),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(server.stats().snapshot().idle_timeouts, 1);
    let big = testkit::oversized("");
    let code = testkit::request(
        addr,
        None,
        &testkit::get("/healthz", &big),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(code, Some(431));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_per_address_cap_is_closed_and_counted() {
    // Long timeouts: the held connections must outlive the test's own steps.
    let (addr, server) = start(Limits {
        max_connections_per_ip: 16,
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let (mut held, refused) = testkit::flood(addr, None, 16, 24).await;
    assert_eq!(refused, 24);
    assert_eq!(server.stats().snapshot().refused_per_ip_cap, 24);
    testkit::get_ok(&mut held[3], "/healthz", "").await;
}
