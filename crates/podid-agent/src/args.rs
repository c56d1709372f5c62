//! Command-line flags: every upstream NMI flag with its default (reference §3.9), plus podid's own.
//!
//! Upstream used pflag plus Go's flag set for klog, so `-v=2`, `--logtostderr` and the removed `--host-ip` must
//! not fail a manifest: they are accepted and ignored. As with pflag, a flag given twice takes the last value.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Operation mode (`--operation-mode`, lowercased as upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Identities come from AzureAssignedIdentities written by the controller; tokens from the node's IMDS.
    Standard,
    /// Identities come from bindings in the pod's namespace; assigned out of band; tokens from IMDS.
    Managed,
    /// podid: identities come from bindings; tokens from Entra through a federated credential trusting the pod's
    /// service account (no controller, no ARM write, no per-VMSS identity limit).
    Federated,
}

/// `--operation-mode` parser (case-insensitive; upstream's fatal message otherwise).
pub fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.to_ascii_lowercase().as_str() {
        "standard" => Ok(Mode::Standard),
        "managed" => Ok(Mode::Managed),
        "federated" => Ok(Mode::Federated),
        other => Err(format!("operation mode {other} not supported")),
    }
}

/// What the agent does about iptables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IptablesControl {
    /// Install, re-check and (unless --keep-iptables-on-exit) remove the `aad-metadata` chain (upstream).
    Manage,
    /// Leave iptables alone (another component redirects; tests on loopback).
    Off,
}

/// The anti-spoofing peer check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpoofCheck {
    /// Check callers on bridged networks; other networks are not applicable; a failing check refuses.
    On,
    /// No check (upstream behaviour).
    Off,
}

/// Who may read the read-only debug view (`/debug/pod` on the probe port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DebugView {
    /// Callers on loopback only (the node itself, `kubectl port-forward`): pods cannot map their neighbours.
    Loopback,
    /// Any caller that reaches the probe port.
    Any,
    /// Not served (404).
    Off,
}

/// iptables backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IptablesMode {
    /// The backend that already holds more rules (kube's iptables-wrapper rule), nft on a tie.
    Auto,
    /// iptables-legacy.
    Legacy,
    /// iptables-nft.
    Nft,
}

fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        o => Err(format!("invalid boolean {o:?}")),
    }
}

