//! The simulators a test runs against, their files, a client, and the components it started.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use podid_k8s::{AzureAssignedIdentity, AzureIdentity};
use serde_json::{Value, json};

use crate::http::http;
use crate::kube_backend::{Backend, KubeBackend, client_for};
use crate::objects;
use crate::process::{Component, ComponentCmd, podid_exe};
use crate::wait::{POLL, WAIT, eventually};
use crate::world::{APP_ID, APP_SECRET, MC, SUB, TENANT, client_id, world_nodes};

/// How an [`Env`] starts; [`Env::builder`].
#[must_use]
pub struct EnvBuilder {
    world: Value,
    backend: Backend,
    kubelet: bool,
    crds: bool,
    world_nodes: bool,
    imds_case_insensitive: bool,
    watch_cache_size: Option<usize>,
}

/// The Kubernetes API (either backend), azure-sim, a client, and the kubelet when asked for.
pub struct Env {
    /// `podid-kubelet` over the public API ([`EnvBuilder::kubelet`]); stopped around a kube-sim restart.
    pub kubelet: Option<podid_kubelet::Kubelet>,
    pub kube: KubeBackend,
    pub azure: azure_sim::Handle,
    pub dir: tempfile::TempDir,
    pub client: kube::Client,
    /// The kubeconfig components are started with (admin, until [`Env::use_manifest_rbac`]).
    pub kubeconfig: PathBuf,
    /// Controllers started by [`Env::controller`].
    pub ctls: Vec<Component>,
    /// [`EnvBuilder::kubelet`]: a kubelet runs again after [`Env::restart_kube`].
    kubelet_wanted: bool,
}

// === impl EnvBuilder ===

impl EnvBuilder {
    /// The Kubernetes API to run against (kube-sim by default). [`Backend::Real`] needs the binaries of
    /// scripts/ensure-kube.sh: without them [`EnvBuilder::try_start`] fails with
    /// [`crate::real_kube::RealKubeUnavailable`] (see [`crate::real_kube::skip_unless_available`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// With the kubelet (`podid-kubelet`, over the public API, on either backend), scheduled pods get an IP from
    /// their node's podCIDR and phase Running, their projected volumes are written under `<dir>/kubelet`, and a pod
    /// in graceful deletion is deleted once "stopped" (the agent's tests find callers by IP; the controller's tests
    /// set phases themselves). Off by default.
    pub fn kubelet(mut self, on: bool) -> Self {
        self.kubelet = on;
        self
    }

    /// Install the pod-identity CRDs (on by default).
    pub fn crds(mut self, on: bool) -> Self {
        self.crds = on;
        self
    }

    /// Create the Kubernetes nodes of [`crate::world::world`] with Azure provider IDs (on by default).
    pub fn world_nodes(mut self, on: bool) -> Self {
        self.world_nodes = on;
        self
    }

    /// IMDS paths in any letter case, the conservative model the agent's path guard must survive (on by
    /// default).
    pub fn imds_case_insensitive(mut self, on: bool) -> Self {
        self.imds_case_insensitive = on;
        self
    }

    /// kube-sim's watch cache (change-log) length (kube-sim only; the real server keeps its defaults).
    pub fn watch_cache_size(mut self, n: usize) -> Self {
        self.watch_cache_size = Some(n);
        self
    }

