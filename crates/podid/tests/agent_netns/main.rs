//! `podid agent` on a node made of network namespaces: the real redirect, real pods, the real Python SDK.
//!
//! # Model
//!
//! ```text
//!   host namespace: only runs processes (this test, `ip netns exec` children); no links, rules or sysctls change
//!
//!   node ns (bridge br0 10.244.0.1/24, lo):
//!       kube-sim or a real control plane (each case runs on both), azure-sim (127.0.0.1, on a runtime whose
//!       threads live here; the real control plane's processes are started from them, so they live here too)
//!       podid agent (child process, `ip netns exec`): 127.0.0.1:2579, installs nat PREROUTING -> aad-metadata:
//!           ! -s 127.0.0.1 -d 169.254.169.254 -p tcp --dport 80 -j DNAT --to 127.0.0.1:2579, sets route_localnet
//!       filter INPUT: kube-proxy's localnet rule (what a real node has): connections to 127.0.0.0/8 from outside
//!           the node are dropped unless DNATed, so route_localnet opens only the redirect, not the node's IMDS
//!       |veth0 .. |vethN (bridge ports)
//!   pod namespaces: eth0 = the IP the kubelet (podid-kubelet) gave the Kubernetes pod (node podCIDR 10.244.0.0/24)
//!       clients call http://169.254.169.254 with no override (Rust client, Python azure-identity)
//! ```
//!
//! The node namespace has no link to the host's, so a request to 169.254.169.254 either is DNATed to the agent
//! inside the node namespace or dies there (ip_forward is 0 in a new namespace and there is no route out): nothing
//! can reach a real metadata service. The agent itself gets tokens from azure-sim's IMDS for the node
//! (`--imds-endpoint`, loopback of the node namespace), never from 169.254.169.254.
//!
//! # What is proven
//!
//! - The real Python `ManagedIdentityCredential` and `DefaultAzureCredential`, with no endpoint override, get a
//!   token for the pod's own identity (the token's `appid`/`xms_mirid` claims); a pod without a binding is refused
//!   at once; after SIGTERM no `aad-metadata` chain or jump is left in either backend, and with
//!   `--keep-iptables-on-exit` both stay (requests then fail instead of reaching anything).
//! - Authorisation matrix: 10 pods x 5 identities (plus "no client_id") x bound / unlabelled / no binding /
//!   excepted / wrong client_id / spoofed source address on the bridge (IP only, then IP and MAC): zero tokens to a
//!   caller not entitled to them, every entitled request answered with a token for the identity asked for. A
//!   control run with `--spoof-check off` shows the same spoofed packets would otherwise get the victim's token.
//!   A pod calling the node's IMDS itself, past the agent (at the bridge address, and at 127.0.0.1 routed out of
//!   its own `eth0`, as a pod with NET_ADMIN can) gets no answer; a control run without the localnet rule shows
//!   the routed request would otherwise get a token for an identity the pod has no binding to.
//! - iptables failures (fake binaries first on the agent's PATH, failing like a held xtables lock): the agent keeps
//!   running, reports `Not Active`, logs the error, counts it, and no pod gets a token; once iptables works the
//!   redirect appears and the right pods are served; a failing cleanup exits 1 and says so.
//!
//! Needs root, iproute2 and iptables (legacy and nft): otherwise each test prints `SKIPPED: ...` and passes, unless
//! `PODID_REQUIRE_NETNS=1`. The Python part needs `.venv` (scripts/ensure-clients.sh); missing, it is skipped with
//! a notice unless `PODID_REQUIRE_CLIENTS=1`. Namespaces are RAII guards (deleted on panic too), and the agent is
//! killed on drop before they go.

mod fairness;
mod support;

podid_testkit::both_backends!(
    sync: python_sdk_through_the_redirect_and_cleanup_on_sigterm,
    authorisation_matrix,
    iptables_failures_are_reported_and_never_fatal,
);

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use podid_k8s::AzurePodIdentityException;
use podid_net::testbed::{NodeNet, PodNet};
use podid_testkit::tools::{find_tool, report};
use podid_testkit::*;
use serde_json::json;
use support::*;

