//! `apps/v1` and `batch/v1` through HTTP with kube-rs and kubectl: Deployment -> ReplicaSet -> pods with their
//! labels and owners, a rollout on a template change, the scale subresource, deletion with each propagation
//! policy, StatefulSet ordinal pods, a Job to completion, the apiserver's defaults, validation and printer
//! columns.
//!
//! The tests play the kubelet themselves where readiness matters (a `Ready` condition through `pods/status`).

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Api, ResourceExt};
use kube_sim::testkit::eventually;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}
    }))
    .expect("deployment")
}

async fn owned_by<K>(api: &Api<K>, uid: &str) -> Vec<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|o| {
            o.owner_references()
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect()
}

/// Wait until `uid` controls exactly `n` objects, and return them.
async fn wait_owned<K>(api: &Api<K>, uid: &str, n: usize) -> Vec<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let ok = eventually(WAIT, || async { owned_by(api, uid).await.len() == n }).await;
    let found = owned_by(api, uid).await;
    assert!(
        ok,
        "expected {n} objects owned by {uid}, found {}",
        found.len()
    );
    found
}

/// Play the kubelet: every pod of the namespace gets `Running` and a True `Ready` condition.
async fn make_ready(pods: &Api<Pod>) {
    for p in pods.list(&ListParams::default()).await.expect("pods").items {
        let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(
            &p.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .expect("pod status");
    }
}

/// A simulator, an API of `K` and the pods API, both in `default`.
async fn start_with<K>() -> (common::Sim, Api<K>, Api<Pod>)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    let sim = common::start().await;
    let api = Api::namespaced(sim.client.clone(), "default");
    let pods = Api::namespaced(sim.client.clone(), "default");
    (sim, api, pods)
}

/// Create the Job `pi` (one pod that must not restart).
async fn create_pi_job(jobs: &Api<Job>) -> Job {
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "pi"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}))
    .expect("job");
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("job")
}

