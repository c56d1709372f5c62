//! Field errors, rendered exactly like `k8s.io/apimachinery/pkg/util/validation/field.Error`.

use std::fmt;

use serde_json::{Value, json};

use kube_sim_machinery::gofmt::{Num, aggregate_messages, go_num, go_quote, go_syntax};

/// The kind of a field error (`field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// `Not found`.
    NotFound,
    /// `Required value`.
    Required,
    /// `Duplicate value`.
    Duplicate,
    /// `Invalid value`.
    Invalid,
    /// `Unsupported value` (an enum mismatch).
    NotSupported,
    /// `Forbidden`.
    Forbidden,
    /// `Too long`.
    TooLong,
    /// `Too many`.
    TooMany,
    /// `Internal error`.
    Internal,
    /// `Invalid value`, for type mismatches (`field.TypeInvalid`).
    TypeInvalid,
}

impl FieldErrorKind {
    /// The human text Kubernetes prints (`ErrorType.String()`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }

    /// The `StatusCause.reason` (`metav1.CauseType`) for this kind.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation error on one field.
///
/// `Display` renders `"<field>: <body>"` exactly like Go's `field.Error.Error()`, e.g.
/// `spec.type: Invalid value: "string": spec.type in body must be of type integer: "string"`,
/// `spec.selector: Required value`, `spec.x: Unsupported value: "c": supported values: "a", "b"`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// Field path, e.g. `spec.type`, `spec.items[0].name`; `<nil>` for errors Kubernetes
    /// reports without a path (root-level and `anyOf`/`oneOf`/`allOf`/`not` failures).
    pub field: String,
    /// The error kind.
    pub kind: FieldErrorKind,
    /// The offending value as Kubernetes prints it; `None` when omitted from the message.
    pub value: Option<Value>,
    /// The detail text after the value (may be empty).
    pub message: String,
}

