//! Pure schema logic for kube-sim, the in-memory Kubernetes API server: what the real
//! apiextensions server does with a custom resource's `openAPIV3Schema`, and the server-side
//! `Table` printing kubectl relies on.
//!
//! # Model
//!
//! Objects and schemas are plain [`serde_json::Value`]s. Numbers follow the API server's
//! unstructured decoder: an integral literal that fits `int64` is an integer, anything else
//! (`1.0`, `1e3`, huge integers) is a `float64`. Nothing here performs IO or reads a clock;
//! functions that need the time take `now`.
//!
//! The write path of the apiextensions server for a custom resource is, in order:
//!
//! 1. [`apply_defaults`] — `default` values for absent (or non-nullable `null`) fields;
//! 2. [`prune`] — structural pruning of unknown fields (the dropped paths feed the
//!    `unknown field "spec.foo"` warnings / strict field validation);
//! 3. [`prune_nulls`] — non-nullable `null`s without a default disappear;
//! 4. [`validate`] — schema validation plus embedded-resource checks, yielding
//!    [`FieldError`]s that render exactly like Kubernetes' `field.Error`s and map to
//!    `StatusCause` reasons.
//!
//! [`admit`] runs the four steps. Defaulting also applies when reading from storage.
//!
//! # Invariants
//!
//! - No function panics, whatever JSON it is given (property-tested); malformed schema
//!   keywords are ignored rather than trusted.
//! - Root `apiVersion`, `kind` and `metadata` are never pruned, defaulted away or validated
//!   beyond `metadata.name`/`metadata.generateName` — ObjectMeta is the server's job.
//! - Error order and texts follow kube-openapi + apiextensions (`spec.type: Invalid value:
//!   "string": spec.type in body must be of type integer: "string"`), deduplicated.
//!
//! # Tables
//!
//! [`table()`] builds the `meta.k8s.io/v1` `Table` for `application/json;as=Table;v=v1;g=meta.k8s.io`
//! from [`crd_columns`] (CRD `additionalPrinterColumns`, with the `Name` column and the default
//! `Age`) or [`builtin_columns`] (the kube-apiserver printers), rendering ages with
//! [`human_duration_nanos`] (`duration.HumanDuration`).
//!
//! # Knowingly not implemented
//!
//! `pattern` (no regex engine: patterns always pass), CEL `x-kubernetes-validations`,
//! `x-kubernetes-list-type` uniqueness, validation ratcheting, and full ObjectMeta validation
//! of embedded resources. `format: int32`/`int64` ranges are not enforced — neither does the
//! API server, which strips those formats before validating.

mod default;
mod duration;
mod error;
mod formats;
mod jsonpath;
mod prune;
mod schema;
pub mod table;
mod validate;
pub mod workload_table;

#[cfg(test)]
mod tests;

pub use default::apply_defaults;
pub use duration::{human_duration_nanos, human_duration_since};
pub use error::{FieldError, FieldErrorKind, aggregate, invalid_message};
pub use jsonpath::{JsonPath, JsonPathError};
pub use prune::{prune, prune_nulls};
pub use table::{
    Builtin, CellSource, Column, IncludeObject, IncludeObjectError, TableOptions, builtin_columns,
    crd_columns, table, table_with_options,
};
pub use validate::validate;

/// Outcome of [`admit`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Admission {
    /// Paths pruned as unknown (`spec.foo`), sorted.
    pub unknown_fields: Vec<String>,
    /// Validation errors (empty: valid).
    pub errors: Vec<FieldError>,
}

/// The apiextensions write path for one custom resource, in place: [`apply_defaults`],
/// [`prune`], [`prune_nulls`], then [`validate`].
pub fn admit(schema: &serde_json::Value, obj: &mut serde_json::Value) -> Admission {
    apply_defaults(schema, obj);
    let unknown_fields = prune(schema, obj);
    prune_nulls(schema, obj);
    let errors = validate(schema, obj);
    Admission {
        unknown_fields,
        errors,
    }
}
