//! Protocol paths azure-sim does not produce, against a scripted loopback ARM: `Location` polling, resource
//! polling, failed and cancelled operations, foreign poll URLs, 429 without `Retry-After` (default and
//! doubling), `Retry-After` as an HTTP date, 503 without `Retry-After` (retried), a stale token (401), a
//! throttled poll, timeouts and oversized bodies.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use podid_azure::*;
use serde_json::json;

const SUB: &str = "s1";
const RG: &str = "rg";

/// One scripted answer.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

impl Reply {
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Reply {
        self.headers.push((k, v.into()));
        self
    }
}

/// What the handler sees: method, path (with query), the ARM call's ordinal among non-token requests.
type Handler = Arc<dyn Fn(&::http::Method, &str, usize) -> Reply + Send + Sync>;

struct Fake {
    base: String,
    tokens: Arc<AtomicUsize>,
    arm: Arc<AtomicUsize>,
}

async fn fake(handler: Handler) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let tokens = Arc::new(AtomicUsize::new(0));
    let arm = Arc::new(AtomicUsize::new(0));
    let (t2, a2) = (tokens.clone(), arm.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (handler, tokens, arm) = (handler.clone(), t2.clone(), a2.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: ::http::Request<hyper::body::Incoming>| {
                        let (handler, tokens, arm) = (handler.clone(), tokens.clone(), arm.clone());
                        async move {
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default();
                            let r = if path.starts_with("/t1/oauth2/token") {
                                let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
                                reply(
                                    200,
                                    json!({"access_token": format!("tok-{n}"), "expires_in": "3600", "token_type": "Bearer"}),
                                )
                            } else {
                                assert_eq!(
                                    req.headers()
                                        .get("authorization")
                                        .and_then(|v| v.to_str().ok()),
                                    Some(
                                        format!("Bearer tok-{}", tokens.load(Ordering::SeqCst))
                                            .as_str()
                                    )
                                );
                                let n = arm.fetch_add(1, Ordering::SeqCst);
                                handler(req.method(), &path, n)
                            };
                            if !r.delay.is_zero() {
                                tokio::time::sleep(r.delay).await;
                            }
                            let mut resp = ::http::Response::new(Full::new(Bytes::from(r.body)));
                            *resp.status_mut() = ::http::StatusCode::from_u16(r.status)
                                .unwrap_or(::http::StatusCode::OK);
                            for (k, v) in r.headers {
                                if let Ok(v) = ::http::HeaderValue::from_str(&v) {
                                    resp.headers_mut().insert(k, v);
                                }
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Fake { base, tokens, arm }
}

fn client_with(f: &Fake, http: HttpOptions, opts: ComputeOptions) -> ComputeClient {
    let env = Environment::from_json(
        &json!({"resourceManagerEndpoint": f.base, "activeDirectoryEndpoint": f.base,
                "tokenAudience": "https://management.azure.com/"})
        .to_string(),
    )
    .expect("env");
    let cfg = CloudConfig {
        tenant_id: "t1".into(),
        aad_client_id: "app".into(),
        aad_client_secret: "secret".into(),
        subscription_id: SUB.into(),
        resource_group: RG.into(),
        ..CloudConfig::default()
    };
    let http = HttpClient::new(http).expect("http");
    let tokens = TokenSource::new(&cfg, &env, http.clone(), "http://127.0.0.1:9").expect("tokens");
    ComputeClient::new(env, tokens, http, opts)
}

fn opts() -> ComputeOptions {
    ComputeOptions {
        poll_interval: Duration::from_millis(20),
        retry_base_delay: Duration::from_millis(10),
        throttle_default: Duration::from_millis(200),
        throttle_max: Duration::from_secs(5),
        ..ComputeOptions::default()
    }
}

fn client(f: &Fake) -> ComputeClient {
    client_with(f, HttpOptions::default(), opts())
}

fn target() -> ComputeRef {
    ComputeRef::vmss(SUB, RG, "pool")
}

fn body() -> serde_json::Value {
    json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {"/x": {}}}})
}

#[tokio::test]
async fn location_polling() {
    let base = Arc::new(parking_lot::Mutex::new(String::new()));
    let b2 = base.clone();
    let f = fake(Arc::new(move |m, path, n| {
        if *m == ::http::Method::PATCH {
            return reply(202, json!({})).header("location", format!("{}/op/1", b2.lock()));
        }
        assert_eq!(path, "/op/1");
        if n < 3 {
            reply(202, json!({})).header("retry-after", "0")
        } else {
            reply(200, json!({}))
        }
    }))
    .await;
    *base.lock() = f.base.clone();
    let c = client(&f);
    c.patch_identity(&target(), &body()).await.expect("patch");
    let s = c.stats();
    assert_eq!((s.patches, s.polls), (1, 3), "{s:?}");
}

#[tokio::test]
async fn resource_polling_until_terminal() {
    for (last, ok) in [("Succeeded", true), ("Failed", false)] {
        let f = fake(Arc::new(move |m, path, n| {
            assert!(path.contains("/virtualMachineScaleSets/pool?api-version=2019-12-01"));
            if *m == ::http::Method::PATCH {
                return reply(
                    200,
                    json!({"properties": {"provisioningState": "Updating"}}),
                );
            }
            let state = if n < 2 { "Updating" } else { last };
            reply(200, json!({"properties": {"provisioningState": state}}))
        }))
        .await;
        let c = client(&f);
        let r = c.patch_identity(&target(), &body()).await;
        assert_eq!(r.is_ok(), ok, "{r:?}");
        if let Err(e) = r {
            assert!(
                matches!(&e, ArmError::OperationFailed { code, .. } if code == "Failed"),
                "{e:?}"
            );
        }
        assert_eq!(c.stats().polls, 2);
    }
}

#[tokio::test]
async fn plain_200_without_header_is_done() {
    let f = fake(Arc::new(|_, _, _| {
        reply(
            200,
            json!({"properties": {"provisioningState": "Succeeded"}}),
        )
    }))
    .await;
    let c = client(&f);
    c.patch_identity(&target(), &body()).await.expect("done");
    assert_eq!(c.stats().polls, 0);
}

#[tokio::test]
async fn failed_and_cancelled_operations() {
    for (status, error, want_code) in [
        (
            "Failed",
            json!({"code": "InternalExecutionError", "message": "boom"}),
            "InternalExecutionError",
        ),
        ("Canceled", serde_json::Value::Null, "Canceled"),
    ] {
        let base = Arc::new(parking_lot::Mutex::new(String::new()));
        let b2 = base.clone();
        let f = fake(Arc::new(move |m, _, n| {
            if *m == ::http::Method::PATCH {
                return reply(200, json!({})).header(
                    "azure-asyncoperation",
                    format!("{}/op/x?api-version=2019-12-01", b2.lock()),
                );
            }
            if n == 1 {
                // Unknown non-terminal statuses keep the wait going.
                return reply(200, json!({"status": "Running"})).header("retry-after", "0");
            }
            let mut v = json!({"status": status});
            if !error.is_null() {
                v["error"] = error.clone();
            }
            reply(200, v)
        }))
        .await;
        *base.lock() = f.base.clone();
        let c = client(&f);
        let e = c
            .patch_identity(&target(), &body())
            .await
            .expect_err(status);
        match &e {
            ArmError::OperationFailed { code, .. } => assert_eq!(code, want_code),
            other => panic!("{other:?}"),
        }
        if status == "Failed" {
            assert_eq!(e.message(), "boom");
        }
        assert_eq!(c.stats().polls, 2);
    }
}

#[tokio::test]
async fn foreign_poll_urls_are_refused() {
    // Another loopback authority: the token must not follow it.
    let f = fake(Arc::new(|_, _, _| {
        reply(200, json!({})).header("azure-asyncoperation", "http://127.0.0.2:9/op/1")
    }))
    .await;
    let c = client(&f);
    let e = c
        .patch_identity(&target(), &body())
        .await
        .expect_err("foreign");
    assert!(matches!(e, ArmError::InvalidResponse { .. }), "{e:?}");
    assert!(e.to_string().contains("refusing"), "{e}");
    assert_eq!(c.stats().polls, 0);
}

#[tokio::test]
async fn missing_retry_after_uses_a_doubling_default() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    // 429, 429, 200, 429: the default doubles, then resets after a success.
    let f = fake(Arc::new(move |_, _, _| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        if n == 2 {
            reply(200, json!({"identity": {"type": "None"}}))
        } else {
            reply(
                429,
                json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
            )
        }
    }))
    .await;
    let c = client(&f);
    let wait = |e: ArmError| e.retry_after().expect("throttled");
    assert_eq!(
        wait(c.get_identity(&target()).await.expect_err("1")),
        Duration::from_millis(200)
    );
    tokio::time::sleep(Duration::from_millis(220)).await;
    assert_eq!(
        wait(c.get_identity(&target()).await.expect_err("2")),
        Duration::from_millis(400)
    );
    tokio::time::sleep(Duration::from_millis(420)).await;
    let id = c.get_identity(&target()).await.expect("3");
    assert_eq!(id.type_, "None");
    assert_eq!(
        wait(c.get_identity(&target()).await.expect_err("4")),
        Duration::from_millis(200)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(c.stats().throttled, 3);
}

