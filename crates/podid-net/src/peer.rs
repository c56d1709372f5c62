//! The anti-ARP-spoofing peer check: is the host that completed this TCP handshake really the pod
//! that owns the connection's source address?
//!
//! # Why
//!
//! The agent maps a request to a pod by its TCP source address `S`. On a bridged pod network
//! (kubenet, the bridge CNI plugin, Azure CNI in bridge mode) all pods share one L2 segment with the
//! node, and a pod holding `CAP_NET_RAW` can answer ARP for its neighbour's address, or send frames
//! with it, and so get that neighbour's identity (CVE-2021-1677). Routing alone cannot tell the two
//! apart: both live behind the same bridge interface.
//!
//! # The model
//!
//! A TCP connection is only accepted once the handshake completed, and the node sent its SYN-ACK to
//! the link-layer address its **own neighbour table** holds for `S`. Whoever holds that MAC `M` is the
//! real peer. The **bridge forwarding database** says which bridge port `P` frames for `M` leave
//! through, and `P` is the host end of a veth pair whose other end sits in exactly one pod's network
//! namespace. So the peer is legitimate iff that namespace's interface owns `S`. [`PeerChecker::check`]
//! walks exactly that chain, read-only, through rtnetlink:
//!
//! 1. `RTM_GETROUTE` for `S`: the interface replies leave through. Not a Linux bridge (routed `/32`
//!    veths as with Azure CNI transparent mode or Calico, `lo` for the node's own addresses) →
//!    [`PeerVerdict::NotApplicable`]: there the `/32` route pins the reply path to the owning pod's
//!    veth, so a spoofer never sees the SYN-ACK and cannot complete a handshake. A bridge route *via a
//!    gateway* → [`PeerVerdict::Refused`] (the peer cannot be tied to a pod).
//! 2. `RTM_GETNEIGH` (`AF_INET`) for `S` on the bridge `B` → `M`. No entry, or one in state
//!    `INCOMPLETE`/`FAILED`/`NONE` → Refused.
//! 3. Bridge FDB (`AF_BRIDGE` `RTM_GETNEIGH`, a single-entry get with a master-filtered dump as
//!    fallback for VLAN-filtering bridges) → the port `P` holding `M`. No entry, an entry that is the
//!    node's own address, or `M` learned on several ports → Refused.
//! 4. `RTM_GETLINK` on `P`: must be a veth enslaved to `B` whose peer is in another namespace
//!    (`IFLA_LINK_NETNSID`, `IFLA_LINK` = the peer's ifindex there). Then the IPv4 addresses of that
//!    peer interface, read inside its namespace. `S` among them → [`PeerVerdict::Verified`]; otherwise
//!    Refused with the addresses the port's pod does own.
//!
//! The agent runs the check right after `accept` and again just before writing the response; a
//! neighbour entry that changes in between (a spoofer poisoning it mid-request) makes the second check
//! disagree, which covers the window between check and use.
//!
//! # Reading the peer namespace's addresses
//!
//! The kernel can list another namespace's addresses from here (`RTM_GETADDR` with
//! `IFA_TARGET_NETNSID`), but only on sockets with `NETLINK_GET_STRICT_CHK` set; without it the
//! attribute is silently ignored and the *node's* addresses come back (verified on this kernel).
//! rustix offers no safe setter for that socket option and this workspace forbids `unsafe`, so the
//! checker instead resolves the namespace id to a namespace handle and asks from inside: it keeps a
//! map `nsid → path` over the configured namespace directories (the container runtime's bind mounts,
//! `/var/run/netns` for containerd and CRI-O) and, optionally, `/proc/<pid>/ns/net`; every hit is
//! re-verified with `RTM_GETNSID` on the open handle (so a recycled path or id can never be mistaken
//! for another namespace), then a short-lived thread `setns`es into it, opens a netlink socket there
//! and dumps the addresses. Holding the open handle pins the namespace for the duration of the query.
//!
//! # Honest limits
//!
//! - The check trusts the node's own neighbour table and bridge FDB; both are kernel state a pod can
//!   influence only through what it sends, which is exactly what the chain accounts for.
//! - A pod that spoofs the victim's MAC as well makes the FDB point at its own port; its namespace
//!   does not own `S`, so it is refused. The same holds for a pod spoofing IP and MAC of a pod that is
//!   not currently talking.
//! - Pods holding `CAP_NET_ADMIN` in their own namespace can put the victim's address on their own
//!   `eth0` and then pass; Pod Security "baseline" forbids adding `NET_ADMIN` (it allows `NET_RAW`,
//!   which is the CVE's attacker), so this is out of scope. The check also cannot protect a pod whose
//!   *own* kernel is fooled into routing through an attacker.
//! - IPv6 sources (other than IPv4-mapped ones) are [`PeerVerdict::NotApplicable`]: NDP spoofing is
//!   the same attack, and extending the chain to `AF_INET6` neighbours is future work.
//! - Privileges: the `RTM_GET*` queries need none, but `setns` needs `CAP_SYS_ADMIN`, and the agent
//!   needs the namespace handles: a hostPath mount of the runtime's netns directory with mount
//!   propagation `HostToContainer`, or `hostPID: true` plus `CAP_SYS_PTRACE` for `/proc/<pid>/ns/net`.
//!   Without them the check fails with [`NetError::PeerNamespaceNotFound`] rather than guessing.
//! - Cost: five small netlink round trips, one `RTM_GETNSID`, and one thread spawn plus `setns` for the
//!   address dump, typically well under a millisecond; the first check of a new pod also re-reads
//!   the namespace directories (and at most once per [`PROC_RESCAN_MIN_INTERVAL_MS`], `/proc`). The
//!   address dump is reused for [`OWNED_ADDRESSES_TTL_MS`] per (bridge port, peer namespace, peer
//!   interface); the route, neighbour and FDB steps that tie the source to that port always run.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::LinkNameSpaceType;

