use super::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

fn yaml<T: serde::de::DeserializeOwned>(doc: &str) -> T {
    serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("decode failed: {e}\n{doc}"))
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn crd_named(name: &str) -> CustomResourceDefinition {
    crds()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no CRD {name}"))
}

// ----------------------------------------------------------------------------------------------
// CRDs
// ----------------------------------------------------------------------------------------------

#[test]
fn crd_names_match_reference_table() {
    let want = [
        (
            "azureassignedidentities.aadpodidentity.k8s.io",
            "AzureAssignedIdentity",
            "AzureAssignedIdentityList",
            "azureassignedidentities",
            "azureassignedidentity",
        ),
        (
            "azureidentities.aadpodidentity.k8s.io",
            "AzureIdentity",
            "AzureIdentityList",
            "azureidentities",
            "azureidentity",
        ),
        (
            "azureidentitybindings.aadpodidentity.k8s.io",
            "AzureIdentityBinding",
            "AzureIdentityBindingList",
            "azureidentitybindings",
            "azureidentitybinding",
        ),
        (
            "azurepodidentityexceptions.aadpodidentity.k8s.io",
            "AzurePodIdentityException",
            "AzurePodIdentityExceptionList",
            "azurepodidentityexceptions",
            "azurepodidentityexception",
        ),
    ];
    let got = crds();
    assert_eq!(got.len(), want.len());
    for (crd, (name, kind, list_kind, plural, singular)) in got.iter().zip(want) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.list_kind.as_deref(), Some(list_kind));
        assert_eq!(crd.spec.names.plural, plural);
        assert_eq!(crd.spec.names.singular.as_deref(), Some(singular));
        assert_eq!(crd.spec.names.short_names, None, "{name}: no short names");
        assert_eq!(crd.spec.names.categories, None, "{name}: no categories");
        assert_eq!(crd.spec.versions.len(), 1);
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, VERSION);
        assert!(v.served && v.storage);
        let ann = crd.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            ann.get("api-approved.kubernetes.io").map(String::as_str),
            Some("unapproved")
        );
        assert_eq!(crd.metadata.labels, None);
    }
    for (resource, crd) in [
        (AZURE_ASSIGNED_IDENTITY_RESOURCE, &got[0]),
        (AZURE_IDENTITY_RESOURCE, &got[1]),
        (AZURE_IDENTITY_BINDING_RESOURCE, &got[2]),
        (AZURE_POD_IDENTITY_EXCEPTION_RESOURCE, &got[3]),
    ] {
        assert_eq!(crd.spec.names.plural, resource);
    }
}

#[test]
fn subresources_match_upstream() {
    for (name, want) in [
        ("azureassignedidentities.aadpodidentity.k8s.io", None),
        ("azureidentities.aadpodidentity.k8s.io", Some(json!({}))),
        (
            "azureidentitybindings.aadpodidentity.k8s.io",
            Some(json!({})),
        ),
        ("azurepodidentityexceptions.aadpodidentity.k8s.io", None),
    ] {
        let crd = crd_named(name);
        let got = crd.spec.versions[0]
            .subresources
            .as_ref()
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn printer_columns_match_upstream() {
    let age = json!({
        "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
        "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
    });
    let cases = [
        (
            "azureidentities.aadpodidentity.k8s.io",
            Some(json!([
                {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
                {"name": "ClientID", "type": "string", "jsonPath": ".spec.clientID"},
                age.clone(),
                // podid: `-o wide` only.
                {"name": "ResourceID", "type": "string", "jsonPath": ".spec.resourceID", "priority": 1,
                 "description": "ARM ID of the user-assigned identity (type 0)."},
            ])),
        ),
        (
            "azureidentitybindings.aadpodidentity.k8s.io",
            Some(json!([
                {"name": "AzureIdentity", "type": "string", "jsonPath": ".spec.azureIdentity"},
                {"name": "Selector", "type": "string", "jsonPath": ".spec.selector"},
                age.clone(),
            ])),
        ),
        // podid (upstream has none): what a newcomer asks first, wide columns for the rest.
        (
            "azureassignedidentities.aadpodidentity.k8s.io",
            Some(json!([
                {"name": "Pod", "type": "string", "jsonPath": ".spec.pod",
                 "description": "Name of the pod the identity is assigned for."},
                {"name": "PodNamespace", "type": "string", "jsonPath": ".spec.podNamespace",
                 "description": "Namespace of the pod."},
                {"name": "Identity", "type": "string", "jsonPath": ".spec.azureIdentityRef.metadata.name",
                 "description": "Name of the AzureIdentity (in the binding's namespace)."},
                {"name": "Status", "type": "string", "jsonPath": ".status.status",
                 "description": "Created (being assigned), Assigned, or Unassigned (being removed)."},
                age,
                {"name": "Node", "type": "string", "jsonPath": ".spec.nodename", "priority": 1,
                 "description": "Node the pod runs on (its VM or scale set holds the identity)."},
                {"name": "Binding", "type": "string", "jsonPath": ".spec.azureBindingRef.metadata.name", "priority": 1,
                 "description": "Name of the AzureIdentityBinding that matched the pod."},
                {"name": "ClientID", "type": "string", "jsonPath": ".spec.azureIdentityRef.spec.clientID", "priority": 1,
                 "description": "Client ID of the identity."},
            ])),
        ),
        ("azurepodidentityexceptions.aadpodidentity.k8s.io", None),
    ];
    for (name, want) in cases {
        let crd = crd_named(name);
        let got = crd.spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn yaml_round_trips() {
    let text = crds_yaml();
    assert_eq!(text.matches("\n---\n").count(), 3, "four documents");
    let back: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, crds());
    // And through JSON, as the API server stores them.
    for crd in crds() {
        let v = serde_json::to_value(&crd).unwrap_or(Value::Null);
        let again: CustomResourceDefinition =
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, crd);
    }
}

/// Drop `description` keywords to compare schema structure.
fn skeleton(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "description")
                .map(|(k, v)| (k.clone(), skeleton(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn expected_identity() -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "adEndpoint": {"type": "string"},
                "adResourceID": {"type": "string"},
                "auxiliaryTenantIDs": {"type": "array", "nullable": true, "items": {"type": "string"}},
                "clientID": {"type": "string"},
                "clientPassword": {"type": "object", "properties": {
                    "name": {"type": "string"}, "namespace": {"type": "string"}}},
                "metadata": {"type": "object"},
                "replicas": {"type": "integer", "format": "int32", "nullable": true},
                "resourceID": {"type": "string"},
                "tenantID": {"type": "string"},
                "type": {"type": "integer"}
            }},
            "status": {"type": "object", "properties": {
                "availableReplicas": {"type": "integer", "format": "int32"},
                "metadata": {"type": "object"}
            }}
        }
    })
}

