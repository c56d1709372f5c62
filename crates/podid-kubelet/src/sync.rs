//! The kubelet's IO: the two watch pumps fill a [`Shared`] cache and mark what changed; [`run`] takes the
//! changes in order and is the only place that writes (Node patches, `pods/status` patches, pod deletions,
//! TokenRequests, files). Decisions come from [`crate::ipam`], [`crate::status`] and [`crate::volumes`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use parking_lot::Mutex;
use podid_runtime::watch::{self as pump, Event, Pumps, Readiness, Watched};
use tokio::sync::{Notify, watch};

use crate::ipam::{Ipam, next_node_cidr};
use crate::status::{self, PodStep};
use crate::volumes::{self, Keyed, Source, TokenKey};
use crate::{Clock, Config};

/// A token that could not be had is asked for again this much later (seconds).
const TOKEN_RETRY_SECS: i64 = 2;

podid_runtime::watch_kinds! {
    /// The watches, by their index in the [`Readiness`].
    enum Watch {
        /// Every pod.
        Pods,
        /// Every node.
        Nodes,
    }
}

/// What the pumps saw and the reconciler has not handled yet.
#[derive(Default)]
struct Cache {
    /// pod uid -> pod.
    pods: HashMap<String, Pod>,
    /// node name -> node.
    nodes: BTreeMap<String, Node>,
    /// Pods that changed, in the order they did (no repeats).
    changed: Vec<String>,
    changed_set: HashSet<String>,
    /// Pods deleted since the last pass.
    deleted: Vec<String>,
    /// A relist or a node change: every pod is looked at again.
    all: bool,
}

/// The cache the pumps fill and the reconciler drains.
pub struct Shared {
    readiness: Readiness,
    notify: Notify,
    cache: Mutex<Cache>,
}

/// One pass of work for the reconciler.
struct Work {
    deleted: Vec<String>,
    /// Every live pod uid, on a full pass.
    live: Option<HashSet<String>>,
    pods: Vec<Pod>,
    nodes: BTreeMap<String, Node>,
}

// === impl Shared ===

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            readiness: Readiness::new(&[true, true]),
            notify: Notify::new(),
            cache: Mutex::new(Cache::default()),
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.readiness.is_ready()
    }

    fn on_pod(&self, ev: Event<Pod>) {
        let mut c = self.cache.lock();
        match ev {
            Event::Apply(p) => {
                let Some(uid) = p.metadata.uid.clone() else {
                    return;
                };
                c.pods.insert(uid.clone(), p);
                if c.changed_set.insert(uid.clone()) {
                    c.changed.push(uid);
                }
            }
            Event::Delete(p) => {
                let Some(uid) = p.metadata.uid.clone() else {
                    return;
                };
                c.pods.remove(&uid);
                c.deleted.push(uid);
            }
            Event::Reset(all) => {
                c.pods = all
                    .into_iter()
                    .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
                    .collect();
                c.all = true;
            }
        }
    }

    fn on_node(&self, ev: Event<Node>) {
        let mut c = self.cache.lock();
        let name = |n: &Node| n.metadata.name.clone().unwrap_or_default();
        match ev {
            Event::Apply(n) => {
                c.nodes.insert(name(&n), n);
            }
            Event::Delete(n) => {
                c.nodes.remove(&name(&n));
            }
            Event::Reset(all) => c.nodes = all.into_iter().map(|n| (name(&n), n)).collect(),
        }
        c.all = true;
    }

    fn pod(&self, uid: &str) -> Option<Pod> {
        self.cache.lock().pods.get(uid).cloned()
    }

    /// Look at pod `uid` again on the next pass (a write failed).
    fn retry(&self, uid: &str) {
        let mut c = self.cache.lock();
        if c.changed_set.insert(uid.to_string()) {
            c.changed.push(uid.to_string());
        }
    }

    fn take_work(&self) -> Work {
        let mut c = self.cache.lock();
        let deleted = std::mem::take(&mut c.deleted);
        let changed = std::mem::take(&mut c.changed);
        c.changed_set.clear();
        let (live, pods) = if std::mem::take(&mut c.all) {
            let mut pods: Vec<Pod> = c.pods.values().cloned().collect();
            pods.sort_by(|a, b| creation_order(a).cmp(&creation_order(b)));
            (Some(c.pods.keys().cloned().collect()), pods)
        } else {
            let pods = changed
                .iter()
                .filter_map(|u| c.pods.get(u).cloned())
                .collect();
            (None, pods)
        };
        Work {
            deleted,
            live,
            pods,
            nodes: c.nodes.clone(),
        }
    }
}

