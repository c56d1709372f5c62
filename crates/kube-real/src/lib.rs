//! A real Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager, built from the Go module
//! proxy by `scripts/ensure-kube.sh` (versions and flags: docs/real-kube.md), started as child processes on
//! 127.0.0.1 only. `podid up --kube real` runs the playground on it; the test kit (`podid_testkit::real_kube`)
//! runs the suites on it.
//!
//! # What may not live here
//!
//! Test decisions (skip or fail) and anything of podid's own components: this crate only starts, describes and
//! stops the three upstream programs.
//!
//! # Model
//!
//! [`RealKube::start`] (or [`RealKube::start_with`] and its [`Options`]) makes a fresh temporary directory,
//! generates the PKI there (a CA; the API server's serving certificate for 127.0.0.1, `localhost` and the in-cluster names; an admin client certificate in
//! `system:masters`; an RSA service-account signing key), picks free loopback ports, starts etcd, then
//! kube-apiserver, then kube-controller-manager, and returns once `/readyz` answers `ok` and the `default`
//! ServiceAccount exists (the controller manager's first work). The admin kubeconfig it writes embeds the CA
//! and the client certificate, so it works from any directory.
//!
//! # Children
//!
//! Each child runs in its own process group, asks the kernel for SIGKILL when this process's spawning thread dies
//! (`setpriv --pdeathsig KILL`, when util-linux's `setpriv` is there: the workspace forbids the `unsafe` a
//! `pre_exec` would need), and writes stdout and stderr to `<dir>/<name>.log`. [`RealKube::shutdown`] and `Drop`
//! both stop them (SIGTERM to the group, SIGKILL after [`STOP_GRACE`]) in reverse start order and remove the
//! directory. A failed start stops what did start and names the child, with the last lines of its log.
//!
//! # How many at once
//!
//! One control plane takes about 4 s of two busy cores to start and about 430 MB to run (kube-apiserver ~275 MB),
//! so [`RealKube::start`] first takes one of [`DEFAULT_PARALLEL`] slots of this process (`PODID_REAL_KUBE_PARALLEL`,
//! [`PARALLEL_ENV`], changes the number) and holds it until the control plane is stopped; more starts wait.
//!
//! # Where the binaries come from
//!
//! [`Options::bin`], else `$PODID_KUBE_BIN` ([`BIN_ENV`]; `scripts/ensure-kube.sh` exports it). Without it, or
//! without the three binaries in it, [`RealKube::start`] returns a [`RealKubeUnavailable`] error, which a test
//! turns into a skip (`podid_testkit::real_kube::skip_unless_available`) unless `PODID_REQUIRE_REAL_KUBE=1`
//! ([`REQUIRE_ENV`]; CI sets it), where it fails, and `podid up --kube real` into a message saying how to build.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use serde_json::json;
use tokio::process::{Child, Command};

/// The directory holding `etcd`, `kube-apiserver` and `kube-controller-manager` (set by scripts/ensure-kube.sh).
pub const BIN_ENV: &str = "PODID_KUBE_BIN";
/// `1`: a test that cannot start the real API server fails instead of skipping (set by scripts/test.sh in CI).
pub const REQUIRE_ENV: &str = "PODID_REQUIRE_REAL_KUBE";
/// How many real control planes one test process runs at once (more wait for a slot), unless [`PARALLEL_ENV`]
/// says otherwise: each costs ~430 MB and its start two busy cores for ~4 s.
pub const DEFAULT_PARALLEL: usize = 2;
/// A number overriding [`DEFAULT_PARALLEL`].
pub const PARALLEL_ENV: &str = "PODID_REAL_KUBE_PARALLEL";
/// The binaries [`BIN_ENV`] must hold.
pub const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/// The virtual service network (never routed: no interface gets an address from it).
const SERVICE_CIDR: &str = "10.0.0.0/24";
/// etcd answers `/health` within this (0.8 s measured; a loaded 2-core machine is slower).
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// kube-apiserver answers `/readyz` within this (2-3 s measured after etcd).
const APISERVER_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// kube-controller-manager creates the `default` ServiceAccount within this (0.4 s measured).
const KCM_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Between readiness polls.
const READY_POLL: Duration = Duration::from_millis(50);
/// SIGTERM to SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of a child's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 25;
/// Whole-start attempts when a picked port was taken meanwhile by another process.
const START_ATTEMPTS: usize = 3;
/// The only variables a child inherits: nothing else (a proxy, a `KUBECONFIG`, Go settings) may change how it
/// runs or whom it calls.
const INHERITED_VARS: [&str; 3] = ["PATH", "TMPDIR", "TZ"];
/// Controllers of kube-controller-manager left off: without a kubelet no node ever heartbeats, so node lifecycle
/// would taint every node unreachable and taint eviction would then delete its pods; pod GC deletes pods bound to
/// nodes that do not exist; node IPAM would hand out podCIDRs the tests set themselves.
const KCM_CONTROLLERS: &str = "*,-node-lifecycle-controller,-taint-eviction-controller,-pod-garbage-collector-controller,-node-ipam-controller";

