//! Parsing and normalization: defaults, derived IDs and cross-reference checks.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::*;
use crate::armid;

/// Validate a federated identity credential as ARM and Graph do; returns the message of the first problem.
pub fn validate_fic(f: &FederatedCredential) -> Result<(), String> {
    let n = &f.name;
    let first_ok = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if n.len() < 3
        || n.len() > 120
        || !first_ok
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "The federated identity credential name '{n}' is invalid. The name must be 3 to 120 characters long, start with a letter or a number, and contain only letters, numbers, hyphens and underscores."
        ));
    }
    if f.issuer.is_empty() || f.issuer.len() > 600 {
        return Err("The issuer must be between 1 and 600 characters long.".into());
    }
    if !f.issuer.starts_with("https://") {
        return Err(format!(
            "The issuer '{}' is invalid. The issuer must be a valid URL that uses the https scheme.",
            f.issuer
        ));
    }
    if f.subject.is_empty() || f.subject.len() > 600 {
        return Err("The subject must be between 1 and 600 characters long.".into());
    }
    if f.audiences.len() != 1 {
        return Err("Exactly one audience is required.".into());
    }
    if f.audiences[0].is_empty() || f.audiences[0].len() > 600 {
        return Err("The audience must be between 1 and 600 characters long.".into());
    }
    if f.description.as_ref().is_some_and(|d| d.len() > 600) {
        return Err("The description must be at most 600 characters long.".into());
    }
    Ok(())
}

fn check_fics(ctx: &str, fics: &mut [FederatedCredential]) -> Result<(), WorldError> {
    if fics.len() > MAX_FICS {
        return err(format!(
            "{ctx}: at most {MAX_FICS} federated identity credentials are allowed"
        ));
    }
    let mut names = HashSet::new();
    let mut pairs = HashSet::new();
    for f in fics.iter_mut() {
        if f.audiences.is_empty() {
            f.audiences.push(TOKEN_EXCHANGE_AUDIENCE.to_string());
        }
        validate_fic(f).map_err(|m| WorldError(format!("{ctx}: {m}")))?;
        if !names.insert(f.name.to_ascii_lowercase()) {
            return err(format!(
                "{ctx}: duplicate federated identity credential '{}'",
                f.name
            ));
        }
        if !pairs.insert((f.issuer.clone(), f.subject.clone())) {
            return err(format!(
                "{ctx}: issuer and subject combination already exists ({}, {})",
                f.issuer, f.subject
            ));
        }
    }
    Ok(())
}

fn check_guid(
    ctx: &str,
    field: &str,
    v: &mut Option<String>,
    seed: &str,
) -> Result<(), WorldError> {
    match v {
        Some(s) => {
            if !armid::is_guid(s) {
                return err(format!("{ctx}: {field} '{s}' is not a GUID"));
            }
            *s = s.to_ascii_lowercase();
        }
        None => *v = Some(armid::derived_guid(seed)),
    }
    Ok(())
}

fn check_name(ctx: &str, name: &str) -> Result<(), WorldError> {
    if !armid::valid_name(name) {
        return err(format!("{ctx}: invalid name '{name}'"));
    }
    Ok(())
}

