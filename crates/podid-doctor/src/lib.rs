//! `podid doctor NAMESPACE/POD`: why a pod would, or would not, get a token right now, in plain words.
//!
//! # What it does
//!
//! 1. Reads the pod and the objects that decide its identities from the API server ([`api`]):
//!    every AzureIdentityBinding and AzureIdentity, the pod's AzureAssignedIdentities (named
//!    `<pod>-<podNamespace>-<identity>`, in `default` unless namespaced), the AzurePodIdentityExceptions of its
//!    namespace.
//! 2. Asks the agent of the pod's node for its view of the pod's IP (`GET <probe>/debug/pod?ip=...`, see
//!    [`agent`]), when it knows the agent's probe URL (`--agent-url`, `--agent NODE=URL`, or the map the caller
//!    passes, e.g. the playground's). An unreachable agent is reported ("agent view: not available (...)"); the
//!    diagnosis still runs on the API objects.
//! 3. Diagnoses with `podid_core::doctor` — the agent's own selection rules, explained — using the agent's mode,
//!    namespaced setting and `--MICNamespace` unless given on the command line.
//! 4. Prints a short report (text or JSON) whose verdict says whether a token request would succeed now and, if
//!    not, why and what to do; returns the exit code: [`EXIT_TOKEN`] (0) or [`EXIT_REFUSED`] (2). Errors (no
//!    kubeconfig, pod not found, CRDs missing, forbidden) are `Err` (the binary exits 1).
//!
//! # The verdict
//!
//! The API objects decide what *should* happen; the agent's view says what *does* happen on the node now. A
//! refusal from either is a refusal (exit 2): when the objects say yes and the agent says no (watch lag, other
//! flags, a pod index miss), the report says both. An agent that has not indexed the pod yet is not a refusal (on
//! a real request it makes one live API lookup first), only a remark. Nothing here ever requests or shows a token.

pub mod agent;
pub mod api;
mod text;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use podid_core::doctor::{
    AgentLookup, AgentView, ClusterFacts, Diagnosis, Mode, PodFacts, Settings, UnknownMode,
    diagnose,
};
use podid_core::nmi::request::Wanted;
use serde::Serialize;

/// Exit code when a token request from the pod would succeed now.
pub const EXIT_TOKEN: i32 = 0;
/// Exit code when it would be refused (the report says why).
pub const EXIT_REFUSED: i32 = 2;
/// `--MICNamespace` default of the agent (upstream's).
const DEFAULT_MIC_NAMESPACE: &str = "default";

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Short sections in plain words, the verdict last.
    Text,
    /// The diagnosis, the agent's view and the verdict as one JSON object.
    Json,
}

/// `podid doctor` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct DoctorArgs {
    /// The pod: NAMESPACE/POD (or POD, in the kubeconfig context's namespace).
    #[arg(value_name = "NAMESPACE/POD")]
    pub target: String,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the in-cluster configuration).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Probe URL of the pod's node agent (e.g. http://127.0.0.1:8085): its view of the pod is shown too.
    #[arg(long = "agent-url")]
    pub agent_url: Option<String>,
    /// Probe URL of a node's agent, NODE=URL (repeatable); the pod's node picks one.
    #[arg(long = "agent", value_name = "NODE=URL", value_parser = parse_node_url)]
    pub agents: Vec<(String, String)>,
    /// Operation mode to diagnose (default: the agent's, else standard).
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// Namespaced matching (default: the agent's, else off).
    #[arg(long = "forceNamespaced", num_args = 0..=1, default_missing_value = "true", value_parser = go_bool)]
    pub force_namespaced: Option<bool>,
    /// The agent's --MICNamespace (default: the agent's, else `default`).
    #[arg(long = "MICNamespace")]
    pub mic_namespace: Option<String>,
    /// Diagnose a token request for this client_id (default: a request naming no identity).
    #[arg(long = "client-id")]
    pub client_id: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

fn parse_node_url(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((node, url)) if !node.is_empty() && !url.is_empty() => {
            Ok((node.to_string(), url.to_string()))
        }
        _ => Err(format!("expected NODE=URL, got {s:?}")),
    }
}

fn parse_mode(s: &str) -> Result<Mode, UnknownMode> {
    Mode::parse(s)
}

fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        o => Err(format!("invalid boolean {o:?}")),
    }
}

