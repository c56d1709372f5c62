//! Pure Kubernetes "apimachinery" logic for the kube-sim API server.
//!
//! This crate holds the parts of `k8s.io/apimachinery` and `k8s.io/apiserver` that decide
//! *what* a request means, without any IO: selector parsing and matching, the four patch
//! formats, and server-side-apply field ownership. Objects are `serde_json::Value`s shaped like
//! the JSON the API server stores and returns; every function takes its inputs by reference and
//! returns a new value, so a failed operation never leaves a half-modified object behind. No
//! clock is read: time stamps are parameters.
//!
//! # Modules
//!
//! * [`labels`] — `?labelSelector=` strings ([`LabelSelector::parse`]) and
//!   `metav1.LabelSelector` objects ([`LabelSelector::from_json`]) with the operators `=`,
//!   `==`, `!=`, `in`, `notin`, exists, `!` (and upstream's `>`/`<`), key/value validation and
//!   canonical [`Display`](std::fmt::Display); [`LabelSelector::exact_match`] feeds index
//!   lookups.
//! * [`fields`] — `?fieldSelector=` strings with apimachinery's escaping, the per-kind tables
//!   of supported field labels (with upstream's error texts such as
//!   `field label not supported: spec.foo`), value extraction from objects, and
//!   [`FieldSelector::exact_value`] for index lookups.
//! * [`patch`] — RFC 7386 [`merge_patch`](patch::merge_patch), RFC 6902
//!   [`json_patch`](patch::json_patch), Kubernetes
//!   [`strategic_merge_patch`](patch::strategic_merge_patch) (merge keys, `$patch`,
//!   `$retainKeys`, `$deleteFromPrimitiveList`, `$setElementOrder`) driven by the
//!   [`MergeKeys`](patch::MergeKeys) trait and the built-in
//!   [`CoreMergeKeys`](patch::CoreMergeKeys) table, and a simplified
//!   [`server_side_apply`](patch::server_side_apply) that records ownership in
//!   `metadata.managedFields` with the real `FieldsV1` encoding.
//! * [`validation`] — the apimachinery name/label validators (`IsQualifiedName`,
//!   `IsDNS1123Subdomain`, `IsDNS1123Label`, `IsDNS1035Label`, …) with upstream's texts.
//! * [`gofmt`] — the Go renderings every kube-sim crate's messages depend on: `%q`
//!   ([`gofmt::go_quote`]), `%v` ([`gofmt::go_display`], Go float formatting), `%#v`, `%T`,
//!   `encoding/json` marshalling and `UnmarshalTypeError` texts, `utilerrors` aggregates, and
//!   the `int64`/`float64` number model ([`gofmt::Num`]). The sibling crates use these instead
//!   of their own copies.
//! * [`time`] — RFC 3339 formatting and parsing of `metav1.Time` values.
//!
//! # Invariants
//!
//! * Parsing never panics on any input; bad input yields a typed error ([`SelectorError`],
//!   [`patch::PatchError`], [`patch::ApplyError`]) whose text is the one the real API server
//!   returns, so kubectl and client libraries print familiar messages.
//! * `LabelSelector::parse(&s.to_string()) == Ok(s)` and the same for [`FieldSelector`]: the
//!   canonical string form round-trips.
//! * Requirements are kept sorted by key (labels) or by term text (fields), as upstream, so
//!   equal selectors compare equal and print identically.
//! * Patches are all-or-nothing and leave their inputs untouched.
//!
//! # Server-side apply simplifications
//!
//! The apply implementation follows the structured-merge-diff model (applied sets, conflicts
//! with other managers, removal of fields a manager stopped applying, `force` to take
//! ownership) but not its full type system: list kinds come from [`patch::MergeKeys`], there is
//! no defaulting or per-version conversion, `Update` operations are not recorded by this crate
//! (existing `Update` entries are honoured as owners), and resetting `status`/`spec` for
//! subresources is left to the caller. See [`patch::server_side_apply`] for the details.
//!
//! Known deviations from upstream are listed on the function that has them.

pub mod fields;
pub mod gofmt;
pub mod labels;
pub mod patch;
pub mod protobuf;
pub mod time;
pub mod validation;

pub use fields::{FieldSelector, SelectableKind};
pub use labels::LabelSelector;

/// An invalid label or field selector. The message is the upstream text; the API server
/// answers all variants with 400 BadRequest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The selector string does not parse, e.g.
    /// `unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt` or
    /// `invalid selector: 'ab'; can't understand 'ab'`.
    #[error("{0}")]
    Parse(String),
    /// A `metav1.LabelSelector` object or a requirement is invalid, e.g.
    /// `"Foo" is not a valid label selector operator`.
    #[error("{0}")]
    Invalid(String),
    /// A field label the kind does not support, e.g. `field label not supported: spec.foo`.
    #[error("{0}")]
    UnsupportedField(String),
}
