//! Behaviour a real kube-apiserver (v1.34) has and kube-sim once lacked (issue 14's first differential run):
//! defaults of pods' projected volumes and of Services, the validation the apiserver's strategies enforce with
//! their Status shape, Status details, the empty `spec.nodeName=` selector, the binding's `PodScheduled`
//! condition, and server-side apply over a map another manager added to. Each case is driven over HTTP and
//! asserts the real server's answer.

mod common;

use serde_json::{Value, json};

const JSON: &str = "application/json";

struct Api {
    sim: common::Sim,
}

impl Api {
    async fn start() -> Self {
        Api {
            sim: common::start_http().await,
        }
    }

    async fn call(&self, method: &str, path: &str, ct: &str, body: &Value) -> (u16, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("json")
        };
        common::raw(
            self.sim.handle.addr,
            &self.sim.handle.admin_token,
            method,
            path,
            ct,
            bytes,
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, JSON, &body).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, JSON, &body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, "", &Value::Null).await
    }

    async fn created(&self, path: &str, body: Value) -> Value {
        let (code, obj) = self.post(path, body).await;
        assert_eq!(code, 201, "POST {path}: {obj}");
        obj
    }
}

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

/// The Status of a 422 as the apiserver writes it; `causes` are given with the field path in their messages, which
/// the apiserver keeps only in the Status message (a cause's message leaves it to `field`).
fn invalid_status(kind: &str, group: &str, name: &str, mut causes: Value, message: &str) -> Value {
    for cause in causes.as_array_mut().into_iter().flatten() {
        let field = cause["field"].as_str().unwrap_or("").to_string();
        if let Some(m) = cause["message"].as_str()
            && let Some(rest) = m.strip_prefix(&format!("{field}: "))
        {
            cause["message"] = json!(rest);
        }
    }
    let mut details = json!({"name": name, "kind": kind, "causes": causes});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Invalid", "details": details, "code": 422})
}

#[tokio::test]
async fn projected_volumes_are_defaulted() {
    let api = Api::start().await;
    let spec = json!({
        "containers": [{"name": "app", "image": "busybox", "volumeMounts": [{"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens"}]}],
        "volumes": [{"name": "azure-identity-token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "azure-identity-token", "audience": "api://AzureADTokenExchange"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
        ]}}]
    });
    api.created(PODS, pod("p", spec)).await;
    let (_, got) = api.get(&format!("{PODS}/p")).await;
    let projected = &got["spec"]["volumes"][0]["projected"];
    assert_eq!(projected["defaultMode"], 420);
    assert_eq!(
        projected["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
    assert_eq!(
        projected["sources"][1]["downwardAPI"]["items"][0]["fieldRef"],
        json!({"apiVersion": "v1", "fieldPath": "metadata.namespace"})
    );
    // The service-account volume the admission plugin adds carries the same defaults.
    let api_access = got["spec"]["volumes"][1]["projected"].clone();
    assert_eq!(api_access["defaultMode"], 420);
    assert_eq!(
        api_access["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3607
    );
}

#[tokio::test]
async fn invalid_objects_get_the_apiservers_422() {
    let api = Api::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, status) = api
        .post(cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a b": "x"}}))
        .await;
    assert_eq!(code, 422);
    let detail = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
    let cause = format!("data[a b]: Invalid value: \"a b\": {detail}");
    assert_eq!(
        status,
        invalid_status(
            "ConfigMap",
            "",
            "c",
            json!([{"reason": "FieldValueInvalid", "message": cause, "field": "data[a b]"}]),
            &format!("ConfigMap \"c\" is invalid: {cause}")
        )
    );

    let (code, status) = api
        .post(PODS, pod("p", json!({"containers": [{"image": ""}]})))
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        status,
        invalid_status(
            "Pod",
            "",
            "p",
            json!([
                {"reason": "FieldValueRequired", "message": "spec.containers[0].name: Required value", "field": "spec.containers[0].name"},
                {"reason": "FieldValueRequired", "message": "spec.containers[0].image: Required value", "field": "spec.containers[0].image"}
            ]),
            "Pod \"p\" is invalid: [spec.containers[0].name: Required value, spec.containers[0].image: Required value]"
        )
    );
    let (code, status) = api
        .post(
            PODS,
            pod("p", json!({"containers": [{"name": "App", "image": "x"}]})),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.containers[0].name"
    );

    let (code, status) = api
        .post(
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}}}),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        status,
        invalid_status(
            "Service",
            "",
            "s",
            json!([{"reason": "FieldValueRequired", "message": "spec.ports: Required value", "field": "spec.ports"}]),
            "Service \"s\" is invalid: spec.ports: Required value"
        )
    );

    let rbac = "rbac.authorization.k8s.io";
    let (code, status) = api
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
                "rules": [{"apiGroups": [""], "resources": ["pods"]}]}),
        )
        .await;
    assert_eq!(code, 422);
    let cause = "rules[0].verbs: Required value: verbs must contain at least one value";
    assert_eq!(
        status,
        invalid_status(
            "Role",
            rbac,
            "r",
            json!([{"reason": "FieldValueRequired", "message": cause, "field": "rules[0].verbs"}]),
            &format!("Role.rbac.authorization.k8s.io \"r\" is invalid: {cause}")
        )
    );
}