/// The real API server cannot run on this machine (its binaries are not built); tests skip on it.
#[derive(Debug)]
pub struct RealKubeUnavailable(pub String);

impl std::fmt::Display for RealKubeUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the real kube-apiserver is not available: {} (run scripts/ensure-kube.sh and export {BIN_ENV})",
            self.0
        )
    }
}

impl std::error::Error for RealKubeUnavailable {}

/// The process's control-plane slots: [`PARALLEL_ENV`] or [`DEFAULT_PARALLEL`] (at least one).
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::env::var(PARALLEL_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_PARALLEL);
        tokio::sync::Semaphore::new(n.max(1))
    })
}

/// The directory with the three binaries, from [`BIN_ENV`].
pub fn binaries() -> Result<PathBuf, RealKubeUnavailable> {
    let dir = std::env::var_os(BIN_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| RealKubeUnavailable(format!("{BIN_ENV} is not set")))?;
    binaries_in(dir)
}

/// `dir` when it holds the three binaries.
pub fn binaries_in(dir: PathBuf) -> Result<PathBuf, RealKubeUnavailable> {
    for b in BINARIES {
        if !dir.join(b).is_file() {
            return Err(RealKubeUnavailable(format!(
                "{BIN_ENV}={} holds no {b}",
                dir.display()
            )));
        }
    }
    Ok(dir)
}

/// How to start a control plane (the default: the suites' way).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The binaries' directory (default: [`BIN_ENV`]).
    pub bin: Option<PathBuf>,
    /// More names and addresses for the serving certificate (a node namespace's address of the API server).
    pub extra_sans: Vec<String>,
    /// The API server's port on 127.0.0.1 (0 or None: a free one).
    pub port: Option<u16>,
}

/// How long each step of [`RealKube::start`] took.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartTimes {
    /// PKI and files.
    pub pki: Duration,
    /// etcd's `/health`.
    pub etcd: Duration,
    /// kube-apiserver's `/readyz`, after etcd.
    pub apiserver: Duration,
    /// The `default` ServiceAccount (kube-controller-manager), after the API server.
    pub controller_manager: Duration,
    /// Everything.
    pub total: Duration,
}

/// A running etcd + kube-apiserver + kube-controller-manager.
pub struct RealKube {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// PEM of the CA that signed the serving and client certificates.
    pub ca_pem: String,
    /// Admin kubeconfig (client certificate, group `system:masters`), CA and certificate embedded.
    pub kubeconfig: PathBuf,
    /// The service-account token issuer (`--service-account-issuer`, also the API audience).
    pub issuer: String,
    /// What the start took.
    pub times: StartTimes,
    children: Vec<KubeChild>,
    bin: PathBuf,
    dir: Option<tempfile::TempDir>,
    /// This control plane's slot ([`slots`]), given back when it is dropped (after `Drop` stopped the children).
    _slot: Option<tokio::sync::SemaphorePermit<'static>>,
}

/// One child: its name (for messages), process, and log.
struct KubeChild {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// The files and ports of one start attempt.
struct Layout {
    dir: PathBuf,
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
}

// === impl RealKube ===

impl RealKube {
    /// Starts the control plane in a fresh temporary directory (see the module doc). A [`RealKubeUnavailable`]
    /// error when the binaries are missing.
    pub async fn start() -> anyhow::Result<RealKube> {
        Self::start_with(Options::default()).await
    }

