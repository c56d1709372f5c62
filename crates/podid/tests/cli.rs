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
