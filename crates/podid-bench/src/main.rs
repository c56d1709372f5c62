//! `podid-bench`: measured figures for podid's components, printed against their targets.
//!
//! Every load loop here is bounded in count and time and talks only to servers this process starts on loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(name = "podid-bench", about = "Benchmarks with figures and targets")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// The Kubernetes API simulator.
    KubeSim {
        /// Pods to store.
        #[arg(long, default_value_t = 10_000)]
        pods: usize,
        /// Nodes they are spread over.
        #[arg(long, default_value_t = 500)]
        nodes: usize,
        /// Concurrent client connections for creates.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Watchers for the fan-out figure.
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        /// Use HTTPS (as clients do) instead of plain HTTP.
        #[arg(long)]
        tls: bool,
    },
}

/// Hard limit on any single benchmark phase, so a regression cannot hang CI or a laptop.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.what {
        What::KubeSim {
            pods,
            nodes,
            concurrency,
            watchers,
            tls,
        } => rt.block_on(kube_sim_bench(pods, nodes, concurrency, watchers, tls)),
    }
}

/// A keep-alive HTTP/1.1 connection (plain or TLS) to the simulator.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    token: String,
    host: String,
}

async fn connect(
    addr: SocketAddr,
    token: &str,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> anyhow::Result<Conn> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let sender = match tls {
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?.to_owned();
            let stream = tokio_rustls_connect(cfg, name, tcp).await?;
            let (s, c) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = c.await;
            });
            s
        }
        None => {
            let (s, c) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                let _ = c.await;
            });
            s
        }
    };
    Ok(Conn {
        sender,
        token: token.to_string(),
        host: addr.to_string(),
    })
}

async fn tokio_rustls_connect(
    cfg: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
    tcp: tokio::net::TcpStream,
) -> anyhow::Result<kube_sim::tls::ClientTlsStream> {
    kube_sim::tls::connect(cfg, name, tcp).await
}

