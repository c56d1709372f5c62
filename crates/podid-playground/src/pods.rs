//! The playground's node-side machinery for pods: a scheduler (pods without `spec.nodeName` are bound to the
//! node with the fewest pods, through the `pods/binding` subresource as the real scheduler does) and the pod
//! network (once the kubelet, `podid-kubelet`, gave a pod its IP, a namespace with that IP is wired behind its
//! node's bridge and `<dir>/pods/<uid>.json` announces it to `podid run`). Deleted pods lose their namespace and
//! record.
//!
//! One watch over all pods drives both. Namespace work shells out to `ip` and runs under `block_in_place`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use tokio::sync::watch;

use crate::net::{NodeNs, PodNs};
use crate::state::{self, PodRecord};

/// The nodes the pod machinery serves.
pub struct PodNet {
    /// Node name -> its namespace (netns mode) or None (loopback mode).
    pub nodes: BTreeMap<String, Option<Arc<NodeNs>>>,
    /// Key Vault names for the pods' hosts files.
    pub vaults: Vec<String>,
    /// The playground directory (pod records).
    pub dir: PathBuf,
}

struct Wired {
    ns: Option<PodNs>,
    ip: IpAddr,
}

/// Runs until `stop` flips, then deletes every pod namespace it wired and its record.
pub async fn run(client: kube::Client, net: PodNet, mut stop: watch::Receiver<bool>) {
    let api: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut wired: HashMap<String, Wired> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = stop.changed() => break,
        };
        match ev {
            Some(Ok(Event::Init)) => seen.clear(),
            Some(Ok(Event::InitApply(p))) => {
                if let Some(uid) = p.metadata.uid.clone() {
                    seen.insert(uid);
                }
                handle(&client, &net, &mut wired, &p).await;
            }
            Some(Ok(Event::InitDone)) => {
                let gone: Vec<String> = wired
                    .keys()
                    .filter(|u| !seen.contains(*u))
                    .cloned()
                    .collect();
                for uid in gone {
                    unwire(&net, &mut wired, &uid);
                }
            }
            Some(Ok(Event::Apply(p))) => handle(&client, &net, &mut wired, &p).await,
            Some(Ok(Event::Delete(p))) => {
                if let Some(uid) = p.metadata.uid.as_deref() {
                    unwire(&net, &mut wired, uid);
                }
            }
            Some(Err(e)) => tracing::debug!(error = %e, "pod watch error (retrying)"),
            None => break,
        }
    }
    let uids: Vec<String> = wired.keys().cloned().collect();
    for uid in uids {
        unwire(&net, &mut wired, &uid);
    }
}

async fn handle(client: &kube::Client, net: &PodNet, wired: &mut HashMap<String, Wired>, p: &Pod) {
    let Some(uid) = p.metadata.uid.clone() else {
        return;
    };
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    let name = p.metadata.name.clone().unwrap_or_default();
    let spec = p.spec.as_ref();
    let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
    let deleting = p.metadata.deletion_timestamp.is_some();
    if node.is_empty() {
        if !deleting {
            schedule(client, net, &ns, &name).await;
        }
        return;
    }
    let status = p.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let ip: Option<IpAddr> = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|s| s.parse().ok());
    let Some(node_ns) = net.nodes.get(&node) else {
        return;
    };
    let live = !deleting && !host_network && matches!(phase, "Running" | "Pending");
    match (live, ip) {
        (true, Some(ip)) => {
            if wired.get(&uid).is_some_and(|w| w.ip == ip) {
                return;
            }
            unwire(net, wired, &uid);
            let ns_handle = match node_ns {
                Some(node_ns) => {
                    let IpAddr::V4(v4) = ip else {
                        tracing::warn!(%ns, pod = %name, %ip, "IPv6 pod addresses are not simulated");
                        return;
                    };
                    let made = tokio::task::block_in_place(|| {
                        node_ns.add_pod(&ns, &name, v4, &net.vaults)
                    });
                    match made {
                        Ok(p) => Some(p),
                        Err(e) => {
                            tracing::warn!(%ns, pod = %name, error = %e, "could not wire the pod's network namespace");
                            return;
                        }
                    }
                }
                None => None,
            };
            let record = PodRecord {
                uid: uid.clone(),
                namespace: ns.clone(),
                name: name.clone(),
                node: node.clone(),
                ip,
                netns: ns_handle.as_ref().map(|n| n.name().to_string()),
            };
            if let Err(e) = state::write_json(&state::pod_path(&net.dir, &uid), &record) {
                tracing::warn!(%ns, pod = %name, error = %e, "could not write the pod record");
            }
            tracing::info!(%ns, pod = %name, %node, %ip, netns = ?record.netns, "pod network ready");
            wired.insert(uid, Wired { ns: ns_handle, ip });
        }
        _ => unwire(net, wired, &uid),
    }
}

fn unwire(net: &PodNet, wired: &mut HashMap<String, Wired>, uid: &str) {
    let _ = std::fs::remove_file(state::pod_path(&net.dir, uid));
    if let Some(w) = wired.remove(uid) {
        tokio::task::block_in_place(|| drop(w.ns));
    }
}

/// Binds a pod to the node with the fewest pods (ties: the first by name).
async fn schedule(client: &kube::Client, net: &PodNet, ns: &str, name: &str) {
    let all: Api<Pod> = Api::all(client.clone());
    let mut counts: BTreeMap<&str, usize> = net.nodes.keys().map(|n| (n.as_str(), 0)).collect();
    if let Ok(list) = all.list(&Default::default()).await {
        for p in list {
            if let Some(n) = p.spec.and_then(|s| s.node_name)
                && let Some(c) = counts.get_mut(n.as_str())
            {
                *c += 1;
            }
        }
    }
    let Some((node, _)) = counts.iter().min_by_key(|(n, c)| (**c, **n)) else {
        return;
    };
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}
    });
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api
        .create_subresource::<serde_json::Value, serde_json::Value>(
            "binding",
            name,
            &PostParams::default(),
            &binding,
        )
        .await
    {
        Ok(_) => tracing::info!(%ns, pod = %name, %node, "scheduled"),
        Err(e) => tracing::debug!(%ns, pod = %name, error = %e, "binding failed (already bound?)"),
    }
}
