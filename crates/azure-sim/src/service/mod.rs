//! The IO edge: listeners, TLS, request plumbing (body limits, faults, counters, the request log) and dispatch
//! to the per-family handlers.

pub mod arm;
pub mod control;
pub mod entra;
pub mod imds;
pub mod keyvault;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::form::Params;
use crate::keys::SigningKey;
use crate::oidc::OidcClient;
use crate::state::{CachedToken, Family, LogEntry, State};
use crate::tls::{CertKind, CertSet};
use crate::token::{Claims, Principal};

/// Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random GUID.
pub fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Where every endpoint listens.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// Path of the CA file clients trust (when a directory is configured).
    pub ca_file: Option<String>,
    /// Entra ID base URL (`AZURE_AUTHORITY_HOST`).
    pub entra: String,
    /// ARM base URL.
    pub arm: String,
    /// Shared Key Vault URL (vault chosen by Host).
    pub keyvault: String,
    /// Control API base URL.
    pub control: String,
    /// SNI-routing front listener.
    pub front: Option<String>,
    /// IMDS base URL per node (`AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    pub imds: BTreeMap<String, String>,
    /// Per-vault URLs.
    pub vaults: BTreeMap<String, String>,
}

/// What a listener serves.
#[derive(Debug, Clone)]
pub enum Target {
    /// IMDS of one node.
    Imds(String),
    /// Entra ID.
    Entra,
    /// ARM.
    Arm,
    /// Key Vault; `Some` pins the vault.
    KeyVault(Option<String>),
    /// Routed by SNI / Host.
    Front,
    /// Control API.
    Control,
}

struct ListenerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

#[derive(Default)]
struct Listeners {
    imds: BTreeMap<String, ListenerHandle>,
    vaults: BTreeMap<String, ListenerHandle>,
}

