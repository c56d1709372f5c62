//! Prerequisites: tools on `PATH` or in the sbin directories, skip-or-fail, lines past libtest's capture.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where system tools live (often not on a test runner's `PATH`).
const SBIN_DIRS: [&str; 5] = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];

/// A line straight to stderr, past libtest's output capture.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints `SKIPPED: <test>: <reason>`, or panics when the environment variable `require_env` is `1`.
pub fn skip_or_fail(test: &str, require_env: &str, reason: &str) {
    if std::env::var(require_env).as_deref() == Ok("1") {
        panic!("{test}: {reason} ({require_env}=1)");
    }
    report(&format!("SKIPPED: {test}: {reason}"));
}

/// The absolute path of executable `name` on `$PATH` or in the sbin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The repository root (this crate lives at `crates/podid-testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$KUBECTL` when set, else `kubectl` on `PATH` or in the sbin directories.
pub fn find_kubectl() -> Option<PathBuf> {
    std::env::var("KUBECTL")
        .ok()
        .filter(|k| !k.is_empty())
        .map(PathBuf::from)
        .or_else(|| find_tool("kubectl"))
}

/// Runs `cmd` to completion with `stdin` written to it (else a null stdin), capturing stdout and stderr.
pub fn output_with_stdin(
    mut cmd: std::process::Command,
    stdin: Option<&str>,
) -> std::process::Output {
    use std::process::Stdio;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("output")
}
