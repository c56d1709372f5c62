//! A small kubelet for every registered node.
//!
//! For a pod bound to a Node object that exists, it allocates an IP from the node's `spec.podCIDR` (assigning
//! the node a /24 from 10.244.0.0/16 when it has none), sets phase Running with the usual conditions and container
//! statuses, and writes the pod's projected volumes under
//! `<dir>/pods/<pod-uid>/volumes/kubernetes.io~projected/<volume>/<path>`, the real kubelet layout, so programs
//! run "as the pod" read them where the pod would. Service-account tokens are minted bound to the pod and
//! rewritten at 80% of their lifetime (or after 24 h), as the kubelet does; all files are replaced atomically.
//! Pods that disappear get their directory removed and their IP released.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::Sim;
use crate::error::ApiError;
use crate::resources::ResKey;
use crate::store::ChangeType;

/// Pod CIDRs handed to nodes that have none: 10.244.N.0/24.
const CLUSTER_CIDR_BASE: [u8; 2] = [10, 244];
/// Refresh a token when this fraction of its lifetime has passed (kubelet: 80%).
const REFRESH_FRACTION: f64 = 0.8;
/// Refresh at least this often (kubelet: 24 h).
const MAX_TOKEN_AGE_SECS: i64 = 24 * 3600;

use crate::meta::meta_str;

/// Parse `a.b.c.d/nn` into (network, prefix).
pub fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if len > 30 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

/// Lowest free host address of a CIDR, skipping the network address and `.1` (the node bridge).
pub fn allocate(cidr: &str, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let (net, len) = parse_cidr(cidr)?;
    let size = 1u64 << (32 - len);
    (2..size - 1)
        .map(|i| Ipv4Addr::from(net + i as u32))
        .find(|ip| !used.contains(ip))
}

#[derive(Default)]
struct State {
    /// pod uid -> (node, ip)
    ips: HashMap<String, (String, Ipv4Addr)>,
    /// pod uid -> (ns, name)
    pods: HashMap<String, (String, String)>,
    /// (pod uid, volume, path) -> (written at, refresh at)
    tokens: BTreeMap<(String, String, String), (i64, i64)>,
}

