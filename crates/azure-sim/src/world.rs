//! The simulated Azure world: tenants, subscriptions, resource groups, VMs and scale sets, managed identities,
//! app registrations, role assignments and Key Vaults.
//!
//! A world is read from YAML or JSON ([`World::from_value`]), then [`World::normalize`]d: missing IDs are
//! derived deterministically from resource IDs (so a file without GUIDs yields the same IDs on every start),
//! defaults are filled in (the only subscription, the only resource group, location `westeurope`), referenced
//! resource groups are created, and every cross-reference is checked. The normalized world is what the control
//! API returns, and it parses back to itself.
//!
//! [`Index`] is derived from a normalized world for the lookups on hot paths (node → VM, client ID → app or
//! identity, certificate thumbprints, known token audiences). It is rebuilt after every change.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::armid;

/// Default Azure region.
pub const DEFAULT_LOCATION: &str = "westeurope";
/// The audience of federated identity credentials.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Maximum federated identity credentials per app or identity.
pub const MAX_FICS: usize = 20;

/// A world that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WorldError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, WorldError> {
    Err(WorldError(msg.into()))
}

/// The whole world.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct World {
    /// Entra tenants.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// Subscriptions (each in one tenant).
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// Resource groups (also created implicitly by the resources that name them).
    #[serde(default)]
    pub resource_groups: Vec<ResourceGroup>,
    /// Virtual machines (each one node).
    #[serde(default)]
    pub virtual_machines: Vec<VirtualMachine>,
    /// Scale sets (each instance one node).
    #[serde(default)]
    pub virtual_machine_scale_sets: Vec<ScaleSet>,
    /// User-assigned managed identities.
    #[serde(default)]
    pub user_assigned_identities: Vec<UserAssignedIdentity>,
    /// App registrations (with their service principals).
    #[serde(default)]
    pub applications: Vec<Application>,
    /// Azure RBAC role assignments.
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignment>,
    /// Key Vaults.
    #[serde(default)]
    pub key_vaults: Vec<KeyVault>,
    /// Extra token audiences (resource URIs) Entra knows besides the built-in ones and app identifier URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

/// An Entra tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// Tenant ID (GUID).
    pub id: String,
    /// Verified domain names (usable instead of the ID in token URLs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// Subscription ID.
    pub id: String,
    /// Owning tenant (default: the only tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A resource group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceGroup {
    /// Subscription (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Name.
    pub name: String,
    /// Location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The `identity.type` of a VM or scale set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityType {
    /// No identity.
    #[default]
    None,
    /// System-assigned only.
    SystemAssigned,
    /// User-assigned only.
    UserAssigned,
    /// Both.
    SystemAndUserAssigned,
}

impl IdentityType {
    /// Parse ARM's spelling (case-insensitive; the space after the comma is optional).
    pub fn parse(s: &str) -> Option<IdentityType> {
        let compact: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match compact.as_str() {
            "none" => IdentityType::None,
            "systemassigned" => IdentityType::SystemAssigned,
            "userassigned" => IdentityType::UserAssigned,
            "systemassigned,userassigned" | "userassigned,systemassigned" => {
                IdentityType::SystemAndUserAssigned
            }
            _ => return None,
        })
    }

    /// ARM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityType::None => "None",
            IdentityType::SystemAssigned => "SystemAssigned",
            IdentityType::UserAssigned => "UserAssigned",
            IdentityType::SystemAndUserAssigned => "SystemAssigned, UserAssigned",
        }
    }

    /// Whether a system-assigned identity is enabled.
    pub fn system(self) -> bool {
        matches!(
            self,
            IdentityType::SystemAssigned | IdentityType::SystemAndUserAssigned
        )
    }

    /// Whether user-assigned identities are enabled.
    pub fn user(self) -> bool {
        matches!(
            self,
            IdentityType::UserAssigned | IdentityType::SystemAndUserAssigned
        )
    }

    /// The type with the given flags.
    pub fn from_flags(system: bool, user: bool) -> IdentityType {
        match (system, user) {
            (false, false) => IdentityType::None,
            (true, false) => IdentityType::SystemAssigned,
            (false, true) => IdentityType::UserAssigned,
            (true, true) => IdentityType::SystemAndUserAssigned,
        }
    }
}

impl Serialize for IdentityType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IdentityType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IdentityType::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid identity type '{s}' (None, SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned')"
            ))
        })
    }
}

/// The identity block of a VM or scale set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceIdentity {
    /// `identity.type` (default: derived from `principalId` and `userAssignedIdentities`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<IdentityType>,
    /// Object ID of the system-assigned identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Client (app) ID of the system-assigned identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Resource IDs (or names) of the assigned user-assigned identities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_assigned_identities: Vec<String>,
}

impl ResourceIdentity {
    /// The normalized type.
    pub fn kind(&self) -> IdentityType {
        self.kind.unwrap_or_default()
    }
}

/// A virtual machine (one node).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachine {
    /// Subscription (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Resource group (default: the only one in the subscription).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// VM name.
    pub name: String,
    /// Location (default: the resource group's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Kubernetes node name (default: the VM name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `vmId` (default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// VM size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    /// Private IP shown in the instance metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Identities.
    #[serde(default)]
    pub identity: ResourceIdentity,
}

/// A scale set instance (one node).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleSetInstance {
    /// Instance ID (default: its position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Kubernetes node name (default: `<scale set name>` + six-digit instance ID, as AKS names them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `vmId` (default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// Private IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
}

/// A virtual machine scale set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleSet {
    /// Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Resource group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// Name.
    pub name: String,
    /// Location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// VM size of the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Identities (shared by all instances).
    #[serde(default)]
    pub identity: ResourceIdentity,
    /// Instances.
    #[serde(default)]
    pub instances: Vec<ScaleSetInstance>,
}

/// A federated identity credential (on an app or a user-assigned identity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredential {
    /// Name (3–120 characters: letters, digits, `-`, `_`; starts with a letter or digit).
    pub name: String,
    /// Issuer URL (matched exactly, case-sensitively).
    pub issuer: String,
    /// Subject (matched exactly, case-sensitively).
    pub subject: String,
    /// Audiences (exactly one; default `api://AzureADTokenExchange`).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserAssignedIdentity {
    /// Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Resource group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// Name.
    pub name: String,
    /// Location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Client ID (default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Principal (object) ID (default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Federated identity credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_identity_credentials: Vec<FederatedCredential>,
}

impl UserAssignedIdentity {
    /// The resource ID (normalized worlds only).
    pub fn id(&self) -> String {
        armid::uami_id(
            self.subscription_id.as_deref().unwrap_or(""),
            self.resource_group.as_deref().unwrap_or(""),
            &self.name,
        )
    }
}

