//! Kind-specific behaviour on create and update: what the apiserver's registry strategies and the default
//! admission plugins (NamespaceLifecycle, ServiceAccount) do.

use serde_json::{Value, json};

use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::{ResKey, ResourceType};

/// Projected token lifetime the ServiceAccount admission plugin requests (the apiserver's 3607 s).
const KUBE_API_ACCESS_TOKEN_SECONDS: i64 = 3607;

/// Defaults applied when an object is created.
pub fn on_create(sim: &Sim, rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    if matches!(rt.group.as_str(), "apps" | "batch") {
        super::workloads::defaults(&rt.resource, obj);
        super::workloads::on_create(&rt.resource, obj);
        return Ok(());
    }
    if let Some(mutating) = super::webhook_config::kind_of(&rt.group, &rt.resource) {
        super::webhook_config::defaults(mutating, obj);
        return Ok(());
    }
    if !rt.group.is_empty() {
        if rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions" {
            crd_status(obj)?;
        }
        return Ok(());
    }
    match rt.resource.as_str() {
        "namespaces" => {
            let name = crate::meta::str_at(obj, "/metadata/name").to_string();
            if obj
                .get("spec")
                .is_some_and(|s| !s.is_object() && !s.is_null())
            {
                return Err(ApiError::invalid(
                    "Namespace",
                    "",
                    &name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: "spec: Invalid value: must be an object".into(),
                        field: "spec".into(),
                    }],
                ));
            }
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            obj["status"] = json!({"phase": "Active"});
        }
        "services" => super::service::defaults(obj),
        "secrets" => {
            for field in ["data", "stringData"] {
                if obj
                    .get(field)
                    .is_some_and(|d| !d.is_object() && !d.is_null())
                {
                    let name = crate::meta::meta_str(obj, "name").to_string();
                    return Err(ApiError::invalid(
                        "Secret",
                        "",
                        &name,
                        vec![Cause {
                            reason: "FieldValueInvalid".into(),
                            message: format!("{field}: Invalid value: must be a map of strings"),
                            field: field.into(),
                        }],
                    ));
                }
            }
            secret_write_defaults(obj)?;
        }
        "pods" => pod_defaults(sim, obj)?,
        "nodes" => node_defaults(obj),
        "configmaps" => {
            if let Some(message) = super::validate::config_map_decoding(obj) {
                return Err(ApiError::bad_request(message));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The taint the TaintNodesByCondition admission plugin puts on a new node until its kubelet reports Ready
/// (kube-sim's scheduling ignores taints, so pods that name their node are unaffected).
const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// A new node as the apiserver stores it: `spec.podCIDRs` from `spec.podCIDR`, the not-ready NoSchedule taint
/// (TaintNodesByCondition), and the status fields Go always writes (`daemonEndpoints`, empty `nodeInfo`).
pub fn node_defaults(obj: &mut Value) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    if let Some(cidr) = spec
        .get("podCIDR")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        && spec
            .get("podCIDRs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        spec["podCIDRs"] = json!([cidr]);
    }
    let tainted = spec
        .get("taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t["key"] == NOT_READY_TAINT && t["effect"] == "NoSchedule")
        });
    if !tainted {
        let taint = json!({"key": NOT_READY_TAINT, "effect": "NoSchedule"});
        match spec.get_mut("taints").and_then(Value::as_array_mut) {
            Some(ts) => ts.push(taint),
            None => spec["taints"] = json!([taint]),
        }
    }
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    let status = &mut obj["status"];
    default_if_unset(
        status,
        "daemonEndpoints",
        json!({"kubeletEndpoint": {"Port": 0}}),
    );
    default_if_unset(status, "nodeInfo", json!({}));
    for key in [
        "machineID",
        "systemUUID",
        "bootID",
        "kernelVersion",
        "osImage",
        "containerRuntimeVersion",
        "kubeletVersion",
        "kubeProxyVersion",
        "operatingSystem",
        "architecture",
    ] {
        default_if_unset(&mut status["nodeInfo"], key, json!(""));
    }
}

