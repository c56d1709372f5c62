//! Property tests: parsers never panic, canonical forms round-trip, patch identities.

use kube_sim_machinery::patch::{
    CoreMergeKeys, json_patch, merge_patch, server_side_apply, strategic_merge_patch,
};
use kube_sim_machinery::{FieldSelector, LabelSelector};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn label_key() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z]{2,4})?"),
        "[A-Za-z0-9]([A-Za-z0-9_.-]{0,8}[A-Za-z0-9])?",
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(p) => format!("{p}/{name}"),
            None => name,
        })
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9]([A-Za-z0-9_.-]{0,8}[A-Za-z0-9])?",
        Just("in".to_string()),
        Just("notin".to_string()),
    ]
}

fn requirement() -> impl Strategy<Value = String> {
    (
        label_key(),
        0..9usize,
        prop::collection::vec(label_value(), 1..4),
        0i64..100, // negative operands fail label-value validation upstream too
        " {0,2}",
    )
        .prop_map(|(key, op, mut values, n, ws)| {
            // upstream rejects trailing runs of empty set values such as `(a,,)`; an empty
            // value may only lead the list (which is how the canonical form prints it)
            values.sort();
            values.dedup();
            (key, op, values, n, ws)
        })
        .prop_map(|(key, op, values, n, ws)| match op {
            0 => format!("{key}{ws}={ws}{}", values[0]),
            1 => format!("{key}=={}", values[0]),
            2 => format!("{key}!={}", values[0]),
            3 => format!("{key} in ({})", values.join(",")),
            4 => format!("{key} notin ({})", values.join(", ")),
            5 => key,
            6 => format!("!{key}"),
            7 => format!("{key}>{n}"),
            _ => format!("{key}<{n}"),
        })
}

fn selector_string() -> impl Strategy<Value = String> {
    prop::collection::vec(requirement(), 0..5).prop_map(|reqs| reqs.join(","))
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(|n| json!(n)),
        "[a-z]{0,5}".prop_map(Value::String),
    ]
}

/// Arbitrary JSON without nulls.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON objects without nulls or arrays.
fn json_map_only() -> impl Strategy<Value = Value> {
    let leaf = json_leaf();
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    })
    .prop_map(|v| match v {
        Value::Object(_) => v,
        other => {
            let mut m = Map::new();
            m.insert("x".to_string(), other);
            Value::Object(m)
        }
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,4}", json_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn label_parse_never_panics(s in ".{0,64}") {
        let _ = LabelSelector::parse(&s);
    }

    #[test]
    fn label_parse_never_panics_on_syntax_soup(s in "[a-z0-9!=(),<> \\t/._-]{0,40}|(in|notin|[!=(),]| )*") {
        if let Ok(sel) = LabelSelector::parse(&s) {
            let again = LabelSelector::parse(&sel.to_string());
            prop_assert_eq!(again, Ok(sel));
        }
    }

    #[test]
    fn label_selector_round_trips(s in selector_string()) {
        let sel = LabelSelector::parse(&s);
        prop_assert!(sel.is_ok(), "{:?} failed: {:?}", s, sel);
        if let Ok(sel) = sel {
            let printed = sel.to_string();
            prop_assert_eq!(LabelSelector::parse(&printed), Ok(sel.clone()));
            prop_assert_eq!(printed.parse::<LabelSelector>().map(|s| s.to_string()), Ok(printed.clone()));
        }
    }

    #[test]
    fn field_parse_never_panics_and_normalizes(s in ".{0,48}|[a-z.=!,\\\\]{0,24}") {
        if let Ok(sel) = FieldSelector::parse(&s) {
            let printed = sel.to_string();
            let again = FieldSelector::parse(&printed);
            prop_assert!(again.is_ok(), "{:?} printed as {:?}", s, printed);
            if let Ok(again) = again {
                // Terms are ANDed, and parsing sorts the *escaped* terms as upstream does, so re-parsing a printed
                // selector may order them differently (`==a` prints as `=a`); the same terms must come back.
                let terms = |x: &FieldSelector| {
                    let mut v: Vec<String> = x
                        .requirements()
                        .iter()
                        .map(|r| FieldSelector::from_requirements(vec![r.clone()]).to_string())
                        .collect();
                    v.sort();
                    v
                };
                prop_assert_eq!(terms(&again), terms(&sel));
                let reprinted = FieldSelector::parse(&again.to_string()).map(|x| x.to_string());
                prop_assert_eq!(reprinted, Ok(again.to_string()));
            }
        }
    }

    #[test]
    fn field_values_round_trip(field in "[a-z]{1,6}(\\.[a-z]{1,6})?", value in ".{0,16}") {
        let sel = FieldSelector::from_requirements(vec![kube_sim_machinery::fields::FieldRequirement {
            field: field.clone(),
            operator: kube_sim_machinery::fields::FieldOperator::Equals,
            value: value.clone(),
        }]);
        let parsed = FieldSelector::parse(&sel.to_string());
        prop_assert!(parsed.is_ok());
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed.exact_value(&field), Some(value.as_str()));
        }
    }

    #[test]
    fn merge_patch_with_itself_is_identity(x in json_object()) {
        prop_assert_eq!(merge_patch(&x, &x), x);
    }

    #[test]
    fn merge_patch_with_empty_object_is_identity(x in json_object()) {
        prop_assert_eq!(merge_patch(&x, &json!({})), x);
    }

    #[test]
    fn json_patch_empty_is_identity(x in json_value()) {
        prop_assert_eq!(json_patch(&x, &json!([])), Ok(x));
    }

    #[test]
    fn json_patch_add_then_remove_is_identity(x in json_object(), key in "[a-z~/]{1,5}", v in json_value()) {
        let mut obj = x.clone();
        if let Some(m) = obj.as_object_mut() {
            m.remove(&key);
        }
        let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
        let patch = json!([
            {"op": "add", "path": pointer, "value": v},
            {"op": "remove", "path": pointer}
        ]);
        prop_assert_eq!(json_patch(&obj, &patch), Ok(obj.clone()));
    }

    #[test]
    fn strategic_patch_identities(x in json_object(), m in json_map_only()) {
        let keys = CoreMergeKeys::for_kind("Pod");
        prop_assert_eq!(strategic_merge_patch(&x, &json!({}), &keys), Ok(x.clone()));
        // without lists, a strategic patch with itself is the identity
        prop_assert_eq!(strategic_merge_patch(&m, &m, &keys), Ok(m.clone()));
        // and on maps it agrees with JSON merge patch
        prop_assert_eq!(strategic_merge_patch(&x, &m, &keys), Ok(merge_patch(&x, &m)));
    }

    #[test]
    fn apply_is_idempotent(spec in json_map_only()) {
        let keys = CoreMergeKeys::for_kind("Widget");
        let cfg = json!({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
        let first = server_side_apply(None, &cfg, "m", false, "t0", &keys);
        prop_assert!(first.is_ok());
        if let Ok(first) = first {
            let second = server_side_apply(Some(&first), &cfg, "m", false, "t0", &keys);
            prop_assert_eq!(second, Ok(first));
        }
    }
}