    /// Starts everything.
    pub async fn try_start(self) -> anyhow::Result<Env> {
        crate::install_crypto();
        let dir = tempfile::tempdir().context("tmp")?;
        let kube = match self.backend {
            Backend::Sim => {
                KubeBackend::start_sim(dir.path().join("kube"), self.watch_cache_size).await?
            }
            Backend::Real => KubeBackend::start_real().await?,
        };
        let kubeconfig = kube.kubeconfig().context("kubeconfig")?.to_path_buf();
        if let Some(real) = kube.real() {
            // `<dir>/kube/ca.crt` is the API server's CA on both backends (kube-sim writes its own there), so a
            // world can trust it before azure-sim starts.
            std::fs::create_dir_all(dir.path().join("kube")).context("kube dir")?;
            std::fs::write(dir.path().join("kube/ca.crt"), &real.ca_pem).context("write ca.crt")?;
        }
        let mut cfg =
            azure_sim::Config::from_text(&self.world.to_string(), dir.path()).context("world")?;
        cfg.dir = Some(dir.path().join("azure"));
        cfg.settings.imds_case_insensitive_paths = self.imds_case_insensitive;
        let azure = azure_sim::start(cfg).await.context("azure-sim")?;
        let client = client_for(&kubeconfig).await?;
        if self.crds {
            install_crds(&client).await?;
        }
        if self.world_nodes {
            let nodes: Api<Node> = Api::all(client.clone());
            for (name, pid) in world_nodes() {
                let n: Node = serde_json::from_value(
                    json!({"metadata": {"name": name}, "spec": {"providerID": pid}}),
                )?;
                nodes
                    .create(&PostParams::default(), &n)
                    .await
                    .context("create node")?;
            }
        }
        let kubelet = if self.kubelet {
            Some(start_kubelet(&client, dir.path()).await?)
        } else {
            None
        };
        let e = azure.endpoints();
        std::fs::write(
            dir.path().join("azurestack.json"),
            json!({"name": "AzureStackCloud", "resourceManagerEndpoint": format!("{}/", e.arm.trim_end_matches('/')),
                   "activeDirectoryEndpoint": format!("{}/", e.entra.trim_end_matches('/')),
                   "tokenAudience": "https://management.azure.com/"})
            .to_string(),
        )
        .context("write env file")?;
        std::fs::write(
            dir.path().join("azure.json"),
            json!({"cloud": "AzureStackCloud", "tenantId": TENANT, "aadClientId": APP_ID, "aadClientSecret": APP_SECRET,
                   "subscriptionId": SUB, "resourceGroup": MC, "vmType": "vmss",
                   "userAssignedIdentityID": client_id("aks-agentpool")})
            .to_string(),
        )
        .context("write azure.json")?;
        Ok(Env {
            kubelet,
            kube,
            azure,
            dir,
            client,
            kubeconfig,
            ctls: Vec::new(),
            kubelet_wanted: self.kubelet,
        })
    }

    /// [`EnvBuilder::try_start`], panicking.
    pub async fn start(self) -> Env {
        let backend = self.backend;
        match self.try_start().await {
            Ok(e) => e,
            Err(e) => panic!("test environment (backend {backend}): {e:#}"),
        }
    }
}

