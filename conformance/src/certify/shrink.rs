//! Shrinking a finding: its first case made smaller while it still shows
//! the same fingerprint, saved as a scenario file, and rerun to check that
//! it replays.

use super::{fingerprint, run_case, CaseResult, Config, Subject};
use crate::model::MinimalCase;
use crate::scenario::{self, Expect, FirstViolation, Scenario};
use cpsim_sim::{ClockMode, RuleId, Violation};
use proptest::strategy::ValueTree;

pub(super) fn first_with_fingerprint(r: &CaseResult, fp: &str) -> Option<Violation> {
    r.violations
        .iter()
        .find(|v| fingerprint(v, &r.trace) == fp)
        .cloned()
}

/// Shrinks case `tree` while it still shows fingerprint `fp`; saves it;
/// reruns it to check determinism.
pub(super) fn shrink(
    subject: &Subject,
    tree: &mut impl ValueTree<Value = Scenario>,
    fp: &str,
    cfg: &Config,
    seed: u64,
    n: usize,
) -> Option<(CaseResult, MinimalCase)> {
    let shows = |s: &Scenario| -> Option<CaseResult> {
        let r = run_case(subject, s);
        r.violations
            .iter()
            .any(|v| fingerprint(v, &r.trace) == fp)
            .then_some(r)
    };
    let mut best = tree.current();
    let mut best_run = shows(&best)?;
    let mut steps = 0;
    if tree.simplify() {
        loop {
            steps += 1;
            if steps > cfg.shrink_steps {
                break;
            }
            let cand = tree.current();
            match shows(&cand) {
                Some(r) => {
                    best = cand;
                    best_run = r;
                    if !tree.simplify() {
                        break;
                    }
                }
                None => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    // Pin the exact replay: the first violation of that fingerprint, at its step.
    let v = first_with_fingerprint(&best_run, fp)?;
    let mut s = best;
    if let Some(ext) = &subject.external {
        ext.prepare(&mut s);
    }
    let rules: std::collections::BTreeSet<RuleId> =
        best_run.violations.iter().map(|v| v.rule).collect();
    s.name = format!("{} shrunk: {}", subject.name, fp);
    s.description = format!(
        "Found by `cpsim certify --provider {} --seed {seed}` and shrunk to {} steps.",
        subject.name,
        s.steps.len()
    );
    s.expect = Expect {
        violations: Some(rules.into_iter().collect()),
        first_violation: Some(FirstViolation {
            rule: v.rule,
            step: v.step,
        }),
        ..Expect::default()
    };
    let deterministic = (subject.clock == ClockMode::Virtual)
        .then(|| run_case(subject, &s).trace == best_run.trace);
    let saved_to = cfg.regressions.as_ref().and_then(|dir| {
        let file = dir.join(format!(
            "{}-{}-{:x}-{n}.json",
            subject.name,
            v.rule.as_str().to_lowercase(),
            seed
        ));
        std::fs::create_dir_all(dir).ok()?;
        std::fs::write(&file, scenario::to_pretty_json(&s)).ok()?;
        Some(file)
    });
    let replay = match &saved_to {
        Some(f) => format!("cpsim replay {}", f.display()),
        None => format!(
            "cpsim certify --provider {} --seed {seed} --cases {}",
            subject.name, cfg.cases
        ),
    };
    let trace = best_run.trace.clone();
    Some((
        best_run,
        MinimalCase {
            scenario: s,
            trace,
            saved_to,
            replay,
            deterministic,
        },
    ))
}
