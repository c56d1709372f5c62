//! The controller's Prometheus metrics, with upstream MIC's names (reference §3.10), so dashboards keep working.
//!
//! Upstream exported OpenCensus views through a fresh registry: counters carry their plain names (no `_total`),
//! histograms `_bucket` / `_sum` / `_count`, namespace `aadpodidentity`, no process collectors. A Prometheus client
//! crate would append `_total` to counters, so this module writes the text format (0.0.4) itself. Labels are bounded
//! (operation types only).

use std::fmt::Write as _;

/// Buckets of the AAI write histograms (seconds).
const AAI_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0,
];
/// Buckets of the cycle and cloud-provider histograms (seconds).
const LONG_BUCKETS: &[f64] = &[
    0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0,
];

pub use podid_runtime::metrics::{Counter, Histogram};

/// Cloud-provider operation types (upstream label values).
pub const CLOUD_OPS: [&str; 4] = ["vm_get", "vm_update", "vmss_get", "vmss_update"];
/// Kubernetes API operation types counted on error (upstream label values).
pub const KUBE_OPS: [&str; 4] = [
    "assigned_identity_addition",
    "assigned_identity_deletion",
    "assigned_identity_update",
    "update_azure_assigned_identity_status",
];

/// Every metric the controller exports.
pub struct Metrics {
    /// AAI POST latency.
    pub addition_duration: Histogram,
    /// AAI POSTs.
    pub addition_count: Counter,
    /// AAI DELETE latency.
    pub deletion_duration: Histogram,
    /// AAI DELETEs.
    pub deletion_count: Counter,
    /// AAI PUT latency.
    pub update_duration: Histogram,
    /// AAI PUTs.
    pub update_count: Counter,
    /// Batch (cycle) latency.
    pub cycle_duration: Histogram,
    /// Batches.
    pub cycle_count: Counter,
    /// Times this process became leader.
    pub new_leader_election_count: Counter,
    cloud_errors: [Counter; 4],
    cloud_duration: [Histogram; 4],
    kube_errors: [Counter; 4],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            addition_duration: Histogram::new(AAI_BUCKETS),
            addition_count: Counter::default(),
            deletion_duration: Histogram::new(AAI_BUCKETS),
            deletion_count: Counter::default(),
            update_duration: Histogram::new(AAI_BUCKETS),
            update_count: Counter::default(),
            cycle_duration: Histogram::new(LONG_BUCKETS),
            cycle_count: Counter::default(),
            new_leader_election_count: Counter::default(),
            cloud_errors: Default::default(),
            cloud_duration: std::array::from_fn(|_| Histogram::new(LONG_BUCKETS)),
            kube_errors: Default::default(),
        }
    }
}

impl Metrics {
    /// Record a cloud-provider operation.
    pub fn cloud(&self, op: &str, seconds: f64, error: bool) {
        if let Some(i) = CLOUD_OPS.iter().position(|o| *o == op) {
            self.cloud_duration[i].observe(seconds);
            if error {
                self.cloud_errors[i].inc();
            }
        }
    }

    /// Count a failed Kubernetes API write.
    pub fn kube_error(&self, op: &str) {
        if let Some(i) = KUBE_OPS.iter().position(|o| *o == op) {
            self.kube_errors[i].inc();
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        let p = "aadpodidentity_";
        let hist = |out: &mut String, name: &str, help: &str, h: &Histogram| {
            let _ = writeln!(out, "# HELP {p}{name} {help}\n# TYPE {p}{name} histogram");
            h.encode(out, &format!("{p}{name}"), "");
        };
        let counter = |out: &mut String, name: &str, help: &str, c: &Counter| {
            let _ = writeln!(
                out,
                "# HELP {p}{name} {help}\n# TYPE {p}{name} counter\n{p}{name} {}",
                c.get()
            );
        };
        hist(
            &mut out,
            "assigned_identity_addition_duration_seconds",
            "Distribution of assigned identity addition durations",
            &self.addition_duration,
        );
        counter(
            &mut out,
            "assigned_identity_addition_count",
            "Total number of assigned identity additions",
            &self.addition_count,
        );
        hist(
            &mut out,
            "assigned_identity_deletion_duration_seconds",
            "Distribution of assigned identity deletion durations",
            &self.deletion_duration,
        );
        counter(
            &mut out,
            "assigned_identity_deletion_count",
            "Total number of assigned identity deletions",
            &self.deletion_count,
        );
        hist(
            &mut out,
            "assigned_identity_update_duration_seconds",
            "Distribution of assigned identity update durations",
            &self.update_duration,
        );
        counter(
            &mut out,
            "assigned_identity_update_count",
            "Total number of assigned identity updates",
            &self.update_count,
        );
        hist(
            &mut out,
            "mic_cycle_duration_seconds",
            "Duration of the MIC sync cycle",
            &self.cycle_duration,
        );
        counter(
            &mut out,
            "mic_cycle_count",
            "Number of MIC sync cycles",
            &self.cycle_count,
        );
        counter(
            &mut out,
            "mic_new_leader_election_count",
            "Number of MIC leader elections",
            &self.new_leader_election_count,
        );
        let _ = writeln!(
            out,
            "# HELP {p}cloud_provider_operations_errors_count Number of cloud provider operation errors\n# TYPE {p}cloud_provider_operations_errors_count counter"
        );
        for (i, op) in CLOUD_OPS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{p}cloud_provider_operations_errors_count{{operation_type=\"{op}\"}} {}",
                self.cloud_errors[i].get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP {p}cloud_provider_operations_duration_seconds Duration of cloud provider operations\n# TYPE {p}cloud_provider_operations_duration_seconds histogram"
        );
        for (i, op) in CLOUD_OPS.iter().enumerate() {
            self.cloud_duration[i].encode(
                &mut out,
                &format!("{p}cloud_provider_operations_duration_seconds"),
                &format!("operation_type=\"{op}\""),
            );
        }
        let _ = writeln!(
            out,
            "# HELP {p}kubernetes_api_operations_errors_count Number of Kubernetes API operation errors\n# TYPE {p}kubernetes_api_operations_errors_count counter"
        );
        for (i, op) in KUBE_OPS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{p}kubernetes_api_operations_errors_count{{operation_type=\"{op}\"}} {}",
                self.kube_errors[i].get()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_shapes_match_upstream() {
        let m = Metrics::default();
        m.cycle_count.inc();
        m.cycle_duration.observe(0.7);
        m.cloud("vmss_update", 42.0, true);
        m.kube_error("assigned_identity_addition");
        let t = m.encode();
        assert!(t.contains("\naadpodidentity_mic_cycle_count 1\n"));
        assert!(!t.contains("_total"));
        assert!(t.contains("aadpodidentity_mic_cycle_duration_seconds_bucket{le=\"0.5\"} 0\n"));
        assert!(t.contains("aadpodidentity_mic_cycle_duration_seconds_bucket{le=\"1\"} 1\n"));
        assert!(t.contains("aadpodidentity_mic_cycle_duration_seconds_count 1\n"));
        assert!(t.contains("aadpodidentity_cloud_provider_operations_errors_count{operation_type=\"vmss_update\"} 1\n"));
        assert!(t.contains("aadpodidentity_cloud_provider_operations_duration_seconds_bucket{operation_type=\"vmss_update\",le=\"60\"} 1\n"));
        assert!(t.contains("aadpodidentity_kubernetes_api_operations_errors_count{operation_type=\"assigned_identity_addition\"} 1\n"));
        // Unknown operation labels are dropped, never created (bounded labels).
        m.cloud("something_else", 1.0, true);
        assert!(!m.encode().contains("something_else"));
    }
}
