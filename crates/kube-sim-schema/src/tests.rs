use jiff::Timestamp;
use serde_json::{Value, json};

use crate::*;

fn yaml(doc: &str) -> Value {
    serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

/// A schema exercising most keywords, written like a CRD author would.
fn widget_schema() -> Value {
    yaml(
        r#"
type: object
properties:
  apiVersion: {type: string}
  kind: {type: string}
  metadata:
    type: object
    properties:
      name: {type: string, maxLength: 12}
  spec:
    type: object
    required: [selector]
    properties:
      type: {type: integer}
      selector: {type: string}
      mode: {type: string, enum: [a, b]}
      level: {type: integer, enum: [1, 2]}
      replicas: {type: integer, format: int32, minimum: 0, maximum: 10, nullable: true}
      ratio: {type: number, maximum: 1.5}
      positive: {type: integer, minimum: 0, exclusiveMinimum: true}
      step: {type: integer, multipleOf: 5}
      name: {type: string, minLength: 3, maxLength: 5}
      when: {type: string, format: date-time}
      big: {type: integer, format: int32}
      port: {x-kubernetes-int-or-string: true}
      portAnyOf:
        x-kubernetes-int-or-string: true
        anyOf: [{type: integer}, {type: string}]
      labels:
        type: object
        additionalProperties: {type: string}
      list:
        type: array
        minItems: 1
        maxItems: 2
        items: {type: string}
      items:
        type: array
        items:
          type: object
          required: [name]
          properties:
            name: {type: string}
      free:
        type: object
        x-kubernetes-preserve-unknown-fields: true
      ref:
        type: object
        x-kubernetes-embedded-resource: true
        properties:
          spec:
            type: object
            properties:
              a: {type: string}
      s: {type: string}
      ns: {type: string, nullable: true}
  status:
    type: object
"#,
    )
}

fn widget(spec: Value) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "uid": "u", "labels": {"a": "b"}},
        "spec": spec,
    })
}

fn check(spec: Value, want: &[&str]) {
    let errs = validate(&widget_schema(), &widget(spec.clone()));
    assert_eq!(messages(&errs), want, "spec: {spec}");
}

// ---------------------------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_object_has_no_errors() {
    check(
        json!({
            "selector": "x", "type": 0, "mode": "a", "level": 2, "replicas": 3, "ratio": 1.5,
            "positive": 1, "step": 10, "name": "abcd", "when": "2024-01-01T00:00:00Z",
            "port": 80, "portAnyOf": "http", "labels": {"k": "v"}, "list": ["x"],
            "items": [{"name": "n"}], "free": {"anything": [1, {"x": null}]},
            "ref": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}},
            "replicas": null, "ns": null
        }),
        &[],
    );
}

#[test]
fn type_errors() {
    check(
        json!({"selector": "x", "type": "string"}),
        &[
            r#"spec.type: Invalid value: "string": spec.type in body must be of type integer: "string""#,
        ],
    );
    check(
        json!({"selector": "x", "type": 2.5}),
        &[
            r#"spec.type: Invalid value: "number": spec.type in body must be of type integer: "number""#,
        ],
    );
    check(
        json!({"selector": "x", "s": 5}),
        &[r#"spec.s: Invalid value: "integer": spec.s in body must be of type string: "integer""#],
    );
    check(
        json!({"selector": "x", "labels": {"k": true}}),
        &[
            r#"spec.labels.k: Invalid value: "boolean": spec.labels.k in body must be of type string: "boolean""#,
        ],
    );
    check(
        json!({"selector": "x", "list": ["a", 1]}),
        &[
            r#"spec.list[1]: Invalid value: "integer": spec.list[1] in body must be of type string: "integer""#,
        ],
    );
    check(
        json!({"selector": "x", "labels": []}),
        &[
            r#"spec.labels: Invalid value: "array": spec.labels in body must be of type object: "array""#,
        ],
    );
}

#[test]
fn integral_floats_are_integers() {
    // kube-openapi accepts a float that is a JSON integer for `type: integer`.
    check(json!({"selector": "x", "type": 2.0, "step": 10.0}), &[]);
}

#[test]
fn nulls() {
    check(
        json!({"selector": "x", "s": null}),
        &[r#"spec.s: Invalid value: "null": spec.s in body must be of type string: "null""#],
    );
    check(json!({"selector": "x", "ns": null, "replicas": null}), &[]);
}

#[test]
fn required_and_nested_paths() {
    let errs = validate(
        &widget_schema(),
        &widget(json!({"items": [{"name": "a"}, {}]})),
    );
    assert_eq!(
        messages(&errs),
        [
            "spec.items[1].name: Required value",
            "spec.selector: Required value"
        ]
    );
    assert_eq!(errs[0].reason(), "FieldValueRequired");
    assert_eq!(errs[0].kind, FieldErrorKind::Required);
    let root_required =
        json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}});
    assert_eq!(
        messages(&validate(
            &root_required,
            &json!({"metadata": {"name": "x"}})
        )),
        ["spec: Required value"]
    );
}