#[tokio::test]
async fn secrets_and_role_bindings_keep_their_immutable_fields() {
    let api = Api::start().await;
    let secrets = "/api/v1/namespaces/default/secrets";
    let (code, status) = api
        .post(secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "data": {"k": "not base64!"}}))
        .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );

    api.created(secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}))
        .await;
    let (code, status) = api
        .put(
            &format!("{secrets}/s"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "dg==", "tls.key": "dg=="}}),
        )
        .await;
    assert_eq!(code, 422);
    let cause = "type: Invalid value: \"kubernetes.io/tls\": field is immutable";
    assert_eq!(
        status,
        invalid_status(
            "Secret",
            "",
            "s",
            json!([{"reason": "FieldValueInvalid", "message": cause, "field": "type"}]),
            &format!("Secret \"s\" is invalid: {cause}")
        )
    );
    // Leaving `type` out keeps it Opaque (the default), which is no change.
    let (code, _) = api
        .put(&format!("{secrets}/s"), json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dw=="}}))
        .await;
    assert_eq!(code, 200);

    let rbs = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
    let rb = |role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]})
    };
    api.created(rbs, rb("view")).await;
    let (code, status) = api.put(&format!("{rbs}/rb"), rb("edit")).await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "RoleBinding.rbac.authorization.k8s.io \"rb\" is invalid: roleRef: Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"ClusterRole\",\"Name\":\"edit\"}: cannot change roleRef"
    );
    assert_eq!(status["details"]["group"], "rbac.authorization.k8s.io");
    assert_eq!(status["details"]["causes"][0]["field"], "roleRef");
}

#[tokio::test]
async fn services_are_defaulted_and_given_a_cluster_ip() {
    let api = Api::start().await;
    let services = "/api/v1/namespaces/default/services";
    let svc = api
        .created(
            services,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        )
        .await;
    let ip = svc["spec"]["clusterIP"]
        .as_str()
        .expect("a cluster IP")
        .to_string();
    assert!(ip.starts_with("10.0.0."), "{ip}");
    assert_eq!(
        svc["spec"],
        json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"})
    );
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));

    // A second service gets another address; asking for a taken one is refused.
    let other = api
        .created(
            services,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {"ports": [{"port": 443, "targetPort": "https"}]}}),
        )
        .await;
    assert_ne!(other["spec"]["clusterIP"], svc["spec"]["clusterIP"]);
    assert_eq!(other["spec"]["ports"][0]["targetPort"], "https");
    let (code, status) = api
        .post(
            services,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dup"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(status["details"]["causes"][0]["field"], "spec.clusterIPs");

    // A replace that leaves the address out keeps it (kubectl replace of a file without clusterIP).
    let mut replaced = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web2"}, "ports": [{"port": 80}]}});
    let (code, after) = api.put(&format!("{services}/web"), replaced.clone()).await;
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["spec"]["clusterIP"], json!(ip));
    replaced["spec"]["clusterIP"] = json!("10.0.0.200");
    let (code, status) = api.put(&format!("{services}/web"), replaced).await;
    assert_eq!(code, 422);
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.clusterIPs[0]"
    );
}

#[tokio::test]
async fn errors_carry_status_details() {
    let api = Api::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, status) = api.get(&format!("{cms}/absent")).await;
    assert_eq!(code, 404);
    assert_eq!(
        status["details"],
        json!({"name": "absent", "kind": "configmaps"})
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let created = api.created(cms, cm.clone()).await;
    let (code, status) = api.post(cms, cm).await;
    assert_eq!(code, 409);
    assert_eq!(status["reason"], "AlreadyExists");
    assert_eq!(
        status["details"],
        json!({"name": "c", "kind": "configmaps"})
    );
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, status) = api.put(&format!("{cms}/c"), stale).await;
    assert_eq!(code, 409);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["details"],
        json!({"name": "c", "kind": "configmaps"})
    );
    let (code, status) = api
        .call(
            "DELETE",
            &format!("{cms}/c"),
            JSON,
            &json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "other"}}),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(status["details"], json!({"name": "c", "kind": "ConfigMap"}));
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Operation cannot be fulfilled on ConfigMap \"c\": the UID in the precondition (other) does not match the UID in record (")),
        "{status}"
    );
    let (_, status) = api
        .post(
            cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad"}}),
        )
        .await;
    assert_eq!(status["details"]["name"], "Bad");
    assert_eq!(status["details"]["kind"], "ConfigMap");
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
}

