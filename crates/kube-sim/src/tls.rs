//! Certificates: the generated CA, the serving certificate and the admin kubeconfig. The helpers live in the
//! shared `sim-tls` crate (azure-sim uses them too); this module re-exports them for kube-sim's users.

pub use sim_tls::{
    Ca, ClientTlsStream, ServingCert, client_config, connect, server_config, write_kubeconfig,
    write_private,
};
