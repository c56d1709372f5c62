//! Azure Resource Manager decisions: routing, the identity block semantics of virtual machines and scale sets,
//! user-assigned identities and their federated identity credentials, authorization, response bodies and the
//! real error bodies. No IO.
//!
//! # The identity block
//! `PATCH` merges: `identity.userAssignedIdentities` entries with `{}` add an identity, `null` removes one,
//! unnamed identities stay; `identity.type` switches the system-assigned identity on or off and, when it no
//! longer contains `UserAssigned`, drops every user-assigned identity. A type containing `UserAssigned` that would
//! leave none is refused, as is a non-`UserAssigned` type together with identities to add. `PUT` replaces the
//! block. Missing identities fail with `FailedIdentityOperation` (the wrapped compute error lists them), malformed
//! IDs with `LinkedInvalidPropertyId`.
//!
//! # The per-request limit
//! ARM accepts at most [`MAX_IDENTITIES_PER_REQUEST`] (150) entries in `userAssignedIdentities` in one request
//! and answers more with HTTP 400, code `FailedIdentityOperation`, wrapping compute's
//! `User Assigned Identities Number 'N' Assign exceed limit '150' in one request.` (aad-pod-identity issues #637
//! and #813; Azure/bicep #16559 shows the full wrapped body). MIC chunks its PATCHes by this number.
//!
//! # Authorization
//! Writing a VM needs `Microsoft.Compute/virtualMachines/write` (Virtual Machine Contributor) on it; each
//! identity named with a non-null value needs `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action`
//! (Managed Identity Operator) on the identity, else `LinkedAuthorizationFailed`. Reads need `.../read`.
//! Failures are HTTP 403 `AuthorizationFailed` with ARM's message.

use serde_json::{Map, Value, json};

use crate::armid;
use crate::form::decode_path;
use crate::rbac::{self, Grant};
use crate::world::{
    FederatedCredential, IdentityType, Index, ResourceIdentity, ScaleSet, ScaleSetInstance,
    UserAssignedIdentity, VirtualMachine, World,
};

/// ARM's limit of user-assigned identities in one request.
pub const MAX_IDENTITIES_PER_REQUEST: usize = 150;

/// An ARM error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`.
    pub code: String,
    /// `error.message`.
    pub message: String,
    /// `error.target`.
    pub target: Option<String>,
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ArmError {}