/// Flags that shorten the wait for an identity a pod is not bound to (upstream waits ~80 s by default).
const SHORT_WAIT: [&str; 6] = [
    "--retry-attempts-for-created",
    "1",
    "--retry-attempts-for-assigned",
    "1",
    "--find-identity-retry-interval",
    "1",
];
/// The redirect as `iptables -t nat -S` prints it (upstream NMI's rule; the agent's own 127.0.0.1 calls excluded).
const DNAT_RULE: &str = "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579";
/// An instant refusal, measured at the pod (agent side, no SDK retries).
const INSTANT: Duration = Duration::from_millis(1_000);
/// The same refusal seen by azure-identity (credential set-up and one request on a busy 2-core machine; upstream
/// NMI took ~80 s, and the SDK's default retries of a 404 another ~24 s).
const PYTHON_REFUSAL_SECS: f64 = 3.0;

/// Owned arguments for [`run_python`].
fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Both backends' nat tables in the node namespace (off the runtime threads: it runs processes).
async fn rules(node: &Arc<NodeNet>) -> String {
    let node = node.clone();
    tokio::task::spawn_blocking(move || nat_rules_both(&node))
        .await
        .expect("iptables task")
}

/// The Python SDK in a pod, the redirect's life cycle: installed, removed on SIGTERM, kept with the flag.
fn python_sdk_through_the_redirect_and_cleanup_on_sigterm(backend: Backend) {
    const TEST: &str = "python_sdk_through_the_redirect_and_cleanup_on_sigterm";
    if !prerequisites(TEST) {
        return;
    }
    let python = python_client(TEST);
    in_node(move |node| async move {
        let env = start_env(backend).await;
        let id_a = create_identity(&env, "id-a").await;
        create_identity(&env, "id-b").await;
        env.binding("default", "b-a", "id-a", "sel-a").await;
        let web_ip = create_pod(&env, "web", json!({"aadpodidbinding": "sel-a"})).await;
        create_assigned(&env, "web", &id_a).await;
        let idle_ip = create_pod(&env, "idle", json!({"app": "idle"})).await;
        let web = attach_pod(&node, web_ip).await;
        let idle = attach_pod(&node, idle_ip).await;
        let cid_a = client_id("id-a");

        // Before the agent: 169.254.169.254 is unreachable from a pod (and from everything in the node).
        let r = pod_get(&web, None, token_path(None), NO_REDIRECT_CONNECT_TIMEOUT).await;
        assert!(r.is_err(), "no redirect yet, so no answer: {r:?}");

        let mut agent = start_agent(&env, &node, "python", &SHORT_WAIT, None).await;
        wait_active(&agent).await;
        let installed = rules(&node).await;
        assert!(
            installed.contains("-A PREROUTING -j aad-metadata"),
            "{installed}"
        );
        assert!(installed.contains(DNAT_RULE), "{installed}");
        assert_eq!(
            node_route_localnet(&node),
            "1",
            "the agent enables DNAT to loopback in the node namespace"
        );

        // A pod without a binding: refused at once by the agent.
        let r = pod_get(&idle, None, token_path(Some(&cid_a)), CONNECT_TIMEOUT)
            .await
            .expect("the agent answers the idle pod");
        assert_eq!(r.status, 404, "{r:?}");
        assert!(r.took < INSTANT, "instant refusal took {:?}", r.took);

        if let Some((py, script)) = &python {
            let home = env.dir.path().join("python-home");
            std::fs::create_dir_all(&home).expect("python home");
            let cid_b = client_id("id-b");
            let (mi, dac, mi_any, refused, wrong) = tokio::join!(
                run_python(
                    py,
                    script,
                    &web,
                    &home,
                    strings(&["managed-identity", "--client-id", &cid_a])
                ),
                run_python(
                    py,
                    script,
                    &web,
                    &home,
                    strings(&["default", "--client-id", &cid_a])
                ),
                run_python(py, script, &web, &home, strings(&["managed-identity"])),
                run_python(
                    py,
                    script,
                    &idle,
                    &home,
                    strings(&[
                        "managed-identity",
                        "--client-id",
                        &cid_a,
                        "--retry-total",
                        "0"
                    ])
                ),
                run_python(
                    py,
                    script,
                    &web,
                    &home,
                    strings(&[
                        "managed-identity",
                        "--client-id",
                        &cid_b,
                        "--retry-total",
                        "0"
                    ])
                ),
            );
            for (what, v) in [
                ("ManagedIdentityCredential(client_id)", &mi),
                ("DefaultAzureCredential(managed_identity_client_id)", &dac),
                ("ManagedIdentityCredential()", &mi_any),
            ] {
                assert_eq!(v["ok"], true, "{what}: {v}\n{}", agent.logs());
                assert_eq!(
                    v["claims"]["appid"],
                    json!(cid_a),
                    "{what}: the pod's own identity: {v}"
                );
                assert!(
                    v["claims"]["xms_mirid"]
                        .as_str()
                        .is_some_and(|m| m.ends_with("/userAssignedIdentities/id-a")),
                    "{what}: {v}"
                );
            }
            // The agent answers 404 with upstream NMI's plain-text body; azure-identity reports that as
            // CredentialUnavailableError (so DefaultAzureCredential moves on to its next source).
            for (what, v) in [
                ("a pod without a binding", &refused),
                ("an identity the pod is not bound to", &wrong),
            ] {
                assert_eq!(v["ok"], false, "{what}: {v}");
                assert!(
                    v["status"] == 404 || v["error"] == "CredentialUnavailableError",
                    "{what}: {v}"
                );
            }
            let secs = refused["seconds"].as_f64().unwrap_or(f64::MAX);
            assert!(
                secs < PYTHON_REFUSAL_SECS,
                "refused at once (SDK side, no retries): {secs} s"
            );
            let refusals = token_requests_with_status(&agent, 404).await;
            assert!(
                refusals >= 3.0,
                "the agent answered the Rust and both Python refusals with 404: {refusals}"
            );
            report(&format!(
                "agent_netns python: MI {:.2}s, DAC {:.2}s, MI(no id) {:.2}s, unbound refused in {secs:.2}s, wrong id refused in {:.2}s",
                mi["seconds"].as_f64().unwrap_or(0.0),
                dac["seconds"].as_f64().unwrap_or(0.0),
                mi_any["seconds"].as_f64().unwrap_or(0.0),
                wrong["seconds"].as_f64().unwrap_or(0.0),
            ));
        }
        let logs = agent.logs();
        assert!(!logs.contains("panicked"), "{logs}");

        // SIGTERM: exit 0, and neither backend keeps a chain or a jump.
        assert_eq!(agent.terminate().await, Some(0), "{}", agent.logs());
        let after = rules(&node).await;
        assert!(
            !after.contains("aad-metadata"),
            "rules left after SIGTERM:\n{after}"
        );
        let r = pod_get(&web, None, token_path(None), NO_REDIRECT_CONNECT_TIMEOUT).await;
        assert!(r.is_err(), "the redirect is gone: {r:?}");

        // --keep-iptables-on-exit: the redirect outlives the agent; requests then fail, they reach nothing else.
        let mut kept = start_agent(&env, &node, "keep", &["--keep-iptables-on-exit"], None).await;
        wait_active(&kept).await;
        let r = pod_get(&web, None, token_path(None), CONNECT_TIMEOUT)
            .await
            .expect("answered");
        assert_eq!(r.token_appid(), Some(cid_a.clone()), "{r:?}");
        assert_eq!(kept.terminate().await, Some(0), "{}", kept.logs());
        let after = rules(&node).await;
        assert!(
            after.contains("-A PREROUTING -j aad-metadata") && after.contains(DNAT_RULE),
            "kept:\n{after}"
        );
        let r = pod_get(&web, None, token_path(None), CONNECT_TIMEOUT).await;
        assert!(
            r.is_err(),
            "nothing listens behind the kept redirect: {r:?}"
        );
    });
}

