//! `podid up --demo`: the AKS documentation's pod-managed identity walkthrough, and the demo client that plays
//! the upstream demo image (`mcr.microsoft.com/oss/azure/aad-pod-identity/demo`) as the pod's application.
//!
//! The client is `podid demo-client` (hidden), run as the pod by `podid run`'s machinery. Like the upstream demo it
//! takes `--subscription-id`, `--resource-group` and `--identity-client-id`, and it:
//! 1. acquires a token for ARM from the MSI endpoint with the client ID (`http://169.254.169.254`, redirected to
//!    the node agent; in loopback mode `AZURE_POD_IDENTITY_AUTHORITY_HOST`),
//! 2. lists the VMs (and scale set VMs) of the resource group with it,
//! 3. reads the Key Vault secret with a Key Vault token (when given a vault),
//! 4. GETs the instance metadata,
//!
//! It prints one line per step and a summary. It never prints a token or the secret's value.
//!
//! Network safety: the client calls 169.254.169.254 only from inside a playground pod's network namespace
//! (a positive check against `/run/netns/pgd…`); from anywhere else a request could reach a real cloud's metadata
//! service, so it refuses.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::world;

/// The address pods call.
const METADATA_URL: &str = "http://169.254.169.254";
/// The demo's identity request retries this long (upstream demo: 80 s).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(80);
/// Pause between token attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// ARM API version for the lists.
const COMPUTE_API_VERSION: &str = "2023-09-01";
/// Key Vault API version.
const KEYVAULT_API_VERSION: &str = "7.4";

/// The demo namespace (as in the AKS documentation).
pub const DEMO_NAMESPACE: &str = "my-app";
/// The demo pod.
pub const DEMO_POD: &str = "demo";

/// `podid demo-client` arguments (the upstream demo's flags, plus the vault).
#[derive(clap::Args, Debug, Clone)]
pub struct DemoClientArgs {
    /// Subscription of the resource group to list.
    #[arg(long)]
    pub subscription_id: String,
    /// Resource group whose VMs to list.
    #[arg(long)]
    pub resource_group: String,
    /// Client ID of the identity to request.
    #[arg(long)]
    pub identity_client_id: String,
    /// ARM resource (token audience).
    #[arg(long, default_value = "https://management.azure.com/")]
    pub resource_name: String,
    /// Key Vault to read a secret from (optional).
    #[arg(long)]
    pub keyvault_name: Option<String>,
    /// Secret to read.
    #[arg(long)]
    pub secret_name: Option<String>,
    /// ARM base URL (default: $PODID_ARM_URL, else https://management.azure.com).
    #[arg(long)]
    pub arm_url: Option<String>,
    /// Key Vault base URL (default: $PODID_KEYVAULT_URL, else https://<vault>.vault.azure.net).
    #[arg(long)]
    pub keyvault_url: Option<String>,
}

/// The demo objects of the AKS documentation, for the default world.
pub fn demo_objects() -> Vec<Value> {
    let id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
        world::SUBSCRIPTION_ID,
        world::IDENTITY_RESOURCE_GROUP,
        world::APP_IDENTITY
    );
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}),
        json!({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
               "metadata": {"name": world::APP_IDENTITY, "namespace": DEMO_NAMESPACE},
               "spec": {"type": 0, "resourceID": id, "clientID": world::APP_IDENTITY_CLIENT_ID}}),
        json!({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
               "metadata": {"name": format!("{}-binding", world::APP_IDENTITY), "namespace": DEMO_NAMESPACE},
               "spec": {"azureIdentity": world::APP_IDENTITY, "selector": world::APP_IDENTITY}}),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": DEMO_POD, "namespace": DEMO_NAMESPACE,
                            "labels": {"aadpodidbinding": world::APP_IDENTITY}},
               "spec": {"containers": [{"name": "demo",
                   "image": "mcr.microsoft.com/oss/azure/aad-pod-identity/demo:v1.8.17",
                   "args": [format!("--subscription-id={}", world::SUBSCRIPTION_ID),
                            format!("--resource-group={}", world::NODE_RESOURCE_GROUP),
                            format!("--identity-client-id={}", world::APP_IDENTITY_CLIENT_ID),
                            format!("--keyvault-name={}", world::VAULT),
                            format!("--secret-name={}", world::SECRET_NAME)],
                   "env": [
                       {"name": "MY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                       {"name": "MY_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                       {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}],
                   "nodeSelector": {"kubernetes.io/os": "linux"}}}),
    ]
}

