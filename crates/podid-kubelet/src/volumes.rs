//! Projected volumes, pure (no IO, time is a parameter): where the kubelet lays a pod's files out
//! (`<dir>/pods/<pod-uid>/volumes/kubernetes.io~projected/<volume>/<path>`, the real kubelet's layout), which
//! files a pod's projected volumes ask for ([`projected_volumes`]: service-account tokens, config maps, secrets,
//! downward API), the line between a pod spec and the host's file system ([`safe_relative_path`]: the kubelet
//! writes as the playground's user), and when a token is rewritten ([`refresh_at`]: at 80% of its lifetime, at
//! most 24 h after it was written, as the kubelet's token manager does).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, VolumeProjection};

/// Refresh a token when this fraction of its lifetime has passed (the kubelet's token manager: 80%).
pub const REFRESH_FRACTION: f64 = 0.8;
/// Refresh a token at least this often, however long it lives (the kubelet: 24 h).
pub const MAX_TOKEN_AGE_SECS: i64 = 24 * 3600;
/// A token source without `expirationSeconds` asks for this lifetime (the API's default: 1 h).
pub const DEFAULT_TOKEN_EXPIRATION_SECS: i64 = 3600;
/// A token source without `path` is written here.
const DEFAULT_TOKEN_PATH: &str = "token";

/// The directory of everything the kubelet keeps for one pod.
#[must_use]
pub fn pod_dir(dir: &Path, pod_uid: &str) -> PathBuf {
    dir.join("pods").join(pod_uid)
}

/// Directory of a projected volume of a pod, as the kubelet lays it out.
#[must_use]
pub fn projected_dir(dir: &Path, pod_uid: &str, volume: &str) -> PathBuf {
    pod_dir(dir, pod_uid)
        .join("volumes")
        .join("kubernetes.io~projected")
        .join(volume)
}

/// Whether a volume-relative path is safe to join under a volume directory: relative, non-empty, without `..`
/// or `.` components or NUL bytes (what the API server's projected-volume validation enforces).
#[must_use]
pub fn safe_relative_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\0')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `rel` under `dir` when it is safe (see [`safe_relative_path`]); refused with a warning otherwise.
#[must_use]
pub fn join_safe(dir: &Path, rel: &str) -> Option<PathBuf> {
    if safe_relative_path(rel) {
        Some(dir.join(rel))
    } else {
        tracing::warn!(path = %rel, "kubelet refused a volume path outside its volume directory");
        None
    }
}

/// When a token written at `now` that expires at `expires_at` (both seconds since the epoch) is due to be
/// rewritten: after [`REFRESH_FRACTION`] of its lifetime, at most [`MAX_TOKEN_AGE_SECS`] later.
#[must_use]
pub fn refresh_at(now: i64, expires_at: i64) -> i64 {
    let life = (expires_at - now).max(1);
    now + ((life as f64 * REFRESH_FRACTION) as i64).min(MAX_TOKEN_AGE_SECS)
}

/// One file of a projected volume, identified for the token bookkeeping: (pod uid, volume, path).
pub type TokenKey = (String, String, String);

/// A projected volume of a pod and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedVolume {
    /// The volume's name (one path segment).
    pub name: String,
    /// Its sources, in the spec's order.
    pub sources: Vec<Source>,
}

/// One source of a projected volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A service-account token from TokenRequest, bound to the pod.
    Token {
        /// File path in the volume.
        path: String,
        /// The token's audience (the API server's audiences when none).
        audience: Option<String>,
        /// The lifetime asked for.
        expiration_seconds: i64,
    },
    /// Keys of a config map.
    ConfigMap(Keyed),
    /// Keys of a secret.
    Secret(Keyed),
    /// Downward API items: (file path, `fieldRef.fieldPath`).
    DownwardApi(Vec<(String, String)>),
}

/// A config map or secret source: the object's name and, when given, which keys go to which paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    /// Config map or secret name.
    pub name: String,
    /// (key, path) items; every key under its own name when `None`.
    pub items: Option<Vec<(String, String)>>,
}

/// The projected volumes of a pod. A volume whose name is not one safe path segment is skipped with a warning.
#[must_use]
pub fn projected_volumes(pod: &Pod) -> Vec<ProjectedVolume> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    let mut out = Vec::new();
    for v in volumes.into_iter().flatten() {
        let Some(sources) = v.projected.as_ref().and_then(|p| p.sources.as_ref()) else {
            continue;
        };
        if !safe_relative_path(&v.name) || v.name.contains('/') {
            tracing::warn!(volume = %v.name, "kubelet refused a volume name that is not a single path segment");
            continue;
        }
        out.push(ProjectedVolume {
            name: v.name.clone(),
            sources: sources.iter().filter_map(source).collect(),
        });
    }
    out
}

fn source(p: &VolumeProjection) -> Option<Source> {
    if let Some(t) = &p.service_account_token {
        return Some(Source::Token {
            path: if t.path.is_empty() {
                DEFAULT_TOKEN_PATH.to_string()
            } else {
                t.path.clone()
            },
            audience: t.audience.clone().filter(|a| !a.is_empty()),
            expiration_seconds: t
                .expiration_seconds
                .unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECS),
        });
    }
    let items = |items: &Option<Vec<k8s_openapi::api::core::v1::KeyToPath>>| {
        items
            .as_ref()
            .map(|i| i.iter().map(|k| (k.key.clone(), k.path.clone())).collect())
    };
    if let Some(cm) = &p.config_map {
        return Some(Source::ConfigMap(Keyed {
            name: cm.name.clone(),
            items: items(&cm.items),
        }));
    }
    if let Some(s) = &p.secret {
        return Some(Source::Secret(Keyed {
            name: s.name.clone(),
            items: items(&s.items),
        }));
    }
    let d = p.downward_api.as_ref()?;
    Some(Source::DownwardApi(
        d.items
            .iter()
            .flatten()
            .filter_map(|i| Some((i.path.clone(), i.field_ref.as_ref()?.field_path.clone())))
            .collect(),
    ))
}

