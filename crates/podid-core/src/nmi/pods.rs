//! The node-local index of pods by IP (reference §3.4 step 4, improved).
//!
//! Fed by one watch of the node's pods (`spec.nodeName=<node>`), so its size follows the node, not the cluster.
//! Only pods that can make requests are indexed: phase Pending or Running and not on the host network (a
//! hostNetwork pod shares the node's IPs and must never be mistaken for another caller). Every `status.podIPs`
//! entry is indexed (dual stack). An IP claimed by two indexed pods is ambiguous and refused, never guessed.
//! `apply`/`delete` cost O(number of the pod's IPs).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// What the agent keeps of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEntry {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `spec.serviceAccountName` (`default` when empty).
    pub service_account: String,
    /// First owner reference of kind ReplicaSet.
    pub replicaset: Option<String>,
    /// Phase is Pending or Running.
    pub active: bool,
    /// `spec.hostNetwork`.
    pub host_network: bool,
    /// `status.podIPs` (and `status.podIP`).
    pub ips: Vec<IpAddr>,
}

impl PodEntry {
    fn indexable(&self) -> bool {
        self.active && !self.host_network
    }
}

type Key = (String, String);

/// Result of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one pod owns the IP.
    Found(Arc<PodEntry>),
    /// No pod.
    Missing,
    /// Several pods claim the IP: `ns/name` of each.
    Ambiguous(Vec<String>),
}

/// Pods by key and by IP.
#[derive(Debug, Default)]
pub struct PodIndex {
    pods: HashMap<Key, Arc<PodEntry>>,
    by_ip: HashMap<IpAddr, Vec<Key>>,
}