use crate::NetError;
use crate::netlink::{
    self, AF_BRIDGE, AF_INET, AF_UNSPEC, AddrMessage, IFLA_MASTER, LinkMessage, NDA_DST,
    NDA_LLADDR, NDA_MASTER, NETNSA_FD, NLM_F_DUMP, NLM_F_REQUEST, NTF_SELF, NUD_PERMANENT,
    NUD_VALID, NeighMessage, RTA_DST, RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH, RTM_GETNSID,
    RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWNSID, RTM_NEWROUTE, RTN_LOCAL,
    RouteMessage, WireError, format_mac,
};
use crate::socket::{NlSocket, Outcome};

// === constants ===

/// Directories where container runtimes bind-mount pod network namespaces (containerd and CRI-O use
/// `/var/run/netns`; `/run/netns` is the same place on most distributions and where `ip netns` puts
/// them; Docker uses `/var/run/docker/netns`).
pub const DEFAULT_NETNS_DIRS: [&str; 3] = ["/var/run/netns", "/run/netns", "/var/run/docker/netns"];
/// Minimum time between two `/proc` scans, milliseconds: a scan opens every process's namespace link,
/// so a flood of checks for an unresolvable namespace must not turn into a flood of scans.
pub const PROC_RESCAN_MIN_INTERVAL_MS: u64 = 1_000;
/// Upper bound on namespace candidates examined in one scan (directory entries plus processes).
pub const MAX_NETNS_CANDIDATES: usize = 65_536;
/// Attempts at a dump that the kernel flags as interrupted by concurrent changes.
pub const DUMP_ATTEMPTS: u32 = 3;
/// `/proc`, where per-process namespace links live.
const PROC_DIR: &str = "/proc";
/// How long the addresses of a pod behind one bridge port are reused, milliseconds. Steps 1-3 of the check
/// (route, neighbour, FDB: which port the source's MAC is behind) run every time, so a spoofer who poisons the
/// neighbour table moves the source to *its* port and misses this cache; only the namespace visit of step 4
/// (a thread spawn and `setns`, the expensive part) is saved for a port seen a moment ago.
pub const OWNED_ADDRESSES_TTL_MS: u64 = 2_000;
/// Bridge ports whose addresses are cached at most (a node has a few hundred pods).
const OWNED_ADDRESSES_MAX_ENTRIES: usize = 4_096;

// === verdict ===

/// The outcome of a peer check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerVerdict {
    /// The handshake peer is the pod behind bridge port `port`, and that pod owns the source address.
    Verified {
        /// Name of the bridge port (host end of the pod's veth).
        port: String,
    },
    /// The source is not reached through a Linux bridge (routed veth, loopback, the node's own
    /// address) or is IPv6; the check does not apply. The reason says which.
    NotApplicable {
        /// Why the check does not apply.
        reason: String,
    },
    /// The peer could not be tied to a pod owning the source address; treat the request as spoofed.
    Refused {
        /// What did not match.
        reason: String,
    },
}

impl PeerVerdict {
    /// True for [`PeerVerdict::Verified`].
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }

    /// True for [`PeerVerdict::Refused`].
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    fn refused(reason: impl Into<String>) -> Self {
        Self::Refused {
            reason: reason.into(),
        }
    }

    fn not_applicable(reason: impl Into<String>) -> Self {
        Self::NotApplicable {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for PeerVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verified { port } => write!(f, "verified (bridge port {port})"),
            Self::NotApplicable { reason } => write!(f, "not applicable: {reason}"),
            Self::Refused { reason } => write!(f, "refused: {reason}"),
        }
    }
}

// === config ===

/// Where the checker looks for handles to pod network namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCheckConfig {
    /// Directories of namespace bind mounts, searched first (missing directories are skipped).
    pub netns_dirs: Vec<PathBuf>,
    /// Also search `/proc/<pid>/ns/net` (needs `hostPID` and `CAP_SYS_PTRACE` in a container).
    pub scan_proc: bool,
}

