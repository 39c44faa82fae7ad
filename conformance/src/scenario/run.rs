//! Playing a scenario: build the simulated world from its settings, schedule
//! its steps, run, and hold the outcome to its expectations.

use super::{Expect, Scenario};
use cpsim_sim::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use cpsim_sim::rules::{Binds, Level};
use cpsim_sim::trace::What;
use cpsim_sim::{
    Callback, ClockMode, Config, HostName, Nanos, Outcome, ProviderFactory, RuleId, Sim,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What running a scenario gives: the simulator's outcome, and every
/// expectation that did not hold, each as one sentence.
#[derive(Clone, Debug)]
pub struct ScenarioRun {
    /// The run's outcome. Its `violations` are those the simulator caught
    /// while running (provider rules) followed, in step order, by those the
    /// platform checker ([`cpsim_sim::oracle::check`]) finds in the trace
    /// (platform guarantees), so that an expectation of no violation also
    /// holds the platform to its side of the contract.
    pub outcome: Outcome,
    /// Empty when the scenario passed.
    pub failures: Vec<String>,
}

impl ScenarioRun {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The simulator configuration a scenario asks for.
pub fn sim_config(s: &Scenario, clock: ClockMode) -> Config {
    let p = &s.platform;
    Config {
        seed: p.seed,
        clock,
        limits: p.limits.clone(),
        net: p.net.clone(),
        tasks: p.tasks.clone(),
        drain_ms: p.drain_ms.get(),
        idle_dormancy_ms: p.idle_dormancy_ms.get(),
        ..Config::default()
    }
}

/// Runs `s` with providers made by `factory`, in `clock` mode (virtual time
/// unless the provider needs the wall clock), and checks its expectations.
///
/// Steps run in time order; steps with the same time keep their order in
/// the file and all run before anything the run itself schedules for that
/// same instant (a `send_many` step's datagrams each run as a `send` step
/// in its place would). The run goes to the last step's time, then
/// [`Sim::finish`] drains (`platform.drain_ms`), stops every provider that
/// is still running and makes the final checks.
pub fn run(s: &Scenario, factory: Arc<dyn ProviderFactory>, clock: ClockMode) -> ScenarioRun {
    // `Sim::new` insists on 1..200 hosts; a scenario that did not come
    // through the loader may have none.
    if s.hosts.is_empty() || s.hosts.len() >= 200 {
        return ScenarioRun {
            outcome: Outcome {
                violations: Vec::new(),
                trace: Default::default(),
                end: Nanos::ZERO,
                sent: 0,
                delivered: 0,
                idle: Vec::new(),
            },
            failures: vec![format!(
                "the scenario has {} hosts and cannot run (1 to {} are allowed)",
                s.hosts.len(),
                super::MAX_HOSTS
            )],
        };
    }
    let empty = || Outcome {
        violations: Vec::new(),
        trace: Default::default(),
        end: Nanos::ZERO,
        sent: 0,
        delivered: 0,
        idle: Vec::new(),
    };
    if let Err(e) = factory.configure(&s.provider_config) {
        return ScenarioRun {
            outcome: empty(),
            failures: vec![format!("provider_config rejected: {e}")],
        };
    }
    let hosts: Vec<&str> = s.hosts.iter().map(HostName::as_str).collect();
    let sim = Sim::new(sim_config(s, clock), &hosts, factory);
    let last = schedule_steps(&sim, s);
    sim.run_until(Nanos::from_millis(last));
    let mut outcome = sim.finish();
    add_platform_violations(&mut outcome);
    let failures = check_expectations(&s.expect, &outcome);
    ScenarioRun { outcome, failures }
}

/// Schedules every step of `s` on `sim`; returns the time of the last
/// action (ms). Everything is scheduled before the run starts, in file
/// order: the queue runs events by time, then in the order they were
/// scheduled, so steps run by time, and in file order at an instant (a
/// `send_many`'s datagrams too, each where one `send` step in its place
/// would be).
pub fn schedule_steps(sim: &Sim, s: &Scenario) -> u64 {
    let mut last = 0;
    for st in &s.steps {
        last = last.max(st.last_ms());
        let at = Nanos::from_millis(st.at_ms());
        match st.repeat() {
            (1, _) => sim.schedule(at, st.action()),
            (count, every) => {
                sim.schedule_repeated(at, Nanos::from_millis(every), count, st.action())
            }
        }
    }
    last
}

/// One sentence for every step of `s` that did nothing when it ran in the
/// run that gave `outcome` (a provider started twice or stopped when not
/// running, dormancy or an infrastructure fault on a host with no live
/// session, an address notification with no registered interface, a heal
/// with no partition): `step 4 (`stop_provider` at 120 ms on host b): b's
/// provider is not running; the step does nothing`. Steps count from 1 in
/// file order. Found as the run went (so exact: a provider the platform
/// stopped counts as stopped), and nothing of it is in the trace, so traces
/// and their step numbers stay as they are. `outcome` must come from a
/// world whose actions were scheduled by [`schedule_steps`] alone, as
/// [`run`] does.
pub fn idle_notes(s: &Scenario, outcome: &Outcome) -> Vec<String> {
    outcome
        .idle
        .iter()
        .filter_map(|i| {
            let k = i.order as usize;
            let st = s.steps.get(k)?;
            Some(format!(
                "step {} (`{}` at {} ms{}): {}; the step does nothing",
                k + 1,
                st.kind(),
                st.at_ms(),
                st.place(),
                i.why
            ))
        })
        .collect()
}

/// Adds what the platform checker finds in the trace, once per rule and step.
fn add_platform_violations(outcome: &mut Outcome) {
    let found = cpsim_sim::oracle::check(&outcome.trace);
    for v in found {
        let known = outcome
            .violations
            .iter()
            .any(|w| w.rule == v.rule && w.step == v.step);
        if !known {
            outcome.violations.push(v);
        }
    }
    // Stable: violations of one step keep the order they were found in.
    outcome.violations.sort_by_key(|v| v.step);
}

/// A scenario as the harness saves it: pretty JSON, fields in declaration
/// order, 2-space indent, a trailing newline. `parse` reads it back equal.
pub fn to_pretty_json(s: &Scenario) -> String {
    let mut text = serde_json::to_string_pretty(s).expect("a scenario always serialises");
    text.push('\n');
    text
}

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|x| x.to_string()).collect();
    format!("[{}]", v.join(", "))
}