#[test]
fn enums() {
    check(
        json!({"selector": "x", "mode": "c"}),
        &[r#"spec.mode: Unsupported value: "c": supported values: "a", "b""#],
    );
    check(
        json!({"selector": "x", "level": 3}),
        &[r#"spec.level: Unsupported value: 3: supported values: "1", "2""#],
    );
    check(json!({"selector": "x", "level": 1.0}), &[]);
    let errs = validate(
        &widget_schema(),
        &widget(json!({"selector": "x", "mode": "c"})),
    );
    assert_eq!(errs[0].reason(), "FieldValueNotSupported");
}

#[test]
fn numbers() {
    check(
        json!({"selector": "x", "replicas": 11}),
        &[
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        ],
    );
    check(
        json!({"selector": "x", "replicas": -1}),
        &[
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ],
    );
    check(
        json!({"selector": "x", "positive": 0}),
        &["spec.positive: Invalid value: 0: spec.positive in body should be greater than 0"],
    );
    check(
        json!({"selector": "x", "ratio": 2.5}),
        &["spec.ratio: Invalid value: 2.5: spec.ratio in body should be less than or equal to 1.5"],
    );
    check(
        json!({"selector": "x", "step": 7}),
        &["spec.step: Invalid value: 7: spec.step in body should be a multiple of 5"],
    );
    // format: int32 is stripped by the API server: no range check.
    check(json!({"selector": "x", "big": 1_099_511_627_776_i64}), &[]);
}

#[test]
fn strings() {
    check(
        json!({"selector": "x", "name": "abcdef"}),
        &["spec.name: Too long: may not be more than 5 bytes"],
    );
    check(
        json!({"selector": "x", "name": "ab"}),
        &[r#"spec.name: Invalid value: "ab": spec.name in body should be at least 3 chars long"#],
    );
    // Length counts characters, not bytes.
    check(json!({"selector": "x", "name": "ééééé"}), &[]);
    check(
        json!({"selector": "x", "when": "yesterday"}),
        &[
            r#"spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday""#,
        ],
    );
    let errs = validate(
        &widget_schema(),
        &widget(json!({"selector": "x", "name": "abcdef"})),
    );
    assert_eq!(errs[0].reason(), "FieldValueTooLong");
}

#[test]
fn arrays() {
    check(
        json!({"selector": "x", "list": ["a", "b", "c"]}),
        &["spec.list: Too many: 3: must have at most 2 items"],
    );
    check(
        json!({"selector": "x", "list": []}),
        &["spec.list: Invalid value: 0: spec.list in body should have at least 1 items"],
    );
    let unique = json!({"type": "array", "uniqueItems": true, "items": {"type": "integer"}});
    let schema = json!({"type": "object", "properties": {"u": unique}});
    assert_eq!(
        messages(&validate(&schema, &json!({"u": [1, 2, 1]}))),
        [r#"u: Invalid value: "": u in body shouldn't contain duplicates"#]
    );
}

#[test]
fn int_or_string() {
    check(
        json!({"selector": "x", "port": "http", "portAnyOf": 8080}),
        &[],
    );
    check(
        json!({"selector": "x", "port": true}),
        &[
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
        ],
    );
    check(
        json!({"selector": "x", "portAnyOf": 1.5}),
        &[
            r#"spec.portAnyOf: Invalid value: "number": spec.portAnyOf in body must be of type integer,string: "number""#,
            r#"<nil>: Invalid value: "": "spec.portAnyOf" must validate at least one schema (anyOf)"#,
            r#"spec.portAnyOf: Invalid value: "number": spec.portAnyOf in body must be of type integer: "number""#,
        ],
    );
}

#[test]
fn junctors() {
    let schema = json!({"type": "object", "properties": {
        "one": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
        "all": {"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 10}]},
        "not": {"type": "string", "not": {"enum": ["x"]}}
    }});
    assert_eq!(
        messages(&validate(&schema, &json!({"one": 5}))),
        [
            r#"<nil>: Invalid value: "": "one" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        ]
    );
    assert_eq!(
        messages(&validate(&schema, &json!({"all": 11}))),
        [
            "all: Invalid value: 11: all in body should be less than or equal to 10",
            r#"<nil>: Invalid value: "": "all" must validate all the schemas (allOf)"#,
        ]
    );
    assert_eq!(
        messages(&validate(&schema, &json!({"not": "x"}))),
        [r#"<nil>: Invalid value: "": "not" must not validate the schema (not)"#]
    );
    assert!(validate(&schema, &json!({"not": "y", "all": 3})).is_empty());
}

#[test]
fn objects() {
    let schema = json!({"type": "object", "properties": {
        "closed": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}},
        "few": {"type": "object", "minProperties": 2, "properties": {"a": {"type": "integer"}}},
        "many": {"type": "object", "maxProperties": 1}
    }});
    assert_eq!(
        messages(&validate(&schema, &json!({"closed": {"a": "x", "b": 1}}))),
        [r#"closed: Invalid value: "b": closed.b in body is a forbidden property"#]
    );
    // minProperties stops the object's other checks (the bad `a` is not reported).
    assert_eq!(
        messages(&validate(&schema, &json!({"few": {"a": "x"}}))),
        ["few: Invalid value: 1: few in body should have at least 2 properties"]
    );
    assert_eq!(
        messages(&validate(&schema, &json!({"many": {"a": 1, "b": 2}}))),
        ["many: Too many: 2: must have at most 1 item"]
    );
}

#[test]
fn preserve_unknown_fields_are_not_validated() {
    check(
        json!({"selector": "x", "free": {"deep": {"any": ["thing", 1, null]}}}),
        &[],
    );
}

#[test]
fn embedded_resources() {
    check(
        json!({"selector": "x", "ref": {"spec": {"a": "b"}}}),
        &[
            "spec.ref.apiVersion: Required value: must not be empty",
            "spec.ref.kind: Required value: must not be empty",
        ],
    );
    check(
        json!({"selector": "x", "ref": {"apiVersion": "a/b/c", "kind": "my_kind", "metadata": "x"}}),
        &[
            r#"spec.ref.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c"#,
            r#"spec.ref.kind: Invalid value: "my_kind": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
            r#"spec.ref.metadata: Invalid value: "x": json: cannot unmarshal string into Go value of type v1.ObjectMeta"#,
        ],
    );
    check(
        json!({"selector": "x", "ref": {"apiVersion": "", "kind": 5, "metadata": {"name": "a/b", "namespace": "Bad_NS", "labels": {"k": 1}}}}),
        &[
            r#"spec.ref.apiVersion: Invalid value: "": must not be empty"#,
            "spec.ref.kind: Invalid value: 5: must be a string",
            r#"spec.ref.metadata: Invalid value: map[string]interface {}{"labels":map[string]interface {}{"k":1}, "name":"a/b", "namespace":"Bad_NS"}: json: cannot unmarshal number into Go struct field ObjectMeta.labels of type string"#,
        ],
    );
    check(
        json!({"selector": "x", "ref": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a/b", "namespace": "Bad_NS"}}}),
        &[
            r#"spec.ref.metadata.name: Invalid value: "a/b": may not contain '/'"#,
            r#"spec.ref.metadata.namespace: Invalid value: "Bad_NS": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
        ],
    );
}

#[test]
fn root_metadata_only_name_is_checked() {
    let mut obj = widget(json!({"selector": "x"}));
    obj["metadata"]["name"] = json!("much-too-long-a-name");
    obj["metadata"]["labels"] = json!("not even an object");
    assert_eq!(
        messages(&validate(&widget_schema(), &obj)),
        ["metadata.name: Too long: may not be more than 12 bytes"]
    );
}

#[test]
fn root_type_mismatch_uses_nil_field() {
    let errs = validate(&json!({"type": "object"}), &json!([1]));
    assert_eq!(
        messages(&errs),
        [r#"<nil>: Invalid value: "array":  in body must be of type object: "array""#]
    );
    assert!(validate(&json!("not a schema"), &json!({"a": 1})).is_empty());
    assert!(
        validate(
            &json!({"type": 5, "properties": "x", "required": 3}),
            &json!({})
        )
        .is_empty()
    );
}

#[test]
fn errors_are_deduplicated() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer",
        "allOf": [{"type": "integer"}, {"type": "integer"}]}}});
    let errs = validate(&schema, &json!({"a": "x"}));
    assert_eq!(
        messages(&errs),
        [
            r#"a: Invalid value: "string": a in body must be of type integer: "string""#,
            r#"<nil>: Invalid value: "": "a" must validate all the schemas (allOf). None validated"#,
        ]
    );
    assert_eq!(
        invalid_message("Widget.example.com", "w", &errs),
        r#"Widget.example.com "w" is invalid: [a: Invalid value: "string": a in body must be of type integer: "string", <nil>: Invalid value: "": "a" must validate all the schemas (allOf). None validated]"#
    );
}

// ---------------------------------------------------------------------------------------------
// prune
// ---------------------------------------------------------------------------------------------

#[test]
fn prune_drops_unknown_fields() {
    let schema = widget_schema();
    let mut obj = widget(json!({
        "selector": "x",
        "unknown": 1,
        "ClientID": "legacy",
        "items": [{"name": "a", "extra": true}],
        "labels": {"k": "v"},
        "free": {"kept": {"deep": 1}},
        "ref": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "bogus": 1, "creationTimestamp": null},
                "spec": {"a": "x", "b": "y"}, "other": 1}
    }));
    obj["status"] = json!({"phase": "x"});
    obj["metadata"]["unknownMeta"] = json!(true);
    obj["topLevel"] = json!(1);
    let pruned = prune(&schema, &mut obj);
    assert_eq!(
        pruned,
        [
            "spec.ClientID",
            "spec.items[0].extra",
            "spec.ref.metadata.bogus",
            "spec.ref.other",
            "spec.ref.spec.b",
            "spec.unknown",
            "status.phase",
            "topLevel",
        ]
    );
    assert_eq!(
        obj["metadata"]["unknownMeta"],
        json!(true),
        "root metadata untouched"
    );
    assert_eq!(obj["apiVersion"], "example.com/v1");
    assert_eq!(obj["spec"]["free"], json!({"kept": {"deep": 1}}));
    assert_eq!(
        obj["spec"]["ref"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "spec": {"a": "x"}})
    );
    assert_eq!(obj["status"], json!({}));
    assert!(prune(&schema, &mut obj).is_empty(), "idempotent");
}

#[test]
fn prune_metadata_quirk_and_preserve_with_known_properties() {
    // aad-pod-identity's `spec.metadata: {type: object}` loses its content.
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "metadata": {"type": "object"},
        "p": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
              "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {"type": "string"}}}}
    }}}});
    let mut obj = json!({"spec": {
        "metadata": {"creationTimestamp": null},
        "p": {"free": {"z": 1}, "known": {"a": "1", "b": 2}},
        "m": {"k1": {"x": "1", "y": 2}}
    }});
    let pruned = prune(&schema, &mut obj);
    assert_eq!(
        pruned,
        [
            "spec.m.k1.y",
            "spec.metadata.creationTimestamp",
            "spec.p.known.b"
        ]
    );
    assert_eq!(
        obj,
        json!({"spec": {"metadata": {}, "p": {"free": {"z": 1}, "known": {"a": "1"}}, "m": {"k1": {"x": "1"}}}})
    );
}

