//! Shrinking a finding, on scenarios: the first case that showed a
//! fingerprint is made smaller while it still shows it, then saved as a
//! scenario file whose expectations say what a replay of that file sees,
//! and replayed from its text to check that it does.
//!
//! The shrinker works on a [`Scenario`], not on a generator's value tree, so
//! any case can be shrunk: generated, mutated or loaded from a file. Each
//! round proposes smaller variants, most reducing first — drop a host (and
//! every step that names it), drop runs of steps (halves, quarters, … single
//! steps), calm the network and task timing, seed 0, smaller datagrams,
//! earlier steps — and keeps the first one that still shows the
//! fingerprint. Every candidate goes through the scenario loader first (as
//! the text it would be saved as, which must read back equal), so a saved
//! file is never one the loader refuses. Every accepted candidate is smaller
//! in a well-founded order, and at most `budget` candidates run.

use super::{fingerprint, run_case, CaseResult, Config, Subject};
use crate::model::MinimalCase;
use crate::scenario::{self, Expect, FirstViolation, Scenario, Step};
use cpsim_sim::{ClockMode, Family, NetFaults, RuleId, TaskTiming, Violation};
use std::collections::BTreeSet;

/// The first violation of `r` with fingerprint `fp`.
fn first_with_fingerprint(r: &CaseResult, fp: &str) -> Option<Violation> {
    r.violations
        .iter()
        .find(|v| fingerprint(v, &r.trace) == fp)
        .cloned()
}

/// Runs `s`; its result if it shows `fp`.
fn shows(subject: &Subject, s: &Scenario, fp: &str) -> Option<CaseResult> {
    let r = run_case(subject, s);
    r.violations
        .iter()
        .any(|v| fingerprint(v, &r.trace) == fp)
        .then_some(r)
}

/// Whether the loader accepts `s` as the text it would be saved as, and
/// reads it back equal.
pub(crate) fn loads_back(s: &Scenario) -> bool {
    let text = scenario::to_pretty_json(s);
    matches!(scenario::parse(&text, "shrink candidate"), Ok(back) if back == *s)
}

/// The hosts a step names.
fn names(step: &Step, host: &str) -> bool {
    match step {
        Step::StartProvider { host: h, .. }
        | Step::StopProvider { host: h, .. }
        | Step::Listen { host: h, .. }
        | Step::AddressAdd { host: h, .. }
        | Step::AddressRemove { host: h, .. }
        | Step::AddressReturn { host: h, .. }
        | Step::InterfaceDown { host: h, .. }
        | Step::InterfaceUp { host: h, .. }
        | Step::Dormant { host: h, .. }
        | Step::Shutdown { host: h, .. }
        | Step::CommunicationError { host: h, .. } => h == host,
        Step::Send { from, to, .. } | Step::SendMany { from, to, .. } => from == host || to == host,
        Step::DuplicateAddress { host: h, of, .. } => h == host || of == host,
        Step::Partition { a, b, .. } => a == host || b == host,
        Step::Heal { .. }
        | Step::NetFaults { .. }
        | Step::TaskTiming { .. }
        | Step::Advance { .. } => false,
    }
}

