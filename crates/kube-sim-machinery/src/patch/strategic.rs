//! Kubernetes strategic merge patch (`k8s.io/apimachinery/pkg/util/strategicpatch`), the
//! server side: `StrategicMergeMapPatch` with `MergeParallelList` and `IgnoreUnmatchedNulls`.

use serde_json::{Map, Value};

use super::PatchError;
use super::keys::{ListStrategy, MergeKeys};
use crate::gofmt::{go_display, go_type_name, unmarshal_type_error};

const DIRECTIVE_MARKER: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

const ERR_BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Applies a Kubernetes strategic merge patch (`application/strategic-merge-patch+json`).
///
/// Semantics (as `strategicpatch.StrategicMergeMapPatch` on the API server):
///
/// * Maps merge recursively; `null` deletes a key; scalars and type changes replace.
/// * Lists follow `schema` ([`MergeKeys`]): lists with a merge key merge element-wise (patch
///   elements update the element with the same key value, others are added), primitive merge
///   lists are unioned, all other lists are replaced.
/// * Without `$setElementOrder`, the merged list keeps the relative order of the patch items
///   and of the server-only items and interleaves them by their position in the live list
///   (upstream `normalizeElementOrder`/`mergeSortedSlice`; a patch item that is new to the
///   list is placed before the server-only items that follow it).
/// * Directives: `$patch: replace` (map: the map becomes the patch; list element: the list
///   becomes the other patch elements), `$patch: delete` (list element: remove the elements
///   with that key; map: empty the map, as upstream leaves `{}`), `$patch: merge` (explicit
///   default), `$retainKeys`,
///   `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` (the resulting order
///   follows the directive, then the patch, then the live list, as `kubectl apply` expects).
///
/// Deviations (all on malformed or unusual input): a value added where the live object has
/// none is itself run through the patch rules (directives and `null`s are removed instead of
/// being stored verbatim; a new map with `$patch: delete` is simply not added);
/// `$patch: merge` is accepted on maps and list elements (upstream rejects it); lists without
/// patch strategy ignore `$setElementOrder`.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    schema: &dyn MergeKeys,
) -> Result<Value, PatchError> {
    let Value::Object(original) = target else {
        return Err(PatchError::BadRequest(format!(
            "the object to patch must be a JSON object, not {}",
            go_type_name(target)
        )));
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(unmarshal_type_error(
            patch,
            "map[string]interface {}",
        )));
    };
    let merged = merge_map(original.clone(), patch.clone(), "", schema)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn element_path(path: &str) -> String {
    format!("{path}[]")
}

fn err_no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::Other(format!(
        "map: {} does not contain declared merge key: {key}",
        go_display(&Value::Object(m.clone()))
    ))
}

fn err_bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::Other(format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    ))
}

fn err_bad_patch_type(directive: &Value, m: &Map<String, Value>) -> PatchError {
    PatchError::Other(format!(
        "unknown patch type: {} in map: {}",
        go_display(directive),
        go_display(&Value::Object(m.clone()))
    ))
}

/// `"$prefix/field"` → `field`.
fn extract_key<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let (first, rest) = s.split_once('/')?;
    (first == prefix).then_some(rest)
}