fn revision(o: &impl ResourceExt) -> String {
    o.annotations()
        .get("deployment.kubernetes.io/revision")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_replica_sets_and_pods() {
    let (sim, deploys, pods) = start_with::<Deployment>().await;
    let sets: Api<ReplicaSet> = Api::namespaced(sim.client.clone(), "default");

    let d = deploys
        .create(&PostParams::default(), &deployment("web", "nginx:1.27", 3))
        .await
        .expect("create");
    let spec = serde_json::to_value(&d.spec).expect("spec");
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let uid = d.uid().expect("uid");

    let rs = wait_owned(&sets, &uid, 1).await.remove(0);
    let hash = rs.labels()["pod-template-hash"].clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(rs.labels()["app"], "web");
    assert_eq!(revision(&rs), "1");
    let rs_spec = rs.spec.clone().expect("rs spec");
    assert_eq!(rs_spec.replicas, Some(3));
    assert_eq!(
        rs_spec.selector.match_labels.expect("labels")["pod-template-hash"],
        hash
    );
    let owner = &rs.owner_references()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.block_owner_deletion
        ),
        ("Deployment", "web", Some(true))
    );

    let made = wait_owned(&pods, &rs.uid().expect("rs uid"), 3).await;
    for p in &made {
        assert!(
            p.name_any().starts_with(&format!("web-{hash}-")),
            "{}",
            p.name_any()
        );
        assert_eq!(p.name_any().len(), format!("web-{hash}-").len() + 5);
        assert_eq!(p.labels()["pod-template-hash"], hash);
        assert_eq!(p.owner_references()[0].kind, "ReplicaSet");
        // Created through admission: the ServiceAccount plugin mounted the API access volume.
        let spec = p.spec.as_ref().expect("pod spec");
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));
        assert!(
            spec.volumes
                .iter()
                .flatten()
                .any(|v| v.name.starts_with("kube-api-access-"))
        );
    }

    make_ready(&pods).await;
    let settled = eventually(WAIT, || async {
        let d = deploys.get("web").await.expect("get");
        let s = d.status.unwrap_or_default();
        s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.updated_replicas == Some(3)
            && s.observed_generation == Some(1)
            && s.conditions.iter().flatten().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
            })
    })
    .await;
    let d = deploys.get("web").await.expect("get");
    assert!(settled, "deployment status: {:?}", d.status);
    assert_eq!(revision(&d), "1");
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    assert_eq!(conditions[0].type_, "Available");
    assert_eq!(conditions[0].status, "True");
    let rs_status = sets
        .get(&rs.name_any())
        .await
        .expect("rs")
        .status
        .expect("rs status");
    assert_eq!((rs_status.replicas, rs_status.ready_replicas), (3, Some(3)));

    // A new template: a second ReplicaSet at revision 2, the first scaled to 0 and its pods gone.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch template");
    let both = wait_owned(&sets, &uid, 2).await;
    let new = both
        .iter()
        .find(|r| r.name_any() != rs.name_any())
        .expect("new rs");
    assert_eq!(revision(new), "2");
    let rolled = eventually(WAIT, || async {
        let old = sets.get(&rs.name_any()).await.expect("old rs");
        old.spec.and_then(|s| s.replicas) == Some(0)
            && owned_by(&pods, &rs.uid().expect("uid")).await.is_empty()
            && owned_by(&pods, &new.uid().expect("uid")).await.len() == 3
            && revision(&deploys.get("web").await.expect("get")) == "2"
    })
    .await;
    assert!(rolled, "rollout did not finish");
    let d = deploys.get("web").await.expect("get");
    assert_eq!(d.metadata.generation, Some(2));

    // The scale subresource.
    let scale = deploys.get_scale("web").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(
        scale.status.map(|s| s.selector.unwrap_or_default()),
        Some("app=web".to_string())
    );
    let scaled = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("patch scale");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(5));
    assert_eq!(
        deploys
            .get("web")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.replicas),
        Some(5)
    );
    wait_owned(&pods, &new.uid().expect("uid"), 5).await;
    let err = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": -1}})),
        )
        .await
        .expect_err("negative scale");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    // ReplicaSets serve their scale too (kubectl scale rs).
    let rs_scale = sets.get_scale(&new.name_any()).await.expect("rs scale");
    assert_eq!(rs_scale.spec.and_then(|s| s.replicas), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deployment_cascades_by_propagation_policy() {
    let (sim, deploys, pods) = start_with::<Deployment>().await;
    let sets: Api<ReplicaSet> = Api::namespaced(sim.client.clone(), "default");

    for (name, policy) in [
        ("bg", PropagationPolicy::Background),
        ("fg", PropagationPolicy::Foreground),
        ("orphan", PropagationPolicy::Orphan),
    ] {
        let d = deploys
            .create(&PostParams::default(), &deployment(name, "nginx", 2))
            .await
            .expect("create");
        let uid = d.uid().expect("uid");
        let rs = wait_owned(&sets, &uid, 1).await.remove(0);
        let rs_uid = rs.uid().expect("rs uid");
        wait_owned(&pods, &rs_uid, 2).await;
        let dp = DeleteParams {
            propagation_policy: Some(policy.clone()),
            ..Default::default()
        };
        deploys.delete(name, &dp).await.expect("delete");
        let gone = eventually(WAIT, || async {
            deploys.get_opt(name).await.expect("get").is_none()
        })
        .await;
        assert!(gone, "{name}: the deployment stays");
        if matches!(policy, PropagationPolicy::Orphan) {
            // The ReplicaSet stays, without an owner, and keeps its pods.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let kept = sets.get(&rs.name_any()).await.expect("orphaned rs");
            assert!(
                kept.owner_references().is_empty(),
                "{:?}",
                kept.metadata.owner_references
            );
            assert_eq!(owned_by(&pods, &rs_uid).await.len(), 2);
        } else {
            let cascaded = eventually(WAIT, || async {
                sets.get_opt(&rs.name_any()).await.expect("get").is_none()
                    && owned_by(&pods, &rs_uid).await.is_empty()
            })
            .await;
            assert!(cascaded, "{name}: dependents stay");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_validation_is_the_apiservers() {
    let sim = common::start().await;
    let deploys: Api<Deployment> = Api::namespaced(sim.client.clone(), "default");
    let mut bad = deployment("web", "nginx", 1);
    let labels = json!({"app": "other"});
    bad.spec.as_mut().expect("spec").template.metadata =
        Some(serde_json::from_value(json!({"labels": labels})).expect("meta"));
    let err = deploys
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("mismatch");
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    assert_eq!(
        status.message,
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
    );

    deploys
        .create(&PostParams::default(), &deployment("web", "nginx", 1))
        .await
        .expect("create");
    let patch = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "x"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "x"}}}}});
    let err = deploys
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("immutable");
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"x\"}}: field is immutable"
    );

    // Jobs and CronJobs are served with their defaults.
    let jobs: Api<Job> = Api::namespaced(sim.client.clone(), "default");
    let job = create_pi_job(&jobs).await;
    let spec = serde_json::to_value(job.spec.as_ref().expect("spec")).expect("spec");
    let uid = job.uid().expect("uid");
    for (field, value) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
    ] {
        assert_eq!(spec[field], value, "{field}");
    }
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(
        spec["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "pi"
    );
    let cronjobs: Api<CronJob> = Api::namespaced(sim.client.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({"metadata": {"name": "tick"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "t", "image": "busybox"}]}}}}}}))
    .expect("cronjob");
    let cj = cronjobs
        .create(&PostParams::default(), &cj)
        .await
        .expect("cronjob");
    let spec = serde_json::to_value(cj.spec.as_ref().expect("spec")).expect("spec");
    assert_eq!(
        (
            &spec["concurrencyPolicy"],
            &spec["suspend"],
            &spec["successfulJobsHistoryLimit"],
            &spec["failedJobsHistoryLimit"]
        ),
        (&json!("Allow"), &json!(false), &json!(3), &json!(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_deployments_with_their_columns() {
    let sim = common::start().await;
    let Some(k) = common::kubectl(&sim, "kubectl workloads test") else {
        return;
    };
    let k = std::sync::Arc::new(k);
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
"#;
    let kk = k.clone();
    tokio::task::spawn_blocking(move || kk.ok(&["apply", "-f", "-"], Some(manifest)))
        .await
        .expect("apply");
    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), "default");
    let two = eventually(WAIT, || async {
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .len()
            == 2
    })
    .await;
    assert!(two, "no pods");
    make_ready(&pods).await;
    let kk = k.clone();
    let settled = eventually(WAIT, move || {
        let kk = kk.clone();
        async move {
            tokio::task::spawn_blocking(move || kk.ok(&["get", "deployments"], None))
                .await
                .expect("get")
                .lines()
                .nth(1)
                .is_some_and(|l| {
                    l.split_whitespace().take(4).collect::<Vec<_>>() == ["web", "2/2", "2", "2"]
                })
        }
    })
    .await;
    let kk = k.clone();
    let (table, wide, rs, scaled, rollout) = tokio::task::spawn_blocking(move || {
        let table = kk.ok(&["get", "deployments"], None);
        let wide = kk.ok(&["get", "deploy", "-o", "wide"], None);
        let rs = kk.ok(&["get", "rs"], None);
        let scaled = kk.ok(&["scale", "deployment/web", "--replicas=3"], None);
        let rollout = kk.ok(&["rollout", "history", "deployment/web"], None);
        (table, wide, rs, scaled, rollout)
    })
    .await
    .expect("kubectl");
    assert!(settled, "{table}");
    let header: Vec<&str> = table
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let wide_header: Vec<&str> = wide
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(
        wide_header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(
        wide.contains("nginx:1.27") && wide.contains("app=web"),
        "{wide}"
    );
    let rs_header: Vec<&str> = rs
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(rs_header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(scaled.trim(), "deployment.apps/web scaled");
    assert!(
        rollout.contains("REVISION") && rollout.lines().any(|l| l.starts_with('1')),
        "{rollout}"
    );
    let deploys: Api<Deployment> = Api::namespaced(sim.client.clone(), "default");
    let d: Value = serde_json::to_value(deploys.get("web").await.expect("get")).expect("json");
    assert_eq!(d["spec"]["replicas"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_a_deployment_is_deleted() {
    use k8s_openapi::api::core::v1::Namespace;
    let sim = common::start().await;
    let namespaces: Api<Namespace> = Api::all(sim.client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "shop"}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let deploys: Api<Deployment> = Api::namespaced(sim.client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), "shop");
    deploys
        .create(&PostParams::default(), &deployment("cart", "nginx", 2))
        .await
        .expect("create");
    let running = eventually(WAIT, || async {
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .len()
            == 2
    })
    .await;
    assert!(running, "no pods in shop");
    namespaces
        .delete("shop", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let gone = eventually(WAIT, || async {
        namespaces.get_opt("shop").await.expect("get").is_none()
    })
    .await;
    assert!(gone, "the namespace stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_set_creates_ordinal_pods_in_order() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (_sim, sets, pods) = start_with::<StatefulSet>().await;
    let set: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "pg", "image": "postgres"}]}}}}))
    .expect("statefulset");
    let set = sets
        .create(&PostParams::default(), &set)
        .await
        .expect("create");
    let uid = set.uid().expect("uid");
    let spec = serde_json::to_value(set.spec.as_ref().expect("spec")).expect("spec");
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    // OrderedReady: db-1 waits for db-0 to be ready.
    let first = wait_owned(&pods, &uid, 1).await.remove(0);
    assert_eq!(first.name_any(), "db-0");
    assert_eq!(first.labels()["statefulset.kubernetes.io/pod-name"], "db-0");
    assert_eq!(
        first.spec.as_ref().and_then(|s| s.hostname.as_deref()),
        Some("db-0")
    );
    make_ready(&pods).await;
    let second = wait_owned(&pods, &uid, 2).await;
    assert!(second.iter().any(|p| p.name_any() == "db-1"));
    make_ready(&pods).await;
    let ready = eventually(WAIT, || async {
        let s = sets
            .get("db")
            .await
            .expect("get")
            .status
            .unwrap_or_default();
        s.ready_replicas == Some(2) && s.current_revision.is_some()
    })
    .await;
    assert!(ready, "statefulset status");
    sets.delete("db", &DeleteParams::default())
        .await
        .expect("delete");
    let gone = eventually(WAIT, || async { owned_by(&pods, &uid).await.is_empty() }).await;
    assert!(gone, "pods of a deleted statefulset stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_pods_until_they_succeed() {
    let (_sim, jobs, pods) = start_with::<Job>().await;
    let job = create_pi_job(&jobs).await;
    let uid = job.uid().expect("uid");
    let pod = wait_owned(&pods, &uid, 1).await.remove(0);
    assert!(pod.name_any().starts_with("pi-"));
    assert_eq!(pod.labels()["batch.kubernetes.io/job-name"], "pi");
    // Play the kubelet of a container that exits 0.
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .expect("pod status");
    let complete = eventually(WAIT, || async {
        let s = jobs
            .get("pi")
            .await
            .expect("get")
            .status
            .unwrap_or_default();
        s.succeeded == Some(1)
            && s.completion_time.is_some()
            && s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Complete" && c.status == "True")
    })
    .await;
    assert!(complete, "{:?}", jobs.get("pi").await.expect("get").status);
    assert_eq!(
        owned_by(&pods, &uid).await.len(),
        1,
        "no pod after completion"
    );
}
