//! `podid`: one binary, many subcommands. Wiring only: `main` installs the process-wide TLS crypto provider,
//! parses the command line and hands over to the subcommand; the runtime, logging and signals come from
//! `podid-runtime`, everything else from the library crates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use podid_runtime::process::{run_until_signal, runtime};

#[derive(Parser, Debug)]
#[command(
    name = "podid",
    version,
    about = "Azure (Entra ID) identities for Kubernetes pods, without secrets"
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `kube_sim=debug`).
    #[arg(long, global = true, env = "PODID_LOG", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "PODID_LOG_FORMAT",
        default_value = "plain"
    )]
    log_format: podid_runtime::process::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a simulator on its own (for tests and for your own CI).
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print the aadpodidentity.k8s.io/v1 CustomResourceDefinitions as YAML.
    Crds,
    /// The pod-identity controller (drop-in for aad-pod-identity's MIC; also runs as `mic`).
    Controller(Box<podid_controller::args::ControllerArgs>),
    /// The node agent (drop-in for aad-pod-identity's NMI; also runs as `nmi`).
    Agent(Box<podid_agent::args::AgentArgs>),
    /// The local playground: kube-sim, azure-sim, the controller and one agent per simulated node (network
    /// namespaces when root), ready for kubectl and for programs run as pods.
    Up(Box<podid_playground::up::UpArgs>),
    /// Run a local program as a playground pod's application (its network namespace, environment and files).
    Run(Box<podid_playground::run::RunArgs>),
    /// Explain why a pod would or would not get a token now (exit 0 yes, 2 refused, 1 error). Finds a running
    /// playground's agents through --dir / $PODID_UP_DIR (default .podid/up) when there is one.
    Doctor(Box<DoctorCommand>),
    /// The upstream demo image's client (run as a pod by `podid up --demo`).
    #[command(hide = true)]
    DemoClient(Box<podid_playground::demo::DemoClientArgs>),
}

#[derive(Args, Debug)]
struct DoctorCommand {
    #[command(flatten)]
    doctor: podid_doctor::DoctorArgs,
    /// A `podid up` directory whose agents and kubeconfig to use (default: $PODID_UP_DIR, else .podid/up, when it
    /// holds a running playground).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum SimCommand {
    /// An in-memory Kubernetes API server that kubectl and client libraries accept.
    Kube(Box<KubeSimArgs>),
    /// An Azure identity simulator (IMDS, Entra ID, ARM, Key Vault) that the official SDKs accept.
    Azure(Box<AzureSimArgs>),
}

#[derive(Args, Debug)]
struct AzureSimArgs {
    /// World file (YAML or JSON): tenants, VMs and scale sets, identities, apps, role assignments, vaults.
    /// Default: the built-in example world (one AKS-like node pool, two identities, a vault).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Directory for the CA (`ca.crt`, trust it in clients), the signing key and `endpoints.json`.
    #[arg(long, default_value = ".podid/azure-sim")]
    dir: PathBuf,
    /// Host address every listener binds to unless given one of its own.
    #[arg(long)]
    listen_host: Option<std::net::IpAddr>,
    /// Entra ID (login) HTTPS listener.
    #[arg(long)]
    entra_listen: Option<SocketAddr>,
    /// ARM (management) HTTPS listener.
    #[arg(long)]
    arm_listen: Option<SocketAddr>,
    /// Shared Key Vault HTTPS listener.
    #[arg(long)]
    keyvault_listen: Option<SocketAddr>,
    /// Control API (plain HTTP, keep it on loopback).
    #[arg(long)]
    control_listen: Option<SocketAddr>,
    /// One HTTPS listener routing every family by SNI/Host.
    #[arg(long)]
    front_listen: Option<SocketAddr>,
    /// IMDS listener of a node, `NODE=ADDR` (repeatable; default: a loopback port per node).
    #[arg(long = "imds", value_parser = parse_node_addr)]
    imds: Vec<(String, SocketAddr)>,
    /// CA file trusted when fetching federated-credential issuers' OIDC documents (repeatable).
    #[arg(long = "trust-ca")]
    trust_ca: Vec<PathBuf>,
    /// Extra DNS names or IPs for the serving certificates (repeatable).
    #[arg(long = "extra-san")]
    extra_san: Vec<String>,
    #[command(flatten)]
    limits: SimLimitArgs,
}

/// The simulators' connection limits (podid-serve), the same flags for both.
#[derive(Args, Debug)]
struct SimLimitArgs {
    /// Seconds a client has to send a complete request head (from connecting, or from the first byte of a later
    /// request on a kept-alive connection); slower or silent clients are disconnected.
    #[arg(long, default_value_t = podid_serve::HEADER_READ_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_seconds: u64,
    /// Seconds a kept-alive connection may stay open with no request in flight (watches are never cut).
    #[arg(long, default_value_t = podid_serve::IDLE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_seconds: u64,
    /// Largest request head (request line and headers) in bytes; larger gets 431. At least 8192.
    #[arg(long, default_value_t = podid_serve::MAX_HEADER_BYTES)]
    max_header_bytes: usize,
    /// Most connections open at once (all listeners together); more are closed at once and counted.
    #[arg(long, default_value_t = podid_serve::MAX_CONNECTIONS)]
    max_connections: usize,
    /// Most connections open at once from one source address; more are closed at once and counted.
    #[arg(long, default_value_t = podid_serve::MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,
}

