//! ARM over real HTTPS: identity PATCH/PUT reflected in IMDS, the per-request identity limit, RBAC, long-running
//! operations, listings, federated identity credentials, and error bodies.

mod common;

use std::time::Duration;

use common::*;
use kube_sim::testkit::eventually;
use serde_json::{Map, Value, json};

const API: &str = "api-version=2019-12-01";

fn vmss_path() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachineScaleSets/aks-pool-vmss?{API}"
    )
}

fn vm_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachines/{name}?{API}"
    )
}

async fn arm_token(sim: &TestSim, app: &str, secret: &str) -> String {
    sim.secret_token(app, secret, "https://management.azure.com/.default")
        .await
}

async fn imds_status(sim: &TestSim, node: &str, client_id: &str) -> u16 {
    sim.imds_token(
        node,
        &format!("api-version=2018-02-01&resource=https://vault.azure.net&client_id={client_id}"),
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmss_patch_add_then_remove_shows_in_imds() {
    let sim = start().await;
    let tok = arm_token(&sim, "controller", CONTROLLER_SECRET).await;
    let web = sim.uami("id-web");
    let job = sim.uami("id-job");
    let web_cid = web.client_id.clone().unwrap_or_default();
    let job_cid = job.client_id.clone().unwrap_or_default();
    let nodes = ["aks-pool-vmss000000", "aks-pool-vmss000001"];
    for n in nodes {
        assert_eq!(imds_status(&sim, n, &web_cid).await, 400);
    }
    // Add id-web (lowercased, as MIC sends it).
    let body = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {web.id().to_lowercase(): {}}}});
    let r = sim.arm("PATCH", &vmss_path(), &tok, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("azure-asyncoperation").is_some_and(|u| {
        u.contains("/providers/Microsoft.Compute/locations/westeurope/operations/")
    }));
    assert_eq!(r.json()["identity"]["type"], json!("UserAssigned"));
    for n in nodes {
        assert_eq!(imds_status(&sim, n, &web_cid).await, 200, "{n}");
    }
    // Add id-job, keeping id-web (merge).
    let body =
        json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {job.id(): {}}}});
    let r = sim.arm("PATCH", &vmss_path(), &tok, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uai = r.json()["identity"]["userAssignedIdentities"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(uai.len(), 2);
    assert!(uai.values().any(|v| v["clientId"] == json!(web_cid)));
    // Remove id-web with null.
    let body =
        json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {web.id(): null}}});
    let r = sim.arm("PATCH", &vmss_path(), &tok, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    for n in nodes {
        assert_eq!(imds_status(&sim, n, &web_cid).await, 400, "{n}");
        assert_eq!(imds_status(&sim, n, &job_cid).await, 200, "{n}");
    }
    // Removing the last identity by switching the type off.
    let r = sim
        .arm(
            "PATCH",
            &vmss_path(),
            &tok,
            Some(json!({"identity": {"type": "None"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("identity").is_none());
    assert_eq!(imds_status(&sim, nodes[0], &job_cid).await, 400);
    // A VM too, with system-assigned kept alongside.
    let body = json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {web.id(): {}}}});
    let r = sim.arm("PATCH", &vm_path("vm-sys"), &tok, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["identity"]["type"],
        json!("SystemAssigned, UserAssigned")
    );
    assert_eq!(imds_status(&sim, "vm-sys", &web_cid).await, 200);
    // Without a selector the system-assigned identity still wins.
    let r = sim
        .imds_token(
            "vm-sys",
            "api-version=2018-02-01&resource=https://vault.azure.net",
        )
        .await;
    assert_ne!(r.json()["client_id"], json!(web_cid));
    // The world follows ARM.
    let w = sim.control("GET", "/world", None).await.json();
    let vm = w["virtualMachines"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["name"] == json!("vm-sys")).cloned())
        .unwrap_or_default();
    assert_eq!(vm["identity"]["userAssignedIdentities"], json!([web.id()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_identity_limit() {
    let sim = start().await;
    let tok = arm_token(&sim, "controller", CONTROLLER_SECRET).await;
    let mut m = Map::new();
    for i in 0..151 {
        m.insert(format!("/subscriptions/{SUB}/resourcegroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{i}"), json!({}));
    }
    let r = sim
        .arm(
            "PATCH",
            &vmss_path(),
            &tok,
            Some(json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": m}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "FailedIdentityOperation");
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        msg.contains(
            "User Assigned Identities Number '151' Assign exceed limit '150' in one request."
        ),
        "{msg}"
    );
    // 150 is fine as far as the limit goes (these identities do not exist, which ARM reports next).
    m.remove(&format!("/subscriptions/{SUB}/resourcegroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-0"));
    let r = sim
        .arm(
            "PATCH",
            &vmss_path(),
            &tok,
            Some(json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": m}})),
        )
        .await;
    assert_eq!(r.code(), "FailedIdentityOperation");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("NotFound")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_failures() {
    let sim = start().await;
    let reader = arm_token(&sim, "reader", READER_SECRET).await;
    let reader_app = sim.app_id("reader");
    let r = sim.arm("GET", &vm_path("vm-sys"), &reader, None).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "AuthorizationFailed".to_string()),
        "{}",
        r.text()
    );
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        msg.starts_with(&format!("The client '{reader_app}' with object id '")),
        "{msg}"
    );
    assert!(msg.contains("does not have authorization to perform action 'Microsoft.Compute/virtualMachines/read' over scope"), "{msg}");
    let web = sim.uami("id-web");
    let body =
        json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {web.id(): {}}}});
    let r = sim.arm("PATCH", &vmss_path(), &reader, Some(body)).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "AuthorizationFailed".to_string())
    );
    // The controller may write the scale set but is not Managed Identity Operator on id-extra.
    let ctl = arm_token(&sim, "controller", CONTROLLER_SECRET).await;
    let extra = sim.uami("id-extra");
    let body = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {extra.id(): {}, web.id(): {}}}});
    let r = sim.arm("PATCH", &vmss_path(), &ctl, Some(body)).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "LinkedAuthorizationFailed".to_string()),
        "{}",
        r.text()
    );
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        msg.contains(&extra.id()) && !msg.contains(&web.id()),
        "{msg}"
    );
    assert!(msg.contains("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"));
    // Nothing changed.
    let r = sim.arm("GET", &vmss_path(), &ctl, None).await;
    assert!(r.json().get("identity").is_none(), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_patch_is_polled() {
    let sim = start().await;
    let r = sim
        .control(
            "PATCH",
            "/settings",
            Some(json!({"lroVirtualMachineScaleSetsMs": 700, "lroRetryAfterSecs": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tok = arm_token(&sim, "controller", CONTROLLER_SECRET).await;
    let web = sim.uami("id-web");
    let cid = web.client_id.clone().unwrap_or_default();
    let body =
        json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {web.id(): {}}}});
    let r = sim.arm("PATCH", &vmss_path(), &tok, Some(body)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["properties"]["provisioningState"],
        json!("Updating")
    );
    let op_url = r.header("azure-asyncoperation").expect("async header");
    // Not yet visible to the machines; ARM shows the new model as Updating.
    assert_eq!(imds_status(&sim, "aks-pool-vmss000000", &cid).await, 400);
    let g = sim.arm("GET", &vmss_path(), &tok, None).await.json();
    assert_eq!(g["properties"]["provisioningState"], json!("Updating"));
    let poll = |url: String| {
        let (tok, ca) = (tok.clone(), sim.ca().to_string());
        async move {
            send(
                &url,
                "GET",
                &[("authorization", &format!("Bearer {tok}"))],
                vec![],
                &ca,
            )
            .await
        }
    };
    let first = poll(op_url.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["status"], json!("InProgress"));
    assert_eq!(first.header("retry-after").as_deref(), Some("1"));
    let done = eventually(Duration::from_secs(5), || {
        let p = poll(op_url.clone());
        async move { p.await.json()["status"] == json!("Succeeded") }
    })
    .await;
    assert!(done);
    assert!(poll(op_url).await.json()["endTime"].is_string());
    assert_eq!(imds_status(&sim, "aks-pool-vmss000000", &cid).await, 200);
    let g = sim.arm("GET", &vmss_path(), &tok, None).await.json();
    assert_eq!(g["properties"]["provisioningState"], json!("Succeeded"));
    // Unknown operation.
    let r = sim.arm("GET", &format!("/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/nope?{API}"), &tok, None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_request_errors() {
    let mut world = base_world();
    world["applications"].as_array_mut().expect("apps").push(
        json!({"displayName": "foreign", "tenantId": OTHER_TENANT, "secrets": [{"value": "f"}]}),
    );
    let sim = start_with(world, |_| {}).await;
    let ctl = arm_token(&sim, "controller", CONTROLLER_SECRET).await;
    let r = send(
        &format!("{}{}", sim.handle.arm_url, vm_path("vm-sys")),
        "GET",
        &[],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (401, "AuthenticationFailed".to_string())
    );
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer authorization_uri="))
    );
    let r = sim.arm("GET", &vm_path("vm-sys"), "garbage", None).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "InvalidAuthenticationToken".to_string())
    );
    let vault_tok = sim
        .secret_token(
            "controller",
            CONTROLLER_SECRET,
            "https://vault.azure.net/.default",
        )
        .await;
    let r = sim.arm("GET", &vm_path("vm-sys"), &vault_tok, None).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "InvalidAuthenticationTokenAudience".to_string())
    );
    let foreign_app = sim.app_id("foreign");
    let r = sim
        .entra_post(&format!("/{OTHER_TENANT}/oauth2/v2.0/token"), &format!("grant_type=client_credentials&client_id={foreign_app}&client_secret=f&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"))
        .await;
    let foreign = r.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = sim.arm("GET", &vm_path("vm-sys"), &foreign, None).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "InvalidAuthenticationTokenTenant".to_string()),
        "{}",
        r.text()
    );
    // An expired token signed by the simulator's own key.
    let c = claims(&ctl);
    let mut expired = c.clone();
    expired["exp"] = json!(now() - 10);
    expired["nbf"] = json!(now() - 4000);
    let t = sim.handle.sim.key.sign(&expired);
    let r = sim.arm("GET", &vm_path("vm-sys"), &t, None).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "ExpiredAuthenticationToken".to_string()),
        "{}",
        r.text()
    );
    let table: Vec<(&str, String, Option<Value>, u16, &str)> = vec![
        (
            "GET",
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachines/vm-sys"
            ),
            None,
            400,
            "MissingApiVersionParameter",
        ),
        (
            "GET",
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachines/vm-sys?api-version=someday"
            ),
            None,
            400,
            "InvalidApiVersionParameter",
        ),
        (
            "GET",
            format!(
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/x?{API}"
            ),
            None,
            404,
            "SubscriptionNotFound",
        ),
        ("GET", vm_path("ghost"), None, 404, "ResourceNotFound"),
        (
            "GET",
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Web/sites/x?{API}"
            ),
            None,
            400,
            "NoRegisteredProviderFound",
        ),
        ("DELETE", vm_path("vm-sys"), None, 405, "MethodNotAllowed"),
        (
            "PATCH",
            vm_path("ghost"),
            Some(json!({})),
            404,
            "ResourceNotFound",
        ),
        (
            "PATCH",
            vm_path("vm-sys"),
            Some(json!({"identity": {"type": "Everything"}})),
            400,
            "InvalidParameter",
        ),
        (
            "PATCH",
            vm_path("vm-sys"),
            Some(
                json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {"bogus": {}}}}),
            ),
            400,
            "LinkedInvalidPropertyId",
        ),
        (
            "PATCH",
            vm_path("vm-sys"),
            Some(json!({"tags": {"a": 1}})),
            400,
            "InvalidRequestContent",
        ),
    ];
    for (m, p, b, status, code) in table {
        let r = sim.arm(m, &p, &ctl, b).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_string()),
            "{m} {p}: {}",
            r.text()
        );
    }
    // Invalid JSON bodies.
    for body in [&b"{not json"[..], b"[1,2]", b""] {
        let r = send(
            &format!("{}{}", sim.handle.arm_url, vm_path("vm-sys")),
            "PATCH",
            &[
                ("authorization", &format!("Bearer {ctl}")),
                ("content-type", "application/json"),
            ],
            body.to_vec(),
            sim.ca(),
        )
        .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "InvalidRequestContent".to_string()),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // Unknown resource group (RBAC allows the scope below the subscription only where assigned: use a scope
    // the controller holds a role on).
    let r = sim.arm("GET", &format!("/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachines?{API}"), &ctl, None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_and_identities() {
    let sim = start().await;
    let tok = arm_token(&sim, "controller", CONTROLLER_SECRET).await;
    let r = sim.arm("GET", &format!("/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachines?{API}"), &tok, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = r.json()["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["vm-sys", "vm-multi", "vm-none"]);
    let r = sim.arm("GET", &format!("/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachineScaleSets/aks-pool-vmss/virtualMachines?{API}"), &tok, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["value"][1]["instanceId"], json!("1"));
    assert_eq!(
        v["value"][1]["properties"]["osProfile"]["computerName"],
        json!("aks-pool-vmss000001")
    );
    let r = sim.arm("GET", &format!("/subscriptions/{SUB}/resourceGroups/rg-nodes/providers/Microsoft.Compute/virtualMachineScaleSets/aks-pool-vmss/virtualMachines/1?{API}"), &tok, None).await;
    assert_eq!(r.json()["name"], json!("aks-pool-vmss_1"));
    let r = sim.arm("GET", &vm_path("vm-multi"), &tok, None).await;
    let uai = r.json()["identity"]["userAssignedIdentities"].clone();
    assert_eq!(uai.as_object().map(Map::len), Some(2));
    let web = sim.uami("id-web");
    let r = sim
        .arm(
            "GET",
            &format!("{}?api-version=2023-01-31", web.id()),
            &tok,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["properties"]["clientId"], json!(web.client_id));
    assert_eq!(r.json()["properties"]["tenantId"], json!(TENANT));
    let r = sim
        .arm(
            "GET",
            &format!("/subscriptions/{SUB}/resourceGroups/rg-nodes?api-version=2021-04-01"),
            &tok,
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["location"].clone()),
        (200, json!("westeurope"))
    );
    let r = sim
        .arm(
            "GET",
            &format!("/subscriptions/{SUB}?api-version=2020-01-01"),
            &tok,
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["tenantId"].clone()),
        (200, json!(TENANT))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_identity_credentials() {
    let sim = start().await;
    let tok = arm_token(&sim, "controller", CONTROLLER_SECRET).await;
    let web = sim.uami("id-web");
    let fic = |name: &str| {
        format!(
            "{}/federatedIdentityCredentials/{name}?api-version=2023-01-31",
            web.id()
        )
    };
    let body = |sub: &str| json!({"properties": {"issuer": "https://oidc.example/cluster/", "subject": sub, "audiences": ["api://AzureADTokenExchange"]}});
    let r = sim
        .arm(
            "PUT",
            &fic("first"),
            &tok,
            Some(body("system:serviceaccount:a:b")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["properties"]["subject"],
        json!("system:serviceaccount:a:b")
    );
    let r = sim
        .arm(
            "PUT",
            &fic("first"),
            &tok,
            Some(body("system:serviceaccount:a:c")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = sim.arm("GET", &fic("first"), &tok, None).await;
    assert_eq!(
        r.json()["properties"]["subject"],
        json!("system:serviceaccount:a:c")
    );
    let r = sim.arm("PUT", &fic("x"), &tok, Some(body("s"))).await;
    assert_eq!(r.status, 400);
    let r = sim
        .arm("PUT", &fic("bad%20name!"), &tok, Some(body("s")))
        .await;
    assert_eq!(r.status, 400);
    let r = sim
        .arm(
            "PUT",
            &fic("dup"),
            &tok,
            Some(body("system:serviceaccount:a:c")),
        )
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Issuer and subject combination already exists")
    );
    let r = sim
        .arm(
            "PUT",
            &fic("noaud"),
            &tok,
            Some(json!({"properties": {"issuer": "https://i", "subject": "s", "audiences": []}})),
        )
        .await;
    assert_eq!(r.status, 400);
    for i in 1..20 {
        let r = sim
            .arm(
                "PUT",
                &fic(&format!("fic-{i}")),
                &tok,
                Some(body(&format!("s{i}"))),
            )
            .await;
        assert_eq!(r.status, 201, "{i}: {}", r.text());
    }
    let r = sim
        .arm("PUT", &fic("fic-20"), &tok, Some(body("s20")))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("20")
    );
    let list = sim
        .arm(
            "GET",
            &format!(
                "{}/federatedIdentityCredentials?api-version=2023-01-31",
                web.id()
            ),
            &tok,
            None,
        )
        .await;
    assert_eq!(list.json()["value"].as_array().map(Vec::len), Some(20));
    let r = sim.arm("DELETE", &fic("fic-19"), &tok, None).await;
    assert_eq!(r.status, 200);
    let r = sim.arm("DELETE", &fic("fic-19"), &tok, None).await;
    assert_eq!(r.status, 204);
    // Concurrent writes on one identity conflict.
    sim.control("PATCH", "/settings", Some(json!({"ficWriteMs": 400})))
        .await;
    let (p1, p2) = (fic("c-one"), fic("c-two"));
    let (a, b) = tokio::join!(
        sim.arm("PUT", &p1, &tok, Some(body("c1"))),
        sim.arm("PUT", &p2, &tok, Some(body("c2")))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.text(), b.text());
    let conflict = if a.status == 409 { a } else { b };
    assert_eq!(
        conflict.code(),
        "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
    );
    // A principal without write access.
    let reader = arm_token(&sim, "reader", READER_SECRET).await;
    let r = sim.arm("PUT", &fic("nope"), &reader, Some(body("n"))).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "AuthorizationFailed".to_string())
    );
}
