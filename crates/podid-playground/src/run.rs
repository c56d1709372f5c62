//! `podid run NAMESPACE/POD -- CMD ...`: a local program as the pod's application.
//!
//! The program runs inside the pod's network namespace (`ip netns exec`, which also bind-mounts the namespace's
//! `/etc/netns` hosts and resolv.conf for this program only), so it calls `169.254.169.254` and the Azure host names
//! exactly as it would in the pod. Its environment is the pod's, built the way the kubelet builds it: the
//! container's `env` (literal values, `fieldRef`, `secretKeyRef`, `configMapKeyRef`, `$(VAR)` references) and
//! `envFrom`, plus `KUBERNETES_SERVICE_HOST/PORT` and `HOSTNAME`, plus the caller's `PATH`, `HOME`, `LANG`,
//! `TERM` and `USER` so local programs are found. The pod's projected volumes live where the kubelet wrote them;
//! an env value under a volume's `mountPath` is rewritten to that place (there is no mount namespace for the
//! container's file system). The simulators' CA bundle is trusted through `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`,
//! `CURL_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS`, as a real pod's image trusts the public CAs.
//!
//! Without namespaces (loopback mode) the program runs in the host namespace and cannot reach 169.254.169.254;
//! `podid run` then relays a loopback port to the node's agent *from the pod's own address* (so the agent sees the
//! pod) and sets `AZURE_POD_IDENTITY_AUTHORITY_HOST` to it, and says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Api;
use serde_json::Value;

use crate::state::{self, NetMode, PodRecord, State};

/// How long `podid run` waits for an existing pod to be scheduled, get its IP and its network.
pub const POD_WAIT: Duration = Duration::from_secs(60);
/// Poll interval while waiting.
const POLL: Duration = Duration::from_millis(100);
/// Caller variables a program run as a pod keeps.
const KEPT_VARS: [&str; 6] = ["PATH", "HOME", "LANG", "TERM", "USER", "LC_ALL"];

/// `podid run` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The pod, `NAMESPACE/POD` (or `POD` in `default`).
    pub target: String,
    /// The playground directory (default: $PODID_UP_DIR, else .podid/up).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Container whose environment to use (default: the first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Extra environment variables, `NAME=VALUE` (repeatable; override the pod's).
    #[arg(short = 'e', long = "env", value_parser = parse_kv)]
    pub env: Vec<(String, String)>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

/// `NS/POD` or `POD` (namespace `default`).
pub fn parse_target(t: &str) -> anyhow::Result<(String, String)> {
    let (ns, pod) = match t.split_once('/') {
        Some((ns, pod)) => (ns, pod),
        None => ("default", t),
    };
    anyhow::ensure!(
        !ns.is_empty() && !pod.is_empty() && !pod.contains('/'),
        "expected NAMESPACE/POD, got {t:?}"
    );
    Ok((ns.to_string(), pod.to_string()))
}

/// An admin client for the playground's kube-sim.
pub async fn client(state: &State) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(&state.kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Why pod `ns/name` is not there, in words a user can act on: the pods its namespace does have, or that the
/// namespace itself is missing.
async fn missing_pod(client: &kube::Client, ns: &str, name: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let head = format!("pod {ns}/{name} does not exist");
    if let Ok(None) = Api::<Namespace>::all(client.clone()).get_opt(ns).await {
        return format!("{head}: there is no namespace {ns:?} (kubectl get namespaces)");
    }
    let names: Vec<String> = match Api::<Pod>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect(),
        Err(_) => return head,
    };
    if names.is_empty() {
        format!(
            "{head}: namespace {ns} has no pods (create it first, e.g. kubectl apply -f pod.yaml)"
        )
    } else {
        format!("{head}; pods in {ns}: {}", names.join(", "))
    }
}

/// Waits until the pod has its network wired; returns the pod and its record. A pod that does not exist fails
/// at once (a typo should not cost `timeout`); one that exists but is not scheduled or wired yet is waited for.
pub async fn wait_for_pod(
    client: &kube::Client,
    dir: &Path,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<(Pod, PodRecord)> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    let mut last = String::from("not wired yet");
    while start.elapsed() < timeout {
        match api.get_opt(name).await {
            Ok(Some(pod)) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
                    anyhow::bail!(
                        "pod {ns}/{name} uses the host network: it has no namespace of its own to run in"
                    );
                }
                if let Some(rec) = state::load_pod(dir, &uid) {
                    return Ok((pod, rec));
                }
                last = match pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()) {
                    Some(ip) => format!("has IP {ip}, network not wired yet"),
                    None => "has no IP yet (not scheduled to a simulated node?)".into(),
                };
            }
            Ok(None) => anyhow::bail!("{}", missing_pod(client, ns, name).await),
            Err(e) => last = format!("API error: {e}"),
        }
        tokio::time::sleep(POLL).await;
    }
    anyhow::bail!("pod {ns}/{name} not ready within {timeout:?}: {last}")
}

