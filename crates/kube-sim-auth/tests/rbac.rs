//! Table tests for RBAC evaluation, SubjectAccessReview parsing and rule listing.

use kube_sim_auth::rbac::{
    Attributes, NonResourceRule, Request, ResourceAttributes, ResourceRule, StaticRbac, UserInfo,
    authorize, rules_for, rules_review,
};
use kube_sim_auth::{AuthError, RbacSource};
use serde_json::{Value, json};

const MI_GROUP: &str = "cid.wi.aks.azure.com";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT_ID_2: &str = "99999999-8888-7777-6666-555555555555";

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
}

fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn crb(name: &str, role_kind: &str, role_name: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
           "subjects": subjects})
}

fn rb(ns: &str, name: &str, role_kind: &str, role_name: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
           "subjects": subjects})
}

fn fixture() -> StaticRbac {
    StaticRbac::from_objects(vec![
        cluster_role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]}
            ]),
        ),
        cluster_role(
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
        ),
        cluster_role(
            "healthz",
            json!([{"nonResourceURLs": ["/healthz", "/metrics/*"], "verbs": ["get"]}]),
        ),
        cluster_role(
            "ns-nonresource",
            json!([{"nonResourceURLs": ["/version"], "verbs": ["get"]}]),
        ),
        cluster_role(
            "scaler",
            json!([{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["get", "update"]}]),
        ),
        cluster_role(
            "status-writer",
            json!([{"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update", "patch"]}]),
        ),
        cluster_role(
            "pods-star",
            json!([{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}]),
        ),
        cluster_role(
            "mi-user",
            json!([{"apiGroups": [MI_GROUP], "resources": [CLIENT_ID], "verbs": ["use-managed-identity"]}]),
        ),
        role(
            "apps",
            "mi-named",
            json!([{"apiGroups": [MI_GROUP], "resources": [CLIENT_ID_2],
                                          "resourceNames": ["web-0"], "verbs": ["use-managed-identity"]}]),
        ),
        role(
            "team",
            "secret-reader",
            json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["db"], "verbs": ["get"]}]),
        ),
        role(
            "team",
            "everything-in-team",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"],
                                                   "nonResourceURLs": ["/team-only"]}]),
        ),
        crb(
            "admins",
            "ClusterRole",
            "cluster-admin",
            json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "admins"}]),
        ),
        crb(
            "health",
            "ClusterRole",
            "healthz",
            json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]),
        ),
        crb(
            "sa-reader",
            "ClusterRole",
            "pod-reader",
            json!([
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "nobody"},
                {"kind": "ServiceAccount", "name": "reader", "namespace": "kube-system"}
            ]),
        ),
        crb(
            "sa-no-namespace",
            "ClusterRole",
            "pod-reader",
            json!([{"kind": "ServiceAccount", "name": "ghost"}]),
        ),
        crb(
            "broken",
            "ClusterRole",
            "does-not-exist",
            json!([{"kind": "User", "name": "broken"}]),
        ),
        crb(
            "crb-to-role",
            "Role",
            "secret-reader",
            json!([{"kind": "User", "name": "erin"}]),
        ),
        crb(
            "weird-kind",
            "Something",
            "x",
            json!([{"kind": "User", "name": "frank"}]),
        ),
        rb(
            "team",
            "alice-pods",
            "ClusterRole",
            "pod-reader",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        rb(
            "team",
            "bob-db",
            "Role",
            "secret-reader",
            json!([{"kind": "User", "name": "bob"}]),
        ),
        rb(
            "team",
            "builder",
            "Role",
            "secret-reader",
            json!([{"kind": "ServiceAccount", "name": "builder"}]),
        ),
        rb(
            "team",
            "cross-ns-sa",
            "ClusterRole",
            "pod-reader",
            json!([{"kind": "ServiceAccount", "name": "x", "namespace": "other"}]),
        ),
        rb(
            "team",
            "devs-scale",
            "ClusterRole",
            "scaler",
            json!([{"kind": "Group", "name": "devs"}]),
        ),
        rb(
            "team",
            "carol-status",
            "ClusterRole",
            "status-writer",
            json!([{"kind": "User", "name": "carol"}]),
        ),
        rb(
            "team",
            "carol-star",
            "ClusterRole",
            "pods-star",
            json!([{"kind": "User", "name": "carol"}]),
        ),
        rb(
            "team",
            "dangling",
            "Role",
            "nope",
            json!([{"kind": "User", "name": "dave"}]),
        ),
        rb(
            "team",
            "nonresource-via-rb",
            "ClusterRole",
            "ns-nonresource",
            json!([{"kind": "User", "name": "gina"}]),
        ),
        rb(
            "team",
            "role-nonresource",
            "Role",
            "everything-in-team",
            json!([{"kind": "User", "name": "gina"}]),
        ),
        rb(
            "apps",
            "mi",
            "ClusterRole",
            "mi-user",
            json!([{"kind": "ServiceAccount", "name": "workload", "namespace": "apps"}]),
        ),
        rb(
            "apps",
            "mi-named",
            "Role",
            "mi-named",
            json!([{"kind": "ServiceAccount", "name": "workload", "namespace": "apps"}]),
        ),
        rb(
            "other",
            "alice-other",
            "Role",
            "missing-in-other",
            json!([{"kind": "User", "name": "someone-else"}]),
        ),
    ])
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo::new(name, groups.iter().copied())
}

