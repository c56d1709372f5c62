//! Server configuration: where the endpoints listen, what they trust, and the runtime settings (long-running
//! operation durations, token lifetimes) that the control API can change later.
//!
//! [`Config::from_world_file`] reads a YAML or JSON world file; its optional top-level `sim:` section holds the
//! server settings (see [`SimSection`]), everything else is the [`World`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::world::World;

/// Settings that can change while the simulator runs (`GET/PATCH /settings` on the control API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Settings {
    /// How long a VM identity PATCH/PUT runs before its async operation succeeds (and IMDS sees it), ms.
    pub lro_virtual_machines_ms: u64,
    /// The same for scale sets (real VMSS PATCHes take ~40 s).
    pub lro_virtual_machine_scale_sets_ms: u64,
    /// `Retry-After` (seconds) on running async operations.
    pub lro_retry_after_secs: u64,
    /// How long a federated identity credential write holds its identity (overlapping writes get 409), ms.
    pub fic_write_ms: u64,
    /// Lifetime of Entra access tokens, seconds.
    pub entra_token_lifetime_secs: i64,
    /// Lifetime of IMDS tokens, seconds.
    pub imds_token_lifetime_secs: i64,
    /// How long an issued token is handed out again for the same request (IMDS caches tokens too), seconds;
    /// 0 signs a fresh token every time.
    pub token_reuse_secs: i64,
    /// Match IMDS paths case-insensitively (`/metadata/Identity/oauth2/token` is the token route). Whether the
    /// real IMDS does is not documented; on, this is the conservative model that a path guard must survive.
    pub imds_case_insensitive_paths: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lro_virtual_machines_ms: 0,
            lro_virtual_machine_scale_sets_ms: 0,
            lro_retry_after_secs: 1,
            fic_write_ms: 50,
            entra_token_lifetime_secs: 3599,
            imds_token_lifetime_secs: 86_399,
            token_reuse_secs: 300,
            imds_case_insensitive_paths: false,
        }
    }
}

/// Configuration of an azure-sim instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// The initial world.
    pub world: World,
    /// Where to write `ca.crt` (and `ca.key`, `signing-key.pem`, `endpoints.json`); an existing CA and signing
    /// key there are reused.
    pub dir: Option<PathBuf>,
    /// Host for listeners without an explicit address (default 127.0.0.1).
    pub listen_host: IpAddr,
    /// Entra ID (HTTPS).
    pub entra_listen: SocketAddr,
    /// ARM (HTTPS).
    pub arm_listen: SocketAddr,
    /// Key Vault, all vaults chosen by `Host: <vault>.vault.azure.net` (HTTPS).
    pub keyvault_listen: SocketAddr,
    /// Control API (plain HTTP; keep it on loopback).
    pub control_listen: SocketAddr,
    /// Optional single HTTPS listener routing by SNI/Host (`login.*`, `management.*`, `*.vault.azure.net`).
    pub front_listen: Option<SocketAddr>,
    /// IMDS listen address per node (or VM) name; nodes not listed get `listen_host:0`.
    pub imds_listen: BTreeMap<String, SocketAddr>,
    /// Per-vault HTTPS listener addresses; vaults not listed get `listen_host:0` when `per_vault_listeners`.
    pub vault_listen: BTreeMap<String, SocketAddr>,
    /// Give every vault its own listener (so clients can reach one vault by address alone).
    pub per_vault_listeners: bool,
    /// Extra CAs (PEM) trusted when fetching a federated issuer's discovery document and JWKS (the
    /// simulator's own CA is always trusted).
    pub oidc_trust_pem: Vec<String>,
    /// How long fetched issuer keys are cached.
    pub oidc_cache_ttl: Duration,
    /// Authority in Key Vault's challenge (default: the Entra listener's URL).
    pub keyvault_authority: Option<String>,
    /// Extra DNS names / IPs for every serving certificate.
    pub extra_sans: Vec<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Connection limits of every listener together: header-read and idle timeouts, header bytes, connection
    /// caps (for the simulator as a whole and per source address), TLS handshake and body read timeouts.
    pub limits: podid_serve::Limits,
    /// Entries kept in the request log.
    pub log_capacity: usize,
    /// Runtime settings.
    pub settings: Settings,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            world: World::default(),
            dir: None,
            listen_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            entra_listen: loopback(0),
            arm_listen: loopback(0),
            keyvault_listen: loopback(0),
            control_listen: loopback(0),
            front_listen: None,
            imds_listen: BTreeMap::new(),
            vault_listen: BTreeMap::new(),
            per_vault_listeners: true,
            oidc_trust_pem: Vec::new(),
            oidc_cache_ttl: Duration::from_secs(60),
            keyvault_authority: None,
            extra_sans: Vec::new(),
            max_body_bytes: 1024 * 1024,
            limits: podid_serve::Limits::default(),
            log_capacity: 2000,
            settings: Settings::default(),
        }
    }
}

