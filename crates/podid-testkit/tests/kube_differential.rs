//! The differential test of kube-sim (issue 14): one corpus of API interactions, replayed against a real
//! kube-apiserver (v1.34.4 with etcd and kube-controller-manager, [`KubeBackend::Real`]) and against kube-sim
//! ([`KubeBackend::Sim`]) in this one process, each answer normalised only where the two must differ, then
//! compared. The real server's answer is the reference.
//!
//! # The corpus
//!
//! `tests/kube_differential/NN-topic.json`, one file per topic, each `{"topic", "interactions": [...]}`; the
//! harness gives every topic its own namespace `diff-<topic>` (created on both backends, its `default`
//! ServiceAccount and `kube-root-ca.crt` waited for). An interaction is:
//!
//! | field | meaning |
//! |---|---|
//! | `id` | unique, `topic/name`; the key of `known_differences.json` |
//! | `as` | `admin` (default), `anonymous` (no credentials), `sa:NS:NAME` (a TokenRequest token of that ServiceAccount, made on first use) |
//! | `method`, `path` | HTTP method and path with query; `KUBECTL` runs kubectl (`args`, `stdin`); `WEBHOOK_LOG` returns the AdmissionReviews the test's webhook received since the last one |
//! | `headers` | extra request headers (`Content-Type` for patch types, `Accept` for Tables, `Impersonate-*`) |
//! | `body` / `body_text` / `body_crd` | a JSON body, a raw body, or podid's CRD of that plural (`podid_k8s::crds()`) |
//! | `capture` | `{"var": "/json/pointer"}`: values of the answer used later as `{var}` (per backend) |
//! | `wait_ms`, `before` | a pause, or `{"path", "status"}` polled (GET, admin) until it answers `status`, before sending |
//! | `ignore` | JSON pointers left out of the comparison (with `why`: asynchronous controller writes only) |
//! | `only` | `{"path", "key", "values"}`: compare only the elements of a list whose `key` is in `values` (discovery of the kinds kube-sim serves) |
//!
//! `{ns}`, `{webhook_url}`, `{webhook_ca}`, `{closed_url}` and the captures are substituted in paths, headers,
//! bodies and arguments.
//!
//! # Normalisation
//!
//! Only what must differ between two servers: uids (any UUID in any string), `resourceVersion`, timestamps
//! (`creationTimestamp`, `deletionTimestamp`, managedFields' `time`, conditions' times, `expirationTimestamp`,
//! `startTime`), Table cells of `date` columns and kubectl's AGE, names made from `generateName`, continue tokens,
//! `clusterIP(s)`, JWTs (replaced by their claims, with `iat`/`nbf`/`exp`/`jti`/uids masked), certificates in PEM,
//! the server's own URL and address, the JWKS key material, the webhook URL's backend segment, numbers inside
//! "resource version" messages, and the `deployment.kubernetes.io/revision` annotation (written asynchronously by
//! the deployment controller, which kube-sim does not run).
//!
//! # The known differences
//!
//! `tests/kube_differential/known_differences.json` lists every interaction whose answers differ, with its reason
//! (mirrored in docs/kube-sim.md, "Differences from kube-apiserver"). The test fails when an interaction differs
//! and is not listed, when a listed one no longer differs, or when the doc misses a listed id. `KUBE_DIFF_WRITE=FILE`
//! writes the differences found (with the old reasons kept) to FILE for updating the list. Without the real
//! server's binaries the corpus still runs against kube-sim alone (nothing is compared) and the test says why.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use podid_testkit::real_kube::skip_unless_available;
use podid_testkit::tools::report;
use podid_testkit::{Backend, KubeBackend};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The corpus folder.
const CORPUS_DIR: &str = "tests/kube_differential";
/// Polled `before` conditions and namespace set-up give up after this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Between polls of a `before` condition.
const SETTLE_POLL: Duration = Duration::from_millis(50);
/// A control step (not an interaction: not compared or counted): forget the history before now.
const COMPACT: &str = "COMPACT";
/// Differing paths shown per interaction in the report.
const SHOWN_PATHS: usize = 12;
/// Keys whose values are server-chosen (ids, versions, times, addresses) and so masked on both sides.
const MASKED_KEYS: [&str; 15] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "time",
    "lastTransitionTime",
    "lastUpdateTime",
    "lastProbeTime",
    "lastHeartbeatTime",
    "startTime",
    "expirationTimestamp",
    "clusterIP",
    "clusterIPs",
    "serverAddress",
    "continue",
];
/// JWT claims that differ on every mint.
const MASKED_CLAIMS: [&str; 4] = ["iat", "nbf", "exp", "jti"];
/// The user extra naming the credential used.
const CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";
/// The admin identities: the real server's client certificate (`kubernetes-admin`) and kube-sim's admin token.
const ADMIN_NAMES: [&str; 2] = ["kubernetes-admin", "kube-sim-admin"];
/// Annotations controllers write asynchronously (kube-sim runs no such controller).
const MASKED_ANNOTATIONS: [&str; 1] = ["deployment.kubernetes.io/revision"];

// === the corpus ===

