//! The agent's Prometheus metrics with upstream NMI names (reference §3.10): counters without `_total`,
//! histograms with upstream's buckets. Upstream labelled `aadpodidentity_nmi_operations_duration_seconds` with the
//! request path, namespace and resource, all chosen by callers; podid keeps those labels but bounds them: paths
//! become the route (`/metadata/identity/oauth2/token`, `/host/token`, `proxy`, ...), and after
//! [`MAX_SERIES`] distinct label sets new ones are folded into `namespace="other",resource="other"`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use parking_lot::Mutex;
use podid_runtime::metrics::{Counter, Histogram};

/// Largest number of distinct label sets of the request histogram.
pub const MAX_SERIES: usize = 500;

/// Buckets of the request histogram (seconds; upstream's).
const NMI_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0,
    100.0,
];
/// Buckets of the IMDS histogram (seconds).
const IMDS_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0,
];

/// IMDS/Entra operation types (upstream label values).
pub const TOKEN_OPS: [&str; 3] = [
    "adal_token_msi",
    "adal_token_msi_userassignedid",
    "adal_token",
];
/// Kubernetes API operations counted on error.
pub const KUBE_OPS: [&str; 3] = ["get_pod_list", "get_secret", "create_token"];

/// The labels of one request series: route, status, namespace, resource.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Series(String, u16, String, String);

/// A series' labels, owned or borrowed, so the map is searched without building an owned key.
trait SeriesParts {
    fn parts(&self) -> (&str, u16, &str, &str);
}

impl SeriesParts for Series {
    fn parts(&self) -> (&str, u16, &str, &str) {
        (&self.0, self.1, &self.2, &self.3)
    }
}

impl SeriesParts for (&str, u16, &str, &str) {
    fn parts(&self) -> (&str, u16, &str, &str) {
        *self
    }
}

impl<'a> Borrow<dyn SeriesParts + 'a> for Series {
    fn borrow(&self) -> &(dyn SeriesParts + 'a) {
        self
    }
}

impl Hash for Series {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.parts().hash(h);
    }
}

impl Hash for dyn SeriesParts + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.parts().hash(h);
    }
}

impl PartialEq for dyn SeriesParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn SeriesParts + '_ {}

/// Every metric of the agent.
pub struct Metrics {
    nmi: Mutex<HashMap<Series, Histogram>>,
    imds_duration: [Histogram; 3],
    imds_errors: [Counter; 3],
    kube_errors: [Counter; 3],
    /// Requests refused by the anti-spoofing check.
    pub spoof_refused: Counter,
    /// iptables errors (each logged and retried).
    pub iptables_errors: Counter,
    /// Anti-spoofing checks run (once per connection, plus once before its first answer).
    pub peer_checks: Counter,
    /// Token requests that reused their connection's verdict instead of checking again.
    pub peer_checks_reused: Counter,
    /// Token requests refused with 429 because their pod's budget of new resources was spent.
    pub budget_refused: Counter,
    /// The token server's connection counters (refusals at the caps, timeouts), written with the prefix
    /// `podid_agent_server`.
    pub connections: std::sync::Arc<podid_serve::Stats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            nmi: Mutex::default(),
            imds_duration: std::array::from_fn(|_| Histogram::new(IMDS_BUCKETS)),
            imds_errors: Default::default(),
            kube_errors: Default::default(),
            spoof_refused: Counter::default(),
            iptables_errors: Counter::default(),
            peer_checks: Counter::default(),
            peer_checks_reused: Counter::default(),
            budget_refused: Counter::default(),
            connections: std::sync::Arc::default(),
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// One handled request.
    pub fn request(&self, route: &str, status: u16, namespace: &str, resource: &str, seconds: f64) {
        let mut m = self.nmi.lock();
        // Looked up by reference: a known series (every request but a pod's first) allocates nothing.
        let mut parts = (route, status, namespace, resource);
        if let Some(h) = m.get(&parts as &dyn SeriesParts) {
            h.observe(seconds);
            return;
        }
        if m.len() >= MAX_SERIES {
            parts = (route, status, "other", "other");
        }
        let key = Series(
            parts.0.to_string(),
            parts.1,
            parts.2.to_string(),
            parts.3.to_string(),
        );
        m.entry(key)
            .or_insert_with(|| Histogram::new(NMI_BUCKETS))
            .observe(seconds);
    }

    /// One upstream token call (`op` one of [`TOKEN_OPS`]).
    pub fn token_call(&self, op: &str, seconds: f64, error: bool) {
        if let Some(i) = TOKEN_OPS.iter().position(|o| *o == op) {
            self.imds_duration[i].observe(seconds);
            if error {
                self.imds_errors[i].inc();
            }
        }
    }

