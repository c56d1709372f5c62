//! The token server: upstream NMI's routes, status codes and bodies (reference §3.2–§3.7, Appendix B), with
//! podid's fixes: instant refusals, watch-driven waiting, a token cache, one live pod lookup on a cache miss,
//! ambiguous IPs refused, and the anti-spoofing check on bridged networks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use parking_lot::Mutex;
use podid_azure::http::HttpClient;
use podid_azure::pod_tokens::{
    BoxFuture, Material, PodToken, PodTokenError, PodTokenProvider, SpSecret, TokenSpec,
};
use podid_core::nmi::decide::{
    self, Caller, Decision, FetchPlan, Policy, Refusal, SecretKind, TokenRequest, WaitBudget, World,
};
use podid_core::nmi::limit::{BudgetConfig, ResourceBudget, cut};
use podid_core::nmi::pods::{Lookup, PodEntry, canonical};
use podid_core::nmi::reply::{Reply, TokenBody, host_token_reply, token_reply};
use podid_core::nmi::request::{Route, Wanted, metadata_header_ok, route};
use podid_net::peer::{PeerChecker, PeerVerdict};

use crate::args::Mode;
use crate::state::{Shared, pod_entry};

/// Largest request body proxied to IMDS, bytes.
const MAX_PROXY_BODY_BYTES: usize = 1024 * 1024;
/// Longest wait for a proxied request's body (the shared servers' body-read timeout).
const PROXY_BODY_READ_TIMEOUT: Duration = Duration::from_secs(podid_serve::BODY_READ_TIMEOUT_SECS);
/// Deadline of the live pod lookup made on an index miss.
const LIVE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Lifetime requested for those service-account tokens, seconds.
const SA_TOKEN_SECONDS: i64 = 3600;
/// Peer checks running at once: the checker is one netlink socket, so more would only park blocking threads
/// (2,000 connections once parked 515 threads behind its mutex); callers wait asynchronously instead.
const MAX_CONCURRENT_PEER_CHECKS: usize = 1;
/// Requests of one source address (one pod) handled at once; more wait their turn (HTTP/1 has one request in
/// flight per connection, so this bounds what a pod with many connections takes from the node).
pub const MAX_REQUESTS_IN_FLIGHT_PER_POD: usize = 4;
pub use podid_core::nmi::decide::MAX_RESOURCE_BYTES;

/// One TCP connection's anti-spoofing verdict. The peer of a TCP connection cannot change while it lasts, so the
/// check runs on the connection's first token request (and once more before that request's answer), and later
/// requests on the same connection reuse its verdict: a pod holding thousands of keep-alive connections costs
/// one check per connection, not one per request.
#[derive(Debug, Default)]
pub struct Connection {
    verdict: tokio::sync::OnceCell<Result<(), Reply>>,
}

/// Request slots per source address (fairness between pods).
type InFlight = Mutex<std::collections::HashMap<IpAddr, Arc<tokio::sync::Semaphore>>>;

/// Addresses whose idle slot entries are kept (a node's pods, with room to spare): below this, a pod's next
/// request reuses its entry instead of allocating one; above it, idle entries are swept.
const MAX_IDLE_POD_SLOTS: usize = 1024;

/// A request's slot; idle entries are swept once the map holds more than [`MAX_IDLE_POD_SLOTS`] addresses.
struct PodTurn<'a> {
    map: &'a InFlight,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for PodTurn<'_> {
    fn drop(&mut self) {
        self.permit.take();
        let mut map = self.map.lock();
        if map.len() > MAX_IDLE_POD_SLOTS {
            // This turn's permit is gone: an entry only the map references is idle (nobody waits or runs there).
            map.retain(|_, sem| Arc::strong_count(sem) > 1);
        }
    }
}

/// Per source address: when its check started, and where its verdict will appear.
type PeerFlights = Mutex<
    std::collections::HashMap<
        IpAddr,
        (
            Instant,
            tokio::sync::watch::Receiver<Option<Result<(), Reply>>>,
        ),
    >,
>;

/// Removes a finished (or abandoned) check from the flights.
struct FlightGuard<'a> {
    flights: &'a PeerFlights,
    ip: IpAddr,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.flights.lock().remove(&self.ip);
    }
}

