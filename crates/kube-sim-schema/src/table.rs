//! Server-side printing: the `meta.k8s.io/v1` `Table` the API server returns for
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! kubectl (1.32) asks for tables on every human-readable `get`; it reads `columnDefinitions`
//! (hiding `priority > 0` columns unless `-o wide`), each row's `cells` (printing `null` as
//! `<none>`) and the row `object`'s `metadata` (for `--show-labels`, `-L`, the namespace column
//! of `-A`). It requests `includeObject=Object` only with `--sort-by`; otherwise the server
//! embeds a `PartialObjectMetadata` (the default, `includeObject=Metadata`).
//!
//! Columns come from [`crd_columns`] (a CRD version's `additionalPrinterColumns`) or
//! [`builtin_columns`] (the kube-apiserver printers of `pkg/printers/internalversion`, which
//! the server always runs in wide mode). [`table`] evaluates them over objects.

use jiff::Timestamp;
use kube_sim_machinery::gofmt::{Num, go_display, json_marshal};
use serde_json::{Map, Value, json};

use crate::duration::{parse_time, since};
use crate::jsonpath::JsonPath;

/// `ObjectMeta.name`'s description (the `Name` column's description everywhere).
pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `ObjectMeta.creationTimestamp`'s description (Age / Created At columns).
pub const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Where a column's cells come from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CellSource {
    /// `metadata.name`.
    Name,
    /// Evaluate [`Column::json_path`] and convert per [`Column::type_`] (CRD columns).
    JsonPath,
    /// A computation of one of the built-in printers.
    Builtin(Builtin),
}

/// Computed cells of the built-in printers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Builtin {
    /// Human duration since `metadata.creationTimestamp` (`<unknown>` if unset).
    Age,
    /// `metadata.creationTimestamp` in UTC RFC 3339 (`0001-01-01T00:00:00Z` if unset).
    CreatedAt,
    /// Pod `ready/total` containers.
    PodReady,
    /// Pod status (phase, reason, init progress, container waiting/terminated reason, …).
    PodStatus,
    /// Pod restarts, `N (AGE ago)` after a restart.
    PodRestarts,
    /// Pod IP (`<none>`).
    PodIp,
    /// Node name (`<none>`).
    PodNode,
    /// Nominated node name (`<none>`).
    PodNominatedNode,
    /// `true/total` readiness gates (`<none>`).
    PodReadinessGates,
    /// Namespace phase.
    NamespaceStatus,
    /// `Ready`/`NotReady`/`Unknown` plus `SchedulingDisabled`.
    NodeStatus,
    /// Roles from `node-role.kubernetes.io/*` and `kubernetes.io/role` labels.
    NodeRoles,
    /// Kubelet version.
    NodeVersion,
    /// First `InternalIP` address.
    NodeInternalIp,
    /// First `ExternalIP` address.
    NodeExternalIp,
    /// OS image.
    NodeOsImage,
    /// Kernel version.
    NodeKernelVersion,
    /// Container runtime version.
    NodeContainerRuntime,
    /// Number of `secrets` (integer).
    ServiceAccountSecrets,
    /// Secret `type`.
    SecretType,
    /// Number of `data` keys (integer).
    SecretData,
    /// Number of `data` plus `binaryData` keys (integer).
    ConfigMapData,
    /// Event last seen.
    EventLastSeen,
    /// Event type.
    EventType,
    /// Event reason.
    EventReason,
    /// `kind/name` of the involved object (lowercase kind).
    EventObject,
    /// Involved object's `fieldPath`.
    EventSubobject,
    /// `component, host` of the source.
    EventSource,
    /// Trimmed message.
    EventMessage,
    /// Event first seen.
    EventFirstSeen,
    /// Count (integer).
    EventCount,
    /// `Kind/name` of a binding's `roleRef`.
    BindingRole,
    /// Users bound.
    BindingUsers,
    /// Groups bound.
    BindingGroups,
    /// Service accounts bound (`ns/name`).
    BindingServiceAccounts,
    /// Lease holder identity.
    LeaseHolder,
    /// Endpoints summary (`ip:port,…` + `N more...`).
    Endpoints,
    /// Number of webhooks (integer).
    Webhooks,
    /// A workload printer's cell (`apps/v1`, `batch/v1`).
    Workload(crate::workload_table::WorkloadCell),
}

