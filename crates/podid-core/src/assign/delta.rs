//! The pure part of upstream's `UpdateUserMSI` (reference §2.7 steps 3 to 5): given the identity block
//! a VM or scale set has now and the resource IDs to add and remove, the PATCH bodies to send; and the
//! reading of ARM's "erroneous identity" errors.
//!
//! # Delta
//!
//! ARM merges `identity.userAssignedIdentities` on PATCH: a key with `{}` adds that identity, a key with
//! `null` removes it, and keys not mentioned stay. So a body carries only the delta, which is how the
//! system-assigned identity, the cluster (kubelet) identity and anything assigned out of band survive.
//! IDs are compared and sent lowercased (as upstream). An ID both in `add` and `remove` counts as an add.
//!
//! - Nothing to add or remove: no body.
//! - No user-assigned identity would remain: one body `{"identity":{"type":T}}` with no
//!   `userAssignedIdentities`, `T` = `SystemAssigned` when the current type includes the system-assigned
//!   identity, else `None`.
//! - Otherwise the type becomes `UserAssigned` (from `""`, `None`, `UserAssigned`) or
//!   `SystemAssigned, UserAssigned` (from `SystemAssigned` or `SystemAssigned, UserAssigned`), and the
//!   delta entries go out in bodies of at most [`MAX_IDENTITIES_PER_REQUEST`] entries, each carrying the
//!   type. An empty delta sends nothing.
//!
//! Deliberate differences from upstream, all safer:
//! - upstream PATCHes `type: None` whenever no user identity would remain, even when nothing changes and
//!   even when the VM only had a system-assigned identity (which `None` deletes); here a no-op sends no
//!   body, and a current type mentioning `SystemAssigned` always keeps it;
//! - an unrecognised current type maps by whether it mentions `SystemAssigned` (upstream sends `None`
//!   with user identities, which ARM rejects); types are compared ignoring case and spaces;
//! - additions are sent before removals (each sorted), so no intermediate PATCH of a chunked delta
//!   leaves a `UserAssigned` resource without user identities.

use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashSet};

use super::names::{fold_char, literal_at};

/// ARM's limit of user-assigned identities changed by one request (`User Assigned Identities Number 'N'
/// Assign exceed limit '150' in one request`, upstream issue #813).
pub const MAX_IDENTITIES_PER_REQUEST: usize = 150;

/// ARM error code: the caller may not assign one of the identities (`.../assign/action` missing).
const LINKED_AUTHORIZATION_FAILED: &str = "LinkedAuthorizationFailed";
/// ARM error code: one of the identities does not exist.
const FAILED_IDENTITY_OPERATION: &str = "FailedIdentityOperation";

/// ARM identity type strings.
const TYPE_NONE: &str = "None";
const TYPE_SYSTEM: &str = "SystemAssigned";
const TYPE_USER: &str = "UserAssigned";
const TYPE_SYSTEM_USER: &str = "SystemAssigned, UserAssigned";

/// Pieces of upstream's `'(,?(?i)/subscriptions/[a-zA-Z0-9-_]+/resourcegroups/[a-zA-Z0-9-_]+/providers/Microsoft.ManagedIdentity/userAssignedIdentities/[a-zA-Z0-9-_]+)+'`,
/// lowercased; the `.` between the provider halves is the regex wildcard.
const ERR_SUBSCRIPTIONS: &str = "/subscriptions/";
const ERR_RESOURCE_GROUPS: &str = "/resourcegroups/";
const ERR_PROVIDERS_HEAD: &str = "/providers/microsoft";
const ERR_PROVIDERS_TAIL: &str = "managedidentity/userassignedidentities/";

/// The PATCH bodies for one identity change of one VM or scale set, and what needed no change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// PATCH bodies in order, each `{"identity":{"type":..,"userAssignedIdentities":{id: {} | null}}}`,
    /// or without `userAssignedIdentities` when no user identity remains. Empty: send nothing.
    pub bodies: Vec<Value>,
    /// IDs of `add` already on the resource (case-insensitive), as written in `add`, deduplicated.
    pub already_present: Vec<String>,
    /// IDs of `remove` not on the resource, as written in `remove`, deduplicated (an ID also in `add`
    /// is never listed).
    pub already_absent: Vec<String>,
}