/// A client secret of an app registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSecret {
    /// The secret value.
    pub value: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Expiry (RFC 3339); expired secrets fail with AADSTS7000222.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<String>,
}

/// A certificate credential of an app registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppCertificate {
    /// PEM of the certificate (public part only).
    pub pem: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An app registration and its service principal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Application {
    /// Tenant (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Application (client) ID (default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Object ID of the service principal (the `oid` of its tokens; default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Client secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<AppSecret>,
    /// Certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<AppCertificate>,
    /// Federated identity credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_identity_credentials: Vec<FederatedCredential>,
    /// Application ID URIs (token audiences for this app as a resource).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier_uris: Vec<String>,
    /// `accessTokenAcceptedVersion` when this app is the resource (1 or 2; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_version: Option<u8>,
}

/// A role assignment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignment {
    /// Object ID of the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Alternatively, the principal by name: a user-assigned identity, an app display name, or a VM / scale set
    /// (its system-assigned identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_name: Option<String>,
    /// Built-in role name (e.g. `Managed Identity Operator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_definition_name: Option<String>,
    /// Built-in role definition GUID (alternative to the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<String>,
    /// Scope (`/`, a subscription, a resource group or a resource ID).
    pub scope: String,
    /// Assignment name (default: derived GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A Key Vault secret version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultSecret {
    /// Secret name.
    pub name: String,
    /// Value.
    pub value: String,
    /// Version (32 hex digits; default: derived). Later entries of the same name are newer versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Enabled (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Creation time (Unix seconds; default: 1700000000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

/// A Key Vault (RBAC authorization model).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVault {
    /// Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Resource group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// Vault name (the first DNS label of `<name>.vault.azure.net`).
    pub name: String,
    /// Location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Tenant (default: the subscription's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Secrets (all versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<VaultSecret>,
}

impl KeyVault {
    /// The resource ID (normalized worlds only).
    pub fn id(&self) -> String {
        armid::vault_id(
            self.subscription_id.as_deref().unwrap_or(""),
            self.resource_group.as_deref().unwrap_or(""),
            &self.name,
        )
    }
}

impl VirtualMachine {
    /// The resource ID (normalized worlds only).
    pub fn id(&self) -> String {
        armid::vm_id(
            self.subscription_id.as_deref().unwrap_or(""),
            self.resource_group.as_deref().unwrap_or(""),
            &self.name,
        )
    }
}

impl ScaleSet {
    /// The resource ID (normalized worlds only).
    pub fn id(&self) -> String {
        armid::vmss_id(
            self.subscription_id.as_deref().unwrap_or(""),
            self.resource_group.as_deref().unwrap_or(""),
            &self.name,
        )
    }
}

/// Validate a federated identity credential as ARM and Graph do; returns the message of the first problem.
pub fn validate_fic(f: &FederatedCredential) -> Result<(), String> {
    let n = &f.name;
    let first_ok = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if n.len() < 3
        || n.len() > 120
        || !first_ok
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "The federated identity credential name '{n}' is invalid. The name must be 3 to 120 characters long, start with a letter or a number, and contain only letters, numbers, hyphens and underscores."
        ));
    }
    if f.issuer.is_empty() || f.issuer.len() > 600 {
        return Err("The issuer must be between 1 and 600 characters long.".into());
    }
    if !f.issuer.starts_with("https://") {
        return Err(format!(
            "The issuer '{}' is invalid. The issuer must be a valid URL that uses the https scheme.",
            f.issuer
        ));
    }
    if f.subject.is_empty() || f.subject.len() > 600 {
        return Err("The subject must be between 1 and 600 characters long.".into());
    }
    if f.audiences.len() != 1 {
        return Err("Exactly one audience is required.".into());
    }
    if f.audiences[0].is_empty() || f.audiences[0].len() > 600 {
        return Err("The audience must be between 1 and 600 characters long.".into());
    }
    if f.description.as_ref().is_some_and(|d| d.len() > 600) {
        return Err("The description must be at most 600 characters long.".into());
    }
    Ok(())
}

fn check_fics(ctx: &str, fics: &mut [FederatedCredential]) -> Result<(), WorldError> {
    if fics.len() > MAX_FICS {
        return err(format!(
            "{ctx}: at most {MAX_FICS} federated identity credentials are allowed"
        ));
    }
    let mut names = HashSet::new();
    let mut pairs = HashSet::new();
    for f in fics.iter_mut() {
        if f.audiences.is_empty() {
            f.audiences.push(TOKEN_EXCHANGE_AUDIENCE.to_string());
        }
        validate_fic(f).map_err(|m| WorldError(format!("{ctx}: {m}")))?;
        if !names.insert(f.name.to_ascii_lowercase()) {
            return err(format!(
                "{ctx}: duplicate federated identity credential '{}'",
                f.name
            ));
        }
        if !pairs.insert((f.issuer.clone(), f.subject.clone())) {
            return err(format!(
                "{ctx}: issuer and subject combination already exists ({}, {})",
                f.issuer, f.subject
            ));
        }
    }
    Ok(())
}

fn check_guid(
    ctx: &str,
    field: &str,
    v: &mut Option<String>,
    seed: &str,
) -> Result<(), WorldError> {
    match v {
        Some(s) => {
            if !armid::is_guid(s) {
                return err(format!("{ctx}: {field} '{s}' is not a GUID"));
            }
            *s = s.to_ascii_lowercase();
        }
        None => *v = Some(armid::derived_guid(seed)),
    }
    Ok(())
}

fn check_name(ctx: &str, name: &str) -> Result<(), WorldError> {
    if !armid::valid_name(name) {
        return err(format!("{ctx}: invalid name '{name}'"));
    }
    Ok(())
}

