//! The subset of client-go's JSONPath used by CRD printer columns.
//!
//! Supported: `.field` (with `\.` escapes), `['field']`/`["field"]`, `.*`/`[*]`, `..`
//! (recursive descent), `[n]` (negative counts from the end), `[a:b]`/`[a:b:s]` slices,
//! `[i,j]` unions and filters `[?(@.a.b == "x")]` with `==`, `!=`, `<`, `<=`, `>`, `>=` or bare
//! existence `[?(@.a)]`. A leading `$` and surrounding `{}` are accepted. Evaluation allows
//! missing keys (as the API server's `AllowMissingKeys(true)`): a missing field or an index out
//! of range yields no result rather than an error.

use std::cmp::Ordering;

use serde_json::Value;

use crate::schema::sorted_keys;
use kube_sim_machinery::gofmt::Num;

/// A parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized column definition {path:?}: {reason}")]
pub struct JsonPathError {
    /// The offending path.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Field(String),
    Wildcard,
    Recursive,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Union(Vec<i64>),
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    left: Vec<Step>,
    op: Option<(Op, Operand)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Literal(Value),
    Path(Vec<Step>),
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parse a printer-column path such as `.spec.type` or `.status.conditions[?(@.type=="Ready")].status`.
    ///
    /// # Errors
    ///
    /// [`JsonPathError`] when the path is not valid JSONPath.
    pub fn parse(path: &str) -> Result<Self, JsonPathError> {
        let err = |reason: &str| JsonPathError {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let mut s = path.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            s = inner.trim();
        }
        let chars: Vec<char> = s.chars().collect();
        let mut p = Parser { chars, pos: 0 };
        let steps = p.steps(false).map_err(|r| err(&r))?;
        if p.pos != p.chars.len() {
            return Err(err("unexpected trailing characters"));
        }
        Ok(Self { steps })
    }

