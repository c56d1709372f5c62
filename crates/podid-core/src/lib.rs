//! podid's pure decisions (no IO, no clocks, no async).
//!
//! - [`assign`]: the pod-identity controller's planner: (pods, nodes, identities, bindings, assigned identities)
//!   -> actions, kept in an incremental index so one event costs little.
//! - [`nmi`]: the node agent's request routing, response shapes, identity selection and pod-by-IP index.
//! - [`protect`]: cluster identity protection (the identities no pod gets by naming them).

pub mod assign;
pub mod doctor;
pub mod nmi;
pub mod protect;
