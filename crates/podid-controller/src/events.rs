//! Kubernetes events with upstream MIC's reasons (reference §2.11): core/v1 Events from source component
//! `aadpodidentity.k8s.io`, so `kubectl describe` and `kubectl get events` show them as before. Events are
//! best-effort: they are queued (at most [`MAX_EVENTS_QUEUED`]) and written by one background task, at most
//! [`MAX_EVENTS_IN_FLIGHT`] at a time; a full queue drops the event and a failed write is logged at debug level,
//! so events never block assignment.
//!
//! podid also writes the assignment events on the **pod** (upstream wrote them only on the binding, so `kubectl
//! describe pod` said nothing), and a Warning on identities and bindings whose pre-v1.6 keys it rewrote or
//! ignores. Any object can be the subject: build its reference with [`reference`], [`pod_reference`] or by hand,
//! and call [`Recorder::emit`]. Messages carry names, keys and error texts, never tokens or secrets.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;

/// Source component of every event (upstream).
pub const COMPONENT: &str = "aadpodidentity.k8s.io";
/// Reason: an AAI could not be written or its identity not assigned.
pub const BINDING_APPLY_ERROR: &str = "binding apply error";
/// Reason: identity assigned for a pod.
pub const BINDING_APPLIED: &str = "binding applied";
/// Reason: cleanup after a node disappeared failed.
pub const BINDING_REMOVE_ERROR: &str = "binding remove error";
/// Reason: cleanup after a node disappeared; on the pod (podid), any removal of its assignment while it still
/// exists (its binding or identity was deleted, its label changed, it finished).
pub const BINDING_REMOVED: &str = "binding removed";
/// Reason: an AAI status patch failed.
pub const STATUS_UPDATE_ERROR: &str = "status update error";
/// Reason (podid): an AzureIdentity or AzureIdentityBinding written with pre-v1.6 keys (`ClientID`, `Selector`,
/// ...) was rewritten to the current keys.
pub const LEGACY_KEYS_REWRITTEN: &str = "legacy keys rewritten";
/// Reason (podid): a pre-v1.6 key disagrees with its current key, which wins; the object is left as it is.
pub const LEGACY_KEYS_IGNORED: &str = "legacy keys ignored";

/// Events written concurrently at most.
pub const MAX_EVENTS_IN_FLIGHT: usize = 16;
/// Events waiting to be written at most (a burst of 40 pods makes about 80); more are dropped with a debug log.
pub const MAX_EVENTS_QUEUED: usize = 256;

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

/// Reference to a pod known by name (and uid, which `kubectl describe pod` matches events on).
pub fn pod_reference(namespace: &str, name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        uid,
        ..Default::default()
    }
}

/// Writes events (cheap to clone: clones share one queue and writer).
#[derive(Clone)]
pub struct Recorder {
    host: String,
    queue: mpsc::Sender<Event>,
}

impl Recorder {
    /// A recorder; `host` is written as the event source host. Spawns the writer task (on the current tokio
    /// runtime), which ends when the last clone is dropped.
    pub fn new(client: kube::Client, host: String) -> Recorder {
        let (queue, rx) = mpsc::channel::<Event>(MAX_EVENTS_QUEUED);
        let events =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) },
            );
        tokio::spawn(events.for_each_concurrent(MAX_EVENTS_IN_FLIGHT, move |ev| {
            let client = client.clone();
            async move {
                let ns = ev.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(client, &ns);
                if let Err(e) = api.create(&PostParams::default(), &ev).await {
                    tracing::debug!(error = %e, reason = ev.reason.as_deref().unwrap_or_default(), "could not record an event");
                }
            }
        }));
        Recorder { host, queue }
    }

    /// Queue an event about `regarding`; dropped (debug log) when the queue is full.
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
                namespace: Some(ns),
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
        if self.queue.try_send(ev).is_err() {
            tracing::debug!(%reason, "event dropped: too many queued");
        }
    }
}
