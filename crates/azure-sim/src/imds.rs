//! IMDS (Azure Instance Metadata Service): the decisions of the token and instance endpoints, without IO.
//!
//! Token requests (`GET /metadata/identity/oauth2/token`) are checked in the order IMDS checks them: the
//! `Metadata: true` header (exact value), `api-version`, `resource`, and at most one identity selector
//! (`client_id`, `object_id`, `msi_res_id` or its alias `mi_res_id`). Identity selection then follows IMDS:
//! without a selector the system-assigned identity wins, else the only user-assigned one, else
//! "Multiple user assigned identities exist"; with a selector the identity must be assigned to this VM (or its
//! scale set), otherwise "Identity not found". Error bodies are the real ones:
//! `{"error":"invalid_request","error_description":"..."}` with status 400.
//!
//! The token JSON carries every number as a string (`expires_in`, `expires_on`, `ext_expires_in`,
//! `not_before`), plus `client_id`, `resource` and `token_type`, in IMDS's field order.

use serde_json::{Value, json};

use crate::form::Params;

/// IMDS API versions (instance metadata and identity), newest first, from the IMDS documentation.
pub const API_VERSIONS: &[&str] = &[
    "2025-04-07",
    "2024-07-17",
    "2024-03-15",
    "2023-11-15",
    "2023-07-01",
    "2021-12-13",
    "2021-11-15",
    "2021-11-01",
    "2021-10-01",
    "2021-08-01",
    "2021-05-01",
    "2021-03-01",
    "2021-02-01",
    "2021-01-01",
    "2020-12-01",
    "2020-10-01",
    "2020-09-01",
    "2020-07-15",
    "2020-06-01",
    "2019-11-01",
    "2019-08-15",
    "2019-08-01",
    "2019-06-04",
    "2019-06-01",
    "2019-04-30",
    "2019-03-11",
    "2019-02-01",
    "2018-10-01",
    "2018-04-02",
    "2018-02-01",
    "2017-12-01",
    "2017-10-01",
    "2017-08-01",
    "2017-04-02",
    "2017-03-01",
];

/// The first API version of the managed identity token endpoint.
pub const FIRST_IDENTITY_VERSION: &str = "2018-02-01";

/// What IMDS answers instead of a token or a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImdsError {
    /// The `Metadata: true` header is missing or has another value.
    #[error("Required metadata header not specified")]
    MissingMetadata,
    /// No `api-version` on the token endpoint.
    #[error("Required query variable 'api-version' is missing")]
    MissingApiVersion,
    /// An unknown `api-version` on the token endpoint.
    #[error("Invalid 'api-version' requested")]
    BadApiVersion,
    /// No `resource`.
    #[error("Required audience parameter not specified")]
    MissingResource,
    /// More than one of client_id / object_id / msi_res_id.
    #[error("Only one of client_id, object_id, msi_res_id, mi_res_id may be specified")]
    ConflictingSelectors,
    /// No matching identity on this VM.
    #[error("Identity not found")]
    IdentityNotFound,
    /// Several user-assigned identities and no selector.
    #[error(
        "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"
    )]
    MultipleIdentities,
    /// Instance endpoint without `Metadata: true`.
    #[error("Bad request. Required metadata header not specified")]
    InstanceMissingMetadata,
    /// Instance endpoint without or with an unknown `api-version`.
    #[error(
        "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds"
    )]
    InstanceApiVersion,
    /// Unknown path or metadata element.
    #[error("Not found")]
    NotFound,
    /// Method other than GET.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// The node has no VM in the world (removed after the listener started).
    #[error("Instance metadata is unavailable for this node")]
    NoInstance,
}

