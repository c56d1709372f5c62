//! `podid agent`: the node agent, a drop-in for aad-pod-identity's NMI.
//!
//! # What it does
//! Pods call the instance metadata service (169.254.169.254:80); a DNAT rule in the `aad-metadata` chain sends
//! those connections to the agent (127.0.0.1:2579 by default). The agent finds the calling pod by source IP in a
//! node-local index, decides with `podid_core::nmi::select` which identity the pod may use, and answers with a
//! token in upstream's exact shape, only for an identity bound to that pod. Other paths are proxied to the
//! configured IMDS address, and nowhere else.
//!
//! # How it differs from upstream (documented in docs/agent.md)
//! - Pods without a binding are refused at once; pods waiting for the controller are answered the moment their
//!   identity becomes `Assigned` (watch-driven), within upstream's wait budget.
//! - Tokens are cached per (identity, resource), refreshed before expiry, and concurrent identical requests make
//!   one upstream call; cached tokens keep being served through an IMDS or Entra outage until they expire.
//! - An index miss costs one live API lookup, not a 500; an IP claimed by two pods is refused, never guessed.
//! - iptables errors are logged, counted and retried, never fatal; route_localnet is set or checked; the rules
//!   can be kept across restarts (`--keep-iptables-on-exit`).
//! - On bridged networks each caller is checked to be the pod that owns its source IP (ARP-spoofing defence).
//! - Federated mode: tokens through a federated credential trusting the pod's service account.
//! - No pprof; one read-only debug view on the probe port (`/debug/pod?ip=`, loopback callers by default, never
//!   a token or secret) that says what the agent would decide for a pod now (`podid doctor` reads it).
//!
//! # Layout
//! [`args`] flags · [`state`] watches and indexes · [`server`] the token server · [`debug`] the debug view ·
//! [`metrics`].

pub mod args;
pub mod debug;
pub mod metrics;
pub mod server;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use args::{AgentArgs, IptablesControl, IptablesMode, Mode, SpoofCheck};
use hyper::body::Incoming;
use server::{Agent, Config};
use state::Shared;

/// Upstream's fatal message on kubenet.
pub const KUBENET_MESSAGE: &str = "AAD Pod Identity is not supported for Kubenet. Review https://azure.github.io/aad-pod-identity/docs/configure/aad_pod_identity_on_kubenet/ for more details.";

/// The kubenet guard (reference §3.1): upstream refused to run on kubenet because of ARP spoofing. podid runs
/// there when its anti-spoofing check is on.
fn kubenet_guard(args: &AgentArgs) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(&args.kubelet_config) else {
        tracing::debug!(path = %args.kubelet_config.display(), "no kubelet flags file; kubenet check skipped");
        return Ok(());
    };
    if !text.contains("--network-plugin=kubenet") {
        return Ok(());
    }
    match (args.spoof_check, args.allow_network_plugin_kubenet) {
        (SpoofCheck::On, _) => {
            tracing::info!("kubenet detected: the anti-spoofing check protects pod identities");
            Ok(())
        }
        (SpoofCheck::Off, true) => {
            tracing::warn!(
                "kubenet allowed with --spoof-check=off: pods with NET_RAW can ARP-spoof other pods' identities"
            );
            Ok(())
        }
        (SpoofCheck::Off, false) => anyhow::bail!(KUBENET_MESSAGE),
    }
}

