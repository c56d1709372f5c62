//! The one token cache: keyed, single flight, refreshed ahead of expiry. Pod tokens ([`crate::pod_tokens`], keyed
//! by what makes a token correct to share) and the controller's own ARM token ([`crate::token`], keyed by the
//! credential's generation) both acquire tokens through it; neither keeps a cache of its own.
//!
//! # Model
//! ```text
//!   get(key, fetch) ──► entry[key] ── fresh ──────────────► the cached value (read lock only)
//!                          │ in the margin (Background)  ──► the cached value + ONE refresh flight
//!                          │ flight running             ──► wait for it (coalesced)
//!                          │ failed within failure_pause ──► the same error, no fetch
//!                          └ otherwise                   ──► start a flight: `fetch` on a spawned task
//! ```
//! A flight runs on a spawned task, so a caller that gives up strands nobody and wastes no fetch; everyone
//! waiting on it gets its result. What happens at the refresh point is the [`RefreshMode`]:
//! - [`RefreshMode::Background`] (pod tokens): the cached value is still served and one background refresh
//!   starts (none more while it runs, nor for `refresh_retry_pause` after it failed); the value is a miss from
//!   `expires − min(expiry_safety, L/4)`, `L` its lifetime when it arrived.
//! - [`RefreshMode::Blocking`] (the controller's token): callers wait for a fresh value; if that fetch fails while
//!   the cached value expires later than `expiry_safety` from now, the waiters get the cached value and it is
//!   served for `refresh_retry_pause` more (never past `expires − expiry_safety`).
//!
//! The refresh point is `expires − min(refresh_margin, L/2)` in both modes ([`refresh_margin`]). Failures are
//! never cached as values: a failed fetch leaves a negative entry answered for `failure_pause` (zero disables).
//!
//! # Bounds
//! At most `max_entries` entries: when full, entries with nothing servable and no flight go first, then the least
//! recently used eighth. An entry whose flight runs is never evicted, so the map may exceed the cap by the number
//! of flights in progress.
//!
//! # Cost of a hit
//! A fresh hit takes the read lock, bumps two relaxed counters and clones the value; the key is borrowed. The
//! decisions ([`timeline`], [`step`]) are pure functions of epoch milliseconds, tested without a clock.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use tokio::sync::watch;

/// A cached value's expiry.
pub trait Expiring {
    /// When it stops being valid, epoch milliseconds (for several tokens, the earliest; 0 = unusable).
    fn expires_on_ms(&self) -> u64;
}

/// What happens at a cached value's refresh point (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// Keep serving it and refresh it on one background flight; a miss from `expires − min(safety, L/4)`.
    Background,
    /// Callers wait for a fresh value; a failed fetch falls back on it while it is valid for `safety` more.
    Blocking,
}

/// How a [`TokenCache`] serves, refreshes and bounds its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    /// What happens at the refresh point.
    pub refresh: RefreshMode,
    /// Refresh this long before expiry (half the lifetime for shorter values).
    pub refresh_margin: Duration,
    /// Never serve a value closer to its expiry than this ([`RefreshMode::Background`]: a quarter of the lifetime
    /// for short values).
    pub expiry_safety: Duration,
    /// After a failed fetch, the same key gets the same error for this long without a fetch (zero disables).
    pub failure_pause: Duration,
    /// After a failed refresh while the value is still usable, the next refresh waits this long.
    pub refresh_retry_pause: Duration,
    /// Cache size cap, entries (at least 1).
    pub max_entries: usize,
}

/// Why [`TokenCache::get`] gives no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError<E> {
    /// The fetch failed (or failed within the last `failure_pause`).
    Fetch(E),
    /// The flight ended without a result (the runtime is shutting down).
    Cancelled,
}

/// Why a flight starts (given to the fetch closure, e.g. for its logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Nothing servable: the caller waits for it.
    Miss,
    /// A background refresh of a value still being served.
    Refresh,
}

/// Counters of a [`TokenCache`] since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from the cache (including in the refresh margin).
    pub hits: u64,
    /// Lookups that started a flight and waited for it.
    pub misses: u64,
    /// Lookups that joined a flight already running.
    pub coalesced: u64,
    /// Background refreshes started.
    pub refreshes: u64,
    /// Lookups answered with a recent failure during its `failure_pause`.
    pub negative_hits: u64,
    /// Flights (misses and refreshes) that failed.
    pub fetch_failures: u64,
    /// Entries evicted to respect `max_entries`.
    pub evictions: u64,
    /// Entries now in the cache.
    pub entries: usize,
}

// === pure decisions ===

