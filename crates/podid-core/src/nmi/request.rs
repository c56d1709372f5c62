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
//!
//! # Deliberate difference: the guard (rule 2) ignores letter case and separator tricks
//! Upstream's guard is case-insensitive on `metadata` only, so `/metadata/Identity/oauth2/token?client_id=<other>`
//! is passed through to the node's IMDS, which may match paths case-insensitively (it is not documented) and
//! would then hand the pod any identity of the node. podid compares a *skeleton* of the path instead: letters
//! folded (Unicode characters whose upper case is ASCII, such as `ſ` and `ı`, included), `\` read as `/`, every
//! other character but ASCII letters, digits and `/` dropped, repeated `/` collapsed. A path whose skeleton
//! holds `identity`, then `oauth2`, then `token` goes to 400 `Invalid request` unless it is the token route
//! itself (rule 1); so does one that holds `/metadata/identity` unless it is a *plain* identity path: after
//! `/metadata`, only lower-case ASCII letters, digits, `/`, `-`, `_` and `.` (so `/metadata/identity/info` is
//! still proxied, as upstream).

use std::borrow::Cow;

/// The token route's path as every SDK writes it.
const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

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
    // The path every SDK sends: clean, nothing to decode, rule 1 (the hot path of a busy node).
    if raw_path == TOKEN_PATH {
        return Route::Token;
    }
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

/// Rule 2, widened (see the module docs): the path's skeleton holds `identity … oauth2 … token`, or
/// `/metadata/identity` while the path is not a plain identity path. Linear time.
fn looks_like_token_path(path: &str) -> bool {
    let skel = skeleton(path);
    let token_like = skel.find("identity").is_some_and(|i| {
        let tail = &skel[i + "identity".len()..];
        tail.find("oauth2")
            .is_some_and(|o| tail[o + "oauth2".len()..].contains("token"))
    });
    token_like || (skel.contains("/metadata/identity") && !plain_identity_path(path))
}

/// `/` + `metadata` (any case) + `/identity` or `/identity/...` with only lower-case ASCII letters, digits, `/`,
/// `-`, `_` and `.` after it: an identity path the node's IMDS sees exactly as written.
fn plain_identity_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.len() < 8 || !rest.is_char_boundary(8) || !rest[..8].eq_ignore_ascii_case("metadata") {
        return false;
    }
    let after = &rest[8..];
    (after == "/identity" || after.starts_with("/identity/"))
        && after.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'/' | b'-' | b'_' | b'.')
        })
}

/// The path as a case- and separator-insensitive server might read it: letters folded to ASCII lower case
/// (characters whose upper case is one ASCII letter, such as `ſ` or `ı`, count as that letter), `\` as `/`,
/// everything else but ASCII letters, digits and `/` dropped, runs of `/` collapsed.
fn skeleton(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        let c = if c == '\\' { '/' } else { fold(c) };
        if c == '/' {
            if !out.ends_with('/') {
                out.push('/');
            }
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        }
    }
    out
}

/// One character folded to ASCII lower case where any case mapping reaches ASCII; others unchanged.
fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut up = c.to_uppercase();
    if let (Some(u), None) = (up.next(), up.next())
        && u.is_ascii()
    {
        return u.to_ascii_lowercase();
    }
    let mut low = c.to_lowercase();
    if let (Some(l), None) = (low.next(), low.next())
        && l.is_ascii()
    {
        return l;
    }
    c
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
    let mut found = String::new();
    for_each_pair(raw_query, |k, v| {
        if k == key {
            found = v.into_owned();
            false
        } else {
            true
        }
    });
    found
}

/// Calls `f(key, value)` for each well-formed pair of a raw query, in order, decoded as Go's `url.ParseQuery`
/// does (pairs with a `;` or a bad escape are skipped; `+` is a space), until `f` returns false. A key or value
/// without `%` or `+` is borrowed, not copied (the common case: one pass, no allocation per pair).
pub fn for_each_pair<'a>(raw_query: &'a str, mut f: impl FnMut(&str, Cow<'a, str>) -> bool) {
    for pair in raw_query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(k) = decode_form(k) else {
            continue;
        };
        let Some(v) = decode_form(v) else {
            continue;
        };
        if !f(&k, v) {
            return;
        }
    }
}

