//! The IO half: finding the iptables binaries, picking a backend, and applying the pure plans.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::NetfilterError;
use crate::exec::{render, run};
use crate::rules::{
    BackendEvidence, BackendKind, ChainConfig, ChainVerdict, EnsurePlan, FLUSH_LOG_MESSAGE,
    JumpVerdict, NAT_TABLE, RemovalPlan, SaveDump, TableListing, choose_backend,
};

// === constants ===

/// `--wait` for the xtables lock, in seconds (upstream go-iptables waits too; 5 s bounds a stuck holder).
pub const WAIT_SECS: u32 = 5;
/// Hard limit for one iptables command, lock wait included; past it the child is killed.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Directories searched after `$PATH` (iptables lives in sbin, often missing from a container's PATH).
const EXTRA_SEARCH_DIRS: [&str; 5] = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];
/// Unix permission bits meaning "executable by someone".
const EXECUTABLE_MODE_BITS: u32 = 0o111;

// === Backend ===

/// Which iptables backend the agent writes to (the agent's backend flag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Like kube's iptables-wrapper: kubelet's hint chain, else more nat rules, nft on a tie.
    #[default]
    Auto,
    /// x_tables.
    Legacy,
    /// nf_tables.
    Nft,
}

/// An unknown backend name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown iptables backend `{0}` (want auto, legacy or nft)")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "legacy" => Ok(Self::Legacy),
            "nft" | "nf_tables" => Ok(Self::Nft),
            _ => Err(UnknownBackend(s.to_owned())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Legacy => "legacy",
            Self::Nft => "nft",
        })
    }
}

// === Tools ===

/// The three binaries of one backend. Paths may be bare names (looked up in `$PATH` at spawn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tools {
    /// Which backend these binaries drive.
    pub kind: BackendKind,
    /// `iptables-legacy` / `iptables-nft` / `iptables`.
    pub iptables: PathBuf,
    /// The matching `-save`.
    pub save: PathBuf,
    /// The matching `-restore`.
    pub restore: PathBuf,
}

impl Tools {
    /// The suffixed Debian names, e.g. `iptables-nft`, `iptables-nft-save`, `iptables-nft-restore`.
    #[must_use]
    pub fn suffixed(kind: BackendKind) -> Self {
        Self {
            kind,
            iptables: PathBuf::from(format!("iptables-{kind}")),
            save: PathBuf::from(format!("iptables-{kind}-save")),
            restore: PathBuf::from(format!("iptables-{kind}-restore")),
        }
    }

    /// Plain `iptables`, `iptables-save`, `iptables-restore`, known to drive `kind`.
    #[must_use]
    pub fn plain(kind: BackendKind) -> Self {
        Self {
            kind,
            iptables: PathBuf::from("iptables"),
            save: PathBuf::from("iptables-save"),
            restore: PathBuf::from("iptables-restore"),
        }
    }

    /// The same three names resolved to absolute paths, if all three are installed.
    fn resolved(&self, dirs: &[PathBuf]) -> Option<Self> {
        Some(Self {
            kind: self.kind,
            iptables: find_executable(&self.iptables, dirs)?,
            save: find_executable(&self.save, dirs)?,
            restore: find_executable(&self.restore, dirs)?,
        })
    }
}

fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in EXTRA_SEARCH_DIRS {
        let extra = PathBuf::from(extra);
        if !dirs.contains(&extra) {
            dirs.push(extra);
        }
    }
    dirs
}

fn find_executable(name: &Path, dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & EXECUTABLE_MODE_BITS != 0)
    };
    if name.components().count() > 1 {
        return is_exec(name).then(|| name.to_path_buf());
    }
    dirs.iter().map(|d| d.join(name)).find(|p| is_exec(p))
}

// === reports ===

/// What happened to the chain during [`Netfilter::ensure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainAction {
    /// Already exact; not touched (no flush).
    Unchanged,
    /// Did not exist; created.
    Created,
    /// Existed with other content; flushed and rewritten atomically.
    Rewritten {
        /// What was wrong.
        reason: String,
    },
}

/// What happened to the PREROUTING jump during [`Netfilter::ensure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JumpAction {
    /// Already once at position 1.
    Unchanged,
    /// Was missing; inserted at 1.
    Inserted,
    /// Was elsewhere and/or duplicated (1-based positions before); now once at 1.
    Moved {
        /// Where the jumps were.
        from: Vec<usize>,
    },
}

