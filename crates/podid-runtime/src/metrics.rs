//! Prometheus text format (0.0.4) primitives with upstream aad-pod-identity naming: counters carry their plain
//! names (no `_total`, as upstream's OpenCensus exporter wrote them), histograms `_bucket` / `_sum` / `_count`.
//! A client crate would rename counters, so the components write the text themselves with these.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// A counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    inner: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    /// A histogram with these upper bounds (seconds).
    #[must_use]
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            inner: Mutex::new((vec![0; bounds.len()], 0.0, 0)),
        }
    }
    /// Record one observation (seconds).
    pub fn observe(&self, v: f64) {
        let mut g = self.inner.lock();
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                g.0[i] += 1;
            }
        }
        g.1 += v;
        g.2 += 1;
    }
    /// Appends `_bucket`, `_sum` and `_count` lines (labels without braces, may be empty).
    pub fn encode(&self, out: &mut String, name: &str, labels: &str) {
        let g = self.inner.lock();
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in self.bounds.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}", g.0[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", g.2);
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), g.1);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), g.2);
    }
}
