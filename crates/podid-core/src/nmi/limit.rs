//! Fairness between the pods of a node: one pod must not turn into thousands of IMDS or Entra calls.
//!
//! A cached token costs the agent nothing; a token for a (identity, resource) the agent has not fetched yet
//! costs one upstream call. A pod asking for thousands of distinct `resource` values (a bug or an attack)
//! would make as many calls. [`ResourceBudget`] gives each pod a bucket of *new* resources: a resource the pod
//! used recently is always free; a new one takes a token from a bucket of `burst` that refills at
//! `per_minute`. An empty bucket means 429 with a `Retry-After`, never an upstream call. Legitimate pods use a
//! handful of resources (Key Vault, ARM, Storage, Graph...) and never notice.
//!
//! Pure: time is a parameter (milliseconds on any monotonic clock). Memory is bounded: each pod remembers at
//! most [`RECENT_RESOURCES_PER_POD`] resources, and at most [`MAX_PODS`] pods are tracked (idle ones are
//! forgotten first).

use std::collections::{HashMap, VecDeque};

/// Resources remembered per pod (used ones are free again).
pub const RECENT_RESOURCES_PER_POD: usize = 64;
/// Pods tracked at most (a node runs a few hundred).
pub const MAX_PODS: usize = 8_192;
/// A pod idle this long is forgotten first when the map is full, milliseconds.
const IDLE_FORGET_MS: u64 = 10 * 60 * 1000;
/// Units of a bucket token (see `Bucket::units`).
const UNITS_PER_TOKEN: u64 = 60_000;
/// Longest parameter value written to logs and metric labels, bytes (the rest is cut).
pub const MAX_LOGGED_PARAM_BYTES: usize = 256;

/// The budget's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// New resources a pod may ask for at once.
    pub burst: u32,
    /// New resources per minute after the burst (0 disables the budget altogether).
    pub per_minute: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            burst: 20,
            per_minute: 60,
        }
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    /// Tokens, in [`UNITS_PER_TOKEN`] (a minute in milliseconds: refilling `per_minute` tokens a minute adds
    /// exactly `per_minute` units a millisecond, with no rounding loss).
    units: u64,
    last_ms: u64,
    recent: VecDeque<String>,
}

/// Per-pod budgets of new resources.
#[derive(Debug, Clone, Default)]
pub struct ResourceBudget {
    cfg: BudgetConfig,
    pods: HashMap<String, Bucket>,
}

impl ResourceBudget {
    /// A budget with `cfg`.
    #[must_use]
    pub fn new(cfg: BudgetConfig) -> ResourceBudget {
        ResourceBudget {
            cfg,
            pods: HashMap::new(),
        }
    }

    /// May `pod` (any stable key: its UID) ask for `resource` now? `Err(seconds)` = wait that long (at least 1).
    pub fn admit(&mut self, pod: &str, resource: &str, now_ms: u64) -> Result<(), u64> {
        if self.cfg.per_minute == 0 {
            return Ok(());
        }
        let full = u64::from(self.cfg.burst.max(1)) * UNITS_PER_TOKEN;
        if !self.pods.contains_key(pod) && self.pods.len() >= MAX_PODS {
            self.forget_idle(now_ms);
        }
        let b = self.pods.entry(pod.to_string()).or_insert_with(|| Bucket {
            units: full,
            last_ms: now_ms,
            recent: VecDeque::new(),
        });
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.units = b
            .units
            .saturating_add(elapsed.saturating_mul(u64::from(self.cfg.per_minute)))
            .min(full);
        b.last_ms = now_ms;
        if let Some(i) = b.recent.iter().position(|r| r == resource) {
            // Most recent last.
            if let Some(r) = b.recent.remove(i) {
                b.recent.push_back(r);
            }
            return Ok(());
        }
        if b.units < UNITS_PER_TOKEN {
            let ms = (UNITS_PER_TOKEN - b.units).div_ceil(u64::from(self.cfg.per_minute));
            return Err(ms.div_ceil(1000).max(1));
        }
        b.units -= UNITS_PER_TOKEN;
        if b.recent.len() >= RECENT_RESOURCES_PER_POD {
            b.recent.pop_front();
        }
        b.recent.push_back(resource.to_string());
        Ok(())
    }

