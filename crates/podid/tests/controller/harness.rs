//! Test harness: kube-sim and azure-sim in this process, `podid controller` as real child processes (the CLI,
//! kubeconfig and azure.json, as a user runs it). Everything listens on 127.0.0.1.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use podid_k8s::{AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const MC: &str = "MC_rg_aks";
pub const IDS: &str = "rg-ids";
pub const APP_ID: &str = "5a1f0000-0000-4000-8000-00000000a11c";
pub const APP_SECRET: &str = "mic-secret-value";
pub const WAIT: Duration = Duration::from_secs(30);

/// Client ID of the identity named `name` (fixed in the world).
pub fn client_id(name: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        (h >> 32) as u32,
        h & 0xffff_ffff_ffff
    )
}

/// ARM ID of identity `name` in `rg`.
pub fn uami_id(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

/// The world: one scale set with two instances (system-assigned + cluster identity + a preexisting identity), a
/// second scale set, one VM, identities id-a..id-f, the controller's app with the upstream roles.
pub fn world() -> Value {
    let ids: Vec<Value> = ["id-a", "id-b", "id-c", "id-d", "id-e", "id-f", "id-pre", "id-noperm"]
        .iter()
        .map(|n| {
            let rg = if *n == "id-noperm" { MC } else { IDS };
            json!({"name": n, "resourceGroup": rg, "clientId": client_id(n)})
        })
        .chain([json!({"name": "aks-agentpool", "resourceGroup": MC, "clientId": client_id("aks-agentpool")})])
        .collect();
    json!({
        "tenants": [{"id": TENANT}],
        "subscriptions": [{"id": SUB}],
        "resourceGroups": [{"name": MC, "location": "westeurope"}, {"name": IDS, "location": "westeurope"}],
        "userAssignedIdentities": ids,
        "virtualMachineScaleSets": [
            {"name": "pool1-vmss", "resourceGroup": MC,
             "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": ["aks-agentpool", "id-pre"]},
             "instances": [{}, {}]},
            {"name": "pool2-vmss", "resourceGroup": MC, "instances": [{}]}
        ],
        "virtualMachines": [{"name": "vm-node1", "resourceGroup": MC}],
        "applications": [{"displayName": "mic", "appId": APP_ID, "secrets": [{"value": APP_SECRET}]}],
        "roleAssignments": [
            {"principalName": "mic", "roleDefinitionName": "Virtual Machine Contributor",
             "scope": format!("/subscriptions/{SUB}/resourceGroups/{MC}")},
            {"principalName": "mic", "roleDefinitionName": "Managed Identity Operator",
             "scope": format!("/subscriptions/{SUB}/resourceGroups/{IDS}")},
            {"principalName": "mic", "roleDefinitionName": "Managed Identity Operator",
             "scope": uami_id(MC, "aks-agentpool")}
        ]
    })
}

pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A running controller process.
pub struct Ctl {
    pub child: tokio::process::Child,
    pub probe: String,
    pub metrics: String,
    pub log: PathBuf,
}

impl Ctl {
    pub async fn health(&self) -> String {
        http("GET", &self.probe, None).await.1
    }
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }
    /// SIGTERM and wait.
    pub async fn terminate(&mut self) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .ok()
            .and_then(|r| r.ok())
            .and_then(|s| s.code())
    }
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The simulators and a client.
pub struct Env {
    pub kube: kube_sim::Handle,
    pub azure: azure_sim::Handle,
    pub dir: tempfile::TempDir,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub ctls: Vec<Ctl>,
}

