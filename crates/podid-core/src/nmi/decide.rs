//! The decision for one token request, written once (sans IO): the agent drives it with its watches, clocks and
//! token fetches; `podid doctor` replays it on the facts it gathers, so the two cannot drift.
//!
//! # States
//!
//! ```text
//! TokenRequest::parse ──(header, resource)──────────────────────────────► Refuse(Refusal)
//!        │
//!   pod known? (the agent's index or live lookup: IO, outside)  ─────────► Refuse(Pod*)
//!        │
//!   excepted? ── yes ─► Fetch { identity: None, plan: NodeImds | Err(ObjectIdUnsupported) }
//!        │ no
//!   select (mode):
//!     standard  : fast refusal ─► Refuse(NoLabel | NoBinding)
//!                 AAIs ready    ─► protection ─► choose ─► plan
//!                 AAIs pending  ─► Refuse(NothingToWaitFor | CreatedTimeout | AssignedTimeout) | Wait { until }
//!     managed,
//!     federated : bound identities ─► protection ─► choose ─► plan
//!        │
//!   budget (the agent's fairness, outside)                 ─────────────► Refuse(Budget)
//!        │
//!   plan: FetchPlan::{NodeImds, Imds, ServicePrincipal, Federated} | Refuse(NoTenant | NoSecretRef | UnsupportedType)
//! ```
//!
//! A [`Decision::Fetch`] carries its plan as a `Result`: the agent spends the pod's budget between choosing the
//! identity and planning its fetch (so a spent budget answers 429 before an unusable identity's 403/503), and
//! the doctor reads the same result as "token" or "unusable identity".
//!
//! Every refusal is a [`Refusal`]; [`Refusal::reply`] is the one mapping to upstream's HTTP reply (status, body
//! text, `Retry-After`). The waits are relative: `elapsed` is the time since the request started waiting and
//! [`Decision::Wait::until`] the point (on the same scale) at which to ask again if nothing changed first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::reply::Reply;
use super::request::{Wanted, metadata_header_ok, parse_token_query};
use super::select::{
    AssignedEval, AssignedView, BindingView, IdentityView, assigned_timeout_message,
    bound_identities, choose, created_timeout_message, eval_assigned, is_controller_pod,
    is_excepted, standard_fast_refusal, standard_nothing_to_wait_for, without_protected,
};
use crate::protect::ProtectedIdentities;

/// Pod label whose value is matched against `AzureIdentityBinding.spec.selector` (re-exported by `podid-k8s`).
pub const POD_LABEL_KEY: &str = "aadpodidbinding";
/// Longest `resource` accepted, bytes (real audiences are URIs of a few dozen bytes; a pod must not make the
/// agent carry megabytes into cache keys, upstream calls and logs).
pub const MAX_RESOURCE_BYTES: usize = 2048;
/// The refusal of `object_id` requests (upstream words).
const OBJECT_ID_UNSUPPORTED: &str =
    "object_id is not supported by the node agent: ask by client_id or mi_res_id";

// === settings ===

/// Operation mode of the agent (`--operation-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Identities come from the pod's AzureAssignedIdentities (written by the controller).
    Standard,
    /// Identities come from bindings and identities in the pod's namespace (assigned to nodes out of band).
    Managed,
    /// podid: identities come from bindings; tokens from a federated credential trusting the pod's service account.
    Federated,
}

impl Mode {
    /// The flag value (`standard`, `managed`, `federated`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standard => "standard",
            Mode::Managed => "managed",
            Mode::Federated => "federated",
        }
    }

    /// Parses a flag value, case-insensitively (as `--operation-mode`).
    pub fn parse(s: &str) -> Result<Mode, UnknownMode> {
        match s.to_ascii_lowercase().as_str() {
            "standard" => Ok(Mode::Standard),
            "managed" => Ok(Mode::Managed),
            "federated" => Ok(Mode::Federated),
            _ => Err(UnknownMode(s.to_string())),
        }
    }
}

