//! Validation of a custom resource against its `openAPIV3Schema`.
//!
//! This follows the two validators the API server runs for custom resources:
//!
//! 1. kube-openapi's `SchemaValidator` (errors converted by apiextensions'
//!    `ValidateCustomResource`): per schema node, in this order, the type check, `anyOf`/`oneOf`/
//!    `allOf`/`not`, string checks (`maxLength`, `minLength`; the first failure only), the string
//!    `format`, number checks (`multipleOf`, `minimum`, `maximum`), array checks (`items`,
//!    `minItems`, `maxItems`, `uniqueItems`), `enum`, and object checks (`minProperties`/
//!    `maxProperties` — which stop the object's other checks —, `additionalProperties`,
//!    `properties`, `required`). All applicable checks run even after a type mismatch.
//! 2. `schemaobjectmeta.Validate` for `x-kubernetes-embedded-resource` objects: `apiVersion`
//!    and `kind` are required and well-formed, `metadata` decodes as ObjectMeta.
//!
//! Messages are the upstream ones (`spec.x in body must be of type integer: "string"`,
//! `spec.x in body should be less than or equal to 10`, …). Paths in schema errors are
//! kube-openapi paths (`spec.items[0].name`, map values as `spec.labels.key`); errors that
//! Kubernetes reports without a path use the field `<nil>`, as the real server prints them.
//!
//! Root `metadata` is the server's business: only `metadata.name` and `metadata.generateName`
//! are checked against the schema (the only restrictions a CRD may place on metadata).
//!
//! Knowingly not implemented: `pattern` (no regex engine; patterns always pass),
//! `x-kubernetes-validations` (CEL), `x-kubernetes-list-type` set/map uniqueness, and full
//! ObjectMeta validation of embedded resources (only name/namespace syntax). `format: int32`/
//! `int64` are not range-checked because the API server strips those formats before validating.

use kube_sim_machinery::gofmt::{
    Num, go_float, go_quote, json_equal, json_marshal, unmarshal_field_type_error,
    unmarshal_type_error,
};
use kube_sim_machinery::validation::{
    is_dns1035_label, is_dns1123_label, is_valid_path_segment_name,
};
use serde_json::{Map, Value};

use crate::error::{FieldError, FieldErrorKind};
use crate::formats;
use crate::schema::{Additional, Node, sorted_keys};

/// Validate `obj` (a whole custom resource) against `schema` (its `openAPIV3Schema`).
///
/// Returns the errors in the order the API server reports them, without duplicates; an empty
/// list means valid. Never panics, whatever the inputs.
#[must_use]
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let root = Node::of(schema);
    let mut errors = node(root, obj, "", true);
    embedded_walk(root, obj, "", &mut errors);
    dedup(errors)
}