/// `podid agent` flags.
#[derive(clap::Args, Debug, Clone)]
#[command(args_override_self = true)]
pub struct AgentArgs {
    /// Address the token server listens on.
    #[arg(long = "nmi-listen-address", default_value = "127.0.0.1")]
    pub nmi_listen_address: IpAddr,
    /// Port of the token server.
    #[arg(long = "nmi-port", default_value_t = 2579)]
    pub nmi_port: u16,
    /// Metadata address redirected to the agent (iptables) and, unless --imds-endpoint, where it proxies.
    #[arg(long = "metadata-ip", default_value = "169.254.169.254")]
    pub metadata_ip: Ipv4Addr,
    /// Metadata port.
    #[arg(long = "metadata-port", default_value_t = 80)]
    pub metadata_port: u16,
    /// This node's name (the downward API's spec.nodeName).
    #[arg(long = "node", env = "NODE_NAME", default_value = "")]
    pub node: String,
    /// Seconds between iptables re-checks.
    #[arg(long = "ipt-update-interval-sec", default_value_t = 60)]
    pub ipt_update_interval_sec: u64,
    /// Namespaced matching (also env FORCENAMESPACED=true).
    #[arg(long = "forceNamespaced", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub force_namespaced: bool,
    /// Namespace of the controller pods that get node tokens directly (ReplicaSet name starting with `mic`).
    #[arg(long = "MICNamespace", default_value = "default")]
    pub mic_namespace: String,
    /// Probe port (`/healthz`: `Active` once the redirect is in place).
    #[arg(long = "http-probe-port", default_value_t = 8080)]
    pub http_probe_port: u16,
    /// Wait budget while identities are `Created`, in retry intervals.
    #[arg(long = "retry-attempts-for-created", default_value_t = 16)]
    pub retry_attempts_for_created: u32,
    /// Further wait budget for `Assigned`, in retry intervals.
    #[arg(long = "retry-attempts-for-assigned", default_value_t = 4)]
    pub retry_attempts_for_assigned: u32,
    /// Retry interval, seconds (podid is woken by watch events; this only sizes the budget).
    #[arg(long = "find-identity-retry-interval", default_value_t = 5)]
    pub find_identity_retry_interval: u64,
    /// Accepted for compatibility; podid never serves pprof.
    #[arg(long = "enableProfile", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub enable_profile: bool,
    /// Watch only this node's AzureAssignedIdentities (label `nodename`).
    #[arg(long = "enableScaleFeatures", num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = go_bool)]
    pub enable_scale_features: bool,
    /// Answer 403 to `/metadata/instance`.
    #[arg(long = "block-instance-metadata", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub block_instance_metadata: bool,
    /// Require `Metadata: true` on token and proxied requests.
    #[arg(long = "metadata-header-required", num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = go_bool)]
    pub metadata_header_required: bool,
    /// Prometheus port (`/metrics`).
    #[arg(long = "prometheus-port", default_value_t = 9090)]
    pub prometheus_port: u16,
    /// `standard`, `managed` or `federated` (podid).
    #[arg(long = "operation-mode", default_value = "standard", value_parser = parse_mode)]
    pub operation_mode: Mode,
    /// Run on kubenet even with --spoof-check=off (upstream refused kubenet because of ARP spoofing).
    #[arg(long = "allow-network-plugin-kubenet", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub allow_network_plugin_kubenet: bool,
    /// Kubelet flags file read for the kubenet check.
    #[arg(long = "kubelet-config", default_value = "/etc/default/kubelet")]
    pub kubelet_config: PathBuf,
    /// Answer 503 + `Retry-After: 20` instead of 404 when the identity lookup fails.
    #[arg(long = "set-retry-after-header", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub set_retry_after_header: bool,
    /// Delete conntrack entries of direct connections to the metadata address after installing the redirect.
    #[arg(long = "enable-conntrack-deletion", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub enable_conntrack_deletion: bool,
    /// Appended to the user agent.
    #[arg(long = "custom-user-agent", default_value = "")]
    pub custom_user_agent: String,
    /// Removed upstream flag (charts <= 1.6.1 pass it): accepted and ignored.
    #[arg(long = "host-ip", default_value = "", hide = true)]
    pub host_ip: String,
    /// klog verbosity: accepted and ignored (use PODID_LOG).
    #[arg(long = "v", default_value = "0", hide = true)]
    pub klog_v: String,
    /// klog flag: accepted and ignored.
    #[arg(long = "logtostderr", num_args = 0..=1, default_missing_value = "true", default_value = "true", hide = true, value_parser = go_bool)]
    pub logtostderr: bool,

    // --- podid's own ---
    #[command(flatten)]
    pub kube: podid_runtime::kube::KubeArgs,
    /// Where the agent itself gets IMDS tokens and proxies other paths (default http://METADATA-IP:METADATA-PORT;
    /// the agent's own traffic is not redirected because it leaves through OUTPUT, not PREROUTING).
    #[arg(long = "imds-endpoint", default_value = "")]
    pub imds_endpoint: String,
    /// Manage the iptables redirect, or leave iptables alone.
    #[arg(long = "iptables", value_enum, default_value = "manage")]
    pub iptables: IptablesControl,
    /// iptables backend.
    #[arg(long = "iptables-mode", value_enum, default_value = "auto")]
    pub iptables_mode: IptablesMode,
    /// Keep the redirect when the agent stops (closes the bypass window of restarts and upgrades; requests during
    /// the restart fail instead of reaching the node's IMDS).
    #[arg(long = "keep-iptables-on-exit", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub keep_iptables_on_exit: bool,
    /// Set net.ipv4.conf.all.route_localnet=1 when the redirect targets 127.0.0.1 (needed for DNAT to loopback;
    /// kube-proxy sets it too). Off: only check it and warn.
    #[arg(long = "set-route-localnet", num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = go_bool)]
    pub set_route_localnet: bool,
    /// Check that a caller on a bridged network is the pod that owns its source IP (ARP-spoofing defence).
    #[arg(long = "spoof-check", value_enum, default_value = "on")]
    pub spoof_check: SpoofCheck,
    /// Seconds to wait after removing the rules on shutdown (upstream: 10).
    #[arg(long = "cleanup-delay-sec", default_value_t = 10)]
    pub cleanup_delay_sec: u64,
    /// Extra CA certificate (PEM) trusted for Entra (repeatable; e.g. a simulator's CA).
    #[arg(long = "azure-ca-file")]
    pub azure_ca_file: Vec<PathBuf>,
    /// Azure cloud for Entra (AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureStackCloud with
    /// AZURE_ENVIRONMENT_FILEPATH).
    #[arg(long = "cloud-name", default_value = "AzurePublicCloud")]
    pub cloud_name: String,
    /// Refresh cached tokens this many seconds before they expire.
    #[arg(long = "token-refresh-margin-sec", default_value_t = 300)]
    pub token_refresh_margin_sec: u64,
    /// Address of the probe and metrics servers (upstream: all interfaces).
    #[arg(long = "admin-bind-address", default_value = "0.0.0.0")]
    pub admin_bind_address: IpAddr,
    /// Who may read `/debug/pod?ip=<pod IP>` on the probe port (what the agent decides for that pod now, as
    /// JSON; never a token or secret; `podid doctor` reads it): loopback callers, any caller, or nobody.
    #[arg(long = "debug-view", value_enum, default_value = "loopback")]
    pub debug_view: DebugView,
    /// The cloud config (azure.json) naming the cluster's own identities, which pods are refused unless their
    /// AzureIdentity's namespace is in --allow-cluster-identity-namespaces. A missing file protects nothing but
    /// the deny-list (said at start).
    #[arg(long = "cloud-config", default_value = "/etc/kubernetes/azure.json")]
    pub cloud_config: PathBuf,
    /// Client IDs or ARM resource IDs (comma-separated) that no pod gets, whatever its bindings say.
    #[arg(long = "denied-identities", default_value = "")]
    pub denied_identities: String,
    /// Namespaces (comma-separated) whose AzureIdentities may name the cluster's own identities (opt-in).
    #[arg(long = "allow-cluster-identity-namespaces", default_value = "")]
    pub allow_cluster_identity_namespaces: String,
    /// New `resource` values a pod may ask for at once (tokens for resources it used recently are free).
    #[arg(long = "new-resources-burst", default_value_t = 20)]
    pub new_resources_burst: u32,
    /// New `resource` values a pod may ask for per minute after the burst (0: no limit); beyond it, 429.
    #[arg(long = "new-resources-per-minute", default_value_t = 60)]
    pub new_resources_per_minute: u32,

