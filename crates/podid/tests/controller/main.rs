//! `podid controller` against each Kubernetes backend (kube-sim and a real kube-apiserver) and azure-sim: the
//! controller-side scenarios of the upstream e2e suite (reference §5), plus faults, leader failover and the drop-in surfaces (health bodies, metrics, events).
//! AAIs live in `default` (non-namespaced mode) under `<pod>-<podNamespace>-<identity>`, as the upstream tests
//! look them up.

mod newcomer;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams};
use podid_k8s::{AzureIdentity, AzureIdentityBinding};
use podid_testkit::*;
use serde_json::json;

// Every scenario runs on both Kubernetes backends: `<case>::sim` and `<case>::real`.
podid_testkit::both_backends!(
    single_identity_lifecycle,
    two_identities_one_selector_and_service_principal,
    identities_removed_in_random_order,
    scale_set_identity_stays_while_another_node_uses_it,
    immutable_cluster_and_preexisting_identities_are_never_removed,
    cluster_identity_is_refused_by_default,
    out_of_band_removal_is_re_added_and_deletion_still_works,
    invalid_identities_in_a_batch,
    same_names_in_two_namespaces,
    finished_pods_release_their_identities,
    throttling_and_server_errors_lose_nothing,
    forty_pods_one_patch_per_scale_set,
    leader_killed_mid_assignment_standby_converges,
    pod_moving_to_another_scale_set_while_the_first_is_busy,
);

const BASE: [&str; 2] = ["aks-agentpool", "id-pre"];

fn with_base(extra: &[&str]) -> Vec<String> {
    BASE.iter().chain(extra).map(|s| s.to_string()).collect()
}

async fn wait_arm_v(env: &Env, name: &str, want: Vec<String>) {
    let w: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
    env.wait_arm(name, &w).await;
}

async fn single_identity_lifecycle(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    // This test's controller runs as the ServiceAccount of deploy/podid-controller.yaml (least privilege).
    env.use_manifest_rbac().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    env.identity("app", "ident", 0, "id-a").await;
    env.binding("app", "bind", "ident", "sel").await;
    env.pod("app", "p1", "pool1-vmss000000", "sel").await;
    let a = env.wait_status("default", "p1-app-ident", "Assigned").await;
    // The upstream object shape: label, finalizer, embedded refs, pod fields.
    assert_eq!(
        a.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("nodename"))
            .map(String::as_str),
        Some("pool1-vmss000000")
    );
    assert_eq!(
        a.metadata.finalizers.clone().unwrap_or_default(),
        vec!["azureassignedidentity.finalizers.aadpodidentity.k8s.io".to_string()]
    );
    assert_eq!(a.spec.pod, "p1");
    assert_eq!(a.spec.pod_namespace, "app");
    assert_eq!(
        a.spec
            .azure_identity_ref
            .as_ref()
            .and_then(|i| i.metadata.name.clone())
            .as_deref(),
        Some("ident")
    );
    assert_eq!(
        a.spec
            .azure_binding_ref
            .as_ref()
            .and_then(|i| i.metadata.name.clone())
            .as_deref(),
        Some("bind")
    );
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a"])).await;
    let (_, t, ident) = env.arm("pool1-vmss").await;
    assert_eq!(t, "SystemAssigned, UserAssigned");
    let principal = ident["principalId"].clone();
    assert!(principal.is_string(), "{ident}");

    // Pod deleted: AAI gone, identity removed; system-assigned and preexisting identities untouched.
    env.delete_pod("app", "p1").await;
    env.wait_gone("default", "p1-app-ident").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&[])).await;
    let (_, t, ident) = env.arm("pool1-vmss").await;
    assert_eq!(t, "SystemAssigned, UserAssigned");
    assert_eq!(
        ident["principalId"], principal,
        "system-assigned identity changed"
    );

    // Identity deleted → AAI gone.
    env.pod("app", "p2", "pool1-vmss000000", "sel").await;
    env.wait_status("default", "p2-app-ident", "Assigned").await;
    env.delete::<AzureIdentity>("app", "ident").await;
    env.wait_gone("default", "p2-app-ident").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&[])).await;

    // Binding deleted → AAI gone.
    env.identity("app", "ident", 0, "id-a").await;
    env.wait_status("default", "p2-app-ident", "Assigned").await;
    env.delete::<AzureIdentityBinding>("app", "bind").await;
    env.wait_gone("default", "p2-app-ident").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&[])).await;

    // Identity updated in place (new resourceID and clientID): the AAI follows and is Assigned again.
    env.binding("app", "bind", "ident", "sel").await;
    env.wait_status("default", "p2-app-ident", "Assigned").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a"])).await;
    Api::<AzureIdentity>::namespaced(env.client.clone(), "app")
        .patch("ident", &PatchParams::default(), &Patch::Merge(json!({"spec": {"resourceID": uami_id(IDS, "id-b"), "clientID": client_id("id-b")}})))
        .await
        .expect("update identity");
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-b"])).await;
    let a = env.wait_status("default", "p2-app-ident", "Assigned").await;
    assert_eq!(
        a.spec.azure_identity_ref.map(|i| i.spec.resource_id),
        Some(uami_id(IDS, "id-b"))
    );

    // Events with upstream reasons on the binding.
    let evs = Api::<Event>::namespaced(env.client.clone(), "app")
        .list(&Default::default())
        .await
        .expect("events");
    assert!(
        evs.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("binding applied")
                && e.source.as_ref().and_then(|s| s.component.as_deref())
                    == Some("aadpodidentity.k8s.io")),
        "{:?}",
        evs.items
            .iter()
            .map(|e| (&e.reason, &e.message))
            .collect::<Vec<_>>()
    );
    // Health body and upstream metric names.
    assert_eq!(env.ctls[0].health().await, "Active");
    let (_, m) = http("GET", &env.ctls[0].metrics, None).await;
    for name in [
        "aadpodidentity_mic_cycle_count ",
        "aadpodidentity_assigned_identity_addition_count ",
        "aadpodidentity_cloud_provider_operations_duration_seconds_bucket{operation_type=\"vmss_update\"",
    ] {
        assert!(m.contains(name), "{name} missing from\n{m}");
    }
}