impl Default for PeerCheckConfig {
    fn default() -> Self {
        Self {
            netns_dirs: DEFAULT_NETNS_DIRS.iter().map(PathBuf::from).collect(),
            scan_proc: true,
        }
    }
}

// === checker ===

/// The peer checker. Holds one NETLINK_ROUTE socket, opened in the network namespace of the thread
/// that called [`PeerChecker::new`] (the node's), and a cache of namespace handles. Reusable; not
/// shared (`check` takes `&mut self`): keep one per worker or behind a mutex.
#[derive(Debug)]
pub struct PeerChecker {
    sock: NlSocket,
    namespaces: NetnsIndex,
    /// (port ifindex, peer netnsid, peer ifindex) -> (when read, the addresses the peer interface owns).
    owned: HashMap<(u32, i32, u32), (Instant, Vec<Ipv4Addr>)>,
    owned_hits: u64,
}

impl PeerChecker {
    /// Opens a checker with [`PeerCheckConfig::default`].
    pub fn new() -> Result<Self, NetError> {
        Self::with_config(PeerCheckConfig::default())
    }

    /// Opens a checker with the given namespace search configuration.
    pub fn with_config(config: PeerCheckConfig) -> Result<Self, NetError> {
        Ok(Self {
            sock: NlSocket::open()?,
            namespaces: NetnsIndex::new(config),
            owned: HashMap::new(),
            owned_hits: 0,
        })
    }

    /// Checks whose step 4 reused the addresses of a bridge port read less than
    /// [`OWNED_ADDRESSES_TTL_MS`] before.
    pub fn owned_cache_hits(&self) -> u64 {
        self.owned_hits
    }

    /// The addresses the peer interface behind a bridge port owns: cached briefly per (port, peer namespace,
    /// peer interface), so a new veth (a new pod) is never served another pod's addresses.
    fn owned_addresses(
        &mut self,
        key: (u32, i32, u32),
        port_name: &str,
    ) -> Result<Vec<Ipv4Addr>, NetError> {
        let ttl = Duration::from_millis(OWNED_ADDRESSES_TTL_MS);
        if let Some((at, owned)) = self.owned.get(&key)
            && at.elapsed() < ttl
        {
            self.owned_hits += 1;
            return Ok(owned.clone());
        }
        let (_, nsid, peer_index) = key;
        let Some(namespace) = self.namespaces.find(&mut self.sock, nsid)? else {
            return Err(NetError::PeerNamespaceNotFound {
                nsid,
                port: port_name.to_string(),
                searched: self.namespaces.describe_search(),
            });
        };
        let owned = addresses_in_namespace(namespace, peer_index)?;
        if self.owned.len() >= OWNED_ADDRESSES_MAX_ENTRIES {
            self.owned.retain(|_, (at, _)| at.elapsed() < ttl);
            if self.owned.len() >= OWNED_ADDRESSES_MAX_ENTRIES {
                self.owned.clear();
            }
        }
        self.owned.insert(key, (Instant::now(), owned.clone()));
        Ok(owned)
    }

