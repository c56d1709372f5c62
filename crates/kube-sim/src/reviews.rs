//! The identity APIs: TokenRequest (`serviceaccounts/token`), TokenReview, SubjectAccessReview and its
//! self / local variants, SelfSubjectRulesReview, SelfSubjectReview. The decisions themselves are in
//! `kube-sim-auth`; this module feeds them live objects (the RBAC snapshot comes from [`crate::authz`]).

use serde_json::{Value, json};

use crate::Sim;
use crate::authn::User;
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::{ResKey, ResourceType};
use kube_sim_auth::token::{BoundObject, BoundObjectKind, ObjectRef};
use kube_sim_auth::{
    AuthError, ObjectLookup, ObjectState, ReviewError, ReviewedToken, TokenRequestInput,
};

struct StoreLookup<'a>(&'a Sim);

impl ObjectLookup for StoreLookup<'_> {
    fn service_account(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.0
            .store
            .get(&ResKey::new("", "serviceaccounts"), namespace, name)
            .map(|o| ObjectState::from_object(&o))
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.0
            .store
            .get(&ResKey::new("", "pods"), namespace, name)
            .map(|o| ObjectState::from_object(&o))
    }
    fn secret(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.0
            .store
            .get(&ResKey::new("", "secrets"), namespace, name)
            .map(|o| ObjectState::from_object(&o))
    }
    fn node(&self, name: &str) -> Option<ObjectState> {
        self.0
            .store
            .get(&ResKey::new("", "nodes"), "", name)
            .map(|o| ObjectState::from_object(&o))
    }
}

/// The API server's own audiences (`--api-audiences` defaults to the issuer).
pub fn api_audiences(sim: &Sim) -> Vec<String> {
    vec![sim.signer.issuer().to_string()]
}

/// Authenticate a service-account token: signature, time, audience, and liveness of the bound objects.
pub fn review_token(
    sim: &Sim,
    token: &str,
    audiences: &[String],
) -> Result<(User, ReviewedToken), ReviewError> {
    let reviewed = sim.signer.authenticate(
        token,
        crate::meta::now_unix(),
        audiences,
        &api_audiences(sim),
        &StoreLookup(sim),
    )?;
    Ok((User::from_user_info(&reviewed.user), reviewed))
}

fn auth_err(kind: &str, group: &str, name: &str, e: AuthError) -> ApiError {
    match e {
        AuthError::Invalid(errs) => ApiError::invalid(
            kind,
            group,
            name,
            errs.iter()
                .map(|f| Cause {
                    reason: f.cause_reason().into(),
                    message: f.to_string(),
                    field: f.field.clone(),
                })
                .collect(),
        ),
        AuthError::BadRequest(m) => ApiError::bad_request(m),
        other => ApiError::internal(other.to_string()),
    }
}

fn review_object(kind: &str, api_version: &str, body: &Value, status: Value) -> Value {
    // The request's metadata is echoed; a zero creationTimestamp is left out (1.34 omits it).
    let mut meta = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = meta.as_object_mut()
        && m.get("creationTimestamp").is_some_and(Value::is_null)
    {
        m.remove("creationTimestamp");
    }
    json!({"kind": kind, "apiVersion": api_version, "metadata": meta, "spec": body.get("spec").cloned().unwrap_or_else(|| json!({})), "status": status})
}