/// Defaults applied to the object an update or patch produces (not to status writes): the same decoding
/// defaults as on create, plus what the stored object keeps (a service's addresses).
pub fn on_update(rt: &ResourceType, cur: &Value, next: &mut Value) -> ApiResult<()> {
    if matches!(rt.group.as_str(), "apps" | "batch") {
        super::workloads::defaults(&rt.resource, next);
        return Ok(());
    }
    if let Some(mutating) = super::webhook_config::kind_of(&rt.group, &rt.resource) {
        super::webhook_config::defaults(mutating, next);
        return Ok(());
    }
    if !rt.group.is_empty() {
        return Ok(());
    }
    match rt.resource.as_str() {
        "secrets" => secret_write_defaults(next)?,
        "configmaps" => {
            if let Some(message) = super::validate::config_map_decoding(next) {
                return Err(ApiError::bad_request(message));
            }
        }
        "services" => super::service::update_defaults(cur, next),
        "pods" if next.get("spec").is_some_and(Value::is_object) => {
            pod_spec_defaults(&mut next["spec"]);
        }
        _ => {}
    }
    Ok(())
}

fn crd_status(obj: &mut Value) -> ApiResult<()> {
    let name = crate::meta::str_at(obj, "/metadata/name").to_string();
    let types = crate::resources::crd_types(obj).map_err(|msg| {
        ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            &name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: msg,
                field: "spec".into(),
            }],
        )
    })?;
    let _ = types;
    if obj.pointer("/spec/conversion").is_none_or(Value::is_null) && obj["spec"].is_object() {
        obj["spec"]["conversion"] = json!({"strategy": "None"});
    }
    let now = crate::meta::now_rfc3339();
    let storage: Vec<Value> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage") == Some(&json!(true)))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let group = crate::meta::str_at(obj, "/spec/group").to_string();
    let approval = obj
        .pointer("/metadata/annotations/api-approved.kubernetes.io")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut conditions = Vec::new();
    if let Some((status, reason, message)) = api_approval(&group, approval.as_deref()) {
        conditions.push(json!({"type": "KubernetesAPIApprovalPolicyConformant", "status": status, "reason": reason, "message": message, "lastTransitionTime": now}));
    }
    conditions.push(json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now}));
    conditions.push(json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}));
    obj["status"] = json!({
        "acceptedNames": obj.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": conditions,
        "storedVersions": storage
    });
    Ok(())
}

/// The apiextensions API-approval controller's condition for a CRD in a protected group (`k8s.io`,
/// `kubernetes.io` and their subdomains): (status, reason, message), or None outside those groups.
pub fn api_approval(
    group: &str,
    annotation: Option<&str>,
) -> Option<(&'static str, &'static str, String)> {
    const SEE: &str = "see https://github.com/kubernetes/enhancements/pull/1111";
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|g| group == *g || group.ends_with(&format!(".{g}")));
    if !protected {
        return None;
    }
    Some(match annotation {
        None => (
            "False",
            "MissingAnnotation",
            format!(
                "protected groups must have approval annotation \"api-approved.kubernetes.io\", {SEE}"
            ),
        ),
        Some(v) if v.starts_with("unapproved") => (
            "False",
            "UnapprovedAnnotation",
            format!("not approved: {v:?}"),
        ),
        Some(v) if v.starts_with("https://") || v.starts_with("http://") => {
            ("True", "ApprovedAnnotation", format!("approved in {v}"))
        }
        Some(_) => (
            "False",
            "InvalidAnnotation",
            format!(
                "protected groups must have approval annotation \"api-approved.kubernetes.io\" with either a URL or a reason starting with \"unapproved\", {SEE}"
            ),
        ),
    })
}