/// A mode name that is not `standard`, `managed` or `federated`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation mode {0:?}: use standard, managed or federated")]
pub struct UnknownMode(pub String);

/// `AzureIdentity.spec.type`, typed (the CRD keeps the integer: [`IdentityKind::from_wire`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// 0: user-assigned managed identity (tokens from the node's IMDS).
    UserAssignedMsi,
    /// 1: service principal with a client secret.
    ServicePrincipalSecret,
    /// 2: service principal with a certificate.
    ServicePrincipalCertificate,
    /// Any other value (refused when chosen).
    Unsupported(i64),
}

impl IdentityKind {
    /// From the CRD's integer.
    #[must_use]
    pub fn from_wire(t: i64) -> IdentityKind {
        match t {
            0 => IdentityKind::UserAssignedMsi,
            1 => IdentityKind::ServicePrincipalSecret,
            2 => IdentityKind::ServicePrincipalCertificate,
            t => IdentityKind::Unsupported(t),
        }
    }

    /// The CRD's integer.
    #[must_use]
    pub fn wire(self) -> i64 {
        match self {
            IdentityKind::UserAssignedMsi => 0,
            IdentityKind::ServicePrincipalSecret => 1,
            IdentityKind::ServicePrincipalCertificate => 2,
            IdentityKind::Unsupported(t) => t,
        }
    }
}

impl IdentityView {
    /// `spec.type`, typed.
    #[must_use]
    pub fn kind(&self) -> IdentityKind {
        IdentityKind::from_wire(self.id_type)
    }
}

/// How long a standard-mode request waits for the controller (`--retry-attempts-for-created`,
/// `--retry-attempts-for-assigned`, `--find-identity-retry-interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBudget {
    /// Attempts while `Created`.
    pub retry_created: u32,
    /// Further attempts for `Assigned`.
    pub retry_assigned: u32,
    /// Seconds per attempt.
    pub retry_interval_secs: u64,
}

impl WaitBudget {
    fn created_deadline(&self) -> Duration {
        Duration::from_secs(self.retry_interval_secs) * self.retry_created
    }

    fn total_deadline(&self) -> Duration {
        Duration::from_secs(self.retry_interval_secs)
            * self.retry_created.saturating_add(self.retry_assigned)
    }
}

/// The agent's settings that change the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Operation mode.
    pub mode: Mode,
    /// `--forceNamespaced`.
    pub force_namespaced: bool,
    /// `--MICNamespace`: controller pods there (ReplicaSet `mic*`) get node tokens directly.
    pub mic_namespace: String,
    /// Cluster identity protection.
    pub protected: ProtectedIdentities,
    /// Standard mode's wait for the controller.
    pub wait: WaitBudget,
}

impl Policy {
    /// Namespaced matching in effect (managed mode always matches in the pod's namespace).
    #[must_use]
    pub fn namespaced(&self) -> bool {
        self.force_namespaced || self.mode == Mode::Managed
    }
}

// === inputs ===

/// A token request, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `resource` (non-empty, at most [`MAX_RESOURCE_BYTES`]).
    pub resource: String,
    /// The identity asked for.
    pub wanted: Wanted,
}

impl TokenRequest {
    /// A pod's `/metadata/identity/oauth2/token` request: the `Metadata` header rule (when required), then the
    /// resource.
    pub fn parse(
        raw_query: &str,
        metadata_header: Option<&[u8]>,
        header_required: bool,
    ) -> Result<TokenRequest, Refusal> {
        if header_required && !metadata_header_ok(metadata_header) {
            return Err(Refusal::MetadataHeaderMissing);
        }
        let q = parse_token_query(raw_query);
        if q.resource.is_empty() {
            return Err(Refusal::ResourceEmpty);
        }
        if q.resource.len() > MAX_RESOURCE_BYTES {
            return Err(Refusal::ResourceTooLong {
                len: q.resource.len(),
            });
        }
        Ok(TokenRequest {
            resource: q.resource,
            wanted: q.wanted,
        })
    }

