//! rtnetlink wire format: request encoding and a bounds-checked reply decoder.
//!
//! # Model
//!
//! A netlink datagram is a sequence of messages. Each starts with a 16-byte `nlmsghdr`
//! (`len: u32, type: u16, flags: u16, seq: u32, pid: u32`, host byte order) whose `len` covers the
//! header and payload; the next message starts at `len` rounded up to 4. An rtnetlink payload is a
//! fixed family header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`, `ndmsg`, `rtgenmsg`) followed by attributes:
//! 4-byte `rtattr` headers (`len: u16, type: u16`, the top two type bits are the nested and
//! byte-order flags) whose `len` covers header and value, each padded to 4.
//!
//! # Invariants
//!
//! - Decoding never panics and never reads out of bounds: every length field is checked against the
//!   bytes actually present before it is used, arithmetic is checked, and every failure is a
//!   [`WireError`] naming the structure that was short. A property test feeds arbitrary bytes to every
//!   decoder here.
//! - The last message or attribute of a buffer may omit its trailing padding (the kernel never does
//!   this, but tolerating it costs nothing); a length that runs past the end of the buffer is an error.
//! - Unknown message types and attributes are skipped, as the rtnetlink ABI requires of readers.
//! - Attribute values of fixed-size types (u32, IPv4 address, MAC) must have exactly that size; a
//!   different size is [`WireError::AttrSize`], not a silent truncation.
//!
//! Only the handful of messages and attributes the peer check needs are decoded into types
//! ([`LinkMessage`], [`AddrMessage`], [`RouteMessage`], [`NeighMessage`], [`NsidMessage`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// === constants ===

/// Size of `struct nlmsghdr`, bytes.
pub const NLMSG_HDR_LEN_BYTES: usize = 16;
/// Size of `struct rtattr`/`struct nlattr` header, bytes.
pub const ATTR_HDR_LEN_BYTES: usize = 4;
/// Netlink alignment, bytes.
pub const ALIGN_BYTES: usize = 4;
/// Mask removing `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` from an attribute type.
pub const ATTR_TYPE_MASK: u16 = 0x3fff;
/// `NLA_F_NESTED`.
pub const ATTR_F_NESTED: u16 = 0x8000;

/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`: payload is an `i32` (negative errno, 0 for an ACK) and the offending header.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a dump; payload is an `i32` status.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP_INTR`: the dump changed while it was being produced.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;

/// `RTM_NEWLINK`.
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_GETLINK`.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_NEWADDR`.
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_GETADDR`.
pub const RTM_GETADDR: u16 = 22;
/// `RTM_NEWROUTE`.
pub const RTM_NEWROUTE: u16 = 24;
/// `RTM_GETROUTE`.
pub const RTM_GETROUTE: u16 = 26;
/// `RTM_NEWNEIGH`.
pub const RTM_NEWNEIGH: u16 = 28;
/// `RTM_GETNEIGH`.
pub const RTM_GETNEIGH: u16 = 30;
/// `RTM_NEWNSID`.
pub const RTM_NEWNSID: u16 = 88;
/// `RTM_GETNSID`.
pub const RTM_GETNSID: u16 = 90;

/// `AF_UNSPEC`.
pub const AF_UNSPEC: u8 = 0;
/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_BRIDGE` (`PF_BRIDGE`), the family of bridge FDB entries.
pub const AF_BRIDGE: u8 = 7;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;

/// `IFLA_ADDRESS`: link-layer address.
pub const IFLA_ADDRESS: u16 = 1;
/// `IFLA_IFNAME`: interface name, NUL-terminated.
pub const IFLA_IFNAME: u16 = 3;
/// `IFLA_LINK`: for a veth, the peer's ifindex (in the peer's namespace).
pub const IFLA_LINK: u16 = 5;
/// `IFLA_MASTER`: ifindex of the master device (the bridge, for a bridge port).
pub const IFLA_MASTER: u16 = 10;
/// `IFLA_LINKINFO`: nested; carries `IFLA_INFO_KIND`.
pub const IFLA_LINKINFO: u16 = 18;
/// `IFLA_LINK_NETNSID`: the namespace id (as seen from the querying namespace) of the peer.
pub const IFLA_LINK_NETNSID: u16 = 37;
/// `IFLA_INFO_KIND` inside `IFLA_LINKINFO`: "bridge", "veth", ...
pub const IFLA_INFO_KIND: u16 = 1;