/// The `sim:` section of a world file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SimSection {
    /// [`Config::dir`].
    pub dir: Option<PathBuf>,
    /// [`Config::listen_host`].
    pub listen_host: Option<IpAddr>,
    /// [`Config::entra_listen`].
    pub entra_listen: Option<SocketAddr>,
    /// [`Config::arm_listen`].
    pub arm_listen: Option<SocketAddr>,
    /// [`Config::keyvault_listen`].
    pub keyvault_listen: Option<SocketAddr>,
    /// [`Config::control_listen`].
    pub control_listen: Option<SocketAddr>,
    /// [`Config::front_listen`].
    pub front_listen: Option<SocketAddr>,
    /// [`Config::imds_listen`].
    pub imds: BTreeMap<String, SocketAddr>,
    /// [`Config::vault_listen`].
    pub vaults: BTreeMap<String, SocketAddr>,
    /// [`Config::per_vault_listeners`].
    pub per_vault_listeners: Option<bool>,
    /// PEM files (relative to the world file) added to [`Config::oidc_trust_pem`].
    pub trust_ca_files: Vec<PathBuf>,
    /// [`Config::oidc_cache_ttl`] in seconds.
    pub oidc_cache_ttl_secs: Option<u64>,
    /// [`Config::keyvault_authority`].
    pub keyvault_authority: Option<String>,
    /// [`Config::extra_sans`].
    pub extra_sans: Vec<String>,
    /// [`Config::max_body_bytes`].
    pub max_body_bytes: Option<usize>,
    /// [`Config::log_capacity`].
    pub log_capacity: Option<usize>,
    /// [`Config::settings`].
    pub settings: Option<Settings>,
}

impl Config {
    /// Read a world file (YAML or JSON) with an optional `sim:` section.
    pub fn from_world_file(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::from_text(&text, &base).with_context(|| format!("world file {}", path.display()))
    }