/// Merges `patch` into `original`. `None` means the map is deleted (`$patch: delete`).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    path: &str,
    schema: &dyn MergeKeys,
) -> Result<Option<Map<String, Value>>, PatchError> {
    if let Some(directive) = patch.remove(DIRECTIVE_MARKER) {
        match directive.as_str() {
            Some("replace") => {
                return Ok(Some(
                    merge_map(Map::new(), patch, path, schema)?.unwrap_or_default(),
                ));
            }
            Some("delete") => return Ok(None),
            Some("merge") => {}
            _ => {
                patch.insert(DIRECTIVE_MARKER.to_string(), directive.clone());
                return Err(err_bad_patch_type(&directive, &patch));
            }
        }
    }

    if let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) {
        let Value::Array(retain) = retain else {
            return Err(PatchError::BadRequest(ERR_BAD_RETAIN_KEYS.to_string()));
        };
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        for (k, v) in &patch {
            if v.is_null()
                || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
                || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
            {
                continue;
            }
            if !keep.contains(&k.as_str()) {
                return Err(PatchError::BadRequest(ERR_BAD_RETAIN_KEYS.to_string()));
            }
        }
        let drop: Vec<String> = original
            .keys()
            .filter(|k| !keep.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in drop {
            original.remove(&k);
        }
    }

    apply_set_element_order(&mut original, &mut patch, path, schema)?;

    let keys: Vec<String> = patch.keys().cloned().collect();
    let (deletion_lists, regular): (Vec<String>, Vec<String>) = keys
        .into_iter()
        .partition(|k| k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX));

    for k in regular {
        let Some(patch_value) = patch.remove(&k) else {
            continue;
        };
        if patch_value.is_null() {
            original.remove(&k);
            continue;
        }
        let kpath = child_path(path, &k);
        let current = original.get_mut(&k).map(std::mem::take);
        match merge_value(current, patch_value, &kpath, schema)? {
            Some(v) => {
                original.insert(k, v);
            }
            None => {
                original.remove(&k);
            }
        }
    }

    for k in deletion_lists {
        let Some(patch_value) = patch.remove(&k) else {
            continue;
        };
        let field = extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            .ok_or_else(|| PatchError::BadRequest(ERR_BAD_PRIMITIVE_LIST.to_string()))?;
        let to_delete = match patch_value {
            Value::Array(items) => items,
            Value::Null => continue,
            _ => return Err(PatchError::BadRequest(ERR_BAD_PRIMITIVE_LIST.to_string())),
        };
        if let Some(Value::Array(current)) = original.get_mut(field) {
            current.retain(|v| !to_delete.contains(v));
        }
    }

    Ok(Some(original))
}

/// Merges one patch value into the current value of a key (`None` = key absent). Returns
/// `None` when the key must be removed.
fn merge_value(
    current: Option<Value>,
    patch: Value,
    path: &str,
    schema: &dyn MergeKeys,
) -> Result<Option<Value>, PatchError> {
    match (current, patch) {
        (Some(Value::Object(o)), Value::Object(p)) => Ok(Some(Value::Object(
            merge_map(o, p, path, schema)?.unwrap_or_default(),
        ))),
        (Some(Value::Array(o)), Value::Array(p)) => {
            Ok(Some(Value::Array(merge_slice_handler(o, p, path, schema)?)))
        }
        (_, Value::Object(p)) => Ok(merge_map(Map::new(), p, path, schema)?.map(Value::Object)),
        (_, Value::Array(p)) => Ok(Some(Value::Array(merge_slice_handler(
            Vec::new(),
            p,
            path,
            schema,
        )?))),
        (_, scalar) => Ok(Some(scalar)),
    }
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    path: &str,
    schema: &dyn MergeKeys,
) -> Result<Vec<Value>, PatchError> {
    match schema.list_strategy(path) {
        ListStrategy::Replace => Ok(patch),
        ListStrategy::Merge(key) => merge_slice(original, patch, Some(&key), path, schema),
        ListStrategy::MergePrimitive => merge_slice(original, patch, None, path, schema),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Map,
    Scalar,
}

fn category(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// `sliceElementType`: all elements must have one type, and not be lists.
fn element_kind(original: &[Value], patch: &[Value]) -> Result<ElementKind, PatchError> {
    let mut first: Option<u8> = None;
    for v in original.iter().chain(patch) {
        let c = category(v);
        if c == 4 {
            return Err(PatchError::Unprocessable(
                "lists of lists are not supported".to_string(),
            ));
        }
        match first {
            None => first = Some(c),
            Some(f) if f != c => {
                return Err(PatchError::Other(format!(
                    "list element types are not identical: [{} {}]",
                    go_display(&Value::Array(original.to_vec())),
                    go_display(&Value::Array(patch.to_vec()))
                )));
            }
            Some(_) => {}
        }
    }
    Ok(if first == Some(5) {
        ElementKind::Map
    } else {
        ElementKind::Scalar
    })
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: Option<&str>,
    path: &str,
    schema: &dyn MergeKeys,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    match element_kind(&original, &patch)? {
        ElementKind::Scalar => {
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(&patch) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            let (patch_items, server_only) = partition_primitives(merged, &patch);
            normalize_element_order(patch_items, server_only, &patch, &original, None)
        }
        ElementKind::Map => {
            let Some(key) = merge_key else {
                return Err(PatchError::Other(format!(
                    "cannot merge lists without merge key for {path}"
                )));
            };
            let (original, patch) =
                merge_slice_with_special_elements(original, patch, key, path, schema)?;
            let merged =
                merge_slice_without_special_elements(original.clone(), &patch, key, path, schema)?;
            let (patch_items, server_only) = partition_maps(merged, &patch, key)?;
            normalize_element_order(patch_items, server_only, &patch, &original, Some(key))
        }
    }
}

/// Handles list elements carrying `$patch`; returns the updated original and the plain patch
/// elements.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    path: &str,
    schema: &dyn MergeKeys,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = v else {
            plain.push(v);
            continue;
        };
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            plain.push(Value::Object(m));
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(key_value) = m.get(key) else {
                    return Err(err_no_merge_key(&m, key));
                };
                original = delete_matching_entries(original, key, key_value)?;
            }
            Some("replace") => replace = true,
            Some("merge") => {
                let mut m = m;
                m.remove(DIRECTIVE_MARKER);
                if !m.is_empty() {
                    plain.push(Value::Object(m));
                }
            }
            _ => return Err(err_bad_patch_type(directive, &m)),
        }
    }
    if replace {
        let elem_path = element_path(path);
        let mut out = Vec::with_capacity(plain.len());
        for v in plain {
            match v {
                Value::Object(m) => {
                    if let Some(m) = merge_map(Map::new(), m, &elem_path, schema)? {
                        out.push(Value::Object(m));
                    }
                }
                other => out.push(other),
            }
        }
        return Ok((out, Vec::new()));
    }
    Ok((original, plain))
}

