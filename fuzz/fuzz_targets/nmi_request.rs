//! Fuzzes the node agent's request classification (`podid_core::nmi::request`): every pod on the node can send
//! the agent any path, query and `Metadata` header, so these functions must be total and must never let a
//! token request slip through to the real metadata endpoint.
//!
//! Input layout: `path 0x00 query 0x00 header`. The path and query are read as lossy UTF-8 (the HTTP layer hands
//! the agent `&str`); the header stays raw bytes (header values are bytes); with fewer than two separators the
//! header is absent. Seeds in `fuzz/seeds/nmi_request/` follow this layout.
//!
//! Invariants checked on every input (a failed `assert!` is a finding, with the input saved by libFuzzer):
//! - routing: `--block-instance-metadata` only turns `Proxy` into `BlockedInstance`, nothing else;
//! - path confusion (reference §3.2 rule 2): when the decoded path matches upstream's
//!   `/(?i:metadata)/identity(.*?)oauth2(.*?)token`, the request is answered by the agent (token, 400 or a
//!   redirect), never proxied, never treated as a host-token or blocked-instance call; the oracle decodes
//!   leniently (bad escapes kept, bytes not required to be UTF-8), like the metadata endpoint would;
//! - redirects: the target is clean, and requesting it (percent-encoded, as a `Location` header carries it) does
//!   not redirect again; re-encoding a path that decodes never changes its route (a client following a
//!   redirect or re-encoding lands on the same handler, so a token route stays a token route);
//! - `clean_path` is idempotent, rooted, free of empty, `.` and `..` segments, and keeps a trailing slash;
//! - `percent_decode` inverts percent-encoding, never grows its input, and is the identity without `%`/`+`;
//! - `parse_token_query` follows its precedence (client ID, then resource ID, then object ID), agrees with
//!   `query_get`, and reads back values it was given percent-encoded, skipping pairs with a `;`;
//! - the `Metadata` header passes only when its value is exactly `true`;
//! - `redact` reveals at most the first and last four characters, and nothing below eight characters.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podid_core::nmi::request::{
    Route, Wanted, clean_path, metadata_header_ok, parse_token_query, percent_decode, query_get,
    redact, route,
};

/// Separates the path, the query and the header value in the fuzz input.
const SEPARATOR: u8 = 0;
/// What `redact` puts in place of the hidden part of an ID.
const REDACTION_MARK: &str = "##### REDACTED #####";
/// Characters `redact` keeps at each end of an ID long enough to show any.
const REDACT_KEEP_CHARS: usize = 4;
/// IDs shorter than this many characters are hidden completely.
const REDACT_MIN_CHARS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let (path, query, header) = split_input(data);
    check_route(&path);
    check_clean_path(&path);
    check_percent_decode(&path);
    check_percent_decode(&query);
    check_token_query(&query, header);
    assert_eq!(
        metadata_header_ok(header),
        header == Some(b"true".as_slice()),
        "Metadata header rule"
    );
    check_redact(&path);
    check_redact(&query);
    if let Some(h) = header {
        check_redact(&String::from_utf8_lossy(h));
    }
});

/// `path 0x00 query 0x00 header`; missing parts are empty (path, query) or absent (header).
fn split_input(data: &[u8]) -> (String, String, Option<&[u8]>) {
    let mut parts = data.splitn(3, |b| *b == SEPARATOR);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    (path, query, parts.next())
}

fn check_route(raw: &str) {
    let open = route(raw, false);
    let blocked = route(raw, true);
    match (&open, &blocked) {
        (Route::Proxy, Route::BlockedInstance) => {}
        _ => assert_eq!(
            open, blocked,
            "blocking instance metadata changed a non-instance route for {raw:?}"
        ),
    }

    if matches_upstream_token_regex(&lenient_decode(raw)) {
        assert!(
            matches!(
                open,
                Route::Token | Route::InvalidTokenPath | Route::Redirect(_) | Route::BadRequest
            ),
            "path confusion: {raw:?} decodes to a token path but routes to {open:?}"
        );
    }

    for (block, got) in [(false, &open), (true, &blocked)] {
        match got {
            Route::Redirect(to) => {
                assert_eq!(
                    &clean_path(to),
                    to,
                    "redirect target of {raw:?} is not clean"
                );
                let follow = route(&percent_encode(to, true), block);
                assert!(
                    !matches!(follow, Route::Redirect(_)),
                    "redirect loop: {raw:?} -> {to:?} -> {follow:?}"
                );
            }
            settled => {
                // A path that decodes names the same handler however it is encoded (a path with a bad escape
                // has no decoded form to compare with).
                if let Some(decoded) = percent_decode(raw, false) {
                    let again = route(&percent_encode(&decoded, true), block);
                    assert_eq!(
                        &again, settled,
                        "re-encoding {raw:?} (decoded {decoded:?}) changed its route"
                    );
                }
            }
        }
    }
}

