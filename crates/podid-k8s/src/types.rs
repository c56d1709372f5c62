//! The four `aadpodidentity.k8s.io/v1` kinds and their spec/status structs.
//!
//! Serialisation follows the Go types of aad-pod-identity v1.8.17 (`omitempty` everywhere, so
//! empty strings, zero counters and empty lists are left out). Deserialisation is done by hand
//! through [`GoObject`] so that it accepts what Go's `encoding/json` accepts: case-insensitive
//! keys (the pre-v1.6 `ClientID`, `ResourceID`, `Selector`, … spellings), `null` as "zero
//! value" and unknown keys ignored.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::SecretReference;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::gojson::{GoObject, LegacyKeys, json_kind};

/// Description used by controller-gen for `apiVersion` properties.
pub(crate) const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
/// Description used by controller-gen for `kind` properties.
pub(crate) const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

// ---------------------------------------------------------------------------------------------
// IdentityType
// ---------------------------------------------------------------------------------------------

/// `AzureIdentity.spec.type`: an integer on the wire.
///
/// Unknown integers are kept as [`IdentityType::Other`] so that NMI can answer
/// `unsupported identity type N` instead of failing to decode the object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdentityType {
    /// `0`: a user-assigned managed identity (token from IMDS with `client_id`).
    #[default]
    UserAssignedMSI,
    /// `1`: a service principal with a client secret.
    ServicePrincipal,
    /// `2`: a service principal with a PKCS#12 certificate (internal Go type only).
    ServicePrincipalCertificate,
    /// Any other integer.
    Other(i64),
}

impl IdentityType {
    /// The integer written on the wire.
    #[must_use]
    pub fn as_i64(self) -> i64 {
        match self {
            Self::UserAssignedMSI => 0,
            Self::ServicePrincipal => 1,
            Self::ServicePrincipalCertificate => 2,
            Self::Other(n) => n,
        }
    }
}

impl From<i64> for IdentityType {
    fn from(n: i64) -> Self {
        match n {
            0 => Self::UserAssignedMSI,
            1 => Self::ServicePrincipal,
            2 => Self::ServicePrincipalCertificate,
            n => Self::Other(n),
        }
    }
}

impl From<IdentityType> for i64 {
    fn from(t: IdentityType) -> Self {
        t.as_i64()
    }
}

/// Displays the wire integer (`unsupported identity type {t}` reads as upstream).
impl fmt::Display for IdentityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i64())
    }
}

impl Serialize for IdentityType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.as_i64())
    }
}

impl<'de> Deserialize<'de> for IdentityType {
    /// Accepts JSON integers only (as Go's decode into `int` does): `"0"` or `0.5` are errors.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n.as_i64().map(Self::from).ok_or_else(|| {
                D::Error::custom(format_args!(
                    "invalid identity type {n}: expected an integer"
                ))
            }),
            other => Err(D::Error::custom(format_args!(
                "invalid type: {}, expected an integer identity type",
                json_kind(&other)
            ))),
        }
    }
}

impl JsonSchema for IdentityType {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IdentityType".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer" })
    }
}

// ---------------------------------------------------------------------------------------------
// AssignedIdentityState
// ---------------------------------------------------------------------------------------------

/// `AzureAssignedIdentity.status.status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum AssignedIdentityState {
    /// `""`: written by MIC < 1.5; treated like [`AssignedIdentityState::Assigned`].
    #[default]
    Legacy,
    /// `Created`: the AAI exists, the ARM assignment has not completed yet.
    Created,
    /// `Assigned`: the identity is assigned to the node's VM/VMSS.
    Assigned,
    /// `Unassigned`: MIC removed the identity and is about to delete the AAI.
    Unassigned,
    /// Any other string (kept verbatim).
    Other(String),
}

/// `Created`.
pub const ASSIGNED_ID_CREATED: &str = "Created";
/// `Assigned`.
pub const ASSIGNED_ID_ASSIGNED: &str = "Assigned";
/// `Unassigned`.
pub const ASSIGNED_ID_UNASSIGNED: &str = "Unassigned";