#[derive(Deserialize)]
struct TopicFile {
    topic: String,
    interactions: Vec<Interaction>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Interaction {
    id: String,
    #[serde(default = "admin", rename = "as")]
    identity: String,
    method: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    body_text: Option<String>,
    #[serde(default)]
    body_crd: Option<String>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
    #[serde(default)]
    wait_ms: u64,
    #[serde(default)]
    before: Option<Before>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    why: Option<String>,
    #[serde(default)]
    only: Option<Only>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Before {
    path: String,
    status: u16,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Only {
    path: String,
    key: String,
    values: Vec<String>,
}

fn admin() -> String {
    "admin".into()
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KnownDifference {
    /// An interaction's id, or `global/NAME` for a difference every interaction may show.
    id: String,
    /// `to fix` (kube-sim is wrong) or `kept` (on purpose).
    verdict: String,
    reason: String,
    /// Global differences only: the differing paths they explain (`*` matches within one segment, a `**`
    /// segment any number of segments; `(only real)`/`(only sim)` name a member one side lacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
}

/// The global difference that drops the real server's `Update` entries of managedFields (kube-sim records only
/// `Apply` managers), so the `Apply` ones are still compared.
const UPDATE_MANAGERS: &str = "global/update-managers-not-recorded";

/// Whether `path` (a differing JSON pointer, maybe with a ` (only ...)` suffix) matches `pattern`.
fn path_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let s: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    segments_match(&p, &s)
}

fn segments_match(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len()).any(|i| segments_match(rest, &s[i..])),
        Some((first, rest)) => {
            !s.is_empty()
                && glob(first.as_bytes(), s[0].as_bytes())
                && segments_match(rest, &s[1..])
        }
    }
}

/// `*` matches any run of characters.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// Drops managedFields entries whose operation is `Update`; how many went.
fn drop_update_managers(v: &mut Value) -> usize {
    let mut n = 0;
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(mf)) = o.get_mut("managedFields") {
                let before = mf.len();
                mf.retain(|e| e["operation"] != "Update");
                n += before - mf.len();
                if mf.is_empty() {
                    o.remove("managedFields");
                }
            }
            for x in o.values_mut() {
                n += drop_update_managers(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| n += drop_update_managers(x)),
        _ => {}
    }
    n
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS_DIR)
}

fn load_corpus() -> Vec<TopicFile> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().as_bytes()[0].is_ascii_digit())
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read corpus file");
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("corpus file {}: {e}", p.display()))
        })
        .collect()
}

fn load_known() -> Vec<KnownDifference> {
    let text = std::fs::read_to_string(corpus_dir().join("known_differences.json"))
        .expect("known_differences.json");
    serde_json::from_str(&text).expect("known_differences.json parses")
}

// === the webhook the corpus registers ===

/// An HTTPS admission webhook on loopback: `/<backend>/mutate` adds a label and an annotation to pods and denies
/// pods labelled `deny=yes`; every review received is kept per backend for `WEBHOOK_LOG`.
struct Webhook {
    url: String,
    ca_b64: String,
    reviews: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve_webhook() -> Webhook {
    use base64::Engine as _;
    let ca = sim_tls::Ca::generate("podid-differential-webhook-ca").expect("webhook CA");
    let cert = ca
        .issue("webhook", &["127.0.0.1".into()])
        .expect("webhook cert");
    let acceptor = tokio_rustls::TlsAcceptor::from(sim_tls::server_config(&cert).expect("tls"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook");
    let addr = listener.local_addr().expect("webhook address");
    let reviews: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let kept = reviews.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                _ = &mut stopped => return,
            };
            let (acceptor, kept) = (acceptor.clone(), kept.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let backend =
                                req.uri().path().split('/').nth(1).unwrap_or("").to_string();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let review: Value =
                                serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let answer = admission_answer(&review);
                            kept.lock()
                                .expect("reviews")
                                .entry(backend)
                                .or_default()
                                .push(review);
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .expect("response"),
                            )
                        }
                    });
                // The real API server offers HTTP/2 (ALPN), kube-sim HTTP/1.1: serve both.
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });
    Webhook {
        url: format!("https://{addr}"),
        ca_b64: base64::engine::general_purpose::STANDARD.encode(&ca.cert_pem),
        reviews,
        _stop: stop,
    }
}

/// The webhook's decision for one AdmissionReview.
fn admission_answer(review: &Value) -> Value {
    use base64::Engine as _;
    let uid = review["request"]["uid"].clone();
    let obj = &review["request"]["object"];
    let response = if obj["metadata"]["labels"]["deny"] == "yes" {
        json!({"uid": uid, "allowed": false,
               "status": {"code": 403, "reason": "Forbidden", "message": "pods labelled deny=yes are refused by the differential webhook"}})
    } else {
        let mut ops = Vec::new();
        if obj["metadata"]["labels"].is_null() {
            ops.push(json!({"op": "add", "path": "/metadata/labels", "value": {}}));
        }
        ops.push(json!({"op": "add", "path": "/metadata/labels/webhook", "value": "seen"}));
        if obj["metadata"]["annotations"].is_null() {
            ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
        }
        ops.push(json!({"op": "add", "path": "/metadata/annotations/differential~1mutated", "value": "true"}));
        let patch = base64::engine::general_purpose::STANDARD.encode(Value::from(ops).to_string());
        json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch,
               "warnings": ["mutated by the differential webhook"]})
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