fn pod_defaults(sim: &Sim, obj: &mut Value) -> ApiResult<()> {
    let pod_name = crate::meta::str_at(obj, "/metadata/name").to_string();
    let spec = obj
        .get_mut("spec")
        .filter(|s| s.is_object())
        .ok_or_else(|| {
            ApiError::invalid(
                "Pod",
                "",
                &pod_name,
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "spec: Required value".into(),
                    field: "spec".into(),
                }],
            )
        })?;
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
    ];
    for (k, v) in defaults {
        if spec.get(k).is_none_or(Value::is_null) {
            spec[k] = v;
        }
    }
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec["serviceAccountName"] = json!(sa);
    spec["serviceAccount"] = json!(sa);
    let containers_ok = spec
        .get("containers")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    let name = crate::meta::str_at(obj, "/metadata/name").to_string();
    if !containers_ok {
        return Err(ApiError::invalid(
            "Pod",
            "",
            &name,
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "spec.containers: Required value".into(),
                field: "spec.containers".into(),
            }],
        ));
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = obj["spec"].get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in cs.iter_mut().enumerate() {
                if !c.is_object() {
                    return Err(ApiError::invalid(
                        "Pod",
                        "",
                        &name,
                        vec![Cause {
                            reason: "FieldValueInvalid".into(),
                            message: format!("spec.{list}[{i}]: Invalid value: must be an object"),
                            field: format!("spec.{list}[{i}]"),
                        }],
                    ));
                }
                container_decode_defaults(c);
            }
        }
    }
    let _ = sim;
    pod_spec_defaults(&mut obj["spec"]);
    let causes = projected_path_causes(obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid("Pod", "", &name, causes));
    }
    obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    Ok(())
}

/// A container's decoding defaults (`SetDefaults_Container`): pull policy by image tag, termination message
/// path and policy, empty resources. Shared by pods and the pod templates of workloads.
pub(crate) fn container_decode_defaults(c: &mut Value) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if c.get("imagePullPolicy").is_none() {
        let latest = !image.contains(':') || image.ends_with(":latest");
        c["imagePullPolicy"] = json!(if latest { "Always" } else { "IfNotPresent" });
    }
    if c.get("terminationMessagePath").is_none() {
        c["terminationMessagePath"] = json!("/dev/termination-log");
    }
    if c.get("terminationMessagePolicy").is_none() {
        c["terminationMessagePolicy"] = json!("File");
    }
    if c.get("resources").is_none() {
        c["resources"] = json!({});
    }
}

/// `0644`, the mode of files in secret, config map, downward API and projected volumes (`DefaultMode`).
const DEFAULT_VOLUME_MODE: i64 = 0o644;
/// `ServiceAccountTokenProjection.ExpirationSeconds` default: one hour.
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

fn default_if_unset(obj: &mut Value, key: &str, value: Value) {
    if obj.is_object() && obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

/// The defaults the apiserver's decoding gives a pod spec's volumes and containers (`SetDefaults_Volume`, the
/// volume sources' `DefaultMode`, `SetDefaults_ServiceAccountTokenProjection`, `SetDefaults_ObjectFieldSelector`,
/// container ports' protocol, probes), so objects a user or a webhook wrote read back as from a real server.
pub fn pod_spec_defaults(spec: &mut Value) {
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for volume in volumes.iter_mut().filter(|v| v.is_object()) {
            volume_defaults(volume);
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter(|c| c.is_object()) {
                container_defaults(c);
            }
        }
    }
}

fn volume_defaults(volume: &mut Value) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if !SOURCES
        .iter()
        .any(|s| volume.get(*s).is_some_and(|v| !v.is_null()))
    {
        volume["emptyDir"] = json!({});
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = volume.get_mut(source).filter(|s| s.is_object()) {
            default_if_unset(src, "defaultMode", json!(DEFAULT_VOLUME_MODE));
        }
    }
    if let Some(items) = volume
        .pointer_mut("/downwardAPI/items")
        .and_then(Value::as_array_mut)
    {
        downward_items_defaults(items);
    }
    if let Some(host_path) = volume.get_mut("hostPath").filter(|s| s.is_object()) {
        default_if_unset(host_path, "type", json!(""));
    }
    if let Some(sources) = volume
        .pointer_mut("/projected/sources")
        .and_then(Value::as_array_mut)
    {
        for src in sources.iter_mut() {
            if let Some(token) = src.get_mut("serviceAccountToken").filter(|t| t.is_object()) {
                default_if_unset(
                    token,
                    "expirationSeconds",
                    json!(DEFAULT_TOKEN_EXPIRATION_SECONDS),
                );
            }
            if let Some(items) = src
                .pointer_mut("/downwardAPI/items")
                .and_then(Value::as_array_mut)
            {
                downward_items_defaults(items);
            }
        }
    }
}

