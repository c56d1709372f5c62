//! Reading a request body within a size cap and a time limit.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body;

use crate::Server;
use crate::stats::inc;

/// Why [`Server::read_body`] returned no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is larger than the cap (answer 413).
    TooLarge {
        /// The cap, bytes.
        limit: usize,
    },
    /// The body did not arrive within [`crate::Limits::body_read_timeout`] (answer 408; counted).
    TimedOut,
    /// The connection failed while reading (the message is for logs).
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge { limit } => {
                write!(
                    f,
                    "the request body exceeds the maximum size of {limit} bytes"
                )
            }
            BodyError::TimedOut => f.write_str("the request body did not arrive in time"),
            BodyError::Read(e) => write!(f, "error reading request body: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

impl Server {
    /// Read `body` in full, at most `max_bytes` of it, within [`crate::Limits::body_read_timeout`].
    pub async fn read_body<B>(&self, body: B, max_bytes: usize) -> Result<Bytes, BodyError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let read = http_body_util::Limited::new(body, max_bytes).collect();
        match tokio::time::timeout(self.limits().body_read_timeout, read).await {
            Ok(Ok(b)) => Ok(b.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                Err(BodyError::TooLarge { limit: max_bytes })
            }
            Ok(Err(e)) => Err(BodyError::Read(e.to_string())),
            Err(_) => {
                inc(&self.stats().body_timeouts);
                Err(BodyError::TimedOut)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use http_body_util::Full;
    use hyper::body::Frame;
    use std::time::Duration;

    #[tokio::test]
    async fn a_body_within_the_cap_is_read() {
        let s = Server::new(Limits::default());
        let b = s
            .read_body(Full::new(Bytes::from_static(b"hello")), 5)
            .await;
        assert_eq!(b, Ok(Bytes::from_static(b"hello")));
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused() {
        let s = Server::new(Limits::default());
        let b = s
            .read_body(Full::new(Bytes::from_static(b"hello!")), 5)
            .await;
        assert_eq!(b, Err(BodyError::TooLarge { limit: 5 }));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_is_counted() {
        let s = Server::new(Limits {
            body_read_timeout: Duration::from_millis(100),
            ..Limits::default()
        });
        let b = s.read_body(stalled(), 1024).await;
        assert_eq!(b, Err(BodyError::TimedOut));
        assert_eq!(s.stats().snapshot().body_timeouts, 1);
    }

    /// One chunk, then nothing ever again.
    fn stalled() -> impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        struct Stall(bool);
        impl hyper::body::Body for Stall {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
                if self.0 {
                    std::task::Poll::Pending
                } else {
                    self.0 = true;
                    std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"par")))))
                }
            }
        }
        Stall(false)
    }
}
