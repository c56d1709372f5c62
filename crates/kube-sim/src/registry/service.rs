//! Services as the apiserver writes them: defaults (`SetDefaults_Service`), cluster IP and node port
//! allocation, validation of ports, and what an update keeps from the stored object.
//!
//! The decisions are pure functions on JSON ([`defaults`], [`allocate`], [`validate`], [`update_causes`],
//! [`keep_allocated`]); [`allocate_create`] and [`allocate_update`] read the addresses in use from the store.
//!
//! The service range is the apiserver's default `--service-cluster-ip-range` when none is given, 10.0.0.0/24;
//! 10.0.0.1 is reserved for the `kubernetes` Service, as upstream reserves the range's first address. Addresses
//! are handed out lowest first from the dynamic band (above the first 16, which upstream keeps for static
//! choices), not at random as upstream does, so tests see stable values.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use kube_sim_machinery::gofmt::go_quote;
use kube_sim_machinery::validation::is_dns1123_label;

use super::validate::{invalid, required};
use crate::Sim;
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::ResKey;

/// The service range (`--service-cluster-ip-range` default): 10.0.0.0/24.
pub const SERVICE_CIDR: &str = "10.0.0.0/24";
/// First three octets of [`SERVICE_CIDR`].
const SERVICE_PREFIX: [u8; 3] = [10, 0, 0];
/// Host addresses below this one are upstream's static band (min(max(16, size/16), 256) for a /24): handed out
/// only when the dynamic band is full.
const DYNAMIC_BAND_START: u8 = 16;
/// The apiserver's default `--service-node-port-range`.
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;
/// `v1.DefaultClientIPServiceAffinitySeconds`: three hours.
const CLIENT_IP_AFFINITY_SECONDS: i64 = 10800;

fn spec_str<'a>(svc: &'a Value, field: &str) -> &'a str {
    svc.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_headless(svc: &Value) -> bool {
    spec_str(svc, "clusterIP") == "None"
}

fn needs_node_ports(svc: &Value) -> bool {
    match spec_str(svc, "type") {
        "NodePort" => true,
        "LoadBalancer" => svc.pointer("/spec/allocateLoadBalancerNodePorts") != Some(&json!(false)),
        _ => false,
    }
}

