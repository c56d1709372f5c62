//! The noisy neighbour: one pod holds 2,000 keep-alive connections to 169.254.169.254 and asks for tokens on
//! all of them as fast as it can, while its neighbour asks for its own cached token, one new connection per
//! request (each one a fresh anti-spoofing check). The neighbour's p99 stays under 50 ms, the agent's threads
//! stay bounded and its RSS under 40 MB. Bounded in count (2,000 connections, 200 neighbour requests) and in
//! time (the load stops after the neighbour's requests or 20 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use podid_net::testbed::PodNet;

use crate::support::*;
use podid_testkit::tools::report;
use podid_testkit::*;

/// The metadata address as a socket address (no name resolution; the socket is made on a thread inside the noisy
/// pod's own network namespace, where the node's DNAT sends it to the agent).
const METADATA_ADDR: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(169, 254, 169, 254),
    80,
));
/// Connections the noisy pod opens.
const NOISY_CONNECTIONS: usize = 2_000;
/// Requests the neighbour sends (each on a new connection).
const NEIGHBOUR_REQUESTS: usize = 200;
/// Longest the load runs, whatever happens.
const LOAD_BOUND: Duration = Duration::from_secs(20);
/// The neighbour's p99 bound (the acceptance).
const NEIGHBOUR_P99_MS: u128 = 50;
/// The agent's RSS bound, bytes: anonymous memory (heap, stacks); the mapped binary's pages (`RssFile`) are
/// not the agent's use of memory and differ between debug and release builds.
const RSS_BOUND_BYTES: u64 = 40 * 1024 * 1024;
/// With the per-source cap raised so that all 2,000 connections stay open and busy (the CPU of both cores is
/// then spent on the noisy pod and its client), the neighbour's p99 bound: starved it was seconds per request.
const HELD_NEIGHBOUR_P99_MS: u128 = 250;
/// In that round, anonymous memory per open connection (hyper's read and write buffers, the connection task),
/// bytes.
const RSS_PER_HELD_CONNECTION_BYTES: u64 = 48 * 1024;
/// The agent's thread bound (tokio workers, the blocking pool's few threads, watches).
const THREADS_BOUND: u64 = 64;

/// (threads, anonymous RSS bytes) of a process, from /proc.
fn threads_and_rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("RssAnon:") * 1024)
}

/// One keep-alive connection asking for tokens until `stop`; counts answers. Reconnects (at most 3 times) when
/// the agent closes it (the per-source connection cap closes most of them at once).
async fn noisy_connection(
    path: String,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n\r\n");
    for _ in 0..3 {
        let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(METADATA_ADDR),
        )
        .await
        else {
            closed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if s.write_all(req.as_bytes()).await.is_err() {
                break;
            }
            // One response: headers, then Content-Length bytes.
            let mut have = Vec::new();
            let done = loop {
                let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await
                {
                    Ok(Ok(n)) if n > 0 => n,
                    _ => break false,
                };
                have.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&have);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break true;
                    }
                }
            };
            if !done {
                break;
            }
            answered.fetch_add(1, Ordering::Relaxed);
        }
        closed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

podid_testkit::both_backends!(sync: noisy_neighbour_keeps_the_node_fair);

fn noisy_neighbour_keeps_the_node_fair(backend: Backend) {
    const TEST: &str = "noisy_neighbour_keeps_the_node_fair";
    if !prerequisites(TEST) {
        return;
    }
    // Alone: the other tests of this binary would otherwise share the two cores with the measurement.
    in_node_alone(|node| async move {
        let env = start_env(backend).await;
        let mut ids = Vec::new();
        for (i, name) in IDENTITIES.iter().take(2).enumerate() {
            ids.push(create_identity(&env, name).await);
            env.binding("default", &format!("b-{i}"), name, &format!("sel-{i}"))
                .await;
        }
        let mut pods = Vec::new();
        for (p, name) in ["noisy", "neighbour"].iter().enumerate() {
            let ip = create_pod(&env, name, json!({"aadpodidbinding": format!("sel-{p}")})).await;
            create_assigned(&env, name, &ids[p]).await;
            pods.push(attach_pod(&node, ip).await);
        }
        // With the default per-source cap (most of the 2,000 connections are closed at accept), and with the cap
        // raised so that all 2,000 stay open (then the per-connection check and the bounded blocking work carry
        // it).
        for (tag, extra) in [
            ("default caps", None),
            ("per-IP cap 4096", Some("--max-connections-per-ip=4096")),
        ] {
            let mut flags: Vec<&str> = crate::SHORT_WAIT.to_vec();
            flags.extend(extra);
            let mut agent = start_agent(&env, &node, "fairness", &flags, None).await;
            wait_active(&agent).await;
            noisy_round(&pods, &agent, tag, extra.is_some()).await;
            agent.terminate().await;
        }
    });
}

