//! Cost of a cached hit, the node agent's hot path (pod tokens) and the controller's (its ARM token): a
//! tiny loopback IMDS stand-in answers the one fetch, then N cached hits are timed and must all be served
//! without another upstream call. The test command runs it with N = 10,000 (a correctness check; its timing
//! is printed, not asserted); for figures run it in release mode with a larger N:
//! `CACHE_HITS=1000000 cargo test --release -p podid-azure --test cache_hits -- --nocapture`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use podid_azure::pod_tokens::{BoxFuture, Material, PodTokenOptions, PodTokenProvider, TokenSpec};
use podid_azure::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ARM: &str = "https://management.azure.com/";

/// Answers every request on a fresh connection with a one-hour token.
async fn imds() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await;
                let body = r#"{"access_token":"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJhcm0ifQ.c2ln","expires_in":"3599","resource":"https://management.azure.com/","token_type":"Bearer","client_id":"6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

struct NoMaterial;

impl Material for NoMaterial {
    fn secret<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Vec<u8>>, String>> {
        Box::pin(async { Err("none".to_string()) })
    }

    fn service_account_token<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async { Err("none".to_string()) })
    }
}

fn n() -> u64 {
    std::env::var("CACHE_HITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn report(what: &str, n: u64, started: Instant) {
    let el = started.elapsed();
    println!(
        "{what}: {n} cached hits in {:.3} s = {:.0} ns/hit ({:.2} M hits/s)",
        el.as_secs_f64(),
        el.as_nanos() as f64 / n as f64,
        n as f64 / el.as_secs_f64() / 1e6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_hits() {
    let base = imds().await;
    let http = http::HttpClient::new(http::HttpOptions::default()).expect("http");
    let n = n();

    // Pod tokens: a user-assigned identity by client ID (the agent's common case).
    let p = PodTokenProvider::new(
        http.clone(),
        &Environment::public(),
        &base,
        PodTokenOptions::default(),
    );
    let spec = TokenSpec::Imds {
        client_id: Some("6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D".into()),
        resource_id: None,
    };
    let material: Arc<dyn Material> = Arc::new(NoMaterial);
    let first = p.get(&spec, ARM, material.clone()).await.expect("fetch");
    let started = Instant::now();
    for _ in 0..n {
        let t = p.get(&spec, ARM, material.clone()).await.expect("hit");
        assert_eq!(t.len(), first.len());
    }
    report("pod token (IMDS spec), 1 task", n, started);

    let started = Instant::now();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            let spec = spec.clone();
            let material = material.clone();
            tokio::spawn(async move {
                for _ in 0..n / 2 {
                    p.get(&spec, ARM, material.clone()).await.expect("hit");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join");
    }
    report("pod token (IMDS spec), 2 tasks", n, started);
    let s = p.stats();
    assert_eq!(s.upstream_calls, 1, "{s:?}");

    // The controller's own token through managed identity.
    let cfg = CloudConfig {
        use_managed_identity_extension: true,
        ..CloudConfig::default()
    };
    let ts = TokenSource::new(&cfg, &Environment::public(), http, &base).expect("source");
    let first = ts.token().await.expect("fetch");
    let started = Instant::now();
    for _ in 0..n {
        assert_eq!(
            ts.token().await.expect("hit").expires_at(),
            first.expires_at()
        );
    }
    report("controller ARM token, 1 task", n, started);
    assert_eq!(ts.fetches(), 1);
}
