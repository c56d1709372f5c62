//! The read-only debug view on the probe port: `GET /debug/pod?ip=<pod IP>[&client_id=<id>]`.
//!
//! It answers, as JSON ([`podid_core::doctor::AgentView`]), what this agent would do *now* for a token request
//! from that IP: what its pod index says (found `namespace/name/uid`, unknown, ambiguous), its mode and namespaced
//! setting, whether the redirect is `Active` and the watches synced, and the decision — the identities it would
//! serve (name, namespace, client ID, type, AAI state) or the refusal with the same code and plain words as
//! `podid doctor` ([`podid_core::doctor::diagnose_caller`] on the watched state: one source of truth).
//!
//! Invariants: it only reads the in-memory state (no API call, no token fetch, no wait), so it cannot change what
//! the agent does; it never shows a token, a secret or a Secret's content (identities carry only a reference to
//! their Secret, which is not shown). Identity names and client IDs are identifiers, but listing them lets a caller
//! map its neighbours, so by default only loopback callers are answered (the node itself, `kubectl port-forward`);
//! `--debug-view=any` opens it to every caller that reaches the probe port, `--debug-view=off` answers 404.

use std::net::IpAddr;

use podid_core::doctor::{
    AgentLookup, AgentVerdict, AgentView, AssignedFacts, CallerFacts, ClusterFacts, ExceptionFacts,
    Mode as DoctorMode, Settings, diagnose_caller,
};
use podid_core::nmi::pods::{Lookup, canonical};
use podid_core::nmi::request::{parse_token_query, query_get};
use podid_core::nmi::select::AssignedState;
use podid_runtime::admin::{AdminRequest, Answer, JSON, TEXT, not_found};
use std::sync::atomic::Ordering;

use crate::args::{DebugView, Mode};
use crate::state::Shared;

/// The path of the view.
pub const DEBUG_POD_PATH: &str = "/debug/pod";

/// What the view needs from the flags.
#[derive(Debug, Clone)]
pub struct DebugConfig {
    /// Operation mode.
    pub mode: Mode,
    /// `--forceNamespaced` (or `FORCENAMESPACED=true`).
    pub force_namespaced: bool,
    /// `--MICNamespace`.
    pub mic_namespace: String,
    /// This node.
    pub node: String,
    /// `--debug-view`.
    pub access: DebugView,
    /// Cluster identity protection.
    pub protected: podid_core::protect::ProtectedIdentities,
}

fn doctor_mode(m: Mode) -> DoctorMode {
    match m {
        Mode::Standard => DoctorMode::Standard,
        Mode::Managed => DoctorMode::Managed,
        Mode::Federated => DoctorMode::Federated,
    }
}

fn error_json(status: u16, message: &str) -> Answer {
    (
        status,
        JSON,
        format!("{}\n", serde_json::json!({ "error": message })),
    )
}

/// Answers `GET /debug/pod?ip=...` (access rule, query parsing, the view).
#[must_use]
pub fn answer(shared: &Shared, cfg: &DebugConfig, req: &AdminRequest<'_>) -> Answer {
    match cfg.access {
        DebugView::Off => return not_found(),
        DebugView::Loopback if !canonical(req.peer.ip()).is_loopback() => {
            return (
                403,
                TEXT,
                "the debug view answers loopback callers only (--debug-view=loopback): use kubectl port-forward, or start the agent with --debug-view=any\n"
                    .to_string(),
            );
        }
        DebugView::Loopback | DebugView::Any => {}
    }
    let raw = query_get(req.query, "ip");
    let Ok(ip) = raw.trim().parse::<IpAddr>() else {
        return error_json(
            400,
            &format!("query parameter ip must be a pod IP address, got {raw:?}"),
        );
    };
    let wanted = parse_token_query(req.query).wanted;
    let view = pod_view(shared, cfg, ip, wanted);
    match serde_json::to_string_pretty(&view) {
        Ok(body) => (200, JSON, body + "\n"),
        Err(e) => error_json(500, &format!("encode the view: {e}")),
    }
}