/// What the handlers need from the flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// Operation mode.
    pub mode: Mode,
    /// Namespaced matching.
    pub force_namespaced: bool,
    /// `--MICNamespace`.
    pub mic_namespace: String,
    /// `--block-instance-metadata`.
    pub block_instance_metadata: bool,
    /// `--metadata-header-required`.
    pub metadata_header_required: bool,
    /// `--set-retry-after-header`.
    pub retry_after_header: bool,
    /// Attempts while `Created`.
    pub retry_created: u32,
    /// Further attempts for `Assigned`.
    pub retry_assigned: u32,
    /// Seconds per attempt.
    pub retry_interval_secs: u64,
    /// This node.
    pub node: String,
    /// Where proxied requests go.
    pub imds_base: String,
    /// Cluster identity protection (cloud config, deny-list, opt-in namespaces).
    pub protected: podid_core::protect::ProtectedIdentities,
    /// New resources a pod may ask for (burst, then per minute).
    pub resource_budget: BudgetConfig,
}

/// The token server's state.
pub struct Agent {
    /// Watched state.
    pub shared: Arc<Shared>,
    /// Flags.
    pub cfg: Config,
    /// The decision's settings (from the flags).
    policy: Policy,
    client: kube::Client,
    tokens: PodTokenProvider,
    http: HttpClient,
    peer: Option<Arc<Mutex<PeerChecker>>>,
    /// Bounds the blocking peer checks in flight.
    peer_checks: tokio::sync::Semaphore,
    /// The check in flight per source address (see `check_peer`).
    peer_flights: PeerFlights,
    /// Request slots per source address.
    in_flight: InFlight,
    /// New resources per pod (fairness: one pod cannot turn into thousands of upstream calls).
    budget: Mutex<ResourceBudget>,
    /// The budget's clock.
    started: Instant,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A handler's failure: the reply plus the pod namespace for metrics.
type Answer = (Reply, String, String);

impl Agent {
    /// Wire the server.
    pub fn new(
        shared: Arc<Shared>,
        cfg: Config,
        client: kube::Client,
        tokens: PodTokenProvider,
        http: HttpClient,
        peer: Option<PeerChecker>,
    ) -> Agent {
        let budget = Mutex::new(ResourceBudget::new(cfg.resource_budget));
        let policy = Policy {
            mode: match cfg.mode {
                Mode::Standard => decide::Mode::Standard,
                Mode::Managed => decide::Mode::Managed,
                Mode::Federated => decide::Mode::Federated,
            },
            force_namespaced: cfg.force_namespaced,
            mic_namespace: cfg.mic_namespace.clone(),
            protected: cfg.protected.clone(),
            wait: WaitBudget {
                retry_created: cfg.retry_created,
                retry_assigned: cfg.retry_assigned,
                retry_interval_secs: cfg.retry_interval_secs,
            },
        };
        Agent {
            shared,
            cfg,
            policy,
            client,
            tokens,
            http,
            peer: peer.map(|p| Arc::new(Mutex::new(p))),
            peer_checks: tokio::sync::Semaphore::new(MAX_CONCURRENT_PEER_CHECKS),
            peer_flights: Mutex::default(),
            in_flight: Mutex::default(),
            budget,
            started: Instant::now(),
        }
    }

    /// The token provider (stats for metrics and benches).
    pub fn tokens(&self) -> &PodTokenProvider {
        &self.tokens
    }

    /// Handle one request from `peer` on connection `conn`.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        conn: &Connection,
    ) -> Response<Full<Bytes>> {
        let started = Instant::now();
        // Fairness: a pod's requests are handled at most MAX_REQUESTS_IN_FLIGHT_PER_POD at a time; the rest
        // wait without using the CPU, so a pod with thousands of connections cannot crowd out its neighbours.
        let _turn = self.pod_turn(canonical(peer.ip())).await;
        let r = route(req.uri().path(), self.cfg.block_instance_metadata);
        let label = match &r {
            Route::Token => "/metadata/identity/oauth2/token",
            Route::HostToken => "/host/token",
            Route::Proxy => "proxy",
            Route::BlockedInstance => "/metadata/instance",
            Route::InvalidTokenPath | Route::Redirect(_) | Route::BadRequest => "invalid",
        };
        let (reply, ns, resource) = match r {
            Route::Redirect(to) => (Reply::redirect(to), String::new(), String::new()),
            Route::InvalidTokenPath => (Reply::invalid_request(), String::new(), String::new()),
            Route::BadRequest => (Reply::bad_request(), String::new(), String::new()),
            Route::BlockedInstance => (Reply::instance_blocked(), String::new(), String::new()),
            Route::Token => {
                self.token(
                    req.headers(),
                    peer.ip(),
                    conn,
                    req.uri().query().unwrap_or(""),
                )
                .await
            }
            Route::HostToken => {
                self.host_token(req.headers(), peer.ip(), req.uri().query().unwrap_or(""))
                    .await
            }
            Route::Proxy => {
                return self.proxy(req, started, label).await;
            }
        };
        let status = reply.status;
        self.shared.metrics.request(
            label,
            status,
            &ns,
            &cut(&resource),
            started.elapsed().as_secs_f64(),
        );
        tracing::debug!(
            "status ({status}) took {} ns for req.method={} reg.path={label} req.remote={}",
            started.elapsed().as_nanos(),
            "GET",
            peer.ip()
        );
        to_response(reply)
    }

