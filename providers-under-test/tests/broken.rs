//! Every broken provider, run on the ordinary story, breaks its rule.
//!
//! This is the "one tiny provider per rule" check: each `broken-*` provider
//! is the reference with exactly one bug, and the simulator must report
//! exactly that rule. Each is a test of its own, made from the registry and
//! named after its rule first (`comp_3_broken_comp_3_is_caught_alone`), so
//! `cargo test comp_3` runs it with the rule's scenario files and platform
//! faults. Other rules a mutant trips as a consequence fail its test unless
//! pinned in `EXTRA`, so a change shows up.

mod common;
use common::*;
use cpsim_providers::{registry, Entry, Kind};
use cpsim_sim::rules::{Binds, CATALOGUE};
use cpsim_sim::{Config, RuleId};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;

/// Rules a mutant is known to trip besides its own (none, ideally).
const EXTRA: &[(&str, &[&str])] = &[];

fn main() {
    // broken-crash-1 panics on purpose (the platform catches it); keep the
    // test output readable.
    cpsim_sim::runtime::quiet_provider_panics();
    let mut trials = vec![Trial::test(
        "every_provider_rule_has_a_broken_provider",
        every_provider_rule_has_a_broken_provider,
    )];
    for e in registry().entries() {
        let Kind::Broken(rule) = e.kind() else {
            continue;
        };
        let name = format!(
            "{}_{}_is_caught_alone",
            snake(rule.as_str()),
            snake(e.name())
        );
        let e = e.clone();
        trials.push(Trial::test(name, move || caught_alone(&e, rule)));
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

/// `COMP-3` → `comp_3`, `broken-comp-3` → `broken_comp_3`.
fn snake(s: &str) -> String {
    s.to_lowercase().replace('-', "_")
}

fn every_provider_rule_has_a_broken_provider() -> Result<(), Failed> {
    let broken: BTreeSet<RuleId> = registry()
        .entries()
        .iter()
        .filter_map(|e| match e.kind() {
            Kind::Broken(r) => Some(r),
            Kind::Correct | Kind::Subtle(_) => None,
        })
        .collect();
    for r in RuleId::all() {
        if r.rule().binds == Binds::Provider && !broken.contains(&r) {
            return Err(format!("no broken provider for {r}").into());
        }
    }
    let provider_rules = CATALOGUE
        .iter()
        .filter(|r| r.binds == Binds::Provider)
        .count();
    if broken.len() != provider_rules {
        return Err(format!("{} broken for {provider_rules} rules", broken.len()).into());
    }
    Ok(())
}

fn caught_alone(e: &Entry, rule: RuleId) -> Result<(), Failed> {
    let out = run(
        e.factory(),
        Config::with_seed(7),
        &["A", "B"],
        &ordinary(),
        ORDINARY_END_MS,
    );
    let fired = rules(&out);
    if !fired.contains(&rule) {
        return Err(format!("{}: expected {rule}, got:\n{}", e.name(), listing(&out)).into());
    }
    let allowed: Vec<&str> = EXTRA
        .iter()
        .find(|(n, _)| *n == e.name())
        .map(|(_, x)| x.to_vec())
        .unwrap_or_default();
    let others: Vec<String> = fired
        .iter()
        .filter(|r| **r != rule)
        .map(|r| r.to_string())
        .filter(|o| !allowed.contains(&o.as_str()))
        .collect();
    if !others.is_empty() {
        return Err(format!(
            "{}: {rule} fired, but also {others:?}:\n{}",
            e.name(),
            listing(&out)
        )
        .into());
    }
    Ok(())
}