/// The view of `ip` for a request asking for `wanted`.
#[must_use]
pub fn pod_view(
    shared: &Shared,
    cfg: &DebugConfig,
    ip: IpAddr,
    wanted: podid_core::nmi::request::Wanted,
) -> AgentView {
    let ip = canonical(ip);
    let lookup = shared.pods.read().lookup(ip);
    let (pod, verdict) = match lookup {
        Lookup::Missing => (
            AgentLookup::Unknown {
                message: format!(
                    "no Pending or Running pod with IP {ip} in node {}'s index (hostNetwork and finished pods are never indexed; a token request would first try one live API lookup)",
                    cfg.node
                ),
            },
            None,
        ),
        Lookup::Ambiguous(pods) => (
            AgentLookup::Ambiguous {
                message: format!("several pods claim IP {ip}: requests from it are refused"),
                pods,
            },
            None,
        ),
        Lookup::Found(p) => {
            let caller = CallerFacts {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                labels: p.labels.clone(),
                replicaset: p.replicaset.clone(),
                service_account: p.service_account.clone(),
                node: cfg.node.clone(),
            };
            let cluster = ClusterFacts {
                bindings: shared.binding_list().as_ref().clone(),
                identities: shared.identities.read().clone(),
                identities_known: true,
                assigned: shared
                    .assigned_named(&p.namespace, &p.name)
                    .into_iter()
                    .map(|((ns, name), v)| AssignedFacts {
                        namespace: ns,
                        name,
                        status: match v.state {
                            AssignedState::Legacy => String::new(),
                            AssignedState::Created => "Created".into(),
                            AssignedState::Assigned => "Assigned".into(),
                            AssignedState::Other => "Unassigned".into(),
                        },
                        state: v.state,
                        node: None,
                        identity: Some(v.identity),
                    })
                    .collect(),
                exceptions: shared
                    .exceptions_named(&p.namespace)
                    .into_iter()
                    .map(|(name, pod_labels)| ExceptionFacts {
                        namespace: p.namespace.clone(),
                        name,
                        pod_labels,
                    })
                    .collect(),
            };
            let settings = Settings {
                mode: doctor_mode(cfg.mode),
                force_namespaced: cfg.force_namespaced,
                mic_namespace: cfg.mic_namespace.clone(),
                wanted,
                protected: cfg.protected.clone(),
            };
            let d = diagnose_caller(&caller, &cluster, &settings);
            (
                AgentLookup::Found {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    uid: p.uid.clone(),
                },
                Some(AgentVerdict::from_verdict(&d.verdict)),
            )
        }
    };
    AgentView {
        ip: ip.to_string(),
        node: cfg.node.clone(),
        mode: doctor_mode(cfg.mode),
        force_namespaced: cfg.force_namespaced,
        mic_namespace: cfg.mic_namespace.clone(),
        redirect: if shared.initialized.load(Ordering::Acquire) {
            "Active"
        } else {
            "Not Active"
        }
        .to_string(),
        synced: shared.synced(),
        pod,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podid_core::nmi::pods::PodEntry;
    use podid_core::nmi::request::Wanted;
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    fn cfg(access: DebugView) -> DebugConfig {
        DebugConfig {
            mode: Mode::Standard,
            force_namespaced: false,
            mic_namespace: "default".into(),
            node: "n1".into(),
            access,
            protected: Default::default(),
        }
    }

    fn req<'a>(query: &'a str, peer: &str) -> AdminRequest<'a> {
        AdminRequest {
            path: DEBUG_POD_PATH,
            query,
            peer: peer.parse::<SocketAddr>().expect("peer"),
        }
    }

    #[test]
    fn access_and_queries() {
        let shared = Shared::new(Mode::Standard);
        shared.pods.write().apply(PodEntry {
            namespace: "app".into(),
            name: "p".into(),
            uid: "u1".into(),
            labels: BTreeMap::new(),
            service_account: "default".into(),
            replicaset: None,
            active: true,
            host_network: false,
            ips: vec!["10.0.0.5".parse().expect("ip")],
        });
        let local = "127.0.0.1:40000";
        let cases: &[(DebugView, &str, &str, u16)] = &[
            (DebugView::Off, "ip=10.0.0.5", local, 404),
            (DebugView::Loopback, "ip=10.0.0.5", "10.0.0.7:40000", 403),
            (
                DebugView::Loopback,
                "ip=10.0.0.5",
                "[::ffff:127.0.0.1]:1",
                200,
            ),
            (DebugView::Any, "ip=10.0.0.5", "10.0.0.7:40000", 200),
            (DebugView::Loopback, "", local, 400),
            (DebugView::Loopback, "ip=not-an-ip", local, 400),
        ];
        for (access, q, peer, want) in cases {
            let (status, ct, body) = answer(&shared, &cfg(*access), &req(q, peer));
            assert_eq!(status, *want, "{access:?} {q} {peer}: {body}");
            if status == 200 || status == 400 {
                assert_eq!(ct, JSON);
                let _: serde_json::Value = serde_json::from_str(&body).expect("json body");
            }
        }
        let (_, _, body) = answer(
            &shared,
            &cfg(DebugView::Loopback),
            &req("ip=10.0.0.5", local),
        );
        let v: AgentView = serde_json::from_str(&body).expect("view");
        assert!(matches!(&v.pod, AgentLookup::Found { uid, .. } if uid == "u1"));
        let verdict = v.verdict.expect("verdict");
        assert_eq!(verdict.code.as_deref(), Some("no_label"));
        assert_eq!(v.redirect, "Not Active");
        assert!(!v.synced);
        let unknown = pod_view(
            &shared,
            &cfg(DebugView::Any),
            "10.9.9.9".parse().expect("ip"),
            Wanted::Any,
        );
        assert!(matches!(unknown.pod, AgentLookup::Unknown { .. }));
        assert!(unknown.verdict.is_none());
    }
}