/// When a cached value stops being fresh and usable, epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeline {
    /// From here it is refreshed.
    pub(crate) refresh_at_ms: u64,
    /// From here it is never served ([`RefreshMode::Blocking`]: never a fallback).
    pub(crate) usable_until_ms: u64,
    /// No refresh before this (set after a failed one).
    pub(crate) next_refresh_ms: u64,
}

/// How long before its expiry a value is refreshed: `margin`, or half the lifetime for values shorter than twice
/// that. The one rule for pod tokens and the controller's own token.
pub(crate) fn refresh_margin(margin: Duration, lifetime: Duration) -> Duration {
    margin.min(lifetime / 2)
}

/// The timeline of a value expiring at `expires_ms` that arrived at `now_ms`.
pub(crate) fn timeline(expires_ms: u64, now_ms: u64, policy: &CachePolicy) -> Timeline {
    let life = expires_ms.saturating_sub(now_ms);
    let margin = duration_ms(refresh_margin(
        policy.refresh_margin,
        Duration::from_millis(life),
    ));
    let safety = match policy.refresh {
        RefreshMode::Background => duration_ms(policy.expiry_safety).min(life / 4),
        // Never served in the margin, so the safety is only the fallback's bound: not scaled down.
        RefreshMode::Blocking => duration_ms(policy.expiry_safety),
    };
    Timeline {
        refresh_at_ms: expires_ms.saturating_sub(margin),
        usable_until_ms: expires_ms.saturating_sub(safety),
        next_refresh_ms: 0,
    }
}

/// Whether a value with timeline `t` is served at `now_ms`: [`RefreshMode::Background`] until its usable end;
/// [`RefreshMode::Blocking`] until its refresh point, or after a failed refresh until the retry pause (bounded by
/// its usable end) is over.
pub(crate) fn servable(mode: RefreshMode, t: &Timeline, now_ms: u64) -> bool {
    match mode {
        RefreshMode::Background => now_ms < t.usable_until_ms,
        RefreshMode::Blocking => {
            now_ms < t.refresh_at_ms || (now_ms < t.next_refresh_ms && now_ms < t.usable_until_ms)
        }
    }
}

/// What a lookup does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Serve the cached value; `refresh`: and start a background refresh.
    Serve {
        /// Start a background refresh too.
        refresh: bool,
    },
    /// Wait for the flight running.
    Join,
    /// Answer the recent failure.
    Failed,
    /// Start a flight and wait for it.
    Start,
}

/// The lookup decision at `now_ms` for an entry with `cached` (its timeline), a flight running or not, and a
/// failure answered until `failure_until_ms`.
pub(crate) fn step(
    mode: RefreshMode,
    cached: Option<&Timeline>,
    flight: bool,
    failure_until_ms: Option<u64>,
    now_ms: u64,
) -> Step {
    if let Some(t) = cached
        && servable(mode, t, now_ms)
    {
        return Step::Serve {
            refresh: mode == RefreshMode::Background
                && now_ms >= t.refresh_at_ms
                && now_ms >= t.next_refresh_ms
                && !flight,
        };
    }
    if flight {
        Step::Join
    } else if failure_until_ms.is_some_and(|until| now_ms < until) {
        Step::Failed
    } else {
        Step::Start
    }
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Epoch milliseconds on the local clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(duration_ms)
        .unwrap_or(0)
}

// === the cache ===

type Outcome<V, E> = Option<Result<V, E>>;

struct Cached<V> {
    value: V,
    at: Timeline,
}

/// A recent failure, answered again until `until_ms`.
struct Failure<E> {
    error: E,
    until_ms: u64,
}

struct Entry<V, E> {
    cached: Option<Cached<V>>,
    /// The flight running: its result arrives on this channel.
    flight: Option<watch::Receiver<Outcome<V, E>>>,
    failure: Option<Failure<E>>,
    /// Recency (the cache's lookup tick); atomic so a hit needs only the read lock.
    last_used: AtomicU64,
}

impl<V, E> Entry<V, E> {
    fn new() -> Self {
        Entry {
            cached: None,
            flight: None,
            failure: None,
            last_used: AtomicU64::new(0),
        }
    }