/// Run the kubelet loop.
pub async fn run(sim: Arc<Sim>) {
    let Some(dir) = sim.config.kubelet_dir.clone() else {
        return;
    };
    let mut state = State::default();
    let pods = ResKey::new("", "pods");
    let nodes = ResKey::new("", "nodes");
    let mut shutdown = sim.shutdown.clone();
    let mut tick = tokio::time::interval(sim.config.kubelet_resync);
    loop {
        let (mut pod_rx, mut node_rx) = match (
            sim.store.watch(&pods, None, None),
            sim.store.watch(&nodes, None, None),
        ) {
            (Ok(p), Ok(n)) => (p.receiver, n.receiver),
            _ => return,
        };
        resync(&sim, &dir, &mut state);
        loop {
            tokio::select! {
                r = pod_rx.recv() => match r {
                    Ok(c) => {
                        if c.kind == ChangeType::Deleted {
                            forget(&dir, &mut state, meta_str(&c.object, "uid"));
                        } else {
                            sync_pod(&sim, &dir, &mut state, &c.object);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => break,
                },
                r = node_rx.recv() => match r {
                    Ok(_) => resync(&sim, &dir, &mut state),
                    Err(_) => break,
                },
                _ = tick.tick() => refresh_tokens(&sim, &dir, &mut state),
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn resync(sim: &Sim, dir: &Path, state: &mut State) {
    let (all, _, _) = sim
        .store
        .list(&ResKey::new("", "pods"), None, None, None, None, &|_| true);
    let live: HashSet<String> = all.iter().map(|p| meta_str(p, "uid").to_string()).collect();
    let gone: Vec<String> = state
        .pods
        .keys()
        .filter(|u| !live.contains(*u))
        .cloned()
        .collect();
    for uid in gone {
        forget(dir, state, &uid);
    }
    for p in all {
        sync_pod(sim, dir, state, &p);
    }
}

fn forget(dir: &Path, state: &mut State, uid: &str) {
    if uid.is_empty() {
        return;
    }
    state.ips.remove(uid);
    state.pods.remove(uid);
    state.tokens.retain(|k, _| k.0 != uid);
    let _ = std::fs::remove_dir_all(pod_dir(dir, uid));
}

fn pod_dir(dir: &Path, uid: &str) -> PathBuf {
    dir.join("pods").join(uid)
}

/// Directory of a projected volume of a pod, as the kubelet lays it out.
pub fn projected_dir(dir: &Path, pod_uid: &str, volume: &str) -> PathBuf {
    pod_dir(dir, pod_uid)
        .join("volumes")
        .join("kubernetes.io~projected")
        .join(volume)
}

fn node_cidr(sim: &Sim, node_name: &str) -> Option<(String, String)> {
    let key = ResKey::new("", "nodes");
    let node = sim.store.get(&key, "", node_name)?;
    let host_ip = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("")
        .to_string();
    if let Some(c) = node
        .pointer("/spec/podCIDR")
        .and_then(Value::as_str)
        .filter(|c| parse_cidr(c).is_some())
    {
        return Some((c.to_string(), host_ip));
    }
    // Give the node the next free /24, as the node IPAM controller would.
    let (all, _, _) = sim.store.list(&key, None, None, None, None, &|_| true);
    let used: HashSet<String> = all
        .iter()
        .filter_map(|n| n.pointer("/spec/podCIDR").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let cidr = (0..=255u16)
        .map(|i| format!("{}.{}.{i}.0/24", CLUSTER_CIDR_BASE[0], CLUSTER_CIDR_BASE[1]))
        .find(|c| !used.contains(c))?;
    let res = sim.store.update(
        &key,
        "",
        node_name,
        &mut |cur| {
            if cur
                .pointer("/spec/podCIDR")
                .and_then(Value::as_str)
                .is_some()
            {
                return Ok(None);
            }
            if cur
                .get("spec")
                .is_some_and(|s| !s.is_object() && !s.is_null())
            {
                return Ok(None);
            }
            let mut v = (**cur).clone();
            v["spec"]["podCIDR"] = json!(cidr);
            v["spec"]["podCIDRs"] = json!([cidr]);
            Ok(Some(v))
        },
        || ApiError::not_found("nodes", "", node_name),
    );
    match res {
        Ok((n, _)) => n
            .pointer("/spec/podCIDR")
            .and_then(Value::as_str)
            .map(|c| (c.to_string(), host_ip)),
        Err(_) => None,
    }
}

fn sync_pod(sim: &Sim, dir: &Path, state: &mut State, pod: &Value) {
    let uid = meta_str(pod, "uid").to_string();
    let ns = meta_str(pod, "namespace").to_string();
    let name = meta_str(pod, "name").to_string();
    let Some(node) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    let Some((cidr, host_ip)) = node_cidr(sim, node) else {
        return;
    };
    state.pods.insert(uid.clone(), (ns.clone(), name.clone()));
    write_volumes(sim, dir, state, pod, false);
    let host_network = pod
        .pointer("/spec/hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let has_ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if has_ip && pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running") {
        if let Some(ip) = pod
            .pointer("/status/podIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            state.ips.entry(uid).or_insert((node.to_string(), ip));
        }
        return;
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let ip = if host_network {
        host_ip.clone()
    } else {
        let used: HashSet<Ipv4Addr> = state
            .ips
            .values()
            .filter(|(n, _)| n == node)
            .map(|(_, ip)| *ip)
            .collect();
        let Some(ip) = state
            .ips
            .get(&uid)
            .map(|x| x.1)
            .or_else(|| allocate(&cidr, &used))
        else {
            tracing::warn!(%node, %cidr, "node pod CIDR exhausted");
            return;
        };
        state.ips.insert(uid.clone(), (node.to_string(), ip));
        ip.to_string()
    };
    let now = crate::meta::now_rfc3339();
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({"name": c["name"], "ready": true, "started": true, "restartCount": 0, "image": c["image"],
                   "imageID": "", "containerID": format!("kube-sim://{uid}-{}", c["name"].as_str().unwrap_or("")),
                   "state": {"running": {"startedAt": now}}, "lastState": {}})
        })
        .collect();
    let conds: Vec<Value> = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .iter()
    .map(|t| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now}))
    .collect();
    let mut status = json!({"phase": "Running", "conditions": conds, "hostIP": host_ip, "startTime": now,
        "containerStatuses": statuses, "qosClass": pod.pointer("/status/qosClass").cloned().unwrap_or(json!("BestEffort"))});
    if !ip.is_empty() {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if !host_ip.is_empty() {
        status["hostIPs"] = json!([{"ip": host_ip}]);
    }
    let res = sim.store.update(
        &ResKey::new("", "pods"),
        &ns,
        &name,
        &mut |cur| {
            if meta_str(cur, "uid") != uid {
                return Ok(None);
            }
            let mut v = (**cur).clone();
            v["status"] = status.clone();
            Ok(Some(v))
        },
        || ApiError::not_found("pods", "", &name),
    );
    if let Err(e) = res
        && e.code != 404
    {
        tracing::warn!(%ns, pod = %name, error = %e, "kubelet could not update pod status");
    }
}

/// Whether a volume-relative path is safe to join under a volume directory: relative, non-empty, without `..`
/// components or NUL bytes (what the apiserver's projected-volume validation enforces). The kubelet writes files
/// as the simulator's user, so this is the line between a pod spec and the host's file system.
pub fn safe_relative_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\0')
        && std::path::Path::new(p)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Join `rel` under `dir` only when it is safe (see [`safe_relative_path`]).
fn join_safe(dir: &Path, rel: &str) -> Option<PathBuf> {
    if safe_relative_path(rel) {
        Some(dir.join(rel))
    } else {
        tracing::warn!(path = %rel, "kubelet refused a volume path outside its volume directory");
        None
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("kube-sim-tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
}

/// Write every projected volume of a pod; with `tokens_only`, only service-account tokens that are due.
fn write_volumes(sim: &Sim, dir: &Path, state: &mut State, pod: &Value, tokens_only: bool) {
    let uid = meta_str(pod, "uid").to_string();
    let ns = meta_str(pod, "namespace").to_string();
    let now = crate::meta::now_unix();
    for vol in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let Some(vname) = vol.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(sources) = vol.pointer("/projected/sources").and_then(Value::as_array) else {
            continue;
        };
        if !safe_relative_path(vname) || vname.contains('/') {
            tracing::warn!(volume = %vname, "kubelet refused a volume name that is not a single path segment");
            continue;
        }
        let vdir = projected_dir(dir, &uid, vname);
        for src in sources {
            if let Some(t) = src.get("serviceAccountToken") {
                let path = t
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("token")
                    .to_string();
                let key = (uid.clone(), vname.to_string(), path.clone());
                if state.tokens.get(&key).is_some_and(|(_, due)| *due > now) {
                    continue;
                }
                let audiences: Vec<String> = t
                    .get("audience")
                    .and_then(Value::as_str)
                    .map(|a| vec![a.to_string()])
                    .unwrap_or_default();
                let exp = t
                    .get("expirationSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(3600);
                match crate::reviews::mint_for_pod(sim, pod, audiences, exp) {
                    Ok((token, issued_exp)) => {
                        let Some(file) = join_safe(&vdir, &path) else {
                            continue;
                        };
                        if let Err(e) = write_atomic(&file, token.as_bytes()) {
                            tracing::warn!(%ns, pod = %meta_str(pod, "name"), error = %e, "kubelet could not write a token file");
                            continue;
                        }
                        let life = (issued_exp - now).max(1);
                        let due =
                            now + ((life as f64 * REFRESH_FRACTION) as i64).min(MAX_TOKEN_AGE_SECS);
                        state.tokens.insert(key, (now, due));
                    }
                    Err(e) => {
                        tracing::warn!(%ns, pod = %meta_str(pod, "name"), error = %e, "kubelet could not mint a projected token")
                    }
                }
                continue;
            }
            if tokens_only {
                continue;
            }
            if let Some(cm) = src.get("configMap") {
                write_keyed(sim, &vdir, &ns, "configmaps", cm, false);
            } else if let Some(sec) = src.get("secret") {
                write_keyed(sim, &vdir, &ns, "secrets", sec, true);
            } else if let Some(items) = src.pointer("/downwardAPI/items").and_then(Value::as_array)
            {
                for item in items {
                    let (Some(path), Some(field)) = (
                        item["path"].as_str(),
                        item.pointer("/fieldRef/fieldPath").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let value = match field {
                        "metadata.namespace" => ns.clone(),
                        "metadata.name" => meta_str(pod, "name").to_string(),
                        "metadata.uid" => uid.clone(),
                        "spec.nodeName" => crate::meta::str_at(pod, "/spec/nodeName").to_string(),
                        "spec.serviceAccountName" => {
                            crate::meta::str_at(pod, "/spec/serviceAccountName").to_string()
                        }
                        _ => continue,
                    };
                    if let Some(file) = join_safe(&vdir, path) {
                        let _ = write_atomic(&file, value.as_bytes());
                    }
                }
            }
        }
    }
}

fn write_keyed(sim: &Sim, vdir: &Path, ns: &str, resource: &str, src: &Value, base64: bool) {
    let Some(name) = src.get("name").and_then(Value::as_str) else {
        return;
    };
    let Some(obj) = sim.store.get(&ResKey::new("", resource), ns, name) else {
        return;
    };
    let data = obj
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let decode = |v: &Value| -> Option<Vec<u8>> {
        let s = v.as_str()?;
        if base64 {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).ok()
        } else {
            Some(s.as_bytes().to_vec())
        }
    };
    match src.get("items").and_then(Value::as_array) {
        Some(items) => {
            for it in items {
                let (Some(k), Some(p)) = (it["key"].as_str(), it["path"].as_str()) else {
                    continue;
                };
                if let Some(bytes) = data.get(k).and_then(decode)
                    && let Some(file) = join_safe(vdir, p)
                {
                    let _ = write_atomic(&file, &bytes);
                }
            }
        }
        None => {
            for (k, v) in &data {
                if let Some(bytes) = decode(v)
                    && let Some(file) = join_safe(vdir, k)
                {
                    let _ = write_atomic(&file, &bytes);
                }
            }
        }
    }
}

fn refresh_tokens(sim: &Sim, dir: &Path, state: &mut State) {
    let now = crate::meta::now_unix();
    let due: HashSet<String> = state
        .tokens
        .iter()
        .filter(|(_, (_, d))| *d <= now)
        .map(|(k, _)| k.0.clone())
        .collect();
    for uid in due {
        let Some((ns, name)) = state.pods.get(&uid).cloned() else {
            continue;
        };
        if let Some(pod) = sim.store.get(&ResKey::new("", "pods"), &ns, &name) {
            write_volumes(sim, dir, state, &pod, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_stay_inside_the_volume() {
        for ok in ["token", "a/b", "ca.crt", "..data-not-dotdot", "x/..y"] {
            assert!(safe_relative_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a/..",
            ".",
            "./a",
            "a\0b",
        ] {
            assert!(!safe_relative_path(bad), "{bad}");
        }
    }

    #[test]
    fn cidr_allocation() {
        assert_eq!(
            parse_cidr("10.244.1.0/24"),
            Some((u32::from(Ipv4Addr::new(10, 244, 1, 0)), 24))
        );
        assert!(parse_cidr("nope").is_none());
        assert!(parse_cidr("10.0.0.0/31").is_none());
        let mut used = HashSet::new();
        let a = allocate("10.244.1.0/24", &used).expect("ip");
        assert_eq!(a, Ipv4Addr::new(10, 244, 1, 2));
        used.insert(a);
        assert_eq!(
            allocate("10.244.1.0/24", &used),
            Some(Ipv4Addr::new(10, 244, 1, 3))
        );
        let full: HashSet<Ipv4Addr> = (2..255).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        assert_eq!(allocate("10.0.0.0/24", &full), None);
    }
}
