//! Child processes of the playground (the controller, the agents): started with their output in log files,
//! announced by their first stdout line, stopped with SIGTERM (so an agent removes its iptables rules) and killed
//! if they do not exit in time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child may take to print its serving line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a child may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running child.
#[derive(Debug)]
pub struct Proc {
    /// What it is (for messages).
    pub what: String,
    /// Its log file.
    pub log: PathBuf,
    /// The first line it printed on stdout.
    pub first_line: String,
    child: Child,
}

/// Proxy variables that must never reach a child (everything it calls is local).
const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// Starts `cmd` with stderr (and later stdout) in `log`, and waits for its first stdout line.
pub async fn start(what: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
    let logf =
        std::fs::File::create(log).map_err(|e| anyhow::anyhow!("create {}: {e}", log.display()))?;
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(logf.try_clone()?))
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("start {what}: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("{what}: no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let tail = |log: &Path| {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    let first = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        Ok(_) => anyhow::bail!(
            "{what} exited during start-up; its log ({}):\n{}",
            log.display(),
            tail(log)
        ),
        Err(_) => anyhow::bail!(
            "{what} did not start within {START_TIMEOUT:?}; its log ({}):\n{}",
            log.display(),
            tail(log)
        ),
    };
    let mut out = tokio::fs::File::from_std(logf);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = out.write_all(format!("{line}\n").as_bytes()).await;
        }
    });
    Ok(Proc {
        what: what.to_string(),
        log: log.to_path_buf(),
        first_line: first,
        child,
    })
}

impl Proc {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]. Returns the exit code (128 + signal when a signal ended it
    /// earlier; None when it had to be killed now).
    pub async fn stop(mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.code().or(status.signal().map(|s| 128 + s));
        }
        if let Some(pid) = self
            .child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

/// The word after `key` in a serving line (`podid agent: serving http://A probe http://B/healthz ...`).
pub fn word_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            return words.next();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn serving_line_words() {
        let l = "podid agent: serving http://127.0.0.1:2579 probe http://127.0.0.1:8085/healthz metrics http://127.0.0.1:9090/metrics";
        assert_eq!(
            super::word_after(l, "serving"),
            Some("http://127.0.0.1:2579")
        );
        assert_eq!(
            super::word_after(l, "probe"),
            Some("http://127.0.0.1:8085/healthz")
        );
        assert_eq!(
            super::word_after(l, "metrics"),
            Some("http://127.0.0.1:9090/metrics")
        );
        assert_eq!(super::word_after(l, "nope"), None);
    }
}
