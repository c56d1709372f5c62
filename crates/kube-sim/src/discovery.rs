//! Discovery documents: `/version`, `/api`, `/apis`, group-version resource lists, the aggregated discovery
//! format (`apidiscovery.k8s.io/v2`) that recent kubectl asks for, and the OpenAPI v3 index kubectl consults
//! before it sends `fieldValidation=Strict`.
//!
//! kubectl's server-side field validation check (`queryParamVerifierV3`) looks in `/openapi/v3/<group-version>`
//! for a PATCH operation tagged with the kind's `x-kubernetes-group-version-kind` and a `fieldValidation`
//! parameter; when it finds one it lets the server validate. We publish exactly that (paths without schemas), and
//! validate strictly on the server: unknown fields in custom resources are rejected, as the apiserver does.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

/// Kubernetes version the simulator reports.
pub const KUBE_MINOR: &str = "33";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-kube-sim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(reg: &Registry, group: &str) -> Option<Value> {
    let groups = reg.groups();
    let versions = groups.get(group)?;
    let mut v = group_entry(group, versions);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn resource_entries(t: &ResourceType) -> Vec<Value> {
    let mut out = Vec::new();
    let mut main = json!({
        "name": t.resource,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        main["categories"] = json!(t.categories);
    }
    // Kinds that are never stored (the create-only reviews) have no storage version hash.
    if t.verbs != ["create"] {
        main["storageVersionHash"] = json!(storage_hash(t));
    }
    out.push(main);
    for s in &t.subresources {
        let kind = if s.kind.is_empty() {
            t.kind.as_str()
        } else {
            s.kind
        };
        let mut e = json!({
            "name": format!("{}/{}", t.resource, s.name),
            "singularName": "",
            "namespaced": t.namespaced,
            "kind": kind,
            "verbs": s.verbs,
        });
        // Only a kind of another group/version names it (`deployments/scale`: autoscaling/v1), as the
        // apiserver's installer writes the entry; `deployments/status` is apps/v1 like its list.
        if !s.group.is_empty() && (s.group, s.version) != (t.group.as_str(), t.version.as_str()) {
            e["group"] = json!(s.group);
            e["version"] = json!(s.version);
        }
        out.push(e);
    }
    out
}

fn storage_hash(t: &ResourceType) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{}/{}/{}", t.group, t.version, t.kind).as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let resources: Vec<Value> = types.iter().flat_map(|t| resource_entries(t)).collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list = json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources});
    // The legacy /api/v1 list carries no apiVersion; the groups' lists do.
    if !group.is_empty() {
        list["apiVersion"] = json!("v1");
    }
    Some(list)
}

/// Media type of aggregated discovery v2.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// Media type of aggregated discovery v2beta1.
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version the Accept header asks for, if any.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p: String = part.chars().filter(|c| !c.is_whitespace()).collect();
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some(AGGREGATED_V2BETA1);
            }
            if p.contains("v=v2") {
                return Some(AGGREGATED_V2);
            }
        }
    }
    None
}