    /// Waits for one of the source address's request slots.
    async fn pod_turn(&self, ip: IpAddr) -> PodTurn<'_> {
        let sem = self
            .in_flight
            .lock()
            .entry(ip)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT_PER_POD))
            })
            .clone();
        let permit = sem.acquire_owned().await.ok();
        PodTurn {
            map: &self.in_flight,
            permit,
        }
    }

    /// The anti-spoofing check for `ip`, coalesced per source address: a request joins a check of the same
    /// address only when that check started after the request asked (so it saw the neighbour table as it is now,
    /// after this request's handshake); otherwise it waits for that check to end and starts a new one. A pod
    /// with thousands of connections thus costs a handful of checks, and its neighbours' checks never queue
    /// behind them.
    async fn check_peer(&self, ip: IpAddr) -> Result<(), Reply> {
        let r = self.check_peer_coalesced(ip).await;
        if r.is_err() {
            self.shared.metrics.spoof_refused.inc();
        }
        r
    }

    async fn check_peer_coalesced(&self, ip: IpAddr) -> Result<(), Reply> {
        if self.peer.is_none() {
            return Ok(());
        }
        let ip = canonical(ip);
        if ip.is_loopback() {
            return Ok(());
        }
        let asked = Instant::now();
        loop {
            let (mut rx, tx, joined) = {
                let mut flights = self.peer_flights.lock();
                match flights.get(&ip) {
                    Some((started, rx)) => (rx.clone(), None, *started >= asked),
                    None => {
                        let (tx, rx) = tokio::sync::watch::channel(None);
                        flights.insert(ip, (Instant::now(), rx.clone()));
                        (rx, Some(tx), false)
                    }
                }
            };
            if let Some(tx) = tx {
                // Our flight: the entry goes when it ends, even if this request is dropped mid-check (waiters
                // then see the sender gone and start their own).
                let done = FlightGuard {
                    flights: &self.peer_flights,
                    ip,
                };
                let r = self.run_peer_check(ip).await;
                // Out of the map first, so a waiter that may not join this flight finds none and starts anew.
                drop(done);
                let _ = tx.send(Some(r.clone()));
                return r;
            }
            match rx.wait_for(Option::is_some).await {
                Ok(v) if joined => {
                    self.shared.metrics.peer_checks_reused.inc();
                    return v.clone().unwrap_or(Ok(()));
                }
                // An older flight ended (or its owner went away): start or join a fresh one.
                _ => continue,
            }
        }
    }

    /// One peer check on the blocking pool, at most [`MAX_CONCURRENT_PEER_CHECKS`] at a time.
    async fn run_peer_check(&self, ip: IpAddr) -> Result<(), Reply> {
        let Some(checker) = self.peer.clone() else {
            return Ok(());
        };
        let _permit = self
            .peer_checks
            .acquire()
            .await
            .map_err(|_| Refusal::ShuttingDown.reply(false))?;
        self.shared.metrics.peer_checks.inc();
        let verdict = tokio::task::spawn_blocking(move || checker.lock().check(ip))
            .await
            .map_err(|e| Refusal::PeerCheckFailed(e.to_string()).reply(false))?;
        match verdict {
            Ok(PeerVerdict::Verified { .. } | PeerVerdict::NotApplicable { .. }) => Ok(()),
            Ok(PeerVerdict::Refused { reason }) => {
                tracing::warn!(pod_ip = %ip, %reason, "request refused by the anti-spoofing check");
                Err(Refusal::Spoofed {
                    ip,
                    reason: reason.to_string(),
                }
                .reply(false))
            }
            Err(e) => {
                tracing::warn!(pod_ip = %ip, error = %e, "anti-spoofing check failed; refusing");
                Err(Refusal::Unverified {
                    ip,
                    error: e.to_string(),
                }
                .reply(false))
            }
        }
    }

    /// The connection's verdict, checked on its first token request; `Ok(true)` when this call ran the check
    /// (the request then checks once more before answering).
    async fn check_connection(&self, conn: &Connection, ip: IpAddr) -> Result<bool, Reply> {
        if self.peer.is_none() {
            return Ok(false);
        }
        if let Some(v) = conn.verdict.get() {
            self.shared.metrics.peer_checks_reused.inc();
            if v.is_err() {
                self.shared.metrics.spoof_refused.inc();
            }
            return v.clone().map(|()| false);
        }
        conn.verdict
            .get_or_init(|| self.check_peer(ip))
            .await
            .clone()
            .map(|()| true)
    }

    /// The pod's budget of new resources (fairness): 429 with Retry-After when spent.
    fn spend_budget(&self, pod: &PodEntry, resource: &str) -> Result<(), Refusal> {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let key = if pod.uid.is_empty() {
            format!("{}/{}", pod.namespace, pod.name)
        } else {
            pod.uid.clone()
        };
        self.budget
            .lock()
            .admit(&key, resource, now_ms)
            .map_err(|secs| {
                self.shared.metrics.budget_refused.inc();
                tracing::warn!(ns = %pod.namespace, pod = %pod.name, resource = %cut(resource), "pod asked for too many new resources; refused with 429");
                Refusal::Budget {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    burst: self.cfg.resource_budget.burst,
                    per_minute: self.cfg.resource_budget.per_minute,
                    retry_after_secs: secs,
                }
            })
    }

    /// A pod's token request: parse, the connection's peer check, the pod, then the decision machine
    /// ([`podid_core::nmi::decide`]) driven with the watches, the budget and the token fetch.
    async fn token(
        &self,
        headers: &HeaderMap,
        ip: IpAddr,
        conn: &Connection,
        raw_query: &str,
    ) -> Answer {
        let ra = self.cfg.retry_after_header;
        let none = |r: Refusal| (r.reply(ra), String::new(), String::new());
        let req = match TokenRequest::parse(
            raw_query,
            headers.get("metadata").map(|v| v.as_bytes()),
            self.cfg.metadata_header_required,
        ) {
            Ok(req) => req,
            Err(r) => return none(r),
        };
        let fresh = match self.check_connection(conn, ip).await {
            Ok(fresh) => fresh,
            Err(r) => return (r, String::new(), String::new()),
        };
        let pod = match self.find_pod(ip).await {
            Ok(p) => p,
            Err(r) => return none(r),
        };
        let ns = pod.namespace.clone();
        let resource = req.resource.clone();
        let exempt = {
            let exceptions = self.shared.exceptions_in(&pod.namespace);
            decide::is_exempt(&self.policy, &caller(&pod), exceptions.iter())
        };
        let decision = if exempt {
            decide::exempt(&req.wanted)
        } else {
            self.select(&pod, &req.wanted).await
        };
        let reply = match self.serve(decision, &pod, &req.resource, true).await {
            Ok(tokens) => {
                let now = now_secs();
                let bodies: Vec<TokenBody> = tokens.iter().map(|t| body(t, now)).collect();
                token_reply(&bodies)
            }
            Err(r) => r.reply(ra),
        };
        // Checked again before answering the connection's first request: a spoofer must hold the victim's
        // address for the whole exchange.
        if reply.status == 200
            && fresh
            && let Err(r) = self.check_peer(ip).await
        {
            return (r, ns, resource);
        }
        (reply, ns, resource)
    }

    /// A decision carried out: the budget (pod requests), then the plan's token fetch.
    async fn serve(
        &self,
        decision: Decision,
        pod: &PodEntry,
        resource: &str,
        budget: bool,
    ) -> Result<Vec<PodToken>, Refusal> {
        let plan = match decision {
            Decision::Fetch { plan, .. } => plan,
            Decision::Refuse(r) => return Err(r),
            // `select` only returns once the wait is over.
            Decision::Wait { .. } => return Err(Refusal::ShuttingDown),
        };
        if budget {
            self.spend_budget(pod, resource)?;
        }
        let plan = plan?;
        let exempt = matches!(plan, FetchPlan::NodeImds { .. });
        self.get_tokens(&token_spec(plan), resource, pod)
            .await
            .map_err(|e| {
                if exempt {
                    Refusal::NodeTokenFailed(e.to_string())
                } else {
                    Refusal::TokenFailed {
                        status: e.http_status(),
                        message: e.to_string(),
                    }
                }
            })
    }

    /// The pod owning `ip`: the index, then one live lookup.
    async fn find_pod(&self, ip: IpAddr) -> Result<Arc<PodEntry>, Refusal> {
        let ip = canonical(ip);
        let first = self.shared.pods.read().lookup(ip);
        match first {
            Lookup::Found(p) => return Ok(p),
            Lookup::Ambiguous(pods) => return Err(Refusal::PodAmbiguous { ip, pods }),
            Lookup::Missing => {}
        }
        let api: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!(
            "spec.nodeName={},status.podIP={ip}",
            self.cfg.node
        ));
        match tokio::time::timeout(LIVE_LOOKUP_TIMEOUT, api.list(&lp)).await {
            Ok(Ok(list)) => {
                let found: Vec<PodEntry> = list.items.iter().map(pod_entry).collect();
                if !found.is_empty() {
                    self.shared.apply_pods(found);
                }
            }
            Ok(Err(e)) => {
                self.shared.metrics.kube_error("get_pod_list");
                tracing::warn!(pod_ip = %ip, error = %e, "live pod lookup failed");
                return Err(Refusal::PodLookupFailed {
                    ip,
                    error: Some(e.to_string()),
                });
            }
            Err(_) => {
                self.shared.metrics.kube_error("get_pod_list");
                return Err(Refusal::PodLookupFailed { ip, error: None });
            }
        }
        match self.shared.pods.read().lookup(ip) {
            Lookup::Found(p) => Ok(p),
            Lookup::Ambiguous(pods) => Err(Refusal::PodAmbiguous { ip, pods }),
            Lookup::Missing => Err(Refusal::PodNotOnNode {
                ip,
                node: self.cfg.node.clone(),
            }),
        }
    }

    /// The machine's identity selection, driven: each round reads the watched state; a `Wait` sleeps until the
    /// watches change or its deadline passes (standard mode's wait for the controller, within budget).
    async fn select(&self, pod: &PodEntry, wanted: &Wanted) -> Decision {
        let start = Instant::now();
        let standard = self.policy.mode == decide::Mode::Standard;
        let mut rx = self.shared.subscribe();
        loop {
            rx.borrow_and_update();
            let aais = if standard {
                self.shared.assigned_for(&pod.namespace, &pod.name)
            } else {
                Vec::new()
            };
            let bindings = self.shared.binding_list();
            let decision = {
                let identities = self.shared.identities.read();
                let world = World {
                    bindings: &bindings,
                    identities: &identities,
                    assigned: &aais,
                };
                decide::select(&self.policy, &caller(pod), &world, wanted, start.elapsed())
            };
            let Decision::Wait { until, .. } = decision else {
                return decision;
            };
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Decision::Refuse(Refusal::ShuttingDown); },
                _ = tokio::time::sleep_until((start + until).into()) => {}
            }
        }
    }

    /// Tokens for an authorised spec (cache, coalescing and refresh in the provider), timed for the upstream
    /// `imds_operations_*` metrics.
    async fn get_tokens(
        &self,
        spec: &TokenSpec,
        resource: &str,
        pod: &PodEntry,
    ) -> Result<Vec<PodToken>, PodTokenError> {
        let op = match spec {
            TokenSpec::Imds {
                client_id: None,
                resource_id: None,
            } => "adal_token_msi",
            TokenSpec::Imds { .. } => "adal_token_msi_userassignedid",
            _ => "adal_token",
        };
        let material: Arc<dyn Material> = Arc::new(PodMaterial {
            client: self.client.clone(),
            shared: self.shared.clone(),
            pod: pod.clone(),
        });
        let started = Instant::now();
        let r = self.tokens.get(spec, resource, material).await;
        self.shared
            .metrics
            .token_call(op, started.elapsed().as_secs_f64(), r.is_err());
        r
    }

    async fn host_token(&self, headers: &HeaderMap, ip: IpAddr, raw_query: &str) -> Answer {
        let none = |r: Refusal| (r.reply(false), String::new(), String::new());
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (req, podns, podname) =
            match TokenRequest::parse_host(raw_query, &h("podns"), &h("podname"), ip) {
                Ok(r) => r,
                Err(r) => return none(r),
            };
        let pod = match self.pod_by_name(&podns, &podname).await {
            Ok(p) => p,
            Err(r) => return none(r),
        };
        let resource = req.resource.clone();
        let decision = self.select(&pod, &req.wanted).await;
        let client_id = match &decision {
            Decision::Fetch {
                identity: Some(id), ..
            } => id.client_id.clone(),
            Decision::Refuse(r) => return (r.host_selection_reply(), podns, resource),
            _ => String::new(),
        };
        let reply = match self.serve(decision, &pod, &req.resource, false).await {
            Ok(tokens) => match tokens.first() {
                Some(t) => host_token_reply(&body(t, now_secs()), &client_id),
                None => Refusal::NoToken.reply(false),
            },
            Err(r) => r.reply(false),
        };
        (reply, podns, resource)
    }

    async fn pod_by_name(&self, ns: &str, name: &str) -> Result<Arc<PodEntry>, Refusal> {
        if let Some(p) = self.shared.pods.read().get(ns, name) {
            return Ok(p);
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let failed = |error: Option<String>| Refusal::PodGetFailed {
            namespace: ns.to_string(),
            name: name.to_string(),
            error,
        };
        match tokio::time::timeout(LIVE_LOOKUP_TIMEOUT, api.get_opt(name)).await {
            Ok(Ok(Some(p))) => Ok(Arc::new(pod_entry(&p))),
            Ok(Ok(None)) => Err(Refusal::PodNotFound {
                namespace: ns.to_string(),
                name: name.to_string(),
            }),
            Ok(Err(e)) => {
                self.shared.metrics.kube_error("get_pod_list");
                Err(failed(Some(e.to_string())))
            }
            Err(_) => Err(failed(None)),
        }
    }

    async fn proxy(
        &self,
        req: Request<Incoming>,
        started: Instant,
        label: &str,
    ) -> Response<Full<Bytes>> {
        if self.cfg.metadata_header_required
            && !metadata_header_ok(req.headers().get("metadata").map(|v| v.as_bytes()))
        {
            let r = Reply::metadata_header_missing();
            self.shared
                .metrics
                .request(label, r.status, "", "", started.elapsed().as_secs_f64());
            return to_response(r);
        }
        let method = req.method().clone();
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let url = format!("{}{pq}", self.cfg.imds_base);
        let mut headers: Vec<(String, String)> = Vec::new();
        for (k, v) in req.headers() {
            let n = k.as_str();
            if matches!(
                n,
                "host"
                    | "connection"
                    | "keep-alive"
                    | "transfer-encoding"
                    | "te"
                    | "upgrade"
                    | "proxy-connection"
                    | "content-length"
                    | "user-agent"
            ) {
                continue;
            }
            if let Ok(v) = v.to_str() {
                headers.push((n.to_string(), v.to_string()));
            }
        }
        // A body sent slowly holds one of the pod's request slots; it gets the servers' body-read time, no more.
        let read = tokio::time::timeout(
            PROXY_BODY_READ_TIMEOUT,
            Limited::new(req.into_body(), MAX_PROXY_BODY_BYTES).collect(),
        )
        .await;
        let body = match read {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => {
                return to_response(Refusal::ProxyBodyFailed(e.to_string()).reply(false));
            }
            Err(_) => {
                return to_response(
                    Refusal::ProxyBodyTimeout {
                        secs: PROXY_BODY_READ_TIMEOUT.as_secs(),
                    }
                    .reply(false),
                );
            }
        };
        let hdrs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let resp = self.http.send(method, &url, &hdrs, body).await;
        match resp {
            Ok(r) => {
                let mut b = Response::builder().status(r.status);
                for (k, v) in &r.headers {
                    if !matches!(
                        k.as_str(),
                        "connection" | "transfer-encoding" | "content-length" | "keep-alive"
                    ) {
                        b = b.header(k, v);
                    }
                }
                let status = r.status;
                self.shared
                    .metrics
                    .request(label, status, "", "", started.elapsed().as_secs_f64());
                b.body(Full::new(r.body))
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
            }
            Err(e) => {
                let r = Refusal::ProxyFailed(e.to_string()).reply(false);
                self.shared
                    .metrics
                    .request(label, 500, "", "", started.elapsed().as_secs_f64());
                to_response(r)
            }
        }
    }
}

