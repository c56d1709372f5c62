//! Request classification: which handler a path goes to, the query parameters of a token request, and the
//! `Metadata` header rule. These functions face the network (every pod on the node can send anything), so they
//! are total: any input gives an answer, never a panic, and they are fuzzed (`fuzz/`).
//!
//! Upstream NMI routes with gorilla/mux (first match wins, reference §3.2):
//! 1. prefix `/{(?i)metadata}/identity/oauth2/token` -> token handler;
//! 2. anything matching `/(?i)metadata/identity(.*?)oauth2(.*?)token` (backslashes, extra segments) -> 400
//!    `Invalid request` (an anti path-confusion guard);
//! 3. prefix `/host/token` -> host token handler;
//! 4. with `--block-instance-metadata`, prefix `/{(?i)metadata}/instance` -> 403;
//! 5. everything else -> proxied to the metadata endpoint.
//!
//! mux matches the *decoded* path and first redirects unclean paths (`//`, `/./`, `/../`) to their clean form
//! with 301, so `/metadata/identity/../identity/oauth2/token` cannot slip past rule 1 or 2.

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/metadata/identity/oauth2/token` (first segment case-insensitive, trailing characters allowed).
    Token,
    /// A path that looks like the token path but is not exactly it: 400 `Invalid request`.
    InvalidTokenPath,
    /// `/host/token...`: host-network callers naming a pod in headers.
    HostToken,
    /// `/metadata/instance...` while instance metadata is blocked: 403.
    BlockedInstance,
    /// The path is not clean: 301 to this location (mux behaviour).
    Redirect(String),
    /// Everything else: proxied to the metadata endpoint.
    Proxy,
    /// The path has a malformed percent escape: 400 (Go's server refuses such request lines).
    BadRequest,
}

/// Routes a request by its raw (percent-encoded) path.
#[must_use]
pub fn route(raw_path: &str, block_instance_metadata: bool) -> Route {
    // A bad escape is refused (never routed on the raw text, which could slip a token path past the guards); a
    // decoded path that is not UTF-8 is matched on its lossy text, as Go matches bytes.
    let Some(bytes) = percent_decode_bytes(raw_path, false) else {
        return Route::BadRequest;
    };
    let decoded = String::from_utf8_lossy(&bytes).into_owned();
    let path = if decoded.is_empty() {
        "/".to_string()
    } else {
        decoded
    };
    let clean = clean_path(&path);
    if clean != path {
        return Route::Redirect(clean);
    }
    if token_prefix(&path) {
        return Route::Token;
    }
    if looks_like_token_path(&path) {
        return Route::InvalidTokenPath;
    }
    if path.starts_with("/host/token") {
        return Route::HostToken;
    }
    if block_instance_metadata && metadata_prefix(&path, "/instance") {
        return Route::BlockedInstance;
    }
    Route::Proxy
}

fn metadata_prefix(path: &str, rest: &str) -> bool {
    let Some(after) = path.strip_prefix('/') else {
        return false;
    };
    after.len() >= 8
        && after.is_char_boundary(8)
        && after[..8].eq_ignore_ascii_case("metadata")
        && after[8..].starts_with(rest)
}

fn token_prefix(path: &str) -> bool {
    metadata_prefix(path, "/identity/oauth2/token")
}

/// `/(?i:metadata)/identity(.*?)oauth2(.*?)token` anywhere in the path. Only the first occurrence of
/// `/(?i:metadata)/identity` needs checking: a later one's tail is part of the first one's. Linear time.
fn looks_like_token_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    // Only the `metadata` part is case-insensitive upstream; the rest is matched on the original text.
    let mut from = 0;
    while let Some(i) = lower[from..].find("/metadata/identity") {
        let at = from + i;
        let start = at + "/metadata/identity".len();
        if path.get(at + "/metadata".len()..start) == Some("/identity") {
            return path[start..]
                .find("oauth2")
                .is_some_and(|o| path[start + o + "oauth2".len()..].contains("token"));
        }
        from = at + 1;
    }
    false
}

/// Go's `path.Clean` as mux applies it (keeps a trailing slash).
#[must_use]
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return "/".into();
    }
    let rooted = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    let mut out: Vec<&str> = Vec::new();
    for seg in rooted.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut clean = format!("/{}", out.join("/"));
    if rooted.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

/// Percent-decodes `s`; with `plus_as_space`, `+` becomes a space (form encoding). `None` on a bad escape
/// or a result that is not UTF-8.
#[must_use]
pub fn percent_decode(s: &str, plus_as_space: bool) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s, plus_as_space)?).ok()
}

/// Percent-decodes `s` to bytes; `None` on a bad escape.
#[must_use]
pub fn percent_decode_bytes(s: &str, plus_as_space: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Percent-encodes a decoded path for a `Location` header (everything but unreserved characters and `/`), so
/// the client's next request decodes to the same path.
#[must_use]
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The first value of `key` in a raw query string, decoded as Go's `url.ParseQuery` does (pairs with a `;` or a
/// bad escape are skipped; `+` is a space). Empty when absent.
#[must_use]
pub fn query_get(raw_query: &str, key: &str) -> String {
    for pair in raw_query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(k) = percent_decode(k, true) else {
            continue;
        };
        if k != key {
            continue;
        }
        if let Some(v) = percent_decode(v, true) {
            return v;
        }
    }
    String::new()
}

/// The identity a token request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// No `client_id`, `msi_res_id`/`mi_res_id` or `object_id`: the pod's (first) identity.
    Any,
    /// `client_id=...`.
    ClientId(String),
    /// `msi_res_id=...` or `mi_res_id=...` (ARM resource ID of the identity).
    ResourceId(String),
    /// `object_id=...` (principal ID): podid refuses it with a clear message, as upstream ignores it silently.
    ObjectId(String),
}

impl Wanted {
    /// True when a specific identity was asked for.
    #[must_use]
    pub fn is_specific(&self) -> bool {
        !matches!(self, Wanted::Any)
    }
}

/// A parsed token request (`/metadata/identity/oauth2/token` or `/host/token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuery {
    /// `resource` (required; checked by the handler to keep upstream's error order).
    pub resource: String,
    /// Which identity.
    pub wanted: Wanted,
}