/// A running simulator's shared parts.
pub struct Sim {
    /// Mutable state.
    pub state: State,
    /// The Entra signing key.
    pub key: SigningKey,
    /// PEM of the CA.
    pub ca_pem: String,
    /// Serving certificates.
    pub certs: Arc<CertSet>,
    /// Federated issuer client.
    pub oidc: OidcClient,
    /// Configuration (its `world` is the initial world).
    pub config: Config,
    /// Current endpoints.
    pub endpoints: RwLock<Endpoints>,
    /// The bounded HTTP server every listener runs: `config.limits`, one connection table and one set of
    /// counters for the whole simulator (control API `GET /metrics`).
    pub server: Arc<podid_serve::Server>,
    listeners: Mutex<Listeners>,
    shutdown: watch::Receiver<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Sim {
    pub(crate) fn new(
        config: Config,
        key: SigningKey,
        ca_pem: String,
        certs: Arc<CertSet>,
        oidc: OidcClient,
        shutdown: watch::Receiver<bool>,
    ) -> Sim {
        let server = podid_serve::Server::new(config.limits);
        Sim {
            state: State::new(
                config.world.clone(),
                config.settings.clone(),
                config.log_capacity,
            ),
            key,
            ca_pem,
            certs,
            oidc,
            config,
            endpoints: RwLock::new(Endpoints::default()),
            server,
            listeners: Mutex::new(Listeners::default()),
            shutdown,
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn push_task(&self, t: tokio::task::JoinHandle<()>) {
        self.tasks.lock().push(t);
    }

    pub(crate) fn take_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock())
    }

    /// Stop every dynamic listener.
    pub(crate) fn stop_listeners(&self) {
        let l = self.listeners.lock();
        for h in l.imds.values().chain(l.vaults.values()) {
            let _ = h.stop.send(true);
        }
    }

    /// The authority Key Vault names in its challenge.
    pub fn keyvault_authority(&self) -> String {
        self.config
            .keyvault_authority
            .clone()
            .unwrap_or_else(|| self.endpoints.read().entra.clone())
    }

    /// Issue (or reuse) an access token.
    pub fn issue_token(
        &self,
        p: &Principal,
        audience: &str,
        version: u8,
        issuer_host: &str,
        lifetime: i64,
        now: i64,
    ) -> CachedToken {
        let key = format!(
            "{}|{}|{}|{}|{}|{audience}|{version}|{issuer_host}|{lifetime}",
            p.tenant_id,
            p.app_id,
            p.object_id,
            p.mirid.as_deref().unwrap_or(""),
            p.acr
        );
        if let Some(t) = self.state.cached_token(&key, now) {
            return t;
        }
        let uti = crate::jwt::b64url(uuid::Uuid::new_v4().as_bytes());
        let claims = Claims {
            principal: p,
            audience,
            version,
            issuer_host,
            now,
            lifetime,
            uti: &uti,
        }
        .to_json();
        let t = CachedToken {
            token: Arc::from(self.key.sign(&claims)),
            expires_on: now + lifetime,
            not_before: now - 300,
            issued: now,
        };
        self.state.cache_token(key, t.clone());
        t
    }

    /// Start listeners for new nodes and vaults, stop those of removed ones, refresh the endpoints.
    pub(crate) fn sync_listeners(self: &Arc<Self>) -> anyhow::Result<()> {
        let (nodes, vaults): (Vec<String>, Vec<String>) = {
            let w = self.state.world.read();
            (
                w.index.node_names().cloned().collect(),
                w.world.key_vaults.iter().map(|v| v.name.clone()).collect(),
            )
        };
        let mut l = self.listeners.lock();
        l.imds.retain(|n, h| {
            let keep = nodes.contains(n);
            if !keep {
                let _ = h.stop.send(true);
            }
            keep
        });
        l.vaults.retain(|n, h| {
            let keep = vaults.contains(n);
            if !keep {
                let _ = h.stop.send(true);
            }
            keep
        });
        let host = self.config.listen_host;
        for n in nodes {
            if l.imds.contains_key(&n) {
                continue;
            }
            let addr = self
                .config
                .imds_listen
                .get(&n)
                .copied()
                .unwrap_or_else(|| SocketAddr::new(host, 0));
            let h = self.spawn_listener(addr, Target::Imds(n.clone()), None)?;
            l.imds.insert(n, h);
        }
        for v in vaults {
            if l.vaults.contains_key(&v) {
                continue;
            }
            let addr = match self.config.vault_listen.get(&v) {
                Some(a) => *a,
                None if self.config.per_vault_listeners => SocketAddr::new(host, 0),
                None => continue,
            };
            let tls = Some(self.certs.server_config(CertKind::Vault)?);
            let h = self.spawn_listener(addr, Target::KeyVault(Some(v.clone())), tls)?;
            l.vaults.insert(v, h);
        }
        let mut e = self.endpoints.write();
        e.imds = l
            .imds
            .iter()
            .map(|(n, h)| (n.clone(), format!("http://{}", h.addr)))
            .collect();
        e.vaults = l
            .vaults
            .iter()
            .map(|(n, h)| (n.clone(), format!("https://{}", h.addr)))
            .collect();
        let snapshot = e.clone();
        drop(e);
        drop(l);
        self.write_endpoints(&snapshot);
        Ok(())
    }

    fn spawn_listener(
        self: &Arc<Self>,
        addr: SocketAddr,
        target: Target,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<ListenerHandle> {
        let std_l = std::net::TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("bind {addr} for {target:?}: {e}"))?;
        std_l.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_l)?;
        let local = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(self.clone(), listener, tls, target, stop_rx));
        self.push_task(task);
        Ok(ListenerHandle {
            addr: local,
            stop: stop_tx,
        })
    }

    pub(crate) fn write_endpoints(&self, e: &Endpoints) {
        if let Some(dir) = &self.config.dir {
            let text = serde_json::to_vec_pretty(e).unwrap_or_default();
            if let Err(err) = sim_tls::write_private(&dir.join("endpoints.json"), &text) {
                tracing::warn!(error = %err, "could not write endpoints.json");
            }
        }
    }
}

/// A request as the handlers see it.
pub struct Req {
    /// Method.
    pub method: Method,
    /// Path.
    pub path: String,
    /// Raw query.
    pub query: Option<String>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// `Host` (with port) as the client sent it, else the SNI name, else the local address.
    pub host: String,
}

impl Req {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Parsed query.
    pub fn params(&self) -> Params {
        Params::query(self.query.as_deref())
    }

    /// The host without its port.
    pub fn hostname(&self) -> &str {
        host_only(&self.host)
    }
}