impl ImdsError {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ImdsError::NotFound => 404,
            ImdsError::MethodNotAllowed => 405,
            ImdsError::NoInstance => 500,
            _ => 400,
        }
    }

    /// The JSON body IMDS sends.
    pub fn body(&self) -> Value {
        match self {
            ImdsError::InstanceMissingMetadata
            | ImdsError::NotFound
            | ImdsError::MethodNotAllowed => {
                json!({"error": self.to_string()})
            }
            ImdsError::InstanceApiVersion => json!({
                "error": self.to_string(),
                "newest-versions": [API_VERSIONS[0], API_VERSIONS[1], API_VERSIONS[2]],
            }),
            ImdsError::NoInstance => {
                json!({"error": "internal_error", "error_description": self.to_string()})
            }
            _ => json!({"error": "invalid_request", "error_description": self.to_string()}),
        }
    }
}

/// How the caller picked an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Nothing: the default identity.
    Default,
    /// `client_id`.
    ClientId(String),
    /// `object_id`.
    ObjectId(String),
    /// `msi_res_id` / `mi_res_id`.
    ResourceId(String),
}

/// A parsed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuery {
    /// `api-version`.
    pub api_version: String,
    /// `resource` (the token audience, as given).
    pub resource: String,
    /// Identity selector.
    pub selector: Selector,
}

/// Whether the `Metadata` header value satisfies IMDS (exactly `true`).
pub fn metadata_ok(header: Option<&[u8]>) -> bool {
    header == Some(b"true")
}

/// Check and parse a token request.
pub fn parse_token_query(metadata: Option<&[u8]>, q: &Params) -> Result<TokenQuery, ImdsError> {
    if !metadata_ok(metadata) {
        return Err(ImdsError::MissingMetadata);
    }
    let v = q.get_ci("api-version").unwrap_or("");
    if v.is_empty() {
        return Err(ImdsError::MissingApiVersion);
    }
    if !API_VERSIONS.contains(&v) || v < FIRST_IDENTITY_VERSION {
        return Err(ImdsError::BadApiVersion);
    }
    let resource = q.non_empty("resource").ok_or(ImdsError::MissingResource)?;
    let mut sels = Vec::new();
    if let Some(c) = q.non_empty("client_id") {
        sels.push(Selector::ClientId(c.to_string()));
    }
    if let Some(o) = q.non_empty("object_id") {
        sels.push(Selector::ObjectId(o.to_string()));
    }
    // IMDS reads msi_res_id, falling back to mi_res_id.
    if let Some(r) = q
        .non_empty("msi_res_id")
        .or_else(|| q.non_empty("mi_res_id"))
    {
        sels.push(Selector::ResourceId(r.to_string()));
    }
    if sels.len() > 1 {
        return Err(ImdsError::ConflictingSelectors);
    }
    Ok(TokenQuery {
        api_version: v.to_string(),
        resource: resource.to_string(),
        selector: sels.pop().unwrap_or(Selector::Default),
    })
}

/// An identity available on a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// System-assigned (else user-assigned).
    pub system: bool,
    /// Client (app) ID.
    pub client_id: String,
    /// Object (principal) ID.
    pub principal_id: String,
    /// For user-assigned: the identity's resource ID; for system-assigned: the VM or scale set ID
    /// (what tokens carry as `xms_mirid`).
    pub resource_id: String,
}

/// Pick the identity a request names.
pub fn select<'a>(cands: &'a [Candidate], sel: &Selector) -> Result<&'a Candidate, ImdsError> {
    match sel {
        Selector::Default => {
            if let Some(c) = cands.iter().find(|c| c.system) {
                return Ok(c);
            }
            let users: Vec<&Candidate> = cands.iter().filter(|c| !c.system).collect();
            match users.as_slice() {
                [one] => Ok(one),
                [] => Err(ImdsError::IdentityNotFound),
                _ => Err(ImdsError::MultipleIdentities),
            }
        }
        Selector::ClientId(id) => cands
            .iter()
            .find(|c| c.client_id.eq_ignore_ascii_case(id))
            .ok_or(ImdsError::IdentityNotFound),
        Selector::ObjectId(id) => cands
            .iter()
            .find(|c| c.principal_id.eq_ignore_ascii_case(id))
            .ok_or(ImdsError::IdentityNotFound),
        Selector::ResourceId(id) => cands
            .iter()
            .find(|c| !c.system && crate::armid::eq(&c.resource_id, id))
            .ok_or(ImdsError::IdentityNotFound),
    }
}