/// Whether this process lives in a playground pod's network namespace: its network namespace is one of the
/// `pgd…` namespaces under `/run/netns` (a positive check: anything else, the host's namespace included, is no).
pub fn in_playground_netns() -> bool {
    let Ok(own) = std::fs::metadata("/proc/self/ns/net") else {
        return false;
    };
    std::fs::read_dir(podid_net::testbed::NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(crate::net::NETNS_PREFIX)
        })
        .filter_map(|e| std::fs::metadata(e.path()).ok())
        .any(|m| m.dev() == own.dev() && m.ino() == own.ino())
}

/// The metadata base URL this process may use.
pub fn metadata_base() -> anyhow::Result<String> {
    if let Ok(v) = std::env::var("AZURE_POD_IDENTITY_AUTHORITY_HOST")
        && !v.is_empty()
    {
        return Ok(v.trim_end_matches('/').to_string());
    }
    anyhow::ensure!(
        in_playground_netns(),
        "refusing to call {METADATA_URL} outside a playground pod's network namespace (from the host's it could \
         reach a real cloud's metadata service): run this as a pod with `podid run`, or set \
         AZURE_POD_IDENTITY_AUTHORITY_HOST"
    );
    Ok(METADATA_URL.to_string())
}

fn http_client() -> anyhow::Result<podid_azure::http::HttpClient> {
    let mut opts = podid_azure::http::HttpOptions {
        timeout: Duration::from_secs(30),
        ..Default::default()
    };
    for var in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"] {
        if let Ok(path) = std::env::var(var)
            && let Ok(pem) = std::fs::read(&path)
        {
            opts.extra_ca_pem.push(pem);
            break;
        }
    }
    Ok(podid_azure::http::HttpClient::new(opts)?)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn imds_token(
    http: &podid_azure::http::HttpClient,
    base: &str,
    resource: &str,
    client_id: &str,
) -> anyhow::Result<(String, Duration)> {
    let url = format!(
        "{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}&client_id={client_id}",
        encode(resource)
    );
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < TOKEN_TIMEOUT {
        match http
            .send(Method::GET, &url, &[("Metadata", "true")], Bytes::new())
            .await
        {
            Ok(r) if r.status == 200 => {
                let v: Value = serde_json::from_slice(&r.body)?;
                let token = v["access_token"].as_str().ok_or_else(|| {
                    anyhow::anyhow!("the MSI endpoint's answer has no access_token")
                })?;
                return Ok((token.to_string(), start.elapsed()));
            }
            Ok(r) => last = format!("HTTP {}: {}", r.status, r.text().trim()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    anyhow::bail!("no token within {TOKEN_TIMEOUT:?}: {last}")
}

async fn get_json(
    http: &podid_azure::http::HttpClient,
    url: &str,
    token: &str,
) -> anyhow::Result<Value> {
    let auth = format!("Bearer {token}");
    let r = http
        .send(Method::GET, url, &[("Authorization", &auth)], Bytes::new())
        .await?;
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    if r.status != 200 {
        let msg = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| r.text());
        anyhow::bail!("HTTP {}: {msg}", r.status);
    }
    Ok(body)
}

/// `podid demo-client`: returns 0 when every step worked.
pub async fn demo_client(args: DemoClientArgs) -> anyhow::Result<i32> {
    let base = metadata_base()?;
    let http = http_client()?;
    let mut failures = Vec::new();
    let who = format!(
        "{}/{}",
        std::env::var("MY_POD_NAMESPACE").unwrap_or_default(),
        std::env::var("MY_POD_NAME").unwrap_or_default()
    );
    println!(
        "demo: running as pod {who} ({})",
        std::env::var("MY_POD_IP").unwrap_or_default()
    );

    // 1. ARM token from the MSI endpoint.
    let endpoint = format!("{base}/metadata/identity/oauth2/token");
    let arm_token = match imds_token(&http, &base, &args.resource_name, &args.identity_client_id)
        .await
    {
        Ok((t, took)) => {
            println!(
                "successfully acquired a token using the MSI, msiEndpoint({endpoint}) clientID({}) in {} ms",
                args.identity_client_id,
                took.as_millis()
            );
            Some(t)
        }
        Err(e) => {
            println!("failed to acquire a token from the MSI endpoint {endpoint}: {e}");
            failures.push("token");
            None
        }
    };

    // 2. List the VMs of the resource group.
    if let Some(token) = &arm_token {
        let arm = args
            .arm_url
            .clone()
            .or_else(|| {
                std::env::var("PODID_ARM_URL")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "https://management.azure.com".into());
        let arm = arm.trim_end_matches('/');
        let rg = format!(
            "{arm}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute",
            args.subscription_id, args.resource_group
        );
        let mut names = Vec::new();
        let mut ok = true;
        match get_json(
            &http,
            &format!("{rg}/virtualMachines?api-version={COMPUTE_API_VERSION}"),
            token,
        )
        .await
        {
            Ok(v) => names.extend(
                v["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x["name"].as_str().map(str::to_string)),
            ),
            Err(e) => {
                println!(
                    "failed to list the VMs of resource group {}: {e}",
                    args.resource_group
                );
                ok = false;
            }
        }
        if ok {
            match get_json(
                &http,
                &format!("{rg}/virtualMachineScaleSets?api-version={COMPUTE_API_VERSION}"),
                token,
            )
            .await
            {
                Ok(v) => {
                    for ss in v["value"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x["name"].as_str())
                    {
                        match get_json(&http, &format!("{rg}/virtualMachineScaleSets/{ss}/virtualMachines?api-version={COMPUTE_API_VERSION}"), token).await {
                            Ok(v) => names.extend(v["value"].as_array().into_iter().flatten().filter_map(|x| x["name"].as_str().map(str::to_string))),
                            Err(e) => {
                                println!("failed to list the VMs of scale set {ss}: {e}");
                                ok = false;
                            }
                        }
                    }
                }
                Err(e) => {
                    println!(
                        "failed to list the scale sets of resource group {}: {e}",
                        args.resource_group
                    );
                    ok = false;
                }
            }
        }
        if ok {
            println!(
                "successfully listed the VMs of resource group {} with it: vm count {} ({})",
                args.resource_group,
                names.len(),
                names.join(", ")
            );
        } else {
            failures.push("ARM");
        }
    }

    // 3. Key Vault.
    if let (Some(vault), Some(secret)) = (&args.keyvault_name, &args.secret_name) {
        let kv = args
            .keyvault_url
            .clone()
            .or_else(|| {
                std::env::var("PODID_KEYVAULT_URL")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| format!("https://{vault}.vault.azure.net"));
        match imds_token(
            &http,
            &base,
            "https://vault.azure.net",
            &args.identity_client_id,
        )
        .await
        {
            Ok((token, _)) => {
                let url = format!(
                    "{}/secrets/{secret}?api-version={KEYVAULT_API_VERSION}",
                    kv.trim_end_matches('/')
                );
                match get_json(&http, &url, &token).await {
                    Ok(v) => println!(
                        "successfully read secret {secret} from {kv} with a Key Vault token ({} characters; value not shown)",
                        v["value"].as_str().map(str::len).unwrap_or(0)
                    ),
                    Err(e) => {
                        println!("failed to read secret {secret} from {kv}: {e}");
                        failures.push("Key Vault");
                    }
                }
            }
            Err(e) => {
                println!("failed to acquire a Key Vault token: {e}");
                failures.push("Key Vault");
            }
        }
    }

    // 4. Instance metadata.
    let url = format!("{base}/metadata/instance?api-version=2017-08-01");
    match http
        .send(Method::GET, &url, &[("Metadata", "true")], Bytes::new())
        .await
    {
        Ok(r) if r.status == 200 => {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            println!(
                "successfully made GET on instance metadata: name={} location={} vmId={}",
                v.pointer("/compute/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                v.pointer("/compute/location")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                v.pointer("/compute/vmId")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
            );
        }
        Ok(r) => {
            println!(
                "GET on instance metadata: HTTP {}: {}",
                r.status,
                r.text().trim()
            );
            failures.push("instance metadata");
        }
        Err(e) => {
            println!("GET on instance metadata failed: {e}");
            failures.push("instance metadata");
        }
    }

    if failures.is_empty() {
        println!(
            "demo summary: OK: the pod got its own identity's tokens from the instance metadata endpoint and used them (ARM, Key Vault), and read instance metadata"
        );
        Ok(0)
    } else {
        println!("demo summary: FAILED: {}", failures.join(", "));
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_objects_follow_the_aks_walkthrough() {
        let objs = demo_objects();
        assert_eq!(objs.len(), 4);
        assert_eq!(objs[1]["spec"]["clientID"], world::APP_IDENTITY_CLIENT_ID);
        assert_eq!(objs[2]["spec"]["selector"], world::APP_IDENTITY);
        assert_eq!(
            objs[3]["metadata"]["labels"]["aadpodidbinding"],
            world::APP_IDENTITY
        );
    }

    #[test]
    fn the_test_process_lives_in_the_host_namespace_so_metadata_is_refused() {
        // Tests run in the host namespace: without an explicit endpoint the client must refuse.
        if std::env::var_os("AZURE_POD_IDENTITY_AUTHORITY_HOST").is_none() {
            assert!(!in_playground_netns());
            assert!(
                metadata_base()
                    .unwrap_err()
                    .to_string()
                    .contains("refusing")
            );
        }
    }
}
