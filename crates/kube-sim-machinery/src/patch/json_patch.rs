//! RFC 6902 JSON patch with the error texts of `evanphx/json-patch` (which the Kubernetes API
//! server uses and returns verbatim with status 422).

use serde_json::{Map, Value};

use super::PatchError;
use crate::gofmt::{json_equal, unmarshal_type_error};

/// Applies an RFC 6902 JSON patch (`application/json-patch+json`).
///
/// Operations `add`, `remove`, `replace`, `move`, `copy` and `test` are supported, with RFC 6901
/// pointers (`~1` is `/`, `~0` is `~`; `""` is the whole document) and `-` to append to an
/// array. The patch is all-or-nothing: on error the target is untouched and the error says
/// which operation failed, e.g.
/// `remove operation does not apply: doc is missing path: "/spec/foo": missing value` or
/// `testing value /spec/replicas failed: test failed`.
///
/// A patch that is not a list of objects is a [`PatchError::BadRequest`]; failures while
/// applying are [`PatchError::Unprocessable`]. Deviation from the Go library: `replace` of a
/// missing object member fails as RFC 6902 requires (evanphx v4 silently adds it).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::BadRequest(unmarshal_type_error(
            patch,
            "jsonpatch.Patch",
        )));
    };
    let mut parsed = Vec::with_capacity(ops.len());
    for op in ops {
        let Value::Object(op) = op else {
            return Err(PatchError::BadRequest(unmarshal_type_error(
                op,
                "jsonpatch.Operation",
            )));
        };
        parsed.push(op);
    }
    let mut doc = target.clone();
    for op in parsed {
        apply_operation(&mut doc, op).map_err(PatchError::Unprocessable)?;
    }
    Ok(doc)
}

/// Splits an RFC 6901 pointer into unescaped reference tokens; `None` if it does not start
/// with `/` (and is not empty).
fn parse_pointer(path: &str) -> Option<Vec<String>> {
    if path.is_empty() {
        return Some(Vec::new());
    }
    let rest = path.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// RFC 6901 array index: `0` or digits without a leading zero.
fn parse_index(token: &str) -> Option<usize> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |cur, t| match cur {
        Value::Object(m) => m.get(t),
        Value::Array(a) => parse_index(t).and_then(|i| a.get(i)),
        _ => None,
    })
}

fn get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |cur, t| match cur {
        Value::Object(m) => m.get_mut(t),
        Value::Array(a) => parse_index(t).and_then(move |i| a.get_mut(i)),
        _ => None,
    })
}

fn str_field<'a>(op: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    op.get(name).and_then(Value::as_str)
}

