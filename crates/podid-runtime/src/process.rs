//! Process set-up every command starts from: the tokio runtime, logging (`--log-level`, `--log-format`),
//! stop signals (SIGINT, SIGTERM) for a graceful drain, and dying with a parent process.

use std::future::Future;

use anyhow::Context;

/// Log format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (`text` is accepted, as upstream's `--log-format text`).
    #[value(alias = "text")]
    Plain,
    /// One JSON object per line.
    Json,
}

/// Install the tracing subscriber: `level` in EnvFilter syntax (`info` when it does not parse), on stderr.
pub fn init_tracing(level: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: log files (the playground's children) and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The multi-threaded tokio runtime every command runs on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// Run `f` on a new [`runtime`] with [`StopSignals`] installed first; `f` gets the future that resolves on the
/// first SIGINT or SIGTERM (its drain starts there).
pub fn run_until_signal<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    runtime()?.block_on(async move {
        let mut signals = StopSignals::install()?;
        f(Box::pin(async move { signals.wait().await })).await
    })
}

/// SIGINT (Ctrl-C) and SIGTERM handlers, registered when created: create them before anything announces that the
/// process is ready, so a signal sent right after the announcement is never lost to the default action.
pub struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Register both handlers (inside a tokio runtime).
    pub fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("install SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("install SIGTERM handler")?,
        })
    }

    /// Wait for the next SIGINT or SIGTERM.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// A process started by a parent that sets `parent_pid_env` (its pid) dies with it: SIGTERM when the parent dies,
/// and an exit now if the parent already died before the signal was asked for (the parent is then another
/// process). Run before any thread starts. Without the variable, nothing changes.
pub fn die_with_parent(parent_pid_env: &str, parent_name: &str) -> anyhow::Result<()> {
    use rustix::process::{Signal, getppid, set_parent_process_death_signal};
    let Ok(raw) = std::env::var(parent_pid_env) else {
        return Ok(());
    };
    let expected: i32 = raw
        .parse()
        .with_context(|| format!("{parent_pid_env}={raw:?} is not a process id"))?;
    set_parent_process_death_signal(Some(Signal::TERM))
        .with_context(|| format!("ask for SIGTERM when {parent_name} exits (PR_SET_PDEATHSIG)"))?;
    let parent = getppid().map_or(0, |p| p.as_raw_nonzero().get());
    if parent != expected {
        eprintln!(
            "podid: the {parent_name} that started this process (pid {expected}) is gone (parent now {parent}); exiting"
        );
        std::process::exit(1);
    }
    Ok(())
}