#[test]
fn prune_nulls_without_defaults() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string"},
        "b": {"type": "string", "nullable": true},
        "c": {"type": "string", "default": "x"},
        "l": {"type": "array", "items": {"type": "object", "properties": {"z": {"type": "integer"}}}}
    }}}});
    let mut obj = json!({"spec": {"a": null, "b": null, "c": null, "l": [{"z": null}]}});
    prune_nulls(&schema, &mut obj);
    assert_eq!(obj, json!({"spec": {"b": null, "c": null, "l": [{}]}}));
}

// ---------------------------------------------------------------------------------------------
// defaults
// ---------------------------------------------------------------------------------------------

#[test]
fn defaults_are_applied_recursively() {
    let schema = yaml(
        r#"
type: object
properties:
  spec:
    type: object
    default: {}
    properties:
      replicas: {type: integer, default: 1}
      mode: {type: string, default: fast}
      nullableWithDefault: {type: string, nullable: true, default: d}
      nested:
        type: object
        default: {}
        properties:
          inner: {type: string, default: deep}
      list:
        type: array
        items:
          type: object
          properties:
            port: {type: integer, default: 80}
      map:
        type: object
        additionalProperties:
          type: object
          default: {}
          properties:
            on: {type: boolean, default: true}
"#,
    );
    let mut obj = json!({"metadata": {"name": "x"}});
    apply_defaults(&schema, &mut obj);
    assert_eq!(
        obj,
        json!({"metadata": {"name": "x"}, "spec": {
            "replicas": 1, "mode": "fast", "nullableWithDefault": "d", "nested": {"inner": "deep"}
        }})
    );

    let mut obj = json!({"spec": {"replicas": 3, "mode": null, "nullableWithDefault": null,
        "list": [{"port": 8080}, {}], "map": {"a": null, "b": {"on": false}}}});
    apply_defaults(&schema, &mut obj);
    assert_eq!(
        obj,
        json!({"spec": {
            "replicas": 3, "mode": "fast", "nullableWithDefault": null, "nested": {"inner": "deep"},
            "list": [{"port": 8080}, {"port": 80}], "map": {"a": {"on": true}, "b": {"on": false}}
        }})
    );
    let once = obj.clone();
    apply_defaults(&schema, &mut obj);
    assert_eq!(obj, once, "idempotent");
}

