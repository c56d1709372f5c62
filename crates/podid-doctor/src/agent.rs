//! The node agent's view of a pod: `GET <probe>/debug/pod?ip=<pod IP>[&client_id=<id>]` on the agent's probe port
//! (plain HTTP, as the probe server serves), decoded as [`AgentView`]. One request, bounded in time and size; any
//! failure becomes a [`ViewError`] the report shows as "agent view: not available (...)".

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use podid_core::doctor::AgentView;
use podid_core::nmi::request::encode_path;

/// Deadline of the whole exchange with the agent.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from the agent, bytes.
const MAX_VIEW_BYTES: usize = 1024 * 1024;
/// The agent's debug view path.
pub const DEBUG_POD_PATH: &str = "/debug/pod";

/// Why the agent's view is not available.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The URL cannot be used.
    #[error("agent URL {url:?}: {why}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// Connecting or talking failed.
    #[error("{url} unreachable: {why}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The error.
        why: String,
    },
    /// No answer in time.
    #[error("{url} did not answer within {}s", AGENT_TIMEOUT.as_secs())]
    Timeout {
        /// The URL.
        url: String,
    },
    /// The agent does not serve the view.
    #[error(
        "{url} answers 404 on {DEBUG_POD_PATH}: an agent without the debug view, or started with --debug-view=off"
    )]
    NotServed {
        /// The URL.
        url: String,
    },
    /// The agent refused or failed.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// The answer is not an agent view.
    #[error("{url} answered something that is not an agent view: {why}")]
    Decode {
        /// The URL.
        url: String,
        /// The decoder's error.
        why: String,
    },
}

/// The probe base URL: no trailing `/` or `/healthz` (the agent prints its probe as `http://ADDR/healthz`).
#[must_use]
pub fn base_url(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    u.strip_suffix("/healthz").unwrap_or(u).to_string()
}

/// Fetches the agent's view of `ip` (optionally for a request naming `client_id`).
pub async fn fetch_view(
    url: &str,
    ip: &str,
    client_id: Option<&str>,
) -> Result<AgentView, ViewError> {
    let base = base_url(url);
    let bad = |why: &str| ViewError::Url {
        url: base.clone(),
        why: why.to_string(),
    };
    let uri: http::Uri = base.parse().map_err(|e| bad(&format!("{e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad(
            "only http:// probe URLs are supported (the agent's probe server is plain HTTP)",
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| bad("no host"))?
        .as_str()
        .to_string();
    let addr = if uri.port_u16().is_some() {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let prefix = uri.path().trim_end_matches('/');
    let mut path = format!("{prefix}{DEBUG_POD_PATH}?ip={}", encode_path(ip));
    if let Some(c) = client_id.filter(|c| !c.is_empty()) {
        path.push_str(&format!("&client_id={}", encode_path(c)));
    }
    match tokio::time::timeout(AGENT_TIMEOUT, exchange(&addr, &authority, &path)).await {
        Err(_) => Err(ViewError::Timeout { url: base }),
        Ok(Err(why)) => Err(ViewError::Unreachable { url: base, why }),
        Ok(Ok((200, body))) => serde_json::from_slice(&body).map_err(|e| ViewError::Decode {
            url: base,
            why: e.to_string(),
        }),
        Ok(Ok((404, _))) => Err(ViewError::NotServed { url: base }),
        Ok(Ok((status, body))) => Err(ViewError::Status {
            url: base,
            status,
            body: String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(300)
                .collect(),
        }),
    }
}

/// One HTTP/1.1 GET: (status, body).
async fn exchange(addr: &str, host: &str, path: &str) -> Result<(u16, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let result = async {
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_VIEW_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for (given, want) in [
            ("http://127.0.0.1:8085", "http://127.0.0.1:8085"),
            ("http://127.0.0.1:8085/", "http://127.0.0.1:8085"),
            ("http://127.0.0.1:8085/healthz", "http://127.0.0.1:8085"),
            (" http://h/x/ ", "http://h/x"),
        ] {
            assert_eq!(base_url(given), want);
        }
    }

    #[tokio::test]
    async fn bad_urls_and_closed_ports() {
        let e = fetch_view("https://127.0.0.1:1", "10.0.0.1", None)
            .await
            .expect_err("https");
        assert!(e.to_string().contains("only http://"), "{e}");
        let e = fetch_view("not a url", "10.0.0.1", None)
            .await
            .expect_err("garbage");
        assert!(matches!(e, ViewError::Url { .. }), "{e}");
        // A port nobody listens on (bound then closed).
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        let e = fetch_view(&format!("http://127.0.0.1:{port}"), "10.0.0.1", None)
            .await
            .expect_err("closed");
        assert!(matches!(e, ViewError::Unreachable { .. }), "{e}");
    }
}
