//! The list and watch parameters the apiserver validates before serving (`ValidateListOptions`), and its words
//! for an unparsable resourceVersion or continue token. Pure functions of the query's values.

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::validate::{forbidden, not_supported};
use crate::server::Ctx;
use kube_sim_machinery::gofmt::go_quote;

/// The list/watch parameters that matter to validation.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListParams<'a> {
    /// A watch (`watch=1` or the watch verb) rather than a list.
    pub watch: bool,
    /// `resourceVersion`.
    pub resource_version: &'a str,
    /// `resourceVersionMatch`.
    pub resource_version_match: &'a str,
    /// `continue`.
    pub continue_token: &'a str,
    /// Whether `sendInitialEvents` was given (whatever its value).
    pub send_initial_events: bool,
}

/// `ValidateListOptions`: the causes, in the apiserver's order.
pub fn causes(p: &ListParams) -> Vec<Cause> {
    const MATCH: &str = "resourceVersionMatch";
    let mut causes = Vec::new();
    let m = p.resource_version_match;
    if p.watch {
        if p.send_initial_events && m != "NotOlderThan" {
            causes.push(forbidden(
                MATCH,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !m.is_empty() {
            if !p.send_initial_events {
                causes.push(forbidden(
                    MATCH,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                causes.push(not_supported(MATCH, m, &["NotOlderThan"]));
            }
            if !p.continue_token.is_empty() {
                causes.push(forbidden(
                    MATCH,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
        return causes;
    }
    if !m.is_empty() {
        if p.resource_version.is_empty() {
            causes.push(forbidden(
                MATCH,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !p.continue_token.is_empty() {
            causes.push(forbidden(
                MATCH,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            causes.push(not_supported(MATCH, m, &["Exact", "NotOlderThan", ""]));
        }
        if m == "Exact" && p.resource_version == "0" {
            causes.push(forbidden(
                MATCH,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if p.send_initial_events {
        causes.push(forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    causes
}

/// Validate a request's list/watch parameters: 422 `ListOptions.meta.k8s.io "" is invalid: ...`.
pub fn validate(ctx: &Ctx, watch: bool) -> ApiResult<()> {
    let q = |k: &str| ctx.query.get(k).unwrap_or("");
    let params = ListParams {
        watch,
        resource_version: q("resourceVersion"),
        resource_version_match: q("resourceVersionMatch"),
        continue_token: q("continue"),
        send_initial_events: ctx.query.get("sendInitialEvents").is_some(),
    };
    let causes = causes(&params);
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", causes))
}

/// Parse a resourceVersion parameter; the error is the apiserver's 400
/// (`invalid resource version: resourceVersion: Invalid value: "abc": strconv.ParseUint: ...`).
pub fn parse_resource_version(rv: &str) -> ApiResult<u64> {
    rv.parse::<u64>().map_err(|_| {
        let why = if rv.is_empty() {
            "invalid syntax"
        } else if rv.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        ApiError::bad_request(format!(
            "invalid resource version: resourceVersion: Invalid value: {}: strconv.ParseUint: parsing {}: {why}",
            go_quote(rv),
            go_quote(rv)
        ))
    })
}

/// Go's `encoding/json` words for a document whose first byte cannot start a value
/// (`invalid character '\u0081' looking for beginning of value`); None when the first byte could.
pub fn go_json_start_error(bytes: &[u8]) -> Option<String> {
    let first = *bytes.iter().find(|b| !b" \t\r\n".contains(b))?;
    if b"{[\"-0123456789tfn".contains(&first) {
        return None;
    }
    let shown = match first {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        0x20..=0x7e => format!("'{}'", first as char),
        _ => format!("'\\u{:04x}'", first),
    };
    Some(format!(
        "invalid character {shown} looking for beginning of value"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(p: ListParams) -> Vec<String> {
        causes(&p).into_iter().map(|c| c.message).collect()
    }

    #[test]
    fn list_options_are_validated_as_the_apiserver_does() {
        assert_eq!(
            messages(ListParams {
                resource_version_match: "Exact",
                ..Default::default()
            }),
            [
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
            ]
        );
        assert_eq!(
            messages(ListParams {
                resource_version: "1",
                resource_version_match: "Sometime",
                ..Default::default()
            }),
            [
                "resourceVersionMatch: Unsupported value: \"Sometime\": supported values: \"Exact\", \"NotOlderThan\", \"\""
            ]
        );
        assert_eq!(
            messages(ListParams {
                watch: true,
                send_initial_events: true,
                ..Default::default()
            }),
            [
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            ]
        );
        let streaming = ListParams {
            watch: true,
            send_initial_events: true,
            resource_version_match: "NotOlderThan",
            ..Default::default()
        };
        assert!(causes(&streaming).is_empty());
        assert!(
            causes(&ListParams {
                resource_version: "0",
                ..Default::default()
            })
            .is_empty()
        );
    }

    #[test]
    fn go_words_for_bad_versions_and_tokens() {
        let e = parse_resource_version("abc").expect_err("not a number");
        assert_eq!(
            e.message,
            "invalid resource version: resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            go_json_start_error(&[0x81, b'x']).as_deref(),
            Some("invalid character '\\u0081' looking for beginning of value")
        );
        assert_eq!(go_json_start_error(b" {}"), None);
    }
}