/// Who a matrix pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Bound to `IDENTITIES[i]` (binding + Assigned AAI).
    Bound(usize),
    /// No `aadpodidbinding` label.
    Unlabelled,
    /// Labelled with a selector no binding uses.
    NoBinding,
    /// Matched by an AzurePodIdentityException: node identities by design.
    Excepted,
}

/// One request of the matrix and what it must get.
struct Case {
    caller: usize,
    /// The spoofed source address (the victim's), when the caller impersonates another pod.
    spoof: Option<(usize, Ipv4Addr)>,
    client: Option<usize>,
    /// The identity whose token the caller is entitled to (None: nothing; Some(None): whatever the node's IMDS
    /// gives for the default identity).
    entitled: Option<Option<String>>,
    /// The refusal status expected when not entitled.
    refusal: u16,
    /// The caller also took over the victim's MAC address.
    mac_spoof: bool,
}

/// The matrix's counts.
#[derive(Default, Debug)]
struct Tally {
    /// Requests whose caller is entitled to a token.
    entitled: usize,
    /// ... answered with a token for the identity asked for.
    entitled_answered: usize,
    /// Requests whose caller is entitled to nothing.
    not_entitled: usize,
    /// ... that got a token anyway (must stay 0).
    tokens_to_not_entitled: usize,
    /// ... refused with the expected status (404 as itself, 403 when spoofing).
    refused_as_expected: usize,
    /// Per case kind: (requests, as expected).
    by_kind: std::collections::BTreeMap<&'static str, (usize, usize)>,
    /// Every deviation, for the failure message.
    problems: Vec<String>,
}

