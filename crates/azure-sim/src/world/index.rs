//! The lookup index derived from a normalized world.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::armid;

/// What an app certificate offers for assertion checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// base64url SHA-1 thumbprint (`x5t`).
    pub x5t: String,
    /// base64url SHA-256 thumbprint (`x5t#S256`).
    pub x5t_s256: String,
    /// Uppercase hex SHA-1 thumbprint (as Entra prints it).
    pub thumbprint_hex: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// Validity start (Unix seconds).
    pub not_before: i64,
    /// Validity end (Unix seconds).
    pub not_after: i64,
}

impl CertInfo {
    /// Parse a PEM certificate.
    pub fn from_pem(pem: &str) -> Result<CertInfo, String> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e:?}"))?;
        Self::from_der(der.as_ref())
    }

    /// Parse a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("invalid X.509 certificate: {e}"))?;
        let spki = cert.tbs_certificate.subject_pki.raw.to_vec();
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        Ok(CertInfo {
            x5t: crate::jwt::b64url(sha1.as_ref()),
            x5t_s256: crate::jwt::b64url(sha256.as_ref()),
            thumbprint_hex: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            spki,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// Where a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef {
    /// A VM (index into `virtualMachines`).
    Vm(usize),
    /// A scale set instance (scale set index, instance index).
    Vmss(usize, usize),
}

/// A principal that can hold role assignments and sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRef {
    /// A user-assigned identity.
    Uami(usize),
    /// An app's service principal.
    App(usize),
    /// The system-assigned identity of a VM.
    VmSystem(usize),
    /// The system-assigned identity of a scale set.
    VmssSystem(usize),
}

/// Built-in resource identifiers Entra issues tokens for (compared without a trailing slash, ignoring case).
pub const BUILTIN_RESOURCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://vault.azure.net",
    "https://graph.microsoft.com",
    "https://graph.windows.net",
    "https://storage.azure.com",
    "https://database.windows.net",
    "https://ossrdbms-aad.database.windows.net",
    "https://servicebus.azure.net",
    "https://eventhubs.azure.net",
    "https://cognitiveservices.azure.com",
    "https://monitor.azure.com",
    "https://api.loganalytics.io",
    "https://containerregistry.azure.net",
    "https://redis.azure.com",
    "https://kusto.kusto.windows.net",
    "api://azureadtokenexchange",
    "6dae42f8-4368-4678-94ff-3960e28e3630",
];

/// Audiences ARM accepts.
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
];

/// Audiences Key Vault accepts.
pub const VAULT_AUDIENCES: &[&str] = &[
    "https://vault.azure.net",
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
];

/// Lookups derived from a normalized world.
#[derive(Debug, Clone, Default)]
pub struct Index {
    tenants: HashMap<String, usize>,
    subs: HashMap<String, usize>,
    nodes: HashMap<String, NodeRef>,
    vms: HashMap<String, usize>,
    vmss: HashMap<String, usize>,
    uamis: HashMap<String, usize>,
    uami_by_client: HashMap<String, usize>,
    apps: HashMap<(usize, String), usize>,
    app_certs: Vec<Vec<CertInfo>>,
    vaults: HashMap<String, usize>,
    resources: HashSet<String>,
    resource_apps: HashMap<String, usize>,
    principals: HashMap<String, PrincipalRef>,
    assignments: HashMap<String, Vec<usize>>,
}