/// Why the doctor could not diagnose (the binary exits 1).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// The target is not `NAMESPACE/POD`.
    #[error("expected NAMESPACE/POD (or POD), got {0:?}")]
    Target(String),
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// The pod does not exist.
    #[error("pod {namespace}/{name} not found")]
    PodNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// An API call failed.
    #[error("{what}: {message}")]
    Api {
        /// What was being read.
        what: String,
        /// What went wrong and what to fix.
        message: String,
    },
    /// The report could not be written.
    #[error("write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The command line.
    Flag,
    /// The agent's view (its own flags).
    Agent,
    /// The default.
    Default,
}

/// The settings diagnosed and their sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsUsed {
    /// Mode.
    pub mode: Mode,
    /// Where it came from.
    pub mode_from: Source,
    /// `--forceNamespaced`.
    pub force_namespaced: bool,
    /// Where it came from.
    pub force_namespaced_from: Source,
    /// `--MICNamespace`.
    pub mic_namespace: String,
    /// `--client-id`.
    pub client_id: Option<String>,
}

/// The agent's part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AgentPart {
    /// The agent answered.
    Available {
        /// The probe URL asked.
        url: String,
        /// Its view.
        view: Box<AgentView>,
    },
    /// No view.
    Unavailable {
        /// The probe URL tried, if any.
        url: Option<String>,
        /// Why.
        reason: String,
    },
}

/// The final answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// A token request would succeed now.
    pub token: bool,
    /// Who decided: `api` (the objects) or `agent` (its view overrides a yes from the objects).
    pub decided_by: &'static str,
    /// Plain words.
    pub message: String,
    /// What to do, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The exit code.
    pub exit_code: i32,
}

/// Everything `podid doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The pod as the API shows it.
    pub pod: PodFacts,
    /// Settings diagnosed.
    pub settings: SettingsUsed,
    /// The diagnosis from the API objects.
    pub diagnosis: Diagnosis,
    /// The agent's view.
    pub agent: AgentPart,
    /// Remarks on the agent's view (disagreements).
    pub agent_notes: Vec<String>,
    /// The verdict.
    pub outcome: Outcome,
}

impl Report {
    /// The exit code: [`EXIT_TOKEN`] or [`EXIT_REFUSED`].
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code
    }

    /// The text report.
    #[must_use]
    pub fn text(&self) -> String {
        text::render(self)
    }

    /// The JSON report.
    pub fn json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|s| s + "\n")
    }
}

/// Splits `NAMESPACE/POD`; a bare `POD` takes `default_namespace`.
pub fn parse_target(
    target: &str,
    default_namespace: &str,
) -> Result<(String, String), DoctorError> {
    let bad = || DoctorError::Target(target.to_string());
    match target.split_once('/') {
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => {
            Ok((ns.to_string(), pod.to_string()))
        }
        Some(_) => Err(bad()),
        None if !target.is_empty() => Ok((default_namespace.to_string(), target.to_string())),
        None => Err(bad()),
    }
}

/// The agent probe URL for `node`: `--agent-url`, then `--agent NODE=URL`, then the caller's map.
#[must_use]
pub fn agent_url_for(
    args: &DoctorArgs,
    agents: &BTreeMap<String, String>,
    node: &str,
) -> Option<String> {
    if let Some(u) = &args.agent_url {
        return Some(u.clone());
    }
    if let Some((_, u)) = args.agents.iter().rev().find(|(n, _)| n == node) {
        return Some(u.clone());
    }
    agents.get(node).cloned()
}

/// Diagnoses `args.target` and builds the report (nothing is printed).
pub async fn examine(
    args: &DoctorArgs,
    agents: &BTreeMap<String, String>,
) -> Result<Report, DoctorError> {
    let client = api::client(args.kubeconfig.as_deref()).await?;
    let (namespace, name) = parse_target(&args.target, client.default_namespace())?;
    let (pod, cluster) = api::load(&client, &namespace, &name).await?;
    let agent = agent_part(args, agents, &pod).await;
    Ok(build_report(args, pod, &cluster, agent))
}

