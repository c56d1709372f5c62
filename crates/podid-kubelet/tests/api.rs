//! podid-kubelet against each Kubernetes backend (kube-sim, and a real kube-apiserver with etcd and
//! kube-controller-manager: every case runs on both, `<case>::sim` and `<case>::real`), over HTTPS with the
//! admin kubeconfig: the kubelet sees and changes the cluster only through the public API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use podid_testkit::{Backend, KubeBackend};
use serde_json::{Value, json};

podid_testkit::both_backends!(
    pod_runs_through_pods_status_with_a_bound_token,
    config_maps_secrets_and_downward_api_are_written,
    nodes_without_a_cidr_get_one_and_pods_wait_for_their_node,
    a_deleted_pod_loses_its_files_and_address,
    a_restarted_kubelet_keeps_addresses_and_clears_stale_directories,
    tokens_are_rewritten_when_due_and_not_before,
);

/// How long anything the kubelet does may take.
const WAIT: Duration = Duration::from_secs(10);

struct Cluster {
    kube: KubeBackend,
    client: kube::Client,
    /// kube-sim's files and the kubelet's (`<tmp>/kubelet`).
    tmp: tempfile::TempDir,
}

impl Cluster {
    /// The API server (kube-sim runs no kubelet of its own) and an admin client.
    async fn start(backend: Backend) -> Cluster {
        podid_testkit::install_crypto();
        let tmp = tempfile::tempdir().expect("tempdir");
        let kube = match backend {
            Backend::Sim => KubeBackend::start_sim(tmp.path().join("kube"), None).await,
            Backend::Real => KubeBackend::start_real().await,
        }
        .unwrap_or_else(|e| panic!("start the {backend} API server: {e:#}"));
        let client =
            podid_testkit::kube_backend::client_for(kube.kubeconfig().expect("kubeconfig"))
                .await
                .expect("client");
        Cluster { kube, client, tmp }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("kubelet")
    }

    fn kubelet(&self) -> podid_kubelet::Kubelet {
        self.kubelet_with(podid_kubelet::Config::new(self.dir()))
    }

    fn kubelet_with(&self, mut cfg: podid_kubelet::Config) -> podid_kubelet::Kubelet {
        cfg.resync = Duration::from_millis(100);
        podid_kubelet::start(self.client.clone(), cfg)
    }

