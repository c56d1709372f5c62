//! Simulated nodes and pods as network namespaces (root only).
//!
//! # Model
//!
//! ```text
//!   host namespace: untouched. The playground process binds listeners in the node namespaces and connects to
//!   the simulators on host loopback from its own threads (see `relay`): no link, route, rule or sysctl is
//!   added to the host namespace.
//!
//!   node ns "pgd<pid>-<n>-node<i>":  lo, br0 10.244.<i>.1/24 (pods' gateway),
//!                                    lo: 10.240.0.1 kube API :443, 10.240.0.2 Azure :443,
//!                                        10.240.0.3 this node's IMDS :80 (all relayed to the sims),
//!                                    the node agent, its `aad-metadata` chain (DNAT 169.254.169.254:80)
//!        | vp<k> (bridge port)
//!   pod ns "pgd<pid>-<n>-<podns>-<pod>": eth0 10.244.<i>.<x>/24,
//!        routes: 10.240.0.1/32, 10.240.0.2/32 and 169.254.169.254/32 via 10.244.<i>.1, nothing else (no default
//!        route, none to the node's IMDS)
//! ```
//!
//! Pods reach the simulated network through their node, where every simulated address is local, so no
//! namespace forwards packets. The node's IMDS (10.240.0.3) is the node's alone, as on a real node, where pod
//! traffic to the metadata address is redirected to the agent and nothing else reaches the node's IMDS: pods get
//! no route to it, and because a pod with `NET_ADMIN` can add its own, the node namespace's filter table refuses
//! it too ([`NODE_FIREWALL_CHAIN`]): anything arriving from outside the node (not on `lo`) for 10.240.0.3 is
//! rejected, and kube-proxy's localnet rule drops connections to the node's 127.0.0.0/8 that were not DNATed
//! there (the agent's redirect sets `route_localnet`, which would otherwise let a pod that routes 127.0.0.1 out
//! of its `eth0` reach the node's loopback listeners). Host names resolve through per-namespace files: `/etc/netns/<ns>/hosts` maps
//! `login.microsoftonline.com`, `management.azure.com`, `<vault>.vault.azure.net` and `kubernetes.default.svc` to
//! the simulated network, and `/etc/netns/<ns>/resolv.conf` names no reachable server; `ip netns exec` (which
//! `podid run` uses) bind-mounts both over `/etc` for the program only. The host's own `/etc/hosts` is never
//! written.
//!
//! # Invariants
//! - Every namespace is named `pgd<pid>-…`; dropping its handle deletes it (and every interface and iptables rule
//!   inside). [`cleanup_stale`] removes what a crashed run left: processes still living in its namespaces, the
//!   namespaces, and their `/etc/netns` directories.
//! - Nothing here runs a program in the host namespace on the pods' behalf.
//! - From a pod, the only ways into the node are its relays for the Kubernetes API and Azure (10.240.0.1:443,
//!   10.240.0.2:443) and the agent's redirect of 169.254.169.254:80; the node's IMDS answers only the node.

use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use podid_net::testbed::{self, Netns};

// === constants ===