fn dedup(errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut out: Vec<FieldError> = Vec::with_capacity(errors.len());
    for e in errors {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// The field of an error from a kube-openapi path (`""`/`"."` → `<nil>`, leading `.` dropped).
fn field_of(path: &str) -> String {
    if path.is_empty() || path == "." {
        "<nil>".to_owned()
    } else {
        path.strip_prefix('.').unwrap_or(path).to_owned()
    }
}

/// kube-openapi `errors.InvalidType(path, "body", type, value)` as a `TypeInvalid` field error.
fn invalid_type(path: &str, type_name: &str, value: &str) -> FieldError {
    FieldError::new(
        field_of(path),
        FieldErrorKind::TypeInvalid,
        Some(Value::String(value.to_owned())),
        format!(
            "{path} in body must be of type {type_name}: {}",
            go_quote(value)
        ),
    )
}

fn invalid(path: &str, value: Value, message: String) -> FieldError {
    FieldError::new(
        field_of(path),
        FieldErrorKind::Invalid,
        Some(value),
        message,
    )
}

/// Errors kube-openapi raises as plain API errors; Kubernetes reports them on field `<nil>`
/// with an empty value.
fn pathless(message: String) -> FieldError {
    FieldError::new(
        "<nil>",
        FieldErrorKind::Invalid,
        Some(Value::String(String::new())),
        message,
    )
}

/// `swag.IsFloat64AJSONInteger`.
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_991.0;
    f.is_finite() && (-MAX..=MAX).contains(&f) && f.fract() == 0.0
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Validate one value against one schema node (kube-openapi `SchemaValidator.Validate`).
fn node(s: Node<'_>, data: &Value, path: &str, root: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.0.is_none() {
        return errs;
    }
    let types: Vec<&str> = if s.int_or_string() {
        vec!["integer", "string"]
    } else {
        s.type_().into_iter().collect()
    };
    let format_name = s.format().filter(|f| formats::supported(f).is_some());

    if data.is_null() {
        if !types.is_empty() && !types.contains(&"null") && !s.nullable() {
            errs.push(invalid_type(path, &types.join(","), "null"));
        }
        enum_check(s, data, path, &mut errs);
        return errs;
    }

    if (!types.is_empty() || format_name.is_some())
        && let Some(e) = type_check(&types, format_name.unwrap_or(""), data, path)
    {
        errs.push(e);
    }
    junctors(s, data, path, &mut errs);
    if let Value::String(text) = data {
        string_checks(s, text, path, &mut errs);
        if let Some(f) = format_name
            && let Some(canonical) = formats::supported(f)
            && !formats::is_valid(&canonical, text)
        {
            errs.push(invalid_type(path, f, text));
        }
    }
    if let Value::Number(n) = data {
        number_checks(s, Num::of(n), path, &mut errs);
    }
    if let Value::Array(items) = data {
        array_checks(s, items, path, &mut errs);
    }
    enum_check(s, data, path, &mut errs);
    if let Value::Object(m) = data {
        object_checks(s, m, path, root, &mut errs);
    }
    errs
}

/// kube-openapi `typeValidator.Validate` for a non-null value.
fn type_check(types: &[&str], format: &str, data: &Value, path: &str) -> Option<FieldError> {
    let (sch_type, data_format, float) = match data {
        Value::Bool(_) => ("boolean", "", None),
        Value::String(_) => ("string", "", None),
        Value::Number(n) => match Num::of(n) {
            Num::Int(_) => ("integer", "int64", None),
            Num::Float(f) => ("number", "float64", Some(f)),
        },
        Value::Array(_) => ("array", "", None),
        Value::Object(_) => ("object", "", None),
        Value::Null => return None,
    };
    let contains = |t: &str| types.contains(&t);
    let is_float_int = float.is_some_and(is_json_integer) && contains("integer");
    let is_int_float = sch_type == "integer" && contains("number");
    let string_or_slice = data.is_string() || data.is_array();
    // A non-string value under a format that is not its own type/format.
    if !(string_or_slice
        || format.is_empty()
        || contains(sch_type)
        || data_format == format
        || is_float_int
        || is_int_float)
    {
        return Some(invalid_type(path, format, data_format));
    }
    // Strings and arrays under a string format of a non-numeric type pass the type check.
    if string_or_slice && !(contains("number") || contains("integer") || format.is_empty()) {
        return None;
    }
    if !(contains(sch_type) || is_float_int || is_int_float) {
        return Some(invalid_type(path, &types.join(","), sch_type));
    }
    None
}

/// `anyOf`, `oneOf`, `allOf`, `not` (kube-openapi `schemaPropsValidator`).
///
/// Where kube-openapi keeps the errors of the "best" failing branch (the one with the most
/// passed checks), this keeps the branch with the fewest errors (first on ties).
fn junctors(s: Node<'_>, data: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let best = |results: Vec<Vec<FieldError>>| results.into_iter().min_by_key(Vec::len);

    let any_of = s.junctor("anyOf");
    if !any_of.is_empty() {
        let mut failures = Vec::new();
        let mut ok = false;
        for branch in any_of {
            let r = node(branch, data, path, false);
            if r.is_empty() {
                ok = true;
                break;
            }
            failures.push(r);
        }
        if !ok {
            errs.push(pathless(format!(
                "{} must validate at least one schema (anyOf)",
                go_quote(path)
            )));
            errs.extend(best(failures).unwrap_or_default());
        }
    }

    let one_of = s.junctor("oneOf");
    if !one_of.is_empty() {
        let mut failures = Vec::new();
        let mut valid = 0usize;
        for branch in one_of {
            let r = node(branch, data, path, false);
            if r.is_empty() {
                valid += 1;
            } else if valid == 0 {
                failures.push(r);
            }
        }
        if valid != 1 {
            let additional = if valid == 0 {
                "Found none valid".to_owned()
            } else {
                format!("Found {valid} valid alternatives")
            };
            errs.push(pathless(format!(
                "{} must validate one and only one schema (oneOf). {additional}",
                go_quote(path)
            )));
            if valid == 0 {
                errs.extend(best(failures).unwrap_or_default());
            }
        }
    }

    let all_of = s.junctor("allOf");
    if !all_of.is_empty() {
        let total = all_of.len();
        let mut valid = 0usize;
        for branch in all_of {
            let r = node(branch, data, path, false);
            if r.is_empty() {
                valid += 1;
            }
            errs.extend(r);
        }
        if valid != total {
            let additional = if valid == 0 { ". None validated" } else { "" };
            errs.push(pathless(format!(
                "{} must validate all the schemas (allOf){additional}",
                go_quote(path)
            )));
        }
    }

    if let Some(not) = s.not()
        && node(not, data, path, false).is_empty()
    {
        errs.push(pathless(format!(
            "{} must not validate the schema (not)",
            go_quote(path)
        )));
    }
}

fn string_checks(s: Node<'_>, text: &str, path: &str, errs: &mut Vec<FieldError>) {
    let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    if let Some(max) = s.i64("maxLength")
        && len > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        errs.push(FieldError::new(
            field_of(path),
            FieldErrorKind::TooLong,
            Some(Value::String(text.to_owned())),
            format!("may not be more than {max} {unit}"),
        ));
        return;
    }
    if let Some(min) = s.i64("minLength")
        && len < min
    {
        errs.push(invalid(
            path,
            Value::String(text.to_owned()),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    // `pattern` is not evaluated (no regex engine).
}

fn num_value(n: Num) -> Value {
    match n {
        Num::Int(i) => Value::from(i),
        Num::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
    }
}

#[allow(clippy::cast_possible_truncation)]
fn number_checks(s: Node<'_>, n: Num, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(factor) = s.f64("multipleOf") {
        match n {
            Num::Int(i) => {
                let f = factor as i64;
                if f < 0 {
                    errs.push(invalid(
                        path,
                        Value::from(f),
                        format!("factor MultipleOf declared for {path} must be positive: {f}"),
                    ));
                } else if f != 0 && i.wrapping_rem(f) != 0 {
                    errs.push(invalid(
                        path,
                        Value::from(i),
                        format!("{path} in body should be a multiple of {f}"),
                    ));
                }
            }
            Num::Float(x) => {
                if factor < 0.0 {
                    errs.push(invalid(
                        path,
                        num_value(Num::Float(factor)),
                        format!(
                            "factor MultipleOf declared for {path} must be positive: {}",
                            go_float(factor)
                        ),
                    ));
                } else {
                    let mult = if factor < 1.0 {
                        1.0 / factor * x
                    } else {
                        x / factor
                    };
                    if !is_json_integer(mult) {
                        errs.push(invalid(
                            path,
                            num_value(n),
                            format!(
                                "{path} in body should be a multiple of {}",
                                go_float(factor)
                            ),
                        ));
                    }
                }
            }
        }
    }
    for (key, excl_key, is_max) in [
        ("minimum", "exclusiveMinimum", false),
        ("maximum", "exclusiveMaximum", true),
    ] {
        let Some(bound) = s.f64(key) else {
            continue;
        };
        let exclusive = s.exclusive(excl_key);
        let (fails, bound_text) = match n {
            Num::Int(i) => {
                let b = bound as i64;
                let fails = if is_max {
                    (!exclusive && i > b) || (exclusive && i >= b)
                } else {
                    (!exclusive && i < b) || (exclusive && i <= b)
                };
                (fails, b.to_string())
            }
            Num::Float(x) => {
                let fails = if is_max {
                    (!exclusive && x > bound) || (exclusive && x >= bound)
                } else {
                    (!exclusive && x < bound) || (exclusive && x <= bound)
                };
                (fails, go_float(bound))
            }
        };
        if fails {
            let relation = match (is_max, exclusive) {
                (true, false) => "less than or equal to",
                (true, true) => "less than",
                (false, false) => "greater than or equal to",
                (false, true) => "greater than",
            };
            errs.push(invalid(
                path,
                num_value(n),
                format!("{path} in body should be {relation} {bound_text}"),
            ));
        }
    }
}

fn array_checks(s: Node<'_>, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    if let Some(item_schema) = s.items() {
        for (i, item) in items.iter().enumerate() {
            errs.extend(node(item_schema, item, &format!("{path}[{i}]"), false));
        }
    }
    let size = i64::try_from(items.len()).unwrap_or(i64::MAX);
    if let Some(min) = s.i64("minItems")
        && size < min
    {
        errs.push(invalid(
            path,
            Value::from(size),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = s.i64("maxItems")
        && size > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        errs.push(FieldError::new(
            field_of(path),
            FieldErrorKind::TooMany,
            Some(Value::from(size)),
            format!("must have at most {max} {unit}"),
        ));
    }
    if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
        let duplicated = items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)));
        if duplicated {
            errs.push(invalid(
                path,
                Value::String(String::new()),
                format!("{path} in body shouldn't contain duplicates"),
            ));
        }
    }
}

