//! Test helpers (feature `testkit`, dev-dependencies only): raw loopback clients that stall, flood and probe a
//! bounded server, shared by the slow-client and flood tests of every server so the suites do not copy them.
//! Every helper refuses a non-loopback target: these tests never leave the machine.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A request line and part of a header block, never finished: what a slow-loris client sends.
pub const HALF_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

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
    let mut s = connect(to, from).await.ok()?;
    exchange(&mut s, request, within)
        .await
        .map(|(code, _)| code)
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