    /// Checks the peer of a connection whose source address is `src` (the accepted socket's peer
    /// address; IPv4-mapped IPv6 addresses are checked as IPv4). Synchronous and fast (a few netlink
    /// round trips and one short-lived thread); call it from a blocking context (`spawn_blocking`),
    /// right after `accept` and again just before writing the response. Only `Verified` should let a
    /// bridged request through; an `Err` means the check could not run and should fail closed.
    pub fn check(&mut self, src: IpAddr) -> Result<PeerVerdict, NetError> {
        let source = match src {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => {
                    return Ok(PeerVerdict::not_applicable(format!(
                        "source {v6} is IPv6; only IPv4 peers are checked (NDP spoofing is not covered)"
                    )));
                }
            },
        };
        self.check_v4(source)
    }

    fn check_v4(&mut self, source: Ipv4Addr) -> Result<PeerVerdict, NetError> {
        // 1. Which interface do replies to the source leave through?
        let route = match route_get(&mut self.sock, source)? {
            Ok(route) => route,
            Err(errno)
                if matches!(
                    errno,
                    Errno::NETUNREACH | Errno::HOSTUNREACH | Errno::ACCESS | Errno::PERM
                ) =>
            {
                return Ok(PeerVerdict::refused(format!(
                    "no usable route back to source {source}: {errno}"
                )));
            }
            Err(errno) => {
                return Err(NetError::Kernel {
                    request: "RTM_GETROUTE",
                    errno,
                });
            }
        };
        if route.route_type == RTN_LOCAL {
            return Ok(PeerVerdict::not_applicable(format!(
                "source {source} is a local address of this node (route type local)"
            )));
        }
        let Some(oif) = route.oif else {
            return Ok(PeerVerdict::refused(format!(
                "route to source {source} has no output interface"
            )));
        };
        let bridge = match link_get(&mut self.sock, oif)? {
            Ok(link) => link,
            Err(Errno::NODEV) => {
                return Ok(PeerVerdict::refused(format!(
                    "output interface {oif} vanished"
                )));
            }
            Err(errno) => {
                return Err(NetError::Kernel {
                    request: "RTM_GETLINK",
                    errno,
                });
            }
        };
        let bridge_name = link_name(&bridge);
        if bridge.kind.as_deref() != Some("bridge") {
            return Ok(PeerVerdict::not_applicable(format!(
                "source {source} is routed through {bridge_name} ({}), not a Linux bridge; the route pins \
                 replies to the owning interface",
                bridge.kind.as_deref().unwrap_or("no link kind")
            )));
        }
        if let Some(gateway) = route.gateway {
            return Ok(PeerVerdict::refused(format!(
                "source {source} is reached via gateway {gateway} on bridge {bridge_name}, not on-link"
            )));
        }

        // 2. The MAC the node sent its SYN-ACK to.
        let neigh = match neigh_get(&mut self.sock, oif, source)? {
            Ok(neigh) => neigh,
            Err(Errno::NOENT) => {
                return Ok(PeerVerdict::refused(format!(
                    "no neighbour entry for source {source} on bridge {bridge_name}"
                )));
            }
            Err(errno) => {
                return Err(NetError::Kernel {
                    request: "RTM_GETNEIGH",
                    errno,
                });
            }
        };
        if neigh.state & NUD_VALID == 0 {
            return Ok(PeerVerdict::refused(format!(
                "neighbour entry for source {source} on bridge {bridge_name} is not valid (state {:#x})",
                neigh.state
            )));
        }
        let Some(mac) = neigh.mac else {
            return Ok(PeerVerdict::refused(format!(
                "neighbour entry for source {source} on bridge {bridge_name} has no MAC address"
            )));
        };

        // 3. The bridge port that MAC is behind.
        let entries = fdb_lookup(&mut self.sock, oif, &mac)?;
        let ports: HashSet<i32> = entries.iter().map(|e| e.ifindex).collect();
        let entry = match (entries.first(), ports.len()) {
            (None, _) => {
                return Ok(PeerVerdict::refused(format!(
                    "MAC {} of source {source} is not in the forwarding database of bridge {bridge_name}",
                    format_mac(&mac)
                )));
            }
            (Some(entry), 1) => entry.clone(),
            (Some(_), n) => {
                return Ok(PeerVerdict::refused(format!(
                    "MAC {} of source {source} is learned on {n} ports of bridge {bridge_name}",
                    format_mac(&mac)
                )));
            }
        };
        if entry.ifindex == bridge.index {
            return Ok(PeerVerdict::refused(format!(
                "MAC {} of source {source} belongs to bridge {bridge_name} itself",
                format_mac(&mac)
            )));
        }
        if entry.state & NUD_PERMANENT != 0 {
            return Ok(PeerVerdict::refused(format!(
                "MAC {} of source {source} is a local address of the node (port ifindex {})",
                format_mac(&mac),
                entry.ifindex
            )));
        }

        // 4. The pod behind that port, and the addresses it owns.
        let Ok(port_index) = u32::try_from(entry.ifindex) else {
            return Ok(PeerVerdict::refused(format!(
                "forwarding entry has invalid port index {}",
                entry.ifindex
            )));
        };
        let port = match link_get(&mut self.sock, port_index)? {
            Ok(link) => link,
            Err(Errno::NODEV) => {
                return Ok(PeerVerdict::refused(format!(
                    "bridge port {port_index} of source {source} vanished"
                )));
            }
            Err(errno) => {
                return Err(NetError::Kernel {
                    request: "RTM_GETLINK",
                    errno,
                });
            }
        };
        let port_name = link_name(&port);
        if port.master != Some(oif) {
            return Ok(PeerVerdict::refused(format!(
                "port {port_name} holding source {source}'s MAC is no longer enslaved to bridge {bridge_name}"
            )));
        }
        if port.kind.as_deref() != Some("veth") {
            return Ok(PeerVerdict::refused(format!(
                "source {source} arrived from bridge port {port_name} ({}), not a veth; it cannot be tied to a pod",
                port.kind.as_deref().unwrap_or("no link kind")
            )));
        }
        let (Some(nsid), Some(peer_index)) = (port.link_netnsid, port.link) else {
            return Ok(PeerVerdict::refused(format!(
                "source {source} arrived from bridge port {port_name} whose veth peer is not in another network \
                 namespace"
            )));
        };
        let owned = self.owned_addresses((port_index, nsid, peer_index), &port_name)?;
        if owned.contains(&source) {
            Ok(PeerVerdict::Verified { port: port_name })
        } else {
            let list: Vec<String> = owned.iter().map(Ipv4Addr::to_string).collect();
            Ok(PeerVerdict::refused(format!(
                "source IP {source} arrived from bridge port {port_name} whose pod owns [{}]",
                list.join(", ")
            )))
        }
    }
}