impl PodIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> PodIndex {
        PodIndex::default()
    }

    /// Adds or replaces a pod.
    pub fn apply(&mut self, pod: PodEntry) {
        let key = (pod.namespace.clone(), pod.name.clone());
        self.unindex(&key);
        if !pod.indexable() {
            self.pods.remove(&key);
            return;
        }
        // Indexed as looked up: an IPv4-mapped IPv6 address is its IPv4 address (found by the fuzzer).
        let mut ips: Vec<IpAddr> = pod.ips.iter().map(|i| canonical(*i)).collect();
        ips.sort();
        ips.dedup();
        for ip in ips {
            self.by_ip.entry(ip).or_default().push(key.clone());
        }
        self.pods.insert(key, Arc::new(pod));
    }

    /// Removes a pod.
    pub fn delete(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        self.unindex(&key);
        self.pods.remove(&key);
    }

    /// Replaces everything (after a re-list).
    pub fn reset(&mut self, pods: impl IntoIterator<Item = PodEntry>) {
        self.pods.clear();
        self.by_ip.clear();
        for p in pods {
            self.apply(p);
        }
    }

    fn unindex(&mut self, key: &Key) {
        let Some(old) = self.pods.get(key) else {
            return;
        };
        for ip in old.ips.iter().map(|i| canonical(*i)) {
            if let Some(keys) = self.by_ip.get_mut(&ip) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.by_ip.remove(&ip);
                }
            }
        }
    }

    /// The pod owning `ip`.
    #[must_use]
    pub fn lookup(&self, ip: IpAddr) -> Lookup {
        let ip = canonical(ip);
        match self.by_ip.get(&ip).map(Vec::as_slice) {
            None | Some([]) => Lookup::Missing,
            Some([one]) => self
                .pods
                .get(one)
                .map_or(Lookup::Missing, |p| Lookup::Found(p.clone())),
            Some(many) => {
                Lookup::Ambiguous(many.iter().map(|(ns, n)| format!("{ns}/{n}")).collect())
            }
        }
    }

    /// A pod by namespace and name.
    #[must_use]
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<PodEntry>> {
        self.pods
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Number of indexed pods.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, seen on dual-stack listeners) are looked up as IPv4.
#[must_use]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pod(ns: &str, name: &str, ips: &[&str]) -> PodEntry {
        PodEntry {
            namespace: ns.into(),
            name: name.into(),
            uid: format!("{name}-uid"),
            labels: BTreeMap::new(),
            service_account: "default".into(),
            replicaset: None,
            active: true,
            host_network: false,
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lookups() {
        let mut ix = PodIndex::new();
        ix.apply(pod("a", "p1", &["10.0.0.1", "fd00::1"]));
        ix.apply(pod("a", "p2", &["10.0.0.2"]));
        assert!(matches!(ix.lookup(ip("10.0.0.1")), Lookup::Found(p) if p.name == "p1"));
        assert!(matches!(ix.lookup(ip("fd00::1")), Lookup::Found(p) if p.name == "p1"));
        assert!(matches!(ix.lookup(ip("::ffff:10.0.0.2")), Lookup::Found(p) if p.name == "p2"));
        assert_eq!(ix.lookup(ip("10.0.0.3")), Lookup::Missing);
        // A second pod claiming the same IP: ambiguous, never guessed.
        ix.apply(pod("b", "p3", &["10.0.0.2"]));
        assert!(matches!(ix.lookup(ip("10.0.0.2")), Lookup::Ambiguous(v) if v.len() == 2));
        // An IPv4-mapped address in podIPs is the same IPv4 address (fuzzer case): ambiguous with p1.
        ix.apply(pod("c", "mapped", &["::ffff:10.0.0.1"]));
        assert!(matches!(ix.lookup(ip("10.0.0.1")), Lookup::Ambiguous(v) if v.len() == 2));
        ix.delete("c", "mapped");
        assert!(matches!(ix.lookup(ip("10.0.0.1")), Lookup::Found(p) if p.name == "p1"));
        // The pod moves to another IP: the old one is free again.
        ix.apply(pod("b", "p3", &["10.0.0.9"]));
        assert!(matches!(ix.lookup(ip("10.0.0.2")), Lookup::Found(p) if p.name == "p2"));
        // Finished or hostNetwork pods are not callers.
        let mut done = pod("a", "p2", &["10.0.0.2"]);
        done.active = false;
        ix.apply(done);
        assert_eq!(ix.lookup(ip("10.0.0.2")), Lookup::Missing);
        let mut host = pod("a", "h", &["10.0.0.50"]);
        host.host_network = true;
        ix.apply(host);
        assert_eq!(ix.lookup(ip("10.0.0.50")), Lookup::Missing);
        ix.delete("a", "p1");
        assert_eq!(ix.lookup(ip("fd00::1")), Lookup::Missing);
        assert_eq!(ix.len(), 1);
        ix.reset(vec![pod("z", "z", &["10.1.1.1"])]);
        assert_eq!(ix.len(), 1);
        assert_eq!(ix.lookup(ip("10.0.0.9")), Lookup::Missing);
    }

    proptest! {
        /// After any sequence of applies and deletes, the index answers like a scan of the live pods.
        #[test]
        fn matches_a_scan(ops in proptest::collection::vec((0u8..6, 0u8..4, proptest::collection::vec(0u8..5, 0..3), any::<bool>(), any::<bool>()), 0..60)) {
            let mut ix = PodIndex::new();
            let mut model: BTreeMap<String, PodEntry> = BTreeMap::new();
            for (name, del, ips, active, hostnet) in ops {
                let name = format!("p{name}");
                if del == 0 {
                    ix.delete("ns", &name);
                    model.remove(&name);
                } else {
                    let addrs: Vec<String> = ips.iter().map(|i| format!("10.0.0.{i}")).collect();
                    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
                    let mut p = pod("ns", &name, &refs);
                    p.active = active;
                    p.host_network = hostnet;
                    ix.apply(p.clone());
                    model.insert(name, p);
                }
            }
            for i in 0u8..5 {
                let a = ip(&format!("10.0.0.{i}"));
                let owners: Vec<&PodEntry> = model.values().filter(|p| p.active && !p.host_network && p.ips.contains(&a)).collect();
                match (ix.lookup(a), owners.as_slice()) {
                    (Lookup::Missing, []) => {}
                    (Lookup::Found(p), [one]) => prop_assert_eq!(&p.name, &one.name),
                    (Lookup::Ambiguous(v), many) if many.len() > 1 => prop_assert_eq!(v.len(), many.len()),
                    (got, want) => prop_assert!(false, "ip {a}: index {got:?}, scan {}", want.len()),
                }
            }
        }
    }
}
