//! Network-namespace test topologies (test support; needs root and iproute2).
//!
//! # Model
//!
//! A test builds a miniature node out of network namespaces, never touching the host's own:
//!
//! ```text
//!   host namespace: untouched (no links, routes, sysctls or rules are added there)
//!
//!   node ns "pdt<pid>-<n>-node":  lo, br0 10.244.0.1/24, veth0..vethN (bridge ports)
//!        |veth0                |veth1
//!   pod ns "…-pod0": eth0 10.244.0.10/24     pod ns "…-pod1": eth0 10.244.0.11/24
//!                    default via 10.244.0.1                   default via 10.244.0.1
//! ```
//!
//! [`NodeNet`] is the node namespace with its bridge; [`NodeNet::add_pod`] adds a pod namespace behind
//! a veth pair whose host end is a bridge port (kubenet-style), and [`NodeNet::add_routed_pod`] one
//! behind a plain routed `/32` veth (Azure CNI transparent mode / Calico style). Both ends of every veth
//! are created inside the test's namespaces (`ip -n NODE link add … peer name eth0 netns POD`), and the
//! node namespace has no link to the host namespace, so nothing a test sends can leave.
//!
//! Code runs inside a namespace in three ways: [`run_in_netns`] (a blocking closure on a fresh thread
//! that `setns`ed first), [`in_netns`] (a tokio runtime all of whose worker and blocking threads
//! `setns` on start) and [`Netns::exec`] (a child process forked from such a thread). Sockets keep the
//! namespace they were created in, so a listener made in a node-namespace task can be used anywhere.
//!
//! # Invariants
//!
//! - Every namespace is an RAII [`Netns`] named `pdt<pid>-<counter>-<name>`; dropping it (also while
//!   unwinding from a panic) deletes it, and with it every interface inside. [`cleanup_stale`] deletes
//!   namespaces whose `<pid>` is no longer alive, for runs that were killed.
//! - Interface names stay within IFNAMSIZ (15 bytes): they are short and namespace-local (`br0`,
//!   `veth<n>`, `eth0`); the per-process uniqueness lives in namespace names, which have no such limit.
//! - A thread that fails to enter its namespace never runs test code in the host namespace: closures
//!   are not run, and runtime threads abort the process.
//!
//! # Spoofing (test only)
//!
//! [`PodNet::spoof_ip`] makes a pod behave like the CVE-2021-1677 attacker, a pod holding `CAP_NET_RAW`:
//! it gives the pod's kernel the victim's address on `lo` (standing in for the attacker's user-space
//! TCP stack on a raw socket: the address is *not* on the pod's `eth0`), broadcasts a gratuitous ARP
//! for it from `eth0` (a raw `AF_PACKET` socket in a short Python 3 script; this overrides the node's
//! existing neighbour entry) and flushes the pod's own neighbour cache so its next connection's ARP
//! request also announces the victim's address. A connection from [`PodNet::tcp_connect_from`] with
//! the victim's address then completes its handshake from the spoofer, exactly what the peer check
//! must refuse. [`PodNet::spoof_mac`] additionally takes over a MAC address.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::thread::LinkNameSpaceType;

use crate::netlink::MAC_LEN_BYTES;
use crate::peer::{self, PeerCheckConfig, PeerChecker};
use crate::socket::NlSocket;
use crate::{NetError, netlink};

// === constants ===

/// Prefix of every namespace this module creates (`pdt<pid>-…`).
pub const NETNS_PREFIX: &str = "pdt";
/// Where `ip netns` keeps its namespace bind mounts.
pub const NETNS_DIR: &str = "/run/netns";
/// Environment variable that turns a missing prerequisite into a test failure instead of a skip.
pub const REQUIRE_NETNS_ENV: &str = "PODID_REQUIRE_NETNS";
/// Default bridge name in the node namespace.
pub const DEFAULT_BRIDGE_NAME: &str = "br0";
/// Default bridge address (the pods' gateway).
pub const DEFAULT_BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// Default pod subnet prefix length, bits.
pub const DEFAULT_PREFIX_LEN_BITS: u8 = 24;
/// Maximum length of an interface name (IFNAMSIZ minus the NUL), bytes.
pub const IFNAME_MAX_LEN_BYTES: usize = 15;
/// Maximum length of the caller-chosen part of a namespace name, bytes.
pub const NETNS_NAME_MAX_LEN_BYTES: usize = 32;
/// Gratuitous ARP frames sent by [`PodNet::send_gratuitous_arp`].
pub const GARP_FRAMES: u32 = 3;
/// The iproute2 binary.
const IP_BIN: &str = "ip";
/// The Python interpreter used for the raw-socket ARP helper.
const PYTHON_BIN: &str = "python3";
/// Worker threads of an [`in_netns`] runtime (tests are small; the machine is shared).
const RUNTIME_WORKER_THREADS: usize = 2;