/// A 32-hex-digit secret version derived from a seed.
pub fn derived_version(seed: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `name` is a valid Key Vault object name.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl World {
    /// Parse a world from a JSON value (what YAML and JSON files and the control API decode into).
    pub fn from_value(v: Value) -> Result<World, WorldError> {
        serde_json::from_value(v).map_err(|e| WorldError(format!("invalid world: {e}")))
    }

    /// Parse YAML or JSON text (YAML is a superset; both go through serde-saphyr).
    pub fn from_text(text: &str) -> Result<World, WorldError> {
        let v: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| WorldError(format!("invalid JSON: {e}")))?
        } else {
            serde_saphyr::from_str(text).map_err(|e| WorldError(format!("invalid YAML: {e}")))?
        };
        World::from_value(if v.is_null() {
            Value::Object(Default::default())
        } else {
            v
        })
    }

    /// Fill defaults, derive IDs, check references. Idempotent.
    pub fn normalize(mut self) -> Result<World, WorldError> {
        // Tenants.
        let mut seen = HashSet::new();
        for (i, t) in self.tenants.iter_mut().enumerate() {
            let ctx = format!("tenants[{i}]");
            if !armid::is_guid(&t.id) {
                return err(format!("{ctx}: id '{}' is not a GUID", t.id));
            }
            t.id = t.id.to_ascii_lowercase();
            for d in t.domains.iter_mut() {
                *d = d.to_ascii_lowercase();
                if !d.contains('.') {
                    return err(format!("{ctx}: domain '{d}' is not a DNS name"));
                }
            }
            if !seen.insert(t.id.clone()) {
                return err(format!("{ctx}: duplicate tenant {}", t.id));
            }
        }
        let tenant_ids: Vec<String> = self.tenants.iter().map(|t| t.id.clone()).collect();
        let only_tenant = (tenant_ids.len() == 1).then(|| tenant_ids[0].clone());
        let resolve_tenant = |ctx: &str, v: &mut Option<String>| -> Result<(), WorldError> {
            match v {
                Some(t) => {
                    let t2 = t.to_ascii_lowercase();
                    if !tenant_ids.contains(&t2) {
                        return err(format!("{ctx}: unknown tenant '{t}'"));
                    }
                    *t = t2;
                }
                None => match &only_tenant {
                    Some(t) => *v = Some(t.clone()),
                    None => {
                        return err(format!(
                            "{ctx}: tenantId is required (there is not exactly one tenant)"
                        ));
                    }
                },
            }
            Ok(())
        };

        // Subscriptions.
        let mut seen = HashSet::new();
        for (i, s) in self.subscriptions.iter_mut().enumerate() {
            let ctx = format!("subscriptions[{i}]");
            check_name(&ctx, &s.id)?;
            if armid::is_guid(&s.id) {
                s.id = s.id.to_ascii_lowercase();
            }
            resolve_tenant(&ctx, &mut s.tenant_id)?;
            if !seen.insert(s.id.to_ascii_lowercase()) {
                return err(format!("{ctx}: duplicate subscription {}", s.id));
            }
        }
        let subs: Vec<String> = self.subscriptions.iter().map(|s| s.id.clone()).collect();

        // Resource groups.
        let mut seen = HashSet::new();
        for (i, rg) in self.resource_groups.iter_mut().enumerate() {
            let ctx = format!("resourceGroups[{i}]");
            check_name(&ctx, &rg.name)?;
            rg.subscription_id = Some(resolve_sub(&ctx, &subs, rg.subscription_id.take())?);
            rg.location
                .get_or_insert_with(|| DEFAULT_LOCATION.to_string());
            let key = (
                rg.subscription_id
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                rg.name.to_ascii_lowercase(),
            );
            if !seen.insert(key) {
                return err(format!("{ctx}: duplicate resource group {}", rg.name));
            }
        }

        // Placement of every resource (subscription, resource group, location).
        let mut rgs = std::mem::take(&mut self.resource_groups);
        let mut place = |ctx: &str,
                         sub: &mut Option<String>,
                         rg: &mut Option<String>,
                         loc: &mut Option<String>|
         -> Result<(), WorldError> {
            let s = resolve_sub(ctx, &subs, sub.take())?;
            let g = match rg.take() {
                Some(g) => g,
                None => {
                    let in_sub: Vec<&ResourceGroup> = rgs
                        .iter()
                        .filter(|r| r.subscription_id.as_deref() == Some(s.as_str()))
                        .collect();
                    if in_sub.len() == 1 {
                        in_sub[0].name.clone()
                    } else {
                        return err(format!(
                            "{ctx}: resourceGroup is required (subscription {s} has {} resource groups)",
                            in_sub.len()
                        ));
                    }
                }
            };
            check_name(ctx, &g)?;
            let existing = rgs.iter().find(|r| {
                r.subscription_id
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&s))
                    && r.name.eq_ignore_ascii_case(&g)
            });
            let rg_loc = match existing {
                Some(r) => r
                    .location
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LOCATION.into()),
                None => {
                    let l = loc.clone().unwrap_or_else(|| DEFAULT_LOCATION.into());
                    rgs.push(ResourceGroup {
                        subscription_id: Some(s.clone()),
                        name: g.clone(),
                        location: Some(l.clone()),
                    });
                    l
                }
            };
            loc.get_or_insert(rg_loc);
            *sub = Some(s);
            *rg = Some(g);
            Ok(())
        };

        for (i, u) in self.user_assigned_identities.iter_mut().enumerate() {
            let ctx = format!("userAssignedIdentities[{i}]");
            check_name(&ctx, &u.name)?;
            place(
                &ctx,
                &mut u.subscription_id,
                &mut u.resource_group,
                &mut u.location,
            )?;
            let id = armid::key(&u.id());
            check_guid(&ctx, "clientId", &mut u.client_id, &format!("client:{id}"))?;
            check_guid(
                &ctx,
                "principalId",
                &mut u.principal_id,
                &format!("principal:{id}"),
            )?;
            check_fics(&ctx, &mut u.federated_identity_credentials)?;
        }
        for (i, v) in self.virtual_machines.iter_mut().enumerate() {
            let ctx = format!("virtualMachines[{i}]");
            check_name(&ctx, &v.name)?;
            place(
                &ctx,
                &mut v.subscription_id,
                &mut v.resource_group,
                &mut v.location,
            )?;
            let id = armid::key(&v.id());
            v.node_name.get_or_insert_with(|| v.name.clone());
            check_guid(&ctx, "vmId", &mut v.vm_id, &format!("vmid:{id}"))?;
            v.vm_size
                .get_or_insert_with(|| "Standard_D2s_v3".to_string());
        }
        for (i, s) in self.virtual_machine_scale_sets.iter_mut().enumerate() {
            let ctx = format!("virtualMachineScaleSets[{i}]");
            check_name(&ctx, &s.name)?;
            place(
                &ctx,
                &mut s.subscription_id,
                &mut s.resource_group,
                &mut s.location,
            )?;
            let id = armid::key(&s.id());
            s.vm_size
                .get_or_insert_with(|| "Standard_D2s_v3".to_string());
            let mut ids = HashSet::new();
            for (j, inst) in s.instances.iter_mut().enumerate() {
                let ictx = format!("{ctx}.instances[{j}]");
                let iid = inst
                    .instance_id
                    .get_or_insert_with(|| j.to_string())
                    .clone();
                if iid.is_empty() || !iid.chars().all(|c| c.is_ascii_digit()) {
                    return err(format!("{ictx}: instanceId '{iid}' must be a number"));
                }
                if !ids.insert(iid.clone()) {
                    return err(format!("{ictx}: duplicate instanceId {iid}"));
                }
                let digits = iid.parse::<u64>().unwrap_or(0);
                inst.node_name
                    .get_or_insert_with(|| format!("{}{digits:06}", s.name));
                check_guid(&ictx, "vmId", &mut inst.vm_id, &format!("vmid:{id}/{iid}"))?;
            }
        }
        for (i, kv) in self.key_vaults.iter_mut().enumerate() {
            let ctx = format!("keyVaults[{i}]");
            let n = &kv.name;
            if n.len() < 3
                || n.len() > 24
                || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return err(format!(
                    "{ctx}: vault name '{n}' must be 3-24 characters of letters, digits and hyphens"
                ));
            }
            place(
                &ctx,
                &mut kv.subscription_id,
                &mut kv.resource_group,
                &mut kv.location,
            )?;
        }
        self.resource_groups = rgs;

        // Subscription tenants for vaults.
        let sub_tenant: HashMap<String, String> = self
            .subscriptions
            .iter()
            .map(|s| {
                (
                    s.id.to_ascii_lowercase(),
                    s.tenant_id.clone().unwrap_or_default(),
                )
            })
            .collect();
        let mut vault_names = HashSet::new();
        for (i, kv) in self.key_vaults.iter_mut().enumerate() {
            let ctx = format!("keyVaults[{i}]");
            if !vault_names.insert(kv.name.to_ascii_lowercase()) {
                return err(format!("{ctx}: duplicate vault name {}", kv.name));
            }
            match &mut kv.tenant_id {
                Some(t) => {
                    *t = t.to_ascii_lowercase();
                    if !self.tenants.iter().any(|x| &x.id == t) {
                        return err(format!("{ctx}: unknown tenant '{t}'"));
                    }
                }
                None => {
                    kv.tenant_id = sub_tenant
                        .get(
                            &kv.subscription_id
                                .clone()
                                .unwrap_or_default()
                                .to_ascii_lowercase(),
                        )
                        .cloned()
                }
            }
            let mut versions = HashSet::new();
            for (j, s) in kv.secrets.iter_mut().enumerate() {
                let sctx = format!("{ctx}.secrets[{j}]");
                if !valid_secret_name(&s.name) {
                    return err(format!("{sctx}: invalid secret name '{}'", s.name));
                }
                let v = s
                    .version
                    .get_or_insert_with(|| {
                        derived_version(&format!("{}/{}/{j}/{}", kv.name, s.name, s.value))
                    })
                    .to_ascii_lowercase();
                if v.len() != 32 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                    return err(format!("{sctx}: version '{v}' must be 32 hex digits"));
                }
                s.version = Some(v.clone());
                if !versions.insert((s.name.to_ascii_lowercase(), v)) {
                    return err(format!("{sctx}: duplicate secret version"));
                }
                s.created.get_or_insert(1_700_000_000);
            }
        }

        // Applications.
        let mut app_ids = HashSet::new();
        for (i, a) in self.applications.iter_mut().enumerate() {
            let ctx = format!("applications[{i}]");
            if a.display_name.is_empty() {
                return err(format!("{ctx}: displayName is required"));
            }
            resolve_tenant(&ctx, &mut a.tenant_id)?;
            let t = a.tenant_id.clone().unwrap_or_default();
            check_guid(
                &ctx,
                "appId",
                &mut a.app_id,
                &format!("app:{t}:{}", a.display_name),
            )?;
            let app = a.app_id.clone().unwrap_or_default();
            check_guid(&ctx, "objectId", &mut a.object_id, &format!("sp:{t}:{app}"))?;
            if !app_ids.insert((t, app.clone())) {
                return err(format!("{ctx}: duplicate appId {app}"));
            }
            for (j, s) in a.secrets.iter().enumerate() {
                if s.value.is_empty() {
                    return err(format!("{ctx}.secrets[{j}]: value is required"));
                }
                if let Some(e) = &s.expires_on
                    && e.parse::<jiff::Timestamp>().is_err()
                {
                    return err(format!(
                        "{ctx}.secrets[{j}]: expiresOn '{e}' is not RFC 3339"
                    ));
                }
            }
            for (j, c) in a.certificates.iter().enumerate() {
                CertInfo::from_pem(&c.pem)
                    .map_err(|e| WorldError(format!("{ctx}.certificates[{j}]: {e}")))?;
            }
            if let Some(v) = a.access_token_version
                && v != 1
                && v != 2
            {
                return err(format!("{ctx}: accessTokenVersion must be 1 or 2"));
            }
            check_fics(&ctx, &mut a.federated_identity_credentials)?;
        }

        // Identity references of VMs and scale sets.
        let uamis: Vec<(String, String)> = self
            .user_assigned_identities
            .iter()
            .map(|u| (u.id(), u.name.clone()))
            .collect();
        let mut dup = HashSet::new();
        for (id, _) in &uamis {
            if !dup.insert(armid::key(id)) {
                return err(format!("duplicate user-assigned identity {id}"));
            }
        }
        let resolve_uami = |ctx: &str, r: &str| -> Result<String, WorldError> {
            if r.starts_with('/') {
                uamis
                    .iter()
                    .find(|(id, _)| armid::eq(id, r))
                    .map(|(id, _)| id.clone())
                    .ok_or_else(|| {
                        WorldError(format!("{ctx}: unknown user-assigned identity '{r}'"))
                    })
            } else {
                let m: Vec<&(String, String)> = uamis
                    .iter()
                    .filter(|(_, n)| n.eq_ignore_ascii_case(r))
                    .collect();
                match m.as_slice() {
                    [one] => Ok(one.0.clone()),
                    [] => err(format!("{ctx}: unknown user-assigned identity '{r}'")),
                    _ => err(format!(
                        "{ctx}: identity name '{r}' is ambiguous; use its resource ID"
                    )),
                }
            }
        };
        let mut nodes = HashSet::new();
        for (i, v) in self.virtual_machines.iter_mut().enumerate() {
            let ctx = format!("virtualMachines[{i}]");
            let id = armid::key(&v.id());
            normalize_identity(&ctx, &mut v.identity, &id, &resolve_uami)?;
            let node = v.node_name.clone().unwrap_or_default();
            if !nodes.insert(node.clone()) {
                return err(format!("{ctx}: duplicate node name {node}"));
            }
        }
        for (i, s) in self.virtual_machine_scale_sets.iter_mut().enumerate() {
            let ctx = format!("virtualMachineScaleSets[{i}]");
            let id = armid::key(&s.id());
            normalize_identity(&ctx, &mut s.identity, &id, &resolve_uami)?;
            for inst in &s.instances {
                let node = inst.node_name.clone().unwrap_or_default();
                if !nodes.insert(node.clone()) {
                    return err(format!("{ctx}: duplicate node name {node}"));
                }
            }
        }
        let mut seen = HashSet::new();
        for v in &self.virtual_machines {
            if !seen.insert(armid::key(&v.id())) {
                return err(format!("duplicate virtual machine {}", v.id()));
            }
        }
        for s in &self.virtual_machine_scale_sets {
            if !seen.insert(armid::key(&s.id())) {
                return err(format!("duplicate scale set {}", s.id()));
            }
        }

        // Role assignments.
        for i in 0..self.role_assignments.len() {
            let ctx = format!("roleAssignments[{i}]");
            let mut ra = self.role_assignments[i].clone();
            let role = match (&ra.role_definition_name, &ra.role_definition_id) {
                (Some(n), _) => crate::rbac::role_by_name(n),
                (None, Some(id)) => crate::rbac::role_by_id(id),
                (None, None) => None,
            }
            .ok_or_else(|| {
                WorldError(format!(
                    "{ctx}: unknown role (roleDefinitionName or roleDefinitionId of a supported built-in role is required)"
                ))
            })?;
            ra.role_definition_name = Some(role.name.to_string());
            ra.role_definition_id = Some(role.id.to_string());
            match (&ra.principal_id, &ra.principal_name) {
                (Some(p), _) => {
                    if !armid::is_guid(p) {
                        return err(format!("{ctx}: principalId '{p}' is not a GUID"));
                    }
                    ra.principal_id = Some(p.to_ascii_lowercase());
                }
                (None, Some(n)) => ra.principal_id = Some(self.principal_by_name(&ctx, n)?),
                (None, None) => {
                    return err(format!("{ctx}: principalId or principalName is required"));
                }
            }
            let scope = ra.scope.trim_end_matches('/');
            ra.scope = if scope.is_empty() {
                "/".into()
            } else {
                scope.to_string()
            };
            if !ra.scope.starts_with('/') {
                return err(format!("{ctx}: scope '{}' must start with '/'", ra.scope));
            }
            if ra.name.is_none() {
                ra.name = Some(armid::derived_guid(&format!(
                    "ra:{}:{}:{}",
                    ra.principal_id.clone().unwrap_or_default(),
                    role.id,
                    ra.scope.to_ascii_lowercase()
                )));
            }
            self.role_assignments[i] = ra;
        }
        for r in self.resources.iter_mut() {
            *r = r.trim().to_string();
        }
        self.check_unique_principals()?;
        Ok(self)
    }

    /// Principals are found by their IDs: two that shared a client ID or an object ID would share each other's
    /// tokens and role assignments, so a world that declares such a pair is refused.
    fn check_unique_principals(&self) -> Result<(), WorldError> {
        let mut client_ids: HashMap<String, String> = HashMap::new();
        let mut object_ids: HashMap<String, String> = HashMap::new();
        let claim =
            |map: &mut HashMap<String, String>, id: &Option<String>, who: String, what: &str| {
                let Some(id) = id else { return Ok(()) };
                match map.insert(id.to_ascii_lowercase(), who.clone()) {
                    Some(other) => err(format!("{who}: {what} '{id}' is already used by {other}")),
                    None => Ok(()),
                }
            };
        for (i, u) in self.user_assigned_identities.iter().enumerate() {
            let who = format!("userAssignedIdentities[{i}] ({})", u.name);
            claim(&mut client_ids, &u.client_id, who.clone(), "clientId")?;
            claim(&mut object_ids, &u.principal_id, who, "principalId")?;
        }
        for (i, a) in self.applications.iter().enumerate() {
            let who = format!("applications[{i}] ({})", a.display_name);
            claim(&mut client_ids, &a.app_id, who.clone(), "appId")?;
            claim(&mut object_ids, &a.object_id, who, "objectId")?;
        }
        for (i, v) in self.virtual_machines.iter().enumerate() {
            claim(
                &mut object_ids,
                &v.identity.principal_id,
                format!("virtualMachines[{i}] ({})", v.name),
                "principalId",
            )?;
        }
        for (i, v) in self.virtual_machine_scale_sets.iter().enumerate() {
            let who = format!("virtualMachineScaleSets[{i}] ({})", v.name);
            claim(
                &mut object_ids,
                &v.identity.principal_id,
                who,
                "principalId",
            )?;
        }
        Ok(())
    }

    fn principal_by_name(&self, ctx: &str, n: &str) -> Result<String, WorldError> {
        let mut found: Vec<String> = Vec::new();
        for u in &self.user_assigned_identities {
            if u.name.eq_ignore_ascii_case(n) || armid::eq(&u.id(), n) {
                found.extend(u.principal_id.clone());
            }
        }
        for a in &self.applications {
            if a.display_name == n {
                found.extend(a.object_id.clone());
            }
        }
        for v in &self.virtual_machines {
            if (v.name.eq_ignore_ascii_case(n) || armid::eq(&v.id(), n))
                && v.identity.kind().system()
            {
                found.extend(v.identity.principal_id.clone());
            }
        }
        for s in &self.virtual_machine_scale_sets {
            if (s.name.eq_ignore_ascii_case(n) || armid::eq(&s.id(), n))
                && s.identity.kind().system()
            {
                found.extend(s.identity.principal_id.clone());
            }
        }
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => err(format!("{ctx}: no principal named '{n}'")),
            _ => err(format!(
                "{ctx}: principal name '{n}' is ambiguous; use principalId"
            )),
        }
    }

    /// The tenant of a subscription.
    pub fn tenant_of_subscription(&self, sub: &str) -> Option<&str> {
        self.subscriptions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(sub))
            .and_then(|s| s.tenant_id.as_deref())
    }
}

