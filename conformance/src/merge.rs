//! Combining the certifications of a partitioned run's shards into the
//! certification of the whole run (`cpsim merge`).
//!
//! Each shard ran a disjoint set of lanes of the same seed and budget
//! (`certify --partition K/N`). Merging adds the counters, and per
//! fingerprint adds the case counts, "or"s the root-cause flags and keeps
//! the finding (violation and minimal case) of the smallest first case; the
//! verdict and the unexercised rules are then computed from the sums. That
//! is exactly how the unsharded run combines its lanes, so the merge of all
//! N shards equals the unsharded run (except for `elapsed_s`, here the
//! slowest shard's).

use crate::certify;
use crate::model::{sort_findings, Certification, Finding, RuleStat};
use std::collections::BTreeMap;

/// Merges the shards `parts` (each named by where it came from, for error
/// messages). Shards of different runs (provider, seed, budget, lanes,
/// strictness, shard count) or a shard given twice are an error; missing or
/// interrupted shards give a certification marked incomplete.
pub fn merge(parts: Vec<(String, Certification)>) -> Result<Certification, String> {
    let stalls: u64 = parts.iter().map(|(_, c)| c.stalls).sum();
    let Some((first_name, first)) = parts.first() else {
        return Err("nothing to merge".into());
    };
    let count = first.partition.map_or(1, |p| p.count);
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, c) in &parts {
        let differ = |what: &str, a: String, b: String| {
            Err(format!(
                "{name} is not a shard of the same run as {first_name}: {what} {b} there, {a} here"
            ))
        };
        if c.provider != first.provider {
            return differ("provider", c.provider.clone(), first.provider.clone());
        }
        if c.seed != first.seed {
            return differ("seed", c.seed.to_string(), first.seed.to_string());
        }
        if c.budget != first.budget {
            return differ("--cases", c.budget.to_string(), first.budget.to_string());
        }
        if c.lanes != first.lanes {
            return differ("lanes", c.lanes.to_string(), first.lanes.to_string());
        }
        if c.strict != first.strict {
            return differ("strict", c.strict.to_string(), first.strict.to_string());
        }
        let (index, n) = c.partition.map_or((1, 1), |p| (p.index, p.count));
        if n != count {
            return differ("shard count", n.to_string(), count.to_string());
        }
        if let Some(other) = seen.insert(index, name) {
            return Err(format!(
                "shard {index}/{count} is given twice: {other} and {name}"
            ));
        }
    }

    let mut notes: Vec<String> = Vec::new();
    let missing: Vec<String> = (1..=count)
        .filter(|k| !seen.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "shard{} {} missing",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
    }
    let mut rules: Vec<RuleStat> = first
        .rules
        .iter()
        .map(|r| RuleStat {
            id: r.id,
            exercised: 0,
            violations: 0,
        })
        .collect();
    let mut found: BTreeMap<String, Finding> = BTreeMap::new();
    let (mut cases, mut elapsed) = (0, 0f64);
    let mut coverage = std::collections::BTreeSet::new();
    for (name, c) in parts.iter() {
        coverage.extend(c.coverage.iter().copied());
        if let Some(why) = &c.incomplete {
            let which = c.partition.map_or(name.clone(), |p| format!("shard {p}"));
            notes.push(format!("{which}: {why}"));
        }
        cases += c.cases;
        elapsed = elapsed.max(c.elapsed_s);
        for s in &c.rules {
            match rules.iter_mut().find(|r| r.id == s.id) {
                Some(r) => {
                    r.exercised += s.exercised;
                    r.violations += s.violations;
                }
                None => rules.push(s.clone()),
            }
        }
        for f in &c.findings {
            match found.get_mut(&f.fingerprint) {
                Some(e) => {
                    e.cases += f.cases;
                    e.root_cause |= f.root_cause;
                    if f.first_case < e.first_case {
                        e.first_case = f.first_case;
                        e.violation = f.violation.clone();
                        e.minimal = f.minimal.clone();
                    }
                }
                None => {
                    found.insert(f.fingerprint.clone(), f.clone());
                }
            }
        }
    }
    rules.sort_by_key(|r| r.id.index());
    let mut findings: Vec<Finding> = found.into_values().collect();
    sort_findings(&mut findings);
    let unexercised = certify::unexercised(&rules);
    let verdict = Certification::compute_verdict(&rules, &unexercised, first.strict);
    Ok(Certification {
        provider: first.provider.clone(),
        verdict,
        strict: first.strict,
        seed: first.seed,
        cases,
        budget: first.budget,
        lanes: first.lanes,
        partition: None,
        incomplete: (!notes.is_empty()).then(|| notes.join("; ")),
        elapsed_s: elapsed,
        // A shard's rerun command, as the whole run's.
        rerun: match first.partition {
            Some(p) => first.rerun.replace(&format!(" --partition {p}"), ""),
            None => first.rerun.clone(),
        },
        // Every shard replays the same saved failures first.
        replayed: first.replayed.clone(),
        replay_only: parts.iter().any(|(_, c)| c.replay_only),
        rules,
        findings,
        unexercised,
        coverage: coverage.into_iter().collect(),
        stalls,
    })
}
