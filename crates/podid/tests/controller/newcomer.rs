//! Newcomer frictions (issue 12): assignment events on the pod, pre-v1.6 manifests accepted and rewritten, and the
//! AzureAssignedIdentity printer columns, through the API and through real kubectl.
//!
//! kubectl comes from `$KUBECTL` or `PATH`; without it the kubectl test says so and returns, unless
//! `PODID_REQUIRE_CLIENTS=1` (CI).

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use podid_k8s::{AzureIdentity, AzureIdentityBinding};
use serde_json::{Value, json};

use podid_testkit::tools::Kubectl;
use podid_testkit::*;

podid_testkit::both_backends!(
    pods_get_assignment_events_and_pre_v16_objects_are_rewritten,
    kubectl_applies_an_old_manifest_and_shows_assignments,
);

/// Events of one object in `ns`, as (type, reason, message, involvedObject uid).
async fn events_of(
    env: &Env,
    ns: &str,
    kind: &str,
    name: &str,
) -> Vec<(String, String, String, String)> {
    Api::<Event>::namespaced(env.client.clone(), ns)
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.involved_object.uid.unwrap_or_default(),
            )
        })
        .collect()
}

/// Wait for an event on the object with `reason` whose message contains `part`; returns (type, message, uid).
async fn wait_event(
    env: &Env,
    ns: &str,
    kind: &str,
    name: &str,
    reason: &str,
    part: &str,
) -> (String, String, String) {
    let what = format!("event {reason:?} containing {part:?} on {kind} {ns}/{name}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let evs = events_of(env, ns, kind, name).await;
        if let Some((t, _, m, uid)) = evs
            .iter()
            .find(|(_, r, m, _)| r == reason && m.contains(part))
        {
            return (t.clone(), m.clone(), uid.clone());
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; events: {evs:?}\n{}",
                env.logs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn pod_uid(env: &Env, ns: &str, name: &str) -> String {
    Api::<Pod>::namespaced(env.client.clone(), ns)
        .get(name)
        .await
        .expect("pod")
        .metadata
        .uid
        .unwrap_or_default()
}

/// The stored object as JSON (legacy keys included, which the typed client would fold away).
async fn raw(env: &Env, plural: &str, kind: &str, ns: &str, name: &str) -> Value {
    let ar = ApiResource {
        group: podid_k8s::GROUP.into(),
        version: podid_k8s::VERSION.into(),
        api_version: podid_k8s::API_VERSION.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let o = Api::<DynamicObject>::namespaced_with(env.client.clone(), ns, &ar)
        .get(name)
        .await
        .expect("get raw object");
    serde_json::to_value(o).expect("json")
}

async fn create_raw(env: &Env, plural: &str, ns: &str, obj: Value) {
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let ar = ApiResource {
        group: podid_k8s::GROUP.into(),
        version: podid_k8s::VERSION.into(),
        api_version: podid_k8s::API_VERSION.into(),
        kind,
        plural: plural.into(),
    };
    let o: DynamicObject = serde_json::from_value(obj).expect("object");
    Api::<DynamicObject>::namespaced_with(env.client.clone(), ns, &ar)
        .create(&PostParams::default(), &o)
        .await
        .expect("create raw object");
}

/// Wait until the stored spec has the current keys and none of `legacy`.
async fn wait_rewritten(
    env: &Env,
    plural: &str,
    kind: &str,
    ns: &str,
    name: &str,
    current: &[&str],
    legacy: &[&str],
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = raw(env, plural, kind, ns, name).await;
        let spec = &v["spec"];
        if current.iter().all(|k| spec.get(*k).is_some())
            && legacy.iter().all(|k| spec.get(*k).is_none())
        {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{kind} {ns}/{name} not rewritten: {spec}\n{}", env.logs());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn pods_get_assignment_events_and_pre_v16_objects_are_rewritten(backend: Backend) {
    let mut env = Env::builder(world()).backend(backend).start().await;
    // As the manifest's ServiceAccount: events on pods and the rewrite's `update` are within its RBAC.
    env.use_manifest_rbac().await;
    env.controller("mic-a", &[]).await;
    env.ns("app").await;
    env.identity("app", "ident", 0, "id-a").await;
    env.binding("app", "bind", "ident", "sel").await;
    env.pod("app", "p1", "pool1-vmss000000", "sel").await;
    env.wait_status("default", "p1-app-ident", "Assigned").await;
    let uid = pod_uid(&env, "app", "p1").await;
    let (t, m, ev_uid) = wait_event(
        &env,
        "app",
        "Pod",
        "p1",
        "binding applied",
        "AzureIdentity app/ident",
    )
    .await;
    assert_eq!(t, "Normal");
    assert!(
        m.contains("Binding bind applied on node pool1-vmss000000"),
        "{m}"
    );
    assert_eq!(
        ev_uid, uid,
        "kubectl describe pod matches events on the pod's uid"
    );

    // Identity deleted: the pod is told why its identity went.
    env.delete::<AzureIdentity>("app", "ident").await;
    env.wait_gone("default", "p1-app-ident").await;
    let (t, m, _) = wait_event(
        &env,
        "app",
        "Pod",
        "p1",
        "binding removed",
        "AzureIdentity app/ident was deleted",
    )
    .await;
    assert_eq!(t, "Normal");
    assert!(
        m.contains("Binding bind removed from node pool1-vmss000000"),
        "{m}"
    );

    // Binding deleted (identity back first): same, naming the binding.
    env.identity("app", "ident", 0, "id-a").await;
    env.wait_status("default", "p1-app-ident", "Assigned").await;
    env.delete::<AzureIdentityBinding>("app", "bind").await;
    env.wait_gone("default", "p1-app-ident").await;
    wait_event(
        &env,
        "app",
        "Pod",
        "p1",
        "binding removed",
        "AzureIdentityBinding app/bind was deleted",
    )
    .await;

    // A pre-v1.6 identity and binding (written as old manifests did): read at once, rewritten, with a Warning.
    env.ns("old").await;
    create_raw(
        &env,
        "azureidentities",
        "old",
        json!({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
               "metadata": {"name": "old-id", "namespace": "old"},
               "spec": {"type": 0, "ResourceID": uami_id(IDS, "id-b"), "ClientID": client_id("id-b")}}),
    )
    .await;
    create_raw(
        &env,
        "azureidentitybindings",
        "old",
        json!({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
               "metadata": {"name": "old-bind", "namespace": "old"},
               "spec": {"AzureIdentity": "old-id", "Selector": "old-sel"}}),
    )
    .await;
    env.pod("old", "p2", "pool1-vmss000001", "old-sel").await;
    let a = env
        .wait_status("default", "p2-old-old-id", "Assigned")
        .await;
    assert_eq!(
        a.spec.azure_identity_ref.map(|i| i.spec.client_id),
        Some(client_id("id-b"))
    );
    env.wait_arm("pool1-vmss", &["aks-agentpool", "id-pre", "id-b"])
        .await;
    let v = wait_rewritten(
        &env,
        "azureidentities",
        "AzureIdentity",
        "old",
        "old-id",
        &["resourceID", "clientID"],
        &["ResourceID", "ClientID"],
    )
    .await;
    assert_eq!(v["spec"]["clientID"], json!(client_id("id-b")));
    wait_rewritten(
        &env,
        "azureidentitybindings",
        "AzureIdentityBinding",
        "old",
        "old-bind",
        &["azureIdentity", "selector"],
        &["AzureIdentity", "Selector"],
    )
    .await;
    let (t, m, _) = wait_event(
        &env,
        "old",
        "AzureIdentity",
        "old-id",
        "legacy keys rewritten",
        "spec.ClientID rewritten to spec.clientID",
    )
    .await;
    assert_eq!(t, "Warning");
    assert!(
        m.contains("spec.ResourceID rewritten to spec.resourceID"),
        "{m}"
    );
    assert!(
        !m.contains(&client_id("id-b")),
        "values are not repeated: {m}"
    );
    wait_event(
        &env,
        "old",
        "AzureIdentityBinding",
        "old-bind",
        "legacy keys rewritten",
        "spec.Selector rewritten to spec.selector",
    )
    .await;
    // The rewrite did not disturb the assignment.
    env.wait_status("default", "p2-old-old-id", "Assigned")
        .await;

    // An old key re-applied beside its current key (what `kubectl apply` of the old manifest or a GitOps sync does):
    // the same value is left alone, a different one is ignored with a Warning; neither is written back, so the
    // controller never fights the tool that re-applies.
    use kube::api::{Patch, PatchParams};
    Api::<AzureIdentity>::namespaced(env.client.clone(), "old")
        .patch(
            "old-id",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ClientID": client_id("id-b")}})),
        )
        .await
        .expect("re-add ClientID");
    Api::<AzureIdentityBinding>::namespaced(env.client.clone(), "old")
        .patch(
            "old-bind",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"Selector": "other-sel"}})),
        )
        .await
        .expect("re-add Selector");
    let (t, m, _) = wait_event(
        &env,
        "old",
        "AzureIdentityBinding",
        "old-bind",
        "legacy keys ignored",
        "spec.Selector is ignored: spec.selector is also set, differs and wins",
    )
    .await;
    assert_eq!(t, "Warning", "{m}");
    let id = raw(&env, "azureidentities", "AzureIdentity", "old", "old-id").await;
    assert_eq!(
        id["spec"]["ClientID"],
        json!(client_id("id-b")),
        "left alone"
    );
    let b = raw(
        &env,
        "azureidentitybindings",
        "AzureIdentityBinding",
        "old",
        "old-bind",
    )
    .await;
    assert_eq!(
        (b["spec"]["selector"].clone(), b["spec"]["Selector"].clone()),
        (json!("old-sel"), json!("other-sel"))
    );
    let rewrites = events_of(&env, "old", "AzureIdentity", "old-id")
        .await
        .into_iter()
        .filter(|(_, r, _, _)| r == "legacy keys rewritten")
        .count();
    assert_eq!(rewrites, 1, "one rewrite, no fight");
    env.wait_status("default", "p2-old-old-id", "Assigned")
        .await;
}

// === kubectl ===

/// Column values of a kubectl table: the header's words and the first row split at the header's offsets.
fn table(text: &str) -> Vec<(String, String)> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|(i, c)| !c.is_whitespace() && (*i == 0 || header[..*i].ends_with(' ')))
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let e = starts
                .get(n + 1)
                .copied()
                .unwrap_or(header.len().max(row.len()));
            let cut = |t: &str| {
                t.get(s..e.min(t.len()))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            (cut(header), cut(row))
        })
        .collect()
}

