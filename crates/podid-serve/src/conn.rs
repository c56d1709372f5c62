//! One connection's time limits: what the connection reports ([`ConnState`], fed by the [`Guarded`] IO and the
//! [`Tracked`] service), the decision of what to wait for next ([`next`], pure), and the [`watchdog`] that
//! sleeps until then.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::server::Permit;
use crate::stats::inc;

/// No byte arrived since the connection last became idle.
const NO_BYTE: u64 = u64::MAX;
/// The HTTP/2 connection preface starts with this (a request line never does: `PRI` is not a method anyone uses
/// over HTTP/1, and hyper refuses it).
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2";

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// A request head did not arrive in time.
    HeaderTimeout,
    /// No request for the idle timeout.
    IdleTimeout,
    /// The client read nothing of what the server was writing for the idle timeout.
    WriteStalled,
}

/// What a connection has reported, in milliseconds since it started being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phase {
    /// Requests whose response has not been fully written or dropped.
    pub in_flight: u32,
    /// Requests started on this connection.
    pub started: u64,
    /// When the connection last became idle (0: when it started).
    pub idle_since_ms: u64,
    /// When the first byte arrived after `idle_since_ms`, if one did.
    pub first_byte_ms: Option<u64>,
    /// Since when a write to the client has been waiting (its receive window is full), if one is.
    pub write_blocked_ms: Option<u64>,
    /// The client spoke HTTP/2.
    pub h2: bool,
    /// A response switched protocols: the stream is no longer HTTP.
    pub upgraded: bool,
}

/// What the watchdog waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing: the connection is no longer HTTP.
    Never,
    /// The end of the requests in flight.
    Idle,
    /// Close at `at_ms` for `reason`, unless something changes before.
    CloseAt { at_ms: u64, reason: Close },
}

/// The decision (pure): when a connection in `p` must be closed, with timeouts in milliseconds.
pub(crate) fn next(p: &Phase, header_ms: u64, idle_ms: u64) -> Next {
    if p.upgraded {
        return Next::Never;
    }
    // A client that stopped reading what it asked for: in flight or not, it is cut after the idle timeout.
    let stalled = p.write_blocked_ms.map(|since| Next::CloseAt {
        at_ms: since.saturating_add(idle_ms),
        reason: Close::WriteStalled,
    });
    if p.in_flight > 0 {
        return stalled.unwrap_or(Next::Idle);
    }
    let wait = waiting(p, header_ms, idle_ms);
    match (stalled, wait) {
        (Some(Next::CloseAt { at_ms: s, .. }), Next::CloseAt { at_ms: w, .. }) if s < w => {
            stalled.unwrap_or(wait)
        }
        _ => wait,
    }
}

/// No request in flight: the deadline for the next request head.
fn waiting(p: &Phase, header_ms: u64, idle_ms: u64) -> Next {
    let header = |from: u64| Next::CloseAt {
        at_ms: from.saturating_add(header_ms),
        reason: Close::HeaderTimeout,
    };
    if p.started == 0 {
        // The first request head is due a header-read timeout after the connection starts, bytes or not.
        return header(p.idle_since_ms);
    }
    match p.first_byte_ms {
        // HTTP/1: the next request has begun; its head is due a header-read timeout after its first byte.
        Some(first) if !p.h2 => header(first),
        // HTTP/1 with nothing sent yet, or HTTP/2 (frames such as pings are not requests): idle.
        _ => Next::CloseAt {
            at_ms: p.idle_since_ms.saturating_add(idle_ms),
            reason: Close::IdleTimeout,
        },
    }
}

/// What one connection reports, shared by its IO, its service and its watchdog. Holds the connection's slot in
/// the table: the slot is freed when the last of them (for an upgraded connection, the upgraded stream) is gone.
pub(crate) struct ConnState {
    born: Instant,
    in_flight: AtomicU32,
    started: AtomicU64,
    idle_since_ms: AtomicU64,
    first_byte_ms: AtomicU64,
    write_blocked_ms: AtomicU64,
    sniffed: AtomicBool,
    h2: AtomicBool,
    upgraded: AtomicBool,
    wake: Notify,
    permit: Permit,
}