/// A 32-hex-digit secret version derived from a seed.
pub fn derived_version(seed: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `name` is a valid Key Vault object name.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl World {
    /// Parse a world from a JSON value (what YAML and JSON files and the control API decode into).
    pub fn from_value(v: Value) -> Result<World, WorldError> {
        serde_json::from_value(v).map_err(|e| WorldError(format!("invalid world: {e}")))
    }

    /// Parse YAML or JSON text (YAML is a superset; both go through serde-saphyr).
    pub fn from_text(text: &str) -> Result<World, WorldError> {
        let v: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| WorldError(format!("invalid JSON: {e}")))?
        } else {
            serde_saphyr::from_str(text).map_err(|e| WorldError(format!("invalid YAML: {e}")))?
        };
        World::from_value(if v.is_null() {
            Value::Object(Default::default())
        } else {
            v
        })
    }

    /// Fill defaults, derive IDs, check references. Idempotent.
    pub fn normalize(mut self) -> Result<World, WorldError> {
        // Tenants.
        let mut seen = HashSet::new();
        for (i, t) in self.tenants.iter_mut().enumerate() {
            let ctx = format!("tenants[{i}]");
            if !armid::is_guid(&t.id) {
                return err(format!("{ctx}: id '{}' is not a GUID", t.id));
            }
            t.id = t.id.to_ascii_lowercase();
            for d in t.domains.iter_mut() {
                *d = d.to_ascii_lowercase();
                if !d.contains('.') {
                    return err(format!("{ctx}: domain '{d}' is not a DNS name"));
                }
            }
            if !seen.insert(t.id.clone()) {
                return err(format!("{ctx}: duplicate tenant {}", t.id));
            }
        }
        let tenant_ids: Vec<String> = self.tenants.iter().map(|t| t.id.clone()).collect();
        let only_tenant = (tenant_ids.len() == 1).then(|| tenant_ids[0].clone());
        let resolve_tenant = |ctx: &str, v: &mut Option<String>| -> Result<(), WorldError> {
            match v {
                Some(t) => {
                    let t2 = t.to_ascii_lowercase();
                    if !tenant_ids.contains(&t2) {
                        return err(format!("{ctx}: unknown tenant '{t}'"));
                    }
                    *t = t2;
                }
                None => match &only_tenant {
                    Some(t) => *v = Some(t.clone()),
                    None => {
                        return err(format!(
                            "{ctx}: tenantId is required (there is not exactly one tenant)"
                        ));
                    }
                },
            }
            Ok(())
        };

        // Subscriptions.
        let mut seen = HashSet::new();
        for (i, s) in self.subscriptions.iter_mut().enumerate() {
            let ctx = format!("subscriptions[{i}]");
            check_name(&ctx, &s.id)?;
            if armid::is_guid(&s.id) {
                s.id = s.id.to_ascii_lowercase();
            }
            resolve_tenant(&ctx, &mut s.tenant_id)?;
            if !seen.insert(s.id.to_ascii_lowercase()) {
                return err(format!("{ctx}: duplicate subscription {}", s.id));
            }
        }
        let subs: Vec<String> = self.subscriptions.iter().map(|s| s.id.clone()).collect();

        // Resource groups.
        let mut seen = HashSet::new();
        for (i, rg) in self.resource_groups.iter_mut().enumerate() {
            let ctx = format!("resourceGroups[{i}]");
            check_name(&ctx, &rg.name)?;
            rg.subscription_id = Some(resolve_sub(&ctx, &subs, rg.subscription_id.take())?);
            rg.location
                .get_or_insert_with(|| DEFAULT_LOCATION.to_string());
            let key = (
                rg.subscription_id
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                rg.name.to_ascii_lowercase(),
            );
            if !seen.insert(key) {
                return err(format!("{ctx}: duplicate resource group {}", rg.name));
            }
        }

        // Placement of every resource (subscription, resource group, location).
        let mut rgs = std::mem::take(&mut self.resource_groups);
        let mut place = |ctx: &str,
                         sub: &mut Option<String>,
                         rg: &mut Option<String>,
                         loc: &mut Option<String>|
         -> Result<(), WorldError> {
            let s = resolve_sub(ctx, &subs, sub.take())?;
            let g = match rg.take() {
                Some(g) => g,
                None => {
                    let in_sub: Vec<&ResourceGroup> = rgs
                        .iter()
                        .filter(|r| r.subscription_id.as_deref() == Some(s.as_str()))
                        .collect();
                    if in_sub.len() == 1 {
                        in_sub[0].name.clone()
                    } else {
                        return err(format!(
                            "{ctx}: resourceGroup is required (subscription {s} has {} resource groups)",
                            in_sub.len()
                        ));
                    }
                }
            };
            check_name(ctx, &g)?;
            let existing = rgs.iter().find(|r| {
                r.subscription_id
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&s))
                    && r.name.eq_ignore_ascii_case(&g)
            });
            let rg_loc = match existing {
                Some(r) => r
                    .location
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LOCATION.into()),
                None => {
                    let l = loc.clone().unwrap_or_else(|| DEFAULT_LOCATION.into());
                    rgs.push(ResourceGroup {
                        subscription_id: Some(s.clone()),
                        name: g.clone(),
                        location: Some(l.clone()),
                    });
                    l
                }
            };
            loc.get_or_insert(rg_loc);
            *sub = Some(s);
            *rg = Some(g);
            Ok(())
        };

        for (i, u) in self.user_assigned_identities.iter_mut().enumerate() {
            let ctx = format!("userAssignedIdentities[{i}]");
            check_name(&ctx, &u.name)?;
            place(
                &ctx,
                &mut u.subscription_id,
                &mut u.resource_group,
                &mut u.location,
            )?;
            let id = armid::key(&u.id());
            check_guid(&ctx, "clientId", &mut u.client_id, &format!("client:{id}"))?;
            check_guid(
                &ctx,
                "principalId",
                &mut u.principal_id,
                &format!("principal:{id}"),
            )?;
            check_fics(&ctx, &mut u.federated_identity_credentials)?;
        }
        for (i, v) in self.virtual_machines.iter_mut().enumerate() {
            let ctx = format!("virtualMachines[{i}]");
            check_name(&ctx, &v.name)?;
            place(
                &ctx,
                &mut v.subscription_id,
                &mut v.resource_group,
                &mut v.location,
            )?;
            let id = armid::key(&v.id());
            v.node_name.get_or_insert_with(|| v.name.clone());
            check_guid(&ctx, "vmId", &mut v.vm_id, &format!("vmid:{id}"))?;
            v.vm_size
                .get_or_insert_with(|| "Standard_D2s_v3".to_string());
        }
        for (i, s) in self.virtual_machine_scale_sets.iter_mut().enumerate() {
            let ctx = format!("virtualMachineScaleSets[{i}]");
            check_name(&ctx, &s.name)?;
            place(
                &ctx,
                &mut s.subscription_id,
                &mut s.resource_group,
                &mut s.location,
            )?;
            let id = armid::key(&s.id());
            s.vm_size
                .get_or_insert_with(|| "Standard_D2s_v3".to_string());
            let mut ids = HashSet::new();
            for (j, inst) in s.instances.iter_mut().enumerate() {
                let ictx = format!("{ctx}.instances[{j}]");
                let iid = inst
                    .instance_id
                    .get_or_insert_with(|| j.to_string())
                    .clone();
                if iid.is_empty() || !iid.chars().all(|c| c.is_ascii_digit()) {
                    return err(format!("{ictx}: instanceId '{iid}' must be a number"));
                }
                if !ids.insert(iid.clone()) {
                    return err(format!("{ictx}: duplicate instanceId {iid}"));
                }
                let digits = iid.parse::<u64>().unwrap_or(0);
                inst.node_name
                    .get_or_insert_with(|| format!("{}{digits:06}", s.name));
                check_guid(&ictx, "vmId", &mut inst.vm_id, &format!("vmid:{id}/{iid}"))?;
            }
        }
        for (i, kv) in self.key_vaults.iter_mut().enumerate() {
            let ctx = format!("keyVaults[{i}]");
            let n = &kv.name;
            if n.len() < 3
                || n.len() > 24
                || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return err(format!(
                    "{ctx}: vault name '{n}' must be 3-24 characters of letters, digits and hyphens"
                ));
            }
            place(
                &ctx,
                &mut kv.subscription_id,
                &mut kv.resource_group,
                &mut kv.location,
            )?;
        }
        self.resource_groups = rgs;

        // Subscription tenants for vaults.
        let sub_tenant: HashMap<String, String> = self
            .subscriptions
            .iter()
            .map(|s| {
                (
                    s.id.to_ascii_lowercase(),
                    s.tenant_id.clone().unwrap_or_default(),
                )
            })
            .collect();
        let mut vault_names = HashSet::new();
        for (i, kv) in self.key_vaults.iter_mut().enumerate() {
            let ctx = format!("keyVaults[{i}]");
            if !vault_names.insert(kv.name.to_ascii_lowercase()) {
                return err(format!("{ctx}: duplicate vault name {}", kv.name));
            }
            match &mut kv.tenant_id {
                Some(t) => {
                    *t = t.to_ascii_lowercase();
                    if !self.tenants.iter().any(|x| &x.id == t) {
                        return err(format!("{ctx}: unknown tenant '{t}'"));
                    }
                }
                None => {
                    kv.tenant_id = sub_tenant
                        .get(
                            &kv.subscription_id
                                .clone()
                                .unwrap_or_default()
                                .to_ascii_lowercase(),
                        )
                        .cloned()
                }
            }
            let mut versions = HashSet::new();
            for (j, s) in kv.secrets.iter_mut().enumerate() {
                let sctx = format!("{ctx}.secrets[{j}]");
                if !valid_secret_name(&s.name) {
                    return err(format!("{sctx}: invalid secret name '{}'", s.name));
                }
                let v = s
                    .version
                    .get_or_insert_with(|| {
                        derived_version(&format!("{}/{}/{j}/{}", kv.name, s.name, s.value))
                    })
                    .to_ascii_lowercase();
                if v.len() != 32 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                    return err(format!("{sctx}: version '{v}' must be 32 hex digits"));
                }
                s.version = Some(v.clone());
                if !versions.insert((s.name.to_ascii_lowercase(), v)) {
                    return err(format!("{sctx}: duplicate secret version"));
                }
                s.created.get_or_insert(1_700_000_000);
            }
        }

        // Applications.
        let mut app_ids = HashSet::new();
        for (i, a) in self.applications.iter_mut().enumerate() {
            let ctx = format!("applications[{i}]");
            if a.display_name.is_empty() {
                return err(format!("{ctx}: displayName is required"));
            }
            resolve_tenant(&ctx, &mut a.tenant_id)?;
            let t = a.tenant_id.clone().unwrap_or_default();
            check_guid(
                &ctx,
                "appId",
                &mut a.app_id,
                &format!("app:{t}:{}", a.display_name),
            )?;
            let app = a.app_id.clone().unwrap_or_default();
            check_guid(&ctx, "objectId", &mut a.object_id, &format!("sp:{t}:{app}"))?;
            if !app_ids.insert((t, app.clone())) {
                return err(format!("{ctx}: duplicate appId {app}"));
            }
            for (j, s) in a.secrets.iter().enumerate() {
                if s.value.is_empty() {
                    return err(format!("{ctx}.secrets[{j}]: value is required"));
                }
                if let Some(e) = &s.expires_on
                    && e.parse::<jiff::Timestamp>().is_err()
                {
                    return err(format!(
                        "{ctx}.secrets[{j}]: expiresOn '{e}' is not RFC 3339"
                    ));
                }
            }
            for (j, c) in a.certificates.iter().enumerate() {
                CertInfo::from_pem(&c.pem)
                    .map_err(|e| WorldError(format!("{ctx}.certificates[{j}]: {e}")))?;
            }
            if let Some(v) = a.access_token_version
                && v != 1
                && v != 2
            {
                return err(format!("{ctx}: accessTokenVersion must be 1 or 2"));
            }
            check_fics(&ctx, &mut a.federated_identity_credentials)?;
        }

        // Identity references of VMs and scale sets.
        let uamis: Vec<(String, String)> = self
            .user_assigned_identities
            .iter()
            .map(|u| (u.id(), u.name.clone()))
            .collect();
        let mut dup = HashSet::new();
        for (id, _) in &uamis {
            if !dup.insert(armid::key(id)) {
                return err(format!("duplicate user-assigned identity {id}"));
            }
        }
        let resolve_uami = |ctx: &str, r: &str| -> Result<String, WorldError> {
            if r.starts_with('/') {
                uamis
                    .iter()
                    .find(|(id, _)| armid::eq(id, r))
                    .map(|(id, _)| id.clone())
                    .ok_or_else(|| {
                        WorldError(format!("{ctx}: unknown user-assigned identity '{r}'"))
                    })
            } else {
                let m: Vec<&(String, String)> = uamis
                    .iter()
                    .filter(|(_, n)| n.eq_ignore_ascii_case(r))
                    .collect();
                match m.as_slice() {
                    [one] => Ok(one.0.clone()),
                    [] => err(format!("{ctx}: unknown user-assigned identity '{r}'")),
                    _ => err(format!(
                        "{ctx}: identity name '{r}' is ambiguous; use its resource ID"
                    )),
                }
            }
        };
        let mut nodes = HashSet::new();
        for (i, v) in self.virtual_machines.iter_mut().enumerate() {
            let ctx = format!("virtualMachines[{i}]");
            let id = armid::key(&v.id());
            normalize_identity(&ctx, &mut v.identity, &id, &resolve_uami)?;
            let node = v.node_name.clone().unwrap_or_default();
            if !nodes.insert(node.clone()) {
                return err(format!("{ctx}: duplicate node name {node}"));
            }
        }
        for (i, s) in self.virtual_machine_scale_sets.iter_mut().enumerate() {
            let ctx = format!("virtualMachineScaleSets[{i}]");
            let id = armid::key(&s.id());
            normalize_identity(&ctx, &mut s.identity, &id, &resolve_uami)?;
            for inst in &s.instances {
                let node = inst.node_name.clone().unwrap_or_default();
                if !nodes.insert(node.clone()) {
                    return err(format!("{ctx}: duplicate node name {node}"));
                }
            }
        }
        let mut seen = HashSet::new();
        for v in &self.virtual_machines {
            if !seen.insert(armid::key(&v.id())) {
                return err(format!("duplicate virtual machine {}", v.id()));
            }
        }
        for s in &self.virtual_machine_scale_sets {
            if !seen.insert(armid::key(&s.id())) {
                return err(format!("duplicate scale set {}", s.id()));
            }
        }

        // Role assignments.
        for i in 0..self.role_assignments.len() {
            let ctx = format!("roleAssignments[{i}]");
            let mut ra = self.role_assignments[i].clone();
            let role = match (&ra.role_definition_name, &ra.role_definition_id) {
                (Some(n), _) => crate::rbac::role_by_name(n),
                (None, Some(id)) => crate::rbac::role_by_id(id),
                (None, None) => None,
            }
            .ok_or_else(|| {
                WorldError(format!(
                    "{ctx}: unknown role (roleDefinitionName or roleDefinitionId of a supported built-in role is required)"
                ))
            })?;
            ra.role_definition_name = Some(role.name.to_string());
            ra.role_definition_id = Some(role.id.to_string());
            match (&ra.principal_id, &ra.principal_name) {
                (Some(p), _) => {
                    if !armid::is_guid(p) {
                        return err(format!("{ctx}: principalId '{p}' is not a GUID"));
                    }
                    ra.principal_id = Some(p.to_ascii_lowercase());
                }
                (None, Some(n)) => ra.principal_id = Some(self.principal_by_name(&ctx, n)?),
                (None, None) => {
                    return err(format!("{ctx}: principalId or principalName is required"));
                }
            }
            let scope = ra.scope.trim_end_matches('/');
            ra.scope = if scope.is_empty() {
                "/".into()
            } else {
                scope.to_string()
            };
            if !ra.scope.starts_with('/') {
                return err(format!("{ctx}: scope '{}' must start with '/'", ra.scope));
            }
            if ra.name.is_none() {
                ra.name = Some(armid::derived_guid(&format!(
                    "ra:{}:{}:{}",
                    ra.principal_id.clone().unwrap_or_default(),
                    role.id,
                    ra.scope.to_ascii_lowercase()
                )));
            }
            self.role_assignments[i] = ra;
        }
        for r in self.resources.iter_mut() {
            *r = r.trim().to_string();
        }
        self.check_unique_principals()?;
        Ok(self)
    }

    /// Principals are found by their IDs: two that shared a client ID or an object ID would share each other's
    /// tokens and role assignments, so a world that declares such a pair is refused.
    fn check_unique_principals(&self) -> Result<(), WorldError> {
        let mut client_ids: HashMap<String, String> = HashMap::new();
        let mut object_ids: HashMap<String, String> = HashMap::new();
        let claim =
            |map: &mut HashMap<String, String>, id: &Option<String>, who: String, what: &str| {
                let Some(id) = id else { return Ok(()) };
                match map.insert(id.to_ascii_lowercase(), who.clone()) {
                    Some(other) => err(format!("{who}: {what} '{id}' is already used by {other}")),
                    None => Ok(()),
                }
            };
        for (i, u) in self.user_assigned_identities.iter().enumerate() {
            let who = format!("userAssignedIdentities[{i}] ({})", u.name);
            claim(&mut client_ids, &u.client_id, who.clone(), "clientId")?;
            claim(&mut object_ids, &u.principal_id, who, "principalId")?;
        }
        for (i, a) in self.applications.iter().enumerate() {
            let who = format!("applications[{i}] ({})", a.display_name);
            claim(&mut client_ids, &a.app_id, who.clone(), "appId")?;
            claim(&mut object_ids, &a.object_id, who, "objectId")?;
        }
        for (i, v) in self.virtual_machines.iter().enumerate() {
            claim(
                &mut object_ids,
                &v.identity.principal_id,
                format!("virtualMachines[{i}] ({})", v.name),
                "principalId",
            )?;
        }
        for (i, v) in self.virtual_machine_scale_sets.iter().enumerate() {
            let who = format!("virtualMachineScaleSets[{i}] ({})", v.name);
            claim(
                &mut object_ids,
                &v.identity.principal_id,
                who,
                "principalId",
            )?;
        }
        Ok(())
    }

    fn principal_by_name(&self, ctx: &str, n: &str) -> Result<String, WorldError> {
        let mut found: Vec<String> = Vec::new();
        for u in &self.user_assigned_identities {
            if u.name.eq_ignore_ascii_case(n) || armid::eq(&u.id(), n) {
                found.extend(u.principal_id.clone());
            }
        }
        for a in &self.applications {
            if a.display_name == n {
                found.extend(a.object_id.clone());
            }
        }
        for v in &self.virtual_machines {
            if (v.name.eq_ignore_ascii_case(n) || armid::eq(&v.id(), n))
                && v.identity.kind().system()
            {
                found.extend(v.identity.principal_id.clone());
            }
        }
        for s in &self.virtual_machine_scale_sets {
            if (s.name.eq_ignore_ascii_case(n) || armid::eq(&s.id(), n))
                && s.identity.kind().system()
            {
                found.extend(s.identity.principal_id.clone());
            }
        }
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => err(format!("{ctx}: no principal named '{n}'")),
            _ => err(format!(
                "{ctx}: principal name '{n}' is ambiguous; use principalId"
            )),
        }
    }

    /// The tenant of a subscription.
    pub fn tenant_of_subscription(&self, sub: &str) -> Option<&str> {
        self.subscriptions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(sub))
            .and_then(|s| s.tenant_id.as_deref())
    }
}

