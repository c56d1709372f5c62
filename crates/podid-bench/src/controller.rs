//! `podid-bench controller`: the planner on a large cluster, and the real `podid controller` process against
//! kube-sim and azure-sim (assignment latency, PATCHes per scale set, ARM calls when idle, RSS with 10,000 pods).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use podid_core::assign::{PodInfo, bench::synthetic_cluster};
use podid_k8s::{AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding};
use podid_testkit::Backend;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{percentile, report};

const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const MC: &str = "MC_bench";
const IDS: &str = "rg-ids";
const APP_ID: &str = "5a1f0000-0000-4000-8000-00000000a11c";
const APP_SECRET: &str = "bench-secret";

fn uami_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{IDS}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

fn client_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// The planner alone: 10,000 pods, 500 nodes in 20 scale sets, 200 identities.
pub fn planner() {
    let (mut cluster, cfg) = synthetic_cluster(10_000, 500, 20, 200);
    let measure = |c: &podid_core::assign::Cluster| {
        let mut v = Vec::new();
        let mut creates = 0;
        for _ in 0..7 {
            let t = Instant::now();
            let p = c.plan_all(&cfg);
            v.push(t.elapsed().as_secs_f64() * 1000.0);
            creates = p.creates.len();
        }
        v.sort_by(|a, b| a.total_cmp(b));
        (percentile(&v, 0.5), creates)
    };
    let (p50, _) = measure(&cluster);
    report(
        "planner: full plan, 10k pods, converged",
        p50,
        "ms p50",
        "< 50 ms",
        p50 < 50.0,
    );
    let (mut cold, _) = synthetic_cluster(10_000, 500, 20, 200);
    cold.reset_assigned(Vec::new());
    let (p50, creates) = measure(&cold);
    report(
        &format!("planner: full plan, 10k pods, from scratch ({creates} AAIs)"),
        p50,
        "ms p50",
        "< 50 ms",
        p50 < 50.0,
    );
    // Converge the index so single events are measured from a steady state.
    let _ = cluster.plan_dirty(&cfg);
    let mut one = Vec::new();
    for i in 0..500 {
        let pod = PodInfo {
            namespace: format!("ns-{}", i % 10),
            name: format!("extra-{i}"),
            node: format!("aks-pool-{:05}", i % 500),
            selector: format!("sel-{}", i % 200),
            finished: false,
        };
        let t = Instant::now();
        cluster.apply_pod(pod);
        let p = cluster.plan_dirty(&cfg);
        one.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(p);
    }
    one.sort_by(|a, b| a.total_cmp(b));
    let p50 = percentile(&one, 0.5);
    let p99 = percentile(&one, 0.99);
    report(
        "planner: one pod event (apply + plan_dirty) p50",
        p50,
        "ms",
        "< 1 ms",
        p50 < 1.0,
    );
    report("planner: one pod event p99", p99, "ms", "< 1 ms", p99 < 1.0);
}

struct Sims {
    kube: Kube,
    azure: azure_sim::Handle,
    dir: tempfile::TempDir,
    client: kube::Client,
    kubeconfig: PathBuf,
}

/// The API server a figure was measured against (each figure names it: the simulator must never be the reason a
/// benchmark looks good).
enum Kube {
    Sim(kube_sim::Handle),
    Real(Box<podid_testkit::real_kube::RealKube>),
}

impl Kube {
    async fn shutdown(self) {
        match self {
            Kube::Sim(h) => h.shutdown().await,
            Kube::Real(k) => k.shutdown().await,
        }
    }
}

