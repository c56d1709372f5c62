//! End to end over the playground: `podid up` (network namespaces, real iptables redirect, every component),
//! driven like a user drives it: real `kubectl` applies upstream-style objects, the official Python SDK runs as the
//! pod's application through `podid run`, and `podid doctor` explains each state. Mirrors the AKS documentation's
//! flow and the upstream e2e suite's single-identity cases (aad-pod-identity.md §5).
//!
//! Needs root, iproute2, iptables (else skipped, or failed with PODID_REQUIRE_NETNS=1), kubectl and the Python
//! SDK venv (else skipped, or failed with PODID_REQUIRE_CLIENTS=1). Every namespace it creates belongs to the
//! `podid up` child, which removes them on SIGINT; the test checks that it did.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const PODID: &str = env!("CARGO_BIN_EXE_podid");
const NS: &str = "e2e";
const APP_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const SECOND_CLIENT_ID: &str = "22222222-3333-4444-5555-666666666666";
const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
const VAULT_URL: &str = "https://podid-demo-kv.vault.azure.net";
const SECRET: &str = "demo-secret";
/// The default world's secret (its SHA-256 is compared, the value is never printed).
const SECRET_VALUE: &str = "hello-from-the-podid-playground";
const UP_TIMEOUT: Duration = Duration::from_secs(60);
const STEP_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

use podid_playground::run::find_tool;
use podid_testkit::Backend;
use podid_testkit::tools::{find_kubectl, output_with_stdin, repo_root, report, skip_or_fail};

fn prerequisites(test: &str) -> Option<(PathBuf, PathBuf)> {
    if !rustix::process::geteuid().is_root() {
        skip_or_fail(test, "PODID_REQUIRE_NETNS", "needs root");
        return None;
    }
    for t in ["ip", "iptables", "iptables-save", "iptables-restore"] {
        if find_tool(t).is_none() {
            skip_or_fail(test, "PODID_REQUIRE_NETNS", &format!("{t} not installed"));
            return None;
        }
    }
    let kubectl = find_kubectl();
    let python = repo_root().join(".venv/bin/python");
    let ok = python.is_file()
        && std::process::Command::new(&python)
            .args(["-c", "import azure.identity, azure.keyvault.secrets"])
            .env_clear()
            .output()
            .is_ok_and(|o| o.status.success());
    match (kubectl, ok) {
        (Some(k), true) => Some((k, python)),
        (None, _) => {
            skip_or_fail(test, "PODID_REQUIRE_CLIENTS", "kubectl not found");
            None
        }
        (_, false) => {
            skip_or_fail(
                test,
                "PODID_REQUIRE_CLIENTS",
                "no .venv with azure-identity (scripts/ensure-clients.sh)",
            );
            None
        }
    }
}

struct Up {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    ready_ms: u64,
    kubectl: PathBuf,
    python: PathBuf,
}