/// 10 pods x 5 identities (+ no client_id) x the authorisation cases; zero tokens to a pod not entitled.
fn authorisation_matrix(backend: Backend) {
    const TEST: &str = "authorisation_matrix";
    if !prerequisites(TEST) {
        return;
    }
    if !podid_net::testbed::spoofing_available(TEST).unwrap_or_else(|e| panic!("{e}")) {
        return;
    }
    in_node(|node| async move {
        let env = start_env(backend).await;
        let roles = [
            Role::Bound(0),
            Role::Bound(1),
            Role::Bound(2),
            Role::Bound(3),
            Role::Bound(4),
            Role::Unlabelled,
            Role::NoBinding,
            Role::Excepted,
            Role::Unlabelled, // attacker 1: spoofs pod 0 (bound)
            Role::Unlabelled, // attacker 2: spoofs pod 7 (excepted: any node identity)
        ];
        let mut ids = Vec::new();
        for (i, name) in IDENTITIES.iter().enumerate() {
            ids.push(create_identity(&env, name).await);
            env.binding("default", &format!("b-{i}"), name, &format!("sel-{i}"))
                .await;
        }
        let ex: AzurePodIdentityException = serde_json::from_value(json!({
            "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzurePodIdentityException",
            "metadata": {"name": "ex", "namespace": "default"}, "spec": {"podLabels": {"app": "excepted"}}}))
        .expect("exception");
        Api::<AzurePodIdentityException>::namespaced(env.client.clone(), "default")
            .create(&PostParams::default(), &ex)
            .await
            .expect("create exception");
        let mut pods: Vec<Arc<PodNet>> = Vec::new();
        for (p, role) in roles.iter().enumerate() {
            let name = format!("m{p}");
            let labels = match role {
                Role::Bound(i) => json!({"aadpodidbinding": format!("sel-{i}")}),
                Role::Unlabelled => json!({"app": "plain"}),
                Role::NoBinding => json!({"aadpodidbinding": "sel-nobody"}),
                Role::Excepted => json!({"app": "excepted"}),
            };
            let ip = create_pod(&env, &name, labels).await;
            if let Role::Bound(i) = role {
                create_assigned(&env, &name, &ids[*i]).await;
            }
            pods.push(attach_pod(&node, ip).await);
        }
        let agent = start_agent(&env, &node, "matrix", &SHORT_WAIT, None).await;
        wait_active(&agent).await;

        // Phase 1: every pod asks, as itself, for each identity and for "its" identity (no client_id).
        let mut honest = Vec::new();
        for (p, role) in roles.iter().enumerate() {
            for client in std::iter::once(None).chain((0..IDENTITIES.len()).map(Some)) {
                let entitled = match (role, client) {
                    (Role::Bound(i), None) => Some(Some(client_id(IDENTITIES[*i]))),
                    (Role::Bound(i), Some(c)) if c == *i => Some(Some(client_id(IDENTITIES[c]))),
                    (Role::Excepted, None) => Some(None),
                    (Role::Excepted, Some(c)) => Some(Some(client_id(IDENTITIES[c]))),
                    _ => None,
                };
                honest.push(Case {
                    caller: p,
                    spoof: None,
                    client,
                    entitled,
                    refusal: 404,
                    mac_spoof: false,
                });
            }
        }
        let mut tally = Tally::default();
        run_cases(&pods, &roles, honest, &mut tally).await;

        // Phase 2: two pods take over others' addresses on the bridge (gratuitous ARP, victim's IP on their lo)
        // and ask for every identity with the victim's source address: the peer check refuses (403).
        let spoofs = [(8usize, 0usize), (9, 7)];
        for (attacker, victim) in spoofs {
            let a = pods[attacker].clone();
            let v_ip = pods[victim].ip();
            tokio::task::spawn_blocking(move || a.spoof_ip(v_ip))
                .await
                .expect("spoof task")
                .expect("spoof");
        }
        let mut spoofed = Vec::new();
        for (attacker, victim) in spoofs {
            for client in std::iter::once(None).chain((0..IDENTITIES.len()).map(Some)) {
                spoofed.push(Case {
                    caller: attacker,
                    spoof: Some((victim, pods[victim].ip())),
                    client,
                    entitled: None,
                    refusal: 403,
                    mac_spoof: false,
                });
            }
        }
        run_cases(&pods, &roles, spoofed, &mut tally).await;

        // Phase 3: the second attacker also takes the excepted pod's MAC address (the node's neighbour entry now
        // looks legitimate; only the bridge port the MAC was learned on gives it away).
        let (attacker, victim) = spoofs[1];
        let (a, v) = (pods[attacker].clone(), pods[victim].clone());
        tokio::task::spawn_blocking(move || -> Result<(), podid_net::NetError> {
            a.spoof_mac(v.mac()?)?;
            a.send_gratuitous_arp(v.ip())
        })
        .await
        .expect("spoof task")
        .expect("spoof mac");
        let mac_spoofed = std::iter::once(None)
            .chain((0..IDENTITIES.len()).map(Some))
            .map(|client| Case {
                caller: attacker,
                spoof: Some((victim, pods[victim].ip())),
                client,
                entitled: None,
                refusal: 403,
                mac_spoof: true,
            })
            .collect();
        run_cases(&pods, &roles, mac_spoofed, &mut tally).await;
        let spoof_refused = agent.metric("podid_agent_spoof_refused_count").await;

        report(&format!(
            "agent_netns matrix: {} pods x {} identities (+ default): entitled {}/{} answered with the right token; \
             not entitled {}: tokens given {}, refused as expected {}; spoof refusals counted by the agent {spoof_refused}",
            roles.len(),
            IDENTITIES.len(),
            tally.entitled_answered,
            tally.entitled,
            tally.not_entitled,
            tally.tokens_to_not_entitled,
            tally.refused_as_expected,
        ));
        for (kind, (n, ok)) in &tally.by_kind {
            report(&format!(
                "agent_netns matrix:   {kind:<22} {ok}/{n} as expected"
            ));
        }
        assert_eq!(
            tally.tokens_to_not_entitled, 0,
            "tokens to callers not entitled: {:#?}",
            tally.problems
        );
        assert_eq!(
            tally.entitled_answered, tally.entitled,
            "entitled requests not answered: {:#?}",
            tally.problems
        );
        assert!(
            tally.problems.is_empty(),
            "{:#?}\n{}",
            tally.problems,
            agent.logs()
        );
        assert_eq!(
            tally.entitled,
            5 * 2 + 6,
            "bound: own + default; excepted: all six"
        );
        assert_eq!(tally.not_entitled, 10 * 6 - 16 + 12 + 6);
        assert!(
            spoof_refused >= 18.0,
            "the agent counted its spoof refusals: {spoof_refused}"
        );
        let logs = agent.logs();
        assert!(
            logs.contains("refused by the anti-spoofing check"),
            "{logs}"
        );
        assert!(!logs.contains("panicked"), "{logs}");

        // Phase 4: straight to the node's IMDS (azure-sim's, on the node namespace's 127.0.0.1), past the agent:
        // at the bridge address, and at 127.0.0.1 routed out of the pod's eth0 (a pod with NET_ADMIN can do that,
        // and the agent's route_localnet lets such packets in). The node's localnet rule leaves it without an
        // answer; entitled pods keep their tokens through the agent.
        let imds = node_imds(&env);
        let bridge = node.bridge_ip();
        let intruder_ip = create_pod(&env, "intruder", json!({"app": "plain"})).await;
        let intruder = attach_pod(&node, intruder_ip).await;
        let ask = token_path(Some(&client_id(IDENTITIES[0])));
        let mut direct = vec![(
            "the bridge address",
            pod_get_direct(
                &intruder,
                SocketAddrV4::new(bridge, imds.port()),
                ask.clone(),
                NO_REDIRECT_CONNECT_TIMEOUT,
            )
            .await,
        )];
        let routed = intruder.clone();
        tokio::task::spawn_blocking(move || route_loopback_to_node(&routed, bridge))
            .await
            .expect("route task");
        let started = Instant::now();
        direct.push((
            "127.0.0.1 routed out of the pod",
            pod_get_direct(&intruder, imds, ask.clone(), NO_REDIRECT_CONNECT_TIMEOUT).await,
        ));
        let took = started.elapsed();
        for (what, r) in &direct {
            assert!(
                r.is_err(),
                "a pod calling the node's IMDS ({imds}) at {what} gets no answer at all: {r:?}"
            );
        }
        assert!(
            took < NO_REDIRECT_CONNECT_TIMEOUT + Duration::from_secs(1),
            "bounded by the connect timeout: {took:?}"
        );
        // (Pod m1: m0 and m7 have attackers sitting on their addresses since phase 2.)
        let r = pod_get(&pods[1], None, token_path(None), CONNECT_TIMEOUT)
            .await
            .expect("answered");
        assert_eq!(
            r.token_appid(),
            Some(client_id(IDENTITIES[1])),
            "entitled pods are still served: {r:?}"
        );
        report(&format!(
            "agent_netns matrix:   {:<22} {n}/{n} without an answer ({})",
            "node IMDS directly",
            direct
                .iter()
                .map(|(what, r)| format!(
                    "{what}: {}",
                    r.as_ref().err().map_or("answered", |e| e.as_str())
                ))
                .collect::<Vec<_>>()
                .join("; "),
            n = direct.len(),
        ));

        // Control: the same spoofed packets against an agent without the check get the victim's token, so the
        // refusals above are the check's doing, not an artefact of the testbed.
        let mut agent = agent;
        assert_eq!(agent.terminate().await, Some(0), "{}", agent.logs());
        let unchecked = start_agent(&env, &node, "nocheck", &["--spoof-check", "off"], None).await;
        wait_active(&unchecked).await;
        let r = pod_get(
            &pods[8],
            Some(pods[0].ip()),
            token_path(None),
            CONNECT_TIMEOUT,
        )
        .await
        .expect("answered");
        assert_eq!(
            r.token_appid(),
            Some(client_id(IDENTITIES[0])),
            "without the check the spoofer gets the victim's token: {r:?}"
        );
        report(
            "agent_netns matrix: control: with --spoof-check off the same spoofed request gets the victim's token",
        );

        // Control: without the localnet rule the intruder's route reaches the node's IMDS and gets a token for an
        // identity it has no binding to, so the silence above is the rule's doing.
        let firewall = node.clone();
        tokio::task::spawn_blocking(move || node_localnet_rule(&firewall, "-D"))
            .await
            .expect("iptables task");
        let r = pod_get_direct(&intruder, imds, ask, CONNECT_TIMEOUT).await;
        let firewall = node.clone();
        tokio::task::spawn_blocking(move || node_localnet_rule(&firewall, "-I"))
            .await
            .expect("iptables task");
        assert_eq!(
            r.as_ref().ok().and_then(Reply::token_appid),
            Some(client_id(IDENTITIES[0])),
            "without the localnet rule the routed request reaches the node's IMDS: {r:?}"
        );
        report(
            "agent_netns matrix: control: without kube-proxy's localnet rule the routed request gets the node's token from its IMDS",
        );
    });
}

