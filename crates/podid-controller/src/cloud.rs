//! The controller's view of ARM: read a VM's or scale set's identities, send one PATCH body. The production
//! implementation wraps `podid_azure::ComputeClient`; the trait keeps the executor independent of the wire client.

use std::time::Duration;

use futures::future::BoxFuture;
use podid_core::assign::Target;

/// Identity block of a VM or scale set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudIdentity {
    /// `identity.type` ("" when there is no identity block).
    pub type_: String,
    /// User-assigned identity resource IDs as ARM returned them.
    pub user_assigned: Vec<String>,
    /// `provisioningState` of the resource.
    pub provisioning_state: String,
}

impl CloudIdentity {
    /// Whether `id` is assigned (case-insensitive, as ARM compares IDs).
    pub fn has(&self, id: &str) -> bool {
        self.user_assigned
            .iter()
            .any(|u| u.eq_ignore_ascii_case(id))
    }
}

/// An ARM failure, reduced to what the executor decides on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CloudError {
    /// ARM error code (`LinkedAuthorizationFailed`, `FailedIdentityOperation`, `Throttled`, ...).
    pub code: String,
    /// Message (never contains a token).
    pub message: String,
    /// Set when ARM throttled us: do not call this target again before this much time passed.
    pub retry_after: Option<Duration>,
}

/// ARM operations on VM / scale-set identities.
pub trait Cloud: Send + Sync + 'static {
    /// GET the resource's identity block.
    fn get(&self, target: &Target) -> BoxFuture<'_, Result<CloudIdentity, CloudError>>;
    /// PATCH one body and wait for the long-running operation.
    fn patch<'a>(
        &'a self,
        target: &'a Target,
        body: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), CloudError>>;
}