    /// Whether eviction may drop it first: no flight running and nothing servable.
    fn idle_and_stale(&self, mode: RefreshMode, now_ms: u64) -> bool {
        self.flight.is_none()
            && self
                .cached
                .as_ref()
                .is_none_or(|c| !servable(mode, &c.at, now_ms))
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    refreshes: AtomicU64,
    negative_hits: AtomicU64,
    fetch_failures: AtomicU64,
    evictions: AtomicU64,
}

struct Shared<K, V, E> {
    policy: CachePolicy,
    /// What the values are, for logs (e.g. `ARM token`).
    what: &'static str,
    map: RwLock<HashMap<K, Entry<V, E>>>,
    tick: AtomicU64,
    counters: Counters,
}

/// A lookup decided under the lock.
enum Lookup<V, E> {
    Ready(Result<V, CacheError<E>>),
    Wait(watch::Receiver<Outcome<V, E>>),
}

/// The keyed single-flight token cache (module docs). Cheap to clone; clones share the entries. `get` must run
/// inside a Tokio runtime (flights run on spawned tasks).
pub struct TokenCache<K, V, E> {
    shared: Arc<Shared<K, V, E>>,
}

impl<K, V, E> Clone for TokenCache<K, V, E> {
    fn clone(&self) -> Self {
        TokenCache {
            shared: self.shared.clone(),
        }
    }
}

impl<K, V, E> std::fmt::Debug for TokenCache<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("what", &self.shared.what)
            .field("policy", &self.shared.policy)
            .field("entries", &self.shared.map.read().len())
            .finish()
    }
}

// === impl TokenCache ===

impl<K, V, E> TokenCache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Expiring + Clone + Send + Sync + 'static,
    E: Display + Clone + Send + Sync + 'static,
{
    /// An empty cache; `what` names its values in logs (e.g. `ARM token`).
    pub fn new(policy: CachePolicy, what: &'static str) -> Self {
        TokenCache {
            shared: Arc::new(Shared {
                policy,
                what,
                map: RwLock::new(HashMap::new()),
                tick: AtomicU64::new(0),
                counters: Counters::default(),
            }),
        }
    }

    /// The value for `key`: cached, or from the flight running, or from a new flight running `fetch` (called at
    /// most once, and only when a flight starts, synchronously; its future runs on a spawned task).
    pub async fn get<F, Fut>(&self, key: &K, fetch: F) -> Result<V, CacheError<E>>
    where
        F: FnOnce(Launch) -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let now = now_ms();
        let mut rx = match self.lookup(key, now, fetch) {
            Lookup::Ready(r) => return r,
            Lookup::Wait(rx) => rx,
        };
        let out = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        match out {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(CacheError::Fetch(e)),
            None => {
                // The flight's task ended without a result (the runtime is shutting down): forget it.
                let mut map = self.shared.map.write();
                if let Some(e) = map.get_mut(key)
                    && e.flight.as_ref().is_some_and(|f| f.same_channel(&rx))
                {
                    e.flight = None;
                }
                Err(CacheError::Cancelled)
            }
        }
    }

    /// Drop `key`'s cached value and failure (the next lookup fetches); a flight running still completes.
    pub fn invalidate(&self, key: &K) {
        if let Some(e) = self.shared.map.write().get_mut(key) {
            e.cached = None;
            e.failure = None;
        }
    }

    /// Drop every entry (flights running still answer their waiters, and cache nothing).
    pub fn clear(&self) {
        self.shared.map.write().clear();
    }

    /// Entries now held.
    pub fn len(&self) -> usize {
        self.shared.map.read().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters and the current number of entries.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            coalesced: get(&c.coalesced),
            refreshes: get(&c.refreshes),
            negative_hits: get(&c.negative_hits),
            fetch_failures: get(&c.fetch_failures),
            evictions: get(&c.evictions),
            entries: self.len(),
        }
    }

    fn lookup<F, Fut>(&self, key: &K, now: u64, fetch: F) -> Lookup<V, E>
    where
        F: FnOnce(Launch) -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let s = &*self.shared;
        let c = &s.counters;
        let mode = s.policy.refresh;
        // A fresh hit: read lock only, nothing allocated.
        {
            let map = s.map.read();
            if let Some(e) = map.get(key)
                && let Some(cached) = &e.cached
                && step(mode, Some(&cached.at), e.flight.is_some(), None, now)
                    == (Step::Serve { refresh: false })
            {
                e.last_used.store(
                    s.tick.fetch_add(1, Ordering::Relaxed) + 1,
                    Ordering::Relaxed,
                );
                c.hits.fetch_add(1, Ordering::Relaxed);
                return Lookup::Ready(Ok(cached.value.clone()));
            }
        }
        let mut map = s.map.write();
        if !map.contains_key(key) {
            self.make_room(&mut map, now);
        }
        let entry = map.entry(key.clone()).or_insert_with(Entry::new);
        entry.last_used.store(
            s.tick.fetch_add(1, Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
        let next = step(
            mode,
            entry.cached.as_ref().map(|c| &c.at),
            entry.flight.is_some(),
            entry.failure.as_ref().map(|f| f.until_ms),
            now,
        );
        if let Step::Serve { refresh } = next
            && let Some(cached) = &entry.cached
        {
            let value = cached.value.clone();
            if refresh {
                c.refreshes.fetch_add(1, Ordering::Relaxed);
                self.launch(entry, key.clone(), fetch(Launch::Refresh));
            }
            c.hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Ready(Ok(value));
        }
        // Past its usable end: free it now.
        if entry
            .cached
            .as_ref()
            .is_some_and(|cached| now >= cached.at.usable_until_ms)
        {
            entry.cached = None;
        }
        match (next, &entry.flight, &entry.failure) {
            (Step::Join, Some(f), _) => {
                c.coalesced.fetch_add(1, Ordering::Relaxed);
                Lookup::Wait(f.clone())
            }
            (Step::Failed, _, Some(fail)) => {
                c.negative_hits.fetch_add(1, Ordering::Relaxed);
                Lookup::Ready(Err(CacheError::Fetch(fail.error.clone())))
            }
            _ => {
                c.misses.fetch_add(1, Ordering::Relaxed);
                Lookup::Wait(self.launch(entry, key.clone(), fetch(Launch::Miss)))
            }
        }
    }

    /// Start a flight for `entry` on a spawned task; returns the channel its result arrives on.
    fn launch<Fut>(
        &self,
        entry: &mut Entry<V, E>,
        key: K,
        fetch: Fut,
    ) -> watch::Receiver<Outcome<V, E>>
    where
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let (tx, rx) = watch::channel::<Outcome<V, E>>(None);
        entry.flight = Some(rx.clone());
        let shared = self.shared.clone();
        let flight = rx.clone();
        tokio::spawn(async move {
            let res = fetch.await;
            let res = shared.complete(&key, &flight, res);
            let _ = tx.send(Some(res));
        });
        rx
    }

    /// Make room for one more entry (module docs: stale entries first, then the least recently used eighth;
    /// entries with a flight running stay).
    fn make_room(&self, map: &mut HashMap<K, Entry<V, E>>, now: u64) {
        let max = self.shared.policy.max_entries.max(1);
        if map.len() < max {
            return;
        }
        let before = map.len();
        let mode = self.shared.policy.refresh;
        map.retain(|_, e| !e.idle_and_stale(mode, now));
        if map.len() >= max {
            let mut idle: Vec<(u64, K)> = map
                .iter()
                .filter(|(_, e)| e.flight.is_none())
                .map(|(k, e)| (e.last_used.load(Ordering::Relaxed), k.clone()))
                .collect();
            idle.sort_unstable_by_key(|(t, _)| *t);
            let excess = map.len() + 1 - max;
            let n = excess.max(max / 8).min(idle.len());
            for (_, k) in idle.into_iter().take(n) {
                map.remove(&k);
            }
        }
        let evicted = before.saturating_sub(map.len());
        self.shared
            .counters
            .evictions
            .fetch_add(evicted as u64, Ordering::Relaxed);
    }
}