/// What was removed from one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovalSummary {
    /// The backend cleaned.
    pub backend: BackendKind,
    /// Rules that jumped to `aad-metadata` (PREROUTING jump included) that were deleted.
    pub references_removed: usize,
    /// The chain was flushed and deleted.
    pub chain_removed: bool,
}

impl RemovalSummary {
    /// Nothing was there.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.references_removed == 0 && !self.chain_removed
    }
}

/// The outcome of cleaning the backend we do not use.
#[derive(Debug)]
pub enum OtherBackend {
    /// Only one backend is installed.
    NotInstalled,
    /// It had no `aad-metadata` chain or jump.
    Clean,
    /// A stale chain/jump (an old NMI's) was removed.
    Removed(RemovalSummary),
    /// Cleaning failed; our own backend is still correct. Logged as a warning; retried next time.
    Failed(NetfilterError),
}

/// The outcome of [`Netfilter::ensure`].
#[derive(Debug)]
pub struct EnsureReport {
    /// The backend written to.
    pub backend: BackendKind,
    /// What happened to the chain.
    pub chain: ChainAction,
    /// What happened to the PREROUTING jump.
    pub jump: JumpAction,
    /// A re-listing after a write showed the desired state (always true when nothing was written).
    /// False means this iptables prints the rules in a form the comparison does not recognise;
    /// interception still works but every ensure will rewrite. Logged as a warning.
    pub verified: bool,
    /// Cleanup of the other backend.
    pub other_backend: OtherBackend,
}

impl EnsureReport {
    /// Something was written to our backend.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.chain != ChainAction::Unchanged || self.jump != JumpAction::Unchanged
    }
}

/// The outcome of [`Netfilter::remove`]: one summary per installed backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveReport {
    /// Per backend, active first.
    pub backends: Vec<RemovalSummary>,
}

// === Netfilter ===

/// The agent's handle on iptables. Cheap to clone; every method is synchronous and blocking
/// (call it from `spawn_blocking`). Methods act on the network namespace of the calling thread.
#[derive(Clone, Debug)]
pub struct Netfilter {
    active: Tools,
    other: Option<Tools>,
    timeout: Duration,
}

