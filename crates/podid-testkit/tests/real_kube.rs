//! The real-apiserver backend ([`Backend::Real`]): etcd + kube-apiserver + kube-controller-manager start on
//! loopback, and through kube-rs alone serve what podid needs: namespaces, the world's nodes and the pod-identity
//! CRDs (installed by [`Env`]), an AzureIdentity, a pod whose status is set through the status subresource (no
//! kubelet yet), TokenRequest bound to that pod, TokenReview with and without its audience, and
//! SubjectAccessReview of AKS's `use-managed-identity` verb on `cid.wi.aks.azure.com` before and after RBAC
//! grants it. Skips (saying why) when the binaries are not built and `PODID_REQUIRE_REAL_KUBE` is not `1`.

use std::time::Instant;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use podid_k8s::AzureIdentity;
use podid_testkit::real_kube::{RealKube, skip_unless_available};
use podid_testkit::tools::report;
use podid_testkit::{Backend, Env, WAIT, client_id, eventually, world};
use serde_json::{Value, json};

/// The audience a federated (workload identity) token carries.
const AUDIENCE: &str = "api://AzureADTokenExchange";
/// The API group and verb AKS's identity binding authorises.
const MI_GROUP: &str = "cid.wi.aks.azure.com";
const MI_VERB: &str = "use-managed-identity";

/// The payload of a compact JWS, as JSON.
fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWS has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

async fn review(client: &kube::Client, token: &str, audiences: &[&str]) -> Value {
    let tr: TokenReview =
        serde_json::from_value(json!({"spec": {"token": token, "audiences": audiences}}))
            .expect("token review");
    let out = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &tr)
        .await
        .expect("TokenReview");
    serde_json::to_value(out.status).expect("status")
}

