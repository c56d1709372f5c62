//! Real iptables (legacy and nft) and real sysctls, only ever inside a network namespace each test
//! creates (`pdtf<pid>-<n>`) and deletes again, even on panic.
//!
//! Every test body runs on a fresh std thread that first `setns`es into its namespace; child
//! processes inherit that thread's namespace and `/proc/sys/net` resolves through it. Before any
//! iptables or sysctl call the harness re-checks that the calling thread's namespace is the test
//! namespace and not the host's. Skips with `SKIPPED: <reason>` when not root or iptables is
//! missing, unless `PODID_REQUIRE_NETNS=1`, which turns the skip into a failure.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use podid_netfilter::{
    Backend, BackendKind, ChainAction, ChainConfig, JumpAction, Netfilter, OtherBackend, Sysctl,
    SysctlError, Tools,
};

const NETNS_DIR: &str = "/run/netns";
const NETNS_PREFIX: &str = "pdtf";
const REQUIRE_ENV: &str = "PODID_REQUIRE_NETNS";
const BIN_DIRS: [&str; 5] = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];
const REQUIRED_BINS: [&str; 7] = [
    "ip",
    "iptables-legacy",
    "iptables-legacy-save",
    "iptables-legacy-restore",
    "iptables-nft",
    "iptables-nft-save",
    "iptables-nft-restore",
];

const UPSTREAM: &str = "-N aad-metadata
-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579
-A aad-metadata -j RETURN
";

static NEXT_NETNS: AtomicU32 = AtomicU32::new(0);
static STALE_CLEANUP: Once = Once::new();

// === harness ===

fn find_bin(name: &str) -> Option<PathBuf> {
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(BIN_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn bin(name: &str) -> PathBuf {
    find_bin(name).unwrap_or_else(|| panic!("{name} not installed"))
}

fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root (network namespaces and iptables need root)".to_owned());
    }
    REQUIRED_BINS
        .iter()
        .find(|b| find_bin(b).is_none())
        .map(|b| format!("`{b}` not installed (apt-get install -y iptables iproute2)"))
}

/// Returns false (after printing why) when the environment cannot run these tests.
fn netns_available() -> bool {
    let Some(reason) = skip_reason() else {
        return true;
    };
    assert!(
        std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
        "{REQUIRE_ENV}=1 but {reason}"
    );
    println!("SKIPPED: {reason}");
    false
}

/// Deletes `pdtf<pid>-<n>` namespaces whose process is gone (left by a killed test run).
fn cleanup_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new(bin("ip"))
                .args(["netns", "del", &name])
                .status();
        }
    }
}

/// A namespace that is deleted when dropped (also while unwinding).
struct NetnsGuard {
    name: String,
}

