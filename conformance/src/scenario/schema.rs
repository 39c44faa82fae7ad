//! The scenario format as a JSON Schema, generated from the Rust types so
//! that it cannot drift from what [`parse`](super::parse) accepts.
//!
//! The committed copy lives in `scenarios/scenario.schema.json`; the test
//! `scenario_schema` fails when it is stale (`CPSIM_UPDATE_SCHEMA=1` rewrites
//! it). The schema catches shapes, types, unknown fields, rule IDs and most
//! ranges; what it cannot express (host names used by steps, the provider's
//! name, probabilities adding up to at most 1) only the loader checks.

use super::Scenario;
use schemars::generate::SchemaSettings;

/// The JSON Schema (draft-07, which most editors understand) of a scenario file.
pub fn json_schema() -> serde_json::Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Scenario>()
        .to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "title".into(),
            "cpsim scenario file, format version 1".into(),
        );
        obj.insert(
            "$comment".into(),
            "Generated from the Rust types by `cpsim_certify::scenario::json_schema`; do not edit by hand (CPSIM_UPDATE_SCHEMA=1 cargo test -p cpsim-certify --test scenario_schema rewrites it).".into(),
        );
    }
    schema
}
