//! Field selectors (`k8s.io/apimachinery/pkg/fields`) and the per-kind field tables of the
//! Kubernetes API server (`AddFieldLabelConversionFunc` + `ToSelectableFields`).
//!
//! # Syntax
//!
//! A comma-separated list of `field=value`, `field==value` or `field!=value` terms, ANDed.
//! As in `fields.ParseSelector`, terms are split at unescaped commas, sorted, and each is split
//! at the first operator; the value is then unescaped (`fields.UnescapeValue`): `\\`, `\,` and
//! `\=` are the only escapes, a lone `=` or `,` in a value is an error. (Upstream has no `\!`
//! escape; `!` is an ordinary character in values, and `\!` is rejected as an invalid escape.)
//!
//! # Kinds
//!
//! [`FieldSelector::validate`] / [`FieldSelector::convert`] check the fields against the table
//! for a built-in kind, identified as `"Kind"` or `"group/Kind"` (`"Pod"`, `"Event"`,
//! `"events.k8s.io/Event"`, `"batch/Job"`, ...):
//!
//! | kind | fields besides `metadata.name`/`metadata.namespace` |
//! |------|-----------------------------------------------------|
//! | Pod | `spec.nodeName` (alias `spec.host`), `spec.restartPolicy`, `spec.schedulerName`, `spec.serviceAccountName`, `spec.hostNetwork`, `status.phase`, `status.podIP`, `status.podIPs`, `status.nominatedNodeName` |
//! | Event (core/v1) | `involvedObject.{kind,namespace,name,uid,apiVersion,resourceVersion,fieldPath}`, `reason`, `reportingComponent`, `source`, `type` |
//! | events.k8s.io/Event | `regarding.{kind,namespace,name,uid,apiVersion,resourceVersion,fieldPath}`, `reason`, `reportingController`, `type` (converted to the core names) |
//! | Secret | `type` |
//! | Service | `spec.clusterIP`, `spec.type` |
//! | ReplicationController | `status.replicas` |
//! | batch/Job | `status.successful` |
//! | Namespace (cluster-scoped) | `status.phase`; only `metadata.name` |
//! | Node (cluster-scoped) | `spec.unschedulable`; only `metadata.name` |
//!
//! Unsupported fields give `field label not supported: <field>` (Jobs:
//! `field label "<field>" not supported for batchv1.Job`). Built-in kinds *without* a table
//! (ConfigMap, ServiceAccount, Deployment, ...) accept only `metadata.name` and
//! `metadata.namespace` and answer with apimachinery's default text
//! `"<field>" is not a known field selector: only "metadata.name", "metadata.namespace"`.
//! Custom resources use [`FieldSelector::validate_for`] with [`SelectableKind::Custom`]:
//! `metadata.name`, `metadata.namespace` (namespaced CRDs only) and the CRD's
//! `selectableFields`, else `field label not supported: <field>` (the apiextensions text).
//!
//! # Values
//!
//! [`field_value`] extracts what `ToSelectableFields` would put in the field set: strings as
//! is, booleans as `true`/`false`, numbers in decimal, missing fields as `""`. Special cases
//! follow upstream: `spec.hostNetwork` and `spec.unschedulable` default to `"false"`;
//! `status.podIP` is the first entry of `status.podIPs` (falling back to `status.podIP`);
//! `status.podIPs` is accepted by the conversion function but never put in the field set, so
//! its value is always `""` (`status.podIPs=x` matches nothing, `status.podIPs!=x` everything);
//! Event `source` is `source.component`, falling back to `reportingComponent`;
//! `status.replicas`/`status.successful` (from `status.succeeded`) default to `"0"`. Event
//! fields read both shapes (`involvedObject` or `regarding`, `reportingComponent` or
//! `reportingController`), so either API version's stored JSON can be matched.

use std::fmt;

use serde_json::Value;

use crate::SelectorError;
use crate::gofmt::go_quote;

