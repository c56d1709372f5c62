//! Server-side apply: ownership tracking, conflicts, force, removal of fields a manager stopped
//! applying.

use kube_sim_machinery::patch::{
    ApplyError, CoreMergeKeys, ReplaceAllLists, applied_fields, server_side_apply,
};
use serde_json::{Value, json};

const T0: &str = "2024-01-01T00:00:00Z";
const T1: &str = "2024-01-01T00:01:00Z";

fn keys() -> CoreMergeKeys {
    CoreMergeKeys::for_kind("Deployment")
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    server_side_apply(live, applied, manager, force, now, &keys())
}

fn ok(live: Option<&Value>, applied: &Value, manager: &str, force: bool, now: &str) -> Value {
    apply(live, applied, manager, force, now).unwrap_or_else(|e| panic!("{e}"))
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_string(),
                        e["operation"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

#[test]
fn create_records_fields_v1() {
    let applied = deployment(2, "nginx:1");
    let out = ok(None, &applied, "kubectl", false, T0);
    assert_eq!(without_managed_fields(&out), applied);
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {"f:matchLabels": {"f:app": {}}},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            }
        }])
    );
}

#[test]
fn reapply_is_idempotent_and_updates_time() {
    let applied = deployment(2, "nginx:1");
    let first = ok(None, &applied, "kubectl", false, T0);
    let second = ok(Some(&first), &applied, "kubectl", false, T1);
    assert_eq!(
        without_managed_fields(&first),
        without_managed_fields(&second)
    );
    assert_eq!(second["metadata"]["managedFields"][0]["time"], json!(T1));
    assert_eq!(managers(&second), vec![("kubectl".into(), "Apply".into())]);
}

#[test]
fn live_only_fields_are_preserved() {
    let mut live = ok(None, &deployment(2, "nginx:1"), "kubectl", false, T0);
    live["status"] = json!({"replicas": 2});
    live["metadata"]["uid"] = json!("u-1");
    live["metadata"]["resourceVersion"] = json!("7");
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let out = ok(Some(&live), &deployment(3, "nginx:1"), "kubectl", false, T1);
    assert_eq!(out["status"], json!({"replicas": 2}));
    assert_eq!(out["metadata"]["uid"], json!("u-1"));
    assert_eq!(out["metadata"]["resourceVersion"], json!("7"));
    assert_eq!(out["spec"]["replicas"], json!(3));
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        json!("IfNotPresent")
    );
}

#[test]
fn dropped_fields_are_removed() {
    let mut applied = deployment(2, "nginx:1");
    applied["metadata"]["labels"]["tier"] = json!("front");
    applied["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
    applied["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
    if let Some(c) = applied["spec"]["template"]["spec"]["containers"].as_array_mut() {
        c.push(json!({"name": "sidecar", "image": "busybox"}));
    }
    let live = ok(None, &applied, "kubectl", false, T0);

    let mut next = deployment(2, "nginx:1");
    next["metadata"]["finalizers"] = json!(["example.com/a"]);
    next["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "B", "value": "2"}]);
    let out = ok(Some(&live), &next, "kubectl", false, T1);

    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(out["metadata"]["finalizers"], json!(["example.com/a"]));
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    assert_eq!(containers[0]["env"], json!([{"name": "B", "value": "2"}]));

    // removing every env var prunes the emptied list
    let out = ok(Some(&out), &deployment(2, "nginx:1"), "kubectl", false, T1);
    assert!(
        out["spec"]["template"]["spec"]["containers"][0]
            .get("env")
            .is_none()
    );
    assert!(out["metadata"].get("finalizers").is_none());
}

#[test]
fn conflict_with_another_applier() {
    let live = ok(None, &deployment(2, "nginx:1"), "alice", false, T0);
    let err = apply(Some(&live), &deployment(5, "nginx:1"), "bob", false, T1)
        .err()
        .unwrap_or_else(|| panic!("expected a conflict"));
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
    );
    match err {
        ApplyError::Conflict(c) => {
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].manager, "alice");
            assert_eq!(c[0].field, ".spec.replicas");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn multiple_conflicts_message() {
    let live = ok(None, &deployment(2, "nginx:1"), "alice", false, T0);
    let err = apply(Some(&live), &deployment(5, "nginx:2"), "bob", false, T1)
        .err()
        .unwrap_or_else(|| panic!("expected a conflict"));
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
}

#[test]
fn same_value_is_shared_not_conflicting() {
    let live = ok(None, &deployment(2, "nginx:1"), "alice", false, T0);
    let partial = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2}
    });
    let out = ok(Some(&live), &partial, "bob", false, T1);
    assert_eq!(
        managers(&out),
        vec![
            ("alice".into(), "Apply".into()),
            ("bob".into(), "Apply".into())
        ]
    );
    let bob = applied_fields(&out, "bob").unwrap_or_default();
    assert_eq!(bob.to_fields_v1(), json!({"f:spec": {"f:replicas": {}}}));
    // bob stops applying replicas: alice still owns it, so it stays
    let empty = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let out = ok(Some(&out), &empty, "bob", false, T1);
    assert_eq!(out["spec"]["replicas"], json!(2));
    assert_eq!(managers(&out), vec![("alice".into(), "Apply".into())]);
}