fn check_clean_path(p: &str) {
    let c = clean_path(p);
    assert_eq!(clean_path(&c), c, "clean_path is not idempotent on {p:?}");
    assert!(
        c.starts_with('/'),
        "clean_path({p:?}) = {c:?} is not rooted"
    );
    assert!(
        !c.contains("//"),
        "clean_path({p:?}) = {c:?} has an empty segment"
    );
    assert!(
        c.split('/').all(|seg| seg != "." && seg != ".."),
        "clean_path({p:?}) = {c:?} has a dot segment"
    );
    if c != "/" {
        assert_eq!(
            c.ends_with('/'),
            p.ends_with('/'),
            "clean_path({p:?}) = {c:?} changed the trailing slash"
        );
    }
}

fn check_percent_decode(s: &str) {
    for plus_as_space in [false, true] {
        assert_eq!(
            percent_decode(&percent_encode(s, false), plus_as_space).as_deref(),
            Some(s),
            "percent_decode does not invert percent-encoding of {s:?}"
        );
        if let Some(d) = percent_decode(s, plus_as_space) {
            assert!(d.len() <= s.len(), "percent_decode grew {s:?} into {d:?}");
        }
    }
    if !s.contains('%') {
        assert_eq!(percent_decode(s, false).as_deref(), Some(s));
        assert_eq!(percent_decode(s, true), Some(s.replace('+', " ")));
    }
}

fn check_token_query(query: &str, header: Option<&[u8]>) {
    let q = parse_token_query(query);
    assert_eq!(q.resource, query_get(query, "resource"));
    let client_id = query_get(query, "client_id");
    let msi_res_id = query_get(query, "msi_res_id");
    let res_id = if msi_res_id.is_empty() {
        query_get(query, "mi_res_id")
    } else {
        msi_res_id
    };
    let object_id = query_get(query, "object_id");
    let want = if !client_id.is_empty() {
        Wanted::ClientId(client_id)
    } else if !res_id.is_empty() {
        Wanted::ResourceId(res_id)
    } else if !object_id.is_empty() {
        Wanted::ObjectId(object_id)
    } else {
        Wanted::Any
    };
    assert_eq!(q.wanted, want, "identity precedence for query {query:?}");

    // Values given percent-encoded come back as given; a pair with `;` (rejected by Go) is skipped.
    let value = String::from_utf8_lossy(header.unwrap_or_default());
    let built = format!(
        "client_id=evil;x&client_id={}&resource={}&mi_res_id=%2Fsubscriptions",
        percent_encode(query, false),
        percent_encode(&value, false)
    );
    let parsed = parse_token_query(&built);
    assert_eq!(parsed.resource, value, "resource round trip via {built:?}");
    let want = if query.is_empty() {
        Wanted::ResourceId("/subscriptions".into())
    } else {
        Wanted::ClientId(query.to_owned())
    };
    assert_eq!(parsed.wanted, want, "client_id round trip via {built:?}");
}

fn check_redact(id: &str) {
    let out = redact(id);
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < REDACT_MIN_CHARS {
        assert_eq!(out, REDACTION_MARK, "short ID not fully hidden");
        return;
    }
    let head: String = chars[..REDACT_KEEP_CHARS].iter().collect();
    let tail: String = chars[chars.len() - REDACT_KEEP_CHARS..].iter().collect();
    assert_eq!(
        out,
        format!("{head}{REDACTION_MARK}{tail}"),
        "redact shows more than {REDACT_KEEP_CHARS} characters at each end"
    );
}

/// Percent-encodes every byte but unreserved characters (and `/` when `keep_slash`), so that decoding gives `s`
/// back exactly, `+` included.
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes valid `%XX` escapes to bytes and keeps everything else as it is (the oracle's view of what a lenient
/// server, such as the metadata endpoint behind the proxy, would match on).
fn lenient_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| Some((hex_digit(*b.get(i + 1)?)?, hex_digit(*b.get(i + 2)?)?)))
            .flatten();
        match escaped {
            Some((hi, lo)) => {
                out.push((hi << 4) | lo);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Upstream's guard regex `/(?i:metadata)/identity(.*?)oauth2(.*?)token`, unanchored, with Go's `.` (no
/// newline), written out by hand so the oracle shares no code with the implementation under test.
fn matches_upstream_token_regex(path: &[u8]) -> bool {
    const HEAD: &[u8] = b"/metadata/identity";
    const CI_LEN: usize = "/metadata".len();
    (0..path.len()).any(|start| {
        let Some(window) = path.get(start..start + HEAD.len()) else {
            return false;
        };
        if !window[..CI_LEN].eq_ignore_ascii_case(&HEAD[..CI_LEN])
            || window[CI_LEN..] != HEAD[CI_LEN..]
        {
            return false;
        }
        let rest = &path[start + HEAD.len()..];
        // `.` stops at a newline, so both gaps and the words must sit in the same line.
        let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
        find(line, b"oauth2")
            .is_some_and(|o| find(&line[o + b"oauth2".len()..], b"token").is_some())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