    /// A host's `/host/token` request: the `podns` and `podname` headers, a loopback source, then the resource.
    /// Returns the request and the pod (namespace, name).
    pub fn parse_host(
        raw_query: &str,
        podns: &str,
        podname: &str,
        source: IpAddr,
    ) -> Result<(TokenRequest, String, String), Refusal> {
        if podns.is_empty() || podname.is_empty() {
            return Err(Refusal::HostPodHeadersMissing);
        }
        if super::pods::canonical(source) != IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
            return Err(Refusal::HostNotLocal);
        }
        let q = parse_token_query(raw_query);
        if q.resource.is_empty() {
            return Err(Refusal::ResourceEmpty);
        }
        Ok((
            TokenRequest {
                resource: q.resource,
                wanted: q.wanted,
            },
            podns.to_string(),
            podname.to_string(),
        ))
    }
}

/// The calling pod, as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// Labels (`aadpodidbinding`, exception labels).
    pub labels: &'a BTreeMap<String, String>,
    /// First owner reference of kind ReplicaSet.
    pub replicaset: Option<&'a str>,
    /// `spec.serviceAccountName` (federated mode).
    pub service_account: &'a str,
}

impl Caller<'_> {
    /// The `aadpodidbinding` label, as written (maybe empty).
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        self.labels.get(POD_LABEL_KEY).map(String::as_str)
    }
}

/// What the watches say now.
#[derive(Debug, Clone, Copy)]
pub struct World<'a> {
    /// Every AzureIdentityBinding.
    pub bindings: &'a [BindingView],
    /// Every AzureIdentity by (namespace, name) (empty in standard mode: the agent does not watch them).
    pub identities: &'a BTreeMap<(String, String), IdentityView>,
    /// The pod's AzureAssignedIdentities on this node (standard mode).
    pub assigned: &'a [AssignedView],
}

// === outputs ===

/// Which secret a service principal uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The Secret holds a client secret.
    ClientSecret,
    /// The Secret holds a certificate.
    Certificate,
}

/// How the agent gets the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchPlan {
    /// An excepted pod: the node's IMDS, for what was asked.
    NodeImds {
        /// `client_id=` asked for.
        client_id: Option<String>,
        /// `mi_res_id=` asked for.
        resource_id: Option<String>,
    },
    /// A user-assigned managed identity through the node's IMDS, by client ID.
    Imds {
        /// `spec.clientID`.
        client_id: String,
    },
    /// A service principal (secret or certificate from a Secret).
    ServicePrincipal {
        /// `namespace/name/uid+resourceVersion` (keys caches to this exact object).
        identity_key: String,
        /// `spec.tenantID`.
        tenant_id: String,
        /// `spec.clientID`.
        client_id: String,
        /// `spec.auxiliaryTenantIDs`.
        aux_tenant_ids: Vec<String>,
        /// What the Secret holds.
        secret: SecretKind,
        /// The Secret's namespace.
        secret_namespace: String,
        /// The Secret's name.
        secret_name: String,
    },
    /// Federated: the pod's service-account token exchanged in the identity's tenant.
    Federated {
        /// `spec.tenantID`.
        tenant_id: String,
        /// `spec.clientID`.
        client_id: String,
        /// The pod's namespace.
        namespace: String,
        /// The pod's service account.
        service_account: String,
    },
}

/// The machine's answer for one round.
// One per request, returned by value and consumed at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve (after the budget): `identity` is the chosen one (`None` for excepted pods), `plan` how to fetch
    /// its token, or why it cannot be.
    Fetch {
        /// The chosen identity.
        identity: Option<IdentityView>,
        /// How to get the token.
        plan: Result<FetchPlan, Refusal>,
    },
    /// Standard mode: nothing usable yet; ask again when the watches change, or at `until` at the latest.
    Wait {
        /// Since the start of the wait.
        until: Duration,
        /// Some matching AAI is still `Created`.
        created: bool,
    },
    /// Refused now.
    Refuse(Refusal),
}