impl Index {
    /// Build the index of a normalized world.
    pub fn build(w: &World) -> Index {
        let mut ix = Index::default();
        for (i, t) in w.tenants.iter().enumerate() {
            ix.tenants.insert(t.id.clone(), i);
            for d in &t.domains {
                ix.tenants.insert(d.clone(), i);
            }
        }
        for (i, s) in w.subscriptions.iter().enumerate() {
            ix.subs.insert(s.id.to_ascii_lowercase(), i);
        }
        for (i, v) in w.virtual_machines.iter().enumerate() {
            ix.vms.insert(armid::key(&v.id()), i);
            if let Some(n) = &v.node_name {
                ix.nodes.insert(n.clone(), NodeRef::Vm(i));
            }
            if let Some(p) = &v.identity.principal_id {
                ix.principals.insert(p.clone(), PrincipalRef::VmSystem(i));
            }
        }
        for (i, s) in w.virtual_machine_scale_sets.iter().enumerate() {
            ix.vmss.insert(armid::key(&s.id()), i);
            for (j, inst) in s.instances.iter().enumerate() {
                if let Some(n) = &inst.node_name {
                    ix.nodes.insert(n.clone(), NodeRef::Vmss(i, j));
                }
            }
            if let Some(p) = &s.identity.principal_id {
                ix.principals.insert(p.clone(), PrincipalRef::VmssSystem(i));
            }
        }
        for (i, u) in w.user_assigned_identities.iter().enumerate() {
            ix.uamis.insert(armid::key(&u.id()), i);
            if let Some(c) = &u.client_id {
                ix.uami_by_client.insert(c.clone(), i);
            }
            if let Some(p) = &u.principal_id {
                ix.principals.insert(p.clone(), PrincipalRef::Uami(i));
            }
        }
        for (i, a) in w.applications.iter().enumerate() {
            let t = a
                .tenant_id
                .as_deref()
                .and_then(|t| ix.tenants.get(t).copied())
                .unwrap_or(usize::MAX);
            if let Some(id) = &a.app_id {
                ix.apps.insert((t, id.clone()), i);
                ix.resources.insert(id.clone());
                ix.resource_apps.insert(id.clone(), i);
            }
            if let Some(o) = &a.object_id {
                ix.principals.insert(o.clone(), PrincipalRef::App(i));
            }
            for u in &a.identifier_uris {
                ix.resources.insert(resource_key(u));
                ix.resource_apps.insert(resource_key(u), i);
            }
            ix.app_certs.push(
                a.certificates
                    .iter()
                    .filter_map(|c| CertInfo::from_pem(&c.pem).ok())
                    .collect(),
            );
        }
        for (i, kv) in w.key_vaults.iter().enumerate() {
            ix.vaults.insert(kv.name.to_ascii_lowercase(), i);
        }
        for r in BUILTIN_RESOURCES {
            ix.resources.insert(r.to_string());
        }
        for r in &w.resources {
            ix.resources.insert(resource_key(r));
        }
        for (i, ra) in w.role_assignments.iter().enumerate() {
            if let Some(p) = &ra.principal_id {
                ix.assignments.entry(p.clone()).or_default().push(i);
            }
        }
        ix
    }

    /// Tenant index by ID or verified domain (case-insensitive).
    pub fn tenant(&self, id_or_domain: &str) -> Option<usize> {
        self.tenants
            .get(&id_or_domain.to_ascii_lowercase())
            .copied()
    }

    /// Subscription index.
    pub fn subscription(&self, id: &str) -> Option<usize> {
        self.subs.get(&id.to_ascii_lowercase()).copied()
    }

    /// Where a node runs.
    pub fn node(&self, name: &str) -> Option<NodeRef> {
        self.nodes.get(name).copied()
    }

    /// All node names.
    pub fn node_names(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    /// VM by resource ID.
    pub fn vm(&self, id: &str) -> Option<usize> {
        self.vms.get(&armid::key(id)).copied()
    }

    /// Scale set by resource ID.
    pub fn vmss(&self, id: &str) -> Option<usize> {
        self.vmss.get(&armid::key(id)).copied()
    }

    /// User-assigned identity by resource ID.
    pub fn uami(&self, id: &str) -> Option<usize> {
        self.uamis.get(&armid::key(id)).copied()
    }

    /// User-assigned identity by client ID.
    pub fn uami_by_client_id(&self, client_id: &str) -> Option<usize> {
        self.uami_by_client
            .get(&client_id.to_ascii_lowercase())
            .copied()
    }

    /// App registration by tenant index and app ID.
    pub fn app(&self, tenant: usize, app_id: &str) -> Option<usize> {
        self.apps
            .get(&(tenant, app_id.to_ascii_lowercase()))
            .copied()
    }

    /// Parsed certificates of an app.
    pub fn app_certs(&self, app: usize) -> &[CertInfo] {
        self.app_certs.get(app).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Vault by name.
    pub fn vault(&self, name: &str) -> Option<usize> {
        self.vaults.get(&name.to_ascii_lowercase()).copied()
    }

    /// Whether Entra knows `resource` as a token audience.
    pub fn known_resource(&self, resource: &str) -> bool {
        let k = resource_key(resource);
        if self.resources.contains(&k) {
            return true;
        }
        // Storage data-plane endpoints are accepted per account.
        k.strip_prefix("https://").is_some_and(|host| {
            [
                ".blob.core.windows.net",
                ".queue.core.windows.net",
                ".table.core.windows.net",
                ".file.core.windows.net",
                ".dfs.core.windows.net",
            ]
            .iter()
            .any(|s| host.ends_with(s) && !host.contains('/'))
        })
    }

    /// The app registration that a resource identifier (identifier URI or app ID) names.
    pub fn resource_app(&self, resource: &str) -> Option<usize> {
        self.resource_apps.get(&resource_key(resource)).copied()
    }

    /// The principal with this object ID.
    pub fn principal(&self, oid: &str) -> Option<PrincipalRef> {
        self.principals.get(&oid.to_ascii_lowercase()).copied()
    }

    /// Role assignments of a principal (indices into `roleAssignments`).
    pub fn assignments_of(&self, oid: &str) -> &[usize] {
        self.assignments
            .get(&oid.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// Whether a resource string matches one of `allowed` (trailing slash and case ignored).
pub fn audience_in(aud: &str, allowed: &[&str]) -> bool {
    let k = resource_key(aud);
    allowed.iter().any(|a| *a == k)
}
