//! Error types shared by the RBAC and token modules.

use std::fmt;

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
    /// A `field.Invalid` error; `value` must already be rendered (see [`go_quote`]).
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

/// Render errors the way `utilerrors.NewAggregate(errs).Error()` does: a single message bare,
/// several (deduplicated, in order) as `[a, b]`.
pub(crate) fn aggregate_messages<I>(messages: I) -> String
where
    I: IntoIterator<Item = String>,
{
    let mut seen: Vec<String> = Vec::new();
    for m in messages {
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

fn aggregate_fields(errs: &[FieldError]) -> String {
    aggregate_messages(errs.iter().map(ToString::to_string))
}

/// Quote a string the way Go's `%q` verb does (`strconv.Quote`): double quotes, with `"` and `\`
/// escaped, the usual C escapes for control characters, and `\x`/`\u` escapes for other
/// non-printable characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0B}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render a string slice the way Go's `%q` prints a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        let cases = [
            ("", r#""""#),
            ("abc", r#""abc""#),
            ("a\"b", r#""a\"b""#),
            ("a\\b", r#""a\\b""#),
            ("line\nbreak\t", r#""line\nbreak\t""#),
            ("\u{1}", r#""\x01""#),
            ("\u{7f}", r#""\x7f""#),
            ("\u{85}", r#""\u0085""#),
            ("héllo ✓", "\"héllo ✓\""),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "input {input:?}");
        }
    }

    #[test]
    fn go_quote_list_uses_spaces() {
        assert_eq!(go_quote_list(&[]), "[]");
        assert_eq!(go_quote_list(&["a".into(), "b c".into()]), r#"["a" "b c"]"#);
    }

    #[test]
    fn aggregate_dedups_and_brackets() {
        assert_eq!(aggregate_messages(Vec::<String>::new()), "");
        assert_eq!(aggregate_messages(vec!["x".to_owned()]), "x");
        assert_eq!(
            aggregate_messages(vec!["x".to_owned(), "x".to_owned()]),
            "x"
        );
        assert_eq!(
            aggregate_messages(vec!["x".to_owned(), "y".to_owned(), "x".to_owned()]),
            "[x, y]"
        );
    }

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
