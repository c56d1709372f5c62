//! `podid doctor` against an in-process kube-sim (plain HTTP on loopback): the objects are created through the
//! API, the doctor reads them through its kubeconfig, as a user runs it. The agent's view comes from a tiny local
//! HTTP server serving a canned `/debug/pod` answer (the real agent's view is tested in crates/podid/tests/agent).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use podid_doctor::{AgentPart, DoctorArgs, EXIT_REFUSED, EXIT_TOKEN, Report, examine};
use podid_k8s::{AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NODE: &str = "node-1";

struct Sim {
    _handle: kube_sim::Handle,
    _dir: tempfile::TempDir,
    client: kube::Client,
    kubeconfig: PathBuf,
}

async fn sim() -> Sim {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let handle = kube_sim::start(kube_sim::Config {
        tls: false,
        dir: Some(dir.path().to_path_buf()),
        ..kube_sim::Config::default()
    })
    .await
    .expect("kube-sim");
    let kubeconfig = handle.kubeconfig.clone().expect("kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("read kubeconfig");
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config"),
    )
    .expect("client");
    let crds: Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = Api::all(client.clone());
    for crd in podid_k8s::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("create CRD");
    }
    for ns in ["app", "web"] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &n)
            .await
            .expect("create namespace");
    }
    Sim {
        _handle: handle,
        _dir: dir,
        client,
        kubeconfig,
    }
}

fn client_id(name: &str) -> String {
    format!("00000000-0000-4000-8000-{:0>12}", name.replace('-', ""))
}

impl Sim {
    async fn identity(&self, ns: &str, name: &str) -> AzureIdentity {
        let o: AzureIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": 0, "clientID": client_id(name),
                     "resourceID": format!("/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")}}))
        .expect("identity");
        Api::<AzureIdentity>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &o)
            .await
            .expect("create identity")
    }

    async fn binding(&self, ns: &str, name: &str, identity: &str, selector: &str) {
        let o: AzureIdentityBinding = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"azureIdentity": identity, "selector": selector}}))
        .expect("binding");
        Api::<AzureIdentityBinding>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &o)
            .await
            .expect("create binding");
    }

    /// A Running pod on NODE with `ip`.
    async fn pod(&self, ns: &str, name: &str, labels: Value, ip: &str) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "app"}]}}))
        .expect("pod");
        api.create(&PostParams::default(), &p)
            .await
            .expect("create pod");
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}),
            ),
        )
        .await
        .expect("pod status");
    }

    /// An AAI as the controller writes it.
    async fn aai(&self, pod_ns: &str, pod: &str, identity: &AzureIdentity, status: &str) -> String {
        let idname = identity.metadata.name.clone().unwrap_or_default();
        let name = format!("{pod}-{pod_ns}-{idname}");
        let mut idv = serde_json::to_value(identity).expect("identity json");
        idv["metadata"]["managedFields"] = Value::Null;
        let o: AzureAssignedIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureAssignedIdentity",
            "metadata": {"name": name, "namespace": "default", "labels": {"nodename": NODE}},
            "spec": {"azureIdentityRef": idv, "pod": pod, "podNamespace": pod_ns, "nodename": NODE},
            "status": {"status": status}}))
        .expect("aai");
        Api::<AzureAssignedIdentity>::namespaced(self.client.clone(), "default")
            .create(&PostParams::default(), &o)
            .await
            .expect("create aai");
        name
    }

    fn args(&self, extra: &[&str]) -> DoctorArgs {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: DoctorArgs,
        }
        let kc = format!("--kubeconfig={}", self.kubeconfig.display());
        let mut v = vec!["podid-doctor", &kc];
        v.extend_from_slice(extra);
        Cli::try_parse_from(v).expect("doctor args").a
    }

    async fn doctor(&self, extra: &[&str]) -> Report {
        self.doctor_with(extra, &BTreeMap::new()).await
    }

    async fn doctor_with(&self, extra: &[&str], agents: &BTreeMap<String, String>) -> Report {
        examine(&self.args(extra), agents).await.expect("diagnosis")
    }
}

/// (target, flags, exit code, reason code, words in the text).
type Case<'a> = (&'a str, &'a [&'a str], i32, Option<&'a str>, &'a [&'a str]);

fn code(r: &Report) -> Option<&'static str> {
    r.diagnosis.verdict.reason().map(|x| x.code())
}