/// Smaller variants of `s`, most reducing first. Each is smaller than `s`
/// in the order (hosts, steps, then settings, sizes and times), so
/// accepting candidates always ends.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    // Drop a host and every step that names it.
    if s.hosts.len() > 1 {
        for h in &s.hosts {
            let mut c = s.clone();
            c.hosts.retain(|x| x != h);
            c.steps.retain(|st| !names(st, h));
            if !c.steps.is_empty() {
                out.push(c);
            }
        }
    }
    // Drop runs of steps: halves, quarters, … single steps.
    let n = s.steps.len();
    let mut size = n / 2;
    while size >= 1 {
        let mut start = 0;
        while start < n {
            let end = (start + size).min(n);
            if end - start < n {
                let mut c = s.clone();
                c.steps.drain(start..end);
                out.push(c);
            }
            start += size;
        }
        size /= 2;
    }
    // Calm settings.
    let mut push_if = |c: Scenario| {
        if c != *s {
            out.push(c);
        }
    };
    let quiet_net = NetFaults {
        delay_ms: s.platform.net.delay_ms,
        ..NetFaults::default()
    };
    for net in [NetFaults::default(), quiet_net] {
        let mut c = s.clone();
        c.platform.net = net;
        push_if(c);
    }
    let mut c = s.clone();
    c.platform.tasks = TaskTiming::default();
    push_if(c);
    let mut c = s.clone();
    c.platform.seed = 0;
    push_if(c);
    // The whole schedule in half the time.
    let mut c = s.clone();
    for st in &mut c.steps {
        let t = st.at_ms_mut();
        *t /= 2;
    }
    push_if(c);
    // One step at a time: smaller, plainer, earlier.
    let mut times: Vec<u64> = s.steps.iter().map(Step::at_ms).collect();
    times.sort_unstable();
    for i in 0..n {
        let mut variants: Vec<Step> = Vec::new();
        match &s.steps[i] {
            Step::Send {
                at_ms,
                from,
                to,
                family,
                bytes,
                newest,
            } => {
                let send = |family: Family, bytes: u32, newest: bool| Step::Send {
                    at_ms: *at_ms,
                    from: from.clone(),
                    to: to.clone(),
                    family,
                    bytes,
                    newest,
                };
                if *bytes > 0 {
                    variants.push(send(*family, 0, *newest));
                    variants.push(send(*family, bytes / 2, *newest));
                }
                if *family == Family::V6 {
                    variants.push(send(Family::V4, *bytes, *newest));
                }
                if *newest {
                    variants.push(send(*family, *bytes, false));
                }
            }
            Step::AddressAdd {
                at_ms,
                host,
                family: Family::V6,
            } => variants.push(Step::AddressAdd {
                at_ms: *at_ms,
                host: host.clone(),
                family: Family::V4,
            }),
            Step::DuplicateAddress {
                at_ms,
                host,
                of,
                family: Family::V6,
            } => variants.push(Step::DuplicateAddress {
                at_ms: *at_ms,
                host: host.clone(),
                of: of.clone(),
                family: Family::V4,
            }),
            Step::TaskTiming { at_ms, .. } => variants.push(Step::TaskTiming {
                at_ms: *at_ms,
                timing: TaskTiming::default(),
            }),
            Step::NetFaults { at_ms, .. } => variants.push(Step::NetFaults {
                at_ms: *at_ms,
                faults: NetFaults::default(),
            }),
            _ => {}
        }
        let t = s.steps[i].at_ms();
        // The latest time of another step before this one, and half the time.
        let before = times.iter().copied().filter(|x| *x < t).max();
        for earlier in [before, Some(t / 2)].into_iter().flatten() {
            let mut st = s.steps[i].clone();
            *st.at_ms_mut() = earlier;
            variants.push(st);
        }
        for v in variants {
            let mut c = s.clone();
            c.steps[i] = v;
            push_if(c);
        }
    }
    out
}

/// Shrinks `best` (which shows `fp`, as `run` says) with at most `budget`
/// candidate runs.
fn minimize(
    subject: &Subject,
    mut best: Scenario,
    mut run: CaseResult,
    fp: &str,
    cfg: &Config,
    budget: u32,
) -> (Scenario, CaseResult) {
    let mut tries = 0;
    'rounds: loop {
        let mut improved = false;
        for c in candidates(&best) {
            if tries >= budget || cfg.stopped() {
                break 'rounds;
            }
            if !loads_back(&c) {
                continue;
            }
            tries += 1;
            if let Some(r) = shows(subject, &c, fp) {
                best = c;
                run = r;
                improved = true;
                break;
            }
        }
        if !improved {
            break;
        }
    }
    (best, run)
}