fn link_name(link: &LinkMessage) -> String {
    link.name
        .clone()
        .unwrap_or_else(|| format!("ifindex {}", link.index))
}

// === queries ===

fn malformed(request: &'static str) -> impl Fn(WireError) -> NetError {
    move |source| NetError::Malformed { request, source }
}

/// Sends a single-answer request and decodes the one reply of `reply_kind`.
fn get_one<T>(
    sock: &mut NlSocket,
    what: &'static str,
    request: &[u8],
    seq: u32,
    reply_kind: u16,
    decode: fn(&[u8]) -> Result<T, WireError>,
) -> Result<Result<T, Errno>, NetError> {
    let mut reply = None;
    let outcome = sock.transact(what, request, seq, false, |message| {
        if message.kind == reply_kind {
            reply = Some(decode(message.payload).map_err(malformed(what))?);
        }
        Ok(())
    })?;
    match (outcome, reply) {
        (Outcome::Kernel(errno), _) => Ok(Err(errno)),
        (_, Some(value)) => Ok(Ok(value)),
        (_, None) => Ok(Err(Errno::NOENT)),
    }
}

/// Runs a dump (retrying when interrupted) and keeps the decoded messages `keep` accepts.
fn dump<T>(
    sock: &mut NlSocket,
    what: &'static str,
    build: impl Fn(u32) -> Vec<u8>,
    reply_kind: u16,
    decode: fn(&[u8]) -> Result<T, WireError>,
    keep: impl Fn(&T) -> bool,
) -> Result<Result<Vec<T>, Errno>, NetError> {
    for _ in 0..DUMP_ATTEMPTS {
        let seq = sock.next_seq();
        let request = build(seq);
        let mut out = Vec::new();
        let outcome = sock.transact(what, &request, seq, true, |message| {
            if message.kind == reply_kind {
                let value = decode(message.payload).map_err(malformed(what))?;
                if keep(&value) {
                    out.push(value);
                }
            }
            Ok(())
        })?;
        match outcome {
            Outcome::Done => return Ok(Ok(out)),
            Outcome::Kernel(errno) => return Ok(Err(errno)),
            Outcome::Interrupted => continue,
        }
    }
    Err(NetError::DumpInterrupted {
        request: what,
        attempts: DUMP_ATTEMPTS,
    })
}

fn route_get(sock: &mut NlSocket, dst: Ipv4Addr) -> Result<Result<RouteMessage, Errno>, NetError> {
    let seq = sock.next_seq();
    let request = netlink::Request::new(RTM_GETROUTE, NLM_F_REQUEST, seq)
        .header(&netlink::rtmsg(AF_INET, 32))
        .attr(RTA_DST, &dst.octets())
        .finish();
    get_one(
        sock,
        "RTM_GETROUTE",
        &request,
        seq,
        RTM_NEWROUTE,
        netlink::decode_route,
    )
}

fn link_get(sock: &mut NlSocket, index: u32) -> Result<Result<LinkMessage, Errno>, NetError> {
    let Ok(index) = i32::try_from(index) else {
        return Ok(Err(Errno::NODEV));
    };
    let seq = sock.next_seq();
    let request = netlink::Request::new(RTM_GETLINK, NLM_F_REQUEST, seq)
        .header(&netlink::ifinfomsg(AF_UNSPEC, index))
        .finish();
    get_one(
        sock,
        "RTM_GETLINK",
        &request,
        seq,
        RTM_NEWLINK,
        netlink::decode_link,
    )
}

/// Link lookup by name (used by the test bed to read a MAC address).
pub(crate) fn link_get_by_name(
    sock: &mut NlSocket,
    name: &str,
) -> Result<Result<LinkMessage, Errno>, NetError> {
    let seq = sock.next_seq();
    let mut value = name.as_bytes().to_vec();
    value.push(0);
    let request = netlink::Request::new(RTM_GETLINK, NLM_F_REQUEST, seq)
        .header(&netlink::ifinfomsg(AF_UNSPEC, 0))
        .attr(netlink::IFLA_IFNAME, &value)
        .finish();
    get_one(
        sock,
        "RTM_GETLINK",
        &request,
        seq,
        RTM_NEWLINK,
        netlink::decode_link,
    )
}

pub(crate) fn neigh_get(
    sock: &mut NlSocket,
    ifindex: u32,
    dst: Ipv4Addr,
) -> Result<Result<NeighMessage, Errno>, NetError> {
    let Ok(ifindex) = i32::try_from(ifindex) else {
        return Ok(Err(Errno::NODEV));
    };
    let seq = sock.next_seq();
    let request = netlink::Request::new(RTM_GETNEIGH, NLM_F_REQUEST, seq)
        .header(&netlink::ndmsg(AF_INET, ifindex, 0))
        .attr(NDA_DST, &dst.octets())
        .finish();
    get_one(
        sock,
        "RTM_GETNEIGH",
        &request,
        seq,
        RTM_NEWNEIGH,
        netlink::decode_neigh,
    )
}

