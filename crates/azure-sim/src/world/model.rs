//! The world's data model: the serde types of tenants, subscriptions, resources and principals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::armid;

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
