//! Go formatting and value semantics the API server's messages depend on.
//!
//! Kubernetes builds its error texts with Go's `fmt` (`%q`, `%v`, `%#v`, `%T`), `encoding/json`
//! (`json.Marshal`, `json.UnmarshalTypeError`) and `utilerrors.NewAggregate`. The helpers here
//! reproduce those renderings for values held as [`serde_json::Value`]. This module is the one
//! home of these rules for all kube-sim crates.
//!
//! Numbers follow the model of apimachinery's `util/json` decoder, which both the unstructured
//! decoder and `strategicpatch` use: an integral JSON literal that fits `int64` is an `int64`,
//! everything else (fractions, exponents, integers beyond `int64`) is a `float64`
//! (see [`Num`]).

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// A JSON number as apimachinery's `util/json` decoder sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// An integer literal that fits `int64`.
    Int(i64),
    /// Anything else (fractions, exponents, integers beyond `int64`).
    Float(f64),
}

impl Num {
    /// Classify a serde_json number (Go: `json.Number.Int64()` first, then `Float64()`).
    #[must_use]
    pub fn of(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i)
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// The value as `float64`.
    #[must_use]
    pub fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Go's `strconv.Quote` (what `%q` prints for a string): double quotes, `"` and `\` escaped,
/// the short C escapes for common control characters, `\x..` for the other ASCII control
/// characters, `\u....`/`\U........` for characters Go does not consider printable, everything
/// else verbatim.
#[must_use]
pub fn go_quote(s: &str) -> String {
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

/// Go's `%q` of a `[]string`: `["a" "b"]`.
#[must_use]
pub fn go_quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

/// Go `%v` (and `fmt.Fprint`) of a `float64`: `strconv.FormatFloat(f, 'g', -1, 64)`, i.e. the
/// shortest representation, in exponent form when the decimal exponent is < -4 or >= 6
/// (`1e+06`, `1.5e-05`, `123456.7`).
#[must_use]
pub fn go_float(f: f64) -> String {
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

/// Go `%v` of a number in the [`Num`] model.
#[must_use]
pub fn go_num(n: Num) -> String {
    match n {
        Num::Int(i) => i.to_string(),
        Num::Float(f) => go_float(f),
    }
}

/// Go `%v` (and `fmt.Fprint`) of the `interface{}` a JSON value decodes to:
/// `map[a:1 b:x]`, `[a b]`, `<nil>`, `1e+06`.
#[must_use]
pub fn go_display(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_num(Num::of(n)),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_display).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", m.get(k).map(go_display).unwrap_or_default()))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go `%#v` of a decoded value (as it appears inside `interface{}`):
/// `map[string]interface {}{"a":"x", "b":1}`, `[]interface {}{"a", interface {}(nil)}`.
#[must_use]
pub fn go_syntax(v: &Value) -> String {
    let mut out = String::new();
    go_syntax_into(v, &mut out);
    out
}

fn go_syntax_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("interface {}(nil)"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => out.push_str(&go_num(Num::of(n))),
        Value::String(s) => out.push_str(&go_quote(s)),
        Value::Array(a) => {
            out.push_str("[]interface {}{");
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                go_syntax_into(item, out);
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
                out.push_str(&go_quote(k));
                out.push(':');
                if let Some(item) = m.get(k) {
                    go_syntax_into(item, out);
                }
            }
            out.push('}');
        }
    }
}

/// The Go type of a decoded JSON value (`%T`, `reflect.TypeOf(v)`), for error texts:
/// `int64` or `float64` per [`Num`], `[]interface {}`, `map[string]interface {}`, `<nil>`.
#[must_use]
pub fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) => match Num::of(n) {
            Num::Int(_) => "int64",
            Num::Float(_) => "float64",
        },
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The name `encoding/json` gives a JSON value's kind in `UnmarshalTypeError`
/// (`null`, `bool`, `number`, `string`, `array`, `object`).
#[must_use]
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `json.UnmarshalTypeError.Error()` for a top-level value:
/// `json: cannot unmarshal array into Go value of type v1.ObjectMeta`.
#[must_use]
pub fn unmarshal_type_error(v: &Value, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        json_kind(v)
    )
}

/// `json.UnmarshalTypeError.Error()` for a struct field:
/// `json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string`.
#[must_use]
pub fn unmarshal_field_type_error(
    v: &Value,
    go_struct: &str,
    field: &str,
    go_type: &str,
) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {go_struct}.{field} of type {go_type}",
        json_kind(v)
    )
}

/// Go `encoding/json.Marshal` of a decoded value: sorted keys, no spaces, HTML-safe
/// escaping, Go float formatting.
#[must_use]
pub fn json_marshal(v: &Value) -> String {
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
        let s = go_float(f);
        if let Some(pos) = s.find("e-0") {
            return format!("{}e-{}", &s[..pos], &s[pos + 3..]);
        }
        return s;
    }
    // Shortest 'f' representation.
    let s = format!("{f}");
    if s.contains('e') { go_float(f) } else { s }
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

/// Deep equality of decoded values with numbers compared by value (`1` equals `1.0`),
/// everything else structurally. Used by JSON patch `test` and schema `enum`/`uniqueItems`.
#[must_use]
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Num::of(x).as_f64() == Num::of(y).as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: no message is `""`, a single one is printed bare,
/// several are deduplicated (first occurrence kept) and printed as `[a, b]`.
pub fn aggregate_messages<I>(messages: I) -> String
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
            assert_eq!(go_quote(s), want, "{s:?}");
        }
    }

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
    fn go_quoting_and_display() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(
            go_display(&serde_json::json!({"b": [1, "x"], "a": null})),
            "map[a:<nil> b:[1 x]]"
        );
        assert_eq!(go_type_name(&serde_json::json!([])), "[]interface {}");
    }

    #[test]
    fn type_names_follow_the_number_model() {
        assert_eq!(go_type_name(&json!(1)), "int64");
        assert_eq!(go_type_name(&json!(1.5)), "float64");
        assert_eq!(go_type_name(&json!(u64::MAX)), "float64");
        assert_eq!(go_type_name(&Value::Null), "<nil>");
        assert_eq!(json_kind(&json!({})), "object");
        assert_eq!(
            unmarshal_type_error(&json!([]), "v1.ObjectMeta"),
            "json: cannot unmarshal array into Go value of type v1.ObjectMeta"
        );
        assert_eq!(
            unmarshal_field_type_error(&json!(1), "ObjectMeta", "name", "string"),
            "json: cannot unmarshal number into Go struct field ObjectMeta.name of type string"
        );
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
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn sharp_v_values() {
        assert_eq!(
            go_syntax(&json!({"b": 1, "a": "x"})),
            r#"map[string]interface {}{"a":"x", "b":1}"#
        );
        assert_eq!(
            go_syntax(&json!(["a", 1, null, true])),
            r#"[]interface {}{"a", 1, interface {}(nil), true}"#
        );
        assert_eq!(go_syntax(&json!(1.5)), "1.5");
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
        assert_eq!(go_display(&json!("s")), "s");
        assert_eq!(go_display(&json!(3)), "3");
        assert_eq!(go_display(&json!(true)), "true");
        assert_eq!(go_display(&json!(2.0)), "2");
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

    #[test]
    fn equality_compares_numbers_by_value() {
        assert!(json_equal(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_equal(&json!("1"), &json!(1)));
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
}