/// Sends gratuitous ARP requests for argv[1] from interface argv[2], argv[3] times, via a raw
/// AF_PACKET socket. The sender MAC is the interface's own (read back with getsockname).
const GARP_SCRIPT: &str = r#"
import socket, sys
ip = socket.inet_aton(sys.argv[1]); ifname = sys.argv[2]; count = int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((ifname, 0))
mac = s.getsockname()[4]
arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + ip + b"\x00" * 6 + ip
frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
frame += b"\x00" * (60 - len(frame))
for _ in range(count):
    s.send(frame)
"#;

static NETNS_COUNTER: AtomicU32 = AtomicU32::new(0);

// === prerequisites ===

/// Whether namespace tests can run here: root, `ip` (iproute2) present. Returns `Ok(true)` to run,
/// `Ok(false)` after printing `SKIPPED: <test>: <reason>` to stderr, or, when `PODID_REQUIRE_NETNS=1`, an
/// error for the test to fail with. On the first call that succeeds it also runs
/// [`cleanup_stale`] for [`NETNS_PREFIX`].
pub fn netns_available(test: &str) -> Result<bool, NetError> {
    skip_or_fail(test, missing_netns_prerequisite())
}

/// Like [`netns_available`], and additionally requires `python3` (for [`PodNet::spoof_ip`]).
pub fn spoofing_available(test: &str) -> Result<bool, NetError> {
    let missing = missing_netns_prerequisite().or_else(|| {
        let ok = Command::new(PYTHON_BIN)
            .arg("-c")
            .arg("import socket")
            .output()
            .is_ok_and(|o| o.status.success());
        (!ok).then(|| format!("`{PYTHON_BIN}` with the socket module is not available"))
    });
    skip_or_fail(test, missing)
}

fn missing_netns_prerequisite() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("network namespace tests need root".into());
    }
    let ip_ok = Command::new(IP_BIN)
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    (!ip_ok).then(|| format!("`{IP_BIN}` (iproute2) is not available"))
}

fn skip_or_fail(test: &str, missing: Option<String>) -> Result<bool, NetError> {
    match missing {
        None => {
            static CLEANED: std::sync::Once = std::sync::Once::new();
            CLEANED.call_once(|| {
                if let Err(e) = cleanup_stale(NETNS_PREFIX) {
                    eprintln!("testbed: cleaning stale namespaces failed: {e}");
                }
            });
            Ok(true)
        }
        Some(reason) if std::env::var(REQUIRE_NETNS_ENV).as_deref() == Ok("1") => {
            Err(NetError::PrerequisiteMissing {
                test: test.to_owned(),
                reason,
            })
        }
        Some(reason) => {
            // Written to the stderr handle directly: libtest's capture (which hides the output of
            // passing tests) only intercepts the print macros.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
            Ok(false)
        }
    }
}

/// Deletes namespaces named `<prefix><pid>-…` whose process `<pid>` is no longer alive (never this
/// process's own). Returns the names deleted.
pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>, NetError> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NetError::Io {
                what: format!("reading {NETNS_DIR}"),
                source,
            });
        }
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_stale(&name, prefix) {
            continue;
        }
        run_checked(Command::new(IP_BIN).args(["netns", "del", &name]))?;
        removed.push(name);
    }
    Ok(removed)
}