/// The pod as the decision takes it.
fn caller(pod: &PodEntry) -> Caller<'_> {
    Caller {
        namespace: &pod.namespace,
        name: &pod.name,
        labels: &pod.labels,
        replicaset: pod.replicaset.as_deref(),
        service_account: &pod.service_account,
    }
}

/// The decision's fetch plan as the token provider's spec.
fn token_spec(plan: FetchPlan) -> TokenSpec {
    match plan {
        FetchPlan::NodeImds {
            client_id,
            resource_id,
        } => TokenSpec::Imds {
            client_id,
            resource_id,
        },
        FetchPlan::Imds { client_id } => TokenSpec::Imds {
            client_id: Some(client_id),
            resource_id: None,
        },
        FetchPlan::ServicePrincipal {
            identity_key,
            tenant_id,
            client_id,
            aux_tenant_ids,
            secret,
            secret_namespace: namespace,
            secret_name: name,
        } => TokenSpec::ServicePrincipal {
            identity_key,
            tenant_id,
            client_id,
            aux_tenant_ids,
            secret: match secret {
                SecretKind::ClientSecret => SpSecret::ClientSecret { namespace, name },
                SecretKind::Certificate => SpSecret::Certificate { namespace, name },
            },
        },
        FetchPlan::Federated {
            tenant_id,
            client_id,
            namespace,
            service_account,
        } => TokenSpec::Federated {
            tenant_id,
            client_id,
            namespace,
            service_account,
        },
    }
}

