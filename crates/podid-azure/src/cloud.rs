//! The cloud config (`/etc/kubernetes/azure.json` or the admin-secret environment variables) and the Azure
//! environment (endpoints) it names.
//!
//! # Cloud config
//! The file is YAML or JSON (cloud-provider-azure reads it with a YAML parser, so both work). Keys are matched
//! exactly first and then ASCII-case-insensitively, as Go's `encoding/json` does; unknown keys (AKS writes
//! dozens: `location`, `vnetName`, `loadBalancerSku`, ...) are ignored. String fields accept JSON numbers too;
//! `useManagedIdentityExtension` accepts a boolean or the strings `true`/`false`. A value of the wrong type is
//! an error naming the key. Without a file, [`CloudConfig::from_env`] reads the admin-secret variables.
//!
//! [`CloudConfig::validate`] checks what the controller needs before it talks to Azure: a subscription and a
//! resource group always, and a usable credential (managed identity, or a tenant and client ID with a secret
//! or a certificate).
//!
//! # Environment
//! [`Environment::from_config`] maps the `cloud` name (case-insensitive, empty meaning `AzurePublicCloud`) to
//! go-autorest's endpoint set. `AzureStackCloud` reads a go-autorest environment JSON file named by the
//! environment variable `AZURE_ENVIRONMENT_FILEPATH`; this is also how tests point the controller at azure-sim.
//! The resource of the controller's own ARM token is [`Environment::arm_resource`]: the environment's
//! `tokenAudience` when set, else its `resourceManagerEndpoint`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The environment variable naming the AzureStackCloud environment file (go-autorest's name).
pub const ENVIRONMENT_FILEPATH_VAR: &str = "AZURE_ENVIRONMENT_FILEPATH";
/// Largest cloud-config or environment file read, bytes (real ones are a few KiB).
const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Errors reading the cloud config or resolving the environment. Each names the key or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which file (`cloud config`, `environment file`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than this crate reads.
    #[error("{what} {path} is larger than {limit} bytes")]
    TooLarge {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A file is not valid YAML / JSON, or not a mapping.
    #[error("{what} {path} is not valid: {message}")]
    Parse {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key holds a value of the wrong type or an invalid value.
    #[error("invalid value for `{key}`: {message}")]
    InvalidField {
        /// The key (cloud-config or environment-file key).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A required key is missing or empty.
    #[error("`{key}` is required: {reason}")]
    Missing {
        /// The key to set.
        key: &'static str,
        /// Why it is needed.
        reason: &'static str,
    },
    /// The `cloud` name is not a known Azure environment.
    #[error(
        "`cloud`: there is no cloud environment matching the name '{name}' (use AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud, AzureGermanCloud or AzureStackCloud)"
    )]
    UnknownCloud {
        /// The name given.
        name: String,
    },
    /// `cloud` is AzureStackCloud but `AZURE_ENVIRONMENT_FILEPATH` is not set.
    #[error(
        "`cloud` is AzureStackCloud, which needs the environment variable AZURE_ENVIRONMENT_FILEPATH to name an environment JSON file"
    )]
    MissingEnvironmentFile,
}

/// The cloud config the controller authenticates and addresses ARM with.
///
/// `Debug` redacts the secret and the certificate password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudConfig {
    /// `cloud`: the Azure environment name (empty = AzurePublicCloud).
    pub cloud: String,
    /// `tenantId`.
    pub tenant_id: String,
    /// `aadClientId`: the service principal's client ID (`msi` on AKS managed-identity clusters).
    pub aad_client_id: String,
    /// `aadClientSecret`.
    pub aad_client_secret: String,
    /// `aadClientCertPath`: a PEM file with the certificate and its RSA private key.
    pub aad_client_cert_path: String,
    /// `aadClientCertPassword` (only meaningful for PKCS#12 files, which this crate does not read).
    pub aad_client_cert_password: String,
    /// `subscriptionId`.
    pub subscription_id: String,
    /// `resourceGroup`: the node resource group.
    pub resource_group: String,
    /// `vmType` (`standard` or `vmss`; informational, scale sets are recognised from the provider ID).
    pub vm_type: String,
    /// `useManagedIdentityExtension`: authenticate with the node's managed identity through IMDS.
    pub use_managed_identity_extension: bool,
    /// `userAssignedIdentityID`: client ID of the user-assigned identity to use through IMDS (empty =
    /// system-assigned).
    pub user_assigned_identity_id: String,
}

