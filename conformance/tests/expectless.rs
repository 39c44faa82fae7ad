//! A scenario that names no violation is not a licence to break rules: it
//! fails on any MUST rule or platform guarantee broken (a crash included)
//! and says which; an explicit expectation can say otherwise; SHOULD rules
//! only warn.

use cpsim_certify::scenario::parse;
use cpsim_certify::Registry;

fn crash_scenario(expect: &str) -> String {
    format!(
        r#"{{
  "version": 1,
  "name": "crash without expect",
  "hosts": ["A", "B"],
  "provider": {{"builtin": "broken-crash-1"}},
  "steps": [
    {{"do": "start_provider", "at_ms": 0, "host": "A"}},
    {{"do": "start_provider", "at_ms": 0, "host": "B"}},
    {{"do": "listen", "at_ms": 10, "host": "B", "on": true}},
    {{"do": "send", "at_ms": 200, "from": "A", "to": "B", "family": "v6", "bytes": 64}}
  ]{expect}
}}"#
    )
}

fn registry() -> Registry {
    cpsim_sim::runtime::quiet_provider_panics();
    cpsim_providers::registry()
}

#[test]
fn crash_1_fails_a_scenario_without_expect_and_is_named() {
    let s = parse(&crash_scenario(""), "crash.json").unwrap();
    let run = registry().run(&s).unwrap();
    assert!(!run.passed());
    let f = run.failures.join("\n");
    assert!(
        f.contains("CRASH-1") && f.contains("no violation expected"),
        "{f}"
    );
}

#[test]
fn crash_1_with_an_expectation_of_other_things_still_fails() {
    // `delivered` says nothing about violations: the crash still fails it.
    let s = parse(
        &crash_scenario(r#", "expect": {"termination": "PROVIDER_OTHER_FAILURE"}"#),
        "crash.json",
    )
    .unwrap();
    let run = registry().run(&s).unwrap();
    assert_eq!(run.failures.len(), 1, "{:?}", run.failures);
    assert!(run.failures[0].contains("CRASH-1"));
}

#[test]
fn crash_1_expected_explicitly_passes() {
    for expect in [
        r#", "expect": {"includes": ["CRASH-1"]}"#,
        r#", "expect": {"violations": ["CRASH-1"]}"#,
    ] {
        let s = parse(&crash_scenario(expect), "crash.json").unwrap();
        let run = registry().run(&s).unwrap();
        assert!(run.passed(), "{expect}: {:?}", run.failures);
    }
}

#[test]
fn tid_4_a_should_rule_does_not_fail_a_scenario_without_expect() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/rules/tid-4.json"),
    )
    .unwrap();
    let mut s = parse(&text, "tid-4.json").unwrap();
    s.expect = Default::default();
    let run = registry().run(&s).unwrap();
    assert!(run
        .outcome
        .violations
        .iter()
        .any(|v| v.rule.as_str() == "TID-4"));
    assert!(run.passed(), "{:?}", run.failures);
}

#[test]
fn a_correct_provider_passes_a_scenario_without_expect() {
    let s = parse(
        &crash_scenario("").replace("broken-crash-1", "reference"),
        "fine.json",
    )
    .unwrap();
    let run = registry().run(&s).unwrap();
    assert!(run.passed(), "{:?}", run.failures);
}
