//! `podid`: one binary, many subcommands. `main` installs the process-wide TLS crypto provider and hands over to
//! the subcommand; everything else lives in library crates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

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
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a simulator on its own (for tests and for your own CI).
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print the aadpodidentity.k8s.io/v1 CustomResourceDefinitions as YAML.
    Crds,
}

#[derive(Subcommand, Debug)]
enum SimCommand {
    /// An in-memory Kubernetes API server that kubectl and client libraries accept.
    Kube(KubeSimArgs),
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
    /// Run the small kubelet, writing projected volumes under this directory.
    #[arg(long)]
    kubelet_dir: Option<PathBuf>,
    /// Number of changes kept for watch resume; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 100_000)]
    watch_cache_size: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    bookmark_interval_seconds: u64,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
}

fn init_tracing(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
    let cli = Cli::parse();
    init_tracing(&cli.log_level, cli.log_format);
    match cli.command {
        Command::Crds => {
            print!("{}", podid_k8s::crds_yaml());
            Ok(())
        }
        Command::Sim(SimCommand::Kube(args)) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("start the async runtime")?;
            rt.block_on(run_kube_sim(args))
        }
    }
}

async fn run_kube_sim(args: KubeSimArgs) -> anyhow::Result<()> {
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
        kubelet_dir: args.kubelet_dir,
        ..kube_sim::Config::default()
    };
    let handle = kube_sim::start(config).await?;
    let kubeconfig = handle.kubeconfig.clone().unwrap_or_default();
    println!("kube-sim is serving at {}", handle.url);
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get namespaces");
    println!("Press Ctrl-C to stop.");
    wait_for_stop_signal().await?;
    println!("stopping");
    handle.shutdown().await;
    Ok(())
}

/// Ctrl-C (SIGINT) or SIGTERM: both stop the process cleanly.
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("wait for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}
