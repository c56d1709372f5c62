//! Fuzzes the node agent's pod-by-IP index (`podid_core::nmi::pods::PodIndex`) against a model that scans every
//! live pod: the index decides which pod a request comes from, so a wrong answer hands out another pod's identity.
//!
//! The input drives up to `MAX_OPS` operations (apply, delete, reset) over a small universe of pods (two
//! namespaces, a few names) and addresses (IPv4, IPv6, and the IPv4-mapped IPv6 form of an IPv4 address), so
//! that IPs collide, pods move and come back. After every operation each address of the universe is looked up,
//! in both spellings, and the answer must be what a scan of the model gives:
//! - no indexable pod (active, not host network) owns the address: `Missing`;
//! - exactly one: `Found` with that pod;
//! - several: `Ambiguous` naming exactly those pods (never a guess).
//!
//! Addresses are compared as the network sees them: `::ffff:a.b.c.d` is `a.b.c.d` (`pods::canonical`). `get` and
//! `len` must agree with the model too.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use podid_core::nmi::pods::{Lookup, PodEntry, PodIndex, canonical};

/// Operations per input (bounds the work of one run).
const MAX_OPS: usize = 64;
/// Pods per `reset`.
const MAX_RESET_PODS: usize = 6;
/// IPs per pod (dual stack plus a duplicate or a stray).
const MAX_POD_IPS: usize = 3;
const NAMESPACES: [&str; 2] = ["a", "b"];
const NAMES: [&str; 4] = ["p0", "p1", "p2", "p3"];

type Model = BTreeMap<(String, String), PodEntry>;

fuzz_target!(|data: &[u8]| {
    // An `Err` only means the input ran out of bytes: the operations so far were checked.
    let _ = run(&mut Unstructured::new(data));
});

fn universe() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
        IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
    ]
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let ips = universe();
    let mut ix = PodIndex::new();
    let mut model = Model::new();
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0u8..=9)? {
            0..=1 => {
                let (ns, name) = key(u)?;
                ix.delete(ns, name);
                model.remove(&(ns.to_owned(), name.to_owned()));
            }
            2 => {
                let n = u.int_in_range(0..=MAX_RESET_PODS)?;
                let mut pods = Vec::with_capacity(n);
                for _ in 0..n {
                    pods.push(pod(u, &ips)?);
                }
                model.clear();
                for p in &pods {
                    model.insert((p.namespace.clone(), p.name.clone()), p.clone());
                }
                ix.reset(pods);
            }
            _ => {
                let p = pod(u, &ips)?;
                model.insert((p.namespace.clone(), p.name.clone()), p.clone());
                ix.apply(p);
            }
        }
        check(&ix, &model, &ips);
    }
    Ok(())
}

fn key(u: &mut Unstructured<'_>) -> Result<(&'static str, &'static str)> {
    Ok((*u.choose(&NAMESPACES)?, *u.choose(&NAMES)?))
}

fn pod(u: &mut Unstructured<'_>, universe: &[IpAddr]) -> Result<PodEntry> {
    let (ns, name) = key(u)?;
    let n = u.int_in_range(0..=MAX_POD_IPS)?;
    let mut ips = Vec::with_capacity(n);
    for _ in 0..n {
        ips.push(*u.choose(universe)?);
    }
    Ok(PodEntry {
        namespace: ns.into(),
        name: name.into(),
        uid: format!("{ns}-{name}-{}", u.int_in_range(0u8..=3)?),
        labels: BTreeMap::new(),
        service_account: "default".into(),
        replicaset: None,
        active: u.arbitrary()?,
        host_network: u.arbitrary()?,
        ips,
    })
}

fn indexable(p: &PodEntry) -> bool {
    p.active && !p.host_network
}

fn check(ix: &PodIndex, model: &Model, universe: &[IpAddr]) {
    for ip in universe {
        let want: BTreeSet<String> = model
            .values()
            .filter(|p| indexable(p) && p.ips.iter().any(|a| canonical(*a) == canonical(*ip)))
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        let got = ix.lookup(*ip);
        match &got {
            Lookup::Missing => {
                assert!(want.is_empty(), "{ip}: index says missing, owners {want:?}")
            }
            Lookup::Found(p) => {
                let name = format!("{}/{}", p.namespace, p.name);
                assert!(
                    want.len() == 1 && want.contains(&name),
                    "{ip}: index found {name}, owners {want:?}"
                );
                let live = &model[&(p.namespace.clone(), p.name.clone())];
                assert_eq!(
                    live,
                    p.as_ref(),
                    "{ip}: index returned a stale copy of {name}"
                );
            }
            Lookup::Ambiguous(names) => {
                let got: BTreeSet<String> = names.iter().cloned().collect();
                assert!(
                    want.len() > 1 && got == want && names.len() == got.len(),
                    "{ip}: index says ambiguous {names:?}, owners {want:?}"
                );
            }
        }
    }
    for ((ns, name), p) in model {
        let got = ix.get(ns, name);
        if indexable(p) {
            assert_eq!(got.as_deref(), Some(p), "get({ns}/{name})");
        } else {
            assert!(
                got.is_none(),
                "get({ns}/{name}) returned a pod that cannot call"
            );
        }
    }
    let live = model.values().filter(|p| indexable(p)).count();
    assert_eq!(ix.len(), live, "len");
    assert_eq!(ix.is_empty(), live == 0, "is_empty");
}
