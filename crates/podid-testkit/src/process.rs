//! `podid <component>` (or any server that prints one start line) as a child process: stdout's first line is
//! read and parsed, stderr goes to a log file, the child is killed when dropped.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::http::try_http;

/// A component prints its start line within this.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// SIGTERM to exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Polling `/readyz`.
const READY_POLL: Duration = Duration::from_millis(20);

/// The `podid` binary: `$PODID_EXE`, else the `podid` cargo built beside the running test or tool
/// (`target/<profile>/podid`, the parent of `deps/`).
pub fn podid_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("PODID_EXE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("podid"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no podid binary near {}: build it (cargo build -p podid)",
                exe.display()
            )
        })
}

/// A command to start: `podid <component>`, or a wrapper (`ip netns exec NS`) in front of it.
#[must_use]
pub struct ComponentCmd {
    cmd: tokio::process::Command,
    log: PathBuf,
    start_timeout: Duration,
}

// === impl ComponentCmd ===

impl ComponentCmd {
    /// `program args..` with stderr to `log`.
    pub fn new(program: impl AsRef<OsStr>, log: PathBuf) -> ComponentCmd {
        ComponentCmd {
            cmd: tokio::process::Command::new(program),
            log,
            start_timeout: START_TIMEOUT,
        }
    }

    /// `<exe> <component>` with stderr to `log`.
    pub fn podid(exe: &Path, component: &str, log: PathBuf) -> ComponentCmd {
        ComponentCmd::new(exe, log).arg(component)
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(a);
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(k);
        self
    }

    /// How long the start line may take.
    pub fn start_timeout(mut self, t: Duration) -> Self {
        self.start_timeout = t;
        self
    }

    /// Spawns and waits for the start line.
    pub async fn try_start(mut self) -> anyhow::Result<Component> {
        let logf = std::fs::File::create(&self.log)
            .with_context(|| format!("create {}", self.log.display()))?;
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(logf))
            .kill_on_drop(true)
            .spawn()
            .context("spawn")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let log = self.log.clone();
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let line = tokio::time::timeout(self.start_timeout, lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("did not start: {}", read_log()))?
            .context("read stdout")?
            .ok_or_else(|| anyhow::anyhow!("exited: {}", read_log()))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let after = |w: &str| {
            words
                .iter()
                .position(|x| x == w)
                .and_then(|i| words.get(i + 1))
                .cloned()
                .unwrap_or_default()
        };
        let addr = words
            .iter()
            .find_map(|w| {
                let host = w.strip_prefix("http://")?;
                host.split('/').next()?.parse().ok()
            })
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Ok(Component {
            pid: child.id().unwrap_or_default(),
            child,
            addr,
            probe: after("probe"),
            metrics: after("metrics"),
            line,
            log: self.log,
        })
    }

    /// [`ComponentCmd::try_start`], panicking with the log.
    pub async fn start(self) -> Component {
        match self.try_start().await {
            Ok(c) => c,
            Err(e) => panic!("component: {e:#}"),
        }
    }
}

/// A running child: its start line's addresses and its log.
pub struct Component {
    pub child: tokio::process::Child,
    pub pid: u32,
    /// The first `http://` address on the start line (the agent's token server, the controller's probe).
    pub addr: SocketAddr,
    /// The URL after `probe` on the start line (`http://ADDR/healthz`), or empty.
    pub probe: String,
    /// The URL after `metrics` on the start line, or empty.
    pub metrics: String,
    /// The start line.
    pub line: String,
    /// Its stderr.
    pub log: PathBuf,
}

// === impl Component ===

impl Component {
    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/healthz`'s body.
    pub async fn health(&self) -> String {
        crate::http::http("GET", &self.probe, None).await.1
    }

    /// The value of an unlabelled series on `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, text) = crate::http::http("GET", &self.metrics, None).await;
        crate::http::metric_value(&text, name)
            .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
    }

    /// Still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, not waited for.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// SIGTERM, then its exit code (None when it did not exit within [`STOP_TIMEOUT`] or died of a signal).
    pub async fn terminate(&mut self) -> Option<i32> {
        self.terminate_within(STOP_TIMEOUT).await
    }

    /// SIGTERM, then its exit code within `timeout`.
    pub async fn terminate_within(&mut self, timeout: Duration) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(|r| r.ok())
            .and_then(|s| s.code())
    }

    /// Waits until `/readyz` (the probe URL's sibling) answers 200.
    pub async fn try_wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let ready = self.probe.replace("/healthz", "/readyz");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if try_http("GET", &ready, None)
                .await
                .map(|r| r.0)
                .unwrap_or(0)
                == 200
            {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "not ready after {timeout:?}: {}",
                self.logs()
            );
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// [`Component::try_wait_ready`], panicking.
    pub async fn wait_ready(&self, timeout: Duration) {
        if let Err(e) = self.try_wait_ready(timeout).await {
            panic!("{e:#}");
        }
    }
}
