//! Shared state of a running simulator: the world, request counters and log, faults, runtime settings, the
//! token cache, and ARM's long-running operations.
//!
//! Long-running operations: a VM or scale-set write changes the ARM model at once (GET shows the new identity
//! block with `provisioningState: Updating`), while what the machine sees — IMDS — switches when the operation
//! completes. Each resource keeps the identity block IMDS saw before its first unfinished operation plus the
//! snapshots of unfinished ones; IMDS uses the newest completed snapshot.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::world::{Index, ResourceIdentity, World};

/// Endpoint families (counters, log, faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Instance Metadata Service.
    Imds,
    /// Entra ID.
    Entra,
    /// Azure Resource Manager.
    Arm,
    /// Key Vault.
    Keyvault,
    /// The control API itself.
    Control,
}

impl Family {
    /// All families.
    pub const ALL: [Family; 5] = [
        Family::Imds,
        Family::Entra,
        Family::Arm,
        Family::Keyvault,
        Family::Control,
    ];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Imds => "imds",
            Family::Entra => "entra",
            Family::Arm => "arm",
            Family::Keyvault => "keyvault",
            Family::Control => "control",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == s)
    }

    fn idx(self) -> usize {
        self as usize
    }
}

/// A fault injected into one family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Fault {
    /// Added latency before the request is handled, ms.
    pub latency_ms: u64,
    /// Answer with this status instead (429, 500, 503, ...) using the family's error body.
    pub status: Option<u16>,
    /// `Retry-After` seconds on injected errors (default 1 for 429 and 503).
    pub retry_after: Option<u64>,
    /// Close the connection without answering.
    pub drop: bool,
    /// Affect only this many more requests (then the fault clears); absent = until removed.
    pub remaining: Option<u64>,
}

/// What a fault does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultAction {
    /// Latency to add.
    pub latency_ms: u64,
    /// Status to answer with.
    pub status: Option<u16>,
    /// `Retry-After`.
    pub retry_after: Option<u64>,
    /// Drop the connection.
    pub drop: bool,
}

/// One logged request (credentials redacted).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Sequence number.
    pub seq: u64,
    /// Unix time, ms.
    pub time_ms: u64,
    /// Family.
    pub family: Family,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query / form parameters with secrets redacted.
    pub params: Vec<(String, String)>,
    /// Response status (0 when the connection was dropped).
    pub status: u16,
    /// Handling time, µs.
    pub duration_us: u64,
    /// Peer address.
    pub peer: String,
    /// Error code or short note.
    pub note: String,
}

#[derive(Default)]
struct FamilyCounters {
    total: AtomicU64,
    by_status: Mutex<BTreeMap<u16, u64>>,
}

/// A cached signed token.
#[derive(Debug, Clone)]
pub struct CachedToken {
    /// The JWT.
    pub token: Arc<str>,
    /// `exp`.
    pub expires_on: i64,
    /// `nbf`.
    pub not_before: i64,
    /// When it was signed.
    pub issued: i64,
}

/// A long-running ARM operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Subscription.
    pub subscription: String,
    /// Start, Unix ms.
    pub started_ms: u64,
    /// Completion, Unix ms.
    pub completes_ms: u64,
}

#[derive(Default)]
struct Lro {
    ops: HashMap<String, Operation>,
    /// Per resource key: the block IMDS saw before the unfinished operations, and their snapshots.
    pending: HashMap<String, (ResourceIdentity, Vec<(u64, ResourceIdentity)>)>,
}

/// The world and its index.
#[derive(Debug, Clone)]
pub struct WorldState {
    /// The world.
    pub world: World,
    /// Its index.
    pub index: Index,
    /// Bumped on every change.
    pub generation: u64,
}

impl WorldState {
    /// Wrap a normalized world.
    pub fn new(world: World) -> WorldState {
        let index = Index::build(&world);
        WorldState {
            world,
            index,
            generation: 0,
        }
    }

    /// Rebuild the index after a change.
    pub fn reindex(&mut self) {
        self.index = Index::build(&self.world);
        self.generation += 1;
    }
}

/// Mutable shared state.
pub struct State {
    /// World and index.
    pub world: RwLock<WorldState>,
    /// Runtime settings.
    pub settings: RwLock<Settings>,
    faults: Mutex<BTreeMap<Family, Fault>>,
    counters: [FamilyCounters; 5],
    log: Mutex<VecDeque<LogEntry>>,
    log_capacity: usize,
    log_seq: AtomicU64,
    tokens: RwLock<HashMap<String, CachedToken>>,
    lro: Mutex<Lro>,
    /// Identities with a federated credential write in flight.
    pub fic_busy: Mutex<HashSet<String>>,
}

impl State {
    /// New state.
    pub fn new(world: World, settings: Settings, log_capacity: usize) -> State {
        State {
            world: RwLock::new(WorldState::new(world)),
            settings: RwLock::new(settings),
            faults: Mutex::new(BTreeMap::new()),
            counters: Default::default(),
            log: Mutex::new(VecDeque::new()),
            log_capacity,
            log_seq: AtomicU64::new(0),
            tokens: RwLock::new(HashMap::new()),
            lro: Mutex::new(Lro::default()),
            fic_busy: Mutex::new(HashSet::new()),
        }
    }