/// A field selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value`
    Equals,
    /// `field==value` (same meaning as `=`)
    DoubleEquals,
    /// `field!=value`
    NotEquals,
}

/// One `field op value` term (value already unescaped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    /// The field label, e.g. `spec.nodeName`.
    pub field: String,
    /// The operator.
    pub operator: FieldOperator,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// What kind of object a selector is validated against.
#[derive(Debug, Clone, Copy)]
pub enum SelectableKind<'a> {
    /// A built-in kind: `"Pod"`, `"events.k8s.io/Event"`, `"batch/Job"`, `"ConfigMap"`, ...
    Builtin(&'a str),
    /// A custom resource.
    Custom {
        /// Cluster-scoped CRDs do not accept `metadata.namespace`.
        cluster_scoped: bool,
        /// The CRD version's `selectableFields` as field labels (`spec.color`, no leading dot).
        selectable_fields: &'a [&'a str],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorStyle {
    /// `field label not supported: %s`
    NotSupported,
    /// `field label %q not supported for batchv1.Job`
    BatchJob,
}

struct KindTable {
    group: &'static str,
    kind: &'static str,
    /// (accepted label, label it converts to)
    fields: &'static [(&'static str, &'static str)],
    style: ErrorStyle,
}

const META: [(&str, &str); 2] = [
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
];

static TABLES: &[KindTable] = &[
    KindTable {
        group: "",
        kind: "Pod",
        fields: &[
            META[0],
            META[1],
            ("spec.nodeName", "spec.nodeName"),
            ("spec.restartPolicy", "spec.restartPolicy"),
            ("spec.schedulerName", "spec.schedulerName"),
            ("spec.serviceAccountName", "spec.serviceAccountName"),
            ("spec.hostNetwork", "spec.hostNetwork"),
            ("status.phase", "status.phase"),
            ("status.podIP", "status.podIP"),
            ("status.podIPs", "status.podIPs"),
            ("status.nominatedNodeName", "status.nominatedNodeName"),
            ("spec.host", "spec.nodeName"),
        ],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "",
        kind: "Node",
        fields: &[
            ("metadata.name", "metadata.name"),
            ("spec.unschedulable", "spec.unschedulable"),
        ],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "",
        kind: "ReplicationController",
        fields: &[META[0], META[1], ("status.replicas", "status.replicas")],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "",
        kind: "Event",
        fields: &[
            ("involvedObject.kind", "involvedObject.kind"),
            ("involvedObject.namespace", "involvedObject.namespace"),
            ("involvedObject.name", "involvedObject.name"),
            ("involvedObject.uid", "involvedObject.uid"),
            ("involvedObject.apiVersion", "involvedObject.apiVersion"),
            (
                "involvedObject.resourceVersion",
                "involvedObject.resourceVersion",
            ),
            ("involvedObject.fieldPath", "involvedObject.fieldPath"),
            ("reason", "reason"),
            ("reportingComponent", "reportingComponent"),
            ("source", "source"),
            ("type", "type"),
            META[1],
            META[0],
        ],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "events.k8s.io",
        kind: "Event",
        fields: &[
            ("reason", "reason"),
            ("regarding.kind", "involvedObject.kind"),
            ("regarding.namespace", "involvedObject.namespace"),
            ("regarding.name", "involvedObject.name"),
            ("regarding.uid", "involvedObject.uid"),
            ("regarding.apiVersion", "involvedObject.apiVersion"),
            (
                "regarding.resourceVersion",
                "involvedObject.resourceVersion",
            ),
            ("regarding.fieldPath", "involvedObject.fieldPath"),
            ("reportingController", "reportingComponent"),
            ("type", "type"),
            META[1],
            META[0],
        ],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "",
        kind: "Namespace",
        fields: &[
            ("status.phase", "status.phase"),
            ("metadata.name", "metadata.name"),
        ],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "",
        kind: "Secret",
        fields: &[("type", "type"), META[1], META[0]],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "",
        kind: "Service",
        fields: &[
            META[1],
            META[0],
            ("spec.clusterIP", "spec.clusterIP"),
            ("spec.type", "spec.type"),
        ],
        style: ErrorStyle::NotSupported,
    },
    KindTable {
        group: "batch",
        kind: "Job",
        fields: &[META[0], META[1], ("status.successful", "status.successful")],
        style: ErrorStyle::BatchJob,
    },
];

fn lookup_table(kind: &str) -> Option<&'static KindTable> {
    let (group, kind) = match kind.rsplit_once('/') {
        Some((g, k)) => (Some(g), k),
        None => (None, kind),
    };
    let group = group.map(|g| if g == "core" { "" } else { g });
    match group {
        Some(g) => TABLES.iter().find(|t| t.group == g && t.kind == kind),
        None => TABLES
            .iter()
            .find(|t| t.kind == kind && t.group.is_empty())
            .or_else(|| TABLES.iter().find(|t| t.kind == kind)),
    }
}