impl NetnsGuard {
    fn create() -> Self {
        STALE_CLEANUP.call_once(cleanup_stale);
        let name = format!(
            "{NETNS_PREFIX}{}-{}",
            std::process::id(),
            NEXT_NETNS.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(bin("ip"))
            .args(["netns", "add", &name])
            .output()
            .expect("run ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { name }
    }

    fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new(bin("ip"))
            .args(["netns", "del", &self.name])
            .status();
    }
}

type NsId = (u64, u64);

fn ns_id(path: &Path) -> NsId {
    let st = rustix::fs::stat(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (st.st_dev, st.st_ino)
}

fn current_ns() -> NsId {
    ns_id(Path::new("/proc/thread-self/ns/net"))
}

/// The test's view from inside its namespace.
struct Ns {
    name: String,
    id: NsId,
    host: NsId,
}

impl Ns {
    /// Panics unless the calling thread is in the test namespace (and that is not the host's).
    fn assert_inside(&self) {
        let now = current_ns();
        assert_eq!(now, self.id, "thread is not in the test network namespace");
        assert_ne!(now, self.host, "test namespace is the host namespace");
    }

    /// Runs a raw command (test setup/inspection) inside the namespace; panics on failure.
    fn sh(&self, program: &str, args: &[&str]) -> String {
        self.assert_inside();
        let out = Command::new(bin(program))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ipt(&self, kind: BackendKind, args: &[&str]) -> String {
        let mut full = vec!["-w", "5", "-t", "nat"];
        full.extend_from_slice(args);
        self.sh(&format!("iptables-{kind}"), &full)
    }

    fn tools(&self, kind: BackendKind) -> Tools {
        Tools {
            kind,
            iptables: bin(&format!("iptables-{kind}")),
            save: bin(&format!("iptables-{kind}-save")),
            restore: bin(&format!("iptables-{kind}-restore")),
        }
    }

    /// `kind` active, the other backend cleaned.
    fn netfilter(&self, kind: BackendKind) -> Netfilter {
        self.assert_inside();
        Netfilter::with_commands(self.tools(kind), Some(self.tools(kind.other())))
    }

    fn prerouting_rules(&self, kind: BackendKind) -> Vec<String> {
        self.ipt(kind, &["-S", "PREROUTING"])
            .lines()
            .filter(|l| l.starts_with("-A "))
            .map(str::to_owned)
            .collect()
    }

    /// An "old NMI" chain and jump, DNATing to a different port.
    fn install_old_nmi(&self, kind: BackendKind) {
        self.ipt(kind, &["-N", "aad-metadata"]);
        self.ipt(
            kind,
            &[
                "-A",
                "aad-metadata",
                "-p",
                "tcp",
                "!",
                "-s",
                "127.0.0.1/32",
                "-d",
                "169.254.169.254",
                "--dport",
                "80",
                "-j",
                "DNAT",
                "--to-destination",
                "127.0.0.1:9999",
            ],
        );
        self.ipt(kind, &["-A", "aad-metadata", "-j", "RETURN"]);
        self.ipt(kind, &["-I", "PREROUTING", "1", "-j", "aad-metadata"]);
    }
}

/// Runs `body` on a thread inside a fresh namespace; the namespace is deleted afterwards.
fn in_netns<T: Send + 'static>(body: impl FnOnce(&Ns) -> T + Send + 'static) -> T {
    let guard = NetnsGuard::create();
    let path = guard.path();
    let name = guard.name.clone();
    let host = current_ns();
    let joined = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the test namespace");
        let ns = Ns {
            name,
            id: ns_id(&path),
            host,
        };
        ns.assert_inside();
        body(&ns)
    })
    .join();
    drop(guard);
    joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

const BOTH: [BackendKind; 2] = [BackendKind::Nft, BackendKind::Legacy];

// === tests ===

#[test]
fn ensure_on_empty_writes_upstreams_exact_rules() {
    if !netns_available() {
        return;
    }
    for kind in BOTH {
        in_netns(move |ns| {
            let nf = ns.netfilter(kind);
            let report = nf.ensure(&ChainConfig::default()).expect("ensure");
            assert_eq!(report.backend, kind);
            assert_eq!(report.chain, ChainAction::Created);
            assert_eq!(report.jump, JumpAction::Inserted);
            assert!(report.verified);
            assert!(
                matches!(report.other_backend, OtherBackend::Clean),
                "{:?}",
                report.other_backend
            );

            assert_eq!(ns.ipt(kind, &["-S", "aad-metadata"]), UPSTREAM, "{kind}");
            assert_eq!(
                ns.prerouting_rules(kind),
                vec!["-A PREROUTING -j aad-metadata"]
            );
            assert_eq!(
                nf.rules().expect("rules"),
                UPSTREAM
                    .lines()
                    .chain(["-A PREROUTING -j aad-metadata"])
                    .collect::<Vec<_>>()
            );
            // Probing the other backend loaded none of its tables.
            let other_save = ns.sh(&format!("iptables-{}-save", kind.other()), &[]);
            assert!(!other_save.contains("*nat"), "{other_save}");
        });
    }
}

#[test]
fn second_ensure_does_not_flush() {
    if !netns_available() {
        return;
    }
    for kind in BOTH {
        in_netns(move |ns| {
            let nf = ns.netfilter(kind);
            nf.ensure(&ChainConfig::default()).expect("first");
            let handles = |ns: &Ns| {
                (kind == BackendKind::Nft)
                    .then(|| ns.sh("nft", &["-a", "list", "chain", "ip", "nat", "aad-metadata"]))
            };
            let before = handles(ns);
            let report = nf.ensure(&ChainConfig::default()).expect("second");
            assert_eq!(report.chain, ChainAction::Unchanged);
            assert_eq!(report.jump, JumpAction::Unchanged);
            assert!(!report.changed());
            // nf_tables gives rewritten rules new handles; identical handles prove no rewrite.
            assert_eq!(handles(ns), before);
            assert_eq!(ns.ipt(kind, &["-S", "aad-metadata"]), UPSTREAM);
        });
    }
}

#[test]
fn tampered_chain_is_repaired() {
    if !netns_available() {
        return;
    }
    for kind in BOTH {
        in_netns(move |ns| {
            let nf = ns.netfilter(kind);
            let cfg = ChainConfig::default();
            nf.ensure(&cfg).expect("ensure");

            ns.ipt(kind, &["-A", "aad-metadata", "-j", "ACCEPT"]);
            match nf.ensure(&cfg).expect("repair extra").chain {
                ChainAction::Rewritten { reason } => {
                    assert!(reason.contains("3 rules"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(ns.ipt(kind, &["-S", "aad-metadata"]), UPSTREAM);

            ns.ipt(
                kind,
                &[
                    "-R",
                    "aad-metadata",
                    "1",
                    "!",
                    "-s",
                    "127.0.0.1/32",
                    "-d",
                    "169.254.169.254/32",
                    "-p",
                    "tcp",
                    "--dport",
                    "8080",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    "127.0.0.1:2579",
                ],
            );
            match nf.ensure(&cfg).expect("repair port").chain {
                ChainAction::Rewritten { reason } => assert!(reason.contains("8080"), "{reason}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(ns.ipt(kind, &["-S", "aad-metadata"]), UPSTREAM);

            // A different config rewrites to the new target.
            let moved = ChainConfig {
                target_port: 2580,
                ..cfg
            };
            assert!(matches!(
                nf.ensure(&moved).expect("new port").chain,
                ChainAction::Rewritten { .. }
            ));
            assert_eq!(
                ns.ipt(kind, &["-S", "aad-metadata"]),
                UPSTREAM.replace("127.0.0.1:2579", "127.0.0.1:2580")
            );
        });
    }
}

#[test]
fn jump_is_moved_to_position_one_and_deduplicated() {
    if !netns_available() {
        return;
    }
    for kind in BOTH {
        in_netns(move |ns| {
            let nf = ns.netfilter(kind);
            let cfg = ChainConfig::default();
            nf.ensure(&cfg).expect("ensure");
            let other = "-A PREROUTING -p udp -m udp --dport 53 -j RETURN";

            ns.ipt(
                kind,
                &[
                    "-I",
                    "PREROUTING",
                    "1",
                    "-p",
                    "udp",
                    "--dport",
                    "53",
                    "-j",
                    "RETURN",
                ],
            );
            let report = nf.ensure(&cfg).expect("move");
            assert_eq!(report.jump, JumpAction::Moved { from: vec![2] });
            assert_eq!(report.chain, ChainAction::Unchanged);
            assert_eq!(
                ns.prerouting_rules(kind),
                vec!["-A PREROUTING -j aad-metadata", other]
            );

            ns.ipt(kind, &["-A", "PREROUTING", "-j", "aad-metadata"]);
            assert_eq!(
                nf.ensure(&cfg).expect("dedup").jump,
                JumpAction::Moved { from: vec![1, 3] }
            );
            assert_eq!(
                ns.prerouting_rules(kind),
                vec!["-A PREROUTING -j aad-metadata", other]
            );
        });
    }
}

#[test]
fn old_nmi_on_the_other_backend_is_removed() {
    if !netns_available() {
        return;
    }
    for kind in BOTH {
        in_netns(move |ns| {
            let old = kind.other();
            ns.install_old_nmi(old);
            assert!(ns.ipt(old, &["-S"]).contains("aad-metadata"));

            let report = ns
                .netfilter(kind)
                .ensure(&ChainConfig::default())
                .expect("ensure");
            match &report.other_backend {
                OtherBackend::Removed(summary) => {
                    assert_eq!(summary.backend, old);
                    assert_eq!(summary.references_removed, 1);
                    assert!(summary.chain_removed);
                }
                other => panic!("{other:?}"),
            }
            assert!(
                !ns.ipt(old, &["-S"]).contains("aad-metadata"),
                "stale rules left on {old}"
            );
            assert_eq!(ns.ipt(kind, &["-S", "aad-metadata"]), UPSTREAM);
        });
    }
}

#[test]
fn remove_clears_both_backends_and_is_idempotent() {
    if !netns_available() {
        return;
    }
    in_netns(|ns| {
        let nf = ns.netfilter(BackendKind::Nft);
        nf.ensure(&ChainConfig::default()).expect("ensure");
        ns.install_old_nmi(BackendKind::Legacy);
        // A second, matched jump elsewhere must go too, or the chain cannot be deleted.
        ns.ipt(
            BackendKind::Nft,
            &["-A", "OUTPUT", "-o", "lo", "-j", "aad-metadata"],
        );

        let report = nf.remove().expect("remove");
        assert_eq!(report.backends.len(), 2);
        assert_eq!(report.backends[0].backend, BackendKind::Nft);
        assert_eq!(report.backends[0].references_removed, 2);
        assert!(report.backends.iter().all(|s| s.chain_removed));
        for kind in BOTH {
            assert!(!ns.ipt(kind, &["-S"]).contains("aad-metadata"), "{kind}");
        }
        assert!(nf.rules().expect("rules").is_empty());

        let again = nf.remove().expect("remove again");
        assert!(again.backends.iter().all(|s| s.is_empty()), "{again:?}");
    });
}

#[test]
fn auto_detection_follows_the_busier_backend() {
    if !netns_available() {
        return;
    }
    in_netns(|ns| {
        let detect = |b| {
            ns.assert_inside();
            Netfilter::detect(b).expect("detect")
        };
        let auto = detect(Backend::Auto);
        assert_eq!(auto.backend(), BackendKind::Nft, "empty: nft on a tie");
        assert_eq!(
            auto.other_tools().map(|t| t.kind),
            Some(BackendKind::Legacy)
        );

        // Our own leftovers do not vote.
        ns.install_old_nmi(BackendKind::Legacy);
        assert_eq!(detect(Backend::Auto).backend(), BackendKind::Nft);

        for port in ["1", "2", "3"] {
            ns.ipt(
                BackendKind::Legacy,
                &[
                    "-A",
                    "POSTROUTING",
                    "-p",
                    "udp",
                    "--dport",
                    port,
                    "-j",
                    "RETURN",
                ],
            );
        }
        assert_eq!(detect(Backend::Auto).backend(), BackendKind::Legacy);

        for port in ["1", "2", "3", "4"] {
            ns.ipt(
                BackendKind::Nft,
                &[
                    "-A",
                    "POSTROUTING",
                    "-p",
                    "udp",
                    "--dport",
                    port,
                    "-j",
                    "RETURN",
                ],
            );
        }
        assert_eq!(detect(Backend::Auto).backend(), BackendKind::Nft);

        assert_eq!(detect(Backend::Legacy).backend(), BackendKind::Legacy);
        assert_eq!(detect(Backend::Nft).backend(), BackendKind::Nft);
    });
}

#[test]
fn route_localnet_is_set_and_read_inside_the_namespace() {
    if !netns_available() {
        return;
    }
    let host = Sysctl::new();
    let host_all_before = host.read_route_localnet("all").expect("host read");
    let host_lo_before = host.read_route_localnet("lo").expect("host read");
    in_netns(|ns| {
        ns.assert_inside();
        // Prove /proc/sys/net is this namespace's view (a fresh namespace has only lo) before writing.
        let mut ifaces: Vec<String> = std::fs::read_dir("/proc/sys/net/ipv4/conf")
            .expect("read conf dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ifaces.sort();
        assert_eq!(
            ifaces,
            ["all", "default", "lo"],
            "not the test namespace's sysctls"
        );

        let s = Sysctl::new();
        s.set_route_localnet("all", false).expect("reset all");
        s.set_route_localnet("lo", false).expect("reset lo");
        assert!(!s.route_localnet_effective("lo").expect("effective"));
        s.set_route_localnet("lo", true).expect("set lo");
        assert!(s.read_route_localnet("lo").expect("read lo"));
        assert!(!s.read_route_localnet("all").expect("read all"));
        assert!(s.route_localnet_effective("lo").expect("effective"));
        s.set_route_localnet("all", true).expect("set all");
        assert!(s.read_route_localnet("all").expect("read all"));
        assert!(matches!(
            s.read_route_localnet("eth9"),
            Err(SysctlError::NoSuchInterface { .. })
        ));
    });
    assert_eq!(
        host.read_route_localnet("all").expect("host read"),
        host_all_before
    );
    assert_eq!(
        host.read_route_localnet("lo").expect("host read"),
        host_lo_before
    );
}

#[test]
fn panicking_test_body_still_deletes_its_namespace() {
    if !netns_available() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(|| {
        in_netns(move |ns| {
            ns.assert_inside();
            let _ = tx.send(ns.name.clone());
            panic!("deliberate panic inside the test namespace");
        })
    });
    assert!(result.is_err());
    let name = rx.recv().expect("name sent before the panic");
    assert!(name.starts_with(NETNS_PREFIX));
    assert!(
        !Path::new(NETNS_DIR).join(&name).exists(),
        "namespace {name} survived the panic"
    );
}