#[test]
fn admit_runs_the_write_path() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["a"],
        "properties": {"a": {"type": "string", "default": "x"}, "n": {"type": "integer"}}}}});
    let mut obj = json!({"metadata": {"name": "o"}, "spec": {"bogus": 1, "n": null}});
    let out = admit(&schema, &mut obj);
    assert_eq!(out.unknown_fields, ["spec.bogus"]);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(obj, json!({"metadata": {"name": "o"}, "spec": {"a": "x"}}));
    let mut bad = json!({"spec": {"n": "1"}});
    let out = admit(&schema, &mut bad);
    assert_eq!(
        messages(&out.errors),
        [r#"spec.n: Invalid value: "string": spec.n in body must be of type integer: "string""#]
    );
}

// ---------------------------------------------------------------------------------------------
// tables
// ---------------------------------------------------------------------------------------------

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn names(cols: &[Column]) -> Vec<&str> {
    cols.iter().map(|c| c.name.as_str()).collect()
}

fn cells(cols: &[Column], obj: &Value) -> Value {
    let t = table(cols, &[obj], json!({}), IncludeObject::None, now());
    t["rows"][0]["cells"].clone()
}

const AZURE_IDENTITY_COLUMNS: &str = r#"
- jsonPath: .spec.type
  name: Type
  type: string