fn world(vmss: usize, per_vmss: usize, identities: usize) -> Value {
    let ids: Vec<Value> = (0..identities)
        .map(|i| json!({"name": format!("id-{i}"), "resourceGroup": IDS, "clientId": client_id(i)}))
        .collect();
    let sets: Vec<Value> = (0..vmss)
        .map(|v| json!({"name": format!("pool{v}-vmss"), "resourceGroup": MC, "instances": vec![json!({}); per_vmss]}))
        .collect();
    json!({
        "tenants": [{"id": TENANT}], "subscriptions": [{"id": SUB}],
        "resourceGroups": [{"name": MC, "location": "westeurope"}, {"name": IDS, "location": "westeurope"}],
        "userAssignedIdentities": ids, "virtualMachineScaleSets": sets,
        "applications": [{"displayName": "mic", "appId": APP_ID, "secrets": [{"value": APP_SECRET}]}],
        "roleAssignments": [
            {"principalName": "mic", "roleDefinitionName": "Virtual Machine Contributor", "scope": format!("/subscriptions/{SUB}/resourceGroups/{MC}")},
            {"principalName": "mic", "roleDefinitionName": "Managed Identity Operator", "scope": format!("/subscriptions/{SUB}/resourceGroups/{IDS}")}
        ]
    })
}

fn node_name(v: usize, i: usize) -> String {
    format!("pool{v}-vmss{i:06}")
}

async fn sims(
    vmss: usize,
    per_vmss: usize,
    identities: usize,
    backend: Backend,
) -> anyhow::Result<Sims> {
    let dir = tempfile::tempdir()?;
    let (kube, kubeconfig) = match backend {
        Backend::Sim => {
            let h = kube_sim::start(kube_sim::Config {
                dir: Some(dir.path().join("kube")),
                ..kube_sim::Config::default()
            })
            .await?;
            let kc = h.kubeconfig.clone().context("kubeconfig")?;
            (Kube::Sim(h), kc)
        }
        Backend::Real => {
            let k = podid_testkit::real_kube::RealKube::start().await?;
            let kc = k.kubeconfig.clone();
            (Kube::Real(Box::new(k)), kc)
        }
    };
    let mut cfg =
        azure_sim::Config::from_text(&world(vmss, per_vmss, identities).to_string(), dir.path())?;
    cfg.dir = Some(dir.path().join("azure"));
    let azure = azure_sim::start(cfg).await?;
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?,
    )?;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in podid_k8s::crds() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for v in 0..vmss {
        for i in 0..per_vmss {
            let n: Node = serde_json::from_value(
                json!({"metadata": {"name": node_name(v, i)}, "spec": {"providerID":
                format!("azure:///subscriptions/{SUB}/resourceGroups/{MC}/providers/Microsoft.Compute/virtualMachineScaleSets/pool{v}-vmss/virtualMachines/{i}")}}),
            )?;
            nodes.create(&PostParams::default(), &n).await?;
        }
    }
    let e = azure.endpoints();
    std::fs::write(
        dir.path().join("azurestack.json"),
        json!({"name": "AzureStackCloud", "resourceManagerEndpoint": format!("{}/", e.arm.trim_end_matches('/')),
               "activeDirectoryEndpoint": format!("{}/", e.entra.trim_end_matches('/')), "tokenAudience": "https://management.azure.com/"})
        .to_string(),
    )?;
    std::fs::write(
        dir.path().join("azure.json"),
        json!({"cloud": "AzureStackCloud", "tenantId": TENANT, "aadClientId": APP_ID, "aadClientSecret": APP_SECRET,
               "subscriptionId": SUB, "resourceGroup": MC, "vmType": "vmss"})
        .to_string(),
    )?;
    Ok(Sims {
        kube,
        azure,
        dir,
        client,
        kubeconfig,
    })
}

pub(crate) fn podid_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("exe dir")?.join("podid");
    anyhow::ensure!(
        p.exists(),
        "{} not found: build it first (scripts/bench.sh does)",
        p.display()
    );
    Ok(p)
}

