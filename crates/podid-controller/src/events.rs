//! Kubernetes events with upstream MIC's reasons (reference §2.11): core/v1 Events from source component
//! `aadpodidentity.k8s.io`, so `kubectl describe` and `kubectl get events` show them as before. Events are
//! best-effort: a failed write is logged at debug level and never blocks assignment.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};

/// Source component of every event (upstream).
pub const COMPONENT: &str = "aadpodidentity.k8s.io";
/// Reason: an AAI could not be written or its identity not assigned.
pub const BINDING_APPLY_ERROR: &str = "binding apply error";
/// Reason: identity assigned for a pod.
pub const BINDING_APPLIED: &str = "binding applied";
/// Reason: cleanup after a node disappeared failed.
pub const BINDING_REMOVE_ERROR: &str = "binding remove error";
/// Reason: cleanup after a node disappeared.
pub const BINDING_REMOVED: &str = "binding removed";
/// Reason: an AAI status patch failed.
pub const STATUS_UPDATE_ERROR: &str = "status update error";

/// Writes events.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    host: String,
    /// Bounds events in flight; beyond it events are dropped (they are best-effort and must never pile up).
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Events written concurrently at most; more are dropped with a debug log.
const MAX_EVENTS_IN_FLIGHT: usize = 16;

/// Reference to an object for an event.
pub fn reference<K: Resource<DynamicType = ()>>(o: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: Some(o.name_any()),
        namespace: o.namespace(),
        uid: o.meta().uid.clone(),
        resource_version: o.meta().resource_version.clone(),
        ..Default::default()
    }
}

impl Recorder {
    /// A recorder; `host` is written as the event source host.
    pub fn new(client: kube::Client, host: String) -> Recorder {
        Recorder {
            client,
            host,
            in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_EVENTS_IN_FLIGHT)),
        }
    }

    /// Emit an event in the background.
    pub fn emit(&self, regarding: ObjectReference, type_: &str, reason: &str, message: String) {
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = regarding.name.clone().unwrap_or_default();
        let now = Time(jiff::Timestamp::now());
        let ev = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}.")),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: regarding,
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(type_.to_string()),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                host: Some(self.host.clone()),
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(COMPONENT.to_string()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::debug!(%reason, "event dropped: too many in flight");
            return;
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = api.create(&PostParams::default(), &ev).await {
                tracing::debug!(error = %e, "could not record an event");
            }
        });
    }
}
