//! podid's shared process runtime, used by every long-running component (controller, agent):
//! - [`flags`]: Go-style flags and durations, so upstream manifests work unchanged;
//! - [`metrics`]: Prometheus text primitives with upstream's naming (no `_total` suffix);
//! - [`admin`]: the probe/metrics HTTP server (no debug endpoints), bounded by `podid-serve`.

pub mod admin;
pub mod flags;
pub mod metrics;
