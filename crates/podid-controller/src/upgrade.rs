//! The one-time "type upgrade" (reference §2.9): objects written before v1.6 with legacy keys (`ClientID`,
//! `Selector`, ...) are read with Go-tolerant decoding and written back in camelCase, once per cluster, recorded
//! in ConfigMap `--config-map-name` key `--type-upgrade-status-key` in `MIC_POD_NAMESPACE`. If the key exists the
//! upgrade is skipped, as upstream; a cluster already upgraded by upstream MIC is never touched again.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use podid_k8s::{
    AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding, AzurePodIdentityException,
};

async fn rewrite_all<K>(client: &kube::Client) -> anyhow::Result<usize>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
    K::DynamicType: Default,
{
    let all: Api<K> = Api::all(client.clone());
    let list = all.list(&ListParams::default()).await?;
    let mut n = 0;
    for o in list.items {
        let ns = o.namespace().unwrap_or_default();
        let api: Api<K> = Api::namespaced(client.clone(), &ns);
        match api.replace(&o.name_any(), &PostParams::default(), &o).await {
            Ok(_) => n += 1,
            // Changed meanwhile: it was written by a current client, nothing to upgrade.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// The error says a resource is not served (the CRDs are not installed yet).
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<kube::Error>()
        .is_some_and(|k| matches!(k, kube::Error::Api(s) if s.code == 404))
}

/// Run the upgrade unless the ConfigMap says it already ran.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> anyhow::Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = match cms.get_opt(name).await? {
        Some(cm) => cm,
        None => {
            let cm = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(namespace.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match cms.create(&PostParams::default(), &cm).await {
                Ok(c) => c,
                Err(kube::Error::Api(s)) if s.code == 409 => cms.get(name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    if let Some(v) = cm.data.as_ref().and_then(|d| d.get(key)) {
        tracing::info!(
            "type upgrade status configmap found from version: {v}. Skipping type upgrade!"
        );
        return Ok(());
    }
    let n = rewrite_all::<AzureIdentity>(client).await?
        + rewrite_all::<AzureIdentityBinding>(client).await?
        + rewrite_all::<AzurePodIdentityException>(client).await?
        + rewrite_all::<AzureAssignedIdentity>(client).await?;
    let mut cm = cm;
    cm.data
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), env!("CARGO_PKG_VERSION").to_string());
    cms.replace(name, &PostParams::default(), &cm).await?;
    tracing::info!(objects = n, "type upgrade done");
    Ok(())
}
