//! kube-sim's bounded server (podid-serve) against slow and flooding clients over loopback: half-sent requests
//! are dropped within the header-read timeout while API calls keep being answered, idle keep-alive connections
//! close while a quiet watch does not, floods over the per-address cap are closed and counted (`/metrics`),
//! oversized heads get 431, a stalled body gets 408, a TLS handshake that never starts is cut.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use podid_serve::testkit::{self, HEADER_TIMEOUT as HEADER, IDLE_TIMEOUT as IDLE, Probe, SLACK};
use podid_serve::{Limits, StatsSnapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn limits() -> Limits {
    Limits {
        body_read_timeout: Duration::from_secs(1),
        tls_handshake_timeout: Duration::from_secs(1),
        ..testkit::limits()
    }
}

async fn start(limits: Limits, tls: bool) -> common::Sim {
    common::start_with(kube_sim::Config {
        tls,
        limits,
        ..kube_sim::Config::default()
    })
    .await
}

fn auth(sim: &common::Sim) -> String {
    format!("Authorization: Bearer {}\r\n", sim.handle.admin_token)
}

fn stats(sim: &common::Sim) -> StatsSnapshot {
    sim.handle.sim.server.stats().snapshot()
}

/// `/metrics` as the admin reads it.
async fn metrics(sim: &common::Sim, addr: SocketAddr) -> String {
    let mut s = testkit::connect(addr, None).await.expect("connect");
    testkit::get_ok(&mut s, "/metrics", &auth(sim)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_requests_are_dropped_while_api_calls_are_answered() {
    let sim = start(limits(), false).await;
    let addr = sim.handle.addr;
    let probe = Probe::new(
        addr,
        testkit::get(
            "/api/v1/namespaces",
            &format!("{}Connection: close\r\n", auth(&sim)),
        ),
    );
    let run = testkit::slow_loris(&[None], 300, HEADER + SLACK, probe).await;
    assert_eq!(run.closed, 300);
    assert!(run.elapsed >= HEADER);
    let (ok, sent) = (run.answered, run.sent);
    assert!(sent >= 3 && ok == sent, "answered {ok} of {sent}");
    assert_eq!(stats(&sim).header_timeouts, 300);
    let text = metrics(&sim, addr).await;
    assert!(
        text.contains("kube_sim_server_connections_closed_count{reason=\"header_timeout\"} 300"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_closes_but_a_quiet_watch_is_not_cut() {
    let sim = start(limits(), false).await;
    let addr = sim.handle.addr;
    // A watch with no events for longer than both timeouts, then one event: it must still be delivered.
    let mut watch = testkit::connect(addr, None).await.expect("connect");
    let req = testkit::get("/api/v1/namespaces?watch=1&resourceVersion=0", &auth(&sim));
    watch
        .write_all(req.as_bytes())
        .await
        .expect("watch request");
    let mut idle = testkit::connect(addr, None).await.expect("connect");
    testkit::get_ok(&mut idle, "/version", &auth(&sim)).await;
    let t = Instant::now();
    assert!(
        testkit::closed_within(&mut idle, IDLE + SLACK).await,
        "idle keep-alive closed"
    );
    assert!(t.elapsed() >= IDLE - Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ns = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"late-event"}}"#;
    let create = format!(
        "POST /api/v1/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ns}",
        auth(&sim),
        ns.len()
    );
    assert_eq!(
        testkit::request(addr, None, &create, Duration::from_secs(5)).await,
        Some(201)
    );
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 16 * 1024];
    while !String::from_utf8_lossy(&seen).contains("late-event") {
        match tokio::time::timeout_at(deadline, watch.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            other => panic!(
                "the watch ended or stalled ({other:?}) after {:?}: {}",
                t.elapsed(),
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    let st = stats(&sim);
    assert_eq!((st.idle_timeouts, st.header_timeouts), (1, 0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_per_address_cap_is_closed_and_counted() {
    let sim = start(
        Limits {
            max_connections_per_ip: 20,
            header_read_timeout: Duration::from_secs(30),
            ..limits()
        },
        false,
    )
    .await;
    let addr = sim.handle.addr;
    let (mut held, refused) = testkit::flood(addr, None, 20, 30).await;
    assert_eq!(refused, 30);
    assert_eq!(stats(&sim).refused_per_ip_cap, 30);
    // A connection within the cap reads the counters.
    let text = testkit::get_ok(&mut held[0], "/metrics", &auth(&sim)).await;
    assert!(
        text.contains("kube_sim_server_connections_refused_count{cap=\"per_ip\"} 30"),
        "{text}"
    );
    assert!(
        text.contains("kube_sim_server_connections_active 20"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_heads_get_431_stalled_bodies_408_and_silent_tls_clients_are_cut() {
    let sim = start(limits(), false).await;
    let addr = sim.handle.addr;
    let big = testkit::oversized(&auth(&sim));
    assert_eq!(
        testkit::request(
            addr,
            None,
            &testkit::get("/version", &big),
            Duration::from_secs(5)
        )
        .await,
        Some(431)
    );
    let stalled = testkit::stalled_body("POST", "/api/v1/namespaces", &auth(&sim), "{\"kind\":");
    let t = Instant::now();
    assert_eq!(
        testkit::request(addr, None, &stalled, Duration::from_secs(5)).await,
        Some(408)
    );
    assert!(t.elapsed() >= Duration::from_millis(900));
    assert_eq!(stats(&sim).body_timeouts, 1);

    let tls = start(limits(), true).await;
    let silent = testkit::stall(tls.handle.addr, None, 20, b"").await;
    assert_eq!(
        // Twice the slack: twenty handshakes time out together, on a machine whose two cores may be busy.
        testkit::count_closed(silent, Duration::from_secs(1) + 2 * SLACK).await,
        20
    );
    assert_eq!(stats(&tls).tls_failures, 20);
}
