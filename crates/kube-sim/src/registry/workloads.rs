//! `apps/v1` (Deployment, ReplicaSet, StatefulSet, DaemonSet) and `batch/v1` (Job, CronJob): the apiserver's
//! decoding defaults (`pkg/apis/apps/v1/defaults.go`, `pkg/apis/batch/v1/defaults.go`, and the pod template's
//! `SetDefaults_PodSpec`), the Job strategy's selector generation, and the validation that matters to clients
//! (`pkg/apis/apps/validation`, `pkg/apis/batch/validation`): a selector that must match the template's labels,
//! an immutable `spec.selector`, the restart policies a workload's pods may have, the template's containers.
//!
//! Pure functions on JSON objects; the registry calls them from its create and update strategies.

use serde_json::{Map, Value, json};

use kube_sim_machinery::gofmt::go_quote;
use kube_sim_machinery::labels::LabelSelector;

use super::validate::{invalid, required};
use crate::error::Cause;

/// `batch.kubernetes.io/controller-uid`, the label the Job strategy selects its pods by.
pub const JOB_CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// `batch.kubernetes.io/job-name`, the label naming a Job's pods' Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The legacy labels the Job strategy still writes beside the prefixed ones.
const LEGACY_JOB_LABELS: [&str; 2] = ["controller-uid", "job-name"];

/// JSON pointer of a workload's pod template.
pub fn template_pointer(resource: &str) -> &'static str {
    if resource == "cronjobs" {
        "/spec/jobTemplate/spec/template"
    } else {
        "/spec/template"
    }
}

/// The field path of a workload's pod template, as causes name it.
fn template_path(resource: &str) -> &'static str {
    if resource == "cronjobs" {
        "spec.jobTemplate.spec.template"
    } else {
        "spec.template"
    }
}

fn set_default(obj: &mut Value, key: &str, value: Value) {
    if obj.is_object() && obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

/// Ensure `obj[key]` is an object and return it (no-op when `obj` is not an object).
fn child<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    if !obj.is_object() {
        return obj;
    }
    if !obj.get(key).is_some_and(Value::is_object) {
        obj[key] = json!({});
    }
    &mut obj[key]
}

/// `SetDefaults_PodSpec` and the containers' defaults of a pod template (not the pod-level defaults that
/// admission adds to pods: service account, priority, enableServiceLinks).
pub fn pod_template_defaults(template: &mut Value) {
    if !template.is_object() {
        return;
    }
    let spec = child(template, "spec");
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
    ] {
        set_default(spec, k, v);
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter(|c| c.is_object()) {
                super::defaults::container_decode_defaults(c);
            }
        }
    }
    super::defaults::pod_spec_defaults(spec);
}

