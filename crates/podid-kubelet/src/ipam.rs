//! Pod addresses, pure (no IO, no clock): CIDR parsing, the lowest free host address of a node's `podCIDR`, the
//! next free `/24` for a node that has none (as the node IPAM controller would hand out), and [`Ipam`], the map of
//! addresses in use. The kubelet learns every address a pod's status already carries before it hands out a new
//! one, so a restarted kubelet never gives two pods one address.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

/// Pod CIDRs handed to nodes that have none: `10.244.N.0/24`.
pub const CLUSTER_CIDR_BASE: [u8; 2] = [10, 244];

/// Longest prefix a pod CIDR may have (a /31 or /32 has no host address besides the bridge).
const MAX_POD_CIDR_PREFIX: u8 = 30;

/// Parse `a.b.c.d/nn` into (network, prefix); `None` for anything else or a prefix longer than /30.
#[must_use]
pub fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if len > MAX_POD_CIDR_PREFIX {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

/// Lowest free host address of a CIDR, skipping the network address and `.1` (the node bridge) and the
/// broadcast address.
#[must_use]
pub fn allocate(cidr: &str, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let (net, len) = parse_cidr(cidr)?;
    let size = 1u64 << (32 - len);
    (2..size - 1)
        .map(|i| Ipv4Addr::from(net + i as u32))
        .find(|ip| !used.contains(ip))
}

/// The first `10.244.N.0/24` no node holds yet (`None` when all 256 are taken).
#[must_use]
pub fn next_node_cidr<'a>(held: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let held: HashSet<&str> = held.into_iter().collect();
    (0..=255u16)
        .map(|i| format!("{}.{}.{i}.0/24", CLUSTER_CIDR_BASE[0], CLUSTER_CIDR_BASE[1]))
        .find(|c| !held.contains(c.as_str()))
}

/// Addresses in use: pod uid -> (node, address).
#[derive(Debug, Default)]
pub struct Ipam {
    by_pod: HashMap<String, (String, Ipv4Addr)>,
}

// === impl Ipam ===

impl Ipam {
    /// The address pod `uid` holds.
    #[must_use]
    pub fn get(&self, uid: &str) -> Option<Ipv4Addr> {
        self.by_pod.get(uid).map(|(_, ip)| *ip)
    }

    /// Record an address a pod already carries (its status says so); an address already recorded for the pod
    /// is kept.
    pub fn learn(&mut self, uid: &str, node: &str, ip: Ipv4Addr) {
        self.by_pod
            .entry(uid.to_string())
            .or_insert_with(|| (node.to_string(), ip));
    }

    /// The pod's address: the one it holds, else the lowest free one of `cidr` on `node` (recorded). `None`
    /// when the CIDR is exhausted or invalid.
    pub fn assign(&mut self, uid: &str, node: &str, cidr: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.get(uid) {
            return Some(ip);
        }
        let used: HashSet<Ipv4Addr> = self
            .by_pod
            .values()
            .filter(|(n, _)| n == node)
            .map(|(_, ip)| *ip)
            .collect();
        let ip = allocate(cidr, &used)?;
        self.by_pod.insert(uid.to_string(), (node.to_string(), ip));
        Some(ip)
    }

    /// The pod is gone: its address is free again.
    pub fn release(&mut self, uid: &str) {
        self.by_pod.remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("10.244.1.0/24"),
            Some((u32::from(Ipv4Addr::new(10, 244, 1, 0)), 24))
        );
        assert_eq!(
            parse_cidr("10.244.1.77/24"),
            Some((u32::from(Ipv4Addr::new(10, 244, 1, 0)), 24)),
            "host bits are masked"
        );
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((0, 0)));
        for bad in [
            "nope",
            "10.0.0.0/31",
            "10.0.0.0",
            "10.0.0.0/x",
            "fd00::/64",
            "",
        ] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn allocation_skips_network_bridge_and_used() {
        let mut used = HashSet::new();
        let a = allocate("10.244.1.0/24", &used).expect("ip");
        assert_eq!(a, Ipv4Addr::new(10, 244, 1, 2));
        used.insert(a);
        assert_eq!(
            allocate("10.244.1.0/24", &used),
            Some(Ipv4Addr::new(10, 244, 1, 3))
        );
        let full: HashSet<Ipv4Addr> = (2..255).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        assert_eq!(allocate("10.0.0.0/24", &full), None, "no broadcast address");
        assert_eq!(
            allocate("10.0.0.0/30", &HashSet::new()),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(allocate("bad", &HashSet::new()), None);
    }

    #[test]
    fn node_cidrs_are_the_first_free_slash_24() {
        assert_eq!(next_node_cidr([]), Some("10.244.0.0/24".into()));
        assert_eq!(
            next_node_cidr(["10.244.0.0/24", "10.244.2.0/24", "192.168.0.0/16"]),
            Some("10.244.1.0/24".into())
        );
        let all: Vec<String> = (0..=255).map(|i| format!("10.244.{i}.0/24")).collect();
        assert_eq!(next_node_cidr(all.iter().map(String::as_str)), None);
    }

    #[test]
    fn ipam_learns_assigns_per_node_and_releases() {
        let mut ipam = Ipam::default();
        // A restarted kubelet learns what pods already carry before handing out anything.
        ipam.learn("old", "n1", Ipv4Addr::new(10, 244, 0, 2));
        assert_eq!(
            ipam.assign("new", "n1", "10.244.0.0/24"),
            Some(Ipv4Addr::new(10, 244, 0, 3))
        );
        assert_eq!(
            ipam.assign("new", "n1", "10.244.0.0/24"),
            Some(Ipv4Addr::new(10, 244, 0, 3)),
            "a pod keeps its address"
        );
        // Addresses are per node: another node's .2 does not block this one's.
        assert_eq!(
            ipam.assign("other", "n2", "10.244.1.0/24"),
            Some(Ipv4Addr::new(10, 244, 1, 2))
        );
        ipam.learn("old", "n1", Ipv4Addr::new(10, 244, 0, 9));
        assert_eq!(
            ipam.get("old"),
            Some(Ipv4Addr::new(10, 244, 0, 2)),
            "first learned wins"
        );
        ipam.release("old");
        assert_eq!(
            ipam.assign("third", "n1", "10.244.0.0/24"),
            Some(Ipv4Addr::new(10, 244, 0, 2)),
            "a released address is reused"
        );
        assert_eq!(ipam.assign("x", "n1", "bad"), None);
        assert_eq!(ipam.get("x"), None);
    }
}