/// Why a request is refused: one variant per upstream reply ([`Refusal::reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Metadata: true` is required and missing.
    MetadataHeaderMissing,
    /// No `resource`.
    ResourceEmpty,
    /// `resource` longer than [`MAX_RESOURCE_BYTES`].
    ResourceTooLong {
        /// Its length, bytes.
        len: usize,
    },
    /// `/host/token` without `podns` / `podname`.
    HostPodHeadersMissing,
    /// `/host/token` from another address than loopback.
    HostNotLocal,
    /// `object_id` requests.
    ObjectIdUnsupported,
    /// The anti-spoofing check refused the source.
    Spoofed {
        /// The source.
        ip: IpAddr,
        /// Why.
        reason: String,
    },
    /// The anti-spoofing check could not verify the source.
    Unverified {
        /// The source.
        ip: IpAddr,
        /// The error.
        error: String,
    },
    /// The anti-spoofing check itself failed to run.
    PeerCheckFailed(String),
    /// Several pods claim the caller's IP.
    PodAmbiguous {
        /// The IP.
        ip: IpAddr,
        /// `namespace/name` of each.
        pods: Vec<String>,
    },
    /// No pod has the caller's IP after the live lookup.
    PodNotOnNode {
        /// The IP.
        ip: IpAddr,
        /// This node.
        node: String,
    },
    /// The live lookup by IP failed (`error: None`: timed out).
    PodLookupFailed {
        /// The IP.
        ip: IpAddr,
        /// The error.
        error: Option<String>,
    },
    /// `/host/token`: no such pod.
    PodNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// `/host/token`: the lookup by name failed (`error: None`: timed out).
    PodGetFailed {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The error.
        error: Option<String>,
    },
    /// Standard mode: no label, or a label no binding has (404 at once).
    Unbound(String),
    /// No identity matches the request (404, or 503 + `Retry-After` when configured); `candidates` were usable.
    NotFound {
        /// Upstream's words.
        message: String,
        /// The usable identities `choose` looked at.
        candidates: Vec<IdentityView>,
    },
    /// Standard mode: no assignment can come for what was asked.
    NothingToWaitFor(String),
    /// Standard mode: nothing usable within the `Created` budget.
    CreatedTimeout(String),
    /// Standard mode: nothing usable within the whole budget.
    AssignedTimeout(String),
    /// Cluster identity protection.
    Protected(String),
    /// Federated mode: the identity has no tenant.
    NoTenant {
        /// Namespace of the identity.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A service principal without a secret reference.
    NoSecretRef {
        /// Namespace of the identity.
        namespace: String,
        /// Name.
        name: String,
    },
    /// `spec.type` not 0, 1 or 2.
    UnsupportedType(i64),
    /// The pod spent its budget of new resources.
    Budget {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Burst.
        burst: u32,
        /// Per minute.
        per_minute: u32,
        /// Seconds until the next one.
        retry_after_secs: u64,
    },
    /// The token fetch for an identity failed.
    TokenFailed {
        /// The status the error maps to.
        status: u16,
        /// The error.
        message: String,
    },
    /// The token fetch for an excepted pod failed.
    NodeTokenFailed(String),
    /// The fetch returned no token.
    NoToken,
    /// The agent is stopping.
    ShuttingDown,
    /// A proxied request's body could not be read.
    ProxyBodyFailed(String),
    /// A proxied request's body did not arrive in time.
    ProxyBodyTimeout {
        /// The body-read timeout, seconds.
        secs: u64,
    },
    /// The proxied request to IMDS failed.
    ProxyFailed(String),
}

