//! Routing ARM paths and checking the API version and request body.

use serde_json::{Map, Value};

use super::*;
use crate::form::decode_path;

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