#[tokio::test]
async fn retry_after_as_http_date() {
    let f = fake(Arc::new(|_, _, _| {
        let at = jiff::Timestamp::try_from(SystemTime::now() + Duration::from_secs(3)).expect("ts");
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&at)
            .expect("date");
        reply(429, json!({})).header("retry-after", date)
    }))
    .await;
    let c = client(&f);
    let d = c
        .get_identity(&target())
        .await
        .expect_err("429")
        .retry_after()
        .expect("throttled");
    assert!(
        d >= Duration::from_secs(1) && d <= Duration::from_secs(3),
        "{d:?}"
    );
}

#[tokio::test]
async fn unavailable_without_retry_after_is_retried() {
    let f = fake(Arc::new(|_, _, n| {
        if n == 0 {
            reply(
                503,
                json!({"error": {"code": "ServiceUnavailable", "message": "later"}}),
            )
        } else {
            reply(200, json!({}))
        }
    }))
    .await;
    let c = client(&f);
    c.get_identity(&target()).await.expect("retried");
    let s = c.stats();
    assert_eq!((s.gets, s.retries, s.throttled), (2, 1, 0), "{s:?}");
}

#[tokio::test]
async fn stale_token_is_replaced_once() {
    let f = fake(Arc::new(|_, _, n| {
        if n == 0 {
            reply(
                401,
                json!({"error": {"code": "ExpiredAuthenticationToken", "message": "expired"}}),
            )
        } else {
            reply(200, json!({}))
        }
    }))
    .await;
    let c = client(&f);
    c.get_identity(&target()).await.expect("fresh token");
    assert_eq!(f.tokens.load(Ordering::SeqCst), 2);

    // A token ARM keeps refusing is re-fetched only once.
    let g = fake(Arc::new(|_, _, _| {
        reply(
            401,
            json!({"error": {"code": "InvalidAuthenticationToken", "message": "no"}}),
        )
    }))
    .await;
    let c = client(&g);
    let e = c.get_identity(&target()).await.expect_err("401");
    assert_eq!(e.status(), Some(401));
    assert_eq!(g.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(g.arm.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn throttled_poll_keeps_waiting() {
    let base = Arc::new(parking_lot::Mutex::new(String::new()));
    let b2 = base.clone();
    let f = fake(Arc::new(move |m, _, n| {
        if *m == ::http::Method::PATCH {
            return reply(200, json!({}))
                .header("azure-asyncoperation", format!("{}/op/t", b2.lock()));
        }
        if n == 1 {
            reply(429, json!({})).header("retry-after", "0")
        } else {
            reply(200, json!({"status": "Succeeded"}))
        }
    }))
    .await;
    *base.lock() = f.base.clone();
    let c = client(&f);
    c.patch_identity(&target(), &body()).await.expect("patch");
    let s = c.stats();
    assert_eq!((s.polls, s.throttled), (2, 1), "{s:?}");
    // A poll's 429 does not close the writer gate.
    c.patch_identity(&target(), &body()).await.expect("again");
}

#[tokio::test]
async fn slow_answers_time_out_after_retries() {
    let f = fake(Arc::new(|_, _, _| Reply {
        delay: Duration::from_millis(500),
        ..reply(200, json!({}))
    }))
    .await;
    let c = client_with(
        &f,
        HttpOptions {
            timeout: Duration::from_millis(100),
            ..HttpOptions::default()
        },
        opts(),
    );
    // The token endpoint answers at once; ARM is too slow for every attempt.
    let e = c.get_identity(&target()).await.expect_err("timeout");
    assert!(
        matches!(
            e,
            ArmError::Timeout {
                operation: "VMSSGet",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let f = fake(Arc::new(|_, _, _| Reply {
        body: "x".repeat(10_000),
        ..reply(200, json!({}))
    }))
    .await;
    let c = client_with(
        &f,
        HttpOptions {
            max_response_bytes: 4096,
            ..HttpOptions::default()
        },
        opts(),
    );
    let e = c.get_identity(&target()).await.expect_err("too large");
    assert!(
        matches!(
            e,
            ArmError::Transport(HttpError::BodyTooLarge { limit: 4096, .. })
        ),
        "{e:?}"
    );
}