    /// A failed Kubernetes API call (`op` one of [`KUBE_OPS`]).
    pub fn kube_error(&self, op: &str) {
        if let Some(i) = KUBE_OPS.iter().position(|o| *o == op) {
            self.kube_errors[i].inc();
        }
    }

    /// The text exposition.
    #[must_use]
    pub fn encode(&self, tokens: &podid_azure::pod_tokens::PodTokenStats) -> String {
        let mut out = String::new();
        let name = "aadpodidentity_nmi_operations_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Duration of NMI operations");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let m = self.nmi.lock();
        let mut keys: Vec<_> = m.keys().collect();
        keys.sort();
        for k in keys {
            let labels = format!(
                "operation_type=\"{}\",status_code=\"{}\",namespace=\"{}\",resource=\"{}\"",
                escape(&k.0),
                k.1,
                escape(&k.2),
                escape(&k.3)
            );
            if let Some(h) = m.get(k) {
                h.encode(&mut out, name, &labels);
            }
        }
        drop(m);
        let name = "aadpodidentity_imds_operations_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Duration of token operations");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, op) in TOKEN_OPS.iter().enumerate() {
            self.imds_duration[i].encode(&mut out, name, &format!("operation_type=\"{op}\""));
        }
        let name = "aadpodidentity_imds_operations_errors_count";
        let _ = writeln!(out, "# HELP {name} Failed token operations");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (i, op) in TOKEN_OPS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{operation_type=\"{op}\"}} {}",
                self.imds_errors[i].get()
            );
        }
        let name = "aadpodidentity_kubernetes_api_operations_errors_count";
        let _ = writeln!(out, "# HELP {name} Failed Kubernetes API operations");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (i, op) in KUBE_OPS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{operation_type=\"{op}\"}} {}",
                self.kube_errors[i].get()
            );
        }
        for (name, help, v) in [
            (
                "podid_agent_spoof_refused_count",
                "Requests refused by the anti-spoofing check",
                self.spoof_refused.get(),
            ),
            (
                "podid_agent_iptables_errors_count",
                "iptables errors (logged and retried)",
                self.iptables_errors.get(),
            ),
            (
                "podid_agent_peer_checks_count",
                "Anti-spoofing checks run (once per connection)",
                self.peer_checks.get(),
            ),
            (
                "podid_agent_peer_checks_reused_count",
                "Token requests that reused their connection's anti-spoofing verdict",
                self.peer_checks_reused.get(),
            ),
            (
                "podid_agent_new_resource_budget_refused_count",
                "Token requests refused (429) because the pod asked for too many new resources",
                self.budget_refused.get(),
            ),
            (
                "podid_agent_token_cache_hits_count",
                "Token requests answered from the cache",
                tokens.hits,
            ),
            (
                "podid_agent_token_cache_misses_count",
                "Token requests that needed an upstream call",
                tokens.misses,
            ),
            (
                "podid_agent_token_coalesced_count",
                "Requests that joined an upstream call already in flight",
                tokens.coalesced,
            ),
            (
                "podid_agent_token_upstream_calls_count",
                "Calls to IMDS or Entra",
                tokens.upstream_calls,
            ),
            (
                "podid_agent_token_upstream_failures_count",
                "Failed calls to IMDS or Entra",
                tokens.upstream_failures,
            ),
            (
                "podid_agent_token_refreshes_count",
                "Background refreshes before expiry",
                tokens.refreshes,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {v}");
        }
        let _ = writeln!(out, "# HELP podid_agent_token_cache_entries Cached tokens");
        let _ = writeln!(out, "# TYPE podid_agent_token_cache_entries gauge");
        let _ = writeln!(out, "podid_agent_token_cache_entries {}", tokens.entries);
        self.connections.encode(&mut out, "podid_agent_server");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_found_by_reference_and_folded_past_the_cap() {
        let m = Metrics::default();
        m.request("/metadata/identity/oauth2/token", 200, "ns", "r", 0.1);
        m.request("/metadata/identity/oauth2/token", 200, "ns", "r", 0.2);
        assert_eq!(m.nmi.lock().len(), 1);
        for i in 0..MAX_SERIES + 5 {
            m.request("proxy", 200, &format!("ns{i}"), "r", 0.1);
        }
        let map = m.nmi.lock();
        assert_eq!(map.len(), MAX_SERIES + 1);
        assert!(map.contains_key(&("proxy", 200u16, "other", "other") as &dyn SeriesParts));
        drop(map);
        let text = m.encode(&podid_azure::pod_tokens::PodTokenStats::default());
        assert!(text.contains(
            "aadpodidentity_nmi_operations_duration_seconds_count{operation_type=\"/metadata/identity/oauth2/token\",status_code=\"200\",namespace=\"ns\",resource=\"r\"} 2"
        ), "{text}");
    }
}