fn resolve_sub(ctx: &str, subs: &[String], v: Option<String>) -> Result<String, WorldError> {
    match v {
        Some(s) => subs
            .iter()
            .find(|x| x.eq_ignore_ascii_case(&s))
            .cloned()
            .ok_or_else(|| WorldError(format!("{ctx}: unknown subscription '{s}'"))),
        None if subs.len() == 1 => Ok(subs[0].clone()),
        None => err(format!(
            "{ctx}: subscriptionId is required (there is not exactly one subscription)"
        )),
    }
}

fn normalize_identity(
    ctx: &str,
    ident: &mut ResourceIdentity,
    resource_key: &str,
    resolve: &dyn Fn(&str, &str) -> Result<String, WorldError>,
) -> Result<(), WorldError> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for r in &ident.user_assigned_identities {
        let id = resolve(ctx, r)?;
        if seen.insert(armid::key(&id)) {
            ids.push(id);
        }
    }
    ident.user_assigned_identities = ids;
    let kind = ident.kind.unwrap_or_else(|| {
        IdentityType::from_flags(
            ident.principal_id.is_some(),
            !ident.user_assigned_identities.is_empty(),
        )
    });
    if !kind.user() && !ident.user_assigned_identities.is_empty() {
        return err(format!(
            "{ctx}: identity type {} does not allow userAssignedIdentities",
            kind.as_str()
        ));
    }
    if kind.user() && ident.user_assigned_identities.is_empty() {
        return err(format!(
            "{ctx}: identity type {} needs at least one user-assigned identity",
            kind.as_str()
        ));
    }
    ident.kind = Some(kind);
    if kind.system() {
        check_guid(
            ctx,
            "identity.principalId",
            &mut ident.principal_id,
            &format!("sys-principal:{resource_key}"),
        )?;
        check_guid(
            ctx,
            "identity.clientId",
            &mut ident.client_id,
            &format!("sys-client:{resource_key}"),
        )?;
    } else {
        ident.principal_id = None;
        ident.client_id = None;
    }
    Ok(())
}