fn resolve_sub(ctx: &str, subs: &[String], v: Option<String>) -> Result<String, WorldError> {
    match v {
        Some(s) => subs
            .iter()
            .find(|x| x.eq_ignore_ascii_case(&s))
            .cloned()
            .ok_or_else(|| WorldError(format!("{ctx}: unknown subscription '{s}'"))),
        None if subs.len() == 1 => Ok(subs[0].clone()),
        None => err(format!(
            "{ctx}: subscriptionId is required (there is not exactly one subscription)"
        )),
    }
}

fn normalize_identity(
    ctx: &str,
    ident: &mut ResourceIdentity,
    resource_key: &str,
    resolve: &dyn Fn(&str, &str) -> Result<String, WorldError>,
) -> Result<(), WorldError> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for r in &ident.user_assigned_identities {
        let id = resolve(ctx, r)?;
        if seen.insert(armid::key(&id)) {
            ids.push(id);
        }
    }
    ident.user_assigned_identities = ids;
    let kind = ident.kind.unwrap_or_else(|| {
        IdentityType::from_flags(
            ident.principal_id.is_some(),
            !ident.user_assigned_identities.is_empty(),
        )
    });
    if !kind.user() && !ident.user_assigned_identities.is_empty() {
        return err(format!(
            "{ctx}: identity type {} does not allow userAssignedIdentities",
            kind.as_str()
        ));
    }
    if kind.user() && ident.user_assigned_identities.is_empty() {
        return err(format!(
            "{ctx}: identity type {} needs at least one user-assigned identity",
            kind.as_str()
        ));
    }
    ident.kind = Some(kind);
    if kind.system() {
        check_guid(
            ctx,
            "identity.principalId",
            &mut ident.principal_id,
            &format!("sys-principal:{resource_key}"),
        )?;
        check_guid(
            ctx,
            "identity.clientId",
            &mut ident.client_id,
            &format!("sys-client:{resource_key}"),
        )?;
    } else {
        ident.principal_id = None;
        ident.client_id = None;
    }
    Ok(())
}

