//! Percent-encoding for `application/x-www-form-urlencoded` bodies, query strings and path segments.
//!
//! Only the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) pass through; everything else is `%XX`
//! (UTF-8 bytes, upper-case hex). Entra, IMDS and ARM all accept this form.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Percent-encode a form or query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    encode_into(&mut out, s);
    out
}

/// Percent-encode one path segment (the same rule; `/` never survives).
pub(crate) fn encode_path_segment(s: &str) -> String {
    encode(s)
}

/// `k1=v1&k2=v2` with both sides encoded.
pub(crate) fn pairs(items: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(
            encode("https://management.azure.com/"),
            "https%3A%2F%2Fmanagement.azure.com%2F"
        );
        assert_eq!(encode("a b+c&d=é~"), "a%20b%2Bc%26d%3D%C3%A9~");
        assert_eq!(pairs(&[("a", "1"), ("b c", "x/y")]), "a=1&b%20c=x%2Fy");
        assert_eq!(encode_path_segment("../x"), "..%2Fx");
    }

    proptest::proptest! {
        #[test]
        fn output_is_unreserved_or_escape(s in ".*") {
            let e = encode(&s);
            proptest::prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        }
    }
}