fn field_ref_defaults(item: &mut Value) {
    if let Some(field_ref) = item.get_mut("fieldRef").filter(|f| f.is_object())
        && field_ref
            .get("apiVersion")
            .is_none_or(|v| v.is_null() || v == "")
    {
        field_ref["apiVersion"] = json!("v1");
    }
    if let Some(resource_ref) = item.get_mut("resourceFieldRef").filter(|f| f.is_object()) {
        // A zero `resource.Quantity` (not a pointer) is written as "0".
        default_if_unset(resource_ref, "divisor", json!("0"));
    }
}

fn downward_items_defaults(items: &mut [Value]) {
    for item in items {
        field_ref_defaults(item);
    }
}

fn container_defaults(c: &mut Value) {
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter(|p| p.is_object()) {
            if port.get("protocol").is_none_or(|v| v.is_null() || v == "") {
                port["protocol"] = json!("TCP");
            }
        }
    }
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        for var in env.iter_mut() {
            if let Some(from) = var.get_mut("valueFrom") {
                field_ref_defaults(from);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) else {
            continue;
        };
        default_if_unset(p, "timeoutSeconds", json!(1));
        default_if_unset(p, "periodSeconds", json!(10));
        default_if_unset(p, "successThreshold", json!(1));
        default_if_unset(p, "failureThreshold", json!(3));
        if let Some(get) = p.get_mut("httpGet").filter(|g| g.is_object()) {
            for (k, v) in [("path", "/"), ("scheme", "HTTP")] {
                if get.get(k).is_none_or(|x| x.is_null() || x == "") {
                    get[k] = json!(v);
                }
            }
        }
    }
}

/// The defaults of a Secret body on update as on create: `type` Opaque, `stringData` merged into `data`.
pub fn secret_write_defaults(obj: &mut Value) -> ApiResult<()> {
    if let Some(message) = super::validate::secret_data_decoding(obj) {
        return Err(ApiError::bad_request(message));
    }
    if obj.get("type").is_none_or(Value::is_null) {
        obj["type"] = json!("Opaque");
    }
    if let Some(Value::Object(string_data)) =
        obj.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        use base64::Engine;
        for (k, v) in string_data {
            let s = v.as_str().unwrap_or_default();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
        }
    }
    Ok(())
}

/// Whether a volume-relative path is safe to join under a volume directory: relative, non-empty, without `..`
/// components or NUL bytes (what the apiserver's projected-volume validation enforces).
fn safe_relative_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\0')
        && std::path::Path::new(p)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Projected-volume paths must be relative and must not contain `..` (the apiserver's validation; a kubelet
/// enforces it again before writing).
fn projected_path_causes(pod: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, vol) in volumes.iter().enumerate() {
        let Some(sources) = vol.pointer("/projected/sources").and_then(Value::as_array) else {
            continue;
        };
        for (j, src) in sources.iter().enumerate() {
            let mut paths: Vec<(String, &str)> = Vec::new();
            if let Some(p) = src
                .pointer("/serviceAccountToken/path")
                .and_then(Value::as_str)
            {
                paths.push(("serviceAccountToken.path".into(), p));
            }
            for kind in ["configMap", "secret", "downwardAPI"] {
                if let Some(items) = src
                    .get(kind)
                    .and_then(|k| k.get("items"))
                    .and_then(Value::as_array)
                {
                    for (n, item) in items.iter().enumerate() {
                        if let Some(p) = item.get("path").and_then(Value::as_str) {
                            paths.push((format!("{kind}.items[{n}].path"), p));
                        }
                    }
                }
            }
            for (field, p) in paths {
                if !safe_relative_path(p) {
                    let field = format!("spec.volumes[{i}].projected.sources[{j}].{field}");
                    causes.push(Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!(
                            "{field}: Invalid value: \"{p}\": must be a relative path without '..'"
                        ),
                        field,
                    });
                }
            }
        }
    }
    causes
}

