//! Command-line flags: every upstream MIC flag with its default (reference §2.10), plus podid's own.
//!
//! Upstream used Go's `flag` package, so `-flag`, `--flag`, `-flag=value` and bare boolean `-flag` all work;
//! [`normalize_go_flags`] rewrites single-dash long flags before clap sees them. klog's flags (`-v`,
//! `--logtostderr`, ...) are accepted and ignored (podid logs through `PODID_LOG`).

use std::path::PathBuf;
use std::time::Duration;

use crate::leader::LockKind;

pub use podid_runtime::flags::{normalize_go_flags, parse_go_duration};

/// `podid controller` flags. As with Go's `flag` package, a flag given twice takes the last value.
#[derive(clap::Args, Debug, Clone)]
#[command(args_override_self = true)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub kube: podid_runtime::kube::KubeArgs,
    /// Path to the cloud config (azure.json); the admin-secret env vars when empty.
    #[arg(long, default_value = "")]
    pub cloudconfig: String,
    /// Client IDs or ARM resource IDs (comma-separated) never assigned to pods, whatever the bindings say.
    #[arg(long = "denied-identities", default_value = "")]
    pub denied_identities: String,
    /// Namespaces (comma-separated) whose AzureIdentities may name the cluster's own identity (opt-in).
    #[arg(long = "allow-cluster-identity-namespaces", default_value = "")]
    pub allow_cluster_identity_namespaces: String,
    /// Namespaced matching for every identity (also env FORCENAMESPACED=true).
    #[arg(long = "forceNamespaced", num_args = 0..=1, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub force_namespaced: bool,
    /// Period of the full re-plan (safety net; podid works from events).
    #[arg(long = "syncRetryDuration", value_parser = parse_go_duration, default_value = "3600s")]
    pub sync_retry_duration: Duration,
    /// Holder identity for leader election (default: the host name).
    #[arg(long = "leader-election-instance", default_value = "")]
    pub leader_election_instance: String,
    /// Namespace of the leader-election lock.
    #[arg(long = "leader-election-namespace", default_value = "default")]
    pub leader_election_namespace: String,
    /// Name of the leader-election lock.
    #[arg(long = "leader-election-name", default_value = "aad-pod-identity-mic")]
    pub leader_election_name: String,
    /// Lease duration (renew deadline = half, retry period = a quarter, as upstream).
    #[arg(long = "leader-election-duration", value_parser = parse_go_duration, default_value = "15s")]
    pub leader_election_duration: Duration,
    /// Lock object: `endpoints` (upstream, the chart's RBAC) or `leases` (needs leases create/get/update).
    #[arg(long = "leader-election-lock", value_enum, default_value = "endpoints")]
    pub leader_election_lock: LockKind,
    /// Port of `/healthz` (`Active` / `Not Active`) and `/readyz`.
    #[arg(long = "http-probe-port", default_value = "8080")]
    pub http_probe_port: u16,
    /// Port of `/metrics`.
    #[arg(long = "prometheus-port", default_value = "8888")]
    pub prometheus_port: u16,
    /// Address the probe and metrics servers bind (podid; upstream: all interfaces).
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
    /// Accepted for compatibility; podid never serves pprof.
    #[arg(long = "enableProfile", num_args = 0..=1, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub enable_profile: bool,
    /// Deprecated no-op (as upstream for MIC).
    #[arg(long = "enableScaleFeatures", num_args = 0..=1, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub enable_scale_features: bool,
    /// Concurrent AAI writes per VM / scale set.
    #[arg(long = "createDeleteBatch", default_value = "20")]
    pub create_delete_batch: usize,
    /// Kubernetes client QPS (burst equals it).
    #[arg(long = "clientQps", default_value = "5")]
    pub client_qps: f64,
    /// Comma-separated client IDs never removed from a VM / scale set.
    #[arg(long = "immutable-user-msis", default_value = "")]
    pub immutable_user_msis: String,
    /// ConfigMap recording the one-time type upgrade.
    #[arg(long = "config-map-name", default_value = "aad-pod-identity-config")]
    pub config_map_name: String,
    /// Key in that ConfigMap.
    #[arg(
        long = "type-upgrade-status-key",
        default_value = "type-upgrade-status"
    )]
    pub type_upgrade_status_key: String,
    /// Run the one-time type upgrade on becoming leader.
    #[arg(long = "enable-type-upgrade", num_args = 0..=1, default_missing_value = "true", default_value = "true", action = clap::ArgAction::Set)]
    pub enable_type_upgrade: bool,
    /// Extra attempts after an ARM error naming erroneous identities.
    #[arg(long = "update-user-msi-max-retry", default_value = "2")]
    pub update_user_msi_max_retry: u32,
    /// Pause between those attempts.
    #[arg(long = "update-user-msi-retry-interval", value_parser = parse_go_duration, default_value = "1s")]
    pub update_user_msi_retry_interval: Duration,
    /// Period of the ARM reconcile that re-adds identities removed out of band.
    #[arg(long = "identity-assignment-reconcile-interval", value_parser = parse_go_duration, default_value = "3m")]
    pub identity_assignment_reconcile_interval: Duration,
    /// Appended to the user agent of Kubernetes and ARM calls.
    #[arg(long = "custom-user-agent", default_value = "")]
    pub custom_user_agent: String,
    /// podid: how long events are collected into one batch.
    #[arg(long = "batch-delay", value_parser = parse_go_duration, default_value = "100ms")]
    pub batch_delay: Duration,
    /// podid: pods in phase Succeeded or Failed release their identities (upstream kept them: false).
    #[arg(long = "release-finished-pods", num_args = 0..=1, default_missing_value = "true", default_value = "true", action = clap::ArgAction::Set)]
    pub release_finished_pods: bool,
    /// podid: default polling interval of ARM long-running operations (Retry-After wins when present).
    #[arg(long = "arm-poll-interval", value_parser = parse_go_duration, default_value = "5s")]
    pub arm_poll_interval: Duration,
    /// podid: base of the exponential backoff for failed assignments.
    #[arg(long = "retry-backoff-base", value_parser = parse_go_duration, default_value = "1s")]
    pub retry_backoff_base: Duration,
    /// podid: cap of that backoff.
    #[arg(long = "retry-backoff-max", value_parser = parse_go_duration, default_value = "5m")]
    pub retry_backoff_max: Duration,
    /// podid: IMDS base URL for `useManagedIdentityExtension` (the playground points it at its simulator).
    #[arg(long = "imds-endpoint", default_value = "http://169.254.169.254")]
    pub imds_endpoint: String,
    /// podid: extra CA certificates (PEM) to trust for ARM and Entra, besides the system roots / SSL_CERT_FILE.
    #[arg(long = "azure-ca-file")]
    pub azure_ca_file: Vec<PathBuf>,
    /// podid: how long a graceful shutdown waits for in-flight ARM operations.
    #[arg(long = "shutdown-grace", value_parser = parse_go_duration, default_value = "60s")]
    pub shutdown_grace: Duration,
    /// Accepted and ignored (upstream `--version` prints upstream versions; use `podid --version`).
    #[arg(long = "version", num_args = 0..=1, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub version: bool,
    /// klog verbosity (accepted; use PODID_LOG).
    #[arg(long = "v", default_value = "0")]
    pub klog_v: String,
    /// klog flag (accepted and ignored).
    #[arg(long = "logtostderr", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub logtostderr: Option<bool>,
    /// klog flag (accepted and ignored).
    #[arg(long = "alsologtostderr", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub alsologtostderr: Option<bool>,
    /// klog flag (accepted and ignored).
    #[arg(long = "vmodule")]
    pub vmodule: Option<String>,
    /// klog flag (accepted and ignored).
    #[arg(long = "log_dir")]
    pub log_dir: Option<String>,
    /// klog flag (accepted and ignored).
    #[arg(long = "stderrthreshold")]
    pub stderrthreshold: Option<String>,
}

