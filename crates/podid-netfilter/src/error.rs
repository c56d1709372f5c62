//! Errors of the IO half. Every failure is a value carrying the command line, the exit code and
//! stderr, classified so the agent can log a useful hint and retry; none of them is fatal here.

use std::fmt;

use crate::rules::{BackendKind, ConfigError, ParseError};

/// Why an iptables command failed, guessed from its stderr (iptables exit codes are too coarse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The xtables lock was held past `--wait`, or a concurrent writer changed the table
    /// ("Resource temporarily unavailable"). Transient: retry.
    LockContention,
    /// Not root / missing `CAP_NET_ADMIN`.
    PermissionDenied,
    /// The kernel lacks the nat table, a match or a target for this backend.
    KernelSupport,
    /// Anything else (the stderr says what).
    Other,
}

impl FailureKind {
    /// Classifies a failed command from its stderr.
    #[must_use]
    pub fn classify(stderr: &str) -> Self {
        let lower = stderr.to_ascii_lowercase();
        let has = |needle: &str| lower.contains(needle);
        if has("xtables lock") || has("resource temporarily unavailable") {
            Self::LockContention
        } else if has("permission denied")
            || has("you must be root")
            || has("operation not permitted")
        {
            Self::PermissionDenied
        } else if has("table does not exist")
            || has("insmod")
            || has("can't initialize")
            || has("protocol not supported")
            || has("couldn't load")
        {
            Self::KernelSupport
        } else {
            Self::Other
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::LockContention => {
                "another program held the xtables lock (/run/xtables.lock) or changed the nat table at the same time (transient: another attempt usually succeeds)"
            }
            Self::PermissionDenied => {
                "the agent must run as root with CAP_NET_ADMIN (and CAP_NET_RAW) in the host network namespace"
            }
            Self::KernelSupport => {
                "the kernel lacks nat support for this iptables backend (load iptable_nat or nf_tables/nft_chain_nat, or choose the other backend)"
            }
            Self::Other => "see the command's error output",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hint())
    }
}

/// An iptables operation that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum NetfilterError {
    /// The binary could not be started (not installed, not executable).
    #[error("cannot run `{command}`: {source} (install iptables, or fix the binary path)")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The command ran and exited unsuccessfully.
    #[error("`{command}` failed with {}: {}; {kind}", exit_label(*.exit_code), .stderr.trim())]
    Command {
        /// The command line.
        command: String,
        /// Exit code; `None` when killed by a signal.
        exit_code: Option<i32>,
        /// Its stderr (iptables output never contains secrets).
        stderr: String,
        /// The classification of `stderr`.
        kind: FailureKind,
    },
    /// The command hung and was killed.
    #[error("`{command}` did not finish within {timeout_ms} ms and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit that was exceeded.
        timeout_ms: u128,
    },
    /// The command's output was of a shape iptables never prints.
    #[error("cannot read the output of `{command}`: {source}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong.
        source: ParseError,
    },
    /// No usable iptables binaries were found.
    #[error(
        "no iptables binaries found (looked for iptables-legacy, iptables-nft and iptables with their -save/-restore companions in {searched}); install the iptables package"
    )]
    NotFound {
        /// The directories searched.
        searched: String,
    },
    /// The requested backend is not installed.
    #[error(
        "the {requested} iptables backend was requested but is not installed (available: {available}); install it or use backend auto"
    )]
    BackendUnavailable {
        /// What was asked for.
        requested: BackendKind,
        /// What exists, comma-separated.
        available: String,
    },
    /// Auto-detection could not read either backend.
    #[error("cannot detect the iptables backend: legacy: {legacy}; nft: {nft}")]
    DetectionFailed {
        /// Why `iptables-legacy-save` failed.
        legacy: Box<NetfilterError>,
        /// Why `iptables-nft-save` failed.
        nft: Box<NetfilterError>,
    },
    /// The chain config cannot be written.
    #[error("invalid interception config: {0}")]
    Config(#[from] ConfigError),
}

fn exit_label(code: Option<i32>) -> String {
    code.map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"))
}

impl NetfilterError {
    /// True for failures that usually go away by themselves (lock contention, a hung command).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Command {
                kind: FailureKind::LockContention,
                ..
            } | Self::Timeout { .. }
        )
    }

    /// The failure classification, for `Command` errors.
    #[must_use]
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            Self::Command { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
