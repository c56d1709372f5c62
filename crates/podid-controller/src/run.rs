//! The leader's loop: collect events for `--batch-delay`, plan what changed, hand each VM / scale set its share.
//!
//! - One task per target at a time; a target still busy (a 40 s scale-set PATCH) does not hold up the others, and
//!   work for it waits and is re-planned when it finishes, so it gets one PATCH for everything that piled up.
//! - Failed work is re-planned after an exponential backoff per AAI (`--retry-backoff-base` doubling up to
//!   `--retry-backoff-max`), not after the hourly resync; a throttled target (429) is left alone until its
//!   Retry-After passed.
//! - `--syncRetryDuration` re-plans everything (a safety net; events normally suffice) and
//!   `--identity-assignment-reconcile-interval` reads the targets holding assigned identities from ARM and re-adds
//!   what was removed out of band.
//! - On shutdown no new work starts; in-flight targets finish (bounded by `--shutdown-grace`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use podid_core::assign::{AaiKey, Config as PlanConfig, NewAssigned, Plan, Target, TargetPlan};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cloud::Cloud;
use crate::events;
use crate::executor::{Exec, Outcome, Work};

/// Loop settings.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Planner settings.
    pub plan: PlanConfig,
    /// Event collection window.
    pub batch_delay: Duration,
    /// Full re-plan period.
    pub full_sync: Duration,
    /// ARM reconcile period.
    pub reconcile: Duration,
    /// Backoff base.
    pub backoff_base: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Shutdown grace.
    pub shutdown_grace: Duration,
}

struct Done {
    key: String,
    outcome: Outcome,
}

struct Loop {
    exec: Arc<Exec>,
    cfg: LoopConfig,
    in_flight: HashSet<String>,
    deferred_aai: HashMap<String, Vec<AaiKey>>,
    deferred_pods: HashMap<String, Vec<(String, String)>>,
    throttled: HashMap<String, Instant>,
    attempts: HashMap<AaiKey, u32>,
    retry_aai: BTreeMap<Instant, Vec<AaiKey>>,
    retry_pods: BTreeMap<Instant, Vec<(String, String)>>,
    pod_attempts: HashMap<(String, String), u32>,
    /// Removals planned but not carried out (target busy, or the change failed), per target key, with the time
    /// they may be tried again. Re-checked against the index before they run.
    pending_remove: HashMap<String, (Target, BTreeSet<String>, Instant)>,
    done_tx: mpsc::UnboundedSender<Done>,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Graceful stop: in-flight work finished (or the grace expired).
    Stopped,
    /// The leader lease was lost: ended at once.
    LeaseLost,
}

/// Key of the node-gone cleanup work.
const NODE_GONE_KEY: &str = "\u{0}node-gone";

fn target_key(t: &Option<Target>) -> String {
    t.as_ref().map(Target::key).unwrap_or_default()
}

/// Run the loop until `stop` resolves (then let in-flight targets finish) or `lost` resolves (then return at once;
/// the caller exits the process, so nothing more is written).
pub async fn run<L>(
    exec: Arc<Exec>,
    cfg: LoopConfig,
    stop: impl std::future::Future<Output = ()>,
    lost: L,
) -> Ended
where
    L: std::future::Future + Unpin,
{
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut l = Loop {
        exec,
        cfg,
        in_flight: HashSet::new(),
        deferred_aai: HashMap::new(),
        deferred_pods: HashMap::new(),
        throttled: HashMap::new(),
        attempts: HashMap::new(),
        retry_aai: BTreeMap::new(),
        retry_pods: BTreeMap::new(),
        pod_attempts: HashMap::new(),
        pending_remove: HashMap::new(),
        done_tx,
    };
    let mut lost = lost;
    let shared = l.exec.shared.clone();
    let mut next_full = Instant::now() + l.cfg.full_sync;
    let mut next_reconcile = Instant::now() + l.cfg.reconcile;
    let far = Duration::from_secs(24 * 3600);
    futures::pin_mut!(stop);
    shared.active.store(true, Ordering::Release);
    loop {
        let next_retry = l
            .retry_aai
            .keys()
            .next()
            .copied()
            .into_iter()
            .chain(l.retry_pods.keys().next().copied())
            .chain(l.throttled.values().copied())
            .chain(l.pending_remove.values().map(|(_, _, at)| *at))
            .min()
            .unwrap_or_else(|| Instant::now() + far);
        tokio::select! {
            _ = &mut lost => {
                shared.active.store(false, Ordering::Release);
                return Ended::LeaseLost;
            }
            _ = &mut stop => break,
            _ = shared.wake.notified() => {}
            Some(d) = done_rx.recv() => l.finish(d),
            _ = tokio::time::sleep_until(next_full) => {
                next_full = Instant::now() + l.cfg.full_sync;
                shared.cluster.lock().mark_all_dirty();
            }
            _ = tokio::time::sleep_until(next_reconcile) => {
                next_reconcile = Instant::now() + l.cfg.reconcile;
                l.reconcile().await;
                continue;
            }
            _ = tokio::time::sleep_until(next_retry) => l.due_retries(),
        }
        l.flush_pending_removes();
        if !shared.synced() || !shared.cluster.lock().has_dirty() {
            continue;
        }
        // Collect what else arrives within the batch window.
        tokio::time::sleep(l.cfg.batch_delay).await;
        while let Ok(d) = done_rx.try_recv() {
            l.finish(d);
        }
        let started = std::time::Instant::now();
        let plan = shared.cluster.lock().plan_dirty(&l.cfg.plan);
        if plan.is_empty() && plan.blocked.is_empty() {
            continue;
        }
        let m = &shared.metrics;
        m.cycle_count.inc();
        l.dispatch(plan);
        m.cycle_duration.observe(started.elapsed().as_secs_f64());
    }
    shared.active.store(false, Ordering::Release);
    // Let in-flight work finish: never leave a target half-written.
    let deadline = Instant::now() + l.cfg.shutdown_grace;
    while !l.in_flight.is_empty() {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(d)) => {
                l.in_flight.remove(&d.key);
            }
            _ => {
                tracing::warn!(
                    targets = l.in_flight.len(),
                    "shutdown grace expired with ARM operations in flight"
                );
                break;
            }
        }
    }
    Ended::Stopped
}

