//! API errors as Kubernetes `Status` objects.
//!
//! Every failure the simulator reports reaches the client as a `meta/v1 Status` with the reason and code the real
//! apiserver uses, so that kubectl prints the familiar message and kube-rs maps it to the right `ErrorResponse`.

use serde_json::{Value, json};

/// One field-level cause inside `Status.details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: String,
    /// Human-readable message for this field.
    pub message: String,
    /// Dotted field path, e.g. `spec.type`.
    pub field: String,
}

/// A failed API call, rendered as a `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `details.name`, `details.group`, `details.kind`.
    pub details: Option<Box<(String, String, String)>>,
    /// `details.causes`.
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            causes: Vec::new(),
            retry_after: None,
        }
    }

    /// Attach `details` (name, group, kind-or-resource).
    #[must_use]
    pub fn with_details(mut self, name: &str, group: &str, kind: &str) -> Self {
        self.details = Some(Box::new((
            name.to_string(),
            group.to_string(),
            kind.to_string(),
        )));
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden, message already formatted.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 404 NotFound for a named object: `pods "x" not found`.
    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        let qualified = qualified(resource, group);
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"))
            .with_details(name, group, resource)
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details("", "", "")
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        // The apiserver's router answers with this text, naming neither the method nor the resource.
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details("", "", "")
    }

    /// 409 AlreadyExists.
    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        let qualified = qualified(resource, group);
        Self::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
        )
        .with_details(name, group, resource)
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn conflict(resource: &str, group: &str, name: &str) -> Self {
        Self::conflict_with(
            resource,
            group,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with the apiserver's `NewConflict` shape and a specific reason:
    /// `Operation cannot be fulfilled on pods/binding "p": <detail>`, details `{name, group, kind: resource}`.
    pub fn conflict_with(resource: &str, group: &str, name: &str, detail: &str) -> Self {
        let qualified = qualified(resource, group);
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified} \"{name}\": {detail}"),
        )
        .with_details(name, group, resource)
    }

    /// 409 Conflict of a server-side apply (`NewApplyConflict`): details hold only the causes, one
    /// `FieldManagerConflict` per conflicting field.
    pub fn apply_conflict(message: impl Into<String>, causes: Vec<Cause>) -> Self {
        let mut e = Self::new(409, "Conflict", message);
        e.causes = causes;
        e
    }

    /// 410 Gone for a compacted resourceVersion.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 408 with reason `Timeout`: the request body did not arrive in time.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(408, "Timeout", message)
    }

    /// 415 UnsupportedMediaType for a PATCH whose Content-Type is no patch type: the bare status text.
    pub fn unsupported_patch_type() -> Self {
        Self::new(415, "UnsupportedMediaType", "415: Unsupported Media Type")
            .with_details("", "", "")
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message).with_details("", "", "")
    }

    /// 422 Invalid with field causes: `Kind "name" is invalid: [cause, ...]`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let joined = causes.iter().map(|c| c.message.clone()).collect::<Vec<_>>();
        let body = if joined.len() == 1 {
            joined[0].clone()
        } else {
            format!("[{}]", joined.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{kind}.{group} \"{name}\" is invalid: {body}"),
        );
        if group.is_empty() {
            e.message = format!("{kind} \"{name}\" is invalid: {body}");
        }
        e.details = Some(Box::new((
            name.to_string(),
            group.to_string(),
            kind.to_string(),
        )));
        e.causes = causes;
        e
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 500 with a webhook failure message (reason InternalError, as the apiserver reports failed calls).
    /// `NewInternalError(err)`: the message prefixed `Internal error occurred: `, the error itself as the one
    /// cause.
    pub fn webhook_failed(message: impl Into<String>) -> Self {
        let message = message.into();
        let cause = message
            .strip_prefix("Internal error occurred: ")
            .unwrap_or(&message)
            .to_string();
        let mut e = Self::new(500, "InternalError", message);
        e.causes = vec![Cause {
            reason: String::new(),
            message: cause,
            field: String::new(),
        }];
        e
    }

    /// 429 TooManyRequests.
    pub fn too_many_requests(message: impl Into<String>, retry_after: u32) -> Self {
        let mut e = Self::new(429, "TooManyRequests", message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` object sent on the wire.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.details.is_some() || !self.causes.is_empty() || self.retry_after.is_some() {
            let mut details = serde_json::Map::new();
            if let Some(d) = &self.details {
                // StatusDetails' fields are `omitempty`.
                let (name, group, kind) = d.as_ref();
                for (key, value) in [("name", name), ("group", group), ("kind", kind)] {
                    if !value.is_empty() {
                        details.insert(key.into(), json!(value));
                    }
                }
            }
            if !self.causes.is_empty() {
                let causes: Vec<Value> = self
                    .causes
                    .iter()
                    .map(|c| {
                        // The Status message keeps `field: ...`; a cause's message leaves the field to `field`.
                        let message = c
                            .message
                            .strip_prefix(&format!("{}: ", c.field))
                            .filter(|_| !c.field.is_empty())
                            .unwrap_or(&c.message);
                        // StatusCause's fields are `omitempty`.
                        let mut cause = serde_json::Map::new();
                        for (k, v) in [
                            ("reason", c.reason.as_str()),
                            ("message", message),
                            ("field", c.field.as_str()),
                        ] {
                            if !v.is_empty() {
                                cause.insert(k.into(), json!(v));
                            }
                        }
                        Value::Object(cause)
                    })
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            if let Some(secs) = self.retry_after {
                details.insert("retryAfterSeconds".into(), json!(secs));
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `pods` or `azureidentities.aadpodidentity.k8s.io`, as the apiserver names resources in messages.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// A success `Status` (used by delete of collections and some subresources).
pub fn success_status(details: Option<Value>) -> Value {
    let mut v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}
