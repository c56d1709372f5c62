//! azure-sim's bounded listeners (podid-serve) against slow and flooding clients over loopback: half-sent
//! requests are dropped within the header-read timeout while other calls are answered, idle keep-alive
//! connections close, the connection caps hold for the simulator as a whole (every listener shares them) and
//! refusals are counted (control `GET /metrics`), oversized heads get 431, stalled bodies 408.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use podid_serve::testkit::{self, HEADER_TIMEOUT as HEADER, IDLE_TIMEOUT as IDLE, Probe, SLACK};
use podid_serve::{Limits, StatsSnapshot};

fn limits() -> Limits {
    Limits {
        body_read_timeout: Duration::from_secs(1),
        ..testkit::limits()
    }
}

async fn start(limits: Limits) -> common::TestSim {
    common::start_with(common::base_world(), |c| c.limits = limits).await
}

fn addr_of(url: &str) -> SocketAddr {
    let hostport = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    hostport.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn control(sim: &common::TestSim) -> SocketAddr {
    addr_of(&sim.handle.control_url)
}

fn imds(sim: &common::TestSim) -> SocketAddr {
    let e = sim.handle.endpoints();
    addr_of(e.imds.values().next().expect("a node's IMDS"))
}

fn stats(sim: &common::TestSim) -> StatsSnapshot {
    sim.handle.sim.server.stats().snapshot()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_requests_are_dropped_while_other_calls_are_answered() {
    let sim = start(limits()).await;
    let probe = Probe::new(
        imds(&sim),
        testkit::get(
            "/metadata/instance?api-version=2021-02-01",
            "Metadata: true\r\nConnection: close\r\n",
        ),
    );
    let run = testkit::slow_loris(&[None], 300, HEADER + SLACK, probe).await;
    assert_eq!(run.closed, 300);
    assert!(run.elapsed >= HEADER);
    let (ok, sent) = (run.answered, run.sent);
    assert!(sent >= 3 && ok == sent, "answered {ok} of {sent}");
    assert_eq!(stats(&sim).header_timeouts, 300);
    let mut s = testkit::connect(control(&sim), None)
        .await
        .expect("connect");
    let text = testkit::get_ok(&mut s, "/metrics", "").await;
    assert!(
        text.contains("azure_sim_server_connections_closed_count{reason=\"header_timeout\"} 300"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_closes_after_the_idle_timeout() {
    let sim = start(limits()).await;
    let mut s = testkit::connect(control(&sim), None)
        .await
        .expect("connect");
    testkit::get_ok(&mut s, "/healthz", "").await;
    let t = Instant::now();
    assert!(
        !testkit::closed_within(&mut s, HEADER + Duration::from_millis(300)).await,
        "idle time is not header time"
    );
    assert!(testkit::closed_within(&mut s, IDLE + SLACK).await);
    assert!(t.elapsed() >= IDLE - Duration::from_millis(50));
    let st = stats(&sim);
    assert_eq!((st.idle_timeouts, st.header_timeouts), (1, 0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_spans_every_listener_and_refusals_are_counted() {
    let sim = start(Limits {
        max_connections_per_ip: 20,
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let mut held = testkit::stall(control(&sim), None, 10, b"").await;
    held.extend(testkit::stall(imds(&sim), None, 10, b"").await);
    let entra = addr_of(&sim.handle.entra_url);
    let excess = testkit::stall(entra, None, 15, b"").await;
    assert_eq!(
        testkit::count_closed(excess, Duration::from_millis(500)).await,
        15
    );
    let st = stats(&sim);
    assert_eq!((st.refused_per_ip_cap, st.active), (15, 20), "{st:?}");
    let text = testkit::get_ok(&mut held[0], "/metrics", "").await;
    assert!(
        text.contains("azure_sim_server_connections_refused_count{cap=\"per_ip\"} 15"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_heads_get_431_and_stalled_bodies_408() {
    let sim = start(limits()).await;
    let big = testkit::oversized("");
    assert_eq!(
        testkit::request(
            control(&sim),
            None,
            &testkit::get("/healthz", &big),
            Duration::from_secs(5)
        )
        .await,
        Some(431)
    );
    let stalled = testkit::stalled_body("PUT", "/settings", "", "{\"a\":");
    let t = Instant::now();
    assert_eq!(
        testkit::request(control(&sim), None, &stalled, Duration::from_secs(5)).await,
        Some(408)
    );
    assert!(t.elapsed() >= Duration::from_millis(900));
    assert_eq!(stats(&sim).body_timeouts, 1);
}