/// What an app certificate offers for assertion checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// base64url SHA-1 thumbprint (`x5t`).
    pub x5t: String,
    /// base64url SHA-256 thumbprint (`x5t#S256`).
    pub x5t_s256: String,
    /// Uppercase hex SHA-1 thumbprint (as Entra prints it).
    pub thumbprint_hex: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// Validity start (Unix seconds).
    pub not_before: i64,
    /// Validity end (Unix seconds).
    pub not_after: i64,
}

impl CertInfo {
    /// Parse a PEM certificate.
    pub fn from_pem(pem: &str) -> Result<CertInfo, String> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e:?}"))?;
        Self::from_der(der.as_ref())
    }

    /// Parse a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("invalid X.509 certificate: {e}"))?;
        let spki = cert.tbs_certificate.subject_pki.raw.to_vec();
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        Ok(CertInfo {
            x5t: crate::jwt::b64url(sha1.as_ref()),
            x5t_s256: crate::jwt::b64url(sha256.as_ref()),
            thumbprint_hex: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            spki,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// Where a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef {
    /// A VM (index into `virtualMachines`).
    Vm(usize),
    /// A scale set instance (scale set index, instance index).
    Vmss(usize, usize),
}

/// A principal that can hold role assignments and sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRef {
    /// A user-assigned identity.
    Uami(usize),
    /// An app's service principal.
    App(usize),
    /// The system-assigned identity of a VM.
    VmSystem(usize),
    /// The system-assigned identity of a scale set.
    VmssSystem(usize),
}