impl AssignedIdentityState {
    /// The string written on the wire (`""` for [`AssignedIdentityState::Legacy`]).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Legacy => "",
            Self::Created => ASSIGNED_ID_CREATED,
            Self::Assigned => ASSIGNED_ID_ASSIGNED,
            Self::Unassigned => ASSIGNED_ID_UNASSIGNED,
            Self::Other(s) => s,
        }
    }

    /// True for `Assigned` and for the legacy empty state, which MIC/NMI treat alike.
    #[must_use]
    pub fn is_assigned(&self) -> bool {
        matches!(self, Self::Assigned | Self::Legacy)
    }

    /// True for the legacy empty string (the field is then omitted on the wire).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl From<&str> for AssignedIdentityState {
    fn from(s: &str) -> Self {
        match s {
            "" => Self::Legacy,
            ASSIGNED_ID_CREATED => Self::Created,
            ASSIGNED_ID_ASSIGNED => Self::Assigned,
            ASSIGNED_ID_UNASSIGNED => Self::Unassigned,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for AssignedIdentityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AssignedIdentityState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AssignedIdentityState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::from(s.as_str()))
    }
}

impl JsonSchema for AssignedIdentityState {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AssignedIdentityState".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

// ---------------------------------------------------------------------------------------------
// Schema helpers
// ---------------------------------------------------------------------------------------------

/// Go `int` fields: `type: integer` without a `format` (as controller-gen emits).
fn go_int(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// Schema of an embedded full object (`x-kubernetes-embedded-resource: true`): the kind's own
/// schema plus `apiVersion`, `kind` and `metadata`, with nothing required.
fn embedded<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<T>();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("required");
        obj.remove("title");
        obj.insert("type".into(), "object".into());
        obj.insert("x-kubernetes-embedded-resource".into(), true.into());
        let props = obj
            .entry("properties")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(props) = props.as_object_mut() {
            props.insert(
                "apiVersion".into(),
                serde_json::json!({"type": "string", "description": API_VERSION_DESCRIPTION}),
            );
            props.insert(
                "kind".into(),
                serde_json::json!({"type": "string", "description": KIND_DESCRIPTION}),
            );
            props.insert("metadata".into(), serde_json::json!({"type": "object"}));
        }
    }
    schema
}

fn embedded_identity(generator: &mut SchemaGenerator) -> Schema {
    embedded::<AzureIdentity>(generator)
}

