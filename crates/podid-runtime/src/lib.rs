//! podid's shared process runtime, the one every long-running component (controller, agent, and the components
//! still to come) starts from, the way kubert serves linkerd:
//! - [`process`]: the tokio runtime, logging set-up, stop signals and dying with a parent process;
//! - [`kube`]: the Kubernetes client (`--kubeconfig`, in-cluster inference, read timeout, user agent);
//! - [`watch`]: the watch pump (Apply / Delete / Reset events) and readiness;
//! - [`flags`]: Go-style flags and durations, so upstream manifests work unchanged;
//! - [`metrics`]: Prometheus text primitives with upstream's naming (no `_total` suffix);
//! - [`admin`]: the probe/metrics HTTP server (no debug endpoints), bounded by `podid-serve`.
//!
//! What may not live here: anything one component alone needs (leader election, iptables, token servers), and
//! Kubernetes→core conversions (`podid-k8s`).

pub mod admin;
pub mod flags;
pub mod kube;
pub mod metrics;
pub mod process;
pub mod watch;
