//! IMDS over HTTP: one listener per node; identities come from the ARM state of that node's VM or scale set
//! (as the machine sees it: writes still running as long-running operations are not visible yet).

use serde_json::json;

use super::{Req, Resp, Sim, now_ms, now_secs};
use crate::armid;
use crate::imds::{self, Candidate, ImdsError, InstanceInfo};
use crate::state::WorldState;
use crate::token::Principal;
use crate::world::{NodeRef, ResourceIdentity};

const SERVER: &str = "IMDS/150.870.65.1854";

fn err(e: ImdsError) -> Resp {
    Resp::json(e.status(), &e.body())
        .header("server", SERVER)
        .note(e.to_string())
}

struct NodeView {
    resource_id: String,
    tenant: String,
    model: ResourceIdentity,
    info: InstanceInfo,
}

fn node_view(ws: &WorldState, node: &str) -> Option<NodeView> {
    let w = &ws.world;
    match ws.index.node(node)? {
        NodeRef::Vm(i) => {
            let vm = &w.virtual_machines[i];
            let sub = vm.subscription_id.clone().unwrap_or_default();
            Some(NodeView {
                resource_id: vm.id(),
                tenant: w.tenant_of_subscription(&sub).unwrap_or("").to_string(),
                model: vm.identity.clone(),
                info: InstanceInfo {
                    name: vm.name.clone(),
                    vm_scale_set_name: String::new(),
                    resource_group: vm.resource_group.clone().unwrap_or_default(),
                    subscription_id: sub.clone(),
                    location: vm.location.clone().unwrap_or_default(),
                    resource_id: vm.id(),
                    vm_id: vm.vm_id.clone().unwrap_or_default(),
                    vm_size: vm.vm_size.clone().unwrap_or_default(),
                    computer_name: vm.node_name.clone().unwrap_or_default(),
                    tags: vm
                        .tags
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    private_ip: vm.private_ip.clone().unwrap_or_default(),
                },
            })
        }
        NodeRef::Vmss(i, j) => {
            let s = &w.virtual_machine_scale_sets[i];
            let inst = &s.instances[j];
            let sub = s.subscription_id.clone().unwrap_or_default();
            let iid = inst.instance_id.clone().unwrap_or_default();
            Some(NodeView {
                resource_id: s.id(),
                tenant: w.tenant_of_subscription(&sub).unwrap_or("").to_string(),
                model: s.identity.clone(),
                info: InstanceInfo {
                    name: format!("{}_{iid}", s.name),
                    vm_scale_set_name: s.name.clone(),
                    resource_group: s.resource_group.clone().unwrap_or_default(),
                    subscription_id: sub.clone(),
                    location: s.location.clone().unwrap_or_default(),
                    resource_id: format!("{}/virtualMachines/{iid}", s.id()),
                    vm_id: inst.vm_id.clone().unwrap_or_default(),
                    vm_size: s.vm_size.clone().unwrap_or_default(),
                    computer_name: inst.node_name.clone().unwrap_or_default(),
                    tags: s.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    private_ip: inst.private_ip.clone().unwrap_or_default(),
                },
            })
        }
    }
}

/// Handle one IMDS request for `node`.
pub fn handle(sim: &Sim, node: &str, r: &Req) -> Resp {
    let folded;
    let path = if sim.state.settings.read().imds_case_insensitive_paths {
        folded = r.path.to_ascii_lowercase();
        folded.as_str()
    } else {
        r.path.as_str()
    };
    let metadata = r.headers.get("metadata").map(|v| v.as_bytes());
    let is_token = matches!(
        path,
        "/metadata/identity/oauth2/token" | "/metadata/identity/oauth2/token/"
    );
    let instance = path
        .strip_prefix("/metadata/instance")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'));
    if !is_token && instance.is_none() && path != "/metadata/versions" {
        return err(ImdsError::NotFound);
    }
    if r.method != http::Method::GET {
        return err(ImdsError::MethodNotAllowed);
    }
    let q = r.params();
    if path == "/metadata/versions" {
        return Resp::json(200, &json!({"apiVersions": imds::API_VERSIONS}))
            .header("server", SERVER);
    }
    if let Some(sub_path) = instance {
        let view = {
            let ws = sim.state.world.read();
            node_view(&ws, node)
        };
        let Some(view) = view else {
            return err(ImdsError::NoInstance);
        };
        let doc = imds::instance_document(&view.info);
        return match imds::instance_query(metadata, &q, sub_path, &doc) {
            Ok(Ok(v)) => Resp::json(200, &v).header("server", SERVER),
            Ok(Err(text)) => Resp::text(200, text).header("server", SERVER),
            Err(e) => err(e),
        };
    }
    let tq = match imds::parse_token_query(metadata, &q) {
        Ok(t) => t,
        Err(e) => return err(e),
    };
    let now = now_secs();
    let (principal, version, audience) = {
        let ws = sim.state.world.read();
        let Some(view) = node_view(&ws, node) else {
            return err(ImdsError::NoInstance);
        };
        let ident =
            sim.state
                .effective_identity(&armid::key(&view.resource_id), &view.model, now_ms());
        let mut cands = Vec::new();
        if ident.kind().system() {
            cands.push(Candidate {
                system: true,
                client_id: ident.client_id.clone().unwrap_or_default(),
                principal_id: ident.principal_id.clone().unwrap_or_default(),
                resource_id: view.resource_id.clone(),
            });
        }
        for id in &ident.user_assigned_identities {
            if let Some(u) = ws.index.uami(id) {
                let u = &ws.world.user_assigned_identities[u];
                cands.push(Candidate {
                    system: false,
                    client_id: u.client_id.clone().unwrap_or_default(),
                    principal_id: u.principal_id.clone().unwrap_or_default(),
                    resource_id: u.id(),
                });
            }
        }
        let chosen = match imds::select(&cands, &tq.selector) {
            Ok(c) => c,
            Err(e) => return err(e),
        };
        let tenant_idx = ws.index.tenant(&view.tenant);
        if let Some(t) = tenant_idx
            && let Err(e) = crate::entra::check_resource(&ws.world, &ws.index, t, &tq.resource)
        {
            let body = e.body(&super::guid(), &super::guid(), now);
            return Resp::json(400, &body)
                .header("server", SERVER)
                .note(format!("AADSTS{}", e.code));
        }
        let (version, audience) = crate::entra::token_format(&ws.world, &ws.index, &tq.resource);
        (
            Principal {
                tenant_id: view.tenant.clone(),
                app_id: chosen.client_id.clone(),
                object_id: chosen.principal_id.clone(),
                mirid: Some(chosen.resource_id.clone()),
                acr: "2",
            },
            version,
            audience,
        )
    };
    let lifetime = sim.state.settings.read().imds_token_lifetime_secs;
    let t = sim.issue_token(
        &principal,
        &audience,
        version,
        "login.microsoftonline.com",
        lifetime,
        now,
    );
    let body = imds::token_json(
        &t.token,
        &principal.app_id,
        t.expires_on,
        now,
        t.not_before,
        &tq.resource,
    );
    let mut resp = Resp::raw_json(200, body).header("server", SERVER);
    resp.note = principal.app_id;
    resp
}
