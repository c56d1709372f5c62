//! Patch metadata: which lists merge, and by which key (`patchStrategy` / `patchMergeKey`
//! struct tags of `k8s.io/api`).

/// How a list is combined with a patch (strategic merge) or an applied configuration
/// (server-side apply).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListStrategy {
    /// The whole list is replaced (no `patchStrategy`; SSA `listType=atomic`).
    Replace,
    /// A list of objects merged element-wise by the given key (`patchStrategy:"merge"
    /// patchMergeKey:"<key>"`; SSA `listType=map`).
    Merge(String),
    /// A list of scalars merged as a set (`patchStrategy:"merge"` without key, e.g.
    /// `metadata.finalizers`; SSA `listType=set`).
    MergePrimitive,
}

/// Path-aware patch metadata.
///
/// `path` is the dotted path of the list field from the object root, with `[]` after each list
/// the path goes through: `spec.containers`, `spec.containers[].env`,
/// `spec.template.spec.volumes`, `metadata.finalizers`.
pub trait MergeKeys {
    /// The strategy of the list at `path`.
    fn list_strategy(&self, path: &str) -> ListStrategy;
}

/// Replaces every list (what JSON merge patch does; the metadata of an unknown kind).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplaceAllLists;

impl MergeKeys for ReplaceAllLists {
    fn list_strategy(&self, _path: &str) -> ListStrategy {
        ListStrategy::Replace
    }
}

/// Built-in patch metadata for core Kubernetes kinds, from the `k8s.io/api` struct tags.
///
/// | where | list | strategy |
/// |-------|------|----------|
/// | every kind, and pod templates | `metadata.finalizers` | primitive merge |
/// | every kind, and pod templates | `metadata.ownerReferences` | merge by `uid` |
/// | pod spec | `containers`, `initContainers`, `ephemeralContainers` | merge by `name` |
/// | pod spec, each container | `ports` | merge by `containerPort` |
/// | pod spec, each container | `env` | merge by `name` |
/// | pod spec, each container | `volumeMounts` | merge by `mountPath` |
/// | pod spec, each container | `volumeDevices` | merge by `devicePath` |
/// | pod spec | `volumes`, `imagePullSecrets`, `schedulingGates`, `resourceClaims` | merge by `name` |
/// | pod spec | `hostAliases` | merge by `ip` |
/// | pod spec | `topologySpreadConstraints` | merge by `topologyKey` |
/// | Pod | `status.conditions` | merge by `type` |
/// | Pod | `status.podIPs`, `status.hostIPs` | merge by `ip` |
/// | Pod | `status.resourceClaimStatuses` | merge by `name` |
/// | Node | `status.conditions`, `status.addresses` | merge by `type` |
/// | Node | `spec.podCIDRs` | primitive merge |
/// | Service | `spec.ports` | merge by `port` |
/// | Service, Namespace, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController, PersistentVolumeClaim | `status.conditions` | merge by `type` |
/// | ServiceAccount | `secrets` | merge by `name` |
///
/// The pod spec is found at `spec` (Pod), `template.spec` (PodTemplate),
/// `spec.template.spec` (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
/// ReplicationController) and `spec.jobTemplate.spec.template.spec` (CronJob). Everything else
/// (tolerations, container statuses, `args`, taints, ...) is replaced, as upstream (those fields
/// carry no patch strategy). Unknown kinds get only the `metadata` rules, which hold for every
/// object since all embed `ObjectMeta`.
#[derive(Debug, Clone)]
pub struct CoreMergeKeys {
    pod_spec_prefixes: &'static [&'static str],
    absolute: &'static [(&'static str, Strategy)],
}

#[derive(Debug, Clone, Copy)]
enum Strategy {
    Key(&'static str),
    Primitive,
}

impl Strategy {
    fn to_list_strategy(self) -> ListStrategy {
        match self {
            Strategy::Key(k) => ListStrategy::Merge(k.to_string()),
            Strategy::Primitive => ListStrategy::MergePrimitive,
        }
    }
}

const CONDITIONS: (&str, Strategy) = ("status.conditions", Strategy::Key("type"));

const POD_SPEC_LISTS: &[(&str, Strategy)] = &[
    ("containers", Strategy::Key("name")),
    ("initContainers", Strategy::Key("name")),
    ("ephemeralContainers", Strategy::Key("name")),
    ("volumes", Strategy::Key("name")),
    ("imagePullSecrets", Strategy::Key("name")),
    ("hostAliases", Strategy::Key("ip")),
    ("topologySpreadConstraints", Strategy::Key("topologyKey")),
    ("schedulingGates", Strategy::Key("name")),
    ("resourceClaims", Strategy::Key("name")),
];

const CONTAINER_LISTS: &[(&str, Strategy)] = &[
    ("ports", Strategy::Key("containerPort")),
    ("env", Strategy::Key("name")),
    ("volumeMounts", Strategy::Key("mountPath")),
    ("volumeDevices", Strategy::Key("devicePath")),
];

impl CoreMergeKeys {
    /// The metadata for `kind` (`"Pod"`, `"Deployment"`, or group-qualified `"apps/Deployment"`).
    pub fn for_kind(kind: &str) -> CoreMergeKeys {
        let kind = kind.rsplit('/').next().unwrap_or(kind);
        let (pod_spec_prefixes, absolute): (&'static [&'static str], &'static [(&str, Strategy)]) =
            match kind {
                "Pod" => (
                    &["spec"],
                    &[
                        CONDITIONS,
                        ("status.podIPs", Strategy::Key("ip")),
                        ("status.hostIPs", Strategy::Key("ip")),
                        ("status.resourceClaimStatuses", Strategy::Key("name")),
                    ],
                ),
                "PodTemplate" => (&["template.spec"], &[]),
                "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Job"
                | "ReplicationController" => (&["spec.template.spec"], &[CONDITIONS]),
                "CronJob" => (&["spec.jobTemplate.spec.template.spec"], &[]),
                "Node" => (
                    &[],
                    &[
                        CONDITIONS,
                        ("status.addresses", Strategy::Key("type")),
                        ("spec.podCIDRs", Strategy::Primitive),
                    ],
                ),
                "Service" => (&[], &[("spec.ports", Strategy::Key("port")), CONDITIONS]),
                "ServiceAccount" => (&[], &[("secrets", Strategy::Key("name"))]),
                "Namespace" | "PersistentVolumeClaim" => (&[], &[CONDITIONS]),
                _ => (&[], &[]),
            };
        CoreMergeKeys {
            pod_spec_prefixes,
            absolute,
        }
    }

