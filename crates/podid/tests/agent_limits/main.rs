//! The agent's token server is bounded (podid-serve): the real `podid agent` process, with short limits set by
//! flags, against slow and flooding clients over loopback. Half-sent requests from several pod addresses are
//! dropped within the header-read timeout while other pods keep being answered; an idle keep-alive connection
//! closes after the idle timeout; one pod address over the default per-pod cap (64) has its excess connections
//! closed at once while other pods are served; everything is counted in the agent's /metrics.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use podid_serve::testkit::{self, HEADER_TIMEOUT as HEADER, IDLE_TIMEOUT as IDLE, Probe};
use podid_testkit::agent::{start_agent, start_env};
use podid_testkit::{Backend, http};

/// More than the test kit's slack: the agent is a child process.
const SLACK: Duration = Duration::from_secs(3);

podid_testkit::both_backends!(slow_idle_and_flooding_clients_are_dropped_while_pods_are_answered);

/// An address in the agent's pod CIDR (127.20.0.0/24, loopback).
fn pod_addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 20, 0, last))
}

fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn slow_idle_and_flooding_clients_are_dropped_while_pods_are_answered(backend: Backend) {
    let env = start_env(backend).await;
    let agent = start_agent(
        &env,
        &["--header-read-timeout-sec=1", "--idle-timeout-sec=2"],
    )
    .await;
    let to = agent.addr;
    // Any answer counts (no pod owns this address, so the agent refuses it), as long as one comes.
    let ask = testkit::get(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
        "Metadata: true\r\nConnection: close\r\n",
    );
    let baseline = testkit::request(to, Some(pod_addr(100)), &ask, Duration::from_secs(10)).await;
    assert!(baseline.is_some(), "the agent answers a pod");

    // (a) 300 half-sent requests from 10 pod addresses (30 each, under the per-pod cap).
    let sources: Vec<_> = (0..10u8).map(|a| Some(pod_addr(200 + a))).collect();
    let probe = Probe::new(to, ask.clone()).from(pod_addr(101));
    let run = testkit::slow_loris(&sources, 30, HEADER + SLACK, probe).await;
    assert_eq!(run.closed, 300);
    assert!(run.elapsed >= HEADER);
    let (ok, sent) = (run.answered, run.sent);
    assert!(sent >= 3 && ok == sent, "answered {ok} of {sent} meanwhile");

    // (b) an idle keep-alive connection closes after the idle timeout, not the header one.
    let mut idle = testkit::connect(to, Some(pod_addr(102)))
        .await
        .expect("connect");
    let kept = testkit::get(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
        "Metadata: true\r\n",
    );
    assert!(
        testkit::exchange(&mut idle, &kept, Duration::from_secs(10))
            .await
            .is_some()
    );
    let idle_from = Instant::now();
    assert!(
        !testkit::closed_within(&mut idle, HEADER + Duration::from_millis(300)).await,
        "still open after the header-read timeout"
    );
    assert!(testkit::closed_within(&mut idle, IDLE + SLACK).await);
    assert!(idle_from.elapsed() >= IDLE - Duration::from_millis(50));

    // (c) one pod over the default per-pod cap: the excess is closed at once; other pods are served.
    let (held, refused) = testkit::flood(to, Some(pod_addr(250)), 64, 20).await;
    assert_eq!(refused, 20);
    assert!(
        testkit::request(to, Some(pod_addr(103)), &ask, Duration::from_secs(10))
            .await
            .is_some(),
        "another pod is served while one is at its cap"
    );
    // An oversized head gets 431.
    let big = testkit::oversized("Metadata: true\r\n");
    assert_eq!(
        testkit::request(
            to,
            Some(pod_addr(104)),
            &testkit::get("/metadata/instance", &big),
            Duration::from_secs(10)
        )
        .await,
        Some(431)
    );

    let (code, text) = http("GET", &agent.metrics, None).await;
    assert_eq!(code, 200);
    let refused = metric(
        &text,
        "podid_agent_server_connections_refused_count{cap=\"per_ip\"}",
    );
    assert_eq!(refused, Some(20), "{text}");
    let header = metric(
        &text,
        "podid_agent_server_connections_closed_count{reason=\"header_timeout\"}",
    );
    assert!(header.is_some_and(|n| n >= 300), "{text}");
    let idle_closed = metric(
        &text,
        "podid_agent_server_connections_closed_count{reason=\"idle_timeout\"}",
    );
    assert!(idle_closed.is_some_and(|n| n >= 1), "{text}");
    assert!(
        metric(&text, "podid_agent_server_connections_active").is_some(),
        "{text}"
    );
    drop(held);
}