/// `IFA_ADDRESS`.
pub const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`.
pub const IFA_LOCAL: u16 = 2;

/// `RTA_DST`.
pub const RTA_DST: u16 = 1;
/// `RTA_OIF`.
pub const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
pub const RTA_GATEWAY: u16 = 5;
/// `RTN_UNICAST`.
pub const RTN_UNICAST: u8 = 1;
/// `RTN_LOCAL`: the destination is an address of this host.
pub const RTN_LOCAL: u8 = 2;

/// `NDA_DST`.
pub const NDA_DST: u16 = 1;
/// `NDA_LLADDR`.
pub const NDA_LLADDR: u16 = 2;
/// `NDA_VLAN`.
pub const NDA_VLAN: u16 = 5;
/// `NDA_MASTER`.
pub const NDA_MASTER: u16 = 9;

/// `NUD_INCOMPLETE`.
pub const NUD_INCOMPLETE: u16 = 0x01;
/// `NUD_REACHABLE`.
pub const NUD_REACHABLE: u16 = 0x02;
/// `NUD_STALE`.
pub const NUD_STALE: u16 = 0x04;
/// `NUD_DELAY`.
pub const NUD_DELAY: u16 = 0x08;
/// `NUD_PROBE`.
pub const NUD_PROBE: u16 = 0x10;
/// `NUD_FAILED`.
pub const NUD_FAILED: u16 = 0x20;
/// `NUD_NOARP`.
pub const NUD_NOARP: u16 = 0x40;
/// `NUD_PERMANENT`.
pub const NUD_PERMANENT: u16 = 0x80;
/// `NUD_VALID`: states in which the kernel uses the entry's link-layer address to send.
pub const NUD_VALID: u16 =
    NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

/// `NTF_SELF`: an FDB entry from the device's own address list, not the bridge's table.
pub const NTF_SELF: u8 = 0x02;

/// `NETNSA_NSID`.
pub const NETNSA_NSID: u16 = 1;
/// `NETNSA_FD`.
pub const NETNSA_FD: u16 = 3;
/// `NETNSA_NSID_NOT_ASSIGNED`.
pub const NETNSA_NSID_NOT_ASSIGNED: i32 = -1;

/// Size of `struct ifinfomsg`, bytes.
pub const IFINFOMSG_LEN_BYTES: usize = 16;
/// Size of `struct ifaddrmsg`, bytes.
pub const IFADDRMSG_LEN_BYTES: usize = 8;
/// Size of `struct rtmsg`, bytes.
pub const RTMSG_LEN_BYTES: usize = 12;
/// Size of `struct ndmsg`, bytes.
pub const NDMSG_LEN_BYTES: usize = 12;
/// Size of `struct rtgenmsg` once aligned, bytes.
pub const RTGENMSG_LEN_BYTES: usize = 4;
/// Size of an Ethernet MAC address, bytes.
pub const MAC_LEN_BYTES: usize = 6;

// === errors ===

/// A malformed netlink buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the structure needs.
    #[error("{what} truncated: needs {need} bytes, {have} present")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A length field smaller than its own header.
    #[error("{what} declares length {len}, smaller than its {min}-byte header")]
    LengthBelowHeader {
        /// The structure being read.
        what: &'static str,
        /// The declared length.
        len: usize,
        /// The header size.
        min: usize,
    },
    /// A fixed-size attribute with the wrong size.
    #[error("attribute {attr} of {what} has {len} bytes, expected {expected}")]
    AttrSize {
        /// The message kind.
        what: &'static str,
        /// The attribute type.
        attr: u16,
        /// Its size.
        len: usize,
        /// The expected size.
        expected: usize,
    },
    /// An `NLMSG_ERROR`/`NLMSG_DONE` status that is neither 0 nor a negative errno.
    #[error("netlink status {status} is neither 0 nor a negative errno")]
    BadStatus {
        /// The status.
        status: i32,
    },
    /// A string attribute that is not UTF-8.
    #[error("attribute {attr} of {what} is not a UTF-8 string")]
    BadString {
        /// The message kind.
        what: &'static str,
        /// The attribute type.
        attr: u16,
    },
}

fn align(len: usize) -> Option<usize> {
    len.checked_add(ALIGN_BYTES - 1)
        .map(|v| v & !(ALIGN_BYTES - 1))
}

fn need(what: &'static str, buf: &[u8], n: usize) -> Result<(), WireError> {
    if buf.len() < n {
        Err(WireError::Truncated {
            what,
            need: n,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([bytes[0], bytes[1]]))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn i32_at(buf: &[u8], at: usize) -> Option<i32> {
    u32_at(buf, at).map(|v| i32::from_ne_bytes(v.to_ne_bytes()))
}

// === messages ===

/// One netlink message, borrowed from a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub port: u32,
    /// Everything after the header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

/// Iterator over the messages of a datagram; see [`messages`].
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Splits a datagram into messages. Yields an error (then stops) at the first malformed header.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages {
        rest: datagram,
        failed: false,
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = self.split_one();
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

impl<'a> Messages<'a> {
    fn split_one(&mut self) -> Result<Message<'a>, WireError> {
        let buf = self.rest;
        need("nlmsghdr", buf, NLMSG_HDR_LEN_BYTES)?;
        let header_err = WireError::Truncated {
            what: "nlmsghdr",
            need: NLMSG_HDR_LEN_BYTES,
            have: buf.len(),
        };
        let len = u32_at(buf, 0).ok_or_else(|| header_err.clone())? as usize;
        let kind = u16_at(buf, 4).ok_or_else(|| header_err.clone())?;
        let flags = u16_at(buf, 6).ok_or_else(|| header_err.clone())?;
        let seq = u32_at(buf, 8).ok_or_else(|| header_err.clone())?;
        let port = u32_at(buf, 12).ok_or(header_err)?;
        if len < NLMSG_HDR_LEN_BYTES {
            return Err(WireError::LengthBelowHeader {
                what: "nlmsghdr",
                len,
                min: NLMSG_HDR_LEN_BYTES,
            });
        }
        need("netlink message", buf, len)?;
        let payload = buf.get(NLMSG_HDR_LEN_BYTES..len).unwrap_or_default();
        let next = align(len).unwrap_or(usize::MAX).min(buf.len());
        self.rest = buf.get(next..).unwrap_or_default();
        Ok(Message {
            kind,
            flags,
            seq,
            port,
            payload,
        })
    }
}

/// Decodes the status of an `NLMSG_ERROR` or `NLMSG_DONE` payload: 0 for success/ACK, a negative errno
/// otherwise. (`NLMSG_DONE` may carry an empty payload from very old kernels; that is success.)
pub fn decode_status(kind: u16, payload: &[u8]) -> Result<i32, WireError> {
    if kind == NLMSG_DONE && payload.is_empty() {
        return Ok(0);
    }
    need("netlink status", payload, 4)?;
    i32_at(payload, 0).ok_or(WireError::Truncated {
        what: "netlink status",
        need: 4,
        have: payload.len(),
    })
}

// === attributes ===

/// One attribute: its type (flags masked off), whether it is nested, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Attribute type without `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER`.
    pub kind: u16,
    /// `NLA_F_NESTED` was set.
    pub nested: bool,
    /// The value (without padding).
    pub value: &'a [u8],
}

/// Iterator over attributes; see [`attrs`].
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Splits an attribute area into attributes. Yields an error (then stops) at the first malformed one.
pub fn attrs(area: &[u8]) -> Attrs<'_> {
    Attrs {
        rest: area,
        failed: false,
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = self.split_one();
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

impl<'a> Attrs<'a> {
    fn split_one(&mut self) -> Result<Attr<'a>, WireError> {
        let buf = self.rest;
        need("rtattr", buf, ATTR_HDR_LEN_BYTES)?;
        let truncated = WireError::Truncated {
            what: "rtattr",
            need: ATTR_HDR_LEN_BYTES,
            have: buf.len(),
        };
        let len = u16_at(buf, 0).ok_or_else(|| truncated.clone())? as usize;
        let raw_kind = u16_at(buf, 2).ok_or(truncated)?;
        if len < ATTR_HDR_LEN_BYTES {
            return Err(WireError::LengthBelowHeader {
                what: "rtattr",
                len,
                min: ATTR_HDR_LEN_BYTES,
            });
        }
        need("rtattr value", buf, len)?;
        let value = buf.get(ATTR_HDR_LEN_BYTES..len).unwrap_or_default();
        let next = align(len).unwrap_or(usize::MAX).min(buf.len());
        self.rest = buf.get(next..).unwrap_or_default();
        Ok(Attr {
            kind: raw_kind & ATTR_TYPE_MASK,
            nested: raw_kind & ATTR_F_NESTED != 0,
            value,
        })
    }
}

impl Attr<'_> {
    /// The value as a host-order `u32`.
    pub fn u32(&self, what: &'static str) -> Result<u32, WireError> {
        self.fixed::<4>(what).map(u32::from_ne_bytes)
    }

    /// The value as a host-order `i32`.
    pub fn i32(&self, what: &'static str) -> Result<i32, WireError> {
        self.fixed::<4>(what).map(i32::from_ne_bytes)
    }

    /// The value as a host-order `u16`.
    pub fn u16(&self, what: &'static str) -> Result<u16, WireError> {
        self.fixed::<2>(what).map(u16::from_ne_bytes)
    }

    /// The value as a 6-byte MAC address.
    pub fn mac(&self, what: &'static str) -> Result<[u8; MAC_LEN_BYTES], WireError> {
        self.fixed::<MAC_LEN_BYTES>(what)
    }

    /// The value as an IP address of the given family.
    pub fn ip(&self, what: &'static str, family: u8) -> Result<IpAddr, WireError> {
        if family == AF_INET6 {
            self.fixed::<16>(what)
                .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
        } else {
            self.fixed::<4>(what).map(|b| IpAddr::V4(Ipv4Addr::from(b)))
        }
    }

    /// The value as a string, up to the first NUL.
    pub fn string(&self, what: &'static str) -> Result<String, WireError> {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        let bytes = self.value.get(..end).unwrap_or_default();
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| WireError::BadString {
                what,
                attr: self.kind,
            })
    }

    fn fixed<const N: usize>(&self, what: &'static str) -> Result<[u8; N], WireError> {
        <[u8; N]>::try_from(self.value).map_err(|_| WireError::AttrSize {
            what,
            attr: self.kind,
            len: self.value.len(),
            expected: N,
        })
    }
}

fn split_header<'a>(
    what: &'static str,
    payload: &'a [u8],
    len: usize,
) -> Result<(&'a [u8], &'a [u8]), WireError> {
    need(what, payload, len)?;
    let area_start = align(len).unwrap_or(usize::MAX).min(payload.len());
    Ok((
        payload.get(..len).unwrap_or_default(),
        payload.get(area_start..).unwrap_or_default(),
    ))
}

// === typed decoders ===

/// The parts of an `RTM_NEWLINK` message the peer check uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkMessage {
    /// `ifi_index`.
    pub index: i32,
    /// `IFLA_IFNAME`.
    pub name: Option<String>,
    /// `IFLA_LINKINFO/IFLA_INFO_KIND` ("bridge", "veth", ...).
    pub kind: Option<String>,
    /// `IFLA_MASTER`.
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex in the peer's namespace.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer's namespace id.
    pub link_netnsid: Option<i32>,
    /// `IFLA_ADDRESS`, when it is a 6-byte MAC.
    pub mac: Option<[u8; MAC_LEN_BYTES]>,
}

/// Decodes an `RTM_NEWLINK` payload.
pub fn decode_link(payload: &[u8]) -> Result<LinkMessage, WireError> {
    const WHAT: &str = "RTM_NEWLINK";
    let (header, area) = split_header("ifinfomsg", payload, IFINFOMSG_LEN_BYTES)?;
    let index = i32_at(header, 4).ok_or(WireError::Truncated {
        what: "ifinfomsg",
        need: 8,
        have: header.len(),
    })?;
    let mut out = LinkMessage {
        index,
        ..LinkMessage::default()
    };
    for attr in attrs(area) {
        let attr = attr?;
        match attr.kind {
            IFLA_IFNAME => out.name = Some(attr.string(WHAT)?),
            IFLA_MASTER => out.master = Some(attr.u32(WHAT)?),
            IFLA_LINK => out.link = Some(attr.u32(WHAT)?),
            IFLA_LINK_NETNSID => out.link_netnsid = Some(attr.i32(WHAT)?),
            IFLA_ADDRESS if attr.value.len() == MAC_LEN_BYTES => out.mac = Some(attr.mac(WHAT)?),
            IFLA_LINKINFO => {
                for inner in attrs(attr.value) {
                    let inner = inner?;
                    if inner.kind == IFLA_INFO_KIND {
                        out.kind = Some(inner.string(WHAT)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The parts of an `RTM_NEWADDR` message the peer check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrMessage {
    /// `ifa_family`.
    pub family: u8,
    /// `ifa_prefixlen`.
    pub prefix_len: u8,
    /// `ifa_index`.
    pub index: u32,
    /// `IFA_LOCAL` (the interface's own address; for IPv4 the one to compare with).
    pub local: Option<IpAddr>,
    /// `IFA_ADDRESS` (the peer address on point-to-point links, otherwise equal to `local`).
    pub address: Option<IpAddr>,
}

impl AddrMessage {
    /// The address the interface owns: `IFA_LOCAL` when present, else `IFA_ADDRESS`.
    pub fn own_address(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }
}

/// Decodes an `RTM_NEWADDR` payload.
pub fn decode_addr(payload: &[u8]) -> Result<AddrMessage, WireError> {
    const WHAT: &str = "RTM_NEWADDR";
    let (header, area) = split_header("ifaddrmsg", payload, IFADDRMSG_LEN_BYTES)?;
    let short = || WireError::Truncated {
        what: "ifaddrmsg",
        need: IFADDRMSG_LEN_BYTES,
        have: header.len(),
    };
    let family = *header.first().ok_or_else(short)?;
    let prefix_len = *header.get(1).ok_or_else(short)?;
    let index = u32_at(header, 4).ok_or_else(short)?;
    let mut out = AddrMessage {
        family,
        prefix_len,
        index,
        local: None,
        address: None,
    };
    for attr in attrs(area) {
        let attr = attr?;
        match attr.kind {
            IFA_LOCAL => out.local = Some(attr.ip(WHAT, family)?),
            IFA_ADDRESS => out.address = Some(attr.ip(WHAT, family)?),
            _ => {}
        }
    }
    Ok(out)
}

/// The parts of an `RTM_NEWROUTE` message the peer check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMessage {
    /// `rtm_family`.
    pub family: u8,
    /// `rtm_type` (`RTN_UNICAST`, `RTN_LOCAL`, ...).
    pub route_type: u8,
    /// `RTA_OIF`.
    pub oif: Option<u32>,
    /// `RTA_GATEWAY`.
    pub gateway: Option<IpAddr>,
}

/// Decodes an `RTM_NEWROUTE` payload.
pub fn decode_route(payload: &[u8]) -> Result<RouteMessage, WireError> {
    const WHAT: &str = "RTM_NEWROUTE";
    let (header, area) = split_header("rtmsg", payload, RTMSG_LEN_BYTES)?;
    let short = || WireError::Truncated {
        what: "rtmsg",
        need: RTMSG_LEN_BYTES,
        have: header.len(),
    };
    let family = *header.first().ok_or_else(short)?;
    let route_type = *header.get(7).ok_or_else(short)?;
    let mut out = RouteMessage {
        family,
        route_type,
        oif: None,
        gateway: None,
    };
    for attr in attrs(area) {
        let attr = attr?;
        match attr.kind {
            RTA_OIF => out.oif = Some(attr.u32(WHAT)?),
            RTA_GATEWAY => out.gateway = Some(attr.ip(WHAT, family)?),
            _ => {}
        }
    }
    Ok(out)
}

/// The parts of an `RTM_NEWNEIGH` message (neighbour or bridge FDB entry) the peer check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighMessage {
    /// `ndm_family` (`AF_INET` for ARP entries, `AF_BRIDGE` for FDB entries).
    pub family: u8,
    /// `ndm_ifindex`: the device (for FDB entries: the bridge port).
    pub ifindex: i32,
    /// `ndm_state` (`NUD_*`).
    pub state: u16,
    /// `ndm_flags` (`NTF_*`).
    pub flags: u8,
    /// `NDA_DST` (absent on FDB entries).
    pub dst: Option<IpAddr>,
    /// `NDA_LLADDR`, when it is a 6-byte MAC.
    pub mac: Option<[u8; MAC_LEN_BYTES]>,
    /// `NDA_MASTER` (FDB entries of a bridge carry the bridge's ifindex).
    pub master: Option<u32>,
    /// `NDA_VLAN`.
    pub vlan: Option<u16>,
}

/// Decodes an `RTM_NEWNEIGH` payload.
pub fn decode_neigh(payload: &[u8]) -> Result<NeighMessage, WireError> {
    const WHAT: &str = "RTM_NEWNEIGH";
    let (header, area) = split_header("ndmsg", payload, NDMSG_LEN_BYTES)?;
    let short = || WireError::Truncated {
        what: "ndmsg",
        need: NDMSG_LEN_BYTES,
        have: header.len(),
    };
    let family = *header.first().ok_or_else(short)?;
    let ifindex = i32_at(header, 4).ok_or_else(short)?;
    let state = u16_at(header, 8).ok_or_else(short)?;
    let flags = *header.get(10).ok_or_else(short)?;
    let mut out = NeighMessage {
        family,
        ifindex,
        state,
        flags,
        dst: None,
        mac: None,
        master: None,
        vlan: None,
    };
    for attr in attrs(area) {
        let attr = attr?;
        match attr.kind {
            NDA_DST if family == AF_INET || family == AF_INET6 => {
                out.dst = Some(attr.ip(WHAT, family)?)
            }
            NDA_LLADDR if attr.value.len() == MAC_LEN_BYTES => out.mac = Some(attr.mac(WHAT)?),
            NDA_MASTER => out.master = Some(attr.u32(WHAT)?),
            NDA_VLAN => out.vlan = Some(attr.u16(WHAT)?),
            _ => {}
        }
    }
    Ok(out)
}

/// An `RTM_NEWNSID` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsidMessage {
    /// `NETNSA_NSID`; `None` when absent or `NETNSA_NSID_NOT_ASSIGNED`.
    pub nsid: Option<i32>,
}

/// Decodes an `RTM_NEWNSID` payload.
pub fn decode_nsid(payload: &[u8]) -> Result<NsidMessage, WireError> {
    const WHAT: &str = "RTM_NEWNSID";
    let (_, area) = split_header("rtgenmsg", payload, 1)?;
    let mut out = NsidMessage { nsid: None };
    for attr in attrs(area) {
        let attr = attr?;
        if attr.kind == NETNSA_NSID {
            let id = attr.i32(WHAT)?;
            out.nsid = (id != NETNSA_NSID_NOT_ASSIGNED).then_some(id);
        }
    }
    Ok(out)
}

// === encoding ===

/// Builds one request message. Lengths are patched in by [`Request::finish`].
#[derive(Debug, Clone)]
pub struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// Starts a request of `kind` with `flags` (add [`NLM_F_REQUEST`] yourself) and sequence number `seq`.
    #[must_use]
    pub fn new(kind: u16, flags: u16, seq: u32) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Self { buf }
    }

    /// Appends the family header (padded to 4 bytes).
    #[must_use]
    pub fn header(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    /// Appends an attribute. Values longer than an attribute can hold are a programming error of the
    /// caller; they are clamped to the largest representable length rather than corrupting the stream.
    #[must_use]
    pub fn attr(mut self, kind: u16, value: &[u8]) -> Self {
        let max_value = usize::from(u16::MAX) - ATTR_HDR_LEN_BYTES;
        let value = value.get(..value.len().min(max_value)).unwrap_or_default();
        let len = u16::try_from(ATTR_HDR_LEN_BYTES + value.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    /// Finishes the message: writes `nlmsg_len`.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len())
            .unwrap_or(u32::MAX)
            .to_ne_bytes();
        if let Some(slot) = self.buf.get_mut(0..4) {
            slot.copy_from_slice(&len);
        }
        self.buf
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(ALIGN_BYTES) {
            self.buf.push(0);
        }
    }
}

/// `struct ifinfomsg` with the given family and index, other fields zero.
pub fn ifinfomsg(family: u8, index: i32) -> [u8; IFINFOMSG_LEN_BYTES] {
    let mut out = [0u8; IFINFOMSG_LEN_BYTES];
    out[0] = family;
    out[4..8].copy_from_slice(&index.to_ne_bytes());
    out
}

/// `struct ifaddrmsg` with the given family and index, other fields zero.
pub fn ifaddrmsg(family: u8, index: u32) -> [u8; IFADDRMSG_LEN_BYTES] {
    let mut out = [0u8; IFADDRMSG_LEN_BYTES];
    out[0] = family;
    out[4..8].copy_from_slice(&index.to_ne_bytes());
    out
}

/// `struct rtmsg` for a route lookup: family and destination prefix length, other fields zero.
pub fn rtmsg(family: u8, dst_len: u8) -> [u8; RTMSG_LEN_BYTES] {
    let mut out = [0u8; RTMSG_LEN_BYTES];
    out[0] = family;
    out[1] = dst_len;
    out
}

/// `struct ndmsg` with the given family, ifindex and flags, other fields zero.
pub fn ndmsg(family: u8, ifindex: i32, flags: u8) -> [u8; NDMSG_LEN_BYTES] {
    let mut out = [0u8; NDMSG_LEN_BYTES];
    out[0] = family;
    out[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    out[10] = flags;
    out
}

/// `struct rtgenmsg` (padded to 4 bytes).
pub fn rtgenmsg(family: u8) -> [u8; RTGENMSG_LEN_BYTES] {
    [family, 0, 0, 0]
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; MAC_LEN_BYTES]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Request::new(kind, flags, seq).finish();
        out.extend_from_slice(payload);
        let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out
    }

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(
            &u16::try_from(4 + value.len())
                .unwrap_or(u16::MAX)
                .to_ne_bytes(),
        );
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out
    }

    #[test]
    fn splits_two_messages_and_reads_headers() {
        let mut dgram = msg(RTM_NEWLINK, NLM_F_MULTI, 7, &[1, 2, 3]);
        dgram.extend(msg(NLMSG_DONE, NLM_F_MULTI, 7, &0i32.to_ne_bytes()));
        let parsed: Vec<_> = messages(&dgram)
            .collect::<Result<_, _>>()
            .expect("well-formed");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].kind, RTM_NEWLINK);
        assert_eq!(parsed[0].seq, 7);
        assert_eq!(parsed[0].payload, &[1, 2, 3]);
        assert_eq!(parsed[1].kind, NLMSG_DONE);
        assert_eq!(decode_status(parsed[1].kind, parsed[1].payload), Ok(0));
    }

    #[test]
    fn malformed_message_headers_are_errors() {
        let good = msg(RTM_NEWLINK, 0, 1, &[0; 8]);
        let mut below_header = good.clone();
        below_header[0..4].copy_from_slice(&8u32.to_ne_bytes());
        let mut past_end = good.clone();
        past_end[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let cases: Vec<(&str, Vec<u8>, WireError)> = vec![
            (
                "short header",
                good[..10].to_vec(),
                WireError::Truncated {
                    what: "nlmsghdr",
                    need: 16,
                    have: 10,
                },
            ),
            (
                "len below header",
                below_header,
                WireError::LengthBelowHeader {
                    what: "nlmsghdr",
                    len: 8,
                    min: 16,
                },
            ),
            (
                "len past end",
                past_end,
                WireError::Truncated {
                    what: "netlink message",
                    need: 1000,
                    have: 24,
                },
            ),
            (
                "len u32::MAX",
                huge,
                WireError::Truncated {
                    what: "netlink message",
                    need: u32::MAX as usize,
                    have: 24,
                },
            ),
        ];
        for (name, bytes, want) in cases {
            let got: Vec<_> = messages(&bytes).collect();
            assert_eq!(got.len(), 1, "{name}: stops after the first error");
            assert_eq!(got[0], Err(want), "{name}");
        }
    }

    #[test]
    fn last_message_may_omit_padding() {
        let mut dgram = msg(RTM_NEWLINK, 0, 1, &[9]);
        // Header says 17 bytes; drop the padding the helper added.
        dgram.truncate(17);
        let parsed: Vec<_> = messages(&dgram)
            .collect::<Result<_, _>>()
            .expect("tolerated");
        assert_eq!(parsed[0].payload, &[9]);
    }

    #[test]
    fn error_status_is_decoded() {
        let mut payload = (-2i32).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0; 16]);
        assert_eq!(decode_status(NLMSG_ERROR, &payload), Ok(-2));
        assert_eq!(decode_status(NLMSG_DONE, &[]), Ok(0));
        assert!(matches!(
            decode_status(NLMSG_ERROR, &[1, 2]),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn attributes_table() {
        let nested_kind = IFLA_LINKINFO | ATTR_F_NESTED;
        type Decoded = Result<Vec<(u16, bool, Vec<u8>)>, WireError>;
        let cases: Vec<(&str, Vec<u8>, Decoded)> = vec![
            ("empty", vec![], Ok(vec![])),
            (
                "one u32",
                attr(IFLA_MASTER, &5u32.to_ne_bytes()),
                Ok(vec![(IFLA_MASTER, false, 5u32.to_ne_bytes().to_vec())]),
            ),
            (
                "nested flag masked",
                attr(nested_kind, &[]),
                Ok(vec![(IFLA_LINKINFO, true, vec![])]),
            ),
            (
                "two with padding",
                [
                    attr(IFLA_IFNAME, b"br0\0"),
                    attr(IFLA_ADDRESS, &[1, 2, 3, 4, 5, 6]),
                ]
                .concat(),
                Ok(vec![
                    (IFLA_IFNAME, false, b"br0\0".to_vec()),
                    (IFLA_ADDRESS, false, vec![1, 2, 3, 4, 5, 6]),
                ]),
            ),
            (
                "short header",
                vec![8, 0],
                Err(WireError::Truncated {
                    what: "rtattr",
                    need: 4,
                    have: 2,
                }),
            ),
            (
                "len below header",
                vec![2, 0, 1, 0],
                Err(WireError::LengthBelowHeader {
                    what: "rtattr",
                    len: 2,
                    min: 4,
                }),
            ),
            (
                "len past end",
                vec![12, 0, 1, 0, 0, 0],
                Err(WireError::Truncated {
                    what: "rtattr value",
                    need: 12,
                    have: 6,
                }),
            ),
        ];
        for (name, bytes, want) in cases {
            let got: Result<Vec<_>, _> = attrs(&bytes)
                .map(|a| a.map(|a| (a.kind, a.nested, a.value.to_vec())))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn fixed_size_attrs_reject_wrong_sizes() {
        let three = [1u8, 2, 3];
        let a = Attr {
            kind: IFLA_MASTER,
            nested: false,
            value: &three,
        };
        assert_eq!(
            a.u32("t"),
            Err(WireError::AttrSize {
                what: "t",
                attr: IFLA_MASTER,
                len: 3,
                expected: 4
            })
        );
        assert!(a.mac("t").is_err());
        assert!(a.ip("t", AF_INET).is_err());
        let bad_utf8 = [0xffu8, 0xfe, 0];
        let s = Attr {
            kind: IFLA_IFNAME,
            nested: false,
            value: &bad_utf8,
        };
        assert_eq!(
            s.string("t"),
            Err(WireError::BadString {
                what: "t",
                attr: IFLA_IFNAME
            })
        );
        let unterminated = *b"eth0";
        let s = Attr {
            kind: IFLA_IFNAME,
            nested: false,
            value: &unterminated,
        };
        assert_eq!(s.string("t").as_deref(), Ok("eth0"));
    }

    /// A link message as the kernel sends it for the host end of a veth attached to a bridge.
    fn veth_port_fixture() -> Vec<u8> {
        let linkinfo = attr(IFLA_INFO_KIND, b"veth\0");
        [
            ifinfomsg(AF_UNSPEC, 7).to_vec(),
            attr(IFLA_IFNAME, b"veth3\0"),
            attr(IFLA_ADDRESS, &[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01]),
            attr(IFLA_MASTER, &3u32.to_ne_bytes()),
            attr(IFLA_LINK, &2u32.to_ne_bytes()),
            attr(IFLA_LINKINFO | ATTR_F_NESTED, &linkinfo),
            attr(IFLA_LINK_NETNSID, &4i32.to_ne_bytes()),
            attr(999, &[1, 2, 3]),
        ]
        .concat()
    }

    #[test]
    fn decodes_link_fixture() {
        let got = decode_link(&veth_port_fixture()).expect("valid");
        assert_eq!(
            got,
            LinkMessage {
                index: 7,
                name: Some("veth3".into()),
                kind: Some("veth".into()),
                master: Some(3),
                link: Some(2),
                link_netnsid: Some(4),
                mac: Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01]),
            }
        );
    }

    #[test]
    fn decoders_reject_truncation_everywhere() {
        let full = veth_port_fixture();
        for cut in 0..full.len() {
            // Every prefix either decodes (cut at an attribute boundary) or errors; none panics.
            let _ = decode_link(&full[..cut]);
        }
        assert!(matches!(
            decode_link(&full[..10]),
            Err(WireError::Truncated {
                what: "ifinfomsg",
                ..
            })
        ));
        let mut bad_master = full.clone();
        // Shrink IFLA_MASTER's declared length from 8 to 6: the value becomes 2 bytes.
        let master_at = IFINFOMSG_LEN_BYTES
            + attr(IFLA_IFNAME, b"veth3\0").len()
            + attr(IFLA_ADDRESS, &[0; 6]).len();
        bad_master[master_at..master_at + 2].copy_from_slice(&6u16.to_ne_bytes());
        assert!(matches!(
            decode_link(&bad_master),
            Err(WireError::AttrSize {
                attr: IFLA_MASTER,
                ..
            })
        ));
    }

    #[test]
    fn decodes_addr_route_neigh_nsid_fixtures() {
        let addr = [
            ifaddrmsg(AF_INET, 2).to_vec(),
            attr(IFA_ADDRESS, &[10, 244, 0, 10]),
            attr(IFA_LOCAL, &[10, 244, 0, 10]),
        ]
        .concat();
        let got = decode_addr(&addr).expect("valid");
        assert_eq!(got.index, 2);
        assert_eq!(
            got.own_address(),
            Some(IpAddr::V4(Ipv4Addr::new(10, 244, 0, 10)))
        );

        let mut rt = rtmsg(AF_INET, 32);
        rt[7] = RTN_UNICAST;
        let route = [
            rt.to_vec(),
            attr(RTA_DST, &[10, 244, 0, 10]),
            attr(RTA_OIF, &3u32.to_ne_bytes()),
        ]
        .concat();
        let got = decode_route(&route).expect("valid");
        assert_eq!(
            (got.route_type, got.oif, got.gateway),
            (RTN_UNICAST, Some(3), None)
        );

        let mut nd = ndmsg(AF_INET, 3, 0);
        nd[8..10].copy_from_slice(&NUD_REACHABLE.to_ne_bytes());
        let neigh = [
            nd.to_vec(),
            attr(NDA_DST, &[10, 244, 0, 10]),
            attr(NDA_LLADDR, &[2, 0, 0, 0, 0, 1]),
        ]
        .concat();
        let got = decode_neigh(&neigh).expect("valid");
        assert_eq!(got.state, NUD_REACHABLE);
        assert_eq!(got.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(got.dst, Some(IpAddr::V4(Ipv4Addr::new(10, 244, 0, 10))));

        let fdb = [
            ndmsg(AF_BRIDGE, 7, 0).to_vec(),
            attr(NDA_LLADDR, &[2, 0, 0, 0, 0, 1]),
            attr(NDA_MASTER, &3u32.to_ne_bytes()),
            attr(NDA_VLAN, &1u16.to_ne_bytes()),
        ]
        .concat();
        let got = decode_neigh(&fdb).expect("valid");
        assert_eq!(
            (got.ifindex, got.master, got.vlan, got.dst),
            (7, Some(3), Some(1), None)
        );

        let nsid = [
            rtgenmsg(AF_UNSPEC).to_vec(),
            attr(NETNSA_NSID, &5i32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(decode_nsid(&nsid), Ok(NsidMessage { nsid: Some(5) }));
        let unassigned = [
            rtgenmsg(AF_UNSPEC).to_vec(),
            attr(NETNSA_NSID, &(-1i32).to_ne_bytes()),
        ]
        .concat();
        assert_eq!(decode_nsid(&unassigned), Ok(NsidMessage { nsid: None }));
    }

    #[test]
    fn request_encoding_round_trips() {
        let req = Request::new(RTM_GETNEIGH, NLM_F_REQUEST, 42)
            .header(&ndmsg(AF_INET, 3, 0))
            .attr(NDA_DST, &[10, 0, 0, 1])
            .attr(NDA_LLADDR, &[1, 2, 3, 4, 5, 6])
            .finish();
        assert_eq!(req.len(), 16 + 12 + 8 + 12);
        let parsed: Vec<_> = messages(&req)
            .collect::<Result<_, _>>()
            .expect("own encoding parses");
        assert_eq!(parsed.len(), 1);
        assert_eq!(
            (parsed[0].kind, parsed[0].flags, parsed[0].seq),
            (RTM_GETNEIGH, NLM_F_REQUEST, 42)
        );
        let got = decode_neigh(parsed[0].payload).expect("decodes");
        assert_eq!(got.ifindex, 3);
        assert_eq!(got.mac, Some([1, 2, 3, 4, 5, 6]));
    }

    #[test]
    fn formats_mac() {
        assert_eq!(
            format_mac(&[0x02, 0, 0xab, 0xcd, 0xef, 0x10]),
            "02:00:ab:cd:ef:10"
        );
    }
}