impl Watched for Shared {
    fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    fn changed(&self) {
        self.notify.notify_one();
    }
}

/// Oldest first, then by namespace and name (a full pass hands out addresses in creation order).
fn creation_order(p: &Pod) -> (Option<i64>, &str, &str) {
    (
        p.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
        p.metadata.namespace.as_deref().unwrap_or(""),
        p.metadata.name.as_deref().unwrap_or(""),
    )
}

/// The reconciler's own state.
struct Kubelet {
    client: kube::Client,
    dir: PathBuf,
    clock: Clock,
    shared: Arc<Shared>,
    ipam: Ipam,
    /// pod uid -> (namespace, name) of pods the kubelet serves.
    tracked: HashMap<String, (String, String)>,
    /// Token files written -> when they are due again.
    tokens: BTreeMap<TokenKey, i64>,
    /// Directories of pods that no longer exist were removed (once, on the first full pass).
    swept: bool,
}

/// Run the kubelet until `stop` flips.
pub(crate) async fn run(
    client: kube::Client,
    config: Config,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pumps = Pumps::new(client.clone(), shared.clone());
    pumps.watch(
        Default::default(),
        Watch::Pods,
        pump::trim_meta::<Pod>,
        Shared::on_pod,
    );
    pumps.watch(
        Default::default(),
        Watch::Nodes,
        pump::trim_meta::<Node>,
        Shared::on_node,
    );
    let pumps = pumps.into_tasks();
    let mut k = Kubelet {
        client,
        dir: config.dir,
        clock: config.clock,
        shared: shared.clone(),
        ipam: Ipam::default(),
        tracked: HashMap::new(),
        tokens: BTreeMap::new(),
        swept: false,
    };
    let mut tick = tokio::time::interval(config.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = shared.notify.notified() => {}
            _ = tick.tick() => {}
        }
        if *stop.borrow() {
            break;
        }
        if !shared.is_ready() {
            continue;
        }
        let work = shared.take_work();
        k.pass(work).await;
        k.refresh_tokens().await;
    }
    for p in pumps {
        p.abort();
    }
}

// === impl Kubelet ===

impl Kubelet {
    fn now(&self) -> i64 {
        (self.clock)()
    }

    async fn pass(&mut self, work: Work) {
        let Work {
            deleted,
            live,
            pods,
            mut nodes,
        } = work;
        for uid in deleted {
            self.forget(&uid);
        }
        if let Some(live) = live {
            let gone: Vec<String> = self
                .tracked
                .keys()
                .filter(|u| !live.contains(*u))
                .cloned()
                .collect();
            for uid in gone {
                self.forget(&uid);
            }
            if !std::mem::replace(&mut self.swept, true) {
                self.sweep(&live);
            }
            // Learn every address pods carry before handing out any (a restart must not duplicate one).
            for p in &pods {
                if let (Some(uid), Some(node), Some(ip)) =
                    (p.metadata.uid.as_deref(), node_name(p), pod_ipv4(p))
                {
                    self.ipam.learn(uid, node, ip);
                }
            }
        }
        for p in &pods {
            self.sync_pod(p, &mut nodes).await;
        }
    }