/// The cases of the issue, one cluster: each pod shows one reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_from_the_api_objects() {
    let s = sim().await;
    let id_a = s.identity("app", "id-a").await;
    let id_c = s.identity("app", "id-c").await;
    s.binding("app", "b-a", "id-a", "sel-a").await;
    s.binding("app", "b-c", "id-c", "sel-c").await;
    s.binding("app", "b-ghost", "id-ghost", "sel-ghost").await;
    s.pod(
        "app",
        "bound",
        json!({"aadpodidbinding": "sel-a"}),
        "10.1.0.2",
    )
    .await;
    s.aai("app", "bound", &id_a, "Assigned").await;
    s.pod("app", "plain", json!({"app": "x"}), "10.1.0.3").await;
    s.pod(
        "app",
        "nobinding",
        json!({"aadpodidbinding": "sel-zzz"}),
        "10.1.0.4",
    )
    .await;
    s.pod(
        "app",
        "ghost",
        json!({"aadpodidbinding": "sel-ghost"}),
        "10.1.0.5",
    )
    .await;
    s.pod(
        "app",
        "created",
        json!({"aadpodidbinding": "sel-c"}),
        "10.1.0.6",
    )
    .await;
    s.aai("app", "created", &id_c, "Created").await;
    s.pod(
        "web",
        "stranger",
        json!({"aadpodidbinding": "sel-a"}),
        "10.1.0.7",
    )
    .await;

    // Bound and Assigned: exit 0, the identity and its client ID named.
    let r = s.doctor(&["app/bound"]).await;
    assert_eq!(r.exit_code(), EXIT_TOKEN, "{}", r.text());
    let t = r.text();
    assert!(t.contains("VERDICT: OK"), "{t}");
    assert!(t.contains(&client_id("id-a")), "{t}");
    assert!(t.contains("default/bound-app-id-a: Assigned"), "{t}");
    assert!(
        t.contains("agent view: not available (no agent URL for node node-1"),
        "{t}"
    );
    let v: Value = serde_json::from_str(&r.json().expect("json")).expect("parse");
    assert_eq!(v["outcome"]["exit_code"], 0);
    assert_eq!(
        v["diagnosis"]["verdict"]["chosen"]["client_id"],
        client_id("id-a")
    );
    assert_eq!(v["agent"]["status"], "unavailable");

    // (pod, flags, exit, code, words in the text)
    let cases: &[Case] = &[
        (
            "app/plain",
            &[],
            EXIT_REFUSED,
            Some("no_label"),
            &[
                "no aadpodidbinding label",
                "add label aadpodidbinding=<selector>",
                "sel-a",
            ],
        ),
        (
            "app/nobinding",
            &[],
            EXIT_REFUSED,
            Some("no_binding"),
            &["no AzureIdentityBinding in any namespace has selector sel-zzz"],
        ),
        (
            "app/ghost",
            &[],
            EXIT_REFUSED,
            Some("identity_missing"),
            &[
                "binding app/b-ghost references AzureIdentity id-ghost, which does not exist",
                "MISSING",
            ],
        ),
        (
            "app/created",
            &[],
            EXIT_REFUSED,
            Some("assigned_created"),
            &["still Created", "podid controller logs"],
        ),
        (
            "app/bound",
            &["--client-id", "00000000-0000-4000-8000-0000000000ff"],
            EXIT_REFUSED,
            Some("requested_not_bound"),
            &["is not bound to this pod", "it may ask for"],
        ),
        (
            "app/bound",
            &["--client-id", &client_id("id-a").to_uppercase()],
            EXIT_TOKEN,
            None,
            &["VERDICT: OK"],
        ),
        // Non-namespaced: a pod of another namespace with the selector is bound (the upstream risk); the AAI is
        // what it waits for.
        (
            "web/stranger",
            &[],
            EXIT_REFUSED,
            Some("not_assigned_yet"),
            &["expected default/stranger-web-id-a"],
        ),
        // Namespaced: the binding in `app` does not count for a pod in `web`.
        (
            "web/stranger",
            &["--forceNamespaced"],
            EXIT_REFUSED,
            Some("binding_out_of_scope"),
            &[
                "outside the pod's namespace web",
                "would match only without namespaced",
            ],
        ),
        // Managed mode: bindings in the pod's namespace decide, no AAI needed.
        (
            "app/ghost",
            &["--mode", "managed"],
            EXIT_REFUSED,
            Some("identity_missing"),
            &[],
        ),
        (
            "app/created",
            &["--mode", "managed"],
            EXIT_TOKEN,
            None,
            &[
                "bound in managed mode",
                "AzureAssignedIdentities are not used in managed mode",
            ],
        ),
        (
            "web/stranger",
            &["--mode", "managed"],
            EXIT_REFUSED,
            Some("binding_out_of_scope"),
            &[],
        ),
    ];
    for (target, flags, exit, want, words) in cases {
        let mut argv = vec![*target];
        argv.extend_from_slice(flags);
        let r = s.doctor(&argv).await;
        let t = r.text();
        assert_eq!(r.exit_code(), *exit, "{target} {flags:?}\n{t}");
        assert_eq!(code(&r), *want, "{target} {flags:?}\n{t}");
        for w in *words {
            assert!(t.contains(w), "{target} {flags:?}: {w:?} missing in\n{t}");
        }
        if *exit == EXIT_REFUSED {
            assert!(t.contains("VERDICT: REFUSED"), "{t}");
            assert!(t.contains("what to do:"), "{t}");
        }
    }

    // Errors are errors (the binary exits 1), not verdicts.
    let e = examine(&s.args(&["app/nope"]), &BTreeMap::new())
        .await
        .expect_err("missing pod");
    assert_eq!(e.to_string(), "pod app/nope not found");
    let e = examine(&s.args(&["a/b/c"]), &BTreeMap::new())
        .await
        .expect_err("bad target");
    assert!(e.to_string().contains("NAMESPACE/POD"), "{e}");
}

