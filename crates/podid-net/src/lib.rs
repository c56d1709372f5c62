//! podid-net: the node agent's networking edge.
//!
//! The agent (the NMI drop-in) identifies the calling pod by the TCP source address of a request that
//! iptables DNATed from `169.254.169.254:80` to it. That is only as trustworthy as the source address,
//! and on bridged (kubenet-style) pod networks a pod with `CAP_NET_RAW` can ARP-spoof its neighbour's
//! address (CVE-2021-1677). This crate holds the two pieces of networking code the agent and its tests
//! need:
//!
//! - [`peer`]: [`peer::PeerChecker`], the anti-spoofing check. From the node's own neighbour table, the
//!   bridge forwarding database and the veth pair behind the bridge port, it decides whether the host
//!   that completed the TCP handshake really is the pod that owns the source address. Read-only netlink
//!   queries, no packets sent.
//! - [`netlink`]: the small, bounds-checked rtnetlink encoder and decoder both of the above use. Every
//!   length in a kernel reply is checked before use; malformed replies are [`netlink::WireError`]s, never
//!   panics (a property test feeds it arbitrary bytes).
//! - [`testbed`]: network-namespace topologies for the project's test suites (a "node" namespace with a
//!   bridge, "pod" namespaces behind veth pairs, tokio runtimes whose threads live in a namespace, and a
//!   test-only ARP spoofing helper). Nothing in it touches the host's own network namespace.
//!
//! Errors at the crate boundary are [`NetError`]; each variant says what to fix.

mod error;
pub mod netlink;
pub mod peer;
mod socket;
pub mod testbed;

pub use error::NetError;
pub use peer::{PeerCheckConfig, PeerChecker, PeerVerdict};