impl Refusal {
    /// The HTTP reply (status, upstream body text, `Retry-After`); `retry_after_header` is
    /// `--set-retry-after-header` for pod requests (identity lookups then answer 503 + `Retry-After`).
    #[must_use]
    pub fn reply(&self, retry_after_header: bool) -> Reply {
        match self {
            Refusal::MetadataHeaderMissing => Reply::metadata_header_missing(),
            Refusal::ResourceEmpty => Reply::error(400, "parameter resource cannot be empty"),
            Refusal::ResourceTooLong { len } => Reply::error(
                400,
                format!(
                    "parameter resource is too long ({len} bytes; at most {MAX_RESOURCE_BYTES})"
                ),
            ),
            Refusal::HostPodHeadersMissing => {
                Reply::error(400, "missing 'podname' and 'podns' from request header")
            }
            Refusal::HostNotLocal => Reply::error(500, "request remote address is not from a host"),
            Refusal::ObjectIdUnsupported => Reply::error(400, OBJECT_ID_UNSUPPORTED),
            Refusal::Spoofed { ip, reason } => {
                Reply::error(403, format!("request from {ip} refused: {reason}"))
            }
            Refusal::Unverified { ip, error } => Reply::error(
                403,
                format!("request from {ip} refused: the source could not be verified: {error}"),
            ),
            Refusal::PeerCheckFailed(e) => Reply::error(500, format!("peer check failed: {e}")),
            Refusal::PodAmbiguous { ip, pods } => Reply::error(
                500,
                format!(
                    "failed to match pod IP {ip} with [{}]: several pods claim it",
                    pods.join(" ")
                ),
            ),
            Refusal::PodNotOnNode { ip, node } => Reply::error(
                500,
                format!("pod list is empty: no Pending or Running pod on node {node} has IP {ip}"),
            ),
            Refusal::PodLookupFailed { ip, error: Some(e) } => Reply::error(
                500,
                format!(
                    "pod list is empty: no pod with IP {ip} in the cache and the API lookup failed: {e}"
                ),
            ),
            Refusal::PodLookupFailed { ip, error: None } => Reply::error(
                500,
                format!(
                    "pod list is empty: no pod with IP {ip} in the cache and the API lookup timed out"
                ),
            ),
            Refusal::PodNotFound { namespace, name } => {
                Reply::error(404, format!("pod {namespace}/{name} not found"))
            }
            Refusal::PodGetFailed {
                namespace,
                name,
                error,
            } => Reply::error(
                500,
                format!(
                    "failed to get pod {namespace}/{name}: {}",
                    error.as_deref().unwrap_or("timed out")
                ),
            ),
            Refusal::Unbound(m) => Reply::error(404, m),
            Refusal::NotFound { message: m, .. }
            | Refusal::NothingToWaitFor(m)
            | Refusal::CreatedTimeout(m)
            | Refusal::AssignedTimeout(m) => Reply::identity_not_found(m, retry_after_header),
            Refusal::Protected(m) => Reply::error(403, m),
            Refusal::NoTenant { namespace, name } => Reply::error(
                403,
                format!(
                    "identity {namespace}/{name} has no spec.tenantID: federated mode exchanges the pod's service-account token in the identity's tenant, so it needs one"
                ),
            ),
            Refusal::NoSecretRef { namespace, name } => Reply::error(
                503,
                format!("identity {namespace}/{name} has no clientPassword secret reference"),
            ),
            Refusal::UnsupportedType(t) => {
                Reply::error(503, format!("identity type {t} is not supported"))
            }
            Refusal::Budget {
                namespace,
                name,
                burst,
                per_minute,
                retry_after_secs,
            } => {
                let mut r = Reply::error(
                    429,
                    format!(
                        "pod {namespace}/{name} asked for too many different resources ({burst} at once, then {per_minute} a minute): ask again in {retry_after_secs} s"
                    ),
                );
                r.retry_after = Some(u32::try_from(*retry_after_secs).unwrap_or(u32::MAX));
                r
            }
            Refusal::TokenFailed { status, message } => Reply::error(*status, message),
            Refusal::NodeTokenFailed(e) => Reply::error(
                403,
                format!("failed to get service principal token, error: {e}"),
            ),
            Refusal::NoToken => Reply::error(503, "no token"),
            Refusal::ShuttingDown => Reply::error(500, "agent shutting down"),
            Refusal::ProxyBodyFailed(e) => {
                Reply::error(500, format!("failed to read the request body: {e}"))
            }
            Refusal::ProxyBodyTimeout { secs } => Reply::error(
                408,
                format!("the request body did not arrive within {secs} s"),
            ),
            Refusal::ProxyFailed(e) => Reply::error(500, e),
        }
    }