impl ArmError {
    /// An error.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ArmError {
        ArmError {
            status,
            code: code.to_string(),
            message: message.into(),
            target: None,
        }
    }

    /// With `error.target`.
    pub fn with_target(mut self, t: &str) -> ArmError {
        self.target = Some(t.to_string());
        self
    }

    /// The body.
    pub fn body(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(t) = &self.target {
            e["target"] = json!(t);
        }
        json!({"error": e})
    }

    /// `MissingApiVersionParameter`.
    pub fn missing_api_version() -> ArmError {
        ArmError::new(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    }

    /// `InvalidApiVersionParameter`.
    pub fn invalid_api_version(v: &str) -> ArmError {
        ArmError::new(
            400,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '2025-04-01,2024-11-01,2024-07-01,2024-03-01,2023-09-01,2023-07-01,2023-03-01,2023-01-31,2022-11-01,2022-08-01,2022-03-01,2021-11-01,2021-07-01,2021-04-01,2021-03-01,2020-12-01,2020-06-01,2019-12-01,2019-07-01,2019-03-01,2018-11-30,2018-10-01,2018-06-01,2018-04-01,2017-12-01'."
            ),
        )
    }

    /// `InvalidRequestContent` (the body is not the JSON ARM expects).
    pub fn invalid_content(detail: &str) -> ArmError {
        ArmError::new(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{detail}'."),
        )
    }

    /// `ResourceNotFound`.
    pub fn not_found(kind: &str, name: &str, rg: &str) -> ArmError {
        ArmError::new(
            404,
            "ResourceNotFound",
            format!(
                "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// `ResourceGroupNotFound`.
    pub fn rg_not_found(rg: &str) -> ArmError {
        ArmError::new(
            404,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )
    }

    /// `SubscriptionNotFound`.
    pub fn sub_not_found(sub: &str) -> ArmError {
        ArmError::new(
            404,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        )
    }

    /// `AuthorizationFailed`.
    pub fn authorization_failed(app_id: &str, oid: &str, action: &str, scope: &str) -> ArmError {
        ArmError::new(
            403,
            "AuthorizationFailed",
            format!(
                "The client '{app_id}' with object id '{oid}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
            ),
        )
    }

    /// `LinkedAuthorizationFailed`.
    pub fn linked_authorization_failed(
        app_id: &str,
        oid: &str,
        action: &str,
        scope: &str,
        linked: &[String],
    ) -> ArmError {
        ArmError::new(
            403,
            "LinkedAuthorizationFailed",
            format!(
                "The client '{app_id}' with object id '{oid}' has permission to perform action '{action}' on scope '{scope}'; however, it does not have permission to perform action(s) '{}' on the linked scope(s) '{}' (respectively) or the linked scope(s) are invalid.",
                rbac::ASSIGN_ACTION,
                linked.join(",")
            ),
        )
    }

    /// `MethodNotAllowed`-style error for verbs a resource type does not take.
    pub fn method_not_allowed(method: &str) -> ArmError {
        ArmError::new(
            405,
            "MethodNotAllowed",
            format!("The requested resource does not support http method '{method}'."),
        )
    }

    /// A transient error injected by a fault.
    pub fn transient(status: u16) -> ArmError {
        match status {
            429 => ArmError::new(
                429,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:03:00. For more information, refer to - https://aka.ms/vmssthrottling",
            ),
            503 => ArmError::new(
                503,
                "ServiceUnavailable",
                "The service is currently unavailable. Please retry the request.",
            ),
            s => ArmError::new(
                s,
                "InternalServerError",
                "An internal server error occurred. Please retry the request.",
            ),
        }
    }
}

fn failed_identity_operation(
    resource_id: &str,
    status: &str,
    inner_code: &str,
    inner: &str,
) -> ArmError {
    let response = json!({"error": {"code": inner_code, "message": inner}}).to_string();
    ArmError::new(
        400,
        "FailedIdentityOperation",
        format!(
            "Identity operation for resource '{resource_id}' failed with error 'Failed to perform resource identity operation. Status: '{status}'. Response: '{response}'.'."
        ),
    )
}

/// What an ARM path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/subscriptions/{sub}`.
    Subscription { sub: String },
    /// `/subscriptions/{sub}/resourceGroups/{rg}`.
    ResourceGroup { sub: String, rg: String },
    /// VMs in a resource group.
    VmList { sub: String, rg: String },
    /// One VM.
    Vm {
        sub: String,
        rg: String,
        name: String,
    },
    /// Scale sets in a resource group.
    VmssList { sub: String, rg: String },
    /// One scale set.
    Vmss {
        sub: String,
        rg: String,
        name: String,
    },
    /// A scale set's instances.
    VmssVmList {
        sub: String,
        rg: String,
        vmss: String,
    },
    /// One scale set instance.
    VmssVm {
        sub: String,
        rg: String,
        vmss: String,
        instance: String,
    },
    /// Identities in a resource group.
    UamiList { sub: String, rg: String },
    /// One identity.
    Uami {
        sub: String,
        rg: String,
        name: String,
    },
    /// An identity's federated credentials.
    FicList {
        sub: String,
        rg: String,
        uami: String,
    },
    /// One federated credential.
    Fic {
        sub: String,
        rg: String,
        uami: String,
        name: String,
    },
    /// A compute long-running operation.
    Operation {
        sub: String,
        location: String,
        id: String,
    },
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parse an ARM request path.
pub fn parse_path(path: &str) -> Result<Route, ArmError> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| decode_path(s).into_owned())
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let bad = || {
        ArmError::new(
            404,
            "InvalidResourceType",
            format!("The resource type could not be found for the request path '{path}'."),
        )
    };
    if s.iter().any(|x| x.is_empty()) || s.len() < 2 || !eq(s[0], "subscriptions") {
        return Err(bad());
    }
    let sub = s[1].to_string();
    let rest = &s[2..];
    if rest.is_empty() {
        return Ok(Route::Subscription { sub });
    }
    if let ["providers", ns, "locations", loc, "operations", id] = rest
        && eq(ns, "Microsoft.Compute")
    {
        return Ok(Route::Operation {
            sub,
            location: loc.to_string(),
            id: id.to_string(),
        });
    }
    if !eq(rest[0], "resourceGroups") || rest.len() < 2 {
        return Err(bad());
    }
    let rg = rest[1].to_string();
    let rest = &rest[2..];
    if rest.is_empty() {
        return Ok(Route::ResourceGroup { sub, rg });
    }
    if rest.len() < 3 || !eq(rest[0], "providers") {
        return Err(bad());
    }
    let (ns, kind, tail) = (rest[1], rest[2], &rest[3..]);
    let route = if eq(ns, "Microsoft.Compute") && eq(kind, "virtualMachines") {
        match tail {
            [] => Route::VmList { sub, rg },
            [name] => Route::Vm {
                sub,
                rg,
                name: name.to_string(),
            },
            _ => return Err(bad()),
        }
    } else if eq(ns, "Microsoft.Compute") && eq(kind, "virtualMachineScaleSets") {
        match tail {
            [] => Route::VmssList { sub, rg },
            [name] => Route::Vmss {
                sub,
                rg,
                name: name.to_string(),
            },
            [name, vms] if eq(vms, "virtualMachines") => Route::VmssVmList {
                sub,
                rg,
                vmss: name.to_string(),
            },
            [name, vms, id] if eq(vms, "virtualMachines") => Route::VmssVm {
                sub,
                rg,
                vmss: name.to_string(),
                instance: id.to_string(),
            },
            _ => return Err(bad()),
        }
    } else if eq(ns, "Microsoft.ManagedIdentity") && eq(kind, "userAssignedIdentities") {
        match tail {
            [] => Route::UamiList { sub, rg },
            [name] => Route::Uami {
                sub,
                rg,
                name: name.to_string(),
            },
            [name, f] if eq(f, "federatedIdentityCredentials") => Route::FicList {
                sub,
                rg,
                uami: name.to_string(),
            },
            [name, f, fic] if eq(f, "federatedIdentityCredentials") => Route::Fic {
                sub,
                rg,
                uami: name.to_string(),
                name: fic.to_string(),
            },
            _ => return Err(bad()),
        }
    } else {
        return Err(ArmError::new(
            400,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location 'global' and API version '' for type '{kind}' in namespace '{ns}'."
            ),
        ));
    };
    Ok(route)
}