fn reason_name(r: Reason) -> String {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{r:?}"),
    }
}

/// Every expectation of `e` that `outcome` does not meet, one sentence each.
/// When `e` names no violation at all (no `violations`, `includes` or
/// `first_violation`), it is taken to expect that no MUST rule and no
/// platform guarantee is broken (a crash included); SHOULD rules may be.
pub fn check_expectations(e: &Expect, outcome: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    let got: BTreeSet<RuleId> = outcome.violations.iter().map(|v| v.rule).collect();
    let first = outcome.violations.iter().min_by_key(|v| v.step);

    // Saying nothing about violations is not a licence to break rules: a
    // scenario that names no violation (no `violations`, `includes` or
    // `first_violation`) fails on any MUST rule or platform guarantee
    // broken, a crash (CRASH-1) included. SHOULD rules only warn.
    if e.violations.is_none() && e.includes.is_none() && e.first_violation.is_none() {
        let serious: Vec<&cpsim_sim::Violation> = outcome
            .violations
            .iter()
            .filter(|v| {
                let r = v.rule.rule();
                r.binds == Binds::Platform || r.level == Level::Must
            })
            .collect();
        if let Some(v) = serious.first() {
            let rules: BTreeSet<RuleId> = serious.iter().map(|v| v.rule).collect();
            failures.push(format!(
                "no violation expected (the scenario names none), but {} {} broken; the first: {}",
                list(&rules),
                if rules.len() == 1 { "was" } else { "were" },
                v.headline()
            ));
        }
    }

    if let Some(want) = &e.violations {
        let want: BTreeSet<RuleId> = want.iter().copied().collect();
        if want != got {
            let unexpected = outcome.violations.iter().find(|v| !want.contains(&v.rule));
            let detail = unexpected
                .map(|v| format!("; first unexpected: {}", v.headline()))
                .unwrap_or_default();
            if want.is_empty() {
                failures.push(format!(
                    "expected no violation but got {}{detail}",
                    list(&got)
                ));
            } else {
                failures.push(format!(
                    "expected exactly {} but got {}{detail}",
                    list(&want),
                    list(&got)
                ));
            }
        }
    }

    if let Some(want) = &e.includes {
        let missing: Vec<RuleId> = want
            .iter()
            .copied()
            .filter(|r| !got.contains(r))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            let verb = if missing.len() == 1 { "was" } else { "were" };
            failures.push(format!(
                "expected the violations to include {} but {} {verb} never reported (got {})",
                list(want),
                list(&missing),
                list(&got)
            ));
        }
    }

    if let Some(fv) = &e.first_violation {
        match first {
            Some(v) if v.rule == fv.rule && v.step == fv.step => {}
            Some(v) => failures.push(format!(
                "expected first violation {} at step {}, got {} at step {}",
                fv.rule, fv.step, v.rule, v.step
            )),
            None => failures.push(format!(
                "expected first violation {} at step {}, got no violation",
                fv.rule, fv.step
            )),
        }
    }

    if let Some(order) = &e.callbacks_in_order {
        if let Some(f) = check_order(order, outcome) {
            failures.push(f + &gap_note(outcome));
        }
    }

    if let Some(want) = e.termination {
        let reasons: Vec<Reason> = outcome
            .trace
            .events
            .iter()
            .filter_map(|ev| match &ev.what {
                What::Call {
                    cb: Callback::TerminateSessionIndication,
                    reason,
                    ..
                } => *reason,
                _ => None,
            })
            .collect();
        if !reasons.contains(&want) {
            if reasons.is_empty() {
                failures.push(format!(
                    "expected a session to end with {} but no TERMINATE_SESSION_INDICATION was delivered{}",
                    reason_name(want),
                    gap_note(outcome)
                ));
            } else {
                failures.push(format!(
                    "expected a session to end with {} but TERMINATE_SESSION_INDICATION only came with {}{}",
                    reason_name(want),
                    list(reasons.iter().map(|r| reason_name(*r))),
                    gap_note(outcome)
                ));
            }
        }
    }

    if let Some(want) = e.delivered {
        if outcome.delivered != want {
            failures.push(format!(
                "expected {want} datagrams delivered, got {} (of {} sent)",
                outcome.delivered, outcome.sent
            ));
        }
    }
    failures
}

