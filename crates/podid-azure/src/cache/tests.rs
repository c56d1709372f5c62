//! Unit tests: the pure timeline and lookup decisions (tables, no clock), eviction, and the flights (single
//! flight, background refresh, blocking fallback, negative entries, cancellation) with in-memory fetches.

use std::sync::atomic::AtomicUsize;

use super::*;

/// A value that expires at a fixed epoch millisecond.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tok(u64);

impl Expiring for Tok {
    fn expires_on_ms(&self) -> u64 {
        self.0
    }
}

fn policy(refresh: RefreshMode) -> CachePolicy {
    CachePolicy {
        refresh,
        refresh_margin: Duration::from_secs(300),
        expiry_safety: Duration::from_secs(30),
        failure_pause: Duration::from_secs(1),
        refresh_retry_pause: Duration::from_secs(10),
        max_entries: 16,
    }
}

const NOW: u64 = 1_700_000_000_000;
const HOUR_MS: u64 = 3_600_000;

#[test]
fn timelines_of_both_modes() {
    // (lifetime ms, Background (refresh, usable) before expiry, Blocking (refresh, usable) before expiry)
    for (life, bg, bl) in [
        (HOUR_MS, (300_000, 30_000), (300_000, 30_000)),
        (400_000, (200_000, 30_000), (200_000, 30_000)),
        (100_000, (50_000, 25_000), (50_000, 30_000)),
        (4_000, (2_000, 1_000), (2_000, 30_000)),
        (0, (0, 0), (0, 30_000)),
    ] {
        for (mode, (refresh, usable)) in
            [(RefreshMode::Background, bg), (RefreshMode::Blocking, bl)]
        {
            let t = timeline(NOW + life, NOW, &policy(mode));
            assert_eq!(NOW + life - t.refresh_at_ms, refresh, "{mode:?} {life}");
            assert_eq!(NOW + life - t.usable_until_ms, usable, "{mode:?} {life}");
            assert_eq!(t.next_refresh_ms, 0);
        }
    }
    // Already expired: refreshed at once, never usable.
    let t = timeline(NOW - 5_000, NOW, &policy(RefreshMode::Blocking));
    assert_eq!(t.refresh_at_ms, NOW - 5_000);
    assert!(t.usable_until_ms <= NOW);
}

#[test]
fn lookup_steps() {
    use RefreshMode::{Background, Blocking};
    let t = Timeline {
        refresh_at_ms: NOW + 100,
        usable_until_ms: NOW + 200,
        next_refresh_ms: 0,
    };
    let paused = Timeline {
        refresh_at_ms: NOW - 100,
        usable_until_ms: NOW + 200,
        next_refresh_ms: NOW + 50,
    };
    let serve = |refresh| Step::Serve { refresh };
    // (mode, cached, flight, failure until, now offset, step)
    type Case<'a> = (
        RefreshMode,
        Option<&'a Timeline>,
        bool,
        Option<u64>,
        u64,
        Step,
    );
    let cases: [Case; 18] = [
        (Background, Some(&t), false, None, 0, serve(false)),
        (Background, Some(&t), false, None, 100, serve(true)),
        (Background, Some(&t), true, None, 100, serve(false)),
        (Background, Some(&t), false, None, 200, Step::Start),
        (Background, Some(&t), true, None, 200, Step::Join),
        (Background, Some(&paused), false, None, 0, serve(false)),
        (Background, Some(&paused), false, None, 50, serve(true)),
        (Background, None, false, Some(NOW + 10), 0, Step::Failed),
        (Background, None, false, Some(NOW + 10), 10, Step::Start),
        (Background, None, true, Some(NOW + 10), 0, Step::Join),
        (Blocking, Some(&t), false, None, 0, serve(false)),
        (Blocking, Some(&t), false, None, 100, Step::Start),
        (Blocking, Some(&t), true, None, 100, Step::Join),
        (Blocking, Some(&paused), false, None, 0, serve(false)),
        (Blocking, Some(&paused), false, None, 50, Step::Start),
        (Blocking, None, false, Some(NOW), 0, Step::Start),
        (Blocking, None, false, None, 0, Step::Start),
        (Blocking, None, true, None, 0, Step::Join),
    ];
    for (i, (mode, cached, flight, failure, at, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            step(mode, cached, flight, failure, NOW + at),
            want,
            "case {i}"
        );
    }
}