- jsonPath: .spec.clientID
  name: ClientID
  type: string
- description: CreationTimestamp is a timestamp representing the server time when this object was created.
  jsonPath: .metadata.creationTimestamp
  name: Age
  type: date
"#;

#[test]
fn crd_table_matches_apiserver() {
    let cols = crd_columns(&yaml(AZURE_IDENTITY_COLUMNS));
    assert_eq!(names(&cols), ["Name", "Type", "ClientID", "Age"]);
    assert_eq!(cols[0].format, "name");
    assert_eq!(
        cols[1].description,
        "Custom resource definition column (in JSONPath format): .spec.type"
    );
    let identity = json!({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
        "metadata": {"name": "demo", "namespace": "default", "resourceVersion": "7",
                     "creationTimestamp": "2024-05-01T11:55:00Z", "labels": {"a": "b"}},
        "spec": {"type": 0, "clientID": "00000000-0000-0000-0000-000000000001"}
    });
    let no_client = json!({"metadata": {"name": "bare", "creationTimestamp": "2024-04-29T09:00:00Z"}, "spec": {"type": 1}});
    let t = table(
        &cols,
        &[&identity, &no_client],
        json!({"resourceVersion": "42", "continue": "", "selfLink": "x"}),
        IncludeObject::Metadata,
        now(),
    );
    assert_eq!(
        t,
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "42"},
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "description": table::NAME_DESCRIPTION, "priority": 0},
                {"name": "Type", "type": "string", "format": "", "description": "Custom resource definition column (in JSONPath format): .spec.type", "priority": 0},
                {"name": "ClientID", "type": "string", "format": "", "description": "Custom resource definition column (in JSONPath format): .spec.clientID", "priority": 0},
                {"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0},
            ],
            "rows": [
                {"cells": ["demo", "0", "00000000-0000-0000-0000-000000000001", "5m"],
                 "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": identity["metadata"]}},
                {"cells": ["bare", "1", null, "2d3h"],
                 "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": no_client["metadata"]}},
            ]
        })
    );
    let full = table(&cols, &[&identity], json!({}), IncludeObject::Object, now());
    assert_eq!(full["rows"][0]["object"], identity);
    let none = table(&cols, &[&identity], json!({}), IncludeObject::None, now());
    assert_eq!(none["rows"][0]["object"], Value::Null);
    assert_eq!(none["metadata"], json!({}));
}

