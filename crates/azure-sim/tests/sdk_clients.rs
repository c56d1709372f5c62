//! Real clients judge us: the official Azure SDKs, unmodified, against azure-sim (and kube-sim for workload
//! identity).
//!
//! The client programs live in `tests/clients/{python,go,node}` at the repository root; each takes a credential
//! kind and an action (`token` or `secret`) and prints one JSON line with the outcome (see their headers). This
//! test starts kube-sim (the service-account token issuer) and azure-sim with a world made for it, writes the
//! token, certificate and CA files, then runs every case as a subprocess whose environment is built from
//! scratch: `PATH`, `HOME` and the SDK's own variables, nothing inherited (this machine's default environment
//! points `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE` and `NODE_EXTRA_CA_CERTS` at the system bundle, which must not
//! leak in). It then checks what the SDK reported: tokens are verified against the simulator's JWKS and their
//! `aud`/`appid`/`oid`/`tid` (and `xms_mirid`) claims against the world, secrets must carry the vault's value,
//! and every failure case must carry the AADSTS code Entra put in its error (the IMDS failure has none: IMDS
//! answers with its own error text, which is checked instead).
//!
//! How each SDK finds the simulator, through its documented configuration only: Entra by `AZURE_AUTHORITY_HOST`
//! (with instance discovery off), Key Vault by its URL (with challenge-resource verification off: the vault is
//! at 127.0.0.1, not under `vault.azure.net`), IMDS by `AZURE_POD_IDENTITY_AUTHORITY_HOST` for Python and
//! JavaScript. azidentity for Go has no IMDS override (it always asks 169.254.169.254), so the Go program gets a
//! transport (`azcore.ClientOptions.Transport`) that dials the node's IMDS listener whenever the SDK dials
//! 169.254.169.254:80, as the DNAT rule on a pod-identity node does; nothing is ever sent to that address.
//!
//! Toolchains: Python runs from the venv at `.venv` (made by `scripts/ensure-clients.sh`), Go is built once per
//! run with `go build` from the module cache (`GOPROXY=off`: the test never downloads), Node runs with
//! `tests/clients/node/node_modules`. A missing toolchain or package set skips that client with
//! `SKIPPED: <client> (<why>)` on stderr, unless `PODID_REQUIRE_CLIENTS=1`, which turns it into a failure.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const NS: &str = "default";
const SA: &str = "web";
const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
const VAULT_AUDIENCE: &str = "https://vault.azure.net";
const NODE: &str = "aks-node-0";
const VAULT: &str = "kv-sdk";
const SECRET_NAME: &str = "db-password";
const SECRET_VALUE: &str = "s3cr3t-read-by-the-official-sdk";
const APP_SECRET: &str = "sdk-app-secret-value";
const UNKNOWN_CLIENT: &str = "00000000-1111-2222-3333-444444444444";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn clients_dir(lang: &str) -> PathBuf {
    repo_root().join("tests/clients").join(lang)
}

/// A client that cannot run here: a failure under `PODID_REQUIRE_CLIENTS=1`, else a skip notice.
fn unavailable(client: &str, why: &str) {
    if std::env::var("PODID_REQUIRE_CLIENTS").as_deref() == Ok("1") {
        panic!(
            "{client} client is required (PODID_REQUIRE_CLIENTS=1) but cannot run: {why}; run `source scripts/ensure-clients.sh && ensure_clients`"
        );
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {client} ({why})");
}

/// `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn base_env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        (
            "HOME".into(),
            std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
        ),
    ]
}