type Cache = TokenCache<usize, Tok, String>;

fn entry_with(cached: Option<Cached<Tok>>, last_used: u64) -> Entry<Tok, String> {
    let e = Entry::new();
    e.last_used.store(last_used, Ordering::Relaxed);
    Entry { cached, ..e }
}

#[test]
fn eviction_drops_stale_entries_first_then_the_least_recently_used() {
    let c = Cache::new(policy(RefreshMode::Background), "test token");
    let now = now_ms();
    let live = |last_used: u64| {
        entry_with(
            Some(Cached {
                value: Tok(now + HOUR_MS),
                at: Timeline {
                    refresh_at_ms: now + 3_000_000,
                    usable_until_ms: now + 3_500_000,
                    next_refresh_ms: 0,
                },
            }),
            last_used,
        )
    };
    {
        let mut map = c.shared.map.write();
        // 4 stale (a failure only), 12 live with recency = index.
        for i in 0..4 {
            let mut e = entry_with(None, 100 + i as u64);
            e.failure = Some(Failure {
                error: "x".into(),
                until_ms: now + 10_000,
            });
            map.insert(i, e);
        }
        for i in 4..16 {
            map.insert(i, live(i as u64));
        }
        c.make_room(&mut map, now);
        // The stale ones went, every live one stayed.
        assert_eq!(map.len(), 12);
        assert!((0..4).all(|i| !map.contains_key(&i)));
        // Fill up again with live entries, plus one with a flight running and the oldest recency.
        for i in 16..19 {
            map.insert(i, live(i as u64));
        }
        let (_tx, rx) = watch::channel::<Outcome<Tok, String>>(None);
        let mut e = entry_with(None, 0);
        e.flight = Some(rx);
        map.insert(19, e);
        assert_eq!(map.len(), 16);
        c.make_room(&mut map, now);
        // max/8 = 2 least recently used idle entries (4 and 5) went; the flight stayed.
        assert_eq!(map.len(), 14);
        assert!(!map.contains_key(&4) && !map.contains_key(&5));
        assert!(map.contains_key(&6));
        assert!(map.contains_key(&19));
    }
    let s = c.stats();
    assert_eq!((s.evictions, s.entries), (6, 14));
    c.clear();
    assert_eq!(c.stats().entries, 0);
}

/// A fetch closure that counts its flights and answers `res` after `delay`.
fn fetcher(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    res: Result<Tok, String>,
) -> impl FnOnce(Launch) -> std::pin::Pin<Box<dyn Future<Output = Result<Tok, String>> + Send>> + use<>
{
    let calls = calls.clone();
    move |_| {
        calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            res
        })
    }
}

#[tokio::test]
async fn concurrent_misses_share_one_flight_and_hits_fetch_nothing() {
    let c = Cache::new(policy(RefreshMode::Background), "test token");
    let calls = Arc::new(AtomicUsize::new(0));
    let tok = Tok(now_ms() + HOUR_MS);
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let (c, f) = (
                c.clone(),
                fetcher(&calls, Duration::from_millis(20), Ok(tok.clone())),
            );
            tokio::spawn(async move { c.get(&1, f).await })
        })
        .collect();
    for w in waiters {
        assert_eq!(w.await.expect("join"), Ok(tok.clone()));
    }
    for _ in 0..5 {
        let f = fetcher(&calls, Duration::ZERO, Ok(Tok(0)));
        assert_eq!(c.get(&1, f).await, Ok(tok.clone()));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    let s = c.stats();
    assert_eq!((s.misses, s.coalesced, s.hits, s.entries), (1, 7, 5, 1));
}

/// Put a value whose refresh point has passed (usable for a minute more) under key 1.
fn due(c: &Cache, value: Tok) {
    let now = now_ms();
    c.shared.map.write().insert(
        1,
        entry_with(
            Some(Cached {
                value,
                at: Timeline {
                    refresh_at_ms: now - 1,
                    usable_until_ms: now + 60_000,
                    next_refresh_ms: 0,
                },
            }),
            0,
        ),
    );
}