#[test]
fn force_takes_ownership() {
    let live = ok(None, &deployment(2, "nginx:1"), "alice", false, T0);
    let partial = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 5}
    });
    let out = ok(Some(&live), &partial, "hpa", true, T1);
    assert_eq!(out["spec"]["replicas"], json!(5));
    let alice = applied_fields(&out, "alice").unwrap_or_default();
    assert!(
        !alice.to_fields_v1()["f:spec"]
            .as_object()
            .is_some_and(|m| m.contains_key("f:replicas"))
    );
    // alice re-applies without replicas now: the field belongs to hpa and stays
    let mut alice_cfg = deployment(2, "nginx:1");
    if let Some(spec) = alice_cfg["spec"].as_object_mut() {
        spec.remove("replicas");
    }
    let out = ok(Some(&out), &alice_cfg, "alice", false, T1);
    assert_eq!(out["spec"]["replicas"], json!(5));
    // a forced takeover of everything drops the other manager's entry
    let out = ok(Some(&out), &deployment(1, "nginx:9"), "admin", true, T1);
    let names: Vec<String> = managers(&out).into_iter().map(|(m, _)| m).collect();
    assert!(names.contains(&"admin".to_string()));
    assert!(!names.contains(&"hpa".to_string()));
}

#[test]
fn update_managers_are_owners_too() {
    let mut live = ok(None, &deployment(2, "nginx:1"), "alice", false, T0);
    if let Some(mf) = live["metadata"]["managedFields"].as_array_mut() {
        mf.push(json!({
            "manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
            "time": "2024-01-01T00:00:30Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}
        }));
    }
    live["spec"]["replicas"] = json!(3);
    let err = apply(Some(&live), &deployment(2, "nginx:1"), "alice", false, T1)
        .err()
        .unwrap_or_else(|| panic!("expected a conflict"));
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1 at 2024-01-01T00:00:30Z: .spec.replicas"
    );
    let out = ok(Some(&live), &deployment(2, "nginx:1"), "alice", true, T1);
    assert_eq!(out["spec"]["replicas"], json!(2));
    assert_eq!(managers(&out), vec![("alice".into(), "Apply".into())]);
}