/// One table column: its `TableColumnDefinition` plus how to compute its cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column name as printed by kubectl (upper-cased by it).
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// `name` for the name column, else usually empty.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 for default columns, > 0 for `-o wide` columns.
    pub priority: i32,
    /// The JSONPath of a CRD column (empty for built-in columns).
    pub json_path: String,
    /// Where cells come from.
    pub source: CellSource,
}

impl Column {
    pub(crate) fn builtin(
        name: &str,
        type_: &str,
        description: &str,
        priority: i32,
        b: Builtin,
    ) -> Self {
        Self {
            name: name.to_owned(),
            type_: type_.to_owned(),
            format: String::new(),
            description: description.to_owned(),
            priority,
            json_path: String::new(),
            source: CellSource::Builtin(b),
        }
    }

    /// The leading `Name` column (format `name`).
    #[must_use]
    pub fn name_column() -> Self {
        Self {
            name: "Name".to_owned(),
            type_: "string".to_owned(),
            format: "name".to_owned(),
            description: NAME_DESCRIPTION.to_owned(),
            priority: 0,
            json_path: String::new(),
            source: CellSource::Name,
        }
    }

    /// The `TableColumnDefinition` JSON.
    #[must_use]
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// What a row's `object` holds (`?includeObject=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `None`: `object` is `null`.
    None,
    /// `Metadata` (the default): a `PartialObjectMetadata` with the object's full metadata.
    #[default]
    Metadata,
    /// `Object`: the whole object.
    Object,
}

/// An invalid `includeObject` query parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized includeObject value: {0:?}")]
pub struct IncludeObjectError(pub String);

impl IncludeObject {
    /// Parse the `includeObject` query parameter (`""` means the default, `Metadata`).
    ///
    /// # Errors
    ///
    /// [`IncludeObjectError`] (a 400 Bad Request upstream) for other values; its message is the
    /// API server's `unrecognized includeObject value: "x"`.
    pub fn parse(s: &str) -> Result<Self, IncludeObjectError> {
        match s {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(IncludeObjectError(other.to_owned())),
        }
    }
}

/// Options of [`table_with_options`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// `includeObject`.
    pub include_object: IncludeObject,
    /// `TableOptions.noHeaders`: `columnDefinitions` is `null`.
    pub no_headers: bool,
    /// The Table's `apiVersion` (`meta.k8s.io/v1` or `meta.k8s.io/v1beta1`), also used for the
    /// embedded `PartialObjectMetadata`.
    pub api_version: String,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            include_object: IncludeObject::Metadata,
            no_headers: false,
            api_version: "meta.k8s.io/v1".to_owned(),
        }
    }
}

