//! Test helpers (feature `testkit`, dev-dependencies only): raw loopback clients that stall, flood and probe a
//! bounded server, shared by the slow-client and flood tests of every server so the suites do not copy them.
//! Every helper refuses a non-loopback target: these tests never leave the machine.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::Limits;

/// A request line and part of a header block, never finished: what a slow-loris client sends.
pub const HALF_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
/// The header-read timeout the limits tests run with: short enough to wait for, long enough to tell apart.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// The idle timeout the limits tests run with: twice the header-read timeout, so the two cannot be confused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Scheduling slack on a loaded 2-core machine, added to every wait for a timeout to fire.
pub const SLACK: Duration = Duration::from_secs(2);
/// Every probe of [`slow_loris`] starts this long after the previous one.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long the excess of a [`flood`] may take to be closed: "at once", well before any timeout.
const REFUSED_WITHIN: Duration = Duration::from_millis(500);
/// How long [`get_ok`] waits for its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// The size of the one header line of [`oversized`]: beyond every server's head limit.
const OVERSIZED_HEADER_BYTES: usize = 100 * 1024;

fn loopback(addr: SocketAddr) {
    assert!(
        addr.ip().is_loopback(),
        "the test kit only talks to loopback addresses, not {addr}"
    );
}

/// Connect to `to` from `from` (a loopback source address; `None`: the kernel's choice).
pub async fn connect(to: SocketAddr, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    loopback(to);
    let sock = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = from {
        assert!(src.is_loopback(), "source {src} is not a loopback address");
        sock.bind(SocketAddr::new(src, 0))?;
    }
    sock.connect(to).await
}

/// Open `n` connections to `to` (from `from`) and send `bytes` on each (nothing when empty), then stall.
pub async fn stall(to: SocketAddr, from: Option<IpAddr>, n: usize, bytes: &[u8]) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = connect(to, from)
            .await
            .unwrap_or_else(|e| panic!("connection {i} to {to}: {e}"));
        if !bytes.is_empty() {
            // A refused connection may already be closed; that is for the caller's assertions.
            let _ = s.write_all(bytes).await;
        }
        out.push(s);
    }
    out
}

/// Whether the server closed `s` (read returns EOF or an error) within `within`; bytes it sends first (an
/// error answer) are skipped.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// How many of `streams` the server closed by `deadline` (checked concurrently).
pub async fn count_closed(streams: Vec<TcpStream>, within: Duration) -> usize {
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| tokio::spawn(async move { closed_within(&mut s, within).await }))
        .collect();
    let mut n = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            n += 1;
        }
    }
    n
}

/// Send `request` on `s` and read one response; returns the status and the whole head + body as text.
/// Handles `Content-Length` and chunked bodies (enough for the servers under test).
pub async fn exchange(s: &mut TcpStream, request: &str, within: Duration) -> Option<(u16, String)> {
    s.write_all(request.as_bytes()).await.ok()?;
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(done) = complete(&buf) {
            let text = String::from_utf8_lossy(&buf[..done]).into_owned();
            let status = text.get(9..12).and_then(|c| c.parse().ok())?;
            return Some((status, text));
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The length of the first complete response in `buf`, if it holds one.
fn complete(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.get(9..12).and_then(|c| c.parse().ok())?;
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Some(head_end);
    }
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        return (buf.len() >= head_end + len).then_some(head_end + len);
    }
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        let body = &buf[head_end..];
        return body
            .windows(5)
            .position(|w| w == b"0\r\n\r\n")
            .map(|p| head_end + p + 5);
    }
    None
}

/// One request on a fresh connection (from `from`); the status, or `None` when the server gave no answer.
pub async fn request(
    to: SocketAddr,
    from: Option<IpAddr>,
    request: &str,
    within: Duration,
) -> Option<u16> {
    fetch(to, from, request, within).await.map(|(code, _)| code)
}

/// A `GET path` request with `Host: 127.0.0.1`, extra header lines (each ending in CRLF) and keep-alive.
#[must_use]
pub fn get(path: &str, extra_headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra_headers}\r\n")
}

/// Send `request` on fresh connections every `every` for `duration`; returns (answered, sent). Run it while
/// slow clients hold the server, to show the server keeps answering others.
pub async fn keep_asking(
    to: SocketAddr,
    from: Option<IpAddr>,
    request: String,
    every: Duration,
    duration: Duration,
) -> (usize, usize) {
    let end = Instant::now() + duration;
    let (mut ok, mut sent) = (0, 0);
    while Instant::now() < end {
        sent += 1;
        if self::request(to, from, &request, Duration::from_secs(5))
            .await
            .is_some()
        {
            ok += 1;
        }
        tokio::time::sleep(every).await;
    }
    (ok, sent)
}

/// `base` with the tests' short timeouts ([`HEADER_TIMEOUT`], [`IDLE_TIMEOUT`]).
#[must_use]
pub fn short_timeouts(base: Limits) -> Limits {
    Limits {
        header_read_timeout: HEADER_TIMEOUT,
        idle_timeout: IDLE_TIMEOUT,
        ..base
    }
}

