//! Strategic merge patch table tests: cases transcribed from apimachinery's
//! `strategicpatch/patch_test.go` (on its `MergeItem` test type) and kubectl-shaped patches on
//! core kinds.

use kube_sim_machinery::patch::{
    CoreMergeKeys, ListStrategy, MergeKeys, PatchError, strategic_merge_patch,
};
use serde_json::{Value, json};

/// The patch metadata of apimachinery's `MergeItem` test struct.
struct MergeItemKeys;

impl MergeKeys for MergeItemKeys {
    fn list_strategy(&self, path: &str) -> ListStrategy {
        let last = path.rsplit(['.', ']']).next().unwrap_or(path);
        match last {
            "mergingList" | "mergeItemPtr" | "retainKeysMergingList" => {
                ListStrategy::Merge("name".to_string())
            }
            "mergingIntList" => ListStrategy::MergePrimitive,
            _ => ListStrategy::Replace,
        }
    }
}

fn apply(original: Value, patch: Value, keys: &dyn MergeKeys) -> Result<Value, PatchError> {
    strategic_merge_patch(&original, &patch, keys)
}

fn ok(original: Value, patch: Value, keys: &dyn MergeKeys) -> Value {
    apply(original, patch.clone(), keys).unwrap_or_else(|e| panic!("{patch}: {e}"))
}

