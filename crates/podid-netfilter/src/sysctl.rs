//! `net.ipv4.conf.<if>.route_localnet`: DNAT to 127.0.0.1 from PREROUTING only delivers when it
//! is 1 on the ingress interface (the kernel ORs `all` with the interface's own value), otherwise
//! the packet is dropped as martian. kube-proxy sets it; upstream NMI never did.
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the file, so these helpers,
//! like the iptables ones, act on the calling thread's namespace.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where sysctls live.
pub const PROC_SYS_ROOT: &str = "/proc/sys";
/// The pseudo-interface whose value applies to every interface.
pub const ALL_INTERFACES: &str = "all";
/// Longest interface name (IFNAMSIZ 16 minus the NUL), in bytes.
const MAX_INTERFACE_NAME_BYTES: usize = 15;

/// A sysctl that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Not a name an interface can have.
    #[error("`{name}` is not a valid interface name: {reason}")]
    InvalidInterface {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The interface has no sysctl directory in this network namespace.
    #[error("no interface `{interface}` in this network namespace ({path} does not exist)")]
    NoSuchInterface {
        /// The interface.
        interface: String,
        /// The path tried.
        path: String,
    },
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The sysctl file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing failed (needs root / CAP_NET_ADMIN and a writable /proc/sys).
    #[error(
        "cannot write {path}: {source} (run as root with CAP_NET_ADMIN and /proc/sys mounted read-write, or set it on the node)"
    )]
    Write {
        /// The sysctl file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file held something other than 0 or 1.
    #[error("{path} holds `{content}`, want 0 or 1")]
    Unexpected {
        /// The sysctl file.
        path: String,
        /// What it held.
        content: String,
    },
}

/// Access to the `route_localnet` sysctls under a `/proc/sys`-shaped root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctl {
    root: PathBuf,
}

impl Default for Sysctl {
    fn default() -> Self {
        Self::new()
    }
}

impl Sysctl {
    /// The real `/proc/sys`.
    #[must_use]
    pub fn new() -> Self {
        Self::with_root(PROC_SYS_ROOT)
    }

    /// A different root (a test directory, or `/host/proc/sys`).
    #[must_use]
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `<root>/net/ipv4/conf/<interface>/route_localnet`.
    pub fn route_localnet_path(&self, interface: &str) -> Result<PathBuf, SysctlError> {
        validate_interface(interface)?;
        Ok(self
            .root
            .join("net/ipv4/conf")
            .join(interface)
            .join("route_localnet"))
    }

    /// The interface's own value (`all` for the global one).
    pub fn read_route_localnet(&self, interface: &str) -> Result<bool, SysctlError> {
        let path = self.route_localnet_path(interface)?;
        let shown = path.display().to_string();
        let content = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                SysctlError::NoSuchInterface {
                    interface: interface.to_owned(),
                    path: shown.clone(),
                }
            } else {
                SysctlError::Read {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
        match content.trim() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(SysctlError::Unexpected {
                path: shown,
                content: other.to_owned(),
            }),
        }
    }

    /// Writes the interface's own value.
    pub fn set_route_localnet(&self, interface: &str, enabled: bool) -> Result<(), SysctlError> {
        let path = self.route_localnet_path(interface)?;
        write_existing(&path, if enabled { b"1\n" } else { b"0\n" }, interface)
    }

    /// What the kernel applies to packets arriving on `interface`: `all` OR the interface's value.
    pub fn route_localnet_effective(&self, interface: &str) -> Result<bool, SysctlError> {
        if self.read_route_localnet(ALL_INTERFACES)? {
            return Ok(true);
        }
        if interface == ALL_INTERFACES {
            return Ok(false);
        }
        self.read_route_localnet(interface)
    }
}

fn validate_interface(name: &str) -> Result<(), SysctlError> {
    let bad = |reason| SysctlError::InvalidInterface {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_INTERFACE_NAME_BYTES {
        return Err(bad("longer than 15 bytes"));
    }
    if name == "." || name == ".." {
        return Err(bad("`.` and `..` are not interfaces"));
    }
    if name.contains('/') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains `/`, whitespace or a control character"));
    }
    Ok(())
}

/// Opens without create (a sysctl that does not exist must not be invented) and writes.
fn write_existing(path: &Path, value: &[u8], interface: &str) -> Result<(), SysctlError> {
    let shown = path.display().to_string();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                SysctlError::NoSuchInterface {
                    interface: interface.to_owned(),
                    path: shown.clone(),
                }
            } else {
                SysctlError::Write {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
    file.write_all(value).map_err(|source| SysctlError::Write {
        path: shown,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root(interfaces: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (iface, value) in interfaces {
            let d = dir.path().join("net/ipv4/conf").join(iface);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("route_localnet"), value).expect("write");
        }
        dir
    }

    #[test]
    fn interface_names_are_validated() {
        let s = Sysctl::new();
        for (name, ok) in [
            ("all", true),
            ("eth0", true),
            ("veth-a.100", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a b", false),
            ("sixteen-bytes-xx", false),
            ("fifteen-bytes-x", true),
        ] {
            assert_eq!(s.route_localnet_path(name).is_ok(), ok, "{name:?}");
        }
        assert_eq!(
            s.route_localnet_path("eth0").expect("valid"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0/route_localnet")
        );
    }

    #[test]
    fn read_set_and_effective() {
        let dir = fake_root(&[("all", "0\n"), ("eth0", "0\n"), ("lo", "1\n")]);
        let s = Sysctl::with_root(dir.path());
        assert!(!s.read_route_localnet("all").expect("read"));
        assert!(s.read_route_localnet("lo").expect("read"));
        assert!(!s.route_localnet_effective("eth0").expect("eff"));
        assert!(s.route_localnet_effective("lo").expect("eff"));
        s.set_route_localnet("all", true).expect("set");
        assert!(s.read_route_localnet("all").expect("read"));
        assert!(s.route_localnet_effective("eth0").expect("eff"));
        assert!(s.route_localnet_effective("all").expect("eff"));
        s.set_route_localnet("all", false).expect("set");
        assert!(!s.route_localnet_effective("all").expect("eff"));
    }

    #[test]
    fn missing_interface_and_garbage_are_typed_errors() {
        let dir = fake_root(&[("all", "0\n"), ("bad", "2\n")]);
        let s = Sysctl::with_root(dir.path());
        assert!(matches!(
            s.read_route_localnet("nope"),
            Err(SysctlError::NoSuchInterface { .. })
        ));
        assert!(matches!(
            s.set_route_localnet("nope", true),
            Err(SysctlError::NoSuchInterface { .. })
        ));
        assert!(!dir.path().join("net/ipv4/conf/nope").exists());
        assert!(matches!(
            s.read_route_localnet("bad"),
            Err(SysctlError::Unexpected { .. })
        ));
    }
}
