//! Error types shared by the RBAC and token modules.

use std::fmt;

use kube_sim_machinery::gofmt::{aggregate_messages, unmarshal_field_type_error};
use serde_json::{Map, Value};

/// The kind of a field validation error, as in `k8s.io/apimachinery/pkg/util/validation/field`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `field.Invalid`: the value is present but not acceptable.
    Invalid,
    /// `field.Required`: the value is missing.
    Required,
}

/// One field validation error, rendered exactly like `field.Error.Error()` upstream
/// (`spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes`).
///
/// The server puts these into a `Status` with reason `Invalid` (HTTP 422) and one
/// `details.causes` entry per error (`reason` from [`FieldError::cause_reason`],
/// `message` from [`FieldError::cause_message`], `field` from [`FieldError::field`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.expirationSeconds`.
    pub field: String,
    /// What went wrong.
    pub kind: FieldErrorKind,
    /// The offending value, already rendered the way Go's `field.Error` prints it
    /// (strings quoted with `%q`, numbers bare, missing pointers as `"null"`).
    pub value: String,
    /// Human readable detail.
    pub detail: String,
}

impl FieldError {
    /// A `field.Invalid` error; `value` must already be rendered (see [`go_quote`](crate::go_quote)).
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid,
            value: value.into(),
            detail: detail.into(),
        }
    }

    /// A `field.Required` error.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required,
            value: String::new(),
            detail: detail.into(),
        }
    }

    /// The `details.causes[].reason` upstream uses for this kind.
    pub fn cause_reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
        }
    }

    /// The `details.causes[].message` upstream uses (the error body without the field path).
    pub fn cause_message(&self) -> String {
        let body = match self.kind {
            FieldErrorKind::Invalid => format!("Invalid value: {}", self.value),
            FieldErrorKind::Required => "Required value".to_owned(),
        };
        if self.detail.is_empty() {
            body
        } else {
            format!("{body}: {}", self.detail)
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.cause_message())
    }
}

/// Errors of this crate other than token-review failures (see [`crate::token::ReviewError`]).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Validation failed. Display is the upstream aggregate (`a` for one error, `[a, b]` for more);
    /// the server prefixes `<Kind>.<group> "<name>" is invalid: ` and answers 422.
    #[error("{}", aggregate_fields(.0))]
    Invalid(Vec<FieldError>),
    /// The request body could not be decoded (wrong JSON types). The server answers 400; upstream
    /// prefixes `<Kind> in version "v1" cannot be handled as a <Kind>: `.
    #[error("{0}")]
    BadRequest(String),
    /// RSA key generation failed inside aws-lc.
    #[error("failed to generate an RSA key pair")]
    KeyGeneration,
    /// The stored private key could not be parsed or is not an acceptable RSA key.
    #[error("invalid RSA private key: {0}")]
    InvalidKey(String),
    /// An internal failure (signing, serialisation, impossible bound-object combination).
    #[error("{0}")]
    Internal(String),
}

fn aggregate_fields(errs: &[FieldError]) -> String {
    aggregate_messages(errs.iter().map(ToString::to_string))
}

/// Go's `json.Unmarshal` of an optional `string` struct field: absent or `null` decode to `""`,
/// any other non-string is a `json.UnmarshalTypeError`, whose message is returned.
pub(crate) fn decode_string(
    obj: &Map<String, Value>,
    key: &str,
    go_struct: &str,
    path: &str,
) -> Result<String, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(unmarshal_field_type_error(other, go_struct, path, "string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_error_display() {
        let e = FieldError::invalid(
            "spec.expirationSeconds",
            "300",
            "may not specify a duration less than 10 minutes",
        );
        assert_eq!(
            e.to_string(),
            "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"
        );
        assert_eq!(e.cause_reason(), "FieldValueInvalid");
        let r = FieldError::required("spec.user", "");
        assert_eq!(r.to_string(), "spec.user: Required value");
        let two = AuthError::Invalid(vec![e.clone(), r]);
        assert!(two.to_string().starts_with("[spec.expirationSeconds"));
        assert_eq!(
            AuthError::Invalid(vec![e.clone()]).to_string(),
            e.to_string()
        );
    }
}
