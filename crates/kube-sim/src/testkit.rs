//! Test helpers for clients of the simulator (feature `testkit`, dev-dependencies only): kubectl (finding the
//! binary, skip or fail when it is missing, running it with one kubeconfig and a private home, its output
//! captured) and a polled wait. Shared by kube-sim's own tests, azure-sim's (which start a kube-sim) and, through
//! `podid-testkit`, podid's suites, so no suite copies them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where system tools live (often not on a test runner's `PATH`).
const SBIN_DIRS: [&str; 5] = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];
/// How often [`eventually`] polls.
const POLL: Duration = Duration::from_millis(20);
/// Set to `1` (CI), a missing kubectl fails the test instead of skipping it.
const REQUIRE_CLIENTS_ENV: &str = "PODID_REQUIRE_CLIENTS";

/// The absolute path of executable `name` on `$PATH` or in the sbin directories.
#[must_use]
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

/// `$KUBECTL` when set, else `kubectl` on `PATH` or in the sbin directories.
#[must_use]
pub fn find_kubectl() -> Option<PathBuf> {
    std::env::var("KUBECTL")
        .ok()
        .filter(|k| !k.is_empty())
        .map(PathBuf::from)
        .or_else(|| find_tool("kubectl"))
}

/// Runs `cmd` to completion with `stdin` written to it (else a null stdin), capturing stdout and stderr.
///
/// # Panics
/// When the command cannot be spawned or waited for.
pub fn output_with_stdin(mut cmd: Command, stdin: Option<&str>) -> std::process::Output {
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

/// One kubectl: its binary, the kubeconfig it uses (never `$KUBECONFIG`) and a private home (its cache in
/// `home/cache`), so a test never reads or writes the user's.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// The binary.
    pub bin: PathBuf,
    /// The kubeconfig passed as `--kubeconfig`.
    pub kubeconfig: PathBuf,
    /// `$HOME` for kubectl; its discovery cache goes to `home/cache`.
    pub home: PathBuf,
}

/// What one kubectl run said.
#[derive(Debug, Clone)]
pub struct KubectlOut {
    /// It exited with status 0.
    pub ok: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

// === impl Kubectl ===

impl Kubectl {
    /// kubectl found by [`find_kubectl`]; when it is missing, `test` prints that it was skipped and gets `None`,
    /// unless `PODID_REQUIRE_CLIENTS=1`.
    ///
    /// # Panics
    /// When kubectl is missing and `PODID_REQUIRE_CLIENTS=1`.
    #[must_use]
    pub fn find(test: &str) -> Option<PathBuf> {
        let found = find_kubectl();
        if found.is_none() {
            assert!(
                std::env::var(REQUIRE_CLIENTS_ENV).as_deref() != Ok("1"),
                "kubectl is required ({REQUIRE_CLIENTS_ENV}=1) but was not found"
            );
            eprintln!("SKIPPED: kubectl not found; the {test} did not run");
        }
        found
    }

    /// The command for `args`, with the kubeconfig, the cache and the home set.
    #[must_use]
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", &self.home);
        c
    }

    /// Run `args` with `stdin` (else a null stdin) to completion.
    #[must_use]
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> KubectlOut {
        let out = output_with_stdin(self.cmd(args), stdin);
        KubectlOut {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Run `args` with `stdin`; its stdout.
    ///
    /// # Panics
    /// When kubectl fails (with its output in the message).
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin);
        assert!(
            o.ok,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    /// Run `args` with `-o json`; the parsed output.
    ///
    /// # Panics
    /// When kubectl fails or prints something other than JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a, None)).expect("kubectl -o json output is JSON")
    }
}

/// Poll `f` every 20 ms until it returns true (`true`) or `timeout` passes (`false`).
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
