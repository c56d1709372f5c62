//! A NETLINK_ROUTE socket with request/reply and dump transactions (rustix, no unsafe).
//!
//! One request is in flight at a time (`&mut self`). Replies are matched by sequence number;
//! messages carrying an older sequence number (the tail of a transaction abandoned after an error)
//! are skipped. Every transaction is bounded: at most [`MAX_DATAGRAMS_PER_TRANSACTION`] datagrams, and
//! each `recv` gives up after [`RECV_TIMEOUT_MS`].

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::NetError;
use crate::netlink::{
    self, Message, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, WireError,
};

/// Receive buffer, bytes. The kernel caps dump datagrams at 32 KiB; single replies are far smaller.
pub(crate) const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// Per-`recv` timeout, milliseconds. rtnetlink answers in microseconds; this only guards against a hang.
pub(crate) const RECV_TIMEOUT_MS: u64 = 2_000;
/// Largest errno the kernel reports (`MAX_ERRNO`).
const MAX_ERRNO: i32 = 4095;
/// Upper bound on datagrams read for one transaction (a 110-pod FDB dump is a handful).
pub(crate) const MAX_DATAGRAMS_PER_TRANSACTION: usize = 4_096;

/// What one transaction ended with, besides the messages handed to the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The request succeeded (reply delivered, dump complete, or ACK).
    Done,
    /// The kernel answered with this errno.
    Kernel(Errno),
    /// A dump reported `NLM_F_DUMP_INTR`; the delivered messages may be inconsistent. Retry.
    Interrupted,
}

/// A bound NETLINK_ROUTE socket in the network namespace of the thread that opened it.
#[derive(Debug)]
pub(crate) struct NlSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl NlSocket {
    /// Opens and binds a NETLINK_ROUTE socket. It stays in the calling thread's network namespace for
    /// its whole life, whichever thread uses it later.
    pub(crate) fn open() -> Result<Self, NetError> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| NetError::Socket {
            op: "socket(AF_NETLINK, NETLINK_ROUTE)",
            source: e.into(),
        })?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0)).map_err(|e| NetError::Socket {
            op: "bind",
            source: e.into(),
        })?;
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_millis(RECV_TIMEOUT_MS)),
        )
        .map_err(|e| NetError::Socket {
            op: "setsockopt(SO_RCVTIMEO)",
            source: e.into(),
        })?;
        Ok(Self {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUFFER_BYTES],
        })
    }

    /// The next sequence number to put in a request.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Sends `request` (built with sequence number `seq`) and feeds every reply message to `each`
    /// until the transaction ends. `dump` says whether to expect a multipart reply ending in
    /// `NLMSG_DONE`; otherwise the first data message ends it.
    pub(crate) fn transact(
        &mut self,
        what: &'static str,
        request: &[u8],
        seq: u32,
        dump: bool,
        mut each: impl FnMut(&Message<'_>) -> Result<(), NetError>,
    ) -> Result<Outcome, NetError> {
        rustix::net::send(&self.fd, request, SendFlags::empty()).map_err(|e| NetError::Socket {
            op: "send",
            source: e.into(),
        })?;
        let mut interrupted = false;
        for _ in 0..MAX_DATAGRAMS_PER_TRANSACTION {
            let (got, full_len) =
                match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::TRUNC) {
                    Ok(v) => v,
                    Err(Errno::AGAIN) => {
                        return Err(NetError::Timeout {
                            request: what,
                            timeout_ms: RECV_TIMEOUT_MS,
                        });
                    }
                    Err(Errno::INTR) => continue,
                    Err(e) => {
                        return Err(NetError::Socket {
                            op: "recv",
                            source: e.into(),
                        });
                    }
                };
            if full_len > got {
                return Err(NetError::ReplyTooLarge {
                    request: what,
                    len: full_len,
                    capacity: self.buf.len(),
                });
            }
            let datagram = self.buf.get(..got).unwrap_or_default();
            for message in netlink::messages(datagram) {
                let message = message.map_err(|source| NetError::Malformed {
                    request: what,
                    source,
                })?;
                if message.seq != seq {
                    continue;
                }
                if message.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match message.kind {
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    NLMSG_ERROR | NLMSG_DONE => {
                        let status = netlink::decode_status(message.kind, message.payload)
                            .map_err(|source| NetError::Malformed {
                                request: what,
                                source,
                            })?;
                        return match status {
                            0 if interrupted => Ok(Outcome::Interrupted),
                            0 => Ok(Outcome::Done),
                            other => errno_from_status(other).map(Outcome::Kernel).ok_or(
                                NetError::Malformed {
                                    request: what,
                                    source: WireError::BadStatus { status: other },
                                },
                            ),
                        };
                    }
                    _ => {
                        each(&message)?;
                        if !dump {
                            return Ok(Outcome::Done);
                        }
                    }
                }
            }
        }
        Err(NetError::TooManyReplies {
            request: what,
            datagrams: MAX_DATAGRAMS_PER_TRANSACTION,
        })
    }
}

/// A netlink status (negative errno) as an [`Errno`]; `None` unless it is -1..=-4095, the range the
/// kernel uses (rustix rejects anything else).
fn errno_from_status(status: i32) -> Option<Errno> {
    let code = status.checked_neg()?;
    (1..=MAX_ERRNO)
        .contains(&code)
        .then(|| Errno::from_raw_os_error(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errnos_only_in_the_kernel_range() {
        let cases = [
            (-2, Some(Errno::NOENT)),
            (-19, Some(Errno::NODEV)),
            (-4095, Some(Errno::from_raw_os_error(4095))),
            (-4096, None),
            (5, None),
            (i32::MIN, None),
            (i32::MAX, None),
        ];
        for (status, want) in cases {
            assert_eq!(errno_from_status(status), want, "{status}");
        }
    }
}
