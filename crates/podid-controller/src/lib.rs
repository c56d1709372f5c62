//! `podid controller`: the pod-identity controller, a drop-in for aad-pod-identity's MIC.
//!
//! # What it does
//! It watches labelled pods, nodes, AzureIdentities, AzureIdentityBindings and AzureAssignedIdentities (AAIs),
//! decides with the pure planner in `podid_core::assign` which AAIs should exist and which user-assigned
//! identities each VM or scale set needs, and makes it so: AAIs are written (`Created` → `Assigned`, deleted via
//! `Unassigned` with the upstream finalizer), identities are added to and removed from VMs and scale sets through
//! ARM. The upstream contract holds: names, namespaces, labels, finalizer, statuses, events, flags, health bodies,
//! metric names, the Endpoints leader lock (reference §1–§2).
//!
//! # How it differs (documented in docs/controller.md)
//! - Events are batched for `--batch-delay` and only what changed is re-planned (no full cycle per event, no
//!   resync storms); each VM / scale set gets one ARM change per batch, chunked at 150 identities.
//! - Work on one scale set (a 40 s PATCH) never holds up another; what piles up meanwhile goes in the next PATCH.
//! - Pods in Succeeded or Failed release their identities (`--release-finished-pods`).
//! - 429 / Retry-After honoured per target; failures retried with exponential backoff, not after an hour.
//! - Identities found on a VM / scale set before podid assigned them (out of band) are recorded on the AAI and
//!   never removed; immutable and cluster identities are never removed; nothing in use on a target is removed.
//! - Graceful shutdown finishes in-flight ARM operations, then releases the leader lock.
//!
//! # Layout
//! [`args`] flags · [`state`] watches and shared index · [`run`] the batching loop · [`executor`] AAI and ARM
//! writes · [`cloud`] the ARM seam and its podid-azure implementation · [`leader`] leader election ·
//! [`server`] probes and metrics · [`events`] · [`metrics`] · [`upgrade`] the one-time type upgrade ·
//! [`legacy`] rewriting pre-v1.6 keys as they arrive.

pub mod args;
pub mod azure;
pub mod cloud;
pub mod convert;
pub mod events;
pub mod executor;
pub mod leader;
pub mod legacy;
pub mod metrics;
pub mod run;
pub mod server;
pub mod state;
pub mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use args::ControllerArgs;
use executor::{Exec, ExecConfig};
use state::Shared;

/// Upstream's fatal message when `MIC_POD_NAMESPACE` is missing.
pub const NAMESPACE_MISSING: &str =
    "namespace not specified. Please add meta.namespace as env variable MIC_POD_NAMESPACE";

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "podid-controller".to_string())
}

