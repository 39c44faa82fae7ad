//! Every broken provider, run on the ordinary story, breaks its rule.
//!
//! This is the "one tiny provider per rule" check: each `broken-*` provider
//! is the reference with exactly one bug, and the simulator must report
//! exactly that rule. Other rules a mutant trips as a consequence are
//! printed (and pinned in `EXTRA`, so a change shows up).

mod common;
use common::*;
use cpsim_providers::{registry, Kind};
use cpsim_sim::rules::{Binds, CATALOGUE};
use cpsim_sim::{Config, RuleId};
use std::collections::BTreeSet;

/// Rules a mutant is known to trip besides its own (none, ideally).
const EXTRA: &[(&str, &[&str])] = &[];

#[test]
fn every_provider_rule_has_a_broken_provider() {
    let broken: BTreeSet<RuleId> = registry()
        .entries()
        .iter()
        .filter_map(|e| match e.kind() {
            Kind::Broken(r) => Some(r),
            Kind::Correct | Kind::Subtle(_) => None,
        })
        .collect();
    for r in RuleId::all() {
        if r.rule().binds == Binds::Provider {
            assert!(broken.contains(&r), "no broken provider for {r}");
        }
    }
    assert_eq!(
        broken.len(),
        CATALOGUE
            .iter()
            .filter(|r| r.binds == Binds::Provider)
            .count()
    );
}

#[test]
fn every_broken_provider_is_caught_by_its_rule() {
    let mut failures = Vec::new();
    let mut report = String::new();
    // broken-crash-1 panics on purpose (the platform catches it); keep the
    // test output readable.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for e in registry().entries() {
        let Kind::Broken(rule) = e.kind() else {
            continue;
        };
        let out = run(
            e.factory(),
            Config::with_seed(7),
            &["A", "B"],
            &ordinary(),
            ORDINARY_END_MS,
        );
        let fired = rules(&out);
        let others: Vec<String> = fired
            .iter()
            .filter(|r| **r != rule)
            .map(|r| r.to_string())
            .collect();
        report.push_str(&format!(
            "{:<16} {:<8} fired {:?} others {:?}\n",
            e.name(),
            rule.to_string(),
            fired.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            others
        ));
        if !fired.contains(&rule) {
            failures.push(format!(
                "{}: expected {rule}, got:\n{}",
                e.name(),
                listing(&out)
            ));
            continue;
        }
        let allowed: Vec<&str> = EXTRA
            .iter()
            .find(|(n, _)| *n == e.name())
            .map(|(_, x)| x.to_vec())
            .unwrap_or_default();
        if others.iter().any(|o| !allowed.contains(&o.as_str())) {
            failures.push(format!(
                "{}: {rule} fired, but also {others:?}:\n{}",
                e.name(),
                listing(&out)
            ));
        }
    }
    std::panic::set_hook(hook);
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