impl ConnState {
    pub(crate) fn new(permit: Permit) -> ConnState {
        ConnState {
            born: Instant::now(),
            in_flight: AtomicU32::new(0),
            started: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            first_byte_ms: AtomicU64::new(NO_BYTE),
            write_blocked_ms: AtomicU64::new(NO_BYTE),
            sniffed: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            wake: Notify::new(),
            permit,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn phase(&self) -> Phase {
        let first = self.first_byte_ms.load(Ordering::Acquire);
        let blocked = self.write_blocked_ms.load(Ordering::Acquire);
        Phase {
            in_flight: self.in_flight.load(Ordering::Acquire),
            started: self.started.load(Ordering::Acquire),
            idle_since_ms: self.idle_since_ms.load(Ordering::Acquire),
            first_byte_ms: (first != NO_BYTE).then_some(first),
            write_blocked_ms: (blocked != NO_BYTE).then_some(blocked),
            h2: self.h2.load(Ordering::Relaxed),
            upgraded: self.upgraded.load(Ordering::Acquire),
        }
    }

    /// Bytes arrived from the client.
    fn on_read(&self, bytes: &[u8]) {
        if !self.sniffed.swap(true, Ordering::Relaxed) {
            let n = bytes.len().min(H2_PREFACE_START.len());
            if n >= 3 && bytes[..n] == H2_PREFACE_START[..n] {
                self.h2.store(true, Ordering::Relaxed);
            }
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.first_byte_ms.load(Ordering::Acquire) == NO_BYTE
        {
            self.first_byte_ms.store(self.now_ms(), Ordering::Release);
            self.wake.notify_one();
        }
    }

    /// A write could not proceed (`blocked`) or made progress.
    fn on_write(&self, blocked: bool) {
        let was = self.write_blocked_ms.load(Ordering::Acquire);
        if blocked && was == NO_BYTE {
            self.write_blocked_ms
                .store(self.now_ms(), Ordering::Release);
            self.wake.notify_one();
        } else if !blocked && was != NO_BYTE {
            self.write_blocked_ms.store(NO_BYTE, Ordering::Release);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel);
        inc(&self.permit.server.stats().requests);
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since_ms.store(self.now_ms(), Ordering::Release);
            self.first_byte_ms.store(NO_BYTE, Ordering::Release);
            self.wake.notify_one();
        }
    }
}

/// Resolves when the connection must be closed, and why.
pub(crate) async fn watchdog(state: &ConnState, header: Duration, idle: Duration) -> Close {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (header_ms, idle_ms) = (ms(header), ms(idle));
    loop {
        match next(&state.phase(), header_ms, idle_ms) {
            Next::Never => std::future::pending::<()>().await,
            Next::Idle => state.wake.notified().await,
            Next::CloseAt { at_ms, reason } => {
                if state.now_ms() >= at_ms {
                    return reason;
                }
                let at = state.born + Duration::from_millis(at_ms);
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = state.wake.notified() => {}
                }
            }
        }
    }
}

// === impl Guarded ===

/// The connection's IO, reporting the bytes it reads.
pub(crate) struct Guarded<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T> Guarded<T> {
    pub(crate) fn new(inner: T, state: Arc<ConnState>) -> Guarded<T> {
        Guarded { inner, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let fresh = &buf.filled()[before..];
            if !fresh.is_empty() {
                this.state.on_read(fresh);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.state.on_write(r.is_pending());
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.state.on_write(r.is_pending());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// === impl Tracked ===

/// The caller's service, reporting when requests start and when their responses are done.
pub(crate) struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>) -> Tracked<S> {
        Tracked { inner, state }
    }
}

/// A request in flight; dropping it (with the response body, or with the service future) ends the request.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: &Arc<ConnState>) -> InFlight {
        state.request_started();
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body + Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = InFlight::start(&self.state);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                guard.0.upgraded.store(true, Ordering::Release);
            }
            Ok(resp.map(|body| TrackedBody {
                inner: Box::pin(body),
                _guard: guard,
            }))
        })
    }
}