    /// Replace the world (resets operations and cached tokens).
    pub fn replace_world(&self, world: World) {
        let mut w = self.world.write();
        let gen_ = w.generation + 1;
        *w = WorldState::new(world);
        w.generation = gen_;
        drop(w);
        *self.lro.lock() = Lro::default();
        self.tokens.write().clear();
    }

    /// Count a response.
    pub fn count(&self, f: Family, status: u16) {
        let c = &self.counters[f.idx()];
        c.total.fetch_add(1, Ordering::Relaxed);
        *c.by_status.lock().entry(status).or_insert(0) += 1;
    }

    /// Counters as JSON: `{family: {total, byStatus: {code: n}}}`.
    pub fn counters_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for f in Family::ALL {
            let c = &self.counters[f.idx()];
            let by: BTreeMap<String, u64> = c
                .by_status
                .lock()
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect();
            out.insert(
                f.as_str().into(),
                json!({"total": c.total.load(Ordering::Relaxed), "byStatus": by}),
            );
        }
        Value::Object(out)
    }

    /// Total requests of a family.
    pub fn total(&self, f: Family) -> u64 {
        self.counters[f.idx()].total.load(Ordering::Relaxed)
    }

    /// Reset counters.
    pub fn reset_counters(&self) {
        for c in &self.counters {
            c.total.store(0, Ordering::Relaxed);
            c.by_status.lock().clear();
        }
    }

    /// Append to the request log.
    pub fn log(&self, mut e: LogEntry) {
        if self.log_capacity == 0 {
            return;
        }
        e.seq = self.log_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut l = self.log.lock();
        if l.len() >= self.log_capacity {
            l.pop_front();
        }
        l.push_back(e);
    }

    /// The newest `limit` log entries (optionally of one family), oldest first.
    pub fn log_entries(&self, family: Option<Family>, limit: usize) -> Vec<LogEntry> {
        let l = self.log.lock();
        let mut v: Vec<LogEntry> = l
            .iter()
            .rev()
            .filter(|e| family.is_none_or(|f| e.family == f))
            .take(limit)
            .cloned()
            .collect();
        v.reverse();
        v
    }

    /// Clear the log.
    pub fn clear_log(&self) {
        self.log.lock().clear();
    }

    /// Set or clear a fault.
    pub fn set_fault(&self, f: Family, fault: Option<Fault>) {
        let mut m = self.faults.lock();
        match fault {
            Some(x) => {
                m.insert(f, x);
            }
            None => {
                m.remove(&f);
            }
        }
    }

    /// All faults.
    pub fn faults(&self) -> BTreeMap<Family, Fault> {
        self.faults.lock().clone()
    }

    /// Clear every fault.
    pub fn clear_faults(&self) {
        self.faults.lock().clear();
    }

    /// What the fault of `f` does to the next request (consuming one of `remaining`).
    pub fn take_fault(&self, f: Family) -> Option<FaultAction> {
        let mut m = self.faults.lock();
        let fault = m.get_mut(&f)?;
        if fault.remaining == Some(0) {
            m.remove(&f);
            return None;
        }
        let action = FaultAction {
            latency_ms: fault.latency_ms,
            status: fault.status,
            retry_after: fault.retry_after.or(match fault.status {
                Some(429) | Some(503) => Some(1),
                _ => None,
            }),
            drop: fault.drop,
        };
        if let Some(r) = fault.remaining.as_mut() {
            *r -= 1;
            if *r == 0 {
                m.remove(&f);
            }
        }
        Some(action)
    }

    /// A cached token for `key` when still reusable.
    pub fn cached_token(&self, key: &str, now: i64) -> Option<CachedToken> {
        let reuse = self.settings.read().token_reuse_secs;
        if reuse <= 0 {
            return None;
        }
        let t = self.tokens.read().get(key).cloned()?;
        (now - t.issued < reuse && t.expires_on - now > 300).then_some(t)
    }

    /// Remember a token.
    pub fn cache_token(&self, key: String, t: CachedToken) {
        let mut m = self.tokens.write();
        if m.len() >= 50_000 {
            m.clear();
        }
        m.insert(key, t);
    }

    /// Record an operation on resource `key`, `before` being the block IMDS sees until it completes.
    pub fn start_operation(
        &self,
        op_id: &str,
        op: Operation,
        resource_key: &str,
        before: &ResourceIdentity,
        after: &ResourceIdentity,
    ) {
        let mut l = self.lro.lock();
        Self::prune(&mut l, op.started_ms);
        let entry = l
            .pending
            .entry(resource_key.to_string())
            .or_insert_with(|| (before.clone(), Vec::new()));
        entry.1.push((op.completes_ms, after.clone()));
        if l.ops.len() >= 10_000 {
            let done: Vec<String> = l
                .ops
                .iter()
                .filter(|(_, o)| o.completes_ms <= op.started_ms)
                .map(|(k, _)| k.clone())
                .collect();
            for k in done {
                l.ops.remove(&k);
            }
        }
        l.ops.insert(op_id.to_string(), op);
    }

    fn prune(l: &mut Lro, now_ms: u64) {
        l.pending.retain(|_, (base, snaps)| {
            while snaps.first().is_some_and(|(t, _)| *t <= now_ms) {
                let (_, s) = snaps.remove(0);
                *base = s;
            }
            !snaps.is_empty()
        });
    }

    /// An operation.
    pub fn operation(&self, id: &str) -> Option<Operation> {
        self.lro.lock().ops.get(id).cloned()
    }

    /// Whether resource `key` has an unfinished operation.
    pub fn updating(&self, key: &str, now_ms: u64) -> bool {
        let l = self.lro.lock();
        l.pending
            .get(key)
            .is_some_and(|(_, s)| s.iter().any(|(t, _)| *t > now_ms))
    }

    /// The identity block IMDS sees for resource `key` whose ARM model is `model`.
    pub fn effective_identity(
        &self,
        key: &str,
        model: &ResourceIdentity,
        now_ms: u64,
    ) -> ResourceIdentity {
        let l = self.lro.lock();
        if l.pending.is_empty() {
            return model.clone();
        }
        match l.pending.get(key) {
            None => model.clone(),
            Some((base, snaps)) => snaps
                .iter()
                .rev()
                .find(|(t, _)| *t <= now_ms)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| base.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::IdentityType;

    fn ident(users: &[&str]) -> ResourceIdentity {
        ResourceIdentity {
            kind: Some(IdentityType::from_flags(false, !users.is_empty())),
            principal_id: None,
            client_id: None,
            user_assigned_identities: users.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn faults_count_down() {
        let s = State::new(World::default(), Settings::default(), 10);
        assert_eq!(s.take_fault(Family::Imds), None);
        s.set_fault(
            Family::Imds,
            Some(Fault {
                status: Some(429),
                remaining: Some(2),
                ..Fault::default()
            }),
        );
        let a = s.take_fault(Family::Imds).expect("first");
        assert_eq!((a.status, a.retry_after), (Some(429), Some(1)));
        assert!(s.take_fault(Family::Imds).is_some());
        assert_eq!(s.take_fault(Family::Imds), None);
        assert!(s.faults().is_empty());
        s.set_fault(
            Family::Arm,
            Some(Fault {
                drop: true,
                ..Fault::default()
            }),
        );
        assert!(s.take_fault(Family::Arm).is_some_and(|a| a.drop));
        assert!(s.take_fault(Family::Arm).is_some());
        s.clear_faults();
        assert_eq!(s.take_fault(Family::Arm), None);
    }

    #[test]
    fn log_and_counters() {
        let s = State::new(World::default(), Settings::default(), 2);
        for i in 0..3 {
            s.log(LogEntry {
                seq: 0,
                time_ms: i,
                family: Family::Entra,
                method: "POST".into(),
                path: "/".into(),
                params: vec![],
                status: 200,
                duration_us: 1,
                peer: String::new(),
                note: String::new(),
            });
            s.count(Family::Entra, 200);
        }
        s.count(Family::Entra, 401);
        let e = s.log_entries(None, 10);
        assert_eq!(e.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert!(s.log_entries(Some(Family::Imds), 10).is_empty());
        let c = s.counters_json();
        assert_eq!(c["entra"]["total"], json!(4));
        assert_eq!(c["entra"]["byStatus"]["401"], json!(1));
        s.reset_counters();
        assert_eq!(s.total(Family::Entra), 0);
    }

    #[test]
    fn operations_lag_imds() {
        let s = State::new(World::default(), Settings::default(), 0);
        let a = ident(&["a"]);
        let b = ident(&["a", "b"]);
        let c = ident(&["b"]);
        s.start_operation(
            "op1",
            Operation {
                subscription: "s".into(),
                started_ms: 0,
                completes_ms: 100,
            },
            "vm",
            &a,
            &b,
        );
        s.start_operation(
            "op2",
            Operation {
                subscription: "s".into(),
                started_ms: 10,
                completes_ms: 200,
            },
            "vm",
            &b,
            &c,
        );
        assert_eq!(s.effective_identity("vm", &c, 50), a);
        assert_eq!(s.effective_identity("vm", &c, 150), b);
        assert_eq!(s.effective_identity("vm", &c, 250), c);
        assert!(s.updating("vm", 150));
        assert!(!s.updating("vm", 250));
        assert_eq!(s.effective_identity("other", &a, 0), a);
        assert!(s.operation("op1").is_some());
    }

    #[test]
    fn token_cache() {
        let s = State::new(World::default(), Settings::default(), 0);
        s.cache_token(
            "k".into(),
            CachedToken {
                token: Arc::from("t"),
                expires_on: 10_000,
                not_before: 0,
                issued: 100,
            },
        );
        assert!(s.cached_token("k", 200).is_some());
        assert!(s.cached_token("k", 100 + 300).is_none());
        assert!(s.cached_token("x", 200).is_none());
        s.settings.write().token_reuse_secs = 0;
        assert!(s.cached_token("k", 200).is_none());
    }
}
