//! The Kubernetes client every component starts from: the `--kubeconfig` flag (env `KUBECONFIG`; in-cluster
//! configuration when empty), a bounded read timeout and upstream's user agent.

use std::time::Duration;

use anyhow::Context;

/// Read timeout of every API call (kube's default is none): a call that never answers must not stall a
/// component. Watches ask the server to end them sooner (kube's watcher uses a 290 s timeout).
pub const READ_TIMEOUT: Duration = Duration::from_secs(295);

/// The Kubernetes flags shared by the controller and the agent.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Path to a kubeconfig; in-cluster configuration when empty.
    #[arg(long, env = "KUBECONFIG", default_value = "")]
    pub kubeconfig: String,
}

/// Upstream's user agent for a component (`MIC`, `NMI`), with `--custom-user-agent` appended when given.
#[must_use]
pub fn user_agent(component: &str, custom: &str) -> String {
    let mut ua = format!(
        "aad-pod-identity/{component}/podid-{}",
        env!("CARGO_PKG_VERSION")
    );
    if !custom.is_empty() {
        ua.push(' ');
        ua.push_str(custom);
    }
    ua
}

/// Build the client: `--kubeconfig` when given, else kube's inference (in-cluster, `KUBECONFIG`,
/// `~/.kube/config`), with [`READ_TIMEOUT`] and `user_agent`.
pub async fn client(args: &KubeArgs, user_agent: &str) -> anyhow::Result<kube::Client> {
    let mut cfg = if args.kubeconfig.is_empty() {
        kube::Config::infer()
            .await
            .context("no kubeconfig and no in-cluster configuration")?
    } else {
        let kc = kube::config::Kubeconfig::read_from(&args.kubeconfig)
            .with_context(|| format!("read --kubeconfig {}", args.kubeconfig))?;
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .context("load --kubeconfig")?
    };
    cfg.read_timeout = Some(READ_TIMEOUT);
    cfg.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(user_agent)
            .context("--custom-user-agent is not a valid header value")?,
    ));
    kube::Client::try_from(cfg).context("build the Kubernetes client")
}
