//! String formats checked by the CRD validator.
//!
//! The API server keeps only the formats of its `supportedFormats` list (after removing `-`):
//! every other `format` — including `int32`, `int64`, `float` and `double` — is stripped before
//! validation, so it constrains nothing (apiextensions `StripUnsupportedFormatsPostProcess`).
//! The supported ones only apply to string values.
//!
//! Checks follow `k8s.io/kube-openapi/pkg/validation/strfmt`; regex-based ones are hand-coded.
//! `email`, `uri` and `hostname` are approximations of Go's `net/mail`, `net/url` and the
//! strfmt hostname regex.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Canonical (dash-less) name of a supported format, or `None` if the API server strips it.
pub(crate) fn supported(format: &str) -> Option<String> {
    let normalized = format.replace('-', "");
    const SUPPORTED: &[&str] = &[
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
    ];
    SUPPORTED
        .contains(&normalized.as_str())
        .then_some(normalized)
}

/// Whether `s` is valid for the (supported, dash-less) format.
pub(crate) fn is_valid(format: &str, s: &str) -> bool {
    match format {
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_uri(s),
        "email" => is_email(s),
        "hostname" => is_hostname(s),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.contains(':') && s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "uuid" => is_uuid(s, None),
        "uuid3" => is_uuid(s, Some(3)),
        "uuid4" => is_uuid(s, Some(4)),
        "uuid5" => is_uuid(s, Some(5)),
        "isbn" => is_isbn10(s) || is_isbn13(s),
        "isbn10" => is_isbn10(s),
        "isbn13" => is_isbn13(s),
        "creditcard" => is_creditcard(s),
        "ssn" => is_ssn(s),
        "hexcolor" => is_hexcolor(s),
        "rgbcolor" => is_rgbcolor(s),
        "byte" => is_base64(s),
        "date" => is_date(s),
        "duration" => is_duration(s),
        "datetime" => is_datetime(s),
        // "password" and anything else: any string.
        _ => true,
    }
}

fn is_uri(s: &str) -> bool {
    // net/url.ParseRequestURI: an absolute URI (scheme:...) or an absolute path.
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    match s.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn is_email(s: &str) -> bool {
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        _ => s,
    };
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !addr.chars().any(char::is_whitespace)
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.chars().count() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    })
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_mac(s: &str) -> bool {
    // net.ParseMAC: EUI-48/EUI-64/20-octet forms with ':' or '-' between octets, or
    // '.'-separated groups of four hex digits.
    let hex_group = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    for sep in [':', '-'] {
        let parts: Vec<&str> = s.split(sep).collect();
        if [6, 8, 20].contains(&parts.len()) && parts.iter().all(|p| hex_group(p, 2)) {
            return true;
        }
    }
    let parts: Vec<&str> = s.split('.').collect();
    [3, 4, 10].contains(&parts.len()) && parts.iter().all(|p| hex_group(p, 4))
}

fn is_uuid(s: &str, version: Option<u8>) -> bool {
    // (?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?V[0-9a-f]{3}-?[89ab]?[0-9a-f]{3}-?[0-9a-f]{12}$
    let compact: String = s.chars().filter(|c| *c != '-').collect();
    if compact.len() != 32 || !compact.bytes().all(|b| b.is_ascii_hexdigit()) || !dashes_in_place(s)
    {
        return false;
    }
    match version {
        None => true,
        Some(v) => {
            let b = compact.as_bytes();
            let version_ok = b[12] == b'0' + v;
            let variant_ok =
                v == 3 || matches!(b[16].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b');
            version_ok && variant_ok
        }
    }
}

/// Dashes may only appear at the canonical group boundaries (each optional).
fn dashes_in_place(s: &str) -> bool {
    let mut hex_seen = 0;
    let boundaries = [8, 12, 16, 20];
    let mut last_was_dash = false;
    for c in s.chars() {
        if c == '-' {
            if last_was_dash || !boundaries.contains(&hex_seen) {
                return false;
            }
            last_was_dash = true;
        } else {
            hex_seen += 1;
            last_was_dash = false;
        }
    }
    !last_was_dash
}

fn isbn_digits(s: &str) -> String {
    s.chars().filter(|c| *c != '-' && *c != ' ').collect()
}

fn is_isbn10(s: &str) -> bool {
    let d = isbn_digits(s);
    if d.len() != 10 {
        return false;
    }
    let mut sum = 0u32;
    for (i, c) in d.chars().enumerate() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'X' if i == 9 => 10,
            _ => return false,
        };
        sum += (i as u32 + 1) * v;
    }
    sum.is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let d = isbn_digits(s);
    if d.len() != 13 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = d
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    sum.is_multiple_of(10)
}

