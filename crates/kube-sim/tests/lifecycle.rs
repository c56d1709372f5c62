//! Kubelet (IPs, Running, projected token files), owner-reference GC, namespace cascade, persistence, seeding.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kube_sim::testkit::eventually;

#[tokio::test]
async fn kubelet_runs_pods_and_writes_projected_tokens() {
    let kubelet = tempfile::tempdir().expect("kubelet dir");
    let sim = common::start_with(kube_sim::Config {
        kubelet_dir: Some(kubelet.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let nodes: Api<Node> = Api::all(sim.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "node-a"}, "spec": {"podCIDR": "10.244.7.0/24"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.240.0.4"}]}}),
            )
            .expect("node"),
        )
        .await
        .expect("node");
    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "azure-identity-token", "projected": {"sources": [
                     {"serviceAccountToken": {"path": "azure-identity-token", "audience": "api://AzureADTokenExchange", "expirationSeconds": 3600}}]}}]}
    }))
    .expect("pod");
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let uid = created.uid().expect("uid");
    let running = eventually(Duration::from_secs(10), || async {
        pods.get("app")
            .await
            .ok()
            .and_then(|p| p.status)
            .is_some_and(|s| s.phase.as_deref() == Some("Running"))
    })
    .await;
    assert!(running, "pod reached Running");
    let st = pods.get("app").await.expect("get").status.expect("status");
    assert_eq!(st.pod_ip.as_deref(), Some("10.244.7.2"));
    assert_eq!(st.host_ip.as_deref(), Some("10.240.0.4"));
    assert!(
        st.conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );

    let token_path = kubelet.path().join(format!(
        "pods/{uid}/volumes/kubernetes.io~projected/azure-identity-token/azure-identity-token"
    ));
    assert!(
        eventually(Duration::from_secs(10), || async { token_path.exists() }).await,
        "token file at {}",
        token_path.display()
    );
    let token = std::fs::read_to_string(&token_path).expect("token");
    let reviews: Api<k8s_openapi::api::authentication::v1::TokenReview> =
        Api::all(sim.client.clone());
    let review = reviews
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"spec": {"token": token, "audiences": ["api://AzureADTokenExchange"]}}),
            )
            .expect("tr"),
        )
        .await
        .expect("review");
    let status = review.status.expect("status");
    assert_eq!(status.authenticated, Some(true));
    let extra = status.user.and_then(|u| u.extra).unwrap_or_default();
    assert_eq!(
        extra
            .get("authentication.kubernetes.io/pod-name")
            .map(|v| v[0].as_str()),
        Some("app")
    );
    // The service-account volume the admission plugin added was written too.
    let sa_vol = created
        .spec
        .expect("spec")
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .expect("sa volume");
    let dir = kubelet.path().join(format!(
        "pods/{uid}/volumes/kubernetes.io~projected/{}",
        sa_vol.name
    ));
    assert!(
        eventually(Duration::from_secs(10), || async {
            dir.join("token").exists()
                && dir.join("ca.crt").exists()
                && dir.join("namespace").exists()
        })
        .await
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("namespace")).expect("ns"),
        "default"
    );

    // A second pod gets the next address; deleting the first removes its files.
    let mut p2 = pod.clone();
    p2.metadata.name = Some("app2".into());
    pods.create(&PostParams::default(), &p2)
        .await
        .expect("second");
    assert!(
        eventually(Duration::from_secs(10), || async {
            pods.get("app2")
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.pod_ip)
                .as_deref()
                == Some("10.244.7.3")
        })
        .await
    );
    pods.delete("app", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        eventually(Duration::from_secs(10), || async { !token_path.exists() }).await,
        "files removed"
    );
    // After deletion the token no longer authenticates (bound pod gone).
    let review = reviews
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"spec": {"token": token, "audiences": ["api://AzureADTokenExchange"]}}),
            )
            .expect("tr"),
        )
        .await
        .expect("review");
    assert_ne!(review.status.expect("status").authenticated, Some(true));
    sim.handle.shutdown().await;
}

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