impl FieldError {
    /// A new error.
    #[must_use]
    pub fn new(
        field: impl Into<String>,
        kind: FieldErrorKind,
        value: Option<Value>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind,
            value,
            message: message.into(),
        }
    }

    /// `field.Required(path, detail)`.
    #[must_use]
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Required, None, detail)
    }

    /// `field.Invalid(path, value, detail)`.
    #[must_use]
    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorKind::Invalid, Some(value), detail)
    }

    /// The `StatusCause.reason` (`FieldValueInvalid`, `FieldValueRequired`, …).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// Go's `ErrorBody()`: the message without the field prefix; also the `StatusCause.message`.
    #[must_use]
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.value) {
            (
                FieldErrorKind::Required
                | FieldErrorKind::Forbidden
                | FieldErrorKind::TooLong
                | FieldErrorKind::Internal,
                _,
            )
            | (_, None) => self.kind.as_str().to_owned(),
            (_, Some(v)) => format!("{}: {}", self.kind.as_str(), bad_value(v)),
        };
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }

    /// The `metav1.StatusCause` JSON for this error: `{"reason", "message", "field"}`.
    #[must_use]
    pub fn status_cause(&self) -> Value {
        json!({"reason": self.reason(), "message": self.body(), "field": self.field})
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// How `ErrorBody` prints a bad value: strings `%q`, numbers and booleans `%v`, `nil` as
/// `"null"`, maps and slices `%#v`.
fn bad_value(v: &Value) -> String {
    match v {
        Value::Null => go_quote("null"),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_num(Num::of(n)),
        other => go_syntax(other),
    }
}

/// `field.ErrorList.ToAggregate().Error()`: one message as is, several as `[a, b]`, with
/// duplicate messages removed.
#[must_use]
pub fn aggregate(errors: &[FieldError]) -> String {
    aggregate_messages(errors.iter().map(ToString::to_string))
}

/// The `Status.message` of `apierrors.NewInvalid`: `<Kind.group> "<name>" is invalid: <aggregate>`.
///
/// `group_kind` is `Kind.group` (just `Kind` for the core group), e.g.
/// `AzureIdentity.aadpodidentity.k8s.io`.
#[must_use]
pub fn invalid_message(group_kind: &str, name: &str, errors: &[FieldError]) -> String {
    if errors.is_empty() {
        format!("{group_kind} {} is invalid", go_quote(name))
    } else {
        format!(
            "{group_kind} {} is invalid: {}",
            go_quote(name),
            aggregate(errors)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_kubernetes() {
        let cases = [
            (
                FieldError::new(
                    "spec.type",
                    FieldErrorKind::TypeInvalid,
                    Some(json!("string")),
                    "spec.type in body must be of type integer: \"string\"",
                ),
                r#"spec.type: Invalid value: "string": spec.type in body must be of type integer: "string""#,
            ),
            (
                FieldError::required("spec.selector", ""),
                "spec.selector: Required value",
            ),
            (
                FieldError::required("spec.ref.kind", "must not be empty"),
                "spec.ref.kind: Required value: must not be empty",
            ),
            (
                FieldError::new(
                    "spec.x",
                    FieldErrorKind::NotSupported,
                    Some(json!("c")),
                    "supported values: \"a\", \"b\"",
                ),
                r#"spec.x: Unsupported value: "c": supported values: "a", "b""#,
            ),
            (
                FieldError::invalid(
                    "spec.n",
                    json!(11),
                    "spec.n in body should be less than or equal to 10",
                ),
                "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10",
            ),
            (
                FieldError::new(
                    "spec.s",
                    FieldErrorKind::TooLong,
                    Some(json!("abcdef")),
                    "may not be more than 5 bytes",
                ),
                "spec.s: Too long: may not be more than 5 bytes",
            ),
            (
                FieldError::new(
                    "spec.l",
                    FieldErrorKind::TooMany,
                    Some(json!(3)),
                    "must have at most 2 items",
                ),
                "spec.l: Too many: 3: must have at most 2 items",
            ),
            (
                FieldError::invalid("spec.m", json!({"a": 1}), "bad"),
                r#"spec.m: Invalid value: map[string]interface {}{"a":1}: bad"#,
            ),
            (
                FieldError::invalid("spec.z", Value::Null, "x"),
                r#"spec.z: Invalid value: "null": x"#,
            ),
            (
                FieldError::invalid("spec.b", json!(true), "x"),
                "spec.b: Invalid value: true: x",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn reasons() {
        for (k, r) in [
            (FieldErrorKind::Invalid, "FieldValueInvalid"),
            (FieldErrorKind::Required, "FieldValueRequired"),
            (FieldErrorKind::NotSupported, "FieldValueNotSupported"),
            (FieldErrorKind::TooLong, "FieldValueTooLong"),
            (FieldErrorKind::TooMany, "FieldValueTooMany"),
            (FieldErrorKind::TypeInvalid, "FieldValueTypeInvalid"),
            (FieldErrorKind::Duplicate, "FieldValueDuplicate"),
            (FieldErrorKind::Forbidden, "FieldValueForbidden"),
            (FieldErrorKind::NotFound, "FieldValueNotFound"),
            (FieldErrorKind::Internal, "InternalError"),
        ] {
            assert_eq!(k.reason(), r);
        }
        let e = FieldError::required("spec.selector", "");
        assert_eq!(
            e.status_cause(),
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"})
        );
    }

    #[test]
    fn aggregation() {
        let a = FieldError::required("spec.a", "");
        let b = FieldError::required("spec.b", "");
        assert_eq!(aggregate(&[]), "");
        assert_eq!(
            aggregate(std::slice::from_ref(&a)),
            "spec.a: Required value"
        );
        assert_eq!(
            aggregate(&[a.clone(), b.clone(), a.clone()]),
            "[spec.a: Required value, spec.b: Required value]"
        );
        assert_eq!(
            invalid_message("AzureIdentity.aadpodidentity.k8s.io", "x", &[a]),
            r#"AzureIdentity.aadpodidentity.k8s.io "x" is invalid: spec.a: Required value"#
        );
        assert_eq!(invalid_message("Pod", "p", &[]), r#"Pod "p" is invalid"#);
    }
}