/// A one-route HTTP server answering `/debug/pod` with `status` and `body`; records the request lines.
async fn fake_agent(status: u16, body: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Ok(mut v) = log.lock() {
                v.push(head.lines().next().unwrap_or("").to_string());
            }
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

fn view(ip: &str, token: bool, uid: &str) -> String {
    let verdict = if token {
        json!({"token": true, "identities": [{"namespace": "app", "name": "id-a", "client_id": client_id("id-a"), "id_type": 0, "state": "Assigned"}],
               "message": "a token request would succeed now"})
    } else {
        json!({"token": false, "identities": [], "code": "assigned_created", "message": "AzureAssignedIdentity default/x is still Created", "hint": "check podid controller logs"})
    };
    json!({"ip": ip, "node": NODE, "mode": "managed", "force_namespaced": true, "mic_namespace": "default",
           "redirect": "Active", "synced": true,
           "pod": {"lookup": "found", "namespace": "app", "name": "bound", "uid": uid},
           "verdict": verdict})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_view() {
    let s = sim().await;
    let id_a = s.identity("app", "id-a").await;
    s.binding("app", "b-a", "id-a", "sel-a").await;
    s.pod(
        "app",
        "bound",
        json!({"aadpodidbinding": "sel-a"}),
        "10.1.0.2",
    )
    .await;
    s.aai("app", "bound", &id_a, "Assigned").await;
    let uid = Api::<Pod>::namespaced(s.client.clone(), "app")
        .get("bound")
        .await
        .expect("pod")
        .metadata
        .uid
        .unwrap_or_default();

    // The agent agrees; its mode and namespaced setting are used (no --mode given); the caller's map names it.
    let (url, seen) = fake_agent(200, view("10.1.0.2", true, &uid)).await;
    let agents: BTreeMap<String, String> = [(NODE.to_string(), format!("{url}/healthz"))].into();
    let r = s
        .doctor_with(&["app/bound", "--client-id", "abc"], &agents)
        .await;
    assert!(
        matches!(r.agent, AgentPart::Available { .. }),
        "{}",
        r.text()
    );
    assert_eq!(r.settings.mode.as_str(), "managed");
    assert!(r.settings.force_namespaced);
    let line = seen.lock().expect("log")[0].clone();
    assert_eq!(line, "GET /debug/pod?ip=10.1.0.2&client_id=abc HTTP/1.1");
    let r = s.doctor_with(&["app/bound"], &agents).await;
    let t = r.text();
    assert_eq!(r.exit_code(), EXIT_TOKEN, "{t}");
    assert!(t.contains("pod found (app/bound"), "{t}");
    assert!(t.contains("mode managed (from the agent)"), "{t}");
    assert!(t.contains("would serve app/id-a"), "{t}");

    // The objects say yes, the agent says no: refused, both shown.
    let (url, _) = fake_agent(200, view("10.1.0.2", false, &uid)).await;
    let r = s
        .doctor(&[
            "app/bound",
            "--mode",
            "standard",
            "--forceNamespaced=false",
            "--agent",
            &format!("{NODE}={url}"),
        ])
        .await;
    let t = r.text();
    assert_eq!(r.exit_code(), EXIT_REFUSED, "{t}");
    assert!(
        t.contains("VERDICT: REFUSED - the agent refuses now, although the API objects allow it"),
        "{t}"
    );
    assert!(t.contains("agent runs in managed mode"), "{t}");
    assert_eq!(r.outcome.decided_by, "agent");

    // Another uid in the agent's index: a stale IP, noted.
    let (url, _) = fake_agent(200, view("10.1.0.2", true, "other-uid")).await;
    let r = s.doctor(&["app/bound", "--agent-url", &url]).await;
    assert!(r.text().contains("stale or reused IP"), "{}", r.text());

    // An agent without the view, one that refuses the caller, and none at all: diagnosed from the objects.
    let (url, _) = fake_agent(404, "404 page not found\n".into()).await;
    let r = s.doctor(&["app/bound", "--agent-url", &url]).await;
    assert_eq!(r.exit_code(), EXIT_TOKEN);
    assert!(
        r.text().contains("agent view: not available"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("--debug-view=off"), "{}", r.text());
    let (url, _) = fake_agent(403, "the debug view answers loopback callers only".into()).await;
    let r = s.doctor(&["app/bound", "--agent-url", &url]).await;
    assert!(
        r.text()
            .contains("answered 403: the debug view answers loopback callers only"),
        "{}",
        r.text()
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let r = s
        .doctor(&[
            "app/bound",
            "--agent-url",
            &format!("http://127.0.0.1:{closed}"),
        ])
        .await;
    assert_eq!(r.exit_code(), EXIT_TOKEN);
    let t = r.text();
    assert!(
        t.contains("agent view: not available") && t.contains("unreachable"),
        "{t}"
    );
    assert!(t.contains("mode standard (default)"), "{t}");
}
