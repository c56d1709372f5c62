//! Response shapes of the node agent, byte-compatible with upstream NMI (reference §3.3, §3.4.1, §3.5, App. B).
//!
//! Errors written with Go's `http.Error` are `text/plain; charset=utf-8`, carry `X-Content-Type-Options: nosniff`
//! and end with a newline; the missing-`Metadata` error is JSON. Token bodies hold every number as a string.

use serde::Serialize;

/// `Retry-After` seconds sent with 503 when `--set-retry-after-header` is on (upstream's constant).
pub const RETRY_AFTER_SECS: u32 = 20;

/// How the body is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`.
    Json,
    /// `application/json; charset=utf-8` (the metadata-header error).
    JsonUtf8,
    /// `text/plain; charset=utf-8` + `X-Content-Type-Options: nosniff` (Go's `http.Error`).
    Plain,
}

impl BodyKind {
    /// The `Content-Type` header value.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            BodyKind::Json => "application/json",
            BodyKind::JsonUtf8 => "application/json; charset=utf-8",
            BodyKind::Plain => "text/plain; charset=utf-8",
        }
    }
}

/// A complete answer (status, body, extra headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body type.
    pub kind: BodyKind,
    /// Body.
    pub body: String,
    /// `Retry-After` seconds.
    pub retry_after: Option<u32>,
    /// `Location` (redirects).
    pub location: Option<String>,
}

impl Reply {
    /// Go's `http.Error(w, msg, status)`.
    #[must_use]
    pub fn error(status: u16, msg: impl std::fmt::Display) -> Reply {
        Reply {
            status,
            kind: BodyKind::Plain,
            body: format!("{msg}\n"),
            retry_after: None,
            location: None,
        }
    }

    /// A JSON body.
    #[must_use]
    pub fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            kind: BodyKind::Json,
            body,
            retry_after: None,
            location: None,
        }
    }

    /// 400 for a request without `Metadata: true`.
    #[must_use]
    pub fn metadata_header_missing() -> Reply {
        Reply {
            status: 400,
            kind: BodyKind::JsonUtf8,
            body: "{\"error\":\"invalid_request\",\"error_description\":\"Required metadata header not specified\"}\n"
                .into(),
            retry_after: None,
            location: None,
        }
    }

    /// 400 `Invalid request` (path confusion guard).
    #[must_use]
    pub fn invalid_request() -> Reply {
        Reply::error(400, "Invalid request")
    }

    /// 403 for blocked instance metadata.
    #[must_use]
    pub fn instance_blocked() -> Reply {
        Reply::error(403, "Request blocked by AAD Pod Identity NMI")
    }

    /// 400 for a request line Go's server would refuse.
    #[must_use]
    pub fn bad_request() -> Reply {
        Reply::error(400, "Bad Request")
    }

    /// 301 to a clean path (mux's behaviour), percent-encoded so it is not decoded twice.
    #[must_use]
    pub fn redirect(location: String) -> Reply {
        let location = super::request::encode_path(&location);
        Reply {
            status: 301,
            kind: BodyKind::Plain,
            body: String::new(),
            retry_after: None,
            location: Some(location),
        }
    }

    /// The identity lookup failed: 404, or 503 + `Retry-After` when configured (upstream §3.4 step 7).
    #[must_use]
    pub fn identity_not_found(msg: impl std::fmt::Display, retry_after_header: bool) -> Reply {
        if retry_after_header {
            let mut r = Reply::error(503, msg);
            r.retry_after = Some(RETRY_AFTER_SECS);
            r
        } else {
            Reply::error(404, msg)
        }
    }
}

/// One token as NMI returns it (field order and string-typed numbers as adal's `Token`), plus `client_id`
/// (real IMDS has it; SDKs ignore unknown fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenBody {
    /// The access token.
    pub access_token: String,
    /// Always empty.
    pub refresh_token: String,
    /// Seconds left, computed when served.
    pub expires_in: String,
    /// Epoch seconds.
    pub expires_on: String,
    /// Epoch seconds.
    pub not_before: String,
    /// The resource (audience) requested.
    pub resource: String,
    /// `Bearer`.
    pub token_type: String,
    /// The identity's client ID.
    pub client_id: String,
}

impl TokenBody {
    /// Builds the body for a token valid until `expires_on`, served at `now` (epoch seconds).
    #[must_use]
    pub fn new(
        access_token: &str,
        expires_on: u64,
        not_before: u64,
        resource: &str,
        token_type: &str,
        client_id: &str,
        now: u64,
    ) -> TokenBody {
        TokenBody {
            access_token: access_token.to_string(),
            refresh_token: String::new(),
            expires_in: expires_on.saturating_sub(now).to_string(),
            expires_on: expires_on.to_string(),
            not_before: not_before.to_string(),
            resource: resource.to_string(),
            token_type: if token_type.is_empty() {
                "Bearer".into()
            } else {
                token_type.to_string()
            },
            client_id: client_id.to_string(),
        }
    }
}

