//! Carrying out one target's share of a plan: the only place that writes AAIs and calls ARM.
//!
//! Order (upstream §2.5 step 9, made crash-safe):
//! 1. GET the VM / scale set when identities are to be added or removed, and decide for every identity about to
//!    be added whether it is already there (assigned out of band: recorded as preexisting and never removed).
//! 2. Write the AAIs first (POST new ones as `Created` with the finalizer and the preexisting annotation; PUT
//!    updated ones back to `Created`), so a crash after the ARM call never leaves an identity without its record.
//! 3. One ARM change for all of the target's adds and removes, chunked at ARM's 150-per-request limit; on an
//!    error naming erroneous identities, retry without them (`--update-user-msi-max-retry`).
//! 4. On success: AAIs become `Assigned` (event `binding applied` on the binding and on the pod); released AAIs
//!    are patched `Unassigned`, deleted and their finalizer removed (event `binding removed` on the pod if it
//!    still exists, naming the cause: its binding or identity deleted, or it no longer matches). On failure: GET again and settle each AAI by what ARM really holds
//!    (upstream's error path); what did not land stays `Created` and is retried with backoff.
//!
//! Every write goes through to the index at once (write-through), so the next plan never repeats it while the
//! watch event is still on its way.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use podid_core::assign::{
    AaiKey, Assign, AssignedInfo, NewAssigned, PREEXISTING_ANNOTATION, Release, Target, TargetPlan,
    failed_identity_ids, identity_delta, is_erroneous_identity_error,
};
use podid_k8s::{ASSIGNED_IDENTITY_FINALIZER, AzureAssignedIdentity};
use serde_json::json;

use crate::cloud::{Cloud, CloudError, CloudIdentity};
use crate::events::{self, Recorder};
use crate::state::Shared;

/// Executor settings.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Concurrent AAI writes (`--createDeleteBatch`).
    pub batch: usize,
    /// Extra ARM attempts without erroneous identities.
    pub max_retry: u32,
    /// Pause between them.
    pub retry_interval: Duration,
}

/// One target's work.
#[derive(Debug, Clone)]
pub struct Work {
    /// The target's plan.
    pub plan: TargetPlan,
    /// AAIs to create first.
    pub creates: Vec<NewAssigned>,
    /// AAIs to replace first.
    pub updates: Vec<NewAssigned>,
}

/// How it went.
#[derive(Debug, Default)]
pub struct Outcome {
    /// AAIs (and pods, for creates that failed) to plan again after a backoff.
    pub retry_aai: Vec<AaiKey>,
    /// Pods whose AAI could not be created.
    pub retry_pods: Vec<(String, String)>,
    /// AAIs that settled; their backoff resets.
    pub settled: Vec<AaiKey>,
    /// Pods whose AAI writes succeeded; their backoff resets.
    pub settled_pods: Vec<(String, String)>,
    /// ARM throttled this target until then.
    pub throttled: Option<Duration>,
    /// The target worked on.
    pub target: Option<Target>,
    /// Removals that did not happen and that no retried AAI carries (left-over from an update): the loop keeps
    /// them and tries again once the index confirms nothing needs them.
    pub unremoved: Vec<String>,
}

/// Shared executor context.
pub struct Exec {
    /// Kubernetes client.
    pub client: kube::Client,
    /// State.
    pub shared: Arc<Shared>,
    /// ARM.
    pub cloud: Arc<dyn Cloud>,
    /// Events.
    pub recorder: Recorder,
    /// Settings.
    pub cfg: ExecConfig,
    /// Bounds Kubernetes writes across all targets (`--createDeleteBatch`), which also bounds the client's
    /// connections and their buffers.
    pub writes: tokio::sync::Semaphore,
}