fn sa(ns: &str, name: &str) -> UserInfo {
    user(
        &format!("system:serviceaccount:{ns}:{name}"),
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{ns}"),
            "system:authenticated",
        ],
    )
}

fn res(verb: &str, ns: &str, group: &str, resource: &str, sub: &str, name: &str) -> Request {
    Request::Resource(ResourceAttributes {
        verb: verb.into(),
        namespace: ns.into(),
        group: group.into(),
        version: "v1".into(),
        resource: resource.into(),
        subresource: sub.into(),
        name: name.into(),
    })
}

fn nonres(verb: &str, path: &str) -> Request {
    Request::NonResource(kube_sim_auth::NonResourceAttributes {
        path: path.into(),
        verb: verb.into(),
    })
}

#[test]
fn authorize_table() {
    let rbac = fixture();
    let authed = ["system:authenticated"];
    // (case, user, request, allowed, expected reason)
    let cases: Vec<(&str, UserInfo, Request, bool, &str)> = vec![
        (
            "masters may do anything",
            user("root", &["system:masters"]),
            res("delete", "x", "apps", "deployments", "", "d"),
            true,
            "",
        ),
        (
            "masters non-resource",
            user("root", &["system:masters"]),
            nonres("post", "/anything"),
            true,
            "",
        ),
        (
            "group via CRB",
            user("u", &["admins"]),
            res("create", "any", "batch", "jobs", "", ""),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "admins" of ClusterRole "cluster-admin" to Group "admins""#,
        ),
        (
            "group via CRB nonresource",
            user("u", &["admins"]),
            nonres("get", "/openapi/v2"),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "admins" of ClusterRole "cluster-admin" to Group "admins""#,
        ),
        (
            "user via RB->ClusterRole",
            user("alice", &authed),
            res("list", "team", "", "pods", "", ""),
            true,
            r#"RBAC: allowed by RoleBinding "alice-pods/team" of ClusterRole "pod-reader" to User "alice""#,
        ),
        (
            "RB grants only in its namespace",
            user("alice", &authed),
            res("list", "other", "", "pods", "", ""),
            false,
            "",
        ),
        (
            "RB does not grant cluster-wide",
            user("alice", &authed),
            res("list", "", "", "pods", "", ""),
            false,
            "",
        ),
        (
            "verb not in rule",
            user("alice", &authed),
            res("delete", "team", "", "pods", "", "p"),
            false,
            "",
        ),
        (
            "wrong group",
            user("alice", &authed),
            res("get", "team", "apps", "pods", "", "p"),
            false,
            "",
        ),
        (
            "subresource not covered by resource",
            user("alice", &authed),
            res("get", "team", "", "pods", "log", "p"),
            false,
            "",
        ),
        (
            "SA via CRB with namespace",
            sa("kube-system", "reader"),
            res("watch", "anywhere", "", "pods", "", ""),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "sa-reader" of ClusterRole "pod-reader" to ServiceAccount "reader/kube-system""#,
        ),
        (
            "SA in other namespace does not match",
            sa("default", "reader"),
            res("get", "x", "", "pods", "", "p"),
            false,
            "",
        ),
        (
            "CRB SA subject without namespace never matches",
            sa("team", "ghost"),
            res("get", "team", "", "pods", "", "p"),
            false,
            "",
        ),
        (
            "RB SA subject defaults to binding namespace",
            sa("team", "builder"),
            res("get", "team", "", "secrets", "", "db"),
            true,
            r#"RBAC: allowed by RoleBinding "builder/team" of Role "secret-reader" to ServiceAccount "builder/team""#,
        ),
        (
            "RB SA subject with explicit other namespace",
            sa("other", "x"),
            res("get", "team", "", "pods", "", "p"),
            true,
            r#"RBAC: allowed by RoleBinding "cross-ns-sa/team" of ClusterRole "pod-reader" to ServiceAccount "x/other""#,
        ),
        (
            "same SA name other namespace",
            sa("team", "x"),
            res("get", "team", "", "pods", "", "p"),
            false,
            "",
        ),
        (
            "resourceNames match",
            user("bob", &authed),
            res("get", "team", "", "secrets", "", "db"),
            true,
            r#"RBAC: allowed by RoleBinding "bob-db/team" of Role "secret-reader" to User "bob""#,
        ),
        (
            "resourceNames other name",
            user("bob", &authed),
            res("get", "team", "", "secrets", "", "other"),
            false,
            "",
        ),
        (
            "resourceNames without name (list)",
            user("bob", &authed),
            res("list", "team", "", "secrets", "", ""),
            false,
            "",
        ),
        (
            "*/scale matches any resource's scale",
            user("d", &["devs"]),
            res("update", "team", "apps", "deployments", "scale", "web"),
            true,
            r#"RBAC: allowed by RoleBinding "devs-scale/team" of ClusterRole "scaler" to Group "devs""#,
        ),
        (
            "*/scale matches statefulsets too",
            user("d", &["devs"]),
            res("get", "team", "apps", "statefulsets", "scale", "db"),
            true,
            r#"RBAC: allowed by RoleBinding "devs-scale/team" of ClusterRole "scaler" to Group "devs""#,
        ),
        (
            "*/scale does not match the resource",
            user("d", &["devs"]),
            res("get", "team", "apps", "deployments", "", "web"),
            false,
            "",
        ),
        (
            "*/scale does not match other subresource",
            user("d", &["devs"]),
            res("get", "team", "apps", "deployments", "status", "web"),
            false,
            "",
        ),
        (
            "pods/status exact",
            user("carol", &authed),
            res("patch", "team", "", "pods", "status", "p"),
            true,
            r#"RBAC: allowed by RoleBinding "carol-status/team" of ClusterRole "status-writer" to User "carol""#,
        ),
        (
            "pods/status does not grant pods",
            user("carol", &authed),
            res("patch", "team", "", "pods", "", "p"),
            false,
            "",
        ),
        (
            "pods/* is not a wildcard upstream",
            user("carol", &authed),
            res("get", "team", "", "pods", "log", "p"),
            false,
            "",
        ),
        (
            "nonResourceURL exact",
            user("u", &authed),
            nonres("get", "/healthz"),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "health" of ClusterRole "healthz" to Group "system:authenticated""#,
        ),
        (
            "nonResourceURL prefix",
            user("u", &authed),
            nonres("get", "/metrics/cadvisor"),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "health" of ClusterRole "healthz" to Group "system:authenticated""#,
        ),
        (
            "nonResourceURL not a prefix match without *",
            user("u", &authed),
            nonres("get", "/healthz/etcd"),
            false,
            "",
        ),
        (
            "nonResourceURL wrong verb",
            user("u", &authed),
            nonres("post", "/healthz"),
            false,
            "",
        ),
        (
            "nonResourceURLs via RoleBinding never apply",
            user("gina", &authed),
            nonres("get", "/version"),
            false,
            "",
        ),
        (
            "nonResourceURLs in a Role never apply",
            user("gina", &authed),
            nonres("get", "/team-only"),
            false,
            "",
        ),
        (
            "custom verb on client id without resourceNames",
            sa("apps", "workload"),
            res("use-managed-identity", "apps", MI_GROUP, CLIENT_ID, "", ""),
            true,
            r#"RBAC: allowed by RoleBinding "mi/apps" of ClusterRole "mi-user" to ServiceAccount "workload/apps""#,
        ),
        (
            "custom verb on client id with any name",
            sa("apps", "workload"),
            res(
                "use-managed-identity",
                "apps",
                MI_GROUP,
                CLIENT_ID,
                "",
                "web-7",
            ),
            true,
            r#"RBAC: allowed by RoleBinding "mi/apps" of ClusterRole "mi-user" to ServiceAccount "workload/apps""#,
        ),
        (
            "custom verb: other client id denied",
            sa("apps", "workload"),
            res(
                "use-managed-identity",
                "apps",
                MI_GROUP,
                "00000000-0000-0000-0000-000000000000",
                "",
                "",
            ),
            false,
            "",
        ),
        (
            "custom verb: get is not use-managed-identity",
            sa("apps", "workload"),
            res("get", "apps", MI_GROUP, CLIENT_ID, "", ""),
            false,
            "",
        ),
        (
            "custom verb: other group denied",
            sa("apps", "workload"),
            res("use-managed-identity", "apps", "", CLIENT_ID, "", ""),
            false,
            "",
        ),
        (
            "custom verb: other namespace denied",
            sa("apps", "workload"),
            res("use-managed-identity", "team", MI_GROUP, CLIENT_ID, "", ""),
            false,
            "",
        ),
        (
            "custom verb with resourceNames: named",
            sa("apps", "workload"),
            res(
                "use-managed-identity",
                "apps",
                MI_GROUP,
                CLIENT_ID_2,
                "",
                "web-0",
            ),
            true,
            r#"RBAC: allowed by RoleBinding "mi-named/apps" of Role "mi-named" to ServiceAccount "workload/apps""#,
        ),
        (
            "custom verb with resourceNames: other name",
            sa("apps", "workload"),
            res(
                "use-managed-identity",
                "apps",
                MI_GROUP,
                CLIENT_ID_2,
                "",
                "web-1",
            ),
            false,
            "",
        ),
        (
            "custom verb with resourceNames: no name",
            sa("apps", "workload"),
            res(
                "use-managed-identity",
                "apps",
                MI_GROUP,
                CLIENT_ID_2,
                "",
                "",
            ),
            false,
            "",
        ),
        (
            "custom verb: other SA denied",
            sa("apps", "intruder"),
            res("use-managed-identity", "apps", MI_GROUP, CLIENT_ID, "", ""),
            false,
            "",
        ),
        (
            "unknown user",
            user("mallory", &authed),
            res("get", "team", "", "pods", "", "p"),
            false,
            "",
        ),
        (
            "missing ClusterRole surfaces in reason",
            user("broken", &authed),
            res("get", "x", "", "pods", "", "p"),
            false,
            r#"RBAC: clusterrole.rbac.authorization.k8s.io "does-not-exist" not found"#,
        ),
        (
            "missing Role surfaces in reason",
            user("dave", &authed),
            res("get", "team", "", "pods", "", "p"),
            false,
            r#"RBAC: role.rbac.authorization.k8s.io "nope" not found"#,
        ),
        (
            "CRB referencing a Role is an error",
            user("erin", &authed),
            res("get", "team", "", "secrets", "", "db"),
            false,
            r#"RBAC: role.rbac.authorization.k8s.io "secret-reader" not found"#,
        ),
        (
            "unsupported roleRef kind",
            user("frank", &authed),
            res("get", "x", "", "pods", "", "p"),
            false,
            r#"RBAC: unsupported role reference kind: "Something""#,
        ),
        (
            "errors do not block a later grant",
            user("dave", &["admins"]),
            res("get", "team", "", "pods", "", "p"),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "admins" of ClusterRole "cluster-admin" to Group "admins""#,
        ),
    ];
    for (case, u, req, allowed, reason) in cases {
        let d = authorize(
            &Attributes {
                user: u,
                request: req,
            },
            &rbac,
        );
        assert_eq!(d.allowed, allowed, "{case}: {d:?}");
        assert!(!d.denied, "{case}: RBAC never denies");
        assert_eq!(d.reason, reason, "{case}");
    }
}