/// The token JSON exactly as IMDS writes it.
pub fn token_json(
    access_token: &str,
    client_id: &str,
    expires_on: i64,
    now: i64,
    not_before: i64,
    resource: &str,
) -> String {
    let expires_in = (expires_on - now).max(0);
    let ext = expires_in;
    let mut out = String::with_capacity(access_token.len() + 320);
    out.push_str("{\"access_token\":\"");
    out.push_str(access_token);
    out.push_str("\",\"client_id\":");
    out.push_str(&json_str(client_id));
    out.push_str(&format!(
        ",\"expires_in\":\"{expires_in}\",\"expires_on\":\"{expires_on}\",\"ext_expires_in\":\"{ext}\",\"not_before\":\"{not_before}\",\"resource\":"
    ));
    out.push_str(&json_str(resource));
    out.push_str(",\"token_type\":\"Bearer\"}");
    out
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// What the instance document describes.
#[derive(Debug, Clone, Default)]
pub struct InstanceInfo {
    /// VM name (`<scale set>_<instance id>` for scale set instances).
    pub name: String,
    /// Scale set name (empty for VMs).
    pub vm_scale_set_name: String,
    /// Resource group.
    pub resource_group: String,
    /// Subscription.
    pub subscription_id: String,
    /// Location.
    pub location: String,
    /// Resource ID of the VM or scale set VM.
    pub resource_id: String,
    /// vmId.
    pub vm_id: String,
    /// VM size.
    pub vm_size: String,
    /// Computer name (the node name).
    pub computer_name: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Private IP.
    pub private_ip: String,
}

/// The `/metadata/instance` document (all leaves are strings, as IMDS returns them).
pub fn instance_document(i: &InstanceInfo) -> Value {
    let tags = i
        .tags
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(";");
    let tags_list: Vec<Value> = i
        .tags
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let fault = (fnv(&i.vm_id) % 3).to_string();
    let update = (fnv(&i.vm_id) % 5).to_string();
    json!({
        "compute": {
            "azEnvironment": "AzurePublicCloud",
            "customData": "",
            "evictionPolicy": "",
            "isHostCompatibilityLayerVm": "false",
            "licenseType": "",
            "location": i.location,
            "name": i.name,
            "offer": "0001-com-ubuntu-server-jammy",
            "osProfile": {"adminUsername": "azureuser", "computerName": i.computer_name, "disablePasswordAuthentication": "true"},
            "osType": "Linux",
            "placementGroupId": "",
            "plan": {"name": "", "product": "", "publisher": ""},
            "platformFaultDomain": fault,
            "platformUpdateDomain": update,
            "priority": "",
            "provider": "Microsoft.Compute",
            "publicKeys": [],
            "publisher": "canonical",
            "resourceGroupName": i.resource_group,
            "resourceId": i.resource_id,
            "securityProfile": {"secureBootEnabled": "false", "virtualTpmEnabled": "false", "encryptionAtHost": "false", "securityType": ""},
            "sku": "22_04-lts-gen2",
            "subscriptionId": i.subscription_id,
            "tags": tags,
            "tagsList": tags_list,
            "userData": "",
            "version": "latest",
            "vmId": i.vm_id,
            "vmScaleSetName": i.vm_scale_set_name,
            "vmSize": i.vm_size,
            "zone": ""
        },
        "network": {
            "interface": [{
                "ipv4": {
                    "ipAddress": [{"privateIpAddress": i.private_ip, "publicIpAddress": ""}],
                    "subnet": [{"address": "10.224.0.0", "prefix": "16"}]
                },
                "ipv6": {"ipAddress": []},
                "macAddress": mac(&i.vm_id)
            }]
        }
    })
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn mac(seed: &str) -> String {
    let h = fnv(seed);
    format!("000D3A{:06X}", h & 0xFF_FFFF)
}

/// Answer `GET /metadata/instance[/path...]`: check the header and the version, then walk into the document.
/// Returns the JSON value, or the text of a leaf when `format=text`.
pub fn instance_query(
    metadata: Option<&[u8]>,
    q: &Params,
    sub_path: &str,
    doc: &Value,
) -> Result<Result<Value, String>, ImdsError> {
    if !metadata_ok(metadata) {
        return Err(ImdsError::InstanceMissingMetadata);
    }
    match q.get_ci("api-version") {
        Some(v) if API_VERSIONS.contains(&v) => {}
        _ => return Err(ImdsError::InstanceApiVersion),
    }
    let mut cur = doc;
    for seg in sub_path.split('/').filter(|s| !s.is_empty()) {
        cur = match cur {
            Value::Object(m) => m.get(seg).ok_or(ImdsError::NotFound)?,
            Value::Array(a) => seg
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .ok_or(ImdsError::NotFound)?,
            _ => return Err(ImdsError::NotFound),
        };
    }
    if q.get("format") == Some("text") {
        return Ok(Err(match cur {
            Value::String(s) => s.clone(),
            Value::Object(m) => m.keys().map(|k| format!("{k}\n")).collect(),
            Value::Array(a) => (0..a.len()).map(|i| format!("{i}/\n")).collect(),
            other => other.to_string(),
        }));
    }
    Ok(Ok(cur.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Params {
        Params::parse(s.as_bytes())
    }

    #[test]
    fn token_query_checks() {
        let ok = Some(&b"true"[..]);
        type Case<'a> = (Option<&'a [u8]>, &'a str, Result<Selector, ImdsError>);
        let table: &[Case] = &[
            (
                None,
                "api-version=2018-02-01&resource=r",
                Err(ImdsError::MissingMetadata),
            ),
            (
                Some(b"True"),
                "api-version=2018-02-01&resource=r",
                Err(ImdsError::MissingMetadata),
            ),
            (ok, "resource=r", Err(ImdsError::MissingApiVersion)),
            (
                ok,
                "api-version=2017-12-01&resource=r",
                Err(ImdsError::BadApiVersion),
            ),
            (
                ok,
                "api-version=1999-01-01&resource=r",
                Err(ImdsError::BadApiVersion),
            ),
            (
                ok,
                "api-version=2018-02-01",
                Err(ImdsError::MissingResource),
            ),
            (
                ok,
                "api-version=2018-02-01&resource=",
                Err(ImdsError::MissingResource),
            ),
            (
                ok,
                "api-version=2018-02-01&resource=r",
                Ok(Selector::Default),
            ),
            (
                ok,
                "api-version=2018-02-01&resource=r&client_id=c",
                Ok(Selector::ClientId("c".into())),
            ),
            (
                ok,
                "api-version=2018-02-01&resource=r&object_id=o",
                Ok(Selector::ObjectId("o".into())),
            ),
            (
                ok,
                "api-version=2018-02-01&resource=r&mi_res_id=%2Fx",
                Ok(Selector::ResourceId("/x".into())),
            ),
            (
                ok,
                "api-version=2018-02-01&resource=r&msi_res_id=a&mi_res_id=b",
                Ok(Selector::ResourceId("a".into())),
            ),
            (
                ok,
                "api-version=2018-02-01&resource=r&client_id=c&object_id=o",
                Err(ImdsError::ConflictingSelectors),
            ),
            (
                ok,
                "API-VERSION=2019-08-01&resource=r&client_id=",
                Ok(Selector::Default),
            ),
        ];
        for (hdr, query, want) in table {
            let got = parse_token_query(*hdr, &q(query)).map(|t| t.selector);
            assert_eq!(&got, want, "{query}");
        }
    }

    #[test]
    fn selection() {
        let sys = Candidate {
            system: true,
            client_id: "SC".into(),
            principal_id: "SP".into(),
            resource_id: "/vm".into(),
        };
        let u1 = Candidate { system: false, client_id: "c1".into(), principal_id: "p1".into(), resource_id: "/subscriptions/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u1".into() };
        let u2 = Candidate {
            system: false,
            client_id: "c2".into(),
            principal_id: "p2".into(),
            resource_id: "/u2".into(),
        };
        let all = vec![sys.clone(), u1.clone(), u2.clone()];
        let users = vec![u1.clone(), u2.clone()];
        let cases: Vec<(&[Candidate], Selector, Result<&Candidate, ImdsError>)> = vec![
            (&all, Selector::Default, Ok(&sys)),
            (
                &users,
                Selector::Default,
                Err(ImdsError::MultipleIdentities),
            ),
            (&users[..1], Selector::Default, Ok(&u1)),
            (&[], Selector::Default, Err(ImdsError::IdentityNotFound)),
            (&all, Selector::ClientId("C2".into()), Ok(&u2)),
            (&all, Selector::ClientId("sc".into()), Ok(&sys)),
            (
                &users,
                Selector::ClientId("zz".into()),
                Err(ImdsError::IdentityNotFound),
            ),
            (&all, Selector::ObjectId("p1".into()), Ok(&u1)),
            (
                &all,
                Selector::ResourceId(u1.resource_id.to_ascii_lowercase()),
                Ok(&u1),
            ),
            (
                &all,
                Selector::ResourceId("/vm".into()),
                Err(ImdsError::IdentityNotFound),
            ),
        ];
        for (c, s, want) in cases {
            assert_eq!(select(c, &s), want, "{s:?}");
        }
    }

    #[test]
    fn token_json_shape() {
        let s = token_json("eyJ.x.y", "cid", 2000, 1000, 990, "https://vault.azure.net");
        let v: Value = serde_json::from_str(&s).expect("json");
        assert_eq!(v["expires_in"], json!("1000"));
        assert_eq!(v["expires_on"], json!("2000"));
        assert_eq!(v["ext_expires_in"], json!("1000"));
        assert_eq!(v["not_before"], json!("990"));
        assert_eq!(v["token_type"], json!("Bearer"));
        assert_eq!(v["client_id"], json!("cid"));
        assert!(s.starts_with("{\"access_token\":"));
    }

    #[test]
    fn errors_and_instance() {
        assert_eq!(
            ImdsError::MissingMetadata.body(),
            json!({"error":"invalid_request","error_description":"Required metadata header not specified"})
        );
        assert_eq!(ImdsError::InstanceApiVersion.status(), 400);
        assert_eq!(ImdsError::NotFound.status(), 404);
        let doc = instance_document(&InstanceInfo {
            name: "vm".into(),
            vm_id: "id".into(),
            tags: vec![("a".into(), "b".into())],
            ..Default::default()
        });
        let ok = Some(&b"true"[..]);
        assert_eq!(
            instance_query(ok, &q("api-version=2021-02-01"), "compute/name", &doc),
            Ok(Ok(json!("vm")))
        );
        assert_eq!(
            instance_query(
                ok,
                &q("api-version=2021-02-01&format=text"),
                "compute/tags",
                &doc
            ),
            Ok(Err("a:b".into()))
        );
        assert_eq!(
            instance_query(ok, &q("api-version=2021-02-01"), "compute/nope", &doc),
            Err(ImdsError::NotFound)
        );
        assert_eq!(
            instance_query(ok, &q(""), "", &doc),
            Err(ImdsError::InstanceApiVersion)
        );
        assert_eq!(
            instance_query(None, &q("api-version=2021-02-01"), "", &doc),
            Err(ImdsError::InstanceMissingMetadata)
        );
        assert_eq!(
            instance_query(
                ok,
                &q("api-version=2021-02-01"),
                "network/interface/0/macAddress",
                &doc
            )
            .map(|r| r.is_ok()),
            Ok(true)
        );
    }

    proptest::proptest! {
        #[test]
        fn queries_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), path in ".{0,80}") {
            let p = Params::parse(&raw);
            let _ = parse_token_query(Some(b"true"), &p);
            let doc = instance_document(&InstanceInfo::default());
            let _ = instance_query(Some(b"true"), &p, &path, &doc);
        }
    }
}
