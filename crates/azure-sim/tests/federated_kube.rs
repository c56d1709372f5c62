//! Workload identity federation with a real issuer: kube-sim mints a service-account token (TokenRequest) and
//! serves OIDC discovery anonymously; azure-sim fetches it over HTTPS and exchanges the token.

mod common;

use common::*;
use serde_json::json;

async fn kube() -> (kube_sim::Handle, tempfile::TempDir) {
    install_crypto();
    let dir = tempfile::tempdir().expect("tmp");
    let h = kube_sim::start(kube_sim::Config {
        dir: Some(dir.path().to_path_buf()),
        ..kube_sim::Config::default()
    })
    .await
    .expect("start kube-sim");
    (h, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_sim_service_account_token_exchange() {
    let (k, _kdir) = kube().await;
    let token = sa_token(&k, "default", "workload", "api://AzureADTokenExchange").await;
    let iss = claims(&token)["iss"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(iss.starts_with("https://"), "{iss}");
    let mut world = base_world();
    world["userAssignedIdentities"].as_array_mut().expect("ids").push(json!({
        "name": "id-workload", "resourceGroup": "rg-ids",
        "federatedIdentityCredentials": [{"name": "kube-sim", "issuer": iss, "subject": "system:serviceaccount:default:workload"}]
    }));
    world["roleAssignments"].as_array_mut().expect("ras").push(json!({
        "principalName": "id-workload", "roleDefinitionName": "Key Vault Secrets User",
        "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.KeyVault/vaults/kv1")
    }));
    let kca = k.ca_pem.clone().unwrap_or_default();
    let sim = start_with(world, move |c| c.oidc_trust_pem.push(kca)).await;
    let uami = sim.uami("id-workload");
    let form = |assertion: &str| {
        format!(
            "grant_type=client_credentials&client_id={}&client_assertion_type={}&client_assertion={assertion}&scope={}",
            uami.client_id.clone().unwrap_or_default(),
            azure_sim::form::encode(azure_sim::entra::JWT_BEARER),
            azure_sim::form::encode("https://vault.azure.net/.default")
        )
    };
    let r = sim
        .entra_post(&format!("/{TENANT}/oauth2/v2.0/token"), &form(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let access = r.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(claims(&access)["xms_mirid"], json!(uami.id()));
    // The exchanged token reads the Key Vault secret.
    let kv = sim.handle.vault_url("kv1").expect("kv1 url");
    let r = send(
        &format!("{kv}/secrets/db-password/?api-version=2025-07-01"),
        "GET",
        &[("authorization", &format!("Bearer {access}"))],
        vec![],
        sim.ca(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["value"], json!("s3cr3t"));

    // Another service account of the same cluster does not match the credential's subject.
    let other = sa_token(&k, "default", "intruder", "api://AzureADTokenExchange").await;
    let r = sim
        .entra_post(&format!("/{TENANT}/oauth2/v2.0/token"), &form(&other))
        .await;
    assert_eq!((r.status, r.aadsts()), (401, Some(700213)), "{}", r.text());
    // A token for another audience does not match either.
    let wrong_aud = sa_token(&k, "default", "workload", "https://kubernetes.default.svc").await;
    let r = sim
        .entra_post(&format!("/{TENANT}/oauth2/v2.0/token"), &form(&wrong_aud))
        .await;
    assert_eq!((r.status, r.aadsts()), (401, Some(700212)), "{}", r.text());
    k.shutdown().await;
}
