//! Leader election compatible with client-go's resource locks.
//!
//! Upstream MIC uses client-go's `EndpointsResourceLock`: the record lives in the annotation
//! `control-plane.alpha.kubernetes.io/leader` of Endpoints `<namespace>/<name>` (default `default/aad-pod-identity-mic`),
//! which is what the upstream chart's RBAC (`endpoints: create, get, update`) and e2e helper expect. podid keeps
//! that lock by default and offers a `coordination.k8s.io/v1` Lease (`--leader-election-lock=leases`) for clusters
//! where the Endpoints API is going away (the RBAC must then grant `leases: create, get, update`).
//!
//! The algorithm is client-go's: a candidate takes the lock when it is empty, held by itself, or when the record
//! has not changed for `lease_duration` *as observed locally* (no trust in other machines' clocks); the holder
//! renews every `retry_period` and gives up after failing to renew for `renew_deadline`. Writes carry the
//! resourceVersion they read, so two candidates never both win. Unlike upstream MIC, podid releases the lock on a
//! graceful shutdown (holder cleared, duration 1 s), so a standby takes over at once instead of after a full lease.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Longest lease duration believed from a record (one day).
const MAX_LEASE_SECS: i64 = 86_400;

/// The annotation client-go's Endpoints and ConfigMap locks store the record in.
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// Which object holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockKind {
    /// Endpoints with the leader annotation (upstream MIC; the chart's RBAC).
    Endpoints,
    /// A coordination.k8s.io/v1 Lease.
    Leases,
}

/// client-go's `LeaderElectionRecord`, as JSON in the annotation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Who holds the lock ("" = released).
    #[serde(default)]
    pub holder_identity: String,
    /// Lease duration in seconds.
    #[serde(default)]
    pub lease_duration_seconds: i64,
    /// When the current holder acquired it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_time: Option<String>,
    /// Last renewal (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<String>,
    /// Number of holder changes.
    #[serde(default)]
    pub leader_transitions: i64,
}

/// Settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Lock object kind.
    pub kind: LockKind,
    /// Lock namespace (`--leader-election-namespace`).
    pub namespace: String,
    /// Lock name (`--leader-election-name`).
    pub name: String,
    /// Our identity (`--leader-election-instance`).
    pub identity: String,
    /// `--leader-election-duration`.
    pub lease_duration: Duration,
}

impl Config {
    /// client-go's RenewDeadline as MIC sets it: half the lease.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration / 2
    }
    /// client-go's RetryPeriod as MIC sets it: a quarter of the lease.
    pub fn retry_period(&self) -> Duration {
        (self.lease_duration / 4).max(Duration::from_millis(50))
    }
}

/// What a read of the lock object found.
struct Current {
    record: Option<Record>,
    /// The raw record text, to notice changes.
    raw: String,
    resource_version: Option<String>,
    exists: bool,
}

/// A candidate for the lock.
pub struct Elector {
    cfg: Config,
    client: kube::Client,
    observed_raw: String,
    observed_at: Instant,
    held: Option<Record>,
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

// === impl Elector ===

impl Elector {
    /// A candidate; nothing is written until [`Elector::try_acquire_or_renew`].
    pub fn new(client: kube::Client, cfg: Config) -> Elector {
        Elector {
            cfg,
            client,
            observed_raw: String::new(),
            observed_at: Instant::now(),
            held: None,
        }
    }