/// Asks the pod's node agent for its view.
async fn agent_part(
    args: &DoctorArgs,
    agents: &BTreeMap<String, String>,
    pod: &PodFacts,
) -> AgentPart {
    let Some(url) = agent_url_for(args, agents, &pod.node_name) else {
        return AgentPart::Unavailable {
            url: None,
            reason: if pod.node_name.is_empty() {
                "the pod has no node yet".into()
            } else {
                format!(
                    "no agent URL for node {}: pass --agent-url or --agent {}=URL",
                    pod.node_name, pod.node_name
                )
            },
        };
    };
    let Some(ip) = pod.pod_ips.iter().find(|i| !i.trim().is_empty()) else {
        return AgentPart::Unavailable {
            url: Some(url),
            reason: "the pod has no IP to ask about".into(),
        };
    };
    match agent::fetch_view(&url, ip, args.client_id.as_deref()).await {
        Ok(view) => AgentPart::Available {
            url: agent::base_url(&url),
            view: Box::new(view),
        },
        Err(e) => AgentPart::Unavailable {
            url: Some(agent::base_url(&url)),
            reason: e.to_string(),
        },
    }
}

/// Builds the report from fetched facts (pure; the tests call it too).
#[must_use]
pub fn build_report(
    args: &DoctorArgs,
    pod: PodFacts,
    cluster: &ClusterFacts,
    agent: AgentPart,
) -> Report {
    let view = match &agent {
        AgentPart::Available { view, .. } => Some(view.as_ref()),
        AgentPart::Unavailable { .. } => None,
    };
    let (mode, mode_from) = match (args.mode, view) {
        (Some(m), _) => (m, Source::Flag),
        (None, Some(v)) => (v.mode, Source::Agent),
        (None, None) => (Mode::Standard, Source::Default),
    };
    let (force_namespaced, force_namespaced_from) = match (args.force_namespaced, view) {
        (Some(f), _) => (f, Source::Flag),
        (None, Some(v)) => (v.force_namespaced, Source::Agent),
        (None, None) => (false, Source::Default),
    };
    let mic_namespace = args
        .mic_namespace
        .clone()
        .or_else(|| view.map(|v| v.mic_namespace.clone()))
        .unwrap_or_else(|| DEFAULT_MIC_NAMESPACE.to_string());
    let settings = Settings {
        mode,
        force_namespaced,
        mic_namespace: mic_namespace.clone(),
        wanted: match &args.client_id {
            Some(c) if !c.is_empty() => Wanted::ClientId(c.clone()),
            _ => Wanted::Any,
        },
        // The agent's cluster identity protection is its own (cloud config, flags): its view's verdict reports
        // a protected identity, and `outcome` then says that the agent refuses and why.
        protected: Default::default(),
    };
    let diagnosis = diagnose(&pod, cluster, &settings);
    let agent_notes = view
        .map(|v| agent_notes(&pod, v, &settings))
        .unwrap_or_default();
    let outcome = outcome(&diagnosis, view);
    Report {
        settings: SettingsUsed {
            mode,
            mode_from,
            force_namespaced,
            force_namespaced_from,
            mic_namespace,
            client_id: args.client_id.clone(),
        },
        pod,
        diagnosis,
        agent,
        agent_notes,
        outcome,
    }
}