/// Secrets and config maps a container's environment refers to, fetched up front.
#[derive(Debug, Default)]
pub struct EnvSources {
    /// Secret name -> key -> value.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// ConfigMap name -> key -> value.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

fn container<'a>(pod: &'a Value, name: Option<&str>) -> anyhow::Result<&'a Value> {
    let cs = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("the pod has no containers"))?;
    match name {
        None => cs
            .first()
            .ok_or_else(|| anyhow::anyhow!("the pod has no containers")),
        Some(n) => cs.iter().find(|c| c["name"] == n).ok_or_else(|| {
            anyhow::anyhow!("the pod has no container {n:?} (has: {})", {
                let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
                names.join(", ")
            })
        }),
    }
}

/// Names of the secrets and config maps a container's environment needs.
pub fn referenced(pod: &Value, container_name: Option<&str>) -> (Vec<String>, Vec<String>) {
    let Ok(c) = container(pod, container_name) else {
        return (Vec::new(), Vec::new());
    };
    let mut secrets = Vec::new();
    let mut cms = Vec::new();
    for e in c["env"].as_array().into_iter().flatten() {
        if let Some(n) = e
            .pointer("/valueFrom/secretKeyRef/name")
            .and_then(Value::as_str)
        {
            secrets.push(n.to_string());
        }
        if let Some(n) = e
            .pointer("/valueFrom/configMapKeyRef/name")
            .and_then(Value::as_str)
        {
            cms.push(n.to_string());
        }
    }
    for e in c["envFrom"].as_array().into_iter().flatten() {
        if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
            secrets.push(n.to_string());
        }
        if let Some(n) = e.pointer("/configMapRef/name").and_then(Value::as_str) {
            cms.push(n.to_string());
        }
    }
    secrets.sort();
    secrets.dedup();
    cms.sort();
    cms.dedup();
    (secrets, cms)
}

/// Expands `$(VAR)` references against the variables defined so far (`$$` escapes, unknown left as is).
fn expand(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("$(")
            && let Some(end) = t.find(')')
        {
            let name = &t[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&tail[..end + 3]),
            }
            rest = &t[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn field_value(pod: &Value, path: &str) -> Option<String> {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).map(str::to_string);
    match path {
        "metadata.name" => s("/metadata/name"),
        "metadata.namespace" => s("/metadata/namespace"),
        "metadata.uid" => s("/metadata/uid"),
        "spec.nodeName" => s("/spec/nodeName"),
        "spec.serviceAccountName" => s("/spec/serviceAccountName"),
        "status.podIP" => s("/status/podIP"),
        "status.hostIP" => s("/status/hostIP"),
        p => {
            for (prefix, map) in [
                ("metadata.labels['", "/metadata/labels"),
                ("metadata.annotations['", "/metadata/annotations"),
            ] {
                if let Some(key) = p.strip_prefix(prefix).and_then(|k| k.strip_suffix("']")) {
                    return pod
                        .pointer(map)
                        .and_then(|m| m.get(key))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
            }
            None
        }
    }
}

/// The pod container's environment as the kubelet would build it (pure). `volume_dirs` maps a projected
/// volume's name to where the kubelet wrote it; values under its mount path are rewritten there.
pub fn pod_env(
    pod: &Value,
    container_name: Option<&str>,
    sources: &EnvSources,
    volume_dirs: &BTreeMap<String, PathBuf>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let c = container(pod, container_name)?;
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for e in c["envFrom"].as_array().into_iter().flatten() {
        let prefix = e["prefix"].as_str().unwrap_or("");
        let map = if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
            sources.secrets.get(n)
        } else if let Some(n) = e.pointer("/configMapRef/name").and_then(Value::as_str) {
            sources.config_maps.get(n)
        } else {
            None
        };
        for (k, v) in map.into_iter().flatten() {
            vars.insert(format!("{prefix}{k}"), v.clone());
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else {
            continue;
        };
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            Some(expand(v, &vars))
        } else if let Some(p) = e
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            field_value(pod, p)
        } else if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
            r["name"]
                .as_str()
                .and_then(|n| sources.secrets.get(n))
                .and_then(|m| m.get(r["key"].as_str().unwrap_or("")))
                .cloned()
        } else if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
            r["name"]
                .as_str()
                .and_then(|n| sources.config_maps.get(n))
                .and_then(|m| m.get(r["key"].as_str().unwrap_or("")))
                .cloned()
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            vars.insert(name.to_string(), v);
        }
    }
    // Paths under a projected volume's mount point point at the kubelet's copy.
    let mounts: Vec<(String, PathBuf)> = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let vol = m["name"].as_str()?;
            let path = m["mountPath"].as_str()?.trim_end_matches('/').to_string();
            Some((path, volume_dirs.get(vol)?.clone()))
        })
        .collect();
    for v in vars.values_mut() {
        for (mount, dir) in &mounts {
            if let Some(rest) = v.strip_prefix(mount.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                *v = format!("{}{rest}", dir.display());
                break;
            }
        }
    }
    Ok(vars)
}

