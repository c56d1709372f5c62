//! The kube-apiserver printers of the workload kinds (`pkg/printers/internalversion`: `printDeployment`,
//! `printReplicaSet`, `printStatefulSet`, `printDaemonSet`, `printJob`, `printCronJob`): their column sets and
//! cells, wide columns (`Containers`, `Images`, `Selector`) at priority 1.

use jiff::Timestamp;
use kube_sim_machinery::labels::LabelSelector;
use serde_json::Value;

use crate::duration::{human_duration_since, parse_time, since};
use crate::table::{Builtin, CREATION_TIMESTAMP_DESCRIPTION, Column};

/// One cell of a workload printer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkloadCell {
    /// `ready/desired` (Deployment, StatefulSet).
    ReadyOfDesired,
    /// An integer at a status or spec path.
    Count(&'static [&'static str]),
    /// The template's container names.
    Containers,
    /// The template's images.
    Images,
    /// The selector as a label-selector string.
    Selector,
    /// A DaemonSet's template node selector.
    NodeSelector,
    /// A Job's status word.
    JobStatus,
    /// A Job's `succeeded/completions`.
    JobCompletions,
    /// A Job's run time.
    JobDuration,
    /// A CronJob's schedule.
    CronSchedule,
    /// A CronJob's time zone.
    CronTimeZone,
    /// A CronJob's suspend flag.
    CronSuspend,
    /// A CronJob's active jobs.
    CronActive,
    /// A CronJob's last schedule time.
    CronLastSchedule,
}

const READY_DESCRIPTION: &str = "Number of the pod with ready state";
const CONTAINERS_DESCRIPTION: &str = "Names of each container in the template.";
const IMAGES_DESCRIPTION: &str = "Images referenced by each container in the template.";
const SELECTOR_DESCRIPTION: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";