// === one backend ===

/// One running backend and what the corpus needs of it.
struct Side {
    backend: Backend,
    kube: KubeBackend,
    dir: tempfile::TempDir,
    admin: kube::Client,
    anonymous: kube::Client,
    /// Clients of service accounts (`sa:NS:NAME`), made on first use.
    accounts: HashMap<String, kube::Client>,
    vars: HashMap<String, String>,
}

/// One answer.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    content_type: String,
    warnings: Vec<String>,
    body: Value,
}

impl Side {
    async fn start(backend: Backend) -> anyhow::Result<Side> {
        let dir = tempfile::tempdir()?;
        let kube = match backend {
            Backend::Sim => KubeBackend::Sim(
                kube_sim::start(kube_sim::Config {
                    dir: Some(dir.path().join("kube")),
                    ..kube_sim::Config::default()
                })
                .await?,
            ),
            Backend::Real => KubeBackend::start_real().await?,
        };
        let kubeconfig = kube.kubeconfig().expect("kubeconfig").to_path_buf();
        let admin = podid_testkit::kube_backend::client_for(&kubeconfig).await?;
        let anon_cfg = write_kubeconfig(dir.path(), "anonymous", &kube, json!({}))?;
        let anonymous = podid_testkit::kube_backend::client_for(&anon_cfg).await?;
        Ok(Side {
            backend,
            kube,
            dir,
            admin,
            anonymous,
            accounts: HashMap::new(),
            vars: HashMap::new(),
        })
    }

    fn kubeconfig(&self) -> PathBuf {
        self.kube.kubeconfig().expect("kubeconfig").to_path_buf()
    }

    async fn client(&mut self, identity: &str) -> anyhow::Result<kube::Client> {
        match identity {
            "admin" => Ok(self.admin.clone()),
            "anonymous" => Ok(self.anonymous.clone()),
            sa if sa.starts_with("sa:") => {
                if let Some(c) = self.accounts.get(sa) {
                    return Ok(c.clone());
                }
                let mut parts = sa.splitn(3, ':').skip(1);
                let (ns, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let ns = self.subst_str(ns);
                let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                 "spec": {"expirationSeconds": 3600}});
                let a = self
                    .send_raw(
                        &self.admin.clone(),
                        "POST",
                        &format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}/token"),
                        &[("content-type".into(), "application/json".into())],
                        req.to_string().into_bytes(),
                    )
                    .await?;
                let token = a.body["status"]["token"]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("no token for {sa}: {}", a.body))?
                    .to_string();
                let file = sa.replace(':', "-");
                let cfg =
                    write_kubeconfig(self.dir.path(), &file, &self.kube, json!({"token": token}))?;
                let c = podid_testkit::kube_backend::client_for(&cfg).await?;
                self.accounts.insert(sa.to_string(), c.clone());
                Ok(c)
            }
            other => anyhow::bail!("unknown identity {other}"),
        }
    }

    fn subst_str(&self, s: &str) -> String {
        if !s.contains('{') {
            return s.to_string();
        }
        let mut out = s.to_string();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    fn subst(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.subst_str(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.subst(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (self.subst_str(k), self.subst(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    async fn send_raw(
        &self,
        client: &kube::Client,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let mut b = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let req = b.body(kube::client::Body::from(body))?;
        let resp = client.send(req).await?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect();
        let is_watch = path.contains("watch=1") || path.contains("watch=true");
        let bytes = resp.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let body = if is_watch && status == 200 {
            let events: Vec<Value> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or_else(|_| json!({"text": l})))
                .collect();
            json!({"events": events})
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!({"text": text.trim()}))
        };
        Ok(Answer {
            status,
            content_type,
            warnings,
            body,
        })
    }

    /// Sends one interaction; its captures are recorded.
    async fn run(&mut self, it: &Interaction, webhook: &Webhook) -> Answer {
        if it.wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(it.wait_ms)).await;
        }
        if let Some(before) = &it.before {
            let path = self.subst_str(&before.path);
            let start = Instant::now();
            loop {
                let a = self
                    .send_raw(&self.admin.clone(), "GET", &path, &[], Vec::new())
                    .await;
                if a.as_ref().is_ok_and(|a| a.status == before.status)
                    || start.elapsed() > SETTLE_TIMEOUT
                {
                    break;
                }
                tokio::time::sleep(SETTLE_POLL).await;
            }
        }
        let answer = match it.method.as_str() {
            "KUBECTL" => self.kubectl(it).await,
            COMPACT => self.compact().await,
            "WEBHOOK_LOG" => {
                let got = webhook
                    .reviews
                    .lock()
                    .expect("reviews")
                    .remove(&self.backend.to_string())
                    .unwrap_or_default();
                Answer {
                    status: 200,
                    content_type: "application/json".into(),
                    warnings: Vec::new(),
                    body: json!({"reviews": got}),
                }
            }
            method => {
                let path = self.subst_str(&it.path);
                let headers: Vec<(String, String)> = it
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), self.subst_str(v)))
                    .collect();
                let mut headers = headers;
                let body = if let Some(plural) = &it.body_crd {
                    let crd = podid_k8s::crds()
                        .into_iter()
                        .find(|c| c.spec.names.plural == *plural)
                        .unwrap_or_else(|| panic!("{}: no CRD {plural}", it.id));
                    serde_json::to_vec(&crd).expect("crd json")
                } else if let Some(t) = &it.body_text {
                    self.subst_str(t).into_bytes()
                } else if let Some(b) = &it.body {
                    serde_json::to_vec(&self.subst(b)).expect("body")
                } else {
                    Vec::new()
                };
                if !body.is_empty()
                    && !headers
                        .iter()
                        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                let client = match self.client(&it.identity).await {
                    Ok(c) => c,
                    Err(e) => return failed(&format!("identity {}: {e:#}", it.identity)),
                };
                match self.send_raw(&client, method, &path, &headers, body).await {
                    Ok(a) => a,
                    Err(e) => failed(&format!("{e:#}")),
                }
            }
        };
        for (var, pointer) in &it.capture {
            let v = match answer.body.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            self.vars.insert(var.clone(), v);
        }
        answer
    }

    /// Forgets the history before now: etcd's compaction at its current revision (through its loopback JSON
    /// gateway, found in kube-apiserver's `--etcd-servers`) on the real server, `/sim/v1/compact` on kube-sim.
    async fn compact(&self) -> Answer {
        let outcome = match &self.kube {
            KubeBackend::Sim(_) => self
                .send_raw(&self.admin, "POST", "/sim/v1/compact", &[], Vec::new())
                .await
                .map(|a| a.status == 200),
            KubeBackend::Real(real) => compact_etcd(real).await,
        };
        match outcome {
            Ok(true) => Answer {
                status: 200,
                content_type: String::new(),
                warnings: Vec::new(),
                body: json!({"compacted": true}),
            },
            Ok(false) => failed("compaction refused"),
            Err(e) => failed(&format!("compaction: {e:#}")),
        }
    }

    async fn kubectl(&self, it: &Interaction) -> Answer {
        let Some(kubectl) = podid_testkit::tools::find_kubectl() else {
            return Answer {
                status: 0,
                content_type: String::new(),
                warnings: Vec::new(),
                body: json!({"skipped": "kubectl is not installed"}),
            };
        };
        let mut cmd = std::process::Command::new(kubectl);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("KUBECACHEDIR", self.dir.path().join("kubectl-cache"))
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()));
        for a in &it.args {
            cmd.arg(self.subst_str(a));
        }
        let stdin = it.stdin.as_ref().map(|s| self.subst_str(s));
        let out = tokio::task::spawn_blocking(move || {
            podid_testkit::tools::output_with_stdin(cmd, stdin.as_deref())
        })
        .await
        .expect("kubectl thread");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let body = match serde_json::from_str::<Value>(&stdout) {
            Ok(v) => json!({"json": v, "stderr": text_lines(&stderr)}),
            Err(_) => json!({"stdout": text_lines(&stdout), "stderr": text_lines(&stderr)}),
        };
        Answer {
            status: out.status.code().unwrap_or(-1) as u16,
            content_type: String::new(),
            warnings: Vec::new(),
            body,
        }
    }
}