/// Extra attempts for a MAC-spoofing request that got no answer (see `run_cases`).
const MAC_SPOOF_RETRIES: usize = 2;

/// Sends all `cases` concurrently and tallies them.
async fn run_cases(pods: &[Arc<PodNet>], roles: &[Role], cases: Vec<Case>, tally: &mut Tally) {
    let mut tasks = Vec::new();
    for c in cases {
        let pod = pods[c.caller].clone();
        let path = token_path(c.client.map(|i| client_id(IDENTITIES[i])).as_deref());
        let src = c.spoof.map(|(_, ip)| ip);
        tasks.push((
            c,
            tokio::spawn(async move { pod_get(&pod, src, path, CONNECT_TIMEOUT).await }),
        ));
    }
    for (c, task) in tasks {
        let mut r = task.await.expect("request task");
        // With a shared MAC the bridge forwards to the port it learned the address on last: when the victim's own
        // traffic re-taught it, the agent's answer went to the victim. Re-announce from the attacker (a real
        // attacker would keep doing so) and ask again, at most twice; the answer must still be the refusal.
        for _ in 0..MAC_SPOOF_RETRIES {
            if !(c.mac_spoof && r.is_err()) {
                break;
            }
            let (pod, ip) = (pods[c.caller].clone(), c.spoof.map(|(_, ip)| ip));
            if let Some(ip) = ip {
                let announce = pod.clone();
                let _ = tokio::task::spawn_blocking(move || announce.send_gratuitous_arp(ip)).await;
            }
            let path = token_path(c.client.map(|i| client_id(IDENTITIES[i])).as_deref());
            r = pod_get(&pod, ip, path, CONNECT_TIMEOUT).await;
        }
        let kind: &'static str = match (c.spoof, roles[c.caller], c.client) {
            (Some(_), _, _) if c.mac_spoof => "spoofed IP and MAC",
            (Some(_), _, _) => "spoofed source",
            (None, Role::Bound(i), Some(k)) if k != i => "wrong client_id",
            (None, Role::Bound(_), _) => "bound",
            (None, Role::Unlabelled, _) => "unlabelled",
            (None, Role::NoBinding, _) => "no binding",
            (None, Role::Excepted, _) => "excepted",
        };
        let what = format!(
            "pod m{}{} asking {:?} ({kind})",
            c.caller,
            c.spoof
                .map(|(v, ip)| format!(" as m{v} ({ip})"))
                .unwrap_or_default(),
            c.client.map(|i| IDENTITIES[i]),
        );
        let entry = tally.by_kind.entry(kind).or_default();
        entry.0 += 1;
        match (&c.entitled, &r) {
            (Some(want), Ok(reply)) => {
                tally.entitled += 1;
                let got = reply.token_appid();
                let right = match want {
                    Some(cid) => got.as_deref() == Some(cid.as_str()),
                    None => got.is_some(),
                };
                if right {
                    tally.entitled_answered += 1;
                    entry.1 += 1;
                } else {
                    tally.problems.push(format!(
                        "{what}: want a token for {want:?}, got {} {}",
                        reply.status, reply.body
                    ));
                }
            }
            (Some(_), Err(e)) => {
                tally.entitled += 1;
                tally
                    .problems
                    .push(format!("{what}: entitled but no answer: {e}"));
            }
            (None, Ok(reply)) => {
                tally.not_entitled += 1;
                if reply.has_token() || reply.status == 200 {
                    tally.tokens_to_not_entitled += 1;
                    tally.problems.push(format!(
                        "{what}: NOT entitled but got {} for {:?}",
                        reply.status,
                        reply.token_appid()
                    ));
                } else if reply.status == c.refusal {
                    tally.refused_as_expected += 1;
                    entry.1 += 1;
                } else {
                    tally.problems.push(format!(
                        "{what}: want {}, got {} {}",
                        c.refusal, reply.status, reply.body
                    ));
                }
            }
            (None, Err(e)) => {
                // No answer is no token, but the agent should have refused explicitly.
                tally.not_entitled += 1;
                tally
                    .problems
                    .push(format!("{what}: want {}, got no answer: {e}", c.refusal));
            }
        }
    }
}

