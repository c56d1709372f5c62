//! `podid up`, `podid run` and the demo client: the local playground.
//!
//! # Model
//! One `podid up` process owns a whole simulated cluster on this machine: azure-sim, kube-sim and the simulated
//! kubelet (`podid-kubelet`, which speaks only the public API) in-process on loopback, the controller as a child
//! process, and one node agent per simulated node as a child process inside that node's network namespace
//! ([`net`]). Pods the kubelet starts get a namespace of their own behind their node's bridge ([`pods`]), with
//! routes only to the simulated network, which lives inside each node namespace and is relayed by this process to
//! the simulators ([`relay`]). A pod's program calls
//! `http://169.254.169.254` exactly as on AKS; the agent's real iptables redirect, in the node namespace, hands the
//! call to the agent. `podid run` ([`run`]) starts any local program as a pod; the demo client ([`demo`]) plays the
//! upstream demo image.
//!
//! Without root (or iproute2/iptables) the playground says so and falls back to loopback addresses: no namespaces,
//! no redirect, and programs reach their node's agent through `AZURE_POD_IDENTITY_AUTHORITY_HOST`, relayed from the
//! pod's own loopback address so the agent still sees which pod calls.
//!
//! # Invariants
//! - Nothing is added to the host's network namespace: no link, address, route, rule or sysctl. Node and pod
//!   namespaces have no route out of the machine, and everything reachable in them is a relay to a simulator.
//! - Nothing calls 169.254.169.254 from the host namespace (the demo client refuses to).
//! - A pod reaches its node's IMDS only through the agent: no route, and the node's filter table refuses it
//!   ([`net::node_firewall_script`]).
//! - `podid up`'s children (controller, agents) die with it, even when it is SIGKILLed ([`proc`]).
//! - Everything `podid up` creates is named `pgd<pid>-…` and removed on stop; a crashed run's leftovers are
//!   removed by the next `podid up` ([`net::cleanup_stale`]).

pub mod demo;
pub mod net;
pub mod pods;
pub mod proc;
pub mod relay;
pub mod run;
pub mod state;
pub mod up;
pub mod world;
