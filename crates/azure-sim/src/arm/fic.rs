//! Federated identity credential writes: parsing, upserting and the concurrent-write error.

use serde_json::{Map, Value};

use super::*;
use crate::world::FederatedCredential;

/// Parse and validate a federated identity credential PUT body.
pub fn parse_fic(name: &str, body: &Map<String, Value>) -> Result<FederatedCredential, ArmError> {
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p,
        _ => {
            return Err(ArmError::new(
                400,
                "BadRequest",
                "The request body must contain 'properties'.",
            ));
        }
    };
    let s = |k: &str| -> Result<String, ArmError> {
        match props.get(k) {
            Some(Value::String(v)) => Ok(v.clone()),
            None | Some(Value::Null) => Err(ArmError::new(
                400,
                "BadRequest",
                format!("The '{k}' property is required."),
            )),
            Some(_) => Err(ArmError::invalid_content(&format!(
                "Error converting value to type 'String'. Path 'properties.{k}'."
            ))),
        }
    };
    let audiences = match props.get("audiences") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| {
                ArmError::invalid_content(
                    "Error converting value to type 'String'. Path 'properties.audiences'.",
                )
            })?,
        None | Some(Value::Null) => {
            return Err(ArmError::new(
                400,
                "BadRequest",
                "The 'audiences' property is required.",
            ));
        }
        Some(_) => {
            return Err(ArmError::invalid_content(
                "Error converting value to type 'String[]'. Path 'properties.audiences'.",
            ));
        }
    };
    let f = FederatedCredential {
        name: name.to_string(),
        issuer: s("issuer")?,
        subject: s("subject")?,
        audiences,
        description: props
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    crate::world::validate_fic(&f).map_err(|m| ArmError::new(400, "BadRequest", m))?;
    Ok(f)
}

/// Insert or replace a credential on an identity, enforcing the limit and issuer+subject uniqueness.
/// Returns whether it was created.
pub fn upsert_fic(
    list: &mut Vec<FederatedCredential>,
    f: FederatedCredential,
) -> Result<bool, ArmError> {
    if list.iter().any(|x| {
        !x.name.eq_ignore_ascii_case(&f.name) && x.issuer == f.issuer && x.subject == f.subject
    }) {
        return Err(ArmError::new(
            400,
            "BadRequest",
            "Issuer and subject combination already exists for this Managed Identity.",
        ));
    }
    if let Some(x) = list
        .iter_mut()
        .find(|x| x.name.eq_ignore_ascii_case(&f.name))
    {
        *x = f;
        return Ok(false);
    }
    if list.len() >= crate::world::MAX_FICS {
        return Err(ArmError::new(
            400,
            "BadRequest",
            format!(
                "Too many Federated Identity Credentials. The maximum number of Federated Identity Credentials per Managed Identity is {}.",
                crate::world::MAX_FICS
            ),
        ));
    }
    list.push(f);
    Ok(true)
}

/// The 409 for overlapping credential writes on one identity.
pub fn concurrent_fic_write(uami_id: &str) -> ArmError {
    ArmError::new(
        409,
        "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
        format!(
            "Too many Federated Identity Credentials are written concurrently for the managed identity '{uami_id}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported."
        ),
    )
}
