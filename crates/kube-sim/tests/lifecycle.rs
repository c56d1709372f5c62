//! Owner-reference GC, namespace cascade, persistence, seeding (pods are run by podid-kubelet: its own tests).

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kube_sim::testkit::eventually;

#[tokio::test]
async fn garbage_collection_and_namespace_cascade() {
    let sim = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).expect("cm"),
        )
        .await
        .expect("owner");
    let owner_ref =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid()}]);
    for n in ["dep-1", "dep-2"] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n, "ownerReferences": owner_ref}}))
                .expect("cm"),
        )
        .await
        .expect("dep");
    }
    cms.delete("owner", &DeleteParams::default())
        .await
        .expect("delete owner");
    assert!(
        eventually(Duration::from_secs(10), || async {
            cms.get("dep-1").await.is_err() && cms.get("dep-2").await.is_err()
        })
        .await,
        "dependents collected"
    );

    // Orphan propagation keeps dependents and drops the reference.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner2"}})).expect("cm"),
        )
        .await
        .expect("owner");
    let owner_ref =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner.uid()}]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "kept", "ownerReferences": owner_ref}}),
        )
        .expect("cm"),
    )
    .await
    .expect("dep");
    cms.delete("owner2", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    assert!(
        eventually(Duration::from_secs(10), || async {
            cms.get("kept")
                .await
                .is_ok_and(|c| c.owner_references().is_empty())
        })
        .await
    );

    // Foreground: the owner waits for its dependents.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner3"}})).expect("cm"),
        )
        .await
        .expect("owner");
    let owner_ref =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner3", "uid": owner.uid()}]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "fg-dep", "ownerReferences": owner_ref}}),
        )
        .expect("cm"),
    )
    .await
    .expect("dep");
    cms.delete("owner3", &DeleteParams::foreground())
        .await
        .expect("foreground delete");
    assert!(
        eventually(Duration::from_secs(10), || async {
            cms.get("owner3").await.is_err() && cms.get("fg-dep").await.is_err()
        })
        .await
    );

    // Namespace deletion removes its content, then the namespace.
    let nss: Api<Namespace> = Api::all(sim.client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).expect("ns"),
    )
    .await
    .expect("ns");
    let in_ns: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "doomed");
    in_ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("cm"),
        )
        .await
        .expect("cm");
    let deleted = nss
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete ns");
    let terminating = deleted.left().and_then(|n| n.status).and_then(|s| s.phase);
    assert_eq!(terminating.as_deref(), Some("Terminating"));
    assert!(
        eventually(Duration::from_secs(10), || async {
            nss.get("doomed").await.is_err()
        })
        .await,
        "namespace removed"
    );
    assert!(
        in_ns
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn persistence_and_seeding() {
    common::install_crypto();
    let dir = tempfile::tempdir().expect("dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, format!("{}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: seeded\n---\napiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata:\n  name: seeded-id\n  namespace: seeded\nspec:\n  type: 0\n  clientID: c\n  resourceID: /subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i\n", podid_k8s::crds_yaml())).expect("seed");
    let state = dir.path().join("state");
    let config = || kube_sim::Config {
        dir: Some(state.clone()),
        persist: true,
        seed: vec![seed.clone()],
        ..Default::default()
    };
    let h = kube_sim::start(config()).await.expect("start");
    let sa_uid = {
        let sim = &h.sim;
        assert!(
            sim.get_object(
                "aadpodidentity.k8s.io",
                "azureidentities",
                "seeded",
                "seeded-id"
            )
            .is_some(),
            "seeded identity"
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "survivor", "namespace": "default"}});
        kube_sim::api::create_internal(sim, cm).expect("create");
        sim.get_object("", "serviceaccounts", "seeded", "default")
            .expect("sa")["metadata"]["uid"]
            .clone()
    };
    let token = h.admin_token.clone();
    h.shutdown().await;
    let h2 = kube_sim::start(config()).await.expect("restart");
    assert_eq!(h2.admin_token, token, "admin token kept");
    assert!(
        h2.sim
            .get_object("", "configmaps", "default", "survivor")
            .is_some(),
        "state restored"
    );
    assert_eq!(
        h2.sim
            .get_object("", "serviceaccounts", "seeded", "default")
            .expect("sa")["metadata"]["uid"],
        sa_uid
    );
    assert!(
        h2.sim
            .get_object(
                "aadpodidentity.k8s.io",
                "azureidentities",
                "seeded",
                "seeded-id"
            )
            .is_some(),
        "custom resources served again"
    );
    h2.shutdown().await;
}

