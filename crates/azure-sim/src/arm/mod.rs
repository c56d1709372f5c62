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

mod bodies;
mod fic;
mod identity;
mod route;
#[cfg(test)]
mod tests;

pub use bodies::*;
pub use fic::*;
pub use identity::*;
pub use route::*;

use serde_json::{Value, json};

use crate::rbac;

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

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}