fn expected_binding() -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "azureIdentity": {"type": "string"},
                "metadata": {"type": "object"},
                "selector": {"type": "string"},
                "weight": {"type": "integer"}
            }},
            "status": {"type": "object", "properties": {
                "availableReplicas": {"type": "integer", "format": "int32"},
                "metadata": {"type": "object"}
            }}
        }
    })
}

/// `expected` with podid's pre-v1.6 keys added to the root spec (each with its current key's
/// schema; an object's properties also capitalised).
fn with_legacy_keys(mut expected: Value, keys: &[(&str, &str)]) -> Value {
    let spec = &mut expected["properties"]["spec"]["properties"];
    for (legacy, current) in keys {
        let mut schema = spec[*current].clone();
        if let Some(p) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            let caps: Vec<(String, Value)> = p
                .iter()
                .map(|(k, v)| {
                    (
                        format!("{}{}", k[..1].to_ascii_uppercase(), &k[1..]),
                        v.clone(),
                    )
                })
                .collect();
            p.extend(caps);
        }
        spec[*legacy] = schema;
    }
    expected
}

#[test]
fn schemas_match_upstream_structure() {
    assert_eq!(
        skeleton(&schema_of(&crd_named(
            "azureidentities.aadpodidentity.k8s.io"
        ))),
        with_legacy_keys(
            expected_identity(),
            &[
                ("ClientID", "clientID"),
                ("ClientId", "clientID"),
                ("ClientPassword", "clientPassword"),
                ("ResourceID", "resourceID"),
                ("ResourceId", "resourceID"),
                ("TenantID", "tenantID"),
                ("TenantId", "tenantID"),
                ("Type", "type"),
            ]
        )
    );
    assert_eq!(
        skeleton(&schema_of(&crd_named(
            "azureidentitybindings.aadpodidentity.k8s.io"
        ))),
        with_legacy_keys(
            expected_binding(),
            &[("AzureIdentity", "azureIdentity"), ("Selector", "selector")]
        )
    );
    let mut embedded_identity = expected_identity();
    embedded_identity["x-kubernetes-embedded-resource"] = json!(true);
    let mut embedded_binding = expected_binding();
    embedded_binding["x-kubernetes-embedded-resource"] = json!(true);
    let aai = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "azureBindingRef": embedded_binding,
                "azureIdentityRef": embedded_identity,
                "metadata": {"type": "object"},
                "nodename": {"type": "string"},
                "pod": {"type": "string"},
                "podNamespace": {"type": "string"},
                "replicas": {"type": "integer", "format": "int32", "nullable": true}
            }},
            "status": {"type": "object", "properties": {
                "availableReplicas": {"type": "integer", "format": "int32"},
                "metadata": {"type": "object"},
                "status": {"type": "string"}
            }}
        }
    });
    assert_eq!(
        skeleton(&schema_of(&crd_named(
            "azureassignedidentities.aadpodidentity.k8s.io"
        ))),
        aai
    );
    let exception = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "metadata": {"type": "object"},
                "podLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "PodLabels": {"type": "object", "additionalProperties": {"type": "string"}}
            }},
            "status": {"type": "object", "properties": {
                "metadata": {"type": "object"},
                "status": {"type": "string"}
            }}
        }
    });
    assert_eq!(
        skeleton(&schema_of(&crd_named(
            "azurepodidentityexceptions.aadpodidentity.k8s.io"
        ))),
        exception
    );
}