/// Run a program with exactly `env` and capture its output; killed after [`CLIENT_TIMEOUT`]. (std's process
/// API polled from async code: tokio's `process` feature would change the workspace's tokio build.)
async fn run(
    program: &Path,
    args: &[String],
    cwd: &Path,
    env: &[(String, String)],
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{} {args:?} ran longer than {CLIENT_TIMEOUT:?}",
                    program.display()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// The world and the servers.

/// Everything the cases need: both simulators and the files the clients read.
struct Fixture {
    sim: TestSim,
    kube: kube_sim::Handle,
    _kube_dir: tempfile::TempDir,
    files: tempfile::TempDir,
    ca_file: PathBuf,
}

/// Who a token must be for.
#[derive(Clone, Debug)]
struct Principal {
    app_id: String,
    object_id: String,
    mirid: Option<String>,
}

/// A self-signed RSA certificate: (certificate PEM, certificate + PKCS#8 key PEM).
fn app_certificate(name: &str) -> (String, String) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .self_signed(&kp)
        .expect("self-signed");
    let cert_pem = cert.pem();
    let bundle = format!("{cert_pem}{}", kp.serialize_pem());
    (cert_pem, bundle)
}

impl Fixture {
    async fn start() -> Fixture {
        install_crypto();
        let kube_dir = tempfile::tempdir().expect("tmp");
        let kube = kube_sim::start(kube_sim::Config {
            dir: Some(kube_dir.path().to_path_buf()),
            ..kube_sim::Config::default()
        })
        .await
        .expect("start kube-sim");
        let files = tempfile::tempdir().expect("tmp");
        let write = |name: &str, text: &str| {
            std::fs::write(files.path().join(name), text).expect("write file");
        };
        // The workload's token, another service account's, and the workload's for another audience.
        let web = sa_token(&kube, NS, SA, EXCHANGE_AUDIENCE).await;
        write("web.token", &web);
        write(
            "intruder.token",
            &sa_token(&kube, NS, "intruder", EXCHANGE_AUDIENCE).await,
        );
        write(
            "wrong-audience.token",
            &sa_token(&kube, NS, SA, "https://kubernetes.default.svc").await,
        );
        let issuer = claims(&web)["iss"].as_str().unwrap_or_default().to_string();
        assert!(
            issuer.starts_with("https://127.0.0.1:"),
            "kube-sim issuer {issuer}"
        );
        let (cert_pem, cert_bundle) = app_certificate("sdk-cert-app");
        write("cert-app.pem", &cert_bundle);
        write("stranger.pem", &app_certificate("stranger").1);

        let vault_scope = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.KeyVault/vaults/{VAULT}"
        );
        let world = json!({
            "tenants": [{"id": TENANT, "domains": ["contoso.onmicrosoft.com"], "displayName": "Contoso"}],
            "subscriptions": [{"id": SUB, "tenantId": TENANT}],
            "resourceGroups": [
                {"name": "rg-nodes", "subscriptionId": SUB, "location": "westeurope"},
                {"name": "rg-ids", "subscriptionId": SUB, "location": "westeurope"}
            ],
            "userAssignedIdentities": [
                {"name": "id-web", "resourceGroup": "rg-ids", "federatedIdentityCredentials": [
                    {"name": "kube-sim-web", "issuer": issuer, "subject": format!("system:serviceaccount:{NS}:{SA}"),
                     "audiences": [EXCHANGE_AUDIENCE]}
                ]},
                {"name": "id-job", "resourceGroup": "rg-ids"},
                {"name": "id-elsewhere", "resourceGroup": "rg-ids"}
            ],
            "virtualMachines": [
                {"name": NODE, "resourceGroup": "rg-nodes", "identity": {"userAssignedIdentities": ["id-web", "id-job"]}}
            ],
            "applications": [
                {"displayName": "sdk-secret-app", "tenantId": TENANT, "secrets": [{"value": APP_SECRET}]},
                {"displayName": "sdk-cert-app", "tenantId": TENANT, "certificates": [{"pem": cert_pem}]},
                {"displayName": "sdk-no-role-app", "tenantId": TENANT, "secrets": [{"value": APP_SECRET}]}
            ],
            "roleAssignments": [
                {"principalName": "id-web", "roleDefinitionName": "Key Vault Secrets User", "scope": vault_scope},
                {"principalName": "sdk-secret-app", "roleDefinitionName": "Key Vault Secrets User", "scope": vault_scope},
                {"principalName": "sdk-cert-app", "roleDefinitionName": "Key Vault Secrets User", "scope": vault_scope}
            ],
            "keyVaults": [
                {"name": VAULT, "resourceGroup": "rg-ids", "secrets": [{"name": SECRET_NAME, "value": SECRET_VALUE}]}
            ]
        });
        let kube_ca = kube.ca_pem.clone().unwrap_or_default();
        let sim = start_with(world, move |c| c.oidc_trust_pem.push(kube_ca)).await;
        let ca_file = sim
            .handle
            .ca_file
            .clone()
            .expect("azure-sim writes ca.crt into its directory");
        assert!(ca_file.is_file(), "{}", ca_file.display());
        Fixture {
            sim,
            kube,
            _kube_dir: kube_dir,
            files,
            ca_file,
        }
    }

    fn file(&self, name: &str) -> String {
        self.files.path().join(name).display().to_string()
    }

    fn identity(&self, name: &str) -> Principal {
        let u = self.sim.uami(name);
        Principal {
            app_id: u.client_id.clone().unwrap_or_default(),
            object_id: u.principal_id.clone().unwrap_or_default(),
            mirid: Some(u.id()),
        }
    }

    fn app(&self, display_name: &str) -> Principal {
        let a = self
            .sim
            .world()
            .applications
            .into_iter()
            .find(|a| a.display_name == display_name)
            .unwrap_or_else(|| panic!("no app {display_name}"));
        Principal {
            app_id: a.app_id.unwrap_or_default(),
            object_id: a.object_id.unwrap_or_default(),
            mirid: None,
        }
    }

    fn imds_url(&self) -> String {
        self.sim.imds(NODE)
    }

    fn vault_url(&self) -> String {
        self.sim.handle.vault_url(VAULT).expect("vault listener")
    }

    fn entra_url(&self) -> String {
        self.sim.handle.entra_url.clone()
    }

    /// The variables of a workload identity (as the azure-workload-identity webhook injects them).
    fn workload_env(&self, client_id: &str, token_file: &str) -> Vec<(String, String)> {
        vec![
            ("AZURE_AUTHORITY_HOST".into(), self.entra_url()),
            ("AZURE_TENANT_ID".into(), TENANT.into()),
            ("AZURE_CLIENT_ID".into(), client_id.into()),
            ("AZURE_FEDERATED_TOKEN_FILE".into(), self.file(token_file)),
        ]
    }

    /// The variables of a service principal.
    fn sp_env(&self, client_id: &str, more: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("AZURE_AUTHORITY_HOST".to_string(), self.entra_url()),
            ("AZURE_TENANT_ID".to_string(), TENANT.to_string()),
            ("AZURE_CLIENT_ID".to_string(), client_id.to_string()),
        ];
        env.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }

    async fn shutdown(self) {
        self.kube.shutdown().await;
        self.sim.handle.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Cases.

/// What a case must report.
#[derive(Clone, Debug)]
enum Expect {
    /// A token for the vault audience, for this principal.
    Token(Principal),
    /// The secret's value.
    Secret,
    /// An Entra error with this AADSTS code in the SDK's message.
    Aadsts(u64),
    /// A failure without an AADSTS code whose message contains this text.
    Error(&'static str),
    /// A failure with this HTTP status.
    Status(u64),
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    expect: Expect,
}

fn case(name: &'static str, args: &[&str], env: Vec<(String, String)>, expect: Expect) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        env,
        expect,
    }
}

/// The managed identity and workload identity cases every SDK runs (flag spelling `-` or `--`).
fn common_cases(f: &Fixture, dash: &str, imds_env: Vec<(String, String)>) -> Vec<Case> {
    let web = f.identity("id-web");
    let elsewhere = f.identity("id-elsewhere");
    let (vault, name) = (f.vault_url(), SECRET_NAME.to_string());
    let flag = |n: &str| format!("{dash}{n}");
    let secret_args = [flag("vault-url"), vault, flag("name"), name];
    let sa: Vec<&str> = secret_args.iter().map(String::as_str).collect();
    let mi = |action: &str, client: &str| -> Vec<String> {
        vec![
            "managed-identity".into(),
            action.into(),
            flag("client-id"),
            client.into(),
        ]
    };
    let mut cases = Vec::new();
    let mut mi_case = |name, mut args: Vec<String>, extra: &[&str], expect| {
        args.extend(extra.iter().map(|s| s.to_string()));
        cases.push(Case {
            name,
            args,
            env: imds_env.clone(),
            expect,
        });
    };
    mi_case(
        "ManagedIdentityCredential token (user-assigned client_id)",
        mi("token", &web.app_id),
        &[],
        Expect::Token(web.clone()),
    );
    mi_case(
        "ManagedIdentityCredential + SecretClient",
        mi("secret", &web.app_id),
        &sa,
        Expect::Secret,
    );
    mi_case(
        "ManagedIdentityCredential, identity not assigned to the VM",
        mi("token", &elsewhere.app_id),
        &[],
        Expect::Error("Identity not found"),
    );
    let wi_secret: Vec<&str> = ["workload-identity", "secret"]
        .into_iter()
        .chain(sa.iter().copied())
        .collect();
    cases.extend([
        case(
            "WorkloadIdentityCredential token (kube-sim service-account token)",
            &["workload-identity", "token"],
            f.workload_env(&web.app_id, "web.token"),
            Expect::Token(web.clone()),
        ),
        case(
            "WorkloadIdentityCredential + SecretClient",
            &wi_secret,
            f.workload_env(&web.app_id, "web.token"),
            Expect::Secret,
        ),
        case(
            "WorkloadIdentityCredential, another service account (subject mismatch)",
            &["workload-identity", "token"],
            f.workload_env(&web.app_id, "intruder.token"),
            Expect::Aadsts(700213),
        ),
        case(
            "WorkloadIdentityCredential, token for another audience",
            &["workload-identity", "token"],
            f.workload_env(&web.app_id, "wrong-audience.token"),
            Expect::Aadsts(700212),
        ),
        case(
            "WorkloadIdentityCredential, unknown client ID",
            &["workload-identity", "token"],
            f.workload_env(UNKNOWN_CLIENT, "web.token"),
            Expect::Aadsts(700016),
        ),
    ]);
    cases
}

fn python_cases(f: &Fixture) -> Vec<Case> {
    let ca = f.ca_file.display().to_string();
    let with_ca = |mut env: Vec<(String, String)>| {
        env.push(("REQUESTS_CA_BUNDLE".into(), ca.clone()));
        env
    };
    let imds = vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), f.imds_url())];
    let mut cases: Vec<Case> = common_cases(f, "--", imds)
        .into_iter()
        .map(|mut c| {
            c.env = with_ca(c.env);
            c
        })
        .collect();
    let secret_app = f.app("sdk-secret-app");
    let cert_app = f.app("sdk-cert-app");
    let no_role = f.app("sdk-no-role-app");
    let (vault, name) = (f.vault_url(), SECRET_NAME);
    let secret = |cred: &'static str| -> Vec<String> {
        [cred, "secret", "--vault-url", &vault, "--name", name]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let sp = |client: &str, secret: &str| {
        with_ca(f.sp_env(client, &[("AZURE_CLIENT_SECRET", secret.to_string())]))
    };
    let cert = |client: &str, file: &str| {
        with_ca(f.sp_env(client, &[("AZURE_CLIENT_CERTIFICATE_PATH", f.file(file))]))
    };
    let mk = |name, args: Vec<String>, env, expect| Case {
        name,
        args,
        env,
        expect,
    };
    let tok = |cred: &'static str| vec![cred.to_string(), "token".to_string()];
    cases.extend([
        mk(
            "ClientSecretCredential token",
            tok("client-secret"),
            sp(&secret_app.app_id, APP_SECRET),
            Expect::Token(secret_app.clone()),
        ),
        mk(
            "ClientSecretCredential + SecretClient",
            secret("client-secret"),
            sp(&secret_app.app_id, APP_SECRET),
            Expect::Secret,
        ),
        mk(
            "ClientSecretCredential, wrong secret",
            tok("client-secret"),
            sp(&secret_app.app_id, "not-the-secret"),
            Expect::Aadsts(7000215),
        ),
        mk(
            "ClientSecretCredential, unknown client ID",
            tok("client-secret"),
            sp(UNKNOWN_CLIENT, APP_SECRET),
            Expect::Aadsts(700016),
        ),
        mk(
            "ClientSecretCredential + SecretClient without a Key Vault role",
            secret("client-secret"),
            sp(&no_role.app_id, APP_SECRET),
            Expect::Status(403),
        ),
        mk(
            "CertificateCredential token",
            tok("certificate"),
            cert(&cert_app.app_id, "cert-app.pem"),
            Expect::Token(cert_app.clone()),
        ),
        mk(
            "CertificateCredential + SecretClient",
            secret("certificate"),
            cert(&cert_app.app_id, "cert-app.pem"),
            Expect::Secret,
        ),
        mk(
            "CertificateCredential, unregistered certificate",
            tok("certificate"),
            cert(&cert_app.app_id, "stranger.pem"),
            Expect::Aadsts(700027),
        ),
        mk(
            "msal ConfidentialClientApplication (client secret)",
            tok("msal"),
            sp(&secret_app.app_id, APP_SECRET),
            Expect::Token(secret_app.clone()),
        ),
        mk(
            "msal ConfidentialClientApplication, wrong secret",
            tok("msal"),
            sp(&secret_app.app_id, "not-the-secret"),
            Expect::Aadsts(7000215),
        ),
        mk(
            "msal ConfidentialClientApplication, unknown client ID",
            tok("msal"),
            sp(UNKNOWN_CLIENT, APP_SECRET),
            Expect::Aadsts(700016),
        ),
    ]);
    cases
}

