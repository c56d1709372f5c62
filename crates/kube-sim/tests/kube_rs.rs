//! kube-rs (kube 5 / k8s-openapi 0.29) against kube-sim over HTTPS.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{
    TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use podid_k8s::{AzureIdentity, AzureIdentityBinding};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use kube_sim::testkit::eventually;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

fn api_code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn typed_crud_on_core_kinds() {
    let sim = common::start().await;
    let nss: Api<Namespace> = Api::all(sim.client.clone());
    let ns = nss
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team-a"}})).expect("ns"),
        )
        .await
        .expect("create ns");
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    assert_eq!(
        ns.metadata
            .labels
            .expect("labels")
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some("team-a")
    );

    // The namespace gets its default service account and root CA config map.
    let sas: Api<ServiceAccount> = Api::namespaced(sim.client.clone(), "team-a");
    assert!(sas.get("default").await.is_ok());

    let cms: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "team-a");
    let created = cms
        .create(&PostParams::default(), &cm("one", &[("app", "web")]))
        .await
        .expect("create");
    let uid = created.uid().expect("uid");
    assert!(created.resource_version().is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let got = cms.get("one").await.expect("get");
    assert_eq!(got.uid().as_deref(), Some(uid.as_str()));

    let mut changed = got.clone();
    changed.data = Some(BTreeMap::from([("k".to_string(), "v2".to_string())]));
    let replaced = cms
        .replace("one", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert_ne!(replaced.resource_version(), got.resource_version());

    let merged = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"m": "1"}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        merged
            .data
            .as_ref()
            .and_then(|d| d.get("m"))
            .map(String::as_str),
        Some("1")
    );
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/j", "value": "2"}]))
            .expect("json patch");
    let patched = cms
        .patch("one", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .expect("json patch");
    assert_eq!(
        patched
            .data
            .as_ref()
            .and_then(|d| d.get("j"))
            .map(String::as_str),
        Some("2")
    );
    let sm = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .expect("strategic");
    assert_eq!(sm.labels().get("tier").map(String::as_str), Some("front"));

    let list = cms.list(&ListParams::default()).await.expect("list");
    assert!(list.items.iter().any(|c| c.name_any() == "one"));
    cms.delete("one", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_code(cms.get("one").await.expect_err("gone")), 404);

    // Pods get defaults and the service-account volume.
    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), "team-a");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})).expect("pod");
    let p = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let spec = p.spec.expect("spec");
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert!(
        spec.volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.name.starts_with("kube-api-access-"))
    );
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn podid_crds_and_objects() {
    let sim = common::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(sim.client.clone());
    for crd in podid_k8s::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("create crd");
    }
    let ids: Api<AzureIdentity> = Api::namespaced(sim.client.clone(), "default");
    let id: AzureIdentity = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
        "metadata": {"name": "demo"},
        "spec": {"type": 0, "resourceID": "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo", "clientID": "00000000-0000-0000-0000-000000000001"}
    }))
    .expect("identity");
    ids.create(&PostParams::default(), &id)
        .await
        .expect("create identity");
    let got = ids.get("demo").await.expect("get identity");
    assert_eq!(got.spec.client_id, "00000000-0000-0000-0000-000000000001");
    let bindings: Api<AzureIdentityBinding> = Api::namespaced(sim.client.clone(), "default");
    let b: AzureIdentityBinding = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
        "metadata": {"name": "demo-binding"}, "spec": {"azureIdentity": "demo", "selector": "demo"}
    }))
    .expect("binding");
    bindings
        .create(&PostParams::default(), &b)
        .await
        .expect("create binding");
    assert_eq!(
        bindings
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );

    // Schema validation: a string where an integer belongs is Invalid (422).
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        sim.client.clone(),
        "default",
        &kube::api::ApiResource::erase::<AzureIdentity>(&()),
    );
    let bad: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity", "metadata": {"name": "bad"}, "spec": {"type": "zero"}
    }))
    .expect("dyn");
    assert_eq!(
        api_code(
            raw.create(&PostParams::default(), &bad)
                .await
                .expect_err("invalid")
        ),
        422
    );

    ids.delete("demo", &DeleteParams::default())
        .await
        .expect("delete identity");
    crds.delete(
        "azureidentities.aadpodidentity.k8s.io",
        &DeleteParams::default(),
    )
    .await
    .expect("delete crd");
    assert!(
        eventually(Duration::from_secs(5), || async {
            ids.list(&ListParams::default()).await.is_err()
        })
        .await
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn selectors_conflicts_and_finalizers() {
    let sim = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    for (n, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        cms.create(&PostParams::default(), &cm(n, &[("app", app)]))
            .await
            .expect("create");
    }
    let web = cms
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("labels");
    assert_eq!(web.items.len(), 2);
    let notweb = cms
        .list(&ListParams::default().labels("app!=web,app"))
        .await
        .expect("labels");
    assert_eq!(
        notweb
            .items
            .iter()
            .map(|c| c.name_any())
            .collect::<Vec<_>>(),
        vec!["c"]
    );
    let inset = cms
        .list(&ListParams::default().labels("app in (db, cache)"))
        .await
        .expect("in");
    assert_eq!(inset.items.len(), 1);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("fields");
    assert_eq!(by_name.items.len(), 1);
    // Pagination.
    let page = cms
        .list(&ListParams::default().labels("app").limit(2))
        .await
        .expect("page");
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("continue");
    let rest = cms
        .list(
            &ListParams::default()
                .labels("app")
                .limit(2)
                .continue_token(&token),
        )
        .await
        .expect("rest");
    assert_eq!(rest.items.len(), 1);
    assert!(rest.metadata.continue_.is_none_or(|c| c.is_empty()));

    // Pods by node.
    let nodes: Api<Node> = Api::all(sim.client.clone());
    for n in ["node-1", "node-2"] {
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": n}})).expect("node"),
            )
            .await
            .expect("node");
    }
    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), "default");
    for (p, n) in [("p1", "node-1"), ("p2", "node-2"), ("p3", "node-1")] {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": p}, "spec": {"nodeName": n, "containers": [{"name": "c", "image": "busybox"}]}})).expect("pod");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("pod");
    }
    let on1 = pods
        .list(&ListParams::default().fields("spec.nodeName=node-1"))
        .await
        .expect("by node");
    assert_eq!(on1.items.len(), 2);
    assert_eq!(
        api_code(
            pods.list(&ListParams::default().fields("spec.bogus=1"))
                .await
                .expect_err("bad field")
        ),
        400
    );

    // Update conflict on a stale resourceVersion.
    let a = cms.get("a").await.expect("get");
    let mut a1 = a.clone();
    a1.data = Some(BTreeMap::from([("k".into(), "1".into())]));
    cms.replace("a", &PostParams::default(), &a1)
        .await
        .expect("first write");
    let mut a2 = a.clone();
    a2.data = Some(BTreeMap::from([("k".into(), "2".into())]));
    assert_eq!(
        api_code(
            cms.replace("a", &PostParams::default(), &a2)
                .await
                .expect_err("stale")
        ),
        409
    );

    // Finalizers hold a delete until removed.
    let mut f = cm("held", &[]);
    f.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &f)
        .await
        .expect("create held");
    cms.delete("held", &DeleteParams::default())
        .await
        .expect("delete held");
    let held = cms.get("held").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("drop finalizer");
    assert_eq!(api_code(cms.get("held").await.expect_err("gone")), 404);
    sim.handle.shutdown().await;
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
struct WidgetSpec {
    size: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
struct WidgetStatus {
    ready: bool,
    message: Option<String>,
}

#[tokio::test]
async fn server_side_apply_of_a_status() {
    let sim = common::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(sim.client.clone());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .expect("crd");
    let widgets: Api<Widget> = Api::namespaced(sim.client.clone(), "default");
    let pp = PatchParams::apply("podid-test").force();
    widgets
        .patch("w1", &pp, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}})))
        .await
        .expect("apply create");
    let st = widgets
        .patch_status("w1", &pp, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"ready": true, "message": "ok"}})))
        .await
        .expect("apply status");
    assert!(st.status.as_ref().expect("status").ready);
    assert_eq!(st.spec.size, 3);
    // A main-resource write does not touch status (status subresource).
    let after = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}, "status": {"ready": false}})),
        )
        .await
        .expect("merge");
    assert!(after.status.expect("status").ready);
    assert_eq!(after.metadata.generation, Some(2));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn watcher_and_reflector_converge_across_forced_expiry() {
    let sim = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &cm(&format!("pre-{i}"), &[("w", "1")]),
        )
        .await
        .expect("create");
    }
    let (reader, writer) = reflector::store::<ConfigMap>();
    let inits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = inits.clone();
    let stream = reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().labels("w=1")),
    )
    .inspect_ok(move |e| {
        if matches!(e, watcher::Event::Init) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .default_backoff()
    .touched_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    assert!(
        eventually(Duration::from_secs(10), || async {
            reader.state().len() == 5
        })
        .await,
        "initial list"
    );
    cms.create(&PostParams::default(), &cm("live-1", &[("w", "1")]))
        .await
        .expect("create");
    assert!(
        eventually(Duration::from_secs(10), || async {
            reader.state().len() == 6
        })
        .await,
        "live event"
    );

    // Force every resourceVersion to expire: the watch ends with 410 and the client must relist.
    sim.handle.sim.store.compact();
    cms.delete("pre-0", &DeleteParams::default())
        .await
        .expect("delete");
    cms.create(&PostParams::default(), &cm("after-1", &[("w", "1")]))
        .await
        .expect("create");
    let want = {
        let mut names: Vec<String> = cms
            .list(&ListParams::default().labels("w=1"))
            .await
            .expect("list")
            .items
            .iter()
            .map(|c| c.name_any())
            .collect();
        names.sort();
        names
    };
    let converged = eventually(Duration::from_secs(15), || async {
        let mut got: Vec<String> = reader.state().iter().map(|c| c.name_any()).collect();
        got.sort();
        got == want
    })
    .await;
    assert!(converged, "reflector converged to {want:?}");
    assert!(
        inits.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the watcher relisted after 410"
    );
    task.abort();
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn token_request_review_and_access_reviews() {
    let sim = common::start().await;
    let sas: Api<ServiceAccount> = Api::namespaced(sim.client.clone(), "default");
    let sa = sas
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "workload"}})).expect("sa"),
        )
        .await
        .expect("sa");
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["api://AzureADTokenExchange".into()],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let issued = sas
        .create_token_request("workload", &PostParams::default(), &tr)
        .await
        .expect("token request");
    let token = issued.status.expect("status").token;

    let reviews: Api<TokenReview> = Api::all(sim.client.clone());
    let review = |aud: &str| TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.clone()),
            audiences: Some(vec![aud.to_string()]),
        },
        ..Default::default()
    };
    let ok = reviews
        .create(
            &PostParams::default(),
            &review("api://AzureADTokenExchange"),
        )
        .await
        .expect("review");
    let st = ok.status.expect("status");
    assert_eq!(st.authenticated, Some(true));
    let user = st.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:default:workload")
    );
    assert_eq!(user.uid, sa.uid());
    assert!(
        user.groups
            .unwrap_or_default()
            .contains(&"system:serviceaccounts:default".to_string())
    );
    let wrong = reviews
        .create(&PostParams::default(), &review("other"))
        .await
        .expect("review");
    let wst = wrong.status.expect("status");
    // `authenticated` is omitempty upstream: absent means false.
    assert_ne!(wst.authenticated, Some(true));
    assert!(
        wst.error.is_some_and(|e| e.contains("audience")),
        "audience mismatch is reported"
    );

    // RBAC: the custom verb on a client ID.
    let client_id = "11111111-2222-3333-4444-555555555555";
    let roles: Api<ClusterRole> = Api::all(sim.client.clone());
    roles
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some("use-identity".into()),
                    ..Default::default()
                },
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["cid.wi.aks.azure.com".into()]),
                    resources: Some(vec![client_id.into()]),
                    verbs: vec!["use-managed-identity".into()],
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
        .await
        .expect("role");
    let crbs: Api<ClusterRoleBinding> = Api::all(sim.client.clone());
    crbs.create(
        &PostParams::default(),
        &ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some("workload-uses-identity".into()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: "use-identity".into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: "workload".into(),
                namespace: Some("default".into()),
                ..Default::default()
            }]),
        },
    )
    .await
    .expect("binding");
    let sars: Api<SubjectAccessReview> = Api::all(sim.client.clone());
    let sar = |resource: &str, verb: &str| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("system:serviceaccount:default:workload".into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:default".into(),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                group: Some("cid.wi.aks.azure.com".into()),
                resource: Some(resource.into()),
                verb: Some(verb.into()),
                namespace: Some("default".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let allowed = sars
        .create(
            &PostParams::default(),
            &sar(client_id, "use-managed-identity"),
        )
        .await
        .expect("sar");
    assert!(allowed.status.expect("status").allowed);
    let other_id = sars
        .create(
            &PostParams::default(),
            &sar(
                "99999999-0000-0000-0000-000000000000",
                "use-managed-identity",
            ),
        )
        .await
        .expect("sar");
    assert!(!other_id.status.expect("status").allowed);
    let other_verb = sars
        .create(&PostParams::default(), &sar(client_id, "get"))
        .await
        .expect("sar");
    assert!(!other_verb.status.expect("status").allowed);

    // The token authenticates requests as the service account, and RBAC applies to it.
    let as_sa = common::client_with_token(&sim, &{
        let tr = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![],
                ..Default::default()
            },
            ..Default::default()
        };
        sas.create_token_request("workload", &PostParams::default(), &tr)
            .await
            .expect("api token")
            .status
            .expect("status")
            .token
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(as_sa, "default");
    assert_eq!(
        api_code(
            pods.list(&ListParams::default())
                .await
                .expect_err("forbidden")
        ),
        403
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn tokens_verify_with_published_jwks_using_an_independent_library() {
    let sim = common::start().await;
    let sas: Api<ServiceAccount> = Api::namespaced(sim.client.clone(), "default");
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["aud-x".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let token = sas
        .create_token_request("default", &PostParams::default(), &tr)
        .await
        .expect("token")
        .status
        .expect("status")
        .token;
    let jwks: serde_json::Value = sim
        .client
        .request(
            http::Request::get("/openid/v1/jwks")
                .body(Vec::new())
                .expect("req"),
        )
        .await
        .expect("jwks");
    let disco: serde_json::Value = sim
        .client
        .request(
            http::Request::get("/.well-known/openid-configuration")
                .body(Vec::new())
                .expect("req"),
        )
        .await
        .expect("oidc");
    assert_eq!(
        disco["issuer"],
        serde_json::Value::String(sim.handle.url.clone())
    );
    let key = &jwks["keys"][0];
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let dk = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().expect("n"),
        key["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["aud-x"]);
    v.set_issuer(&[sim.handle.url.as_str()]);
    let data =
        jsonwebtoken::decode::<serde_json::Value>(&token, &dk, &v).expect("verifies with the JWKS");
    assert_eq!(data.claims["sub"], "system:serviceaccount:default:default");
    assert!(data.claims["kubernetes.io"]["serviceaccount"]["uid"].is_string());
    sim.handle.shutdown().await;
}