fn embedded_binding(generator: &mut SchemaGenerator) -> Schema {
    embedded::<AzureIdentityBinding>(generator)
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

// ---------------------------------------------------------------------------------------------
// Legacy spellings
// ---------------------------------------------------------------------------------------------

/// Pre-v1.6 `AzureIdentity.spec` keys the CRD schema also accepts, so that the API server keeps
/// them (upstream's v1 CRDs prune them, or refuse them under kubectl's strict field
/// validation). The decoder reads them when the current key is absent or empty, and the
/// controller rewrites them to the current keys. Upstream renamed `ClientID`, `ClientPassword`,
/// `ResourceID` and `TenantID` in v1.6; the `…Id` variants are common in old manifests, and
/// `Type` decoded like any other key before v1.6 (Go matches keys case-insensitively).
pub const AZURE_IDENTITY_LEGACY_KEYS: &[&str] = &[
    "ClientID",
    "ClientId",
    "ClientPassword",
    "ResourceID",
    "ResourceId",
    "TenantID",
    "TenantId",
    "Type",
];
/// Pre-v1.6 `AzureIdentityBinding.spec` keys the CRD schema also accepts (see
/// [`AZURE_IDENTITY_LEGACY_KEYS`]).
pub const AZURE_IDENTITY_BINDING_LEGACY_KEYS: &[&str] = &["AzureIdentity", "Selector"];
/// Pre-v1.6 `AzurePodIdentityException.spec` keys the CRD schema also accepts (read by the node
/// agent; the controller does not watch exceptions, so they are not rewritten).
pub const AZURE_POD_IDENTITY_EXCEPTION_LEGACY_KEYS: &[&str] = &["PodLabels"];

// ---------------------------------------------------------------------------------------------
// AzureIdentity
// ---------------------------------------------------------------------------------------------

/// AzureIdentitySpec describes the credential specifications of an identity on Azure.
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "aadpodidentity.k8s.io",
    version = "v1",
    kind = "AzureIdentity",
    plural = "azureidentities",
    singular = "azureidentity",
    namespaced,
    status = "AzureIdentityStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "AzureIdentity is the specification of the identity data structure.",
    printcolumn = r#"{"name": "Type", "type": "string", "jsonPath": ".spec.type"}"#,
    printcolumn = r#"{"name": "ClientID", "type": "string", "jsonPath": ".spec.clientID"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."}"#,
    printcolumn = r#"{"name": "ResourceID", "type": "string", "jsonPath": ".spec.resourceID", "priority": 1, "description": "ARM ID of the user-assigned identity (type 0)."}"#
)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureIdentitySpec {
    /// UserAssignedMSI or Service Principal
    #[serde(rename = "type")]
    pub type_: IdentityType,
    /// User assigned MSI resource id.
    #[serde(rename = "resourceID", skip_serializing_if = "String::is_empty")]
    pub resource_id: String,
    /// Both User Assigned MSI and SP can use this field.
    #[serde(rename = "clientID", skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// Used for service principal
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_password: Option<SecretReference>,
    /// Service principal primary tenant id.
    #[serde(rename = "tenantID", skip_serializing_if = "String::is_empty")]
    pub tenant_id: String,
    /// Service principal auxiliary tenant ids
    #[serde(rename = "auxiliaryTenantIDs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("nullable" = true))]
    pub auxiliary_tenant_ids: Vec<String>,
    /// For service principal. Option param for specifying the  AD details.
    #[serde(rename = "adResourceID", skip_serializing_if = "String::is_empty")]
    pub ad_resource_id: String,
    /// AAD authority for service principals (default `https://login.microsoftonline.com/`).
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(description = "")]
    pub ad_endpoint: String,
    /// Unused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(description = "")]
    pub replicas: Option<i32>,
    /// Keys written in a pre-v1.6 (or other non-current) spelling; see [`LegacyKeys`].
    #[serde(skip)]
    pub legacy_keys: LegacyKeys,
}

impl AzureIdentitySpec {
    const FIELDS: &'static [&'static str] = &[
        "type",
        "resourceID",
        "clientID",
        "clientPassword",
        "tenantID",
        "auxiliaryTenantIDs",
        "adResourceID",
        "adEndpoint",
        "replicas",
    ];
}

impl<'de> Deserialize<'de> for AzureIdentitySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(d, Self::FIELDS)?;
        Ok(Self {
            type_: o.field("type")?,
            resource_id: o.field("resourceID")?,
            client_id: o.field("clientID")?,
            client_password: o.nested("clientPassword", &["name", "namespace"])?,
            tenant_id: o.field("tenantID")?,
            auxiliary_tenant_ids: o.field("auxiliaryTenantIDs")?,
            ad_resource_id: o.field("adResourceID")?,
            ad_endpoint: o.field("adEndpoint")?,
            replicas: o.field("replicas")?,
            legacy_keys: o.take_legacy(),
        })
    }
}

/// AzureIdentityStatus contains the replica status of the resource.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureIdentityStatus {
    /// Unused.
    #[serde(skip_serializing_if = "is_zero_i32")]
    #[schemars(description = "")]
    pub available_replicas: i32,
}