/// Built-in resource identifiers Entra issues tokens for (compared without a trailing slash, ignoring case).
pub const BUILTIN_RESOURCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://vault.azure.net",
    "https://graph.microsoft.com",
    "https://graph.windows.net",
    "https://storage.azure.com",
    "https://database.windows.net",
    "https://ossrdbms-aad.database.windows.net",
    "https://servicebus.azure.net",
    "https://eventhubs.azure.net",
    "https://cognitiveservices.azure.com",
    "https://monitor.azure.com",
    "https://api.loganalytics.io",
    "https://containerregistry.azure.net",
    "https://redis.azure.com",
    "https://kusto.kusto.windows.net",
    "api://azureadtokenexchange",
    "6dae42f8-4368-4678-94ff-3960e28e3630",
];

/// Audiences ARM accepts.
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
];

/// Audiences Key Vault accepts.
pub const VAULT_AUDIENCES: &[&str] = &[
    "https://vault.azure.net",
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
];

/// Lookups derived from a normalized world.
#[derive(Debug, Clone, Default)]
pub struct Index {
    tenants: HashMap<String, usize>,
    subs: HashMap<String, usize>,
    nodes: HashMap<String, NodeRef>,
    vms: HashMap<String, usize>,
    vmss: HashMap<String, usize>,
    uamis: HashMap<String, usize>,
    uami_by_client: HashMap<String, usize>,
    apps: HashMap<(usize, String), usize>,
    app_certs: Vec<Vec<CertInfo>>,
    vaults: HashMap<String, usize>,
    resources: HashSet<String>,
    resource_apps: HashMap<String, usize>,
    principals: HashMap<String, PrincipalRef>,
    assignments: HashMap<String, Vec<usize>>,
}