async fn two_identities_one_selector_and_service_principal(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    env.identity("app", "one", 0, "id-a").await;
    env.identity("app", "two", 0, "id-b").await;
    env.identity("app", "sp", 1, "id-c").await;
    env.binding("app", "b1", "one", "sel").await;
    env.binding("app", "b2", "two", "sel").await;
    env.binding("app", "b3", "sp", "sp-sel").await;
    env.pod("app", "p", "vm-node1", "sel").await;
    env.wait_status("default", "p-app-one", "Assigned").await;
    env.wait_status("default", "p-app-two", "Assigned").await;
    wait_arm_v(&env, "vm-node1", vec!["id-a".into(), "id-b".into()]).await;
    // A service principal gets an AAI but causes no ARM write.
    let patches = env.arm_requests("PATCH").await;
    env.pod("app", "sp-pod", "vm-node1", "sp-sel").await;
    env.wait_status("default", "sp-pod-app-sp", "Assigned")
        .await;
    assert_eq!(
        env.arm_requests("PATCH").await,
        patches,
        "a service principal must not touch ARM"
    );
    wait_arm_v(&env, "vm-node1", vec!["id-a".into(), "id-b".into()]).await;
    // Relabel the pod to the service principal: its two AAIs go, a new one comes.
    env.patch_pod_labels("app", "p", "sp-sel").await;
    env.wait_status("default", "p-app-sp", "Assigned").await;
    env.wait_gone("default", "p-app-one").await;
    env.wait_gone("default", "p-app-two").await;
    wait_arm_v(&env, "vm-node1", vec![]).await;
}

async fn identities_removed_in_random_order(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    let names = ["id-a", "id-b", "id-c", "id-d", "id-e"];
    for (i, n) in names.iter().enumerate() {
        env.identity("app", n, 0, n).await;
        env.binding("app", &format!("b-{n}"), n, &format!("s{i}"))
            .await;
        env.pod(
            "app",
            &format!("p{i}"),
            "pool2-vmss000000",
            &format!("s{i}"),
        )
        .await;
    }
    for (i, n) in names.iter().enumerate() {
        env.wait_status("default", &format!("p{i}-app-{n}"), "Assigned")
            .await;
    }
    wait_arm_v(
        &env,
        "pool2-vmss",
        names.iter().map(|s| s.to_string()).collect(),
    )
    .await;
    let mut left: Vec<&str> = names.to_vec();
    for n in ["id-c", "id-a", "id-e", "id-b"] {
        env.delete::<AzureIdentity>("app", n).await;
        left.retain(|x| *x != n);
        let i = names.iter().position(|x| *x == n).unwrap_or(0);
        env.wait_gone("default", &format!("p{i}-app-{n}")).await;
        wait_arm_v(
            &env,
            "pool2-vmss",
            left.iter().map(|s| s.to_string()).collect(),
        )
        .await;
        for l in &left {
            let j = names.iter().position(|x| x == l).unwrap_or(0);
            env.wait_status("default", &format!("p{j}-app-{l}"), "Assigned")
                .await;
        }
    }
}

