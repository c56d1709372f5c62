//! State on disk: the CA, the service-account signing key, the admin token, optional object snapshots, and
//! seeding from YAML/JSON files.
//!
//! Snapshots are written atomically (temporary file + rename) once a second when something changed, and on
//! shutdown; a crash loses at most the last second of writes. Files holding keys or tokens are mode 0600.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::Sim;
use crate::resources::ResKey;
use sim_tls::{Ca, write_private};

const STATE_FILE: &str = "state.json";
const CA_NAME: &str = "kube-sim-ca";
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);

/// The serving CA: loaded from `dir` when present there, otherwise generated (and saved when `dir` is set).
pub fn load_or_create_ca(dir: Option<&Path>) -> anyhow::Result<Ca> {
    sim_tls::load_or_create_ca(dir, CA_NAME)
}

/// The service-account signer: `sa.key` (PKCS#8 DER) in `dir`, or a new key.
pub fn load_or_create_signer(
    dir: Option<&Path>,
    issuer: &str,
) -> anyhow::Result<kube_sim_auth::Signer> {
    if let Some(dir) = dir {
        let path = dir.join("sa.key");
        if path.exists() {
            let der = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            return kube_sim_auth::Signer::from_pkcs8_der(&der, issuer)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
        }
        let signer = kube_sim_auth::Signer::generate(issuer)
            .map_err(|e| anyhow::anyhow!("generate signing key: {e}"))?;
        let der = signer
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encode signing key: {e}"))?;
        write_private(&path, &der)?;
        return Ok(signer);
    }
    kube_sim_auth::Signer::generate(issuer)
        .map_err(|e| anyhow::anyhow!("generate signing key: {e}"))
}

/// The admin token: `admin.token` in `dir`, or a new random one.
pub fn load_or_create_admin_token(dir: Option<&Path>) -> anyhow::Result<String> {
    let fresh = || format!("kube-sim-{}", uuid::Uuid::new_v4().simple());
    let Some(dir) = dir else { return Ok(fresh()) };
    let path = dir.join("admin.token");
    if path.exists() {
        let t =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let t = fresh();
    write_private(&path, t.as_bytes())?;
    Ok(t)
}

/// PEM of the CA clients should trust (empty for plain HTTP).
pub fn ca_pem(sim: &Sim) -> String {
    sim.ca_pem.clone().unwrap_or_default()
}

/// Write a snapshot of every object.
pub fn save(sim: &Sim) -> anyhow::Result<()> {
    let Some(dir) = &sim.config.dir else {
        return Ok(());
    };
    let (rv, tables) = sim.store.snapshot();
    let tables: Vec<Value> = tables
        .into_iter()
        .map(|(k, objs)| json!({"group": k.group, "resource": k.resource, "objects": objs.iter().map(|o| (**o).clone()).collect::<Vec<_>>()}))
        .collect();
    let doc = json!({"resourceVersion": rv, "tables": tables});
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    write_private(&tmp, &serde_json::to_vec(&doc)?)?;
    std::fs::rename(&tmp, dir.join(STATE_FILE)).context("replace state snapshot")?;
    Ok(())
}

/// Load a snapshot when one exists; returns whether it did.
pub fn load(sim: &Sim) -> anyhow::Result<bool> {
    let Some(dir) = &sim.config.dir else {
        return Ok(false);
    };
    let path = dir.join(STATE_FILE);
    if !path.exists() {
        return Ok(false);
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("parse {}", path.display()))?;
    let rv = doc
        .get("resourceVersion")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let mut tables = Vec::new();
    for t in doc
        .get("tables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let key = ResKey::new(
            t.get("group").and_then(Value::as_str).unwrap_or(""),
            t.get("resource").and_then(Value::as_str).unwrap_or(""),
        );
        let objs = t
            .get("objects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        tables.push((key, objs));
    }
    // Custom resources must be served again before their objects are readable.
    let crd_key = ResKey::new("apiextensions.k8s.io", "customresourcedefinitions");
    for (k, objs) in &tables {
        if *k == crd_key {
            let mut reg = sim.registry.write();
            for crd in objs {
                if let Ok(types) = crate::resources::crd_types(crd) {
                    for t in types {
                        reg.insert(t);
                    }
                }
            }
        }
    }
    sim.store.restore(rv, tables);
    tracing::info!(path = %path.display(), resource_version = rv, "restored state");
    Ok(true)
}

/// Snapshot loop.
pub async fn run(sim: Arc<Sim>) {
    let mut shutdown = sim.shutdown.clone();
    let mut tick = tokio::time::interval(SNAPSHOT_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if sim.store.take_dirty() && let Err(e) = save(&sim) {
                    tracing::error!(error = %e, "could not persist state");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Parse a YAML (multi-document) or JSON file into objects; `List` kinds are flattened.
pub fn parse_objects(text: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> =
        if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
            match serde_json::from_str::<Value>(text)? {
                Value::Array(a) => a,
                v => vec![v],
            }
        } else {
            serde_saphyr::from_multiple::<Value>(text).map_err(|e| anyhow::anyhow!("YAML: {e}"))?
        };
    let mut out = Vec::new();
    for d in docs {
        if d.is_null() {
            continue;
        }
        let is_list = d
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && d.get("items").is_some();
        if is_list {
            out.extend(
                d.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
        } else {
            out.push(d);
        }
    }
    Ok(out)
}

fn order(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ServiceAccount" | "ClusterRole" | "Role" => 2,
        _ => 3,
    }
}

/// Load objects from a file at start-up (objects that already exist are left alone).
pub async fn seed_file(sim: &Arc<Sim>, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut objs = parse_objects(&text)?;
    objs.sort_by_key(|o| order(crate::meta::str_at(o, "/kind")));
    for obj in objs {
        let kind = crate::meta::str_at(&obj, "/kind").to_string();
        let name = crate::meta::str_at(&obj, "/metadata/name").to_string();
        match crate::registry::create_internal(sim, obj) {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => anyhow::bail!("{kind} {name}: {}", e.message),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_doc_yaml_and_lists() {
        let objs = parse_objects("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n").expect("parse");
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1]["kind"], "ConfigMap");
        let j = parse_objects(
            "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"x\"}}",
        )
        .expect("json");
        assert_eq!(j.len(), 1);
        assert!(parse_objects("a: [").is_err());
    }
}