#[tokio::test]
async fn background_mode_serves_in_the_margin_while_one_refresh_runs() {
    let c = Cache::new(policy(RefreshMode::Background), "test token");
    let calls = Arc::new(AtomicUsize::new(0));
    let old = Tok(now_ms() + 90_000);
    let new = Tok(now_ms() + HOUR_MS);
    due(&c, old.clone());
    for _ in 0..3 {
        let f = fetcher(&calls, Duration::from_millis(50), Ok(new.clone()));
        assert_eq!(c.get(&1, f).await, Ok(old.clone()));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let f = fetcher(&calls, Duration::ZERO, Ok(Tok(0)));
    assert_eq!(c.get(&1, f).await, Ok(new));
    // A failed refresh: still served, no new refresh during the retry pause.
    due(&c, old.clone());
    let f = fetcher(&calls, Duration::ZERO, Err("down".into()));
    assert_eq!(c.get(&1, f).await, Ok(old.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let f = fetcher(&calls, Duration::ZERO, Err("down".into()));
    assert_eq!(c.get(&1, f).await, Ok(old));
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    let s = c.stats();
    assert_eq!((s.refreshes, s.fetch_failures), (2, 1));
}

#[tokio::test]
async fn blocking_mode_waits_at_the_refresh_point_and_falls_back_on_failure() {
    let c = Cache::new(policy(RefreshMode::Blocking), "test token");
    let calls = Arc::new(AtomicUsize::new(0));
    let old = Tok(now_ms() + 90_000);
    let new = Tok(now_ms() + HOUR_MS);
    // Due: the caller waits for the fresh value.
    due(&c, old.clone());
    let f = fetcher(&calls, Duration::from_millis(20), Ok(new.clone()));
    assert_eq!(c.get(&1, f).await, Ok(new));
    // A failed refresh hands out the cached value, then serves it for the retry pause without a fetch.
    due(&c, old.clone());
    let f = fetcher(&calls, Duration::ZERO, Err("down".into()));
    assert_eq!(c.get(&1, f).await, Ok(old.clone()));
    let f = fetcher(&calls, Duration::ZERO, Err("down".into()));
    assert_eq!(c.get(&1, f).await, Ok(old));
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    // Nothing to fall back on (invalidated): the caller gets the error.
    c.invalidate(&1);
    let f = fetcher(&calls, Duration::ZERO, Err("down".into()));
    assert_eq!(c.get(&1, f).await, Err(CacheError::Fetch("down".into())));
}

#[tokio::test]
async fn failures_are_answered_during_the_failure_pause_only() {
    let mut p = policy(RefreshMode::Background);
    p.failure_pause = Duration::from_millis(100);
    let c = Cache::new(p, "test token");
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let f = fetcher(&calls, Duration::ZERO, Err("refused".into()));
        assert_eq!(c.get(&1, f).await, Err(CacheError::Fetch("refused".into())));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(c.stats().negative_hits, 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let tok = Tok(now_ms() + HOUR_MS);
    let f = fetcher(&calls, Duration::ZERO, Ok(tok.clone()));
    assert_eq!(c.get(&1, f).await, Ok(tok));
    // With no pause, every failure fetches again.
    let mut p = policy(RefreshMode::Blocking);
    p.failure_pause = Duration::ZERO;
    let c = Cache::new(p, "test token");
    for _ in 0..2 {
        let f = fetcher(&calls, Duration::ZERO, Err("refused".into()));
        assert!(c.get(&1, f).await.is_err());
    }
    assert_eq!(calls.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn a_flight_ending_without_a_result_is_cancelled_and_forgotten() {
    let c = Cache::new(policy(RefreshMode::Blocking), "test token");
    let f = |_| async { panic!("the fetch task dies") };
    assert_eq!(c.get(&1, f).await, Err(CacheError::Cancelled));
    assert!(
        c.shared
            .map
            .read()
            .get(&1)
            .is_some_and(|e| e.flight.is_none())
    );
    // A cleared cache: the flight's result reaches its waiter but is not cached.
    let calls = Arc::new(AtomicUsize::new(0));
    let tok = Tok(now_ms() + HOUR_MS);
    let waiter = {
        let (c, f) = (
            c.clone(),
            fetcher(&calls, Duration::from_millis(50), Ok(tok.clone())),
        );
        tokio::spawn(async move { c.get(&2, f).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.clear();
    assert_eq!(waiter.await.expect("join"), Ok(tok));
    assert!(c.is_empty());
}