/// The Azure environment for Entra calls: `--cloud-name`, or AzureStackCloud from AZURE_ENVIRONMENT_FILEPATH
/// when that is set and no cloud was named (how tests and the playground point at azure-sim).
fn environment(
    args: &AgentArgs,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<podid_azure::cloud::Environment> {
    let file_set = env("AZURE_ENVIRONMENT_FILEPATH").is_some_and(|s| !s.trim().is_empty());
    let name = if file_set && args.cloud_name == "AzurePublicCloud" {
        "AzureStackCloud"
    } else {
        args.cloud_name.as_str()
    };
    podid_azure::cloud::Environment::from_name(name, env)
        .with_context(|| format!("--cloud-name {name}"))
}

/// Cluster identity protection from `--cloud-config`, `--denied-identities` and
/// `--allow-cluster-identity-namespaces`; what it protects is said once at start (without the IDs).
fn protected_identities(args: &AgentArgs) -> podid_core::protect::ProtectedIdentities {
    let cluster = match podid_azure::cloud::CloudConfig::from_file(&args.cloud_config) {
        Ok(c) => c.cluster_client_ids(),
        Err(e) => {
            if args.cloud_config.exists() {
                tracing::warn!(path = %args.cloud_config.display(), error = %e, "cloud config unreadable: the cluster's own identities are not known, only --denied-identities is refused");
            } else {
                tracing::info!(path = %args.cloud_config.display(), "no cloud config: the cluster's own identities are not known, only --denied-identities is refused");
            }
            Vec::new()
        }
    };
    let n = cluster.len();
    let p = podid_core::protect::ProtectedIdentities::from_flags(
        cluster,
        &args.denied_identities,
        &args.allow_cluster_identity_namespaces,
    );
    tracing::info!(
        cluster_identities = n,
        allowed_namespaces = %args.allow_cluster_identity_namespaces,
        "cluster identity protection"
    );
    p
}

/// Run the agent until `stop` resolves. Returns an error when cleanup failed (exit 1, as upstream).
pub async fn run(
    args: AgentArgs,
    env: impl Fn(&str) -> Option<String>,
    stop: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    if args.node.is_empty() {
        anyhow::bail!(
            "--node (or env NODE_NAME) is required: the agent serves the pods of one node"
        );
    }
    let force_namespaced =
        args.force_namespaced || env("FORCENAMESPACED").is_some_and(|v| v == "true");
    if args.enable_profile {
        tracing::warn!("--enableProfile is accepted for compatibility; podid never serves pprof");
    }
    if !args.host_ip.is_empty() {
        tracing::warn!("--host-ip was removed upstream and is ignored");
    }
    kubenet_guard(&args)?;
    let client = podid_runtime::kube::client(&args.kube, &args.user_agent()).await?;
    let mut extra_ca = Vec::new();
    for f in &args.azure_ca_file {
        extra_ca.push(
            std::fs::read(f).with_context(|| format!("read --azure-ca-file {}", f.display()))?,
        );
    }
    let http = podid_azure::http::HttpClient::new(podid_azure::http::HttpOptions {
        extra_ca_pem: extra_ca,
        user_agent: args.user_agent(),
        ..Default::default()
    })
    .context("build the HTTP client")?;
    let azure_env = environment(&args, &env)?;
    let tokens = podid_azure::pod_tokens::PodTokenProvider::new(
        http.clone(),
        &azure_env,
        &args.imds_base(),
        podid_azure::pod_tokens::PodTokenOptions {
            refresh_margin: Duration::from_secs(args.token_refresh_margin_sec),
            ..Default::default()
        },
    );
    let shared = Arc::new(Shared::new(args.operation_mode));
    let watches = state::spawn_watches(
        client.clone(),
        shared.clone(),
        &args.node,
        args.operation_mode,
        args.enable_scale_features,
    );
    let protected = protected_identities(&args);
    let s = shared.clone();
    let debug_cfg = debug::DebugConfig {
        mode: args.operation_mode,
        force_namespaced,
        mic_namespace: args.mic_namespace.clone(),
        node: args.node.clone(),
        access: args.debug_view,
        protected: protected.clone(),
    };
    let probe = podid_runtime::admin::spawn_with(
        SocketAddr::new(args.admin_bind_address, args.http_probe_port),
        move |req: &podid_runtime::admin::AdminRequest<'_>| {
            use podid_runtime::admin::{TEXT, not_found};
            match req.path {
                debug::DEBUG_POD_PATH => debug::answer(&s, &debug_cfg, req),
                "/healthz" => (
                    200,
                    TEXT,
                    if s.initialized.load(Ordering::Acquire) {
                        "Active"
                    } else {
                        "Not Active"
                    }
                    .to_string(),
                ),
                "/readyz" if s.synced() => (200, TEXT, "ok".to_string()),
                "/readyz" => (503, TEXT, "watches not synced".to_string()),
                _ => not_found(),
            }
        },
    )
    .await
    .context("bind --http-probe-port")?;
    let s = shared.clone();
    let tk = tokens.clone();
    let metrics = podid_runtime::admin::spawn(
        SocketAddr::new(args.admin_bind_address, args.prometheus_port),
        move |path| {
            if path == "/metrics" {
                let text = s.metrics.encode(&tk.stats());
                (200, podid_runtime::admin::PROMETHEUS, text)
            } else {
                podid_runtime::admin::not_found()
            }
        },
    )
    .await
    .context("bind --prometheus-port")?;

    let peer = match args.spoof_check {
        SpoofCheck::On => match podid_net::peer::PeerChecker::new() {
            Ok(p) => Some(p),
            Err(e) => anyhow::bail!(
                "--spoof-check=on needs a netlink socket (CAP_NET_ADMIN in the node's network namespace): {e}; pass --spoof-check=off to run without the check"
            ),
        },
        SpoofCheck::Off => None,
    };
    let cfg = Config {
        mode: args.operation_mode,
        force_namespaced: force_namespaced || args.operation_mode == Mode::Managed,
        mic_namespace: args.mic_namespace.clone(),
        block_instance_metadata: args.block_instance_metadata,
        metadata_header_required: args.metadata_header_required,
        retry_after_header: args.set_retry_after_header,
        retry_created: args.retry_attempts_for_created,
        retry_assigned: args.retry_attempts_for_assigned,
        retry_interval_secs: args.find_identity_retry_interval,
        node: args.node.clone(),
        imds_base: args.imds_base(),
        protected,
        resource_budget: podid_core::nmi::limit::BudgetConfig {
            burst: args.new_resources_burst,
            per_minute: args.new_resources_per_minute,
        },
    };
    let agent = Arc::new(Agent::new(shared.clone(), cfg, client, tokens, http, peer));
    // Listen before redirecting: the rule never points at nothing.
    let listen = SocketAddr::new(args.nmi_listen_address, args.nmi_port);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind --nmi-listen-address/--nmi-port {listen}"))?;
    let local = listener.local_addr()?;
    let server = tokio::spawn(serve(
        listener,
        agent.clone(),
        podid_serve::Server::with_stats(args.server_limits(), shared.metrics.connections.clone()),
    ));
    tracing::info!(%local, %probe, %metrics, mode = ?args.operation_mode, node = %args.node, "agent listening");
    println!(
        "podid agent: serving http://{local} probe http://{probe}/healthz metrics http://{metrics}/metrics"
    );

    let netfilter: Option<Arc<parking_lot::Mutex<Option<podid_netfilter::Netfilter>>>> =
        match args.iptables {
            IptablesControl::Manage => Some(Arc::default()),
            IptablesControl::Off => {
                shared.initialized.store(true, Ordering::Release);
                None
            }
        };
    let ipt_task = netfilter.clone().map(|slot| {
        let chain = podid_netfilter::ChainConfig {
            metadata_ip: args.metadata_ip,
            metadata_port: args.metadata_port,
            target_ip: args.redirect_target(),
            target_port: args.nmi_port,
        };
        let backend = match args.iptables_mode {
            IptablesMode::Auto => podid_netfilter::Backend::Auto,
            IptablesMode::Legacy => podid_netfilter::Backend::Legacy,
            IptablesMode::Nft => podid_netfilter::Backend::Nft,
        };
        let opts = IptOptions {
            interval: Duration::from_secs(args.ipt_update_interval_sec.max(1)),
            conntrack: args.enable_conntrack_deletion,
            set_localnet: args.set_route_localnet,
        };
        tokio::spawn(iptables_loop(slot, backend, chain, shared.clone(), opts))
    });

    stop.await;
    tracing::info!("stopping");
    if let Some(t) = ipt_task {
        t.abort();
    }
    let mut cleanup_failed = false;
    if let Some(slot) = netfilter {
        let nf = slot.lock().clone();
        if args.keep_iptables_on_exit {
            tracing::info!("keeping the aad-metadata redirect (--keep-iptables-on-exit)");
        } else if let Some(nf) = nf {
            match tokio::task::spawn_blocking(move || nf.remove()).await {
                Ok(Ok(_)) => tracing::info!("removed the aad-metadata chain"),
                Ok(Err(e)) => {
                    cleanup_failed = true;
                    tracing::error!(error = %e, "failed to remove the aad-metadata chain");
                }
                Err(e) => {
                    cleanup_failed = true;
                    tracing::error!(error = %e, "iptables cleanup task failed");
                }
            }
        }
    }
    // Keep answering while the node drains (upstream slept 10 s after cleanup).
    tokio::time::sleep(Duration::from_secs(args.cleanup_delay_sec)).await;
    server.abort();
    for w in watches {
        w.abort();
    }
    if cleanup_failed {
        anyhow::bail!("iptables cleanup failed");
    }
    Ok(())
}