/// 200 with one token object, or a JSON array when a multi-tenant service principal produced several.
#[must_use]
pub fn token_reply(tokens: &[TokenBody]) -> Reply {
    let body = match tokens {
        [one] => one.to_json(),
        many => serde_json::to_string(many),
    };
    match body {
        Ok(b) => Reply::json(200, b),
        Err(e) => Reply::error(500, format!("failed to marshal token: {e}")),
    }
}

impl TokenBody {
    /// The body as JSON, byte for byte what `serde_json::to_string` writes. The fields of a token are plain
    /// text (a JWT is base64url and dots), so they are copied without serde's escaping walk, which cost about
    /// a third of a cached answer; a field that needs escaping goes through serde_json.
    ///
    /// # Errors
    /// As `serde_json::to_string` (never, for strings).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let fields: [(&str, &str); 8] = [
            ("access_token", &self.access_token),
            ("refresh_token", &self.refresh_token),
            ("expires_in", &self.expires_in),
            ("expires_on", &self.expires_on),
            ("not_before", &self.not_before),
            ("resource", &self.resource),
            ("token_type", &self.token_type),
            ("client_id", &self.client_id),
        ];
        let len: usize = fields.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
        let mut out = String::with_capacity(len + 2);
        out.push('{');
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(k);
            out.push_str("\":");
            if needs_no_escape(v) {
                out.push('"');
                out.push_str(v);
                out.push('"');
            } else {
                out.push_str(&serde_json::to_string(v)?);
            }
        }
        out.push('}');
        Ok(out)
    }
}

/// True when serde_json writes `s` between quotes unchanged: printable ASCII other than `"` and `\` (one
/// branch-free pass the compiler vectorises).
fn needs_no_escape(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| {
        ok & ((0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\'))
    })
}

/// `/host/token` success body: `{"token": <first token>, "clientid": "..."}`.
#[must_use]
pub fn host_token_reply(token: &TokenBody, client_id: &str) -> Reply {
    #[derive(Serialize)]
    struct Host<'a> {
        token: &'a TokenBody,
        clientid: &'a str,
    }
    match serde_json::to_string(&Host {
        token,
        clientid: client_id,
    }) {
        Ok(b) => Reply::json(200, b),
        Err(e) => Reply::error(500, format!("failed to marshal token: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let m = Reply::metadata_header_missing();
        assert_eq!(m.status, 400);
        assert_eq!(
            m.body,
            "{\"error\":\"invalid_request\",\"error_description\":\"Required metadata header not specified\"}\n"
        );
        let t = TokenBody::new(
            "tok",
            1_000_100,
            999_000,
            "https://vault.azure.net",
            "",
            "cid",
            1_000_000,
        );
        let r = token_reply(std::slice::from_ref(&t));
        assert_eq!(
            r.body,
            "{\"access_token\":\"tok\",\"refresh_token\":\"\",\"expires_in\":\"100\",\"expires_on\":\"1000100\",\"not_before\":\"999000\",\"resource\":\"https://vault.azure.net\",\"token_type\":\"Bearer\",\"client_id\":\"cid\"}"
        );
        assert!(token_reply(&[t.clone(), t.clone()]).body.starts_with('['));
        // The hand-written body is serde_json's, escapes and non-ASCII included.
        let mut odd = t.clone();
        odd.access_token = "a\"b\\c\u{1}d\u{7f}é".into();
        odd.client_id = "ünïcode\n".into();
        for b in [&t, &odd] {
            assert_eq!(b.to_json().unwrap(), serde_json::to_string(b).unwrap());
        }
        assert!(host_token_reply(&t, "cid").body.starts_with("{\"token\":{"));
        let n = Reply::identity_not_found("nope", true);
        assert_eq!((n.status, n.retry_after), (503, Some(20)));
        assert_eq!(Reply::identity_not_found("nope", false).status, 404);
        assert_eq!(Reply::error(500, "x").body, "x\n");
    }

    proptest::proptest! {
        /// Any field text: the hand-written body equals serde_json's.
        #[test]
        fn token_json_is_serde_json(tok in ".{0,40}", res in "[ -~]{0,20}", cid in "\\PC{0,10}") {
            let b = TokenBody::new(&tok, 5, 1, &res, "", &cid, 2);
            proptest::prop_assert_eq!(b.to_json().unwrap(), serde_json::to_string(&b).unwrap());
        }
    }
}
