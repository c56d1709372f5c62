//! The crate's error type.

use crate::netlink::WireError;

/// Everything that can go wrong in this crate. A failed peer *check* is not an error: it is a
/// [`crate::PeerVerdict::Refused`]. Errors mean the check could not be carried out at all (missing
/// privilege, missing namespace handles, a malformed kernel reply), and callers should fail closed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A syscall on the NETLINK_ROUTE socket failed (socket, bind, send, recv).
    #[error("netlink socket: {op} failed: {source}")]
    Socket {
        /// The operation that failed.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel did not answer a request within the receive timeout.
    #[error("netlink: no reply to {request} within {timeout_ms} ms")]
    Timeout {
        /// The request that went unanswered.
        request: &'static str,
        /// The receive timeout.
        timeout_ms: u64,
    },
    /// The kernel's reply did not parse. This is a bug in the decoder or a kernel ABI change; report it.
    #[error("netlink: malformed reply to {request}: {source}")]
    Malformed {
        /// The request whose reply was malformed.
        request: &'static str,
        /// What exactly was wrong.
        #[source]
        source: WireError,
    },
    /// The kernel refused a request with an error this crate does not turn into a verdict. `EPERM` or
    /// `EACCES` mean the process lacks `CAP_NET_ADMIN`/`CAP_SYS_ADMIN`.
    #[error("netlink: kernel refused {request}: {errno}")]
    Kernel {
        /// The refused request.
        request: &'static str,
        /// The kernel's errno.
        errno: rustix::io::Errno,
    },
    /// A dump kept changing under us (`NLM_F_DUMP_INTR`) on every attempt.
    #[error(
        "netlink: {request} dump was interrupted by concurrent changes {attempts} times in a row"
    )]
    DumpInterrupted {
        /// The dump request.
        request: &'static str,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A transaction produced more datagrams than any legitimate reply could.
    #[error("netlink: reply to {request} exceeded {datagrams} datagrams")]
    TooManyReplies {
        /// The request.
        request: &'static str,
        /// The bound that was hit.
        datagrams: usize,
    },
    /// A reply datagram did not fit in the receive buffer.
    #[error(
        "netlink: reply to {request} is {len} bytes, larger than the {capacity}-byte receive buffer"
    )]
    ReplyTooLarge {
        /// The request.
        request: &'static str,
        /// The datagram's size.
        len: usize,
        /// The buffer's size.
        capacity: usize,
    },
    /// The veth peer of a bridge port lives in a network namespace this process has no handle for.
    /// Give the agent the runtime's namespace directory (hostPath `/var/run/netns`, mount propagation
    /// `HostToContainer`) or `hostPID: true` with `CAP_SYS_PTRACE`, see [`crate::PeerCheckConfig`].
    #[error(
        "peer namespace (nsid {nsid}) behind bridge port {port} not found in {searched}; mount the \
         container runtime's netns directory into the agent or run it with hostPID"
    )]
    PeerNamespaceNotFound {
        /// The namespace id, as seen from the checker's namespace.
        nsid: i32,
        /// The bridge port whose peer it is.
        port: String,
        /// The places searched.
        searched: String,
    },
    /// `setns` into a network namespace failed (needs `CAP_SYS_ADMIN`), or its handle could not be opened.
    #[error("entering network namespace {namespace}: {source}")]
    EnterNamespace {
        /// The namespace (name or path).
        namespace: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A helper thread could not be spawned.
    #[error("spawning thread {what}: {source}")]
    Thread {
        /// What the thread was for.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A helper thread panicked.
    #[error("thread {what} panicked")]
    ThreadPanicked {
        /// What the thread was for.
        what: &'static str,
    },
    /// A test-bed command (`ip ...`, `python3 ...`) failed.
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status or spawn error.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A namespace test's prerequisite (root, iproute2, python3) is missing while
    /// `PODID_REQUIRE_NETNS=1` demands that namespace tests run.
    #[error("{test}: {reason}; PODID_REQUIRE_NETNS=1 requires namespace tests to run")]
    PrerequisiteMissing {
        /// The test.
        test: String,
        /// What is missing.
        reason: String,
    },
    /// A test-bed argument was rejected before anything was created.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Building a tokio runtime failed.
    #[error("building tokio runtime for namespace {namespace}: {source}")]
    Runtime {
        /// The namespace.
        namespace: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Some other IO failed (reading a namespace directory, creating a socket inside a namespace).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