#[tokio::test]
async fn unscheduled_pods_by_empty_node_name_and_binding_marks_them_scheduled() {
    let api = Api::start().await;
    api.created(
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .await;
    for name in ["a", "b"] {
        api.created(
            PODS,
            pod(name, json!({"containers": [{"name": "c", "image": "i"}]})),
        )
        .await;
    }
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a", "annotations": {"scheduled-by": "test"}}, "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
    let (code, status) = api
        .post(&format!("{PODS}/a/binding"), binding.clone())
        .await;
    assert_eq!(code, 201, "{status}");
    assert_eq!(status["status"], "Success");

    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|p| {
                        p["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, unscheduled) = api
        .get(&format!("{PODS}?fieldSelector=spec.nodeName%3D"))
        .await;
    assert_eq!(names(&unscheduled), vec!["b"]);
    let (_, scheduled) = api
        .get(&format!("{PODS}?fieldSelector=spec.nodeName%21%3D"))
        .await;
    assert_eq!(names(&scheduled), vec!["a"]);
    let (_, on_n1) = api
        .get(&format!("{PODS}?fieldSelector=spec.nodeName%3Dn1"))
        .await;
    assert_eq!(names(&on_n1), vec!["a"]);

    let (_, bound) = api.get(&format!("{PODS}/a")).await;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["metadata"]["annotations"]["scheduled-by"], "test");
    let conditions = bound["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let scheduled = conditions
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .expect("PodScheduled");
    assert_eq!(scheduled["status"], "True");
    assert!(scheduled["lastTransitionTime"].is_string());

    let (code, status) = api.post(&format!("{PODS}/a/binding"), binding).await;
    assert_eq!(code, 409);
    assert_eq!(
        status["message"],
        "Operation cannot be fulfilled on pods/binding \"a\": pod a is already assigned to node \"n1\""
    );
    assert_eq!(
        status["details"],
        json!({"name": "a", "kind": "pods/binding"})
    );
}

#[tokio::test]
async fn apply_over_a_map_another_manager_added_to_is_no_conflict() {
    let api = Api::start().await;
    let path = "/api/v1/namespaces/default/configmaps/shared";
    let api = &api;
    let apply = |manager: &str, data: Value, annotations: Value| {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared", "annotations": annotations}, "data": data});
        let path = format!("{path}?fieldManager={manager}");
        async move {
            api.call("PATCH", &path, "application/apply-patch+yaml", &body)
                .await
        }
    };
    let (code, _) = apply("a", json!({"x": "1"}), json!({})).await;
    assert_eq!(code, 201);
    let (code, _) = apply("b", json!({"y": "2"}), json!({"z": "3"})).await;
    assert_eq!(code, 200);
    let (code, obj) = apply("a", json!({"x": "1"}), json!({})).await;
    assert_eq!(code, 200, "{obj}");
    assert_eq!(obj["data"], json!({"x": "1", "y": "2"}));
    assert_eq!(obj["metadata"]["annotations"], json!({"z": "3"}));
    // Setting a key `b` owns is a conflict, with the apiserver's causes.
    let (code, status) = apply("a", json!({"x": "1", "y": "9"}), json!({})).await;
    assert_eq!(code, 409);
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"b\": .data.y"
    );
    assert_eq!(
        status["details"],
        json!({"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"b\"", "field": ".data.y"}]})
    );
}