/// Whether `kind` (`"Kind"` or `"group/Kind"`) has its own field-label table. Built-in kinds
/// without one accept only `metadata.name` and `metadata.namespace`.
pub fn has_field_table(kind: &str) -> bool {
    lookup_table(kind).is_some()
}

/// The field labels a built-in kind accepts (including aliases such as `spec.host`).
pub fn supported_fields(kind: &str) -> Vec<&'static str> {
    match lookup_table(kind) {
        Some(t) => t.fields.iter().map(|(label, _)| *label).collect(),
        None => vec!["metadata.name", "metadata.namespace"],
    }
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Parses `?fieldSelector=` syntax (`fields.ParseSelector`).
    pub fn parse(selector: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::Parse(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(rhs)?;
            requirements.push(FieldRequirement {
                field: lhs.to_string(),
                operator: op,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Builds a selector from requirements (kept in the given order).
    pub fn from_requirements(requirements: Vec<FieldRequirement>) -> FieldSelector {
        FieldSelector { requirements }
    }

    /// The terms.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Checks every field against a built-in kind's table (see the module docs).
    pub fn validate(&self, kind: &str) -> Result<(), SelectorError> {
        self.convert(kind).map(|_| ())
    }

    /// Like [`FieldSelector::validate`], returning the selector with field labels converted
    /// to their canonical names (`spec.host` → `spec.nodeName`, `regarding.kind` →
    /// `involvedObject.kind`, `reportingController` → `reportingComponent`), as the
    /// apiserver's `Transform` does before matching.
    pub fn convert(&self, kind: &str) -> Result<FieldSelector, SelectorError> {
        self.convert_for(SelectableKind::Builtin(kind))
    }

    /// Validates against a built-in kind or a custom resource.
    pub fn validate_for(&self, target: SelectableKind<'_>) -> Result<(), SelectorError> {
        self.convert_for(target).map(|_| ())
    }

    /// Validates and converts against a built-in kind or a custom resource.
    pub fn convert_for(&self, target: SelectableKind<'_>) -> Result<FieldSelector, SelectorError> {
        let mut out = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let field = convert_label(target, &r.field)?;
            out.push(FieldRequirement {
                field,
                operator: r.operator,
                value: r.value.clone(),
            });
        }
        Ok(FieldSelector { requirements: out })
    }

    /// Whether the object satisfies every term, using [`field_value`] for extraction.
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_value(obj, &r.field);
            match r.operator {
                FieldOperator::Equals | FieldOperator::DoubleEquals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }

    /// The value an `=`/`==` term requires for `field` (e.g. `spec.nodeName=node-1` →
    /// `Some("node-1")`), for index lookups (`RequiresExactMatch`).
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| {
                r.field == field
                    && matches!(
                        r.operator,
                        FieldOperator::Equals | FieldOperator::DoubleEquals
                    )
            })
            .map(|r| r.value.as_str())
    }
}