    /// The reply on `/host/token`: identity selection refusals are a plain 404 with the same words (upstream).
    #[must_use]
    pub fn host_selection_reply(&self) -> Reply {
        Reply::error(404, self.reply(false).body.trim_end())
    }
}

// === the machine ===

/// An excepted pod: an AzurePodIdentityException (`podLabels` of those in the pod's namespace) or the controller
/// heuristic.
#[must_use]
pub fn is_exempt<'a>(
    policy: &Policy,
    caller: &Caller<'_>,
    exceptions: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
) -> bool {
    is_excepted(caller.labels, exceptions)
        || is_controller_pod(caller.namespace, caller.replicaset, &policy.mic_namespace)
}

/// An excepted pod's fetch: the node's IMDS for what was asked (`object_id` refused).
#[must_use]
pub fn exempt(wanted: &Wanted) -> Decision {
    let plan = match wanted {
        Wanted::Any => Ok(FetchPlan::NodeImds {
            client_id: None,
            resource_id: None,
        }),
        Wanted::ClientId(c) => Ok(FetchPlan::NodeImds {
            client_id: Some(c.clone()),
            resource_id: None,
        }),
        Wanted::ResourceId(r) => Ok(FetchPlan::NodeImds {
            client_id: None,
            resource_id: Some(r.clone()),
        }),
        Wanted::ObjectId(_) => Err(Refusal::ObjectIdUnsupported),
    };
    Decision::Fetch {
        identity: None,
        plan,
    }
}

/// The whole decision for a pod's token request at `elapsed` into its wait: exceptions, then [`select`].
#[must_use]
pub fn decide<'a>(
    policy: &Policy,
    caller: &Caller<'_>,
    world: &World<'_>,
    exceptions: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
    wanted: &Wanted,
    elapsed: Duration,
) -> Decision {
    if is_exempt(policy, caller, exceptions) {
        return exempt(wanted);
    }
    select(policy, caller, world, wanted, elapsed)
}

/// Identity selection (no exceptions: `/host/token` starts here), protection, and the fetch plan.
#[must_use]
pub fn select(
    policy: &Policy,
    caller: &Caller<'_>,
    world: &World<'_>,
    wanted: &Wanted,
    elapsed: Duration,
) -> Decision {
    if let Wanted::ObjectId(_) = wanted {
        return Decision::Refuse(Refusal::ObjectIdUnsupported);
    }
    let (ns, name) = (caller.namespace, caller.name);
    let label = caller.label();
    let chosen = match policy.mode {
        Mode::Managed | Mode::Federated => {
            let namespaced = policy.namespaced();
            let ids = bound_identities(ns, label, world.bindings, world.identities, namespaced);
            choose_protected(policy, ids, wanted, caller, namespaced)
        }
        Mode::Standard => {
            if let Some(msg) = standard_fast_refusal(
                ns,
                name,
                label,
                world.bindings,
                !world.assigned.is_empty(),
                policy.force_namespaced,
            ) {
                return Decision::Refuse(Refusal::Unbound(msg));
            }
            match eval_assigned(world.assigned, wanted) {
                AssignedEval::Ready(list) => {
                    choose_protected(policy, list, wanted, caller, policy.force_namespaced)
                }
                AssignedEval::Pending { created } => {
                    return pending(policy, caller, world, wanted, elapsed, created);
                }
            }
        }
    };
    match chosen {
        Ok(id) => Decision::Fetch {
            plan: plan(policy.mode, &id, caller),
            identity: Some(id),
        },
        Err(r) => Decision::Refuse(r),
    }
}

