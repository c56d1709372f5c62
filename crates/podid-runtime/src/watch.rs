//! The watch pump every component feeds its indexes with: one kube watcher per resource type, objects trimmed
//! before they are kept, events handed to a synchronous handler as [`Event::Apply`] / [`Event::Delete`] /
//! [`Event::Reset`] (a complete relist), and [`Readiness`] once every needed watch delivered its first list.
//! A watch error is logged and the watcher retries with backoff; a malformed object never stalls a watch.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, ResourceExt};

/// A watch event as the pump hands it to its handler.
pub enum Event<K> {
    /// Added or modified.
    Apply(K),
    /// Deleted.
    Delete(K),
    /// A complete relist.
    Reset(Vec<K>),
}

/// Which watches a component waits for, and which delivered their first complete list.
pub struct Readiness {
    needed: Box<[bool]>,
    synced: Box<[AtomicBool]>,
}

impl Readiness {
    /// Readiness over watches `0..needed.len()`; a watch marked `false` is not waited for.
    #[must_use]
    pub fn new(needed: &[bool]) -> Readiness {
        Readiness {
            needed: needed.into(),
            synced: needed.iter().map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Watch `watch` delivered its first complete list.
    pub fn mark_synced(&self, watch: usize) {
        if let Some(s) = self.synced.get(watch) {
            s.store(true, Ordering::Release);
        }
    }

    /// Every needed watch delivered its first complete list.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.needed
            .iter()
            .zip(&*self.synced)
            .all(|(n, s)| !n || s.load(Ordering::Acquire))
    }
}

/// What a component's shared state offers its pumps.
pub trait Watched: Send + Sync + 'static {
    /// The readiness the pumps report to.
    fn readiness(&self) -> &Readiness;
    /// Called after every event was handled (wake a loop, bump a generation).
    fn changed(&self);
}

/// Run one watch until the task is aborted: `trim` each object, hand events to `handle`, mark `watch` synced
/// after the first complete list and call [`Watched::changed`] after every event. `watch` names the watch in
/// logs (`watch=Pods`) and is its index in the [`Readiness`].
pub async fn pump<S, W, K, T, G, F>(
    api: Api<K>,
    wc: watcher::Config,
    shared: Arc<S>,
    watch: W,
    trim: G,
    mut handle: F,
) where
    S: Watched,
    W: Debug + Copy + Into<usize> + Send,
    K: kube::Resource + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
    G: Fn(K) -> T + Send,
    T: Send,
    F: FnMut(Event<T>) + Send,
{
    let stream = watcher::watcher(api, wc).default_backoff();
    futures::pin_mut!(stream);
    let mut buf: Vec<T> = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(WatchEvent::Init) => buf.clear(),
            Ok(WatchEvent::InitApply(o)) => buf.push(trim(o)),
            Ok(WatchEvent::InitDone) => {
                handle(Event::Reset(std::mem::take(&mut buf)));
                shared.readiness().mark_synced(watch.into());
                shared.changed();
            }
            Ok(WatchEvent::Apply(o)) => {
                handle(Event::Apply(trim(o)));
                shared.changed();
            }
            Ok(WatchEvent::Delete(o)) => {
                handle(Event::Delete(trim(o)));
                shared.changed();
            }
            Err(e) => tracing::warn!(watch = ?watch, error = %e, "watch error; retrying"),
        }
    }
}

/// A namespaced object's (namespace, name): the key every index keeps objects by.
pub type NsName = (String, String);

/// The (namespace, name) of `o` (an empty namespace for a cluster-scoped object).
#[must_use]
pub fn ns_name<K: ResourceExt>(o: &K) -> NsName {
    (o.namespace().unwrap_or_default(), o.name_any())
}

/// Declares a component's watches as an enum (`Debug`, `Copy`, `Eq`) whose variants, in order, are the
/// indexes of its [`Readiness`], with the `Into<usize>` [`pump`] takes:
/// `watch_kinds! { /// Which watch. pub enum Kind { /// Pods. Pods, /// Nodes. Nodes } }`.
#[macro_export]
macro_rules! watch_kinds {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl From<$name> for usize {
            fn from(k: $name) -> usize {
                k as usize
            }
        }
    };
}

/// The watches of one component: each [`Pumps::watch`] spawns a [`pump`] over every namespace on the current
/// tokio runtime, reporting to the shared state's [`Readiness`]; they run until the tasks are aborted.
#[must_use = "the pumps run only as long as their tasks are kept (or detached)"]
pub struct Pumps<S> {
    client: kube::Client,
    shared: Arc<S>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

// === impl Pumps ===

impl<S: Watched> Pumps<S> {
    /// No watches yet.
    pub fn new(client: kube::Client, shared: Arc<S>) -> Pumps<S> {
        Pumps {
            client,
            shared,
            tasks: Vec::new(),
        }
    }

    /// Spawn watch `watch` of `K` (every namespace, filtered by `wc`): each object is trimmed by `trim` and
    /// each event handed to `handle` with the shared state.
    pub fn watch<W, K, T, G, F>(&mut self, wc: watcher::Config, watch: W, trim: G, mut handle: F)
    where
        W: Debug + Copy + Into<usize> + Send + 'static,
        K: kube::Resource + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
        K::DynamicType: Default,
        G: Fn(K) -> T + Send + 'static,
        T: Send + 'static,
        F: FnMut(&S, Event<T>) + Send + 'static,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let shared = self.shared.clone();
        self.tasks.push(tokio::spawn(pump(
            api,
            wc,
            self.shared.clone(),
            watch,
            trim,
            move |ev| handle(&shared, ev),
        )));
    }

    /// The pump tasks.
    #[must_use]
    pub fn into_tasks(self) -> Vec<tokio::task::JoinHandle<()>> {
        self.tasks
    }
}

/// Drop managed fields before caching an object (they are large and never read).
#[must_use]
pub fn trim_meta<K: kube::Resource>(mut o: K) -> K {
    o.meta_mut().managed_fields = None;
    o
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn ready_when_every_needed_watch_synced() {
        let r = Readiness::new(&[true, false, true]);
        assert!(!r.is_ready());
        r.mark_synced(0);
        assert!(!r.is_ready());
        r.mark_synced(2);
        assert!(r.is_ready(), "watch 1 is not needed");
        r.mark_synced(7);
        assert!(Readiness::new(&[]).is_ready());
    }
}