/// The bridge's forwarding entries for `mac` (bridge table entries only, not device address lists).
/// Tries the single-entry get first (VLAN 0, the key on bridges without VLAN filtering); when that
/// finds nothing, dumps the bridge's table to catch VLAN-keyed entries.
fn fdb_lookup(
    sock: &mut NlSocket,
    bridge: u32,
    mac: &[u8; 6],
) -> Result<Vec<NeighMessage>, NetError> {
    if let Some(entry) = fdb_get(sock, bridge, mac)? {
        return Ok(vec![entry]);
    }
    fdb_dump(sock, bridge, mac)
}

/// True for an entry of `bridge`'s own forwarding table (not a port's device address list) for `mac`.
fn is_bridge_entry(entry: &NeighMessage, bridge: u32, mac: &[u8; 6]) -> bool {
    entry.mac.as_ref() == Some(mac) && entry.master == Some(bridge) && entry.flags & NTF_SELF == 0
}

/// Single-entry FDB get (`rtnl_fdb_get`, Linux 5.0+) for `mac` on `bridge`, VLAN 0.
fn fdb_get(
    sock: &mut NlSocket,
    bridge: u32,
    mac: &[u8; 6],
) -> Result<Option<NeighMessage>, NetError> {
    let seq = sock.next_seq();
    let request = netlink::Request::new(RTM_GETNEIGH, NLM_F_REQUEST, seq)
        .header(&netlink::ndmsg(AF_BRIDGE, 0, 0))
        .attr(NDA_LLADDR, mac)
        .attr(NDA_MASTER, &bridge.to_ne_bytes())
        .finish();
    Ok(get_one(
        sock,
        "RTM_GETNEIGH(AF_BRIDGE)",
        &request,
        seq,
        RTM_NEWNEIGH,
        netlink::decode_neigh,
    )?
    .ok()
    .filter(|entry| is_bridge_entry(entry, bridge, mac)))
}

/// FDB dump of `bridge` (filtered to that bridge by the kernel), keeping the entries for `mac`.
fn fdb_dump(
    sock: &mut NlSocket,
    bridge: u32,
    mac: &[u8; 6],
) -> Result<Vec<NeighMessage>, NetError> {
    // Legacy (non-strict) FDB dump request: an ifinfomsg with IFLA_MASTER selects one bridge.
    let build = |seq| {
        netlink::Request::new(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq)
            .header(&netlink::ifinfomsg(AF_BRIDGE, 0))
            .attr(IFLA_MASTER, &bridge.to_ne_bytes())
            .finish()
    };
    let keep = |entry: &NeighMessage| is_bridge_entry(entry, bridge, mac);
    match dump(
        sock,
        "RTM_GETNEIGH(AF_BRIDGE) dump",
        build,
        RTM_NEWNEIGH,
        netlink::decode_neigh,
        keep,
    )? {
        Ok(entries) => Ok(entries),
        Err(errno) => Err(NetError::Kernel {
            request: "RTM_GETNEIGH(AF_BRIDGE) dump",
            errno,
        }),
    }
}

/// The namespace id (as seen from `sock`'s namespace) of the namespace `fd` refers to.
fn nsid_of(sock: &mut NlSocket, fd: &OwnedFd) -> Result<Option<i32>, NetError> {
    let Ok(raw) = u32::try_from(fd.as_raw_fd()) else {
        return Ok(None);
    };
    let seq = sock.next_seq();
    let request = netlink::Request::new(RTM_GETNSID, NLM_F_REQUEST, seq)
        .header(&netlink::rtgenmsg(AF_UNSPEC))
        .attr(NETNSA_FD, &raw.to_ne_bytes())
        .finish();
    match get_one(
        sock,
        "RTM_GETNSID",
        &request,
        seq,
        RTM_NEWNSID,
        netlink::decode_nsid,
    )? {
        Ok(reply) => Ok(reply.nsid),
        // Not a namespace handle (a stray file in a netns directory) or one we may not use.
        Err(_) => Ok(None),
    }
}

/// IPv4 addresses on interface `ifindex`, dumped through `sock` (in that interface's namespace).
pub(crate) fn ipv4_addresses(sock: &mut NlSocket, ifindex: u32) -> Result<Vec<Ipv4Addr>, NetError> {
    let build = |seq| {
        netlink::Request::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq)
            .header(&netlink::ifaddrmsg(AF_INET, 0))
            .finish()
    };
    let keep = |a: &AddrMessage| a.index == ifindex && a.family == AF_INET;
    let addrs = match dump(
        sock,
        "RTM_GETADDR dump",
        build,
        RTM_NEWADDR,
        netlink::decode_addr,
        keep,
    )? {
        Ok(addrs) => addrs,
        Err(errno) => {
            return Err(NetError::Kernel {
                request: "RTM_GETADDR dump",
                errno,
            });
        }
    };
    Ok(addrs
        .iter()
        .filter_map(|a| match a.own_address() {
            Some(IpAddr::V4(v4)) => Some(v4),
            _ => None,
        })
        .collect())
}