impl Netfilter {
    /// Uses exactly these binaries: `active` is written to, `other` (if any) is only cleaned of
    /// stale `aad-metadata` state. Nothing is checked until the first call.
    #[must_use]
    pub fn with_commands(active: Tools, other: Option<Tools>) -> Self {
        Self {
            active,
            other,
            timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// Replaces the per-command time limit.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Finds the installed binaries (`$PATH`, then the sbin directories) and picks the backend.
    /// Prefers `iptables-legacy`/`iptables-nft` (+ `-save`, `-restore`); falls back to plain
    /// `iptables`, whose backend is read from `iptables --version`. `Auto` runs both `-save`s
    /// (without `-t`, so no kernel table gets loaded) and applies [`choose_backend`].
    pub fn detect(backend: Backend) -> Result<Self, NetfilterError> {
        Self::detect_with_timeout(backend, DEFAULT_COMMAND_TIMEOUT)
    }

    /// [`Netfilter::detect`] with a per-command time limit.
    pub fn detect_with_timeout(
        backend: Backend,
        timeout: Duration,
    ) -> Result<Self, NetfilterError> {
        let dirs = search_dirs();
        let mut legacy = Tools::suffixed(BackendKind::Legacy).resolved(&dirs);
        let mut nft = Tools::suffixed(BackendKind::Nft).resolved(&dirs);
        if legacy.is_none() || nft.is_none() {
            // Plain iptables fills the gap only if it drives the missing backend.
            if let Some(plain) = Tools::plain(BackendKind::Nft).resolved(&dirs) {
                let kind = plain_kind(&plain.iptables, timeout)?;
                let plain = Tools { kind, ..plain };
                match kind {
                    BackendKind::Legacy if legacy.is_none() => legacy = Some(plain),
                    BackendKind::Nft if nft.is_none() => nft = Some(plain),
                    _ => {}
                }
            }
        }
        let available = [&legacy, &nft]
            .iter()
            .filter_map(|t| t.as_ref().map(|t| t.kind.to_string()))
            .collect::<Vec<_>>();
        if available.is_empty() {
            let searched = dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            return Err(NetfilterError::NotFound { searched });
        }
        let unavailable = |requested| NetfilterError::BackendUnavailable {
            requested,
            available: available.join(", "),
        };
        let (active, other) = match backend {
            Backend::Legacy => (legacy.ok_or_else(|| unavailable(BackendKind::Legacy))?, nft),
            Backend::Nft => (nft.ok_or_else(|| unavailable(BackendKind::Nft))?, legacy),
            Backend::Auto => match (legacy, nft) {
                (Some(l), Some(n)) => {
                    let pick = auto_pick(&l, &n, timeout)?;
                    if pick == BackendKind::Legacy {
                        (l, Some(n))
                    } else {
                        (n, Some(l))
                    }
                }
                (Some(only), None) | (None, Some(only)) => (only, None),
                (None, None) => return Err(unavailable(BackendKind::Nft)),
            },
        };
        tracing::info!(
            requested = %backend,
            backend = %active.kind,
            iptables = %active.iptables.display(),
            "selected iptables backend"
        );
        Ok(Self {
            active,
            other,
            timeout,
        })
    }

    /// The backend written to.
    #[must_use]
    pub fn backend(&self) -> BackendKind {
        self.active.kind
    }

    /// The binaries written to.
    #[must_use]
    pub fn active_tools(&self) -> &Tools {
        &self.active
    }

    /// The other backend's binaries, cleaned but never written.
    #[must_use]
    pub fn other_tools(&self) -> Option<&Tools> {
        self.other.as_ref()
    }

    /// Makes nat/`aad-metadata` exactly [`ChainConfig::chain_lines`] and puts the one PREROUTING
    /// jump at position 1, in a single atomic `iptables-restore --noflush` transaction, and only
    /// when something is wrong. Then removes a stale chain and jump from the other backend.
    pub fn ensure(&self, config: &ChainConfig) -> Result<EnsureReport, NetfilterError> {
        config.validate()?;
        let listing = self.list_nat(&self.active)?;
        let plan = EnsurePlan::new(&listing, config);
        tracing::trace!(backend = %self.active.kind, rules = ?listing.aad_metadata_lines(), "current aad-metadata rules");

        let chain = match &plan.chain {
            ChainVerdict::Exact => ChainAction::Unchanged,
            ChainVerdict::Missing => ChainAction::Created,
            ChainVerdict::Differs { reason } => ChainAction::Rewritten {
                reason: reason.clone(),
            },
        };
        let jump = match &plan.jump {
            JumpVerdict::First => JumpAction::Unchanged,
            JumpVerdict::Missing => JumpAction::Inserted,
            JumpVerdict::Misplaced { positions } => JumpAction::Moved {
                from: positions.clone(),
            },
        };
        let mut verified = true;
        if let Some(script) = plan.restore_script(config) {
            if chain != ChainAction::Unchanged {
                let reason = match &chain {
                    ChainAction::Rewritten { reason } => reason.as_str(),
                    _ => "chain missing",
                };
                tracing::info!(backend = %self.active.kind, %reason, "{FLUSH_LOG_MESSAGE}");
            }
            if let JumpAction::Moved { from } = &jump {
                tracing::info!(backend = %self.active.kind, positions = ?from, "moving the PREROUTING jump to aad-metadata to position 1");
            }
            self.restore(&self.active, &script)?;
            let after = self.list_nat(&self.active)?;
            verified = EnsurePlan::new(&after, config).is_noop();
            if !verified {
                tracing::warn!(
                    backend = %self.active.kind,
                    rules = ?after.aad_metadata_lines(),
                    "aad-metadata rules were written but read back in an unrecognised form"
                );
            }
            tracing::debug!(backend = %self.active.kind, rules = ?after.aad_metadata_lines(), "aad-metadata rules");
        }

        let other_backend = match &self.other {
            None => OtherBackend::NotInstalled,
            Some(tools) => match self.remove_from(tools) {
                Ok(summary) if summary.is_empty() => OtherBackend::Clean,
                Ok(summary) => {
                    tracing::info!(
                        backend = %tools.kind,
                        references = summary.references_removed,
                        chain = summary.chain_removed,
                        "removed a stale aad-metadata chain/jump left on the other iptables backend"
                    );
                    OtherBackend::Removed(summary)
                }
                Err(error) => {
                    tracing::warn!(backend = %tools.kind, %error, "cannot clean aad-metadata from the other iptables backend");
                    OtherBackend::Failed(error)
                }
            },
        };
        Ok(EnsureReport {
            backend: self.active.kind,
            chain,
            jump,
            verified,
            other_backend,
        })
    }

    /// Deletes every jump to `aad-metadata` and flushes and deletes the chain, on both backends.
    /// Idempotent: absent state is success. Both backends are attempted; the first error is returned.
    pub fn remove(&self) -> Result<RemoveReport, NetfilterError> {
        let mut backends = Vec::new();
        let mut first_error = None;
        for tools in std::iter::once(&self.active).chain(self.other.as_ref()) {
            match self.remove_from(tools) {
                Ok(summary) => backends.push(summary),
                Err(error) => {
                    tracing::warn!(backend = %tools.kind, %error, "cannot remove aad-metadata");
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(RemoveReport { backends }),
        }
    }

    /// The active backend's `aad-metadata` chain (`-N` line, rules) and the rules jumping to it,
    /// in `iptables -S` form. Empty when nothing is installed.
    pub fn rules(&self) -> Result<Vec<String>, NetfilterError> {
        Ok(self.list_nat(&self.active)?.aad_metadata_lines())
    }

    // --- helpers ---

    fn list_nat(&self, tools: &Tools) -> Result<TableListing, NetfilterError> {
        let wait = WAIT_SECS.to_string();
        let args = ["-w", wait.as_str(), "-t", NAT_TABLE, "-S"];
        let out = run(&tools.iptables, &args, None, self.timeout)?;
        TableListing::parse(&out).map_err(|source| NetfilterError::Parse {
            command: render(&tools.iptables, &args),
            source,
        })
    }

    /// `-save` without `-t`: dumps only tables that already exist, never loads a kernel module.
    fn save_all(&self, tools: &Tools) -> Result<SaveDump, NetfilterError> {
        let out = run(&tools.save, &[], None, self.timeout)?;
        SaveDump::parse(&out).map_err(|source| NetfilterError::Parse {
            command: render(&tools.save, &[]),
            source,
        })
    }

    fn restore(&self, tools: &Tools, script: &str) -> Result<(), NetfilterError> {
        let wait = WAIT_SECS.to_string();
        tracing::debug!(backend = %tools.kind, %script, "iptables-restore --noflush");
        run(
            &tools.restore,
            &["-w", wait.as_str(), "--noflush"],
            Some(script),
            self.timeout,
        )
        .map(|_| ())
    }

    fn remove_from(&self, tools: &Tools) -> Result<RemovalSummary, NetfilterError> {
        let dump = self.save_all(tools)?;
        let plan = dump
            .table(NAT_TABLE)
            .map(RemovalPlan::new)
            .unwrap_or(RemovalPlan {
                references: Vec::new(),
                chain_present: false,
            });
        if let Some(script) = plan.restore_script() {
            self.restore(tools, &script)?;
        }
        Ok(RemovalSummary {
            backend: tools.kind,
            references_removed: plan.references.len(),
            chain_removed: plan.chain_present,
        })
    }
}

fn plain_kind(iptables: &Path, timeout: Duration) -> Result<BackendKind, NetfilterError> {
    let out = run(iptables, &["--version"], None, timeout)?;
    Ok(if out.contains("nf_tables") {
        BackendKind::Nft
    } else {
        BackendKind::Legacy
    })
}

fn auto_pick(
    legacy: &Tools,
    nft: &Tools,
    timeout: Duration,
) -> Result<BackendKind, NetfilterError> {
    let probe = Netfilter::with_commands(legacy.clone(), None).with_timeout(timeout);
    let evidence = |tools: &Tools| {
        probe
            .save_all(tools)
            .map(|d| BackendEvidence::from_save(&d))
    };
    let (l, n) = match (evidence(legacy), evidence(nft)) {
        (Ok(l), Ok(n)) => (l, n),
        (Ok(l), Err(error)) => {
            tracing::warn!(%error, "cannot read the nft backend; counting it as empty");
            (l, BackendEvidence::default())
        }
        (Err(error), Ok(n)) => {
            tracing::warn!(%error, "cannot read the legacy backend; counting it as empty");
            (BackendEvidence::default(), n)
        }
        (Err(l), Err(n)) => {
            return Err(NetfilterError::DetectionFailed {
                legacy: Box::new(l),
                nft: Box::new(n),
            });
        }
    };
    let pick = choose_backend(&l, &n);
    tracing::debug!(legacy = ?l, nft = ?n, %pick, "iptables backend evidence");
    Ok(pick)
}