fn convert_label(target: SelectableKind<'_>, label: &str) -> Result<String, SelectorError> {
    match target {
        SelectableKind::Builtin(kind) => match lookup_table(kind) {
            Some(table) => match table.fields.iter().find(|(l, _)| *l == label) {
                Some((_, canonical)) => Ok((*canonical).to_string()),
                None => Err(SelectorError::UnsupportedField(match table.style {
                    ErrorStyle::NotSupported => format!("field label not supported: {label}"),
                    ErrorStyle::BatchJob => format!(
                        "field label {} not supported for batchv1.Job",
                        go_quote(label)
                    ),
                })),
            },
            None => match label {
                "metadata.name" | "metadata.namespace" => Ok(label.to_string()),
                _ => Err(SelectorError::UnsupportedField(format!(
                    "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    go_quote(label)
                ))),
            },
        },
        SelectableKind::Custom {
            cluster_scoped,
            selectable_fields,
        } => {
            if label == "metadata.name"
                || (!cluster_scoped && label == "metadata.namespace")
                || selectable_fields.contains(&label)
            {
                Ok(label.to_string())
            } else {
                Err(SelectorError::UnsupportedField(format!(
                    "field label not supported: {label}"
                )))
            }
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.operator {
                FieldOperator::Equals | FieldOperator::DoubleEquals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// `fields.EscapeValue`: escapes `\`, `,` and `=`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `fields.UnescapeValue`.
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(SelectorError::Parse(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::Parse(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(SelectorError::Parse(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

/// Splits at commas not preceded by an (unescaped) backslash (`fields.splitTerms`).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator occurrence (`!=`, `==`, `=` tried at each position).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        if let Some(r) = rest.strip_prefix("!=") {
            return Some((&term[..i], FieldOperator::NotEquals, r));
        }
        if let Some(r) = rest.strip_prefix("==") {
            return Some((&term[..i], FieldOperator::DoubleEquals, r));
        }
        if let Some(r) = rest.strip_prefix('=') {
            return Some((&term[..i], FieldOperator::Equals, r));
        }
    }
    None
}

fn get_path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |cur, seg| cur.get(seg))
}

fn scalar_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// The value of a (converted) field label in an object, as `ToSelectableFields` renders it.
/// See the module docs for the special cases.
pub fn field_value(obj: &Value, field: &str) -> String {
    let generic = |path: &str| scalar_string(get_path(obj, path));
    let value = match field {
        "spec.hostNetwork" | "spec.unschedulable" => {
            Some(generic(field).unwrap_or_else(|| "false".to_string()))
        }
        "status.podIP" => non_empty(scalar_string(obj.pointer("/status/podIPs/0/ip")))
            .or_else(|| generic("status.podIP")),
        "status.podIPs" => None,
        "status.replicas" => Some(generic(field).unwrap_or_else(|| "0".to_string())),
        "status.successful" => Some(generic("status.succeeded").unwrap_or_else(|| "0".to_string())),
        "source" => non_empty(generic("source.component"))
            .or_else(|| non_empty(generic("deprecatedSource.component")))
            .or_else(|| non_empty(generic("reportingComponent")))
            .or_else(|| generic("reportingController")),
        "reportingComponent" => {
            non_empty(generic("reportingComponent")).or_else(|| generic("reportingController"))
        }
        "reportingController" => {
            non_empty(generic("reportingController")).or_else(|| generic("reportingComponent"))
        }
        _ => {
            if let Some(rest) = field.strip_prefix("involvedObject.") {
                generic(field).or_else(|| generic(&format!("regarding.{rest}")))
            } else if let Some(rest) = field.strip_prefix("regarding.") {
                generic(field).or_else(|| generic(&format!("involvedObject.{rest}")))
            } else {
                generic(field)
            }
        }
    };
    value.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parse_and_display() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("a=b", "a=b"),
            ("a==b", "a=b"),
            ("a!=b", "a!=b"),
            ("b=2,a=1", "a=1,b=2"),
            ("a=x\\,y", "a=x\\,y"),
            ("a=x\\=y", "a=x\\=y"),
            ("a=x\\\\y", "a=x\\\\y"),
            ("a=!b", "a=!b"),
            ("a=", "a="),
            (",a=b,", "a=b"),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).to_string(), *want, "input {input:?}");
        }
        assert_eq!(parse("a=x\\,y").requirements()[0].value, "x,y");
        assert_eq!(parse("a=x\\=y").requirements()[0].value, "x=y");
        assert_eq!(parse("a=x\\\\y").requirements()[0].value, "x\\y");
        assert_eq!(
            parse("a!=b").requirements()[0].operator,
            FieldOperator::NotEquals
        );
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            ("ab", "invalid selector: 'ab'; can't understand 'ab'"),
            (
                "a=b,cd",
                "invalid selector: 'a=b,cd'; can't understand 'cd'",
            ),
            ("a!b", "invalid selector: 'a!b'; can't understand 'a!b'"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a=b\\",
                "invalid field selector: invalid escape sequence: \\",
            ),
            (
                "a=b\\!",
                "invalid field selector: invalid escape sequence: \\!",
            ),
        ];
        for (input, want) in cases {
            match FieldSelector::parse(input) {
                Ok(s) => panic!("{input:?} accepted as {s}"),
                Err(e) => assert_eq!(e.to_string(), *want, "input {input:?}"),
            }
        }
    }

    #[test]
    fn validation_per_kind() {
        let ok: &[(&str, &str)] = &[
            ("Pod", "spec.nodeName=n"),
            ("Pod", "status.phase=Running,metadata.namespace=default"),
            ("Pod", "status.podIPs=10.0.0.1"),
            ("Event", "involvedObject.name=x,source=kubelet,type=Warning"),
            (
                "events.k8s.io/Event",
                "regarding.name=x,reportingController=c",
            ),
            ("Secret", "type=Opaque"),
            ("Namespace", "status.phase=Active"),
            ("Node", "spec.unschedulable=true"),
            ("ConfigMap", "metadata.name=x"),
            ("Service", "spec.clusterIP=None"),
            ("batch/Job", "status.successful=1"),
        ];
        for (kind, sel) in ok {
            assert!(parse(sel).validate(kind).is_ok(), "{kind} {sel}");
        }
        let bad: &[(&str, &str, &str)] = &[
            ("Pod", "spec.foo=x", "field label not supported: spec.foo"),
            (
                "Event",
                "regarding.name=x",
                "field label not supported: regarding.name",
            ),
            (
                "events.k8s.io/Event",
                "involvedObject.name=x",
                "field label not supported: involvedObject.name",
            ),
            (
                "Node",
                "metadata.namespace=x",
                "field label not supported: metadata.namespace",
            ),
            (
                "Namespace",
                "metadata.namespace=",
                "field label not supported: metadata.namespace",
            ),
            ("Secret", "data.x=y", "field label not supported: data.x"),
            (
                "ConfigMap",
                "data.x=y",
                "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            ),
            (
                "ServiceAccount",
                "secrets=y",
                "\"secrets\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            ),
            (
                "Job",
                "spec.x=y",
                "field label \"spec.x\" not supported for batchv1.Job",
            ),
        ];
        for (kind, sel, want) in bad {
            match parse(sel).validate(kind) {
                Ok(()) => panic!("{kind} {sel} accepted"),
                Err(e) => assert_eq!(e.to_string(), *want),
            }
        }
        assert!(has_field_table("Pod"));
        assert!(has_field_table("events.k8s.io/Event"));
        assert!(!has_field_table("ConfigMap"));
        assert!(supported_fields("Pod").contains(&"spec.host"));
    }

    #[test]
    fn custom_resources() {
        let fields = ["spec.color"];
        let namespaced = SelectableKind::Custom {
            cluster_scoped: false,
            selectable_fields: &fields,
        };
        let cluster = SelectableKind::Custom {
            cluster_scoped: true,
            selectable_fields: &[],
        };
        assert!(
            parse("metadata.namespace=a")
                .validate_for(namespaced)
                .is_ok()
        );
        assert!(parse("spec.color=red").validate_for(namespaced).is_ok());
        assert_eq!(
            parse("metadata.namespace=a")
                .validate_for(cluster)
                .map_err(|e| e.to_string()),
            Err("field label not supported: metadata.namespace".to_string())
        );
        assert_eq!(
            parse("spec.size=1")
                .validate_for(namespaced)
                .map_err(|e| e.to_string()),
            Err("field label not supported: spec.size".to_string())
        );
        let obj = json!({"spec": {"color": "red"}});
        assert!(parse("spec.color=red").matches(&obj));
    }

    #[test]
    fn conversion_aliases() {
        let pod = parse("spec.host=n1").convert("Pod").unwrap_or_default();
        assert_eq!(pod.to_string(), "spec.nodeName=n1");
        let ev = parse("regarding.name=x,reportingController=c")
            .convert("events.k8s.io/Event")
            .unwrap_or_default();
        assert_eq!(ev.to_string(), "involvedObject.name=x,reportingComponent=c");
        let new_event = json!({"regarding": {"name": "x"}, "reportingController": "c"});
        assert!(ev.matches(&new_event));
    }

    #[test]
    fn pod_matching() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "node-1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}
        });
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("spec.nodeName=node-1", true),
            ("spec.nodeName==node-1", true),
            ("spec.nodeName=node-2", false),
            ("spec.nodeName!=node-2", true),
            ("metadata.name=p,metadata.namespace=ns", true),
            ("metadata.namespace!=ns", false),
            ("spec.hostNetwork=false", true),
            ("spec.hostNetwork=true", false),
            ("status.podIP=10.0.0.1", true),
            ("status.podIPs=10.0.0.1", false),
            ("status.podIPs!=10.0.0.1", true),
            ("status.nominatedNodeName=", true),
            ("spec.schedulerName=", true),
            ("status.phase!=Running", false),
        ];
        for (sel, want) in cases {
            assert_eq!(parse(sel).matches(&pod), *want, "selector {sel:?}");
        }
        let host = json!({"spec": {"hostNetwork": true}});
        assert!(parse("spec.hostNetwork=true").matches(&host));
    }

    #[test]
    fn other_kinds_matching() {
        let event = json!({
            "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"},
            "reason": "Started", "type": "Normal", "source": {"component": "kubelet"}
        });
        assert!(
            parse("involvedObject.kind=Pod,involvedObject.uid=u1,source=kubelet").matches(&event)
        );
        assert!(parse("reportingComponent=").matches(&event));
        let event2 = json!({"reportingComponent": "ctrl"});
        assert!(parse("source=ctrl").matches(&event2));
        let node = json!({"spec": {}});
        assert!(parse("spec.unschedulable=false").matches(&node));
        let secret = json!({"type": "kubernetes.io/tls"});
        assert!(parse("type=kubernetes.io/tls").matches(&secret));
        let job = json!({"status": {"succeeded": 2}});
        assert!(parse("status.successful=2").matches(&job));
        assert!(parse("status.successful=0").matches(&json!({})));
    }

    #[test]
    fn exact_values() {
        let s = parse("spec.nodeName=node-1,status.phase!=Failed");
        assert_eq!(s.exact_value("spec.nodeName"), Some("node-1"));
        assert_eq!(s.exact_value("status.phase"), None);
        assert_eq!(parse("a==b").exact_value("a"), Some("b"));
    }
}