/// Minimal HTTP/1.1 to loopback (control API, probes): (status, body).
pub async fn http(method: &str, url: &str, body: Option<&Value>) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    let b = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Env {
    pub async fn start(world: Value) -> Env {
        Env::start_with(world, false).await
    }

    /// With `kubelet`, kube-sim's kubelet runs: scheduled pods get an IP from their node's podCIDR and phase
    /// Running (the agent's tests find callers by IP; the controller's tests set phases themselves).
    pub async fn start_with(world: Value, kubelet: bool) -> Env {
        install_crypto();
        let dir = tempfile::tempdir().expect("tmp");
        let kube = kube_sim::start(kube_sim::Config {
            dir: Some(dir.path().join("kube")),
            kubelet_dir: kubelet.then(|| dir.path().join("kubelet")),
            ..kube_sim::Config::default()
        })
        .await
        .expect("kube-sim");
        let kubeconfig = kube.kubeconfig.clone().expect("kubeconfig");
        let mut cfg = azure_sim::Config::from_text(&world.to_string(), dir.path()).expect("world");
        cfg.dir = Some(dir.path().join("azure"));
        // IMDS paths in any letter case: the conservative model the agent's path guard must survive.
        cfg.settings.imds_case_insensitive_paths = true;
        let azure = azure_sim::start(cfg).await.expect("azure-sim");
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("read kubeconfig");
        let client = kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .expect("config"),
        )
        .expect("client");
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        for crd in podid_k8s::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("create CRD");
        }
        // Nodes: the scale-set instances and the VM, with Azure provider IDs.
        let nodes: Api<Node> = Api::all(client.clone());
        let mut node_list: Vec<(String, String)> = Vec::new();
        for (vmss, n) in [("pool1-vmss", 2), ("pool2-vmss", 1)] {
            for i in 0..n {
                node_list.push((
                    format!("{vmss}{i:06}"),
                    format!("azure:///subscriptions/{SUB}/resourceGroups/{MC}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{i}"),
                ));
            }
        }
        node_list.push((
            "vm-node1".into(),
            format!("azure:///subscriptions/{SUB}/resourceGroups/{MC}/providers/Microsoft.Compute/virtualMachines/vm-node1"),
        ));
        for (name, pid) in node_list {
            let n: Node = serde_json::from_value(
                json!({"metadata": {"name": name}, "spec": {"providerID": pid}}),
            )
            .expect("node");
            nodes
                .create(&PostParams::default(), &n)
                .await
                .expect("create node");
        }
        let e = azure.endpoints();
        let envfile = dir.path().join("azurestack.json");
        std::fs::write(
            &envfile,
            json!({"name": "AzureStackCloud", "resourceManagerEndpoint": format!("{}/", e.arm.trim_end_matches('/')),
                   "activeDirectoryEndpoint": format!("{}/", e.entra.trim_end_matches('/')),
                   "tokenAudience": "https://management.azure.com/"})
            .to_string(),
        )
        .expect("write env file");
        std::fs::write(
            dir.path().join("azure.json"),
            json!({"cloud": "AzureStackCloud", "tenantId": TENANT, "aadClientId": APP_ID, "aadClientSecret": APP_SECRET,
                   "subscriptionId": SUB, "resourceGroup": MC, "vmType": "vmss",
                   "userAssignedIdentityID": client_id("aks-agentpool")})
            .to_string(),
        )
        .expect("write azure.json");
        Env {
            kube,
            azure,
            dir,
            client,
            kubeconfig,
            ctls: Vec::new(),
        }
    }

    /// Start a controller process; waits for its probe line.
    pub async fn controller(&mut self, instance: &str, extra: &[&str]) -> usize {
        let e = self.azure.endpoints();
        let ca = e.ca_file.clone().expect("ca file");
        let log = self.dir.path().join(format!("controller-{instance}.log"));
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_podid"));
        cmd.arg("controller")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--cloudconfig={}",
                self.dir.path().join("azure.json").display()
            ))
            .args([
                "--http-probe-port",
                "0",
                "--prometheus-port",
                "0",
                "--bind-address",
                "127.0.0.1",
            ])
            .arg(format!("--azure-ca-file={ca}"))
            .arg(format!("--leader-election-instance={instance}"))
            .args([
                "--leader-election-duration",
                "2s",
                "--batch-delay",
                "30ms",
                "--arm-poll-interval",
                "100ms",
            ])
            .args([
                "--retry-backoff-base",
                "200ms",
                "--retry-backoff-max",
                "2s",
                "--update-user-msi-retry-interval",
                "50ms",
            ])
            .args(extra)
            .env("MIC_POD_NAMESPACE", "kube-system")
            .env(
                "AZURE_ENVIRONMENT_FILEPATH",
                self.dir.path().join("azurestack.json"),
            )
            .env("PODID_LOG", "info,podid_controller=debug")
            .env_remove("FORCENAMESPACED")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(logf))
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn podid controller");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "controller did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .expect("read")
            .unwrap_or_else(|| {
                panic!(
                    "controller exited: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        // "podid controller: probe http://ADDR/healthz metrics http://ADDR/metrics"
        let words: Vec<&str> = line.split_whitespace().collect();
        let probe = words.get(3).expect("probe url").to_string();
        let metrics = words.get(5).expect("metrics url").to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.ctls.push(Ctl {
            child,
            probe,
            metrics,
            log,
        });
        self.ctls.len() - 1
    }

    /// Apply the RBAC of deploy/podid-controller.yaml and point later controllers at a kubeconfig that
    /// authenticates as its ServiceAccount, so the tests prove the manifest's permissions suffice.
    pub async fn use_manifest_rbac(&mut self) {
        use k8s_openapi::api::core::v1::ServiceAccount;
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/podid-controller.yaml"
        ))
        .expect("read manifest");
        let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).expect("parse manifest");
        let pp = PostParams::default();
        for d in docs {
            let ns = d["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let c = self.client.clone();
            match d["kind"].as_str().unwrap_or("") {
                "ServiceAccount" => {
                    Api::<ServiceAccount>::namespaced(c, &ns)
                        .create(&pp, &serde_json::from_value(d).expect("sa"))
                        .await
                        .expect("create sa");
                }
                "ClusterRole" => {
                    Api::<ClusterRole>::all(c)
                        .create(&pp, &serde_json::from_value(d).expect("cr"))
                        .await
                        .expect("create cr");
                }
                "ClusterRoleBinding" => {
                    Api::<ClusterRoleBinding>::all(c)
                        .create(&pp, &serde_json::from_value(d).expect("crb"))
                        .await
                        .expect("create crb");
                }
                "Role" => {
                    Api::<Role>::namespaced(c, &ns)
                        .create(&pp, &serde_json::from_value(d).expect("role"))
                        .await
                        .expect("create role");
                }
                "RoleBinding" => {
                    Api::<RoleBinding>::namespaced(c, &ns)
                        .create(&pp, &serde_json::from_value(d).expect("rb"))
                        .await
                        .expect("create rb");
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
            .encode(self.kube.ca_pem.clone().unwrap_or_default());
        let kc = json!({"apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "sim", "cluster": {"server": self.kube.url, "certificate-authority-data": ca}}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "sim", "user": "sa"}}]});
        let path = self.dir.path().join("controller-sa.kubeconfig");
        std::fs::write(&path, kc.to_string()).expect("write kubeconfig");
        self.kubeconfig = path;
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

    pub fn logs(&self) -> String {
        self.ctls
            .iter()
            .map(|c| c.logs())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    pub async fn ns(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
        let _ = api.create(&PostParams::default(), &n).await;
    }

    pub async fn identity(&self, ns: &str, name: &str, type_: i64, id_name: &str) {
        let rid = if id_name.starts_with('/') {
            id_name.to_string()
        } else {
            uami_id(
                if id_name == "aks-agentpool" || id_name == "id-noperm" {
                    MC
                } else {
                    IDS
                },
                id_name,
            )
        };
        let short = rid.rsplit('/').next().unwrap_or_default().to_string();
        let i: AzureIdentity = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": type_, "resourceID": rid, "clientID": client_id(&short)}
        }))
        .expect("identity");
        Api::<AzureIdentity>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &i)
            .await
            .expect("create identity");
    }

    pub async fn binding(&self, ns: &str, name: &str, identity: &str, selector: &str) {
        let b: AzureIdentityBinding = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"azureIdentity": identity, "selector": selector}
        }))
        .expect("binding");
        Api::<AzureIdentityBinding>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &b)
            .await
            .expect("create binding");
    }

    pub async fn pod(&self, ns: &str, name: &str, node: &str, selector: &str) {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"aadpodidbinding": selector}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox"}]}
        }))
        .expect("pod");
        Api::<Pod>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &p)
            .await
            .expect("create pod");
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

    /// Wait until AAI `default/<name>` has `status`.
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
            tokio::time::sleep(Duration::from_millis(50)).await;
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// ARM requests by method so far.
    pub async fn arm_requests(&self, method: &str) -> usize {
        let (_, r) = self
            .control("GET", "/requests?family=arm&limit=100000", None)
            .await;
        r["items"]
            .as_array()
            .map(|a| a.iter().filter(|e| e["method"] == json!(method)).count())
            .unwrap_or(0)
    }
}