impl fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("CloudConfig")
            .field("cloud", &self.cloud)
            .field("tenant_id", &self.tenant_id)
            .field("aad_client_id", &self.aad_client_id)
            .field("aad_client_secret", &redact(&self.aad_client_secret))
            .field("aad_client_cert_path", &self.aad_client_cert_path)
            .field(
                "aad_client_cert_password",
                &redact(&self.aad_client_cert_password),
            )
            .field("subscription_id", &self.subscription_id)
            .field("resource_group", &self.resource_group)
            .field("vm_type", &self.vm_type)
            .field(
                "use_managed_identity_extension",
                &self.use_managed_identity_extension,
            )
            .field("user_assigned_identity_id", &self.user_assigned_identity_id)
            .finish()
    }
}

/// Look a key up exactly, then ASCII-case-insensitively (Go's `encoding/json` rule).
fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<String, CloudError> {
    match lookup(obj, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(CloudError::InvalidField {
            key: key.to_string(),
            message: format!("expected a string, found {}", kind_of(other)),
        }),
    }
}

fn bool_field(obj: &Map<String, Value>, key: &str) -> Result<bool, CloudError> {
    match lookup(obj, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
        Some(other) => Err(CloudError::InvalidField {
            key: key.to_string(),
            message: format!("expected true or false, found {}", kind_of(other)),
        }),
    }
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string '{}'", truncate(s, 40)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Read a small text file (bounded), stripping a UTF-8 byte-order mark.
fn read_text(path: &Path, what: &'static str) -> Result<String, CloudError> {
    let read_err = |source| CloudError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_CONFIG_FILE_BYTES {
        return Err(CloudError::TooLarge {
            what,
            path: path.to_path_buf(),
            limit: MAX_CONFIG_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|_| CloudError::Parse {
        what,
        path: path.to_path_buf(),
        message: "the file is not UTF-8 text".into(),
    })?;
    Ok(text.trim_start_matches('\u{feff}').to_string())
}

/// Parse YAML or JSON text into a mapping (empty text is an empty mapping).
fn parse_mapping(text: &str) -> Result<Map<String, Value>, String> {
    let v: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?
    };
    match v {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        other => Err(format!("expected a mapping, found {}", kind_of(&other))),
    }
}

// === impl CloudConfig ===

impl CloudConfig {
    /// Client IDs of the cluster's own identities: the kubelet / node identity used through IMDS
    /// (`userAssignedIdentityID`) and the cluster service principal (`aadClientId`, unless it is `msi`).
    #[must_use]
    pub fn cluster_client_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.user_assigned_identity_id.trim().is_empty() {
            out.push(self.user_assigned_identity_id.trim().to_string());
        }
        let sp = self.aad_client_id.trim();
        if !sp.is_empty() && !sp.eq_ignore_ascii_case("msi") {
            out.push(sp.to_string());
        }
        out
    }

    /// Read the cloud-config file (YAML or JSON).
    pub fn from_file(path: impl AsRef<Path>) -> Result<CloudConfig, CloudError> {
        let path = path.as_ref();
        let text = read_text(path, "cloud config")?;
        CloudConfig::from_text(&text).map_err(|e| match e {
            CloudError::Parse { what, message, .. } => CloudError::Parse {
                what,
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parse cloud-config text (YAML or JSON).
    pub fn from_text(text: &str) -> Result<CloudConfig, CloudError> {
        let obj = parse_mapping(text.trim_start_matches('\u{feff}')).map_err(|message| {
            CloudError::Parse {
                what: "cloud config",
                path: PathBuf::new(),
                message,
            }
        })?;
        Ok(CloudConfig {
            cloud: string_field(&obj, "cloud")?,
            tenant_id: string_field(&obj, "tenantId")?,
            aad_client_id: string_field(&obj, "aadClientId")?,
            aad_client_secret: string_field(&obj, "aadClientSecret")?,
            aad_client_cert_path: string_field(&obj, "aadClientCertPath")?,
            aad_client_cert_password: string_field(&obj, "aadClientCertPassword")?,
            subscription_id: string_field(&obj, "subscriptionId")?,
            resource_group: string_field(&obj, "resourceGroup")?,
            vm_type: string_field(&obj, "vmType")?,
            use_managed_identity_extension: bool_field(&obj, "useManagedIdentityExtension")?,
            user_assigned_identity_id: string_field(&obj, "userAssignedIdentityID")?,
        })
    }

    /// The admin-secret form: `CLOUD`, `TENANT_ID`, `CLIENT_ID`, `CLIENT_SECRET`, `SUBSCRIPTION_ID`,
    /// `RESOURCE_GROUP`, `VM_TYPE`, `USE_MSI` (case-insensitive `true`), `USER_ASSIGNED_MSI_CLIENT_ID`.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> CloudConfig {
        let get = |k: &str| lookup(k).unwrap_or_default();
        CloudConfig {
            cloud: get("CLOUD"),
            tenant_id: get("TENANT_ID"),
            aad_client_id: get("CLIENT_ID"),
            aad_client_secret: get("CLIENT_SECRET"),
            aad_client_cert_path: String::new(),
            aad_client_cert_password: String::new(),
            subscription_id: get("SUBSCRIPTION_ID"),
            resource_group: get("RESOURCE_GROUP"),
            vm_type: get("VM_TYPE"),
            use_managed_identity_extension: get("USE_MSI").eq_ignore_ascii_case("true"),
            user_assigned_identity_id: get("USER_ASSIGNED_MSI_CLIENT_ID"),
        }
    }

    /// Check that the controller can work with this config: `subscriptionId` and `resourceGroup` are set,
    /// and there is a credential (see [`crate::token`]).
    pub fn validate(&self) -> Result<(), CloudError> {
        if self.subscription_id.trim().is_empty() {
            return Err(CloudError::Missing {
                key: "subscriptionId",
                reason: "every ARM call addresses the node resource group's subscription",
            });
        }
        if self.resource_group.trim().is_empty() {
            return Err(CloudError::Missing {
                key: "resourceGroup",
                reason: "every ARM call addresses the node resource group",
            });
        }
        self.validate_credential()
    }

    /// Check only the credential part (what [`crate::TokenSource::new`] needs).
    pub fn validate_credential(&self) -> Result<(), CloudError> {
        if self.use_managed_identity_extension {
            return Ok(());
        }
        if self.tenant_id.trim().is_empty() {
            return Err(CloudError::Missing {
                key: "tenantId",
                reason: "a service principal signs in to its tenant (or set useManagedIdentityExtension: true)",
            });
        }
        if self.aad_client_id.trim().is_empty() {
            return Err(CloudError::Missing {
                key: "aadClientId",
                reason: "a service principal needs its client ID (or set useManagedIdentityExtension: true)",
            });
        }
        if self.aad_client_secret.is_empty() && self.aad_client_cert_path.trim().is_empty() {
            return Err(CloudError::Missing {
                key: "aadClientSecret",
                reason: "a service principal needs aadClientSecret or aadClientCertPath (or set useManagedIdentityExtension: true)",
            });
        }
        Ok(())
    }
}

/// The endpoints of one Azure cloud (go-autorest's `Environment`, the fields this crate uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `name`, e.g. `AzurePublicCloud`.
    pub name: String,
    /// `resourceManagerEndpoint`, e.g. `https://management.azure.com/`.
    pub resource_manager_endpoint: String,
    /// `activeDirectoryEndpoint`, e.g. `https://login.microsoftonline.com/`.
    pub active_directory_endpoint: String,
    /// `tokenAudience` (may be empty; then the resource manager endpoint is the audience).
    pub token_audience: String,
    /// `serviceManagementEndpoint` (informational).
    pub service_management_endpoint: String,
}

struct Builtin {
    keys: &'static [&'static str],
    name: &'static str,
    rm: &'static str,
    ad: &'static str,
    audience: &'static str,
    sm: &'static str,
}

/// go-autorest's built-in environments and the upper-cased names that select them.
const BUILTINS: &[Builtin] = &[
    Builtin {
        keys: &["AZUREPUBLICCLOUD", "AZURECLOUD"],
        name: "AzurePublicCloud",
        rm: "https://management.azure.com/",
        ad: "https://login.microsoftonline.com/",
        audience: "https://management.azure.com/",
        sm: "https://management.core.windows.net/",
    },
    Builtin {
        keys: &["AZURECHINACLOUD"],
        name: "AzureChinaCloud",
        rm: "https://management.chinacloudapi.cn/",
        ad: "https://login.chinacloudapi.cn/",
        audience: "https://management.chinacloudapi.cn/",
        sm: "https://management.core.chinacloudapi.cn/",
    },
    Builtin {
        keys: &["AZUREUSGOVERNMENTCLOUD", "AZUREUSGOVERNMENT"],
        name: "AzureUSGovernmentCloud",
        rm: "https://management.usgovcloudapi.net/",
        ad: "https://login.microsoftonline.us/",
        audience: "https://management.usgovcloudapi.net/",
        sm: "https://management.core.usgovcloudapi.net/",
    },
    Builtin {
        keys: &["AZUREGERMANCLOUD"],
        name: "AzureGermanCloud",
        rm: "https://management.microsoftazure.de/",
        ad: "https://login.microsoftonline.de/",
        audience: "https://management.microsoftazure.de/",
        sm: "https://management.core.cloudapi.de/",
    },
];

/// Check that an endpoint is an absolute http(s) URL with a host, and give it a trailing slash.
fn endpoint(key: &str, value: &str) -> Result<String, CloudError> {
    let v = value.trim();
    let bad = |message: String| CloudError::InvalidField {
        key: key.to_string(),
        message,
    };
    let uri: http::Uri = v
        .parse()
        .map_err(|e| bad(format!("'{}' is not a URL: {e}", truncate(v, 80))))?;
    match uri.scheme_str() {
        Some("https") | Some("http") => {}
        _ => {
            return Err(bad(format!(
                "'{}' must start with https:// (or http://)",
                truncate(v, 80)
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad(format!("'{}' has no host", truncate(v, 80))));
    }
    if uri.query().is_some() {
        return Err(bad(format!("'{}' must not have a query", truncate(v, 80))));
    }
    Ok(if v.ends_with('/') {
        v.to_string()
    } else {
        format!("{v}/")
    })
}

// === impl Environment ===

impl Environment {
    /// The environment the config's `cloud` names; `lookup` reads environment variables (for
    /// `AZURE_ENVIRONMENT_FILEPATH`).
    pub fn from_config(
        cfg: &CloudConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Environment, CloudError> {
        Environment::from_name(&cfg.cloud, lookup)
    }

    /// The environment for a cloud name (case-insensitive; empty = AzurePublicCloud).
    pub fn from_name(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Environment, CloudError> {
        let upper = name.trim().to_ascii_uppercase();
        if upper.is_empty() {
            return Ok(Environment::public());
        }
        if upper == "AZURESTACKCLOUD" {
            let path = lookup(ENVIRONMENT_FILEPATH_VAR)
                .filter(|p| !p.trim().is_empty())
                .ok_or(CloudError::MissingEnvironmentFile)?;
            return Environment::from_file(Path::new(path.trim()));
        }
        BUILTINS
            .iter()
            .find(|b| b.keys.contains(&upper.as_str()))
            .map(Environment::from_builtin)
            .ok_or_else(|| CloudError::UnknownCloud {
                name: truncate(name, 80),
            })
    }

    /// Azure public cloud.
    pub fn public() -> Environment {
        Environment::from_builtin(&BUILTINS[0])
    }

    fn from_builtin(b: &Builtin) -> Environment {
        Environment {
            name: b.name.to_string(),
            resource_manager_endpoint: b.rm.to_string(),
            active_directory_endpoint: b.ad.to_string(),
            token_audience: b.audience.to_string(),
            service_management_endpoint: b.sm.to_string(),
        }
    }

    /// Read a go-autorest environment JSON file (the AzureStackCloud form). `resourceManagerEndpoint` and
    /// `activeDirectoryEndpoint` are required; unknown keys are ignored.
    pub fn from_file(path: &Path) -> Result<Environment, CloudError> {
        let text = read_text(path, "environment file")?;
        let parse_err = |message: String| CloudError::Parse {
            what: "environment file",
            path: path.to_path_buf(),
            message,
        };
        let obj = parse_mapping(&text).map_err(parse_err)?;
        Environment::from_map(&obj)
    }

    /// Parse environment JSON text (see [`Environment::from_file`]).
    pub fn from_json(text: &str) -> Result<Environment, CloudError> {
        let obj = parse_mapping(text).map_err(|message| CloudError::Parse {
            what: "environment file",
            path: PathBuf::new(),
            message,
        })?;
        Environment::from_map(&obj)
    }

    fn from_map(obj: &Map<String, Value>) -> Result<Environment, CloudError> {
        let rm = string_field(obj, "resourceManagerEndpoint")?;
        if rm.trim().is_empty() {
            return Err(CloudError::Missing {
                key: "resourceManagerEndpoint",
                reason: "the environment file must name the ARM endpoint",
            });
        }
        let ad = string_field(obj, "activeDirectoryEndpoint")?;
        if ad.trim().is_empty() {
            return Err(CloudError::Missing {
                key: "activeDirectoryEndpoint",
                reason: "the environment file must name the Entra ID (AAD) endpoint",
            });
        }
        let audience = string_field(obj, "tokenAudience")?;
        let sm = string_field(obj, "serviceManagementEndpoint")?;
        let name = string_field(obj, "name")?;
        Ok(Environment {
            name: if name.is_empty() {
                "AzureStackCloud".into()
            } else {
                name
            },
            resource_manager_endpoint: endpoint("resourceManagerEndpoint", &rm)?,
            active_directory_endpoint: endpoint("activeDirectoryEndpoint", &ad)?,
            token_audience: audience.trim().to_string(),
            service_management_endpoint: sm.trim().to_string(),
        })
    }

    /// The resource (audience) of the controller's ARM token: `tokenAudience`, else the ARM endpoint.
    pub fn arm_resource(&self) -> &str {
        if self.token_audience.is_empty() {
            &self.resource_manager_endpoint
        } else {
            &self.token_audience
        }
    }

    /// The ARM base URL without a trailing slash (paths are appended to it).
    pub fn arm_base(&self) -> &str {
        self.resource_manager_endpoint.trim_end_matches('/')
    }

    /// The AAD v1 token endpoint of a tenant: `{activeDirectoryEndpoint}{tenant}/oauth2/token`, or
    /// `{activeDirectoryEndpoint}oauth2/token` for ADFS (tenant `adfs`, as ADAL does).
    pub fn token_endpoint(&self, tenant: &str) -> String {
        let ad = self.active_directory_endpoint.trim_end_matches('/');
        if tenant.eq_ignore_ascii_case("adfs") {
            format!("{ad}/oauth2/token")
        } else {
            format!(
                "{ad}/{}/oauth2/token",
                crate::form::encode_path_segment(tenant)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const AKS_JSON: &str = r#"{
        "cloud": "AzurePublicCloud",
        "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "subscriptionId": "0b1f6471-1bf0-4dda-aec3-111122223333",
        "aadClientId": "msi",
        "aadClientSecret": "msi",
        "resourceGroup": "MC_rg_aks_westeurope",
        "location": "westeurope",
        "vmType": "vmss",
        "subnetName": "aks-subnet",
        "securityGroupName": "aks-agentpool-nsg",
        "vnetName": "aks-vnet",
        "cloudProviderBackoff": true,
        "cloudProviderRateLimitQPS": 10,
        "useManagedIdentityExtension": true,
        "userAssignedIdentityID": "11111111-2222-3333-4444-555555555555",
        "useInstanceMetadata": true,
        "loadBalancerSku": "Standard",
        "excludeMasterFromStandardLB": true,
        "maximumLoadBalancerRuleCount": 250
    }"#;

    #[test]
    fn aks_json_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("azure.json");
        std::fs::write(&p, AKS_JSON).expect("write");
        let c = CloudConfig::from_file(&p).expect("parse");
        assert_eq!(c.cloud, "AzurePublicCloud");
        assert_eq!(c.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(c.aad_client_id, "msi");
        assert_eq!(c.resource_group, "MC_rg_aks_westeurope");
        assert_eq!(c.vm_type, "vmss");
        assert!(c.use_managed_identity_extension);
        assert_eq!(
            c.user_assigned_identity_id,
            "11111111-2222-3333-4444-555555555555"
        );
        c.validate().expect("valid");
        assert!(format!("{c:?}").contains("aad_client_secret: \"<redacted>\""));
    }

    #[test]
    fn yaml_file_and_case_insensitive_keys() {
        let text = "\u{feff}cloud: azurechinacloud\nTenantID: t1\naadClientID: app\naadClientSecret: s3cr3t\nsubscriptionId: 123\nresourceGroup: rg\nuseManagedIdentityExtension: \"False\"\nunknownKey: [1, 2]\n";
        let c = CloudConfig::from_text(text).expect("yaml");
        assert_eq!(c.tenant_id, "t1");
        assert_eq!(c.aad_client_id, "app");
        assert_eq!(c.subscription_id, "123");
        assert!(!c.use_managed_identity_extension);
        c.validate().expect("valid");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let env = Environment::from_config(&c, no_env).expect("env");
        assert_eq!(env.name, "AzureChinaCloud");
        assert_eq!(env.arm_base(), "https://management.chinacloudapi.cn");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let table: &[(&str, &str)] = &[
            ("tenantId: [a]", "tenantId"),
            (
                "useManagedIdentityExtension: maybe",
                "useManagedIdentityExtension",
            ),
            (
                "{\"useManagedIdentityExtension\": 1}",
                "useManagedIdentityExtension",
            ),
            ("aadClientSecret: {a: b}", "aadClientSecret"),
        ];
        for (text, key) in table {
            match CloudConfig::from_text(text) {
                Err(CloudError::InvalidField { key: k, .. }) => assert_eq!(k, *key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            CloudConfig::from_text("[1, 2]"),
            Err(CloudError::Parse { .. })
        ));
        assert!(matches!(
            CloudConfig::from_text("{not json"),
            Err(CloudError::Parse { .. })
        ));
        assert_eq!(
            CloudConfig::from_text("").expect("empty"),
            CloudConfig::default()
        );
    }

    #[test]
    fn missing_file_and_too_large() {
        let dir = tempfile::tempdir().expect("tmp");
        let e = CloudConfig::from_file(dir.path().join("nope.json")).expect_err("missing");
        assert!(e.to_string().contains("nope.json"), "{e}");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; (MAX_CONFIG_FILE_BYTES + 1) as usize]).expect("write");
        assert!(matches!(
            CloudConfig::from_file(&big),
            Err(CloudError::TooLarge { .. })
        ));
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "a: [").expect("write");
        match CloudConfig::from_file(&bad) {
            Err(CloudError::Parse { path, .. }) => assert_eq!(path, bad),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validation_names_the_missing_key() {
        let base = CloudConfig {
            tenant_id: "t".into(),
            aad_client_id: "c".into(),
            aad_client_secret: "s".into(),
            subscription_id: "sub".into(),
            resource_group: "rg".into(),
            ..CloudConfig::default()
        };
        base.validate().expect("valid");
        let cases: Vec<(CloudConfig, &str)> = vec![
            (
                CloudConfig {
                    subscription_id: String::new(),
                    ..base.clone()
                },
                "subscriptionId",
            ),
            (
                CloudConfig {
                    resource_group: " ".into(),
                    ..base.clone()
                },
                "resourceGroup",
            ),
            (
                CloudConfig {
                    tenant_id: String::new(),
                    ..base.clone()
                },
                "tenantId",
            ),
            (
                CloudConfig {
                    aad_client_id: String::new(),
                    ..base.clone()
                },
                "aadClientId",
            ),
            (
                CloudConfig {
                    aad_client_secret: String::new(),
                    ..base.clone()
                },
                "aadClientSecret",
            ),
        ];
        for (c, key) in cases {
            match c.validate() {
                Err(CloudError::Missing { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        // Managed identity needs no tenant or client.
        CloudConfig {
            tenant_id: String::new(),
            aad_client_id: String::new(),
            aad_client_secret: String::new(),
            use_managed_identity_extension: true,
            ..base.clone()
        }
        .validate()
        .expect("msi");
        // A certificate path stands in for the secret.
        CloudConfig {
            aad_client_secret: String::new(),
            aad_client_cert_path: "/etc/cert.pem".into(),
            ..base
        }
        .validate()
        .expect("cert");
    }

    #[test]
    fn env_form() {
        let vars: HashMap<&str, &str> = [
            ("CLOUD", "AzureUSGovernmentCloud"),
            ("TENANT_ID", "t"),
            ("CLIENT_ID", "c"),
            ("CLIENT_SECRET", "s"),
            ("SUBSCRIPTION_ID", "sub"),
            ("RESOURCE_GROUP", "rg"),
            ("VM_TYPE", "vmss"),
            ("USE_MSI", "TRUE"),
            ("USER_ASSIGNED_MSI_CLIENT_ID", "uid"),
        ]
        .into_iter()
        .collect();
        let c = CloudConfig::from_env(|k| vars.get(k).map(|v| v.to_string()));
        assert_eq!(c.cloud, "AzureUSGovernmentCloud");
        assert_eq!(c.aad_client_secret, "s");
        assert!(c.use_managed_identity_extension);
        assert_eq!(c.user_assigned_identity_id, "uid");
        assert_eq!(c.vm_type, "vmss");
        for (v, want) in [("True", true), ("true", true), ("1", false), ("yes", false)] {
            let c = CloudConfig::from_env(|k| (k == "USE_MSI").then(|| v.to_string()));
            assert_eq!(c.use_managed_identity_extension, want, "{v}");
        }
        assert_eq!(CloudConfig::from_env(no_env), CloudConfig::default());
    }

    #[test]
    fn builtin_environments() {
        let table: &[(&str, &str, &str, &str)] = &[
            (
                "",
                "AzurePublicCloud",
                "https://management.azure.com/",
                "https://login.microsoftonline.com/",
            ),
            (
                "AzurePublicCloud",
                "AzurePublicCloud",
                "https://management.azure.com/",
                "https://login.microsoftonline.com/",
            ),
            (
                "azurecloud",
                "AzurePublicCloud",
                "https://management.azure.com/",
                "https://login.microsoftonline.com/",
            ),
            (
                "AzureChinaCloud",
                "AzureChinaCloud",
                "https://management.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/",
            ),
            (
                "AZUREUSGOVERNMENTCLOUD",
                "AzureUSGovernmentCloud",
                "https://management.usgovcloudapi.net/",
                "https://login.microsoftonline.us/",
            ),
            (
                "AzureUSGovernment",
                "AzureUSGovernmentCloud",
                "https://management.usgovcloudapi.net/",
                "https://login.microsoftonline.us/",
            ),
            (
                "AzureGermanCloud",
                "AzureGermanCloud",
                "https://management.microsoftazure.de/",
                "https://login.microsoftonline.de/",
            ),
        ];
        for (name, want, rm, ad) in table {
            let e = Environment::from_name(name, no_env).expect(name);
            assert_eq!(e.name, *want);
            assert_eq!(e.resource_manager_endpoint, *rm);
            assert_eq!(e.active_directory_endpoint, *ad);
            assert_eq!(e.arm_resource(), *rm, "{name}");
        }
        let e = Environment::public();
        assert_eq!(
            e.token_endpoint("contoso.onmicrosoft.com"),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token"
        );
        assert_eq!(
            e.token_endpoint("ADFS"),
            "https://login.microsoftonline.com/oauth2/token"
        );
        match Environment::from_name("AzureMoonCloud", no_env) {
            Err(CloudError::UnknownCloud { name }) => assert_eq!(name, "AzureMoonCloud"),
            other => panic!("{other:?}"),
        }
        assert!(
            Environment::from_name("Bogus", no_env)
                .expect_err("bogus")
                .to_string()
                .starts_with("`cloud`")
        );
    }

    #[test]
    fn azure_stack_environment_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("env.json");
        std::fs::write(
            &p,
            r#"{"name": "AzureStackSim", "resourceManagerEndpoint": "https://127.0.0.1:4443",
                "activeDirectoryEndpoint": "https://127.0.0.1:5443/", "tokenAudience": "https://management.azure.com/",
                "managementPortalURL": "x", "resourceIdentifiers": {"graph": "g"}, "storageEndpointSuffix": "s"}"#,
        )
        .expect("write");
        let path = p.display().to_string();
        let lookup = |k: &str| (k == ENVIRONMENT_FILEPATH_VAR).then(|| path.clone());
        let e = Environment::from_name("azurestackcloud", lookup).expect("stack");
        assert_eq!(e.name, "AzureStackSim");
        assert_eq!(e.resource_manager_endpoint, "https://127.0.0.1:4443/");
        assert_eq!(e.arm_base(), "https://127.0.0.1:4443");
        assert_eq!(e.arm_resource(), "https://management.azure.com/");
        assert_eq!(
            e.token_endpoint("t1"),
            "https://127.0.0.1:5443/t1/oauth2/token"
        );
        // No audience: the ARM endpoint is the resource.
        let e = Environment::from_json(
            r#"{"resourceManagerEndpoint": "https://arm.local/", "activeDirectoryEndpoint": "https://adfs.local/adfs"}"#,
        )
        .expect("json");
        assert_eq!(e.arm_resource(), "https://arm.local/");
        assert_eq!(e.name, "AzureStackCloud");
        assert_eq!(
            e.token_endpoint("adfs"),
            "https://adfs.local/adfs/oauth2/token"
        );
        // Errors.
        assert!(matches!(
            Environment::from_name("AzureStackCloud", no_env),
            Err(CloudError::MissingEnvironmentFile)
        ));
        let cases: &[(&str, &str)] = &[
            (
                r#"{"activeDirectoryEndpoint": "https://a/"}"#,
                "resourceManagerEndpoint",
            ),
            (
                r#"{"resourceManagerEndpoint": "https://a/"}"#,
                "activeDirectoryEndpoint",
            ),
            (
                r#"{"resourceManagerEndpoint": "ftp://a/", "activeDirectoryEndpoint": "https://a/"}"#,
                "resourceManagerEndpoint",
            ),
            (
                r#"{"resourceManagerEndpoint": "https://a/", "activeDirectoryEndpoint": "not a url"}"#,
                "activeDirectoryEndpoint",
            ),
            (
                r#"{"resourceManagerEndpoint": "https://a/?x=1", "activeDirectoryEndpoint": "https://a/"}"#,
                "resourceManagerEndpoint",
            ),
        ];
        for (text, key) in cases {
            let e = Environment::from_json(text).expect_err(text);
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
        let missing =
            |k: &str| (k == ENVIRONMENT_FILEPATH_VAR).then(|| "/nonexistent/env.json".into());
        assert!(matches!(
            Environment::from_name("AzureStackCloud", missing),
            Err(CloudError::Read { .. })
        ));
    }
}