fn enum_check(s: Node<'_>, data: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(values) = s.enum_values() else {
        return;
    };
    if values.is_empty() {
        return;
    }
    if !data.is_null() && values.iter().any(|e| json_equal(data, e)) {
        return;
    }
    let supported: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => go_quote(s),
            other => go_quote(&json_marshal(other)),
        })
        .collect();
    errs.push(FieldError::new(
        field_of(path),
        FieldErrorKind::NotSupported,
        Some(data.clone()),
        format!("supported values: {}", supported.join(", ")),
    ));
}

fn object_checks(
    s: Node<'_>,
    m: &Map<String, Value>,
    path: &str,
    root: bool,
    errs: &mut Vec<FieldError>,
) {
    let count = i64::try_from(m.len()).unwrap_or(i64::MAX);
    if let Some(min) = s.i64("minProperties")
        && count < min
    {
        errs.push(invalid(
            path,
            Value::from(count),
            format!("{path} in body should have at least {min} properties"),
        ));
        return;
    }
    if let Some(max) = s.i64("maxProperties")
        && count > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        errs.push(FieldError::new(
            field_of(path),
            FieldErrorKind::TooMany,
            Some(Value::from(count)),
            format!("must have at most {max} {unit}"),
        ));
        return;
    }
    let props = s.properties();
    let is_prop = |k: &str| props.is_some_and(|p| p.contains_key(k));
    match s.additional() {
        Additional::Bool(false) => {
            for k in sorted_keys(m) {
                if !is_prop(k) {
                    errs.push(invalid(
                        path,
                        Value::String(k.clone()),
                        format!("{path}.{k} in body is a forbidden property"),
                    ));
                }
            }
        }
        Additional::Schema(ap) => {
            for k in sorted_keys(m) {
                if !is_prop(k)
                    && let Some(v) = m.get(k)
                {
                    errs.extend(node(ap, v, &format!("{path}.{k}"), false));
                }
            }
        }
        Additional::Bool(true) | Additional::Absent => {}
    }
    if let Some(props) = props {
        for name in sorted_keys(props) {
            let (Some(sub), Some(v)) = (props.get(name), m.get(name)) else {
                continue;
            };
            let sub = Node::of(sub);
            let p = child_path(path, name);
            if root && name == "metadata" {
                // Only name/generateName restrictions are allowed on metadata; the rest of
                // ObjectMeta is validated by the server itself.
                let subset: Map<String, Value> = v
                    .as_object()
                    .map(|mm| {
                        mm.iter()
                            .filter(|(k, _)| k.as_str() == "name" || k.as_str() == "generateName")
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                errs.extend(node(sub, &Value::Object(subset), &p, false));
            } else {
                errs.extend(node(sub, v, &p, false));
            }
        }
    }
    for k in s.required() {
        if !m.contains_key(k) {
            errs.push(FieldError::required(field_of(&format!("{path}.{k}")), ""));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Embedded resources (apiextensions schemaobjectmeta.Validate)
// ---------------------------------------------------------------------------------------------

fn fp_child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_owned()
    } else {
        format!("{path}.{k}")
    }
}

fn embedded_walk(s: Node<'_>, data: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if s.0.is_none() {
        return;
    }
    match data {
        Value::Object(m) => {
            if s.embedded() {
                validate_embedded_resource(path, m, errs);
            }
            for k in sorted_keys(m) {
                let Some(v) = m.get(k) else { continue };
                if let Some(prop) = s.property(k) {
                    embedded_walk(prop, v, &fp_child(path, k), errs);
                } else if let Additional::Schema(ap) = s.additional() {
                    embedded_walk(ap, v, &format!("{path}[{k}]"), errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items() {
                for (i, v) in items.iter().enumerate() {
                    embedded_walk(item_schema, v, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

/// The first error Go's `json.Unmarshal` into `metav1.ObjectMeta` would report, if any.
fn object_meta_decode_error(meta: &Value) -> Option<String> {
    let m = match meta {
        Value::Null => return None,
        Value::Object(m) => m,
        other => {
            return Some(unmarshal_type_error(other, "v1.ObjectMeta"));
        }
    };
    let field_err = |field: &str, got: &Value, want: &str| {
        Some(unmarshal_field_type_error(got, "ObjectMeta", field, want))
    };
    for k in sorted_keys(m) {
        let Some(v) = m.get(k) else { continue };
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "name" | "generateName" | "namespace" | "selfLink" | "uid" | "resourceVersion"
                if !v.is_string() =>
            {
                return field_err(k, v, "string");
            }
            "labels" | "annotations" => match v {
                Value::Object(entries) => {
                    for key in sorted_keys(entries) {
                        if let Some(ev) = entries.get(key)
                            && !ev.is_string()
                            && !ev.is_null()
                        {
                            return field_err(k, ev, "string");
                        }
                    }
                }
                other => return field_err(k, other, "map[string]string"),
            },
            "finalizers" => match v {
                Value::Array(items) => {
                    if let Some(bad) = items.iter().find(|i| !i.is_string() && !i.is_null()) {
                        return field_err(k, bad, "string");
                    }
                }
                other => return field_err(k, other, "[]string"),
            },
            "generation" | "deletionGracePeriodSeconds" if !v.is_i64() => {
                return field_err(k, v, "int64");
            }
            _ => {}
        }
    }
    None
}

fn validate_embedded_resource(path: &str, m: &Map<String, Value>, errs: &mut Vec<FieldError>) {
    if !m.contains_key("apiVersion") {
        errs.push(FieldError::required(
            fp_child(path, "apiVersion"),
            "must not be empty",
        ));
    }
    if !m.contains_key("kind") {
        errs.push(FieldError::required(
            fp_child(path, "kind"),
            "must not be empty",
        ));
    }
    for k in sorted_keys(m) {
        let Some(v) = m.get(k) else { continue };
        match k.as_str() {
            "apiVersion" => {
                let f = fp_child(path, "apiVersion");
                match v.as_str() {
                    None => errs.push(FieldError::invalid(f, v.clone(), "must be a string")),
                    Some("") => errs.push(FieldError::invalid(f, v.clone(), "must not be empty")),
                    Some(av) if av != "/" && av.matches('/').count() > 1 => {
                        errs.push(FieldError::invalid(
                            f,
                            v.clone(),
                            format!("unexpected GroupVersion string: {av}"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            "kind" => {
                let f = fp_child(path, "kind");
                match v.as_str() {
                    None => errs.push(FieldError::invalid(f, v.clone(), "must be a string")),
                    Some("") => errs.push(FieldError::invalid(f, v.clone(), "must not be empty")),
                    Some(kind) => {
                        let problems = is_dns1035_label(&kind.to_lowercase());
                        if !problems.is_empty() {
                            errs.push(FieldError::invalid(
                                f,
                                v.clone(),
                                format!(
                                    "may have mixed case, but should otherwise match: {}",
                                    problems.join(",")
                                ),
                            ));
                        }
                    }
                }
            }
            "metadata" => {
                let f = fp_child(path, "metadata");
                if let Some(msg) = object_meta_decode_error(v) {
                    errs.push(FieldError::invalid(f, v.clone(), msg));
                    continue;
                }
                let get = |key: &str| {
                    v.get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let name = get("name");
                let name = if name.is_empty() {
                    "fakename".to_owned()
                } else {
                    name
                };
                let generate_name = get("generateName");
                if !generate_name.is_empty() {
                    for msg in is_valid_path_segment_name(&generate_name) {
                        errs.push(FieldError::invalid(
                            fp_child(&f, "generateName"),
                            Value::String(generate_name.clone()),
                            msg,
                        ));
                    }
                }
                for msg in is_valid_path_segment_name(&name) {
                    errs.push(FieldError::invalid(
                        fp_child(&f, "name"),
                        Value::String(name.clone()),
                        msg,
                    ));
                }
                let namespace = get("namespace");
                if !namespace.is_empty() {
                    for msg in is_dns1123_label(&namespace) {
                        errs.push(FieldError::invalid(
                            fp_child(&f, "namespace"),
                            Value::String(namespace.clone()),
                            msg,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}