/// What the apiserver does with a pod after mutating admission: a webhook's patch is decoded with defaults, like
/// the request body was, and the result is validated.
pub fn after_admission(sim: &Sim, rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let _ = sim;
    if !(rt.group.is_empty() && rt.resource == "pods") {
        return Ok(());
    }
    let name = crate::meta::str_at(obj, "/metadata/name").to_string();
    if obj.get("spec").is_some_and(Value::is_object) {
        pod_spec_defaults(&mut obj["spec"]);
    }
    let causes = super::validate::create_causes("", "pods", obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid("Pod", "", &name, causes));
    }
    Ok(())
}

/// The built-in mutating admission plugins a pod meets before the webhooks (the apiserver's plugin order:
/// ServiceAccount, then DefaultTolerationSeconds, then MutatingAdmissionWebhook).
pub fn builtin_pod_admission(sim: &Sim, obj: &mut Value) -> ApiResult<()> {
    service_account_admission(sim, obj)?;
    default_toleration_seconds(obj);
    Ok(())
}

/// Seconds the DefaultTolerationSeconds plugin lets a pod stay on a not-ready or unreachable node.
const DEFAULT_NOT_READY_TOLERATION_SECONDS: i64 = 300;

/// The DefaultTolerationSeconds admission plugin: unless the pod already tolerates them, the
/// `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable` NoExecute taints for 300 s.
pub fn default_toleration_seconds(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    let existing = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerates = |key: &str| {
        existing.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let mut added = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerates(key) {
            added.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_NOT_READY_TOLERATION_SECONDS,
            }));
        }
    }
    if added.is_empty() {
        return;
    }
    let mut all = existing;
    all.extend(added);
    spec["tolerations"] = Value::Array(all);
}

/// The ServiceAccount admission plugin: the service account must exist, and unless automount is off, a
/// `kube-api-access-*` projected volume is added and mounted in every container.
fn service_account_admission(sim: &Sim, obj: &mut Value) -> ApiResult<()> {
    let ns = crate::meta::str_at(obj, "/metadata/namespace").to_string();
    let name = crate::meta::str_at(obj, "/metadata/name").to_string();
    let sa_name = obj
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let Some(sa) = sim
        .store
        .get(&ResKey::new("", "serviceaccounts"), &ns, &sa_name)
    else {
        return Err(ApiError::forbidden(format!(
            "pods \"{name}\" is forbidden: error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
        ))
        .with_details(&name, "", "pods"));
    };
    let automount = obj
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    let mount_path = "/var/run/secrets/kubernetes.io/serviceaccount";
    let already = obj["spec"]["containers"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["volumeMounts"]
                .as_array()
                .is_some_and(|m| m.iter().any(|vm| vm["mountPath"] == mount_path))
        })
    });
    if already {
        return Ok(());
    }
    let vol_name = crate::meta::generate_name("kube-api-access-");
    let volume = json!({
        "name": vol_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": KUBE_API_ACCESS_TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    });
    match obj["spec"].get_mut("volumes").and_then(Value::as_array_mut) {
        Some(v) => v.push(volume),
        None => obj["spec"]["volumes"] = json!([volume]),
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = obj["spec"].get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                let vm = json!({"name": vol_name, "readOnly": true, "mountPath": mount_path});
                match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    Some(m) => m.push(vm),
                    None => c["volumeMounts"] = json!([vm]),
                }
            }
        }
    }
    Ok(())
}

