//! The `podid` binary through its command line.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PODID: &str = env!("CARGO_BIN_EXE_podid");

#[test]
fn crds_prints_the_four_pod_identity_crds() {
    let out = Command::new(PODID)
        .arg("crds")
        .output()
        .expect("run podid crds");
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).expect("utf-8");
    for name in [
        "azureidentities.aadpodidentity.k8s.io",
        "azureidentitybindings.aadpodidentity.k8s.io",
        "azureassignedidentities.aadpodidentity.k8s.io",
        "azurepodidentityexceptions.aadpodidentity.k8s.io",
    ] {
        assert!(yaml.contains(&format!("name: {name}")), "missing {name}");
    }
    assert_eq!(yaml.matches("kind: CustomResourceDefinition").count(), 4);
}

#[test]
fn unknown_flags_are_refused_with_usage() {
    let out = Command::new(PODID)
        .args(["sim", "kube", "--no-such-flag"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--no-such-flag'"));
}

fn http_get(addr: &str, path: &str, token: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn sim_kube_serves_writes_a_kubeconfig_and_stops_on_sigint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(PODID)
        .args([
            "sim",
            "kube",
            "--insecure-http",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "cli-test-token",
            "--dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn podid sim kube");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let url = first
        .strip_prefix("kube-sim is serving at ")
        .expect("serving line")
        .to_string();
    let addr = url.strip_prefix("http://").expect("http url").to_string();
    let version = http_get(&addr, "/version", "cli-test-token");
    assert!(
        version.starts_with("HTTP/1.1 200") && version.contains("\"minor\":\"33\""),
        "{version}"
    );
    let forbidden = http_get(&addr, "/api/v1/namespaces", "wrong");
    assert!(forbidden.starts_with("HTTP/1.1 401"), "{forbidden}");
    let kubeconfig = std::fs::read_to_string(dir.path().join("kubeconfig")).expect("kubeconfig");
    assert!(
        kubeconfig.contains(&format!("server: {url}"))
            && kubeconfig.contains("token: cli-test-token")
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(Instant::now() < deadline, "podid did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// === `podid sim kube --insecure-http` with real kubectl ===

/// kubectl from `$KUBECTL` or `PATH`; without it the test says so and passes, unless PODID_REQUIRE_CLIENTS=1.
fn kubectl() -> Option<std::path::PathBuf> {
    let found = std::env::var("KUBECTL")
        .ok()
        .filter(|k| !k.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| podid_playground::run::find_tool("kubectl"));
    if found.is_none() {
        assert!(
            std::env::var("PODID_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "kubectl is required (PODID_REQUIRE_CLIENTS=1) but was not found"
        );
        eprintln!("SKIPPED: kubectl not found; the kubectl part of this test did not run");
    }
    found
}

/// `podid sim kube` with `args`; returns the child and its URL (first stdout line).
fn sim_kube(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(PODID)
        .args(["sim", "kube", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn podid sim kube");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let url = first
        .strip_prefix("kube-sim is serving at ")
        .expect("serving line")
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn interrupt(child: &mut std::process::Child, what: &str) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            assert!(code.success(), "{what} exit status {code}");
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// kubectl reads a kubeconfig's credentials only for an https server, so over plain HTTP it sends none:
/// `--insecure-http` admits anonymous requests as admin (the apiserver's old insecure port), and the written
/// kubeconfig works with real kubectl. A wrong token is still refused, and the grant does not survive into an
/// HTTPS run of the same persisted state.
#[test]
fn kubectl_works_with_the_insecure_http_kubeconfig() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("kubectl-cache");
    let run = |args: &[&str]| {
        let out = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kubectl");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (mut child, url) = sim_kube(dir.path(), &["--insecure-http", "--persist"]);
    assert!(url.starts_with("http://"), "{url}");
    let (ok, out) = run(&["get", "namespaces", "-o", "name"]);
    assert!(ok && out.contains("namespace/default"), "{out}");
    let (ok, out) = run(&["create", "configmap", "cm1", "--from-literal=k=v"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["get", "configmap", "cm1", "-o", "jsonpath={.data.k}"]);
    assert!(ok && out == "v", "{out}");
    let addr = url.trim_start_matches("http://").to_string();
    let wrong = http_get(&addr, "/api/v1/namespaces", "wrong");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    interrupt(&mut child, "podid sim kube --insecure-http");

    // The same persisted state over HTTPS: the anonymous grant is gone, the configmap is still there.
    let (mut child, url) = sim_kube(dir.path(), &["--persist"]);
    assert!(url.starts_with("https://"), "{url}");
    let (ok, out) = run(&[
        "get",
        "clusterrolebinding",
        "kube-sim:insecure-http:anonymous-admin",
    ]);
    assert!(!ok && out.contains("NotFound"), "{out}");
    let (ok, out) = run(&["get", "configmap", "cm1", "-o", "jsonpath={.data.k}"]);
    assert!(ok && out == "v", "{out}");
    interrupt(&mut child, "podid sim kube");
}

// === `podid up` (loopback mode: no root needed) ===

/// How long `podid up` may take to print its ready line (debug build on a busy 2-core machine).
const UP_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the children of a killed `podid up` may take to exit (they get SIGTERM from the kernel).
const ORPHAN_EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// A mistyped pod must be reported within this (it used to wait 60 s).
const MISSING_POD_TIMEOUT: Duration = Duration::from_secs(5);

/// Every test that starts a `podid up` holds this: each start kills the orphans of dead runs machine-wide, and
/// the hygiene tests count exactly those.
static UP_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn up_lock() -> std::sync::MutexGuard<'static, ()> {
    UP_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running `podid up`, killed when dropped (a failed assertion must not leave it running: its children then
/// die with it).
struct Up {
    child: std::process::Child,
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn podid_up_cmd(dir: &std::path::Path, network: &str, kube_port: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(PODID);
    cmd.args(["--log-level", "warn", "up", "--network", network])
        .args(["--kube-port", kube_port, "--nodes", "2", "--dir"])
        .arg(dir)
        .args(extra)
        .env_remove("KUBECONFIG")
        .env_remove("PODID_UP_DIR")
        .env_remove(podid_playground::proc::PARENT_PID_ENV)
        .stdin(Stdio::null());
    cmd
}

/// Starts `podid up` and waits for its ready line.
fn start_up(dir: &std::path::Path, network: &str) -> Up {
    let mut child = podid_up_cmd(dir, network, "0", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn podid up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + UP_READY_TIMEOUT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let ready = l.starts_with("podid up: ready in ");
                lines.push(l);
                if ready {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("podid up did not get ready: {lines:#?}");
            }
        }
    }
    std::thread::spawn(move || for _ in rx {});
    Up { child }
}

/// `podid up ... --exit` to completion: (success, stdout and stderr).
fn up_once(dir: &std::path::Path, network: &str, kube_port: &str) -> (bool, String) {
    let out = podid_up_cmd(dir, network, kube_port, &["--exit"])
        .output()
        .expect("run podid up");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `(ppid, state)` of a process from `/proc/<pid>/stat` (None once it is gone).
fn proc_stat(pid: i32) -> Option<(i32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether `pid` still runs (a zombie waiting for its new parent to reap it does not).
fn running(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(_, s)| s != 'Z' && s != 'X')
}

/// The processes whose parent is `pid`, with their command lines.
fn children_of(pid: i32) -> Vec<(i32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| proc_stat(*p).is_some_and(|(ppid, _)| ppid == pid))
        .map(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            (p, String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

fn kill(pid: i32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// The network modes to run the hygiene test in: loopback always, network namespaces when root with the tools.
fn network_modes() -> Vec<&'static str> {
    let netns = rustix::process::geteuid().is_root()
        && ["ip", "iptables", "iptables-save", "iptables-restore"]
            .iter()
            .all(|t| podid_playground::run::find_tool(t).is_some());
    if netns {
        vec!["loopback", "netns"]
    } else {
        eprintln!(
            "SKIPPED: podid_up_children_die_with_it in netns mode (needs root, iproute2, iptables)"
        );
        vec!["loopback"]
    }
}

/// SIGKILL `podid up`: its controller and agents exit on their own within seconds (the kernel's parent-death
/// signal), and the next `podid up` finds no process of the dead run to kill.
#[test]
fn podid_up_children_die_with_it() {
    let _lock = up_lock();
    for network in network_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut up = start_up(dir.path(), network);
        let up_pid = up.child.id() as i32;
        let children = children_of(up_pid);
        let controllers = children
            .iter()
            .filter(|(_, c)| c.contains(" controller "))
            .count();
        let agents = children
            .iter()
            .filter(|(_, c)| c.contains(" agent "))
            .count();
        assert!(
            controllers == 1 && agents == 2,
            "{network}: podid up's own children are the controller and one agent per node (agents via `ip netns \
             exec`, which execs): {children:#?}"
        );
        kill(up_pid, rustix::process::Signal::KILL);
        let _ = up.child.wait();
        let killed = Instant::now();
        let mut left: Vec<(i32, String)> = children.clone();
        while !left.is_empty() && killed.elapsed() < ORPHAN_EXIT_TIMEOUT {
            std::thread::sleep(Duration::from_millis(50));
            left.retain(|(p, _)| running(*p));
        }
        for (p, _) in &left {
            kill(*p, rustix::process::Signal::KILL);
        }
        assert!(
            left.is_empty(),
            "{network}: still running {ORPHAN_EXIT_TIMEOUT:?} after podid up was killed: {left:#?}"
        );
        eprintln!(
            "podid up ({network}) SIGKILLed: its {} children exited within {} ms",
            children.len(),
            killed.elapsed().as_millis()
        );
        let (ok, out) = up_once(dir.path(), network, "0");
        assert!(ok, "{network}: the next podid up: {out}");
        assert!(
            !out.contains("processes") || out.contains(" 0 processes"),
            "{network}: the next podid up found processes of the dead run: {out}"
        );
        if network == "loopback" {
            assert!(!out.contains("removed what a previous run left"), "{out}");
        }
    }
}

/// A process started by a `podid up` that is gone (one that outlived its parent-death signal, as a stale
/// controller of an older binary would) is killed by the next `podid up`, even in loopback mode where there is no
/// namespace to find it by.
#[test]
fn the_next_podid_up_kills_a_dead_runs_leftovers() {
    let _lock = up_lock();
    let env = podid_playground::proc::PARENT_PID_ENV;
    // The shell is the "podid up": it starts the leftover, prints its pid and exits.
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("export {env}=$$; sleep 60 >/dev/null 2>&1 </dev/null & echo $!"),
        ])
        .output()
        .expect("sh");
    let leftover: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("leftover pid");
    assert!(running(leftover), "the leftover runs");
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out) = up_once(dir.path(), "loopback", "0");
    let deadline = Instant::now() + Duration::from_secs(2);
    while running(leftover) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let still = running(leftover);
    kill(leftover, rustix::process::Signal::KILL);
    assert!(ok, "{out}");
    assert!(
        !still,
        "the dead run's leftover {leftover} was not killed: {out}"
    );
    assert!(
        out.contains("podid up: removed what a previous run left: 0 namespaces, ")
            && !out.contains(" 0 processes"),
        "{out}"
    );
}

/// The frictions a newcomer met, against one running playground: `podid run` on a mistyped pod fails at once
/// and names the pods there; a second `podid up` on the first one's port says to use `--kube-port 0`; the log
/// files hold no colour codes.
#[test]
fn podid_up_newcomer_errors() {
    let _lock = up_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut up = start_up(dir.path(), "loopback");
    let state = podid_playground::state::load(dir.path()).expect("state.json");
    let port = state
        .kube_url
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .expect("kube port");

    // A mistyped pod (and namespace): a clear error in well under the 60 s wait for pods that exist.
    for (target, want) in [
        (
            "default/no-such-pod",
            "pod default/no-such-pod does not exist",
        ),
        ("no-such-ns/app", "there is no namespace \"no-such-ns\""),
    ] {
        let started = Instant::now();
        let out = Command::new(PODID)
            .args(["run", target, "--", "true"])
            .env("PODID_UP_DIR", dir.path())
            .env("PODID_LOG", "warn")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .output()
            .expect("podid run");
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(want), "podid run {target}: {text}");
        assert!(
            took < MISSING_POD_TIMEOUT,
            "podid run {target} took {took:?}: {text}"
        );
    }

    // A second playground on the first one's port: the error says what to do.
    let other = tempfile::tempdir().expect("tempdir");
    let (ok, out) = up_once(other.path(), "loopback", &port);
    assert!(!ok, "{out}");
    for want in ["--kube-port 0", "another podid up", "--dir"] {
        assert!(out.contains(want), "missing {want:?} in: {out}");
    }

    // Logs are plain text: the children write to files, not terminals.
    interrupt(&mut up.child, "podid up");
    let logs = dir.path().join("logs");
    let mut files = 0;
    for e in std::fs::read_dir(&logs).expect("logs dir").flatten() {
        let bytes = std::fs::read(e.path()).expect("log");
        assert!(!bytes.is_empty(), "{} is empty", e.path().display());
        assert!(
            !bytes.contains(&0x1b),
            "colour codes in {}: {}",
            e.path().display(),
            String::from_utf8_lossy(&bytes)
        );
        files += 1;
    }
    assert_eq!(files, 3, "controller.log and one log per agent");
}