/// `podid-kubelet` writing under `<dir>/kubelet`, once it listed nodes and pods.
async fn start_kubelet(
    client: &kube::Client,
    dir: &std::path::Path,
) -> anyhow::Result<podid_kubelet::Kubelet> {
    let kubelet = podid_kubelet::start(
        client.clone(),
        podid_kubelet::Config::new(dir.join("kubelet")),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while !kubelet.is_ready() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the kubelet has not listed nodes and pods after {WAIT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    Ok(kubelet)
}

/// Creates the pod-identity CRDs and waits until each is `Established` (a real API server serves a CRD's
/// resources only from then on).
pub async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for crd in podid_k8s::crds() {
        let created = crds
            .create(&PostParams::default(), &crd)
            .await
            .context("create CRD")?;
        names.push(created.metadata.name.unwrap_or_default());
    }
    for name in names {
        eventually(&format!("CRD {name} Established"), WAIT, || {
            let (crds, name) = (crds.clone(), name.clone());
            async move {
                let crd = crds.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
    Ok(())
}

// === impl Env: start, files, components ===

impl Env {
    /// How to start the simulators for `world` (CRDs, the world's nodes, case-insensitive IMDS; no kubelet).
    pub fn builder(world: Value) -> EnvBuilder {
        EnvBuilder {
            world,
            backend: Backend::Sim,
            kubelet: false,
            crds: true,
            world_nodes: true,
            imds_case_insensitive: true,
            watch_cache_size: None,
        }
    }

    pub async fn start(world: Value) -> Env {
        Env::start_with(world, false).await
    }

    /// With `kubelet`, the kubelet runs (see [`EnvBuilder::kubelet`]).
    pub async fn start_with(world: Value, kubelet: bool) -> Env {
        Env::builder(world).kubelet(kubelet).start().await
    }

    /// `<dir>/azurestack.json`: the custom cloud naming azure-sim's ARM and Entra (`AZURE_ENVIRONMENT_FILEPATH`).
    pub fn environment_file(&self) -> PathBuf {
        self.dir.path().join("azurestack.json")
    }

    /// `<dir>/azure.json`: the cloud config (`--cloudconfig`) with the controller's app.
    pub fn cloud_config(&self) -> PathBuf {
        self.dir.path().join("azure.json")
    }

    /// `podid agent` for `node`, talking to these simulators: kubeconfig, node, probe and metrics on free
    /// loopback ports, no cleanup delay, the node's IMDS, azure-sim's CA and cloud. The caller adds the token
    /// server port, the iptables mode and the log level.
    pub fn agent_cmd(&self, cmd: ComponentCmd, node: &str) -> ComponentCmd {
        let e = self.azure.endpoints();
        let imds = e.imds.get(node).expect("node IMDS").clone();
        let ca = e.ca_file.clone().expect("ca file");
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["--node", node])
            .args(["--http-probe-port", "0", "--prometheus-port", "0"])
            .args([
                "--admin-bind-address",
                "127.0.0.1",
                "--cleanup-delay-sec",
                "0",
            ])
            .arg(format!("--imds-endpoint={imds}"))
            .arg(format!("--azure-ca-file={ca}"))
            .env("AZURE_ENVIRONMENT_FILEPATH", self.environment_file())
            .env_remove("FORCENAMESPACED")
            .env_remove("NODE_NAME")
    }

    /// Start a controller process (loopback probe and metrics, short leader election, batching and retries);
    /// waits for its start line. Returns its index in `ctls`.
    pub async fn controller(&mut self, instance: &str, extra: &[&str]) -> usize {
        let e = self.azure.endpoints();
        let ca = e.ca_file.clone().expect("ca file");
        let log = self.dir.path().join(format!("controller-{instance}.log"));
        let ctl = ComponentCmd::podid(&podid_exe(), "controller", log)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--cloudconfig={}", self.cloud_config().display()))
            .args(["--http-probe-port", "0", "--prometheus-port", "0"])
            .args(["--bind-address", "127.0.0.1"])
            .arg(format!("--azure-ca-file={ca}"))
            .arg(format!("--leader-election-instance={instance}"))
            .args(["--leader-election-duration", "2s", "--batch-delay", "30ms"])
            .args(["--arm-poll-interval", "100ms"])
            .args(["--retry-backoff-base", "200ms", "--retry-backoff-max", "2s"])
            .args(["--update-user-msi-retry-interval", "50ms"])
            .args(extra)
            .env("MIC_POD_NAMESPACE", "kube-system")
            .env("AZURE_ENVIRONMENT_FILEPATH", self.environment_file())
            .env("PODID_LOG", "info,podid_controller=debug")
            .env_remove("FORCENAMESPACED")
            .start()
            .await;
        self.ctls.push(ctl);
        self.ctls.len() - 1
    }

    /// The controllers' logs, joined.
    pub fn logs(&self) -> String {
        self.ctls
            .iter()
            .map(|c| c.logs())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    /// Apply the RBAC of deploy/podid-controller.yaml and point later controllers at a kubeconfig that
    /// authenticates as its ServiceAccount, so the tests prove the manifest's permissions suffice.
    pub async fn use_manifest_rbac(&mut self) {
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
        let path = crate::tools::repo_root().join("deploy/podid-controller.yaml");
        let text = std::fs::read_to_string(path).expect("read manifest");
        let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).expect("parse manifest");
        let pp = PostParams::default();
        for d in docs {
            let ns = d["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let c = self.client.clone();
            let kind = d["kind"].as_str().unwrap_or("").to_string();
            let what = format!("create {kind}");
            match kind.as_str() {
                "ServiceAccount" => {
                    Api::<ServiceAccount>::namespaced(c, &ns)
                        .create(&pp, &serde_json::from_value(d).expect("sa"))
                        .await
                        .expect(&what);
                }
                "ClusterRole" => {
                    Api::<ClusterRole>::all(c)
                        .create(&pp, &serde_json::from_value(d).expect("cr"))
                        .await
                        .expect(&what);
                }
                "ClusterRoleBinding" => {
                    Api::<ClusterRoleBinding>::all(c)
                        .create(&pp, &serde_json::from_value(d).expect("crb"))
                        .await
                        .expect(&what);
                }
                "Role" => {
                    Api::<Role>::namespaced(c, &ns)
                        .create(&pp, &serde_json::from_value(d).expect("role"))
                        .await
                        .expect(&what);
                }
                "RoleBinding" => {
                    Api::<RoleBinding>::namespaced(c, &ns)
                        .create(&pp, &serde_json::from_value(d).expect("rb"))
                        .await
                        .expect(&what);
                }
                _ => {}
            }
        }
        let tr: k8s_openapi::api::authentication::v1::TokenRequest =
            serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
                .expect("tr");
        let tr = Api::<ServiceAccount>::namespaced(self.client.clone(), "kube-system")
            .create_token_request("podid-controller", &pp, &tr)
            .await
            .expect("token request");
        let token = tr.status.expect("token status").token;
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD
            .encode(self.kube.ca_pem().unwrap_or_default());
        let kc = json!({"apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "sim", "cluster": {"server": self.kube.url(), "certificate-authority-data": ca}}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "sim", "user": "sa"}}]});
        let path = self.dir.path().join("controller-sa.kubeconfig");
        std::fs::write(&path, kc.to_string()).expect("write kubeconfig");
        self.kubeconfig = path;
    }

    /// SIMULATOR ONLY: stop the kubelet (when it runs), persist kube-sim's objects and stop it (see
    /// [`KubeBackend::stop_sim`]). [`Env::restart_kube`] starts both again.
    pub async fn stop_kube(&mut self) -> kube_sim::Config {
        assert!(
            self.kube.sim().is_some(),
            "stopping the API server is simulator-only (backend: real)"
        );
        if let Some(k) = self.kubelet.take() {
            k.stop().await;
        }
        self.kube.stop_sim().await
    }

    /// SIMULATOR ONLY: start kube-sim again with `cfg`, make a fresh client, and a new kubelet when the `Env` has
    /// one (it takes over the old one's files and addresses).
    pub async fn restart_kube(&mut self, cfg: kube_sim::Config) {
        if let Some(k) = self.kubelet.take() {
            k.stop().await;
        }
        self.kube.restart_sim(cfg).await;
        self.client = client_for(&self.kubeconfig).await.expect("client");
        if self.kubelet_wanted {
            self.kubelet = Some(
                start_kubelet(&self.client, self.dir.path())
                    .await
                    .expect("restart the kubelet"),
            );
        }
    }

    /// Stops the kubelet, then the API server (the real one's children and directory go too). Dropping the `Env`
    /// does the same without waiting for the kubelet.
    pub async fn shutdown(self) {
        let Env {
            kubelet,
            kube,
            ctls,
            ..
        } = self;
        drop(ctls);
        if let Some(k) = kubelet {
            k.stop().await;
        }
        kube.shutdown().await;
    }
}

// === impl Env: objects ===

impl Env {
    /// Namespace `name` (already there is fine), with its `default` ServiceAccount (on a real API server the
    /// controller manager adds it a moment later, and pods cannot be created before).
    pub async fn ns(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
        let _ = api.create(&PostParams::default(), &n).await;
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), name);
        eventually(&format!("ServiceAccount {name}/default"), WAIT, || {
            let sas = sas.clone();
            async move { sas.get_opt("default").await.ok().flatten().map(|_| ()) }
        })
        .await;
    }

    /// An AzureIdentity of `type_` pointing at world identity `id_name` (or a full ARM ID).
    pub async fn identity(&self, ns: &str, name: &str, type_: i64, id_name: &str) {
        self.create_identity(ns, name, objects::identity_spec(type_, id_name))
            .await;
    }

    /// An AzureIdentity with `spec`; returns it as stored.
    pub async fn create_identity(&self, ns: &str, name: &str, spec: Value) -> AzureIdentity {
        Api::<AzureIdentity>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &objects::identity(ns, name, spec))
            .await
            .expect("create identity")
    }

    /// A binding of `identity` to pods labelled `aadpodidbinding=<selector>`.
    pub async fn binding(&self, ns: &str, name: &str, identity: &str, selector: &str) {
        Api::namespaced(self.client.clone(), ns)
            .create(
                &PostParams::default(),
                &objects::binding(ns, name, identity, selector),
            )
            .await
            .expect("create binding");
    }

    /// A pod on `node` labelled `aadpodidbinding=<selector>` (no wait).
    pub async fn pod(&self, ns: &str, name: &str, node: &str, selector: &str) {
        let p = objects::pod(
            ns,
            name,
            node,
            json!({"aadpodidbinding": selector}),
            "busybox",
            json!({}),
        );
        Api::<Pod>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &p)
            .await
            .expect("create pod");
    }

    /// A pod on `node` with `labels` and `extra_spec`; returns its IP once the kubelet gave it one and it runs.
    pub async fn running_pod(
        &self,
        ns: &str,
        name: &str,
        node: &str,
        labels: Value,
        extra_spec: Value,
    ) -> IpAddr {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        api.create(
            &PostParams::default(),
            &objects::pod(ns, name, node, labels, "app", extra_spec),
        )
        .await
        .expect("create pod");
        eventually("pod IP", WAIT, || {
            let api = api.clone();
            async move {
                let p = api.get(name).await.ok()?;
                let s = p.status?;
                (s.phase.as_deref() == Some("Running")).then_some(())?;
                s.pod_ip?.parse().ok()
            }
        })
        .await
    }

    /// An AzureAssignedIdentity for `pod_ns/pod` on `node` as the controller writes it, with `status`; returns
    /// its name.
    pub async fn create_aai(
        &self,
        pod_ns: &str,
        pod: &str,
        identity: &AzureIdentity,
        node: &str,
        status: &str,
    ) -> String {
        let (name, o) = objects::assigned(pod_ns, pod, identity, node);
        Api::<AzureAssignedIdentity>::namespaced(self.client.clone(), "default")
            .create(&PostParams::default(), &o)
            .await
            .expect("create aai");
        self.set_aai_status(&name, status).await;
        name
    }

    /// Upstream's CRD has no status subresource: the controller writes status with the object.
    pub async fn set_aai_status(&self, name: &str, status: &str) {
        Api::<AzureAssignedIdentity>::namespaced(self.client.clone(), "default")
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"status": status}})),
            )
            .await
            .expect("aai status");
    }

    /// A ServiceAccount.
    pub async fn service_account(&self, ns: &str, name: &str) {
        Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &objects::service_account(ns, name))
            .await
            .expect("create service account");
    }

    /// The node's podCIDR.
    pub async fn set_pod_cidr(&self, node: &str, cidr: &str) {
        Api::<Node>::all(self.client.clone())
            .patch(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})),
            )
            .await
            .expect("podCIDR");
    }

    pub async fn delete<K>(&self, ns: &str, name: &str)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        Api::<K>::namespaced(self.client.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }

    /// Deletes pod `ns/name` and waits until it is gone, as a cluster finishes a deletion: gracefully when the
    /// kubelet runs (it deletes the pod for good once its containers "stopped"), with grace period 0 otherwise (a
    /// real API server holds a pod bound to a node `Terminating` until a kubelet finishes it; kube-sim deletes at
    /// once).
    pub async fn delete_pod(&self, ns: &str, name: &str) {
        let api = Api::<Pod>::namespaced(self.client.clone(), ns);
        let dp = if self.kubelet.is_some() {
            DeleteParams::default()
        } else {
            DeleteParams::default().grace_period(0)
        };
        api.delete(name, &dp).await.expect("delete pod");
        eventually(&format!("pod {ns}/{name} gone"), WAIT, || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }

    pub async fn patch_pod_labels(&self, ns: &str, name: &str, selector: &str) {
        Api::<Pod>::namespaced(self.client.clone(), ns)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"aadpodidbinding": selector}}})),
            )
            .await
            .expect("relabel");
    }

    pub async fn aai(&self, ns: &str, name: &str) -> Option<AzureAssignedIdentity> {
        Api::<AzureAssignedIdentity>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .expect("get aai")
    }

    pub async fn aais(&self) -> Vec<AzureAssignedIdentity> {
        Api::<AzureAssignedIdentity>::all(self.client.clone())
            .list(&Default::default())
            .await
            .expect("list aai")
            .items
    }

    /// The upstream leader record (annotation of Endpoints `default/aad-pod-identity-mic`).
    pub async fn leader_record(&self) -> String {
        let ep = Api::<k8s_openapi::api::core::v1::Endpoints>::namespaced(
            self.client.clone(),
            "default",
        )
        .get("aad-pod-identity-mic")
        .await
        .expect("lock");
        ep.metadata
            .annotations
            .unwrap_or_default()
            .get("control-plane.alpha.kubernetes.io/leader")
            .cloned()
            .unwrap_or_default()
    }
}

