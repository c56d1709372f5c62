//! podid's one test kit (a dev-dependency of the product crates' tests; podid-bench, a tool, uses it too).
//!
//! # Model
//!
//! A test talks to a Kubernetes API through a [`kube::Client`] and a kubeconfig path, and to Azure through
//! azure-sim's endpoints; the kit starts both on free loopback ports ([`Env`]), installs the pod-identity CRDs and
//! the world's nodes, writes the cloud files a component reads (`azurestack.json`, `azure.json`), and offers:
//!
//! - [`world`]: the shared Azure world (identities, scale sets, the controller's app) and its IDs;
//! - [`objects`]: builders for pods, AzureIdentities, bindings, AzureAssignedIdentities and ServiceAccounts (pure
//!   JSON to typed objects) and [`Env`] methods that create them;
//! - [`wait`]: `eventually` and the suites' common timeout;
//! - [`http`]: a raw HTTP/1.1 client, optionally from a chosen source address (a pod's);
//! - [`process`]: `podid <component>` as a child process, its first line parsed, its log captured, SIGTERM;
//! - [`real_kube`]: the real control plane as child processes (PKI, ports, readiness, skip when not built);
//! - [`tools`]: prerequisites (tools on PATH or in sbin, skip-or-fail, the repository root).
//!
//! # The Kubernetes backend
//!
//! Everything but [`KubeBackend`] reaches the API server through the client and the kubeconfig, so a suite runs
//! unchanged against kube-sim or a real kube-apiserver ([`EnvBuilder::backend`] with [`Backend::Sim`] or
//! [`Backend::Real`]; the real one is etcd + kube-apiserver + kube-controller-manager built by
//! scripts/ensure-kube.sh, see [`real_kube`]); the few things only the simulator can do (persist and restart) are
//! methods that say so. The kubelet is `podid-kubelet` over the public API on both ([`EnvBuilder::kubelet`]).
//! [`both_backends!`] turns one `async fn case(backend: Backend)` into a test per backend (`case::sim`,
//! `case::real`); `PODID_TEST_BACKENDS` ([`kube_backend::BACKENDS_ENV`]) picks one, and at most
//! [`real_kube::DEFAULT_PARALLEL`] real control planes run at once per test process.
//!
//! # What may not live here
//!
//! Assertions and scenario logic of one suite, and anything a product crate needs at run time: the kit depends on
//! the simulators, so no product crate may depend on it outside `[dev-dependencies]` (podid-bench excepted).

pub mod agent;
pub mod env;
pub mod http;
pub mod kube_backend;
pub mod objects;
pub mod process;
pub mod real_kube;
pub mod tools;
pub mod wait;
pub mod world;

pub use env::{Env, EnvBuilder};
pub use http::{get_from, http, raw_from};
pub use kube_backend::{Backend, KubeBackend};
pub use process::{Component, ComponentCmd, podid_exe};
pub use wait::{WAIT, eventually};
pub use world::{APP_ID, APP_SECRET, IDS, MC, SUB, TENANT, client_id, uami_id, world};

/// Installs the process's TLS crypto provider (aws-lc-rs), as `podid`'s `main` does; idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
