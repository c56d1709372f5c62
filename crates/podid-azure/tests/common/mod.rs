//! Shared fixtures: an azure-sim per test on random loopback ports, cloud configs and an AzureStackCloud
//! environment file pointing at it, a control-API helper, and test certificates.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use podid_azure::*;
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
pub const NODE_RG: &str = "rg-nodes";
pub const CONTROLLER_SECRET: &str = "controller-secret-value";
pub const VMC_ONLY_SECRET: &str = "vmc-only-secret-value";
pub const NOBODY_SECRET: &str = "nobody-secret-value";
pub const VMSS: &str = "pool-vmss";
pub const VMSS_NODE: &str = "pool-vmss000000";
pub const VM: &str = "vm-0";

/// A test certificate: PEM certificate, PKCS#8 key PEM, PKCS#1 key PEM.
pub struct TestCert {
    pub cert_pem: String,
    pub pkcs8_pem: String,
    pub pkcs1_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER TLV: (tag, contents, rest).
fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let first = input[1];
    let (len, rest) = if first < 0x80 {
        (first as usize, &input[2..])
    } else {
        let n = (first & 0x7f) as usize;
        let mut len = 0usize;
        for &b in &input[2..2 + n] {
            len = len * 256 + b as usize;
        }
        (len, &input[2 + n..])
    };
    (tag, &rest[..len], &rest[len..])
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Vec<u8> {
    let (_, info, _) = tlv(pkcs8);
    let (_, _version, rest) = tlv(info);
    let (_, _alg, rest) = tlv(rest);
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "PKCS#8 privateKey OCTET STRING");
    key.to_vec()
}

pub fn test_cert(cn: &str) -> TestCert {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
    let cert = params.self_signed(&kp).expect("self-signed");
    let pkcs8 = kp.serialize_der();
    TestCert {
        cert_pem: cert.pem(),
        pkcs8_pem: pem("PRIVATE KEY", &pkcs8),
        pkcs1_pem: pem("RSA PRIVATE KEY", &pkcs8_to_pkcs1(&pkcs8)),
    }
}

/// The test world: a scale set with the kubelet identity, a system-assigned VM, identities, apps.
pub fn world(cert_pem: &str) -> Value {
    let rg = |name: &str| format!("/subscriptions/{SUB}/resourceGroups/{name}");
    let uami = |name: &str| {
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        )
    };
    json!({
        "tenants": [{"id": TENANT, "domains": ["contoso.onmicrosoft.com"]}],
        "subscriptions": [{"id": SUB, "tenantId": TENANT}],
        "resourceGroups": [
            {"name": NODE_RG, "location": "westeurope"},
            {"name": "rg-ids", "location": "westeurope"}
        ],
        "userAssignedIdentities": [
            {"name": "kubelet", "resourceGroup": NODE_RG},
            {"name": "id-web", "resourceGroup": "rg-ids"},
            {"name": "id-job", "resourceGroup": "rg-ids"},
            {"name": "id-locked", "resourceGroup": "rg-ids"}
        ],
        "virtualMachines": [
            {"name": VM, "resourceGroup": NODE_RG, "identity": {"type": "SystemAssigned"}}
        ],
        "virtualMachineScaleSets": [
            {"name": VMSS, "resourceGroup": NODE_RG, "identity": {"userAssignedIdentities": ["kubelet"]}, "instances": [{}]}
        ],
        "applications": [
            {"displayName": "controller", "secrets": [{"value": CONTROLLER_SECRET}]},
            {"displayName": "cert-app", "certificates": [{"pem": cert_pem}]},
            {"displayName": "vmc-only", "secrets": [{"value": VMC_ONLY_SECRET}]},
            {"displayName": "nobody", "secrets": [{"value": NOBODY_SECRET}]}
        ],
        "roleAssignments": [
            {"principalName": "controller", "roleDefinitionName": "Virtual Machine Contributor", "scope": rg(NODE_RG)},
            {"principalName": "controller", "roleDefinitionName": "Managed Identity Operator", "scope": uami("id-web")},
            {"principalName": "controller", "roleDefinitionName": "Managed Identity Operator", "scope": uami("id-job")},
            {"principalName": "cert-app", "roleDefinitionName": "Virtual Machine Contributor", "scope": rg(NODE_RG)},
            {"principalName": "kubelet", "roleDefinitionName": "Virtual Machine Contributor", "scope": rg(NODE_RG)},
            {"principalName": "kubelet", "roleDefinitionName": "Managed Identity Operator", "scope": rg("rg-ids")},
            {"principalName": "vmc-only", "roleDefinitionName": "Virtual Machine Contributor", "scope": rg(NODE_RG)}
        ]
    })
}

/// A running simulator plus what a controller needs to reach it.
pub struct Sim {
    pub handle: azure_sim::Handle,
    pub dir: tempfile::TempDir,
    pub env: Environment,
    pub http: HttpClient,
    pub cert: TestCert,
}