/// Handle a create on one of the review resources.
pub fn handle_review(
    sim: &Sim,
    user: &User,
    rt: &ResourceType,
    ns: Option<&str>,
    body: Value,
) -> ApiResult<Value> {
    let av = rt.api_version();
    let spec = body
        .get("spec")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    match rt.resource.as_str() {
        "tokenreviews" => {
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            if token.is_empty() {
                // The TokenReview REST refuses it before validation, as a 400.
                return Err(ApiError::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            let auds: Vec<String> = spec
                .get("audiences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let result = if token == sim.admin_token {
                // Static token: authenticated as the admin, audiences as requested.
                return Ok(review_object(
                    "TokenReview",
                    &av,
                    &body,
                    json!({"authenticated": true, "user": {"username": crate::ADMIN_USER, "groups": ["system:masters", "system:authenticated"]}, "audiences": if auds.is_empty() { api_audiences(sim) } else { auds }}),
                ));
            } else {
                sim.signer.authenticate(
                    token,
                    crate::meta::now_unix(),
                    &auds,
                    &api_audiences(sim),
                    &StoreLookup(sim),
                )
            };
            Ok(review_object(
                "TokenReview",
                &av,
                &body,
                kube_sim_auth::token_review_status(result),
            ))
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            // The apiserver's Invalid errors of access reviews name an empty kind (`.authorization.k8s.io ""`).
            let attrs = kube_sim_auth::Attributes::from_sar_spec(&spec)
                .map_err(|e| auth_err("", &rt.group, "", e))?;
            if rt.resource == "localsubjectaccessreviews" {
                let want = ns.unwrap_or("");
                if attrs.namespace() != want {
                    // The apiserver's Invalid error names an empty kind here (`.authorization.k8s.io ""`).
                    let field = "spec.resourceAttributes.namespace";
                    return Err(ApiError::invalid(
                        "",
                        "authorization.k8s.io",
                        "",
                        vec![Cause {
                            reason: "FieldValueInvalid".into(),
                            message: format!(
                                "{field}: Invalid value: {}: must match metadata.namespace",
                                kube_sim_machinery::gofmt::go_quote(attrs.namespace())
                            ),
                            field: field.into(),
                        }],
                    ));
                }
            }
            let d = kube_sim_auth::authorize(&attrs, crate::authz::rbac_snapshot(sim).as_ref());
            Ok(review_object(&rt.kind, &av, &body, d.to_status()))
        }
        "selfsubjectaccessreviews" => {
            let attrs = kube_sim_auth::Attributes::from_self_sar_spec(&spec, &user.user_info())
                .map_err(|e| auth_err("", &rt.group, "", e))?;
            let d = kube_sim_auth::authorize(&attrs, crate::authz::rbac_snapshot(sim).as_ref());
            Ok(review_object(&rt.kind, &av, &body, d.to_status()))
        }
        "selfsubjectrulesreviews" => {
            let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            let r = kube_sim_auth::rules_review(
                &user.user_info(),
                namespace,
                crate::authz::rbac_snapshot(sim).as_ref(),
            );
            Ok(review_object(&rt.kind, &av, &body, r.to_status()))
        }
        "selfsubjectreviews" => Ok(json!({
            "kind": "SelfSubjectReview", "apiVersion": av, "metadata": {"creationTimestamp": crate::meta::now_rfc3339()},
            "status": {"userInfo": user.to_json()}
        })),
        _ => Err(ApiError::no_route()),
    }
}

/// `POST serviceaccounts/NAME/token`.
pub fn token_request(sim: &Sim, ns: &str, sa_name: &str, body: Value) -> ApiResult<Value> {
    let kind = crate::meta::str_at(&body, "/kind");
    if !kind.is_empty() && kind != "TokenRequest" {
        let version =
            crate::resources::split_api_version(crate::meta::str_at(&body, "/apiVersion")).1;
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a TokenRequest: converting ({version}.{kind}) to (authentication.TokenRequest): unknown conversion"
        )));
    }
    let sa = sim
        .store
        .get(&ResKey::new("", "serviceaccounts"), ns, sa_name)
        .ok_or_else(|| ApiError::not_found("serviceaccounts", "", sa_name))?;
    let spec = body
        .get("spec")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut input = TokenRequestInput::new(
        sim.signer.issuer(),
        ns,
        sa_name,
        crate::meta::str_at(&sa, "/metadata/uid"),
    );
    input.audiences = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| api_audiences(sim));
    input.expiration_seconds = spec.get("expirationSeconds").and_then(Value::as_i64);
    if let Some(b) = spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        let kind = crate::meta::str_at(b, "/kind");
        let name = b.get("name").and_then(Value::as_str).unwrap_or("");
        let want_uid = b.get("uid").and_then(Value::as_str).unwrap_or("");
        let (resource, bkind) = match kind {
            "Pod" => ("pods", BoundObjectKind::Pod),
            "Secret" => ("secrets", BoundObjectKind::Secret),
            "Node" => ("nodes", BoundObjectKind::Node),
            other => {
                let (group, version) =
                    crate::resources::split_api_version(crate::meta::str_at(b, "/apiVersion"));
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={other}"
                )));
            }
        };
        let obj_ns = if bkind == BoundObjectKind::Node {
            ""
        } else {
            ns
        };
        let obj = sim
            .store
            .get(&ResKey::new("", resource), obj_ns, name)
            .ok_or_else(|| ApiError::not_found(resource, "", name))?;
        let uid = crate::meta::str_at(&obj, "/metadata/uid").to_string();
        if !want_uid.is_empty() && want_uid != uid {
            // The apiserver names the bound kind as the resource here (`Operation cannot be fulfilled on Pod "p"`).
            return Err(ApiError::conflict_with(
                kind,
                "",
                name,
                &format!(
                    "the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        if bkind == BoundObjectKind::Pod {
            let pod_sa = obj
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .unwrap_or("default");
            if pod_sa != sa_name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to pod \"{name}\": pod uses service account \"{pod_sa}\", not \"{sa_name}\""
                )));
            }
            if let Some(node) = obj
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                let node_uid = sim
                    .store
                    .get(&ResKey::new("", "nodes"), "", node)
                    .and_then(|n| {
                        n.pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                input.node = Some(ObjectRef::new(node, node_uid));
            }
        }
        input.bound_object = Some(BoundObject {
            kind: bkind,
            object: ObjectRef::new(name, uid),
        });
    }
    let issued = sim
        .signer
        .issue(&input, crate::meta::now_unix())
        .map_err(|e| auth_err("TokenRequest", "authentication.k8s.io", "", e))?;
    let mut spec_out = spec.clone();
    spec_out["audiences"] = json!(input.audiences);
    spec_out["expirationSeconds"] = json!(
        issued.expiration_unix
            - issued
                .claims
                .get("iat")
                .and_then(Value::as_i64)
                .unwrap_or(issued.expiration_unix)
    );
    if spec_out.get("boundObjectRef").is_none() {
        spec_out["boundObjectRef"] = Value::Null;
    }
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa_name, "namespace": ns, "uid": crate::meta::str_at(&sa, "/metadata/uid"), "creationTimestamp": crate::meta::now_rfc3339()},
        "spec": spec_out,
        "status": issued.token_request_status()
    }))
}