/// `SetDefaults_Service` and the IP family defaults of a single-stack IPv4 cluster.
pub fn defaults(svc: &mut Value) {
    if !svc.get("spec").is_some_and(Value::is_object) {
        svc["spec"] = json!({});
    }
    let spec = &mut svc["spec"];
    let unset = |spec: &Value, k: &str| spec.get(k).is_none_or(|v| v.is_null() || v == "");
    if unset(spec, "type") {
        spec["type"] = json!("ClusterIP");
    }
    if unset(spec, "sessionAffinity") {
        spec["sessionAffinity"] = json!("None");
    }
    match spec["sessionAffinity"].as_str() {
        Some("None") => {
            if let Some(o) = spec.as_object_mut() {
                o.remove("sessionAffinityConfig");
            }
        }
        Some("ClientIP")
            if spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .is_none_or(|v| v.as_i64().unwrap_or(0) == 0) =>
        {
            spec["sessionAffinityConfig"] =
                json!({"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}});
        }
        _ => {}
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter(|p| p.is_object()) {
            if unset(port, "protocol") {
                port["protocol"] = json!("TCP");
            }
            let target_unset = port
                .get("targetPort")
                .is_none_or(|t| t.is_null() || t == 0 || t == "");
            if target_unset {
                port["targetPort"] = port.get("port").cloned().unwrap_or(json!(0));
            }
        }
    }
    let ty = spec["type"].as_str().unwrap_or_default().to_string();
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer") && unset(spec, "externalTrafficPolicy") {
        spec["externalTrafficPolicy"] = json!("Cluster");
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer")
        && unset(spec, "internalTrafficPolicy")
    {
        spec["internalTrafficPolicy"] = json!("Cluster");
    }
    if ty == "LoadBalancer"
        && spec
            .get("allocateLoadBalancerNodePorts")
            .is_none_or(Value::is_null)
    {
        spec["allocateLoadBalancerNodePorts"] = json!(true);
    }
    if ty != "ExternalName" {
        if unset(spec, "ipFamilyPolicy") {
            // Headless services without a selector may take every family of the cluster.
            let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
            let selector = spec
                .get("selector")
                .and_then(Value::as_object)
                .is_some_and(|s| !s.is_empty());
            spec["ipFamilyPolicy"] = json!(if headless && !selector {
                "RequireDualStack"
            } else {
                "SingleStack"
            });
        }
        if spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
    }
    svc["status"] = json!({"loadBalancer": {}});
}

/// The host part of an address in [`SERVICE_CIDR`], if it is one.
fn host_in_range(ip: &str) -> Option<u8> {
    let octets: Vec<u8> = ip
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match octets.as_slice() {
        [a, b, c, d] if [*a, *b, *c] == SERVICE_PREFIX && *d != 0 && *d != 255 => Some(*d),
        _ => None,
    }
}

/// Give the service its cluster IP (unless headless or ExternalName) and node ports (NodePort, LoadBalancer),
/// avoiding the addresses and ports in use. A requested address must be in the range and free.
pub fn allocate(
    svc: &mut Value,
    used_ips: &BTreeSet<String>,
    used_ports: &BTreeSet<i64>,
) -> Result<(), Vec<Cause>> {
    let ty = spec_str(svc, "type").to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    if is_headless(svc) {
        svc["spec"]["clusterIPs"] = json!(["None"]);
    } else {
        let requested = match spec_str(svc, "clusterIP") {
            "" => svc
                .pointer("/spec/clusterIPs/0")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            ip => ip.to_string(),
        };
        let ip = if requested.is_empty() {
            let free = |h: &u8| !used_ips.contains(&format!("10.0.0.{h}"));
            let host = (DYNAMIC_BAND_START..=254)
                .find(free)
                .or_else(|| (2..DYNAMIC_BAND_START).find(free));
            let Some(host) = host else {
                return Err(vec![internal_alloc("range is full")]);
            };
            format!("10.0.0.{host}")
        } else {
            let fail = |why: String| {
                invalid(
                    "spec.clusterIPs",
                    &format!("[]string{{{}}}", go_quote(&requested)),
                    &format!("failed to allocate IP {requested}: {why}"),
                )
            };
            if host_in_range(&requested).is_none() {
                return Err(vec![fail(format!(
                    "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                ))]);
            }
            if used_ips.contains(&requested) {
                return Err(vec![fail("provided IP is already allocated".into())]);
            }
            requested
        };
        svc["spec"]["clusterIP"] = json!(ip);
        svc["spec"]["clusterIPs"] = json!([ip]);
    }
    if needs_node_ports(svc) {
        let mut taken = used_ports.clone();
        if let Some(ports) = svc["spec"].get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut() {
                if port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                    continue;
                }
                let Some(free) = NODE_PORTS.clone().find(|p| !taken.contains(p)) else {
                    return Err(vec![internal_alloc("node port range is full")]);
                };
                taken.insert(free);
                port["nodePort"] = json!(free);
            }
        }
    }
    Ok(())
}

fn internal_alloc(why: &str) -> Cause {
    Cause {
        reason: "InternalError".into(),
        message: format!("spec.clusterIPs: Internal error: failed to allocate a serviceIP: {why}"),
        field: "spec.clusterIPs".into(),
    }
}

/// `ValidateService`'s port checks: ports are required unless headless or ExternalName; each needs a valid
/// number, a supported protocol, and a name when there are several.
pub fn validate(svc: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ports: &[Value] = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let ty = spec_str(svc, "type");
    if ports.is_empty() && !is_headless(svc) && ty != "ExternalName" {
        causes.push(required("spec.ports", ""));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = port.get("name").and_then(Value::as_str).unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            causes.push(required(&format!("{path}.name"), ""));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                causes.push(invalid(&format!("{path}.name"), &go_quote(name), &msg));
            }
            if names.contains(&name) {
                causes.push(Cause {
                    reason: "FieldValueDuplicate".into(),
                    message: format!("{path}.name: Duplicate value: {}", go_quote(name)),
                    field: format!("{path}.name"),
                });
            }
            names.push(name);
        }
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&number) {
            causes.push(invalid(
                &format!("{path}.port"),
                &number.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
            causes.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "{path}.protocol: Unsupported value: {}: supported values: \"SCTP\", \"TCP\", \"UDP\"",
                    go_quote(protocol)
                ),
                field: format!("{path}.protocol"),
            });
        }
    }
    causes
}

/// An update keeps the addresses and node ports the stored service was given when the new body leaves them
/// out (`patchAllocatedValues`), and its IP families.
pub fn keep_allocated(cur: &Value, next: &mut Value) {
    if !next.get("spec").is_some_and(Value::is_object) {
        return;
    }
    let same_kind_of_ip =
        spec_str(cur, "type") != "ExternalName" && spec_str(next, "type") != "ExternalName";
    if same_kind_of_ip && spec_str(next, "clusterIP").is_empty() {
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if let Some(v) = cur.pointer(&format!("/spec/{f}")) {
                next["spec"][f] = v.clone();
            }
        }
    }
    let old_ports: Vec<Value> = cur
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = next["spec"].get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut() {
            if port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(old) = old_ports
                .iter()
                .find(|o| o.get("port") == port.get("port"))
                .and_then(|o| o.get("nodePort"))
            {
                port["nodePort"] = old.clone();
            }
        }
    }
}

/// The allocated cluster IP may not change.
pub fn update_causes(cur: &Value, next: &Value) -> Vec<Cause> {
    let old = spec_str(cur, "clusterIP");
    let new = spec_str(next, "clusterIP");
    if !old.is_empty() && !new.is_empty() && old != new && spec_str(next, "type") != "ExternalName"
    {
        return vec![invalid(
            "spec.clusterIPs[0]",
            &go_quote(new),
            "may not change once set",
        )];
    }
    Vec::new()
}

