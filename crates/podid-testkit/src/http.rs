//! A raw HTTP/1.1 client for loopback servers (control APIs, probes, the agent): one request per connection
//! (`Connection: close`), optionally sent from a chosen source address (a pod's), so tests see exactly what a
//! server wrote.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest a raw exchange waits for the whole response.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// `method url` with an optional JSON body: (status, body, dechunked). Errors are connection failures.
pub async fn try_http(
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = tokio::net::TcpStream::connect(host).await?;
    let b = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    Ok((status, body))
}

/// Minimal HTTP/1.1 to loopback (control API, probes): (status, body). Panics when it cannot connect.
pub async fn http(method: &str, url: &str, body: Option<&Value>) -> (u16, String) {
    match try_http(method, url, body).await {
        Ok(r) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// The body of a chunked response, joined.
pub fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A raw HTTP/1.1 exchange from `src` (the calling pod's address) to `to`: (status, head lowercased, body).
pub async fn raw_from(src: IpAddr, to: SocketAddr, request: &str) -> (u16, String, String) {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::new(src, 0))
        .expect("bind source address");
    let mut s = sock.connect(to).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(RESPONSE_TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// GET `path` from `src` to `to` as a pod asks the metadata address (`Host: 169.254.169.254`), with `headers`.
pub async fn get_from(
    src: IpAddr,
    to: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw_from(src, to, &req).await
}

/// The value of an unlabelled (or fully spelled) series on a Prometheus text page.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
        assert_eq!(dechunk(""), "");
    }

    #[test]
    fn series_values_are_read() {
        let text = "# HELP x\na_count 3\na_count{k=\"v\"} 4\n";
        assert_eq!(metric_value(text, "a_count"), Some(3.0));
        assert_eq!(metric_value(text, "a_count{k=\"v\"}"), Some(4.0));
        assert_eq!(metric_value(text, "b"), None);
    }
}