#[test]
fn crd_default_and_typed_columns() {
    let cols = crd_columns(&json!([]));
    assert_eq!(names(&cols), ["Name", "Age"]);
    assert_eq!(cols[1].type_, "date");
    assert_eq!(cols[1].description, table::CREATION_TIMESTAMP_DESCRIPTION);
    assert_eq!(names(&crd_columns(&Value::Null)), ["Name", "Age"]);

    let cols = crd_columns(&json!([
        {"name": "Int", "type": "integer", "jsonPath": ".spec.n"},
        {"name": "Num", "type": "number", "jsonPath": ".spec.n"},
        {"name": "Bool", "type": "boolean", "jsonPath": ".spec.b", "priority": 1},
        {"name": "When", "type": "date", "jsonPath": ".spec.when"},
        {"name": "Obj", "type": "string", "jsonPath": ".spec.obj"},
        {"name": "Null", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
        {"name": "First", "type": "string", "jsonPath": ".spec.list[*]"},
        {"name": "WrongType", "type": "integer", "jsonPath": ".spec.b"},
    ]));
    assert_eq!(cols[3].priority, 1);
    let obj = json!({"metadata": {"name": "x"}, "spec": {
        "n": 2.7, "b": true, "when": "bogus", "obj": {"b": [1, "<"], "a": 1.0}, "nothing": null,
        "list": ["p", "q"]
    }, "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
    assert_eq!(
        cells(&cols, &obj),
        json!([
            "x",
            2,
            2.7,
            true,
            "<invalid>",
            r#"{"a":1,"b":[1,"\u003c"]}"#,
            "<no value>",
            "True",
            "p",
            null
        ])
    );
    let mut empty_date = obj.clone();
    empty_date["spec"]["when"] = json!("");
    assert_eq!(cells(&cols, &empty_date)[4], json!("<unknown>"));

    // An unparseable path ends the column list, like the API server's convertor.
    let cols = crd_columns(&json!([
        {"name": "Ok", "type": "string", "jsonPath": ".a"},
        {"name": "Bad", "type": "string", "jsonPath": ".a["},
        {"name": "After", "type": "string", "jsonPath": ".b"},
    ]));
    assert_eq!(names(&cols), ["Name", "Ok"]);
}

#[test]
fn table_options() {
    let cols = builtin_columns("ConfigMap");
    let cm = json!({"metadata": {"name": "c", "creationTimestamp": "2024-05-01T11:59:55Z"}, "data": {"a": "1"}, "binaryData": {"b": "Ag=="}});
    let opts = TableOptions {
        include_object: IncludeObject::None,
        no_headers: true,
        api_version: "meta.k8s.io/v1beta1".into(),
    };
    let t = table_with_options(
        &cols,
        &[&cm],
        json!({"remainingItemCount": 3, "continue": "tok"}),
        &opts,
        now(),
    );
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(t["columnDefinitions"], Value::Null);
    assert_eq!(
        t["metadata"],
        json!({"continue": "tok", "remainingItemCount": 3})
    );
    assert_eq!(t["rows"][0]["cells"], json!(["c", 2, "5s"]));
    assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
    assert_eq!(IncludeObject::parse("None"), Ok(IncludeObject::None));
    assert_eq!(
        IncludeObject::parse("All").map_err(|e| e.to_string()),
        Err(r#"unrecognized includeObject value: "All""#.to_owned())
    );
    let empty = table(
        &cols,
        &[],
        json!({"resourceVersion": "9"}),
        IncludeObject::Metadata,
        now(),
    );
    assert_eq!(empty["rows"], json!([]));
    assert_eq!(empty["metadata"], json!({"resourceVersion": "9"}));
}

fn pod(status: Value) -> Value {
    json!({
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": status,
    })
}

#[test]
fn pod_printer() {
    let cols = builtin_columns("Pod");
    assert_eq!(
        names(&cols),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(
        cols.iter().map(|c| c.priority).collect::<Vec<_>>(),
        [0, 0, 0, 0, 0, 1, 1, 1, 1]
    );

    let running = pod(json!({
        "phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}],
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:55:00Z"}}},
            {"name": "b", "ready": false, "restartCount": 1, "state": {"running": {}}},
        ]
    }));
    assert_eq!(
        cells(&cols, &running),
        json!([
            "p",
            "1/2",
            "Running",
            "3 (5m ago)",
            "60m",
            "10.0.0.9",
            "node-1",
            "<none>",
            "<none>"
        ])
    );

    let crash = pod(
        json!({"phase": "Running", "podIP": "10.0.0.8", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}},
        ]}),
    );
    let c = cells(&cols, &crash);
    assert_eq!(c[1], "1/2");
    assert_eq!(c[2], "CrashLoopBackOff");
    assert_eq!(c[3], "4", "no last termination time: plain count");
    assert_eq!(c[5], "10.0.0.8", "podIP fallback");

    let pending = json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "a"}],
    "initContainers": [{"name": "i1"}, {"name": "i2"}]},
    "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}
    ]}});
    assert_eq!(
        cells(&cols, &pending),
        json!([
            "q",
            "0/1",
            "Init:1/2",
            "0",
            "<unknown>",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ])
    );
    let init_failed = json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "a"}],
        "initContainers": [{"name": "i1"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 2, "state": {"terminated": {"exitCode": 3}}}]}});
    assert_eq!(cells(&cols, &init_failed)[2], "Init:ExitCode:3");
    assert_eq!(cells(&cols, &init_failed)[3], "2");

    let completed = pod(json!({"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
    let t = table(&cols, &[&completed], json!({}), IncludeObject::None, now());
    assert_eq!(t["rows"][0]["cells"][2], "Completed");
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );

    let mut terminating = running.clone();
    terminating["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(cells(&cols, &terminating)[2], "Terminating");

    let mut gated = running.clone();
    gated["spec"]["readinessGates"] =
        json!([{"conditionType": "x/one"}, {"conditionType": "x/two"}]);
    gated["status"]["conditions"] =
        json!([{"type": "x/one", "status": "True"}, {"type": "x/two", "status": "False"}]);
    assert_eq!(cells(&cols, &gated)[8], "1/2");

    let mut sidecar = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "state": {"running": {}}},
        {"name": "b", "ready": true, "state": {"running": {}}}],
        "initContainerStatuses": [{"name": "s", "ready": true, "started": true, "state": {"running": {}}}]}));
    sidecar["spec"]["initContainers"] = json!([{"name": "s", "restartPolicy": "Always"}]);
    assert_eq!(cells(&cols, &sidecar)[1], "3/3");
}