impl SimLimitArgs {
    fn limits(&self) -> podid_serve::Limits {
        podid_serve::Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            ..podid_serve::Limits::default()
        }
    }
}

fn parse_node_addr(s: &str) -> Result<(String, SocketAddr), String> {
    let (node, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NODE=ADDR, got {s:?}"))?;
    let addr = addr.parse().map_err(|e| format!("{addr:?}: {e}"))?;
    Ok((node.to_string(), addr))
}

#[derive(Args, Debug)]
struct KubeSimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory for the kubeconfig, CA, signing key and (with --persist) the state.
    #[arg(long, default_value = ".podid/kube-sim")]
    dir: PathBuf,
    /// Serve plain HTTP instead of HTTPS (tests only).
    #[arg(long)]
    insecure_http: bool,
    /// Keep objects in --dir across restarts.
    #[arg(long)]
    persist: bool,
    /// YAML or JSON files of objects to create at start-up (repeatable).
    #[arg(long = "seed")]
    seed: Vec<PathBuf>,
    /// Admin bearer token (default: random, saved in --dir/admin.token).
    #[arg(long, env = "KUBE_SIM_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Service-account token issuer URL (default: the server URL).
    #[arg(long)]
    service_account_issuer: Option<String>,
    /// Number of changes kept for watch resume; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 100_000)]
    watch_cache_size: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    bookmark_interval_seconds: u64,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    #[command(flatten)]
    limits: SimLimitArgs,
}

fn main() -> anyhow::Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
    let cli = Cli::parse_from(argv(std::env::args()));
    if matches!(cli.command, Command::Controller(_) | Command::Agent(_)) {
        die_with_playground()?;
    }
    podid_runtime::process::init_tracing(&cli.log_level, cli.log_format);
    match cli.command {
        Command::Crds => {
            print!("{}", podid_k8s::crds_yaml());
            Ok(())
        }
        Command::Controller(args) => {
            run_until_signal(|stop| podid_controller::run(*args, |k| std::env::var(k).ok(), stop))
        }
        Command::Agent(args) => {
            run_until_signal(|stop| podid_agent::run(*args, |k| std::env::var(k).ok(), stop))
        }
        Command::Up(args) => {
            let exe = std::env::current_exe().context("locate the podid binary")?;
            let code = run_until_signal(|stop| podid_playground::up::up(*args, exe, stop))?;
            std::process::exit(code);
        }
        Command::Run(args) => {
            let code = runtime()?.block_on(podid_playground::run::run(*args))?;
            std::process::exit(code);
        }
        Command::Doctor(cmd) => {
            let DoctorCommand { mut doctor, dir } = *cmd;
            let mut agents = std::collections::BTreeMap::new();
            let explicit_dir = dir.is_some();
            let dir = podid_playground::state::resolve_dir(dir);
            match podid_playground::state::load(&dir) {
                Ok(state) => {
                    for n in &state.nodes {
                        agents.insert(n.name.clone(), n.agent_probe.clone());
                    }
                    if doctor.kubeconfig.is_none() {
                        doctor.kubeconfig = Some(state.kubeconfig.clone());
                    }
                }
                Err(e) if explicit_dir => return Err(e),
                Err(_) => {}
            }
            let code = runtime()?.block_on(podid_doctor::run(doctor, &agents))?;
            std::process::exit(code);
        }
        Command::DemoClient(args) => {
            let code = runtime()?.block_on(podid_playground::demo::demo_client(*args))?;
            std::process::exit(code);
        }
        Command::Sim(SimCommand::Kube(args)) => run_until_signal(|stop| run_kube_sim(*args, stop)),
        Command::Sim(SimCommand::Azure(args)) => {
            run_until_signal(|stop| run_azure_sim(*args, stop))
        }
    }
}

/// A controller or agent started by `podid up` (it sets [`podid_playground::proc::PARENT_PID_ENV`]) dies with
/// it (see [`podid_runtime::process::die_with_parent`]).
fn die_with_playground() -> anyhow::Result<()> {
    podid_runtime::process::die_with_parent(podid_playground::proc::PARENT_PID_ENV, "podid up")
}

/// The command line as clap should see it: invoked as `mic` (an upstream image's entrypoint name), the process
/// is `podid controller` (as `nmi`, `podid agent`); their Go-style single-dash flags (`-forceNamespaced`, `-v=2`) become `--`.
fn argv(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = args.collect();
    let invoked = v
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked == "mic" {
        v.insert(1, "controller".to_string());
    }
    if invoked == "nmi" {
        v.insert(1, "agent".to_string());
    }
    if v.get(1).is_some_and(|c| c == "controller" || c == "agent") {
        let rest = podid_runtime::flags::normalize_go_flags(v.split_off(2));
        v.extend(rest);
    }
    v
}