#[tokio::test]
async fn unknown_fields_warn_by_default_and_fail_under_strict() {
    let api = Api::start().await;
    let addr = api.sim.handle.addr;
    let token = api.sim.handle.admin_token.clone();
    let body = |name: &str| {
        serde_json::to_vec(&pod(
            name,
            json!({"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "Always"}], "bogus": true}),
        ))
        .expect("json")
    };
    let (code, headers, created) =
        common::raw_with_headers(addr, &token, "POST", PODS, JSON, body("warned")).await;
    assert_eq!(code, 201, "{created}");
    let warnings: Vec<&str> = headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        warnings,
        vec![
            "299 - \"unknown field \\\"spec.bogus\\\"\"",
            "299 - \"unknown field \\\"spec.containers[0].imagePullPolicyy\\\"\"",
        ]
    );
    assert!(
        created["spec"].get("bogus").is_none(),
        "unknown fields are dropped"
    );
    assert!(
        created["spec"]["containers"][0]
            .get("imagePullPolicyy")
            .is_none()
    );

    let (code, headers, _) = common::raw_with_headers(
        addr,
        &token,
        "POST",
        &format!("{PODS}?fieldValidation=Ignore"),
        JSON,
        body("ignored"),
    )
    .await;
    assert_eq!(code, 201);
    assert!(headers.get("warning").is_none());

    let (code, status) = api
        .call(
            "POST",
            &format!("{PODS}?fieldValidation=Strict"),
            JSON,
            &serde_json::from_slice(&body("strict")).expect("json"),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.bogus\", unknown field \"spec.containers[0].imagePullPolicyy\""
    );
    // A patch that brings an unknown field is refused the same way.
    let (code, status) = api
        .call(
            "PATCH",
            &format!("{PODS}/warned?fieldValidation=Strict"),
            "application/merge-patch+json",
            &json!({"spec": {"nope": 1}}),
        )
        .await;
    assert_eq!(code, 400, "{status}");
}

#[tokio::test]
async fn lists_deletes_and_list_options_answer_as_the_apiserver_does() {
    let api = Api::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    for name in ["a", "b", "c"] {
        let cm = api
            .created(
                cms,
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {}}}),
            )
            .await;
        // Kinds that track no generation have none; empty metadata maps are dropped.
        assert!(cm["metadata"].get("generation").is_none(), "{cm}");
        assert!(cm["metadata"].get("labels").is_none(), "{cm}");
    }
    // Items carry no kind; a page counts what is left (kube-root-ca.crt, a, b, c).
    let (code, page) = api.get(&format!("{cms}?limit=2")).await;
    assert_eq!(code, 200, "{page}");
    assert!(page["items"][0].get("kind").is_none(), "{page}");
    assert_eq!(page["metadata"]["remainingItemCount"], 2);
    // resourceVersion=0 is served whole (the watch cache ignores limit).
    let (_, all) = api.get(&format!("{cms}?limit=1&resourceVersion=0")).await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(4), "{all}");
    let (code, refused) = api.get(&format!("{cms}?resourceVersionMatch=Exact")).await;
    assert_eq!(code, 422, "{refused}");
    assert_eq!(
        refused["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
    );
    assert!(refused["details"].get("name").is_none(), "{refused}");
    let (code, refused) = api.get(&format!("{cms}?continue=garbage")).await;
    assert_eq!(code, 400);
    assert_eq!(
        refused["message"],
        "invalid continue token: continue key is not valid: invalid character '\\u0081' looking for beginning of value"
    );
    // A delete that removes the object answers a Status naming it.
    let (code, deleted) = api
        .call("DELETE", &format!("{cms}/a"), JSON, &Value::Null)
        .await;
    assert_eq!(code, 200);
    assert_eq!(deleted["kind"], "Status");
    assert_eq!(deleted["status"], "Success");
    assert_eq!(deleted["details"]["name"], "a");
    assert_eq!(deleted["details"]["kind"], "configmaps");
}

#[tokio::test]
async fn error_answers_use_the_apiservers_words() {
    let api = Api::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    api.created(
        cms,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}}),
    )
    .await;
    let (code, s) = api.call("PUT", cms, JSON, &json!({})).await;
    assert_eq!(
        (code, s["message"].as_str()),
        (
            405,
            Some("the server does not allow this method on the requested resource")
        )
    );
    let (code, s) = api
        .call("PATCH", &format!("{cms}/e"), "text/plain", &json!({}))
        .await;
    assert_eq!(
        (code, s["message"].as_str()),
        (415, Some("415: Unsupported Media Type"))
    );
    let (code, s) = api
        .call(
            "PATCH",
            &format!("{cms}/e"),
            "application/json-patch+json",
            &json!({"op": "add"}),
        )
        .await;
    assert_eq!(code, 400, "{s}");
    assert_eq!(
        s["message"],
        "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
    );
    let test_fails = json!([{"op": "test", "path": "/data/x", "value": "y"}]);
    let (code, s) = api
        .call(
            "PATCH",
            &format!("{cms}/e"),
            "application/json-patch+json",
            &test_fails,
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        s["message"],
        "the server rejected our request due to an error in our request"
    );
    assert_eq!(s["details"], json!({}), "{s}");
    let (code, s) = api
        .post(
            &format!("{cms}?fieldValidation=Sometimes"),
            json!({"metadata": {"name": "fv"}}),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        s["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Sometimes\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    let (code, s) = api.post(cms, secret).await;
    assert_eq!(code, 400);
    assert_eq!(
        s["message"],
        "Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion"
    );
    let (code, headers, body) = common::raw_with_headers(
        api.sim.handle.addr,
        &api.sim.handle.admin_token,
        "GET",
        "/apis/nope.example.com/v1",
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(code, 404);
    assert!(body.is_null(), "a text answer: {body}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/plain; charset=utf-8")
    );
    let long = "a".repeat(253);
    api.created(cms, json!({"metadata": {"name": long}})).await;
}