    /// All values the path selects in `root`, in document order (object keys sorted for
    /// wildcards and recursive descent).
    #[must_use]
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.steps, vec![root])
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_terminator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}' | '(' | ')' | '=' | '!' | '<' | '>'
        )
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Parse steps until the end, or (inside a filter) until an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        if self.peek() == Some('$') {
            self.pos += 1;
        }
        let mut first = true;
        loop {
            match self.peek() {
                None => break,
                Some('.') => {
                    self.pos += 1;
                    if self.peek() == Some('.') {
                        self.pos += 1;
                        steps.push(Step::Recursive);
                        if self.peek() == Some('[') {
                            continue;
                        }
                    }
                    if self.peek().is_none_or(|c| c == '.' || c == '[') && !steps.is_empty() {
                        // A lone "." (root) or trailing dot is allowed only at the start.
                        if steps.last() != Some(&Step::Recursive) {
                            return Err("empty field name".into());
                        }
                    }
                    if self.peek().is_none() {
                        break;
                    }
                    let name = self.name();
                    match name.as_str() {
                        "" => {}
                        "*" => steps.push(Step::Wildcard),
                        _ => steps.push(Step::Field(name)),
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    steps.push(self.bracket()?);
                }
                Some(c) if in_filter && (c.is_whitespace() || "=!<>)".contains(c)) => break,
                Some(c) if first && !is_terminator(c) => {
                    // Tolerate a missing leading dot ("spec.type").
                    let name = self.name();
                    steps.push(Step::Field(name));
                }
                Some(c) => return Err(format!("unexpected character {c:?}")),
            }
            first = false;
        }
        Ok(steps)
    }

    fn name(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                if let Some(next) = self.peek_at(1) {
                    out.push(next);
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                continue;
            }
            if is_terminator(c) {
                break;
            }
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn quoted(&mut self) -> Result<String, String> {
        let Some(q) = self.peek() else {
            return Err("unterminated quote".into());
        };
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == '\\' {
                if let Some(next) = self.peek() {
                    out.push(next);
                    self.pos += 1;
                }
                continue;
            }
            if c == q {
                return Ok(out);
            }
            out.push(c);
        }
        Err("unterminated quote".into())
    }

    fn bracket(&mut self) -> Result<Step, String> {
        self.skip_ws();
        match self.peek() {
            Some('?') => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() != Some('(') {
                    return Err("filter must start with ?(".into());
                }
                self.pos += 1;
                let filter = self.filter()?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err("unterminated filter".into());
                }
                self.pos += 1;
                self.close_bracket()?;
                Ok(Step::Filter(Box::new(filter)))
            }
            Some('\'' | '"') => {
                let name = self.quoted()?;
                self.close_bracket()?;
                Ok(Step::Field(name))
            }
            Some('*') => {
                self.pos += 1;
                self.close_bracket()?;
                Ok(Step::Wildcard)
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ']') {
                    self.pos += 1;
                }
                let inner: String = self.chars[start..self.pos].iter().collect();
                self.close_bracket()?;
                let inner = inner.trim();
                let int = |s: &str| -> Result<Option<i64>, String> {
                    let s = s.trim();
                    if s.is_empty() {
                        Ok(None)
                    } else {
                        s.parse::<i64>()
                            .map(Some)
                            .map_err(|_| format!("invalid array index {s:?}"))
                    }
                };
                if inner.contains(':') {
                    let parts: Vec<&str> = inner.split(':').collect();
                    if parts.len() > 3 {
                        return Err("invalid slice".into());
                    }
                    let a = int(parts[0])?;
                    let b = int(parts.get(1).copied().unwrap_or(""))?;
                    let c = int(parts.get(2).copied().unwrap_or(""))?;
                    Ok(Step::Slice(a, b, c))
                } else if inner.contains(',') {
                    let mut idx = Vec::new();
                    for part in inner.split(',') {
                        match int(part)? {
                            Some(i) => idx.push(i),
                            None => return Err("empty union member".into()),
                        }
                    }
                    Ok(Step::Union(idx))
                } else {
                    match int(inner)? {
                        Some(i) => Ok(Step::Index(i)),
                        None => Err("empty brackets".into()),
                    }
                }
            }
        }
    }

    fn close_bracket(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(']') {
            self.pos += 1;
            Ok(())
        } else {
            Err("missing ]".into())
        }
    }

    fn filter(&mut self) -> Result<Filter, String> {
        self.skip_ws();
        if self.peek() != Some('@') {
            return Err("filter must start with @".into());
        }
        self.pos += 1;
        let left = self.steps(true)?;
        self.skip_ws();
        let op = match (self.peek(), self.peek_at(1)) {
            (Some('='), Some('=')) => Some(Op::Eq),
            (Some('!'), Some('=')) => Some(Op::Ne),
            (Some('<'), Some('=')) => Some(Op::Le),
            (Some('>'), Some('=')) => Some(Op::Ge),
            (Some('<'), _) => Some(Op::Lt),
            (Some('>'), _) => Some(Op::Gt),
            _ => None,
        };
        let Some(op) = op else {
            return Ok(Filter { left, op: None });
        };
        self.pos += if matches!(op, Op::Lt | Op::Gt) { 1 } else { 2 };
        self.skip_ws();
        let right = match self.peek() {
            Some('\'' | '"') => Operand::Literal(Value::String(self.quoted()?)),
            Some('@') => {
                self.pos += 1;
                Operand::Path(self.steps(true)?)
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| !c.is_whitespace() && c != ')') {
                    self.pos += 1;
                }
                let lit: String = self.chars[start..self.pos].iter().collect();
                let v = match lit.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "nil" | "null" => Value::Null,
                    other => serde_json::from_str::<Value>(other)
                        .ok()
                        .filter(Value::is_number)
                        .ok_or_else(|| format!("unrecognized literal {other:?}"))?,
                };
                Operand::Literal(v)
            }
        };
        Ok(Filter {
            left,
            op: Some((op, right)),
        })
    }
}

fn eval<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            apply(step, v, &mut next);
        }
        current = next;
    }
    current
}