/// Run the controller until `stop` resolves (graceful) or the leader lease is lost (error, as upstream exits 1).
pub async fn run(
    args: ControllerArgs,
    env: impl Fn(&str) -> Option<String>,
    stop: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let namespace = env("MIC_POD_NAMESPACE")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow::anyhow!(NAMESPACE_MISSING))?;
    let force_namespaced =
        args.force_namespaced || env("FORCENAMESPACED").is_some_and(|v| v == "true");
    if args.enable_scale_features {
        tracing::warn!("--enableScaleFeatures is deprecated and has no effect on the controller");
    }
    if args.enable_profile {
        tracing::warn!("--enableProfile is accepted for compatibility; podid never serves pprof");
    }
    if args.cloudconfig.is_empty() {
        tracing::warn!("--cloudconfig not passed will use aadpodidentity-admin-secret");
    }
    let client = podid_runtime::kube::client(&args.kube, &args.user_agent()).await?;
    let azure = azure::AzureCloud::from_args(&args, &env).await?;
    let mut immutable: std::collections::BTreeSet<String> =
        args.immutable_ids().into_iter().collect();
    if let Some(c) = azure.cluster_identity() {
        immutable.insert(c.to_ascii_lowercase());
    }
    let protected = podid_core::protect::ProtectedIdentities::from_flags(
        azure.cluster_client_ids(),
        &args.denied_identities,
        &args.allow_cluster_identity_namespaces,
    );
    let plan_cfg = podid_core::assign::Config {
        force_namespaced,
        immutable_client_ids: immutable,
        release_finished_pods: args.release_finished_pods,
        fallback_subscription: azure.subscription().to_string(),
        fallback_resource_group: azure.resource_group().to_string(),
    };
    let shared = Arc::new(Shared::default());
    azure.observe_into(shared.clone());
    let probe = server::spawn(
        SocketAddr::new(args.bind_address, args.http_probe_port),
        server::Role::Probe,
        shared.clone(),
    )
    .await
    .context("bind --http-probe-port")?;
    let metrics = server::spawn(
        SocketAddr::new(args.bind_address, args.prometheus_port),
        server::Role::Metrics,
        shared.clone(),
    )
    .await
    .context("bind --prometheus-port")?;
    tracing::info!(%probe, %metrics, "probe and metrics servers listening");
    println!("podid controller: probe http://{probe}/healthz metrics http://{metrics}/metrics");

    let identity = if args.leader_election_instance.is_empty() {
        host_name()
    } else {
        args.leader_election_instance.clone()
    };
    let mut elector = leader::Elector::new(
        client.clone(),
        leader::Config {
            kind: args.leader_election_lock,
            namespace: args.leader_election_namespace.clone(),
            name: args.leader_election_name.clone(),
            identity: identity.clone(),
            lease_duration: args.leader_election_duration,
        },
    );
    futures::pin_mut!(stop);
    tokio::select! {
        _ = &mut stop => return Ok(()),
        _ = elector.acquire() => {}
    }
    tracing::info!(%identity, "became leader");
    shared.metrics.new_leader_election_count.inc();
    // Renew from now on; losing the lease ends the process (as upstream: exit 1), without a grace period, so
    // a lost leader never writes beside the new one.
    let (lost_tx, mut lost_rx) = tokio::sync::oneshot::channel::<()>();
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let hold = tokio::spawn(async move {
        tokio::select! {
            _ = elector.hold() => {
                let _ = lost_tx.send(());
                None
            }
            _ = cancel_rx => Some(elector),
        }
    });
    let release = |hold: tokio::task::JoinHandle<Option<leader::Elector>>,
                   cancel_tx: tokio::sync::oneshot::Sender<()>| async move {
        let _ = cancel_tx.send(());
        // Release the lock so a standby takes over at once.
        if let Ok(Some(mut elector)) = hold.await {
            elector.release().await;
        }
    };
    if args.enable_type_upgrade {
        // The CRDs may be installed after the controller (a fresh cluster, the playground): wait for them.
        loop {
            let r = tokio::select! {
                r = upgrade::run(
                    &client,
                    &namespace,
                    &args.config_map_name,
                    &args.type_upgrade_status_key,
                ) => r,
                _ = &mut lost_rx => anyhow::bail!("lost leader lease"),
                _ = &mut stop => {
                    release(hold, cancel_tx).await;
                    return Ok(());
                }
            };
            match r {
                Ok(()) => break,
                Err(e) if upgrade::is_not_found(&e) => {
                    tracing::warn!("waiting for the aadpodidentity.k8s.io CRDs to be installed");
                    tokio::select! {
                        _ = &mut lost_rx => anyhow::bail!("lost leader lease"),
                        _ = &mut stop => {
                            release(hold, cancel_tx).await;
                            return Ok(());
                        }
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
                Err(e) => return Err(e.context("type upgrade")),
            }
        }
    }
    let guard = Arc::new(state::IdentityGuard::new(
        protected,
        Some(events::Recorder::new(client.clone(), identity.clone())),
    ));
    let watches = state::spawn_watches(client.clone(), shared.clone(), guard);
    let exec = Arc::new(Exec {
        client: client.clone(),
        shared: shared.clone(),
        cloud: Arc::new(azure),
        recorder: events::Recorder::new(client.clone(), identity.clone()),
        writes: tokio::sync::Semaphore::new(args.create_delete_batch.max(1)),
        cfg: ExecConfig {
            batch: args.create_delete_batch,
            max_retry: args.update_user_msi_max_retry,
            retry_interval: args.update_user_msi_retry_interval,
        },
    });
    let loop_cfg = run::LoopConfig {
        plan: plan_cfg,
        batch_delay: args.batch_delay,
        full_sync: args
            .sync_retry_duration
            .max(std::time::Duration::from_secs(1)),
        reconcile: args
            .identity_assignment_reconcile_interval
            .max(std::time::Duration::from_secs(1)),
        backoff_base: args
            .retry_backoff_base
            .max(std::time::Duration::from_millis(10)),
        backoff_max: args.retry_backoff_max,
        shutdown_grace: args.shutdown_grace,
    };
    let legacy = tokio::spawn(legacy::run(exec.clone()));
    let ended = run::run(exec, loop_cfg, stop, lost_rx).await;
    legacy.abort();
    for w in watches {
        w.abort();
    }
    if ended == run::Ended::LeaseLost {
        tracing::error!("lost leader lease");
        anyhow::bail!("lost leader lease");
    }
    release(hold, cancel_tx).await;
    Ok(())
}
