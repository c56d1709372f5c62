//! Namespace topologies and the peer check, end to end. Needs root and iproute2 (the spoofing tests
//! also python3); otherwise each test prints `SKIPPED: …` and passes, unless `PODID_REQUIRE_NETNS=1`.
//! All traffic stays inside namespaces these tests create.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use podid_net::testbed::{self, NodeNet, PodNet};
use podid_net::{NetError, PeerChecker, PeerVerdict};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);
const POD_A: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 10);
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 11);

/// A blocking TCP listener created inside the node namespace, on the bridge address.
fn node_listener(node: &NodeNet) -> Result<(TcpListener, SocketAddrV4), NetError> {
    let bind = SocketAddrV4::new(node.bridge_ip(), 0);
    let listener = node
        .netns()
        .run(|| TcpListener::bind(bind))?
        .map_err(|source| NetError::Io {
            what: "binding node listener".into(),
            source,
        })?;
    let addr = match listener.local_addr() {
        Ok(SocketAddr::V4(v4)) => v4,
        Ok(other) => {
            return Err(NetError::InvalidArgument(format!(
                "unexpected listener address {other}"
            )));
        }
        Err(source) => {
            return Err(NetError::Io {
                what: "listener address".into(),
                source,
            });
        }
    };
    Ok((listener, addr))
}

/// Accepts one connection within [`ACCEPT_TIMEOUT`] (bounded poll, no hang when a connect failed).
fn accept(listener: &TcpListener) -> Result<(TcpStream, SocketAddr), NetError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| NetError::Io { what, source }
    };
    listener
        .set_nonblocking(true)
        .map_err(io("nonblocking listener"))?;
    let deadline = Instant::now() + ACCEPT_TIMEOUT;
    loop {
        match listener.accept() {
            Ok(pair) => return Ok(pair),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io("accept")(e)),
        }
    }
}

/// Runs a check and returns the verdict with its duration.
fn timed_check(checker: &mut PeerChecker, ip: IpAddr) -> Result<(PeerVerdict, Duration), NetError> {
    let start = Instant::now();
    let verdict = checker.check(ip)?;
    Ok((verdict, start.elapsed()))
}

fn exists(name: &str) -> bool {
    Path::new(testbed::NETNS_DIR).join(name).exists()
}

#[test]
fn topology_comes_up_and_is_deleted_on_drop() -> Result<(), NetError> {
    if !testbed::netns_available("topology_comes_up_and_is_deleted_on_drop")? {
        return Ok(());
    }
    let node = NodeNet::create()?;
    let pod_a = node.add_pod(POD_A)?;
    let pod_b = node.add_pod(POD_B)?;
    let names = [
        node.name().to_owned(),
        pod_a.name().to_owned(),
        pod_b.name().to_owned(),
    ];
    for name in &names {
        assert!(exists(name), "{name} exists while in use");
        assert!(
            name.starts_with(&format!("{}{}-", testbed::NETNS_PREFIX, std::process::id())),
            "{name}"
        );
    }
    let ports = node
        .netns()
        .ip(&["-o", "link", "show", "master", node.bridge_name()])?;
    assert!(
        ports.contains(pod_a.host_port()) && ports.contains(pod_b.host_port()),
        "{ports}"
    );
    let addr = pod_a
        .netns()
        .ip(&["-o", "-4", "addr", "show", "dev", "eth0"])?;
    assert!(addr.contains("10.244.0.10/24"), "{addr}");
    let route = pod_a.netns().ip(&["route", "show", "default"])?;
    assert!(route.contains("via 10.244.0.1"), "{route}");
    // The node namespace has no way out: only lo, the bridge and its ports.
    let links = node.netns().ip(&["-o", "link", "show"])?;
    assert_eq!(links.lines().count(), 4, "lo, br0, two ports: {links}");
    drop((pod_a, pod_b, node));
    for name in &names {
        assert!(!exists(name), "{name} deleted on drop");
    }
    Ok(())
}