/// Check `api-version` (present, `YYYY-MM-DD` with an optional `-preview` suffix).
pub fn check_api_version(v: Option<&str>) -> Result<(), ArmError> {
    let v = v
        .filter(|v| !v.is_empty())
        .ok_or_else(ArmError::missing_api_version)?;
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    let ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
        && date >= "2015-01-01";
    if ok {
        Ok(())
    } else {
        Err(ArmError::invalid_api_version(v))
    }
}

/// Parse a request body as a JSON object (`InvalidRequestContent` otherwise).
pub fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ArmError> {
    if body.is_empty() {
        return Err(ArmError::invalid_content("The request body is empty"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ArmError::invalid_content(&format!(
            "Unexpected JSON token when reading the request body: expected an object, got {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        ))),
        Err(e) => Err(ArmError::invalid_content(&format!(
            "Unexpected character encountered while parsing value. Path '', line {}, position {}.",
            e.line(),
            e.column()
        ))),
    }
}

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

/// The `identity` JSON of a VM or scale set (absent for `None`).
pub fn identity_json(
    ident: &ResourceIdentity,
    tenant_id: &str,
    w: &World,
    ix: &Index,
) -> Option<Value> {
    let kind = ident.kind();
    if kind == IdentityType::None {
        return None;
    }
    let mut v = json!({"type": kind.as_str()});
    if kind.system() {
        v["principalId"] = json!(ident.principal_id);
        v["tenantId"] = json!(tenant_id);
    }
    if kind.user() {
        let mut m = Map::new();
        for id in &ident.user_assigned_identities {
            let (p, c) = ix
                .uami(id)
                .map(|i| &w.user_assigned_identities[i])
                .map(|u| (u.principal_id.clone(), u.client_id.clone()))
                .unwrap_or_default();
            m.insert(id.clone(), json!({"principalId": p, "clientId": c}));
        }
        v["userAssignedIdentities"] = Value::Object(m);
    }
    Some(v)
}

fn tags_json(t: &std::collections::BTreeMap<String, String>) -> Value {
    json!(t)
}

/// A VM as ARM returns it.
pub fn vm_json(vm: &VirtualMachine, w: &World, ix: &Index, provisioning: &str) -> Value {
    let tenant = w
        .tenant_of_subscription(vm.subscription_id.as_deref().unwrap_or(""))
        .unwrap_or("");
    let mut v = json!({
        "name": vm.name,
        "id": vm.id(),
        "type": "Microsoft.Compute/virtualMachines",
        "location": vm.location,
        "tags": tags_json(&vm.tags),
        "properties": {
            "vmId": vm.vm_id,
            "hardwareProfile": {"vmSize": vm.vm_size},
            "osProfile": {"computerName": vm.node_name, "adminUsername": "azureuser", "linuxConfiguration": {"disablePasswordAuthentication": true}},
            "provisioningState": provisioning,
        }
    });
    if let Some(i) = identity_json(&vm.identity, tenant, w, ix) {
        v["identity"] = i;
    }
    v
}

/// A scale set as ARM returns it.
pub fn vmss_json(s: &ScaleSet, w: &World, ix: &Index, provisioning: &str) -> Value {
    let tenant = w
        .tenant_of_subscription(s.subscription_id.as_deref().unwrap_or(""))
        .unwrap_or("");
    let mut v = json!({
        "name": s.name,
        "id": s.id(),
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": s.location,
        "tags": tags_json(&s.tags),
        "sku": {"name": s.vm_size, "tier": "Standard", "capacity": s.instances.len()},
        "properties": {
            "uniqueId": armid::derived_guid(&format!("vmss-unique:{}", armid::key(&s.id()))),
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {"osProfile": {"computerNamePrefix": s.name, "adminUsername": "azureuser"}},
            "orchestrationMode": "Uniform",
            "provisioningState": provisioning,
        }
    });
    if let Some(i) = identity_json(&s.identity, tenant, w, ix) {
        v["identity"] = i;
    }
    v
}

/// A scale set instance as ARM returns it.
pub fn vmss_vm_json(s: &ScaleSet, inst: &ScaleSetInstance) -> Value {
    let iid = inst.instance_id.clone().unwrap_or_default();
    json!({
        "name": format!("{}_{iid}", s.name),
        "id": format!("{}/virtualMachines/{iid}", s.id()),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": s.location,
        "instanceId": iid,
        "sku": {"name": s.vm_size, "tier": "Standard"},
        "properties": {
            "vmId": inst.vm_id,
            "latestModelApplied": true,
            "hardwareProfile": {"vmSize": s.vm_size},
            "osProfile": {"computerName": inst.node_name, "adminUsername": "azureuser"},
            "provisioningState": "Succeeded",
        }
    })
}

/// A user-assigned identity as ARM returns it.
pub fn uami_json(u: &UserAssignedIdentity, tenant_id: &str) -> Value {
    json!({
        "id": u.id(),
        "name": u.name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": u.location,
        "tags": tags_json(&u.tags),
        "properties": {
            "isolationScope": "None",
            "tenantId": tenant_id,
            "principalId": u.principal_id,
            "clientId": u.client_id,
        }
    })
}

/// A federated identity credential as ARM returns it.
pub fn fic_json(uami_id: &str, f: &FederatedCredential) -> Value {
    let mut props = json!({"issuer": f.issuer, "subject": f.subject, "audiences": f.audiences});
    if let Some(d) = &f.description {
        props["description"] = json!(d);
    }
    json!({
        "id": format!("{uami_id}/federatedIdentityCredentials/{}", f.name),
        "name": f.name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
        "properties": props,
    })
}

/// Parse and validate a federated identity credential PUT body.
pub fn parse_fic(name: &str, body: &Map<String, Value>) -> Result<FederatedCredential, ArmError> {
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p,
        _ => {
            return Err(ArmError::new(
                400,
                "BadRequest",
                "The request body must contain 'properties'.",
            ));
        }
    };
    let s = |k: &str| -> Result<String, ArmError> {
        match props.get(k) {
            Some(Value::String(v)) => Ok(v.clone()),
            None | Some(Value::Null) => Err(ArmError::new(
                400,
                "BadRequest",
                format!("The '{k}' property is required."),
            )),
            Some(_) => Err(ArmError::invalid_content(&format!(
                "Error converting value to type 'String'. Path 'properties.{k}'."
            ))),
        }
    };
    let audiences = match props.get("audiences") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| {
                ArmError::invalid_content(
                    "Error converting value to type 'String'. Path 'properties.audiences'.",
                )
            })?,
        None | Some(Value::Null) => {
            return Err(ArmError::new(
                400,
                "BadRequest",
                "The 'audiences' property is required.",
            ));
        }
        Some(_) => {
            return Err(ArmError::invalid_content(
                "Error converting value to type 'String[]'. Path 'properties.audiences'.",
            ));
        }
    };
    let f = FederatedCredential {
        name: name.to_string(),
        issuer: s("issuer")?,
        subject: s("subject")?,
        audiences,
        description: props
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    crate::world::validate_fic(&f).map_err(|m| ArmError::new(400, "BadRequest", m))?;
    Ok(f)
}

/// Insert or replace a credential on an identity, enforcing the limit and issuer+subject uniqueness.
/// Returns whether it was created.
pub fn upsert_fic(
    list: &mut Vec<FederatedCredential>,
    f: FederatedCredential,
) -> Result<bool, ArmError> {
    if list.iter().any(|x| {
        !x.name.eq_ignore_ascii_case(&f.name) && x.issuer == f.issuer && x.subject == f.subject
    }) {
        return Err(ArmError::new(
            400,
            "BadRequest",
            "Issuer and subject combination already exists for this Managed Identity.",
        ));
    }
    if let Some(x) = list
        .iter_mut()
        .find(|x| x.name.eq_ignore_ascii_case(&f.name))
    {
        *x = f;
        return Ok(false);
    }
    if list.len() >= crate::world::MAX_FICS {
        return Err(ArmError::new(
            400,
            "BadRequest",
            format!(
                "Too many Federated Identity Credentials. The maximum number of Federated Identity Credentials per Managed Identity is {}.",
                crate::world::MAX_FICS
            ),
        ));
    }
    list.push(f);
    Ok(true)
}

/// The 409 for overlapping credential writes on one identity.
pub fn concurrent_fic_write(uami_id: &str) -> ArmError {
    ArmError::new(
        409,
        "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
        format!(
            "Too many Federated Identity Credentials are written concurrently for the managed identity '{uami_id}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported."
        ),
    )
}

/// An async operation status body.
pub fn operation_json(id: &str, started: i64, finished: Option<i64>) -> Value {
    let mut v = json!({
        "startTime": crate::token::rfc3339(started),
        "status": if finished.is_some() { "Succeeded" } else { "InProgress" },
        "name": id,
    });
    if let Some(f) = finished {
        v["endTime"] = json!(crate::token::rfc3339(f));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u1";
    const U2: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u2";

    fn canon(id: &str) -> Option<String> {
        [U1, U2]
            .iter()
            .find(|u| armid::eq(u, id))
            .map(|u| u.to_string())
    }

    fn fresh() -> (String, String) {
        ("p-new".into(), "c-new".into())
    }

    fn ident(kind: IdentityType, users: &[&str]) -> ResourceIdentity {
        ResourceIdentity {
            kind: Some(kind),
            principal_id: kind.system().then(|| "p-old".to_string()),
            client_id: kind.system().then(|| "c-old".to_string()),
            user_assigned_identities: users.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn routes() {
        let table = [
            (
                "/subscriptions/s",
                Ok(Route::Subscription { sub: "s".into() }),
            ),
            (
                "/subscriptions/s/resourcegroups/rg",
                Ok(Route::ResourceGroup {
                    sub: "s".into(),
                    rg: "rg".into(),
                }),
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines",
                Ok(Route::VmList {
                    sub: "s".into(),
                    rg: "rg".into(),
                }),
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/microsoft.compute/virtualmachines/vm%2D1",
                Ok(Route::Vm {
                    sub: "s".into(),
                    rg: "rg".into(),
                    name: "vm-1".into(),
                }),
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines",
                Ok(Route::VmssVmList {
                    sub: "s".into(),
                    rg: "rg".into(),
                    vmss: "ss".into(),
                }),
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/3",
                Ok(Route::VmssVm {
                    sub: "s".into(),
                    rg: "rg".into(),
                    vmss: "ss".into(),
                    instance: "3".into(),
                }),
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u/federatedIdentityCredentials/f",
                Ok(Route::Fic {
                    sub: "s".into(),
                    rg: "rg".into(),
                    uami: "u".into(),
                    name: "f".into(),
                }),
            ),
            (
                "/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/op1",
                Ok(Route::Operation {
                    sub: "s".into(),
                    location: "westeurope".into(),
                    id: "op1".into(),
                }),
            ),
        ];
        for (p, want) in table {
            assert_eq!(parse_path(p), want, "{p}");
        }
        for bad in [
            "/",
            "/foo",
            "/subscriptions//x",
            "/subscriptions/s/resourceGroups",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a/b",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_path("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x")
                .map_err(|e| e.code),
            Err("NoRegisteredProviderFound".into())
        );
    }

    #[test]
    fn api_versions_and_bodies() {
        assert_eq!(
            check_api_version(None).map_err(|e| e.code),
            Err("MissingApiVersionParameter".into())
        );
        assert_eq!(
            check_api_version(Some("")).map_err(|e| e.code),
            Err("MissingApiVersionParameter".into())
        );
        assert_eq!(
            check_api_version(Some("yesterday")).map_err(|e| e.code),
            Err("InvalidApiVersionParameter".into())
        );
        assert!(check_api_version(Some("2019-12-01")).is_ok());
        assert!(check_api_version(Some("2023-01-31-preview")).is_ok());
        assert_eq!(
            parse_body(b"{not json").map_err(|e| e.code),
            Err("InvalidRequestContent".into())
        );
        assert_eq!(parse_body(b"[1]").map_err(|e| e.status), Err(400));
        assert_eq!(parse_body(b"").map_err(|e| e.status), Err(400));
        assert!(parse_body(b"{}").is_ok());
    }

    fn patch(cur: &ResourceIdentity, body: Value) -> Result<IdentityChange, ArmError> {
        apply_identity(cur, &body, false, "/vm", &canon, &fresh)
    }

    #[test]
    fn patch_semantics() {
        let none = ident(IdentityType::None, &[]);
        let users = ident(IdentityType::UserAssigned, &[U1]);
        let both = ident(IdentityType::SystemAndUserAssigned, &[U1]);
        // Add to nothing.
        let c = patch(
            &none,
            json!({"type": "UserAssigned", "userAssignedIdentities": {U2.to_lowercase(): {}}}),
        )
        .expect("add");
        assert_eq!(c.identity.kind(), IdentityType::UserAssigned);
        assert_eq!(c.identity.user_assigned_identities, vec![U2.to_string()]);
        assert_eq!(c.linked, vec![U2.to_string()]);
        // Merge keeps the others.
        let c = patch(
            &users,
            json!({"type": "UserAssigned", "userAssignedIdentities": {U2: {}}}),
        )
        .expect("merge");
        assert_eq!(
            c.identity.user_assigned_identities,
            vec![U1.to_string(), U2.to_string()]
        );
        // Null removes (case-insensitively); the last one cannot go with type UserAssigned.
        let c = patch(&both, json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {U1.to_uppercase(): null, U2: {}}})).expect("swap");
        assert_eq!(c.identity.user_assigned_identities, vec![U2.to_string()]);
        assert_eq!(c.identity.principal_id.as_deref(), Some("p-old"));
        let e = patch(
            &users,
            json!({"type": "UserAssigned", "userAssignedIdentities": {U1: null}}),
        )
        .expect_err("empty");
        assert_eq!(e.code, "InvalidParameter");
        // Type switch drops user identities; system keeps/gets principal.
        let c = patch(&both, json!({"type": "SystemAssigned"})).expect("sys only");
        assert_eq!(c.identity.kind(), IdentityType::SystemAssigned);
        assert!(c.identity.user_assigned_identities.is_empty());
        let c =
            patch(&users, json!({"type": "SystemAssigned, UserAssigned"})).expect("enable system");
        assert_eq!(c.identity.principal_id.as_deref(), Some("p-new"));
        assert_eq!(c.identity.user_assigned_identities, vec![U1.to_string()]);
        let c = patch(&both, json!({"type": "None"})).expect("none");
        assert_eq!(c.identity.kind(), IdentityType::None);
        assert_eq!(c.identity.principal_id, None);
        // No type: infer.
        let c = patch(&users, json!({"userAssignedIdentities": {U1: null}})).expect("infer");
        assert_eq!(c.identity.kind(), IdentityType::None);
        // Errors.
        let cases = [
            (json!({"type": "Both"}), "InvalidParameter"),
            (json!({"type": 5}), "InvalidRequestContent"),
            (
                json!({"type": "None", "userAssignedIdentities": {U1: {}}}),
                "InvalidParameter",
            ),
            (
                json!({"userAssignedIdentities": {"not-an-id": {}}}),
                "LinkedInvalidPropertyId",
            ),
            (
                json!({"userAssignedIdentities": {U1: {"x": 1}}}),
                "InvalidParameter",
            ),
            (
                json!({"userAssignedIdentities": []}),
                "InvalidRequestContent",
            ),
            (json!("x"), "InvalidRequestContent"),
        ];
        for (b, code) in cases {
            assert_eq!(
                patch(&users, b.clone()).map_err(|e| e.code),
                Err(code.to_string()),
                "{b}"
            );
        }
        let missing = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ghost";
        let e = patch(
            &users,
            json!({"type": "UserAssigned", "userAssignedIdentities": {missing: {}}}),
        )
        .expect_err("missing");
        assert_eq!(e.code, "FailedIdentityOperation");
        assert!(e.message.contains(missing));
        // Null body is a no-op.
        assert_eq!(
            patch(&users, Value::Null).map(|c| c.identity),
            Ok(users.clone())
        );
        // PUT replaces.
        let c = apply_identity(
            &both,
            &json!({"type": "UserAssigned", "userAssignedIdentities": {U2: {}}}),
            true,
            "/vm",
            &canon,
            &fresh,
        )
        .expect("put");
        assert_eq!(c.identity.user_assigned_identities, vec![U2.to_string()]);
        assert_eq!(c.identity.principal_id, None);
    }

    #[test]
    fn identity_limit() {
        let mut m = Map::new();
        for i in 0..151 {
            m.insert(format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{i}"), json!({}));
        }
        let e = patch(
            &ident(IdentityType::None, &[]),
            json!({"type": "UserAssigned", "userAssignedIdentities": m}),
        )
        .expect_err("limit");
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "FailedIdentityOperation")
        );
        assert!(
            e.message.contains(
                "User Assigned Identities Number '151' Assign exceed limit '150' in one request."
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn fic_rules() {
        let body = |iss: &str, sub: &str| -> Map<String, Value> {
            match json!({"properties": {"issuer": iss, "subject": sub, "audiences": ["api://AzureADTokenExchange"]}})
            {
                Value::Object(m) => m,
                _ => Map::new(),
            }
        };
        assert!(parse_fic("ok-name", &body("https://i", "s")).is_ok());
        assert_eq!(
            parse_fic("x", &body("https://i", "s")).map_err(|e| e.status),
            Err(400)
        );
        assert_eq!(
            parse_fic("okay", &body("http://i", "s")).map_err(|e| e.status),
            Err(400)
        );
        assert_eq!(
            parse_fic("okay", &Map::new()).map_err(|e| e.code),
            Err("BadRequest".into())
        );
        let mut list = Vec::new();
        for i in 0..20 {
            let f =
                parse_fic(&format!("fic{i}"), &body("https://i", &format!("s{i}"))).expect("fic");
            assert_eq!(upsert_fic(&mut list, f), Ok(true));
        }
        let f = parse_fic("fic20", &body("https://i", "s20")).expect("fic");
        assert!(
            upsert_fic(&mut list, f)
                .expect_err("limit")
                .message
                .contains("20")
        );
        let dup = parse_fic("other", &body("https://i", "s3")).expect("fic");
        assert!(
            upsert_fic(&mut list, dup)
                .expect_err("dup")
                .message
                .contains("Issuer and subject combination already exists")
        );
        let upd = parse_fic("FIC3", &body("https://i", "s3")).expect("fic");
        assert_eq!(upsert_fic(&mut list, upd), Ok(false));
        assert_eq!(concurrent_fic_write("/x").status, 409);
    }

    #[test]
    fn error_bodies() {
        let e = ArmError::authorization_failed(
            "app",
            "oid",
            "Microsoft.Compute/virtualMachines/write",
            "/subscriptions/s",
        );
        assert_eq!(e.status, 403);
        let b = e.body();
        assert_eq!(b["error"]["code"], json!("AuthorizationFailed"));
        assert!(b["error"]["message"].as_str().unwrap_or("").starts_with("The client 'app' with object id 'oid' does not have authorization to perform action 'Microsoft.Compute/virtualMachines/write' over scope '/subscriptions/s'"));
        let l = ArmError::linked_authorization_failed("a", "o", "x/write", "/s", &[U1.to_string()]);
        assert!(
            l.message
                .contains("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action")
        );
        assert_eq!(
            operation_json("op", 0, Some(1))["status"],
            json!("Succeeded")
        );
        assert_eq!(operation_json("op", 0, None)["status"], json!("InProgress"));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(path in ".{0,200}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), v in ".{0,20}") {
            let _ = parse_path(&path);
            let _ = check_api_version(Some(&v));
            if let Ok(m) = parse_body(&body) {
                let cur = ident(IdentityType::SystemAndUserAssigned, &[U1]);
                if let Some(i) = m.get("identity") {
                    let _ = patch(&cur, i.clone());
                }
                let _ = parse_fic("name-1", &m);
            }
        }

        #[test]
        fn identity_blocks_never_panic(keys in proptest::collection::vec(".{0,80}", 0..5), ty in proptest::option::of("[A-Za-z, ]{0,30}"), nulls in proptest::collection::vec(proptest::prelude::any::<bool>(), 5)) {
            let mut m = Map::new();
            for (i, k) in keys.iter().enumerate() {
                m.insert(k.clone(), if nulls[i] { Value::Null } else { json!({}) });
            }
            let mut b = json!({"userAssignedIdentities": m});
            if let Some(t) = ty {
                b["type"] = json!(t);
            }
            for cur in [ident(IdentityType::None, &[]), ident(IdentityType::UserAssigned, &[U1, U2])] {
                let _ = patch(&cur, b.clone());
                let _ = apply_identity(&cur, &b, true, "/vm", &canon, &fresh);
            }
        }
    }
}