// === impl Shared ===

impl<K, V, E> Shared<K, V, E>
where
    K: Hash + Eq,
    V: Expiring + Clone,
    E: Display + Clone,
{
    /// Record a finished flight in its entry (if the entry still waits for this flight); returns what its
    /// waiters get ([`RefreshMode::Blocking`]: the cached value when the refresh failed and it is still usable).
    fn complete(
        &self,
        key: &K,
        flight: &watch::Receiver<Outcome<V, E>>,
        res: Result<V, E>,
    ) -> Result<V, E> {
        let policy = &self.policy;
        let now = now_ms();
        if res.is_err() {
            self.counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
        }
        let mut map = self.map.write();
        let Some(entry) = map.get_mut(key) else {
            return res; // evicted or cleared meanwhile: the waiters still get the result
        };
        if !entry
            .flight
            .as_ref()
            .is_some_and(|f| f.same_channel(flight))
        {
            return res;
        }
        entry.flight = None;
        match res {
            Ok(v) => {
                entry.cached = Some(Cached {
                    at: timeline(v.expires_on_ms(), now, policy),
                    value: v.clone(),
                });
                entry.failure = None;
                Ok(v)
            }
            Err(e) => {
                entry.failure = Some(Failure {
                    error: e.clone(),
                    until_ms: now.saturating_add(duration_ms(policy.failure_pause)),
                });
                match &mut entry.cached {
                    Some(c) if now < c.at.usable_until_ms => {
                        c.at.next_refresh_ms =
                            now.saturating_add(duration_ms(policy.refresh_retry_pause));
                        if policy.refresh == RefreshMode::Blocking {
                            tracing::warn!(error = %e, what = self.what, "refreshing a cached token failed; using the cached token until it expires");
                            return Ok(c.value.clone());
                        }
                    }
                    _ => entry.cached = None,
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
