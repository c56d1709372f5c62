//! `podid-bench`: measured figures for podid's components, printed against their targets.
//!
//! Every load loop here is bounded in count and time and talks only to servers this process starts on loopback.

mod agent;
mod controller;
mod up;

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
    /// The Azure identity simulator: IMDS token requests and Entra client_credentials.
    AzureSim {
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Seconds each measurement runs.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// The pod-identity controller: planner timings, then the real `podid controller` process (built next to
    /// this binary) against kube-sim and azure-sim.
    Controller {
        /// Simulated scale-set PATCH duration for the batching figure, seconds.
        #[arg(long, default_value_t = 40)]
        patch_seconds: u64,
        /// Pods for the large-cluster figures.
        #[arg(long, default_value_t = 10_000)]
        pods: usize,
        /// Idle window for the ARM-call count, seconds.
        #[arg(long, default_value_t = 12)]
        idle_seconds: u64,
        /// The Kubernetes API of the large-cluster figures: `sim` (kube-sim) or `real` (etcd + kube-apiserver +
        /// kube-controller-manager from $PODID_KUBE_BIN, scripts/ensure-kube.sh).
        #[arg(long, default_value = "sim")]
        kube: String,
        /// Only the large-cluster figures (skip the planner and the 40-pod batching runs).
        #[arg(long)]
        large_only: bool,
    },
    /// The playground: `podid up --demo --exit` start-to-ready and pod-creation-to-first-token times.
    Up {
        /// Runs.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The node agent: the real `podid agent` process (built next to this binary) answering pods' cached
    /// token requests over loopback, against kube-sim and azure-sim; compared with a bare hyper server.
    Agent {
        /// Pods on the agent's node.
        #[arg(long, default_value_t = 110)]
        node_pods: usize,
        /// Pods on other nodes (the rest of the cluster).
        #[arg(long, default_value_t = 10_000)]
        other_pods: usize,
        /// Keep-alive connections of the load generator.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Warm-up before each throughput measurement, seconds.
        #[arg(long, default_value_t = 5)]
        warmup_seconds: u64,
        /// Measured window of each load run, seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Offered rate of the latency run, requests/s.
        #[arg(long, default_value_t = 20_000)]
        paced_rate: u64,
        /// Concurrent identical requests in the one-call-per-miss test.
        #[arg(long, default_value_t = 64)]
        miss_requests: usize,
    },
    /// (internal) The bare hyper server `agent` compares with.
    #[command(hide = true)]
    AgentHello,
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
        What::AzureSim {
            concurrency,
            seconds,
        } => rt.block_on(azure_sim_bench(
            concurrency,
            Duration::from_secs(seconds.clamp(1, 60)),
        )),
        What::Controller {
            patch_seconds,
            pods,
            idle_seconds,
            kube,
            large_only,
        } => {
            let backend = match kube.as_str() {
                "sim" => podid_testkit::Backend::Sim,
                "real" => podid_testkit::Backend::Real,
                other => anyhow::bail!("--kube must be sim or real, not {other}"),
            };
            if !large_only {
                controller::planner();
            }
            rt.block_on(async {
                if !large_only {
                    controller::forty_pods(0).await?;
                    controller::forty_pods(patch_seconds.min(120) * 1000).await?;
                }
                controller::large(pods.min(20_000), idle_seconds.clamp(2, 60), backend).await
            })
        }
        What::Agent {
            node_pods,
            other_pods,
            connections,
            warmup_seconds,
            seconds,
            paced_rate,
            miss_requests,
        } => rt.block_on(agent::run(agent::Options {
            node_pods,
            other_pods,
            connections,
            warmup: Duration::from_secs(warmup_seconds.min(60)),
            measure: Duration::from_secs(seconds.clamp(1, 60)),
            paced_rate,
            miss_requests,
        })),
        What::Up { runs } => rt.block_on(up::run(runs)),
        What::AgentHello => {
            drop(rt);
            agent::hello_server()
        }
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
    async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.sender.ready().await?;
        let resp = self
            .sender
            .send_request(req.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.into_body().collect().await?.to_bytes()))
    }

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
    rss_mb_of("self")
}

/// VmRSS of a process (`self` or a pid), MB.
fn rss_mb_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
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