async fn may_use_identity(client: &kube::Client, user: &str, id: &str) -> Value {
    let sar: SubjectAccessReview = serde_json::from_value(json!({"spec": {
        "user": user,
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
        "resourceAttributes": {"group": MI_GROUP, "resource": id, "verb": MI_VERB}}}))
    .expect("sar");
    let out = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .expect("SubjectAccessReview");
    serde_json::to_value(out.status).expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_apiserver_serves_crds_tokens_and_reviews() {
    let t0 = Instant::now();
    let env = match Env::builder(world())
        .backend(Backend::Real)
        .try_start()
        .await
    {
        Ok(env) => env,
        Err(e) if skip_unless_available("real_apiserver_serves_crds_tokens_and_reviews", &e) => {
            return;
        }
        Err(e) => panic!("real backend: {e:#}"),
    };
    let real = env.kube.real().expect("the real backend");
    let times = real.times;
    report(&format!(
        "real kube: ready in {:.2?} (pki {:.2?}, etcd {:.2?}, kube-apiserver {:.2?}, controller manager's default SA {:.2?}); Env with CRDs and nodes {:.2?}",
        times.total,
        times.pki,
        times.etcd,
        times.apiserver,
        times.controller_manager,
        t0.elapsed()
    ));
    assert_eq!(env.kube.backend().to_string(), "real");
    assert!(env.kube.sim().is_none());
    assert!(env.kube.url().starts_with("https://127.0.0.1:"));
    let c = env.client.clone();

    // Namespaces and the world's nodes.
    let names: Vec<String> = Api::<Namespace>::all(c.clone())
        .list(&Default::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let nodes = Api::<Node>::all(c.clone())
        .list(&Default::default())
        .await
        .expect("list nodes")
        .items;
    assert_eq!(nodes.len(), podid_testkit::world::world_nodes().len());

    // The CRDs are served: an AzureIdentity round-trips.
    env.identity("default", "id-a", 0, "id-a").await;
    let got = Api::<AzureIdentity>::namespaced(c.clone(), "default")
        .get("id-a")
        .await
        .expect("get AzureIdentity");
    assert_eq!(got.spec.client_id, client_id("id-a"));

    // kubectl (when installed) reads the same kubeconfig: client certificate, embedded CA.
    if let Some(kubectl) = podid_testkit::tools::find_kubectl() {
        let out = std::process::Command::new(kubectl)
            .arg(format!("--kubeconfig={}", env.kubeconfig.display()))
            .args(["get", "azureidentities", "-A", "-o", "name"])
            .output()
            .expect("run kubectl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("azureidentity.aadpodidentity.k8s.io/id-a"),
            "kubectl: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A pod (on a world node, no kubelet): its status is set through the status subresource.
    env.ns("apps").await;
    env.pod("apps", "web-0", "pool1-vmss000000", "sel").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let status = json!({"status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status("web-0", &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("pod status");
    let pod = pods.get("web-0").await.expect("get pod");
    let st = pod.status.clone().expect("status");
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(st.pod_ip.as_deref(), Some("10.244.0.5"));
    let sa_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone());
    assert_eq!(
        sa_name.as_deref(),
        Some("default"),
        "ServiceAccount admission"
    );
    let uid = pod.metadata.uid.clone().expect("uid");

    // TokenRequest bound to the pod.
    let tr: TokenRequest = serde_json::from_value(json!({"spec": {
        "audiences": [AUDIENCE], "expirationSeconds": 3600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": uid}}}))
    .expect("token request");
    let t = Instant::now();
    let token = Api::<ServiceAccount>::namespaced(c.clone(), "apps")
        .create_token_request("default", &PostParams::default(), &tr)
        .await
        .expect("TokenRequest")
        .status
        .expect("token")
        .token;
    report(&format!("real kube: TokenRequest took {:.2?}", t.elapsed()));
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], json!(real.issuer));
    assert_eq!(claims["aud"], json!([AUDIENCE]));
    assert_eq!(claims["sub"], json!("system:serviceaccount:apps:default"));
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], json!("web-0"));
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], json!(uid));

    // TokenReview: accepted for its audience, refused for the API server's own.
    let ok = review(&c, &token, &[AUDIENCE]).await;
    assert_eq!(ok["authenticated"], json!(true), "{ok}");
    assert_eq!(
        ok["user"]["username"],
        json!("system:serviceaccount:apps:default")
    );
    assert_eq!(ok["audiences"], json!([AUDIENCE]));
    assert_eq!(
        ok["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["web-0"])
    );
    let wrong = review(&c, &token, &[]).await;
    assert_ne!(wrong["authenticated"], json!(true), "{wrong}");

    // SubjectAccessReview of the custom verb: denied, then allowed once RBAC grants it.
    let user = "system:serviceaccount:apps:default";
    let id = client_id("id-a");
    let before = may_use_identity(&c, user, &id).await;
    assert_eq!(before["allowed"], json!(false), "{before}");
    let role: ClusterRole = serde_json::from_value(json!({"metadata": {"name": "use-id-a"},
        "rules": [{"apiGroups": [MI_GROUP], "resources": [id], "verbs": [MI_VERB]}]}))
    .expect("role");
    Api::<ClusterRole>::all(c.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("ClusterRole");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({"metadata": {"name": "use-id-a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "use-id-a"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "apps"}]}))
    .expect("binding");
    Api::<ClusterRoleBinding>::all(c.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("ClusterRoleBinding");
    let t = Instant::now();
    let after = eventually("the RBAC grant to take effect", WAIT, || {
        let (c, id) = (c.clone(), id.clone());
        async move {
            let s = may_use_identity(&c, user, &id).await;
            (s["allowed"] == json!(true)).then_some(s)
        }
    })
    .await;
    assert_eq!(after["allowed"], json!(true));
    report(&format!(
        "real kube: RBAC grant effective after {:.2?}",
        t.elapsed()
    ));
    let other = may_use_identity(&c, user, &client_id("id-b")).await;
    assert_eq!(other["allowed"], json!(false), "only id-a is granted");

    // The bound pod gone (no kubelet: grace period 0), its token no longer authenticates.
    let t = Instant::now();
    pods.delete("web-0", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    eventually("the token of a deleted pod to be refused", WAIT, || {
        let (c, token) = (c.clone(), token.clone());
        async move {
            let s = review(&c, &token, &[AUDIENCE]).await;
            (s["authenticated"] != json!(true)).then_some(())
        }
    })
    .await;
    report(&format!(
        "real kube: a deleted pod's token refused after {:.2?}",
        t.elapsed()
    ));

    let dir = real.dir().to_path_buf();
    assert!(dir.join("kube-apiserver.log").is_file());
    let t = Instant::now();
    env.kube.shutdown().await;
    report(&format!("real kube: stopped in {:.2?}", t.elapsed()));
    assert!(!dir.exists(), "{} removed", dir.display());
}

/// A control plane dropped without `shutdown` (a test that panicked) stops its children and removes its files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_real_apiserver_leaves_nothing_behind() {
    podid_testkit::install_crypto();
    let real = match RealKube::start().await {
        Ok(r) => r,
        Err(e) if skip_unless_available("a_dropped_real_apiserver_leaves_nothing_behind", &e) => {
            return;
        }
        Err(e) => panic!("real backend: {e:#}"),
    };
    let pids = real.pids();
    assert_eq!(
        pids.len(),
        3,
        "etcd, kube-apiserver, kube-controller-manager"
    );
    let dir = real.dir().to_path_buf();
    assert!(real.log("kube-apiserver").contains("Serving securely"));
    drop(real);
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie until tokio reaps it.
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "process {pid} still runs: {stat}"
        );
    }
    assert!(!dir.exists(), "{} removed", dir.display());
}
