//! The text report: one line per fact, grouped in short labelled sections, the verdict last and marked
//! (`VERDICT: OK` / `VERDICT: REFUSED`) with its "what to do" line.

use std::fmt::Write as _;

use podid_core::doctor::{
    AgentLookup, ExceptionMatch, IdentityKind, IdentityStatus, ServedIdentity, kind_name,
};

use crate::{AgentPart, Report, Source};

/// Width of the section labels.
const LABEL_WIDTH: usize = 11;

fn type_name(t: i64) -> String {
    kind_name(IdentityKind::from_wire(t))
}

fn source(s: Source) -> &'static str {
    match s {
        Source::Flag => "from the command line",
        Source::Agent => "from the agent",
        Source::Default => "default",
    }
}

/// Writes `label` then the lines, the first beside the label, the rest indented.
fn section(out: &mut String, label: &str, lines: &[String]) {
    let none = ["none".to_string()];
    let lines = if lines.is_empty() { &none[..] } else { lines };
    for (i, l) in lines.iter().enumerate() {
        let head = if i == 0 { label } else { "" };
        let _ = writeln!(out, "  {head:<LABEL_WIDTH$}{l}");
    }
}

fn served(id: &ServedIdentity) -> String {
    let mut s = format!(
        "{}/{} (clientID {}, {})",
        id.namespace,
        id.name,
        id.client_id,
        type_name(id.id_type)
    );
    if let Some(st) = &id.state {
        let _ = write!(s, ", {st}");
    }
    s
}

fn identity_status(s: &IdentityStatus) -> String {
    s.summary()
}

/// Renders the report.
pub(crate) fn render(r: &Report) -> String {
    let d = &r.diagnosis;
    let p = &r.pod;
    let mut out = String::new();
    let _ = writeln!(out, "podid doctor: {}/{}", p.namespace, p.name);

    let ips = if p.pod_ips.is_empty() {
        "no IP".to_string()
    } else {
        format!("IP {}", p.pod_ips.join(", "))
    };
    let mut pod = vec![format!(
        "node {}, {}, {ips}, service account {}",
        if p.node_name.is_empty() {
            "(none)"
        } else {
            &p.node_name
        },
        if p.phase.is_empty() {
            "no phase"
        } else {
            &p.phase
        },
        p.service_account
    )];
    if p.host_network {
        pod.push("hostNetwork: true".into());
    }
    if p.deleting {
        pod.push("being deleted".into());
    }
    section(&mut out, "pod", &pod);

    let s = &r.settings;
    section(
        &mut out,
        "settings",
        &[format!(
            "mode {} ({}), namespaced matching {} ({}), request: {}",
            s.mode.as_str(),
            source(s.mode_from),
            if d.namespaced { "on" } else { "off" },
            source(s.force_namespaced_from),
            d.requested.as_deref().unwrap_or("any identity")
        )],
    );
    section(
        &mut out,
        "label",
        &d.label
            .iter()
            .map(|l| format!("{}={l}", podid_core::doctor::POD_LABEL_KEY))
            .collect::<Vec<_>>(),
    );
    section(
        &mut out,
        "exception",
        &d.exception
            .iter()
            .map(|e| match e {
                ExceptionMatch::Exception { name, label } => {
                    format!("AzurePodIdentityException {name} matches label {label}")
                }
                ExceptionMatch::ControllerPod { replicaset } => format!(
                    "controller pod (namespace {}, ReplicaSet {replicaset})",
                    r.settings.mic_namespace
                ),
            })
            .collect::<Vec<_>>(),
    );
    section(
        &mut out,
        "bindings",
        &d.bindings
            .iter()
            .map(|b| {
                let mut l = format!("{}/{} -> AzureIdentity {}", b.namespace, b.name, b.identity);
                if !b.in_scope {
                    l.push_str(" (other namespace: ignored by namespaced matching)");
                }
                l
            })
            .collect::<Vec<_>>(),
    );
    section(
        &mut out,
        "identities",
        &d.identities
            .iter()
            .map(|c| {
                let mut l = format!("{}/{}: {}", c.namespace, c.name, identity_status(&c.status));
                if let Some(t) = c.id_type {
                    let _ = write!(l, ", {}", type_name(t));
                }
                if let Some(cid) = &c.client_id {
                    let _ = write!(l, ", clientID {cid}");
                }
                if let Some(a) = &c.expected_assigned {
                    let _ = write!(l, ", AAI {a}");
                }
                l
            })
            .collect::<Vec<_>>(),
    );
    section(
        &mut out,
        "assigned",
        &d.assigned
            .iter()
            .map(|a| {
                let mut l = format!(
                    "{}/{}: {}",
                    a.namespace,
                    a.name,
                    if a.status.is_empty() {
                        "(legacy empty status: used as Assigned)"
                    } else {
                        &a.status
                    }
                );
                if let Some(i) = &a.identity {
                    let _ = write!(l, ", identity {i}");
                }
                if let Some(n) = &a.node {
                    let _ = write!(l, ", node {n}");
                }
                if !a.on_pod_node {
                    l.push_str(" (not the pod's node)");
                }
                l
            })
            .collect::<Vec<_>>(),
    );

    let mut agent = Vec::new();
    match &r.agent {
        AgentPart::Unavailable { url, reason } => agent.push(match url {
            Some(u) => format!("agent view: not available ({reason}) [{u}]"),
            None => format!("agent view: not available ({reason})"),
        }),
        AgentPart::Available { url, view } => {
            let lookup = match &view.pod {
                AgentLookup::Found {
                    namespace,
                    name,
                    uid,
                } => {
                    format!("pod found ({namespace}/{name}, uid {uid})")
                }
                AgentLookup::Unknown { message } => format!("pod unknown: {message}"),
                AgentLookup::Ambiguous { message, .. } => format!("ambiguous: {message}"),
            };
            agent.push(format!("{url} on node {}: {lookup}", view.node));
            agent.push(format!(
                "mode {}, namespaced matching {}, redirect {}, watches {}",
                view.mode.as_str(),
                if view.force_namespaced {
                    "forced"
                } else {
                    "off"
                },
                view.redirect,
                if view.synced { "synced" } else { "NOT synced" }
            ));
            if let Some(v) = &view.verdict {
                agent.push(format!("agent says: {}", v.message));
                for id in &v.identities {
                    agent.push(format!("  would serve {}", served(id)));
                }
            }
        }
    }
    agent.extend(r.agent_notes.iter().map(|n| format!("note: {n}")));
    section(&mut out, "agent", &agent);
    if !d.notes.is_empty() {
        section(&mut out, "notes", &d.notes);
    }

    out.push('\n');
    let o = &r.outcome;
    let _ = writeln!(
        out,
        "VERDICT: {} - {}",
        if o.token { "OK" } else { "REFUSED" },
        o.message
    );
    if let Some(h) = &o.hint {
        let _ = writeln!(out, "  what to do: {h}");
    }
    out
}