async fn start_controller(s: &Sims, extra: &[&str]) -> anyhow::Result<tokio::process::Child> {
    let ca = s.azure.endpoints().ca_file.context("ca file")?;
    let log = std::fs::File::create(s.dir.path().join("controller.log"))?;
    let mut child = tokio::process::Command::new(podid_binary()?)
        .arg("controller")
        .arg(format!("--kubeconfig={}", s.kubeconfig.display()))
        .arg(format!(
            "--cloudconfig={}",
            s.dir.path().join("azure.json").display()
        ))
        .args([
            "--http-probe-port",
            "0",
            "--prometheus-port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--arm-poll-interval",
            "1s",
        ])
        .arg(format!("--azure-ca-file={ca}"))
        .args(extra)
        .env("MIC_POD_NAMESPACE", "kube-system")
        .env(
            "AZURE_ENVIRONMENT_FILEPATH",
            s.dir.path().join("azurestack.json"),
        )
        .env("PODID_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("controller start")??
        .context("controller exited")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(child)
}

async fn create_identities(c: &kube::Client, n: usize) -> anyhow::Result<()> {
    let ids: Api<AzureIdentity> = Api::namespaced(c.clone(), "bench");
    let bs: Api<AzureIdentityBinding> = Api::namespaced(c.clone(), "bench");
    for i in 0..n {
        let id: AzureIdentity = serde_json::from_value(
            json!({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
            "metadata": {"name": format!("id-{i}"), "namespace": "bench"},
            "spec": {"type": 0, "resourceID": uami_id(&format!("id-{i}")), "clientID": client_id(i)}}),
        )?;
        ids.create(&PostParams::default(), &id).await?;
        let b: AzureIdentityBinding = serde_json::from_value(
            json!({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": format!("b-{i}"), "namespace": "bench"},
            "spec": {"azureIdentity": format!("id-{i}"), "selector": format!("sel-{i}")}}),
        )?;
        bs.create(&PostParams::default(), &b).await?;
    }
    Ok(())
}

async fn create_pods(
    c: &kube::Client,
    pods: usize,
    nodes: &[String],
    identities: usize,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(c.clone(), "bench");
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..pods)
        .map(|i| {
            let api = api.clone();
            let node = nodes[i % nodes.len()].clone();
            async move {
                let p: Pod = serde_json::from_value(
                    json!({"metadata": {"name": format!("p{i}"), "namespace": "bench",
                    "labels": {"aadpodidbinding": format!("sel-{}", i % identities)}},
                    "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}),
                )?;
                api.create(&PostParams::default(), &p).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn ns(c: &kube::Client) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bench"}}))?,
    )
    .await?;
    Ok(())
}

async fn wait_assigned(c: &kube::Client, want: usize, limit: Duration) -> anyhow::Result<Duration> {
    let api: Api<AzureAssignedIdentity> = Api::all(c.clone());
    let t = Instant::now();
    loop {
        let l = api.list(&Default::default()).await?;
        let n = l
            .items
            .iter()
            .filter(|a| {
                a.status
                    .as_ref()
                    .is_some_and(|s| s.status.as_str() == "Assigned")
            })
            .count();
        if n >= want {
            return Ok(t.elapsed());
        }
        anyhow::ensure!(
            t.elapsed() < limit,
            "only {n} of {want} AzureAssignedIdentities Assigned after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(if want > 1000 { 500 } else { 20 })).await;
    }
}

async fn control(s: &Sims, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let url = format!(
        "{}{path}",
        s.azure.endpoints().control.trim_end_matches('/')
    );
    let rest = url.trim_start_matches("http://");
    let (host, p) = rest.split_once('/').context("url")?;
    let stream = tokio::net::TcpStream::connect(host).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(format!("/{p}"))
        .header("host", host)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))?;
    let resp = sender.send_request(req).await?;
    let b = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    Ok(serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn arm_count(s: &Sims, method: &str) -> anyhow::Result<usize> {
    let r = control(s, "GET", "/requests?family=arm&limit=1000000", None).await?;
    Ok(r["items"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["method"] == json!(method)).count())
        .unwrap_or(0))
}

/// 40 pods over 4 identities on one scale set, with a given scale-set PATCH duration.
pub async fn forty_pods(patch_ms: u64) -> anyhow::Result<()> {
    let s = sims(1, 2, 4, Backend::Sim).await?;
    control(
        &s,
        "PATCH",
        "/settings",
        Some(json!({"lroVirtualMachineScaleSetsMs": patch_ms, "lroRetryAfterSecs": 1})),
    )
    .await?;
    ns(&s.client).await?;
    create_identities(&s.client, 4).await?;
    let _ctl = start_controller(&s, &[]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = arm_count(&s, "PATCH").await?;
    let t = Instant::now();
    create_pods(&s.client, 40, &[node_name(0, 0), node_name(0, 1)], 4).await?;
    wait_assigned(&s.client, 40, Duration::from_secs(patch_ms / 1000 * 4 + 60)).await?;
    let took = t.elapsed().as_secs_f64();
    let patches = arm_count(&s, "PATCH").await? - before;
    if patch_ms == 0 {
        report(
            "controller: 40 pods / 4 identities all Assigned (ARM latency 0)",
            took,
            "s",
            "< 2 s",
            took < 2.0,
        );
    } else {
        let ratio = took / (patch_ms as f64 / 1000.0);
        report(
            &format!(
                "controller: 40 pods Assigned, {} s scale-set PATCH",
                patch_ms / 1000
            ),
            took,
            "s",
            "~1 PATCH",
            ratio < 1.5,
        );
        report(
            "controller: time / PATCH duration",
            ratio,
            "x",
            "~1",
            ratio < 1.5,
        );
    }
    report(
        "controller: PATCHes for the 40 pods (one scale set)",
        patches as f64,
        "calls",
        "1",
        patches == 1,
    );
    s.kube.shutdown().await;
    s.azure.shutdown().await;
    Ok(())
}

fn rss_of(pid: u32) -> f64 {
    crate::rss_mb_of(&pid.to_string())
}

/// 10,000 pods on 500 nodes in 20 scale sets with 200 identities: convergence, RSS, ARM calls when idle.
pub async fn large(pods: usize, idle_secs: u64, backend: Backend) -> anyhow::Result<()> {
    let (vmss, per, identities) = (20usize, 25usize, 200usize);
    println!(
        "  Kubernetes API: {backend} (kube-sim in this process, or real: etcd + kube-apiserver + kube-controller-manager)"
    );
    let s = sims(vmss, per, identities, backend).await?;
    ns(&s.client).await?;
    create_identities(&s.client, identities).await?;
    // Node of pod i: scale set i % 20, so each scale set needs 10 identities.
    let nodes: Vec<String> = (0..vmss * per)
        .map(|k| node_name(k % vmss, (k / vmss) % per))
        .collect();
    let t = Instant::now();
    create_pods(&s.client, pods, &nodes, identities).await?;
    println!(
        "  created {pods} pods in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let reconcile = 2u64;
    let ctl = start_controller(
        &s,
        &[
            &format!("--identity-assignment-reconcile-interval={reconcile}s"),
            "--syncRetryDuration=5s",
        ],
    )
    .await?;
    let pid = ctl.id().context("pid")?;
    let t = Instant::now();
    wait_assigned(&s.client, pods, Duration::from_secs(300)).await?;
    let took = t.elapsed().as_secs_f64();
    report(
        &format!("controller: {pods} pods converged (AAIs Assigned), {backend} API"),
        took,
        "s",
        "report",
        true,
    );
    let rss = rss_of(pid);
    report(
        &format!("controller: RSS with {pods} pods"),
        rss,
        "MB",
        "< 100 MB",
        rss < 100.0,
    );
    // Idle: count ARM calls over a window of reconciles (interval shortened) and full re-plans.
    let before_get = arm_count(&s, "GET").await?;
    let before_patch = arm_count(&s, "PATCH").await?;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let gets = arm_count(&s, "GET").await? - before_get;
    let patches = arm_count(&s, "PATCH").await? - before_patch;
    let cycles = (idle_secs / reconcile).max(1) as f64;
    let per_cycle = (gets + patches) as f64 / cycles;
    // Defaults: reconcile every 3 min (20 per hour); the hourly full re-plan makes no ARM call when converged.
    report(
        "controller: ARM calls per reconcile (20 scale sets)",
        per_cycle,
        "calls",
        "report",
        patches == 0,
    );
    report(
        "controller: ARM calls in an idle hour (defaults)",
        per_cycle * 20.0,
        "calls",
        "report",
        patches == 0,
    );
    let rss = rss_of(pid);
    report(
        "controller: RSS after idle period",
        rss,
        "MB",
        "< 100 MB",
        rss < 100.0,
    );
    drop(ctl);
    s.kube.shutdown().await;
    s.azure.shutdown().await;
    Ok(())
}