fn choose_protected(
    policy: &Policy,
    ids: Vec<IdentityView>,
    wanted: &Wanted,
    caller: &Caller<'_>,
    namespaced: bool,
) -> Result<IdentityView, Refusal> {
    let ids = without_protected(ids, wanted, &policy.protected).map_err(Refusal::Protected)?;
    choose(&ids, wanted, caller.namespace, caller.name, namespaced).map_err(|message| {
        Refusal::NotFound {
            message,
            candidates: ids,
        }
    })
}

/// Standard mode with nothing usable: refuse when no assignment can come or the budget ran out, else wait.
fn pending(
    policy: &Policy,
    caller: &Caller<'_>,
    world: &World<'_>,
    wanted: &Wanted,
    elapsed: Duration,
    created: bool,
) -> Decision {
    let (ns, name) = (caller.namespace, caller.name);
    if let Some(label) = caller.label()
        && let Some(msg) = standard_nothing_to_wait_for(
            ns,
            name,
            label,
            wanted,
            world.bindings,
            world.identities,
            world.assigned,
            policy.force_namespaced,
        )
    {
        return Decision::Refuse(Refusal::NothingToWaitFor(msg));
    }
    let w = policy.wait;
    let (created_deadline, total_deadline) = (w.created_deadline(), w.total_deadline());
    if elapsed >= total_deadline {
        return Decision::Refuse(Refusal::AssignedTimeout(assigned_timeout_message(
            ns,
            name,
            w.retry_created.saturating_add(w.retry_assigned),
            w.retry_interval_secs,
            wanted,
        )));
    }
    if !created && elapsed >= created_deadline {
        return Decision::Refuse(Refusal::CreatedTimeout(created_timeout_message(
            ns,
            name,
            w.retry_created,
            w.retry_interval_secs,
            wanted,
        )));
    }
    let until = if created {
        total_deadline
    } else {
        created_deadline.min(total_deadline)
    };
    Decision::Wait { until, created }
}

/// How to fetch a token for a chosen identity, or why the agent cannot.
pub fn plan(mode: Mode, id: &IdentityView, caller: &Caller<'_>) -> Result<FetchPlan, Refusal> {
    if mode == Mode::Federated {
        if id.tenant_id.trim().is_empty() {
            return Err(Refusal::NoTenant {
                namespace: id.namespace.clone(),
                name: id.name.clone(),
            });
        }
        return Ok(FetchPlan::Federated {
            tenant_id: id.tenant_id.clone(),
            client_id: id.client_id.clone(),
            namespace: caller.namespace.to_string(),
            service_account: caller.service_account.to_string(),
        });
    }
    let secret = match id.kind() {
        IdentityKind::UserAssignedMsi => {
            return Ok(FetchPlan::Imds {
                client_id: id.client_id.clone(),
            });
        }
        IdentityKind::ServicePrincipalSecret => SecretKind::ClientSecret,
        IdentityKind::ServicePrincipalCertificate => SecretKind::Certificate,
        IdentityKind::Unsupported(t) => return Err(Refusal::UnsupportedType(t)),
    };
    let Some((secret_namespace, secret_name)) = id.secret_ref.clone() else {
        return Err(Refusal::NoSecretRef {
            namespace: id.namespace.clone(),
            name: id.name.clone(),
        });
    };
    Ok(FetchPlan::ServicePrincipal {
        identity_key: format!("{}/{}/{}", id.namespace, id.name, id.version_key),
        tenant_id: id.tenant_id.clone(),
        client_id: id.client_id.clone(),
        aux_tenant_ids: id.aux_tenant_ids.clone(),
        secret,
        secret_namespace,
        secret_name,
    })
}

#[cfg(test)]
mod tests;
