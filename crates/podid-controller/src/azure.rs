//! The production [`Cloud`]: podid-azure's ARM compute client, authenticated as the cloud config says (client
//! secret, certificate, or managed identity), with the upstream metrics observed per operation. The cloud config
//! file is re-read when it changes (credential rotation, as upstream's fsnotify watch).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures::future::BoxFuture;
use podid_azure::{
    ArmError, ArmObserver, CloudConfig, ComputeClient, ComputeIdentity, ComputeKind,
    ComputeOptions, ComputeRef, Environment, HttpClient, HttpOptions, TokenSource,
};
use podid_core::assign::{Target, TargetKind};

use crate::args::ControllerArgs;
use crate::cloud::{Cloud, CloudError, CloudIdentity};
use crate::metrics::Metrics;

/// ARM through podid-azure.
pub struct AzureCloud {
    compute: ComputeClient,
    cfg: CloudConfig,
    observer: Arc<MetricsObserver>,
}

/// Forwards ARM timings to the metrics once they exist.
#[derive(Default)]
pub struct MetricsObserver {
    metrics: parking_lot::RwLock<Option<Arc<crate::state::Shared>>>,
}

impl ArmObserver for MetricsObserver {
    fn observe(&self, op: &'static str, seconds: f64, error: bool) {
        if let Some(s) = self.metrics.read().as_ref() {
            Metrics::cloud(&s.metrics, op, seconds, error);
        }
    }
}

fn to_ref(t: &Target) -> ComputeRef {
    ComputeRef {
        kind: match t.kind {
            TargetKind::Vm => ComputeKind::Vm,
            TargetKind::Vmss => ComputeKind::Vmss,
        },
        subscription: t.subscription.clone(),
        resource_group: t.resource_group.clone(),
        name: t.name.clone(),
    }
}

fn to_err(e: ArmError) -> CloudError {
    CloudError {
        code: e.code().unwrap_or("Error").to_string(),
        message: e.message(),
        retry_after: e.retry_after(),
    }
}

fn to_identity(c: ComputeIdentity) -> CloudIdentity {
    CloudIdentity {
        type_: c.type_,
        user_assigned: c.user_assigned,
        provisioning_state: c.provisioning_state.unwrap_or_default(),
    }
}

// === impl AzureCloud ===

impl AzureCloud {
    /// Build from the flags: `--cloudconfig` (or the admin-secret env vars), `AZURE_ENVIRONMENT_FILEPATH` for
    /// `AzureStackCloud`, `--imds-endpoint`, `--azure-ca-file`, `--custom-user-agent`, `--arm-poll-interval`.
    pub async fn from_args(
        args: &ControllerArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<AzureCloud> {
        let cfg = if args.cloudconfig.is_empty() {
            CloudConfig::from_env(env)
        } else {
            CloudConfig::from_file(&args.cloudconfig)
                .with_context(|| format!("read --cloudconfig {}", args.cloudconfig))?
        };
        cfg.validate().context("cloud config")?;
        let environment = Environment::from_config(&cfg, env).context("cloud environment")?;
        let mut extra = Vec::new();
        for f in &args.azure_ca_file {
            extra.push(
                std::fs::read(f)
                    .with_context(|| format!("read --azure-ca-file {}", f.display()))?,
            );
        }
        let ua = args.user_agent();
        let http = HttpClient::new(HttpOptions {
            extra_ca_pem: extra,
            user_agent: ua,
            ..HttpOptions::default()
        })
        .context("HTTPS client")?;
        let tokens = TokenSource::new(&cfg, &environment, http.clone(), &args.imds_endpoint)
            .context("ARM credentials")?;
        let observer = Arc::new(MetricsObserver::default());
        let compute = ComputeClient::new(
            environment,
            tokens,
            http,
            ComputeOptions {
                poll_interval: args.arm_poll_interval,
                observer: Some(observer.clone()),
                ..ComputeOptions::default()
            },
        );
        let cloud = AzureCloud {
            compute,
            cfg,
            observer,
        };
        if !args.cloudconfig.is_empty() {
            cloud.watch_config(
                PathBuf::from(&args.cloudconfig),
                env("AZURE_ENVIRONMENT_FILEPATH"),
            );
        }
        Ok(cloud)
    }

    /// Attach the metrics.
    pub fn observe_into(&self, shared: Arc<crate::state::Shared>) {
        *self.observer.metrics.write() = Some(shared);
    }

    /// The cluster identity's client ID (`userAssignedIdentityID`), never removed.
    pub fn cluster_identity(&self) -> Option<&str> {
        Some(self.cfg.user_assigned_identity_id.as_str()).filter(|s| !s.is_empty())
    }

    /// Client IDs of the cluster's own identities (kubelet identity, cluster service principal).
    pub fn cluster_client_ids(&self) -> Vec<String> {
        self.cfg.cluster_client_ids()
    }

    /// `subscriptionId` of the cloud config.
    pub fn subscription(&self) -> &str {
        &self.cfg.subscription_id
    }

    /// `resourceGroup` of the cloud config (the node resource group).
    pub fn resource_group(&self) -> &str {
        &self.cfg.resource_group
    }

    /// ARM call counters.
    pub fn stats(&self) -> podid_azure::ArmStats {
        self.compute.stats()
    }

    /// Re-read the cloud config when its modification time changes and reload the credentials.
    fn watch_config(&self, path: PathBuf, env_file: Option<String>) {
        let tokens = self.compute.tokens().clone();
        tokio::spawn(async move {
            let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let mut last: Option<SystemTime> = mtime(&path);
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let now = mtime(&path);
                if now == last {
                    continue;
                }
                last = now;
                let lookup = |k: &str| {
                    (k == "AZURE_ENVIRONMENT_FILEPATH")
                        .then(|| env_file.clone())
                        .flatten()
                };
                match CloudConfig::from_file(&path)
                    .and_then(|c| Environment::from_config(&c, lookup).map(|e| (c, e)))
                {
                    Ok((c, e)) => match tokens.reload(&c, &e) {
                        Ok(()) => tracing::info!("cloud config changed: credentials reloaded"),
                        Err(err) => {
                            tracing::error!(error = %err, "cloud config changed but could not be loaded")
                        }
                    },
                    Err(err) => {
                        tracing::error!(error = %err, "cloud config changed but could not be read")
                    }
                }
            }
        });
    }
}

impl Cloud for AzureCloud {
    fn get(&self, target: &Target) -> BoxFuture<'_, Result<CloudIdentity, CloudError>> {
        let r = to_ref(target);
        Box::pin(async move {
            self.compute
                .get_identity(&r)
                .await
                .map(to_identity)
                .map_err(to_err)
        })
    }

    fn patch<'a>(
        &'a self,
        target: &'a Target,
        body: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), CloudError>> {
        let r = to_ref(target);
        Box::pin(async move { self.compute.patch_identity(&r, body).await.map_err(to_err) })
    }
}