/// The apiserver forbids most pod spec changes after creation; these are the fields that may change.
pub fn pod_update_causes(cur: &Value, next: &Value) -> Vec<Cause> {
    let strip = |v: &Value| -> Value {
        let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(o) = s.as_object_mut() {
            o.remove("activeDeadlineSeconds");
            o.remove("tolerations");
            o.remove("terminationGracePeriodSeconds");
            for list in ["containers", "initContainers"] {
                if let Some(cs) = o.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("image");
                        }
                    }
                }
            }
        }
        s
    };
    if strip(cur) == strip(next) {
        return Vec::new();
    }
    // nodeName may be set once (binding), never changed.
    let cur_node = crate::meta::str_at(cur, "/spec/nodeName");
    let mut a = strip(cur);
    let mut b = strip(next);
    if cur_node.is_empty() {
        if let Some(o) = a.as_object_mut() {
            o.remove("nodeName");
        }
        if let Some(o) = b.as_object_mut() {
            o.remove("nodeName");
        }
        if a == b {
            return Vec::new();
        }
    }
    vec![Cause {
        reason: "FieldValueForbidden".into(),
        message: "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
        field: "spec".into(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_nodes_get_pod_cidrs_the_not_ready_taint_and_go_status_fields() {
        let mut node = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.244.1.0/24"}});
        node_defaults(&mut node);
        assert_eq!(node["spec"]["podCIDRs"], json!(["10.244.1.0/24"]));
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
        );
        assert_eq!(
            node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
            0
        );
        assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], "");
        // A second pass adds nothing.
        let once = node.clone();
        node_defaults(&mut node);
        assert_eq!(node, once);
    }

    #[test]
    fn protected_groups_get_the_api_approval_condition() {
        assert_eq!(api_approval("example.com", None), None);
        let (status, reason, message) =
            api_approval("aadpodidentity.k8s.io", Some("unapproved")).expect("protected");
        assert_eq!((status, reason), ("False", "UnapprovedAnnotation"));
        assert_eq!(message, "not approved: \"unapproved\"");
        let approved = api_approval(
            "x.kubernetes.io",
            Some("https://github.com/kubernetes/enhancements/pull/1111"),
        );
        assert_eq!(approved.map(|a| a.1), Some("ApprovedAnnotation"));
        assert_eq!(
            api_approval("k8s.io", None).map(|a| a.1),
            Some("MissingAnnotation")
        );
    }

    #[test]
    fn projected_volumes_and_containers_get_the_apiserver_defaults() {
        let mut spec = json!({
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                "env": [{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "readinessProbe": {"httpGet": {"port": 80}}}],
            "volumes": [
                {"name": "azure-identity-token", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "audience": "api://AzureADTokenExchange"}},
                    {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                    {"configMap": {"name": "cm", "items": [{"key": "k", "path": "k"}]}}]}},
                {"name": "scratch"},
                {"name": "cm", "configMap": {"name": "cm", "defaultMode": 256}}
            ]
        });
        pod_spec_defaults(&mut spec);
        let projected = &spec["volumes"][0]["projected"];
        assert_eq!(projected["defaultMode"], 420);
        assert_eq!(
            projected["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
        assert_eq!(
            projected["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(spec["volumes"][1]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][2]["configMap"]["defaultMode"], 256);
        let c = &spec["containers"][0];
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            c["readinessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
    }

    #[test]
    fn pod_spec_is_mostly_immutable() {
        let cur = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let img = json!({"spec": {"containers": [{"name": "a", "image": "x:2"}]}});
        assert!(pod_update_causes(&cur, &img).is_empty());
        let env = json!({"spec": {"containers": [{"name": "a", "image": "x:1", "env": [{"name": "A"}]}]}});
        assert_eq!(pod_update_causes(&cur, &env).len(), 1);
        let bound =
            json!({"spec": {"nodeName": "n1", "containers": [{"name": "a", "image": "x:1"}]}});
        assert!(pod_update_causes(&cur, &bound).is_empty());
        let moved =
            json!({"spec": {"nodeName": "n2", "containers": [{"name": "a", "image": "x:1"}]}});
        assert_eq!(pod_update_causes(&bound, &moved).len(), 1);
    }
}