/// The printer columns of a workload kind, or `None` for other kinds.
#[must_use]
pub fn columns(kind: &str) -> Option<Vec<Column>> {
    use WorkloadCell as W;
    let c = |name: &str, type_: &str, description: &str, priority: i32, cell: WorkloadCell| {
        Column::builtin(name, type_, description, priority, Builtin::Workload(cell))
    };
    let age = || {
        Column::builtin(
            "Age",
            "string",
            CREATION_TIMESTAMP_DESCRIPTION,
            0,
            Builtin::Age,
        )
    };
    let wide = |selector: bool| {
        let mut v = vec![
            c(
                "Containers",
                "string",
                CONTAINERS_DESCRIPTION,
                1,
                W::Containers,
            ),
            c("Images", "string", IMAGES_DESCRIPTION, 1, W::Images),
        ];
        if selector {
            v.push(c(
                "Selector",
                "string",
                SELECTOR_DESCRIPTION,
                1,
                W::Selector,
            ));
        }
        v
    };
    let mut cols = vec![Column::name_column()];
    match kind {
        "Deployment" => {
            cols.extend([
                c("Ready", "string", READY_DESCRIPTION, 0, W::ReadyOfDesired),
                c("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0, W::Count(&["status", "updatedReplicas"])),
                c("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0, W::Count(&["status", "availableReplicas"])),
                age(),
            ]);
            cols.extend(wide(true));
        }
        "ReplicaSet" => {
            cols.extend([
                c("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller", 0, W::Count(&["spec", "replicas"])),
                c("Current", "integer", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller", 0, W::Count(&["status", "replicas"])),
                c("Ready", "integer", "The number of ready replicas for this replica set.", 0, W::Count(&["status", "readyReplicas"])),
                age(),
            ]);
            cols.extend(wide(true));
        }
        "StatefulSet" => {
            cols.extend([
                c("Ready", "string", READY_DESCRIPTION, 0, W::ReadyOfDesired),
                age(),
            ]);
            cols.extend(wide(false));
        }
        "DaemonSet" => {
            cols.extend([
                c("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/", 0, W::Count(&["status", "desiredNumberScheduled"])),
                c("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/", 0, W::Count(&["status", "currentNumberScheduled"])),
                c("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.", 0, W::Count(&["status", "numberReady"])),
                c("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod", 0, W::Count(&["status", "updatedNumberScheduled"])),
                c("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)", 0, W::Count(&["status", "numberAvailable"])),
                c("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/", 0, W::NodeSelector),
                age(),
            ]);
            cols.extend(wide(true));
        }
        "Job" => {
            cols.extend([
                c("Status", "string", "Status of the job.", 0, W::JobStatus),
                c("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.", 0, W::JobCompletions),
                c("Duration", "string", "Time required to complete the job.", 0, W::JobDuration),
                age(),
            ]);
            cols.extend(wide(true));
        }
        "CronJob" => {
            cols.extend([
                c("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.", 0, W::CronSchedule),
                c("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process.", 0, W::CronTimeZone),
                c("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.", 0, W::CronSuspend),
                c("Active", "integer", "A list of pointers to currently running jobs.", 0, W::CronActive),
                c("Last Schedule", "string", "Information when was the last time the job was successfully scheduled.", 0, W::CronLastSchedule),
                age(),
            ]);
            cols.extend(wide(true));
        }
        _ => return None,
    }
    Some(cols)
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

fn int_at(v: &Value, path: &[&str]) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or_default()
}

/// The pod template of a workload object (a CronJob's is under its job template).
fn template(obj: &Value) -> Option<&Value> {
    if str_at(obj, &["kind"]) == "CronJob" {
        at(obj, &["spec", "jobTemplate", "spec", "template"])
    } else {
        at(obj, &["spec", "template"])
    }
}

fn selector(obj: &Value) -> Option<&Value> {
    if str_at(obj, &["kind"]) == "CronJob" {
        at(obj, &["spec", "jobTemplate", "spec", "selector"])
    } else {
        at(obj, &["spec", "selector"])
    }
}

fn containers_field(obj: &Value, field: &str) -> String {
    template(obj)
        .and_then(|t| at(t, &["spec", "containers"]))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| str_at(c, &[field]))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn has_condition(obj: &Value, type_: &str) -> bool {
    at(obj, &["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| str_at(c, &["type"]) == type_ && str_at(c, &["status"]) == "True")
        })
}

fn time_at(obj: &Value, path: &[&str]) -> Option<Timestamp> {
    at(obj, path)
        .and_then(Value::as_str)
        .and_then(|s| parse_time(s).ok().flatten())
}

/// The cell of a workload column.
#[must_use]
pub fn cell(w: WorkloadCell, obj: &Value, now: Timestamp) -> Value {
    use WorkloadCell as W;
    match w {
        W::ReadyOfDesired => Value::String(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            int_at(obj, &["spec", "replicas"])
        )),
        W::Count(path) => Value::from(int_at(obj, path)),
        W::Containers => Value::String(containers_field(obj, "name")),
        W::Images => Value::String(containers_field(obj, "image")),
        W::Selector => Value::String(
            selector(obj)
                .and_then(|s| LabelSelector::from_json(s).ok())
                .map(|s| s.to_string())
                .unwrap_or_default(),
        ),
        W::NodeSelector => {
            let pairs: Vec<String> = template(obj)
                .and_then(|t| at(t, &["spec", "nodeSelector"]))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            Value::String(if pairs.is_empty() {
                "<none>".to_owned()
            } else {
                pairs.join(",")
            })
        }
        W::JobStatus => Value::String(job_status(obj).to_owned()),
        W::JobCompletions => Value::String(job_completions(obj)),
        W::JobDuration => Value::String(
            match (
                time_at(obj, &["status", "startTime"]),
                time_at(obj, &["status", "completionTime"]),
            ) {
                (None, _) => String::new(),
                (Some(start), None) => human_duration_since(start, now),
                (Some(start), Some(end)) => human_duration_since(start, end),
            },
        ),
        W::CronSchedule => Value::String(str_at(obj, &["spec", "schedule"]).to_owned()),
        W::CronTimeZone => Value::String(
            match str_at(obj, &["spec", "timeZone"]) {
                "" => "<none>",
                tz => tz,
            }
            .to_owned(),
        ),
        W::CronSuspend => Value::String(
            match at(obj, &["spec", "suspend"]).and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            }
            .to_owned(),
        ),
        W::CronActive => Value::from(
            at(obj, &["status", "active"])
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
        ),
        W::CronLastSchedule => match at(obj, &["status", "lastScheduleTime"]) {
            None | Some(Value::Null) => Value::String("<none>".to_owned()),
            t => Value::String(since(t, now)),
        },
    }
}

fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn job_completions(job: &Value) -> String {
    let succeeded = int_at(job, &["status", "succeeded"]);
    match (
        at(job, &["spec", "completions"]).and_then(Value::as_i64),
        at(job, &["spec", "parallelism"]).and_then(Value::as_i64),
    ) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, Some(p)) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cells(kind: &str, obj: &Value) -> Vec<Value> {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().expect("time");
        columns(kind)
            .expect("workload")
            .iter()
            .map(|c| match &c.source {
                crate::table::CellSource::Builtin(Builtin::Workload(w)) => cell(*w, obj, now),
                crate::table::CellSource::Builtin(Builtin::Age) => {
                    Value::String(since(at(obj, &["metadata", "creationTimestamp"]), now))
                }
                _ => Value::String(str_at(obj, &["metadata", "name"]).to_owned()),
            })
            .collect()
    }

    #[test]
    fn deployment_row() {
        let d = json!({"kind": "Deployment", "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let names: Vec<String> = columns("Deployment")
            .expect("cols")
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            cells("Deployment", &d),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("10m"),
                json!("a,b"),
                json!("nginx,busybox"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn job_and_cronjob_rows() {
        let job = json!({"kind": "Job", "metadata": {"name": "pi"}, "spec": {"completions": 1, "parallelism": 1},
            "status": {"startTime": "2026-01-01T00:00:00Z"}});
        assert_eq!(job_status(&job), "Running");
        assert_eq!(job_completions(&job), "0/1");
        let parallel = json!({"spec": {"parallelism": 3}});
        assert_eq!(job_completions(&parallel), "0/1 of 3");
        let cj = json!({"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "suspend": false}});
        let row = cells("CronJob", &cj);
        assert_eq!(
            row[1..6],
            [
                json!("* * * * *"),
                json!("<none>"),
                json!("False"),
                json!(0),
                json!("<none>")
            ]
        );
        assert!(columns("Pod").is_none());
    }
}