/// Enters the namespace `ns` on a short-lived thread and lists the IPv4 addresses of `ifindex` there.
fn addresses_in_namespace(ns: OwnedFd, ifindex: u32) -> Result<Vec<Ipv4Addr>, NetError> {
    let handle = std::thread::Builder::new()
        .name("podid-peer-netns".into())
        .spawn(move || -> Result<Vec<Ipv4Addr>, NetError> {
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| NetError::EnterNamespace {
                    namespace: "peer pod namespace".into(),
                    source: e.into(),
                })?;
            drop(ns);
            let mut sock = NlSocket::open()?;
            ipv4_addresses(&mut sock, ifindex)
        })
        .map_err(|source| NetError::Thread {
            what: "peer namespace query",
            source,
        })?;
    handle.join().map_err(|_| NetError::ThreadPanicked {
        what: "peer namespace query",
    })?
}

// === namespace handles ===

/// Maps namespace ids (as seen from the checker's namespace) to paths of namespace handles.
#[derive(Debug)]
struct NetnsIndex {
    config: PeerCheckConfig,
    by_nsid: HashMap<i32, PathBuf>,
    last_proc_scan: Option<Instant>,
}

impl NetnsIndex {
    fn new(config: PeerCheckConfig) -> Self {
        Self {
            config,
            by_nsid: HashMap::new(),
            last_proc_scan: None,
        }
    }

    fn describe_search(&self) -> String {
        let mut places: Vec<String> = self
            .config
            .netns_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        if self.config.scan_proc {
            places.push(format!("{PROC_DIR}/<pid>/ns/net"));
        }
        if places.is_empty() {
            "nowhere (no directories configured)".into()
        } else {
            places.join(", ")
        }
    }

    /// An open handle to the namespace with id `nsid`, verified with `RTM_GETNSID`.
    fn find(&mut self, sock: &mut NlSocket, nsid: i32) -> Result<Option<OwnedFd>, NetError> {
        if let Some(path) = self.by_nsid.get(&nsid).cloned() {
            if let Some(fd) = open_if_nsid(sock, &path, nsid)? {
                return Ok(Some(fd));
            }
            self.by_nsid.remove(&nsid);
        }
        self.scan_dirs(sock)?;
        if let Some(found) = self.try_cached(sock, nsid)? {
            return Ok(Some(found));
        }
        let proc_due = self
            .last_proc_scan
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(PROC_RESCAN_MIN_INTERVAL_MS));
        if self.config.scan_proc && proc_due {
            self.last_proc_scan = Some(Instant::now());
            self.scan_proc(sock)?;
            return self.try_cached(sock, nsid);
        }
        Ok(None)
    }

    fn try_cached(&mut self, sock: &mut NlSocket, nsid: i32) -> Result<Option<OwnedFd>, NetError> {
        match self.by_nsid.get(&nsid).cloned() {
            Some(path) => open_if_nsid(sock, &path, nsid),
            None => Ok(None),
        }
    }

    fn scan_dirs(&mut self, sock: &mut NlSocket) -> Result<(), NetError> {
        tracing::debug!(dirs = ?self.config.netns_dirs, "peer check: rescanning namespace directories");
        let mut seen = HashSet::new();
        let mut budget = MAX_NETNS_CANDIDATES;
        for dir in self.config.netns_dirs.clone() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if budget == 0 {
                    return Ok(());
                }
                budget -= 1;
                self.consider(sock, &entry.path(), &mut seen)?;
            }
        }
        Ok(())
    }

    fn scan_proc(&mut self, sock: &mut NlSocket) -> Result<(), NetError> {
        tracing::debug!("peer check: scanning /proc for namespace handles");
        let Ok(entries) = std::fs::read_dir(PROC_DIR) else {
            return Ok(());
        };
        let mut seen = HashSet::new();
        for entry in entries.flatten().take(MAX_NETNS_CANDIDATES) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let path = Path::new(PROC_DIR).join(name).join("ns/net");
            self.consider(sock, &path, &mut seen)?;
        }
        Ok(())
    }

    /// Records `path`'s namespace id, skipping namespaces already seen in this scan.
    fn consider(
        &mut self,
        sock: &mut NlSocket,
        path: &Path,
        seen: &mut HashSet<(u64, u64)>,
    ) -> Result<(), NetError> {
        let Ok(stat) = rustix::fs::stat(path) else {
            return Ok(());
        };
        if !seen.insert((stat.st_dev, stat.st_ino)) {
            return Ok(());
        }
        let Ok(fd) = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
            return Ok(());
        };
        if let Some(id) = nsid_of(sock, &fd)? {
            self.by_nsid.insert(id, path.to_path_buf());
        }
        Ok(())
    }
}