    /// Settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    async fn read(&self) -> kube::Result<Current> {
        match self.cfg.kind {
            LockKind::Endpoints => {
                let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
                Ok(match api.get_opt(&self.cfg.name).await? {
                    None => Current {
                        record: None,
                        raw: String::new(),
                        resource_version: None,
                        exists: false,
                    },
                    Some(ep) => {
                        let raw = ep
                            .metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get(LEADER_ANNOTATION))
                            .cloned()
                            .unwrap_or_default();
                        Current {
                            record: serde_json::from_str(&raw).ok(),
                            raw,
                            resource_version: ep.metadata.resource_version,
                            exists: true,
                        }
                    }
                })
            }
            LockKind::Leases => {
                let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
                Ok(match api.get_opt(&self.cfg.name).await? {
                    None => Current {
                        record: None,
                        raw: String::new(),
                        resource_version: None,
                        exists: false,
                    },
                    Some(l) => {
                        let s = l.spec.unwrap_or_default();
                        let record = Record {
                            holder_identity: s.holder_identity.unwrap_or_default(),
                            lease_duration_seconds: s.lease_duration_seconds.unwrap_or(0) as i64,
                            acquire_time: s.acquire_time.map(|t| t.0.to_string()),
                            renew_time: s.renew_time.map(|t| t.0.to_string()),
                            leader_transitions: s.lease_transitions.unwrap_or(0) as i64,
                        };
                        Current {
                            raw: serde_json::to_string(&record).unwrap_or_default(),
                            record: Some(record),
                            resource_version: l.metadata.resource_version,
                            exists: true,
                        }
                    }
                })
            }
        }
    }

    async fn write(&self, cur: &Current, rec: &Record) -> kube::Result<()> {
        let pp = PostParams::default();
        let meta = |annotations: Option<BTreeMap<String, String>>| ObjectMeta {
            name: Some(self.cfg.name.clone()),
            namespace: Some(self.cfg.namespace.clone()),
            resource_version: cur.resource_version.clone(),
            annotations,
            ..Default::default()
        };
        match self.cfg.kind {
            LockKind::Endpoints => {
                let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
                let mut ann = BTreeMap::new();
                ann.insert(
                    LEADER_ANNOTATION.to_string(),
                    serde_json::to_string(rec).unwrap_or_default(),
                );
                if cur.exists {
                    // Keep whatever else is on the object (subsets, other annotations).
                    let mut ep = api.get(&self.cfg.name).await?;
                    if ep.metadata.resource_version != cur.resource_version {
                        return Err(conflict());
                    }
                    ep.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .extend(ann);
                    api.replace(&self.cfg.name, &pp, &ep).await.map(|_| ())
                } else {
                    let ep = Endpoints {
                        metadata: meta(Some(ann)),
                        ..Default::default()
                    };
                    api.create(&pp, &ep).await.map(|_| ())
                }
            }
            LockKind::Leases => {
                let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
                let parse = |t: &Option<String>| {
                    t.as_ref()
                        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                        .map(MicroTime)
                };
                let lease = Lease {
                    metadata: meta(None),
                    spec: Some(LeaseSpec {
                        holder_identity: Some(rec.holder_identity.clone()),
                        lease_duration_seconds: Some(rec.lease_duration_seconds as i32),
                        acquire_time: parse(&rec.acquire_time).or_else(|| Some(now_micro())),
                        renew_time: parse(&rec.renew_time).or_else(|| Some(now_micro())),
                        lease_transitions: Some(rec.leader_transitions as i32),
                        ..Default::default()
                    }),
                };
                if cur.exists {
                    api.replace(&self.cfg.name, &pp, &lease).await.map(|_| ())
                } else {
                    api.create(&pp, &lease).await.map(|_| ())
                }
            }
        }
    }

    /// One attempt: take the lock if free or expired, renew it if ours. Returns whether we hold it now.
    pub async fn try_acquire_or_renew(&mut self) -> kube::Result<bool> {
        let cur = self.read().await?;
        if cur.raw != self.observed_raw {
            self.observed_raw = cur.raw.clone();
            self.observed_at = Instant::now();
        }
        let lease = self.cfg.lease_duration;
        let mut rec = Record {
            holder_identity: self.cfg.identity.clone(),
            lease_duration_seconds: lease.as_secs().max(1) as i64,
            acquire_time: Some(now_rfc3339()),
            renew_time: Some(now_rfc3339()),
            leader_transitions: 0,
        };
        if let Some(old) = &cur.record {
            let ours = old.holder_identity == self.cfg.identity;
            // A record from another writer is input: clamp its duration (a huge value must not overflow).
            let lease_secs = old.lease_duration_seconds.clamp(0, MAX_LEASE_SECS) as u64;
            let expired = old.holder_identity.is_empty()
                || self
                    .observed_at
                    .checked_add(Duration::from_secs(lease_secs))
                    .is_none_or(|t| t <= Instant::now());
            if !ours && !expired {
                self.held = None;
                return Ok(false);
            }
            if ours {
                rec.acquire_time = old.acquire_time.clone();
                rec.leader_transitions = old.leader_transitions;
            } else {
                rec.leader_transitions = old.leader_transitions.saturating_add(1);
            }
        }
        self.write(&cur, &rec).await?;
        self.observed_raw = serde_json::to_string(&rec).unwrap_or_default();
        self.observed_at = Instant::now();
        self.held = Some(rec);
        Ok(true)
    }

    /// Wait until we hold the lock (retrying every retry period; errors are logged and retried).
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "leader election: could not take the lock");
                }
            }
            tokio::time::sleep(self.cfg.retry_period()).await;
        }
    }

    /// Keep renewing; returns when the lock is lost (no successful renewal within the renew deadline, or another
    /// holder took it).
    pub async fn hold(&mut self) {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period()).await;
            // Like client-go, an attempt may not outlive the renew deadline: a request that never answers must
            // not keep us "leading" after the lease expired for everybody else.
            let left = self.cfg.renew_deadline().saturating_sub(last_ok.elapsed());
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_ok = Instant::now(),
                Ok(Ok(false)) => return,
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election: renewal failed"),
                Err(_) => tracing::warn!("leader election: renewal timed out"),
            }
            if last_ok.elapsed() >= self.cfg.renew_deadline() {
                return;
            }
        }
    }

    /// Give the lock up (graceful shutdown): holder cleared, so a standby takes it at its next try.
    pub async fn release(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let Ok(cur) = self.read().await else { return };
        if cur.record.as_ref().map(|r| r.holder_identity.as_str())
            != Some(self.cfg.identity.as_str())
        {
            return;
        }
        let rec = Record {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(now_rfc3339()),
            renew_time: Some(now_rfc3339()),
            leader_transitions: held.leader_transitions,
        };
        if let Err(e) = self.write(&cur, &rec).await {
            tracing::warn!(error = %e, "leader election: could not release the lock");
        }
    }
}

fn conflict() -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        code: 409,
        message: "the lock object changed".into(),
        reason: "Conflict".into(),
        ..Default::default()
    }))
}