#[test]
fn descriptions_match_upstream() {
    let s = schema_of(&crd_named("azureidentities.aadpodidentity.k8s.io"));
    assert_eq!(
        s["description"],
        "AzureIdentity is the specification of the identity data structure."
    );
    assert_eq!(
        s["properties"]["spec"]["properties"]["type"]["description"],
        "UserAssignedMSI or Service Principal"
    );
    assert_eq!(
        s["properties"]["spec"]["properties"]["resourceID"]["description"],
        "User assigned MSI resource id."
    );
    let a = schema_of(&crd_named("azureassignedidentities.aadpodidentity.k8s.io"));
    assert_eq!(
        a["properties"]["spec"]["properties"]["azureIdentityRef"]["description"],
        "AzureIdentityRef is an embedded resource referencing the AzureIdentity used by the AzureAssignedIdentity, which requires x-kubernetes-embedded-resource fields to be true"
    );
}

/// Structural-schema checks as the apiextensions API server applies them (the subset that can
/// be violated by generated schemas).
fn structural_errors(path: &str, s: &Value, errors: &mut Vec<String>) {
    let Some(m) = s.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    for forbidden in ["$ref", "definitions", "$schema", "uniqueItems", "title"] {
        if m.contains_key(forbidden) {
            errors.push(format!("{path}: {forbidden} is forbidden"));
        }
    }
    let int_or_string = m.get("x-kubernetes-int-or-string") == Some(&json!(true));
    let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let ty = m.get("type").and_then(Value::as_str);
    if ty.is_none() && !int_or_string && !preserve {
        errors.push(format!("{path}: type is required"));
    }
    if let Some(t) = ty
        && !["object", "array", "string", "integer", "number", "boolean"].contains(&t)
    {
        errors.push(format!("{path}: unknown type {t}"));
    }
    if m.get("x-kubernetes-embedded-resource") == Some(&json!(true)) {
        if ty != Some("object") {
            errors.push(format!("{path}: embedded resource must be type object"));
        }
        if !preserve
            && m.get("properties")
                .and_then(Value::as_object)
                .is_none_or(|p| p.is_empty())
        {
            errors.push(format!(
                "{path}: embedded resource needs properties or x-kubernetes-preserve-unknown-fields"
            ));
        }
    }
    if m.contains_key("properties") && m.contains_key("additionalProperties") {
        errors.push(format!(
            "{path}: properties and additionalProperties are exclusive"
        ));
    }
    if m.get("additionalProperties") == Some(&json!(false)) {
        errors.push(format!("{path}: additionalProperties: false is forbidden"));
    }
    for junctor in ["anyOf", "oneOf", "allOf", "not"] {
        if m.contains_key(junctor) {
            errors.push(format!(
                "{path}: {junctor} not expected in generated schemas"
            ));
        }
    }
    if ty == Some("array") && !m.contains_key("items") {
        errors.push(format!("{path}: arrays need items"));
    }
    if let Some(items) = m.get("items") {
        structural_errors(&format!("{path}.items"), items, errors);
    }
    if let Some(Value::Object(ap)) = m.get("additionalProperties") {
        structural_errors(
            &format!("{path}.additionalProperties"),
            &Value::Object(ap.clone()),
            errors,
        );
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, v) in props {
            structural_errors(&format!("{path}.properties[{k}]"), v, errors);
        }
        // metadata may only restrict name/generateName: ours is a bare {type: object}.
        if let Some(meta) = props.get("metadata")
            && meta != &json!({"type": "object"})
        {
            errors.push(format!("{path}.metadata: must be a bare object"));
        }
    }
}

#[test]
fn schemas_are_structural() {
    for crd in crds() {
        let s = schema_of(&crd);
        let mut errors = Vec::new();
        structural_errors("openAPIV3Schema", &s, &mut errors);
        assert!(errors.is_empty(), "{:?}: {errors:#?}", crd.metadata.name);
        assert_eq!(s["type"], "object");
    }
}