/// Fake iptables binaries that fail like a held xtables lock while `<dir>/fail` exists, else run the real ones.
fn fake_iptables(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).expect("fakebin");
    for name in IPTABLES_TOOLS {
        let real = find_tool(name).unwrap_or_else(|| panic!("{name} not installed"));
        let script = format!(
            "#!/bin/sh\necho \"{name} $*\" >> '{log}'\nif [ -e '{fail}' ]; then\n  echo 'Another app is currently holding the xtables lock. Stopped waiting after 5s.' >&2\n  echo '{name}: Resource temporarily unavailable' >&2\n  exit 4\nfi\nexec '{real}' \"$@\"\n",
            log = dir.join("calls.log").display(),
            fail = dir.join("fail").display(),
            real = real.display(),
        );
        let path = bin.join(name);
        std::fs::write(&path, script).expect("write fake");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin
}

/// iptables failing (lock contention): clear errors, no crash, no token to anyone; recovery; failed cleanup.
fn iptables_failures_are_reported_and_never_fatal(backend: Backend) {
    const TEST: &str = "iptables_failures_are_reported_and_never_fatal";
    if !prerequisites(TEST) {
        return;
    }
    in_node(|node| async move {
        let env = start_env(backend).await;
        let id_a = create_identity(&env, "id-a").await;
        env.binding("default", "b-a", "id-a", "sel-a").await;
        let web_ip = create_pod(&env, "web", json!({"aadpodidbinding": "sel-a"})).await;
        create_assigned(&env, "web", &id_a).await;
        let idle_ip = create_pod(&env, "idle", json!({"app": "idle"})).await;
        let web = attach_pod(&node, web_ip).await;
        let idle = attach_pod(&node, idle_ip).await;

        let fake = env.dir.path().join("ipt");
        let bin = fake_iptables(&fake);
        let fail = fake.join("fail");
        std::fs::write(&fail, "").expect("fail marker");
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
        let mut agent = start_agent(
            &env,
            &node,
            "iptfail",
            &["--ipt-update-interval-sec", "2"],
            Some(&path),
        )
        .await;

        // Failing: retried and counted, never fatal; not Active; no redirect, so no pod gets anything.
        eventually("iptables errors counted", WAIT, || async {
            (agent.metric("podid_agent_iptables_errors_count").await >= 2.0).then_some(())
        })
        .await;
        let first = agent.metric("podid_agent_iptables_errors_count").await;
        eventually("iptables errors keep being counted", WAIT, || async {
            (agent.metric("podid_agent_iptables_errors_count").await > first).then_some(())
        })
        .await;
        assert!(agent.alive(), "the agent keeps running: {}", agent.logs());
        assert_eq!(agent.health().await, "Not Active");
        let logs = agent.logs();
        assert!(logs.contains("iptables setup failed"), "{logs}");
        assert!(
            logs.contains("Resource temporarily unavailable"),
            "the log names the cause: {logs}"
        );
        assert!(!logs.contains("panicked"), "{logs}");
        let calls = std::fs::read_to_string(fake.join("calls.log")).unwrap_or_default();
        assert!(!calls.is_empty(), "the agent ran the fake iptables");
        let installed = rules(&node).await;
        assert!(
            !installed.contains("aad-metadata"),
            "nothing was installed:\n{installed}"
        );
        for pod in [&web, &idle] {
            let r = pod_get(pod, None, token_path(None), NO_REDIRECT_CONNECT_TIMEOUT).await;
            assert!(r.is_err(), "no redirect, no answer: {r:?}");
        }

        // iptables works again: the redirect appears, the right pod is served, the others refused.
        std::fs::remove_file(&fail).expect("remove marker");
        wait_active(&agent).await;
        let installed = rules(&node).await;
        assert!(
            installed.contains("-A PREROUTING -j aad-metadata"),
            "{installed}"
        );
        let r = pod_get(&web, None, token_path(None), CONNECT_TIMEOUT)
            .await
            .expect("answered");
        assert_eq!(r.token_appid(), Some(client_id("id-a")), "{r:?}");
        let t = Instant::now();
        let r = pod_get(
            &idle,
            None,
            token_path(Some(&client_id("id-a"))),
            CONNECT_TIMEOUT,
        )
        .await
        .expect("answered");
        assert_eq!(r.status, 404, "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(2));

        // Cleanup failing on SIGTERM: exit 1 with a clear error; the chain stays and requests reach nothing.
        std::fs::write(&fail, "").expect("fail marker");
        let code = agent.terminate().await;
        let logs = agent.logs();
        assert_eq!(code, Some(1), "{logs}");
        assert!(
            logs.contains("failed to remove the aad-metadata chain"),
            "{logs}"
        );
        assert!(logs.contains("Resource temporarily unavailable"), "{logs}");
        let left = rules(&node).await;
        assert!(left.contains("-A PREROUTING -j aad-metadata"), "{left}");
        let r = pod_get(&web, None, token_path(None), CONNECT_TIMEOUT).await;
        assert!(r.is_err(), "no agent behind the stale redirect: {r:?}");
    });
}