fn is_creditcard(s: &str) -> bool {
    // strfmt strips non-digits, then matches the major card number patterns.
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    let starts = |p: &str| d.starts_with(p);
    match d.len() {
        13 | 16 if starts("4") => true,
        16 if (51..=55).any(|p| starts(&p.to_string())) => true,
        16 if starts("6011") || starts("65") => true,
        15 if starts("34") || starts("37") => true,
        14 if ["300", "301", "302", "303", "304", "305", "36", "38"]
            .iter()
            .any(|p| starts(p)) =>
        {
            true
        }
        15 if starts("2131") || starts("1800") => true,
        16 if starts("35") => true,
        _ => false,
    }
}

fn is_ssn(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    match b.len() {
        9 => digits(b),
        10 => {
            (digits(&b[..3]) && matches!(b[3], b'-' | b' ') && digits(&b[4..]))
                || (digits(&b[..5]) && matches!(b[5], b'-' | b' ') && digits(&b[6..]))
        }
        11 => {
            digits(&b[..3])
                && matches!(b[3], b'-' | b' ')
                && digits(&b[4..6])
                && matches!(b[6], b'-' | b' ')
                && digits(&b[7..])
        }
        _ => false,
    }
}

fn is_hexcolor(s: &str) -> bool {
    let h = s.strip_prefix('#').unwrap_or(s);
    (h.len() == 3 || h.len() == 6) && h.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_rgbcolor(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split(',').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            let p = p.trim();
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && !(p.len() > 1 && p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

fn is_base64(s: &str) -> bool {
    // encoding/base64.StdEncoding: padded, standard alphabet; CR/LF are ignored.
    let clean: Vec<u8> = s.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    if !clean.len().is_multiple_of(4) {
        return false;
    }
    let pad = clean.iter().rev().take_while(|b| **b == b'=').count();
    if pad > 2 {
        return false;
    }
    let body = &clean[..clean.len() - pad];
    body.iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_date(s: &str) -> bool {
    // time.Parse("2006-01-02", s)
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (
        s.get(..4).and_then(parse_digits),
        s.get(5..7).and_then(parse_digits),
        s.get(8..10).and_then(parse_digits),
    ) else {
        return false;
    };
    let Ok(year) = i16::try_from(y) else {
        return false;
    };
    let (Ok(month), Ok(day)) = (i8::try_from(m), i8::try_from(d)) else {
        return false;
    };
    jiff::civil::Date::new(year, month, day).is_ok()
}

fn is_datetime(s: &str) -> bool {
    // strfmt.ParseDateTime: RFC 3339 with optional fraction; 'T' or 't' (or ' ') separator;
    // offset 'Z'/'z' or ±hh:mm, or none (local time).
    if s.len() < 19 || !s.is_char_boundary(10) || !is_date(&s[..10]) {
        return false;
    }
    let sep = s.as_bytes()[10];
    if !matches!(sep, b'T' | b't' | b' ') {
        return false;
    }
    let Some(rest) = s.get(11..) else {
        return false;
    };
    let b = rest.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(h), Some(mi), Some(se)) = (
        rest.get(..2).and_then(parse_digits),
        rest.get(3..5).and_then(parse_digits),
        rest.get(6..8).and_then(parse_digits),
    ) else {
        return false;
    };
    if h > 23 || mi > 59 || se > 60 {
        return false;
    }
    let Some(mut tail) = rest.get(8..) else {
        return false;
    };
    if let Some(frac) = tail.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        tail = &frac[n..];
    }
    match tail {
        "" | "Z" | "z" => true,
        t if t.len() == 6 && (t.starts_with('+') || t.starts_with('-')) => {
            let tb = t.as_bytes();
            tb[3] == b':'
                && t.get(1..3).and_then(parse_digits).is_some_and(|x| x <= 23)
                && t.get(4..6).and_then(parse_digits).is_some_and(|x| x <= 59)
        }
        _ => false,
    }
}

fn is_duration(s: &str) -> bool {
    // Go time.ParseDuration syntax ("1h30m", "-1.5s", "0"), or strfmt's "<n> <unit>" form.
    if is_go_duration(s) {
        return true;
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() == 2 && parse_digits(parts[0]).is_some() {
        let unit = parts[1].trim_end_matches('s');
        return [
            "n",
            "ns",
            "nano",
            "nanosecond",
            "u",
            "us",
            "µs",
            "micro",
            "microsecond",
            "m",
            "ms",
            "milli",
            "millisecond",
            "",
            "sec",
            "second",
            "min",
            "minute",
            "h",
            "hr",
            "hour",
            "d",
            "day",
            "w",
            "wk",
            "week",
        ]
        .contains(&unit);
    }
    false
}

fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut num_len = int_len;
        let mut frac_len = 0;
        if rest[num_len..].starts_with('.') {
            frac_len = rest[num_len + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            num_len += 1 + frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(*u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_list() {
        assert_eq!(supported("date-time").as_deref(), Some("datetime"));
        assert_eq!(supported("int32"), None);
        assert_eq!(supported("int64"), None);
        assert_eq!(supported("double"), None);
        assert_eq!(supported("byte").as_deref(), Some("byte"));
        assert_eq!(supported("k8s-short-name"), None);
    }

    #[test]
    fn format_checks() {
        let cases = [
            ("datetime", "2024-01-02T03:04:05Z", true),
            ("datetime", "2024-01-02T03:04:05.123456+02:00", true),
            ("datetime", "2024-01-02t03:04:05z", true),
            ("datetime", "2024-01-02T03:04:05", true),
            ("datetime", "2024-13-02T03:04:05Z", false),
            ("datetime", "yesterday", false),
            ("datetime", "2024-01-01T00:00:0\u{e9}", false),
            ("datetime", "2024-01-01T00:00:00\u{e9}", false),
            ("date", "2024-01-\u{e9}", false),
            ("date", "2024-02-29", true),
            ("date", "2023-02-29", false),
            ("date", "2024-2-29", false),
            ("byte", "aGVsbG8=", true),
            ("byte", "aGVsbG8", false),
            ("byte", "a$==", false),
            ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
            ("uuid", "123E4567E89B12D3A456426614174000", true),
            ("uuid", "123e4567-e89b-12d3-a456-42661417400", false),
            ("uuid", "123e-4567e89b-12d3-a456-426614174000", false),
            ("uuid4", "123e4567-e89b-42d3-a456-426614174000", true),
            ("uuid4", "123e4567-e89b-12d3-a456-426614174000", false),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "10.0.0", false),
            ("ipv6", "fe80::1", true),
            ("ipv6", "10.0.0.1", false),
            ("cidr", "10.0.0.0/8", true),
            ("cidr", "10.0.0.0/33", false),
            ("mac", "00:1a:2b:3c:4d:5e", true),
            ("mac", "001a.2b3c.4d5e", true),
            ("mac", "00:1a:2b", false),
            ("hostname", "example.com", true),
            ("hostname", "-bad.com", false),
            ("hexcolor", "#ffF", true),
            ("hexcolor", "#ff", false),
            ("rgbcolor", "rgb(255, 0, 10)", true),
            ("rgbcolor", "rgb(256,0,0)", false),
            ("ssn", "123-45-6789", true),
            ("ssn", "12-345-6789", false),
            ("bsonobjectid", "507f1f77bcf86cd799439011", true),
            ("bsonobjectid", "507f1f77", false),
            ("isbn10", "0321751043", true),
            ("isbn13", "978-0321751041", true),
            ("isbn", "0321751044", false),
            ("creditcard", "4111 1111 1111 1111", true),
            ("creditcard", "1234", false),
            ("duration", "1h30m", true),
            ("duration", "1.5s", true),
            ("duration", "3 days", true),
            ("duration", "forever", false),
            ("email", "a@b.c", true),
            ("email", "Name <a@b.c>", true),
            ("email", "nope", false),
            ("uri", "https://x.y/z", true),
            ("uri", "/abs/path", true),
            ("uri", "rel/path", false),
            ("password", "anything", true),
        ];
        for (f, s, want) in cases {
            assert_eq!(is_valid(f, s), want, "{f} {s}");
        }
    }
}