impl<'de> Deserialize<'de> for AzureIdentityStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(d, &["availableReplicas"])?;
        Ok(Self {
            available_replicas: o.field("availableReplicas")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// AzureIdentityBinding
// ---------------------------------------------------------------------------------------------

/// AzureIdentityBindingSpec matches the pod with the Identity. Used to indicate the potential matches to look for between the pod/deployment and the identities present.
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "aadpodidentity.k8s.io",
    version = "v1",
    kind = "AzureIdentityBinding",
    plural = "azureidentitybindings",
    singular = "azureidentitybinding",
    namespaced,
    status = "AzureIdentityBindingStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "AzureIdentityBinding brings together the spec of matching pods and the identity which they can use.",
    printcolumn = r#"{"name": "AzureIdentity", "type": "string", "jsonPath": ".spec.azureIdentity"}"#,
    printcolumn = r#"{"name": "Selector", "type": "string", "jsonPath": ".spec.selector"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."}"#
)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureIdentityBindingSpec {
    /// Name of an AzureIdentity in the binding's namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(description = "")]
    pub azure_identity: String,
    /// Matched by exact string equality against the pod label `aadpodidbinding`.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(description = "")]
    pub selector: String,
    /// Weight is used to figure out which of the matching identities would be selected.
    #[serde(skip_serializing_if = "is_zero_i64")]
    #[schemars(schema_with = "go_int")]
    pub weight: i64,
    /// Keys written in a pre-v1.6 (or other non-current) spelling; see [`LegacyKeys`].
    #[serde(skip)]
    pub legacy_keys: LegacyKeys,
}

impl<'de> Deserialize<'de> for AzureIdentityBindingSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(d, &["azureIdentity", "selector", "weight"])?;
        Ok(Self {
            azure_identity: o.field("azureIdentity")?,
            selector: o.field("selector")?,
            weight: o.field("weight")?,
            legacy_keys: o.take_legacy(),
        })
    }
}

/// AzureIdentityBindingStatus contains the status of an AzureIdentityBinding.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureIdentityBindingStatus {
    /// Unused.
    #[serde(skip_serializing_if = "is_zero_i32")]
    #[schemars(description = "")]
    pub available_replicas: i32,
}

impl<'de> Deserialize<'de> for AzureIdentityBindingStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(d, &["availableReplicas"])?;
        Ok(Self {
            available_replicas: o.field("availableReplicas")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// AzureAssignedIdentity
// ---------------------------------------------------------------------------------------------

/// AzureAssignedIdentitySpec contains the relationship between an AzureIdentity and an AzureIdentityBinding.
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "aadpodidentity.k8s.io",
    version = "v1",
    kind = "AzureAssignedIdentity",
    plural = "azureassignedidentities",
    singular = "azureassignedidentity",
    namespaced,
    status = "AzureAssignedIdentityStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "AzureAssignedIdentity contains the identity <-> pod mapping which is matched.",
    printcolumn = r#"{"name": "Pod", "type": "string", "jsonPath": ".spec.pod", "description": "Name of the pod the identity is assigned for."}"#,
    printcolumn = r#"{"name": "PodNamespace", "type": "string", "jsonPath": ".spec.podNamespace", "description": "Namespace of the pod."}"#,
    printcolumn = r#"{"name": "Identity", "type": "string", "jsonPath": ".spec.azureIdentityRef.metadata.name", "description": "Name of the AzureIdentity (in the binding's namespace)."}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.status", "description": "Created (being assigned), Assigned, or Unassigned (being removed)."}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."}"#,
    printcolumn = r#"{"name": "Node", "type": "string", "jsonPath": ".spec.nodename", "priority": 1, "description": "Node the pod runs on (its VM or scale set holds the identity)."}"#,
    printcolumn = r#"{"name": "Binding", "type": "string", "jsonPath": ".spec.azureBindingRef.metadata.name", "priority": 1, "description": "Name of the AzureIdentityBinding that matched the pod."}"#,
    printcolumn = r#"{"name": "ClientID", "type": "string", "jsonPath": ".spec.azureIdentityRef.spec.clientID", "priority": 1, "description": "Client ID of the identity."}"#
)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureAssignedIdentitySpec {
    /// Snapshot of the AzureIdentity (full object, including metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        schema_with = "embedded_identity",
        description = "AzureIdentityRef is an embedded resource referencing the AzureIdentity used by the AzureAssignedIdentity, which requires x-kubernetes-embedded-resource fields to be true"
    )]
    pub azure_identity_ref: Option<AzureIdentity>,
    /// Snapshot of the AzureIdentityBinding (full object, including metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        schema_with = "embedded_binding",
        description = "AzureBindingRef is an embedded resource referencing the AzureIdentityBinding used by the AzureAssignedIdentity, which requires x-kubernetes-embedded-resource fields to be true"
    )]
    pub azure_binding_ref: Option<AzureIdentityBinding>,
    /// Pod name.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(description = "")]
    pub pod: String,
    /// Pod namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(description = "")]
    pub pod_namespace: String,
    /// Node name (the JSON key is all lowercase: `nodename`).
    #[serde(rename = "nodename", skip_serializing_if = "String::is_empty")]
    #[schemars(description = "")]
    pub node_name: String,
    /// Unused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(description = "")]
    pub replicas: Option<i32>,
}