/// The cluster IPs and node ports of every stored service (but `except`, the one being updated).
fn in_use(sim: &Sim, except: Option<(&str, &str)>) -> InUse {
    let (services, _, _) = sim.store.list(
        &ResKey::new("", "services"),
        None,
        None,
        None,
        None,
        &|_| true,
    );
    let mut ips = BTreeSet::from(["10.0.0.1".to_string()]);
    let mut ports = BTreeSet::new();
    for svc in services {
        let id = (
            crate::meta::meta_str(&svc, "namespace"),
            crate::meta::meta_str(&svc, "name"),
        );
        if except == Some(id) {
            continue;
        }
        if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str) {
            ips.insert(ip.to_string());
        }
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_i64) {
                ports.insert(n);
            }
        }
    }
    (ips, ports)
}

/// Allocation for a new service (after [`defaults`] and [`validate`]).
pub fn allocate_create(sim: &Sim, svc: &mut Value) -> ApiResult<()> {
    let name = crate::meta::meta_str(svc, "name").to_string();
    let (ips, ports) = in_use(sim, None);
    allocate(svc, &ips, &ports).map_err(|causes| ApiError::invalid("Service", "", &name, causes))
}

/// Defaults of an updated service: what the stored one was given is kept when left out, and its status stays.
pub fn update_defaults(cur: &Value, next: &mut Value) {
    keep_allocated(cur, next);
    defaults(next);
    match cur.get("status") {
        Some(status) => next["status"] = status.clone(),
        None => {
            if let Some(o) = next.as_object_mut() {
                o.remove("status");
            }
        }
    }
}

/// What stored services hold (but the one being updated), read before the update takes the store's write lock.
pub fn in_use_except(sim: &Sim, ns: &str, name: &str) -> InUse {
    in_use(sim, Some((ns, name)))
}

/// Cluster IPs and node ports in use.
pub type InUse = (BTreeSet<String>, BTreeSet<i64>);

/// Allocation for an updated service (a type that now needs an address or node ports), given what the other
/// services hold.
pub fn allocate_update(in_use: &InUse, next: &mut Value) -> ApiResult<()> {
    let name = crate::meta::meta_str(next, "name").to_string();
    allocate(next, &in_use.0, &in_use.1)
        .map_err(|causes| ApiError::invalid("Service", "", &name, causes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "s"}, "spec": spec})
    }

    #[test]
    fn cluster_ip_service_defaults() {
        let mut s = svc(json!({"selector": {"app": "a"}, "ports": [{"port": 80}]}));
        defaults(&mut s);
        assert_eq!(
            s["spec"],
            json!({"selector": {"app": "a"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]})
        );
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
        let mut used = BTreeSet::from(["10.0.0.1".to_string(), "10.0.0.16".to_string()]);
        allocate(&mut s, &used, &BTreeSet::new()).expect("allocates");
        assert_eq!(s["spec"]["clusterIP"], "10.0.0.17");
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.0.0.17"]));
        used.insert("10.0.0.17".into());
        let mut taken = svc(json!({"clusterIP": "10.0.0.17", "ports": [{"port": 80}]}));
        let err = allocate(&mut taken, &used, &BTreeSet::new()).expect_err("taken");
        assert_eq!(err[0].field, "spec.clusterIPs");
        let mut outside = svc(json!({"clusterIP": "10.9.0.1", "ports": [{"port": 80}]}));
        assert!(allocate(&mut outside, &used, &BTreeSet::new()).is_err());
    }

    #[test]
    fn node_ports_headless_and_external_name() {
        let mut np =
            svc(json!({"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]}));
        defaults(&mut np);
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
        allocate(&mut np, &BTreeSet::new(), &BTreeSet::from([30000])).expect("allocates");
        assert_eq!(np["spec"]["ports"][0]["nodePort"], 30001);
        let mut headless = svc(json!({"clusterIP": "None"}));
        defaults(&mut headless);
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        allocate(&mut headless, &BTreeSet::new(), &BTreeSet::new()).expect("allocates");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert!(validate(&headless).is_empty());
        let mut ext = svc(json!({"type": "ExternalName", "externalName": "example.com"}));
        defaults(&mut ext);
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn ports_are_required_and_checked() {
        let mut s = svc(json!({}));
        defaults(&mut s);
        assert_eq!(validate(&s)[0].message, "spec.ports: Required value");
        let mut two = svc(json!({"ports": [{"port": 80}, {"port": 70000, "name": "b"}]}));
        defaults(&mut two);
        let msgs: Vec<String> = validate(&two).into_iter().map(|c| c.message).collect();
        assert_eq!(
            msgs,
            vec![
                "spec.ports[0].name: Required value".to_string(),
                "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn updates_keep_what_was_allocated() {
        let cur = json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.20", "clusterIPs": ["10.0.0.20"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80, "nodePort": 30005}]}});
        let mut next = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        keep_allocated(&cur, &mut next);
        assert_eq!(next["spec"]["clusterIP"], "10.0.0.20");
        assert_eq!(next["spec"]["ports"][0]["nodePort"], 30005);
        let moved = json!({"spec": {"clusterIP": "10.0.0.21"}});
        assert_eq!(update_causes(&cur, &moved)[0].field, "spec.clusterIPs[0]");
    }
}