#[test]
fn namespaces_are_deleted_when_a_test_panics() -> Result<(), NetError> {
    if !testbed::netns_available("namespaces_are_deleted_when_a_test_panics")? {
        return Ok(());
    }
    let created = Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let node = NodeNet::create().expect("node");
        let pod = node.add_pod(POD_A).expect("pod");
        if let Ok(mut names) = created.lock() {
            names.push(node.name().to_owned());
            names.push(pod.name().to_owned());
        }
        // resume_unwind unwinds like a panic without printing one.
        std::panic::resume_unwind(Box::new("deliberate panic with live namespaces"));
    }));
    assert!(outcome.is_err(), "the closure panicked");
    let names = created.into_inner().unwrap_or_default();
    assert_eq!(names.len(), 2);
    for name in &names {
        assert!(!exists(name), "{name} deleted while unwinding");
    }
    Ok(())
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_processes_only() -> Result<(), NetError> {
    if !testbed::netns_available("cleanup_stale_removes_namespaces_of_dead_processes_only")? {
        return Ok(());
    }
    // A pid that is certainly dead: a child we started and reaped.
    let dead_pid = std::process::Command::new("true")
        .spawn()
        .and_then(|mut child| child.wait().map(|_| child.id()))
        .map_err(|source| NetError::Io {
            what: "running `true`".into(),
            source,
        })?;
    let stale = format!("{}{dead_pid}-0-stale", testbed::NETNS_PREFIX);
    let status = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .map_err(|source| NetError::Io {
            what: "ip netns add".into(),
            source,
        })?;
    assert!(status.success());
    let live = testbed::Netns::create("live")?;
    let removed = testbed::cleanup_stale(testbed::NETNS_PREFIX)?;
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!exists(&stale), "stale namespace deleted");
    assert!(exists(live.name()), "this process's namespaces are kept");
    Ok(())
}

#[test]
fn node_server_on_netns_runtime_sees_pod_ip() -> Result<(), NetError> {
    if !testbed::netns_available("node_server_on_netns_runtime_sees_pod_ip")? {
        return Ok(());
    }
    let node = NodeNet::create()?;
    let pod = node.add_pod(POD_A)?;
    let rt = node.netns().runtime()?;
    let bind = SocketAddrV4::new(node.bridge_ip(), 0);
    // The listener is created in a task, i.e. on a runtime thread inside the node namespace; binding
    // the bridge address would fail anywhere else.
    let listener = rt
        .block_on(rt.spawn(async move { tokio::net::TcpListener::bind(bind).await }))
        .map_err(|e| NetError::InvalidArgument(format!("listener task: {e}")))?
        .map_err(|source| NetError::Io {
            what: "binding on the netns runtime".into(),
            source,
        })?;
    // Blocking-pool threads live in the namespace too.
    let blocking_bind = rt
        .block_on(rt.spawn_blocking(move || TcpListener::bind(bind).map(|_| ())))
        .map_err(|e| NetError::InvalidArgument(format!("blocking task: {e}")))?;
    assert!(
        blocking_bind.is_ok(),
        "spawn_blocking runs in the node namespace: {blocking_bind:?}"
    );
    let server_addr = listener.local_addr().map_err(|source| NetError::Io {
        what: "local addr".into(),
        source,
    })?;
    let server = rt.spawn(async move {
        let (mut stream, peer) = tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()).await??;
        use tokio::io::AsyncWriteExt;
        stream.write_all(peer.ip().to_string().as_bytes()).await?;
        Ok::<SocketAddr, Box<dyn std::error::Error + Send + Sync>>(peer)
    });
    let mut client = pod.tcp_connect(server_addr, CONNECT_TIMEOUT)?;
    let mut seen = String::new();
    client
        .set_read_timeout(Some(ACCEPT_TIMEOUT))
        .and_then(|()| client.read_to_string(&mut seen))
        .map_err(|source| NetError::Io {
            what: "reading server reply".into(),
            source,
        })?;
    let peer = rt
        .block_on(server)
        .map_err(|e| NetError::InvalidArgument(format!("server task: {e}")))?
        .map_err(|e| NetError::InvalidArgument(format!("server: {e}")))?;
    assert_eq!(
        peer.ip(),
        IpAddr::V4(POD_A),
        "the node server sees the pod's own address"
    );
    assert_eq!(seen, POD_A.to_string());
    Ok(())
}

