//! Go formatting rules the API server's messages depend on.
//!
//! Kubernetes builds its error texts with Go's `fmt` (`%q`, `%v`, `%#v`) and table cells with
//! `fmt.Fprint` and `encoding/json`. The helpers here reproduce those renderings for values held
//! as [`serde_json::Value`], using the number model of the API server's unstructured decoder:
//! integral JSON literals are `int64`, everything else is `float64`.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// A JSON number as the API server's unstructured decoder sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    /// An integer literal that fits `int64`.
    Int(i64),
    /// Anything else (fractions, exponents, integers beyond `int64`).
    Float(f64),
}

impl Num {
    /// Classify a serde_json number (Go: `json.Number.Int64()` first, then `Float64()`).
    pub(crate) fn of(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i)
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// The value as `float64`.
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Go `strconv.Quote` / `%q` for a string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximation of Go's `strconv.IsPrint` (graphic characters and the ASCII space).
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    // Unassigned / format characters commonly rejected by Go.
    !matches!(c as u32, 0xad | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2064 | 0xfeff | 0xfff9..=0xfffb)
}

/// Go `%v` (and `fmt.Fprint`) of a `float64`: `strconv.FormatFloat(f, 'g', -1, 64)`, i.e. the
/// shortest representation, in exponent form when the decimal exponent is < -4 or >= 6
/// (`1e+06`, `1.5e-05`, `123456.7`).
pub(crate) fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits via Rust's `{:e}` (also shortest).
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // %v uses %g with the shortest precision: exponent form if exp < -4 || exp >= 6.
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Go `%v` of a number in the unstructured model.
pub(crate) fn num_v(n: Num) -> String {
    match n {
        Num::Int(i) => i.to_string(),
        Num::Float(f) => float_v(f),
    }
}

/// Go `%#v` of an unstructured value (as it appears inside `interface{}`).
pub(crate) fn sharp_v(v: &Value) -> String {
    let mut out = String::new();
    sharp_v_into(v, &mut out, true);
    out
}

fn sharp_v_into(v: &Value, out: &mut String, top: bool) {
    match v {
        Value::Null => out.push_str("interface {}(nil)"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => out.push_str(&num_v(Num::of(n))),
        Value::String(s) => out.push_str(&quote(s)),
        Value::Array(a) => {
            out.push_str("[]interface {}{");
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                sharp_v_into(item, out, false);
            }
            out.push('}');
        }
        Value::Object(m) => {
            out.push_str("map[string]interface {}{");
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quote(k));
                out.push(':');
                if let Some(item) = m.get(k) {
                    sharp_v_into(item, out, false);
                }
            }
            out.push('}');
        }
    }
    let _ = top;
}

/// Go `fmt.Fprint` of an unstructured scalar or container (used by `jsonpath` text output).
pub(crate) fn print_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => num_v(Num::of(n)),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(print_v).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", m.get(k).map(print_v).unwrap_or_default()))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go `encoding/json.Marshal` of an unstructured value: sorted keys, no spaces, HTML-safe
/// escaping, Go float formatting.
pub(crate) fn json_marshal(v: &Value) -> String {
    let mut out = String::new();
    json_into(v, &mut out);
    out
}

fn json_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => match Num::of(n) {
            Num::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Num::Float(f) => out.push_str(&json_float(f)),
        },
        Value::String(s) => json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_into(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                if let Some(item) = m.get(k) {
                    json_into(item, out);
                }
            }
            out.push('}');
        }
    }
}

/// Go's JSON float encoding: `'f'` format unless the exponent is < -6 or >= 21, then `'e'`
/// with a two-digit minimum exponent trimmed to at least one digit (`1e+21`, `1e-07`).
fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Exponent form; Go's encoder then shortens `e-07` to `e-7`.
        let s = float_v(f);
        if let Some(pos) = s.find("e-0") {
            return format!("{}e-{}", &s[..pos], &s[pos + 3..]);
        }
        return s;
    }
    // Shortest 'f' representation.
    let s = format!("{f}");
    if s.contains('e') { float_v(f) } else { s }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting() {
        for (s, want) in [
            ("abc", r#""abc""#),
            ("a\"b", r#""a\"b""#),
            ("a\\b", r#""a\\b""#),
            ("tab\there", r#""tab\there""#),
            ("nl\n", r#""nl\n""#),
            ("\u{1}", r#""\x01""#),
            ("héllo", r#""héllo""#),
            ("zero\u{200b}width", r#""zero\u200bwidth""#),
        ] {
            assert_eq!(quote(s), want, "{s:?}");
        }
    }

    #[test]
    fn floats_like_go_v() {
        for (f, want) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (100_000.0, "100000"),
            (1e6, "1e+06"),
            (123_456_789.0, "1.23456789e+08"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.1, "0.1"),
            (0.0, "0"),
            (123_456.7, "123456.7"),
            (1_234_567.0, "1.234567e+06"),
        ] {
            assert_eq!(float_v(f), want, "{f}");
        }
    }

    #[test]
    fn sharp_v_values() {
        assert_eq!(
            sharp_v(&json!({"b": 1, "a": "x"})),
            r#"map[string]interface {}{"a":"x", "b":1}"#
        );
        assert_eq!(
            sharp_v(&json!(["a", 1, null, true])),
            r#"[]interface {}{"a", 1, interface {}(nil), true}"#
        );
        assert_eq!(sharp_v(&json!(1.5)), "1.5");
    }

    #[test]
    fn json_like_go() {
        assert_eq!(
            json_marshal(&json!({"b": [1, 2.5, 1e21], "a": "<&>"})),
            r#"{"a":"\u003c\u0026\u003e","b":[1,2.5,1e+21]}"#
        );
        assert_eq!(json_marshal(&json!(1.0)), "1");
        assert_eq!(json_marshal(&json!(0.000_000_1)), "1e-7");
        assert_eq!(json_marshal(&json!(1_000_000.0)), "1000000");
    }

    #[test]
    fn print_like_fprint() {
        assert_eq!(print_v(&json!("s")), "s");
        assert_eq!(print_v(&json!(3)), "3");
        assert_eq!(print_v(&json!(true)), "true");
        assert_eq!(print_v(&json!(2.0)), "2");
    }

    #[test]
    fn numbers_classify() {
        let Value::Number(n) = json!(5) else {
            unreachable!()
        };
        assert_eq!(Num::of(&n), Num::Int(5));
        let Value::Number(n) = json!(5.0) else {
            unreachable!()
        };
        assert_eq!(Num::of(&n), Num::Float(5.0));
        let Value::Number(n) = json!(u64::MAX) else {
            unreachable!()
        };
        assert!(matches!(Num::of(&n), Num::Float(_)));
    }
}
