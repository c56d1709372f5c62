//! Running one iptables binary with a hard time limit.
//!
//! `std::process::Command::output` can block forever on a hung child; this runner polls the child
//! until a deadline, kills it past that, and reads stdout/stderr on helper threads so a large
//! listing never deadlocks on a full pipe. The child inherits the calling thread's network
//! namespace (fork copies the calling thread's namespaces), which the netns tests rely on.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{FailureKind, NetfilterError};

/// How often a running child is polled for exit.
const POLL_INTERVAL_MS: u64 = 5;
/// Grace period for the pipe readers after the child exited (a grandchild may hold a pipe).
const READER_GRACE_MS: u64 = 1_000;

/// The command line as shown in errors and logs.
pub(crate) fn render(program: &Path, args: &[&str]) -> String {
    let mut out = program.display().to_string();
    for arg in args {
        out.push(' ');
        out.push_str(arg);
    }
    out
}

fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error just truncates the captured text; the exit status still tells.
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `program args`, feeding `stdin` if given, and returns stdout on exit status 0.
pub(crate) fn run(
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<String, NetfilterError> {
    let command = render(program, args);
    tracing::trace!(%command, "running iptables command");
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetfilterError::Spawn {
            command: command.clone(),
            source,
        })?;

    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_owned();
        thread::spawn(move || {
            // EPIPE here means the child exited early; its exit status reports why.
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let stdout_rx = spawn_reader(child.stdout.take());
    let stderr_rx = spawn_reader(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NetfilterError::Spawn { command, source });
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NetfilterError::Timeout {
                command,
                timeout_ms: timeout.as_millis(),
            });
        }
        thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
    };

    let grace = Duration::from_millis(READER_GRACE_MS);
    let stdout = stdout_rx.recv_timeout(grace).unwrap_or_default();
    let stderr = stderr_rx.recv_timeout(grace).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    if !status.success() {
        let kind = FailureKind::classify(&stderr);
        return Err(NetfilterError::Command {
            command,
            exit_code: status.code(),
            stderr,
            kind,
        });
    }
    if !stderr.trim().is_empty() {
        tracing::debug!(%command, stderr = %stderr.trim(), "iptables command succeeded with warnings");
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}