    async fn node(&self, name: &str, cidr: Option<&str>, internal_ip: &str) {
        let mut spec = json!({});
        if let Some(c) = cidr {
            spec = json!({"podCIDR": c, "podCIDRs": [c]});
        }
        let node: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name}, "spec": spec}))
        .expect("node");
        let api: Api<Node> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &node)
            .await
            .expect("create node");
        let status =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": internal_ip}]}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("node status");
    }

    async fn pod(&self, name: &str, node: &str, extra_spec: Value) -> Pod {
        let mut spec = json!({"nodeName": node, "containers": [{"name": "app", "image": "img"}]});
        if let (Some(s), Value::Object(extra)) = (spec.as_object_mut(), extra_spec) {
            s.extend(extra);
        }
        let pod: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}))
        .expect("pod");
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod")
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Waits until pod `name` is Running with an address; returns it.
    async fn running(&self, name: &str) -> Pod {
        let mut last = None;
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(p) = self.pods().get(name).await {
                let s = p.status.clone().unwrap_or_default();
                if s.phase.as_deref() == Some("Running") && s.pod_ip.is_some() {
                    return p;
                }
                last = Some(p);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("pod {name} is not running: {last:?}");
    }

    async fn shutdown(self) {
        self.kube.shutdown().await;
    }

    /// Waits until pod `name` is gone (a real API server keeps a graceful deletion until a kubelet finishes it).
    async fn gone(&self, name: &str) {
        let deadline = Instant::now() + WAIT;
        while self.pods().get_opt(name).await.expect("get").is_some() {
            assert!(Instant::now() < deadline, "pod {name} is still there");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().expect("uid")
}

fn ip(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("pod ip")
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn file(path: &Path) -> String {
    let p = path.to_path_buf();
    eventually(&format!("{}", p.display()), || {
        std::fs::read_to_string(&p).ok()
    })
    .await
}

/// A projected token volume `azure-identity-token` with `audience`, valid `secs`.
fn token_volume(audience: &str, secs: i64) -> Value {
    json!({"volumes": [{"name": "azure-identity-token", "projected": {"sources": [
        {"serviceAccountToken": {"audience": audience, "expirationSeconds": secs, "path": "azure-identity-token"}}
    ]}}]})
}

/// A TokenReview of `token` for `audience` (the API server's own audiences when empty).
async fn review(client: &kube::Client, token: &str, audience: &str) -> Value {
    let audiences: Vec<&str> = [audience].into_iter().filter(|a| !a.is_empty()).collect();
    let tr: TokenReview = serde_json::from_value(json!({"apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview", "spec": {"token": token, "audiences": audiences}}))
    .expect("review");
    let out = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &tr)
        .await
        .expect("token review");
    serde_json::to_value(out.status).expect("status")
}

async fn pod_runs_through_pods_status_with_a_bound_token(backend: Backend) {
    let c = Cluster::start(backend).await;
    let kubelet = c.kubelet();
    c.node("n1", Some("10.244.7.0/24"), "10.240.0.4").await;
    let created = c
        .pod("p1", "n1", token_volume("api://AzureADTokenExchange", 3600))
        .await;
    let p = c.running("p1").await;
    assert!(kubelet.is_ready());
    let s = p.status.clone().expect("status");
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.7.2"));
    assert_eq!(
        s.pod_ips.expect("podIPs")[0].ip,
        "10.244.7.2",
        "podIPs matches podIP"
    );
    assert_eq!(s.host_ip.as_deref(), Some("10.240.0.4"));
    assert!(s.start_time.is_some());
    let conds: Vec<(String, String)> = s
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    for t in podid_kubelet::status::RUNNING_CONDITIONS {
        assert!(
            conds.contains(&(t.to_string(), "True".into())),
            "{t}: {conds:?}"
        );
    }
    let cs = s.container_statuses.expect("container statuses");
    assert_eq!(cs.len(), 1);
    assert!(
        cs[0].ready
            && cs[0]
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .is_some()
    );
    assert_ne!(
        p.metadata.resource_version, created.metadata.resource_version,
        "the status was written"
    );

    // The token is a TokenRequest token for the pod's service account, bound to this pod, for the audience.
    let vol = podid_kubelet::projected_dir(&c.dir(), &uid(&p), "azure-identity-token");
    let token = file(&vol.join("azure-identity-token")).await;
    let r = review(&c.client, &token, "api://AzureADTokenExchange").await;
    assert_eq!(r["authenticated"], true, "{r}");
    assert_eq!(
        r["user"]["username"],
        "system:serviceaccount:default:default"
    );
    assert_eq!(
        r["user"]["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([uid(&p)])
    );
    assert_eq!(
        r["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["p1"])
    );
    assert_eq!(r["audiences"], json!(["api://AzureADTokenExchange"]));
    let wrong = review(&c.client, &token, "").await;
    assert_ne!(wrong["authenticated"], true, "{wrong}");

    // The admission-added kube-api-access volume: token, the cluster CA (kube-root-ca.crt) and the namespace.
    let access = p
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name.starts_with("kube-api-access-")))
        .map(|v| v.name.clone())
        .expect("kube-api-access volume");
    let access = podid_kubelet::projected_dir(&c.dir(), &uid(&p), &access);
    assert_eq!(file(&access.join("namespace")).await, "default");
    assert!(
        file(&access.join("ca.crt"))
            .await
            .contains("BEGIN CERTIFICATE")
    );
    let api_token = file(&access.join("token")).await;
    let r = review(&c.client, &api_token, "").await;
    assert_eq!(r["authenticated"], true, "{r}");
    assert_eq!(
        r["user"]["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([uid(&p)])
    );

    kubelet.stop().await;
    c.shutdown().await;
}

async fn config_maps_secrets_and_downward_api_are_written(backend: Backend) {
    let c = Cluster::start(backend).await;
    let kubelet = c.kubelet();
    c.node("n1", Some("10.244.1.0/24"), "10.240.0.4").await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(c.client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}}))
            .expect("cm"),
    )
    .await
    .expect("cm");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(c.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "sec"}, "stringData": {"k": "secret-value"}}),
            )
            .expect("secret"),
        )
        .await
        .expect("secret");
    let p = c
        .pod(
            "p1",
            "n1",
            json!({"volumes": [{"name": "all", "projected": {"sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "sub/b.txt"}]}},
                {"secret": {"name": "sec"}},
                {"downwardAPI": {"items": [
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    // Volumes may name only metadata fields (spec.nodeName is for env vars: 422 on a real server).
                    {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
                    {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}}]}}
            ]}}]}),
        )
        .await;
    let vol = podid_kubelet::projected_dir(&c.dir(), &uid(&p), "all");
    assert_eq!(file(&vol.join("sub/b.txt")).await, "2");
    assert!(!vol.join("a").exists(), "only the listed key");
    assert_eq!(file(&vol.join("k")).await, "secret-value");
    assert_eq!(file(&vol.join("name")).await, "p1");
    assert_eq!(file(&vol.join("ns")).await, "default");
    assert_eq!(file(&vol.join("uid")).await, uid(&p));
    kubelet.stop().await;
    c.shutdown().await;
}