/// Compacts the real server's etcd at its current revision.
async fn compact_etcd(real: &podid_testkit::real_kube::RealKube) -> anyhow::Result<bool> {
    let apiserver = real
        .pids()
        .get(1)
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no kube-apiserver"))?;
    let cmdline = std::fs::read(format!("/proc/{apiserver}/cmdline"))?;
    let etcd = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .find_map(|a| a.strip_prefix("--etcd-servers=").map(String::from))
        .ok_or_else(|| anyhow::anyhow!("kube-apiserver has no --etcd-servers"))?;
    anyhow::ensure!(
        etcd.starts_with("http://127.0.0.1:"),
        "etcd is not on loopback: {etcd}"
    );
    let (code, status) = podid_testkit::http::try_http(
        "POST",
        &format!("{etcd}/v3/maintenance/status"),
        Some(&json!({})),
    )
    .await?;
    anyhow::ensure!(code == 200, "etcd status: {code} {status}");
    let status: Value = serde_json::from_str(&status)?;
    let revision = status["header"]["revision"].clone();
    let (code, body) = podid_testkit::http::try_http(
        "POST",
        &format!("{etcd}/v3/kv/compaction"),
        Some(&json!({"revision": revision, "physical": true})),
    )
    .await?;
    anyhow::ensure!(code == 200, "etcd compaction: {code} {body}");
    Ok(true)
}

fn failed(msg: &str) -> Answer {
    Answer {
        status: 0,
        content_type: String::new(),
        warnings: Vec::new(),
        body: json!({"client error": msg}),
    }
}

