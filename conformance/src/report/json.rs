//! `report.json`: the certification for programs.
//!
//! One object. Besides the run's parameters and verdict it has `rules`, one
//! entry per catalogue rule in catalogue order, `findings`, one entry per
//! distinct violation, and `unexercised`, the IDs of reachable MUST rules no
//! case exercised. `report_version` changes when a field changes meaning or
//! goes away; new fields may appear without it.
//!
//! `cases` is how many cases ran; `budget` how many the whole run asked for
//! (over every shard); `partition` is `"K/N"` for one shard of a
//! partitioned run (else `null`); `complete` is `false` (and `incomplete`
//! says why) for an interrupted run or a merge with shards missing. Each
//! finding carries what a merge needs to combine shards exactly: the global
//! index of its first case (`first_case`), whether it was ever a case's
//! earliest violation (`root_cause`), the `violation` and the `minimal` case
//! (scenario and trace) in full. [`from_str`] reads a report back.

use super::{binds_str, level_str, rule_reports};
use crate::model::{Certification, Finding, Partition, RuleStat, Verdict};
use cpsim_sim::RuleId;
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
    let mut v = json!({
        "report_version": REPORT_VERSION,
        "verdict": cert.verdict.to_string(),
        "provider": cert.provider,
        "strict": cert.strict,
        "seed": cert.seed,
        "cases": cert.cases,
        "budget": cert.budget,
        "lanes": cert.lanes,
        "partition": cert.partition.map(|p| p.to_string()),
        "complete": cert.incomplete.is_none(),
        "incomplete": cert.incomplete,
        "replay_only": cert.replay_only,
        "elapsed_s": cert.elapsed_s,
        "rerun": cert.rerun,
        "replayed": cert.replayed.iter().map(|r| json!({
            "file": r.file.display().to_string(),
            "violations": r.violations.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
            "error": r.error,
        })).collect::<Vec<_>>(),
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
        "coverage": {
            "situations": cert.coverage.len(),
            "keys": cert.coverage,
        },
    });
    if cert.stalls > 0 {
        v["stalls"] = json!(cert.stalls);
    }
    v
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
        "recurred": m.map(|m| m.recurred),
        "minimal_events": m.map(|m| m.trace.events.len()),
        "first_case": f.first_case,
        "root_cause": f.root_cause,
        "violation": f.violation,
        "minimal": f.minimal,
    })
}

/// Reads a `report.json` back into the certification it was written from
/// (what `cpsim merge` combines). The error names the field that is wrong.
pub fn from_str(text: &str) -> Result<Certification, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let version = v.get("report_version").and_then(Value::as_u64);
    if version != Some(u64::from(REPORT_VERSION)) {
        return Err(format!(
            "report_version is {}, this cpsim reads version {REPORT_VERSION}",
            version.map_or("missing".to_string(), |n| n.to_string())
        ));
    }
    fn field<T: serde::de::DeserializeOwned>(v: &Value, name: &str) -> Result<T, String> {
        let x = v
            .get(name)
            .ok_or_else(|| format!("missing field `{name}`"))?;
        T::deserialize(x).map_err(|e| format!("field `{name}`: {e}"))
    }
    fn optional<T: serde::de::DeserializeOwned>(
        v: &Value,
        name: &str,
    ) -> Result<Option<T>, String> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => T::deserialize(x)
                .map(Some)
                .map_err(|e| format!("field `{name}`: {e}")),
        }
    }
    let partition = match v.get("partition") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(
            p.parse::<Partition>()
                .map_err(|e| format!("field `partition`: {e}"))?,
        ),
        Some(other) => return Err(format!("field `partition`: expected \"K/N\", got {other}")),
    };
    let rules: Vec<Value> = field(&v, "rules")?;
    let mut stats = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let id: String = field(r, "id").map_err(|e| format!("rules[{i}]: {e}"))?;
        let id = RuleId::parse(&id).ok_or_else(|| format!("rules[{i}]: unknown rule `{id}`"))?;
        stats.push(RuleStat {
            id,
            exercised: field(r, "exercised").map_err(|e| format!("rules[{i}]: {e}"))?,
            violations: field(r, "violations").map_err(|e| format!("rules[{i}]: {e}"))?,
        });
    }
    let found: Vec<Value> = field(&v, "findings")?;
    let mut findings = Vec::new();
    for (i, f) in found.iter().enumerate() {
        let at = |e: String| format!("findings[{i}]: {e}");
        findings.push(Finding {
            fingerprint: field(f, "fingerprint").map_err(at)?,
            violation: field(f, "violation").map_err(at)?,
            cases: field(f, "cases").map_err(at)?,
            first_case: field(f, "first_case").map_err(at)?,
            root_cause: field(f, "root_cause").map_err(at)?,
            minimal: field(f, "minimal").map_err(at)?,
        });
    }
    let unexercised: Vec<String> = field(&v, "unexercised")?;
    let unexercised = unexercised
        .iter()
        .map(|id| RuleId::parse(id).ok_or_else(|| format!("unexercised: unknown rule `{id}`")))
        .collect::<Result<Vec<_>, _>>()?;
    let verdict: String = field(&v, "verdict")?;
    let verdict = match verdict.as_str() {
        "pass" => Verdict::Pass,
        "non-strict" => Verdict::NonStrict,
        "fail" => Verdict::Fail,
        other => return Err(format!("field `verdict`: unknown verdict `{other}`")),
    };
    Ok(Certification {
        provider: field(&v, "provider")?,
        verdict,
        strict: field(&v, "strict")?,
        seed: field(&v, "seed")?,
        cases: field(&v, "cases")?,
        budget: field(&v, "budget")?,
        lanes: field(&v, "lanes")?,
        partition,
        incomplete: field(&v, "incomplete")?,
        elapsed_s: field(&v, "elapsed_s")?,
        // Fields reports before saved-failure replay did not have.
        rerun: optional(&v, "rerun")?.unwrap_or_default(),
        replayed: optional(&v, "replayed")?.unwrap_or_default(),
        replay_only: optional(&v, "replay_only")?.unwrap_or_default(),
        rules: stats,
        findings,
        unexercised,
        // Reports written before the coverage map have none.
        coverage: v
            .get("coverage")
            .and_then(|c| c.get("keys"))
            .map(|k| serde_json::from_value(k.clone()).map_err(|e| format!("coverage.keys: {e}")))
            .transpose()?
            .unwrap_or_default(),
        stalls: v.get("stalls").and_then(Value::as_u64).unwrap_or(0),
    })
}