// === impl Loop ===

impl Loop {
    fn dispatch(&mut self, plan: Plan) {
        let shared = self.exec.shared.clone();
        for n in &plan.notes {
            tracing::info!(note = %n, "plan");
        }
        for b in &plan.blocked {
            tracing::warn!(aai = %b.key.name, reason = %b.reason, "cannot assign");
        }
        let Plan {
            creates,
            updates,
            targets,
            node_gone,
            ..
        } = plan;
        let mut creates: Vec<Option<NewAssigned>> = creates.into_iter().map(Some).collect();
        let mut updates: Vec<Option<NewAssigned>> = updates.into_iter().map(Some).collect();
        let now = Instant::now();
        for tp in targets {
            let key = target_key(&tp.target);
            let take = |list: &mut Vec<Option<NewAssigned>>| -> Vec<NewAssigned> {
                let mut out = Vec::new();
                for slot in list.iter_mut() {
                    if slot
                        .as_ref()
                        .is_some_and(|n| tp.assign.iter().any(|a| a.key == n.key))
                        && let Some(n) = slot.take()
                    {
                        out.push(n);
                    }
                }
                out
            };
            let work = Work {
                creates: take(&mut creates),
                updates: take(&mut updates),
                plan: tp,
            };
            let busy =
                self.in_flight.contains(&key) || self.throttled.get(&key).is_some_and(|t| *t > now);
            if busy {
                self.defer(&key, &work);
                continue;
            }
            let mut work = work;
            self.merge_pending_removes(&key, &mut work.plan);
            self.spawn(key, work);
        }
        // Creates or updates no target claimed (should not happen): run them on their own.
        let rest_c: Vec<NewAssigned> = creates.into_iter().flatten().collect();
        let rest_u: Vec<NewAssigned> = updates.into_iter().flatten().collect();
        if !rest_c.is_empty() || !rest_u.is_empty() {
            let work = Work {
                plan: TargetPlan {
                    target: None,
                    add: vec![],
                    remove: vec![],
                    assign: vec![],
                    release: vec![],
                },
                creates: rest_c,
                updates: rest_u,
            };
            let key = "\u{0}orphans".to_string();
            if self.in_flight.contains(&key) {
                self.defer(&key, &work);
            } else {
                self.spawn(key, work);
            }
        }
        if !node_gone.is_empty() {
            if self.in_flight.contains(NODE_GONE_KEY) {
                self.deferred_aai
                    .entry(NODE_GONE_KEY.to_string())
                    .or_default()
                    .extend(node_gone);
            } else {
                self.spawn_node_gone(node_gone);
            }
        }
        drop(shared);
    }