    /// [`RealKube::start`] with [`Options`].
    pub async fn start_with(opts: Options) -> anyhow::Result<RealKube> {
        let bin = match opts.bin.clone() {
            Some(dir) => binaries_in(dir)?,
            None => binaries()?,
        };
        let slot = slots().acquire().await.context("real kube slots")?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&bin, &opts).await {
                Ok(mut k) => {
                    k._slot = Some(slot);
                    return Ok(k);
                }
                Err(e) if format!("{e:#}").contains("address already in use") => {
                    eprintln!("real kube: a port was taken meanwhile; starting again: {e:#}");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no start attempt")))
    }

    async fn start_once(bin: &Path, opts: &Options) -> anyhow::Result<RealKube> {
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("podid-real-kube-")
            .tempdir()
            .context("temporary directory")?;
        let ports = free_ports(3)?;
        let layout = Layout {
            dir: dir.path().to_path_buf(),
            etcd_client: ports[0],
            etcd_peer: ports[1],
            apiserver: opts.port.filter(|p| *p != 0).unwrap_or(ports[2]),
        };
        let url = format!("https://127.0.0.1:{}", layout.apiserver);
        let ca_pem = write_pki(&layout.dir, &url, &opts.extra_sans)?;
        let mut k = RealKube {
            url: url.clone(),
            ca_pem,
            kubeconfig: layout.dir.join("admin.kubeconfig"),
            issuer: url,
            times: StartTimes {
                pki: t0.elapsed(),
                ..StartTimes::default()
            },
            children: Vec::new(),
            bin: bin.to_path_buf(),
            dir: Some(dir),
            _slot: None,
        };
        // Any error from here drops `k`, which stops what started and removes the directory.
        let t = Instant::now();
        k.spawn("etcd", layout.etcd_args())?;
        k.wait_etcd(layout.etcd_client).await?;
        k.times.etcd = t.elapsed();

        let t = Instant::now();
        k.spawn("kube-apiserver", layout.apiserver_args(&k.issuer))?;
        k.wait_readyz().await?;
        let client = client_for(&k.kubeconfig).await?;
        k.times.apiserver = t.elapsed();

        let t = Instant::now();
        k.spawn("kube-controller-manager", layout.kcm_args())?;
        k.wait_default_sa(&client).await?;
        k.times.controller_manager = t.elapsed();
        k.times.total = t0.elapsed();
        Ok(k)
    }

    /// The temporary directory (PKI, etcd's data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// The children's process ids, in start order (etcd, kube-apiserver, kube-controller-manager).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(|c| c.child.id()).collect()
    }