#[test]
fn simple_printers() {
    let created = json!("2024-05-01T11:00:00Z");
    let ns = json!({"metadata": {"name": "default", "creationTimestamp": created}, "status": {"phase": "Active"}});
    assert_eq!(
        names(&builtin_columns("Namespace")),
        ["Name", "Status", "Age"]
    );
    assert_eq!(
        cells(&builtin_columns("Namespace"), &ns),
        json!(["default", "Active", "60m"])
    );

    let sa = json!({"metadata": {"name": "default", "creationTimestamp": created}, "secrets": [{"name": "t"}]});
    assert_eq!(
        names(&builtin_columns("ServiceAccount")),
        ["Name", "Secrets", "Age"]
    );
    assert_eq!(
        cells(&builtin_columns("ServiceAccount"), &sa),
        json!(["default", 1, "60m"])
    );

    let secret =
        json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"clientSecret": "eA=="}});
    assert_eq!(
        names(&builtin_columns("Secret")),
        ["Name", "Type", "Data", "Age"]
    );
    assert_eq!(
        cells(&builtin_columns("Secret"), &secret),
        json!(["s", "Opaque", 1, "<unknown>"])
    );

    let lease = json!({"metadata": {"name": "l", "creationTimestamp": created}, "spec": {"holderIdentity": "mic-1"}});
    assert_eq!(names(&builtin_columns("Lease")), ["Name", "Holder", "Age"]);
    assert_eq!(
        cells(&builtin_columns("Lease"), &lease),
        json!(["l", "mic-1", "60m"])
    );

    let hook =
        json!({"metadata": {"name": "h", "creationTimestamp": created}, "webhooks": [{}, {}]});
    let cols = builtin_columns("MutatingWebhookConfiguration");
    assert_eq!(names(&cols), ["Name", "Webhooks", "Age"]);
    assert_eq!(cols[1].type_, "integer");
    assert_eq!(cells(&cols, &hook), json!(["h", 2, "60m"]));

    for kind in [
        "ClusterRole",
        "Role",
        "CustomResourceDefinition",
        "ControllerRevision",
    ] {
        let cols = builtin_columns(kind);
        assert_eq!(names(&cols), ["Name", "Created At"], "{kind}");
        assert_eq!(cols[1].type_, "date");
        let obj = json!({"metadata": {"name": "r", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        assert_eq!(cells(&cols, &obj), json!(["r", "2024-01-02T03:04:05Z"]));
        assert_eq!(
            cells(&cols, &json!({"metadata": {"name": "r"}})),
            json!(["r", "0001-01-01T00:00:00Z"])
        );
    }
}

#[test]
fn node_printer() {
    let cols = builtin_columns("Node");
    assert_eq!(
        names(&cols),
        [
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ]
    );
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": "2024-04-20T12:00:00Z",
                     "labels": {"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "infra"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.1.0.4"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Ubuntu 22.04"}}
    });
    assert_eq!(
        cells(&cols, &node),
        json!([
            "n1",
            "Ready,SchedulingDisabled",
            "control-plane,infra,worker",
            "11d",
            "v1.32.0",
            "10.1.0.4",
            "<none>",
            "Ubuntu 22.04",
            "<unknown>",
            "<unknown>"
        ])
    );
    let bare = json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(cells(&cols, &bare)[1], "NotReady");
    assert_eq!(cells(&cols, &bare)[2], "<none>");
    assert_eq!(
        cells(&cols, &json!({"metadata": {"name": "n3"}}))[1],
        "Unknown"
    );
}

#[test]
fn event_printer() {
    let cols = builtin_columns("Event");
    assert_eq!(
        names(&cols),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    assert_eq!(cols[9].format, "name");
    assert_eq!(cols[9].priority, 1);
    let ev = json!({
        "metadata": {"name": "p.17a"},
        "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
        "reason": "Pulled", "type": "Normal", "message": "  Pulled image  \n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:58:00Z", "count": 3
    });
    assert_eq!(
        cells(&cols, &ev),
        json!([
            "2m",
            "Normal",
            "Pulled",
            "pod/p",
            "spec.containers{a}",
            "kubelet, node-1",
            "Pulled image",
            "10m",
            3,
            "p.17a"
        ])
    );
    let new_style = json!({
        "metadata": {"name": "e"}, "involvedObject": {"kind": "Node"}, "type": "Warning",
        "reportingComponent": "mic", "eventTime": "2024-05-01T11:59:00.000000Z"
    });
    let c = cells(&cols, &new_style);
    assert_eq!(c[0], "60s");
    assert_eq!(c[3], "node");
    assert_eq!(c[5], "mic");
    assert_eq!(c[7], "60s");
    assert_eq!(c[8], 1);
}

#[test]
fn binding_and_endpoints_printers() {
    let cols = builtin_columns("ClusterRoleBinding");
    assert_eq!(
        names(&cols),
        ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    );
    let b = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                     {"kind": "ServiceAccount", "namespace": "kube-system", "name": "mic"},
                     {"kind": "User", "name": "bob"}]});
    assert_eq!(
        cells(&cols, &b),
        json!([
            "b",
            "ClusterRole/admin",
            "<unknown>",
            "alice, bob",
            "devs",
            "kube-system/mic"
        ])
    );
    assert_eq!(
        names(&builtin_columns("RoleBinding")),
        ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    );

    let cols = builtin_columns("Endpoints");
    assert_eq!(names(&cols), ["Name", "Endpoints", "Age"]);
    let ep = json!({"metadata": {"name": "aad-pod-identity-mic"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "fd00::1"}]}]});
    assert_eq!(
        cells(&cols, &ep)[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."
    );
    let small = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]});
    assert_eq!(cells(&cols, &small)[1], "[fd00::1]:53");
    assert_eq!(
        cells(&cols, &json!({"metadata": {"name": "e"}}))[1],
        "<none>"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z0-9:./-]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("type".to_owned()),
            Just("properties".to_owned()),
            Just("items".to_owned()),
            Just("additionalProperties".to_owned()),
            Just("required".to_owned()),
            Just("enum".to_owned()),
            Just("default".to_owned()),
            Just("nullable".to_owned()),
            Just("format".to_owned()),
            Just("anyOf".to_owned()),
            Just("x-kubernetes-embedded-resource".to_owned()),
            Just("x-kubernetes-preserve-unknown-fields".to_owned()),
            Just("x-kubernetes-int-or-string".to_owned()),
            Just("maxLength".to_owned()),
            Just("minimum".to_owned()),
            Just("multipleOf".to_owned()),
            Just("metadata".to_owned()),
            Just("spec".to_owned()),
            Just("apiVersion".to_owned()),
            Just("kind".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    #[test]
    fn validate_and_prune_never_panic(schema in arb_json(), obj in arb_json()) {
        let _ = validate(&schema, &obj);
        let mut o = obj.clone();
        let _ = prune(&schema, &mut o);
        prune_nulls(&schema, &mut o);
        apply_defaults(&schema, &mut o);
        let mut o = obj;
        let _ = admit(&schema, &mut o);
    }

    #[test]
    fn realistic_schema_never_panics_and_prune_is_idempotent(obj in arb_json()) {
        let schema = widget_schema();
        let _ = validate(&schema, &obj);
        let mut o = obj;
        let _ = prune(&schema, &mut o);
        proptest::prop_assert!(prune(&schema, &mut o).is_empty());
    }

    #[test]
    fn defaults_are_idempotent(schema in arb_json(), obj in arb_json()) {
        let mut o = obj;
        apply_defaults(&schema, &mut o);
        let once = o.clone();
        apply_defaults(&schema, &mut o);
        proptest::prop_assert_eq!(o, once);
    }

    #[test]
    fn tables_never_panic(obj in arb_json(), cols in arb_json()) {
        let kinds = ["Pod", "Node", "Event", "Endpoints", "RoleBinding", "Secret", "ConfigMap",
            "ServiceAccount", "Namespace", "Lease", "MutatingWebhookConfiguration", "Role", "X"];
        for kind in kinds {
            let _ = table(&builtin_columns(kind), &[&obj], obj.clone(), IncludeObject::Metadata, now());
        }
        let _ = table(&crd_columns(&cols), &[&obj], json!({}), IncludeObject::Object, now());
    }

    #[test]
    fn jsonpath_never_panics(path in "[.\\[\\]?@=!<>()'\"*:,a-c0-9 $-]{0,16}", obj in arb_json()) {
        if let Ok(p) = JsonPath::parse(&path) {
            let _ = p.find(&obj);
        }
    }

    #[test]
    fn human_duration_never_panics(n in proptest::num::i64::ANY) {
        let s = human_duration_nanos(i128::from(n) * 1_000);
        proptest::prop_assert!(!s.is_empty());
    }
}