#[test]
fn peer_check_verifies_a_real_pod_and_refuses_an_arp_spoofer() -> Result<(), NetError> {
    if !testbed::spoofing_available("peer_check_verifies_a_real_pod_and_refuses_an_arp_spoofer")? {
        return Ok(());
    }
    let node = NodeNet::create()?;
    let victim = node.add_pod(POD_A)?;
    let attacker = node.add_pod(POD_B)?;
    let (listener, server) = node_listener(&node)?;
    let mut checker = node.peer_checker()?;

    // The victim talks to the node: verified, through its own bridge port.
    let _victim_conn = victim.tcp_connect(SocketAddr::V4(server), CONNECT_TIMEOUT)?;
    let (_accepted, peer) = accept(&listener)?;
    assert_eq!(peer.ip(), IpAddr::V4(POD_A));
    let (verdict, took) = timed_check(&mut checker, peer.ip())?;
    println!("check of real pod {}: {verdict} in {took:?}", peer.ip());
    assert_eq!(
        verdict,
        PeerVerdict::Verified {
            port: victim.host_port().to_owned()
        }
    );

    // The attacker takes over the victim's address: the node's neighbour entry is poisoned...
    attacker.spoof_ip(POD_A)?;
    let attacker_mac = attacker.mac()?;
    let deadline = Instant::now() + ACCEPT_TIMEOUT;
    while node.neighbour_mac(POD_A)? != Some(attacker_mac) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        node.neighbour_mac(POD_A)?,
        Some(attacker_mac),
        "gratuitous ARP poisoned the node"
    );
    // ...and a connection with the victim's source address completes from the attacker's namespace.
    let mut spoofed = attacker.tcp_connect_from(POD_A, server, CONNECT_TIMEOUT)?;
    let (mut accepted, peer) = accept(&listener)?;
    assert_eq!(
        peer.ip(),
        IpAddr::V4(POD_A),
        "the server cannot tell by address"
    );
    accepted
        .write_all(b"hello")
        .map_err(|source| NetError::Io {
            what: "write to spoofed client".into(),
            source,
        })?;
    let mut buf = [0u8; 5];
    spoofed
        .set_read_timeout(Some(ACCEPT_TIMEOUT))
        .and_then(|()| spoofed.read_exact(&mut buf))
        .map_err(|source| NetError::Io {
            what: "spoofer reads the reply".into(),
            source,
        })?;
    assert_eq!(
        &buf, b"hello",
        "without the check the spoofer gets the victim's answer"
    );

    for round in ["after accept", "before responding"] {
        let (verdict, took) = timed_check(&mut checker, peer.ip())?;
        println!(
            "check of spoofed {} ({round}): {verdict} in {took:?}",
            peer.ip()
        );
        let PeerVerdict::Refused { reason } = verdict else {
            panic!("spoofed connection must be refused, got {verdict}");
        };
        assert!(
            reason.contains(attacker.host_port()),
            "names the attacker's port: {reason}"
        );
        assert!(
            reason.contains(&POD_B.to_string()),
            "lists what the attacker's pod owns: {reason}"
        );
    }
    Ok(())
}

#[test]
fn peer_check_refuses_a_pod_spoofing_ip_and_mac() -> Result<(), NetError> {
    if !testbed::spoofing_available("peer_check_refuses_a_pod_spoofing_ip_and_mac")? {
        return Ok(());
    }
    let node = NodeNet::create()?;
    let victim = node.add_pod(POD_A)?;
    let attacker = node.add_pod(POD_B)?;
    let (listener, server) = node_listener(&node)?;
    let mut checker = node.peer_checker()?;

    // The victim is idle; the attacker clones its MAC and address.
    attacker.spoof_mac(victim.mac()?)?;
    attacker.spoof_ip(POD_A)?;
    let _conn = attacker.tcp_connect_from(POD_A, server, CONNECT_TIMEOUT)?;
    let (_accepted, peer) = accept(&listener)?;
    assert_eq!(
        node.neighbour_mac(POD_A)?,
        Some(victim.mac()?),
        "the node sees the victim's MAC"
    );
    let (verdict, took) = timed_check(&mut checker, peer.ip())?;
    println!("check of IP+MAC spoofer: {verdict} in {took:?}");
    let PeerVerdict::Refused { reason } = verdict else {
        panic!("IP+MAC spoofer must be refused, got {verdict}");
    };
    assert!(
        reason.contains(attacker.host_port()),
        "the FDB points at the attacker's port: {reason}"
    );
    Ok(())
}

