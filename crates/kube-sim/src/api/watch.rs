//! Watch streams.
//!
//! A watch is a chunked JSON stream of `{"type": ..., "object": ...}` lines. It starts from a resourceVersion
//! (replaying the change log) or from "now" (synthetic ADDED events for current objects), then follows live
//! changes. Selector transitions follow the apiserver: an object that stops matching is sent as DELETED, one that
//! starts matching as ADDED. Bookmarks carry a resourceVersion only once every earlier change for this resource
//! was delivered, so resuming from a bookmark never skips an event. A compacted start, or a watcher that falls
//! too far behind, gets an ERROR event with a 410 Status, which is what makes clients relist.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::read::{Selectors, for_version, table_of, wants_table};
use crate::Sim;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::server::{Body, Ctx};
use crate::store::{Change, ChangeType};

/// Default and maximum watch duration when the client sets none (the apiserver picks 30-60 minutes).
const DEFAULT_WATCH_SECONDS: u64 = 1800;
/// Frames buffered towards a slow HTTP client before the watch task waits.
const STREAM_BUFFER: usize = 1024;
/// A client that reads nothing for this long while frames wait is dropped (the apiserver drops slow watchers too).
const SLOW_CLIENT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Send one frame unless the watch has ended: false when the client went away, stopped reading for
/// [`SLOW_CLIENT_LIMIT`], or the watch's own deadline passed.
async fn send(tx: &mpsc::Sender<Bytes>, line: Bytes, deadline: tokio::time::Instant) -> bool {
    let limit = deadline.min(tokio::time::Instant::now() + SLOW_CLIENT_LIMIT);
    matches!(
        tokio::time::timeout_at(limit, tx.send(line)).await,
        Ok(Ok(()))
    )
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    let _ = serde_json::to_writer(&mut out, object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn gone_line(message: String) -> Bytes {
    event_line("ERROR", &ApiError::gone(message).to_status())
}

/// The event a watcher with a selector sees for a change: its type, and whether it carries the object's last
/// matching state instead of the new one (an object that stops matching leaves the watch as DELETED with the
/// state it was last seen in, as the apiserver's watch cache sends it). None: the watcher sees nothing.
fn watch_event(
    change: ChangeType,
    matched_before: bool,
    matches_now: bool,
) -> Option<(&'static str, bool)> {
    match change {
        ChangeType::Added => matches_now.then_some(("ADDED", false)),
        ChangeType::Deleted => (matches_now || matched_before).then_some(("DELETED", false)),
        ChangeType::Modified => match (matched_before, matches_now) {
            (true, true) => Some(("MODIFIED", false)),
            (false, true) => Some(("ADDED", false)),
            (true, false) => Some(("DELETED", true)),
            (false, false) => None,
        },
    }
}

struct Watcher {
    sim: Arc<Sim>,
    rt: Arc<ResourceType>,
    ns: Option<String>,
    sel: Selectors,
    table: Option<TableCtx>,
    bookmarks: bool,
}

struct TableCtx {
    ctx_accept: Ctx,
}

impl Watcher {
    fn render(&self, obj: &Arc<Value>) -> Value {
        let obj = for_version(&self.rt, obj);
        match &self.table {
            // A Table event carries the object's resourceVersion in the Table's metadata.
            Some(t) => table_of(
                &t.ctx_accept,
                &self.rt,
                &[&obj],
                json!({"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)}),
            ),
            None => (*obj).clone(),
        }
    }

    /// The event to send for a change, after namespace and selector filtering.
    fn event_for(&self, c: &Change) -> Option<Bytes> {
        if self.ns.as_deref().is_some_and(|n| n != c.namespace) {
            return None;
        }
        let now = self.sel.matches(&c.object);
        let before = c.previous.as_ref().is_some_and(|p| self.sel.matches(p));
        let (kind, last_matching) = watch_event(c.kind, before, now)?;
        let object = match (last_matching, c.previous.as_ref()) {
            (true, Some(previous)) => previous,
            _ => &c.object,
        };
        Some(event_line(kind, &self.render(object)))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta});
        event_line("BOOKMARK", &obj)
    }
}

/// Serve a watch request.
pub fn watch(
    sim: &Arc<Sim>,
    ctx: &Ctx,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    _name: Option<&str>,
) -> ApiResult<Response<Body>> {
    super::list_options::validate(ctx, true)?;
    let sel = Selectors::from_ctx(ctx, rt)?;
    let rv_param = ctx.query.get("resourceVersion").unwrap_or("");
    let send_initial = ctx.query.flag("sendInitialEvents");
    let from = match rv_param {
        "" | "0" => None,
        s => Some(super::list_options::parse_resource_version(s)?),
    };
    let from = if send_initial { None } else { from };
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_WATCH_SECONDS)
        .min(DEFAULT_WATCH_SECONDS * 2);
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let table = wants_table(ctx).then(|| TableCtx {
        ctx_accept: Ctx {
            method: ctx.method.clone(),
            path: ctx.path.clone(),
            query: ctx.query.clone(),
            headers: ctx.headers.clone(),
            user: ctx.user.clone(),
            body: Bytes::new(),
            warnings: parking_lot::Mutex::new(Vec::new()),
        },
    });
    let watcher = Watcher {
        sim: sim.clone(),
        rt: rt.clone(),
        ns: ns.map(str::to_string),
        sel,
        table,
        bookmarks,
    };

    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    match sim.store.watch(&rt.key(), ns, from) {
        Ok(start) => {
            tokio::spawn(run(
                watcher,
                start,
                tx,
                Duration::from_secs(timeout),
                send_initial,
            ));
        }
        Err(e) => {
            // Like the apiserver: the watch is established, and its first event is the 410.
            let _ = tx.try_send(gone_line(e.message));
            drop(tx);
        }
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
    });
    let body: Body = StreamBody::new(stream).boxed();
    Response::builder()
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn run(
    w: Watcher,
    start: crate::store::WatchStart,
    tx: mpsc::Sender<Bytes>,
    timeout: Duration,
    send_initial: bool,
) {
    let crate::store::WatchStart {
        backlog,
        mut receiver,
        rv: start_rv,
    } = start;
    let end = tokio::time::Instant::now() + timeout;
    let mut last_rv = start_rv;
    for c in &backlog {
        if let Some(line) = w.event_for(c)
            && !send(&tx, line, end).await
        {
            return;
        }
        last_rv = last_rv.max(c.rv);
    }
    if send_initial && w.bookmarks && !send(&tx, w.bookmark(start_rv, true), end).await {
        return;
    }
    let deadline = tokio::time::sleep_until(end);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(w.sim.config.bookmark_interval);
    ticker.tick().await;
    let mut shutdown = w.sim.shutdown.clone();
    loop {
        tokio::select! {
            r = receiver.recv() => match r {
                Ok(c) => {
                    last_rv = last_rv.max(c.rv);
                    if let Some(line) = w.event_for(&c)
                        && !send(&tx, line, end).await
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let _ = send(&tx, gone_line(format!("too old resource version: {last_rv} (watcher fell {n} events behind)")), end).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = send(&tx, gone_line(format!("too old resource version: {last_rv} ({})", w.sim.store.oldest_watchable())), end).await;
                    return;
                }
            },
            _ = ticker.tick(), if w.bookmarks => {
                // Only when every change sent so far was consumed may the bookmark jump to the store's version.
                // Read the version first: a write's send happens under the same lock as its version bump.
                let current = w.sim.store.current_rv();
                if receiver.is_empty() {
                    last_rv = last_rv.max(current);
                }
                if !send(&tx, w.bookmark(last_rv, false), end).await {
                    return;
                }
            }
            _ = tx.closed() => return,
            _ = &mut deadline => return,
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_leaving_the_selector_is_deleted_with_its_last_matching_state() {
        assert_eq!(
            watch_event(ChangeType::Modified, true, false),
            Some(("DELETED", true))
        );
        assert_eq!(
            watch_event(ChangeType::Modified, false, true),
            Some(("ADDED", false))
        );
        assert_eq!(
            watch_event(ChangeType::Modified, true, true),
            Some(("MODIFIED", false))
        );
        assert_eq!(watch_event(ChangeType::Modified, false, false), None);
        assert_eq!(
            watch_event(ChangeType::Deleted, true, false),
            Some(("DELETED", false))
        );
        assert_eq!(watch_event(ChangeType::Added, false, false), None);
    }
}