    fn defer(&mut self, key: &str, work: &Work) {
        if let Some(t) = &work.plan.target
            && !work.plan.remove.is_empty()
        {
            self.add_pending_removes(key, t, &work.plan.remove, Instant::now());
        }
        let aai = self.deferred_aai.entry(key.to_string()).or_default();
        aai.extend(work.plan.assign.iter().map(|a| a.key.clone()));
        aai.extend(work.plan.release.iter().map(|r| r.key.clone()));
        let pods = self.deferred_pods.entry(key.to_string()).or_default();
        pods.extend(
            work.creates
                .iter()
                .chain(&work.updates)
                .map(|n| (n.pod_namespace.clone(), n.pod.clone())),
        );
    }

    fn spawn(&mut self, key: String, work: Work) {
        let touched: Vec<AaiKey> = work
            .plan
            .assign
            .iter()
            .map(|a| a.key.clone())
            .chain(work.plan.release.iter().map(|r| r.key.clone()))
            .collect();
        self.in_flight.insert(key.clone());
        let exec = self.exec.clone();
        let tx = self.done_tx.clone();
        let handle = tokio::spawn(async move { exec.run(work).await });
        tokio::spawn(async move {
            // A panicking or aborted task still frees its target; what it touched is retried.
            let outcome = handle.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "target work ended abnormally; retrying what it touched");
                Outcome {
                    retry_aai: touched.clone(),
                    ..Outcome::default()
                }
            });
            let _ = tx.send(Done { key, outcome });
        });
    }

    fn backoff(&mut self, k: &AaiKey) -> Instant {
        let n = self.attempts.entry(k.clone()).or_insert(0);
        let d = self
            .cfg
            .backoff_base
            .saturating_mul(1u32 << (*n).min(16))
            .min(self.cfg.backoff_max);
        *n += 1;
        Instant::now() + d
    }

    fn finish(&mut self, d: Done) {
        self.in_flight.remove(&d.key);
        let shared = self.exec.shared.clone();
        if let Some(ra) = d.outcome.throttled {
            self.throttled.insert(d.key.clone(), Instant::now() + ra);
        }
        for k in &d.outcome.settled {
            self.attempts.remove(k);
        }
        for p in &d.outcome.settled_pods {
            self.pod_attempts.remove(p);
        }
        for k in d.outcome.retry_aai {
            let at = match d.outcome.throttled {
                Some(ra) => Instant::now() + ra,
                None => self.backoff(&k),
            };
            self.retry_aai.entry(at).or_default().push(k);
        }
        for p in d.outcome.retry_pods {
            let n = self.pod_attempts.entry(p.clone()).or_insert(0);
            let at = Instant::now()
                + self
                    .cfg
                    .backoff_base
                    .saturating_mul(1u32 << (*n).min(16))
                    .min(self.cfg.backoff_max);
            *n += 1;
            self.retry_pods.entry(at).or_default().push(p);
        }
        if let Some(t) = d.outcome.target.as_ref()
            && !d.outcome.unremoved.is_empty()
        {
            let at = match d.outcome.throttled {
                Some(ra) => Instant::now() + ra,
                None => Instant::now() + self.cfg.backoff_base,
            };
            self.add_pending_removes(&d.key, t, &d.outcome.unremoved, at);
        }
        // Work that piled up for this target is planned again now that it is free.
        let mut c = shared.cluster.lock();
        if let Some(keys) = self.deferred_aai.remove(&d.key) {
            for k in keys {
                c.mark_assigned_dirty(&k);
            }
        }
        if let Some(pods) = self.deferred_pods.remove(&d.key) {
            for (ns, name) in pods {
                c.mark_pod_dirty(&ns, &name);
            }
        }
        drop(c);
        shared.wake.notify_one();
    }

    fn due_retries(&mut self) {
        let now = Instant::now();
        let shared = self.exec.shared.clone();
        let mut c = shared.cluster.lock();
        while let Some(e) = self.retry_aai.first_entry() {
            if *e.key() > now {
                break;
            }
            for k in e.remove() {
                c.mark_assigned_dirty(&k);
            }
        }
        while let Some(e) = self.retry_pods.first_entry() {
            if *e.key() > now {
                break;
            }
            for (ns, name) in e.remove() {
                c.mark_pod_dirty(&ns, &name);
            }
        }
        let expired: Vec<String> = self
            .throttled
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.throttled.remove(&k);
            if let Some(keys) = self.deferred_aai.remove(&k) {
                for a in keys {
                    c.mark_assigned_dirty(&a);
                }
            }
            if let Some(pods) = self.deferred_pods.remove(&k) {
                for (ns, name) in pods {
                    c.mark_pod_dirty(&ns, &name);
                }
            }
        }
        drop(c);
        shared.wake.notify_one();
    }

    fn add_pending_removes(&mut self, key: &str, t: &Target, ids: &[String], at: Instant) {
        let e = self
            .pending_remove
            .entry(key.to_string())
            .or_insert_with(|| (t.clone(), BTreeSet::new(), at));
        e.1.extend(ids.iter().cloned());
        e.2 = e.2.max(at);
    }

    /// Fold a target's left-over removals into its next change, if the index still allows them.
    fn merge_pending_removes(&mut self, key: &str, plan: &mut TargetPlan) {
        let Some((t, ids, _)) = self.pending_remove.remove(key) else {
            return;
        };
        let shared = self.exec.shared.clone();
        let c = shared.cluster.lock();
        for id in ids {
            let allowed = c.removal_still_allowed(&self.cfg.plan, &t, &id);
            let planned = plan.remove.iter().any(|r| r.eq_ignore_ascii_case(&id));
            let added = plan.add.iter().any(|a| a.eq_ignore_ascii_case(&id));
            if allowed && !planned && !added {
                plan.remove.push(id);
            }
        }
    }

    /// Run left-over removals on free targets that have no other work coming.
    fn flush_pending_removes(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .pending_remove
            .iter()
            .filter(|(k, (_, _, at))| {
                *at <= now
                    && !self.in_flight.contains(*k)
                    && self.throttled.get(*k).is_none_or(|t| *t <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some((t, _, _)) = self.pending_remove.get(&key).cloned() else {
                continue;
            };
            let mut plan = TargetPlan {
                target: Some(t),
                add: vec![],
                remove: vec![],
                assign: vec![],
                release: vec![],
            };
            self.merge_pending_removes(&key, &mut plan);
            if !plan.remove.is_empty() {
                tracing::info!(target = %key, removals = plan.remove.len(), "removing identities left over from earlier batches");
                self.spawn(
                    key,
                    Work {
                        plan,
                        creates: vec![],
                        updates: vec![],
                    },
                );
            }
        }
    }

    fn spawn_node_gone(&mut self, keys: Vec<AaiKey>) {
        self.in_flight.insert(NODE_GONE_KEY.to_string());
        let exec = self.exec.clone();
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let mut outcome = Outcome::default();
            for k in &keys {
                let info = exec.shared.cluster.lock().assigned(k).cloned();
                let ok = exec.release(k, false).await;
                if let Some(info) = info
                    && let Some(b) = exec.shared.binding_of(&info)
                {
                    let (t, reason, msg) = if ok {
                        (
                            "Normal",
                            events::BINDING_REMOVED,
                            format!(
                                "Binding {} removed from node {} for pod {}",
                                info.binding.name, info.node, info.pod
                            ),
                        )
                    } else {
                        (
                            "Warning",
                            events::BINDING_REMOVE_ERROR,
                            format!(
                                "failed to remove binding {} from node {} for pod {}",
                                info.binding.name, info.node, info.pod
                            ),
                        )
                    };
                    exec.recorder.emit(events::reference(&b), t, reason, msg);
                }
                if ok {
                    outcome.settled.push(k.clone());
                } else {
                    outcome.retry_aai.push(k.clone());
                }
            }
            let _ = tx.send(Done {
                key: NODE_GONE_KEY.to_string(),
                outcome,
            });
        });
    }

    /// Read every target holding assigned identities and re-add what disappeared (upstream §2.6; add only).
    async fn reconcile(&mut self) {
        let shared = self.exec.shared.clone();
        let targets = shared.cluster.lock().targets_with_assigned(&self.cfg.plan);
        let now = Instant::now();
        let mut arm = BTreeMap::new();
        for t in targets {
            let key = t.key();
            if self.in_flight.contains(&key) || self.throttled.get(&key).is_some_and(|x| *x > now) {
                continue;
            }
            match self.exec.cloud.get(&t).await {
                Ok(ci) => {
                    arm.insert(
                        key,
                        ci.user_assigned
                            .iter()
                            .map(|s| s.to_ascii_lowercase())
                            .collect(),
                    );
                }
                Err(e) => {
                    tracing::warn!(target = %t.name, error = %e, "reconcile: could not read identities");
                    if let Some(ra) = e.retry_after {
                        self.throttled.insert(key, Instant::now() + ra);
                    }
                }
            }
        }
        if arm.is_empty() {
            return;
        }
        let plan = shared.cluster.lock().plan_reconcile(&self.cfg.plan, &arm);
        if !plan.is_empty() {
            tracing::info!(
                targets = plan.targets.len(),
                "reconcile: re-adding identities removed out of band"
            );
            self.dispatch(plan);
        }
    }
}

/// The cloud is only needed through [`Exec`]; re-exported for wiring.
pub type DynCloud = Arc<dyn Cloud>;
