//! `Netfilter` against fake iptables scripts: failures become typed errors, the happy path runs
//! exactly the expected commands. No real iptables runs here, so these need neither root nor a
//! network namespace.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use podid_netfilter::{
    BackendKind, ChainAction, ChainConfig, FailureKind, JumpAction, Netfilter, NetfilterError,
    OtherBackend, Tools,
};

const UPSTREAM_NAT: &str = "-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N aad-metadata
-A PREROUTING -j aad-metadata
-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579
-A aad-metadata -j RETURN
";

const LOCK_STDERR: &str = "Can't lock /run/xtables.lock: Resource temporarily unavailable\nAnother app is currently holding the xtables lock. Stopped waiting after 5s.";

/// Serialises the tests of this file: writing a script while another thread forks can make the
/// exec of that script fail with ETXTBSY (the forked child briefly holds the write descriptor).
static SERIAL: Mutex<()> = Mutex::new(());

struct Fake {
    dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Fake {
    fn new() -> Self {
        Self {
            _serial: SERIAL.lock().unwrap_or_else(PoisonError::into_inner),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes an executable `sh` script `name` whose body is `body`; every call logs its args.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let log = self.log_path(name);
        let text = format!("#!/bin/sh\necho \"$*\" >> '{}'\n{body}\n", log.display());
        std::fs::write(&path, text).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn calls(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.log_path(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn tools(
        &self,
        prefix: &str,
        kind: BackendKind,
        iptables: &str,
        save: &str,
        restore: &str,
    ) -> Tools {
        Tools {
            kind,
            iptables: self.script(&format!("{prefix}iptables"), iptables),
            save: self.script(&format!("{prefix}save"), save),
            restore: self.script(&format!("{prefix}restore"), restore),
        }
    }
}

fn print(text: &str) -> String {
    format!("cat <<'EOF'\n{text}EOF")
}

fn fail(stderr: &str, code: i32) -> String {
    format!("cat >&2 <<'EOF'\n{stderr}\nEOF\nexit {code}")
}

fn cat_stdin_to(path: &Path) -> String {
    format!("cat > '{}'", path.display())
}

#[test]
fn lock_contention_is_a_typed_transient_error() {
    let fake = Fake::new();
    let tools = fake.tools(
        "",
        BackendKind::Legacy,
        &fail(LOCK_STDERR, 4),
        &fail(LOCK_STDERR, 4),
        "exit 0",
    );
    let nf = Netfilter::with_commands(tools, None);

    let err = nf.ensure(&ChainConfig::default()).expect_err("lock held");
    match &err {
        NetfilterError::Command {
            command,
            exit_code,
            stderr,
            kind,
        } => {
            assert!(command.ends_with("iptables -w 5 -t nat -S"), "{command}");
            assert_eq!(*exit_code, Some(4));
            assert!(stderr.contains("Resource temporarily unavailable"));
            assert_eq!(*kind, FailureKind::LockContention);
        }
        other => panic!("want Command error, got {other:?}"),
    }
    assert!(err.is_transient());
    let shown = err.to_string();
    assert!(
        shown.contains("exit code 4")
            && shown.contains("xtables lock")
            && shown.contains("transient"),
        "{shown}"
    );

    assert!(matches!(
        nf.rules(),
        Err(NetfilterError::Command {
            kind: FailureKind::LockContention,
            ..
        })
    ));
    assert!(matches!(
        nf.remove(),
        Err(NetfilterError::Command {
            kind: FailureKind::LockContention,
            ..
        })
    ));
}

#[test]
fn failing_restore_is_reported_with_its_command() {
    let fake = Fake::new();
    let restore = fail(
        "iptables-restore: line 3 failed: Permission denied (you must be root)",
        1,
    );
    let tools = fake.tools(
        "",
        BackendKind::Nft,
        &print("-P PREROUTING ACCEPT\n"),
        "exit 0",
        &restore,
    );
    let err = Netfilter::with_commands(tools, None)
        .ensure(&ChainConfig::default())
        .expect_err("restore fails");
    match err {
        NetfilterError::Command {
            command,
            exit_code: Some(1),
            kind: FailureKind::PermissionDenied,
            ..
        } => {
            assert!(command.ends_with("restore -w 5 --noflush"), "{command}");
        }
        other => panic!("got {other:?}"),
    }
}

#[test]
fn exact_state_writes_nothing() {
    let fake = Fake::new();
    let tools = fake.tools(
        "",
        BackendKind::Nft,
        &print(UPSTREAM_NAT),
        "exit 0",
        "exit 1",
    );
    let nf = Netfilter::with_commands(tools, None);
    let report = nf.ensure(&ChainConfig::default()).expect("ensure");
    assert_eq!(report.chain, ChainAction::Unchanged);
    assert_eq!(report.jump, JumpAction::Unchanged);
    assert!(report.verified && !report.changed());
    assert!(matches!(report.other_backend, OtherBackend::NotInstalled));
    assert!(fake.calls("restore").is_empty(), "restore must not run");
    assert_eq!(fake.calls("iptables"), vec!["-w 5 -t nat -S"]);
    assert_eq!(
        nf.rules().expect("rules"),
        vec![
            "-N aad-metadata",
            "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
            "-A aad-metadata -j RETURN",
            "-A PREROUTING -j aad-metadata",
        ]
    );
}

#[test]
fn missing_chain_is_written_in_one_restore_transaction() {
    let fake = Fake::new();
    let script = fake.dir.path().join("restore.in");
    // The listing is empty on the first call and exact afterwards.
    let state = fake.dir.path().join("written");
    let iptables = format!(
        "if [ -e '{}' ]; then\n{}\nelse\necho '-P PREROUTING ACCEPT'\nfi",
        state.display(),
        print(UPSTREAM_NAT)
    );
    let restore = format!("{}\ntouch '{}'", cat_stdin_to(&script), state.display());
    let tools = fake.tools("", BackendKind::Legacy, &iptables, "exit 0", &restore);
    let report = Netfilter::with_commands(tools, None)
        .ensure(&ChainConfig::default())
        .expect("ensure");
    assert_eq!(report.chain, ChainAction::Created);
    assert_eq!(report.jump, JumpAction::Inserted);
    assert!(report.verified);
    assert_eq!(fake.calls("restore"), vec!["-w 5 --noflush"]);
    assert_eq!(
        std::fs::read_to_string(&script).expect("stdin captured"),
        "*nat\n:aad-metadata - [0:0]\n-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579\n-A aad-metadata -j RETURN\n-I PREROUTING 1 -j aad-metadata\nCOMMIT\n"
    );
}

#[test]
fn other_backend_failure_does_not_fail_ensure() {
    let fake = Fake::new();
    let active = fake.tools(
        "a-",
        BackendKind::Nft,
        &print(UPSTREAM_NAT),
        "exit 0",
        "exit 1",
    );
    let other = fake.tools(
        "o-",
        BackendKind::Legacy,
        "exit 0",
        &fail(
            "iptables-save v1.8.9 (legacy): Cannot initialize: Permission denied",
            1,
        ),
        "exit 1",
    );
    let report = Netfilter::with_commands(active, Some(other))
        .ensure(&ChainConfig::default())
        .expect("ensure");
    match report.other_backend {
        OtherBackend::Failed(NetfilterError::Command { kind, .. }) => {
            assert_eq!(kind, FailureKind::PermissionDenied);
        }
        other => panic!("got {other:?}"),
    }
}

#[test]
fn stale_other_backend_is_removed() {
    let fake = Fake::new();
    let script = fake.dir.path().join("other.in");
    let active = fake.tools(
        "a-",
        BackendKind::Nft,
        &print(UPSTREAM_NAT),
        "exit 0",
        "exit 1",
    );
    let save = print(
        "# Generated by iptables-save v1.8.9\n*nat\n:PREROUTING ACCEPT [0:0]\n:aad-metadata - [0:0]\n-A PREROUTING -j aad-metadata\n-A aad-metadata -j RETURN\nCOMMIT\n",
    );
    let other = fake.tools(
        "o-",
        BackendKind::Legacy,
        "exit 1",
        &save,
        &cat_stdin_to(&script),
    );
    let report = Netfilter::with_commands(active, Some(other))
        .ensure(&ChainConfig::default())
        .expect("ensure");
    match report.other_backend {
        OtherBackend::Removed(summary) => {
            assert_eq!(summary.backend, BackendKind::Legacy);
            assert_eq!(summary.references_removed, 1);
            assert!(summary.chain_removed);
        }
        other => panic!("got {other:?}"),
    }
    assert_eq!(fake.calls("o-save"), vec![""], "save runs without -t");
    assert_eq!(
        std::fs::read_to_string(&script).expect("stdin"),
        "*nat\n-D PREROUTING -j aad-metadata\n-F aad-metadata\n-X aad-metadata\nCOMMIT\n"
    );
}

#[test]
fn garbage_output_is_a_parse_error() {
    let fake = Fake::new();
    let tools = fake.tools(
        "",
        BackendKind::Nft,
        "echo 'Segmentation fault? hello'",
        "exit 0",
        "exit 0",
    );
    let err = Netfilter::with_commands(tools, None)
        .ensure(&ChainConfig::default())
        .expect_err("garbage");
    assert!(matches!(err, NetfilterError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn missing_binary_is_a_spawn_error() {
    let _fake = Fake::new();
    let tools = Tools {
        kind: BackendKind::Nft,
        iptables: PathBuf::from("/nonexistent/podid/iptables"),
        save: PathBuf::from("/nonexistent/podid/iptables-save"),
        restore: PathBuf::from("/nonexistent/podid/iptables-restore"),
    };
    let err = Netfilter::with_commands(tools, None)
        .ensure(&ChainConfig::default())
        .expect_err("missing");
    assert!(matches!(err, NetfilterError::Spawn { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[test]
fn hung_command_times_out() {
    let fake = Fake::new();
    let tools = fake.tools("", BackendKind::Nft, "exec sleep 30", "exit 0", "exit 0");
    let started = Instant::now();
    let err = Netfilter::with_commands(tools, None)
        .with_timeout(Duration::from_millis(300))
        .ensure(&ChainConfig::default())
        .expect_err("hangs");
    assert!(
        matches!(
            err,
            NetfilterError::Timeout {
                timeout_ms: 300,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn invalid_config_is_rejected_before_running_anything() {
    let fake = Fake::new();
    let tools = fake.tools("", BackendKind::Nft, "exit 0", "exit 0", "exit 0");
    let cfg = ChainConfig {
        target_port: 0,
        ..ChainConfig::default()
    };
    let err = Netfilter::with_commands(tools, None)
        .ensure(&cfg)
        .expect_err("bad config");
    assert!(matches!(err, NetfilterError::Config(_)), "{err:?}");
    assert!(fake.calls("iptables").is_empty());
}

#[test]
fn stderr_classification() {
    let cases = [
        (LOCK_STDERR, FailureKind::LockContention),
        (
            "iptables: Resource temporarily unavailable.",
            FailureKind::LockContention,
        ),
        (
            "iptables v1.8.9 (legacy): can't initialize iptables table `nat': Permission denied (you must be root)",
            FailureKind::PermissionDenied,
        ),
        (
            "iptables v1.8.9 (legacy): can't initialize iptables table `nat': Table does not exist (do you need to insmod?)",
            FailureKind::KernelSupport,
        ),
        (
            "iptables v1.8.9 (nf_tables): Couldn't load target `DNAT':No such file or directory",
            FailureKind::KernelSupport,
        ),
        ("iptables-restore: line 2 failed", FailureKind::Other),
    ];
    for (stderr, want) in cases {
        assert_eq!(FailureKind::classify(stderr), want, "{stderr}");
    }
}