async fn scale_set_identity_stays_while_another_node_uses_it(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    env.identity("app", "ident", 0, "id-a").await;
    env.binding("app", "bind", "ident", "sel").await;
    env.pod("app", "p0", "pool1-vmss000000", "sel").await;
    env.pod("app", "p1", "pool1-vmss000001", "sel").await;
    env.wait_status("default", "p0-app-ident", "Assigned").await;
    env.wait_status("default", "p1-app-ident", "Assigned").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a"])).await;
    env.delete_pod("app", "p0").await;
    env.wait_gone("default", "p0-app-ident").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a"])).await;
    env.delete_pod("app", "p1").await;
    env.wait_gone("default", "p1-app-ident").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&[])).await;
}

async fn immutable_cluster_and_preexisting_identities_are_never_removed(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller(
        "mic-a",
        &[
            &format!("--immutable-user-msis={}", client_id("id-d").to_uppercase()),
            // The cluster's identity is refused to pods unless their namespace opted in (hardening).
            "--allow-cluster-identity-namespaces=app",
        ],
    )
    .await;
    env.ns("app").await;
    // The cluster identity (userAssignedIdentityID), an immutable one, and one assigned out of band (id-pre).
    for (n, id) in [
        ("cluster", "aks-agentpool"),
        ("imm", "id-d"),
        ("pre", "id-pre"),
    ] {
        env.identity("app", n, 0, id).await;
        env.binding("app", &format!("b-{n}"), n, "sel").await;
    }
    env.pod("app", "p", "pool1-vmss000000", "sel").await;
    for n in ["cluster", "imm", "pre"] {
        env.wait_status("default", &format!("p-app-{n}"), "Assigned")
            .await;
    }
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-d"])).await;
    let pre = env.aai("default", "p-app-pre").await.expect("aai");
    assert_eq!(
        pre.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("podid.io/preexisting"))
            .map(String::as_str),
        Some("true")
    );
    env.delete_pod("app", "p").await;
    for n in ["cluster", "imm", "pre"] {
        env.wait_gone("default", &format!("p-app-{n}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-d"])).await;
}

/// Cluster identity protection (beyond upstream): an AzureIdentity naming the cluster's own identity, or a
/// deny-listed one, in a namespace that did not opt in gets no assignment (no AAI, no ARM change) and a Warning
/// event saying why; the pod's other identity is assigned as usual; the scale set keeps the cluster identity.
async fn cluster_identity_is_refused_by_default(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller(
        "mic-a",
        &[&format!("--denied-identities={}", uami_id(IDS, "id-e"))],
    )
    .await;
    env.ns("tenant").await;
    for (n, id) in [
        ("kubelet", "aks-agentpool"),
        ("own", "id-a"),
        ("denied", "id-e"),
    ] {
        env.identity("tenant", n, 0, id).await;
        env.binding("tenant", &format!("b-{n}"), n, "sel").await;
    }
    env.pod("tenant", "p", "pool1-vmss000000", "sel").await;
    env.wait_status("default", "p-tenant-own", "Assigned").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a"])).await;
    let evs = eventually("identity refused events", WAIT, || {
        let api = Api::<Event>::namespaced(env.client.clone(), "tenant");
        async move {
            let evs = api.list(&Default::default()).await.ok()?;
            let refused: Vec<Event> = evs
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("identity refused"))
                .collect();
            (refused.len() >= 2).then_some(refused)
        }
    })
    .await;
    let about = |name: &str| {
        evs.iter()
            .find(|e| e.involved_object.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no event on {name}: {evs:?}"))
    };
    let k = about("kubelet");
    assert_eq!(k.type_.as_deref(), Some("Warning"));
    assert_eq!(k.involved_object.kind.as_deref(), Some("AzureIdentity"));
    let msg = k.message.clone().unwrap_or_default();
    assert!(
        msg.contains("cluster's own identity")
            && msg.contains("--allow-cluster-identity-namespaces=tenant"),
        "{msg}"
    );
    assert!(
        about("denied")
            .message
            .as_deref()
            .unwrap_or("")
            .contains("deny-list")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.aai("default", "p-tenant-kubelet").await.is_none());
    assert!(env.aai("default", "p-tenant-denied").await.is_none());
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a"])).await;
    // Deleting the pod releases what it had; the cluster identity stays on the scale set.
    env.delete_pod("tenant", "p").await;
    env.wait_gone("default", "p-tenant-own").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&[])).await;
}