/// A file name part from a fingerprint: `COMP-3/SEND_BUFFERS/pended` →
/// `comp-3-send-buffers-pended`.
fn slug(fp: &str) -> String {
    let mut out = String::new();
    for c in fp.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Shrinks `case` (global index `index`) while it shows fingerprint `fp`,
/// with at most `budget` candidate runs (0: not shrunk); saves it with the
/// expectations its replay meets; replays the saved text to check that it
/// does. If `case` no longer shows `fp` when rerun (a real-time failure
/// that hangs on timing), the finding keeps `case` as found, with `found`'s
/// trace, marked as not recurred.
#[allow(clippy::too_many_arguments)]
pub(super) fn minimal_case(
    subject: &Subject,
    case: Scenario,
    index: u64,
    fp: &str,
    cfg: &Config,
    seed: u64,
    budget: u32,
    found: CaseResult,
) -> Option<(Violation, MinimalCase)> {
    let steps_before = case.steps.len();
    let (mut s, run, recurred) = match shows(subject, &case, fp) {
        Some(run) => {
            let (s, run) = minimize(subject, case, run, fp, cfg, budget);
            (s, run, true)
        }
        None => (case, found, false),
    };
    let v = first_with_fingerprint(&run, fp)?;
    if let Some(ext) = &subject.external {
        ext.prepare(&mut s);
    }
    // What a replay will see: every rule that fired, and the earliest
    // violation (which may be another rule's, when this finding is a
    // consequence of it).
    let first = run.violations.iter().min_by_key(|v| v.step)?;
    let rules: BTreeSet<RuleId> = run.violations.iter().map(|v| v.rule).collect();
    s.name = format!("{} shrunk: {}", subject.name, fp);
    let how = if !recurred {
        format!("kept as found ({steps_before} steps): it did not recur when rerun (a real-time failure that depends on timing)")
    } else if budget == 0 {
        format!("kept as found ({steps_before} steps; the run was interrupted before shrinking)")
    } else {
        format!("shrunk from {steps_before} to {} steps", s.steps.len())
    };
    s.description = format!(
        "Found by `{}` (case {index}), {how}.",
        cfg.invocation.rerun_command(seed, cfg.cases)
    );
    s.expect = Expect {
        violations: Some(rules.into_iter().collect()),
        first_violation: Some(FirstViolation {
            rule: first.rule,
            step: first.step,
        }),
        ..Expect::default()
    };
    let text = scenario::to_pretty_json(&s);
    // Replay the file as the loader reads it: same trace, same violations.
    let deterministic = (subject.clock == ClockMode::Virtual).then(|| {
        scenario::parse(&text, "saved scenario").is_ok_and(|back| {
            let again = run_case(subject, &back);
            again.trace == run.trace
                && again.violations.len() == run.violations.len()
                && again
                    .violations
                    .iter()
                    .zip(&run.violations)
                    .all(|(a, b)| a.headline() == b.headline())
        })
    });
    let saved = cfg.regressions.as_ref().map(|dir| {
        let file = dir.join(format!(
            "{}-{seed:x}-{}-case{index}.json",
            subject.name,
            slug(fp)
        ));
        super::regressions::save(&file, &text)
            .map(|()| file.clone())
            .map_err(|e| format!("cannot save {}: {e}", file.display()))
    });
    let (saved_to, save_error) = match saved {
        Some(Ok(file)) => (Some(file), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let replay = match &saved_to {
        Some(f) => cfg.invocation.replay_command(f),
        None => cfg.invocation.rerun_command(seed, cfg.cases),
    };
    Some((
        v,
        MinimalCase {
            scenario: s,
            trace: run.trace,
            saved_to,
            save_error,
            replay,
            deterministic,
            recurred,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(
            slug("COMP-3/SEND_BUFFERS/pended"),
            "comp-3-send-buffers-pended"
        );
        assert_eq!(slug("LIFE-8/-/-"), "life-8");
    }
}
