//! The real control plane of the suites: [`kube_real`] (etcd, kube-apiserver and kube-controller-manager as child
//! processes on loopback), re-exported, plus the suites' decision when it is not built: skip, or fail in CI.

pub use kube_real::*;

/// When a start error is [`RealKubeUnavailable`] and [`REQUIRE_ENV`] is not `1`: prints `SKIPPED: <test>: ...`
/// and returns true (the caller returns). Otherwise false (the caller fails on the error).
pub fn skip_unless_available(test: &str, err: &anyhow::Error) -> bool {
    if err.downcast_ref::<RealKubeUnavailable>().is_none() {
        return false;
    }
    crate::tools::skip_or_fail(test, REQUIRE_ENV, &format!("{err:#}"));
    true
}