/// Opens `path` and returns the handle if it refers to the namespace with id `nsid`.
fn open_if_nsid(sock: &mut NlSocket, path: &Path, nsid: i32) -> Result<Option<OwnedFd>, NetError> {
    let Ok(fd) = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return Ok(None);
    };
    Ok((nsid_of(sock, &fd)? == Some(nsid)).then_some(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_display_and_predicates() {
        let cases = [
            (
                PeerVerdict::Verified {
                    port: "veth0".into(),
                },
                "verified (bridge port veth0)",
                true,
                false,
            ),
            (
                PeerVerdict::not_applicable("lo"),
                "not applicable: lo",
                false,
                false,
            ),
            (
                PeerVerdict::refused("spoofed"),
                "refused: spoofed",
                false,
                true,
            ),
        ];
        for (verdict, text, verified, refused) in cases {
            assert_eq!(verdict.to_string(), text);
            assert_eq!(verdict.is_verified(), verified);
            assert_eq!(verdict.is_refused(), refused);
        }
    }

    #[test]
    fn checker_can_move_to_blocking_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<PeerChecker>();
        assert_send::<PeerVerdict>();
    }

    #[test]
    fn default_config_searches_runtime_dirs_and_proc() {
        let config = PeerCheckConfig::default();
        assert!(config.scan_proc);
        assert!(config.netns_dirs.contains(&PathBuf::from("/var/run/netns")));
        let index = NetnsIndex::new(PeerCheckConfig {
            netns_dirs: vec![],
            scan_proc: false,
        });
        assert_eq!(
            index.describe_search(),
            "nowhere (no directories configured)"
        );
    }

    #[test]
    fn ipv6_sources_are_not_applicable_and_mapped_v4_is_checked() {
        let Ok(mut checker) = PeerChecker::with_config(PeerCheckConfig {
            netns_dirs: vec![],
            scan_proc: false,
        }) else {
            // No netlink in this sandbox: nothing to check here.
            return;
        };
        let verdict = checker.check("2001:db8::1".parse().expect("literal"));
        assert!(
            matches!(verdict, Ok(PeerVerdict::NotApplicable { .. })),
            "{verdict:?}"
        );
        // ::ffff:127.0.0.1 is checked as 127.0.0.1: a local address of this namespace.
        let mapped = checker.check("::ffff:127.0.0.1".parse().expect("literal"));
        match mapped {
            Ok(PeerVerdict::NotApplicable { reason }) => {
                assert!(reason.contains("127.0.0.1"), "{reason}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The FDB dump path (taken on VLAN-filtering bridges, whose entries the VLAN-0 get misses) finds
    /// the same port as the single-entry get. Runs only where namespaces can be created.
    #[test]
    fn fdb_dump_agrees_with_fdb_get() -> Result<(), NetError> {
        use crate::testbed::{self, NodeNet};
        if !testbed::netns_available("fdb_dump_agrees_with_fdb_get")? {
            return Ok(());
        }
        let node = NodeNet::create()?;
        let pods = [
            node.add_pod(Ipv4Addr::new(10, 244, 0, 10))?,
            node.add_pod(Ipv4Addr::new(10, 244, 0, 11))?,
        ];
        let target = std::net::SocketAddrV4::new(node.bridge_ip(), 9);
        for pod in &pods {
            pod.netns()
                .run(|| {
                    std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"hi", target))
                })?
                .map_err(|source| NetError::Io {
                    what: "udp to node".into(),
                    source,
                })?;
        }
        let macs = [pods[0].mac()?, pods[1].mac()?];
        // (port from the get, ports from the dump)
        type PortsFound = (Option<i32>, Vec<i32>);
        let bridge = node.bridge_name().to_owned();
        let found = node
            .netns()
            .run(move || -> Result<Vec<PortsFound>, NetError> {
                let mut sock = NlSocket::open()?;
                let index = match link_get_by_name(&mut sock, &bridge)? {
                    Ok(link) => u32::try_from(link.index).unwrap_or_default(),
                    Err(errno) => {
                        return Err(NetError::Kernel {
                            request: "RTM_GETLINK",
                            errno,
                        });
                    }
                };
                let mut out = Vec::new();
                for mac in &macs {
                    let got = fdb_get(&mut sock, index, mac)?.map(|e| e.ifindex);
                    let dumped = fdb_dump(&mut sock, index, mac)?
                        .iter()
                        .map(|e| e.ifindex)
                        .collect();
                    out.push((got, dumped));
                }
                Ok(out)
            })??;
        for (got, dumped) in &found {
            assert!(got.is_some(), "get finds the learned entry: {found:?}");
            assert_eq!(
                dumped,
                &vec![got.unwrap_or_default()],
                "dump finds exactly the same port"
            );
        }
        assert_ne!(found[0].0, found[1].0, "two pods, two ports");
        Ok(())
    }
}