/// Form decoding of one query component, borrowing when nothing needs decoding.
fn decode_form(s: &str) -> Option<Cow<'_, str>> {
    if s.bytes().any(|b| b == b'%' || b == b'+') {
        percent_decode(s, true).map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(s))
    }
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
    // One pass; the first value of each key wins (as `query_get` of each would).
    let (mut resource, mut client_id, mut msi_res_id, mut mi_res_id, mut object_id) =
        (None, None, None, None, None);
    for_each_pair(raw_query, |k, v| {
        let slot = match k {
            "resource" => &mut resource,
            "client_id" => &mut client_id,
            "msi_res_id" => &mut msi_res_id,
            "mi_res_id" => &mut mi_res_id,
            "object_id" => &mut object_id,
            _ => return true,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
        true
    });
    let take = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned).unwrap_or_default();
    let resource = take(resource);
    let client_id = take(client_id);
    let mut resource_id = take(msi_res_id);
    if resource_id.is_empty() {
        resource_id = take(mi_res_id);
    }
    let object_id = take(object_id);
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
            // Beyond upstream (which proxies these): the guard ignores letter case and separator tricks.
            (
                "/metadata/Identity/oauth2/token",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/identity/OAuth2/Token",
                false,
                Route::InvalidTokenPath,
            ),
            ("/metadata/IDENTITY/info", false, Route::InvalidTokenPath),
            (
                "/metadata/identity;x/oauth2/token",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/ident%C4%B1ty/oauth2/token",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/identity/oauth2/to%E2%84%AAen",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/%C5%BFomething/identity/oauth2/token",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/identity/oauth2/toKen",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/metadata/identity%20/oauth2/token",
                false,
                Route::InvalidTokenPath,
            ),
            (
                "/Metadata/identity\\OAUTH2\\token",
                false,
                Route::InvalidTokenPath,
            ),
            ("/metadata/identity/info", false, Route::Proxy),
            ("/metadata/identity", false, Route::Proxy),
            ("/metadata/identityx", false, Route::InvalidTokenPath),
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

    /// The token path in a random letter case, with random separators (`/`, `\\`, `%5C`, `%2F`, `;`, `.`,
    /// spaces) between its words, and a client_id for another identity: never proxied to the node's IMDS.
    fn token_path_variant() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let words = ["metadata", "identity", "oauth2", "token"];
        let seps = prop::sample::select(vec![
            "/", "/", "\\", "%5C", "%2F", "%5c", "/./", "//", ";", "/x/", "%20/", ".", "/%2e/",
        ]);
        (
            prop::collection::vec(any::<bool>(), 31),
            prop::collection::vec(seps, 3),
        )
            .prop_map(move |(case, seps)| {
                let mut p = String::from("/");
                let mut k = 0;
                for (i, w) in words.iter().enumerate() {
                    for ch in w.chars() {
                        p.push(if case[k % 31] {
                            ch.to_ascii_uppercase()
                        } else {
                            ch
                        });
                        k += 1;
                    }
                    if i < 3 {
                        p.push_str(seps[i]);
                    }
                }
                p
            })
    }

    proptest::proptest! {
        #[test]
        fn token_path_variants_never_proxied(path in token_path_variant()) {
            let r = route(&path, false);
            proptest::prop_assert!(
                !matches!(r, Route::Proxy | Route::HostToken | Route::BlockedInstance),
                "{path:?} -> {r:?}"
            );
            if r == Route::Token {
                // Only the token route itself: `metadata` in any case, the rest exactly as upstream serves it.
                proptest::prop_assert!(path[9..].starts_with("/identity/oauth2/token"), "{path:?}");
            }
            if let Route::Redirect(to) = &r {
                proptest::prop_assert!(!matches!(route(to, false), Route::Proxy), "{path:?} -> {to:?}");
            }
        }

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

    proptest::proptest! {
        /// The one-pass parse answers as a `query_get` per key did.
        #[test]
        fn one_pass_query_is_query_get_per_key(q in "((resource|client_id|msi_res_id|mi_res_id|object_id|x|%7A|client%5Fid)(=[a-z%+;0-9A-F]{0,6})?&?){0,6}") {
            let per_key = |k: &str| query_get(&q, k);
            let mut resource_id = per_key("msi_res_id");
            if resource_id.is_empty() {
                resource_id = per_key("mi_res_id");
            }
            let wanted = if !per_key("client_id").is_empty() {
                Wanted::ClientId(per_key("client_id"))
            } else if !resource_id.is_empty() {
                Wanted::ResourceId(resource_id)
            } else if !per_key("object_id").is_empty() {
                Wanted::ObjectId(per_key("object_id"))
            } else {
                Wanted::Any
            };
            proptest::prop_assert_eq!(parse_token_query(&q), TokenQuery { resource: per_key("resource"), wanted });
        }
    }
}