#[test]
fn keyed_element_with_foreign_fields_keeps_its_key() {
    let mut applied = deployment(2, "nginx:1");
    if let Some(c) = applied["spec"]["template"]["spec"]["containers"].as_array_mut() {
        c.push(json!({"name": "sidecar", "image": "busybox"}));
    }
    let live = ok(None, &applied, "alice", false, T0);
    let other = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "resources": {"limits": {"cpu": "1"}}}]}}}
    });
    let live = ok(Some(&live), &other, "bob", false, T0);
    // alice drops the sidecar: bob still owns a field inside it
    let out = ok(Some(&live), &deployment(2, "nginx:1"), "alice", false, T1);
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(containers.len(), 2);
    assert_eq!(
        containers[1],
        json!({"name": "sidecar", "resources": {"limits": {"cpu": "1"}}})
    );
}

#[test]
fn atomic_lists_and_custom_resources() {
    let mut applied = deployment(2, "nginx:1");
    applied["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--a", "--b"]);
    let live = ok(None, &applied, "alice", false, T0);
    applied["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--c"]);
    let out = ok(Some(&live), &applied, "alice", false, T1);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["--c"])
    );

    let widget = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"items": [{"name": "a"}, {"name": "b"}], "color": "red"}
    });
    let out = server_side_apply(None, &widget, "ctl", false, T0, &ReplaceAllLists)
        .unwrap_or_else(|e| panic!("{e}"));
    let fields = applied_fields(&out, "ctl").unwrap_or_default();
    assert_eq!(
        fields.to_fields_v1(),
        json!({"f:spec": {"f:color": {}, "f:items": {}}})
    );
    let next = json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"items": [{"name": "c"}]}
    });
    let out = server_side_apply(Some(&out), &next, "ctl", false, T1, &ReplaceAllLists)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out["spec"], json!({"items": [{"name": "c"}]}));
}

#[test]
fn bad_requests() {
    let mut applied = deployment(1, "x");
    applied["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        apply(None, &applied, "a", false, T0).map_err(|e| e.to_string()),
        Err("metadata.managedFields must be nil".to_string())
    );
    assert!(matches!(
        apply(None, &json!([1]), "a", false, T0),
        Err(ApplyError::BadRequest(_))
    ));
    assert!(matches!(
        apply(None, &deployment(1, "x"), "", false, T0),
        Err(ApplyError::BadRequest(_))
    ));
}

#[test]
fn nulls_in_applied_config_are_ignored() {
    let mut applied = deployment(2, "nginx:1");
    applied["spec"]["paused"] = Value::Null;
    let out = ok(None, &applied, "alice", false, T0);
    assert!(out["spec"].get("paused").is_none());
    let fields = applied_fields(&out, "alice").unwrap_or_default();
    assert!(
        !fields.to_fields_v1()["f:spec"]
            .as_object()
            .is_some_and(|m| m.contains_key("f:paused"))
    );
}

#[test]
fn a_map_another_manager_added_to_is_no_conflict() {
    let cm = |labels: Value, data: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": labels, "annotations": {}}, "data": data})
    };
    let keys = CoreMergeKeys::for_kind("ConfigMap");
    let a = cm(json!({"x": "1"}), json!({"x": "1"}));
    let live = server_side_apply(None, &a, "a", false, T0, &keys).unwrap_or_else(|e| panic!("{e}"));
    let mut b = cm(json!({"y": "2"}), json!({"y": "2"}));
    b["metadata"]["annotations"] = json!({"z": "3"});
    let live =
        server_side_apply(Some(&live), &b, "b", false, T0, &keys).unwrap_or_else(|e| panic!("{e}"));
    // `a` applies the same configuration again, its empty `annotations` map included: no conflict, and the
    // keys `b` owns stay.
    let live =
        server_side_apply(Some(&live), &a, "a", false, T1, &keys).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(live["data"], json!({"x": "1", "y": "2"}));
    assert_eq!(live["metadata"]["annotations"], json!({"z": "3"}));
    // Changing a key `b` owns is still a conflict.
    let taken = cm(json!({"x": "1"}), json!({"x": "1", "y": "9"}));
    assert!(matches!(
        server_side_apply(Some(&live), &taken, "a", false, T1, &keys),
        Err(ApplyError::Conflict(_))
    ));
}