/// Strip a port (and IPv6 brackets) from a host.
pub fn host_only(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((a, p)) if p.chars().all(|c| c.is_ascii_digit()) && !a.contains(':') => a,
        _ => h,
    }
}

/// A response being built.
pub struct Resp {
    /// Status.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Bytes,
    /// Note for the request log (error code).
    pub note: String,
    /// Parameters for the request log (redacted).
    pub params: Vec<(String, String)>,
}

impl Resp {
    /// JSON from a value.
    pub fn json(status: u16, v: &Value) -> Resp {
        Resp::raw_json(status, serde_json::to_string(v).unwrap_or_default())
    }

    /// JSON from text.
    pub fn raw_json(status: u16, text: String) -> Resp {
        Resp {
            status,
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
            body: Bytes::from(text),
            note: String::new(),
            params: Vec::new(),
        }
    }

    /// Plain text.
    pub fn text(status: u16, text: impl Into<String>) -> Resp {
        Resp {
            content_type: "text/plain; charset=utf-8",
            ..Resp::raw_json(status, text.into())
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Resp {
        self.headers.push((name, value.into()));
        self
    }

    /// Set the log note.
    pub fn note(mut self, n: impl Into<String>) -> Resp {
        self.note = n.into();
        self
    }

    fn into_http(self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.append(k, v);
            }
        }
        r
    }
}

/// The connection was dropped on purpose (fault injection).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Serve connections until `stop` (or the simulator) shuts down, within `sim.server`'s limits.
pub(crate) async fn serve(
    sim: Arc<Sim>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    target: Target,
    mut stop: watch::Receiver<bool>,
) {
    let mut shutdown = sim.shutdown.clone();
    let server = sim.server.clone();
    let run = server.listen(listener).tls(tls).run(
        move |conn: &podid_serve::Conn| {
            let (sim, target) = (sim.clone(), target.clone());
            let (peer, local, sni) = (conn.remote, conn.local, conn.sni.clone());
            hyper::service::service_fn(move |req| {
                handle(sim.clone(), target.clone(), req, peer, local, sni.clone())
            })
        },
        async move {
            tokio::select! {
                () = stopped(&mut stop) => {}
                () = stopped(&mut shutdown) => {}
            }
        },
    );
    run.await;
}

/// Resolves when the flag turns true; never when its sender is gone without setting it.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn family_of(target: &Target, host: &str, sni: Option<&str>) -> Option<Family> {
    Some(match target {
        Target::Imds(_) => Family::Imds,
        Target::Entra => Family::Entra,
        Target::Arm => Family::Arm,
        Target::KeyVault(_) => Family::Keyvault,
        Target::Control => Family::Control,
        Target::Front => match crate::tls::kind_of_host(host_only(host))
            .or_else(|| sni.and_then(crate::tls::kind_of_host))?
        {
            CertKind::Entra => Family::Entra,
            CertKind::Arm => Family::Arm,
            CertKind::Vault => Family::Keyvault,
        },
    })
}

/// The error response a family gives for an injected status.
fn fault_response(f: Family, status: u16, retry_after: Option<u64>) -> Resp {
    let now = now_secs();
    let r = match f {
        Family::Imds => Resp::json(
            status,
            &serde_json::json!({"error": if status == 429 { "too_many_requests" } else { "service_unavailable" },
                "error_description": if status == 429 { "Too many requests" } else { "The service is temporarily unavailable" }}),
        ),
        Family::Entra => {
            let e = crate::entra::EntraError::temporarily_unavailable(status);
            Resp::json(status, &e.body(&guid(), &guid(), now))
        }
        Family::Arm => Resp::json(status, &crate::arm::ArmError::transient(status).body()),
        Family::Keyvault => Resp::json(status, &crate::keyvault::KvError::transient(status).body()),
        Family::Control => Resp::json(
            status,
            &serde_json::json!({"error": {"code": "Fault", "message": "injected"}}),
        ),
    };
    let r = r.note(format!("fault {status}"));
    match retry_after {
        Some(s) => r.header("retry-after", s.to_string()),
        None => r,
    }
}

