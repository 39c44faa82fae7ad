//! `scenarios/scenario.schema.json` is generated from the Rust types; this
//! test fails when the committed copy is stale. To rewrite it:
//!
//! ```sh
//! CPSIM_UPDATE_SCHEMA=1 cargo test -p cpsim-certify --test scenario_schema
//! ```

use cpsim_certify::scenario::json_schema;
use serde_json::Value;
use std::path::PathBuf;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/scenario.schema.json")
}

#[test]
fn committed_schema_is_up_to_date() {
    let generated = json_schema();
    let path = schema_path();
    let mut text = serde_json::to_string_pretty(&generated).unwrap();
    text.push('\n');
    if std::env::var_os("CPSIM_UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    // Compared as JSON values: key order and whitespace do not matter.
    let committed: Option<Value> = serde_json::from_str(&committed).ok();
    assert!(
        committed.as_ref() == Some(&generated),
        "{} is stale or missing; regenerate it with\n\n    CPSIM_UPDATE_SCHEMA=1 cargo test -p cpsim-certify --test scenario_schema\n",
        path.display()
    );
}

#[test]
fn schema_describes_the_format() {
    let s = json_schema();
    let defs = &s["definitions"];
    // Every rule ID is listed.
    let ids = defs["RuleId"]["enum"].as_array().unwrap();
    assert_eq!(ids.len(), cpsim_sim::CATALOGUE.len());
    assert!(ids.contains(&Value::from("COMP-3")));
    // Unknown fields are refused, and the ranges are there.
    assert_eq!(s["additionalProperties"], Value::Bool(false));
    assert_eq!(s["properties"]["hosts"]["maxItems"], 16);
    assert_eq!(defs["NetFaults"]["properties"]["loss"]["maximum"], 1.0);
    let steps = serde_json::to_string(&defs["Step"]).unwrap();
    assert!(steps.contains("\"maximum\":86400000"), "{steps}");
    assert!(steps.contains("\"maximum\":65507"), "{steps}");
    assert!(steps.contains("\"task_timing\""), "{steps}");
    // Address steps may name a family, a send the newest address: both
    // optional, so files written before them load unchanged.
    for (kind, field) in [
        ("address_add", "family"),
        ("duplicate_address", "family"),
        ("send", "newest"),
    ] {
        let v = defs["Step"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["properties"]["do"]["const"] == kind)
            .unwrap_or_else(|| panic!("{kind}"));
        assert!(v["properties"].get(field).is_some(), "{kind}.{field}");
        let required = v["required"].as_array().unwrap();
        assert!(!required.contains(&Value::from(field)), "{kind}.{field}");
    }
}

/// The schema's ranges are the loader's: every duration of the settings
/// at most one day, every probability 0 to 1, host names as the loader
/// takes them, trace steps from 1 (each bound is tested against the loader
/// in `scenario_load.rs`).
#[test]
fn schema_ranges_are_the_loaders() {
    let s = json_schema();
    let defs = &s["definitions"];
    for def in ["TimeLimits", "NetFaults", "TaskTiming"] {
        for (name, p) in defs[def]["properties"].as_object().unwrap() {
            if name.ends_with("_ms") {
                assert_eq!(p["maximum"], 86_400_000, "{def}.{name}");
                assert_eq!(p["minimum"], 0, "{def}.{name}");
            } else {
                assert_eq!(p["type"], "number", "{def}.{name}");
                assert_eq!(p["minimum"], 0.0, "{def}.{name}");
                assert_eq!(p["maximum"], 1.0, "{def}.{name}");
            }
        }
    }
    assert_eq!(defs["Millis"]["maximum"], 86_400_000);
    let host = &s["properties"]["hosts"]["items"];
    assert_eq!(
        (&host["minLength"], &host["maxLength"]),
        (&1.into(), &32.into())
    );
    assert_eq!(host["pattern"], "^[A-Za-z0-9_.\\-]+$");
    assert_eq!(defs["FirstViolation"]["properties"]["step"]["minimum"], 1);
    assert_eq!(s["properties"]["name"]["minLength"], 1);
}