/// Builds the PATCH bodies that add `add` to and remove `remove` from a resource whose identity block
/// has type `current_type` (`""` when the block is null) and user-assigned identities `current_ids`.
#[must_use]
pub fn identity_delta(
    current_type: &str,
    current_ids: &[String],
    add: &[String],
    remove: &[String],
) -> Delta {
    let mut delta = Delta::default();
    if add.is_empty() && remove.is_empty() {
        return delta;
    }
    let current: BTreeSet<String> = current_ids.iter().map(|id| id.to_lowercase()).collect();
    let adding: HashSet<String> = add.iter().map(|id| id.to_lowercase()).collect();
    let mut remaining = current.clone();
    let mut additions: BTreeSet<String> = BTreeSet::new();
    let mut removals: BTreeSet<String> = BTreeSet::new();
    let mut seen_present: HashSet<String> = HashSet::new();
    let mut seen_absent: HashSet<String> = HashSet::new();

    for id in add {
        let lower = id.to_lowercase();
        if current.contains(&lower) {
            if seen_present.insert(lower) {
                delta.already_present.push(id.clone());
            }
        } else if remaining.insert(lower.clone()) {
            additions.insert(lower);
        }
    }
    for id in remove {
        let lower = id.to_lowercase();
        if adding.contains(&lower) {
            continue;
        }
        if current.contains(&lower) {
            remaining.remove(&lower);
            removals.insert(lower);
        } else if seen_absent.insert(lower) {
            delta.already_absent.push(id.clone());
        }
    }

    if additions.is_empty() && removals.is_empty() {
        return delta;
    }
    let has_system = type_has_system(current_type);
    if remaining.is_empty() {
        let kind = if has_system { TYPE_SYSTEM } else { TYPE_NONE };
        delta.bodies.push(json!({ "identity": { "type": kind } }));
        return delta;
    }
    let kind = if has_system {
        TYPE_SYSTEM_USER
    } else {
        TYPE_USER
    };
    let entries: Vec<(String, Value)> = additions
        .into_iter()
        .map(|id| (id, json!({})))
        .chain(removals.into_iter().map(|id| (id, Value::Null)))
        .collect();
    for chunk in entries.chunks(MAX_IDENTITIES_PER_REQUEST) {
        let map: Map<String, Value> = chunk.iter().cloned().collect();
        delta.bodies.push(json!({
            "identity": { "type": kind, "userAssignedIdentities": Value::Object(map) }
        }));
    }
    delta
}

/// Whether an ARM identity type includes the system-assigned identity (ignoring case and spaces).
fn type_has_system(current_type: &str) -> bool {
    let normal: String = current_type
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    normal.contains("systemassigned")
}

/// The user-assigned identity resource IDs an ARM error message names as erroneous (upstream §2.7
/// step 5): the first single-quoted list `'ID[,ID]...'` of IDs shaped
/// `/subscriptions/<[A-Za-z0-9-_]+>/resourcegroups/<..>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<..>`
/// (case-insensitive), as written, deduplicated case-insensitively. Empty when there is no such list.
#[must_use]
pub fn failed_identity_ids(message: &str) -> Vec<String> {
    let chars: Vec<char> = message.chars().collect();
    let folded: Vec<char> = chars.iter().copied().map(fold_char).collect();
    for (start, _) in chars.iter().enumerate().filter(|(_, c)| **c == '\'') {
        if let Some(spans) = quoted_id_list(&folded, start) {
            let mut seen = HashSet::new();
            return spans
                .into_iter()
                .map(|(from, to)| chars[from..to].iter().collect::<String>())
                .filter(|id| seen.insert(id.to_lowercase()))
                .collect();
        }
    }
    Vec::new()
}

/// Whether an ARM error is the "erroneous identity" kind upstream retries without the named IDs: the
/// code or message mentions `LinkedAuthorizationFailed` or `FailedIdentityOperation`, and the message
/// names at least one identity ([`failed_identity_ids`]).
#[must_use]
pub fn is_erroneous_identity_error(code: &str, message: &str) -> bool {
    let mentions =
        |s: &str| s.contains(LINKED_AUTHORIZATION_FAILED) || s.contains(FAILED_IDENTITY_OPERATION);
    (mentions(code) || mentions(message)) && !failed_identity_ids(message).is_empty()
}

/// Parses `'(,?ID)+'` starting at the quote at `start`; returns the ID spans. The grammar is
/// deterministic (segment characters exclude `/`, `,` and `'`), so no backtracking is needed.
fn quoted_id_list(folded: &[char], start: usize) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let mut at = start + 1;
    loop {
        let from = if folded.get(at) == Some(&',') {
            at + 1
        } else {
            at
        };
        match identity_id_at(folded, from) {
            Some(end) => {
                spans.push((from, end));
                at = end;
            }
            None => break,
        }
    }
    (!spans.is_empty() && folded.get(at) == Some(&'\'')).then_some(spans)
}

/// End of an identity resource ID starting at `at`, if one does.
fn identity_id_at(folded: &[char], at: usize) -> Option<usize> {
    let mut i = expect(folded, at, ERR_SUBSCRIPTIONS)?;
    i = segment(folded, i)?;
    i = expect(folded, i, ERR_RESOURCE_GROUPS)?;
    i = segment(folded, i)?;
    i = expect(folded, i, ERR_PROVIDERS_HEAD)?;
    match folded.get(i) {
        Some(&c) if c != '\n' => i += 1,
        _ => return None,
    }
    i = expect(folded, i, ERR_PROVIDERS_TAIL)?;
    segment(folded, i)
}

fn expect(folded: &[char], at: usize, literal: &str) -> Option<usize> {
    literal_at(folded, at, literal).then(|| at + literal.len())
}

/// `[a-zA-Z0-9-_]+` (on folded text, so the Kelvin sign and long s count as letters, as in Go).
fn segment(folded: &[char], at: usize) -> Option<usize> {
    let len = folded[at.min(folded.len())..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '-' || **c == '_')
        .count();
    (len > 0).then_some(at + len)
}
