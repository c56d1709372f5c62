//! The bounded server over real loopback sockets: slow clients are dropped within the header-read timeout
//! while others are answered, idle keep-alive connections close after the idle timeout, a long response is
//! never cut, oversized heads get 431, and floods over either cap are closed at once and counted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame};
use podid_serve::testkit::{
    self, HALF_REQUEST, HEADER_TIMEOUT as HEADER, IDLE_TIMEOUT as IDLE, Probe, SLACK,
};
use podid_serve::{Limits, Server};
use tokio::io::AsyncWriteExt;

fn limits() -> Limits {
    Limits {
        max_header_bytes: 16 * 1024,
        max_connections: 2000,
        ..testkit::limits()
    }
}

/// A body fed by a channel: a response that streams for as long as the test wants.
struct Chunks(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// `/stream`: 15 chunks 200 ms apart (3 s, longer than both timeouts); `/endless`: data as fast as the client
/// reads it, forever; anything else: `ok`.
async fn start(limits: Limits) -> (SocketAddr, Arc<Server>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::new(limits);
    let run = server.listen(listener).run(
        |_c: &podid_serve::Conn| {
            hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let body: BoxBody<Bytes, Infallible> = if req.uri().path() == "/endless" {
                    // 64 KiB chunks until the client goes away.
                    let (tx, rx) = tokio::sync::mpsc::channel(1);
                    tokio::spawn(async move {
                        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                        while tx.send(chunk.clone()).await.is_ok() {}
                    });
                    Chunks(rx).boxed()
                } else if req.uri().path() == "/stream" {
                    let (tx, rx) = tokio::sync::mpsc::channel(1);
                    tokio::spawn(async move {
                        for i in 0..15 {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            if tx.send(Bytes::from(format!("chunk {i}\n"))).await.is_err() {
                                return;
                            }
                        }
                    });
                    Chunks(rx).boxed()
                } else {
                    Full::new(Bytes::from_static(b"ok")).boxed()
                };
                Ok::<_, Infallible>(http::Response::new(body))
            })
        },
        std::future::pending(),
    );
    tokio::spawn(run);
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_dropped_within_the_header_timeout_while_others_are_answered() {
    let (addr, server) = start(limits()).await;
    // Fresh connections that send nothing at all are slow clients too.
    let silent = testkit::stall(addr, None, 50, b"").await;
    let probe = Probe::new(addr, testkit::get("/", "Connection: close\r\n"))
        .during(HEADER + Duration::from_millis(500));
    let run = testkit::slow_loris(&[None], 300, HEADER + SLACK, probe).await;
    assert_eq!(run.closed, 300, "every half-request connection is closed");
    assert_eq!(testkit::count_closed(silent, HEADER + SLACK).await, 50);
    assert!(
        run.elapsed >= HEADER,
        "not closed before the header-read timeout: {:?}",
        run.elapsed
    );
    let (ok, sent) = (run.answered, run.sent);
    assert!(sent >= 5 && ok == sent, "answered {ok} of {sent} meanwhile");
    let s = server.stats().snapshot();
    assert_eq!(s.header_timeouts, 350, "{s:?}");
    assert_eq!(s.idle_timeouts, 0, "{s:?}");
    // Every slot was given back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.stats().snapshot().active, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_after_the_idle_timeout_not_the_header_timeout() {
    let (addr, server) = start(limits()).await;
    let mut s = testkit::connect(addr, None).await.expect("connect");
    testkit::get_ok(&mut s, "/", "").await;
    let idle_from = Instant::now();
    assert!(
        !testkit::closed_within(&mut s, HEADER + Duration::from_millis(300)).await,
        "still open after the header-read timeout: idle time is not header time"
    );
    // Still usable: a second request on the same connection restarts the idle clock.
    testkit::get_ok(&mut s, "/", "").await;
    let idle_from_2 = Instant::now();
    assert!(
        testkit::closed_within(&mut s, IDLE + SLACK).await,
        "closed after the idle timeout"
    );
    assert!(idle_from_2.elapsed() >= IDLE - Duration::from_millis(50));
    assert!(idle_from.elapsed() >= IDLE);
    let st = server.stats().snapshot();
    assert_eq!((st.idle_timeouts, st.header_timeouts), (1, 0), "{st:?}");
    assert_eq!(st.requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_second_request_is_due_a_header_timeout_after_its_first_byte() {
    let (addr, server) = start(limits()).await;
    let mut s = testkit::connect(addr, None).await.expect("connect");
    testkit::get_ok(&mut s, "/", "").await;
    s.write_all(HALF_REQUEST).await.expect("write");
    let t = Instant::now();
    assert!(testkit::closed_within(&mut s, HEADER + SLACK).await);
    assert!(
        t.elapsed() < IDLE,
        "the header timeout, not the idle one: {:?}",
        t.elapsed()
    );
    let st = server.stats().snapshot();
    assert_eq!((st.header_timeouts, st.idle_timeouts), (1, 0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_response_is_never_cut_by_either_timeout() {
    let (addr, server) = start(limits()).await;
    let mut s = testkit::connect(addr, None).await.expect("connect");
    let t = Instant::now();
    let (code, text) = testkit::exchange(
        &mut s,
        &testkit::get("/stream", ""),
        Duration::from_secs(10),
    )
    .await
    .expect("the whole streamed response");
    assert_eq!(code, 200);
    assert!(text.contains("chunk 14"), "{text}");
    assert!(t.elapsed() > IDLE, "the response outlived the idle timeout");
    let st = server.stats().snapshot();
    assert_eq!((st.header_timeouts, st.idle_timeouts), (0, 0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_gets_431_not_a_hang() {
    let (addr, _server) = start(limits()).await;
    let big = format!("X-Big: {}\r\n", "a".repeat(64 * 1024));
    let code = testkit::request(addr, None, &testkit::get("/", &big), Duration::from_secs(5)).await;
    assert_eq!(code, Some(431));
    // Just under the cap is fine.
    let fits = format!("X-Fits: {}\r\nConnection: close\r\n", "a".repeat(8 * 1024));
    let code = testkit::request(
        addr,
        None,
        &testkit::get("/", &fits),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(code, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_is_closed_at_the_per_address_cap_and_counted() {
    let (addr, server) = start(Limits {
        max_connections_per_ip: 20,
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let (mut held, refused) = testkit::flood(addr, None, 20, 30).await;
    assert_eq!(
        refused, 30,
        "the excess is closed at once (well before any timeout)"
    );
    let st = server.stats().snapshot();
    assert_eq!(
        (st.refused_per_ip_cap, st.refused_total_cap),
        (30, 0),
        "{st:?}"
    );
    assert_eq!(st.accepted, 20);
    // The connections within the cap are served.
    testkit::get_ok(&mut held[0], "/", "").await;
    // Freed slots are usable again.
    drop(held);
    let mut code = None;
    for _ in 0..20 {
        code = testkit::request(
            addr,
            None,
            &testkit::get("/", "Connection: close\r\n"),
            Duration::from_secs(5),
        )
        .await;
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_total_cap_is_closed_and_counted() {
    let (addr, server) = start(Limits {
        max_connections: 10,
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let (mut held, refused) = testkit::flood(addr, None, 10, 15).await;
    assert_eq!(refused, 15);
    let st = server.stats().snapshot();
    assert_eq!(
        (st.refused_total_cap, st.refused_per_ip_cap),
        (15, 0),
        "{st:?}"
    );
    assert_eq!(st.active, 10);
    testkit::get_ok(&mut held[9], "/", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_are_served_and_an_idle_http2_connection_closes_after_the_idle_timeout() {
    let (addr, server) = start(limits()).await;
    let stream = testkit::connect(addr, None).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    let conn = tokio::spawn(conn);
    // A stream that outlives both timeouts, then a short one: both answered on one connection.
    for path in ["/stream", "/"] {
        let req = http::Request::get(format!("http://127.0.0.1{path}"))
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let resp = send.send_request(req).await.expect("h2 response");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(!body.is_empty());
    }
    let idle_from = Instant::now();
    let ended = tokio::time::timeout(IDLE + SLACK, conn).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection was closed");
    assert!(idle_from.elapsed() >= IDLE - Duration::from_millis(50));
    let st = server.stats().snapshot();
    assert_eq!(
        (st.idle_timeouts, st.header_timeouts, st.requests),
        (1, 0, 2),
        "{st:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_response_is_cut_after_the_idle_timeout() {
    let (addr, server) = start(limits()).await;
    let mut s = testkit::connect(addr, None).await.expect("connect");
    s.write_all(testkit::get("/endless", "").as_bytes())
        .await
        .expect("request");
    // Read nothing: the kernel buffers fill, the server's writes block, and after the idle timeout it gives up.
    let t = Instant::now();
    let mut closed = false;
    while t.elapsed() < IDLE + SLACK + SLACK {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if server.stats().snapshot().write_stalls == 1 {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "closed for not reading: {:?}",
        server.stats().snapshot()
    );
    assert!(
        t.elapsed() >= IDLE,
        "not before the idle timeout: {:?}",
        t.elapsed()
    );
    // What was sent before the close drains, then the stream ends.
    assert!(testkit::closed_within(&mut s, Duration::from_secs(10)).await);
}
