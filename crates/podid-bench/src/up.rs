//! `podid-bench up`: the playground's start-to-ready time and the demo pod's creation-to-first-token time, over
//! several runs of the real `podid up --demo --exit` (built next to this binary). Needs root for network namespaces
//! (otherwise `podid up` runs in loopback mode, and the figures say so).

use std::time::{Duration, Instant};

use anyhow::Context;

/// One run may take this long at most.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs `podid up --demo --exit` `runs` times and prints the figures.
pub async fn run(runs: usize) -> anyhow::Result<()> {
    let podid = crate::controller::podid_binary()?;
    let mut ready = Vec::new();
    let mut first_token = Vec::new();
    let mut total = Vec::new();
    let mut mode = String::new();
    for i in 0..runs.clamp(1, 20) {
        let dir = tempfile::tempdir()?;
        let start = Instant::now();
        let out = tokio::time::timeout(
            RUN_LIMIT,
            tokio::process::Command::new(&podid)
                .args([
                    "--log-level",
                    "warn",
                    "up",
                    "--demo",
                    "--exit",
                    "--kube-port",
                    "0",
                ])
                .arg("--dir")
                .arg(dir.path())
                .output(),
        )
        .await
        .context("podid up --demo --exit took too long")??;
        let wall = start.elapsed();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(out.status.success(), "run {i} failed:\n{text}");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("podid up: ready in ") {
                let mut w = rest.split_whitespace();
                ready.push(w.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                mode = rest
                    .split_once('(')
                    .map(|x| x.1.trim_end_matches(')'))
                    .unwrap_or("")
                    .to_string();
            }
            if let Some(rest) = line
                .trim()
                .strip_prefix("pod creation to its first token: ")
            {
                first_token.push(rest.trim_end_matches(" ms").parse().unwrap_or(0));
            }
        }
        total.push(wall.as_millis() as u64);
    }
    println!("podid up --demo --exit, {} runs ({mode})", total.len());
    println!(
        "  start to ready          median {} ms  (min {} / max {})   target < 3000 ms",
        median(ready.clone()),
        ready.iter().min().unwrap_or(&0),
        ready.iter().max().unwrap_or(&0)
    );
    println!(
        "  pod creation to token   median {} ms  (min {} / max {})",
        median(first_token.clone()),
        first_token.iter().min().unwrap_or(&0),
        first_token.iter().max().unwrap_or(&0)
    );
    println!(
        "  whole run (start, demo, clean stop)   median {} ms",
        median(total)
    );
    Ok(())
}