#[test]
fn structural_checker_catches_errors() {
    let mut errors = Vec::new();
    structural_errors(
        "x",
        &json!({"type": "object", "properties": {
            "a": {},
            "b": {"type": "array"},
            "c": {"type": "object", "x-kubernetes-embedded-resource": true},
            "d": {"x-kubernetes-int-or-string": true},
            "e": {"type": "object", "properties": {"f": {"type": "string"}}, "additionalProperties": {"type": "string"}}
        }}),
        &mut errors,
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

// ----------------------------------------------------------------------------------------------
// Upstream documents
// ----------------------------------------------------------------------------------------------

/// AKS "pod-managed identities" docs / aad-pod-identity README, user-assigned identity.
const README_IDENTITY: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: demo
spec:
  type: 0
  resourceID: /subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/MC_rg_aks_eastus/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo
  clientID: 11111111-2222-3333-4444-555555555555
"#;

/// README, binding.
const README_BINDING: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentityBinding
metadata:
  name: demo-binding
spec:
  azureIdentity: demo
  selector: demo
"#;

/// Docs, service principal (single tenant), flow-style clientPassword.
const DOCS_SP: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: sp-identity
  annotations:
    aadpodidentity.k8s.io/Behavior: namespaced
spec:
  type: 1
  tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47
  clientID: 0b1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff
  clientPassword: {"name":"sp-secret","namespace":"default"}
"#;

/// Docs, multi-tenant service principal.
const DOCS_SP_MULTI: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: sp-multi
spec:
  type: 1
  tenantID: primary-tenant
  auxiliaryTenantIDs:
    - aux-tenant-1
    - aux-tenant-2
  clientID: app-id
  clientPassword: {"name":"sp-secret","namespace":"default"}
"#;

/// Docs, service principal with certificate.
const DOCS_SP_CERT: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: sp-cert
spec:
  type: 2
  tenantID: tenant
  clientID: app-id
  clientPassword: {"name":"cert-secret","namespace":"default"}
"#;

/// Docs, pod identity exception.
const DOCS_EXCEPTION: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzurePodIdentityException
metadata:
  name: test-exception
  namespace: default
spec:
  podLabels:
    foo: bar
    app: custom
"#;

/// Pre-v1.6 spellings found in Helm charts in the wild.
const LEGACY_IDENTITY: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: legacy
spec:
  type: 1
  ResourceID: /subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/legacy
  ClientId: legacy-client
  TenantID: legacy-tenant
  ClientPassword: {"Name":"s","Namespace":"ns"}
"#;

const LEGACY_BINDING: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentityBinding
metadata:
  name: legacy-binding
spec:
  AzureIdentity: legacy
  Selector: legacy-selector
"#;

const LEGACY_EXCEPTION: &str = r#"apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzurePodIdentityException
metadata:
  name: legacy-exception
spec:
  PodLabels:
    app: x
"#;

/// Appendix A of the reference: an AzureAssignedIdentity as MIC writes it.
const APPENDIX_A: &str = r#"apiVersion: aadpodidentity.k8s.io/v1
kind: AzureAssignedIdentity
metadata:
  name: demo-7d9c-abcde-app-ns-kv-identity
  namespace: default
  labels:
    nodename: aks-nodepool1-12345678-vmss000001
  finalizers:
  - azureassignedidentity.finalizers.aadpodidentity.k8s.io
spec:
  azureIdentityRef:
    apiVersion: aadpodidentity.k8s.io/v1
    kind: AzureIdentity
    metadata: {name: kv-identity, namespace: app-ns, resourceVersion: "12345"}
    spec: {type: 0, resourceID: /subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kv-identity, clientID: 00000000-0000-0000-0000-000000000001}
  azureBindingRef:
    apiVersion: aadpodidentity.k8s.io/v1
    kind: AzureIdentityBinding
    metadata: {name: kv-identity-binding, namespace: app-ns, resourceVersion: "12346"}
    spec: {azureIdentity: kv-identity, selector: kv-selector}
  pod: demo-7d9c-abcde
  podNamespace: app-ns
  nodename: aks-nodepool1-12345678-vmss000001
status:
  availableReplicas: 1
  status: Assigned
"#;

#[test]
fn readme_identity_decodes() {
    let id: AzureIdentity = yaml(README_IDENTITY);
    assert_eq!(id.metadata.name.as_deref(), Some("demo"));
    assert_eq!(id.spec.type_, IdentityType::UserAssignedMSI);
    assert!(
        id.spec
            .resource_id
            .ends_with("/userAssignedIdentities/demo")
    );
    assert_eq!(id.spec.client_id, "11111111-2222-3333-4444-555555555555");
    assert_eq!(id.status, None);
    assert!(!is_namespaced_identity(&id));
}

#[test]
fn readme_binding_decodes() {
    let b: AzureIdentityBinding = yaml(README_BINDING);
    assert_eq!(b.spec.azure_identity, "demo");
    assert_eq!(b.spec.selector, "demo");
    assert_eq!(b.spec.weight, 0);
}

#[test]
fn service_principal_documents_decode() {
    let sp: AzureIdentity = yaml(DOCS_SP);
    assert_eq!(sp.spec.type_, IdentityType::ServicePrincipal);
    assert_eq!(sp.spec.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    let pw = sp.spec.client_password.clone().unwrap_or_default();
    assert_eq!(pw.name.as_deref(), Some("sp-secret"));
    assert_eq!(pw.namespace.as_deref(), Some("default"));
    assert!(is_namespaced_identity(&sp));

    let multi: AzureIdentity = yaml(DOCS_SP_MULTI);
    assert_eq!(
        multi.spec.auxiliary_tenant_ids,
        ["aux-tenant-1", "aux-tenant-2"]
    );

    let cert: AzureIdentity = yaml(DOCS_SP_CERT);
    assert_eq!(cert.spec.type_, IdentityType::ServicePrincipalCertificate);
}

#[test]
fn exception_decodes() {
    let e: AzurePodIdentityException = yaml(DOCS_EXCEPTION);
    assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        e.spec.pod_labels.get("foo").map(String::as_str),
        Some("bar")
    );
    assert_eq!(
        e.spec.pod_labels.get("app").map(String::as_str),
        Some("custom")
    );
}

#[test]
fn legacy_keys_decode() {
    let id: AzureIdentity = yaml(LEGACY_IDENTITY);
    assert!(id.spec.resource_id.ends_with("/legacy"));
    assert_eq!(id.spec.client_id, "legacy-client");
    assert_eq!(id.spec.tenant_id, "legacy-tenant");
    let pw = id.spec.client_password.clone().unwrap_or_default();
    assert_eq!(pw.name.as_deref(), Some("s"));
    assert_eq!(pw.namespace.as_deref(), Some("ns"));
    // Re-encoding writes the v1.6+ spelling.
    let v = serde_json::to_value(&id).unwrap_or(Value::Null);
    assert_eq!(v["spec"]["clientID"], "legacy-client");
    assert!(v["spec"].get("ClientId").is_none());

    let b: AzureIdentityBinding = yaml(LEGACY_BINDING);
    assert_eq!(b.spec.azure_identity, "legacy");
    assert_eq!(b.spec.selector, "legacy-selector");

    let e: AzurePodIdentityException = yaml(LEGACY_EXCEPTION);
    assert_eq!(e.spec.pod_labels.get("app").map(String::as_str), Some("x"));
}

#[test]
fn case_insensitive_variants() {
    for key in [
        "clientID", "ClientID", "clientid", "CLIENTID", "ClientId", "cLiEnTiD",
    ] {
        let spec: AzureIdentitySpec =
            serde_json::from_value(json!({ key: "c" })).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(spec.client_id, "c", "{key}");
    }
    // Exact match wins when both spellings are present.
    let spec: AzureIdentitySpec =
        serde_json::from_value(json!({"ClientID": "old", "clientID": "new"}))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.client_id, "new");
    // Status keys too.
    let st: AzureAssignedIdentityStatus =
        serde_json::from_value(json!({"Status": "Assigned", "AvailableReplicas": 1}))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.status, AssignedIdentityState::Assigned);
    assert_eq!(st.available_replicas, 1);
}