/// Prefix of every namespace the playground creates (`pgd<pid>-…`).
pub const NETNS_PREFIX: &str = "pgd";
/// Where `ip netns exec` looks for per-namespace `/etc` files.
pub const ETC_NETNS_DIR: &str = "/etc/netns";
/// The simulated network: addresses every node namespace holds on its `lo`.
pub const SIM_NET_CIDR: &str = "10.240.0.0/24";
/// The Kubernetes API as pods and agents see it (port 443).
pub const KUBE_API_IP: Ipv4Addr = Ipv4Addr::new(10, 240, 0, 1);
/// Azure (Entra ID, ARM, Key Vault by SNI) as pods see it (port 443).
pub const AZURE_IP: Ipv4Addr = Ipv4Addr::new(10, 240, 0, 2);
/// The node's own instance metadata service (port 80), which only the node agent calls: pods have no route to
/// it and the node's filter table rejects it from anywhere but the node itself.
pub const NODE_IMDS_IP: Ipv4Addr = Ipv4Addr::new(10, 240, 0, 3);
/// The simulated addresses a pod gets a route to (via its node): the Kubernetes API, Azure, and the metadata
/// address its node's agent redirects. Not the node's IMDS.
pub const POD_ROUTES: [Ipv4Addr; 3] = [KUBE_API_IP, AZURE_IP, METADATA_IP];
/// The filter chain of every node namespace (jumped to first from `INPUT`): what a real node's firewall and
/// kube-proxy refuse to pods.
pub const NODE_FIREWALL_CHAIN: &str = "podid-node-firewall";
/// The address pods call for tokens; redirected by the agent's chain in the node namespace only.
pub const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Pod subnets: node `i` gets 10.244.i.0/24, its bridge 10.244.i.1.
pub const POD_NET_BASE: [u8; 2] = [10, 244];
/// Longest caller-chosen part of a namespace name (podid-net's limit).
const NAME_MAX_LEN_BYTES: usize = 32;
/// Host names of Azure's public cloud that point at the simulator.
pub const AZURE_HOST_NAMES: [&str; 6] = [
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "management.azure.com",
    "management.core.windows.net",
];
/// Host names of the Kubernetes API.
pub const KUBE_HOST_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

static PORT_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The pod CIDR of node `index`.
pub fn pod_cidr(index: usize) -> String {
    format!("{}.{}.{index}.0/24", POD_NET_BASE[0], POD_NET_BASE[1])
}

/// The bridge (gateway) address of node `index`.
pub fn bridge_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(POD_NET_BASE[0], POD_NET_BASE[1], index as u8, 1)
}

/// `[a-z0-9-]` only, at most `max` bytes, never empty.
pub fn ns_label(raw: &str, max: usize) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(max);
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "x".to_string() } else { s }
}

