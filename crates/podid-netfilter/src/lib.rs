//! podid's iptables edge: the `aad-metadata` interception chain of aad-pod-identity's NMI, kept
//! exactly as upstream writes it, and the `route_localnet` sysctl that makes it deliver.
//!
//! # The contract
//!
//! Pods talk to IMDS at `169.254.169.254:80`; the node agent intercepts that with one custom chain
//! in the `nat` table, byte-for-byte what upstream NMI installs (other tools, upgrades and
//! runbooks look for it):
//!
//! ```text
//! -N aad-metadata
//! -A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579
//! -A aad-metadata -j RETURN
//! -A PREROUTING -j aad-metadata          (at position 1)
//! ```
//!
//! # Model
//!
//! The crate is split into a pure half and an IO half.
//!
//! * [`rules`] (pure): [`ChainConfig`] renders the desired lines; [`TableListing::parse`] reads
//!   `iptables -S` / `iptables-save` output of either backend into normalised [`Rule`]s that
//!   compare semantically; [`EnsurePlan`] and [`RemovalPlan`] decide what is wrong and render the
//!   `iptables-restore --noflush` transaction that fixes it; [`choose_backend`] is kube's
//!   iptables-wrapper heuristic.
//! * [`Netfilter`] (IO): runs the binaries (`-w 5`, a hard per-command timeout, `LC_ALL=C`) and
//!   applies the plans. [`sysctl::Sysctl`] reads and writes `route_localnet`.
//!
//! # Invariants and improvements over upstream
//!
//! * **Idempotent, no needless flush.** [`Netfilter::ensure`] lists the nat table once; when the
//!   chain and jump are already right it writes nothing.
//! * **Atomic repair.** Upstream flushes the chain and then appends, leaving a window in which pods
//!   reach the real IMDS. Here the flush-and-rewrite, the jump de-duplication and the move to
//!   position 1 are one `iptables-restore --noflush` transaction (nf_tables commits it as one
//!   batch; legacy swaps the whole table), so interception never lapses.
//! * **Exactly one jump, at position 1.** A jump found elsewhere (something inserted ahead of it)
//!   or duplicated is deleted and re-inserted at 1 in the same transaction.
//! * **No shadowing from the other backend.** An old NMI on the other backend (legacy vs nft)
//!   would keep DNATing to itself; `ensure` removes `aad-metadata` and every rule jumping to it
//!   from the backend we do not use. That backend is read with `-save` without `-t`, which never
//!   loads a kernel table that was not already there.
//! * **Errors are values.** Lock contention ("Resource temporarily unavailable"), missing kernel
//!   support, permissions, hung commands and unparseable output all become [`NetfilterError`]
//!   with the command line, exit code and stderr; the agent logs and retries, never crashes
//!   (upstream `klog.Fatalf`s, issues #249, #877, #294).
//! * **Namespaces.** Everything acts on the calling thread's network namespace: children inherit
//!   it, and `/proc/sys/net` resolves through it. The integration tests rely on this to run only
//!   inside namespaces they create.
//!
//! Not provided: conntrack deletion (`--enable-conntrack-deletion`). It needs netlink conntrack
//! messages (`IPCTNL_MSG_CT_DELETE` with a filter), which is not a thin wrapper; the agent can
//! shell out to `conntrack -D -p tcp --orig-dst <ip> --orig-port-dst <port>` if required.
//! IPv4 only, like upstream (no ip6tables).

pub mod error;
mod exec;
pub mod netfilter;
pub mod rules;
pub mod sysctl;

pub use error::{FailureKind, NetfilterError};
pub use netfilter::{
    Backend, ChainAction, DEFAULT_COMMAND_TIMEOUT, EnsureReport, JumpAction, Netfilter,
    OtherBackend, RemovalSummary, RemoveReport, Tools, UnknownBackend, WAIT_SECS,
};
pub use rules::{
    BackendEvidence, BackendKind, CHAIN, ChainConfig, ChainListing, ChainVerdict, ConfigError,
    EnsurePlan, FLUSH_LOG_MESSAGE, JUMP_LINE, JumpVerdict, NAT_TABLE, PREROUTING, ParseError,
    RemovalPlan, Rule, RuleError, RuleLine, SaveDump, TableListing, chain_verdict, choose_backend,
    jump_verdict,
};
pub use sysctl::{Sysctl, SysctlError};