    // --- podid's own: the token server's connection limits (podid-serve; docs/agent.md#limits) ---
    /// Seconds a client has to send a complete request head, counted from connecting (first request) or from
    /// the first byte of a later request on a kept-alive connection; a slow or silent client is disconnected.
    #[arg(long = "header-read-timeout-sec", default_value_t = podid_serve::HEADER_READ_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_sec: u64,
    /// Seconds a kept-alive connection may stay open with no request in flight (a response being written, however
    /// long, is never cut).
    #[arg(long = "idle-timeout-sec", default_value_t = podid_serve::IDLE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_sec: u64,
    /// Largest request head (request line and headers) in bytes; a larger one gets 431. At least 8192.
    #[arg(long = "max-header-bytes", default_value_t = podid_serve::MAX_HEADER_BYTES)]
    pub max_header_bytes: usize,
    /// Most connections open at once on the token server; more are closed at once (and counted).
    #[arg(long = "max-connections", default_value_t = podid_serve::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Most connections open at once from one source address, that is from one pod (host-network pods share
    /// the node's address); more are closed at once (and counted).
    #[arg(long = "max-connections-per-ip", default_value_t = AGENT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
}

/// Default cap on one pod's open connections to the token server: an SDK keeps one or a few, 64 leaves room for
/// bursts of parallel token requests, and no pod can take more than 1/64 of the total.
pub const AGENT_MAX_CONNECTIONS_PER_IP: usize = 64;

impl AgentArgs {
    /// The user agent sent to the API server and Azure.
    #[must_use]
    pub fn user_agent(&self) -> String {
        podid_runtime::kube::user_agent("NMI", &self.custom_user_agent)
    }

    /// Where the agent's own IMDS calls and proxied requests go.
    #[must_use]
    pub fn imds_base(&self) -> String {
        if self.imds_endpoint.is_empty() {
            format!("http://{}:{}", self.metadata_ip, self.metadata_port)
        } else {
            self.imds_endpoint.trim_end_matches('/').to_string()
        }
    }

    /// The token server's connection limits, from the flags.
    #[must_use]
    pub fn server_limits(&self) -> podid_serve::Limits {
        podid_serve::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_sec),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_sec),
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            ..podid_serve::Limits::default()
        }
    }

    /// The DNAT target: the listen address, or 127.0.0.1 when listening on all addresses.
    #[must_use]
    pub fn redirect_target(&self) -> Ipv4Addr {
        match self.nmi_listen_address {
            IpAddr::V4(v4) if !v4.is_unspecified() => v4,
            _ => Ipv4Addr::LOCALHOST,
        }
    }
}