/// Parses the query of a token request. `client_id` wins over a resource ID, which wins over `object_id`
/// (one of them is enough to pick an identity; upstream filters by client ID or resource ID).
#[must_use]
pub fn parse_token_query(raw_query: &str) -> TokenQuery {
    let resource = query_get(raw_query, "resource");
    let client_id = query_get(raw_query, "client_id");
    let mut resource_id = query_get(raw_query, "msi_res_id");
    if resource_id.is_empty() {
        resource_id = query_get(raw_query, "mi_res_id");
    }
    let object_id = query_get(raw_query, "object_id");
    let wanted = if !client_id.is_empty() {
        Wanted::ClientId(client_id)
    } else if !resource_id.is_empty() {
        Wanted::ResourceId(resource_id)
    } else if !object_id.is_empty() {
        Wanted::ObjectId(object_id)
    } else {
        Wanted::Any
    };
    TokenQuery { resource, wanted }
}

/// The `Metadata` header rule: the first value must be exactly `true` (the name is case-insensitive, the value is
/// not).
#[must_use]
pub fn metadata_header_ok(first_value: Option<&[u8]>) -> bool {
    first_value == Some(b"true")
}

/// Upstream's redaction of client IDs in messages: first and last four characters kept.
#[must_use]
pub fn redact(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 8 {
        return "##### REDACTED #####".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}##### REDACTED #####{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_upstream() {
        let cases: &[(&str, bool, Route)] = &[
            ("/metadata/identity/oauth2/token", false, Route::Token),
            ("/metadata/identity/oauth2/token/", false, Route::Token),
            ("/Metadata/identity/oauth2/token", false, Route::Token),
            ("/METADATA/identity/oauth2/token", false, Route::Token),
            ("/metadata/identity/oauth2/tokenx", false, Route::Token),
            ("/metadata/Identity/oauth2/token", false, Route::Proxy),
            (
                "/metadata/identity\\oauth2\\token",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/identity%5Coauth2%5Ctoken",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/identity/x/oauth2/y/token",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/a/metadata/identity/oauth2/token",
                false,
                Route::InvalidTokenPath,
            ),
            ("/metadata/identity/oauth2", false, Route::Proxy),
            ("/host/token", false, Route::HostToken),
            ("/host/token/", false, Route::HostToken),
            ("/metadata/instance", false, Route::Proxy),
            ("/metadata/instance", true, Route::BlockedInstance),
            ("/Metadata/instance/compute", true, Route::BlockedInstance),
            ("/doesnotexist", true, Route::Proxy),
            ("", false, Route::Proxy),
            ("/", false, Route::Proxy),
            (
                "/metadata/identity/../identity/oauth2/token",
                false,
                Route::Redirect("/metadata/identity/oauth2/token".into()),
            ),
            (
                "//metadata/instance",
                true,
                Route::Redirect("/metadata/instance".into()),
            ),
            ("/metadata/%2e%2e/x", false, Route::Redirect("/x".into())),
            // Found by the fuzzer: a bad escape or non-UTF-8 escape must not turn a token path into a proxy.
            (
                "/metadata/%69dentity/oauth2/token/%zz",
                false,
                Route::BadRequest,
            ),
            ("/metadata/%69dentity/oauth2/token%FF", false, Route::Token),
            (
                "/x%FF/metadata/identity/oauth2/token",
                false,
                Route::InvalidTokenPath,
            ),
        ];
        for (path, block, want) in cases {
            assert_eq!(&route(path, *block), want, "path {path:?} block {block}");
        }
    }

    #[test]
    fn query_like_go() {
        assert_eq!(
            query_get("resource=https%3A%2F%2Fvault.azure.net&x=1", "resource"),
            "https://vault.azure.net"
        );
        assert_eq!(query_get("a=1+2", "a"), "1 2");
        assert_eq!(query_get("a=1;b=2&a=3", "a"), "3");
        assert_eq!(query_get("a=%zz&a=ok", "a"), "ok");
        assert_eq!(query_get("a", "a"), "");
        assert_eq!(query_get("", "a"), "");
        let q = parse_token_query("resource=r&mi_res_id=%2Fsubs&client_id=");
        assert_eq!(q.wanted, Wanted::ResourceId("/subs".into()));
        let q = parse_token_query("resource=r&msi_res_id=a&mi_res_id=b&client_id=c");
        assert_eq!(q.wanted, Wanted::ClientId("c".into()));
        assert_eq!(
            parse_token_query("object_id=o").wanted,
            Wanted::ObjectId("o".into())
        );
        assert_eq!(parse_token_query("resource=").wanted, Wanted::Any);
    }

    #[test]
    fn header_and_redaction() {
        assert!(metadata_header_ok(Some(b"true")));
        assert!(!metadata_header_ok(Some(b"True")));
        assert!(!metadata_header_ok(None));
        assert_eq!(
            redact("00000000-1111-2222-3333-444444444444"),
            "0000##### REDACTED #####4444"
        );
        assert_eq!(redact("abc"), "##### REDACTED #####");
    }

    proptest::proptest! {
        #[test]
        fn total_on_any_input(path in ".{0,80}", query in ".{0,80}", block: bool) {
            let r = route(&path, block);
            if let Route::Redirect(to) = &r {
                // A redirect target is itself clean and routes without another redirect.
                proptest::prop_assert!(!matches!(route(to, block), Route::Redirect(_)) || to.contains('%'));
            }
            let _ = parse_token_query(&query);
        }
    }
}