#[test]
fn multiple_errors_are_aggregated() {
    let rbac = StaticRbac::from_objects(vec![
        crb(
            "a",
            "ClusterRole",
            "missing-a",
            json!([{"kind": "User", "name": "u"}]),
        ),
        crb(
            "b",
            "ClusterRole",
            "missing-b",
            json!([{"kind": "User", "name": "u"}]),
        ),
        crb(
            "c",
            "ClusterRole",
            "missing-a",
            json!([{"kind": "User", "name": "u"}]),
        ),
    ]);
    let d = authorize(
        &Attributes::non_resource(user("u", &[]), "/x", "get"),
        &rbac,
    );
    assert_eq!(
        d.reason,
        r#"RBAC: [clusterrole.rbac.authorization.k8s.io "missing-a" not found, clusterrole.rbac.authorization.k8s.io "missing-b" not found]"#
    );
}

#[test]
fn decision_status_shape() {
    let rbac = fixture();
    let allowed = authorize(
        &Attributes::resource(
            user("alice", &[]),
            ResourceAttributes {
                verb: "get".into(),
                namespace: "team".into(),
                resource: "pods".into(),
                ..Default::default()
            },
        ),
        &rbac,
    );
    assert_eq!(
        allowed.to_status(),
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"alice-pods/team\" of ClusterRole \"pod-reader\" to User \"alice\""})
    );
    let denied = authorize(
        &Attributes::non_resource(user("x", &[]), "/nope", "get"),
        &rbac,
    );
    assert_eq!(denied.to_status(), json!({"allowed": false}));
}