fn delete_matching_entries(
    original: Vec<Value>,
    key: &str,
    key_value: &Value,
) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(original.len());
    for (i, v) in original.into_iter().enumerate() {
        let Value::Object(m) = &v else {
            return Err(PatchError::Other(format!(
                "value for key {i} is not a map."
            )));
        };
        if m.get(key) != Some(key_value) {
            out.push(v);
        }
    }
    Ok(out)
}

fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
    path: &str,
    schema: &dyn MergeKeys,
) -> Result<Vec<Value>, PatchError> {
    let elem_path = element_path(path);
    for v in patch {
        let Value::Object(m) = v else {
            return Err(err_bad_arg_type("map[string]interface {}", v));
        };
        let Some(key_value) = m.get(key) else {
            return Err(err_no_merge_key(m, key));
        };
        let mut found = None;
        for (i, o) in original.iter().enumerate() {
            let Value::Object(om) = o else {
                return Err(PatchError::Other(format!(
                    "value for key {i} is not a map."
                )));
            };
            if om.get(key) == Some(key_value) {
                found = Some(i);
                break;
            }
        }
        match found {
            Some(i) => {
                let current = match original.get_mut(i).map(std::mem::take) {
                    Some(Value::Object(om)) => om,
                    _ => Map::new(),
                };
                match merge_map(current, m.clone(), &elem_path, schema)? {
                    Some(merged) => {
                        if let Some(slot) = original.get_mut(i) {
                            *slot = Value::Object(merged);
                        }
                    }
                    None => {
                        original.remove(i);
                    }
                }
            }
            None => {
                if let Some(merged) = merge_map(Map::new(), m.clone(), &elem_path, schema)? {
                    original.push(Value::Object(merged));
                }
            }
        }
    }
    Ok(original)
}

fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    merged.into_iter().partition(|v| by.contains(v))
}

fn partition_maps(
    merged: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let Value::Object(m) = &v else {
            return Err(err_bad_arg_type("map[string]interface {}", &v));
        };
        let Some(key_value) = m.get(key) else {
            return Err(err_no_merge_key(m, key));
        };
        let found = by.iter().any(|p| match p {
            Value::Object(pm) => pm.get(key) == Some(key_value),
            _ => false,
        });
        if found {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((in_patch, server_only))
}

/// Position of `item` in `list`, comparing merge-key values for maps (`index` upstream).
fn index_of(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    match merge_key {
        Some(k) => {
            let wanted = item.get(k);
            list.iter().position(|e| e.get(k) == wanted)
        }
        None => list.iter().position(|e| e == item),
    }
}

fn has_directive(v: &Value) -> bool {
    v.get(DIRECTIVE_MARKER).is_some()
}

fn is_delete_directive(v: &Value) -> bool {
    v.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete")
}

fn validate_merge_key_in_lists(key: &str, lists: &[&[Value]]) -> Result<(), PatchError> {
    for list in lists {
        for item in *list {
            let Value::Object(m) = item else {
                return Err(err_bad_arg_type("map[string]interface {}", item));
            };
            if !m.contains_key(key) {
                return Err(err_no_merge_key(m, key));
            }
        }
    }
    Ok(())
}

/// Sorts `to_sort` by the positions of its items in `order` (stable; unknown items last,
/// delete directives at the very end).
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let (mut keep, deletes): (Vec<Value>, Vec<Value>) = match merge_key {
        Some(k) => {
            validate_merge_key_in_lists(k, &[&to_sort, order])?;
            to_sort.into_iter().partition(|v| !is_delete_directive(v))
        }
        None => (to_sort, Vec::new()),
    };
    keep.sort_by_key(|v| index_of(order, v, merge_key).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

/// `normalizeElementOrder`: sorts the patch items by `patch_order`, the server-only items by
/// `server_order`, then interleaves them.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        merge_key,
    ))
}

