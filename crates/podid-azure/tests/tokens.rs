//! The controller's ARM token against azure-sim: client secret, certificate (PKCS#8 and PKCS#1), managed
//! identity (user- and system-assigned), typed errors, caching, single flight, refresh and reload.

mod common;

use std::time::Duration;

use common::*;
use podid_azure::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_token_is_cached() {
    let sim = start().await;
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    assert!(matches!(tokens.kind(), CredentialKind::ClientSecret { .. }));
    let t = tokens.token().await.expect("token");
    let claims = azure_sim::jwt::decode(t.secret()).expect("jwt").claims;
    assert_eq!(claims["aud"], json!("https://management.azure.com/"));
    assert_eq!(claims["appid"], json!(sim.app_id("controller")));
    assert!(t.expires_at() > std::time::SystemTime::now() + Duration::from_secs(3000));
    assert!(!format!("{t:?}").contains(t.secret()));
    // Sequential and concurrent callers reuse it: one Entra request in all.
    for _ in 0..5 {
        assert_eq!(tokens.token().await.expect("again"), t);
    }
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let ts = tokens.clone();
            tokio::spawn(async move { ts.token().await })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.expect("join").expect("token"), t);
    }
    assert_eq!(sim.count("entra").await, 1);
    assert_eq!(tokens.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_slow_fetch() {
    let sim = start().await;
    sim.fault("entra", json!({"latencyMs": 400})).await;
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let ts = tokens.clone();
            tokio::spawn(async move { ts.token().await.map(|t| t.secret().to_string()) })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for h in handles {
        seen.insert(h.await.expect("join").expect("token"));
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(sim.count("entra").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_tokens_refresh_at_half_life() {
    let sim = start().await;
    sim.settings(json!({"entraTokenLifetimeSecs": 4, "tokenReuseSecs": 0}))
        .await;
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    let first = tokens.token().await.expect("first");
    assert_eq!(tokens.token().await.expect("cached"), first);
    assert_eq!(sim.count("entra").await, 1);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let second = tokens.token().await.expect("refreshed");
    assert_ne!(second, first);
    assert_eq!(sim.count("entra").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_and_unknown_client_are_typed_entra_errors() {
    let sim = start().await;
    let wrong = "definitely-not-the-secret";
    let tokens = sim.tokens(
        &sim.secret_config("controller", wrong),
        "http://127.0.0.1:9",
    );
    let e = tokens.token().await.expect_err("wrong secret");
    match &e {
        TokenError::Entra {
            status,
            error,
            aadsts,
            description,
        } => {
            assert_eq!(*status, 401);
            assert_eq!(error, "invalid_client");
            assert_eq!(*aadsts, Some(7000215));
            assert!(description.starts_with("AADSTS7000215"), "{description}");
            assert!(!description.contains('\n'), "{description}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains(wrong));
    assert!(!format!("{e:?}").contains(wrong));
    // Not transient: one request, no retries.
    assert_eq!(sim.count("entra").await, 1);

    let mut cfg = sim.secret_config("controller", CONTROLLER_SECRET);
    cfg.aad_client_id = "00000000-0000-0000-0000-00000000beef".into();
    let e = sim
        .tokens(&cfg, "http://127.0.0.1:9")
        .token()
        .await
        .expect_err("unknown client");
    assert_eq!(e.aadsts(), Some(700016), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_entra_errors_are_retried() {
    let sim = start().await;
    sim.fault("entra", json!({"status": 500, "remaining": 2}))
        .await;
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    tokens.token().await.expect("third attempt succeeds");
    assert_eq!(sim.count("entra").await, 3);
    assert_eq!(tokens.fetches(), 3);
    // A dropped connection is retried too.
    tokens.invalidate();
    sim.fault("entra", json!({"drop": true, "remaining": 1}))
        .await;
    tokens.token().await.expect("after a dropped connection");
    // Exhausted attempts surface the last error.
    tokens.invalidate();
    sim.fault("entra", json!({"status": 503, "remaining": 5}))
        .await;
    let e = tokens.token().await.expect_err("exhausted");
    assert!(matches!(e, TokenError::Entra { status: 503, .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_credentials_pkcs8_and_pkcs1() {
    let sim = start().await;
    let app = sim.app_id("cert-app");
    for (label, key) in [
        ("pkcs8", sim.cert.pkcs8_pem.clone()),
        ("pkcs1", sim.cert.pkcs1_pem.clone()),
    ] {
        let path = sim.dir.path().join(format!("cert-{label}.pem"));
        // Key first, then certificate: order does not matter.
        std::fs::write(&path, format!("{key}{}", sim.cert.cert_pem)).expect("write");
        let cfg = CloudConfig {
            aad_client_id: app.clone(),
            aad_client_secret: String::new(),
            aad_client_cert_path: path.display().to_string(),
            ..sim.secret_config("cert-app", "")
        };
        let tokens = sim.tokens(&cfg, "http://127.0.0.1:9");
        assert!(matches!(tokens.kind(), CredentialKind::Certificate { .. }));
        let t = tokens
            .token()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let claims = azure_sim::jwt::decode(t.secret()).expect("jwt").claims;
        assert_eq!(claims["appid"], json!(app), "{label}");
        // The token works on ARM.
        let compute = ComputeClient::new(
            sim.env.clone(),
            tokens,
            sim.http.clone(),
            Sim::compute_options(),
        );
        compute
            .get_identity(&vmss())
            .await
            .expect("GET as cert-app");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_file_errors() {
    let sim = start().await;
    let other = test_cert("someone-else");
    let dir = sim.dir.path();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "mismatch.pem",
            format!("{}{}", sim.cert.cert_pem, other.pkcs8_pem).into_bytes(),
            "does not belong to the certificate",
        ),
        (
            "nokey.pem",
            sim.cert.cert_pem.clone().into_bytes(),
            "no private key",
        ),
        (
            "bundle.pfx",
            vec![0x30, 0x82, 0x00, 0x03, 0x02, 0x01, 0x03],
            "openssl pkcs12",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let cfg = CloudConfig {
            aad_client_secret: String::new(),
            aad_client_cert_path: path.display().to_string(),
            ..sim.secret_config("cert-app", "")
        };
        let e = TokenSource::new(&cfg, &sim.env, sim.http.clone(), "http://127.0.0.1:9")
            .expect_err(name);
        assert!(e.to_string().contains(want), "{name}: {e}");
        if name.ends_with(".pfx") {
            assert!(matches!(e, TokenError::Pkcs12NotSupported { .. }));
        }
    }
    // A certificate Entra does not know: AADSTS700027 from the simulator.
    let path = dir.join("unknown.pem");
    std::fs::write(&path, format!("{}{}", other.cert_pem, other.pkcs8_pem)).expect("write");
    let cfg = CloudConfig {
        aad_client_secret: String::new(),
        aad_client_cert_path: path.display().to_string(),
        ..sim.secret_config("cert-app", "")
    };
    let e = sim
        .tokens(&cfg, "http://127.0.0.1:9")
        .token()
        .await
        .expect_err("unknown cert");
    assert_eq!(e.aadsts(), Some(700027), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_user_and_system_assigned() {
    let sim = start().await;
    let kubelet = sim.uami("kubelet");
    let kubelet_cid = kubelet.client_id.clone().expect("client id");
    let tokens = sim.tokens(&sim.msi_config(&kubelet_cid), &sim.imds(VMSS_NODE));
    assert_eq!(
        tokens.kind(),
        CredentialKind::ManagedIdentity {
            client_id: Some(kubelet_cid.clone())
        }
    );
    let t = tokens.token().await.expect("imds token");
    let claims = azure_sim::jwt::decode(t.secret()).expect("jwt").claims;
    assert_eq!(claims["appid"], json!(kubelet_cid));
    assert_eq!(claims["aud"], json!("https://management.azure.com/"));
    tokens.token().await.expect("cached");
    assert_eq!(sim.count("imds").await, 1);
    // The kubelet identity may read the scale set.
    let compute = ComputeClient::new(
        sim.env.clone(),
        tokens,
        sim.http.clone(),
        Sim::compute_options(),
    );
    let id = compute.get_identity(&vmss()).await.expect("GET as kubelet");
    assert!(has_id(&id.user_assigned, &kubelet.id()));

    // System-assigned on the VM.
    let sys = sim.tokens(&sim.msi_config(""), &sim.imds(VM));
    assert_eq!(
        sys.kind(),
        CredentialKind::ManagedIdentity { client_id: None }
    );
    sys.token().await.expect("system-assigned token");

    // An identity the node does not have: IMDS's own error, not retried.
    let web = sim.uami("id-web").client_id.expect("client id");
    let before = sim.count("imds").await;
    let e = sim
        .tokens(&sim.msi_config(&web), &sim.imds(VMSS_NODE))
        .token()
        .await
        .expect_err("not assigned");
    match &e {
        TokenError::Imds {
            status,
            error,
            description,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(error, "invalid_request");
            assert!(description.contains("Identity not found"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.count("imds").await, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_switches_credentials() {
    let sim = start().await;
    let tokens = sim.tokens(
        &sim.secret_config("controller", CONTROLLER_SECRET),
        "http://127.0.0.1:9",
    );
    tokens.token().await.expect("secret token");
    // A new config with a wrong secret: the cache is dropped and the new credential is used.
    tokens
        .reload(&sim.secret_config("controller", "rotated-wrong"), &sim.env)
        .expect("reload");
    assert_eq!(
        tokens.token().await.expect_err("wrong").aadsts(),
        Some(7000215)
    );
    // An invalid config is refused and the current credential stays.
    let mut bad = sim.secret_config("controller", CONTROLLER_SECRET);
    bad.tenant_id.clear();
    assert!(matches!(
        tokens.reload(&bad, &sim.env),
        Err(TokenError::Config {
            key: "tenantId",
            ..
        })
    ));
    // Back to the right secret.
    tokens
        .reload(
            &sim.secret_config("controller", CONTROLLER_SECRET),
            &sim.env,
        )
        .expect("reload");
    let t = tokens.token().await.expect("token after reload");
    assert_eq!(
        azure_sim::jwt::decode(t.secret()).expect("jwt").claims["appid"],
        json!(sim.app_id("controller"))
    );
}