#[test]
fn peer_check_not_applicable_for_loopback_local_routed_and_ipv6() -> Result<(), NetError> {
    if !testbed::netns_available("peer_check_not_applicable_for_loopback_local_routed_and_ipv6")? {
        return Ok(());
    }
    let node = NodeNet::create()?;
    let routed = node.add_routed_pod(Ipv4Addr::new(10, 245, 0, 5))?;
    let (listener, server) = node_listener(&node)?;
    let mut checker = node.peer_checker()?;

    let _conn = routed.tcp_connect(SocketAddr::V4(server), CONNECT_TIMEOUT)?;
    let (_accepted, peer) = accept(&listener)?;
    assert_eq!(peer.ip(), IpAddr::V4(routed.ip()));
    let cases: [(IpAddr, &str); 4] = [
        (IpAddr::V4(Ipv4Addr::LOCALHOST), "local address"),
        (IpAddr::V4(node.bridge_ip()), "local address"),
        (peer.ip(), routed.host_port()),
        (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), "IPv6"),
    ];
    for (ip, expect) in cases {
        let (verdict, took) = timed_check(&mut checker, ip)?;
        println!("check of {ip}: {verdict} in {took:?}");
        let PeerVerdict::NotApplicable { reason } = verdict else {
            panic!("{ip}: expected NotApplicable, got {verdict}");
        };
        assert!(reason.contains(expect), "{ip}: {reason}");
    }
    Ok(())
}

#[test]
fn peer_check_refuses_sources_without_neighbour_entry() -> Result<(), NetError> {
    if !testbed::netns_available("peer_check_refuses_sources_without_neighbour_entry")? {
        return Ok(());
    }
    let node = NodeNet::create()?;
    let _pod = node.add_pod(POD_A)?;
    let mut checker = node.peer_checker()?;
    let ghost = IpAddr::V4(Ipv4Addr::new(10, 244, 0, 99));
    let (verdict, took) = timed_check(&mut checker, ghost)?;
    println!("check of {ghost}: {verdict} in {took:?}");
    let PeerVerdict::Refused { reason } = verdict else {
        panic!("expected Refused, got {verdict}");
    };
    assert!(reason.contains("no neighbour entry"), "{reason}");
    Ok(())
}

/// Pods on the 110-pod node: kubelet's default maximum.
const PODS_PER_NODE: u8 = 110;

#[test]
fn peer_check_timing_on_a_node_with_110_pods() -> Result<(), NetError> {
    if !testbed::netns_available("peer_check_timing_on_a_node_with_110_pods")? {
        return Ok(());
    }
    let node = NodeNet::create()?;
    let setup = Instant::now();
    let mut pods: Vec<PodNet> = Vec::with_capacity(usize::from(PODS_PER_NODE));
    for i in 0..PODS_PER_NODE {
        pods.push(node.add_pod(Ipv4Addr::new(10, 244, 0, 10 + i))?);
    }
    // Every pod sends one datagram to the node: the node learns its neighbour entry and the bridge
    // learns its MAC, as on a busy node.
    let target = SocketAddrV4::new(node.bridge_ip(), 9);
    for pod in &pods {
        pod.netns()
            .run(|| std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"hi", target)))?
            .map_err(|source| NetError::Io {
                what: format!("udp from {}", pod.ip()),
                source,
            })?;
    }
    println!("110-pod node ready in {:?}", setup.elapsed());
    let mut checker = node.peer_checker()?;
    let mut first = Vec::new();
    let mut warm = Vec::new();
    for round in 0..2 {
        for pod in pods.iter().step_by(11) {
            let (verdict, took) = timed_check(&mut checker, IpAddr::V4(pod.ip()))?;
            assert_eq!(
                verdict,
                PeerVerdict::Verified {
                    port: pod.host_port().to_owned()
                },
                "{}",
                pod.ip()
            );
            if round == 0 {
                first.push(took)
            } else {
                warm.push(took)
            }
        }
    }
    warm.sort();
    let median = warm.get(warm.len() / 2).copied().unwrap_or_default();
    let max = warm.last().copied().unwrap_or_default();
    println!(
        "peer check with {PODS_PER_NODE} pods: first-seen namespaces {first:?}; warm median {median:?}, max {max:?} \
         over {} checks",
        warm.len()
    );
    Ok(())
}
