//! Shared fixtures for kube-sim integration tests: one simulator per test on a random loopback port.
#![allow(dead_code)]

use kube::config::{KubeConfigOptions, Kubeconfig};

/// A running simulator with an admin client.
pub struct Sim {
    pub handle: kube_sim::Handle,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
}

pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub async fn start_with(mut config: kube_sim::Config) -> Sim {
    install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    config.dir = Some(dir.path().to_path_buf());
    let handle = kube_sim::start(config).await.expect("start kube-sim");
    let kubeconfig = Kubeconfig::read_from(handle.kubeconfig.as_ref().expect("kubeconfig"))
        .expect("read kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("client config");
    let client = kube::Client::try_from(cfg).expect("client");
    Sim {
        handle,
        client,
        dir,
    }
}

pub async fn start() -> Sim {
    start_with(kube_sim::Config::default()).await
}

/// kubectl against `sim` with the admin kubeconfig and a private home, or `None` (the test is skipped, see
/// [`kube_sim::testkit::Kubectl::find`]) when kubectl is missing.
pub fn kubectl(sim: &Sim, test: &str) -> Option<kube_sim::testkit::Kubectl> {
    Some(kube_sim::testkit::Kubectl {
        bin: kube_sim::testkit::Kubectl::find(test)?,
        kubeconfig: sim.handle.kubeconfig.clone().expect("kubeconfig"),
        home: sim.dir.path().to_path_buf(),
    })
}

/// A client that authenticates with `token` instead of the admin token.
pub async fn client_with_token(sim: &Sim, token: &str) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(sim.handle.kubeconfig.as_ref().expect("kubeconfig"))
        .expect("read kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("client config");
    cfg.auth_info.token = Some(token.to_string().into());
    kube::Client::try_from(cfg).expect("client")
}

/// A raw HTTP/1.1 exchange with a plain-HTTP simulator: (status, parsed JSON body or Null).
pub async fn raw(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let (status, _, body) = raw_with_headers(addr, token, method, path, content_type, body).await;
    (status, body)
}

/// [`raw`], also returning the response headers.
pub async fn raw_with_headers(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, http::HeaderMap, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"));
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    let resp = sender
        .send_request(
            req.body(Full::new(bytes::Bytes::from(body)))
                .expect("request"),
        )
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// Start a plain-HTTP simulator (raw tests).
pub async fn start_http() -> Sim {
    start_with(kube_sim::Config {
        tls: false,
        ..kube_sim::Config::default()
    })
    .await
}