/// Aggregated discovery for `/api` (`core = true`) or `/apis`.
pub fn aggregated(reg: &Registry, core: bool, media: &str) -> Value {
    let api_version = if media == AGGREGATED_V2BETA1 {
        "apidiscovery.k8s.io/v2beta1"
    } else {
        "apidiscovery.k8s.io/v2"
    };
    let mut items = Vec::new();
    for (g, versions) in reg.groups() {
        if core != g.is_empty() {
            continue;
        }
        let mut vs = Vec::new();
        for v in &versions {
            let resources: Vec<Value> = reg
                .all()
                .filter(|t| t.group == g && &t.version == v)
                .map(|t| {
                    let mut r = json!({
                        "resource": t.resource,
                        "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": t.singular,
                        "verbs": t.verbs,
                    });
                    if !t.short_names.is_empty() {
                        r["shortNames"] = json!(t.short_names);
                    }
                    if !t.categories.is_empty() {
                        r["categories"] = json!(t.categories);
                    }
                    if !t.subresources.is_empty() {
                        r["subresources"] = Value::Array(
                            t.subresources
                                .iter()
                                .map(|s| {
                                    let (sg, sv, sk) = if s.kind.is_empty() {
                                        (t.group.as_str(), t.version.as_str(), t.kind.as_str())
                                    } else {
                                        (s.group, s.version, s.kind)
                                    };
                                    json!({"subresource": s.name, "responseKind": {"group": sg, "version": sv, "kind": sk}, "verbs": s.verbs})
                                })
                                .collect(),
                        );
                    }
                    r
                })
                .collect();
            vs.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        let metadata = if g.is_empty() {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": g, "creationTimestamp": null})
        };
        items.push(json!({"metadata": metadata, "versions": vs}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

/// Media type of the protobuf OpenAPI v2 document.
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2` as JSON: a valid Swagger 2.0 document without definitions. Clients that validate against v2
/// skip kinds they find no schema for, so this keeps them working while validation happens on the server
/// (`fieldValidation`, advertised in OpenAPI v3).
pub fn openapi_v2_json() -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0")}, "paths": {}, "definitions": {}})
}

/// The same document in the gnostic `openapi_v2.Document` protobuf encoding that client-go requests:
/// field 1 `swagger`, field 2 `info` (1 `title`, 2 `version`).
pub fn openapi_v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag << 3 | 2);
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, b"Kubernetes");
    field(&mut info, 2, format!("v1.{KUBE_MINOR}.0").as_bytes());
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    doc
}

/// The OpenAPI v3 path of a group-version: `api/v1` or `apis/GROUP/VERSION`.
pub fn openapi_gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn openapi_v3_index(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, versions) in reg.groups() {
        for v in versions {
            let p = openapi_gv_path(&g, &v);
            let doc = openapi_v3_doc(reg, &g, &v).unwrap_or(Value::Null);
            let hash = {
                let d = aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    doc.to_string().as_bytes(),
                );
                d.as_ref()
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02X}"))
                    .collect::<String>()
            };
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`: one PATCH operation per kind carrying the
/// group-version-kind extension and the `fieldValidation` parameter (and, for custom resources, their schema).
pub fn openapi_v3_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let base = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for t in types {
        if t.verbs.len() == 1 {
            continue; // create-only reviews
        }
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}}
        ]);
        let op = |action: &str| json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": {"200": {"description": "OK"}}});
        let item = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.resource)
        } else {
            format!("{base}/{}/{{name}}", t.resource)
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
        let coll = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.resource)
        } else {
            format!("{base}/{}", t.resource)
        };
        paths.insert(coll, json!({"get": op("list"), "post": op("post")}));
        if let Some(crd) = &t.crd
            && crd.schema.is_object()
        {
            let mut s = crd.schema.clone();
            s["x-kubernetes-group-version-kind"] = json!([gvk]);
            let reversed: Vec<&str> = t.group.split('.').rev().collect();
            schemas.insert(
                format!("{}.{}.{}", reversed.join("."), t.version, t.kind),
                s,
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_workloads_and_their_subresources() {
        let apps = resource_list(&Registry::builtin(), "apps", "v1").expect("apps/v1");
        let entry = |name: &str| {
            apps["resources"]
                .as_array()
                .expect("array")
                .iter()
                .find(|r| r["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} not listed"))
        };
        assert_eq!(entry("deployments")["shortNames"], json!(["deploy"]));
        assert_eq!(entry("deployments")["categories"], json!(["all"]));
        let status = entry("deployments/status");
        assert!(status.get("group").is_none() && status["kind"] == "Deployment");
        let scale = entry("deployments/scale");
        assert_eq!(
            (&scale["group"], &scale["version"], &scale["kind"]),
            (&json!("autoscaling"), &json!("v1"), &json!("Scale"))
        );
        for name in [
            "replicasets/scale",
            "statefulsets/scale",
            "daemonsets/status",
        ] {
            entry(name);
        }
        let batch = resource_list(&Registry::builtin(), "batch", "v1").expect("batch/v1");
        assert_eq!(batch["resources"].as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn discovery_shapes() {
        let reg = Registry::builtin();
        let core = resource_list(&reg, "", "v1").expect("core");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(
            names.contains(&"pods")
                && names.contains(&"pods/status")
                && names.contains(&"serviceaccounts/token")
        );
        let groups = group_list(&reg);
        assert!(
            groups["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .any(|g| g["name"] == "rbac.authorization.k8s.io")
        );
        let agg = aggregated(&reg, false, AGGREGATED_V2);
        assert_eq!(agg["kind"], "APIGroupDiscoveryList");
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Some(AGGREGATED_V2)
        );
        assert_eq!(wants_aggregated("application/json"), None);
        let doc = openapi_v3_doc(&reg, "", "v1").expect("doc");
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
        assert!(
            openapi_v3_index(&reg)["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .is_some()
        );
        let pb = openapi_v2_protobuf();
        assert_eq!(&pb[..5], &[0x0a, 3, b'2', b'.', b'0']);
    }
}