// ---------------------------------------------------------------------------------------------------------------
// Checking outcomes.

async fn check_token(f: &Fixture, token: &str, who: &Principal) -> Result<(), String> {
    if !verify_with_jwks(&f.sim, token).await {
        return Err("the token does not verify against the tenant JWKS".into());
    }
    let c = claims(token);
    let want = [
        ("aud", Some(VAULT_AUDIENCE.to_string())),
        ("tid", Some(TENANT.to_string())),
        ("appid", Some(who.app_id.clone())),
        ("oid", Some(who.object_id.clone())),
        ("xms_mirid", who.mirid.clone()),
    ];
    for (claim, expected) in want {
        let got = c[claim].as_str().map(str::to_string);
        if got != expected {
            return Err(format!("claim {claim}: {got:?}, want {expected:?} ({c})"));
        }
    }
    Ok(())
}

async fn check(f: &Fixture, expect: &Expect, out: &Value, code: Option<i32>) -> Result<(), String> {
    let ok = out["ok"].as_bool() == Some(true);
    let want_ok = matches!(expect, Expect::Token(_) | Expect::Secret);
    if ok != want_ok {
        return Err(format!("ok = {ok}, expected {want_ok}"));
    }
    if code != Some(if want_ok { 0 } else { 1 }) {
        return Err(format!("exit status {code:?}"));
    }
    let message = out["message"].as_str().unwrap_or_default();
    match expect {
        Expect::Token(who) => check_token(f, out["token"].as_str().unwrap_or_default(), who).await,
        Expect::Secret if out["value"] == json!(SECRET_VALUE) => Ok(()),
        Expect::Secret => Err(format!("secret value {}", out["value"])),
        Expect::Aadsts(want) if out["aadsts"].as_u64() == Some(*want) => {
            if message.contains(&format!("AADSTS{want}")) {
                Ok(())
            } else {
                Err(format!("AADSTS{want} not in the SDK's message"))
            }
        }
        Expect::Aadsts(want) => Err(format!("aadsts {}, want {want}", out["aadsts"])),
        Expect::Error(text) if out["aadsts"].is_null() && message.contains(text) => Ok(()),
        Expect::Error(text) => Err(format!("want a message containing {text:?} and no AADSTS")),
        Expect::Status(s) if out["status"].as_u64() == Some(*s) => Ok(()),
        Expect::Status(s) => Err(format!("status {}, want {s}", out["status"])),
    }
}