#[test]
fn garbage_objects_are_ignored() {
    let rbac = StaticRbac::from_objects(vec![
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "junk"}, "subjects": "not-a-list", "roleRef": 5}),
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "junk2"},
               "subjects": [{"kind": "User", "name": "u"}], "roleRef": {"kind": "ClusterRole", "name": "r"}}),
        json!({"kind": "ClusterRole", "metadata": {"name": "r"}, "rules": [
            {"verbs": [1, "get"], "apiGroups": "x", "resources": ["pods"]},
            "not-a-rule",
            {"verbs": ["get"], "apiGroups": [""], "resources": [null, "pods"]}
        ]}),
        json!({"kind": "Pod", "metadata": {"name": "ignored"}}),
    ]);
    let d = authorize(
        &Attributes::resource(
            user("u", &[]),
            ResourceAttributes {
                verb: "get".into(),
                resource: "pods".into(),
                name: "p".into(),
                ..Default::default()
            },
        ),
        &rbac,
    );
    assert!(d.allowed);
    assert_eq!(
        d.reason,
        r#"RBAC: allowed by ClusterRoleBinding "junk2" of ClusterRole "r" to User "u""#
    );
}

#[test]
fn static_rbac_role_bindings_are_per_namespace() {
    let rbac = fixture();
    let team: Vec<&str> = rbac
        .role_bindings("team")
        .map(|b| b["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert!(team.contains(&"alice-pods"));
    assert!(!team.contains(&"mi"));
    assert_eq!(rbac.role_bindings("nope").count(), 0);
    assert_eq!(rbac.role_bindings("tea").count(), 0);
    assert!(rbac.role("team", "secret-reader").is_some());
    assert!(rbac.role("apps", "secret-reader").is_none());
}

#[test]
fn sar_spec_parsing() {
    let spec = json!({
        "user": "alice",
        "groups": ["g1", "g2"],
        "uid": "u-1",
        "extra": {"scopes": ["a", "b"], "empty": null},
        "resourceAttributes": {"namespace": "team", "verb": "get", "group": "", "version": "v1",
                               "resource": "pods", "subresource": "log", "name": "p",
                               "fieldSelector": {"rawSelector": "x=y"}}
    });
    let attrs = Attributes::from_sar_spec(&spec).expect("valid spec");
    assert_eq!(attrs.user.username, "alice");
    assert_eq!(attrs.user.groups, vec!["g1", "g2"]);
    assert_eq!(attrs.user.uid, "u-1");
    assert_eq!(
        attrs.user.extra.get("scopes"),
        Some(&vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(attrs.user.extra.get("empty"), Some(&Vec::new()));
    assert_eq!(
        attrs.request,
        Request::Resource(ResourceAttributes {
            verb: "get".into(),
            namespace: "team".into(),
            group: String::new(),
            version: "v1".into(),
            resource: "pods".into(),
            subresource: "log".into(),
            name: "p".into(),
        })
    );
    assert_eq!(attrs.namespace(), "team");

    let nr = Attributes::from_sar_spec(
        &json!({"groups": ["g"], "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}),
    )
    .expect("valid non-resource spec");
    assert_eq!(nr.request, nonres("get", "/healthz"));
    assert_eq!(nr.namespace(), "");
}

#[test]
fn sar_spec_validation_messages() {
    let cases = [
        (
            json!({"user": "a"}),
            r#"spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"#,
        ),
        (
            json!({"user": "a", "resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x", "verb": "get"}}),
            r#"spec.nonResourceAttributes: Invalid value: {"Path":"/x","Verb":"get"}: cannot be specified in combination with resourceAttributes"#,
        ),
        (
            json!({"resourceAttributes": {"verb": "get"}}),
            r#"spec.user: Invalid value: "": at least one of user or group must be specified"#,
        ),
        (
            json!({}),
            r#"[spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group must be specified]"#,
        ),
        (
            Value::Null,
            r#"[spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group must be specified]"#,
        ),
    ];
    for (spec, want) in cases {
        match Attributes::from_sar_spec(&spec) {
            Err(e @ AuthError::Invalid(_)) => assert_eq!(e.to_string(), want, "{spec}"),
            other => panic!("{spec}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn sar_spec_type_errors() {
    let cases = [
        (
            json!({"user": 5}),
            "json: cannot unmarshal number into Go struct field SubjectAccessReviewSpec.spec.user of type string",
        ),
        (
            json!({"groups": "g"}),
            "json: cannot unmarshal string into Go struct field SubjectAccessReviewSpec.spec.groups of type []string",
        ),
        (
            json!({"groups": [true]}),
            "json: cannot unmarshal bool into Go struct field SubjectAccessReviewSpec.spec.groups of type string",
        ),
        (
            json!({"extra": []}),
            "json: cannot unmarshal array into Go struct field SubjectAccessReviewSpec.spec.extra of type map[string]v1.ExtraValue",
        ),
        (
            json!({"extra": {"k": "v"}}),
            "json: cannot unmarshal string into Go struct field SubjectAccessReviewSpec.spec.extra of type v1.ExtraValue",
        ),
        (
            json!({"resourceAttributes": "x"}),
            "json: cannot unmarshal string into Go struct field SubjectAccessReviewSpec.spec.resourceAttributes of type v1.ResourceAttributes",
        ),
        (
            json!({"resourceAttributes": {"verb": 1}}),
            "json: cannot unmarshal number into Go struct field ResourceAttributes.spec.resourceAttributes.verb of type string",
        ),
        (
            json!({"nonResourceAttributes": {"path": {}}}),
            "json: cannot unmarshal object into Go struct field NonResourceAttributes.spec.nonResourceAttributes.path of type string",
        ),
        (
            json!("spec"),
            "json: cannot unmarshal string into Go struct field SubjectAccessReview.spec of type v1.SubjectAccessReviewSpec",
        ),
    ];
    for (spec, want) in cases {
        match Attributes::from_sar_spec(&spec) {
            Err(AuthError::BadRequest(msg)) => assert_eq!(msg, want, "{spec}"),
            other => panic!("{spec}: expected BadRequest, got {other:?}"),
        }
    }
}

#[test]
fn self_sar_uses_the_requester() {
    let me = user("alice", &["system:authenticated"]);
    let attrs = Attributes::from_self_sar_spec(
        &json!({"user": "ignored", "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "team"}}),
        &me,
    )
    .expect("valid");
    assert_eq!(attrs.user, me);
    let d = authorize(&attrs, &fixture());
    assert!(d.allowed);
    let err = Attributes::from_self_sar_spec(&json!({}), &me).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err(r#"spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"#.to_owned())
    );
}

#[test]
fn rules_for_user() {
    let rbac = fixture();
    let (res_rules, nonres_rules) =
        rules_for(&user("alice", &["system:authenticated"]), "team", &rbac);
    assert_eq!(
        res_rules,
        vec![ResourceRule {
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            api_groups: vec![String::new()],
            resources: vec!["pods".into()],
            resource_names: vec![],
        }]
    );
    assert_eq!(
        nonres_rules,
        vec![NonResourceRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz".into(), "/metrics/*".into()],
        }]
    );
    // Outside the namespace only the cluster-wide rules remain.
    let (res_rules, _) = rules_for(&user("alice", &["system:authenticated"]), "other", &rbac);
    assert!(res_rules.is_empty());
}

#[test]
fn rules_for_mixed_rule_and_custom_verb() {
    let rbac = fixture();
    // A Role rule with both resources and nonResourceURLs yields one rule of each kind.
    let (res_rules, nonres_rules) = rules_for(&user("gina", &[]), "team", &rbac);
    assert_eq!(res_rules.len(), 1);
    assert_eq!(res_rules[0].resources, vec!["*"]);
    assert!(
        nonres_rules
            .iter()
            .any(|r| r.non_resource_urls == vec!["/team-only"])
    );
    assert!(
        nonres_rules
            .iter()
            .any(|r| r.non_resource_urls == vec!["/version"])
    );

    let (res_rules, _) = rules_for(&sa("apps", "workload"), "apps", &rbac);
    assert_eq!(res_rules.len(), 2);
    assert_eq!(res_rules[0].verbs, vec!["use-managed-identity"]);
    assert_eq!(res_rules[0].resources, vec![CLIENT_ID]);
    assert_eq!(res_rules[1].resource_names, vec!["web-0"]);
}

#[test]
fn rules_review_masters_and_errors() {
    let rbac = fixture();
    let review = rules_review(&user("root", &["system:masters"]), "default", &rbac);
    assert_eq!(
        review.to_status(),
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false
        })
    );
    let review = rules_review(&user("dave", &[]), "team", &rbac);
    assert_eq!(
        review.to_status(),
        json!({
            "resourceRules": [],
            "nonResourceRules": [],
            "incomplete": false,
            "evaluationError": "role.rbac.authorization.k8s.io \"nope\" not found"
        })
    );
}

#[test]
fn user_info_serde_uses_api_names() {
    let mut u = user("system:serviceaccount:a:b", &["g"]);
    u.uid = "123".into();
    u.extra.insert("k".into(), vec!["v".into()]);
    let v = serde_json::to_value(&u).unwrap_or_default();
    assert_eq!(
        v,
        json!({"username": "system:serviceaccount:a:b", "uid": "123", "groups": ["g"], "extra": {"k": ["v"]}})
    );
    let back: UserInfo =
        serde_json::from_value(json!({"username": "x", "groups": null, "extra": null}))
            .unwrap_or_default();
    assert_eq!(back, user("x", &[]));
    assert_eq!(
        serde_json::to_value(UserInfo::default()).unwrap_or_default(),
        json!({})
    );
}