impl ControllerArgs {
    /// The user agent of Kubernetes and ARM calls (upstream's shape, `--custom-user-agent` appended).
    pub fn user_agent(&self) -> String {
        podid_runtime::kube::user_agent("MIC", &self.custom_user_agent)
    }

    /// Immutable client IDs, lowercased (the cluster identity is added from the cloud config).
    pub fn immutable_ids(&self) -> Vec<String> {
        self.immutable_user_msis
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = [
            ("3600s", 3600.0),
            ("3m", 180.0),
            ("1h30m", 5400.0),
            ("200ms", 0.2),
            ("1.5s", 1.5),
            ("0", 0.0),
        ];
        for (s, v) in ok {
            assert_eq!(parse_go_duration(s), Ok(Duration::from_secs_f64(v)), "{s}");
        }
        for bad in ["", "5", "s", "3x", "1e400h", "-1s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn single_dash_flags_become_long() {
        let got = normalize_go_flags(
            [
                "podid",
                "controller",
                "-forceNamespaced",
                "-v=2",
                "--logtostderr",
                "-h",
                "--",
                "-x",
            ]
            .map(String::from),
        );
        assert_eq!(
            got,
            [
                "podid",
                "controller",
                "--forceNamespaced",
                "--v=2",
                "--logtostderr",
                "-h",
                "--",
                "-x"
            ]
        );
    }
}