#[test]
fn nulls_unknowns_and_missing_are_tolerated() {
    let id: AzureIdentity = serde_json::from_value(json!({
        "apiVersion": API_VERSION, "kind": "AzureIdentity",
        "metadata": {"name": "x"},
        "spec": {"type": null, "auxiliaryTenantIDs": null, "replicas": null,
                 "clientPassword": null, "unknownField": {"a": 1}, "metadata": {}},
        "status": {"metadata": {}}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.spec, AzureIdentitySpec::default());
    assert_eq!(id.status, Some(AzureIdentityStatus::default()));

    let no_spec: AzureIdentity = serde_json::from_value(json!({"metadata": {"name": "x"}}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(no_spec.spec, AzureIdentitySpec::default());
    let null_spec: AzureIdentityBinding =
        serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": null}))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(null_spec.spec, AzureIdentityBindingSpec::default());
}

#[test]
fn wrong_types_are_errors_not_panics() {
    for (spec, needle) in [
        (json!({"type": "0"}), "type: invalid type: string"),
        (json!({"type": 0.5}), "type: invalid identity type 0.5"),
        (json!({"clientID": 5}), "clientID: invalid type"),
        (
            json!({"clientPassword": "s"}),
            "clientPassword: invalid type: string",
        ),
        (json!({"replicas": 1e20}), "replicas:"),
        (json!("spec"), "invalid type"),
    ] {
        let err = serde_json::from_value::<AzureIdentitySpec>(spec.clone())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(needle), "{spec}: {err}");
    }
}

#[test]
fn identity_type_integers() {
    for (n, want) in [
        (0, IdentityType::UserAssignedMSI),
        (1, IdentityType::ServicePrincipal),
        (2, IdentityType::ServicePrincipalCertificate),
        (3, IdentityType::Other(3)),
        (-1, IdentityType::Other(-1)),
    ] {
        let t: IdentityType = serde_json::from_value(json!(n)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t, want);
        assert_eq!(serde_json::to_value(t).unwrap_or(Value::Null), json!(n));
        assert_eq!(t.to_string(), n.to_string());
        assert_eq!(i64::from(t), n);
        assert_eq!(IdentityType::from(n), want);
    }
    let id: AzureIdentity = yaml("metadata: {name: x}\nspec:\n  type: 7\n");
    assert_eq!(
        format!("unsupported identity type {}", id.spec.type_),
        "unsupported identity type 7"
    );
}

#[test]
fn assigned_state_strings() {
    for (s, want, assigned) in [
        ("", AssignedIdentityState::Legacy, true),
        ("Created", AssignedIdentityState::Created, false),
        ("Assigned", AssignedIdentityState::Assigned, true),
        ("Unassigned", AssignedIdentityState::Unassigned, false),
        (
            "assigned",
            AssignedIdentityState::Other("assigned".into()),
            false,
        ),
    ] {
        let got: AssignedIdentityState =
            serde_json::from_value(json!(s)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, want);
        assert_eq!(got.as_str(), s);
        assert_eq!(got.to_string(), s);
        assert_eq!(got.is_assigned(), assigned, "{s}");
    }
    assert_eq!(ASSIGNED_ID_CREATED, "Created");
    assert_eq!(ASSIGNED_ID_ASSIGNED, "Assigned");
    assert_eq!(ASSIGNED_ID_UNASSIGNED, "Unassigned");
}

#[test]
fn appendix_a_round_trips() {
    let aai: AzureAssignedIdentity = yaml(APPENDIX_A);
    assert_eq!(
        aai.metadata.name.as_deref(),
        Some(assigned_identity_name("demo-7d9c-abcde", "app-ns", "kv-identity").as_str())
    );
    let labels = aai.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(NODENAME_LABEL).map(String::as_str),
        Some("aks-nodepool1-12345678-vmss000001")
    );
    assert_eq!(
        aai.metadata.finalizers.clone().unwrap_or_default(),
        [ASSIGNED_IDENTITY_FINALIZER]
    );
    let id = aai.spec.azure_identity_ref.clone().unwrap_or_default();
    assert_eq!(id.metadata.resource_version.as_deref(), Some("12345"));
    assert_eq!(id.spec.client_id, "00000000-0000-0000-0000-000000000001");
    let b = aai.spec.azure_binding_ref.clone().unwrap_or_default();
    assert_eq!(b.spec.selector, "kv-selector");
    assert_eq!(aai.spec.node_name, "aks-nodepool1-12345678-vmss000001");
    let st = aai.status.clone().unwrap_or_default();
    assert_eq!(st.status, AssignedIdentityState::Assigned);
    assert_eq!(st.available_replicas, 1);

    let v = serde_json::to_value(&aai).unwrap_or(Value::Null);
    assert_eq!(v["spec"]["azureIdentityRef"]["kind"], "AzureIdentity");
    assert_eq!(v["spec"]["azureIdentityRef"]["apiVersion"], API_VERSION);
    assert_eq!(v["spec"]["nodename"], "aks-nodepool1-12345678-vmss000001");
    assert_eq!(v["spec"]["podNamespace"], "app-ns");
    assert_eq!(
        v["status"],
        json!({"availableReplicas": 1, "status": "Assigned"})
    );
    let back: AzureAssignedIdentity = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, aai);
}

#[test]
fn embedded_ref_without_metadata_is_accepted() {
    let spec: AzureAssignedIdentitySpec = serde_json::from_value(json!({
        "azureIdentityRef": {"spec": {"clientID": "c"}},
        "azureBindingRef": null
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.azure_identity_ref.map(|i| i.spec.client_id),
        Some("c".to_owned())
    );
    assert_eq!(spec.azure_binding_ref, None);
    assert!(
        serde_json::from_value::<AzureAssignedIdentitySpec>(json!({"azureIdentityRef": 1}))
            .is_err()
    );
}

#[test]
fn encoding_omits_empty_like_go() {
    let id = AzureIdentity::new(
        "x",
        AzureIdentitySpec {
            client_id: "c".into(),
            ..Default::default()
        },
    );
    let v = serde_json::to_value(&id).unwrap_or(Value::Null);
    assert_eq!(
        v,
        json!({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
               "metadata": {"name": "x"}, "spec": {"type": 0, "clientID": "c"}})
    );
    let status =
        serde_json::to_value(AzureAssignedIdentityStatus::default()).unwrap_or(Value::Null);
    assert_eq!(status, json!({}));
    let b = serde_json::to_value(AzureIdentityBindingSpec {
        azure_identity: "i".into(),
        selector: "s".into(),
        weight: 2,
        ..Default::default()
    })
    .unwrap_or(Value::Null);
    assert_eq!(
        b,
        json!({"azureIdentity": "i", "selector": "s", "weight": 2})
    );
    let e = serde_json::to_value(AzurePodIdentityExceptionStatus::default()).unwrap_or(Value::Null);
    assert_eq!(e, json!({}));
}

#[test]
fn constants_and_names() {
    assert_eq!(POD_LABEL_KEY, "aadpodidbinding");
    assert_eq!(
        ASSIGNED_IDENTITY_FINALIZER,
        "azureassignedidentity.finalizers.aadpodidentity.k8s.io"
    );
    assert_eq!(NODENAME_LABEL, "nodename");
    assert_eq!(BEHAVIOR_ANNOTATION, "aadpodidentity.k8s.io/Behavior");
    assert_eq!(BEHAVIOR_NAMESPACED, "namespaced");
    assert_eq!(assigned_identity_name("p", "ns", "id"), "p-ns-id");
    assert_eq!(assigned_identity_name("a-b", "c", "d-e"), "a-b-c-d-e");
    use kube::Resource;
    assert_eq!(AzureIdentity::api_version(&()), API_VERSION);
    assert_eq!(
        AzureAssignedIdentity::plural(&()),
        AZURE_ASSIGNED_IDENTITY_RESOURCE
    );
    let mut id = AzureIdentity::new("x", AzureIdentitySpec::default());
    assert_eq!(
        id.metadata.annotations, None,
        "no CRD annotation leaks into objects"
    );
    id.metadata.annotations =
        Some([(BEHAVIOR_ANNOTATION.to_owned(), "Namespaced".to_owned())].into());
    assert!(!is_namespaced_identity(&id), "comparison is case-sensitive");
}

// ----------------------------------------------------------------------------------------------
// Properties
// ----------------------------------------------------------------------------------------------

fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("spec".to_owned()),
            Just("metadata".to_owned()),
            Just("status".to_owned()),
            Just("type".to_owned()),
            Just("clientID".to_owned()),
            Just("ClientPassword".to_owned()),
            Just("azureIdentityRef".to_owned()),
            Just("podLabels".to_owned()),
            "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn decoding_arbitrary_json_never_panics(v in arb_json()) {
        let _ = serde_json::from_value::<AzureIdentity>(v.clone());
        let _ = serde_json::from_value::<AzureIdentityBinding>(v.clone());
        let _ = serde_json::from_value::<AzureAssignedIdentity>(v.clone());
        let _ = serde_json::from_value::<AzurePodIdentityException>(v.clone());
        let _ = serde_json::from_value::<AzureAssignedIdentitySpec>(v);
    }

    #[test]
    fn fold_is_ascii_case_insensitive_equality(a in "[a-zA-Z]{0,8}", b in "[a-zA-Z]{0,8}") {
        proptest::prop_assert_eq!(gojson::go_fold_eq(&a, &b), a.eq_ignore_ascii_case(&b));
    }

    #[test]
    fn decoded_specs_reencode_stably(v in arb_json()) {
        if let Ok(spec) = serde_json::from_value::<AzureIdentitySpec>(v) {
            let once = serde_json::to_value(&spec).unwrap_or(Value::Null);
            let again: AzureIdentitySpec = serde_json::from_value(once.clone())
                .unwrap_or_else(|e| panic!("{e}"));
            proptest::prop_assert_eq!(again, spec);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Against the simulated API server's schema logic
// ----------------------------------------------------------------------------------------------

fn schema_and_columns(plural: &str) -> (Value, Value) {
    let crd = crd_named(&format!("{plural}.{GROUP}"));
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (schema_of(&crd), columns)
}

fn admit_yaml(plural: &str, doc: &str) -> kube_sim_schema::Admission {
    let (schema, _) = schema_and_columns(plural);
    let mut obj: Value = yaml(doc);
    kube_sim_schema::admit(&schema, &mut obj)
}

#[test]
fn upstream_documents_are_accepted_by_the_crd_schemas() {
    for (plural, doc) in [
        (AZURE_IDENTITY_RESOURCE, README_IDENTITY),
        (AZURE_IDENTITY_RESOURCE, DOCS_SP),
        (AZURE_IDENTITY_RESOURCE, DOCS_SP_MULTI),
        (AZURE_IDENTITY_RESOURCE, DOCS_SP_CERT),
        (AZURE_IDENTITY_BINDING_RESOURCE, README_BINDING),
        (AZURE_POD_IDENTITY_EXCEPTION_RESOURCE, DOCS_EXCEPTION),
        (AZURE_ASSIGNED_IDENTITY_RESOURCE, APPENDIX_A),
    ] {
        let out = admit_yaml(plural, doc);
        assert!(out.errors.is_empty(), "{plural}: {:?}", out.errors);
        assert!(
            out.unknown_fields.is_empty(),
            "{plural}: {:?}",
            out.unknown_fields
        );
    }
}

#[test]
fn legacy_keys_are_kept_by_the_server_unlike_upstream() {
    // Upstream's v1.6 breaking change: structural pruning dropped the old spellings (or kubectl's
    // strict validation refused them). podid's schemas list them, so they are stored as written.
    for (plural, doc) in [
        (AZURE_IDENTITY_RESOURCE, LEGACY_IDENTITY),
        (AZURE_IDENTITY_BINDING_RESOURCE, LEGACY_BINDING),
        (AZURE_POD_IDENTITY_EXCEPTION_RESOURCE, LEGACY_EXCEPTION),
    ] {
        let (schema, _) = schema_and_columns(plural);
        let mut obj: Value = yaml(doc);
        let before = obj.clone();
        let out = kube_sim_schema::admit(&schema, &mut obj);
        assert!(out.errors.is_empty(), "{plural}: {:?}", out.errors);
        assert!(
            out.unknown_fields.is_empty(),
            "{plural}: {:?}",
            out.unknown_fields
        );
        assert_eq!(obj, before, "{plural}: nothing pruned");
    }
    // The kept keys decode, and say they are legacy.
    let (schema, _) = schema_and_columns(AZURE_IDENTITY_RESOURCE);
    let mut obj: Value = yaml(LEGACY_IDENTITY);
    let _ = kube_sim_schema::admit(&schema, &mut obj);
    let id: AzureIdentity = serde_json::from_value(obj).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(id.spec.client_id, "legacy-client");
    let written: Vec<(&str, &str)> = id
        .spec
        .legacy_keys
        .iter()
        .map(|l| (l.written.as_str(), l.field))
        .collect();
    assert_eq!(
        written,
        [
            ("ClientId", "clientID"),
            ("ClientPassword", "clientPassword"),
            ("ResourceID", "resourceID"),
            ("TenantID", "tenantID")
        ]
    );
    // A spelling podid does not list is still unknown (pruned, or refused by strict validation).
    let out = admit_yaml(
        AZURE_IDENTITY_RESOURCE,
        "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: {name: x}\nspec: {clientid: c}\n",
    );
    assert_eq!(out.unknown_fields, ["spec.clientid"]);
}

#[test]
fn legacy_keys_are_recorded_and_fill_empty_current_keys() {
    let id: AzureIdentity = yaml(LEGACY_IDENTITY);
    assert_eq!(id.spec.legacy_keys.iter().count(), 4);
    assert!(id.spec.legacy_keys.iter().all(|l| !l.ignored));
    let current: AzureIdentity = yaml(README_IDENTITY);
    assert!(current.spec.legacy_keys.is_empty());
    // An empty current key takes the legacy value; a non-empty one wins and the legacy key is
    // marked ignored.
    let spec: AzureIdentitySpec = serde_json::from_value(
        json!({"clientID": "", "ClientID": "old-c", "resourceID": "new-r", "ResourceID": "old-r"}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.client_id, "old-c");
    assert_eq!(spec.resource_id, "new-r");
    let flags: Vec<(&str, bool)> = spec
        .legacy_keys
        .iter()
        .map(|l| (l.written.as_str(), l.ignored))
        .collect();
    assert_eq!(flags, [("ClientID", false), ("ResourceID", true)]);
    // Spelling is not meaning: equal values compare equal.
    let b1: AzureIdentityBinding = yaml(LEGACY_BINDING);
    let mut b2 = b1.clone();
    b2.spec.legacy_keys = LegacyKeys::default();
    assert_eq!(b1, b2);
    // And re-encoding writes only the current keys.
    let v = serde_json::to_value(&b1.spec).unwrap_or(Value::Null);
    assert_eq!(
        v,
        json!({"azureIdentity": "legacy", "selector": "legacy-selector"})
    );
}

#[test]
fn wrong_identity_type_is_rejected_like_the_apiserver() {
    let out = admit_yaml(
        AZURE_IDENTITY_RESOURCE,
        "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: {name: x}\nspec: {type: \"0\"}\n",
    );
    let msgs: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            r#"spec.type: Invalid value: "string": spec.type in body must be of type integer: "string""#
        ]
    );
}

#[test]
fn objects_written_by_rust_need_no_pruning() {
    let (identity_schema, _) = schema_and_columns(AZURE_IDENTITY_RESOURCE);
    let (aai_schema, _) = schema_and_columns(AZURE_ASSIGNED_IDENTITY_RESOURCE);
    let id: AzureIdentity = yaml(DOCS_SP_MULTI);
    let mut v = serde_json::to_value(&id).unwrap_or(Value::Null);
    let out = kube_sim_schema::admit(&identity_schema, &mut v);
    assert!(
        out.errors.is_empty() && out.unknown_fields.is_empty(),
        "{out:?}"
    );

    let aai: AzureAssignedIdentity = yaml(APPENDIX_A);
    let mut v = serde_json::to_value(&aai).unwrap_or(Value::Null);
    let before = v.clone();
    let out = kube_sim_schema::admit(&aai_schema, &mut v);
    assert!(
        out.errors.is_empty() && out.unknown_fields.is_empty(),
        "{out:?}"
    );
    assert_eq!(v, before, "nothing pruned or defaulted");
}

#[test]
fn kubectl_get_table_columns() {
    let (_, columns) = schema_and_columns(AZURE_IDENTITY_RESOURCE);
    let cols = kube_sim_schema::crd_columns(&columns);
    let mut obj: Value = yaml(README_IDENTITY);
    obj["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    let now: jiff::Timestamp = "2024-01-01T00:03:02Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let t = kube_sim_schema::table(
        &cols,
        &[&obj],
        json!({"resourceVersion": "1"}),
        kube_sim_schema::IncludeObject::Metadata,
        now,
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "demo",
            "0",
            "11111111-2222-3333-4444-555555555555",
            "3m2s",
            obj["spec"]["resourceID"]
        ]),
        "the server sends every cell; kubectl hides priority-1 columns without -o wide"
    );
    let (_, aai_columns) = schema_and_columns(AZURE_ASSIGNED_IDENTITY_RESOURCE);
    let cols = kube_sim_schema::crd_columns(&aai_columns);
    let names: Vec<(&str, i32)> = cols.iter().map(|c| (c.name.as_str(), c.priority)).collect();
    assert_eq!(
        names,
        [
            ("Name", 0),
            ("Pod", 0),
            ("PodNamespace", 0),
            ("Identity", 0),
            ("Status", 0),
            ("Age", 0),
            ("Node", 1),
            ("Binding", 1),
            ("ClientID", 1)
        ],
        "kubectl get shows who, which identity and its state; -o wide adds where"
    );
    let mut aai: Value = yaml(APPENDIX_A);
    aai["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    let t = kube_sim_schema::table(
        &cols,
        &[&aai],
        json!({"resourceVersion": "1"}),
        kube_sim_schema::IncludeObject::Metadata,
        now,
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[1], json!(aai["spec"]["pod"]));
    assert_eq!(cells[2], json!(aai["spec"]["podNamespace"]));
    assert_eq!(
        cells[3],
        json!(aai["spec"]["azureIdentityRef"]["metadata"]["name"])
    );
    assert_eq!(cells[4], json!(aai["status"]["status"]));
    assert_eq!(cells[6], json!(aai["spec"]["nodename"]));
    assert_eq!(
        cells[7],
        json!(aai["spec"]["azureBindingRef"]["metadata"]["name"])
    );
    assert_eq!(
        cells[8],
        json!(aai["spec"]["azureIdentityRef"]["spec"]["clientID"])
    );
}
