//! The simulated Azure world: tenants, subscriptions, resource groups, VMs and scale sets, managed identities,
//! app registrations, role assignments and Key Vaults.
//!
//! A world is read from YAML or JSON ([`World::from_value`]), then [`World::normalize`]d: missing IDs are
//! derived deterministically from resource IDs (so a file without GUIDs yields the same IDs on every start),
//! defaults are filled in (the only subscription, the only resource group, location `westeurope`), referenced
//! resource groups are created, and every cross-reference is checked. The normalized world is what the control
//! API returns, and it parses back to itself.
//!
//! [`Index`] is derived from a normalized world for the lookups on hot paths (node → VM, client ID → app or
//! identity, certificate thumbprints, known token audiences). It is rebuilt after every change.

mod index;
mod model;
mod normalize;
#[cfg(test)]
mod tests;

pub use index::*;
pub use model::*;
pub use normalize::{derived_version, valid_secret_name, validate_fic};

/// Default Azure region.
pub const DEFAULT_LOCATION: &str = "westeurope";
/// The audience of federated identity credentials.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Maximum federated identity credentials per app or identity.
pub const MAX_FICS: usize = 20;

/// A world that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WorldError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, WorldError> {
    Err(WorldError(msg.into()))
}

fn resource_key(r: &str) -> String {
    r.trim().trim_end_matches('/').to_ascii_lowercase()
}