/// Columns of a CRD version: `Name`, then each `additionalPrinterColumns` entry (description
/// defaulting to `Custom resource definition column (in JSONPath format): <path>`), or — when
/// the CRD declares none — an `Age` column (`date`, `.metadata.creationTimestamp`), as the
/// apiextensions server does.
///
/// Like the API server, a column whose JSONPath does not parse ends the list (the columns
/// before it are kept). Non-array input counts as "no columns".
#[must_use]
pub fn crd_columns(printer_columns: &Value) -> Vec<Column> {
    let mut out = vec![Column::name_column()];
    let declared: &[Value] = printer_columns.as_array().map_or(&[], Vec::as_slice);
    if declared.is_empty() {
        out.push(Column {
            name: "Age".to_owned(),
            type_: "date".to_owned(),
            format: String::new(),
            description: CREATION_TIMESTAMP_DESCRIPTION.to_owned(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".to_owned(),
            source: CellSource::JsonPath,
        });
        return out;
    }
    for col in declared {
        let s = |k: &str| {
            col.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let json_path = s("jsonPath");
        if JsonPath::parse(&json_path).is_err() {
            break;
        }
        let description = match s("description") {
            d if d.is_empty() => {
                format!("Custom resource definition column (in JSONPath format): {json_path}")
            }
            d => d,
        };
        out.push(Column {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description,
            priority: col
                .get("priority")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0),
            json_path,
            source: CellSource::JsonPath,
        });
    }
    out
}

/// Columns of the kube-apiserver printer for `kind` (all of them, including the wide ones with
/// priority 1, as the server generates them). Unknown kinds get the server's default
/// convertor: `Name` and `Created At` (`date`, RFC 3339 cell).
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn builtin_columns(kind: &str) -> Vec<Column> {
    use Builtin as B;
    let age = || Column::builtin("Age", "string", CREATION_TIMESTAMP_DESCRIPTION, 0, B::Age);
    let c = Column::builtin;
    if let Some(cols) = crate::workload_table::columns(kind) {
        return cols;
    }
    let mut cols = vec![Column::name_column()];
    match kind {
        "Pod" => cols.extend([
            c("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", 0, B::PodReady),
            c("Status", "string", "The aggregate status of the containers in this pod.", 0, B::PodStatus),
            c("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0, B::PodRestarts),
            age(),
            c("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1, B::PodIp),
            c("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename", 1, B::PodNode),
            c("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.", 1, B::PodNominatedNode),
            c("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates", 1, B::PodReadinessGates),
        ]),
        "Namespace" => cols.extend([
            c("Status", "string", "The status of the namespace", 0, B::NamespaceStatus),
            age(),
        ]),
        "Node" => {
            let addresses = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
            cols.extend([
                c("Status", "string", "The status of the node", 0, B::NodeStatus),
                c("Roles", "string", "The roles of the node", 0, B::NodeRoles),
                age(),
                c("Version", "string", "Kubelet Version reported by the node.", 0, B::NodeVersion),
                c("Internal-IP", "string", addresses, 1, B::NodeInternalIp),
                c("External-IP", "string", addresses, 1, B::NodeExternalIp),
                c("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1, B::NodeOsImage),
                c("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1, B::NodeKernelVersion),
                c("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1, B::NodeContainerRuntime),
            ]);
        }
        "ServiceAccount" => cols.extend([
            c("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret", 0, B::ServiceAccountSecrets),
            age(),
        ]),
        "Secret" => cols.extend([
            c("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", 0, B::SecretType),
            c("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", 0, B::SecretData),
            age(),
        ]),
        "ConfigMap" => cols.extend([
            c("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", 0, B::ConfigMapData),
            age(),
        ]),
        "Event" => {
            let mut name = Column::name_column();
            name.priority = 1;
            return vec![
                c("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded.", 0, B::EventLastSeen),
                c("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future", 0, B::EventType),
                c("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0, B::EventReason),
                c("Object", "string", "The object that this event is about.", 0, B::EventObject),
                c("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.", 1, B::EventSubobject),
                c("Source", "string", "The component reporting this event. Should be a short machine understandable string.", 1, B::EventSource),
                c("Message", "string", "A human-readable description of the status of this operation.", 0, B::EventMessage),
                c("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1, B::EventFirstSeen),
                c("Count", "string", "The number of times this event has occurred.", 1, B::EventCount),
                name,
            ];
        }
        "Role" | "ClusterRole" => cols.push(c(
            "Created At",
            "date",
            CREATION_TIMESTAMP_DESCRIPTION,
            0,
            B::CreatedAt,
        )),
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_ref = if kind == "RoleBinding" {
                "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable."
            } else {
                "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable."
            };
            let which = if kind == "RoleBinding" { "roleBinding" } else { "clusterRoleBinding" };
            cols.extend([
                c("Role", "string", role_ref, 0, B::BindingRole),
                age(),
                c("Users", "string", &format!("Users in the {which}"), 1, B::BindingUsers),
                c("Groups", "string", &format!("Groups in the {which}"), 1, B::BindingGroups),
                c("ServiceAccounts", "string", &format!("ServiceAccounts in the {which}"), 1, B::BindingServiceAccounts),
            ]);
        }
        "Lease" => cols.extend([
            c("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", 0, B::LeaseHolder),
            age(),
        ]),
        "Endpoints" => cols.extend([
            c("Endpoints", "string", "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.", 0, B::Endpoints),
            age(),
        ]),
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => cols.extend([
            c("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration", 0, B::Webhooks),
            age(),
        ]),
        // CustomResourceDefinition and every kind without a printer: the default convertor.
        _ => cols.push(c(
            "Created At",
            "date",
            CREATION_TIMESTAMP_DESCRIPTION,
            0,
            B::CreatedAt,
        )),
    }
    cols
}

/// Build the `Table` for `objects` (a list's items, or the single object of a GET) with the
/// default options (`meta.k8s.io/v1`, headers on) and the given `includeObject`.
///
/// `list_meta` supplies the Table's `metadata`: `resourceVersion`, `continue` and
/// `remainingItemCount` are copied when present and non-empty (for a single object, pass its
/// `resourceVersion`). `now` is the server clock for ages.
#[must_use]
pub fn table(
    columns: &[Column],
    objects: &[&Value],
    list_meta: Value,
    include_object: IncludeObject,
    now: Timestamp,
) -> Value {
    let opts = TableOptions {
        include_object,
        ..TableOptions::default()
    };
    table_with_options(columns, objects, list_meta, &opts, now)
}

/// [`table`] with all options.
#[must_use]
pub fn table_with_options(
    columns: &[Column],
    objects: &[&Value],
    list_meta: Value,
    opts: &TableOptions,
    now: Timestamp,
) -> Value {
    let mut meta = Map::new();
    for key in ["resourceVersion", "continue"] {
        if let Some(Value::String(s)) = list_meta.get(key)
            && !s.is_empty()
        {
            meta.insert(key.to_owned(), Value::String(s.clone()));
        }
    }
    if let Some(n) = list_meta
        .get("remainingItemCount")
        .filter(|v| v.is_i64() || v.is_u64())
    {
        meta.insert("remainingItemCount".to_owned(), n.clone());
    }
    let pod_like = columns
        .iter()
        .any(|c| c.source == CellSource::Builtin(Builtin::PodStatus));
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| cell(c, obj, now)).collect();
            let mut row = Map::new();
            row.insert("cells".to_owned(), Value::Array(cells));
            if pod_like && let Some(conditions) = pod_row_conditions(obj) {
                row.insert("conditions".to_owned(), conditions);
            }
            let object = match opts.include_object {
                IncludeObject::None => Value::Null,
                IncludeObject::Object => (*obj).clone(),
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": opts.api_version,
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            row.insert("object".to_owned(), object);
            Value::Object(row)
        })
        .collect();
    let definitions = if opts.no_headers {
        Value::Null
    } else {
        Value::Array(columns.iter().map(Column::definition).collect())
    };
    json!({
        "kind": "Table",
        "apiVersion": opts.api_version,
        "metadata": meta,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

// ---------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or_default()
}

fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn len_at(v: &Value, path: &[&str]) -> usize {
    match at(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn or_none(s: &str) -> Value {
    Value::String(if s.is_empty() { "<none>" } else { s }.to_owned())
}

fn count(n: usize) -> Value {
    Value::from(u64::try_from(n).unwrap_or(u64::MAX))
}

fn cell(c: &Column, obj: &Value, now: Timestamp) -> Value {
    match &c.source {
        CellSource::Name => Value::String(str_at(obj, &["metadata", "name"]).to_owned()),
        CellSource::JsonPath => jsonpath_cell(&c.type_, &c.json_path, obj, now),
        CellSource::Builtin(b) => builtin_cell(*b, obj, now),
    }
}

/// The CRD table convertor: the first JSONPath result, printed per the column type.
fn jsonpath_cell(type_: &str, path: &str, obj: &Value, now: Timestamp) -> Value {
    let Ok(p) = JsonPath::parse(path) else {
        return Value::Null;
    };
    let results = p.find(obj);
    let Some(value) = results.first() else {
        return Value::Null;
    };
    if type_ == "string" {
        return Value::String(match value {
            Value::Null => "<no value>".to_owned(),
            Value::Object(_) | Value::Array(_) => json_marshal(value),
            other => go_display(other),
        });
    }
    match (type_, value) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => match Num::of(n) {
            Num::Int(i) => Value::from(i),
            #[allow(clippy::cast_possible_truncation)]
            Num::Float(f) => Value::from(f as i64),
        },
        ("number", Value::Number(n)) => {
            serde_json::Number::from_f64(Num::of(n).as_f64()).map_or(Value::Null, Value::Number)
        }
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => Value::String(match parse_time(s) {
            Err(()) => "<invalid>".to_owned(),
            Ok(None) => "<unknown>".to_owned(),
            Ok(Some(t)) => crate::duration::human_duration_since(t, now),
        }),
        _ => Value::Null,
    }
}

fn created_at(obj: &Value) -> String {
    match at(obj, &["metadata", "creationTimestamp"])
        .and_then(Value::as_str)
        .map(parse_time)
    {
        Some(Ok(Some(t))) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => "0001-01-01T00:00:00Z".to_owned(),
    }
}

fn builtin_cell(b: Builtin, obj: &Value, now: Timestamp) -> Value {
    use Builtin as B;
    let s = |p: &[&str]| Value::String(str_at(obj, p).to_owned());
    match b {
        B::Age => Value::String(since(at(obj, &["metadata", "creationTimestamp"]), now)),
        B::Workload(w) => crate::workload_table::cell(w, obj, now),
        B::CreatedAt => Value::String(created_at(obj)),
        B::PodReady => {
            let p = pod_summary(obj);
            Value::String(format!("{}/{}", p.ready, p.total))
        }
        B::PodStatus => Value::String(pod_summary(obj).reason),
        B::PodRestarts => {
            let p = pod_summary(obj);
            Value::String(match p.last_restart {
                Some(t) if p.restarts != 0 => format!(
                    "{} ({} ago)",
                    p.restarts,
                    crate::duration::human_duration_since(t, now)
                ),
                _ => p.restarts.to_string(),
            })
        }
        B::PodIp => {
            let ip = arr_at(obj, &["status", "podIPs"])
                .first()
                .map(|i| str_at(i, &["ip"]))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| str_at(obj, &["status", "podIP"]));
            or_none(ip)
        }
        B::PodNode => or_none(str_at(obj, &["spec", "nodeName"])),
        B::PodNominatedNode => or_none(str_at(obj, &["status", "nominatedNodeName"])),
        B::PodReadinessGates => {
            let gates = arr_at(obj, &["spec", "readinessGates"]);
            if gates.is_empty() {
                return or_none("");
            }
            let conditions = arr_at(obj, &["status", "conditions"]);
            let ok = gates
                .iter()
                .filter(|g| {
                    let t = str_at(g, &["conditionType"]);
                    conditions
                        .iter()
                        .find(|c| str_at(c, &["type"]) == t)
                        .is_some_and(|c| str_at(c, &["status"]) == "True")
                })
                .count();
            Value::String(format!("{ok}/{}", gates.len()))
        }
        B::NamespaceStatus => s(&["status", "phase"]),
        B::NodeStatus => {
            let mut status: Vec<String> = Vec::new();
            if let Some(ready) = arr_at(obj, &["status", "conditions"])
                .iter()
                .rev()
                .find(|c| str_at(c, &["type"]) == "Ready")
            {
                status.push(if str_at(ready, &["status"]) == "True" {
                    "Ready".to_owned()
                } else {
                    "NotReady".to_owned()
                });
            }
            if status.is_empty() {
                status.push("Unknown".to_owned());
            }
            if at(obj, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
                status.push("SchedulingDisabled".to_owned());
            }
            Value::String(status.join(","))
        }
        B::NodeRoles => {
            let mut roles: Vec<String> = Vec::new();
            if let Some(labels) = at(obj, &["metadata", "labels"]).and_then(Value::as_object) {
                for (k, v) in labels {
                    let v = v.as_str().unwrap_or_default();
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        if !role.is_empty() {
                            roles.push(role.to_owned());
                        }
                    } else if k == "kubernetes.io/role" && !v.is_empty() {
                        roles.push(v.to_owned());
                    }
                }
            }
            roles.sort();
            roles.dedup();
            or_none(&roles.join(","))
        }
        B::NodeVersion => s(&["status", "nodeInfo", "kubeletVersion"]),
        B::NodeInternalIp | B::NodeExternalIp => {
            let want = if b == B::NodeInternalIp {
                "InternalIP"
            } else {
                "ExternalIP"
            };
            let addr = arr_at(obj, &["status", "addresses"])
                .iter()
                .find(|a| str_at(a, &["type"]) == want)
                .map_or("", |a| str_at(a, &["address"]));
            or_none(addr)
        }
        B::NodeOsImage | B::NodeKernelVersion | B::NodeContainerRuntime => {
            let key = match b {
                B::NodeOsImage => "osImage",
                B::NodeKernelVersion => "kernelVersion",
                _ => "containerRuntimeVersion",
            };
            let v = str_at(obj, &["status", "nodeInfo", key]);
            Value::String(if v.is_empty() { "<unknown>" } else { v }.to_owned())
        }
        B::ServiceAccountSecrets => count(len_at(obj, &["secrets"])),
        B::SecretType => s(&["type"]),
        B::SecretData => count(len_at(obj, &["data"])),
        B::ConfigMapData => count(len_at(obj, &["data"]) + len_at(obj, &["binaryData"])),
        B::EventLastSeen | B::EventFirstSeen | B::EventCount => event_times(b, obj, now),
        B::EventType => s(&["type"]),
        B::EventReason => s(&["reason"]),
        B::EventObject => {
            let kind = str_at(obj, &["involvedObject", "kind"]).to_lowercase();
            let name = str_at(obj, &["involvedObject", "name"]);
            Value::String(if name.is_empty() {
                kind
            } else {
                format!("{kind}/{name}")
            })
        }
        B::EventSubobject => s(&["involvedObject", "fieldPath"]),
        B::EventSource => {
            let first = |a: &str, b: &str| {
                if a.is_empty() {
                    b.to_owned()
                } else {
                    a.to_owned()
                }
            };
            let component = first(
                str_at(obj, &["source", "component"]),
                str_at(obj, &["reportingComponent"]),
            );
            let instance = first(
                str_at(obj, &["source", "host"]),
                str_at(obj, &["reportingInstance"]),
            );
            Value::String(if instance.is_empty() {
                component
            } else {
                format!("{component}, {instance}")
            })
        }
        B::EventMessage => Value::String(str_at(obj, &["message"]).trim().to_owned()),
        B::BindingRole => Value::String(format!(
            "{}/{}",
            str_at(obj, &["roleRef", "kind"]),
            str_at(obj, &["roleRef", "name"])
        )),
        B::BindingUsers | B::BindingGroups | B::BindingServiceAccounts => {
            let want = match b {
                B::BindingUsers => "User",
                B::BindingGroups => "Group",
                _ => "ServiceAccount",
            };
            let names: Vec<String> = arr_at(obj, &["subjects"])
                .iter()
                .filter(|sub| str_at(sub, &["kind"]) == want)
                .map(|sub| {
                    if want == "ServiceAccount" {
                        format!("{}/{}", str_at(sub, &["namespace"]), str_at(sub, &["name"]))
                    } else {
                        str_at(sub, &["name"]).to_owned()
                    }
                })
                .collect();
            Value::String(names.join(", "))
        }
        B::LeaseHolder => s(&["spec", "holderIdentity"]),
        B::Endpoints => Value::String(format_endpoints(obj)),
        B::Webhooks => count(len_at(obj, &["webhooks"])),
    }
}

/// `printEvent`'s first/last seen and count.
fn event_times(b: Builtin, obj: &Value, now: Timestamp) -> Value {
    let ts = |key: &str| at(obj, &[key]).filter(|v| !v.is_null() && v.as_str() != Some(""));
    let first = match ts("firstTimestamp") {
        Some(v) => since(Some(v), now),
        None => since(ts("eventTime"), now),
    };
    let mut last = match ts("lastTimestamp") {
        Some(v) => since(Some(v), now),
        None => first.clone(),
    };
    let mut n = at(obj, &["count"]).and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = at(obj, &["series"]).filter(|v| v.is_object()) {
        last = since(series.get("lastObservedTime"), now);
        n = series.get("count").and_then(Value::as_i64).unwrap_or(0);
    } else if n == 0 {
        n = 1;
    }
    match b {
        Builtin::EventLastSeen => Value::String(last),
        Builtin::EventFirstSeen => Value::String(first),
        _ => Value::from(n),
    }
}

/// `formatEndpoints(endpoints, nil)`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut total = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            total += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_owned());
            }
            continue;
        }
        for port in ports {
            total += addresses.len();
            let number = at(port, &["port"]).and_then(Value::as_i64).unwrap_or(0);
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(a, &["ip"]);
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{number}")
                } else {
                    format!("{ip}:{number}")
                });
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", total.saturating_sub(MAX))
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

fn terminated_finished_at(status: &Value) -> Option<Timestamp> {
    at(status, &["lastState", "terminated", "finishedAt"])
        .and_then(Value::as_str)
        .and_then(|s| parse_time(s).ok().flatten())
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn is_restartable_init(pod: &Value, name: &str) -> bool {
    arr_at(pod, &["spec", "initContainers"])
        .iter()
        .find(|c| str_at(c, &["name"]) == name)
        .is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

/// `printPod` of `pkg/printers/internalversion`.
#[allow(clippy::too_many_lines)]
fn pod_summary(pod: &Value) -> PodSummary {
    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    let total = arr_at(pod, &["spec", "containers"]).len()
        + init_specs
            .iter()
            .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
            .count();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_restart: Option<Timestamp> = None;

    let phase = str_at(pod, &["status", "phase"]);
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    for c in arr_at(pod, &["status", "conditions"]) {
        if str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_owned();
        }
    }

    let mut initializing = false;
    let init_statuses = arr_at(pod, &["status", "initContainerStatuses"]);
    for (i, cs) in init_statuses.iter().enumerate() {
        let restart_count = at(cs, &["restartCount"])
            .and_then(Value::as_i64)
            .unwrap_or(0);
        restarts += restart_count;
        let finished = terminated_finished_at(cs);
        last_restart = later(last_restart, finished);
        let restartable = is_restartable_init(pod, str_at(cs, &["name"]));
        if restartable {
            restartable_restarts += restart_count;
            last_restartable_restart = later(last_restartable_restart, finished);
        }
        let terminated = at(cs, &["state", "terminated"]).filter(|v| v.is_object());
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        let exit_code = terminated
            .and_then(|t| t.get("exitCode"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let started = at(cs, &["started"]).and_then(Value::as_bool) == Some(true);
        if terminated.is_some() && exit_code == 0 {
            continue;
        }
        if restartable && started {
            if at(cs, &["ready"]).and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = str_at(t, &["reason"]);
            reason = if r.is_empty() {
                let signal = t.get("signal").and_then(Value::as_i64).unwrap_or(0);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{exit_code}")
                }
            } else {
                format!("Init:{r}")
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = arr_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == "Initialized" && str_at(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += at(cs, &["restartCount"])
                .and_then(Value::as_i64)
                .unwrap_or(0);
            last_restart = later(last_restart, terminated_finished_at(cs));
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = at(cs, &["state", "terminated"]).filter(|v| v.is_object());
            let running = at(cs, &["state", "running"]).is_some_and(Value::is_object);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if let Some(t) = terminated {
                let r = str_at(t, &["reason"]);
                if r.is_empty() {
                    let signal = t.get("signal").and_then(Value::as_i64).unwrap_or(0);
                    let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
                    reason = if signal != 0 {
                        format!("Signal:{signal}")
                    } else {
                        format!("ExitCode:{code}")
                    };
                } else {
                    reason = r.to_owned();
                }
            } else if at(cs, &["ready"]).and_then(Value::as_bool) == Some(true) && running {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = arr_at(pod, &["status", "conditions"])
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null());
    if deleting && str_at(pod, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }
    PodSummary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}
