//! The Job controller's decision (kube-controller-manager's `pkg/controller/job`, simplified to `NonIndexed`
//! Jobs): from a Job and its pods, how many pods to start, which to stop, and its status. Pure: no IO, time is a
//! parameter.
//!
//! A pod counts as succeeded or failed by its phase (`Succeeded`/`Failed`, which only a kubelet that runs
//! containers writes: with kube-sim's simulated kubelets pods stay Running, so a Job stays active until a test
//! sets a phase). The Job is complete when `completions` pods succeeded (`SuccessCriteriaMet`, then `Complete`),
//! failed when more than `backoffLimit` pods failed (`FailureTarget`, then `Failed`, reason
//! `BackoffLimitExceeded`); either stops its active pods. `suspend` stops them too. Not done: Indexed
//! completion, pod failure and success policies, `activeDeadlineSeconds`, the tracking finalizer.

use super::PodPlan;
use crate::meta::str_at;
use serde_json::{Value, json};

use super::replica_set::pod_ready;

fn has_condition(job: &Value, type_: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == type_ && c["status"] == "True")
        })
}

fn condition(type_: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": type_, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
        "reason": reason, "message": message})
}

/// Decide for `job` given its pods (`pods`, none being deleted) at time `now` (RFC 3339).
pub fn plan(job: &Value, pods: &[&Value], now: &str) -> PodPlan {
    let phase = |p: &Value| str_at(p, "/status/phase").to_string();
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count();
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count();
    let active: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| !matches!(phase(p).as_str(), "Succeeded" | "Failed"))
        .collect();
    let spec_int = |k: &str| job.pointer(&format!("/spec/{k}")).and_then(Value::as_i64);
    let parallelism = usize::try_from(spec_int("parallelism").unwrap_or(1)).unwrap_or(0);
    let completions = spec_int("completions").and_then(|c| usize::try_from(c).ok());
    let backoff = usize::try_from(spec_int("backoffLimit").unwrap_or(6)).unwrap_or(0);
    let suspended = job.pointer("/spec/suspend") == Some(&json!(true));
    let mut status = job
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let finished = has_condition(job, "Complete") || has_condition(job, "Failed");
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    let mut stop_all = suspended || finished;
    if !finished && complete {
        conditions.push(condition(
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now,
        ));
        conditions.push(condition(
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now,
        ));
        status.insert("completionTime".into(), json!(now));
        stop_all = true;
    } else if !finished && failed > backoff {
        let message = "Job has reached the specified backoff limit";
        conditions.push(condition(
            "FailureTarget",
            "BackoffLimitExceeded",
            message,
            now,
        ));
        conditions.push(condition("Failed", "BackoffLimitExceeded", message, now));
        stop_all = true;
    }
    let (create, delete) = if stop_all {
        let names = active
            .iter()
            .map(|p| str_at(p, "/metadata/name").to_string())
            .collect();
        (0, names)
    } else {
        let remaining = completions.map_or(parallelism, |c| c.saturating_sub(succeeded));
        let want = parallelism.min(remaining);
        (want.saturating_sub(active.len()), Vec::new())
    };
    if !suspended && !status.contains_key("startTime") {
        status.insert("startTime".into(), json!(now));
    }
    let still_active = if stop_all { 0 } else { active.len() + create };
    for (k, v) in [
        ("active", still_active),
        ("succeeded", succeeded),
        ("failed", failed),
    ] {
        if v == 0 {
            status.remove(k);
        } else {
            status.insert(k.into(), json!(v));
        }
    }
    let ready = if stop_all {
        0
    } else {
        active.iter().filter(|p| pod_ready(p)).count()
    };
    status.insert("ready".into(), json!(ready));
    status.insert("terminating".into(), json!(0));
    status.insert("uncountedTerminatedPods".into(), json!({}));
    if conditions.is_empty() {
        status.remove("conditions");
    } else {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    PodPlan {
        create: vec![pod_from_template(job); create],
        delete,
        status: Value::Object(status),
    }
}

/// A pod of the Job's template: `generateName` `<job>-`, the template's labels (the generated
/// `batch.kubernetes.io/controller-uid` and `job-name` among them), owned by the Job as its controller.
pub fn pod_from_template(job: &Value) -> Value {
    let mut pod = super::replica_set::pod_from_template(job);
    pod["metadata"]["ownerReferences"] = json!([super::controller_ref(job, "batch/v1", "Job")]);
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(completions: i64, parallelism: i64) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "ns", "uid": "j-uid"},
            "spec": {"completions": completions, "parallelism": parallelism, "backoffLimit": 1,
                "template": {"metadata": {"labels": {"batch.kubernetes.io/job-name": "pi"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}}}})
    }

    fn pod(name: &str, phase: &str) -> Value {
        json!({"metadata": {"name": name}, "status": {"phase": phase}})
    }

    #[test]
    fn starts_parallelism_pods_and_counts_them() {
        let p = plan(&job(3, 2), &[], "t0");
        assert_eq!(p.create.len(), 2);
        assert_eq!(p.status["startTime"], "t0");
        assert_eq!(p.status["active"], 2);
        assert_eq!(p.status["ready"], 0);
        let (a, b) = (pod("a", "Succeeded"), pod("b", "Running"));
        let p = plan(&job(3, 2), &[&a, &b], "t1");
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.status["succeeded"], 1);
    }

    #[test]
    fn completes_and_fails() {
        let (a, b) = (pod("a", "Succeeded"), pod("b", "Running"));
        let done = plan(&job(1, 2), &[&a, &b], "t2");
        assert_eq!(done.delete, ["b"]);
        assert_eq!(done.status["completionTime"], "t2");
        let types: Vec<&Value> = done.status["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .map(|c| &c["type"])
            .collect();
        assert_eq!(types, [&json!("SuccessCriteriaMet"), &json!("Complete")]);
        assert!(done.status.get("active").is_none());
        let (f1, f2) = (pod("f1", "Failed"), pod("f2", "Failed"));
        let failed = plan(&job(1, 1), &[&f1, &f2], "t3");
        assert!(failed.create.is_empty());
        assert_eq!(
            failed.status["conditions"][1]["reason"],
            "BackoffLimitExceeded"
        );
    }

    #[test]
    fn pods_are_owned_by_the_job() {
        let p = pod_from_template(&job(1, 1));
        assert_eq!(p["metadata"]["generateName"], "pi-");
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["apiVersion"],
            "batch/v1"
        );
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "pi"
        );
    }
}
