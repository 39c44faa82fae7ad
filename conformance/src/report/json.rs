//! `report.json`: the certification for programs.
//!
//! One object. Besides the run's parameters and verdict it has `rules`, one
//! entry per catalogue rule in catalogue order, `findings`, one entry per
//! distinct violation, and `unexercised`, the IDs of reachable MUST rules no
//! case exercised. `report_version` changes when a field changes meaning or
//! goes away; new fields may appear without it.

use super::{binds_str, level_str, rule_reports};
use crate::model::{Certification, Finding};
use serde_json::{json, Value};

/// The version of the layout below.
pub const REPORT_VERSION: u32 = 1;

/// The report as a JSON value.
pub fn to_value(cert: &Certification) -> Value {
    let rules = rule_reports(cert);
    let count = |o: super::RuleOutcome| rules.iter().filter(|r| r.outcome == o).count();
    let rule_entries: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id.as_str(),
                "binds": binds_str(r.rule.binds),
                "level": level_str(r.rule.level),
                "exercised": r.stat.exercised,
                "violations": r.stat.violations,
                "outcome": r.outcome.as_str(),
                "source": r.rule.source,
                "text": r.rule.text,
            })
        })
        .collect();
    use super::RuleOutcome as O;
    json!({
        "report_version": REPORT_VERSION,
        "verdict": cert.verdict.to_string(),
        "provider": cert.provider,
        "strict": cert.strict,
        "seed": cert.seed,
        "cases": cert.cases,
        "elapsed_s": cert.elapsed_s,
        "summary": {
            "rules": rules.len(),
            "pass": count(O::Pass),
            "violated": count(O::Violated),
            "warnings": count(O::Warning),
            "platform_bugs": count(O::PlatformBug),
            "never_exercised": count(O::NeverExercised),
            "not_exercised": count(O::NotExercised),
        },
        "rules": rule_entries,
        "findings": cert.findings.iter().map(finding).collect::<Vec<_>>(),
        "unexercised": cert.unexercised.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
    })
}

/// The report as pretty-printed JSON, ending in a newline.
pub fn to_string(cert: &Certification) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(cert)).expect("a JSON value serialises");
    s.push('\n');
    s
}

fn finding(f: &Finding) -> Value {
    let v = &f.violation;
    let rule = v.rule.rule();
    let m = f.minimal.as_ref();
    json!({
        "fingerprint": f.fingerprint,
        "rule": v.rule.as_str(),
        "binds": binds_str(rule.binds),
        "level": level_str(rule.level),
        "headline": v.headline(),
        "message": v.message,
        "host": v.host,
        "instance": v.instance,
        "callback": v.callback,
        "step": v.step,
        "at": v.at.0,
        "at_text": v.at.to_string(),
        "cases": f.cases,
        "replay": m.map(|m| m.replay.as_str()),
        "scenario": m.and_then(|m| m.saved_to.as_ref()).map(|p| p.display().to_string()),
        "deterministic": m.and_then(|m| m.deterministic),
        "minimal_events": m.map(|m| m.trace.events.len()),
    })
}
