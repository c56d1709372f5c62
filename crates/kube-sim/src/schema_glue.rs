//! TEMPORARY local shim while kube-sim-schema is written; replaced by `pub use kube_sim_schema::*`.
#![allow(dead_code, unused_variables)]
use serde_json::Value;

pub struct FieldError {
    pub field: String,
}
impl FieldError {
    pub fn reason(&self) -> &'static str {
        "FieldValueInvalid"
    }
}
impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.field)
    }
}
pub fn prune(schema: &Value, obj: &mut Value) {}
pub fn apply_defaults(schema: &Value, obj: &mut Value) {}
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    Vec::new()
}
pub mod table {
    use serde_json::{Value, json};
    pub enum IncludeObject {
        None,
        Metadata,
        Object,
    }
    pub struct Column;
    pub fn crd_columns(v: &Value) -> Vec<Column> {
        Vec::new()
    }
    pub fn builtin_columns(k: &str) -> Vec<Column> {
        Vec::new()
    }
    pub fn table(
        c: &[Column],
        objs: &[&Value],
        meta: Value,
        i: IncludeObject,
        now: jiff::Timestamp,
    ) -> Value {
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
          "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}],
          "rows": objs.iter().map(|o| json!({"cells": [o["metadata"]["name"]], "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})).collect::<Vec<_>>()})
    }
}
