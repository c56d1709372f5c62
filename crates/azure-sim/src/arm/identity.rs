//! The identity block of VMs and scale sets, and the grants authorization checks use.

use serde_json::Value;

use super::*;
use crate::armid;
use crate::rbac::{self, Grant};
use crate::world::{IdentityType, Index, ResourceIdentity, World};

/// The outcome of applying an identity block.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityChange {
    /// The new block.
    pub identity: ResourceIdentity,
    /// Identities named with a non-null value (linked access is checked on them).
    pub linked: Vec<String>,
}

fn invalid_param(target: &str, msg: impl Into<String>) -> ArmError {
    ArmError::new(400, "InvalidParameter", msg).with_target(target)
}

/// Apply the `identity` member of a PATCH (`put` = false) or PUT body to `current`.
///
/// `canonical` maps an identity ID to its stored ID when the identity exists; `fresh` supplies new
/// (principal ID, client ID) for a newly enabled system-assigned identity.
pub fn apply_identity(
    current: &ResourceIdentity,
    body: &Value,
    put: bool,
    resource_id: &str,
    canonical: &dyn Fn(&str) -> Option<String>,
    fresh: &dyn Fn() -> (String, String),
) -> Result<IdentityChange, ArmError> {
    let obj = match body {
        Value::Object(m) => m,
        Value::Null => {
            return Ok(IdentityChange {
                identity: current.clone(),
                linked: Vec::new(),
            });
        }
        _ => {
            return Err(ArmError::invalid_content(
                "Error converting value to type 'VirtualMachineIdentity'. Path 'identity'.",
            ));
        }
    };
    let req_type = match obj.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(IdentityType::parse(s).ok_or_else(|| {
            invalid_param(
                "identity.type",
                format!("The value '{s}' of parameter 'identity.type' is invalid. Allowed values are 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned' and 'None'."),
            )
        })?),
        Some(_) => return Err(ArmError::invalid_content("Error converting value to type 'ResourceIdentityType'. Path 'identity.type'.")),
    };
    let entries: Vec<(&String, &Value)> = match obj.get("userAssignedIdentities") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.iter().collect(),
        Some(_) => {
            return Err(ArmError::invalid_content(
                "Error converting value to type 'Dictionary`2'. Path 'identity.userAssignedIdentities'.",
            ));
        }
    };
    if entries.len() > MAX_IDENTITIES_PER_REQUEST {
        return Err(failed_identity_operation(
            resource_id,
            "BadRequest",
            "BadRequest",
            &format!(
                "User Assigned Identities Number '{}' Assign exceed limit '{MAX_IDENTITIES_PER_REQUEST}' in one request.",
                entries.len()
            ),
        ));
    }
    let mut adds: Vec<String> = Vec::new();
    let mut removes: Vec<&str> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for (id, v) in &entries {
        if armid::parse_uami_id(id).is_none() {
            return Err(ArmError::new(
                400,
                "LinkedInvalidPropertyId",
                format!(
                    "Property id '{id}' at path 'identity.userAssignedIdentities.{id}' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{{subscriptionId}}' or '/providers/{{resourceProviderNamespace}}/'."
                ),
            ));
        }
        match v {
            Value::Null => removes.push(id),
            Value::Object(m) if m.keys().all(|k| k == "principalId" || k == "clientId") => {
                match canonical(id) {
                    Some(c) => adds.push(c),
                    None => missing.push(id.to_string()),
                }
            }
            _ => {
                return Err(invalid_param(
                    "identity.userAssignedIdentities",
                    "The 'userAssignedIdentities' property keys should only be empty json objects, null or the resource existing property.",
                ));
            }
        }
    }
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(",");
        return Err(failed_identity_operation(
            resource_id,
            "NotFound",
            "NotFound",
            &format!(
                "Resource(s) {list} do not exist or one of its queried reference-property objects are not present."
            ),
        ));
    }
    let cur_kind = current.kind();
    let system = req_type
        .map(IdentityType::system)
        .unwrap_or(cur_kind.system() && !put);
    let mut user: Vec<String> = if put || !cur_kind.user() {
        Vec::new()
    } else {
        current.user_assigned_identities.clone()
    };
    let user_allowed = req_type.map(IdentityType::user);
    if user_allowed == Some(false) {
        if !adds.is_empty() {
            return Err(invalid_param(
                "identity.userAssignedIdentities",
                format!(
                    "Parameter 'identity.userAssignedIdentities' is not allowed when identity type is '{}'.",
                    req_type.unwrap_or_default().as_str()
                ),
            ));
        }
        user.clear();
    } else {
        user.retain(|u| !removes.iter().any(|r| armid::eq(u, r)));
        for a in &adds {
            if !user.iter().any(|u| armid::eq(u, a)) {
                user.push(a.clone());
            }
        }
        if user_allowed == Some(true) && user.is_empty() {
            return Err(invalid_param(
                "identity.userAssignedIdentities",
                format!(
                    "The identity type '{}' requires at least one user assigned identity in 'identity.userAssignedIdentities'.",
                    req_type.unwrap_or_default().as_str()
                ),
            ));
        }
    }
    let kind = IdentityType::from_flags(system, !user.is_empty());
    let mut identity = ResourceIdentity {
        kind: Some(kind),
        principal_id: None,
        client_id: None,
        user_assigned_identities: user,
    };
    if system {
        if cur_kind.system() && current.principal_id.is_some() {
            identity.principal_id = current.principal_id.clone();
            identity.client_id = current.client_id.clone();
        } else {
            let (p, c) = fresh();
            identity.principal_id = Some(p);
            identity.client_id = Some(c);
        }
    }
    Ok(IdentityChange {
        identity,
        linked: adds,
    })
}

/// The role grants of a principal.
pub fn grants<'w>(w: &'w World, ix: &Index, oid: &str) -> Vec<Grant<'w>> {
    ix.assignments_of(oid)
        .iter()
        .filter_map(|i| w.role_assignments.get(*i))
        .filter_map(|ra| {
            let role = ra
                .role_definition_id
                .as_deref()
                .and_then(rbac::role_by_id)?;
            Some(Grant {
                role,
                scope: ra.scope.as_str(),
            })
        })
        .collect()
}