const BENCH_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const BENCH_IDENTITY_CLIENT_ID: &str = "6f9ef2a4-1c3e-4b4f-9e34-6e2d1c1e0b01";
const BENCH_APP_ID: &str = "8a3c1e2b-5d4f-4a7b-9c1d-2e3f4a5b6c7d";

fn bench_world() -> String {
    format!(
        r#"tenants: [{{id: {BENCH_TENANT}}}]
subscriptions: [{{id: 0b1f6471-1bf0-4dda-aec3-111122223333}}]
resourceGroups: [{{name: rg-nodes}}, {{name: rg-ids}}]
userAssignedIdentities:
  - {{name: id-bench, resourceGroup: rg-ids, clientId: {BENCH_IDENTITY_CLIENT_ID}}}
virtualMachineScaleSets:
  - name: pool-vmss
    resourceGroup: rg-nodes
    identity: {{userAssignedIdentities: [id-bench]}}
    instances: [{{}}]
applications:
  - {{displayName: bench-app, appId: {BENCH_APP_ID}, secrets: [{{value: bench-secret}}]}}
"#
    )
}

/// Run `concurrency` workers for `dur`, each sending `make()`-built requests; returns (requests/s, p50 ms, p99 ms).
async fn load<F>(
    addr: SocketAddr,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    concurrency: usize,
    dur: Duration,
    make: F,
) -> anyhow::Result<(f64, f64, f64)>
where
    F: Fn() -> (&'static str, String, Vec<(&'static str, String)>, Vec<u8>) + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let make = make.clone();
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(addr, "", tls).await?;
            let mut lat = Vec::new();
            while started.elapsed() < dur {
                let (method, path, headers, body) = make();
                let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let t = Instant::now();
                let (code, _) = conn.send_with(method, &path, &hs, body).await?;
                anyhow::ensure!(code == 200, "unexpected status {code}");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<Vec<f64>, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(
            tokio::time::timeout(dur + PHASE_LIMIT, t)
                .await
                .context("load phase timed out")???,
        );
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok((
        all.len() as f64 / secs,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    ))
}

async fn azure_sim_bench(concurrency: usize, dur: Duration) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("podid-bench-azure-{}", std::process::id()));
    let cwd = std::env::current_dir()?;
    let config = azure_sim::Config::from_text(&bench_world(), &cwd)?;
    let mut config = config;
    config.apply(
        azure_sim::config::SimSection {
            dir: Some(dir.clone()),
            ..Default::default()
        },
        &cwd,
    )?;
    let handle = azure_sim::start(config).await?;
    let endpoints = handle.endpoints();
    let imds = endpoints
        .imds
        .values()
        .next()
        .context("an IMDS endpoint")?
        .clone();
    let imds_addr: SocketAddr = imds
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()?;
    let entra_addr: SocketAddr = endpoints
        .entra
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()?;
    let tls = Some(kube_sim::tls::client_config(handle.ca_pem.as_bytes())?);
    println!(
        "azure-sim benchmark: {concurrency} keep-alive connections, {}s per figure, loopback",
        dur.as_secs()
    );

    let (rps, p50, p99) = load(imds_addr, None, concurrency, dur, || {
        (
            "GET",
            format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id={BENCH_IDENTITY_CLIENT_ID}"),
            vec![("metadata", "true".to_string())],
            Vec::new(),
        )
    })
    .await?;
    report(
        "IMDS token requests/s",
        rps,
        "1/s",
        ">= 20000",
        rps >= 20_000.0,
    );
    report("IMDS token request p50", p50, "ms", "-", true);
    report("IMDS token request p99", p99, "ms", "< 2", p99 < 2.0);

    let (rps, p50, p99) = load(entra_addr, tls, concurrency, dur, || {
        let body = format!(
            "grant_type=client_credentials&client_id={BENCH_APP_ID}&client_secret=bench-secret&scope=https%3A%2F%2Fvault.azure.net%2F.default"
        );
        (
            "POST",
            format!("/{BENCH_TENANT}/oauth2/v2.0/token"),
            vec![("content-type", "application/x-www-form-urlencoded".to_string())],
            body.into_bytes(),
        )
    })
    .await?;
    report(
        "Entra client_credentials/s (HTTPS)",
        rps,
        "1/s",
        ">= 5000",
        rps >= 5_000.0,
    );
    report("Entra client_credentials p50", p50, "ms", "-", true);
    report("Entra client_credentials p99", p99, "ms", "< 2", p99 < 2.0);
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