/// Everything needed to start a program as a pod.
pub struct Prepared {
    /// The command (`ip netns exec <ns> CMD ...` in netns mode).
    pub command: tokio::process::Command,
    /// A relay to keep alive while the program runs (loopback mode).
    pub relay: Option<tokio::task::JoinHandle<()>>,
    /// Stops the relay.
    pub relay_stop: Option<tokio::sync::watch::Sender<bool>>,
    /// A line to print first (loopback mode says what it does instead).
    pub notice: Option<String>,
}

/// Builds the command that runs `argv` as pod `ns/name` of the playground.
pub async fn prepare(
    state: &State,
    client: &kube::Client,
    pod: &Pod,
    rec: &PodRecord,
    container_name: Option<&str>,
    extra_env: &[(String, String)],
    argv: &[String],
) -> anyhow::Result<Prepared> {
    anyhow::ensure!(
        !argv.is_empty(),
        "no program given (podid run NS/POD -- CMD ...)"
    );
    let pod_json = serde_json::to_value(pod)?;
    let (secret_names, cm_names) = referenced(&pod_json, container_name);
    let mut sources = EnvSources::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &rec.namespace);
    for n in secret_names {
        if let Ok(Some(s)) = secrets.get_opt(&n).await {
            let m = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            sources.secrets.insert(n, m);
        }
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &rec.namespace);
    for n in cm_names {
        if let Ok(Some(c)) = cms.get_opt(&n).await {
            sources
                .config_maps
                .insert(n, c.data.unwrap_or_default().into_iter().collect());
        }
    }
    let volume_dirs: BTreeMap<String, PathBuf> = pod_json
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("projected").is_some())
        .filter_map(|v| {
            let n = v["name"].as_str()?;
            Some((
                n.to_string(),
                podid_kubelet::projected_dir(&state.kubelet_dir, &rec.uid, n),
            ))
        })
        .collect();
    let env = pod_env(&pod_json, container_name, &sources, &volume_dirs)?;
    let mut base: BTreeMap<String, String> = KEPT_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    base.insert("HOSTNAME".into(), rec.name.clone());
    let ca = state.ca_bundle.display().to_string();
    for k in [
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
    ] {
        base.insert(k.into(), ca.clone());
    }
    let mut notice = None;
    let mut relay = None;
    let mut relay_stop = None;
    match state.mode {
        NetMode::Netns => {
            base.insert(
                "KUBERNETES_SERVICE_HOST".into(),
                crate::net::KUBE_API_IP.to_string(),
            );
            base.insert("KUBERNETES_SERVICE_PORT".into(), "443".into());
        }
        NetMode::Loopback => {
            let node = state
                .nodes
                .iter()
                .find(|n| n.name == rec.node)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "pod {}/{} runs on unknown node {}",
                        rec.namespace,
                        rec.name,
                        rec.node
                    )
                })?;
            let agent: std::net::SocketAddr = node
                .agent_url
                .trim_start_matches("http://")
                .parse()
                .map_err(|e| anyhow::anyhow!("agent address {}: {e}", node.agent_url))?;
            let listener =
                crate::relay::bind_in(&crate::relay::Side::Host, "127.0.0.1:0".parse()?).await?;
            let local = listener.local_addr()?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            relay = Some(crate::relay::spawn(
                listener,
                crate::relay::Side::HostFrom(rec.ip),
                agent,
                rx,
            ));
            relay_stop = Some(tx);
            let url = format!("http://{local}");
            base.insert("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), url.clone());
            base.insert(
                "PODID_ARM_URL".into(),
                state.azure.get("arm").cloned().unwrap_or_default(),
            );
            base.insert(
                "PODID_KEYVAULT_URL".into(),
                state.azure.get("keyvault").cloned().unwrap_or_default(),
            );
            notice = Some(format!(
                "podid run: this playground has no network namespaces (loopback mode), so {} cannot call 169.254.169.254; it reaches its node's agent at {url} (AZURE_POD_IDENTITY_AUTHORITY_HOST) from the pod's address {}",
                argv[0], rec.ip
            ));
            if let Some((host, port)) = state
                .kube_url
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .rsplit_once(':')
            {
                base.insert("KUBERNETES_SERVICE_HOST".into(), host.to_string());
                base.insert("KUBERNETES_SERVICE_PORT".into(), port.to_string());
            }
        }
    }
    for (k, v) in env {
        base.insert(k, v);
    }
    for (k, v) in extra_env {
        base.insert(k.clone(), v.clone());
    }
    let mut command = match (&state.mode, &rec.netns) {
        (NetMode::Netns, Some(ns)) => {
            let ip = find_tool("ip").ok_or_else(|| anyhow::anyhow!("`ip` (iproute2) not found"))?;
            let mut c = tokio::process::Command::new(ip);
            c.args(["netns", "exec", ns]).args(argv);
            c
        }
        (NetMode::Netns, None) => anyhow::bail!(
            "pod {}/{} has no network namespace",
            rec.namespace,
            rec.name
        ),
        (NetMode::Loopback, _) => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    command.env_clear().envs(base);
    Ok(Prepared {
        command,
        relay,
        relay_stop,
        notice,
    })
}

