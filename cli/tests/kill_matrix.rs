//! The kill matrix: every provider rule has a broken provider, and
//! certification catches each one with exactly the rule it breaks.

use cpsim_certify::certify::kill_matrix;
use cpsim_certify::Verdict;
use cpsim_sim::rules::{Binds, Level};
use cpsim_sim::RuleId;

/// Set in the child process that runs the matrix alone.
const CHILD: &str = "CPSIM_TEST_KILL_MATRIX_CHILD";

#[test]
fn every_provider_rule_has_a_broken_provider_and_each_is_caught() {
    // The matrix runs alone in a process of its own (this binary, this test
    // only), as `cpsim kill-matrix` does: the threads the real-time broken
    // providers leave running are counted only there (LIFE-8).
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "every_provider_rule_has_a_broken_provider_and_each_is_caught",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .expect("run the test binary");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let rows = kill_matrix(&cpsim::builtin_registry(), 64, 1, true);
    let mut problems = Vec::new();
    for rule in RuleId::all().filter(|r| r.rule().binds == Binds::Provider) {
        if !rows.iter().any(|r| r.target == rule) {
            problems.push(format!("{rule}: no broken provider"));
        }
    }
    for r in &rows {
        let others: Vec<_> = r.fired.iter().filter(|x| **x != r.target).collect();
        println!(
            "{:<18} {:<8} {:<10} also fired: {:?}  never exercised: {:?}",
            r.provider, r.target, r.verdict, others, r.unexercised
        );
        if !r.fired.contains(&r.target) {
            problems.push(format!(
                "{}: {} not reported (fired: {:?})",
                r.provider, r.target, r.fired
            ));
        }
        let expected = if r.target.rule().level == Level::Should && r.unexercised.is_empty() {
            Verdict::NonStrict
        } else {
            Verdict::Fail
        };
        if r.verdict != expected {
            problems.push(format!(
                "{}: verdict {} (expected {expected})",
                r.provider, r.verdict
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_correct_providers_pass_4096_guided_cases() {
    // Half the default budget in a debug build; BENCHMARKS.md gives the
    // large release runs (`cpsim certify --cases 100000`).
    let budget = 4_096;
    for name in ["reference", "sync-raw"] {
        let subject = cpsim::builtin_registry().subject(name).unwrap();
        let cfg = cpsim_certify::Config {
            cases: budget,
            seed: Some(2026),
            regressions: None,
            ..Default::default()
        };
        let cert = cpsim_certify::certify_subject(&subject, cfg);
        assert_eq!(cert.verdict, Verdict::Pass, "{}", cert.failure_message());
        assert!(cert.findings.is_empty(), "{name}: {:#?}", cert.findings);
    }
}
