//! Real kubectl against kube-sim over HTTPS: apply, get (table, json, yaml, selectors), label, annotate, delete,
//! get -w, and auth can-i with impersonation. Outputs are asserted, not just exit codes.
//!
//! kubectl comes from `$KUBECTL` or `PATH` (scripts/test.sh installs it when missing). Without it the test says
//! so and returns, unless `PODID_REQUIRE_CLIENTS=1` (CI), where a missing kubectl is a failure.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use kube_sim::testkit::Kubectl;
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

fn manifest() -> String {
    let mut y = podid_k8s::crds_yaml();
    y.push_str(&format!(
        r#"---
apiVersion: v1
kind: Namespace
metadata:
  name: my-app
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: workload
  namespace: my-app
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata:
  name: demo-identity
  namespace: my-app
spec:
  type: 0
  resourceID: /subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo
  clientID: {CLIENT_ID}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentityBinding
metadata:
  name: demo-identity-binding
  namespace: my-app
spec:
  azureIdentity: demo-identity
  selector: demo
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: use-demo-identity
rules:
- apiGroups: ["cid.wi.aks.azure.com"]
  resources: ["{CLIENT_ID}"]
  verbs: ["use-managed-identity"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: workload-uses-demo-identity
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: use-demo-identity
subjects:
- kind: ServiceAccount
  name: workload
  namespace: my-app
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: read-configmaps
  namespace: my-app
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: workload-reads-configmaps
  namespace: my-app
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: read-configmaps
subjects:
- kind: ServiceAccount
  name: workload
  namespace: my-app
"#
    ));
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_kube_sim() {
    let Some(bin) = Kubectl::find("kubectl conformance test") else {
        return;
    };
    let sim = common::start().await;
    let k = Kubectl {
        bin,
        kubeconfig: sim.handle.kubeconfig.clone().expect("kubeconfig"),
        home: sim.dir.path().to_path_buf(),
    };
    let k = std::sync::Arc::new(k);
    let kk = k.clone();
    tokio::task::spawn_blocking(move || scenario(&kk))
        .await
        .expect("scenario");
    sim.handle.shutdown().await;
}

fn scenario(k: &Kubectl) {
    let version = k.ok(&["version", "-o", "json"], None);
    assert!(
        version.contains("\"minor\": \"33\""),
        "server version: {version}"
    );

    // One multi-document apply. Like a real cluster, the custom resources in the same file as their CRDs fail on
    // the first pass (kubectl maps every object before creating any); a second apply completes the set.
    let first = k.run(&["apply", "-f", "-"], Some(&manifest()));
    assert!(first.stdout.contains("customresourcedefinition.apiextensions.k8s.io/azureidentities.aadpodidentity.k8s.io created"), "{}", first.stdout);
    assert!(
        first.stdout.contains("namespace/my-app created"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains(
            "clusterrolebinding.rbac.authorization.k8s.io/workload-uses-demo-identity created"
        ),
        "{}",
        first.stdout
    );
    if !first.ok {
        assert!(
            first.stderr.contains("ensure CRDs are installed first"),
            "unexpected apply error: {}",
            first.stderr
        );
    }
    let second = k.run(&["apply", "-f", "-"], Some(&manifest()));
    assert!(
        second.ok,
        "second apply failed: {}\n{}",
        second.stdout, second.stderr
    );
    assert!(
        second
            .stdout
            .contains("azureidentity.aadpodidentity.k8s.io/demo-identity"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("namespace/my-app unchanged"),
        "{}",
        second.stdout
    );

    // get: table output with the CRD's printer columns.
    let table = k.ok(&["get", "azureidentities", "-n", "my-app"], None);
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "TYPE", "CLIENTID", "AGE"] {
        assert!(header.contains(col), "header {header:?} lacks {col}");
    }
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("demo-identity") && row.contains(CLIENT_ID) && row.contains(" 0 "),
        "row: {row:?}"
    );
    let bindings = k.ok(&["get", "azureidentitybindings", "-n", "my-app"], None);
    assert!(
        bindings.contains("SELECTOR") && bindings.contains("demo-identity-binding"),
        "{bindings}"
    );
    let pods_table = k.run(&["get", "pods", "-n", "my-app"], None);
    assert!(
        pods_table.ok
            && pods_table
                .stderr
                .contains("No resources found in my-app namespace."),
        "{}",
        pods_table.stderr
    );

    // -o json / -o yaml.
    let id = k.json(&["get", "azureidentity", "demo-identity", "-n", "my-app"]);
    assert_eq!(id["spec"]["clientID"], CLIENT_ID);
    assert_eq!(id["spec"]["type"], 0);
    let yaml = k.ok(&["get", "namespace", "my-app", "-o", "yaml"], None);
    assert!(
        yaml.contains("kind: Namespace")
            && yaml.contains("name: my-app")
            && yaml.contains("phase: Active"),
        "{yaml}"
    );

    // label, annotate, -l and --field-selector.
    assert!(
        k.ok(
            &[
                "label",
                "serviceaccount",
                "workload",
                "-n",
                "my-app",
                "team=identity"
            ],
            None
        )
        .contains("serviceaccount/workload labeled")
    );
    assert!(
        k.ok(
            &[
                "annotate",
                "serviceaccount",
                "workload",
                "-n",
                "my-app",
                "owner=platform"
            ],
            None
        )
        .contains("serviceaccount/workload annotated")
    );
    let sa = k.json(&["get", "sa", "workload", "-n", "my-app"]);
    assert_eq!(sa["metadata"]["labels"]["team"], "identity");
    assert_eq!(sa["metadata"]["annotations"]["owner"], "platform");
    let by_label = k.json(&["get", "sa", "-n", "my-app", "-l", "team=identity"]);
    assert_eq!(by_label["items"].as_array().map(Vec::len), Some(1));
    let by_field = k.json(&[
        "get",
        "sa",
        "-n",
        "my-app",
        "--field-selector",
        "metadata.name=default",
    ]);
    let names: Vec<&str> = by_field["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["default"]);
    let bad = k.run(&["get", "pods", "--field-selector", "spec.nope=1"], None);
    assert!(
        !bad.ok && bad.stderr.contains("field label not supported"),
        "{}",
        bad.stderr
    );

    // RBAC through kubectl, impersonating the service account. The custom verb on a client ID: kubectl cannot
    // name an undiscoverable resource in a custom group positionally (it sends the whole argument as the
    // resource), so the rules list and a SubjectAccessReview are how users check it.
    let sa_user = "--as=system:serviceaccount:my-app:workload";
    let rules = k.ok(&["auth", "can-i", "--list", "-n", "my-app", sa_user], None);
    let line = rules
        .lines()
        .find(|l| l.contains(CLIENT_ID))
        .unwrap_or_default();
    assert!(
        line.starts_with(&format!("{CLIENT_ID}.cid.wi.aks.azure.com"))
            && line.contains("[use-managed-identity]"),
        "rules:\n{rules}"
    );
    assert!(
        rules
            .lines()
            .any(|l| l.starts_with("configmaps ") && l.contains("[get list]")),
        "rules:\n{rules}"
    );
    let sar = |resource: &str| {
        format!(
            "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: system:serviceaccount:my-app:workload\n  groups: [system:serviceaccounts, system:serviceaccounts:my-app, system:authenticated]\n  resourceAttributes:\n    group: cid.wi.aks.azure.com\n    resource: {resource}\n    verb: use-managed-identity\n"
        )
    };
    let allowed = k.run(
        &["create", "-f", "-", "-o", "jsonpath={.status.allowed}"],
        Some(&sar(CLIENT_ID)),
    );
    assert_eq!(allowed.stdout.trim(), "true", "{}", allowed.stderr);
    let denied = k.run(
        &["create", "-f", "-", "-o", "jsonpath={.status.allowed}"],
        Some(&sar("99999999-0000-0000-0000-000000000000")),
    );
    assert_eq!(denied.stdout.trim(), "false", "{}", denied.stderr);
    let yes = k.run(
        &[
            "auth",
            "can-i",
            "get",
            "configmaps",
            "-n",
            "my-app",
            sa_user,
        ],
        None,
    );
    assert_eq!(
        yes.stdout.trim(),
        "yes",
        "can-i: {} {}",
        yes.stdout,
        yes.stderr
    );
    let no_pods = k.run(
        &["auth", "can-i", "list", "pods", "-n", "my-app", sa_user],
        None,
    );
    assert_eq!(no_pods.stdout.trim(), "no");
    assert!(!no_pods.ok);

    // get -w sees a change made while it watches.
    let mut watch = k
        .cmd(&[
            "get",
            "configmaps",
            "-n",
            "my-app",
            "-w",
            "--request-timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the initial listing (kube-root-ca.crt) before changing anything.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("kube-root-ca.crt"))
    {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    k.ok(
        &[
            "create",
            "configmap",
            "watched-change",
            "-n",
            "my-app",
            "--from-literal=a=b",
        ],
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !seen.iter().any(|l| l.contains("watched-change")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        seen.iter().any(|l| l.contains("watched-change")),
        "get -w did not show the change: {seen:?}"
    );

    // delete.
    assert!(
        k.ok(
            &[
                "delete",
                "azureidentitybinding",
                "demo-identity-binding",
                "-n",
                "my-app"
            ],
            None
        )
        .contains("deleted")
    );
    let gone = k.run(
        &[
            "get",
            "azureidentitybinding",
            "demo-identity-binding",
            "-n",
            "my-app",
        ],
        None,
    );
    assert!(
        !gone.ok && gone.stderr.contains("NotFound") && gone.stderr.contains("not found"),
        "{}",
        gone.stderr
    );
    assert!(
        k.ok(&["delete", "namespace", "my-app"], None)
            .contains("namespace \"my-app\" deleted")
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = k.run(&["get", "namespace", "my-app"], None);
        if !o.ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "namespace my-app never went away"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// kubectl's own view of issue 14's fixes: `describe` of a pod with a projected token volume (it dereferences
/// `expirationSeconds`), the server-side Strict validation kubectl asks for, and a Service's defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_apiserver_defaults_and_validation() {
    let sim = common::start().await;
    let Some(k) = common::kubectl(&sim, "kubectl fidelity test") else {
        return;
    };
    let k = std::sync::Arc::new(k);
    let kk = k.clone();
    tokio::task::spawn_blocking(move || {
        let pod = r#"
apiVersion: v1
kind: Pod
metadata:
  name: token-reader
spec:
  containers:
  - name: app
    image: busybox
  volumes:
  - name: azure-identity-token
    projected:
      sources:
      - serviceAccountToken:
          path: azure-identity-token
          audience: api://AzureADTokenExchange
"#;
        kk.ok(&["apply", "-f", "-"], Some(pod));
        let described = kk.ok(&["describe", "pod", "token-reader"], None);
        assert!(
            described.contains("TokenExpirationSeconds:  3600"),
            "{described}"
        );
        let typo = pod.replace("image: busybox", "image: busybox\n    imagePullPolicyy: Always");
        let refused = kk.run(&["apply", "-f", "-"], Some(&typo.replace("token-reader", "typo")));
        assert!(!refused.ok);
        assert!(
            refused
                .stderr
                .contains("strict decoding error: unknown field \"spec.containers[0].imagePullPolicyy\""),
            "{}",
            refused.stderr
        );
        let svc = kk.run(&["create", "service", "clusterip", "web", "--tcp=80:8080"], None);
        assert!(svc.ok, "{}", svc.stderr);
        let got = kk.json(&["get", "service", "web", "-o", "json"]);
        assert_eq!(got["spec"]["type"], "ClusterIP");
        assert_eq!(got["spec"]["sessionAffinity"], "None");
        assert!(got["spec"]["clusterIP"].as_str().is_some_and(|ip| ip.starts_with("10.0.0.")));
        let no_verbs = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n";
        let refused = kk.run(&["apply", "-f", "-"], Some(no_verbs));
        assert!(
            refused.stderr.contains("rules[0].verbs: Required value: verbs must contain at least one value"),
            "{}",
            refused.stderr
        );
    })
    .await
    .expect("scenario");
    sim.handle.shutdown().await;
}