/// One round: warm both caches, start the noisy pod, measure the neighbour and the agent, stop the noisy pod.
async fn noisy_round(pods: &[Arc<PodNet>], agent: &AgentProc, tag: &str, connections_held: bool) {
    let pid = agent.child.id().expect("agent pid");
    let path = token_path(None);
    // Warm both caches (one IMDS call each), so what is measured is the cached path.
    for pod in pods {
        let r = pod_get(pod, None, path.clone(), Duration::from_secs(5))
            .await
            .expect("warm-up");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let (threads_idle, rss_idle) = threads_and_rss(pid);

    // The noisy pod: 2,000 keep-alive connections from one thread in its namespace (a pod has CPU limits too;
    // one core of the two is its share).
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, answered, closed, path) =
            (stop.clone(), answered.clone(), closed.clone(), path.clone());
        let noisy = pods[0].clone();
        std::thread::spawn(move || {
            noisy.netns().run(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("noisy runtime");
                rt.block_on(async move {
                    let tasks: Vec<_> = (0..NOISY_CONNECTIONS)
                        .map(|_| {
                            tokio::spawn(noisy_connection(
                                path.clone(),
                                stop.clone(),
                                answered.clone(),
                                closed.clone(),
                            ))
                        })
                        .collect();
                    let _ = tokio::time::timeout(LOAD_BOUND + Duration::from_secs(15), async {
                        for t in tasks {
                            let _ = t.await;
                        }
                    })
                    .await;
                });
                rt.shutdown_timeout(Duration::from_secs(5));
            })
        })
    };
    // Let the noisy pod open its connections.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The neighbour: a new connection per request; sample the agent while it runs.
    let started = Instant::now();
    let mut took = Vec::new();
    let (mut max_threads, mut max_rss) = (0, 0);
    for _ in 0..NEIGHBOUR_REQUESTS {
        if started.elapsed() > LOAD_BOUND {
            break;
        }
        let r = pod_get(&pods[1], None, path.clone(), Duration::from_secs(5))
            .await
            .expect("neighbour request");
        assert_eq!(r.status, 200, "the neighbour is served: {}", r.body);
        took.push(r.took.as_millis());
        let (t, rss) = threads_and_rss(pid);
        max_threads = max_threads.max(t);
        max_rss = max_rss.max(rss);
    }
    stop.store(true, Ordering::Relaxed);
    let noisy_answered = answered.load(Ordering::Relaxed);
    tokio::task::spawn_blocking(move || load.join())
        .await
        .expect("join task")
        .expect("load thread")
        .expect("noisy pod namespace");
    took.sort_unstable();
    assert_eq!(took.len(), NEIGHBOUR_REQUESTS, "all neighbour requests ran");
    let p50 = took[took.len() / 2];
    let p99 = took[took.len() * 99 / 100];
    let metrics = http("GET", &agent.metrics, None).await.1;
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(-1.0)
    };
    report(&format!(
        "noisy neighbour ({tag}): neighbour p50 {p50} ms p99 {p99} ms over {} requests; noisy pod answered \
         {noisy_answered}, connections closed {}; agent threads {threads_idle} idle / {max_threads} max, anonymous \
         RSS {} MB idle / {} MB max; peer checks {} (reused {}), per-IP refusals {}",
        took.len(),
        closed.load(Ordering::Relaxed),
        rss_idle / 1_048_576,
        max_rss / 1_048_576,
        metric("podid_agent_peer_checks_count "),
        metric("podid_agent_peer_checks_reused_count "),
        metric("podid_agent_server_connections_refused_count{cap=\"per_ip\"} "),
    ));
    let p99_bound = if connections_held {
        HELD_NEIGHBOUR_P99_MS
    } else {
        NEIGHBOUR_P99_MS
    };
    assert!(
        p99 < p99_bound,
        "{tag}: neighbour p99 {p99} ms (p50 {p50} ms)"
    );
    assert!(
        max_threads <= THREADS_BOUND,
        "{tag}: agent threads {max_threads}"
    );
    if connections_held {
        // All 2,000 connections open: memory is hyper's buffers per connection, bounded and flat in requests.
        let per_connection = max_rss.saturating_sub(rss_idle) / NOISY_CONNECTIONS as u64;
        assert!(
            per_connection < RSS_PER_HELD_CONNECTION_BYTES,
            "{tag}: {per_connection} bytes per connection"
        );
    } else {
        assert!(
            max_rss < RSS_BOUND_BYTES,
            "{tag}: agent RSS {max_rss} bytes"
        );
    }
    assert!(
        noisy_answered > 0,
        "{tag}: the noisy pod is served too, within its share"
    );
}