fn too_large(f: Family, limit: usize) -> Resp {
    let msg = format!("The request body exceeds the maximum size of {limit} bytes.");
    let r = match f {
        Family::Entra => Resp::json(
            413,
            &crate::entra::EntraError::new(413, "invalid_request", 90023, msg).body(
                &guid(),
                &guid(),
                now_secs(),
            ),
        ),
        Family::Arm => Resp::json(
            413,
            &crate::arm::ArmError::new(413, "RequestEntityTooLarge", msg).body(),
        ),
        Family::Keyvault => Resp::json(
            413,
            &serde_json::json!({"error": {"code": "RequestEntityTooLarge", "message": msg}}),
        ),
        Family::Imds => Resp::json(
            413,
            &serde_json::json!({"error": "invalid_request", "error_description": msg}),
        ),
        Family::Control => Resp::json(
            413,
            &serde_json::json!({"error": {"code": "RequestEntityTooLarge", "message": msg}}),
        ),
    };
    r.note("body too large")
}

async fn handle(
    sim: Arc<Sim>,
    target: Target,
    req: Request<Incoming>,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    sni: Option<String>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .or_else(|| sni.clone())
        .or_else(|| local.map(|l| l.to_string()))
        .unwrap_or_default();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let Some(family) = family_of(&target, &host, sni.as_deref()) else {
        return Ok(Resp::json(404, &serde_json::json!({"error": {"code": "UnknownHost", "message": format!("no Azure endpoint is served for host '{host}'")}})).into_http());
    };
    let limit = sim.config.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<usize>().ok());
    let body = if declared.is_some_and(|l| l > limit) {
        Err(podid_serve::BodyError::TooLarge { limit })
    } else {
        sim.server.read_body(body, limit).await
    };
    let mut resp = match body {
        Err(podid_serve::BodyError::TooLarge { .. }) => too_large(family, limit),
        Err(podid_serve::BodyError::TimedOut) => {
            Resp::text(408, "the request body did not arrive in time").note("body timeout")
        }
        Err(podid_serve::BodyError::Read(_)) => {
            Resp::text(400, "error reading request body").note("bad body")
        }
        Ok(body) => {
            let fault = if family == Family::Control {
                None
            } else {
                sim.state.take_fault(family)
            };
            let mut injected = None;
            if let Some(a) = fault {
                if a.latency_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(a.latency_ms)).await;
                }
                if a.drop {
                    sim.state.count(family, 0);
                    sim.state.log(LogEntry {
                        seq: 0,
                        time_ms: now_ms(),
                        family,
                        method: method.to_string(),
                        path,
                        params: Params::query(parts.uri.query()).redacted(),
                        status: 0,
                        duration_us: started.elapsed().as_micros() as u64,
                        peer: peer.to_string(),
                        note: "dropped (fault)".into(),
                    });
                    return Err(Dropped);
                }
                if let Some(s) = a.status {
                    injected = Some(fault_response(family, s, a.retry_after));
                }
            }
            match injected {
                Some(r) => r,
                None => {
                    let r = Req {
                        method: method.clone(),
                        path: path.clone(),
                        query: parts.uri.query().map(str::to_string),
                        headers: parts.headers,
                        body,
                        host,
                    };
                    match &target {
                        Target::Imds(node) => imds::handle(&sim, node, &r),
                        Target::KeyVault(pin) => keyvault::handle(&sim, pin.as_deref(), &r).await,
                        Target::Control => control::handle(&sim, &r).await,
                        _ => match family {
                            Family::Entra => entra::handle(&sim, &r).await,
                            Family::Arm => arm::handle(&sim, &r).await,
                            Family::Keyvault => keyvault::handle(&sim, None, &r).await,
                            Family::Imds | Family::Control => Resp::text(404, "not found"),
                        },
                    }
                }
            }
        }
    };
    sim.state.count(family, resp.status);
    if family != Family::Control {
        let params = std::mem::take(&mut resp.params);
        sim.state.log(LogEntry {
            seq: 0,
            time_ms: now_ms(),
            family,
            method: method.to_string(),
            path,
            params: if params.is_empty() {
                Params::query(parts.uri.query()).redacted()
            } else {
                params
            },
            status: resp.status,
            duration_us: started.elapsed().as_micros() as u64,
            peer: peer.to_string(),
            note: std::mem::take(&mut resp.note),
        });
    }
    Ok(resp.into_http())
}