    /// Removes directories under `<dir>/pods` of pods that no longer exist (a previous run's).
    fn sweep(&self, live: &HashSet<String>) {
        let root = self.dir.join("pods");
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    fn forget(&mut self, uid: &str) {
        if uid.is_empty() {
            return;
        }
        self.ipam.release(uid);
        self.tracked.remove(uid);
        self.tokens.retain(|k, _| k.0 != uid);
        let _ = std::fs::remove_dir_all(volumes::pod_dir(&self.dir, uid));
    }

    async fn sync_pod(&mut self, pod: &Pod, nodes: &mut BTreeMap<String, Node>) {
        let (Some(uid), Some(node_name)) = (pod.metadata.uid.clone(), node_name(pod)) else {
            return;
        };
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if !nodes.contains_key(node_name) {
            return;
        }
        let step = status::pod_step(pod);
        if step == PodStep::Start {
            // The node as it is now: the pod watch may be ahead of the node watch (a node's address or pod CIDR
            // written just before the pod was created).
            match Api::<Node>::all(self.client.clone())
                .get_opt(node_name)
                .await
            {
                Ok(Some(n)) => {
                    nodes.insert(node_name.to_string(), n);
                }
                Ok(None) => {
                    nodes.remove(node_name);
                    return;
                }
                Err(e) => {
                    tracing::debug!(node = %node_name, error = %e, "node read failed; using the watched copy")
                }
            }
        }
        let Some(node) = nodes.get(node_name) else {
            return;
        };
        let cidr = match node.spec.as_ref().and_then(|s| s.pod_cidr.clone()) {
            Some(c) => c,
            None => match self.give_node_cidr(node, nodes).await {
                Some(n) => {
                    let c = n
                        .spec
                        .as_ref()
                        .and_then(|s| s.pod_cidr.clone())
                        .unwrap_or_default();
                    nodes.insert(node_name.to_string(), n);
                    c
                }
                None => return,
            },
        };
        let host_ip = nodes
            .get(node_name)
            .map(status::host_ip)
            .unwrap_or_default();
        self.tracked.insert(uid.clone(), (ns.clone(), name.clone()));
        self.write_volumes(pod, false).await;
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        match step {
            PodStep::Terminating { finish } => {
                if let Some(ip) = pod_ipv4(pod) {
                    self.ipam.learn(&uid, node_name, ip);
                }
                if finish {
                    self.finish_deletion(pod).await;
                }
                return;
            }
            PodStep::Running => {
                if let Some(ip) = pod_ipv4(pod) {
                    self.ipam.learn(&uid, node_name, ip);
                }
                return;
            }
            PodStep::Start => {}
        }
        let ip = if host_network {
            host_ip.clone()
        } else {
            match self.ipam.assign(&uid, node_name, &cidr) {
                Some(ip) => ip.to_string(),
                None => {
                    tracing::warn!(node = %node_name, %cidr, "node pod CIDR exhausted");
                    return;
                }
            }
        };
        let now = status::rfc3339(self.now());
        let patch = status::status_patch(pod, status::running_status(pod, &ip, &host_ip, &now));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::debug!(%ns, pod = %name, node = %node_name, pod_ip = %ip, "pod running")
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(%ns, pod = %name, error = %e, "kubelet could not update pod status; retrying");
                self.shared.retry(&uid);
            }
        }
    }

    /// Gives `node` the next free pod CIDR (a conditional patch); the node as stored afterwards.
    async fn give_node_cidr(&self, node: &Node, nodes: &BTreeMap<String, Node>) -> Option<Node> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let held = nodes
            .values()
            .filter_map(|n| n.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()));
        let Some(cidr) = next_node_cidr(held) else {
            tracing::warn!(node = %name, "no free pod CIDR left in 10.244.0.0/16");
            return None;
        };
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = status::node_cidr_patch(node, &cidr);
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(n) => {
                tracing::info!(node = %name, %cidr, "node given a pod CIDR");
                Some(n)
            }
            Err(e) => {
                // A node that changed meanwhile (409) is looked at again on its watch event.
                tracing::debug!(node = %name, error = %e, "could not give the node a pod CIDR");
                None
            }
        }
    }

    /// A pod in graceful deletion is removed for good, as the kubelet does once its containers stopped.
    async fn finish_deletion(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => {
                tracing::warn!(%ns, pod = %name, error = %e, "kubelet could not finish a pod's deletion")
            }
        }
    }

    /// Writes every projected volume of a pod; with `tokens_only`, only the service-account tokens that are due.
    async fn write_volumes(&mut self, pod: &Pod, tokens_only: bool) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        for vol in volumes::projected_volumes(pod) {
            let vdir = volumes::projected_dir(&self.dir, &uid, &vol.name);
            for src in &vol.sources {
                match src {
                    Source::Token {
                        path,
                        audience,
                        expiration_seconds,
                    } => {
                        let key = (uid.clone(), vol.name.clone(), path.clone());
                        let now = self.now();
                        if self.tokens.get(&key).is_some_and(|due| *due > now) {
                            continue;
                        }
                        let Some(file) = volumes::join_safe(&vdir, path) else {
                            continue;
                        };
                        match self.request_token(pod, audience, *expiration_seconds).await {
                            Ok((token, expires_at)) => {
                                if let Err(e) = write_atomic(&file, token.as_bytes()) {
                                    tracing::warn!(%ns, pod = %name, error = %e, "kubelet could not write a token file");
                                    continue;
                                }
                                let now = self.now();
                                self.tokens
                                    .insert(key, volumes::refresh_at(now, expires_at));
                            }
                            Err(e) => {
                                tracing::warn!(%ns, pod = %name, error = %e, "kubelet could not get a projected token; retrying");
                                let now = self.now();
                                self.tokens.insert(key, now + TOKEN_RETRY_SECS);
                            }
                        }
                    }
                    _ if tokens_only => {}
                    Source::ConfigMap(keyed) => {
                        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
                        if let Ok(Some(cm)) = api.get_opt(&keyed.name).await {
                            let data = cm
                                .data
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(k, v)| (k, v.into_bytes()))
                                .collect();
                            write_keyed(&vdir, &data, keyed);
                        }
                    }
                    Source::Secret(keyed) => {
                        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
                        if let Ok(Some(s)) = api.get_opt(&keyed.name).await {
                            let data = s
                                .data
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(k, v)| (k, v.0))
                                .collect();
                            write_keyed(&vdir, &data, keyed);
                        }
                    }
                    Source::DownwardApi(items) => {
                        for (path, field) in items {
                            if let Some(value) = volumes::downward_value(pod, field)
                                && let Some(file) = volumes::join_safe(&vdir, path)
                            {
                                let _ = write_atomic(&file, value.as_bytes());
                            }
                        }
                    }
                }
            }
        }
    }

    /// A TokenRequest for the pod's service account, bound to the pod; (token, expiry in seconds since the
    /// epoch).
    async fn request_token(
        &self,
        pod: &Pod,
        audience: &Option<String>,
        expiration_seconds: i64,
    ) -> Result<(String, i64), kube::Error> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.iter().cloned().collect(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..TokenRequest::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns);
        let tr = api
            .create_token_request(&sa, &PostParams::default(), &req)
            .await?;
        let Some(status) = tr.status.filter(|s| !s.token.is_empty()) else {
            return Err(kube::Error::Service(
                "the TokenRequest answer carries no token".into(),
            ));
        };
        let expires_at = match status.expiration_timestamp.0.as_second() {
            s if s > 0 => s,
            _ => self.now() + expiration_seconds,
        };
        Ok((status.token, expires_at))
    }

    /// Rewrites the tokens that are due.
    async fn refresh_tokens(&mut self) {
        let now = self.now();
        let due: HashSet<String> = self
            .tokens
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| k.0.clone())
            .collect();
        for uid in due {
            if !self.tracked.contains_key(&uid) {
                continue;
            }
            if let Some(pod) = self.shared.pod(&uid) {
                self.write_volumes(&pod, true).await;
            }
        }
    }
}

fn node_name(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn pod_ipv4(p: &Pod) -> Option<Ipv4Addr> {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|s| s.parse().ok())
}

fn write_keyed(vdir: &Path, data: &BTreeMap<String, Vec<u8>>, keyed: &Keyed) {
    for (path, bytes) in volumes::keyed_files(data, keyed) {
        if let Some(file) = volumes::join_safe(vdir, &path) {
            let _ = write_atomic(&file, &bytes);
        }
    }
}

/// Replaces `path` atomically (a temporary file beside it, renamed over it), mode 0644.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".podid-kubelet-tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
}
