//! ARM compute identity calls against azure-sim: GET and PATCH of a scale set and a VM, long-running
//! operations, throttling gates, transient retries, RBAC failures and the 150-identity limit.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use podid_azure::*;
use serde_json::{Map, Value, json};

#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, bool)>>);

impl ArmObserver for Recorder {
    fn observe(&self, op: &'static str, seconds: f64, error: bool) {
        assert!(seconds >= 0.0);
        self.0.lock().push((op, error));
    }
}

fn add(id: &str) -> Value {
    json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {id.to_lowercase(): {}}}})
}

fn remove(id: &str) -> Value {
    json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {id.to_lowercase(): null}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmss_get_add_and_remove_identity() {
    let sim = start().await;
    let recorder = Arc::new(Recorder::default());
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    let compute = ComputeClient::new(
        sim.env.clone(),
        tokens,
        sim.http.clone(),
        ComputeOptions {
            observer: Some(recorder.clone()),
            ..Sim::compute_options()
        },
    );
    let kubelet = sim.uami("kubelet").id();
    let web = sim.uami("id-web").id();

    let before = compute.get_identity(&vmss()).await.expect("get");
    assert_eq!(before.type_, "UserAssigned");
    assert_eq!(before.user_assigned.len(), 1);
    assert!(has_id(&before.user_assigned, &kubelet));
    assert_eq!(before.provisioning_state.as_deref(), Some("Succeeded"));

    compute
        .patch_identity(&vmss(), &add(&web))
        .await
        .expect("add id-web");
    let after = compute.get_identity(&vmss()).await.expect("get");
    assert_eq!(after.user_assigned.len(), 2, "{after:?}");
    assert!(has_id(&after.user_assigned, &kubelet) && has_id(&after.user_assigned, &web));

    // The node's IMDS now serves id-web.
    let web_cid = sim.uami("id-web").client_id.expect("client id");
    sim.tokens(&sim.msi_config(&web_cid), &sim.imds(VMSS_NODE))
        .token()
        .await
        .expect("IMDS token for id-web");

    compute
        .patch_identity(&vmss(), &remove(&web))
        .await
        .expect("remove id-web");
    let last = compute.get_identity(&vmss()).await.expect("get");
    assert_eq!(last.user_assigned.len(), 1);
    assert!(has_id(&last.user_assigned, &kubelet), "kubelet preserved");

    let s = compute.stats();
    assert_eq!((s.gets, s.patches), (3, 2), "{s:?}");
    assert!(
        s.polls >= 2,
        "each PATCH is awaited through its async operation: {s:?}"
    );
    assert_eq!((s.throttled, s.gated, s.retries), (0, 0, 0));
    assert_eq!(sim.count("arm").await, s.gets + s.patches + s.polls);
    let seen = recorder.0.lock().clone();
    assert_eq!(
        seen,
        vec![
            ("vmss_get", false),
            ("vmss_update", false),
            ("vmss_get", false),
            ("vmss_update", false),
            ("vmss_get", false)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_system_and_user_assigned() {
    let sim = start().await;
    let compute = sim.controller();
    let web = sim.uami("id-web").id();
    let before = compute.get_identity(&vm()).await.expect("get vm");
    assert_eq!(before.type_, "SystemAssigned");
    assert!(before.principal_id.is_some());
    assert!(before.user_assigned.is_empty());

    let body = json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {web.to_lowercase(): {}}}});
    compute.patch_identity(&vm(), &body).await.expect("add");
    let mid = compute.get_identity(&vm()).await.expect("get");
    assert_eq!(mid.type_, "SystemAssigned, UserAssigned");
    assert_eq!(
        mid.principal_id, before.principal_id,
        "system identity kept"
    );
    assert!(has_id(&mid.user_assigned, &web));

    // Upstream removes the last user identity by sending only the type.
    compute
        .patch_identity(&vm(), &json!({"identity": {"type": "SystemAssigned"}}))
        .await
        .expect("remove");
    let after = compute.get_identity(&vm()).await.expect("get");
    assert_eq!(after.type_, "SystemAssigned");
    assert!(after.user_assigned.is_empty(), "{after:?}");

    // A VM that does not exist.
    let e = compute
        .get_identity(&ComputeRef::vm(SUB, NODE_RG, "no-such-vm"))
        .await
        .expect_err("404");
    assert_eq!(e.status(), Some(404), "{e}");
    assert_eq!(e.code(), Some("ResourceNotFound"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_patch_is_awaited() {
    let sim = start().await;
    sim.settings(json!({"lroVirtualMachineScaleSetsMs": 1500, "lroRetryAfterSecs": 1}))
        .await;
    let compute = sim.controller();
    let job = sim.uami("id-job");
    let started = Instant::now();
    compute
        .patch_identity(&vmss(), &add(&job.id()))
        .await
        .expect("patch");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(compute.stats().polls >= 2, "{:?}", compute.stats());
    let after = compute.get_identity(&vmss()).await.expect("get");
    assert_eq!(after.provisioning_state.as_deref(), Some("Succeeded"));
    assert!(has_id(&after.user_assigned, &job.id()));
    // Once the operation has succeeded, IMDS serves the identity.
    let cid = job.client_id.expect("client id");
    sim.tokens(&sim.msi_config(&cid), &sim.imds(VMSS_NODE))
        .token()
        .await
        .expect("IMDS token after the LRO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lro_cap_times_out() {
    let sim = start().await;
    sim.settings(json!({"lroVirtualMachineScaleSetsMs": 5000, "lroRetryAfterSecs": 1}))
        .await;
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    let compute = ComputeClient::new(
        sim.env.clone(),
        tokens,
        sim.http.clone(),
        ComputeOptions {
            lro_timeout: Duration::from_millis(1500),
            ..Sim::compute_options()
        },
    );
    let e = compute
        .patch_identity(&vmss(), &add(&sim.uami("id-web").id()))
        .await
        .expect_err("cap");
    assert!(
        matches!(
            e,
            ArmError::Timeout {
                operation: "VMSSUpdate",
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_closes_the_reader_gate_without_network() {
    let sim = start().await;
    let recorder = Arc::new(Recorder::default());
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    let compute = ComputeClient::new(
        sim.env.clone(),
        tokens,
        sim.http.clone(),
        ComputeOptions {
            observer: Some(recorder.clone()),
            ..Sim::compute_options()
        },
    );
    compute.tokens().token().await.expect("token first");
    sim.fault(
        "arm",
        json!({"status": 429, "retryAfter": 2, "remaining": 1}),
    )
    .await;
    let e = compute.get_identity(&vmss()).await.expect_err("429");
    match e {
        ArmError::Throttled {
            operation,
            retry_after,
        } => {
            assert_eq!(operation, "VMSSGet");
            assert_eq!(retry_after, Duration::from_secs(2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.count("arm").await, 1);
    assert_eq!(sim.count_status("arm", 429).await, 1);
    // The gate is closed: no network, no retry.
    let e = compute.get_identity(&vmss()).await.expect_err("gated");
    let left = e.retry_after().expect("throttled");
    assert!(
        left <= Duration::from_secs(2) && left > Duration::ZERO,
        "{left:?}"
    );
    assert!(
        e.to_string()
            .starts_with("VMSSGet client throttled, retry after:"),
        "{e}"
    );
    assert_eq!(
        sim.count("arm").await,
        1,
        "no request while the gate is closed"
    );
    let s = compute.stats();
    assert_eq!((s.gets, s.throttled, s.gated), (1, 1, 1), "{s:?}");
    // The VM reader gate and the scale-set writer gate are separate.
    compute
        .get_identity(&vm())
        .await
        .expect("vm get is not gated");
    compute
        .patch_identity(&vmss(), &add(&sim.uami("id-web").id()))
        .await
        .expect("the writer gate is open");
    // After Retry-After the reader works again.
    tokio::time::sleep(left + Duration::from_millis(100)).await;
    compute.get_identity(&vmss()).await.expect("gate open");
    let seen = recorder.0.lock().clone();
    assert_eq!(seen[0], ("vmss_get", true));
    assert_eq!(seen[1], ("vmss_get", true));
    assert_eq!(seen.last(), Some(&("vmss_get", false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_write_closes_the_writer_gate() {
    let sim = start().await;
    let compute = sim.controller();
    compute.get_identity(&vmss()).await.expect("warm");
    sim.fault(
        "arm",
        json!({"status": 503, "retryAfter": 1, "remaining": 1}),
    )
    .await;
    let body = add(&sim.uami("id-web").id());
    let e = compute
        .patch_identity(&vmss(), &body)
        .await
        .expect_err("503");
    assert!(
        matches!(
            e,
            ArmError::Throttled {
                operation: "VMSSUpdate",
                ..
            }
        ),
        "{e:?}"
    );
    let before = sim.count("arm").await;
    let e = compute
        .patch_identity(&vmss(), &body)
        .await
        .expect_err("gated");
    assert!(e.retry_after().is_some());
    assert_eq!(sim.count("arm").await, before);
    compute
        .get_identity(&vmss())
        .await
        .expect("reads are not gated by writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried() {
    let sim = start().await;
    let compute = sim.controller();
    compute.tokens().token().await.expect("token");
    sim.fault("arm", json!({"status": 500, "remaining": 2}))
        .await;
    compute.get_identity(&vmss()).await.expect("third attempt");
    assert_eq!(sim.count_status("arm", 500).await, 2);
    assert_eq!(sim.count_status("arm", 200).await, 1);
    assert_eq!(compute.stats().retries, 2);

    sim.fault("arm", json!({"drop": true, "remaining": 1}))
        .await;
    compute
        .get_identity(&vmss())
        .await
        .expect("after a dropped connection");
    assert_eq!(compute.stats().retries, 3);

    sim.fault("arm", json!({"status": 502, "remaining": 3}))
        .await;
    let e = compute.get_identity(&vmss()).await.expect_err("exhausted");
    assert_eq!(e.status(), Some(502), "{e}");
    assert_eq!(compute.stats().retries, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_failures_surface_code_and_message() {
    let sim = start().await;
    let web = sim.uami("id-web").id();
    // Virtual Machine Contributor without Managed Identity Operator on the identity.
    let weak = sim.compute_as("vmc-only", VMC_ONLY_SECRET);
    weak.get_identity(&vmss()).await.expect("may read");
    let e = weak
        .patch_identity(&vmss(), &add(&web))
        .await
        .expect_err("linked");
    assert_eq!(e.status(), Some(403));
    assert_eq!(e.code(), Some("LinkedAuthorizationFailed"), "{e}");
    assert!(
        e.message()
            .contains("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"),
        "{e}"
    );
    assert!(
        e.message().to_lowercase().contains(&web.to_lowercase()),
        "{e}"
    );
    assert!(e.to_string().contains("LinkedAuthorizationFailed"));
    // The controller lacks Managed Identity Operator on id-locked only.
    let e = sim
        .controller()
        .patch_identity(&vmss(), &add(&sim.uami("id-locked").id()))
        .await
        .expect_err("linked");
    assert_eq!(e.code(), Some("LinkedAuthorizationFailed"), "{e}");
    // No role at all.
    let nobody = sim.compute_as("nobody", NOBODY_SECRET);
    let e = nobody.get_identity(&vmss()).await.expect_err("denied");
    assert_eq!(e.status(), Some(403));
    assert_eq!(e.code(), Some("AuthorizationFailed"), "{e}");
    assert!(
        e.message()
            .contains("Microsoft.Compute/virtualMachineScaleSets/read"),
        "{e}"
    );
    assert_eq!(
        nobody.stats().retries,
        0,
        "authorization errors are not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_150_identities_in_one_request() {
    let sim = start().await;
    let compute = sim.controller();
    let mut ids = Map::new();
    for i in 0..151 {
        ids.insert(
            format!("/subscriptions/{SUB}/resourcegroups/rg-ids/providers/microsoft.managedidentity/userassignedidentities/id-{i}"),
            json!({}),
        );
    }
    let body = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": ids}});
    let e = compute
        .patch_identity(&vmss(), &body)
        .await
        .expect_err("limit");
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.code(), Some("FailedIdentityOperation"), "{e}");
    assert!(
        e.message().contains(
            "User Assigned Identities Number '151' Assign exceed limit '150' in one request"
        ),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_are_typed() {
    let sim = start().await;
    let compute = sim.compute_as("controller", "wrong-secret");
    let e = compute.get_identity(&vmss()).await.expect_err("auth");
    match e {
        ArmError::Auth(t) => assert_eq!(t.aadsts(), Some(7000215)),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.count("arm").await, 0);
    let e = compute
        .get_identity(&ComputeRef::vmss(SUB, NODE_RG, " "))
        .await
        .expect_err("target");
    assert!(
        matches!(e, ArmError::InvalidTarget { field: "name", .. }),
        "{e:?}"
    );
}