/// The defaults with the tests' short timeouts and 1,000 connections per address (a slow-loris run opens
/// hundreds from one).
#[must_use]
pub fn limits() -> Limits {
    short_timeouts(Limits {
        max_connections_per_ip: 1000,
        ..Limits::default()
    })
}

/// A request a test keeps sending on fresh connections while it holds a server busy.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The server.
    pub to: SocketAddr,
    /// The source address (`None`: the kernel's choice).
    pub from: Option<IpAddr>,
    /// The whole request (see [`get`]); it should close the connection.
    pub request: String,
    /// How long to keep sending it.
    pub during: Duration,
}

// === impl Probe ===

impl Probe {
    /// `request` to `to` from the kernel's choice of source address, sent for the header-read timeout.
    #[must_use]
    pub fn new(to: SocketAddr, request: String) -> Probe {
        Probe {
            to,
            from: None,
            request,
            during: HEADER_TIMEOUT,
        }
    }

    /// Sent from `from` (a loopback address).
    #[must_use]
    pub fn from(self, from: IpAddr) -> Probe {
        Probe {
            from: Some(from),
            ..self
        }
    }

    /// Sent for `during`.
    #[must_use]
    pub fn during(self, during: Duration) -> Probe {
        Probe { during, ..self }
    }
}

/// What a [`slow_loris`] run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowLoris {
    /// How many of the half-sent requests the server closed within the wait.
    pub closed: usize,
    /// From the first half-sent request until they were counted: at least the header-read timeout.
    pub elapsed: Duration,
    /// Probes answered meanwhile.
    pub answered: usize,
    /// Probes sent meanwhile.
    pub sent: usize,
}

/// Send [`HALF_REQUEST`] on `per_source` connections from each of `sources` to `probe.to`, then, while the
/// probe is sent every 100 ms, wait up to `within` for the server to close them: a server under a slow-loris
/// attack must drop the slow clients after its header-read timeout and keep answering others meanwhile.
pub async fn slow_loris(
    sources: &[Option<IpAddr>],
    per_source: usize,
    within: Duration,
    probe: Probe,
) -> SlowLoris {
    let started = Instant::now();
    let mut slow = Vec::with_capacity(sources.len() * per_source);
    for from in sources {
        slow.extend(stall(probe.to, *from, per_source, HALF_REQUEST).await);
    }
    let asking = tokio::spawn(keep_asking(
        probe.to,
        probe.from,
        probe.request,
        PROBE_EVERY,
        probe.during,
    ));
    let closed = count_closed(slow, within).await;
    let elapsed = started.elapsed();
    let (answered, sent) = asking.await.expect("the probing task");
    SlowLoris {
        closed,
        elapsed,
        answered,
        sent,
    }
}

/// Hold `cap` silent connections from `from`, then open `excess` more: the held connections, and how many of
/// the excess the server closed at once (within 500 ms, well before any timeout).
pub async fn flood(
    to: SocketAddr,
    from: Option<IpAddr>,
    cap: usize,
    excess: usize,
) -> (Vec<TcpStream>, usize) {
    let held = stall(to, from, cap, b"").await;
    let excess = stall(to, from, excess, b"").await;
    (held, count_closed(excess, REFUSED_WITHIN).await)
}

/// One request on a fresh connection (from `from`); the status and the whole response as text, or `None`
/// when the server gave no answer.
pub async fn fetch(
    to: SocketAddr,
    from: Option<IpAddr>,
    request: &str,
    within: Duration,
) -> Option<(u16, String)> {
    let mut s = connect(to, from).await.ok()?;
    exchange(&mut s, request, within).await
}

/// `GET path` (with `extra_headers`) on `s`: the whole response as text, which must be a 200 within 5 s.
///
/// # Panics
/// When no answer comes or it is not a 200.
pub async fn get_ok(s: &mut TcpStream, path: &str, extra_headers: &str) -> String {
    let (code, text) = exchange(s, &get(path, extra_headers), ANSWER_WITHIN)
        .await
        .unwrap_or_else(|| panic!("no answer to GET {path}"));
    assert_eq!(code, 200, "GET {path}: {text}");
    text
}

/// `extra_headers` (each ending in CRLF) followed by one 100 KiB header line: a head over every limit (431).
#[must_use]
pub fn oversized(extra_headers: &str) -> String {
    format!(
        "{extra_headers}X-Big: {}\r\n",
        "a".repeat(OVERSIZED_HEADER_BYTES)
    )
}

/// A `method path` request announcing a 100-byte JSON body of which only `partial` is sent: what a client
/// that stalls mid-body sends (408 after the body-read timeout).
#[must_use]
pub fn stalled_body(method: &str, path: &str, extra_headers: &str, partial: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra_headers}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{partial}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_finds_the_end_of_a_response() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(complete(r), Some(r.len()));
        assert_eq!(complete(&r[..r.len() - 1]), None);
        let c = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(complete(c), Some(c.len()));
        assert_eq!(complete(b"HTTP/1.1 204 No Content\r\n\r\n"), Some(27));
    }
}