/// The `/etc/hosts` a pod (or node) namespace sees.
pub fn hosts_file(vaults: &[String], own: Option<(Ipv4Addr, &str)>) -> String {
    let mut out = String::from("# written by podid up for this network namespace only\n");
    out.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str(&format!("{KUBE_API_IP}\t{}\n", KUBE_HOST_NAMES.join(" ")));
    let mut azure: Vec<String> = AZURE_HOST_NAMES.iter().map(|s| s.to_string()).collect();
    azure.push("vault.azure.net".into());
    azure.extend(vaults.iter().map(|v| format!("{v}.vault.azure.net")));
    out.push_str(&format!("{AZURE_IP}\t{}\n", azure.join(" ")));
    if let Some((ip, name)) = own {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// The `/etc/resolv.conf` a namespace sees: a server on its own loopback, where nothing listens, so a name
/// missing from the hosts file fails at once and no query leaves.
pub const RESOLV_CONF: &str = "# written by podid up: names resolve through /etc/hosts only\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n";

/// The node namespace's filter rules, as `iptables-restore --noflush` input: the node's IMDS refused to anything
/// that does not come from the node itself (pods could add their own route to it), and kube-proxy's localnet rule
/// (`route_localnet`, which the agent's DNAT to 127.0.0.1 needs, would otherwise open the node's loopback
/// listeners to a pod that routes 127.0.0.1 out of its `eth0`; connections the redirect DNATed stay allowed).
pub fn node_firewall_script() -> String {
    let c = NODE_FIREWALL_CHAIN;
    format!(
        "*filter\n\
         :{c} - [0:0]\n\
         -A {c} ! -i lo -d {NODE_IMDS_IP}/32 -m comment --comment \"podid up: the node IMDS answers the node only\" -j REJECT\n\
         -A {c} ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment \"block incoming localnet connections\" -j DROP\n\
         -I INPUT 1 -j {c}\n\
         COMMIT\n"
    )
}

/// Loads [`node_firewall_script`] into namespace `ns` (forked from a thread inside it).
fn install_node_firewall(ns: &Netns) -> anyhow::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let restore = crate::run::find_tool("iptables-restore")
        .ok_or_else(|| anyhow::anyhow!("iptables-restore not found"))?;
    let script = node_firewall_script();
    let out = ns.run(|| -> std::io::Result<std::process::Output> {
        let mut child = Command::new(&restore)
            .args(["--wait", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes())?;
        }
        child.wait_with_output()
    })??;
    anyhow::ensure!(
        out.status.success(),
        "{} in {}: {}: {}",
        restore.display(),
        ns.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn write_etc(ns: &str, hosts: &str) -> std::io::Result<PathBuf> {
    let dir = Path::new(ETC_NETNS_DIR).join(ns);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("hosts"), hosts)?;
    std::fs::write(dir.join("resolv.conf"), RESOLV_CONF)?;
    Ok(dir)
}

// === NodeNs ===

/// A simulated node's namespace. Dropping it deletes the namespace and its `/etc/netns` files.
#[derive(Debug)]
pub struct NodeNs {
    ns: Netns,
    /// The Kubernetes node name.
    pub node: String,
    /// Its index (pod subnet 10.244.index.0/24).
    pub index: usize,
    etc: PathBuf,
}

impl NodeNs {
    /// Creates node `index`'s namespace: bridge, simulated network, hosts file.
    pub fn create(index: usize, node: &str, vaults: &[String]) -> anyhow::Result<NodeNs> {
        anyhow::ensure!(index < 250, "at most 250 nodes");
        let ns = Netns::create_prefixed(NETNS_PREFIX, &format!("node{index}"))?;
        let br = bridge_ip(index);
        ns.ip_batch(&[
            "link add name br0 type bridge".into(),
            format!("addr add {br}/24 dev br0"),
            "link set br0 up".into(),
            format!("addr add {KUBE_API_IP}/32 dev lo"),
            format!("addr add {AZURE_IP}/32 dev lo"),
            format!("addr add {NODE_IMDS_IP}/32 dev lo"),
        ])?;
        install_node_firewall(&ns)?;
        let etc = write_etc(ns.name(), &hosts_file(vaults, Some((br, node))))?;
        Ok(NodeNs {
            ns,
            node: node.to_string(),
            index,
            etc,
        })
    }

    /// The namespace's full name.
    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// Adds a pod namespace with `ip` behind a bridge port.
    pub fn add_pod(
        &self,
        pod_ns: &str,
        pod: &str,
        ip: Ipv4Addr,
        vaults: &[String],
    ) -> anyhow::Result<PodNs> {
        let label = ns_label(&format!("{pod_ns}-{pod}"), NAME_MAX_LEN_BYTES);
        let ns = Netns::create_prefixed(NETNS_PREFIX, &label)?;
        let port = format!("vp{}", PORT_COUNTER.fetch_add(1, Ordering::Relaxed));
        let gw = bridge_ip(self.index);
        self.ns.ip_batch(&[
            format!(
                "link add name {port} type veth peer name eth0 netns {}",
                ns.name()
            ),
            format!("link set {port} master br0 up"),
        ])?;
        let mut lines = vec![
            format!("addr add {ip}/24 dev eth0"),
            "link set eth0 up".into(),
        ];
        lines.extend(
            POD_ROUTES
                .iter()
                .map(|r| format!("route add {r}/32 via {gw}")),
        );
        ns.ip_batch(&lines)?;
        let etc = write_etc(ns.name(), &hosts_file(vaults, Some((ip, pod))))?;
        Ok(PodNs { ns, ip, etc })
    }
}

impl Drop for NodeNs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

// === PodNs ===

/// A pod's namespace. Dropping it deletes the namespace (and its veth pair) and its `/etc/netns` files.
#[derive(Debug)]
pub struct PodNs {
    ns: Netns,
    /// The pod's address.
    pub ip: Ipv4Addr,
    etc: PathBuf,
}

impl PodNs {
    /// The namespace's full name.
    pub fn name(&self) -> &str {
        self.ns.name()
    }
}

impl Drop for PodNs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

// === stale state ===

/// What [`cleanup_stale`] removed.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// Processes killed (they lived in a stale namespace).
    pub processes: usize,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// `/etc/netns` directories removed.
    pub etc_dirs: usize,
}

/// Removes what a crashed `podid up` left: processes in its namespaces, the namespaces (with their interfaces
/// and iptables rules), and the namespaces' `/etc/netns` files. Namespaces of live playgrounds are kept.
/// Processes in `already_killed` (the orphans [`crate::proc::kill_orphans`] found) are not killed or counted
/// again.
pub fn cleanup_stale(already_killed: &[i32]) -> anyhow::Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    let stale: Vec<(String, u64, u64)> = std::fs::read_dir(testbed::NETNS_DIR)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !testbed::is_stale(&name, NETNS_PREFIX) {
                        return None;
                    }
                    let m = std::fs::metadata(e.path()).ok()?;
                    Some((name, m.dev(), m.ino()))
                })
                .collect()
        })
        .unwrap_or_default();
    if !stale.is_empty() {
        for proc_entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = proc_entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if already_killed.contains(&pid) {
                continue;
            }
            let Ok(m) = std::fs::metadata(proc_entry.path().join("ns/net")) else {
                continue;
            };
            if stale
                .iter()
                .any(|(_, dev, ino)| *dev == m.dev() && *ino == m.ino())
                && let Some(p) = rustix::process::Pid::from_raw(pid)
                && rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok()
            {
                cleaned.processes += 1;
            }
        }
    }
    cleaned.namespaces = testbed::cleanup_stale(NETNS_PREFIX)?;
    for e in std::fs::read_dir(ETC_NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if testbed::is_stale(&name, NETNS_PREFIX) && std::fs::remove_dir_all(e.path()).is_ok() {
            cleaned.etc_dirs += 1;
        }
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_namespace_safe() {
        assert_eq!(ns_label("my-app-demo", 32), "my-app-demo");
        assert_eq!(ns_label("My_App.Demo", 32), "my-app-demo");
        assert_eq!(ns_label("---", 32), "x");
        assert_eq!(ns_label(&"a".repeat(50), 32).len(), 32);
    }

    #[test]
    fn addresses() {
        assert_eq!(pod_cidr(3), "10.244.3.0/24");
        assert_eq!(bridge_ip(3), Ipv4Addr::new(10, 244, 3, 1));
        assert!(!testbed::is_stale(
            &format!("pgd{}-4-node0", std::process::id()),
            NETNS_PREFIX
        ));
        assert!(!testbed::is_stale("pdt123-4-node0", NETNS_PREFIX));
        assert!(!testbed::is_stale("pgdx-4", NETNS_PREFIX));
    }

    #[test]
    fn pods_route_to_the_api_azure_and_the_metadata_address_only() {
        assert!(!POD_ROUTES.contains(&NODE_IMDS_IP));
        assert_eq!(POD_ROUTES, [KUBE_API_IP, AZURE_IP, METADATA_IP]);
    }

    #[test]
    fn the_node_firewall_refuses_its_imds_and_its_loopback_to_pods() {
        let s = node_firewall_script();
        assert!(s.starts_with("*filter\n") && s.ends_with("COMMIT\n"), "{s}");
        assert!(s.contains(&format!(
            "-A {NODE_FIREWALL_CHAIN} ! -i lo -d 10.240.0.3/32 "
        )));
        assert!(s.contains(
            "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT"
        ));
        assert!(s.contains(&format!("-I INPUT 1 -j {NODE_FIREWALL_CHAIN}\n")));
        assert!(
            !s.contains("169.254"),
            "the redirect is the agent's, untouched"
        );
    }

    #[test]
    fn hosts_map_azure_and_kube_names_to_the_simulated_network() {
        let h = hosts_file(
            &["podid-demo-kv".into()],
            Some((Ipv4Addr::new(10, 244, 0, 2), "demo")),
        );
        assert!(h.contains("10.240.0.2\tlogin.microsoftonline.com"));
        assert!(h.contains("management.azure.com"));
        assert!(h.contains("podid-demo-kv.vault.azure.net"));
        assert!(h.contains("10.240.0.1\tkubernetes "));
        assert!(h.contains("10.244.0.2\tdemo\n"));
        assert!(!h.contains("169.254"));
    }
}