#[tokio::test]
async fn deletion_edge_cases() {
    let sim = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let cm = |v: serde_json::Value| -> ConfigMap { serde_json::from_value(v).expect("cm") };

    // Foreground delete of an object with finalizers but no dependents is not left holding foregroundDeletion.
    cms.create(
        &PostParams::default(),
        &cm(json!({"metadata": {"name": "fg-lone", "finalizers": ["x/y"]}})),
    )
    .await
    .expect("cm");
    cms.delete("fg-lone", &DeleteParams::foreground())
        .await
        .expect("delete");
    cms.patch(
        "fg-lone",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("unpin");
    assert!(
        eventually(Duration::from_secs(5), || async {
            cms.get("fg-lone").await.is_err()
        })
        .await,
        "not stuck"
    );

    // A ClusterRoleBinding removed by foreground deletion stops granting access at once.
    let crbs: Api<ClusterRoleBinding> = Api::all(sim.client.clone());
    let crb: ClusterRoleBinding = serde_json::from_value(json!({"metadata": {"name": "bob-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]}))
    .expect("crb");
    let crb = crbs
        .create(&PostParams::default(), &crb)
        .await
        .expect("crb");
    let owner = json!([{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "name": "bob-admin", "uid": crb.uid()}]);
    cms.create(
        &PostParams::default(),
        &cm(json!({"metadata": {"name": "crb-dep", "ownerReferences": owner}})),
    )
    .await
    .expect("dep");
    let as_bob = {
        let kubeconfig = kube::config::Kubeconfig::read_from(
            sim.handle.kubeconfig.as_ref().expect("kubeconfig"),
        )
        .expect("read");
        let mut cfg = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("cfg");
        cfg.auth_info.impersonate = Some("bob".into());
        kube::Client::try_from(cfg).expect("client")
    };
    let bobs: Api<ConfigMap> = Api::namespaced(as_bob, "default");
    assert!(
        bobs.list(&ListParams::default()).await.is_ok(),
        "bob is admin while bound"
    );
    crbs.delete("bob-admin", &DeleteParams::foreground())
        .await
        .expect("delete crb");
    assert!(
        eventually(Duration::from_secs(10), || async {
            crbs.get("bob-admin").await.is_err()
        })
        .await
    );
    assert!(
        bobs.list(&ListParams::default()).await.is_err(),
        "the removed binding no longer grants access"
    );

    // A dependent created after its owner is gone is collected.
    let gone_owner = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "never-there", "uid": "00000000-dead-beef-0000-000000000000"}]);
    cms.create(
        &PostParams::default(),
        &cm(json!({"metadata": {"name": "late-dep", "ownerReferences": gone_owner}})),
    )
    .await
    .expect("dep");
    assert!(
        eventually(Duration::from_secs(5), || async {
            cms.get("late-dep").await.is_err()
        })
        .await,
        "late dependent collected"
    );

    // Content with a finalizer keeps its namespace Terminating, and closed to new content, until it goes.
    let nss: Api<Namespace> = Api::all(sim.client.clone());
    let ns = |name: &str| -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns")
    };
    nss.create(&PostParams::default(), &ns("held"))
        .await
        .expect("ns");
    let held: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "held");
    held.create(
        &PostParams::default(),
        &cm(json!({"metadata": {"name": "pinned", "finalizers": ["x/y"]}})),
    )
    .await
    .expect("cm");
    nss.delete("held", &DeleteParams::default())
        .await
        .expect("delete ns");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let phase = nss
        .get("held")
        .await
        .expect("kept while content remains")
        .status
        .and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Terminating"));
    let refused = held
        .create(
            &PostParams::default(),
            &cm(json!({"metadata": {"name": "late"}})),
        )
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{refused:?}"
    );
    held.patch(
        "pinned",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("unpin");
    assert!(
        eventually(Duration::from_secs(10), || async {
            nss.get("held").await.is_err()
        })
        .await,
        "removed after its content"
    );
    // A namespace re-created under the same name is left alone by the old cleanup.
    nss.create(&PostParams::default(), &ns("held"))
        .await
        .expect("recreate");
    held.create(
        &PostParams::default(),
        &cm(json!({"metadata": {"name": "fresh"}})),
    )
    .await
    .expect("fresh");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(held.get("fresh").await.is_ok());
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(sim.client.clone(), "held");
    assert!(sas.get("default").await.is_ok());
    sim.handle.shutdown().await;
}
