//! The harness end to end: a seeded bug is found, shrunk, saved and
//! replayed to the same violation; a seed names a run; the reference
//! provider passes with every required rule exercised.

use cpsim_certify::certify::{certify_subject, Config, REQUIRED};
use cpsim_certify::Verdict;
use cpsim_sim::rules::id;

fn cfg(cases: u64, seed: u64, dir: Option<std::path::PathBuf>) -> Config {
    Config {
        cases,
        seed: Some(seed),
        regressions: dir,
        ..Config::default()
    }
}

#[test]
fn the_reference_provider_passes_with_every_required_rule_exercised() {
    let cert = certify_subject(
        &cpsim_providers::registry().subject("reference").unwrap(),
        cfg(256, 11, None),
    );
    assert_eq!(cert.verdict, Verdict::Pass, "{}", cert.failure_message());
    assert!(cert.findings.is_empty());
    for r in REQUIRED {
        assert!(cert.rules[r.index()].exercised > 0, "{r} never exercised");
    }
    assert_eq!(cert.rules.len(), cpsim_sim::CATALOGUE.len());
}

#[test]
fn a_seeded_bug_is_found_shrunk_saved_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let subject = cpsim_providers::registry()
        .subject("broken-comp-3")
        .unwrap();
    let cert = certify_subject(&subject, cfg(64, 5, Some(dir.path().to_path_buf())));
    assert_eq!(cert.verdict, Verdict::Fail);
    let f = cert
        .findings
        .iter()
        .find(|f| f.violation.rule == id::COMP_3)
        .expect("COMP-3 found");
    let m = f.minimal.as_ref().expect("shrunk");
    // Shrunk: the three provider starts plus a handful of steps at most.
    assert!(
        m.scenario.steps.len() <= 6,
        "{} steps: {:#?}",
        m.scenario.steps.len(),
        m.scenario.steps
    );
    assert_eq!(m.deterministic, Some(true));
    let file = m.saved_to.as_ref().expect("saved");
    assert!(m.replay.contains(&file.display().to_string()));
    // The saved file is an ordinary scenario and replays to the same violation at the same step.
    let loaded = cpsim_providers::registry()
        .load(file)
        .expect("a valid scenario file");
    let fv = loaded.expect.first_violation.clone().expect("pinned");
    assert_eq!(fv.rule, id::COMP_3);
    for _ in 0..3 {
        let run = cpsim_providers::registry().run(&loaded).unwrap();
        assert!(run.passed(), "{:?}", run.failures);
        let first = run
            .outcome
            .violations
            .iter()
            .find(|v| v.rule == id::COMP_3)
            .unwrap();
        assert_eq!(first.step, fv.step);
    }
    // The failure message names the rule, its text and source, and the replay command.
    let msg = cert.failure_message();
    assert!(
        msg.contains("COMP-3") && msg.contains(id::COMP_3.rule().text) && msg.contains(&m.replay)
    );
}

#[test]
fn the_same_seed_gives_the_same_certification() {
    let subject = cpsim_providers::registry()
        .subject("broken-data-5")
        .unwrap();
    let a = certify_subject(&subject, cfg(48, 99, None));
    let b = certify_subject(&subject, cfg(48, 99, None));
    assert_eq!(a.rules, b.rules);
    let ta: Vec<_> = a
        .findings
        .iter()
        .map(|f| (&f.fingerprint, f.minimal.as_ref().map(|m| m.trace.digest())))
        .collect();
    let tb: Vec<_> = b
        .findings
        .iter()
        .map(|f| (&f.fingerprint, f.minimal.as_ref().map(|m| m.trace.digest())))
        .collect();
    assert_eq!(ta, tb);
}

#[test]
fn should_rules_give_non_strict_and_strict_makes_them_fail() {
    let subject = cpsim_providers::registry()
        .subject("broken-comp-2")
        .unwrap();
    let lax = certify_subject(&subject, cfg(64, 3, None));
    assert_eq!(lax.verdict, Verdict::NonStrict, "{}", lax.failure_message());
    lax.assert_pass();
    let strict = certify_subject(
        &subject,
        Config {
            strict: true,
            ..cfg(64, 3, None)
        },
    );
    assert_eq!(strict.verdict, Verdict::Fail);
    assert!(std::panic::catch_unwind(|| strict.assert_pass()).is_err());
}

#[test]
fn a_weak_run_cannot_pass_by_accident() {
    // One case with a single step exercises too little: certification fails on coverage.
    let c = Config {
        cases: 1,
        seed: Some(1),
        regressions: None,
        shape: cpsim_certify::certify::Shape {
            hosts: 2,
            min_steps: 1,
            max_steps: 1,
            horizon_ms: 2,
            ..Default::default()
        },
        ..Config::default()
    };
    let cert = certify_subject(
        &cpsim_providers::registry().subject("reference").unwrap(),
        c,
    );
    assert_eq!(cert.verdict, Verdict::Fail);
    assert!(!cert.unexercised.is_empty());
}
