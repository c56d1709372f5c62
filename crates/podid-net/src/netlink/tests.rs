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