/// What a passing case reported, for the log: the SDK's error, shortened.
fn summary(stdout: &str) -> String {
    let out: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    match out["message"].as_str() {
        Some(m) => format!(" -> {}", m.chars().take(150).collect::<String>()),
        None => String::new(),
    }
}

/// Run every case with `program` (plus `prefix` arguments) and check each outcome.
async fn run_cases(
    f: &Fixture,
    client: &str,
    program: &Path,
    prefix: &[String],
    cwd: &Path,
    lang_env: &[(String, String)],
    cases: Vec<Case>,
) {
    let mut failures = Vec::new();
    let started = Instant::now();
    for c in &cases {
        let mut env = base_env();
        env.extend(lang_env.iter().cloned());
        env.extend(c.env.iter().cloned());
        let args: Vec<String> = prefix.iter().chain(c.args.iter()).cloned().collect();
        let t = Instant::now();
        let result = run(program, &args, cwd, &env).await;
        let elapsed = t.elapsed();
        let verdict = match &result {
            Err(e) => Err(format!("could not run: {e}")),
            Ok(o) => {
                let stdout = String::from_utf8_lossy(&o.stdout);
                let line = stdout.lines().rev().find(|l| l.starts_with('{'));
                match line.and_then(|l| serde_json::from_str::<Value>(l).ok()) {
                    None => Err("no JSON outcome line on stdout".into()),
                    Some(out) => check(f, &c.expect, &out, o.status.code()).await,
                }
            }
        };
        let shown = match &result {
            Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_string(),
            Err(_) => String::new(),
        };
        let short: String = shown.chars().take(240).collect();
        match verdict {
            Ok(()) => eprintln!(
                "[{client}] ok   {:>5} ms  {}{}",
                elapsed.as_millis(),
                c.name,
                summary(&shown)
            ),
            Err(why) => {
                let stderr = result
                    .as_ref()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                eprintln!(
                    "[{client}] FAIL {:>5} ms  {}: {why}\n  args: {args:?}\n  stdout: {short}\n  stderr: {}",
                    elapsed.as_millis(),
                    c.name,
                    stderr.chars().take(4000).collect::<String>()
                );
                failures.push(format!("{}: {why}", c.name));
            }
        }
    }
    eprintln!(
        "[{client}] {} cases in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{client}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The clients.

/// Checks that the venv holds exactly the pinned packages (argument: requirements.txt); prints what differs.
const PYTHON_PROBE: &str = r##"
import sys, importlib.metadata as md
bad = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if "==" in line:
        name, want = line.split("==", 1)
        try:
            got = md.version(name)
        except md.PackageNotFoundError:
            got = None
        if got != want:
            bad.append(f"{name}=={want} (installed: {got})")
print("; ".join(bad))
sys.exit(1 if bad else 0)
"##;

/// Node's major version, from `node --version`.
async fn node_major(node: &Path, dir: &Path) -> Option<u64> {
    let o = run(node, &["--version".into()], dir, &base_env())
        .await
        .ok()?;
    let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
    v.trim_start_matches('v').split('.').next()?.parse().ok()
}

/// Installed versions of the pinned npm packages that differ from package.json.
fn node_mismatches(dir: &Path) -> Vec<String> {
    let read = |p: PathBuf| -> Value {
        std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let manifest = read(dir.join("package.json"));
    let Some(deps) = manifest["dependencies"].as_object() else {
        return vec!["tests/clients/node/package.json has no dependencies".into()];
    };
    deps.iter()
        .filter_map(|(name, want)| {
            let got = read(dir.join("node_modules").join(name).join("package.json"));
            (got["version"] != *want)
                .then(|| format!("{name}@{want} (installed: {})", got["version"]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_azure_identity_keyvault_and_msal() {
    let dir = clients_dir("python");
    let python = repo_root().join(".venv/bin/python");
    if !python.is_file() {
        return unavailable("python", &format!("no virtualenv at {}", python.display()));
    }
    let probe = run(
        &python,
        &[
            "-c".into(),
            PYTHON_PROBE.into(),
            dir.join("requirements.txt").display().to_string(),
        ],
        &dir,
        &base_env(),
    )
    .await;
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let why = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout).trim(),
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return unavailable(
                "python",
                &format!(".venv does not hold tests/clients/python/requirements.txt: {why}"),
            );
        }
        Err(e) => return unavailable("python", &format!("cannot run {}: {e}", python.display())),
    }
    let f = Fixture::start().await;
    let cases = python_cases(&f);
    let script = dir.join("clients.py").display().to_string();
    run_cases(&f, "python", &python, &[script], &dir, &[], cases).await;
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_azidentity_and_azsecrets() {
    let dir = clients_dir("go");
    let Some(go) = which("go") else {
        return unavailable("go", "`go` is not on PATH");
    };
    // Build from the module cache only: the test never downloads (ensure_clients runs `go mod download`).
    let out = tempfile::tempdir().expect("tmp");
    let binary = out.path().join("clients");
    let mut env = base_env();
    for k in ["GOPATH", "GOMODCACHE", "GOCACHE"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.into(), v));
        }
    }
    env.extend([
        ("GOPROXY".into(), "off".into()),
        ("GOFLAGS".into(), "-mod=readonly -buildvcs=false".into()),
        ("GOTOOLCHAIN".into(), "local".into()),
        ("CGO_ENABLED".into(), "0".into()),
    ]);
    let t = Instant::now();
    let build = run(
        &go,
        &[
            "build".into(),
            "-o".into(),
            binary.display().to_string(),
            ".".into(),
        ],
        &dir,
        &env,
    )
    .await;
    match build {
        Ok(o) if o.status.success() => {
            eprintln!(
                "[go] built the client in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
            let missing = [
                "GOPROXY=off",
                "GOTOOLCHAIN",
                "missing go.sum entry",
                "go.mod requires go",
            ];
            if missing.iter().any(|m| err.contains(m)) {
                return unavailable("go", &format!("modules or toolchain missing: {err}"));
            }
            panic!("go build of tests/clients/go failed:\n{err}");
        }
        Err(e) => return unavailable("go", &format!("cannot run go: {e}")),
    }
    let f = Fixture::start().await;
    let imds = f.imds_url().trim_start_matches("http://").to_string();
    let cases = common_cases(&f, "-", vec![("PODID_IMDS_ADDR".into(), imds)]);
    let lang_env = [("SSL_CERT_FILE".to_string(), f.ca_file.display().to_string())];
    run_cases(&f, "go", &binary, &[], &dir, &lang_env, cases).await;
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_azure_identity_and_keyvault_secrets() {
    let dir = clients_dir("node");
    let Some(node) = which("node") else {
        return unavailable("node", "`node` is not on PATH");
    };
    match node_major(&node, &dir).await {
        Some(v) if v >= 20 => {}
        v => {
            return unavailable(
                "node",
                &format!("node {v:?} is older than the SDK's minimum (20)"),
            );
        }
    }
    let mismatches = node_mismatches(&dir);
    if !mismatches.is_empty() {
        return unavailable(
            "node",
            &format!(
                "tests/clients/node/node_modules does not hold package.json's pins: {}",
                mismatches.join("; ")
            ),
        );
    }
    let f = Fixture::start().await;
    let cases = common_cases(
        &f,
        "--",
        vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), f.imds_url())],
    );
    let lang_env = [(
        "NODE_EXTRA_CA_CERTS".to_string(),
        f.ca_file.display().to_string(),
    )];
    let script = dir.join("clients.mjs").display().to_string();
    run_cases(&f, "node", &node, &[script], &dir, &lang_env, cases).await;
    f.shutdown().await;
}