fn api_for(client: &kube::Client, ns: &str) -> Api<AzureAssignedIdentity> {
    Api::namespaced(client.clone(), ns)
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// What to do with each add: the identity was present before podid added it.
fn decide_preexisting(
    shared: &Shared,
    assigns: &[Assign],
    current: Option<&CloudIdentity>,
) -> Vec<(AaiKey, Option<bool>)> {
    let recorded = shared.recorded.lock();
    assigns
        .iter()
        .map(|a| {
            let p = match (recorded.get(&a.key), a.preexisting) {
                (Some(r), _) => Some(*r),
                (None, Some(p)) => Some(p),
                (None, None) if a.resource_id.is_empty() => Some(false),
                (None, None) => current.map(|c| c.has(&a.resource_id)),
            };
            (a.key.clone(), p)
        })
        .collect()
}

// === impl Exec ===

impl Exec {
    /// Run one target's work to the end.
    pub async fn run(&self, work: Work) -> Outcome {
        let started = Instant::now();
        let mut out = Outcome {
            target: work.plan.target.clone(),
            ..Outcome::default()
        };
        let plan = &work.plan;
        // Removals no AAI release carries (an AAI moved to another identity or target).
        let loose_removes: Vec<String> = plan
            .remove
            .iter()
            .filter(|id| {
                !plan
                    .release
                    .iter()
                    .any(|r| r.removes && r.resource_id.eq_ignore_ascii_case(id))
            })
            .cloned()
            .collect();
        let needs_arm = plan.target.is_some() && (!plan.add.is_empty() || !plan.remove.is_empty());
        // 1. What is on the target now.
        let mut current = None;
        if needs_arm && let Some(t) = &plan.target {
            match self.cloud.get(t).await {
                Ok(c) => current = Some(c),
                Err(e) => {
                    tracing::warn!(target = %t.name, error = %e, "could not read the identities of the VM / scale set");
                    out.throttled = e.retry_after;
                }
            }
        }
        let pre = decide_preexisting(&self.shared, &plan.assign, current.as_ref());
        let pre_by_key: std::collections::HashMap<&AaiKey, Option<bool>> =
            pre.iter().map(|(k, v)| (k, *v)).collect();
        let pre_of = |k: &AaiKey| pre_by_key.get(k).copied().flatten();
        // 2. AAIs first.
        let futs: Vec<_> = work
            .creates
            .iter()
            .map(|n| (true, n))
            .chain(work.updates.iter().map(|n| (false, n)))
            .map(|(create, n)| self.write_keyed(n, create, pre_of(&n.key)))
            .collect();
        let results: Vec<(AaiKey, bool)> = futures::stream::iter(futs)
            .buffer_unordered(self.cfg.batch.max(1))
            .collect()
            .await;
        let mut failed_writes: BTreeSet<AaiKey> = BTreeSet::new();
        for (k, ok) in results {
            if !ok {
                failed_writes.insert(k);
            }
        }
        for n in work.creates.iter().chain(&work.updates) {
            let pod = (n.pod_namespace.clone(), n.pod.clone());
            if failed_writes.contains(&n.key) {
                out.retry_pods.push(pod);
            } else {
                out.settled_pods.push(pod);
            }
        }
        // Never add an identity whose only requesters have no AAI recording it.
        let add: Vec<String> = plan
            .add
            .iter()
            .filter(|id| {
                let req = |failed: bool| {
                    plan.assign.iter().any(|a| {
                        a.resource_id.eq_ignore_ascii_case(id)
                            && failed_writes.contains(&a.key) == failed
                    })
                };
                req(false) || !req(true)
            })
            .cloned()
            .collect();
        // Existing AAIs being assigned that lack the annotation get it now (before ARM), so a crash cannot make
        // an identity we add look out-of-band to the next leader.
        for (k, p) in &pre {
            let is_new = work
                .creates
                .iter()
                .chain(&work.updates)
                .any(|n| &n.key == k);
            if is_new || failed_writes.contains(k) {
                continue;
            }
            if let Some(p) = p
                && !self.shared.recorded.lock().contains_key(k)
            {
                self.annotate(k, *p).await;
            }
        }
        if current.is_none() && needs_arm {
            // Could not read ARM: everything waits for a retry.
            out.retry_aai
                .extend(plan.assign.iter().map(|a| a.key.clone()));
            out.retry_aai
                .extend(plan.release.iter().map(|r| r.key.clone()));
            out.unremoved = loose_removes;
            return out;
        }
        let assigns: Vec<&Assign> = plan
            .assign
            .iter()
            .filter(|a| !failed_writes.contains(&a.key))
            .collect();
        // 3. One ARM change.
        let arm_result = match (&plan.target, &current) {
            (Some(t), Some(cur)) if needs_arm => {
                self.change_identities(t, cur, &add, &plan.remove).await
            }
            _ => Ok(()),
        };
        // 4. Settle.
        match arm_result {
            Ok(()) => {
                for a in assigns {
                    if self.mark_assigned(a).await {
                        out.settled.push(a.key.clone());
                    } else {
                        out.retry_aai.push(a.key.clone());
                    }
                }
                for r in &plan.release {
                    if self.release(&r.key, true).await {
                        out.settled.push(r.key.clone());
                    } else {
                        out.retry_aai.push(r.key.clone());
                    }
                }
            }
            Err(e) => {
                if e.retry_after.is_some() {
                    out.throttled = e.retry_after;
                }
                let t = plan.target.as_ref();
                let after = match t {
                    Some(t) => self.cloud.get(t).await.ok(),
                    None => None,
                };
                let Some(after) = after else {
                    out.retry_aai.extend(assigns.iter().map(|a| a.key.clone()));
                    out.retry_aai
                        .extend(plan.release.iter().map(|r| r.key.clone()));
                    out.unremoved = loose_removes;
                    return out;
                };
                out.unremoved = loose_removes
                    .iter()
                    .filter(|id| after.has(id))
                    .cloned()
                    .collect();
                for a in assigns {
                    if a.resource_id.is_empty() || after.has(&a.resource_id) {
                        if self.mark_assigned(a).await {
                            out.settled.push(a.key.clone());
                        } else {
                            out.retry_aai.push(a.key.clone());
                        }
                    } else {
                        self.warn_binding(&a.key, t, &e);
                        out.retry_aai.push(a.key.clone());
                    }
                }
                for r in &plan.release {
                    if release_blocked(r, &after) {
                        tracing::warn!(aai = %r.key.name, error = %e, "identity still on the VM / scale set; removal retried");
                        out.retry_aai.push(r.key.clone());
                    } else if self.release(&r.key, false).await {
                        out.settled.push(r.key.clone());
                    } else {
                        out.retry_aai.push(r.key.clone());
                    }
                }
            }
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "target done"
        );
        out
    }

    async fn change_identities(
        &self,
        t: &Target,
        first: &CloudIdentity,
        add: &[String],
        remove: &[String],
    ) -> Result<(), CloudError> {
        let mut add: Vec<String> = add.to_vec();
        let mut attempt = 0;
        let mut first_err = None;
        let mut cur = first.clone();
        loop {
            // Removals are decided on a fresh read: a body without userAssignedIdentities (the last one removed)
            // replaces the whole set, so it must not rest on a read taken before the AAI writes or a retry pause.
            if !remove.is_empty() {
                cur = self.cloud.get(t).await?;
            }
            if cur.provisioning_state.eq_ignore_ascii_case("Deleting") {
                return Err(CloudError {
                    code: "Deleting".into(),
                    message: format!(
                        "failed to update identities for {} in {}, vm is in 'Deleting' provisioning state",
                        t.name, t.resource_group
                    ),
                    retry_after: None,
                });
            }
            let delta = identity_delta(&cur.type_, &cur.user_assigned, &add, remove);
            let mut err = None;
            for body in &delta.bodies {
                if let Err(e) = self.cloud.patch(t, body).await {
                    err = Some(e);
                    break;
                }
            }
            let Some(e) = err else {
                // Upstream returns the first error even when a retry succeeded; the caller then checks with a GET.
                return match first_err {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            };
            if e.retry_after.is_some() || attempt >= self.cfg.max_retry {
                return Err(first_err.unwrap_or(e));
            }
            if !is_erroneous_identity_error(&e.code, &e.message) {
                return Err(first_err.unwrap_or(e));
            }
            let bad: Vec<String> = failed_identity_ids(&e.message);
            let before = add.len();
            add.retain(|a| !bad.iter().any(|b| b.eq_ignore_ascii_case(a)));
            if add.len() == before || (add.is_empty() && remove.is_empty()) {
                return Err(first_err.unwrap_or(e));
            }
            tracing::info!(target = %t.name, erroneous = bad.len(), "retrying the identity change without erroneous identities");
            first_err.get_or_insert(e);
            attempt += 1;
            tokio::time::sleep(self.cfg.retry_interval).await;
        }
    }

    async fn write_keyed(
        &self,
        n: &NewAssigned,
        create: bool,
        pre: Option<bool>,
    ) -> (AaiKey, bool) {
        (n.key.clone(), self.write_aai(n, create, pre).await)
    }

    async fn write_aai(&self, n: &NewAssigned, create: bool, pre: Option<bool>) -> bool {
        let _permit = self.writes.acquire().await.ok();
        let identity = self
            .shared
            .identities
            .read()
            .get(&(n.identity.namespace.clone(), n.identity.name.clone()))
            .cloned();
        let binding = self
            .shared
            .bindings
            .read()
            .get(&(n.binding.namespace.clone(), n.binding.name.clone()))
            .cloned();
        let (Some(identity), Some(binding)) = (identity, binding) else {
            // Deleted meanwhile; the next plan sees it.
            return false;
        };
        let obj = crate::convert::build_assigned(n, &identity, &binding, pre);
        let api = api_for(&self.client, &n.key.namespace);
        let t0 = Instant::now();
        let m = &self.shared.metrics;
        let res = if create {
            let r = api.create(&PostParams::default(), &obj).await;
            if r.as_ref().is_err_and(|e| is_status(e, 409)) {
                // Exists already (written by a previous leader): take it as it is and let the plan decide.
                api.get(&n.key.name).await
            } else {
                r
            }
        } else {
            match api.get(&n.key.name).await {
                Ok(mut old) => {
                    old.spec = obj.spec.clone();
                    old.metadata.labels = obj.metadata.labels.clone();
                    if let Some(p) = pre {
                        old.metadata
                            .annotations
                            .get_or_insert_with(Default::default)
                            .insert(PREEXISTING_ANNOTATION.into(), p.to_string());
                    }
                    old.status = obj.status.clone();
                    api.replace(&n.key.name, &PostParams::default(), &old).await
                }
                Err(e) => Err(e),
            }
        };
        match res {
            Ok(o) => {
                if create {
                    m.addition_count.inc();
                    m.addition_duration.observe(t0.elapsed().as_secs_f64());
                } else {
                    m.update_count.inc();
                    m.update_duration.observe(t0.elapsed().as_secs_f64());
                }
                self.shared.apply_assigned(&o);
                true
            }
            Err(e) => {
                m.kube_error(if create {
                    "assigned_identity_addition"
                } else {
                    "assigned_identity_update"
                });
                let verb = if create { "create" } else { "update" };
                let msg = format!(
                    "failed to {verb} AzureAssignedIdentity {}/{} for pod {}/{}, error: {e}",
                    n.key.name, n.key.namespace, n.pod_namespace, n.pod
                );
                self.emit_on_pod(
                    &n.pod_namespace,
                    &n.pod,
                    "Warning",
                    events::BINDING_APPLY_ERROR,
                    msg.clone(),
                );
                self.recorder.emit(
                    events::reference(&binding),
                    "Warning",
                    events::BINDING_APPLY_ERROR,
                    msg,
                );
                false
            }
        }
    }

    async fn annotate(&self, k: &AaiKey, pre: bool) {
        let _permit = self.writes.acquire().await.ok();
        let api = api_for(&self.client, &k.namespace);
        let patch = json!({"metadata": {"annotations": {PREEXISTING_ANNOTATION: pre.to_string()}}});
        match api
            .patch(&k.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(o) => self.shared.apply_assigned(&o),
            Err(e) => {
                tracing::warn!(aai = %k.name, error = %e, "could not record the preexisting flag")
            }
        }
    }

    async fn mark_assigned(&self, a: &Assign) -> bool {
        let _permit = self.writes.acquire().await.ok();
        let api = api_for(&self.client, &a.key.namespace);
        let patch = json!({"status": {"status": "Assigned", "availableReplicas": 1}});
        match api
            .patch(&a.key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(o) => {
                let binding = o.spec.azure_binding_ref.clone();
                self.shared.apply_assigned(&o);
                let identity = o.spec.azure_identity_ref.as_ref().map(|i| {
                    (
                        i.metadata.namespace.clone().unwrap_or_default(),
                        kube::ResourceExt::name_any(i),
                    )
                });
                if let Some(b) = binding {
                    let b_name = kube::ResourceExt::name_any(&b);
                    let (id_ns, id_name) = identity.unwrap_or_default();
                    self.emit_on_pod(
                        &o.spec.pod_namespace,
                        &o.spec.pod,
                        "Normal",
                        events::BINDING_APPLIED,
                        format!(
                            "Binding {b_name} applied on node {}: AzureIdentity {id_ns}/{id_name} is assigned \
                             (AzureAssignedIdentity {}/{})",
                            o.spec.node_name, a.key.namespace, a.key.name
                        ),
                    );
                    self.recorder.emit(
                        events::reference(&b),
                        "Normal",
                        events::BINDING_APPLIED,
                        format!(
                            "Binding {b_name} applied on node {} for pod {}",
                            o.spec.node_name, a.key.name
                        ),
                    );
                }
                true
            }
            Err(e) if is_status(&e, 404) => {
                // Gone meanwhile: nothing to settle.
                self.shared.delete_assigned(&a.key);
                true
            }
            Err(e) => {
                self.shared
                    .metrics
                    .kube_error("update_azure_assigned_identity_status");
                tracing::warn!(aai = %a.key.name, error = %e, "failed to update AzureAssignedIdentity status to Assigned");
                false
            }
        }
    }

    fn warn_binding(&self, k: &AaiKey, t: Option<&Target>, e: &CloudError) {
        let info = self.shared.cluster.lock().assigned(k).cloned();
        let Some(info) = info else { return };
        let msg = format!(
            "failed to apply binding {}/{} node {} for pod {}/{}, error: {}",
            info.binding.namespace,
            info.binding.name,
            t.map(|t| t.name.as_str()).unwrap_or(&info.node),
            info.pod_namespace,
            info.pod,
            e
        );
        self.emit_on_pod(
            &info.pod_namespace,
            &info.pod,
            "Warning",
            events::BINDING_APPLY_ERROR,
            msg.clone(),
        );
        if let Some(b) = self.shared.binding_of(&info) {
            self.recorder.emit(
                events::reference(&b),
                "Warning",
                events::BINDING_APPLY_ERROR,
                msg,
            );
        }
    }

    /// The assignment events on the pod as well (podid; upstream wrote them on the binding only). Nothing when the
    /// pod is gone or no longer labelled.
    fn emit_on_pod(&self, namespace: &str, pod: &str, type_: &str, reason: &str, message: String) {
        if let Some(r) = self.shared.pod_reference(namespace, pod) {
            self.recorder.emit(r, type_, reason, message);
        }
    }

    /// `binding removed` on a pod that still exists after its AAI went, with the cause.
    fn pod_binding_removed(&self, info: &AssignedInfo) {
        let gone = |map_has: bool, kind: &str, r: &podid_core::assign::ObjRef| {
            (!map_has).then(|| format!("{kind} {}/{} was deleted", r.namespace, r.name))
        };
        let binding_key = (info.binding.namespace.clone(), info.binding.name.clone());
        let identity_key = (info.identity.namespace.clone(), info.identity.name.clone());
        let has_binding = self.shared.bindings.read().contains_key(&binding_key);
        let has_identity = self.shared.identities.read().contains_key(&identity_key);
        let cause = gone(has_binding, "AzureIdentityBinding", &info.binding)
            .or_else(|| gone(has_identity, "AzureIdentity", &info.identity))
            .unwrap_or_else(|| {
                "the pod no longer matches it (label changed, pod finished, identity refused or node gone)"
                    .to_string()
            });
        self.emit_on_pod(
            &info.pod_namespace,
            &info.pod,
            "Normal",
            events::BINDING_REMOVED,
            format!(
                "Binding {} removed from node {}: AzureIdentity {}/{} is no longer assigned, because {cause}",
                info.binding.name, info.node, info.identity.namespace, info.identity.name
            ),
        );
    }

    /// Delete an AAI: `Unassigned` (when `mark`), DELETE, finalizer off. True when it is gone.
    pub async fn release(&self, k: &AaiKey, mark: bool) -> bool {
        let _permit = self.writes.acquire().await.ok();
        let info = self.shared.cluster.lock().assigned(k).cloned();
        let api = api_for(&self.client, &k.namespace);
        let t0 = Instant::now();
        if mark {
            let patch = json!({"status": {"status": "Unassigned"}});
            match api
                .patch(&k.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {
                    self.shared.delete_assigned(k);
                    return true;
                }
                Err(e) => {
                    self.shared
                        .metrics
                        .kube_error("update_azure_assigned_identity_status");
                    tracing::warn!(aai = %k.name, error = %e, "failed to update AzureAssignedIdentity status to Unassigned");
                }
            }
        }
        let deleted = match api.delete(&k.name, &DeleteParams::default()).await {
            Ok(either) => either.left(),
            Err(e) if is_status(&e, 404) => {
                self.shared.delete_assigned(k);
                return true;
            }
            Err(e) => {
                self.shared.metrics.kube_error("assigned_identity_deletion");
                tracing::warn!(aai = %k.name, error = %e, "failed to delete AzureAssignedIdentity");
                return false;
            }
        };
        // Still there (finalizers): take ours off; retry on a conflict. Gone only when that worked.
        let mut obj = deleted;
        let mut done = obj.is_none();
        for _ in 0..3 {
            let Some(mut o) = obj.take() else { break };
            let before = o.metadata.finalizers.as_ref().map_or(0, |f| f.len());
            if let Some(f) = o.metadata.finalizers.as_mut() {
                f.retain(|x| x != ASSIGNED_IDENTITY_FINALIZER);
            }
            if o.metadata.finalizers.as_ref().map_or(0, |f| f.len()) == before {
                done = true;
                break;
            }
            match api.replace(&k.name, &PostParams::default(), &o).await {
                Ok(_) => {
                    done = true;
                    break;
                }
                Err(e) if is_status(&e, 404) => {
                    done = true;
                    break;
                }
                Err(e) if is_status(&e, 409) => match api.get_opt(&k.name).await {
                    Ok(Some(fresh)) => obj = Some(fresh),
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(_) => break,
                },
                Err(e) => {
                    self.shared.metrics.kube_error("assigned_identity_deletion");
                    tracing::warn!(aai = %k.name, error = %e, "failed to remove the finalizer");
                    return false;
                }
            }
        }
        if !done {
            tracing::warn!(aai = %k.name, "could not remove the finalizer; retried");
            return false;
        }
        let m = &self.shared.metrics;
        m.deletion_count.inc();
        m.deletion_duration.observe(t0.elapsed().as_secs_f64());
        self.shared.delete_assigned(k);
        if let Some(info) = info {
            self.pod_binding_removed(&info);
        }
        true
    }
}

/// After a failed change: a release must wait while the identity it removes is still on the target.
fn release_blocked(r: &Release, after: &CloudIdentity) -> bool {
    r.removes && !r.resource_id.is_empty() && after.has(&r.resource_id)
}
