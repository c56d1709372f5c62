//! The watch pump every component feeds its indexes with: one kube watcher per resource type, objects trimmed
//! before they are kept, events handed to a synchronous handler as [`Event::Apply`] / [`Event::Delete`] /
//! [`Event::Reset`] (a complete relist), and [`Readiness`] once every needed watch delivered its first list.
//! A watch error is logged and the watcher retries with backoff; a malformed object never stalls a watch.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};

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