/// `mergeSortedSlice`: a server-only item (left) goes before the next patch item (right) only
/// when both are in the live list and it comes first there.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, merge_key), index_of(server_order, r, merge_key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}

fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    merge_key: Option<&str>,
) -> Result<bool, PatchError> {
    let Some(k) = merge_key else {
        return Ok(left == right);
    };
    let Value::Object(l) = left else {
        return Err(err_bad_arg_type("map[string]interface {}", left));
    };
    let Value::Object(r) = right else {
        return Err(err_bad_arg_type("map[string]interface {}", right));
    };
    let Some(lv) = l.get(k) else {
        return Err(err_no_merge_key(l, k));
    };
    let Some(rv) = r.get(k) else {
        return Err(err_no_merge_key(r, k));
    };
    Ok(lv == rv)
}

/// `validatePatchWithSetOrderList`: the non-delete patch items must appear in the order list,
/// in the same relative order.
fn validate_patch_with_set_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = match merge_key {
        Some(_) => {
            let mut out = Vec::new();
            for v in patch_list {
                if !v.is_object() {
                    return Err(err_bad_arg_type("map[string]interface {}", v));
                }
                if !is_delete_directive(v) {
                    out.push(v);
                }
            }
            out
        }
        None => patch_list.iter().collect(),
    };
    let (mut pi, mut oi) = (0, 0);
    while let (Some(p), Some(o)) = (non_delete.get(pi), order.get(oi)) {
        if has_directive(p) {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(p, o, merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(PatchError::Other(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_display(&Value::Array(patch_list.to_vec())),
            go_display(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

/// `mergePatchIntoOriginal`: processes every `$setElementOrder/<field>` directive together
/// with the patch list of `<field>`, removing both from `patch`.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: &str,
    schema: &dyn MergeKeys,
) -> Result<(), PatchError> {
    let directive_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive_key in directive_keys {
        let Some(order_value) = patch.remove(&directive_key) else {
            continue;
        };
        let field = extract_key(&directive_key, SET_ELEMENT_ORDER_PREFIX)
            .ok_or_else(|| PatchError::BadRequest(ERR_BAD_SET_ELEMENT_ORDER.to_string()))?
            .to_string();
        let Value::Array(order) = order_value else {
            return Err(err_bad_arg_type("[]interface {}", &order_value));
        };
        let original_list = match original.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let field_path = child_path(path, &field);
        let strategy = schema.list_strategy(&field_path);
        let merge_key = match &strategy {
            ListStrategy::Replace => {
                // No merge semantics: the directive carries no meaning; plain replacement.
                if let Some(list) = patch_list {
                    original.insert(field.clone(), Value::Array(list));
                    patch.remove(&field);
                }
                continue;
            }
            ListStrategy::Merge(k) => Some(k.as_str()),
            ListStrategy::MergePrimitive => None,
        };
        validate_patch_with_set_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;
        let merged = match (original_list.clone(), patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => merge_slice(Vec::new(), p, merge_key, &field_path, schema)?,
            (Some(o), Some(p)) => merge_slice(o, p, merge_key, &field_path, schema)?,
            (None, None) => continue,
        };
        let map_key = if merged.iter().any(Value::is_object) {
            merge_key
        } else {
            None
        };
        let (patch_items, server_only) = match map_key {
            Some(k) => partition_maps(merged, &order, k)?,
            None => partition_primitives(merged, &order),
        };
        let both = normalize_element_order(
            patch_items,
            server_only,
            &order,
            original_list.as_deref().unwrap_or(&[]),
            map_key,
        )?;
        original.insert(field.clone(), Value::Array(both));
        patch.remove(&field);
    }
    Ok(())
}