pub async fn start() -> Sim {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = test_cert("cert-app");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = world(&cert.cert_pem).to_string();
    let config = azure_sim::Config::from_text(&text, dir.path()).expect("world");
    let handle = azure_sim::start(config).await.expect("start azure-sim");
    let env_file = dir.path().join("azure-env.json");
    std::fs::write(
        &env_file,
        json!({
            "name": "AzureSim",
            "resourceManagerEndpoint": handle.arm_url,
            "activeDirectoryEndpoint": handle.entra_url,
            "tokenAudience": "https://management.azure.com/",
            "serviceManagementEndpoint": "https://management.core.windows.net/"
        })
        .to_string(),
    )
    .expect("env file");
    let path = env_file.display().to_string();
    let env = Environment::from_name("AzureStackCloud", |k| {
        (k == ENVIRONMENT_FILEPATH_VAR).then(|| path.clone())
    })
    .expect("environment");
    let http = HttpClient::new(HttpOptions {
        extra_ca_pem: vec![handle.ca_pem.as_bytes().to_vec()],
        user_agent: "podid-azure-tests".into(),
        timeout: Duration::from_secs(10),
        ..HttpOptions::default()
    })
    .expect("http client");
    Sim {
        handle,
        dir,
        env,
        http,
        cert,
    }
}

impl Sim {
    pub fn app_id(&self, name: &str) -> String {
        self.handle
            .sim
            .state
            .world
            .read()
            .world
            .applications
            .iter()
            .find(|a| a.display_name == name)
            .and_then(|a| a.app_id.clone())
            .unwrap_or_else(|| panic!("no app {name}"))
    }

    pub fn uami(&self, name: &str) -> azure_sim::world::UserAssignedIdentity {
        self.handle
            .sim
            .state
            .world
            .read()
            .world
            .user_assigned_identities
            .iter()
            .find(|u| u.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no identity {name}"))
    }

    pub fn imds(&self, node: &str) -> String {
        self.handle
            .imds_url(node)
            .unwrap_or_else(|| panic!("no IMDS for {node}"))
    }

    /// The cloud config of a service principal with a secret.
    pub fn secret_config(&self, app: &str, secret: &str) -> CloudConfig {
        CloudConfig {
            cloud: "AzureStackCloud".into(),
            tenant_id: TENANT.into(),
            aad_client_id: self.app_id(app),
            aad_client_secret: secret.into(),
            subscription_id: SUB.into(),
            resource_group: NODE_RG.into(),
            vm_type: "vmss".into(),
            ..CloudConfig::default()
        }
    }

    /// The cloud config of a managed identity (`client_id` empty = system-assigned).
    pub fn msi_config(&self, client_id: &str) -> CloudConfig {
        CloudConfig {
            cloud: "AzureStackCloud".into(),
            tenant_id: TENANT.into(),
            aad_client_id: "msi".into(),
            aad_client_secret: "msi".into(),
            subscription_id: SUB.into(),
            resource_group: NODE_RG.into(),
            use_managed_identity_extension: true,
            user_assigned_identity_id: client_id.into(),
            ..CloudConfig::default()
        }
    }

    pub fn token_options() -> TokenOptions {
        TokenOptions {
            retry_attempts: 3,
            retry_base_delay: Duration::from_millis(20),
            ..TokenOptions::default()
        }
    }

    pub fn tokens(&self, cfg: &CloudConfig, imds: &str) -> TokenSource {
        TokenSource::with_options(
            cfg,
            &self.env,
            self.http.clone(),
            imds,
            Sim::token_options(),
        )
        .expect("token source")
    }

    pub fn compute_options() -> ComputeOptions {
        ComputeOptions {
            poll_interval: Duration::from_millis(200),
            retry_base_delay: Duration::from_millis(20),
            ..ComputeOptions::default()
        }
    }

    /// A compute client authenticating as the controller app (secret).
    pub fn controller(&self) -> ComputeClient {
        self.compute_as("controller", CONTROLLER_SECRET)
    }

    pub fn compute_as(&self, app: &str, secret: &str) -> ComputeClient {
        let tokens = self.tokens(&self.secret_config(app, secret), "http://127.0.0.1:9");
        ComputeClient::new(
            self.env.clone(),
            tokens,
            self.http.clone(),
            Sim::compute_options(),
        )
    }

    /// A control-API request (plain HTTP on loopback) through the crate's own client.
    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let m = ::http::Method::from_bytes(method.as_bytes()).expect("method");
        let r = self
            .http
            .send(
                m,
                &format!("{}{path}", self.handle.control_url),
                &[("content-type", "application/json")],
                body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
            )
            .await
            .expect("control API");
        assert!(
            r.status < 300,
            "control {method} {path}: {} {}",
            r.status,
            r.text()
        );
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    }

    /// Requests a family has answered (`entra`, `arm`, `imds`).
    pub async fn count(&self, family: &str) -> u64 {
        self.control("GET", "/counters", None).await[family]["total"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Requests a family answered with one status.
    pub async fn count_status(&self, family: &str, status: u16) -> u64 {
        self.control("GET", "/counters", None).await[family]["byStatus"][status.to_string()]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn fault(&self, family: &str, fault: Value) {
        self.control("PUT", &format!("/faults/{family}"), Some(fault))
            .await;
    }

    pub async fn settings(&self, patch: Value) {
        self.control("PATCH", "/settings", Some(patch)).await;
    }
}

pub fn vmss() -> ComputeRef {
    ComputeRef::vmss(SUB, NODE_RG, VMSS)
}

pub fn vm() -> ComputeRef {
    ComputeRef::vm(SUB, NODE_RG, VM)
}

/// Whether a list of resource IDs holds `id` (ARM IDs compare case-insensitively).
pub fn has_id(ids: &[String], id: &str) -> bool {
    ids.iter().any(|i| i.eq_ignore_ascii_case(id))
}