#[test]
fn upstream_cases() {
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "unique scalars when merging lists",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        ),
        (
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        ),
        (
            "delete all items from merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        ),
        (
            "merge empty merging lists",
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
        ),
        (
            "delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"$patch": "replace"}),
            json!({}),
        ),
        (
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        ),
        (
            "delete all duplicate entries in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        ),
        (
            "retainKeys map merge an empty map",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {}}),
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
        ),
        (
            "retainKeys list can delete a field",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": null}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        ),
        (
            "preserve the order from the patch in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]}),
        ),
        (
            "preserve the order from the patch in a merging list 2",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        ),
        (
            "preserve the order from the patch in a merging int list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1, 2]}),
            json!({"mergingIntList": [3, 1, 2]}),
        ),
        (
            "preserve the order from the patch in a merging int list 2",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
            json!({"mergingIntList": [2, 3, 1]}),
        ),
        (
            "$setElementOrder contains item that is not present in the list to be merged",
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        ),
        (
            "$setElementOrder contains item that is not present in the int list to be merged",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        ),
        (
            "$deleteFromPrimitiveList of nonexistent item",
            json!({"mergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2]}),
        ),
        (
            "$deleteFromPrimitiveList on nonexistent primitive list",
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"foo": ["bar"]}),
        ),
        (
            "$deleteFromPrimitiveList from a list with merge patch strategy",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [2]}),
            json!({"mergingIntList": [1, 3]}),
        ),
        (
            "$deleteFromPrimitiveList from a list without merge patch strategy",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        ),
        (
            "nil patch",
            json!({"name": 1}),
            json!({}),
            json!({"name": 1}),
        ),
        (
            "add field and delete field from map",
            json!({"name": 1, "other": "a"}),
            json!({"name": null, "value": 1}),
            json!({"value": 1, "other": "a"}),
        ),
        (
            "delete field from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1, "other": "a"}}),
            json!({"simpleMap": {"key2": null}}),
            json!({"simpleMap": {"key1": 1, "other": "a"}}),
        ),
        (
            "replace list of scalars",
            json!({"nonMergingIntList": [1, 4]}),
            json!({"nonMergingIntList": [2, 3]}),
            json!({"nonMergingIntList": [2, 3]}),
        ),
        (
            "delete all maps from merging list with conflict",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "other": "b"}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]}),
            json!({"mergingList": []}),
        ),
        (
            "delete all maps from empty merging list",
            json!({"mergingList": []}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]}),
            json!({"mergingList": []}),
        ),
        (
            "defined null values should propagate overwrite current fields",
            json!({"name": "a", "other": "a"}),
            json!({"name": 1, "value": 1, "other": null}),
            json!({"name": 1, "value": 1}),
        ),
        (
            "nested patch merge with empty list",
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                   "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        ),
        (
            "delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "delete all duplicate items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "add and delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 4], "$deleteFromPrimitiveList/mergingIntList": [3], "mergingIntList": [4]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "merge lists of maps",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
        ),
        (
            "retainKeys list element with setElementOrder",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]}),
            json!({"$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                   "retainKeysMergingList": [{"$retainKeys": ["name"], "name": "foo", "value": null}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        ),
        (
            "delete and reorder in one list, reorder in another",
            json!({"mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
                   "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "b"}],
                   "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
                   "mergingList": [{"$patch": "delete", "name": "a"}]}),
            json!({"mergingList": [{"name": "b", "value": "b"}],
                   "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}]}),
        ),
        (
            "retainKeys map clears keys not listed",
            json!({"retainKeysMap": {"name": "foo", "value": "a", "other": "x"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "simpleMap"], "simpleMap": {"k": "v"}}}),
            json!({"retainKeysMap": {"name": "foo", "simpleMap": {"k": "v"}}}),
        ),
        (
            "nested merging lists",
            json!({"mergingList": [{"name": "a", "mergingList": [{"name": "x", "value": 1}]}]}),
            json!({"mergingList": [{"name": "a", "mergingList": [{"name": "x", "value": 2}, {"name": "y"}]}]}),
            json!({"mergingList": [{"name": "a", "mergingList": [{"name": "x", "value": 2}, {"name": "y"}]}]}),
        ),
        (
            "non-merging list of maps is replaced",
            json!({"nonMergingList": [{"name": "a"}, {"name": "b"}]}),
            json!({"nonMergingList": [{"name": "c"}]}),
            json!({"nonMergingList": [{"name": "c"}]}),
        ),
        (
            "explicit $patch: merge on a map",
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": "merge", "b": "2"}}),
            json!({"simpleMap": {"a": "1", "b": "2"}}),
        ),
        (
            "type change replaces",
            json!({"value": {"a": 1}}),
            json!({"value": "x"}),
            json!({"value": "x"}),
        ),
        (
            "new map value has nulls and directives removed",
            json!({}),
            json!({"simpleMap": {"a": "1", "b": null}, "gone": {"$patch": "delete"}}),
            json!({"simpleMap": {"a": "1"}}),
        ),
    ];
    for (desc, original, patch, want) in cases {
        let got = apply(original, patch, &MergeItemKeys).unwrap_or_else(|e| panic!("{desc}: {e}"));
        assert_eq!(got, want, "{desc}");
        // list order matters: compare the serialized arrays too
        assert_eq!(got.to_string(), want.to_string(), "{desc} (order)");
    }
}

#[test]
fn upstream_error_cases() {
    let cases: Vec<(&str, Value, Value, &str, u16)> = vec![
        (
            "should check if order in $setElementOrder and patch list match",
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            "doesn't match $setElementOrder list",
            500,
        ),
        (
            "int list order mismatch",
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
            "doesn't match",
            500,
        ),
        (
            "missing merge key should error out",
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
            "map: map[value:b] does not contain declared merge key: name",
            500,
        ),
        (
            "bad retainKeys",
            json!({"retainKeysMap": {"name": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": "name"}}),
            "invalid patch format of retainKeys",
            400,
        ),
        (
            "patch key not in retainKeys",
            json!({"retainKeysMap": {"name": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}}),
            "invalid patch format of retainKeys",
            400,
        ),
        (
            "unknown directive",
            json!({"simpleMap": {}}),
            json!({"simpleMap": {"$patch": "explode"}}),
            "unknown patch type: explode in map: map[$patch:explode]",
            500,
        ),
        (
            "lists of lists",
            json!({"mergingIntList": [[1]]}),
            json!({"mergingIntList": [[2]]}),
            "lists of lists are not supported",
            422,
        ),
        (
            "maps in a primitive list",
            json!({"mergingIntList": [{"a": 1}]}),
            json!({"mergingIntList": [{"a": 2}]}),
            "cannot merge lists without merge key for mergingIntList",
            500,
        ),
        (
            "bad deletion list",
            json!({"mergingIntList": [1]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": "x"}),
            "invalid patch format of primitive list",
            400,
        ),
        (
            "bad setElementOrder key",
            json!({}),
            json!({"$setElementOrderX": [1]}),
            "invalid patch format of setElementOrder list",
            400,
        ),
    ];
    for (desc, original, patch, want, status) in cases {
        match apply(original, patch, &MergeItemKeys) {
            Ok(v) => panic!("{desc}: unexpectedly gave {v}"),
            Err(e) => {
                assert!(e.to_string().contains(want), "{desc}: {e}");
                assert_eq!(e.status_code(), status, "{desc}");
            }
        }
    }
    assert_eq!(
        strategic_merge_patch(&json!({}), &json!([1]), &MergeItemKeys).map_err(|e| e.status_code()),
        Err(400)
    );
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web"},
            "finalizers": ["a", "b", "c"],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
        },
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:v1",
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"},
                                {"name": "C", "value": "3"}
                            ],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "args": ["--a", "--b"]
                        },
                        {"name": "sidecar", "image": "sidecar:v1"}
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg"}}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}]
                }
            }
        },
        "status": {
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True"}
            ]
        }
    })
}

