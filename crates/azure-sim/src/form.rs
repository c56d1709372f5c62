//! `application/x-www-form-urlencoded` bodies and URL query strings.
//!
//! Both Entra (form bodies) and IMDS / ARM / Key Vault (query strings) use the same encoding: `&`-separated
//! `key=value` pairs, percent-escapes, and `+` for a space. Parsing never fails: an invalid escape is kept
//! literally, invalid UTF-8 is replaced (U+FFFD), a pair without `=` has an empty value. When a key repeats, the
//! first occurrence wins (what both Entra and IMDS effectively do for the parameters we read).

use std::borrow::Cow;

/// Decoded key/value pairs in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parse a raw query string or form body.
    pub fn parse(raw: &[u8]) -> Params {
        let mut out = Vec::new();
        for part in raw.split(|b| *b == b'&') {
            if part.is_empty() {
                continue;
            }
            let (k, v) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &[][..]),
            };
            out.push((decode(k).into_owned(), decode(v).into_owned()));
        }
        Params(out)
    }

    /// Parse an optional query string (`uri.query()`).
    pub fn query(q: Option<&str>) -> Params {
        Params::parse(q.unwrap_or("").as_bytes())
    }

    /// First value of `key` (exact, case-sensitive, as the services match parameter names).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// First non-empty value of `key`.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// First value of `key`, matching the name case-insensitively (IMDS and ARM treat `api-version` so).
    pub fn get_ci(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// All pairs.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The pairs with the values of secret-bearing keys replaced, for the request log.
    pub fn redacted(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(k, v)| {
                if is_sensitive(k) {
                    (k.clone(), "[REDACTED]".to_string())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    }
}

/// Parameter names whose values are credentials (never logged).
pub fn is_sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "client_secret"
            | "client_assertion"
            | "assertion"
            | "access_token"
            | "refresh_token"
            | "password"
            | "code"
            | "sig"
            | "id_token"
    )
}

/// Percent-decode one component (`+` is a space).
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if !bytes.iter().any(|b| *b == b'%' || *b == b'+') {
        return String::from_utf8_lossy(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                if let (Some(h), Some(l)) = (hi, lo) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Percent-decode a URL path segment (`+` stays a plus).
pub fn decode_path(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Percent-encode a query component (unreserved characters stay).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=1&b=2", &[("a", "1"), ("b", "2")]),
            ("a=1&&b", &[("a", "1"), ("b", "")]),
            (
                "scope=https%3A%2F%2Fvault.azure.net%2F.default",
                &[("scope", "https://vault.azure.net/.default")],
            ),
            ("x=a+b%20c", &[("x", "a b c")]),
            ("bad=%zz%4", &[("bad", "%zz%4")]),
            ("k%3D=v%3D", &[("k=", "v=")]),
            ("=v", &[("", "v")]),
            ("u=%FF", &[("u", "\u{FFFD}")]),
        ];
        for (raw, want) in cases {
            let p = Params::parse(raw.as_bytes());
            let got: Vec<(&str, &str)> = p
                .pairs()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(&got, want, "{raw}");
        }
        let p = Params::parse(b"a=1&a=2&API-Version=x");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("api-version"), None);
        assert_eq!(p.get_ci("api-version"), Some("x"));
        assert_eq!(p.non_empty("missing"), None);
    }

    #[test]
    fn redaction() {
        let p = Params::parse(b"client_id=x&client_secret=s&client_assertion=eyJ&scope=y");
        let r = p.redacted();
        assert_eq!(r[0].1, "x");
        assert_eq!(r[1].1, "[REDACTED]");
        assert_eq!(r[2].1, "[REDACTED]");
        assert_eq!(r[3].1, "y");
    }

    #[test]
    fn path_and_encode() {
        assert_eq!(decode_path("a%2Fb+c"), "a/b+c");
        assert_eq!(decode_path("plain"), "plain");
        assert_eq!(encode("https://x/y z"), "https%3A%2F%2Fx%2Fy%20z");
        let round = Params::parse(format!("k={}", encode("a&b=c d+")).as_bytes());
        assert_eq!(round.get("k"), Some("a&b=c d+"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let p = Params::parse(&bytes);
            let _ = p.redacted();
            let _ = p.get_ci("api-version");
        }

        #[test]
        fn encode_roundtrips(s in ".{0,64}") {
            let p = Params::parse(format!("k={}", encode(&s)).as_bytes());
            prop_assert_eq!(p.get("k"), Some(s.as_str()));
        }

        #[test]
        fn decode_path_never_panics(s in ".{0,128}") {
            let _ = decode_path(&s);
        }
    }
}
