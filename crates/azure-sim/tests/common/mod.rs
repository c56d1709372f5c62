//! Shared fixtures: a simulator per test on random loopback ports, a raw HTTP(S) client, a fake OIDC issuer.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
pub const CONTROLLER_SECRET: &str = "controller-secret-value";
pub const READER_SECRET: &str = "reader-secret-value";

pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The AADSTS code of an Entra error body.
    pub fn aadsts(&self) -> Option<u64> {
        self.json()["error_codes"][0].as_u64()
    }

    /// `error.code` of an ARM / Key Vault error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// One request on a fresh connection. `sni` overrides the TLS server name (and the Host header).
pub async fn send_with(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    ca_pem: &str,
    sni: Option<&str>,
) -> Result<Reply, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let auth = uri.authority().ok_or("no authority")?.clone();
    let host = auth
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let https = uri.scheme_str() == Some("https");
    let port = auth.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let host_header = match sni {
        Some(n) => format!("{n}:{port}"),
        None => auth.to_string(),
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host_header);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = if https {
        let cfg = sim_tls::client_config(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from(sni.unwrap_or(&host).to_string())
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        let (mut s, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        s.send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?
    } else {
        let (mut s, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        s.send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub async fn send(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    ca_pem: &str,
) -> Reply {
    send_with(url, method, headers, body, ca_pem, None)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// A running simulator for a test.
pub struct TestSim {
    pub handle: azure_sim::Handle,
    pub dir: tempfile::TempDir,
}

impl TestSim {
    pub fn ca(&self) -> &str {
        &self.handle.ca_pem
    }

    pub fn world(&self) -> azure_sim::World {
        self.handle.sim.state.world.read().world.clone()
    }

    pub fn imds(&self, node: &str) -> String {
        self.handle
            .imds_url(node)
            .unwrap_or_else(|| panic!("no IMDS for {node}"))
    }

    pub async fn imds_token(&self, node: &str, query: &str) -> Reply {
        send(
            &format!("{}/metadata/identity/oauth2/token?{query}", self.imds(node)),
            "GET",
            &[("metadata", "true")],
            vec![],
            self.ca(),
        )
        .await
    }

    /// POST a form to an Entra path.
    pub async fn entra_post(&self, path: &str, form: &str) -> Reply {
        send(
            &format!("{}{path}", self.handle.entra_url),
            "POST",
            &[("content-type", "application/x-www-form-urlencoded")],
            form.as_bytes().to_vec(),
            self.ca(),
        )
        .await
    }

    /// A token for an app by client secret (v2 endpoint).
    pub async fn secret_token(&self, app: &str, secret: &str, scope: &str) -> String {
        let app_id = self.app_id(app);
        let r = self
            .entra_post(
                &format!("/{TENANT}/oauth2/v2.0/token"),
                &format!(
                    "grant_type=client_credentials&client_id={app_id}&client_secret={}&scope={}",
                    azure_sim::form::encode(secret),
                    azure_sim::form::encode(scope)
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn app_id(&self, display_name: &str) -> String {
        self.world()
            .applications
            .iter()
            .find(|a| a.display_name == display_name)
            .and_then(|a| a.app_id.clone())
            .unwrap_or_else(|| panic!("no app {display_name}"))
    }

    pub fn uami(&self, name: &str) -> azure_sim::world::UserAssignedIdentity {
        self.world()
            .user_assigned_identities
            .into_iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("no identity {name}"))
    }

    /// An ARM request with a bearer token.
    pub async fn arm(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        send(
            &format!("{}{path}", self.handle.arm_url),
            method,
            &headers,
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            self.ca(),
        )
        .await
    }

    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        send(
            &format!("{}{path}", self.handle.control_url),
            method,
            &[("content-type", "application/json")],
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            self.ca(),
        )
        .await
    }
}

/// The standard test world (JSON) plus extra top-level members.
pub fn base_world() -> Value {
    json!({
        "tenants": [
            {"id": TENANT, "domains": ["contoso.onmicrosoft.com"], "displayName": "Contoso"},
            {"id": OTHER_TENANT, "displayName": "Fabrikam"}
        ],
        "subscriptions": [{"id": SUB, "tenantId": TENANT}],
        "resourceGroups": [
            {"name": "rg-nodes", "subscriptionId": SUB, "location": "westeurope"},
            {"name": "rg-ids", "subscriptionId": SUB, "location": "westeurope"}
        ],
        "userAssignedIdentities": [
            {"name": "id-web", "resourceGroup": "rg-ids"},
            {"name": "id-job", "resourceGroup": "rg-ids"},
            {"name": "id-extra", "resourceGroup": "rg-ids"}
        ],
        "virtualMachines": [
            {"name": "vm-sys", "resourceGroup": "rg-nodes", "privateIp": "10.0.0.4", "identity": {"type": "SystemAssigned"}},
            {"name": "vm-multi", "resourceGroup": "rg-nodes", "identity": {"userAssignedIdentities": ["id-web", "id-job"]}},
            {"name": "vm-none", "resourceGroup": "rg-nodes", "tags": {"env": "test"}}
        ],
        "virtualMachineScaleSets": [
            {"name": "aks-pool-vmss", "resourceGroup": "rg-nodes", "instances": [{}, {}]}
        ],
        "applications": [
            {"displayName": "controller", "tenantId": TENANT, "secrets": [{"value": CONTROLLER_SECRET}]},
            {"displayName": "reader", "tenantId": TENANT, "secrets": [{"value": READER_SECRET}, {"value": "expired-secret", "expiresOn": "2020-01-01T00:00:00Z"}]},
            {"displayName": "api", "tenantId": TENANT, "identifierUris": ["api://contoso-api"], "accessTokenVersion": 2}
        ],
        "roleAssignments": [
            {"principalName": "controller", "roleDefinitionName": "Virtual Machine Contributor", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-nodes")},
            {"principalName": "controller", "roleDefinitionName": "Managed Identity Operator", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-web")},
            {"principalName": "controller", "roleDefinitionName": "Managed Identity Operator", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-job")},
            {"principalName": "controller", "roleDefinitionName": "Managed Identity Contributor", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-ids")},
            {"principalName": "id-web", "roleDefinitionName": "Key Vault Secrets User", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.KeyVault/vaults/kv1")},
            {"principalName": "controller", "roleDefinitionName": "Key Vault Secrets Officer", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-ids")},
            {"principalName": "vm-sys", "roleDefinitionName": "Key Vault Secrets User", "scope": format!("/subscriptions/{SUB}")}
        ],
        "keyVaults": [
            {"name": "kv1", "resourceGroup": "rg-ids", "secrets": [{"name": "db-password", "value": "old-value"}, {"name": "db-password", "value": "s3cr3t"}]},
            {"name": "kv2", "resourceGroup": "rg-ids", "secrets": [{"name": "other", "value": "v2"}]}
        ]
    })
}

pub async fn start_with(world: Value, tweak: impl FnOnce(&mut azure_sim::Config)) -> TestSim {
    install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let w = azure_sim::World::from_value(world)
        .and_then(azure_sim::World::normalize)
        .expect("world");
    let mut config = azure_sim::Config {
        world: w,
        dir: Some(dir.path().to_path_buf()),
        ..azure_sim::Config::default()
    };
    tweak(&mut config);
    let handle = azure_sim::start(config).await.expect("start azure-sim");
    TestSim { handle, dir }
}

pub async fn start() -> TestSim {
    start_with(base_world(), |_| {}).await
}

/// Decode a JWT's claims without verifying.
pub fn claims(token: &str) -> Value {
    azure_sim::jwt::decode(token)
        .map(|d| d.claims)
        .unwrap_or(Value::Null)
}

/// Verify a token against the Entra JWKS published by the simulator.
pub async fn verify_with_jwks(sim: &TestSim, token: &str) -> bool {
    let r = send(
        &format!("{}/common/discovery/v2.0/keys", sim.handle.entra_url),
        "GET",
        &[],
        vec![],
        sim.ca(),
    )
    .await;
    let keys: Vec<azure_sim::jwt::Jwk> =
        serde_json::from_value(r.json()["keys"].clone()).unwrap_or_default();
    let Ok(d) = azure_sim::jwt::decode(token) else {
        return false;
    };
    let kid = d.header_str("kid").unwrap_or("").to_string();
    keys.iter()
        .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
        .any(|k| azure_sim::jwt::verify_jwk(&d, k).is_ok())
}

/// A minimal OIDC issuer over HTTPS with a key the test controls.
pub struct FakeIssuer {
    pub url: String,
    pub ca_pem: String,
    pub key: aws_lc_rs::rsa::KeyPair,
    pub kid: String,
    pub down: Arc<AtomicBool>,
    pub addr: SocketAddr,
}

impl FakeIssuer {
    pub async fn start() -> FakeIssuer {
        install_crypto();
        let ca = sim_tls::Ca::generate("fake issuer CA").expect("ca");
        let cert = ca
            .issue("issuer", &["localhost".into(), "127.0.0.1".into()])
            .expect("cert");
        let tls = sim_tls::server_config(&cert).expect("tls");
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
        let kid = "fake-kid-1".to_string();
        let jwks = json!({"keys": [serde_json::to_value(azure_sim::jwt::rsa_jwk(&key, &kid)).expect("jwk")]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let url = format!("https://127.0.0.1:{}", addr.port());
        let down = Arc::new(AtomicBool::new(false));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let (u2, d2) = (url.clone(), down.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let (url, jwks, down) = (u2.clone(), jwks.clone(), d2.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let (url, jwks, down) = (url.clone(), jwks.clone(), down.clone());
                            async move {
                                let (status, body) = if down.load(Ordering::SeqCst) {
                                    (500, json!({"error": "down"}))
                                } else {
                                    match req.uri().path() {
                                        "/.well-known/openid-configuration" => (
                                            200,
                                            json!({"issuer": url, "jwks_uri": format!("{url}/openid/v1/jwks"), "response_types_supported": ["id_token"], "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}),
                                        ),
                                        "/openid/v1/jwks" => (200, jwks),
                                        _ => (404, json!({})),
                                    }
                                };
                                let mut r =
                                    http::Response::new(Full::new(Bytes::from(body.to_string())));
                                *r.status_mut() = http::StatusCode::from_u16(status)
                                    .unwrap_or(http::StatusCode::OK);
                                Ok::<_, std::convert::Infallible>(r)
                            }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
                });
            }
        });
        FakeIssuer {
            url,
            ca_pem: ca.cert_pem,
            key,
            kid,
            down,
            addr,
        }
    }

    /// Sign claims with this issuer's key (`kid` in the header unless `kid` is None).
    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut h = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(k) = kid {
            h["kid"] = json!(k);
        }
        azure_sim::jwt::sign_rs256(&self.key, &h, claims).expect("sign")
    }

    /// A valid assertion for `sub`.
    pub fn assertion(&self, sub: &str, now: i64) -> String {
        self.sign(
            &json!({"iss": self.url, "sub": sub, "aud": ["api://AzureADTokenExchange"], "iat": now, "nbf": now, "exp": now + 3600}),
            Some(&self.kid),
        )
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Create service account `ns/name` in a kube-sim (if missing) and mint a token for `audience` (TokenRequest).
pub async fn sa_token(k: &kube_sim::Handle, ns: &str, name: &str, audience: &str) -> String {
    let ca = k.ca_pem.clone().unwrap_or_default();
    let auth = format!("Bearer {}", k.admin_token);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}});
    let r = send(
        &format!("{}/api/v1/namespaces/{ns}/serviceaccounts", k.url),
        "POST",
        &headers,
        sa.to_string().into_bytes(),
        &ca,
    )
    .await;
    assert!(
        r.status == 201 || r.status == 409,
        "create SA: {} {}",
        r.status,
        r.text()
    );
    let tr = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": [audience], "expirationSeconds": 3600}});
    let r = send(
        &format!(
            "{}/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
            k.url
        ),
        "POST",
        &headers,
        tr.to_string().into_bytes(),
        &ca,
    )
    .await;
    assert_eq!(r.status, 201, "TokenRequest: {}", r.text());
    r.json()["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
