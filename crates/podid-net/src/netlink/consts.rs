//! Kernel ABI constants: netlink and rtnetlink message types, flags, attribute types and
//! structure sizes.

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