async fn out_of_band_removal_is_re_added_and_deletion_still_works(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &["--identity-assignment-reconcile-interval=1s"])
        .await;
    env.ns("app").await;
    env.identity("app", "ident", 0, "id-a").await;
    env.binding("app", "bind", "ident", "sel").await;
    env.pod("app", "p", "pool2-vmss000000", "sel").await;
    env.wait_status("default", "p-app-ident", "Assigned").await;
    wait_arm_v(&env, "pool2-vmss", vec!["id-a".into()]).await;
    // Someone removes it through the world (out of band); the reconcile puts it back.
    let (_, mut w) = env.control("GET", "/world", None).await;
    for r in w["virtualMachineScaleSets"].as_array_mut().expect("vmss") {
        if r["name"] == json!("pool2-vmss") {
            r["identity"] = json!({"type": "None"});
        }
    }
    let (s, b) = env.control("PUT", "/world", Some(&w)).await;
    assert_eq!(s, 200, "{b}");
    wait_arm_v(&env, "pool2-vmss", vec![]).await;
    wait_arm_v(&env, "pool2-vmss", vec!["id-a".into()]).await;
    // Removed out of band again, then the pod deleted: the AAI still goes.
    let (s, _) = env.control("PUT", "/world", Some(&w)).await;
    assert_eq!(s, 200);
    env.delete_pod("app", "p").await;
    env.wait_gone("default", "p-app-ident").await;
}

async fn invalid_identities_in_a_batch(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    // A valid identity already assigned.
    env.identity("app", "good", 0, "id-a").await;
    env.binding("app", "b-good", "good", "sel").await;
    env.pod("app", "p", "pool2-vmss000000", "sel").await;
    env.wait_status("default", "p-app-good", "Assigned").await;
    // One more valid identity and two invalid ones in one batch on one pod.
    env.identity("app", "good2", 0, "id-b").await;
    env.identity("app", "missing", 0, &uami_id(IDS, "does-not-exist"))
        .await;
    env.identity("app", "noperm", 0, "id-noperm").await;
    for n in ["good2", "missing", "noperm"] {
        env.binding("app", &format!("b-{n}"), n, "sel2").await;
    }
    env.pod("app", "q", "pool2-vmss000000", "sel2").await;
    env.wait_status("default", "q-app-good2", "Assigned").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for n in ["missing", "noperm"] {
        let a = env
            .aai("default", &format!("q-app-{n}"))
            .await
            .expect("aai");
        assert_eq!(
            a.status.map(|s| s.status.as_str().to_string()).as_deref(),
            Some("Created"),
            "{n}"
        );
    }
    wait_arm_v(&env, "pool2-vmss", vec!["id-a".into(), "id-b".into()]).await;
    env.wait_status("default", "p-app-good", "Assigned").await;
    let evs = Api::<Event>::namespaced(env.client.clone(), "app")
        .list(&Default::default())
        .await
        .expect("events");
    assert!(
        evs.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("binding apply error")),
        "no warning event"
    );
}

async fn same_names_in_two_namespaces(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &["--leader-election-lock=leases"])
        .await;
    // The Lease lock option, and the one-time type upgrade recorded where upstream records it.
    let lease = eventually("the lease", WAIT, || async {
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(env.client.clone(), "default")
            .get_opt("aad-pod-identity-mic")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("mic-a")
    );
    let cm = eventually("the type-upgrade record", WAIT, || async {
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(env.client.clone(), "kube-system")
            .get_opt("aad-pod-identity-config")
            .await
            .ok()
            .flatten()
            .filter(|c| {
                c.data
                    .as_ref()
                    .is_some_and(|d| d.contains_key("type-upgrade-status"))
            })
    })
    .await;
    assert!(cm.data.is_some());
    for (ns, id) in [("ns1", "id-a"), ("ns2", "id-b")] {
        env.ns(ns).await;
        env.identity(ns, "ident", 0, id).await;
        env.binding(ns, "bind", "ident", "sel").await;
    }
    env.pod("ns1", "p", "vm-node1", "sel").await;
    let a = env.wait_status("default", "p-ns1-ident", "Assigned").await;
    assert_eq!(
        a.spec
            .azure_identity_ref
            .as_ref()
            .and_then(|i| i.metadata.namespace.clone())
            .as_deref(),
        Some("ns1")
    );
    assert_eq!(
        a.spec
            .azure_binding_ref
            .as_ref()
            .and_then(|i| i.metadata.namespace.clone())
            .as_deref(),
        Some("ns1")
    );
    wait_arm_v(&env, "vm-node1", vec!["id-a".into()]).await;
}