/// The value of a downward-API field the kubelet supports (namespace, name, uid, node name, service account).
#[must_use]
pub fn downward_value(pod: &Pod, field: &str) -> Option<String> {
    let spec = pod.spec.as_ref();
    let m = &pod.metadata;
    let v = match field {
        "metadata.namespace" => m.namespace.clone(),
        "metadata.name" => m.name.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        _ => return None,
    };
    Some(v.unwrap_or_default())
}

/// The files a config map or secret source writes: every key under its own name, or the listed items (keys the
/// object lacks are skipped). Paths are not checked here ([`join_safe`] does that).
#[must_use]
pub fn keyed_files(data: &BTreeMap<String, Vec<u8>>, keyed: &Keyed) -> Vec<(String, Vec<u8>)> {
    match &keyed.items {
        Some(items) => items
            .iter()
            .filter_map(|(k, p)| Some((p.clone(), data.get(k)?.clone())))
            .collect(),
        None => data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_is_the_kubelets() {
        assert_eq!(
            projected_dir(Path::new("/k"), "u-1", "kube-api-access-x"),
            Path::new("/k/pods/u-1/volumes/kubernetes.io~projected/kube-api-access-x")
        );
        assert_eq!(pod_dir(Path::new("/k"), "u-1"), Path::new("/k/pods/u-1"));
    }

    #[test]
    fn volume_paths_stay_inside_the_volume() {
        for ok in ["token", "a/b", "ca.crt", "..data-not-dotdot", "x/..y"] {
            assert!(safe_relative_path(ok), "{ok}");
            assert!(join_safe(Path::new("/v"), ok).is_some());
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a/..",
            ".",
            "./a",
            "a\0b",
        ] {
            assert!(!safe_relative_path(bad), "{bad}");
            assert!(join_safe(Path::new("/v"), bad).is_none());
        }
    }

    #[test]
    fn refresh_at_80_percent_or_24_hours() {
        // An hour's token: rewritten after 48 minutes.
        assert_eq!(refresh_at(1000, 1000 + 3600), 1000 + 2880);
        // The API's shortest (10 min): after 8.
        assert_eq!(refresh_at(0, 600), 480);
        // A year's token: after a day.
        assert_eq!(refresh_at(0, 365 * 86400), MAX_TOKEN_AGE_SECS);
        // Already expired (clock skew): due at once, never in the past.
        assert_eq!(refresh_at(500, 100), 500);
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn projected_sources_are_read_from_the_spec() {
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [], "volumes": [
                {"name": "cfg", "configMap": {"name": "plain"}},
                {"name": "kube-api-access-abc", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}},
                {"name": "azure-identity-token", "projected": {"sources": [
                    {"serviceAccountToken": {"audience": "api://AzureADTokenExchange", "path": "azure-identity-token"}},
                    {"secret": {"name": "s"}}
                ]}},
                {"name": "../evil", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
            ]}}),
        );
        let vols = projected_volumes(&p);
        assert_eq!(
            vols,
            vec![
                ProjectedVolume {
                    name: "kube-api-access-abc".into(),
                    sources: vec![
                        Source::Token {
                            path: "token".into(),
                            audience: None,
                            expiration_seconds: 3607
                        },
                        Source::ConfigMap(Keyed {
                            name: "kube-root-ca.crt".into(),
                            items: Some(vec![("ca.crt".into(), "ca.crt".into())])
                        }),
                        Source::DownwardApi(vec![(
                            "namespace".into(),
                            "metadata.namespace".into()
                        )]),
                    ]
                },
                ProjectedVolume {
                    name: "azure-identity-token".into(),
                    sources: vec![
                        Source::Token {
                            path: "azure-identity-token".into(),
                            audience: Some("api://AzureADTokenExchange".into()),
                            expiration_seconds: DEFAULT_TOKEN_EXPIRATION_SECS
                        },
                        Source::Secret(Keyed {
                            name: "s".into(),
                            items: None
                        }),
                    ]
                },
            ],
            "non-projected volumes and unsafe volume names are skipped"
        );
    }

    #[test]
    fn downward_api_fields() {
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": []}}),
        );
        for (f, want) in [
            ("metadata.namespace", "ns"),
            ("metadata.name", "p"),
            ("metadata.uid", "u"),
            ("spec.nodeName", "n1"),
            ("spec.serviceAccountName", "sa"),
        ] {
            assert_eq!(downward_value(&p, f).as_deref(), Some(want), "{f}");
        }
        assert_eq!(downward_value(&p, "metadata.labels"), None);
        assert_eq!(downward_value(&p, "status.podIP"), None);
    }

    #[test]
    fn keyed_sources_pick_their_files() {
        let data: BTreeMap<String, Vec<u8>> = [("a", "1"), ("b", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        let all = Keyed {
            name: "x".into(),
            items: None,
        };
        assert_eq!(
            keyed_files(&data, &all),
            vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]
        );
        let some = Keyed {
            name: "x".into(),
            items: Some(vec![
                ("b".into(), "dir/b.txt".into()),
                ("missing".into(), "m".into()),
            ]),
        };
        assert_eq!(
            keyed_files(&data, &some),
            vec![("dir/b.txt".into(), b"2".to_vec())]
        );
    }
}