/// The token server: HTTP/1 within `server`'s limits (a pod's connections are capped per source address, slow
/// and idle clients are disconnected); each request goes to `agent.handle` with the caller's address.
async fn serve(
    listener: tokio::net::TcpListener,
    agent: Arc<Agent>,
    server: Arc<podid_serve::Server>,
) {
    let run =
        server.listen(listener).http1_only().run(
            move |conn: &podid_serve::Conn| {
                let agent = agent.clone();
                let peer = conn.remote;
                // The anti-spoofing verdict lives as long as the TCP connection.
                let verdict = Arc::new(server::Connection::default());
                hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let agent = agent.clone();
                    let verdict = verdict.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(agent.handle(req, peer, &verdict).await)
                    }
                })
            },
            std::future::pending(),
        );
    run.await;
}

struct IptOptions {
    interval: Duration,
    conntrack: bool,
    set_localnet: bool,
}

/// Make sure DNAT to a loopback target works: set (or check) net.ipv4.conf.all.route_localnet.
fn route_localnet(set: bool) -> Result<(), String> {
    let sys = podid_netfilter::Sysctl::new();
    if set {
        return sys
            .set_route_localnet("all", true)
            .map_err(|e| e.to_string());
    }
    match sys.read_route_localnet("all") {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(
                "net.ipv4.conf.all.route_localnet is 0 and --set-route-localnet=false: DNAT to 127.0.0.1 will not work unless kube-proxy or the interface sets it"
            );
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Install the redirect and keep it right: detect the backend, ensure the chain every interval, retry errors
/// with backoff (iptables errors are never fatal: lock contention and version mismatches crashed upstream's NMI).
async fn iptables_loop(
    slot: Arc<parking_lot::Mutex<Option<podid_netfilter::Netfilter>>>,
    backend: podid_netfilter::Backend,
    chain: podid_netfilter::ChainConfig,
    shared: Arc<Shared>,
    opts: IptOptions,
) {
    let mut first = true;
    let mut backoff = Duration::from_secs(1);
    loop {
        let current = slot.lock().clone();
        let c = chain;
        let set_localnet = opts.set_localnet;
        let r = tokio::task::spawn_blocking(move || -> Result<(podid_netfilter::Netfilter, podid_netfilter::EnsureReport), String> {
            let nf = match current {
                Some(nf) => nf,
                None => podid_netfilter::Netfilter::detect(backend).map_err(|e| e.to_string())?,
            };
            if c.target_ip.is_loopback() {
                route_localnet(set_localnet)?;
            }
            let report = nf.ensure(&c).map_err(|e| e.to_string())?;
            Ok((nf, report))
        })
        .await;
        match r {
            Ok(Ok((nf, report))) => {
                if report.changed() {
                    tracing::info!(?report, "aad-metadata chain installed or repaired");
                } else {
                    tracing::debug!(?report, "aad-metadata chain checked");
                }
                *slot.lock() = Some(nf);
                if first {
                    first = false;
                    if opts.conntrack {
                        delete_conntrack(&chain).await;
                    }
                    shared.initialized.store(true, Ordering::Release);
                    tracing::info!("aad-metadata redirect in place");
                }
                backoff = Duration::from_secs(1);
                tokio::time::sleep(opts.interval).await;
            }
            Ok(Err(e)) => {
                shared.metrics.iptables_errors.inc();
                tracing::error!(error = %e, retry_in = ?backoff, "iptables setup failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(opts.interval);
            }
            Err(e) => {
                shared.metrics.iptables_errors.inc();
                tracing::error!(error = %e, "iptables task failed; retrying");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Evict direct connections to the metadata address made before the redirect existed (`conntrack -D`).
async fn delete_conntrack(chain: &podid_netfilter::ChainConfig) {
    let args = [
        "-D".to_string(),
        "-p".into(),
        "tcp".into(),
        "--orig-dst".into(),
        chain.metadata_ip.to_string(),
        "--orig-port-dst".into(),
        chain.metadata_port.to_string(),
    ];
    let r = tokio::task::spawn_blocking(move || {
        std::process::Command::new("conntrack").args(&args).output()
    })
    .await;
    match r {
        Ok(Ok(o)) => {
            tracing::info!(status = ?o.status.code(), "conntrack entries to the metadata address deleted")
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "--enable-conntrack-deletion: the conntrack tool is not available")
        }
        Err(e) => tracing::warn!(error = %e, "conntrack task failed"),
    }
}