/// kubectl's output as lines of single-spaced words, ages masked.
fn text_lines(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| {
            l.split_whitespace()
                .map(|w| if is_age(w) { "<age>" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// `5s`, `3m2s`, `10h`, `2d`, `<invalid>`.
fn is_age(w: &str) -> bool {
    w == "<invalid>"
        || (w.len() >= 2
            && w.as_bytes()[0].is_ascii_digit()
            && w.as_bytes()[w.len() - 1].is_ascii_alphabetic()
            && w.chars().all(|c| c.is_ascii_digit() || "smhdy".contains(c)))
}

/// A kubeconfig for `kube`'s server and CA with `user` as credentials.
fn write_kubeconfig(
    dir: &Path,
    name: &str,
    kube: &KubeBackend,
    user: Value,
) -> anyhow::Result<PathBuf> {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(kube.ca_pem().unwrap_or_default());
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": kube.url(), "certificate-authority-data": ca}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    });
    let path = dir.join(format!("{name}.kubeconfig"));
    sim_tls::write_private(&path, cfg.to_string().as_bytes())?;
    Ok(path)
}

/// Creates `ns` and waits for its `default` ServiceAccount and `kube-root-ca.crt` (both written asynchronously by
/// the real controller manager).
async fn make_namespace(side: &Side, ns: &str) {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let a = side
        .send_raw(
            &side.admin,
            "POST",
            "/api/v1/namespaces",
            &[("content-type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
        .await
        .expect("create namespace");
    assert_eq!(
        a.status, 201,
        "{}: namespace {ns}: {}",
        side.backend, a.body
    );
    for path in [
        format!("/api/v1/namespaces/{ns}/serviceaccounts/default"),
        format!("/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"),
    ] {
        let start = Instant::now();
        loop {
            let a = side
                .send_raw(&side.admin, "GET", &path, &[], Vec::new())
                .await;
            if a.as_ref().is_ok_and(|a| a.status == 200) {
                break;
            }
            assert!(
                start.elapsed() < SETTLE_TIMEOUT,
                "{}: {path} never appeared",
                side.backend
            );
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
}

// === normalisation ===

/// What the normaliser of one side must know.
struct Norm<'a> {
    server: &'a str,
    webhook: &'a str,
}

fn normalise(a: &Answer, it: &Interaction, n: &Norm) -> Value {
    let mut body = a.body.clone();
    norm_value(&mut body, n, "");
    if let Some(only) = &it.only
        && let Some(Value::Array(items)) = body.pointer_mut(&only.path)
    {
        items.retain(|x| {
            x.get(&only.key)
                .and_then(Value::as_str)
                .is_some_and(|k| only.values.iter().any(|v| v == k))
        });
        items.sort_by_key(|x| {
            x.get(&only.key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        });
    }
    let warnings: Vec<Value> = a
        .warnings
        .iter()
        .map(|w| Value::String(norm_string(w, n)))
        .collect();
    let mut out = json!({"status": a.status, "contentType": a.content_type, "warnings": warnings, "body": body});
    for p in &it.ignore {
        remove_pointer(&mut out, p);
    }
    out
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match v.pointer_mut(parent) {
        Some(Value::Object(o)) => {
            o.remove(&last);
        }
        Some(Value::Array(a)) => {
            if last == "*" {
                a.clear();
            } else if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

fn norm_value(v: &mut Value, n: &Norm, key: &str) {
    match v {
        Value::Object(o) => {
            // Names made from generateName.
            if let (Some(Value::String(g)), Some(Value::String(name))) =
                (o.get("generateName").cloned(), o.get("name"))
                && name.starts_with(&g)
                && name.len() > g.len()
            {
                o.insert("name".into(), Value::String(format!("{g}<generated>")));
            }
            // Table date columns.
            if o.get("kind").and_then(Value::as_str) == Some("Table") {
                let dates: Vec<usize> = o
                    .get("columnDefinitions")
                    .and_then(Value::as_array)
                    .map(|cols| {
                        cols.iter()
                            .enumerate()
                            .filter(|(_, c)| c["format"] == "date" || c["name"] == "Age")
                            .map(|(i, _)| i)
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(Value::Array(rows)) = o.get_mut("rows") {
                    for r in rows {
                        if let Some(Value::Array(cells)) = r.get_mut("cells") {
                            for &i in &dates {
                                if let Some(c) = cells.get_mut(i) {
                                    *c = Value::String("<date>".into());
                                }
                            }
                        }
                    }
                }
            }
            // Discovery lists resources in an order no client relies on (the real server's follows registration).
            if o.get("kind").and_then(Value::as_str) == Some("APIResourceList")
                && let Some(Value::Array(rs)) = o.get_mut("resources")
            {
                rs.sort_by_key(|r| r["name"].as_str().unwrap_or("").to_string());
            }
            // JWKS key material.
            if key == "keys" || o.contains_key("kty") {
                for k in ["n", "e", "kid", "x5c"] {
                    if o.contains_key(k) {
                        o.insert(k.into(), Value::String(format!("<{k}>")));
                    }
                }
            }
            // The admin's credential differs by construction (client certificate vs kube-sim's admin token).
            if key == "extra"
                && o.get(CREDENTIAL_ID)
                    .and_then(|v| v.pointer("/0"))
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.starts_with("X509SHA256="))
            {
                o.remove(CREDENTIAL_ID);
            }
            // Annotations written asynchronously by controllers; an object left with none has none.
            if let Some(Value::Object(a)) = o.get_mut("annotations") {
                for m in MASKED_ANNOTATIONS {
                    a.remove(m);
                }
                if a.is_empty() {
                    o.remove("annotations");
                }
            }
            // A CRD's conditions are written by several controllers (names, establishing, API approval) in
            // whichever order they run: conditions are a map keyed by type, compared sorted by it.
            if key == "status"
                && let Some(Value::Array(cs)) = o.get_mut("conditions")
                && cs
                    .iter()
                    .all(|c| c.get("type").is_some_and(Value::is_string))
            {
                cs.sort_by_key(|c| c["type"].as_str().unwrap_or("").to_string());
            }
            // The real server orders the causes of a custom resource's schema violations by Go map iteration
            // (random): causes are sorted, and the message's bracketed list with them.
            if o.get("kind").and_then(Value::as_str) == Some("Status") {
                sort_causes(o);
            }
            for (k, x) in o.iter_mut() {
                if MASKED_KEYS.contains(&k.as_str()) && !x.is_null() && x != "" {
                    *x = Value::String(format!("<{k}>"));
                } else if k == "token" && x.as_str().is_some_and(|t| t.split('.').count() == 3) {
                    *x = jwt_claims(x.as_str().unwrap_or(""), n);
                } else {
                    norm_value(x, n, k);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| norm_value(x, n, key)),
        Value::String(s) => *s = norm_string(s, n),
        _ => {}
    }
}

/// Sorts `details.causes` by field and message, and the `[...]` list of the message in the same order when it is
/// exactly the causes joined.
fn sort_causes(status: &mut serde_json::Map<String, Value>) {
    let Some(Value::Array(causes)) = status.get_mut("details").and_then(|d| d.get_mut("causes"))
    else {
        return;
    };
    let key = |c: &Value| {
        let (f, m) = (
            c["field"].as_str().unwrap_or(""),
            c["message"].as_str().unwrap_or(""),
        );
        if f.is_empty() || m.starts_with(&format!("{f}: ")) {
            m.to_string()
        } else {
            format!("{f}: {m}")
        }
    };
    let mut items: Vec<String> = causes.iter().map(key).collect();
    causes.sort_by_key(|c| (c["field"].as_str().unwrap_or("").to_string(), key(c)));
    if items.len() < 2 {
        return;
    }
    let Some(Value::String(msg)) = status.get_mut("message") else {
        return;
    };
    let Some(open) = msg.find(": [") else {
        return;
    };
    let inner = &msg[open + 3..msg.len().saturating_sub(1)];
    if !msg.ends_with(']')
        || inner.len() != items.iter().map(|i| i.len() + 2).sum::<usize>() - 2
        || !items.iter().all(|i| inner.contains(i.as_str()))
    {
        return;
    }
    items.sort();
    *msg = format!("{}: [{}]", &msg[..open], items.join(", "));
}

/// A JWT replaced by its claims, with what differs per mint masked.
fn jwt_claims(token: &str, n: &Norm) -> Value {
    use base64::Engine as _;
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let Some(Value::Object(mut c)) = claims else {
        return Value::String("<token>".into());
    };
    for k in MASKED_CLAIMS {
        if c.contains_key(k) {
            c.insert(k.into(), Value::String(format!("<{k}>")));
        }
    }
    if let Some(Value::Object(k)) = c.get_mut("kubernetes.io")
        && k.contains_key("warnafter")
    {
        k.insert("warnafter".into(), Value::String("<warnafter>".into()));
    }
    let mut v = json!({"jwt claims": c});
    norm_value(&mut v, n, "");
    v
}

fn norm_string(s: &str, n: &Norm) -> String {
    let mut out = s.replace(n.server, "<server>");
    if !n.webhook.is_empty() {
        out = out.replace(n.webhook, "<webhook>");
    }
    if let Some(host) = n.server.strip_prefix("https://") {
        out = out.replace(host, "<server-address>");
    }
    if out.starts_with("-----BEGIN") {
        return "<pem>".into();
    }
    out = mask_uuids(&out);
    out = mask_suffix(&out, "kube-api-access-", 5);
    for admin in ADMIN_NAMES {
        out = out.replace(admin, "<admin>");
    }
    if out.contains("resource version") || out.contains("ResourceVersion in") {
        out = mask_numbers(&out);
    }
    out
}

/// `prefix` followed by `len` generated lowercase letters or digits: the suffix becomes `<generated>`.
fn mask_suffix(s: &str, prefix: &str, len: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let n = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
        out.push_str(&rest[..i + prefix.len()]);
        if n == len {
            out.push_str("<generated>");
            rest = &after[n..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Every 8-4-4-4-12 hex UUID in `s` becomes `<uid>`.
fn mask_uuids(s: &str) -> String {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    'outer: while i < b.len() {
        if i + 36 <= b.len() && (i == 0 || !b[i - 1].is_ascii_hexdigit()) {
            let mut j = i;
            let mut ok = true;
            for (g, len) in SHAPE.iter().enumerate() {
                if !b[j..j + len].iter().all(u8::is_ascii_hexdigit) {
                    ok = false;
                    break;
                }
                j += len;
                if g < 4 {
                    if b[j] != b'-' {
                        ok = false;
                        break;
                    }
                    j += 1;
                }
            }
            if ok && (j == b.len() || !b[j].is_ascii_hexdigit()) {
                out.push_str("<uid>");
                i = j;
                continue 'outer;
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn mask_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_num = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

/// JSON pointers where `a` and `b` differ.
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(u, v, &p, out),
                    (Some(_), None) => out.push(format!("{p} (only real)")),
                    (None, Some(_)) => out.push(format!("{p} (only sim)")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!("{path} (length {} vs {})", x.len(), y.len()));
            }
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(u, v, &format!("{path}/{i}"), out);
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

fn status_line(v: &Value) -> String {
    let body = &v["body"];
    let mut s = format!("{}", v["status"]);
    if body["kind"] == "Status" {
        s.push_str(&format!(
            " {} {:?}",
            body["reason"].as_str().unwrap_or("-"),
            body["message"].as_str().unwrap_or("")
        ));
    }
    s
}

// === the test ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_sim_answers_the_corpus_as_kube_apiserver_does() {
    let t0 = Instant::now();
    podid_testkit::install_crypto();
    let corpus = load_corpus();
    let known = load_known();
    let total: usize = corpus
        .iter()
        .flat_map(|t| &t.interactions)
        .filter(|it| it.method != COMPACT)
        .count();
    let mut ids = std::collections::HashSet::new();
    for t in &corpus {
        for it in &t.interactions {
            assert!(
                ids.insert(it.id.clone()),
                "duplicate interaction id {}",
                it.id
            );
            assert!(
                it.id.starts_with(&format!("{}/", t.topic)),
                "{} is not in topic {}",
                it.id,
                t.topic
            );
            assert!(
                it.ignore.is_empty() || it.why.as_deref().is_some_and(|w| !w.trim().is_empty()),
                "{}: `ignore` needs a `why`",
                it.id
            );
        }
    }
    for k in &known {
        assert!(
            ids.contains(&k.id)
                || (k.id.starts_with("global/")
                    && (!k.paths.is_empty() || k.id == UPDATE_MANAGERS)),
            "known_differences.json lists {}, which is not in the corpus (or a global difference without paths)",
            k.id
        );
        assert!(
            k.verdict == "to fix" || k.verdict == "kept",
            "{}: verdict must be `to fix` or `kept`, not {:?}",
            k.id,
            k.verdict
        );
        assert!(!k.reason.trim().is_empty(), "{}: no reason", k.id);
    }
    let doc = std::fs::read_to_string(podid_testkit::tools::repo_root().join("docs/kube-sim.md"))
        .expect("docs/kube-sim.md");
    let section = doc
        .split("## Differences from kube-apiserver (differential test)")
        .nth(1)
        .expect("docs/kube-sim.md has the section \"Differences from kube-apiserver (differential test)\"");
    let undocumented: Vec<&str> = known
        .iter()
        .map(|k| k.id.as_str())
        .filter(|id| !section.contains(&format!("`{id}`")))
        .collect();

    let globals: Vec<&KnownDifference> = known
        .iter()
        .filter(|k| k.id.starts_with("global/"))
        .collect();
    let mut global_hits: HashMap<String, usize> = HashMap::new();
    let webhook = serve_webhook().await;
    let (real, sim) = tokio::join!(Side::start(Backend::Real), Side::start(Backend::Sim));
    let mut sim = sim.expect("start kube-sim");
    let mut real = match real {
        Ok(r) => Some(r),
        Err(e)
            if skip_unless_available(
                "kube_differential (the real half; kube-sim alone replays the corpus)",
                &e,
            ) =>
        {
            None
        }
        Err(e) => panic!("real backend: {e:#}"),
    };
    let started = t0.elapsed();

    let mut report_text = String::new();
    let mut differing: Vec<(String, String)> = Vec::new();
    let mut equal = 0usize;
    let mut strict_equal = 0usize;
    for topic in &corpus {
        let ns = format!("diff-{}", topic.topic);
        for side in real.iter_mut().chain(std::iter::once(&mut sim)) {
            make_namespace(side, &ns).await;
            side.vars.insert("ns".into(), ns.clone());
            side.vars.insert(
                "webhook_url".into(),
                format!("{}/{}", webhook.url, side.backend),
            );
            side.vars
                .insert("webhook_ca".into(), webhook.ca_b64.clone());
            side.vars
                .insert("closed_url".into(), "https://127.0.0.1:1/closed".into());
        }
        for it in &topic.interactions {
            let Some(r) = real.as_mut() else {
                sim.run(it, &webhook).await;
                continue;
            };
            let (ra, sa) = tokio::join!(r.run(it, &webhook), sim.run(it, &webhook));
            if it.method == COMPACT {
                assert!(
                    ra.status == 200 && sa.status == 200,
                    "{}: real {} sim {}",
                    it.id,
                    ra.body,
                    sa.body
                );
                continue;
            }
            let mut rn = normalise(
                &ra,
                it,
                &Norm {
                    server: r.kube.url(),
                    webhook: &format!("{}/real", webhook.url),
                },
            );
            let sn = normalise(
                &sa,
                it,
                &Norm {
                    server: sim.kube.url(),
                    webhook: &format!("{}/sim", webhook.url),
                },
            );
            let mut global_here = Vec::new();
            if globals.iter().any(|g| g.id == UPDATE_MANAGERS) {
                let mut stripped = rn.clone();
                if drop_update_managers(&mut stripped) > 0 {
                    let mut before = Vec::new();
                    diff(&rn, &sn, "", &mut before);
                    let mut after = Vec::new();
                    diff(&stripped, &sn, "", &mut after);
                    if after.len() < before.len() {
                        global_here.push(UPDATE_MANAGERS.to_string());
                    }
                    rn = stripped;
                }
            }
            let mut paths = Vec::new();
            diff(&rn, &sn, "", &mut paths);
            paths.retain(|p| {
                match globals
                    .iter()
                    .find(|g| g.paths.iter().any(|pat| path_matches(pat, p)))
                {
                    Some(g) => {
                        global_here.push(g.id.clone());
                        false
                    }
                    None => true,
                }
            });
            for g in global_here.iter().cloned() {
                *global_hits.entry(g).or_default() += 1;
            }
            if paths.is_empty() {
                equal += 1;
                if global_here.is_empty() {
                    strict_equal += 1;
                }
                report_text.push_str(&format!("EQUAL {} ({})\n", it.id, status_line(&rn)));
            } else {
                let mut d = format!("DIFF  {}\n", it.id);
                if let Some(note) = &it.note {
                    d.push_str(&format!("      ({note})\n"));
                }
                d.push_str(&format!(
                    "      real: {}\n      sim:  {}\n",
                    status_line(&rn),
                    status_line(&sn)
                ));
                for p in paths.iter().take(SHOWN_PATHS) {
                    let rv = pointer_text(&rn, p);
                    let sv = pointer_text(&sn, p);
                    d.push_str(&format!("      {p}: real {rv} | sim {sv}\n"));
                }
                if paths.len() > SHOWN_PATHS {
                    d.push_str(&format!(
                        "      ... {} more paths\n",
                        paths.len() - SHOWN_PATHS
                    ));
                }
                report_text.push_str(&d);
                differing.push((it.id.clone(), d));
            }
        }
    }
    let elapsed = t0.elapsed();
    if let Some(r) = real.take() {
        r.kube.shutdown().await;
    }
    sim.kube.shutdown().await;
    let Some(()) = (equal + differing.len() == total).then_some(()) else {
        report(&format!(
            "kube differential: kube-sim alone replayed {total} interactions in {elapsed:.1?} (nothing compared)"
        ));
        return;
    };
    let mut globals_text = String::new();
    for g in &globals {
        globals_text.push_str(&format!(
            "GLOBAL {}: in {} interactions\n",
            g.id,
            global_hits.get(&g.id).copied().unwrap_or(0)
        ));
    }
    report_text.push_str(&globals_text);
    let report_path = podid_testkit::tools::repo_root().join("target/kube-differential-report.txt");
    let _ = std::fs::write(&report_path, &report_text);
    report(globals_text.trim_end());
    if let Ok(out) = std::env::var("KUBE_DIFF_WRITE") {
        let old: HashMap<&str, &KnownDifference> =
            known.iter().map(|k| (k.id.as_str(), k)).collect();
        let list: Vec<KnownDifference> = globals
            .iter()
            .map(|g| (*g).clone())
            .chain(differing.iter().map(|(id, _)| {
                old.get(id.as_str())
                    .map(|k| (*k).clone())
                    .unwrap_or(KnownDifference {
                        id: id.clone(),
                        verdict: "to fix".into(),
                        reason: "TODO".into(),
                        paths: Vec::new(),
                    })
            }))
            .collect();
        std::fs::write(
            &out,
            serde_json::to_string_pretty(&list).expect("json") + "\n",
        )
        .expect("write KUBE_DIFF_WRITE");
    }
    let listed: std::collections::HashSet<&str> = known.iter().map(|k| k.id.as_str()).collect();
    let unlisted: Vec<&(String, String)> = differing
        .iter()
        .filter(|(id, _)| !listed.contains(id.as_str()))
        .collect();
    let differing_ids: std::collections::HashSet<&str> =
        differing.iter().map(|(id, _)| id.as_str()).collect();
    let stale: Vec<&str> = known
        .iter()
        .map(|k| k.id.as_str())
        .filter(|id| !differing_ids.contains(id) && !global_hits.contains_key(*id))
        .collect();
    report(&format!(
        "kube differential: {total} interactions, {equal} equal ({strict_equal} without any global difference), {} differ ({} listed in known_differences.json: {} global, {} to fix); both backends up in {started:.1?}, whole run {elapsed:.1?}; report in {}",
        differing.len(),
        known.len(),
        globals.len(),
        known.iter().filter(|k| k.verdict == "to fix").count(),
        report_path.display()
    ));
    let mut msg = String::new();
    for (_, d) in &unlisted {
        msg.push_str(d);
    }
    assert!(
        undocumented.is_empty(),
        "docs/kube-sim.md's differences section does not list {undocumented:?}"
    );
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "{} interactions differ and are not in known_differences.json:\n{msg}\nlisted but now equal (remove them from the list and docs/kube-sim.md): {stale:?}",
        unlisted.len()
    );
}

fn pointer_text(v: &Value, p: &str) -> String {
    let p = p.split(" (").next().unwrap_or(p);
    let s = v
        .pointer(p)
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into());
    if s.chars().count() > 160 {
        format!("{}...", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}