impl Up {
    async fn start(kubectl: PathBuf, python: PathBuf, backend: Backend) -> Up {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = tokio::process::Command::new(PODID)
            .args([
                "--log-level",
                "warn",
                "up",
                "--kube-port",
                "0",
                "--nodes",
                "2",
                "--kube",
                &backend.to_string(),
            ])
            .arg("--dir")
            .arg(dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn podid up");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut seen = Vec::new();
        let ready_ms = tokio::time::timeout(UP_TIMEOUT, async {
            while let Ok(Some(l)) = lines.next_line().await {
                seen.push(l.clone());
                if let Some(rest) = l.strip_prefix("podid up: ready in ") {
                    return rest
                        .split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("podid up did not get ready: {seen:#?}"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let kubeconfig = dir.path().join("kube/kubeconfig");
        Up {
            child,
            dir,
            kubeconfig,
            ready_ms,
            kubectl,
            python,
        }
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        let mut cmd = std::process::Command::new(&self.kubectl);
        cmd.args(args).env("KUBECONFIG", &self.kubeconfig);
        let out = output_with_stdin(cmd, stdin);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn apply(&self, yaml: &str) {
        let (ok, out) = self.kubectl(&["apply", "-f", "-"], Some(yaml));
        assert!(ok, "kubectl apply: {out}");
    }

    async fn podid(&self, args: &[&str]) -> (i32, String) {
        let out = tokio::time::timeout(
            STEP_TIMEOUT,
            tokio::process::Command::new(PODID)
                .args(args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", self.dir.path())
                .env("PODID_UP_DIR", self.dir.path())
                .env("PODID_LOG", "warn")
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("podid {args:?} did not finish"))
        .expect("run podid");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// The Python SDK as pod `pod`'s application (`podid run`); its JSON line.
    async fn python(&self, pod: &str, args: &[&str]) -> Value {
        let script = repo_root().join("tests/clients/python/keyvault_client.py");
        let target = format!("{NS}/{pod}");
        let mut argv = vec!["run", target.as_str(), "--"];
        let py = self.python.display().to_string();
        let sc = script.display().to_string();
        argv.push(&py);
        argv.push(&sc);
        argv.extend_from_slice(args);
        let (_, out) = self.podid(&argv).await;
        let line = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("python {args:?}: {e}: {out}"))
    }

    async fn eventually_aai(&self, name: &str, status: &str) {
        let start = Instant::now();
        loop {
            let (_, out) = self.kubectl(
                &[
                    "get",
                    "azureassignedidentity",
                    name,
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={.status.status}",
                ],
                None,
            );
            if out.trim() == status {
                return;
            }
            assert!(
                start.elapsed() < STEP_TIMEOUT,
                "AAI {name} never {status}: {out}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGINT; returns whether state.json is gone.
    async fn stop(mut self) -> bool {
        let pid = self.child.id().expect("pid") as i32;
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).expect("pid"),
            rustix::process::Signal::INT,
        );
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .expect("podid up stops on SIGINT")
            .expect("wait");
        assert!(status.success(), "podid up exit status {status}");
        !self.dir.path().join("state.json").exists()
    }
}

/// A pod's program calling its node's IMDS (http://10.240.0.3) directly for the cluster identity's token, once
/// over the pod's own routes and once after adding a route to it via the pod's gateway (argv[1] is `ip`). Prints
/// one JSON line: `{"direct": ATTEMPT, "route_added": bool, "route_error": str, "routed": ATTEMPT}`, ATTEMPT being
/// `{"token": bool, "status": int?, "error": str?, "seconds": float}`. It never prints a token.
const DIRECT_IMDS_PROGRAM: &str = r#"
import json, subprocess, sys, time, urllib.error, urllib.request
URL = ("http://10.240.0.3/metadata/identity/oauth2/token?api-version=2018-02-01"
       "&resource=https%3A%2F%2Fmanagement.azure.com%2F&client_id=9a2c4e60-0000-4000-8000-00000000c1d0")
def attempt():
    t = time.monotonic()
    out = {"token": False}
    try:
        with urllib.request.urlopen(urllib.request.Request(URL, headers={"Metadata": "true"}), timeout=3) as r:
            out["status"] = r.status
            out["token"] = "access_token" in r.read().decode()
    except urllib.error.HTTPError as e:
        out["status"] = e.code
        out["token"] = "access_token" in e.read().decode()
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, getattr(e, "reason", e))
    out["seconds"] = round(time.monotonic() - t, 3)
    return out
result = {"direct": attempt()}
ip = sys.argv[1]
words = subprocess.run([ip, "-4", "route", "show", "169.254.169.254"], capture_output=True, text=True).stdout.split()
via = words[words.index("via") + 1] if "via" in words else ""
added = subprocess.run([ip, "route", "replace", "10.240.0.3/32", "via", via], capture_output=True, text=True)
result["route_added"] = added.returncode == 0
result["route_error"] = added.stderr.strip()
result["routed"] = attempt()
print(json.dumps(result))
"#;

fn sha256_hex(python: &Path, value: &str) -> String {
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
            value,
        ])
        .env_clear()
        .output()
        .expect("python");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn identity_yaml(name: &str, client_id: &str, selector: &str) -> String {
    format!(
        "apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata:
  name: {name}
  namespace: {NS}
spec:
  type: 0
  resourceID: /subscriptions/{SUB}/resourcegroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}
  clientID: {client_id}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentityBinding
metadata:
  name: {name}-binding
  namespace: {NS}
spec:
  azureIdentity: {name}
  selector: {selector}
"
    )
}

fn pod_yaml(name: &str, label: Option<&str>) -> String {
    let labels = label
        .map(|l| format!("  labels:\n    aadpodidbinding: {l}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {NS}
{labels}spec:
  containers:
  - name: app
    image: mcr.microsoft.com/azure-cli
"
    )
}

podid_testkit::both_backends!(the_documented_pod_identity_flow_end_to_end);

/// `podid up` (`--kube sim`, or `--kube real`: etcd, kube-apiserver and kube-controller-manager) and the flow.
async fn the_documented_pod_identity_flow_end_to_end(backend: Backend) {
    let test = format!("playground::the_documented_pod_identity_flow_end_to_end::{backend}");
    let Some((kubectl, python)) = prerequisites(&test) else {
        return;
    };
    let up = Up::start(kubectl, python, backend).await;
    report(&format!(
        "playground: podid up --kube {backend} ready in {} ms (2 nodes as network namespaces)",
        up.ready_ms
    ));
    let (ok, nodes) = up.kubectl(&["get", "nodes", "-o", "name"], None);
    assert!(ok && nodes.lines().count() == 2, "{nodes}");

    // 1. The documented flow: identity + binding applied with kubectl, a labelled pod, the SDK reads the secret.
    up.kubectl(&["create", "namespace", NS], None);
    up.apply(&identity_yaml("application-identity", APP_CLIENT_ID, "app"));
    let created = Instant::now();
    up.apply(&pod_yaml("app", Some("app")));
    let first = up
        .python(
            "app",
            &["secret", "--vault-url", VAULT_URL, "--secret", SECRET],
        )
        .await;
    let to_first_secret = created.elapsed();
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["appid"], APP_CLIENT_ID, "{first}");
    let expected_sha = sha256_hex(&up.python, SECRET_VALUE);
    assert_eq!(first["secret_sha256"], expected_sha.as_str(), "{first}");
    let raw = up.python("app", &["raw"]).await;
    assert_eq!(raw["status"], 200, "{raw}");
    report(&format!(
        "playground: pod creation to the SDK's secret (scheduling, IP, namespace, AAI Assigned, python start, token, Key Vault): {} ms; SDK time {} s; a cached token request from the pod: {} ms",
        to_first_secret.as_millis(),
        first["seconds"],
        raw["ms"]
    ));
    let (code, doc) = up.podid(&["doctor", &format!("{NS}/app")]).await;
    assert_eq!(code, 0, "doctor for a bound pod: {doc}");
    assert!(doc.contains("application-identity"), "{doc}");

    // 2. Two identities on one selector: client_id chooses; the second may not read the vault.
    up.apply(&identity_yaml("second-identity", SECOND_CLIENT_ID, "app"));
    up.eventually_aai(&format!("app-{NS}-second-identity"), "Assigned")
        .await;
    let second = up
        .python(
            "app",
            &[
                "secret",
                "--vault-url",
                VAULT_URL,
                "--secret",
                SECRET,
                "--client-id",
                SECOND_CLIENT_ID,
            ],
        )
        .await;
    assert_eq!(second["ok"], false, "{second}");
    assert_eq!(
        second["step"], "secret",
        "the token works, the vault refuses: {second}"
    );
    assert_eq!(second["appid"], SECOND_CLIENT_ID, "{second}");
    assert_eq!(second["status"], 403, "{second}");
    let chosen = up
        .python(
            "app",
            &[
                "secret",
                "--vault-url",
                VAULT_URL,
                "--secret",
                SECRET,
                "--client-id",
                APP_CLIENT_ID,
            ],
        )
        .await;
    assert_eq!(chosen["ok"], true, "{chosen}");
    assert_eq!(chosen["appid"], APP_CLIENT_ID);
    assert_eq!(chosen["secret_sha256"], expected_sha.as_str());

    // 3. A pod without the label: a clear refusal in milliseconds, and doctor says why.
    up.apply(&pod_yaml("nolabel", None));
    let refused = up.python("nolabel", &["raw"]).await;
    assert_ne!(refused["status"], 200, "{refused}");
    let ms = refused["ms"].as_f64().unwrap_or(f64::MAX);
    assert!(ms < 1000.0, "refusal took {ms} ms: {refused}");
    report(&format!(
        "playground: unlabelled pod refused with HTTP {} in {ms} ms: {}",
        refused["status"], refused["body"]
    ));
    let sdk_refused = up
        .python(
            "nolabel",
            &[
                "secret",
                "--vault-url",
                VAULT_URL,
                "--secret",
                SECRET,
                "--retry-total",
                "0",
            ],
        )
        .await;
    assert_eq!(sdk_refused["ok"], false, "{sdk_refused}");
    assert_eq!(sdk_refused["step"], "token", "{sdk_refused}");
    let (code, doc) = up.podid(&["doctor", &format!("{NS}/nolabel")]).await;
    assert_eq!(code, 2, "doctor for an unlabelled pod: {doc}");
    assert!(doc.contains("aadpodidbinding"), "{doc}");

    // 3b. Past the agent: the pod calls its node's IMDS (10.240.0.3) itself, first over the routes it has, then
    // over a route it adds (a program run as root in the pod's namespace may). No answer either way, within the
    // connect timeout; the entitled pod keeps getting its token through the agent.
    let ip = find_tool("ip").expect("ip");
    let started = Instant::now();
    let (_, out) = up
        .podid(&[
            "run",
            &format!("{NS}/nolabel"),
            "--",
            &up.python.display().to_string(),
            "-c",
            DIRECT_IMDS_PROGRAM,
            &ip.display().to_string(),
        ])
        .await;
    let direct: Value = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("direct IMDS program: {out}"));
    assert_eq!(direct["route_added"], true, "{direct}");
    for attempt in ["direct", "routed"] {
        let a = &direct[attempt];
        assert_eq!(
            a["token"], false,
            "{attempt}: a token from the node's IMDS: {direct}"
        );
        assert!(
            a["error"].is_string(),
            "{attempt}: no answer at all: {direct}"
        );
        assert!(
            a["seconds"].as_f64().unwrap_or(f64::MAX) < 4.0,
            "{attempt}: bounded: {direct}"
        );
    }
    report(&format!(
        "playground: the node's IMDS straight from a pod: no route: {}; with an added route: {} ({} ms in all)",
        direct["direct"]["error"],
        direct["routed"]["error"],
        started.elapsed().as_millis()
    ));
    let still = up.python("app", &["raw"]).await;
    assert_eq!(
        still["status"], 200,
        "the entitled pod is still served: {still}"
    );

    // 4. Deleting the binding revokes access.
    let (ok, out) = up.kubectl(
        &[
            "delete",
            "azureidentitybinding",
            "application-identity-binding",
            "second-identity-binding",
            "-n",
            NS,
        ],
        None,
    );
    assert!(ok, "{out}");
    let start = Instant::now();
    loop {
        let r = up
            .python("app", &["raw", "--client-id", APP_CLIENT_ID])
            .await;
        if r["status"] != 200 {
            report(&format!(
                "playground: binding deleted -> refused after {} ms: HTTP {} {}",
                start.elapsed().as_millis(),
                r["status"],
                r["body"]
            ));
            break;
        }
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "still served after the binding was deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, doc) = up.podid(&["doctor", &format!("{NS}/app")]).await;
    assert_eq!(code, 2, "doctor after the binding was deleted: {doc}");
    assert!(doc.to_lowercase().contains("binding"), "{doc}");

    // 5. Ctrl-C removes everything: namespaces, /etc/netns files, state.
    let pid = up.child.id().expect("pid");
    let state_removed = up.stop().await;
    let prefix = format!("pgd{pid}-");
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let etc_left = std::fs::read_dir("/etc/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count();
    assert_eq!(etc_left, 0, "/etc/netns entries left behind");
    assert!(state_removed, "state.json left behind");
}