/// A response body that ends its request when hyper is done with it.
pub(crate) struct TrackedBody<B> {
    inner: Pin<Box<B>>,
    _guard: InFlight,
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 10_000;
    const I: u64 = 90_000;

    fn fresh() -> Phase {
        Phase {
            in_flight: 0,
            started: 0,
            idle_since_ms: 0,
            first_byte_ms: None,
            write_blocked_ms: None,
            h2: false,
            upgraded: false,
        }
    }

    fn close_at(at_ms: u64, reason: Close) -> Next {
        Next::CloseAt { at_ms, reason }
    }

    #[test]
    fn first_request_head_is_due_from_the_start_bytes_or_not() {
        assert_eq!(next(&fresh(), H, I), close_at(H, Close::HeaderTimeout));
        let partial = Phase {
            first_byte_ms: Some(4_000),
            ..fresh()
        };
        assert_eq!(next(&partial, H, I), close_at(H, Close::HeaderTimeout));
        let h2 = Phase {
            h2: true,
            ..fresh()
        };
        assert_eq!(next(&h2, H, I), close_at(H, Close::HeaderTimeout));
    }

    #[test]
    fn a_request_in_flight_is_never_timed() {
        for p in [
            Phase {
                in_flight: 1,
                started: 1,
                ..fresh()
            },
            Phase {
                in_flight: 3,
                started: 9,
                idle_since_ms: 5,
                first_byte_ms: Some(6),
                write_blocked_ms: None,
                h2: true,
                upgraded: false,
            },
        ] {
            assert_eq!(next(&p, H, I), Next::Idle);
        }
    }

    #[test]
    fn keep_alive_idle_then_header_timeout_from_the_first_byte() {
        let idle = Phase {
            started: 1,
            idle_since_ms: 2_000,
            ..fresh()
        };
        assert_eq!(next(&idle, H, I), close_at(2_000 + I, Close::IdleTimeout));
        let begun = Phase {
            first_byte_ms: Some(50_000),
            ..idle
        };
        assert_eq!(
            next(&begun, H, I),
            close_at(50_000 + H, Close::HeaderTimeout)
        );
    }

    #[test]
    fn http2_frames_do_not_restart_or_shorten_idle() {
        let p = Phase {
            started: 4,
            idle_since_ms: 1_000,
            first_byte_ms: Some(1_500),
            h2: true,
            ..fresh()
        };
        assert_eq!(next(&p, H, I), close_at(1_000 + I, Close::IdleTimeout));
    }

    #[test]
    fn a_client_that_stops_reading_is_cut_after_the_idle_timeout() {
        // In flight (a response the client does not read): the write stall is the only clock.
        let p = Phase {
            in_flight: 1,
            started: 1,
            write_blocked_ms: Some(3_000),
            ..fresh()
        };
        assert_eq!(next(&p, H, I), close_at(3_000 + I, Close::WriteStalled));
        // Not in flight: whichever comes first.
        let p = Phase {
            started: 1,
            idle_since_ms: 1_000,
            write_blocked_ms: Some(500),
            ..fresh()
        };
        assert_eq!(next(&p, H, I), close_at(500 + I, Close::WriteStalled));
        let p = Phase {
            started: 1,
            idle_since_ms: 1_000,
            first_byte_ms: Some(2_000),
            write_blocked_ms: Some(500),
            ..fresh()
        };
        assert_eq!(next(&p, H, I), close_at(2_000 + H, Close::HeaderTimeout));
    }

    #[test]
    fn upgraded_connections_leave_the_watchdog() {
        let p = Phase {
            upgraded: true,
            started: 1,
            ..fresh()
        };
        assert_eq!(next(&p, H, I), Next::Never);
    }

    #[test]
    fn deadlines_saturate() {
        let p = Phase {
            started: 1,
            idle_since_ms: u64::MAX - 1,
            ..fresh()
        };
        assert_eq!(next(&p, H, I), close_at(u64::MAX, Close::IdleTimeout));
    }
}
