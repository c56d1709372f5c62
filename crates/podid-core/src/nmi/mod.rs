//! The node agent's pure decisions (drop-in for aad-pod-identity's NMI; reference §3 and Appendix B).
//!
//! - [`decide`]: the decision for one token request, as a sans-IO machine (the agent drives it with IO, the
//!   doctor replays it): parse, exceptions, selection, waiting, protection, fetch plan, and every refusal's reply;
//! - [`request`]: routing of a request path, token query parsing, the `Metadata` header rule (fuzzed);
//! - [`reply`]: upstream's response shapes (status codes, error bodies, string-typed token JSON);
//! - [`select`]: which identity a pod may use (exceptions; standard, managed and federated modes);
//! - [`pods`]: the node-local pod-by-IP index;
//! - [`limit`]: fairness between pods (a budget of new resources per pod) and cutting pod-controlled values for
//!   logs.
//!
//! The agent (`podid-agent`) does the IO: it feeds these from watches, waits where [`select`] says to wait, and
//! fetches tokens for the identity chosen here. Nothing here reads a clock or does IO.

pub mod decide;
pub mod limit;
pub mod pods;
pub mod reply;
pub mod request;
pub mod select;
