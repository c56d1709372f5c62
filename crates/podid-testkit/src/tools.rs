//! Prerequisites: tools on `PATH` or in the sbin directories, skip-or-fail, lines past libtest's capture.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Finding tools and running kubectl live with the simulator they are first used against (one copy).
pub use kube_sim::testkit::{Kubectl, KubectlOut, find_kubectl, find_tool, output_with_stdin};

/// A line straight to stderr, past libtest's output capture.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints `SKIPPED: <test>: <reason>`, or panics when the environment variable `require_env` is `1`.
pub fn skip_or_fail(test: &str, require_env: &str, reason: &str) {
    if std::env::var(require_env).as_deref() == Ok("1") {
        panic!("{test}: {reason} ({require_env}=1)");
    }
    report(&format!("SKIPPED: {test}: {reason}"));
}

/// The repository root (this crate lives at `crates/podid-testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