// === impl Env: waits ===

impl Env {
    /// Wait until AAI `<ns>/<name>` has `status`.
    pub async fn wait_status(&self, ns: &str, name: &str, status: &str) -> AzureAssignedIdentity {
        let what = format!("AzureAssignedIdentity {ns}/{name} to be {status}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(a) = self.aai(ns, name).await
                && a.status.as_ref().map(|s| s.status.as_str()) == Some(status)
            {
                return a;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; now {:?}\n{}",
                    self.aai(ns, name).await.map(|a| a.status),
                    self.logs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_gone(&self, ns: &str, name: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.aai(ns, name).await.is_some() {
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for AzureAssignedIdentity {ns}/{name} to go\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_arm(&self, name: &str, want: &[&str]) {
        let mut want: Vec<String> = want.iter().map(|s| s.to_ascii_lowercase()).collect();
        want.sort();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (got, _, _) = self.arm(name).await;
            if got == want {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {name} to hold {want:?}; it holds {got:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

// === impl Env: azure-sim's control API ===

impl Env {
    pub async fn control(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!(
            "{}{path}",
            self.azure.endpoints().control.trim_end_matches('/')
        );
        let (s, b) = http(method, &url, body).await;
        (s, serde_json::from_str(&b).unwrap_or(Value::Null))
    }

    /// Names (last ID segment, lowercased) of the user-assigned identities on a VM or scale set, and its type.
    pub async fn arm(&self, name: &str) -> (Vec<String>, String, Value) {
        let (_, w) = self.control("GET", "/world", None).await;
        for key in ["virtualMachineScaleSets", "virtualMachines"] {
            for r in w[key].as_array().cloned().unwrap_or_default() {
                if r["name"] == json!(name) {
                    let mut ids: Vec<String> = r["identity"]["userAssignedIdentities"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|v| v.as_str())
                        .map(|s| {
                            s.rsplit('/')
                                .next()
                                .unwrap_or_default()
                                .to_ascii_lowercase()
                        })
                        .collect();
                    ids.sort();
                    let t = r["identity"]["type"].as_str().unwrap_or("").to_string();
                    return (ids, t, r["identity"].clone());
                }
            }
        }
        panic!("no VM or scale set {name} in the world");
    }

    /// ARM requests by method so far.
    pub async fn arm_requests(&self, method: &str) -> usize {
        self.requests("arm")
            .await
            .iter()
            .filter(|e| e["method"] == json!(method))
            .count()
    }

    /// azure-sim's request log of `family` (`arm`, `imds`, `entra`, ...).
    pub async fn requests(&self, family: &str) -> Vec<Value> {
        let (_, r) = self
            .control(
                "GET",
                &format!("/requests?family={family}&limit=100000"),
                None,
            )
            .await;
        r["items"].as_array().cloned().unwrap_or_default()
    }

    /// IMDS requests whose path holds `needle` (compared case-insensitively).
    pub async fn imds_requests_matching(&self, needle: &str) -> Vec<Value> {
        self.requests("imds")
            .await
            .into_iter()
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.to_ascii_lowercase().contains(needle))
            })
            .collect()
    }

    /// Token requests IMDS saw (any answer).
    pub async fn imds_token_requests(&self) -> usize {
        self.imds_requests_matching("oauth2/token").await.len()
    }

    /// Requests IMDS answered with 200 on any path that mentions a token, in any letter case or spelling.
    pub async fn imds_tokens_served(&self) -> usize {
        self.imds_requests_matching("token")
            .await
            .iter()
            .filter(|r| r["status"].as_u64() == Some(200))
            .count()
    }
}