    /// Forget a pod (it was deleted).
    pub fn forget(&mut self, pod: &str) {
        self.pods.remove(pod);
    }

    /// Pods tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// No pod tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    fn forget_idle(&mut self, now_ms: u64) {
        self.pods
            .retain(|_, b| now_ms.saturating_sub(b.last_ms) < IDLE_FORGET_MS);
        if self.pods.len() >= MAX_PODS {
            // Everyone is active: forget the least recently active half.
            let mut lasts: Vec<u64> = self.pods.values().map(|b| b.last_ms).collect();
            lasts.sort_unstable();
            let median = lasts[lasts.len() / 2];
            self.pods.retain(|_, b| b.last_ms > median);
        }
    }
}

/// `s` cut to [`MAX_LOGGED_PARAM_BYTES`] at a character boundary, with the original length said, for logs and
/// metric labels (a pod controls these values).
#[must_use]
pub fn cut(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_LOGGED_PARAM_BYTES {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = MAX_LOGGED_PARAM_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}...({} bytes)", &s[..end], s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_resources_are_free_new_ones_take_from_the_bucket() {
        let mut b = ResourceBudget::new(BudgetConfig {
            burst: 3,
            per_minute: 60,
        });
        for r in ["a", "b", "c"] {
            assert_eq!(b.admit("pod", r, 0), Ok(()));
        }
        assert_eq!(b.admit("pod", "d", 0), Err(1), "burst spent");
        for _ in 0..1000 {
            assert_eq!(b.admit("pod", "a", 0), Ok(()), "a used resource is free");
        }
        assert_eq!(b.admit("other", "d", 0), Ok(()), "budgets are per pod");
        assert_eq!(b.admit("pod", "d", 999), Err(1));
        assert_eq!(b.admit("pod", "d", 1000), Ok(()), "one per second refilled");
        assert_eq!(b.admit("pod", "e", 1000), Err(1));
        // The bucket never exceeds its burst.
        assert_eq!(b.admit("pod", "x1", 1_000_000), Ok(()));
        assert_eq!(b.admit("pod", "x2", 1_000_000), Ok(()));
        assert_eq!(b.admit("pod", "x3", 1_000_000), Ok(()));
        assert!(b.admit("pod", "x4", 1_000_000).is_err());
        b.forget("pod");
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn thousands_of_distinct_resources_cost_burst_plus_rate() {
        let mut b = ResourceBudget::new(BudgetConfig::default());
        // 3,000 distinct resources within 3.6 s: 20 + 3 admitted.
        let admitted = (0..3000u64)
            .filter(|i| b.admit("noisy", &format!("r{i}"), i * 36 / 30).is_ok())
            .count();
        assert_eq!(admitted, 23);
        let mut off = ResourceBudget::new(BudgetConfig {
            burst: 1,
            per_minute: 0,
        });
        assert!((0..100).all(|i| off.admit("p", &i.to_string(), 0).is_ok()));
    }

    #[test]
    fn memory_is_bounded() {
        let mut b = ResourceBudget::new(BudgetConfig::default());
        for i in 0..(MAX_PODS as u64 + 10) {
            let _ = b.admit(&format!("pod{i}"), "r", i);
        }
        assert!(b.len() <= MAX_PODS, "{}", b.len());
        for i in 0..200u64 {
            let _ = b.admit("p", &format!("r{i}"), i * 60_000);
        }
        assert!(b.pods["p"].recent.len() <= RECENT_RESOURCES_PER_POD);
    }

    #[test]
    fn cut_keeps_short_values_and_char_boundaries() {
        assert_eq!(cut("https://vault.azure.net"), "https://vault.azure.net");
        let long = "é".repeat(300);
        let c = cut(&long);
        assert!(c.len() < 300 && c.ends_with("(600 bytes)"), "{c}");
    }
}