fn body(t: &PodToken, now: u64) -> TokenBody {
    TokenBody::new(
        &t.access_token,
        t.expires_on,
        t.not_before,
        &t.resource,
        &t.token_type,
        &t.client_id,
        now,
    )
}

/// A [`Reply`] as an HTTP response.
#[must_use]
pub fn to_response(r: Reply) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(r.status)
        .header("content-type", r.kind.content_type());
    if r.kind == podid_core::nmi::reply::BodyKind::Plain {
        b = b.header("x-content-type-options", "nosniff");
    }
    if let Some(s) = r.retry_after {
        b = b.header("retry-after", s.to_string());
    }
    if let Some(l) = &r.location {
        b = b.header("location", l.as_str());
    }
    b.body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Secrets and service-account tokens for one request, loaded only on a cache miss.
struct PodMaterial {
    client: kube::Client,
    shared: Arc<Shared>,
    pod: PodEntry,
}

impl Material for PodMaterial {
    fn secret<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<std::collections::BTreeMap<String, Vec<u8>>, String>> {
        Box::pin(async move {
            let api: Api<k8s_openapi::api::core::v1::Secret> =
                Api::namespaced(self.client.clone(), ns);
            match api.get(name).await {
                Ok(s) => Ok(s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect()),
                Err(e) => {
                    self.shared.metrics.kube_error("get_secret");
                    Err(e.to_string())
                }
            }
        })
    }

    fn service_account_token<'a>(
        &'a self,
        namespace: &'a str,
        service_account: &'a str,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            use k8s_openapi::api::authentication::v1::{
                BoundObjectReference, TokenRequest, TokenRequestSpec,
            };
            let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
                Api::namespaced(self.client.clone(), namespace);
            // Bound to the calling pod: the token dies with it.
            let tr = TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![audience.to_string()],
                    expiration_seconds: Some(SA_TOKEN_SECONDS),
                    bound_object_ref: Some(BoundObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Pod".into()),
                        name: Some(self.pod.name.clone()),
                        uid: Some(self.pod.uid.clone()),
                    }),
                },
                ..Default::default()
            };
            match api
                .create_token_request(service_account, &Default::default(), &tr)
                .await
            {
                Ok(r) => r
                    .status
                    .map(|s| s.token)
                    .ok_or_else(|| "TokenRequest returned no token".to_string()),
                Err(e) => {
                    self.shared.metrics.kube_error("create_token");
                    Err(e.to_string())
                }
            }
        })
    }
}
