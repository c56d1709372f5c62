//! Authentication: who is calling. [`User`] (the apiserver's `user.Info`), bearer tokens (the admin token,
//! service-account JWTs through the TokenReview logic) and `Impersonate-*` headers.
//!
//! The admission webhooks, the review APIs and authorisation take a [`User`]; only this module and the server
//! read credentials from headers.

use serde_json::{Value, json};

use crate::authz::{Attrs, authorize};
use crate::error::{ApiError, ApiResult};
use crate::{ADMIN_USER, Sim};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Username.
    pub name: String,
    /// Uid.
    pub uid: String,
    /// Groups (always includes `system:authenticated` for authenticated users).
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl User {
    /// Anonymous caller.
    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
            extra: Default::default(),
        }
    }

    /// Whether the user is authenticated.
    pub fn authenticated(&self) -> bool {
        self.groups.iter().any(|g| g == "system:authenticated")
    }

    /// Whether the user belongs to `system:masters`.
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    /// The user as `kube-sim-auth` takes it.
    pub fn user_info(&self) -> kube_sim_auth::UserInfo {
        kube_sim_auth::UserInfo {
            username: self.name.clone(),
            uid: self.uid.clone(),
            groups: self.groups.clone(),
            extra: self.extra.clone(),
        }
    }

    /// The user a reviewed token or a review names.
    pub fn from_user_info(u: &kube_sim_auth::UserInfo) -> User {
        User {
            name: u.username.clone(),
            uid: u.uid.clone(),
            groups: u.groups.clone(),
            extra: u.extra.clone(),
        }
    }

    /// UserInfo JSON as authentication.k8s.io/v1 spells it.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            v["extra"] = json!(self.extra);
        }
        v
    }
}

// === impl Sim (authentication) ===

impl Sim {
    /// Authenticate a request from its `Authorization` header.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> ApiResult<User> {
        let Some(auth) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(User::anonymous());
        };
        let Some(token) = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .map(str::trim)
        else {
            return Err(ApiError::unauthorized());
        };
        if !token.is_empty() && constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(User {
                name: ADMIN_USER.into(),
                uid: String::new(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
                extra: Default::default(),
            });
        }
        match crate::reviews::review_token(self, token, &[]) {
            Ok((user, _)) => Ok(user),
            Err(_) => Err(ApiError::unauthorized()),
        }
    }

    /// Apply `Impersonate-*` headers when the caller may impersonate.
    pub fn impersonate(&self, user: User, headers: &http::HeaderMap) -> ApiResult<User> {
        let Some(target) = headers
            .get("impersonate-user")
            .and_then(|v| v.to_str().ok())
        else {
            let others: Vec<&str> = headers
                .keys()
                .map(|k| k.as_str())
                .filter(|k| {
                    *k == "impersonate-group"
                        || *k == "impersonate-uid"
                        || k.starts_with("impersonate-extra-")
                })
                .collect();
            if !others.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "requested {others:?} without impersonating a user"
                )));
            }
            return Ok(user);
        };
        let groups: Vec<String> = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        let check_in = |group: &str,
                        resource: &str,
                        sub: Option<&str>,
                        name: &str,
                        ns: Option<&str>|
         -> ApiResult<()> {
            let attrs = Attrs::resource("impersonate", group, resource, sub, ns, Some(name));
            if authorize(self, &user, &attrs).0 {
                Ok(())
            } else {
                Err(attrs.forbidden(&user.name))
            }
        };
        let check =
            |resource: &str, name: &str, ns: Option<&str>| check_in("", resource, None, name, ns);
        let mut out_groups = groups.clone();
        if let Some(rest) = target.strip_prefix("system:serviceaccount:") {
            let (ns, name) = rest.split_once(':').unwrap_or(("", rest));
            check("serviceaccounts", name, Some(ns))?;
            if groups.is_empty() {
                out_groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        } else {
            check("users", target, None)?;
        }
        for g in &groups {
            check("groups", g, None)?;
        }
        if target != "system:anonymous" && !out_groups.iter().any(|g| g == "system:authenticated") {
            out_groups.push("system:authenticated".into());
        }
        let mut extra = std::collections::BTreeMap::new();
        for (name, value) in headers {
            if let Some(key) = name.as_str().strip_prefix("impersonate-extra-")
                && let Ok(v) = value.to_str()
            {
                extra
                    .entry(key.to_string())
                    .or_insert_with(Vec::new)
                    .push(v.to_string());
            }
        }
        // Extras and uid are authorised separately, as the apiserver does (group authentication.k8s.io).
        for (key, values) in &extra {
            for v in values {
                check_in("authentication.k8s.io", "userextras", Some(key), v, None)?;
            }
        }
        let uid = headers
            .get("impersonate-uid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !uid.is_empty() {
            check_in("authentication.k8s.io", "uids", None, &uid, None)?;
        }
        Ok(User {
            name: target.to_string(),
            uid,
            groups: out_groups,
            extra,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