async fn nodes_without_a_cidr_get_one_and_pods_wait_for_their_node(backend: Backend) {
    let c = Cluster::start(backend).await;
    let kubelet = c.kubelet();
    c.node("n0", Some("10.244.0.0/24"), "10.240.0.4").await;
    // A pod bound to a node that does not exist yet is left alone ...
    c.pod("early", "n1", json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = c.pods().get("early").await.expect("get");
    assert!(p.status.and_then(|s| s.pod_ip).is_none());
    // ... until the node appears: it is given the next free /24, and the pod an address from it.
    c.node("n1", None, "10.240.0.5").await;
    let p = c.running("early").await;
    assert_eq!(ip(&p), "10.244.1.2");
    let n = Api::<Node>::all(c.client.clone())
        .get("n1")
        .await
        .expect("node");
    let spec = n.spec.expect("spec");
    assert_eq!(spec.pod_cidr.as_deref(), Some("10.244.1.0/24"));
    assert_eq!(spec.pod_cidrs, Some(vec!["10.244.1.0/24".to_string()]));
    // A hostNetwork pod has the node's address.
    c.pod("host", "n1", json!({"hostNetwork": true})).await;
    assert_eq!(ip(&c.running("host").await), "10.240.0.5");
    kubelet.stop().await;
    c.shutdown().await;
}

async fn a_deleted_pod_loses_its_files_and_address(backend: Backend) {
    let c = Cluster::start(backend).await;
    let kubelet = c.kubelet();
    c.node("n1", Some("10.244.3.0/24"), "10.240.0.4").await;
    let p1 = c.running_pod("p1").await;
    assert_eq!(ip(&p1), "10.244.3.2");
    let pdir = c.dir().join("pods").join(uid(&p1));
    eventually("the pod's directory", || pdir.exists().then_some(())).await;
    c.pods()
        .delete("p1", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the directory's removal", || (!pdir.exists()).then_some(())).await;
    let p2 = c.running_pod("p2").await;
    assert_eq!(ip(&p2), "10.244.3.2", "the address was released");
    kubelet.stop().await;
    c.shutdown().await;
}

impl Cluster {
    async fn running_pod(&self, name: &str) -> Pod {
        self.pod(name, "n1", token_volume("aud", 3600)).await;
        self.running(name).await
    }
}

async fn a_restarted_kubelet_keeps_addresses_and_clears_stale_directories(backend: Backend) {
    let c = Cluster::start(backend).await;
    c.node("n1", Some("10.244.3.0/24"), "10.240.0.4").await;
    let first = c.kubelet();
    let p1 = c.running_pod("p1").await;
    let p2 = c.running_pod("p2").await;
    assert_eq!(
        (ip(&p1).as_str(), ip(&p2).as_str()),
        ("10.244.3.2", "10.244.3.3")
    );
    first.stop().await;
    // While no kubelet runs: p1 is deleted, and a directory of some earlier pod is left over.
    c.pods()
        .delete("p1", &DeleteParams::default())
        .await
        .expect("delete");
    let stale = c.dir().join("pods").join("no-such-pod");
    std::fs::create_dir_all(&stale).expect("stale dir");
    let second = c.kubelet();
    // A real API server held p1 Terminating for a kubelet: the new one finishes it (kube-sim deleted it at once).
    c.gone("p1").await;
    let p3 = c.running_pod("p3").await;
    assert_eq!(ip(&p3), "10.244.3.2", "p1's address is free, p2's is not");
    let p4 = c.running_pod("p4").await;
    assert_eq!(ip(&p4), "10.244.3.4", "p2 keeps 10.244.3.3");
    eventually("stale directories removed", || {
        (!stale.exists() && !c.dir().join("pods").join(uid(&p1)).exists()).then_some(())
    })
    .await;
    assert!(c.dir().join("pods").join(uid(&p2)).exists());
    second.stop().await;
    c.shutdown().await;
}

async fn tokens_are_rewritten_when_due_and_not_before(backend: Backend) {
    let c = Cluster::start(backend).await;
    c.node("n1", Some("10.244.3.0/24"), "10.240.0.4").await;
    let offset = Arc::new(AtomicI64::new(0));
    let mut cfg = podid_kubelet::Config::new(c.dir());
    cfg.clock = {
        let offset = offset.clone();
        let system = podid_kubelet::system_clock();
        Arc::new(move || system() + offset.load(Ordering::SeqCst))
    };
    let kubelet = c.kubelet_with(cfg);
    // The API's shortest lifetime, 10 minutes: due after 8.
    c.pod("p1", "n1", token_volume("aud", 600)).await;
    let p = c.running("p1").await;
    let path = podid_kubelet::projected_dir(&c.dir(), &uid(&p), "azure-identity-token")
        .join("azure-identity-token");
    let first = file(&path).await;
    // Pod changes and resync ticks do not rewrite a token that is not due.
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    c.pods()
        .patch("p1", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(std::fs::read_to_string(&path).expect("token"), first);
    // Seven minutes on: still not due.
    offset.store(7 * 60, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(std::fs::read_to_string(&path).expect("token"), first);
    // Past 80% of the lifetime: rewritten with a new, valid, bound token.
    offset.store(8 * 60 + 1, Ordering::SeqCst);
    let second = eventually("the token's rewrite", || {
        std::fs::read_to_string(&path).ok().filter(|t| *t != first)
    })
    .await;
    let r = review(&c.client, &second, "aud").await;
    assert_eq!(r["authenticated"], true, "{r}");
    assert_eq!(
        r["user"]["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([uid(&p)])
    );
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["azure-identity-token".to_string()]);
    kubelet.stop().await;
    c.shutdown().await;
}