fn agent_notes(pod: &PodFacts, v: &AgentView, s: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if !v.synced {
        out.push("the agent's watches have not synced yet: its view may be incomplete".into());
    }
    if v.redirect != "Active" {
        out.push(format!(
            "the agent's redirect is {}: requests to 169.254.169.254 do not reach it yet",
            v.redirect
        ));
    }
    if !pod.node_name.is_empty() && !v.node.is_empty() && v.node != pod.node_name {
        out.push(format!(
            "the agent asked runs on node {}, the pod on node {}",
            v.node, pod.node_name
        ));
    }
    if v.mode != s.mode || v.force_namespaced != s.force_namespaced {
        out.push(format!(
            "the agent runs in {} mode with namespaced matching {}; this diagnosis used {} mode, namespaced matching {}",
            v.mode.as_str(),
            on_off(v.force_namespaced),
            s.mode.as_str(),
            on_off(s.force_namespaced)
        ));
    }
    match &v.pod {
        AgentLookup::Found { uid, namespace, name } => {
            if *uid != pod.uid || *namespace != pod.namespace || *name != pod.name {
                out.push(format!(
                    "the agent's index gives IP {} to {namespace}/{name} (uid {uid}), not to this pod: stale or reused IP",
                    v.ip
                ));
            }
        }
        AgentLookup::Unknown { .. } => out.push(
            "the agent has not indexed this pod yet (a token request makes one live API lookup first)".into(),
        ),
        AgentLookup::Ambiguous { .. } => {}
    }
    out
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn outcome(d: &Diagnosis, view: Option<&AgentView>) -> Outcome {
    let refused = |decided_by, message: String, hint: Option<String>| Outcome {
        token: false,
        decided_by,
        message,
        hint,
        exit_code: EXIT_REFUSED,
    };
    if !d.verdict.is_token() {
        return refused("api", d.verdict.message(), d.verdict.hint());
    }
    if let Some(v) = view {
        match (&v.pod, &v.verdict) {
            (AgentLookup::Ambiguous { message, .. }, _) => {
                return refused(
                    "agent",
                    format!("the agent refuses now: {message}"),
                    Some("find the pods sharing the IP (kubectl get pods -A -o wide) and delete the stale one".into()),
                );
            }
            (AgentLookup::Found { .. }, Some(av)) if !av.token => {
                return refused(
                    "agent",
                    format!(
                        "the agent refuses now, although the API objects allow it: {}",
                        av.message
                    ),
                    av.hint.clone().or_else(|| {
                        Some(
                            "compare the agent's flags with the settings above; check its logs"
                                .into(),
                        )
                    }),
                );
            }
            _ => {}
        }
    }
    Outcome {
        token: true,
        decided_by: "api",
        message: d.verdict.message(),
        hint: None,
        exit_code: EXIT_TOKEN,
    }
}

/// `podid doctor`: diagnose, print the report to stdout, return the exit code ([`EXIT_TOKEN`] or
/// [`EXIT_REFUSED`]). `agents` maps node names to agent probe URLs (e.g. from the playground's state); the
/// command line's `--agent-url` and `--agent` win.
pub async fn run(args: DoctorArgs, agents: &BTreeMap<String, String>) -> anyhow::Result<i32> {
    let report = examine(&args, agents).await?;
    let out = match args.output {
        Output::Text => report.text(),
        Output::Json => report.json()?,
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => {}
        // `podid doctor ... | head`: the reader left; the exit code still says it.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(DoctorError::Output(e).into()),
    }
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let ok: &[(&str, (&str, &str))] = &[("app/p", ("app", "p")), ("p", ("ctx", "p"))];
        for (t, (ns, p)) in ok {
            assert_eq!(
                parse_target(t, "ctx").expect("target"),
                (ns.to_string(), p.to_string())
            );
        }
        for bad in ["", "/p", "app/", "a/b/c"] {
            assert!(
                matches!(parse_target(bad, "ctx"), Err(DoctorError::Target(_))),
                "{bad:?}"
            );
        }
        assert!(parse_node_url("n1=http://x").is_ok());
        assert!(parse_node_url("n1").is_err());
        assert!(parse_node_url("=http://x").is_err());
    }

    #[test]
    fn agent_url_precedence() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: DoctorArgs,
        }
        let map: BTreeMap<String, String> = [("n1".to_string(), "http://map".to_string())].into();
        let parse = |v: &[&str]| Cli::try_parse_from(v).expect("args").a;
        let a = parse(&["x", "app/p"]);
        assert_eq!(agent_url_for(&a, &map, "n1").as_deref(), Some("http://map"));
        assert_eq!(agent_url_for(&a, &map, "n2"), None);
        let a = parse(&[
            "x",
            "app/p",
            "--agent",
            "n1=http://flag",
            "--agent",
            "n2=http://two",
        ]);
        assert_eq!(
            agent_url_for(&a, &map, "n1").as_deref(),
            Some("http://flag")
        );
        let a = parse(&[
            "x",
            "app/p",
            "--agent-url",
            "http://any",
            "--agent",
            "n1=http://flag",
        ]);
        assert_eq!(agent_url_for(&a, &map, "n1").as_deref(), Some("http://any"));
        let a = parse(&[
            "x",
            "app/p",
            "--forceNamespaced",
            "--mode",
            "Managed",
            "--output",
            "json",
        ]);
        assert_eq!(
            (a.force_namespaced, a.mode, a.output),
            (Some(true), Some(Mode::Managed), Output::Json)
        );
        let a = parse(&["x", "app/p", "--forceNamespaced=false"]);
        assert_eq!(a.force_namespaced, Some(false));
        assert!(Cli::try_parse_from(["x", "app/p", "--mode", "weird"]).is_err());
    }
}