fn resource_key(r: &str) -> String {
    r.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Index {
    /// Build the index of a normalized world.
    pub fn build(w: &World) -> Index {
        let mut ix = Index::default();
        for (i, t) in w.tenants.iter().enumerate() {
            ix.tenants.insert(t.id.clone(), i);
            for d in &t.domains {
                ix.tenants.insert(d.clone(), i);
            }
        }
        for (i, s) in w.subscriptions.iter().enumerate() {
            ix.subs.insert(s.id.to_ascii_lowercase(), i);
        }
        for (i, v) in w.virtual_machines.iter().enumerate() {
            ix.vms.insert(armid::key(&v.id()), i);
            if let Some(n) = &v.node_name {
                ix.nodes.insert(n.clone(), NodeRef::Vm(i));
            }
            if let Some(p) = &v.identity.principal_id {
                ix.principals.insert(p.clone(), PrincipalRef::VmSystem(i));
            }
        }
        for (i, s) in w.virtual_machine_scale_sets.iter().enumerate() {
            ix.vmss.insert(armid::key(&s.id()), i);
            for (j, inst) in s.instances.iter().enumerate() {
                if let Some(n) = &inst.node_name {
                    ix.nodes.insert(n.clone(), NodeRef::Vmss(i, j));
                }
            }
            if let Some(p) = &s.identity.principal_id {
                ix.principals.insert(p.clone(), PrincipalRef::VmssSystem(i));
            }
        }
        for (i, u) in w.user_assigned_identities.iter().enumerate() {
            ix.uamis.insert(armid::key(&u.id()), i);
            if let Some(c) = &u.client_id {
                ix.uami_by_client.insert(c.clone(), i);
            }
            if let Some(p) = &u.principal_id {
                ix.principals.insert(p.clone(), PrincipalRef::Uami(i));
            }
        }
        for (i, a) in w.applications.iter().enumerate() {
            let t = a
                .tenant_id
                .as_deref()
                .and_then(|t| ix.tenants.get(t).copied())
                .unwrap_or(usize::MAX);
            if let Some(id) = &a.app_id {
                ix.apps.insert((t, id.clone()), i);
                ix.resources.insert(id.clone());
                ix.resource_apps.insert(id.clone(), i);
            }
            if let Some(o) = &a.object_id {
                ix.principals.insert(o.clone(), PrincipalRef::App(i));
            }
            for u in &a.identifier_uris {
                ix.resources.insert(resource_key(u));
                ix.resource_apps.insert(resource_key(u), i);
            }
            ix.app_certs.push(
                a.certificates
                    .iter()
                    .filter_map(|c| CertInfo::from_pem(&c.pem).ok())
                    .collect(),
            );
        }
        for (i, kv) in w.key_vaults.iter().enumerate() {
            ix.vaults.insert(kv.name.to_ascii_lowercase(), i);
        }
        for r in BUILTIN_RESOURCES {
            ix.resources.insert(r.to_string());
        }
        for r in &w.resources {
            ix.resources.insert(resource_key(r));
        }
        for (i, ra) in w.role_assignments.iter().enumerate() {
            if let Some(p) = &ra.principal_id {
                ix.assignments.entry(p.clone()).or_default().push(i);
            }
        }
        ix
    }

    /// Tenant index by ID or verified domain (case-insensitive).
    pub fn tenant(&self, id_or_domain: &str) -> Option<usize> {
        self.tenants
            .get(&id_or_domain.to_ascii_lowercase())
            .copied()
    }

    /// Subscription index.
    pub fn subscription(&self, id: &str) -> Option<usize> {
        self.subs.get(&id.to_ascii_lowercase()).copied()
    }

    /// Where a node runs.
    pub fn node(&self, name: &str) -> Option<NodeRef> {
        self.nodes.get(name).copied()
    }

    /// All node names.
    pub fn node_names(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    /// VM by resource ID.
    pub fn vm(&self, id: &str) -> Option<usize> {
        self.vms.get(&armid::key(id)).copied()
    }

    /// Scale set by resource ID.
    pub fn vmss(&self, id: &str) -> Option<usize> {
        self.vmss.get(&armid::key(id)).copied()
    }

    /// User-assigned identity by resource ID.
    pub fn uami(&self, id: &str) -> Option<usize> {
        self.uamis.get(&armid::key(id)).copied()
    }

    /// User-assigned identity by client ID.
    pub fn uami_by_client_id(&self, client_id: &str) -> Option<usize> {
        self.uami_by_client
            .get(&client_id.to_ascii_lowercase())
            .copied()
    }

    /// App registration by tenant index and app ID.
    pub fn app(&self, tenant: usize, app_id: &str) -> Option<usize> {
        self.apps
            .get(&(tenant, app_id.to_ascii_lowercase()))
            .copied()
    }

    /// Parsed certificates of an app.
    pub fn app_certs(&self, app: usize) -> &[CertInfo] {
        self.app_certs.get(app).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Vault by name.
    pub fn vault(&self, name: &str) -> Option<usize> {
        self.vaults.get(&name.to_ascii_lowercase()).copied()
    }

    /// Whether Entra knows `resource` as a token audience.
    pub fn known_resource(&self, resource: &str) -> bool {
        let k = resource_key(resource);
        if self.resources.contains(&k) {
            return true;
        }
        // Storage data-plane endpoints are accepted per account.
        k.strip_prefix("https://").is_some_and(|host| {
            [
                ".blob.core.windows.net",
                ".queue.core.windows.net",
                ".table.core.windows.net",
                ".file.core.windows.net",
                ".dfs.core.windows.net",
            ]
            .iter()
            .any(|s| host.ends_with(s) && !host.contains('/'))
        })
    }

    /// The app registration that a resource identifier (identifier URI or app ID) names.
    pub fn resource_app(&self, resource: &str) -> Option<usize> {
        self.resource_apps.get(&resource_key(resource)).copied()
    }

    /// The principal with this object ID.
    pub fn principal(&self, oid: &str) -> Option<PrincipalRef> {
        self.principals.get(&oid.to_ascii_lowercase()).copied()
    }

    /// Role assignments of a principal (indices into `roleAssignments`).
    pub fn assignments_of(&self, oid: &str) -> &[usize] {
        self.assignments
            .get(&oid.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// Whether a resource string matches one of `allowed` (trailing slash and case ignored).
pub fn audience_in(aud: &str, allowed: &[&str]) -> bool {
    let k = resource_key(aud);
    allowed.iter().any(|a| *a == k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "11111111-1111-1111-1111-111111111111";

    fn sample() -> &'static str {
        r#"
tenants: [{id: 11111111-1111-1111-1111-111111111111, domains: [contoso.onmicrosoft.com]}]
subscriptions: [{id: 22222222-2222-2222-2222-222222222222}]
resourceGroups: [{name: rg-nodes, location: northeurope}]
userAssignedIdentities:
  - name: id-web
    federatedIdentityCredentials: [{name: fic-1, issuer: "https://issuer.example/", subject: "system:serviceaccount:default:web"}]
  - name: id-job
virtualMachines:
  - name: vm-0
    identity: {type: "SystemAssigned, UserAssigned", userAssignedIdentities: [id-web]}
virtualMachineScaleSets:
  - name: aks-pool-vmss
    instances: [{}, {instanceId: "7", nodeName: custom}]
applications:
  - displayName: ci-app
    secrets: [{value: s3cret}]
roleAssignments:
  - principalName: ci-app
    roleDefinitionName: Virtual Machine Contributor
    scope: /subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-nodes/
keyVaults:
  - name: kv1
    secrets: [{name: db-password, value: one}, {name: db-password, value: two}]
"#
    }

    #[test]
    fn normalize_fills_defaults() {
        let w = World::from_text(sample())
            .expect("parse")
            .normalize()
            .expect("normalize");
        assert_eq!(w.resource_groups.len(), 1);
        let vm = &w.virtual_machines[0];
        assert_eq!(vm.resource_group.as_deref(), Some("rg-nodes"));
        assert_eq!(vm.location.as_deref(), Some("northeurope"));
        assert_eq!(vm.node_name.as_deref(), Some("vm-0"));
        assert!(armid::is_guid(
            vm.identity.principal_id.as_deref().unwrap_or("")
        ));
        assert!(
            vm.identity.user_assigned_identities[0].ends_with("/userAssignedIdentities/id-web")
        );
        let ss = &w.virtual_machine_scale_sets[0];
        assert_eq!(
            ss.instances[0].node_name.as_deref(),
            Some("aks-pool-vmss000000")
        );
        assert_eq!(ss.instances[1].node_name.as_deref(), Some("custom"));
        assert_eq!(ss.identity.kind(), IdentityType::None);
        assert_eq!(
            w.role_assignments[0].principal_id,
            w.applications[0].object_id
        );
        assert_eq!(
            w.role_assignments[0].role_definition_id.as_deref(),
            Some("9980e02c-c2be-4d73-94e8-173b1dc7cf3c")
        );
        assert_eq!(w.key_vaults[0].tenant_id.as_deref(), Some(T));
        assert_ne!(
            w.key_vaults[0].secrets[0].version,
            w.key_vaults[0].secrets[1].version
        );
        assert_eq!(
            w.user_assigned_identities[0].federated_identity_credentials[0].audiences,
            vec![TOKEN_EXCHANGE_AUDIENCE]
        );
        // Idempotent, and the JSON round-trips.
        let again = w.clone().normalize().expect("renormalize");
        assert_eq!(again, w);
        let v = serde_json::to_value(&w).expect("json");
        assert_eq!(World::from_value(v).expect("reparse"), w);
        // Same IDs on every parse.
        let w2 = World::from_text(sample())
            .expect("parse")
            .normalize()
            .expect("normalize");
        assert_eq!(w2, w);
    }

    #[test]
    fn index_lookups() {
        let w = World::from_text(sample())
            .expect("parse")
            .normalize()
            .expect("normalize");
        let ix = Index::build(&w);
        assert_eq!(ix.tenant("CONTOSO.onmicrosoft.com"), Some(0));
        assert_eq!(ix.tenant(T), Some(0));
        assert_eq!(ix.node("vm-0"), Some(NodeRef::Vm(0)));
        assert_eq!(ix.node("custom"), Some(NodeRef::Vmss(0, 1)));
        let uid = w.user_assigned_identities[0].id().to_ascii_uppercase();
        assert_eq!(ix.uami(&uid), Some(0));
        let cid = w.user_assigned_identities[1]
            .client_id
            .clone()
            .unwrap_or_default();
        assert_eq!(ix.uami_by_client_id(&cid.to_ascii_uppercase()), Some(1));
        assert!(ix.known_resource("https://management.azure.com/"));
        assert!(ix.known_resource("HTTPS://VAULT.AZURE.NET"));
        assert!(ix.known_resource("https://acct.blob.core.windows.net"));
        assert!(!ix.known_resource("https://unknown.example"));
        let app = w.applications[0].app_id.clone().unwrap_or_default();
        assert_eq!(ix.app(0, &app), Some(0));
        assert_eq!(
            ix.assignments_of(w.applications[0].object_id.as_deref().unwrap_or("")),
            &[0]
        );
        assert!(audience_in("https://management.azure.com/", ARM_AUDIENCES));
        assert!(!audience_in("https://vault.azure.net", ARM_AUDIENCES));
    }

    #[test]
    fn duplicate_principal_ids_are_refused() {
        let w = World::from_text(
            "tenants: [{id: 72f988bf-86f1-41af-91ab-2d7cd011db47}]\nsubscriptions: [{id: 0b1f6471-1bf0-4dda-aec3-111122223333}]\nresourceGroups: [{name: rg}]\nuserAssignedIdentities:\n  - {name: a, resourceGroup: rg, clientId: 11111111-1111-1111-1111-111111111111}\napplications:\n  - {displayName: app, appId: 11111111-1111-1111-1111-111111111111}\n",
        );
        let e = w
            .and_then(World::normalize)
            .expect_err("duplicate client id");
        assert!(
            e.0.contains("is already used by userAssignedIdentities[0] (a)"),
            "{e}"
        );
    }

    #[test]
    fn normalize_errors() {
        let base =
            "tenants: [{id: 11111111-1111-1111-1111-111111111111}]\nsubscriptions: [{id: s1}]\n";
        let cases = [
            ("tenants: [{id: nope}]", "not a GUID"),
            ("subscriptions: [{id: s1}]", "tenantId is required"),
            (
                &*format!(
                    "{base}virtualMachines: [{{name: a, resourceGroup: rg, identity: {{userAssignedIdentities: [missing]}}}}]"
                ),
                "unknown user-assigned identity",
            ),
            (
                &*format!(
                    "{base}virtualMachines: [{{name: a, resourceGroup: rg}}, {{name: b, resourceGroup: rg, nodeName: a}}]"
                ),
                "duplicate node name",
            ),
            (
                &*format!(
                    "{base}virtualMachines: [{{name: a, resourceGroup: rg, identity: {{type: UserAssigned}}}}]"
                ),
                "needs at least one",
            ),
            (
                &*format!(
                    "{base}userAssignedIdentities: [{{name: u, resourceGroup: rg, federatedIdentityCredentials: [{{name: x, issuer: 'https://i', subject: s}}]}}]"
                ),
                "name 'x' is invalid",
            ),
            (
                &*format!(
                    "{base}userAssignedIdentities: [{{name: u, resourceGroup: rg, federatedIdentityCredentials: [{{name: xyz, issuer: 'http://i', subject: s}}]}}]"
                ),
                "https scheme",
            ),
            (
                &*format!(
                    "{base}roleAssignments: [{{principalId: 11111111-1111-1111-1111-111111111111, roleDefinitionName: Wizard, scope: /}}]"
                ),
                "unknown role",
            ),
            (
                &*format!(
                    "{base}applications: [{{displayName: a, certificates: [{{pem: junk}}]}}]"
                ),
                "not a PEM certificate",
            ),
            (
                &*format!("{base}keyVaults: [{{name: k, resourceGroup: rg}}]"),
                "3-24 characters",
            ),
            (
                &*format!(
                    "{base}keyVaults: [{{name: kv1, resourceGroup: rg, secrets: [{{name: 'bad name', value: v}}]}}]"
                ),
                "invalid secret name",
            ),
            ("virtualMachines: [{name: a, bogus: 1}]", "unknown field"),
            (
                &*format!(
                    "{base}resourceGroups: [{{name: a}}, {{name: b}}]\nvirtualMachines: [{{name: v}}]"
                ),
                "resourceGroup is required",
            ),
        ];
        for (text, want) in cases {
            let got = World::from_text(text).and_then(World::normalize);
            match got {
                Err(e) => assert!(e.0.contains(want), "{text}: {e}"),
                Ok(_) => panic!("{text}: expected error containing '{want}'"),
            }
        }
        let f = FederatedCredential {
            name: "ok-name_1".into(),
            issuer: "https://x".into(),
            subject: "s".into(),
            audiences: vec!["a".into(), "b".into()],
            description: None,
        };
        assert!(validate_fic(&f).is_err());
        assert!(World::from_text("").expect("empty").normalize().is_ok());
    }

    #[test]
    fn identity_type_spellings() {
        for (s, want) in [
            ("None", IdentityType::None),
            ("systemassigned", IdentityType::SystemAssigned),
            (
                "SystemAssigned,UserAssigned",
                IdentityType::SystemAndUserAssigned,
            ),
            (
                "UserAssigned, SystemAssigned",
                IdentityType::SystemAndUserAssigned,
            ),
        ] {
            assert_eq!(IdentityType::parse(s), Some(want), "{s}");
        }
        assert_eq!(IdentityType::parse("Both"), None);
        assert_eq!(
            IdentityType::from_flags(true, true).as_str(),
            "SystemAssigned, UserAssigned"
        );
    }

    proptest::proptest! {
        #[test]
        fn world_text_never_panics(text in ".{0,300}") {
            if let Ok(n) = World::from_text(&text).and_then(World::normalize) {
                let _ = Index::build(&n);
            }
        }
    }
}
