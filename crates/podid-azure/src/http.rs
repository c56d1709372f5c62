//! One shared HTTP(S) client for Entra ID, IMDS and ARM.
//!
//! A hyper-util legacy [`Client`] (connection pooling, HTTP/1.1) over hyper-rustls. TLS uses rustls with the
//! aws-lc-rs provider, passed explicitly (the client does not depend on a process-wide default provider). The
//! trust roots are the platform's native roots (`rustls-native-certs`, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`) plus any extra CA PEMs given in [`HttpOptions::extra_ca_pem`], so an in-process test can trust
//! azure-sim's CA without touching the environment. Plain `http://` works too (IMDS is plain HTTP).
//!
//! Every request has an overall deadline ([`HttpOptions::timeout`], covering connect, headers and body) and a
//! bounded response body ([`HttpOptions::max_response_bytes`]). Errors carry the URL without its query and
//! never a header value, so a bearer token or a client secret cannot leak into a log line through them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Default overall deadline of one request (ARM answers in well under a second; LRO waits are polls).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default TCP connect deadline.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default largest response body read, bytes (a scale set with hundreds of identities is ~200 KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT_SECS: u64 = 90;

/// Options of the shared client.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Extra trusted CA certificates, each a PEM blob with one or more `CERTIFICATE` sections.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
    /// Overall deadline of one request (connect, send, headers and body).
    pub timeout: Duration,
    /// TCP connect deadline.
    pub connect_timeout: Duration,
    /// Largest response body read; larger bodies fail with [`HttpError::BodyTooLarge`].
    pub max_response_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            extra_ca_pem: Vec::new(),
            user_agent: format!("podid/{}", env!("CARGO_PKG_VERSION")),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// HTTP-level errors. Messages name the URL without its query and never include header values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// An extra CA PEM held no certificate.
    #[error("extra CA PEM #{index} holds no usable CERTIFICATE section: {message}")]
    InvalidCa {
        /// Position in [`HttpOptions::extra_ca_pem`].
        index: usize,
        /// What went wrong.
        message: String,
    },
    /// The URL or a header could not be used.
    #[error("invalid request to {url}: {message}")]
    InvalidRequest {
        /// The URL (without query).
        url: String,
        /// What is wrong.
        message: String,
    },
    /// Connecting, sending or receiving failed.
    #[error("{method} {url} failed: {message}")]
    Transport {
        /// The method.
        method: String,
        /// The URL (without query).
        url: String,
        /// The error chain.
        message: String,
    },
    /// The request did not finish within the deadline.
    #[error("{method} {url} timed out after {after:?}")]
    Timeout {
        /// The method.
        method: String,
        /// The URL (without query).
        url: String,
        /// The deadline.
        after: Duration,
    },
    /// The response body exceeded the limit.
    #[error("{method} {url}: response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The method.
        method: String,
        /// The URL (without query).
        url: String,
        /// The limit.
        limit: usize,
    },
}

/// A response with its body read.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A header as text (first value), if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as lossy UTF-8 (for error messages; bounded by the response limit).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The URL without query or fragment (what errors and logs show).
pub(crate) fn redact_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or("").to_string()
}

/// The error chain as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

struct Inner {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    user_agent: HeaderValue,
    timeout: Duration,
    max_response_bytes: usize,
}

/// The shared HTTP(S) client; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.inner.timeout)
            .field("max_response_bytes", &self.inner.max_response_bytes)
            .finish_non_exhaustive()
    }
}

// === impl HttpClient ===