fn apply_operation(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let kind = str_field(op, "op").unwrap_or("unknown");
    match kind {
        "add" => {
            let path = str_field(op, "path")
                .ok_or_else(|| "add operation failed to decode path: missing value".to_string())?;
            let value = op
                .get("value")
                .cloned()
                .ok_or_else(|| "operation, missing value field: missing value".to_string())?;
            add(doc, path, value, "add")
        }
        "remove" => {
            let path = str_field(op, "path").ok_or_else(|| {
                "remove operation failed to decode path: missing value".to_string()
            })?;
            remove(doc, path, "remove").map(|_| ())
        }
        "replace" => {
            let path = str_field(op, "path").ok_or_else(|| {
                "replace operation failed to decode path: operation missing path field: missing value"
                    .to_string()
            })?;
            let value = op
                .get("value")
                .cloned()
                .ok_or_else(|| "operation, missing value field: missing value".to_string())?;
            replace(doc, path, value)
        }
        "move" => {
            let from = str_field(op, "from").ok_or_else(|| {
                "move operation failed to decode from: operation, missing from field: missing value"
                    .to_string()
            })?;
            let path = str_field(op, "path").ok_or_else(|| {
                "move operation failed to decode path: operation missing path field: missing value"
                    .to_string()
            })?;
            if path != from && path.starts_with(from) && path[from.len()..].starts_with('/') {
                return Err(format!(
                    "move operation does not apply: from path {from} is a prefix of path {path}"
                ));
            }
            let exists =
                parse_pointer(from).is_some_and(|t| !t.is_empty() && get(doc, &t).is_some());
            if !exists {
                return Err(format!(
                    "move operation does not apply: doc is missing from path: {from}: missing value"
                ));
            }
            let value = remove(doc, from, "move")?;
            add(doc, path, value, "move")
        }
        "copy" => {
            let from = str_field(op, "from").ok_or_else(|| {
                "copy operation failed to decode from: operation, missing from field: missing value"
                    .to_string()
            })?;
            let path = str_field(op, "path")
                .ok_or_else(|| "copy operation failed to decode path: missing value".to_string())?;
            let tokens = parse_pointer(from).ok_or_else(|| {
                format!(
                    "copy operation does not apply: doc is missing from path: {from}: missing value"
                )
            })?;
            let value = get(doc, &tokens).cloned().ok_or_else(|| {
                format!(
                    "copy operation does not apply: doc is missing from path: {from}: missing value"
                )
            })?;
            add(doc, path, value, "copy")
        }
        "test" => {
            let path = str_field(op, "path").ok_or_else(|| {
                "test operation failed to decode path: operation missing path field: missing value"
                    .to_string()
            })?;
            let tokens = parse_pointer(path).ok_or_else(|| {
                format!("test operation does not apply: is missing path: {path}: missing value")
            })?;
            let expected = op.get("value").unwrap_or(&Value::Null);
            match get(doc, &tokens) {
                Some(actual) if json_equal(actual, expected) => Ok(()),
                None if tokens.len() > 1 && get(doc, &tokens[..tokens.len() - 1]).is_none() => {
                    Err(format!(
                        "test operation does not apply: is missing path: {path}: missing value"
                    ))
                }
                _ => Err(format!("testing value {path} failed: test failed")),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn add(doc: &mut Value, path: &str, value: Value, opname: &str) -> Result<(), String> {
    let missing = || {
        if opname == "add" {
            format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
        } else {
            format!(
                "{opname} operation does not apply: doc is missing destination path: {path}: missing value"
            )
        }
    };
    let tokens = parse_pointer(path).ok_or_else(missing)?;
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parents).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let idx = parse_index(last).ok_or_else(|| {
                format!(
                    "error in {opname} for path: '{path}': value was not a proper array index: '{last}'"
                )
            })?;
            if idx > a.len() {
                return Err(format!(
                    "error in {opname} for path: '{path}': Unable to access invalid index: {idx}: invalid index referenced"
                ));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

/// Removes and returns the value at `path`.
fn remove(doc: &mut Value, path: &str, opname: &str) -> Result<Value, String> {
    let missing = || {
        if opname == "remove" {
            format!(
                "remove operation does not apply: doc is missing path: \"{path}\": missing value"
            )
        } else {
            format!(
                "{opname} operation does not apply: doc is missing from path: {path}: missing value"
            )
        }
    };
    let tokens = parse_pointer(path).ok_or_else(missing)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err(missing());
    };
    match get_mut(doc, parents).ok_or_else(missing)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| {
            format!(
                "error in {opname} for path: '{path}': Unable to remove nonexistent key: {last}: missing value"
            )
        }),
        Value::Array(a) => match parse_index(last) {
            Some(idx) if idx < a.len() => Ok(a.remove(idx)),
            _ => Err(format!(
                "error in {opname} for path: '{path}': Unable to access invalid index: {last}: invalid index referenced"
            )),
        },
        _ => Err(missing()),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let missing_path =
        || format!("replace operation does not apply: doc is missing path: {path}: missing value");
    let missing_key =
        || format!("replace operation does not apply: doc is missing key: {path}: missing value");
    let tokens = parse_pointer(path).ok_or_else(missing_path)?;
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parents).ok_or_else(missing_path)? {
        Value::Object(m) => match m.get_mut(last) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(missing_key()),
        },
        Value::Array(a) => match parse_index(last).and_then(|i| a.get_mut(i)) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(missing_key()),
        },
        _ => Err(missing_path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(doc: Value, patch: Value) -> Value {
        json_patch(&doc, &patch).unwrap_or_else(|e| panic!("{patch}: {e}"))
    }

    fn err(doc: Value, patch: Value) -> PatchError {
        match json_patch(&doc, &patch) {
            Ok(v) => panic!("{patch} unexpectedly gave {v}"),
            Err(e) => e,
        }
    }

    /// RFC 6902 appendix A.1 to A.16.
    #[test]
    fn rfc6902_appendix_a() {
        let cases: Vec<(Value, Value, Option<Value>)> = vec![
            // A.1 add an object member
            (
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/baz","value":"qux"}]),
                Some(json!({"baz":"qux","foo":"bar"})),
            ),
            // A.2 add an array element
            (
                json!({"foo":["bar","baz"]}),
                json!([{"op":"add","path":"/foo/1","value":"qux"}]),
                Some(json!({"foo":["bar","qux","baz"]})),
            ),
            // A.3 remove an object member
            (
                json!({"baz":"qux","foo":"bar"}),
                json!([{"op":"remove","path":"/baz"}]),
                Some(json!({"foo":"bar"})),
            ),
            // A.4 remove an array element
            (
                json!({"foo":["bar","qux","baz"]}),
                json!([{"op":"remove","path":"/foo/1"}]),
                Some(json!({"foo":["bar","baz"]})),
            ),
            // A.5 replace a value
            (
                json!({"baz":"qux","foo":"bar"}),
                json!([{"op":"replace","path":"/baz","value":"boo"}]),
                Some(json!({"baz":"boo","foo":"bar"})),
            ),
            // A.6 move a value
            (
                json!({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}),
                json!([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]),
                Some(json!({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})),
            ),
            // A.7 move an array element
            (
                json!({"foo":["all","grass","cows","eat"]}),
                json!([{"op":"move","from":"/foo/1","path":"/foo/3"}]),
                Some(json!({"foo":["all","cows","eat","grass"]})),
            ),
            // A.8 test a value: success
            (
                json!({"baz":"qux","foo":["a",2,"c"]}),
                json!([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]),
                Some(json!({"baz":"qux","foo":["a",2,"c"]})),
            ),
            // A.9 test a value: error
            (
                json!({"baz":"qux"}),
                json!([{"op":"test","path":"/baz","value":"bar"}]),
                None,
            ),
            // A.10 add a nested member object
            (
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/child","value":{"grandchild":{}}}]),
                Some(json!({"foo":"bar","child":{"grandchild":{}}})),
            ),
            // A.11 ignoring unrecognized elements
            (
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/baz","value":"qux","xyz":123}]),
                Some(json!({"foo":"bar","baz":"qux"})),
            ),
            // A.12 adding to a nonexistent target
            (
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/baz/bat","value":"qux"}]),
                None,
            ),
            // A.14 ~ escape ordering
            (
                json!({"/":9,"~1":10}),
                json!([{"op":"test","path":"/~01","value":10}]),
                Some(json!({"/":9,"~1":10})),
            ),
            // A.15 comparing strings and numbers
            (
                json!({"/":9,"~1":10}),
                json!([{"op":"test","path":"/~01","value":"10"}]),
                None,
            ),
            // A.16 adding an array value
            (
                json!({"foo":["bar"]}),
                json!([{"op":"add","path":"/foo/-","value":["abc","def"]}]),
                Some(json!({"foo":["bar",["abc","def"]]})),
            ),
        ];
        for (doc, patch, want) in cases {
            match want {
                Some(want) => assert_eq!(ok(doc, patch.clone()), want, "{patch}"),
                None => {
                    let e = err(doc, patch);
                    assert_eq!(e.status_code(), 422);
                }
            }
        }
    }

    #[test]
    fn error_texts() {
        let doc = json!({"spec": {"replicas": 1, "list": [1, 2]}});
        let cases: Vec<(Value, &str)> = vec![
            (
                json!([{"op":"remove","path":"/spec/foo/bar"}]),
                "remove operation does not apply: doc is missing path: \"/spec/foo/bar\": missing value",
            ),
            (
                json!([{"op":"remove","path":"/spec/foo"}]),
                "error in remove for path: '/spec/foo': Unable to remove nonexistent key: foo: missing value",
            ),
            (
                json!([{"op":"add","path":"/spec/foo/bar","value":1}]),
                "add operation does not apply: doc is missing path: \"/spec/foo/bar\": missing value",
            ),
            (
                json!([{"op":"replace","path":"/spec/foo","value":1}]),
                "replace operation does not apply: doc is missing key: /spec/foo: missing value",
            ),
            (
                json!([{"op":"replace","path":"/x/foo","value":1}]),
                "replace operation does not apply: doc is missing path: /x/foo: missing value",
            ),
            (
                json!([{"op":"test","path":"/spec/replicas","value":2}]),
                "testing value /spec/replicas failed: test failed",
            ),
            (
                json!([{"op":"add","path":"/spec/list/5","value":1}]),
                "error in add for path: '/spec/list/5': Unable to access invalid index: 5: invalid index referenced",
            ),
            (
                json!([{"op":"remove","path":"/spec/list/2"}]),
                "error in remove for path: '/spec/list/2': Unable to access invalid index: 2: invalid index referenced",
            ),
            (
                json!([{"op":"move","from":"/nope","path":"/x"}]),
                "move operation does not apply: doc is missing from path: /nope: missing value",
            ),
            (
                json!([{"op":"move","from":"/spec","path":"/spec/inner"}]),
                "move operation does not apply: from path /spec is a prefix of path /spec/inner",
            ),
            (
                json!([{"op":"frobnicate","path":"/a"}]),
                "Unexpected kind: frobnicate",
            ),
            (json!([{"path":"/a"}]), "Unexpected kind: unknown"),
        ];
        for (patch, want) in cases {
            let e = err(doc.clone(), patch.clone());
            assert_eq!(e.to_string(), want, "{patch}");
            assert_eq!(e.status_code(), 422);
        }
        let bad = err(doc.clone(), json!({"op": "add"}));
        assert_eq!(bad.status_code(), 400);
        assert_eq!(
            bad.to_string(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        assert_eq!(err(doc, json!(["x"])).status_code(), 400);
    }

    #[test]
    fn all_or_nothing_and_misc() {
        let doc = json!({"a": 1});
        let patch = json!([
            {"op":"add","path":"/b","value":2},
            {"op":"remove","path":"/missing"}
        ]);
        assert!(json_patch(&doc, &patch).is_err());
        assert_eq!(doc, json!({"a": 1}));
        assert_eq!(ok(json!({"a": 1}), json!([])), json!({"a": 1}));
        assert_eq!(
            ok(json!({"a": 1}), json!([{"op":"add","path":"","value":[1]}])),
            json!([1])
        );
        assert_eq!(
            ok(
                json!({"a": {"b": 1}}),
                json!([{"op":"copy","from":"/a","path":"/c"}])
            ),
            json!({"a": {"b": 1}, "c": {"b": 1}})
        );
        assert_eq!(
            ok(
                json!({"a/b": 1, "m~n": 2}),
                json!([{"op":"remove","path":"/a~1b"},{"op":"replace","path":"/m~0n","value":3}])
            ),
            json!({"m~n": 3})
        );
        assert_eq!(
            ok(
                json!({"n": 1}),
                json!([{"op":"test","path":"/n","value":1.0}])
            ),
            json!({"n": 1})
        );
        // leading zeros are not array indices
        assert!(
            json_patch(
                &json!({"l":[1,2]}),
                &json!([{"op":"remove","path":"/l/01"}])
            )
            .is_err()
        );
        // metadata/labels shaped paths with escaped keys
        assert_eq!(
            ok(
                json!({"metadata": {"labels": {}}}),
                json!([{"op":"add","path":"/metadata/labels/app.kubernetes.io~1name","value":"x"}])
            ),
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}})
        );
    }
}
