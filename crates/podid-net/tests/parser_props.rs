//! Property tests of the netlink decoder: it never panics, whatever the bytes, and it reads back
//! exactly what the encoder wrote.

use podid_net::netlink::{self, Request};
use proptest::prelude::*;

/// Runs every decoder over every message of `bytes`, and over `bytes` taken as a bare payload.
fn decode_everything(bytes: &[u8]) {
    for message in netlink::messages(bytes) {
        let Ok(message) = message else { break };
        exercise_payload(message.kind, message.payload);
    }
    exercise_payload(netlink::NLMSG_ERROR, bytes);
    exercise_payload(netlink::NLMSG_DONE, bytes);
}

fn exercise_payload(kind: u16, payload: &[u8]) {
    let _ = netlink::decode_status(kind, payload);
    let _ = netlink::decode_link(payload);
    let _ = netlink::decode_addr(payload);
    let _ = netlink::decode_route(payload);
    let _ = netlink::decode_neigh(payload);
    let _ = netlink::decode_nsid(payload);
    for attr in netlink::attrs(payload) {
        let Ok(attr) = attr else { break };
        let _ = attr.u32("prop");
        let _ = attr.i32("prop");
        let _ = attr.u16("prop");
        let _ = attr.mac("prop");
        let _ = attr.ip("prop", netlink::AF_INET);
        let _ = attr.ip("prop", netlink::AF_INET6);
        let _ = attr.string("prop");
        for inner in netlink::attrs(attr.value) {
            if inner.is_err() {
                break;
            }
        }
    }
}

/// A realistic reply datagram: a veth port link message followed by NLMSG_DONE.
fn fixture() -> Vec<u8> {
    let linkinfo = Request::new(0, 0, 0)
        .attr(netlink::IFLA_INFO_KIND, b"veth\0")
        .finish();
    let linkinfo = linkinfo
        .get(netlink::NLMSG_HDR_LEN_BYTES..)
        .unwrap_or_default()
        .to_vec();
    let mut out = Request::new(netlink::RTM_NEWLINK, netlink::NLM_F_MULTI, 9)
        .header(&netlink::ifinfomsg(netlink::AF_UNSPEC, 7))
        .attr(netlink::IFLA_IFNAME, b"veth3\0")
        .attr(netlink::IFLA_MASTER, &3u32.to_ne_bytes())
        .attr(netlink::IFLA_LINK, &2u32.to_ne_bytes())
        .attr(netlink::IFLA_LINKINFO | netlink::ATTR_F_NESTED, &linkinfo)
        .attr(netlink::IFLA_LINK_NETNSID, &4i32.to_ne_bytes())
        .finish();
    out.extend(
        Request::new(netlink::NLMSG_DONE, netlink::NLM_F_MULTI, 9)
            .header(&0i32.to_ne_bytes())
            .finish(),
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fixture();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        decode_everything(&bytes);
    }

    #[test]
    fn encoded_attributes_read_back(
        attrs in proptest::collection::vec((1u16..0x3fff, proptest::collection::vec(any::<u8>(), 0..64)), 0..12),
        seq in any::<u32>(),
    ) {
        let mut request = Request::new(netlink::RTM_NEWADDR, netlink::NLM_F_REQUEST, seq)
            .header(&netlink::ifaddrmsg(netlink::AF_INET, 5));
        for (kind, value) in &attrs {
            request = request.attr(*kind, value);
        }
        let bytes = request.finish();
        let messages: Vec<_> = netlink::messages(&bytes).collect::<Result<_, _>>().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(messages.len(), 1);
        prop_assert_eq!(messages[0].seq, seq);
        let area = messages[0].payload.get(netlink::IFADDRMSG_LEN_BYTES..).unwrap_or_default();
        let decoded: Vec<(u16, Vec<u8>)> = netlink::attrs(area)
            .map(|a| a.map(|a| (a.kind, a.value.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded, attrs);
    }
}

#[test]
fn fixture_decodes() {
    let bytes = fixture();
    let messages: Vec<_> = netlink::messages(&bytes)
        .collect::<Result<_, _>>()
        .expect("fixture is well-formed");
    assert_eq!(messages.len(), 2);
    let link = netlink::decode_link(messages[0].payload).expect("link decodes");
    assert_eq!(link.kind.as_deref(), Some("veth"));
    assert_eq!(
        (link.master, link.link, link.link_netnsid),
        (Some(3), Some(2), Some(4))
    );
    assert_eq!(
        netlink::decode_status(messages[1].kind, messages[1].payload),
        Ok(0)
    );
}