/// For an expectation read from the trace: what a long run's trace left out.
fn gap_note(outcome: &Outcome) -> String {
    let Some(o) = &outcome.trace.omitted else {
        return String::new();
    };
    let ev = &outcome.trace.events;
    // The steps just before and just after the gap.
    let before =
        o.at.checked_sub(1)
            .and_then(|k| ev.get(k))
            .map_or(0, |e| e.step);
    let after = ev.get(o.at).map_or(0, |e| e.step);
    format!(
        " (the run outgrew its trace, which left out {} events, steps {} to {}; they were not searched)",
        o.events,
        before + 1,
        after.saturating_sub(1)
    )
}

/// Whether the callbacks of `order` appear in the trace in that order (as a
/// subsequence); if not, the sentence that says where it broke.
fn check_order(order: &[Callback], outcome: &Outcome) -> Option<String> {
    let calls: Vec<(Callback, u64)> = outcome
        .trace
        .events
        .iter()
        .filter_map(|ev| match &ev.what {
            What::Call { cb, .. } => Some((*cb, ev.step)),
            _ => None,
        })
        .collect();
    let mut pos = 0;
    let mut prev: Option<(Callback, u64)> = None;
    for &want in order {
        match calls[pos..].iter().position(|(cb, _)| *cb == want) {
            Some(k) => {
                prev = Some(calls[pos + k]);
                pos += k + 1;
            }
            None => {
                let whole = list(order);
                let never = !calls.iter().any(|(cb, _)| *cb == want);
                return Some(match prev {
                    _ if never => {
                        format!("expected callbacks in order {whole}: {want} never happened")
                    }
                    Some((p, step)) => format!(
                        "expected callbacks in order {whole}: {want} never came after {p} (step {step})"
                    ),
                    None => format!("expected callbacks in order {whole}: {want} never happened"),
                });
            }
        }
    }
    None
}

/// The rules a scenario's description says the platform keeps: every
/// `keeps ID` in it (the convention for platform guarantees, see
/// `scenarios/README.md`).
pub fn kept_rules(s: &Scenario) -> Vec<RuleId> {
    let mut out = Vec::new();
    let mut rest = s.description.as_str();
    while let Some(i) = rest.find("keeps ") {
        rest = &rest[i + "keeps ".len()..];
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let token = token.trim_end_matches('-');
        if let Some(r) = RuleId::parse(token).filter(|r| r.as_str() == token) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// The rules a scenario is about: those it expects to be violated
/// (`violations`, `includes`, `first_violation`) and those it says the
/// platform keeps.
pub fn covered_rules(s: &Scenario) -> BTreeSet<RuleId> {
    let e = &s.expect;
    let mut out: BTreeSet<RuleId> = BTreeSet::new();
    out.extend(e.violations.iter().flatten().copied());
    out.extend(e.includes.iter().flatten().copied());
    out.extend(e.first_violation.iter().map(|f| f.rule));
    out.extend(kept_rules(s));
    out
}