#[test]
fn kubectl_apply_shaped_patches() {
    let keys = CoreMergeKeys::for_kind("Deployment");

    // kubectl apply: change the image, reorder env (B before A), drop C, add D, remove the
    // sidecar container.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [
                {
                    "name": "app",
                    "image": "app:v2",
                    "$setElementOrder/env": [{"name": "B"}, {"name": "A"}, {"name": "D"}],
                    "env": [
                        {"name": "D", "value": "4"},
                        {"$patch": "delete", "name": "C"}
                    ]
                },
                {"$patch": "delete", "name": "sidecar"}
            ]
        }}}
    });
    let out = ok(deployment(), patch, &keys);
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    assert_eq!(containers[0]["image"], json!("app:v2"));
    assert_eq!(
        containers[0]["env"],
        json!([
            {"name": "B", "value": "2"},
            {"name": "A", "value": "1"},
            {"name": "D", "value": "4"}
        ])
    );
    assert_eq!(
        containers[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        json!("{\"new\":true}")
    );
    // untouched parts stay
    assert_eq!(out["status"], deployment()["status"]);
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        deployment()["spec"]["template"]["spec"]["volumes"]
    );

    // kubectl apply adding a container places it where $setElementOrder says.
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "init-like"}, {"name": "app"}, {"name": "sidecar"}],
        "containers": [{"name": "init-like", "image": "x:v1"}]
    }}}});
    let out = ok(deployment(), patch, &keys);
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["init-like", "app", "sidecar"]);

    // The design document's env example. Its prose claims server-only items come first; the
    // upstream implementation (mergePatchIntoOriginal + mergeSortedSlice, ported here) only
    // moves a server-only item before a patch item that follows it in the live list.
    let live = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "app",
        "env": [
            {"name": "ENV2", "value": "bar"},
            {"name": "ENV5", "value": "server-added-2"},
            {"name": "ENV1", "value": "foo"},
            {"name": "ENV3", "value": "baz"},
            {"name": "ENV4", "value": "server-added-1"}
        ]
    }]}}}});
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{
            "name": "app",
            "$setElementOrder/env": [{"name": "ENV1"}, {"name": "ENV2"}, {"name": "ENV6"}],
            "env": [{"name": "ENV3", "$patch": "delete"}, {"name": "ENV6", "value": "new-env"}]
        }]
    }}}});
    let out = ok(live, patch, &keys);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([
            {"name": "ENV5", "value": "server-added-2"},
            {"name": "ENV1", "value": "foo"},
            {"name": "ENV2", "value": "bar"},
            {"name": "ENV6", "value": "new-env"},
            {"name": "ENV4", "value": "server-added-1"}
        ])
    );
}

#[test]
fn finalizers_primitive_merge_and_order() {
    let keys = CoreMergeKeys::for_kind("Deployment");
    // union
    let out = ok(
        deployment(),
        json!({"metadata": {"finalizers": ["c", "d"]}}),
        &keys,
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c", "d"]));
    // design doc scenario: server reordered and added e, d; kubectl applies a,b,f (result as
    // computed by the upstream algorithm, see the env example above)
    let live = json!({"metadata": {"finalizers": ["b", "e", "a", "c", "d"]}});
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["a", "b", "f"],
        "$deleteFromPrimitiveList/finalizers": ["c"],
        "finalizers": ["f"]
    }});
    let out = ok(live, patch, &keys);
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["e", "a", "b", "f", "d"])
    );
    // null removes the whole list
    let out = ok(
        deployment(),
        json!({"metadata": {"finalizers": null}}),
        &keys,
    );
    assert!(out["metadata"].get("finalizers").is_none());
}