/// Whether `name` is `<prefix><pid>-…` with `<pid>` neither this process nor alive: something a killed run left.
pub fn is_stale(name: &str, prefix: &str) -> bool {
    owner_pid(name, prefix).is_some_and(|pid| {
        pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
    })
}

/// `<prefix><digits>-…` → the digits as a pid.
fn owner_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let (digits, _) = rest.split_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// === running inside a namespace ===

fn netns_path(name: &str) -> PathBuf {
    if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        Path::new(NETNS_DIR).join(name)
    }
}

fn open_netns(name: &str) -> Result<OwnedFd, NetError> {
    rustix::fs::open(
        netns_path(name),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| NetError::EnterNamespace {
        namespace: name.to_owned(),
        source: e.into(),
    })
}

fn enter(fd: &OwnedFd, name: &str) -> Result<(), NetError> {
    rustix::thread::move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
        |e| NetError::EnterNamespace {
            namespace: name.to_owned(),
            source: e.into(),
        },
    )
}

/// Runs `f` on a fresh thread inside network namespace `name` (a name under `/run/netns`, or an
/// absolute path such as `/proc/<pid>/ns/net`) and returns its result. A panic in `f` is resumed on
/// the calling thread. Sockets `f` creates stay in that namespace.
pub fn run_in_netns<T, F>(name: &str, f: F) -> Result<T, NetError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let fd = open_netns(name)?;
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("podid-netns-run".into())
            .spawn_scoped(scope, move || -> Result<T, NetError> {
                enter(&fd, name)?;
                drop(fd);
                Ok(f())
            })
            .map_err(|source| NetError::Thread {
                what: "run_in_netns",
                source,
            })?;
        match handle.join() {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}

/// A multi-thread tokio runtime whose worker and blocking threads all live in network namespace
/// `name`. Spawn work onto it (`rt.spawn(..)`, `rt.spawn_blocking(..)`): the future given to
/// `Runtime::block_on` itself runs on the *calling* thread, in the caller's namespace, so create
/// sockets inside spawned tasks and only await their handles in `block_on`.
pub fn in_netns(name: &str) -> Result<tokio::runtime::Runtime, NetError> {
    let fd = Arc::new(open_netns(name)?);
    // Prove setns works before any runtime thread depends on it.
    run_in_netns(name, || ())?;
    let thread_fd = Arc::clone(&fd);
    let namespace = name.to_owned();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKER_THREADS)
        .enable_all()
        .thread_name("podid-netns-rt")
        .on_thread_start(move || {
            if let Err(e) = enter(&thread_fd, &namespace) {
                // Running on in the host namespace could send test traffic to the real network.
                eprintln!(
                    "testbed: runtime thread could not enter namespace {namespace}: {e}; aborting"
                );
                std::process::abort();
            }
        })
        .build()
        .map_err(|source| NetError::Runtime {
            namespace: name.to_owned(),
            source,
        })
}