/// The absolute path of `name` on `$PATH` or in the sbin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `podid run`: returns the program's exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let dir = state::resolve_dir(args.dir.clone());
    let state = state::load(&dir)?;
    let (ns, name) = parse_target(&args.target)?;
    let client = client(&state).await?;
    let (pod, rec) = wait_for_pod(&client, &dir, &ns, &name, POD_WAIT).await?;
    let mut prepared = prepare(
        &state,
        &client,
        &pod,
        &rec,
        args.container.as_deref(),
        &args.env,
        &args.command,
    )
    .await?;
    if let Some(n) = &prepared.notice {
        eprintln!("{n}");
    }
    let status = prepared
        .command
        .status()
        .await
        .map_err(|e| anyhow::anyhow!("start {}: {e}", args.command[0]))?;
    if let Some(tx) = prepared.relay_stop.take() {
        let _ = tx.send(true);
    }
    if let Some(r) = prepared.relay.take() {
        let _ = r.await;
    }
    Ok(status.code().unwrap_or(128))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "demo", "namespace": "my-app", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"nodeName": "n0", "serviceAccountName": "sa",
                "containers": [{"name": "c", "env": [
                    {"name": "A", "value": "a"},
                    {"name": "B", "value": "$(A)-b-$(MISSING)-$$(A)"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "LBL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                    {"name": "AZURE_FEDERATED_TOKEN_FILE", "value": "/var/run/secrets/azure/tokens/azure-identity-token"}
                ], "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                "volumeMounts": [{"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens"}]},
                {"name": "side"}]},
            "status": {"podIP": "10.244.0.5"}
        })
    }

    #[test]
    fn env_is_built_like_the_kubelet_does() {
        let p = pod();
        assert_eq!(
            referenced(&p, None),
            (vec!["s1".to_string()], vec!["cm".to_string()])
        );
        let mut sources = EnvSources::default();
        sources
            .secrets
            .insert("s1".into(), [("k".to_string(), "sv".to_string())].into());
        sources
            .config_maps
            .insert("cm".into(), [("x".to_string(), "1".to_string())].into());
        let dirs = [(
            "azure-identity-token".to_string(),
            PathBuf::from("/k/pods/u1/vol"),
        )]
        .into();
        let env = pod_env(&p, None, &sources, &dirs).expect("env");
        assert_eq!(env["A"], "a");
        assert_eq!(env["B"], "a-b-$(MISSING)-$(A)");
        assert_eq!(env["POD"], "demo");
        assert_eq!(env["IP"], "10.244.0.5");
        assert_eq!(env["LBL"], "x");
        assert_eq!(env["S"], "sv");
        assert_eq!(env["CM_x"], "1");
        assert_eq!(
            env["AZURE_FEDERATED_TOKEN_FILE"],
            "/k/pods/u1/vol/azure-identity-token"
        );
        assert!(
            pod_env(&p, Some("nope"), &sources, &dirs)
                .unwrap_err()
                .to_string()
                .contains("c, side")
        );
        assert!(
            pod_env(&p, Some("side"), &sources, &dirs)
                .expect("side")
                .is_empty()
        );
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("my-app/demo").unwrap(),
            ("my-app".into(), "demo".into())
        );
        assert_eq!(
            parse_target("demo").unwrap(),
            ("default".into(), "demo".into())
        );
        assert!(parse_target("a/b/c").is_err());
        assert!(parse_target("/x").is_err());
    }
}