impl<'de> Deserialize<'de> for AzureAssignedIdentitySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(
            d,
            &[
                "azureIdentityRef",
                "azureBindingRef",
                "pod",
                "podNamespace",
                "nodename",
                "replicas",
            ],
        )?;
        Ok(Self {
            azure_identity_ref: o.embedded("azureIdentityRef")?,
            azure_binding_ref: o.embedded("azureBindingRef")?,
            pod: o.field("pod")?,
            pod_namespace: o.field("podNamespace")?,
            node_name: o.field("nodename")?,
            replicas: o.field("replicas")?,
        })
    }
}

/// AzureAssignedIdentityStatus contains the replica status of the resource.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureAssignedIdentityStatus {
    /// MIC sets it to 1.
    #[serde(skip_serializing_if = "is_zero_i32")]
    #[schemars(description = "")]
    pub available_replicas: i32,
    /// `Created`, `Assigned` or `Unassigned` (empty: legacy, treated as `Assigned`).
    #[serde(skip_serializing_if = "AssignedIdentityState::is_empty")]
    #[schemars(description = "")]
    pub status: AssignedIdentityState,
}

impl<'de> Deserialize<'de> for AzureAssignedIdentityStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(d, &["availableReplicas", "status"])?;
        Ok(Self {
            available_replicas: o.field("availableReplicas")?,
            status: o.field("status")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// AzurePodIdentityException
// ---------------------------------------------------------------------------------------------

/// AzurePodIdentityExceptionSpec matches pods with the selector defined. If request originates from a pod that matches the selector, nmi will proxy the request and send response back without any validation.
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "aadpodidentity.k8s.io",
    version = "v1",
    kind = "AzurePodIdentityException",
    plural = "azurepodidentityexceptions",
    singular = "azurepodidentityexception",
    namespaced,
    status = "AzurePodIdentityExceptionStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "AzurePodIdentityException contains the pod selectors for all pods that don't require NMI to process and request token on their behalf."
)]
#[serde(rename_all = "camelCase", default)]
pub struct AzurePodIdentityExceptionSpec {
    /// A pod in the same namespace is excepted if any label matches (value compared
    /// case-insensitively).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(description = "")]
    pub pod_labels: BTreeMap<String, String>,
    /// Keys written in a pre-v1.6 (or other non-current) spelling; see [`LegacyKeys`].
    #[serde(skip)]
    pub legacy_keys: LegacyKeys,
}

impl<'de> Deserialize<'de> for AzurePodIdentityExceptionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(d, &["podLabels"])?;
        Ok(Self {
            pod_labels: o.field("podLabels")?,
            legacy_keys: o.take_legacy(),
        })
    }
}

/// AzurePodIdentityExceptionStatus contains the status of an AzurePodIdentityException.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AzurePodIdentityExceptionStatus {
    /// Unused.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(description = "")]
    pub status: String,
}

impl<'de> Deserialize<'de> for AzurePodIdentityExceptionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut o = GoObject::deserialize(d, &["status"])?;
        Ok(Self {
            status: o.field("status")?,
        })
    }
}