impl HttpClient {
    /// Build the client: native roots plus [`HttpOptions::extra_ca_pem`]. Must be called inside a Tokio
    /// runtime only when requests are sent (building is synchronous).
    pub fn new(opts: HttpOptions) -> Result<HttpClient, HttpError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "some native CA certificates could not be loaded");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            tracing::debug!(added, ignored, "native CA certificates loaded");
        }
        for (index, pem) in opts.extra_ca_pem.iter().enumerate() {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| HttpError::InvalidCa {
                    index,
                    message: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(HttpError::InvalidCa {
                    index,
                    message: "no CERTIFICATE section found".into(),
                });
            }
            for c in certs {
                roots.add(c).map_err(|e| HttpError::InvalidCa {
                    index,
                    message: e.to_string(),
                })?;
            }
        }
        if roots.is_empty() {
            tracing::warn!(
                "no trusted CA certificates: HTTPS requests will fail (set SSL_CERT_FILE)"
            );
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(opts.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(POOL_IDLE_TIMEOUT_SECS))
            .build(connector);
        let user_agent =
            HeaderValue::from_str(&opts.user_agent).map_err(|_| HttpError::InvalidRequest {
                url: String::new(),
                message: "user_agent is not a valid header value".into(),
            })?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                user_agent,
                timeout: opts.timeout,
                max_response_bytes: opts.max_response_bytes,
            }),
        })
    }

    /// Send one request and read the whole (bounded) body. Any status is a successful response here; callers
    /// interpret statuses.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        let shown = redact_url(url);
        let invalid = |message: String| HttpError::InvalidRequest {
            url: shown.clone(),
            message,
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        if uri.host().is_none() {
            return Err(invalid("the URL has no host".into()));
        }
        let mut req = Request::builder().method(method.clone()).uri(uri);
        let h = req
            .headers_mut()
            .ok_or_else(|| invalid("cannot build the request".into()))?;
        h.insert(header::USER_AGENT, self.inner.user_agent.clone());
        for (k, v) in headers {
            let name = header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| invalid(format!("invalid header name '{k}'")))?;
            // The value is not shown: it may be a bearer token.
            let value = HeaderValue::from_str(v)
                .map_err(|_| invalid(format!("invalid value for header '{k}'")))?;
            h.insert(name, value);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| invalid(e.to_string()))?;
        let started = std::time::Instant::now();
        let limit = self.inner.max_response_bytes;
        let work = async {
            let resp = self
                .inner
                .client
                .request(req)
                .await
                .map_err(|e| HttpError::Transport {
                    method: method.to_string(),
                    url: shown.clone(),
                    message: chain(&e),
                })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, limit).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    HttpError::BodyTooLarge {
                        method: method.to_string(),
                        url: shown.clone(),
                        limit,
                    }
                } else {
                    HttpError::Transport {
                        method: method.to_string(),
                        url: shown.clone(),
                        message: format!("reading the body: {}", chain(&*e)),
                    }
                }
            })?;
            Ok(HttpResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        let out = match tokio::time::timeout(self.inner.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout {
                method: method.to_string(),
                url: shown.clone(),
                after: self.inner.timeout,
            }),
        };
        match &out {
            Ok(r) => {
                tracing::debug!(%method, url = %shown, status = r.status, elapsed_ms = started.elapsed().as_millis() as u64, "http")
            }
            Err(e) => tracing::debug!(%method, url = %shown, error = %e, "http failed"),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_query() {
        assert_eq!(
            redact_url("http://h/metadata/identity/oauth2/token?resource=x&client_id=y"),
            "http://h/metadata/identity/oauth2/token"
        );
        assert_eq!(redact_url("https://h/p#frag"), "https://h/p");
    }

    #[test]
    fn invalid_ca_is_refused() {
        let e = HttpClient::new(HttpOptions {
            extra_ca_pem: vec![b"not a pem".to_vec()],
            ..HttpOptions::default()
        })
        .expect_err("bad CA");
        assert!(matches!(e, HttpError::InvalidCa { index: 0, .. }), "{e}");
    }

    #[tokio::test]
    async fn bad_urls_and_headers() {
        let c = HttpClient::new(HttpOptions::default()).expect("client");
        for url in ["not a url", "/relative"] {
            let e = c
                .send(Method::GET, url, &[], Bytes::new())
                .await
                .expect_err(url);
            assert!(matches!(e, HttpError::InvalidRequest { .. }), "{url}: {e}");
        }
        let e = c
            .send(
                Method::GET,
                "http://127.0.0.1:9/x",
                &[("authorization", "Bearer secret\nvalue")],
                Bytes::new(),
            )
            .await
            .expect_err("header");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[tokio::test]
    async fn connection_refused_is_transport() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        let c = HttpClient::new(HttpOptions::default()).expect("client");
        let e = c
            .send(
                Method::GET,
                &format!("http://127.0.0.1:{port}/x?secret=1"),
                &[],
                Bytes::new(),
            )
            .await
            .expect_err("refused");
        assert!(matches!(e, HttpError::Transport { .. }), "{e}");
        assert!(!e.to_string().contains("secret=1"), "{e}");
    }
}
