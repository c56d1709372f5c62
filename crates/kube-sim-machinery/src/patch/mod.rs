//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902), Kubernetes strategic merge
//! patch and a simplified server-side apply.
//!
//! All functions are pure: they take the current object and the patch by reference and return
//! a new value. A failing patch never yields a partially patched object.

mod apply;
mod fieldpath;
mod json_patch;
mod keys;
mod merge_patch;
mod strategic;

pub use apply::{ApplyConflict, ApplyError, applied_fields, server_side_apply};
pub use fieldpath::{FieldPath, FieldSet, PathElement, path_string};
pub use json_patch::json_patch;
pub use keys::{CoreMergeKeys, ListStrategy, MergeKeys, ReplaceAllLists};
pub use merge_patch::merge_patch;
pub use strategic::strategic_merge_patch;

/// A patch that cannot be applied. The variant tells the API server which status to answer
/// with (see [`PatchError::status_code`]); the message is the text the Kubernetes API server
/// puts in its `Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed (400 BadRequest), e.g. a JSON patch that is not
    /// a list of operations, or `invalid patch format of retainKeys`.
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well-formed but cannot be applied to this object (422), e.g.
    /// `remove operation does not apply: doc is missing path: "/spec/foo": missing value`.
    #[error("{0}")]
    Unprocessable(String),
    /// Any other strategic-merge failure, e.g.
    /// `map: map[image:x] does not contain declared merge key: name`. Upstream does not wrap
    /// these in a typed status, so the real API server answers 500 InternalError with this
    /// message.
    #[error("{0}")]
    Other(String),
}

impl PatchError {
    /// The HTTP status the Kubernetes API server uses for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::Other(_) => 500,
        }
    }

    /// The error message.
    pub fn message(&self) -> &str {
        match self {
            PatchError::BadRequest(m) | PatchError::Unprocessable(m) | PatchError::Other(m) => m,
        }
    }
}