    /// Parse world-file text; relative paths in `sim:` resolve against `base`.
    pub fn from_text(text: &str, base: &Path) -> anyhow::Result<Config> {
        let mut v: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).context("invalid JSON")?
        } else {
            serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("invalid YAML: {e}"))?
        };
        if v.is_null() {
            v = Value::Object(Default::default());
        }
        let sim = match v.as_object_mut().and_then(|m| m.remove("sim")) {
            Some(s) if !s.is_null() => {
                serde_json::from_value::<SimSection>(s).context("invalid sim section")?
            }
            _ => SimSection::default(),
        };
        let world = World::from_value(v)?.normalize()?;
        let mut c = Config {
            world,
            ..Config::default()
        };
        c.apply(sim, base)?;
        Ok(c)
    }

    /// Apply a `sim:` section.
    pub fn apply(&mut self, s: SimSection, base: &Path) -> anyhow::Result<()> {
        if let Some(d) = s.dir {
            self.dir = Some(if d.is_absolute() { d } else { base.join(d) });
        }
        if let Some(h) = s.listen_host {
            self.listen_host = h;
            for a in [
                &mut self.entra_listen,
                &mut self.arm_listen,
                &mut self.keyvault_listen,
                &mut self.control_listen,
            ] {
                a.set_ip(h);
            }
        }
        let set = |dst: &mut SocketAddr, v: Option<SocketAddr>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut self.entra_listen, s.entra_listen);
        set(&mut self.arm_listen, s.arm_listen);
        set(&mut self.keyvault_listen, s.keyvault_listen);
        set(&mut self.control_listen, s.control_listen);
        if s.front_listen.is_some() {
            self.front_listen = s.front_listen;
        }
        self.imds_listen.extend(s.imds);
        self.vault_listen.extend(s.vaults);
        if let Some(p) = s.per_vault_listeners {
            self.per_vault_listeners = p;
        }
        for f in s.trust_ca_files {
            let p = if f.is_absolute() { f } else { base.join(f) };
            let pem =
                std::fs::read_to_string(&p).with_context(|| format!("read CA {}", p.display()))?;
            self.oidc_trust_pem.push(pem);
        }
        if let Some(t) = s.oidc_cache_ttl_secs {
            self.oidc_cache_ttl = Duration::from_secs(t);
        }
        if s.keyvault_authority.is_some() {
            self.keyvault_authority = s.keyvault_authority;
        }
        self.extra_sans.extend(s.extra_sans);
        if let Some(m) = s.max_body_bytes {
            self.max_body_bytes = m;
        }
        if let Some(l) = s.log_capacity {
            self.log_capacity = l;
        }
        if let Some(st) = s.settings {
            self.settings = st;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_file_with_sim_section() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("extra.pem"), "PEM").expect("write");
        let text = r#"
sim:
  listenHost: 127.0.0.2
  armListen: 127.0.0.1:9443
  imds: {node-0: "127.0.0.1:2579"}
  trustCaFiles: [extra.pem]
  settings: {lroVirtualMachineScaleSetsMs: 40000}
tenants: [{id: 11111111-1111-1111-1111-111111111111}]
subscriptions: [{id: s1}]
virtualMachines: [{name: node-0, resourceGroup: rg}]
"#;
        let c = Config::from_text(text, dir.path()).expect("config");
        assert_eq!(c.entra_listen.ip().to_string(), "127.0.0.2");
        assert_eq!(c.arm_listen.to_string(), "127.0.0.1:9443");
        assert_eq!(c.imds_listen.get("node-0").map(|a| a.port()), Some(2579));
        assert_eq!(c.oidc_trust_pem, vec!["PEM".to_string()]);
        assert_eq!(c.settings.lro_virtual_machine_scale_sets_ms, 40000);
        assert_eq!(c.settings.fic_write_ms, Settings::default().fic_write_ms);
        assert_eq!(c.world.virtual_machines.len(), 1);
        assert!(Config::from_text("sim: {bogus: 1}", dir.path()).is_err());
        assert!(Config::from_text("{\"tenants\": 5}", dir.path()).is_err());
        let empty = Config::from_text("", dir.path()).expect("empty");
        assert!(empty.world.tenants.is_empty());
        let missing = Config::from_world_file(&dir.path().join("nope.yaml"));
        assert!(missing.is_err());
    }

    #[test]
    fn example_world_file_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("world.example.yaml");
        let c = Config::from_world_file(&path).expect("example world");
        assert_eq!(c.control_listen.port(), 7070);
        assert_eq!(c.world.virtual_machine_scale_sets[0].instances.len(), 2);
        let ix = crate::world::Index::build(&c.world);
        assert!(ix.node("aks-nodepool1-vmss000001").is_some());
        assert_eq!(c.world.role_assignments.len(), 3);
    }
}