impl Conn {
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

fn pod_json(i: usize, nodes: usize) -> Vec<u8> {
    let body = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "namespace": "default", "labels": {"app": format!("app-{}", i % 50), "aadpodidbinding": "demo"}},
        "spec": {"nodeName": format!("node-{:03}", i % nodes), "automountServiceAccountToken": false,
                 "containers": [{"name": "app", "image": "mcr.microsoft.com/oss/azure/aad-pod-identity/demo:v1.8.17",
                                 "env": [{"name": "MY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn report(name: &str, value: f64, unit: &str, target: &str, ok: bool) {
    println!(
        "{name:<48} {value:>10.2} {unit:<8} target {target:<10} {}",
        if ok { "ok" } else { "MISSED" }
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn kube_sim_bench(
    pods: usize,
    nodes: usize,
    concurrency: usize,
    watchers: usize,
    tls: bool,
) -> anyhow::Result<()> {
    let rss_before = rss_mb();
    let handle = kube_sim::start(kube_sim::Config {
        tls,
        watch_cache_size: 20_000,
        ..Default::default()
    })
    .await?;
    let addr = handle.addr;
    let token = handle.admin_token.clone();
    let client_tls = match &handle.ca_pem {
        Some(ca) => Some(kube_sim::tls::client_config(ca.as_bytes())?),
        None => None,
    };
    println!(
        "kube-sim benchmark: {pods} pods over {nodes} nodes, {} on {addr}",
        if tls { "HTTPS" } else { "HTTP" }
    );

    let mut c = connect(addr, &token, client_tls.clone()).await?;
    for n in 0..nodes {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{n:03}")}});
        c.send("POST", "/api/v1/nodes", Some(serde_json::to_vec(&node)?))
            .await?;
    }

    // Creates: `concurrency` keep-alive connections share the pod indices.
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let token = token.clone();
        let tls = client_tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(addr, &token, tls).await?;
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= pods {
                    return Ok::<usize, anyhow::Error>(failures);
                }
                let (code, _) = conn
                    .send(
                        "POST",
                        "/api/v1/namespaces/default/pods",
                        Some(pod_json(i, nodes)),
                    )
                    .await?;
                if code != 201 {
                    failures += 1;
                }
            }
        }));
    }
    let mut failures = 0;
    for t in tasks {
        failures += tokio::time::timeout(PHASE_LIMIT, t)
            .await
            .context("create phase timed out")???;
    }
    let create_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(failures == 0, "{failures} pod creates failed");
    let rate = pods as f64 / create_secs;
    report(
        "pod creates/s (HTTP POST, keep-alive)",
        rate,
        "1/s",
        ">= 5000",
        rate >= 5000.0,
    );

    // List all pods (full JSON over the wire), best of several runs after a warm-up.
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..8 {
        let t = Instant::now();
        let (code, body) = c.send("GET", "/api/v1/pods", None).await?;
        anyhow::ensure!(code == 200, "list failed: {code}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = body.len();
    }
    times.sort_by(f64::total_cmp);
    let p50 = percentile(&times, 0.5);
    report(
        &format!("list all {pods} pods ({:.1} MB), p50", bytes as f64 / 1e6),
        p50,
        "ms",
        "< 150",
        p50 < 150.0,
    );

    // One node's pods by field selector.
    let mut times = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        let (code, body) = c
            .send(
                "GET",
                &format!(
                    "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-{:03}",
                    i % nodes
                ),
                None,
            )
            .await?;
        anyhow::ensure!(
            code == 200 && !body.is_empty(),
            "field-selected list failed"
        );
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let p50 = percentile(&times, 0.5);
    report(
        &format!("list one node's pods ({} pods), p50", pods / nodes),
        p50,
        "ms",
        "< 5",
        p50 < 5.0,
    );
    report(
        "list one node's pods, p99",
        percentile(&times, 0.99),
        "ms",
        "-",
        true,
    );

    // Fan-out: `watchers` streaming watches, then one change at a time; time until every watcher has it.
    let (_, list_body) = c
        .send("GET", "/api/v1/namespaces/default/configmaps", None)
        .await?;
    let rv =
        serde_json::from_slice::<serde_json::Value>(&list_body)?["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    let mut watch_tasks = Vec::new();
    for w in 0..watchers {
        let tx = tx.clone();
        let token = token.clone();
        let tls = client_tls.clone();
        let rv = rv.clone();
        watch_tasks.push(tokio::spawn(async move {
            let mut conn = connect(addr, &token, tls).await?;
            let req = http::Request::builder()
                .uri(format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=120"))
                .header("host", &conn.host)
                .header("authorization", format!("Bearer {}", conn.token))
                .body(Full::new(Bytes::new()))?;
            conn.sender.ready().await?;
            let resp = conn.sender.send_request(req).await?;
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame?;
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let v: serde_json::Value = serde_json::from_slice(&line)?;
                        let name = v["object"]["metadata"]["name"].as_str().unwrap_or("").to_string();
                        let _ = tx.send((w, name, Instant::now()));
                    }
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fanout = Vec::new();
    for round in 0..20 {
        let name = format!("fanout-{round}");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}});
        let t = Instant::now();
        let (code, _) = c
            .send(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                Some(serde_json::to_vec(&cm)?),
            )
            .await?;
        anyhow::ensure!(code == 201, "configmap create failed");
        let mut seen = std::collections::HashSet::new();
        let mut last = t;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.len() < watchers {
            let got = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .context("fan-out timed out")?;
            let Some((w, n, at)) = got else {
                anyhow::bail!("watchers ended early")
            };
            if n == name && seen.insert(w) {
                last = last.max(at);
            }
        }
        fanout.push((last - t).as_secs_f64() * 1000.0);
    }
    for t in watch_tasks {
        t.abort();
    }
    fanout.sort_by(f64::total_cmp);
    let p50 = percentile(&fanout, 0.5);
    report(
        &format!("one change to {watchers} watchers (write->last), p50"),
        p50,
        "ms",
        "< 50",
        p50 < 50.0,
    );
    report(
        &format!("one change to {watchers} watchers, max of 20"),
        fanout.last().copied().unwrap_or(f64::NAN),
        "ms",
        "-",
        true,
    );

    let rss = rss_mb();
    report(
        &format!("process RSS with {pods} pods (server + bench client)"),
        rss,
        "MB",
        "< 200",
        rss < 200.0,
    );
    println!("(RSS before start: {rss_before:.1} MB)");
    handle.shutdown().await;
    Ok(())
}
