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

mod consts;
pub use consts::*;

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
mod tests;