/// The decoding defaults of a workload `resource` (applied on create and to every update's object).
pub fn defaults(resource: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    let spec = child(obj, "spec");
    match resource {
        "deployments" => {
            set_default(spec, "replicas", json!(1));
            let strategy = child(spec, "strategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = child(strategy, "rollingUpdate");
                set_default(rolling, "maxUnavailable", json!("25%"));
                set_default(rolling, "maxSurge", json!("25%"));
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
        }
        "replicasets" => set_default(spec, "replicas", json!(1)),
        "statefulsets" => {
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            let strategy = child(spec, "updateStrategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                set_default(child(strategy, "rollingUpdate"), "partition", json!(0));
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
            set_default(retention, "whenDeleted", json!("Retain"));
            set_default(retention, "whenScaled", json!("Retain"));
        }
        "daemonsets" => {
            let strategy = child(spec, "updateStrategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = child(strategy, "rollingUpdate");
                set_default(rolling, "maxUnavailable", json!(1));
                set_default(rolling, "maxSurge", json!(0));
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
        }
        "jobs" => job_defaults(obj),
        "cronjobs" => {
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
        }
        _ => return,
    }
    if let Some(template) = obj.pointer_mut(template_pointer(resource)) {
        pod_template_defaults(template);
    }
}

/// `SetDefaults_Job`.
fn job_defaults(job: &mut Value) {
    let spec = child(job, "spec");
    let unset = |s: &Value, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec["completions"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    let backoff = if unset(spec, "backoffLimitPerIndex") {
        json!(6)
    } else {
        json!(i32::MAX)
    };
    set_default(spec, "backoffLimit", backoff);
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "manualSelector", json!(false));
    let replacement = if unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    copy_template_labels(job);
}

/// A Job without labels takes its template's labels (`SetDefaults_Job`).
fn copy_template_labels(job: &mut Value) {
    let has_labels = job
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .is_some_and(|l| !l.is_empty());
    if has_labels {
        return;
    }
    if let Some(labels) = job
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
    {
        child(job, "metadata")["labels"] = labels;
    }
}

/// What the create strategy adds once the object has its name and uid: a Job's generated selector and its
/// pods' labels (`generateSelector`), unless `manualSelector` is true.
pub fn on_create(resource: &str, obj: &mut Value) {
    if resource != "jobs" || obj.pointer("/spec/manualSelector") == Some(&json!(true)) {
        return;
    }
    let uid = crate::meta::meta_str(obj, "uid").to_string();
    let name = crate::meta::meta_str(obj, "name").to_string();
    if obj.pointer("/spec/selector").is_none_or(Value::is_null) {
        obj["spec"]["selector"] = json!({"matchLabels": {JOB_CONTROLLER_UID_LABEL: uid}});
    }
    let template = child(&mut obj["spec"], "template");
    let labels = child(child(template, "metadata"), "labels");
    for (k, v) in [
        (JOB_CONTROLLER_UID_LABEL, &uid),
        (JOB_NAME_LABEL, &name),
        (LEGACY_JOB_LABELS[0], &uid),
        (LEGACY_JOB_LABELS[1], &name),
    ] {
        labels[k] = json!(v);
    }
    copy_template_labels(obj);
}

// === validation ===

/// A label selector as Go's `json.Marshal` of a `*metav1.LabelSelector` prints it in a cause (`matchLabels`
/// before `matchExpressions`, map keys sorted, `null` when absent).
pub fn selector_go_json(selector: Option<&Value>) -> String {
    let Some(Value::Object(sel)) = selector else {
        return "null".into();
    };
    let mut parts = Vec::new();
    for key in ["matchLabels", "matchExpressions"] {
        if let Some(v) = sel.get(key).filter(|v| !is_empty(v)) {
            parts.push(format!(
                "{}:{}",
                go_quote(key),
                kube_sim_machinery::gofmt::json_marshal(v)
            ));
        }
    }
    format!("{{{}}}", parts.join(","))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn labels_of(template: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    template
        .and_then(|t| t.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Causes for a new workload (after defaults).
pub fn create_causes(resource: &str, obj: &Value) -> Vec<Cause> {
    let kind_word = match resource {
        "deployments" => "deployment",
        "replicasets" => "replicaset",
        "statefulsets" => "statefulset",
        "daemonsets" => "daemonset",
        "jobs" => "job",
        _ => "",
    };
    let mut causes = Vec::new();
    let selector = obj.pointer("/spec/selector").filter(|s| !s.is_null());
    let tpath = template_path(resource);
    if resource == "cronjobs" {
        if crate::meta::str_at(obj, "/spec/schedule").is_empty() {
            causes.push(required("spec.schedule", ""));
        }
    } else {
        match selector {
            None => causes.push(required("spec.selector", "")),
            Some(sel) => {
                let empty = ["matchLabels", "matchExpressions"]
                    .iter()
                    .all(|k| sel.get(*k).is_none_or(is_empty));
                if empty && resource != "jobs" {
                    causes.push(invalid(
                        "spec.selector",
                        &selector_go_json(Some(sel)),
                        &format!("empty selector is invalid for {kind_word}"),
                    ));
                }
            }
        }
        if let Some(sel) = selector {
            match LabelSelector::from_json(sel) {
                Err(_) => causes.push(invalid(
                    "spec.selector",
                    &selector_go_json(Some(sel)),
                    "invalid label selector",
                )),
                Ok(s) => {
                    let template = obj.pointer(template_pointer(resource));
                    let labels = labels_of(template);
                    let has_requirements = ["matchLabels", "matchExpressions"]
                        .iter()
                        .any(|k| sel.get(*k).is_some_and(|v| !is_empty(v)));
                    if has_requirements && !s.matches_map(&labels) {
                        let shown = template
                            .and_then(|t| t.pointer("/metadata/labels"))
                            .filter(|l| !l.is_null())
                            .map_or("null".to_string(), kube_sim_machinery::gofmt::json_marshal);
                        causes.push(invalid(
                            &format!("{tpath}.metadata.labels"),
                            &shown,
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
            }
        }
        if resource == "jobs"
            && obj.pointer("/spec/manualSelector") != Some(&json!(true))
            && let Some(sel) = selector
        {
            let uid = crate::meta::meta_str(obj, "uid");
            let generated = sel.pointer(&format!(
                "/matchLabels/{}",
                JOB_CONTROLLER_UID_LABEL.replace('/', "~1")
            ));
            if generated.and_then(Value::as_str) != Some(uid) {
                causes.push(invalid(
                    "spec.selector",
                    &selector_go_json(Some(sel)),
                    "`selector` not auto-generated",
                ));
            }
        }
    }
    match obj.pointer(template_pointer(resource)) {
        None | Some(Value::Null) => causes.push(required(tpath, "")),
        Some(template) => {
            causes.extend(template_causes(template, tpath));
            let restart = crate::meta::str_at(template, "/spec/restartPolicy");
            let allowed: &[&str] = if matches!(resource, "jobs" | "cronjobs") {
                &["OnFailure", "Never"]
            } else {
                &["Always"]
            };
            if !allowed.contains(&restart) {
                let list: Vec<String> = allowed.iter().map(|a| go_quote(a)).collect();
                causes.push(Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "{tpath}.spec.restartPolicy: Unsupported value: {}: supported values: {}",
                        go_quote(restart),
                        list.join(", ")
                    ),
                    field: format!("{tpath}.spec.restartPolicy"),
                });
            }
        }
    }
    if let Some(replicas) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
        && replicas < 0
    {
        causes.push(invalid(
            "spec.replicas",
            &replicas.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    causes
}

/// The pod checks of a template's spec (container names and images), with the template's field path.
fn template_causes(template: &Value, tpath: &str) -> Vec<Cause> {
    let pod = json!({"spec": template.get("spec").cloned().unwrap_or(Value::Null)});
    if !pod["spec"].is_object() {
        return vec![required(&format!("{tpath}.spec"), "")];
    }
    super::validate::pod_causes(&pod)
        .into_iter()
        .map(|c| Cause {
            reason: c.reason,
            message: format!("{tpath}.{}", c.message),
            field: format!("{tpath}.{}", c.field),
        })
        .collect()
}

/// Causes for an update (after defaults): the create checks are run by the caller; here the immutable
/// `spec.selector` (apps/v1 and batch/v1 alike).
pub fn update_causes(cur: &Value, next: &Value) -> Vec<Cause> {
    let kind = crate::meta::str_at(cur, "/kind");
    if kind == "CronJob" {
        return Vec::new();
    }
    let old = cur.pointer("/spec/selector");
    let new = next.pointer("/spec/selector");
    if normalized(old) != normalized(new) {
        return vec![invalid(
            "spec.selector",
            &selector_go_json(new),
            "field is immutable",
        )];
    }
    Vec::new()
}

/// A selector without its empty parts, so `{matchLabels: {...}, matchExpressions: []}` equals its shorter form.
fn normalized(sel: Option<&Value>) -> Option<Map<String, Value>> {
    let map = sel?.as_object()?;
    Some(
        map.iter()
            .filter(|(_, v)| !is_empty(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(selector: Value, labels: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": selector, "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
    }

    #[test]
    fn deployment_defaults_as_the_apiserver_writes_them() {
        let mut d = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        defaults("deployments", &mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            pod["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert!(pod.get("serviceAccountName").is_none());
        // Recreate gets no rollingUpdate.
        let mut r = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        r["spec"]["strategy"] = json!({"type": "Recreate"});
        defaults("deployments", &mut r);
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
        assert!(create_causes("deployments", &d).is_empty());
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let mut job = json!({"metadata": {"name": "pi", "uid": "u-1"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}}}});
        defaults("jobs", &mut job);
        on_create("jobs", &mut job);
        let spec = &job["spec"];
        assert_eq!(
            (
                &spec["completions"],
                &spec["parallelism"],
                &spec["backoffLimit"]
            ),
            (&json!(1), &json!(1), &json!(6))
        );
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {JOB_CONTROLLER_UID_LABEL: "u-1"}})
        );
        let labels = &spec["template"]["metadata"]["labels"];
        assert_eq!(labels[JOB_NAME_LABEL], "pi");
        assert_eq!(labels["controller-uid"], "u-1");
        assert_eq!(job["metadata"]["labels"][JOB_CONTROLLER_UID_LABEL], "u-1");
        assert!(create_causes("jobs", &job).is_empty());
        // Parallelism alone leaves completions unset.
        let mut p = json!({"spec": {"parallelism": 3}});
        defaults("jobs", &mut p);
        assert!(p["spec"].get("completions").is_none());
        // A Job's pods may not restart Always.
        let mut bad = job.clone();
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(
            create_causes("jobs", &bad)[0].message,
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        );
    }

    #[test]
    fn cronjob_defaults() {
        let mut cj = json!({"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        defaults("cronjobs", &mut cj);
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["suspend"], false);
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
        assert!(
            cj["spec"]["jobTemplate"]["spec"]
                .get("backoffLimit")
                .is_none()
        );
        assert!(create_causes("cronjobs", &cj).is_empty());
        cj["spec"]["schedule"] = json!("");
        assert_eq!(
            create_causes("cronjobs", &cj)[0].message,
            "spec.schedule: Required value"
        );
    }

    #[test]
    fn selector_must_match_template_labels() {
        let mut d = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "other"}),
        );
        defaults("deployments", &mut d);
        let causes = create_causes("deployments", &d);
        assert_eq!(causes.len(), 1);
        assert_eq!(
            causes[0].message,
            "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
        );
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        let mut none = deployment(Value::Null, json!({"app": "web"}));
        defaults("deployments", &mut none);
        assert_eq!(
            create_causes("deployments", &none)[0].message,
            "spec.selector: Required value"
        );
        let mut empty = deployment(json!({}), json!({"app": "web"}));
        defaults("replicasets", &mut empty);
        assert_eq!(
            create_causes("replicasets", &empty)[0].message,
            "spec.selector: Invalid value: {}: empty selector is invalid for replicaset"
        );
    }

    #[test]
    fn template_containers_are_validated_with_their_path() {
        let mut d = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        defaults("deployments", &mut d);
        let causes = create_causes("deployments", &d);
        assert_eq!(
            causes[0].message,
            "spec.template.spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn selector_is_immutable() {
        let cur = deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        let mut next = cur.clone();
        assert!(update_causes(&cur, &next).is_empty());
        next["spec"]["selector"] = json!({"matchLabels": {"app": "web"}, "matchExpressions": []});
        assert!(update_causes(&cur, &next).is_empty());
        next["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
        let causes = update_causes(&cur, &next);
        assert_eq!(
            causes[0].message,
            "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web2\"}}: field is immutable"
        );
    }
}