async fn finished_pods_release_their_identities(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    env.identity("app", "ident", 0, "id-a").await;
    env.binding("app", "bind", "ident", "sel").await;
    env.pod("app", "job", "vm-node1", "sel").await;
    env.wait_status("default", "job-app-ident", "Assigned")
        .await;
    Api::<Pod>::namespaced(env.client.clone(), "app")
        .patch_status(
            "job",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
        )
        .await
        .expect("complete the pod");
    env.wait_gone("default", "job-app-ident").await;
    wait_arm_v(&env, "vm-node1", vec![]).await;
}

async fn throttling_and_server_errors_lose_nothing(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    env.identity("app", "keep", 0, "id-a").await;
    env.binding("app", "b-keep", "keep", "keep").await;
    env.pod("app", "k", "pool1-vmss000000", "keep").await;
    env.wait_status("default", "k-app-keep", "Assigned").await;
    // A 429 storm (Retry-After 1 s), then 500s, while new pods arrive.
    let (s, b) = env
        .control(
            "PUT",
            "/faults/arm",
            Some(&json!({"status": 429, "retryAfter": 1, "remaining": 6})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for (i, id) in ["id-b", "id-c", "id-e"].iter().enumerate() {
        env.identity("app", &format!("i{i}"), 0, id).await;
        env.binding("app", &format!("b{i}"), &format!("i{i}"), &format!("s{i}"))
            .await;
        env.pod(
            "app",
            &format!("p{i}"),
            "pool1-vmss000001",
            &format!("s{i}"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = env
        .control(
            "PUT",
            "/faults/arm",
            Some(&json!({"status": 500, "remaining": 4})),
        )
        .await;
    assert_eq!(s, 200);
    for i in 0..3 {
        env.wait_status("default", &format!("p{i}-app-i{i}"), "Assigned")
            .await;
    }
    wait_arm_v(
        &env,
        "pool1-vmss",
        with_base(&["id-a", "id-b", "id-c", "id-e"]),
    )
    .await;
    env.wait_status("default", "k-app-keep", "Assigned").await;
    // Deleting pods under faults removes only what nobody uses.
    env.control(
        "PUT",
        "/faults/arm",
        Some(&json!({"status": 429, "retryAfter": 1, "remaining": 3})),
    )
    .await;
    env.delete_pod("app", "p0").await;
    env.wait_gone("default", "p0-app-i0").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a", "id-c", "id-e"])).await;
}

async fn forty_pods_one_patch_per_scale_set(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    // Every scale-set PATCH takes 1.5 s: 40 pods over 4 identities should need about one PATCH time, not 40.
    let (s, _) = env
        .control(
            "PATCH",
            "/settings",
            Some(&json!({"lroVirtualMachineScaleSetsMs": 1500, "lroRetryAfterSecs": 1})),
        )
        .await;
    assert_eq!(s, 200);
    env.controller("mic-a", &["--batch-delay=200ms"]).await;
    env.ns("app").await;
    let ids = ["id-a", "id-b", "id-c", "id-e"];
    for (i, id) in ids.iter().enumerate() {
        env.identity("app", &format!("i{i}"), 0, id).await;
        env.binding("app", &format!("b{i}"), &format!("i{i}"), &format!("s{i}"))
            .await;
    }
    let patches_before = env.arm_requests("PATCH").await;
    let started = std::time::Instant::now();
    for p in 0..40 {
        env.pod(
            "app",
            &format!("p{p}"),
            "pool2-vmss000000",
            &format!("s{}", p % 4),
        )
        .await;
    }
    for p in 0..40 {
        env.wait_status("default", &format!("p{p}-app-i{}", p % 4), "Assigned")
            .await;
    }
    let took = started.elapsed();
    let patches = env.arm_requests("PATCH").await - patches_before;
    assert!(
        patches <= 2,
        "{patches} PATCHes for 40 pods on one scale set"
    );
    assert!(took < Duration::from_secs(6), "40 pods took {took:?}");
    wait_arm_v(
        &env,
        "pool2-vmss",
        ids.iter().map(|s| s.to_string()).collect(),
    )
    .await;
}

async fn leader_killed_mid_assignment_standby_converges(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.use_manifest_rbac().await;
    let (s, _) = env
        .control(
            "PATCH",
            "/settings",
            Some(&json!({"lroVirtualMachineScaleSetsMs": 1500, "lroRetryAfterSecs": 1})),
        )
        .await;
    assert_eq!(s, 200);
    env.controller("mic-a", &[]).await;
    eventually("mic-a to lead", WAIT, || async {
        (env.ctls[0].health().await == "Active").then_some(())
    })
    .await;
    env.controller("mic-b", &[]).await;
    assert_eq!(env.ctls[1].health().await, "Not Active");
    // The lock is the upstream Endpoints record.
    let rec = env.leader_record().await;
    assert!(rec.contains("\"holderIdentity\":\"mic-a\""), "{rec}");
    env.ns("app").await;
    env.identity("app", "ident", 0, "id-a").await;
    env.binding("app", "bind", "ident", "sel").await;
    env.pod("app", "p", "pool2-vmss000000", "sel").await;
    env.wait_status("default", "p-app-ident", "Created").await;
    // Kill the leader while its PATCH is in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.ctls[0].kill();
    eventually("mic-b to lead", WAIT, || async {
        (env.ctls[1].health().await == "Active").then_some(())
    })
    .await;
    env.wait_status("default", "p-app-ident", "Assigned").await;
    wait_arm_v(&env, "pool2-vmss", vec!["id-a".into()]).await;
    // The new leader finishes the lifecycle: the identity was added by podid, so it is removed.
    env.delete_pod("app", "p").await;
    env.wait_gone("default", "p-app-ident").await;
    wait_arm_v(&env, "pool2-vmss", vec![]).await;
    // Graceful stop releases the lock.
    assert_eq!(
        env.ctls[1].terminate().await,
        Some(0),
        "{}",
        env.ctls[1].logs()
    );
    let rec = env.leader_record().await;
    assert!(rec.contains("\"holderIdentity\":\"\""), "{rec}");
}

// No API server involved (the controller exits before it reads its kubeconfig): one run, no backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_namespace_env_is_fatal_with_the_upstream_message() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_podid"))
        .args(["controller", "--kubeconfig=/nonexistent"])
        .env_remove("MIC_POD_NAMESPACE")
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "namespace not specified. Please add meta.namespace as env variable MIC_POD_NAMESPACE"
        ),
        "{err}"
    );
}

async fn pod_moving_to_another_scale_set_while_the_first_is_busy(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    env.identity("app", "x", 0, "id-a").await;
    env.binding("app", "bx", "x", "sel").await;
    env.pod("app", "p", "pool1-vmss000000", "sel").await;
    env.wait_status("default", "p-app-x", "Assigned").await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-a"])).await;
    // Keep pool1 busy with a slow PATCH for another identity...
    let (s, _) = env
        .control(
            "PATCH",
            "/settings",
            Some(&json!({"lroVirtualMachineScaleSetsMs": 1500, "lroRetryAfterSecs": 1})),
        )
        .await;
    assert_eq!(s, 200);
    env.identity("app", "y", 0, "id-b").await;
    env.binding("app", "by", "y", "sel2").await;
    env.pod("app", "q", "pool1-vmss000001", "sel2").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...while the pod moves to pool2 under the same name (same AAI key, another node and scale set).
    env.delete_pod("app", "p").await;
    env.pod("app", "p", "pool2-vmss000000", "sel").await;
    eventually("p's AAI Assigned on pool2", WAIT, || async {
        env.aai("default", "p-app-x").await.filter(|a| {
            a.spec.node_name == "pool2-vmss000000"
                && a.status
                    .as_ref()
                    .is_some_and(|s| s.status.as_str() == "Assigned")
        })
    })
    .await;
    env.wait_status("default", "q-app-y", "Assigned").await;
    // The identity left pool1 once nothing there needed it, and is on pool2.
    wait_arm_v(&env, "pool2-vmss", vec!["id-a".into()]).await;
    wait_arm_v(&env, "pool1-vmss", with_base(&["id-b"])).await;
}
