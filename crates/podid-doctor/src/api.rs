//! Reading the pod and the objects that decide its identities from the API server, trimmed to the plain views
//! `podid_core::doctor` takes. Read-only: `get` on the pod, `list` on the four aadpodidentity kinds.
//!
//! The AAIs are listed cluster-wide and filtered by `spec.pod`/`spec.podNamespace` (their only label is the node,
//! and a stale AAI for another node is exactly what the doctor must see). Bindings and identities are listed in
//! every namespace, since non-namespaced matching uses them all; exceptions only in the pod's namespace, the only
//! one that counts.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use podid_core::doctor::{AssignedFacts, ClusterFacts, ExceptionFacts, PodFacts};
use podid_k8s::views::{assigned_state, binding_view, identity_view, replicaset, service_account};
use podid_k8s::{
    AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding, AzurePodIdentityException,
};
use serde::de::DeserializeOwned;

use crate::DoctorError;

/// Deadline of each API call (a CLI should fail with a message, not hang).
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// The Kubernetes client: `--kubeconfig`, else KUBECONFIG / `~/.kube/config` / in-cluster.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, DoctorError> {
    let mut cfg = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).map_err(|e| {
                DoctorError::Kubeconfig(format!("read --kubeconfig {}: {e}", p.display()))
            })?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| {
                    DoctorError::Kubeconfig(format!("load --kubeconfig {}: {e}", p.display()))
                })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            DoctorError::Kubeconfig(format!(
                "no --kubeconfig, and neither KUBECONFIG, ~/.kube/config nor an in-cluster configuration works: {e}"
            ))
        })?,
    };
    cfg.connect_timeout = Some(API_TIMEOUT);
    cfg.read_timeout = Some(API_TIMEOUT);
    kube::Client::try_from(cfg)
        .map_err(|e| DoctorError::Kubeconfig(format!("build the Kubernetes client: {e}")))
}

/// An API failure in words that say what to fix.
fn api_error(what: &str, crd: bool, e: kube::Error) -> DoctorError {
    let message = match &e {
        kube::Error::Api(s) if crd && s.is_not_found() => {
            "the aadpodidentity.k8s.io CRDs are not installed (podid crds | kubectl apply -f -)"
                .to_string()
        }
        kube::Error::Api(s) if s.is_forbidden() => format!(
            "forbidden ({}): the kubeconfig's user needs get on pods and list on azureidentities, azureidentitybindings, azureassignedidentities and azurepodidentityexceptions",
            s.message
        ),
        _ => e.to_string(),
    };
    DoctorError::Api {
        what: what.to_string(),
        message,
    }
}

async fn list<K>(api: Api<K>, what: &str) -> Result<Vec<K>, DoctorError>
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    match tokio::time::timeout(API_TIMEOUT, api.list(&ListParams::default())).await {
        Ok(Ok(l)) => Ok(l.items),
        Ok(Err(e)) => Err(api_error(what, true, e)),
        Err(_) => Err(DoctorError::Api {
            what: what.to_string(),
            message: format!("no answer within {}s", API_TIMEOUT.as_secs()),
        }),
    }
}

/// The pod and the objects deciding its identities.
pub async fn load(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(PodFacts, ClusterFacts), DoctorError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let what = format!("get pod {namespace}/{name}");
    let pod = match tokio::time::timeout(API_TIMEOUT, pods.get_opt(name)).await {
        Ok(Ok(Some(p))) => p,
        Ok(Ok(None)) => {
            return Err(DoctorError::PodNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
        Ok(Err(e)) => return Err(api_error(&what, false, e)),
        Err(_) => {
            return Err(DoctorError::Api {
                what,
                message: format!("no answer within {}s", API_TIMEOUT.as_secs()),
            });
        }
    };
    let (bindings, identities, assigned, exceptions) = tokio::try_join!(
        list(
            Api::<AzureIdentityBinding>::all(client.clone()),
            "list AzureIdentityBindings"
        ),
        list(
            Api::<AzureIdentity>::all(client.clone()),
            "list AzureIdentities"
        ),
        list(
            Api::<AzureAssignedIdentity>::all(client.clone()),
            "list AzureAssignedIdentities"
        ),
        list(
            Api::<AzurePodIdentityException>::namespaced(client.clone(), namespace),
            "list AzurePodIdentityExceptions"
        ),
    )?;
    let cluster = ClusterFacts {
        bindings: bindings.iter().map(binding_view).collect(),
        identities: identities
            .iter()
            .map(|i| {
                let v = identity_view(i);
                ((v.namespace.clone(), v.name.clone()), v)
            })
            .collect(),
        identities_known: true,
        assigned: assigned
            .iter()
            .filter(|a| a.spec.pod == name && a.spec.pod_namespace == namespace)
            .map(assigned_facts)
            .collect(),
        exceptions: exceptions
            .iter()
            .map(|e| ExceptionFacts {
                namespace: e.namespace().unwrap_or_default(),
                name: e.name_any(),
                pod_labels: e.spec.pod_labels.clone(),
            })
            .collect(),
    };
    Ok((pod_facts(&pod), cluster))
}

/// A pod as the doctor needs it.
#[must_use]
pub fn pod_facts(p: &Pod) -> PodFacts {
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let mut pod_ips: Vec<String> = Vec::new();
    if let Some(s) = status {
        if let Some(ip) = s.pod_ip.as_ref().filter(|i| !i.is_empty()) {
            pod_ips.push(ip.clone());
        }
        for ip in s.pod_ips.iter().flatten() {
            if !ip.ip.is_empty() && !pod_ips.contains(&ip.ip) {
                pod_ips.push(ip.ip.clone());
            }
        }
    }
    PodFacts {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        labels: p.labels().clone(),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        pod_ips,
        node_name: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        deleting: p.metadata.deletion_timestamp.is_some(),
        replicaset: replicaset(p),
        service_account: service_account(p),
    }
}

fn assigned_facts(a: &AzureAssignedIdentity) -> AssignedFacts {
    let status = a
        .status
        .as_ref()
        .map(|s| s.status.as_str().to_string())
        .unwrap_or_default();
    AssignedFacts {
        namespace: a.namespace().unwrap_or_default(),
        name: a.name_any(),
        state: assigned_state(a),
        status,
        node: Some(a.spec.node_name.clone()),
        identity: a.spec.azure_identity_ref.as_ref().map(identity_view),
    }
}