fn index_of(i: i64, len: usize) -> Option<usize> {
    let len_i = i64::try_from(len).ok()?;
    let idx = if i < 0 { i + len_i } else { i };
    usize::try_from(idx).ok().filter(|u| *u < len)
}

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(child) = v.as_object().and_then(|m| m.get(name)) {
                out.push(child);
            }
        }
        Step::Wildcard => match v {
            Value::Object(m) => {
                for k in sorted_keys(m) {
                    if let Some(child) = m.get(k) {
                        out.push(child);
                    }
                }
            }
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Step::Recursive => descendants(v, out),
        Step::Index(i) => {
            if let Some(a) = v.as_array()
                && let Some(idx) = index_of(*i, a.len())
            {
                out.push(&a[idx]);
            }
        }
        Step::Union(idx) => {
            if let Some(a) = v.as_array() {
                for i in idx {
                    if let Some(u) = index_of(*i, a.len()) {
                        out.push(&a[u]);
                    }
                }
            }
        }
        Step::Slice(start, end, step_by) => {
            let Some(a) = v.as_array() else { return };
            let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
            let norm = |x: i64| if x < 0 { (x + len).max(0) } else { x.min(len) };
            let s = norm(start.unwrap_or(0));
            let e = norm(end.unwrap_or(len));
            let by = step_by.unwrap_or(1).max(1);
            let mut i = s;
            while i < e {
                if let Ok(u) = usize::try_from(i)
                    && let Some(item) = a.get(u)
                {
                    out.push(item);
                }
                i += by;
            }
        }
        Step::Filter(f) => {
            let candidates: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Object(m) => sorted_keys(m)
                    .into_iter()
                    .filter_map(|k| m.get(k))
                    .collect(),
                _ => Vec::new(),
            };
            for c in candidates {
                if matches_filter(f, c) {
                    out.push(c);
                }
            }
        }
    }
}

fn descendants<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Object(m) => {
            for k in sorted_keys(m) {
                if let Some(child) = m.get(k) {
                    descendants(child, out);
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                descendants(child, out);
            }
        }
        _ => {}
    }
}

fn matches_filter(f: &Filter, item: &Value) -> bool {
    let lefts = eval(&f.left, vec![item]);
    let Some((op, right)) = &f.op else {
        return !lefts.is_empty();
    };
    let rights: Vec<&Value> = match right {
        Operand::Literal(v) => vec![v],
        Operand::Path(p) => eval(p, vec![item]),
    };
    lefts.iter().any(|l| {
        rights.iter().any(|r| {
            let ord = compare(l, r);
            match op {
                Op::Eq => ord == Some(Ordering::Equal),
                Op::Ne => ord.is_some_and(|o| o != Ordering::Equal),
                Op::Lt => ord == Some(Ordering::Less),
                Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                Op::Gt => ord == Some(Ordering::Greater),
                Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            }
        })
    })
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => {
            Num::of(x).as_f64().partial_cmp(&Num::of(y).as_f64())
        }
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap_or_else(|e| panic!("{e}"))
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn selections() {
        let doc = json!({
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"type": 0, "list": [{"c": 1}, {"c": 2}, {"d": 3}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Synced", "status": "False"}
            ]}
        });
        let cases: Vec<(&str, Vec<Value>)> = vec![
            (".spec.type", vec![json!(0)]),
            ("{.spec.type}", vec![json!(0)]),
            ("$.spec.type", vec![json!(0)]),
            ("spec.type", vec![json!(0)]),
            (".spec.missing", vec![]),
            (".spec.type.deeper", vec![]),
            (".status.conditions[0].type", vec![json!("Ready")]),
            (".status.conditions[-1].type", vec![json!("Synced")]),
            (".status.conditions[5].type", vec![]),
            (".spec.list[*].c", vec![json!(1), json!(2)]),
            (".spec.list[0:2].c", vec![json!(1), json!(2)]),
            (".spec.list[0,2].d", vec![json!(3)]),
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                vec![json!("True")],
            ),
            (
                ".status.conditions[?(@.type=='Synced')].status",
                vec![json!("False")],
            ),
            (
                ".status.conditions[?(@.type!='Ready')].type",
                vec![json!("Synced")],
            ),
            (".spec.list[?(@.c > 1)].c", vec![json!(2)]),
            (".spec.list[?(@.d)].d", vec![json!(3)]),
            (
                ".metadata.labels.app\\.kubernetes\\.io/name",
                vec![json!("web")],
            ),
            (
                ".metadata.labels['app.kubernetes.io/name']",
                vec![json!("web")],
            ),
            ("..c", vec![json!(1), json!(2)]),
            (
                ".metadata.*",
                vec![json!({"app.kubernetes.io/name": "web"}), json!("x")],
            ),
        ];
        for (p, want) in cases {
            assert_eq!(find(p, &doc), want, "{p}");
        }
    }

    #[test]
    fn parse_errors() {
        for bad in [
            ".a[",
            ".a[x]",
            ".a[?(@.b==)]",
            ".a[?(b)]",
            ".a]",
            ".a[1,]",
            ".a.",
            "a b",
            ".a[1:2:3:4]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }
}