async fn run_kube_sim(
    args: KubeSimArgs,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = kube_sim::Config {
        listen: args.listen,
        tls: !args.insecure_http,
        dir: Some(args.dir.clone()),
        persist: args.persist,
        admin_token: args.admin_token,
        issuer: args.service_account_issuer,
        seed: args.seed,
        watch_cache_size: args.watch_cache_size,
        bookmark_interval: Duration::from_secs(args.bookmark_interval_seconds.max(1)),
        extra_sans: args.tls_san,
        limits: args.limits.limits(),
        ..kube_sim::Config::default()
    };
    let handle = kube_sim::start(config).await?;
    insecure_anonymous_admin(&handle.sim, args.insecure_http)?;
    let kubeconfig = handle.kubeconfig.clone().unwrap_or_default();
    println!("kube-sim is serving at {}", handle.url);
    if args.insecure_http {
        println!(
            "  plain HTTP: requests without credentials are admin (kubectl sends none over HTTP); keep it on loopback"
        );
    }
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get namespaces");
    println!("Press Ctrl-C to stop.");
    stop.await;
    println!("stopping");
    handle.shutdown().await;
    Ok(())
}

/// The ClusterRoleBinding that makes `--insecure-http` usable by kubectl (see [`insecure_anonymous_admin`]).
const INSECURE_HTTP_BINDING: &str = "kube-sim:insecure-http:anonymous-admin";

/// kubectl (client-go) sends no credentials at all over plain HTTP: it reads a kubeconfig's token, client
/// certificate or exec plugin only for an `https` server, so every kubectl request to `--insecure-http` arrives as
/// `system:anonymous` and RBAC refuses it. With `--insecure-http`, kube-sim therefore behaves like the apiserver's
/// old insecure port: a ClusterRoleBinding (visible with kubectl) gives `system:anonymous` cluster-admin. Over
/// HTTPS the binding is removed if a persisted state (--persist) still holds it, so it never outlives the mode.
/// A wrong token is still refused (401).
fn insecure_anonymous_admin(sim: &kube_sim::Sim, insecure_http: bool) -> anyhow::Result<()> {
    let binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": INSECURE_HTTP_BINDING},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}]
    });
    let rt = sim
        .registry
        .read()
        .by_kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")
        .ok_or_else(|| anyhow::anyhow!("kube-sim serves no ClusterRoleBinding"))?;
    let exists = sim
        .store
        .get(&rt.key(), "", INSECURE_HTTP_BINDING)
        .is_some();
    match (insecure_http, exists) {
        (true, false) => {
            kube_sim::api::create_internal(sim, binding)
                .map_err(|e| anyhow::anyhow!("create {INSECURE_HTTP_BINDING}: {e}"))?;
        }
        (false, true) => {
            kube_sim::api::delete_object(
                sim,
                &rt,
                "",
                INSECURE_HTTP_BINDING,
                &kube_sim::api::DeleteOpts::default(),
            )
            .map_err(|e| anyhow::anyhow!("delete {INSECURE_HTTP_BINDING}: {e}"))?;
        }
        _ => {}
    }
    Ok(())
}

/// The world `podid sim azure` runs when no `--world` is given.
const DEFAULT_WORLD: &str = include_str!("../../azure-sim/world.example.yaml");

async fn run_azure_sim(
    args: AzureSimArgs,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("current directory")?;
    let mut config = match &args.world {
        Some(path) => azure_sim::Config::from_world_file(path)?,
        None => {
            azure_sim::Config::from_text(DEFAULT_WORLD, &cwd).context("built-in example world")?
        }
    };
    let section = azure_sim::config::SimSection {
        dir: Some(args.dir.clone()),
        listen_host: args.listen_host,
        entra_listen: args.entra_listen,
        arm_listen: args.arm_listen,
        keyvault_listen: args.keyvault_listen,
        control_listen: args.control_listen,
        front_listen: args.front_listen,
        imds: args.imds.into_iter().collect(),
        trust_ca_files: args.trust_ca,
        extra_sans: args.extra_san,
        ..Default::default()
    };
    config.apply(section, &cwd)?;
    config.limits = args.limits.limits();
    let handle = azure_sim::start(config).await?;
    let endpoints = handle.endpoints();
    println!("azure-sim is serving:");
    println!("  Entra ID   {}   (AZURE_AUTHORITY_HOST)", endpoints.entra);
    println!("  ARM        {}", endpoints.arm);
    println!("  Key Vault  {}", endpoints.keyvault);
    println!("  control    {}", endpoints.control);
    for (node, url) in &endpoints.imds {
        println!("  IMDS       {url}   (node {node}; AZURE_POD_IDENTITY_AUTHORITY_HOST)");
    }
    if let Some(ca) = &endpoints.ca_file {
        println!(
            "Trust {ca}: REQUESTS_CA_BUNDLE (Python), SSL_CERT_FILE (Go), NODE_EXTRA_CA_CERTS (Node)."
        );
    }
    println!("Press Ctrl-C to stop.");
    stop.await;
    println!("stopping");
    handle.shutdown().await;
    Ok(())
}