    fn pod_spec_strategy(rel: &str) -> Option<Strategy> {
        if let Some((_, s)) = POD_SPEC_LISTS.iter().find(|(p, _)| *p == rel) {
            return Some(*s);
        }
        let (containers, field) = rel.split_once("[].")?;
        if !matches!(
            containers,
            "containers" | "initContainers" | "ephemeralContainers"
        ) {
            return None;
        }
        CONTAINER_LISTS
            .iter()
            .find(|(p, _)| *p == field)
            .map(|(_, s)| *s)
    }
}

impl MergeKeys for CoreMergeKeys {
    fn list_strategy(&self, path: &str) -> ListStrategy {
        let is_meta = |suffix: &str| {
            path == format!("metadata.{suffix}") || path.ends_with(&format!(".metadata.{suffix}"))
        };
        if is_meta("finalizers") {
            return ListStrategy::MergePrimitive;
        }
        if is_meta("ownerReferences") {
            return ListStrategy::Merge("uid".to_string());
        }
        if let Some((_, s)) = self.absolute.iter().find(|(p, _)| *p == path) {
            return s.to_list_strategy();
        }
        for prefix in self.pod_spec_prefixes {
            if let Some(rel) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('.'))
                && let Some(s) = Self::pod_spec_strategy(rel)
            {
                return s.to_list_strategy();
            }
        }
        ListStrategy::Replace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let key = |k: &str| ListStrategy::Merge(k.to_string());
        let cases: Vec<(&str, &str, ListStrategy)> = vec![
            ("Pod", "spec.containers", key("name")),
            ("Pod", "spec.initContainers", key("name")),
            ("Pod", "spec.ephemeralContainers", key("name")),
            ("Pod", "spec.containers[].env", key("name")),
            ("Pod", "spec.containers[].ports", key("containerPort")),
            (
                "Pod",
                "spec.initContainers[].volumeMounts",
                key("mountPath"),
            ),
            ("Pod", "spec.containers[].volumeDevices", key("devicePath")),
            ("Pod", "spec.containers[].args", ListStrategy::Replace),
            ("Pod", "spec.containers[].envFrom", ListStrategy::Replace),
            ("Pod", "spec.volumes", key("name")),
            ("Pod", "spec.imagePullSecrets", key("name")),
            ("Pod", "spec.hostAliases", key("ip")),
            ("Pod", "spec.tolerations", ListStrategy::Replace),
            ("Pod", "spec.topologySpreadConstraints", key("topologyKey")),
            ("Pod", "metadata.finalizers", ListStrategy::MergePrimitive),
            ("Pod", "metadata.ownerReferences", key("uid")),
            ("Pod", "status.conditions", key("type")),
            ("Pod", "status.podIPs", key("ip")),
            ("Pod", "status.containerStatuses", ListStrategy::Replace),
            ("Deployment", "spec.template.spec.containers", key("name")),
            (
                "apps/Deployment",
                "spec.template.spec.containers[].env",
                key("name"),
            ),
            (
                "Deployment",
                "spec.template.metadata.finalizers",
                ListStrategy::MergePrimitive,
            ),
            ("Deployment", "status.conditions", key("type")),
            ("Deployment", "spec.containers", ListStrategy::Replace),
            (
                "CronJob",
                "spec.jobTemplate.spec.template.spec.volumes",
                key("name"),
            ),
            ("PodTemplate", "template.spec.containers", key("name")),
            ("Node", "status.addresses", key("type")),
            ("Node", "status.conditions", key("type")),
            ("Node", "spec.podCIDRs", ListStrategy::MergePrimitive),
            ("Node", "spec.taints", ListStrategy::Replace),
            ("Service", "spec.ports", key("port")),
            ("ServiceAccount", "secrets", key("name")),
            ("ServiceAccount", "imagePullSecrets", ListStrategy::Replace),
            (
                "ConfigMap",
                "metadata.finalizers",
                ListStrategy::MergePrimitive,
            ),
            ("Widget", "spec.items", ListStrategy::Replace),
            ("Widget", "metadata.ownerReferences", key("uid")),
        ];
        for (kind, path, want) in cases {
            assert_eq!(
                CoreMergeKeys::for_kind(kind).list_strategy(path),
                want,
                "{kind} {path}"
            );
        }
        assert_eq!(
            ReplaceAllLists.list_strategy("metadata.finalizers"),
            ListStrategy::Replace
        );
    }
}