    /// The API server's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .trim_start_matches("https://")
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// A child's log so far (`etcd`, `kube-apiserver`, `kube-controller-manager`).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Stops every child (SIGTERM, SIGKILL after [`STOP_GRACE`]), newest first, and removes the directory.
    pub async fn shutdown(mut self) {
        while let Some(mut c) = self.children.pop() {
            signal_group(&c.child, rustix::process::Signal::TERM);
            if tokio::time::timeout(STOP_GRACE, c.child.wait())
                .await
                .is_err()
            {
                signal_group(&c.child, rustix::process::Signal::KILL);
                let _ = c.child.wait().await;
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }

    fn spawn(&mut self, name: &'static str, args: Vec<String>) -> anyhow::Result<()> {
        let dir = self.dir().to_path_buf();
        let exe = self.bin.join(name);
        let log = dir.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let mut cmd = match find_tool("setpriv") {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.env_clear();
        for v in INHERITED_VARS {
            if let Some(value) = std::env::var_os(v) {
                cmd.env(v, value);
            }
        }
        cmd.args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", exe.display()))?;
        self.children.push(KubeChild { name, child, log });
        Ok(())
    }

    /// Fails (naming the child, with its log's tail) when a child has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for c in &mut self.children {
            if let Ok(Some(status)) = c.child.try_wait() {
                anyhow::bail!(
                    "{} exited during start-up ({status}); the end of its log:\n{}",
                    c.name,
                    log_tail(&c.log)
                );
            }
        }
        Ok(())
    }

    /// A readiness timeout, with the newest child's log.
    fn timed_out(&self, what: &str, waited: Duration) -> anyhow::Error {
        let tail = self
            .children
            .last()
            .map(|c| format!("{}'s log:\n{}", c.name, log_tail(&c.log)))
            .unwrap_or_default();
        anyhow::anyhow!("{what} not ready after {waited:?}; {tail}")
    }

    async fn wait_etcd(&mut self, port: u16) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{port}/health");
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(body) = http_get_loopback(&url, None).await
                && body.contains("\"health\":\"true\"")
            {
                return Ok(());
            }
            if start.elapsed() > ETCD_READY_TIMEOUT {
                return Err(self.timed_out("etcd", ETCD_READY_TIMEOUT));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    async fn wait_readyz(&mut self) -> anyhow::Result<()> {
        let tls = sim_tls::client_config(self.ca_pem.as_bytes())?;
        let url = format!("{}/readyz", self.url);
        let start = Instant::now();
        loop {
            self.check_alive()?;
            // Raw HTTPS (anonymous, as the probes of a real cluster): a kube client would log every 500 of the
            // start-up hooks as an error.
            if let Ok(body) = http_get_loopback(&url, Some(&tls)).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            if start.elapsed() > APISERVER_READY_TIMEOUT {
                return Err(self.timed_out("kube-apiserver", APISERVER_READY_TIMEOUT));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    async fn wait_default_sa(&mut self, client: &kube::Client) -> anyhow::Result<()> {
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(Some(_)) = sas.get_opt("default").await {
                return Ok(());
            }
            if start.elapsed() > KCM_READY_TIMEOUT {
                return Err(self.timed_out(
                    "kube-controller-manager (the default ServiceAccount)",
                    KCM_READY_TIMEOUT,
                ));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

impl Drop for RealKube {
    /// Stops what still runs (SIGTERM, SIGKILL after [`STOP_GRACE`]); the directory goes with its `TempDir`.
    fn drop(&mut self) {
        for c in self.children.iter().rev() {
            signal_group(&c.child, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        for c in self.children.iter_mut().rev() {
            while matches!(c.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.child.try_wait(), Ok(None)) {
                signal_group(&c.child, rustix::process::Signal::KILL);
                let _ = c.child.start_kill();
            }
        }
    }
}

// === impl Layout: the command lines ===

impl Layout {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn etcd_args(&self) -> Vec<String> {
        let client = format!("http://127.0.0.1:{}", self.etcd_client);
        let peer = format!("http://127.0.0.1:{}", self.etcd_peer);
        vec![
            "--name=podid".into(),
            format!("--data-dir={}", self.file("etcd")),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=podid={peer}"),
            // Tests never need durability; fsync dominates etcd's latency on shared disks.
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ]
    }

    fn apiserver_args(&self, issuer: &str) -> Vec<String> {
        vec![
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", self.apiserver),
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_client),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            format!("--tls-cert-file={}", self.file("serving.crt")),
            format!("--tls-private-key-file={}", self.file("serving.key")),
            format!("--client-ca-file={}", self.file("ca.crt")),
            "--authorization-mode=Node,RBAC".into(),
            // On top of the defaults (which include MutatingAdmissionWebhook and ValidatingAdmissionWebhook), as AKS.
            "--enable-admission-plugins=NodeRestriction".into(),
            "--allow-privileged=true".into(),
            format!("--service-account-issuer={issuer}"),
            format!("--service-account-jwks-uri={issuer}/openid/v1/jwks"),
            format!("--api-audiences={issuer}"),
            format!("--service-account-key-file={}", self.file("sa.pub")),
            format!("--service-account-signing-key-file={}", self.file("sa.key")),
            format!("--cert-dir={}", self.file("apiserver-certs")),
            // A loopback advertise address is otherwise refused every 10 s by the endpoint reconciler.
            "--endpoint-reconciler-type=none".into(),
            "--profiling=false".into(),
        ]
    }

    fn kcm_args(&self) -> Vec<String> {
        vec![
            format!("--kubeconfig={}", self.file("admin.kubeconfig")),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            format!("--controllers={KCM_CONTROLLERS}"),
            format!("--service-account-private-key-file={}", self.file("sa.key")),
            format!("--root-ca-file={}", self.file("ca.crt")),
            format!("--cluster-signing-cert-file={}", self.file("ca.crt")),
            format!("--cluster-signing-key-file={}", self.file("ca.key")),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--profiling=false".into(),
        ]
    }
}

// === PKI, ports, processes ===

/// A client for `kubeconfig` (its current context).
pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).context("read kubeconfig")?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("kube config")?;
    kube::Client::try_from(cfg).context("kube client")
}

/// `GET url` on loopback (`http://`, or `https://` with `tls`; one request, connection closed): the body of a
/// 200.
async fn http_get_loopback(
    url: &str,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        mut s: S,
        host: &str,
        path: &str,
    ) -> anyhow::Result<Vec<u8>> {
        s.write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        // A TLS peer may close without close_notify: what was read is kept.
        let _ = s.take(1 << 20).read_to_end(&mut out).await;
        Ok(out)
    }
    let (https, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => anyhow::bail!("not an http(s) URL: {url}"),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr: std::net::SocketAddr = host.parse().context("not an address")?;
    anyhow::ensure!(addr.ip().is_loopback(), "not a loopback address: {addr}");
    let io = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        match (https, tls) {
            (false, _) => exchange(tcp, host, path).await,
            (true, Some(cfg)) => {
                let name = rustls::pki_types::ServerName::from(addr.ip());
                let s = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await?;
                exchange(s, host, path).await
            }
            (true, None) => anyhow::bail!("https without a TLS configuration"),
        }
    };
    let out = tokio::time::timeout(READY_POLL * 20, io).await??;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").context("no response head")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "answered {}",
        head.lines().next().unwrap_or("")
    );
    Ok(body.to_string())
}

/// `name` on PATH or in the usual sbin directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Writes `ca.crt`/`ca.key`, `serving.crt`/`.key`, `sa.key`/`sa.pub` and `admin.kubeconfig` into `dir`; returns
/// the CA's PEM.
fn write_pki(dir: &Path, url: &str, extra_sans: &[String]) -> anyhow::Result<String> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ca = sim_tls::Ca::generate("podid-real-kube-ca")?;
    let sans: Vec<String> = [
        "127.0.0.1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .map(String::from)
    .into_iter()
    .chain(extra_sans.iter().cloned())
    .collect();
    let serving = ca.issue("kube-apiserver", &sans)?;
    let admin = ca.issue_client("kubernetes-admin", &["system:masters"])?;
    let (sa_key, sa_pub) = sim_tls::rsa_key_pair_pem()?;
    for (name, text) in [
        ("ca.crt", ca.cert_pem.as_str()),
        ("ca.key", ca.key_pem.as_str()),
        ("serving.crt", serving.cert_pem.as_str()),
        ("serving.key", serving.key_pem.as_str()),
        ("sa.key", sa_key.as_str()),
        ("sa.pub", sa_pub.as_str()),
    ] {
        sim_tls::write_private(&dir.join(name), text.as_bytes())?;
    }
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "real",
        "clusters": [{"name": "real", "cluster": {"server": url, "certificate-authority-data": b64(&ca.cert_pem)}}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": b64(&admin.cert_pem), "client-key-data": b64(&admin.key_pem)}}],
        "contexts": [{"name": "real", "context": {"cluster": "real", "user": "admin", "namespace": "default"}}],
    });
    sim_tls::write_private(
        &dir.join("admin.kubeconfig"),
        kubeconfig.to_string().as_bytes(),
    )?;
    Ok(ca.cert_pem)
}

/// `n` distinct free loopback ports (held together while picking, released before the children bind them; a
/// port taken in between makes the start retry).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("pick a free loopback port")?;
    held.iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<std::io::Result<_>>()
        .context("local address")
}

/// `sig` to the child's process group (its pid: each child leads its own group).
fn signal_group(child: &Child, sig: rustix::process::Signal) {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// The last [`LOG_TAIL_LINES`] lines of `log`.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