fn old_manifest() -> String {
    format!(
        r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: kv-identity
  namespace: legacy
spec:
  type: 0
  ResourceID: {rid}
  ClientID: {cid}
---
apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentityBinding
metadata:
  name: kv-identity-binding
  namespace: legacy
spec:
  AzureIdentity: kv-identity
  Selector: kv
"#,
        rid = uami_id(IDS, "id-c"),
        cid = client_id("id-c")
    )
}

async fn kubectl_applies_an_old_manifest_and_shows_assignments(backend: Backend) {
    let Some(bin) = Kubectl::find("newcomer kubectl test") else {
        return;
    };
    let mut env = Env::builder(world()).backend(backend).start().await;
    let k = Kubectl {
        bin,
        kubeconfig: env.kubeconfig.clone(),
        home: env.dir.path().join("kubectl-home"),
    };
    env.controller("mic-a", &[]).await;
    env.ns("legacy").await;

    // kubectl validates strictly by default: upstream's CRDs refuse `ClientID` here; podid's keep it.
    let k = std::sync::Arc::new(k);
    let kk = k.clone();
    let applied =
        tokio::task::spawn_blocking(move || kk.ok(&["apply", "-f", "-"], Some(&old_manifest())))
            .await
            .expect("apply");
    assert!(
        applied.contains("azureidentity.aadpodidentity.k8s.io/kv-identity created"),
        "{applied}"
    );
    assert!(
        applied.contains("azureidentitybinding.aadpodidentity.k8s.io/kv-identity-binding created"),
        "{applied}"
    );

    env.pod("legacy", "web", "pool1-vmss000000", "kv").await;
    env.wait_status("default", "web-legacy-kv-identity", "Assigned")
        .await;
    wait_rewritten(
        &env,
        "azureidentities",
        "AzureIdentity",
        "legacy",
        "kv-identity",
        &["resourceID", "clientID"],
        &["ResourceID", "ClientID"],
    )
    .await;

    let kk = k.clone();
    let (plain, wide, describe, events, reapplied) = tokio::task::spawn_blocking(move || {
        (
            kk.ok(&["get", "azureassignedidentity"], None),
            kk.ok(&["get", "azureassignedidentity", "-o", "wide"], None),
            kk.ok(&["describe", "pod", "web", "-n", "legacy"], None),
            kk.ok(
                &[
                    "get",
                    "events",
                    "-n",
                    "legacy",
                    "--field-selector",
                    "involvedObject.kind=AzureIdentity",
                ],
                None,
            ),
            // The same old manifest again: still accepted; the old keys come back beside the current ones with
            // the same values and are left alone.
            kk.ok(&["apply", "-f", "-"], Some(&old_manifest())),
        )
    })
    .await
    .expect("kubectl");

    let cols = table(&plain);
    let names: Vec<&str> = cols.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        names,
        ["NAME", "POD", "PODNAMESPACE", "IDENTITY", "STATUS", "AGE"],
        "{plain}"
    );
    let cell = |cols: &[(String, String)], h: &str| {
        cols.iter()
            .find(|(n, _)| n == h)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(cell(&cols, "NAME"), "web-legacy-kv-identity", "{plain}");
    assert_eq!(cell(&cols, "POD"), "web");
    assert_eq!(cell(&cols, "PODNAMESPACE"), "legacy");
    assert_eq!(cell(&cols, "IDENTITY"), "kv-identity");
    assert_eq!(cell(&cols, "STATUS"), "Assigned");

    let cols = table(&wide);
    let names: Vec<&str> = cols.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        names,
        [
            "NAME",
            "POD",
            "PODNAMESPACE",
            "IDENTITY",
            "STATUS",
            "AGE",
            "NODE",
            "BINDING",
            "CLIENTID"
        ],
        "{wide}"
    );
    assert_eq!(cell(&cols, "NODE"), "pool1-vmss000000", "{wide}");
    assert_eq!(cell(&cols, "BINDING"), "kv-identity-binding");
    assert_eq!(cell(&cols, "CLIENTID"), client_id("id-c"));

    // `kubectl describe pod` shows the assignment (matched on the pod's uid).
    assert!(
        describe.contains("binding applied")
            && describe.contains("AzureIdentity legacy/kv-identity is assigned"),
        "{describe}"
    );
    assert!(
        events.contains("legacy keys rewritten")
            && events.contains("spec.ClientID rewritten to spec.clientID"),
        "{events}"
    );
    assert!(
        reapplied.contains("azureidentity.aadpodidentity.k8s.io/kv-identity"),
        "{reapplied}"
    );
    env.wait_status("default", "web-legacy-kv-identity", "Assigned")
        .await;
}