// === commands ===

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn check_output(command: String, output: std::io::Result<Output>) -> Result<String, NetError> {
    match output {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(NetError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
        Err(e) => Err(NetError::Command {
            command,
            status: format!("could not start: {e}"),
            stderr: String::new(),
        }),
    }
}

fn run_checked(cmd: &mut Command) -> Result<String, NetError> {
    let command = describe(cmd);
    check_output(command, cmd.output())
}

// === Netns ===

/// An RAII network namespace (`ip netns add`); dropping it deletes the namespace.
#[derive(Debug)]
#[must_use = "dropping a Netns deletes the namespace"]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `pdt<pid>-<counter>-<name>`. `name` must be 1..=32 bytes of `[a-z0-9-]`.
    pub fn create(name: &str) -> Result<Self, NetError> {
        Self::create_prefixed(NETNS_PREFIX, name)
    }

    /// Creates namespace `<prefix><pid>-<counter>-<name>` (so [`cleanup_stale`] with the same prefix finds it
    /// after a crash). `prefix` must be 1..=8 bytes of `[a-z]`; `name` as for [`Netns::create`].
    pub fn create_prefixed(prefix: &str, name: &str) -> Result<Self, NetError> {
        if prefix.is_empty() || prefix.len() > 8 || !prefix.bytes().all(|b| b.is_ascii_lowercase())
        {
            return Err(NetError::InvalidArgument(format!(
                "namespace prefix {prefix:?} must be 1..=8 bytes of [a-z]"
            )));
        }
        let valid = !name.is_empty()
            && name.len() <= NETNS_NAME_MAX_LEN_BYTES
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(NetError::InvalidArgument(format!(
                "namespace name {name:?} must be 1..={NETNS_NAME_MAX_LEN_BYTES} bytes of [a-z0-9-]"
            )));
        }
        let n = NETNS_COUNTER.fetch_add(1, Ordering::Relaxed);
        let full = format!("{prefix}{}-{n}-{name}", std::process::id());
        run_checked(Command::new(IP_BIN).args(["netns", "add", &full]))?;
        let ns = Self { name: full };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's full name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's bind mount, `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        netns_path(&self.name)
    }

    /// Runs `cmd` to completion inside the namespace (forked from a thread that entered it) and returns
    /// its output whatever the exit status. `/sys` is the caller's; use [`Netns::command`] when the
    /// program reads `/sys/class/net`.
    pub fn exec(&self, cmd: &mut Command) -> Result<Output, NetError> {
        let command = describe(cmd);
        run_in_netns(&self.name, || cmd.output())?.map_err(|e| NetError::Command {
            command,
            status: format!("could not start: {e}"),
            stderr: String::new(),
        })
    }

    /// A command `ip netns exec <name> <program>` (which also remounts `/sys` for the namespace).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(IP_BIN);
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `ip -n <name> <args..>` and returns its stdout; a non-zero exit is an error.
    pub fn ip(&self, args: &[&str]) -> Result<String, NetError> {
        run_checked(Command::new(IP_BIN).args(["-n", &self.name]).args(args))
    }

    /// Runs several `ip` commands (one per line, without the leading `ip`) in one `ip -batch` process.
    pub fn ip_batch(&self, lines: &[String]) -> Result<(), NetError> {
        let mut cmd = Command::new(IP_BIN);
        cmd.args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command = format!("{} <<< {:?}", describe(&cmd), lines.join("; "));
        let mut child = cmd.spawn().map_err(|e| NetError::Command {
            command: command.clone(),
            status: format!("could not start: {e}"),
            stderr: String::new(),
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            let script = lines.join("\n") + "\n";
            if let Err(e) = stdin.write_all(script.as_bytes()) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NetError::Command {
                    command,
                    status: format!("writing stdin: {e}"),
                    stderr: String::new(),
                });
            }
        }
        check_output(command, child.wait_with_output()).map(|_| ())
    }

    /// Runs `f` inside the namespace; see [`run_in_netns`].
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        run_in_netns(&self.name, f)
    }

    /// A tokio runtime living in the namespace; see [`in_netns`].
    pub fn runtime(&self) -> Result<tokio::runtime::Runtime, NetError> {
        in_netns(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run_checked(Command::new(IP_BIN).args(["netns", "del", &self.name])) {
            eprintln!("testbed: deleting namespace {}: {e}", self.name);
        }
    }
}

// === NodeNet ===

/// Builder for [`NodeNet`].
#[derive(Debug, Clone)]
#[must_use]
pub struct NodeNetBuilder {
    name: String,
    bridge_name: String,
    bridge_ip: Ipv4Addr,
    prefix_len: u8,
}

impl NodeNetBuilder {
    /// The caller-chosen part of the node namespace's name (default `node`).
    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The bridge's interface name (default `br0`, at most 15 bytes).
    pub fn bridge_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.bridge_name);
        self
    }

    /// The bridge's address and the pod subnet's prefix length (default `10.244.0.1/24`).
    pub fn bridge_address(mut self, ip: Ipv4Addr, prefix_len: u8) -> Self {
        self.bridge_ip = ip;
        self.prefix_len = prefix_len;
        self
    }

    /// Creates the node namespace with its bridge.
    pub fn create(self) -> Result<NodeNet, NetError> {
        check_ifname(&self.bridge_name)?;
        if !(8..=30).contains(&self.prefix_len) {
            return Err(NetError::InvalidArgument(format!(
                "prefix length {} must be 8..=30",
                self.prefix_len
            )));
        }
        let ns = Netns::create(&self.name)?;
        ns.ip_batch(&[
            format!("link add name {} type bridge", self.bridge_name),
            format!(
                "addr add {}/{} dev {}",
                self.bridge_ip, self.prefix_len, self.bridge_name
            ),
            format!("link set {} up", self.bridge_name),
        ])?;
        Ok(NodeNet {
            ns,
            bridge_name: self.bridge_name,
            bridge_ip: self.bridge_ip,
            prefix_len: self.prefix_len,
            next_port: AtomicU32::new(0),
        })
    }
}

fn check_ifname(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX_LEN_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidArgument(format!(
            "interface name {name:?} must be 1..={IFNAME_MAX_LEN_BYTES} bytes of [A-Za-z0-9_-]"
        )))
    }
}

/// A node namespace with a Linux bridge that pods attach to. Dropping it deletes the namespace.
#[derive(Debug)]
pub struct NodeNet {
    ns: Netns,
    bridge_name: String,
    bridge_ip: Ipv4Addr,
    prefix_len: u8,
    next_port: AtomicU32,
}

impl NodeNet {
    /// A builder with the defaults (`node`, `br0`, `10.244.0.1/24`).
    pub fn builder() -> NodeNetBuilder {
        NodeNetBuilder {
            name: "node".into(),
            bridge_name: DEFAULT_BRIDGE_NAME.into(),
            bridge_ip: DEFAULT_BRIDGE_IP,
            prefix_len: DEFAULT_PREFIX_LEN_BITS,
        }
    }

    /// A node with the defaults.
    pub fn create() -> Result<Self, NetError> {
        Self::builder().create()
    }

    /// The node namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The node namespace's full name.
    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// The bridge's interface name.
    pub fn bridge_name(&self) -> &str {
        &self.bridge_name
    }

    /// The bridge's address (the pods' default gateway and the address node servers listen on).
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.bridge_ip
    }

    /// The pod subnet's prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.bridge_ip) & mask
    }

    fn next_port_name(&self, stem: &str) -> Result<(u32, String), NetError> {
        let n = self.next_port.fetch_add(1, Ordering::Relaxed);
        let name = format!("{stem}{n}");
        check_ifname(&name)?;
        Ok((n, name))
    }

    /// Adds a bridged pod: a pod namespace whose `eth0` has `ip`/prefix and a default route via the
    /// bridge, connected by a veth pair whose host end (`veth<n>`) is a port of the bridge.
    pub fn add_pod(&self, ip: Ipv4Addr) -> Result<PodNet, NetError> {
        if !self.in_subnet(ip) || ip == self.bridge_ip {
            return Err(NetError::InvalidArgument(format!(
                "pod address {ip} must be in {}/{} and differ from the bridge address",
                self.bridge_ip, self.prefix_len
            )));
        }
        let (n, port) = self.next_port_name("veth")?;
        let pod = Netns::create(&format!("pod{n}"))?;
        self.ns.ip_batch(&[
            format!(
                "link add name {port} type veth peer name eth0 netns {}",
                pod.name()
            ),
            format!("link set {port} master {} up", self.bridge_name),
        ])?;
        pod.ip_batch(&[
            format!("addr add {ip}/{} dev eth0", self.prefix_len),
            "link set eth0 up".into(),
            format!("route add default via {}", self.bridge_ip),
        ])?;
        Ok(PodNet {
            ns: pod,
            ip,
            host_port: port,
        })
    }

    /// Adds a routed pod (no bridge): the host end `rveth<n>` carries a `/32` route to `ip`, the pod's
    /// `eth0` has `ip/32` and reaches the node's bridge address on-link. The peer check reports
    /// `NotApplicable` for such pods.
    pub fn add_routed_pod(&self, ip: Ipv4Addr) -> Result<PodNet, NetError> {
        if ip == self.bridge_ip || self.in_subnet(ip) {
            return Err(NetError::InvalidArgument(format!(
                "routed pod address {ip} must be outside the bridged subnet {}/{}",
                self.bridge_ip, self.prefix_len
            )));
        }
        let (n, port) = self.next_port_name("rveth")?;
        let pod = Netns::create(&format!("rpod{n}"))?;
        self.ns.ip_batch(&[
            format!(
                "link add name {port} type veth peer name eth0 netns {}",
                pod.name()
            ),
            format!("link set {port} up"),
            format!("route add {ip}/32 dev {port}"),
        ])?;
        pod.ip_batch(&[
            format!("addr add {ip}/32 dev eth0"),
            "link set eth0 up".into(),
            format!("route add {}/32 dev eth0", self.bridge_ip),
            format!("route add default via {} dev eth0", self.bridge_ip),
        ])?;
        Ok(PodNet {
            ns: pod,
            ip,
            host_port: port,
        })
    }

    /// The MAC address the node's neighbour table holds for `ip` on the bridge, if any.
    pub fn neighbour_mac(&self, ip: Ipv4Addr) -> Result<Option<[u8; MAC_LEN_BYTES]>, NetError> {
        let bridge = self.bridge_name.clone();
        self.ns
            .run(move || -> Result<Option<[u8; MAC_LEN_BYTES]>, NetError> {
                let mut sock = NlSocket::open()?;
                let link = match peer::link_get_by_name(&mut sock, &bridge)? {
                    Ok(link) => link,
                    Err(errno) => {
                        return Err(NetError::Kernel {
                            request: "RTM_GETLINK",
                            errno,
                        });
                    }
                };
                let index = u32::try_from(link.index).unwrap_or_default();
                match peer::neigh_get(&mut sock, index, ip)? {
                    Ok(neigh) => Ok(neigh.mac),
                    Err(Errno::NOENT) => Ok(None),
                    Err(errno) => Err(NetError::Kernel {
                        request: "RTM_GETNEIGH",
                        errno,
                    }),
                }
            })?
    }

    /// A [`PeerChecker`] whose netlink socket lives in the node namespace and which finds pod
    /// namespaces under `/run/netns` (where [`Netns`] creates them).
    pub fn peer_checker(&self) -> Result<PeerChecker, NetError> {
        let config = PeerCheckConfig {
            netns_dirs: vec![PathBuf::from(NETNS_DIR)],
            scan_proc: false,
        };
        self.ns.run(move || PeerChecker::with_config(config))?
    }
}

// === PodNet ===

/// A pod namespace attached to a [`NodeNet`]. Dropping it deletes the namespace (and its veth pair).
#[derive(Debug)]
pub struct PodNet {
    ns: Netns,
    ip: Ipv4Addr,
    host_port: String,
}

impl PodNet {
    /// The pod namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The pod namespace's full name.
    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// The pod's own address (on `eth0`).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The host end of the pod's veth in the node namespace (the bridge port for bridged pods).
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    /// The MAC address of the pod's `eth0`.
    pub fn mac(&self) -> Result<[u8; MAC_LEN_BYTES], NetError> {
        self.ns.run(|| -> Result<[u8; MAC_LEN_BYTES], NetError> {
            let mut sock = NlSocket::open()?;
            match peer::link_get_by_name(&mut sock, "eth0")? {
                Ok(link) => link
                    .mac
                    .ok_or_else(|| NetError::InvalidArgument("eth0 has no MAC address".into())),
                Err(errno) => Err(NetError::Kernel {
                    request: "RTM_GETLINK",
                    errno,
                }),
            }
        })?
    }

    /// Opens a TCP connection from this pod (source address chosen by its routing) to `dst`.
    pub fn tcp_connect(&self, dst: SocketAddr, timeout: Duration) -> Result<TcpStream, NetError> {
        self.ns
            .run(|| TcpStream::connect_timeout(&dst, timeout))?
            .map_err(|source| NetError::Io {
                what: format!("connecting from {} to {dst}", self.name()),
                source,
            })
    }

    /// Opens a TCP connection from this pod to `dst` with source address `src` (which must be an
    /// address of the pod's kernel, e.g. after [`PodNet::spoof_ip`]).
    pub fn tcp_connect_from(
        &self,
        src: Ipv4Addr,
        dst: SocketAddrV4,
        timeout: Duration,
    ) -> Result<TcpStream, NetError> {
        let what = format!("connecting from {src} in {} to {dst}", self.name());
        self.ns
            .run(|| -> std::io::Result<TcpStream> {
                let fd = rustix::net::socket_with(
                    AddressFamily::INET,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC,
                    None,
                )?;
                rustix::net::bind(&fd, &SocketAddrV4::new(src, 0))?;
                // Linux bounds a blocking connect by the send timeout.
                rustix::net::sockopt::set_socket_timeout(
                    &fd,
                    rustix::net::sockopt::Timeout::Send,
                    Some(timeout),
                )?;
                rustix::net::connect(&fd, &dst)?;
                rustix::net::sockopt::set_socket_timeout(
                    &fd,
                    rustix::net::sockopt::Timeout::Send,
                    None,
                )?;
                Ok(TcpStream::from(fd))
            })?
            .map_err(|source| NetError::Io { what, source })
    }

    /// TEST ONLY: makes this pod an ARP spoofer of `victim` (see the module doc): the victim's address
    /// on the pod's `lo` (not `eth0`), a flushed neighbour cache, and gratuitous ARP for the victim's
    /// address from `eth0` with this pod's MAC.
    pub fn spoof_ip(&self, victim: Ipv4Addr) -> Result<(), NetError> {
        self.ns.ip_batch(&[
            format!("addr add {victim}/32 dev lo"),
            "neigh flush dev eth0".into(),
        ])?;
        self.send_gratuitous_arp(victim)
    }

    /// TEST ONLY: sets the pod's `eth0` MAC address (to impersonate another pod's MAC as well).
    pub fn spoof_mac(&self, mac: [u8; MAC_LEN_BYTES]) -> Result<(), NetError> {
        self.ns
            .ip(&[
                "link",
                "set",
                "dev",
                "eth0",
                "address",
                &netlink::format_mac(&mac),
            ])
            .map(|_| ())
    }

    /// TEST ONLY: broadcasts [`GARP_FRAMES`] gratuitous ARP requests announcing `ip` at this pod's
    /// `eth0` MAC (raw AF_PACKET socket, via `python3`).
    pub fn send_gratuitous_arp(&self, ip: Ipv4Addr) -> Result<(), NetError> {
        let mut cmd = Command::new(PYTHON_BIN);
        cmd.args([
            "-c",
            GARP_SCRIPT,
            &ip.to_string(),
            "eth0",
            &GARP_FRAMES.to_string(),
        ]);
        let command = format!("{PYTHON_BIN} <garp script> {ip} eth0 in {}", self.name());
        check_output(command, Ok(self.ns.exec(&mut cmd)?)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_our_pattern() {
        let cases = [
            ("pdt123-0-node", Some(123)),
            ("pdt9-17-pod3", Some(9)),
            ("pdt-1-node", None),
            ("pdtx1-node", None),
            ("other123-node", None),
            ("pdt123", None),
            ("pdt99999999999999999999-x", None),
        ];
        for (name, want) in cases {
            assert_eq!(owner_pid(name, NETNS_PREFIX), want, "{name}");
        }
    }

    #[test]
    fn names_are_validated_before_anything_is_created() {
        for bad in [
            "",
            "UPPER",
            "has space",
            "a/b",
            &"x".repeat(NETNS_NAME_MAX_LEN_BYTES + 1),
        ] {
            assert!(
                matches!(Netns::create(bad), Err(NetError::InvalidArgument(_))),
                "{bad:?}"
            );
        }
        for bad in ["", "sixteen-chars-xx", "br 0", "a/b"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_ifname("veth4294967295").is_ok(),
            "the longest port name fits IFNAMSIZ"
        );
        assert!(check_ifname("rveth4294967295").is_ok());
    }

    #[test]
    fn netns_paths() {
        assert_eq!(
            netns_path("pdt1-0-node"),
            PathBuf::from("/run/netns/pdt1-0-node")
        );
        assert_eq!(
            netns_path("/proc/1/ns/net"),
            PathBuf::from("/proc/1/ns/net")
        );
    }
}
