//! Child processes of the playground (the controller, the agents): started with their output in log files,
//! announced by their first stdout line, stopped with SIGTERM (so an agent removes its iptables rules) and killed
//! if they do not exit in time.
//!
//! # Children die with `podid up`
//! A `podid up` killed outright (SIGKILL, OOM) runs no clean-up, so its children see to it themselves: each gets
//! [`PARENT_PID_ENV`] naming this process, and `podid controller` / `podid agent` then ask the kernel for SIGTERM
//! when their parent dies (`PR_SET_PDEATHSIG`) and exit at once if their parent is already another process (it
//! died before they asked). Agents start through `ip netns exec`, which execs, so their parent is `podid up` too.
//! The kernel sends that signal when the *thread* that forked the child ends, so every child is forked from one
//! thread that lives as long as the process ([`spawn_from_keeper`]), never from a runtime thread tokio may retire.
//! What still survives (a child that ignored the signal, or one started by an older binary) is killed by the next
//! `podid up` ([`kill_orphans`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child may take to print its serving line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a child may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Names the `podid up` process (its pid) to the children it starts; see the module doc.
pub const PARENT_PID_ENV: &str = "PODID_UP_PARENT_PID";

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

/// Proxy variables that must never reach a child (everything it calls is local, often from inside a network
/// namespace where the host's proxy is unreachable); the tests that start children the same way clear these too.
pub const PROXY_VARS: [&str; 8] = [
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
        .env(PARENT_PID_ENV, std::process::id().to_string())
        .kill_on_drop(true);
    let mut child = spawn_from_keeper(cmd)
        .await
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

/// A spawn request for the keeper thread: the command, the runtime to register the child with, the reply.
type SpawnJob = (
    Command,
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<std::io::Result<Child>>,
);

/// Spawns `cmd` from the keeper: one thread that lives as long as this process, so a child's parent-death
/// signal fires when the process dies and never earlier (the kernel ties it to the forking thread).
pub async fn spawn_from_keeper(cmd: Command) -> std::io::Result<Child> {
    static KEEPER: OnceLock<Result<std::sync::mpsc::Sender<SpawnJob>, String>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("podid-up-spawner".into())
            .spawn(move || {
                for (mut cmd, runtime, reply) in rx {
                    let _entered = runtime.enter();
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map(|_| tx)
            .map_err(|e| format!("start the spawner thread: {e}"))
    });
    let keeper = keeper
        .as_ref()
        .map_err(|e| std::io::Error::other(e.clone()))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    keeper
        .send((cmd, tokio::runtime::Handle::current(), reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// The parent a process was started for, from its `/proc/<pid>/environ` ([`PARENT_PID_ENV`]).
fn marked_parent(environ: &[u8]) -> Option<i32> {
    let key = format!("{PARENT_PID_ENV}=");
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(key.as_bytes()))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
}

/// Kills (SIGKILL) every process started by a `podid up` that no longer exists: its [`PARENT_PID_ENV`] names a
/// process that is gone (a stale controller lives in the host namespace, where no namespace clean-up finds it).
/// Processes of live playgrounds are left alone. Returns the pids killed. (A dead run's pid reused since by
/// another process hides its orphans from this check; the children's parent-death signal makes those rare.)
pub fn kill_orphans() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut killed = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some(parent) = std::fs::read(entry.path().join("environ"))
            .ok()
            .and_then(|env| marked_parent(&env))
        else {
            continue;
        };
        if parent == me || Path::new("/proc").join(parent.to_string()).exists() {
            continue;
        }
        if let Some(p) = rustix::process::Pid::from_raw(pid)
            && rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok()
        {
            killed.push(pid);
        }
    }
    killed
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
    fn the_parent_marker_is_read_from_environ() {
        let env = format!("A=1\0{}=4242\0B=2\0", super::PARENT_PID_ENV);
        assert_eq!(super::marked_parent(env.as_bytes()), Some(4242));
        assert_eq!(super::marked_parent(b"A=1\0B=2\0"), None);
        let bad = format!("{}=x\0", super::PARENT_PID_ENV);
        assert_eq!(super::marked_parent(bad.as_bytes()), None);
        let prefixed = format!("X{}=1\0", super::PARENT_PID_ENV);
        assert_eq!(super::marked_parent(prefixed.as_bytes()), None);
    }

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