#[test]
fn core_kind_lists() {
    let pod_keys = CoreMergeKeys::for_kind("Pod");
    let pod = json!({
        "metadata": {"ownerReferences": [{"uid": "u1", "name": "rs", "kind": "ReplicaSet"}]},
        "spec": {
            "containers": [{"name": "c", "image": "i", "volumeMounts": [{"mountPath": "/a", "name": "a"}]}],
            "tolerations": [{"key": "x"}],
            "volumes": [{"name": "a", "emptyDir": {}}]
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
            "podIPs": [{"ip": "10.0.0.1"}],
            "containerStatuses": [{"name": "c", "ready": false}]
        }
    });
    let patch = json!({
        "metadata": {"ownerReferences": [{"uid": "u1", "controller": true}, {"uid": "u2", "name": "other"}]},
        "spec": {
            "containers": [{"name": "c", "volumeMounts": [{"mountPath": "/b", "name": "b"}]}],
            "tolerations": [{"key": "y"}],
            "volumes": [{"name": "a", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "c", "ready": true}]
        }
    });
    let out = ok(pod, patch, &pod_keys);
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([
            {"uid": "u1", "name": "rs", "kind": "ReplicaSet", "controller": true},
            {"uid": "u2", "name": "other"}
        ])
    );
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"],
        json!([{"mountPath": "/b", "name": "b"}, {"mountPath": "/a", "name": "a"}])
    );
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "y"}]));
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "a", "secret": {"secretName": "s"}}])
    );
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
    );
    assert_eq!(out["status"]["podIPs"], json!([{"ip": "10.0.0.1"}]));
    assert_eq!(
        out["status"]["containerStatuses"],
        json!([{"name": "c", "ready": true}])
    );

    let node_keys = CoreMergeKeys::for_kind("Node");
    let node = json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}]}});
    let out = ok(
        node,
        json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}),
        &node_keys,
    );
    assert_eq!(
        out["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "n1"}])
    );

    let svc_keys = CoreMergeKeys::for_kind("Service");
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
    let out = ok(
        svc,
        json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
        &svc_keys,
    );
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}])
    );

    let sa_keys = CoreMergeKeys::for_kind("ServiceAccount");
    let sa = json!({"secrets": [{"name": "a"}]});
    let out = ok(sa, json!({"secrets": [{"name": "b"}]}), &sa_keys);
    assert_eq!(out["secrets"], json!([{"name": "b"}, {"name": "a"}]));

    // unknown kinds replace lists
    let crd_keys = CoreMergeKeys::for_kind("Widget");
    let out = ok(
        json!({"spec": {"items": [{"name": "a"}]}}),
        json!({"spec": {"items": [{"name": "b"}]}}),
        &crd_keys,
    );
    assert_eq!(out["spec"]["items"], json!([{"name": "b"}]));
}

#[test]
fn patch_replace_directive_on_container_list() {
    let keys = CoreMergeKeys::for_kind("Pod");
    let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let out = ok(
        pod,
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "x", "env": null}]}}),
        &keys,
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c", "image": "x"}])
    );
}

#[test]
fn new_container_without_set_element_order_goes_first() {
    // upstream mergeSortedSlice: a patch item unknown to the live list precedes server-only
    // items
    let keys = CoreMergeKeys::for_kind("Pod");
    let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let out = ok(pod, json!({"spec": {"containers": [{"name": "c"}]}}), &keys);
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])
    );
}

#[test]
fn inputs_are_untouched() {
    let keys = CoreMergeKeys::for_kind("Deployment");
    let live = deployment();
    let patch = json!({"spec": {"replicas": 5}});
    let before = (live.clone(), patch.clone());
    let _ = ok(live.clone(), patch.clone(), &keys);
    assert_eq!((live, patch), before);
}
